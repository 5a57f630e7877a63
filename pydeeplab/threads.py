"""Thread policy: who uses the cores during an invoke.

The Numba kernels run their own parallel loops, and NumPy's BLAS (OpenBLAS)
has worker threads of its own that spin for a while after each call. When
both pools are active on a small machine they starve each other (measured: the
float model's convolutions 18 ms alone, over 300 ms with both pools busy).
So during an invoke on the numba backend BLAS is held to one thread, and the
parallelism is ours: Numba's threads for the kernels, and :func:`parallel_rows`
for splitting large matrix products across a small pool of Python threads
(NumPy releases the GIL inside matmul).

BLAS is found the way threadpoolctl finds it: among the shared libraries
loaded in the process, by the ``*openblas_set_num_threads*`` symbols. Where none
is found (another BLAS, or an unknown platform) the limits are no-ops.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

_SYMBOLS = [  # (set, get) pairs as OpenBLAS builds name them
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
]
_blas: list[tuple[Callable, Callable]] | None = None
_blas_lock = threading.Lock()


def _find_blas() -> list[tuple[Callable, Callable]]:
    global _blas
    with _blas_lock:
        if _blas is None:
            import numpy  # noqa: F401  (loads NumPy's BLAS if it is not yet loaded)

            found = []
            try:
                with open("/proc/self/maps") as f:
                    paths = sorted({line.split()[-1] for line in f if "blas" in line.lower() and "/" in line})
            except OSError:
                paths = []
            for path in paths:
                try:
                    lib = ctypes.CDLL(path)
                except OSError:
                    continue
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
    for set_, _ in libs:
        set_(n)
    try:
        yield
    finally:
        for (set_, _), b in zip(libs, before):
            set_(b)


_pools: dict[int, ThreadPoolExecutor] = {}


def _pool(n: int) -> ThreadPoolExecutor:
    with _blas_lock:
        if n not in _pools:
            _pools[n] = ThreadPoolExecutor(max_workers=n, thread_name_prefix="pydeeplab")
        return _pools[n]


_local = threading.local()


def set_invoke_threads(n: int) -> None:
    """The thread count :func:`parallel_rows` uses in the current thread (set by invoke)."""
    _local.threads = n


def parallel_rows(rows: int, work: Callable[[int, int], None], min_rows: int = 256) -> None:
    """Call ``work(start, stop)`` over ``range(rows)`` split into one chunk per invoke thread.

    For GIL-releasing work (a matmul into a slice of the output). Runs inline
    when there is one thread or too few rows to be worth splitting.
    """
    n = getattr(_local, "threads", 1)
    if n <= 1 or rows < 2 * min_rows:
        work(0, rows)
        return
    n = min(n, rows // min_rows)
    bounds = [rows * i // n for i in range(n + 1)]
    futures = [_pool(n).submit(_single_threaded, work, bounds[i], bounds[i + 1]) for i in range(1, n)]
    _single_threaded(work, bounds[0], bounds[1])
    for f in futures:
        f.result()


def _single_threaded(work: Callable[[int, int], None], start: int, stop: int) -> None:
    """Run one chunk with Numba's parallel loops on one thread: the chunks are the parallelism."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        work(start, stop)
    finally:
        numba.set_num_threads(before)
