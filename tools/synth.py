"""Synthesized DeepLab v1, v2, v3 and v3+ models: small, seeded, in float32 and uint8.

Each builder returns the bytes of a .tflite model written with
:class:`pydeeplab.tflite.writer.ModelBuilder`, laid out as the TF1 converter lays out
the real DeepLab models (batch norm folded into the convolutions, NHWC, bilinear
resizes with ``align_corners=True``, a uint8 model ending in ARG_MAX)::

    deeplab_v1(encoding="dilated" | "space_to_batch", dtype="float32" | "uint8", seed=0)
    deeplab_v2(dtype=..., seed=0)
    deeplab_v3(pooling="mean" | "avgpool", dtype=..., seed=0)
    deeplab_v3plus(pooling="avgpool", dtype=..., seed=0)

The networks are tiny (3 input channels, 8 to 24 feature channels, 65x65 to 129x129
inputs) but have the structure of the papers: see docs/deeplab.md.

uint8 models are the float model quantized the way the TF1 converter did it from a
trained model's ranges: the float model is run by LiteRT on a few calibration images
(``experimental_preserve_all_tensors``) to get every activation's min/max; then each
activation tensor gets per-tensor asymmetric uint8 parameters covering its range,
weights get per-tensor asymmetric uint8 parameters covering theirs, biases are int32
with scale ``s_in * s_w``, operators that cannot rescale (pooling, resizing,
space/batch reshuffles) keep their input's parameters, and the inputs of a
concatenation whose parameters differ from its output's are requantized by a
QUANTIZE operator, as in the real quantized DeepLab models.

Command line: ``python tools/synth.py v3 --dtype uint8 --out v3.tflite`` (``--list``
for the names).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pydeeplab.tflite.model import Quantization
from pydeeplab.tflite.options import (
    AddOptions, ArgMaxOptions, ConcatenationOptions, Conv2DOptions, DepthwiseConv2DOptions,
    EmptyOptions, Pool2DOptions, ReducerOptions, ResizeBilinearOptions)
from pydeeplab.tflite.schema import Activation, BuiltinOperator, Padding, TensorType
from pydeeplab.tflite.writer import ModelBuilder

#: Input quantization of the uint8 models (the real quantized DeepLab models': raw RGB bytes).
INPUT_SCALE, INPUT_ZERO_POINT = 1 / 128, 128
NUM_CLASSES = 6
#: Calibration images for the uint8 models (seeded; different from the test images).
CALIBRATION_SEEDS = (1001, 1002, 1003, 1004)


# ---------------------------------------------------------------------------------------
# A float network description
# ---------------------------------------------------------------------------------------

@dataclass
class Node:
    """One operator of the network and the tensor it produces (named like the node).

    ``kind``: input, conv, depthwise, space_to_batch, batch_to_space, add, concat, mean,
    avgpool, resize, argmax. ``attrs`` holds options and float weights.
    """

    name: str
    kind: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    attrs: dict = field(default_factory=dict)


class Net:
    """Builds a DeepLab-style float network node by node; :meth:`tflite` writes it.

    Weights are drawn from ``seed``: He-normal for convolutions (so activations keep
    their scale through ReLUs) and small normal biases, i.e. batch norm already folded.
    ``atrous`` chooses how a dilated convolution is written: "dilated" (the dilation
    options of CONV_2D / DEPTHWISE_CONV_2D) or "space_to_batch" (SPACE_TO_BATCH_ND ->
    VALID conv -> BATCH_TO_SPACE_ND, as TF1 graphs encoded ``atrous_conv2d``).
    """

    def __init__(self, name: str, input_size: int, seed: int = 0, atrous: str = "dilated"):
        if atrous not in ("dilated", "space_to_batch"):
            raise ValueError(f"atrous must be 'dilated' or 'space_to_batch', not {atrous!r}")
        self.name = name
        self.atrous = atrous
        self.rng = np.random.default_rng(seed)
        self.nodes: dict[str, Node] = {}
        self.outputs: list[str] = []
        self.add_node(Node("input", "input", (), (1, input_size, input_size, 3)))

    # -- plumbing -------------------------------------------------------------------

    def add_node(self, node: Node) -> str:
        if node.name in self.nodes:
            raise ValueError(f"duplicate node name {node.name!r}")
        self.nodes[node.name] = node
        return node.name

    def shape(self, x: str) -> tuple[int, ...]:
        return self.nodes[x].shape

    # -- layers ---------------------------------------------------------------------

    def conv(self, x: str, cout: int, k: int, name: str, stride: int = 1, rate: int = 1,
             act: str = "RELU6", padding: str = "SAME") -> str:
        """A k x k convolution with folded batch norm; atrous when ``rate`` > 1."""
        n, h, w, cin = self.shape(x)
        weights = (self.rng.standard_normal((cout, k, k, cin)) * math.sqrt(2.0 / (k * k * cin)))
        bias = self.rng.standard_normal(cout) * 0.1
        return self._conv_like("conv", x, name, weights.astype(np.float32), bias.astype(np.float32),
                               stride, rate, act, padding, cout)

    def depthwise(self, x: str, k: int, name: str, stride: int = 1, rate: int = 1, act: str = "RELU6") -> str:
        """A k x k depthwise convolution (depth multiplier 1); atrous when ``rate`` > 1."""
        c = self.shape(x)[3]
        weights = self.rng.standard_normal((1, k, k, c)) * math.sqrt(2.0 / (k * k))
        bias = self.rng.standard_normal(c) * 0.1
        return self._conv_like("depthwise", x, name, weights.astype(np.float32), bias.astype(np.float32),
                               stride, rate, act, "SAME", c)

    def _conv_like(self, kind, x, name, weights, bias, stride, rate, act, padding, cout) -> str:
        n, h, w, _ = self.shape(x)
        k = weights.shape[1]
        if rate > 1 and self.atrous == "space_to_batch":
            if stride != 1 or padding != "SAME":
                raise ValueError("the space-to-batch encoding is for stride-1 SAME atrous convolutions")
            return self._space_to_batch_conv(kind, x, name, weights, bias, rate, act, cout)
        eff = (k - 1) * rate + 1
        oh = -(-h // stride) if padding == "SAME" else (h - eff) // stride + 1
        ow = -(-w // stride) if padding == "SAME" else (w - eff) // stride + 1
        return self.add_node(Node(name, kind, (x,), (n, oh, ow, cout),
                                  dict(weights=weights, bias=bias, stride=stride, rate=rate, act=act,
                                       padding=padding)))

    def _space_to_batch_conv(self, kind, x, name, weights, bias, rate, act, cout) -> str:
        """``atrous_conv2d`` as TF1 wrote it: the dilated SAME convolution becomes an ordinary
        VALID convolution on ``rate*rate`` subsampled copies of the zero-padded input."""
        n, h, w, _ = self.shape(x)
        k = weights.shape[1]
        # SAME padding of the dilated kernel, then extra at the end so that the padded size
        # divides by the rate; the extra is cropped off again after the convolution.
        pad_total = (k - 1) * rate
        start, end = pad_total // 2, pad_total - pad_total // 2
        extra_h, extra_w = (-(h + pad_total)) % rate, (-(w + pad_total)) % rate
        paddings = np.array([[start, end + extra_h], [start, end + extra_w]], np.int32)
        crops = np.array([[0, extra_h], [0, extra_w]], np.int32)
        bh, bw = (h + pad_total + extra_h) // rate, (w + pad_total + extra_w) // rate
        s2b = self.add_node(Node(f"{name}/SpaceToBatchND", "space_to_batch", (x,),
                                 (n * rate * rate, bh, bw, self.shape(x)[3]),
                                 dict(block=np.array([rate, rate], np.int32), paddings=paddings)))
        conv = self.add_node(Node(name, kind, (s2b,), (n * rate * rate, bh - k + 1, bw - k + 1, cout),
                                  dict(weights=weights, bias=bias, stride=1, rate=1, act=act, padding="VALID")))
        return self.add_node(Node(f"{name}/BatchToSpaceND", "batch_to_space", (conv,), (n, h, w, cout),
                                  dict(block=np.array([rate, rate], np.int32), crops=crops)))

    def add(self, a: str, b: str, name: str) -> str:
        return self.add_node(Node(name, "add", (a, b), self.shape(a)))

    def concat(self, xs: list[str], name: str) -> str:
        n, h, w, _ = self.shape(xs[0])
        return self.add_node(Node(name, "concat", tuple(xs), (n, h, w, sum(self.shape(x)[3] for x in xs))))

    def image_pool(self, x: str, name: str, how: str) -> str:
        """Global average over the feature map: MEAN over H, W (keep_dims) or a whole-map AVERAGE_POOL_2D."""
        n, _, _, c = self.shape(x)
        if how not in ("mean", "avgpool"):
            raise ValueError(f"image pooling is 'mean' or 'avgpool', not {how!r}")
        return self.add_node(Node(name, how, (x,), (n, 1, 1, c)))

    def resize(self, x: str, size: tuple[int, int], name: str) -> str:
        n, _, _, c = self.shape(x)
        return self.add_node(Node(name, "resize", (x,), (n, size[0], size[1], c)))

    def argmax(self, x: str, name: str = "ArgMax") -> str:
        return self.add_node(Node(name, "argmax", (x,), self.shape(x)[:3]))

    # -- writing ----------------------------------------------------------------------

    def tflite(self, dtype: str = "float32", ranges: dict[str, tuple[float, float]] | None = None) -> bytes:
        """The model as .tflite bytes; uint8 needs ``ranges`` (activation name -> (min, max))."""
        if dtype == "float32":
            return _Writer(self, None).write()
        if dtype != "uint8":
            raise ValueError(f"dtype must be 'float32' or 'uint8', not {dtype!r}")
        if ranges is None:
            raise ValueError("a uint8 model needs calibrated ranges (see calibrate())")
        return _Writer(self, ranges).write()


# ---------------------------------------------------------------------------------------
# Quantization (TF1 converter style, per tensor)
# ---------------------------------------------------------------------------------------

def uint8_params(lo: float, hi: float) -> Quantization:
    """Asymmetric uint8 parameters whose grid covers [lo, hi] and represents 0 exactly."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = float(np.float32((hi - lo) / 255.0))
    zero_point = int(np.clip(round(-lo / scale), 0, 255))
    return Quantization(scales=np.array([scale], np.float32), zero_points=np.array([zero_point], np.int64))


