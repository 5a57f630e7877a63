"""Plan-time fusions on the numba backend: operators that the operator next to them can do itself.

Activations (:func:`activation_fusions`): a standalone RELU, RELU6 or RELU_N1_TO_1 taken into the
convolution before it.

MediaPipe's graphs (13 of the selfie segmenter's 22 RELUs) follow a float CONV_2D or
DEPTHWISE_CONV_2D that has no fused activation with a separate RELU, where TFLite's
converter usually fuses the two. The convolution clamps its output anyway (to infinite
bounds, for no activation), so given the RELU's bounds it computes the RELU's output
and the RELU becomes a pass over memory for nothing (0.5 ms of the selfie segmenter's
8 ms): the interpreter then skips the RELU, and the convolution writes the RELU's
output tensor directly.

MobileNetV3's HARD_SWISH after a float CONV_2D (:class:`HardSwish`, six of the selfie segmenter's
eleven, the first after its 128x128 first conv) is applied by the conv's tile kernel to its sums
where the conv runs on one (the direct first conv and the 1x1 convs, ``kernels.direct_conv``);
elsewhere both run. The same sums and the same formula: the same bits (selfie segmenter
4.95 -> 4.81 ms, one thread, A/B in one process).

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
RELU; the chain's two; the conv's and the MUL's outputs) is read by the next operator alone and is not a graph output, and
the interpreter does not preserve its intermediate tensors (``experimental_preserve_all_tensors``,
which ``verify`` uses, runs the graph as written). The tensor between a conv and its RELU
then reads as the RELU's output, a chain's (and a folded batch norm's) inner tensors as zeros.

Batch norms (:func:`affine_fusions`): where the converter could not fold a batch norm into the
conv before it (TF Hub's COCO DeepLabs: the ten after their atrous chains), a float conv with no
activation is followed by a MUL and an ADD by per-channel constants (float32, or float16 behind
DEQUANTIZE). The conv takes them in: weights times the scale, bias ``b * scale + offset``, the
ADD's activation; the MUL and ADD are skipped (fp16 COCO DeepLab 98.3 -> 87.1 ms, 1 thread). The
products round differently (scale applied to each weight rather than to the sum): within the
float tolerance, 1.3e-5 on logits up to 20 there.

ASPP's image pooling (:func:`pooled_projections`): DeepLab v3 concatenates its ASPP branches along the
channels, one of them the image-level features (a 1x1 average, through a 1x1 conv, resized to the
feature map: the same vector at every pixel), and projects the concatenation with a 1x1 conv. The
pooled channels' share of that conv is then one product per invoke, ``W_pooled @ pooled``, added to
the bias; the conv sums the other branch's channels only, read from its own tensor, and neither the
resize nor the CONCATENATION runs (float32, one image, one branch that varies over pixels: the
MobileNetV2 DeepLabs. deeplabv3_257: 512 -> 256 channels at 33x33 becomes 256 -> 256, 20.4 -> 18.9 ms
min thread time; fp16 COCO DeepLab 86.1 -> 79.6 ms; one thread, A/B in one process). The
concatenation reads as zeros. The sums are the conv's in another order: within float tolerance
(1e-5 on logits up to 18 there).

A MUL whose product only an ADD reads (:func:`multiply_adds`: the selfie segmenter's
squeeze-and-excite scale, then its residual, three times) runs inside the ADD: one pass
``a * s + y`` (``kernels.elementwise.multiply_add_float``) where a, y and the output have one size
and s is one row or one value. The product is rounded before the sum, as the two operators do:
the same bits (selfie segmenter 3.81 -> 3.71 ms, one thread, A/B in one process).

A residual ADD after a 1x1 conv (:func:`conv_adds`: MobileNetV2's block output, ten in the float 257
DeepLab): ADD(conv output, other tensor of its shape), the conv's output read by the ADD alone, runs
as the conv, whose 1x1 tile adds the other tensor to each output as it stores it, then clamps to the
ADD's activation. The conv's output is rounded (and clamped) before the sum, as the two operators do:
the same bits; one pass over memory and one operator fewer (deeplabv3_257 15.59 -> 15.37 ms, fp16 COCO
DeepLab 61.6 -> 60.6 ms, one thread, A/B in one process). The conv's output tensor reads as zeros.

A squeeze-and-excite gate (:func:`squeeze_excites`: MediaPipe's selfie segmenter, ten of them): a
global float AVERAGE_POOL_2D, one or two 1x1 CONV_2Ds on its one pixel (each maybe with a RELU-family
operator after it that the conv takes in), then LOGISTIC, each tensor between read by the next alone.
They run as one step that reads the pool's input and calls the operators' own kernels in their order,
without their steps (``kernels.conv_plan.squeeze_excite_runner``): the same bits, no kernel to compile
(selfie segmenter 100 -> 71 steps, 3.96 -> 3.73 ms back to back, one thread, A/B in one process; 4.94 ->
4.88 ms with a 20 ms pause before each run). The tensors between read as zeros.

Resize + ARG_MAX (:func:`resize_arg_max_fusions`): a segmentation model's last two operators,
a RESIZE_BILINEAR of the logits to the image size, then ARG_MAX over the channels (every uint8
DeepLab here). One kernel (``kernels.resize.resize_bilinear_arg_max``) computes each pixel's
resized values and their argmax without writing the resized tensor (dm05: [1,513,513,21] uint8,
9.8 -> 2.5 ms of 38, one thread): the RESIZE_BILINEAR writes the ARG_MAX's output and the
ARG_MAX is skipped, under the same conditions. The resized tensor then has no memory at all
(``get_tensor`` of it raises).

Resize + DEQUANTIZE (:func:`resize_dequantize_fusions`): a float-I/O int8 DeepLab (TF Hub's) ends with
an int8 RESIZE_BILINEAR of the logits, then a per-tensor DEQUANTIZE to float32. The resize's integer
kernel stores each result dequantized (``kernels.resize.resize_bilinear_integer``, in float32 as
DEQUANTIZE's kernel: the same bits), into the DEQUANTIZE's output; the int8 tensor has no memory, as
above. Synthesized int8 257 DeepLab, [1,33,33,21] -> [1,257,257,21]: the two operators 1.60 -> 1.18 ms
on one thread, 1.19 -> 0.67 ms on two (per-operator minima; DEQUANTIZE ran on one thread); whole runs
with a 20 ms pause before each, 14.69 -> 14.36 ms and 11.80 -> 11.34 ms (A/B in one process).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .ops.base import OpContext, Prepared, Run
from .ops.padding import compute_padding_hw
from .quantization import activation_range_float
from .tflite.model import Operator, Subgraph
from .tflite.options import AddOptions
from .tflite.schema import Activation, BuiltinOperator, Padding, TensorType

_ACTIVATIONS = {
    BuiltinOperator.RELU: Activation.RELU,
    BuiltinOperator.RELU6: Activation.RELU6,
    BuiltinOperator.RELU_N1_TO_1: Activation.RELU_N1_TO_1,
}
_PRODUCERS = (BuiltinOperator.CONV_2D, BuiltinOperator.DEPTHWISE_CONV_2D)


def _float_convolution(ctx: OpContext) -> bool:
    """Whether a convolution, as planned (``ctx``), is a float one run at every invoke: float32
    input, weights and output, and an input not folded to a constant at plan time."""
    x, w = ctx.inputs[0], ctx.inputs[1] if len(ctx.inputs) > 1 else None
    return (x is not None and w is not None and x.data is None
            and x.type == w.type == ctx.outputs[0].type == TensorType.FLOAT32)


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
        """Whether the producer, as planned (``ctx``), is a float convolution run at every invoke."""
        return _float_convolution(ctx)

    def options(self, options):
        """The producer's options with the absorbed activation as its fused activation."""
        return dataclasses.replace(options, fused_activation_function=self.activation)

    def run(self, ctx: OpContext, prepared: Prepared) -> Run:
        """What the producer runs: its own run, given the activation through its options."""
        return prepared.run


