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

from .reduce import beats


@njit(cache=True, inline="always")
def _row_slot(held, r, keep):
    """The slot (0 or 1) of the two-row cache that holds input row ``r``, and whether it must
    be filled first; the slot holding row ``keep`` (the other row of the pair) is never evicted."""
    if held[0] == r:
        return 0, False
    if held[1] == r:
        return 1, False
    s = 1 if held[0] == keep else 0
    held[s] = r
    return s, True


@njit(cache=True)
def _spread(src, x_lo, x_hi, left, right):
    """Row ``src`` [W, C] spread to the output width, pixel-major: left[ox * C + ch] =
    src[x_lo[ox], ch] and right[...] = src[x_hi[ox], ch], in left's and right's dtype.

    An input row serves every output row whose taps read it (about 16 of them upscaling
    33 -> 513): the kernels spread it once while consecutive output rows read it (a
    two-row cache, :func:`_row_slot`)."""
    c = src.shape[1]
    for ox in range(x_lo.shape[0]):
        p, q = x_lo[ox], x_hi[ox]
        for ch in range(c):
            left[ox * c + ch] = src[p, ch]
            right[ox * c + ch] = src[q, ch]


@njit(cache=True, inline="always")
def _source_rows(x, b, lo, hi, x_lo, x_hi, held, rows):
    """Input rows lo and hi of batch b spread to the output width (:func:`_spread`), from the
    two-row cache ``rows`` [2, 2, OW * C] (slots named by ``held``, :func:`_row_slot`):
    (top left, top right, bottom left, bottom right)."""
    h = x.shape[1]
    s0, fill0 = _row_slot(held, b * h + lo, b * h + hi)
    s1, fill1 = _row_slot(held, b * h + hi, b * h + lo)
    if fill0:
        _spread(x[b, lo], x_lo, x_hi, rows[s0, 0], rows[s0, 1])
    if fill1:
        _spread(x[b, hi], x_lo, x_hi, rows[s1, 0], rows[s1, 1])
    return rows[s0, 0], rows[s0, 1], rows[s1, 0], rows[s1, 1]


@njit(cache=True)
def _spread_by_channel(src, x_lo, x_hi, left, right):
    """:func:`_spread` channel-major: left[ch * OW + ox] = src[x_lo[ox], ch], float32."""
    w, c = src.shape
    ow = x_lo.shape[0]
    # Each channel gathered from a contiguous copy of it (measured 33 -> 513 x 21: 0.52 ->
    # 0.38 ms of spreading per image against reading src[x_lo[ox], ch]).
    plane = np.empty(w, np.float32)
    for ch in range(c):
        for xx in range(w):
            plane[xx] = src[xx, ch]
        l, r = left[ch * ow : (ch + 1) * ow], right[ch * ow : (ch + 1) * ow]
        for ox in range(ow):
            l[ox] = plane[x_lo[ox]]
            r[ox] = plane[x_hi[ox]]


