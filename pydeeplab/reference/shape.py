"""Data-movement operators: CONCATENATION, RESHAPE/SQUEEZE, PAD, SPACE_TO_BATCH_ND,
BATCH_TO_SPACE_ND, TILE, STRIDED_SLICE.

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


def space_to_batch_nd(x: np.ndarray, block_shape: Sequence[int], paddings: np.ndarray, pad_value,
                      out: np.ndarray) -> None:
    """SPACE_TO_BATCH_ND on [N, H, W, C] (or [N, H, C] with one block dimension).

    The spatially padded input is cut into blocks; the position (bh, bw) inside the
    block picks the output batch ``(bh * block_w + bw) * N + n``.
    """
    n, c = x.shape[0], x.shape[-1]
    spatial = x.shape[1:-1]
    padded = np.full((n, *(d + int(p0) + int(p1) for d, (p0, p1) in zip(spatial, paddings)), c),
                     pad_value, dtype=x.dtype)
    padded[(slice(None), *(slice(int(p0), int(p0) + d) for d, (p0, _) in zip(spatial, paddings)))] = x
    m = len(block_shape)
    # [N, H/bh, bh, W/bw, bw, C] -> [bh, bw, N, H/bh, W/bw, C]
    split = [n]
    for d, b in zip(padded.shape[1:-1], block_shape):
        split += [d // b, b]
    blocks = padded.reshape(*split, c)
    order = [2 + 2 * i for i in range(m)] + [0] + [1 + 2 * i for i in range(m)] + [2 * m + 1]
    out[...] = blocks.transpose(order).reshape(out.shape)


def batch_to_space_nd(x: np.ndarray, block_shape: Sequence[int], crops: np.ndarray, out: np.ndarray) -> None:
    """BATCH_TO_SPACE_ND, the inverse of SPACE_TO_BATCH_ND: batches interleave back into
    space, then ``crops`` [M, 2] (before, after) are cut from each spatial dimension."""
    m = len(block_shape)
    n = x.shape[0] // int(np.prod(block_shape))
    spatial, c = x.shape[1:-1], x.shape[-1]
    # [bh, bw, N, H, W, C] -> [N, H, bh, W, bw, C]
    grid = x.reshape(*block_shape, n, *spatial, c)
    order = [m]
    for i in range(m):
        order += [m + 1 + i, i]
    order.append(2 * m + 1)
    full = grid.transpose(order).reshape(n, *(d * b for d, b in zip(spatial, block_shape)), c)
    out[...] = full[(slice(None), *(slice(int(c0), int(c0) + o) for (c0, _), o in zip(crops, out.shape[1:-1])))]


def tile(x: np.ndarray, multiples: Sequence[int], out: np.ndarray) -> None:
    """TILE: x repeated ``multiples[d]`` times along each dimension d."""
    out[...] = np.tile(x, tuple(int(k) for k in multiples))


def strided_slice(x: np.ndarray, effective_shape: Sequence[int], index: Sequence[slice], out: np.ndarray) -> None:
    """STRIDED_SLICE: x viewed with its new axes inserted (``effective_shape``), sliced by one
    ``slice`` per dimension (start, stop, step resolved at plan time), reshaped to out
    (shrunk axes removed)."""
    out[...] = x.reshape(effective_shape)[tuple(index)].reshape(out.shape)
