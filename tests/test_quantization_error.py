"""verify --against float: the float shadow's arithmetic and the error statistics, on hand-computed cases."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from pydeeplab import Interpreter
from pydeeplab.cli import main
from pydeeplab.errors import ModelError
from pydeeplab.quantization_error import error_stats, label_agreement, quantization_error
from pydeeplab.shadow import dequantize, float_shadow
from pydeeplab.tflite.model import Quantization
from pydeeplab.tflite.options import Conv2DOptions
from pydeeplab.tflite.reader import read_model
from pydeeplab.tflite.schema import BuiltinOperator, Padding, TensorType
from pydeeplab.tflite.writer import ModelBuilder


def q(scale, zero_point, dim=0):
    return Quantization(np.atleast_1d(np.array(scale, np.float32)), np.atleast_1d(np.array(zero_point, np.int64)), dim)


def conv_then_requantize(tmp_path):
    """x (uint8 s=0.5 zp=10) -> 1x1 CONV_2D (w s=0.25 zp=100, bias s=0.125) -> y (s=2) -> QUANTIZE -> z (s=4).

    Worked by hand, for the two pixels of x = [[14, 6], [10, 12]] (real [[2, -2], [0, 1]]),
    w = [104, 96] (real [1, -1]), bias 8 (real 1):
      float conv: 2*1 + (-2)*(-1) + 1 = 5;   0*1 + 1*(-1) + 1 = 0
      integer conv: acc = 4*4 + (-4)*(-4) + 8 = 40, x 0.5*0.25/2 = 2.5 -> 3 (half away) -> real 6;  acc 0 -> 0
      QUANTIZE to s=4: 3 * 2/4 = 1.5 -> 2 -> real 8;  0 -> 0
    """
    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.UINT8, (1, 1, 2, 2), q(0.5, 10))
    w = b.add_constant("w", np.array([104, 96], np.uint8).reshape(1, 1, 1, 2), q(0.25, 100))
    bias = b.add_constant("bias", np.array([8], np.int32), q(0.125, 0))
    y = b.add_tensor("y", TensorType.UINT8, (1, 1, 2, 1), q(2.0, 0))
    z = b.add_tensor("z", TensorType.UINT8, (1, 1, 2, 1), q(4.0, 0))
    b.add_operator(BuiltinOperator.CONV_2D, [x, w, bias], [y], Conv2DOptions(Padding.VALID, 1, 1))
    b.add_operator(BuiltinOperator.QUANTIZE, [y], [z])
    b.set_inputs([x])
    b.set_outputs([z])
    path = tmp_path / "conv_q.tflite"
    path.write_bytes(b.finish())
    return path


X = np.array([14, 6, 10, 12], np.uint8).reshape(1, 1, 2, 2)


def test_dequantize_per_tensor_and_per_channel():
    assert dequantize(np.array([14, 6], np.uint8), q(0.5, 10)).tolist() == [2.0, -2.0]
    per_channel = q([1.0, 0.5], [0, 2], dim=1)
    assert dequantize(np.array([[4, 4], [-2, 0]], np.int8), per_channel).tolist() == [[4.0, 1.0], [-2.0, -1.0]]
    with pytest.raises(ModelError, match="per-channel"):
        dequantize(np.zeros((3, 3), np.int8), per_channel)


def test_float_shadow_dequantizes_weights_and_computes_the_hand_result(tmp_path):
    path = conv_then_requantize(tmp_path)
    shadow = read_model(float_shadow(read_model(path.read_bytes())))
    g = shadow.main
    assert [t.type for t in g.tensors[:5]] == [TensorType.FLOAT32] * 5
    assert g.tensors[1].data.ravel().tolist() == [1.0, -1.0] and g.tensors[2].data.tolist() == [1.0]
    assert [op.name for op in g.operators] == ["CONV_2D", "RESHAPE"]  # QUANTIZE is an identity in float
    it = Interpreter(model_content=float_shadow(read_model(path.read_bytes())))
    it.allocate_tensors()
    it.set_tensor(0, dequantize(X, q(0.5, 10)).astype(np.float32))
    it.invoke()
    assert it.get_tensor(3).ravel().tolist() == [5.0, 0.0]
    assert it.get_tensor(4).ravel().tolist() == [5.0, 0.0]


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_isolated_and_cascaded_errors_match_the_hand_computation(tmp_path, backend):
    report = quantization_error(conv_then_requantize(tmp_path), against="float", input_arrays=[X], backend=backend)
    assert report.backend == backend
    conv_i, quant_i = report.isolated
    conv_c, quant_c = report.cascaded
    # CONV_2D: errors [6-5, 0-0] = [1, 0], isolated and cascaded alike (it is the first operator).
    for r in (conv_i, conv_c):
        assert (r.op, r.scale, r.n) == ("CONV_2D", 2.0, 2)
        assert r.rmse == pytest.approx(math.sqrt(0.5)) and r.rmse_over_scale == pytest.approx(math.sqrt(0.5) / 2)
        assert r.mean_error == pytest.approx(0.5) and r.max_abs_error == 1.0
    # QUANTIZE isolated: float identity of the dequantized integer input [6, 0] vs [8, 0]: errors [2, 0].
    assert quant_i.rmse == pytest.approx(math.sqrt(2)) and quant_i.mean_error == pytest.approx(1.0)
    assert quant_i.max_abs_error == 2.0 and quant_i.rmse_over_scale == pytest.approx(math.sqrt(2) / 4)
    # QUANTIZE cascaded: the float chain gives [5, 0] vs [8, 0]: errors [3, 0].
    assert quant_c.rmse == pytest.approx(math.sqrt(4.5)) and quant_c.mean_error == pytest.approx(1.5)
    assert quant_c.max_abs_error == 3.0


def test_error_stats_and_label_agreement_by_hand():
    s = error_stats(np.array([1.0, -1.0, 2.0, 0.0]), np.zeros(4), scale=0.5)
    assert s.n == 4 and s.rmse == pytest.approx(math.sqrt(1.5)) and s.mean_error == pytest.approx(0.5)
    assert s.max_abs_error == 2.0 and s.rmse_over_scale == pytest.approx(2 * math.sqrt(1.5))
    assert error_stats(np.ones(3), np.ones(3), None).rmse_over_scale is None
    labels = np.array([[0, 1], [2, 3]], np.int64)
    assert label_agreement(labels, np.array([[0, 1], [2, 0]], np.int64)) == 0.75
    logits = np.zeros((1, 1, 2, 3))
    logits[0, 0, 0, 2] = logits[0, 0, 1, 1] = 1
    other = logits.copy()
    other[0, 0, 1, 0] = 5
    assert label_agreement(logits, other) == 0.5
    with pytest.raises(ValueError):
        error_stats(np.zeros(2), np.zeros(3), 1.0)


def test_float_model_has_no_shadow(tmp_path, capsys):
    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 2))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 2))
    b.add_operator(BuiltinOperator.RELU, [x], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    path = tmp_path / "f.tflite"
    path.write_bytes(b.finish())
    with pytest.raises(ModelError, match="already float"):
        float_shadow(read_model(path.read_bytes()))
    assert main(["verify", str(path), "--against", "float"]) == 0  # nothing to measure, and it says so
    assert "no quantized (integer) tensors" in capsys.readouterr().out
    assert quantization_error(path).isolated == []


def test_synthesized_v3_shadow_and_pair(tmp_path, capsys):
    """Operators that cannot add error show none; requantization adds about a rounding step."""
    pytest.importorskip("ai_edge_litert")  # synth calibrates the uint8 model with LiteRT
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
    import synth

    qpath, fpath = tmp_path / "v3_uint8.tflite", tmp_path / "v3_float.tflite"
    qpath.write_bytes(synth.deeplab_v3(dtype="uint8", size=65))
    fpath.write_bytes(synth.deeplab_v3(dtype="float32", size=65))
    assert main(["verify", str(qpath), "--against", "float", "--json"]) == 0
    shadow = json.loads(capsys.readouterr().out)
    iso = shadow["isolated"]
    assert all(r["matched"] for r in iso) and len(iso) == len(shadow["cascaded"])
    for r in iso:
        if r["op"] == "QUANTIZE":  # rounding to the output grid (and clamping to its range) alone
            assert 0.1 < r["rmse_over_scale"] < 0.5 and r["max_abs_error"] < 2 * r["scale"]
        if r["op"] in ("CONCATENATION", "RESIZE_BILINEAR") and r["shape"][1] == 9:  # same-scale copies
            assert r["max_abs_error"] < 1e-6
        if r["op"] == "CONV_2D":
            assert r["rmse_over_scale"] > 0.1  # quantized: not zero
    assert iso[-1]["op"] == "ARG_MAX" and iso[-1]["label_agreement"] is not None
    assert shadow["label_agreement"] == shadow["cascaded"][-1]["label_agreement"] > 0.3

    # The pair: the float model the uint8 one was quantized from, tensors matched by name.
    assert main(["verify", str(qpath), "--against", str(fpath), "--mode", "cascaded"]) == 0
    out = capsys.readouterr().out
    assert "cascaded:" in out and "isolated:" not in out and "final labels" in out
    pair = quantization_error(qpath, against=fpath, modes=("isolated",))
    by_index = {r.index: r for r in pair.isolated}
    assert by_index[0].op == "CONV_2D" and by_index[0].matched
    # The first conv sees the same input on both sides; only weight rounding separates the two floats.
    assert by_index[0].rmse == pytest.approx(iso[0]["rmse"], rel=0.2)
    assert not by_index[14].matched and "no float tensor" in by_index[14].note  # QUANTIZE: float has none


def test_implied_activation_is_made_explicit_in_the_shadow():
    """A [0, 6] output range with no fused activation is a folded ReLU6 (MLPerf's uint8 DeepLab)."""
    from pydeeplab.shadow import implied_activation
    from pydeeplab.tflite.schema import Activation

    def out(scale, zero_point, type_=TensorType.UINT8):
        b = ModelBuilder()
        x = b.add_tensor("x", TensorType.UINT8, (1, 2, 2, 1), q(0.5, 128))
        w = b.add_constant("w", np.array([[[[200]]]], np.uint8), q(0.01, 100))
        y = b.add_tensor("y", type_, (1, 2, 2, 1), q(scale, zero_point))
        b.add_operator(BuiltinOperator.CONV_2D, [x, w, -1], [y], Conv2DOptions(Padding.VALID, 1, 1))
        b.set_inputs([x])
        b.set_outputs([y])
        m = read_model(b.finish())
        return m.main.tensors[y], read_model(float_shadow(m)).main.operators[0].options.fused_activation_function

    tensor, shadow_activation = out(6 / 255, 0)
    assert implied_activation(tensor) == shadow_activation == Activation.RELU6
    assert out(0.1, 0)[1] == Activation.RELU and out(0.1, 10)[1] == Activation.NONE
    assert out(6 / 255, -128, TensorType.INT8)[1] == Activation.RELU6
    # In the shadow the clamp acts: x real (200-128)*0.5 = 36, w real 1.0 -> 36, clamped to 6.
    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.UINT8, (1, 1, 1, 1), q(0.5, 128))
    w = b.add_constant("w", np.array([[[[200]]]], np.uint8), q(0.01, 100))
    y = b.add_tensor("y", TensorType.UINT8, (1, 1, 1, 1), q(6 / 255, 0))
    b.add_operator(BuiltinOperator.CONV_2D, [x, w, -1], [y], Conv2DOptions(Padding.VALID, 1, 1))
    b.set_inputs([x])
    b.set_outputs([y])
    it = Interpreter(model_content=float_shadow(read_model(b.finish())))
    it.allocate_tensors()
    it.set_tensor(0, np.array([[[[36.0]]]], np.float32))
    it.invoke()
    assert it.get_tensor(2).item() == pytest.approx(6.0)


