"""Convolutions, the NumPy reference: CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV.

The arithmetic is that of TFLite's reference kernels (``reference/conv.h``,
``depthwiseconv_float.h``, ``depthwiseconv_uint8.h``, ``transpose_conv.h`` and
their ``integer_ops/`` twins). For every output element::

    acc = sum over taps inside the input and input channels of (w - w_zp) * (x - x_zp)
    float32:     out = clamp(acc + bias, act_min, act_max)
    uint8/int8:  out = clamp(MultiplyByQuantizedMultiplier(acc + bias, mult[o], shift[o])
                             + out_zp, act_min, act_max)

(zero points are 0 in the float case; int8 filters are symmetric, w_zp = 0.)
TFLite skips the taps that fall outside the input; here the input is first
centered (``x - x_zp``) and then padded with zeros, so those taps add exactly 0.

Quantized accumulations are computed in float64 on the centered integers. That is
exact: each product is below 2**16 in magnitude (8-bit operands, centered, are
within +-255), so every partial sum is an integer below 2**53 for any kernel of
fewer than 2**37 taps x channels, whatever the summation order. This lets
``@`` (BLAS) do the integer matrix products. TFLite's int32 accumulator wraps
on overflow; :func:`_output_stage` reproduces that before rescaling.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .fixedpoint import multiply_by_quantized_multiplier, wrap_int32


class FloatStage(NamedTuple):
    """The output stage of a float32 convolution: the fused activation's clamp bounds."""

    act_min: float
    act_max: float


class QuantizedStage(NamedTuple):
    """The integer constants of a quantized convolution.

    ``multiplier`` / ``shift``: int32 [Cout], TFLite's per-output-channel fixed-point
    rescaling (a per-tensor value repeated for uint8); ``shift`` positive = left.
    ``act_min`` / ``act_max``: the clamp in output units (fused activation included).
    """

    input_zero_point: int
    weight_zero_point: int
    multiplier: np.ndarray
    shift: np.ndarray
    output_zero_point: int
    act_min: int
    act_max: int


Stage = FloatStage | QuantizedStage


def _centered(x: np.ndarray, weights: np.ndarray, stage: Stage) -> tuple[np.ndarray, np.ndarray]:
    """The operands the accumulation works on: as they are (float) or ``q - zero_point`` in float64."""
    if isinstance(stage, FloatStage):
        return x, weights
    return (x.astype(np.float64) - stage.input_zero_point,
            weights.astype(np.float64) - stage.weight_zero_point)


def _pad(x: np.ndarray, padding: tuple[int, int], window: tuple[int, int], stride: tuple[int, int],
         out_hw: tuple[int, int]) -> np.ndarray:
    """x [N, H, W, C] with ``padding`` = (top, left) zeros before and, after, as many
    zeros as the last of ``out_hw`` windows of extent ``window`` (dilated size) needs."""
    pads = [(0, 0)]
    for axis in (0, 1):
        reach = (out_hw[axis] - 1) * stride[axis] + window[axis]
        before = padding[axis]
        pads.append((before, max(0, reach - before - x.shape[axis + 1])))
    pads.append((0, 0))
    return np.pad(x, pads) if any(before or after for before, after in pads) else x


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
             padding: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """The receptive fields of the output pixels: a read-only [N, OH, OW, KH, KW, C] view
    of the zero-padded x, element [n, y, x, i, j] being input pixel
    (y * stride_h - pad_top + i * dilation_h, x * stride_w - pad_left + j * dilation_w)."""
    extent = ((kernel[0] - 1) * dilation[0] + 1, (kernel[1] - 1) * dilation[1] + 1)
    xp = _pad(x, padding, extent, stride, out_hw)
    sn, sy, sx, sc = xp.strides
    shape = (xp.shape[0], out_hw[0], out_hw[1], kernel[0], kernel[1], xp.shape[3])
    strides = (sn, stride[0] * sy, stride[1] * sx, dilation[0] * sy, dilation[1] * sx, sc)
    return as_strided(xp, shape=shape, strides=strides, writeable=False)


def _output_stage(acc: np.ndarray, bias: np.ndarray | None, stage: Stage, out: np.ndarray) -> None:
    """Add the bias, rescale (quantized) and clamp ``acc`` [..., Cout] into ``out`` (acc is overwritten)."""
    if isinstance(stage, FloatStage):
        if bias is not None:
            acc += bias  # float32, after the sum over taps, as TFLite
        np.clip(acc, stage.act_min, stage.act_max, out=out)
        return
    total = acc.astype(np.int64)
    if bias is not None:
        total += bias
    scaled = multiply_by_quantized_multiplier(wrap_int32(total), stage.multiplier, stage.shift)
    out[...] = np.clip(scaled + stage.output_zero_point, stage.act_min, stage.act_max)


