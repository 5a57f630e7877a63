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

The same holds for a segmentation model's last two operators: a RESIZE_BILINEAR of the
logits to the image size, then ARG_MAX over the channels (every uint8 DeepLab here). One
kernel (``kernels.resize.resize_bilinear_arg_max``) computes each pixel's resized values and
their argmax without writing the resized tensor (dm05: [1,513,513,21] uint8, 9.8 -> 2.5 ms
of 38, one thread): the RESIZE_BILINEAR writes the ARG_MAX's output and the ARG_MAX is skipped.
The resized tensor then has no memory at all (``get_tensor`` of it raises).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .ops.base import OpContext, Prepared, Run
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
    #: The tensor between reads as the output (the same values): it shares the output's memory.
    inner_reads_as_output: ClassVar[bool] = True

    def applies(self, ctx: OpContext) -> bool:
        """Whether the producer, as planned (``ctx``), is a float convolution run at every invoke:
        float32 input, weights and output, and an input not folded to a constant at plan time."""
        x, w = ctx.inputs[0], ctx.inputs[1] if len(ctx.inputs) > 1 else None
        return (x is not None and w is not None and x.data is None
                and x.type == w.type == ctx.outputs[0].type == TensorType.FLOAT32)

    def options(self, options):
        """The producer's options with the absorbed activation as its fused activation."""
        return dataclasses.replace(options, fused_activation_function=self.activation)

    def run(self, ctx: OpContext, prepared: Prepared) -> Run:
        """What the producer runs: its own run, given the activation through its options."""
        return prepared.run


@dataclass(frozen=True)
class ResizeArgMax:
    """A RESIZE_BILINEAR (operator ``producer``) that computes the ARG_MAX over channels
    (operator ``absorbed``) of its output, which it never writes (see the module docstring)."""

    producer: int
    absorbed: int
    inner: int  # the resized tensor, which no longer exists
    output: int  # the ARG_MAX's output, which the resize now writes
    inner_reads_as_output: ClassVar[bool] = False

    def applies(self, ctx: OpContext) -> bool:
        """Whether the resize, as planned (``ctx``), runs at every invoke on a float32 or uint8
        tensor of at most 256 channels (the kernel keeps the channel index in a uint8)."""
        x = ctx.inputs[0]
        return (x is not None and x.data is None and x.type in (TensorType.FLOAT32, TensorType.UINT8)
                and len(x.shape) == 4 and x.shape[3] <= 256)

    def options(self, options):
        """The resize's options, unchanged."""
        return options

    def run(self, ctx: OpContext, prepared: Prepared) -> Run:
        """The fused run: reads the resize's inputs, writes the ARG_MAX's output."""
        from .ops.resize import fused_resize_bilinear_arg_max

        return fused_resize_bilinear_arg_max(ctx)


def activation_fusions(graph: Subgraph) -> dict[int, Fusion]:
    """The fusions the graph allows, by producer operator index (see the module docstring).

    The types are checked again at plan time (:meth:`Fusion.applies`), after constant folding.
    """
    writer, readers = _readers(graph)
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


def _readers(graph: Subgraph) -> tuple[dict[int, object], dict[int, int]]:
    """The operator writing each tensor, and how many operators read it."""
    writer: dict[int, object] = {}
    readers: dict[int, int] = {}
    for op in graph.operators:
        for i in op.outputs:
            writer[i] = op
        for i in set(op.inputs):
            if i >= 0:
                readers[i] = readers.get(i, 0) + 1
    return writer, readers


def resize_arg_max_fusions(graph: Subgraph) -> dict[int, ResizeArgMax]:
    """RESIZE_BILINEAR -> ARG_MAX pairs the graph allows, by resize operator index: the resized
    tensor is read by the ARG_MAX alone and is not a graph output, and the ARG_MAX's axis is a
    constant naming the channels (3 or -1). The types are checked at plan time
    (:meth:`ResizeArgMax.applies`)."""
    writer, readers = _readers(graph)
    fusions = {}
    for op in graph.operators:
        if op.builtin != BuiltinOperator.ARG_MAX or len(op.inputs) != 2 or len(op.outputs) != 1:
            continue
        inner, axis = op.inputs
        producer = writer.get(inner)
        axis_value = graph.tensors[axis].data if axis >= 0 else None
        if (producer is None or producer.builtin != BuiltinOperator.RESIZE_BILINEAR or len(producer.outputs) != 1
                or readers.get(inner) != 1 or inner in graph.outputs or op.outputs[0] in graph.inputs
                or axis_value is None or axis_value.size != 1 or int(np.asarray(axis_value).reshape(-1)[0]) not in (3, -1)):
            continue
        fusions[producer.index] = ResizeArgMax(producer.index, op.index, inner, op.outputs[0])
    return fusions


def plan_fusions(graph: Subgraph) -> dict[int, Fusion | ResizeArgMax]:
    """Every fusion the graph allows, by producer operator index (a producer takes one at most)."""
    return {**activation_fusions(graph), **resize_arg_max_fusions(graph)}


__all__ = ["Fusion", "ResizeArgMax", "activation_fusions", "plan_fusions", "resize_arg_max_fusions"]
