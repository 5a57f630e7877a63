"""Pooling kernels (Numba): MAX_POOL_2D and AVERAGE_POOL_2D on NHWC arrays.

Output rows in order; channels are innermost, so each window tap reads one contiguous
run of C values. Windows are clamped to the input exactly as in TFLite's reference
kernels (``reference/pooling.h``), and the float average sums in the same order (window
rows, then columns), but for a global average over few channels, which sums down the
map's columns first, as the numpy backend does (:func:`global_average_pool_float`).
Each kernel does part t of nt of its output rows (``kernels.parallel.in_parallel``'s
chunks), and the operators run them as one part, on the calling thread: segmentation
networks pool little (DeepLab's ASPP image pooling, one global average over a 33x33
map, takes 0.07-0.11 ms in the profiles of tools/bench.py). Launched as chunks, they
are what a replay (``pydeeplab.replay``) runs without Python.
The NumPy twin is ``pydeeplab.reference.pool``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _window(o, stride, pad, filt, size):
    """[start, end) of the input positions covered by output position o's window."""
    origin = o * stride - pad
    return max(origin, 0), min(origin + filt, size)


@njit(cache=True, inline="always")
def _window_sum(x, b, y0, y1, x0, x1, acc):
    """acc[:] = sum of x[b, y0:y1, x0:x1] per channel, in TFLite's order (rows, then columns),
    in acc's type (float32, or int32 for the integer average)."""
    acc[:] = 0
    for iy in range(y0, y1):
        for ix in range(x0, x1):
            v = x[b, iy, ix]
            for ch in range(x.shape[3]):
                acc[ch] += v[ch]


@njit(cache=True, nogil=True)
def max_pool_2d(x, out, fh, fw, sh, sw, ph, pw, lowest, act_min, act_max, t, nt):
    """out[n, oy, ox, c] = clamp(max of x over the window, act_min, act_max).

    x: [N, H, W, C] float32 or integer; out: [N, OH, OW, C], same dtype. ``lowest``
    starts the running maximum (TFLite's: float lowest, or the type's minimum),
    compared as ``std::max`` does, so a NaN in the window is skipped.
    """
    n_b, h, w, c = x.shape
    _, oh, ow, _ = out.shape
    for row in range(n_b * oh * t // nt, n_b * oh * (t + 1) // nt):
        b = row // oh
        oy = row % oh
        y0, y1 = _window(oy, sh, ph, fh, h)
        for ox in range(ow):
            x0, x1 = _window(ox, sw, pw, fw, w)
            o = out[b, oy, ox]
            o[:] = lowest
            for iy in range(y0, y1):
                for ix in range(x0, x1):
                    v = x[b, iy, ix]
                    for ch in range(c):
                        if o[ch] < v[ch]:
                            o[ch] = v[ch]
            for ch in range(c):
                m = o[ch]
                if m < act_min:
                    m = act_min
                if act_max < m:
                    m = act_max
                o[ch] = m


@njit(cache=True, nogil=True)
def average_pool_2d_float(x, out, fh, fw, sh, sw, ph, pw, act_min, act_max, t, nt):
    """out = clamp(float32 sum over the window / number of covered inputs). x, out float32 NHWC."""
    n_b, h, w, c = x.shape
    _, oh, ow, _ = out.shape
    for row in range(n_b * oh * t // nt, n_b * oh * (t + 1) // nt):
        b = row // oh
        oy = row % oh
        y0, y1 = _window(oy, sh, ph, fh, h)
        acc = np.empty(c, dtype=np.float32)
        for ox in range(ow):
            x0, x1 = _window(ox, sw, pw, fw, w)
            _window_sum(x, b, y0, y1, x0, x1, acc)
            count = np.float32((y1 - y0) * (x1 - x0))
            for ch in range(c):
                avg = acc[ch] / count
                out[b, oy, ox, ch] = min(max(avg, act_min), act_max)


@njit(cache=True, nogil=True)
def global_average_pool_float(x, c, out, act_min, act_max, t, nt):
    """AVERAGE_POOL_2D whose one window is the whole map, float32: the sums down each column of
    the [H, W * C] map, then across the W column sums of each channel (TFLite adds pixel after
    pixel, as ``pydeeplab.reference.pool.global_average_pool_2d`` does: the same sums to float
    rounding, within the float contract). Many independent
    sums: one vector of C sums, pixel after pixel, waits on each add (128x128x16: 65 us, NumPy's
    column sums 49 us, these 25 us; 64x64x24: 21 -> 8.5 us). x [N, H, W * C] (the map's rows),
    C channels, out [N, C]; batches ``N * t // nt`` to ``N * (t + 1) // nt`` (part t of nt, as
    ``kernels.parallel.in_parallel`` runs it). Rows by integer index: a reshape and a slice
    assignment here took 2.2 s more to compile (2.97 -> 0.78 s on a cold cache)."""
    n_b, h, wc = x.shape
    columns = np.empty(wc, dtype=np.float32)
    count = np.float32(h * (wc // c))
    for b in range(n_b * t // nt, n_b * (t + 1) // nt):
        first = x[b, 0]
        for j in range(wc):
            columns[j] = first[j]
        for iy in range(1, h):
            row = x[b, iy]
            for j in range(wc):
                columns[j] += row[j]
        for ch in range(c):
            total = columns[ch]
            for j in range(ch + c, wc, c):
                total += columns[j]
            avg = total / count
            out[b, ch] = min(max(avg, act_min), act_max)


@njit(cache=True, nogil=True)
def average_pool_2d_int(x, out, fh, fw, sh, sw, ph, pw, act_min, act_max, t, nt):
    """Integer average pool: the window sum divided by its count, rounded half away from zero.

    x, out: [N, H, W, C] / [N, OH, OW, C] uint8, int8 or int16; act_min/act_max int32.
    """
    n_b, h, w, c = x.shape
    _, oh, ow, _ = out.shape
    for row in range(n_b * oh * t // nt, n_b * oh * (t + 1) // nt):
        b = row // oh
        oy = row % oh
        y0, y1 = _window(oy, sh, ph, fh, h)
        acc = np.empty(c, dtype=np.int32)
        for ox in range(ow):
            x0, x1 = _window(ox, sw, pw, fw, w)
            _window_sum(x, b, y0, y1, x0, x1, acc)
            count = (y1 - y0) * (x1 - x0)
            half = count // 2
            fcount = np.float64(count)
            for ch in range(c):
                a = acc[ch]
                # C's (a +- half) / count truncates toward zero: round the magnitude.
                # The quotient of two integers below 2**32 and 2**22 in float64 is
                # never off by enough to cross an integer, so truncating it is the
                # exact integer quotient, and it vectorizes where integer division does not.
                q = np.int32(np.float64(abs(a) + half) / fcount)
                if a <= 0:
                    q = -q
                out[b, oy, ox, ch] = min(max(q, act_min), act_max)