def conv_2d(x: np.ndarray, weights: np.ndarray, bias: np.ndarray | None, out: np.ndarray,
            stride: tuple[int, int], dilation: tuple[int, int], padding: tuple[int, int],
            stage: Stage) -> None:
    """CONV_2D: every output channel sees every input channel through a KH x KW window.

    x: [N, H, W, Cin]; weights: [Cout, KH, KW, Cin] (float32, or uint8/int8 like x);
    bias: [Cout] float32 / int32, or None; out: [N, OH, OW, Cout], written in place.
    stride, dilation: (h, w); padding: (top, left), the implicit zeros before the input.
    """
    cout, kh, kw, cin = weights.shape
    xc, wc = _centered(x, weights, stage)
    cols = _windows(xc, (kh, kw), stride, dilation, padding, out.shape[1:3])
    acc = cols.reshape(-1, kh * kw * cin) @ wc.reshape(cout, -1).T
    _output_stage(acc.reshape(out.shape), bias, stage, out)


def depthwise_conv_2d(x: np.ndarray, weights: np.ndarray, bias: np.ndarray | None, out: np.ndarray,
                      stride: tuple[int, int], dilation: tuple[int, int], padding: tuple[int, int],
                      stage: Stage) -> None:
    """DEPTHWISE_CONV_2D: output channel ``c * M + m`` filters input channel c alone.

    x: [N, H, W, C]; weights: [1, KH, KW, C * M] (M the depth multiplier); bias:
    [C * M] or None; out: [N, OH, OW, C * M]. Other arguments as :func:`conv_2d`.
    The taps are summed one after the other in TFLite's order (row, then column).
    """
    _, kh, kw, cout = weights.shape
    oh, ow = out.shape[1:3]
    xc, wc = _centered(x, weights, stage)
    extent = ((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1)
    xp = _pad(xc, padding, extent, stride, (oh, ow))
    if cout != x.shape[3]:
        xp = np.repeat(xp, cout // x.shape[3], axis=3)  # channel c * M + m reads input channel c

    def window(i: int, j: int) -> np.ndarray:
        """The input pixels that tap (i, j) of every output pixel reads: [N, OH, OW, C * M]."""
        ys = slice(i * dilation[0], i * dilation[0] + (oh - 1) * stride[0] + 1, stride[0])
        xs = slice(j * dilation[1], j * dilation[1] + (ow - 1) * stride[1] + 1, stride[1])
        return xp[:, ys, xs]

    acc = window(0, 0) * wc[0, 0, 0]  # the first product starts the sum (TFLite's 0 + p is p)
    product = np.empty_like(acc)
    for i in range(kh):
        for j in range(kw):
            if i or j:
                acc += np.multiply(window(i, j), wc[0, i, j], out=product)
    _output_stage(acc, bias, stage, out)


def transpose_conv(x: np.ndarray, weights: np.ndarray, bias: np.ndarray | None, out: np.ndarray,
                   stride: tuple[int, int], padding: tuple[int, int], stage: Stage) -> None:
    """TRANSPOSE_CONV: each input pixel (y, x) adds ``x[y, x] . weights[:, i, j]`` to output
    pixel (y * stride_h - pad_top + i, x * stride_w - pad_left + j), where that is inside.

    x: [N, H, W, Cin]; weights: [Cout, KH, KW, Cin]; bias: [Cout] or None;
    out: [N, OH, OW, Cout]; padding: (top, left), as TFLite computes it from the
    output size (:func:`pydeeplab.ops.padding.compute_padding_hw` with OH, OW as input).
    """
    n, h, w, cin = x.shape
    cout, kh, kw, _ = weights.shape
    oh, ow = out.shape[1:3]
    xc, wc = _centered(x, weights, stage)
    # taps[n, y, x, i, j, o]: what input pixel (y, x) sends through filter tap (i, j).
    taps = (xc.reshape(-1, cin) @ wc.transpose(3, 1, 2, 0).reshape(cin, -1)).reshape(n, h, w, kh, kw, cout)
    # Scatter into an uncropped canvas, then cut the padding off.
    full_h = max((h - 1) * stride[0] + kh, padding[0] + oh)
    full_w = max((w - 1) * stride[1] + kw, padding[1] + ow)
    full = np.zeros((n, full_h, full_w, cout), dtype=xc.dtype)
    for i in range(kh):
        for j in range(kw):
            ys = slice(i, i + (h - 1) * stride[0] + 1, stride[0])
            xs = slice(j, j + (w - 1) * stride[1] + 1, stride[1])
            full[:, ys, xs] += taps[:, :, :, i, j]
    acc = full[:, padding[0] : padding[0] + oh, padding[1] : padding[1] + ow]
    _output_stage(acc, bias, stage, out)


__all__ = ["FloatStage", "QuantizedStage", "Stage", "conv_2d", "depthwise_conv_2d", "transpose_conv"]
