"""Reductions in NumPy: the readable specification of MEAN, SOFTMAX and ARG_MAX.

Quantized SOFTMAX follows TFLite's reference kernel (``reference/softmax.h``),
which computes exp() and 1/x in gemmlowp fixed point; the gemmlowp functions it
needs (``exp_on_negative_values``, ``one_over_one_plus_x_for_x_in_0_1``) and
TFLite's ``GetReciprocal`` are written out below, vectorized. A fixed-point
value is an int32 ``raw`` with a number of integer bits m: raw / 2**(31 - m).
All arrays here are int64 holding int32 values.
"""

from __future__ import annotations

import numpy as np

from .fixedpoint import multiply_by_quantized_multiplier, round_half_away, rounding_divide_by_pot, wrap_int32
from .fixedpoint import saturating_rounding_doubling_high_mul as srdhm

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1


# -- MEAN ------------------------------------------------------------------------------------

def mean(x: np.ndarray, axes: tuple[int, ...], count: int) -> np.ndarray:
    """MEAN of a float32 or (non-quantized) int32/int64 tensor over ``axes`` (keep_dims shape).

    float32: the float32 sum divided by float32(count). Integers: the int64 sum
    divided by count, truncating toward zero as C does.
    """
    if x.dtype.kind == "f":
        return x.sum(axis=axes, keepdims=True, dtype=np.float32) / np.float32(count)
    total = x.sum(axis=axes, keepdims=True, dtype=np.int64)
    return (np.sign(total) * (np.abs(total) // count)).astype(x.dtype)


def mean_quantized(x: np.ndarray, axes: tuple[int, ...], count: int, input_zero_point: int,
                   multiplier: int, shift: int, output_zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """TFLite's ``QuantizedMeanOrSum`` (mean) of a uint8/int8/int16 tensor over ``axes``.

    The int32 sum (wrapping, as TFLite's), minus input_zero_point * count, times
    the fixed-point (multiplier, shift) that already includes the 1/count
    (``ops.reduce.mean_multiplier``), plus the output zero point, clamped to
    [qmin, qmax]. Returns the keep_dims shape in x's dtype.
    """
    total = wrap_int32(x.sum(axis=axes, keepdims=True, dtype=np.int64))
    shifted = wrap_int32(total - input_zero_point * count)
    q = multiply_by_quantized_multiplier(shifted, multiplier, shift) + output_zero_point
    return np.clip(q, qmin, qmax).astype(x.dtype)


# -- gemmlowp fixed point ------------------------------------------------------------------------

def saturating_rounding_multiply_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingMultiplyByPOT``: x * 2**exponent for int32 x.

    A positive exponent shifts left, saturating to the int32 range; a negative one
    is a rounding right shift (:func:`rounding_divide_by_pot`).
    """
    x = np.asarray(x, dtype=np.int64)
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, _INT32_MAX, np.where(x < -threshold, _INT32_MIN, x << exponent))


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    """exp(a) for a in [-1/4, 0), a and result in Q0.31 (gemmlowp).

    A Taylor expansion around -1/8: with x = a + 1/8,
    exp(a) = exp(-1/8) * (1 + x + x^2/2 + x^3/6 + x^4/24), each product a
    rounding doubling high multiply.
    """
    constant_term = 1895147668  # exp(-1/8) in Q0.31
    constant_1_over_3 = 715827883  # 1/3 in Q0.31
    x = a + (1 << 28)  # + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(srdhm(x4_over_4 + x3, constant_1_over_3) + x2, 1)
    return constant_term + srdhm(constant_term, x + poly)


#: exp(-2**k) in Q0.31 for k = -2 .. 4: the factors of gemmlowp's exp barrel shifter.
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp ``exp_on_negative_values``: exp(a) for a <= 0 with ``integer_bits`` integer bits, result Q0.31.

    a = q - r with r in (0, 1/4]: exp(-r) from the interval polynomial, then one
    multiply by exp(-2**k) for every bit k of q; exp(0) is exactly the largest
    Q0.31 value and inputs below -32 give 0.
    """
    a = np.asarray(a, dtype=np.int64)
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = a_mod_quarter_minus_one_quarter - a
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = (remainder >> (frac_bits + exponent)) & 1
            result = np.where(bit != 0, srdhm(result, multiplier), result)
    if integer_bits > 5:  # below -32 (raw -2**(36 - integer_bits)) the result is 0
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)
    return np.where(a == 0, _INT32_MAX, result)


def rounding_half_sum(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp ``RoundingHalfSum``: (a + b) / 2 rounded half away from zero."""
    s = np.asarray(a, dtype=np.int64) + b
    sign = np.where(s >= 0, 1, -1)
    t = s + sign
    return np.where(t >= 0, t // 2, -((-t) // 2))


def one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """gemmlowp ``one_over_one_plus_x_for_x_in_0_1``: 1 / (1 + a) for a in [0, 1), Q0.31 in and out.

    Newton-Raphson on d = (1 + a) / 2 in Q2.29, from the initial guess
    48/17 - 32/17 * d, three iterations x += x * (1 - d * x); the result x / 2.
    """
    half_denominator = rounding_half_sum(a, _INT32_MAX)
    x = 1515870810 + srdhm(half_denominator, -1010580540)  # 48/17 + d * (-32/17), Q2.29
    one_q2 = 1 << 29  # 1.0 in Q2.29
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)
        one_minus = one_q2 - half_denominator_times_x
        x = x + saturating_rounding_multiply_by_pot(srdhm(x, one_minus), 2)
    return saturating_rounding_multiply_by_pot(x, 1)


def get_reciprocal(x: np.ndarray, integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite's ``GetReciprocal``: 1/x for positive int32 fixed-point x with ``integer_digits`` integer bits.

    x is normalised to 1 + f with f in [0, 1) by a left shift of its leading
    zeros; returns (1 / (1 + f) in Q0.31, num_bits_over_unit) where
    1/x = result * 2**-num_bits_over_unit.
    """
    x = np.asarray(x, dtype=np.int64)
    headroom_plus_one = 32 - np.frexp(x.astype(np.float64))[1]  # count of leading zeros of uint32(x)
    num_bits_over_unit = integer_digits - headroom_plus_one
    shifted_minus_one = (x << headroom_plus_one) - (1 << 31)
    return one_over_one_plus_x_for_x_in_0_1(shifted_minus_one), num_bits_over_unit


# -- SOFTMAX -----------------------------------------------------------------------------------

def softmax_float(x: np.ndarray, beta: np.float32) -> np.ndarray:
    """SOFTMAX over the last axis of a float32 tensor: exp((x - max) * beta) / sum, all in float32."""
    e = np.exp((x - x.max(axis=-1, keepdims=True)) * beta)
    return e / e.sum(axis=-1, keepdims=True, dtype=np.float32)


def softmax_quantized(x: np.ndarray, input_multiplier: int, input_left_shift: int, diff_min: int,
                      out_dtype: np.dtype) -> np.ndarray:
    """TFLite's reference quantized SOFTMAX over the last axis: uint8/int8 in, ``out_dtype`` out.

    For every element, diff = x - max of its row. Differences >= diff_min are
    scaled by the input multiplier into Q5.26 and exponentiated in fixed point;
    the row's sum of exps (Q12.19) is inverted with :func:`get_reciprocal`; each
    output is exp * reciprocal rounded to the output's bit width and offset by
    the type's minimum (so 1.0 maps to 2**bits). Smaller differences give the
    type's minimum.

    TFLite aborts (a failed check on the final shift) when a row's sum of
    exponentials reaches 512 for an 8-bit output (possible only in rows of 512 or
    more elements); here such rows get the same formula with the larger shift.
    """
    out_dtype = np.dtype(out_dtype)
    bits = out_dtype.itemsize * 8
    out_min, out_max = int(np.iinfo(out_dtype).min), int(np.iinfo(out_dtype).max)
    xi = x.astype(np.int64)
    diff = xi - xi.max(axis=-1, keepdims=True)
    used = diff >= diff_min
    scaled = srdhm(np.where(used, diff, 0) << input_left_shift, input_multiplier)
    exps = exp_on_negative_values(scaled, 5)
    sum_of_exps = np.where(used, rounding_divide_by_pot(exps, 12), 0).sum(axis=-1, keepdims=True)
    reciprocal, num_bits_over_unit = get_reciprocal(sum_of_exps, 12)
    exponent = num_bits_over_unit + 31 - bits
    unsat = rounding_divide_by_pot(srdhm(reciprocal, exps), exponent)
    out = np.clip(unsat + out_min, out_min, out_max)
    return np.where(used, out, out_min).astype(out_dtype)


# -- ARG_MAX, ARG_MIN --------------------------------------------------------------------------

def arg_max(x: np.ndarray, axis: int) -> np.ndarray:
    """ARG_MAX along ``axis`` (removed): the first index of the largest value.

    Ties go to the lowest index. NaN is never a candidate, so the answer is the
    first index of the largest non-NaN value (0 when all are NaN), as TFLite's
    NaN-aware comparison gives.

    Known difference: for a float32 input whose reduced axis is innermost (nothing
    but size-1 dimensions after it) and has 4 or more elements, LiteRT's x86 build
    runs a 4-lane NEON kernel emulated with SSE whose horizontal maximum lets a NaN
    in an earlier lane hide later values; with NaN in such rows its index can
    differ from this one. Without NaN the results are identical.
    """
    return _arg_extreme(x, axis, True)


def _arg_extreme(x: np.ndarray, axis: int, largest: bool) -> np.ndarray:
    """The first index along ``axis`` of the largest (smallest) value, NaN never a candidate."""
    pick = np.max if largest else np.min
    if x.dtype.kind == "f":
        nan = np.isnan(x)
        key = np.where(nan, -np.inf if largest else np.inf, x)
        hit = (key == pick(key, axis=axis, keepdims=True)) & ~nan
    else:
        hit = x == pick(x, axis=axis, keepdims=True)
    return np.where(hit.any(axis=axis), hit.argmax(axis=axis), 0)


def arg_min(x: np.ndarray, axis: int) -> np.ndarray:
    """ARG_MIN along ``axis`` (removed): the first index of the smallest value (ties to the lowest
    index; NaN never a candidate, 0 when all are NaN), as :func:`arg_max` for the largest."""
    return _arg_extreme(x, axis, False)


# -- SUM, REDUCE_MAX, REDUCE_MIN ---------------------------------------------------------------

def reduce_sum(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """SUM of a float32 or integer tensor over ``axes`` (keep_dims shape): float32 sums in
    float32; int32 wraps as TFLite's int32 accumulator does; int64 sums in int64."""
    if x.dtype.kind == "f":
        return x.sum(axis=axes, keepdims=True, dtype=np.float32)
    total = x.sum(axis=axes, keepdims=True, dtype=np.int64)
    return (wrap_int32(total) if x.dtype == np.int32 else total).astype(x.dtype)


def _reduce_extreme(x: np.ndarray, axes: tuple[int, ...], largest: bool) -> np.ndarray:
    """REDUCE_MAX (``largest``) or REDUCE_MIN over ``axes`` (keep_dims shape): ``in > current ? in :
    current`` (``<`` for the smallest) from the type's lowest (highest) value, so NaN never wins and an
    empty reduction gives that value; bool as any (all)."""
    if x.dtype == np.bool_:
        if not x.size:
            return np.full(tuple(1 if d in axes else s for d, s in enumerate(x.shape)), not largest)
        return x.any(axis=axes, keepdims=True) if largest else x.all(axis=axes, keepdims=True)
    info = np.finfo(x.dtype) if x.dtype.kind == "f" else np.iinfo(x.dtype)
    start = info.min if largest else info.max
    key = np.where(np.isnan(x), start, x) if x.dtype.kind == "f" else x
    return (np.max if largest else np.min)(key, axis=axes, keepdims=True, initial=start).astype(x.dtype)


def reduce_max(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """REDUCE_MAX over ``axes`` (keep_dims shape): see :func:`_reduce_extreme`."""
    return _reduce_extreme(x, axes, True)


def reduce_min(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """REDUCE_MIN over ``axes`` (keep_dims shape): see :func:`_reduce_extreme`."""
    return _reduce_extreme(x, axes, False)


def sum_int8_float_rescale(x: np.ndarray, axes: tuple[int, ...], count: int, input_scale: float,
                           input_zero_point: int, output_scale: float, output_zero_point: int) -> np.ndarray:
    """int8 SUM as LiteRT's optimized ``QuantizedMeanOrSum`` computes it (keep_dims shape).

    ``round(float(sum) * scale + bias) + zp_out`` clamped to int8, with float32
    ``scale = s_in / s_out`` and ``bias = -zp_in * scale * count`` (each product rounded
    to float32, as C++ evaluates them) and ``round`` half away from zero.
    """
    total = wrap_int32(x.sum(axis=axes, keepdims=True, dtype=np.int64))
    scale = np.float32(input_scale) / np.float32(output_scale)
    bias = np.float32(np.float32(-input_zero_point) * scale) * np.float32(count)
    value = round_half_away(total.astype(np.float32) * scale + bias).astype(np.int64) + output_zero_point
    return np.clip(value, -128, 127).astype(np.int8)
