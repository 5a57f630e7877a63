"""The behaviours LiteRT's own Python interpreter tests check, run on LiteRT and on pydeeplab alike.

Each test takes ``api``, the module under test: ``ai_edge_litert.interpreter`` (2.3.0) or
``pydeeplab``, which must offer the same names (``import pydeeplab as tflite``). A test
that passes on LiteRT and fails on pydeeplab is a difference in the drop-in. The
behaviours follow tflite/python/interpreter_test.py in google-ai-edge/LiteRT (its test
names are given in each docstring); the models are synthesized here with pydeeplab's
writer instead of its testdata files:

- ``permute``: one CONV_2D 1x1 whose weights reverse 4 channels ([1, 2, 3, 4] -> [4, 3, 2, 1]),
  float32 or uint8 (scale 1, zero point 0), as LiteRT's permute_float/permute_uint8;
- ``two_signatures``: subgraph 0 adds, subgraph 1 multiplies, one signature each;
- ``per_channel``: an int8 CONV_2D with 8 per-channel weight scales.

Left out, with reasons: string tensors (testString*: pydeeplab computes numeric tensors
only, and refuses a STRING tensor at allocate_tensors with a ModelError naming the type);
sparse tensors (testSparseTensorAccess: needs LiteRT's test-only custom op); the creation
counter (testCreationCounter: LiteRT's telemetry); delegates that load (testDelegate,
testMultipleInterpreters, testOptions: pydeeplab cannot run a TfLiteDelegate, see
pydeeplab/delegate.py). The delegate that fails to load (testFail) is covered.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from pydeeplab.tflite.model import Quantization
from pydeeplab.tflite.options import AddOptions, Conv2DOptions, MulOptions
from pydeeplab.tflite.schema import BuiltinOperator as Op
from pydeeplab.tflite.schema import TensorType as T
from pydeeplab.tflite.writer import ModelBuilder

IN = np.array([[[[1.0, 2.0, 3.0, 4.0]]]], np.float32)
OUT = np.array([[[[4.0, 3.0, 2.0, 1.0]]]], np.float32)


@pytest.fixture(params=["litert", "pydeeplab"])
def api(request):
    """The module under test, with LiteRT's module-level names."""
    name = {"litert": "ai_edge_litert.interpreter", "pydeeplab": "pydeeplab"}[request.param]
    return importlib.import_module(name)


def _permute(quantized: bool = False, signature: bool = True) -> bytes:
    b = ModelBuilder()
    perm = np.eye(4, dtype=np.float32)[::-1].reshape(4, 1, 1, 4)
    if quantized:
        q = Quantization(np.array([1.0], np.float32), np.array([0]))
        x = b.add_tensor("input", T.UINT8, (1, 1, 1, 4), q)
        w = b.add_constant("weights", perm.astype(np.uint8), q)
        bias = b.add_constant("bias", np.zeros(4, np.int32), q)
        y = b.add_tensor("output", T.UINT8, (1, 1, 1, 4), q)
    else:
        x = b.add_tensor("input", T.FLOAT32, (1, 1, 1, 4))
        w = b.add_constant("weights", perm)
        bias = b.add_constant("bias", np.zeros(4, np.float32))
        y = b.add_tensor("output", T.FLOAT32, (1, 1, 1, 4))
    b.add_operator(Op.CONV_2D, [x, w, bias], [y], Conv2DOptions(stride_w=1, stride_h=1))
    b.set_inputs([x])
    b.set_outputs([y])
    if signature:
        b.add_signature("serving_default", {"x": x}, {"y": y})
    return b.finish()


def _two_signatures() -> bytes:
    b = ModelBuilder()
    for k, (name, op, options) in enumerate([("add", Op.ADD, AddOptions()), ("multiply", Op.MUL, MulOptions())]):
        if k:
            b.add_subgraph(name)
        x, y, z = (b.add_tensor(f"{name}_{v}:0", T.FLOAT32, (1,), shape_signature=(-1,)) for v in "xyz")
        b.add_operator(op, [x, y], [z], options)
        b.set_inputs([x, y])
        b.set_outputs([z])
        b.add_signature(name, {"x": x, "y": y}, {"output_0": z}, subgraph_index=k)
    return b.finish()