@dataclass(frozen=True)
class HardSwish:
    """A float CONV_2D (operator ``producer``) that applies the HARD_SWISH after it (operator
    ``absorbed``) to its own sums, where its kernel can (the tiles of kernels.direct_conv)."""

    producer: int
    absorbed: int
    inner: int  # the conv's own output, which nothing writes any more
    output: int  # the HARD_SWISH's output, which the conv now writes
    #: As for a RELU taken in: the tensor between shares the output's memory.
    inner_reads_as_output: ClassVar[bool] = True

    def applies(self, ctx: OpContext) -> bool:
        """Whether the conv, as planned (``ctx``), is a float convolution run at every invoke, with no
        activation of its own."""
        return _float_convolution(ctx) and ctx.options.fused_activation_function == Activation.NONE

    def options(self, options):
        """The conv's options, unchanged."""
        return options

    def run(self, ctx: OpContext, prepared: Prepared) -> Run | None:
        """The conv's run with the HARD_SWISH applied, or None where its kernel cannot (then both run)."""
        from .ops.conv import fused_hard_swish_conv

        return fused_hard_swish_conv(ctx)


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


@dataclass(frozen=True)
class ResizeDequantize:
    """An int8 RESIZE_BILINEAR (operator ``producer``) that writes the float32 output of the DEQUANTIZE
    after it (operator ``absorbed``), never the int8 tensor between (see the module docstring)."""

    producer: int
    absorbed: int
    inner: int  # the resized int8 tensor, which no longer exists
    output: int  # the DEQUANTIZE's output, which the resize now writes
    zero_point: int  # the DEQUANTIZE's (its input's, per tensor)
    scale: float
    inner_reads_as_output: ClassVar[bool] = False

    def applies(self, ctx: OpContext) -> bool:
        """Whether the resize, as planned (``ctx``), runs at every invoke on an int8 tensor."""
        x = ctx.inputs[0]
        return x is not None and x.data is None and x.type == TensorType.INT8 and len(x.shape) == 4

    def options(self, options):
        """The resize's options, unchanged."""
        return options

    def run(self, ctx: OpContext, prepared: Prepared) -> Run | None:
        """The fused run (reads the resize's inputs, writes the DEQUANTIZE's output), or None where the
        resize is a copy (then both run)."""
        from .ops.resize import fused_resize_bilinear_dequantize

        return fused_resize_bilinear_dequantize(ctx, self.zero_point, self.scale)


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
        swish = op.builtin == BuiltinOperator.HARD_SWISH
        if (activation is None and not swish) or len(op.inputs) != 1 or len(op.outputs) != 1:
            continue
        inner = op.inputs[0]
        producer = writer.get(inner)
        if (producer is None or producer.builtin not in ((BuiltinOperator.CONV_2D,) if swish else _PRODUCERS)
                or len(producer.outputs) != 1
                or readers.get(inner) != 1 or inner in graph.outputs or op.outputs[0] in graph.inputs
                or graph.tensors[inner].type != TensorType.FLOAT32
                or getattr(producer.options, "fused_activation_function", None) != Activation.NONE):
            continue
        if swish:
            fusions[producer.index] = HardSwish(producer.index, op.index, inner, op.outputs[0])
        else:
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
        weights = tensors[self.conv.inputs[1]].data
        if weights is not None and weights.dtype.kind == "f" and not np.isfinite(weights).all():
            return None  # (the chain multiplies its zero padding by a NaN or infinity; a dilated conv skips it)
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
    paddings / crops, a VALID stride-1 undilated convolution whose filter has its input's type (not a
    hybrid one: that quantizes each of the block**2 sub-images with parameters of its own, which
    one dilated convolution over the whole input would not). The shapes are checked at plan time
    (:meth:`Atrous.as_conv`).
    """
    writer, readers = _writers_readers(graph)
    chains = {}
    for b2s in graph.operators:
        if b2s.builtin != BuiltinOperator.BATCH_TO_SPACE_ND or len(b2s.inputs) != 3 or len(b2s.outputs) != 1:
            continue
        conv = writer.get(b2s.inputs[0])
        if conv is None or conv.builtin not in _PRODUCERS or len(conv.outputs) != 1 or not conv.inputs:
            continue
        s2b = writer.get(conv.inputs[0])
        if s2b is None or s2b.builtin != BuiltinOperator.SPACE_TO_BATCH_ND or len(s2b.inputs) != 3:
            continue
        opts = conv.options
        chain = Atrous(s2b, conv, b2s)
        if (opts is None or opts.padding != Padding.VALID or (opts.stride_h, opts.stride_w) != (1, 1)
                or (opts.dilation_h_factor, opts.dilation_w_factor) != (1, 1)
                or len(conv.inputs) < 2 or graph.tensors[conv.inputs[1]].type != graph.tensors[conv.inputs[0]].type
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


def resize_arg_max_fusions(graph: Subgraph) -> dict[int, ResizeArgMax]:
    """RESIZE_BILINEAR -> ARG_MAX pairs the graph allows, by resize operator index: the resized
    tensor is read by the ARG_MAX alone and is not a graph output, and the ARG_MAX's axis is a
    constant naming the channels (3 or -1). The types are checked at plan time
    (:meth:`ResizeArgMax.applies`)."""
    writer, readers = _writers_readers(graph)
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


def resize_dequantize_fusions(graph: Subgraph) -> dict[int, ResizeDequantize]:
    """RESIZE_BILINEAR -> DEQUANTIZE pairs the graph allows, by resize operator index: the resized
    tensor is int8, quantized per tensor, read by the DEQUANTIZE alone and not a graph output, and the
    DEQUANTIZE writes float32. The resize's input is checked at plan time (:meth:`ResizeDequantize.applies`)."""
    writer, readers = _writers_readers(graph)
    fusions = {}
    for op in graph.operators:
        if op.builtin != BuiltinOperator.DEQUANTIZE or len(op.inputs) != 1 or len(op.outputs) != 1 or op.inputs[0] < 0:
            continue
        inner = op.inputs[0]
        producer, q = writer.get(inner), graph.tensors[inner].quantization
        if (producer is None or producer.builtin != BuiltinOperator.RESIZE_BILINEAR or len(producer.outputs) != 1
                or readers.get(inner) != 1 or inner in graph.outputs or op.outputs[0] in graph.inputs
                or graph.tensors[inner].type != TensorType.INT8 or graph.tensors[op.outputs[0]].type != TensorType.FLOAT32
                or q is None or q.scales.size != 1 or q.zero_points.size != 1):
            continue
        fusions[producer.index] = ResizeDequantize(producer.index, op.index, inner, op.outputs[0], q.zero_point, q.scale)
    return fusions


