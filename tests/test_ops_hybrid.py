"""Hybrid operators (float32 activations, int8 weights: TFLite's dynamic-range quantization) against
LiteRT's reference kernels: CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED.

The input is quantized at every run with parameters of its own; CONV_2D, DEPTHWISE_CONV_2D and
FULLY_CONNECTED are held bit for bit (``atol_scale=0``), TRANSPOSE_CONV (whose TFLite kernel adds
each product already scaled, in float) within the float contract. Whole graphs run through the
default plan, so a fusion that would change a hybrid operator's numbers shows.
"""

from __future__ import annotations

import numpy as np
import pytest
from oracle import T, check_model, check_op, quant

from pydeeplab.errors import ModelError
from pydeeplab.reference.quantize import quantize_floats
from pydeeplab.tflite.model import Quantization
from pydeeplab.tflite.options import (Conv2DOptions, DepthwiseConv2DOptions, FullyConnectedOptions,
                                      TransposeConvOptions)
from pydeeplab.tflite.schema import Activation, BuiltinOperator as Op, Padding, TensorType
from pydeeplab.tflite.writer import ModelBuilder

NONE, RELU, RELU6 = Activation.NONE, Activation.RELU, Activation.RELU6
SAME, VALID = Padding.SAME, Padding.VALID
EXACT = 0.0  # atol_scale: bit for bit


def _filter(rng, shape, axis: int, per_channel: bool, equal: bool = False) -> T:
    n = shape[axis]
    scales = rng.uniform(0.004, 0.02, n if per_channel else 1).astype(np.float32)
    if equal:
        scales[:] = scales[0]
    return T(rng.integers(-127, 128, shape).astype(np.int8), const=True, quant=quant(scales, 0, axis))


def _input(rng, shape, offset: float = 0.3) -> T:
    return T((rng.standard_normal(shape) * 2 + offset).astype(np.float32))


# (input shape, Cout, kernel, stride, dilation, padding, activation, per-channel, equal scales)
CONV_CASES = [
    ((1, 9, 11, 5), 7, 3, 1, 1, SAME, NONE, True, False),
    ((2, 9, 11, 5), 7, 3, 1, 2, SAME, RELU6, True, False),
    ((3, 8, 7, 4), 6, 3, 2, 1, VALID, RELU, True, False),
    ((2, 6, 6, 8), 5, 1, 1, 1, SAME, NONE, True, False),
    ((1, 9, 11, 5), 7, 3, 1, 1, SAME, NONE, False, False),
    ((2, 9, 11, 5), 7, 3, 2, 1, SAME, RELU, False, False),
    ((1, 10, 10, 3), 4, 3, 1, 3, SAME, NONE, False, False),
    ((1, 7, 9, 6), 5, 3, 1, 1, SAME, NONE, True, True),  # equal scales: the per-tensor path
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}-k{c[2]}s{c[3]}d{c[4]}-{'pc' if c[7] else 'pt'}")
def test_hybrid_conv_2d(case):
    shape, cout, k, stride, dilation, padding, act, per_channel, equal = case
    rng = np.random.default_rng(sum(shape) * 31 + cout * 7 + k + stride * 3 + dilation)
    opts = Conv2DOptions(padding=padding, stride_w=stride, stride_h=stride, fused_activation_function=act,
                         dilation_w_factor=dilation, dilation_h_factor=dilation)
    w = _filter(rng, (cout, k, k, shape[3]), 0, per_channel, equal)
    b = T(rng.standard_normal(cout).astype(np.float32), const=True)
    check_op(Op.CONV_2D, [_input(rng, shape), w, b], [T(None, np.float32)], opts, atol_scale=EXACT)


@pytest.mark.parametrize("shape, multiplier, stride, dilation, act", [
    ((1, 9, 11, 5), 1, 1, 1, NONE),
    ((2, 9, 11, 4), 2, 2, 1, RELU6),
    ((1, 12, 12, 3), 1, 1, 2, RELU),
    ((1, 5, 6, 16), 1, 1, 1, NONE),  # a channel count past the quantizer's vector width
])
def test_hybrid_depthwise_conv_2d(shape, multiplier, stride, dilation, act):
    rng = np.random.default_rng(shape[3] * 13 + multiplier + stride * 5 + dilation)
    cout = shape[3] * multiplier
    opts = DepthwiseConv2DOptions(padding=SAME, stride_w=stride, stride_h=stride, depth_multiplier=multiplier,
                                  fused_activation_function=act, dilation_w_factor=dilation,
                                  dilation_h_factor=dilation)
    w = _filter(rng, (1, 3, 3, cout), 3, per_channel=True)
    b = T(rng.standard_normal(cout).astype(np.float32), const=True)
    check_op(Op.DEPTHWISE_CONV_2D, [_input(rng, shape), w, b], [T(None, np.float32)], opts, atol_scale=EXACT)


