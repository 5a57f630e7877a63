"""EXP, RSQRT, CAST, ABS, NEG, SQRT, SQUARE, LOG, SIN, COS, FLOOR, SIGN, LOGICAL_NOT: elementwise
operators of one input.

Prepare follows TFLite's ``kernels/exp.cc``, ``elementwise.cc`` (Rsqrt) and ``cast.cc``:
EXP in float32 and int8 (a 256-entry table), RSQRT in float32 and int8 (the
fixed-point inverse square root, tabulated over the 256 inputs at plan time: the
per-value arithmetic of the reference kernel, so bit-identical by construction), and
CAST between the numeric types NumPy holds. An int8 RSQRT input below the zero point
(a negative real) is refused at run time, as TFLite refuses it.

The others follow ``elementwise.cc``, ``neg.cc``, ``floor.cc`` and ``sign.cc`` in the types LiteRT
2.3 runs them: all in float32; ABS also int8 and int16 (quantized: rescaled, see
``reference/unary.py``; int16 without quantization: the plain absolute value) and int32; NEG also
int8, int16, int32, int64 (raw values); SIGN int32; LOG int8 (a 256-entry table); LOGICAL_NOT bool.
Quantized int8 / int16 SQRT and int16 LOG (LiteRT 2.3 has them, through tables of another kind)
are refused with a message.
"""

from __future__ import annotations

import numpy as np

from ..quantization import quantize_multiplier
from ..reference import unary as ref
from ..tflite.schema import BuiltinOperator, TensorType
from .base import OpContext, Prepared, register
from .elementwise import in_out_quantization, quantized_unary_run, unary_lookup_run, unary_run


def _lookup_both(ctx: OpContext, table: np.ndarray):
    """A run for an 8-bit table: the numba backend gathers with the kernel, numpy with fancy indexing."""
    if ctx.backend == "numba":
        return unary_lookup_run(table)

    def run(inputs, outputs):
        outputs[0][...] = table[inputs[0].view(np.uint8)]

    return run


def _rsqrt_int8_run(ctx: OpContext, s_in: float, z_in: int, s_out: float, z_out: int, dtype: np.dtype):
    # elementwise.cc: 1. / (std::sqrt(float) * float), the product in float32.
    with np.errstate(over="ignore", under="ignore"):
        product = float(np.sqrt(np.float32(s_in)) * np.float32(s_out))
    try:
        m, s = quantize_multiplier(1.0 / product if product > 0 else float("inf"))
    except ValueError as exc:
        raise ctx.error(f"scales give no usable multiplier: {exc}") from None
    lookup = _lookup_both(ctx, ref.rsqrt_table(z_in, m, s, z_out, dtype))

    def run(inputs, outputs):
        if inputs[0].size and int(inputs[0].min()) < z_in:
            raise ctx.error(f"RSQRT is only defined for non-negative values: an input is below "
                            f"the zero point {z_in}")
        lookup(inputs, outputs)

    return run


_FLOAT_FNS = {BuiltinOperator.EXP: ref.exp, BuiltinOperator.RSQRT: ref.rsqrt}


@register(*_FLOAT_FNS)
def prepare_exp_rsqrt(ctx: OpContext) -> Prepared:
    """EXP or RSQRT: output shape = input shape, same type (float32 or int8)."""
    x, o = ctx.same_type_io()
    shape = tuple(x.shape)
    if x.type == TensorType.FLOAT32:
        return Prepared((shape,), unary_run(_FLOAT_FNS[ctx.opcode]))
    if x.type != TensorType.INT8:
        raise ctx.error(f"{x.type.name} input is not supported (float32 and int8 are, as in TFLite)")
    s_in, z_in, s_out, z_out = in_out_quantization(ctx, x, o)
    if ctx.opcode == BuiltinOperator.EXP:
        return Prepared((shape,), _lookup_both(ctx, ref.exp_table(s_in, z_in, s_out, z_out, x.dtype)))
    return Prepared((shape,), _rsqrt_int8_run(ctx, s_in, z_in, s_out, z_out, x.dtype))


#: element types CAST converts between (TFLite's cast.cc, those NumPy holds)
_CAST_TYPES = (TensorType.FLOAT32, TensorType.FLOAT16, TensorType.FLOAT64, TensorType.INT64, TensorType.INT32,
               TensorType.UINT32, TensorType.INT16, TensorType.UINT16, TensorType.UINT8, TensorType.INT8,
               TensorType.BOOL)


@register(BuiltinOperator.CAST)
def prepare_cast(ctx: OpContext) -> Prepared:
    ctx.expect_io(1)
    x, o = ctx.inputs[0], ctx.outputs[0]
    for t, what in ((x, "input"), (o, "output")):
        if t.type not in _CAST_TYPES:
            raise ctx.error(f"cannot cast {what} type {t.type.name}")

    return Prepared((tuple(x.shape),), unary_run(ref.cast))


