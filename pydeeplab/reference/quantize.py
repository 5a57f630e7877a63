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

Hybrid operators (float32 activations, int8 weights: dynamic-range quantization) quantize their
float input at every run, with parameters taken from the values themselves
(``portable_tensor_utils.cc``, ``neon_tensor_utils.cc``): :func:`quantize_floats`.
"""

from __future__ import annotations

from typing import NamedTuple

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


#: Elements at a time of the vector loop of TFLite's hybrid input quantizers: these values are rounded
#: as :func:`_round_vectorized` does, the remaining ``size % 8`` with ``std::round``.
_VECTOR = 8


def _round_vectorized(values: np.ndarray) -> np.ndarray:
    """``RoundToNearest`` of ``neon_tensor_utils.cc`` as LiteRT's x86 build runs it (NEON through
    NEON_2_SSE, no ARMv8 rounding instruction): ``trunc(x + (x < 0 ? -0.5f : 0.5f))``, the sum in
    float32 (so 0.49999997f rounds to 1, where ``std::round`` gives 0)."""
    half = np.where(values < 0, np.float32(-0.5), np.float32(0.5)).astype(np.float32)
    return np.trunc(values + half)


def _hybrid_round(products: np.ndarray) -> np.ndarray:
    """The rounding of ``x * (1 / scale)`` in TFLite's hybrid quantizers: the first ``size - size % 8``
    values (in memory order) as the vector loop rounds them, the rest with ``std::round``."""
    flat = products.reshape(-1)
    cut = flat.size - flat.size % _VECTOR
    with np.errstate(invalid="ignore", over="ignore"):  # (NaN or infinite inputs: no TFLite value to match)
        rounded = np.concatenate([_round_vectorized(flat[:cut]), round_half_away(flat[cut:])])
    return np.nan_to_num(rounded).reshape(products.shape)


class HybridInput(NamedTuple):
    """How a hybrid operator quantizes its float input (``SymmetricQuantizeFloats`` or
    ``AsymmetricQuantizeFloats``): ``q = clamp(round(x * inverse) + zero_point, low, high)``, the real
    value of q being ``(q - zero_point) * factor``."""

    inverse: np.float32
    factor: np.float32
    zero_point: int
    low: int
    high: int


def hybrid_input(low: float, high: float, asymmetric: bool) -> HybridInput:
    """The quantization of values whose least and greatest are ``low`` and ``high``, as LiteRT's x86
    build computes it (``neon_tensor_utils.cc``'s version, through NEON_2_SSE).

    Symmetric: ``range = max(|low|, |high|)``, factor ``range / 127``, inverse ``127 / range``, all in
    float32; values in +-127. Asymmetric: the range ``[min(0, low), max(0, high)]``, its width taken in
    float32, over 255 steps in double; the zero point from whichever end gives the smaller error,
    rounded and kept in [-128, 127]; inverse ``float(1.0 / factor)``. Values all zero: factor 1, and
    an inverse of 0 gives the zeros TFLite writes. A NaN or an infinity among the values (where
    TFLite's arithmetic has no defined result) gives the same zeros.
    """
    low, high = min(np.float32(0), np.float32(low)), max(np.float32(0), np.float32(high))
    if not (np.isfinite(low) and np.isfinite(high)):
        return HybridInput(np.float32(0), np.float32(1), 0, -128 if asymmetric else -127, 127)
    if not asymmetric:
        largest = max(-low, high)
        if largest == 0:
            return HybridInput(np.float32(0), np.float32(1), 0, -127, 127)
        return HybridInput(np.float32(127) / largest, largest / np.float32(127), 0, -127, 127)
    if low == high:
        return HybridInput(np.float32(0), np.float32(1), 0, -128, 127)
    scale = float(np.float32(high - low)) / 255.0
    low_steps, high_steps = float(low) / scale, float(high) / scale
    zero_point = -128.0 - low_steps if 128.0 + abs(low_steps) < 127.0 + abs(high_steps) else 127.0 - high_steps
    nudged = -128 if zero_point <= -128 else 127 if zero_point >= 127 else int(round_half_away(np.float64(zero_point)))
    factor = np.float32(scale)
    return HybridInput(np.float32(1.0 / float(factor)), factor, nudged, -128, 127)


def quantize_floats(values: np.ndarray, asymmetric: bool) -> tuple[np.ndarray, HybridInput]:
    """(int8 values, their parameters): ``values`` (float32) quantized as a hybrid operator's input
    (:func:`hybrid_input` of their own least and greatest)."""
    values = np.asarray(values, dtype=np.float32)
    with np.errstate(invalid="ignore"):  # (NaN or infinite values: see hybrid_input)
        p = hybrid_input(values.min(initial=0), values.max(initial=0), asymmetric)
        quantized = _hybrid_round(values * p.inverse) + p.zero_point
    return np.clip(quantized, p.low, p.high).astype(np.int8), p


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
