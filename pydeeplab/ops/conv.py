"""Convolutions: CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV (float32, uint8, int8).

Prepare follows TFLite's ``conv.cc``, ``depthwise_conv.cc``, ``transpose_conv.cc``
and ``kernel_util.cc`` (``PopulateConvolutionQuantizationParams``): output size and
padding as ``ComputePaddingHeightWidth``; uint8 models (TF1 / Coral) carry one
filter scale and zero point, int8 models (the TF2 converter) symmetric filters
with one scale per output channel; bias is float32 or int32 with zero point 0.
Weights and bias must be constant (every converted DeepLab has them so): they
are re-laid-out once, at plan time.

The two backends compute the same numbers (see ``pydeeplab.reference.conv`` for
the semantics and why float64 products of quantized values are exact):

- ``numpy``: the reference functions (TFLite's tap loop, over blocks of output rows).
- ``numba``: the runners of ``kernels/conv_plan.py`` (weights laid out for the
  kernels, scratch memory, argument lists). CONV_2D is one Numba kernel per call: each thread takes blocks of
  output rows through im2col into its scratch rows, a product in that thread (float:
  BLAS sgemm, then the fused bias + activation; uint8/int8: ``kernels/igemm.py``, uint8 x int8
  with corrections, summed in int32 exactly as TFLite's accumulator and requantized in registers,
  ``kernels/requantize.py``'s arithmetic). DEPTHWISE_CONV_2D is a Numba kernel; TRANSPOSE_CONV a
  NumPy product between Numba kernels. A quantized depthwise sum (or transposed
  product) runs in float32 instead of float64 (twice as fast) when the weights prove
  that no partial sum can exceed 2**24, where float32 still counts integers exactly.
"""

from __future__ import annotations

import numpy as np

from ..quantization import activation_range_float, activation_range_quantized, conv_output_multipliers
from ..reference import conv as reference
from ..reference.conv import FloatStage, HybridStage, QuantizedStage, Stage
from ..tflite.options import Conv2DOptions, DepthwiseConv2DOptions, TransposeConvOptions
from ..tflite.schema import Activation, BuiltinOperator, TensorType
from .base import OpContext, Prepared, TensorSpec, register
from .padding import MAX_WINDOW, compute_padding_hw

_DATA_TYPES = (TensorType.FLOAT32, TensorType.UINT8, TensorType.INT8)

# --------------------------------------------------------------------------- checks


def _spec(ctx: OpContext, i: int) -> TensorSpec | None:
    return ctx.inputs[i] if i < len(ctx.inputs) else None


def _check_rank4(ctx: OpContext, spec: TensorSpec, what: str) -> None:
    if len(spec.shape) != 4:
        raise ctx.error(f"{what} must have 4 dimensions, has shape {spec.shape}")
    if min(spec.shape[1:]) <= 0:
        raise ctx.error(f"{what} has an empty dimension: shape {spec.shape}")


def _hybrid(x: TensorSpec, w: TensorSpec) -> bool:
    """Whether a convolution is hybrid: float32 input, int8 filter (dynamic-range quantization)."""
    return x.type == TensorType.FLOAT32 and w.type == TensorType.INT8


def _check_types(ctx: OpContext, x: TensorSpec, w: TensorSpec, out: TensorSpec, hybrid_ok: bool = False) -> None:
    if x.type not in _DATA_TYPES:
        raise ctx.error(f"input type {x.type.name} is not supported (FLOAT32, UINT8, INT8)")
    if out.type != x.type:
        raise ctx.error(f"output type {out.type.name} differs from input type {x.type.name}")
    if w.type != x.type and not (hybrid_ok and _hybrid(x, w)):
        what = "hybrid quantization: float32 input takes an INT8 filter" if hybrid_ok else "hybrid quantization"
        raise ctx.error(f"filter type {w.type.name} with input type {x.type.name} is not supported ({what})")


def _window(ctx: OpContext, opts, dilated: bool) -> tuple[tuple[int, int], tuple[int, int]]:
    """(stride, dilation) as (h, w) pairs, checked positive."""
    stride = (int(opts.stride_h), int(opts.stride_w))
    dilation = (int(opts.dilation_h_factor), int(opts.dilation_w_factor)) if dilated else (1, 1)
    if min(stride) <= 0:
        raise ctx.error(f"strides must be positive, got {stride[0]}x{stride[1]}")
    if min(dilation) <= 0 or max(dilation) > MAX_WINDOW:
        raise ctx.error(f"dilation factors must be in 1..{MAX_WINDOW}, got {dilation[0]}x{dilation[1]}")
    return stride, dilation