_CLAMPS = (Activation.NONE, Activation.RELU, Activation.RELU6, Activation.RELU_N1_TO_1)


@dataclass(frozen=True)
class Affine:
    """A float conv's output times a per-channel constant (MUL), plus a per-channel constant (ADD):
    a batch norm the converter left unfolded. The conv can apply it itself with its weights
    scaled and its bias ``b * scale + offset``, and the ADD's activation."""

    mul: Operator
    add: Operator
    scale: int  # the MUL's constant operand
    scale_values: np.ndarray  # its value (:func:`_float_constant`), and the ADD's constant operand's
    offset_values: np.ndarray

    @property
    def inner(self) -> tuple[int, int]:
        """The conv's and the MUL's outputs, which nothing writes when the conv does it all."""
        return tuple(i for i in self.mul.inputs if i != self.scale)[0], self.mul.outputs[0]

    def fold(self, conv: Operator, weights: np.ndarray | None, bias: np.ndarray | None):
        """(weights, bias, options) of the conv that computes the ADD's output, or None where the
        constants are not per output channel (or the conv's own weights and bias are not known)."""
        depthwise = conv.builtin == BuiltinOperator.DEPTHWISE_CONV_2D
        if weights is None or bias is None or weights.dtype != np.float32 or weights.ndim != 4:
            return None
        cout = weights.shape[3 if depthwise else 0]
        scale, offset = _per_channel(self.scale_values, cout), _per_channel(self.offset_values, cout)
        if scale is None or offset is None or bias.shape != (cout,):
            return None
        scaled = weights * (scale if depthwise else scale[:, None, None, None])
        options = dataclasses.replace(conv.options, fused_activation_function=self.add.options.fused_activation_function)
        return scaled.astype(np.float32), (bias * scale + offset).astype(np.float32), options


