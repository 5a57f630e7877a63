"""QUANTIZE (float -> integer, and integer -> integer requantization) and DEQUANTIZE.

Prepare follows ``kernels/quantize.cc`` and ``dequantize.cc``: the requantizing
multiplier is ``QuantizeMultiplier(double(s_in) / double(s_out))``; DEQUANTIZE of a
constant (float16 or 8-bit weights) is computed once here and copied at run time.

Backends: NumPy in both, except that the numba backend evaluates 8-bit-input
conversions through a 256-entry table of the reference results and per-tensor
float -> integer QUANTIZE with one kernel (``kernels/quantize.py``).
"""

from __future__ import annotations

import numpy as np

from ..quantization import quantize_multiplier
from ..reference import quantize as ref
from ..tflite.schema import BuiltinOperator, TensorType
from .base import OpContext, Prepared, TensorSpec, register
from .elementwise import EIGHT_BIT, _view, in_out_quantization, quantization_of, unary_lookup_run, unary_table

_INTEGER_OUT = (TensorType.UINT8, TensorType.INT8, TensorType.INT16)

#: requantization pairs kernels/quantize.cc accepts (input type -> output types)
_REQUANTIZE = {
    TensorType.UINT8: (TensorType.UINT8, TensorType.INT8, TensorType.INT16),
    TensorType.INT8: (TensorType.UINT8, TensorType.INT8, TensorType.INT16),
    TensorType.INT16: (TensorType.INT8, TensorType.INT16, TensorType.INT32),
    TensorType.INT32: (TensorType.INT8, TensorType.INT16),
}