def test_custom_operators_run_on_integers_in_the_shadow():
    """A custom op (no float path to rely on) is wrapped: QUANTIZE in, DEQUANTIZE out; indices stay."""
    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.UINT8, (1, 2, 2, 3), q(0.5, 10))
    size = b.add_constant("size", np.array([4, 4], np.int32))
    y = b.add_tensor("y", TensorType.UINT8, (1, 4, 4, 3), q(0.25, 3))
    labels = b.add_tensor("labels", TensorType.INT32, (1, 4, 4))
    b.add_operator(BuiltinOperator.CUSTOM, [x, size], [y], custom_code="SomeResize", custom_options=b"\x01")
    b.add_operator(BuiltinOperator.CUSTOM, [y], [labels], custom_code="SomeArgmax")
    b.set_inputs([x])
    b.set_outputs([labels])
    model = read_model(b.finish())
    g = read_model(float_shadow(model)).main
    assert [op.name for op in g.operators] == ["QUANTIZE", "CUSTOM(SomeResize)", "DEQUANTIZE", "QUANTIZE",
                                               "CUSTOM(SomeArgmax)"]
    assert [t.type for t in g.tensors[:4]] == [TensorType.FLOAT32, TensorType.INT32, TensorType.FLOAT32,
                                               TensorType.INT32]
    quant_x = g.tensors[g.operators[0].outputs[0]]
    assert g.operators[0].inputs == (0,) and quant_x.type == TensorType.UINT8 and quant_x.quantization.scale == 0.5
    assert g.operators[1].inputs == (quant_x.index, 1) and g.operators[1].custom_options == b"\x01"
    assert g.operators[2].outputs == (2,) and g.operators[4].outputs == (3,)
    # The isolated mode feeds those integer inputs straight from the quantized model's tensors.
    from pydeeplab.quantization_error import shadow_integer_inputs

    assert shadow_integer_inputs(model.main, g) == {quant_x.index: 0, g.operators[3].outputs[0]: 2}


