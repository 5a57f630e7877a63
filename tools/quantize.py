"""Full-integer (int8) post-training quantization of a float32 .tflite model, float I/O kept.

Makes the kind of model TF2's converter writes for ``optimizations=[DEFAULT]`` with a
representative dataset and float input/output (TF Hub's int8 DeepLabs): the same
operators in the same order on int8 tensors, a QUANTIZE (float32 -> int8) after the
float input and a DEQUANTIZE (int8 -> float32) before each float output. There is no
TensorFlow here, so the converter's work is done by hand, following TFLite's int8
quantization specification:

- activations: int8, asymmetric, per tensor (zero point in [-128, 127]), from the
  min/max each tensor takes over the calibration images (the float model run by
  LiteRT with ``experimental_preserve_all_tensors``);
- CONV_2D weights: int8 symmetric per output channel (quantized dimension 0, values in
  [-127, 127], zero point 0); DEPTHWISE_CONV_2D weights likewise per channel on
  dimension 3; biases int32 per channel with scale ``s_in * s_w[c]``;
- AVERAGE_POOL_2D, RESIZE_BILINEAR, SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND: the output
  keeps the input's parameters (the specification's restriction);
- CONCATENATION: TFLite's quantizer gives its inputs and output one set of parameters
  (``restrict_same_input_output_scale`` in tools/optimize/operator_property.cc): the
  output's calibrated range, which covers every input; an input whose parameters
  differ is requantized first by an int8 -> int8 QUANTIZE, as in the real quantized
  DeepLab models (the int8 kernel could rescale by itself, but in float arithmetic);
- ADD, MUL: output parameters of their own; a constant operand (the per-channel
  scale and offset of a batch norm left unfolded) is int8 per tensor;
- float16 (or other) weights behind a DEQUANTIZE are folded into float32 constants
  first, then quantized as above: those DEQUANTIZE operators disappear.

Any other operator is refused with :class:`QuantizeError` naming it.

    python tools/quantize.py deeplabv3_257_mv_gpu.tflite --out deeplabv3_257_int8.tflite

The activation parameters reuse :func:`synth.uint8_params` (the uint8 grid shifted by
128 is the int8 grid: same scale, zero point minus 128).

``--dynamic-range`` (:func:`quantize_dynamic_range`) writes the other kind TF2's converter
makes, without a representative dataset: int8 weights (per output channel for convolutions,
per tensor for FULLY_CONNECTED) and float activations, the hybrid operators quantizing their
input at every run; weights under 1024 elements stay float, as the converter leaves them.

    python tools/quantize.py deeplabv3_257_mv_gpu.tflite --out deeplabv3_257_dr.tflite --dynamic-range
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

_TOOLS = str(Path(__file__).resolve().parent)
if _TOOLS not in sys.path:  # synth.py beside this file (tools/ is not a package)
    sys.path.insert(0, _TOOLS)

from synth import uint8_params  # noqa: E402

from pydeeplab.atomic import write_bytes  # noqa: E402
from pydeeplab.tflite.model import Model, Quantization, Tensor  # noqa: E402
from pydeeplab.tflite.options import EmptyOptions  # noqa: E402
from pydeeplab.tflite.reader import read_model  # noqa: E402
from pydeeplab.tflite.schema import BuiltinOperator as Op, TensorType  # noqa: E402
from pydeeplab.tflite.writer import ModelBuilder  # noqa: E402

#: Operators this tool quantizes (DEQUANTIZE only of constant weights, which it folds).
SUPPORTED = frozenset({Op.CONV_2D, Op.DEPTHWISE_CONV_2D, Op.ADD, Op.MUL, Op.CONCATENATION,
                       Op.AVERAGE_POOL_2D, Op.RESIZE_BILINEAR, Op.SPACE_TO_BATCH_ND,
                       Op.BATCH_TO_SPACE_ND, Op.DEQUANTIZE})
#: Operators whose int8 output must keep the input's scale and zero point (the spec's restriction).
PASSTHROUGH = frozenset({Op.AVERAGE_POOL_2D, Op.RESIZE_BILINEAR, Op.SPACE_TO_BATCH_ND, Op.BATCH_TO_SPACE_ND})
#: Operator versions for int8 kernels, as TFLite's quantizer writes them (operator_property.cc:
#: per-channel int8 convolutions are version 3, the other int8 operators 2).
_VERSION = {Op.CONV_2D: 3, Op.DEPTHWISE_CONV_2D: 3, Op.ADD: 2, Op.MUL: 2, Op.CONCATENATION: 2,
            Op.AVERAGE_POOL_2D: 2, Op.RESIZE_BILINEAR: 2, Op.SPACE_TO_BATCH_ND: 2,
            Op.BATCH_TO_SPACE_ND: 2, Op.QUANTIZE: 2, Op.DEQUANTIZE: 2}
#: Image files the default calibration set is made of (grayscale masks and ``*_target`` are skipped).
IMAGE_SUFFIXES = (".bmp", ".jpg", ".jpeg", ".png")


class QuantizeError(ValueError):
    """The model cannot be quantized by this tool (an operator or tensor it does not handle,
    no calibration images); the message says which and what to do."""


# ---------------------------------------------------------------------------------------
# Quantization parameters
# ---------------------------------------------------------------------------------------

def int8_params(lo: float, hi: float) -> Quantization:
    """Asymmetric per-tensor int8 parameters whose grid covers [lo, hi] and holds 0 exactly:
    the uint8 grid of :func:`synth.uint8_params` moved down by 128."""
    q = uint8_params(lo, hi)
    return Quantization(scales=q.scales, zero_points=q.zero_points - 128)


def quantize_activation(x: np.ndarray, q: Quantization) -> np.ndarray:
    """A float array on an int8 per-tensor grid (constant operands of ADD/MUL)."""
    return np.clip(np.round(x / q.scales[0]) + q.zero_points[0], -128, 127).astype(np.int8)


def symmetric_per_channel(w: np.ndarray, axis: int) -> tuple[np.ndarray, Quantization]:
    """Int8 weights in [-127, 127] with one scale per slice along ``axis`` and zero point 0.

    The scale is ``max|w| / 127`` of the slice (1 for an all-zero slice, whose values are
    then all 0 whatever the scale).
    """
    other = tuple(a for a in range(w.ndim) if a != axis)
    amax = np.max(np.abs(w.astype(np.float64)), axis=other)
    scales = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scales.reshape(shape).astype(np.float64)), -127, 127).astype(np.int8)
    return q, Quantization(scales=scales, zero_points=np.zeros(scales.size, np.int64), quantized_dimension=axis)


def bias_per_channel(bias: np.ndarray, input_scale: float,
                     weight_scales: np.ndarray) -> tuple[np.ndarray, Quantization]:
    """Int32 bias with scale ``s_in * s_w[c]`` per channel (the product taken in float32, as
    TFLite checks it), zero point 0."""
    scales = (np.float32(input_scale) * weight_scales.astype(np.float32)).astype(np.float32)
    q = np.round(bias.astype(np.float64) / scales.astype(np.float64))
    q = np.clip(q, np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)
    return q, Quantization(scales=scales, zero_points=np.zeros(scales.size, np.int64), quantized_dimension=0)


# ---------------------------------------------------------------------------------------
# Reading the float model
# ---------------------------------------------------------------------------------------

def _constant_value(t: Tensor) -> np.ndarray:
    """A constant tensor as float32 (float16 widened; 8-bit data dequantized per tensor)."""
    data = np.asarray(t.data)
    if data.dtype in (np.float32, np.float16):
        return data.astype(np.float32)
    q = t.quantization
    if q is not None and q.scales.size == 1 and data.dtype in (np.int8, np.uint8):
        return ((data.astype(np.float32) - q.zero_points[0]) * q.scales[0]).astype(np.float32)
    raise QuantizeError(f"constant tensor {t.index} ({t.name!r}) of type {t.type.name} cannot be read as float weights")


def float_constants(model: Model) -> dict[int, np.ndarray]:
    """Every float-valued constant of the main subgraph, tensor index -> float32 array:
    the stored float32 constants and the outputs of DEQUANTIZE operators applied to
    constants (float16 weights), folded as the converter folds them."""
    g = model.main
    consts = {t.index: _constant_value(t) for t in g.tensors
              if t.is_constant and t.type in (TensorType.FLOAT32, TensorType.FLOAT16)}
    for op in g.operators:
        if op.builtin == Op.DEQUANTIZE and g.tensors[op.inputs[0]].is_constant:
            consts[op.outputs[0]] = _constant_value(g.tensors[op.inputs[0]])
    return consts


def check_model(model: Model) -> None:
    """Raise :class:`QuantizeError` unless every operator is one this tool quantizes and the
    model has float32 inputs and outputs."""
    g = model.main
    if len(model.subgraphs) != 1:
        raise QuantizeError(f"the model has {len(model.subgraphs)} subgraphs; only single-subgraph models are handled")
    bad = sorted({op.name for op in g.operators if op.builtin not in SUPPORTED})
    if bad:
        raise QuantizeError(f"cannot quantize operator(s) {', '.join(bad)}: tools/quantize.py handles "
                            f"{', '.join(sorted(Op(c).name for c in SUPPORTED))}")
    for op in g.operators:
        if op.builtin == Op.DEQUANTIZE and not g.tensors[op.inputs[0]].is_constant:
            name = g.tensors[op.inputs[0]].name
            raise QuantizeError(f"operator {op.index} DEQUANTIZE acts on an activation ({name!r}); only "
                                "DEQUANTIZE of constant weights is handled: is the model already quantized?")
    for i in (*g.inputs, *g.outputs):
        if g.tensors[i].type != TensorType.FLOAT32:
            t = g.tensors[i]
            raise QuantizeError(f"tensor {t.name!r} is {t.type.name}: the model must be a float32 model "
                                "(float32 inputs and outputs)")


# ---------------------------------------------------------------------------------------
# Calibration
# ---------------------------------------------------------------------------------------

def default_images() -> list[Path]:
    """The photographs of the shared data folder's ``images/`` (``$PYDEEPLAB_DATA``), masks left out."""
    from PIL import Image

    from pydeeplab.models import data_dir

    folder = data_dir() / "images"
    found = []
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() not in IMAGE_SUFFIXES or p.stem.endswith(("_target", "_mask")):
            continue
        with Image.open(p) as im:
            if im.mode == "RGB":
                found.append(p)
    if not found:
        raise QuantizeError(f"no calibration images in {folder}: pass --images, or set PYDEEPLAB_DATA "
                            "to the folder that holds images/")
    return found