def _per_channel() -> bytes:
    b = ModelBuilder()
    scales = np.linspace(0.01, 0.08, 8).astype(np.float32)
    x = b.add_tensor("input", T.INT8, (1, 2, 2, 3), Quantization(np.array([0.5], np.float32), np.array([0])))
    w = b.add_constant("weights", np.arange(24, dtype=np.int8).reshape(8, 1, 1, 3),
                       Quantization(scales, np.zeros(8, np.int64), quantized_dimension=0))
    bias = b.add_constant("bias", np.zeros(8, np.int32), Quantization(scales * 0.5, np.zeros(8, np.int64)))
    y = b.add_tensor("output", T.INT8, (1, 2, 2, 8), Quantization(np.array([0.25], np.float32), np.array([-3])))
    b.add_operator(Op.CONV_2D, [x, w, bias], [y], Conv2DOptions(stride_w=1, stride_h=1))
    b.set_inputs([x])
    b.set_outputs([y])
    return b.finish()


@pytest.fixture(scope="module")
def permute_path(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("compat") / "permute_float.tflite"
    path.write_bytes(_permute())
    return path


def _allocated(api, content: bytes, **kwargs):
    interpreter = api.Interpreter(model_content=content, **kwargs)
    interpreter.allocate_tensors()
    return interpreter


def _assert_quantization(details: dict, scales, zero_points, dimension: int) -> None:
    params = details["quantization_parameters"]
    np.testing.assert_array_equal(params["scales"], scales)
    np.testing.assert_array_equal(params["zero_points"], zero_points)
    assert params["quantized_dimension"] == dimension


# -- construction ----------------------------------------------------------------------------


def test_path_like_model(api, permute_path):
    """testPathLikeModel: model_path may be a pathlib.Path."""
    api.Interpreter(model_path=pathlib.Path(permute_path)).allocate_tensors()


@pytest.mark.parametrize("num_threads, phrase", [(-1, "num_threads should >= 1"), (0, "num_threads should >= 1"),
                                                 (4.2, "type of num_threads should be int")])
def test_num_threads_errors(api, permute_path, num_threads, phrase):
    """testThreads_NegativeValue, testThreads_WrongType."""
    with pytest.raises(ValueError, match=phrase):
        api.Interpreter(model_path=permute_path, num_threads=num_threads)


@pytest.mark.parametrize("resolver", ["test", 2, None])
def test_unrecognized_op_resolver_type(api, permute_path, resolver):
    """testNotSupportedOpResolverTypes: anything but an OpResolverType is refused."""
    with pytest.raises(ValueError, match=f"Unrecognized passed in op resolver type: {resolver}"):
        api.Interpreter(model_path=permute_path, experimental_op_resolver_type=resolver)


@pytest.mark.parametrize("resolver", ["AUTO", "BUILTIN", "BUILTIN_REF", "BUILTIN_WITHOUT_DEFAULT_DELEGATES"])
def test_float_with_every_op_resolver_type(api, resolver):
    """testFloatWithDifferentOpResolverTypes: details and results, whatever the resolver."""
    it = _allocated(api, _permute(), experimental_op_resolver_type=getattr(api.OpResolverType, resolver))
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    for details, name in ((inp, "input"), (out, "output")):
        assert details["name"] == name and details["dtype"] == np.float32
        np.testing.assert_array_equal(details["shape"], [1, 1, 1, 4])
        assert details["quantization"] == (0.0, 0)
        _assert_quantization(details, [], [], 0)
    it.set_tensor(inp["index"], IN)
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(out["index"]), OUT)


def test_float_with_two_threads(api):
    """testFloatWithTwoThreads."""
    it = _allocated(api, _permute(), num_threads=2)
    it.set_tensor(it.get_input_details()[0]["index"], IN)
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(it.get_output_details()[0]["index"]), OUT)


