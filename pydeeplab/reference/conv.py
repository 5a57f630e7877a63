"""Convolutions, the NumPy reference: CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV.

The arithmetic is that of TFLite's reference kernels (``reference/conv.h``,
``depthwiseconv_float.h``, ``depthwiseconv_uint8.h``, ``transpose_conv.h`` and
their ``integer_ops/`` twins). For every output element::

    acc = sum over taps inside the input and input channels of (w - w_zp) * (x - x_zp)
    float32:     out = clamp(acc + bias, act_min, act_max)
    uint8/int8:  out = clamp(MultiplyByQuantizedMultiplier(acc + bias, mult[o], shift[o])
                             + out_zp, act_min, act_max)

(zero points are 0 in the float case; int8 filters are symmetric, w_zp = 0.)
CONV_2D and DEPTHWISE_CONV_2D are written as TFLite writes them: a loop over the
filter taps (ky, kx), each reading input pixel ``(y * stride - pad + k * dilation)``
for the output pixels where that is inside the input (:func:`_inside`) and skipping
the others, as TFLite's ``is_point_inside_image`` does. NumPy vectorizes the rest: the
output pixels of a block of rows, and the channels (a matrix product for CONV_2D).

Quantized accumulations are computed in float64 on the centered integers. That is
exact: each product is below 2**16 in magnitude (8-bit operands, centered, are
within +-255), so every partial sum is an integer below 2**53 for any kernel of
fewer than 2**37 taps x channels, whatever the summation order. This lets
``@`` (BLAS) do the integer matrix products. The work goes in blocks of output rows
(:data:`BLOCK_ELEMENTS`), so these float64 temporaries stay a few MB whatever the
image size. TFLite's int32 accumulator wraps on overflow; :func:`_output_stage`
reproduces that before rescaling.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from .fixedpoint import multiply_by_quantized_multiplier, wrap_int32
from .quantize import quantize_floats

#: A block of output rows holds at most about this many accumulator (or input) values:
#: 2 MB of float64, small enough for the cache and for the 513x513 models' memory.
BLOCK_ELEMENTS = 1 << 18


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


class HybridStage(NamedTuple):
    """A hybrid convolution's output stage (float32 input and output, int8 filter: dynamic-range
    quantization). The input is quantized to int8 at every run (``reference/quantize.py``); the
    integer sums ``acc`` of ``w * (q - input_zero_point)`` become ``float(acc) * s_w[o] * s_in``,
    then bias and clamp, in float32 as TFLite's kernels order the product: ``(acc * s_w) * s_in``
    for CONV_2D per channel (``HybridConvPerChannel``), ``acc * (s_w * s_in)`` otherwise.

    ``input_zero_point`` and ``input_scale`` are the run's (:meth:`for_input`); ``filter_scales``
    float32 [Cout] (a per-tensor scale repeated).
    """

    filter_scales: np.ndarray
    act_min: float
    act_max: float
    asymmetric: bool  # the input quantized with a zero point (per-channel filters), else symmetric
    scale_first: bool  # acc * s_w first, then * s_in (CONV_2D per channel)
    input_zero_point: int = 0
    input_scale: np.float32 = np.float32(1)
    weight_zero_point: int = 0

    def for_input(self, x: np.ndarray) -> tuple[np.ndarray, "HybridStage"]:
        """(int8 values, this stage with their scale and zero point): ``x`` quantized as TFLite does."""
        q, p = quantize_floats(x, self.asymmetric)
        return q, self._replace(input_zero_point=p.zero_point, input_scale=p.factor)


Stage = FloatStage | QuantizedStage | HybridStage


def _centered_input(x: np.ndarray, stage: Stage) -> np.ndarray:
    """Input pixels as the accumulation reads them: float32 as they are, or ``x - x_zp`` in float64."""
    return x if isinstance(stage, FloatStage) else x.astype(np.float64) - stage.input_zero_point


def _centered_weights(weights: np.ndarray, stage: Stage) -> np.ndarray:
    """The filter as the accumulation reads it: float32 as it is, or ``w - w_zp`` in float64."""
    return weights if isinstance(stage, FloatStage) else weights.astype(np.float64) - stage.weight_zero_point


def _row_blocks(out_h: int, row_elements: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of the blocks of output rows, each about :data:`BLOCK_ELEMENTS` values."""
    rows = max(1, BLOCK_ELEMENTS // max(1, row_elements))
    for start in range(0, out_h, rows):
        yield start, min(out_h, start + rows)


def _inside(start: int, stop: int, stride: int, pad: int, offset: int, size: int) -> tuple[slice, slice] | None:
    """Output positions o in [start, stop) whose tap reads input position ``o * stride - pad + offset``
    inside [0, size): (their slice relative to ``start``, the input positions they read), or None if none.
    """
    first = max(start, -(-(pad - offset) // stride))  # smallest o with o * stride - pad + offset >= 0
    last = min(stop, (size - 1 + pad - offset) // stride + 1)  # one past the largest inside
    if first >= last:
        return None
    at = first * stride - pad + offset
    return slice(first - start, last - start), slice(at, at + (last - first - 1) * stride + 1, stride)


def _output_stage(acc: np.ndarray, bias: np.ndarray | None, stage: Stage, out: np.ndarray) -> None:
    """Add the bias, rescale (quantized) and clamp ``acc`` [..., Cout] into ``out`` (acc is overwritten)."""
    if isinstance(stage, FloatStage):
        if bias is not None:
            acc += bias  # float32, after the sum over taps, as TFLite
        np.clip(acc, stage.act_min, stage.act_max, out=out)
        return
    if isinstance(stage, HybridStage):
        sums = wrap_int32(acc.astype(np.int64)).astype(np.float32)
        if stage.scale_first:
            value = sums * stage.filter_scales * stage.input_scale
        else:
            value = sums * (stage.filter_scales * stage.input_scale)
        if bias is not None:
            value += bias
        np.clip(value, stage.act_min, stage.act_max, out=out)
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
    n, in_h, in_w, cin = x.shape
    cout, kh, kw, _ = weights.shape
    out_h, out_w = out.shape[1:3]
    w = _centered_weights(weights, stage)
    for b in range(n):
        for y0, y1 in _row_blocks(out_h, out_w * max(cin, cout)):
            acc = np.zeros((y1 - y0, out_w, cout), w.dtype)
            for ky in range(kh):
                rows = _inside(y0, y1, stride[0], padding[0], ky * dilation[0], in_h)
                for kx in range(kw):
                    cols = _inside(0, out_w, stride[1], padding[1], kx * dilation[1], in_w)
                    if rows is None or cols is None:
                        continue  # this tap falls outside the input for the whole block
                    (out_y, in_y), (out_x, in_x) = rows, cols
                    pixels = _centered_input(x[b, in_y, in_x], stage)  # [rows, cols, Cin]
                    tap = pixels.reshape(-1, cin) @ w[:, ky, kx, :].T  # [rows * cols, Cout]
                    acc[out_y, out_x] += tap.reshape(*pixels.shape[:2], cout)
            _output_stage(acc, bias, stage, out[b, y0:y1])


def depthwise_conv_2d(x: np.ndarray, weights: np.ndarray, bias: np.ndarray | None, out: np.ndarray,
                      stride: tuple[int, int], dilation: tuple[int, int], padding: tuple[int, int],
                      stage: Stage) -> None:
    """DEPTHWISE_CONV_2D: output channel ``c * M + m`` filters input channel c alone.

    x: [N, H, W, C]; weights: [1, KH, KW, C * M] (M the depth multiplier); bias:
    [C * M] or None; out: [N, OH, OW, C * M]. Other arguments as :func:`conv_2d`.
    The taps are summed one after the other in TFLite's order (row, then column).
    """
    n, in_h, in_w, cin = x.shape
    _, kh, kw, cout = weights.shape
    out_h, out_w = out.shape[1:3]
    w = _centered_weights(weights, stage)
    for b in range(n):
        for y0, y1 in _row_blocks(out_h, out_w * cout):
            acc = np.zeros((y1 - y0, out_w, cout), w.dtype)  # 0 + the first product is that product
            for ky in range(kh):
                rows = _inside(y0, y1, stride[0], padding[0], ky * dilation[0], in_h)
                for kx in range(kw):
                    cols = _inside(0, out_w, stride[1], padding[1], kx * dilation[1], in_w)
                    if rows is None or cols is None:
                        continue
                    (out_y, in_y), (out_x, in_x) = rows, cols
                    pixels = _centered_input(x[b, in_y, in_x], stage)
                    if cout != cin:
                        pixels = np.repeat(pixels, cout // cin, axis=-1)  # channel c * M + m reads input c
                    acc[out_y, out_x] += pixels * w[0, ky, kx]
            _output_stage(acc, bias, stage, out[b, y0:y1])


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
    xc, wc = _centered_input(x, stage), _centered_weights(weights, stage)
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


__all__ = ["FloatStage", "HybridStage", "QuantizedStage", "Stage", "conv_2d", "depthwise_conv_2d", "transpose_conv"]
