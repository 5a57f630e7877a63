"""Plan-time integer arithmetic of TFLite's quantized operators.

These functions turn float scales into the integer constants the kernels use,
exactly as TFLite's Prepare functions do (``kernels/internal/quantization_util.cc``
and ``kernels/kernel_util.cc``). Exactness matters: a multiplier that differs in
its last bit changes outputs by one LSB, so every product and quotient below is
done in the precision TFLite uses (float32 where TFLite multiplies two ``float``
scales, double elsewhere) and every rounding is ``std::round`` (half away from zero).

Sign convention (TFLite's): a real multiplier ``m`` is represented as
``multiplier * 2**(shift - 31)`` with ``multiplier`` an int32 in [2**30, 2**31)
(or 0), and a positive ``shift`` means a left shift.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .reference.fixedpoint import round_half_away

from .tflite.schema import Activation

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1


def quantize_multipliers(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TFLite's ``QuantizeMultiplier`` elementwise (the per-channel form).

    reals: float64 array (any shape) of real multipliers. Returns (multiplier, shift),
    two int32 arrays of the same shape, with ``real ~= multiplier * 2**(shift - 31)``:
    ``frexp(real) = (q, shift)``, q in [0.5, 1), ``multiplier = round(q * 2**31)``
    (ties away from zero); a q that rounds up to 2**31 becomes 2**30 with shift + 1;
    0 gives (0, 0); a shift below -31 (|real| < ~2**-32) flushes to (0, 0).
    Raises ValueError for a NaN or infinite multiplier, and for one that needs a left shift past
    31 bits (|real| >= 2**31): TFLite's results are undefined there (its int32 shift, in C++).
    """
    reals = np.asarray(reals, dtype=np.float64)
    if not np.all(np.isfinite(reals)):
        raise ValueError(f"cannot quantize a non-finite multiplier: {reals[~np.isfinite(reals)]}")
    q, shift = np.frexp(reals)  # frexp(0) = (0, 0), as TFLite's explicit zero case
    q_fixed = round_half_away(q * 2.0**31).astype(np.int64)
    shift = shift.astype(np.int64)
    at_top = q_fixed == 2**31
    q_fixed = np.where(at_top, 2**30, q_fixed)
    shift = np.where(at_top, shift + 1, shift)
    flushed = shift < -31
    q_fixed = np.where(flushed, 0, q_fixed)
    shift = np.where(flushed, 0, shift)
    if np.any(shift > 31):
        big = reals[shift > 31].reshape(-1)[0]
        raise ValueError(f"multiplier {big:g} needs a left shift of {int(shift.max())} bits; TFLite shifts an int32, "
                         "undefined past 31 (a scale far too small or too large)")
    return q_fixed.astype(np.int32), shift.astype(np.int32)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier`` for one real multiplier (double).

    Returns (multiplier, shift) as Python ints: ``real ~= multiplier * 2**(shift - 31)``,
    multiplier in [2**30, 2**31) for a positive real, 0 for 0; positive shift = left
    shift. See :func:`quantize_multipliers` for the rounding rules.
    """
    m, s = quantize_multipliers(np.array([real], dtype=np.float64))
    return int(m[0]), int(s[0])


def quantize_multiplier_smaller_than_one_exp(real: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplierSmallerThanOneExp``: QuantizeMultiplier for 0 < real < 1.

    Returns (multiplier, shift) with shift <= 0 (TFLite calls it ``left_shift``; it is
    used as a right shift by ``-shift``). Raises ValueError outside (0, 1) or when
    the real rounds up to 1, where TFLite aborts with a failed check.
    """
    if not 0.0 < real < 1.0:
        raise ValueError(f"multiplier {real!r} is not in (0, 1)")
    multiplier, shift = quantize_multiplier(real)
    if shift > 0:  # real within 2**-32 of 1 rounds up to 1.0
        raise ValueError(f"multiplier {real!r} rounds to 1, not below it")
    return multiplier, shift


