"""EXP, RSQRT and CAST: the readable specification.

- EXP: float32 ``exp``; int8 through the 256-entry table TFLite's ``exp.cc`` fills
  with ``LUTPopulate`` (dequantize, ``std::exp`` on float, requantize).
- RSQRT: float32 ``1 / sqrt(x)``; int8 as ``elementwise.cc`` computes it per value:
  the fixed-point inverse square root of ``x - zero_point``
  (``GetInvSqrtQuantizedMultiplierExp``, a Newton-Raphson iteration in gemmlowp
  Q3.28), applied to 1 << 20 and rescaled by ``1 / (sqrt(s_in) * s_out)``.
- CAST: C++ ``static_cast`` between element types (float -> integer truncates toward
  zero; anything -> bool is ``!= 0``); quantization parameters are ignored.
- ABS, NEG, SQRT, SQUARE, LOG, SIN, COS, FLOOR, SIGN, LOGICAL_NOT (``elementwise.cc``,
  ``neg.cc``, ``floor.cc``, ``sign.cc``): the float32 function; ABS of quantized int8 / int16 as
  ``|q - zp_in|`` rescaled by the fixed-point ``s_in / s_out`` (none when the scales are equal),
  plus ``zp_out``, clamped; NEG of integers the raw values negated (wrapping, parameters
  ignored); int8 LOG through the ``LUTPopulate`` table of ``std::log`` on float (the lowest
  output value for inputs <= 0).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .activation import _expf, _libm_float_function, lut_populate
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


# ------------------------------------------------ ABS, NEG, SQRT, SQUARE, LOG, SIN, COS, FLOOR, SIGN


def square(x: np.ndarray, out: np.ndarray) -> None:
    """SQUARE: ``x * x`` in float32 (inf past 1.8e19, as in C)."""
    with np.errstate(over="ignore"):
        np.multiply(x, x, out=out)


def sign(x: np.ndarray, out: np.ndarray) -> None:
    """SIGN (float32, int32): -1, 0 or 1 (NaN stays NaN)."""
    np.sign(x, out=out)


def negate(x: np.ndarray, out: np.ndarray) -> None:
    """NEG: ``-x``; integers wrap (the lowest value stays itself), as C's conversion back does."""
    np.negative(x, out=out)


def absolute(x: np.ndarray, out: np.ndarray) -> None:
    """ABS of int32 or unquantized int16: ``|x|``, the lowest value staying itself (C's abs, then the
    conversion back)."""
    np.abs(x, out=out)


def logical_not(x: np.ndarray, out: np.ndarray) -> None:
    """LOGICAL_NOT of bool."""
    np.logical_not(x, out=out)


def abs_quantized(x: np.ndarray, input_zero_point: int, multiplier: int | None, shift: int,
                  output_zero_point: int, out: np.ndarray) -> None:
    """Quantized ABS: ``|q - zp_in|``, times the fixed-point ``s_in / s_out`` unless ``multiplier`` is
    None (equal scales), plus ``zp_out``, clamped to the output type."""
    v = np.abs(x.astype(np.int64) - input_zero_point)
    if multiplier is not None:
        v = multiply_by_quantized_multiplier(v, multiplier, shift)
    info = np.iinfo(out.dtype)
    out[...] = np.clip(v + output_zero_point, info.min, info.max)


_logf = _libm_float_function("logf", lambda v: np.log(v.astype(np.float32)))


def log_table(input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int,
              dtype: np.dtype) -> np.ndarray:
    """The [256] LOG table of an int8 input: ``std::log`` on float, the lowest output value's real
    number for inputs <= 0 (``elementwise.cc`` LogLUTPrepare)."""
    lowest = np.float32((int(np.iinfo(dtype).min) - output_zero_point) * np.float32(output_scale))

    def transform(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, np.float32)
        return np.where(v <= 0, lowest, _logf(np.where(v <= 0, np.float32(1), v)))

    return lut_populate(transform, input_scale, input_zero_point, output_scale, output_zero_point, dtype)