def quantize_uint8(x: np.ndarray, q: Quantization) -> np.ndarray:
    return np.clip(np.round(x / q.scales[0]) + q.zero_points[0], 0, 255).astype(np.uint8)


#: Nodes whose uint8 output keeps the input's parameters (TFLite's kernels do not rescale).
_PASSTHROUGH = {"space_to_batch", "batch_to_space", "avgpool", "resize"}


class _Writer:
    """Writes a :class:`Net` as float32 or (with ranges) uint8 TFLite."""

    def __init__(self, net: Net, ranges: dict[str, tuple[float, float]] | None):
        self.net = net
        self.ranges = ranges
        self.quantized = ranges is not None
        self.b = ModelBuilder(description=f"pydeeplab synthesized {net.name} "
                                          f"({'uint8' if self.quantized else 'float32'})")
        self.tensor: dict[str, int] = {}
        self.qparams: dict[str, Quantization] = {}

    def act_type(self) -> TensorType:
        return TensorType.UINT8 if self.quantized else TensorType.FLOAT32

    def new_tensor(self, name: str, shape, q: Quantization | None, type_: TensorType | None = None) -> int:
        if q is not None:
            self.qparams[name] = q
        self.tensor[name] = self.b.add_tensor(name, type_ or self.act_type(), shape, q)
        return self.tensor[name]

    def out_params(self, node: Node) -> Quantization | None:
        if not self.quantized:
            return None
        if node.kind in _PASSTHROUGH:
            return self.qparams[node.inputs[0]]
        lo, hi = self.ranges[node.name]
        return uint8_params(lo, hi)

    def write(self) -> bytes:
        net, b = self.net, self.b
        for node in net.nodes.values():
            getattr(self, f"_{node.kind}")(node)
        outs = list(net.outputs)
        b.set_inputs([self.tensor["input"]])
        b.set_outputs([self.tensor[o] for o in outs])
        return b.finish()

    def _input(self, node: Node) -> None:
        q = None
        if self.quantized:
            q = Quantization(scales=np.array([INPUT_SCALE], np.float32),
                             zero_points=np.array([INPUT_ZERO_POINT], np.int64))
        self.new_tensor(node.name, node.shape, q)

    def _weights(self, node: Node) -> tuple[int, int]:
        a = node.attrs
        if not self.quantized:
            return (self.b.add_constant(f"{node.name}/weights", a["weights"]),
                    self.b.add_constant(f"{node.name}/bias", a["bias"]))
        wq = uint8_params(a["weights"].min(), a["weights"].max())
        w = self.b.add_constant(f"{node.name}/weights", quantize_uint8(a["weights"], wq), wq)
        # The bias scale is the product of two float32 scales, as TFLite checks it.
        s_in = self.qparams[node.inputs[0]].scales[0]
        bias_scale = np.float32(s_in) * np.float32(wq.scales[0])
        bq = Quantization(scales=np.array([bias_scale], np.float32), zero_points=np.array([0], np.int64))
        bias = np.round(a["bias"].astype(np.float64) / float(bias_scale)).astype(np.int32)
        return w, self.b.add_constant(f"{node.name}/bias", bias, bq)

    def _conv(self, node: Node) -> None:
        a = node.attrs
        w, bias = self._weights(node)
        y = self.new_tensor(node.name, node.shape, self.out_params(node))
        opts = Conv2DOptions(padding=Padding[a["padding"]], stride_w=a["stride"], stride_h=a["stride"],
                             fused_activation_function=Activation[a["act"]],
                             dilation_w_factor=a["rate"], dilation_h_factor=a["rate"])
        self.b.add_operator(BuiltinOperator.CONV_2D, [self.tensor[node.inputs[0]], w, bias], [y], opts)

    def _depthwise(self, node: Node) -> None:
        a = node.attrs
        w, bias = self._weights(node)
        y = self.new_tensor(node.name, node.shape, self.out_params(node))
        opts = DepthwiseConv2DOptions(padding=Padding[a["padding"]], stride_w=a["stride"], stride_h=a["stride"],
                                      depth_multiplier=1, fused_activation_function=Activation[a["act"]],
                                      dilation_w_factor=a["rate"], dilation_h_factor=a["rate"])
        self.b.add_operator(BuiltinOperator.DEPTHWISE_CONV_2D, [self.tensor[node.inputs[0]], w, bias], [y], opts)

    def _space_to_batch(self, node: Node) -> None:
        block = self.b.add_constant(f"{node.name}/block_shape", node.attrs["block"])
        pads = self.b.add_constant(f"{node.name}/paddings", node.attrs["paddings"])
        y = self.new_tensor(node.name, node.shape, self.out_params(node))
        self.b.add_operator(BuiltinOperator.SPACE_TO_BATCH_ND, [self.tensor[node.inputs[0]], block, pads], [y],
                            EmptyOptions())

    def _batch_to_space(self, node: Node) -> None:
        block = self.b.add_constant(f"{node.name}/block_shape", node.attrs["block"])
        crops = self.b.add_constant(f"{node.name}/crops", node.attrs["crops"])
        y = self.new_tensor(node.name, node.shape, self.out_params(node))
        self.b.add_operator(BuiltinOperator.BATCH_TO_SPACE_ND, [self.tensor[node.inputs[0]], block, crops], [y],
                            EmptyOptions())

    def _add(self, node: Node) -> None:
        y = self.new_tensor(node.name, node.shape, self.out_params(node))
        self.b.add_operator(BuiltinOperator.ADD, [self.tensor[i] for i in node.inputs], [y], AddOptions())

    def _concat(self, node: Node) -> None:
        q = None
        if self.quantized:  # the output covers every input's range
            lo = min(min(self.ranges[i][0], 0.0) for i in node.inputs)
            hi = max(max(self.ranges[i][1], 0.0) for i in node.inputs)
            q = uint8_params(lo, hi)
        ins = []
        for i in node.inputs:
            if q is not None and (self.qparams[i].scales[0] != q.scales[0]
                                  or self.qparams[i].zero_points[0] != q.zero_points[0]):
                # Requantize to the output's parameters first (a uint8 -> uint8 QUANTIZE).
                rq = self.new_tensor(f"{i}/requantized", self.net.shape(i), q)
                self.b.add_operator(BuiltinOperator.QUANTIZE, [self.tensor[i]], [rq])
                ins.append(rq)
            else:
                ins.append(self.tensor[i])
        y = self.new_tensor(node.name, node.shape, q)
        self.b.add_operator(BuiltinOperator.CONCATENATION, ins, [y], ConcatenationOptions(axis=3))

    def _mean(self, node: Node) -> None:
        axes = self.b.add_constant(f"{node.name}/reduction_indices", np.array([1, 2], np.int32))
        y = self.new_tensor(node.name, node.shape, self.out_params(node))
        self.b.add_operator(BuiltinOperator.MEAN, [self.tensor[node.inputs[0]], axes], [y],
                            ReducerOptions(keep_dims=True))

    def _avgpool(self, node: Node) -> None:
        _, h, w, _ = self.net.shape(node.inputs[0])
        y = self.new_tensor(node.name, node.shape, self.out_params(node))
        opts = Pool2DOptions(padding=Padding.VALID, stride_w=w, stride_h=h, filter_width=w, filter_height=h)
        self.b.add_operator(BuiltinOperator.AVERAGE_POOL_2D, [self.tensor[node.inputs[0]]], [y], opts)

    def _resize(self, node: Node) -> None:
        size = self.b.add_constant(f"{node.name}/size", np.array(node.shape[1:3], np.int32))
        y = self.new_tensor(node.name, node.shape, self.out_params(node))
        self.b.add_operator(BuiltinOperator.RESIZE_BILINEAR, [self.tensor[node.inputs[0]], size], [y],
                            ResizeBilinearOptions(align_corners=True))

    def _argmax(self, node: Node) -> None:
        axis = self.b.add_constant(f"{node.name}/dimension", np.array([3], np.int32))
        y = self.new_tensor(node.name, node.shape, None, TensorType.INT64)
        self.b.add_operator(BuiltinOperator.ARG_MAX, [self.tensor[node.inputs[0]], axis], [y],
                            ArgMaxOptions(output_type=TensorType.INT64))


