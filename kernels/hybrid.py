"""Hybrid convolutions (float32 activations, int8 weights) on the float convolution kernels.

A hybrid CONV_2D or DEPTHWISE_CONV_2D sums integers: ``acc = sum w * (q - zp)``, q the input quantized
at this run (``pydeeplab.reference.quantize``), then scales the sum back to float. Written as float32
numbers, ``q - zp`` (at most 255 in magnitude) and the int8 weights are integers whose products and
partial sums stay exact below 2**24: where the weights prove that bound for every output channel
(:func:`exact_in_float32`), the float convolution kernels compute ``acc`` exactly, in any order, at
their speed. Around them, one pass quantizes the input (:func:`center`, after NumPy's vectorized
least and greatest value) and one scales the sums (:func:`rescale`), with TFLite's arithmetic: the
same bits as the reference functions.
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
def center(x, inverse, zero_point, low, high, out, t, nt):
    """out = q - zero_point as float32, q = clamp(round(x * inverse) + zero_point, low, high), for rows
    ``R * t // nt`` to ``R * (t + 1) // nt`` of an image x [R, C]: quantized as LiteRT's x86 build
    quantizes a hybrid input (``pydeeplab.reference.quantize``), the first ``R * C - R * C % 8`` values
    rounded as ``trunc(v + 0.5f)`` (NEON_2_SSE's RoundToNearest), the rest with ``std::round``. inverse
    float32; the others integers."""
    r, c = x.shape
    cut = r * c - (r * c) % 8
    zp, lo, hi = np.float32(zero_point), np.float32(low), np.float32(high)
    half, one = np.float32(0.5), np.float32(1)
    for i in range(r * t // nt, r * (t + 1) // nt):
        row, dst = x[i], out[i]
        if (i + 1) * c <= cut:  # the vector loop's values only: a loop without branches
            for k in range(c):
                v = row[k] * inverse
                q = np.trunc(v + np.copysign(half, v)) + zp
                q = np.float32(0) + zp if q != q else q
                dst[k] = min(max(q, lo), hi) - zp
        else:
            for k in range(c):
                v = row[k] * inverse
                if i * c + k < cut:
                    rounded = np.trunc(v + np.copysign(half, v))
                else:
                    rounded = np.trunc(v)
                    if np.abs(v - rounded) >= half:
                        rounded += one if v > 0 else -one
                q = rounded + zp
                q = np.float32(0) + zp if q != q else q  # NaN: the reference's nan_to_num
                dst[k] = min(max(q, lo), hi) - zp


@njit(cache=True, nogil=True)
def rescale(acc, factor, filter_scales, products, bias, scale_first, act_min, act_max, t, nt):
    """In place, rows ``R * t // nt`` to ``R * (t + 1) // nt`` of acc [R, C] (the exact integer sums of
    one image): ``float(acc) * s_w[c] * s_in + bias[c]``, clamped; the products ``(acc * s_w) * s_in``
    where ``scale_first``, else ``acc * products`` (``products = s_w * s_in``). All float32."""
    r, c = acc.shape
    for i in range(r * t // nt, r * (t + 1) // nt):
        row = acc[i]
        if scale_first:
            for k in range(c):
                row[k] = min(max(row[k] * filter_scales[k] * factor + bias[k], act_min), act_max)
        else:
            for k in range(c):
                row[k] = min(max(row[k] * products[k] + bias[k], act_min), act_max)
