"""tools/quantize.py: int8 per-channel models with float I/O made from float models.

Small synthesized float models (tools/synth.py) and one hand-made MUL/ADD model are
quantized, their graphs checked against TFLite's int8 specification (per-channel
symmetric weights, int32 biases at s_in * s_w, pass-through parameters, QUANTIZE and
DEQUANTIZE at the ends), run by LiteRT under its three resolvers, and run by pydeeplab
on both backends, which must give LiteRT BUILTIN_REF's output bit for bit. One real
model (the 257 DeepLab, quantized once per session) is held to the same.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
from oracle import require_data, run_litert
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import quantize  # noqa: E402
import synth  # noqa: E402

import pydeeplab  # noqa: E402
from pydeeplab.tflite.model import Model  # noqa: E402
from pydeeplab.tflite.options import AddOptions, MulOptions  # noqa: E402
from pydeeplab.tflite.schema import Activation, BuiltinOperator as Op, TensorType  # noqa: E402
from pydeeplab.tflite.writer import ModelBuilder  # noqa: E402

SYNTH = {
    "v3_avgpool": lambda: synth.deeplab_v3("avgpool", "float32", size=65),  # pool, resize, concat
    "v2": lambda: synth.deeplab_v2("float32", size=65),                      # ADD of activations
    "v1_space_to_batch": lambda: synth.deeplab_v1("space_to_batch", "float32", size=49),
}


def _mul_add_model() -> bytes:
    """An unfolded batch norm as the fp16 DeepLab has it: x * scale[c] + offset[c], RELU6."""
    rng = np.random.default_rng(3)
    b = ModelBuilder(description="mul add")
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 9, 9, 3))
    scale = b.add_constant("scale", rng.uniform(0.2, 2.0, 3).astype(np.float32))
    offset = b.add_constant("offset", rng.uniform(-1, 1, 3).astype(np.float32))
    m = b.add_tensor("mul", TensorType.FLOAT32, (1, 9, 9, 3))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 9, 9, 3))
    b.add_operator(Op.MUL, [x, scale], [m], MulOptions())
    b.add_operator(Op.ADD, [m, offset], [y], AddOptions(fused_activation_function=Activation.RELU6))
    b.set_inputs([x])
    b.set_outputs([y])
    return b.finish()


@pytest.fixture(scope="module")
def calibration_images(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("calibration")
    paths = []
    for seed in (11, 12, 13):
        p = folder / f"image{seed}.png"
        Image.fromarray(synth.random_image(64, seed)[0]).save(p)
        paths.append(p)
    return paths


def _quantized(tmp_path, data: bytes, images) -> tuple[Model, Model, bytes]:
    """(float model, int8 model, int8 bytes) of ``data`` quantized by tools/quantize.py."""
    src = tmp_path / "float.tflite"
    src.write_bytes(data)
    out = quantize.quantize_int8(src, tmp_path / "int8.tflite", images, progress=False)
    q = out.read_bytes()
    return pydeeplab.read_model(data), pydeeplab.read_model(q), q


def _run_ours(data: bytes, feed: np.ndarray, backend: str) -> np.ndarray:
    interp = pydeeplab.Interpreter(model_content=data, backend=backend)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], feed)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"]).copy()


def check_graph(fmodel, qmodel) -> None:
    """The int8 graph keeps the float graph's operators in order, between QUANTIZE and DEQUANTIZE,
    with TFLite's int8 rules on every tensor."""
    g, fg = qmodel.main, fmodel.main
    ops = list(g.operators)
    assert ops[0].builtin == Op.QUANTIZE and ops[-1].builtin == Op.DEQUANTIZE
    assert g.tensors[g.inputs[0]].type == TensorType.FLOAT32 == g.tensors[g.outputs[0]].type
    assert g.tensors[g.inputs[0]].name == fg.tensors[fg.inputs[0]].name
    assert g.tensors[g.outputs[0]].name == fg.tensors[fg.outputs[0]].name
    assert ops[-1].inputs[0] == ops[-2].outputs[0]
    names = [t.name for t in g.tensors]
    assert len(names) == len(set(names)), "tensor names must stay unique"
    # Requantizing QUANTIZEs before a concatenation are the only operators added inside.
    inner = [op for op in ops[1:-1] if op.builtin != Op.QUANTIZE]
    assert [op.builtin for op in inner] == [op.builtin for op in fg.operators if op.builtin != Op.DEQUANTIZE]
    for op in ops[1:-1]:
        for i in op.outputs:
            t = g.tensors[i]
            assert t.type == TensorType.INT8 and t.quantization.scales.size == 1, t.name
            assert -128 <= t.quantization.zero_point <= 127
        x = g.tensors[op.inputs[0]]
        y = g.tensors[op.outputs[0]]
        if op.builtin in (Op.CONV_2D, Op.DEPTHWISE_CONV_2D):
            w, bias = g.tensors[op.inputs[1]], g.tensors[op.inputs[2]]
            axis = 0 if op.builtin == Op.CONV_2D else 3
            wq = w.quantization
            assert w.type == TensorType.INT8 and wq.quantized_dimension == axis
            assert wq.scales.size == w.shape[axis] and not wq.zero_points.any()
            assert np.abs(w.data.astype(int)).max() <= 127
            # Symmetric per channel: every channel's largest weight uses the whole range.
            other = tuple(a for a in range(4) if a != axis)
            assert (np.abs(w.data.astype(int)).max(axis=other) == 127).all()
            assert bias.type == TensorType.INT32 and bias.quantization.scales.size == w.shape[axis]
            np.testing.assert_array_equal(bias.quantization.scales,
                                          np.float32(x.quantization.scale) * wq.scales)
        elif op.builtin in quantize.PASSTHROUGH:
            assert (y.quantization.scale, y.quantization.zero_point) == (x.quantization.scale,
                                                                         x.quantization.zero_point)
        elif op.builtin == Op.CONCATENATION:
            for i in op.inputs:
                q = g.tensors[i].quantization
                assert (q.scale, q.zero_point) == (y.quantization.scale, y.quantization.zero_point)


