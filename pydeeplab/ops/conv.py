"""Convolutions: CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV (float32, uint8, int8).

Prepare follows TFLite's ``conv.cc``, ``depthwise_conv.cc``, ``transpose_conv.cc``
and ``kernel_util.cc`` (``PopulateConvolutionQuantizationParams``): output size and
padding as ``ComputePaddingHeightWidth``; uint8 models (TF1 / Coral) carry one
filter scale and zero point, int8 models (the TF2 converter) symmetric filters
with one scale per output channel; bias is float32 or int32 with zero point 0.
Weights and bias must be constant (every converted DeepLab has them so): they
are re-laid-out once here.

The two backends compute the same numbers (see ``pydeeplab.reference.conv`` for
the semantics and why float64 products of quantized values are exact):

- ``numpy``: the reference functions, unblocked.
- ``numba``: CONV_2D is one Numba kernel per call: each thread takes blocks of
  output rows through im2col into its scratch rows, a BLAS product called from
  that thread, and the fused bias + activation or requantization.
  DEPTHWISE_CONV_2D is a Numba kernel; TRANSPOSE_CONV a NumPy product between
  Numba kernels. A quantized product (or depthwise sum) runs in float32 instead of
  float64 (twice as fast) when the weights prove that no partial sum can exceed
  2**24, where float32 still counts integers exactly.
"""

from __future__ import annotations

import threading

import numpy as np

from ..quantization import activation_range_float, activation_range_quantized, conv_output_multipliers
from ..reference import conv as reference
from ..reference.conv import FloatStage, QuantizedStage, Stage
from ..tflite.options import Conv2DOptions, DepthwiseConv2DOptions, TransposeConvOptions
from ..tflite.schema import Activation, BuiltinOperator, TensorType
from .base import OpContext, Prepared, Run, TensorSpec, register
from .padding import MAX_WINDOW, compute_padding_hw

_DATA_TYPES = (TensorType.FLOAT32, TensorType.UINT8, TensorType.INT8)

#: A block of output rows (one im2col + product + output stage) holds about this many
#: elements of its widest matrix (cache-sized: measured best at 2**15 on the DeepLab
#: convolutions with 8 to 144 channels) ...
_BLOCK_ELEMENTS = 1 << 15
#: ... but at least this many pixels, below which BLAS spends its time re-packing the
#: filter (measured on the 33x33 convolutions with 320 to 960 channels).
_BLOCK_PIXELS = 256
#: A float conv with at most this many taps (KH * KW * Cin, e.g. a first conv on RGB)
#: gathers its im2col rows value by value (``kernels.conv.conv_float_small``): its
#: runs of adjacent input values are too short for copying them to pay.
_SMALL_DEPTH = 32
#: Float depthwise layers with fewer channels than this (too few for a loop over one
#: pixel's channels) stream runs of _DEPTHWISE_RUN values with stride 1.
_DEPTHWISE_NARROW = 32
_DEPTHWISE_RUN = 256


# --------------------------------------------------------------------------- checks


def _spec(ctx: OpContext, i: int) -> TensorSpec | None:
    return ctx.inputs[i] if i < len(ctx.inputs) else None


def _check_rank4(ctx: OpContext, spec: TensorSpec, what: str) -> None:
    if len(spec.shape) != 4:
        raise ctx.error(f"{what} must have 4 dimensions, has shape {spec.shape}")
    if min(spec.shape[1:]) <= 0:
        raise ctx.error(f"{what} has an empty dimension: shape {spec.shape}")


def _check_types(ctx: OpContext, x: TensorSpec, w: TensorSpec, out: TensorSpec) -> None:
    if x.type not in _DATA_TYPES:
        raise ctx.error(f"input type {x.type.name} is not supported (FLOAT32, UINT8, INT8)")
    if out.type != x.type:
        raise ctx.error(f"output type {out.type.name} differs from input type {x.type.name}")
    if w.type != x.type:
        raise ctx.error(f"filter type {w.type.name} with input type {x.type.name} is not supported "
                        "(hybrid quantization)")


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
    opts = ctx.options if ctx.options is not None else options_class()
    x, w, out = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
    _check_rank4(ctx, x, "input")
    _check_rank4(ctx, w, "filter")
    _check_types(ctx, x, w, out)
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
    if not (np.all(wq.scales > 0) and x.quantization.scale > 0 and out.quantization.scale > 0):
        raise ctx.error("quantization scales must be positive")
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


# --------------------------------------------------------------------------- numba plumbing