def test_uint8(api):
    """testUint8: quantization details, resize to the same shape, run."""
    it = _allocated(api, _permute(quantized=True))
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    for details in (inp, out):
        assert details["dtype"] == np.uint8 and details["quantization"] == (1.0, 0)
        _assert_quantization(details, [1.0], [0], 0)
    x = np.array([[[[1, 2, 3, 4]]]], np.uint8)
    it.resize_tensor_input(inp["index"], x.shape)
    it.allocate_tensors()
    it.set_tensor(inp["index"], x)
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(out["index"]), [[[[4, 3, 2, 1]]]])


def test_per_channel_and_dense_params(api):
    """testPerChannelParams, testDenseTensorAccess: per-channel scales; empty sparsity of dense tensors.
    A per-channel tensor has no per-tensor ``quantization``: (0.0, 0), as TFLite's legacy params (it
    gave the first channel's scale); a per-tensor one its own."""
    all_details = _allocated(api, _per_channel()).get_tensor_details()
    details = all_details[1]
    assert len(details["quantization_parameters"]["scales"]) == 8
    assert details["quantization_parameters"]["quantized_dimension"] == 0
    assert details["sparsity_parameters"] == {}
    assert details["quantization"] == (0.0, 0) and all_details[2]["quantization"] == (0.0, 0)  # weights, bias
    assert all_details[0]["quantization"] == (0.5, 0) and all_details[3]["quantization"] == (0.25, -3)


# -- error propagation -----------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"short", b"wrong_identifier"])
def test_invalid_model_content(api, content):
    """testTooShortModelContent, testInvalidModelContent."""
    with pytest.raises(ValueError, match="The model is not a valid Flatbuffer buffer"):
        api.Interpreter(model_content=content)


def test_invalid_model_file(api):
    """testInvalidModelFile."""
    with pytest.raises(ValueError, match="Could not open 'totally_invalid_file_name'"):
        api.Interpreter(model_path="totally_invalid_file_name")


@pytest.mark.parametrize("kwargs", [{}, {"model_path": None, "model_content": None}, {"model_content": b""}])
def test_no_model(api, kwargs):
    """testInvalidModelFileContent: neither (or only empty) model_path nor model_content."""
    with pytest.raises(ValueError, match="`model_path` or `model_content` must be specified"):
        api.Interpreter(**kwargs)


def test_both_path_and_content(api, permute_path):
    with pytest.raises(ValueError, match="Can't both provide `model_path` and `model_content`"):
        api.Interpreter(model_path=permute_path, model_content=_permute())


def test_invoke_before_ready(api):
    """testInvokeBeforeReady."""
    with pytest.raises(RuntimeError, match="Invoke called on model that is not ready"):
        api.Interpreter(model_content=_permute()).invoke()


def test_invalid_tensor_and_node_index(api):
    """testInvalidIndex, testInvalidNode."""
    it = _allocated(api, _permute())
    with pytest.raises(ValueError, match="Invalid tensor index 5 exceeds max tensor index 4"):
        it._get_tensor_details(5, 0)
    with pytest.raises(ValueError, match="Invalid node index"):
        it._get_op_details(4)
    with pytest.raises(ValueError, match="Invalid subgraph index 1 exceeds max subgraph index 1"):
        it.get_tensor(3, 1)


def test_empty_input_tensor(api):
    """testEmptyInputTensor: a signature runner given a tensor with no elements."""
    runner = api.Interpreter(model_content=_two_signatures()).get_signature_runner("add")
    result = runner(x=np.zeros(0, np.float32), y=np.zeros(0, np.float32))
    assert result["output_0"].shape == (0,)


# -- tensor access ---------------------------------------------------------------------------


def test_tensor_is_a_reference_and_get_tensor_a_copy(api):
    """testTensorAccessor, testGetTensorAccessor."""
    it = _allocated(api, _permute())
    index = it.get_input_details()[0]["index"]
    initial = -IN
    view = it.tensor(index)
    np.copyto(view(), initial)
    np.testing.assert_array_equal(view(), initial)
    np.testing.assert_array_equal(it.get_tensor(index), initial)
    copy = it.get_tensor(index)
    it.set_tensor(index, copy + 1)
    np.testing.assert_array_equal(copy, initial)
    np.testing.assert_array_equal(it.get_tensor(index), initial + 1)