def _float_constant(graph: Subgraph, writer: dict[int, Operator], index: int) -> np.ndarray | None:
    """The value of float32 tensor ``index`` when it is known from the file alone: a constant, or a
    DEQUANTIZE of a float16 constant (exact); else None."""
    if graph.tensors[index].type != TensorType.FLOAT32:
        return None
    if graph.tensors[index].data is not None:
        return np.asarray(graph.tensors[index].data)
    source = writer.get(index)
    if source is None or source.builtin != BuiltinOperator.DEQUANTIZE:
        return None
    half = graph.tensors[source.inputs[0]]
    return None if half.data is None or half.type != TensorType.FLOAT16 else np.asarray(half.data, np.float32)


def _per_channel(values: np.ndarray, channels: int) -> np.ndarray | None:
    """``values`` as float32 [channels] when they hold one value per channel (along the last axis) or
    one for all, else None."""
    if values.size not in (1, channels) or any(d != 1 for d in values.shape[:-1]):
        return None
    return np.broadcast_to(values.reshape(-1).astype(np.float32), (channels,)).copy()


def affine_fusions(graph: Subgraph) -> dict[int, Affine]:
    """MUL -> ADD pairs a float conv may take in (:class:`Affine`), by the conv-side input of the MUL.

    Checked here: the MUL (no activation) reads the tensor and a constant, the ADD (no activation or a
    clamp) reads the MUL's output and a constant (float32, or float16 behind DEQUANTIZE: their values
    are read here, once), each inner tensor is read by the next operator alone
    and is not a graph output, all float32. The conv itself (no activation; its output this tensor,
    possibly as the end of an atrous chain) and the constants' shapes are checked at plan time.
    """
    writer, readers = _writers_readers(graph)
    found = {}
    for add in graph.operators:
        if add.builtin != BuiltinOperator.ADD or len(add.inputs) != 2 or len(add.outputs) != 1:
            continue
        mul = next((writer.get(i) for i in add.inputs if writer.get(i) is not None
                    and writer[i].builtin == BuiltinOperator.MUL), None)
        if mul is None or len(mul.inputs) != 2 or getattr(add.options, "fused_activation_function", None) not in _CLAMPS:
            continue
        m = mul.outputs[0]
        offset = add.inputs[1] if add.inputs[0] == m else add.inputs[0]
        values = {i: _float_constant(graph, writer, i) for i in (*mul.inputs, offset)}
        constant = [i for i in mul.inputs if values[i] is not None]
        if (len(constant) != 1 or offset == m or values[offset] is None
                or mul.options.fused_activation_function != Activation.NONE):
            continue
        affine = Affine(mul, add, constant[0], values[constant[0]], values[offset])
        t = affine.inner[0]
        if (any(readers.get(i) != 1 or i in graph.outputs for i in affine.inner)
                or any(graph.tensors[i].type != TensorType.FLOAT32 for i in (t, m, add.outputs[0]))):
            continue
        found[t] = affine
    return found