class _Workspace(threading.local):
    """Per-thread scratch buffers that grow to the largest request and are reused.

    One buffer per slot and dtype, shared by every operator that runs in the thread:
    operators run one after the other, so the scratch memory of a whole model is
    that of its largest operator rather than the sum over operators.
    """

    def __init__(self) -> None:
        self.buffers: dict[tuple[int, np.dtype], np.ndarray] = {}

    def get(self, slot: int, dtype, shape: tuple[int, ...]) -> np.ndarray:
        dtype = np.dtype(dtype)
        size = int(np.prod(shape))
        buf = self.buffers.get((slot, dtype))
        if buf is None or buf.size < size:
            buf = np.empty(size, dtype=dtype)
            self.buffers[(slot, dtype)] = buf
        return buf[:size].reshape(shape)


_WORKSPACE = _Workspace()


def _kernels():
    """The Numba kernels, imported on first use so that the numpy backend needs no Numba."""
    from ..kernels import conv

    return conv


def _numba_threads() -> int:
    """Numba's thread count for this thread (set by the interpreter): the chunks a kernel splits into."""
    import numba

    return numba.get_num_threads()


def _acc_bound(stage: QuantizedStage, centered: np.ndarray, x_dtype: np.dtype) -> np.ndarray:
    """How large an accumulator can grow, per output channel (float64 [Cout]).

    centered: [Cout, K], the filter minus its zero point; a sum of products is at most
    max|x - x_zp| * sum_k |w[o, k] - w_zp| in magnitude, partial sums included.
    """
    info = np.iinfo(x_dtype)
    x_max = max(stage.input_zero_point - int(info.min), int(info.max) - stage.input_zero_point)
    return x_max * np.abs(centered).sum(axis=1)


def _exact_dtype(bound: np.ndarray) -> np.dtype:
    """float32 when it counts every partial sum of the product exactly (all within
    ``bound``, see :func:`_acc_bound`), else float64: integers up to 2**24 are exact in
    float32 whatever the order of the additions."""
    return np.dtype(np.float32) if float(bound.max(initial=0.0)) <= 2**24 else np.dtype(np.float64)


def _numba_stage_args(stage: Stage, bias: np.ndarray | None, n_out: int, acc_bound: np.ndarray | None = None,
                      table: bool = True):
    """The bias (never None) and the output stage as the kernels take them: float clamp
    bounds; or the requantization table (``table=True``, the conv kernels: ``acc_bound``
    per channel, see :func:`_acc_bound`, tells where the int32 sum cannot wrap) or its
    three arrays (multiplier, left and right shifts: ``kernels.conv.requantize``), then
    the output zero point and clamp bounds."""
    if isinstance(stage, FloatStage):
        b = np.zeros(n_out, np.float32) if bias is None else bias.astype(np.float32)
        return b, (np.float32(stage.act_min), np.float32(stage.act_max))
    b = np.zeros(n_out, np.int32) if bias is None else bias.astype(np.int32)
    left = np.maximum(stage.shift, 0).astype(np.int64)
    right = np.maximum(-stage.shift, 0).astype(np.int64)
    if table:
        bound = np.full(n_out, np.inf) if acc_bound is None else acc_bound + np.abs(b.astype(np.float64))
        rescale = (_kernels().requant_table(stage.multiplier, left, right, bound),)
    else:
        rescale = (stage.multiplier, left, right)
    return b, (*rescale, stage.output_zero_point, stage.act_min, stage.act_max)


def _aligned(values: np.ndarray, dtype) -> np.ndarray:
    """A C-contiguous copy of ``values`` as ``dtype`` starting on a 64-byte boundary.

    The depthwise kernels load whole vectors of channels from the filter at every
    pixel; a vector that straddles two cache lines costs two loads (measured: 30%
    slower depthwise convolutions with 16-byte-aligned filters).
    """
    dtype = np.dtype(dtype)
    raw = np.empty(values.size * dtype.itemsize + 64, np.uint8)
    start = -raw.ctypes.data % 64
    out = raw[start : start + values.size * dtype.itemsize].view(dtype).reshape(values.shape)
    out[...] = values
    return out


def _with_contiguous_output(fill) -> Run:
    """run() for a ``fill(inputs, out)`` that needs a C-contiguous output (else it fills a temporary)."""

    def run(inputs, outputs) -> None:
        out = outputs[0]
        if out.flags.c_contiguous:
            fill(inputs, out)
        else:
            tmp = np.empty(out.shape, out.dtype)
            fill(inputs, tmp)
            out[...] = tmp

    return run


# --------------------------------------------------------------------------- CONV_2D