def model_inputs(content: bytes, model: Model, images: Iterable[str | os.PathLike]) -> list[np.ndarray]:
    """Each image as the float model's input: resized to its input size and normalized with the
    model's mean/std (its metadata, its manifest entry, else DeepLab's 127.5/127.5)."""
    from pydeeplab.image import load_rgb, resize_image, to_model_input
    from pydeeplab.models import describe

    info = describe("model.tflite", content, model)
    _, h, w, _ = model.main.tensors[model.main.inputs[0]].shape
    return [to_model_input(resize_image(load_rgb(p), h, w), np.float32, mean=info.mean, std=info.std)
            for p in images]


def calibrate(content: bytes, inputs: Sequence[np.ndarray], tensors: Iterable[int],
              progress: bool = True) -> dict[int, tuple[float, float]]:
    """(min, max) of each tensor index in ``tensors`` over ``inputs``, the float model run by
    LiteRT's built-in kernels with every intermediate tensor preserved."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from tqdm import tqdm

    interp = Interpreter(model_content=content, num_threads=1, experimental_preserve_all_tensors=True,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    index = interp.get_input_details()[0]["index"]
    tensors = list(tensors)
    ranges: dict[int, tuple[float, float]] = {}
    for x in tqdm(inputs, desc="calibrating", unit="image", disable=not progress, leave=False):
        interp.set_tensor(index, x)
        interp.invoke()
        for t in tensors:
            v = interp.get_tensor(t)
            lo, hi = float(v.min()), float(v.max())
            if t in ranges:
                lo, hi = min(lo, ranges[t][0]), max(hi, ranges[t][1])
            ranges[t] = (lo, hi)
    return ranges


# ---------------------------------------------------------------------------------------
# Writing the int8 model
# ---------------------------------------------------------------------------------------

class _Int8Writer:
    """Rewrites the main subgraph of a float model on int8 tensors, operator by operator."""

    def __init__(self, model: Model, consts: dict[int, np.ndarray], ranges: dict[int, tuple[float, float]]):
        self.model, self.g = model, model.main
        self.consts, self.ranges = consts, ranges
        self.b = ModelBuilder(description=f"{model.description} (int8, pydeeplab tools/quantize.py)")
        self.new: dict[int, int] = {}              # old tensor index -> new tensor index
        self.params: dict[int, Quantization] = {}  # old activation index -> its int8 parameters

    def _tensor(self, t: Tensor, q: Quantization, name: str | None = None) -> int:
        return self.b.add_tensor(name or t.name, TensorType.INT8, t.shape, q, shape_signature=t.shape_signature)

    def activation(self, i: int, q: Quantization) -> int:
        self.params[i] = q
        t = self.g.tensors[i]
        # A model output's name goes to the float tensor after the DEQUANTIZE (what users look up).
        self.new[i] = self._tensor(t, q, f"{t.name}_int8" if i in self.g.outputs else None)
        return self.new[i]

    def calibrated(self, i: int) -> Quantization:
        lo, hi = self.ranges[i]
        return int8_params(lo, hi)

    def operand(self, i: int) -> int:
        """The new index of an activation or a non-weight constant input (int8 per tensor)."""
        if i in self.new:
            return self.new[i]
        if i in self.consts:
            v = self.consts[i]
            q = int8_params(v.min(), v.max())
            self.params[i] = q
            self.new[i] = self.b.add_constant(self.g.tensors[i].name, quantize_activation(v, q), q, TensorType.INT8)
            return self.new[i]
        t = self.g.tensors[i]
        if t.is_constant:  # integer operands (sizes, block shapes, paddings) are copied
            self.new[i] = self.b.add_constant(t.name, np.asarray(t.data), t.quantization, t.type)
            return self.new[i]
        raise QuantizeError(f"tensor {i} ({t.name!r}) is used before any operator produces it")

    def write(self) -> bytes:
        g, b = self.g, self.b
        float_in = {}
        for i in g.inputs:  # float input -> QUANTIZE -> the int8 tensor the graph reads
            t = g.tensors[i]
            float_in[i] = b.add_tensor(t.name, TensorType.FLOAT32, t.shape, shape_signature=t.shape_signature)
            q = self.calibrated(i)
            self.params[i] = q
            self.new[i] = self._tensor(t, q, f"{t.name}_int8")
            b.add_operator(Op.QUANTIZE, [float_in[i]], [self.new[i]], None, _VERSION[Op.QUANTIZE])
        for op in g.operators:
            if op.builtin == Op.DEQUANTIZE:
                continue  # weights already folded into float32 constants
            getattr(self, f"_{Op(op.builtin).name.lower()}", self._elementwise)(op)
        float_out = {}
        for i in g.outputs:  # the int8 result -> DEQUANTIZE -> the float output, under the original name
            t = g.tensors[i]
            float_out[i] = b.add_tensor(t.name, TensorType.FLOAT32, t.shape, shape_signature=t.shape_signature)
            b.add_operator(Op.DEQUANTIZE, [self.new[i]], [float_out[i]], None, _VERSION[Op.DEQUANTIZE])
        b.set_inputs([float_in[i] for i in g.inputs])
        b.set_outputs([float_out[i] for i in g.outputs])
        for name, data in self.model.metadata.items():
            b.add_metadata(name, data)
        mapping = {**float_in, **float_out}
        for s in self.model.signature_defs:
            b.add_signature(s.key, {k: mapping[v] for k, v in s.inputs.items()},
                            {k: mapping[v] for k, v in s.outputs.items()}, s.subgraph_index)
        return b.finish()

    def _emit(self, op, inputs: list[int], out_q: Quantization) -> None:
        out = self.activation(op.outputs[0], out_q)
        self.b.add_operator(op.builtin, inputs, [out], op.options, _VERSION[op.builtin])

    def _conv(self, op, axis: int) -> None:
        x, w_i = op.inputs[0], op.inputs[1]
        if w_i not in self.consts:
            raise QuantizeError(f"operator {op.index} {op.name}: the weights are not constant")
        w_t = self.g.tensors[w_i]
        qw, wq = symmetric_per_channel(self.consts[w_i], axis)
        inputs = [self.operand(x), self.b.add_constant(w_t.name, qw, wq, TensorType.INT8)]
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            bias_i = op.inputs[2]
            if bias_i not in self.consts:
                raise QuantizeError(f"operator {op.index} {op.name}: the bias is not constant")
            qb, bq = bias_per_channel(self.consts[bias_i], self.params[x].scales[0], wq.scales)
            inputs.append(self.b.add_constant(self.g.tensors[bias_i].name, qb, bq, TensorType.INT32))
        else:
            inputs.append(-1)
        self._emit(op, inputs, self.calibrated(op.outputs[0]))

    def _conv_2d(self, op) -> None:
        self._conv(op, axis=0)       # weights [out, kh, kw, in]: one scale per output channel

    def _depthwise_conv_2d(self, op) -> None:
        self._conv(op, axis=3)       # weights [1, kh, kw, channels]: one scale per channel

    def _concatenation(self, op) -> None:
        q = self.calibrated(op.outputs[0])
        ins = []
        for i in op.inputs:
            new = self.operand(i)
            p = self.params[i]
            if p.scales[0] != q.scales[0] or p.zero_points[0] != q.zero_points[0]:
                # One set of parameters for every operand: requantize this one (int8 -> int8 QUANTIZE).
                rq = self._tensor(self.g.tensors[i], q, f"{self.g.tensors[i].name}/requantize")
                self.b.add_operator(Op.QUANTIZE, [new], [rq], None, _VERSION[Op.QUANTIZE])
                new = rq
            ins.append(new)
        self._emit(op, ins, q)

    def _elementwise(self, op) -> None:
        """ADD, MUL and the operators that keep their input's parameters."""
        ins = [self.operand(i) if i >= 0 else -1 for i in op.inputs]
        q = self.params[op.inputs[0]] if op.builtin in PASSTHROUGH else self.calibrated(op.outputs[0])
        self._emit(op, ins, q)