def _conv_operands(ctx: OpContext, options_class: type):
    """The checks CONV_2D and DEPTHWISE_CONV_2D share: (options, input, filter, output, filter values)."""
    ctx.expect_io((2, 3))
    opts = ctx.options_as(options_class)
    x, w, out = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
    _check_rank4(ctx, x, "input")
    _check_rank4(ctx, w, "filter")
    _check_types(ctx, x, w, out, hybrid_ok=True)
    return opts, x, w, out, ctx.constant(1, "the filter")


def _geometry(ctx: OpContext, opts, in_hw: tuple[int, int], filter_hw: tuple[int, int]):
    """(stride, dilation, padding before, output size), each an (h, w) pair, of a dilated conv."""
    stride, dilation = _window(ctx, opts, dilated=True)
    pad_h, pad_w = compute_padding_hw(opts.padding, in_hw, filter_hw, stride, dilation)
    if pad_h.out <= 0 or pad_w.out <= 0:
        raise ctx.error(f"filter {filter_hw[0]}x{filter_hw[1]} (dilation {dilation[0]}x{dilation[1]}) does not "
                        f"fit the {in_hw[0]}x{in_hw[1]} input with {opts.padding.name} padding")
    return stride, dilation, (pad_h.before, pad_w.before), (pad_h.out, pad_w.out)


def _bias(ctx: OpContext, i: int, n_out: int, x: TensorSpec, zero_point_checked: bool) -> np.ndarray | None:
    """The bias values (float32 or int32 [n_out], contiguous) or None when absent."""
    spec = _spec(ctx, i)
    if spec is None:
        return None
    data = ctx.constant(i, "the bias")
    want = TensorType.FLOAT32 if x.type == TensorType.FLOAT32 else TensorType.INT32
    if spec.type != want:
        raise ctx.error(f"bias type {spec.type.name} must be {want.name} for {x.type.name} input")
    if data.size != n_out:
        raise ctx.error(f"bias has {data.size} elements for {n_out} output channels")
    if zero_point_checked and spec.quantization is not None and np.any(spec.quantization.zero_points != 0):
        raise ctx.error("bias zero point must be 0")
    return np.ascontiguousarray(data.reshape(n_out))


def _stage(ctx: OpContext, x: TensorSpec, w: TensorSpec, bias: TensorSpec | None, out: TensorSpec,
           act: Activation, n_out: int, channel_axis: int) -> Stage:
    """The output stage: float clamp bounds, or every integer constant of a quantized conv."""
    if _hybrid(x, w):
        return _hybrid_stage(ctx, w, act, n_out, channel_axis)
    if x.type == TensorType.FLOAT32:
        return FloatStage(*activation_range_float(act))
    for spec, what in ((x, "input"), (w, "filter"), (out, "output")):
        if not spec.is_quantized:
            raise ctx.error(f"{what} of a {x.type.name} convolution has no quantization parameters")
    wq = w.quantization
    if wq.scales.size not in (1, n_out):
        raise ctx.error(f"filter has {wq.scales.size} scales for {n_out} output channels")
    if wq.scales.size > 1:
        if x.type != TensorType.INT8:
            raise ctx.error(f"per-channel filter quantization needs INT8 tensors, not {x.type.name}")
        if wq.quantized_dimension != channel_axis:
            raise ctx.error(f"per-channel filter quantization must be along dimension {channel_axis}, "
                            f"not {wq.quantized_dimension}")
    for spec, what in ((x, "input"), (out, "output")):
        if not spec.quantization.scale > 0:
            why = (" (it has one per channel; TFLite's per-tensor scale of such a tensor is 0)"
                   if spec.quantization.scales.size > 1 else "")
            raise ctx.error(f"{what} quantization scale must be positive, is {spec.quantization.scale:g}{why}")
    if not np.all(wq.scales > 0):
        raise ctx.error("filter quantization scales must be positive")
    if x.type == TensorType.INT8 and np.any(wq.zero_points != 0):
        raise ctx.error("int8 filter zero points must be 0 (symmetric quantization)")
    s_in, s_out = x.quantization.scale, out.quantization.scale
    if x.type == TensorType.UINT8 and bias is not None:
        # GetQuantizedConvolutionMultipler: the bias must be on the input x filter scale.
        product = np.float64(s_in) * np.float64(wq.scale)
        b_scale = np.float64(bias.quantization.scale) if bias.quantization is not None else 0.0
        if abs(product - b_scale) / np.float64(s_out) > 0.02:
            raise ctx.error(f"bias scale {b_scale:g} is not input scale x filter scale ({product:g})")
    try:
        mult, shift = conv_output_multipliers(s_in, wq.scales, s_out, x.dtype)
        lo, hi = activation_range_quantized(act, s_out, out.quantization.zero_point, out.dtype)
    except ValueError as exc:
        raise ctx.error(f"bad quantization parameters: {exc}") from None
    w_zp = wq.zero_point if x.type == TensorType.UINT8 else 0
    return QuantizedStage(
        input_zero_point=x.quantization.zero_point, weight_zero_point=w_zp,
        multiplier=np.ascontiguousarray(np.broadcast_to(mult, (n_out,)), dtype=np.int32),
        shift=np.ascontiguousarray(np.broadcast_to(shift, (n_out,)), dtype=np.int32),
        output_zero_point=out.quantization.zero_point, act_min=lo, act_max=hi)


