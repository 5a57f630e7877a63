"""Shape operators against LiteRT's reference kernels, on both backends.

CONCATENATION (every axis, 2-4 inputs, uint8 requantization), RESHAPE, SQUEEZE, PAD /
PADV2, SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND, TILE and STRIDED_SLICE (all masks,
negative strides, offset), in float32, uint8 and int8: outputs must be identical.
"""

from __future__ import annotations

import numpy as np
import pytest
from oracle import T, check_op, quant, run_ours_op

from pydeeplab.errors import ModelError
from pydeeplab.tflite.options import ConcatenationOptions, ReshapeOptions, SqueezeOptions, StridedSliceOptions
from pydeeplab.tflite.schema import Activation, BuiltinOperator

B = BuiltinOperator
DTYPES = [np.float32, np.uint8, np.int8]
DTYPE_IDS = ["float32", "uint8", "int8"]


def _tensor(rng, shape, dtype, scale=0.05, zp=None, const=False):
    if dtype == np.float32:
        return T(rng.standard_normal(shape).astype(np.float32), const=const)
    info = np.iinfo(dtype)
    zp = int(info.min) + 100 if zp is None else zp
    value = rng.integers(info.min, info.max + 1, size=shape).astype(dtype)
    return T(value, quant=quant(scale, zp), const=const)


def _out(dtype, scale=0.05, zp=None):
    if dtype == np.float32:
        return T(None, np.float32)
    return T(None, dtype, quant=quant(scale, int(np.iinfo(dtype).min) + 100 if zp is None else zp))


# ------------------------------------------------------------------ CONCATENATION


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -3])
def test_concatenation_axes(dtype, axis):
    rng = np.random.default_rng(20)
    base = [2, 3, 4, 5]
    for n in (2, 3, 4):
        inputs = []
        for k in range(n):
            shape = list(base)
            shape[axis] = k + 1
            inputs.append(_tensor(rng, tuple(shape), dtype, const=(k == 1)))
        check_op(B.CONCATENATION, inputs, [_out(dtype)], ConcatenationOptions(axis=axis))


@pytest.mark.parametrize("axis", [0, 1, 3, -2])
def test_concatenation_uint8_requantizes(axis):
    """Inputs with their own scales and zero points (one equal to the output's: copied)."""
    rng = np.random.default_rng(21)
    params = [(0.05, 100), (0.013, 0), (0.2, 255), (0.0371, 131)]
    shape = [1, 6, 5, 4]
    inputs = []
    for k, (s, z) in enumerate(params):
        sh = list(shape)
        sh[axis] = k + 2
        inputs.append(_tensor(rng, tuple(sh), np.uint8, s, z))
    check_op(B.CONCATENATION, inputs, [_out(np.uint8, 0.05, 100)], ConcatenationOptions(axis=axis))
    # Every uint8 value through a requantizing input.
    every = T(np.arange(256, dtype=np.uint8).reshape(1, 256), quant=quant(0.0123, 77))
    other = _tensor(rng, (1, 3), np.uint8, 0.1, 128)
    check_op(B.CONCATENATION, [every, other], [_out(np.uint8, 0.0456, 13)], ConcatenationOptions(axis=1))


def test_concatenation_errors():
    a = T(np.zeros((1, 2, 3), np.int8), quant=quant(0.1, 0))
    b = T(np.zeros((1, 2, 3), np.int8), quant=quant(0.2, 0))
    with pytest.raises(ModelError, match="does not requantize"):
        run_ours_op(B.CONCATENATION, [a, b], [T(None, np.int8, (1, 4, 3), quant(0.1, 0))],
                    ConcatenationOptions(axis=1), "numpy")
    f = T(np.zeros((1, 2, 3), np.float32))
    with pytest.raises(ModelError, match="does not match"):
        run_ours_op(B.CONCATENATION, [f, T(np.zeros((1, 3, 3), np.float32))], [T(None, np.float32, (1, 5, 3))],
                    ConcatenationOptions(axis=2), "numpy")
    with pytest.raises(ModelError, match="out of range"):
        run_ours_op(B.CONCATENATION, [f, f], [T(None, np.float32, (1, 4, 3))], ConcatenationOptions(axis=3),
                    "numpy")
    with pytest.raises(ModelError, match="fused activation"):
        run_ours_op(B.CONCATENATION, [f, f], [T(None, np.float32, (1, 4, 3))],
                    ConcatenationOptions(axis=1, fused_activation_function=Activation.RELU), "numpy")


