"""Shape operators against LiteRT's reference kernels, on both backends.

CONCATENATION (every axis, 2-4 inputs, uint8 requantization), RESHAPE, SQUEEZE, PAD /
PADV2, SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND, TILE and STRIDED_SLICE (all masks,
negative strides, offset), SLICE, EXPAND_DIMS, MIRROR_PAD, SPLIT and SPLIT_V, in float32,
uint8 and int8 (and the other types TFLite moves): outputs must be identical.
"""

from __future__ import annotations

import numpy as np
import pytest
from oracle import T, check_op, quant, run_ours_op

from pydeeplab.errors import ModelError
from pydeeplab.tflite.options import ConcatenationOptions, MirrorPadOptions, ReshapeOptions, SplitOptions
from pydeeplab.tflite.options import SplitVOptions, SqueezeOptions, StridedSliceOptions
from pydeeplab.tflite.schema import Activation, BuiltinOperator, MirrorPadMode

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


# --------------------------------------------- SLICE, EXPAND_DIMS, MIRROR_PAD, SPLIT, SPLIT_V
# (converters' everyday cuts and pads: onnx2tf's and ai-edge-torch's C2f splits, channel
# halves, reflection padding; values move unchanged, whatever the outputs' parameters)


def _vector(values, dtype=np.int32):
    return T(np.array(values, dtype), const=True)


@pytest.mark.parametrize("dtype", [*DTYPES, np.int16, np.int64, np.bool_, np.float16],
                         ids=[*DTYPE_IDS, "int16", "int64", "bool", "float16"])
def test_slice(dtype):
    rng = np.random.default_rng(40)
    x = _tensor(rng, (2, 5, 6, 3), dtype) if dtype in DTYPES else T(
        (rng.integers(-9, 9, (2, 5, 6, 3)) > 0) if dtype == np.bool_ else rng.integers(-999, 999, (2, 5, 6, 3)).astype(dtype))
    q = _out(dtype).quant if dtype in DTYPES else None

    def sliced(x, begin, size, index_type=np.int32):
        """check_op of the slice, its output declared at the shape it has (LiteRT checks the rank)."""
        shape = tuple(n - b if k == -1 else k for n, b, k in zip(x.value.shape, begin, size))
        check_op(B.SLICE, [x, _vector(begin, index_type), _vector(size, index_type)],
                 [T(None, x.value.dtype, shape, None if x.value.dtype == np.float32 else q)])

    for begin, size, index_type in (([0, 1, 2, 0], [2, 3, -1, 2], np.int32), ([1, 0, 0, 1], [-1, -1, 6, 2], np.int64),
                                    ([0, 4, 5, 2], [1, 1, 1, 1], np.int32), ([0, 2, 0, 0], [2, 0, 6, 3], np.int32)):
        sliced(x, begin, size, index_type)
    for shape, begin, size in (((7,), [2], [4]), ((3, 4), [1, 1], [-1, 2]), ((2, 3, 4, 2, 3), [1, 0, 1, 0, 1], [1, 3, 2, 2, -1]),
                               ((2, 2, 3, 2, 2, 3), [1, 0, 1, 0, 1, 2], [1, -1, 2, 2, 1, 1])):
        sliced(_tensor(rng, shape, np.float32), begin, size)


def test_slice_errors():
    x = T(np.zeros((2, 5, 6, 3), np.float32))
    for begin, size, message in (([0, 4, 0, 0], [1, 2, 1, 1], "leave dimension 1"),
                                 ([0, -1, 0, 0], [1, 1, 1, 1], "leave dimension 1"),
                                 ([0, 0, 0, 0], [1, -2, 1, 1], "leave dimension 1"),
                                 ([0, 0, 0], [1, 1, 1], "need 4 entries")):
        with pytest.raises(ModelError, match=message):
            run_ours_op(B.SLICE, [x, _vector(begin), _vector(size)], [T(None, np.float32, (1,))], None, "numpy")
    with pytest.raises(ModelError, match="one type"):
        run_ours_op(B.SLICE, [x, _vector([0] * 4), _vector([1] * 4, np.int64)], [T(None, np.float32, (1,))], None,
                    "numpy")
    with pytest.raises(ModelError, match="must be a constant"):
        run_ours_op(B.SLICE, [x, T(np.zeros(4, np.int32)), _vector([1] * 4)], [T(None, np.float32, (1,))], None,
                    "numpy")
    with pytest.raises(ModelError, match="declared \\(1, 1, 1, 2\\), the slice is \\(1, 1, 1, 1\\)"):
        run_ours_op(B.SLICE, [x, _vector([0] * 4), _vector([1] * 4)], [T(None, np.float32, (1, 1, 1, 2))], None,
                    "numpy")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_expand_dims(dtype):
    rng = np.random.default_rng(41)
    x = _tensor(rng, (3, 4, 2), dtype)
    for axis, index_type in ((0, np.int32), (3, np.int32), (-1, np.int64), (-4, np.int32), (1, np.int64)):
        check_op(B.EXPAND_DIMS, [x, _vector([axis], index_type)], [_out(dtype)])
    check_op(B.EXPAND_DIMS, [_tensor(rng, (), dtype), _vector(0)], [_out(dtype)])  # a scalar, one-element axis
    for axis in (4, -5):
        with pytest.raises(ModelError, match="out of range"):
            run_ours_op(B.EXPAND_DIMS, [x, _vector([axis])], [T(None, x.value.dtype, (1,), x.quant)], None, "numpy")
    if dtype != np.float32:  # LiteRT 2.3 checks the parameters are the input's
        with pytest.raises(ModelError, match="quantization"):
            run_ours_op(B.EXPAND_DIMS, [x, _vector([0])], [T(None, x.value.dtype, (1,), quant(0.5, 0))], None, "numpy")


