"""The float shadow of a quantized model: the same graph, computed in float32.

TF's QuantizationDebugger asks, per layer, how far a quantized operator is from
what it would compute in real numbers. The float shadow answers it with
pydeeplab's own operators: every quantized constant is dequantized
(``real = scale * (q - zero_point)``, per channel where the model says so;
int32 biases with their ``s_in * s_w`` scales), every quantized activation
becomes a float32 tensor without quantization, and the operators stay the same,
in the same order, with the same options: so each one runs its float path.

Operators whose only job is to change the integer representation (QUANTIZE
requantizing between two scales, QUANTIZE of a float input, DEQUANTIZE of an
integer tensor) become identities in float: they are written as a RESHAPE to
the same shape, so that the shadow keeps one operator per operator of the model
and each tensor keeps its index and name. Integer tensors that are not
quantized (ARG_MAX's labels, shape vectors) stay as they are.

Some converters fold an activation into the output's quantization range instead
of the operator's options (MLPerf's uint8 DeepLab: every ReLU6 is a range [0, 6]
with ``fused_activation_function = NONE``); the integer kernel clamps there
anyway. The shadow makes such an *implied* activation explicit (RELU6 when the
range is [0, 6] to within a step, RELU when it starts at 0; for convolutions and
elementwise arithmetic), else the float
graph would compute a different function. Other ranges are not clamped, so the
error of saturating a too-narrow range is measured, not hidden.

Custom operators have no float path to rely on (MLPerf's ResizeArgmax reads
uint8 logits only): in the shadow they run on their integer representation, their
quantized inputs quantized from the float tensors with the model's own parameters
(one QUANTIZE each) and their quantized outputs dequantized back (one DEQUANTIZE
each). Those extra operators and tensors come after the model's own, so indices
still match.

The shadow is written as a real .tflite file (:func:`float_shadow` returns its
bytes), so it can be inspected, run by pydeeplab or by LiteRT.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .errors import ModelError
from .tflite.model import Model, Quantization, Tensor
from .tflite.options import ReshapeOptions
from .tflite.schema import Activation, BuiltinOperator, TensorType
from .tflite.writer import ModelBuilder

_REPRESENTATION_OPS = (BuiltinOperator.QUANTIZE, BuiltinOperator.DEQUANTIZE)
#: Operators that compute new values and take a fused activation (the ones an implied activation can follow).
_ARITHMETIC_OPS = (BuiltinOperator.CONV_2D, BuiltinOperator.DEPTHWISE_CONV_2D, BuiltinOperator.FULLY_CONNECTED,
                   BuiltinOperator.ADD, BuiltinOperator.SUB, BuiltinOperator.MUL)


def is_quantized_tensor(t: Tensor) -> bool:
    """An integer tensor with affine quantization parameters (the ones the shadow turns into float32)."""
    return (t.type.dtype is not None and t.type.dtype.kind in "iu" and t.quantization is not None
            and t.quantization.scales.size > 0)


def is_quantized_model(model: Model) -> bool:
    """Whether any tensor of the main graph is quantized (else there is nothing to shadow)."""
    return any(is_quantized_tensor(t) for t in model.main.tensors)


def dequantize(q: np.ndarray, quantization: Quantization, axis: int | None = None) -> np.ndarray:
    """``scale * (q - zero_point)`` as float64; per-channel parameters apply along ``axis``.

    ``q``: any integer array; ``quantization``: one scale/zero point, or one per slice of
    ``q`` along ``quantization.quantized_dimension`` (``axis`` overrides it).
    """
    scales = quantization.scales.astype(np.float64)
    zero_points = quantization.zero_points.astype(np.float64)
    x = np.asarray(q).astype(np.float64)
    if scales.size == 1:
        return (x - zero_points[0]) * scales[0]
    dim = quantization.quantized_dimension if axis is None else axis
    if x.ndim == 0 or x.shape[dim] != scales.size:
        raise ModelError(f"per-channel quantization with {scales.size} scales does not fit a tensor of shape "
                         f"{list(x.shape)} along dimension {dim}")
    shape = [1] * x.ndim
    shape[dim] = scales.size
    return (x - zero_points.reshape(shape)) * scales.reshape(shape)


def quantize(x: np.ndarray, quantization: Quantization, dtype: np.dtype) -> np.ndarray:
    """Real values to integers of ``dtype``: round half away from zero, then clamp (per-tensor parameters)."""
    info = np.iinfo(dtype)
    scaled = np.asarray(x, np.float64) / quantization.scale
    q = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + quantization.zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def implied_activation(t: Tensor) -> Activation:
    """The activation a quantized output's range implies: RELU6 for [0, 6], RELU for [0, x], else NONE."""
    if not is_quantized_tensor(t) or t.quantization.per_channel:
        return Activation.NONE
    info = np.iinfo(t.type.dtype)
    scale, zero_point = t.quantization.scale, t.quantization.zero_point
    if zero_point != info.min:
        return Activation.NONE
    top = scale * (info.max - zero_point)
    return Activation.RELU6 if abs(top - 6.0) <= scale else Activation.RELU


