"""CONCATENATION, RESHAPE, SQUEEZE, EXPAND_DIMS, BROADCAST_TO, PAD (PADV2), MIRROR_PAD,
SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND, TILE, STRIDED_SLICE, SLICE.

Output shapes are computed here at plan time, as TFLite's Prepare functions do
(``kernels/concatenation.cc``, ``reshape.cc``, ``squeeze.cc``, ``expand_dims.cc``,
``broadcast_to.cc``, ``pad.cc``, ``mirror_pad.cc``, ``space_to_batch_nd.cc``,
``batch_to_space_nd.cc``, ``tile.cc``, ``strided_slice.cc``, ``slice.cc``), from the input shapes
and the constant shape-like inputs (paddings, block shapes, begin/end/strides, axes). A shape-like
input that is not constant is refused, since
pydeeplab plans static shapes; only RESHAPE then falls back to the static
``new_shape`` of its options. Both backends run the NumPy functions of
``reference/shape.py``, except SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND, which the numba
backend runs as a gather of whole pixels planned by the reference (``kernels/space_batch.py``),
and a uint8 CONCATENATION that requantizes, whose inputs it maps through tables of the
reference's values (``kernels/elementwise.py``).
"""

from __future__ import annotations

import numpy as np

from ..reference import shape as ref
from ..tflite.options import ConcatenationOptions, MirrorPadOptions, ReshapeOptions, SqueezeOptions
from ..tflite.options import StridedSliceOptions
from ..tflite.schema import Activation, BuiltinOperator, MirrorPadMode, TensorType
from .base import OpContext, Prepared, TensorSpec, register
from .elementwise import EIGHT_BIT, quantization_of


def _same_type(ctx: OpContext, x: TensorSpec, o: TensorSpec) -> None:
    if o.type != x.type:
        raise ctx.error(f"output type {o.type.name} differs from the input type {x.type.name}")


def _int_constant(ctx: OpContext, i: int, what: str, shape_rank: int | None = None) -> np.ndarray:
    """A constant int32/int64 input as an int64 array, optionally of a given rank."""
    data = ctx.constant(i, what)
    if ctx.inputs[i].type not in (TensorType.INT32, TensorType.INT64):
        raise ctx.error(f"{what} must be int32 or int64, not {ctx.inputs[i].type.name}")
    if shape_rank is not None and data.ndim != shape_rank:
        raise ctx.error(f"{what} must have rank {shape_rank}, has shape {data.shape}")
    return data.astype(np.int64)


def _same_quantization(ctx: OpContext, x: TensorSpec, o: TensorSpec) -> None:
    """TFLite's SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND check: 8-bit data keeps its quantization."""
    if x.type in EIGHT_BIT and quantization_of(ctx, x, "input 0") != quantization_of(ctx, o, "output 0"):
        raise ctx.error("input and output quantization (scale, zero point) must be equal")


def _params_or_zero(t: TensorSpec) -> tuple[float, int]:
    """(scale, zero point) as TFLite's ``params`` holds them: (0, 0) without quantization."""
    return (t.quantization.scale, t.quantization.zero_point) if t.is_quantized else (0.0, 0)


def _equal_params(ctx: OpContext, x: TensorSpec, o: TensorSpec) -> None:
    """LiteRT's check that the output keeps the input's (scale, zero point), (0, 0) where absent."""
    if _params_or_zero(x) != _params_or_zero(o):
        raise ctx.error(f"input and output quantization (scale, zero point) must be equal, are "
                        f"{_params_or_zero(x)} and {_params_or_zero(o)}")


def _zero_value(o: TensorSpec) -> int:
    """SPACE_TO_BATCH_ND's padding value: the output zero point for quantized 8-bit data, else 0."""
    return o.quantization.zero_point if (o.type in EIGHT_BIT and o.is_quantized) else 0


# -------------------------------------------------------------------- CONCATENATION


