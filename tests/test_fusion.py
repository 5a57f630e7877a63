"""Plan-time fusions (pydeeplab.fusion): a standalone RELU-family operator taken into the float convolution
before it; atrous SPACE_TO_BATCH_ND / conv / BATCH_TO_SPACE_ND chains run as one dilated convolution; an
ARG_MAX over channels computed by the RESIZE_BILINEAR before it; a batch norm folded into a conv; ASPP's
image-pooling branch summed into its projection's bias; a HARD_SWISH applied by the conv tile before it; an
ADD of a MUL's product in one pass; a residual ADD added by the 1x1 conv tile before it; a squeeze-and-excite
gate (global average, 1x1 convs, LOGISTIC) as one step; a DEQUANTIZE computed by the int8 resize before it."""

import numpy as np
import pytest
from oracle import compare, quant, run_litert

import pydeeplab
from pydeeplab.errors import ModelError
from pydeeplab.tflite.model import Quantization
from pydeeplab.tflite.options import (AddOptions, ArgMaxOptions, ConcatenationOptions, Conv2DOptions,
                                       DepthwiseConv2DOptions, MulOptions, Pool2DOptions, ResizeBilinearOptions,
                                       ResizeNearestNeighborOptions)
from pydeeplab.tflite.schema import Activation, BuiltinOperator, Padding, TensorType, tensor_type_of
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
                  k=3, poison=None) -> tuple[bytes, dict]:
    """ADD(x0, x0) -> x -> SPACE_TO_BATCH_ND -> s -> ``conv`` (VALID) -> d -> BATCH_TO_SPACE_ND -> y, then
    ADD(y, x0) -> z where y's shape allows. x is an intermediate that nothing reads after the chain: its
    memory must outlive the fused conv, which reads it where the graph's DEPTHWISE read s. ``poison``: a
    value (NaN, inf) put into some of the float filter's weights."""
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
        if poison is not None:
            weights.reshape(-1)[:: 7] = poison
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


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # (the reference on inf)
@pytest.mark.parametrize("poison", [np.nan, np.inf], ids=["nan", "inf"])
def test_atrous_chain_with_a_nan_or_inf_filter_runs_as_written(poison):
    """The chain multiplies SPACE_TO_BATCH_ND's zero padding by the filter (``0 * inf`` is NaN), which
    a dilated convolution skips: a filter holding a NaN or an infinity keeps the chain as written,
    LiteRT's non-finite outputs exactly."""
    rng = np.random.default_rng(7)
    model, _ = _atrous_model(rng, (13, 13), 19, (2, 2), [[2, 3], [2, 3]], [[0, 1], [0, 1]], poison=poison)
    x = rng.standard_normal((1, 13, 13, 19)).astype(np.float32)
    (ref,) = run_litert(model, [x])
    it, (ours,) = _run(model, x, backend="numba")
    assert B.SPACE_TO_BATCH_ND in [s.opcode for s in it._program]
    assert not np.isfinite(ref).all()
    compare(ours, ref, "the chain's output")


