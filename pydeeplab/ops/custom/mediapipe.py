"""MediaPipe's custom operators (mediapipe/util/tflite/operations/), float32 only as there.

- ``Convolution2DTransposeBias`` (selfie, Meet, hair segmenters): TRANSPOSE_CONV
  with a bias input. Inputs (input [N, H, W, Cin], weights [Cout, KH, KW, Cin],
  bias [Cout]); custom options ``TfLiteTransposeConvParams``: int32 padding
  (1 SAME, anything else VALID), stride_w, stride_h. The output size is MediaPipe's:
  ``stride * (in - 1) + k - pad`` with ``pad = max(0, k - (in - 1) % stride - 1)``
  under SAME (0 under VALID) and ``pad // 2`` cut at the top/left. The arithmetic
  is TFLite's TRANSPOSE_CONV, so the builtin's kernels do the work; on the numba
  backend a kernel equal to its stride (2x2, stride 2 in the segmenters) is a matrix
  product laid into the output blocks (:func:`_pixel_shuffle_run`).
- ``MaxPoolingWithArgmax2D`` (hair segmentation): MAX_POOL_2D that also returns,
  as float32, where in its window each maximum was (``y * filter_w + x + 0.1``).
- ``MaxUnpooling2D``: its inverse: each value goes to the window position its
  index names in a zeroed output ``filter`` times larger than the input.

The two pooling operators read ``TfLitePoolParams``: int32 padding (1 SAME, 2
VALID), stride_w, stride_h, filter_w, filter_h, activation (TFLite's fused
activation codes). Semantics in :mod:`pydeeplab.reference.mediapipe`.
"""

from __future__ import annotations

import struct

import numpy as np

from ...quantization import activation_range_float
from ...reference import mediapipe as ref
from ...reference.conv import FloatStage
from ...tflite.schema import Activation, TensorType
from ..base import OpContext, Prepared
from ..padding import MAX_WINDOW
from . import register_custom_op

SAME, VALID = 1, 2  # TfLitePadding


def custom_ints(ctx: OpContext, names: tuple[str, ...]) -> dict[str, int]:
    """The leading little-endian int32 fields of a C struct stored as custom options."""
    raw = ctx.custom_options or b""
    need = 4 * len(names)
    if len(raw) < need:
        raise ctx.error(f"custom options hold {len(raw)} bytes; expected at least {need} "
                        f"(int32 {', '.join(names)})")
    return dict(zip(names, struct.unpack_from(f"<{len(names)}i", raw)))


def _check_float(ctx: OpContext) -> None:
    for role, specs in (("input", ctx.inputs), ("output", ctx.outputs)):
        for k, spec in enumerate(specs):
            if spec.type != TensorType.FLOAT32:
                raise ctx.error(f"{role} {k} is {spec.type.name}; MediaPipe's kernel computes float32 only")


def _check_rank4(ctx: OpContext, i: int, what: str) -> tuple[int, int, int, int]:
    shape = ctx.inputs[i].shape
    if len(shape) != 4:
        raise ctx.error(f"{what} (input {i}) must be 4-D [N, H, W, C], has shape {list(shape)}")
    return shape


def _check_window(ctx: OpContext, opts: dict[str, int], keys: tuple[str, ...]) -> None:
    for key in keys:
        if not 1 <= opts[key] <= MAX_WINDOW:
            raise ctx.error(f"{key} is {opts[key]}; it must be between 1 and {MAX_WINDOW}")