def quantize_int8(model_path: str | os.PathLike, out_path: str | os.PathLike,
                  images: Sequence[str | os.PathLike] | None = None, *, progress: bool = True) -> Path:
    """Write the int8 per-channel version of the float32 model ``model_path`` to ``out_path``.

    ``images``: calibration images (paths; default :func:`default_images`), each resized to
    the model's input and normalized as the model wants. Returns ``Path(out_path)``.
    The output takes and returns float32 like the input model (QUANTIZE after the
    input, DEQUANTIZE before each output); in between every activation is int8.
    Raises :class:`QuantizeError` for an operator or tensor this tool does not handle,
    :class:`pydeeplab.errors.ModelError` for an unreadable model.
    """
    content = Path(model_path).read_bytes()
    model = read_model(content)
    check_model(model)
    consts = float_constants(model)
    g = model.main
    activations = [t.index for t in g.tensors if t.type == TensorType.FLOAT32 and t.index not in consts]
    images = list(default_images() if images is None else images)
    if not images:
        raise QuantizeError("no calibration images given")
    ranges = calibrate(content, model_inputs(content, model, images), activations, progress)
    data = _Int8Writer(model, consts, ranges).write()
    out = Path(out_path)
    write_bytes(out, data)
    return out


# ---------------------------------------------------------------------------------------
# Dynamic-range (hybrid) quantization
# ---------------------------------------------------------------------------------------

