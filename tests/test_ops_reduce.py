"""MEAN, SOFTMAX and ARG_MAX against LiteRT's reference kernels, both backends; and the
fixed-point pieces of quantized SOFTMAX and MEAN on their own.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from oracle import T, check_op, quant, run_ours_op
from pydeeplab.errors import ModelError
from pydeeplab.kernels import reduce as kern
from pydeeplab.ops.reduce import mean_multiplier, reduction_layout, softmax_params
from pydeeplab.reference import reduce as ref
from pydeeplab.tflite.options import ArgMaxOptions, ArgMinOptions, ReducerOptions, SoftmaxOptions
from pydeeplab.tflite.schema import BuiltinOperator, TensorType

B = BuiltinOperator
RANGES = {np.uint8: (0, 256), np.int8: (-128, 128)}


def _ints(rng, dtype, shape):
    lo, hi = RANGES[dtype]
    return rng.integers(lo, hi, shape).astype(dtype)


# -- MEAN --------------------------------------------------------------------------------------

#: (input shape, axes)
MEAN_CASES = [
    ((1, 7, 9, 5), [1, 2]),  # spatial mean of NHWC, as DeepLab's image pooling
    ((2, 6, 5, 4), [2, 1]),
    ((2, 3, 4, 6), [3]),
    ((2, 3, 4, 6), [-1, 3]),  # duplicate through a negative axis
    ((3, 4, 5, 2), [0, 3]),  # not adjacent: the kernel transposes
    ((4, 6), [0]),
    ((5, 33), [0, 1]),
]


@pytest.mark.parametrize("keep_dims", [True, False], ids=["keep", "drop"])
@pytest.mark.parametrize("case", range(len(MEAN_CASES)))
def test_mean_float(case, keep_dims):
    shape, axes = MEAN_CASES[case]
    x = (np.random.default_rng(case).standard_normal(shape) * 5 + 2).astype(np.float32)
    check_op(B.MEAN, [T(x), T(np.array(axes, np.int32), const=True)], [T(None)], ReducerOptions(keep_dims))


@pytest.mark.parametrize("dtype", list(RANGES), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("scales", ["same", "different"])
@pytest.mark.parametrize("keep_dims", [True, False], ids=["keep", "drop"])
@pytest.mark.parametrize("case", range(len(MEAN_CASES)))
def test_mean_quantized(case, keep_dims, scales, dtype):
    shape, axes = MEAN_CASES[case]
    rng = np.random.default_rng(10 + case)
    lo, hi = RANGES[dtype]
    q_in = quant(float(rng.uniform(0.01, 0.3)), int(rng.integers(lo, hi)))
    q_out = q_in if scales == "same" else quant(float(rng.uniform(0.01, 0.3)), int(rng.integers(lo, hi)))
    check_op(B.MEAN, [T(_ints(rng, dtype, shape), quant=q_in), T(np.array(axes, np.int32), const=True)],
             [T(None, dtype, quant=q_out)], ReducerOptions(keep_dims))


@pytest.mark.parametrize("dtype", list(RANGES), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("s_in, s_out", [(0.5, 0.01), (0.001, 2.0), (3.0, 1e-4)])
def test_mean_quantized_extreme_scales_large_map(dtype, s_in, s_out):
    # 65x65 = 4225 elements per mean (the multiplier's folded shift is capped), rescaled
    # up and down by large factors (saturating at the type's range).
    rng = np.random.default_rng(4)
    lo, hi = RANGES[dtype]
    check_op(B.MEAN, [T(_ints(rng, dtype, (1, 65, 65, 8)), quant=quant(s_in, lo + 100)),
                      T(np.array([1, 2], np.int32), const=True)],
             [T(None, dtype, quant=quant(s_out, lo + 7))], ReducerOptions(True))


def test_mean_int32():
    x = np.random.default_rng(5).integers(-1000, 1000, (2, 5, 7, 3)).astype(np.int32)
    check_op(B.MEAN, [T(x), T(np.array([1, 2], np.int32), const=True)], [T(None, np.int32)], ReducerOptions(False))


def test_mean_multiplier_folds_the_count():
    # real 1.0 -> (2**30, 1); mean of 4225: k = 12, multiplier (2**30 << 12) // 4225, shift 1 - 12
    assert mean_multiplier(0.5, 0.5, 4225) == ((2**30 << 12) // 4225, -11)
    assert mean_multiplier(0.5, 0.5, 1) == (2**30, 1)
    # the fold is capped so that the final shift stays >= -31
    m, s = mean_multiplier(1e-9, 1.0, 2**20)
    assert s >= -31 and 0 <= m < 2**31


def test_reduction_layout():
    assert reduction_layout((2, 3, 4, 5), (1, 2)) == (None, (2, 12, 5))
    assert reduction_layout((2, 3, 4, 5), (3,)) == (None, (24, 5, 1))
    assert reduction_layout((2, 3, 4, 5), (0, 2)) == ((1, 3, 0, 2), (15, 8, 1))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_mean_rejects_bad_axes(backend):
    x = T(np.zeros((1, 4, 4, 2), np.float32))
    with pytest.raises(ModelError, match="out of range"):
        run_ours_op(B.MEAN, [x, T(np.array([4], np.int32), const=True)], [T(None, shape=(1, 4, 4))],
                    ReducerOptions(False), backend)
    with pytest.raises(ModelError, match="must be a constant"):
        run_ours_op(B.MEAN, [x, T(np.array([1], np.int32))], [T(None, shape=(1, 4, 2))], ReducerOptions(False), backend)


# -- SOFTMAX -----------------------------------------------------------------------------------

SOFTMAX_SHAPES = [(3, 10), (2, 5, 4, 21)]


@pytest.mark.parametrize("beta", [1.0, 0.5])
@pytest.mark.parametrize("shape", SOFTMAX_SHAPES, ids=["2d", "4d"])
def test_softmax_float(shape, beta):
    x = (np.random.default_rng(6).standard_normal(shape) * 4).astype(np.float32)
    check_op(B.SOFTMAX, [T(x)], [T(None)], SoftmaxOptions(beta))


@pytest.mark.parametrize("dtype", list(RANGES), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("beta", [1.0, 0.5])
@pytest.mark.parametrize("scale", [0.004, 0.05, 0.3, 2.0])
@pytest.mark.parametrize("shape", SOFTMAX_SHAPES, ids=["2d", "4d"])
def test_softmax_quantized(shape, scale, beta, dtype):
    rng = np.random.default_rng(7)
    lo, hi = RANGES[dtype]
    q_out = quant(1 / 256, -128 if dtype == np.int8 else 0)
    check_op(B.SOFTMAX, [T(_ints(rng, dtype, shape), quant=quant(scale, int(rng.integers(lo, hi))))],
             [T(None, dtype, quant=q_out)], SoftmaxOptions(beta))


@pytest.mark.parametrize("dtype", list(RANGES), ids=lambda d: np.dtype(d).name)
def test_softmax_quantized_to_int16(dtype):
    rng = np.random.default_rng(8)
    check_op(B.SOFTMAX, [T(_ints(rng, dtype, (4, 21)), quant=quant(0.1, 3))],
             [T(None, np.int16, quant=quant(1 / 32768, 0))], SoftmaxOptions(1.0))


def test_softmax_quantized_extremes():
    # A row with one huge value (all others exp to 0), a constant row (all equal), large beta.
    x = np.zeros((3, 16), np.uint8)
    x[0, 5] = 255
    x[1] = 77
    x[2] = np.arange(0, 256, 16)
    for beta in (1.0, 20.0):
        check_op(B.SOFTMAX, [T(x, quant=quant(0.5, 0))], [T(None, np.uint8, quant=quant(1 / 256, 0))],
                 SoftmaxOptions(beta))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_softmax_int8_output_must_be_1_over_256(backend):
    x = T(np.zeros((2, 4), np.int8), quant=quant(0.1, 0))
    with pytest.raises(ModelError, match="1/256"):
        run_ours_op(B.SOFTMAX, [x], [T(None, np.int8, (2, 4), quant(1 / 128, -128))], SoftmaxOptions(1.0), backend)


def test_softmax_params():
    # beta * scale * 2**26 = 2**26 * 0.5 -> multiplier 2**30, left shift 26; radius 31 * 2**26 / 2**26
    assert softmax_params(1.0, 0.5) == (2**30, 26, -31)
    with pytest.raises(ValueError):
        softmax_params(1e-9, 1e-9)


# -- the fixed-point pieces, both twins ---------------------------------------------------------

def _q(x: float, integer_bits: int) -> int:
    return int(round(x * 2.0 ** (31 - integer_bits)))


def test_exp_on_negative_values():
    xs = np.concatenate([-np.logspace(-9, math.log10(31.9), 400), [0.0, -0.25, -0.125, -1.0, -16.0]])
    raw = np.array([_q(v, 5) for v in xs], np.int64)
    got = ref.exp_on_negative_values(raw, 5)
    assert got[xs == 0.0][0] == 2**31 - 1  # exp(0) is the largest Q0.31 value
    np.testing.assert_allclose(got / 2.0**31, np.exp(raw / 2.0**26), atol=1e-6)  # gemmlowp: ~2e-7
    assert [kern.exp_on_negative_values(int(r), 5) for r in raw] == got.tolist()


def test_one_over_one_plus_x_and_reciprocal():
    raw = np.concatenate([np.linspace(0, 2**31 - 1, 300).astype(np.int64), [0, 1, 2**30, 2**31 - 1]])
    got = ref.one_over_one_plus_x_for_x_in_0_1(raw)
    np.testing.assert_allclose(got / 2.0**31, 1 / (1 + raw / 2.0**31), atol=3e-9)
    assert [kern.one_over_one_plus_x_for_x_in_0_1(int(r)) for r in raw] == got.tolist()
    # GetReciprocal of sums in Q12.19: 1/x = result * 2**-num_bits_over_unit
    sums = np.array([2**19, 2**19 + 1, 3 * 2**19, 21 * 2**19 - 12345, 2**31 - 1], np.int64)
    recip, bits = ref.get_reciprocal(sums, 12)
    np.testing.assert_allclose(recip / 2.0**31 * 2.0**-bits, 2.0**19 / sums, rtol=1e-8)
    assert [kern.get_reciprocal(int(s), 12) for s in sums] == list(zip(recip.tolist(), bits.tolist()))


def test_saturating_rounding_multiply_by_pot():
    x = np.array([0, 1, -1, 2**29 - 1, 2**29, -(2**29) + 1, -(2**29), 2**31 - 1, -(2**31), 5, -5, 6, -6], np.int64)
    up = ref.saturating_rounding_multiply_by_pot(x, 2)
    assert up.tolist() == [0, 4, -4, 2**31 - 4, 2**31 - 1, -(2**31) + 4, -(2**31), 2**31 - 1, -(2**31),
                           20, -20, 24, -24]
    down = ref.saturating_rounding_multiply_by_pot(x[-4:], -2)  # 5/4, -5/4, 6/4 (tie), -6/4 (tie)
    assert down.tolist() == [1, -1, 2, -2]
    for e in (2, -2, 1):
        assert [kern.saturating_rounding_multiply_by_pot(int(v), e) for v in x] == \
            ref.saturating_rounding_multiply_by_pot(x, e).tolist()


# -- ARG_MAX -----------------------------------------------------------------------------------

ARG_MAX_CASES = [((2, 5, 6, 7), 3), ((2, 5, 6, 7), -1), ((2, 5, 6, 7), 1), ((3, 4, 9), 0), ((6, 10), 1)]


@pytest.mark.parametrize("out_type", [TensorType.INT32, TensorType.INT64], ids=["int32", "int64"])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int8], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", range(len(ARG_MAX_CASES)))
def test_arg_max(case, dtype, out_type):
    shape, axis = ARG_MAX_CASES[case]
    rng = np.random.default_rng(20 + case)
    # Few distinct values, so that most rows have ties (TFLite keeps the lowest index).
    x = rng.integers(-2, 3, shape)
    if dtype == np.uint8:
        x = x + 2
    x = T(x.astype(dtype)) if dtype == np.float32 else T(x.astype(dtype), quant=quant(0.1, 1))
    odt = np.int32 if out_type == TensorType.INT32 else np.int64
    check_op(B.ARG_MAX, [x, T(np.array([axis], np.int32), const=True)], [T(None, odt)], ArgMaxOptions(out_type))


def test_arg_max_deeplab_uint8():
    # The quantized DeepLab's labels: ARG_MAX over the class axis of 513x513x21 uint8 logits,
    # axis as a 0-d int32 constant, int64 output.
    x = np.random.default_rng(9).integers(0, 256, (1, 513, 513, 21)).astype(np.uint8)
    check_op(B.ARG_MAX, [T(x, quant=quant(0.2, 36)), T(np.array(3, np.int32), const=True)],
             [T(None, np.int64)], ArgMaxOptions(TensorType.INT64))


def test_arg_max_nan_and_int64_axis():
    # NaN is never the maximum (TFLite's NaN-aware comparison). Checked on a non-trailing
    # axis: LiteRT's x86 build takes a vectorized path for a float last axis of 4 or more
    # elements whose NaN handling differs (see pydeeplab/reference/reduce.py).
    rng = np.random.default_rng(11)
    x = rng.integers(-2, 2, (3, 6, 5)).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = np.nan
    x[0, :, 0] = np.nan  # an all-NaN slice gives 0
    check_op(B.ARG_MAX, [T(x), T(np.array([1], np.int64), const=True)], [T(None, np.int32)],
             ArgMaxOptions(TensorType.INT32))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_arg_max_rejects_bad_output_type(backend):
    x = T(np.zeros((2, 3), np.float32))
    axis = T(np.array([1], np.int32), const=True)
    with pytest.raises(ModelError, match="output_type"):
        run_ours_op(B.ARG_MAX, [x, axis], [T(None, np.float32, (2,))], ArgMaxOptions(TensorType.FLOAT32), backend)
    with pytest.raises(ModelError, match="differs from output_type"):
        run_ours_op(B.ARG_MAX, [x, axis], [T(None, np.int32, (2,))], ArgMaxOptions(TensorType.INT64), backend)


# -- ARG_MIN, REDUCE_MIN -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int8, np.int32], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", range(len(ARG_MAX_CASES)))
def test_arg_min(case, dtype):
    """The first index of the smallest value (ties: few distinct values), int32 and int64 output."""
    shape, axis = ARG_MAX_CASES[case]
    x = np.random.default_rng(40 + case).integers(0, 4, shape).astype(dtype)
    x = T(x, quant=quant(0.1, 1)) if dtype in (np.uint8, np.int8) else T(x)
    for out_type, odt in ((TensorType.INT32, np.int32), (TensorType.INT64, np.int64)):
        check_op(B.ARG_MIN, [x, T(np.array([axis], np.int32), const=True)], [T(None, odt)], ArgMinOptions(out_type))


def test_arg_min_nan():
    """NaN is never the minimum; an all-NaN slice gives 0 (a non-trailing axis, as for ARG_MAX)."""
    rng = np.random.default_rng(12)
    x = rng.integers(-2, 2, (3, 6, 5)).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = np.nan
    x[0, :, 0] = np.nan
    check_op(B.ARG_MIN, [T(x), T(np.array([1], np.int64), const=True)], [T(None, np.int32)],
             ArgMinOptions(TensorType.INT32))


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int8, np.int16, np.int32, np.int64, np.bool_],
                         ids=lambda d: np.dtype(d).name)
def test_reduce_min(dtype):
    """REDUCE_MIN over one and several axes, keep_dims or not; NaN never wins; quantized values compare raw."""
    rng = np.random.default_rng(13)
    shape = (2, 3, 4, 5)
    if dtype == np.bool_:
        x = T(rng.random(shape) < 0.8)
    elif dtype == np.float32:
        v = rng.standard_normal(shape).astype(np.float32)
        v[rng.random(shape) < 0.2] = np.nan
        x = T(v)
    else:
        info = np.iinfo(dtype)
        v = rng.integers(max(info.min, -1000), min(info.max, 1000) + 1, shape).astype(dtype)
        x = T(v, quant=quant(0.1, 0 if dtype == np.int16 else 3)) if dtype in (np.uint8, np.int8, np.int16) else T(v)
    for axes, keep in (([1], False), ([1, 3], True), ([0, 1, 2, 3], False), ([-1], True)):
        check_op(B.REDUCE_MIN, [x, T(np.array(axes, np.int32), const=True)], [T(None, dtype, quant=x.quant)],
                 ReducerOptions(keep))


@pytest.mark.parametrize("opcode", [B.REDUCE_MIN, B.REDUCE_MAX], ids=lambda o: o.name)
def test_int16_min_max_need_zero_point_0(opcode):
    """LiteRT refuses a quantized int16 REDUCE_MIN / REDUCE_MAX with another zero point; so does pydeeplab."""
    from oracle import run_litert, single_op_model

    x = T(np.zeros((2, 3), np.int16), quant=quant(0.1, 3))
    args = ([x, T(np.array([1], np.int32), const=True)], [T(None, np.int16, (2,), quant(0.1, 3))], ReducerOptions(False))
    with pytest.raises(RuntimeError, match="zero_point"):
        run_litert(single_op_model(opcode, *args), [x.value])
    with pytest.raises(ModelError, match="zero point 0"):
        run_ours_op(opcode, *args, "numpy")