# ---------------------------------------------------------------------------------------
# Calibration and inputs
# ---------------------------------------------------------------------------------------

def random_image(size: int, seed: int) -> np.ndarray:
    """A smooth random RGB image as uint8 [1, size, size, 3]: a few soft colored blobs on a
    gradient, so that segmentations have regions rather than pixel noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    img = np.zeros((size, size, 3))
    img += rng.uniform(0, 1, 3) * xx[..., None] + rng.uniform(0, 1, 3) * yy[..., None]
    for _ in range(5):
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.08, 0.3)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        img += blob[..., None] * rng.uniform(-1, 1, 3)
    img -= img.min()
    img /= max(img.max(), 1e-6)
    img += rng.normal(0, 0.02, img.shape)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)[None]


def float_input(image_u8: np.ndarray) -> np.ndarray:
    """The float model's input for a uint8 image: exactly the real value the uint8 model sees."""
    return ((image_u8.astype(np.float32) - INPUT_ZERO_POINT) * np.float32(INPUT_SCALE)).astype(np.float32)


def calibrate(net: Net, seeds=CALIBRATION_SEEDS) -> dict[str, tuple[float, float]]:
    """Per-tensor (min, max) of every activation of the float model, over the calibration images."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    model = net.tflite("float32")
    interp = Interpreter(model_content=model, num_threads=1, experimental_preserve_all_tensors=True,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    by_name = {d["name"]: d["index"] for d in interp.get_tensor_details()}
    ranges: dict[str, tuple[float, float]] = {}
    size = net.shape("input")[1]
    for seed in seeds:
        interp.set_tensor(interp.get_input_details()[0]["index"], float_input(random_image(size, seed)))
        interp.invoke()
        for name, node in net.nodes.items():
            if node.kind == "argmax":
                continue
            v = interp.get_tensor(by_name[name])
            lo, hi = float(v.min()), float(v.max())
            if name in ranges:
                lo, hi = min(lo, ranges[name][0]), max(hi, ranges[name][1])
            ranges[name] = (lo, hi)
    return ranges


def finish(net: Net, logits: str, dtype: str) -> bytes:
    """Upsample the logits to the input size and write the model: float32 outputs the logits;
    uint8 outputs the logits and their ARG_MAX (int64 labels), as the real quantized models."""
    size = net.shape("input")[1:3]
    up = net.resize(logits, size, "ResizeBilinear_logits")
    net.outputs = [up]
    if dtype == "float32":
        return net.tflite("float32")
    ranges = calibrate(net)
    labels = net.argmax(up)
    net.outputs = [up, labels]
    return net.tflite("uint8", ranges)


# ---------------------------------------------------------------------------------------
# The family
# ---------------------------------------------------------------------------------------

def _stem(net: Net) -> tuple[str, str]:
    """Strides 2 and 4: returns (stride-4 features, which v3+ reuses as low-level features,
    and the stride-8 features)."""
    x = net.conv("input", 8, 3, "stem/conv1", stride=2)                      # /2
    x = net.conv(x, 12, 3, "stem/conv2", stride=2)                           # /4
    low = x
    x = net.depthwise(x, 3, "block3/depthwise", stride=2)                    # /8
    x = net.conv(x, 16, 1, "block3/project")
    return low, x


def _atrous_backbone(net: Net, output_stride: int) -> tuple[str, str]:
    """A small backbone whose last stages keep the resolution with atrous convolutions
    instead of striding: rates 2 then 4 at output stride 8; one more stride and rate 2 at 16."""
    low, x = _stem(net)
    if output_stride == 16:
        x = net.depthwise(x, 3, "block4/depthwise", stride=2)                # /16
        x = net.conv(x, 24, 1, "block4/project")
        x = net.depthwise(x, 3, "block5/depthwise", rate=2)                  # atrous, no stride
        x = net.conv(x, 24, 1, "block5/project")
    elif output_stride == 8:
        x = net.conv(x, 24, 3, "block4/atrous_conv", rate=2)                 # atrous, no stride
        x = net.depthwise(x, 3, "block5/depthwise", rate=4)
        x = net.conv(x, 24, 1, "block5/project")
    else:
        raise ValueError(f"output stride 8 or 16, not {output_stride}")
    return low, x


def deeplab_v1(encoding: str = "dilated", dtype: str = "float32", seed: int = 0, size: int = 65) -> bytes:
    """DeepLab v1 (LargeFOV): an output-stride-8 atrous backbone, a 3x3 rate-4 "fc6", a 1x1
    classifier, bilinear upsampling. ``encoding``: "dilated" or "space_to_batch"."""
    net = Net("DeepLab v1", size, seed, atrous=encoding)
    _, x = _atrous_backbone(net, 8)
    x = net.conv(x, 24, 3, "fc6", rate=4, act="RELU")
    logits = net.conv(x, NUM_CLASSES, 1, "logits", act="NONE")
    return finish(net, logits, dtype)


def deeplab_v2(dtype: str = "float32", seed: int = 0, size: int = 97) -> bytes:
    """DeepLab v2 (ASPP-L): four parallel 3x3 atrous classifiers, rates 6, 12, 18, 24, summed."""
    net = Net("DeepLab v2", size, seed)
    _, x = _atrous_backbone(net, 8)
    branches = [net.conv(x, NUM_CLASSES, 3, f"aspp/rate{r}", rate=r, act="NONE") for r in (6, 12, 18, 24)]
    s = net.add(branches[0], branches[1], "aspp/sum_6_12")
    s = net.add(s, branches[2], "aspp/sum_6_18")
    logits = net.add(s, branches[3], "aspp/sum_6_24")
    return finish(net, logits, dtype)


def _aspp_v3(net: Net, x: str, pooling: str, depth: int = 16) -> str:
    """DeepLab v3 ASPP: 1x1 + three 3x3 atrous branches (6, 12, 18) + image-level pooling,
    concatenated and projected by a 1x1 convolution."""
    _, h, w, _ = net.shape(x)
    branches = [net.conv(x, depth, 1, "aspp0", act="RELU")]
    branches += [net.conv(x, depth, 3, f"aspp{i}_rate{r}", rate=r, act="RELU") for i, r in ((1, 6), (2, 12), (3, 18))]
    pooled = net.image_pool(x, "image_pooling/pool", pooling)
    pooled = net.conv(pooled, depth, 1, "image_pooling", act="RELU")
    branches.append(net.resize(pooled, (h, w), "image_pooling/ResizeBilinear"))
    cat = net.concat(branches, "concat")
    return net.conv(cat, depth, 1, "concat_projection", act="RELU")


def deeplab_v3(pooling: str = "avgpool", dtype: str = "float32", seed: int = 0, size: int = 97) -> bytes:
    """DeepLab v3: output-stride-8 atrous backbone + ASPP with image-level pooling
    (``pooling``: "mean" = MEAN over H, W; "avgpool" = a whole-map AVERAGE_POOL_2D)."""
    net = Net(f"DeepLab v3 ({pooling})", size, seed)
    _, x = _atrous_backbone(net, 8)
    x = _aspp_v3(net, x, pooling)
    logits = net.conv(x, NUM_CLASSES, 1, "logits", act="NONE")
    return finish(net, logits, dtype)


def deeplab_v3plus(pooling: str = "avgpool", dtype: str = "float32", seed: int = 0, size: int = 129) -> bytes:
    """DeepLab v3+: the v3 encoder at output stride 16 plus the decoder: stride-4 low-level
    features projected by 1x1, the encoder output upsampled x4, concatenated, two 3x3 convs,
    the classifier, and the final upsampling."""
    net = Net(f"DeepLab v3+ ({pooling})", size, seed)
    low, x = _atrous_backbone(net, 16)
    x = _aspp_v3(net, x, pooling)
    _, lh, lw, _ = net.shape(low)
    low = net.conv(low, 8, 1, "decoder/feature_projection0", act="RELU")
    up = net.resize(x, (lh, lw), "decoder/ResizeBilinear")
    x = net.concat([up, low], "decoder/concat")
    x = net.conv(x, 16, 3, "decoder/decoder_conv0", act="RELU")
    x = net.conv(x, 16, 3, "decoder/decoder_conv1", act="RELU")
    logits = net.conv(x, NUM_CLASSES, 1, "logits", act="NONE")
    return finish(net, logits, dtype)


#: name -> builder(dtype, seed) of every family model the tests run.
FAMILY: dict[str, Callable[..., bytes]] = {
    "v1_dilated": lambda dtype="float32", seed=0: deeplab_v1("dilated", dtype, seed),
    "v1_space_to_batch": lambda dtype="float32", seed=0: deeplab_v1("space_to_batch", dtype, seed),
    "v2": lambda dtype="float32", seed=0: deeplab_v2(dtype, seed),
    "v3_mean": lambda dtype="float32", seed=0: deeplab_v3("mean", dtype, seed),
    "v3_avgpool": lambda dtype="float32", seed=0: deeplab_v3("avgpool", dtype, seed),
    "v3plus": lambda dtype="float32", seed=0: deeplab_v3plus("avgpool", dtype, seed),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write a synthesized DeepLab family model as .tflite.")
    ap.add_argument("name", nargs="?", help=f"one of {', '.join(FAMILY)}")
    ap.add_argument("--dtype", choices=["float32", "uint8"], default="float32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="output path (default: NAME_DTYPE.tflite)")
    ap.add_argument("--list", action="store_true", help="list the model names")
    args = ap.parse_args(argv)
    if args.list or not args.name:
        print("\n".join(FAMILY))
        return 0
    if args.name not in FAMILY:
        ap.error(f"unknown model {args.name!r}: choose one of {', '.join(FAMILY)}")
    data = FAMILY[args.name](args.dtype, args.seed)
    out = args.out or f"{args.name}_{args.dtype}.tflite"
    with open(out, "wb") as f:
        f.write(data)
    print(f"{out}: {len(data):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