@register(BuiltinOperator.CONCATENATION)
def prepare_concatenation(ctx: OpContext) -> Prepared:
    """Join the inputs along ``axis`` (negative counts from the end)."""
    if len(ctx.inputs) < 1 or len(ctx.outputs) != 1:
        raise ctx.error(f"expects at least 1 input and 1 output, has {len(ctx.inputs)} and {len(ctx.outputs)}")
    if any(t is None for t in ctx.inputs):
        raise ctx.error("an input is absent (-1)")
    options = ctx.options_as(ConcatenationOptions)
    if options.fused_activation_function != Activation.NONE:
        raise ctx.error(f"fused activation {options.fused_activation_function.name} is not supported "
                        "(TFLite requires NONE)")
    first, o = ctx.inputs[0], ctx.outputs[0]
    rank = len(first.shape)
    if rank == 0:
        raise ctx.error("inputs are scalars; concatenation needs inputs of rank >= 1")
    axis = options.axis + rank if options.axis < 0 else options.axis
    if not 0 <= axis < rank:
        raise ctx.error(f"axis {options.axis} is out of range for rank {rank}")
    for k, t in enumerate(ctx.inputs):
        if t.type != first.type:
            raise ctx.error(f"input {k} has type {t.type.name}, input 0 {first.type.name}")
        if len(t.shape) != rank or any(a != b for d, (a, b) in enumerate(zip(t.shape, first.shape)) if d != axis):
            raise ctx.error(f"input {k} shape {t.shape} does not match input 0 shape {first.shape} "
                            f"outside axis {axis}")
    _same_type(ctx, first, o)
    out_shape = list(first.shape)
    out_shape[axis] = sum(t.shape[axis] for t in ctx.inputs)
    out_shape = tuple(out_shape)

    if first.type == TensorType.UINT8 and any(t.is_quantized for t in (*ctx.inputs, o)):
        scales, zps = zip(*(quantization_of(ctx, t, f"input {k}") for k, t in enumerate(ctx.inputs)))
        s_out, z_out = quantization_of(ctx, o, "output 0")
        if ctx.backend == "numba":
            return Prepared((out_shape,), _requantizing_concatenation(ctx, axis, scales, zps, s_out, z_out))

        def run(inputs, outputs):
            ref.concatenation_uint8(inputs, axis, scales, zps, s_out, z_out, outputs[0])

        return Prepared((out_shape,), run)
    if first.type == TensorType.INT8:
        expected = _params_or_zero(o)
        for k, t in enumerate(ctx.inputs):
            if _params_or_zero(t) != expected:
                raise ctx.error(f"int8 input {k} has a scale or zero point other than the output's; "
                                "TFLite's int8 CONCATENATION does not requantize")

    def run(inputs, outputs):
        ref.concatenation(inputs, axis, outputs[0])

    return Prepared((out_shape,), run)


def _requantizing_concatenation(ctx: OpContext, axis: int, scales, zps, s_out: float, z_out: int):
    """The numba backend's uint8 CONCATENATION whose inputs are on other scales: each such input
    mapped through a 256-entry table of the reference's requantization (bit-identical by
    construction, ``elementwise.unary_lookup_run``) into a buffer of its own, then joined.
    (ADE20K's decoder, 128x128x256 and x48 -> x304, 1 thread: 10.0 -> 0.36 ms.)"""
    from .elementwise import unary_lookup_run

    codes = np.arange(256, dtype=np.uint8)
    lookups = [None if (s, z) == (s_out, z_out) else
               unary_lookup_run(ref.requantize_uint8_for_concatenation(codes, s, z, s_out, z_out))
               for s, z in zip(scales, zps)]
    buffers = [None if lookup is None else np.empty(t.shape, np.uint8) for lookup, t in zip(lookups, ctx.inputs)]

    def run(inputs, outputs):
        parts = []
        for x, lookup, buffer in zip(inputs, lookups, buffers):
            if lookup is not None:
                lookup([x], [buffer])
                x = buffer
            parts.append(x)
        np.concatenate(parts, axis=axis, out=outputs[0])

    return run