@pytest.mark.parametrize("dtype", [*DTYPES, np.int16, np.int64, np.float16], ids=[*DTYPE_IDS, "int16", "int64", "float16"])
@pytest.mark.parametrize("mode", list(MirrorPadMode), ids=lambda m: m.name)
def test_mirror_pad(dtype, mode):
    rng = np.random.default_rng(42)
    x = _tensor(rng, (1, 5, 4, 3), dtype) if dtype in DTYPES else T(rng.integers(-999, 999, (1, 5, 4, 3)).astype(dtype))
    out = _out(dtype) if dtype in DTYPES else T(None, dtype)
    edge = 4 if mode == MirrorPadMode.REFLECT else 5  # the longest padding of dimension 1 (the image)
    for paddings in ([[0, 0], [1, 1], [2, 2], [0, 0]], [[0, 0], [edge, 0], [0, edge - 1], [1, 2]],
                     [[0, 0], [2, edge], [edge - 1, 1], [0, 0]]):
        for index_type in (np.int32, np.int64):
            check_op(B.MIRROR_PAD, [x, _vector(paddings, index_type)], [out], MirrorPadOptions(mode))
    one = _tensor(rng, (1, 1, 3, 1), dtype) if dtype in DTYPES else T(np.arange(3, dtype=dtype).reshape(1, 1, 3, 1))
    check_op(B.MIRROR_PAD, [one, _vector([[0, 0], [0, 1 - (mode == MirrorPadMode.REFLECT)], [1, 2], [0, 0]])], [out],
             MirrorPadOptions(mode))


def test_mirror_pad_errors():
    x = T(np.zeros((1, 5, 4, 3), np.float32))
    cases = ((MirrorPadMode.REFLECT, [[0, 0], [5, 0], [0, 0], [0, 0]], "exceed its REFLECT mirror image"),
             (MirrorPadMode.REFLECT, [[0, 0], [0, 0], [0, 4], [0, 0]], "exceed its REFLECT mirror image"),
             (MirrorPadMode.SYMMETRIC, [[0, 0], [0, 0], [5, 0], [0, 0]], "exceed its SYMMETRIC mirror image"),
             (MirrorPadMode.SYMMETRIC, [[1, 2], [0, 0], [0, 0], [0, 0]], "exceed its SYMMETRIC mirror image"),
             (MirrorPadMode.REFLECT, [[0, 0], [0, -1], [0, 0], [0, 0]], ">= 0"),
             (MirrorPadMode.REFLECT, [[0, 0], [0, 0], [0, 0]], "need \\(4, 2\\)"))
    cases += ((MirrorPadMode.REFLECT, [[0, 0], [1, 1], [0, 0], [0, 0]], "quantization"),)
    for mode, paddings, message in cases:
        q = message == "quantization"  # an 8-bit output with other parameters
        with pytest.raises(ModelError, match=message):
            run_ours_op(B.MIRROR_PAD, [T(np.zeros((1, 5, 4, 3), np.uint8), quant=quant(0.1, 3)) if q else x,
                                       _vector(paddings)],
                        [T(None, np.uint8, (1,), quant(0.1, 4)) if q else T(None, np.float32, (1,))],
                        MirrorPadOptions(mode), "numpy")


