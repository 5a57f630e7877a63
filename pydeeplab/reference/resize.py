"""Resizing in NumPy: the readable specification of RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR.

The per-axis source positions and weights (``Taps``) come from the plan
(``pydeeplab.ops.resize``); here they are applied: gather the two source rows,
then the two source columns, and blend with the weights in TFLite's order of
operations (reference ``resize_bilinear.h``), which matters for the float
formula that uint8 uses: each corner is ``(value * w_row) * w_col`` in float32,
and the four corners are added left to right.
"""

from __future__ import annotations

import numpy as np


def resize_bilinear(x: np.ndarray, ty, tx, offset: np.float32) -> np.ndarray:
    """Bilinear resize of an NHWC float32 or uint8 tensor with float32 weights.

    ty, tx: Taps (lo, hi, w_lo, w_hi) for the output rows and columns. Returns
    [N, OH, OW, C] of x's dtype: the float32 blend plus ``offset`` (0.5 for uint8,
    whose cast then truncates; 0 for float32).
    """
    xf = x.astype(np.float32, copy=False)
    wx_lo, wx_hi = tx.w_lo[None, None, :, None], tx.w_hi[None, None, :, None]
    # Each source row weighted once, [N, OH, W, C]: the same float32 products
    # ``value * w_row`` that every pixel's corners start with.
    top = xf[:, ty.lo] * ty.w_lo[None, :, None, None]
    bottom = xf[:, ty.hi] * ty.w_hi[None, :, None, None]
    out = top[:, :, tx.lo] * wx_lo  # then the four corners, added left to right
    out += bottom[:, :, tx.lo] * wx_lo
    out += top[:, :, tx.hi] * wx_hi
    out += bottom[:, :, tx.hi] * wx_hi
    out += offset
    if x.dtype == np.float32:
        return out
    return np.clip(out, 0, 255).astype(x.dtype)


def resize_bilinear_integer(x: np.ndarray, ty, tx) -> np.ndarray:
    """TFLite's ``ResizeBilinearInteger`` of an NHWC int8/int16 tensor: [N, OH, OW, C], same dtype.

    ty, tx: Taps with int64 weights in 1/1024 units, so the blend of the four
    corners, value * w_row * w_col, is in units of 2**-20 (exact integers, so it
    may be summed rows first). It is divided by 2**20 rounding half away from zero
    (C's truncating division after adding +-2**19), then cast (wrapping) to x's dtype.
    """
    xi = x.astype(np.int64)
    rows = xi[:, ty.lo] * ty.w_lo[None, :, None, None] + xi[:, ty.hi] * ty.w_hi[None, :, None, None]
    out_20 = rows[:, :, tx.lo] * tx.w_lo[None, None, :, None] + rows[:, :, tx.hi] * tx.w_hi[None, None, :, None]
    rounded = np.sign(out_20) * ((np.abs(out_20) + (1 << 19)) >> 20)
    return rounded.astype(x.dtype)


def resize_nearest_neighbor(x: np.ndarray, iy: np.ndarray, ix: np.ndarray) -> np.ndarray:
    """Nearest-neighbour resize of an NHWC tensor: out[n, y, x] = x[n, iy[y], ix[x]]."""
    return x[:, iy][:, :, ix]
