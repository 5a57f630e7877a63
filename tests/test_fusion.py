"""A standalone RELU-family operator taken into the float convolution before it (pydeeplab.fusion)."""

import numpy as np
from oracle import run_litert

import pydeeplab
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