def check_runs(qdata: bytes, feed: np.ndarray) -> np.ndarray:
    """LiteRT runs the model under every resolver; pydeeplab equals BUILTIN_REF bit for bit."""
    (ref,) = run_litert(qdata, [feed], "ref")
    for resolver in ("builtin", "default"):
        (other,) = run_litert(qdata, [feed], resolver)
        assert other.shape == ref.shape and np.isfinite(other).all()
    for backend in ("numpy", "numba"):
        np.testing.assert_array_equal(_run_ours(qdata, feed, backend), ref, err_msg=backend)
    return ref


@pytest.mark.parametrize("name", list(SYNTH))
def test_synth_model(name, tmp_path, calibration_images):
    fdata = SYNTH[name]()
    fmodel, qmodel, qdata = _quantized(tmp_path, fdata, calibration_images)
    check_graph(fmodel, qmodel)
    size = fmodel.main.tensors[fmodel.main.inputs[0]].shape[1]
    feed = synth.float_input(synth.random_image(size, 7))
    ref = check_runs(qdata, feed)
    (fref,) = run_litert(fdata, [feed], "ref")
    assert np.mean(ref.argmax(-1) == fref.argmax(-1)) > 0.8  # the quantization is sane


def test_mul_add_constants(tmp_path, calibration_images):
    fdata = _mul_add_model()
    fmodel, qmodel, qdata = _quantized(tmp_path, fdata, calibration_images)
    check_graph(fmodel, qmodel)
    g = qmodel.main
    consts = [t for t in g.tensors if t.name in ("scale", "offset")]
    assert len(consts) == 2 and all(t.type == TensorType.INT8 and t.is_constant for t in consts)
    feed = synth.float_input(synth.random_image(9, 5))
    ref = check_runs(qdata, feed)
    (fref,) = run_litert(fdata, [feed], "ref")
    assert np.abs(ref - fref).max() < 0.05


def test_refuses_unsupported_operator(tmp_path, calibration_images):
    src = tmp_path / "mean.tflite"
    src.write_bytes(synth.deeplab_v3("mean", "float32", size=33))
    with pytest.raises(quantize.QuantizeError, match="MEAN"):
        quantize.quantize_int8(src, tmp_path / "out.tflite", calibration_images, progress=False)
    assert not (tmp_path / "out.tflite").exists()


def test_refuses_quantized_model(tmp_path, calibration_images):
    src = tmp_path / "uint8.tflite"
    src.write_bytes(synth.deeplab_v3("avgpool", "uint8", size=33))
    with pytest.raises(quantize.QuantizeError):
        quantize.quantize_int8(src, tmp_path / "out.tflite", calibration_images, progress=False)


def test_cli_help_and_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        quantize.main(["--help"])
    assert exc.value.code == 0 and "examples:" in capsys.readouterr().out
    assert quantize.main([str(tmp_path / "missing.tflite"), "--out", str(tmp_path / "x.tflite"),
                          "--images", str(tmp_path / "a.png")]) == 2
    assert "quantize:" in capsys.readouterr().err


@pytest.fixture(scope="session")
def deeplab_257_int8(tmp_path_factory) -> Path:
    """The 257 DeepLab quantized once per session, calibrated on the shared images."""
    src = require_data("models/deeplabv3_257_mv_gpu.tflite")
    return quantize.quantize_int8(src, tmp_path_factory.mktemp("int8") / "deeplabv3_257_int8.tflite",
                                  progress=False)