def test_a_conv_without_inputs_before_batch_to_space_is_reported():
    """A CONV_2D with no inputs (a damaged model) writing what BATCH_TO_SPACE_ND reads: the atrous chain
    search passes it by and the conv's own check names the problem (it raised IndexError)."""
    b = ModelBuilder(description="broken chain")
    x = b.add_tensor("x", TensorType.FLOAT32, (4, 2, 2, 3))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 4, 4, 3))
    d = b.add_tensor("d", TensorType.FLOAT32, (4, 2, 2, 3))
    b.add_operator(B.CONV_2D, [], [d], Conv2DOptions(padding=Padding.VALID, stride_w=1, stride_h=1))
    b.add_operator(B.BATCH_TO_SPACE_ND, [d, b.add_constant("block", np.array([2, 2], np.int32)),
                                         b.add_constant("crops", np.zeros((2, 2), np.int32))], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    it = pydeeplab.Interpreter(model_content=b.finish())
    with pytest.raises(ModelError, match="CONV_2D.*expects 2 to 3 inputs, has 0"):
        it.allocate_tensors()


# -- RESIZE_BILINEAR -> ARG_MAX: one kernel, the resized tensor never written ------------------------------


def _resize_arg_max(dtype, shape, size, flags=(False, False), *, axis=3, out_type=TensorType.INT64,
                    resized_is_output=False, quantization=None) -> bytes:
    """x -> RESIZE_BILINEAR(size) -> r -> ARG_MAX(axis) -> y (r also a graph output if asked)."""
    b = ModelBuilder(description="resize + arg_max")
    tt = tensor_type_of(np.dtype(dtype))
    n, _, _, c = shape
    x = b.add_tensor("x", tt, shape, quantization)
    r = b.add_tensor("r", tt, (n, *size, c), quantization)
    y_shape = [n, *size, c]
    del y_shape[axis]
    y = b.add_tensor("y", out_type, y_shape)
    b.add_operator(B.RESIZE_BILINEAR, [x, b.add_constant("size", np.array(size, np.int32))], [r],
                   ResizeBilinearOptions(align_corners=flags[0], half_pixel_centers=flags[1]))
    b.add_operator(B.ARG_MAX, [r, b.add_constant("axis", np.array([axis], np.int32))], [y], ArgMaxOptions(out_type))
    b.set_inputs([x])
    b.set_outputs([y, r] if resized_is_output else [y])
    return b.finish()


def _tied(rng, dtype, shape) -> np.ndarray:
    """Logits with frequent ties: few distinct values, and channel 3 a copy of channel 1."""
    x = rng.integers(0, 4, shape) * (9 if dtype == np.uint8 else 1.5) + (100 if dtype == np.uint8 else -2)
    x = x.astype(dtype)
    x[..., 3] = x[..., 1]
    return x


@pytest.mark.parametrize("dtype, size, flags", [
    (np.uint8, (37, 29), (False, False)),
    (np.uint8, (37, 29), (True, False)),
    (np.uint8, (5, 4), (False, True)),
    (np.float32, (37, 29), (False, True)),
    (np.float32, (5, 4), (True, False)),
])
def test_resize_then_arg_max_is_one_kernel_exact_with_ties(dtype, size, flags):
    rng = np.random.default_rng(6)
    shape = (2, 7, 9, 6)
    q = quant(0.1, 3) if dtype == np.uint8 else None
    model = _resize_arg_max(dtype, shape, size, flags, quantization=q)
    x = _tied(rng, dtype, shape)
    theirs = run_litert(model, [x])[0]
    assert np.any(theirs == 1) and not np.any(theirs == 3)  # channel 3 ties channel 1 wherever 1 wins
    for kwargs in ({"num_threads": 1}, {"num_threads": 2}):
        it, (ours,) = _run(model, x, backend="numba", **kwargs)
        assert [s.opcode for s in it._program] == [B.RESIZE_BILINEAR]  # the ARG_MAX is computed in it
        assert ours.dtype == np.int64
        np.testing.assert_array_equal(ours, theirs)
    _, (plain,) = _run(model, x, backend="numpy")
    np.testing.assert_array_equal(plain, theirs)
    if dtype == np.float32:
        # NaN never wins, as in ARG_MAX's specification (pydeeplab.reference.reduce; LiteRT's x86
        # build differs there on a last axis): one channel NaN in places, every channel in others.
        x[0, 1, 2, 0] = x[1, 3, 4, :] = np.nan
        _, (ours,) = _run(model, x, backend="numba")
        _, (plain,) = _run(model, x, backend="numpy")
        np.testing.assert_array_equal(ours, plain)


@pytest.mark.parametrize("case", ["resized is an output", "over the width", "int8", "int32 labels"])
def test_resize_then_arg_max_fused_only_where_it_holds(case):
    rng = np.random.default_rng(7)
    shape = (1, 5, 6, 4)
    dtype, kwargs = np.uint8, {"quantization": quant(0.5, 0)}
    if case == "resized is an output":
        kwargs["resized_is_output"] = True
    elif case == "over the width":
        kwargs["axis"] = 2
    elif case == "int8":
        dtype = np.int8
    else:
        kwargs["out_type"] = TensorType.INT32
    model = _resize_arg_max(dtype, shape, (11, 13), **kwargs)
    x = _tied(rng, np.uint8, shape).astype(dtype)
    theirs = run_litert(model, [x])
    it, ours = _run(model, x, backend="numba", num_threads=2)
    assert len(it._program) == (1 if case == "int32 labels" else 2)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)
    # run_op runs the resize as written even where the plan fused it.
    if case == "int32 labels":
        resized = it.run_op(0, [x, np.array([11, 13], np.int32)])[0]
        assert resized.shape == (1, 11, 13, 4)
        np.testing.assert_array_equal(resized.argmax(-1), ours[0])


