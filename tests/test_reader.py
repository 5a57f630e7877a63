"""The reader against LiteRT on the real models, and against broken bytes."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pydeeplab import ModelError, read_model
from pydeeplab.tflite.options import AddOptions, Conv2DOptions, DepthwiseConv2DOptions
from pydeeplab.tflite.schema import Activation, BuiltinOperator, Padding, TensorType

REAL_MODELS = ["deeplabv3_257_mv_gpu", "deeplabv3_mnv2_pascal_quant", "deeplabv3_mnv2_dm05_pascal_quant"]


@pytest.fixture(scope="module", params=REAL_MODELS)
def real(request, model_path):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    path = model_path(request.param)
    data = path.read_bytes()
    lite = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    lite.allocate_tensors()
    return read_model(data), lite


def test_tensors_match_litert(real):
    model, lite = real
    details = lite.get_tensor_details()
    tensors = model.main.tensors
    assert len(details) == len(tensors)
    for d in details:
        t = tensors[d["index"]]
        assert t.name == d["name"]
        assert t.shape == tuple(d["shape"])
        assert t.shape_signature == tuple(d["shape_signature"])
        assert t.type.dtype.type == d["dtype"]
        q = d["quantization_parameters"]
        if t.quantization is None:
            assert q["scales"].size == 0
        else:
            np.testing.assert_array_equal(t.quantization.scales, q["scales"])
            np.testing.assert_array_equal(t.quantization.zero_points, q["zero_points"])
            assert t.quantization.quantized_dimension == q["quantized_dimension"]
            assert (t.quantization.scale, t.quantization.zero_point) == d["quantization"]


def test_operators_match_litert(real):
    model, lite = real
    ops = lite._get_ops_details()
    assert len(ops) == len(model.main.operators)
    for d, op in zip(ops, model.main.operators):
        assert op.name == d["op_name"]
        assert op.inputs == tuple(d["inputs"])
        assert op.outputs == tuple(d["outputs"])


def test_constants_match_litert(real):
    model, lite = real
    n = 0
    for t in model.main.tensors:
        if t.data is None:
            continue
        n += 1
        assert not t.data.flags.writeable
        assert t.data.base is not None, "constants must be views of the model bytes, not copies"
        np.testing.assert_array_equal(t.data, lite.get_tensor(t.index))
    assert n > 100


def test_inputs_outputs_and_options(model_path):
    model = read_model(model_path("deeplabv3_257_mv_gpu").read_bytes())
    g = model.main
    assert g.inputs == (183,) and g.outputs == (168,)
    assert model.description == "TOCO Converted."
    first = g.operators[0]
    assert first.builtin == BuiltinOperator.CONV_2D
    assert first.options == Conv2DOptions(padding=Padding.SAME, stride_w=2, stride_h=2,
                                          fused_activation_function=Activation.RELU6)
    dilated = [op.options for op in g.operators if isinstance(op.options, DepthwiseConv2DOptions)
               and op.options.dilation_h_factor > 1]
    assert {o.dilation_h_factor for o in dilated} == {2, 4}


def test_quant_model_metadata(model_path):
    model = read_model(model_path("deeplabv3_mnv2_pascal_quant").read_bytes())
    assert "min_runtime_version" in model.metadata
    assert model.main.tensors[model.main.inputs[0]].type == TensorType.UINT8
    argmax = model.main.operators[-1]
    assert argmax.name == "ARG_MAX" and argmax.options.output_type == TensorType.INT64


# -- broken input: only ModelError may come out --------------------------------------------


def _read_or_model_error(data: bytes) -> None:
    try:
        read_model(data)
    except ModelError as exc:
        assert str(exc)


@pytest.fixture(scope="module")
def float_bytes(model_path) -> bytes:
    return model_path("deeplabv3_257_mv_gpu").read_bytes()


def test_not_a_model():
    for data in [b"", b"abc", b"\0" * 8, b"\x10\0\0\0TFL2" + b"\0" * 100, b"hello world, not a flatbuffer at all"]:
        with pytest.raises(ModelError):
            read_model(data)


def test_truncated(float_bytes):
    # Constants hold most of the file: cut inside the tables near the end and at many other points.
    cuts = sorted(set(np.linspace(0, len(float_bytes) - 1, 120).astype(int)) | set(range(len(float_bytes) - 2000, len(float_bytes), 97)))
    for n in cuts:
        _read_or_model_error(float_bytes[:n])


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_bit_flips(float_bytes, data):
    buf = bytearray(float_bytes)
    # Most bytes are weights; aim most flips at the flatbuffer tables at the end and the root.
    n_tables = 30000
    for _ in range(data.draw(st.integers(1, 8))):
        region = data.draw(st.sampled_from(["head", "tail", "any"]))
        if region == "head":
            pos = data.draw(st.integers(0, 63))
        elif region == "tail":
            pos = data.draw(st.integers(len(buf) - n_tables, len(buf) - 1))
        else:
            pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] ^= 1 << data.draw(st.integers(0, 7))
    _read_or_model_error(bytes(buf))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(min_size=0, max_size=512))
def test_random_bytes(data):
    _read_or_model_error(data)
    _read_or_model_error(data[:4] + b"TFL3" + data[8:])


@pytest.mark.parametrize("zero_points", [None, [0], [0, 0, 0]], ids=["none", "one", "three"])
def test_scales_need_as_many_zero_points(zero_points):
    """Two per-channel scales with no zero point, one, or three: TFLite's InterpreterBuilder refuses the
    model ("Must have same number"), and so does the reader (it took zero points 0 for missing ones,
    and one zero point for every channel); two load in both."""
    from ai_edge_litert.interpreter import Interpreter

    from pydeeplab.tflite.model import Quantization
    from pydeeplab.tflite.writer import ModelBuilder

    def model(zps) -> bytes:
        b = ModelBuilder()
        x = b.add_tensor("x", TensorType.INT8, (1, 2, 2, 3), Quantization(np.array([0.5], np.float32), np.array([0])))
        q = Quantization(np.array([0.01, 0.02], np.float32), np.zeros(0 if zps is None else len(zps), np.int64))
        w = b.add_constant("w", np.ones((2, 1, 1, 3), np.int8), q)
        y = b.add_tensor("y", TensorType.INT8, (1, 2, 2, 2), Quantization(np.array([0.25], np.float32), np.array([0])))
        b.add_operator(BuiltinOperator.CONV_2D, [x, w], [y], Conv2DOptions(stride_w=1, stride_h=1))
        b.set_inputs([x])
        b.set_outputs([y])
        return b.finish()

    with pytest.raises((ValueError, RuntimeError)):
        Interpreter(model_content=model(zero_points)).allocate_tensors()
    with pytest.raises(ModelError, match=f"{0 if zero_points is None else len(zero_points)} zero points for 2 scales"):
        read_model(model(zero_points))
    read_model(model([0, 0]))
    Interpreter(model_content=model([0, 0]))


@pytest.mark.parametrize("dim, refused", [(0, False), (3, False), (4, True), (-1, True)])
def test_quantized_dimension_outside_the_shape_is_refused_as_litert_refuses(dim, refused):
    """InterpreterBuilder refuses a quantized_dimension outside the tensor's dimensions, with one
    scale as with many (old TOCO files carry such biases); so does the reader, naming it."""
    from ai_edge_litert.interpreter import Interpreter

    from pydeeplab.tflite.model import Quantization
    from pydeeplab.tflite.writer import ModelBuilder

    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.INT8, (1, 2, 2, 3), Quantization(np.array([0.5], np.float32), np.array([0]),
                                                                       quantized_dimension=dim))
    y = b.add_tensor("y", TensorType.INT8, (1, 2, 2, 3), Quantization(np.array([0.5], np.float32), np.array([0])))
    b.add_operator(BuiltinOperator.RELU, [x], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    data = b.finish()
    if refused:
        with pytest.raises((ValueError, RuntimeError)):
            Interpreter(model_content=data).allocate_tensors()
        with pytest.raises(ModelError, match=f"quantized_dimension {dim} is not a dimension of shape \\[1, 2, 2, 3\\]"):
            read_model(data)
    else:
        Interpreter(model_content=data).allocate_tensors()
        read_model(data)


@pytest.mark.parametrize("case", ["variable with a buffer", "version 0", "version -1", "plain"])
def test_models_litert_refuses_at_load_are_refused(case):
    """A variable tensor with data of its own, and a builtin operator code of version below 1:
    LiteRT refuses both when it builds the interpreter, and so does the reader, saying why."""
    from ai_edge_litert.interpreter import Interpreter

    from pydeeplab.tflite.writer import ModelBuilder

    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.FLOAT32, (2, 3))
    state = b.add_tensor("state", TensorType.FLOAT32, (2, 3), buffer=b.add_buffer(np.ones((2, 3), np.float32).tobytes()),
                         is_variable=case == "variable with a buffer")
    y = b.add_tensor("y", TensorType.FLOAT32, (2, 3))
    version = {"version 0": 0, "version -1": -1}.get(case, 1)
    b.add_operator(BuiltinOperator.ADD, [x, state], [y], AddOptions(), version=version)
    b.set_inputs([x])
    b.set_outputs([y])
    data = b.finish()
    if case == "plain":
        Interpreter(model_content=data).allocate_tensors()
        read_model(data)
        return
    with pytest.raises((ValueError, RuntimeError)):
        Interpreter(model_content=data).allocate_tensors()
    message = "is a variable with a buffer of its own" if case.startswith("variable") else \
        f"operator code 0 \\(ADD\\) has version {version}; versions start at 1"
    with pytest.raises(ModelError, match=message):
        read_model(data)
