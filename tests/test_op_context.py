"""OpContext helpers shared by the operator modules: options with defaults, one-output type checks."""

import pytest

from pydeeplab.errors import ModelError
from pydeeplab.ops import OpContext, TensorSpec
from pydeeplab.tflite.options import Pool2DOptions, ReducerOptions
from pydeeplab.tflite.schema import BuiltinOperator, TensorType


def _ctx(options=None, in_type=TensorType.FLOAT32, out_type=TensorType.FLOAT32, n_inputs=1):
    inputs = tuple(TensorSpec(k, f"in{k}", in_type, (1, 4)) for k in range(n_inputs))
    return OpContext(index=3, opcode=BuiltinOperator.MEAN, version=1, options=options, inputs=inputs,
                     outputs=(TensorSpec(9, "out", out_type, (1, 4)),), backend="numpy")


def test_options_as_gives_defaults_the_stored_options_or_a_clear_error():
    assert _ctx().options_as(ReducerOptions) == ReducerOptions()
    stored = ReducerOptions(keep_dims=True)
    assert _ctx(stored).options_as(ReducerOptions) is stored
    with pytest.raises(ModelError, match=r"operator 3 \(MEAN\): missing Pool2DOptions"):
        _ctx().options_as(Pool2DOptions, required=True)
    with pytest.raises(ModelError, match="expects Pool2DOptions"):
        _ctx(stored).options_as(Pool2DOptions)


def test_same_type_io_checks_arity_and_type():
    x, o = _ctx(n_inputs=2).same_type_io(2)
    assert (x.name, o.name) == ("in0", "out")
    with pytest.raises(ModelError, match="expects 1 inputs, has 2"):
        _ctx(n_inputs=2).same_type_io()
    with pytest.raises(ModelError, match="output type INT8 differs from the input type FLOAT32"):
        _ctx(out_type=TensorType.INT8).same_type_io()
