"""LOG_SOFTMAX over the last axis: float32, uint8, int8 (TFLite ``kernels/activations.cc``).

Quantized outputs must have scale 16/256 and zero point 255 (uint8) or 127 (int8), as
TFLite requires. The constants come from ``PreprocessLogSoftmaxScalingExp`` with beta 1:
the input multiplier of SOFTMAX (``beta * s_in * 2**26``, quantized with a left shift),
its reverse ``2**(31 - left_shift) / multiplier`` quantized below one, and the same
``diff_min`` radius. Both backends run ``reference/log_softmax.py`` (row-wise NumPy).
"""

from __future__ import annotations

import numpy as np

from ..quantization import quantize_multiplier_smaller_than_one_exp
from ..reference import log_softmax as ref
from ..tflite.schema import BuiltinOperator, TensorType
from .base import OpContext, Prepared, register
from .elementwise import EIGHT_BIT, quantization_of
from .reduce import softmax_params


@register(BuiltinOperator.LOG_SOFTMAX)
def prepare_log_softmax(ctx: OpContext) -> Prepared:
    ctx.expect_io(1)
    x, o = ctx.inputs[0], ctx.outputs[0]
    if o.type != x.type:
        raise ctx.error(f"output type {o.type.name} differs from the input type {x.type.name}")
    if len(x.shape) < 1:
        raise ctx.error("input must have at least one dimension")
    shape = tuple(x.shape)
    if x.type == TensorType.FLOAT32:
        def run(inputs, outputs):
            outputs[0][...] = ref.log_softmax_float(inputs[0])
        return Prepared((shape,), run)
    if x.type not in EIGHT_BIT:
        raise ctx.error(f"{x.type.name} input is not supported (float32, uint8 and int8 are)")
    s_in, _ = quantization_of(ctx, x, "input 0")
    s_out, z_out = quantization_of(ctx, o, "output 0")
    want_zp = 255 if x.type == TensorType.UINT8 else 127
    if np.float32(s_out) != np.float32(16.0 / 256) or z_out != want_zp:
        raise ctx.error(f"quantized LOG_SOFTMAX needs output scale 16/256 and zero point {want_zp} "
                        f"(TFLite's requirement), not {s_out} and {z_out}")
    try:
        p = softmax_params(1.0, s_in)
        reverse = (1 << (31 - p.input_left_shift)) / float(p.input_multiplier)
        divisor, divisor_shift = quantize_multiplier_smaller_than_one_exp(reverse)
    except ValueError as exc:
        raise ctx.error(str(exc)) from None
    right_shift = -divisor_shift

    def run(inputs, outputs):
        outputs[0][...] = ref.log_softmax_quantized(inputs[0], p.input_multiplier, p.input_left_shift, divisor,
                                                    right_shift, p.diff_min, o.dtype)

    return Prepared((shape,), run)
