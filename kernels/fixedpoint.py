"""gemmlowp / TFLite fixed-point arithmetic as Numba scalar functions.

Call these from other ``@njit`` kernels (``from .fixedpoint import ...``). Arguments
are integers holding int32 values (int32 or int64 typed); arithmetic is done in
int64 and the result, an int32 value, is returned as int64. The NumPy twin with
the same names is ``pydeeplab.reference.fixedpoint``, which also documents why the
double-rounding ``MultiplyByQuantizedMultiplier`` is the one TFLite runs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1


@njit(cache=True)
def saturating_rounding_doubling_high_mul(a, b):
    """floor((a * b + 2**30) / 2**31): round(a * b / 2**31) with ties toward +infinity
    (gemmlowp's nudge-and-truncate, in one arithmetic shift); INT32_MIN * INT32_MIN
    saturates to INT32_MAX."""
    a64 = np.int64(a)
    b64 = np.int64(b)
    if a64 == b64 and a64 == _INT32_MIN:
        return np.int64(_INT32_MAX)
    return (a64 * b64 + (1 << 30)) >> 31


@njit(cache=True)
def rounding_divide_by_pot(x, exponent):
    """round(x / 2**exponent), ties away from zero, for exponent in 0..31."""
    x64 = np.int64(x)
    mask = (np.int64(1) << exponent) - 1
    remainder = x64 & mask
    threshold = (mask >> 1) + (1 if x64 < 0 else 0)
    return (x64 >> exponent) + (1 if remainder > threshold else 0)


@njit(cache=True)
def multiply_by_quantized_multiplier(x, multiplier, shift):
    """x * multiplier * 2**(shift - 31), TFLite's double-rounding MultiplyByQuantizedMultiplier.

    shift: -31..30, positive = left shift, applied to x first (wrapping as int32, as C
    does); the right shift ``-shift`` is a rounding division after the high multiply.
    """
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    scaled = np.int64(x) << left
    scaled = ((scaled - _INT32_MIN) & 0xFFFFFFFF) + _INT32_MIN
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scaled, multiplier), right)


@njit(cache=True)
def multiply_by_quantized_multiplier_smaller_than_one_exp(x, multiplier, shift):
    """TFLite's MultiplyByQuantizedMultiplierSmallerThanOneExp (ADD/SUB), shift <= 0:
    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), -shift)."""
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), -shift)
