"""AVERAGE_POOL_2D and MAX_POOL_2D against LiteRT's reference kernels, both backends.

float32 within the contract tolerance, uint8/int8 bit-identical: filter sizes 1, 2,
3 and global, strides 1 and 2, SAME and VALID, every fused activation, batch 2,
windows clamped at the borders, and the integer average's rounding of ties.
"""

from __future__ import annotations

import numpy as np
import pytest

from oracle import T, check_op, quant, run_ours_op
from pydeeplab.errors import ModelError
from pydeeplab.tflite.options import Pool2DOptions
from pydeeplab.tflite.schema import Activation, BuiltinOperator, Padding

B = BuiltinOperator
POOLS = (B.AVERAGE_POOL_2D, B.MAX_POOL_2D)

#: (input shape, (filter h, w), (stride h, w), padding, activation)
CASES = [
    ((1, 9, 9, 3), (1, 1), (1, 1), Padding.VALID, Activation.NONE),
    ((2, 9, 10, 4), (2, 2), (2, 2), Padding.SAME, Activation.RELU),
    ((1, 8, 7, 5), (3, 3), (1, 1), Padding.SAME, Activation.RELU6),
    ((2, 11, 11, 3), (3, 2), (2, 1), Padding.VALID, Activation.RELU_N1_TO_1),
    ((1, 10, 9, 4), (3, 3), (2, 2), Padding.SAME, Activation.NONE),
    ((1, 13, 13, 6), (13, 13), (1, 1), Padding.VALID, Activation.NONE),  # global, as DeepLab's ASPP
    ((2, 7, 5, 3), (7, 5), (7, 5), Padding.SAME, Activation.RELU),  # global, SAME
    ((1, 9, 9, 40), (9, 9), (1, 1), Padding.VALID, Activation.RELU6),  # global, squeeze-and-excite's
    ((1, 70, 70, 4), (70, 70), (1, 1), Padding.VALID, Activation.NONE),  # global, float: NumPy's sums
    ((1, 3, 4, 2), (5, 5), (1, 2), Padding.SAME, Activation.NONE),  # window larger than the input
]

#: dtype -> (value range, a few (scale, zero point) pairs)
QUANT = {
    np.uint8: ((0, 256), [(0.05, 0), (0.1, 128), (0.37, 251)]),
    np.int8: ((-128, 128), [(0.02, -128), (0.1, 0), (0.7, 37)]),
}


def _opts(filt, stride, padding, act) -> Pool2DOptions:
    return Pool2DOptions(padding=padding, stride_w=stride[1], stride_h=stride[0],
                         filter_width=filt[1], filter_height=filt[0], fused_activation_function=act)


@pytest.mark.parametrize("op", POOLS, ids=lambda o: o.name)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_pool_float(op, case):
    shape, filt, stride, padding, act = CASES[case]
    rng = np.random.default_rng(100 + case)
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    check_op(op, [T(x)], [T(None)], _opts(filt, stride, padding, act))


