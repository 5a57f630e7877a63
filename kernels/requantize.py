"""The quantized output stage: int32 sums to uint8/int8 outputs, exactly as TFLite computes them.

For output channel c: ``clamp(MultiplyByQuantizedMultiplier(acc + bias[c], multiplier[c],
shift[c]) + out_zero_point, act_min, act_max)``, where ``acc + bias`` is TFLite's int32
accumulator and wraps as it does. The constants are prepared once per operator
(:func:`requant_table`). The convolutions' tiles apply it to their sums in registers
(:func:`rescale_int32`: :mod:`.igemm`, :mod:`.depthwise_quantized`); :func:`requantize_rows` does
it to sums in memory (TRANSPOSE_CONV's), a block of output pixels sixteen channels at a time
(:func:`_rescale_columns`, written in LLVM IR: Numba's vectorizer stops at 256-bit vectors, four
64-bit products at a time, where AVX-512 does eight) with a scalar loop for the last few channels."""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import config, njit, prange, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

from .vector_ir import masked_store, splat

_INT32_MIN = -(2**31)

# Rows of a requantization table (int64 [6, C], see :func:`requant_table`).
_MULT, _LEFT, _RIGHT, _NUDGE, _NUDGE_POS, _SHIFT = range(6)
#: Channels per vector step.
_VECTOR = 16


@njit(cache=True, inline="always")
def requantize_one(total, multiplier, left_shift, right_shift, out_zero_point, act_min, act_max):
    """One output of the quantized output stage, from the int32 sum ``total`` (acc + bias).

    ``clamp(MultiplyByQuantizedMultiplier(total, multiplier, shift) + out_zero_point)``
    with ``left_shift = max(shift, 0)``, ``right_shift = max(-shift, 0)``: the same
    numbers as ``fixedpoint.multiply_by_quantized_multiplier``, written without
    branches. That needs ``multiplier`` >= 0 (so never INT32_MIN, the one saturating
    case), which prepare guarantees.
    """
    x = np.int64(total) << left_shift
    x = ((x - _INT32_MIN) & 0xFFFFFFFF) + _INT32_MIN  # the left shift wraps as int32 in C
    high = (x * np.int64(multiplier) + (1 << 30)) >> 31  # rounding doubling high multiply
    mask = (np.int64(1) << right_shift) - 1
    threshold = (mask >> 1) - (high >> 63)  # ties away from zero: one more when negative
    v = (high >> right_shift) + np.int64((high & mask) > threshold) + out_zero_point
    return min(max(v, act_min), act_max)