@pytest.mark.parametrize("dtype", [*DTYPES, np.int16, np.int64], ids=[*DTYPE_IDS, "int16", "int64"])
def test_split(dtype):
    """SPLIT and SPLIT_V, the outputs' parameters other than the input's (copied all the same)."""
    rng = np.random.default_rng(43)
    x = _tensor(rng, (2, 6, 4, 6), dtype) if dtype in DTYPES else T(rng.integers(-999, 999, (2, 6, 4, 6)).astype(dtype))

    def outs(n):
        return [(_out(dtype, 0.05 * (k + 1)) if dtype in DTYPES else T(None, dtype)) for k in range(n)]

    for axis, n in ((3, 2), (1, 3), (-1, 3), (0, 1), (2, 4)):
        check_op(B.SPLIT, [_vector([axis]), x], outs(n), SplitOptions(n))
    for axis, sizes, size_type in ((3, [1, 4, 1], np.int32), (1, [2, -1], np.int64), (-3, [6], np.int32),
                                   (2, [0, 3, 1], np.int32), (-1, [-1, 5, 0], np.int64)):
        check_op(B.SPLIT_V, [x, _vector(sizes, size_type), _vector([axis])], outs(len(sizes)), SplitVOptions(len(sizes)))


def test_split_errors():
    x = T(np.zeros((2, 6, 4), np.float32))

    def fails(op, inputs, n, options, message):
        with pytest.raises(ModelError, match=message):
            run_ours_op(op, inputs, [T(None, np.float32, (1,))] * n, options, "numpy")

    fails(B.SPLIT, [_vector([1]), x], 4, SplitOptions(4), "does not split into 4 equal parts")
    fails(B.SPLIT, [_vector([3]), x], 2, SplitOptions(2), "axis 3 is out of range")
    fails(B.SPLIT, [_vector([1]), x], 3, SplitOptions(2), "num_splits = 2 but the operator has 3 outputs")
    fails(B.SPLIT, [T(np.array([1], np.int32)), x], 2, SplitOptions(2), "axis \\(input 0\\) must be a constant")
    fails(B.SPLIT_V, [x, _vector([2, 2]), _vector([1])], 2, SplitVOptions(2), "do not add up")
    fails(B.SPLIT_V, [x, _vector([-1, -1]), _vector([1])], 2, SplitVOptions(2), "at most one -1")
    fails(B.SPLIT_V, [x, _vector([7, -1]), _vector([1])], 2, SplitVOptions(2), "do not add up")
    fails(B.SPLIT_V, [x, _vector([1, 2, 3]), _vector([1])], 2, SplitVOptions(2), "one size per output")
    fails(B.SPLIT_V, [x, _vector([3, 3], np.float32), _vector([1])], 2, SplitVOptions(2), "int32 or int64")
    fails(B.SPLIT, [_vector([0]), T(np.zeros((2, 3), np.float16))], 2, SplitOptions(2), "FLOAT16 input is not supported")


