"""RELU, RELU6, RELU_N1_TO_1, LOGISTIC, TANH, HARD_SWISH, GELU: float32 and quantized uint8/int8.

Prepare follows ``kernels/activations.cc`` (its Prepare functions and the
reference kernel type's Eval): the quantized RELU family gets a requantizing
multiplier and a clamp range, LOGISTIC, TANH and GELU a 256-entry table, HARD_SWISH its
16-bit multipliers.

Backends: float TANH and GELU are NumPy in both; the numba backend runs RELU, RELU6,
RELU_N1_TO_1 and HARD_SWISH as one pass of ``kernels/elementwise.elementwise_float``
(NumPy takes two to five passes with temporaries) and LOGISTIC as two around NumPy's exp. Quantized, the numba backend tabulates the reference arithmetic on
all 256 inputs at plan time and gathers (``kernels/elementwise.lookup_unary``, or ``lookup_bytes``
64 values a step where the CPU has AVX-512 VBMI).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..quantization import quantize_multiplier, quantize_value
from ..reference import activation as ref
from ..tflite.options import GeluOptions
from ..tflite.schema import BuiltinOperator, TensorType
from .base import OpContext, Prepared, TensorSpec, register
from .elementwise import EIGHT_BIT, _view, image_rows, in_out_quantization, quantized_unary_run, unary_run

_FLOAT_FNS = {
    BuiltinOperator.RELU: ref.relu,
    BuiltinOperator.RELU6: ref.relu6,
    BuiltinOperator.RELU_N1_TO_1: ref.relu_n1_to_1,
    BuiltinOperator.LOGISTIC: ref.logistic,
    BuiltinOperator.TANH: ref.tanh,
    BuiltinOperator.HARD_SWISH: ref.hard_swish,
}

#: the real clamp range of each RELU variant (activations.cc QuantizedReluX arguments)
_RELU_RANGES = {
    BuiltinOperator.RELU: (0.0, float("inf")),
    BuiltinOperator.RELU6: (0.0, 6.0),
    BuiltinOperator.RELU_N1_TO_1: (-1.0, 1.0),
}


def _down_scale_to_int16(multiplier: int) -> int:
    """TFLite's ``DownScaleInt32ToInt16Multiplier``: round a Q31 multiplier to Q15, saturating."""
    if multiplier >= 2**31 - 1 - (1 << 15):
        return 2**15 - 1
    return (multiplier + (1 << 15)) >> 16


def _relu_spec(ctx: OpContext, s_in: float, z_in: int, s_out: float, z_out: int, dtype: np.dtype):
    # activations.cc divides the float scales in float32 before widening.
    lo, hi = _RELU_RANGES[ctx.opcode]
    info = np.iinfo(dtype)
    try:
        m, s = quantize_multiplier(float(np.float32(s_in) / np.float32(s_out)))
        act_min = max(int(info.min), quantize_value(lo, s_out, z_out))
        act_max = int(info.max) if hi == float("inf") else min(int(info.max), quantize_value(hi, s_out, z_out))
    except ValueError as exc:
        raise ctx.error(str(exc)) from None

    def spec(x: np.ndarray, out: np.ndarray) -> None:
        ref.relu_quantized(x, z_in, m, s, z_out, act_min, act_max, out)

    return spec


def _table_spec(ctx: OpContext, s_in: float, z_in: int, s_out: float, z_out: int, dtype: np.dtype):
    if ctx.opcode == BuiltinOperator.LOGISTIC:
        if np.float32(s_out) != np.float32(1.0 / 256):
            raise ctx.error(f"quantized LOGISTIC needs output scale 1/256 (TFLite's requirement), not {s_out}")
        fn = ref.logistic_float32
    elif ctx.opcode == BuiltinOperator.GELU:
        fn = ref.gelu_approximate_float32 if ctx.options_as(GeluOptions).approximate else ref.gelu_float32
    else:
        fn = ref.tanh_float32
    table = ref.lut_populate(fn, s_in, z_in, s_out, z_out, dtype)

    def spec(x: np.ndarray, out: np.ndarray) -> None:
        ref.lookup(table, x, out)

    return spec


def _hard_swish_spec(ctx: OpContext, s_in: float, z_in: int, s_out: float, z_out: int, dtype: np.dtype):
    # All in float32, as activations.cc HardSwishPrepare declares these scales float.
    hires_input_scale = np.float32(1.0 / 128.0) * np.float32(s_in)
    reluish_scale = np.float32(3.0) / np.float32(32768.0)
    try:
        out_m, out_exp = quantize_multiplier(float(hires_input_scale / np.float32(s_out)))
        rel_m, rel_exp = quantize_multiplier(float(hires_input_scale / reluish_scale))
    except ValueError as exc:
        raise ctx.error(str(exc)) from None
    if out_exp > 0:
        raise ctx.error(f"output scale {s_out} is too small for input scale {s_in} (output multiplier above 1)")
    if out_exp < -31:
        raise ctx.error(f"output scale {s_out} is too large for input scale {s_in}")
    params = ref.HardSwishParams(z_in, z_out, _down_scale_to_int16(rel_m), rel_exp,
                                 _down_scale_to_int16(out_m), out_exp)

    def spec(x: np.ndarray, out: np.ndarray) -> None:
        ref.hard_swish_quantized(x, params, out)

    return spec


