"""Latency: every runtime on the same input at each thread count, in alternating rounds in one process."""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .environment import BlasThreads
from .models import BenchModel
from .runtimes import BLAS_ENV, PYDEEPLAB_RUNTIMES, SHORT, Log, Runner, Unavailable, _agreement, make_runner

#: Set in the child processes the harness runs itself (no re-spawning from there).
CHILD_ENV = "PYDEEPLAB_BENCH_CHILD"
#: The script the children run.
SCRIPT = Path(__file__).resolve().parent.parent / "bench.py"


#: How long :func:`settle` waits at most for the other threads to go idle, and its step.
SETTLE_LIMIT, SETTLE_STEP = 1.0, 0.01


def _others_cpu_ns() -> int | None:
    """CPU time used so far by this process's threads other than the calling one, in ns (Linux's
    per-thread schedstat), or None where that cannot be read."""
    me, total = threading.get_native_id(), 0
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return None
    for tid in tids:
        if int(tid) != me:
            try:
                with open(f"/proc/self/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):  # the thread ended meanwhile
                pass
    return total


def settle(pause: float) -> float:
    """Sleep ``pause`` seconds, then on until the process's other threads are idle (under a tenth
    of a CPU over a step), at most :data:`SETTLE_LIMIT` seconds in all; returns the seconds slept.

    Runtimes leave worker threads spinning after a run: OpenBLAS's (the numpy backend's matrix
    products) for about 80 ms, measured here, which a fixed 20 ms pause did not cover, so the next
    run (any runtime's) shared the cores with them: the numba backend's 2-thread median on the 257
    model 23.4 ms in a rotation with the numpy backend, 12.0 ms in one without it."""
    start = time.perf_counter()
    time.sleep(pause)
    before = _others_cpu_ns()
    while before is not None and time.perf_counter() - start < SETTLE_LIMIT:
        time.sleep(SETTLE_STEP)
        now = _others_cpu_ns()
        if now is None or now - before < SETTLE_STEP * 1e9 / 10:
            break
        before = now
    return time.perf_counter() - start


def measure(runners: list[Runner], repeat: int, warmup: int, budget: float, pause: float) -> None:
    """Fill each runner's ``samples``: warm-up, then ``repeat`` alternating rounds.

    Each round runs every runner once, starting one further along the list each
    time. A runner whose timed total passed ``budget`` seconds stops once it has
    min(3, repeat) samples. Before each run, :func:`settle`: ``pause`` seconds and
    on until the previous runtime's spinning worker threads have gone to sleep
    instead of competing with it.
    """
    for r in runners:
        for _ in range(warmup):
            r.before()
            r.invoke()
    floor = min(3, repeat)
    enabled = gc.isenabled()
    gc.disable()
    try:
        for rnd in range(repeat):
            k = rnd % len(runners)
            for r in runners[k:] + runners[:k]:
                if len(r.samples) >= floor and r.spent >= budget:
                    continue
                r.before()
                settle(pause)
                start = time.perf_counter()
                r.invoke()
                elapsed = time.perf_counter() - start
                r.samples.append(elapsed)
                r.spent += elapsed
            gc.collect()
    finally:
        if enabled:
            gc.enable()


def bench_latency(m: BenchModel, inputs: list[np.ndarray], runtimes: Sequence[str], threads: Sequence[int],
                  repeat: int, warmup: int, budget: float, pause: float, blas: BlasThreads,
                  onnx_cache: Path | None = None, onnx_python: str | None = None,
                  log: Log | None = None) -> list[dict]:
    """Latency rows for one model: one per (runtime, threads), with samples or the reason it did not run.

    pydeeplab runs ``m.path``; LiteRT and ONNX Runtime run ``m.litert_path`` (the model, or its
    builtin rewrite), and where there is none their rows say why.
    """
    content = m.path.read_bytes()
    peer_content = m.litert_path.read_bytes() if m.litert_path is not None else None
    rows, runners = [], []
    for n in threads:
        for rt in runtimes:
            row = {"model": m.name, "runtime": rt, "threads": n}
            ours = rt in PYDEEPLAB_RUNTIMES
            try:
                if not ours and peer_content is None:
                    raise Unavailable(f"no {SHORT.get(rt, rt)} figure: {m.litert_note}")
                runners.append(make_runner(rt, m.path if ours else m.litert_path, content if ours else peer_content,
                                           inputs, n, blas, onnx_cache, onnx_python))
            except Unavailable as exc:
                row["error"] = str(exc)
            except Exception as exc:  # a runtime that crashes on load is reported, not fatal
                row["error"] = f"{type(exc).__name__}: {exc}"
            rows.append(row)
    if log:
        log(f"{m.name}: timing {', '.join(f'{r.runtime}/{r.threads}t' for r in runners)}")
    failed = []
    for r in list(runners):  # a first run outside the timing: checks it runs at all
        try:
            r.before()
            r.invoke()
        except Exception as exc:
            failed.append(r)
            runners.remove(r)
            _row(rows, r)["error"] = f"invoke failed: {type(exc).__name__}: {exc}"
    if runners:
        measure(runners, repeat, max(0, warmup - 1), budget, pause)
    blas.restore()
    reference = _reference_outputs(runners)
    for r in runners:
        row = _row(rows, r)
        row.update(_stats(r.samples), **r.info)
        if reference is not None:
            ref_rt, ref_out = reference[r.threads] if r.threads in reference else next(iter(reference.values()))
            try:
                row["check"] = {"against": ref_rt, **_agreement(r.outputs()[0], ref_out)}
            except Exception as exc:
                row["check"] = {"against": ref_rt, "error": f"{type(exc).__name__}: {exc}"}
    return rows


def _row(rows: list[dict], r: Runner) -> dict:
    return next(x for x in rows if x["runtime"] == r.runtime and x["threads"] == r.threads)


def _reference_outputs(runners: list[Runner]) -> dict[int, tuple[str, np.ndarray]] | None:
    """Per thread count, the first output of the most exact LiteRT runner present (ref, builtin, default)."""
    out = {}
    for rt in ("ref", "builtin", "xnnpack"):
        for r in runners:
            if r.runtime == rt and r.threads not in out:
                out[r.threads] = (rt, r.outputs()[0])
    return out or None


def _stats(samples: list[float]) -> dict:
    """The statistics of a runner's timed runs, and the runs themselves in round order (``samples_ms``:
    run k of every runner is from round k, so that two runners' runs pair by round)."""
    return {"median_ms": statistics.median(samples) * 1e3, "min_ms": min(samples) * 1e3,
            "max_ms": max(samples) * 1e3, "samples": len(samples), "samples_ms": [round(s * 1e3, 4) for s in samples]}


def latency_in_children(models: list[Path], runtimes: Sequence[str], threads: Sequence[int], args: list[str],
                        machine: dict, log: Log | None) -> list[dict]:
    """Without threadpoolctl: each thread count in its own process, BLAS threads set by environment.

    The children's Numba threading facts are copied into ``machine``.
    """
    rows = []
    for n in threads:
        env = dict(os.environ, **{k: str(n) for k in BLAS_ENV}, **{CHILD_ENV: "1"})
        cmd = [sys.executable, str(SCRIPT), "--json", "--no-synth", "--sections", "latency", "--threads", str(n),
               "--backends", *runtimes, "--models", *map(str, models), *args]
        if log:
            log(f"latency at {n} thread(s) in a child process ({', '.join(f'{k}={n}' for k in BLAS_ENV)})")
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"latency child for {n} thread(s) failed: {done.stderr.strip()[-2000:]}")
        child = json.loads(done.stdout)
        rows.extend(child["latency"])
        for key in ("numba_threading_layer", "numba_num_threads"):
            if key in child["machine"]:
                machine[key] = child["machine"][key]
    return rows