def prepare_convolution_2d_transpose_bias(ctx: OpContext) -> Prepared:
    ctx.expect_io(3)
    _check_float(ctx)
    opts = custom_ints(ctx, ("padding", "stride_w", "stride_h"))
    _check_window(ctx, opts, ("stride_w", "stride_h"))
    n, h, w, cin = _check_rank4(ctx, 0, "the input")
    cout, kh, kw, w_cin = _check_rank4(ctx, 1, "the weights")
    if w_cin != cin:
        raise ctx.error(f"weights have {w_cin} input channels, the input has {cin}")
    if ctx.inputs[2].shape != (cout,):
        raise ctx.error(f"bias must have shape [{cout}], has {list(ctx.inputs[2].shape)}")
    weights = ctx.constant(1, "the weights")
    bias = np.ascontiguousarray(ctx.constant(2, "the bias"), dtype=np.float32)
    sh, sw = opts["stride_h"], opts["stride_w"]
    pad_h = max(0, kh - (h - 1) % sh - 1) if opts["padding"] == SAME else 0
    pad_w = max(0, kw - (w - 1) % sw - 1) if opts["padding"] == SAME else 0
    out_shape = (n, sh * (h - 1) + kh - pad_h, sw * (w - 1) + kw - pad_w, cout)
    if min(out_shape[1:3]) <= 0:
        raise ctx.error(f"a {h}x{w} input gives an empty {out_shape[1]}x{out_shape[2]} output")
    ctx.check_shape(out_shape, np.float32)
    stage = FloatStage(-np.inf, np.inf)  # MediaPipe's kernel starts from the bias and clamps nothing
    stride, padding = (sh, sw), (pad_h // 2, pad_w // 2)
    if ctx.backend == "numba" and (kh, kw) == (sh, sw) and out_shape == (n, h * kh, w * kw, cout):
        run = _pixel_shuffle_run(weights, bias, (n, h, w, cin))
    elif ctx.backend == "numba":
        from ...kernels.conv_plan import transpose_conv_runner

        transpose_conv = transpose_conv_runner(weights, bias, stage, stride, padding, (n, h, w, cin), out_shape)

        def run(inputs, outputs) -> None:
            transpose_conv((None, None, inputs[0]), outputs)  # the builtin's input order
    else:

        def run(inputs, outputs) -> None:
            ref.convolution_2d_transpose_bias(inputs[0], weights, bias, outputs[0], stride, padding)

    return Prepared((out_shape,), run)


def _pixel_shuffle_run(weights: np.ndarray, bias: np.ndarray, x_shape: tuple[int, int, int, int]):
    """The ``run`` of a transposed convolution whose kernel equals its stride, uncropped.

    Each input pixel then owns its own KH x KW block of output pixels, so the operator is
    one matrix product, [N*H*W, Cin] @ [Cin, KH*KW*Cout], whose rows are laid into the
    blocks, then the bias (the selfie segmenter's last layer: 0.15 ms against 1.6 ms
    through the general TRANSPOSE_CONV kernel, and that kernel's 1.8 s of compile on a
    cold cache saved). float32; sums in BLAS's order, within the float contract of
    MediaPipe's (bias first, then input channels in order). Its three NumPy calls on fixed arrays are
    what a replay makes again (``pydeeplab.replay``).
    """
    from ...kernels.parallel import recorded_call, replayable

    cout, kh, kw, cin = weights.shape
    n, h, w, _ = x_shape
    # Column (i, j, o) of wmat holds the weights that carry an input pixel to tap (i, j), channel o.
    wmat = np.ascontiguousarray(weights.transpose(3, 1, 2, 0).reshape(cin, kh * kw * cout), dtype=np.float32)
    taps = np.empty((n * h * w, kh * kw * cout), dtype=np.float32)
    # The KW * Cout values of one block row are contiguous in taps and in the output: moved
    # as one opaque item, the layout is a 4-D transpose (6x faster than NumPy's 6-D float one).
    row = np.dtype((np.void, kw * cout * 4))
    blocks = taps.view(row).reshape(n, h, w, kh).transpose(0, 1, 3, 2)  # [N, H, KH, W] in output order

    @replayable
    def run(inputs, outputs) -> None:
        out = outputs[0]
        if not out.flags.c_contiguous:
            raise ValueError("the output of Convolution2DTransposeBias must be a C-contiguous array")
        recorded_call(np.matmul, inputs[0].reshape(n * h * w, cin), wmat, taps)
        recorded_call(np.copyto, out.reshape(-1).view(row).reshape(n, h, kh, w), blocks)
        recorded_call(np.add, out, bias, out)

    return run


def _pool_options(ctx: OpContext) -> tuple[dict[str, int], float, float]:
    opts = custom_ints(ctx, ("padding", "stride_w", "stride_h", "filter_w", "filter_h", "activation"))
    if opts["padding"] not in (SAME, VALID):
        raise ctx.error(f"padding is {opts['padding']}; expected 1 (SAME) or 2 (VALID)")
    _check_window(ctx, opts, ("stride_w", "stride_h", "filter_w", "filter_h"))
    try:
        act = Activation(opts["activation"])
    except ValueError:
        raise ctx.error(f"unknown fused activation {opts['activation']}") from None
    return opts, *activation_range_float(act)


def _compute_padding(stride: int, in_size: int, filt: int, out_size: int) -> int:
    """TFLite's ``ComputePadding`` (dilation 1): half the total padding, never negative."""
    return max(0, ((out_size - 1) * stride + filt - in_size) // 2)


def _kernels():
    from ...kernels import mediapipe

    return mediapipe


def prepare_max_pooling_with_argmax_2d(ctx: OpContext) -> Prepared:
    ctx.expect_io(1, 2)
    _check_float(ctx)
    opts, act_min, act_max = _pool_options(ctx)
    n, h, w, c = _check_rank4(ctx, 0, "the input")
    sh, sw, fh, fw = opts["stride_h"], opts["stride_w"], opts["filter_h"], opts["filter_w"]
    if opts["padding"] == SAME:
        oh, ow = (h + sh - 1) // sh, (w + sw - 1) // sw
    else:
        oh, ow = (h - fh + sh) // sh, (w - fw + sw) // sw
    if oh <= 0 or ow <= 0:
        raise ctx.error(f"a {fh}x{fw} window with stride {sh}x{sw} gives an empty output on the {h}x{w} input")
    out_shape = (n, oh, ow, c)
    window = (fh, fw, sh, sw, _compute_padding(sh, h, fh, oh), _compute_padding(sw, w, fw, ow))
    if ctx.backend == "numba":
        kernel = _kernels().max_pool_with_argmax

        def run(inputs, outputs) -> None:
            kernel(inputs[0], outputs[0], outputs[1], *window, act_min, act_max)
    else:

        def run(inputs, outputs) -> None:
            ref.max_pooling_with_argmax_2d(inputs[0], outputs[0], outputs[1], window, act_min, act_max)

    return Prepared((out_shape, out_shape), run)


def prepare_max_unpooling_2d(ctx: OpContext) -> Prepared:
    ctx.expect_io(2)
    _check_float(ctx)
    opts, _, _ = _pool_options(ctx)  # the activation is read but, as in MediaPipe, not applied
    n, h, w, c = _check_rank4(ctx, 0, "the input")
    if _check_rank4(ctx, 1, "the indices") != (n, h, w, c):
        raise ctx.error(f"indices have shape {list(ctx.inputs[1].shape)}, the input {[n, h, w, c]}")
    sh, sw, fh, fw = opts["stride_h"], opts["stride_w"], opts["filter_h"], opts["filter_w"]
    oh, ow = h * fh, w * fw
    out_shape = (n, oh, ow, c)
    ctx.check_shape(out_shape, np.float32)
    window = (fh, fw, sh, sw, _compute_padding(sh, oh, fh, h), _compute_padding(sw, ow, fw, w))
    if ctx.backend == "numba":
        kernel = _kernels().max_unpooling

        def run(inputs, outputs) -> None:
            kernel(inputs[0], inputs[1], outputs[0], *window)
    else:

        def run(inputs, outputs) -> None:
            ref.max_unpooling_2d(inputs[0], inputs[1], outputs[0], window)

    return Prepared((out_shape,), run)


register_custom_op("Convolution2DTransposeBias", prepare_convolution_2d_transpose_bias)
register_custom_op("MaxPoolingWithArgmax2D", prepare_max_pooling_with_argmax_2d)
register_custom_op("MaxUnpooling2D", prepare_max_unpooling_2d)
