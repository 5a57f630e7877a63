"""QUANTIZE float32 -> 8/16-bit per tensor, and DEQUANTIZE 8-bit -> float32 per tensor.

An 8-bit input has 256 values, so 8-bit requantization is a table lookup
(``elementwise.py``); DEQUANTIZE is arithmetic here because it is exact in float32 and
vectorizes where a lookup does not (see :func:`dequantize_8bit`). A float input is not a
table, and the NumPy twin
(``pydeeplab.reference.quantize.quantize``) makes a dozen full-size temporaries to
round half away from zero. This is the same arithmetic in one pass: the quotient
in float32 (TFLite divides, it does not multiply by a reciprocal), ``std::round``,
``static_cast<int32_t>`` as x86 does it (NaN and out-of-range quotients become
INT32_MIN), the zero point added with int32 wrap-around, then the clamp.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_INT32_MIN = -(2**31)


@njit(cache=True, error_model="numpy")  # (no zero-division check: a branch in the loop)
def quantize_per_tensor(x, scale, zero_point, qmin, qmax, out):
    """out[i] = clamp(int32(round(x[i] / scale)) + zero_point, qmin, qmax).

    x: float32 [N]; scale: float32; zero_point, qmin, qmax: int64; out: [N] int8/uint8/int16.
    Exact float32 steps and selects only, so that the loop vectorizes (257x257x3: 0.096 ->
    0.062 ms, most of it the division): ``std::round`` as the truncation plus one step away
    from zero where the dropped fraction (exact in float32) is at least one half.
    """
    zp, lo, hi = np.int32(zero_point), np.int32(qmin), np.int32(qmax)
    limit = np.float32(2147483648.0)
    for i in range(x.shape[0]):
        v = x[i] / scale  # float32 / float32 stays float32, as in TFLite
        t = np.trunc(v)
        away = np.float32(1.0) if v > 0 else np.float32(-1.0)
        r = t + away if np.abs(v - t) >= np.float32(0.5) else t
        in_range = (r >= -limit) & (r < limit)  # False for NaN as well
        q = np.int32(r) if in_range else np.int32(_INT32_MIN)
        q = np.int32(q + zp)  # the int32 sum wraps
        out[i] = min(max(q, lo), hi)


@njit(cache=True, nogil=True)
def dequantize_8bit(x, zero_point, scale, out):
    """out[i] = float32(x[i] - zero_point) * scale: DEQUANTIZE per tensor, x [N] uint8/int8 ->
    out [N] float32; zero_point int32, scale float32.

    TFLite multiplies in double, then rounds to float. For 8-bit inputs the exact product has
    at most 33 significant bits (a float32 scale times |x - zero_point| <= 255), so double
    holds it exactly and both round the same exact value once: float32 arithmetic gives the
    same bits and vectorizes (1 thread, [1,257,257,21] int8: 0.53 ms as a table lookup ->
    0.27 ms). The NumPy twin is ``pydeeplab.reference.quantize.dequantize``.
    """
    for i in range(x.shape[0]):
        out[i] = np.float32(np.int32(x[i]) - zero_point) * scale
