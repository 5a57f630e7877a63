"""Numba kernels of MediaPipe's pooling custom operators (the NumPy twin:
``pydeeplab.reference.mediapipe``). Convolution2DTransposeBias uses the
TRANSPOSE_CONV kernels of ``conv``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_LOWEST = np.float32(np.finfo(np.float32).min)


@njit(cache=True, parallel=True)
def max_pool_with_argmax(x, out, indices, fh, fw, sh, sw, ph, pw, act_min, act_max):
    """out = clamp(first strict maximum of each window), indices = its y * fw + x + 0.1.

    x: [N, H, W, C] float32; out, indices: [N, OH, OW, C] float32. Windows are clamped
    to the input; taps are visited row by row, as MediaPipe's kernel does.
    """
    n_b, h, w, c = x.shape
    _, oh, ow, _ = out.shape
    lo, hi = np.float32(act_min), np.float32(act_max)
    for row in prange(n_b * oh):
        b = row // oh
        oy = row % oh
        y_origin = oy * sh - ph
        for ox in range(ow):
            x_origin = ox * sw - pw
            for ch in range(c):
                best = _LOWEST
                where = 0
                for i in range(max(0, -y_origin), min(fh, h - y_origin)):
                    for j in range(max(0, -x_origin), min(fw, w - x_origin)):
                        v = x[b, y_origin + i, x_origin + j, ch]
                        if v > best:
                            best = v
                            where = i * fw + j
                out[b, oy, ox, ch] = min(max(best, lo), hi)
                indices[b, oy, ox, ch] = np.float32(where) + np.float32(0.1)


@njit(cache=True)
def max_unpooling(x, indices, out, fh, fw, sh, sw, ph, pw):
    """Scatter each input value to the window position its (truncated) index names.

    x, indices: [N, H, W, C] float32; out: [N, OH, OW, C] float32, zeroed first.
    Sequential, so that the last of two values landing on one position stays.
    """
    n_b, h, w, c = x.shape
    _, oh, ow, _ = out.shape
    out[...] = 0
    for b in range(n_b):
        for y in range(h):
            for xx in range(w):
                for ch in range(c):
                    v = indices[b, y, xx, ch]
                    if not (np.isfinite(v) and abs(v) < 2.0**31):
                        continue
                    k = int(v)  # truncation toward zero, as C converts
                    dy = abs(k) // fw
                    dx = abs(k) % fw
                    if k < 0:  # C's / and % round toward zero
                        dy, dx = -dy, -dx
                    oy = y * sh - ph + dy
                    ox = xx * sw - pw + dx
                    if 0 <= oy < oh and 0 <= ox < ow:
                        out[b, oy, ox, ch] = x[b, y, xx, ch]
