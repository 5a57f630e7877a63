"""MLPerf's ResizeArgmax custom operator, the NumPy reference (``pydeeplab.ops.custom.mlperf``).

The semantics are those of mobile_app_open's ``resize_argmax_op.cc`` (its
portable path), a 4x bilinear upsampling of uint8 logits fused with the argmax
over channels, in integers:

* ``A[y, x]`` = argmax over channels of the input pixel (first maximum).
* Input pixel (y, x) owns the 4x4 output block at (4y, 4x). On the last input
  row or column, and wherever the four corners A[y, x], A[y, x+1], A[y+1, x],
  A[y+1, x+1] agree, the whole block is A[y, x].
* Otherwise each block position (i, j) takes the argmax over channels of an
  integer bilinear blend of the four corner pixels: along x, from left ``l`` and
  right ``r``, ``[l, (3l + r) // 4, (l + r) // 2, (l + 3r) // 4]`` for j = 0..3
  (top row from the upper corners, bottom from the lower ones); then along y the
  same weights between top ``t`` and bottom ``b``: ``[t, (3t + b) // 4,
  (t + b) // 2, (t + 3b) // 4]`` for i = 0..3. Ties go to the lowest channel.

The source names dims[1] "width" and dims[2] "height" while walking NHWC rows,
which is only consistent for square inputs (the only shape MLPerf ships); here
dims[1] is the height, and on square inputs the two agree.
"""

from __future__ import annotations

import numpy as np


def _blend(a: np.ndarray, b: np.ndarray, axis: int) -> np.ndarray:
    """The four integer blends from a to b, stacked on a new axis."""
    return np.stack([a, (3 * a + b) // 4, (a + b) // 2, (a + 3 * b) // 4], axis=axis)


def resize_argmax(x: np.ndarray, out: np.ndarray) -> None:
    """ResizeArgmax: x uint8 [N, H, W, C] -> out int32 [N, 4H, 4W] (or [N, 4H, 4W, 1])."""
    n, h, w, c = x.shape
    labels = out.reshape(n, h, 4, w, 4)
    corner = np.argmax(x, axis=-1).astype(np.int32)  # A: the first maximum
    labels[...] = corner[:, :, None, :, None]
    if h < 2 or w < 2:
        return
    v = x.astype(np.uint32)
    tl, tr, bl, br = v[:, :-1, :-1], v[:, :-1, 1:], v[:, 1:, :-1], v[:, 1:, 1:]
    top, bottom = _blend(tl, tr, -2), _blend(bl, br, -2)  # [N, H-1, W-1, 4 (j), C]
    values = _blend(top, bottom, -3)  # [N, H-1, W-1, 4 (i), 4 (j), C]
    blended = np.argmax(values, axis=-1).astype(np.int32)  # strict '>' from 0: the first maximum
    a = corner
    uniform = (a[:, :-1, :-1] == a[:, :-1, 1:]) & (a[:, :-1, 1:] == a[:, 1:, :-1]) & (a[:, 1:, :-1] == a[:, 1:, 1:])
    interior = labels[:, :-1, :, :-1, :]  # [N, H-1, 4 (i), W-1, 4 (j)]
    mixed = ~uniform
    interior.transpose(0, 1, 3, 2, 4)[mixed] = blended[mixed]


__all__ = ["resize_argmax"]