def test_against_a_typo_is_refused(tmp_path, capsys):
    assert main(["verify", str(conv_then_requantize(tmp_path)), "--against", "flaot"]) == 2
    assert "--against takes ref, builtin, float or the path of a .tflite file" in capsys.readouterr().err


def test_per_channel_int8_depthwise_by_hand(tmp_path):
    """Per-channel weights dequantize along their quantized dimension (3 for DEPTHWISE_CONV_2D).

    x int8 [5, -3] (s=0.5, zp=-1): real [3, -1]; w [10, -5] with scales [0.1, 0.2]: real [1, -1];
    bias [20, 10] with scales s_in*s_w = [0.05, 0.1]: real [1, 1]. Float: [3*1+1, -1*-1+1] = [4, 2].
    Integer: acc [6*10+20, -2*-5+10] = [80, 20] times [0.2, 0.4] = [16, 8] at s=0.25: real [4, 2], no error.
    """
    from pydeeplab.tflite.options import DepthwiseConv2DOptions

    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.INT8, (1, 1, 1, 2), q(0.5, -1))
    w = b.add_constant("w", np.array([10, -5], np.int8).reshape(1, 1, 1, 2), q([0.1, 0.2], [0, 0], dim=3))
    bias = b.add_constant("bias", np.array([20, 10], np.int32), q([0.05, 0.1], [0, 0]))
    y = b.add_tensor("y", TensorType.INT8, (1, 1, 1, 2), q(0.25, 0))
    b.add_operator(BuiltinOperator.DEPTHWISE_CONV_2D, [x, w, bias], [y],
                   DepthwiseConv2DOptions(Padding.VALID, 1, 1, depth_multiplier=1))
    b.set_inputs([x])
    b.set_outputs([y])
    path = tmp_path / "dw.tflite"
    path.write_bytes(b.finish())
    shadow = read_model(float_shadow(read_model(path.read_bytes())))
    assert shadow.main.tensors[1].data.ravel().tolist() == pytest.approx([1.0, -1.0])
    assert shadow.main.tensors[2].data.tolist() == pytest.approx([1.0, 1.0])
    x_q = np.array([5, -3], np.int8).reshape(1, 1, 1, 2)
    report = quantization_error(path, input_arrays=[x_q])
    for r in report.isolated + report.cascaded:
        assert r.n == 2 and r.max_abs_error < 1e-6 and r.scale == 0.25
    it = Interpreter(model_content=float_shadow(read_model(path.read_bytes())))
    it.allocate_tensors()
    it.set_tensor(0, np.array([3.0, -1.0], np.float32).reshape(1, 1, 1, 2))
    it.invoke()
    assert it.get_tensor(3).ravel().tolist() == pytest.approx([4.0, 2.0])