def requant_table(multiplier, left_shift, right_shift):
    """The per-channel constants of the output stage, int64 [6, C] (NumPy, at plan time).

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
    right = np.asarray(right_shift, np.int64)
    mask = (np.int64(1) << right) - 1
    table = np.empty((6, right.shape[0]), dtype=np.int64)
    table[_MULT] = multiplier
    table[_LEFT] = left_shift
    table[_RIGHT] = right
    table[_NUDGE] = (np.int64(1) << 30) + ((mask >> 1) << 31)
    table[_NUDGE_POS] = (mask & 1) << 31
    table[_SHIFT] = 31 + right
    return table


def padded_channels(c: int) -> int:
    """C rounded up to a whole vector step: how wide acc, bias and table must be for
    :func:`requantize_rows` to do a layer's last channels as a vector step too."""
    return -(-c // _VECTOR) * _VECTOR


@njit(cache=True, inline="always")
def _total(acc_value, bias_value):
    """TFLite's int32 accumulator ``acc + bias`` (wrapping), as int64; acc_value an exact integer of any type."""
    return np.int64(np.int32(np.int64(acc_value) + bias_value))


@njit(cache=True, inline="always")
def _rescale(total, multiplier, nudge, nudge_pos, shift, out_zero_point, act_min, act_max):
    """The folded output stage of :func:`requant_table` (no left shift) for one int32 total."""
    p = total * multiplier
    # nudge_pos applies where h >= 0, i.e. p + 2**30 >= 0: a sign mask, not a branch.
    v = ((p + nudge + (nudge_pos & ~((p + (1 << 30)) >> 63))) >> shift) + out_zero_point
    return min(max(v, act_min), act_max)


def _low_halves(builder: ir.IRBuilder, v: ir.Value) -> ir.Value:
    """<8 x i64>: each lane's low 32 bits, sign-extended."""
    return builder.ashr(builder.shl(v, splat(builder, ir.Constant(ir.IntType(64), 32), v.type)),
                        splat(builder, ir.Constant(ir.IntType(64), 32), v.type))


#: Rows of a block of :func:`pack_stage`: two of 16 int32, then eight of 8 int64 (the even and the
#: odd channels of a table row); 64 bytes each.
_BIAS, _LEFT32, _MULT_EVEN, _NUDGE_EVEN, _POS_EVEN, _SHIFT_EVEN = 0, 1, 2, 4, 6, 8
#: Bytes of a block of :func:`pack_stage` (16 channels).
STAGE_BYTES = 10 * 64


def pack_stage(bias: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The output stage's constants as the convolutions' tiles load them (:func:`stage_constants`),
    int64 [NB, 10, 8] (64 bytes a row): per block of 16 channels, the bias and the left shift as 16
    int32, then the multiplier, the nudges and the shift of :func:`requant_table`, each split into
    the block's even and odd channels (:func:`rescale_int32` works on the two halves), 8 values a
    row. bias int64 [16 NB] (int32 values) and table int64 [6, 16 NB]: zero-padded past the
    channels. (Where each tile split the table's rows itself: the shuffles and conversions of 16
    constant vectors per block, for every 8 pixels of a quantized conv.)"""
    nb = bias.shape[0] // _VECTOR
    stage = np.zeros((nb, 10, 8), np.int64)
    words = stage.view(np.int32).reshape(nb, 10, 16)
    words[:, _BIAS] = bias.astype(np.int32).reshape(nb, _VECTOR)  # (int32 values: a sum past them wraps)
    words[:, _LEFT32] = table[_LEFT].reshape(nb, _VECTOR)
    for row, k in ((_MULT_EVEN, _MULT), (_NUDGE_EVEN, _NUDGE), (_POS_EVEN, _NUDGE_POS), (_SHIFT_EVEN, _SHIFT)):
        stage[:, row : row + 2] = table[k].reshape(nb, 8, 2).transpose(0, 2, 1)
    return stage


def unpack_stage(stage: np.ndarray, channels: int) -> tuple[np.ndarray, ...]:
    """(bias, multiplier, left shift, right shift) of the first ``channels`` of :func:`pack_stage`'s
    ``stage``, for :func:`requantize_one` (the kernels' NumPy twins)."""
    nb = stage.shape[0]
    words = stage.view(np.int32).reshape(nb, 10, 16)
    bias, left = (words[:, row].reshape(-1)[:channels].astype(np.int64) for row in (_BIAS, _LEFT32))
    mult, shift = (stage[:, row : row + 2].transpose(0, 2, 1).reshape(-1)[:channels]
                   for row in (_MULT_EVEN, _SHIFT_EVEN))
    return bias, mult, left, np.maximum(shift - 31, 0)


def stage_constants(builder: ir.IRBuilder, address: ir.Value) -> tuple:
    """IR: a block of :func:`pack_stage` at the integer ``address`` (i64, any alignment), as the
    output stage takes it: (bias, left shift) <16 x i32> and the constants of :func:`rescale_int32`."""
    i32, i64 = ir.IntType(32), ir.IntType(64)
    v32, h64, h32 = ir.VectorType(i32, _VECTOR), ir.VectorType(i64, 8), ir.VectorType(i32, 8)

    def row(k, vector):
        at = builder.inttoptr(builder.add(address, ir.Constant(i64, 64 * k)), vector.as_pointer())
        return builder.load(at, align=8)

    # The multiplier's halves as int32 sign-extended: LLVM multiplies 32 x 32 -> 64 (vpmuldq).
    mult = tuple(builder.sext(builder.trunc(row(k, h64), h32), h64) for k in (_MULT_EVEN, _MULT_EVEN + 1))
    halves = tuple((row(k, h64), row(k + 1, h64)) for k in (_NUDGE_EVEN, _POS_EVEN, _SHIFT_EVEN))
    return row(_BIAS, v32), row(_LEFT32, v32), (mult, *halves)


def rescale_int32(builder: ir.IRBuilder, total: ir.Value, constants: tuple) -> ir.Value:
    """The folded output stage of :func:`requant_table` (no left shift; before the zero point and
    the clamp) of 16 int32 totals (<16 x i32>), with ``constants`` from :func:`stage_constants`:
    the 64-bit steps on the even and the odd channels apart, 8 int64 lanes each holding an int32 in
    their low half (vpmuldq on them, one shuffle to join the results), where widening 16 lanes to
    int64 and narrowing them back took 6 shuffles more per 16 outputs. <16 x i32> (each result
    fits int32).

    The rounding nudge of ``h >= 0`` (``h`` the rounding doubling high product) goes by the sign of
    the total, one shift, where that of the product ``p`` took two steps (an add, a shift): with
    the multiplier >= 0 the two differ only where h = 0 and the total is negative, and there the
    result is 0 either way (``(p + 2**30 + c * 2**31) >> (31 + right)`` with ``0 <= p + 2**30 <
    2**31`` and c or c + 1 at most ``2**(right - 1)``)."""
    mult, nudge, nudge_pos, shift = constants
    i64 = ir.IntType(64)
    h64 = ir.VectorType(i64, _VECTOR // 2)
    v32 = ir.VectorType(ir.IntType(32), _VECTOR)
    sign = lambda v: builder.ashr(v, splat(builder, ir.Constant(i64, 63), h64))  # noqa: E731
    total = builder.bitcast(total, h64)
    even = _low_halves(builder, total)
    odd = builder.ashr(total, splat(builder, ir.Constant(i64, 32), h64))
    parts = []
    for half, (x, negative) in enumerate(((even, sign(even)), (odd, sign(total)))):
        p = builder.mul(x, mult[half])
        nudged = builder.add(nudge[half], builder.and_(nudge_pos[half], builder.not_(negative)))
        parts.append(builder.bitcast(builder.ashr(builder.add(p, nudged), shift[half]), v32))
    return builder.shuffle_vector(parts[0], parts[1], ir.Constant(v32, [i + _VECTOR * (i % 2) - i % 2
                                                                         for i in range(_VECTOR)]))


def stage_bounds(builder: ir.IRBuilder, zp: ir.Value, lo: ir.Value, hi: ir.Value) -> tuple:
    """IR: the output zero point and clamp bounds (i64 values) as :func:`output_stage` takes them."""
    i32 = ir.IntType(32)
    return tuple(splat(builder, builder.trunc(v, i32), ir.VectorType(i32, _VECTOR))
                 for v in (builder.sub(lo, zp), builder.sub(hi, zp), zp))


def output_stage(builder: ir.IRBuilder, sums: ir.Value, constants: tuple, bounds: tuple) -> ir.Value:
    """IR: TFLite's output stage of 16 int32 sums (<16 x i32>): ``clamp(rescale((sum + bias) << left)) +
    zp`` in int32 as C computes it, ``constants`` from :func:`stage_constants` and ``bounds`` from
    :func:`stage_bounds` (the clamp to the bounds less the zero point, so that no int32 sum wraps)."""
    bias, left, halved = constants
    below, above, zp = bounds
    v = rescale_int32(builder, builder.shl(builder.add(sums, bias), left), halved)  # (the int32 sum wraps)
    v = builder.select(builder.icmp_signed("<", v, below), below, v)
    v = builder.select(builder.icmp_signed(">", v, above), above, v)
    return builder.add(v, zp)


def _splat(value: ir.Value) -> ir.Value:
    return ir.Constant(ir.VectorType(value.type, _VECTOR), [value.constant] * _VECTOR)


@intrinsic
def _rescale_columns(typingctx, acc, k, bias, table, out_zero_point, act_min, act_max, out, lanes):
    """:func:`_rescale` of channels k .. k + lanes - 1 of every pixel: ``out[:, k:k + lanes]`` from
    ``acc[:, k:k + lanes]``, 1 <= lanes <= 16.

    acc [>= M, >= k + 16]: integer or float (exact integers); out [M, >= k + lanes]: integer;
    both with C-contiguous rows. bias: int64 [>= k + 16]; table: int64 [6, >= k + 16]
    (:func:`requant_table`, no left shifts). The sixteen channels' constants are loaded
    once, then a loop over the rows keeps them in registers. Fewer than 16 lanes are
    stored through a mask (one masked vector store with AVX-512), so nothing past them
    is written.
    """
    for name, arr, ndim in (("acc", acc, 2), ("bias", bias, 1), ("table", table, 2), ("out", out, 2)):
        if not isinstance(arr, types.Array) or arr.layout != "C" or arr.ndim != ndim:
            raise TypingError(f"_rescale_columns: {name} must be a C-contiguous {ndim}-D array, not {arr}")
    sig = types.void(acc, types.int64, bias, table, types.int64, types.int64, types.int64, out, types.int64)

    def codegen(context, builder, signature, args):
        acc_v, k_v, bias_v, table_v, zp_v, lo_v, hi_v, out_v, lanes_v = args
        i32, i64 = ir.IntType(32), ir.IntType(64)
        v32, v64 = ir.VectorType(i32, _VECTOR), ir.VectorType(i64, _VECTOR)
        arrays = {name: context.make_array(t)(context, builder, v)
                  for name, t, v in (("acc", acc, acc_v), ("bias", bias, bias_v), ("table", table, table_v),
                                     ("out", out, out_v))}
        types_ = {"acc": acc, "bias": bias, "table": table, "out": out}

        def address(name, byte_offset):
            """Sixteen elements of array ``name`` from ``byte_offset`` bytes past its start, as a vector pointer."""
            raw = builder.gep(builder.bitcast(arrays[name].data, ir.IntType(8).as_pointer()), [byte_offset])
            return builder.bitcast(raw, ir.VectorType(context.get_data_type(types_[name].dtype), _VECTOR).as_pointer())

        def element_offset(name, index):
            return builder.mul(index, ir.Constant(i64, types_[name].dtype.bitwidth // 8))

        def load(name, byte_offset):
            return builder.load(address(name, byte_offset), align=types_[name].dtype.bitwidth // 8)

        def broadcast(value):
            return splat(builder, value, v64)

        columns = cgutils.unpack_tuple(builder, arrays["table"].shape)[1]
        constant = lambda r: load("table", element_offset("table", builder.add(  # noqa: E731
            builder.mul(ir.Constant(i64, r), columns), k_v)))
        bias16 = load("bias", element_offset("bias", k_v))
        # The multiplier fits 31 bits: said so, LLVM multiplies 32 x 32 -> 64 (vpmuldq).
        mult = builder.sext(builder.trunc(constant(_MULT), v32), v64)
        nudge, nudge_pos, shift = constant(_NUDGE), constant(_NUDGE_POS), constant(_SHIFT)
        zp, lo, hi = broadcast(zp_v), broadcast(lo_v), broadcast(hi_v)
        rows = cgutils.unpack_tuple(builder, arrays["out"].shape)[0]
        acc_stride = cgutils.unpack_tuple(builder, arrays["acc"].strides)[0]
        out_stride = cgutils.unpack_tuple(builder, arrays["out"].strides)[0]
        out_elem = context.get_data_type(out.dtype)
        out_vector = ir.VectorType(out_elem, _VECTOR)
        mask = builder.icmp_signed("<", ir.Constant(v64, list(range(_VECTOR))), broadcast(lanes_v))
        whole = builder.icmp_signed(">=", lanes_v, ir.Constant(i64, _VECTOR))

        entry = builder.block
        loop = builder.append_basic_block("rescale.loop")
        done = builder.append_basic_block("rescale.done")
        builder.cbranch(builder.icmp_signed(">", rows, ir.Constant(i64, 0)), loop, done)
        builder.position_at_end(loop)
        r = builder.phi(i64)
        r.add_incoming(ir.Constant(i64, 0), entry)
        a = load("acc", builder.add(builder.mul(r, acc_stride), element_offset("acc", k_v)))
        if isinstance(acc.dtype, types.Float):
            a = builder.fptosi(a, v64)
        elif acc.dtype.bitwidth < 64:
            a = builder.sext(a, v64) if acc.dtype.signed else builder.zext(a, v64)
        total = builder.sext(builder.trunc(builder.add(a, bias16), v32), v64)  # TFLite's int32 sum wraps
        p = builder.mul(total, mult)
        negative = builder.ashr(builder.add(p, _splat(ir.Constant(i64, 1 << 30))), _splat(ir.Constant(i64, 63)))
        v = builder.ashr(builder.add(p, builder.add(nudge, builder.and_(nudge_pos, builder.not_(negative)))), shift)
        v = builder.add(v, zp)
        v = builder.select(builder.icmp_signed("<", v, lo), lo, v)
        v = builder.select(builder.icmp_signed(">", v, hi), hi, v)
        if out_elem.width < v.type.element.width:
            v = builder.trunc(v, out_vector)
        at = address("out", builder.add(builder.mul(r, out_stride), element_offset("out", k_v)))
        with builder.if_else(whole) as (all_lanes, some_lanes):  # the same way for every row: LLVM hoists it
            with all_lanes:
                builder.store(v, at, align=out.dtype.bitwidth // 8)
            with some_lanes:
                masked_store(builder, v, at, mask, out.dtype.bitwidth // 8)
        r_next = builder.add(r, ir.Constant(i64, 1))
        r.add_incoming(r_next, builder.block)
        builder.cbranch(builder.icmp_signed("<", r_next, rows), loop, done)
        builder.position_at_end(done)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True)
def requantize_rows(acc, bias, table, out_zero_point, act_min, act_max, out):
    """out [M, C] = the quantized output stage of acc [>= M, >= C] (exact integers, any dtype) + bias.

    acc and out: rows C-contiguous (acc may be a wider scratch); bias: int64 [>= C] (int32
    values); table: int64 [6, >= C] (:func:`requant_table`). Where every left shift is 0
    (the usual case: a real multiplier below one) the folded single-rounding form runs,
    sixteen channels of every row per step, the last C % 16 too where acc, bias and
    table reach :func:`padded_channels` (C); else the general form, one value at a time.
    """
    m, c = out.shape
    general = False
    for k in range(c):
        general |= table[_LEFT, k] != 0
    mult, left, right = table[_MULT], table[_LEFT], table[_RIGHT]
    nudge, nudge_pos, shift = table[_NUDGE], table[_NUDGE_POS], table[_SHIFT]
    vectors = 0 if general else c - c % _VECTOR
    zp, lo, hi = np.int64(out_zero_point), np.int64(act_min), np.int64(act_max)
    # The last channels (or all of a layer narrower than 16) as one more, masked, vector step
    # where acc, bias and table are padded past C (see padded_channels): 257x257x8 outputs
    # 3x faster than through a scratch block. One call site: each is compiled on its own.
    padded = not general and vectors < c and min(acc.shape[1], bias.shape[0], table.shape[1]) >= vectors + _VECTOR
    for k in range(0, vectors + (_VECTOR if padded else 0), _VECTOR):
        _rescale_columns(acc, k, bias, table, zp, lo, hi, out, min(c - k, _VECTOR))
    if padded:
        return
    for r in range(m):
        a = acc[r]
        o = out[r]
        for k in range(vectors, c):
            total = _total(a[k], bias[k])
            if general:
                o[k] = requantize_one(total, mult[k], left[k], right[k], zp, lo, hi)
            else:
                o[k] = _rescale(total, mult[k], nudge[k], nudge_pos[k], shift[k], zp, lo, hi)


@njit(cache=True, parallel=True, nogil=True)
def requantize(acc, bias, table, out_zero_point, act_min, act_max, out):
    """:func:`requantize_rows` of out [M, C] (uint8/int8) from acc [M, C], rows split over Numba's threads."""
    for r in prange(acc.shape[0]):
        requantize_rows(acc[r : r + 1], bias, table, out_zero_point, act_min, act_max, out[r : r + 1])


if config.DISABLE_JIT:  # the kernels run as plain Python (coverage, debugging): one value at a time

    def requantize_rows(acc, bias, table, out_zero_point, act_min, act_max, out):  # noqa: F811
        m, c = out.shape
        for r in range(m):
            for k in range(c):
                total = _total(acc[r, k], bias[k])
                out[r, k] = requantize_one(total, table[_MULT, k], table[_LEFT, k], table[_RIGHT, k],
                                           out_zero_point, act_min, act_max)


__all__ = ["STAGE_BYTES", "pack_stage", "padded_channels", "requant_table", "requantize", "requantize_one",
           "output_stage", "requantize_rows", "rescale_int32", "stage_bounds", "stage_constants", "unpack_stage"]
