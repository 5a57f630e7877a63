"""The convolution kernels' plumbing: what ``pydeeplab.ops.conv`` hands them, prepared once.

``ops/conv.py`` checks a convolution and computes its constants (the specification
side); this module turns them into what the Numba kernels of :mod:`.conv` take:
weights re-laid-out (transposed for the product, centered and in the narrowest
exact float type, 64-byte aligned for the depthwise kernels), the
requantization table, per-thread scratch memory (:class:`Workspace`), and the long
positional argument lists the ``@njit`` kernels need. Each ``*_runner`` returns the
operator's ``run(inputs, outputs)``.

``stage`` is the output stage of ``pydeeplab.reference.conv``: ``FloatStage`` (clamp
bounds) or ``QuantizedStage`` (zero points, per-channel multipliers and shifts). It is
read by field name (:func:`is_float`) because kernels/ does not import the runtime
package above it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import numpy as np
from numba import config

from . import conv as kernels
from . import depthwise_quantized, direct_conv, igemm
from .depthwise_row import LANES as DEPTHWISE_LANES
from .requantize import pack_stage, padded_channels, requant_table, requantize
from .parallel import in_parallel, numba_threads, recorded_call, replayable

#: run(inputs, outputs): an operator's planned computation (``pydeeplab.ops.base.Run``).
Run = Callable[[list, list], None]

#: A block of output rows (one im2col + product + output stage) holds about this many
#: elements of its widest matrix (cache-sized: measured best at 2**15 on the DeepLab
#: convolutions with 8 to 144 channels) ...
_BLOCK_ELEMENTS = 1 << 15
#: ... but at least this many pixels, below which BLAS spends its time re-packing the
#: filter (measured on the 33x33 convolutions with 320 to 960 channels); a float product
#: twice as many (BLAS packs the filter at every call: 33x33 512 -> 256 1.64 -> 1.46 ms,
#: 80 -> 480 0.62 -> 0.52 ms, 48 -> 288 0.33 -> 0.23 ms with blocks of 528 pixels, not 264).
_BLOCK_PIXELS = 256
_BLOCK_PIXELS_FLOAT = 512
#: Float convs with a 3-row filter at most this deep (a first conv on an image: 3x3x3 = 27)
#: run from padded input rows (kernels.direct_conv): 257x257x3 -> 129x129x16 0.66 -> 0.29 ms,
#: 256x256x3 -> 128x128x16 0.66 -> 0.27 ms (im2col + BLAS before; 1 thread, thread time).
_DIRECT_DEPTH = 64
#: The kernels built on LLVM IR intrinsics (kernels.direct_conv, kernels.depthwise_row) cannot
#: run as plain Python: with Numba's JIT disabled the general kernels take their convolutions.
_IR_KERNELS = not config.DISABLE_JIT


def is_float(stage) -> bool:
    """A float32 convolution's stage (clamp bounds only), rather than a quantized one."""
    return not hasattr(stage, "multiplier")


# --------------------------------------------------------------------------- scratch memory and layout


class Workspace(threading.local):
    """Per-thread scratch buffers that grow to the largest request and are reused.

    One buffer per slot and dtype, shared by every operator that runs in the thread:
    operators run one after the other, so the scratch memory of a whole model is
    that of its largest operator rather than the sum over operators.
    """

    def __init__(self) -> None:
        self.buffers: dict[tuple[int, np.dtype], np.ndarray] = {}

    def get(self, slot: int, dtype, shape: tuple[int, ...]) -> np.ndarray:
        dtype = np.dtype(dtype)
        size = int(math.prod(shape))  # not np.prod: 5 us a call, at every convolution
        buf = self.buffers.get((slot, dtype))
        if buf is None or buf.size < size:
            buf = aligned(np.empty(size, dtype=dtype), dtype)
            self.buffers[(slot, dtype)] = buf
        return buf[:size].reshape(shape)


WORKSPACE = Workspace()


