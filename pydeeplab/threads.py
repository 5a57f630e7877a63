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
ms for 1). Sleeping at once (``OMP_WAIT_POLICY=passive``) is safe under load
but pays a futex wake-up at every kernel, which on an idle machine costs most
of the gain (2 threads 1.3x faster than 1). A short spin bridges the few
microseconds of Python between two kernels and gives up soon after: 1000
spins measured 1.75x (idle) and about passive's time under load. Unless the
user has chosen a wait policy, :func:`configure_openmp` (called on import,
before Numba starts its threads) sets that spin count. Numba's other CPU
threading layer, ``workqueue``, sleeps between regions too and, as its main
thread does not take a share of the work, was slower at one thread and at two
(1.28x).

BLAS is found the way threadpoolctl finds it: among the shared libraries
loaded in the process (``pydeeplab.kernels.loaded_blas``, which also gives the
kernels their ``cblas_?gemm``), by the ``*openblas_set_num_threads*`` symbols.
Where none is found (another BLAS, or an unknown platform) the limits are no-ops.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .kernels.loaded_blas import blas_libraries

#: libgomp's spin count before an idle worker sleeps (its default is 300000, a
#: few milliseconds): enough to bridge the Python between two kernels (tens of
#: microseconds). 300 spins measured 1.46x at 2 threads, 1000 1.75x, 3000 1.81x;
#: under load 5000 already made 2 threads 1.7x slower than 1.
OPENMP_SPIN_COUNT = "1000"

_SYMBOLS = [  # (set, get) pairs as OpenBLAS builds name them
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
]
_blas: list[tuple[Callable, Callable]] | None = None


def configure_openmp() -> None:
    """Let idle OpenMP workers sleep after a short spin, unless the user chose a policy.

    Takes effect only if libgomp is not loaded yet (it reads its environment once).
    """
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = OPENMP_SPIN_COUNT


configure_openmp()


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


@contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Hold BLAS to ``n`` threads inside the block, restoring the previous setting after."""
    libs = _find_blas()
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
