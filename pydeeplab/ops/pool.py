"""AVERAGE_POOL_2D and MAX_POOL_2D (TFLite ``kernels/pooling.cc``).

A pool takes one NHWC tensor and a window (filter size, stride, SAME/VALID
padding, fused activation). Padding is not a value: the reference kernels clamp
each window to the input, so a border window averages (or maxes) only the
input elements it covers. DeepLab's ASPP image-level branch is a global
AVERAGE_POOL_2D (one window covering the whole feature map, VALID).

Quantized pools work on the raw integers: TFLite assumes (checks only in debug
builds) that input and output share scale and zero point, and neither kernel
rescales; the output's quantization only sets the fused activation's clamp.
"""

from __future__ import annotations

import numpy as np

from ..quantization import activation_range_float, activation_range_quantized
from ..reference import pool as ref
from ..tflite.options import Pool2DOptions
from ..tflite.schema import Activation, BuiltinOperator
from .base import OpContext, Prepared, register
from .padding import MAX_WINDOW, compute_padding_hw

_TYPES = (np.dtype(np.float32), np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.int16))


def window_counts(in_size: int, filter_size: int, stride: int, pad: int, out_size: int) -> np.ndarray:
    """How many input positions each output position's window covers along one axis (int64, [out_size]).

    The window of output ``o`` starts at ``o * stride - pad``; the part of it that
    lies inside ``[0, in_size)`` is what the reference kernels visit.
    """
    start = np.arange(out_size, dtype=np.int64) * stride - pad
    return np.minimum(filter_size, in_size - start) - np.maximum(0, -start)


def sums_columns(channels: int) -> bool:
    """Whether the numba backend's float global average of ``channels`` channels sums down the map's
    columns (``kernels.pool.global_average_pool_float``) rather than through the window kernel."""
    return channels < 32


@register(BuiltinOperator.AVERAGE_POOL_2D, BuiltinOperator.MAX_POOL_2D)
def prepare_pool(ctx: OpContext) -> Prepared:
    ctx.expect_io(1)
    opts = ctx.options_as(Pool2DOptions, required=True)
    x = ctx.inputs[0]
    if len(x.shape) != 4:
        raise ctx.error(f"input must be 4-D (NHWC), got shape {x.shape}")
    if x.dtype not in _TYPES:
        raise ctx.error(f"input type {x.type.name} is not supported (float32, uint8, int8, int16)")
    if ctx.outputs[0].type != x.type:
        raise ctx.error(f"output type {ctx.outputs[0].type.name} differs from input type {x.type.name}")
    if min(opts.stride_h, opts.stride_w, opts.filter_height, opts.filter_width) <= 0:
        raise ctx.error(
            f"strides ({opts.stride_h}, {opts.stride_w}) and filter size "
            f"({opts.filter_height}, {opts.filter_width}) must be positive")
    if max(opts.filter_height, opts.filter_width) > MAX_WINDOW:
        raise ctx.error(f"filter size ({opts.filter_height}, {opts.filter_width}) exceeds {MAX_WINDOW}")

    n, h, w, c = x.shape
    filt = (opts.filter_height, opts.filter_width)
    stride = (opts.stride_h, opts.stride_w)
    pad_h, pad_w = compute_padding_hw(opts.padding, (h, w), filt, stride)
    if pad_h.out <= 0 or pad_w.out <= 0:
        raise ctx.error(f"filter {filt} does not fit the {h}x{w} input with {opts.padding.name} padding")
    out_shape = (n, pad_h.out, pad_w.out, c)
    pads = (pad_h.before, pad_w.before)

    act = opts.fused_activation_function
    if x.dtype == np.float32:
        lo, hi = activation_range_float(act)
        act_min, act_max = np.float32(lo), np.float32(hi)
        lowest = np.float32(np.finfo(np.float32).min)
    else:
        q = ctx.outputs[0].quantization
        if (q is None or q.scales.size == 0) and act != Activation.NONE:
            raise ctx.error(f"a fused {act.name} on a {x.type.name} output needs its quantization parameters")
        lo, hi = activation_range_quantized(act, q.scale if q else 0.0, q.zero_point if q else 0, x.dtype)
        act_min, act_max = x.dtype.type(lo), x.dtype.type(hi)
        lowest = x.dtype.type(np.iinfo(x.dtype).min)

    is_average = ctx.opcode == BuiltinOperator.AVERAGE_POOL_2D
    counts = np.outer(window_counts(h, filt[0], stride[0], pads[0], pad_h.out),
                      window_counts(w, filt[1], stride[1], pads[1], pad_w.out))

    # A global pool (DeepLab's ASPP image pooling, squeeze-and-excite: one window, the whole
    # input) is one sum per channel: the numpy backend's adds pixel after pixel, as TFLite (the
    # same bits). The Numba kernels below are faster (1 thread) on 8-bit input, 33x33x320 uint8
    # 177 -> 27 us, and on float input: the window kernel where there are many channels
    # (16x16x128 15 -> 4 us, 33x33x160 32 -> 14 us; TFLite's order), column sums then across
    # where there are few (128x128x16 25 us, where the window kernel's one vector of sums took
    # 68 us; float rounding apart from TFLite's order).
    global_pool = is_average and out_shape[1:3] == (1, 1) and filt == (h, w) and pads == (0, 0)
    if global_pool and ctx.backend == "numpy":
        def run(inputs, outputs):
            outputs[0][...] = ref.global_average_pool_2d(inputs[0], act_min, act_max)
        return Prepared((out_shape,), run)
    if global_pool and x.dtype == np.float32 and sums_columns(c):
        from ..kernels.parallel import in_parallel, replayable
        from ..kernels.pool import global_average_pool_float
        from .elementwise import _view

        pool = in_parallel(global_average_pool_float)

        @replayable
        def run(inputs, outputs):  # (_view: the kernel writes into the output, so no reshape may copy it)
            pool(inputs[0].reshape(n, h, w * c), c, _view(outputs[0], (n, c)), act_min, act_max, nt=1)
        return Prepared((out_shape,), run)
    if ctx.backend == "numpy" or (out_shape[1:3] == (1, 1) and not global_pool):
        if is_average:
            def run(inputs, outputs):
                outputs[0][...] = ref.average_pool_2d(inputs[0], filt, stride, pads, out_shape[1:3],
                                                      counts, act_min, act_max)
        else:
            def run(inputs, outputs):
                outputs[0][...] = ref.max_pool_2d(inputs[0], filt, stride, pads, out_shape[1:3],
                                                  act_min, act_max)
        return Prepared((out_shape,), run)

    from ..kernels import pool as kern
    from ..kernels.conv_plan import with_contiguous_output
    from ..kernels.parallel import in_parallel, replayable

    (fh, fw), (sh, sw), (ph, pw) = filt, stride, pads
    if not is_average:
        pool, bounds = in_parallel(kern.max_pool_2d), (lowest, act_min, act_max)
    elif x.dtype == np.float32:
        pool, bounds = in_parallel(kern.average_pool_2d_float), (act_min, act_max)
    else:
        pool, bounds = in_parallel(kern.average_pool_2d_int), (np.int32(act_min), np.int32(act_max))

    @replayable
    def fill(inputs, out):
        pool(np.ascontiguousarray(inputs[0]), out, fh, fw, sh, sw, ph, pw, *bounds, nt=1)
    return Prepared((out_shape,), with_contiguous_output(fill))
