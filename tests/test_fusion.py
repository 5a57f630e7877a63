"""A standalone RELU-family operator taken into the float convolution before it (pydeeplab.fusion)."""

import numpy as np
import pytest
from oracle import run_litert

import pydeeplab
from pydeeplab.tflite.model import Quantization
from pydeeplab.tflite.options import Conv2DOptions, DepthwiseConv2DOptions
from pydeeplab.tflite.schema import Activation, BuiltinOperator, Padding, TensorType
from pydeeplab.tflite.writer import ModelBuilder

B = BuiltinOperator


def _model(rng) -> tuple[bytes, dict]:
    """x -> CONV_2D -> c -> RELU6 -> r -> DEPTHWISE -> d -> RELU -> y, plus three that must not fuse:
    CONV_2D -> e, read by RELU and by ADD (two readers); a conv with a fused RELU_N1_TO_1 -> f -> RELU;
    and DEPTHWISE -> g (a graph output) -> RELU -> h."""
    b = ModelBuilder(description="fusion")
    f32 = TensorType.FLOAT32
    x = b.add_tensor("x", f32, (1, 6, 7, 3))
    t = {name: b.add_tensor(name, f32, (1, 6, 7, 4)) for name in "crdyeuvfkgh"}
    w = b.add_constant("w", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    dw = b.add_constant("dw", rng.standard_normal((1, 3, 3, 4)).astype(np.float32))
    bias = b.add_constant("bias", rng.standard_normal(4).astype(np.float32))
    conv = Conv2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1)
    depthwise = DepthwiseConv2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1, depth_multiplier=1)
    b.add_operator(B.CONV_2D, [x, w, bias], [t["c"]], conv)
    b.add_operator(B.RELU6, [t["c"]], [t["r"]])
    b.add_operator(B.DEPTHWISE_CONV_2D, [t["r"], dw, bias], [t["d"]], depthwise)
    b.add_operator(B.RELU, [t["d"]], [t["y"]])
    b.add_operator(B.CONV_2D, [x, w, bias], [t["e"]], conv)
    b.add_operator(B.RELU, [t["e"]], [t["u"]])
    b.add_operator(B.ADD, [t["e"], t["u"]], [t["v"]])
    b.add_operator(B.CONV_2D, [x, w, bias], [t["f"]], Conv2DOptions(
        padding=Padding.SAME, stride_w=1, stride_h=1, fused_activation_function=Activation.RELU_N1_TO_1))
    b.add_operator(B.RELU, [t["f"]], [t["k"]])
    b.add_operator(B.DEPTHWISE_CONV_2D, [t["y"], dw, bias], [t["g"]], depthwise)
    b.add_operator(B.RELU, [t["g"]], [t["h"]])
    b.set_inputs([x])
    b.set_outputs([t["y"], t["v"], t["k"], t["g"], t["h"]])
    return b.finish(), t


def _run(model, x, **kwargs):
    it = pydeeplab.Interpreter(model_content=model, **kwargs)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it, [it.get_tensor(d["index"]) for d in it.get_output_details()]


def test_relu_after_a_convolution_is_fused_only_where_nothing_can_tell():
    rng = np.random.default_rng(4)
    model, t = _model(rng)
    x = (rng.standard_normal((1, 6, 7, 3)) * 2).astype(np.float32)
    theirs = run_litert(model, [x])
    fused, outs = _run(model, x, backend="numba")
    # The RELU6 after the first conv and the RELU after the first depthwise are skipped; the
    # others run: a second reader, an activation already fused, a graph output in between.
    ran = [s.index for s in fused._program]
    assert ran == [0, 2, 4, 5, 6, 7, 8, 9, 10]
    for ours, ref in zip(outs, theirs):
        assert np.abs(ours - ref).max() <= 1e-5 * (1 + np.abs(ref).max())
    # The skipped tensor reads as the activation's output; nothing else changed.
    np.testing.assert_array_equal(fused.get_tensor(t["c"]), fused.get_tensor(t["r"]))
    # Preserving every tensor, or the numpy backend, runs the graph as written.
    for kwargs in ({"backend": "numba", "experimental_preserve_all_tensors": True}, {"backend": "numpy"}):
        plain, plain_outs = _run(model, x, **kwargs)
        assert len(plain._program) == 11
        for a, b in zip(outs, plain_outs):
            assert np.abs(a - b).max() <= 1e-5 * (1 + np.abs(b).max())
    preserved, _ = _run(model, x, backend="numba", experimental_preserve_all_tensors=True)
    assert preserved.get_tensor(t["c"]).min() < 0  # the conv's own output, before its RELU6


def test_fused_model_reallocates():
    """A second allocate_tensors plans the fusions again from the graph (nothing carried over)."""
    rng = np.random.default_rng(5)
    model, _ = _model(rng)
    x = rng.standard_normal((1, 6, 7, 3)).astype(np.float32)
    it, first = _run(model, x, backend="numba")
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    for a, d in zip(first, it.get_output_details()):
        np.testing.assert_array_equal(a, it.get_tensor(d["index"]))


def _q(scale, zero_point):
    return Quantization(np.array([scale], np.float32), np.array([zero_point], np.int64))