def _hybrid_stage(ctx: OpContext, w: TensorSpec, act: Activation, n_out: int, channel_axis: int,
                  transpose: bool = False) -> HybridStage:
    """A hybrid convolution's stage, as TFLite's ``conv.cc``, ``depthwise_conv.cc`` and
    ``transpose_conv.cc`` choose the path.

    CONV_2D: filter scales that differ from channel to channel take ``EvalHybridPerChannel`` (the
    input quantized with a zero point), one scale (or all equal) ``EvalHybrid`` (symmetric input, the
    first scale). DEPTHWISE_CONV_2D has the per-channel path only: one scale per output channel.
    TRANSPOSE_CONV too, a single scale standing for every channel. Filter zero points are not read
    (TFLite's hybrid kernels take the filter as symmetric)."""
    q = w.quantization
    if q is None or q.scales.size == 0:
        raise ctx.error("the int8 filter of a hybrid (float32) convolution has no quantization scales")
    scales = np.asarray(q.scales, dtype=np.float32)
    lo, hi = activation_range_float(act)
    depthwise = channel_axis == 3
    if transpose and scales.size == 1:
        scales = np.full(n_out, scales[0], np.float32)
    per_channel = depthwise or transpose or bool(np.any(scales != scales[0]))
    if per_channel and (scales.size != n_out or (q.quantized_dimension != channel_axis and q.scales.size > 1)):
        raise ctx.error(f"a hybrid {'depthwise ' if depthwise else ''}convolution needs one filter scale per output "
                        f"channel along dimension {channel_axis} ({n_out}), has {scales.size} along "
                        f"dimension {q.quantized_dimension}")
    filter_scales = scales if per_channel else np.full(n_out, scales[0], np.float32)
    return HybridStage(np.ascontiguousarray(filter_scales), lo, hi, asymmetric=per_channel,
                       scale_first=per_channel and not depthwise)


def _hybrid_run(function, weights: np.ndarray, bias: np.ndarray | None, stage: HybridStage, *geometry,
                input_index: int = 0):
    """The run of a hybrid convolution: each image of the batch quantized (as TFLite does, one set of
    parameters an image), then the reference ``function`` on the int8 values."""

    def run(inputs, outputs) -> None:
        x, out = inputs[input_index], outputs[0]
        for b in range(x.shape[0]):
            q, at = stage.for_input(x[b : b + 1])
            function(q, weights, bias, out[b : b + 1], *geometry, at)

    return run


