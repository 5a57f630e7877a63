"""RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR (TFLite ``kernels/resize_bilinear.cc``,
``kernels/resize_nearest_neighbor.cc``).

Both take an NHWC tensor and a constant int32 tensor ``[new_height, new_width]``.
Every output row y and column x maps to source coordinates through a scale
(``in / out``, or ``(in - 1) / (out - 1)`` with ``align_corners``) and an optional
half-pixel offset; those maps depend only on the sizes and flags, so prepare
computes them once per axis and the kernels only gather and blend.

Which arithmetic a type gets is TFLite's choice, reproduced exactly:

- float32 and uint8 bilinear: the float formula (``reference_ops::ResizeBilinear``)
  in float32; uint8 adds 0.5 and truncates.
- int8 and int16 bilinear: ``ResizeBilinearInteger``, fixed point with 10
  fractional bits per axis and a rounding division by 2**20.
- nearest neighbour: a pure gather, any 8/16/32-bit type.

Quantized tensors are resized on their raw integers (no rescaling), as TFLite does.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..reference import resize as ref
from ..tflite.options import ResizeBilinearOptions, ResizeNearestNeighborOptions
from ..tflite.schema import BuiltinOperator
from .base import OpContext, Prepared, Run, register

_BILINEAR_TYPES = (np.dtype(np.float32), np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.int16))
_NEAREST_TYPES = _BILINEAR_TYPES + (np.dtype(np.int32),)


class Taps(NamedTuple):
    """The two source positions and their weights for every output position along one axis.

    ``lo``/``hi`` are int64 indices; ``w_lo``/``w_hi`` are float32 weights (the float
    path) or int64 weights in units of 1/1024 (the integer path).
    """

    lo: np.ndarray
    hi: np.ndarray
    w_lo: np.ndarray
    w_hi: np.ndarray


def _float_scale(in_size: int, out_size: int, align_corners: bool) -> np.float32:
    """TFLite's float32 scale: in/out, or (in-1)/(out-1) with align_corners and out > 1."""
    if align_corners and out_size > 1:
        return np.float32(in_size - 1) / np.float32(out_size - 1)
    return np.float32(in_size) / np.float32(out_size)