# --------------------------------------------------------------- RESHAPE, SQUEEZE


def _resolve_reshape(ctx: OpContext, in_shape: tuple[int, ...], requested: list[int]) -> tuple[int, ...]:
    """TFLite's ``ResolveOutputShape``: at most one -1, inferred from the element count."""
    n_in = int(np.prod(in_shape, dtype=np.int64))
    stretch = [i for i, d in enumerate(requested) if d == -1]
    if len(stretch) > 1:
        raise ctx.error(f"new shape {tuple(requested)} has more than one -1")
    if any(d < -1 for d in requested):
        raise ctx.error(f"new shape {tuple(requested)} has a negative dimension")
    known = [d for d in requested if d != -1]
    n_known = int(np.prod(known, dtype=np.int64))
    if stretch:
        nonzero_in = int(np.prod([d for d in in_shape if d != 0], dtype=np.int64))
        nonzero_known = int(np.prod([d for d in known if d != 0], dtype=np.int64))
        requested[stretch[0]] = 0 if (n_in == 0 and n_known != 0) else nonzero_in // nonzero_known
    if int(np.prod(requested, dtype=np.int64)) != n_in:
        raise ctx.error(f"cannot reshape {in_shape} ({n_in} elements) to {tuple(requested)}")
    return tuple(int(d) for d in requested)


def _reshape_run(inputs, outputs):
    ref.reshape(inputs[0], outputs[0])


@register(BuiltinOperator.RESHAPE)
def prepare_reshape(ctx: OpContext) -> Prepared:
    """The new shape comes from input 1 (a constant int32 vector) or else the options."""
    x, o = ctx.same_type_io((1, 2))
    options = ctx.options_as(ReshapeOptions)
    shape_t = ctx.inputs[1] if len(ctx.inputs) == 2 else None
    if shape_t is not None and shape_t.type == TensorType.INT32 and len(shape_t.shape) == 1:
        if shape_t.data is not None:
            requested = [int(d) for d in shape_t.data]
        elif options.new_shape is not None:
            # A computed shape tensor: trust the converter's static copy in the options.
            requested = [int(d) for d in options.new_shape]
        else:
            raise ctx.error("the new shape (input 1) is not constant and the options give none")
    elif options.new_shape is not None:
        requested = [int(d) for d in options.new_shape]
        if requested == [0]:  # legacy encoding of a scalar
            requested = []
    else:
        raise ctx.error("no new shape: input 1 is not an int32 vector and the options give none")
    return Prepared((_resolve_reshape(ctx, tuple(x.shape), requested),), _reshape_run)


@register(BuiltinOperator.SQUEEZE)
def prepare_squeeze(ctx: OpContext) -> Prepared:
    """Remove the size-1 dimensions listed in ``squeeze_dims`` (all of them if none are)."""
    x, o = ctx.same_type_io()
    options = ctx.options_as(SqueezeOptions)
    rank = len(x.shape)
    if not options.squeeze_dims:
        drop = {d for d in range(rank) if x.shape[d] == 1}
    else:
        drop = set()
        for d in options.squeeze_dims:
            axis = d + rank if d < 0 else d
            if not 0 <= axis < rank or x.shape[axis] != 1:
                raise ctx.error(f"cannot squeeze dimension {d} of shape {x.shape}")
            drop.add(axis)
    out_shape = tuple(n for d, n in enumerate(x.shape) if d not in drop)
    return Prepared((out_shape,), _reshape_run)


