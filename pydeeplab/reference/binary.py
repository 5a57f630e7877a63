"""MAXIMUM, MINIMUM, DIV, SQUARED_DIFFERENCE with NumPy broadcasting: the readable specification.

- MAXIMUM / MINIMUM compare raw values (``a > b ? a : b``, ``a < b ? a : b``), for
  quantized tensors too: TFLite does not rescale them.
- DIV: float32 ``clamp(a / b)``; int32 C division (toward zero); 8-bit as
  ``reference/div.h``: the divisor's reciprocal in fixed point (``GetReciprocal``), the
  dividend normalised by its leading sign bits, one multiply and one rescale by
  ``s1 / (s2 * s_out)``.
- SQUARED_DIFFERENCE: float32 / int32 ``(a - b)^2``; int8 as
  ``squared_difference.cc``: both inputs on a common scale with 7 bits of headroom,
  the difference squared in int32 and rescaled once.

Integer intermediates are int64 arrays holding TFLite's int32 values.
"""

from __future__ import annotations


import numpy as np

from .elementwise import ArithmeticParams, MulParams, on_common_scale, rescale_to_output
from .fixedpoint import wrap_int32
from .fixedpoint import saturating_rounding_doubling_high_mul as srdhm
from .reduce import get_reciprocal


def maximum(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out = a > b ? a : b, broadcast (a NaN in a gives b)."""
    out[...] = np.where(a > b, a, b)


def minimum(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out = a < b ? a : b, broadcast."""
    out[...] = np.where(a < b, a, b)


def div(a: np.ndarray, b: np.ndarray, act_min: float, act_max: float, out: np.ndarray) -> None:
    """Float DIV: out = clamp(a / b), float32 (x/0 is +-inf or NaN as IEEE says)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        np.clip(np.divide(a, b), act_min, act_max, out=out)


def div_int32(a: np.ndarray, b: np.ndarray, act_min: int, act_max: int, out: np.ndarray) -> None:
    """int32 DIV: C's truncating division (b must have no zeros), clamped."""
    a64, b64 = a.astype(np.int64), b.astype(np.int64)
    q = np.abs(a64) // np.abs(b64) * np.sign(a64) * np.sign(b64)
    out[...] = np.clip(q, act_min, act_max)


def count_leading_sign_bits(x: np.ndarray) -> np.ndarray:
    """``CountLeadingSignBits`` of int32 values: redundant sign bits (31 for 0 and -1)."""
    x = np.asarray(x, dtype=np.int64)
    magnitude = np.where(x < 0, ~x, x)  # x >= 0: clz(x) - 1; x < 0: clz(~x) - 1
    return 32 - np.frexp(magnitude.astype(np.float64))[1] - 1


def rounding_divide_by_pot_x86(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT`` as LiteRT's x86 build computes it for any exponent >= 0.

    Quantized DIV can ask for a right shift of more than 31 bits (a tiny quotient of a
    dividend with much headroom: ``output_shift - recip_shift - headroom`` below -31).
    That is undefined in C++; compiled for x86 the int32 shift count is taken modulo 32
    and the mask ``(1ll << exponent) - 1`` truncated to int32 (all ones), so such
    results come out huge and saturate. For exponents 0..31 this is
    :func:`rounding_divide_by_pot`.
    """
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = wrap_int32((np.int64(1) << np.minimum(exponent, 62)) - 1)
    threshold = (mask >> 1) + (x < 0)
    return wrap_int32((x >> (exponent & 31)) + ((x & mask) > threshold))


def div_quantized(a: np.ndarray, b: np.ndarray, p: MulParams, out: np.ndarray) -> None:
    """Quantized DIV (uint8 / int8), broadcast. Callers make sure no ``b`` equals its zero point.

    The signs are moved to the dividend so the divisor is positive; 1/divisor is
    ``inv * 2**-recip_shift`` with inv in Q0.31; the dividend is shifted left by its
    headroom and multiplied by inv; the output rescale absorbs both shifts.
    """
    v1 = a.astype(np.int64) + p.input1_offset
    v2 = b.astype(np.int64) + p.input2_offset
    v1 = np.where(v2 < 0, -v1, v1)
    v2 = np.abs(v2)
    v2 = np.where(v2 == 0, 1, v2)  # never used: the run refuses a zero divisor first
    inv, recip_shift = get_reciprocal(v2, 31)
    headroom = count_leading_sign_bits(v1)
    unscaled = srdhm(v1 << headroom, inv)
    total_shift = p.output_shift - recip_shift - headroom
    result = rounding_divide_by_pot_x86(srdhm(unscaled, p.output_multiplier), -total_shift) + p.output_offset
    out[...] = np.clip(result, p.act_min, p.act_max)


def squared_difference(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """Float32 / int32 SQUARED_DIFFERENCE: out = (a - b) * (a - b), broadcast (int32 wraps)."""
    d = np.subtract(a, b, dtype=out.dtype)
    np.multiply(d, d, out=out)


def squared_difference_quantized(a: np.ndarray, b: np.ndarray, p: ArithmeticParams,
                                 out: np.ndarray) -> None:
    """int8 SQUARED_DIFFERENCE, broadcast: inputs on the scale 2 * max(s1, s2) / 2**7,
    the difference squared (at most 255^2 * 2**14: an exact int32), rescaled, clamped."""
    x1 = on_common_scale(a, p.input1_offset, p.left_shift, p.input1_multiplier, p.input1_shift)
    x2 = on_common_scale(b, p.input2_offset, p.left_shift, p.input2_multiplier, p.input2_shift)
    d = x1 - x2
    rescale_to_output(d * d, p, out)


def power(x: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
    """POW with broadcasting, ``std::pow`` as TFLite calls it: float32 (within the float contract:
    NumPy's float32 power); int32 through double (exact below 2**53), converted back as x86 does
    (an out-of-range result, undefined in C, gives the lowest int32)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if out.dtype != np.int32:
            np.power(x, y, out=out)
            return
        r = np.power(x.astype(np.float64), y.astype(np.float64))
        out[...] = np.where(np.abs(r) < 2.0**31, r, -(2.0**31)).astype(np.int32)


#: the comparison of each comparison operator
COMPARISONS = {"EQUAL": np.equal, "NOT_EQUAL": np.not_equal, "LESS": np.less, "LESS_EQUAL": np.less_equal,
               "GREATER": np.greater, "GREATER_EQUAL": np.greater_equal}


def compare(name: str, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """A comparison operator on raw values (float, integers, bool), broadcast: ``out`` bool."""
    COMPARISONS[name](a, b, out=out)


def compare_quantized(name: str, a: np.ndarray, b: np.ndarray, offsets: tuple[int, int],
                      multipliers: tuple[int, int], shifts: tuple[int, int], out: np.ndarray) -> None:
    """``ComparisonWithScaling``: each input's ``(q - zp) << 8`` times its own scale as a fixed-point
    multiplier (``MultiplyByQuantizedMultiplierSmallerThanOneExp``), then compared."""
    from .fixedpoint import multiply_by_quantized_multiplier_smaller_than_one_exp as scale

    va, vb = ((v.astype(np.int64) + off) * 256 for v, off in zip((a, b), offsets))
    COMPARISONS[name](scale(va, multipliers[0], shifts[0]), scale(vb, multipliers[1], shifts[1]), out=out)


def select(condition: np.ndarray, x: np.ndarray, y: np.ndarray, out: np.ndarray, along_first: bool = False) -> None:
    """SELECT / SELECT_V2: ``x`` where ``condition`` holds, else ``y`` (values copied raw), broadcast
    (SELECT_V2); with ``along_first`` (SELECT's rank-1 condition) whole slices along the first
    dimension."""
    if along_first:
        condition = condition.reshape((-1,) + (1,) * (x.ndim - 1))
    np.copyto(out, np.where(condition, x, y).reshape(out.shape))