def acc_bound(stage, centered: np.ndarray, x_dtype: np.dtype) -> np.ndarray:
    """How large an accumulator can grow, per output channel (float64 [Cout]).

    centered: [Cout, K], the filter minus its zero point; a sum of products is at most
    max|x - x_zp| * sum_k |w[o, k] - w_zp| in magnitude, partial sums included.
    """
    info = np.iinfo(x_dtype)
    x_max = max(stage.input_zero_point - int(info.min), int(info.max) - stage.input_zero_point)
    return x_max * np.abs(centered).sum(axis=1)


def exact_dtype(bound: np.ndarray) -> np.dtype:
    """float32 when it counts every partial sum of the product exactly (all within
    ``bound``, see :func:`acc_bound`), else float64: integers up to 2**24 are exact in
    float32 whatever the order of the additions."""
    return np.dtype(np.float32) if float(bound.max(initial=0.0)) <= 2**24 else np.dtype(np.float64)


def stage_args(stage, bias: np.ndarray | None, n_out: int):
    """The bias (never None) and the output stage as the kernels take them: float clamp
    bounds; or the requantization table (:func:`.requantize.requant_table`), the output
    zero point and clamp bounds. A quantized bias is int32 values held as int64, the type
    of every quantized kernel's bias (one compiled output stage, not two); it and the
    table are zero-padded to whole vector steps of the output stage."""
    if is_float(stage):
        b = np.zeros(n_out, np.float32) if bias is None else bias.astype(np.float32)
        return b, (np.float32(stage.act_min), np.float32(stage.act_max))
    # Both padded with zeros to whole vector steps of the output stage (requantize.padded_channels).
    b = np.zeros(padded_channels(n_out), np.int64)
    if bias is not None:
        b[:n_out] = bias.astype(np.int32)
    table = np.zeros((6, b.shape[0]), np.int64)
    table[:, :n_out] = requant_table(stage.multiplier, np.maximum(stage.shift, 0).astype(np.int64),
                                     np.maximum(-stage.shift, 0).astype(np.int64))
    return b, (table, stage.output_zero_point, stage.act_min, stage.act_max)


def aligned(values: np.ndarray, dtype) -> np.ndarray:
    """A C-contiguous copy of ``values`` as ``dtype`` starting on a 64-byte boundary.

    The depthwise kernels load whole vectors of channels from the filter at every
    pixel; a vector that straddles two cache lines costs two loads (measured: 30%
    slower depthwise convolutions with 16-byte-aligned filters).
    """
    dtype = np.dtype(dtype)
    raw = np.empty(values.size * dtype.itemsize + 64, np.uint8)
    start = -raw.ctypes.data % 64
    out = raw[start : start + values.size * dtype.itemsize].view(dtype).reshape(values.shape)
    out[...] = values
    return out


def with_contiguous_output(fill) -> Run:
    """run() for a ``fill(inputs, out)`` that needs a C-contiguous output (else it fills a temporary);
    marked :func:`replayable` where ``fill`` is (a temporary is another array at every run, which a
    recording tells apart)."""

    def run(inputs, outputs) -> None:
        out = outputs[0]
        if out.flags.c_contiguous:
            fill(inputs, out)
        else:
            tmp = np.empty(out.shape, out.dtype)
            fill(inputs, tmp)
            out[...] = tmp

    return replayable(run) if getattr(fill, "replayable", False) else run


