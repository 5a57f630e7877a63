"""Constant folding at plan time: float16 weights behind DEQUANTIZE, and any all-constant operator."""

import numpy as np
import pytest
from oracle import run_litert

import pydeeplab
from pydeeplab.tflite.options import AddOptions, Conv2DOptions
from pydeeplab.tflite.schema import BuiltinOperator, Padding, TensorType
from pydeeplab.tflite.writer import ModelBuilder

BACKENDS = ("numpy", "numba")


def _fp16_conv_model(rng) -> tuple[bytes, dict]:
    """x -> CONV_2D(filter = DEQUANTIZE(fp16), bias = ADD(DEQUANTIZE(fp16), const)) -> y.

    The bias is a two-operator constant chain: folding must cascade.
    """
    b = ModelBuilder(description="fp16 conv")
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 9, 9, 3))
    w16 = b.add_constant("w16", rng.standard_normal((4, 3, 3, 3)).astype(np.float16))
    w = b.add_tensor("w", TensorType.FLOAT32, (4, 3, 3, 3))
    b16 = b.add_constant("b16", rng.standard_normal(4).astype(np.float16))
    b32 = b.add_tensor("b32", TensorType.FLOAT32, (4,))
    shift = b.add_constant("shift", np.float32([0.5, -1, 2, 0]))
    bias = b.add_tensor("bias", TensorType.FLOAT32, (4,))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 9, 9, 4))
    b.add_operator(BuiltinOperator.DEQUANTIZE, [w16], [w])
    b.add_operator(BuiltinOperator.DEQUANTIZE, [b16], [b32])
    b.add_operator(BuiltinOperator.ADD, [b32, shift], [bias], AddOptions())
    b.add_operator(BuiltinOperator.CONV_2D, [x, w, bias], [y],
                   Conv2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1))
    b.set_inputs([x])
    b.set_outputs([y])
    return b.finish(), {"w": w, "bias": bias, "y": y}


@pytest.mark.parametrize("backend", BACKENDS)
def test_float16_weights_fold_and_match_litert(backend):
    rng = np.random.default_rng(1)
    model, idx = _fp16_conv_model(rng)
    x = rng.standard_normal((1, 9, 9, 3)).astype(np.float32)
    (theirs,) = run_litert(model, [x])
    it = pydeeplab.Interpreter(model_content=model, backend=backend)  # the default memory plan
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    ours = it.get_tensor(idx["y"])
    assert np.abs(ours - theirs).max() <= 1e-5 * (1 + np.abs(theirs).max())
    # The folded tensors keep their values, readable like any constant ...
    mdl = pydeeplab.read_model(model)
    w16 = next(t.data for t in mdl.main.tensors if t.name == "w16")
    np.testing.assert_array_equal(it.get_tensor(idx["w"]), w16.astype(np.float32))
    assert it.get_tensor(idx["bias"]).shape == (4,)
    # ... are not recomputed by invoke, and own no arena bytes: only x and y live there.
    assert [s.opcode for s in it._program] == [BuiltinOperator.CONV_2D]
    assert it._arena.nbytes < (9 * 9 * 3 + 9 * 9 * 4) * 4 + 2 * 64
    with pytest.raises(ValueError, match="constant"):
        it.set_tensor(idx["w"], np.zeros((4, 3, 3, 3), np.float32))