_RESIZES = (BuiltinOperator.RESIZE_BILINEAR, BuiltinOperator.RESIZE_NEAREST_NEIGHBOR)


@dataclass(frozen=True)
class PooledProjection:
    """A CONV_2D reading a channel CONCATENATION of parts some of which are resizes (ASPP's
    projection), to plan without the parts that are the same at every pixel (:meth:`plan`)."""

    concat: Operator
    sources: tuple[int | None, ...]  # per concatenated part: the input of the resize writing it, or None
    resizes: tuple[tuple[int, int], ...]  # (operator, output) of the resizes read by the concat alone

    def plan(self, ctx: OpContext, shapes: list[tuple[int, ...]], planned: dict[int, OpContext]):
        """(run, its inputs, operators no longer run, tensors no longer written) for the conv (as planned:
        ``ctx``, tensors at ``shapes``; ``planned``, the operators planned before it) when it is a float
        1x1 stride-1 conv of one image and every part
        but one is a resize of a 1x1 tensor (the image-pooling branch); else None.

        The run (:func:`pydeeplab.ops.conv.fused_pooled_projection`) reads the varying part and the 1x1
        tensors: the concatenation, and the resizes read by it alone, are no longer run."""
        from .ops.conv import fused_pooled_projection

        x, w = ctx.inputs[0], ctx.inputs[1] if len(ctx.inputs) > 1 else None
        if (ctx.opcode != BuiltinOperator.CONV_2D or w is None or w.data is None or len(w.shape) != 4
                or tuple(w.shape[1:3]) != (1, 1) or (ctx.options.stride_h, ctx.options.stride_w) != (1, 1)
                or not x.type == w.type == ctx.outputs[0].type == TensorType.FLOAT32 or x.shape[0] != 1):
            return None
        parts = self.concat.inputs
        pooled = [s is not None and tuple(shapes[s][:3]) == (1, 1, 1) for s in self.sources]
        if sum(pooled) != len(parts) - 1:
            return None
        starts = np.cumsum([0] + [shapes[p][3] for p in parts]).tolist()
        k = pooled.index(False)
        run = fused_pooled_projection(ctx, (starts[k], shapes[parts[k]][3]),
                                      [(starts[j], shapes[parts[j]][3]) for j in range(len(parts)) if pooled[j]])
        inputs = (parts[k], *(s for s, p in zip(self.sources, pooled) if p))
        resizes = [(op, t) for op, t in self.resizes if t != parts[k]]
        return (run, inputs, (self.concat.index, *(op for op, _ in resizes)),
                (self.concat.outputs[0], *(t for _, t in resizes)))


