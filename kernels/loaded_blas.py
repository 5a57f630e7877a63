"""The BLAS this process has loaded (NumPy's): its shared libraries and its ``cblas_?gemm``.

Found the way threadpoolctl finds it: among the shared libraries mapped into the
process (``/proc/self/maps``), by file name, then by the symbols OpenBLAS builds
export. :mod:`.blas` registers the matrix products for the Numba kernels;
``pydeeplab.threads`` sets the library's thread count. No Numba here, so that the
NumPy backend can use it too.
"""

from __future__ import annotations

import ctypes
import threading
from typing import NamedTuple

#: Substrings of the file names of BLAS libraries (OpenBLAS, MKL, BLIS, Accelerate).
_BLAS_NAMES = ("blas", "mkl", "blis", "accelerate", "veclib")
_GEMM_SYMBOLS = [  # (sgemm, dgemm, ILP64) as BLAS builds name them
    ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", True),
    ("cblas_sgemm64_", "cblas_dgemm64_", True),
    ("scipy_cblas_sgemm", "scipy_cblas_dgemm", False),
    ("cblas_sgemm", "cblas_dgemm", False),
]
_lock = threading.Lock()
_libs: list[ctypes.CDLL] | None = None


def blas_libraries() -> list[ctypes.CDLL]:
    """The loaded shared libraries whose file name says BLAS (empty where none is found)."""
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


class GemmFunctions(NamedTuple):
    """Addresses of a loaded BLAS's ``cblas_sgemm`` and ``cblas_dgemm``; ``ilp64``: 64-bit integers."""

    sgemm: int
    dgemm: int
    ilp64: bool


def cblas_gemm() -> GemmFunctions | None:
    """The CBLAS matrix products of the BLAS NumPy loaded, or None if none is found."""
    for lib in blas_libraries():
        for s_name, d_name, ilp64 in _GEMM_SYMBOLS:
            if hasattr(lib, s_name) and hasattr(lib, d_name):
                address = lambda name: ctypes.cast(getattr(lib, name), ctypes.c_void_p).value  # noqa: E731
                return GemmFunctions(address(s_name), address(d_name), ilp64)
    return None