def bilinear_taps_float(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> Taps:
    """``ComputeInterpolationValues`` (float) for every output position, all in float32.

    source = (o + 0.5) * scale - 0.5 with half-pixel centers, else o * scale;
    lo = max(floor(source), 0), hi = min(ceil(source), in_size - 1);
    w_hi = source - lo and w_lo = 1 - w_hi, each rounded to float32 as TFLite's
    expression ``1 - (input_y - y0)`` rounds them.
    """
    scale = _float_scale(in_size, out_size, align_corners)
    o = np.arange(out_size, dtype=np.float32)
    if half_pixel_centers:
        src = (o + np.float32(0.5)) * scale - np.float32(0.5)
    else:
        src = o * scale
    lo = np.maximum(np.floor(src), 0).astype(np.int64)
    hi = np.minimum(np.ceil(src).astype(np.int64), in_size - 1)
    w_hi = src - lo.astype(np.float32)
    w_lo = np.float32(1) - w_hi
    return Taps(lo, hi, w_lo, w_hi)


def _c_div(a: np.ndarray, b: int) -> np.ndarray:
    """C's truncating integer division of an int64 array by a positive int."""
    return np.where(a >= 0, a // b, -((-a) // b))


def bilinear_taps_integer(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> Taps:
    """``ComputeInterpolationValuesInteger`` for every output position (int64, 10 fractional bits).

    scale_10 = round(1024 * in / out) (or with in-1, out-1 under align_corners), by
    C integer division with half the divisor added; source_10 = o * scale_10, or
    o * scale_10 + scale_10 / 2 - 512 with half-pixel centers; lo = max(source_10 /
    1024, 0), hi = min(ceil(source_10 / 1024), in_size - 1), divisions truncating.
    Weights: w_hi = source_10 - 1024 * lo, w_lo = 1024 - w_hi.

    Where the rounded scale overshoots (e.g. 1 -> 65 pixels without align_corners),
    TFLite's ``lo`` can reach ``in_size`` and its kernel reads past the row; we
    clamp ``lo`` to the last row instead (TFLite's result there is undefined).
    """
    if align_corners and out_size > 1:
        num, den = in_size - 1, out_size - 1
    else:
        num, den = in_size, out_size
    scale_10 = (1024 * num + den // 2) // den
    o = np.arange(out_size, dtype=np.int64)
    src = o * scale_10 + (scale_10 // 2 - 512 if half_pixel_centers else 0)
    lo = np.minimum(np.maximum(_c_div(src, 1024), 0), in_size - 1)
    hi = np.minimum(_c_div(src + 1023, 1024), in_size - 1)
    w_hi = src - 1024 * lo
    w_lo = 1024 - w_hi
    return Taps(lo, hi, w_lo, w_hi)


def column_weights(tx: Taps, channels: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The column weights per output element of a row, [OW * C] of ``dtype``: each output
    column's w_lo (w_hi) repeated for its C channels, as the kernels blend a row in one loop."""
    return (np.ascontiguousarray(np.repeat(tx.w_lo, channels), dtype=dtype),
            np.ascontiguousarray(np.repeat(tx.w_hi, channels), dtype=dtype))


def column_weight_pairs(tx: Taps, channels: int) -> np.ndarray:
    """:func:`column_weights` interleaved, (w_lo, w_hi) per output element: [2 * OW * C], int16 where
    every weight fits it (always but for output widths past ~60,000), else int32."""
    pairs = np.stack(column_weights(tx, channels, np.int64), axis=1).reshape(-1)
    small = pairs.size == 0 or np.abs(pairs).max() < 2**15
    return np.ascontiguousarray(pairs, dtype=np.int16 if small else np.int32)


def _weight_sum(taps: Taps) -> int:
    """The largest |w_lo| + |w_hi| of an axis: how much a blend along it can grow a value."""
    return int((np.abs(taps.w_lo) + np.abs(taps.w_hi)).max(initial=0))


def _integer_bound(ty: Taps, tx: Taps, largest: int) -> int:
    """The largest |blend| + 2**19 ``ResizeBilinearInteger`` can reach with |input| <= largest."""
    return largest * _weight_sum(ty) * _weight_sum(tx) + (1 << 19)


def nearest_indices(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """``GetNearestNeighbor`` for every output position: int64 source indices.

    source = (o + offset) * scale in float32 (offset 0.5 with half-pixel centers);
    rounded half away from zero with align_corners, else floored; at most
    in_size - 1, and at least 0 with half-pixel centers.
    """
    scale = _float_scale(in_size, out_size, align_corners)
    offset = np.float32(0.5 if half_pixel_centers else 0.0)
    src = (np.arange(out_size, dtype=np.float32) + offset) * scale
    idx = np.floor(src)
    if align_corners:
        # std::round of a non-negative value; src - floor(src) is exact, src + 0.5 is not.
        idx = idx + (src - idx >= 0.5)
    idx = np.minimum(idx.astype(np.int64), in_size - 1)
    if half_pixel_centers:
        idx = np.maximum(idx, 0)
    return idx


def _check(ctx: OpContext, types: tuple[np.dtype, ...]) -> tuple[int, int]:
    """Common checks; returns the constant (new_height, new_width)."""
    ctx.expect_io(2)
    x = ctx.inputs[0]
    if len(x.shape) != 4:
        raise ctx.error(f"input must be 4-D (NHWC), got shape {x.shape}")
    if x.dtype not in types:
        names = ", ".join(str(t) for t in types)
        raise ctx.error(f"input type {x.type.name} is not supported ({names})")
    if ctx.outputs[0].type != x.type:
        raise ctx.error(f"output type {ctx.outputs[0].type.name} differs from input type {x.type.name}")
    size_spec = ctx.inputs[1]
    size = ctx.constant(1, "the output size")
    if size_spec.dtype != np.int32 or size.shape != (2,):
        raise ctx.error(f"the output size must be an int32 tensor of shape (2,), got "
                        f"{size_spec.type.name} {size.shape}")
    new_h, new_w = int(size[0]), int(size[1])
    if new_h <= 0 or new_w <= 0:
        raise ctx.error(f"the output size must be positive, got ({new_h}, {new_w})")
    n, _, _, c = x.shape
    ctx.check_shape((n, new_h, new_w, c), x.dtype)
    return new_h, new_w


def _bilinear_plan(ctx: OpContext) -> tuple[tuple[int, int, int, int], tuple[bool, bool]]:
    """Checks of RESIZE_BILINEAR: its output shape and (align_corners, half_pixel_centers)."""
    new_h, new_w = _check(ctx, _BILINEAR_TYPES)
    opts = ctx.options_as(ResizeBilinearOptions, required=True)
    if opts.align_corners and opts.half_pixel_centers:
        raise ctx.error("align_corners and half_pixel_centers cannot both be true")
    n, _, _, c = ctx.inputs[0].shape
    return (n, new_h, new_w, c), (opts.align_corners, opts.half_pixel_centers)


def _float_taps(ctx: OpContext, out_shape: tuple[int, ...], flags: tuple[bool, bool]) -> tuple[Taps, Taps, np.float32]:
    """The float formula's row and column taps, and the offset added last (0.5 for uint8, whose
    cast then truncates; 0 for float32)."""
    _, h, w, _ = ctx.inputs[0].shape
    _, new_h, new_w, _ = out_shape
    offset = np.float32(0.5 if ctx.inputs[0].dtype == np.uint8 else 0.0)
    return bilinear_taps_float(h, new_h, *flags), bilinear_taps_float(w, new_w, *flags), offset


@register(BuiltinOperator.RESIZE_BILINEAR)
def prepare_resize_bilinear(ctx: OpContext) -> Prepared:
    out_shape, flags = _bilinear_plan(ctx)
    n, h, w, c = ctx.inputs[0].shape
    new_h, new_w = out_shape[1:3]
    dtype = ctx.inputs[0].dtype

    if ctx.backend == "numba" and dtype != np.float32 and h in (1, new_h) and w in (1, new_w):
        # Along an axis of the same size, or of one pixel, both taps of every output read the
        # same source and the weights add up to one: an 8/16-bit result, rounded, is the source
        # value itself (the float formula's rounding errors, ~1e-4 at 255, stay far from the
        # 0.5 that uint8's truncation would need). So the output is the input, broadcast:
        # DeepLab's image-pooling branch (1x1 -> 33x33) and its 33 -> 33 resize of the logits.
        # (Not for float32, where the four products round.)
        def run(inputs, outputs):
            outputs[0][...] = inputs[0]
    elif dtype in (np.float32, np.uint8):
        # uint8 takes the float formula, plus 0.5 before the truncating cast.
        ty, tx, offset = _float_taps(ctx, out_shape, flags)
        if ctx.backend == "numpy":
            def run(inputs, outputs):
                outputs[0][...] = ref.resize_bilinear(inputs[0], ty, tx, offset)
        else:
            from ..kernels import resize as kern
            from ..kernels.parallel import in_parallel, replayable, numba_threads

            resize = in_parallel(kern.resize_bilinear_float)
            w_left, w_right = column_weights(tx, c, np.float32)

            @replayable  # (a temporary output is another array at every run: a recording tells)
            def run(inputs, outputs):
                # The kernel reads and writes whole rows as flat arrays: C order needed.
                out = outputs[0] if outputs[0].flags.c_contiguous else np.empty(out_shape, dtype)
                resize(np.ascontiguousarray(inputs[0]), *ty, tx.lo, tx.hi, w_left, w_right, offset, out,
                       nt=numba_threads(out.size * 4))
                if out is not outputs[0]:
                    outputs[0][...] = out
    elif ctx.backend == "numpy":
        ty, tx = bilinear_taps_integer(h, new_h, *flags), bilinear_taps_integer(w, new_w, *flags)

        def run(inputs, outputs):
            outputs[0][...] = ref.resize_bilinear_integer(inputs[0], ty, tx)
    else:
        run = _integer_run(ctx, out_shape, flags)
        if run is None:  # (column blends past int32: an int16 image resized to a width past ~60,000)
            ty, tx = bilinear_taps_integer(h, new_h, *flags), bilinear_taps_integer(w, new_w, *flags)

            def run(inputs, outputs):
                outputs[0][...] = ref.resize_bilinear_integer(inputs[0], ty, tx)
    return Prepared((out_shape,), run)


def _integer_run(ctx: OpContext, out_shape: tuple[int, ...], flags: tuple[bool, bool],
                 dequantize: tuple[int, np.float32] | None = None) -> Run | None:
    """The numba backend's run of an int8/int16 RESIZE_BILINEAR (``kernels.resize.resize_bilinear_integer``);
    with ``dequantize`` (zero point, float32 scale), of it and the DEQUANTIZE to float32 after it.
    None where a column blend could pass int32 (the kernel's bound)."""
    from ..kernels import resize as kern
    from ..kernels.parallel import in_parallel, replayable, numba_threads

    _, h, w, c = ctx.inputs[0].shape
    dtype = ctx.inputs[0].dtype
    ty, tx = bilinear_taps_integer(h, out_shape[1], *flags), bilinear_taps_integer(w, out_shape[2], *flags)
    largest = 128 if dtype == np.int8 else 2**15
    if largest * _weight_sum(tx) >= 2**31:  # a column blend past int32
        return None
    resize = in_parallel(kern.resize_bilinear_integer)
    # int8 blends in int32 where the sum cannot overflow it (weights in [-512, 1536]: |sum|
    # < 2**29; only past-the-edge taps of a huge upscale grow larger); int16 needs int64.
    acc = np.int32 if dtype == np.int8 and _integer_bound(ty, tx, 128) < 2**31 else np.int64
    wy_lo, wy_hi = ty.w_lo.astype(acc), ty.w_hi.astype(acc)
    w_pairs = column_weight_pairs(tx, c)
    half = acc(1 << 19)
    zero_point, scale = (None, None) if dequantize is None else (np.int32(dequantize[0]), dequantize[1])
    out_dtype = dtype if dequantize is None else np.dtype(np.float32)

    @replayable  # (a temporary output is another array at every run: a recording tells)
    def run(inputs, outputs):
        # The kernel reads and writes whole rows as flat arrays: C order needed.
        out = outputs[0] if outputs[0].flags.c_contiguous else np.empty(out_shape, out_dtype)
        resize(np.ascontiguousarray(inputs[0]), ty.lo, ty.hi, wy_lo, wy_hi, tx.lo, tx.hi, w_pairs,
               half, zero_point, scale, out, nt=numba_threads(out.size * 4))
        if out is not outputs[0]:
            outputs[0][...] = out

    return run


def fused_resize_bilinear_dequantize(ctx: OpContext, zero_point: int, scale: float) -> Run | None:
    """The run of an int8 RESIZE_BILINEAR (planned as ``ctx``, numba backend) and the per-tensor
    DEQUANTIZE (``zero_point``, ``scale``: a float32, as the model stores it) that alone reads its
    output, as one kernel writing the DEQUANTIZE's float32 output (:mod:`pydeeplab.fusion`): the same
    bits, one pass over memory fewer (a float-I/O int8 DeepLab's last two operators). None where the
    resize is a copy (one pixel or the same size along each axis) or the kernel cannot take it."""
    out_shape, flags = _bilinear_plan(ctx)
    _, h, w, _ = ctx.inputs[0].shape
    if ctx.inputs[0].dtype != np.int8 or (h in (1, out_shape[1]) and w in (1, out_shape[2])):
        return None
    return _integer_run(ctx, out_shape, flags, (zero_point, np.float32(scale)))


def fused_resize_bilinear_arg_max(ctx: OpContext) -> Run:
    """The run of a RESIZE_BILINEAR (planned as ``ctx``, numba backend) and the ARG_MAX over
    channels that alone reads its output, as one kernel (:mod:`pydeeplab.fusion`).

    ``run(inputs, outputs)`` reads the resize's inputs (x [N, H, W, C] float32 or uint8, C <= 256)
    and writes ``outputs[0]``, the ARG_MAX's output [N, OH, OW] int32 or int64: the first
    channel of the largest resized value, each value exactly as the resize computes it, without
    writing the resized tensor (uint8 [1,33,33,21] -> [1,513,513,21] then ARG_MAX: 9.8 -> 2.5 ms,
    one thread).
    """
    from ..kernels import resize as kern
    from ..kernels.parallel import in_parallel, replayable, numba_threads

    out_shape, flags = _bilinear_plan(ctx)
    ty, tx, offset = _float_taps(ctx, out_shape, flags)
    fused = in_parallel(kern.resize_bilinear_arg_max)

    @replayable
    def run(inputs, outputs):
        fused(np.ascontiguousarray(inputs[0]), *ty, *tx, offset, outputs[0].reshape(out_shape[:3]),
              nt=numba_threads(outputs[0].size * inputs[0].shape[3]))
    return run


@register(BuiltinOperator.RESIZE_NEAREST_NEIGHBOR)
def prepare_resize_nearest_neighbor(ctx: OpContext) -> Prepared:
    new_h, new_w = _check(ctx, _NEAREST_TYPES)
    opts = ctx.options_as(ResizeNearestNeighborOptions, required=True)
    n, h, w, c = ctx.inputs[0].shape
    out_shape = (n, new_h, new_w, c)
    # Unlike bilinear, TFLite accepts align_corners together with half_pixel_centers here.
    iy = nearest_indices(h, new_h, opts.align_corners, opts.half_pixel_centers)
    ix = nearest_indices(w, new_w, opts.align_corners, opts.half_pixel_centers)
    if ctx.backend == "numpy":
        def run(inputs, outputs):
            outputs[0][...] = ref.resize_nearest_neighbor(inputs[0], iy, ix)
    else:
        from ..kernels import resize as kern
        from ..kernels.parallel import in_parallel, replayable, numba_threads

        resize = in_parallel(kern.resize_nearest_neighbor)

        @replayable
        def run(inputs, outputs):
            resize(inputs[0], iy, ix, outputs[0], nt=numba_threads(outputs[0].size))
    return Prepared((out_shape,), run)
