"""The flatbuffer writer (models LiteRT loads and runs as meant, round trip through the reader)
and the test oracle built on it (tests/oracle.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from oracle import T, check_op, compare, data_dir, quant, require_data, run_litert, run_ours_op, single_op_model
from pydeeplab.ops import REGISTRY, Prepared
from pydeeplab.tflite.model import Quantization
from pydeeplab.tflite.options import (
    AddOptions,
    Conv2DOptions,
    DepthwiseConv2DOptions,
    EmptyOptions,
    ReducerOptions,
    ReshapeOptions,
    SoftmaxOptions,
    default_options,
)
from pydeeplab.tflite.reader import read_model
from pydeeplab.tflite.schema import Activation, BuiltinOperator, MirrorPadMode, Padding, TensorType
from pydeeplab.tflite.writer import ModelBuilder

B = BuiltinOperator


# -- direct NumPy conv, to check that what the writer wrote means what we meant --------------

def _same_pads(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def conv2d_nhwc(x: np.ndarray, w: np.ndarray, bias: np.ndarray, stride: int | tuple[int, int],
                dilation: int, padding: Padding) -> np.ndarray:
    """x (N,H,W,C), w (O,KH,KW,C), float64 result (N,OH,OW,O); zero padding; stride (h, w)."""
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    _, h, wd, _ = x.shape
    _, kh, kw, _ = w.shape
    if padding == Padding.SAME:
        (pt, pb), (pl, pr) = _same_pads(h, kh, sh, dilation), _same_pads(wd, kw, sw, dilation)
    else:
        pt = pb = pl = pr = 0
    xp = np.pad(x.astype(np.float64), ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh = (xp.shape[1] - (kh - 1) * dilation - 1) // sh + 1
    ow = (xp.shape[2] - (kw - 1) * dilation - 1) // sw + 1
    out = np.zeros((x.shape[0], oh, ow, w.shape[0]))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i * dilation: i * dilation + (oh - 1) * sh + 1: sh,
                       j * dilation: j * dilation + (ow - 1) * sw + 1: sw, :]
            out += patch @ w[:, i, j, :].astype(np.float64).T
    return out + bias


def _conv_model(x: T, w: T, bias: T, out: T, options: Conv2DOptions) -> bytes:
    return single_op_model(B.CONV_2D, [x, w, bias], [out], options)


def test_float_conv_runs_in_litert():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 9, 7, 3)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    opts = Conv2DOptions(padding=Padding.SAME, stride_w=2, stride_h=2)
    model = _conv_model(T(x), T(w, const=True), T(bias, const=True), T(None), opts)
    want = conv2d_nhwc(x, w, bias, 2, 1, Padding.SAME)
    for resolver in ("ref", "builtin", "default"):
        (got,) = run_litert(model, [x], resolver)
        assert got.shape == (1, 5, 4, 5) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_float_conv_dilation_and_relu6():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 10, 10, 2)).astype(np.float32) * 3
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    opts = Conv2DOptions(padding=Padding.VALID, stride_w=1, stride_h=1, dilation_w_factor=2,
                         dilation_h_factor=2, fused_activation_function=Activation.RELU6)
    (got,) = run_litert(_conv_model(T(x), T(w, const=True), T(bias, const=True), T(None), opts), [x])
    want = np.clip(conv2d_nhwc(x, w, bias, 1, 2, Padding.VALID), 0, 6)
    assert got.shape == (1, 6, 6, 4)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def _requantized(real: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(np.round(real / scale) + zero_point, info.min, info.max)


def _assert_close_quantized(got: np.ndarray, want: np.ndarray) -> None:
    # The float expectation and TFLite's fixed-point requantization may round a tie
    # differently: allow 1 LSB, but demand that nearly all elements agree exactly.
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    assert diff.max() <= 1, f"max diff {diff.max()}"
    assert np.mean(diff == 0) > 0.97


def test_uint8_conv_runs_in_litert():
    rng = np.random.default_rng(2)
    xs, xz, ws, wz, ys, yz = 0.05, 120, 0.01, 131, 0.4, 100
    xq = rng.integers(0, 256, (1, 6, 6, 4), dtype=np.uint8)
    wq = rng.integers(0, 256, (3, 3, 3, 4), dtype=np.uint8)
    bq = rng.integers(-2000, 2000, 3).astype(np.int32)
    opts = Conv2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1)
    model = _conv_model(T(xq, quant=quant(xs, xz)), T(wq, quant=quant(ws, wz), const=True),
                        T(bq, quant=quant(xs * ws, 0), const=True),
                        T(None, TensorType.UINT8, quant=quant(ys, yz)), opts)
    (got,) = run_litert(model, [xq])
    assert got.dtype == np.uint8 and got.shape == (1, 6, 6, 3)
    # The zero-padded border is padded with the input zero point: real value 0.
    real = conv2d_nhwc((xq.astype(np.float64) - xz) * xs, (wq.astype(np.float64) - wz) * ws,
                       bq * (xs * ws), 1, 1, Padding.SAME)
    _assert_close_quantized(got, _requantized(real, ys, yz, np.uint8))
    assert len(np.unique(got)) > 50  # the test exercises the range, not a saturated constant


def test_int8_per_channel_conv_runs_in_litert():
    rng = np.random.default_rng(3)
    xs, xz, ys, yz = 0.04, -7, 0.4, 5
    w_scales = np.array([0.002, 0.01, 0.05, 0.02], np.float32)  # very different: a wrong
    xq = rng.integers(-128, 128, (1, 7, 7, 3), dtype=np.int8)     # channel mapping shows
    wq = rng.integers(-127, 128, (4, 3, 3, 3), dtype=np.int8)
    bias_scales = xs * w_scales
    bq = rng.integers(-3000, 3000, 4).astype(np.int32)
    opts = Conv2DOptions(padding=Padding.VALID, stride_w=2, stride_h=1)
    model = _conv_model(T(xq, quant=quant(xs, xz)), T(wq, quant=quant(w_scales, 0, 0), const=True),
                        T(bq, quant=quant(bias_scales, 0, 0), const=True),
                        T(None, TensorType.INT8, quant=quant(ys, yz)), opts)
    (got,) = run_litert(model, [xq])
    assert got.dtype == np.int8 and got.shape == (1, 5, 3, 4)
    real = conv2d_nhwc((xq.astype(np.float64) - xz) * xs,
                       wq.astype(np.float64) * w_scales.astype(np.float64)[:, None, None, None],
                       bq * bias_scales.astype(np.float64), (1, 2), 1, Padding.VALID)
    _assert_close_quantized(got, _requantized(real, ys, yz, np.int8))


def test_operator_code_above_127():
    # SIGN (158) does not fit deprecated_builtin_code: it must carry 127 there and 158 in builtin_code.
    x = np.array([[-2.5, 0.0, 3.0, -0.0, 1e-30]], np.float32)
    model = single_op_model(B.SIGN, [T(x)], [T(None)])
    (got,) = run_litert(model, [x])
    np.testing.assert_array_equal(got, np.sign(x))
    assert read_model(model).operator_codes[0].builtin_code == B.SIGN


# -- structure: alignment, deduplication, round trip ----------------------------------------

def _round_trip_builder() -> tuple[ModelBuilder, dict]:
    rng = np.random.default_rng(4)
    b = ModelBuilder(description="round trip")
    q_in = Quantization(np.array([0.5], np.float32), np.array([3], np.int64), 0,
                        min=np.array([-1.5], np.float32), max=np.array([126.0], np.float32))
    x = b.add_tensor("x", TensorType.UINT8, (1, 8, 8, 3), q_in, shape_signature=(-1, 8, 8, 3))
    w = b.add_constant("w", rng.integers(0, 255, (4, 3, 3, 3), dtype=np.uint8), quant(0.02, 128))
    bias = b.add_constant("bias", np.arange(4, dtype=np.int32), quant(0.01, 0))
    y = b.add_tensor("y", TensorType.UINT8, (1, 4, 4, 4), quant(0.1, 7))
    dw = b.add_constant("dw", rng.integers(-127, 127, (1, 3, 3, 4), dtype=np.int8),
                        quant([0.1, 0.2, 0.3, 0.4], 0, dim=3))
    z = b.add_tensor("z", TensorType.UINT8, (1, 4, 4, 4), quant(0.1, 7))
    s = b.add_tensor("s", TensorType.UINT8, (1, 4, 4, 4), quant(0.2, 9))
    f = b.add_tensor("f", TensorType.FLOAT32, (1, 4, 4, 4))
    shape = b.add_constant("shape", np.array([1, 64], np.int32))
    r = b.add_tensor("r", TensorType.FLOAT32, (1, 64))
    axis = b.add_constant("axis", np.array([1], np.int32))
    m = b.add_tensor("m", TensorType.FLOAT32, (1, 1))
    g = b.add_tensor("g", TensorType.FLOAT32, (1, 1))
    pads = b.add_constant("pads", np.zeros((2, 2), np.int64))
    p = b.add_tensor("p", TensorType.FLOAT32, (1, 1), is_variable=True)
    h = b.add_tensor("h", TensorType.FLOAT16, (2,))
    sm = b.add_tensor("sm", TensorType.FLOAT32, (1, 64))
    ops = [
        (B.CONV_2D, [x, w, bias], [y], Conv2DOptions(Padding.SAME, 2, 2, Activation.RELU6, 1, 1), 3),
        (B.DEPTHWISE_CONV_2D, [y, dw, -1], [z],
         DepthwiseConv2DOptions(Padding.VALID, 1, 1, 1, Activation.NONE, 2, 3), 2),
        (B.ADD, [y, z], [s], AddOptions(Activation.RELU, pot_scale_int16=False), 2),
        (B.DEQUANTIZE, [s], [f], None, 1),
        (B.RESHAPE, [f, shape], [r], ReshapeOptions(new_shape=(1, 64)), 1),
        (B.MEAN, [r, axis], [m], ReducerOptions(keep_dims=True), 1),
        (B.SIGN, [m], [g], None, 1),
        (B.PAD, [g, pads], [p], EmptyOptions(), 1),
        (B.SOFTMAX, [r], [sm], SoftmaxOptions(beta=0.75), 1),
        (B.CONV_2D, [x, w, -1], [y], Conv2DOptions(), 3),  # same code and version: shared opcode
        (B.CONV_2D, [x, w, -1], [y], Conv2DOptions(), 1),  # other version: its own opcode
        (B.SQUEEZE, [r], [sm], None, 1),
    ]
    for op in ops:
        b.add_operator(*op)
    b.set_inputs([x, h])
    b.set_outputs([sm, p])
    b.add_metadata("min_runtime_version", b"1.14.0\x00")
    b.add_metadata("empty", b"")
    b.add_signature("serving_default", {"image": x}, {"probs": sm, "pad": p})
    b.add_signature("second", {}, {"g": g})
    expect = dict(ops=ops, inputs=(x, h), outputs=(sm, p))
    return b, expect


def _quant_equal(a: Quantization | None, b: Quantization | None) -> None:
    assert (a is None) == (b is None)
    if a is None:
        return
    np.testing.assert_array_equal(a.scales, b.scales)
    assert a.scales.dtype == np.float32
    np.testing.assert_array_equal(a.zero_points, b.zero_points)
    assert a.quantized_dimension == b.quantized_dimension
    for name in ("min", "max"):
        ea, eb = getattr(a, name), getattr(b, name)
        assert (ea is None) == (eb is None), name
        if ea is not None:
            np.testing.assert_array_equal(ea, eb)


def test_round_trip_every_field():
    b, expect = _round_trip_builder()
    data = b.finish()
    model = read_model(data)
    assert model.version == 3 and model.description == "round trip"
    assert data[4:8] == b"TFL3"
    assert len(model.subgraphs) == 1 and model.main.name == "main"
    g = model.main
    assert g.inputs == expect["inputs"] and g.outputs == expect["outputs"]

    # Tensors: every field, constants' data byte for byte.
    assert len(g.tensors) == len(b._tensors)
    for i, (got, want) in enumerate(zip(g.tensors, b._tensors)):
        assert got.index == i
        assert (got.name, got.type, got.shape, got.shape_signature, got.buffer, got.is_variable) == (
            want.name, want.type, want.shape, want.shape_signature, want.buffer, want.is_variable)
        _quant_equal(got.quantization, want.quantization)
        assert not got.sparse
        if want.buffer:
            assert got.data is not None and got.data.dtype == want.type.dtype
            assert got.data.tobytes() == b._buffers[want.buffer]
        else:
            assert got.data is None
    assert g.tensors[0].shape_signature == (-1, 8, 8, 3)
    assert g.tensors[1].data.dtype == np.uint8 and g.tensors[13].data.dtype == np.int64

    # Operator codes: deduplicated by (code, version), first use first.
    codes = [(c.builtin_code, c.version) for c in model.operator_codes]
    want_codes = list(dict.fromkeys((int(op[0]), op[4]) for op in expect["ops"]))
    assert codes == want_codes
    assert all(c.custom_code is None for c in model.operator_codes)

    # Operators: code, tensors (with -1), options (a missing table reads as the defaults).
    assert len(g.operators) == len(expect["ops"])
    for i, (got, (code, ins, outs, opts, version)) in enumerate(zip(g.operators, expect["ops"])):
        assert got.index == i
        assert (got.builtin, got.code.version) == (code, version)
        assert got.inputs == tuple(ins) and got.outputs == tuple(outs)
        assert got.options == (opts if opts is not None else default_options(code)), code.name
        assert got.custom_options is None and got.intermediates == ()
    assert g.operators[0].opcode_index == g.operators[9].opcode_index != g.operators[10].opcode_index

    # Buffers: 0 is the empty sentinel; metadata point at their own buffers.
    assert len(model.buffers[0]) == 0
    assert [bytes(mv) for mv in model.buffers] == b._buffers
    assert model.metadata == {"min_runtime_version": b"1.14.0\x00", "empty": b""}

    # Signatures.
    assert [s.key for s in model.signature_defs] == ["serving_default", "second"]
    sig = model.signature_defs[0]
    assert sig.inputs == {"image": 0} and sig.outputs == {"probs": expect["outputs"][0], "pad": expect["outputs"][1]}
    assert sig.subgraph_index == 0
    assert model.signature_defs[1].inputs == {} and model.signature_defs[1].outputs == {"g": 12}


def test_options_with_every_field_set_round_trip():
    # Non-default values in every slot of the option tables DeepLab uses.
    from pydeeplab.tflite import options as O

    cases = {
        B.CONV_2D: O.Conv2DOptions(Padding.VALID, 3, 4, Activation.TANH, 5, 6, TensorType.INT32),
        B.DEPTHWISE_CONV_2D: O.DepthwiseConv2DOptions(Padding.VALID, 2, 3, 4, Activation.RELU, 5, 6),
        B.AVERAGE_POOL_2D: O.Pool2DOptions(Padding.VALID, 2, 3, 4, 5, Activation.RELU_N1_TO_1),
        B.FULLY_CONNECTED: O.FullyConnectedOptions(Activation.RELU, 1, True, True, TensorType.INT64),
        B.CONCATENATION: O.ConcatenationOptions(-1, Activation.RELU6),
        B.SUB: O.SubOptions(Activation.RELU, False),
        B.MUL: O.MulOptions(Activation.RELU6),
        B.RESIZE_BILINEAR: O.ResizeBilinearOptions(7, 8, True, True),
        B.RESIZE_NEAREST_NEIGHBOR: O.ResizeNearestNeighborOptions(True, True),
        B.SQUEEZE: O.SqueezeOptions((0, 2)),
        B.RESHAPE: O.ReshapeOptions(()),
        B.ARG_MAX: O.ArgMaxOptions(TensorType.INT64),
        B.TRANSPOSE_CONV: O.TransposeConvOptions(Padding.VALID, 2, 3, Activation.RELU, TensorType.INT64),
        B.STRIDED_SLICE: O.StridedSliceOptions(1, 2, 4, 8, 16, True),
        B.REDUCE_MAX: O.ReducerOptions(True),
        B.QUANTIZE: O.EmptyOptions(),
        B.DIV: O.DivOptions(Activation.RELU6),
        B.SPACE_TO_DEPTH: O.SpaceToDepthOptions(3),
        B.DEPTH_TO_SPACE: O.DepthToSpaceOptions(4),
        B.GATHER: O.GatherOptions(2, 1),
        B.CAST: O.CastOptions(TensorType.INT32, TensorType.UINT8),
        B.SHAPE: O.ShapeOptions(TensorType.INT64),
        B.PACK: O.PackOptions(3, -1),
        B.UNPACK: O.UnpackOptions(2, 1),
        B.LEAKY_RELU: O.LeakyReluOptions(0.25),
        B.MAXIMUM: O.EmptyOptions(),
        B.SPLIT: O.SplitOptions(3),
        B.SPLIT_V: O.SplitVOptions(2),
        B.MIRROR_PAD: O.MirrorPadOptions(MirrorPadMode.SYMMETRIC),
        B.SLICE: O.EmptyOptions(),
        B.EXPAND_DIMS: O.EmptyOptions(),
        B.GELU: O.GeluOptions(True),
        B.BATCH_MATMUL: O.BatchMatMulOptions(True, True, True),
        B.ARG_MIN: O.ArgMinOptions(TensorType.INT64),
        B.REDUCE_MIN: O.ReducerOptions(True),
        B.ABS: O.EmptyOptions(),  # (converters write these empty tables: read as the operator's own)
        B.POW: O.EmptyOptions(),
        B.BROADCAST_TO: O.EmptyOptions(),
    }
    b = ModelBuilder()
    t = b.add_tensor("t", TensorType.FLOAT32, (1,))
    for op, opts in cases.items():
        b.add_operator(op, [t], [t], opts)
        assert all(getattr(opts, f.name) != f.default for f in dataclasses.fields(opts)), op.name
    model = read_model(b.finish())
    for got, (op, opts) in zip(model.main.operators, cases.items()):
        assert got.builtin == op and got.options == opts


def test_buffers_are_16_byte_aligned():
    b, _ = _round_trip_builder()
    data = b.finish()
    base = np.frombuffer(data, np.uint8).ctypes.data
    model = read_model(data)
    offsets = [np.frombuffer(mv, np.uint8).ctypes.data - base for mv in model.buffers if len(mv)]
    assert len(offsets) == 7
    assert all(off % 16 == 0 for off in offsets), offsets


def test_wrong_options_are_refused():
    b = ModelBuilder()
    with pytest.raises(ValueError, match="options union type"):
        b.add_operator(B.SVDF, [0], [0], EmptyOptions())  # (options pydeeplab does not parse)
    with pytest.raises(ValueError, match="ADD takes AddOptions, not Conv2DOptions"):
        b.add_operator(B.ADD, [0], [0], Conv2DOptions())


def test_minimal_model_has_no_metadata_or_signatures():
    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.INT32, (3,))
    y = b.add_tensor("y", TensorType.INT32, (3,))
    b.add_operator(B.NEG, [x], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    data = b.finish()
    model = read_model(data)
    assert model.metadata == {} and model.signature_defs == ()
    assert len(model.buffers) == 1 and len(model.buffers[0]) == 0
    assert model.operator_codes[0].builtin_code == B.NEG and model.operator_codes[0].version == 1
    (got,) = run_litert(data, [np.array([1, -2, 3], np.int32)])
    np.testing.assert_array_equal(got, [-1, 2, -3])


# -- the oracle ----------------------------------------------------------------------------

def test_single_op_model_takes_output_shape_from_litert():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((2, 1, 4, 3)).astype(np.float32)
    c = rng.standard_normal((5, 1, 3)).astype(np.float32)
    model = single_op_model(B.ADD, [T(a), T(c, const=True)], [T(None)], AddOptions())
    out = read_model(model).main.tensors[2]
    assert out.shape == (2, 5, 4, 3) and out.type == TensorType.FLOAT32
    (got,) = run_litert(model, [a])
    np.testing.assert_array_equal(got, a + c)
    # A given shape is written as given (LiteRT recomputes its own anyway).
    model = single_op_model(B.ADD, [T(a), T(c, const=True)], [T(None, shape=(7,))], AddOptions())
    assert read_model(model).main.tensors[2].shape == (7,)


def test_run_litert_resizes_inputs():
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 4) - 6
    model = single_op_model(B.NEG, [T(None, np.float32, shape=(1, 1, 1))], [T(None, shape=(1, 1, 1))])
    (got,) = run_litert(model, [x])
    np.testing.assert_array_equal(got, -x)


def test_t_refuses_lossy_values():
    assert T(np.array([1, 2]), TensorType.INT8).array().dtype == np.int8
    with pytest.raises(ValueError, match="does not fit"):
        T(np.array([300]), TensorType.INT8).array()


def test_quant_helper():
    q = quant(0.5, -3)
    assert q.scales.dtype == np.float32 and q.zero_points.dtype == np.int64
    assert q.scale == 0.5 and q.zero_point == -3 and not q.per_channel
    q = quant([0.1, 0.2, 0.3], 0, dim=3)
    assert q.per_channel and q.quantized_dimension == 3 and list(q.zero_points) == [0, 0, 0]
    with pytest.raises(ValueError):
        quant([0.1, 0.2], [1, 2, 3])


def _neg_prepare(bug: str | None = None):
    """A throw-away NEG implementation (float and int32) to drive run_ours_op/check_op."""

    def prepare(ctx):
        assert ctx.options is None and ctx.version == 1
        assert ctx.inputs[0].data is None and ctx.outputs[0].shape == ctx.inputs[0].shape

        def run(inputs, outputs):
            (x,), (out,) = inputs, outputs
            assert not x.flags.writeable
            if bug == "unwritten":
                out.reshape(-1)[1:] = -x.reshape(-1)[1:]
                return
            np.negative(x, out=out)
            if bug == "off":
                out.reshape(-1)[5] += 1e-3 if out.dtype.kind == "f" else 1
            elif bug == "tiny" and ctx.backend == "numba":
                out.reshape(-1)[5] += 2e-6  # within 1e-5 * (1 + max|ref|)

        return Prepared((ctx.inputs[0].shape,), run)

    return prepare


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_check_op_passes_a_correct_op(monkeypatch, dtype):
    monkeypatch.setitem(REGISTRY, B.NEG, _neg_prepare())
    x = (np.random.default_rng(6).standard_normal((2, 3, 4)) * 50).astype(dtype)
    (ref,) = check_op(B.NEG, [T(x)], [T(None, dtype)])
    np.testing.assert_array_equal(ref, -x)
    (ours,) = run_ours_op(B.NEG, [T(x)], [T(None, dtype, shape=x.shape)], None, "numpy")
    np.testing.assert_array_equal(ours, -x)


def test_check_op_tolerance(monkeypatch):
    monkeypatch.setitem(REGISTRY, B.NEG, _neg_prepare("tiny"))
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4)
    check_op(B.NEG, [T(x)], [T(None)])


@pytest.mark.parametrize("dtype,bug", [(np.float32, "off"), (np.int32, "off"),
                                       (np.float32, "unwritten"), (np.int32, "unwritten")])
def test_check_op_catches_wrong_op(monkeypatch, dtype, bug):
    monkeypatch.setitem(REGISTRY, B.NEG, _neg_prepare(bug))
    x = (np.arange(24).reshape(2, 3, 4) - 11).astype(dtype)
    with pytest.raises(AssertionError) as exc:
        check_op(B.NEG, [T(x)], [T(None, dtype)])
    message = str(exc.value)
    assert "NEG" in message and "[numpy]" in message and "1 of 24 elements differ" in message
    assert ("first at (0, 1, 1)" if bug == "off" else "first at (0, 0, 0)") in message


def test_check_op_catches_wrong_shape_and_dtype():
    ref = np.zeros((2, 3), np.float32)
    with pytest.raises(AssertionError, match="shape"):
        compare(np.zeros((3, 2), np.float32), ref, "x")
    with pytest.raises(AssertionError, match="dtype"):
        compare(np.zeros((2, 3), np.float64), ref, "x")
    nan = np.array([np.nan, np.inf, 1.0], np.float32)
    compare(nan.copy(), nan, "x")
    with pytest.raises(AssertionError, match="1 of 3"):
        compare(np.array([np.nan, -np.inf, 1.0], np.float32), nan, "x")
    with pytest.raises(AssertionError, match="max error nan"):
        compare(np.array([np.nan, np.inf, np.nan], np.float32), nan, "x")


def test_data_dir_and_require_data(monkeypatch, tmp_path):
    monkeypatch.delenv("PYDEEPLAB_DATA", raising=False)
    assert data_dir().name == "data" and data_dir().parent.name == "shared"
    monkeypatch.setenv("PYDEEPLAB_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    (tmp_path / "m.tflite").write_bytes(b"x")
    assert require_data("m.tflite") == tmp_path / "m.tflite"
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        require_data("missing.tflite")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="missing.tflite"):
        require_data("missing.tflite")


# -- real models: read, rewrite, run ---------------------------------------------------------

def rewrite(data: bytes) -> bytes:
    """Read a model and write it again with ModelBuilder (buffers keep their indices)."""
    model = read_model(data)
    b = ModelBuilder(description=model.description, subgraph_name=model.main.name)
    for buf in model.buffers[1:]:
        b.add_buffer(bytes(buf))
    for t in model.main.tensors:
        b.add_tensor(t.name, t.type, t.shape, t.quantization, buffer=t.buffer,
                     shape_signature=t.shape_signature, is_variable=t.is_variable)
    for op in model.main.operators:
        b.add_operator(op.builtin, op.inputs, op.outputs, op.options, op.code.version,
                       custom_code=op.code.custom_code, custom_options=op.custom_options,
                       intermediates=op.intermediates)
    b.set_inputs(model.main.inputs)
    b.set_outputs(model.main.outputs)
    for name, value in model.metadata.items():
        b.add_metadata(name, value)
    for sig in model.signature_defs:
        b.add_signature(sig.key, sig.inputs, sig.outputs)
    return b.finish()


@pytest.mark.parametrize("name,resolver", [("deeplabv3_257_mv_gpu.tflite", "default"),
                                           ("deeplabv3_mnv2_dm05_pascal_quant.tflite", "builtin")])
def test_rewritten_real_model_runs_identically(name, resolver):
    data = require_data(f"models/{name}").read_bytes()
    again = rewrite(data)
    original, rewritten = read_model(data), read_model(again)
    # Operator codes are listed in first-use order, so compare them per operator.
    assert [op.code for op in rewritten.main.operators] == [op.code for op in original.main.operators]
    assert set(rewritten.operator_codes) == set(original.operator_codes)
    assert [op.options for op in rewritten.main.operators] == [op.options for op in original.main.operators]
    for a, b in zip(original.main.tensors, rewritten.main.tensors):
        assert (a.name, a.type, a.shape, a.buffer) == (b.name, b.type, b.shape, b.buffer)
        _quant_equal(a.quantization, b.quantization)
    detail = original.main.tensors[original.main.inputs[0]]
    rng = np.random.default_rng(7)
    if detail.type == TensorType.FLOAT32:
        x = rng.uniform(-1, 1, detail.shape).astype(np.float32)
    else:
        x = rng.integers(0, 256, detail.shape).astype(detail.type.dtype)
    want = run_litert(data, [x], resolver)
    got = run_litert(again, [x], resolver)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