@pytest.mark.parametrize("dtype", list(QUANT), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", POOLS, ids=lambda o: o.name)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_pool_quantized(op, dtype, case):
    shape, filt, stride, padding, act = CASES[case]
    (lo, hi), params = QUANT[dtype]
    scale, zp = params[case % len(params)]
    rng = np.random.default_rng(200 + case)
    x = rng.integers(lo, hi, shape).astype(dtype)
    q = quant(scale, zp)
    check_op(op, [T(x, quant=q)], [T(None, dtype, quant=q)], _opts(filt, stride, padding, act))


@pytest.mark.parametrize("dtype", list(QUANT), ids=lambda d: np.dtype(d).name)
def test_average_pool_rounds_ties_away_from_zero(dtype):
    # Pairs (a, a + odd): every average is an exact .5 tie, of both signs for int8.
    rng = np.random.default_rng(3)
    lo = -128 if dtype == np.int8 else 0
    a = rng.integers(lo, lo + 248, (1, 16, 8, 1))
    x = np.empty((1, 16, 16, 1), np.int64)
    x[:, :, 0::2] = a
    x[:, :, 1::2] = a + rng.choice([1, 3, 5, 7], a.shape)
    x = x.astype(dtype)
    q = quant(0.1, 0)
    refs = check_op(B.AVERAGE_POOL_2D, [T(x, quant=q)], [T(None, dtype, quant=q)],
                    _opts((1, 2), (1, 2), Padding.VALID, Activation.NONE))
    assert refs[0].shape == (1, 16, 8, 1)


def test_global_average_pool_deeplab_uint8():
    # The quantized DeepLab's ASPP image pooling: 33x33x320 uint8, filter 33, VALID.
    rng = np.random.default_rng(7)
    q = quant(0.15980692207813263, 124)
    x = rng.integers(0, 256, (1, 33, 33, 320)).astype(np.uint8)
    check_op(B.AVERAGE_POOL_2D, [T(x, quant=q)], [T(None, np.uint8, quant=q)],
             _opts((33, 33), (1, 1), Padding.VALID, Activation.NONE))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("opts, message", [
    (_opts((5, 5), (1, 1), Padding.VALID, Activation.NONE), "does not fit"),
    (_opts((2, 2), (0, 1), Padding.SAME, Activation.NONE), "must be positive"),
    (_opts((0, 2), (1, 1), Padding.SAME, Activation.NONE), "must be positive"),
])
def test_pool_rejects_bad_windows(backend, opts, message):
    x = np.zeros((1, 4, 4, 2), np.float32)
    with pytest.raises(ModelError, match=message):
        run_ours_op(B.MAX_POOL_2D, [T(x)], [T(None, shape=(1, 1, 1, 2))], opts, backend)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_pool_rejects_type_mismatch(backend):
    x = np.zeros((1, 4, 4, 2), np.uint8)
    with pytest.raises(ModelError, match="differs from input type"):
        run_ours_op(B.AVERAGE_POOL_2D, [T(x, quant=quant(0.1, 0))], [T(None, np.int8, (1, 2, 2, 2), quant(0.1, 0))],
                    _opts((2, 2), (2, 2), Padding.VALID, Activation.NONE), backend)


@pytest.mark.parametrize("shape", [(1, 128, 128, 16), (2, 7, 5, 3), (1, 1, 9, 4), (1, 40, 1, 31)])
def test_global_average_float_few_channels_sums_columns_then_across(shape):
    """The numba backend's global average over few channels adds down each column of the map, then
    across the column sums (kernels/pool.global_average_pool_float): NumPy's sums over those axes
    (sequential, not the last axis) bit for bit, and TFLite's pixel-by-pixel sums (the reference's)
    to float rounding."""
    from pydeeplab.kernels.pool import global_average_pool_float
    from pydeeplab.reference.pool import global_average_pool_2d

    x = (np.random.default_rng(7).standard_normal(shape) * 100).astype(np.float32)
    n, h, w, c = shape
    columns = x.reshape(n, h, w * c).sum(axis=1, dtype=np.float32)
    totals = columns.reshape(n, w, c).sum(axis=1, dtype=np.float32)
    out = np.empty((n, c), np.float32)
    for lo, hi in ((-np.inf, np.inf), (0.0, 6.0)):
        global_average_pool_float(x.reshape(n, h, w * c), c, out, np.float32(lo), np.float32(hi), 0, 1)
        np.testing.assert_array_equal(out, np.clip(totals / np.float32(h * w), np.float32(lo), np.float32(hi)))
        reference = global_average_pool_2d(x, np.float32(lo), np.float32(hi)).reshape(n, c)
        np.testing.assert_allclose(out, reference, rtol=0, atol=1e-5 * (1 + np.abs(reference).max()))


def test_max_pool_passes_nan_by():
    """TFLite's float MAX_POOL is ``std::max(max, value)`` from the lowest float: a NaN is passed by,
    a window of NaNs gives the lowest value (then the activation's clamp). The numpy backend's NumPy
    max gave NaN (found by ``tools/fuzz.py --differential --backend numpy``)."""
    rng = np.random.default_rng(41)
    x = rng.standard_normal((1, 6, 7, 3)).astype(np.float32)
    x[0, :2, :2, 0] = np.nan  # a whole window
    x[0, 3, ::2, 1] = np.nan  # NaNs beside numbers
    for act in (Activation.NONE, Activation.RELU6):
        check_op(BuiltinOperator.MAX_POOL_2D, [T(x)], [T(None, np.float32)],
                 Pool2DOptions(Padding.VALID, 2, 2, 2, 2, act))