@pytest.mark.parametrize("batch, per_channel, stride, padding", [(1, True, 2, SAME), (2, False, 2, VALID),
                                                                  (1, True, 1, SAME)])
def test_hybrid_transpose_conv(batch, per_channel, stride, padding):
    rng = np.random.default_rng(batch * 7 + stride)
    h, w, cin, cout, k = 4, 5, 3, 6, 3
    grow = 0 if padding == SAME else k - stride
    out_shape = (batch, h * stride + grow, w * stride + grow, cout) if stride > 1 or padding == VALID else (batch, h, w, cout)
    x = _input(rng, (batch, h, w, cin))
    inputs = [T(np.array(out_shape, np.int32), const=True), _filter(rng, (cout, k, k, cin), 0, per_channel), x,
              T(rng.standard_normal(cout).astype(np.float32), const=True)]
    opts = TransposeConvOptions(padding=padding, stride_w=stride, stride_h=stride)
    check_op(Op.TRANSPOSE_CONV, inputs, [T(None, np.float32, shape=out_shape)], opts, version=3)


@pytest.mark.parametrize("asymmetric", [False, True])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("rows, depth, units, act, keep", [(1, 37, 10, NONE, False), (5, 64, 12, RELU, False),
                                                           (3, 19, 8, RELU6, True)])
def test_hybrid_fully_connected(asymmetric, per_channel, rows, depth, units, act, keep):
    rng = np.random.default_rng(rows * 100 + depth + units + asymmetric * 3 + per_channel)
    x = _input(rng, (1, rows, depth) if keep else (rows, depth), offset=0.2)
    inputs = [x, _filter(rng, (units, depth), 0, per_channel), T(rng.standard_normal(units).astype(np.float32), const=True)]
    opts = FullyConnectedOptions(fused_activation_function=act, asymmetric_quantize_inputs=asymmetric,
                                 keep_num_dims=keep)
    check_op(Op.FULLY_CONNECTED, inputs, [T(None, np.float32)], opts, atol_scale=EXACT)


@pytest.mark.parametrize("act", [Activation.TANH, Activation.SIGN_BIT])
def test_hybrid_fully_connected_applies_every_fused_activation(act):
    """The hybrid kernel applies TANH and SIGN_BIT too (TFLite's ApplyActivationToVector)."""
    rng = np.random.default_rng(int(act))
    inputs = [_input(rng, (3, 24)), _filter(rng, (6, 24), 0, True), T(rng.standard_normal(6).astype(np.float32), const=True)]
    check_op(Op.FULLY_CONNECTED, inputs, [T(None, np.float32)], FullyConnectedOptions(fused_activation_function=act))


def test_hybrid_fully_connected_of_zeros_gives_the_bias():
    rng = np.random.default_rng(5)
    inputs = [T(np.zeros((2, 16), np.float32)), _filter(rng, (4, 16), 0, True),
              T(rng.standard_normal(4).astype(np.float32), const=True)]
    refs = check_op(Op.FULLY_CONNECTED, inputs, [T(None, np.float32)],
                    FullyConnectedOptions(fused_activation_function=RELU), atol_scale=EXACT)
    assert np.array_equal(refs[0], np.broadcast_to(np.maximum(inputs[2].value, 0), (2, 4)))


def test_quantizers_round_as_litert_does():
    """The first size - size % 8 values go through the vector loop (x + 0.5 truncated, in float32), the
    rest through std::round: 0.49999997 rounds to 1 in the first part and to 0 in the second."""
    just_below_half = np.float32(0.49999997)
    values = np.full(9, just_below_half, np.float32)
    values[0] = 127.0  # range 127: the factor is 1, the values are rounded as they are
    q, p = quantize_floats(values, asymmetric=False)
    assert p.factor == 1.0 and q[0] == 127
    assert list(q[1:8]) == [1] * 7 and q[8] == 0
    q, p = quantize_floats(np.zeros(5, np.float32), asymmetric=True)
    assert (p.factor, p.zero_point) == (1.0, 0) and not q.any()
    q, p = quantize_floats(np.array([0.5, 2.0, 3.0], np.float32), asymmetric=True)
    assert p.zero_point == -128 and q[-1] == 127  # all positive: the range starts at 0


