"""PRELU and LEAKY_RELU: rectifiers with a slope below zero, float32 and uint8 / int8.

Prepare follows ``kernels/activations.cc`` (``PreluPrepare``, ``LeakyReluPrepare``):
the quantized multipliers are computed from the float32 scales in float32 before
widening, as TFLite does (``input->params.scale * alpha->params.scale /
output->params.scale`` is float arithmetic). PRELU's alpha broadcasts against the
input (the output keeps the input's shape).

Backends: float is NumPy in both. Quantized, the numba backend tabulates the
reference arithmetic at plan time (256 entries for LEAKY_RELU, 256 x 256 input and
alpha pairs for PRELU) and gathers.
"""

from __future__ import annotations

import numpy as np

from ..quantization import quantize_multiplier
from ..reference import prelu as ref
from ..tflite.options import LeakyReluOptions
from ..tflite.schema import BuiltinOperator, TensorType
from .base import OpContext, Prepared, register
from .binary import _quantized_run, broadcast_output_shape
from .elementwise import EIGHT_BIT, quantization_of, unary_lookup_run, unary_table


@register(BuiltinOperator.PRELU)
def prepare_prelu(ctx: OpContext) -> Prepared:
    """x >= 0 ? x : x * alpha, alpha (input 1) broadcast against x (input 0)."""
    ctx.expect_io(2)
    x, alpha = ctx.inputs
    o = ctx.outputs[0]
    if o.type != x.type:
        raise ctx.error(f"output type {o.type.name} differs from the input type {x.type.name}")
    shape = broadcast_output_shape(ctx, x, alpha, max_rank=4)
    if shape != tuple(x.shape):
        raise ctx.error(f"alpha of shape {alpha.shape} would change the input shape {x.shape} to {shape}")
    if x.type == TensorType.FLOAT32:
        if alpha.type != TensorType.FLOAT32:
            raise ctx.error(f"alpha must be float32 for a float32 input, not {alpha.type.name}")

        def run(inputs, outputs):
            ref.prelu(inputs[0], inputs[1], outputs[0])
        return Prepared((shape,), run)
    if x.type not in EIGHT_BIT:
        raise ctx.error(f"{x.type.name} input is not supported (float32, uint8 and int8 are)")
    if alpha.type != x.type:
        raise ctx.error(f"alpha type {alpha.type.name} differs from the input type {x.type.name}")
    s_in, z_in = quantization_of(ctx, x, "input 0")
    s_a, z_a = quantization_of(ctx, alpha, "alpha (input 1)")
    s_out, z_out = quantization_of(ctx, o, "output 0")
    try:
        m1, sh1 = quantize_multiplier(float(np.float32(s_in) / np.float32(s_out)))
        m2, sh2 = quantize_multiplier(float(np.float32(s_in) * np.float32(s_a) / np.float32(s_out)))
    except ValueError as exc:
        raise ctx.error(f"scales give no usable multiplier: {exc}") from None
    params = ref.PreluParams(-z_in, -z_a, z_out, m1, sh1, m2, sh2)
    return Prepared((shape,), _quantized_run(
        ctx, lambda v, a, out: ref.prelu_quantized(v, a, params, out), x, alpha, o, shape))


@register(BuiltinOperator.LEAKY_RELU)
def prepare_leaky_relu(ctx: OpContext) -> Prepared:
    """x > 0 ? x : x * alpha with the scalar ``alpha`` of LeakyReluOptions."""
    ctx.expect_io(1)
    x, o = ctx.inputs[0], ctx.outputs[0]
    if o.type != x.type:
        raise ctx.error(f"output type {o.type.name} differs from the input type {x.type.name}")
    options = ctx.options if ctx.options is not None else LeakyReluOptions()
    alpha = np.float32(options.alpha)
    if not np.isfinite(alpha):
        raise ctx.error(f"alpha must be finite, got {options.alpha}")
    shape = tuple(x.shape)
    if x.type == TensorType.FLOAT32:
        def run(inputs, outputs):
            ref.leaky_relu(inputs[0], alpha, outputs[0])
        return Prepared((shape,), run)
    if x.type not in EIGHT_BIT:
        raise ctx.error(f"{x.type.name} input is not supported (float32, uint8 and int8 are)")
    s_in, z_in = quantization_of(ctx, x, "input 0")
    s_out, z_out = quantization_of(ctx, o, "output 0")
    try:
        m_alpha, sh_alpha = quantize_multiplier(float(np.float32(s_in) * alpha / np.float32(s_out)))
        m_id, sh_id = quantize_multiplier(float(np.float32(s_in) / np.float32(s_out)))
    except ValueError as exc:
        raise ctx.error(f"scales give no usable multiplier: {exc}") from None
    params = ref.LeakyReluParams(z_in, z_out, m_id, sh_id, m_alpha, sh_alpha)

    def spec(v: np.ndarray, out: np.ndarray) -> None:
        ref.leaky_relu_quantized(v, params, out)

    if ctx.backend == "numba":
        return Prepared((shape,), unary_lookup_run(unary_table(spec, x.dtype, o.dtype)))

    def run(inputs, outputs):
        spec(inputs[0], outputs[0])

    return Prepared((shape,), run)