def test_held_views_mark_the_interpreter_unsafe(api):
    """testBase: the function is harmless, each array it returns counts until deleted."""
    it = _allocated(api, _permute())
    assert it._safe_to_run()
    function = it.tensor(0)
    assert it._safe_to_run()
    a = function()
    assert not it._safe_to_run()
    b = it.tensor(0)()
    assert not it._safe_to_run()
    del a
    assert not it._safe_to_run()
    del b
    assert it._safe_to_run()


def test_held_view_blocks_invoke_allocate_and_resize(api):
    """testBaseProtectsFunctions, slices included; set_tensor and get_tensor stay allowed."""
    it = _allocated(api, _permute())
    part = it.tensor(0)()[0, 0]  # a slice keeps the array it was cut from
    for call in (it.allocate_tensors, it.invoke, lambda: it.resize_tensor_input(0, [1, 1, 1, 4])):
        with pytest.raises(RuntimeError, match="There is at least 1 reference to internal data"):
            call()
    it.set_tensor(0, IN)
    np.testing.assert_array_equal(part, IN[0, 0])  # the view shows what set_tensor wrote
    del part
    keep = it.tensor(0)  # holding the function is fine
    it.allocate_tensors()
    it.set_tensor(0, IN)
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(3), OUT)
    del keep


# -- nodes -----------------------------------------------------------------------------------


def test_op_details(api):
    """testValidNode (with a resolver that does not add XNNPACK's DELEGATE node)."""
    it = _allocated(api, _permute(), experimental_op_resolver_type=api.OpResolverType.BUILTIN_REF)
    (details,) = it._get_ops_details()
    assert details["index"] == 0 and details["op_name"] == "CONV_2D"
    np.testing.assert_array_equal(details["inputs"], [0, 1, 2])
    np.testing.assert_array_equal(details["outputs"], [3])
    assert details["operand_types"] == [np.float32] * 3 and details["result_types"] == [np.float32]
    assert it._get_op_details(0)["op_name"] == "CONV_2D"


# -- delegates and custom operators ----------------------------------------------------------

_FAILING_DELEGATE = r"""
#include <string.h>
typedef void (*report_fn)(const char *);
void *tflite_plugin_create_delegate(char **keys, char **values, int n, report_fn report) {
  for (int i = 0; i < n; ++i)
    if (strcmp(keys[i], "fail") == 0) report("Fail argument sent.");
  return 0;  /* this test plugin never creates a delegate */
}
void tflite_plugin_destroy_delegate(void *delegate) {}
"""


@pytest.fixture(scope="module")
def failing_delegate(tmp_path_factory) -> pathlib.Path:
    """A delegate plugin (built here with the C compiler) whose creation fails, as LiteRT's test_delegate."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the test delegate plugin")
    folder = tmp_path_factory.mktemp("delegate")
    (folder / "failing_delegate.c").write_text(_FAILING_DELEGATE)
    library = folder / "failing_delegate.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), str(folder / "failing_delegate.c")],
                   check=True, capture_output=True)
    return library


def test_delegate_that_fails_to_load(api, failing_delegate):
    """testFail: ValueError 'Failed to load delegate from', which sends LiteRT's pattern to the CPU path."""
    with pytest.raises(ValueError, match="Failed to load delegate from"):
        api.load_delegate(str(failing_delegate), options={"fail": "fail"})


# LiteRT's Delegate.__del__ runs on its half-built object after these failures and complains.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_load_delegate_errors(api):
    """A library that cannot be loaded raises OSError, one that is not a delegate plugin AttributeError."""
    with pytest.raises(OSError):
        api.load_delegate("no_such_delegate_library.so")
    libc = "libc.so.6" if sys.platform.startswith("linux") else None
    if libc:
        with pytest.raises(AttributeError, match="tflite_plugin_create_delegate"):
            api.load_delegate(libc)


