"""MAXIMUM, MINIMUM, DIV, SQUARED_DIFFERENCE, POW, the comparisons (EQUAL, NOT_EQUAL, LESS,
LESS_EQUAL, GREATER, GREATER_EQUAL) and SELECT / SELECT_V2: broadcasting operators beyond
ADD/SUB/MUL.

Prepare follows TFLite's ``kernels/maximum_minimum.cc``, ``div.cc`` and
``squared_difference.cc``: both inputs of one type, the output shape their broadcast,
and for 8-bit DIV / SQUARED_DIFFERENCE the fixed-point constants computed from the
float32 scales exactly as TFLite computes them (see each prepare). A quantized or
int32 DIV whose divisor holds a zero is refused at run time, as TFLite refuses it.
POW follows ``pow.cc`` (float32 and int32; an int32 exponent below 0 is refused at run time, as
TFLite refuses it); the comparisons ``comparisons.cc`` (raw values of float32, int32, int64, bool
and unquantized int16; uint8 / int8, and quantized int16 EQUAL / NOT_EQUAL, through each input's
scale as a fixed-point multiplier, scales below 1); SELECT ``select.cc`` (values copied raw).

Backends: float and int32 are NumPy in both. 8-bit: the numba backend evaluates the
reference arithmetic at plan time on all 256 x 256 input pairs and gathers
(``kernels/elementwise.lookup_binary``), bit-identical by construction.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..quantization import activation_range_float, activation_range_quantized, quantize_multiplier
from ..quantization import quantize_multiplier_smaller_than_one_exp
from ..reference import binary as ref
from ..tflite.options import DivOptions
from ..tflite.schema import BuiltinOperator, TensorType
from .base import OpContext, Prepared, TensorSpec, register
from .elementwise import EIGHT_BIT, quantization_of, quantized_binary_run

_T = TensorType


def broadcast_output_shape(ctx: OpContext, a: TensorSpec, b: TensorSpec, max_rank: int | None = None
                           ) -> tuple[int, ...]:
    """The broadcast of two input shapes, refusing a broadcast of more than ``max_rank`` dimensions
    where the TFLite kernel has a fixed-rank broadcast loop."""
    try:
        shape = tuple(int(d) for d in np.broadcast_shapes(a.shape, b.shape))
    except ValueError:
        raise ctx.error(f"input shapes {a.shape} and {b.shape} do not broadcast") from None
    if max_rank is not None and tuple(a.shape) != tuple(b.shape) and len(shape) > max_rank:
        raise ctx.error(f"broadcasting {a.shape} with {b.shape} needs {len(shape)} dimensions; "
                        f"TFLite's kernel broadcasts at most {max_rank}")
    return shape


def _inputs(ctx: OpContext, allowed) -> tuple[TensorSpec, TensorSpec, TensorSpec]:
    ctx.expect_io(2)
    a, b = ctx.inputs
    o = ctx.outputs[0]
    if a.type != b.type:
        raise ctx.error(f"input types differ: {a.type.name} and {b.type.name}")
    if o.type != a.type:
        raise ctx.error(f"output type {o.type.name} differs from the input type {a.type.name}")
    if a.type not in allowed:
        raise ctx.error(f"{a.type.name} inputs are not supported ({', '.join(t.name.lower() for t in allowed)} are)")
    return a, b, o


# ------------------------------------------------------------------ MAXIMUM / MINIMUM


@register(BuiltinOperator.MAXIMUM, BuiltinOperator.MINIMUM)
def prepare_maximum_minimum(ctx: OpContext) -> Prepared:
    a, b, o = _inputs(ctx, (_T.FLOAT32, _T.UINT8, _T.INT8, _T.INT16, _T.INT32, _T.INT64))
    out_shape = broadcast_output_shape(ctx, a, b, max_rank=5)
    fn = ref.maximum if ctx.opcode == BuiltinOperator.MAXIMUM else ref.minimum
    if a.type in EIGHT_BIT:
        return Prepared((out_shape,), quantized_binary_run(ctx, fn, a, b, o, out_shape))

    def run(inputs, outputs):
        fn(inputs[0], inputs[1], outputs[0])

    return Prepared((out_shape,), run)


# ------------------------------------------------------------------------------ DIV


@register(BuiltinOperator.DIV)
def prepare_div(ctx: OpContext) -> Prepared:
    a, b, o = _inputs(ctx, (_T.FLOAT32, _T.INT32, _T.UINT8, _T.INT8))
    options = ctx.options_as(DivOptions)
    activation = options.fused_activation_function
    out_shape = broadcast_output_shape(ctx, a, b, max_rank=5)
    if a.type == _T.FLOAT32:
        lo, hi = activation_range_float(activation)

        def run(inputs, outputs):
            ref.div(inputs[0], inputs[1], lo, hi, outputs[0])
        return Prepared((out_shape,), run)

    def refuse_zero(divisor: np.ndarray, zero: int = 0) -> None:
        if np.any(divisor == zero):
            raise ctx.error(f"division by zero: the divisor (input 1) holds {zero}"
                            + (" (its zero point)" if a.type != _T.INT32 else ""))

    if a.type == _T.INT32:
        info = np.iinfo(np.int32)
        lo, hi = {1: (0, int(info.max)), 3: (0, 6), 2: (-1, 1)}.get(int(activation), (int(info.min), int(info.max)))

        def run(inputs, outputs):
            refuse_zero(inputs[1])
            ref.div_int32(inputs[0], inputs[1], lo, hi, outputs[0])
        return Prepared((out_shape,), run)

    s1, z1 = quantization_of(ctx, a, "input 0")
    s2, z2 = quantization_of(ctx, b, "input 1")
    so, zo = quantization_of(ctx, o, "output 0")
    try:
        act_min, act_max = activation_range_quantized(activation, so, zo, o.dtype)
    except ValueError as exc:
        raise ctx.error(str(exc)) from None
    # div.cc: input1->params.scale / (input2->params.scale * output->params.scale), all float32.
    with np.errstate(over="ignore", divide="ignore"):
        real = float(np.float32(s1) / (np.float32(s2) * np.float32(so)))
    try:
        m, s = quantize_multiplier(real)
    except ValueError as exc:
        raise ctx.error(f"scales give no usable multiplier: {exc}") from None
    params = ref.MulParams(-z1, -z2, zo, m, s, act_min, act_max)
    return Prepared((out_shape,), quantized_binary_run(
        ctx, lambda x, y, out: ref.div_quantized(x, y, params, out), a, b, o, out_shape,
        check=partial(refuse_zero, zero=z2)))


# ------------------------------------------------------------------- SQUARED_DIFFERENCE


@register(BuiltinOperator.SQUARED_DIFFERENCE)
def prepare_squared_difference(ctx: OpContext) -> Prepared:
    a, b, o = _inputs(ctx, (_T.FLOAT32, _T.INT32, _T.INT8))
    out_shape = broadcast_output_shape(ctx, a, b, max_rank=4)
    if a.type != _T.INT8:
        def run(inputs, outputs):
            ref.squared_difference(inputs[0], inputs[1], outputs[0])
        return Prepared((out_shape,), run)

    s1, z1 = quantization_of(ctx, a, "input 0")
    s2, z2 = quantization_of(ctx, b, "input 1")
    so, zo = quantization_of(ctx, o, "output 0")
    left_shift = 7
    # squared_difference.cc: twice_max = 2 * max(float, float) (a float32), ratios in double.
    twice_max = float(np.float32(2) * max(np.float32(s1), np.float32(s2)))
    real1 = float(np.float32(s1)) / twice_max
    real2 = float(np.float32(s2)) / twice_max
    real_out = twice_max * twice_max / float(np.float32(1 << (2 * left_shift)) * np.float32(so))
    try:
        m1, sh1 = quantize_multiplier_smaller_than_one_exp(real1)
        m2, sh2 = quantize_multiplier_smaller_than_one_exp(real2)
        mo, sho = quantize_multiplier_smaller_than_one_exp(real_out)
    except ValueError as exc:
        raise ctx.error(f"output scale {so} is too small for input scales {s1}, {s2}: {exc}") from None
    # squared_difference.cc clamps to the int8 range (no fused activation).
    info = np.iinfo(o.dtype)
    params = ref.ArithmeticParams(left_shift, -z1, m1, sh1, -z2, m2, sh2, zo, mo, sho, int(info.min), int(info.max))
    return Prepared((out_shape,), quantized_binary_run(
        ctx, lambda x, y, out: ref.squared_difference_quantized(x, y, params, out), a, b, o, out_shape))


# ------------------------------------------------------------------------- POW


@register(BuiltinOperator.POW)
def prepare_pow(ctx: OpContext) -> Prepared:
    """x ** y of two float32 or int32 tensors, broadcast over at most 4 dimensions (TFLite's loop)."""
    a, b, _ = _inputs(ctx, (_T.FLOAT32, _T.INT32))
    shape = broadcast_output_shape(ctx, a, b, 4)
    if a.type == _T.FLOAT32:
        return Prepared((shape,), lambda inputs, outputs: ref.power(inputs[0], inputs[1], outputs[0]))

    def run(inputs, outputs):
        if inputs[1].size and int(inputs[1].min()) < 0:
            raise ctx.error("an int32 exponent is negative (TFLite refuses it too)")
        ref.power(inputs[0], inputs[1], outputs[0])

    return Prepared((shape,), run)


# ------------------------------------------------------------------ comparisons


_COMPARISONS = (BuiltinOperator.EQUAL, BuiltinOperator.NOT_EQUAL, BuiltinOperator.LESS, BuiltinOperator.LESS_EQUAL,
                BuiltinOperator.GREATER, BuiltinOperator.GREATER_EQUAL)


@register(*_COMPARISONS)
def prepare_comparison(ctx: OpContext) -> Prepared:
    """A bool map of ``a OP b``, broadcast over at most 4 dimensions (TFLite's loop)."""
    ctx.expect_io(2)
    a, b = ctx.inputs
    o, name = ctx.outputs[0], ctx.opcode.name
    equality = ctx.opcode in (BuiltinOperator.EQUAL, BuiltinOperator.NOT_EQUAL)
    if a.type != b.type:
        raise ctx.error(f"input types differ: {a.type.name} and {b.type.name}")
    if o.type != _T.BOOL:
        raise ctx.error(f"the output must be bool, not {o.type.name}")
    allowed = (_T.FLOAT32, _T.INT32, _T.INT64, _T.UINT8, _T.INT8, _T.INT16) + ((_T.BOOL,) if equality else ())
    if a.type not in allowed:
        raise ctx.error(f"{a.type.name} inputs are not supported ({', '.join(t.name.lower() for t in allowed)} are)")
    shape = broadcast_output_shape(ctx, a, b, 4)
    scaled = a.type in EIGHT_BIT or (a.type == _T.INT16 and equality and a.is_quantized)
    if a.type == _T.INT16 and ctx.opcode == BuiltinOperator.NOT_EQUAL and not a.is_quantized:
        raise ctx.error("NOT_EQUAL of unquantized int16 is not supported (LiteRT leaves its output unwritten)")
    if not scaled:
        return Prepared((shape,), lambda inputs, outputs: ref.compare(name, inputs[0], inputs[1], outputs[0]))
    (s_a, z_a), (s_b, z_b) = quantization_of(ctx, a, "input 0"), quantization_of(ctx, b, "input 1")
    multipliers, shifts = [], []
    for s in (s_a, s_b):
        if not float(np.float32(s)) < 1.0:
            raise ctx.error(f"a quantized comparison of a scale of 1 or more ({s}) is not supported")
        m, sh = quantize_multiplier_smaller_than_one_exp(float(np.float32(s)))
        multipliers.append(m)
        shifts.append(sh)

    def run(inputs, outputs):
        ref.compare_quantized(name, inputs[0], inputs[1], (-z_a, -z_b), tuple(multipliers), tuple(shifts), outputs[0])

    return Prepared((shape,), run)


@register(BuiltinOperator.SELECT, BuiltinOperator.SELECT_V2)
def prepare_select(ctx: OpContext) -> Prepared:
    """``x`` where the bool ``condition`` holds, else ``y``. SELECT: a condition of x's shape, a
    scalar, or a vector along x's first dimension, x and y of one shape; SELECT_V2: the three
    broadcast (at most 5 dimensions, TFLite's loop)."""
    ctx.expect_io(3)
    c, x, y = ctx.inputs
    o = ctx.outputs[0]
    if c.type != _T.BOOL:
        raise ctx.error(f"the condition must be bool, not {c.type.name}")
    if x.type != y.type or o.type != x.type:
        raise ctx.error(f"x ({x.type.name}), y ({y.type.name}) and the output ({o.type.name}) must have one type")
    along_first = False
    if all(int(np.prod(t.shape, dtype=np.int64)) == 1 for t in (c, x, y, o)):
        shape = tuple(o.shape)  # (select.cc keeps the declared output shape of one value)
    elif ctx.opcode == BuiltinOperator.SELECT:
        if tuple(x.shape) != tuple(y.shape):
            raise ctx.error(f"x {x.shape} and y {y.shape} must have one shape")
        low_rank = len(c.shape) == 0 or (len(c.shape) == 1 and x.shape and c.shape[0] == x.shape[0])
        if tuple(c.shape) != tuple(x.shape) and not low_rank:
            raise ctx.error(f"the condition {c.shape} must have x's shape {x.shape}, be a scalar or a vector "
                            "along x's first dimension")
        shape, along_first = tuple(x.shape), len(c.shape) == 1 and tuple(c.shape) != tuple(x.shape)
    else:
        try:
            shape = tuple(int(d) for d in np.broadcast_shapes(c.shape, x.shape, y.shape))
        except ValueError:
            raise ctx.error(f"condition {c.shape}, x {x.shape} and y {y.shape} do not broadcast") from None
        if len(shape) > 5 and not tuple(c.shape) == tuple(x.shape) == tuple(y.shape):
            raise ctx.error(f"broadcasting needs {len(shape)} dimensions; TFLite's kernel broadcasts at most 5")
    return Prepared((shape,), lambda inputs, outputs: ref.select(inputs[0], inputs[1], inputs[2], outputs[0],
                                                                 along_first))
