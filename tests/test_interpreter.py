"""The Interpreter: tflite_runtime's API and behaviour, planning, memory reuse, misuse."""

import threading

import numpy as np
import pytest
from oracle import T, quant, run_litert, single_op_model

import pydeeplab
from pydeeplab import ModelError, UnsupportedOperatorError
from pydeeplab.interpreter import InterpreterStateError
from pydeeplab.tflite.options import AddOptions, Conv2DOptions, Pool2DOptions
from pydeeplab.tflite.schema import Activation, BuiltinOperator, Padding, TensorType
from pydeeplab.tflite.writer import ModelBuilder


def segment_with(tflite, model_path: str, image: np.ndarray) -> np.ndarray:
    """A program written for tflite_runtime: it only uses ``tflite.Interpreter``."""
    interpreter = tflite.Interpreter(model_path=model_path, num_threads=1)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    interpreter.set_tensor(inp["index"], image.astype(inp["dtype"]))
    interpreter.invoke()
    return interpreter.get_tensor(out["index"])


def test_same_program_runs_on_litert_and_pydeeplab(model_path):
    import ai_edge_litert.interpreter as litert

    path = str(model_path("deeplabv3_257_mv_gpu"))
    image = np.random.default_rng(0).uniform(-1, 1, (1, 257, 257, 3)).astype(np.float32)
    theirs = segment_with(litert, path, image)
    ours = segment_with(pydeeplab, path, image)
    assert ours.shape == theirs.shape == (1, 257, 257, 21)
    assert np.abs(ours - theirs).max() <= 1e-4
    assert np.mean(ours.argmax(-1) == theirs.argmax(-1)) >= 0.9999


def _details_equal(ours: dict, theirs: dict) -> None:
    assert set(ours) == set(theirs)
    for key in ("name", "index", "dtype", "quantization"):
        assert ours[key] == theirs[key], key
    for key in ("shape", "shape_signature"):
        np.testing.assert_array_equal(ours[key], theirs[key])
        assert ours[key].dtype == theirs[key].dtype
    for key, value in theirs["quantization_parameters"].items():
        np.testing.assert_array_equal(ours["quantization_parameters"][key], value)


@pytest.mark.parametrize("name", ["deeplabv3_257_mv_gpu", "deeplabv3_mnv2_pascal_quant"])
def test_details_match_litert(model_path, name):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    path = str(model_path(name))
    lite = Interpreter(model_path=path, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    lite.allocate_tensors()
    ours = pydeeplab.Interpreter(model_path=path)
    ours.allocate_tensors()
    for a, b in zip(ours.get_input_details(), lite.get_input_details()):
        _details_equal(a, b)
    for a, b in zip(ours.get_output_details(), lite.get_output_details()):
        _details_equal(a, b)
    theirs = lite.get_tensor_details()
    assert len(ours.get_tensor_details()) == len(theirs)
    for a, b in zip(ours.get_tensor_details(), theirs):
        _details_equal(a, b)
    for a, b in zip(ours._get_ops_details(), lite._get_ops_details()):
        assert a["op_name"] == b["op_name"]
        np.testing.assert_array_equal(a["inputs"], b["inputs"])
        np.testing.assert_array_equal(a["outputs"], b["outputs"])
    assert ours.get_signature_list() == lite.get_signature_list()


def _conv_model(activation=Activation.RELU) -> bytes:
    rng = np.random.default_rng(1)
    return single_op_model(
        BuiltinOperator.CONV_2D,
        [T(rng.standard_normal((1, 9, 9, 3)).astype(np.float32)),
         T(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), const=True),
         T(rng.standard_normal(4).astype(np.float32), const=True)],
        [T(None, TensorType.FLOAT32, (1, 5, 5, 4))],
        Conv2DOptions(padding=Padding.SAME, stride_w=2, stride_h=2, fused_activation_function=activation),
    )


def test_set_tensor_errors_match_litert():
    from ai_edge_litert.interpreter import Interpreter

    model = _conv_model()
    lite, ours = Interpreter(model_content=model), pydeeplab.Interpreter(model_content=model)
    for it in (lite, ours):
        it.allocate_tensors()
    index = ours.get_input_details()[0]["index"]
    bad_values = [
        np.zeros((1, 9, 9, 3), np.float64),  # dtype
        np.zeros((1, 9, 9), np.float32),  # rank
        np.zeros((1, 9, 8, 3), np.float32),  # one dimension
    ]
    for value in bad_values:
        with pytest.raises(ValueError) as theirs:
            lite.set_tensor(index, value)
        with pytest.raises(ValueError) as mine:
            ours.set_tensor(index, value)
        assert str(mine.value) == str(theirs.value)
    with pytest.raises(ValueError, match="Invalid tensor index 99"):
        ours.set_tensor(99, bad_values[0])
    with pytest.raises(ValueError, match="Invalid tensor index"):
        ours.get_tensor(-1)