def test_custom_op_registerers(api, permute_path):
    """testNoCustomOps, testRegistererFailure."""
    assert api.InterpreterWithCustomOps(model_path=permute_path)._safe_to_run()
    bogus = "CompletelyBogusRegistererName"
    with pytest.raises(ValueError, match=f"Looking up symbol '{bogus}' failed"):
        api.InterpreterWithCustomOps(model_path=permute_path, custom_op_registerers=[bogus])


# -- signatures and subgraphs ----------------------------------------------------------------


def test_num_subgraphs_and_tensor_details(api):
    """testNumSubgraphs*, testGetTensorDetails*: one subgraph per signature, details per subgraph."""
    single = api.Interpreter(model_content=_permute())
    assert single.num_subgraphs() == 1
    details = single.get_tensor_details()
    assert len(details) == 4 and details[0]["name"] == "input"
    for index in (1, -1):
        with pytest.raises(ValueError, match="subgraph_index is out of range"):
            single.get_tensor_details(subgraph_index=index)
    double = api.Interpreter(model_content=_two_signatures())
    assert double.num_subgraphs() == 2
    for k, name in enumerate(["add", "multiply"]):
        details = double.get_tensor_details(subgraph_index=k)
        assert [d["name"] for d in details] == [f"{name}_x:0", f"{name}_y:0", f"{name}_z:0"]
    with pytest.raises(ValueError, match="subgraph_index is out of range"):
        double.get_tensor_details(subgraph_index=3)


def test_signature_runners_run_their_subgraphs(api):
    """Each signature runs its own subgraph, resized to the arrays given, again and again."""
    it = api.Interpreter(model_content=_two_signatures())
    assert it.get_signature_list() == {"add": {"inputs": ["x", "y"], "outputs": ["output_0"]},
                                       "multiply": {"inputs": ["x", "y"], "outputs": ["output_0"]}}
    add, mul = it.get_signature_runner("add"), it.get_signature_runner("multiply")
    x, y = np.array([2.0, 3.0], np.float32), np.array([4.0, 5.0], np.float32)
    np.testing.assert_array_equal(add(x=x, y=y)["output_0"], [6.0, 8.0])
    np.testing.assert_array_equal(mul(x=x, y=y)["output_0"], [8.0, 15.0])
    np.testing.assert_array_equal(mul(x=x[:1], y=y[:1])["output_0"], [8.0])
    np.testing.assert_array_equal(add(x=x, y=y)["output_0"], [6.0, 8.0])
    details = mul.get_input_details()
    assert list(details) == ["x", "y"] and details["x"]["name"] == "multiply_x:0"
    np.testing.assert_array_equal(details["x"]["shape_signature"], [-1])
    assert mul.get_output_details()["output_0"]["name"] == "multiply_z:0"


def test_signature_runner_errors(api):
    it = api.Interpreter(model_content=_two_signatures())
    with pytest.raises(ValueError, match="signature_key is None and model has 2 Signatures"):
        it.get_signature_runner()
    with pytest.raises(ValueError, match='Invalid signature_key provided: "nope"'):
        it.get_signature_runner("nope")
    add = it.get_signature_runner("add")
    with pytest.raises(ValueError, match="Invalid number of inputs provided for running a SignatureDef, "
                                         "expected 2 vs provided 1"):
        add(x=np.zeros(1, np.float32))
    with pytest.raises(ValueError, match=r"Invalid Input name \(z\) for SignatureDef"):
        add(x=np.zeros(1, np.float32), z=np.zeros(1, np.float32))
    no_signature = api.Interpreter(model_content=_permute(signature=False))
    assert no_signature.get_signature_list() == {}
    with pytest.raises(ValueError, match="model has 0 Signatures"):
        no_signature.get_signature_runner()


def test_single_signature_runner(api):
    """get_signature_runner() with no key when the model has one signature; subgraph 0 also runs by invoke."""
    it = api.Interpreter(model_content=_permute())
    result = it.get_signature_runner()(x=IN)
    assert list(result) == ["y"]
    np.testing.assert_array_equal(result["y"], OUT)


