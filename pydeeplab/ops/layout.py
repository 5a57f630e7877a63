"""TRANSPOSE, DEPTH_TO_SPACE, SPACE_TO_DEPTH, PACK, UNPACK, SPLIT, SPLIT_V, GATHER, GATHER_ND,
SHAPE: moving elements.

Prepare follows TFLite's ``kernels/transpose.cc``, ``depth_to_space.cc``,
``space_to_depth.cc``, ``pack.cc``, ``unpack.cc``, ``split.cc``, ``split_v.cc``, ``gather.cc``,
``gather_nd.cc`` and ``shape.cc``: output shapes from the input shapes and the constant inputs (the permutation,
block size, axis, split sizes), the same type checks, and for PACK / UNPACK the same
requirement that 8-bit inputs and outputs share scale and zero point (SPLIT copies values
whatever the outputs' parameters, as TFLite does). Values are
moved, never rescaled, so any type NumPy holds works (float32, uint8, int8, int16,
int32, int64, bool where TFLite accepts it). Both backends run
``reference/layout.py``.
"""

from __future__ import annotations

import math

import numpy as np

from ..reference import layout as ref
from ..tflite.options import DepthToSpaceOptions, GatherOptions, PackOptions, ShapeOptions, SpaceToDepthOptions
from ..tflite.options import SplitOptions, SplitVOptions, UnpackOptions
from ..tflite.schema import BuiltinOperator, TensorType
from .base import OpContext, Prepared, TensorSpec, register

_T = TensorType
#: types each operator moves (TFLite's Eval type switches, restricted to NumPy's)
_TRANSPOSE_TYPES = (_T.FLOAT32, _T.UINT8, _T.INT8, _T.INT16, _T.INT32, _T.INT64, _T.BOOL)
_SPACE_TYPES = (_T.FLOAT32, _T.UINT8, _T.INT8, _T.INT32, _T.INT64)
_PACK_TYPES = (_T.FLOAT32, _T.UINT8, _T.INT8, _T.INT16, _T.INT32, _T.INT64)
_UNPACK_TYPES = (_T.FLOAT32, _T.UINT8, _T.INT8, _T.INT16, _T.INT32, _T.BOOL)
_SPLIT_TYPES = (_T.FLOAT32, _T.UINT8, _T.INT8, _T.INT16, _T.INT32, _T.INT64)
_GATHER_TYPES = (_T.FLOAT32, _T.FLOAT16, _T.UINT8, _T.INT8, _T.INT16, _T.INT32, _T.INT64, _T.BOOL)


def _check_type(ctx: OpContext, x: TensorSpec, allowed, out: TensorSpec | None = None) -> None:
    if x.type not in allowed:
        raise ctx.error(f"{x.type.name} input is not supported "
                        f"({', '.join(t.name.lower() for t in allowed)} are)")
    if out is not None and out.type != x.type:
        raise ctx.error(f"output type {out.type.name} differs from the input type {x.type.name}")


def _params(t: TensorSpec) -> tuple[float, int]:
    """(scale, zero point) as TFLite's ``params`` holds them: (0, 0) without quantization."""
    return (t.quantization.scale, t.quantization.zero_point) if t.is_quantized else (0.0, 0)


def _same_params(ctx: OpContext, a: TensorSpec, b: TensorSpec, what: str) -> None:
    if a.type in (_T.UINT8, _T.INT8, _T.INT16) and _params(a) != _params(b):
        raise ctx.error(f"{what} must have the output's scale and zero point "
                        f"({_params(a)} vs {_params(b)})")


# ------------------------------------------------------------------- TRANSPOSE


@register(BuiltinOperator.TRANSPOSE)
def prepare_transpose(ctx: OpContext) -> Prepared:
    """Permute dimensions by a constant int32/int64 ``perm`` (negative entries count from the end)."""
    ctx.expect_io(2)
    x, o = ctx.inputs[0], ctx.outputs[0]
    _check_type(ctx, x, _TRANSPOSE_TYPES, o)
    rank = len(x.shape)
    if rank > 6:
        raise ctx.error(f"transpose of a {rank}-D tensor is not supported (at most 6-D, as TFLite)")
    if ctx.inputs[1].type not in (_T.INT32, _T.INT64):
        raise ctx.error(f"perm must be int32 or int64, not {ctx.inputs[1].type.name}")
    perm_v = ctx.constant(1, "perm").astype(np.int64)
    if perm_v.ndim != 1 or perm_v.size != rank:
        raise ctx.error(f"perm has shape {perm_v.shape}, needs ({rank},) for input shape {x.shape}")
    perm = tuple(int(p) + rank if p < 0 else int(p) for p in perm_v)
    if sorted(perm) != list(range(rank)):
        raise ctx.error(f"perm {perm_v.tolist()} is not a permutation of the {rank} dimensions")
    out_shape = tuple(x.shape[p] for p in perm)

    def run(inputs, outputs):
        ref.transpose(inputs[0], perm, outputs[0])

    return Prepared((out_shape,), run)