def test_calls_out_of_order():
    ours = pydeeplab.Interpreter(model_content=_conv_model())
    with pytest.raises(RuntimeError, match="not ready"):
        ours.invoke()
    with pytest.raises(ValueError, match="allocate_tensors"):
        ours.set_tensor(0, np.zeros((1, 9, 9, 3), np.float32))
    assert issubclass(InterpreterStateError, ValueError)
    with pytest.raises(ValueError, match="`model_path` or `model_content` must be specified"):
        pydeeplab.Interpreter()
    with pytest.raises(ValueError, match="backend"):
        pydeeplab.Interpreter(model_content=_conv_model(), backend="cuda")


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_get_tensor_is_a_copy_and_tensor_a_view(backend):
    model = _conv_model()
    ours = pydeeplab.Interpreter(model_content=model, backend=backend)
    ours.allocate_tensors()
    x = np.random.default_rng(2).standard_normal((1, 9, 9, 3)).astype(np.float32)
    inp, out = ours.get_input_details()[0]["index"], ours.get_output_details()[0]["index"]
    ours.set_tensor(inp, x)
    ours.invoke()
    y = ours.get_tensor(out)
    np.testing.assert_allclose(y, run_litert(model, [x])[0], rtol=1e-5, atol=1e-5)
    y[...] = -7
    assert not np.array_equal(ours.get_tensor(out), y)
    view = ours.tensor(inp)
    view()[...] = 0  # writing through the view sets the input, as with tflite_runtime
    ours.invoke()
    np.testing.assert_allclose(ours.get_tensor(out), run_litert(model, [np.zeros_like(x)])[0], rtol=1e-5, atol=1e-5)


def test_resize_tensor_input_and_reallocate():
    from ai_edge_litert.interpreter import Interpreter

    model = _conv_model()
    ours = pydeeplab.Interpreter(model_content=model)
    lite = Interpreter(model_content=model)
    x = np.random.default_rng(3).standard_normal((2, 17, 12, 3)).astype(np.float32)
    for it in (ours, lite):
        index = it.get_input_details()[0]["index"]
        it.resize_tensor_input(index, [2, 17, 12, 3])
        it.allocate_tensors()
        it.set_tensor(index, x)
        it.invoke()
    assert ours.get_output_details()[0]["shape"].tolist() == [2, 9, 6, 4]
    np.testing.assert_allclose(ours.get_tensor(ours.get_output_details()[0]["index"]),
                               lite.get_tensor(lite.get_output_details()[0]["index"]), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        ours.resize_tensor_input(0, [1, -5, 3, 3])
    with pytest.raises(ValueError, match="not an input"):
        ours.resize_tensor_input(ours.get_output_details()[0]["index"], [1, 2, 2, 4])
    with pytest.raises(ModelError):  # a kernel larger than the padded input is an error at plan time
        ours.resize_tensor_input(0, [1, 0, 0, 3])
        ours.allocate_tensors()
        ours.invoke()


def test_unsupported_operators_are_all_named_at_load():
    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 4))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 4))
    z = b.add_tensor("z", TensorType.FLOAT32, (1, 4))
    b.add_operator(BuiltinOperator.CEIL, [x], [y])
    b.add_operator(BuiltinOperator.CUSTOM, [y], [z], custom_code="MyOp")
    b.set_inputs([x])
    b.set_outputs([z])
    with pytest.raises(UnsupportedOperatorError, match=r"CEIL \(operators 0\).*CUSTOM\(MyOp\) \(operators 1\)"):
        pydeeplab.Interpreter(model_content=b.finish())


def _add_chain(order_ok: bool = True) -> bytes:
    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 4))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 4))
    z = b.add_tensor("z", TensorType.FLOAT32, (1, 4))
    ops = [(BuiltinOperator.ADD, [x, x], [y]), (BuiltinOperator.ADD, [y, y], [z])]
    for code, ins, outs in ops if order_ok else ops[::-1]:
        b.add_operator(code, ins, outs, AddOptions())
    b.set_inputs([x])
    b.set_outputs([z])
    return b.finish()


def test_graph_out_of_order_is_a_model_error():
    ours = pydeeplab.Interpreter(model_content=_add_chain(order_ok=False))
    with pytest.raises(ModelError, match="reads tensor 1 before any operator writes it"):
        ours.allocate_tensors()
    ok = pydeeplab.Interpreter(model_content=_add_chain())
    ok.allocate_tensors()
    ok.set_tensor(0, np.arange(4, dtype=np.float32)[None])
    ok.invoke()
    np.testing.assert_array_equal(ok.get_tensor(2), 4 * np.arange(4, dtype=np.float32)[None])


def test_activations_share_memory(model_path):
    path = str(model_path("deeplabv3_257_mv_gpu"))
    shared = pydeeplab.Interpreter(model_path=path)
    shared.allocate_tensors()
    kept = pydeeplab.Interpreter(model_path=path, experimental_preserve_all_tensors=True)
    kept.allocate_tensors()
    activations = sum(a.nbytes for t, a in zip(shared.model.main.tensors, shared._arrays)
                      if a is not None and t.data is None)
    assert kept._arena.nbytes >= activations
    # Largest live pair in this model: two 129x129x48 float tensors and the input; the plan
    # must stay within a small factor of that, far below the sum of all activations.
    assert shared._arena.nbytes < 0.25 * activations


