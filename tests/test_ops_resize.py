"""RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR against LiteRT's reference kernels, both backends.

Up and down, integer and non-integer ratios, every flag combination TFLite
accepts, batch 2; float32 within tolerance, uint8 (TFLite's float formula) and
int8 (its integer formula) bit-identical, including DeepLab's logit upsampling.
"""

from __future__ import annotations

import numpy as np
import pytest

from oracle import T, check_op, quant, run_litert, run_ours_op, single_op_model
from pydeeplab.errors import ModelError
from pydeeplab.ops.resize import bilinear_taps_integer
from pydeeplab.tflite.options import ResizeBilinearOptions, ResizeNearestNeighborOptions
from pydeeplab.tflite.schema import BuiltinOperator

B = BuiltinOperator

#: (input shape, output size)
SIZES = [
    ((1, 5, 7, 3), (12, 17)),  # up, non-integer ratios
    ((2, 4, 4, 2), (8, 8)),  # up x2, batch 2
    ((1, 13, 11, 3), (5, 4)),  # down, non-integer ratios
    ((2, 9, 6, 2), (3, 6)),  # down x3 / same width
    ((1, 1, 1, 5), (7, 9)),  # one pixel, as DeepLab's image pooling branch
    ((1, 6, 5, 2), (1, 1)),  # to one pixel
    ((1, 4, 6, 3), (4, 6)),  # same size (DeepLab's 33 -> 33): a copy for uint8 and int8
]
BILINEAR_FLAGS = [(False, False), (True, False), (False, True)]  # (align_corners, half_pixel_centers)
NEAREST_FLAGS = BILINEAR_FLAGS + [(True, True)]


def _data(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    if dtype == np.float32:
        return T((rng.standard_normal(shape) * 4).astype(np.float32)), T(None)
    info = np.iinfo(dtype)
    q = quant(0.07, 5 if dtype == np.int8 else 130)
    return T(rng.integers(info.min, int(info.max) + 1, shape).astype(dtype), quant=q), T(None, dtype, quant=q)


def _size(hw) -> T:
    return T(np.array(hw, np.int32), const=True)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int8], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("flags", BILINEAR_FLAGS, ids=["plain", "align_corners", "half_pixel"])
@pytest.mark.parametrize("case", range(len(SIZES)))
def test_resize_bilinear(dtype, flags, case):
    shape, hw = SIZES[case]
    x, out = _data(dtype, shape, case)
    check_op(B.RESIZE_BILINEAR, [x, _size(hw)], [out], ResizeBilinearOptions(0, 0, *flags))


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int8, np.int32], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("flags", NEAREST_FLAGS, ids=["plain", "align_corners", "half_pixel", "both"])
@pytest.mark.parametrize("case", range(len(SIZES)))
def test_resize_nearest_neighbor(dtype, flags, case):
    shape, hw = SIZES[case]
    if dtype == np.int32:
        x, out = T(np.arange(np.prod(shape), dtype=np.int32).reshape(shape)), T(None, np.int32)
    else:
        x, out = _data(dtype, shape, case)
    check_op(B.RESIZE_NEAREST_NEIGHBOR, [x, _size(hw)], [out], ResizeNearestNeighborOptions(*flags))


@pytest.mark.parametrize("half_pixel", [False, True])
@pytest.mark.parametrize("hw", [(32, 32), (31, 17), (8, 8), (5, 3)])
def test_resize_bilinear_int8_rounding_ties(half_pixel, hw):
    # Every int8 value, resized by ratios whose weights make exact halves: ties of both signs.
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 16, 16, 1)
    q = quant(0.1, 0)
    check_op(B.RESIZE_BILINEAR, [T(x, quant=q), _size(hw)], [T(None, np.int8, quant=q)],
             ResizeBilinearOptions(0, 0, False, half_pixel))


def test_resize_bilinear_deeplab_logits_float():
    # The float DeepLab's final upsampling: 33x33x21 -> 257x257x21, align_corners.
    x = (np.random.default_rng(1).standard_normal((1, 33, 33, 21)) * 10).astype(np.float32)
    check_op(B.RESIZE_BILINEAR, [T(x), _size((257, 257))], [T(None)], ResizeBilinearOptions(0, 0, True, False))


@pytest.mark.parametrize("shape", [(1, 33, 33, 21), (1, 65, 65, 21)])
def test_resize_bilinear_deeplab_logits_uint8(shape):
    # The quantized DeepLab's final upsampling to 513x513 (uint8 takes TFLite's float formula).
    q = quant(0.2014983743429184, 36)
    x = np.random.default_rng(2).integers(0, 256, shape).astype(np.uint8)
    check_op(B.RESIZE_BILINEAR, [T(x, quant=q), _size((513, 513))], [T(None, np.uint8, quant=q)],
             ResizeBilinearOptions(0, 0, True, False))