def pooled_projections(graph: Subgraph) -> dict[int, PooledProjection]:
    """CONV_2Ds reading a CONCATENATION along the channels (4-D, no activation) that nothing else reads
    and that is not a graph output, of parts at least one of which a resize writes (see
    :class:`PooledProjection`), by conv operator index. Shapes and types are checked at plan time."""
    writer, readers = _writers_readers(graph)
    found = {}
    for conv in graph.operators:
        if conv.builtin != BuiltinOperator.CONV_2D or len(conv.inputs) < 2:
            continue
        concat = writer.get(conv.inputs[0])
        if (concat is None or concat.builtin != BuiltinOperator.CONCATENATION or len(concat.inputs) < 2
                or len(graph.tensors[concat.outputs[0]].shape) != 4 or getattr(concat.options, "axis", None) not in (3, -1)
                or concat.options.fused_activation_function != Activation.NONE or min(concat.inputs) < 0
                or readers.get(concat.outputs[0]) != 1 or concat.outputs[0] in graph.outputs):
            continue
        resizes = [writer.get(p) if writer.get(p) is not None and writer[p].builtin in _RESIZES
                   and writer[p].inputs and writer[p].inputs[0] >= 0 else None for p in concat.inputs]
        if not any(resizes):
            continue
        alone = {(r.index, r.outputs[0]) for r in resizes
                 if r is not None and readers.get(r.outputs[0]) == 1 and r.outputs[0] not in graph.outputs}
        found[conv.index] = PooledProjection(concat, tuple(None if r is None else r.inputs[0] for r in resizes),
                                             tuple(sorted(alone)))
    return found


@dataclass(frozen=True)
class MultiplyAdd:
    """An ADD of a MUL's product and another tensor (a squeeze-and-excite scale, then the residual):
    planned as one pass over memory where the shapes allow (:meth:`plan`)."""

    mul: Operator
    other: int  # the ADD's other input

    def plan(self, ctx: OpContext, shapes: list[tuple[int, ...]], planned: dict[int, OpContext]):
        """(run, its inputs, operators no longer run, tensors no longer written) for the ADD (as planned:
        ``ctx``, tensors at ``shapes``; ``planned``, the operators planned before it), or None: see
        :func:`pydeeplab.ops.elementwise.fused_multiply_add`."""
        from .ops.elementwise import fused_multiply_add

        for a, s in (self.mul.inputs, self.mul.inputs[::-1]):
            run = fused_multiply_add(ctx, shapes[a], shapes[s], shapes[self.other])
            if run is not None:
                return run, (a, s, self.other), (self.mul.index,), (self.mul.outputs[0],)
        return None


def multiply_adds(graph: Subgraph) -> dict[int, MultiplyAdd]:
    """ADDs (no activation or a clamp) of a float MUL's product (no activation), which nothing else reads
    and which is not a graph output, and another tensor, by ADD operator index. The shapes are checked
    at plan time (:class:`MultiplyAdd`)."""
    writer, readers = _writers_readers(graph)
    found = {}
    for add in graph.operators:
        if (add.builtin != BuiltinOperator.ADD or len(add.inputs) != 2 or len(add.outputs) != 1
                or getattr(add.options, "fused_activation_function", None) not in _CLAMPS):
            continue
        for m, other in (add.inputs, add.inputs[::-1]):
            mul = writer.get(m)
            if (mul is not None and mul.builtin == BuiltinOperator.MUL and len(mul.inputs) == 2 and min(mul.inputs) >= 0
                    and len(mul.outputs) == 1 and other != m and readers.get(m) == 1 and m not in graph.outputs
                    and getattr(mul.options, "fused_activation_function", None) == Activation.NONE
                    and all(graph.tensors[i].type == TensorType.FLOAT32 for i in (*mul.inputs, m, other))):
                found[add.index] = MultiplyAdd(mul, other)
                break
    return found


