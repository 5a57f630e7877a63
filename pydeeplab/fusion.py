"""Plan-time fusion: a standalone RELU, RELU6 or RELU_N1_TO_1 taken into the convolution before it.

MediaPipe's graphs (13 of the selfie segmenter's 22 RELUs) follow a float CONV_2D or
DEPTHWISE_CONV_2D that has no fused activation with a separate RELU, where TFLite's
converter usually fuses the two. The convolution clamps its output anyway (to infinite
bounds, for no activation), so given the RELU's bounds it computes the RELU's output
and the RELU becomes a pass over memory for nothing (0.5 ms of the selfie segmenter's
8 ms): the interpreter then skips the RELU, and the convolution writes the RELU's
output tensor directly.

Only where nothing can tell the difference: the tensor between the two is read by the
RELU alone and is not a graph output, and the interpreter does not preserve its
intermediate tensors (``experimental_preserve_all_tensors``, which ``verify`` uses,
runs the graph as written). The skipped tensor then reads as the RELU's output.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .ops.base import OpContext
from .tflite.model import Subgraph
from .tflite.schema import Activation, BuiltinOperator, TensorType

_ACTIVATIONS = {
    BuiltinOperator.RELU: Activation.RELU,
    BuiltinOperator.RELU6: Activation.RELU6,
    BuiltinOperator.RELU_N1_TO_1: Activation.RELU_N1_TO_1,
}
_PRODUCERS = (BuiltinOperator.CONV_2D, BuiltinOperator.DEPTHWISE_CONV_2D)


@dataclass(frozen=True)
class Fusion:
    """A convolution (operator ``producer``) that takes the activation of operator ``absorbed``."""

    producer: int
    absorbed: int
    activation: Activation
    inner: int  # the tensor between the two, which nothing writes any more
    output: int  # the activation's output tensor, which the convolution now writes

    def applies(self, ctx: OpContext) -> bool:
        """Whether the producer, as planned (``ctx``), is a float convolution run at every invoke:
        float32 input, weights and output, and an input not folded to a constant at plan time."""
        x, w = ctx.inputs[0], ctx.inputs[1] if len(ctx.inputs) > 1 else None
        return (x is not None and w is not None and x.data is None
                and x.type == w.type == ctx.outputs[0].type == TensorType.FLOAT32)

    def options(self, options):
        """The producer's options with the absorbed activation as its fused activation."""
        return dataclasses.replace(options, fused_activation_function=self.activation)


def activation_fusions(graph: Subgraph) -> dict[int, Fusion]:
    """The fusions the graph allows, by producer operator index (see the module docstring).

    The types are checked again at plan time (:meth:`Fusion.applies`), after constant folding.
    """
    writer: dict[int, object] = {}
    readers: dict[int, int] = {}
    for op in graph.operators:
        for i in op.outputs:
            writer[i] = op
        for i in set(op.inputs):
            if i >= 0:
                readers[i] = readers.get(i, 0) + 1
    fusions = {}
    for op in graph.operators:
        activation = _ACTIVATIONS.get(op.builtin)
        if activation is None or len(op.inputs) != 1 or len(op.outputs) != 1:
            continue
        inner = op.inputs[0]
        producer = writer.get(inner)
        if (producer is None or producer.builtin not in _PRODUCERS or len(producer.outputs) != 1
                or readers.get(inner) != 1 or inner in graph.outputs or op.outputs[0] in graph.inputs
                or graph.tensors[inner].type != TensorType.FLOAT32
                or getattr(producer.options, "fused_activation_function", None) != Activation.NONE):
            continue
        fusions[producer.index] = Fusion(producer.index, op.index, activation, inner, op.outputs[0])
    return fusions


__all__ = ["Fusion", "activation_fusions"]