def _graph(x_shape, build) -> bytes:
    """A model whose body ``build(b, x)`` adds on a float input of ``x_shape``; returns its output."""
    b = ModelBuilder(description="hybrid graph")
    x = b.add_tensor("x", TensorType.FLOAT32, x_shape)
    y = build(b, x)
    b.set_inputs([x])
    b.set_outputs([y])
    return b.finish()


def _conv(b, rng, x, shape, cout, name, act=NONE, depthwise=False, padding=SAME):
    cin = shape[3]
    w_shape = (1, 3, 3, cin) if depthwise else (cout, 3, 3, cin)
    n = w_shape[3] if depthwise else cout
    scales = rng.uniform(0.004, 0.02, n).astype(np.float32)
    w = b.add_constant(f"{name}_w", rng.integers(-127, 128, w_shape).astype(np.int8),
                       Quantization(scales=scales, zero_points=np.zeros(n, np.int64), quantized_dimension=3 if depthwise else 0))
    bias = b.add_constant(f"{name}_b", rng.standard_normal(n).astype(np.float32) * 0.1)
    out_hw = (shape[1] - 2, shape[2] - 2) if padding == VALID else shape[1:3]
    y = b.add_tensor(name, TensorType.FLOAT32, (shape[0], *out_hw, n))
    if depthwise:
        b.add_operator(Op.DEPTHWISE_CONV_2D, [x, w, bias], [y], DepthwiseConv2DOptions(
            padding=padding, stride_w=1, stride_h=1, depth_multiplier=1, fused_activation_function=act))
    else:
        b.add_operator(Op.CONV_2D, [x, w, bias], [y], Conv2DOptions(
            padding=padding, stride_w=1, stride_h=1, fused_activation_function=act))
    return y, (shape[0], *out_hw, n)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_hybrid_graph_through_the_default_plan(backend):
    """conv -> RELU -> depthwise -> an atrous chain (SPACE_TO_BATCH_ND, VALID conv, BATCH_TO_SPACE_ND) ->
    FULLY_CONNECTED, all hybrid: no fusion may take the RELU into a hybrid conv or run the chain as one
    dilated conv (a hybrid conv quantizes each of the chain's sub-images on its own)."""
    rng = np.random.default_rng(11)

    def build(b, x):
        y, shape = _conv(b, rng, x, (1, 12, 12, 4), 8, "conv")
        relu = b.add_tensor("relu", TensorType.FLOAT32, shape)
        b.add_operator(Op.RELU, [y], [relu])
        y, shape = _conv(b, rng, relu, shape, 8, "dw", depthwise=True)
        block = b.add_constant("block", np.array([2, 2], np.int32))
        pads = b.add_constant("pads", np.array([[2, 2], [2, 2]], np.int32))
        s2b = b.add_tensor("s2b", TensorType.FLOAT32, (4, 8, 8, 8))
        b.add_operator(Op.SPACE_TO_BATCH_ND, [y, block, pads], [s2b])
        inner, _ = _conv(b, rng, s2b, (4, 8, 8, 8), 6, "atrous", padding=VALID)
        crops = b.add_constant("crops", np.zeros((2, 2), np.int32))
        b2s = b.add_tensor("b2s", TensorType.FLOAT32, (1, 12, 12, 6))
        b.add_operator(Op.BATCH_TO_SPACE_ND, [inner, block, crops], [b2s])
        w = b.add_constant("fc_w", rng.integers(-127, 128, (5, 6)).astype(np.int8),
                           Quantization(scales=np.float32([0.01]), zero_points=np.zeros(1, np.int64)))
        out = b.add_tensor("logits", TensorType.FLOAT32, (144, 5))
        b.add_operator(Op.FULLY_CONNECTED, [b2s, w, -1], [out],
                       FullyConnectedOptions(asymmetric_quantize_inputs=True))
        return out

    model = _graph((1, 12, 12, 4), build)
    check_model(model, [(np.random.default_rng(2).standard_normal((1, 12, 12, 4)) + 0.5).astype(np.float32)],
                backend, atol_scale=EXACT)


def _refused(op, inputs, options, match):
    from oracle import run_ours_op

    with pytest.raises(ModelError, match=match):
        run_ours_op(op, inputs, [T(None, np.float32, shape=(1, 4, 4, 4))], options, "numpy")