def test_real_model_bit_exact(deeplab_257_int8):
    from pydeeplab.image import load_rgb, resize_image, to_model_input

    image = require_data("images/bird_segmentation.bmp")
    qdata = deeplab_257_int8.read_bytes()
    check_graph(pydeeplab.read_model(require_data("models/deeplabv3_257_mv_gpu.tflite").read_bytes()),
                pydeeplab.read_model(qdata))
    feed = to_model_input(resize_image(load_rgb(image), 257, 257), np.float32)
    (ref,) = run_litert(qdata, [feed], "ref")
    for backend in ("numba", "numpy"):
        np.testing.assert_array_equal(_run_ours(qdata, feed, backend), ref, err_msg=backend)


# --------------------------------------------------------------------------- dynamic range (hybrid)

@pytest.mark.parametrize("name", ["deeplabv3_257_mv_gpu", "mobilenetv2_dm05_coco_fp16"])
def test_dynamic_range_model_is_what_the_converter_writes(name, tmp_path):
    """int8 weights where they have 1024 elements or more (per output channel: axis 0 for CONV_2D, 3 for
    DEPTHWISE_CONV_2D), the small ones left float, float16 weights folded, the operators otherwise kept."""
    src = require_data(f"models/{name}.tflite")
    before = pydeeplab.read_model(src.read_bytes()).main
    out = quantize.quantize_dynamic_range(src, tmp_path / "dr.tflite")
    after = pydeeplab.read_model(out.read_bytes()).main
    assert [op.name for op in after.operators] == [op.name for op in before.operators if op.builtin != Op.DEQUANTIZE]
    hybrid = 0
    for op in after.operators:
        if op.builtin in (Op.CONV_2D, Op.DEPTHWISE_CONV_2D):
            w = after.tensors[op.inputs[1]]
            if w.type == TensorType.INT8:
                hybrid += 1
                axis = 0 if op.builtin == Op.CONV_2D else 3
                assert w.data.size >= quantize.MIN_HYBRID_ELEMENTS
                assert w.quantization.quantized_dimension == axis
                assert w.quantization.scales.size == w.shape[axis] and not w.quantization.zero_points.any()
                assert int(np.abs(w.data.astype(np.int64)).max()) == 127
                assert after.tensors[op.inputs[2]].type == TensorType.FLOAT32  # the bias stays float
            else:
                assert w.type == TensorType.FLOAT32 and w.data.size < quantize.MIN_HYBRID_ELEMENTS
    assert hybrid >= 40
    assert all(after.tensors[i].type == TensorType.FLOAT32 for i in (*after.inputs, *after.outputs))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_dynamic_range_deeplab_runs_as_litert(backend, tmp_path):
    """The hybrid 257 DeepLab against LiteRT's reference kernels: every hybrid operator, fed LiteRT's
    own input, gives LiteRT's output bit for bit; the float ones stay within the float contract. Run
    whole, float rounding differences get amplified by the hybrid operators' input quantization (a
    changed maximum changes the scale): LiteRT's own optimized kernels differ from its reference as
    much, so the labels are what is held there."""
    from pydeeplab.summary import hybrid_operators
    from pydeeplab.verification import verify

    out = quantize.quantize_dynamic_range(require_data("models/deeplabv3_257_mv_gpu.tflite"), tmp_path / "dr.tflite")
    graph = pydeeplab.read_model(out.read_bytes()).main
    report = verify(out, require_data("images/bird_segmentation.bmp"), backend=backend)
    assert all(r.ok for r in report.isolated), [r for r in report.isolated if not r.ok]
    for op, record in zip(graph.operators, report.isolated):
        if op.builtin in (Op.CONV_2D, Op.DEPTHWISE_CONV_2D) and graph.tensors[op.inputs[1]].type == TensorType.INT8:
            assert record.max_abs == 0.0, record
    assert report.cascaded[-1].argmax_agreement >= 0.999
    assert report.ok and "hybrid model" in report.cascaded[-1].note  # judged by its labels (verification.py)
    assert len(hybrid_operators(graph)) == 41  # the convolutions with 1024 weights or more


def test_dynamic_range_refuses_a_model_with_nothing_to_quantize(capsys, tmp_path):
    src = require_data("models/deeplabv3_mnv2_pascal_quant.tflite")
    assert quantize.main([str(src), "--out", str(tmp_path / "x.tflite"), "--dynamic-range"]) == 2
    assert "nothing to quantize" in capsys.readouterr().err
    assert not (tmp_path / "x.tflite").exists()