def test_resize_bilinear_int8_past_the_edge():
    # 2 -> 77 rows without align_corners: TFLite's rounded integer scale puts the last
    # output row's lower tap at row 2 of 2, read past the end (undefined). We clamp it;
    # every row that stays inside the input must still match bit for bit.
    q = quant(0.1, 0)
    x = np.random.default_rng(3).integers(-128, 128, (1, 2, 6, 3)).astype(np.int8)
    inputs, outputs = [T(x, quant=q), _size((77, 9))], [T(None, np.int8, quant=q)]
    opts = ResizeBilinearOptions(0, 0, False, False)
    (ref,) = run_litert(single_op_model(B.RESIZE_BILINEAR, inputs, outputs, opts), [x])
    scale_10 = (1024 * 2 + 77 // 2) // 77
    inside = np.arange(77) * scale_10 // 1024 <= 1
    assert not inside.all()
    results = [run_ours_op(B.RESIZE_BILINEAR, inputs, [T(None, np.int8, ref.shape, q)], opts, b)[0]
               for b in ("numpy", "numba")]
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0][:, inside], ref[:, inside])
    taps = bilinear_taps_integer(2, 77, False, False)
    assert taps.lo.max() == 1 and taps.hi.max() == 1


@pytest.mark.parametrize("flags", BILINEAR_FLAGS, ids=["plain", "align_corners", "half_pixel"])
def test_resize_bilinear_int16(flags):
    """int16 (TFLite's integer formula, blended in int64) over the full int16 range, up and down."""
    q = quant(0.001, 0)
    for k, (shape, hw) in enumerate(SIZES[:4]):
        x = np.random.default_rng(k).integers(-(2**15), 2**15, shape).astype(np.int16)
        check_op(B.RESIZE_BILINEAR, [T(x, quant=q), _size(hw)], [T(None, np.int16, quant=q)],
                 ResizeBilinearOptions(0, 0, *flags))


def test_resize_bilinear_int16_huge_upscale_column_weights():
    """Where a column blend could pass int32 (int16 values, weights past 2**15: 33 -> 67,000 columns
    without align_corners, TFLite's integer scale rounded from 0.504 up to 1/1024 overshooting the
    last column), the numba backend takes the NumPy formula: both backends agree, and match LiteRT
    where the taps stay inside the row."""
    q = quant(0.001, 0)
    x = np.random.default_rng(8).integers(-(2**15), 2**15, (1, 1, 33, 1)).astype(np.int16)
    inputs, opts = [T(x, quant=q), _size((1, 67000))], ResizeBilinearOptions(0, 0, False, False)
    taps = bilinear_taps_integer(33, 67000, False, False)
    assert (np.abs(taps.w_lo) + np.abs(taps.w_hi)).max() >= 2**16
    results = [run_ours_op(B.RESIZE_BILINEAR, inputs, [T(None, np.int16, (1, 1, 67000, 1), q)], opts, b)[0]
               for b in ("numpy", "numba")]
    np.testing.assert_array_equal(results[0], results[1])
    (ref,) = run_litert(single_op_model(B.RESIZE_BILINEAR, inputs, [T(None, np.int16, quant=q)], opts), [x])
    inside = np.arange(67000) // 1024 < 32
    np.testing.assert_array_equal(results[0][:, :, inside], ref[:, :, inside])


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_resize_bilinear_rejects_align_corners_with_half_pixel(backend):
    x = np.zeros((1, 4, 4, 1), np.float32)
    inputs, opts = [T(x), _size((8, 8))], ResizeBilinearOptions(0, 0, True, True)
    with pytest.raises(Exception):  # LiteRT refuses the model in Prepare
        run_litert(single_op_model(B.RESIZE_BILINEAR, inputs, [T(None, shape=(1, 8, 8, 1))], opts), [x])
    with pytest.raises(ModelError, match="align_corners and half_pixel_centers"):
        run_ours_op(B.RESIZE_BILINEAR, inputs, [T(None, shape=(1, 8, 8, 1))], opts, backend)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("op, opts", [(B.RESIZE_BILINEAR, ResizeBilinearOptions()),
                                      (B.RESIZE_NEAREST_NEIGHBOR, ResizeNearestNeighborOptions())],
                         ids=["bilinear", "nearest"])
@pytest.mark.parametrize("size, message", [
    (T(np.array([8, 8], np.int32)), "must be a constant"),
    (T(np.array([8, 0], np.int32), const=True), "must be positive"),
    (T(np.array([8, 8, 1], np.int32), const=True), r"shape \(2,\)"),
    (T(np.array([8, 8], np.int64), const=True), "int32"),
], ids=["variable", "zero", "three", "int64"])
def test_resize_rejects_bad_sizes(backend, op, opts, size, message):
    x = np.zeros((1, 4, 4, 1), np.float32)
    with pytest.raises(ModelError, match=message):
        run_ours_op(op, [T(x), size], [T(None, shape=(1, 8, 8, 1))], opts, backend)