def _hybrid_runner(ctx: OpContext, reference_function, float_runner, weights: np.ndarray, bias: np.ndarray | None,
                   stage: HybridStage, channel_axis: int, *geometry):
    """The run of a hybrid CONV_2D or DEPTHWISE_CONV_2D. On the numba backend (``kernels/hybrid.py``),
    where the weights keep every partial sum an exact float32 integer: the input quantized image by
    image and written as float32 ``q - zp``, the float convolution ``float_runner(weights, stage)`` (the
    weights as float32, no bias, no clamp) summing the integers exactly, then the sums scaled in
    place. Elsewhere, the reference ``reference_function`` (:func:`_hybrid_run`)."""
    from ..kernels import hybrid as kern

    bound = 255 if stage.asymmetric else 127  # largest |q - zp|
    if ctx.backend != "numba" or not kern.exact_in_float32(weights, channel_axis, bound):
        return _hybrid_run(reference_function, weights, bias, stage, *geometry)
    from ..kernels.parallel import ELEMENT_WORK, in_parallel, numba_threads
    from ..reference.quantize import hybrid_input
    from .elementwise import _view

    float_run = float_runner(weights.astype(np.float32), FloatStage(*activation_range_float(Activation.NONE)))
    (n, h, w, c), cout = ctx.inputs[0].shape, weights.shape[channel_axis]
    centered = np.empty((n, h * w, c), np.float32)
    b = np.zeros(cout, np.float32) if bias is None else bias.astype(np.float32)
    lo, hi = np.float32(stage.act_min), np.float32(stage.act_max)
    center, rescale = in_parallel(kern.center), in_parallel(kern.rescale)

    def run(inputs, outputs) -> None:
        x, out = inputs[0].reshape(n, h * w, c), outputs[0]
        sums = _view(out, (n, -1, cout))
        nt = min(numba_threads(x[0].size * ELEMENT_WORK), h * w)
        factors = []
        for k in range(n):
            p = hybrid_input(x[k].min(), x[k].max(), stage.asymmetric)  # (NumPy's are vectorized; NaN passes)
            center(x[k], p.inverse, p.zero_point, p.low, p.high, centered[k], nt=nt)
            factors.append(p.factor)
        float_run([centered.reshape(n, h, w, c)], outputs)
        for k, factor in enumerate(factors):
            rescale(sums[k], factor, stage.filter_scales, stage.filter_scales * factor, b, stage.scale_first, lo, hi,
                    nt=min(numba_threads(sums[k].size * ELEMENT_WORK), sums.shape[1]))

    return run


def _kernels_take(weights: np.ndarray) -> bool:
    """Whether the numba backend's kernels compute this filter's convolution as TFLite does. Not a
    float filter holding a NaN or an infinity: the kernels multiply the zero padding around the
    input too (``0 * inf`` is NaN), where TFLite skips the taps outside it, as the reference does."""
    return weights.dtype.kind != "f" or bool(np.isfinite(weights).all())


def _numba():
    """The Numba side of the convolutions (weights laid out for the kernels, scratch memory,
    argument packs): imported on first use, so that the numpy backend needs no Numba."""
    from ..kernels import conv_plan

    return conv_plan


# --------------------------------------------------------------------------- CONV_2D


def _conv_2d_plan(ctx: OpContext):
    """CONV_2D's checks and constants: (weights, bias, stage, stride, dilation, padding, output shape)."""
    opts, x, w, out, weights = _conv_operands(ctx, Conv2DOptions)
    n, h, wd, cin = x.shape
    cout, kh, kw, w_cin = w.shape
    if cout <= 0:
        raise ctx.error(f"filter has no output channels: shape {w.shape}")
    if w_cin != cin:
        grouped = " (grouped convolution is not supported)" if cin % w_cin == 0 else ""
        raise ctx.error(f"filter has {w_cin} input channels, the input has {cin}{grouped}")
    stride, dilation, padding, (oh, ow) = _geometry(ctx, opts, (h, wd), (kh, kw))
    bias = _bias(ctx, 2, cout, x, zero_point_checked=True)
    stage = _stage(ctx, x, w, _spec(ctx, 2), out, opts.fused_activation_function, cout, channel_axis=0)
    return weights, bias, stage, stride, dilation, padding, (n, oh, ow, cout)


@register(BuiltinOperator.CONV_2D)
def prepare_conv_2d(ctx: OpContext) -> Prepared:
    """CONV_2D: inputs (input [N, H, W, Cin], filter [Cout, KH, KW, Cin], bias [Cout] optional).

    TFLite itself requires the bias; a bias-less conv is accepted here as bias 0.
    Grouped convolutions (Cin a multiple of the filter's depth) are not supported.
    """
    weights, bias, stage, stride, dilation, padding, out_shape = _conv_2d_plan(ctx)
    if isinstance(stage, HybridStage):
        run = _hybrid_runner(ctx, reference.conv_2d, lambda w, sums: _numba().conv_2d_runner(
            w, None, sums, stride, dilation, padding, out_shape), weights, bias, stage, 0, stride, dilation, padding)
    elif ctx.backend == "numba" and _kernels_take(weights):
        run = _numba().conv_2d_runner(weights, bias, stage, stride, dilation, padding, out_shape)
    else:

        def run(inputs, outputs) -> None:
            reference.conv_2d(inputs[0], weights, bias, outputs[0], stride, dilation, padding, stage)

    return Prepared((out_shape,), run)


