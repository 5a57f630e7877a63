"""Runs of the planned steps without Python between the kernels (numba backend).

A run of a model calls one kernel per step, through Python: the step's run() works out the
kernel's arguments (views of the arena, scratch from the workspace, the thread count), then
Numba unboxes them. That costs a few microseconds a step, more after an idle spell, when the
Python objects it touches have left the caches, and on two threads it is time the second core
waits: measured on this 2-core machine, a run of the selfie segmenter with every kernel call a
no-op took 0.40 ms back to back and 1.30 ms after the benchmark's 20 ms pause (71 steps).

Most steps' runs are one kernel launch and nothing else (``kernels.parallel.launch_only``), and
their arguments are the same arrays and values at every run, once the arena and the workspace
are in place. :class:`Replays` records two runs of the plan; each marked step whose two launches
ran the same chunk on the same memory with the same values (``Launch.same_as``) is replaced by
its recorded launch, and consecutive ones run as one compiled loop (``kernels.parallel.replay``)
that calls each chunk through its recorded frame. The other steps (two launches, NumPy work, a
temporary array at every run) run as before, in order. The results are the same bits: the same
kernels on the same arguments.

Recordings are per thread count and calling thread (the workspace is per thread), and are
dropped when the arena is placed again (``allocate_tensors``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

#: Runs before the two recorded ones: the first run compiles the kernels and grows the workspace.
PLAIN_RUNS = 1


@dataclass
class _Plan:
    """One (thread count, thread)'s state: runs so far, the first recording, then the segments."""

    runs: int = 0
    first: list | None = None
    segments: list | None = None  # each (int64 rows of launches, their most parts), or a step to run
    kept: list = field(default_factory=list)  # the recorded launches the rows point into


class Replays:
    """The runs of one interpreter's steps (``_Step`` objects with run, in_arrays and out_arrays)."""

    def __init__(self, steps: list) -> None:
        self._steps = steps
        self._plans: dict[tuple[int, int], _Plan] = {}

    def run(self) -> None:
        """One run of the steps, inside the run's thread team (``kernels.parallel.team``)."""
        from .kernels.parallel import numba_threads, replay

        key = (numba_threads(), threading.get_ident())
        plan = self._plans.get(key)
        if plan is None:  # (not setdefault: no new _Plan at every run)
            plan = self._plans[key] = _Plan()
        if plan.segments is not None:
            for segment in plan.segments:
                if isinstance(segment, tuple):
                    replay(*segment)
                else:
                    segment.run(segment.in_arrays, segment.out_arrays)
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
        """How many steps the current thread's replay runs as recorded launches (0 before it is built)."""
        from .kernels.parallel import numba_threads

        plan = self._plans.get((numba_threads(), threading.get_ident()))
        if plan is None or plan.segments is None:
            return 0
        return sum(len(s[0]) for s in plan.segments if isinstance(s, tuple))

    def _run_steps(self) -> None:
        for step in self._steps:
            step.run(step.in_arrays, step.out_arrays)

    def _record(self) -> list:
        """A run of the steps, with each marked step's launches (None for the steps not marked)."""
        from .kernels.parallel import recording

        launches = []
        for step in self._steps:
            if getattr(step.run, "launch_only", False):
                with recording() as made:
                    step.run(step.in_arrays, step.out_arrays)
                launches.append(made)
            else:
                step.run(step.in_arrays, step.out_arrays)
                launches.append(None)
        return launches

    def _build(self, plan: _Plan, first: list, second: list) -> None:
        """The segments: runs of consecutive steps whose two recordings agree, as launch rows."""
        segments: list = []
        for step, a, b in zip(self._steps, first, second):
            if a is not None and b is not None and len(a) == len(b) == 1 and b[0].same_as(a[0]):
                if not segments or not isinstance(segments[-1], list):
                    segments.append([])
                segments[-1].append(b[0].row())
                plan.kept.append(b[0])
            else:
                segments.append(step)
        plan.segments = [(np.array(s, np.int64), max(row[3] for row in s)) if isinstance(s, list) else s
                         for s in segments]
        plan.first = None


__all__ = ["PLAIN_RUNS", "Replays"]
