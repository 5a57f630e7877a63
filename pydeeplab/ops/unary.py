"""EXP, RSQRT, CAST: elementwise operators of one input.

Prepare follows TFLite's ``kernels/exp.cc``, ``elementwise.cc`` (Rsqrt) and ``cast.cc``:
EXP in float32 and int8 (a 256-entry table), RSQRT in float32 and int8 (the
fixed-point inverse square root, tabulated over the 256 inputs at plan time: the
per-value arithmetic of the reference kernel, so bit-identical by construction), and
CAST between the numeric types NumPy holds. An int8 RSQRT input below the zero point
(a negative real) is refused at run time, as TFLite refuses it.
"""

from __future__ import annotations

import numpy as np

from ..quantization import quantize_multiplier
from ..reference import unary as ref
from ..tflite.schema import BuiltinOperator, TensorType
from .base import OpContext, Prepared, register
from .elementwise import quantization_of, unary_lookup_run


def _lookup_both(ctx: OpContext, table: np.ndarray):
    """A run for an 8-bit table: the numba backend gathers with the kernel, numpy with fancy indexing."""
    if ctx.backend == "numba":
        return unary_lookup_run(table)

    def run(inputs, outputs):
        outputs[0][...] = table[inputs[0].view(np.uint8)]

    return run


@register(BuiltinOperator.EXP)
def prepare_exp(ctx: OpContext) -> Prepared:
    ctx.expect_io(1)
    x, o = ctx.inputs[0], ctx.outputs[0]
    if o.type != x.type:
        raise ctx.error(f"output type {o.type.name} differs from the input type {x.type.name}")
    shape = tuple(x.shape)
    if x.type == TensorType.FLOAT32:
        def run(inputs, outputs):
            ref.exp(inputs[0], outputs[0])
        return Prepared((shape,), run)
    if x.type != TensorType.INT8:
        raise ctx.error(f"{x.type.name} input is not supported (float32 and int8 are, as in TFLite)")
    s_in, z_in = quantization_of(ctx, x, "input 0")
    s_out, z_out = quantization_of(ctx, o, "output 0")
    return Prepared((shape,), _lookup_both(ctx, ref.exp_table(s_in, z_in, s_out, z_out, x.dtype)))


@register(BuiltinOperator.RSQRT)
def prepare_rsqrt(ctx: OpContext) -> Prepared:
    ctx.expect_io(1)
    x, o = ctx.inputs[0], ctx.outputs[0]
    if o.type != x.type:
        raise ctx.error(f"output type {o.type.name} differs from the input type {x.type.name}")
    shape = tuple(x.shape)
    if x.type == TensorType.FLOAT32:
        def run(inputs, outputs):
            ref.rsqrt(inputs[0], outputs[0])
        return Prepared((shape,), run)
    if x.type != TensorType.INT8:
        raise ctx.error(f"{x.type.name} input is not supported (float32 and int8 are)")
    s_in, z_in = quantization_of(ctx, x, "input 0")
    s_out, z_out = quantization_of(ctx, o, "output 0")
    # elementwise.cc: 1. / (std::sqrt(float) * float), the product in float32.
    with np.errstate(over="ignore", under="ignore"):
        product = float(np.sqrt(np.float32(s_in)) * np.float32(s_out))
    try:
        m, s = quantize_multiplier(1.0 / product if product > 0 else float("inf"))
    except ValueError as exc:
        raise ctx.error(f"scales give no usable multiplier: {exc}") from None
    table = ref.rsqrt_table(z_in, m, s, z_out, x.dtype)
    lookup = _lookup_both(ctx, table)

    def run(inputs, outputs):
        if inputs[0].size and int(inputs[0].min()) < z_in:
            raise ctx.error(f"RSQRT is only defined for non-negative values: an input is below "
                            f"the zero point {z_in}")
        lookup(inputs, outputs)

    return Prepared((shape,), run)


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

    def run(inputs, outputs):
        ref.cast(inputs[0], outputs[0])

    return Prepared((tuple(x.shape),), run)
