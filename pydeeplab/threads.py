"""Thread policy: who uses the cores during an invoke.

On the numba backend there is one pool of threads at work: Numba's. Every
kernel, the convolutions' matrix products included, runs inside a Numba
parallel loop, each thread calling BLAS itself on its own rows
(``pydeeplab.kernels.blas``). BLAS's own threads must then stay out of the
way: OpenBLAS's workers spin for a while after each call, and when they and
Numba's threads are both active on a small machine they starve each other
(measured: the float model's convolutions 18 ms alone, over 300 ms with both
pools busy). So during an invoke BLAS is held to one thread
(:func:`blas_threads`).

Numba's OpenMP threads (GNU libgomp) by default spin for milliseconds after
each parallel region before they sleep. When the cores are shared with other
processes, a spinning team makes every region wait for descheduled threads
(measured on a loaded 2-core machine, float model: 2 threads 385 ms against 57
ms for 1). Sleeping at once pays a futex wake-up at every kernel, which on an idle
machine costs all of the gain. A spin that bridges the Python between two kernels
and gives up soon after is the compromise; measured on this 2-core machine, 257 float
model, 2 threads against 1 (medians), idle: 1000 spins 0.86-1.22x, 3000 1.35-1.44x,
30000 1.58-1.59x, libgomp's 300000 1.17-1.60x (pascal_quant: 1000 1.40x, 30000
1.66x); with one other busy process: 1000 0.76x, 10000 0.48x, 30000 0.28x, 300000
0.06-0.12x. On a busy machine one thread is faster whatever the count
(``num_threads=1``). (Earlier figures here, 1000 spins 1.75x, were taken when the count
was not applied: the default backend did not call :func:`start_numba_threads`.) libgomp reads
``GOMP_SPINCOUNT`` once, when it is loaded, which is when Numba starts its
threads. So, unless the user has chosen a wait policy, :func:`start_numba_threads`
(called when a numba-backend Interpreter is made) sets the variable for exactly
that moment and restores the environment after: importing pydeeplab changes no
environment variable, and child processes do not inherit ours. If Numba's
threads were already started (by other code), or its threading layer is not
OpenMP, the spin count does not apply. Numba's other CPU
threading layer, ``workqueue``, sleeps between regions too and, as its main
thread does not take a share of the work, was slower at one thread and at two
(1.28x).

Where a sleeping worker is woken matters as much. Linux wakes a thread on the CPU of the thread
that woke it when that looks cheaper than waking an idle CPU, so after an idle spell (between
two images) the OpenMP worker often wakes on the CPU the Python thread is running on: the two
then take turns on one CPU, each spinning while the other waits, until the load balancer
parts them some milliseconds later. Measured on this 2-core machine (libgomp alone, in C, and
Numba alike), a trivial parallel region after a 20 ms sleep: 0.8-1.0 ms each for the next ten
regions, against 1 us once parted and 0.1 ms for the first one when the worker may not run on
the caller's CPU. So :func:`keep_workers_apart` restricts this thread's OpenMP workers to the
allowed CPUs but the one the calling thread is on, at the start of every run on 2 threads or
more, and again only when the caller has moved (one ``sched_getcpu`` call a run). The calling
thread itself is never bound. Linux and Numba's OpenMP layer only (elsewhere it does nothing).
What it cannot help: when the host is busy, the idle virtual CPU the worker sleeps on may itself
wait for the host's scheduler (seen here, with the caller and the worker each bound to a CPU of
its own: 0.5-1 ms a region for the first few milliseconds after an idle spell).

BLAS is found the way threadpoolctl finds it: among the shared libraries
loaded in the process (``pydeeplab.kernels.loaded_blas``, which also gives the
kernels their ``cblas_?gemm``), by the ``*openblas_set_num_threads*`` symbols.
Where none is found (another BLAS, or an unknown platform) the limits are
no-ops, and the first one says so with a warning.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .kernels.loaded_blas import blas_libraries

#: libgomp's spin count before an idle worker sleeps (its default is 300000, a
#: few milliseconds): enough to bridge the Python between two kernels (tens of
#: microseconds); see the module docstring for the figures.
OPENMP_SPIN_COUNT = "30000"

_SYMBOLS = [  # (set, get) pairs as OpenBLAS builds name them
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
]
_lock = threading.Lock()
_blas: list[tuple[Callable, Callable]] | None = None
_numba_started = False
_placement = threading.local()  # .size, .workers (Linux thread ids), .allowed, .cpu: this thread's team


def start_numba_threads() -> None:
    """Start Numba's thread pool, its OpenMP workers spinning only briefly when idle.

    Unless the user chose a policy (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` set),
    ``GOMP_SPINCOUNT`` is set while Numba loads its threading layer (libgomp reads it
    then, once) and removed right after, so ``os.environ`` ends as it began.
    Does nothing after the first call.
    """
    global _numba_started
    with _lock:
        if _numba_started:
            return
        import numba

        if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
            numba.get_num_threads()  # starts the pool
        else:
            os.environ["GOMP_SPINCOUNT"] = OPENMP_SPIN_COUNT
            try:
                numba.get_num_threads()
            finally:
                del os.environ["GOMP_SPINCOUNT"]
        _numba_started = True


@functools.cache
def _sched_getcpu() -> Callable[[], int] | None:
    """glibc's ``sched_getcpu``, or None where there is none (not Linux)."""
    if not (sys.platform.startswith("linux") and hasattr(os, "sched_setaffinity")):
        return None
    try:
        getcpu = ctypes.CDLL(None).sched_getcpu
    except (OSError, AttributeError):
        return None
    getcpu.argtypes, getcpu.restype = [], ctypes.c_int
    return getcpu


def keep_workers_apart(n: int) -> None:
    """Keep the OpenMP workers of this thread's team of ``n`` off the CPU this thread is on (see
    the module docstring): they may run on every other CPU the process is allowed. Called at the
    start of a run inside :func:`pydeeplab.kernels.parallel.team`; costs one ``sched_getcpu``
    unless the calling thread has moved since the last run."""
    getcpu = _sched_getcpu() if n > 1 else None
    if getcpu is None:
        return
    state = _placement
    if getattr(state, "size", None) != n:
        import numba

        from .kernels.parallel import team_thread_ids

        ids, me = team_thread_ids(n), threading.get_native_id()  # (the first launch starts the layer)
        omp = numba.threading_layer() == "omp"
        state.size, state.cpu, state.allowed = n, None, os.sched_getaffinity(0)
        state.workers = [tid for tid in ids if tid != me] if omp else []
    cpu = getcpu()
    if cpu == state.cpu or not state.workers:
        return
    others = state.allowed - {cpu}
    if others:
        for tid in state.workers:
            try:
                os.sched_setaffinity(tid, others)
            except OSError:  # the thread gone, or not ours to bind: leave it where it is
                pass
    state.cpu = cpu


def _find_blas() -> list[tuple[Callable, Callable]]:
    global _blas
    if _blas is None:
        found = []
        for lib in blas_libraries():
            for set_name, get_name in _SYMBOLS:
                if hasattr(lib, set_name) and hasattr(lib, get_name):
                    setter, getter = getattr(lib, set_name), getattr(lib, get_name)
                    setter.argtypes, setter.restype, getter.restype = [ctypes.c_int], None, ctypes.c_int
                    found.append((setter, getter))
                    break
        _blas = found
    return _blas


_said_no_blas_control = False


@contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Hold BLAS to ``n`` threads inside the block, restoring the previous setting after.

    Where no OpenBLAS thread control is found this cannot be done: said once, with a warning.
    """
    global _said_no_blas_control
    libs = _find_blas()
    if not libs and not _said_no_blas_control:
        _said_no_blas_control = True
        warnings.warn("pydeeplab found no OpenBLAS thread control in this process (another BLAS, or none), "
                      "so it cannot hold BLAS to one thread while Numba's threads run: results are "
                      "unchanged, but the two thread pools may slow each other down (set the BLAS's own "
                      "thread variable, e.g. MKL_NUM_THREADS=1, if they do)", RuntimeWarning, stacklevel=3)
    before = [get() for _, get in libs]
    for (set_, _), b in zip(libs, before):
        if b != n:
            set_(n)
    try:
        yield
    finally:
        for (set_, _), b in zip(libs, before):
            if b != n:
                set_(b)
