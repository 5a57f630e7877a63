"""Plan-time fusions on the numba backend: operators that the convolution next to them can do itself.

Activations (:func:`activation_fusions`): a standalone RELU, RELU6 or RELU_N1_TO_1 taken into the
convolution before it.

MediaPipe's graphs (13 of the selfie segmenter's 22 RELUs) follow a float CONV_2D or
DEPTHWISE_CONV_2D that has no fused activation with a separate RELU, where TFLite's
converter usually fuses the two. The convolution clamps its output anyway (to infinite
bounds, for no activation), so given the RELU's bounds it computes the RELU's output
and the RELU becomes a pass over memory for nothing (0.5 ms of the selfie segmenter's
8 ms): the interpreter then skips the RELU, and the convolution writes the RELU's
output tensor directly.

Atrous convolutions (:func:`atrous_chains`): TensorFlow's converter writes a dilated
convolution or depthwise convolution (float or quantized) as SPACE_TO_BATCH_ND, a VALID one on
the ``block**2`` sub-images, and BATCH_TO_SPACE_ND (TF Hub's mobilenetv2-dm05-coco DeepLab has
ten such chains: run as ten convolutions, its invoke went from 101 to 91 ms, 1 thread). The chain computes the dilated
convolution itself, the same sums in the same order: output pixel Y of
BATCH_TO_SPACE_ND is sub-image pixel ``(Y + crop) // d``, which sums
``w[u] * x[Y + crop - pad + u * d]`` with zeros outside x (8-bit: the zero point, which the
quantized sum skips as it skips taps outside the input), so it runs as one
convolution with dilation d that reads x and writes the chain's output, where the
graph's numbers make it a SAME or VALID one.

Only where nothing can tell the difference: each tensor inside (between the conv and the
RELU; the chain's two) is read by the next operator alone and is not a graph output, and
the interpreter does not preserve its intermediate tensors (``experimental_preserve_all_tensors``,
which ``verify`` uses, runs the graph as written). The tensor between a conv and its RELU
then reads as the RELU's output, a chain's inner tensors as zeros.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .ops.base import OpContext
from .ops.padding import compute_padding_hw
from .tflite.model import Operator, Subgraph
from .tflite.schema import Activation, BuiltinOperator, Padding, TensorType

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


def _writers_readers(graph: Subgraph) -> tuple[dict[int, Operator], dict[int, int]]:
    """The operator writing each tensor, and how many operators read each."""
    writer: dict[int, Operator] = {}
    readers: dict[int, int] = {}
    for op in graph.operators:
        for i in op.outputs:
            writer[i] = op
        for i in set(op.inputs):
            if i >= 0:
                readers[i] = readers.get(i, 0) + 1
    return writer, readers


def activation_fusions(graph: Subgraph) -> dict[int, Fusion]:
    """The fusions the graph allows, by producer operator index (see the module docstring).

    The types are checked again at plan time (:meth:`Fusion.applies`), after constant folding.
    """
    writer, readers = _writers_readers(graph)
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


@dataclass(frozen=True)
class Atrous:
    """SPACE_TO_BATCH_ND -> CONV_2D or DEPTHWISE_CONV_2D -> BATCH_TO_SPACE_ND, to run as one dilated convolution."""

    space_to_batch: Operator
    conv: Operator
    batch_to_space: Operator

    @property
    def inner(self) -> tuple[int, int]:
        """The two tensors inside the chain, which nothing writes when it runs as one convolution."""
        return self.space_to_batch.outputs[0], self.conv.outputs[0]

    def as_conv(self, graph: Subgraph, x_shape: tuple[int, ...]) -> tuple[Operator, dict[int, tuple]] | None:
        """The chain as one convolution reading the chain's input (shape ``x_shape``) and writing
        its output, with the shapes of the inner tensors; None where the input's shape makes the
        chain something else than a SAME or VALID dilated convolution (or invalid: then the
        operators run as written and report it)."""
        tensors = graph.tensors
        block = tensors[self.space_to_batch.inputs[1]].data.astype(np.int64).tolist()
        pads = tensors[self.space_to_batch.inputs[2]].data.astype(np.int64).tolist()
        crops = tensors[self.batch_to_space.inputs[2]].data.astype(np.int64).tolist()
        filter_shape = tensors[self.conv.inputs[1]].shape
        if len(x_shape) != 4 or len(filter_shape) != 4:
            return None
        n = x_shape[0]
        channels = filter_shape[3 if self.conv.builtin == BuiltinOperator.DEPTHWISE_CONV_2D else 0]
        before, size, sub = [], [], []
        for axis in range(2):
            padded = x_shape[1 + axis] + pads[axis][0] + pads[axis][1]
            k = filter_shape[1 + axis]
            if padded % block[axis] or padded // block[axis] < k:
                return None
            sub.append(padded // block[axis])
            before.append(pads[axis][0] - crops[axis][0])
            size.append((sub[axis] - k + 1) * block[axis] - crops[axis][0] - crops[axis][1])
        if min(size) < 1:
            return None
        for padding in (Padding.SAME, Padding.VALID):
            hw = compute_padding_hw(padding, x_shape[1:3], filter_shape[1:3], (1, 1), tuple(block))
            if [p.before for p in hw] == before and [p.out for p in hw] == size:
                options = dataclasses.replace(self.conv.options, padding=padding, dilation_h_factor=block[0],
                                              dilation_w_factor=block[1])
                conv = dataclasses.replace(self.conv, inputs=(self.space_to_batch.inputs[0],) + self.conv.inputs[1:],
                                           outputs=self.batch_to_space.outputs, options=options)
                batch = n * block[0] * block[1]
                shapes = {self.inner[0]: (batch, sub[0], sub[1], x_shape[3]),
                          self.inner[1]: (batch, sub[0] - filter_shape[1] + 1, sub[1] - filter_shape[2] + 1, channels)}
                return conv, shapes
        return None


def _constant(graph: Subgraph, index: int, shape: tuple[int, ...]) -> bool:
    t = graph.tensors[index] if 0 <= index < len(graph.tensors) else None
    return (t is not None and t.data is not None and t.type in (TensorType.INT32, TensorType.INT64)
            and tuple(t.data.shape) == shape and int(t.data.min()) >= 0)


def _same_numbers(graph: Subgraph, a: int, b: int) -> bool:
    """Whether tensors a and b are float32, or 8-bit with the same quantization (as SPACE_TO_BATCH_ND
    and BATCH_TO_SPACE_ND require of their input and output: they move values, never rescale)."""
    ta, tb = graph.tensors[a], graph.tensors[b]
    if ta.type != tb.type or ta.type not in (TensorType.FLOAT32, TensorType.UINT8, TensorType.INT8):
        return False
    if ta.type == TensorType.FLOAT32:
        return True
    qa, qb = ta.quantization, tb.quantization
    return (qa is not None and qb is not None and np.array_equal(qa.scales, qb.scales)
            and np.array_equal(qa.zero_points, qb.zero_points))


def atrous_chains(graph: Subgraph) -> dict[int, Atrous]:
    """The atrous chains of the graph (see the module docstring), by SPACE_TO_BATCH_ND operator index.

    Checked here: the operators and their links (each inner tensor read by the next operator
    alone, not a graph output), float32 tensors or 8-bit ones whose quantization the chain's moves
    keep (SPACE_TO_BATCH_ND pads with the zero point, which the convolution's sum ignores as it
    ignores the taps outside its input), constant block shapes (the same in both) and
    paddings / crops, a VALID stride-1 undilated convolution. The shapes are checked at plan time
    (:meth:`Atrous.as_conv`).
    """
    writer, readers = _writers_readers(graph)
    chains = {}
    for b2s in graph.operators:
        if b2s.builtin != BuiltinOperator.BATCH_TO_SPACE_ND or len(b2s.inputs) != 3 or len(b2s.outputs) != 1:
            continue
        conv = writer.get(b2s.inputs[0])
        if conv is None or conv.builtin not in _PRODUCERS or len(conv.outputs) != 1:
            continue
        s2b = writer.get(conv.inputs[0])
        if s2b is None or s2b.builtin != BuiltinOperator.SPACE_TO_BATCH_ND or len(s2b.inputs) != 3:
            continue
        opts = conv.options
        chain = Atrous(s2b, conv, b2s)
        if (opts is None or opts.padding != Padding.VALID or (opts.stride_h, opts.stride_w) != (1, 1)
                or (opts.dilation_h_factor, opts.dilation_w_factor) != (1, 1)
                or any(readers.get(i) != 1 or i in graph.outputs for i in chain.inner)
                or not _same_numbers(graph, s2b.inputs[0], chain.inner[0])
                or not _same_numbers(graph, chain.inner[1], b2s.outputs[0])
                or not all(_constant(graph, op.inputs[1], (2,)) and _constant(graph, op.inputs[2], (2, 2))
                           for op in (s2b, b2s))
                or not np.array_equal(graph.tensors[s2b.inputs[1]].data, graph.tensors[b2s.inputs[1]].data)
                or min(graph.tensors[s2b.inputs[1]].data) < 1):
            continue
        chains[s2b.index] = chain
    return chains


__all__ = ["Atrous", "Fusion", "activation_fusions", "atrous_chains"]