@pytest.mark.parametrize("dtype, size, flags, case, fuses", [
    (np.int8, (37, 29), (False, False), None, True),
    (np.int8, (37, 29), (True, False), None, True),
    (np.int8, (13, 11), (False, True), None, True),
    (np.int8, (7, 9), (False, False), None, False),  # the same size: the resize is a copy
    (np.int8, (37, 29), (False, False), "resized is an output", False),
    (np.uint8, (37, 29), (False, False), None, False),  # uint8 resizes with the float formula
])
def test_int8_resize_then_dequantize_is_one_kernel(dtype, size, flags, case, fuses):
    """x (int8) -> RESIZE_BILINEAR -> r -> DEQUANTIZE -> y (float32), a float-I/O int8 DeepLab's tail: the
    resize writes y itself where r has no other reader, with LiteRT's bits on 1 and 2 threads."""
    rng = np.random.default_rng(8)
    b = ModelBuilder(description="resize + dequantize")
    tt, shape, q = tensor_type_of(np.dtype(dtype)), (1, 7, 9, 21), _q(0.0473, -5 if dtype == np.int8 else 120)
    x, r = b.add_tensor("x", tt, shape, q), b.add_tensor("r", tt, (1, *size, 21), q)
    y = b.add_tensor("y", TensorType.FLOAT32, (1, *size, 21))
    b.add_operator(B.RESIZE_BILINEAR, [x, b.add_constant("size", np.array(size, np.int32))], [r],
                   ResizeBilinearOptions(align_corners=flags[0], half_pixel_centers=flags[1]))
    b.add_operator(B.DEQUANTIZE, [r], [y])
    b.set_inputs([x])
    b.set_outputs([y, r] if case == "resized is an output" else [y])
    model = b.finish()
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max + 1, shape).astype(dtype)
    theirs = run_litert(model, [x])
    for threads in (1, 2):
        it, ours = _run(model, x, backend="numba", num_threads=threads)
        assert (B.DEQUANTIZE not in [s.opcode for s in it._program]) == fuses
        for a, t in zip(ours, theirs):
            np.testing.assert_array_equal(a, t)


def test_real_model_tail_fused_against_litert(model_path, image_path):
    """dm05's last RESIZE_BILINEAR (33 -> 513, uint8) and ARG_MAX on the logits of a real image: the
    tail, as a model of its own with the real options and quantization, fused, against BUILTIN_REF."""
    from pydeeplab.verification import make_inputs

    content = model_path("deeplabv3_mnv2_dm05_pascal_quant").read_bytes()
    whole = pydeeplab.Interpreter(model_content=content, num_threads=2)
    whole.allocate_tensors()
    assert [s.opcode for s in whole._program[-2:]] == [B.RESIZE_BILINEAR, B.RESIZE_BILINEAR]
    graph = whole.model.main
    resize, arg_max = graph.operators[-2], graph.operators[-1]
    assert (resize.builtin, arg_max.builtin) == (B.RESIZE_BILINEAR, B.ARG_MAX)
    inputs = make_inputs(graph, image_path("bird_segmentation.bmp"))
    unfused = pydeeplab.Interpreter(model_content=content, num_threads=2, experimental_preserve_all_tensors=True)
    unfused.allocate_tensors()
    unfused.set_tensor(graph.inputs[0], inputs[0])
    unfused.invoke()
    logits = unfused.get_tensor(resize.inputs[0])
    x_t, r_t = graph.tensors[resize.inputs[0]], graph.tensors[resize.outputs[0]]
    assert logits.shape == (1, 33, 33, 21) and r_t.shape == (1, 513, 513, 21)
    b = ModelBuilder(description="dm05 tail")
    x = b.add_tensor("x", x_t.type, x_t.shape, x_t.quantization)
    r = b.add_tensor("r", r_t.type, r_t.shape, r_t.quantization)
    y = b.add_tensor("y", graph.tensors[arg_max.outputs[0]].type, (1, 513, 513))
    b.add_operator(B.RESIZE_BILINEAR, [x, b.add_constant("size", np.array([513, 513], np.int32))], [r], resize.options)
    b.add_operator(B.ARG_MAX, [r, b.add_constant("axis", np.array([3], np.int32))], [y], arg_max.options)
    b.set_inputs([x])
    b.set_outputs([y])
    tail = b.finish()
    theirs = run_litert(tail, [logits])[0]
    _, (ours,) = _run(tail, logits, backend="numba", num_threads=2)
    np.testing.assert_array_equal(ours, theirs)
    # and the whole model, fused, gives the labels of the plan as written
    whole.set_tensor(graph.inputs[0], inputs[0])
    whole.invoke()
    np.testing.assert_array_equal(whole.get_tensor(graph.outputs[0]), unfused.get_tensor(graph.outputs[0]))


