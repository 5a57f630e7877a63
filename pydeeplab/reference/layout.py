"""Operators that rearrange elements without changing them: TRANSPOSE, DEPTH_TO_SPACE,
SPACE_TO_DEPTH, PACK, UNPACK, SPLIT / SPLIT_V, GATHER, GATHER_ND (``reference/transpose.h``, ``depth_to_space``,
``space_to_depth``, ``pack.cc``, ``unpack.cc``, ``reference/split.h``, ``reference/gather.h``).

Quantized tensors move as their raw integers (TFLite checks at plan time that the
parameters match where it cares). Both backends run these functions: the work is
memory traffic that NumPy already does at full speed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def transpose(x: np.ndarray, perm: tuple[int, ...], out: np.ndarray) -> None:
    """out = x with its dimensions permuted: ``out.shape[i] == x.shape[perm[i]]``."""
    out[...] = np.transpose(x, perm)


def depth_to_space(x: np.ndarray, block: int, out: np.ndarray) -> None:
    """DEPTH_TO_SPACE of NHWC x [N, H, W, C*b*b] into [N, H*b, W*b, C] (TensorFlow's DCR order).

    ``out[n, h*b + i, w*b + j, c] = x[n, h, w, (i*b + j)*C + c]``.
    """
    n, h, w, c = out.shape[0], x.shape[1], x.shape[2], out.shape[3]
    out.reshape(n, h, block, w, block, c)[...] = x.reshape(n, h, w, block, block, c).transpose(0, 1, 3, 2, 4, 5)


def space_to_depth(x: np.ndarray, block: int, out: np.ndarray) -> None:
    """SPACE_TO_DEPTH of NHWC x [N, H*b, W*b, C] into [N, H, W, b*b*C], the inverse of DEPTH_TO_SPACE."""
    n, h, w, c = x.shape[0], out.shape[1], out.shape[2], x.shape[3]
    out.reshape(n, h, w, block, block, c)[...] = x.reshape(n, h, block, w, block, c).transpose(0, 1, 3, 2, 4, 5)


def pack(xs: Sequence[np.ndarray], axis: int, out: np.ndarray) -> None:
    """PACK: stack arrays of one shape along a new dimension ``axis`` (0 <= axis <= rank)."""
    np.stack(xs, axis=axis, out=out)


def unpack(x: np.ndarray, axis: int, outs: Sequence[np.ndarray]) -> None:
    """UNPACK: ``outs[i] = x[..., i, ...]`` along ``axis``, the inverse of PACK."""
    for i, o in enumerate(outs):
        o[...] = np.take(x, i, axis=axis)


def split(x: np.ndarray, axis: int, cuts: Sequence[int], outs: Sequence[np.ndarray]) -> None:
    """SPLIT / SPLIT_V: ``outs`` the consecutive parts of x along ``axis``, cut before the indices ``cuts``."""
    for o, part in zip(outs, np.split(x, cuts, axis=axis)):
        o[...] = part


def gather(params: np.ndarray, indices: np.ndarray, axis: int, batch_dims: int, out: np.ndarray) -> None:
    """GATHER: slices of ``params`` along ``axis`` picked by ``indices`` (valid, non-negative).

    out.shape = params.shape[:axis] + indices.shape[batch_dims:] + params.shape[axis + 1:];
    the first ``batch_dims`` dimensions of params and indices are matched pairwise
    (each batch gathers with its own indices).
    """
    idx = indices.astype(np.int64)
    if batch_dims == 0:
        out[...] = np.take(params, idx, axis=axis)
        return
    batch_shape = params.shape[:batch_dims]
    nb = int(np.prod(batch_shape, dtype=np.int64))
    p = params.reshape((nb,) + params.shape[batch_dims:])
    i = idx.reshape((nb,) + idx.shape[batch_dims:])
    o = out.reshape((nb,) + out.shape[batch_dims:])
    for b in range(nb):
        o[b] = np.take(p[b], i[b], axis=axis - batch_dims)


def gather_nd(params: np.ndarray, indices: np.ndarray, out: np.ndarray) -> None:
    """GATHER_ND: ``out[i...] = params[indices[i..., 0], ..., indices[i..., nd - 1]]`` (indices valid and
    non-negative): out.shape = indices.shape[:-1] + params.shape[nd:], nd = indices.shape[-1]."""
    nd = indices.shape[-1]
    picked = params[tuple(indices[..., k].astype(np.intp) for k in range(nd))]
    out[...] = picked.reshape(out.shape)