def conv_2d_runner(weights, bias, stage, stride, dilation, padding, out_shape, hard_swish: bool = False,
                   residual: tuple[float, float] | None = None) -> Run | None:
    """The conv's run; with ``hard_swish``, that of the conv followed by HARD_SWISH where its kernel can
    apply it (the float tiles of kernels.direct_conv), else None; with ``residual`` (an ADD's activation
    bounds), that of the conv followed by an ADD of the run's second input where its kernel can (the
    1x1 tile), else None."""
    cout, kh, kw, cin = weights.shape
    n, oh, ow, _ = out_shape
    depth = kh * kw * cin
    (sh, sw), (dh, dw), (pt, pl) = stride, dilation, padding
    pointwise = kh == kw == 1 and stride == (1, 1) and padding == (0, 0)
    if is_float(stage) and _IR_KERNELS and pointwise:
        return _pointwise_tile_runner(weights, bias, stage, hard_swish=hard_swish, residual=residual)
    if residual is not None:
        return None
    if is_float(stage) and _IR_KERNELS and kh == 3 and dilation == (1, 1) and depth <= _DIRECT_DEPTH:
        return _direct_conv_runner(weights, bias, stage, stride, padding, hard_swish)
    if hard_swish:
        return None
    if is_float(stage):
        b, out_args = stage_args(stage, bias, cout)
        dtype = np.dtype(np.float32)
        wmat = np.ascontiguousarray(weights.reshape(cout, depth).T, dtype=dtype)
    else:
        # Bytes, four products a step (igemm, vpdpbusd): u = x + x_off in uint8 (x_off 128 for
        # int8 inputs, 0 for uint8) times v = w - w_sh in int8, w_sh the filter's zero point
        # where w - w_zp fits int8 (int8 filters, zero point 0), else 128 (uint8 filters:
        # w - w_zp spans up to 255 values either side of 0). Per output, with K the depth,
        #   sum (x - x_zp)(w - w_zp) = sum u v + (w_sh - w_zp) sum u
        #                              - (x_off + x_zp) (sum v + K (w_sh - w_zp)):
        # the last term per channel goes into the bias, the second per pixel (row_factor) is
        # added by the kernel; a tap outside the input reads u = x_zp + x_off, adding 0 as TFLite
        # skips it. The same int32 sum as TFLite's, wrapping alike. (Against int16 x int16 pairs,
        # 32 products a step: pascal_quant's convs 36.0 -> 23.1 ms, 1 thread.)
        w_zp = stage.weight_zero_point
        centered = weights.reshape(cout, depth).astype(np.int64) - w_zp
        b, out_args = stage_args(stage, bias, cout)
        x_off = 128 if weights.dtype == np.int8 else 0
        w_sh = w_zp if -128 <= centered.min() <= centered.max() <= 127 else (128 if weights.dtype == np.uint8 else 0)
        v = centered + (w_zp - w_sh)
        wpack = aligned(igemm.pack_weights(v.T), np.int8)
        b[:cout] -= (x_off + stage.input_zero_point) * (v.sum(axis=1) + depth * (w_sh - w_zp))
        constants = aligned(pack_stage(b, out_args[0]), np.int64)  # (tiles load them 64 bytes at a time)
        row_factor, offset, pad = np.int64(w_sh - w_zp), np.int16(x_off), np.uint8(stage.input_zero_point + x_off)
        width = wpack.shape[1] * (wpack.shape[2] // igemm.LANES)
    block = _block_rows(ow, depth, cout, _BLOCK_PIXELS_FLOAT if is_float(stage) else _BLOCK_PIXELS)
    if is_float(stage):
        conv = in_parallel(kernels.conv_float_pointwise if pointwise else kernels.conv_float)
    else:
        conv = in_parallel(kernels.conv_quantized)

    @replayable
    def fill(inputs, out) -> None:
        x = np.ascontiguousarray(inputs[0])
        nt = numba_threads(out.size * depth)
        if is_float(stage) and pointwise:
            conv(x, wmat, b, out, *out_args, block, nt=nt)
        elif is_float(stage):
            scratch = WORKSPACE.get(0, np.float32, (nt, block * ow * depth))
            conv(x, wmat, b, out, kh, kw, sh, sw, dh, dw, pt, pl, *out_args, block, scratch, nt=nt)
        else:
            rows = -(-block * ow // igemm.MR) * igemm.MR
            cols = WORKSPACE.get(0, np.uint8, (nt, rows * width))
            terms = WORKSPACE.get(0, np.int32, (nt, rows))
            conv(x, wpack, constants, out, kh, kw, sh, sw, dh, dw, pt, pl, offset, pad, row_factor, *out_args[1:],
                 block, cols, terms, nt=nt)

    return with_contiguous_output(fill)


def _block_rows(ow: int, depth: int, cout: int, least: int) -> int:
    """Output rows per block: ``least`` pixels at least, else about _BLOCK_ELEMENTS of the widest matrix."""
    return max(1, -(-least // ow), _BLOCK_ELEMENTS // (ow * max(depth, cout)))


def pointwise_bias_input_runner(weights, stage, out_shape) -> Run:
    """A float 1x1 stride-1 conv whose bias is its second input, read at every run: ASPP's
    projection with its image-pooling branch in the bias (``pydeeplab.ops.conv.fused_pooled_projection``)."""
    if _IR_KERNELS:
        return _pointwise_tile_runner(weights, None, stage, bias_input=True)
    cout, _, _, depth = weights.shape
    _, out_args = stage_args(stage, None, cout)
    wmat = np.ascontiguousarray(weights.reshape(cout, depth).T, dtype=np.float32)
    block = _block_rows(out_shape[2], depth, cout, _BLOCK_PIXELS_FLOAT)
    conv = in_parallel(kernels.conv_float_pointwise)

    def fill(inputs, out) -> None:
        conv(np.ascontiguousarray(inputs[0]), wmat, inputs[1], out, *out_args, block, nt=numba_threads(out.size * depth))

    return with_contiguous_output(fill)


def _tile_operands(weights, bias, stage):
    """(packed filter, bias zero-padded to its blocks, output stage) for the kernels.direct_conv tiles."""
    cout = weights.shape[0]
    b, out_args = stage_args(stage, bias, cout)
    wpack = aligned(direct_conv.pack_filter(weights), np.float32)
    return wpack, aligned(np.pad(b, (0, wpack.shape[0] * direct_conv.LANES - cout)), np.float32), out_args


def _direct_conv_runner(weights, bias, stage, stride, padding, hard_swish: bool) -> Run:
    """A float conv with a shallow 3-row filter, from padded input rows (kernels.direct_conv)."""
    _, _, kw, cin = weights.shape
    (sh, sw), (pt, pl) = stride, padding
    wpack, b, out_args = _tile_operands(weights, bias, stage)
    swish = np.int64(hard_swish)
    conv = in_parallel(direct_conv.conv_float_direct)
    zeros: dict[int, np.ndarray] = {}  # a row of zeros per padded width (the input's width may change)

    @replayable
    def fill(inputs, out) -> None:
        x = np.ascontiguousarray(inputs[0])
        # Padded rows: every tap of every pixel reads inside them; whole 64-byte lines.
        width = -(-max(pl + x.shape[2], (out.shape[2] - 1) * sw + kw) * cin // 16) * 16
        if width not in zeros:
            zeros[width] = aligned(np.zeros(width), np.float32)
        zero = zeros[width]
        nt = numba_threads(out.size * 3 * kw * cin)
        conv(x, wpack, b, out, sh, sw, pt, pl, *out_args, swish, WORKSPACE.get(0, np.float32, (nt, 3, width)), zero,
             nt=nt)

    return with_contiguous_output(fill)


def _pointwise_tile_runner(weights, bias, stage, bias_input: bool = False, hard_swish: bool = False,
                           residual: tuple[float, float] | None = None) -> Run:
    """A float 1x1 stride-1 conv from the input pixels as they lie, 7 pixels x 32 channels at a time
    (kernels.direct_conv.conv_float_pointwise_tile). Against OpenBLAS's sgemm over blocks of 512 pixels
    (1 thread, GMAC/s): 33x33 480 -> 160 65 -> 80, 80 -> 480 59 -> 77, 192 -> 32 49 -> 83, 32 -> 192
    35 -> 66, 17x17 960 -> 320 67 -> 68, 65x65 12 -> 72 23 -> 36, 129x129 32 -> 144 36 -> 62.
    With ``bias_input`` the bias is the run's second input instead (copied into the padded one); with
    ``residual`` (the bounds of an ADD's activation) the run's second input is added to the conv's
    output, then clamped to them (the conv and the ADD after it, ``pydeeplab.fusion``)."""
    wpack, b, out_args = _tile_operands(weights, bias, stage)
    swish = np.int64(hard_swish)
    add = np.int64(residual is not None)
    bounds = tuple(np.float32(v) for v in residual or (-np.inf, np.inf))
    conv = in_parallel(direct_conv.conv_float_pointwise_tile)
    cout = weights.shape[0]

    def fill(inputs, out) -> None:
        if bias_input:
            b[:cout] = inputs[1]
        x = np.ascontiguousarray(inputs[0])
        res = np.ascontiguousarray(inputs[1]) if add else out  # (not read without a residual)
        conv(x, wpack, b, out, *out_args, swish, res, add, *bounds, nt=numba_threads(out.size * x.shape[3]))

    return with_contiguous_output(fill if bias_input else replayable(fill))


def squeeze_excite_runner(x_shape: tuple[int, ...], columns: bool, pool_bounds: tuple[float, float],
                          convs: list[tuple]) -> Run | None:
    """A squeeze-and-excite gate as one step: the global average of the run's input ``x_shape``
    [1, H, W, C] (the column sums where ``columns``, else the window kernel; clamped to
    ``pool_bounds``), one or two float 1x1 convs on it (``convs``: (weights, bias, stage) each, on the
    1x1 tile), then LOGISTIC: the operators' own kernels in their order (the same bits), launched one
    after the other (one part each) without the operators' steps, and replayable with LOGISTIC's exp
    (``pydeeplab.replay``). None with Numba's JIT disabled (no tile)."""
    from .elementwise import LOGISTIC, LOGISTIC_ARGUMENT, elementwise_float
    from .pool import average_pool_2d_float, global_average_pool_float

    if not _IR_KERNELS:
        return None
    _, h, w, c = x_shape
    pooled = np.zeros((1, 1, 1, c), np.float32)
    pooled_rows = pooled.reshape(1, c)
    pool_min, pool_max = (np.float32(v) for v in pool_bounds)
    none, lo, hi = np.int64(0), np.float32(-np.inf), np.float32(np.inf)  # (LOGISTIC has no activation)
    layers = []
    for weights, bias, stage in convs:
        wpack, b, (act_min, act_max) = _tile_operands(weights, bias, stage)
        layers.append((wpack, b, np.zeros((1, 1, 1, weights.shape[0]), np.float32), act_min, act_max))
    gate = layers[-1][2].reshape(1, -1)
    exps = np.empty_like(gate)
    pool = in_parallel(global_average_pool_float if columns else average_pool_2d_float)
    tile = in_parallel(direct_conv.conv_float_pointwise_tile)
    logistic = in_parallel(elementwise_float)

    @replayable
    def fill(inputs, out) -> None:
        x = np.ascontiguousarray(inputs[0])
        if columns:
            pool(x.reshape(1, h, w * c), c, pooled_rows, pool_min, pool_max, nt=1)
        else:
            pool(x, pooled, h, w, 1, 1, 0, 0, pool_min, pool_max, nt=1)
        v = pooled
        for wpack, b, hidden, act_min, act_max in layers:
            tile(v, wpack, b, hidden, act_min, act_max, none, hidden, none, lo, hi, nt=1)
            v = hidden
        logistic(gate, gate, exps, LOGISTIC_ARGUMENT, lo, hi, nt=1)
        recorded_call(np.exp, exps, exps)
        logistic(gate, exps, out.reshape(1, -1), LOGISTIC, lo, hi, nt=1)

    return with_contiguous_output(fill)


def _direct_columns(out_width: int, in_width: int, sw: int, dw: int, pl: int) -> tuple[int, int]:
    """(lo, hi): the output columns of a float 3x3 depthwise conv that read the input rows
    as they are (``kernels.conv.depthwise3x3_float``). With stride 2 and no dilation:
    the pairs (ox, ox + 1), ox even, whose taps are all inside the input,
    ``0 <= 2 * ox - pl`` and ``2 * (ox + 1) - pl + 2 < in_width``; lo and hi are even.
    Otherwise all of them (0, OW) where no tap reads padding (VALID, as in the depthwise
    convs between SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND), else none (OW, OW): stride-1
    rows are then read from padded copies (measured: reading their interior in place was
    slower, the rows split into more runs of single pixels)."""
    if sw != 2 or dw != 1:
        inside = pl == 0 and (out_width - 1) * sw + 2 * dw < in_width
        return (0, out_width) if inside else (out_width, out_width)
    first = -(-pl // 2)  # the first column whose first tap is inside
    last = in_width - 3 + pl  # the largest 2 * ox whose last tap is inside
    end = min(out_width, last // 2 + 1) if last >= 0 else 0  # one past the last such column
    lo = min(first + first % 2, out_width)
    return lo, lo + 2 * max(0, (end - lo) // 2)


def depthwise_conv_2d_runner(weights, bias, stage, stride, dilation, padding, x_dtype, cin, x_width,
                             out_width) -> Run:
    _, kh, kw, cout = weights.shape
    (sh, sw), (dh, dw), (pt, pl) = stride, dilation, padding
    if is_float(stage):
        b, out_args = stage_args(stage, bias, cout)
        if kh == kw == 3 and cout == cin and (sw == 1 or (sw == 2 and dw == 1)) and _IR_KERNELS:  # MobileNet's
            # Taps and bias zero-padded to whole vectors of channels (kernels.depthwise_row).
            lanes = -(-cout // DEPTHWISE_LANES) * DEPTHWISE_LANES
            w9 = aligned(np.pad(weights.reshape(9, cout), ((0, 0), (0, lanes - cout))), np.float32)
            b = aligned(np.pad(b, (0, lanes - cout)), np.float32)
            # Padded rows (see kernels.conv._padded_row): every tap of every pixel reads inside
            # them; rounded up to 16 floats so that every slot starts on a 64-byte line.
            width = -(-max(pl + x_width, (out_width - 1) * sw + 2 * dw + 1) * cin // 16) * 16
            zero = aligned(np.zeros(width), np.float32)
            depthwise = in_parallel(kernels.depthwise3x3_float)
            lo, hi = _direct_columns(out_width, x_width, sw, dw, pl)

            @replayable
            def fill3x3(inputs, out) -> None:
                nt = numba_threads(out.size * 9)
                ring = WORKSPACE.get(0, np.float32, (nt, 3, width))
                depthwise(np.ascontiguousarray(inputs[0]), w9, b, out, sh, sw, dh, dw, pt, pl, *out_args, ring, zero,
                          lo, hi, nt=nt)

            return with_contiguous_output(fill3x3)
        if kh == kw == 5 and cout == cin and dilation == (1, 1) and sh == sw in (1, 2) and _IR_KERNELS:
            return _depthwise5x5_runner(weights, b, out_args, stride, padding, x_width, out_width)
        w3 = aligned(weights.reshape(kh, kw, cout), np.float32)
        zeros = aligned(np.zeros(cin), np.float32)

        depthwise_any = in_parallel(kernels.depthwise_conv_float)

        @replayable
        def fill(inputs, out) -> None:
            depthwise_any(np.ascontiguousarray(inputs[0]), w3, zeros, b, out, sh, sw, dh, dw, pt, pl, *out_args,
                          nt=numba_threads(out.size * kh * kw))

        return with_contiguous_output(fill)
    # Centered inputs (a ring of padded rows, zeros around them) times the centered filter,
    # summed exactly in the narrowest float type that can (kernels.depthwise_quantized).
    centered = weights.reshape(kh * kw, cout).astype(np.float64) - stage.weight_zero_point
    b, (table, out_zp, act_min, act_max) = stage_args(stage, bias, cout)
    constants = aligned(pack_stage(b, table), np.int64)
    cp = b.shape[0]  # cout rounded up to whole vector steps (requantize.padded_channels)
    dtype = exact_dtype(acc_bound(stage, centered.T, x_dtype))
    w = np.zeros((kh * kw, cp), dtype)
    w[:, :cout] = centered
    w = aligned(w, dtype)
    slots = (kh - 1) * dh + 1  # the input rows one output row reads lie within this many
    if out_width == 1:  # one output column: its stride moves nothing, and a huge one would size the ring
        sw = 1
    wp = depthwise_quantized.ring_width(out_width, x_width, sw, dw, kw, pl)
    depthwise = in_parallel(depthwise_quantized.depthwise_conv_quantized)

    @replayable
    def fill(inputs, out) -> None:
        nt = numba_threads(out.size * kh * kw)
        ring = WORKSPACE.get(0, dtype, (nt, slots + 1, wp, cp))
        depthwise(np.ascontiguousarray(inputs[0]), w, constants, stage.input_zero_point, out_zp, act_min, act_max,
                  out, kh, kw, sh, sw, dh, dw, pt, pl, ring, nt=nt)

    return with_contiguous_output(fill)


def _depthwise5x5_runner(weights, bias, out_args, stride, padding, x_width, out_width) -> Run:
    """A float 5x5 depthwise conv (kernels.conv.depthwise5x5_float) over zero-padded copies of its input
    rows: 16x16x128 stride 1 0.109 -> 0.049 ms against the tap-by-tap loops (1 thread). Each part pads
    the rows it reads, in the kernel: the selfie segmenter's five 5x5 convs 266-285 -> 207-254 us on 2
    threads, 244-251 -> 240-253 us on 1, against a padded copy of the whole input made by NumPy first
    (sums of per-operator minima, four runs each)."""
    cout = weights.shape[3]
    lanes = -(-cout // DEPTHWISE_LANES) * DEPTHWISE_LANES
    w25 = aligned(np.pad(weights.reshape(25, cout), ((0, 0), (0, lanes - cout))), np.float32)
    b = aligned(np.pad(bias, (0, lanes - cout)), np.float32)
    (s, _), (pt, pl) = stride, padding
    # Padded rows: every tap of every pixel reads inside them; 64-byte lines, as for the 3x3.
    width = -(-max(pl + x_width, (out_width - 1) * s + 5) * cout // 16) * 16
    zero = aligned(np.zeros(width), np.float32)
    depthwise = in_parallel(kernels.depthwise5x5_float)

    @replayable
    def fill(inputs, out) -> None:
        nt = numba_threads(out.size * 25)
        ring = WORKSPACE.get(0, np.float32, (nt, 5, width))
        depthwise(np.ascontiguousarray(inputs[0]), w25, b, out, s, s, pt, pl, *out_args, ring, zero, nt=nt)

    return with_contiguous_output(fill)


def transpose_conv_runner(weights, bias, stage, stride, padding, x_shape, out_shape) -> Run:
    cout, kh, kw, cin = weights.shape
    n, h, wd, _ = x_shape
    m = n * h * wd
    b, out_args = stage_args(stage, bias, cout)
    # [Cin, KH * KW * Cout]: one product gives every tap of every input pixel.
    if is_float(stage):
        dtype = np.dtype(np.float32)
        wmat = np.ascontiguousarray(weights.transpose(3, 1, 2, 0).reshape(cin, -1), dtype=dtype)
    else:
        centered = weights.astype(np.float64) - stage.weight_zero_point
        dtype = exact_dtype(acc_bound(stage, centered.reshape(cout, -1), weights.dtype))
        wmat = np.ascontiguousarray(centered.transpose(3, 1, 2, 0).reshape(cin, -1), dtype=dtype)
    (sh, sw), (pt, pl) = stride, padding
    no_bias = np.zeros(cout, dtype)  # the quantized output stage adds the bias itself

    def fill(inputs, out) -> None:
        x2d = inputs[2].reshape(m, cin)
        if is_float(stage):
            xc = x2d
        else:
            xc = WORKSPACE.get(0, dtype, (m, cin))
            xc[...] = x2d
            xc -= stage.input_zero_point
        taps = WORKSPACE.get(1, dtype, (m, kh * kw * cout))
        np.matmul(xc, wmat, out=taps)
        taps4 = taps.reshape(m, kh, kw, cout)
        if is_float(stage):
            kernels.transpose_conv_gather(taps4, h, wd, sh, sw, pt, pl, b, *out_args, out)
        else:
            acc = WORKSPACE.get(2, dtype, out.shape)
            kernels.transpose_conv_gather(taps4, h, wd, sh, sw, pt, pl, no_bias, -np.inf, np.inf, acc)
            requantize(acc.reshape(-1, cout), b, *out_args, out.reshape(-1, cout))

    return with_contiguous_output(fill)


__all__ = ["Run", "Workspace", "WORKSPACE", "acc_bound", "aligned", "conv_2d_runner", "depthwise_conv_2d_runner",
           "exact_dtype", "is_float", "numba_threads", "stage_args", "transpose_conv_runner",
           "with_contiguous_output"]