def _conv_2d_numba(weights, bias, stage, stride, dilation, padding, out_shape) -> Run:
    k = _kernels()
    cout, kh, kw, cin = weights.shape
    n, oh, ow, _ = out_shape
    depth = kh * kw * cin
    (sh, sw), (dh, dw), (pt, pl) = stride, dilation, padding
    pointwise = kh == kw == 1 and stride == (1, 1) and padding == (0, 0)
    if isinstance(stage, FloatStage):
        b, out_args = _numba_stage_args(stage, bias, cout)
        dtype = np.dtype(np.float32)
        wmat = np.ascontiguousarray(weights.reshape(cout, depth).T, dtype=dtype)
        per_pixel = 0 if pointwise else depth  # scratch: im2col rows only
    else:
        centered = weights.reshape(cout, depth).astype(np.float64) - stage.weight_zero_point
        bound = _acc_bound(stage, centered, weights.dtype)
        b, out_args = _numba_stage_args(stage, bias, cout, bound)
        dtype = _exact_dtype(bound)
        wmat = np.ascontiguousarray(centered.T, dtype=dtype)
        per_pixel = depth + cout  # scratch: im2col rows and their products
        offset = np.float32(-stage.input_zero_point)  # exact: |x - zp| <= 255
    block = max(1, -(-_BLOCK_PIXELS // ow), _BLOCK_ELEMENTS // (ow * max(depth, cout)))

    def fill(inputs, out) -> None:
        x = np.ascontiguousarray(inputs[0])
        scratch = _WORKSPACE.get(0, dtype, (_numba_threads(), block * ow * per_pixel))
        if isinstance(stage, FloatStage):
            conv = k.conv_float_small if 0 < per_pixel <= _SMALL_DEPTH else k.conv_float
            conv(x, wmat, b, out, kh, kw, sh, sw, dh, dw, pt, pl, *out_args, block, scratch)
        else:
            k.conv_quantized(x, wmat, b, out, kh, kw, sh, sw, dh, dw, pt, pl, offset, *out_args, block, scratch)

    return _with_contiguous_output(fill)


@register(BuiltinOperator.CONV_2D)
def prepare_conv_2d(ctx: OpContext) -> Prepared:
    """CONV_2D: inputs (input [N, H, W, Cin], filter [Cout, KH, KW, Cin], bias [Cout] optional).

    TFLite itself requires the bias; a bias-less conv is accepted here as bias 0.
    Grouped convolutions (Cin a multiple of the filter's depth) are not supported.
    """
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
    out_shape = (n, oh, ow, cout)
    if ctx.backend == "numba":
        run = _conv_2d_numba(weights, bias, stage, stride, dilation, padding, out_shape)
    else:

        def run(inputs, outputs) -> None:
            reference.conv_2d(inputs[0], weights, bias, outputs[0], stride, dilation, padding, stage)

    return Prepared((out_shape,), run)


# --------------------------------------------------------------------------- DEPTHWISE_CONV_2D


def _depthwise_conv_2d_numba(weights, bias, stage, stride, dilation, padding, x_dtype, cin, x_width) -> Run:
    k = _kernels()
    _, kh, kw, cout = weights.shape
    (sh, sw), (dh, dw), (pt, pl) = stride, dilation, padding
    if isinstance(stage, FloatStage):
        b, out_args = _numba_stage_args(stage, bias, cout)
        w3 = _aligned(weights.reshape(kh, kw, cout), np.float32)
        zeros = _aligned(np.zeros(cin), np.float32)
        # The 3x3 kernel's taps and bias tiled for narrow layers, which it streams in runs
        # of _DEPTHWISE_RUN values, and the zeros it reads for rows outside the input.
        reps = -(-_DEPTHWISE_RUN // cout) if cout < _DEPTHWISE_NARROW else 1
        wt = _aligned(np.tile(weights.reshape(kh * kw, cout), (1, reps)), np.float32)
        bt = _aligned(np.tile(b, reps), np.float32)
        zrow = _aligned(np.zeros(x_width * cin), np.float32)

        def fill(inputs, out) -> None:
            k.depthwise_conv_float(np.ascontiguousarray(inputs[0]), w3, zeros, b, out,
                                   sh, sw, dh, dw, pt, pl, *out_args, _numba_threads(), wt, bt, zrow)

        return _with_contiguous_output(fill)
    # Raw inputs times centered weights: the input zero point's share of every sum,
    # zp * (sum over taps of w), moves into the bias, and a tap outside the input
    # reads zp, adding exactly nothing once that share is taken off.
    centered = weights.reshape(kh, kw, cout).astype(np.float64) - stage.weight_zero_point
    b, out_args = _numba_stage_args(stage, bias, cout, _acc_bound(stage, centered.reshape(-1, cout).T, x_dtype))
    zp = stage.input_zero_point
    info = np.iinfo(x_dtype)
    raw_bound = max(-int(info.min), int(info.max)) * np.abs(centered).sum(axis=(0, 1))  # sums of raw x * w
    w3 = _aligned(centered, _exact_dtype(raw_bound))
    folded = b.astype(np.int64) - zp * centered.sum(axis=(0, 1)).astype(np.int64)
    pad = _aligned(np.full(cin, zp), x_dtype)

    def run(inputs, outputs) -> None:
        k.depthwise_conv_quantized(np.ascontiguousarray(inputs[0]), w3, pad, folded, outputs[0],
                                   sh, sw, dh, dw, pt, pl, *out_args, _numba_threads())

    return run


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
    (sh, sw), (dh, dw), (pt, pl) = stride, dilation, padding
    if ctx.backend == "numba":
        run = _depthwise_conv_2d_numba(weights, bias, stage, stride, dilation, padding, x.dtype, cin, wd)
    else:

        def run(inputs, outputs) -> None:
            reference.depthwise_conv_2d(inputs[0], weights, bias, outputs[0], stride, dilation, padding, stage)

    return Prepared((out_shape,), run)


# --------------------------------------------------------------------------- TRANSPOSE_CONV


def _transpose_conv_numba(weights, bias, stage, stride, padding, x_shape, out_shape) -> Run:
    k = _kernels()
    cout, kh, kw, cin = weights.shape
    n, h, wd, _ = x_shape
    m = n * h * wd
    b, out_args = _numba_stage_args(stage, bias, cout, table=False)
    # [Cin, KH * KW * Cout]: one product gives every tap of every input pixel.
    if isinstance(stage, FloatStage):
        dtype = np.dtype(np.float32)
        wmat = np.ascontiguousarray(weights.transpose(3, 1, 2, 0).reshape(cin, -1), dtype=dtype)
    else:
        centered = weights.astype(np.float64) - stage.weight_zero_point
        dtype = _exact_dtype(_acc_bound(stage, centered.reshape(cout, -1), weights.dtype))
        wmat = np.ascontiguousarray(centered.transpose(3, 1, 2, 0).reshape(cin, -1), dtype=dtype)
    (sh, sw), (pt, pl) = stride, padding

    def fill(inputs, out) -> None:
        x2d = inputs[2].reshape(m, cin)
        if isinstance(stage, FloatStage):
            xc = x2d
        else:
            xc = _WORKSPACE.get(0, dtype, (m, cin))
            xc[...] = x2d
            xc -= stage.input_zero_point
        taps = _WORKSPACE.get(1, dtype, (m, kh * kw * cout))
        np.matmul(xc, wmat, out=taps)
        taps4 = taps.reshape(m, kh, kw, cout)
        if isinstance(stage, FloatStage):
            k.transpose_conv_gather(taps4, h, wd, sh, sw, pt, pl, out)
            k.bias_activation(out.reshape(-1, cout), b, *out_args)
        else:
            acc = _WORKSPACE.get(2, dtype, out.shape)
            k.transpose_conv_gather(taps4, h, wd, sh, sw, pt, pl, acc)
            k.requantize(acc.reshape(-1, cout), b, *out_args, out.reshape(-1, cout))

    return _with_contiguous_output(fill)


@register(BuiltinOperator.TRANSPOSE_CONV)
def prepare_transpose_conv(ctx: OpContext) -> Prepared:
    """TRANSPOSE_CONV: inputs (output_shape int32 [4], filter [Cout, KH, KW, Cin],
    input [N, H, W, Cin], bias [Cout] optional). The output shape must be constant."""
    ctx.expect_io((3, 4))
    opts = ctx.options if ctx.options is not None else TransposeConvOptions()
    shape_spec, w, x, out = ctx.inputs[0], ctx.inputs[1], ctx.inputs[2], ctx.outputs[0]
    if shape_spec.type != TensorType.INT32:
        raise ctx.error(f"output shape tensor must be INT32, is {shape_spec.type.name}")
    out_shape = tuple(int(v) for v in ctx.constant(0, "the output shape").reshape(-1))
    if len(out_shape) != 4:
        raise ctx.error(f"output shape must have 4 elements, has {len(out_shape)}")
    _check_rank4(ctx, x, "input")
    _check_rank4(ctx, w, "filter")
    _check_types(ctx, x, w, out)
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
    stage = _stage(ctx, x, w, _spec(ctx, 3), out, opts.fused_activation_function, cout, channel_axis=0)
    padding = (pad_h.before, pad_w.before)
    if ctx.backend == "numba":
        run = _transpose_conv_numba(weights, bias, stage, stride, padding, x.shape, out_shape)
    else:

        def run(inputs, outputs) -> None:
            reference.transpose_conv(inputs[2], weights, bias, outputs[0], stride, padding, stage)

    return Prepared((out_shape,), run)