@njit(cache=True, nogil=True)
def resize_bilinear_float(x, y_lo, y_hi, wy_lo, wy_hi, x_lo, x_hi, w_left, w_right, offset, out, t, nt):
    """TFLite's float ``ResizeBilinear``: x [N, H, W, C] float32 or uint8 -> out [N, OH, OW, C], same dtype.

    Row taps y_lo, y_hi (int64), wy_lo, wy_hi (float32) per output row; column taps x_lo,
    x_hi per output column; the column weights per output element, w_left and w_right
    (float32 [OW * C], each column's weight repeated C times: ``ops.resize.column_weights``).
    Every product and sum is float32, in TFLite's order, ``(value * w_row) * w_col`` for
    each corner, the corners added left to right; ``offset`` (0.5 for uint8, else 0) is
    added last and a uint8 output truncates. x and out C-contiguous. Part t of nt of the
    output rows (:func:`pydeeplab.kernels.parallel.in_parallel`: cheaper to compile than a prange).

    The source rows are spread to the output width once (:func:`_spread`), so that
    each output row is one loop over OW * C contiguous elements that vectorizes whole,
    where a loop per output pixel over C = 21 channels did not (uint8 [1,33,33,21] ->
    [1,513,513,21]: 5.86 -> 2.01 ms, one thread).
    """
    n_b, _, _, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    n = ow * c
    rows = np.empty((2, 2, n), np.float32)
    held = np.empty(2, np.int64)
    held[0], held[1] = -1, -1
    n_rows = n_b * oh
    for row in range(n_rows * t // nt, n_rows * (t + 1) // nt):
        b = row // oh
        oy = row % oh
        top_l, top_r, bottom_l, bottom_r = _source_rows(x, b, y_lo[oy], y_hi[oy], x_lo, x_hi, held, rows)
        a_lo = wy_lo[oy]
        a_hi = wy_hi[oy]
        o = out[b, oy].reshape(n)
        for k in range(n):
            o[k] = ((top_l[k] * a_lo) * w_left[k] + (bottom_l[k] * a_hi) * w_left[k]
                    + (top_r[k] * a_lo) * w_right[k] + (bottom_r[k] * a_hi) * w_right[k] + offset)


@njit(cache=True, nogil=True)
def resize_bilinear_arg_max(x, y_lo, y_hi, wy_lo, wy_hi, x_lo, x_hi, wx_lo, wx_hi, offset, out, t, nt):
    """ARG_MAX over the channels of :func:`resize_bilinear_float`'s output, which is never written:
    x [N, H, W, C] float32 or uint8, C <= 256 -> out [N, OH, OW] int32/int64, the first channel
    holding the largest resized value (NaN never wins).

    Each value is the one resize_bilinear_float computes, in x's type (uint8 truncated), so ties
    (frequent after rounding to uint8) go to the lowest channel as ARG_MAX gives them. The
    NumPy twin is ``reference.resize.resize_bilinear`` followed by ``reference.reduce.arg_max``.
    The source rows are spread channel-major, so that one channel of an output row is a
    contiguous run over its columns and the running maximum vectorizes across pixels (a uint8
    channel index: 4x the lanes of an int32 one, measured 0.8 -> 0.24 ms per 513x513x21 image).
    """
    n_b, h, _, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    rows = np.empty((2, 2, c * ow), np.float32)
    held = np.empty(2, np.int64)
    held[0], held[1] = -1, -1
    value = np.empty(ow, x.dtype)
    best = np.empty(ow, x.dtype)
    pick = np.empty(ow, np.uint8)
    n_rows = n_b * oh
    for row in range(n_rows * t // nt, n_rows * (t + 1) // nt):
        b = row // oh
        oy = row % oh
        s0, fill0 = _row_slot(held, b * h + y_lo[oy], b * h + y_hi[oy])
        s1, fill1 = _row_slot(held, b * h + y_hi[oy], b * h + y_lo[oy])
        if fill0:
            _spread_by_channel(x[b, y_lo[oy]], x_lo, x_hi, rows[s0, 0], rows[s0, 1])
        if fill1:
            _spread_by_channel(x[b, y_hi[oy]], x_lo, x_hi, rows[s1, 0], rows[s1, 1])
        a_lo = wy_lo[oy]
        a_hi = wy_hi[oy]
        for ch in range(c):
            span = slice(ch * ow, (ch + 1) * ow)
            top_l, top_r = rows[s0, 0, span], rows[s0, 1, span]
            bottom_l, bottom_r = rows[s1, 0, span], rows[s1, 1, span]
            for ox in range(ow):  # stored in x's type: the truncated uint8 is what the maximum sees
                value[ox] = ((top_l[ox] * a_lo) * wx_lo[ox] + (bottom_l[ox] * a_hi) * wx_lo[ox]
                             + (top_r[ox] * a_lo) * wx_hi[ox] + (bottom_r[ox] * a_hi) * wx_hi[ox] + offset)
            if ch == 0:
                for ox in range(ow):
                    best[ox] = value[ox]
                    pick[ox] = 0
                continue
            for ox in range(ow):
                v, so_far = value[ox], best[ox]
                win = beats(v, so_far)
                best[ox] = v if win else so_far
                pick[ox] = ch if win else pick[ox]
        o = out[b, oy]
        for ox in range(ow):
            o[ox] = pick[ox]


@njit(cache=True)
def _spread_pairs(src, x_lo, x_hi, pairs):
    """Row ``src`` [W, C] spread to the output width as (left, right) pairs, pixel-major:
    pairs[2 * (ox * C + ch)] = src[x_lo[ox], ch], pairs[2 * (ox * C + ch) + 1] = src[x_hi[ox], ch]."""
    c = src.shape[1]
    for ox in range(x_lo.shape[0]):
        p, q = x_lo[ox], x_hi[ox]
        for ch in range(c):
            pairs[2 * (ox * c + ch)] = src[p, ch]
            pairs[2 * (ox * c + ch) + 1] = src[q, ch]


@njit(cache=True, nogil=True)
def resize_bilinear_integer(x, y_lo, y_hi, wy_lo, wy_hi, x_lo, x_hi, w_pairs, half, zero_point, scale, out, t, nt):
    """TFLite's ``ResizeBilinearInteger``: x [N, H, W, C] int8/int16 -> out, of x's dtype where
    ``zero_point`` and ``scale`` are None; else float32, each result r stored as ``(r - zero_point) *
    scale`` with a DEQUANTIZE's zero point (int32) and float32 scale (the resize and the DEQUANTIZE
    after it, ``pydeeplab.fusion``), in float32 as ``kernels.quantize.dequantize_8bit`` computes it
    (the same bits as DEQUANTIZE's product in double, rounded to float).

    Weights in 1/1024 units. wy_lo, wy_hi per output row, of the type the blend is computed in,
    wide enough for value * 2**21 (int32 for int8, int64 for int16); ``half`` = 2**19 of that
    type. The column weights per output element as (left, right) pairs, ``w_pairs`` [2 * OW * C]
    (``ops.resize.column_weight_pairs``), int16 or int32, such that each column blend (|value|
    times |left| + |right|) fits int32. The blend of the four corners (units of
    2**-20) is divided by 2**20 rounding half away from zero, then cast to the output type.
    Integer sums are exact in any order, so each output row blends the columns of its two
    source rows first, each a sum of two products of (left, right) pairs, which LLVM makes one
    ``vpmaddwd`` for 16 outputs where values and weights are int16 and the sums int32 (int8
    [1,33,33,21] -> [1,257,257,21] and DEQUANTIZE, 1 thread: 0.79 -> 0.48 ms against four
    corner rows and two weight arrays), then the two rows.
    """
    n_b, h, _, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    n = ow * c
    blend = wy_lo.dtype.type
    rows = np.empty((2, 2 * n), w_pairs.dtype)  # two source rows spread as pairs (_row_slot's cache)
    held = np.empty(2, np.int64)
    held[0], held[1] = -1, -1
    n_rows = n_b * oh
    for row in range(n_rows * t // nt, n_rows * (t + 1) // nt):
        b = row // oh
        oy = row % oh
        lo, hi = y_lo[oy], y_hi[oy]
        s0, fill0 = _row_slot(held, b * h + lo, b * h + hi)
        s1, fill1 = _row_slot(held, b * h + hi, b * h + lo)
        if fill0:
            _spread_pairs(x[b, lo], x_lo, x_hi, rows[s0])
        if fill1:
            _spread_pairs(x[b, hi], x_lo, x_hi, rows[s1])
        top, bottom = rows[s0], rows[s1]
        a_lo = wy_lo[oy]
        a_hi = wy_hi[oy]
        o = out[b, oy].reshape(n)
        for i in range(n):
            wl, wr = np.int32(w_pairs[2 * i]), np.int32(w_pairs[2 * i + 1])
            upper = np.int32(np.int32(top[2 * i]) * wl + np.int32(top[2 * i + 1]) * wr)
            lower = np.int32(np.int32(bottom[2 * i]) * wl + np.int32(bottom[2 * i + 1]) * wr)
            v = blend(upper * a_lo + lower * a_hi)
            # C: (v +- 2**19) / 2**20 with a truncating division: round the magnitude.
            q = (abs(v) + half) >> np.int32(20)  # (an int32 shift keeps int32 lanes for int8)
            r = q if v > 0 else -q
            if scale is None:  # (pruned at compile time: a None argument is a type of its own)
                o[i] = r
            else:
                o[i] = np.float32(r - zero_point) * scale


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
