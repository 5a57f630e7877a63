"""Reduction kernels (Numba): MEAN, SOFTMAX and ARG_MAX, plus the gemmlowp fixed-point
functions quantized SOFTMAX needs (``exp_on_negative_values``,
``one_over_one_plus_x_for_x_in_0_1``, TFLite's ``GetReciprocal``) as scalar functions.

MEAN and ARG_MAX see their input as [A, R, B] (kept axes before, the reduced
axes, kept axes after; ``pydeeplab.ops.reduce.reduction_layout``); SOFTMAX sees
[rows, depth]. Parallel over A (or rows). The NumPy twin is
``pydeeplab.reference.reduce``, which documents the arithmetic.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .fixedpoint import multiply_by_quantized_multiplier, rounding_divide_by_pot
from .fixedpoint import saturating_rounding_doubling_high_mul as srdhm

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1


@njit(cache=True)
def _wrap_int32(v):
    return ((np.int64(v) - _INT32_MIN) & 0xFFFFFFFF) + _INT32_MIN


# -- MEAN ------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _sum_rows(x, a, acc):
    """acc[b] += x[a, r, b] for r in order: the sum over the reduced axis, in acc's type."""
    for r in range(x.shape[1]):
        for b in range(x.shape[2]):
            acc[b] += x[a, r, b]


@njit(cache=True, parallel=True)
def mean_float(x, out):
    """out[a, b] = float32 sum of x[a, :, b] (in order) / float32(R). x [A, R, B] float32, out [A, B]."""
    n_a, n_r, n_b = x.shape
    count = np.float32(n_r)
    for a in prange(n_a):
        acc = np.zeros(n_b, dtype=np.float32)
        _sum_rows(x, a, acc)
        for b in range(n_b):
            out[a, b] = acc[b] / count


@njit(cache=True, parallel=True)
def mean_int(x, out):
    """Integer MEAN: the int64 sum over R divided by R, truncating toward zero. x [A, R, B] int32/int64."""
    n_a, n_r, n_b = x.shape
    for a in prange(n_a):
        acc = np.zeros(n_b, dtype=np.int64)
        _sum_rows(x, a, acc)
        for b in range(n_b):
            s = acc[b]
            out[a, b] = s // n_r if s >= 0 else -((-s) // n_r)


@njit(cache=True, parallel=True)
def mean_quantized(x, out, input_zp, multiplier, shift, output_zp, qmin, qmax):
    """TFLite's ``QuantizedMeanOrSum`` (mean): x [A, R, B] uint8/int8/int16 -> out [A, B].

    (multiplier, shift) already include the 1/R (``ops.reduce.mean_multiplier``).
    """
    n_a, n_r, n_b = x.shape
    offset = np.int64(input_zp) * n_r
    for a in prange(n_a):
        acc = np.zeros(n_b, dtype=np.int64)
        _sum_rows(x, a, acc)
        for b in range(n_b):
            # TFLite's sum is a wrapping int32, and so is the zero-point correction.
            shifted = _wrap_int32(_wrap_int32(acc[b]) - offset)
            q = multiply_by_quantized_multiplier(shifted, multiplier, shift) + output_zp
            out[a, b] = min(max(q, qmin), qmax)


# -- gemmlowp fixed point (scalars: int64 holding int32 values) --------------------------------

@njit(cache=True)
def saturating_rounding_multiply_by_pot(x, exponent):
    """x * 2**exponent: saturating left shift for exponent > 0, rounding right shift for < 0."""
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (np.int64(1) << (31 - exponent)) - 1
    if x > threshold:
        return np.int64(_INT32_MAX)
    if x < -threshold:
        return np.int64(_INT32_MIN)
    return np.int64(x) << exponent


@njit(cache=True)
def exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """exp(a) for a in [-1/4, 0), Q0.31 in and out (Taylor expansion around -1/8)."""
    constant_term = np.int64(1895147668)
    constant_1_over_3 = np.int64(715827883)
    x = np.int64(a) + (1 << 28)
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(srdhm(x4_over_4 + x3, constant_1_over_3) + x2, 1)
    return constant_term + srdhm(constant_term, x + poly)


_EXP_BARREL_EXPONENTS = np.array([-2, -1, 0, 1, 2, 3, 4], dtype=np.int64)
_EXP_BARREL_MULTIPLIERS = np.array([1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242],
                                   dtype=np.int64)


@njit(cache=True)
def exp_on_negative_values(a, integer_bits):
    """exp(a) for a <= 0 with ``integer_bits`` integer bits; result Q0.31 (gemmlowp)."""
    a = np.int64(a)
    frac_bits = 31 - integer_bits
    one_quarter = np.int64(1) << (frac_bits - 2)
    a_mod = (a & (one_quarter - 1)) - one_quarter
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod, integer_bits))
    remainder = a_mod - a
    for i in range(_EXP_BARREL_EXPONENTS.size):
        exponent = _EXP_BARREL_EXPONENTS[i]
        if integer_bits > exponent and (remainder >> (frac_bits + exponent)) & 1:
            result = srdhm(result, _EXP_BARREL_MULTIPLIERS[i])
    if integer_bits > 5 and a < -(np.int64(1) << (36 - integer_bits)):
        result = np.int64(0)
    if a == 0:
        result = np.int64(_INT32_MAX)
    return result


