"""Resize kernels (Numba): bilinear (float formula and TFLite's integer formula) and nearest neighbour.

The per-axis source indices and weights are computed once at plan time
(``pydeeplab.ops.resize``); these kernels only gather and blend, channels innermost.
Each does part t of nt of the output rows (batch x output height), run on Numba's
threads by :func:`pydeeplab.kernels.parallel.in_parallel`: as ``prange`` loops they
cost half as much compile again on a cold cache (the float kernel 1.15 s -> 0.65 s
on its own). The NumPy twin is ``pydeeplab.reference.resize``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def resize_bilinear_float(x, y_lo, y_hi, wy_lo, wy_hi, x_lo, x_hi, wx_lo, wx_hi, offset, out, t, nt):
    """TFLite's float ``ResizeBilinear``: x [N, H, W, C] float32 or uint8 -> out [N, OH, OW, C], same dtype.

    Per-axis taps: int64 indices, float32 weights. Every product and sum is float32,
    in TFLite's order; ``offset`` (0.5 for uint8, else 0) is added last and a uint8
    output truncates.
    """
    n_b = x.shape[0]
    c = x.shape[3]
    oh, ow = out.shape[1], out.shape[2]
    rows = n_b * oh
    for row in range(rows * t // nt, rows * (t + 1) // nt):
        b = row // oh
        oy = row % oh
        top = x[b, y_lo[oy]]
        bottom = x[b, y_hi[oy]]
        a_lo = wy_lo[oy]
        a_hi = wy_hi[oy]
        for ox in range(ow):
            c_lo = x_lo[ox]
            c_hi = x_hi[ox]
            b_lo = wx_lo[ox]
            b_hi = wx_hi[ox]
            o = out[b, oy, ox]
            for ch in range(c):
                v = (np.float32(top[c_lo, ch]) * a_lo * b_lo
                     + np.float32(bottom[c_lo, ch]) * a_hi * b_lo
                     + np.float32(top[c_hi, ch]) * a_lo * b_hi
                     + np.float32(bottom[c_hi, ch]) * a_hi * b_hi
                     + offset)
                o[ch] = v


@njit(cache=True, nogil=True)
def resize_bilinear_integer(x, y_lo, y_hi, wy_lo, wy_hi, x_lo, x_hi, wx_lo, wx_hi, out, t, nt):
    """TFLite's ``ResizeBilinearInteger``: x [N, H, W, C] int8/int16 -> out, same dtype.

    Weights are int64 in 1/1024 units; the int64 blend (units of 2**-20) is divided
    by 2**20 rounding half away from zero, then cast to the output type.
    """
    n_b = x.shape[0]
    c = x.shape[3]
    oh, ow = out.shape[1], out.shape[2]
    half = np.int64(1 << 19)
    rows = n_b * oh
    for row in range(rows * t // nt, rows * (t + 1) // nt):
        b = row // oh
        oy = row % oh
        top = x[b, y_lo[oy]]
        bottom = x[b, y_hi[oy]]
        a_lo = wy_lo[oy]
        a_hi = wy_hi[oy]
        for ox in range(ow):
            c_lo = x_lo[ox]
            c_hi = x_hi[ox]
            b_lo = wx_lo[ox]
            b_hi = wx_hi[ox]
            o = out[b, oy, ox]
            for ch in range(c):
                v = (np.int64(top[c_lo, ch]) * a_lo * b_lo
                     + np.int64(bottom[c_lo, ch]) * a_hi * b_lo
                     + np.int64(top[c_hi, ch]) * a_lo * b_hi
                     + np.int64(bottom[c_hi, ch]) * a_hi * b_hi)
                # C: (v +- 2**19) / 2**20 with a truncating division: round the magnitude.
                q = (abs(v) + half) >> 20
                o[ch] = q if v > 0 else -q


@njit(cache=True, nogil=True)
def resize_nearest_neighbor(x, iy, ix, out, t, nt):
    """out[n, y, x, :] = x[n, iy[y], ix[x], :] for x [N, H, W, C] of any dtype."""
    n_b = x.shape[0]
    oh, ow = out.shape[1], out.shape[2]
    rows = n_b * oh
    for row in range(rows * t // nt, rows * (t + 1) // nt):
        b = row // oh
        oy = row % oh
        src = x[b, iy[oy]]
        for ox in range(ow):
            out[b, oy, ox, :] = src[ix[ox]]
