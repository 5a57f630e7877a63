"""Hybrid convolutions (float32 activations, int8 weights) on the float convolution kernels.

A hybrid CONV_2D or DEPTHWISE_CONV_2D sums integers: ``acc = sum w * (q - zp)``, q the input quantized
at this run (``pydeeplab.reference.quantize``), then scales the sum back to float. Written as float32
numbers, ``q - zp`` (at most 255 in magnitude) and the int8 weights are integers whose products and
partial sums stay exact below 2**24: where the weights prove that bound for every output channel
(:func:`exact_in_float32`), the float convolution kernels compute ``acc`` exactly, in any order, at
their speed. Around them, one pass quantizes the input (:func:`center`) and one scales the sums
(:func:`rescale`), with TFLite's arithmetic: the same bits as the reference functions.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Integers up to this magnitude are exact in float32, whatever the order of the additions.
FLOAT32_EXACT = 2**24


def exact_in_float32(weights: np.ndarray, channel_axis: int, input_bound: int) -> bool:
    """Whether every partial sum of ``w * (q - zp)`` stays within :data:`FLOAT32_EXACT` for int8
    ``weights`` whose output channels lie along ``channel_axis`` and centered inputs of magnitude at
    most ``input_bound``."""
    other = tuple(a for a in range(weights.ndim) if a != channel_axis)
    per_channel = np.abs(weights.astype(np.int64)).sum(axis=other)
    return int(per_channel.max(initial=0)) * input_bound <= FLOAT32_EXACT


@njit(cache=True, nogil=True)
def value_range(x):
    """(least, greatest) of the float32 values of the image ``x`` [H, W, C] (NaN where one is NaN)."""
    low = high = x[0, 0, 0]
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            for k in range(x.shape[2]):
                v = x[i, j, k]
                if v != v:
                    return v, v
                low = min(low, v)
                high = max(high, v)
    return low, high


@njit(cache=True, nogil=True)
def center(x, inverse, zero_point, low, high, out):
    """out = q - zero_point as float32, q = clamp(round(x * inverse) + zero_point, low, high): an image
    x [H, W, C] quantized as LiteRT's x86 build quantizes a hybrid input (``pydeeplab.reference.quantize``):
    the first ``N - N % 8`` values in memory order rounded as ``trunc(v + 0.5f)`` (NEON_2_SSE's
    RoundToNearest), the rest with ``std::round``. inverse float32; the others integers."""
    h, w, c = x.shape
    cut = h * w * c - (h * w * c) % 8
    zp, lo, hi = np.float32(zero_point), np.float32(low), np.float32(high)
    half = np.float32(0.5)
    i = 0
    for y in range(h):
        for xx in range(w):
            for k in range(c):
                v = x[y, xx, k] * inverse
                if i < cut:
                    r = np.trunc(v + (-half if v < 0 else half))
                else:
                    t = np.trunc(v)
                    r = t + (np.float32(1) if v > 0 else np.float32(-1)) if np.abs(v - t) >= half else t
                if r != r:  # NaN (the reference's nan_to_num)
                    r = np.float32(0)
                out[y, xx, k] = min(max(r + zp, lo), hi) - zp
                i += 1


@njit(cache=True, nogil=True)
def rescale(acc, factor, filter_scales, bias, scale_first, act_min, act_max):
    """In place, acc [H, W, C] (the exact integer sums of one image): ``float(acc) * s_w[c] * s_in +
    bias[c]``, clamped; the products ``(acc * s_w) * s_in`` where ``scale_first``, else
    ``acc * (s_w * s_in)``. All float32."""
    h, w, c = acc.shape
    products = np.empty(c, np.float32)
    for k in range(c):
        products[k] = filter_scales[k] * factor
    for y in range(h):
        for xx in range(w):
            for k in range(c):
                if scale_first:
                    v = acc[y, xx, k] * filter_scales[k] * factor
                else:
                    v = acc[y, xx, k] * products[k]
                acc[y, xx, k] = min(max(v + bias[k], act_min), act_max)
