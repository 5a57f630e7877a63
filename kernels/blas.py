"""Matrix products inside Numba kernels: BLAS's ``cblas_sgemm`` called from nopython code (the float convolutions).

The convolution kernels run im2col, the matrix product and the output stage of a
block of output rows one after the other on the same thread, inside one Numba
parallel loop: the block stays in cache between the three steps, and Numba's
threads are the only threads at work (BLAS is held to one thread by the
interpreter).

The BLAS is the one NumPy already loaded (found in the process, see
:func:`.loaded_blas.cblas_gemm`). Its sgemm is registered with LLVM under a
fixed name, so that the compiled kernels refer to them by name and stay
valid in Numba's on-disk cache across processes (a raw address would not).
The integer arguments are declared 64-bit: exact for ILP64 builds (NumPy's
wheels) and, on x86-64, harmless for 32-bit ``int`` builds, which read the low
half of each argument slot. Where no usable BLAS is found, a plain Numba loop
(slow but exact to the same tolerance) is registered under the same name.
"""

from __future__ import annotations

import platform
import warnings

import llvmlite.binding as ll
import numpy as np
from numba import cfunc, config, njit, types

from .loaded_blas import cblas_gemm

_SGEMM = "pydeeplab_cblas_sgemm"
_ROW_MAJOR, _NO_TRANS = 101, 111


def _signature():
    """cblas_sgemm(order, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); pointers as intp."""
    i32, i64, f32, ptr = types.int32, types.int64, types.float32, types.intp
    return types.void(i32, i32, i32, i64, i64, i64, f32, ptr, i64, ptr, i64, f32, ptr, i64)


def _fallback():
    """A row-major, no-transpose sgemm as a C callback, for processes without a usable CBLAS."""
    f32, i64, ptr = types.float32, types.int64, types.CPointer(types.float32)
    sig = types.void(types.int32, types.int32, types.int32, i64, i64, i64, f32, ptr, i64, ptr, i64, f32, ptr, i64)

    @cfunc(sig, nopython=True)
    def gemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):  # pragma: no cover
        for i in range(m):
            for j in range(n):
                c[i * ldc + j] = np.float32(0.0) if beta == 0 else c[i * ldc + j] * beta
            for p in range(k):
                v = a[i * lda + p] * alpha
                for j in range(n):
                    c[i * ldc + j] += v * b[p * ldb + j]

    return gemm


def _register() -> bool:
    """Point the fixed symbol names at the process's BLAS; True if a real BLAS was found."""
    found = cblas_gemm()
    if found is not None and (found.ilp64 or platform.machine().lower() in ("x86_64", "amd64")):
        ll.add_symbol(_SGEMM, found.sgemm)
        return True
    # Said once (this runs once, at import): the convolutions stay exact but become many times slower.
    reason = ("no CBLAS sgemm among the loaded libraries" if found is None
              else "its CBLAS takes 32-bit integers on a platform where passing 64-bit ones is unsafe")
    warnings.warn(f"pydeeplab's numba kernels multiply matrices with a plain Numba loop: {reason}. Results "
                  "are unchanged but convolutions are much slower; a NumPy built on OpenBLAS (the PyPI "
                  "wheels) avoids this", RuntimeWarning, stacklevel=2)
    global _FALLBACK
    _FALLBACK = _fallback()  # kept alive
    ll.add_symbol(_SGEMM, _FALLBACK.address)
    return False


_FALLBACK = None
HAVE_BLAS = _register()

_sgemm = types.ExternalFunction(_SGEMM, _signature())


@njit(cache=True, nogil=True)
def gemm(a, b, c):
    """c = a @ b for 2-D float32 arrays, in the calling thread.

    a [M, K], b [K, N], c [M, N]: each row-contiguous (unit stride along the last
    axis; rows may be further apart, e.g. a slice of columns).
    """
    m, k = a.shape
    n = b.shape[1]
    if m == 0 or n == 0:
        return
    lda, ldb, ldc = a.strides[0] // 4, b.strides[0] // 4, c.strides[0] // 4
    _sgemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, m, n, k, np.float32(1.0), a.ctypes.data, max(lda, k),
           b.ctypes.data, max(ldb, n), np.float32(0.0), c.ctypes.data, max(ldc, n))


if config.DISABLE_JIT:  # the kernels run as plain Python (coverage, debugging): NumPy multiplies

    def gemm(a, b, c):  # noqa: F811
        np.matmul(a, b, out=c)