# ------------------------------------------------------------- RESHAPE, SQUEEZE


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_reshape(dtype):
    rng = np.random.default_rng(22)
    x = _tensor(rng, (1, 4, 6, 3), dtype)
    for new in [(24, 3), (-1, 6), (1, -1), (2, 2, -1, 3), (72,), (-1,)]:
        shape = T(np.array(new, np.int32), const=True)
        check_op(B.RESHAPE, [x, shape], [_out(dtype)], ReshapeOptions(new_shape=new))
        check_op(B.RESHAPE, [x], [_out(dtype)], ReshapeOptions(new_shape=new))


def test_reshape_errors():
    x = T(np.zeros((2, 3), np.float32))
    with pytest.raises(ModelError, match="more than one -1"):
        run_ours_op(B.RESHAPE, [x], [T(None, np.float32, (6,))], ReshapeOptions(new_shape=(-1, -1)), "numpy")
    with pytest.raises(ModelError, match="cannot reshape"):
        run_ours_op(B.RESHAPE, [x, T(np.array([4, 2], np.int32), const=True)], [T(None, np.float32, (4, 2))],
                    None, "numpy")
    with pytest.raises(ModelError, match="no new shape"):
        run_ours_op(B.RESHAPE, [x], [T(None, np.float32, (6,))], ReshapeOptions(), "numpy")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_squeeze(dtype):
    rng = np.random.default_rng(23)
    x = _tensor(rng, (1, 3, 1, 1, 4), dtype)
    for dims in [None, (0,), (2, 3), (-2,), (0, -3, 2)]:
        check_op(B.SQUEEZE, [x], [_out(dtype)], SqueezeOptions(squeeze_dims=dims))
    with pytest.raises(ModelError, match="cannot squeeze"):
        run_ours_op(B.SQUEEZE, [x], [_out(dtype)], SqueezeOptions(squeeze_dims=(1,)), "numpy")


# ------------------------------------------------------------------------ PAD


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("pad_dtype", [np.int32, np.int64], ids=["int32", "int64"])
def test_pad(dtype, pad_dtype):
    rng = np.random.default_rng(24)
    cases = [
        ((1, 5, 6, 3), [[0, 0], [1, 1], [2, 1], [0, 0]]),
        ((1, 5, 6, 3), [[1, 0], [0, 3], [0, 0], [2, 2]]),
        ((4, 7), [[3, 0], [1, 2]]),
        ((2, 3, 2, 2, 3), [[0, 1], [1, 0], [0, 0], [2, 0], [1, 1]]),
        ((3,), [[0, 0]]),
    ]
    for shape, paddings in cases:
        zp = None if dtype == np.float32 else int(rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max))
        x = _tensor(rng, shape, dtype, 0.03, zp)
        check_op(B.PAD, [x, T(np.array(paddings, pad_dtype), const=True)], [_out(dtype, 0.03, zp)])


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_padv2(dtype):
    rng = np.random.default_rng(25)
    x = _tensor(rng, (1, 4, 5, 2), dtype, 0.03, None if dtype == np.float32 else 7)
    value = _tensor(rng, (), dtype, 0.03, None if dtype == np.float32 else 7, const=True)
    paddings = T(np.array([[0, 0], [2, 1], [1, 3], [0, 0]], np.int32), const=True)
    check_op(B.PADV2, [x, paddings, value], [_out(dtype, 0.03, None if dtype == np.float32 else 7)])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16], ids=["uint8", "int8", "int16"])
def test_pad_value_follows_the_inputs_quantization(dtype):
    """pad.cc pads int8 and int16 with the output zero point only where the input has quantization
    parameters (without, a plain 0 or PADV2's value, unchecked), uint8 always with the output's
    (0 where it has none): an input without quantization before an output with a zero point."""
    rng = np.random.default_rng(26)
    info = np.iinfo(dtype)
    x = T(rng.integers(info.min, info.max + 1, (1, 3, 4, 2)).astype(dtype))
    paddings = T(np.array([[0, 0], [1, 2], [2, 1], [0, 0]], np.int32), const=True)
    for out_zp in (-14 if dtype != np.uint8 else 14, 0):
        check_op(B.PAD, [x, paddings], [_out(dtype, 0.0078125, out_zp)])
        if dtype == np.uint8:
            continue  # (a value must then share the output's scale and zero point)
        value = T(np.array(5, dtype), const=True)
        check_op(B.PADV2, [x, paddings, value], [_out(dtype, 0.0078125, out_zp)])
    check_op(B.PAD, [x, paddings], [T(None, dtype)])  # no quantization anywhere: 0
    x.quant = quant(0.0078125, -3 if dtype != np.uint8 else 3)  # with it: the output zero point
    check_op(B.PAD, [x, paddings], [_out(dtype, 0.0078125, -3 if dtype != np.uint8 else 3)])