#: Operators whose constant float weights dynamic-range quantization stores as int8, with the axis of
#: their per-channel scales (None: one scale for the tensor) and the operator version TFLite's
#: converter writes for the hybrid form.
HYBRID = {Op.CONV_2D: (0, 5), Op.DEPTHWISE_CONV_2D: (3, 6), Op.TRANSPOSE_CONV: (0, 3),
          Op.FULLY_CONNECTED: (None, 9)}
#: Weights with fewer elements stay float32 (the converter's ``min_elements_for_weights``).
MIN_HYBRID_ELEMENTS = 1024


def quantize_dynamic_range(model_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Write the dynamic-range quantized version of the float32 model ``model_path`` to ``out_path``:
    TF2's converter with ``optimizations=[DEFAULT]`` and no representative dataset.

    The weights of CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV (int8 symmetric, one scale per output
    channel) and FULLY_CONNECTED (one scale, inputs quantized with a zero point at run time) become
    int8 where they have at least :data:`MIN_HYBRID_ELEMENTS` elements; the operators then run hybrid
    (float32 activations, each input quantized at every run). float16 weights behind a DEQUANTIZE are
    folded into float32 first. Everything else is copied. Returns ``Path(out_path)``.
    """
    model = read_model(Path(model_path).read_bytes())
    if len(model.subgraphs) != 1:
        raise QuantizeError(f"the model has {len(model.subgraphs)} subgraphs; only single-subgraph models are handled")
    g, consts = model.main, float_constants(model)
    b = ModelBuilder(description="pydeeplab tools/quantize.py --dynamic-range")
    new: dict[int, int] = {}

    def tensor(i: int) -> int:
        if i < 0 or i in new:
            return new.get(i, i)
        t = g.tensors[i]
        if i in consts:
            new[i] = b.add_constant(t.name, consts[i], None, TensorType.FLOAT32)
        elif t.is_constant:
            new[i] = b.add_constant(t.name, np.asarray(t.data), t.quantization, t.type)
        else:
            new[i] = b.add_tensor(t.name, t.type, t.shape, t.quantization, shape_signature=t.shape_signature,
                                  is_variable=t.is_variable)
        return new[i]

    hybrid = 0
    for op in g.operators:
        if op.builtin == Op.DEQUANTIZE and op.outputs[0] in consts:
            continue  # folded float16 weights
        version, options = op.code.version, op.options
        k = 1  # the weights (TRANSPOSE_CONV's too: its output shape comes first, its input third)
        quantized = (op.builtin in HYBRID and len(op.inputs) > k and op.inputs[k] in consts
                     and consts[op.inputs[k]].size >= MIN_HYBRID_ELEMENTS)
        inputs = [-1 if quantized and j == k else tensor(i) for j, i in enumerate(op.inputs)]
        if quantized:
            axis, version = HYBRID[op.builtin]
            w = consts[op.inputs[k]]
            if axis is None:
                largest = float(np.max(np.abs(w)))
                scale = np.float32(largest / 127.0 if largest > 0 else 1.0)
                qw = np.clip(np.round(w / np.float64(scale)), -127, 127).astype(np.int8)
                wq = Quantization(scales=np.array([scale], np.float32), zero_points=np.zeros(1, np.int64))
                options = dataclasses.replace(options, asymmetric_quantize_inputs=True)
            else:
                qw, wq = symmetric_per_channel(w, axis)
            inputs[k] = b.add_constant(f"{g.tensors[op.inputs[k]].name}/int8", qw, wq, TensorType.INT8)
            hybrid += 1
        b.add_operator(op.builtin, inputs, [tensor(i) for i in op.outputs], options, version,
                       custom_code=op.code.custom_code, custom_options=op.custom_options)
    if not hybrid:
        raise QuantizeError(f"no operator of {', '.join(sorted(Op(c).name for c in HYBRID))} with constant weights "
                            f"of {MIN_HYBRID_ELEMENTS} elements or more: nothing to quantize")
    b.set_inputs([tensor(i) for i in g.inputs])
    b.set_outputs([tensor(i) for i in g.outputs])
    for name, data in model.metadata.items():
        b.add_metadata(name, data)
    for sig in model.signature_defs:
        b.add_signature(sig.key, {k: new[v] for k, v in sig.inputs.items()},
                        {k: new[v] for k, v in sig.outputs.items()}, sig.subgraph_index)
    out = Path(out_path)
    write_bytes(out, b.finish())
    return out


# ---------------------------------------------------------------------------------------
# Checking the result
# ---------------------------------------------------------------------------------------

def label_agreement(float_path: str | os.PathLike, int8_path: str | os.PathLike,
                    images: Sequence[str | os.PathLike]) -> list[float]:
    """Per image, the fraction of pixels where the int8 model's argmax label equals the float
    model's, both run by LiteRT (default resolver) on the same float input."""
    from ai_edge_litert.interpreter import Interpreter

    content = Path(float_path).read_bytes()
    inputs = model_inputs(content, read_model(content), images)
    labels = []
    for path in (float_path, int8_path):
        interp = Interpreter(model_path=os.fspath(path), num_threads=1)
        interp.allocate_tensors()
        i, o = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
        out = []
        for x in inputs:
            interp.set_tensor(i, x)
            interp.invoke()
            out.append(interp.get_tensor(o).argmax(-1))
        labels.append(out)
    return [float(np.mean(a == b)) for a, b in zip(*labels)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python tools/quantize.py",
        description="Quantize a float32 .tflite model to int8 (per-channel weights, float input and output), "
                    "as TF2's converter does with a representative dataset; or, with --dynamic-range, "
                    "its weights only (hybrid operators), as the converter does without one.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  python tools/quantize.py ../shared/data/models/deeplabv3_257_mv_gpu.tflite \\\n"
               "      --out deeplabv3_257_int8.tflite\n"
               "  python tools/quantize.py model.tflite --out model_int8.tflite --images a.jpg b.png --agreement\n"
               "  python tools/quantize.py model.tflite --out model_dr.tflite --dynamic-range\n"
               "  pydeeplab verify deeplabv3_257_int8.tflite --image ../shared/data/images/cat.bmp --backend numpy\n\n"
               "Calibration images default to the photographs in $PYDEEPLAB_DATA/images.")
    ap.add_argument("model", help="float32 .tflite model")
    ap.add_argument("--out", required=True, help="path of the int8 model to write")
    ap.add_argument("--images", nargs="+", metavar="IMG", help="calibration images (default: the shared data's images)")
    ap.add_argument("--agreement", action="store_true",
                    help="then print, per image, the share of pixels whose label the int8 model keeps (LiteRT)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--dynamic-range", action="store_true",
                    help="int8 weights only (no calibration): CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV and "
                         "FULLY_CONNECTED then run hybrid, their float input quantized at every run")
    args = ap.parse_args(argv)
    from pydeeplab.errors import ModelError
    from pydeeplab.image import ImageError
    if args.dynamic_range and args.images:
        ap.error("--dynamic-range takes no calibration images")
    try:
        if args.dynamic_range:
            images = []
            out = quantize_dynamic_range(args.model, args.out)
        else:
            images = args.images or default_images()
            out = quantize_int8(args.model, args.out, images, progress=not args.quiet)
    except (QuantizeError, ModelError, ImageError, OSError) as exc:
        print(f"quantize: {exc}", file=sys.stderr)
        return 2
    model = read_model(out.read_bytes())
    counts: dict[str, int] = {}
    for op in model.main.operators:
        counts[op.name] = counts.get(op.name, 0) + 1
    how = "weights only (dynamic range)" if args.dynamic_range else f"calibrated on {len(images)} image(s)"
    print(f"{out}: {out.stat().st_size:,} bytes, {how}; " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if args.agreement:
        for p, a in zip(images, label_agreement(args.model, out, images)):
            print(f"  {Path(p).name}: labels equal to the float model's on {a:.2%} of pixels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