def _c2f_model(quantized: bool) -> tuple[bytes, np.ndarray]:
    """A YOLOv8 C2f-like block as onnx2tf writes it, with the cuts and pads around it: x [1,8,8,8] ->
    1x1 conv -> SPLIT into halves -> the second half MIRROR_PADded and through a 3x3 VALID conv ->
    CONCATENATION of both halves and the conv; SPLIT_V of the input into 3 + 5 channels, the 3 through
    SLICE and EXPAND_DIMS."""
    from pydeeplab.tflite.options import Conv2DOptions
    from pydeeplab.tflite.schema import Padding, TensorType
    from pydeeplab.tflite.writer import ModelBuilder

    rng = np.random.default_rng(44)
    kind = TensorType.UINT8 if quantized else TensorType.FLOAT32
    b = ModelBuilder(description="cuts and pads")

    def q(scale, zp):
        return quant(scale, zp) if quantized else None

    def tensor(name, shape, qq):
        return b.add_tensor(name, kind, shape, qq)

    def conv(name, x, qx, shape, qo, cin, cout, k, padding):
        if quantized:
            w = b.add_constant(f"{name}_w", rng.integers(0, 256, (cout, k, k, cin)).astype(np.uint8), quant(0.02, 128), kind)
            bias = b.add_constant(f"{name}_b", rng.integers(-300, 300, cout).astype(np.int32),
                                  quant(float(np.float32(qx.scale) * np.float32(0.02)), 0), TensorType.INT32)
        else:
            w = b.add_constant(f"{name}_w", (rng.standard_normal((cout, k, k, cin)) * 0.3).astype(np.float32))
            bias = b.add_constant(f"{name}_b", rng.standard_normal(cout).astype(np.float32))
        y = tensor(name, shape, qo)
        b.add_operator(B.CONV_2D, [x, w, bias], [y], Conv2DOptions(padding, 1, 1, Activation.RELU))
        return y

    qx, qc, qp = q(0.05, 120), q(0.08, 10), q(0.06, 5)
    x = tensor("x", (1, 8, 8, 8), qx)
    c = conv("c", x, qx, (1, 8, 8, 8), qc, 8, 8, 1, Padding.SAME)
    halves = [tensor(f"half{k}", (1, 8, 8, 4), qc) for k in range(2)]
    b.add_operator(B.SPLIT, [b.add_constant("axis", np.array([3], np.int32)), c], halves, SplitOptions(2))
    padded = tensor("padded", (1, 10, 10, 4), qc)
    b.add_operator(B.MIRROR_PAD, [halves[1], b.add_constant("pads", np.array([[0, 0], [1, 1], [1, 1], [0, 0]],
                                                                              np.int32))], [padded], MirrorPadOptions())
    m = conv("m", padded, qc, (1, 8, 8, 4), qp, 4, 4, 3, Padding.VALID)
    cat = tensor("cat", (1, 8, 8, 12), qp)
    b.add_operator(B.CONCATENATION, [*halves, m], [cat], ConcatenationOptions(3))
    three, five = tensor("three", (1, 8, 8, 3), qx), tensor("five", (1, 8, 8, 5), qx)
    b.add_operator(B.SPLIT_V, [x, b.add_constant("sizes", np.array([3, -1], np.int32)),
                               b.add_constant("axis_v", np.array([-1], np.int32))], [three, five], SplitVOptions(2))
    window = tensor("window", (1, 4, 6, 3), qx)
    b.add_operator(B.SLICE, [three, b.add_constant("begin", np.array([0, 2, 1, 0], np.int64)),
                             b.add_constant("size", np.array([-1, 4, 6, -1], np.int64))], [window])
    expanded = tensor("expanded", (1, 4, 1, 6, 3), qx)
    b.add_operator(B.EXPAND_DIMS, [window, b.add_constant("axis_e", np.array([2], np.int32))], [expanded])
    b.set_inputs([x])
    b.set_outputs([cat, expanded, five])
    feed = rng.integers(0, 256, (1, 8, 8, 8)).astype(np.uint8) if quantized else \
        rng.standard_normal((1, 8, 8, 8)).astype(np.float32)
    return b.finish(), feed


@pytest.mark.parametrize("quantized", [False, True], ids=["float32", "uint8"])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_cuts_and_pads_in_a_model(quantized, backend):
    """SPLIT, SPLIT_V, SLICE, EXPAND_DIMS and MIRROR_PAD through the reader, the default plan and the
    Interpreter, against LiteRT's reference kernels."""
    from oracle import check_model

    model, feed = _c2f_model(quantized)
    check_model(model, [feed], backend)


def test_inspect_names_the_cuts_options(tmp_path, capsys):
    import json

    from pydeeplab.cli import main

    path = tmp_path / "c2f.tflite"
    path.write_bytes(_c2f_model(True)[0])
    assert main(["inspect", str(path), "--json"]) == 0
    ops = {o["op"]: o["options"] for o in json.loads(capsys.readouterr().out)["operators"]}
    assert ops["SPLIT"] == {"num_splits": 2} and ops["SPLIT_V"] == {"num_splits": 2}
    assert ops["MIRROR_PAD"] == {"mode": "REFLECT"} and ops["SLICE"] == ops["EXPAND_DIMS"] == {}


@pytest.mark.parametrize("dtype", [*DTYPES, np.int32, np.int64, np.bool_], ids=[*DTYPE_IDS, "int32", "int64", "bool"])
def test_broadcast_to(dtype):
    """BROADCAST_TO (onnx2tf's Expand): new leading dimensions, size-1 dimensions repeated, int32 and
    int64 shapes; shapes that do not broadcast are refused."""
    rng = np.random.default_rng(45)
    x = _tensor(rng, (3, 1, 4), dtype) if dtype in DTYPES else T((rng.integers(-5, 5, (3, 1, 4))).astype(dtype))
    out = _out(dtype) if dtype in DTYPES else T(None, dtype)
    if dtype in DTYPES and dtype != np.float32:
        out = T(None, dtype, quant=x.quant)
    for shape, index_type in (([3, 5, 4], np.int32), ([2, 3, 5, 4], np.int64), ([3, 1, 4], np.int32),
                              ([1, 1, 3, 2, 4], np.int32)):
        check_op(B.BROADCAST_TO, [x, _vector(shape, index_type)], [out], version=2)  # (LiteRT registers 2 and 3)
    for shape in ([3, 5, 5], [5, 4], [-1, 1, 4]):
        with pytest.raises(ModelError, match="broadcast to|dimensions"):
            run_ours_op(B.BROADCAST_TO, [x, _vector(shape)], [T(None, x.value.dtype, (1,), x.quant)], None, "numpy")
