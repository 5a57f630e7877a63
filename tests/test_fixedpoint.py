"""TFLite's quantized integer arithmetic: quantization.py (plan time), the NumPy spec
(pydeeplab.reference.fixedpoint) and the Numba kernels (pydeeplab.kernels.fixedpoint).

Expected values come from three independent places:
* hand derivations from the C++ definitions (quantization_util.cc QuantizeMultiplier,
  gemmlowp fixedpoint.h, common.cc MultiplyByQuantizedMultiplier, kernel_util.cc),
  written out next to each case;
* the expectations of TFLite's own tests (kernels/internal/quantization_util_test.cc),
  which ran against the C++ code;
* an exact oracle in Python integers / Fractions that follows the C++ text literally
  (gemmlowp's nudge and truncating division, not our shortcut).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numba import njit
from oracle import T, quant, run_litert, single_op_model

from pydeeplab import quantization as Q
from pydeeplab.kernels import fixedpoint as K
from pydeeplab.reference import fixedpoint as R
from pydeeplab.tflite.options import Conv2DOptions
from pydeeplab.tflite.schema import Activation, BuiltinOperator, Padding

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
DERANDOMIZED = settings(derandomize=True, max_examples=300, deadline=None, database=None)


# --- exact oracles, literal transcriptions of the C++ ---------------------------------


def _c_div(n: int, d: int) -> int:
    """C integer division: truncates toward zero."""
    q = abs(n) // abs(d)
    return q if (n >= 0) == (d > 0) else -q


def _round_away(v: Fraction) -> int:
    """std::round on an exact value."""
    t = math.trunc(v)
    return t + (1 if v > 0 else -1) if abs(v - t) >= Fraction(1, 2) else t


def oracle_srdhm(a: int, b: int) -> int:
    if a == b == I32_MIN:
        return I32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _c_div(ab + nudge, 1 << 31)


def oracle_rdbpot(x: int, e: int) -> int:
    return _round_away(Fraction(x, 1 << e))


def oracle_mbqm(x: int, m: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    scaled = ((x << left) - I32_MIN) % 2**32 + I32_MIN  # int32 wraparound of x * (1 << left)
    return oracle_rdbpot(oracle_srdhm(scaled, m), right)


def oracle_quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier on the double ``real``, without frexp: exponent by comparison."""
    if real == 0:
        return 0, 0
    v = Fraction(real)
    e = 0
    while abs(v) >= Fraction(2) ** e:
        e += 1
    while abs(v) < Fraction(2) ** (e - 1):
        e -= 1
    q = _round_away(v * Fraction(2) ** (31 - e))
    if q == 2**31:
        q, e = 2**30, e + 1
    if e < -31:
        return 0, 0
    return q, e


# --- quantize_multiplier ----------------------------------------------------------


@pytest.mark.parametrize(
    "real, expected",
    [
        (0.0, (0, 0)),  # explicit zero case
        (0.5, (2**30, 0)),  # frexp(0.5) = (0.5, 0)
        (1.0, (2**30, 1)),  # frexp(1) = (0.5, 1)
        (0.75, (1610612736, 0)),  # 0.75 * 2**31
        (2.0**20, (2**30, 21)),  # > 1: positive (left) shift
        (1 - 2.0**-31, (2**31 - 1, 0)),  # q * 2**31 = 2**31 - 1 exactly: largest multiplier
        (1 - 2.0**-33, (2**30, 1)),  # q * 2**31 = 2**31 - 0.25 rounds to 2**31: halve, shift + 1
        (0.5 + 2.0**-32, (2**30 + 1, 0)),  # q * 2**31 = 2**30 + 0.5: a tie, away from zero (even would give 2**30)
        (-(0.5 + 2.0**-32), (-(2**30) - 1, 0)),  # negative tie, away from zero
        (-0.3, (-1288490189, -1)),  # frexp(-0.3) = (-0.6, -1); -0.6 * 2**31 = -1288490188.8
        (2.0**-32, (2**30, -31)),  # frexp = (0.5, -31): the smallest kept shift
        (0.75 * 2.0**-31, (1610612736, -31)),  # frexp = (0.75, -31)
        (0.75 * 2.0**-32, (0, 0)),  # frexp = (0.75, -32): flushed
        (2.0**-33, (0, 0)),  # frexp = (0.5, -32): shift < -31 flushes to zero
        (1e-300, (0, 0)),
    ],
)
def test_quantize_multiplier_hand_values(real, expected):
    assert Q.quantize_multiplier(real) == expected
    assert oracle_quantize_multiplier(real) == expected