# ---------------------------------------------------- DEPTH_TO_SPACE / SPACE_TO_DEPTH


@register(BuiltinOperator.DEPTH_TO_SPACE, BuiltinOperator.SPACE_TO_DEPTH)
def prepare_depth_space(ctx: OpContext) -> Prepared:
    """Move b x b blocks between the channels and the spatial dimensions of an NHWC tensor."""
    ctx.expect_io(1)
    x, o = ctx.inputs[0], ctx.outputs[0]
    _check_type(ctx, x, _SPACE_TYPES, o)
    to_space = ctx.opcode == BuiltinOperator.DEPTH_TO_SPACE
    options = ctx.options_as(DepthToSpaceOptions if to_space else SpaceToDepthOptions)
    b = int(options.block_size)
    if len(x.shape) != 4:
        raise ctx.error(f"input must be 4-D (NHWC), has shape {x.shape}")
    if b <= 0:
        raise ctx.error(f"block_size must be positive, got {b}")
    n, h, w, c = x.shape
    if to_space:
        if c % (b * b):
            raise ctx.error(f"{c} channels are not a multiple of block_size^2 = {b * b}")
        out_shape = (n, h * b, w * b, c // (b * b))

        def run(inputs, outputs):
            ref.depth_to_space(inputs[0], b, outputs[0])
    else:
        if h % b or w % b:
            raise ctx.error(f"height {h} and width {w} must be multiples of block_size {b}")
        out_shape = (n, h // b, w // b, c * b * b)

        def run(inputs, outputs):
            ref.space_to_depth(inputs[0], b, outputs[0])

    return Prepared((out_shape,), run)


# ---------------------------------------------------------------- PACK / UNPACK


@register(BuiltinOperator.PACK)
def prepare_pack(ctx: OpContext) -> Prepared:
    """Stack ``values_count`` inputs of one shape along a new dimension ``axis``."""
    options = ctx.options_as(PackOptions)
    if len(ctx.inputs) != options.values_count or len(ctx.outputs) != 1:
        raise ctx.error(f"expects values_count = {options.values_count} inputs and 1 output, "
                        f"has {len(ctx.inputs)} and {len(ctx.outputs)}")
    if not ctx.inputs or any(t is None for t in ctx.inputs):
        raise ctx.error("needs at least one input and no absent (-1) input")
    first, o = ctx.inputs[0], ctx.outputs[0]
    _check_type(ctx, first, _PACK_TYPES, o)
    rank = len(first.shape)
    axis = options.axis + rank + 1 if options.axis < 0 else options.axis
    if not 0 <= axis <= rank:
        raise ctx.error(f"axis {options.axis} is out of range for inputs of rank {rank}")
    for k, t in enumerate(ctx.inputs):
        if t.shape != first.shape or t.type != first.type:
            raise ctx.error(f"input {k} ({t.type.name} {t.shape}) differs from input 0 "
                            f"({first.type.name} {first.shape})")
        _same_params(ctx, t, o, f"input {k}")
    out_shape = tuple(first.shape[:axis]) + (len(ctx.inputs),) + tuple(first.shape[axis:])

    def run(inputs, outputs):
        ref.pack(inputs, axis, outputs[0])

    return Prepared((out_shape,), run)


@register(BuiltinOperator.UNPACK)
def prepare_unpack(ctx: OpContext) -> Prepared:
    """Split the input along ``axis`` into ``num`` outputs with that dimension removed."""
    options = ctx.options_as(UnpackOptions)
    if len(ctx.inputs) != 1 or ctx.inputs[0] is None:
        raise ctx.error(f"expects 1 input, has {len(ctx.inputs)}")
    x = ctx.inputs[0]
    _check_type(ctx, x, _UNPACK_TYPES)
    rank = len(x.shape)
    axis = options.axis + rank if options.axis < 0 else options.axis
    if not 0 <= axis < rank:
        raise ctx.error(f"axis {options.axis} is out of range for an input of rank {rank}")
    if int(np.prod(x.shape, dtype=np.int64)) == 0:
        raise ctx.error("the input is empty (TFLite requires elements)")
    if options.num != x.shape[axis] or len(ctx.outputs) != options.num:
        raise ctx.error(f"num = {options.num} and {len(ctx.outputs)} outputs must both equal "
                        f"dimension {axis} of shape {x.shape}")
    for k, o in enumerate(ctx.outputs):
        if o.type != x.type:
            raise ctx.error(f"output {k} type {o.type.name} differs from the input type {x.type.name}")
        _same_params(ctx, x, o, "the input")
    out_shape = tuple(d for i, d in enumerate(x.shape) if i != axis)

    def run(inputs, outputs):
        ref.unpack(inputs[0], axis, outputs)

    return Prepared((out_shape,) * len(ctx.outputs), run)


# ------------------------------------------------------------------ SPLIT / SPLIT_V


def _split_axis(ctx: OpContext, i: int, rank: int) -> int:
    """The constant axis of input ``i`` (its first element, as TFLite reads it), in [0, rank)."""
    data = ctx.constant(i, "axis")
    if ctx.inputs[i].type != _T.INT32 or data.size < 1:
        raise ctx.error(f"axis (input {i}) must hold an int32, has {ctx.inputs[i].type.name} {data.shape}")
    value = int(data.reshape(-1)[0])
    axis = value + rank if value < 0 else value
    if not 0 <= axis < rank:
        raise ctx.error(f"axis {value} is out of range for an input of rank {rank}")
    return axis


def _split(ctx: OpContext, i: int, axis: int, sizes: list[int]) -> Prepared:
    """Input ``i`` cut along ``axis`` into outputs of ``sizes``, each of its type."""
    x = ctx.inputs[i]
    for k, o in enumerate(ctx.outputs):
        if o.type != x.type:
            raise ctx.error(f"output {k} type {o.type.name} differs from the input type {x.type.name}")
    shapes = tuple(tuple(x.shape[:axis]) + (n,) + tuple(x.shape[axis + 1:]) for n in sizes)
    cuts = np.cumsum(sizes)[:-1].tolist()

    def run(inputs, outputs):
        ref.split(inputs[i], axis, cuts, outputs)

    return Prepared(shapes, run)


def _split_options(ctx: OpContext, cls: type, inputs: tuple[str, ...]):
    """The options of SPLIT / SPLIT_V (``cls``), once the operator has ``inputs`` (their names) and
    ``num_splits`` outputs."""
    options = ctx.options_as(cls)
    if len(ctx.inputs) != len(inputs) or None in ctx.inputs:
        raise ctx.error(f"expects {len(inputs)} inputs ({', '.join(inputs)}), has {len(ctx.inputs)}")
    if len(ctx.outputs) != options.num_splits:
        raise ctx.error(f"num_splits = {options.num_splits} but the operator has {len(ctx.outputs)} outputs")
    return options


@register(BuiltinOperator.SPLIT)
def prepare_split(ctx: OpContext) -> Prepared:
    """Cut input 1 into ``num_splits`` equal parts along the axis of input 0 (a constant)."""
    options = _split_options(ctx, SplitOptions, ("axis", "input"))
    x = ctx.inputs[1]
    _check_type(ctx, x, _SPLIT_TYPES)
    axis = _split_axis(ctx, 0, len(x.shape))
    n = options.num_splits
    if n <= 0 or x.shape[axis] % n:
        raise ctx.error(f"dimension {axis} of shape {x.shape} does not split into {n} equal parts")
    return _split(ctx, 1, axis, [x.shape[axis] // n] * n)


@register(BuiltinOperator.SPLIT_V)
def prepare_split_v(ctx: OpContext) -> Prepared:
    """Cut input 0 along the axis of input 2 into parts of the sizes of input 1 (constants; one size
    may be -1: what the others leave)."""
    _split_options(ctx, SplitVOptions, ("input", "size_splits", "axis"))
    x = ctx.inputs[0]
    _check_type(ctx, x, _SPLIT_TYPES)
    if ctx.inputs[1].type not in (_T.INT32, _T.INT64):
        raise ctx.error(f"size_splits must be int32 or int64, not {ctx.inputs[1].type.name}")
    sizes = ctx.constant(1, "size_splits")
    if sizes.ndim != 1 or sizes.size != len(ctx.outputs):
        raise ctx.error(f"size_splits must be a vector of one size per output ({len(ctx.outputs)}), "
                        f"has shape {sizes.shape}")
    axis = _split_axis(ctx, 2, len(x.shape))
    sizes = [int(v) for v in sizes]
    total = x.shape[axis]
    if sizes.count(-1) > 1 or any(v < -1 for v in sizes):
        raise ctx.error(f"size_splits {sizes} must be sizes >= 0 and at most one -1")
    rest = total - sum(v for v in sizes if v != -1)
    if -1 in sizes and rest >= 0:
        sizes[sizes.index(-1)] = rest
    if sum(sizes) != total or -1 in sizes:
        raise ctx.error(f"size_splits {sizes} do not add up to dimension {axis} of shape {x.shape}")
    return _split(ctx, 0, axis, sizes)


# ------------------------------------------------------------------------ GATHER


@register(BuiltinOperator.GATHER)
def prepare_gather(ctx: OpContext) -> Prepared:
    """Pick slices of input 0 along ``axis`` with the int32/int64 indices of input 1."""
    ctx.expect_io(2)
    x, idx, o = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
    _check_type(ctx, x, _GATHER_TYPES, o)
    if idx.type not in (_T.INT32, _T.INT64, _T.INT16):
        raise ctx.error(f"indices must be int16, int32 or int64, not {idx.type.name}")
    options = ctx.options_as(GatherOptions)
    rank, irank = len(x.shape), len(idx.shape)
    axis = options.axis + rank if options.axis < 0 else options.axis
    batch_dims = options.batch_dims + irank if options.batch_dims < 0 else options.batch_dims
    if not 0 <= axis < rank:
        raise ctx.error(f"axis {options.axis} is out of range for an input of rank {rank}")
    if not (0 <= batch_dims <= axis and batch_dims < rank and batch_dims <= irank):
        raise ctx.error(f"batch_dims {options.batch_dims} must be in [0, axis] and below both ranks")
    if tuple(x.shape[:batch_dims]) != tuple(idx.shape[:batch_dims]):
        raise ctx.error(f"the first {batch_dims} dimensions of input {x.shape} and indices {idx.shape} differ")
    out_shape = tuple(x.shape[:axis]) + tuple(idx.shape[batch_dims:]) + tuple(x.shape[axis + 1:])
    limit = x.shape[axis]

    def check(indices: np.ndarray) -> None:
        if indices.size and (indices.min() < 0 or indices.max() >= limit):
            bad = indices[(indices < 0) | (indices >= limit)].reshape(-1)[0]
            raise ctx.error(f"index {int(bad)} is out of range [0, {limit}) along axis {axis}")

    return Prepared((out_shape,), _checked_run(idx, check, lambda inputs, outputs: ref.gather(
        inputs[0], inputs[1], axis, batch_dims, outputs[0])))


def _checked_run(idx: TensorSpec, check, gather):
    """The run of a gather whose indices (input 1, ``idx``) ``check`` validates: once here when they
    are constant, else at every run before ``gather(inputs, outputs)``."""
    if idx.data is not None:
        check(idx.data)

    def run(inputs, outputs):
        if idx.data is None:
            check(inputs[1])
        gather(inputs, outputs)

    return run


@register(BuiltinOperator.GATHER_ND)
def prepare_gather_nd(ctx: OpContext) -> Prepared:
    """Pick the slices of input 0 named by the index vectors along the last dimension of input 1
    (int16/int32/int64): out.shape = indices.shape[:-1] + params.shape[nd:]."""
    ctx.expect_io(2)
    x, idx, o = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
    _check_type(ctx, x, _GATHER_TYPES, o)
    if idx.type not in (_T.INT32, _T.INT64, _T.INT16):
        raise ctx.error(f"indices must be int16, int32 or int64, not {idx.type.name}")
    if len(x.shape) < 1 or len(idx.shape) < 1:
        raise ctx.error(f"params {x.shape} and indices {idx.shape} must both be at least vectors")
    nd = idx.shape[-1]
    if nd > len(x.shape):
        raise ctx.error(f"index vectors of length {nd} exceed the params' rank {len(x.shape)}")
    if math.prod(x.shape) == 0 and math.prod(idx.shape) != 0:
        raise ctx.error("cannot gather from empty params")
    out_shape = tuple(idx.shape[:-1]) + tuple(x.shape[nd:])
    limits = np.array(x.shape[:nd], np.int64)

    def check(indices: np.ndarray) -> None:
        bad = (indices < 0) | (indices >= limits)
        if bad.any():
            where = tuple(int(v) for v in np.argwhere(bad)[0])
            raise ctx.error(f"index {int(indices[where])} at {where} is out of range for params {x.shape}")

    return Prepared((out_shape,), _checked_run(idx, check, lambda inputs, outputs: ref.gather_nd(
        inputs[0], inputs[1], outputs[0])))


# ------------------------------------------------------------------------- SHAPE


@register(BuiltinOperator.SHAPE)
def prepare_shape(ctx: OpContext) -> Prepared:
    """The input's shape as an int32 or int64 vector (known at plan time: a constant)."""
    ctx.expect_io(1)
    x, o = ctx.inputs[0], ctx.outputs[0]
    options = ctx.options_as(ShapeOptions)
    if o.type not in (_T.INT32, _T.INT64):
        raise ctx.error(f"output type must be int32 or int64, not {o.type.name}")
    wanted = options.out_type if options.out_type in (_T.INT32, _T.INT64) else _T.INT32
    if wanted != o.type and options.out_type != _T.FLOAT32:
        raise ctx.error(f"out_type {wanted.name} differs from the output tensor type {o.type.name}")
    value = np.array(x.shape, dtype=o.dtype)

    def run(inputs, outputs):
        outputs[0][...] = value

    return Prepared(((len(x.shape),),), run)