@dataclass(frozen=True)
class ConvAdd:
    """An ADD of a float CONV_2D's output and another tensor of its shape (MobileNet's residual after a
    block's 1x1 projection): the conv's kernel adds it to each output as it stores it (:meth:`plan`)."""

    conv: Operator
    other: int  # the ADD's other input

    def plan(self, ctx: OpContext, shapes: list[tuple[int, ...]], planned: dict[int, OpContext]):
        """(run, its inputs, operators no longer run, tensors no longer written) for the ADD (as planned:
        ``ctx``, tensors at ``shapes``; ``planned``, the operators planned before it, the conv among
        them), or None where the shapes differ or the conv's kernel cannot add
        (:func:`pydeeplab.ops.conv.fused_conv_add`)."""
        from .ops.conv import fused_conv_add

        conv = planned.get(self.conv.index)
        inner = self.conv.outputs[0]
        if (conv is None or not _float_convolution(conv) or ctx.outputs[0].type != TensorType.FLOAT32
                or not shapes[inner] == shapes[self.other] == shapes[ctx.outputs[0].index]):
            return None
        run = fused_conv_add(conv, activation_range_float(ctx.options_as(AddOptions).fused_activation_function))
        return None if run is None else (run, (self.conv.inputs[0], self.other), (self.conv.index,), (inner,))


def conv_adds(graph: Subgraph, taken: set[int]) -> dict[int, ConvAdd]:
    """ADDs (no activation or a clamp) of a float CONV_2D's output, which nothing else reads and which is
    not a graph output, and another float tensor, by ADD operator index; not where the ADD or the conv
    is in ``taken`` (replanned otherwise) or the conv reads a variable (which could change before the
    ADD runs). Shapes at plan time (:class:`ConvAdd`)."""
    writer, readers = _writers_readers(graph)
    found = {}
    for add in graph.operators:
        if (add.builtin != BuiltinOperator.ADD or add.index in taken or len(add.inputs) != 2 or len(add.outputs) != 1
                or min(add.inputs) < 0 or add.inputs[0] == add.inputs[1]
                or getattr(add.options, "fused_activation_function", None) not in _CLAMPS):
            continue
        for c, other in (add.inputs, add.inputs[::-1]):
            conv = writer.get(c)
            if (conv is not None and conv.builtin == BuiltinOperator.CONV_2D and conv.index not in taken
                    and len(conv.outputs) == 1 and conv.inputs and conv.inputs[0] >= 0
                    and not graph.tensors[conv.inputs[0]].is_variable
                    and readers.get(c) == 1 and c not in graph.outputs
                    and all(graph.tensors[i].type == TensorType.FLOAT32 for i in (c, other, add.outputs[0]))):
                found[add.index] = ConvAdd(conv, other)
                break
    return found