def test_hybrid_refusals_name_the_problem():
    rng = np.random.default_rng(0)
    x = _input(rng, (1, 4, 4, 4))
    bias = T(np.zeros(4, np.float32), const=True)
    no_scales = T(rng.integers(-127, 128, (4, 3, 3, 4)).astype(np.int8), const=True)
    _refused(Op.CONV_2D, [x, no_scales, bias], Conv2DOptions(padding=SAME, stride_w=1, stride_h=1), "no quantization scales")
    per_tensor_dw = _filter(rng, (1, 3, 3, 4), 3, per_channel=False)
    _refused(Op.DEPTHWISE_CONV_2D, [x, per_tensor_dw, bias], DepthwiseConv2DOptions(padding=SAME, stride_w=1, stride_h=1, depth_multiplier=1),
             "one filter scale per output channel")
    dw = _filter(rng, (1, 3, 3, 4), 3, per_channel=True)
    _refused(Op.DEPTHWISE_CONV_2D, [x, dw, bias], DepthwiseConv2DOptions(padding=SAME, stride_w=1, stride_h=1, depth_multiplier=2),
             "depth_multiplier 2")
    uint8_filter = T(rng.integers(0, 256, (4, 3, 3, 4)).astype(np.uint8), const=True, quant=quant(0.01, 128))
    _refused(Op.CONV_2D, [x, uint8_filter, bias], Conv2DOptions(padding=SAME, stride_w=1, stride_h=1), "float32 input takes an INT8 filter")


def test_numba_backend_sums_on_the_float_kernels_where_float32_is_exact(monkeypatch):
    """The numba backend runs a hybrid CONV_2D / DEPTHWISE_CONV_2D on the float kernels (kernels/hybrid.py)
    where the weights keep every partial sum an exact float32 integer, the reference elsewhere: LiteRT's
    bits either way."""
    from pydeeplab.reference import conv as reference

    rng = np.random.default_rng(21)
    opts = Conv2DOptions(padding=SAME, stride_w=1, stride_h=1)
    small = [_input(rng, (1, 6, 7, 8)), _filter(rng, (5, 3, 3, 8), 0, True),
             T(rng.standard_normal(5).astype(np.float32), const=True)]
    calls = []
    monkeypatch.setattr(reference, "conv_2d", lambda *a: calls.append(a) or pytest.fail("the reference ran"))
    check_op(Op.CONV_2D, small, [T(None, np.float32)], opts, backends=("numba",), atol_scale=EXACT)
    monkeypatch.undo()
    # 600 input channels of weights +-127: 600 * 127 * 255 > 2**24, past float32's exact integers.
    deep = [_input(rng, (1, 3, 3, 600)), T(np.where(rng.random((4, 1, 1, 600)) < 0.5, -127, 127).astype(np.int8),
                                         const=True, quant=quant(np.float32([0.01, 0.02, 0.03, 0.04]), 0, 0)),
            T(np.zeros(4, np.float32), const=True)]
    ran = []
    original = reference.conv_2d
    monkeypatch.setattr(reference, "conv_2d", lambda *a: ran.append(1) or original(*a))
    check_op(Op.CONV_2D, deep, [T(None, np.float32)], opts, backends=("numba",), atol_scale=EXACT)
    assert ran


def test_inspect_marks_hybrid_operators():
    from pydeeplab.summary import format_summary, summarize
    from pydeeplab.tflite.reader import read_model

    rng = np.random.default_rng(3)

    def build(b, x):
        y, shape = _conv(b, rng, x, (1, 6, 6, 4), 8, "hybrid_conv")
        w = b.add_constant("float_w", rng.standard_normal((3, 1, 1, 8)).astype(np.float32))
        out = b.add_tensor("out", TensorType.FLOAT32, (1, 6, 6, 3))
        b.add_operator(Op.CONV_2D, [y, w, -1], [out], Conv2DOptions(padding=SAME, stride_w=1, stride_h=1))
        return out

    summary = summarize(read_model(_graph((1, 6, 6, 4), build)))
    assert [o["hybrid"] for o in summary["operators"]] == [True, False]
    text = format_summary(summary)
    rows = [line for line in text.splitlines() if "CONV_2D" in line]
    assert "hybrid: int8 weights" in rows[0] and "hybrid" not in rows[1] and "hybrid: 1 operator(s)" in text


def test_hybrid_fully_connected_with_run_time_weights():
    """Weights that are a model input (not a constant) are read at every run."""
    rng = np.random.default_rng(8)
    w = _filter(rng, (5, 12), 0, True)
    w.const = False
    inputs = [_input(rng, (2, 12)), w, T(rng.standard_normal(5).astype(np.float32), const=True)]
    check_op(Op.FULLY_CONNECTED, inputs, [T(None, np.float32)],
             FullyConnectedOptions(asymmetric_quantize_inputs=True), atol_scale=EXACT)