def _explicit_activation(options, out: Tensor):
    if getattr(options, "fused_activation_function", None) != Activation.NONE:
        return options
    act = implied_activation(out)
    return options if act == Activation.NONE else dataclasses.replace(options, fused_activation_function=act)


def _integer_island(b: ModelBuilder, g, op) -> None:
    """Write custom operator ``op`` on integer tensors: QUANTIZE before, DEQUANTIZE after (see module doc)."""
    inputs, outputs, after = [], [], []
    for i in op.inputs:
        t = g.tensors[i] if i >= 0 else None
        if t is None or t.data is not None or not is_quantized_tensor(t):
            inputs.append(i)
            continue
        q = b.add_tensor(f"{t.name}/float_shadow_integer", t.type, t.shape, t.quantization)
        b.add_operator(BuiltinOperator.QUANTIZE, [i], [q])
        inputs.append(q)
    for o in op.outputs:
        t = g.tensors[o]
        if not is_quantized_tensor(t):
            outputs.append(o)
            continue
        q = b.add_tensor(f"{t.name}/float_shadow_integer", t.type, t.shape, t.quantization)
        outputs.append(q)
        after.append((q, o))
    b.add_operator(op.builtin, inputs, outputs, op.options, op.code.version, custom_code=op.code.custom_code,
                   custom_options=op.custom_options, intermediates=op.intermediates)
    for q, o in after:
        b.add_operator(BuiltinOperator.DEQUANTIZE, [q], [o])


def float_shadow(model: Model) -> bytes:
    """The float shadow of ``model``'s main graph, as the bytes of a .tflite file.

    Tensor ``i`` of the shadow is tensor ``i`` of the model (same name; float32 where
    the model's was quantized); operator ``k`` is operator ``k`` unless a custom operator
    before it was wrapped in QUANTIZE/DEQUANTIZE (see the module docstring). Raises
    :class:`~pydeeplab.errors.ModelError` if the model has no quantized tensor.
    """
    g = model.main
    if not is_quantized_model(model):
        raise ModelError("the model has no quantized tensors: it is already float, so it has no float shadow "
                         "(compare two models with --against OTHER.tflite)")
    b = ModelBuilder(description=f"float shadow of: {model.description}".strip(), subgraph_name=g.name)
    for t in g.tensors:
        if t.data is not None:
            if is_quantized_tensor(t):
                # Bias scales are s_in * s_w per output channel: dimension 0 of the bias vector.
                axis = 0 if t.data.ndim == 1 else None
                b.add_constant(t.name, dequantize(t.data, t.quantization, axis).astype(np.float32))
            else:
                b.add_constant(t.name, t.data, t.quantization, type=t.type)
        elif is_quantized_tensor(t):
            b.add_tensor(t.name, TensorType.FLOAT32, t.shape, shape_signature=t.shape_signature)
        else:
            b.add_tensor(t.name, t.type, t.shape, t.quantization, shape_signature=t.shape_signature,
                         is_variable=t.is_variable)
    float_like = {t.index for t in g.tensors if is_quantized_tensor(t) or t.type == TensorType.FLOAT32}
    for op in g.operators:
        if (op.builtin in _REPRESENTATION_OPS and len(op.inputs) == 1 and len(op.outputs) == 1
                and op.inputs[0] in float_like and op.outputs[0] in float_like):
            shape = g.tensors[op.outputs[0]].shape
            new_shape = b.add_constant(f"{g.tensors[op.outputs[0]].name}/float_shadow_identity_shape",
                                       np.array(shape, np.int32))
            b.add_operator(BuiltinOperator.RESHAPE, [op.inputs[0], new_shape], op.outputs,
                           ReshapeOptions(new_shape=tuple(shape)))
            continue
        if op.builtin == BuiltinOperator.CUSTOM:
            _integer_island(b, g, op)
            continue
        options = op.options
        if op.builtin in _ARITHMETIC_OPS and op.outputs:
            options = _explicit_activation(options, g.tensors[op.outputs[0]])
        b.add_operator(op.builtin, op.inputs, op.outputs, options, op.code.version,
                       custom_code=op.code.custom_code, custom_options=op.custom_options,
                       intermediates=op.intermediates)
    b.set_inputs(g.inputs)
    b.set_outputs(g.outputs)
    return b.finish()
