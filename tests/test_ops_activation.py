"""RELU, RELU6, RELU_N1_TO_1, LOGISTIC, TANH, HARD_SWISH against LiteRT's reference kernels.

Float within the contract tolerance; uint8 / int8 bit-identical on every input
value (each quantized test feeds all 256 values) with varied scales and zero points.
"""

from __future__ import annotations

import numpy as np
import pytest
from oracle import T, check_op, quant, run_ours_op

from pydeeplab.errors import ModelError
from pydeeplab.tflite.options import GeluOptions
from pydeeplab.tflite.schema import BuiltinOperator

B = BuiltinOperator
ALL = [B.RELU, B.RELU6, B.RELU_N1_TO_1, B.LOGISTIC, B.TANH, B.HARD_SWISH]


@pytest.mark.parametrize("opcode", ALL, ids=lambda o: o.name)
def test_float(opcode):
    rng = np.random.default_rng(10)
    x = (rng.standard_normal((2, 7, 9, 5)) * 6).astype(np.float32)
    # Cover the logistic cut-offs and large magnitudes too.
    x.flat[:8] = [-120.0, -9.5, -9.0, -0.0, 16.5, 16.7, 90.0, 3.0]
    check_op(opcode, [T(x)], [T(None, np.float32)])


def _all_values(dtype):
    return np.arange(256, dtype=np.uint8).view(dtype).reshape(1, 16, 16)


def _cases(rng, dtype, n):
    info = np.iinfo(dtype)
    for _ in range(n):
        yield (float(rng.uniform(0.003, 0.15)), int(rng.integers(info.min, info.max + 1)),
               float(rng.uniform(0.003, 0.15)), int(rng.integers(info.min, info.max + 1)))


