"""Numba kernels of the convolutions (CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV).

- :func:`conv_float` / :func:`conv_quantized`: a whole CONV_2D. Each thread takes
  a contiguous range of output rows and works through it in blocks: im2col of the
  block's receptive fields into the thread's scratch rows (skipped for a 1x1
  stride-1 float conv, whose input pixels already are the matrix rows), one BLAS
  product (:func:`pydeeplab.kernels.blas.gemm`, in the same thread), then the
  output stage while the block is still in cache.
  :func:`conv_float_small`: the same for a float conv with few taps (a first conv on
  RGB), its im2col rows gathered through a table of tap offsets.
- :func:`depthwise_conv_float` / :func:`depthwise_conv_quantized`: a whole
  DEPTHWISE_CONV_2D, one output row at a time. A float 3x3 filter without depth
  multiplier (MobileNet's) sums several output pixels at once in vectorized loops
  over the channels, sharing the loads of weights and of input columns.
- :func:`bias_activation` / :func:`requantize`: the output stages alone (for
  TRANSPOSE_CONV, whose product the ops layer computes), and
  :func:`transpose_conv_gather`, which sums its per-tap products into pixels.

Work is split over output rows: ``prange`` over one contiguous range per thread.
All arrays are NHWC and C-contiguous; the semantics are stated in
``pydeeplab.reference.conv``.

Quantized products are computed in floating point on exact integers (see
``conv_plan.exact_dtype``): float32 where no partial sum can exceed
2**24, float64 otherwise. The sums are then exact whatever the order, and the
int32 accumulator of TFLite, which wraps, is reproduced by wrapping the exact sum.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .blas import gemm

_INT32_MIN = -(2**31)


# --------------------------------------------------------------------------- output stages


@njit(cache=True, nogil=True)
def _bias_activation_rows(y, bias, act_min, act_max):
    """In place on y [M, C] float32: ``y = min(max(y + bias, act_min), act_max)``, bias [C]."""
    m, c = y.shape
    for r in range(m):
        row = y[r]
        for k in range(c):
            row[k] = min(max(row[k] + bias[k], act_min), act_max)


@njit(cache=True, nogil=True)
def _bias_activation_into(acc, bias, act_min, act_max, out):
    """out [M, C] = ``min(max(acc + bias, act_min), act_max)``; acc [M, C] float32 does not overlap out.

    (A separate function from the in-place one: an output that may overlap its input
    fails the vectorized loop's overlap check and runs one element at a time.)
    """
    m, c = acc.shape
    for r in range(m):
        a = acc[r]
        o = out[r]
        for k in range(c):
            o[k] = min(max(a[k] + bias[k], act_min), act_max)


@njit(cache=True, inline="always")
def requantize_one(total, multiplier, left_shift, right_shift, out_zero_point, act_min, act_max):
    """One output of the quantized output stage, from the int32 sum ``total`` (acc + bias).

    ``clamp(MultiplyByQuantizedMultiplier(total, multiplier, shift) + out_zero_point)``
    with ``left_shift = max(shift, 0)``, ``right_shift = max(-shift, 0)``: the same
    numbers as ``fixedpoint.multiply_by_quantized_multiplier``, written without
    branches so that the channel loops vectorize. That needs ``multiplier`` >= 0 (so
    never INT32_MIN, the one saturating case), which prepare guarantees.
    """
    x = np.int64(total) << left_shift
    x = ((x - _INT32_MIN) & 0xFFFFFFFF) + _INT32_MIN  # the left shift wraps as int32 in C
    high = (x * np.int64(multiplier) + (1 << 30)) >> 31  # rounding doubling high multiply
    mask = (np.int64(1) << right_shift) - 1
    threshold = (mask >> 1) - (high >> 63)  # ties away from zero: one more when negative
    v = (high >> right_shift) + np.int64((high & mask) > threshold) + out_zero_point
    return min(max(v, act_min), act_max)


# Rows of a requantization table (int64 [7, C], see :func:`requant_table`).
_MULT, _LEFT, _RIGHT, _NUDGE, _NUDGE_POS, _SHIFT, _WRAP = 0, 1, 2, 3, 4, 5, 6


@njit(cache=True, nogil=True)
def requant_table(multiplier, left_shift, right_shift, total_bound):
    """The per-channel constants of the output stage, int64 [7, C].

    ``total_bound`` [C] (float64): how large ``|acc + bias|`` can be in each channel
    (inf if unknown); where it stays within int32, row 6 is 0 and the wrap of TFLite's
    int32 accumulator, a no-op there, is skipped.

    Rows: multiplier, left shift, right shift (for :func:`requantize_one`), and for
    channels without left shift the two rounding steps of TFLite's
    ``MultiplyByQuantizedMultiplier`` folded into one: with ``p = total * multiplier``,
    ``h = floor((p + 2**30) / 2**31)`` (the rounding doubling high multiply) and the
    result ``floor((h + c) / 2**right)``, where c = (2**right - 1) // 2 plus one if
    h >= 0 and right > 0 (round half away from zero). Since floor((floor(y) + c) / n)
    = floor((y + c) / n) for integers c and n > 0, that is ``(p + 2**30 + c * 2**31) >> (31 + right)``, one
    product, one add and one shift; and h >= 0 exactly when p >= -2**30. Rows 3 and
    4 are the nudge ``2**30 + c * 2**31`` for h < 0 and its increase for h >= 0, row 5
    the total shift ``31 + right``.
    """
    c = multiplier.shape[0]
    table = np.empty((7, c), dtype=np.int64)
    for k in range(c):
        right = np.int64(right_shift[k])
        mask = (np.int64(1) << right) - 1
        table[_MULT, k] = multiplier[k]
        table[_LEFT, k] = left_shift[k]
        table[_RIGHT, k] = right
        table[_NUDGE, k] = (np.int64(1) << 30) + ((mask >> 1) << 31)
        table[_NUDGE_POS, k] = (mask & 1) << 31
        table[_SHIFT, k] = 31 + right
        table[_WRAP, k] = not total_bound[k] < 2**31 - 1
    return table


@njit(cache=True, inline="always")
def _rescale(p, nudge, nudge_pos, shift, out_zero_point, act_min, act_max):
    """The folded output stage of :func:`requant_table` for the product p = total * multiplier."""
    # nudge_pos applies where h >= 0, i.e. p + 2**30 >= 0: a sign mask, not a branch.
    v = ((p + nudge + (nudge_pos & ~((p + (1 << 30)) >> 63))) >> shift) + out_zero_point
    return min(max(v, act_min), act_max)


@njit(cache=True, nogil=True)
def _requantize_rows(acc, bias, table, out_zero_point, act_min, act_max, out):
    """out [M, C] = the quantized output stage of acc [M, C] (exact integers, any dtype) + bias.

    The sum ``acc + bias`` wraps as TFLite's int32 accumulator does. table: int64
    [7, C] from :func:`requant_table`; where every left shift is 0 (the usual case:
    a real multiplier below one) the folded single-rounding form runs, twice as fast.
    Where moreover every channel has the same multiplier and shift (per-tensor
    quantization, as in uint8 models), they are loop constants rather than four table
    loads per value: measured 1.6x faster again (257x257x96: 3.7 ms -> 2.3 ms).
    """
    m, c = acc.shape
    mult, left, right = table[_MULT], table[_LEFT], table[_RIGHT]
    nudge, nudge_pos, shift = table[_NUDGE], table[_NUDGE_POS], table[_SHIFT]
    general = wrap = False
    uniform = c > 0
    for k in range(c):
        general |= left[k] != 0
        wrap |= table[_WRAP, k] != 0
        uniform &= mult[k] == mult[0] and nudge[k] == nudge[0] and nudge_pos[k] == nudge_pos[0] and shift[k] == shift[0]
    if uniform and not general and not wrap:
        m0, n0, p0, s0 = mult[0], nudge[0], nudge_pos[0], shift[0]
        for r in range(m):
            a = acc[r]
            o = out[r]
            for k in range(c):
                o[k] = _rescale((np.int64(a[k]) + bias[k]) * m0, n0, p0, s0, out_zero_point, act_min, act_max)
        return
    for r in range(m):
        a = acc[r]
        o = out[r]
        if general:
            for k in range(c):
                total = np.int64(a[k]) + bias[k]
                total = ((total - _INT32_MIN) & 0xFFFFFFFF) + _INT32_MIN
                o[k] = requantize_one(total, mult[k], left[k], right[k], out_zero_point, act_min, act_max)
        elif wrap:
            for k in range(c):
                total = np.int64(a[k]) + bias[k]
                total = ((total - _INT32_MIN) & 0xFFFFFFFF) + _INT32_MIN
                o[k] = _rescale(total * mult[k], nudge[k], nudge_pos[k], shift[k], out_zero_point, act_min, act_max)
        else:
            for k in range(c):
                o[k] = _rescale((np.int64(a[k]) + bias[k]) * mult[k], nudge[k], nudge_pos[k], shift[k],
                                out_zero_point, act_min, act_max)


@njit(cache=True, parallel=True, nogil=True)
def bias_activation(y, bias, act_min, act_max):
    """In place on y [M, C] float32: ``y = min(max(y + bias, act_min), act_max)``, bias [C]."""
    for r in prange(y.shape[0]):
        _bias_activation_rows(y[r : r + 1], bias, act_min, act_max)


@njit(cache=True, parallel=True, nogil=True)
def requantize(acc, bias, multiplier, left_shift, right_shift, out_zero_point, act_min, act_max, out):
    """The quantized output stage: out [M, C] (uint8/int8) from acc [M, C].

    acc holds exact integers (float products of centered 8-bit values); bias int32 [C];
    multiplier, left_shift, right_shift [C] (see :func:`requantize_one`). The sum
    ``acc + bias`` wraps as TFLite's int32 accumulator does.
    """
    table = requant_table(multiplier, left_shift, right_shift, np.full(multiplier.shape[0], np.inf))
    for r in prange(acc.shape[0]):
        _requantize_rows(acc[r : r + 1], bias, table, out_zero_point, act_min, act_max, out[r : r + 1])


# --------------------------------------------------------------------------- CONV_2D


@njit(cache=True, inline="always")
def _copy_run(src, start, dst, base, n, offset):
    """dst[base : base + n] = src[start : start + n] + offset (1-D arrays, indices >= 0)."""
    if n >= 32:
        # Slices give the loop indices Numba knows are non-negative: it then vectorizes
        # (worth the slices' set-up cost only on long runs).
        d = dst[base : base + n]
        v = src[start : start + n]
        for k in range(n):
            d[k] = v[k] + offset
    else:
        for k in range(n):
            dst[base + k] = src[start + k] + offset


@njit(cache=True, nogil=True)
def _im2col(x, cols, row0, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, offset):
    """Receptive fields of output rows ``row0 ..`` as matrix rows.

    x: [N, H, W, C]; cols: [R * OW, KH * KW * C] (float32 or float64), R output rows
    (output row r is pixel row ``r % OH`` of batch ``r // OH``). Element
    ``(rr * OW + ox, (i * KW + j) * C + c)`` becomes ``x[b, iy, ix, c] + offset``
    with ``iy = oy * sh - pt + i * dh``, ``ix = ox * sw - pl + j * dw``, or 0 where
    (iy, ix) is outside x. ``offset`` is ``-input_zero_point`` (0 for float).
    """
    _, h, w, c = x.shape
    rows = cols.shape[0] // ow
    run = kw * c  # one window row: with dw == 1 its KW pixels are adjacent in x
    for rr in range(rows):
        r = row0 + rr
        b = r // oh
        oy = r % oh
        for i in range(kh):
            iy = oy * sh - pt + i * dh
            if iy < 0 or iy >= h:
                for ox in range(ow):
                    cols[rr * ow + ox, i * run : (i + 1) * run] = 0
                continue
            src = x[b, iy].reshape(w * c)
            for ox in range(ow):
                dst = cols[rr * ow + ox]
                base = i * run
                ix0 = ox * sw - pl
                if dw == 1 and ix0 >= 0 and ix0 + kw <= w:
                    _copy_run(src, ix0 * c, dst, base, run, offset)
                    continue
                for j in range(kw):
                    ix = ix0 + j * dw
                    if ix >= 0 and ix < w:
                        _copy_run(src, ix * c, dst, base + j * c, c, offset)
                    else:
                        for k in range(c):
                            dst[base + j * c + k] = 0


@njit(cache=True, nogil=True)
def _convert(x, p0, p1, cols, offset):
    """cols [p1 - p0, C] = pixels p0 .. p1 of x [N, H, W, C] (in NHWC order) + offset."""
    c = x.shape[3]
    src = x.reshape(x.size)[p0 * c : p1 * c]
    dst = cols.reshape(cols.size)
    for k in range(src.size):
        dst[k] = src[k] + offset


@njit(cache=True, inline="always")
def _pointwise(kh, kw, sh, sw, pt, pl):
    """True when the conv's matrix rows are x's pixels as they are (1x1, stride 1, no padding)."""
    return kh == 1 and kw == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0


@njit(cache=True, parallel=True, nogil=True)
def conv_float(x, wmat, bias, out, kh, kw, sh, sw, dh, dw, pt, pl, act_min, act_max, block, scratch):
    """CONV_2D, float32.

    x [N, H, W, Cin]; wmat [KH * KW * Cin, Cout] (filter rows in im2col order);
    bias [Cout]; out [N, OH, OW, Cout]; act_min / act_max float32 clamp bounds.
    ``block``: output rows per product; scratch [T, >= block * OW * KH * KW * Cin]
    float32: the im2col rows of each of T chunks of output rows, one chunk per
    thread (unused for a pointwise conv).
    """
    n, oh, ow, cout = out.shape
    depth = wmat.shape[0]
    rows = n * oh
    out2d = out.reshape(rows * ow, cout)
    x2d = x.reshape(x.shape[0] * x.shape[1] * x.shape[2], x.shape[3])
    direct = _pointwise(kh, kw, sh, sw, pt, pl)
    nt = scratch.shape[0]
    for t in prange(nt):
        for r0 in range(rows * t // nt, rows * (t + 1) // nt, block):
            r1 = min(r0 + block, rows * (t + 1) // nt)
            dst = out2d[r0 * ow : r1 * ow]
            if direct:
                gemm(x2d[r0 * ow : r1 * ow], wmat, dst)
            else:
                cols = scratch[t][: (r1 - r0) * ow * depth].reshape((r1 - r0) * ow, depth)
                _im2col(x, cols, r0, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, np.float32(0))
                gemm(cols, wmat, dst)
            _bias_activation_rows(dst, bias, act_min, act_max)


@njit(cache=True, nogil=True)
def _im2col_small(x, cols, row0, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, toff):
    """:func:`_im2col` (float, no offset) for a conv with few taps, e.g. a first conv on RGB:
    each matrix row is gathered value by value through a table of the taps' offsets,
    toff (uint64 scratch [KH * KW * Cin]), instead of copying runs too short to pay."""
    _, h, w, c = x.shape
    depth = kh * kw * c
    xf = x.reshape(x.size)
    rows = cols.shape[0] // ow
    # Pixels whose window is inside the input columns.
    lo = min(ow, (pl + sw - 1) // sw)
    last = w - 1 - (kw - 1) * dw + pl
    hi = max(lo, min(ow, last // sw + 1)) if last >= 0 else lo
    for rr in range(rows):
        r = row0 + rr
        b = r // oh
        oy = r % oh
        inside = True
        for i in range(kh):
            iy = oy * sh - pt + i * dh
            inside = inside and 0 <= iy < h
            for j in range(kw):
                for ci in range(c):
                    toff[(i * kw + j) * c + ci] = max(((b * h + iy) * w + j * dw) * c + ci, 0)
        for ox in range(ow):
            dst = cols[rr * ow + ox]
            ix0 = ox * sw - pl
            if inside and lo <= ox < hi:
                base = np.uint64(ix0 * c)  # unsigned: no negative-index wraparound on the loads
                for t in range(depth):
                    dst[t] = xf[base + toff[t]]
                continue
            for i in range(kh):
                iy = oy * sh - pt + i * dh
                for j in range(kw):
                    ix = ix0 + j * dw
                    ok = 0 <= iy < h and 0 <= ix < w
                    for ci in range(c):
                        dst[(i * kw + j) * c + ci] = x[b, iy, ix, ci] if ok else np.float32(0)


@njit(cache=True, parallel=True, nogil=True)
def conv_float_small(x, wmat, bias, out, kh, kw, sh, sw, dh, dw, pt, pl, act_min, act_max, block, scratch):
    """:func:`conv_float` for a conv with few taps (KH * KW * Cin), e.g. a network's first
    conv on an RGB image: the same products, the matrix rows gathered by
    :func:`_im2col_small`. Same arguments as :func:`conv_float`."""
    n, oh, ow, cout = out.shape
    depth = wmat.shape[0]
    rows = n * oh
    out2d = out.reshape(rows * ow, cout)
    nt = scratch.shape[0]
    for t in prange(nt):
        toff = np.empty(depth, np.uint64)
        for r0 in range(rows * t // nt, rows * (t + 1) // nt, block):
            r1 = min(r0 + block, rows * (t + 1) // nt)
            dst = out2d[r0 * ow : r1 * ow]
            cols = scratch[t][: (r1 - r0) * ow * depth].reshape((r1 - r0) * ow, depth)
            _im2col_small(x, cols, r0, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, toff)
            gemm(cols, wmat, dst)
            _bias_activation_rows(dst, bias, act_min, act_max)


@njit(cache=True, parallel=True, nogil=True)
def conv_quantized(x, wmat, bias, out, kh, kw, sh, sw, dh, dw, pt, pl, input_offset,
                   table, out_zero_point, act_min, act_max, block, scratch):
    """CONV_2D, uint8/int8, as an exact floating-point product of centered values.

    x [N, H, W, Cin]; wmat [KH * KW * Cin, Cout] float32/float64, the centered filter
    (``w - w_zp``); bias [Cout] int32; out [N, OH, OW, Cout]; input_offset =
    -input_zero_point (a float32); table [7, Cout] (:func:`requant_table`);
    scratch [T, >= block * OW * (KH * KW * Cin + Cout)] of wmat's dtype: the im2col
    rows (for a 1x1 stride-1 conv, the converted input rows) and products of each of
    T chunks of output rows, one chunk per thread.
    """
    n, oh, ow, cout = out.shape
    depth = wmat.shape[0]
    rows = n * oh
    out2d = out.reshape(rows * ow, cout)
    direct = _pointwise(kh, kw, sh, sw, pt, pl)
    nt = scratch.shape[0]
    for t in prange(nt):
        for r0 in range(rows * t // nt, rows * (t + 1) // nt, block):
            r1 = min(r0 + block, rows * (t + 1) // nt)
            m = (r1 - r0) * ow
            buf = scratch[t]
            cols = buf[: m * depth].reshape(m, depth)
            acc = buf[m * depth : m * (depth + cout)].reshape(m, cout)
            if direct:
                _convert(x, r0 * ow, r1 * ow, cols, input_offset)
            else:
                _im2col(x, cols, r0, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, input_offset)
            gemm(cols, wmat, acc)
            _requantize_rows(acc, bias, table, out_zero_point, act_min, act_max, out2d[r0 * ow : r1 * ow])


# --------------------------------------------------------------------------- DEPTHWISE_CONV_2D


@njit(cache=True, nogil=True)
def _depthwise_row(x, w, pad, b, oy, sh, sw, dh, dw, pt, pl, acc):
    """acc [OW, Cout] = the tap sums of output row oy of batch b.

    x [N, H, W, C]; w [KH, KW, C * M] (float32/float64); pad [C]: what a tap outside x
    reads (zeros, or the input zero point when the bias carries the zero-point
    terms). Channel ``ic * M + m`` reads input channel ic. A 3x3 filter without
    depth multiplier (MobileNet's) sums its nine taps in one pass per pixel; other
    shapes add one tap at a time. Either way the taps are added in TFLite's order.
    """
    _, h, win, cin = x.shape
    ow, cout = acc.shape
    kh, kw = w.shape[0], w.shape[1]
    mult = cout // cin
    if kh == 3 and kw == 3 and mult == 1:
        iy0 = oy * sh - pt
        iy1 = iy0 + dh
        iy2 = iy1 + dh
        ok0, ok1, ok2 = 0 <= iy0 < h, 0 <= iy1 < h, 0 <= iy2 < h
        w0, w1, w2, w3, w4, w5, w6, w7, w8 = w[0, 0], w[0, 1], w[0, 2], w[1, 0], w[1, 1], w[1, 2], w[2, 0], w[2, 1], w[2, 2]
        for ox in range(ow):
            ix0 = ox * sw - pl
            ix1 = ix0 + dw
            ix2 = ix1 + dw
            c0, c1, c2 = 0 <= ix0 < win, 0 <= ix1 < win, 0 <= ix2 < win
            x0 = x[b, iy0, ix0] if ok0 and c0 else pad
            x1 = x[b, iy0, ix1] if ok0 and c1 else pad
            x2 = x[b, iy0, ix2] if ok0 and c2 else pad
            x3 = x[b, iy1, ix0] if ok1 and c0 else pad
            x4 = x[b, iy1, ix1] if ok1 and c1 else pad
            x5 = x[b, iy1, ix2] if ok1 and c2 else pad
            x6 = x[b, iy2, ix0] if ok2 and c0 else pad
            x7 = x[b, iy2, ix1] if ok2 and c1 else pad
            x8 = x[b, iy2, ix2] if ok2 and c2 else pad
            a = acc[ox]
            for k in range(cout):
                a[k] = (x0[k] * w0[k] + x1[k] * w1[k] + x2[k] * w2[k] + x3[k] * w3[k] + x4[k] * w4[k]
                        + x5[k] * w5[k] + x6[k] * w6[k] + x7[k] * w7[k] + x8[k] * w8[k])
        return
    for ox in range(ow):
        a = acc[ox]
        a[:] = 0
        for i in range(kh):
            iy = oy * sh - pt + i * dh
            for j in range(kw):
                ix = ox * sw - pl + j * dw
                src = x[b, iy, ix] if 0 <= iy < h and 0 <= ix < win else pad
                wt = w[i, j]
                if mult == 1:
                    for k in range(cout):
                        a[k] += src[k] * wt[k]
                else:
                    for ic in range(cin):
                        v = src[ic]
                        for m in range(mult):
                            a[ic * mult + m] += v * wt[ic * mult + m]


@njit(cache=True, inline="always")
def _clamp(v, lo, hi):
    return min(max(v, lo), hi)


@njit(cache=True, inline="always")
def _taps4(row, k, o0, o1, o2, o3, o4, o5, wa, wb, wc, a0, a1, a2, a3):
    """Add one filter row's three taps to four pixels, in TFLite's tap order: pixel g
    reads the row's columns ``o[g + j]`` (j = 0, 1, 2; unsigned offsets) at channel k."""
    x0, x1, x2, x3, x4, x5 = row[o0 + k], row[o1 + k], row[o2 + k], row[o3 + k], row[o4 + k], row[o5 + k]
    a0 = a0 + x0 * wa + x1 * wb + x2 * wc
    a1 = a1 + x1 * wa + x2 * wb + x3 * wc
    a2 = a2 + x2 * wa + x3 * wb + x4 * wc
    a3 = a3 + x3 * wa + x4 * wb + x5 * wc
    return a0, a1, a2, a3


@njit(cache=True, inline="always")
def _taps3(row, k, o0, o1, o2, o3, o4, wa, wb, wc, a0, a1, a2):
    """:func:`_taps4` for three pixels."""
    x0, x1, x2, x3, x4 = row[o0 + k], row[o1 + k], row[o2 + k], row[o3 + k], row[o4 + k]
    a0 = a0 + x0 * wa + x1 * wb + x2 * wc
    a1 = a1 + x1 * wa + x2 * wb + x3 * wc
    a2 = a2 + x2 * wa + x3 * wb + x4 * wc
    return a0, a1, a2


@njit(cache=True, inline="always")
def _taps2(row, k, o0, o1, o2, o3, o4, wa, wb, wc, a0, a1, stride2):
    """:func:`_taps4` for two pixels; with ``stride2`` pixel g reads columns ``o[2 * g + j]``."""
    x0, x1, x2, x3 = row[o0 + k], row[o1 + k], row[o2 + k], row[o3 + k]
    a0 = a0 + x0 * wa + x1 * wb + x2 * wc
    if stride2:
        a1 = a1 + x2 * wa + x3 * wb + row[o4 + k] * wc
    else:
        a1 = a1 + x1 * wa + x2 * wb + x3 * wc
    return a0, a1


@njit(cache=True, inline="always")
def _taps1(row, k, o0, o1, o2, wa, wb, wc, a0):
    """:func:`_taps4` for one pixel."""
    return a0 + row[o0 + k] * wa + row[o1 + k] * wb + row[o2 + k] * wc


@njit(cache=True, nogil=True, fastmath={"contract"})
def _depthwise3x3_float_group(r0, r1, r2, w9, bias, act_min, act_max, p, u, q, v, m, stride2, o):
    """m (1 to 4) output pixels of a 3x3 float depthwise conv whose taps all fall inside the input.

    r0, r1, r2: the input rows the filter rows read, flat [W * C]; o: the output row,
    flat [OW * C]; w9 [9, C]: the taps in TFLite's order; bias [C]. Pixel g is
    written at ``o[q + g * v :][:C]`` and its tap (i, j) reads r_i from offset
    ``p + (g + j) * u``: pixels one dilation apart (u = v = dilation x C), which
    share input columns. With ``stride2`` (m = 2, no dilation, u = v = C) pixel g
    reads ``p + (2 * g + j) * u``. Several pixels at once load each weight and
    shared input once for several products; the nine products of a pixel are summed
    in TFLite's order with fused multiply-adds (within the float tolerance).
    Offsets are unsigned: Numba then adds no negative-index wraparound and the
    channel loop vectorizes.
    """
    c = np.uint64(w9.shape[1])
    u, v = np.uint64(u), np.uint64(v)
    o0 = np.uint64(p)
    o1 = o0 + u
    o2 = o1 + u
    o3 = o2 + u
    o4 = o3 + u
    o5 = o4 + u
    q0 = np.uint64(q)
    q1 = q0 + v
    q2 = q1 + v
    q3 = q2 + v
    z = np.float32(0)
    if m == 4:
        for k in range(c):
            a0, a1, a2, a3 = _taps4(r0, k, o0, o1, o2, o3, o4, o5, w9[0, k], w9[1, k], w9[2, k], z, z, z, z)
            a0, a1, a2, a3 = _taps4(r1, k, o0, o1, o2, o3, o4, o5, w9[3, k], w9[4, k], w9[5, k], a0, a1, a2, a3)
            a0, a1, a2, a3 = _taps4(r2, k, o0, o1, o2, o3, o4, o5, w9[6, k], w9[7, k], w9[8, k], a0, a1, a2, a3)
            bk = bias[k]
            o[q0 + k] = _clamp(a0 + bk, act_min, act_max)
            o[q1 + k] = _clamp(a1 + bk, act_min, act_max)
            o[q2 + k] = _clamp(a2 + bk, act_min, act_max)
            o[q3 + k] = _clamp(a3 + bk, act_min, act_max)
    elif m == 3:
        for k in range(c):
            a0, a1, a2 = _taps3(r0, k, o0, o1, o2, o3, o4, w9[0, k], w9[1, k], w9[2, k], z, z, z)
            a0, a1, a2 = _taps3(r1, k, o0, o1, o2, o3, o4, w9[3, k], w9[4, k], w9[5, k], a0, a1, a2)
            a0, a1, a2 = _taps3(r2, k, o0, o1, o2, o3, o4, w9[6, k], w9[7, k], w9[8, k], a0, a1, a2)
            bk = bias[k]
            o[q0 + k] = _clamp(a0 + bk, act_min, act_max)
            o[q1 + k] = _clamp(a1 + bk, act_min, act_max)
            o[q2 + k] = _clamp(a2 + bk, act_min, act_max)
    elif m == 2 and stride2:
        for k in range(c):
            a0, a1 = _taps2(r0, k, o0, o1, o2, o3, o4, w9[0, k], w9[1, k], w9[2, k], z, z, True)
            a0, a1 = _taps2(r1, k, o0, o1, o2, o3, o4, w9[3, k], w9[4, k], w9[5, k], a0, a1, True)
            a0, a1 = _taps2(r2, k, o0, o1, o2, o3, o4, w9[6, k], w9[7, k], w9[8, k], a0, a1, True)
            bk = bias[k]
            o[q0 + k] = _clamp(a0 + bk, act_min, act_max)
            o[q1 + k] = _clamp(a1 + bk, act_min, act_max)
    elif m == 2:
        for k in range(c):
            a0, a1 = _taps2(r0, k, o0, o1, o2, o3, o4, w9[0, k], w9[1, k], w9[2, k], z, z, False)
            a0, a1 = _taps2(r1, k, o0, o1, o2, o3, o4, w9[3, k], w9[4, k], w9[5, k], a0, a1, False)
            a0, a1 = _taps2(r2, k, o0, o1, o2, o3, o4, w9[6, k], w9[7, k], w9[8, k], a0, a1, False)
            bk = bias[k]
            o[q0 + k] = _clamp(a0 + bk, act_min, act_max)
            o[q1 + k] = _clamp(a1 + bk, act_min, act_max)
    else:
        for k in range(c):
            a0 = _taps1(r0, k, o0, o1, o2, w9[0, k], w9[1, k], w9[2, k], z)
            a0 = _taps1(r1, k, o0, o1, o2, w9[3, k], w9[4, k], w9[5, k], a0)
            a0 = _taps1(r2, k, o0, o1, o2, w9[6, k], w9[7, k], w9[8, k], a0)
            o[q0 + k] = _clamp(a0 + bias[k], act_min, act_max)


@njit(cache=True, inline="always")
def _taps4_edges(row, k, o0, o1, o2, o3, o4, o5, wa, wb, wc, a0, a1, a2, a3, left, right):
    """:func:`_taps4` where pixel 0 lacks column 0 (``left``: its tap is outside the
    input, never read) and / or pixel 3 lacks column 5 (``right``)."""
    x1, x2, x3, x4 = row[o1 + k], row[o2 + k], row[o3 + k], row[o4 + k]
    if left:
        a0 = a0 + x1 * wb + x2 * wc
    else:
        a0 = a0 + row[o0 + k] * wa + x1 * wb + x2 * wc
    a1 = a1 + x1 * wa + x2 * wb + x3 * wc
    a2 = a2 + x2 * wa + x3 * wb + x4 * wc
    if right:
        a3 = a3 + x3 * wa + x4 * wb
    else:
        a3 = a3 + x3 * wa + x4 * wb + row[o5 + k] * wc
    return a0, a1, a2, a3


@njit(cache=True, inline="always")
def _group4_edges_loop(r0, r1, r2, w9, bias, act_min, act_max, o0, o1, o2, o3, o4, o5, q0, q1, q2, q3, c, o,
                       left, right):
    z = np.float32(0)
    for k in range(c):
        a0, a1, a2, a3 = _taps4_edges(r0, k, o0, o1, o2, o3, o4, o5, w9[0, k], w9[1, k], w9[2, k], z, z, z, z,
                                      left, right)
        a0, a1, a2, a3 = _taps4_edges(r1, k, o0, o1, o2, o3, o4, o5, w9[3, k], w9[4, k], w9[5, k],
                                      a0, a1, a2, a3, left, right)
        a0, a1, a2, a3 = _taps4_edges(r2, k, o0, o1, o2, o3, o4, o5, w9[6, k], w9[7, k], w9[8, k],
                                      a0, a1, a2, a3, left, right)
        bk = bias[k]
        o[q0 + k] = _clamp(a0 + bk, act_min, act_max)
        o[q1 + k] = _clamp(a1 + bk, act_min, act_max)
        o[q2 + k] = _clamp(a2 + bk, act_min, act_max)
        o[q3 + k] = _clamp(a3 + bk, act_min, act_max)


@njit(cache=True, nogil=True, fastmath={"contract"})
def _depthwise3x3_float_group_edges(r0, r1, r2, w9, bias, act_min, act_max, p1, u, q, left, right, o):
    """:func:`_depthwise3x3_float_group` for four pixels one dilation apart (stride 1)
    whose first pixel has its left column outside the input (``left``) and / or whose
    last has its right column outside (``right``): those taps are left out, as TFLite
    does. p1: the offset of the first pixel's middle column (u = v = dilation x C)."""
    c = np.uint64(w9.shape[1])
    u = np.uint64(u)
    o1 = np.uint64(p1)
    o0 = o1 if left else o1 - u
    o2 = o1 + u
    o3 = o2 + u
    o4 = o3 + u
    o5 = o4 if right else o4 + u
    q0 = np.uint64(q)
    q1 = q0 + u
    q2 = q1 + u
    q3 = q2 + u
    if left and right:
        _group4_edges_loop(r0, r1, r2, w9, bias, act_min, act_max, o0, o1, o2, o3, o4, o5, q0, q1, q2, q3, c, o,
                           True, True)
    elif left:
        _group4_edges_loop(r0, r1, r2, w9, bias, act_min, act_max, o0, o1, o2, o3, o4, o5, q0, q1, q2, q3, c, o,
                           True, False)
    else:
        _group4_edges_loop(r0, r1, r2, w9, bias, act_min, act_max, o0, o1, o2, o3, o4, o5, q0, q1, q2, q3, c, o,
                           False, True)


@njit(cache=True, inline="always")
def _column_kind(ix, dw, win):
    """0: a pixel whose first tap is at input column ix has its three columns inside the
    input; 1: all but the left one; 2: all but the right one; 3: otherwise."""
    if ix >= 0 and ix + 2 * dw < win:
        return 0
    if ix < 0 <= ix + dw and ix + 2 * dw < win:
        return 1
    if ix >= 0 and ix + dw < win <= ix + 2 * dw:
        return 2
    return 3


@njit(cache=True, nogil=True, fastmath={"contract"})
def _depthwise3x3_float_stream(r0, r1, r2, wt, bt, act_min, act_max, p, d, q0, q1, o):
    """Output values ``o[q0 : q1]`` (whole pixels, stride 1, every tap inside the input)
    as one stream: value ``q0 + k`` sums ``r_i[p + j * d + k] * w[i, j]`` over the nine
    taps (d: the dilation x C). The taps repeat with period C, so runs of B values
    (wt [9, B], bt [B], the taps and bias tiled) start on pixel boundaries. For narrow
    layers, where a loop over one pixel's channels would be too short.
    """
    blk = wt.shape[1]
    w0, w1, w2, w3, w4, w5, w6, w7, w8 = wt[0], wt[1], wt[2], wt[3], wt[4], wt[5], wt[6], wt[7], wt[8]
    q = q0
    while q < q1:
        n = min(blk, q1 - q)
        a0, a1, a2 = r0[p : p + n], r0[p + d : p + d + n], r0[p + 2 * d : p + 2 * d + n]
        a3, a4, a5 = r1[p : p + n], r1[p + d : p + d + n], r1[p + 2 * d : p + 2 * d + n]
        a6, a7, a8 = r2[p : p + n], r2[p + d : p + d + n], r2[p + 2 * d : p + 2 * d + n]
        dst = o[q : q + n]
        for k in range(n):
            s = (a0[k] * w0[k] + a1[k] * w1[k] + a2[k] * w2[k] + a3[k] * w3[k] + a4[k] * w4[k]
                 + a5[k] * w5[k] + a6[k] * w6[k] + a7[k] * w7[k] + a8[k] * w8[k])
            dst[k] = _clamp(s + bt[k], act_min, act_max)
        q += n
        p += n


@njit(cache=True, nogil=True, fastmath={"contract"})
def _depthwise3x3_float_edge(r0, r1, r2, w9, bias, act_min, act_max, p, u, j0, nj, q, o):
    """One output pixel near the left or right edge, written at ``o[q :][:C]``.

    Only its filter columns j0 .. j0 + nj - 1 (nj = 0 to 3) fall inside the input;
    column j0 + jj reads row r_i from offset ``p + jj * u``. The taps outside the
    input are left out, as TFLite does; the others are summed in its order.
    """
    c = np.uint64(w9.shape[1])
    u = np.uint64(u)
    e0 = np.uint64(p)
    e1 = e0 + u
    e2 = e1 + u
    q = np.uint64(q)
    if nj == 3:
        for k in range(c):
            a = (r0[e0 + k] * w9[0, k] + r0[e1 + k] * w9[1, k] + r0[e2 + k] * w9[2, k]
                 + r1[e0 + k] * w9[3, k] + r1[e1 + k] * w9[4, k] + r1[e2 + k] * w9[5, k]
                 + r2[e0 + k] * w9[6, k] + r2[e1 + k] * w9[7, k] + r2[e2 + k] * w9[8, k])
            o[q + k] = _clamp(a + bias[k], act_min, act_max)
    elif nj == 2:
        for k in range(c):
            a = (r0[e0 + k] * w9[j0, k] + r0[e1 + k] * w9[j0 + 1, k]
                 + r1[e0 + k] * w9[j0 + 3, k] + r1[e1 + k] * w9[j0 + 4, k]
                 + r2[e0 + k] * w9[j0 + 6, k] + r2[e1 + k] * w9[j0 + 7, k])
            o[q + k] = _clamp(a + bias[k], act_min, act_max)
    elif nj == 1:
        for k in range(c):
            a = r0[e0 + k] * w9[j0, k] + r1[e0 + k] * w9[j0 + 3, k] + r2[e0 + k] * w9[j0 + 6, k]
            o[q + k] = _clamp(a + bias[k], act_min, act_max)
    else:
        for k in range(c):
            o[q + k] = _clamp(np.float32(0) + bias[k], act_min, act_max)


@njit(cache=True, nogil=True)
def _depthwise3x3_float_edges(r0, r1, r2, w9, bias, act_min, act_max, win, sw, dw, pl, ox0, ox1, o):
    """Output pixels ox0 .. ox1 - 1 of :func:`_depthwise3x3_float_row`, near the left or right edge."""
    c = w9.shape[1]
    for ox in range(ox0, ox1):
        ix = ox * sw - pl
        j0 = 0  # the filter columns inside the input: j0 .. j1 - 1
        while j0 < 3 and ix + j0 * dw < 0:
            j0 += 1
        j1 = j0
        while j1 < 3 and ix + j1 * dw < win:
            j1 += 1
        p = (ix + j0 * dw) * c if j1 > j0 else 0
        _depthwise3x3_float_edge(r0, r1, r2, w9, bias, act_min, act_max, p, dw * c, j0, j1 - j0, ox * c, o)


@njit(cache=True, nogil=True)
def _depthwise3x3_float_row(r0, r1, r2, w9, bias, wt, bt, act_min, act_max, win, sw, dw, pl, o):
    """One output row of a 3x3 float depthwise conv without depth multiplier, bias and clamp included.

    r0, r1, r2: the input rows the filter rows read, flat [W * C] (zeros for a row
    outside the input: its taps add nothing); o: the output row, flat [OW * C];
    w9 [9, C]: the taps; bias [C]; wt [9, B], bt [B]: the same repeated over B // C
    pixels (B >= C). Interior pixels go through :func:`_depthwise3x3_float_group`
    several at a time, or with stride 1 and B > C (narrow layers) through
    :func:`_depthwise3x3_float_stream`; the pixels near the left and right edges
    one at a time, leaving out their taps outside the input.
    """
    c = w9.shape[1]
    ow = o.shape[0] // c
    d = dw * c
    # Constant arguments go in as np.int64(...) / np.bool_(...): a bare literal (4, False, 0)
    # makes Numba compile one more specialization of the callee per literal value (three of
    # _depthwise3x3_float_group, two of _depthwise3x3_float_edges). One each cut the cold
    # compile of depthwise_conv_float from 28 to 20 CPU seconds, same run time, same bits.
    # Interior: ox * sw - pl >= 0 and ox * sw - pl + 2 * dw <= win - 1.
    lo = min(ow, (pl + sw - 1) // sw)
    last = win - 1 - 2 * dw + pl
    hi = max(lo, min(ow, last // sw + 1)) if last >= 0 else lo
    if sw == 1 and c < wt.shape[1]:
        # Narrow layers: pixels lo .. hi - 1 as one stream, in runs of the tiled taps' length.
        _depthwise3x3_float_stream(r0, r1, r2, wt, bt, act_min, act_max, (lo - pl) * c, d, lo * c, hi * c, o)
    elif sw == 1:
        # Pixels one dilation apart share columns: walk each residue class in groups of
        # four, where the first may lack its left column and the last its right one.
        for t in range(min(dw, ow)):
            ox = t
            while ox < ow:
                first = _column_kind(ox - pl, dw, win)
                if ox + 3 * dw < ow and first < 2 and lo <= ox + dw and ox + 2 * dw < hi:
                    final = _column_kind(ox + 3 * dw - pl, dw, win)
                    if final == 0 and first == 0:
                        _depthwise3x3_float_group(r0, r1, r2, w9, bias, act_min, act_max, (ox - pl) * c, d, ox * c,
                                                  d, np.int64(4), np.bool_(False), o)
                        ox += 4 * dw
                        continue
                    if final == 0 or final == 2:
                        _depthwise3x3_float_group_edges(r0, r1, r2, w9, bias, act_min, act_max,
                                                        (ox - pl + dw) * c, d, ox * c, first == 1, final == 2, o)
                        ox += 4 * dw
                        continue
                if first == 0:
                    m = min(3, (hi - 1 - ox) // dw + 1)
                    _depthwise3x3_float_group(r0, r1, r2, w9, bias, act_min, act_max, (ox - pl) * c, d, ox * c, d,
                                              m, np.bool_(False), o)
                    ox += m * dw
                else:
                    _depthwise3x3_float_edges(r0, r1, r2, w9, bias, act_min, act_max, win, sw, dw, pl, ox, ox + 1, o)
                    ox += dw
    else:
        ox = lo
        while ox < hi:
            m = 2 if sw == 2 and dw == 1 and ox + 1 < hi else 1
            _depthwise3x3_float_group(r0, r1, r2, w9, bias, act_min, act_max, (ox * sw - pl) * c, d, ox * c, c, m,
                                      m == 2, o)
            ox += m
    if sw != 1 or c < wt.shape[1]:
        _depthwise3x3_float_edges(r0, r1, r2, w9, bias, act_min, act_max, win, sw, dw, pl, np.int64(0), lo, o)
        _depthwise3x3_float_edges(r0, r1, r2, w9, bias, act_min, act_max, win, sw, dw, pl, hi, ow, o)


@njit(cache=True, parallel=True, nogil=True)
def depthwise_conv_float(x, w, pad, bias, out, sh, sw, dh, dw, pt, pl, act_min, act_max, nt, wt, bt, zrow):
    """DEPTHWISE_CONV_2D, float32. x [N, H, W, C]; w [KH, KW, C * M]; pad [C] zeros;
    bias [C * M]; out [N, OH, OW, C * M]; act_min / act_max float32 clamp bounds;
    nt: chunks of output rows (one per thread).

    A 3x3 filter without depth multiplier (MobileNet's) takes the row kernel
    :func:`_depthwise3x3_float_row`, which also takes wt [9, B] and bt [B] (the
    taps and bias repeated over B // C pixels) and reads zrow [W * C] zeros for the
    rows outside the input; other shapes add one tap at a time (``_depthwise_row``).
    """
    n, oh, ow, cout = out.shape
    _, h, win, cin = x.shape
    rows = n * oh
    fast = w.shape[0] == 3 and w.shape[1] == 3 and cout == cin
    w9 = w.reshape(w.shape[0] * w.shape[1], cout)
    for t in prange(nt):
        acc = np.empty((0 if fast else ow, cout), dtype=w.dtype)
        for r in range(rows * t // nt, rows * (t + 1) // nt):
            b, oy = r // oh, r % oh
            if fast:
                iy = oy * sh - pt
                r0 = x[b, iy].reshape(win * cin) if 0 <= iy < h else zrow
                r1 = x[b, iy + dh].reshape(win * cin) if 0 <= iy + dh < h else zrow
                r2 = x[b, iy + 2 * dh].reshape(win * cin) if 0 <= iy + 2 * dh < h else zrow
                _depthwise3x3_float_row(r0, r1, r2, w9, bias, wt, bt, act_min, act_max, win, sw, dw, pl,
                                        out[b, oy].reshape(ow * cout))
            else:
                _depthwise_row(x, w, pad, b, oy, sh, sw, dh, dw, pt, pl, acc)
                _bias_activation_into(acc, bias, act_min, act_max, out[b, oy])


@njit(cache=True, parallel=True, nogil=True)
def depthwise_conv_quantized(x, w, pad, bias, out, sh, sw, dh, dw, pt, pl,
                             table, out_zero_point, act_min, act_max, nt):
    """DEPTHWISE_CONV_2D, uint8/int8, as an exact floating-point sum (see the module docstring).

    x [N, H, W, C]; w [KH, KW, C * M] float32/float64, the centered filter (``w - w_zp``);
    pad [C] (x's dtype) filled with the input zero point; bias [C * M] int64: the int32
    bias minus ``input_zero_point * sum over taps of w`` (so that raw inputs can be
    summed, and a tap outside the input, reading ``pad``, adds exactly zero overall);
    table [7, C * M] (:func:`requant_table`); nt: chunks of output rows (one per thread).
    """
    n, oh, ow, cout = out.shape
    rows = n * oh
    for t in prange(nt):
        acc = np.empty((ow, cout), dtype=w.dtype)
        for r in range(rows * t // nt, rows * (t + 1) // nt):
            b, oy = r // oh, r % oh
            _depthwise_row(x, w, pad, b, oy, sh, sw, dh, dw, pt, pl, acc)
            _requantize_rows(acc, bias, table, out_zero_point, act_min, act_max, out[b, oy])


# --------------------------------------------------------------------------- TRANSPOSE_CONV


@njit(cache=True, parallel=True, nogil=True)
def transpose_conv_gather(taps, h, w, sh, sw, pt, pl, acc):
    """Sum a transposed convolution's tap products into its output pixels.

    taps: [N * H * W, KH, KW, Cout], what input pixel (y, x) sends through tap (i, j);
    acc: [N, OH, OW, Cout] (same dtype), overwritten: output pixel (oy, ox) receives
    taps[(y, x), i, j] for every i, j with ``y * sh - pt + i == oy`` and
    ``x * sw - pl + j == ox``.
    """
    n, oh, ow, cout = acc.shape
    kh, kw = taps.shape[1], taps.shape[2]
    for r in prange(n * oh):
        b = r // oh
        oy = r % oh
        for ox in range(ow):
            a = acc[b, oy, ox]
            a[:] = 0
            for i in range(kh):
                ty = oy + pt - i
                if ty < 0 or ty % sh != 0 or ty // sh >= h:
                    continue
                for j in range(kw):
                    tx = ox + pl - j
                    if tx < 0 or tx % sw != 0 or tx // sw >= w:
                        continue
                    t = taps[(b * h + ty // sh) * w + tx // sw, i, j]
                    for k in range(cout):
                        a[k] += t[k]