def test_variables_hold_state_until_reset(api):
    """A variable tensor starts at zero, keeps what is set, and reset_all_variables zeroes it."""
    b = ModelBuilder()
    x = b.add_tensor("x", T.FLOAT32, (1, 4))
    state = b.add_tensor("state", T.FLOAT32, (1, 4), is_variable=True)
    y = b.add_tensor("y", T.FLOAT32, (1, 4))
    b.add_operator(Op.ADD, [x, state], [y], AddOptions())
    b.set_inputs([x])
    b.set_outputs([y])
    it = _allocated(api, b.finish())
    np.testing.assert_array_equal(it.get_tensor(state), np.zeros((1, 4)))
    it.set_tensor(x, np.ones((1, 4), np.float32))
    it.set_tensor(state, np.full((1, 4), 5.0, np.float32))
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(y), np.full((1, 4), 6.0))
    assert it.reset_all_variables() is None
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(y), np.ones((1, 4)))


# -- the API's shape -------------------------------------------------------------------------


def _parameters(fn) -> list[tuple[str, str, object]]:
    """(name, kind, default) of each parameter; enum defaults by name (each module has its own enum)."""
    out = []
    for p in inspect.signature(fn).parameters.values():
        default = p.default.name if isinstance(p.default, enum.Enum) else p.default
        out.append((p.name, p.kind.name, default))
    return out


def test_every_public_name_and_signature_of_litert_is_on_pydeeplab():
    """ai_edge_litert.interpreter's public classes and functions exist on pydeeplab, their methods
    with the same parameters (pydeeplab may add keyword-only ones after, such as ``backend``)."""
    import ai_edge_litert.interpreter as litert

    import pydeeplab

    public = [n for n in dir(litert) if not n.startswith("_") and (inspect.isclass(getattr(litert, n))
                                                                  or inspect.isfunction(getattr(litert, n)))]
    assert set(public) >= {"Interpreter", "InterpreterWithCustomOps", "SignatureRunner", "OpResolverType",
                           "Delegate", "load_delegate"}
    for name in public:
        theirs, ours = getattr(litert, name), getattr(pydeeplab, name, None)
        assert ours is not None, f"pydeeplab.{name} is missing"
        assert getattr(pydeeplab.interpreter, name) is ours  # `import pydeeplab.interpreter as tflite` too
        if inspect.isfunction(theirs):
            assert _parameters(ours) == _parameters(theirs), name
        elif issubclass(theirs, enum.Enum):
            assert [(m.name, m.value) for m in ours] == [(m.name, m.value) for m in theirs], name
        else:
            methods = [m for m, v in vars(theirs).items()
                       if callable(v) and (not m.startswith("_") or m in ("__init__", "__call__"))]
            for method in methods:
                assert hasattr(ours, method), f"pydeeplab.{name}.{method} is missing"
                mine = [p for p in _parameters(getattr(ours, method)) if p[1] != "KEYWORD_ONLY"]
                assert mine == _parameters(getattr(theirs, method)), f"{name}.{method}"
    # The private helpers LiteRT's tests and tools call.
    for method in ("_get_op_details", "_get_ops_details", "_get_tensor_details", "_safe_to_run", "_ensure_safe",
                   "_get_full_signature_list"):
        assert _parameters(getattr(pydeeplab.Interpreter, method))[:len(
            _parameters(getattr(litert.Interpreter, method)))] == _parameters(getattr(litert.Interpreter, method))
    assert isinstance(pydeeplab.Interpreter.experimental_compress_quantization_zero_points, property)


def test_known_difference_a_live_signature_runner(api):
    """A difference kept on purpose. LiteRT's SignatureRunner holds a reference to the wrapper whose
    reference count is LiteRT's held-view check, so while a runner is alive, ``invoke()`` and
    ``allocate_tensors()`` raise the held-view error although no array is held. pydeeplab counts
    only the arrays ``tensor()`` handed out: code written for LiteRT never relies on that error."""
    it = _allocated(api, _permute())
    runner = it.get_signature_runner()
    np.testing.assert_array_equal(runner(x=IN)["y"], OUT)
    if api.__name__.startswith("ai_edge_litert"):
        with pytest.raises(RuntimeError, match="There is at least 1 reference to internal data"):
            it.invoke()
    else:
        it.invoke()
    del runner
    it.invoke()
