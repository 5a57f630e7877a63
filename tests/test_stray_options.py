"""A builtin-options union of a type the operator does not read: LiteRT ignores it, so does pydeeplab."""

import numpy as np
import pytest
from oracle import quant, run_litert

import pydeeplab
from pydeeplab.cli import main
from pydeeplab.tflite.options import Conv2DOptions, Pool2DOptions, default_options
from pydeeplab.tflite.schema import BuiltinOperator, BuiltinOptionsType, Padding, TensorType
from pydeeplab.tflite.writer import ModelBuilder


def _quantize_with_stray_union() -> bytes:
    """x float32 -> QUANTIZE (carrying a Conv2DOptions union) -> uint8 -> MAX_POOL_2D -> y.

    As in the ST-converted model of issue 11: QUANTIZE's union type is QuantizeOptions,
    which it never reads; the file carries another op's options there.
    """
    b = ModelBuilder(description="stray union")
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 4, 4, 3))
    q = b.add_tensor("q", TensorType.UINT8, (1, 4, 4, 3), quant(0.02, 128))
    y = b.add_tensor("y", TensorType.UINT8, (1, 2, 2, 3), quant(0.02, 128))
    stray = Conv2DOptions(padding=Padding.VALID, stride_w=3, stride_h=3)
    b.add_operator(BuiltinOperator.QUANTIZE, [x], [q], stray, options_type=BuiltinOptionsType.Conv2DOptions)
    b.add_operator(BuiltinOperator.MAX_POOL_2D, [q], [y],
                   Pool2DOptions(padding=Padding.VALID, stride_w=2, stride_h=2, filter_width=2, filter_height=2))
    b.set_inputs([x])
    b.set_outputs([y])
    return b.finish()


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_stray_union_runs_like_litert(backend):
    model = _quantize_with_stray_union()
    x = np.random.default_rng(0).uniform(-2, 2, (1, 4, 4, 3)).astype(np.float32)
    (theirs,) = run_litert(model, [x])  # LiteRT accepts the model
    mdl = pydeeplab.read_model(model)
    assert mdl.main.operators[0].ignored_options_type == BuiltinOptionsType.Conv2DOptions
    assert mdl.main.operators[0].options == default_options(BuiltinOperator.QUANTIZE)
    assert mdl.main.operators[1].ignored_options_type == 0
    it = pydeeplab.Interpreter(model_content=model, backend=backend)
    it.allocate_tensors()
    it.set_tensor(0, x)
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(2), theirs)


def test_stray_union_on_an_op_with_options_gives_defaults():
    """ADD reads AddOptions; a Pool2DOptions union is ignored and ADD has no fused activation."""
    from pydeeplab.tflite.options import AddOptions

    b = ModelBuilder()
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 3))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 3))
    b.add_operator(BuiltinOperator.ADD, [x, x], [y], Pool2DOptions(stride_w=1, stride_h=1),
                   options_type=BuiltinOptionsType.Pool2DOptions)
    b.set_inputs([x])
    b.set_outputs([y])
    model = b.finish()
    xv = np.float32([[-1, 0, 2]])
    (theirs,) = run_litert(model, [xv])
    op = pydeeplab.read_model(model).main.operators[0]
    assert op.options == AddOptions() and op.ignored_options_type == BuiltinOptionsType.Pool2DOptions
    it = pydeeplab.Interpreter(model_content=model, backend="numpy")
    it.allocate_tensors()
    it.set_tensor(x, xv)
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(y), theirs)


def test_inspect_says_options_were_ignored(tmp_path, capsys):
    path = tmp_path / "stray.tflite"
    path.write_bytes(_quantize_with_stray_union())
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ignored stray Conv2DOptions" in out
    assert "ignored options: 1 operator(s)" in out
    assert main(["inspect", str(path), "--json"]) == 0
    assert '"ignored_options": "Conv2DOptions"' in capsys.readouterr().out