def test_all_constant_branch_folds():
    """A model without a graph-input path for a whole branch: that branch is folded entirely."""
    rng = np.random.default_rng(2)
    b = ModelBuilder(description="folded branch")
    x = b.add_tensor("x", TensorType.FLOAT32, (2, 4))
    c1 = b.add_constant("c1", rng.standard_normal((2, 4)).astype(np.float32))
    c2 = b.add_constant("c2", rng.standard_normal((2, 4)).astype(np.float32))
    s = b.add_tensor("s", TensorType.FLOAT32, (2, 4))
    y = b.add_tensor("y", TensorType.FLOAT32, (2, 4))
    b.add_operator(BuiltinOperator.ADD, [c1, c2], [s], AddOptions())
    b.add_operator(BuiltinOperator.ADD, [x, s], [y], AddOptions())
    b.set_inputs([x])
    b.set_outputs([y, s])
    model = b.finish()
    xv = rng.standard_normal((2, 4)).astype(np.float32)
    theirs = run_litert(model, [xv])
    for backend in BACKENDS:
        it = pydeeplab.Interpreter(model_content=model, backend=backend)
        it.allocate_tensors()
        it.set_tensor(x, xv)
        it.invoke()
        np.testing.assert_allclose(it.get_tensor(y), theirs[0], rtol=0, atol=1e-6)
        np.testing.assert_allclose(it.get_tensor(s), theirs[1], rtol=0, atol=1e-6)  # a folded graph output
        assert len(it._program) == 1


def test_fp16_model_runs(model_path, image_path):
    """The TF Hub fp16 DeepLab: every CONV_2D filter is a DEQUANTIZE output."""
    from pydeeplab.verification import make_inputs

    content = model_path("mobilenetv2_dm05_coco_fp16").read_bytes()
    it = pydeeplab.Interpreter(model_content=content, backend="numpy")
    it.allocate_tensors()
    n_dequantize = sum(op.name == "DEQUANTIZE" for op in it.model.main.operators)
    assert n_dequantize > 100
    assert len(it._program) == len(it.model.main.operators) - n_dequantize


@pytest.mark.parametrize("backend", BACKENDS)
def test_int8_and_fp16_weights_of_depthwise_and_transpose_conv(backend):
    """Per-channel int8 weights behind DEQUANTIZE (DEPTHWISE_CONV_2D) and fp16 ones (TRANSPOSE_CONV)."""
    from oracle import quant

    from pydeeplab.tflite.options import DepthwiseConv2DOptions, TransposeConvOptions

    rng = np.random.default_rng(4)
    b = ModelBuilder(description="int8 + fp16 weights")
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 6, 6, 4))
    scales = np.float32([0.01, 0.02, 0.03, 0.04])
    wq = b.add_constant("wq", rng.integers(-127, 128, (1, 3, 3, 4)).astype(np.int8), quant(scales, 0, dim=3))
    wd = b.add_tensor("wd", TensorType.FLOAT32, (1, 3, 3, 4))
    h = b.add_tensor("h", TensorType.FLOAT32, (1, 6, 6, 4))
    t16 = b.add_constant("t16", rng.standard_normal((2, 2, 2, 4)).astype(np.float16))
    tw = b.add_tensor("tw", TensorType.FLOAT32, (2, 2, 2, 4))
    shape = b.add_constant("shape", np.int32([1, 12, 12, 2]))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 12, 12, 2))
    b.add_operator(BuiltinOperator.DEQUANTIZE, [wq], [wd], version=4)
    bias = b.add_constant("bias", np.float32([0.1, -0.2, 0.3, 0]))
    b.add_operator(BuiltinOperator.DEPTHWISE_CONV_2D, [x, wd, bias], [h],
                   DepthwiseConv2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1, depth_multiplier=1))
    b.add_operator(BuiltinOperator.DEQUANTIZE, [t16], [tw])
    b.add_operator(BuiltinOperator.TRANSPOSE_CONV, [shape, tw, h, -1], [y],
                   TransposeConvOptions(padding=Padding.SAME, stride_w=2, stride_h=2))
    b.set_inputs([x])
    b.set_outputs([y])
    model = b.finish()
    xv = rng.standard_normal((1, 6, 6, 4)).astype(np.float32)
    (theirs,) = run_litert(model, [xv])
    it = pydeeplab.Interpreter(model_content=model, backend=backend)
    it.allocate_tensors()
    it.set_tensor(x, xv)
    it.invoke()
    assert np.abs(it.get_tensor(y) - theirs).max() <= 1e-5 * (1 + np.abs(theirs).max())
    assert [s.opcode for s in it._program] == [BuiltinOperator.DEPTHWISE_CONV_2D, BuiltinOperator.TRANSPOSE_CONV]
