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

That arithmetic is one chain of dependent multiply-adds: it waits on each result and leaves most
of a core's multiply-add units idle, so it runs as fast on the two hyperthreads of one host core
as on two cores. A convolution keeps the units busy, and two of its threads on one core's
hyperthreads share them. The second check (``work="wide"``) measures that: sixteen independent
chains a thread, two multiply-adds issued every cycle, all a core can take. The host places the
guest's CPUs where it likes. Measured here (2 CPUs, idle guest): 300 rounds of 0.5 ms split over an
OpenMP team of 2, back to back: one chain
1.8x faster on 2 threads than on 1 (median), sixteen chains 1.53-1.74x (medians of four runs; 9-26%
of the rounds under 1.3x; the fastest 1.98x); this check's wide probes, 2 threads against 1, medians
1.05-1.15x (ceilings 1.74-1.90x) with 90th percentiles of 1.27-2.01x. So a compute-bound kernel's
2-thread speedup over the same minutes is bounded by about ``2 / ratio`` of the wide check
(:func:`ceiling`).
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


@njit(cache=True, nogil=True, fastmath={"contract"})
def _busy_wide(steps):
    """Sixteen independent chains of fused multiply-adds (four cycles each, two issued a cycle): all
    the multiply-add units of a core busy, no memory traffic. Numba's chains of scalars do not
    become vectors, so each step is sixteen scalar FMAs."""
    a = b = c = d = e = f = g = h = 1.0 / (steps + 1)
    i = j = k = l = m = n = o = p = 2.0 / (steps + 1)
    for _ in range(steps):
        a = a * 0.999999 + 0.5; b = b * 0.999999 + 0.5; c = c * 0.999999 + 0.5; d = d * 0.999999 + 0.5  # noqa: E702
        e = e * 0.999999 + 0.5; f = f * 0.999999 + 0.5; g = g * 0.999999 + 0.5; h = h * 0.999999 + 0.5  # noqa: E702
        i = i * 0.999999 + 0.5; j = j * 0.999999 + 0.5; k = k * 0.999999 + 0.5; l = l * 0.999999 + 0.5  # noqa: E702,E741
        m = m * 0.999999 + 0.5; n = n * 0.999999 + 0.5; o = o * 0.999999 + 0.5; p = p * 0.999999 + 0.5  # noqa: E702
    return a + b + c + d + e + f + g + h + i + j + k + l + m + n + o + p


#: The two kinds of work of the check: one dependent chain, and sixteen independent ones.
WORK = {"chain": _busy, "wide": _busy_wide}


def _alone(busy, steps: int) -> float:
    start = time.perf_counter()
    busy(steps)
    return time.perf_counter() - start


def _together(busy, steps: int, n: int) -> float:
    """Seconds until all of ``n`` threads, started together, finished ``busy(steps)`` each."""
    gate = threading.Barrier(n + 1)
    done: list[float] = []

    def work() -> None:
        gate.wait()
        busy(steps)
        done.append(time.perf_counter())

    workers = [threading.Thread(target=work) for _ in range(n)]
    for w in workers:
        w.start()
    gate.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    return max(done) - start


def cpu_overlap(n: int = 2, probes: int = 30, busy_s: float = 0.005, pause: float = 0.02, work: str = "chain") -> dict:
    """``probes`` rounds, each a pause (:func:`.latency.settle`), one thread busy ``busy_s`` alone,
    a pause, then ``n`` threads busy as long each at once, on ``work`` (:data:`WORK`). Returns the
    ratios' median, 90th percentile and largest, and the share of rounds above :data:`IN_TURNS`."""
    busy = WORK[work]
    busy(10)  # compiled (or loaded) before anything is timed
    steps = 100_000
    while _alone(busy, steps) < busy_s / 4:
        steps *= 2
    steps = int(steps * busy_s / min(_alone(busy, steps) for _ in range(3)))
    ratios = []
    for _ in range(probes):
        settle(pause)
        one = _alone(busy, steps)
        settle(pause)
        ratios.append(_together(busy, steps, n) / one)
    ratios.sort()
    return {"threads": n, "probes": probes, "busy_ms": busy_s * 1e3, "work": work, "median": statistics.median(ratios),
            "p90": ratios[min(len(ratios) - 1, int(0.9 * len(ratios)))], "max": ratios[-1],
            "in_turns": sum(r > IN_TURNS for r in ratios) / len(ratios)}


def ceiling(check: dict) -> float:
    """The speedup ``n`` threads can reach over one at most, by the check's median: ``n / median``."""
    return check["threads"] / check["median"]


def describe(check: dict) -> str:
    """One line for BENCHMARKS.md."""
    if check.get("work") == "wide":
        return (f"{check['threads']} threads each keeping a core's multiply-add units busy for {check['busy_ms']:.0f} ms "
                f"took {check['median']:.2f}x the time of one alone (median of {check['probes']} probes; 90th "
                f"percentile {check['p90']:.2f}x, largest {check['max']:.2f}x): a compute-bound kernel's "
                f"{check['threads']}-thread speedup could reach {ceiling(check):.2f}x at most")
    return (f"{check['threads']} threads each busy {check['busy_ms']:.0f} ms on arithmetic took {check['median']:.2f}x "
            f"the time of one alone (median of {check['probes']} probes; 90th percentile {check['p90']:.2f}x, "
            f"largest {check['max']:.2f}x; above {IN_TURNS}x, the host running the CPUs in turns, in "
            f"{check['in_turns']:.0%} of them)")


__all__ = ["IN_TURNS", "WORK", "ceiling", "cpu_overlap", "describe"]
