"""Numba kernels of the convolutions (CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV).

- :func:`conv_float` / :func:`conv_quantized`: a whole CONV_2D. Each thread takes
  a contiguous range of output rows and works through it in blocks: im2col of the
  block's receptive fields into the thread's scratch rows (skipped for a 1x1
  stride-1 float conv, whose input pixels already are the matrix rows), one product
  in the same thread (float: BLAS, :func:`pydeeplab.kernels.blas.gemm`; 8-bit:
  :mod:`.igemm`), then the output stage while the block is still in cache.
- :func:`depthwise3x3_float`: a float 3x3 DEPTHWISE_CONV_2D without depth multiplier
  (MobileNet's) on zero-padded copies of the input rows, several output pixels at once
  in vectorized loops over the channels, sharing the loads of weights and input columns.
  :func:`depthwise_conv_float`: any other float DEPTHWISE_CONV_2D, one output row at a
  time. The quantized DEPTHWISE_CONV_2D is :mod:`.depthwise_quantized`'s.
- :func:`transpose_conv_gather` (TRANSPOSE_CONV, whose product the ops layer computes):
  sums its per-tap products into pixels, with the float output stage. The quantized
  output stage is :mod:`.requantize`'s.

Work is split over output rows, one contiguous range per thread: a ``prange`` loop, or,
for the heaviest kernels, a plain function doing part ``t`` of ``nt`` that
:func:`pydeeplab.kernels.parallel.in_parallel` runs on the threads (cheaper to compile).
All arrays are NHWC and C-contiguous; the semantics are stated in
``pydeeplab.reference.conv``.

A quantized CONV_2D multiplies integers (:mod:`.igemm`: int32 sums that wrap as
TFLite's accumulator does). A quantized TRANSPOSE_CONV sums in floating point on exact integers (see ``conv_plan.exact_dtype``): float32 where no
partial sum can exceed 2**24, float64 otherwise. The sums are then exact whatever
the order, and the output stage wraps them to int32 as TFLite's accumulator does.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .blas import gemm
from .igemm import LANES, MR, igemm
from .requantize import requantize_rows

# --------------------------------------------------------------------------- float output stages


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
    else:  # unsigned offsets: no negative-index wraparound on each short access (a first
        # conv on RGB copies runs of 9 as fast as a gather through a table of tap offsets)
        d0, s0 = np.uint64(base), np.uint64(start)
        for k in range(n):
            dst[d0 + np.uint64(k)] = src[s0 + np.uint64(k)] + offset


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


@njit(cache=True, nogil=True)
def conv_float(x, wmat, bias, out, kh, kw, sh, sw, dh, dw, pt, pl, act_min, act_max, block, scratch, t, nt):
    """CONV_2D, float32.

    x [N, H, W, Cin]; wmat [KH * KW * Cin, Cout] (filter rows in im2col order);
    bias [Cout]; out [N, OH, OW, Cout]; act_min / act_max float32 clamp bounds.
    ``block``: output rows per product; scratch [nt, >= block * OW * KH * KW * Cin]
    float32: the im2col rows (unused for a pointwise conv). Part t of nt
    (:func:`pydeeplab.kernels.parallel.in_parallel`): output rows ``rows * t // nt``
    to ``rows * (t + 1) // nt``, with ``scratch[t]``.
    """
    n, oh, ow, cout = out.shape
    depth = wmat.shape[0]
    rows = n * oh
    out2d = out.reshape(rows * ow, cout)
    x2d = x.reshape(x.shape[0] * x.shape[1] * x.shape[2], x.shape[3])
    direct = _pointwise(kh, kw, sh, sw, pt, pl)
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
def conv_quantized(x, wpack, bias, out, kh, kw, sh, sw, dh, dw, pt, pl, input_offset,
                   table, out_zero_point, act_min, act_max, block, cols_scratch, acc_scratch, t, nt):
    """CONV_2D, uint8/int8, as an integer product (:mod:`.igemm`).

    x [N, H, W, Cin]; out [N, OH, OW, Cout]; table [6, >= Cout]
    (:func:`.requantize.requant_table`); bias [>= Cout] int64 (int32 values). Per block of
    output rows, the im2col rows (for a 1x1 stride-1 conv whose depth fills the product's
    steps, the input pixels) are written as ``x + input_offset`` in cols_scratch's type,
    multiplied with wpack in int32 and the output stage follows. Either int16 rows
    ``x - x_zp`` (input_offset = -x_zp) times the centered filter ``w - w_zp``
    (:func:`.igemm.pack_weights`): the product is TFLite's accumulator exactly; or, for an
    int8 pointwise conv, uint8 rows ``x + 128`` times the int8 filter
    (:func:`.igemm.pack_weights`, step 4), the bias then holding ``-(128 + x_zp) * sum_k w``.
    cols_scratch [nt, >= rows * K'] (K' = the filter's depth rounded up to whole steps) and
    acc_scratch int32 [nt, >= rows * 16 * NB], rows = ``block * OW`` rounded up to a
    multiple of :data:`.igemm.MR`. Part t of nt
    (:func:`pydeeplab.kernels.parallel.in_parallel`): output rows ``rows * t // nt`` to
    ``rows * (t + 1) // nt``.
    """
    n, oh, ow, cout = out.shape
    width, lanes = _product_depth(wpack), LANES * wpack.shape[0]
    rows = n * oh
    out2d = out.reshape(rows * ow, cout)
    direct = _pointwise(kh, kw, sh, sw, pt, pl) and kh * kw * x.shape[3] == width
    for r0 in range(rows * t // nt, rows * (t + 1) // nt, block):
        r1 = min(r0 + block, rows * (t + 1) // nt)
        m = (r1 - r0) * ow
        cols = cols_scratch[t][: m * width].reshape(m, width)
        if direct:
            _convert(x, r0 * ow, r1 * ow, cols, input_offset)
        else:
            _im2col(x, cols, r0, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, input_offset)
        mp = -(-m // MR) * MR  # the product works on MR rows at a time; rows past m are scratch
        products = acc_scratch[t][: mp * lanes].reshape(mp, lanes)
        igemm(cols_scratch[t][: mp * width].reshape(mp, width), wpack, products)
        requantize_rows(products, bias, table, out_zero_point, act_min, act_max, out2d[r0 * ow : r1 * ow])


@njit(cache=True, nogil=True)
def conv_pointwise_quantized(x, wpack, bias, out, input_offset, table, out_zero_point, act_min, act_max, block,
                             cols_scratch, acc_scratch, t, nt):
    """:func:`conv_quantized` of a 1x1 stride-1 conv whose depth fills the product's steps: the
    input pixels are the matrix rows. Its own kernel so that an int8 model's uint8 x int8
    product does not compile an im2col it never runs."""
    n, oh, ow, cout = out.shape
    width, lanes = _product_depth(wpack), LANES * wpack.shape[0]
    rows = n * oh
    out2d = out.reshape(rows * ow, cout)
    for r0 in range(rows * t // nt, rows * (t + 1) // nt, block):
        r1 = min(r0 + block, rows * (t + 1) // nt)
        m = (r1 - r0) * ow
        _convert(x, r0 * ow, r1 * ow, cols_scratch[t][: m * width].reshape(m, width), input_offset)
        mp = -(-m // MR) * MR  # the product works on MR rows at a time; rows past m are scratch
        products = acc_scratch[t][: mp * lanes].reshape(mp, lanes)
        igemm(cols_scratch[t][: mp * width].reshape(mp, width), wpack, products)
        requantize_rows(products, bias, table, out_zero_point, act_min, act_max, out2d[r0 * ow : r1 * ow])


@njit(cache=True, inline="always")
def _product_depth(wpack):
    """The filter's depth rounded up to whole steps of the product (2 int16 or 4 int8 rows a step)."""
    return wpack.shape[1] * (wpack.shape[2] // LANES)


# --------------------------------------------------------------------------- DEPTHWISE_CONV_2D


@njit(cache=True, nogil=True, fastmath={"contract"})
def _depthwise_row(x, w, pad, b, oy, sh, sw, dh, dw, pt, pl, acc):
    """acc [OW, >= Cout] = the tap sums of output row oy of batch b (its first Cout columns).

    x [N, H, W, C]; w [KH, KW, C * M] float32; pad [C] zeros: what a tap outside x
    reads. Channel ``ic * M + m`` reads input channel ic. The taps are added one at a
    time, in TFLite's order (a float model's 3x3 filters without depth multiplier take
    :func:`depthwise3x3_float`).
    """
    _, h, win, cin = x.shape
    ow, cout = acc.shape[0], w.shape[2]  # acc may be wider (padded rows)
    kh, kw = w.shape[0], w.shape[1]
    mult = cout // cin
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


@njit(cache=True, nogil=True)
def _padded_row(x, b, iy, dh, pl, lc, rc, ring, tags, zero):
    """Input row iy of batch b as a padded flat row [WP * C] of float32: input column ix
    at ``(pl + ix) * C`` for the columns ``ix < lc`` and ``ix >= rc`` (all of them when
    lc >= rc; the others are not read), zeros in the pad columns around them; the input
    row itself when no column is needed (lc = 0, rc = W). A row outside the input is
    ``zero``. Converted rows are kept in ``ring`` [3, WP * C] (pad columns already
    zero), slot ``((b * H + iy) // dh) % 3``, ``tags`` [3] naming the row each slot
    holds: the three rows of one output row (dh apart) never share a slot, and output
    rows taken dh apart (:func:`depthwise3x3_float`) find two of theirs already there.
    """
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    if iy < 0 or iy >= h:
        return zero
    if lc == 0 and rc == w:  # no pixel reads padding (then pl = 0): the input row itself
        return x[b, iy].reshape(w * c)
    tag = b * h + iy
    slot = (tag // dh) % 3
    row = ring[slot]
    if tags[slot] != tag:
        src = x[b, iy].reshape(w * c)
        if lc >= rc:
            lc = rc = w
        dst = row[pl * c : (pl + lc) * c]
        for k in range(lc * c):
            dst[k] = src[k]
        dst = row[(pl + rc) * c : (pl + w) * c]
        tail = src[rc * c :]
        for k in range((w - rc) * c):
            dst[k] = tail[k]
        tags[slot] = tag
    return row


@njit(cache=True, nogil=True)
def _input_row(x, b, iy, zero):
    """Input row iy of batch b as a flat row [W * C], or ``zero`` outside the input."""
    if iy < 0 or iy >= x.shape[1]:
        return zero
    return x[b, iy].reshape(x.shape[2] * x.shape[3])


@njit(cache=True, nogil=True, fastmath={"contract"})
def _depthwise3x3_four(r0, r1, r2, w9, bias, act_min, act_max, p, u, o):
    """Four output pixels one dilation apart (stride 1) of a 3x3 depthwise conv on padded rows.

    r0, r1, r2: the padded input rows the filter rows read (flat [WP * C], see
    :func:`_padded_row`); w9 [9, C]: the taps in TFLite's order; bias [C]; o: the
    output row, flat [OW * C]. Pixel g is written at ``o[p + g * u :][:C]`` and its tap
    (i, j) reads r_i at ``p + (g + j) * u`` (u = dilation x C): the four pixels share
    the six columns they read, so each input value and weight is loaded once for
    several products. The nine products are summed in TFLite's order with fused
    multiply-adds (within the float tolerance; exact on integer-valued data below
    2**24). Offsets are unsigned: the channel loop then vectorizes.
    """
    c = np.uint64(w9.shape[1])
    u = np.uint64(u)
    o0 = np.uint64(p)
    o1 = o0 + u
    o2 = o1 + u
    o3 = o2 + u
    o4 = o3 + u
    o5 = o4 + u
    for k in range(c):
        wa, wb, wc = w9[0, k], w9[1, k], w9[2, k]
        x0, x1, x2, x3, x4, x5 = r0[o0 + k], r0[o1 + k], r0[o2 + k], r0[o3 + k], r0[o4 + k], r0[o5 + k]
        a0 = x0 * wa + x1 * wb + x2 * wc
        a1 = x1 * wa + x2 * wb + x3 * wc
        a2 = x2 * wa + x3 * wb + x4 * wc
        a3 = x3 * wa + x4 * wb + x5 * wc
        wa, wb, wc = w9[3, k], w9[4, k], w9[5, k]
        x0, x1, x2, x3, x4, x5 = r1[o0 + k], r1[o1 + k], r1[o2 + k], r1[o3 + k], r1[o4 + k], r1[o5 + k]
        a0 = a0 + x0 * wa + x1 * wb + x2 * wc
        a1 = a1 + x1 * wa + x2 * wb + x3 * wc
        a2 = a2 + x2 * wa + x3 * wb + x4 * wc
        a3 = a3 + x3 * wa + x4 * wb + x5 * wc
        wa, wb, wc = w9[6, k], w9[7, k], w9[8, k]
        x0, x1, x2, x3, x4, x5 = r2[o0 + k], r2[o1 + k], r2[o2 + k], r2[o3 + k], r2[o4 + k], r2[o5 + k]
        a0 = a0 + x0 * wa + x1 * wb + x2 * wc
        a1 = a1 + x1 * wa + x2 * wb + x3 * wc
        a2 = a2 + x2 * wa + x3 * wb + x4 * wc
        a3 = a3 + x3 * wa + x4 * wb + x5 * wc
        bk = bias[k]
        o[o0 + k] = _clamp(a0 + bk, act_min, act_max)
        o[o1 + k] = _clamp(a1 + bk, act_min, act_max)
        o[o2 + k] = _clamp(a2 + bk, act_min, act_max)
        o[o3 + k] = _clamp(a3 + bk, act_min, act_max)


@njit(cache=True, nogil=True, fastmath={"contract"})
def _depthwise3x3_one(r0, r1, r2, w9, bias, act_min, act_max, p, u, q, o):
    """One output pixel, written at ``o[q :][:C]``, its tap (i, j) reading r_i at
    ``p + j * u``; otherwise as :func:`_depthwise3x3_four`."""
    c = np.uint64(w9.shape[1])
    u = np.uint64(u)
    e0 = np.uint64(p)
    e1 = e0 + u
    e2 = e1 + u
    q = np.uint64(q)
    for k in range(c):
        a = (r0[e0 + k] * w9[0, k] + r0[e1 + k] * w9[1, k] + r0[e2 + k] * w9[2, k]
             + r1[e0 + k] * w9[3, k] + r1[e1 + k] * w9[4, k] + r1[e2 + k] * w9[5, k]
             + r2[e0 + k] * w9[6, k] + r2[e1 + k] * w9[7, k] + r2[e2 + k] * w9[8, k])
        o[q + k] = _clamp(a + bias[k], act_min, act_max)


@njit(cache=True, nogil=True, fastmath={"contract"})
def _depthwise3x3_two_stride2(r0, r1, r2, w9, bias, act_min, act_max, p, q, o):
    """Two adjacent output pixels of a stride-2 3x3 depthwise conv without dilation: pixel
    g is written at ``o[q + g * C :][:C]`` and its tap (i, j) reads r_i at
    ``p + (2 * g + j) * C``; the column they share is loaded once. Otherwise as
    :func:`_depthwise3x3_four` (four pixels would read nine columns per row: too many
    pointers for LLVM's vectorizer, measured 3x slower)."""
    c = np.uint64(w9.shape[1])
    e0 = np.uint64(p)
    e1 = e0 + c
    e2 = e1 + c
    e3 = e2 + c
    e4 = e3 + c
    q0 = np.uint64(q)
    q1 = q0 + c
    for k in range(c):
        wa, wb, wc = w9[0, k], w9[1, k], w9[2, k]
        x0, x1, x2, x3, x4 = r0[e0 + k], r0[e1 + k], r0[e2 + k], r0[e3 + k], r0[e4 + k]
        a0 = x0 * wa + x1 * wb + x2 * wc
        a1 = x2 * wa + x3 * wb + x4 * wc
        wa, wb, wc = w9[3, k], w9[4, k], w9[5, k]
        x0, x1, x2, x3, x4 = r1[e0 + k], r1[e1 + k], r1[e2 + k], r1[e3 + k], r1[e4 + k]
        a0 = a0 + x0 * wa + x1 * wb + x2 * wc
        a1 = a1 + x2 * wa + x3 * wb + x4 * wc
        wa, wb, wc = w9[6, k], w9[7, k], w9[8, k]
        x0, x1, x2, x3, x4 = r2[e0 + k], r2[e1 + k], r2[e2 + k], r2[e3 + k], r2[e4 + k]
        a0 = a0 + x0 * wa + x1 * wb + x2 * wc
        a1 = a1 + x2 * wa + x3 * wb + x4 * wc
        bk = bias[k]
        o[q0 + k] = _clamp(a0 + bk, act_min, act_max)
        o[q1 + k] = _clamp(a1 + bk, act_min, act_max)


@njit(cache=True, nogil=True, fastmath={"contract"})
def _depthwise3x3_stream(r0, r1, r2, wt, bt, act_min, act_max, u, o):
    """A whole stride-1 output row as one stream, for narrow layers (a loop over one
    pixel's few channels would be too short): value q of o sums ``r_i[q + j * u] * w[i, j]``
    over the nine taps. The taps repeat with period C, so runs of B values (wt [9, B],
    bt [B]: the taps and bias tiled over B // C pixels) start on pixel boundaries."""
    blk = wt.shape[1]
    w0, w1, w2, w3, w4, w5, w6, w7, w8 = wt[0], wt[1], wt[2], wt[3], wt[4], wt[5], wt[6], wt[7], wt[8]
    q = 0
    while q < o.shape[0]:
        n = min(blk, o.shape[0] - q)
        a0, a1, a2 = r0[q : q + n], r0[q + u : q + u + n], r0[q + 2 * u : q + 2 * u + n]
        a3, a4, a5 = r1[q : q + n], r1[q + u : q + u + n], r1[q + 2 * u : q + 2 * u + n]
        a6, a7, a8 = r2[q : q + n], r2[q + u : q + u + n], r2[q + 2 * u : q + 2 * u + n]
        dst = o[q : q + n]
        for k in range(n):
            s = (a0[k] * w0[k] + a1[k] * w1[k] + a2[k] * w2[k] + a3[k] * w3[k] + a4[k] * w4[k]
                 + a5[k] * w5[k] + a6[k] * w6[k] + a7[k] * w7[k] + a8[k] * w8[k])
            dst[k] = _clamp(s + bt[k], act_min, act_max)
        q += n


@njit(cache=True, nogil=True)
def _dilation_order(start, stop, dh):
    """Rows start .. stop - 1, those dh apart one after the other (start, start + dh, ..., then
    start + 1, ...): with dilation dh, successive rows then share two of their three input rows."""
    order = np.empty(stop - start, np.int64)
    i = 0
    for t in range(min(dh, stop - start)):
        for r in range(start + t, stop, dh):
            order[i] = r
            i += 1
    return order


@njit(cache=True, nogil=True)
def depthwise3x3_float(x, w9, bias, wt, bt, out, sh, sw, dh, dw, pt, pl, act_min, act_max, ring, zero, lo, hi, t, nt):
    """DEPTHWISE_CONV_2D, float32, 3x3 filter without depth multiplier (MobileNet's).

    x [N, H, W, C]; w9 [9, C] the taps in TFLite's order; bias [C]; wt [9, B], bt [B]: the
    same tiled over B // C pixels (B = C for wide layers); out [N, OH, OW, C];
    act_min / act_max float32 clamp bounds. ring [nt, 3, WP * C] float32 scratch (WP >=
    max(pl + W, (OW - 1) * sw + 2 * dw + 1) padded columns) and zero [WP * C] zeros: see
    :func:`_padded_row`. A tap outside the input reads a pad zero, adding nothing, as
    TFLite leaves it out. With stride 2 (rows twice as long as the output's: copying
    them cost 0.29 -> 0.22 ms on 129x129x48), the pairs of output columns in
    ``lo <= ox < hi`` (lo and hi even), whose taps are all inside the input, read the
    input rows themselves and only the columns the others read are copied. Stride 1
    passes lo = hi = OW (all from padded rows), or lo = 0, hi = OW where no tap reads
    padding (then pl = 0 and every row is read in place). Part t of nt
    (:func:`pydeeplab.kernels.parallel.in_parallel`): output rows ``rows * t // nt`` to
    ``rows * (t + 1) // nt``, with ``ring[t]``.
    """
    n, oh, ow, c = out.shape
    win = x.shape[2]
    rows = n * oh
    u = dw * c
    slots = ring[t]
    for s in range(slots.shape[0]):  # the pad columns (the workspace is shared by every operator)
        slots[s, : pl * c] = 0
        slots[s, (pl + win) * c :] = 0
    tags = np.full(slots.shape[0], -1, np.int64)
    # The input columns the padded rows need: those the pixels outside [lo, hi) read
    # (none at all, lc = 0 and rc = W, when every pixel reads the input rows).
    lc = min(win, (lo - 1) * sw - pl + 2 * dw + 1) if lo > 0 else 0
    rc = max(0, hi * sw - pl) if hi < ow else win
    for r in _dilation_order(rows * t // nt, rows * (t + 1) // nt, dh):
        b, oy = r // oh, r % oh
        iy = oy * sh - pt
        r0 = _padded_row(x, b, iy, dh, pl, lc, rc, slots, tags, zero)
        r1 = _padded_row(x, b, iy + dh, dh, pl, lc, rc, slots, tags, zero)
        r2 = _padded_row(x, b, iy + 2 * dh, dh, pl, lc, rc, slots, tags, zero)
        # Output pixel ox, tap (i, j) reads padded column ox * sw + j * dw of r_i: no pixel
        # needs an edge case. Stride 1: narrow layers (wt tiled wider than C) as one stream,
        # others four pixels one dilation apart at a time; stride 2 without dilation two
        # adjacent pixels at a time; the rest one pixel at a time. (Written out here rather
        # than in a row function: one call level less is 1.2 s less cold compile.)
        o = out[b, oy].reshape(ow * c)
        ox = 0
        if sw == 1 and wt.shape[1] > c:
            _depthwise3x3_stream(r0, r1, r2, wt, bt, act_min, act_max, u, o)
            ox = ow
        elif sw == 1:
            for first in range(min(dw, ow)):
                ox = first
                while ox + 3 * dw < ow:
                    _depthwise3x3_four(r0, r1, r2, w9, bias, act_min, act_max, ox * c, u, o)
                    ox += 4 * dw
                while ox < ow:
                    _depthwise3x3_one(r0, r1, r2, w9, bias, act_min, act_max, ox * c, u, ox * c, o)
                    ox += dw
            ox = ow
        elif sw == 2 and dw == 1:
            q0 = _input_row(x, b, iy, zero)
            q1 = _input_row(x, b, iy + dh, zero)
            q2 = _input_row(x, b, iy + 2 * dh, zero)
            # Pairs on padded rows up to lo, on the input rows up to hi, padded again after:
            # one call site (each is compiled inline again), its rows chosen per run.
            for run in range(3):
                a0, a1, a2, shift, stop = (q0, q1, q2, pl, hi) if run == 1 else (r0, r1, r2, 0, lo if run == 0 else ow)
                while ox + 1 < stop:
                    _depthwise3x3_two_stride2(a0, a1, a2, w9, bias, act_min, act_max, (2 * ox - shift) * c, ox * c, o)
                    ox += 2
        for ox in range(ox, ow):
            _depthwise3x3_one(r0, r1, r2, w9, bias, act_min, act_max, ox * sw * c, u, ox * c, o)


@njit(cache=True, nogil=True)
def depthwise_conv_float(x, w, pad, bias, out, sh, sw, dh, dw, pt, pl, act_min, act_max, t, nt):
    """DEPTHWISE_CONV_2D, float32, any filter size and depth multiplier (see
    :func:`depthwise3x3_float` for MobileNet's 3x3). x [N, H, W, C]; w [KH, KW, C * M];
    pad [C] zeros; bias [C * M]; out [N, OH, OW, C * M]; act_min / act_max float32
    clamp bounds. Taps are added one at a time (``_depthwise_row``). Part t of nt
    (:func:`pydeeplab.kernels.parallel.in_parallel`) of the output rows."""
    n, oh, ow, cout = out.shape
    rows = n * oh
    acc = np.empty((ow, cout), dtype=w.dtype)
    for r in range(rows * t // nt, rows * (t + 1) // nt):
        b, oy = r // oh, r % oh
        _depthwise_row(x, w, pad, b, oy, sh, sw, dh, dw, pt, pl, acc)
        _bias_activation_into(acc, bias, act_min, act_max, out[b, oy])


# --------------------------------------------------------------------------- TRANSPOSE_CONV


@njit(cache=True, parallel=True, nogil=True)
def transpose_conv_gather(taps, h, w, sh, sw, pt, pl, bias, act_min, act_max, acc):
    """Sum a transposed convolution's tap products into its output pixels, then add the bias and clamp.

    taps: [N * H * W, KH, KW, Cout], what input pixel (y, x) sends through tap (i, j);
    acc: [N, OH, OW, Cout] (same dtype), overwritten: output pixel (oy, ox) receives
    taps[(y, x), i, j] for every i, j with ``y * sh - pt + i == oy`` and
    ``x * sw - pl + j == ox``, then ``min(max(sum + bias, act_min), act_max)`` (bias [Cout];
    zeros and infinite bounds where a quantized output stage follows).
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
            for k in range(cout):
                a[k] = min(max(a[k] + bias[k], act_min), act_max)
