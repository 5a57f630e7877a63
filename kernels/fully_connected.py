"""FULLY_CONNECTED kernel (Numba) for uint8 / int8: int32 accumulation, double rescale.

The NumPy twin is ``pydeeplab.reference.fully_connected``, which documents the
arithmetic (TFLite's reference kernels: ``round(acc * s_in * s_w / s_out)`` in double,
ties away from zero). Parallel over rows; each row is offset once, then every unit is
a dot product of small integers accumulated exactly in int64 and wrapped to int32 as
TFLite's accumulator would.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_INT32_MIN = -(2**31)


@njit(cache=True, parallel=True, nogil=True)
def fully_connected_quantized(x, w_offset, bias, input_offset, scale, output_offset, act_min, act_max, out):
    """out[r, u] = clamp(round(wrap32(sum_d (x[r, d] + input_offset) * w_offset[u, d] + bias[u]) * scale[u])
    + output_offset).

    x: uint8/int8 [rows, depth]; w_offset: int32 [units, depth], the weights minus their zero
    point; bias: int32 [units] (zeros without a bias); scale: float64 [units]; out: [rows, units].
    """
    rows, depth = x.shape
    units = w_offset.shape[0]
    for r in prange(rows):
        xo = np.empty(depth, dtype=np.int32)
        for d in range(depth):
            xo[d] = np.int32(x[r, d]) + input_offset
        for u in range(units):
            acc = np.int64(0)
            for d in range(depth):
                acc += np.int64(xo[d]) * np.int64(w_offset[u, d])
            acc += bias[u]
            acc = ((acc - _INT32_MIN) & 0xFFFFFFFF) + _INT32_MIN
            v = np.float64(acc) * scale[u]
            t = math.trunc(v)
            if abs(v - t) >= 0.5:
                t += 1.0 if v > 0 else -1.0
            y = np.int64(t) + output_offset
            out[r, u] = min(max(y, act_min), act_max)
