"""LOG_SOFTMAX over the last axis: the readable specification (``reference/log_softmax.h``,
``reference/integer_ops/log_softmax.h``).

Float: ``x - max - log(sum(exp(x - max)))`` in float32. Quantized (uint8 / int8, output
scale 16/256 and zero point 255 / 127): gemmlowp fixed point. Input differences to the
row maximum are scaled into Q5.26 and exponentiated, the exps summed in Q12.19, the
sum's logarithm taken in Q5.26 (:func:`log_x_for_x_greater_than_or_equal_to_1`, a
rational approximation around the nearest power of two), and each output is
``(scaled diff - log sum) / 2**22 + qmax``; differences below a row-dependent
threshold give the type's minimum. All arrays are int64 holding int32 values.
"""

from __future__ import annotations

import numpy as np

from .fixedpoint import multiply_by_quantized_multiplier, rounding_divide_by_pot, wrap_int32
from .fixedpoint import saturating_rounding_doubling_high_mul as srdhm
from .reduce import exp_on_negative_values, one_over_one_plus_x_for_x_in_0_1, rounding_half_sum
from .reduce import saturating_rounding_multiply_by_pot

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1


def log_softmax_float(x: np.ndarray) -> np.ndarray:
    """Float LOG_SOFTMAX over the last axis (float32)."""
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True, dtype=np.float32))


def _clz32(x: np.ndarray) -> np.ndarray:
    """Leading zeros of int32 values seen as uint32 (32 for 0)."""
    u = np.asarray(x, dtype=np.int64) & 0xFFFFFFFF
    return 32 - np.frexp(u.astype(np.float64))[1]


def _saturating(x: np.ndarray) -> np.ndarray:
    return np.clip(x, _INT32_MIN, _INT32_MAX)


def log_x_for_x_greater_than_or_equal_to_1(x: np.ndarray, input_integer_bits: int,
                                           output_integer_bits: int) -> np.ndarray:
    """TFLite's ``log_x_for_x_greater_than_or_equal_to_1_impl``: log(x), x >= 1 with
    ``input_integer_bits`` integer bits, result with ``output_integer_bits``.

    x = 2**z * r with r in [sqrt(1/2), sqrt(2)) (chosen among two normalisations, one
    pre-multiplied by sqrt(1/2)); log(x) = z log 2 + log(r), log(r) from a rational
    approximation in q = 2 (r - 2**-1/4).
    """
    accum_bits = output_integer_bits + 1
    log_2, sqrt_sqrt_half, sqrt_half = 1488522236, 1805811301, 1518500250
    alpha_n, alpha_d, alpha_i, alpha_f = 117049297, 127690142, 1057819769, 638450708
    shifted_quarter = int(rounding_divide_by_pot(np.int64(536870912), accum_bits))  # 1/4 in Q(accum)
    z_a = np.asarray(x, dtype=np.int64)
    z_a_headroom_plus_1 = _clz32(z_a)
    r_a_tmp = _pot_param(z_a, z_a_headroom_plus_1 - 1)
    r_a = _pot_param(srdhm(r_a_tmp, sqrt_half), 1)
    z_a_pow_2_adj = _saturating(_pot_param(input_integer_bits - z_a_headroom_plus_1, 31 - accum_bits)
                                + shifted_quarter)
    z_b = srdhm(z_a, sqrt_half)
    z_b_headroom = _clz32(z_b) - 1
    r_b = _pot_param(z_a, z_b_headroom)
    z_b_pow_2_adj = _saturating(_pot_param(input_integer_bits - z_b_headroom, 31 - accum_bits)
                                - shifted_quarter)
    r = np.minimum(r_a, r_b)
    z_pow_2_adj = np.maximum(z_a_pow_2_adj, z_b_pow_2_adj)
    p = rounding_half_sum(r, sqrt_sqrt_half)
    q = wrap_int32(r - sqrt_sqrt_half)
    q = wrap_int32(q + q)
    common_sq = srdhm(q, q)
    num = wrap_int32(srdhm(q, r) + srdhm(srdhm(q, common_sq), alpha_n))
    denom_minus_one = wrap_int32(srdhm(p, wrap_int32(alpha_i + q + srdhm(alpha_d, common_sq)))
                                 + srdhm(alpha_f, q))
    recip_denom = one_over_one_plus_x_for_x_in_0_1(denom_minus_one)
    num_scaled = rounding_divide_by_pot(num, accum_bits)  # Q0 -> Q(accum)
    total = wrap_int32(srdhm(z_pow_2_adj, log_2) + srdhm(num_scaled, recip_denom))
    return saturating_rounding_multiply_by_pot(total, accum_bits - output_integer_bits)


def _pot_param(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """``SaturatingRoundingMultiplyByPOTParam`` for exponents >= 0 (elementwise): x * 2**e, saturated."""
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    return _saturating(x << e)


def log_softmax_quantized(x: np.ndarray, input_multiplier: int, input_left_shift: int,
                          reverse_scaling_divisor: int, reverse_scaling_right_shift: int,
                          diff_min: int, out_dtype: np.dtype) -> np.ndarray:
    """Quantized LOG_SOFTMAX over the last axis of a uint8 / int8 tensor (output of the same type)."""
    info = np.iinfo(out_dtype)
    qmin, qmax = int(info.min), int(info.max)
    xi = x.astype(np.int64)
    diff = xi - xi.max(axis=-1, keepdims=True)
    used = diff >= diff_min
    scaled = multiply_by_quantized_multiplier(diff, input_multiplier, input_left_shift)
    exps = rounding_divide_by_pot(exp_on_negative_values(np.where(used, scaled, 0), 5), 12)
    sum_of_exps = np.where(used, exps, 0).sum(axis=-1, keepdims=True)  # Q12.19, < 2**31 for depth < 4096
    log_sum = log_x_for_x_greater_than_or_equal_to_1(sum_of_exps, 12, 5)
    shifted_log_sum = wrap_int32(log_sum + _INT32_MIN)
    adjusted_diff_min = np.maximum(diff_min - 1, multiply_by_quantized_multiplier(
        shifted_log_sum, reverse_scaling_divisor, -reverse_scaling_right_shift))
    value = rounding_divide_by_pot(wrap_int32(scaled - log_sum), 31 - 5 - 4) + qmax
    return np.where(diff > adjusted_diff_min, np.clip(value, qmin, qmax), qmin).astype(out_dtype)