def _channel_params(t: TensorSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel scales (float32) and zero points (int64) shaped to broadcast along
    the quantized dimension of a tensor of t's rank."""
    q = t.quantization
    shape = [1] * len(t.shape)
    shape[q.quantized_dimension] = -1
    zero_points = q.zero_points if q.zero_points.size == q.scales.size else np.repeat(q.zero_points[:1],
                                                                                       q.scales.size)
    return q.scales.astype(np.float32).reshape(shape), zero_points.astype(np.int64).reshape(shape)


def _check_channels(ctx: OpContext, t: TensorSpec, what: str) -> None:
    q = t.quantization
    if not 0 <= q.quantized_dimension < len(t.shape) or t.shape[q.quantized_dimension] != q.scales.size:
        raise ctx.error(f"{what} has {q.scales.size} scales along dimension {q.quantized_dimension} "
                        f"of shape {t.shape}")


def _quantize_kernel_run(scale: np.float32, zero_point: int, dtype: np.dtype):
    """run() of a per-tensor float32 -> integer QUANTIZE on the Numba kernel (one pass instead of
    the reference's temporaries: 6 ms -> 0.3 ms on a 257x257 RGB input)."""
    from ..kernels.quantize import quantize_per_tensor

    info = np.iinfo(dtype)
    zp, qmin, qmax = np.int64(zero_point), np.int64(info.min), np.int64(info.max)

    def run(inputs, outputs):
        quantize_per_tensor(inputs[0].reshape(-1), scale, zp, qmin, qmax, _view(outputs[0], -1))

    return run


@register(BuiltinOperator.QUANTIZE)
def prepare_quantize(ctx: OpContext) -> Prepared:
    """Float32 -> uint8/int8/int16 (per tensor or per channel), or integer -> integer."""
    ctx.expect_io(1)
    x, o = ctx.inputs[0], ctx.outputs[0]
    shape = tuple(x.shape)
    if not o.is_quantized:
        raise ctx.error("the output has no quantization parameters")
    if x.type == TensorType.FLOAT32:
        if o.type not in _INTEGER_OUT:
            raise ctx.error(f"cannot quantize float32 to {o.type.name} (uint8, int8, int16 supported)")
        if o.quantization.per_channel:
            _check_channels(ctx, o, "the output")
            scale, zero_point = _channel_params(o)
        else:
            scale, zero_point = quantization_of(ctx, o, "output 0")
            scale = np.float32(scale)
            if ctx.backend == "numba":
                return Prepared((shape,), _quantize_kernel_run(scale, zero_point, o.dtype))

        def run(inputs, outputs):
            ref.quantize(inputs[0], scale, zero_point, outputs[0])

        return Prepared((shape,), run)

    if o.type not in _REQUANTIZE.get(x.type, ()):
        raise ctx.error(f"cannot requantize {x.type.name} to {o.type.name}")
    s_in, z_in, s_out, z_out = in_out_quantization(ctx, x, o)
    if x.type == o.type == TensorType.INT16 and (z_in != 0 or z_out != 0):
        raise ctx.error("int16 -> int16 requantization needs zero points 0")
    try:
        m, s = quantize_multiplier(float(np.float64(s_in) / np.float64(s_out)))
    except ValueError as exc:
        raise ctx.error(str(exc)) from None

    def spec(v: np.ndarray, out: np.ndarray) -> None:
        ref.requantize(v, z_in, m, s, z_out, out)

    if ctx.backend == "numba" and x.type in EIGHT_BIT:
        return Prepared((shape,), unary_lookup_run(unary_table(spec, x.dtype, o.dtype)))

    def run(inputs, outputs):
        spec(inputs[0], outputs[0])

    return Prepared((shape,), run)


@register(BuiltinOperator.DEQUANTIZE)
def prepare_dequantize(ctx: OpContext) -> Prepared:
    """uint8/int8/int16 (per tensor; uint8/int8 also per channel) or float16 -> float32."""
    ctx.expect_io(1)
    x, o = ctx.inputs[0], ctx.outputs[0]
    shape = tuple(x.shape)
    if o.type != TensorType.FLOAT32:
        raise ctx.error(f"the output must be float32, not {o.type.name}")
    if x.type == TensorType.FLOAT16:
        spec = ref.dequantize_float16
    elif x.type in (*EIGHT_BIT, TensorType.INT16):
        if x.quantization is not None and x.quantization.per_channel:
            if x.type == TensorType.INT16:
                raise ctx.error("per-channel dequantization of int16 is not supported (TFLite neither)")
            _check_channels(ctx, x, "the input")
            scales, zero_points = _channel_params(x)

            def spec(v: np.ndarray, out: np.ndarray) -> None:
                ref.dequantize_per_channel(v, scales, zero_points, out)
        else:
            scale, zero_point = quantization_of(ctx, x, "input 0")
            if x.type == TensorType.INT16 and zero_point != 0:
                raise ctx.error(f"int16 input needs zero point 0, has {zero_point}")

            def spec(v: np.ndarray, out: np.ndarray) -> None:
                ref.dequantize(v, scale, zero_point, out)
    else:
        raise ctx.error(f"cannot dequantize {x.type.name} (uint8, int8, int16, float16 supported)")

    if x.data is not None:  # constant weights: dequantize once
        value = np.empty(shape, dtype=np.float32)
        spec(x.data, value)
        value.flags.writeable = False

        def run_constant(inputs, outputs):
            outputs[0][...] = value

        return Prepared((shape,), run_constant)
    if ctx.backend == "numba" and x.type in EIGHT_BIT and not x.quantization.per_channel:
        from ..kernels.quantize import dequantize_8bit

        zp32, scale32 = np.int32(zero_point), np.float32(scale)
        if np.float64(scale32) == np.float64(scale):  # a float32 scale, as the flatbuffer stores it

            def run_8bit(inputs, outputs):
                dequantize_8bit(inputs[0].reshape(-1), zp32, scale32, _view(outputs[0], -1))

            return Prepared((shape,), run_8bit)
        return Prepared((shape,), unary_lookup_run(unary_table(spec, x.dtype, np.float32)))

    def run(inputs, outputs):
        spec(inputs[0], outputs[0])

    return Prepared((shape,), run)
