"""Numba kernel of MLPerf's ResizeArgmax (the NumPy twin and the semantics:
``pydeeplab.reference.mlperf``)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _argmax(x, b, y, xx):
    best = x[b, y, xx, 0]
    k = 0
    for ch in range(1, x.shape[3]):
        if x[b, y, xx, ch] > best:
            best = x[b, y, xx, ch]
            k = ch
    return k


@njit(cache=True, nogil=True)
def resize_argmax(x, out, t, nt):
    """x: uint8 [N, H, W, C]; out: int32 [N, 4H, 4W] (a view of the output). Part t of nt
    of the input rows (:func:`pydeeplab.kernels.parallel.in_parallel`: a ``prange`` loop here
    cost 4.9 s of cold compile, most of it Numba's parfor passes over the body)."""
    n_b, h, w, c = x.shape
    rows = n_b * h
    best = np.empty((4, 4), dtype=np.uint32)  # (set before each use: np.zeros cost 0.37 s more of cold compile)
    pick = np.empty((4, 4), dtype=np.int32)
    for row in range(rows * t // nt, rows * (t + 1) // nt):
        b = row // h
        y = row % h
        for xx in range(w):
            a = _argmax(x, b, y, xx)
            edge = y == h - 1 or xx == w - 1
            if not edge:
                edge = (a == _argmax(x, b, y, xx + 1) and a == _argmax(x, b, y + 1, xx)
                        and a == _argmax(x, b, y + 1, xx + 1))
            if edge:
                for i in range(4):
                    for j in range(4):
                        out[b, 4 * y + i, 4 * xx + j] = a
                continue
            best[:, :] = 0
            pick[:, :] = 0
            for ch in range(c):
                tl = np.uint32(x[b, y, xx, ch])
                tr = np.uint32(x[b, y, xx + 1, ch])
                bl = np.uint32(x[b, y + 1, xx, ch])
                br = np.uint32(x[b, y + 1, xx + 1, ch])
                for j in range(4):
                    if j == 0:
                        top, bottom = tl, bl
                    elif j == 1:
                        top, bottom = (3 * tl + tr) // 4, (3 * bl + br) // 4
                    elif j == 2:
                        top, bottom = (tl + tr) // 2, (bl + br) // 2
                    else:
                        top, bottom = (tl + 3 * tr) // 4, (bl + 3 * br) // 4
                    for i in range(4):
                        if i == 0:
                            v = top
                        elif i == 1:
                            v = (3 * top + bottom) // 4
                        elif i == 2:
                            v = (top + bottom) // 2
                        else:
                            v = (top + 3 * bottom) // 4
                        if v > best[i, j]:
                            best[i, j] = v
                            pick[i, j] = ch
            for i in range(4):
                for j in range(4):
                    out[b, 4 * y + i, 4 * xx + j] = pick[i, j]