@pytest.mark.parametrize("opcode", [B.RELU, B.RELU6, B.RELU_N1_TO_1, B.TANH, B.HARD_SWISH], ids=lambda o: o.name)
@pytest.mark.parametrize("dtype", [np.uint8, np.int8], ids=["uint8", "int8"])
def test_quantized(opcode, dtype):
    rng = np.random.default_rng(11)
    x = _all_values(dtype)
    cases = list(_cases(rng, dtype, 6))
    info = np.iinfo(dtype)
    # Equal scales (multiplier exactly 1), a large ratio, and the typical TANH output scale.
    cases += [(0.05, int(info.min) + 10, 0.05, int(info.min) + 10), (0.2, 3, 0.004, -1 - int(info.min) // 2),
              (0.03, 0, 1.0 / 128, 0 if dtype == np.int8 else 128),
              (0.002, 7, 0.0015, 9 + int(info.min) // 4), (0.9, 125 + int(info.min), 0.5, 1 + int(info.min))]
    for s_in, z_in, s_out, z_out in cases:
        check_op(opcode, [T(x, quant=quant(s_in, z_in))], [T(None, dtype, quant=quant(s_out, z_out))])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8], ids=["uint8", "int8"])
def test_quantized_logistic(dtype):
    rng = np.random.default_rng(12)
    x = _all_values(dtype)
    z_out = 0 if dtype == np.uint8 else -128
    for s_in, z_in, _, _ in _cases(rng, dtype, 8):
        check_op(B.LOGISTIC, [T(x, quant=quant(s_in, z_in))], [T(None, dtype, quant=quant(1.0 / 256, z_out))])


def test_tanh_table_needs_libm_tanhf():
    """Scales where NumPy's float32 tanh and glibc's tanhf differ by one ulp at an entry
    where that flips the rounding: TFLite's table uses tanhf (``std::tanh`` on float)."""
    for dtype, s_in, z_in, s_out, z_out in [(np.int8, 0.09779, 72, 0.007968, 113),
                                            (np.uint8, 0.05228, 231, 0.017851, 125)]:
        x = _all_values(dtype)
        check_op(B.TANH, [T(x, quant=quant(s_in, z_in))], [T(None, dtype, quant=quant(s_out, z_out))])


def test_quantized_big_tensor():
    rng = np.random.default_rng(13)
    x = rng.integers(0, 256, size=(1, 33, 33, 32)).astype(np.uint8)
    check_op(B.RELU6, [T(x, quant=quant(0.07, 100))], [T(None, np.uint8, quant=quant(6 / 255, 0))])
    check_op(B.HARD_SWISH, [T(x.view(np.int8), quant=quant(0.07, -5))], [T(None, np.int8, quant=quant(0.05, -30))])


def test_errors():
    x = T(np.zeros((4,), np.uint8), quant=quant(0.1, 0))
    with pytest.raises(ModelError, match="1/256"):
        run_ours_op(B.LOGISTIC, [x], [T(None, np.uint8, (4,), quant(0.01, 0))], None, "numpy")
    with pytest.raises(ModelError, match="differs"):
        run_ours_op(B.RELU, [x], [T(None, np.int8, (4,), quant(0.1, 0))], None, "numpy")
    with pytest.raises(ModelError, match="not supported"):
        run_ours_op(B.TANH, [T(np.zeros((4,), np.int32))], [T(None, np.int32, (4,))], None, "numpy")


def test_float_logistic_backends_agree_bit_for_bit():
    """The numba backend's LOGISTIC (two kernel passes around NumPy's exp) gives the reference's
    bits: both cut-offs and their neighbours, the clamped exp arguments, infinities and NaN."""
    x = np.float32([np.nan, np.inf, -np.inf, -0.0, 0.0, 16.6190, 16.6191, 16.63, 16.7, 17.5, -9.0, -9.0001,
                    -8.9999, -87.32, -87.33, -87.34, -103.0, -120.0, 88.0, 89.0, 3.0, -3.0])
    x = np.concatenate([x, np.linspace(-100, 100, 1001, dtype=np.float32)]).reshape(1, 1, -1, 1)
    numpy_out, numba_out = (run_ours_op(B.LOGISTIC, [T(x)], [T(None, np.float32, x.shape)], None, backend)[0]
                            for backend in ("numpy", "numba"))
    np.testing.assert_array_equal(numba_out, numpy_out)


@pytest.mark.parametrize("opcode", [BuiltinOperator.RELU, BuiltinOperator.RELU6])
def test_relu_with_an_output_scale_far_too_small_is_refused(opcode):
    """An int8 RELU whose output scale is 1e-30 (a damaged model; the differential fuzzer's): the
    requantizing multiplier needs a left shift of about 100 bits, undefined in TFLite's int32
    arithmetic (LiteRT's bytes are the compiler's); refused on both backends, saying so."""
    x = T(np.arange(-128, 128, dtype=np.int8).reshape(1, 16, 16, 1), quant=quant(0.05, 3))
    for backend in ("numpy", "numba"):
        with pytest.raises(ModelError, match="needs a left shift of [0-9]+ bits; TFLite shifts an int32"):
            run_ours_op(opcode, [x], [T(None, np.int8, (1, 16, 16, 1), quant(1e-30, 13))], None, backend)


@pytest.mark.parametrize("approximate", [False, True], ids=["erfc", "tanh"])
def test_gelu(approximate):
    """GELU (transformer segmenters' MLPs): float within the contract, from -40 to 40 (erfc's far
    tails, where 1 + erf cancels); uint8 / int8 on all 256 inputs bit-identical with TFLite's table
    over 40 random scale sets each (its float ``erfcf`` / ``tanhf``)."""
    rng = np.random.default_rng(14)
    x = (rng.standard_normal((2, 7, 9, 5)) * 3).astype(np.float32)
    x.flat[:8] = [-40.0, -12.0, -5.5, -0.0, 1e-8, 5.5, 12.0, 40.0]
    options = GeluOptions(approximate)
    check_op(B.GELU, [T(x)], [T(None, np.float32)], options)
    for dtype in (np.uint8, np.int8):
        info = np.iinfo(dtype)
        cases = list(_cases(rng, dtype, 40)) + [(0.05, int(info.min) + 128, 0.03, int(info.min) + 20),
                                                (0.1, int(info.min) + 200, 0.01, int(info.min) + 60)]
        for s_in, z_in, s_out, z_out in cases:
            check_op(B.GELU, [T(_all_values(dtype), quant=quant(s_in, z_in))],
                     [T(None, dtype, quant=quant(s_out, z_out))], options)


def test_erfc_is_within_float_precision():
    import math

    from pydeeplab.reference.activation import erfc

    z = np.linspace(-9, 9, 20001)
    exact = np.array([math.erfc(v) for v in z])
    assert np.max(np.abs(erfc(z) - exact) / exact) < 1.5e-7