@pytest.mark.parametrize(
    "real, expected",
    # TFLite's quantization_util_test.cc (QuantizeMultiplierGreaterThanOne, ...Underflow)
    [
        (1 + 1e-11, (1073741824, 1)),
        (1.25, (1342177280, 1)),
        (1.50, (1610612736, 1)),
        (1.75, (1879048192, 1)),
        (2 - 1e-9, (2147483647, 1)),
        (2 - 1e-11, (1073741824, 2)),
        (2.0, (1073741824, 2)),
        (math.ldexp(1.0, -31), (1073741824, -30)),
        (math.ldexp(1.0, -32), (1073741824, -31)),
        (math.ldexp(float(np.float32(0.99)), -32), (0, 0)),
        (math.ldexp(1.0, -33), (0, 0)),
    ],
)
def test_quantize_multiplier_tflite_test_values(real, expected):
    assert Q.quantize_multiplier(real) == expected


def test_quantize_multiplier_smaller_than_one_exp():
    # TFLite's quantization_util_test.cc, QuantizeMultiplierSmallerThanOneExp
    assert Q.quantize_multiplier_smaller_than_one_exp(0.25) == (1073741824, -1)
    assert Q.quantize_multiplier_smaller_than_one_exp(0.50 - 5e-9) == (2147483627, -1)
    assert Q.quantize_multiplier_smaller_than_one_exp(0.50 - 1e-10) == (1073741824, 0)
    assert Q.quantize_multiplier_smaller_than_one_exp(0.50) == (1073741824, 0)
    assert Q.quantize_multiplier_smaller_than_one_exp(0.75) == (1610612736, 0)
    assert Q.quantize_multiplier_smaller_than_one_exp(1 - 1e-9) == (2147483646, 0)
    for bad in (-0.1, 0.0, 1 - 1e-15, 1 - 1e-17, 1.0):  # TFLite: EXPECT_DEATH
        with pytest.raises(ValueError):
            Q.quantize_multiplier_smaller_than_one_exp(bad)


def test_quantize_multiplier_rejects_non_finite():
    for bad in (math.inf, -math.inf, math.nan):
        with pytest.raises(ValueError):
            Q.quantize_multiplier(bad)


def test_quantize_multipliers_matches_oracle():
    rng = np.random.default_rng(1)
    reals = np.concatenate(
        [
            rng.uniform(0, 1, 300),
            np.exp(rng.uniform(-25, 10, 300)),  # tiny to large
            -np.exp(rng.uniform(-25, 3, 100)),
            np.float32(rng.uniform(1e-6, 1e-2, 100)).astype(np.float64),
        ]
    )
    m, s = Q.quantize_multipliers(reals)
    assert m.dtype == np.int32 and s.dtype == np.int32 and m.shape == reals.shape
    assert [(int(a), int(b)) for a, b in zip(m, s)] == [oracle_quantize_multiplier(float(r)) for r in reals]
    # Scalar and vector forms agree; 2-D input keeps its shape.
    assert Q.quantize_multiplier(float(reals[7])) == (int(m[7]), int(s[7]))
    m2, s2 = Q.quantize_multipliers(reals[:12].reshape(3, 4))
    assert m2.shape == (3, 4) and np.array_equal(m2.ravel(), m[:12]) and np.array_equal(s2.ravel(), s[:12])


@given(st.floats(min_value=2.0**-40, max_value=2.0**25, allow_subnormal=False))
@DERANDOMIZED
def test_quantize_multiplier_property(real):
    m, s = Q.quantize_multiplier(real)
    assert (m, s) == oracle_quantize_multiplier(real)
    if s != 0 or m != 0:
        assert 2**30 <= m < 2**31
        # within half a unit of the last place
        assert abs(Fraction(m) * Fraction(2) ** (s - 31) - Fraction(real)) <= Fraction(2) ** (s - 32)


# --- conv / add / activation helpers -----------------------------------------------


