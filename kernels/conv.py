"""Numba kernels of the convolutions (CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV).

- :func:`conv_float` / :func:`conv_quantized`: a whole CONV_2D. Each thread takes
  a contiguous range of output rows (a quantized 1x1 conv: of pixels) and works through it in
  blocks: im2col of the block's receptive fields into the thread's scratch rows (for a 1x1
  stride-1 conv, whose input pixels already are the matrix rows, none in
  :func:`conv_float_pointwise`, a copy as uint8 in :func:`conv_quantized`), one product in the
  same thread (float: BLAS, :func:`pydeeplab.kernels.blas.gemm`, then the output stage while the
  block is still in cache; 8-bit: :mod:`.igemm`, uint8 x int8, the output stage on its sums in
  registers). (A float conv with a shallow 3-row filter, or a 1x1 one with few output channels:
  :mod:`.direct_conv`.)
- :func:`depthwise3x3_float`: a float 3x3 DEPTHWISE_CONV_2D without depth multiplier
  (MobileNet's) on zero-padded copies of the input rows, several output pixels at once
  (:mod:`.depthwise_row`), sharing the loads of input columns.
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
TFLite's accumulator does). A quantized TRANSPOSE_CONV sums in floating point on exact
integers (see ``conv_plan.exact_dtype``): float32 where no partial sum can exceed 2**24,
float64 otherwise. The sums are then exact whatever
the order, and the output stage wraps them to int32 as TFLite's accumulator does.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import config, njit, prange, types
from numba.core.errors import TypingError
from numba.extending import intrinsic

from .blas import gemm
from .depthwise_row import depthwise_row_shared1, depthwise_row_shared2
from .igemm import LANES, MR, igemm
from .vector_ir import lanes_below, masked_load, masked_store, splat

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


@intrinsic
def _copy_short(typingctx, src, start, dst, base, n, offset):
    """dst[base : base + n] = src[start : start + n] + offset for 1 <= n <= 16: one masked vector load
    and one masked store (AVX-512 masks bytes, words and dwords), nothing outside the n elements
    read or written. src, dst: C-contiguous 1-D integer or float arrays; the values are converted to
    dst's type and offset is added in it (integers wrap as storing a wider sum would)."""
    for name, arr in (("src", src), ("dst", dst)):
        if not isinstance(arr, types.Array) or arr.ndim != 1 or arr.layout != "C":
            raise TypingError(f"_copy_short: {name} must be a C-contiguous 1-D array, not {arr}")
    sig = types.void(src, types.intp, dst, types.intp, types.intp, offset)

    def codegen(context, builder, signature, args):
        src_v, start_v, dst_v, base_v, n_v, offset_v = args
        s_type, d_type = context.get_data_type(src.dtype), context.get_data_type(dst.dtype)
        s_vec, d_vec = ir.VectorType(s_type, 16), ir.VectorType(d_type, 16)
        s_ptr = builder.gep(context.make_array(src)(context, builder, src_v).data, [start_v])
        d_ptr = builder.gep(context.make_array(dst)(context, builder, dst_v).data, [base_v])
        mask = lanes_below(builder, n_v, 16, within=True)
        v = masked_load(builder, builder.bitcast(s_ptr, s_vec.as_pointer()), mask, s_vec, src.dtype.bitwidth // 8)
        if isinstance(dst.dtype, types.Float):
            if isinstance(src.dtype, types.Float):
                v = v if src.dtype == dst.dtype else builder.fpext(v, d_vec)
            else:
                v = builder.sitofp(v, d_vec) if src.dtype.signed else builder.uitofp(v, d_vec)
            add = builder.fadd
        else:
            if src.dtype.bitwidth < dst.dtype.bitwidth:
                v = builder.sext(v, d_vec) if src.dtype.signed else builder.zext(v, d_vec)
            elif src.dtype.bitwidth > dst.dtype.bitwidth:
                v = builder.trunc(v, d_vec)
            add = builder.add
        v = add(v, splat(builder, context.cast(builder, offset_v, offset, dst.dtype), d_vec))
        masked_store(builder, v, builder.bitcast(d_ptr, d_vec.as_pointer()), mask, dst.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, inline="always")
def _copy_run(src, start, dst, base, n, offset):
    """dst[base : base + n] = src[start : start + n] + offset (1-D arrays, indices >= 0), 16 values a step."""
    for k in range(0, n, 16):
        _copy_short(src, start + k, dst, base + k, min(n - k, 16), offset)


@njit(cache=True, nogil=True)
def _im2col(x, cols, row0, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, offset, fill):
    """Receptive fields of output rows ``row0 ..`` as matrix rows.

    x: [N, H, W, C]; cols: [R * OW, >= KH * KW * C] (float32, or uint8 for an 8-bit conv; the
    columns past the window left as they are), R output rows
    (output row r is pixel row ``r % OH`` of batch ``r // OH``). Element
    ``(rr * OW + ox, (i * KW + j) * C + c)`` becomes ``x[b, iy, ix, c] + offset``
    with ``iy = oy * sh - pt + i * dh``, ``ix = ox * sw - pl + j * dw``, or ``fill`` where
    (iy, ix) is outside x (0 for float; an 8-bit conv's input zero point plus offset).
    """
    _, h, w, c = x.shape
    rows, width = cols.shape[0] // ow, cols.shape[1]
    dst = cols.reshape(cols.size)
    run = kw * c  # one window row: with dw == 1 its KW pixels are adjacent in x
    for rr in range(rows):
        r = row0 + rr
        b = r // oh
        oy = r % oh
        for i in range(kh):
            iy = oy * sh - pt + i * dh
            if iy < 0 or iy >= h:
                for ox in range(ow):
                    cols[rr * ow + ox, i * run : (i + 1) * run] = fill
                continue
            src = x[b, iy].reshape(w * c)
            # Output columns lo .. hi read a whole window row inside x: one run of KW * C values,
            # copied at once (an int8 first conv on RGB, 257x257 -> 129x129, runs of 9 values:
            # 0.33 -> 0.04 ms, with a loop over every column testing each for the edges).
            lo = min(ow, -(-pl // sw)) if dw == 1 else ow
            hi = max(lo, min(ow, (w - kw + pl) // sw + 1))
            row = rr * ow * width + i * run
            if run <= 16:  # (one masked copy each, without _copy_run's loop: 0.11 -> 0.04 ms above)
                for ox in range(lo, hi):
                    _copy_short(src, (ox * sw - pl) * c, dst, row + ox * width, run, offset)
            else:
                for ox in range(lo, hi):
                    _copy_run(src, (ox * sw - pl) * c, dst, row + ox * width, run, offset)
            for ox in range(ow - (hi - lo)):  # the others, pixel by pixel, fill outside x
                if ox >= lo:
                    ox += hi - lo
                base = row + ox * width
                ix0 = ox * sw - pl
                for j in range(kw):
                    ix = ix0 + j * dw
                    if ix >= 0 and ix < w:
                        _copy_run(src, ix * c, dst, base + j * c, c, offset)
                    else:
                        for k in range(c):
                            dst[base + j * c + k] = fill


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
    """CONV_2D, float32, through im2col rows (for a 1x1 stride-1 conv, :func:`conv_float_pointwise`).

    x [N, H, W, Cin]; wmat [KH * KW * Cin, Cout] (filter rows in im2col order);
    bias [Cout]; out [N, OH, OW, Cout]; act_min / act_max float32 clamp bounds.
    ``block``: output rows per product; scratch [nt, >= block * OW * KH * KW * Cin]
    float32: the im2col rows. Part t of nt
    (:func:`pydeeplab.kernels.parallel.in_parallel`): output rows ``rows * t // nt``
    to ``rows * (t + 1) // nt``, with ``scratch[t]``.
    """
    n, oh, ow, cout = out.shape
    depth = wmat.shape[0]
    rows = n * oh
    out2d = out.reshape(rows * ow, cout)
    for r0 in range(rows * t // nt, rows * (t + 1) // nt, block):
        r1 = min(r0 + block, rows * (t + 1) // nt)
        dst = out2d[r0 * ow : r1 * ow]
        cols = scratch[t][: (r1 - r0) * ow * depth].reshape((r1 - r0) * ow, depth)
        _im2col(x, cols, r0, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, np.float32(0), np.float32(0))
        gemm(cols, wmat, dst)
        _bias_activation_rows(dst, bias, act_min, act_max)


@njit(cache=True, nogil=True)
def conv_float_pointwise(x, wmat, bias, out, act_min, act_max, block, t, nt):
    """:func:`conv_float` of a 1x1 stride-1 conv without padding: the input pixels are the
    matrix rows as they lie. Its own kernel, so that a model whose only other float convs are
    first convs (:mod:`.direct_conv`), as MobileNet's, compiles no im2col."""
    n, oh, ow, cout = out.shape
    rows = n * oh
    out2d = out.reshape(rows * ow, cout)
    x2d = x.reshape(x.shape[0] * x.shape[1] * x.shape[2], x.shape[3])
    for r0 in range(rows * t // nt, rows * (t + 1) // nt, block):
        r1 = min(r0 + block, rows * (t + 1) // nt)
        dst = out2d[r0 * ow : r1 * ow]
        gemm(x2d[r0 * ow : r1 * ow], wmat, dst)
        _bias_activation_rows(dst, bias, act_min, act_max)


@njit(cache=True, nogil=True)
def _row_sums(cols, depth, factor, terms):
    """terms[p] = factor * sum(cols[p, :depth]) for each row p of cols (uint8), wrapped to int32;
    0 past cols' rows."""
    m = cols.shape[0]
    terms[m:] = 0
    for p in range(m):
        s = np.int64(0)
        row = cols[p]
        for k in range(depth):
            s += row[k]
        terms[p] = np.int32(factor * s)


@njit(cache=True, nogil=True)
def conv_quantized(x, wpack, stage, out, kh, kw, sh, sw, dh, dw, pt, pl, input_offset, fill, row_factor,
                   out_zero_point, act_min, act_max, block, cols_scratch, terms_scratch, t, nt):
    """CONV_2D, uint8/int8, as a uint8 x int8 integer product with its output stage (:mod:`.igemm`).

    x [N, H, W, Cin]; wpack: the filter as int8 ``v = w - w_sh`` (:func:`.igemm.pack_weights`);
    out [N, OH, OW, Cout]; stage: the output stage's constants (:func:`.requantize.pack_stage`), the bias
    with the filter's corrections (``conv_plan.conv_2d_runner`` puts an 8-bit conv so). Per block of
    output rows, the im2col rows (for a 1x1 stride-1 conv whose depth fills the product's steps,
    the input pixels) are written as uint8 ``u = x + input_offset`` (``fill`` outside x: the zero
    point plus the offset) and multiplied with wpack in int32, each pixel's sums starting from its
    sum of u times ``row_factor``. cols_scratch uint8 [nt, >= rows * K'] (K' = the filter's depth
    rounded up to whole steps; the columns past the depth meet zeros in the filter) and
    terms_scratch int32 [nt, >= rows], rows = ``block * OW`` rounded up to a multiple of
    :data:`.igemm.MR`. Part t of nt (:func:`pydeeplab.kernels.parallel.in_parallel`): output rows
    ``rows * t // nt`` to ``rows * (t + 1) // nt``; for a 1x1 stride-1 conv, pixels, so that two
    parts of a 33x33 map take 544 and 545 pixels, not 16 and 17 rows (a 3% longer wait for the second).
    """
    n, oh, ow, cout = out.shape
    width = _product_depth(wpack)
    depth = kh * kw * x.shape[3]
    out2d = out.reshape(n * oh * ow, cout)
    direct = _pointwise(kh, kw, sh, sw, pt, pl) and depth == width
    unit = 1 if direct else ow  # pixels per unit of the split: a pixel, or an output row
    units, per_block = (n * oh * ow, block * ow) if direct else (n * oh, block)
    for u0 in range(units * t // nt, units * (t + 1) // nt, per_block):
        u1 = min(u0 + per_block, units * (t + 1) // nt)
        p0, m = u0 * unit, (u1 - u0) * unit
        cols = cols_scratch[t][: m * width].reshape(m, width)
        if direct:
            _convert(x, p0, p0 + m, cols, input_offset)
        else:
            _im2col(x, cols, u0, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, input_offset, fill)
        mp = -(-m // MR) * MR  # the product works on MR rows at a time; rows past m are scratch
        terms = terms_scratch[t][:mp]
        _row_sums(cols if row_factor != 0 else cols[:0], depth, row_factor, terms)
        igemm(cols_scratch[t][: mp * width].reshape(mp, width), wpack, terms, stage, out_zero_point, act_min, act_max,
              out2d[p0 : p0 + m])


@njit(cache=True, inline="always")
def _product_depth(wpack):
    """The filter's depth rounded up to whole steps of the product (4 int8 rows a step)."""
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


@njit(cache=True, inline="always")
def _fresh_ring(ring, pl, win, c):
    """Make ``ring`` [S, WP * C] ready for :func:`_padded_row`: its pad columns zeroed (the workspace is
    shared by every operator); returns its tags [S], no row held yet."""
    tags = np.empty(ring.shape[0], np.int64)
    for s in range(ring.shape[0]):
        ring[s, : pl * c] = 0
        ring[s, (pl + win) * c :] = 0
        tags[s] = -1
    return tags


@njit(cache=True, nogil=True)
def _padded_row(x, b, iy, dh, pl, lc, rc, ring, tags, zero):
    """Input row iy of batch b as a padded flat row [WP * C] of float32: input column ix
    at ``(pl + ix) * C`` for the columns ``ix < lc`` and ``ix >= rc`` (all of them when
    lc >= rc; the others are not read), zeros in the pad columns around them; the input
    row itself when no column is needed (lc = 0, rc = W). A row outside the input is
    ``zero``. Converted rows are kept in ``ring`` [S, WP * C] (pad columns already
    zero; S = 3 for a 3x3 filter, 5 for a 5x5), slot ``((b * H + iy) // dh) % S``, ``tags``
    [S] naming the row each slot holds: the S rows of one output row (dh apart) never share
    a slot, and output rows taken dh apart (:func:`depthwise3x3_float`) find S - 1 of theirs
    already there.
    """
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    if iy < 0 or iy >= h:
        return zero
    if lc == 0 and rc == w:  # no pixel reads padding (then pl = 0): the input row itself
        return x[b, iy].reshape(w * c)
    tag = b * h + iy
    slot = (tag // dh) % ring.shape[0]
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
def _depthwise3x3_pixels(rows, sw, dw, c, weights, bias, act_min, act_max, out, count):
    """``count`` adjacent output pixels of a 3x3 depthwise row from ``out`` (an address), their taps
    (i, j) at ``rows[i] + 4 * c * (ox * sw + j * dw)`` for pixel ox = 0, 1, ...; stride 1, or
    2 without dilation. With stride 1 the pixels a dilation apart are done in turn, so that
    pixels done together share input columns (:mod:`.depthwise_row`)."""
    pixel = 4 * c
    if sw == 1:
        for first in range(min(dw, count)):
            at = (rows[0] + first * pixel, rows[1] + first * pixel, rows[2] + first * pixel)
            depthwise_row_shared1(at, dw * pixel, dw * pixel, weights, bias, act_min, act_max, out + first * pixel,
                                     dw * pixel, (count - first + dw - 1) // dw, c)
    else:  # stride 2, no dilation (other strides take depthwise_conv_float)
        depthwise_row_shared2(rows, 2 * pixel, pixel, weights, bias, act_min, act_max, out, pixel, count, c)


@njit(cache=True, nogil=True)
def depthwise3x3_float(x, w9, bias, out, sh, sw, dh, dw, pt, pl, act_min, act_max, ring, zero, lo, hi, t, nt):
    """DEPTHWISE_CONV_2D, float32, 3x3 filter without depth multiplier (MobileNet's).

    x [N, H, W, C]; w9 [9, Cp] the taps in TFLite's order and bias [Cp], zero past C (Cp = C
    rounded up to 16); out [N, OH, OW, C]; act_min / act_max float32 clamp bounds. ring [nt,
    3, WP * C] float32 scratch (WP >= max(pl + W, (OW - 1) * sw + 2 * dw + 1) padded columns)
    and zero [WP * C] zeros: see :func:`_padded_row`. A tap outside the input reads a pad
    zero, adding nothing, as TFLite leaves it out. The output columns ``lo <= ox < hi``,
    whose taps are all inside the input, read the input rows themselves (with stride 2,
    rows twice as long as the output's, copying them cost 0.29 -> 0.22 ms on 129x129x48),
    and only the columns the others read are copied; stride 1 passes lo = hi = OW (all
    from padded rows), or lo = 0, hi = OW where no tap reads padding (then pl = 0 and
    every row is read in place). Each run of a row is :func:`_depthwise3x3_pixels`.
    Part t of nt (:func:`pydeeplab.kernels.parallel.in_parallel`): output rows
    ``rows * t // nt`` to ``rows * (t + 1) // nt``, with ``ring[t]``.
    """
    n, oh, ow, c = out.shape
    win = x.shape[2]
    rows = n * oh
    slots = ring[t]
    tags = _fresh_ring(slots, pl, win, c)
    # The input columns the padded rows need: those the pixels outside [lo, hi) read
    # (none at all, lc = 0 and rc = W, when every pixel reads the input rows).
    lc = min(win, (lo - 1) * sw - pl + 2 * dw + 1) if lo > 0 else 0
    rc = max(0, hi * sw - pl) if hi < ow else win
    step, pixel = 4 * sw * c, 4 * c  # bytes
    weights, b9 = w9.ctypes.data, bias.ctypes.data
    for r in _dilation_order(rows * t // nt, rows * (t + 1) // nt, dh):
        b, oy = r // oh, r % oh
        iy = oy * sh - pt
        # Output pixel ox, tap (i, j) reads padded column ox * sw + j * dw of padded row i, or
        # input column ox * sw - pl + j * dw of input row i.
        # Addresses as int64 (``ctypes.data`` is uint64; with an int64 offset added, int64): one
        # signature of _depthwise3x3_pixels, compiled once.
        o = np.int64(out[b, oy].ctypes.data)
        if lo > 0 or hi < ow:
            padded = (np.int64(_padded_row(x, b, iy, dh, pl, lc, rc, slots, tags, zero).ctypes.data),
                      np.int64(_padded_row(x, b, iy + dh, dh, pl, lc, rc, slots, tags, zero).ctypes.data),
                      np.int64(_padded_row(x, b, iy + 2 * dh, dh, pl, lc, rc, slots, tags, zero).ctypes.data))
            if lo > 0:
                _depthwise3x3_pixels(padded, sw, dw, c, weights, b9, act_min, act_max, o, lo)
            if hi < ow:
                shift = hi * step
                _depthwise3x3_pixels((padded[0] + shift, padded[1] + shift, padded[2] + shift), sw, dw, c, weights, b9,
                                     act_min, act_max, o + hi * pixel, ow - hi)
        if hi > lo:
            shift = (lo * sw - pl) * pixel
            inside = (_input_row(x, b, iy, zero).ctypes.data + shift,
                      _input_row(x, b, iy + dh, zero).ctypes.data + shift,
                      _input_row(x, b, iy + 2 * dh, zero).ctypes.data + shift)
            _depthwise3x3_pixels(inside, sw, dw, c, weights, b9, act_min, act_max, o + lo * pixel, hi - lo)


@njit(cache=True, nogil=True)
def depthwise5x5_float(x, w25, bias, out, sh, sw, pt, pl, act_min, act_max, ring, zero, t, nt):
    """DEPTHWISE_CONV_2D, float32, 5x5 filter, stride 1 or 2, no dilation nor depth multiplier
    (MobileNetV3's). x [N, H, W, C]; w25 [25, Cp] the taps in TFLite's order and bias [Cp], zero
    past C (Cp = C rounded up to 16); out [N, OH, OW, C]. ring [nt, 5, WP * C] float32 scratch
    (WP >= max(pl + W, (OW - 1) * sw + 5) padded columns) and zero [WP * C] zeros: each output row
    is one run of :mod:`.depthwise_row` over the five zero-padded input rows it reads, kept in
    ``ring[t]`` (:func:`_padded_row`; with stride 2 the next output row finds three of its rows
    there). Part t of nt: output rows ``rows * t // nt`` to ``rows * (t + 1) // nt``."""
    n, oh, ow, c = out.shape
    win = x.shape[2]
    rows = n * oh
    pixel = 4 * c
    slots = ring[t]
    tags = _fresh_ring(slots, pl, win, c)
    weights, b25 = w25.ctypes.data, bias.ctypes.data
    one = np.int64(1)  # (a literal 1 would compile _padded_row a second time, for Literal[int](1))
    for r in range(rows * t // nt, rows * (t + 1) // nt):
        b, oy = r // oh, r % oh
        iy = oy * sh - pt
        at = (_padded_row(x, b, iy, one, pl, win, win, slots, tags, zero).ctypes.data,
              _padded_row(x, b, iy + 1, one, pl, win, win, slots, tags, zero).ctypes.data,
              _padded_row(x, b, iy + 2, one, pl, win, win, slots, tags, zero).ctypes.data,
              _padded_row(x, b, iy + 3, one, pl, win, win, slots, tags, zero).ctypes.data,
              _padded_row(x, b, iy + 4, one, pl, win, win, slots, tags, zero).ctypes.data)
        o = out[b, oy].ctypes.data
        if sw == 1:
            depthwise_row_shared1(at, pixel, pixel, weights, b25, act_min, act_max, o, pixel, ow, c)
        else:
            depthwise_row_shared2(at, 2 * pixel, pixel, weights, b25, act_min, act_max, o, pixel, ow, c)


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


if config.DISABLE_JIT:  # the kernels run as plain Python (coverage, debugging)

    def _copy_short(src, start, dst, base, n, offset):  # noqa: F811
        dst[base : base + n] = src[start : start + n] + offset
