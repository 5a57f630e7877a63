"""QUANTIZE and DEQUANTIZE: the readable specification.

Following ``kernels/quantize.cc``, ``dequantize.cc`` and the reference kernels they
call (``reference/quantize.h``, ``requantize.h``, ``dequantize.h``,
``integer_ops/dequantize.h``):

* float -> integer: ``clamp(round(x / scale) + zero_point)``, the division in float32,
  ``std::round`` (ties away from zero);
* integer -> integer (requantize): ``clamp(MultiplyByQuantizedMultiplier(x - zp_in) + zp_out)``
  with the multiplier of s_in / s_out;
* integer -> float: ``float(double(scale) * (x - zero_point))`` per tensor, but
  ``float(scale[c] * (x - zero_point[c]))`` in float32 per channel;
* float16 -> float32: exact widening.
"""

from __future__ import annotations

import numpy as np

from .fixedpoint import multiply_by_quantized_multiplier, round_half_away, wrap_int32

_INT32_MIN = -(2**31)


def quantize(x: np.ndarray, scale: np.ndarray | float, zero_point: np.ndarray | int, out: np.ndarray) -> None:
    """Float32 -> uint8 / int8 / int16 (``AffineQuantize``, ``PerChannelQuantize``).

    x: float32, any shape; scale (float32) and zero_point broadcast against x (scalars
    per tensor, or shaped [..., C, ...] along the quantized dimension); out: x's shape.
    A quotient outside the int32 range (or NaN) converts to INT32_MIN, as the x86
    conversion instruction TFLite's ``static_cast<int32_t>`` compiles to does.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        rounded = round_half_away(x / np.asarray(scale, dtype=np.float32))
        in_range = (rounded >= np.float32(_INT32_MIN)) & (rounded < np.float32(2**31))
    as_int = np.where(in_range, rounded, _INT32_MIN).astype(np.int64)
    info = np.iinfo(out.dtype)
    out[...] = np.clip(wrap_int32(as_int + np.asarray(zero_point, dtype=np.int64)), info.min, info.max)


def requantize(x: np.ndarray, input_zero_point: int, multiplier: int, shift: int, output_zero_point: int,
               out: np.ndarray) -> None:
    """Integer -> integer rescaling (``Requantize``): int8/uint8/int16/int32 in, int8/uint8/int16/int32 out.

    (multiplier, shift) quantize s_in / s_out (TFLite's convention, positive shift = left).
    """
    value = multiply_by_quantized_multiplier(x.astype(np.int64) - input_zero_point, multiplier, shift)
    info = np.iinfo(out.dtype)
    out[...] = np.clip(value + output_zero_point, info.min, info.max)


def dequantize(x: np.ndarray, scale: float, zero_point: int, out: np.ndarray) -> None:
    """Per-tensor integer -> float32: the product taken in double, then rounded to float."""
    out[...] = (np.float64(scale) * (x.astype(np.int64) - zero_point)).astype(np.float32)


def dequantize_per_channel(x: np.ndarray, scales: np.ndarray, zero_points: np.ndarray, out: np.ndarray) -> None:
    """Per-channel integer -> float32, in float32 arithmetic (``PerChannelDequantize``).

    scales (float32) and zero_points are shaped to broadcast along the quantized dimension.
    """
    out[...] = np.asarray(scales, dtype=np.float32) * (x.astype(np.int64) - zero_points).astype(np.float32)


def dequantize_float16(x: np.ndarray, out: np.ndarray) -> None:
    """float16 -> float32 (float16 constant weights): exact."""
    out[...] = x.astype(np.float32)