def _atrous_model(rng, hw, channels, block, pads, crops, dtype=np.float32, conv=B.DEPTHWISE_CONV_2D,
                  k=3) -> tuple[bytes, dict]:
    """ADD(x0, x0) -> x -> SPACE_TO_BATCH_ND -> s -> ``conv`` (VALID) -> d -> BATCH_TO_SPACE_ND -> y, then
    ADD(y, x0) -> z where y's shape allows. x is an intermediate that nothing reads after the chain: its
    memory must outlive the fused conv, which reads it where the graph's DEPTHWISE read s."""
    b = ModelBuilder(description="atrous")
    (bh, bw), h, w = block, *hw
    cout = channels if conv == B.DEPTHWISE_CONV_2D else 7
    shape = (1, k, k, channels) if conv == B.DEPTHWISE_CONV_2D else (cout, k, k, channels)
    sub = ((h + sum(pads[0])) // bh, (w + sum(pads[1])) // bw)
    out = ((sub[0] - k + 1) * bh - sum(crops[0]), (sub[1] - k + 1) * bw - sum(crops[1]))
    if dtype == np.float32:
        t, qx, qy = TensorType.FLOAT32, None, None
        wq, bq = None, None
        weights = rng.standard_normal(shape).astype(np.float32)
        bias = rng.standard_normal(cout).astype(np.float32)
    else:  # 8-bit: the input's zero point is what SPACE_TO_BATCH_ND pads with
        t = TensorType.UINT8 if dtype == np.uint8 else TensorType.INT8
        low = np.iinfo(dtype).min
        qx, qy = _q(0.05, low + 77), _q(0.1, low + 100)
        wq, bq = _q(0.02, 0 if dtype == np.int8 else 128), _q(0.05 * 0.02, 0)
        weights = rng.integers(1 if dtype == np.int8 else 0, 255, shape).astype(dtype)
        bias = rng.integers(-500, 500, cout).astype(np.int32)
    x0 = b.add_tensor("x0", t, (1, h, w, channels), qx)
    x = b.add_tensor("x", t, (1, h, w, channels), qx)
    b.add_operator(B.ADD, [x0, x0], [x]) if dtype == np.float32 else b.add_operator(B.MAXIMUM, [x0, x0], [x])
    s = b.add_tensor("s", t, (bh * bw, *sub, channels), qx)
    d = b.add_tensor("d", t, (bh * bw, sub[0] - k + 1, sub[1] - k + 1, cout), qy)
    y = b.add_tensor("y", t, (1, *out, cout), qy)
    blk = b.add_constant("block", np.array(block, np.int32))
    b.add_operator(B.SPACE_TO_BATCH_ND, [x, blk, b.add_constant("pads", np.array(pads, np.int32))], [s])
    options = (DepthwiseConv2DOptions(padding=Padding.VALID, stride_w=1, stride_h=1, depth_multiplier=1,
                                      fused_activation_function=Activation.RELU6) if conv == B.DEPTHWISE_CONV_2D
               else Conv2DOptions(padding=Padding.VALID, stride_w=1, stride_h=1,
                                  fused_activation_function=Activation.RELU6))
    b.add_operator(conv, [s, b.add_constant("w", weights, wq), b.add_constant("bias", bias, bq)], [d], options)
    b.add_operator(B.BATCH_TO_SPACE_ND, [d, blk, b.add_constant("crops", np.array(crops, np.int32))], [y])
    outputs = [y]
    if out == (h, w) and dtype == np.float32 and cout == channels:
        z = b.add_tensor("z", t, (1, h, w, channels))
        b.add_operator(B.ADD, [y, x0], [z])
        outputs = [z]
    b.set_inputs([x0])
    b.set_outputs(outputs)
    return b.finish(), {"s": s, "d": d}


@pytest.mark.parametrize("conv", [B.DEPTHWISE_CONV_2D, B.CONV_2D], ids=["depthwise", "conv"])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int8])
@pytest.mark.parametrize("hw, block, pads, crops, fused", [
    ((13, 13), (2, 2), [[2, 3], [2, 3]], [[0, 1], [0, 1]], True),  # TF's SAME atrous conv, rate 2
    ((13, 13), (4, 4), [[4, 7], [4, 7]], [[0, 3], [0, 3]], True),  # rate 4
    ((12, 14), (2, 3), [[2, 2], [3, 4]], [[0, 0], [0, 1]], True),  # rates 2 x 3
    ((12, 12), (2, 2), [[0, 0], [0, 0]], [[0, 0], [0, 0]], True),  # VALID
    ((12, 12), (2, 2), [[1, 1], [1, 1]], [[0, 0], [0, 0]], False),  # padding 1: neither SAME nor VALID
])
def test_atrous_chain_runs_as_one_dilated_convolution(hw, block, pads, crops, fused, dtype, conv):
    rng = np.random.default_rng(6)
    model, inner = _atrous_model(rng, hw, 19, block, pads, crops, dtype, conv)
    if dtype == np.float32:
        x = rng.standard_normal((1, *hw, 19)).astype(np.float32)
    else:
        x = rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max + 1, (1, *hw, 19)).astype(dtype)
    (ref,) = run_litert(model, [x])
    it, (ours,) = _run(model, x, backend="numba")
    assert [s.opcode for s in it._program][1:4] == (
        [conv] + ([B.ADD] if len(it._program) == 3 else []) if fused else [B.SPACE_TO_BATCH_ND, conv, B.BATCH_TO_SPACE_ND])
    if dtype == np.float32:
        assert np.abs(ours - ref).max() <= 1e-5 * (1 + np.abs(ref).max())
    else:
        np.testing.assert_array_equal(ours, ref)
    for i in inner.values():  # the chain's inner tensors keep their shapes, readable
        assert list(it.get_tensor(i).shape) == list(it.get_tensor_details()[i]["shape"])
    plain, (as_written,) = _run(model, x, backend="numba", experimental_preserve_all_tensors=True)
    assert len(plain._program) == len(it._program) + 2 * fused
    np.testing.assert_allclose(ours, as_written, rtol=1e-6, atol=1e-6)
