"""Matrix products inside Numba kernels: BLAS's ``cblas_sgemm`` / ``cblas_dgemm`` called from nopython code.

The convolution kernels run im2col, the matrix product and the output stage of a
block of output rows one after the other on the same thread, inside one Numba
parallel loop: the block stays in cache between the three steps, and Numba's
threads are the only threads at work (BLAS is held to one thread by the
interpreter, see ``pydeeplab.threads``).

The BLAS is the one NumPy already loaded (found in the process, see
:func:`pydeeplab.threads.cblas_gemm`). Its functions are registered with LLVM
under fixed names, so that the compiled kernels refer to them by name and stay
valid in Numba's on-disk cache across processes (a raw address would not).
The integer arguments are declared 64-bit: exact for ILP64 builds (NumPy's
wheels) and, on x86-64, harmless for 32-bit ``int`` builds, which read the low
half of each argument slot. Where no usable BLAS is found, a plain Numba loop
(slow but exact to the same tolerance) is registered under the same names.
"""

from __future__ import annotations

import platform
import warnings

import llvmlite.binding as ll
import numpy as np
from numba import cfunc, config, njit, types

_SGEMM = "pydeeplab_cblas_sgemm"
_DGEMM = "pydeeplab_cblas_dgemm"
_ROW_MAJOR, _NO_TRANS = 101, 111


def _signature(real):
    """cblas_?gemm(order, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); pointers as intp."""
    i32, i64, ptr = types.int32, types.int64, types.intp
    return types.void(i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64)


def _fallback(real):
    """A row-major, no-transpose GEMM as a C callback, for processes without a usable CBLAS."""
    dtype = np.float32 if real == types.float32 else np.float64
    sig = types.void(types.int32, types.int32, types.int32, types.int64, types.int64, types.int64, real,
                     types.CPointer(real), types.int64, types.CPointer(real), types.int64, real,
                     types.CPointer(real), types.int64)

    @cfunc(sig, nopython=True)
    def gemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):  # pragma: no cover
        for i in range(m):
            for j in range(n):
                c[i * ldc + j] = dtype(0.0) if beta == 0 else c[i * ldc + j] * beta
            for p in range(k):
                v = a[i * lda + p] * alpha
                for j in range(n):
                    c[i * ldc + j] += v * b[p * ldb + j]

    return gemm


def _register() -> bool:
    """Point the fixed symbol names at the process's BLAS; True if a real BLAS was found."""
    from ..threads import cblas_gemm

    found = cblas_gemm()
    if found is not None and (found.ilp64 or platform.machine().lower() in ("x86_64", "amd64")):
        ll.add_symbol(_SGEMM, found.sgemm)
        ll.add_symbol(_DGEMM, found.dgemm)
        return True
    # Said once (this runs once, at import): the convolutions stay exact but become many times slower.
    reason = ("no CBLAS sgemm/dgemm among the loaded libraries" if found is None
              else "its CBLAS takes 32-bit integers on a platform where passing 64-bit ones is unsafe")
    warnings.warn(f"pydeeplab's numba kernels multiply matrices with a plain Numba loop: {reason}. Results "
                  "are unchanged but convolutions are much slower; a NumPy built on OpenBLAS (the PyPI "
                  "wheels) avoids this", RuntimeWarning, stacklevel=2)
    global _FALLBACKS
    _FALLBACKS = (_fallback(types.float32), _fallback(types.float64))  # keep them alive
    ll.add_symbol(_SGEMM, _FALLBACKS[0].address)
    ll.add_symbol(_DGEMM, _FALLBACKS[1].address)
    return False


_FALLBACKS = ()
HAVE_BLAS = _register()

_sgemm = types.ExternalFunction(_SGEMM, _signature(types.float32))
_dgemm = types.ExternalFunction(_DGEMM, _signature(types.float64))


@njit(cache=True, nogil=True)
def gemm(a, b, c):
    """c = a @ b for 2-D float32 or float64 arrays (all one dtype), in the calling thread.

    a [M, K], b [K, N], c [M, N]: each row-contiguous (unit stride along the last
    axis; rows may be further apart, e.g. a slice of columns).
    """
    m, k = a.shape
    n = b.shape[1]
    if m == 0 or n == 0:
        return
    size = a.itemsize
    lda, ldb, ldc = a.strides[0] // size, b.strides[0] // size, c.strides[0] // size
    if size == 4:
        _sgemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, m, n, k, np.float32(1.0), a.ctypes.data, max(lda, k),
               b.ctypes.data, max(ldb, n), np.float32(0.0), c.ctypes.data, max(ldc, n))
    else:
        _dgemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, m, n, k, 1.0, a.ctypes.data, max(lda, k),
               b.ctypes.data, max(ldb, n), 0.0, c.ctypes.data, max(ldc, n))


if config.DISABLE_JIT:  # the kernels run as plain Python (coverage, debugging): NumPy multiplies

    def gemm(a, b, c):  # noqa: F811
        np.matmul(a, b, out=c)
