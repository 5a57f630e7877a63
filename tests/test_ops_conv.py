"""CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV against LiteRT's reference kernels.

Each case runs on both backends through ``oracle.check_op``: float32 within the
contract tolerance, uint8 (per-tensor, TF1/Coral style) and int8 (symmetric
per-channel filters, TF2 converter style) bit-identical. The grid is a hand-picked
sample of kernel size x stride x dilation x padding x activation x shape parity x
batch, each case covering several axes at once, so that the file stays fast.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from oracle import T, check_op, compare, quant, run_litert, run_ours_op, single_op_model

from pydeeplab.errors import ModelError
from pydeeplab.reference.fixedpoint import multiply_by_quantized_multiplier
from pydeeplab.ops.padding import PaddingValues, compute_out_size, compute_padding
from pydeeplab.tflite.options import Conv2DOptions, DepthwiseConv2DOptions, TransposeConvOptions
from pydeeplab.tflite.schema import Activation, BuiltinOperator, Padding

NONE, RELU, RELU6, N1 = Activation.NONE, Activation.RELU, Activation.RELU6, Activation.RELU_N1_TO_1
SAME, VALID = Padding.SAME, Padding.VALID
CONV, DW, TCONV = BuiltinOperator.CONV_2D, BuiltinOperator.DEPTHWISE_CONV_2D, BuiltinOperator.TRANSPOSE_CONV


def _seed(*parts) -> int:
    """A fixed seed per test case (Python's hash() of a str changes between runs)."""
    return zlib.crc32(repr(parts).encode())


class _Tensors:
    """Random operands of one convolution in one of the three number formats.

    ``filter_shape``: the filter's shape; ``channel_axis``: its output-channel axis
    (0 for CONV_2D / TRANSPOSE_CONV, 3 for DEPTHWISE_CONV_2D); ``depth``: the number
    of terms in one output's sum, used to pick an output scale at which the outputs
    spread over the 8-bit range instead of saturating.
    """

    def __init__(self, kind: str, rng: np.random.Generator, x_shape, filter_shape, channel_axis: int,
                 depth: int, bias: bool, per_channel: bool = True):
        n_out = filter_shape[channel_axis]
        self.kind = kind
        if kind == "float32":
            self.x = T(rng.standard_normal(x_shape).astype(np.float32))
            self.w = T((rng.standard_normal(filter_shape) / np.sqrt(depth)).astype(np.float32), const=True)
            self.b = T(rng.standard_normal(n_out).astype(np.float32), const=True) if bias else None
            self.out = T(None, np.float32)
            return
        s_in = float(rng.uniform(0.01, 0.05))
        if kind == "uint8":
            zx, zw = int(rng.integers(0, 256)), int(rng.integers(60, 200))
            self.x = T(rng.integers(0, 256, x_shape).astype(np.uint8), quant=quant(s_in, zx))
            s_w = np.float32(rng.uniform(0.002, 0.02))
            self.w = T(rng.integers(0, 256, filter_shape).astype(np.uint8), const=True, quant=quant(s_w, zw))
            s_b = np.float32(s_in) * s_w  # what converters write; TFLite checks it (2% of s_out)
            spread = 74.0 * 74.0 * np.sqrt(depth)  # std of a sum of centered uniform 8-bit products
            dtype = np.uint8
        else:
            zx = int(rng.integers(-30, 30))
            self.x = T(rng.integers(-128, 128, x_shape).astype(np.int8), quant=quant(s_in, zx))
            s_w = rng.uniform(0.002, 0.02, n_out if per_channel else 1).astype(np.float32)
            self.w = T(rng.integers(-127, 128, filter_shape).astype(np.int8), const=True,
                       quant=quant(s_w, 0, channel_axis))
            s_b = np.float32(s_in) * s_w
            spread = 74.0 * 73.0 * np.sqrt(depth)
            dtype = np.int8
        s_out = float(np.float32(s_in) * np.max(s_w) * spread / 40.0 * rng.uniform(0.7, 1.4))
        zo = int(rng.integers(60, 200)) if dtype == np.uint8 else int(rng.integers(-40, 40))
        self.b = (T(rng.integers(-int(spread), int(spread) + 1, n_out).astype(np.int32), const=True,
                    quant=quant(s_b, 0)) if bias else None)
        self.out = T(None, dtype, quant=quant(s_out, zo))


KINDS = ("float32", "uint8", "int8")

# (input NHWC, Cout, kernel (h, w), stride (h, w), dilation (h, w), padding, activation, bias)
CONV_CASES = [
    ((1, 9, 9, 8), 12, (1, 1), (1, 1), (1, 1), SAME, NONE, True),  # pointwise: DeepLab's bulk
    ((2, 6, 7, 16), 8, (1, 1), (1, 1), (1, 1), VALID, RELU6, True),
    ((1, 5, 9, 8), 21, (1, 1), (1, 1), (1, 1), VALID, RELU, True),  # float: the tile's pixels as they lie, 16 + 5
    ((1, 9, 8, 6), 10, (1, 1), (2, 2), (1, 1), SAME, RELU, True),  # strided 1x1
    ((1, 11, 11, 3), 8, (3, 3), (2, 2), (1, 1), SAME, RELU6, True),  # MobileNet's stem
    ((1, 10, 12, 5), 7, (3, 3), (2, 2), (1, 1), SAME, NONE, True),  # even sizes: odd padding split
    ((1, 14, 19, 3), 21, (3, 5), (1, 2), (1, 1), SAME, RELU6, True),  # float: from padded rows, 16 + 5 channels
    ((2, 9, 10, 4), 6, (3, 3), (1, 1), (1, 1), VALID, N1, True),
    ((1, 12, 11, 4), 5, (3, 3), (2, 1), (1, 1), VALID, RELU, True),
    ((1, 13, 13, 6), 4, (3, 3), (1, 1), (2, 2), SAME, RELU, True),  # atrous
    ((1, 14, 15, 3), 5, (3, 3), (1, 1), (4, 4), SAME, NONE, True),
    ((1, 17, 16, 4), 6, (3, 3), (1, 1), (2, 4), VALID, RELU6, True),
    ((1, 25, 25, 4), 4, (3, 3), (1, 1), (6, 6), SAME, RELU, True),  # ASPP rates on a bigger map
    ((1, 33, 33, 3), 4, (3, 3), (1, 1), (12, 12), SAME, NONE, True),
    ((1, 9, 9, 3), 5, (5, 5), (1, 1), (1, 1), SAME, RELU, True),
    ((2, 12, 13, 4), 3, (5, 5), (2, 2), (1, 1), VALID, NONE, True),
    ((1, 8, 9, 3), 4, (5, 3), (2, 2), (2, 1), SAME, N1, True),
    # Deep enough for the Numba backend to im2col in several row blocks, one straddling the batches.
    ((2, 23, 30, 64), 16, (3, 3), (1, 1), (1, 1), SAME, RELU6, True),
]


def _conv_id(case) -> str:
    shape, cout, k, s, d, pad, act, bias = case
    return (f"{'x'.join(map(str, shape))}-{cout}-k{k[0]}{k[1]}-s{s[0]}{s[1]}-d{d[0]}{d[1]}-"
            f"{pad.name}-{act.name}{'' if bias else '-nobias'}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CONV_CASES, ids=_conv_id)
def test_conv_2d(kind, case):
    shape, cout, k, s, d, pad, act, bias = case
    rng = np.random.default_rng(_seed("conv", kind, case))
    t = _Tensors(kind, rng, shape, (cout, *k, shape[3]), 0, k[0] * k[1] * shape[3], bias)
    check_op(CONV, [t.x, t.w, t.b], [t.out], Conv2DOptions(pad, s[1], s[0], act, d[1], d[0]))


@pytest.mark.parametrize("parts", [2, 3])
@pytest.mark.parametrize("kind", ["uint8", "int8"])
def test_pointwise_quantized_conv_split_by_pixels(kind, parts, monkeypatch):
    """A quantized 1x1 conv in several parts splits its pixels, not its rows: parts that start
    and end inside a row (31x37 pixels in 2 or 3 parts) give LiteRT's outputs."""
    from pydeeplab.kernels import conv_plan

    monkeypatch.setattr(conv_plan, "numba_threads", lambda work=None: parts)
    shape, cout = (1, 31, 37, 24), 40
    rng = np.random.default_rng(_seed("pointwise-parts", kind, parts))
    t = _Tensors(kind, rng, shape, (cout, 1, 1, shape[3]), 0, shape[3], True)
    check_op(CONV, [t.x, t.w, t.b], [t.out], Conv2DOptions(SAME, 1, 1, NONE, 1, 1), backends=("numba",))


@pytest.mark.parametrize("opcode", [CONV, DW])
def test_int8_per_tensor_filter(opcode):
    """An int8 filter with one scale: TFLite broadcasts it over the output channels."""
    rng = np.random.default_rng(_seed("int8-per-tensor", opcode))
    if opcode == CONV:
        t = _Tensors("int8", rng, (1, 9, 8, 6), (5, 3, 3, 6), 0, 54, True, per_channel=False)
        opts = Conv2DOptions(SAME, 2, 2, RELU, 1, 1)
    else:
        t = _Tensors("int8", rng, (1, 9, 8, 6), (1, 3, 3, 6), 3, 9, True, per_channel=False)
        opts = DepthwiseConv2DOptions(SAME, 1, 1, 1, NONE, 2, 2)
    check_op(opcode, [t.x, t.w, t.b], [t.out], opts)


@pytest.mark.parametrize("kind", KINDS)
def test_conv_2d_without_bias(kind):
    """TFLite requires CONV_2D's bias; pydeeplab reads a missing one as 0: held against an explicit 0."""
    rng = np.random.default_rng(_seed("nobias", kind))
    t = _Tensors(kind, rng, (1, 8, 7, 5), (6, 3, 3, 5), 0, 45, bias=True)
    opts = Conv2DOptions(SAME, 2, 1, RELU, 1, 1)
    zero = T(np.zeros_like(t.b.value), const=True, quant=t.b.quant)
    (ref,) = run_litert(single_op_model(CONV, [t.x, t.w, zero], [t.out], opts), [t.x.array()])
    declared = T(None, t.out.tensor_type(), ref.shape, t.out.quant)
    for inputs in ([t.x, t.w], [t.x, t.w, None]):
        for backend in ("numpy", "numba"):
            (ours,) = run_ours_op(CONV, inputs, [declared], opts, backend)
            compare(ours, ref, f"CONV_2D without bias [{backend}]")


def test_conv_2d_float64_products():
    """uint8 weights far from their zero point over a deep input: the Numba backend's
    product cannot count in float32 exactly and must fall back to float64."""
    rng = np.random.default_rng(5)
    x = T(rng.integers(0, 256, (1, 5, 6, 640)).astype(np.uint8), quant=quant(0.02, 3))
    w = T(rng.integers(200, 256, (9, 1, 1, 640)).astype(np.uint8), const=True, quant=quant(0.003, 0))
    s_b = np.float32(0.02) * np.float32(0.003)
    b = T(rng.integers(-9999, 9999, 9).astype(np.int32), const=True, quant=quant(s_b, 0))
    out = T(None, np.uint8, quant=quant(0.02 * 0.003 * 640 * 230 * 128 / 100, 7))
    check_op(CONV, [x, w, b], [out], Conv2DOptions(VALID, 1, 1, NONE, 1, 1))


# (input NHWC, depth multiplier, kernel, stride, dilation, padding, activation, bias)
DW_CASES = [
    ((1, 9, 9, 8), 1, (3, 3), (1, 1), (1, 1), SAME, RELU6, True),  # MobileNetV2's depthwise
    ((2, 10, 11, 6), 1, (3, 3), (2, 2), (1, 1), SAME, NONE, True),
    ((1, 12, 12, 5), 1, (3, 3), (2, 2), (1, 1), VALID, RELU, True),
    ((1, 13, 14, 4), 1, (3, 3), (1, 1), (2, 2), SAME, RELU6, True),  # DeepLab's atrous depthwise
    ((1, 17, 17, 4), 1, (3, 3), (1, 1), (4, 4), SAME, NONE, False),
    ((1, 27, 26, 3), 1, (3, 3), (1, 1), (12, 12), SAME, N1, True),
    ((1, 9, 10, 4), 1, (5, 5), (1, 1), (1, 1), SAME, RELU, True),
    ((2, 11, 9, 3), 1, (5, 5), (2, 1), (1, 2), VALID, NONE, True),
    ((1, 9, 9, 3), 2, (3, 3), (1, 1), (1, 1), SAME, NONE, True),  # depth multiplier 2
    ((2, 10, 8, 4), 2, (3, 3), (2, 2), (1, 1), VALID, RELU6, False),
    ((1, 15, 14, 2), 2, (3, 3), (1, 1), (3, 2), SAME, N1, True),
    ((1, 8, 8, 5), 2, (1, 1), (1, 1), (1, 1), VALID, RELU, True),
    ((1, 11, 10, 3), 3, (5, 3), (2, 2), (1, 1), SAME, NONE, True),
    # 32+ channels: the float 3x3 kernel's grouped paths (4 pixels one dilation apart, stride-2
    # pairs, edge pixels), as in DeepLab's 33x33 atrous layers.
    ((1, 33, 33, 40), 1, (3, 3), (1, 1), (4, 4), SAME, RELU6, True),
    ((1, 17, 19, 32), 1, (3, 3), (1, 1), (1, 1), SAME, NONE, True),
    ((1, 18, 17, 96), 1, (3, 3), (2, 2), (1, 1), SAME, RELU6, True),
    ((1, 13, 12, 48), 1, (3, 3), (1, 1), (6, 6), SAME, N1, False),
    ((2, 9, 11, 33), 1, (3, 3), (2, 1), (2, 3), VALID, RELU, True),
    ((1, 3, 2, 64), 1, (3, 3), (1, 1), (2, 2), SAME, NONE, True),
    # Stride 2 reads the interior columns from the input rows, the edge ones from padded
    # copies: no left padding (even width), and widths with no interior column at all.
    ((1, 6, 10, 24), 1, (3, 3), (2, 2), (1, 1), SAME, RELU6, True),
    ((2, 5, 2, 16), 1, (3, 3), (2, 2), (1, 1), SAME, NONE, True),
    ((1, 4, 3, 8), 1, (3, 3), (2, 2), (1, 1), VALID, NONE, False),
    # Stride 2 with a row dilation only: the in-place input rows are dh apart too.
    ((1, 15, 12, 2), 1, (3, 3), (2, 2), (2, 1), VALID, RELU6, True),
    # VALID stride 1 (the depthwise convs between SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND):
    # every row read in place.
    ((4, 9, 9, 72), 1, (3, 3), (1, 1), (1, 1), VALID, RELU6, True),
    ((2, 11, 10, 20), 1, (3, 3), (1, 1), (2, 2), VALID, NONE, True),
    # 5x5 (MobileNetV3's), float: runs of pixels over zero-padded copies of the input rows.
    ((1, 16, 16, 40), 1, (5, 5), (1, 1), (1, 1), SAME, RELU6, True),
    ((2, 17, 18, 33), 1, (5, 5), (2, 2), (1, 1), SAME, NONE, True),
    ((1, 12, 11, 20), 1, (5, 5), (2, 2), (1, 1), VALID, RELU, False),
]


def _dw_id(case) -> str:
    shape, dm, k, s, d, pad, act, bias = case
    return (f"{'x'.join(map(str, shape))}-m{dm}-k{k[0]}{k[1]}-s{s[0]}{s[1]}-d{d[0]}{d[1]}-"
            f"{pad.name}-{act.name}{'' if bias else '-nobias'}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", DW_CASES, ids=_dw_id)
def test_depthwise_conv_2d(kind, case):
    shape, dm, k, s, d, pad, act, bias = case
    rng = np.random.default_rng(_seed("dw", kind, case))
    t = _Tensors(kind, rng, shape, (1, *k, shape[3] * dm), 3, k[0] * k[1], bias)
    inputs = [t.x, t.w, t.b] if bias else [t.x, t.w]  # TFLite takes a missing bias, not a -1
    check_op(DW, inputs, [t.out], DepthwiseConv2DOptions(pad, s[1], s[0], dm, act, d[1], d[0]))


def test_depthwise_conv_2d_float64_sums():
    """A 19x19 uint8 filter far from its zero point: 252 * sum |w - w_zp| passes 2**24, so the
    Numba backend's ring of centered rows and its sums must be float64 (depth multiplier 2 and
    6 channels, a partial vector step, on the way)."""
    from types import SimpleNamespace

    from pydeeplab.kernels.conv_plan import acc_bound, exact_dtype

    rng = np.random.default_rng(6)
    x = T(rng.integers(0, 256, (1, 21, 22, 3)).astype(np.uint8), quant=quant(0.02, 3))
    w = T(rng.integers(200, 256, (1, 19, 19, 6)).astype(np.uint8), const=True, quant=quant(0.003, 0))
    centered = np.asarray(w.value).reshape(19 * 19, 6).T.astype(np.int64)  # the plan's bound, as conv_plan computes it
    assert exact_dtype(acc_bound(SimpleNamespace(input_zero_point=3), centered, np.uint8)) == np.float64
    s_b = np.float32(0.02) * np.float32(0.003)
    b = T(rng.integers(-9999, 9999, 6).astype(np.int32), const=True, quant=quant(s_b, 0))
    out = T(None, np.uint8, quant=quant(0.02 * 0.003 * 361 * 228 * 128 / 100, 7))
    check_op(DW, [x, w, b], [out], DepthwiseConv2DOptions(SAME, 1, 1, 2, NONE, 1, 1))


# (input NHWC, Cout, kernel, stride, padding, activation, bias, output HW or None for the usual one)
TCONV_CASES = [
    ((1, 5, 5, 4), 3, (3, 3), (1, 1), SAME, NONE, True, None),
    ((2, 4, 5, 3), 4, (3, 3), (2, 2), SAME, RELU, True, None),
    ((1, 4, 4, 6), 2, (3, 3), (2, 2), VALID, NONE, False, None),
    ((1, 6, 5, 3), 5, (2, 2), (2, 2), SAME, RELU6, False, None),
    ((1, 5, 4, 2), 3, (4, 4), (2, 2), VALID, N1, True, None),
    ((1, 3, 4, 5), 2, (3, 3), (1, 1), VALID, RELU, True, None),
    ((1, 4, 3, 3), 3, (5, 3), (3, 2), SAME, NONE, True, None),
    # Output sizes the stride leaves ambiguous: one short (SAME), one past the last tap (VALID).
    ((1, 4, 5, 2), 3, (3, 3), (2, 2), SAME, RELU, True, (7, 9)),
    ((1, 4, 4, 3), 2, (3, 3), (2, 2), VALID, NONE, True, (10, 9)),
]


def _tconv_id(case) -> str:
    shape, cout, k, s, pad, act, bias, out_hw = case
    size = f"-o{out_hw[0]}x{out_hw[1]}" if out_hw else ""
    return (f"{'x'.join(map(str, shape))}-{cout}-k{k[0]}{k[1]}-s{s[0]}{s[1]}-{pad.name}-{act.name}"
            f"{'' if bias else '-nobias'}{size}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", TCONV_CASES, ids=_tconv_id)
def test_transpose_conv(kind, case):
    shape, cout, k, s, pad, act, bias, out_hw = case
    n, h, w, cin = shape
    rng = np.random.default_rng(_seed("tconv", kind, case))
    # Each output gathers about KH*KW/(sh*sw) taps of Cin channels.
    t = _Tensors(kind, rng, shape, (cout, *k, cin), 0, max(1, k[0] * k[1] * cin // (s[0] * s[1])), bias)
    if out_hw is None:
        out_hw = ((h - 1) * s[0] + k[0], (w - 1) * s[1] + k[1]) if pad == VALID else (h * s[0], w * s[1])
    out_shape = T(np.array([n, *out_hw, cout], np.int32), const=True)
    check_op(TCONV, [out_shape, t.w, t.x, t.b], [t.out], TransposeConvOptions(pad, s[1], s[0], act))


def _im2col_numpy(x, rows, row0, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, offset, fill, dtype):
    """The im2col rows of output rows row0 .. row0 + rows, in NumPy: (x + offset) in dtype, fill outside x."""
    n, h, w, c = x.shape
    wide = np.float64 if dtype == np.float32 else np.int64
    padded = np.full((n, h + 2 * kh * dh + pt, w + 2 * kw * dw + pl, c), fill, wide)
    padded[:, pt : pt + h, pl : pl + w] = x.astype(wide) + offset
    out = np.empty((rows * ow, kh * kw * c), wide)
    for rr in range(rows):
        b, oy = divmod(row0 + rr, oh)
        for ox in range(ow):
            taps = padded[b, oy * sh : oy * sh + kh * dh : dh, ox * sw : ox * sw + kw * dw : dw]
            out[rr * ow + ox] = taps.reshape(-1)
    return out.astype(dtype)  # integer sums wrap as the kernel's store does


@pytest.mark.parametrize("types", [(np.int8, np.uint8, 128, 131), (np.uint8, np.uint8, 0, 140),
                                   (np.float32, np.float32, 0.0, 0.0)], ids=["int8-uint8", "uint8-uint8", "float32"])
def test_im2col_matches_numpy(types):
    """The Numba im2col (its window rows inside x as masked copies of up to 16 values, longer ones
    16 at a time, the edges value by value) against NumPy over channels 1..20 (runs of 1 to 100
    values), 1x1 to 5x5 windows, strides, dilations, paddings (``fill`` outside x) and a block
    straddling two images; the columns past the window are left as they were."""
    from pydeeplab.kernels.conv import _im2col

    src, dst, offset, fill = types
    rng = np.random.default_rng(5)
    for c, (kh, kw), (sh, sw), (dh, dw), (pt, pl) in [
            (3, (3, 3), (2, 2), (1, 1), (1, 1)), (3, (3, 3), (2, 2), (1, 1), (0, 0)),
            (1, (3, 3), (1, 1), (1, 1), (1, 1)), (5, (3, 3), (1, 2), (2, 1), (2, 1)),
            (8, (1, 1), (1, 1), (1, 1), (0, 0)), (20, (5, 5), (2, 1), (1, 1), (2, 2)),
            (7, (3, 2), (1, 1), (1, 2), (1, 0)), (4, (3, 3), (3, 3), (1, 1), (0, 2)),
            (16, (1, 3), (1, 1), (1, 1), (0, 1))]:
        n, h, w = 2, 9, 11
        x = (rng.standard_normal((n, h, w, c)) * 50).astype(src) if src == np.float32 else \
            rng.integers(np.iinfo(src).min, np.iinfo(src).max + 1, (n, h, w, c)).astype(src)
        oh, ow = (h + 2 * pt - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pl - dw * (kw - 1) - 1) // sw + 1
        row0, rows = oh - 2, 4  # the last two output rows of image 0 and the first two of image 1
        width = kh * kw * c + 3
        cols = np.full((rows * ow, width), 77, dst)
        if dst == np.float32:
            _im2col(x, cols, row0, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, np.float32(offset), np.float32(fill))
        else:
            _im2col(x, cols, row0, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, np.int16(offset), np.uint8(fill))
        expected = _im2col_numpy(x, rows, row0, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, offset, fill, dst)
        case = (c, kh, kw, sh, sw, dh, dw, pt, pl)
        np.testing.assert_array_equal(cols[:, : kh * kw * c], expected, err_msg=str(case))
        assert (cols[:, kh * kw * c :] == 77).all(), case


def test_requantize_kernel_matches_reference_fixedpoint():
    """The Numba output stage (general form: left shifts too) against the reference fixed-point
    functions, over the int32 range, every shift TFLite can produce and extreme multipliers."""
    from pydeeplab.kernels import requantize as kernels

    rng = np.random.default_rng(11)
    edges = [-(2**31), -(2**31) + 1, -(2**30), -3, -2, -1, 0, 1, 2, 3, 2**30, 2**31 - 1]
    totals = np.concatenate([edges, rng.integers(-(2**31), 2**31, 3000), rng.integers(-4096, 4096, 1000)])
    shift, multiplier = np.meshgrid(np.arange(-31, 31), [0, 1, 2**30, 1518500250, 2**31 - 1], indexing="ij")
    shift, multiplier = shift.ravel().astype(np.int32), multiplier.ravel().astype(np.int32)
    n_ch = shift.size
    acc = np.repeat(totals[:, None].astype(np.float64), n_ch, axis=1)
    bias = rng.integers(-100, 100, n_ch).astype(np.int64)
    ours = np.empty(acc.shape, np.int64)
    table = kernels.requant_table(multiplier, np.maximum(shift, 0).astype(np.int64),
                                  np.maximum(-shift, 0).astype(np.int64))
    kernels.requantize(acc, bias, table, 7, -(2**40), 2**40, ours)
    wrapped = (totals[:, None] + bias + 2**31) % 2**32 - 2**31  # the int32 accumulator wraps
    expected = multiply_by_quantized_multiplier(wrapped, multiplier, shift) + 7
    np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("padded", [False, True], ids=["scalar-tail", "vector-tail"])
@pytest.mark.parametrize("acc_dtype", [np.int32, np.float32, np.float64])
@pytest.mark.parametrize("out_dtype", [np.uint8, np.int8, np.int64])
def test_requantize_rows_sixteen_at_a_time_matches_reference_fixedpoint(acc_dtype, out_dtype, padded):
    """The output stage's vector step (16 channels, each its own multiplier and right shift)
    and its last 5 channels (a scalar loop, or with acc, bias and table padded to 48 one more
    vector step whose stores are masked: nothing past the output is written) against the
    reference fixed-point functions: ties,
    negatives, both ends of the int32 range, sums that wrap, every right shift, the clamp,
    each acc type."""
    from pydeeplab.kernels import requantize as kernels

    rng = np.random.default_rng(12)
    c = 37  # two vector steps and a tail of 5
    shift = -np.concatenate([rng.permutation(32), [0, 1, 31, 7, 15]]).astype(np.int64)  # every right shift
    multiplier = rng.choice([0, 1, 2**30, 1518500250, 2**31 - 1, 1073741825], c)
    if acc_dtype == np.int32:
        edges = [-(2**31), -(2**31) + 1, -(2**30), -3, -2, -1, 0, 1, 2, 3, 2**30, 2**31 - 1]
        totals = np.concatenate([edges, rng.integers(-(2**31), 2**31, 500), rng.integers(-4096, 4096, 300)])
        bias = rng.integers(-(2**31), 2**31, c)  # sums past int32: they wrap
    else:  # exact integers in the float type
        limit = 2**24 if acc_dtype == np.float32 else 2**40
        totals = np.concatenate([[-limit, -3, -2, -1, 0, 1, 2, 3, limit], rng.integers(-limit, limit, 500)])
        bias = rng.integers(-100, 100, c)
    acc = np.repeat(totals[:, None], c, axis=1).astype(acc_dtype)
    info = np.iinfo(out_dtype)
    lo, hi = (-(2**40), 2**40) if out_dtype == np.int64 else (info.min, info.max)
    table = kernels.requant_table(multiplier, np.zeros(c, np.int64), -shift)
    guarded = np.full(acc.size + 64, 42, out_dtype)  # the output, then 64 values that must stay 42
    ours = guarded[: acc.size].reshape(acc.shape)
    if padded:
        width = kernels.padded_channels(c)
        wide = np.full((acc.shape[0], width), 99, acc.dtype)  # what lies past C must not matter
        wide[:, :c] = acc
        table_wide = np.full((6, width), 3, np.int64)
        table_wide[:, :c] = table
        kernels.requantize_rows(wide, np.concatenate([bias, np.full(width - c, 7)]), table_wide, -5, lo, hi, ours)
    else:
        kernels.requantize_rows(acc, bias, table, -5, lo, hi, ours)
    wrapped = (totals[:, None].astype(np.int64) + bias + 2**31) % 2**32 - 2**31
    expected = np.clip(multiply_by_quantized_multiplier(wrapped, multiplier.astype(np.int32), shift.astype(np.int32)) - 5,
                       lo, hi)
    np.testing.assert_array_equal(ours.astype(np.int64), expected)
    assert (guarded[acc.size :] == 42).all()


# --------------------------------------------------------------------------- padding helper


def test_padding_matches_tflite_formulas():
    assert compute_padding(SAME, 257, 3, 2) == PaddingValues(129, 1, 1)  # DeepLab's stem: 257 -> 129
    assert compute_padding(SAME, 10, 3, 2) == PaddingValues(5, 0, 1)  # odd total: the extra zero goes after
    assert compute_padding(SAME, 33, 3, 1, dilation=12) == PaddingValues(33, 12, 12)
    assert compute_padding(VALID, 12, 3, 2) == PaddingValues(5, 0, 0)
    assert compute_padding(SAME, 4, 1, 3) == PaddingValues(2, 0, 0)  # window stops short of the end: no padding
    assert compute_out_size(VALID, 2, 5, 1) == -2  # C division truncates toward zero; callers reject <= 0
    assert compute_out_size(SAME, 7, 3, 0) == 0


# --------------------------------------------------------------------------- errors


def _prepare(opcode, inputs, outputs, options):
    return run_ours_op(opcode, inputs, outputs, options, "numpy")


def test_conv_2d_channel_mismatch_raises():
    x = T(np.zeros((1, 5, 5, 8), np.float32))
    w = T(np.zeros((4, 3, 3, 3), np.float32), const=True)
    b = T(np.zeros(4, np.float32), const=True)
    with pytest.raises(ModelError, match="3 input channels, the input has 8"):
        _prepare(CONV, [x, w, b], [T(None, np.float32, (1, 5, 5, 4))], Conv2DOptions(SAME, 1, 1))
    w4 = T(np.zeros((4, 3, 3, 4), np.float32), const=True)
    with pytest.raises(ModelError, match="grouped convolution"):
        _prepare(CONV, [x, w4, b], [T(None, np.float32, (1, 5, 5, 4))], Conv2DOptions(SAME, 1, 1))


@pytest.mark.parametrize(
    "opcode, inputs, options, message",
    [
        (CONV, [T(np.zeros((1, 4, 4, 2), np.float32)), T(np.zeros((3, 5, 5, 2), np.float32), const=True)],
         Conv2DOptions(VALID, 1, 1), "does not fit"),
        (CONV, [T(np.zeros((1, 4, 4, 2), np.float32)), T(np.zeros((3, 1, 1, 2), np.float32), const=True)],
         Conv2DOptions(SAME, 0, 1), "strides must be positive"),
        (CONV, [T(np.zeros((1, 4, 4, 2), np.float32)), T(np.zeros((3, 1, 1, 2), np.float32))],
         Conv2DOptions(SAME, 1, 1), "filter \\(input 1\\) must be a constant"),
        (CONV, [T(np.zeros((1, 4, 4, 2), np.float32)), T(np.zeros((3, 1, 1, 2), np.int8), const=True)],
         Conv2DOptions(SAME, 1, 1), "hybrid"),
        (CONV, [T(np.zeros((1, 4, 4, 2), np.float32)), T(np.zeros((3, 1, 1, 2), np.float32), const=True),
                T(np.zeros(4, np.float32), const=True)],
         Conv2DOptions(SAME, 1, 1), "bias has 4 elements for 3"),
        (DW, [T(np.zeros((1, 4, 4, 3), np.float32)), T(np.zeros((1, 3, 3, 4), np.float32), const=True)],
         DepthwiseConv2DOptions(SAME, 1, 1, 1), "not a multiple of the input depth"),
        (DW, [T(np.zeros((1, 4, 4, 3), np.float32)), T(np.zeros((2, 3, 3, 3), np.float32), const=True)],
         DepthwiseConv2DOptions(SAME, 1, 1, 1), "must have shape \\[1, KH, KW"),
        (TCONV, [T(np.array([1, 9, 9, 2], np.int32), const=True), T(np.zeros((2, 3, 3, 3), np.float32), const=True),
                 T(np.zeros((1, 4, 4, 3), np.float32))],
         TransposeConvOptions(SAME, 2, 2), "needs a 5x5 input, not 4x4"),
    ],
)
def test_invalid_models_raise(opcode, inputs, options, message):
    with pytest.raises(ModelError, match=message):
        _prepare(opcode, inputs, [T(None, np.float32, (1, 1, 1, 1))], options)


def test_quantization_errors():
    x = T(np.zeros((1, 4, 4, 2), np.uint8), quant=quant(0.1, 128))
    out = T(None, np.uint8, (1, 4, 4, 3), quant=quant(0.2, 128))
    per_channel = T(np.zeros((3, 1, 1, 2), np.uint8), const=True, quant=quant([0.1, 0.2, 0.3], 128))
    with pytest.raises(ModelError, match="per-channel filter quantization needs INT8"):
        _prepare(CONV, [x, per_channel, None], [out], Conv2DOptions(SAME, 1, 1))
    w = T(np.zeros((3, 1, 1, 2), np.uint8), const=True, quant=quant(0.1, 128))
    bad_bias = T(np.zeros(3, np.int32), const=True, quant=quant(0.5, 0))
    with pytest.raises(ModelError, match="bias scale"):
        _prepare(CONV, [x, w, bad_bias], [out], Conv2DOptions(SAME, 1, 1))
    xi = T(np.zeros((1, 4, 4, 2), np.int8), quant=quant(0.1, 0))
    wi = T(np.zeros((3, 1, 1, 2), np.int8), const=True, quant=quant([0.1, 0.2, 0.3], 1))
    with pytest.raises(ModelError, match="symmetric"):
        _prepare(CONV, [xi, wi, None], [T(None, np.int8, (1, 4, 4, 3), quant=quant(0.2, 0))], Conv2DOptions(SAME, 1, 1))
    with pytest.raises(ModelError, match="no quantization parameters"):
        _prepare(CONV, [T(np.zeros((1, 4, 4, 2), np.uint8)), w, None], [out], Conv2DOptions(SAME, 1, 1))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # (the reference on inf)
@pytest.mark.parametrize("kind", ["conv", "depthwise"])
@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
def test_a_filter_with_nan_or_inf_meets_only_the_input(kind, bad):
    """TFLite skips the taps outside the input; the numba kernels multiply zero padding, and
    ``0 * nan`` or ``0 * inf`` is NaN: such a filter runs as the reference does, the same non-finite
    outputs as LiteRT's (a corrupted model; found by ``tools/fuzz.py --differential``)."""
    rng = np.random.default_rng(31)
    x = rng.standard_normal((1, 6, 7, 3)).astype(np.float32)
    shape = (4, 3, 3, 3) if kind == "conv" else (1, 3, 3, 3)
    w = rng.standard_normal(shape).astype(np.float32)
    w.reshape(-1)[rng.choice(w.size, 5, replace=False)] = bad
    b = rng.standard_normal(shape[0] if kind == "conv" else 3).astype(np.float32)
    for stride in (1, 2):
        if kind == "conv":
            opcode, options = CONV, Conv2DOptions(SAME, stride, stride, NONE, 1, 1)
        else:
            opcode = BuiltinOperator.DEPTHWISE_CONV_2D
            options = DepthwiseConv2DOptions(SAME, stride, stride, 1, NONE, 1, 1)
        (ref,) = check_op(opcode, [T(x), T(w, const=True), T(b, const=True)], [T(None, np.float32)], options)
        assert not np.isfinite(ref).all()


def test_quantized_depthwise_with_a_huge_stride_keeps_its_scratch_small():
    """One output column: the stride moves nothing. The 8-bit depthwise kernel's ring of padded rows
    was sized by it (a stride of 2**30 asked for 33.8 TiB; found by ``tools/fuzz.py``); now the
    output is LiteRT's and the scratch a few rows of the input."""
    from pydeeplab.kernels.conv_plan import WORKSPACE

    rng = np.random.default_rng(32)
    x = T(rng.integers(0, 256, (1, 5, 9, 16)).astype(np.uint8), quant=quant(0.05, 120))
    w = T(rng.integers(0, 256, (1, 3, 3, 16)).astype(np.uint8), quant=quant(0.02, 128), const=True)
    b = T(rng.integers(-300, 300, 16).astype(np.int32), quant=quant(0.001, 0), const=True)
    options = DepthwiseConv2DOptions(SAME, 30000, 2, 1, NONE, 1, 1)  # (LiteRT takes strides up to 32767)
    largest = lambda: max((buf.nbytes for buf in WORKSPACE.buffers.values()), default=0)  # noqa: E731
    before = largest()  # (the workspace grows to the largest request of the thread's operators so far)
    (ref,) = check_op(DW, [x, w, b], [T(None, np.uint8, quant=quant(0.1, 100))], options, backends=("numba",))
    assert ref.shape == (1, 3, 1, 16)
    assert largest() <= max(before, 2**20)


def test_a_rescaling_multiplier_past_a_31_bit_left_shift_is_refused():
    """A filter channel scale of 3e38 (a damaged model): TFLite would shift an int32 left by 129 bits,
    undefined in C++ (LiteRT's outputs then are the compiler's); refused, saying so."""
    rng = np.random.default_rng(33)
    scales = np.array([0.002, 0.003, 3e38], np.float32)
    x = T(rng.integers(-128, 128, (1, 4, 4, 3)).astype(np.int8), quant=quant(0.05, 3))
    w = T(rng.integers(-127, 128, (1, 3, 3, 3)).astype(np.int8), quant=quant(scales, np.zeros(3, np.int64), 3),
          const=True)
    options = DepthwiseConv2DOptions(SAME, 1, 1, 1, NONE, 1, 1)
    for backend in ("numpy", "numba"):
        with pytest.raises(ModelError, match="needs a left shift of 1[0-9][0-9] bits; TFLite shifts an int32"):
            run_ours_op(DW, [x, w], [T(None, np.int8, (1, 4, 4, 3), quant(0.04, -2))], options, backend)
