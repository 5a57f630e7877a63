"""gemmlowp / TFLite fixed-point arithmetic on NumPy integer arrays: the readable spec.

The same functions as ``pydeeplab.kernels.fixedpoint`` (Numba, scalar), vectorized:
all arguments broadcast against each other (e.g. an [N, C] accumulator with a
per-channel [C] multiplier and shift). Every intermediate is int64, so nothing
overflows except where TFLite's own int32 arithmetic wraps, which is written out.
Results are int64 arrays holding int32 values.

TFLite is built with ``TFLITE_SINGLE_ROUNDING`` off by default (ai-edge-litert
included), so ``MultiplyByQuantizedMultiplier`` rounds twice: once in the
doubling high multiply and once in the power-of-two division. That is what we
implement; the single-rounding variant differs by one LSB on some inputs.
"""

from __future__ import annotations

import numpy as np

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1


def _i64(x: np.ndarray | int) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def round_half_away(x: np.ndarray) -> np.ndarray:
    """``std::round`` elementwise: nearest integer, ties away from zero, same dtype.

    TFLite rounds this way wherever it turns a float into an integer (quantizing,
    lookup tables, the fixed-point multiplier). ``x - trunc(x)`` is exact in binary
    floating point, so the tie test is exact (``floor(x + 0.5)`` is not: 0.49999997f
    + 0.5f rounds up to 1.0f).
    """
    t = np.trunc(x)
    return np.where(np.abs(x - t) >= 0.5, t + np.sign(x), t)


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Reduce int64 values modulo 2**32 into the int32 range (C's wrapping int32 arithmetic)."""
    return ((_i64(x) - _INT32_MIN) & 0xFFFFFFFF) + _INT32_MIN


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` of int32 values a, b.

    Returns floor((a * b + 2**30) / 2**31): a * b / 2**31 rounded to nearest with
    ties toward +infinity (gemmlowp adds a nudge of 2**30, or 1 - 2**30 for a negative
    product, then divides truncating toward zero; the two are the same integer, and
    so is ARM's VQRDMULH). The one product that does not fit, INT32_MIN * INT32_MIN
    (= 2**31 after the division), saturates to INT32_MAX.
    """
    a, b = _i64(a), _i64(b)
    high = (a * b + (1 << 30)) >> 31
    overflow = (a == b) & (a == _INT32_MIN)
    return np.where(overflow, _INT32_MAX, high)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT``: round(x / 2**exponent), ties away from zero.

    x: int32 values; exponent: 0..31. Floor-shift, then add one when the discarded
    remainder is at least half of 2**exponent (for negative x: more than half, so
    that a tie stays at the floor, which is away from zero).
    """
    x, exponent = _i64(x), _i64(exponent)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray, shift: np.ndarray | int) -> np.ndarray:
    """TFLite's ``MultiplyByQuantizedMultiplier`` (double rounding): x * multiplier * 2**(shift - 31).

    x: int32 values; multiplier: int32 in [0, 2**31); shift: -31..30, positive = left.
    ``x << max(shift, 0)`` (wrapping as int32, as in C), then
    :func:`saturating_rounding_doubling_high_mul` by the multiplier, then
    :func:`rounding_divide_by_pot` by ``max(-shift, 0)``.
    """
    shift = _i64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    scaled = wrap_int32(_i64(x) << left)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scaled, multiplier), right)


def multiply_by_quantized_multiplier_smaller_than_one_exp(
    x: np.ndarray, multiplier: np.ndarray, shift: np.ndarray | int
) -> np.ndarray:
    """TFLite's ``MultiplyByQuantizedMultiplierSmallerThanOneExp`` (used by ADD/SUB), shift <= 0.

    ``rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), -shift)``:
    the same numbers as :func:`multiply_by_quantized_multiplier` for shift <= 0.
    """
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), -_i64(shift))


__all__ = [
    "multiply_by_quantized_multiplier",
    "multiply_by_quantized_multiplier_smaller_than_one_exp",
    "rounding_divide_by_pot",
    "saturating_rounding_doubling_high_mul",
    "wrap_int32",
]
