"""A float CONV_2D with a shallow 3-row filter, straight from zero-padded input rows (no im2col).

A network's first convolution (3x3, stride 2, on the three channels of an image) has a
filter only 27 deep: BLAS's product of its im2col rows runs at a fraction of its speed,
and writing those rows costs as much again. Here the output pixels are done eight at a
time by a tile of fused multiply-adds whose sums (8 pixels x 16 output channels) stay in
vector registers: filter row i of pixel p reads its ``KW * Cin`` inputs where they lie,
in padded input row ``oy * sh - pt + i``, from column ``p * sw`` (the window's run of
pixels is contiguous with dilation 1). The filter is packed once (:func:`pack_filter`);
the bias starts each sum, the clamp ends it, and the tile stores into the output (a
masked store for a last block narrower than 16 channels). The padded rows are
``conv._padded_row``'s ring, shared with the 3x3 depthwise.

Each output's sum runs over the taps in TFLite's order (filter row, column, channel),
starting from the bias rather than adding it last: within the float tolerance.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .conv import _fresh_ring, _padded_row
from .vector_ir import I64, fma, lanes_below, masked_load, masked_store, pointer, splat

#: Output pixels per tile.
MR = 8
#: Output channels per block: one 512-bit vector of float32.
LANES = 16

_F32 = ir.FloatType()
_VEC = ir.VectorType(_F32, LANES)


def pack_filter(weights: np.ndarray) -> np.ndarray:
    """weights [Cout, KH, KW, Cin] as float32 [ceil(Cout / 16), KH * KW * Cin, 16]: block b, tap k
    holding output channels 16 b .. 16 b + 15 (zero past Cout)."""
    cout = weights.shape[0]
    depth = weights[0].size
    blocks = -(-cout // LANES)
    padded = np.zeros((blocks * LANES, depth), np.float32)
    padded[:cout] = weights.reshape(cout, depth)
    return np.ascontiguousarray(padded.reshape(blocks, LANES, depth).transpose(0, 2, 1))


def _tile_of(mr: int, nb: int):
    """The tile of ``mr`` output pixels x ``nb`` blocks of 16 output channels, as an intrinsic:
    ``tile(rows, lda, pixels, w, wstride, steps, out, ldc, bias, lanes, act_min, act_max, swish, res, res_min,
    res_max)`` computes ``out[p * ldc + 16 b + l] = clamp(f(bias[16 b + l] + sum_i sum_q rows[i][p * lda + q] *
    w[b][i * steps + q, l]))`` for p < pixels, b < nb, and l < 16 (l < ``lanes`` in the last block), f the
    identity, or where ``swish`` is not 0 HARD_SWISH, ``v * min(max(v + 3, 0), 6) / 6`` as the reference
    computes it. Where ``res`` (an address laid out as ``out``) is not 0, the clamped value plus
    ``res[p * ldc + 16 b + l]``, clamped to [res_min, res_max], is stored instead: a residual ADD after
    the conv, rounded as the two operators round.

    rows: UniTuple of the filter rows' input addresses (pixel 0's first input); lda: bytes
    between two pixels' windows; steps: inputs per filter row (KW * Cin); w: address of the first
    block's packed filter [KH * steps, 16], wstride: bytes from one block to the next; out, bias:
    addresses; ldc in floats. Pixels past ``pixels`` read the last one's inputs and are not stored.
    Its ``mr * nb`` sums stay in vector registers; each step loads ``nb`` filter vectors and
    broadcasts ``mr`` inputs.
    """

    @intrinsic
    def tile(typingctx, rows, lda, pixels, w, wstride, steps, out, ldc, bias, lanes, act_min, act_max, swish, res,
             res_min, res_max):
        if not (isinstance(rows, types.UniTuple) and isinstance(rows.dtype, types.Integer)):
            return None
        sig = types.void(rows, lda, pixels, w, wstride, steps, out, ldc, bias, lanes, act_min, act_max, swish, res,
                         res_min, res_max)

        def codegen(context, builder, signature, args):
            rows_v, lda, pixels, w, wstride, steps, out, ldc, bias, lanes, lo, hi, swish, res, res_lo, res_hi = args
            const = lambda v: ir.Constant(I64, v)  # noqa: E731
            last = builder.sub(pixels, const(1))
            starts = [builder.mul(builder.select(builder.icmp_signed("<", const(p), pixels), const(p), last), lda)
                      for p in range(mr)]
            blocks = [builder.mul(const(b), wstride) for b in range(nb)]
            first = [builder.load(pointer(builder, builder.add(bias, const(4 * LANES * b)), _VEC), align=4)
                     for b in range(nb)]
            sums = [list(first) for _ in range(mr)]
            for i in range(rows.count):
                base = builder.extract_value(rows_v, i)
                wbase = builder.add(w, builder.mul(builder.mul(const(i), steps), const(4 * LANES)))
                entry = builder.block
                loop = builder.append_basic_block(f"direct.row{i}")
                done = builder.append_basic_block(f"direct.row{i}.done")
                builder.branch(loop)  # steps >= 1
                builder.position_at_end(loop)
                q = builder.phi(I64)
                q.add_incoming(const(0), entry)
                phis = []
                for row in sums:
                    phis.append([builder.phi(_VEC) for _ in row])
                    for phi, v in zip(phis[-1], row):
                        phi.add_incoming(v, entry)
                at_q = builder.add(wbase, builder.mul(q, const(4 * LANES)))
                filt = [builder.load(pointer(builder, builder.add(at_q, blocks[b]), _VEC), align=4) for b in range(nb)]
                updated = []
                for p in range(mr):
                    at = builder.add(builder.add(base, starts[p]), builder.mul(q, const(4)))
                    x = splat(builder, builder.load(pointer(builder, at, _F32), align=4), _VEC)
                    updated.append([fma(builder, x, filt[b], phis[p][b]) for b in range(nb)])
                q_next = builder.add(q, const(1))
                q.add_incoming(q_next, loop)
                for row_phis, row in zip(phis, updated):
                    for phi, u in zip(row_phis, row):
                        phi.add_incoming(u, loop)
                builder.cbranch(builder.icmp_signed("<", q_next, steps), loop, done)
                builder.position_at_end(done)
                sums = updated
            vlo, vhi = splat(builder, lo, _VEC), splat(builder, hi, _VEC)
            zero, six = (ir.Constant(_VEC, [ir.Constant(_F32, c)] * LANES) for c in (0.0, 6.0))
            mask = lanes_below(builder, lanes, LANES)
            whole = builder.icmp_signed(">=", lanes, const(LANES))

            def hard_swish(v):
                g = builder.fadd(v, ir.Constant(_VEC, [ir.Constant(_F32, 3.0)] * LANES))
                g = builder.select(builder.fcmp_ordered("<", g, zero), zero, g)
                g = builder.select(builder.fcmp_ordered("<", six, g), six, g)
                return builder.fdiv(builder.fmul(v, g), six)

            rlo, rhi = splat(builder, res_lo, _VEC), splat(builder, res_hi, _VEC)

            def clamp(v, low, high):
                v = builder.select(builder.fcmp_ordered("<", v, low), low, v)
                return builder.select(builder.fcmp_ordered(">", v, high), high, v)

            def store(f, residual):
                for p in range(mr):
                    with builder.if_then(builder.icmp_signed("<", const(p), pixels)):
                        offset = builder.mul(builder.mul(const(p), ldc), const(4))
                        for b in range(nb):
                            v = clamp(f(sums[p][b]), vlo, vhi)
                            at = builder.add(offset, const(4 * LANES * b))
                            dest = pointer(builder, builder.add(out, at), _VEC)
                            source = pointer(builder, builder.add(res, at), _VEC)

                            def plus(v, read):  # the residual added and clamped, where the tile adds one
                                return clamp(builder.fadd(v, read()), rlo, rhi) if residual else v

                            if b < nb - 1:
                                builder.store(plus(v, lambda: builder.load(source, align=4)), dest, align=4)
                                continue
                            with builder.if_else(whole) as (all_lanes, some_lanes):
                                with all_lanes:
                                    builder.store(plus(v, lambda: builder.load(source, align=4)), dest, align=4)
                                with some_lanes:
                                    u = plus(v, lambda: masked_load(builder, source, mask, _VEC, 4))
                                    masked_store(builder, u, dest, mask, 4)

            with builder.if_else(builder.icmp_signed("!=", res, const(0))) as (added, alone):
                for residual, branch in ((True, added), (False, alone)):
                    with branch:
                        with builder.if_else(builder.icmp_signed("!=", swish, const(0))) as (swished, plain):
                            with swished:
                                store(hard_swish, residual)
                            with plain:
                                store(lambda v: v, residual)
            return context.get_dummy_value()

        return sig, codegen

    return tile


#: The direct conv's tile: 8 pixels x 16 channels.
_tile = _tile_of(MR, 1)
#: The 1x1 conv's: 7 pixels x 32 channels (14 sums; 8 x 16 is load-bound: 33x33 480 -> 160 at
#: 49 GMAC/s, 7 x 32 at 80, OpenBLAS's sgemm at 65), and 7 x 16 for a last odd block.
_PAIR, _SINGLE = _tile_of(7, 2), _tile_of(7, 1)


@njit(cache=True, nogil=True)
def conv_float_direct(x, wpack, bias, out, sh, sw, pt, pl, act_min, act_max, swish, ring, zero, t, nt):
    """CONV_2D, float32, a 3-row filter with dilation 1 (see the module docstring).

    x [N, H, W, Cin]; wpack [NB, 3 * KW * Cin, 16] (:func:`pack_filter`); bias [16 NB] (zero past
    Cout); out [N, OH, OW, Cout]; ring [nt, 3, WP * Cin] float32 scratch and zero [WP * Cin]
    zeros (WP >= max(pl + W, (OW - 1) * sw + KW) padded columns, see ``conv._padded_row``).
    swish: 1 to apply HARD_SWISH to each sum before the clamp (a HARD_SWISH taken in), else 0.
    Part t of nt (:func:`pydeeplab.kernels.parallel.in_parallel`): output rows
    ``rows * t // nt`` to ``rows * (t + 1) // nt``, with ``ring[t]``.
    """
    n, oh, ow, cout = out.shape
    win, cin = x.shape[2], x.shape[3]
    rows = n * oh
    steps = wpack.shape[1] // 3
    slots = ring[t]
    tags = _fresh_ring(slots, pl, win, cin)
    one = np.int64(1)  # (a literal 1 would compile conv._padded_row a second time, for Literal[int](1))
    none = np.int64(0)  # no residual
    lda, ldc = 4 * sw * cin, cout
    w0, block = wpack.ctypes.data, wpack.strides[0]
    for r in range(rows * t // nt, rows * (t + 1) // nt):
        b, oy = r // oh, r % oh
        iy = oy * sh - pt
        # Every input column, copied once into the padded rows (ring slots by row, as for the
        # 3x3 depthwise without dilation).
        r0 = _padded_row(x, b, iy, one, pl, win, win, slots, tags, zero).ctypes.data
        r1 = _padded_row(x, b, iy + 1, one, pl, win, win, slots, tags, zero).ctypes.data
        r2 = _padded_row(x, b, iy + 2, one, pl, win, win, slots, tags, zero).ctypes.data
        o = out[b, oy].ctypes.data
        for p in range(0, ow, MR):
            at = p * lda
            for k in range(wpack.shape[0]):
                _tile((r0 + at, r1 + at, r2 + at), lda, min(MR, ow - p), w0 + k * block, block, steps,
                      o + 4 * (p * cout + k * LANES), ldc, bias[k * LANES :].ctypes.data, cout - k * LANES,
                      act_min, act_max, swish, none, act_min, act_max)


@njit(cache=True, nogil=True)
def conv_float_pointwise_tile(x, wpack, bias, out, act_min, act_max, swish, res, add, res_min, res_max, t, nt):
    """CONV_2D, float32, 1x1 with stride 1 and no padding, whose input pixels are the tile's rows
    as they lie. x [N, H, W, Cin]; wpack [NB, Cin, 16] (:func:`pack_filter`); bias [16 NB];
    out [N, H, W, Cout]; swish as for :func:`conv_float_direct`. Where ``add`` is not 0, a residual
    ADD after the conv: ``res`` [N, H, W, Cout] (else not read) added to each output, then clamped
    to [res_min, res_max]. Part t of nt: pixels ``P * t // nt`` to ``P * (t + 1) // nt``, 7 at a time,
    32 channels at a time (the last 16 alone where NB is odd)."""
    cout = out.shape[3]
    cin = x.shape[3]
    pixels = out.size // cout
    lda, ldc = 4 * cin, cout
    x0, o0, w0, block, b0 = x.ctypes.data, out.ctypes.data, wpack.ctypes.data, wpack.strides[0], bias.ctypes.data
    r0 = np.int64(res.ctypes.data) if add else np.int64(0)  # the tile adds no residual where its address is 0
    first, stop = pixels * t // nt, pixels * (t + 1) // nt
    pairs = wpack.shape[0] // 2 * 2
    for p in range(first, stop, 7):
        at = (x0 + p * lda,)
        m = min(7, stop - p)
        for k in range(0, pairs, 2):
            o = 4 * (p * cout + k * LANES)
            _PAIR(at, lda, m, w0 + k * block, block, cin, o0 + o, ldc, b0 + 4 * k * LANES, cout - (k + 1) * LANES,
                  act_min, act_max, swish, r0 + o if add else r0, res_min, res_max)
        if pairs < wpack.shape[0]:
            o = 4 * (p * cout + pairs * LANES)
            _SINGLE(at, lda, m, w0 + pairs * block, block, cin, o0 + o, ldc, b0 + 4 * pairs * LANES,
                    cout - pairs * LANES, act_min, act_max, swish, r0 + o if add else r0, res_min, res_max)


__all__ = ["LANES", "MR", "conv_float_direct", "conv_float_pointwise_tile", "pack_filter"]