def _affine_model(rng, conv, scale_shape, fp16=False, mul_act=Activation.NONE, extra_reader=False):
    """x -> ``conv`` (no activation) -> t -> MUL(t, scale) -> m -> ADD(m, offset, RELU6) -> y: the
    batch norm a converter leaves after an atrous chain; scale optionally a DEQUANTIZE of float16."""
    b = ModelBuilder(description="affine")
    f32 = TensorType.FLOAT32
    cout = 6 if conv == B.DEPTHWISE_CONV_2D else 5
    x = b.add_tensor("x", f32, (1, 7, 8, 6))
    t, m, y = (b.add_tensor(n, f32, (1, 7, 8, cout)) for n in "tmy")
    if conv == B.DEPTHWISE_CONV_2D:
        w = b.add_constant("w", rng.standard_normal((1, 3, 3, cout)).astype(np.float32))
        options = DepthwiseConv2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1, depth_multiplier=1)
    else:
        w = b.add_constant("w", rng.standard_normal((cout, 3, 3, 6)).astype(np.float32))
        options = Conv2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1)
    b.add_operator(conv, [x, w, b.add_constant("bias", rng.standard_normal(cout).astype(np.float32))], [t], options)
    values = (rng.standard_normal(scale_shape) + 1).astype(np.float32)
    if fp16:
        scale = b.add_tensor("scale", f32, scale_shape)
        b.add_operator(B.DEQUANTIZE, [b.add_constant("scale16", values.astype(np.float16))], [scale])
    else:
        scale = b.add_constant("scale", values)
    b.add_operator(B.MUL, [t, scale], [m], MulOptions(fused_activation_function=mul_act))
    offset = b.add_constant("offset", rng.standard_normal(cout).astype(np.float32))
    b.add_operator(B.ADD, [offset, m], [y], AddOptions(fused_activation_function=Activation.RELU6))
    outputs = [y]
    if extra_reader:
        z = b.add_tensor("z", f32, (1, 7, 8, cout))
        b.add_operator(B.RELU, [t], [z])
        outputs.append(z)
    b.set_inputs([x])
    b.set_outputs(outputs)
    return b.finish()


@pytest.mark.parametrize("conv", [B.DEPTHWISE_CONV_2D, B.CONV_2D], ids=["depthwise", "conv"])
@pytest.mark.parametrize("scale_shape, fp16, mul_act, extra_reader, folds", [
    ((6,), False, Activation.NONE, False, True),
    ((1, 1, 1, 6), True, Activation.NONE, False, True),  # float16 behind DEQUANTIZE, as TF Hub stores it
    ((1,), False, Activation.NONE, False, True),  # one scale for all channels
    ((1, 7, 8, 6), False, Activation.NONE, False, False),  # not per channel
    ((6,), False, Activation.RELU, False, False),  # the MUL clamps
    ((6,), False, Activation.NONE, True, False),  # the conv's output has another reader
])
def test_batch_norm_after_a_float_conv_goes_into_its_weights(conv, scale_shape, fp16, mul_act, extra_reader, folds):
    rng = np.random.default_rng(8)
    cout = 6 if conv == B.DEPTHWISE_CONV_2D else 5
    scale_shape = tuple(cout if d == 6 else d for d in scale_shape)
    model = _affine_model(rng, conv, scale_shape, fp16, mul_act, extra_reader)
    x = rng.standard_normal((1, 7, 8, 6)).astype(np.float32)
    theirs = run_litert(model, [x])
    it, outs = _run(model, x, backend="numba")
    ran = [s.opcode for s in it._program]
    assert (B.MUL not in ran and B.ADD not in ran) == folds, ran
    for ours, ref in zip(outs, theirs):
        assert np.abs(ours - ref).max() <= 1e-5 * (1 + np.abs(ref).max())
    plain, _ = _run(model, x, backend="numba", experimental_preserve_all_tensors=True)
    assert B.MUL in [s.opcode for s in plain._program]