def test_pad_errors():
    x = T(np.zeros((2, 3), np.float32))
    with pytest.raises(ModelError, match=r"must be a constant"):
        run_ours_op(B.PAD, [x, T(np.zeros((2, 2), np.int32))], [T(None, np.float32, (2, 3))], None, "numpy")
    with pytest.raises(ModelError, match=r">= 0"):
        run_ours_op(B.PAD, [x, T(np.array([[0, -1], [0, 0]], np.int32), const=True)],
                    [T(None, np.float32, (2, 3))], None, "numpy")
    with pytest.raises(ModelError, match=r"need \(2, 2\)"):
        run_ours_op(B.PAD, [x, T(np.zeros((3, 2), np.int32), const=True)], [T(None, np.float32, (2, 3))],
                    None, "numpy")


# ----------------------------------------------------- SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND


S2B_CASES = [
    ((1, 4, 4, 3), [2, 2], [[0, 0], [0, 0]]),
    ((2, 5, 7, 2), [2, 3], [[1, 2], [2, 0]]),
    ((1, 9, 9, 4), [3, 3], [[3, 3], [3, 3]]),  # an atrous rate-3 convolution's padding
    ((2, 6, 3), [2], [[1, 1]]),  # rank 3: one spatial dimension
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", S2B_CASES, ids=lambda c: f"{c[0]}")
def test_space_to_batch_nd(dtype, case):
    rng = np.random.default_rng(26)
    shape, block, paddings = case
    zp = None if dtype == np.float32 else int(np.iinfo(dtype).min) + 37
    x = _tensor(rng, shape, dtype, 0.02, zp)
    check_op(B.SPACE_TO_BATCH_ND, [x, T(np.array(block, np.int32), const=True),
                                   T(np.array(paddings, np.int32), const=True)], [_out(dtype, 0.02, zp)])


B2S_CASES = [
    ((4, 2, 2, 3), [2, 2], [[0, 0], [0, 0]]),
    ((12, 4, 3, 2), [2, 3], [[1, 2], [2, 0]]),
    ((9, 5, 5, 4), [3, 3], [[3, 3], [3, 3]]),
    ((4, 4, 3), [2], [[1, 2]]),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", B2S_CASES, ids=lambda c: f"{c[0]}")
def test_batch_to_space_nd(dtype, case):
    rng = np.random.default_rng(27)
    shape, block, crops = case
    x = _tensor(rng, shape, dtype, 0.02)
    check_op(B.BATCH_TO_SPACE_ND, [x, T(np.array(block, np.int32), const=True),
                                   T(np.array(crops, np.int32), const=True)], [_out(dtype, 0.02)])


def test_space_batch_errors():
    x = T(np.zeros((1, 5, 5, 1), np.float32))
    block = T(np.array([2, 2], np.int32), const=True)
    with pytest.raises(ModelError, match="not a multiple"):
        run_ours_op(B.SPACE_TO_BATCH_ND, [x, block, T(np.zeros((2, 2), np.int32), const=True)],
                    [T(None, np.float32, (4, 2, 2, 1))], None, "numpy")
    with pytest.raises(ModelError, match="not a multiple"):
        run_ours_op(B.BATCH_TO_SPACE_ND, [T(np.zeros((3, 2, 2, 1), np.float32)), block,
                                          T(np.zeros((2, 2), np.int32), const=True)],
                    [T(None, np.float32, (1, 4, 4, 1))], None, "numpy")
    q = T(np.zeros((1, 4, 4, 1), np.uint8), quant=quant(0.1, 3))
    with pytest.raises(ModelError, match="quantization"):
        run_ours_op(B.SPACE_TO_BATCH_ND, [q, block, T(np.zeros((2, 2), np.int32), const=True)],
                    [T(None, np.uint8, (4, 2, 2, 1), quant(0.1, 4))], None, "numpy")


# ------------------------------------------------------------------------ TILE


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("mult_dtype", [np.int32, np.int64], ids=["int32", "int64"])
def test_tile(dtype, mult_dtype):
    rng = np.random.default_rng(28)
    for shape, multiples in [((1, 1, 1, 3), [1, 4, 5, 1]), ((2, 3), [3, 2]), ((2, 1, 3), [1, 1, 1]),
                             ((3,), [4])]:
        x = _tensor(rng, shape, dtype)
        check_op(B.TILE, [x, T(np.array(multiples, mult_dtype), const=True)], [_out(dtype)])


# --------------------------------------------------------------- STRIDED_SLICE


SLICES = [
    # (input shape, begin, end, strides, options)
    ((1, 5, 6, 3), [0, 1, 0, 0], [1, 4, 6, 3], [1, 1, 2, 1], StridedSliceOptions()),
    ((1, 5, 6, 3), [0, -1, -2, 0], [1, 0, 0, 3], [1, -1, -2, 1], StridedSliceOptions()),
    ((1, 5, 6, 3), [0, 4, 5, 2], [0, 0, 0, 0], [1, -1, -1, -1],
     StridedSliceOptions(begin_mask=0b0001, end_mask=0b1111)),
    ((1, 5, 6, 3), [0, 2, 1, 1], [1, 3, 5, 2], [1, 1, 1, 1], StridedSliceOptions(shrink_axis_mask=0b1001)),
    ((1, 5, 6, 3), [0, -2, 0, -1], [1, -1, 6, 0], [1, 1, 3, 1], StridedSliceOptions(shrink_axis_mask=0b1010)),
    ((4, 6), [1, 100], [-100, -100], [1, -2], StridedSliceOptions(begin_mask=0b01)),
    ((4, 6), [-100, 1], [100, 100], [2, 2], StridedSliceOptions(end_mask=0b10)),
    ((2, 3, 4, 5), [1], [2], [1], StridedSliceOptions()),  # fewer indices than dimensions
    ((2, 3, 4, 5), [0, 1], [0, 3], [1, 1], StridedSliceOptions(ellipsis_mask=0b01)),  # [..., 1:3]
    ((2, 3, 4, 5), [1, 0, 2], [2, 0, 3], [1, 1, 1], StridedSliceOptions(ellipsis_mask=0b010, shrink_axis_mask=0b100)),
    ((2, 3, 4), [0, 0, 1], [2, 0, 3], [1, 1, 1], StridedSliceOptions(new_axis_mask=0b010)),  # [:, newaxis, 1:3]
    ((1, 5, 6, 3), [0, 1, 2, 0], [1, 3, 2, 3], [1, 1, 1, 1], StridedSliceOptions(offset=True)),
    ((1, 5, 6, 3), [0, 3, 1, 0], [1, 2, 4, 2], [1, 1, 2, 1], StridedSliceOptions(offset=True, shrink_axis_mask=1)),
    ((3, 4), [5, 0], [6, 4], [1, 1], StridedSliceOptions()),  # empty: start past the end
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", range(len(SLICES)))
def test_strided_slice(dtype, case):
    rng = np.random.default_rng(29)
    shape, begin, end, strides, options = SLICES[case]
    x = _tensor(rng, shape, dtype)
    vectors = [T(np.array(v, np.int32), const=True) for v in (begin, end, strides)]
    check_op(B.STRIDED_SLICE, [x, *vectors], [_out(dtype)], options)


def test_strided_slice_errors():
    x = T(np.zeros((3, 4), np.float32))
    c = [T(np.array(v, np.int32), const=True) for v in ([0, 0], [3, 4], [1, 0])]
    with pytest.raises(ModelError, match="non-zero"):
        run_ours_op(B.STRIDED_SLICE, [x, *c], [T(None, np.float32, (3, 4))], StridedSliceOptions(), "numpy")
    with pytest.raises(ModelError, match="constant"):
        run_ours_op(B.STRIDED_SLICE, [x, T(np.array([0, 0], np.int32)), *c[1:]], [T(None, np.float32, (3, 4))],
                    StridedSliceOptions(), "numpy")