def test_threads_separate_and_shared():
    model = _conv_model()
    rng = np.random.default_rng(4)
    xs = [rng.standard_normal((1, 9, 9, 3)).astype(np.float32) for _ in range(8)]
    want = [run_litert(model, [x])[0] for x in xs]
    shared = pydeeplab.Interpreter(model_content=model)
    shared.allocate_tensors()
    errors = []

    def work(k: int, own: bool) -> None:
        it = pydeeplab.Interpreter(model_content=model) if own else shared
        if own:
            it.allocate_tensors()
        for _ in range(20):
            i = k % len(xs)
            with it._lock:  # set, invoke and read as one unit on the shared interpreter
                it.set_tensor(0, xs[i])
                it.invoke()
                got = it.get_tensor(it.get_output_details()[0]["index"])
            if not np.allclose(got, want[i], rtol=1e-5, atol=1e-5):
                errors.append(k)
            k += 1

    threads = [threading.Thread(target=work, args=(k, k % 2 == 0)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_uint8_pool_through_interpreter():
    x = np.random.default_rng(5).integers(0, 256, (1, 6, 6, 2), dtype=np.uint8)
    model = single_op_model(
        BuiltinOperator.AVERAGE_POOL_2D, [T(x, quant=quant(0.5, 3))],
        [T(None, TensorType.UINT8, (1, 3, 3, 2), quant=quant(0.5, 3))],
        Pool2DOptions(padding=Padding.VALID, stride_w=2, stride_h=2, filter_width=2, filter_height=2))
    ours = pydeeplab.Interpreter(model_content=model)
    ours.allocate_tensors()
    ours.set_tensor(ours.get_input_details()[0]["index"], x)
    ours.invoke()
    np.testing.assert_array_equal(ours.get_tensor(ours.get_output_details()[0]["index"]), run_litert(model, [x])[0])


# -- LiteRT API pieces that only pydeeplab needs to state (the shared ones: test_litert_compat.py) --


def test_delegates_passed_in_are_ignored_with_a_warning():
    with pytest.warns(RuntimeWarning, match="ignores the 1 delegate"):
        it = pydeeplab.Interpreter(model_content=_conv_model(), experimental_delegates=[object()])
    it.allocate_tensors()
    it.invoke()


def test_litert_op_resolver_values_are_accepted():
    from ai_edge_litert.interpreter import OpResolverType as LiteResolver

    for value in LiteResolver:
        it = pydeeplab.Interpreter(model_content=_conv_model(), experimental_op_resolver_type=value)
        assert it.op_resolver_type is pydeeplab.OpResolverType[value.name]


def test_custom_op_registerers_are_called_once_before_the_model_is_resolved():
    calls = []
    it = pydeeplab.InterpreterWithCustomOps(model_content=_conv_model(),
                                            custom_op_registerers=[lambda: calls.append(1)])
    assert calls == [1] and it._safe_to_run()
    with pytest.raises(ValueError, match="neither a function nor a symbol name"):
        pydeeplab.InterpreterWithCustomOps(model_content=_conv_model(), custom_op_registerers=[3])


def test_every_subgraph_is_checked_at_construction():
    """LiteRT resolves every subgraph's operators up front; so does pydeeplab."""
    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 4))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 4))
    b.add_operator(BuiltinOperator.RELU, [x], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    b.add_subgraph("second")
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 4))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 4))
    b.add_operator(BuiltinOperator.CUSTOM, [x], [y], custom_code="NoSuchOp")
    b.set_inputs([x])
    b.set_outputs([y])
    with pytest.raises(pydeeplab.UnsupportedOperatorError, match="subgraph 1 .*NoSuchOp"):
        pydeeplab.Interpreter(model_content=b.finish())


def test_custom_op_registerer_registers_a_python_operator():
    """InterpreterWithCustomOps with a registerer calling pydeeplab.register_custom_op: the op runs."""
    from pydeeplab import Prepared, register_custom_op, unregister_custom_op

    def prepare_twice(ctx):
        def run(inputs, outputs):
            np.multiply(inputs[0], 2, out=outputs[0])

        return Prepared((ctx.inputs[0].shape,), run)

    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 4))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 4))
    b.add_operator(BuiltinOperator.CUSTOM, [x], [y], custom_code="TwiceForRegistererTest")
    b.set_inputs([x])
    b.set_outputs([y])
    model = b.finish()
    with pytest.raises(UnsupportedOperatorError, match="TwiceForRegistererTest"):
        pydeeplab.Interpreter(model_content=model)
    try:
        it = pydeeplab.InterpreterWithCustomOps(
            model_content=model, custom_op_registerers=[lambda: register_custom_op("TwiceForRegistererTest",
                                                                                   prepare_twice)])
        it.allocate_tensors()
        it.set_tensor(x, np.arange(4, dtype=np.float32).reshape(1, 4))
        it.invoke()
        np.testing.assert_array_equal(it.get_tensor(y), [[0.0, 2.0, 4.0, 6.0]])
    finally:
        unregister_custom_op("TwiceForRegistererTest")