def _aspp_model(rng, order="pv", resize=B.RESIZE_BILINEAR, pool=(5, 6), batch=1, concat_read=False,
                extra_reader=False, varying=1):
    """x [batch,5,6,4] -> 1x1 conv v [.,5,6,7] (``varying`` such parts); x -> AVERAGE_POOL_2D ``pool`` ->
    g -> 1x1 conv -> h -> ``resize`` to 5x6 -> p [.,5,6,3]; CONCATENATION in ``order`` (p pooled,
    v varying) -> 1x1 conv (RELU) -> y: DeepLab's ASPP with its image-pooling branch."""
    b = ModelBuilder(description="aspp")
    f32 = TensorType.FLOAT32
    x = b.add_tensor("x", f32, (batch, 5, 6, 4))
    one = Conv2DOptions(padding=Padding.VALID, stride_w=1, stride_h=1)
    parts = {}
    for k in range(varying):
        parts[f"v{k}"] = b.add_tensor(f"v{k}", f32, (batch, 5, 6, 7))
        b.add_operator(B.CONV_2D, [x, b.add_constant(f"wv{k}", rng.standard_normal((7, 1, 1, 4)).astype(np.float32)),
                                   b.add_constant(f"bv{k}", rng.standard_normal(7).astype(np.float32))], [parts[f"v{k}"]], one)
    gh, gw = 5 - pool[0] + 1, 6 - pool[1] + 1
    g, h = b.add_tensor("g", f32, (batch, gh, gw, 4)), b.add_tensor("h", f32, (batch, gh, gw, 3))
    b.add_operator(B.AVERAGE_POOL_2D, [x], [g], Pool2DOptions(padding=Padding.VALID, stride_w=1, stride_h=1,
                                                              filter_height=pool[0], filter_width=pool[1]))
    b.add_operator(B.CONV_2D, [g, b.add_constant("wg", rng.standard_normal((3, 1, 1, 4)).astype(np.float32)),
                               b.add_constant("bg", rng.standard_normal(3).astype(np.float32))], [h],
                   Conv2DOptions(padding=Padding.VALID, stride_w=1, stride_h=1, fused_activation_function=Activation.RELU))
    size = b.add_constant("size", np.array([5, 6], np.int32))
    options = ResizeBilinearOptions() if resize == B.RESIZE_BILINEAR else ResizeNearestNeighborOptions()
    for name in sorted(set(order) - {"v"}):
        parts[name] = b.add_tensor(name, f32, (batch, 5, 6, 3))
        b.add_operator(resize, [h, size], [parts[name]], options)
    names = [f"v{order[:i].count('v')}" if c == "v" else c for i, c in enumerate(order)]
    cin = sum(7 if n.startswith("v") else 3 for n in names)
    c, y = b.add_tensor("c", f32, (batch, 5, 6, cin)), b.add_tensor("y", f32, (batch, 5, 6, 8))
    b.add_operator(B.CONCATENATION, [parts[n] for n in names], [c], ConcatenationOptions(axis=3))
    b.add_operator(B.CONV_2D, [c, b.add_constant("w", rng.standard_normal((8, 1, 1, cin)).astype(np.float32)),
                               b.add_constant("bias", rng.standard_normal(8).astype(np.float32))], [y],
                   Conv2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1, fused_activation_function=Activation.RELU))
    outputs = [y]
    if extra_reader:
        z = b.add_tensor("z", f32, (batch, 5, 6, 3))
        b.add_operator(B.RELU, [parts["p"]], [z])
        outputs.append(z)
    if concat_read:
        outputs.append(c)
    b.set_inputs([x])
    b.set_outputs(outputs)
    return b.finish()


@pytest.mark.parametrize("kwargs, fuses", [
    ({}, True),
    ({"order": "vp"}, True),  # the pooled branch last
    ({"order": "pvq"}, True),  # two pooled parts, the varying one between them
    ({"resize": B.RESIZE_NEAREST_NEIGHBOR}, True),
    ({"extra_reader": True}, True),  # the resize runs for its other reader; the conv still skips it
    ({"order": "pvv", "varying": 2}, False),  # two parts vary over pixels
    ({"pool": (3, 3)}, False),  # the pooled tensor is 3x4: its resize varies
    ({"batch": 2}, False),
    ({"concat_read": True}, False),  # the concatenation is a graph output
], ids=["pooled-first", "pooled-last", "two-pooled", "nearest", "resize-read-elsewhere", "two-varying",
        "not-1x1", "batch-2", "concat-output"])
def test_aspp_projection_takes_its_image_pooling_branch_into_its_bias(kwargs, fuses):
    rng = np.random.default_rng(9)
    model = _aspp_model(rng, **kwargs)
    x = rng.standard_normal((kwargs.get("batch", 1), 5, 6, 4)).astype(np.float32)
    theirs = run_litert(model, [x])
    it, outs = _run(model, x, backend="numba")
    ran = [s.opcode for s in it._program]
    assert (B.CONCATENATION not in ran) == fuses, ran
    pooled = sum(c in "pq" for c in kwargs.get("order", "pv"))
    resizes = int(kwargs.get("extra_reader", False)) if fuses else pooled
    assert ran.count(kwargs.get("resize", B.RESIZE_BILINEAR)) == resizes, ran
    for ours, ref in zip(outs, theirs):
        assert np.abs(ours - ref).max() <= 1e-5 * (1 + np.abs(ref).max())
    plain, _ = _run(model, x, backend="numba", experimental_preserve_all_tensors=True)
    assert B.CONCATENATION in [s.opcode for s in plain._program]


