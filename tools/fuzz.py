#!/usr/bin/env python
"""Fuzz pydeeplab's model reader, graph plan and interpreter with broken and hostile models.

Every case takes a seed model (the real models of ``../shared/data/models`` and small
synthesized DeepLab-like models), mutates it deterministically from ``(--seed, case
index)``, and runs load + allocate_tensors (+ set_tensor/invoke/get_tensor) on it in a
worker process. Mutations:

- bytes: bit flips and byte runs aimed at the flatbuffer's tables (not only at weights),
  truncation at table/vector boundaries, corrupted offsets, vtables and vector lengths,
  inserted or deleted bytes;
- structure (the model is edited and re-serialized with ``ModelBuilder``): huge or
  inconsistent shapes, wrong tensor types, broken quantization, wrong operator arity,
  rewired, reordered and cyclic graphs, changed opcodes and options, hostile constant
  values (sizes, axes, paddings), broken graph inputs/outputs;
- API: ``resize_tensor_input`` to random, impossible shapes before allocating.

Allowed outcomes: success, or ``ModelError``/``ValueError`` with a message (the report
also lists where the ValueErrors that pydeeplab did not raise itself came from). A crash
is anything else: another exception (including MemoryError), a hang (no answer within
``--timeout`` seconds beyond the seed model's own run time), a worker whose memory passes
``--rss-limit``, or a worker killed by a signal (a segfault in a kernel; faulthandler's
traceback is kept). Each crash is recorded with its campaign seed and index and saved to
``--save`` (a folder outside the repo) as ``<case>.tflite`` plus ``<case>.json``;
``--replay <case>.json`` reruns one in-process under the same limits.

Usage::

    python tools/fuzz.py --cases 10000 --save /tmp/pydeeplab-fuzz
    python tools/fuzz.py --cases 200 --start 5000 --seed 1 --workers 2 --backend numpy
    python tools/fuzz.py --systematic --model mini_float --save /tmp/pydeeplab-fuzz
    python tools/fuzz.py --replay /tmp/pydeeplab-fuzz/case-0-0001234.json

Each worker is one process (restarted after a crash or a timeout) with Numba limited to
``--threads`` threads, the plan's activation limit (``MAX_ARENA_BYTES``) set to
``--arena-limit``, an address-space limit (``RLIMIT_AS``) that makes an allocation past
``--rss-limit`` fail at once, and its resident memory polled by the parent. A timeout is
confirmed before it is reported: the case is rerun in a fresh worker with a long deadline
(a first run may include Numba compiling a new kernel specialization), then once more
with the normal deadline on a warm cache. ``--boundscheck`` compiles the kernels with
Numba's bounds checking (in a cache folder of their own), so that an out-of-range index
in a kernel raises IndexError instead of reading past an array.
"""

from __future__ import annotations

import argparse
import collections
import copy
import dataclasses
import itertools
import json
import os
import re
import resource
import selectors
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MODEL_NAMES = ("deeplabv3_257_mv_gpu", "deeplabv3_mnv2_dm05_pascal_quant", "deeplabv3_mnv2_pascal_quant")
ALLOWED = ("ok", "ModelError", "ValueError")
SELFTEST = ("selftest-segv", "selftest-hang", "selftest-memory", "selftest-exception", "selftest-slow-once")
GiB = 1 << 30




# ---------------------------------------------------------------------------------------
# Seed models
# ---------------------------------------------------------------------------------------