@register(BuiltinOperator.EXPAND_DIMS)
def prepare_expand_dims(ctx: OpContext) -> Prepared:
    """Insert a dimension of size 1 at the constant ``axis`` of input 1 (one int32/int64 element; a
    negative axis counts from the end of the output shape)."""
    x, o = ctx.same_type_io(2)
    _equal_params(ctx, x, o)
    data = _int_constant(ctx, 1, "axis")
    if data.size != 1:
        raise ctx.error(f"axis (input 1) must hold one element, has shape {data.shape}")
    rank = len(x.shape)
    value = int(data.reshape(-1)[0])
    axis = value + rank + 1 if value < 0 else value
    if not 0 <= axis <= rank:
        raise ctx.error(f"axis {value} is out of range for an input of rank {rank} (from {-rank - 1} to {rank})")
    return Prepared((tuple(x.shape[:axis]) + (1,) + tuple(x.shape[axis:]),), _reshape_run)


@register(BuiltinOperator.BROADCAST_TO)
def prepare_broadcast_to(ctx: OpContext) -> Prepared:
    """The input repeated to the constant ``shape`` (input 1, int32 or int64; at most 8 dimensions):
    its dimensions, aligned at the end, each equal to the shape's or 1 (``broadcast_to.cc``)."""
    x, o = ctx.same_type_io(2)
    shape = tuple(int(d) for d in _int_constant(ctx, 1, "shape", 1))
    if len(shape) > 8 or len(shape) < len(x.shape):
        raise ctx.error(f"shape {list(shape)} must have from {len(x.shape)} (the input's rank) to 8 dimensions")
    if any(d < 0 for d in shape) or any(n not in (1, d) for n, d in zip(x.shape[::-1], shape[::-1])):
        raise ctx.error(f"input shape {x.shape} does not broadcast to {list(shape)}")

    def run(inputs, outputs):
        outputs[0][...] = np.broadcast_to(inputs[0], shape)

    return Prepared((shape,), run)


# ------------------------------------------------------------------------- PAD


@register(BuiltinOperator.PAD, BuiltinOperator.PADV2)
def prepare_pad(ctx: OpContext) -> Prepared:
    """Pad with constant ``paddings`` [rank, 2]; the value is PADV2's scalar constant input 2, else
    0, which quantized data writes as the output zero point. As ``pad.cc`` decides: uint8 always
    takes the quantized path, int8 and int16 where the input has quantization parameters (without,
    the value is a plain 0); on that path a constant value must have the output's scale and zero
    point."""
    x, o = ctx.same_type_io((2, 3))
    rank = len(x.shape)
    paddings = _int_constant(ctx, 1, "paddings", 2)
    if paddings.shape != (rank, 2):
        raise ctx.error(f"paddings have shape {paddings.shape}, need ({rank}, 2) for input shape {x.shape}")
    if (paddings < 0).any():
        raise ctx.error(f"paddings must be >= 0, got {paddings.tolist()}")
    quantized = x.type == TensorType.UINT8 or (x.type in (TensorType.INT8, TensorType.INT16) and x.is_quantized)
    value = _params_or_zero(o)[1] if quantized else 0
    if len(ctx.inputs) == 3 and ctx.inputs[2] is not None:
        v = ctx.constant(2, "constant value")
        if v.size != 1 or ctx.inputs[2].type != x.type:
            raise ctx.error("the constant value (input 2) must be one element of the input's type")
        if quantized and _params_or_zero(ctx.inputs[2]) != _params_or_zero(o):
            raise ctx.error("the constant value must have the output's scale and zero point")
        value = v.reshape(()).item()
    out_shape = tuple(int(n + p0 + p1) for n, (p0, p1) in zip(x.shape, paddings))

    def run(inputs, outputs):
        ref.pad(inputs[0], paddings, value, outputs[0])

    return Prepared((out_shape,), run)