def conv_output_multipliers(
    input_scale: float, filter_scales: np.ndarray, output_scale: float, input_dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """Output multipliers and shifts of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED.

    input_scale, output_scale: the tensors' float32 scales; filter_scales: float32
    array, one scale (per-tensor) or one per output channel. Returns (multiplier,
    shift) int32 arrays of filter_scales' length, shift in TFLite's convention
    (positive = left), ready for ``multiply_by_quantized_multiplier``.

    TFLite (``PopulateConvolutionQuantizationParams``) computes the real multiplier
    two ways, and the kernel used depends on the input type:

    * int8/int16 (per-channel kernels): ``double(s_in) * double(s_w[c]) / double(s_out)``.
    * uint8 (per-tensor kernel, ``GetQuantizedConvolutionMultipler``): the scale
      product is taken in **float32** first, ``double(float(s_in * s_w)) / double(s_out)``.
      The float32 product loses bits, so the two results can differ by many units
      in the multiplier's last places: uint8 must use this one.
    """
    s_in = np.float32(input_scale)
    s_out = np.float32(output_scale)
    s_w = np.atleast_1d(np.asarray(filter_scales, dtype=np.float32))
    if np.dtype(input_dtype) == np.uint8:
        if s_w.size != 1:
            raise ValueError(f"uint8 convolution needs one filter scale, got {s_w.size}")
        reals = (s_in * s_w).astype(np.float64) / np.float64(s_out)
    else:
        reals = np.float64(s_in) * s_w.astype(np.float64) / np.float64(s_out)
    return quantize_multipliers(reals)


class AddParams(NamedTuple):
    """Integer constants of quantized ADD/SUB (8-bit general path).

    Each (multiplier, shift) pair has shift <= 0. Inputs are offset by their zero
    points, shifted left by ``left_shift``, rescaled to a common scale, summed, and
    the sum rescaled by the output pair.
    """

    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int


def add_params(input1_scale: float, input2_scale: float, output_scale: float, left_shift: int = 20) -> AddParams:
    """The rescaling constants of 8-bit ADD (``add.cc`` Prepare), left_shift 20 for 8 bits.

    ``twice_max = 2 * max(s1, s2)`` (float32, exact); input multipliers
    ``s_i / twice_max`` and output multiplier ``twice_max / (2**left_shift * s_out)``,
    each quantized with :func:`quantize_multiplier_smaller_than_one_exp` (so a
    ValueError if the output multiplier is not below 1, where TFLite's check fails).
    """
    s1, s2, so = np.float32(input1_scale), np.float32(input2_scale), np.float32(output_scale)
    twice_max = np.float64(np.float32(2) * max(s1, s2))
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(float(np.float64(s1) / twice_max))
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(float(np.float64(s2) / twice_max))
    out_real = twice_max / np.float64(np.float32(1 << left_shift) * so)
    mo, sho = quantize_multiplier_smaller_than_one_exp(float(out_real))
    return AddParams(left_shift, m1, sh1, m2, sh2, mo, sho)


def activation_range_float(act: Activation) -> tuple[float, float]:
    """TFLite's ``CalculateActivationRange<float>``: the clamp bounds of a fused activation.

    NONE (and TANH / SIGN_BIT, which TFLite treats the same here) gives the float32
    limits, not infinities: TFLite clamps an infinite result to +-FLT_MAX.
    """
    f32 = np.finfo(np.float32)
    if act == Activation.RELU:
        return 0.0, float(f32.max)
    if act == Activation.RELU6:
        return 0.0, 6.0
    if act == Activation.RELU_N1_TO_1:
        return -1.0, 1.0
    return float(f32.min), float(f32.max)


def quantize_value(f: float, scale: float, zero_point: int) -> int:
    """TFLite's activation-range ``Quantize``: ``zero_point + round(f / scale)``.

    The division is float32 / float32 and the rounding ``std::round`` on that float32,
    as in kernel_util.cc. Not clamped. Raises ValueError if the rounded quotient is
    outside the int32 range (TFLite fails the same check).
    """
    q = round_half_away(np.float32(f) / np.float32(scale))
    if not _INT32_MIN <= float(q) <= _INT32_MAX:
        raise ValueError(f"quantizing {f} with scale {scale} overflows int32")
    return int(zero_point) + int(q)


def activation_range_quantized(
    act: Activation, scale: float, zero_point: int, dtype: np.dtype
) -> tuple[int, int]:
    """TFLite's ``CalculateActivationRangeQuantized``: (act_min, act_max) in output units.

    dtype: the output's integer dtype (uint8, int8 or int16) giving [qmin, qmax].
    RELU: [max(qmin, Q(0)), qmax]; RELU6: [max(qmin, Q(0)), min(qmax, Q(6))];
    RELU_N1_TO_1: [max(qmin, Q(-1)), min(qmax, Q(1))]; anything else [qmin, qmax];
    Q is :func:`quantize_value` with the output's scale and zero point.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.int16)):
        raise ValueError(f"no quantized activation range for dtype {dtype}")
    qmin, qmax = int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)

    def q(f: float) -> int:
        return quantize_value(f, scale, zero_point)

    if act == Activation.RELU:
        return max(qmin, q(0.0)), qmax
    if act == Activation.RELU6:
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    if act == Activation.RELU_N1_TO_1:
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    return qmin, qmax


__all__ = [
    "AddParams",
    "activation_range_float",
    "activation_range_quantized",
    "add_params",
    "conv_output_multipliers",
    "quantize_multiplier",
    "quantize_multiplier_smaller_than_one_exp",
    "quantize_multipliers",
    "quantize_value",
]