def test_conv_output_multipliers_int8_uses_double_product():
    # float32 scales 0.01f = 5368709 * 2**-29, 0.003f = 6442451 * 2**-31, 0.02f = 2 * 0.01f.
    # double(s_in) * s_w is exact (45 bits) and / s_out gives exactly s_w / 2 = 6442451 * 2**-32
    # = (6442451 / 2**23) * 2**-9, so multiplier = 6442451 * 2**8, shift -9.
    s_in, s_w, s_out = np.float32(0.01), np.float32(0.003), np.float32(0.02)
    assert float(s_in) == 5368709 * 2.0**-29 and float(s_w) == 6442451 * 2.0**-31 and s_out == 2 * s_in
    m, s = Q.conv_output_multipliers(s_in, np.array([s_w]), s_out, np.int8)
    assert (int(m[0]), int(s[0])) == (6442451 * 256, -9)


def test_conv_output_multipliers_uint8_uses_float32_product():
    # GetQuantizedConvolutionMultipler: double(float(s_in * s_w)) / double(s_out). The
    # float32 product of the scales above keeps 24 of its 45 bits, so the multiplier
    # differs from the int8 one in its low digits.
    s_in, s_w, s_out = np.float32(0.01), np.float32(0.003), np.float32(0.02)
    exact = 5368709 * 6442451  # * 2**-60
    kept = exact >> (exact.bit_length() - 24)  # float32 significand, rounded to nearest below
    rem = exact - (kept << (exact.bit_length() - 24))
    half = 1 << (exact.bit_length() - 25)
    kept += 1 if rem > half or (rem == half and kept & 1) else 0
    product32 = kept * 2.0 ** (exact.bit_length() - 24 - 60)
    assert product32 == float(s_in * s_w)
    real = product32 / float(s_out)  # double division, as in C
    expected = oracle_quantize_multiplier(real)
    m, s = Q.conv_output_multipliers(s_in, [s_w], s_out, np.uint8)
    assert (int(m[0]), int(s[0])) == expected
    assert expected != (6442451 * 256, -9)  # the int8 formula would give a different multiplier


def test_conv_output_multipliers_per_channel():
    rng = np.random.default_rng(2)
    s_w = rng.uniform(1e-4, 1e-1, 32).astype(np.float32)
    s_in, s_out = np.float32(0.0235), np.float32(0.117)
    m, s = Q.conv_output_multipliers(s_in, s_w, s_out, np.int8)
    assert m.shape == s.shape == (32,)
    for c in range(32):
        assert (int(m[c]), int(s[c])) == oracle_quantize_multiplier(float(s_in) * float(s_w[c]) / float(s_out))
    with pytest.raises(ValueError):
        Q.conv_output_multipliers(s_in, s_w, s_out, np.uint8)  # uint8 is per-tensor only


def test_add_params():
    # add.cc: twice_max = 2 * max(s1, s2); 0.02f = 2 * 0.01f exactly and 0.04f = 2 * 0.02f,
    # so the input multipliers are exactly 0.5 -> (2**30, 0) and 0.25 -> (2**30, -1), and the
    # output multiplier twice_max / (2**20 * s_out) is exactly 2**-20 -> (2**30, -19).
    p = Q.add_params(0.02, 0.01, 0.04)
    assert p == Q.AddParams(20, 2**30, 0, 2**30, -1, 2**30, -19)
    # A general case against the oracle, with the C expression's precisions.
    s1, s2, so = np.float32(0.1173), np.float32(0.0392), np.float32(0.1381)
    tm = 2.0 * float(s1)
    p = Q.add_params(s1, s2, so)
    assert (p.input1_multiplier, p.input1_shift) == oracle_quantize_multiplier(float(s1) / tm)
    assert (p.input2_multiplier, p.input2_shift) == oracle_quantize_multiplier(float(s2) / tm)
    assert (p.output_multiplier, p.output_shift) == oracle_quantize_multiplier(tm / (2.0**20 * float(so)))
    with pytest.raises(ValueError):  # output multiplier >= 1: TFLite's check fails
        Q.add_params(1.0, 1.0, 1e-7)


