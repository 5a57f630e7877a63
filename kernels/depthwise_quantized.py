"""The quantized DEPTHWISE_CONV_2D (uint8 / int8), bit-identical with TFLite's reference kernel.

TFLite sums ``(x - x_zp) * (w - w_zp)`` over the taps in an int32 accumulator, adds
the bias and requantizes (:mod:`.requantize`). Here:

- each input row a thread needs is converted once into a ring of padded rows of
  centered values ``x - x_zp`` (float32, or float64 where float32 could not count
  every partial sum exactly: ``conv_plan.exact_dtype``), channel ``ic * M + m`` holding
  input channel ic (depth multiplier M), zeros in the padding around it: a tap outside
  the input then reads an exact zero, as TFLite skips it;
- one output row is then :func:`_row_kernel`: per block of 16 channels, per
  :data:`PIXELS` output pixels, the taps as fused multiply-adds on exact integers (any
  order gives the same sum), and the output stage of ``requant_table`` on the sums while
  they are in registers, stored as 8-bit outputs. It is written in LLVM IR like
  :mod:`.igemm`: Numba's vectorizer stops at 256-bit vectors on this CPU family, and
  does not keep a tile of sums in registers across the taps.

Measured against the kernel it replaced (Numba loops summing a row of taps in float,
converting every tap's input again, then ``requantize_rows``), one thread, min thread
time, alternating in one process: the 17 depthwise convolutions of
deeplabv3_mnv2_dm05_pascal_quant 8.5 -> 4.4 ms (257x257x16: 1.77 -> 0.51 ms; stride 2
gains least, 1.3 to 1.5x: every input value is converted once for fewer outputs), of
deeplabv3_mnv2_pascal_quant 15.1 -> 9.1 ms, of the int8 257 model 4.5 -> 2.6 ms; cold
compile about 1 s, against about 1.6 s for the three Numba functions and the float32
output stage it replaces.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import config, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .requantize import STAGE_BYTES, output_stage, requantize_one, stage_bounds, stage_constants, unpack_stage
from .vector_ir import fma as fused_multiply_add, lanes_below, masked_load, masked_store, splat as broadcast

#: Channels per vector step (one 512-bit vector of float32 sums).
LANES = 16
#: Output pixels per step, sharing the load of each tap's 16 weights (measured: see the commit).
PIXELS = 4



def ring_width(out_width: int, x_width: int, sw: int, dw: int, kw: int, pl: int) -> int:
    """Pixels in one padded ring row: every input column at ``pl + ix``, and every tap of the
    output pixels :func:`_row_kernel` computes (``ceil(OW / PIXELS) * PIXELS`` of them)."""
    last = -(-out_width // PIXELS) * PIXELS - 1
    return max(pl + x_width, last * sw + (kw - 1) * dw + 1)


def _row_kernel_ir(context, builder, args, elem: ir.Type):
    (ring, taps, ntaps, step, w, stage, cp, cout, zp, lo, hi, out, ow) = args
    i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
    f_vec = ir.VectorType(elem, LANES)
    v32, v64, v8 = ir.VectorType(i32, LANES), ir.VectorType(i64, LANES), ir.VectorType(i8, LANES)
    esize = 4 if isinstance(elem, ir.FloatType) else 8
    const = lambda v: ir.Constant(i64, v)  # noqa: E731

    def pointer(address, vector):
        return builder.inttoptr(address, vector.as_pointer())

    bounds = stage_bounds(builder, zp, lo, hi)

    sums = [cgutils.alloca_once(builder, f_vec) for _ in range(PIXELS)]

    with cgutils.for_range_slice(builder, const(0), cout, const(LANES), intp=i64) as (k, _):
        # (k / 16 blocks of STAGE_BYTES: k * STAGE_BYTES / 16, STAGE_BYTES a multiple of 16)
        constants = stage_constants(builder, builder.add(stage, builder.mul(k, const(STAGE_BYTES // LANES))))
        mask = lanes_below(builder, builder.sub(cout, k), LANES)
        k_bytes = builder.mul(k, const(esize))
        with cgutils.for_range_slice(builder, const(0), ow, const(PIXELS), intp=i64) as (ox, _):
            for s in sums:
                builder.store(ir.Constant(f_vec, None), s)
            pixel0 = builder.add(ring, builder.add(builder.mul(ox, step), k_bytes))
            with cgutils.for_range(builder, ntaps, intp=i64) as tap_loop:
                t = tap_loop.index
                offset = builder.load(builder.inttoptr(builder.add(taps, builder.mul(t, const(8))), i64.as_pointer()))
                wv = builder.load(pointer(builder.add(w, builder.mul(builder.add(builder.mul(t, cp), k), const(esize))),
                                          f_vec), align=esize)
                base = builder.add(pixel0, offset)
                for p, s in enumerate(sums):
                    xv = builder.load(pointer(builder.add(base, builder.mul(const(p), step)), f_vec), align=esize)
                    builder.store(fused_multiply_add(builder, xv, wv, builder.load(s)), s)
            for p, s in enumerate(sums):
                pixel = builder.add(ox, const(p))
                with builder.if_then(builder.icmp_signed("<", pixel, ow), likely=True):
                    acc = builder.load(s)
                    if esize == 4:  # |sum| <= 2**24: fits int32
                        acc = builder.fptosi(acc, v32)
                    else:  # may pass 2**31: TFLite's int32 accumulator wraps
                        acc = builder.trunc(builder.fptosi(acc, v64), v32)
                    v = output_stage(builder, acc, constants, bounds)
                    at = builder.add(out, builder.add(builder.mul(pixel, cout), k))
                    masked_store(builder, builder.trunc(v, v8), pointer(at, v8), mask, 1)
    return context.get_dummy_value()


@intrinsic
def _row_kernel(typingctx, ring, taps, ntaps, step, w, stage, cp, cout, zp, lo, hi, out, ow, like):
    """One output row of the depthwise convolution, with its output stage.

    Addresses (intp, bytes): ``ring``, the ring of padded centered rows; ``taps``, int64
    [ntaps], the byte offset from ``ring`` of each tap's first pixel (its slot's row and
    its column shift), output pixel ox reading ``ox * step`` bytes further; ``w``, the
    centered filter [ntaps, cp] (the ring's type); ``stage``, the output stage's constants
    (``requantize.pack_stage``, cp / 16 blocks); ``out``, the 8-bit output row [ow, cout].
    cp: channels of a ring pixel, ``cout`` rounded up to 16 (rings, filter and constants
    zero-padded there). zp, lo, hi: output zero point and clamp bounds. ``like``, a value
    of the ring's type (float32 or float64), picks the vector type.
    """
    if like not in (types.float32, types.float64):
        return None
    sig = types.void(*([types.intp] * 13), like)

    def codegen(context, builder, signature, args):
        return _row_kernel_ir(context, builder, args[:13], context.get_data_type(like))

    return sig, codegen


@intrinsic
def _convert_row(typingctx, src, dst, width, cin, cp, zero_point, like_src, like_dst):
    """dst pixel ix, channels 0 .. cin (rounded up to 16) = src [width, cin] pixel ix minus
    ``zero_point``, for ix < width: a ring row's interior from an input row, 16 values a
    step, with a masked load for a pixel's last partial step; where C is a multiple of 16
    (the ring's pixels then as close as the input's) the row is one run without masks
    (257 rows of 257x96 uint8: 0.42 -> 0.33 ms, most of a stride-2 conv's extra cost). Addresses in
    bytes; dst pixels ``cp`` values apart. The channels from cin to the next multiple of 16
    are written too (the filter is zero there); nothing of src past ``width * cin`` is read.
    ``like_src`` (uint8 / int8) and ``like_dst`` (float32 / float64): values of the two types.
    """
    if like_src not in (types.uint8, types.int8) or like_dst not in (types.float32, types.float64):
        return None
    sig = types.void(*([types.intp] * 6), like_src, like_dst)

    def codegen(context, builder, signature, args):
        src, dst, width, cin, cp, zero_point = args[:6]
        i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
        v8, v32 = ir.VectorType(i8, LANES), ir.VectorType(i32, LANES)
        elem = context.get_data_type(like_dst)
        f_vec = ir.VectorType(elem, LANES)
        esize = 4 if isinstance(elem, ir.FloatType) else 8
        zp = broadcast(builder, builder.trunc(zero_point, i32), v32)
        extend = builder.zext if like_src == types.uint8 else builder.sext
        zero, step = ir.Constant(i64, 0), ir.Constant(i64, LANES)

        def convert(source, target, mask=None):  # 16 values at byte address source -> target
            at = builder.inttoptr(source, v8.as_pointer())
            x = builder.load(at, align=1) if mask is None else masked_load(builder, at, mask, v8, 1)
            v = builder.sitofp(builder.sub(extend(x, v32), zp), f_vec)
            builder.store(v, builder.inttoptr(target, f_vec.as_pointer()), align=esize)

        with builder.if_else(builder.icmp_signed("==", cin, cp)) as (whole, padded):
            with whole:  # channels a multiple of 16: the row is one run, without masks (257x96: 1.5x faster)
                with cgutils.for_range_slice(builder, zero, builder.mul(width, cin), step, intp=i64) as (k, _):
                    convert(builder.add(src, k), builder.add(dst, builder.mul(k, ir.Constant(i64, esize))))
            with padded:
                with cgutils.for_range(builder, width, intp=i64) as pixels:
                    ix = pixels.index
                    with cgutils.for_range_slice(builder, zero, cin, step, intp=i64) as (c, _):
                        target = builder.mul(builder.add(builder.mul(ix, cp), c), ir.Constant(i64, esize))
                        convert(builder.add(src, builder.add(builder.mul(ix, cin), c)), builder.add(dst, target),
                                lanes_below(builder, builder.sub(cin, c), LANES))
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True)
def depthwise_conv_quantized(x, w, stage, x_zero_point, out_zero_point, act_min, act_max, out, kh, kw, sh, sw,
                             dh, dw, pt, pl, rings, t, nt):
    """DEPTHWISE_CONV_2D, uint8/int8 (see the module docstring); part t of nt of the output rows.

    x [N, H, W, C] uint8/int8; out [N, OH, OW, C * M] (x's type); w [KH * KW, CP] float32 or
    float64, the centered filter (``w - w_zp``), zero past C * M (CP: C * M rounded up to
    16); stage: the output stage's constants (``requantize.pack_stage``: the bias and
    ``requant_table``, zero-padded); rings [NT, S + 1, WP, CP] of w's type,
    ``rings[t]`` this part's scratch: S >= (KH - 1) * DH + 1 slots of padded rows and a
    row of zeros, WP = :func:`ring_width`.
    """
    ring = rings[t]
    n, h, win, cin = x.shape
    _, oh, ow, cout = out.shape
    mult = cout // cin
    slots, wp, cp = ring.shape[0] - 1, ring.shape[1], ring.shape[2]
    # Zero what the conversion never writes: the pad columns, the channels past C * M, the zero row.
    ring[slots] = 0
    tags = np.empty(slots, np.int64)  # the row each slot holds: none yet
    for s in range(slots):
        ring[s, :pl] = 0
        ring[s, pl + win :] = 0
        ring[s, pl : pl + win, cout:] = 0
        tags[s] = -1
    taps = np.empty(kh * kw, np.int64)
    esize = ring.itemsize
    like = ring[0, 0, 0]
    zpx = ring.dtype.type(x_zero_point)
    rows = n * oh
    for r in range(rows * t // nt, rows * (t + 1) // nt):
        b, oy = r // oh, r % oh
        for i in range(kh):
            iy = oy * sh - pt + i * dh
            slot = slots
            if 0 <= iy < h:
                # Rows of one output row lie within (KH - 1) * DH + 1 <= S consecutive rows: distinct slots.
                tag = b * h + iy
                slot = tag % slots
                if tags[slot] != tag:
                    src = x[b, iy]
                    dst = ring[slot]
                    if mult == 1:
                        _convert_row(src.ctypes.data, dst[pl].ctypes.data, win, cin, cp, x_zero_point, src[0, 0],
                                     like)
                    else:
                        for ix in range(win):
                            d = dst[pl + ix]
                            s = src[ix]
                            for c in range(cin):
                                v = s[c] - zpx
                                for m in range(mult):
                                    d[c * mult + m] = v
                    tags[slot] = tag
            for j in range(kw):
                taps[i * kw + j] = ((slot * wp + j * dw) * cp) * esize
        _row_kernel(ring.ctypes.data, taps.ctypes.data, kh * kw, sw * cp * esize, w.ctypes.data, stage.ctypes.data,
                    cp, cout, out_zero_point, act_min, act_max, out[b, oy].ctypes.data, ow, like)


if config.DISABLE_JIT:  # the kernels run as plain Python (coverage, debugging): NumPy over whole rows

    def depthwise_conv_quantized(x, w, stage, x_zero_point, out_zero_point, act_min, act_max,  # noqa: F811
                                 out, kh, kw, sh, sw, dh, dw, pt, pl, rings, t, nt):
        n, h, win, cin = x.shape
        _, oh, ow, cout = out.shape
        mult = cout // cin
        centered = np.repeat(x.astype(np.int64) - x_zero_point, mult, axis=3)
        height = max(pt + h, (oh - 1) * sh + (kh - 1) * dh + 1)
        padded = np.zeros((n, height, ring_width(ow, win, sw, dw, kw, pl), cout), np.int64)
        padded[:, pt : pt + h, pl : pl + win] = centered
        bias, multiplier, left, right = unpack_stage(stage, cout)
        rows = n * oh
        for r in range(rows * t // nt, rows * (t + 1) // nt):
            b, oy = r // oh, r % oh
            acc = np.zeros((ow, cout), np.int64)
            for i in range(kh):
                for j in range(kw):
                    src = padded[b, oy * sh + i * dh, j * dw : j * dw + (ow - 1) * sw + 1 : sw]
                    acc += src * w[i * kw + j, :cout].astype(np.int64)
            for ox in range(ow):
                for k in range(cout):
                    total = (acc[ox, k] + bias[k] + 2**31) % 2**32 - 2**31  # TFLite's int32 sum wraps
                    out[b, oy, ox, k] = requantize_one(total, multiplier[k], left[k], right[k], out_zero_point,
                                                       act_min, act_max)


__all__ = ["LANES", "PIXELS", "depthwise_conv_quantized", "ring_width"]