@register(BuiltinOperator.MIRROR_PAD)
def prepare_mirror_pad(ctx: OpContext) -> Prepared:
    """Pad with the input's mirror image by constant ``paddings`` [rank, 2]: REFLECT leaves the edge
    element out of the image, SYMMETRIC repeats it; a padding longer than the image (the dimension,
    less one for REFLECT) is refused, as LiteRT does."""
    x, o = ctx.same_type_io(2)
    if x.type in (TensorType.UINT8, TensorType.INT8, TensorType.INT16):
        _equal_params(ctx, x, o)
        if x.type == TensorType.INT16 and _params_or_zero(x)[1] != 0:
            raise ctx.error("int16 data must have zero point 0")
    mode = ctx.options_as(MirrorPadOptions).mode
    offset = 1 if mode == MirrorPadMode.REFLECT else 0
    rank = len(x.shape)
    paddings = _int_constant(ctx, 1, "paddings", 2)
    if paddings.shape != (rank, 2):
        raise ctx.error(f"paddings have shape {paddings.shape}, need ({rank}, 2) for input shape {x.shape}")
    sources = []
    for d, (n, (left, right)) in enumerate(zip(x.shape, paddings.tolist())):
        if left < 0 or right < 0:
            raise ctx.error(f"paddings must be >= 0, got {paddings.tolist()}")
        if max(left, right) > n - offset:
            raise ctx.error(f"paddings {left} and {right} of dimension {d} (size {n}) exceed its {mode.name} "
                            f"mirror image ({max(n - offset, 0)} elements)")
        # Sources of the output indices: the mirror images read outward from the edges.
        sources.append(np.array([left + offset - 1 - p for p in range(left)] + list(range(n))
                                + [n - 1 - offset - q for q in range(right)], np.intp))
    out_shape = tuple(len(k) for k in sources)
    index = np.ix_(*sources)

    def run(inputs, outputs):
        ref.gather_grid(inputs[0], index, outputs[0])

    return Prepared((out_shape,), run)


# ------------------------------------------------------- SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND


def _block_params(ctx: OpContext, what: str) -> tuple[TensorSpec, TensorSpec, np.ndarray, np.ndarray]:
    """Checks shared by SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND: x [N, H, (W,) C], block_shape [M],
    ``what`` (paddings / crops) [M, 2], M = rank - 2, all constants; blocks >= 1, amounts >= 0."""
    x, o = ctx.same_type_io(3)
    _same_quantization(ctx, x, o)
    if len(x.shape) not in (3, 4):
        raise ctx.error(f"input must have rank 3 or 4, has shape {x.shape}")
    m = len(x.shape) - 2
    block = _int_constant(ctx, 1, "block_shape", 1)
    amounts = _int_constant(ctx, 2, what, 2)
    if block.shape != (m,) or amounts.shape != (m, 2):
        raise ctx.error(f"block_shape {block.shape} and {what} {amounts.shape} need shapes ({m},) and ({m}, 2)")
    if (block < 1).any():
        raise ctx.error(f"block_shape must be >= 1, got {block.tolist()}")
    if (amounts < 0).any():
        raise ctx.error(f"{what} must be >= 0, got {amounts.tolist()}")
    return x, o, block, amounts