def _quantized_spec(ctx: OpContext, x: TensorSpec, o: TensorSpec) -> Callable[[np.ndarray, np.ndarray], None]:
    """The reference function ``spec(x, out)`` of a quantized activation, constants bound."""
    s_in, z_in, s_out, z_out = in_out_quantization(ctx, x, o)
    if ctx.opcode in _RELU_RANGES:
        return _relu_spec(ctx, s_in, z_in, s_out, z_out, o.dtype)
    if ctx.opcode in (BuiltinOperator.LOGISTIC, BuiltinOperator.TANH, BuiltinOperator.GELU):
        return _table_spec(ctx, s_in, z_in, s_out, z_out, o.dtype)
    return _hard_swish_spec(ctx, s_in, z_in, s_out, z_out, o.dtype)


def _float_kernel_run(opcode: BuiltinOperator, shape: tuple[int, ...]):
    """The numba backend's ``run`` of a float RELU-family clamp or HARD_SWISH (one pass of the
    kernel), or LOGISTIC (two passes around NumPy's exp: the reference's bits, 240 -> 50 us on
    the selfie segmenter's 256x256 output, where NumPy alone takes ten passes). LOGISTIC's
    exponentials go to a buffer of their own: read from the output array it writes, the
    kernel's loop cannot be vectorized (97 -> 50 us there)."""
    from ..kernels import elementwise as kern
    from ..kernels.parallel import ELEMENT_WORK, in_parallel, numba_threads, recorded_call, replayable

    lo, hi = (np.float32(v) for v in _RELU_RANGES.get(opcode, (-np.inf, np.inf)))
    kernel, work, rows = in_parallel(kern.elementwise_float), math.prod(shape) * ELEMENT_WORK, image_rows(shape)
    if opcode == BuiltinOperator.LOGISTIC:
        exps = np.empty(rows, np.float32)
        second = in_parallel(kern.elementwise_float)  # (one per call: a launcher keeps its first arguments' types)

        @replayable
        def logistic(inputs, outputs):
            x, nt = inputs[0].reshape(rows), numba_threads(work)
            kernel(x, x, exps, kern.LOGISTIC_ARGUMENT, lo, hi, nt=nt)
            recorded_call(np.exp, exps, exps)
            second(x, exps, _view(outputs[0], rows), kern.LOGISTIC, lo, hi, nt=nt)

        return logistic

    op = kern.HARD_SWISH if opcode == BuiltinOperator.HARD_SWISH else kern.CLAMP

    @replayable
    def run(inputs, outputs):
        x = inputs[0].reshape(rows)
        kernel(x, x, _view(outputs[0], rows), op, lo, hi, nt=numba_threads(work))

    return run


@register(*_FLOAT_FNS)
def prepare_activation(ctx: OpContext) -> Prepared:
    """A standalone activation: output shape = input shape, same type."""
    x, o = ctx.same_type_io()
    shape = tuple(x.shape)
    if x.type == TensorType.FLOAT32:
        if ctx.backend == "numba" and ctx.opcode != BuiltinOperator.TANH:
            return Prepared((shape,), _float_kernel_run(ctx.opcode, shape))
        return Prepared((shape,), unary_run(_FLOAT_FNS[ctx.opcode]))
    if x.type not in EIGHT_BIT:
        raise ctx.error(f"{x.type.name} tensors are not supported (float32, uint8 and int8 are)")
    return Prepared((shape,), quantized_unary_run(ctx, _quantized_spec(ctx, x, o), x.dtype, o.dtype))


@register(BuiltinOperator.GELU)
def prepare_gelu(ctx: OpContext) -> Prepared:
    """GELU (``approximate``: its tanh form): output shape = input shape, same type."""
    x, o = ctx.same_type_io()
    shape = tuple(x.shape)
    if x.type == TensorType.FLOAT32:
        approximate = ctx.options_as(GeluOptions).approximate

        def run(inputs, outputs):
            ref.gelu(inputs[0], approximate, outputs[0])

        return Prepared((shape,), run)
    if x.type not in EIGHT_BIT:
        raise ctx.error(f"{x.type.name} tensors are not supported (float32, uint8 and int8 are)")
    return Prepared((shape,), quantized_unary_run(ctx, _quantized_spec(ctx, x, o), x.dtype, o.dtype))