def test_activation_range_float():
    f32max = float(np.finfo(np.float32).max)
    assert Q.activation_range_float(Activation.NONE) == (-f32max, f32max)
    assert Q.activation_range_float(Activation.RELU) == (0.0, f32max)
    assert Q.activation_range_float(Activation.RELU6) == (0.0, 6.0)
    assert Q.activation_range_float(Activation.RELU_N1_TO_1) == (-1.0, 1.0)
    assert Q.activation_range_float(Activation.TANH) == (-f32max, f32max)


@pytest.mark.parametrize(
    "act, scale, zp, dtype, expected",
    [
        (Activation.NONE, 0.1, 3, np.uint8, (0, 255)),
        (Activation.RELU, 0.05, 128, np.uint8, (128, 255)),
        (Activation.RELU6, 6 / 255, 0, np.uint8, (0, 255)),  # 6 / float(6/255) = 255.0 in float32
        (Activation.RELU6, 0.01, 10, np.uint8, (10, 255)),  # Q(6) = 610, clamped to qmax
        (Activation.RELU6, 0.1, -128, np.int8, (-128, -68)),  # 6 / 0.1f = 60 (float32)
        (Activation.RELU, 0.1, -200, np.int8, (-128, 127)),  # Q(0) = -200, clamped to qmin
        # 1 / 0.4f is 2.4999999627 in double but exactly 2.5 in float32, and std::round
        # takes it away from zero: (-3, 3). Double division or round-half-even would give 2.
        (Activation.RELU_N1_TO_1, 0.4, 0, np.int8, (-3, 3)),
        (Activation.RELU_N1_TO_1, 0.4, 5, np.int16, (2, 8)),
        (Activation.TANH, 0.4, 5, np.int16, (-32768, 32767)),
    ],
)
def test_activation_range_quantized(act, scale, zp, dtype, expected):
    assert Q.activation_range_quantized(act, scale, zp, dtype) == expected


def test_activation_range_quantized_errors():
    with pytest.raises(ValueError):
        Q.activation_range_quantized(Activation.RELU, 0.1, 0, np.int32)
    with pytest.raises(ValueError):  # 6 / 1e-12 overflows int32, TFLite's check fails
        Q.activation_range_quantized(Activation.RELU6, 1e-12, 0, np.int8)


# --- fixed-point arithmetic: hand cases, both backends --------------------------------


@njit(cache=True)
def _numba_apply(op, a, b, c):
    out = np.empty(a.size, np.int64)
    for i in range(a.size):
        if op == 0:
            out[i] = K.saturating_rounding_doubling_high_mul(a[i], b[i])
        elif op == 1:
            out[i] = K.rounding_divide_by_pot(a[i], b[i])
        elif op == 2:
            out[i] = K.multiply_by_quantized_multiplier(a[i], b[i], c[i])
        else:
            out[i] = K.multiply_by_quantized_multiplier_smaller_than_one_exp(a[i], b[i], c[i])
    return out


_OPS = {
    0: lambda a, b, c: R.saturating_rounding_doubling_high_mul(a, b),
    1: lambda a, b, c: R.rounding_divide_by_pot(a, b),
    2: R.multiply_by_quantized_multiplier,
    3: R.multiply_by_quantized_multiplier_smaller_than_one_exp,
}


def both(op, a, b, c=0):
    """Run one op on NumPy and Numba and check they agree; return the common result."""
    a, b, c = (
        np.array(v)  # own, writeable copies (Numba wants plain arrays)
        for v in np.broadcast_arrays(np.atleast_1d(np.asarray(a, np.int32)), np.asarray(b, np.int32), np.asarray(c, np.int32))
    )
    ref = _OPS[op](a, b, c)
    fast = _numba_apply(op, a.ravel(), b.ravel(), c.ravel()).reshape(a.shape)
    assert ref.dtype == np.int64
    np.testing.assert_array_equal(ref, fast)
    return ref.tolist()


