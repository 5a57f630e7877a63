"""Runs of output pixels of a float 3x3 or 5x5 DEPTHWISE_CONV_2D, sixteen channels at a time, in LLVM IR.

The pixels are done four at a time (four independent chains of nine fused multiply-adds,
which hide the multiply-add latency), the rest one at a time; for each group, every
block of 16 channels loads its nine taps and bias (from L1) and each input column the
group reads once: with stride 1 the four pixels are a dilation apart and read six
columns per filter row, with stride 2 adjacent ones read nine. Each sum is clamped and
stored. The last C % 16 channels take the same steps through masked loads and stores
(one ``vmovups {k}`` each with AVX-512): nothing past a pixel's channels is read or
written. Against the Numba loops over the channels it replaces (four functions, and a
tiled copy of the taps for narrow layers): 1.5x faster on 128x128x16 and 129x129x16,
3x on a stride-2 128x128x16, about the same (within 10%, both bound by the L3) on
the wide layers of 33x33 to 65x65.

The sum of each pixel is TFLite's, in its order (taps row by row, then the bias),
each product fused with its addition: within the float tolerance of TFLite's separate
multiply and add.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .vector_ir import I64, fma, lanes_below, masked_load, masked_store, pointer, splat

#: Channels per vector step (one 512-bit vector of float32).
LANES = 16
#: Pixels per step of the main loop.
_PIXELS = 4

_VEC = ir.VectorType(ir.FloatType(), LANES)


def _row_intrinsic(ratio: int):
    """The intrinsic ``row(rows, in_step, tap, weights, bias, act_min, act_max, out, out_step, count, channels)``
    of a K x K filter, K the number of ``rows`` (3 or 5).

    ratio: in_step / tap, so that the pixels done together share input columns (1: stride 1,
    the pixels a dilation apart; 2: stride 2 without dilation): each column is loaded once
    for the pixels that read it (4 pixels of a 3x3 filter read 6 or 9 columns, not 12).
    """

    @intrinsic
    def row(typingctx, rows, in_step, tap, weights, bias, act_min, act_max, out, out_step, count, channels):
        integers = (in_step, tap, weights, bias, out, out_step, count, channels)
        if not (isinstance(rows, types.UniTuple) and rows.count in (3, 5) and isinstance(rows.dtype, types.Integer)
                and rows.dtype.bitwidth == 64 and all(isinstance(v, types.Integer) and v.bitwidth == 64
                                                      for v in integers)
                and act_min == act_max == types.float32):
            return None
        sig = types.void(rows, in_step, tap, weights, bias, act_min, act_max, out, out_step, count, channels)

        def codegen(context, builder, signature, args):
            rows_v, in_step, tap, weights, bias, lo, hi, out, out_step, count, channels = args
            const = lambda v: ir.Constant(I64, v)  # noqa: E731
            k = rows.count
            bases = [builder.extract_value(rows_v, i) for i in range(k)]
            vlo, vhi = splat(builder, lo, _VEC), splat(builder, hi, _VEC)
            padded = builder.mul(builder.sdiv(builder.add(channels, const(LANES - 1)), const(LANES)), const(LANES))
            w_row = builder.mul(padded, const(4))  # bytes between two taps' weights
            # Byte offset of input column k (pixel g's tap j reads column g * ratio + j) from a
            # group's first.
            columns = [builder.mul(const(c), tap) for c in range((_PIXELS - 1) * ratio + k)]
            out_steps = [builder.mul(const(g), out_step) for g in range(_PIXELS)]

            def counted_loop(name, start, stop, step, pointers, body):
                """for v in range(start, stop, step) (start <= stop), ``pointers`` [(value, advance)]
                moving along; body(v, current pointers) emits one step. Returns where v and the
                pointers stopped."""
                entry = builder.block
                test = builder.append_basic_block(f"{name}.test")
                loop = builder.append_basic_block(f"{name}.body")
                done = builder.append_basic_block(f"{name}.done")
                builder.branch(test)
                builder.position_at_end(test)
                v = builder.phi(I64)
                v.add_incoming(start, entry)
                ps = []
                for value, _ in pointers:
                    phi = builder.phi(I64)
                    phi.add_incoming(value, entry)
                    ps.append(phi)
                builder.cbranch(builder.icmp_signed("<=", builder.add(v, const(step)), stop), loop, done)
                builder.position_at_end(loop)
                body(v, ps)
                end = builder.block
                v.add_incoming(builder.add(v, const(step)), end)
                for phi, (_, advance) in zip(ps, pointers):
                    phi.add_incoming(builder.add(phi, advance), end)
                builder.branch(test)
                builder.position_at_end(done)
                return v, ps

            def pixels(group, ins, o, first, mask):
                """Channels first .. first + 15 of ``group`` pixels (mask None for all sixteen)."""
                offset = builder.mul(first, const(4))

                def address(at):
                    return pointer(builder, builder.add(at, offset), _VEC)

                def load(at):
                    if mask is None:
                        return builder.load(address(at), align=4)
                    return masked_load(builder, address(at), mask, _VEC, 4)

                w = [builder.load(address(builder.add(weights, builder.mul(const(t), w_row))), align=4)
                     for t in range(k * k)]
                b = builder.load(address(bias), align=4)
                sums = [None] * group
                for i in range(k):
                    loaded = {}  # each input column once for the pixels that read it
                    for j in range(k):
                        for g in range(group):
                            c = g * ratio + j
                            if c not in loaded:
                                loaded[c] = load(builder.add(ins[i], columns[c]))
                            t = k * i + j
                            sums[g] = (builder.fmul(loaded[c], w[t]) if t == 0
                                       else fma(builder, loaded[c], w[t], sums[g]))
                for g in range(group):
                    v = builder.fadd(sums[g], b)
                    v = builder.select(builder.fcmp_ordered("<", v, vlo), vlo, v)
                    v = builder.select(builder.fcmp_ordered(">", v, vhi), vhi, v)
                    at = address(builder.add(o, out_steps[g]))
                    if mask is None:
                        builder.store(v, at, align=4)
                    else:
                        masked_store(builder, v, at, mask, 4)

            whole = builder.mul(builder.sdiv(channels, const(LANES)), const(LANES))
            tail = lanes_below(builder, builder.sub(channels, whole), LANES)

            def group(size):
                def body(n, ps):
                    counted_loop("dw.block", const(0), whole, LANES, [],
                                 lambda first, _: pixels(size, ps[:k], ps[k], first, None))
                    with builder.if_then(builder.icmp_signed("<", whole, channels)):
                        pixels(size, ps[:k], ps[k], whole, tail)
                return body

            starts = [(base, builder.mul(in_step, const(_PIXELS))) for base in bases]
            starts.append((out, builder.mul(out_step, const(_PIXELS))))
            stopped, ps = counted_loop("dw.four", const(0), count, _PIXELS, starts, group(_PIXELS))
            rest = [(p, in_step) for p in ps[:k]] + [(ps[k], out_step)]
            counted_loop("dw.one", stopped, count, 1, rest, group(1))
            return context.get_dummy_value()

        return sig, codegen

    return row


#: Stride 1, pixels one dilation apart (in_step = tap); stride 2 without dilation (in_step = 2 tap).
depthwise_row_shared1 = _row_intrinsic(1)
depthwise_row_shared2 = _row_intrinsic(2)


__all__ = ["LANES", "depthwise_row_shared1", "depthwise_row_shared2"]
