"""Data-movement operators: CONCATENATION, RESHAPE/SQUEEZE/EXPAND_DIMS, PAD, MIRROR_PAD (a gather
planned from ``mirror_pad.cc``'s index map), SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND, TILE,
STRIDED_SLICE and SLICE (a STRIDED_SLICE of unit steps).

Every function writes the preallocated ``out`` (its shape fixed at plan time) and
moves values unchanged, except uint8 CONCATENATION, which requantizes inputs whose
scale or zero point differ from the output's with TFLite's float arithmetic
(``reference/concatenation.h`` ``ConcatenationWithScaling``). Both backends run
these functions: the work is memory traffic NumPy already does at full speed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .fixedpoint import round_half_away


def concatenation(xs: Sequence[np.ndarray], axis: int, out: np.ndarray) -> None:
    """Join arrays of equal rank along ``axis`` (non-negative); other dimensions match."""
    np.concatenate(xs, axis=axis, out=out)


def requantize_uint8_for_concatenation(x: np.ndarray, input_scale: float, input_zero_point: int,
                                       output_scale: float, output_zero_point: int) -> np.ndarray:
    """One uint8 input of CONCATENATION on the output's scale, in TFLite's float32 arithmetic.

    ``round(x * scale + bias) + zp_out`` clamped to [0, 255], with ``scale = s_in * (1 / s_out)``
    and ``bias = -zp_in * scale``: each a separately rounded float32 operation (the
    product and the sum are not fused, which changes the result on rare inputs).
    """
    scale = np.float32(input_scale) * (np.float32(1) / np.float32(output_scale))
    bias = np.float32(-input_zero_point) * scale
    value = round_half_away(x.astype(np.float32) * scale + bias).astype(np.int64) + output_zero_point
    return np.clip(value, 0, 255).astype(np.uint8)


def concatenation_uint8(xs: Sequence[np.ndarray], axis: int, input_scales: Sequence[float],
                        input_zero_points: Sequence[int], output_scale: float, output_zero_point: int,
                        out: np.ndarray) -> None:
    """uint8 CONCATENATION: inputs with the output's (scale, zero point) are copied, others
    requantized by :func:`requantize_uint8_for_concatenation`."""
    parts = [x if (s == output_scale and z == output_zero_point)
             else requantize_uint8_for_concatenation(x, s, z, output_scale, output_zero_point)
             for x, s, z in zip(xs, input_scales, input_zero_points)]
    np.concatenate(parts, axis=axis, out=out)


def reshape(x: np.ndarray, out: np.ndarray) -> None:
    """RESHAPE and SQUEEZE: the same elements in row-major order, in out's shape."""
    out[...] = x.reshape(out.shape)


def pad(x: np.ndarray, paddings: np.ndarray, pad_value, out: np.ndarray) -> None:
    """PAD: x surrounded by ``pad_value``. paddings: int [rank, 2] of (before, after) >= 0."""
    out[...] = pad_value
    out[tuple(slice(int(before), int(before) + n) for (before, _), n in zip(paddings, x.shape))] = x


def _block_slices(offsets, block_shape, shifts, sizes_from, sizes_to):
    """For one position inside the blocks, the matching slices of the blocked and the spatial side.

    Blocked coordinate s (per block dimension) is spatial coordinate ``s * b + off - shift``;
    returns (blocked slices, spatial slices) covering the coordinates valid on both sides,
    or None when there are none. ``sizes_from``: blocked sizes, ``sizes_to``: spatial sizes.
    """
    blocked, spatial = [slice(None)], [slice(None)]
    for off, b, shift, n_blocked, n_spatial in zip(offsets, block_shape, shifts, sizes_from, sizes_to):
        first = max(0, -((off - shift) // b))  # smallest s with s * b + off - shift >= 0
        last = min(n_blocked, (n_spatial - 1 - off + shift) // b + 1)  # one past the largest inside
        if last <= first:
            return None
        blocked.append(slice(first, last))
        start = first * b + off - shift
        spatial.append(slice(start, start + (last - first - 1) * b + 1, b))
    return tuple(blocked), tuple(spatial)


def space_to_batch_nd(x: np.ndarray, block_shape: Sequence[int], paddings: np.ndarray, pad_value,
                      out: np.ndarray) -> None:
    """SPACE_TO_BATCH_ND on [N, H, W, C] (or [N, H, C] with one block dimension).

    The spatially padded input is cut into blocks; the position (bh, bw) inside the
    block picks the output batch ``(bh * block_w + bw) * N + n``: output pixel (y, x)
    of that batch is padded-input pixel ``(y * block_h + bh, x * block_w + bw)``.
    Written as one strided copy per block position (no padded temporary).
    """
    n = x.shape[0]
    batches = out.reshape(*block_shape, n, *out.shape[1:])  # [bh, (bw,) N, OH, (OW,) C]
    for offsets in np.ndindex(*block_shape):
        batch = batches[offsets]
        cut = _block_slices(offsets, block_shape, [int(p0) for p0, _ in paddings], out.shape[1:-1], x.shape[1:-1])
        if cut is None:
            batch[...] = pad_value
            continue
        batch[cut[0]] = x[cut[1]]
        # The padding: per block dimension, the slabs before and after the copied range.
        for d, inside in enumerate(cut[0][1:], start=1):
            before, after = [slice(None)] * batch.ndim, [slice(None)] * batch.ndim
            before[d], after[d] = slice(0, inside.start), slice(inside.stop, None)
            batch[tuple(before)] = pad_value
            batch[tuple(after)] = pad_value


def batch_to_space_nd(x: np.ndarray, block_shape: Sequence[int], crops: np.ndarray, out: np.ndarray) -> None:
    """BATCH_TO_SPACE_ND, the inverse of SPACE_TO_BATCH_ND: input pixel (y, x) of batch
    ``(bh * block_w + bw) * N + n`` goes to ``(y * block_h + bh, x * block_w + bw)``, then
    ``crops`` [M, 2] (before, after) are cut from each spatial dimension. One strided
    copy per block position."""
    n = out.shape[0]
    batches = x.reshape(*block_shape, n, *x.shape[1:])
    for offsets in np.ndindex(*block_shape):
        cut = _block_slices(offsets, block_shape, [int(c0) for c0, _ in crops], x.shape[1:-1], out.shape[1:-1])
        if cut is not None:
            out[cut[1]] = batches[offsets][cut[0]]


def gather_grid(x: np.ndarray, index: tuple[np.ndarray, ...], out: np.ndarray) -> None:
    """``out = x[index]``, ``index`` one open-mesh index array a dimension (``np.ix_``): the
    source of every output element, as MIRROR_PAD maps them."""
    out[...] = x[index]


def tile(x: np.ndarray, multiples: Sequence[int], out: np.ndarray) -> None:
    """TILE: x repeated ``multiples[d]`` times along each dimension d."""
    out[...] = np.tile(x, tuple(int(k) for k in multiples))


def strided_slice(x: np.ndarray, effective_shape: Sequence[int], index: Sequence[slice], out: np.ndarray) -> None:
    """STRIDED_SLICE: x viewed with its new axes inserted (``effective_shape``), sliced by one
    ``slice`` per dimension (start, stop, step resolved at plan time), reshaped to out
    (shrunk axes removed)."""
    out[...] = x.reshape(effective_shape)[tuple(index)].reshape(out.shape)
