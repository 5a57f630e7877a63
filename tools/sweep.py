"""Conformance sweep: single-operator models, LiteRT's reference kernels against both backends.

Every case is one operator with concrete shapes, options, data and quantization. It
is written as a .tflite model (``tests/oracle.py``), run by LiteRT with the
``BUILTIN_REF`` resolver, and run by pydeeplab's registered prepare function on the
``numpy`` and the ``numba`` backend. Float outputs must agree within
``1e-5 * (1 + max|ref|)``; integer outputs must be identical.

A case is fully described by ``(op, dtype, params)``, where ``params`` is a small
JSON-able dict (shapes, options and a data seed): :func:`make_case` rebuilds it
exactly, so every mismatch the sweep reports is a one-line reproduction::

    python tools/sweep.py --case '{"op": "CONV_2D", "dtype": "uint8", "params": {...}}'

Cases come from two sources: a fixed grid per operator (the parameter grid of the
conformance issue: kernel sizes, strides, dilations, paddings, activations, ...) and
Hypothesis, which draws random shapes and parameters from the same spaces
(a fixed seed in CI; ``--deep`` for long local runs)::

    python tools/sweep.py                    # grid + 30 random cases per operator (as CI runs it)
    python tools/sweep.py --deep 10000       # grid + 10,000 random cases across the operators
    python tools/sweep.py --ops CONV_2D --seed 7 --examples 200

Statuses: ``pass``; ``mismatch`` (our numbers differ); ``error`` (ours raised where
LiteRT ran); ``rejected`` (LiteRT refuses the model and so do we: a case built to be
invalid, e.g. align_corners with half_pixel_centers); ``lenient`` (LiteRT refuses,
we accept); ``invalid`` (LiteRT refuses a case the generator meant to be valid: a
generator bug); ``unregistered`` (the operator has no implementation yet).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
# The oracle (LiteRT helpers and the single-op model writer) lives with the tests.
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))

from oracle import T, compare, quant, run_litert, run_ours_op, single_op_model  # noqa: E402

from pydeeplab.errors import ModelError  # noqa: E402
from pydeeplab.tflite.model import Quantization  # noqa: E402
from pydeeplab.tflite.options import (  # noqa: E402
    AddOptions, ArgMaxOptions, ArgMinOptions, BatchMatMulOptions, CastOptions, ConcatenationOptions, Conv2DOptions,
    DepthToSpaceOptions, DepthwiseConv2DOptions, DivOptions, EmptyOptions, FullyConnectedOptions, GatherOptions,
    GeluOptions, LeakyReluOptions, MirrorPadOptions, MulOptions, PackOptions, Pool2DOptions, ReducerOptions,
    ResizeBilinearOptions, ResizeNearestNeighborOptions, ShapeOptions, SoftmaxOptions, SpaceToDepthOptions,
    SplitOptions, SplitVOptions, StridedSliceOptions, SubOptions, TransposeConvOptions, UnpackOptions)
from pydeeplab.tflite.schema import Activation, BuiltinOperator, MirrorPadMode, Padding, TensorType  # noqa: E402

DTYPES = ("float32", "uint8", "int8")
#: The convolutions and FULLY_CONNECTED are swept hybrid too: float32 input and output, int8 weights
#: (dynamic-range quantization), the input quantized at every run.
HYBRID_DTYPES = DTYPES + ("hybrid",)
QRANGE = {"uint8": (0, 255), "int8": (-128, 127)}
BACKENDS = ("numpy", "numba")
ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
#: Hypothesis examples per operator in the default (CI) run.
CI_EXAMPLES = 200
CI_SEED = 20240601


# ---------------------------------------------------------------------------------------
# Quantization of test data
# ---------------------------------------------------------------------------------------

def _ttype(dtype: str) -> TensorType:
    """The activations' type of a case's dtype (a hybrid case's are float32)."""
    return {"float32": TensorType.FLOAT32, "uint8": TensorType.UINT8, "int8": TensorType.INT8,
            "hybrid": TensorType.FLOAT32}[dtype]


def range_quant(lo: float, hi: float, dtype: str) -> Quantization:
    """Per-tensor asymmetric parameters covering [lo, hi] (widened to hold 0), as a converter picks them."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-6:
        hi = lo + 1e-6
    qmin, qmax = QRANGE[dtype]
    scale = float(np.float32((hi - lo) / (qmax - qmin)))
    zp = int(np.clip(round(qmin - lo / scale), qmin, qmax))
    return quant(scale, zp)


def random_quant(rng: np.random.Generator, dtype: str) -> Quantization:
    """Random per-tensor parameters of an activation: scale 10^[-2.5, -0.5], any zero point."""
    qmin, qmax = QRANGE[dtype]
    return quant(float(10 ** rng.uniform(-2.5, -0.5)), int(rng.integers(qmin, qmax + 1)))


def random_tensor(rng: np.random.Generator, dtype: str, shape, q: Quantization | None = None,
                  const: bool = False) -> T:
    """A random input tensor: standard normal floats, or uniform raw integers over the whole range."""
    shape = tuple(int(d) for d in shape)
    if dtype in ("float32", "hybrid"):
        return T(rng.standard_normal(shape).astype(np.float32), const=const)
    qmin, qmax = QRANGE[dtype]
    q = q if q is not None else random_quant(rng, dtype)
    return T(rng.integers(qmin, qmax + 1, shape).astype(_ttype(dtype).dtype), quant=q, const=const)


def _dequantized(t: T | None) -> T | None:
    """The float twin of a quantized tensor (int32 index tensors and floats pass unchanged)."""
    if t is None or t.quant is None or t.value is None:
        return t
    q = t.quant
    v = np.asarray(t.value).astype(np.float64)
    if q.scales.size > 1:
        shape = [1] * v.ndim
        shape[q.quantized_dimension] = -1
        s, z = q.scales.reshape(shape), q.zero_points.reshape(shape)
    else:
        s, z = q.scales[0], q.zero_points[0]
    return T(((v - z) * s).astype(np.float32), const=t.const)


def calibrated_output(opcode, inputs: list[T | None], options, dtype: str,
                      rng: np.random.Generator, version: int = 1) -> Quantization:
    """Output parameters from the float twin of the case, run in LiteRT, with a random
    widening or narrowing of up to 35% so that some cases saturate and some do not use
    the whole range."""
    twin = [_dequantized(t) for t in inputs]
    model = single_op_model(opcode, twin, [T(None, np.float32)], options, version)
    (y,) = run_litert(model, [t.array() for t in twin if t is not None and not t.const], "ref")
    lo, hi = float(y.min()), float(y.max())
    # An output that is (nearly) constant, e.g. all clamped by a RELU, would get a scale
    # so small that TFLite's multipliers overflow: give it a span of at least 2% of the inputs'.
    floor = max(1e-2, 0.02 * max((float(np.abs(t.array()).max()) for t in twin
                                  if t is not None and t.array().dtype == np.float32 and t.array().size),
                                 default=0.0))
    if hi - lo < floor:
        hi = lo + floor
    f = float(np.exp(rng.uniform(-0.3, 0.3)))
    return range_quant(lo * f, hi * f, dtype)


# ---------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------

@dataclass
class Case:
    """One single-operator test: how to run it and how to rebuild it (op, dtype, params)."""

    op: str
    dtype: str
    params: dict
    inputs: list[T | None]
    outputs: list[T]
    options: object | None
    version: int = 1
    expect_reject: bool = False  # a case built to be refused (LiteRT errors at Prepare)

    def key(self) -> str:
        return json.dumps({"op": self.op, "dtype": self.dtype, "params": self.params},
                          sort_keys=True, separators=(",", ":"))


Builder = Callable[[dict, str, np.random.Generator], Case]
BUILDERS: dict[str, Builder] = {}
#: operator -> the dtypes it is swept in
OP_DTYPES: dict[str, tuple[str, ...]] = {}


def builder(op: str, dtypes: tuple[str, ...] = DTYPES):
    def deco(fn: Builder) -> Builder:
        BUILDERS[op] = fn
        OP_DTYPES[op] = dtypes
        return fn
    return deco


def make_case(op: str, dtype: str, params: dict) -> Case:
    """Rebuild a case from its description (deterministic: the data come from ``params["seed"]``)."""
    rng = np.random.default_rng(params.get("seed", 0))
    return BUILDERS[op](params, dtype, rng)


def _out(dtype: str, q: Quantization | None = None) -> T:
    return T(None, _ttype(dtype), quant=q)


def _conv_out_size(n: int, k: int, stride: int, dilation: int, padding: str) -> int:
    eff = (k - 1) * dilation + 1
    return (n + stride - 1) // stride if padding == "SAME" else (n - eff + stride) // stride


def _filters(p: dict, dtype: str, rng, shape: tuple, channel_dim: int, fan_in: int, x: T):
    """Weights and bias of a convolution: float; uint8 per-tensor (any zero point, bias scale
    s_in*s_w); int8 per-channel along ``channel_dim`` (zero point 0, bias scale s_in*s_w[c])."""
    cout = shape[channel_dim]
    if dtype == "float32":
        w = T((rng.standard_normal(shape) / math.sqrt(fan_in)).astype(np.float32), const=True)
        b = T(rng.standard_normal(cout).astype(np.float32), const=True)
    elif dtype == "hybrid":  # int8 weights, one scale per channel (or one, where asked), float bias
        w = _hybrid_weights(rng, shape, channel_dim, p.get("per_channel", True))
        b = T(rng.standard_normal(cout).astype(np.float32), const=True)
    elif dtype == "uint8":
        wq = quant(float(10 ** rng.uniform(-3, -1)), int(rng.integers(0, 256)))
        w = T(rng.integers(0, 256, shape).astype(np.uint8), quant=wq, const=True)
        bs = float(np.float32(x.quant.scale) * np.float32(wq.scale))
        b = T(rng.integers(-(2**14), 2**14, cout).astype(np.int32), quant=quant(bs, 0), const=True)
    else:
        ws = (10 ** rng.uniform(-3, -1, cout)).astype(np.float32)
        w = T(rng.integers(-127, 128, shape).astype(np.int8), quant=quant(ws, 0, channel_dim),
              const=True)
        bs = (np.float32(x.quant.scale) * ws).astype(np.float32)
        b = T(rng.integers(-(2**14), 2**14, cout).astype(np.int32), quant=quant(bs, 0, 0), const=True)
    return w, (b if p.get("bias", True) else None)


def _hybrid_weights(rng, shape: tuple, channel_dim: int, per_channel: bool) -> T:
    """int8 weights in [-127, 127], symmetric, scales one per slice along ``channel_dim`` or one."""
    scales = (10 ** rng.uniform(-3, -1, shape[channel_dim] if per_channel else 1)).astype(np.float32)
    return T(rng.integers(-127, 128, shape).astype(np.int8), quant=quant(scales, 0, channel_dim), const=True)


def _finish(op: str, dtype: str, p: dict, rng, inputs: list[T | None], options, *,
            out_q: str = "calibrate", out_type: str | None = None, version: int = 1,
            expect_reject: bool = False, n_out: int = 1) -> Case:
    """Complete a case with its output tensor(s): ``out_q`` "calibrate" (from the float twin),
    "same" (the first input's parameters), or "none"."""
    opcode = BuiltinOperator[op]
    if dtype in ("float32", "hybrid") or out_q == "none":
        q = None
    elif out_q == "same":
        q = inputs[0].quant
    else:
        q = calibrated_output(opcode, inputs, options, dtype, rng, version)
    outs = [_out(out_type or dtype, q) for _ in range(n_out)]
    return Case(op, dtype, p, inputs, outs, options, version, expect_reject)


def _conv_inputs(x: T, w: T, b: T | None) -> list[T]:
    # LiteRT reads "no bias" from the input count (2), not from a -1 index: it refuses
    # [x, w, -1] ("Tensor at index 2 was optional but was expected").
    return [x, w] if b is None else [x, w, b]


@builder("CONV_2D", HYBRID_DTYPES)
def conv_2d(p: dict, dtype: str, rng) -> Case:
    n, h, w, cin, cout, kh, kw = (p[k] for k in ("n", "h", "w", "cin", "cout", "kh", "kw"))
    x = random_tensor(rng, dtype, (n, h, w, cin))
    # LiteRT 2.3's CONV_2D Prepare requires a bias (conv.cc: "has_bias was not true"),
    # so every CONV_2D case has one; DEPTHWISE_CONV_2D and TRANSPOSE_CONV cases may omit it.
    wt, b = _filters(dict(p, bias=True), dtype, rng, (cout, kh, kw, cin), 0, kh * kw * cin, x)
    opts = Conv2DOptions(padding=Padding[p["padding"]], stride_h=p["stride"][0], stride_w=p["stride"][1],
                         fused_activation_function=Activation[p["act"]],
                         dilation_h_factor=p["dilation"][0], dilation_w_factor=p["dilation"][1])
    return _finish("CONV_2D", dtype, p, rng, _conv_inputs(x, wt, b), opts)


@builder("DEPTHWISE_CONV_2D", HYBRID_DTYPES)
def depthwise_conv_2d(p: dict, dtype: str, rng) -> Case:
    n, h, w, cin, m, kh, kw = (p[k] for k in ("n", "h", "w", "cin", "multiplier", "kh", "kw"))
    x = random_tensor(rng, dtype, (n, h, w, cin))
    wt, b = _filters(p, dtype, rng, (1, kh, kw, cin * m), 3, kh * kw, x)
    opts = DepthwiseConv2DOptions(padding=Padding[p["padding"]], stride_h=p["stride"][0],
                                  stride_w=p["stride"][1], depth_multiplier=m,
                                  fused_activation_function=Activation[p["act"]],
                                  dilation_h_factor=p["dilation"][0], dilation_w_factor=p["dilation"][1])
    return _finish("DEPTHWISE_CONV_2D", dtype, p, rng, _conv_inputs(x, wt, b), opts)


@builder("TRANSPOSE_CONV", HYBRID_DTYPES)
def transpose_conv(p: dict, dtype: str, rng) -> Case:
    n, h, w, cin, cout, kh, kw = (p[k] for k in ("n", "h", "w", "cin", "cout", "kh", "kw"))
    sh, sw = p["stride"]
    if p["padding"] == "SAME":
        oh, ow = h * sh, w * sw
    else:
        oh, ow = (h - 1) * sh + kh, (w - 1) * sw + kw
    x = random_tensor(rng, dtype, (n, h, w, cin))
    wt, b = _filters(p, dtype, rng, (cout, kh, kw, cin), 0, kh * kw * cin, x)
    shape = T(np.array([n, oh, ow, cout], np.int32), const=True)
    opts = TransposeConvOptions(padding=Padding[p["padding"]], stride_h=sh, stride_w=sw,
                                fused_activation_function=Activation[p["act"]])
    inputs = [shape, wt, x] + ([b] if b is not None else [])
    return _finish("TRANSPOSE_CONV", dtype, p, rng, inputs, opts, version=3 if b is not None else 1)


def _pool(op: str):
    def build(p: dict, dtype: str, rng) -> Case:
        n, h, w, c = (p[k] for k in ("n", "h", "w", "c"))
        fh, fw = (h, w) if p.get("global") else p["filter"]
        x = random_tensor(rng, dtype, (n, h, w, c))
        opts = Pool2DOptions(padding=Padding[p["padding"]], stride_h=p["stride"][0], stride_w=p["stride"][1],
                             filter_height=fh, filter_width=fw,
                             fused_activation_function=Activation[p["act"]])
        # TFLite's quantized pooling keeps the input's parameters (a DCHECK in Prepare).
        return _finish(op, dtype, p, rng, [x], opts, out_q="same")
    return build


builder("AVERAGE_POOL_2D")(_pool("AVERAGE_POOL_2D"))
builder("MAX_POOL_2D")(_pool("MAX_POOL_2D"))


def _resize(op: str):
    def build(p: dict, dtype: str, rng) -> Case:
        n, h, w, c = (p[k] for k in ("n", "h", "w", "c"))
        x = random_tensor(rng, dtype, (n, h, w, c))
        size = T(np.array(p["size"], np.int32), const=True)
        cls = ResizeBilinearOptions if op == "RESIZE_BILINEAR" else ResizeNearestNeighborOptions
        opts = cls(align_corners=p["align_corners"], half_pixel_centers=p["half_pixel_centers"])
        reject = op == "RESIZE_BILINEAR" and p["align_corners"] and p["half_pixel_centers"]
        return _finish(op, dtype, p, rng, [x, size], opts, out_q="same", expect_reject=reject)
    return build


builder("RESIZE_BILINEAR")(_resize("RESIZE_BILINEAR"))
builder("RESIZE_NEAREST_NEIGHBOR")(_resize("RESIZE_NEAREST_NEIGHBOR"))


def _binary(op: str):
    def build(p: dict, dtype: str, rng) -> Case:
        # A 0-d input is made constant: tests/oracle.py run_litert feeds a 0-d array as 1-d
        # (np.ascontiguousarray gives at least one dimension), which LiteRT refuses.
        a = random_tensor(rng, dtype, p["a"], const=len(p["a"]) == 0)
        b = random_tensor(rng, dtype, p["b"], const=p.get("b_const", False) or len(p["b"]) == 0)
        act = Activation[p["act"]]
        opts = {"ADD": AddOptions, "SUB": SubOptions, "MUL": MulOptions}[op](fused_activation_function=act)
        return _finish(op, dtype, p, rng, [a, b], opts)
    return build


for _op in ("ADD", "SUB", "MUL"):
    builder(_op)(_binary(_op))


@builder("CONCATENATION")
def concatenation(p: dict, dtype: str, rng) -> Case:
    shape, axis, sizes = p["shape"], p["axis"], p["sizes"]
    q = None if dtype == "float32" else random_quant(rng, dtype)
    # int8 concatenation requires every input to have the output's parameters (TFLite
    # concatenation.cc); uint8 rescales inputs whose parameters differ.
    same_q = p["same_q"] or dtype == "int8"
    inputs = []
    for s in sizes:
        sh = list(shape)
        sh[axis] = s
        inputs.append(random_tensor(rng, dtype, sh, q if same_q else None))
    opts = ConcatenationOptions(axis=axis if p.get("negative_axis") is None else axis - len(shape))
    return _finish("CONCATENATION", dtype, p, rng, inputs, opts, out_q="same" if same_q else "calibrate")


@builder("PAD")
def pad(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    paddings = T(np.array(p["paddings"], np.int32), const=True)
    return _finish("PAD", dtype, p, rng, [x, paddings], EmptyOptions(), out_q="same")


@builder("MEAN")
def mean(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    axes = T(np.array(p["axes"], np.int32), const=True)
    opts = ReducerOptions(keep_dims=p["keep_dims"])
    return _finish("MEAN", dtype, p, rng, [x, axes], opts, out_q="same" if p["same_q"] else "calibrate")


@builder("SOFTMAX")
def softmax(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    opts = SoftmaxOptions(beta=p["beta"])
    if dtype == "float32":
        return Case("SOFTMAX", dtype, p, [x], [_out(dtype)], opts)
    # TFLite requires the probabilities in units of 1/256 (zero point 0 or -128).
    q = quant(1 / 256, 0 if dtype == "uint8" else -128)
    return Case("SOFTMAX", dtype, p, [x], [_out(dtype, q)], opts)


@builder("ARG_MAX")
def arg_max(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    axis = T(np.array([p["axis"]], np.int32), const=True)
    out_type = p["output_type"]
    opts = ArgMaxOptions(output_type=TensorType[out_type])
    return Case("ARG_MAX", dtype, p, [x, axis], [T(None, TensorType[out_type])], opts)


@builder("SPACE_TO_BATCH_ND")
def space_to_batch_nd(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    block = T(np.array(p["block"], np.int32), const=True)
    paddings = T(np.array(p["paddings"], np.int32), const=True)
    return _finish("SPACE_TO_BATCH_ND", dtype, p, rng, [x, block, paddings], EmptyOptions(), out_q="same")


@builder("BATCH_TO_SPACE_ND")
def batch_to_space_nd(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    block = T(np.array(p["block"], np.int32), const=True)
    crops = T(np.array(p["crops"], np.int32), const=True)
    return _finish("BATCH_TO_SPACE_ND", dtype, p, rng, [x, block, crops], EmptyOptions(), out_q="same")


@builder("STRIDED_SLICE")
def strided_slice(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    consts = [T(np.array(p[k], np.int32), const=True) for k in ("begin", "end", "strides")]
    opts = StridedSliceOptions(begin_mask=p["begin_mask"], end_mask=p["end_mask"],
                               shrink_axis_mask=p["shrink_axis_mask"])
    return _finish("STRIDED_SLICE", dtype, p, rng, [x] + consts, opts, out_q="same")


@builder("TILE")
def tile(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    multiples = T(np.array(p["multiples"], np.int32), const=True)
    return _finish("TILE", dtype, p, rng, [x, multiples], EmptyOptions(), out_q="same")


# ---------------------------------------------------------------------------------------
# The fixed grid
# ---------------------------------------------------------------------------------------

GRIDS: dict[str, Callable[[], Iterator[tuple[str, dict]]]] = {}


def grid(op: str):
    def deco(fn):
        GRIDS[op] = fn
        return fn
    return deco


def _spatial(k: int, d: int, stride: int, padding: str, odd: bool) -> int:
    """An input size that gives a few outputs: the dilated kernel's extent plus a little,
    odd or even as asked."""
    eff = (k - 1) * d + 1
    n = eff + stride + 1 if padding == "VALID" else max(eff // 2 + 3, 5)
    return n + (n % 2 == 0) if odd else n + (n % 2 == 1)


@grid("CONV_2D")
def _conv_grid():
    # Every kernel x stride x dilation x padding; activations, parity and bias cycle through
    # them so that each value of each axis appears many times without a full product.
    combos = itertools.product((1, 3, 5), (1, 2), (1, 2, 4, 6, 12, 18), ("SAME", "VALID"))
    for i, (k, s, d, pad) in enumerate(combos):
        odd = i % 2 == 0
        h = _spatial(k, d, s, pad, odd)
        w = _spatial(k, d, s, pad, not odd) if k > 1 else h + 1
        for dtype in HYBRID_DTYPES:
            extra = dict(per_channel=i % 3 != 1) if dtype == "hybrid" else {}
            yield dtype, dict(n=1, h=h, w=w, cin=3, cout=4, kh=k, kw=k, stride=[s, s], dilation=[d, d],
                              padding=pad, act=ACTIVATIONS[i % 4], seed=i, **extra)
    # Non-square kernels, strides and dilations, batch 2.
    for i, dtype in enumerate(HYBRID_DTYPES):
        yield dtype, dict(n=2, h=9, w=8, cin=5, cout=3, kh=3, kw=1, stride=[2, 1], dilation=[1, 2],
                          padding="SAME", act="RELU6", seed=100 + i)
        yield dtype, dict(n=1, h=10, w=11, cin=2, cout=6, kh=2, kw=5, stride=[1, 3], dilation=[3, 1],
                          padding="VALID", act="NONE", seed=200 + i)


@grid("DEPTHWISE_CONV_2D")
def _dw_grid():
    combos = itertools.product((1, 2), (1, 2), (1, 2, 4, 6, 12, 18), ("SAME", "VALID"))
    for i, (m, s, d, pad) in enumerate(combos):
        k = (3, 5, 1)[i % 3]
        odd = i % 2 == 0
        h = _spatial(k, d, s, pad, odd)
        w = _spatial(k, d, s, pad, not odd) if k > 1 else h + 1
        for dtype in HYBRID_DTYPES:
            yield dtype, dict(n=1, h=h, w=w, cin=3, multiplier=m, kh=k, kw=k, stride=[s, s],
                              dilation=[d, d], padding=pad, act=ACTIVATIONS[i % 4], bias=i % 5 != 2, seed=i)


@grid("TRANSPOSE_CONV")
def _tconv_grid():
    combos = itertools.product((1, 2, 3), (2, 3, 4), ("SAME", "VALID"))
    for i, (s, k, pad) in enumerate(combos):
        for dtype in HYBRID_DTYPES:
            yield dtype, dict(n=1, h=4 + i % 3, w=5, cin=3, cout=2, kh=k, kw=k, stride=[s, s], padding=pad,
                              act="NONE", bias=i % 2 == 0, seed=i)


def _pool_grid():
    cases = []
    for i, (f, s, pad) in enumerate(itertools.product((1, 2, 3, 5), (1, 2, 3), ("SAME", "VALID"))):
        h = 7 + i % 4
        cases.append(dict(n=1, h=h, w=h + 1, c=3, filter=[f, f], stride=[s, s], padding=pad,
                          act=ACTIVATIONS[i % 4], seed=i))
    cases.append(dict(n=1, h=4, w=6, c=2, filter=[2, 3], stride=[2, 1], padding="SAME", act="NONE", seed=50))
    for i, (h, w) in enumerate(((9, 9), (8, 5), (1, 1), (33, 33))):  # global pooling (the ASPP image branch)
        cases.append(dict(n=1 + i % 2, h=h, w=w, c=4, **{"global": True}, stride=[1, 1], padding="VALID",
                          act="NONE", seed=60 + i))
    for p in cases:
        for dtype in DTYPES:
            yield dtype, p


grid("AVERAGE_POOL_2D")(_pool_grid)
grid("MAX_POOL_2D")(_pool_grid)


def _resize_grid():
    sizes = [((4, 4), (8, 8)), ((5, 7), (9, 13)), ((3, 3), (7, 5)), ((9, 9), (65, 65)), ((8, 6), (3, 4)),
             ((7, 7), (5, 3)), ((1, 1), (9, 9)), ((6, 5), (6, 5)), ((2, 3), (5, 7))]
    for i, ((h, w), size) in enumerate(sizes):
        for ac, hp in itertools.product((False, True), (False, True)):
            for dtype in DTYPES:
                yield dtype, dict(n=1 + i % 2, h=h, w=w, c=2 + i % 3, size=list(size), align_corners=ac,
                                  half_pixel_centers=hp, seed=i)


grid("RESIZE_BILINEAR")(_resize_grid)
grid("RESIZE_NEAREST_NEIGHBOR")(_resize_grid)

_BROADCASTS = [
    ((1, 4, 5, 3), (1, 4, 5, 3)), ((1, 4, 5, 3), (3,)), ((1, 4, 5, 3), (1, 1, 1, 3)), ((1, 4, 5, 3), ()),
    ((2, 4, 1, 3), (1, 1, 5, 1)), ((4, 5), (4, 1)), ((1, 1, 1, 3), (1, 4, 5, 3)), ((3, 1, 4), (1, 6, 1)),
    ((2, 3, 4, 5), (2, 1, 4, 1)), ((7,), (7,)),
]


def _binary_grid():
    for i, (a, b) in enumerate(_BROADCASTS):
        for dtype in DTYPES:
            yield dtype, dict(a=list(a), b=list(b), act=ACTIVATIONS[i % 4], b_const=i % 3 == 1, seed=i)


for _op in ("ADD", "SUB", "MUL"):
    grid(_op)(_binary_grid)


@grid("CONCATENATION")
def _concat_grid():
    i = 0
    for shape in ((2, 3, 4, 5), (3, 4, 5), (4, 6)):
        for axis in range(len(shape)):
            for same_q in (True, False):
                for dtype in DTYPES:
                    sizes = [1 + (i + j) % 3 for j in range(2 + i % 3)]
                    yield dtype, dict(shape=list(shape), axis=axis, sizes=sizes, same_q=same_q,
                                      negative_axis=True if i % 4 == 3 else None, seed=i)
                    i += 1


@grid("PAD")
def _pad_grid():
    pads = [[[0, 0], [1, 1], [1, 1], [0, 0]], [[0, 0], [0, 2], [3, 0], [0, 0]], [[1, 0], [0, 0], [0, 0], [2, 1]],
            [[0, 0], [0, 0], [0, 0], [0, 0]], [[0, 0], [5, 4], [2, 6], [0, 0]]]
    for i, pd in enumerate(pads):
        for dtype in DTYPES:
            yield dtype, dict(shape=[1, 4, 5, 3], paddings=pd, seed=i)
    for i, (shape, pd) in enumerate((([3, 4], [[1, 2], [0, 3]]), ([2, 3, 4], [[0, 1], [2, 0], [1, 1]]))):
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, paddings=pd, seed=10 + i)


@grid("MEAN")
def _mean_grid():
    axes_list = [[1, 2], [1], [2], [3], [0], [1, 2, 3], [2, 1], [-1], [0, 1, 2, 3]]
    i = 0
    for axes in axes_list:
        for keep in (True, False):
            for dtype in DTYPES:
                yield dtype, dict(shape=[2, 5, 6, 3], axes=axes, keep_dims=keep, same_q=i % 3 == 0, seed=i)
                i += 1
    for dtype in DTYPES:  # the image-level pooling of ASPP: a whole 33x33 map
        yield dtype, dict(shape=[1, 33, 33, 8], axes=[1, 2], keep_dims=True, same_q=False, seed=99)
        yield dtype, dict(shape=[1, 33, 33, 8], axes=[1, 2], keep_dims=True, same_q=True, seed=98)


@grid("SOFTMAX")
def _softmax_grid():
    for i, (shape, beta) in enumerate(itertools.product(([3, 7], [1, 4, 5, 21], [2, 10], [1, 1, 1, 5]),
                                                        (1.0, 0.5, 2.0))):
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, beta=beta, seed=i)


@grid("ARG_MAX")
def _argmax_grid():
    i = 0
    for shape in ([1, 5, 6, 21], [2, 3, 4], [7, 3]):
        for axis in list(range(len(shape))) + [-1]:
            for out in ("INT32", "INT64"):
                for dtype in DTYPES:
                    yield dtype, dict(shape=shape, axis=axis, output_type=out, seed=i)
                    i += 1


@grid("SPACE_TO_BATCH_ND")
def _s2b_grid():
    cases = [([1, 4, 4, 3], [2, 2], [[0, 0], [0, 0]]), ([1, 5, 7, 2], [2, 2], [[1, 0], [0, 1]]),
             ([2, 9, 9, 1], [3, 3], [[3, 3], [3, 3]]), ([1, 6, 4, 2], [3, 2], [[0, 0], [1, 1]]),
             ([1, 9, 9, 2], [6, 6], [[6, 9], [6, 9]])]  # the atrous rate-6 encoding of a 3x3 SAME conv
    for i, (shape, block, pads) in enumerate(cases):
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, block=block, paddings=pads, seed=i)


@grid("BATCH_TO_SPACE_ND")
def _b2s_grid():
    cases = [([4, 2, 2, 3], [2, 2], [[0, 0], [0, 0]]), ([4, 3, 4, 2], [2, 2], [[1, 0], [0, 1]]),
             ([18, 5, 5, 1], [3, 3], [[0, 2], [1, 1]]), ([6, 2, 3, 2], [3, 2], [[0, 0], [1, 1]]),
             ([36, 2, 2, 2], [6, 6], [[0, 3], [0, 3]])]
    for i, (shape, block, crops) in enumerate(cases):
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, block=block, crops=crops, seed=i)


@grid("STRIDED_SLICE")
def _ss_grid():
    cases = [
        ([1, 6, 7, 3], [0, 1, 2, 0], [1, 5, 7, 3], [1, 1, 2, 1], 0, 0, 0),
        ([1, 6, 7, 3], [0, 0, 0, 1], [1, 6, 7, 2], [1, 2, 3, 1], 0, 0, 0),
        ([1, 6, 7, 3], [0, -1, -1, 0], [1, 0, 0, 3], [1, -1, -2, 1], 0, 0, 0),
        ([1, 6, 7, 3], [0, 2, 0, 0], [0, 4, 0, 0], [1, 1, 1, 1], 1 | 4 | 8, 1 | 4 | 8, 0),
        ([1, 6, 7, 3], [0, 2, 0, 1], [1, 3, 7, 2], [1, 1, 1, 1], 0, 0, 2 | 8),
        ([4, 5], [1, -4], [-1, 5], [2, 1], 0, 0, 0),
        # A shrink axis takes stride 1: with a negative stride there, LiteRT 2.3 selects no
        # element yet outputs the shrunk shape, leaving the output uninitialized (undefined).
        ([4, 5], [3, 4], [0, 0], [1, -2], 0, 0, 1),
        ([2, 3, 4], [0, 0, 0], [2, 3, 4], [1, 1, 1], 7, 7, 0),
    ]
    for i, (shape, b, e, s, bm, em, sm) in enumerate(cases):
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, begin=b, end=e, strides=s, begin_mask=bm, end_mask=em,
                              shrink_axis_mask=sm, seed=i)


@grid("TILE")
def _tile_grid():
    cases = [([1, 2, 3, 2], [1, 2, 2, 1]), ([2, 3], [3, 2]), ([3], [4]), ([1, 1, 1, 4], [1, 5, 3, 1]),
             ([2, 2, 2], [1, 1, 1])]
    for i, (shape, mult) in enumerate(cases):
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, multiples=mult, seed=i)


# ---------------------------------------------------------------------------------------
# Random cases (Hypothesis)
# ---------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------
# The builtin operators of issue 11 (models in the wild): builders, grids, strategies
# ---------------------------------------------------------------------------------------

#: Hypothesis examples per operator for these operators in the default (CI) run: their
#: grids already cover the parameter axes, so fewer random cases keep the suite's budget.
EXTRA_EXAMPLES = 25

#: (operator, dtype) held against the optimized kernels instead of BUILTIN_REF, and why.
ORACLE_RESOLVER = {
    # reduce.cc hands GetTensorData<uint8_t> to the reference QuantizedMeanOrSum for every
    # 8-bit type, so BUILTIN_REF reads int8 SUM inputs as uint8: a LiteRT bug we do not copy.
    ("SUM", "int8"): "builtin",
}


def _ints(rng, dtype: str, shape, lo: int | None = None) -> np.ndarray:
    qmin, qmax = QRANGE[dtype]
    return rng.integers(qmin if lo is None else lo, qmax + 1, tuple(shape)).astype(_ttype(dtype).dtype)


@builder("PRELU")
def prelu(p: dict, dtype: str, rng) -> Case:
    shape = p["shape"]
    alpha_shape = {"channel": [1, 1, shape[-1]], "full": shape[1:], "scalar": [1, 1, 1], "vector": [shape[-1]]}[
        p["alpha"]]
    x = random_tensor(rng, dtype, shape)
    if dtype == "float32":
        a = T((rng.standard_normal(alpha_shape) * 0.5).astype(np.float32), const=p["alpha_const"])
    else:
        a = random_tensor(rng, dtype, alpha_shape, quant(float(10 ** rng.uniform(-3, -1.5)),
                                                         int(rng.integers(*QRANGE[dtype]))), const=p["alpha_const"])
    return _finish("PRELU", dtype, p, rng, [x, a], None)


@builder("LEAKY_RELU")
def leaky_relu(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    return _finish("LEAKY_RELU", dtype, p, rng, [x], LeakyReluOptions(alpha=p["alpha"]))


@builder("FULLY_CONNECTED", HYBRID_DTYPES)
def fully_connected(p: dict, dtype: str, rng) -> Case:
    shape, units = p["shape"], p["units"]
    depth = shape[-1]
    x = random_tensor(rng, dtype, shape)
    if dtype == "float32":
        w = T((rng.standard_normal((units, depth)) / math.sqrt(depth)).astype(np.float32), const=True)
        b = T(rng.standard_normal(units).astype(np.float32), const=True)
    elif dtype == "hybrid":
        w = _hybrid_weights(rng, (units, depth), 0, p["per_channel"])
        b = T(rng.standard_normal(units).astype(np.float32), const=True)
    elif dtype == "int8" and p["per_channel"]:
        ws = (10 ** rng.uniform(-3, -1, units)).astype(np.float32)
        w = T(rng.integers(-127, 128, (units, depth)).astype(np.int8), quant=quant(ws, 0, 0), const=True)
        bs = (np.float32(x.quant.scale) * ws).astype(np.float32)
        b = T(rng.integers(-(2**14), 2**14, units).astype(np.int32), quant=quant(bs, 0, 0), const=True)
    else:
        wq = quant(float(10 ** rng.uniform(-3, -1)), int(rng.integers(0, 256)) if dtype == "uint8" else 0)
        w = T(_ints(rng, dtype, (units, depth)), quant=wq, const=True)
        bs = float(np.float32(x.quant.scale) * np.float32(wq.scale))
        b = T(rng.integers(-(2**14), 2**14, units).astype(np.int32), quant=quant(bs, 0), const=True)
    opts = FullyConnectedOptions(fused_activation_function=Activation[p["act"]], keep_num_dims=p["keep_num_dims"],
                                 asymmetric_quantize_inputs=p.get("asymmetric", False))
    return _finish("FULLY_CONNECTED", dtype, p, rng, [x, w] + ([b] if p["bias"] else []), opts)


def _depth_space(op: str):
    def build(p: dict, dtype: str, rng) -> Case:
        x = random_tensor(rng, dtype, p["shape"])
        cls = DepthToSpaceOptions if op == "DEPTH_TO_SPACE" else SpaceToDepthOptions
        return _finish(op, dtype, p, rng, [x], cls(block_size=p["block"]), out_q="same")
    return build


builder("DEPTH_TO_SPACE")(_depth_space("DEPTH_TO_SPACE"))
builder("SPACE_TO_DEPTH")(_depth_space("SPACE_TO_DEPTH"))


def _max_min(op: str):
    def build(p: dict, dtype: str, rng) -> Case:
        a = random_tensor(rng, dtype, p["a"], const=len(p["a"]) == 0)
        # TFLite compares raw values: a converter gives both inputs the output's parameters.
        b = random_tensor(rng, dtype, p["b"], a.quant, const=p.get("b_const", False) or len(p["b"]) == 0)
        return _finish(op, dtype, p, rng, [a, b], EmptyOptions(), out_q="same")
    return build


builder("MAXIMUM")(_max_min("MAXIMUM"))
builder("MINIMUM")(_max_min("MINIMUM"))


@builder("DIV")
def div(p: dict, dtype: str, rng) -> Case:
    a = random_tensor(rng, dtype, p["a"], const=len(p["a"]) == 0)
    const_b = p.get("b_const", False) or len(p["b"]) == 0
    if dtype == "float32":
        v = rng.standard_normal(p["b"]).astype(np.float32)
        b = T((np.sign(v) + (v == 0) + v).astype(np.float32), const=const_b)  # |b| >= 1: no blow-up
    else:
        b = random_tensor(rng, dtype, p["b"], const=const_b)
        zp = b.quant.zero_point
        qmin, qmax = QRANGE[dtype]
        b.value = np.where(b.value == zp, zp + 1 if zp < qmax else zp - 1, b.value).astype(b.value.dtype)
    return _finish("DIV", dtype, p, rng, [a, b], DivOptions(fused_activation_function=Activation[p["act"]]))


@builder("SQUARED_DIFFERENCE")
def squared_difference(p: dict, dtype: str, rng) -> Case:
    a = random_tensor(rng, dtype, p["a"], const=len(p["a"]) == 0)
    b = random_tensor(rng, dtype, p["b"], const=p.get("b_const", False) or len(p["b"]) == 0)
    return _finish("SQUARED_DIFFERENCE", dtype, p, rng, [a, b], EmptyOptions())


@builder("RSQRT", ("float32", "int8"))
def rsqrt(p: dict, dtype: str, rng) -> Case:
    if dtype == "float32":
        x = T((np.abs(rng.standard_normal(p["shape"])) + 0.05).astype(np.float32))
    else:
        zp = int(rng.integers(-128, 0))
        x = T(_ints(rng, dtype, p["shape"], lo=zp + 1), quant=quant(float(10 ** rng.uniform(-3, 0)), zp))
    return _finish("RSQRT", dtype, p, rng, [x], None)


@builder("EXP", ("float32", "int8"))
def exp(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    if dtype != "float32":  # keep exp() of the range modest: scale up to ~4/128
        x.quant = quant(float(10 ** rng.uniform(-3, -1.5)), x.quant.zero_point)
    return _finish("EXP", dtype, p, rng, [x], EmptyOptions())


@builder("TRANSPOSE")
def transpose(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    perm = T(np.array(p["perm"], np.int32), const=True)
    return _finish("TRANSPOSE", dtype, p, rng, [x, perm], EmptyOptions(), out_q="same")


def _reducer(op: str):
    def build(p: dict, dtype: str, rng) -> Case:
        x = random_tensor(rng, dtype, p["shape"])
        axes = T(np.array(p["axes"], np.int32), const=True)
        same = op in ("REDUCE_MAX", "REDUCE_MIN") or p.get("same_q", False)
        return _finish(op, dtype, p, rng, [x, axes], ReducerOptions(keep_dims=p["keep_dims"]),
                       out_q="same" if same else "calibrate")
    return build


builder("SUM")(_reducer("SUM"))
builder("REDUCE_MAX")(_reducer("REDUCE_MAX"))


@builder("LOG_SOFTMAX")
def log_softmax(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    if dtype == "float32":
        return Case("LOG_SOFTMAX", dtype, p, [x], [_out(dtype)], EmptyOptions())
    q = quant(16 / 256, 255 if dtype == "uint8" else 127)  # TFLite's fixed output parameters
    return Case("LOG_SOFTMAX", dtype, p, [x], [_out(dtype, q)], EmptyOptions())


@builder("CAST")
def cast(p: dict, dtype: str, rng) -> Case:
    shape, dst = p["shape"], TensorType[p["to"]]
    if dtype == "float32":
        # In range of every destination (C's float -> integer conversion of an
        # out-of-range value is undefined): [0, 100) with fractions.
        x = T((rng.random(shape) * 100).astype(np.float32) * np.float32(1 if p["to"] == "UINT8" else
                                                                       rng.choice([-1, 1])))
    else:
        x = T(_ints(rng, dtype, shape))
    return Case("CAST", dtype, p, [x], [T(None, dst)], CastOptions(in_data_type=_ttype(dtype), out_data_type=dst))


@builder("GATHER")
def gather(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    axis, bd = p["axis"], p["batch_dims"]
    ishape = list(p["shape"][:bd]) + list(p["indices"])
    idx = T(rng.integers(0, p["shape"][axis], ishape).astype(np.int32), const=p["indices_const"] or not ishape)
    return _finish("GATHER", dtype, p, rng, [x, idx], GatherOptions(axis=axis, batch_dims=bd), out_q="same")


@builder("PACK")
def pack(p: dict, dtype: str, rng) -> Case:
    q = None if dtype == "float32" else random_quant(rng, dtype)
    xs = [random_tensor(rng, dtype, p["shape"], q) for _ in range(p["n"])]
    return _finish("PACK", dtype, p, rng, xs, PackOptions(values_count=p["n"], axis=p["axis"]), out_q="same")


@builder("UNPACK")
def unpack(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    n = p["shape"][p["axis"]]
    return _finish("UNPACK", dtype, p, rng, [x], UnpackOptions(num=n, axis=p["axis"]), out_q="same", n_out=n)


@builder("SHAPE")
def shape_op(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    out = TensorType[p["out_type"]]
    return Case("SHAPE", dtype, p, [x], [T(None, out)], ShapeOptions(out_type=out))


# Converters' cuts and pads (onnx2tf's and ai-edge-torch's SPLIT of C2f blocks and channel halves,
# SLICE, EXPAND_DIMS, reflection padding): values move unchanged, whatever the outputs' parameters.


def _ints_const(values, dtype=np.int32) -> T:
    return T(np.array(values, dtype), const=True)


def _parts(dtype: str, rng, n: int, shape=None) -> list[T]:
    """n outputs of ``dtype``, each with parameters of its own (TFLite copies the values regardless)."""
    return [T(None, _ttype(dtype), shape, None if dtype == "float32" else random_quant(rng, dtype)) for _ in range(n)]


@builder("SPLIT")
def split_op(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    return Case("SPLIT", dtype, p, [_ints_const([p["axis"]]), x], _parts(dtype, rng, p["n"]), SplitOptions(p["n"]))


@builder("SPLIT_V")
def split_v(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    sizes = p["sizes"]
    return Case("SPLIT_V", dtype, p, [x, _ints_const(sizes, np.int64 if p["int64"] else np.int32),
                                      _ints_const([p["axis"]])], _parts(dtype, rng, len(sizes)),
                SplitVOptions(len(sizes)))


@builder("SLICE")
def slice_op(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    shape = tuple(n - b if k == -1 else k for n, b, k in zip(p["shape"], p["begin"], p["size"]))
    index = np.int64 if p["int64"] else np.int32
    # The output declared at its shape: LiteRT checks the declared rank.
    return Case("SLICE", dtype, p, [x, _ints_const(p["begin"], index), _ints_const(p["size"], index)],
                _parts(dtype, rng, 1, shape), None)


@builder("EXPAND_DIMS")
def expand_dims(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    return Case("EXPAND_DIMS", dtype, p, [x, _ints_const([p["axis"]])], [_out(dtype, x.quant)], None)


@builder("MIRROR_PAD")
def mirror_pad(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    return Case("MIRROR_PAD", dtype, p, [x, _ints_const(p["paddings"])], [_out(dtype, x.quant)],
                MirrorPadOptions(MirrorPadMode[p["mode"]]))


def _math_builder(op: str, dtypes: tuple[str, ...]):
    """A sweep builder of a one-input math operator (float32 inputs of both signs; quantized ones
    over the whole range, the output calibrated from the float twin)."""

    @builder(op, dtypes)
    def build(p: dict, dtype: str, rng) -> Case:
        x = random_tensor(rng, dtype, p["shape"])
        if op == "LOG" and dtype != "float32":  # (a calibration from log's -inf and NaN has no range)
            return Case(op, dtype, p, [x], [_out(dtype, quant(float(rng.uniform(0.01, 0.05)),
                                                              int(rng.integers(-128, 128))))], None)
        return _finish(op, dtype, p, rng, [x], None)

    return build


for _op, _dtypes in (("ABS", ("float32", "int8")), ("NEG", ("float32",)), ("SQRT", ("float32",)),
                     ("SQUARE", ("float32",)), ("LOG", ("float32", "int8")), ("SIN", ("float32",)),
                     ("COS", ("float32",)), ("FLOOR", ("float32",)), ("SIGN", ("float32",))):
    _math_builder(_op, _dtypes)


builder("REDUCE_MIN")(_reducer("REDUCE_MIN"))


@builder("POW", ("float32",))
def pow_op(p: dict, dtype: str, rng) -> Case:
    a = random_tensor(rng, dtype, p["a"], const=len(p["a"]) == 0)
    b = T(rng.uniform(-3, 3, p["b"]).astype(np.float32), const=p.get("b_const", False) or len(p["b"]) == 0)
    return Case("POW", dtype, p, [a, b], [_out(dtype)], None)


def _comparison(op: str):
    def build(p: dict, dtype: str, rng) -> Case:
        a = random_tensor(rng, dtype, p["a"], const=len(p["a"]) == 0)
        b = random_tensor(rng, dtype, p["b"], const=p.get("b_const", False) or len(p["b"]) == 0)
        if dtype != "float32":  # scales below 1, as TFLite's scaling needs
            a.quant, b.quant = (quant(float(rng.uniform(0.005, 0.5)), q.zero_point) for q in (a.quant, b.quant))
        return Case(op, dtype, p, [a, b], [T(None, TensorType.BOOL)], None)
    return build


for _op in ("EQUAL", "NOT_EQUAL", "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL"):
    builder(_op)(_comparison(_op))


@builder("SELECT_V2")
def select_v2(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["a"])
    y = random_tensor(rng, dtype, p["b"], x.quant)
    condition = T(rng.random(p["condition"]) < 0.5)
    return Case("SELECT_V2", dtype, p, [condition, x, y], [_out(dtype, x.quant)], None)


@builder("BROADCAST_TO")
def broadcast_to(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    return Case("BROADCAST_TO", dtype, p, [x, T(np.array(p["to"], np.int32), const=True)], [_out(dtype, x.quant)],
                None, version=2)  # (LiteRT registers versions 2 and 3)


@builder("GATHER_ND")
def gather_nd(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    limits = np.array(p["shape"][:p["nd"]])
    idx = (rng.random(tuple(p["indices"]) + (p["nd"],)) * limits).astype(np.int32)
    return Case("GATHER_ND", dtype, p, [x, T(idx, const=p["indices_const"])], [_out(dtype, x.quant)], None)


@builder("ARG_MIN")
def arg_min(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    out_type = TensorType[p["output_type"]]
    return Case("ARG_MIN", dtype, p, [x, T(np.array([p["axis"]], np.int32), const=True)], [T(None, out_type)],
                ArgMinOptions(output_type=out_type))


@builder("GELU")
def gelu(p: dict, dtype: str, rng) -> Case:
    x = random_tensor(rng, dtype, p["shape"])
    return _finish("GELU", dtype, p, rng, [x], GeluOptions(approximate=p["approximate"]))


@builder("BATCH_MATMUL", ("float32", "int8"))
def batch_matmul(p: dict, dtype: str, rng) -> Case:
    lhs, rhs = (random_tensor(rng, dtype, p[k]) for k in ("lhs", "rhs"))
    if p["rhs_const"]:
        rhs = T(rhs.value, quant=rhs.quant, const=True)
    return _finish("BATCH_MATMUL", dtype, p, rng, [lhs, rhs], BatchMatMulOptions(p["adj_x"], p["adj_y"]))


def _shapes4():
    return [[1, 4, 6, 3], [2, 3, 5, 2], [1, 7, 7, 8], [1, 1, 1, 5], [3, 6], [2, 3, 4]]


@grid("PRELU")
def _prelu_grid():
    for i, (shape, alpha) in enumerate(itertools.product(([1, 4, 6, 3], [2, 5, 3, 4]),
                                                         ("channel", "full", "scalar", "vector"))):
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, alpha=alpha, alpha_const=i % 3 != 2, seed=i)


@grid("LEAKY_RELU")
def _leaky_grid():
    for i, (shape, alpha) in enumerate(itertools.product(_shapes4()[:3], (0.2, 0.01, 0.1, 0.3))):
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, alpha=alpha, seed=i)


@grid("FULLY_CONNECTED")
def _fc_grid():
    shapes = ([1, 16], [4, 8], [2, 3, 12], [1, 5, 5, 7], [3, 1])
    for i, shape in enumerate(shapes):
        for j, (bias, keep) in enumerate(itertools.product((True, False), (False, True))):
            for dtype in HYBRID_DTYPES:
                extra = dict(asymmetric=(i + j) % 2 == 0) if dtype == "hybrid" else {}
                yield dtype, dict(shape=shape, units=(5, 1, 12, 3)[j], bias=bias, keep_num_dims=keep,
                                  act=ACTIVATIONS[(i + j) % 4], per_channel=j % 2 == 0, seed=10 * i + j, **extra)


@grid("DEPTH_TO_SPACE")
def _d2s_grid():
    for i, (b, (h, w), c) in enumerate(itertools.product((1, 2, 3), ((2, 3), (4, 4)), (1, 3))):
        for dtype in DTYPES:
            yield dtype, dict(shape=[1 + i % 2, h, w, c * b * b], block=b, seed=i)


@grid("SPACE_TO_DEPTH")
def _s2d_grid():
    for i, (b, (h, w), c) in enumerate(itertools.product((1, 2, 3), ((2, 3), (4, 4)), (1, 3))):
        for dtype in DTYPES:
            yield dtype, dict(shape=[1 + i % 2, h * b, w * b, c], block=b, seed=i)


def _binary2_grid():
    for i, (a, b) in enumerate(_BROADCASTS):
        for dtype in DTYPES:
            yield dtype, dict(a=list(a), b=list(b), act=ACTIVATIONS[i % 4], b_const=i % 3 == 1, seed=i)


for _op in ("MAXIMUM", "MINIMUM", "DIV", "SQUARED_DIFFERENCE"):
    grid(_op)(_binary2_grid)
OP_DTYPES["SQUARED_DIFFERENCE"] = ("float32", "int8")  # TFLite has no uint8 SQUARED_DIFFERENCE


@grid("RSQRT")
def _rsqrt_grid():
    for i, shape in enumerate(_shapes4()):
        for dtype in ("float32", "int8"):
            yield dtype, dict(shape=shape, seed=i)


@grid("EXP")
def _exp_grid():
    for i, shape in enumerate(_shapes4()):
        for dtype in ("float32", "int8"):
            yield dtype, dict(shape=shape, seed=i)


@grid("TRANSPOSE")
def _transpose_grid():
    perms = ([0, 3, 1, 2], [0, 2, 3, 1], [1, 0], [2, 1, 0], [0, 1, 2, 3], [3, 2, 1, 0], [4, 0, 2, 1, 3],
             [1, 0, 2, 3, 5, 4])
    for i, perm in enumerate(perms):
        shape = [2, 3, 4, 5, 2, 3][:len(perm)]
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, perm=perm, seed=i)


def _reducer_grid():
    cases = [([1, 5, 6, 3], [1, 2]), ([2, 4, 3], [-1]), ([2, 3, 4, 5], [0, 2]), ([3, 4], [0, 1]), ([6], [0]),
             ([2, 3, 4], [1])]
    for i, (shape, axes) in enumerate(cases):
        for keep in (False, True):
            for dtype in DTYPES:
                yield dtype, dict(shape=shape, axes=axes, keep_dims=keep, same_q=i % 3 == 0, seed=i)


grid("SUM")(_reducer_grid)
grid("REDUCE_MAX")(_reducer_grid)


@grid("LOG_SOFTMAX")
def _log_softmax_grid():
    for i, shape in enumerate(([1, 10], [4, 3], [2, 3, 21], [1, 1], [2, 64], [1, 2, 2, 5])):
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, seed=i)


@grid("CAST")
def _cast_grid():
    for i, to in enumerate(("FLOAT32", "INT32", "UINT8", "INT8", "INT64", "BOOL", "INT16")):
        for dtype in DTYPES:
            yield dtype, dict(shape=[3, 5], to=to, seed=i)


@grid("GATHER")
def _gather_grid():
    cases = [([5, 4], 0, [3], 0), ([2, 6, 3], 1, [2, 2], 0), ([3, 4, 5], 2, [4], 0), ([2, 5, 3], 1, [4], 1),
             ([7], 0, [2, 3], 0), ([2, 3, 4, 2], 3, [1], 0)]
    for i, (shape, axis, idx, bd) in enumerate(cases):
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, axis=axis, indices=idx, batch_dims=bd, indices_const=i % 2 == 0, seed=i)


@grid("PACK")
def _pack_grid():
    for i, (shape, n, axis) in enumerate((([3, 4], 2, 0), ([3, 4], 3, 1), ([3, 4], 2, 2), ([2, 3, 4], 4, -1),
                                          ([5], 1, 0), ([1, 2, 2, 3], 2, 3))):
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, n=n, axis=axis, seed=i)


@grid("UNPACK")
def _unpack_grid():
    for i, (shape, axis) in enumerate((([3, 4], 0), ([3, 4], 1), ([2, 3, 4], -1), ([2, 3, 4], 1),
                                       ([1, 5, 2], 0), ([2, 2, 2, 3], 3))):
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, axis=axis, seed=i)


@grid("SHAPE")
def _shape_grid():
    for i, shape in enumerate(([1, 5, 6, 3], [7], [2, 3], [1, 1, 1, 1, 2])):
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, out_type=("INT32", "INT64")[i % 2], seed=i)


def _math_grid(op: str):
    @grid(op)
    def cases():
        for i, shape in enumerate(_shapes4()):
            for dtype in DTYPES:
                yield dtype, dict(shape=shape, seed=i)

    return cases


for _op in ("ABS", "NEG", "SQRT", "SQUARE", "LOG", "SIN", "COS", "FLOOR", "SIGN"):
    _math_grid(_op)


grid("REDUCE_MIN")(_reducer_grid)
grid("POW")(_binary2_grid)
for _op in ("EQUAL", "NOT_EQUAL", "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL"):
    grid(_op)(_binary2_grid)


@grid("SELECT_V2")
def _select_v2_grid():
    cases = (([2, 3, 4], [2, 3, 4], [2, 3, 4]), ([3, 1], [2, 1, 4], [4]), ([], [2, 3], [1, 3]),
             ([2, 1, 1, 1, 3], [1, 2, 1, 4, 1], [1, 3]))
    for i, (condition, a, b) in enumerate(cases):
        for dtype in DTYPES:
            yield dtype, dict(condition=condition, a=a, b=b, seed=i)


@grid("BROADCAST_TO")
def _broadcast_to_grid():
    for i, (shape, to) in enumerate((([3, 1, 4], [3, 5, 4]), ([4], [2, 3, 4]), ([1], [6]), ([2, 1], [1, 1, 2, 3]))):
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, to=to, seed=i)


@grid("GATHER_ND")
def _gather_nd_grid():
    for i, (shape, nd, indices) in enumerate((([5, 4], 1, [3]), ([2, 6, 3], 2, [2, 2]), ([3, 4, 5], 3, [4]),
                                              ([2, 3, 4, 2], 2, [1]), ([7], 1, [2, 3]))):
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, nd=nd, indices=indices, indices_const=i % 2 == 0, seed=i)


@grid("ARG_MIN")
def _argmin_grid():
    for dtype, params in _argmax_grid():
        yield dtype, params


@grid("GELU")
def _gelu_grid():
    for i, (shape, approximate) in enumerate(itertools.product(_shapes4(), (False, True))):
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, approximate=approximate, seed=i)


@grid("BATCH_MATMUL")
def _batch_matmul_grid():
    cases = (([4, 6], [6, 5], False, False), ([2, 4, 6], [2, 6, 5], False, False),
             ([1, 2, 16, 8], [1, 2, 12, 8], False, True), ([1, 2, 8, 16], [1, 2, 8, 12], True, False),
             ([3, 1, 4, 6], [1, 2, 5, 4], True, True), ([2, 4, 6], [6, 5], False, False),
             ([1, 2, 1, 5, 7], [2, 1, 3, 7, 4], False, False), ([1, 64], [64, 3], False, False))
    for i, (lhs, rhs, adj_x, adj_y) in enumerate(cases):
        for dtype in ("float32", "int8"):
            yield dtype, dict(lhs=lhs, rhs=rhs, adj_x=adj_x, adj_y=adj_y, rhs_const=i % 2 == 1, seed=i)


@grid("SPLIT")
def _split_grid():
    for i, (shape, axis, n) in enumerate((([1, 4, 6, 8], 3, 2), ([1, 6, 5, 4], 1, 3), ([2, 3, 4], -1, 4),
                                          ([6], 0, 6), ([2, 5, 3], 0, 1), ([1, 4, 4, 6], -3, 2))):
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, axis=axis, n=n, seed=i)


@grid("SPLIT_V")
def _split_v_grid():
    for i, (shape, axis, sizes) in enumerate((([1, 4, 6, 8], 3, [2, 6]), ([1, 6, 5, 4], 1, [1, -1, 2]),
                                              ([2, 3, 4], -1, [0, 4]), ([7], 0, [3, 4]), ([2, 5, 3], 2, [-1]),
                                              ([1, 4, 4, 6], -3, [1, 1, 1, 1]))):
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, axis=axis, sizes=sizes, int64=i % 2 == 1, seed=i)


@grid("SLICE")
def _slice_grid():
    cases = (([1, 6, 7, 3], [0, 1, 2, 0], [1, 4, -1, 2]), ([4, 5], [1, 0], [-1, 5]), ([2, 3, 4], [1, 2, 3], [1, 1, 1]),
             ([1, 5, 5, 8], [0, 0, 0, 4], [-1, -1, -1, 4]), ([6], [2], [0]),
             ([2, 2, 3, 2, 3], [1, 0, 1, 1, 0], [1, 2, 2, 1, -1]))
    for i, (shape, begin, size) in enumerate(cases):
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, begin=begin, size=size, int64=i % 2 == 1, seed=i)


@grid("EXPAND_DIMS")
def _expand_dims_grid():
    cases = (([4, 6, 3], 0), ([4, 6, 3], 3), ([4, 6, 3], -1), ([5], -2), ([2, 3], 1), ([], 0))
    for i, (shape, axis) in enumerate(cases):
        for dtype in DTYPES:
            yield dtype, dict(shape=shape, axis=axis, seed=i)


@grid("MIRROR_PAD")
def _mirror_pad_grid():
    cases = (([1, 5, 6, 3], [[0, 0], [1, 1], [2, 2], [0, 0]]), ([1, 5, 6, 3], [[0, 0], [4, 0], [0, 5], [1, 2]]),
             ([3, 4], [[2, 1], [3, 3]]), ([1, 2, 2, 1], [[0, 0], [1, 1], [1, 1], [0, 0]]), ([7], [[6, 6]]))
    for i, (shape, paddings) in enumerate(cases):
        for mode in ("REFLECT", "SYMMETRIC"):
            for dtype in DTYPES:
                yield dtype, dict(shape=shape, paddings=paddings, mode=mode, seed=i)


def extra_strategies(st, seed, dtype_of, binary) -> dict:
    """Hypothesis strategies of the issue-11 operators (see :func:`strategies`)."""

    def shape(draw, lo=1, hi=4, max_dim=6):
        return [draw(st.integers(1, max_dim)) for _ in range(draw(st.integers(lo, hi)))]

    @st.composite
    def prelu_(draw):
        return draw(dtype_of("PRELU")), dict(shape=[draw(st.integers(1, 2))] + shape(draw, 3, 3),
                                             alpha=draw(st.sampled_from(("channel", "full", "scalar", "vector"))),
                                             alpha_const=draw(st.booleans()), seed=draw(seed))

    @st.composite
    def leaky(draw):
        return draw(dtype_of("LEAKY_RELU")), dict(shape=shape(draw), alpha=draw(st.sampled_from((0.01, 0.1, 0.2, 0.3))),
                                                  seed=draw(seed))

    @st.composite
    def fc(draw):
        return draw(dtype_of("FULLY_CONNECTED")), dict(
            shape=shape(draw, 1, 3, 8) + [draw(st.integers(1, 40))], units=draw(st.integers(1, 16)),
            bias=draw(st.booleans()), keep_num_dims=draw(st.booleans()), act=draw(st.sampled_from(ACTIVATIONS)),
            per_channel=draw(st.booleans()), asymmetric=draw(st.booleans()), seed=draw(seed))

    @st.composite
    def d2s(draw, op):
        b = draw(st.integers(1, 3))
        n, h, w, c = draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
        shp = [n, h, w, c * b * b] if op == "DEPTH_TO_SPACE" else [n, h * b, w * b, c]
        return draw(dtype_of(op)), dict(shape=shp, block=b, seed=draw(seed))

    @st.composite
    def unary(draw, op):
        return draw(dtype_of(op)), dict(shape=shape(draw), seed=draw(seed))

    @st.composite
    def transpose_(draw):
        shp = shape(draw, 1, 6, 4)
        perm = draw(st.permutations(list(range(len(shp)))))
        return draw(dtype_of("TRANSPOSE")), dict(shape=shp, perm=list(perm), seed=draw(seed))

    @st.composite
    def reducer(draw, op):
        shp = shape(draw)
        rank = len(shp)
        axes = draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank, unique_by=lambda a: a % rank))
        return draw(dtype_of(op)), dict(shape=shp, axes=axes, keep_dims=draw(st.booleans()),
                                        same_q=draw(st.booleans()), seed=draw(seed))

    @st.composite
    def log_softmax_(draw):
        return draw(dtype_of("LOG_SOFTMAX")), dict(shape=shape(draw, 1, 3, 5)[:-1] + [draw(st.integers(1, 40))],
                                                   seed=draw(seed))

    @st.composite
    def cast_(draw):
        return draw(dtype_of("CAST")), dict(shape=shape(draw), seed=draw(seed), to=draw(st.sampled_from(
            ("FLOAT32", "INT32", "UINT8", "INT8", "INT64", "BOOL", "INT16"))))

    @st.composite
    def gather_(draw):
        shp = shape(draw)
        axis = draw(st.integers(0, len(shp) - 1))
        bd = draw(st.integers(0, min(axis, 1)))
        return draw(dtype_of("GATHER")), dict(shape=shp, axis=axis, indices=shape(draw, 0, 2, 4), batch_dims=bd,
                                              indices_const=draw(st.booleans()), seed=draw(seed))

    @st.composite
    def pack_(draw):
        shp = shape(draw, 1, 3)
        return draw(dtype_of("PACK")), dict(shape=shp, n=draw(st.integers(1, 4)),
                                            axis=draw(st.integers(-len(shp) - 1, len(shp))), seed=draw(seed))

    @st.composite
    def unpack_(draw):
        shp = shape(draw, 1, 4, 4)
        return draw(dtype_of("UNPACK")), dict(shape=shp, axis=draw(st.integers(-len(shp), len(shp) - 1)),
                                              seed=draw(seed))

    @st.composite
    def shape_(draw):
        out_type = draw(st.sampled_from(("INT32", "INT64")))
        return draw(dtype_of("SHAPE")), dict(shape=shape(draw, 1, 5), out_type=out_type, seed=draw(seed))

    @st.composite
    def split_(draw):
        shp = shape(draw, 1, 4)
        axis = draw(st.integers(0, len(shp) - 1))
        n = draw(st.sampled_from([k for k in range(1, shp[axis] + 1) if shp[axis] % k == 0]))
        return draw(dtype_of("SPLIT")), dict(shape=shp, axis=axis - draw(st.sampled_from((0, len(shp)))), n=n,
                                             seed=draw(seed))

    @st.composite
    def split_v_(draw):
        shp = shape(draw, 1, 4)
        axis = draw(st.integers(0, len(shp) - 1))
        cuts = sorted(draw(st.lists(st.integers(0, shp[axis]), max_size=3)))
        sizes = [b - a for a, b in zip([0, *cuts], [*cuts, shp[axis]])]
        if draw(st.booleans()):
            sizes[draw(st.integers(0, len(sizes) - 1))] = -1
        return draw(dtype_of("SPLIT_V")), dict(shape=shp, axis=axis, sizes=sizes, int64=draw(st.booleans()),
                                               seed=draw(seed))

    @st.composite
    def slice_(draw):
        shp = shape(draw, 1, 5)
        begin = [draw(st.integers(0, n)) for n in shp]
        size = [draw(st.sampled_from((-1, draw(st.integers(0, n - b))))) for n, b in zip(shp, begin)]
        return draw(dtype_of("SLICE")), dict(shape=shp, begin=begin, size=size, int64=draw(st.booleans()),
                                             seed=draw(seed))

    @st.composite
    def expand_dims_(draw):
        shp = shape(draw, 0, 4)
        return draw(dtype_of("EXPAND_DIMS")), dict(shape=shp, axis=draw(st.integers(-len(shp) - 1, len(shp))),
                                                   seed=draw(seed))

    @st.composite
    def mirror_pad_(draw):
        mode = draw(st.sampled_from(("REFLECT", "SYMMETRIC")))
        shp = shape(draw, 1, 4)
        most = [n - (mode == "REFLECT") for n in shp]
        paddings = [[draw(st.integers(0, m)), draw(st.integers(0, m))] for m in most]
        return draw(dtype_of("MIRROR_PAD")), dict(shape=shp, paddings=paddings, mode=mode, seed=draw(seed))

    @st.composite
    def gelu_(draw):
        return draw(dtype_of("GELU")), dict(shape=shape(draw), approximate=draw(st.booleans()), seed=draw(seed))

    @st.composite
    def batch_matmul_(draw):
        batch_l, batch_r = shape(draw, 0, 3, 3), shape(draw, 0, 3, 3)
        n = min(len(batch_l), len(batch_r))  # broadcastable: where both have a dimension, equal or one is 1
        for k in range(1, n + 1):
            if batch_l[-k] != batch_r[-k] and 1 not in (batch_l[-k], batch_r[-k]):
                batch_r[-k] = draw(st.sampled_from((1, batch_l[-k])))
        rows, depth, cols = (draw(st.integers(1, 12)) for _ in range(3))
        adj_x, adj_y = draw(st.booleans()), draw(st.booleans())
        return draw(dtype_of("BATCH_MATMUL")), dict(
            lhs=batch_l + ([depth, rows] if adj_x else [rows, depth]),
            rhs=batch_r + ([cols, depth] if adj_y else [depth, cols]),
            adj_x=adj_x, adj_y=adj_y, rhs_const=draw(st.booleans()), seed=draw(seed))

    @st.composite
    def arg_min_(draw):
        rank = draw(st.integers(2, 4))  # (rank >= 2: see argmax in strategies())
        return draw(dtype_of("ARG_MIN")), dict(shape=[draw(st.integers(1, 6)) for _ in range(rank)],
                                               axis=draw(st.integers(-rank, rank - 1)),
                                               output_type=draw(st.sampled_from(("INT32", "INT64"))), seed=draw(seed))

    def suffix(draw, full):
        """A shape that broadcasts to ``full``: a suffix of it with some dimensions set to 1."""
        dims = full[len(full) - draw(st.integers(0, len(full))):]
        return [1 if draw(st.booleans()) and draw(st.booleans()) else d for d in dims]

    @st.composite
    def select_v2_(draw):
        full = [draw(st.integers(1, 4)) for _ in range(draw(st.integers(0, 4)))]
        return draw(dtype_of("SELECT_V2")), dict(condition=suffix(draw, full), a=suffix(draw, full),
                                                 b=suffix(draw, full), seed=draw(seed))

    @st.composite
    def broadcast_to_(draw):
        full = [draw(st.integers(1, 4)) for _ in range(draw(st.integers(1, 5)))]
        return draw(dtype_of("BROADCAST_TO")), dict(shape=suffix(draw, full), to=full, seed=draw(seed))

    @st.composite
    def gather_nd_(draw):
        shp = shape(draw, 1, 4)
        return draw(dtype_of("GATHER_ND")), dict(shape=shp, nd=draw(st.integers(1, len(shp))),
                                                 indices=shape(draw, 0, 2, 4), indices_const=draw(st.booleans()),
                                                 seed=draw(seed))

    return {
        "GATHER_ND": gather_nd_(), "SELECT_V2": select_v2_(), "BROADCAST_TO": broadcast_to_(),
        "REDUCE_MIN": reducer("REDUCE_MIN"), "ARG_MIN": arg_min_(), "POW": binary("POW"),
        **{op: binary(op) for op in ("EQUAL", "NOT_EQUAL", "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL")},
        **{op: unary(op) for op in ("ABS", "NEG", "SQRT", "SQUARE", "LOG", "SIN", "COS", "FLOOR", "SIGN")},
        "BATCH_MATMUL": batch_matmul_(), "GELU": gelu_(), "SPLIT": split_(), "SPLIT_V": split_v_(), "SLICE": slice_(),
        "EXPAND_DIMS": expand_dims_(), "MIRROR_PAD": mirror_pad_(),
        "PRELU": prelu_(), "LEAKY_RELU": leaky(), "FULLY_CONNECTED": fc(),
        "DEPTH_TO_SPACE": d2s("DEPTH_TO_SPACE"), "SPACE_TO_DEPTH": d2s("SPACE_TO_DEPTH"),
        "MAXIMUM": binary("MAXIMUM"), "MINIMUM": binary("MINIMUM"), "DIV": binary("DIV"),
        "SQUARED_DIFFERENCE": binary("SQUARED_DIFFERENCE"), "RSQRT": unary("RSQRT"), "EXP": unary("EXP"),
        "TRANSPOSE": transpose_(), "SUM": reducer("SUM"), "REDUCE_MAX": reducer("REDUCE_MAX"),
        "LOG_SOFTMAX": log_softmax_(), "CAST": cast_(), "GATHER": gather_(), "PACK": pack_(), "UNPACK": unpack_(),
        "SHAPE": shape_(),
    }


def examples_for(op: str) -> int:
    """Hypothesis examples of ``op`` in the default (CI) run."""
    return EXTRA_EXAMPLES if op in EXTRA_OPS else CI_EXAMPLES


def strategies() -> dict:
    """operator -> a Hypothesis strategy of (dtype, params); imported lazily (Hypothesis is a
    test dependency)."""
    from hypothesis import strategies as st

    seed = st.integers(0, 2**31 - 1)

    def dtype_of(op):
        return st.sampled_from(OP_DTYPES[op])

    @st.composite
    def conv(draw, op):
        d = {}
        k = draw(st.sampled_from((1, 2, 3, 5)))
        kw = draw(st.sampled_from((k, k, 1, 3)))
        sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        dh = draw(st.sampled_from((1, 1, 2, 3, 4, 6)))
        dw = draw(st.sampled_from((dh, dh, 1, 2)))
        pad = draw(st.sampled_from(("SAME", "VALID")))
        h = draw(st.integers(1, 14)) + ((k - 1) * dh if pad == "VALID" else 0)
        w = draw(st.integers(1, 14)) + ((kw - 1) * dw if pad == "VALID" else 0)
        d.update(n=draw(st.integers(1, 2)), h=h, w=w, cin=draw(st.integers(1, 8)), kh=k, kw=kw,
                 stride=[sh, sw], dilation=[dh, dw], padding=pad, act=draw(st.sampled_from(ACTIVATIONS)),
                 seed=draw(seed))
        if op == "CONV_2D":
            d["cout"] = draw(st.integers(1, 8))
            d["per_channel"] = draw(st.booleans())  # (read by hybrid cases only)
        else:
            d["multiplier"] = draw(st.sampled_from((1, 1, 2, 3)))
            d["bias"] = draw(st.booleans())
        return draw(dtype_of(op)), d

    @st.composite
    def tconv(draw):
        pad = draw(st.sampled_from(("SAME", "VALID")))
        return draw(dtype_of("TRANSPOSE_CONV")), dict(
            n=draw(st.integers(1, 2)), h=draw(st.integers(1, 7)), w=draw(st.integers(1, 7)),
            cin=draw(st.integers(1, 6)), cout=draw(st.integers(1, 6)), kh=draw(st.integers(1, 5)),
            kw=draw(st.integers(1, 5)), stride=[draw(st.integers(1, 3)), draw(st.integers(1, 3))], padding=pad,
            act="NONE", bias=draw(st.booleans()), seed=draw(seed))

    @st.composite
    def pool(draw, op):
        h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
        glob = draw(st.booleans()) and draw(st.booleans())
        pad = "VALID" if glob else draw(st.sampled_from(("SAME", "VALID")))
        fh = draw(st.integers(1, h if pad == "VALID" else 6))
        fw = draw(st.integers(1, w if pad == "VALID" else 6))
        return draw(dtype_of(op)), {"n": draw(st.integers(1, 2)), "h": h, "w": w, "c": draw(st.integers(1, 6)),
                                    "global": glob, "filter": [fh, fw],
                                    "stride": [draw(st.integers(1, 3)), draw(st.integers(1, 3))],
                                    "padding": pad, "act": draw(st.sampled_from(ACTIVATIONS)),
                                    "seed": draw(seed)}

    @st.composite
    def resize(draw, op):
        ac, hp = draw(st.booleans()), draw(st.booleans())
        if op == "RESIZE_BILINEAR" and ac and hp:
            hp = False  # the refused combination is in the grid; random cases stay valid
        return draw(dtype_of(op)), dict(
            n=draw(st.integers(1, 2)), h=draw(st.integers(1, 10)), w=draw(st.integers(1, 10)),
            c=draw(st.integers(1, 4)), size=[draw(st.integers(1, 24)), draw(st.integers(1, 24))],
            align_corners=ac, half_pixel_centers=hp, seed=draw(seed))

    @st.composite
    def binary(draw, op):
        rank = draw(st.integers(0, 4))
        full = [draw(st.integers(1, 5)) for _ in range(rank)]
        # Each side: a suffix of the full shape (rank broadcasting) with some dimensions set to 1.
        def side():
            r = draw(st.integers(0, rank))
            dims = full[rank - r:]
            return [1 if draw(st.booleans()) and draw(st.booleans()) else d for d in dims]
        a, b = side(), side()
        if draw(st.booleans()):
            a = full
        return draw(dtype_of(op)), dict(a=a, b=b, act=draw(st.sampled_from(ACTIVATIONS)),
                                        b_const=draw(st.booleans()), seed=draw(seed))

    @st.composite
    def concat(draw):
        rank = draw(st.integers(1, 4))
        shape = [draw(st.integers(1, 5)) for _ in range(rank)]
        axis = draw(st.integers(0, rank - 1))
        sizes = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
        return draw(dtype_of("CONCATENATION")), dict(shape=shape, axis=axis, sizes=sizes,
                                                     same_q=draw(st.booleans()),
                                                     negative_axis=draw(st.sampled_from((None, True))),
                                                     seed=draw(seed))

    @st.composite
    def pad(draw):
        rank = draw(st.integers(1, 4))
        shape = [draw(st.integers(1, 5)) for _ in range(rank)]
        pads = [[draw(st.integers(0, 3)), draw(st.integers(0, 3))] for _ in range(rank)]
        return draw(dtype_of("PAD")), dict(shape=shape, paddings=pads, seed=draw(seed))

    @st.composite
    def mean(draw):
        rank = draw(st.integers(1, 4))
        shape = [draw(st.integers(1, 6)) for _ in range(rank)]
        axes = draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank,
                             unique_by=lambda a: a % rank))
        return draw(dtype_of("MEAN")), dict(shape=shape, axes=axes, keep_dims=draw(st.booleans()),
                                            same_q=draw(st.booleans()), seed=draw(seed))

    @st.composite
    def softmax(draw):
        rank = draw(st.sampled_from((2, 4)))
        shape = [draw(st.integers(1, 5)) for _ in range(rank - 1)] + [draw(st.integers(1, 30))]
        beta = draw(st.sampled_from((1.0, 0.5, 2.0, 0.1, 1.5)))
        return draw(dtype_of("SOFTMAX")), dict(shape=shape, beta=beta, seed=draw(seed))

    @st.composite
    def argmax(draw):
        # Rank >= 2: a rank-1 input gives a 0-d output, which tests/oracle.py cannot
        # allocate yet (_garbage views a 0-d array as bytes).
        rank = draw(st.integers(2, 4))
        shape = [draw(st.integers(1, 6)) for _ in range(rank)]
        return draw(dtype_of("ARG_MAX")), dict(shape=shape, axis=draw(st.integers(-rank, rank - 1)),
                                               output_type=draw(st.sampled_from(("INT32", "INT64"))),
                                               seed=draw(seed))

    @st.composite
    def s2b(draw):
        bh, bw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
        ph0, pw0 = draw(st.integers(0, 4)), draw(st.integers(0, 4))
        ph1 = (-(h + ph0)) % bh + bh * draw(st.integers(0, 1))
        pw1 = (-(w + pw0)) % bw
        return draw(dtype_of("SPACE_TO_BATCH_ND")), dict(
            shape=[draw(st.integers(1, 2)), h, w, draw(st.integers(1, 3))], block=[bh, bw],
            paddings=[[ph0, ph1], [pw0, pw1]], seed=draw(seed))

    @st.composite
    def b2s(draw):
        bh, bw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
        ch0 = draw(st.integers(0, h * bh - 1))
        ch1 = draw(st.integers(0, h * bh - 1 - ch0))
        cw0 = draw(st.integers(0, w * bw - 1))
        cw1 = draw(st.integers(0, w * bw - 1 - cw0))
        return draw(dtype_of("BATCH_TO_SPACE_ND")), dict(
            shape=[bh * bw * draw(st.integers(1, 2)), h, w, draw(st.integers(1, 3))], block=[bh, bw],
            crops=[[ch0, ch1], [cw0, cw1]], seed=draw(seed))

    @st.composite
    def sslice(draw):
        rank = draw(st.integers(1, 4))
        shape = [draw(st.integers(1, 6)) for _ in range(rank)]
        begin, end, strides = [], [], []
        shrink = 0
        for i, n in enumerate(shape):
            if draw(st.integers(0, 5)) == 0:  # shrink this axis to one index
                shrink |= 1 << i
                b = draw(st.integers(-n, n - 1))
                begin.append(b)
                end.append(b + 1 if b != -1 else 0)
                strides.append(1)
                continue
            s = draw(st.sampled_from((1, 1, 2, 3, -1, -2)))
            begin.append(draw(st.integers(-n, n - 1)))
            end.append(draw(st.integers(-n - 1, n)))
            strides.append(s)
        bm = draw(st.integers(0, 2**rank - 1)) & ~shrink
        em = draw(st.integers(0, 2**rank - 1)) & ~shrink
        return draw(dtype_of("STRIDED_SLICE")), dict(shape=shape, begin=begin, end=end, strides=strides,
                                                     begin_mask=bm, end_mask=em, shrink_axis_mask=shrink,
                                                     seed=draw(seed))

    @st.composite
    def tile_(draw):
        rank = draw(st.integers(1, 4))
        return draw(dtype_of("TILE")), dict(shape=[draw(st.integers(1, 4)) for _ in range(rank)],
                                            multiples=[draw(st.integers(1, 3)) for _ in range(rank)],
                                            seed=draw(seed))

    return {
        "CONV_2D": conv("CONV_2D"), "DEPTHWISE_CONV_2D": conv("DEPTHWISE_CONV_2D"), "TRANSPOSE_CONV": tconv(),
        "AVERAGE_POOL_2D": pool("AVERAGE_POOL_2D"), "MAX_POOL_2D": pool("MAX_POOL_2D"),
        "RESIZE_BILINEAR": resize("RESIZE_BILINEAR"), "RESIZE_NEAREST_NEIGHBOR": resize("RESIZE_NEAREST_NEIGHBOR"),
        "ADD": binary("ADD"), "SUB": binary("SUB"), "MUL": binary("MUL"), "CONCATENATION": concat(),
        "PAD": pad(), "MEAN": mean(), "SOFTMAX": softmax(), "ARG_MAX": argmax(),
        "SPACE_TO_BATCH_ND": s2b(), "BATCH_TO_SPACE_ND": b2s(), "STRIDED_SLICE": sslice(), "TILE": tile_(),
        **extra_strategies(st, seed, dtype_of, binary),
    }


OPS = tuple(BUILDERS)
EXTRA_OPS = frozenset(OPS[OPS.index("PRELU"):])


# ---------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------

@dataclass
class Result:
    op: str
    dtype: str
    status: str
    key: str
    message: str = ""


def run_case(case: Case, backends: Iterable[str] = BACKENDS) -> Result:
    """Run one case in LiteRT (BUILTIN_REF) and on each of our backends; classify the outcome."""
    from pydeeplab.ops import REGISTRY

    opcode = BuiltinOperator[case.op]
    key = case.key()
    if opcode not in REGISTRY:
        return Result(case.op, case.dtype, "unregistered", key)
    try:
        model = single_op_model(opcode, case.inputs, case.outputs, case.options, case.version)
        feeds = [t.array() for t in case.inputs if t is not None and not t.const]
        refs = run_litert(model, feeds, ORACLE_RESOLVER.get((case.op, case.dtype), "ref"))
    except (RuntimeError, ValueError) as exc:
        litert_error = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        ours_rejects = []
        for backend in backends:
            try:
                run_ours_op(opcode, case.inputs, case.outputs, case.options, backend, case.version)
                ours_rejects.append(False)
            except ModelError:
                ours_rejects.append(True)
            except Exception:  # noqa: BLE001 - any other exception is a crash, not a refusal
                ours_rejects.append(False)
        if not case.expect_reject:
            return Result(case.op, case.dtype, "invalid", key, f"LiteRT: {litert_error}")
        if all(ours_rejects):
            return Result(case.op, case.dtype, "rejected", key)
        return Result(case.op, case.dtype, "lenient", key, f"LiteRT refuses ({litert_error}); we accept")
    if case.expect_reject:
        return Result(case.op, case.dtype, "invalid", key, "expected LiteRT to refuse this case")
    declared = [T(None, t.tensor_type(), r.shape, t.quant) for t, r in zip(case.outputs, refs)]
    for backend in backends:
        try:
            ours = run_ours_op(opcode, case.inputs, declared, case.options, backend, case.version)
        except Exception as exc:  # noqa: BLE001 - every failure of ours is reported with its case
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            return Result(case.op, case.dtype, "error", key, f"[{backend}] {last}")
        try:
            for k, (o, r) in enumerate(zip(ours, refs)):
                compare(o, r, f"{case.op} output {k} [{backend}]")
        except AssertionError as exc:
            return Result(case.op, case.dtype, "mismatch", key, str(exc))
    return Result(case.op, case.dtype, "pass", key)


FAILING = ("mismatch", "error", "invalid", "lenient")


@dataclass
class Sweep:
    """Counts per (operator, dtype, status) and the failing results, in order."""

    counts: Counter = field(default_factory=Counter)
    failures: list[Result] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, r: Result) -> None:
        self.counts[r.op, r.dtype, r.status] += 1
        if r.status in FAILING:
            self.failures.append(r)

    def run(self, op: str, dtype: str, params: dict, backends=BACKENDS) -> Result:
        t0 = time.perf_counter()
        try:
            case = make_case(op, dtype, params)
        except Exception as exc:  # noqa: BLE001 - a builder that cannot build is a generator bug
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            key = json.dumps({"op": op, "dtype": dtype, "params": params}, sort_keys=True,
                             separators=(",", ":"))
            r = Result(op, dtype, "invalid", key, f"case builder failed: {last}")
        else:
            r = run_case(case, backends)
        self.seconds += time.perf_counter() - t0
        self.add(r)
        return r

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def n_failed(self) -> int:
        return len(self.failures)

    def table(self) -> str:
        """Cases per operator and dtype: passed (+ refused as LiteRT refuses), and every other status."""
        ops = sorted({k[0] for k in self.counts}, key=lambda o: OPS.index(o) if o in OPS else 99)
        lines = [f"{'operator':24} {'dtype':8} {'cases':>6} {'pass':>6} {'reject':>6} {'fail':>5}  other"]
        for op in ops:
            for dtype in HYBRID_DTYPES:
                c = {s: n for (o, d, s), n in self.counts.items() if o == op and d == dtype}
                if not c:
                    continue
                fail = sum(c.get(s, 0) for s in FAILING)
                other = ", ".join(f"{s} {n}" for s, n in sorted(c.items())
                                  if s not in ("pass", "rejected") and s not in FAILING)
                lines.append(f"{op:24} {dtype:8} {sum(c.values()):>6} {c.get('pass', 0):>6} "
                             f"{c.get('rejected', 0):>6} {fail:>5}  {other}")
        n_fail = sum(n for (_, _, s), n in self.counts.items() if s in FAILING)
        lines.append(f"total: {self.total} cases in {self.seconds:.1f} s; "
                     f"mismatches: {n_fail}; "
                     f"unregistered: {sum(n for (_, _, s), n in self.counts.items() if s == 'unregistered')}")
        return "\n".join(lines)


def grid_cases(op: str) -> list[tuple[str, dict]]:
    """The fixed grid of one operator, as (dtype, params) pairs (only the dtypes it is swept in)."""
    return [(dtype, params) for dtype, params in GRIDS[op]() if dtype in OP_DTYPES[op]]


def run_grid(sweep: Sweep, op: str, backends=BACKENDS) -> None:
    for dtype, params in grid_cases(op):
        sweep.run(op, dtype, params, backends)


def run_random(sweep: Sweep, op: str, examples: int, seed: int, backends=BACKENDS) -> None:
    """``examples`` Hypothesis-drawn cases of ``op`` (reproducible for a given ``seed``).

    Results are recorded, never raised: Hypothesis is used as a generator of varied,
    edge-seeking parameters, and every failing case is reported with its full parameters.
    """
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed

    strategy = strategies()[op]

    @hseed(seed)
    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), derandomize=False)
    @given(strategy)
    def draw(case):
        sweep.run(op, case[0], case[1], backends)

    draw()


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", nargs="*", default=None, help="operators to sweep (default: all)")
    ap.add_argument("--seed", type=int, default=CI_SEED, help="Hypothesis seed (default: the CI seed)")
    ap.add_argument("--examples", type=int, default=None,
                    help=f"random cases per operator (default {CI_EXAMPLES}; {EXTRA_EXAMPLES} for the issue-11 ops)")
    ap.add_argument("--deep", type=int, default=None, metavar="N",
                    help="long local run: N random cases in all, shared among the operators")
    ap.add_argument("--no-grid", action="store_true", help="random cases only")
    ap.add_argument("--case", help="run one case given as JSON {op, dtype, params} and print details")
    ap.add_argument("--backends", nargs="*", default=list(BACKENDS))
    ap.add_argument("--json", help="write every failing case to this JSON file")
    args = ap.parse_args(argv)

    if args.case:
        spec = json.loads(args.case)
        case = make_case(spec["op"], spec["dtype"], spec["params"])
        r = run_case(case, args.backends)
        print(f"{r.status}: {r.message}" if r.message else r.status)
        return 0 if r.status in ("pass", "rejected") else 1

    ops = args.ops or list(OPS)
    unknown = [o for o in ops if o not in BUILDERS]
    if unknown:
        ap.error(f"unknown operators: {', '.join(unknown)} (known: {', '.join(OPS)})")
    deep = None if args.deep is None else max(1, math.ceil(args.deep / len(ops)))
    sweep = Sweep()
    for op in ops:
        t0, n0 = time.perf_counter(), sweep.total
        if not args.no_grid:
            run_grid(sweep, op, args.backends)
        n = deep if deep is not None else (args.examples if args.examples is not None else examples_for(op))
        run_random(sweep, op, n, args.seed, args.backends)
        print(f"{op}: {sweep.total - n0} cases, {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    print(sweep.table())
    for r in sweep.failures:
        print(f"\n{r.status.upper()} {r.message}\n  python tools/sweep.py --case '{r.key}'")
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in sweep.failures], indent=1))
    return 1 if sweep.failures else 0


if __name__ == "__main__":
    sys.exit(main())
