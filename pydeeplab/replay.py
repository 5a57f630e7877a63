"""Runs of the planned steps without Python between the kernels (numba backend).

A run of a model calls one kernel per step, through Python: the step's run() works out the
kernel's arguments (views of the arena, scratch from the workspace, the thread count), then
Numba unboxes them. That costs a few microseconds a step, more after an idle spell, when the
Python objects it touches have left the caches, and on two threads it is time the second core
waits: measured on this 2-core machine, a run of the selfie segmenter with every kernel call a
no-op took 0.40 ms back to back and 1.30 ms after the benchmark's 20 ms pause (71 steps).

Most steps' runs are kernel launches and nothing else (``kernels.parallel.replayable``), or
launches around a NumPy call on fixed arrays made through ``kernels.parallel.recorded_call``
(LOGISTIC's exp, a squeeze-and-excite scale's row repeated), and their arguments are the same
arrays and values at every run, once the arena and the workspace are in place. :class:`Replays`
records two runs of the plan; each marked step whose two recordings agree, launch by launch
(same chunk, memory, values: ``Launch.same_as``) and call by call (``Call.same_as``), is replaced
by what it recorded: consecutive launches run as one compiled loop (``kernels.parallel.replay``)
that calls each chunk through its recorded frame, a call is made again from Python between two
loops. The other steps (NumPy work on a temporary array, a copy of an input at every run) run as
before, in order. The results are the same bits: the same kernels and calls on the same
arguments.

Recordings are per thread count and calling thread (the workspace is per thread), and are
dropped when the arena is placed again (``allocate_tensors``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import partial

import numpy as np

#: Runs before the two recorded ones: the first run compiles the kernels and grows the workspace.
PLAIN_RUNS = 1


@dataclass
class _Plan:
    """One (thread count, thread)'s state: runs so far, the first recording, then the segments."""

    runs: int = 0
    first: list | None = None
    segments: list | None = None  # what a run calls in order: a loop of recorded launches, a call, a step
    replayed: int = 0  # how many steps the segments run from their recordings
    kept: list = field(default_factory=list)  # the recorded launches and calls the segments point into


class Replays:
    """The runs of one interpreter's steps (``_Step`` objects with run, in_arrays and out_arrays)."""

    def __init__(self, steps: list) -> None:
        self._steps = steps
        self._plans: dict[tuple[int, int], _Plan] = {}

    def run(self) -> None:
        """One run of the steps, inside the run's thread team (``kernels.parallel.team``)."""
        from .kernels.parallel import numba_threads

        key = (numba_threads(), threading.get_ident())
        plan = self._plans.get(key)
        if plan is None:  # (not setdefault: no new _Plan at every run)
            plan = self._plans[key] = _Plan()
        if plan.segments is not None:
            for segment in plan.segments:
                segment()
            return
        plan.runs += 1
        if plan.runs <= PLAIN_RUNS:
            self._run_steps()
        elif plan.first is None:
            plan.first = self._record()
        else:
            self._build(plan, plan.first, self._record())

    @property
    def replayed_steps(self) -> int:
        """How many steps the current thread's replay runs from their recordings (0 before it is built)."""
        from .kernels.parallel import numba_threads

        plan = self._plans.get((numba_threads(), threading.get_ident()))
        return 0 if plan is None else plan.replayed

    def _run_steps(self) -> None:
        for step in self._steps:
            step.run(step.in_arrays, step.out_arrays)

    def _record(self) -> list:
        """A run of the steps, with each marked step's launches and calls (None for the steps not marked)."""
        from .kernels.parallel import recording

        recorded = []
        for step in self._steps:
            if getattr(step.run, "replayable", False):
                with recording() as made:
                    step.run(step.in_arrays, step.out_arrays)
                recorded.append(made)
            else:
                step.run(step.in_arrays, step.out_arrays)
                recorded.append(None)
        return recorded

    def _build(self, plan: _Plan, first: list, second: list) -> None:
        """The segments: consecutive recorded launches of the steps whose two recordings agree as one
        loop, their calls between the loops, the other steps as they are."""
        from .kernels.parallel import Call, replay

        segments: list = []
        rows: list = []  # the launches of the loop being gathered

        def close_loop() -> None:
            if rows:
                segments.append(partial(replay, np.array(rows, np.int64), max(row[3] for row in rows)))
                rows.clear()

        for step, a, b in zip(self._steps, first, second):
            if a and b and len(a) == len(b) and all(y.same_as(x) for x, y in zip(a, b)):
                for made in b:
                    if isinstance(made, Call):
                        close_loop()
                        segments.append(partial(made.function, *made.args))
                    else:
                        rows.append(made.row())
                plan.kept.extend(b)
                plan.replayed += 1
            else:
                close_loop()
                segments.append(partial(step.run, step.in_arrays, step.out_arrays))
        close_loop()
        plan.segments, plan.first = segments, None


__all__ = ["PLAIN_RUNS", "Replays"]