def fused_hard_swish_conv(ctx: OpContext):
    """The run of a float CONV_2D (``ctx``, numba backend, no fused activation) followed by a
    HARD_SWISH, where the conv's kernel applies it to its sums (``pydeeplab.fusion``), else None."""
    weights, bias, stage, stride, dilation, padding, out_shape = _conv_2d_plan(ctx)
    if not _kernels_take(weights):
        return None
    return _numba().conv_2d_runner(weights, bias, stage, stride, dilation, padding, out_shape, hard_swish=True)


def fused_conv_add(ctx: OpContext, bounds: tuple[float, float]):
    """The run of a float CONV_2D (``ctx``, numba backend) followed by an ADD of another tensor of its
    output's shape whose activation clamps to ``bounds`` (``pydeeplab.fusion``): inputs (the conv's
    input, the other tensor), output the ADD's; None where the conv's kernel cannot add (only the 1x1 tile)."""
    weights, bias, stage, stride, dilation, padding, out_shape = _conv_2d_plan(ctx)
    return _numba().conv_2d_runner(weights, bias, stage, stride, dilation, padding, out_shape, residual=bounds)


def fused_squeeze_excite(pool: OpContext, convs: list[OpContext]):
    """The run of a squeeze-and-excite gate (``pydeeplab.fusion``, numba backend): the global float
    AVERAGE_POOL_2D ``pool``, the float 1x1 CONV_2Ds ``convs`` after it, then a LOGISTIC, as one
    step that reads the pool's input and writes the LOGISTIC's output (the same bits); None where
    the kernels cannot."""
    from .pool import sums_columns

    x = pool.inputs[0]
    bounds = activation_range_float(pool.options.fused_activation_function)
    return _numba().squeeze_excite_runner(tuple(x.shape), sums_columns(x.shape[3]), bounds,
                                          [_conv_2d_plan(conv)[:3] for conv in convs])


def fused_pooled_projection(ctx: OpContext, varying: tuple[int, int], pooled: list[tuple[int, int]]):
    """The run of a float 1x1 stride-1 CONV_2D (``ctx``, numba backend) over a concatenation along the
    channels whose parts other than ``varying`` (first channel, channels) are the same at every pixel
    (``pooled``: theirs): ASPP's projection after the image-pooling branch (``pydeeplab.fusion``).

    The run reads the varying part, then the pooled parts as [1, 1, 1, channels] tensors. Their
    channels' weights times their values are the same at every output pixel: added to the bias
    at each run (a product of 256 x 256 for DeepLab's), the conv sums the varying part's channels
    only (half of DeepLab v3's 33x33 512 -> 256 projection). The sums are the conv's, in another
    order: within float tolerance.
    """
    weights, bias, stage, _, _, _, out_shape = _conv_2d_plan(ctx)
    cout = out_shape[3]
    base = np.zeros(cout, np.float32) if bias is None else bias.astype(np.float32)
    matrix = weights.reshape(cout, -1).astype(np.float32)
    start, size = varying
    conv = _numba().pointwise_bias_input_runner(matrix[:, start : start + size].reshape(cout, 1, 1, size),
                                                stage, out_shape)
    pooled_weights = [np.ascontiguousarray(matrix[:, a : a + n]) for a, n in pooled]

    def run(inputs, outputs) -> None:
        bias = base.copy()
        for m, v in zip(pooled_weights, inputs[1:]):
            bias += m @ v.reshape(-1)
        conv([inputs[0], bias], outputs)

    return run


# --------------------------------------------------------------------------- DEPTHWISE_CONV_2D


