"""Pooling in NumPy: the readable specification of AVERAGE_POOL_2D and MAX_POOL_2D.

TFLite's reference kernels (``reference/pooling.h``, ``reference/integer_ops/pooling.h``)
clamp every window to the input: positions outside it are skipped, not padded
with zeros, so a border window's average divides by the number of input
elements it covers. Here the input is padded with a neutral value and the
windows are strided views of it; the average divides by the precomputed count. Float sums
are taken in TFLite's order, so the float average is TFLite's to the bit.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _windows(x: np.ndarray, filt: tuple[int, int], stride: tuple[int, int], pads: tuple[int, int],
             out_hw: tuple[int, int], fill) -> np.ndarray:
    """Every output position's window: a view of shape [N, OH, OW, C, FH, FW].

    ``pads`` are the (top, left) padding amounts; the input is padded with ``fill``
    at the top/left by them and at the bottom/right as far as the last window reaches.
    """
    n, h, w, c = x.shape
    (fh, fw), (sh, sw), (ph, pw), (oh, ow) = filt, stride, pads, out_hw
    hp = max(ph + h, (oh - 1) * sh + fh)
    wp = max(pw + w, (ow - 1) * sw + fw)
    padded = np.full((n, hp, wp, c), fill, dtype=x.dtype)
    padded[:, ph:ph + h, pw:pw + w] = x
    win = sliding_window_view(padded, (fh, fw), axis=(1, 2))
    return win[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]


def max_pool_2d(x: np.ndarray, filt: tuple[int, int], stride: tuple[int, int], pads: tuple[int, int],
                out_hw: tuple[int, int], act_min, act_max) -> np.ndarray:
    """MAX_POOL_2D of an NHWC tensor (float32 or an integer type): [N, OH, OW, C], same dtype.

    The maximum over each window's input elements, clamped to [act_min, act_max]. As TFLite's
    ``std::max(max, value)`` from the type's lowest value, a NaN is passed by (a window of NaNs
    gives the lowest value, then the clamp's).
    """
    lowest = np.finfo(x.dtype).min if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    m = np.fmax.reduce(_windows(x, filt, stride, pads, out_hw, lowest), axis=(-2, -1), initial=lowest)
    return np.clip(m, act_min, act_max)


def average_pool_2d(x: np.ndarray, filt: tuple[int, int], stride: tuple[int, int], pads: tuple[int, int],
                    out_hw: tuple[int, int], counts: np.ndarray, act_min, act_max) -> np.ndarray:
    """AVERAGE_POOL_2D of an NHWC tensor: [N, OH, OW, C], same dtype.

    counts: [OH, OW] number of input elements in each window. float32: the float32
    sum divided by the count. Integers: the exact sum divided by the count and
    rounded to nearest, ties away from zero (``(acc +- count/2) / count`` with C's
    truncating division). Then clamped to [act_min, act_max].
    """
    win = _windows(x, filt, stride, pads, out_hw, 0)
    if x.dtype.kind == "f":  # float32 in TFLite's order: the taps row by row, one after the other
        acc = _sequential_sum(win.reshape(*win.shape[:4], -1), axis=-1)
    else:
        acc = win.sum(axis=(-2, -1), dtype=np.int64)
    return _average(acc, counts[:, :, None], act_min, act_max, x.dtype)


def _sequential_sum(values: np.ndarray, axis: int) -> np.ndarray:
    """float32 sums along ``axis`` taken one term after the other from the first, as TFLite's loops add
    (``np.add.accumulate`` is sequential, where ``np.sum`` adds pairwise): the same bits as TFLite.
    Zeros of the padding change no sum (a window's skipped taps)."""
    return np.add.accumulate(values, axis=axis, dtype=np.float32).take(-1, axis=axis)


def global_average_pool_2d(x: np.ndarray, act_min, act_max) -> np.ndarray:
    """AVERAGE_POOL_2D whose one window is the whole input (DeepLab's image pooling, the
    squeeze-and-excite pools of MobileNetV3): [N, 1, 1, C], same dtype.

    The same average as :func:`average_pool_2d`, summed without a padded copy: float32
    pixel after pixel in row-major order (TFLite's), integers exactly in any order.
    """
    n, h, w, c = x.shape
    if x.dtype.kind == "f":
        acc = _sequential_sum(x.reshape(n, h * w, c), axis=1).reshape(n, 1, 1, c)
    else:
        acc = x.reshape(n, h * w, c).sum(axis=1, dtype=np.int64).reshape(n, 1, 1, c)
    return _average(acc, np.full((1, 1, 1), h * w, dtype=np.int64), act_min, act_max, x.dtype)


def _average(acc: np.ndarray, counts: np.ndarray, act_min, act_max, dtype: np.dtype) -> np.ndarray:
    """Window sums divided by their counts as the reference kernels divide, clamped, in ``dtype``:
    float32 division, or integer rounding half away from zero."""
    if acc.dtype.kind == "f":
        avg = acc / counts.astype(np.float32)
    else:
        avg = np.sign(acc) * ((np.abs(acc) + counts // 2) // counts)
    return np.clip(avg, act_min, act_max).astype(dtype)