@pytest.mark.parametrize("filter_shape, stride, fuses", [
    ((16, 3, 3, 3), 2, True),  # a first conv on an image (the direct tile)
    ((40, 1, 1, 24), 1, True),  # 1x1 (the pointwise tile: a pair of blocks and a masked one)
    ((8, 3, 3, 24), 1, False),  # 3x3 over 24 channels: im2col and BLAS, no HARD_SWISH of their own
], ids=["direct", "pointwise", "im2col"])
def test_hard_swish_after_a_float_conv_is_applied_by_its_tile(filter_shape, stride, fuses):
    rng = np.random.default_rng(10)
    b = ModelBuilder(description="hard swish")
    f32 = TensorType.FLOAT32
    cout, kh, kw, cin = filter_shape
    x = b.add_tensor("x", f32, (1, 17, 18, cin))
    oh, ow = -(-17 // stride), -(-18 // stride)
    c, y = b.add_tensor("c", f32, (1, oh, ow, cout)), b.add_tensor("y", f32, (1, oh, ow, cout))
    b.add_operator(B.CONV_2D, [x, b.add_constant("w", rng.standard_normal(filter_shape).astype(np.float32)),
                               b.add_constant("bias", rng.standard_normal(cout).astype(np.float32))], [c],
                   Conv2DOptions(padding=Padding.SAME, stride_w=stride, stride_h=stride))
    b.add_operator(B.HARD_SWISH, [c], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    model = b.finish()
    xv = (rng.standard_normal((1, 17, 18, cin)) * 2).astype(np.float32)
    theirs = run_litert(model, [xv])[0]
    it, (ours,) = _run(model, xv, backend="numba", num_threads=2)
    assert (B.HARD_SWISH not in [s.opcode for s in it._program]) == fuses
    assert np.abs(ours - theirs).max() <= 1e-5 * (1 + np.abs(theirs).max())
    plain, (unfused,) = _run(model, xv, backend="numba", experimental_preserve_all_tensors=True)
    assert B.HARD_SWISH in [s.opcode for s in plain._program]
    np.testing.assert_array_equal(ours, unfused)  # the same sums, the same HARD_SWISH: the same bits


@pytest.mark.parametrize("scale_shape, add_act, mul_act, extra_reader, fuses", [
    ((1, 1, 1, 6), Activation.NONE, Activation.NONE, False, True),  # squeeze-and-excite, then the residual
    ((1, 1, 1, 1), Activation.RELU6, Activation.NONE, False, True),  # one value; the ADD clamps
    ((1, 5, 7, 6), Activation.NONE, Activation.NONE, False, True),  # two whole tensors
    ((1, 1, 1, 6), Activation.NONE, Activation.RELU, False, False),  # the MUL clamps
    ((1, 1, 1, 6), Activation.NONE, Activation.NONE, True, False),  # the product has another reader
], ids=["row", "scalar-relu6", "full", "mul-relu", "product-read-elsewhere"])
def test_add_of_a_product_runs_as_one_pass(scale_shape, add_act, mul_act, extra_reader, fuses):
    rng = np.random.default_rng(11)
    b = ModelBuilder(description="multiply add")
    f32 = TensorType.FLOAT32
    x, r = b.add_tensor("x", f32, (1, 5, 7, 6)), b.add_tensor("r", f32, (1, 5, 7, 6))
    s = b.add_tensor("s", f32, scale_shape)
    m, y = b.add_tensor("m", f32, (1, 5, 7, 6)), b.add_tensor("y", f32, (1, 5, 7, 6))
    b.add_operator(B.MUL, [s, x], [m], MulOptions(fused_activation_function=mul_act))
    b.add_operator(B.ADD, [r, m], [y], AddOptions(fused_activation_function=add_act))
    outputs = [y]
    if extra_reader:
        z = b.add_tensor("z", f32, (1, 5, 7, 6))
        b.add_operator(B.RELU, [m], [z])
        outputs.append(z)
    b.set_inputs([x, r, s])
    b.set_outputs(outputs)
    model = b.finish()
    inputs = [rng.standard_normal(shape).astype(np.float32) * 4 for shape in ((1, 5, 7, 6), (1, 5, 7, 6), scale_shape)]
    theirs = run_litert(model, inputs)
    runs = {}
    for preserve in (False, True):
        it = pydeeplab.Interpreter(model_content=model, backend="numba", experimental_preserve_all_tensors=preserve)
        it.allocate_tensors()
        for d, v in zip(it.get_input_details(), inputs):
            it.set_tensor(d["index"], v)
        it.invoke()
        runs[preserve] = (it, [it.get_tensor(d["index"]) for d in it.get_output_details()])
    it, ours = runs[False]
    assert (B.MUL not in [s.opcode for s in it._program]) == fuses
    assert B.MUL in [s.opcode for s in runs[True][0]._program]
    for o, ref, plain in zip(ours, theirs, runs[True][1]):
        np.testing.assert_allclose(o, ref, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(o, plain)  # the product rounded, then the sum: the same bits


@pytest.mark.parametrize("filter_shape, residual_first, conv_act, add_act, residual_shape, extra_reader, fuses", [
    ((40, 1, 1, 24), False, Activation.NONE, Activation.RELU6, None, False, True),  # a pair of blocks, a masked one
    ((32, 1, 1, 12), True, Activation.RELU, Activation.NONE, None, False, True),  # the conv clamps first
    ((16, 1, 1, 8), False, Activation.NONE, Activation.NONE, None, True, False),  # the conv's output read elsewhere
    ((16, 3, 3, 8), False, Activation.NONE, Activation.NONE, None, False, False),  # 3x3: no tile that adds
    ((16, 1, 1, 8), False, Activation.NONE, Activation.NONE, (1, 1, 1, 16), False, False),  # broadcast
], ids=["pointwise-relu6", "residual-first", "read-elsewhere", "3x3", "broadcast"])
def test_residual_add_after_a_1x1_conv_is_added_by_its_tile(filter_shape, residual_first, conv_act, add_act,
                                                            residual_shape, extra_reader, fuses):
    """MobileNet's residual: ADD(1x1 conv, block input) runs as the conv, adding the other input as it
    stores each output: the same bits as the two operators (non-finite residuals included), on 1 and
    2 threads, and within tolerance of LiteRT."""
    rng = np.random.default_rng(12)
    b = ModelBuilder(description="conv add")
    f32 = TensorType.FLOAT32
    cout, kh, kw, cin = filter_shape
    shape = (1, 17, 18, cout)
    residual_shape = residual_shape or shape
    x, r = b.add_tensor("x", f32, (1, 17, 18, cin)), b.add_tensor("r", f32, residual_shape)
    c, y = b.add_tensor("c", f32, shape), b.add_tensor("y", f32, shape)
    b.add_operator(B.CONV_2D, [x, b.add_constant("w", rng.standard_normal(filter_shape).astype(np.float32)),
                               b.add_constant("bias", rng.standard_normal(cout).astype(np.float32))], [c],
                   Conv2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1, fused_activation_function=conv_act))
    b.add_operator(B.ADD, [r, c] if residual_first else [c, r], [y], AddOptions(fused_activation_function=add_act))
    outputs = [y]
    if extra_reader:
        z = b.add_tensor("z", f32, shape)
        b.add_operator(B.RELU, [c], [z])
        outputs.append(z)
    b.set_inputs([x, r])
    b.set_outputs(outputs)
    model = b.finish()
    finite = [rng.standard_normal((1, 17, 18, cin)).astype(np.float32) * 2,
              rng.standard_normal(residual_shape).astype(np.float32) * 4]
    odd = [finite[0], finite[1].copy()]
    odd[1].reshape(-1)[:5] = [np.inf, -np.inf, np.nan, -0.0, 1e38]

    def run(inputs, **kwargs):
        it = pydeeplab.Interpreter(model_content=model, backend="numba", **kwargs)
        it.allocate_tensors()
        for d, v in zip(it.get_input_details(), inputs):
            it.set_tensor(d["index"], v)
        it.invoke()
        return it, [it.get_tensor(d["index"]) for d in it.get_output_details()]

    theirs = run_litert(model, finite)
    for inputs in (finite, odd):
        _, plain = run(inputs, experimental_preserve_all_tensors=True)
        for threads in (1, 2):
            it, ours = run(inputs, num_threads=threads)
            assert (B.CONV_2D not in [s.opcode for s in it._program]) == fuses  # the ADD step runs the conv
            for o, p in zip(ours, plain):
                np.testing.assert_array_equal(o, p)  # the conv's output rounded, then the sum: the same bits
            if inputs is finite:
                for o, ref in zip(ours, theirs):
                    assert np.abs(o - ref).max() <= 1e-5 * (1 + np.abs(ref).max())


@pytest.mark.parametrize("channels, hidden, pool_act, relu_op, conv_act, case, fuses", [
    (16, 8, Activation.NONE, B.RELU, Activation.NONE, "two convs", True),  # the column sums; a RELU taken in
    (40, None, Activation.RELU, None, Activation.RELU6, "two convs", True),  # one conv; the window kernel
    (24, 8, Activation.NONE, B.RELU6, Activation.NONE, "read elsewhere", False),  # a conv's output read twice
    (16, 8, Activation.NONE, None, Activation.NONE, "not global", False),  # a 2x2 average
    (16, 8, Activation.NONE, None, Activation.NONE, "3x3 conv", False),  # not a 1x1 filter
    (16, 8, Activation.NONE, B.RELU, Activation.RELU_N1_TO_1, "two convs", False),  # a RELU the conv cannot take
], ids=["selfie", "one-conv", "read-elsewhere", "not-global", "3x3", "clamp-after-clamp"])
def test_squeeze_excite_gate_runs_as_one_step(channels, hidden, pool_act, relu_op, conv_act, case, fuses):
    """pool -> conv (-> RELU) (-> conv) -> LOGISTIC -> MUL by the map: the gate is one step reading the map,
    with the bits of the operators (on values of magnitudes spread enough that another order of the
    pool's sums shows), on 1 and 2 threads, within tolerance of LiteRT; not where a tensor between has
    another reader, the pool is not global or a filter not 1x1."""
    rng = np.random.default_rng(21)
    b = ModelBuilder(description="squeeze excite")
    f32 = TensorType.FLOAT32
    shape = (1, 9, 10, channels)
    x = b.add_tensor("x", f32, shape)
    pooled_hw = (2, 2) if case == "not global" else (1, 1)
    pooled = b.add_tensor("pooled", f32, (1, *pooled_hw, channels))
    window = (5, 5) if case == "not global" else shape[1:3]
    b.add_operator(B.AVERAGE_POOL_2D, [x], [pooled], Pool2DOptions(
        padding=Padding.VALID, stride_w=5, stride_h=5, filter_height=window[0], filter_width=window[1],
        fused_activation_function=pool_act))
    outputs = []

    def conv(src, cin, cout, act, k=1):
        name = f"conv{src}"
        out = b.add_tensor(name, f32, (1, *pooled_hw, cout))
        w = b.add_constant(name + "w", rng.standard_normal((cout, k, k, cin)).astype(np.float32) / 3)
        bias = b.add_constant(name + "b", rng.standard_normal(cout).astype(np.float32))
        b.add_operator(B.CONV_2D, [src, w, bias], [out], Conv2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1,
                                                                       fused_activation_function=act))
        return out

    t = conv(pooled, channels, hidden or channels, conv_act, k=3 if case == "3x3 conv" else 1)
    if relu_op is not None:
        r = b.add_tensor("r", f32, (1, *pooled_hw, hidden))
        b.add_operator(relu_op, [t], [r])
        if case == "read elsewhere":
            outputs.append(r)
        t = r
    if hidden is not None:
        t = conv(t, hidden, channels, Activation.NONE)
    gate = b.add_tensor("gate", f32, (1, *pooled_hw, channels))
    b.add_operator(B.LOGISTIC, [t], [gate])
    y = b.add_tensor("y", f32, shape)
    if case == "not global":
        outputs.append(gate)
    else:
        b.add_operator(B.MUL, [x, gate], [y], MulOptions())
        outputs.append(y)
    b.set_inputs([x])
    b.set_outputs(outputs)
    model = b.finish()
    finite = rng.standard_normal(shape).astype(np.float32) * 3
    spread = (finite * 10.0 ** rng.uniform(-4, 4, shape)).astype(np.float32)  # where the order of the sums shows

    def run(x, **kwargs):
        it = pydeeplab.Interpreter(model_content=model, backend="numba", **kwargs)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        return it, [it.get_tensor(d["index"]) for d in it.get_output_details()]

    theirs = run_litert(model, [finite])
    for values in (finite, spread):
        _, plain = run(values, experimental_preserve_all_tensors=True)
        for threads in (1, 2):
            it, ours = run(values, num_threads=threads)
            assert (B.AVERAGE_POOL_2D not in [s.opcode for s in it._program]) == fuses
            for o, p in zip(ours, plain):
                np.testing.assert_array_equal(o, p)  # the operators' own kernels in their order
            if values is finite:
                for o, ref in zip(ours, theirs):
                    np.testing.assert_allclose(o, ref, rtol=1e-6, atol=1e-6)
    if fuses:  # the tensors between read as zeros, as LiteRT's intermediates may
        assert not it.get_tensor(pooled).any()


def test_an_operator_without_inputs_that_a_fusion_would_take_is_reported():
    """A RESIZE_BILINEAR with no inputs (a damaged model) where a resize -> ARG_MAX fusion would apply:
    the fusion's check read its input 0 (IndexError at allocate); now the resize's own check names
    the problem."""
    b = ModelBuilder(description="broken resize")
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 4, 4, 3))
    r = b.add_tensor("r", TensorType.FLOAT32, (1, 8, 8, 3))
    y = b.add_tensor("y", TensorType.INT64, (1, 8, 8))
    b.add_operator(B.RESIZE_BILINEAR, [], [r], ResizeBilinearOptions())
    b.add_operator(B.ARG_MAX, [r, b.add_constant("axis", np.array([3], np.int32))], [y],
                   ArgMaxOptions(output_type=TensorType.INT64))
    b.set_inputs([x])
    b.set_outputs([y])
    with pytest.raises(ModelError, match="RESIZE_BILINEAR.*expects 2 inputs, has 0"):
        pydeeplab.Interpreter(model_content=b.finish()).allocate_tensors()