class _Net:
    """A tiny graph builder over ModelBuilder that tracks shapes and quantization.

    ``dtype`` is float32, uint8 (per-tensor weights, as the Coral models) or int8
    (per-channel weights). Activations get plausible quantization parameters.
    """

    def __init__(self, description: str, dtype: str, seed: int):
        from pydeeplab.tflite.schema import TensorType
        from pydeeplab.tflite.writer import ModelBuilder

        self.b = ModelBuilder(description=description)
        self.rng = np.random.default_rng(seed)
        self.dtype = np.dtype(dtype)
        self.type = {"float32": TensorType.FLOAT32, "uint8": TensorType.UINT8, "int8": TensorType.INT8}[dtype]
        self.shapes: dict[int, tuple[int, ...]] = {}
        self.quants: dict[int, object] = {}
        self.n = 0

    @property
    def quantized(self) -> bool:
        return self.dtype != np.float32

    def _q(self, scale, zero_point, dim: int = 0):
        from pydeeplab.tflite.model import Quantization

        scales = np.atleast_1d(np.asarray(scale, np.float32))
        zps = np.atleast_1d(np.asarray(zero_point, np.int64))
        if zps.size == 1 and scales.size > 1:
            zps = np.repeat(zps, scales.size)
        return Quantization(scales=scales, zero_points=zps, quantized_dimension=dim)

    def _act_quant(self, scale: float | None = None):
        if not self.quantized:
            return None
        scale = float(self.rng.uniform(0.02, 0.08)) if scale is None else scale
        zp = int(self.rng.integers(100, 156)) if self.dtype == np.uint8 else int(self.rng.integers(-20, 20))
        return self._q(scale, zp)

    def tensor(self, shape, quant=None, type_=None) -> int:
        from pydeeplab.tflite.schema import TensorType

        self.n += 1
        t = self.b.add_tensor(f"t{self.n}", self.type if type_ is None else TensorType(type_), shape, quant)
        self.shapes[t] = tuple(shape)
        self.quants[t] = quant
        return t

    def input(self, shape) -> int:
        return self.tensor(shape, self._act_quant(1 / 128))

    def const_int32(self, values) -> int:
        self.n += 1
        return self.b.add_constant(f"c{self.n}", np.asarray(values, np.int32))

    def conv(self, x: int, cout: int, k: int, stride: int = 1, dilation: int = 1, act=None,
             depthwise: bool = False, padding=None) -> int:
        from pydeeplab.tflite.options import Conv2DOptions, DepthwiseConv2DOptions
        from pydeeplab.tflite.schema import Activation, BuiltinOperator, Padding

        act = Activation.NONE if act is None else act
        padding = Padding.SAME if padding is None else padding
        n, h, w, cin = self.shapes[x]
        wshape = (1, k, k, cout) if depthwise else (cout, k, k, cin)
        fan_in = k * k * (1 if depthwise else cin)
        wreal = (self.rng.standard_normal(wshape) * (0.5 / np.sqrt(fan_in))).astype(np.float32)
        breal = self.rng.standard_normal(cout).astype(np.float32) * 0.1
        self.n += 1
        if not self.quantized:
            wt = self.b.add_constant(f"w{self.n}", wreal)
            bt = self.b.add_constant(f"b{self.n}", breal)
        else:
            in_scale = float(self.quants[x].scales[0])
            if self.dtype == np.uint8:  # per tensor, asymmetric
                ws = np.float32(np.abs(wreal).max() / 127)
                wzp = 128
                wq = np.clip(np.round(wreal / ws) + wzp, 0, 255).astype(np.uint8)
                wquant = self._q(ws, wzp)
                bscale = np.full(cout, in_scale * ws, np.float32)
            else:  # per channel along the output-channel dimension, symmetric
                axis = 3 if depthwise else 0
                red = tuple(i for i in range(4) if i != axis)
                ws = (np.abs(wreal).max(axis=red) / 127).astype(np.float32)
                shape = [1, 1, 1, 1]
                shape[axis] = cout
                wq = np.clip(np.round(wreal / ws.reshape(shape)), -127, 127).astype(np.int8)
                wquant = self._q(ws, 0, axis)
                bscale = (in_scale * ws).astype(np.float32)
            wt = self.b.add_constant(f"w{self.n}", wq, wquant)
            bq = np.round(breal / bscale).astype(np.int32)
            bt = self.b.add_constant(f"b{self.n}", bq, self._q(bscale, 0))
        if padding == Padding.SAME:
            oh, ow = -(-h // stride), -(-w // stride)
        else:
            eff = (k - 1) * dilation + 1
            oh, ow = (h - eff) // stride + 1, (w - eff) // stride + 1
        y = self.tensor((n, oh, ow, cout), self._act_quant())
        if depthwise:
            opts = DepthwiseConv2DOptions(padding=padding, stride_w=stride, stride_h=stride,
                                          depth_multiplier=cout // cin, fused_activation_function=act,
                                          dilation_w_factor=dilation, dilation_h_factor=dilation)
            self.b.add_operator(BuiltinOperator.DEPTHWISE_CONV_2D, [x, wt, bt], [y], opts)
        else:
            opts = Conv2DOptions(padding=padding, stride_w=stride, stride_h=stride, fused_activation_function=act,
                                 dilation_w_factor=dilation, dilation_h_factor=dilation)
            self.b.add_operator(BuiltinOperator.CONV_2D, [x, wt, bt], [y], opts)
        return y

    def add(self, a: int, c: int, act=None) -> int:
        from pydeeplab.tflite.options import AddOptions
        from pydeeplab.tflite.schema import Activation, BuiltinOperator

        y = self.tensor(self.shapes[a], self._act_quant())
        self.b.add_operator(BuiltinOperator.ADD, [a, c], [y], AddOptions(act or Activation.NONE))
        return y

    def global_pool(self, x: int) -> int:
        from pydeeplab.tflite.options import Pool2DOptions
        from pydeeplab.tflite.schema import BuiltinOperator, Padding

        n, h, w, c = self.shapes[x]
        y = self.tensor((n, 1, 1, c), self.quants[x])  # quantized pools keep the input's parameters
        self.b.add_operator(BuiltinOperator.AVERAGE_POOL_2D, [x], [y],
                            Pool2DOptions(padding=Padding.VALID, stride_w=w, stride_h=h, filter_width=w,
                                          filter_height=h))
        return y

    def pool(self, x: int, k: int, stride: int, padding=None, maximum: bool = False) -> int:
        from pydeeplab.tflite.options import Pool2DOptions
        from pydeeplab.tflite.schema import BuiltinOperator, Padding

        padding = Padding.SAME if padding is None else padding
        n, h, w, c = self.shapes[x]
        if padding == Padding.SAME:
            oh, ow = -(-h // stride), -(-w // stride)
        else:
            oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
        y = self.tensor((n, oh, ow, c), self.quants[x])
        self.b.add_operator(BuiltinOperator.MAX_POOL_2D if maximum else BuiltinOperator.AVERAGE_POOL_2D, [x], [y],
                            Pool2DOptions(padding=padding, stride_w=stride, stride_h=stride, filter_width=k,
                                          filter_height=k))
        return y

    def resize(self, x: int, size: tuple[int, int], nearest: bool = False) -> int:
        from pydeeplab.tflite.options import ResizeBilinearOptions, ResizeNearestNeighborOptions
        from pydeeplab.tflite.schema import BuiltinOperator

        n, _, _, c = self.shapes[x]
        s = self.const_int32(size)
        y = self.tensor((n, *size, c), self.quants[x])
        if nearest:
            self.b.add_operator(BuiltinOperator.RESIZE_NEAREST_NEIGHBOR, [x, s], [y], ResizeNearestNeighborOptions())
        else:
            self.b.add_operator(BuiltinOperator.RESIZE_BILINEAR, [x, s], [y], ResizeBilinearOptions())
        return y

    def requantize(self, x: int, like: int) -> int:
        from pydeeplab.tflite.options import EmptyOptions
        from pydeeplab.tflite.schema import BuiltinOperator

        y = self.tensor(self.shapes[x], self.quants[like])
        self.b.add_operator(BuiltinOperator.QUANTIZE, [x], [y], EmptyOptions())
        return y

    def concat(self, xs: list[int], axis: int = 3) -> int:
        from pydeeplab.tflite.options import ConcatenationOptions
        from pydeeplab.tflite.schema import BuiltinOperator

        shape = list(self.shapes[xs[0]])
        shape[axis] = sum(self.shapes[x][axis] for x in xs)
        y = self.tensor(shape, self.quants[xs[0]])
        self.b.add_operator(BuiltinOperator.CONCATENATION, xs, [y], ConcatenationOptions(axis=axis))
        return y

    def argmax(self, x: int) -> int:
        from pydeeplab.tflite.options import ArgMaxOptions
        from pydeeplab.tflite.schema import BuiltinOperator, TensorType

        axis = self.const_int32([3])
        y = self.tensor(self.shapes[x][:3], None, TensorType.INT64)
        self.b.add_operator(BuiltinOperator.ARG_MAX, [x, axis], [y], ArgMaxOptions(output_type=TensorType.INT64))
        return y

    def finish(self, inputs: list[int], outputs: list[int], signature: bool = False) -> bytes:
        self.b.set_inputs(inputs)
        self.b.set_outputs(outputs)
        if signature:  # as the converter writes them: a signature and the runtime version
            self.b.add_signature("serving_default", {f"in{i}": t for i, t in enumerate(inputs)},
                                 {f"out{i}": t for i, t in enumerate(outputs)})
            self.b.add_metadata("min_runtime_version", b"1.5.0\0\0\0\0\0\0\0\0\0\0\0")
        return self.b.finish()


def mini_deeplab(dtype: str = "float32", size: int = 17) -> bytes:
    """A DeepLab v3 (mobile) in miniature: strided conv, atrous depthwise, residual ADD,
    image-pooling branch (global AVERAGE_POOL_2D -> 1x1 conv -> RESIZE_BILINEAR), concat,
    1x1 classifier, upsampling; quantized variants requantize before the concat and end in
    ARG_MAX, as the Coral models do."""
    from pydeeplab.tflite.schema import Activation

    net = _Net(f"fuzz seed: mini DeepLab {dtype}", dtype, seed=11)
    x = net.input((1, size, size, 3))
    t1 = net.conv(x, 8, 3, stride=2, act=Activation.RELU6)
    t2 = net.conv(t1, 8, 3, dilation=2, depthwise=True, act=Activation.RELU6)
    t3 = net.conv(t2, 8, 1)
    t4 = net.add(t3, t1)
    h = net.shapes[t4][1]
    pooled = net.conv(net.global_pool(t4), 4, 1, act=Activation.RELU)
    branch0 = net.resize(pooled, (h, h))
    branch1 = net.conv(t4, 4, 1, act=Activation.RELU)
    if net.quantized:
        branch0 = net.requantize(branch0, branch1)
    logits = net.conv(net.concat([branch0, branch1]), 5, 1)
    out = net.resize(logits, (size, size))
    if net.quantized:
        out = net.argmax(out)
    return net.finish([x], [out], signature=not net.quantized)


def zoo_float() -> bytes:
    """Operators beyond DeepLab's: MAX_POOL_2D, MUL, SUB, RESIZE_NEAREST_NEIGHBOR, MEAN, SOFTMAX."""
    from pydeeplab.tflite.options import MulOptions, Pool2DOptions, ReducerOptions, SoftmaxOptions, SubOptions
    from pydeeplab.tflite.schema import BuiltinOperator, Padding

    net = _Net("fuzz seed: operator zoo, float32", "float32", seed=12)
    b = net.b
    x = net.input((1, 8, 8, 4))
    p = net.tensor((1, 4, 4, 4))
    b.add_operator(BuiltinOperator.MAX_POOL_2D, [x], [p],
                   Pool2DOptions(padding=Padding.SAME, stride_w=2, stride_h=2, filter_width=3, filter_height=3))
    g = b.add_constant("gain", net.rng.standard_normal(4).astype(np.float32))
    m = net.tensor((1, 4, 4, 4))
    b.add_operator(BuiltinOperator.MUL, [p, g], [m], MulOptions())
    o = b.add_constant("offset", net.rng.standard_normal((1, 1, 1, 4)).astype(np.float32))
    s = net.tensor((1, 4, 4, 4))
    b.add_operator(BuiltinOperator.SUB, [m, o], [s], SubOptions())
    r = net.resize(s, (8, 8), nearest=True)
    axes = net.const_int32([1, 2])
    mean = net.tensor((1, 1, 1, 4))
    b.add_operator(BuiltinOperator.MEAN, [r, axes], [mean], ReducerOptions(keep_dims=True))
    out = net.tensor((1, 1, 1, 4))
    b.add_operator(BuiltinOperator.SOFTMAX, [mean], [out], SoftmaxOptions(beta=1.0))
    return net.finish([x], [out, r])


def zoo_uint8() -> bytes:
    """Quantized MAX_POOL_2D, MUL of two graph inputs, MEAN, SUB with broadcasting."""
    from pydeeplab.tflite.options import MulOptions, Pool2DOptions, ReducerOptions, SubOptions
    from pydeeplab.tflite.schema import BuiltinOperator, Padding

    net = _Net("fuzz seed: operator zoo, uint8", "uint8", seed=13)
    b = net.b
    x = net.input((1, 8, 8, 4))
    y = net.input((1, 4, 4, 4))
    p = net.tensor((1, 4, 4, 4), net.quants[x])
    b.add_operator(BuiltinOperator.MAX_POOL_2D, [x], [p],
                   Pool2DOptions(padding=Padding.VALID, stride_w=2, stride_h=2, filter_width=2, filter_height=2))
    m = net.tensor((1, 4, 4, 4), net._act_quant(0.05))
    b.add_operator(BuiltinOperator.MUL, [p, y], [m], MulOptions())
    axes = net.const_int32([1, 2])
    mean = net.tensor((1, 1, 1, 4), net._act_quant(0.05))
    b.add_operator(BuiltinOperator.MEAN, [m, axes], [mean], ReducerOptions(keep_dims=True))
    d = net.tensor((1, 4, 4, 4), net._act_quant(0.06))
    b.add_operator(BuiltinOperator.SUB, [m, mean], [d], SubOptions())
    return net.finish([x, y], [d])


def zoo_shape(dtype: str = "float32") -> bytes:
    """Layout and shape operators around a convolution: PAD, SPACE_TO_BATCH_ND,
    BATCH_TO_SPACE_ND, HARD_SWISH/LOGISTIC/TANH/RELU, STRIDED_SLICE, RESHAPE, SQUEEZE, TILE,
    TRANSPOSE_CONV (float32), or their quantized forms with QUANTIZE/DEQUANTIZE (int8)."""
    from pydeeplab.tflite.options import (
        EmptyOptions, ReshapeOptions, SqueezeOptions, StridedSliceOptions, TransposeConvOptions)
    from pydeeplab.tflite.schema import BuiltinOperator as Op
    from pydeeplab.tflite.schema import Padding, TensorType

    net = _Net(f"fuzz seed: shape operators, {dtype}", dtype, seed=14)
    b = net.b
    x = net.input((1, 6, 6, 3))
    q = net.quants[x]
    padded = net.tensor((1, 8, 8, 3), q)
    b.add_operator(Op.PAD, [x, net.const_int32([[0, 0], [1, 1], [1, 1], [0, 0]])], [padded], EmptyOptions())
    s2b = net.tensor((4, 4, 4, 3), q)
    b.add_operator(Op.SPACE_TO_BATCH_ND, [padded, net.const_int32([2, 2]), net.const_int32([[0, 0], [0, 0]])],
                   [s2b], EmptyOptions())
    conv = net.conv(s2b, 4, 3)
    b2s = net.tensor((1, 8, 8, 4), net.quants[conv])
    b.add_operator(Op.BATCH_TO_SPACE_ND, [conv, net.const_int32([2, 2]), net.const_int32([[0, 0], [0, 0]])],
                   [b2s], EmptyOptions())
    act = net.tensor((1, 8, 8, 4), net.quants[b2s] if net.quantized else None)
    b.add_operator(Op.RELU if net.quantized else Op.HARD_SWISH, [b2s], [act])
    sl = net.tensor((1, 3, 3, 4), net.quants[act])
    b.add_operator(Op.STRIDED_SLICE, [act, net.const_int32([0, 1, 1, 0]), net.const_int32([1, 7, 7, 4]),
                                      net.const_int32([1, 2, 2, 1])], [sl], StridedSliceOptions())
    flat = net.tensor((1, 36), net.quants[sl])
    b.add_operator(Op.RESHAPE, [sl, net.const_int32([1, 36])], [flat], ReshapeOptions(new_shape=(1, 36)))
    tiled = net.tensor((2, 36), net.quants[flat])
    b.add_operator(Op.TILE, [flat, net.const_int32([2, 1])], [tiled], EmptyOptions())
    if net.quantized:
        out = net.tensor((2, 36), None, TensorType.FLOAT32)
        b.add_operator(Op.DEQUANTIZE, [tiled], [out], EmptyOptions())
        return net.finish([x], [out])
    squeezed = net.tensor((36,))
    b.add_operator(Op.SQUEEZE, [flat], [squeezed], SqueezeOptions(squeeze_dims=(0,)))
    out = net.tensor((36,))
    b.add_operator(Op.TANH, [squeezed], [out])
    sig = net.tensor((2, 36))
    b.add_operator(Op.LOGISTIC, [tiled], [sig])
    w = b.add_constant("tconv_w", net.rng.standard_normal((2, 3, 3, 4)).astype(np.float32))
    up = net.tensor((1, 16, 16, 2))
    b.add_operator(Op.TRANSPOSE_CONV, [net.const_int32([1, 16, 16, 2]), w, act], [up],
                   TransposeConvOptions(padding=Padding.SAME, stride_w=2, stride_h=2))
    return net.finish([x], [out, sig, up])


def zoo_converters(dtype: str = "float32") -> bytes:
    """What onnx2tf and ai-edge-torch write around convolutions and attention: SPLIT into channel
    halves, MIRROR_PAD, SPLIT_V, SLICE, EXPAND_DIMS, BATCH_MATMUL (scores, then mixing) and GELU; a
    mask (GREATER, REDUCE_MAX / REDUCE_MIN, BROADCAST_TO, SELECT_V2); in float32 also POW, SQRT, ABS;
    in float32 or int8."""
    from pydeeplab.tflite.options import (
        BatchMatMulOptions, ConcatenationOptions, GeluOptions, MirrorPadOptions, ReducerOptions, SplitOptions,
        SplitVOptions)
    from pydeeplab.tflite.schema import BuiltinOperator as Op
    from pydeeplab.tflite.schema import Padding, TensorType

    net = _Net(f"fuzz seed: converters' operators, {dtype}", dtype, seed=16)
    b = net.b
    x = net.input((1, 6, 6, 8))
    halves = [net.tensor((1, 6, 6, 4), net.quants[x]) for _ in range(2)]
    b.add_operator(Op.SPLIT, [net.const_int32([3]), x], halves, SplitOptions(2))
    padded = net.tensor((1, 8, 8, 4), net.quants[x])
    b.add_operator(Op.MIRROR_PAD, [halves[1], net.const_int32([[0, 0], [1, 1], [1, 1], [0, 0]])], [padded],
                   MirrorPadOptions())
    conv = net.conv(padded, 4, 3, padding=Padding.VALID)
    joined = net.tensor((1, 6, 6, 8), net.quants[conv])
    first = net.requantize(halves[0], conv) if net.quantized else halves[0]  # (int8 concatenates alike parameters)
    b.add_operator(Op.CONCATENATION, [first, conv], [joined], ConcatenationOptions(3))
    parts = [net.tensor((1, 6, 6, n), net.quants[joined]) for n in (3, 5)]
    b.add_operator(Op.SPLIT_V, [joined, net.const_int32([3, -1]), net.const_int32([-1])], parts, SplitVOptions(2))
    window = net.tensor((1, 4, 6, 5), net.quants[joined])
    b.add_operator(Op.SLICE, [parts[1], net.const_int32([0, 1, 0, 0]), net.const_int32([-1, 4, -1, -1])], [window])
    tokens = net.tensor((1, 1, 24, 5), net.quants[joined])
    b.add_operator(Op.RESHAPE, [window, net.const_int32([1, 1, 24, 5])], [tokens])
    scores = net.tensor((1, 1, 24, 24), net._act_quant(0.5))
    b.add_operator(Op.BATCH_MATMUL, [tokens, tokens], [scores], BatchMatMulOptions(adj_y=True))
    mixed = net.tensor((1, 1, 24, 5), net._act_quant(1.0))
    b.add_operator(Op.BATCH_MATMUL, [scores, tokens], [mixed], BatchMatMulOptions())
    out = net.tensor((1, 1, 24, 5), net._act_quant(0.5))
    b.add_operator(Op.GELU, [mixed], [out], GeluOptions(True))
    expanded = net.tensor((1, 1, 6, 6, 3), net.quants[joined])
    b.add_operator(Op.EXPAND_DIMS, [parts[0], net.const_int32([0])], [expanded])
    # A mask: where the conv's output exceeds the first half's, it, else a broadcast row.
    above = net.tensor((1, 6, 6, 4), None, TensorType.BOOL)
    b.add_operator(Op.GREATER, [conv, first], [above])
    row = net.tensor((1, 1, 1, 4), net.quants[conv])
    b.add_operator(Op.REDUCE_MIN if net.quantized else Op.REDUCE_MAX, [conv, net.const_int32([1, 2])], [row],
                   ReducerOptions(keep_dims=True))
    spread = net.tensor((1, 6, 6, 4), net.quants[conv])
    b.add_operator(Op.BROADCAST_TO, [row, net.const_int32([1, 6, 6, 4])], [spread], version=2)
    masked = net.tensor((1, 6, 6, 4), net.quants[conv])
    b.add_operator(Op.SELECT_V2, [above, conv, spread], [masked])
    outputs = [out, expanded, masked]
    if not net.quantized:  # a layer norm's statistics, as onnx2tf writes them
        squared = net.tensor((1, 6, 6, 4))
        b.add_operator(Op.POW, [masked, b.add_constant("two", np.array([2.0], np.float32))], [squared])
        spread_sq = net.tensor((1, 6, 6, 4))
        b.add_operator(Op.SQRT, [squared], [spread_sq])
        norm = net.tensor((1, 6, 6, 4))
        b.add_operator(Op.ABS, [spread_sq], [norm])
        outputs.append(norm)
    return net.finish([x], outputs)


def zoo_hybrid() -> bytes:
    """A dynamic-range quantized graph: float32 activations, int8 weights (TF2's converter without a
    representative dataset). Hybrid CONV_2D per channel (asymmetric input) and per tensor (symmetric),
    DEPTHWISE_CONV_2D, FULLY_CONNECTED with asymmetric inputs, and TRANSPOSE_CONV at a branch's end."""
    from pydeeplab.tflite.options import (
        Conv2DOptions, DepthwiseConv2DOptions, FullyConnectedOptions, TransposeConvOptions)
    from pydeeplab.tflite.schema import Activation, BuiltinOperator as Op
    from pydeeplab.tflite.schema import Padding

    net = _Net("fuzz seed: hybrid operators (float32 activations, int8 weights)", "float32", seed=17)
    b, rng = net.b, net.rng

    def weights(shape, axis, per_channel=True):
        scales = rng.uniform(0.004, 0.02, shape[axis] if per_channel else 1).astype(np.float32)
        net.n += 1
        return b.add_constant(f"w{net.n}", rng.integers(-127, 128, shape).astype(np.int8), net._q(scales, 0, axis))

    def bias(n):
        net.n += 1
        return b.add_constant(f"b{net.n}", (rng.standard_normal(n) * 0.1).astype(np.float32))

    x = net.input((1, 8, 8, 4))
    a = net.tensor((1, 8, 8, 8))
    b.add_operator(Op.CONV_2D, [x, weights((8, 3, 3, 4), 0), bias(8)], [a], Conv2DOptions(
        padding=Padding.SAME, stride_w=1, stride_h=1, fused_activation_function=Activation.RELU6), version=5)
    d = net.tensor((1, 4, 4, 8))
    b.add_operator(Op.DEPTHWISE_CONV_2D, [a, weights((1, 3, 3, 8), 3), bias(8)], [d], DepthwiseConv2DOptions(
        padding=Padding.SAME, stride_w=2, stride_h=2, depth_multiplier=1), version=6)
    c = net.tensor((1, 4, 4, 6))
    b.add_operator(Op.CONV_2D, [d, weights((6, 1, 1, 8), 0, per_channel=False), bias(6)], [c],
                   Conv2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1), version=2)
    flat = net.tensor((1, 96))
    b.add_operator(Op.RESHAPE, [c, net.const_int32([1, 96])], [flat])
    logits = net.tensor((1, 5))
    b.add_operator(Op.FULLY_CONNECTED, [flat, weights((5, 96), 0, per_channel=False), bias(5)], [logits],
                   FullyConnectedOptions(asymmetric_quantize_inputs=True), version=9)
    up = net.tensor((1, 8, 8, 3))
    b.add_operator(Op.TRANSPOSE_CONV, [net.const_int32([1, 8, 8, 3]), weights((3, 3, 3, 6), 0), c, bias(3)], [up],
                   TransposeConvOptions(padding=Padding.SAME, stride_w=2, stride_h=2), version=3)
    return net.finish([x], [logits, up])


def geometry(dtype: str = "float32") -> bytes:
    """Windowed operators whose output sizes all follow from the input's (no constant
    sizes but the final resize): the seed that the "geometry" mutator resizes to odd
    shapes and re-parameterizes, to drive the kernels through many paddings and strides."""
    from pydeeplab.tflite.schema import Activation, Padding

    net = _Net(f"fuzz seed: geometry, {dtype}", dtype, seed=15)
    x = net.input((1, 15, 11, 3))
    t = net.conv(x, 6, 3, stride=2, act=Activation.RELU6)
    t = net.conv(t, 6, 3, dilation=2, depthwise=True)
    t = net.pool(t, 2, 2, maximum=True)
    t = net.conv(t, 12, 3, depthwise=True, padding=Padding.VALID)
    t = net.pool(t, 3, 1)
    out = net.resize(t, (7, 5))
    return net.finish([x], [out])


def synthetic_seeds() -> dict[str, bytes]:
    """The small seed models (deterministic bytes): fast to load, allocate and invoke."""
    return {
        "mini_float": mini_deeplab("float32"),
        "mini_uint8": mini_deeplab("uint8"),
        "mini_int8": mini_deeplab("int8"),
        "zoo_float": zoo_float(),
        "zoo_uint8": zoo_uint8(),
        "zoo_shape": zoo_shape("float32"),
        "zoo_shape_int8": zoo_shape("int8"),
        "zoo_converters": zoo_converters("float32"),
        "zoo_converters_int8": zoo_converters("int8"),
        "zoo_hybrid": zoo_hybrid(),
        "geometry_float": geometry("float32"),
        "geometry_uint8": geometry("uint8"),
        "geometry_int8": geometry("int8"),
    }


def real_seeds(folder: Path | None = None) -> dict[str, Path]:
    """The real models found in ``folder`` (default: the data folder's models/, see pydeeplab.models.data_dir)."""
    from pydeeplab.models import data_dir

    folder = data_dir() / "models" if folder is None else folder
    return {name: folder / f"{name}.tflite" for name in MODEL_NAMES if (folder / f"{name}.tflite").exists()}


# ---------------------------------------------------------------------------------------
# The flatbuffer's layout: where tables, offsets and vector lengths are
# ---------------------------------------------------------------------------------------

# Reference fields of the TFLite tables (slot -> kind), from schema.fbs. Scalars are
# not listed: they only matter as bytes inside their table's range.
_FIELDS: dict[str, dict[int, tuple]] = {
    "Model": {1: ("tables", "OperatorCode"), 2: ("tables", "SubGraph"), 3: ("string",),
              4: ("tables", "Buffer"), 5: ("vector", 4), 6: ("tables", "Metadata"),
              7: ("tables", "SignatureDef")},
    "OperatorCode": {1: ("string",)},
    "SubGraph": {0: ("tables", "Tensor"), 1: ("vector", 4), 2: ("vector", 4), 3: ("tables", "Operator"),
                 4: ("string",)},
    "Tensor": {0: ("vector", 4), 3: ("string",), 4: ("table", "Quantization"), 7: ("vector", 4)},
    "Quantization": {0: ("vector", 4), 1: ("vector", 4), 2: ("vector", 4), 3: ("vector", 8)},
    "Operator": {1: ("vector", 4), 2: ("vector", 4), 4: ("table", "Options"), 5: ("vector", 1),
                 8: ("vector", 4)},
    "Options": {},
    "Buffer": {0: ("data",)},
    "Metadata": {0: ("string",)},
    "SignatureDef": {0: ("tables", "TensorMap"), 1: ("tables", "TensorMap"), 2: ("string",)},
    "TensorMap": {0: ("string",)},
}


@dataclass
class Layout:
    """What a valid model's bytes are made of, for aiming mutations.

    ``regions``: (start, end, kind, what) with kind table, vtable, vector (incl. its
    length word), string or data (weights). ``offsets``: positions of 32-bit offsets
    (the root offset, reference fields, elements of vectors of tables). ``soffsets``:
    positions of the signed table-to-vtable offsets. ``veclens``: positions of vector
    length words. ``vtables``: (start, length in bytes).
    """

    size: int
    regions: list[tuple[int, int, str, str]] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    soffsets: list[int] = field(default_factory=list)
    veclens: list[int] = field(default_factory=list)
    vtables: list[tuple[int, int]] = field(default_factory=list)

    def boundaries(self) -> list[int]:
        """Every start and end of a table, vtable, vector or string, sorted."""
        return sorted({p for s, e, _, _ in self.regions for p in (s, e) if 0 < p < self.size})

    def structure(self) -> list[tuple[int, int, str, str]]:
        return [r for r in self.regions if r[2] != "data"]


def layout(data: bytes) -> Layout:
    """Walk a *valid* TFLite flatbuffer and record its layout (raises on a broken one)."""
    lay = Layout(len(data))
    u32 = struct.Struct("<I")
    seen_vtables: set[int] = set()

    def table(pos: int, kind: str, what: str) -> None:
        vt = pos - struct.unpack_from("<i", data, pos)[0]
        vt_len, t_len = struct.unpack_from("<HH", data, vt)
        lay.soffsets.append(pos)
        lay.regions.append((pos, pos + max(t_len, 4), "table", what))
        if vt not in seen_vtables:  # vtables are shared between identical tables
            seen_vtables.add(vt)
            lay.vtables.append((vt, vt_len))
            lay.regions.append((vt, vt + vt_len, "vtable", f"{what} vtable"))
        for slot, spec in _FIELDS[kind].items():
            entry = 4 + 2 * slot
            if entry >= vt_len:
                continue
            off = struct.unpack_from("<H", data, vt + entry)[0]
            if not off:
                continue
            fpos = pos + off
            target = fpos + u32.unpack_from(data, fpos)[0]
            lay.offsets.append(fpos)
            sub = f"{what}.{slot}"
            if spec[0] == "table":
                table(target, spec[1], sub)
                continue
            n = u32.unpack_from(data, target)[0]
            lay.veclens.append(target)
            if spec[0] == "tables":
                lay.regions.append((target, target + 4 + 4 * n, "vector", sub))
                for i in range(n):
                    elem = target + 4 + 4 * i
                    lay.offsets.append(elem)
                    table(elem + u32.unpack_from(data, elem)[0], spec[1], f"{sub}[{i}]")
            elif spec[0] == "vector":
                lay.regions.append((target, target + 4 + spec[1] * n, "vector", sub))
            elif spec[0] == "string":
                lay.regions.append((target, target + 4 + n + 1, "string", sub))
            else:  # buffer data: the length word is structure, the bytes are weights
                lay.regions.append((target, target + 4, "vector", sub))
                if n:
                    lay.regions.append((target + 4, target + 4 + n, "data", sub))

    lay.offsets.append(0)
    table(u32.unpack_from(data, 0)[0], "Model", "model")
    return lay


# ---------------------------------------------------------------------------------------
# Byte mutators: (data, layout, rng) -> (new data, description)
# ---------------------------------------------------------------------------------------

_U32_BAD = (0, 1, 3, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFC, 0x10000, 0x7FFFFFFC)


def _structure_pos(lay: Layout, rng: np.random.Generator) -> int:
    """A byte position inside the model's structure (not its weights), weighted by size."""
    regions = lay.structure()
    sizes = np.array([e - s for s, e, _, _ in regions], np.float64)
    s, e, _, _ = regions[rng.choice(len(regions), p=sizes / sizes.sum())]
    return int(rng.integers(s, max(e, s + 1)))


def _pos(lay: Layout, rng: np.random.Generator) -> int:
    return _structure_pos(lay, rng) if rng.random() < 0.8 else int(rng.integers(0, lay.size))


def _put_u32(buf: bytearray, pos: int, value: int) -> None:
    if 0 <= pos <= len(buf) - 4:
        struct.pack_into("<I", buf, pos, value & 0xFFFFFFFF)


def mut_bitflip(data: bytes, lay: Layout, rng: np.random.Generator) -> tuple[bytes, str]:
    buf = bytearray(data)
    flips = []
    for _ in range(int(rng.integers(1, 9))):
        p, bit = _pos(lay, rng), int(rng.integers(8))
        buf[p] ^= 1 << bit
        flips.append(f"{p}:{bit}")
    return bytes(buf), "flip bits " + ",".join(flips)


def mut_byterun(data: bytes, lay: Layout, rng: np.random.Generator) -> tuple[bytes, str]:
    buf = bytearray(data)
    p = _pos(lay, rng)
    n = int(min(rng.choice([1, 2, 4, 8, 16, 64, 256]), len(buf) - p))
    fill = rng.choice(["zero", "ff", "random", "7f"])
    chunk = {"zero": bytes(n), "ff": b"\xff" * n, "7f": b"\x7f" * n,
             "random": rng.integers(0, 256, n, dtype=np.uint8).tobytes()}[fill]
    buf[p:p + n] = chunk
    return bytes(buf), f"overwrite {n} bytes at {p} with {fill}"


def mut_truncate(data: bytes, lay: Layout, rng: np.random.Generator) -> tuple[bytes, str]:
    bounds = lay.boundaries()
    if rng.random() < 0.8 and bounds:
        cut = int(bounds[rng.integers(len(bounds))])
    else:
        cut = int(rng.integers(0, len(data)))
    return data[:cut], f"truncate at {cut} of {len(data)}"


def mut_offset(data: bytes, lay: Layout, rng: np.random.Generator) -> tuple[bytes, str]:
    buf = bytearray(data)
    p = int(rng.choice(lay.offsets))
    old = struct.unpack_from("<I", buf, p)[0]
    choice = rng.integers(6)
    if choice == 0:
        value = int(rng.choice(_U32_BAD))
    elif choice == 1:
        value = len(data) - p + int(rng.integers(-8, 8))  # around the end of the file
    elif choice == 2:
        value = old + int(rng.integers(-16, 17))  # slightly off
    elif choice == 3:  # at another table of the file (a shared or misplaced child)
        value = int(rng.choice(lay.soffsets)) - p
    elif choice == 4:
        value = int(rng.integers(0, len(data)))
    else:
        value = (-p) & 0xFFFFFFFF  # wraps around to the start of the file
    _put_u32(buf, p, value)
    return bytes(buf), f"offset at {p}: {old} -> {value & 0xFFFFFFFF}"


def mut_veclen(data: bytes, lay: Layout, rng: np.random.Generator) -> tuple[bytes, str]:
    buf = bytearray(data)
    p = int(rng.choice(lay.veclens))
    old = struct.unpack_from("<I", buf, p)[0]
    value = int(rng.choice([0, old + 1, old - 1, old * 2, old + 1000, 0x7FFFFFFF, 0xFFFFFFFF,
                            0x40000000, len(data) // 4, len(data)]))
    _put_u32(buf, p, value)
    return bytes(buf), f"vector length at {p}: {old} -> {value & 0xFFFFFFFF}"


def mut_vtable(data: bytes, lay: Layout, rng: np.random.Generator) -> tuple[bytes, str]:
    buf = bytearray(data)
    choice = rng.integers(3)
    if choice == 0:  # the table's signed offset to its vtable
        p = int(rng.choice(lay.soffsets))
        value = int(rng.choice([0, 4, -4, 0x7FFFFFFF, -0x80000000, len(data), -len(data)]))
        struct.pack_into("<i", buf, p, value)
        return bytes(buf), f"vtable offset of table at {p} -> {value}"
    vt, vt_len = lay.vtables[rng.integers(len(lay.vtables))]
    if choice == 1:  # the vtable's own length or the table's length
        which = int(rng.integers(2))
        value = int(rng.choice([0, 1, 2, 3, 0xFFFF, 0x8000, vt_len + 2, 4096]))
        struct.pack_into("<H", buf, vt + 2 * which, value)
        return bytes(buf), f"vtable at {vt}: {'vtable' if which == 0 else 'table'} length -> {value}"
    if vt_len <= 4:
        return bytes(buf), "no field in vtable"
    entry = vt + 2 * int(rng.integers(2, vt_len // 2))
    value = int(rng.choice([0, 1, 2, 3, 4, 0xFFFF, 0x7FFF, 0x100]))
    struct.pack_into("<H", buf, entry, value)
    return bytes(buf), f"vtable field at {entry} -> {value}"


def mut_splice(data: bytes, lay: Layout, rng: np.random.Generator) -> tuple[bytes, str]:
    p = _pos(lay, rng)
    n = int(rng.choice([1, 3, 4, 8, 64]))
    if rng.random() < 0.5:
        return data[:p] + rng.integers(0, 256, n, dtype=np.uint8).tobytes() + data[p:], f"insert {n} bytes at {p}"
    return data[:p] + data[p + n:], f"delete {n} bytes at {p}"


BYTE_MUTATORS = {
    "bitflip": mut_bitflip, "byterun": mut_byterun, "truncate": mut_truncate, "offset": mut_offset,
    "veclen": mut_veclen, "vtable": mut_vtable, "splice": mut_splice,
}


# ---------------------------------------------------------------------------------------
# Structural mutators on an editable copy of the model
# ---------------------------------------------------------------------------------------


@dataclass
class IRTensor:
    name: str
    type: int
    shape: list[int]
    signature: list[int] | None
    quant: object | None
    data: bytes | None  # constant bytes, None for activations
    is_variable: bool = False


@dataclass
class IROp:
    opcode: int
    version: int
    inputs: list[int]
    outputs: list[int]
    options: object | None
    custom_code: str | None = None


@dataclass
class IR:
    tensors: list[IRTensor]
    ops: list[IROp]
    inputs: list[int]
    outputs: list[int]
    description: str = ""


def to_ir(data: bytes) -> IR:
    from pydeeplab.tflite.reader import read_model

    model = read_model(data)
    g = model.main
    tensors = []
    for t in g.tensors:
        raw = bytes(model.buffers[t.buffer]) if t.buffer < len(model.buffers) else b""
        tensors.append(IRTensor(t.name, int(t.type), list(t.shape), list(t.shape_signature), t.quantization,
                                raw or None, t.is_variable))
    ops = [IROp(op.code.builtin_code, op.code.version, list(op.inputs), list(op.outputs), op.options,
                op.code.custom_code) for op in g.operators]
    return IR(tensors, ops, list(g.inputs), list(g.outputs), model.description)


def from_ir(ir: IR) -> bytes:
    from pydeeplab.tflite.schema import TensorType
    from pydeeplab.tflite.writer import ModelBuilder

    b = ModelBuilder(description=ir.description)
    for t in ir.tensors:
        buffer = b.add_buffer(t.data) if t.data else 0
        b.add_tensor(t.name, TensorType(t.type), t.shape, t.quant, buffer=buffer,
                     shape_signature=t.signature, is_variable=t.is_variable)
    for op in ir.ops:
        b.add_operator(op.opcode, op.inputs, op.outputs, op.options, op.version, custom_code=op.custom_code)
    b.set_inputs(ir.inputs)
    b.set_outputs(ir.outputs)
    return b.finish()


_I32_MAX = 2**31 - 1
_HUGE_DIMS = (_I32_MAX, 2**31 - 2, 1 << 30, 1 << 24, 1 << 20, 65536, 46341, 100000)
_INT_EDGE = (0, -1, 1, 2, -2**31, _I32_MAX, 1 << 30, 3, 7, 1000, 65535, -1000)


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def _op_tensors(ir: IR) -> list[int]:
    used = sorted({i for op in ir.ops for i in op.inputs + op.outputs if i >= 0})
    return used or list(range(len(ir.tensors)))


def smut_shape(ir: IR, rng: np.random.Generator) -> str:
    i = _pick(rng, _op_tensors(ir))
    t = ir.tensors[i]
    old = list(t.shape)
    choice = rng.integers(6)
    if choice == 0 and t.shape:
        d = int(rng.integers(len(t.shape)))
        t.shape[d] = max(0, t.shape[d] + int(_pick(rng, (-1, 1, 2, -2, 5))))
    elif choice == 1 and t.shape:
        t.shape[int(rng.integers(len(t.shape)))] = 0
    elif choice == 2:
        t.shape.insert(int(rng.integers(len(t.shape) + 1)), int(_pick(rng, (1, 2, 3))))
    elif choice == 3 and t.shape:
        t.shape.pop(int(rng.integers(len(t.shape))))
    elif choice == 4:
        t.shape = [int(d) for d in rng.integers(0, 9, int(rng.integers(0, 7)))]
    else:
        t.shape = t.shape[::-1]
    if rng.random() < 0.5:
        t.signature = list(t.shape)
    return f"tensor {i} shape {old} -> {t.shape}"


def smut_huge_shape(ir: IR, rng: np.random.Generator) -> str:
    i = _pick(rng, _op_tensors(ir))
    t = ir.tensors[i]
    old = list(t.shape)
    if rng.random() < 0.15:  # element counts that wrap around 2**64 to 0 in int64 arithmetic
        t.shape = [65536] * 4 + [int(rng.integers(1, 4))] * int(rng.integers(0, 2))
    elif not t.shape or rng.random() < 0.3:
        t.shape = [int(_pick(rng, _HUGE_DIMS)) for _ in range(int(rng.integers(1, 6)))]
    else:
        for _ in range(int(rng.integers(1, 3))):
            t.shape[int(rng.integers(len(t.shape)))] = int(_pick(rng, _HUGE_DIMS))
    t.signature = list(t.shape)
    return f"tensor {i} shape {old} -> {t.shape}"


def smut_tensor_type(ir: IR, rng: np.random.Generator) -> str:
    from pydeeplab.tflite.schema import TensorType

    i = _pick(rng, _op_tensors(ir))
    t = ir.tensors[i]
    old = TensorType(t.type)
    new = _pick(rng, [tt for tt in TensorType if tt != old])
    t.type = int(new)
    if t.data is not None and old.dtype is not None and new.dtype is not None and rng.random() < 0.8:
        # Convert the values so that the size still matches: the error must come from the plan.
        with np.errstate(all="ignore"):
            t.data = np.frombuffer(t.data, old.dtype).astype(new.dtype).tobytes()
    return f"tensor {i} type {old.name} -> {new.name}"


def smut_quant(ir: IR, rng: np.random.Generator) -> str:
    from pydeeplab.tflite.model import Quantization

    cands = [i for i in _op_tensors(ir) if ir.tensors[i].quant is not None] or _op_tensors(ir)
    i = _pick(rng, cands)
    t = ir.tensors[i]
    q = t.quant
    scales = np.array([0.05], np.float32) if q is None else np.array(q.scales, np.float32)
    zps = np.array([0], np.int64) if q is None else np.array(q.zero_points, np.int64)
    dim = 0 if q is None else q.quantized_dimension
    choice = rng.integers(8)
    if choice == 0:
        t.quant = None
        return f"tensor {i}: quantization removed"
    if choice == 1 and scales.size:
        scales[int(rng.integers(scales.size))] = _pick(
            rng, (0.0, -0.5, np.nan, np.inf, 1e-30, 1e30, 3e38, 1e-45, -0.0))
    elif choice == 2 and zps.size:
        zps[int(rng.integers(zps.size))] = _pick(rng, (-1, 256, -129, 128, 2**31, -2**40, 65536, 255, -128))
    elif choice == 3:
        scales = np.concatenate([scales, scales[:1]])  # one more per-channel scale than channels
    elif choice == 4:
        zps = np.zeros(int(rng.integers(0, 5)), np.int64)
    elif choice == 5:
        dim = int(_pick(rng, (-1, 1, 3, 4, 100)))
    elif choice == 6:
        scales = np.zeros(0, np.float32)
    else:
        scales = rng.uniform(1e-3, 1, int(rng.integers(2, 9))).astype(np.float32)
        zps = np.zeros(scales.size, np.int64)
        dim = int(rng.integers(0, 4))
    t.quant = Quantization(scales=scales, zero_points=zps, quantized_dimension=dim)
    return f"tensor {i}: quantization scales {scales.tolist()} zero points {zps.tolist()} dim {dim}"


def _any_tensor(ir: IR, rng: np.random.Generator, allow_absent: bool = True) -> int:
    if allow_absent and rng.random() < 0.15:
        return -1
    return int(rng.integers(len(ir.tensors)))


def smut_arity(ir: IR, rng: np.random.Generator) -> str:
    k = int(rng.integers(len(ir.ops)))
    op = ir.ops[k]
    choice = rng.integers(6)
    if choice == 0 and op.inputs:
        op.inputs.pop(int(rng.integers(len(op.inputs))))
        what = "drop an input"
    elif choice == 1:
        op.inputs.insert(int(rng.integers(len(op.inputs) + 1)), _any_tensor(ir, rng))
        what = "add an input"
    elif choice == 2 and op.outputs:
        op.outputs.pop(int(rng.integers(len(op.outputs))))
        what = "drop an output"
    elif choice == 3:
        ir.tensors.append(IRTensor(f"extra{len(ir.tensors)}", ir.tensors[op.outputs[0]].type if op.outputs else 0,
                                   [1, 2, 2, 1], None, None, None))
        op.outputs.append(len(ir.tensors) - 1)
        what = "add an output"
    elif choice == 4:
        op.inputs = []
        what = "no inputs"
    else:
        op.inputs = op.inputs + op.inputs
        what = "inputs doubled"
    return f"operator {k}: {what} -> inputs {op.inputs} outputs {op.outputs}"


def smut_rewire(ir: IR, rng: np.random.Generator) -> str:
    k = int(rng.integers(len(ir.ops)))
    op = ir.ops[k]
    if rng.random() < 0.7 and op.inputs:
        j = int(rng.integers(len(op.inputs)))
        old = op.inputs[j]
        op.inputs[j] = _any_tensor(ir, rng)
        return f"operator {k} input {j}: tensor {old} -> {op.inputs[j]}"
    if not op.outputs:
        return "no output to rewire"
    j = int(rng.integers(len(op.outputs)))
    old = op.outputs[j]
    op.outputs[j] = _any_tensor(ir, rng, allow_absent=rng.random() < 0.1)
    return f"operator {k} output {j}: tensor {old} -> {op.outputs[j]}"


def smut_order(ir: IR, rng: np.random.Generator) -> str:
    n = len(ir.ops)
    choice = rng.integers(4)
    if choice == 0 and n > 1:
        a, c = (int(v) for v in rng.choice(n, 2, replace=False))
        ir.ops[a], ir.ops[c] = ir.ops[c], ir.ops[a]
        return f"swap operators {a} and {c}"
    if choice == 1 and n > 1:
        a = int(rng.integers(n - 1))
        c = int(rng.integers(a + 1, n))
        # Cycle: an early operator reads what a later one writes, whose inputs depend on it.
        early, late = ir.ops[a], ir.ops[c]
        if early.inputs and late.outputs:
            early.inputs[int(rng.integers(len(early.inputs)))] = late.outputs[0]
        return f"cycle: operator {a} reads operator {c}'s output"
    if choice == 2:
        k = int(rng.integers(n))
        if ir.ops[k].inputs and ir.ops[k].outputs:
            ir.ops[k].inputs[0] = ir.ops[k].outputs[0]
        return f"operator {k} reads its own output"
    if choice == 3 and n > 1:
        k = int(rng.integers(n))
        if rng.random() < 0.5:
            del ir.ops[k]
            return f"delete operator {k}"
        ir.ops.insert(int(rng.integers(n + 1)), copy.deepcopy(ir.ops[k]))
        return f"duplicate operator {k}"
    order = rng.permutation(n)
    ir.ops = [ir.ops[i] for i in order]
    return f"operators permuted {order.tolist()}"


_OPCODES_OF_INTEREST = (0, 1, 2, 3, 4, 6, 9, 14, 17, 18, 19, 21, 22, 23, 25, 28, 34, 37, 38, 39, 40, 41,
                        43, 45, 56, 60, 67, 74, 79, 82, 97, 114, 117, 32, 126, 200)


def smut_opcode(ir: IR, rng: np.random.Generator) -> str:
    from pydeeplab.tflite.options import default_options
    from pydeeplab.tflite.schema import BuiltinOperator

    k = int(rng.integers(len(ir.ops)))
    op = ir.ops[k]
    old = op.opcode
    op.opcode = int(_pick(rng, _OPCODES_OF_INTEREST))
    try:
        new_default = default_options(BuiltinOperator(op.opcode))
    except ValueError:
        new_default = None
    if op.options is None or new_default is None or type(op.options) is not type(new_default):
        op.options = new_default
    if op.opcode == BuiltinOperator.CUSTOM:
        op.custom_code = "FuzzOp"
    if rng.random() < 0.2:
        op.version = int(_pick(rng, (0, 2, 7, 100, -1)))
    return f"operator {k} opcode {old} -> {op.opcode} (version {op.version})"


def smut_options(ir: IR, rng: np.random.Generator) -> str:
    cands = [k for k, op in enumerate(ir.ops) if op.options is not None and dataclasses.fields(op.options)]
    if not cands:
        return "no options to mutate"
    k = _pick(rng, cands)
    op = ir.ops[k]
    changes = {}
    fields = dataclasses.fields(op.options)
    for f in [fields[int(i)] for i in rng.choice(len(fields), int(rng.integers(1, 3)), replace=True)]:
        kind, enum_type = f.metadata["kind"], f.metadata["enum"]
        value = getattr(op.options, f.name)
        if kind.startswith("vector"):
            new = tuple(int(_pick(rng, _INT_EDGE)) for _ in range(int(rng.integers(0, 6))))
        elif enum_type is not None:
            members = list(enum_type)
            new = _pick(rng, members) if rng.random() < 0.85 else int(rng.integers(-128, 128))
        elif kind == "bool":
            new = not value
        elif kind == "float32":
            new = float(_pick(rng, (0.0, -1.0, np.nan, np.inf, 1e30, 1e-30, 2.0)))
        elif kind == "int8":
            new = int(rng.integers(-128, 128))
        else:
            new = int(_pick(rng, _INT_EDGE))
        changes[f.name] = new
    op.options = dataclasses.replace(op.options, **changes)
    return f"operator {k} options {changes}"


def smut_const_values(ir: IR, rng: np.random.Generator) -> str:
    from pydeeplab.tflite.schema import TensorType

    consts = [i for i, t in enumerate(ir.tensors) if t.data is not None and TensorType(t.type).dtype is not None]
    if not consts:
        return "no constants"
    # Small integer constants (sizes, axes, paddings, shapes) are the interesting ones.
    small = [i for i in consts if len(ir.tensors[i].data) <= 64 and TensorType(ir.tensors[i].type).dtype.kind in "iu"]
    i = _pick(rng, small) if small and rng.random() < 0.7 else _pick(rng, consts)
    t = ir.tensors[i]
    dtype = TensorType(t.type).dtype
    values = np.frombuffer(t.data, dtype).copy()
    if values.size == 0:
        return f"tensor {i}: empty constant"
    j = int(rng.integers(values.size))
    if dtype.kind == "f":
        values[j] = _pick(rng, (np.nan, np.inf, -np.inf, 3e38, -3e38, 0.0, 1e-40))
        if rng.random() < 0.3:
            values[:] = _pick(rng, (np.nan, np.inf, 0.0))
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        cand = [v for v in (0, -1, 1, 2, 4, 7, -2, 100000, info.min, info.max, 1 << 20) if info.min <= v <= info.max]
        values[j] = _pick(rng, cand)
    else:
        values[j] = not values[j]
    t.data = values.tobytes()
    return f"tensor {i} ({t.name}): element {j} -> {values[j]!r}"


def smut_graph_io(ir: IR, rng: np.random.Generator) -> str:
    n = len(ir.tensors)
    choice = rng.integers(7)
    if choice == 0:
        ir.outputs = []
        return "no graph outputs"
    if choice == 1:
        ir.inputs = []
        return "no graph inputs"
    if choice == 2:
        ir.inputs.append(int(rng.integers(n)))
        return f"graph inputs -> {ir.inputs}"
    if choice == 3:
        ir.outputs.append(int(rng.integers(n)))
        return f"graph outputs -> {ir.outputs}"
    if choice == 4 and ir.inputs:
        ir.inputs = ir.inputs + ir.inputs
        return f"graph inputs duplicated {ir.inputs}"
    if choice == 5:
        t = ir.tensors[int(rng.integers(n))]
        t.is_variable = True
        return f"tensor {t.name} made variable"
    # A graph input that no operator reads, of a random type.
    from pydeeplab.tflite.schema import TensorType

    tt = _pick(rng, list(TensorType))
    ir.tensors.append(IRTensor(f"unused{n}", int(tt), [1, 3], None, None, None))
    ir.inputs.append(n)
    if rng.random() < 0.5:
        ir.outputs.append(n)
    return f"unused graph input {n} of type {tt.name}"


def smut_geometry(ir: IR, rng: np.random.Generator) -> str:
    """Plausible, valid-looking options (small strides, dilations and filters, either
    padding, any activation, resize flags): models that plan, so that the kernels run
    with many window geometries. The Corpus resizes the input too."""
    from pydeeplab.tflite.schema import Activation, Padding

    cands = [k for k, op in enumerate(ir.ops) if op.options is not None and dataclasses.fields(op.options)]
    if not cands:
        return "no options"
    changes = []
    for k in {int(_pick(rng, cands)) for _ in range(int(rng.integers(1, 4)))}:
        op = ir.ops[k]
        new = {}
        for f in dataclasses.fields(op.options):
            if f.name.startswith(("stride", "dilation")):
                new[f.name] = int(rng.integers(1, 4))
            elif f.name.startswith("filter_"):
                new[f.name] = int(rng.integers(1, 6))
            elif f.name == "padding":
                new[f.name] = _pick(rng, list(Padding))
            elif f.name == "fused_activation_function":
                new[f.name] = _pick(rng, [Activation.NONE, Activation.RELU, Activation.RELU6,
                                          Activation.RELU_N1_TO_1])
            elif f.name in ("align_corners", "half_pixel_centers"):
                new[f.name] = bool(rng.random() < 0.5)
        if new.get("align_corners") and new.get("half_pixel_centers"):
            new["half_pixel_centers"] = False  # TFLite refuses both
        op.options = dataclasses.replace(op.options, **new)
        changes.append(f"operator {k} {new}")
    return "; ".join(changes)


STRUCT_MUTATORS = {
    "shape": smut_shape, "huge_shape": smut_huge_shape, "tensor_type": smut_tensor_type, "quant": smut_quant,
    "arity": smut_arity, "rewire": smut_rewire, "order": smut_order, "opcode": smut_opcode,
    "options": smut_options, "const_values": smut_const_values, "graph_io": smut_graph_io,
    "geometry": smut_geometry,
}

# (mutator, weight): bytes, structure, and "resize" (the API: resize_tensor_input before allocating)
WEIGHTS = {
    "bitflip": 10, "byterun": 5, "truncate": 6, "offset": 7, "veclen": 5, "vtable": 5, "splice": 2,
    "shape": 7, "huge_shape": 4, "tensor_type": 6, "quant": 6, "arity": 5, "rewire": 6, "order": 5,
    "opcode": 3, "options": 8, "const_values": 6, "graph_io": 3, "resize": 5, "stack": 6, "geometry": 8,
}


# ---------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------


@dataclass
class Case:
    """One fuzz case: the mutated bytes and what to do with them."""

    index: int
    seed: int
    model: str  # seed model name
    mutator: str
    description: str
    data: bytes = field(repr=False)
    resize: tuple[int, list[int]] | None = None  # (graph input position, shape)
    invoke: bool = True

    def spec(self) -> dict:
        return {"index": self.index, "seed": self.seed, "model": self.model, "mutator": self.mutator,
                "description": self.description, "resize": self.resize, "invoke": self.invoke}

    @property
    def name(self) -> str:
        if self.seed < 0:  # a systematic case: named by its model
            return f"sys-{self.model}-{self.index:07d}"
        return f"case-{self.seed}-{self.index:07d}"


class Corpus:
    """The seed models and the deterministic case generator."""

    def __init__(self, synthetic: dict[str, bytes], real: dict[str, bytes], real_invoke: float = 0.0):
        self.seeds = {**synthetic, **real}
        self.synthetic = list(synthetic)
        self.real = list(real)
        self.real_invoke = real_invoke
        self._layouts: dict[str, Layout] = {}

    @classmethod
    def default(cls, with_real: bool = True, real_invoke: float = 0.0) -> Corpus:
        real = {k: p.read_bytes() for k, p in real_seeds().items()} if with_real else {}
        return cls(synthetic_seeds(), real, real_invoke)

    def layout(self, name: str) -> Layout:
        if name not in self._layouts:
            self._layouts[name] = layout(self.seeds[name])
        return self._layouts[name]

    def case(self, index: int, seed: int = 0, *, model: str | None = None, mutator: str | None = None) -> Case:
        """Case ``index`` of the campaign ``seed``: the same numbers give the same bytes."""
        rng = np.random.default_rng([seed, index])
        if model is None:
            r = rng.random()  # drawn even without real models, so that synthetic cases stay the same
            pool = self.real if self.real and r < 0.25 else self.synthetic
            model = pool[int(rng.integers(len(pool)))]
        if mutator is None:
            names = list(WEIGHTS)
            w = np.array([WEIGHTS[k] for k in names], np.float64)
            mutator = names[int(rng.choice(len(names), p=w / w.sum()))]
        data = self.seeds[model]
        invoke = model in self.synthetic or rng.random() < self.real_invoke
        resize = None
        if mutator in BYTE_MUTATORS:
            data, desc = BYTE_MUTATORS[mutator](data, self.layout(model), rng)
        elif mutator in STRUCT_MUTATORS or mutator == "stack":
            ir = to_ir(data)
            steps = ([mutator] if mutator != "stack" else
                     [str(_pick(rng, list(STRUCT_MUTATORS))) for _ in range(int(rng.integers(2, 4)))])
            desc = "; ".join(f"{s}: {STRUCT_MUTATORS[s](ir, rng)}" for s in steps)
            try:
                data = from_ir(ir)
            except (ValueError, OverflowError, TypeError) as exc:  # a value the writer cannot encode
                desc += f" (not serializable: {exc}; the seed runs unchanged)"
            if mutator == "geometry" and rng.random() < 0.7:
                resize = self._plausible_resize(model, rng)
                desc += f"; resize input 0 to {resize[1]}"
        elif mutator == "resize":
            resize, desc = self._resize(model, rng)
        elif mutator in SELFTEST:
            desc = "a deliberate crash, to test the harness"
        else:
            raise ValueError(f"unknown mutator {mutator!r}")
        return Case(index, seed, model, mutator, desc, data, resize, invoke)

    def _plausible_resize(self, model: str, rng: np.random.Generator) -> tuple[int, list[int]]:
        """Input 0 with another batch and, where the model allows it, another height and width."""
        from pydeeplab.tflite.reader import read_model

        g = read_model(self.seeds[model]).main
        shape = list(g.tensors[g.inputs[0]].shape)
        if len(shape) == 4:
            shape[0] = int(rng.integers(1, 3))
            if model.startswith(("geometry", "zoo")):
                shape[1], shape[2] = int(rng.integers(1, 41)), int(rng.integers(1, 41))
        return 0, shape

    def _resize(self, model: str, rng: np.random.Generator) -> tuple[tuple[int, list[int]], str]:
        from pydeeplab.tflite.reader import read_model

        g = read_model(self.seeds[model]).main
        pos = int(rng.integers(len(g.inputs)))
        shape = list(g.tensors[g.inputs[pos]].shape)
        choice = rng.integers(6)
        if choice == 0:
            shape = [int(d) for d in rng.integers(0, 40, int(rng.integers(0, 6)))]
        elif choice == 1 and shape:
            shape[int(rng.integers(len(shape)))] = 0
        elif choice == 2 and shape:
            shape[int(rng.integers(len(shape)))] = int(_pick(rng, _HUGE_DIMS + (2**32, 2**40, 2**63)))
        elif choice == 3 and shape:
            shape[int(rng.integers(len(shape)))] = -int(rng.integers(1, 5))
        elif choice == 4 and len(shape) == 4:
            shape = [int(rng.integers(1, 3)), int(rng.integers(1, 40)), int(rng.integers(1, 40)), shape[3]]
        else:
            shape = shape + [1]
        return (pos, shape), f"resize input {pos} to {shape}"


def systematic_cases(model: str, data: bytes, lay: Layout | None = None, start: int = 0) -> Iterator[Case]:
    """Every truncation at a table/vector boundary, every 32-bit offset and every vector
    length set to bad values, every vtable entry zeroed or pointed past its table: the
    exhaustive byte-level corruptions of one model, generated lazily (``start`` numbers
    the cases)."""
    lay = layout(data) if lay is None else lay
    index = start

    def case(mutator: str, desc: str, new: bytes) -> Case:
        nonlocal index
        index += 1
        return Case(index - 1, -1, model, mutator, desc, new)

    for cut in lay.boundaries():
        yield case("truncate", f"truncate at {cut} of {len(data)}", data[:cut])
    for p in lay.offsets:
        old = struct.unpack_from("<I", data, p)[0]
        for value in (0, 0xFFFFFFFF, len(data) - p, old + 2, (-p) & 0xFFFFFFFF):
            buf = bytearray(data)
            _put_u32(buf, p, value)
            yield case("offset", f"offset at {p}: {old} -> {value}", bytes(buf))
    for p in lay.veclens:
        old = struct.unpack_from("<I", data, p)[0]
        for value in (old + 1, 0x7FFFFFFF, 0xFFFFFFFF, 0):
            buf = bytearray(data)
            _put_u32(buf, p, value)
            yield case("veclen", f"vector length at {p}: {old} -> {value}", bytes(buf))
    for vt, vt_len in lay.vtables:
        for entry in range(vt + 4, vt + vt_len, 2):
            for value in (0, 0xFFFF):
                buf = bytearray(data)
                struct.pack_into("<H", buf, entry, value)
                yield case("vtable", f"vtable entry at {entry} -> {value}", bytes(buf))


BAD_SCALES = (0.0, -0.5, float("nan"), float("inf"), 1e-45, 3e38)
BAD_ZERO_POINTS = (-129, 256, 65536, -2**40)


def quantization_sweep(model: str, data: bytes, start: int = 0) -> Iterator[Case]:
    """Every quantized tensor of a model with each bad scale and each out-of-range zero
    point in turn (the structural counterpart of systematic_cases)."""
    from pydeeplab.tflite.model import Quantization

    base = to_ir(data)
    index = start
    for i, t in enumerate(base.tensors):
        if t.quant is None or t.quant.scales.size == 0:
            continue
        variants = [(f"scale {v}", np.full_like(np.asarray(t.quant.scales, np.float32), v), None) for v in BAD_SCALES]
        variants += [(f"zero point {v}", None, v) for v in BAD_ZERO_POINTS]
        for what, scales, zp in variants:
            ir = copy.deepcopy(base)
            q = ir.tensors[i].quant
            zps = np.asarray(q.zero_points, np.int64).copy()
            if zp is not None:
                zps[:] = zp
            ir.tensors[i].quant = Quantization(scales=np.asarray(q.scales if scales is None else scales, np.float32),
                                               zero_points=zps, quantized_dimension=q.quantized_dimension)
            yield Case(index, -1, model, "quant", f"tensor {i} ({t.name}): {what}", from_ir(ir))
            index += 1


# ---------------------------------------------------------------------------------------
# Running one case (in the worker, or in-process in tests)
# ---------------------------------------------------------------------------------------


def _fill(shape: tuple[int, ...], dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    """An input value: mostly ordinary numbers, sometimes the extremes of the type."""
    special = rng.random() < 0.15
    if dtype.kind == "f":
        if special:
            return np.full(shape, _pick(rng, (np.nan, np.inf, -np.inf, 3e38, 0.0)), dtype)
        return (rng.standard_normal(shape) * 2).astype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if special:
            return np.full(shape, _pick(rng, (info.min, info.max, 0)), dtype)
        return rng.integers(info.min, int(info.max) + 1, shape, dtype=dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    return np.zeros(shape, dtype)


def execute(data: bytes, *, resize=None, invoke: bool = True, backend: str = "numba",
            input_seed: int = 0, num_threads: int | None = None, differential: bool = False) -> dict:
    """Load, allocate and (optionally) invoke a model; classify what happened.

    Returns {"kind": "ok" | "ModelError" | "ValueError" | "exception" | "memory",
    "stage", "type", "message", "traceback"}. Only the first three are allowed.
    With ``differential``, a model that runs is also run by LiteRT (BUILTIN_REF) on the
    same inputs: outputs outside the numerical contract make the kind "mismatch", and
    "litert" says whether LiteRT refused the model.
    """
    from pydeeplab import Interpreter

    stage = "load"
    try:
        it = Interpreter(model_content=data, backend=backend, num_threads=num_threads)
        stage = "details"
        _details(it)
        if resize is not None:
            stage = "resize"
            pos, shape = resize
            inputs = it.get_input_details()
            if pos < len(inputs):
                it.resize_tensor_input(inputs[pos]["index"], shape)
        stage = "allocate"
        it.allocate_tensors()
        stage = "details"  # what tools such as verify read, after planning as before it
        _details(it)
        if invoke:
            stage = "set_tensor"
            rng = np.random.default_rng(input_seed)
            feeds = []
            for d in it.get_input_details():
                if d["dtype"] is None:
                    continue
                size = int(np.prod(d["shape"], dtype=np.int64))
                if size > (256 << 20):  # the plan accepted a huge input: do not fill it
                    continue
                feeds.append((d["index"], _fill(tuple(int(x) for x in d["shape"]), np.dtype(d["dtype"]), rng)))
                it.set_tensor(*feeds[-1])
            stage = "invoke"
            it.invoke()
            stage = "get_tensor"
            outputs = [it.get_tensor(d["index"]) for d in it.get_output_details()]
            if differential:
                stage = "differential"
                return _differential(data, feeds, outputs, it)
        return {"kind": "ok", "stage": "done"}
    except Exception as exc:  # noqa: BLE001 - classifying every failure is the point
        return classify(exc, stage)


def _max_error(ours: np.ndarray | None, ref: np.ndarray, finite: np.ndarray, chunk: int = 1 << 22) -> float:
    """max |ours - ref| over the finite reference values (max |ref| for ``ours`` None), in float64,
    a few million values at a time (a whole 60-million-value output in float64 took 480 MiB: over a
    worker's memory limit)."""
    a, b, f = None if ours is None else ours.reshape(-1), ref.reshape(-1), finite.reshape(-1)
    largest = 0.0
    for k in range(0, b.size, chunk):
        keep = f[k : k + chunk]
        r = b[k : k + chunk][keep].astype(np.float64)
        d = r if a is None else a[k : k + chunk][keep].astype(np.float64) - r
        largest = max(largest, float(np.abs(d).max(initial=0.0)))
    return largest


def _differential(data: bytes, feeds: list[tuple[int, np.ndarray]], outputs: list[np.ndarray], ours) -> dict:
    """Run the model in LiteRT's reference kernels on the same inputs and compare the outputs (``ours``:
    our interpreter, as run). An output outside the contract's whole-op bounds (:func:`_difference`) is
    judged by its real check, each operator fed LiteRT's own inputs (:func:`_isolated_misfit`): float
    errors grow along a chain of operators each within its own (the 257 model: 3.5e-4 on logits up to
    23), and a mixed graph's integer output can follow them. Only a misfit operator makes a mismatch."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        lite = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                           experimental_preserve_all_tensors=True)
        for index, value in feeds:
            lite.resize_tensor_input(index, list(value.shape))
        lite.allocate_tensors()
        for index, value in feeds:
            lite.set_tensor(index, value)
        lite.invoke()
        refs = [lite.get_tensor(d["index"]) for d in lite.get_output_details()]
    except Exception as exc:  # noqa: BLE001 - LiteRT's refusal is information, not a failure
        return {"kind": "ok", "stage": "done", "litert": f"refused: {str(exc)[:300]}"}
    problems = [(k, p) for k, (mine, ref) in enumerate(zip(outputs, refs)) if (p := _difference(mine, ref))]
    if not problems:
        return {"kind": "ok", "stage": "done", "litert": "agrees"}
    k, problem = problems[0]
    unjudged: list[int] = []
    try:
        misfit = _isolated_misfit(ours, lite, unjudged)
    except Exception as exc:  # noqa: BLE001 - the difference stands, with why it could not be judged
        misfit = f"the check fed LiteRT's inputs failed: {type(exc).__name__}: {str(exc)[:200]}"
    if misfit is not None:
        return {"kind": "mismatch", "stage": "differential", "type": "mismatch",
                "message": f"output {k}: {problem}; {misfit}"}
    return {"kind": "ok", "stage": "done", "litert": "noted: " + "; ".join(f"output {k}: {p}" for k, p in problems)
            + "; every operator within the contract fed LiteRT's inputs"
            + (f" (not judged, fed values near the float32 limit: operators {_listed(unjudged)})" if unjudged else "")}


def _listed(indices: list[int], most: int = 8) -> str:
    """``indices`` as text, the first ``most`` of them."""
    return ", ".join(map(str, indices[:most])) + (f" and {len(indices) - most} more" if len(indices) > most else "")


def _difference(mine: np.ndarray, ref: np.ndarray) -> str | None:
    """How ``mine`` is outside the contract held against ``ref`` (LiteRT's), or None: float within
    1e-5 x (1 + max |ref|) over ref's finite values, and non-finite where ref is; integers identical."""
    if mine.shape != ref.shape or mine.dtype != ref.dtype:
        return f"shape/dtype {mine.shape} {mine.dtype}, LiteRT {ref.shape} {ref.dtype}"
    if ref.dtype.kind != "f":
        differ = int(np.count_nonzero(mine != ref))
        return f"{differ} of {ref.size} elements differ" if differ else None
    finite = np.isfinite(ref)
    if not np.array_equal(np.isfinite(mine), finite):
        return "non-finite values differ"
    err, tol = _max_error(mine, ref, finite), 1e-5 * (1 + _max_error(None, ref, finite))
    return f"max error {err:.3g} > {tol:.3g}" if err > tol else None


def _isolated_misfit(ours, lite, unjudged: list[int]) -> str | None:
    """The first operator of ``ours`` (an allocated pydeeplab Interpreter) whose outputs, fed LiteRT's
    inputs (``lite``, run with every tensor kept), are outside the contract (:func:`_difference`), or
    None. An operator fed a finite float of magnitude 1e38 or more is not judged (its index is appended
    to ``unjudged``): its float sums overflow to inf in one order and not in another (TFLite's clamps
    turn an inf into the largest float, 3.4e38), and TFLite's conversions of such values to integers are
    undefined. Nor is a hybrid operator (float32 input, int8 weights) fed a NaN or an infinity: it
    converts ``NaN * 0`` or ``NaN`` to int32, undefined in C++ (pydeeplab quantizes such an input as
    zeros; see docs/operators.md); nor a hybrid FULLY_CONNECTED with a weight of -128
    (:func:`_hybrid_unjudged`)."""
    from pydeeplab.summary import hybrid_operators

    graph = ours.model.main
    hybrid = set(hybrid_operators(graph))
    for op in graph.operators:
        feeds = [None if i < 0 else graph.tensors[i].data if graph.tensors[i].data is not None else lite.get_tensor(i)
                 for i in op.inputs]
        if any(_near_float_limit(v) for v in feeds if v is not None) or (
                op.index in hybrid and _hybrid_unjudged(op, feeds, graph.tensors[op.inputs[1]].quantization)):
            unjudged.append(op.index)
            continue
        for index, mine in zip(op.outputs, ours.run_op(op.index, feeds)):
            problem = _difference(mine, lite.get_tensor(index))
            if problem:
                return f"operator {op.index} ({op.name}) fed LiteRT's inputs: {problem}"
    return None


def _hybrid_unjudged(op, feeds: list, weights_quantization) -> bool:
    """Whether a hybrid operator's inputs leave LiteRT without a result to hold pydeeplab to: a NaN or an
    infinity in its float input (see :func:`_isolated_misfit`); a weight scale of 1e38 or more (the
    products of the sums and the scales overflow to inf in one order and not in another, as float sums
    of values near the limit do); or a FULLY_CONNECTED weight of -128, whose products LiteRT 2.3.0's
    x86 kernel negates in 8 bits (pydeeplab sums exactly; ``pydeeplab/ops/fully_connected.py``)."""
    if any(v.dtype.kind == "f" and not np.isfinite(v).all() for v in feeds if v is not None):
        return True
    if weights_quantization is not None and (np.abs(weights_quantization.scales) >= 1e38).any():
        return True
    return op.name == "FULLY_CONNECTED" and feeds[1] is not None and bool((feeds[1] == -128).any())


def _near_float_limit(v: np.ndarray) -> bool:
    """Whether float array ``v`` holds a finite value of magnitude 1e38 or more (:func:`_fill`'s 3e38)."""
    return v.dtype.kind == "f" and bool((np.abs(v[np.isfinite(v)]) >= 1e38).any())


def _details(it) -> None:
    it.get_input_details()
    it.get_output_details()
    it.get_tensor_details()
    it._get_ops_details()
    it.get_signature_list()


def classify(exc: BaseException, stage: str) -> dict:
    """The outcome record of an exception raised at ``stage`` (call inside the except block)."""
    from pydeeplab import ModelError

    if isinstance(exc, ModelError):
        kind = "ModelError"
    elif isinstance(exc, ValueError):
        kind = "ValueError"
    elif isinstance(exc, MemoryError):
        kind = "memory"
    else:
        kind = "exception"
    out = {"kind": kind, "stage": stage, "type": type(exc).__name__, "message": str(exc)[:2000]}
    if kind == "ValueError":
        # Allowed, but a ValueError that pydeeplab did not raise itself (numpy's "cannot
        # reshape", say) means a check was bypassed: the report lists where they came from.
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        out["origin"] = f"{Path(frame.filename).name}:{frame.lineno} {frame.name}"
    if kind in ALLOWED and not str(exc).strip():
        out.update(kind="exception", message=f"{type(exc).__name__} without a message")
    if out["kind"] not in ALLOWED:
        out["traceback"] = traceback.format_exc()[-6000:]
    return out


def _selftest(kind: str, path: str) -> dict:
    """Deliberate failures, so that tests can check that the harness catches each one."""
    if kind == "selftest-slow-once":  # slow the first time only, like a first JIT compile
        marker = Path(path + ".seen")
        if not marker.exists():
            marker.touch()
            time.sleep(3)
        return {"kind": "ok", "stage": "done"}
    if kind == "selftest-segv":
        import ctypes

        ctypes.string_at(0)
    if kind == "selftest-hang":
        while True:
            time.sleep(0.05)
    if kind == "selftest-memory":
        # Touch memory until the limit bites (RLIMIT_AS -> MemoryError, or the parent's RSS poll).
        chunks = []
        while True:
            chunks.append(np.ones(64 << 20, np.uint8))
    raise KeyError("selftest exception")


# ---------------------------------------------------------------------------------------
# The worker process
# ---------------------------------------------------------------------------------------


def _status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS, VmHWM, VmSize of a process, in bytes (empty if it is gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM", "VmSize", "VmPeak"):
                    out[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return out


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def _set_arena_limit(mib: float) -> None:
    """The plan's limit on activation memory, set to the fuzz budget: a model that asks for
    more must be refused with a ModelError, not allocated."""
    import pydeeplab.interpreter

    if mib <= 0:
        return
    if not hasattr(pydeeplab.interpreter, "MAX_ARENA_BYTES"):
        print("fuzz: pydeeplab.interpreter.MAX_ARENA_BYTES is gone; --arena-limit has no effect", file=sys.stderr)
    pydeeplab.interpreter.MAX_ARENA_BYTES = int(mib * (1 << 20))


def _limit_address_space(rss_limit_gib: float) -> None:
    """Cap this process's address space so that allocating past ``rss_limit_gib`` GiB of
    resident memory fails at once with MemoryError (instead of paging or the OOM killer):
    the current virtual size plus what is left of the budget."""
    if rss_limit_gib <= 0:
        return
    vm = _status()
    left = max(int(rss_limit_gib * GiB) - vm.get("VmRSS", 0), 256 << 20)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = vm.get("VmSize", 0) + left
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))


def worker_main(args: argparse.Namespace) -> None:
    """Serve cases: one JSON request per line on stdin, one JSON answer per line on the
    original stdout (library output goes to stderr, which faulthandler also uses)."""
    import faulthandler
    import warnings

    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    faulthandler.enable()
    warnings.simplefilter("ignore")
    _set_arena_limit(args.arena_limit)  # imports pydeeplab: its cost belongs to the warm-up
    seeds = json.loads(args.worker_seeds)
    baseline = {}
    for name, (path, invoke) in seeds.items():  # compile and time every kernel the seeds need
        data = Path(path).read_bytes()
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            res = execute(data, invoke=invoke, backend=args.backend, num_threads=args.threads)
            times.append(time.perf_counter() - t0)
        baseline[name] = {"seconds": min(times), "kind": res["kind"], "message": res.get("message", "")[:300]}
    vm = _status()
    _limit_address_space(args.rss_limit)
    out.write(json.dumps({"ready": True, "baseline": baseline, "status": vm}) + "\n")
    for line in sys.stdin:
        req = json.loads(line)
        _reset_peak()
        t0 = time.perf_counter()
        if req["mutator"] in SELFTEST:
            res = execute_selftest(req["mutator"], req["path"])
        else:
            data = Path(req["path"]).read_bytes()
            res = execute(data, resize=req.get("resize"), invoke=req.get("invoke", True), backend=args.backend,
                          input_seed=req["index"], num_threads=args.threads, differential=args.differential)
        res["seconds"] = round(time.perf_counter() - t0, 4)
        res["peak_rss"] = _status().get("VmHWM", 0)
        out.write(json.dumps(res) + "\n")


def execute_selftest(kind: str, path: str) -> dict:
    try:
        return _selftest(kind, path)
    except MemoryError as exc:
        return {"kind": "memory", "stage": "selftest", "type": "MemoryError", "message": str(exc)}
    except Exception as exc:  # noqa: BLE001
        return {"kind": "exception", "stage": "selftest", "type": type(exc).__name__, "message": str(exc),
                "traceback": traceback.format_exc()}


# ---------------------------------------------------------------------------------------
# The parent: workers with deadlines and memory limits
# ---------------------------------------------------------------------------------------


class Worker:
    """One worker process, restarted after every crash, hang or memory excess."""

    def __init__(self, workdir: Path, seed_paths: dict[str, str], options: argparse.Namespace, wid: int = 0):
        self.workdir, self.seed_paths, self.options, self.wid = workdir, seed_paths, options, wid
        self.proc: subprocess.Popen | None = None
        self.baseline: dict = {}
        self.restarts = -1

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["NUMBA_NUM_THREADS"] = str(self.options.threads)
        env.setdefault("PYTHONFAULTHANDLER", "1")
        if self.options.boundscheck:
            env["NUMBA_BOUNDSCHECK"] = "1"
            # Kernels compiled with bounds checks must not replace the normal cached ones.
            env["NUMBA_CACHE_DIR"] = str(Path(tempfile.gettempdir()) / "pydeeplab-fuzz-numba-boundscheck")
        return env

    def start(self) -> None:
        self.stop()
        self.restarts += 1
        self.log_path = self.workdir / f"worker{self.wid}.log"
        self.log = open(self.log_path, "wb")
        cmd = [sys.executable, "-u", str(Path(__file__).resolve()), "--worker", "--backend", self.options.backend,
               "--threads", str(self.options.threads), "--rss-limit", str(self.options.rss_limit),
               "--arena-limit", str(self.options.arena_limit),
               *(["--differential"] if self.options.differential else []),
               "--worker-seeds", json.dumps(self.seed_paths)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     env=self._env(), cwd=str(self.workdir))
        self._buf = b""
        line = self._readline(self.options.warmup_timeout, watch_memory=False)
        if not isinstance(line, dict) or not line.get("ready"):
            raise RuntimeError(f"fuzz worker failed to start: {line!r}\n{self.stderr_tail()}")
        self.baseline = line["baseline"]

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc.stdout.close()
            self.proc.stdin.close()
            self.log.close()
            self.proc = None

    def stderr_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def _readline(self, timeout: float, watch_memory: bool = True) -> dict | str:
        """The worker's next answer, or "timeout" / "memory:<rss>" / "died"."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    return "timeout"
                if sel.select(min(left, 0.05)):
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        return "died"
                    self._buf += chunk
                elif watch_memory and self.options.rss_limit > 0:
                    rss = _status(self.proc.pid).get("VmRSS", 0)
                    if rss > self.options.rss_limit * GiB:
                        return f"memory:{rss}"
        line, _, self._buf = self._buf.partition(b"\n")
        return json.loads(line)

    def run(self, case: Case, path: Path, timeout: float) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        req = dict(case.spec(), path=str(path))
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        t0 = time.monotonic()
        res = self._readline(timeout)
        if isinstance(res, dict):
            return res
        elapsed = round(time.monotonic() - t0, 3)
        if res == "timeout":
            out = {"kind": "timeout", "stage": "?", "message": f"no answer within {timeout:.1f} s"}
        elif res.startswith("memory:"):
            rss = int(res.split(":")[1])
            out = {"kind": "memory", "stage": "?", "message": f"worker RSS {rss / GiB:.2f} GiB passed the limit"}
        else:
            self.proc.wait()
            rc = self.proc.returncode
            why = f"killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"
            tail = self.stderr_tail()
            out = {"kind": "signal" if rc < 0 else "died", "stage": "?", "message": f"worker {why}",
                   "traceback": tail}
            first = re.search(r"most recent call first\):\n\s*File \"([^\"]+)\"", tail)
            if first and "ai_edge_litert" in first.group(1):
                # --differential: the oracle crashed after pydeeplab had run the model.
                out = {"kind": "ok", "stage": "done", "litert": f"crashed: {why}"}
        out["seconds"] = elapsed
        self.stop()
        return out


class Campaign:
    """Runs cases on workers, confirms timeouts, counts outcomes and saves crashes."""

    def __init__(self, corpus: Corpus, options: argparse.Namespace):
        self.corpus, self.options = corpus, options
        self.workdir = Path(tempfile.mkdtemp(prefix="pydeeplab-fuzz-"))
        seed_dir = self.workdir / "seeds"
        seed_dir.mkdir()
        self.seed_paths = {}
        for name, data in corpus.seeds.items():
            p = seed_dir / f"{name}.tflite"
            p.write_bytes(data)
            self.seed_paths[name] = (str(p), name in corpus.synthetic or corpus.real_invoke > 0)
        self.counts: collections.Counter = collections.Counter()
        self.litert: collections.Counter = collections.Counter()  # --differential: agrees / refused / noted
        self.noted: list[dict] = []  # --differential: the cases whose differences were noted, and why
        self.by_mutator: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.crashes: list[dict] = []
        self.results: dict[str, dict] = {}  # case name -> outcome (tracebacks only for crashes)
        self.slow_first_runs = 0
        self.lock = threading.Lock()
        self.baseline: dict = {}

    def _timeout(self, case: Case) -> float:
        base = self.baseline.get(case.model, {}).get("seconds", 0.0)
        return self.options.timeout + (2 * base if case.invoke else 0.5 * base)

    def _run_one(self, worker: Worker, case: Case) -> dict:
        path = self.workdir / f"w{worker.wid}.tflite"
        path.write_bytes(case.data)
        res = worker.run(case, path, self._timeout(case))
        if res["kind"] == "timeout" and case.mutator != "selftest-hang":
            # A first run may compile a new kernel specialization: confirm on a warm cache.
            slow = worker.run(case, path, self.options.confirm_timeout)
            if slow["kind"] != "timeout":
                again = worker.run(case, path, self._timeout(case))
                if again["kind"] != "timeout":
                    with self.lock:
                        self.slow_first_runs += 1
                    again["note"] = f"first run took over {self._timeout(case):.1f} s (JIT compile)"
                    return again
                res = again
        return res

    def record(self, case: Case, res: dict) -> None:
        with self.lock:
            key = res["kind"] if res["kind"] in ALLOWED else f"CRASH:{res['kind']}"
            self.counts[key] += 1
            if "litert" in res:
                self.litert[res["litert"].split(":")[0]] += 1
            self.by_mutator[case.mutator][key] += 1
            self.results[case.name] = res if res["kind"] not in ALLOWED else {
                k: res.get(k) for k in ("kind", "stage", "type", "message", "origin", "note") if k in res}
            if res.get("litert", "").startswith("noted"):
                self.noted.append({"name": case.name, "model": case.model, "mutator": case.mutator,
                                   "description": case.description[:200], "note": res["litert"][:400]})
            if res["kind"] in ALLOWED:
                return
            entry = dict(case.spec(), outcome=res, name=case.name)
            self.crashes.append(entry)
            if self.options.save:
                folder = Path(self.options.save)
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{case.name}.tflite").write_bytes(case.data)
                (folder / f"{case.name}.json").write_text(json.dumps(entry, indent=1))

    def run(self, cases: Iterable[int | Case], progress: bool = True, total: int | None = None) -> None:
        """Run cases (given by index in the campaign, or as Case objects, possibly lazily)."""
        queue = iter(cases)
        total = len(cases) if total is None and hasattr(cases, "__len__") else total
        done = [0]
        t_start = time.monotonic()

        def loop(wid: int) -> None:
            worker = Worker(self.workdir, self.seed_paths, self.options, wid)
            worker.start()
            with self.lock:
                self.baseline = self.baseline or worker.baseline
            try:
                while True:
                    with self.lock:
                        index = next(queue, None)
                    if index is None:
                        return
                    case = index if isinstance(index, Case) else self.corpus.case(
                        index, self.options.seed, mutator=self.options.mutator, model=self.options.model)
                    res = self._run_one(worker, case)
                    self.record(case, res)
                    with self.lock:
                        done[0] += 1
                        n = done[0]
                    if progress and (n % 250 == 0 or n == total):
                        rate = n / max(time.monotonic() - t_start, 1e-9)
                        print(f"[{n}/{total or '?'}] {rate:.1f} cases/s, crashes: {len(self.crashes)}", flush=True)
            finally:
                worker.stop()

        threads = [threading.Thread(target=loop, args=(w,), daemon=True) for w in range(self.options.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    @staticmethod
    def signature(outcome: dict) -> str:
        """A crash's kind, exception type and innermost pydeeplab frame: one line per bug."""
        where = ""
        for line in reversed((outcome.get("traceback") or "").splitlines()):
            m = re.match(r'\s*File ".*?/((?:pydeeplab|kernels)/[^"]+)", line (\d+), in (\S+)', line)
            if m:
                where = f" at {m.group(1)}:{m.group(2)} {m.group(3)}"
                break
        return f"{outcome['kind']} {outcome.get('type') or ''}{where}"

    def report(self) -> dict:
        return {
            "cases": sum(self.counts.values()),
            "outcomes": dict(sorted(self.counts.items())),
            "crashes": len(self.crashes),
            "litert": dict(self.litert),
            "noted": self.noted[:100],
            "crash_signatures": dict(collections.Counter(self.signature(c["outcome"]) for c in self.crashes)
                                     .most_common()),
            "slow_first_runs": self.slow_first_runs,
            "by_mutator": {k: dict(sorted(v.items())) for k, v in sorted(self.by_mutator.items())},
            "value_errors": dict(collections.Counter(
                f"{r.get('origin')}: {re.sub(r'[0-9]+', 'N', r['message'])[:120]}"
                for r in self.results.values() if r["kind"] == "ValueError").most_common(20)),
            "crash_list": [{k: c[k] for k in ("name", "model", "mutator", "description")} |
                           {"kind": c["outcome"]["kind"], "type": c["outcome"].get("type"),
                            "message": c["outcome"].get("message", "")[:300]} for c in self.crashes],
            "baseline": self.baseline,
        }

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=1000, help="number of cases (default 1000)")
    p.add_argument("--start", type=int, default=0, help="index of the first case")
    p.add_argument("--seed", type=int, default=0, help="campaign seed: (seed, index) fixes a case")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--threads", type=int, default=1, help="Numba threads per worker (default 1)")
    p.add_argument("--backend", choices=("numba", "numpy"), default="numba")
    p.add_argument("--timeout", type=float, default=5.0,
                   help="seconds a case may take beyond its seed model's own run time (default 5)")
    p.add_argument("--confirm-timeout", type=float, default=180.0,
                   help="deadline of the rerun that tells a hang from a first-time JIT compile")
    p.add_argument("--warmup-timeout", type=float, default=900.0)
    p.add_argument("--rss-limit", type=float, default=2.0, help="GiB a worker may use (default 2; 0: no limit)")
    p.add_argument("--arena-limit", type=float, default=512.0,
                   help="MiB of activations the plan may allocate (pydeeplab.interpreter.MAX_ARENA_BYTES) "
                        "in the workers (default 512; 0: the library's default)")
    p.add_argument("--save", help="folder (outside the repo) for crashing inputs and their descriptions")
    p.add_argument("--report", help="write the JSON report here")
    p.add_argument("--no-real", action="store_true", help="only the synthesized seed models")
    p.add_argument("--real-invoke", type=float, default=0.5,
                   help="fraction of real-model cases that are also invoked (default 0.5)")
    p.add_argument("--model", help="mutate only this seed model")
    p.add_argument("--mutator", help="use only this mutator (" + ", ".join(WEIGHTS) + ")")
    p.add_argument("--systematic", action="store_true",
                   help="instead of random cases, every truncation at a boundary and every offset, vector "
                        "length and vtable entry corrupted, of every seed model (or --model); --start and "
                        "--cases select a slice")
    p.add_argument("--differential", action="store_true",
                   help="also run every model that pydeeplab runs in LiteRT (BUILTIN_REF) and report outputs "
                        "outside the numerical contract as 'mismatch' (LiteRT's refusals are counted apart; a "
                        "float output off by more than 1e-5 x (1 + its max) is a mismatch only where an operator "
                        "fed LiteRT's own inputs is off by that much, else 'noted')")
    p.add_argument("--boundscheck", action="store_true",
                   help="compile kernels with NUMBA_BOUNDSCHECK=1 (own cache dir): out-of-range reads raise")
    p.add_argument("--replay", help="rerun one saved case (<case>.json next to <case>.tflite) in this process")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker-seeds", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def replay(path: str, args: argparse.Namespace) -> int:
    """Rerun a saved case in this process, under the same limits as a worker."""
    _set_arena_limit(args.arena_limit)
    _limit_address_space(args.rss_limit)
    backend = args.backend
    spec = json.loads(Path(path).read_text())
    data = Path(path).with_suffix(".tflite").read_bytes()
    print(f"{spec['name']}: {spec['model']} / {spec['mutator']}: {spec['description']}")
    res = execute(data, resize=spec.get("resize"), invoke=spec.get("invoke", True), backend=backend,
                  input_seed=spec["index"], differential=args.differential)
    print(json.dumps({k: v for k, v in res.items() if k != "traceback"}, indent=1))
    if "traceback" in res:
        print(res["traceback"])
    return 0 if res["kind"] in ALLOWED else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(args)
        return 0
    if args.replay:
        return replay(args.replay, args)
    if args.save and Path(args.save).resolve().is_relative_to(REPO):
        print("--save must be a folder outside the repository", file=sys.stderr)
        return 2
    corpus = Corpus.default(with_real=not args.no_real, real_invoke=args.real_invoke)
    campaign = Campaign(corpus, args)
    t0 = time.monotonic()
    try:
        if args.systematic:
            models = [args.model] if args.model else list(corpus.seeds)
            cases = itertools.chain.from_iterable(
                itertools.chain(systematic_cases(m, corpus.seeds[m], corpus.layout(m), start=k * 10_000_000),
                                quantization_sweep(m, corpus.seeds[m], start=k * 10_000_000 + 5_000_000))
                for k, m in enumerate(models))
            campaign.run(itertools.islice(cases, args.start, args.start + args.cases))
        else:
            campaign.run(list(range(args.start, args.start + args.cases)))
    finally:
        campaign.close()
    rep = campaign.report()
    rep["seconds"] = round(time.monotonic() - t0, 1)
    rep["command"] = " ".join([Path(sys.executable).name, "tools/fuzz.py", *(argv if argv is not None else sys.argv[1:])])
    print(f"\n{rep['cases']} cases in {rep['seconds']} s, seeds: {', '.join(corpus.seeds)}")
    for kind, n in rep["outcomes"].items():
        print(f"  {kind:20s} {n}")
    if rep["litert"]:
        print("  models that ran, in LiteRT: " + ", ".join(f"{k} {n}" for k, n in rep["litert"].items()))
    for n in rep["noted"][:5]:
        print(f"  noted {n['name']} ({n['mutator']}: {n['description'][:60]}): {n['note'][7:160]}")
    if rep["value_errors"]:
        print("ValueErrors (allowed; where they came from):")
        for what, n in rep["value_errors"].items():
            print(f"  {n:5d}  {what}")
    if rep["crash_signatures"]:
        print("crash signatures (kind, exception, innermost pydeeplab frame):")
        for what, n in rep["crash_signatures"].items():
            print(f"  {n:5d}  {what}")
    print(f"crashes: {rep['crashes']}" + (f" (saved to {args.save})" if args.save and rep["crashes"] else ""))
    for c in rep["crash_list"][:50]:
        print(f"  {c['name']} {c['model']}/{c['mutator']}: {c['kind']} {c['type']}: {c['message'][:160]}")
    if args.report:
        Path(args.report).write_text(json.dumps(rep, indent=1))
    return 1 if rep["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