@dataclass(frozen=True)
class SqueezeExcite:
    """A LOGISTIC after one or two 1x1 CONV_2Ds after a global AVERAGE_POOL_2D (the gate of a
    squeeze-and-excite block): planned as one step from the pool's input (:meth:`plan`)."""

    pool: Operator
    convs: tuple[Operator, ...]
    #: Per conv: the RELU-family operator after it, which its activation fusion takes in, or None.
    clamps: tuple[Operator | None, ...]

    def plan(self, ctx: OpContext, shapes: list[tuple[int, ...]], planned: dict[int, OpContext]):
        """(run, its inputs, operators no longer run, tensors no longer written) for the LOGISTIC (as
        planned: ``ctx``; tensors at ``shapes``; ``planned``, the operators planned before it), or None
        unless every operator is float32 on one image, the pool averages the whole map into one pixel,
        the convs are 1x1 with stride 1 and each clamp after a conv went into it as a :class:`Fusion`
        (the run: :func:`pydeeplab.ops.conv.fused_squeeze_excite`)."""
        from .ops.conv import fused_squeeze_excite

        pool = planned.get(self.pool.index)
        convs = [planned.get(op.index) for op in self.convs]
        if pool is None or None in convs or not ctx.inputs[0].type == ctx.outputs[0].type == TensorType.FLOAT32:
            return None
        x = pool.inputs[0]
        if (pool.opcode != BuiltinOperator.AVERAGE_POOL_2D or x.type != TensorType.FLOAT32 or x.data is not None
                or len(x.shape) != 4 or x.shape[0] != 1 or shapes[self.pool.outputs[0]] != (1, 1, 1, x.shape[3])
                or (pool.options.filter_height, pool.options.filter_width) != tuple(x.shape[1:3])):
            return None
        for conv, clamp in zip(convs, self.clamps):
            w = conv.inputs[1]
            if (not _float_convolution(conv) or w.data is None or tuple(w.shape[1:3]) != (1, 1)
                    or (conv.options.stride_h, conv.options.stride_w) != (1, 1)
                    or (clamp is not None and conv.options.fused_activation_function != _ACTIVATIONS[clamp.builtin])):
                return None
        run = fused_squeeze_excite(pool, convs)
        ops = [self.pool, *self.convs, *(c for c in self.clamps if c is not None)]
        return None if run is None else (run, (self.pool.inputs[0],), tuple(op.index for op in ops),
                                         tuple(op.outputs[0] for op in ops))


def squeeze_excites(graph: Subgraph, taken: set[int]) -> dict[int, SqueezeExcite]:
    """LOGISTICs whose input is written by one or two CONV_2Ds in a row (each maybe followed by a RELU,
    RELU6 or RELU_N1_TO_1) that an AVERAGE_POOL_2D feeds, each tensor between read by the next
    operator alone and not a graph output, by LOGISTIC operator index; not where an operator is in
    ``taken`` (replanned otherwise) or the pool reads a variable. Types and shapes are checked at plan
    time (:class:`SqueezeExcite`)."""
    writer, readers = _writers_readers(graph)
    found = {}
    for op in graph.operators:
        if op.builtin != BuiltinOperator.LOGISTIC or op.index in taken or len(op.inputs) != 1 or op.inputs[0] < 0:
            continue
        convs: list[Operator] = []
        clamps: list[Operator | None] = []
        clamp = None
        tensor = op.inputs[0]
        while True:
            source = writer.get(tensor)
            if (source is None or source.index in taken or readers.get(tensor) != 1 or tensor in graph.outputs
                    or len(source.outputs) != 1 or not source.inputs or source.inputs[0] < 0):
                break
            if source.builtin in _ACTIVATIONS and clamp is None and len(source.inputs) == 1:
                clamp, tensor = source, source.inputs[0]
                continue
            if source.builtin == BuiltinOperator.CONV_2D and len(convs) < 2 and len(source.inputs) >= 2:
                convs.insert(0, source)
                clamps.insert(0, clamp)
                clamp, tensor = None, source.inputs[0]
                continue
            if (source.builtin == BuiltinOperator.AVERAGE_POOL_2D and convs and clamp is None
                    and not graph.tensors[source.inputs[0]].is_variable):
                found[op.index] = SqueezeExcite(source, tuple(convs), tuple(clamps))
            break
    return found


def plan_fusions(graph: Subgraph) -> dict[int, Fusion | HardSwish | ResizeArgMax | ResizeDequantize]:
    """Every fusion the graph allows, by producer operator index (a producer takes one at most)."""
    return {**activation_fusions(graph), **resize_arg_max_fusions(graph), **resize_dequantize_fusions(graph)}


__all__ = ["Affine", "Atrous", "ConvAdd", "Fusion", "HardSwish", "MultiplyAdd", "PooledProjection", "ResizeArgMax",
           "ResizeDequantize", "SqueezeExcite", "activation_fusions", "affine_fusions", "atrous_chains", "conv_adds",
           "multiply_adds", "plan_fusions", "pooled_projections", "resize_arg_max_fusions", "resize_dequantize_fusions",
           "squeeze_excites"]