@pytest.mark.parametrize(
    "a, b, expected",
    [
        (I32_MIN, I32_MIN, I32_MAX),  # the one overflow: 2**31 saturates
        (I32_MIN, I32_MAX, -I32_MAX),  # -2**62 + 2**31, / 2**31 exact
        (I32_MAX, I32_MAX, I32_MAX - 1),  # (2**31 - 1)**2 / 2**31 = 2**31 - 2 + 2**-31
        (I32_MIN, 2**30, -(2**30)),
        (2**15, 2**15, 1),  # 0.5 -> 1
        (-(2**15), 2**15, 0),  # -0.5 -> 0: ties go toward +inf (gemmlowp's nudge 1 - 2**30)
        (3, 2**30, 2),  # 1.5 -> 2
        (-3, 2**30, -1),  # -1.5 -> -1
        (5, 2**30, 3),  # 2.5 -> 3
        (-5, 2**30, -2),  # -2.5 -> -2
        (-3, 2**29, -1),  # -0.75 -> -1
        (-1, 2**29, 0),  # -0.25 -> 0
        (0, I32_MIN, 0),
        (12345, 0, 0),
    ],
)
def test_srdhm_edges(a, b, expected):
    assert oracle_srdhm(a, b) == expected
    assert both(0, a, b) == [expected]


@pytest.mark.parametrize(
    "x, e, expected",
    [
        (7, 0, 7),
        (-7, 0, -7),
        (5, 1, 3),  # 2.5 -> 3
        (-5, 1, -3),  # -2.5 -> -3: ties away from zero
        (4, 1, 2),
        (-4, 1, -2),
        (3, 2, 1),  # 0.75
        (-3, 2, -1),
        (2, 2, 1),  # 0.5
        (-2, 2, -1),  # -0.5
        (1, 2, 0),  # 0.25
        (-1, 2, 0),
        (I32_MAX, 31, 1),
        (I32_MIN, 31, -1),
        (2**30, 31, 1),  # 0.5
        (-(2**30), 31, -1),
        (2**30 - 1, 31, 0),
        (-(2**30) + 1, 31, 0),
    ],
)
def test_rounding_divide_by_pot_edges(x, e, expected):
    assert oracle_rdbpot(x, e) == expected
    assert both(1, x, e) == [expected]


@pytest.mark.parametrize(
    "x, m, shift, expected",
    [
        (1000, 2**30, -3, 63),  # 1000 * 0.5 / 8 = 62.5 -> 63
        (-1000, 2**30, -3, -63),
        (1, 2**30, -1, 1),  # exact 0.25, but double rounding: 0.5 -> 1, then 1/2 -> 1
        (100, 2**30, 2, 200),  # positive shift: (100 << 2) * 0.5
        (-100, 2**30, 2, -200),
        (2**30, 2**30, 2, 0),  # 2**30 << 2 wraps to 0 in int32 (C's x * (1 << 2))
        (12345, 2**30, 0, 6173),  # shift 0: one rounding, 6172.5 -> 6173
        # exact (2**31 - 1) / 2**32 < 0.5, but SRDHM rounds 2**30 - 0.5 up to 2**30, and
        # 2**30 / 2**31 = 0.5 rounds to 1: the double rounding TFLite does by default
        (I32_MAX, 2**30, -31, 1),
        (I32_MIN, 2**30, -31, -1),  # -2**30 exactly, then -0.5 -> -1 (away from zero)
        (I32_MAX, 2**31 - 1, -31, 1),
        (I32_MIN, 2**31 - 1, -31, -1),
        (I32_MIN, I32_MIN, 0, I32_MAX),  # negative multiplier, saturation
        (0, 2**31 - 1, 30, 0),
    ],
)
def test_mbqm_edges(x, m, shift, expected):
    assert oracle_mbqm(x, m, shift) == expected
    assert both(2, x, m, shift) == [expected]


def test_mbqm_tflite_test_values():
    # quantization_util_test.cc, MultiplyByQuantizedMultiplierInt32 (double-rounding build)
    def quant_and_multiply(x, real):
        m, s = Q.quantize_multiplier(real)
        return both(2, x, m, s)[0]

    assert quant_and_multiply(0, 0.1) == 0
    assert quant_and_multiply(1, 0) == 0
    assert quant_and_multiply(10000, 0.00097656) == 10
    assert quant_and_multiply(-10000, 0.00097656) == -10
    assert quant_and_multiply(I32_MIN, 0.00001) == -21475
    assert quant_and_multiply(I32_MAX, 0.00001) == 21475
    assert quant_and_multiply(10000, -0.00097656) == -10
    assert quant_and_multiply(-10000, -0.00097656) == 10
    assert quant_and_multiply(I32_MIN, -0.00001) == 21475
    assert quant_and_multiply(I32_MAX, -0.00001) == -21475
    expected = _round_away(Fraction(I32_MAX * I32_MAX, 2**34))
    assert both(2, I32_MAX, I32_MAX, -3) == [expected]


