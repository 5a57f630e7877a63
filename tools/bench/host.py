"""Whether the host runs this machine's CPUs at the same time: the check behind the 2-thread figures.

A virtual machine's CPUs are threads of its host. When the host has fewer free cores than the
guest has CPUs, it runs them in turns: two threads of the guest then both run (as the guest sees
it) but each at a fraction of its speed, and no runtime's 2-thread time can halve its 1-thread
time. Firecracker-style guests report no steal time for this, so it is measured: a thread busy on
pure arithmetic for a few milliseconds alone, then two threads each doing the same at once; where
the host gives each CPU a core of its own the two take as long as the one (ratio 1.0), where it
runs them in turns up to twice as long (2.0). Measured on this machine (2 CPUs): rounds of 28 ms
and rounds of 50 ms of the pascal_quant model on 2 threads, each thread on CPU (the guest's
schedstat) for the whole round in both.
"""

from __future__ import annotations

import statistics
import threading
import time

from numba import njit

from .latency import settle

#: The ratio above which a probe counts as the host running the CPUs in turns (at full overlap 1.0,
#: in strict turns 2.0).
IN_TURNS = 1.5


@njit(cache=True, nogil=True)
def _busy(steps):
    """A chain of dependent multiply-adds: arithmetic only, no memory traffic to share."""
    x = 1.0 / (steps + 1)  # (from the argument: nothing for the compiler to fold)
    for _ in range(steps):
        x = x * 0.999999 + 0.5
    return x


def _alone(steps: int) -> float:
    start = time.perf_counter()
    _busy(steps)
    return time.perf_counter() - start


def _together(steps: int, n: int) -> float:
    """Seconds until all of ``n`` threads, started together, finished ``_busy(steps)`` each."""
    gate = threading.Barrier(n + 1)
    done: list[float] = []

    def work() -> None:
        gate.wait()
        _busy(steps)
        done.append(time.perf_counter())

    workers = [threading.Thread(target=work) for _ in range(n)]
    for w in workers:
        w.start()
    gate.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    return max(done) - start


def cpu_overlap(n: int = 2, probes: int = 30, busy_s: float = 0.005, pause: float = 0.02) -> dict:
    """``probes`` rounds, each a pause (:func:`.latency.settle`), one thread busy ``busy_s`` alone,
    a pause, then ``n`` threads busy as long each at once. Returns the ratios' median, 90th
    percentile and largest, and the share of rounds above :data:`IN_TURNS`."""
    _busy(10)  # compiled (or loaded) before anything is timed
    steps = 100_000
    while _alone(steps) < busy_s / 4:
        steps *= 2
    steps = int(steps * busy_s / min(_alone(steps) for _ in range(3)))
    ratios = []
    for _ in range(probes):
        settle(pause)
        one = _alone(steps)
        settle(pause)
        ratios.append(_together(steps, n) / one)
    ratios.sort()
    return {"threads": n, "probes": probes, "busy_ms": busy_s * 1e3, "median": statistics.median(ratios),
            "p90": ratios[min(len(ratios) - 1, int(0.9 * len(ratios)))], "max": ratios[-1],
            "in_turns": sum(r > IN_TURNS for r in ratios) / len(ratios)}


def describe(check: dict) -> str:
    """One line for BENCHMARKS.md."""
    return (f"{check['threads']} threads each busy {check['busy_ms']:.0f} ms on arithmetic took {check['median']:.2f}x "
            f"the time of one alone (median of {check['probes']} probes; 90th percentile {check['p90']:.2f}x, "
            f"largest {check['max']:.2f}x; above {IN_TURNS}x, the host running the CPUs in turns, in "
            f"{check['in_turns']:.0%} of them)")


__all__ = ["IN_TURNS", "cpu_overlap", "describe"]
