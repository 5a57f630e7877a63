"""Numba kernels of the convolutions (CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV).

Matrix products are not here: the ops layer calls BLAS (``np.matmul``) between
these kernels, which move data into and out of matrix form:

- :func:`im2col` lays the receptive fields of a block of output rows out as the
  rows of a matrix (centered on the input zero point for quantized inputs);
- :func:`bias_activation` / :func:`requantize` are the output stages applied to
  a product (float32 in place; quantized into the 8-bit output);
- :func:`depthwise_conv_float` / :func:`depthwise_conv_quantized` are complete
  depthwise convolutions, where there is no matrix product to hand to BLAS;
- :func:`transpose_conv_gather` sums the per-tap products of a transposed
  convolution into its output pixels.

All arrays are NHWC and C-contiguous; the semantics are stated in
``pydeeplab.reference.conv``. Work is split over output rows with ``prange``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_INT32_MIN = -(2**31)


@njit(cache=True, parallel=True)
def im2col(x, cols, row0, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, offset):
    """Receptive fields of output rows ``row0 ..`` as matrix rows.

    x: [N, H, W, C]; cols: [R * OW, KH * KW * C] (float32 or float64), R output rows
    (output row r is pixel row ``r % OH`` of batch ``r // OH``). Element
    ``(rr * OW + ox, (i * KW + j) * C + c)`` becomes ``x[b, iy, ix, c] + offset``
    with ``iy = oy * sh - pt + i * dh``, ``ix = ox * sw - pl + j * dw``, or 0 where
    (iy, ix) is outside x. ``offset`` is ``-input_zero_point`` (0 for float).
    """
    _, h, w, c = x.shape
    rows = cols.shape[0] // ow
    for rr in prange(rows):
        r = row0 + rr
        b = r // oh
        oy = r % oh
        for ox in range(ow):
            dst = cols[rr * ow + ox]
            for i in range(kh):
                iy = oy * sh - pt + i * dh
                for j in range(kw):
                    ix = ox * sw - pl + j * dw
                    base = (i * kw + j) * c
                    if iy >= 0 and iy < h and ix >= 0 and ix < w:
                        src = x[b, iy, ix]
                        for k in range(c):
                            dst[base + k] = src[k] + offset
                    else:
                        for k in range(c):
                            dst[base + k] = 0


@njit(cache=True, parallel=True)
def bias_activation(y, bias, act_min, act_max):
    """In place on y [M, C] float32: ``y = min(max(y + bias, act_min), act_max)``, bias [C]."""
    m, c = y.shape
    for r in prange(m):
        row = y[r]
        for k in range(c):
            row[k] = min(max(row[k] + bias[k], act_min), act_max)


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


@njit(cache=True, parallel=True)
def requantize(acc, bias, multiplier, left_shift, right_shift, out_zero_point, act_min, act_max, out):
    """The quantized output stage: out [M, C] (uint8/int8) from acc [M, C].

    acc holds exact integers (float products of centered 8-bit values); bias int32 [C];
    multiplier, left_shift, right_shift [C] (see :func:`requantize_one`). The sum
    ``acc + bias`` wraps as TFLite's int32 accumulator does.
    """
    m, c = acc.shape
    for r in prange(m):
        a = acc[r]
        o = out[r]
        for k in range(c):
            total = np.int64(a[k]) + bias[k]
            total = ((total - _INT32_MIN) & 0xFFFFFFFF) + _INT32_MIN
            o[k] = requantize_one(total, multiplier[k], left_shift[k], right_shift[k],
                                  out_zero_point, act_min, act_max)


@njit(cache=True)
def _tap_range(n_out, stride, pad, tap_offset, in_size):
    """Outputs o in [lo, hi) whose input index ``o * stride - pad + tap_offset`` is in [0, in_size)."""
    t = pad - tap_offset  # need o * stride >= t
    lo = 0 if t <= 0 else (t + stride - 1) // stride
    u = in_size - 1 + pad - tap_offset  # need o * stride <= u
    hi = 0 if u < 0 else u // stride + 1
    return lo, min(hi, n_out)


@njit(cache=True)
def _depthwise_row(x, w, b, oy, sh, sw, dh, dw, pt, pl, offset, acc):
    """acc [OW, Cout] = the tap sums of output row oy of batch b (TFLite's tap order).

    Taps outside the input are skipped (the output x range of each tap is computed
    once, not tested per pixel). Channel ``ic * M + m`` reads input channel ic.
    """
    _, h, win, cin = x.shape
    ow, cout = acc.shape
    kh, kw = w.shape[0], w.shape[1]
    mult = cout // cin
    acc[:] = 0
    for i in range(kh):
        iy = oy * sh - pt + i * dh
        if iy < 0 or iy >= h:
            continue
        xrow = x[b, iy]
        for j in range(kw):
            wt = w[i, j]
            lo, hi = _tap_range(ow, sw, pl, j * dw, win)
            for ox in range(lo, hi):
                xv = xrow[ox * sw - pl + j * dw]
                a = acc[ox]
                if mult == 1:
                    for k in range(cout):
                        a[k] += (xv[k] + offset) * wt[k]
                else:
                    for ic in range(cin):
                        v = xv[ic] + offset
                        for m in range(mult):
                            a[ic * mult + m] += v * wt[ic * mult + m]


@njit(cache=True, parallel=True)
def depthwise_conv_float(x, w, bias, out, sh, sw, dh, dw, pt, pl, act_min, act_max):
    """DEPTHWISE_CONV_2D, float32. x [N, H, W, C]; w [KH, KW, C * M]; bias [C * M];
    out [N, OH, OW, C * M]; act_min / act_max float32 clamp bounds."""
    n, oh, ow, cout = out.shape
    zero = np.float32(0)
    for r in prange(n * oh):
        b = r // oh
        oy = r % oh
        acc = np.empty((ow, cout), dtype=np.float32)
        _depthwise_row(x, w, b, oy, sh, sw, dh, dw, pt, pl, zero, acc)
        for ox in range(ow):
            a = acc[ox]
            o = out[b, oy, ox]
            for k in range(cout):
                o[k] = min(max(a[k] + bias[k], act_min), act_max)


@njit(cache=True, parallel=True)
def depthwise_conv_quantized(x, w, bias, out, sh, sw, dh, dw, pt, pl, input_offset,
                             multiplier, left_shift, right_shift, out_zero_point, act_min, act_max):
    """DEPTHWISE_CONV_2D, uint8/int8. x [N, H, W, C]; w [KH, KW, C * M] int32, already
    centered (``w - w_zp``); bias [C * M] int32; input_offset = -input_zero_point;
    multiplier, left_shift, right_shift [C * M] (see :func:`requantize_one`).
    int32 accumulation (wrapping), as TFLite."""
    n, oh, ow, cout = out.shape
    off = np.int32(input_offset)
    for r in prange(n * oh):
        b = r // oh
        oy = r % oh
        acc = np.empty((ow, cout), dtype=np.int32)
        _depthwise_row(x, w, b, oy, sh, sw, dh, dw, pt, pl, off, acc)
        for ox in range(ow):
            a = acc[ox]
            o = out[b, oy, ox]
            for k in range(cout):
                o[k] = requantize_one(np.int32(a[k] + bias[k]), multiplier[k], left_shift[k], right_shift[k],
                                      out_zero_point, act_min, act_max)


@njit(cache=True, parallel=True)
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
