"""EXP, RSQRT and CAST: the readable specification.

- EXP: float32 ``exp``; int8 through the 256-entry table TFLite's ``exp.cc`` fills
  with ``LUTPopulate`` (dequantize, ``std::exp`` on float, requantize).
- RSQRT: float32 ``1 / sqrt(x)``; int8 as ``elementwise.cc`` computes it per value:
  the fixed-point inverse square root of ``x - zero_point``
  (``GetInvSqrtQuantizedMultiplierExp``, a Newton-Raphson iteration in gemmlowp
  Q3.28), applied to 1 << 20 and rescaled by ``1 / (sqrt(s_in) * s_out)``.
- CAST: C++ ``static_cast`` between element types (float -> integer truncates toward
  zero; anything -> bool is ``!= 0``); quantization parameters are ignored.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .activation import _expf, lut_populate
from .fixedpoint import multiply_by_quantized_multiplier, rounding_divide_by_pot
from .fixedpoint import saturating_rounding_doubling_high_mul as srdhm

_INT32_MAX = 2**31 - 1


def exp(x: np.ndarray, out: np.ndarray) -> None:
    """Float EXP: out = exp(x), float32, any shape."""
    np.exp(x, out=out)


def exp_table(input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int,
              dtype: np.dtype) -> np.ndarray:
    """The [256] EXP table of an 8-bit input (``LUTPopulate`` with ``std::exp`` on float)."""
    return lut_populate(_expf, input_scale, input_zero_point, output_scale, output_zero_point, dtype)


def rsqrt(x: np.ndarray, out: np.ndarray) -> None:
    """Float RSQRT: out = 1 / sqrt(x) in float32 (inf at 0, NaN below)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(np.float32(1), np.sqrt(x), out=out)


def _saturating_shift_left(x: int, exponent: int) -> int:
    """gemmlowp SaturatingRoundingMultiplyByPOT for exponent > 0 on one int32."""
    return max(-(2**31), min(_INT32_MAX, x << exponent))


def _clz32(x: int) -> int:
    return 32 - int(x).bit_length() if x > 0 else (32 if x == 0 else 0)


@lru_cache(maxsize=1024)
def inv_sqrt_multiplier(value: int) -> tuple[int, int]:
    """TFLite's ``GetInvSqrtQuantizedMultiplierExp(value, kReverseShift = -1)``: 1/sqrt(value).

    For an int32 value >= 0 returns (multiplier, shift) with
    ``1/sqrt(value) ~= multiplier * 2**(shift - 31)`` (positive shift = left); values 0
    and 1 give (INT32_MAX, 0). The value is brought into [2**27, 2**29) by shifting pairs
    of bits, then five Newton-Raphson steps x <- 1.5 x - (v/2) x^3 run in Q3.28, and the
    result is multiplied by sqrt(2)/2.
    """
    if value <= 1:
        return _INT32_MAX, 0
    shift = 11
    while value >= (1 << 29):
        value //= 4
        shift += 1
    pairs = (_clz32(value) - 1) // 2 - 1
    shift -= pairs
    value <<= 2 * pairs
    half_input = int(rounding_divide_by_pot(np.int64(value >> 1), 1))
    half_three = (1 << 28) + (1 << 27)  # 1.5 in Q3.28
    x = 1 << 28  # 1.0 in Q3.28
    for _ in range(5):
        x3 = _saturating_shift_left(int(srdhm(int(srdhm(x, x)), x)), 6)  # Q9 -> Q3
        diff = int(srdhm(half_three, x)) - int(srdhm(half_input, x3))  # both Q6
        x = _saturating_shift_left(diff, 3)  # Q6 -> Q3
    x = int(srdhm(x, 1518500250))  # times sqrt(2)/2 (Q0.31)
    if shift < 0:
        x = ((x << -shift) + 2**31) % 2**32 - 2**31  # int32 shift, wrapping as C does
        shift = 0
    return x, -shift


def rsqrt_quantized_value(q: int, input_zero_point: int, multiplier: int, shift: int,
                          output_zero_point: int, qmin: int, qmax: int) -> int:
    """Quantized RSQRT of one input value q >= input_zero_point (``RsqrtEvalQuantizedInt8``)."""
    value = q - input_zero_point
    if value == 0:
        return qmax  # "any value close to 0 represents the max output value"
    k_shift = 20  # keeps 1/sqrt(value) an integer
    inv, inv_shift = inv_sqrt_multiplier(value)
    data = int(multiply_by_quantized_multiplier(1, inv, inv_shift + k_shift))
    output = int(multiply_by_quantized_multiplier(data, multiplier, shift - k_shift)) + output_zero_point
    return min(max(output, qmin), qmax)


def rsqrt_table(input_zero_point: int, multiplier: int, shift: int, output_zero_point: int,
                dtype: np.dtype) -> np.ndarray:
    """The [256] table of quantized RSQRT (entries below the zero point are 0: TFLite refuses them)."""
    dtype = np.dtype(dtype)
    info = np.iinfo(dtype)
    values = np.arange(256, dtype=np.uint8).view(dtype).astype(np.int64)
    table = [rsqrt_quantized_value(int(q), input_zero_point, multiplier, shift, output_zero_point,
                                   int(info.min), int(info.max)) if q >= input_zero_point else 0
             for q in values]
    return np.array(table, dtype=np.int64).astype(dtype)


def cast(x: np.ndarray, out: np.ndarray) -> None:
    """CAST: ``static_cast`` of every element to out's dtype (bool: ``!= 0``)."""
    if out.dtype == np.bool_:
        np.not_equal(x, 0, out=out)
    elif x.dtype == np.bool_:
        out[...] = x.astype(np.uint8).astype(out.dtype)
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            out[...] = x.astype(out.dtype, casting="unsafe")


__all__ = ["cast", "exp", "exp_table", "inv_sqrt_multiplier", "rsqrt", "rsqrt_quantized_value", "rsqrt_table"]