@register(BuiltinOperator.SPACE_TO_BATCH_ND)
def prepare_space_to_batch_nd(ctx: OpContext) -> Prepared:
    """Pad the spatial dimensions, then move each position inside a block to its own batch."""
    x, o, block, paddings = _block_params(ctx, "paddings")
    spatial = []
    for d, b, (p0, p1) in zip(x.shape[1:-1], block, paddings):
        if (d + p0 + p1) % b:
            raise ctx.error(f"padded size {d + p0 + p1} is not a multiple of block size {b}")
        spatial.append(int((d + p0 + p1) // b))
    out_shape = (int(x.shape[0] * np.prod(block)), *spatial, x.shape[-1])
    value = _zero_value(o)
    block_shape = tuple(int(b) for b in block)

    if ctx.backend == "numba":
        index = np.empty(out_shape[:-1] + (1,), np.int64)
        ref.space_to_batch_nd(_pixel_numbers(x.shape), block_shape, paddings, -1, index)
        return Prepared((out_shape,), _gather_run(index, x.dtype.type(value)))

    def run(inputs, outputs):
        ref.space_to_batch_nd(inputs[0], block_shape, paddings, value, outputs[0])

    return Prepared((out_shape,), run)


@register(BuiltinOperator.BATCH_TO_SPACE_ND)
def prepare_batch_to_space_nd(ctx: OpContext) -> Prepared:
    """Interleave batches back into blocks of space, then crop."""
    x, o, block, crops = _block_params(ctx, "crops")
    n_blocks = int(np.prod(block))
    if x.shape[0] % n_blocks:
        raise ctx.error(f"batch {x.shape[0]} is not a multiple of the block count {n_blocks}")
    spatial = [int(d * b - c0 - c1) for d, b, (c0, c1) in zip(x.shape[1:-1], block, crops)]
    if any(s < 0 for s in spatial):
        raise ctx.error(f"crops {crops.tolist()} exceed the block-expanded size of {x.shape}")
    out_shape = (x.shape[0] // n_blocks, *spatial, x.shape[-1])
    block_shape = tuple(int(b) for b in block)

    if ctx.backend == "numba":
        index = np.empty(out_shape[:-1] + (1,), np.int64)
        ref.batch_to_space_nd(_pixel_numbers(x.shape), block_shape, crops, index)
        return Prepared((out_shape,), _gather_run(index, x.dtype.type(0)))

    def run(inputs, outputs):
        ref.batch_to_space_nd(inputs[0], block_shape, crops, outputs[0])

    return Prepared((out_shape,), run)


def _pixel_numbers(shape: tuple[int, ...]) -> np.ndarray:
    """An image of x's shape with one channel holding each pixel's number (row-major): the
    reference run on it tells which input pixel each output pixel copies."""
    return np.arange(int(np.prod(shape[:-1])), dtype=np.int64).reshape(*shape[:-1], 1)


def _gather_run(index: np.ndarray, pad):
    """run() of the numba backend's SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND: output pixel p
    copies input pixel index[p], or is ``pad`` (``kernels.space_batch.gather_pixels``)."""
    from ..kernels import space_batch
    from ..kernels.parallel import in_parallel, replayable, numba_threads

    gather = in_parallel(space_batch.gather_pixels)
    flat = np.ascontiguousarray(index.reshape(-1))

    @replayable  # (a temporary output or a copied input is another array at every run: a recording tells)
    def run(inputs, outputs):
        out = outputs[0]
        target = out if out.flags.c_contiguous else np.empty(out.shape, out.dtype)
        x = np.ascontiguousarray(inputs[0])
        gather(x.reshape(-1, x.shape[-1]), flat, pad, target.reshape(-1, target.shape[-1]), nt=numba_threads(target.size))
        if target is not out:
            out[...] = target

    return run


# ------------------------------------------------------------------------ TILE


@register(BuiltinOperator.TILE)
def prepare_tile(ctx: OpContext) -> Prepared:
    """Repeat the input ``multiples[d]`` times along each dimension (a constant int32/int64 vector)."""
    x, o = ctx.same_type_io(2)
    multiples = _int_constant(ctx, 1, "multiples", 1)
    if multiples.shape != (len(x.shape),):
        raise ctx.error(f"multiples has {multiples.size} entries for an input of rank {len(x.shape)}")
    if (multiples < 0).any():
        raise ctx.error(f"multiples must be >= 0, got {multiples.tolist()}")
    out_shape = tuple(int(d * k) for d, k in zip(x.shape, multiples))
    reps = tuple(int(k) for k in multiples)

    def run(inputs, outputs):
        ref.tile(inputs[0], reps, outputs[0])

    return Prepared((out_shape,), run)


# --------------------------------------------------------------- STRIDED_SLICE


def _bit(mask: int, i: int) -> bool:
    return bool(mask & (1 << i))


def _effective_params(ctx: OpContext, opts: StridedSliceOptions, in_shape, begin, end, strides):
    """strided_slice.cc ``BuildStridedSliceParams``: expand the ellipsis and new axes into a
    per-dimension (start, stop, stride, begin/end/shrink mask) of the "effective" input,
    the input with its new size-1 axes inserted."""
    in_dims, count = len(in_shape), len(begin)
    num_add_axis = sum(1 for i in range(count) if not _bit(opts.ellipsis_mask, i) and _bit(opts.new_axis_mask, i))
    eff = in_dims + num_add_axis
    ellipsis, new_axis = 0, 0
    ellipsis_start, expanded = eff, 0
    i = 0
    while i < eff:
        if _bit(opts.ellipsis_mask, i):
            ellipsis_start = i
            ellipsis_end = max(i + 1, min(i + 1 + num_add_axis + in_dims - count, eff))
            expanded = ellipsis_end - ellipsis_start - 1
            for j in range(i, ellipsis_end):
                ellipsis |= 1 << j
            i = ellipsis_end
            continue
        if i - expanded >= 0 and _bit(opts.new_axis_mask, i - expanded):
            new_axis |= 1 << i
        i += 1
    start, stop, stride = [0] * eff, [0] * eff, [1] * eff
    begin_mask = end_mask = shrink_mask = 0
    shape = [0] * eff
    added_ellipsis = added_axes = 0
    try:
        for i in range(eff):
            if _bit(ellipsis, i):
                added_ellipsis = max(0, i - ellipsis_start)
                begin_mask |= 1 << i
                end_mask |= 1 << i
                shape[i] = in_shape[i - added_axes]
            elif _bit(new_axis, i):
                stop[i] = 1
                shape[i] = 1
                added_axes += 1
            elif i >= count + expanded:
                begin_mask |= 1 << i
                end_mask |= 1 << i
                shape[i] = in_shape[i - added_axes]
            else:
                k = i - added_ellipsis
                start[i], stop[i], stride[i] = int(begin[k]), int(end[k]), int(strides[k])
                begin_mask |= _bit(opts.begin_mask, k) << i
                end_mask |= _bit(opts.end_mask, k) << i
                shrink_mask |= _bit(opts.shrink_axis_mask, k) << i
                shape[i] = in_shape[i - added_axes]
    except IndexError:
        raise ctx.error("the ellipsis / new axis masks do not fit the input rank") from None
    return shape, start, stop, stride, begin_mask, end_mask, shrink_mask


def _clamp(v: int, lo: int, hi: int) -> int:
    return hi if v > hi else lo if v < lo else v


def _start_for_axis(size: int, start: int, stride: int, begin_masked: bool) -> int:
    if start < 0:
        start += size
    start = _clamp(start, 0, size) if stride > 0 else _clamp(start, -1, size - 1)
    if begin_masked:
        start = 0 if stride > 0 else size - 1
    return start


def _end_for_axis(size: int, start: int, end: int, stride: int, end_masked: bool, shrink: bool,
                  offset: bool) -> int:
    if shrink:
        return start if start >= size else start + 1
    if offset:
        end += start
    if end < 0:
        end += size
    end = _clamp(end, 0, size) if stride > 0 else _clamp(end, -1, size - 1)
    if end_masked:
        end = size if stride > 0 else -1
    return end


def _as_slice(r: range) -> slice:
    """A slice selecting exactly the indices of range r (a negative stop would wrap)."""
    if len(r) == 0:
        return slice(0, 0)
    last = r[-1]
    stop = last + (1 if r.step > 0 else -1)
    return slice(r[0], None if stop < 0 else stop, r.step)


@register(BuiltinOperator.STRIDED_SLICE)
def prepare_strided_slice(ctx: OpContext) -> Prepared:
    """begin, end, strides: constant int32 vectors; all masks and ``offset`` as TFLite applies them."""
    x, o = ctx.same_type_io(4)
    opts = ctx.options_as(StridedSliceOptions)
    vectors = []
    for i, what in ((1, "begin"), (2, "end"), (3, "strides")):
        if ctx.inputs[i].type != TensorType.INT32:
            raise ctx.error(f"{what} must be int32, not {ctx.inputs[i].type.name}")
        vectors.append(_int_constant(ctx, i, what, 1))
    begin, end, strides = vectors
    if not begin.size == end.size == strides.size:
        raise ctx.error(f"begin, end and strides have {begin.size}, {end.size} and {strides.size} entries")
    if begin.size > 31:
        raise ctx.error("at most 31 indices are supported")
    in_shape = tuple(x.shape)
    shape, start, stop, stride, bmask, emask, smask = _effective_params(ctx, opts, in_shape, begin, end, strides)
    if any(s == 0 for s in stride):
        raise ctx.error(f"strides must be non-zero, got {strides.tolist()}")
    ranges, out_shape = [], []
    for i, size in enumerate(shape):
        first = _start_for_axis(size, start[i], stride[i], _bit(bmask, i))
        last = _end_for_axis(size, first, stop[i], stride[i], _bit(emask, i), _bit(smask, i), opts.offset)
        ranges.append(range(first, last, stride[i]))
        if _bit(smask, i):
            continue
        # The output size as strided_slice.cc ResizeOutputTensor computes it.
        if opts.offset:
            if i >= end.size:
                raise ctx.error("with offset=True, end needs an entry for every dimension")
            n = int(end[i])
        else:
            n = last - first
        if (n < 0) != (stride[i] < 0):
            n = 0
        elif stride[i] < 0:
            n = (n + 1) // stride[i] + 1  # both negative: floor is C's truncation
        else:
            n = 0 if n == 0 else (n - 1) // stride[i] + 1
        out_shape.append(n)
    selected = int(np.prod([len(r) for r in ranges], dtype=np.int64))
    if selected != int(np.prod(out_shape, dtype=np.int64)):
        raise ctx.error(f"the slice selects {selected} elements but its output shape is {tuple(out_shape)}")
    effective_shape = tuple(shape)
    index = tuple(_as_slice(r) for r in ranges)

    def run(inputs, outputs):
        ref.strided_slice(inputs[0], effective_shape, index, outputs[0])

    return Prepared((tuple(out_shape),), run)


# ------------------------------------------------------------------------ SLICE


@register(BuiltinOperator.SLICE)
def prepare_slice(ctx: OpContext) -> Prepared:
    """The block of ``size`` elements from ``begin`` (constant int32/int64 vectors, one entry a
    dimension; a size of -1 takes the rest of the dimension)."""
    x, o = ctx.same_type_io(3)
    rank = len(x.shape)
    begin, size = _int_constant(ctx, 1, "begin", 1), _int_constant(ctx, 2, "size", 1)
    if ctx.inputs[1].type != ctx.inputs[2].type:
        raise ctx.error(f"begin and size must have one type, have {ctx.inputs[1].type.name} and "
                        f"{ctx.inputs[2].type.name}")
    if begin.size != rank or size.size != rank:
        raise ctx.error(f"begin and size need {rank} entries (the input's rank), have {begin.size} and {size.size}")
    index, out_shape = [], []
    for d, (n, b, k) in enumerate(zip(x.shape, begin.tolist(), size.tolist())):
        k = n - b if k == -1 else k
        if not (0 <= b <= n and 0 <= k <= n - b):
            raise ctx.error(f"begin {begin.tolist()} and size {size.tolist()} leave dimension {d} "
                            f"of shape {x.shape}")
        index.append(slice(b, b + k))
        out_shape.append(k)
    if tuple(o.shape) != tuple(out_shape):  # (LiteRT 2.3's Prepare checks the declared shape)
        raise ctx.error(f"the output is declared {tuple(o.shape)}, the slice is {tuple(out_shape)}")
    index, in_shape = tuple(index), tuple(x.shape)

    def run(inputs, outputs):
        ref.strided_slice(inputs[0], in_shape, index, outputs[0])

    return Prepared((tuple(out_shape),), run)