#: the NumPy ufunc of each float32 math operator (SQUARE and SIGN: ``reference/unary.py``)
_NUMPY_MATH = {
    BuiltinOperator.ABS: np.abs, BuiltinOperator.NEG: np.negative, BuiltinOperator.SQRT: np.sqrt,
    BuiltinOperator.LOG: np.log, BuiltinOperator.SIN: np.sin, BuiltinOperator.COS: np.cos,
    BuiltinOperator.FLOOR: np.floor,
}
#: the other types each operator takes (LiteRT 2.3), beyond float32
_MATH_TYPES = {
    BuiltinOperator.ABS: (TensorType.INT8, TensorType.INT16, TensorType.INT32),
    BuiltinOperator.NEG: (TensorType.INT8, TensorType.INT16, TensorType.INT32, TensorType.INT64),
    BuiltinOperator.LOG: (TensorType.INT8,),
    BuiltinOperator.SIGN: (TensorType.INT32,),
}


def _float_math(opcode: BuiltinOperator):
    """The float32 ``fn(x, out)`` of a math operator."""
    if opcode == BuiltinOperator.SQUARE:
        return ref.square
    if opcode == BuiltinOperator.SIGN:
        return ref.sign
    fn = _NUMPY_MATH[opcode]

    def apply(x, out):
        with np.errstate(divide="ignore", invalid="ignore"):  # (log 0 = -inf, sqrt -1 = NaN, as in C)
            fn(x, out=out)

    return apply


@register(*_NUMPY_MATH, BuiltinOperator.SQUARE, BuiltinOperator.SIGN, BuiltinOperator.LOGICAL_NOT)
def prepare_math(ctx: OpContext) -> Prepared:
    """ABS, NEG, SQRT, SQUARE, LOG, SIN, COS, FLOOR, SIGN (float32 and the types of ``_MATH_TYPES``),
    LOGICAL_NOT (bool): output shape = input shape, same type."""
    x, o = ctx.same_type_io()
    shape = tuple(x.shape)
    if ctx.opcode == BuiltinOperator.LOGICAL_NOT:
        if x.type != TensorType.BOOL:
            raise ctx.error(f"{x.type.name} input is not supported (bool is)")
        return Prepared((shape,), unary_run(ref.logical_not))
    if x.type == TensorType.FLOAT32:
        return Prepared((shape,), unary_run(_float_math(ctx.opcode)))
    if ctx.opcode == BuiltinOperator.SQRT and x.type in (TensorType.INT8, TensorType.INT16):
        raise ctx.error(f"quantized {x.type.name} SQRT is not supported (float32 is)")
    if ctx.opcode == BuiltinOperator.LOG and x.type == TensorType.INT16:
        raise ctx.error("int16 LOG is not supported (float32 and int8 are)")
    allowed = _MATH_TYPES.get(ctx.opcode, ())
    if x.type not in allowed:
        names = ", ".join(t.name.lower() for t in (TensorType.FLOAT32, *allowed))
        raise ctx.error(f"{x.type.name} input is not supported ({names} are)")
    if ctx.opcode in (BuiltinOperator.NEG, BuiltinOperator.SIGN):
        return Prepared((shape,), unary_run(ref.negate if ctx.opcode == BuiltinOperator.NEG else ref.sign))
    if ctx.opcode == BuiltinOperator.LOG:
        s_in, z_in, s_out, z_out = in_out_quantization(ctx, x, o)
        return Prepared((shape,), _lookup_both(ctx, ref.log_table(s_in, z_in, s_out, z_out, x.dtype)))
    # ABS of integers: int32 and unquantized int16 plain; int8 and quantized int16 rescaled.
    if x.type == TensorType.INT32 or (x.type == TensorType.INT16 and not x.is_quantized):
        return Prepared((shape,), unary_run(ref.absolute))
    s_in, z_in, s_out, z_out = in_out_quantization(ctx, x, o)
    if x.type == TensorType.INT16 and (z_in or z_out):
        raise ctx.error("int16 ABS needs zero points of 0")
    multiplier, shift = None, 0
    if np.float32(s_in) != np.float32(s_out):
        try:
            multiplier, shift = quantize_multiplier(float(np.float32(s_in) / np.float32(s_out)))
        except ValueError as exc:
            raise ctx.error(str(exc)) from None

    def spec(v, out):
        ref.abs_quantized(v, z_in, multiplier, shift, z_out, out)

    if x.type == TensorType.INT8:
        return Prepared((shape,), quantized_unary_run(ctx, spec, x.dtype, o.dtype))
    return Prepared((shape,), unary_run(spec))