@register(BuiltinOperator.DEPTHWISE_CONV_2D)
def prepare_depthwise_conv_2d(ctx: OpContext) -> Prepared:
    """DEPTHWISE_CONV_2D: inputs (input [N, H, W, C], filter [1, KH, KW, C * M], bias optional).

    The depth multiplier M is the filter depth over the input depth, as TFLite
    computes it at Eval (the ``depth_multiplier`` option is redundant and ignored).
    """
    opts, x, w, out, weights = _conv_operands(ctx, DepthwiseConv2DOptions)
    n, h, wd, cin = x.shape
    one, kh, kw, cout = w.shape
    if one != 1:
        raise ctx.error(f"depthwise filter must have shape [1, KH, KW, C*M], has {w.shape}")
    if cout % cin != 0:
        raise ctx.error(f"filter depth {cout} is not a multiple of the input depth {cin}")
    stride, dilation, padding, (oh, ow) = _geometry(ctx, opts, (h, wd), (kh, kw))
    bias = _bias(ctx, 2, cout, x, zero_point_checked=True)
    stage = _stage(ctx, x, w, _spec(ctx, 2), out, opts.fused_activation_function, cout, channel_axis=3)
    out_shape = (n, oh, ow, cout)
    if isinstance(stage, HybridStage):
        if opts.depth_multiplier * cin != cout:  # (the hybrid kernel reads the option, the others the shapes)
            raise ctx.error(f"depth_multiplier {opts.depth_multiplier} with {cin} input channels does not make "
                            f"the filter's {cout} (a hybrid depthwise convolution reads the option)")
        run = _hybrid_runner(ctx, reference.depthwise_conv_2d, lambda w, sums: _numba().depthwise_conv_2d_runner(
            w, None, sums, stride, dilation, padding, np.dtype(np.float32), cin, wd, ow), weights, bias, stage, 3,
                             stride, dilation, padding)
    elif ctx.backend == "numba" and _kernels_take(weights):
        run = _numba().depthwise_conv_2d_runner(weights, bias, stage, stride, dilation, padding, x.dtype, cin, wd,
                                                 ow)
    else:

        def run(inputs, outputs) -> None:
            reference.depthwise_conv_2d(inputs[0], weights, bias, outputs[0], stride, dilation, padding, stage)

    return Prepared((out_shape,), run)


# --------------------------------------------------------------------------- TRANSPOSE_CONV


@register(BuiltinOperator.TRANSPOSE_CONV)
def prepare_transpose_conv(ctx: OpContext) -> Prepared:
    """TRANSPOSE_CONV: inputs (output_shape int32 [4], filter [Cout, KH, KW, Cin],
    input [N, H, W, Cin], bias [Cout] optional). The output shape must be constant."""
    ctx.expect_io((3, 4))
    opts = ctx.options_as(TransposeConvOptions)
    shape_spec, w, x, out = ctx.inputs[0], ctx.inputs[1], ctx.inputs[2], ctx.outputs[0]
    if shape_spec.type != TensorType.INT32:
        raise ctx.error(f"output shape tensor must be INT32, is {shape_spec.type.name}")
    out_shape = tuple(int(v) for v in ctx.constant(0, "the output shape").reshape(-1))
    if len(out_shape) != 4:
        raise ctx.error(f"output shape must have 4 elements, has {len(out_shape)}")
    _check_rank4(ctx, x, "input")
    _check_rank4(ctx, w, "filter")
    _check_types(ctx, x, w, out, hybrid_ok=True)
    weights = ctx.constant(1, "the filter")
    n, h, wd, cin = x.shape
    cout, kh, kw, w_cin = w.shape
    if w_cin != cin:
        raise ctx.error(f"filter has {w_cin} input channels, the input has {cin}")
    if out_shape[0] != n or out_shape[3] != cout or min(out_shape[1:3]) <= 0:
        raise ctx.error(f"output shape {list(out_shape)} does not fit batch {n} and {cout} filters")
    stride, _ = _window(ctx, opts, dilated=False)
    pad_h, pad_w = compute_padding_hw(opts.padding, out_shape[1:3], (kh, kw), stride)
    if (pad_h.out, pad_w.out) != (h, wd):
        raise ctx.error(f"a {out_shape[1]}x{out_shape[2]} output with filter {kh}x{kw}, stride "
                        f"{stride[0]}x{stride[1]} and {opts.padding.name} padding needs a "
                        f"{pad_h.out}x{pad_w.out} input, not {h}x{wd}")
    bias = _bias(ctx, 3, cout, x, zero_point_checked=x.type == TensorType.INT8)
    padding = (pad_h.before, pad_w.before)
    if _hybrid(x, w):
        # (TFLite's HybridTransposeConv adds each product already scaled, in float32; this sums the
        # integers first, then scales: the same value to float rounding.)
        stage = _hybrid_stage(ctx, w, opts.fused_activation_function, cout, 0, transpose=True)
        return Prepared((out_shape,), _hybrid_run(reference.transpose_conv, weights, bias, stage, stride, padding,
                                                  input_index=2))
    stage = _stage(ctx, x, w, _spec(ctx, 3), out, opts.fused_activation_function, cout, channel_axis=0)
    if ctx.backend == "numba":
        run = _numba().transpose_conv_runner(weights, bias, stage, stride, padding, x.shape, out_shape)
    else:

        def run(inputs, outputs) -> None:
            reference.transpose_conv(inputs[2], weights, bias, outputs[0], stride, padding, stage)

    return Prepared((out_shape,), run)