@njit(cache=True)
def one_over_one_plus_x_for_x_in_0_1(a):
    """1 / (1 + a) for a in [0, 1), Q0.31 in and out (Newton-Raphson in Q2.29)."""
    s = np.int64(a) + _INT32_MAX
    t = s + (1 if s >= 0 else -1)
    half_denominator = t // 2 if t >= 0 else -((-t) // 2)  # RoundingHalfSum(a, 1.0)
    x = 1515870810 + srdhm(half_denominator, -1010580540)
    for _ in range(3):
        one_minus = (np.int64(1) << 29) - srdhm(half_denominator, x)
        x = x + saturating_rounding_multiply_by_pot(srdhm(x, one_minus), 2)
    return saturating_rounding_multiply_by_pot(x, 1)


@njit(cache=True)
def get_reciprocal(x, integer_digits):
    """TFLite's ``GetReciprocal`` for positive x: (1 / (1 + f) in Q0.31, num_bits_over_unit)."""
    x = np.int64(x)
    headroom_plus_one = 0
    while headroom_plus_one < 32 and (x << headroom_plus_one) < (np.int64(1) << 31):
        headroom_plus_one += 1
    shifted_minus_one = (x << headroom_plus_one) - (np.int64(1) << 31)
    return one_over_one_plus_x_for_x_in_0_1(shifted_minus_one), integer_digits - headroom_plus_one


# -- SOFTMAX -----------------------------------------------------------------------------------

@njit(cache=True, parallel=True)
def softmax_float(x, out, beta):
    """Row-wise softmax of x [rows, depth] float32 into out: exp((x - max) * beta) / sum, in float32."""
    rows, depth = x.shape
    for i in prange(rows):
        m = np.float32(-3.4028234663852886e38)  # std::numeric_limits<float>::lowest()
        for c in range(depth):
            if m < x[i, c]:
                m = x[i, c]
        total = np.float32(0)
        for c in range(depth):
            e = np.exp((x[i, c] - m) * beta)
            out[i, c] = e
            total += e
        for c in range(depth):
            out[i, c] = out[i, c] / total


@njit(cache=True, parallel=True)
def softmax_quantized(x, out, input_multiplier, input_left_shift, diff_min, out_bits, qmin, qmax):
    """TFLite's reference quantized softmax, row-wise: x [rows, depth] uint8/int8 -> out (8 or 16 bit).

    qmin, qmax: the output type's range (qmin also the offset that maps 0.0).
    """
    rows, depth = x.shape
    for i in prange(rows):
        m = np.int64(x[i, 0])
        for c in range(depth):
            m = max(m, np.int64(x[i, c]))
        sum_of_exps = np.int64(0)
        for c in range(depth):
            diff = np.int64(x[i, c]) - m
            if diff >= diff_min:
                e = exp_on_negative_values(srdhm(diff << input_left_shift, input_multiplier), 5)
                sum_of_exps += rounding_divide_by_pot(e, 12)
        reciprocal, num_bits_over_unit = get_reciprocal(sum_of_exps, 12)
        exponent = num_bits_over_unit + 31 - out_bits
        for c in range(depth):
            diff = np.int64(x[i, c]) - m
            if diff >= diff_min:
                e = exp_on_negative_values(srdhm(diff << input_left_shift, input_multiplier), 5)
                q = rounding_divide_by_pot(srdhm(reciprocal, e), exponent) + qmin
                out[i, c] = min(max(q, qmin), qmax)
            else:
                out[i, c] = qmin


# -- ARG_MAX -----------------------------------------------------------------------------------

@njit(cache=True, inline="always")
def beats(v, best):
    """v replaces the best so far in ARG_MAX: TFLite's NaN-aware comparison (for integers just
    v > best). Shared with the resize + ARG_MAX fusion (``kernels.resize``)."""
    return v == v and (best != best or v > best)


@njit(cache=True, nogil=True)
def arg_max(x, out, t, nt):
    """out[a, b] = first k of the largest x[a, k, b]; NaN never wins. x [A, K, B]; out [A, B] int32/int64.

    Part t of nt of the rows a (:func:`pydeeplab.kernels.parallel.in_parallel`). Over the
    last axis (B = 1: a segmentation model's labels) four rows go side by side: each row's
    running maximum is a chain of dependent compares, and four independent chains keep
    the core busy (measured 1.55x faster on 513x513x21 uint8).
    """
    n_a, n_k, n_b = x.shape
    first, stop = n_a * t // nt, n_a * (t + 1) // nt
    if n_b == 1:
        y = x.reshape(n_a, n_k)
        o = out.reshape(n_a)
        a = first
        while a + 4 <= stop:
            b0, b1, b2, b3 = y[a, 0], y[a + 1, 0], y[a + 2, 0], y[a + 3, 0]
            i0 = i1 = i2 = i3 = 0
            for k in range(1, n_k):
                v0, v1, v2, v3 = y[a, k], y[a + 1, k], y[a + 2, k], y[a + 3, k]
                if beats(v0, b0):
                    b0, i0 = v0, k
                if beats(v1, b1):
                    b1, i1 = v1, k
                if beats(v2, b2):
                    b2, i2 = v2, k
                if beats(v3, b3):
                    b3, i3 = v3, k
            o[a], o[a + 1], o[a + 2], o[a + 3] = i0, i1, i2, i3
            a += 4
        first = a  # the last few rows: the general loop below
    for a in range(first, stop):
        for b in range(n_b):
            best = x[a, 0, b]
            idx = 0
            for k in range(1, n_k):
                v = x[a, k, b]
                if beats(v, best):
                    best = v
                    idx = k
            out[a, b] = idx
