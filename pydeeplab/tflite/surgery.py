"""Model surgery: copy a model into a :class:`ModelBuilder`, and make LiteRT able to run it.

LiteRT's Python API cannot load custom operators, so a model that uses them has
no LiteRT oracle as it is. :func:`litert_equivalent` gives it one: each custom
operator that a builtin computes exactly is rewritten to that builtin
(MediaPipe's ``Convolution2DTransposeBias`` is TRANSPOSE_CONV with its bias
input), and the graph is cut before any other custom operator (their inputs
become graph outputs, so everything up to them is still compared). Tensor
indices are kept, so tensors of the result and of the original correspond one
to one.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelError
from .model import Model, Operator
from .options import TransposeConvOptions
from .reader import read_model
from .schema import BuiltinOperator, Padding, TensorType
from .writer import ModelBuilder


def builder_from_model(model: Model, *, operators: bool = True) -> ModelBuilder:
    """A ModelBuilder holding subgraph 0 of ``model``: the same tensors (same indices) and
    buffers, inputs and outputs, and (unless ``operators=False``) the same operators.
    Metadata and signatures are not copied."""
    g = model.main
    b = ModelBuilder(description=model.description, subgraph_name=g.name or "main")
    for t in g.tensors:
        raw = model.buffers[t.buffer] if t.buffer < len(model.buffers) else b""
        buffer = b.add_buffer(bytes(raw)) if len(raw) else 0
        b.add_tensor(t.name, t.type, t.shape, t.quantization, buffer=buffer, shape_signature=t.shape_signature,
                     is_variable=t.is_variable)
    if operators:
        for op in g.operators:
            copy_operator(b, op)
    b.set_inputs(g.inputs)
    b.set_outputs(g.outputs)
    return b


def copy_operator(b: ModelBuilder, op: Operator) -> int:
    """Append ``op`` (read from a model whose tensors ``b`` holds at the same indices) to ``b``."""
    return b.add_operator(op.builtin, op.inputs, op.outputs, op.options, op.code.version,
                          custom_code=op.code.custom_code, custom_options=op.custom_options,
                          intermediates=op.intermediates)


def _transpose_conv_bias(b: ModelBuilder, model: Model, op: Operator) -> None:
    """Convolution2DTransposeBias (input, weights, bias) -> TRANSPOSE_CONV (output_shape, weights, input, bias)."""
    raw = op.custom_options or b""
    if len(raw) < 12:
        raise ModelError(f"operator {op.index} (Convolution2DTransposeBias): custom options hold {len(raw)} bytes, "
                         "expected 12 (int32 padding, stride_w, stride_h)")
    padding, stride_w, stride_h = struct.unpack_from("<3i", raw)
    out = model.main.tensors[op.outputs[0]]
    shape = b.add_constant(f"{out.name}/output_shape", np.asarray(out.shape, dtype=np.int32))
    options = TransposeConvOptions(padding=Padding.SAME if padding == 1 else Padding.VALID,
                                   stride_w=stride_w, stride_h=stride_h)
    x, w, bias = op.inputs
    b.add_operator(BuiltinOperator.TRANSPOSE_CONV, [shape, w, x, bias], op.outputs, options, version=3)


#: custom_code -> a function adding the equivalent builtin operator(s) to the builder.
BUILTIN_EQUIVALENTS = {"Convolution2DTransposeBias": _transpose_conv_bias}


@dataclass
class LiteRTEquivalent:
    """A model LiteRT can run, standing for one it cannot.

    ``rewritten``: operators replaced by an equivalent builtin (index -> its custom code);
    ``cut``: operators removed because no builtin computes them (they and everything after them).
    """

    content: bytes
    rewritten: dict[int, str] = field(default_factory=dict)
    cut: frozenset[int] = frozenset()


def litert_equivalent(content: bytes) -> LiteRTEquivalent:
    """``content`` unchanged when it has no custom operator; else the rewritten/cut model (see module doc)."""
    model = read_model(content)
    g = model.main
    customs = [op for op in g.operators if op.builtin == BuiltinOperator.CUSTOM]
    if not customs:
        return LiteRTEquivalent(content)
    # Cut every operator that depends (transitively) on a custom operator without a builtin twin.
    tainted: set[int] = set()
    cut: set[int] = set()
    for op in g.operators:
        opaque = op.builtin == BuiltinOperator.CUSTOM and op.code.custom_code not in BUILTIN_EQUIVALENTS
        if opaque or any(i in tainted for i in op.inputs if i >= 0):
            cut.add(op.index)
            tainted.update(op.outputs)
    b = builder_from_model(model, operators=False)
    rewritten = {}
    for op in g.operators:
        if op.index in cut:
            continue
        if op.builtin == BuiltinOperator.CUSTOM:
            BUILTIN_EQUIVALENTS[op.code.custom_code](b, model, op)
            rewritten[op.index] = op.code.custom_code
        else:
            copy_operator(b, op)
    # What the cut operators read from the kept graph becomes an output, so it is still compared.
    outputs = [i for i in g.outputs if i not in tainted]
    for op in g.operators:
        if op.index in cut:
            for i in op.inputs:
                if i >= 0 and i not in tainted and g.tensors[i].data is None and i not in outputs:
                    outputs.append(i)
    b.set_outputs(outputs)
    return LiteRTEquivalent(b.finish(), rewritten, frozenset(cut))


__all__ = ["BUILTIN_EQUIVALENTS", "LiteRTEquivalent", "builder_from_model", "copy_operator", "litert_equivalent"]