def test_mbqm_per_channel_broadcast():
    # The NumPy spec broadcasts a per-channel multiplier/shift over an [N, C] accumulator.
    rng = np.random.default_rng(3)
    acc = rng.integers(-(2**24), 2**24, size=(50, 8), dtype=np.int64).astype(np.int32)
    m, s = Q.quantize_multipliers(rng.uniform(1e-4, 4.0, 8))
    got = R.multiply_by_quantized_multiplier(acc, m, s)
    assert got.shape == (50, 8)
    want = [[oracle_mbqm(int(acc[i, c]), int(m[c]), int(s[c])) for c in range(8)] for i in range(50)]
    assert got.tolist() == want


def test_smaller_than_one_exp_equals_mbqm():
    rng = np.random.default_rng(4)
    x = rng.integers(I32_MIN, I32_MAX, 20000, endpoint=True).astype(np.int32)
    m = rng.integers(2**30, 2**31, 20000).astype(np.int32)
    s = rng.integers(-31, 1, 20000).astype(np.int32)
    np.testing.assert_array_equal(both(3, x, m, s), both(2, x, m, s))


# --- random agreement: NumPy == Numba == exact oracle -------------------------------


def _edgy_int32(rng, n):
    """Random int32 with the edge values and powers of two (+-1) mixed in."""
    special = np.array([0, 1, -1, I32_MIN, I32_MAX, I32_MIN + 1, 2**30, -(2**30), 2**15, -(2**15)], np.int64)
    v = rng.integers(I32_MIN, I32_MAX, n, endpoint=True)
    k = rng.integers(0, 31, n)
    pot = (np.int64(1) << k) + rng.integers(-1, 2, n)
    pick = rng.integers(0, 4, n)
    v = np.where(pick == 0, pot * rng.choice([-1, 1], n), v)
    v = np.where(pick == 1, special[rng.integers(0, special.size, n)], v)
    return np.clip(v, I32_MIN, I32_MAX).astype(np.int32)


def test_random_numpy_equals_numba_and_oracle():
    rng = np.random.default_rng(5)
    n = 200_000
    x, a = _edgy_int32(rng, n), _edgy_int32(rng, n)
    m = np.abs(_edgy_int32(rng, n).astype(np.int64)).clip(0, I32_MAX).astype(np.int32)
    e = rng.integers(0, 32, n).astype(np.int32)
    shift = rng.integers(-31, 31, n).astype(np.int32)
    srdhm = both(0, x, a)
    rdbpot = both(1, x, e)
    mbqm = both(2, x, m, shift)
    # Exact oracle on a sample (it is slow Python).
    for i in rng.choice(n, 3000, replace=False):
        xi, ai, mi, ei, si = int(x[i]), int(a[i]), int(m[i]), int(e[i]), int(shift[i])
        assert srdhm[i] == oracle_srdhm(xi, ai), (xi, ai)
        assert rdbpot[i] == oracle_rdbpot(xi, ei), (xi, ei)
        assert mbqm[i] == oracle_mbqm(xi, mi, si), (xi, mi, si)


@given(
    st.integers(I32_MIN, I32_MAX),
    st.integers(I32_MIN, I32_MAX),
    st.integers(0, 31),
    st.integers(-31, 30),
)
@DERANDOMIZED
def test_hypothesis_scalars_against_oracle(x, b, e, shift):
    assert both(0, x, b) == [oracle_srdhm(x, b)]
    assert both(1, x, e) == [oracle_rdbpot(x, e)]
    m = abs(b) if b != I32_MIN else I32_MAX
    assert both(2, x, m, shift) == [oracle_mbqm(x, m, shift)]


@given(
    hnp.arrays(np.int32, st.integers(1, 64), elements=st.integers(I32_MIN, I32_MAX)),
    st.integers(0, 2**31 - 1),
    st.integers(-31, 30),
)
@DERANDOMIZED
def test_hypothesis_arrays_numpy_equals_numba(x, m, shift):
    both(0, x, m)
    both(1, x, abs(shift))
    both(2, x, m, shift)


