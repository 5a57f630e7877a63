"""MediaPipe's custom operators, the NumPy reference (see ``pydeeplab.ops.custom.mediapipe``).

Each function states the semantics of mediapipe/util/tflite/operations/*.cc on
NHWC float32 arrays; ``window`` is (filter_h, filter_w, stride_h, stride_w, pad_h, pad_w)
with the padding already computed as MediaPipe's Prepare does.
"""

from __future__ import annotations

import numpy as np

from .conv import FloatStage, transpose_conv

#: MediaPipe's transpose convolution starts from the bias and clamps nothing.
_NO_CLAMP = FloatStage(-np.inf, np.inf)


def convolution_2d_transpose_bias(x: np.ndarray, weights: np.ndarray, bias: np.ndarray, out: np.ndarray,
                                  stride: tuple[int, int], padding: tuple[int, int]) -> None:
    """Convolution2DTransposeBias: TRANSPOSE_CONV plus bias, no activation.

    x: [N, H, W, Cin]; weights: [Cout, KH, KW, Cin]; bias: [Cout]; out: [N, OH, OW, Cout];
    padding: (top, left), cropped from the full transposed output.
    """
    transpose_conv(x, weights, bias, out, stride, padding, _NO_CLAMP)


def max_pooling_with_argmax_2d(x: np.ndarray, out: np.ndarray, indices: np.ndarray,
                               window: tuple[int, int, int, int, int, int],
                               act_min: float, act_max: float) -> None:
    """MaxPoolingWithArgmax2D: out = clamp(window maximum), indices = its position in the window.

    The running maximum starts at float32's lowest and takes a tap only if strictly
    greater, taps visited row by row: the first maximum wins, NaN never does. The
    index is ``y * filter_w + x + 0.1`` as float32 (0.1 so that truncation gives y * fw + x).
    x: [N, H, W, C] float32; out, indices: [N, OH, OW, C] float32.
    """
    fh, fw, sh, sw, ph, pw = window
    n, h, w, c = x.shape
    oh, ow = out.shape[1:3]
    # Taps outside the input hold -inf, which is never strictly greater than the start value.
    bottom, right = max(0, (oh - 1) * sh + fh - ph - h), max(0, (ow - 1) * sw + fw - pw - w)
    padded = np.pad(x, ((0, 0), (ph, bottom), (pw, right), (0, 0)), constant_values=-np.inf)
    best = np.full(out.shape, np.finfo(np.float32).min, dtype=np.float32)
    where = np.zeros(out.shape, dtype=np.int64)
    for i in range(fh):
        for j in range(fw):
            tap = padded[:, i : i + (oh - 1) * sh + 1 : sh, j : j + (ow - 1) * sw + 1 : sw]
            better = tap > best
            best[better] = tap[better]
            where[better] = i * fw + j
    out[...] = np.minimum(np.maximum(best, np.float32(act_min)), np.float32(act_max))
    indices[...] = where.astype(np.float32) + np.float32(0.1)


def max_unpooling_2d(x: np.ndarray, indices: np.ndarray, out: np.ndarray,
                     window: tuple[int, int, int, int, int, int]) -> None:
    """MaxUnpooling2D: a zeroed output where each input value lands where its index says.

    Input pixel (y, x) with index k (truncated to an integer, as C converts a float)
    writes to output (y * stride_h - pad_h + k / fw, x * stride_w - pad_w + k % fw),
    C integer division; positions outside the output are skipped, and where two
    values land on one position the later one (input order) stays.
    x, indices: [N, H, W, C] float32; out: [N, H * fh, W * fw, C] float32.
    """
    fh, fw, sh, sw, ph, pw = window
    n, h, w, c = x.shape
    oh, ow = out.shape[1:3]
    out[...] = 0
    finite = np.isfinite(indices) & (np.abs(indices) < 2**31)
    k = np.trunc(np.where(finite, indices, 0)).astype(np.int64)
    dy, dx = np.fix(k / fw).astype(np.int64), np.fmod(k, fw)  # C's / and % round toward zero
    ys = np.arange(h).reshape(1, h, 1, 1) * sh - ph + dy
    xs = np.arange(w).reshape(1, 1, w, 1) * sw - pw + dx
    ok = finite & (ys >= 0) & (ys < oh) & (xs >= 0) & (xs < ow)
    b = np.arange(n).reshape(n, 1, 1, 1)
    ch = np.arange(c).reshape(1, 1, 1, c)
    flat = ((b * oh + ys) * ow + xs) * c + ch
    out.reshape(-1)[flat[ok]] = x[ok]  # boolean selection keeps input order: the last write wins


__all__ = ["convolution_2d_transpose_bias", "max_pooling_with_argmax_2d", "max_unpooling_2d"]
