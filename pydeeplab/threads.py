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
spins measured 1.75x (idle) and about passive's time under load. libgomp reads
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

BLAS is found the way threadpoolctl finds it: among the shared libraries
loaded in the process, by the ``*openblas_set_num_threads*`` symbols (and
``cblas_?gemm`` for :func:`cblas_gemm`). Where none is found (another BLAS,
or an unknown platform) the limits are no-ops, and the first one says so with a warning.
"""

from __future__ import annotations

import ctypes
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

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
_GEMM_SYMBOLS = [  # (sgemm, dgemm, ILP64) as BLAS builds name them
    ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", True),
    ("cblas_sgemm64_", "cblas_dgemm64_", True),
    ("scipy_cblas_sgemm", "scipy_cblas_dgemm", False),
    ("cblas_sgemm", "cblas_dgemm", False),
]
_lock = threading.Lock()
_libs: list[ctypes.CDLL] | None = None
_blas: list[tuple[Callable, Callable]] | None = None


_numba_started = False


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


#: Substrings of the file names of BLAS libraries (OpenBLAS, MKL, BLIS, Accelerate).
_BLAS_NAMES = ("blas", "mkl", "blis", "accelerate", "veclib")


def _blas_libraries() -> list[ctypes.CDLL]:
    """The loaded shared libraries whose file name says BLAS."""
    global _libs
    with _lock:
        if _libs is None:
            import numpy  # noqa: F401  (loads NumPy's BLAS if it is not yet loaded)

            try:
                with open("/proc/self/maps") as f:
                    paths = sorted({line.split()[-1] for line in f if "/" in line
                                    and any(n in line.rsplit("/", 1)[-1].lower() for n in _BLAS_NAMES)})
            except OSError:
                paths = []
            libs = []
            for path in paths:
                try:
                    libs.append(ctypes.CDLL(path))
                except OSError:
                    continue
            _libs = libs
        return _libs


def _find_blas() -> list[tuple[Callable, Callable]]:
    global _blas
    if _blas is None:
        found = []
        for lib in _blas_libraries():
            for set_name, get_name in _SYMBOLS:
                if hasattr(lib, set_name) and hasattr(lib, get_name):
                    setter, getter = getattr(lib, set_name), getattr(lib, get_name)
                    setter.argtypes, setter.restype, getter.restype = [ctypes.c_int], None, ctypes.c_int
                    found.append((setter, getter))
                    break
        _blas = found
    return _blas


class GemmFunctions(NamedTuple):
    """Addresses of a loaded BLAS's ``cblas_sgemm`` and ``cblas_dgemm``; ``ilp64``: 64-bit integers."""

    sgemm: int
    dgemm: int
    ilp64: bool


def cblas_gemm() -> GemmFunctions | None:
    """The CBLAS matrix products of the BLAS NumPy loaded, or None if none is found."""
    for lib in _blas_libraries():
        for s_name, d_name, ilp64 in _GEMM_SYMBOLS:
            if hasattr(lib, s_name) and hasattr(lib, d_name):
                address = lambda name: ctypes.cast(getattr(lib, name), ctypes.c_void_p).value  # noqa: E731
                return GemmFunctions(address(s_name), address(d_name), ilp64)
    return None


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