# --- LiteRT (BUILTIN_REF) agrees with these functions --------------------------------


@pytest.mark.parametrize(
    "s_in, s_out, zp_in, zp_out, dtype",
    [
        (0.5, 2.0, 0, 0, np.int8),  # multiplier 0.25 = (2**30, -1): double rounding is visible
        (0.0731, 0.0213, 3, -7, np.int8),  # > 1: positive shift
        (0.0213, 0.0731, -5, 2, np.int8),
        (0.0213, 0.0731, 130, 120, np.uint8),
    ],
)
def test_litert_requantize(s_in, s_out, zp_in, zp_out, dtype):
    # QUANTIZE int->int is reference_ops::Requantize: MBQM(x - zp_in) + zp_out, clamped, with
    # QuantizeMultiplier(double(s_in) / double(s_out)) (quantize.cc Prepare).
    pytest.importorskip("ai_edge_litert")
    info = np.iinfo(dtype)
    x = np.arange(info.min, info.max + 1).astype(dtype).reshape(1, -1)
    model = single_op_model(
        BuiltinOperator.QUANTIZE, [T(x, quant=quant(s_in, zp_in))],
        [T(None, dtype, shape=x.shape, quant=quant(s_out, zp_out))],
    )
    got = run_litert(model, [x])[0]
    m, s = Q.quantize_multiplier(float(np.float32(s_in)) / float(np.float32(s_out)))
    want = np.clip(R.multiply_by_quantized_multiplier(x.astype(np.int64) - zp_in, m, s) + zp_out, info.min, info.max)
    np.testing.assert_array_equal(got, want)
    if s_in == 0.5:  # TFLITE_SINGLE_ROUNDING would round once: 64 of the 256 outputs would differ
        v = x.astype(np.int64) - zp_in
        single = np.clip((v * m + (1 << (30 - s))) >> (31 - s), info.min, info.max)
        assert np.count_nonzero(single != got) == 64


def test_litert_uint8_conv_uses_float32_scale_product():
    # A 1x1 uint8 CONV_2D with one input channel: acc = (x - zp_in) * (w - zp_w) + bias, then
    # MBQM by the per-tensor multiplier. For these scales, bias 340861 (with w = zp_w) lands
    # where the float32-product multiplier (uint8 path) gives 249 and the double-product one
    # (int8 path) 248: LiteRT must give 249.
    pytest.importorskip("ai_edge_litert")
    s_in, s_w, s_out = np.float32(0.01455442514270544), np.float32(0.003428080352023244), np.float32(0.0684380829334259)
    zp_in, zp_w, zp_out = 128, 131, 0
    rng = np.random.default_rng(6)
    channels = 16
    w = rng.integers(0, 256, (channels, 1, 1, 1)).astype(np.uint8)
    w[0] = zp_w
    bias = rng.integers(-20000, 400000, channels).astype(np.int32)
    bias[0] = 340861
    x = np.full((1, 1, 1, 1), 200, np.uint8)
    model = single_op_model(
        BuiltinOperator.CONV_2D,
        [T(x, quant=quant(s_in, zp_in)), T(w, quant=quant(s_w, zp_w), const=True),
         T(bias, quant=quant(s_in * s_w, 0), const=True)],
        [T(None, np.uint8, shape=(1, 1, 1, channels), quant=quant(s_out, zp_out))],
        Conv2DOptions(padding=Padding.VALID, stride_w=1, stride_h=1),
    )
    got = run_litert(model, [x])[0].ravel()
    acc = (200 - zp_in) * (w.ravel().astype(np.int64) - zp_w) + bias
    m, s = Q.conv_output_multipliers(s_in, [s_w], s_out, np.uint8)
    want = np.clip(R.multiply_by_quantized_multiplier(acc, m, s) + zp_out, 0, 255)
    np.testing.assert_array_equal(got, want)
    assert got[0] == 249
    m8, s8 = Q.conv_output_multipliers(s_in, [s_w], s_out, np.int8)
    assert R.multiply_by_quantized_multiplier(340861, m8, s8) == 248
