"""Reductions over an axis: MEAN, SUM, REDUCE_MAX / REDUCE_MIN, SOFTMAX, ARG_MAX / ARG_MIN (TFLite
``kernels/reduce.cc``,
``kernels/activations.cc`` (Softmax), ``kernels/arg_min_max.cc``).

- MEAN: axes from a constant int32 input, ``keep_dims`` from ReducerOptions.
  float32 sums in float32 and divides by the count; quantized types always take
  the reference ``QuantizedMeanOrSum``: an int32 sum, minus the input zero point
  times the count, rescaled by ``input_scale / output_scale`` with the division by
  the count folded into the fixed-point multiplier.
- SOFTMAX: over the last axis. float32 as ``exp((x - max) * beta) / sum``;
  uint8/int8 with gemmlowp's fixed-point exp and reciprocal, exactly as the
  reference kernel does it (output in units of 1/256 with zero point 0 for uint8,
  -128 for int8; 1/65536 with zero point -32768 for an int16 output).
- ARG_MAX: the first index of the largest value along a constant axis (ties go
  to the lowest index, NaN never wins), output int32 or int64 per ArgMaxOptions; ARG_MIN the
  same for the smallest (both backends run the reference for it).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..quantization import quantize_multiplier
from ..reference import reduce as ref
from ..tflite.options import ArgMaxOptions, ArgMinOptions, ReducerOptions, SoftmaxOptions
from ..tflite.schema import BuiltinOperator, TensorType
from .base import OpContext, Prepared, register

_QUANTIZED = (np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.int16))


def _quant(ctx: OpContext, spec, what: str) -> tuple[float, int]:
    """(scale, zero_point) of a quantized tensor, or a ModelError naming it."""
    q = spec.quantization
    if q is None or q.scales.size == 0:
        raise ctx.error(f"the {what} ({spec.type.name}) has no quantization parameters")
    if q.per_channel:
        raise ctx.error(f"the {what} must be quantized per tensor, it has {q.scales.size} scales")
    return q.scale, q.zero_point


def _resolve_axes(ctx: OpContext, axes: np.ndarray, ndim: int) -> tuple[int, ...]:
    """Axes made non-negative, checked and de-duplicated in order (TFLite's ``ResolveAxis``)."""
    out: list[int] = []
    for a in np.asarray(axes).reshape(-1).tolist():
        a = int(a)
        if not -ndim <= a < ndim:
            raise ctx.error(f"axis {a} is out of range for a {ndim}-D input")
        a = a + ndim if a < 0 else a
        if a not in out:
            out.append(a)
    return tuple(out)


def reduction_layout(shape: tuple[int, ...],
                     axes: tuple[int, ...]) -> tuple[tuple[int, ...] | None, tuple[int, int, int]]:
    """How to see an input as [A, R, B]: kept axes before, reduced axes, kept axes after.

    Returns (perm, (A, R, B)). When the reduced axes are consecutive (the usual
    case, e.g. H and W of NHWC) perm is None and the input reshapes in place;
    otherwise perm moves the reduced axes last (a copy at run time) and B is 1.
    Row-major order over the reduced axes is kept, so a sequential sum over R
    adds in TFLite's order.
    """
    def size(dims) -> int:
        return int(np.prod([shape[d] for d in dims], dtype=np.int64))

    red = sorted(axes)
    if not red:
        return None, (size(range(len(shape))), 1, 1)
    if red == list(range(red[0], red[-1] + 1)):
        return None, (size(range(red[0])), size(red), size(range(red[-1] + 1, len(shape))))
    kept = [d for d in range(len(shape)) if d not in axes]
    return tuple(kept + red), (size(kept), size(red), 1)


@register(BuiltinOperator.MEAN)
def prepare_mean(ctx: OpContext) -> Prepared:
    # mean.cc takes int32 axes only (SUM and REDUCE_MAX also take int64).
    x, out, axes, out_shape, (perm, (a, r, b)) = _reducer_shapes(ctx, (TensorType.INT32,))
    if x.type not in (TensorType.FLOAT32, TensorType.INT32, TensorType.INT64, TensorType.UINT8,
                      TensorType.INT8, TensorType.INT16):
        raise ctx.error(f"input type {x.type.name} is not supported")
    numpy_backend = ctx.backend == "numpy"
    if not numpy_backend:
        from ..kernels import reduce as kern

    def as_arb(v: np.ndarray) -> np.ndarray:
        if perm is not None:
            v = np.ascontiguousarray(v.transpose(perm))
        return v.reshape(a, r, b)

    if r == 0:  # TFLite fills an empty mean with quiet_NaN: NaN for float, 0 for integers.
        fill = np.nan if x.dtype == np.float32 else 0

        def run(inputs, outputs):
            outputs[0].fill(fill)
        return Prepared((out_shape,), run)

    if x.dtype in _QUANTIZED:
        in_scale, in_zp = _quant(ctx, x, "input")
        out_scale, out_zp = _quant(ctx, out, "output")
        if x.dtype == np.int16 and (in_zp != 0 or out_zp != 0):
            raise ctx.error("int16 MEAN needs zero points of 0")
        try:
            mult, shift = mean_multiplier(in_scale, out_scale, r)
        except ValueError as exc:
            raise ctx.error(str(exc)) from None
        info = np.iinfo(x.dtype)
        qmin, qmax = int(info.min), int(info.max)
        if numpy_backend:
            def run(inputs, outputs):
                outputs[0][...] = ref.mean_quantized(inputs[0], axes, r, in_zp, mult, shift, out_zp,
                                                     qmin, qmax).reshape(out_shape)
        else:
            def run(inputs, outputs):
                kern.mean_quantized(as_arb(inputs[0]), outputs[0].reshape(a, b), in_zp, mult, shift,
                                    out_zp, qmin, qmax)
    elif numpy_backend:
        def run(inputs, outputs):
            outputs[0][...] = ref.mean(inputs[0], axes, r).reshape(out_shape)
    elif x.dtype == np.float32:
        def run(inputs, outputs):
            kern.mean_float(as_arb(inputs[0]), outputs[0].reshape(a, b))
    else:
        def run(inputs, outputs):
            kern.mean_int(as_arb(inputs[0]), outputs[0].reshape(a, b))
    return Prepared((out_shape,), run)


def mean_multiplier(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """The fixed-point multiplier of quantized MEAN over ``count`` elements (multiplier, shift).

    ``QuantizeMultiplier(double(s_in) / double(s_out))``, then, as the reference
    ``QuantizedMeanOrSum`` folds in the division: with k = floor(log2(count)),
    limited to 32 and to 31 + shift, multiplier = (multiplier << k) / count
    (integer division) and shift -= k.
    """
    mult, shift = quantize_multiplier(float(np.float32(input_scale)) / float(np.float32(output_scale)))
    k = min(count.bit_length() - 1, 32, 31 + shift)
    return (mult << k) // count, shift - k


class SoftmaxParams(NamedTuple):
    """Integer constants of quantized SOFTMAX (TFLite's ``SoftmaxParams``)."""

    input_multiplier: int
    input_left_shift: int
    diff_min: int


#: Integer bits of the fixed-point input to exp() (Q5.26), as in TFLite's Softmax.
SCALED_DIFF_INTEGER_BITS = 5


def softmax_params(beta: float, input_scale: float) -> SoftmaxParams:
    """TFLite's ``PreprocessSoftmaxScaling`` and ``CalculateInputRadius`` for an 8-bit input.

    The real multiplier ``beta * input_scale * 2**26`` (double, capped at 2**31 - 1)
    is quantized with a left shift (it must exceed 1); input differences below
    ``diff_min = -floor(31 * 2**26 / 2**left_shift)`` contribute exp(...) = 0.
    Raises ValueError where TFLite's check fails (a multiplier not above 1).
    """
    bits = SCALED_DIFF_INTEGER_BITS
    real = min(float(np.float32(beta)) * float(np.float32(input_scale)) * (1 << (31 - bits)), (1 << 31) - 1.0)
    if not real > 1.0:
        raise ValueError(f"softmax input multiplier beta * scale * 2**26 = {real!r} must be above 1")
    mult, left_shift = quantize_multiplier(real)
    radius = math.floor(((1 << bits) - 1) * (1 << (31 - bits)) / (1 << left_shift))
    return SoftmaxParams(mult, left_shift, -radius)


@register(BuiltinOperator.SOFTMAX)
def prepare_softmax(ctx: OpContext) -> Prepared:
    ctx.expect_io(1)
    opts = ctx.options_as(SoftmaxOptions)
    x, out = ctx.inputs[0], ctx.outputs[0]
    if len(x.shape) < 1:
        raise ctx.error("input must have at least one dimension")
    shape = x.shape
    depth = shape[-1]
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    if rows * depth == 0:
        return Prepared((shape,), lambda inputs, outputs: None)  # nothing to compute
    numpy_backend = ctx.backend == "numpy"
    if not numpy_backend:
        from ..kernels import reduce as kern

    if x.type == TensorType.FLOAT32:
        if out.type != TensorType.FLOAT32:
            raise ctx.error(f"float32 input needs a float32 output, got {out.type.name}")
        beta = np.float32(opts.beta)
        if numpy_backend:
            def run(inputs, outputs):
                outputs[0][...] = ref.softmax_float(inputs[0], beta)
        else:
            def run(inputs, outputs):
                kern.softmax_float(inputs[0].reshape(rows, depth), outputs[0].reshape(rows, depth), beta)
        return Prepared((shape,), run)

    if x.type not in (TensorType.UINT8, TensorType.INT8):
        raise ctx.error(f"input type {x.type.name} is not supported (float32, uint8, int8)")
    if out.type not in (x.type, TensorType.INT16):
        raise ctx.error(f"{x.type.name} input needs a {x.type.name} or INT16 output, got {out.type.name}")
    in_scale, _ = _quant(ctx, x, "input")
    if x.type == TensorType.INT8 and out.type == TensorType.INT8:
        out_scale, out_zp = _quant(ctx, out, "output")
        if out_zp != -128 or abs(out_scale - 1 / 256) > 0.001 / 256:
            raise ctx.error(f"int8 softmax output must have scale 1/256 and zero point -128, "
                            f"got {out_scale} and {out_zp}")
    try:
        p = softmax_params(opts.beta, in_scale)
    except ValueError as exc:
        raise ctx.error(str(exc)) from None
    out_bits = out.dtype.itemsize * 8
    if numpy_backend:
        def run(inputs, outputs):
            outputs[0][...] = ref.softmax_quantized(inputs[0], p.input_multiplier, p.input_left_shift,
                                                    p.diff_min, out.dtype)
    else:
        info = np.iinfo(out.dtype)
        qmin, qmax = int(info.min), int(info.max)

        def run(inputs, outputs):
            kern.softmax_quantized(inputs[0].reshape(rows, depth), outputs[0].reshape(rows, depth),
                                   p.input_multiplier, p.input_left_shift, p.diff_min, out_bits, qmin, qmax)
    return Prepared((shape,), run)


@register(BuiltinOperator.ARG_MAX, BuiltinOperator.ARG_MIN)
def prepare_arg_max(ctx: OpContext) -> Prepared:
    ctx.expect_io(2)
    minimum = ctx.opcode == BuiltinOperator.ARG_MIN
    opts = ctx.options_as(ArgMinOptions if minimum else ArgMaxOptions)
    x, out = ctx.inputs[0], ctx.outputs[0]
    if opts.output_type not in (TensorType.INT32, TensorType.INT64):
        raise ctx.error(f"output_type must be INT32 or INT64, got {opts.output_type.name}")
    if out.type != opts.output_type:
        raise ctx.error(f"output tensor type {out.type.name} differs from output_type {opts.output_type.name}")
    if x.type not in (TensorType.FLOAT32, TensorType.UINT8, TensorType.INT8, TensorType.INT32, TensorType.BOOL):
        raise ctx.error(f"input type {x.type.name} is not supported (float32, uint8, int8, int32, bool)")
    if len(x.shape) < 1:
        raise ctx.error("input must have at least one dimension")
    if ctx.inputs[1].type not in (TensorType.INT32, TensorType.INT64):
        raise ctx.error(f"the axis must be int32 or int64, got {ctx.inputs[1].type.name}")
    axis_value = ctx.constant(1, "the axis")
    if axis_value.size != 1:
        raise ctx.error(f"the axis must have one element, has {axis_value.size}")
    (axis,) = _resolve_axes(ctx, axis_value, len(x.shape))
    if x.shape[axis] == 0:
        raise ctx.error(f"cannot take {ctx.name} over an empty axis")
    out_shape = tuple(s for d, s in enumerate(x.shape) if d != axis)
    _, (a, k, b) = reduction_layout(x.shape, (axis,))

    if minimum:
        def run(inputs, outputs):
            outputs[0][...] = ref.arg_min(inputs[0], axis)
    elif ctx.backend == "numpy":
        def run(inputs, outputs):
            outputs[0][...] = ref.arg_max(inputs[0], axis)
    else:
        from ..kernels import reduce as kern
        from ..kernels.parallel import in_parallel, replayable, numba_threads

        arg_max = in_parallel(kern.arg_max)

        @replayable
        def run(inputs, outputs):
            arg_max(inputs[0].reshape(a, k, b), outputs[0].reshape(a, b), nt=numba_threads(inputs[0].size))
    return Prepared((out_shape,), run)


def _reducer_shapes(ctx: OpContext, axes_types: tuple[TensorType, ...] = (TensorType.INT32, TensorType.INT64)):
    """Shared checks of MEAN / SUM / REDUCE_MAX: (x, out, axes, out_shape, (perm, (A, R, B)))."""
    ctx.expect_io(2)
    opts = ctx.options_as(ReducerOptions)
    x, out = ctx.inputs[0], ctx.outputs[0]
    if ctx.inputs[1].type not in axes_types:
        raise ctx.error(f"the axes must be {' or '.join(t.name.lower() for t in axes_types)}, "
                        f"got {ctx.inputs[1].type.name}")
    # TFLite ignores the axes of a scalar input (its reduction is itself).
    axes = _resolve_axes(ctx, ctx.constant(1, "the axes"), len(x.shape)) if x.shape else ()
    if out.type != x.type:
        raise ctx.error(f"output type {out.type.name} differs from input type {x.type.name}")
    if opts.keep_dims:
        out_shape = tuple(1 if d in axes else s for d, s in enumerate(x.shape))
    else:
        out_shape = tuple(s for d, s in enumerate(x.shape) if d not in axes)
    return x, out, axes, out_shape, reduction_layout(x.shape, axes)


@register(BuiltinOperator.SUM)
def prepare_sum(ctx: OpContext) -> Prepared:
    """SUM over constant axes. Quantized: TFLite's ``QuantizedMeanOrSum`` with compute_sum,
    the int32 sum minus zp_in * count rescaled by s_in / s_out (no division by the count)."""
    x, out, axes, out_shape, (perm, (a, r, b)) = _reducer_shapes(ctx)
    if x.type not in (TensorType.FLOAT32, TensorType.INT32, TensorType.INT64, TensorType.UINT8,
                      TensorType.INT8, TensorType.INT16):
        raise ctx.error(f"input type {x.type.name} is not supported")
    if x.dtype in _QUANTIZED:
        in_scale, in_zp = _quant(ctx, x, "input")
        out_scale, out_zp = _quant(ctx, out, "output")
        if x.dtype == np.int16 and (in_zp != 0 or out_zp != 0):
            raise ctx.error("int16 SUM needs zero points of 0")
        try:
            mult, shift = quantize_multiplier(float(np.float32(in_scale)) / float(np.float32(out_scale)))
        except ValueError as exc:
            raise ctx.error(f"scales give no usable multiplier: {exc}") from None
        info = np.iinfo(x.dtype)
        qmin, qmax = int(info.min), int(info.max)
        if x.dtype == np.int8:
            # LiteRT's reference SUM reads int8 data as uint8 (reduce.cc hands
            # GetTensorData<uint8_t> to QuantizedMeanOrSum for every 8-bit type), a bug;
            # int8 follows its optimized kernel instead, which sums the true values and
            # rescales in float32.
            def run(inputs, outputs):
                outputs[0][...] = ref.sum_int8_float_rescale(inputs[0], axes, r, in_scale, in_zp, out_scale,
                                                             out_zp).reshape(out_shape)
        elif ctx.backend == "numpy" or r == 0:
            def run(inputs, outputs):
                if r == 0:
                    outputs[0].fill(0)
                    return
                outputs[0][...] = ref.mean_quantized(inputs[0], axes, r, in_zp, mult, shift, out_zp,
                                                     qmin, qmax).reshape(out_shape)
        else:
            from ..kernels import reduce as kern

            def run(inputs, outputs):
                v = inputs[0]
                if perm is not None:
                    v = np.ascontiguousarray(v.transpose(perm))
                kern.mean_quantized(v.reshape(a, r, b), outputs[0].reshape(a, b), in_zp, mult, shift,
                                    out_zp, qmin, qmax)
        return Prepared((out_shape,), run)

    def run(inputs, outputs):
        outputs[0][...] = ref.reduce_sum(inputs[0], axes).reshape(out_shape)

    return Prepared((out_shape,), run)


@register(BuiltinOperator.REDUCE_MAX, BuiltinOperator.REDUCE_MIN)
def prepare_reduce_max(ctx: OpContext) -> Prepared:
    """REDUCE_MAX / REDUCE_MIN over constant axes; quantized inputs keep their scale and zero point
    (TFLite requires the output's to be equal) and compare as raw integers."""
    x, out, axes, out_shape, _ = _reducer_shapes(ctx)
    if x.type not in (TensorType.FLOAT32, TensorType.INT32, TensorType.INT64, TensorType.UINT8,
                      TensorType.INT8, TensorType.INT16, TensorType.BOOL):
        raise ctx.error(f"input type {x.type.name} is not supported")
    if x.dtype in _QUANTIZED and (x.is_quantized or out.is_quantized):
        if _quant(ctx, x, "input") != _quant(ctx, out, "output"):
            raise ctx.error("input and output scale and zero point must be equal (TFLite's requirement)")
        if x.type == TensorType.INT16 and _quant(ctx, x, "input")[1] != 0:
            raise ctx.error("int16 data must have zero point 0 (TFLite's requirement)")

    reduce = ref.reduce_min if ctx.opcode == BuiltinOperator.REDUCE_MIN else ref.reduce_max

    def run(inputs, outputs):
        outputs[0][...] = reduce(inputs[0], axes).reshape(out_shape)

    return Prepared((out_shape,), run)
