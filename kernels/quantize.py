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

import math

import numpy as np
from numba import njit

_INT32_MIN = -(2**31)


@njit(cache=True)
def quantize_per_tensor(x, scale, zero_point, qmin, qmax, out):
    """out[i] = clamp(int32(round(x[i] / scale)) + zero_point, qmin, qmax).

    x: float32 [N]; scale: float32; zero_point, qmin, qmax: int64; out: [N] int8/uint8/int16.
    """
    for i in range(x.shape[0]):
        v = x[i] / scale  # float32 / float32 stays float32, as in TFLite
        # floor(|v| + 0.5) in float64 is exact std::round of a float32 (the sum cannot round).
        r = math.floor(abs(np.float64(v)) + 0.5)
        if v < 0:
            r = -r
        if r >= -2147483648.0 and r < 2147483648.0:  # False for NaN as well
            q = np.int64(r)
        else:
            q = np.int64(_INT32_MIN)
        q = ((q + zero_point - _INT32_MIN) & 0xFFFFFFFF) + _INT32_MIN  # int32 wrap-around
        out[i] = min(max(q, qmin), qmax)


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
