"""The builtin operators added for models in the wild (issue 11 item 3) against LiteRT's
reference kernels, on both backends: PRELU, FULLY_CONNECTED, LEAKY_RELU, DEPTH_TO_SPACE,
SPACE_TO_DEPTH, MAXIMUM, MINIMUM, DIV, SQUARED_DIFFERENCE, RSQRT, TRANSPOSE, EXP, SUM,
REDUCE_MAX, LOG_SOFTMAX, CAST, GATHER, PACK, UNPACK, SHAPE; and BATCH_MATMUL (transformer
segmenters' attention).

Float within the contract tolerance; uint8 / int8 bit-identical. Quantized unary
operators are fed all 256 input values. tools/sweep.py sweeps the same operators over
random shapes and parameters; these cases pin the edge cases by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from oracle import T, check_model, check_op, compare, quant, run_litert, run_ours_op, single_op_model

from pydeeplab.errors import ModelError
from pydeeplab.tflite.options import (
    BatchMatMulOptions, CastOptions, DepthToSpaceOptions, DivOptions, EmptyOptions, FullyConnectedOptions,
    GatherOptions, LeakyReluOptions, PackOptions, ReducerOptions, ShapeOptions, SpaceToDepthOptions, UnpackOptions)
from pydeeplab.tflite.schema import Activation, BuiltinOperator, TensorType

B = BuiltinOperator
RNG = np.random.default_rng


def _q(rng, shape, dtype, scale, zp, const=False):
    info = np.iinfo(dtype)
    return T(rng.integers(info.min, info.max + 1, size=shape).astype(dtype), quant=quant(scale, zp), const=const)


def _all256(dtype):
    return np.arange(256, dtype=np.uint8).view(dtype).reshape(1, 16, 16)


# ------------------------------------------------------------------ PRELU, LEAKY_RELU


@pytest.mark.parametrize("alpha_shape", [(1, 1, 3), (3,), (1, 5, 6, 3), (1, 1, 1, 1)])
def test_prelu_float(alpha_shape):
    rng = RNG(1)
    x = rng.standard_normal((1, 5, 6, 3)).astype(np.float32)
    a = rng.standard_normal(alpha_shape).astype(np.float32)
    check_op(B.PRELU, [T(x), T(a, const=True)], [T(None, np.float32)])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8], ids=["uint8", "int8"])
def test_prelu_quantized(dtype):
    rng = RNG(2)
    info = np.iinfo(dtype)
    for trial in range(4):
        x = T(np.tile(_all256(dtype).reshape(1, 16, 16, 1), (1, 1, 1, 3)),
              quant=quant(float(rng.uniform(0.01, 0.1)), int(rng.integers(info.min, info.max + 1))))
        a = _q(rng, (1, 1, 3) if trial % 2 else (1, 16, 16, 3), dtype, float(rng.uniform(0.002, 0.02)),
               int(rng.integers(info.min, info.max + 1)), const=trial % 2 == 1)
        out = T(None, dtype, quant=quant(float(rng.uniform(0.01, 0.1)), int(rng.integers(info.min, info.max + 1))))
        check_op(B.PRELU, [x, a], [out])


def test_leaky_relu_float():
    x = RNG(3).standard_normal((2, 4, 5, 3)).astype(np.float32) * 3
    for alpha in (0.2, 0.01, 1.5, -0.3):
        check_op(B.LEAKY_RELU, [T(x)], [T(None, np.float32)], LeakyReluOptions(alpha))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8], ids=["uint8", "int8"])
def test_leaky_relu_quantized(dtype):
    rng = RNG(4)
    info = np.iinfo(dtype)
    for alpha in (0.1, 0.2, 0.01, 0.5):
        x = T(_all256(dtype), quant=quant(float(rng.uniform(0.01, 0.1)), int(rng.integers(info.min, info.max + 1))))
        out = T(None, dtype, quant=quant(float(rng.uniform(0.01, 0.1)), int(rng.integers(info.min, info.max + 1))))
        check_op(B.LEAKY_RELU, [x], [out], LeakyReluOptions(alpha))


# ------------------------------------------------------------------- FULLY_CONNECTED


@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_fully_connected_float(keep, bias):
    rng = RNG(5)
    x = rng.standard_normal((2, 3, 8)).astype(np.float32)
    w = rng.standard_normal((5, 8)).astype(np.float32)
    inputs = [T(x), T(w, const=True)] + ([T(rng.standard_normal(5).astype(np.float32), const=True)] if bias else [])
    for act in (Activation.NONE, Activation.RELU6):
        check_op(B.FULLY_CONNECTED, inputs, [T(None, np.float32)], FullyConnectedOptions(act, keep_num_dims=keep))


def test_fully_connected_float_runtime_weights():
    """Attention blocks multiply two activations: the weights are an input, not a constant."""
    rng = RNG(6)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    w = rng.standard_normal((3, 6)).astype(np.float32)
    check_op(B.FULLY_CONNECTED, [T(x), T(w)], [T(None, np.float32)], FullyConnectedOptions())


@pytest.mark.parametrize("case", ["uint8", "int8", "int8_per_channel"])
@pytest.mark.parametrize("bias", [True, False])
def test_fully_connected_quantized(case, bias):
    rng = RNG(7)
    dtype = np.uint8 if case == "uint8" else np.int8
    info = np.iinfo(dtype)
    units, depth = 6, 40
    for trial, act in enumerate((Activation.NONE, Activation.RELU, Activation.RELU6)):
        s_in = float(rng.uniform(0.01, 0.05))
        x = _q(rng, (3, depth), dtype, s_in, int(rng.integers(info.min, info.max + 1)))
        if case == "int8_per_channel":
            ws = rng.uniform(0.002, 0.02, units).astype(np.float32)
            w = T(rng.integers(-127, 128, (units, depth)).astype(np.int8), quant=quant(ws, 0, 0), const=True)
            bs = (np.float32(s_in) * ws).astype(np.float32)
        else:
            ws = np.float32(rng.uniform(0.002, 0.02))
            zw = int(rng.integers(100, 156)) if dtype == np.uint8 else 0
            w = _q(rng, (units, depth), dtype, float(ws), zw, const=True)
            bs = np.float32(s_in) * ws
        b = T(rng.integers(-3000, 3000, units).astype(np.int32), quant=quant(bs, 0), const=True)
        out = T(None, dtype, quant=quant(float(rng.uniform(0.05, 0.3)), int(rng.integers(info.min, info.max + 1))))
        check_op(B.FULLY_CONNECTED, [x, w] + ([b] if bias else []), [out],
                 FullyConnectedOptions(act, keep_num_dims=trial == 1))


# --------------------------------------------------------------------- binary ops

SHAPES = [((2, 3, 4), (2, 3, 4)), ((1, 4, 5, 3), (3,)), ((2, 1, 3), (1, 4, 1)), ((4, 5), ())]


@pytest.mark.parametrize("opcode", [B.MAXIMUM, B.MINIMUM, B.SQUARED_DIFFERENCE, B.DIV], ids=lambda o: o.name)
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_binary_float(opcode, shapes):
    rng = RNG(8)
    a = rng.standard_normal(shapes[0]).astype(np.float32)
    b = rng.standard_normal(shapes[1]).astype(np.float32)
    opts = DivOptions(Activation.RELU6) if opcode == B.DIV else EmptyOptions()
    check_op(opcode, [T(a), T(b, const=b.ndim == 0)], [T(None, np.float32)], opts)


@pytest.mark.parametrize("opcode,dtype", [(B.MAXIMUM, np.uint8), (B.MAXIMUM, np.int8), (B.MINIMUM, np.uint8),
                                          (B.MINIMUM, np.int8), (B.SQUARED_DIFFERENCE, np.int8),
                                          (B.DIV, np.uint8)], ids=str)
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_binary_quantized(opcode, dtype, shapes):
    rng = RNG(9)
    info = np.iinfo(dtype)
    for trial in range(3):
        s = rng.uniform(0.005, 0.1, 3)
        z = rng.integers(info.min, info.max + 1, 3)
        if opcode in (B.MAXIMUM, B.MINIMUM):
            s[:], z[:] = s[0], z[0]
        a = _q(rng, shapes[0], dtype, s[0], z[0], const=len(shapes[0]) == 0)
        b = _q(rng, shapes[1], dtype, s[1], z[1], const=len(shapes[1]) == 0)
        if opcode == B.DIV:
            b.value = np.where(b.value == z[1], (z[1] + 1) % 256 if dtype == np.uint8 else z[1] ^ 1, b.value)
            b.value = b.value.astype(dtype)
            opts = DivOptions(Activation.RELU if trial == 1 else Activation.NONE)
            so = float(s[0] / s[1] * rng.uniform(0.02, 0.1))
        else:
            opts = EmptyOptions()
            squared = float(max(s[0], s[1]) ** 2 * 255 * rng.uniform(4, 40))
            so = squared if opcode == B.SQUARED_DIFFERENCE else float(s[2])
        check_op(opcode, [a, b], [T(None, dtype, quant=quant(so, z[2] if opcode != B.MAXIMUM and
                                                               opcode != B.MINIMUM else z[0]))], opts)


def test_div_int32_and_zero_divisor():
    rng = RNG(10)
    a = rng.integers(-1000, 1000, (3, 4)).astype(np.int32)
    b = rng.integers(1, 30, (3, 4)).astype(np.int32) * rng.choice([-1, 1], (3, 4)).astype(np.int32)
    check_op(B.DIV, [T(a), T(b)], [T(None, np.int32)], DivOptions())
    zero = T(np.zeros((3, 4), np.uint8), quant=quant(0.1, 0))
    for backend in ("numpy", "numba"):
        with pytest.raises(ModelError, match="division by zero"):
            run_ours_op(B.DIV, [T(a.astype(np.uint8), quant=quant(0.1, 0)), zero],
                        [T(None, np.uint8, (3, 4), quant(0.1, 0))], DivOptions(), backend)


# ------------------------------------------------------------------- unary ops


def test_exp_rsqrt_float():
    x = RNG(11).standard_normal((2, 5, 7)).astype(np.float32) * 3
    check_op(B.EXP, [T(x)], [T(None, np.float32)], EmptyOptions())
    check_op(B.RSQRT, [T(np.abs(x) + 0.01)], [T(None, np.float32)])


def test_exp_int8():
    rng = RNG(12)
    for _ in range(5):
        x = T(_all256(np.int8), quant=quant(float(rng.uniform(0.005, 0.05)), int(rng.integers(-128, 128))))
        out = T(None, np.int8, quant=quant(float(rng.uniform(0.01, 0.5)), int(rng.integers(-128, 128))))
        check_op(B.EXP, [x], [out], EmptyOptions())


def test_rsqrt_int8():
    rng = RNG(13)
    for s_in, s_out in [(0.01, 0.05), (0.5, 0.004), (3.0, 0.001), (0.0001, 1.0), (0.02, 0.02)]:
        z_in = int(rng.integers(-128, 0))
        x = np.arange(z_in, 128, dtype=np.int64).astype(np.int8).reshape(1, -1)
        out = T(None, np.int8, quant=quant(s_out, int(rng.integers(-128, 128))))
        check_op(B.RSQRT, [T(x, quant=quant(s_in, z_in))], [out])
    with pytest.raises(ModelError, match="non-negative"):
        run_ours_op(B.RSQRT, [T(np.array([-5, 3], np.int8), quant=quant(0.1, 0))],
                    [T(None, np.int8, (2,), quant(0.1, 0))], None, "numpy")


@pytest.mark.parametrize("src,dst", [(np.float32, np.int32), (np.int32, np.float32), (np.uint8, np.float32),
                                     (np.int8, np.int32), (np.float32, np.uint8), (np.int32, np.bool_),
                                     (np.bool_, np.float32), (np.int64, np.int32), (np.uint8, np.int8)], ids=str)
def test_cast(src, dst):
    rng = RNG(14)
    if np.dtype(src).kind == "f":
        x = (rng.standard_normal((3, 7)) * 50).astype(src)
        if np.dtype(dst) == np.uint8:
            x = np.abs(x)
    elif np.dtype(src) == np.bool_:
        x = rng.integers(0, 2, (3, 7)).astype(bool)
    else:
        info = np.iinfo(src)
        x = rng.integers(max(info.min, -1000), min(info.max, 1000) + 1, (3, 7)).astype(src)
    check_op(B.CAST, [T(x)], [T(None, dst)],
             CastOptions(T(x).tensor_type(), T(None, dst).tensor_type()))


# --------------------------------------------------------------- reductions


@pytest.mark.parametrize("opcode", [B.SUM, B.REDUCE_MAX], ids=lambda o: o.name)
@pytest.mark.parametrize("axes,keep", [([1, 2], True), ([-1], False), ([0, 2], False), ([0, 1, 2, 3], True)], ids=str)
def test_reduce(opcode, axes, keep):
    rng = RNG(15)
    x = rng.standard_normal((2, 5, 4, 3)).astype(np.float32)
    ax = T(np.array(axes, np.int32), const=True)
    check_op(opcode, [T(x), ax], [T(None, np.float32)], ReducerOptions(keep))
    check_op(opcode, [T(rng.integers(-1000, 1000, (2, 5, 4, 3)).astype(np.int32)), ax], [T(None, np.int32)],
             ReducerOptions(keep))
    for dtype in (np.uint8, np.int8):
        info = np.iinfo(dtype)
        q_in = quant(float(rng.uniform(0.01, 0.1)), int(rng.integers(info.min, info.max + 1)))
        q_out = q_in if opcode == B.REDUCE_MAX else quant(float(rng.uniform(0.1, 2.0)),
                                                          int(rng.integers(info.min, info.max + 1)))
        xq = T(rng.integers(info.min, info.max + 1, (2, 5, 4, 3)).astype(dtype), quant=q_in)
        if opcode == B.SUM and dtype == np.int8:
            _check_int8_sum(xq, ax, q_out, ReducerOptions(keep))
        else:
            check_op(opcode, [xq, ax], [T(None, dtype, quant=q_out)], ReducerOptions(keep))


def _check_int8_sum(x, axes, q_out, options):
    """int8 SUM against LiteRT's optimized kernels: its reference kernel reads int8 data as
    uint8 (reduce.cc passes ``GetTensorData<uint8_t>`` to ``QuantizedMeanOrSum`` for every
    8-bit type), so BUILTIN_REF's int8 SUM is wrong; the optimized one is the true sum."""
    model = single_op_model(B.SUM, [x, axes], [T(None, np.int8, quant=q_out)], options)
    (ref,) = run_litert(model, [x.value], "builtin")
    for backend in ("numpy", "numba"):
        (ours,) = run_ours_op(B.SUM, [x, axes], [T(None, np.int8, ref.shape, q_out)], options, backend)
        compare(ours, ref, f"SUM int8 [{backend}]")


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int8], ids=str)
def test_log_softmax(dtype):
    rng = RNG(16)
    if dtype == np.float32:
        check_op(B.LOG_SOFTMAX, [T(rng.standard_normal((3, 4, 10)).astype(np.float32) * 4)], [T(None, np.float32)],
                 EmptyOptions())
        return
    info = np.iinfo(dtype)
    zp = 255 if dtype == np.uint8 else 127
    for s_in in (0.01, 0.1, 0.05, 0.3, 1.0):
        for depth in (1, 7, 40):
            x = _q(rng, (5, depth), dtype, s_in, int(rng.integers(info.min, info.max + 1)))
            check_op(B.LOG_SOFTMAX, [x], [T(None, dtype, quant=quant(16 / 256, zp))], EmptyOptions())


# --------------------------------------------------------------- data movement


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int8], ids=str)
def test_layout(dtype):
    rng = RNG(17)
    q = None if dtype == np.float32 else quant(0.05, 3)

    def t(shape, const=False):
        v = rng.standard_normal(shape).astype(np.float32) if dtype == np.float32 else \
            rng.integers(0, 100, shape).astype(dtype)
        return T(v, quant=q, const=const)

    out = T(None, dtype, quant=q)
    for perm in ([0, 3, 1, 2], [2, 0, 1], [1, 0], [4, 0, 3, 1, 2]):
        x = t((2, 3, 4, 5, 2)[:len(perm)])
        check_op(B.TRANSPOSE, [x, T(np.array(perm, np.int32), const=True)], [out], EmptyOptions())
    check_op(B.DEPTH_TO_SPACE, [t((1, 3, 4, 8))], [out], DepthToSpaceOptions(2))
    check_op(B.SPACE_TO_DEPTH, [t((2, 6, 4, 3))], [out], SpaceToDepthOptions(2))
    for axis in (0, 1, -1):
        check_op(B.PACK, [t((3, 4)), t((3, 4)), t((3, 4))], [out], PackOptions(3, axis))
        check_op(B.UNPACK, [t((2, 3, 4))], [out] * (2, 3, 4)[axis], UnpackOptions((2, 3, 4)[axis], axis))
    for axis, idx_shape, batch_dims in ((0, (4,), 0), (1, (2, 3), 0), (2, (5,), 0), (1, (2, 3), 1)):
        idx = T(rng.integers(0, (2, 5, 4)[axis], idx_shape).astype(np.int32), const=True)
        check_op(B.GATHER, [t((2, 5, 4)), idx], [out], GatherOptions(axis, batch_dims))
    idx = T(rng.integers(0, 5, (3,)).astype(np.int32))  # indices as a model input
    check_op(B.GATHER, [t((2, 5, 4)), idx], [out], GatherOptions(1))


def test_shape():
    x = T(np.zeros((2, 3, 5), np.float32))
    check_op(B.SHAPE, [x], [T(None, np.int32)], ShapeOptions(TensorType.INT32))
    check_op(B.SHAPE, [x], [T(None, np.int64)], ShapeOptions(TensorType.INT64))


def test_errors():
    x = T(np.zeros((1, 3, 3, 5), np.float32))
    with pytest.raises(ModelError, match="multiple of block_size"):
        run_ours_op(B.DEPTH_TO_SPACE, [x], [T(None, np.float32, (1,))], DepthToSpaceOptions(2), "numpy")
    with pytest.raises(ModelError, match="out of range"):
        run_ours_op(B.GATHER, [x, T(np.array([7], np.int32), const=True)], [T(None, np.float32, (1,))],
                    GatherOptions(1), "numpy")
    with pytest.raises(ModelError, match="16/256"):
        run_ours_op(B.LOG_SOFTMAX, [T(np.zeros((2, 3), np.uint8), quant=quant(0.1, 0))],
                    [T(None, np.uint8, (2, 3), quant(0.1, 0))], None, "numpy")
    with pytest.raises(ModelError, match="hybrid FULLY_CONNECTED of UINT8 weights"):  # (int8 ones run)
        run_ours_op(B.FULLY_CONNECTED, [T(np.zeros((2, 3), np.float32)),
                                        T(np.zeros((4, 3), np.uint8), quant=quant(0.1, 128), const=True)],
                    [T(None, np.float32, (2, 4))], None, "numpy")


# ------------------------------------------------- the new operators in a whole model


def _graph_model(quantized: bool) -> tuple[bytes, list[np.ndarray]]:
    """A small graph of the new operators (a PReLU block, a dense layer, self-attention-like
    scores with weights computed at run time, space/depth shuffles, shape ops), written as
    a .tflite file with the project's writer."""
    from pydeeplab.tflite.writer import ModelBuilder

    rng = RNG(30)
    F, U8 = TensorType.FLOAT32, TensorType.UINT8
    b = ModelBuilder(description="new builtin operators")
    if quantized:
        qx, qa, qw, qf, qo = quant(0.05, 120), quant(0.01, 30), quant(0.02, 128), quant(0.1, 100), quant(0.08, 60)
        x = b.add_tensor("x", U8, (1, 8, 8, 4), qx)
        alpha = b.add_constant("alpha", rng.integers(0, 256, (1, 1, 4)).astype(np.uint8), qa, U8)
        p = b.add_tensor("prelu", U8, (1, 8, 8, 4), qx)
        w = b.add_constant("w", rng.integers(0, 256, (6, 4)).astype(np.uint8), qw, U8)
        bias = b.add_constant("bias", rng.integers(-500, 500, 6).astype(np.int32),
                              quant(float(np.float32(0.05) * np.float32(0.02)), 0), TensorType.INT32)
        f = b.add_tensor("dense", U8, (1, 8, 8, 6), qf)
        o = b.add_tensor("leaky", U8, (1, 8, 8, 6), qo)
        b.add_operator(B.PRELU, [x, alpha], [p])
        b.add_operator(B.FULLY_CONNECTED, [p, w, bias], [f], FullyConnectedOptions(Activation.NONE, keep_num_dims=True))
        b.add_operator(B.LEAKY_RELU, [f], [o], LeakyReluOptions(0.2))
        b.set_inputs([x])
        b.set_outputs([o])
        return b.finish(), [rng.integers(0, 256, (1, 8, 8, 4)).astype(np.uint8)]
    x = b.add_tensor("x", F, (1, 8, 8, 4))
    alpha = b.add_constant("alpha", (rng.random((1, 1, 4)) * 0.3).astype(np.float32))
    p = b.add_tensor("prelu", F, (1, 8, 8, 4))
    rows = b.add_tensor("rows", F, (64, 4))
    new_shape = b.add_constant("new_shape", np.array([64, 4], np.int32))
    w = b.add_constant("w", rng.standard_normal((6, 4)).astype(np.float32))
    bias = b.add_constant("bias", rng.standard_normal(6).astype(np.float32))
    f = b.add_tensor("dense", F, (64, 6))
    scores = b.add_tensor("scores", F, (64, 64))
    logp = b.add_tensor("logp", F, (64, 64))
    probs = b.add_tensor("probs", F, (64, 64))
    axis1 = b.add_constant("axis1", np.array([1], np.int32))
    total = b.add_tensor("total", F, (64,))
    s2d = b.add_tensor("s2d", F, (1, 4, 4, 16))
    d2s = b.add_tensor("d2s", F, (1, 8, 8, 4))
    sq = b.add_tensor("sq", F, (1, 8, 8, 4))
    idx = b.add_constant("idx", np.array([3, 0, 63], np.int32))
    picked = b.add_tensor("picked", F, (3, 6))
    perm = b.add_constant("perm", np.array([1, 0], np.int32))
    picked_t = b.add_tensor("picked_t", F, (6, 3))
    shape = b.add_tensor("shape", TensorType.INT32, (4,))
    shape_f = b.add_tensor("shape_f", F, (4,))
    b.add_operator(B.PRELU, [x, alpha], [p])
    b.add_operator(B.RESHAPE, [p, new_shape], [rows])
    b.add_operator(B.FULLY_CONNECTED, [rows, w, bias], [f], FullyConnectedOptions(Activation.RELU))
    b.add_operator(B.FULLY_CONNECTED, [f, f], [scores], FullyConnectedOptions())  # weights at run time
    b.add_operator(B.LOG_SOFTMAX, [scores], [logp], EmptyOptions())
    b.add_operator(B.EXP, [logp], [probs], EmptyOptions())
    b.add_operator(B.SUM, [probs, axis1], [total], ReducerOptions(False))
    b.add_operator(B.SPACE_TO_DEPTH, [x], [s2d], SpaceToDepthOptions(2))
    b.add_operator(B.DEPTH_TO_SPACE, [s2d], [d2s], DepthToSpaceOptions(2))
    b.add_operator(B.SQUARED_DIFFERENCE, [d2s, p], [sq], EmptyOptions())
    b.add_operator(B.GATHER, [f, idx], [picked], GatherOptions(0))
    b.add_operator(B.TRANSPOSE, [picked, perm], [picked_t], EmptyOptions())
    b.add_operator(B.SHAPE, [s2d], [shape], ShapeOptions(TensorType.INT32))
    b.add_operator(B.CAST, [shape], [shape_f], CastOptions(TensorType.INT32, F))
    b.set_inputs([x])
    b.set_outputs([total, sq, picked_t, shape_f])
    return b.finish(), [rng.standard_normal((1, 8, 8, 4)).astype(np.float32)]


@pytest.mark.parametrize("quantized", [False, True], ids=["float32", "uint8"])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_new_operators_in_a_model(quantized, backend):
    """The new operators through the reader, the plan and the Interpreter, against LiteRT."""
    model, feeds = _graph_model(quantized)
    check_model(model, feeds, backend)


def test_inspect_names_new_options_and_fc_macs(tmp_path, capsys):
    from pydeeplab.cli import main

    path = tmp_path / "new_ops.tflite"
    path.write_bytes(_graph_model(False)[0])
    assert main(["inspect", str(path), "--json"]) == 0
    import json

    s = json.loads(capsys.readouterr().out)
    ops = {o["op"]: o for o in s["operators"]}
    assert [o["macs"] for o in s["operators"] if o["op"] == "FULLY_CONNECTED"] == [64 * 6 * 4, 64 * 64 * 6]
    assert ops["FULLY_CONNECTED"]["options"]["keep_num_dims"] is False
    assert ops["DEPTH_TO_SPACE"]["options"] == {"block_size": 2}
    assert ops["GATHER"]["options"] == {"axis": 0, "batch_dims": 0}
    assert ops["CAST"]["options"] == {"in_data_type": "INT32", "out_data_type": "FLOAT32"}
    assert s["totals"]["macs"] == 64 * 6 * 4 + 64 * 64 * 6
    assert main(["inspect", str(path)]) == 0
    assert "block_size=2" in capsys.readouterr().out


def test_broadcast_rank_limits():
    """TFLite's fixed-rank broadcast loops: 4-D for SQUARED_DIFFERENCE and PRELU, 5-D for DIV,
    MAXIMUM and MINIMUM. Beyond them pydeeplab refuses the model with a message."""
    a = T(np.zeros((2, 1, 3, 1, 2), np.float32))
    b = T(np.zeros((1, 4, 1, 5, 1), np.float32))
    with pytest.raises(ModelError, match="at most 4"):
        run_ours_op(B.SQUARED_DIFFERENCE, [a, b], [T(None, np.float32, (1,))], EmptyOptions(), "numpy")
    six = T(np.zeros((2, 1, 1, 1, 1, 3), np.float32))
    with pytest.raises(ModelError, match="at most 5"):
        run_ours_op(B.MAXIMUM, [six, T(np.zeros((3,), np.float32))], [T(None, np.float32, (1,))],
                    EmptyOptions(), "numpy")
    # Five dimensions are within DIV's limit.
    check_op(B.DIV, [a, T(np.ones((1, 4, 1, 5, 1), np.float32))], [T(None, np.float32)], DivOptions())


# ------------------------------------------------ BATCH_MATMUL (transformers' attention)

_MATMUL_SHAPES = [  # lhs, rhs, adj_x, adj_y
    ((4, 6), (6, 5), False, False),
    ((2, 4, 6), (2, 6, 5), False, False),
    ((1, 2, 16, 8), (1, 2, 12, 8), False, True),  # scores = q k^T
    ((1, 2, 8, 16), (1, 2, 8, 12), True, False),
    ((3, 1, 4, 6), (1, 2, 6, 5), False, False),  # batch dimensions broadcast both ways
    ((2, 4, 6), (6, 5), False, False),  # a rank-2 rhs against a batch
    ((1, 2, 1, 5, 7), (2, 1, 3, 7, 4), False, False),
    ((5, 9), (3, 9, 2), False, False),
]


@pytest.mark.parametrize("lhs_shape, rhs_shape, adj_x, adj_y", _MATMUL_SHAPES)
def test_batch_matmul(lhs_shape, rhs_shape, adj_x, adj_y):
    """float32; int8 to int8 with zero points and scales of their own (the fixed-point rescale of
    float(s_lhs * s_rhs) / s_out); int8 to int32 (raw sums); a constant rhs too."""
    rng = RNG(31)
    options = BatchMatMulOptions(adj_x, adj_y)
    f = [T(rng.standard_normal(s).astype(np.float32)) for s in (lhs_shape, rhs_shape)]
    check_op(B.BATCH_MATMUL, f, [T(None, np.float32)], options)
    check_op(B.BATCH_MATMUL, [f[0], T(f[1].value, const=True)], [T(None, np.float32)], options)
    for _ in range(4):
        q = [T(rng.integers(-128, 128, s).astype(np.int8),
               quant=quant(float(rng.uniform(0.005, 0.1)), int(rng.integers(-20, 20)))) for s in (lhs_shape, rhs_shape)]
        depth = lhs_shape[-2] if adj_x else lhs_shape[-1]
        s_out = float(rng.uniform(0.2, 1.5)) * q[0].quant.scale * q[1].quant.scale * 60 * np.sqrt(depth)
        check_op(B.BATCH_MATMUL, q, [T(None, np.int8, quant=quant(s_out, int(rng.integers(-10, 10))))], options)
    check_op(B.BATCH_MATMUL, q, [T(None, np.int32)], options)


def test_batch_matmul_errors():
    f = T(np.zeros((2, 3, 4), np.float32))

    def fails(inputs, out, message, options=None):
        with pytest.raises(ModelError, match=message):
            run_ours_op(B.BATCH_MATMUL, inputs, [out], options or BatchMatMulOptions(), "numpy")

    out = T(None, np.float32, (1,))
    fails([f, T(np.zeros((2, 5, 4), np.float32))], out, "inner dimensions 4 and 5")
    fails([f, T(np.zeros((3, 4, 4), np.float32))], out, "do not broadcast")
    fails([T(np.zeros(4, np.float32)), T(np.zeros((4, 2), np.float32))], out, "rank 1")
    fails([f, T(np.zeros((2, 4, 2), np.int8), quant=quant(0.1, 0))], out, "hybrid")
    fails([T(np.zeros((2, 3, 4), np.int16), quant=quant(0.1, 0)), T(np.zeros((2, 4, 2), np.int16), quant=quant(0.1, 0))],
          T(None, np.int16, (1,), quant(0.1, 0)), "int16 BATCH_MATMUL is not supported")
    fails([T(np.zeros((2, 3, 4), np.uint8), quant=quant(0.1, 0)), T(np.zeros((2, 4, 2), np.uint8), quant=quant(0.1, 0))],
          T(None, np.uint8, (1,), quant(0.1, 0)), "both float32 or both int8")


def _attention_model(quantized: bool) -> tuple[bytes, np.ndarray]:
    """A transformer segmenter's attention and MLP, as converters write them: x [1, 2, 16, 8] heads ->
    scores = BATCH_MATMUL(x, x, adj_y) -> SOFTMAX -> BATCH_MATMUL with x -> GELU; int8 throughout when
    ``quantized`` (SOFTMAX's fixed output parameters 1/256, -128)."""
    from pydeeplab.tflite.options import GeluOptions, SoftmaxOptions
    from pydeeplab.tflite.writer import ModelBuilder

    rng = RNG(32)
    kind = TensorType.INT8 if quantized else TensorType.FLOAT32

    def q(scale, zp):
        return quant(scale, zp) if quantized else None

    b = ModelBuilder(description="attention")
    x = b.add_tensor("x", kind, (1, 2, 16, 8), q(0.05, 3))
    scores = b.add_tensor("scores", kind, (1, 2, 16, 16), q(0.2, -5))
    probs = b.add_tensor("probs", kind, (1, 2, 16, 16), q(1 / 256, -128))
    mixed = b.add_tensor("mixed", kind, (1, 2, 16, 8), q(0.03, 1))
    y = b.add_tensor("y", kind, (1, 2, 16, 8), q(0.02, -60))
    b.add_operator(B.BATCH_MATMUL, [x, x], [scores], BatchMatMulOptions(adj_y=True))
    b.add_operator(B.SOFTMAX, [scores], [probs], SoftmaxOptions(0.5))
    b.add_operator(B.BATCH_MATMUL, [probs, x], [mixed], BatchMatMulOptions())
    b.add_operator(B.GELU, [mixed], [y], GeluOptions(False))
    b.set_inputs([x])
    b.set_outputs([y])
    feed = rng.integers(-128, 128, (1, 2, 16, 8)).astype(np.int8) if quantized else \
        rng.standard_normal((1, 2, 16, 8)).astype(np.float32)
    return b.finish(), feed


@pytest.mark.parametrize("quantized", [False, True], ids=["float32", "int8"])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_attention_in_a_model(quantized, backend):
    """BATCH_MATMUL, SOFTMAX and GELU through the reader, the default plan and the Interpreter."""
    model, feed = _attention_model(quantized)
    check_model(model, [feed], backend)


def test_inspect_counts_batch_matmul_macs(tmp_path, capsys):
    import json

    from pydeeplab.cli import main

    path = tmp_path / "attention.tflite"
    path.write_bytes(_attention_model(True)[0])
    assert main(["inspect", str(path), "--json"]) == 0
    ops = json.loads(capsys.readouterr().out)["operators"]
    assert [o["macs"] for o in ops if o["op"] == "BATCH_MATMUL"] == [2 * 16 * 16 * 8, 2 * 16 * 8 * 16]
    assert ops[0]["options"] == {"adj_x": False, "adj_y": True} and ops[3]["options"] == {"approximate": False}


# ------------------------ ABS, NEG, SQRT, SQUARE, LOG, SIN, COS, FLOOR, SIGN, LOGICAL_NOT

_MATH = [B.ABS, B.NEG, B.SQRT, B.SQUARE, B.LOG, B.SIN, B.COS, B.FLOOR, B.SIGN]


@pytest.mark.parametrize("opcode", _MATH, ids=lambda o: o.name)
def test_math_float(opcode):
    """Float32 over signs, zero, large magnitudes, inf and NaN (LOG of 0 is -inf, of a negative NaN)."""
    rng = RNG(33)
    x = (rng.standard_normal((3, 5, 7)) * 4).astype(np.float32)
    x.flat[:10] = [0.0, -0.0, 1e-30, -2.5, 2.5, 1e30, -1e30, np.inf, -np.inf, np.nan]
    check_op(opcode, [T(x)], [T(None, np.float32)])


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64], ids=str)
def test_math_integers(dtype):
    """NEG of raw integers (the lowest value stays itself), SIGN and ABS of int32, ABS of int16
    without quantization: as LiteRT."""
    info = np.iinfo(dtype)
    x = np.array([info.min, info.min + 1, -7, -1, 0, 1, 9, info.max], dtype)
    check_op(B.NEG, [T(x)], [T(None, dtype)])
    if dtype == np.int32:
        check_op(B.SIGN, [T(x)], [T(None, dtype)])
    if dtype in (np.int16, np.int32):
        check_op(B.ABS, [T(x)], [T(None, dtype)])


def test_quantized_abs_and_log():
    """int8 ABS (|q - zp_in| rescaled when the scales differ) and int8 LOG (its table), on all 256
    values over random parameters; int16 ABS with zero points 0; bit-identical with LiteRT."""
    rng = RNG(34)
    x8 = np.arange(256, dtype=np.uint8).view(np.int8).reshape(16, 16)
    for k in range(12):
        s_in, z_in = float(rng.uniform(0.01, 0.2)), int(rng.integers(-128, 128))
        s_out = s_in if k % 4 == 0 else float(rng.uniform(0.01, 0.2))
        z_out = int(rng.integers(-128, 0))
        check_op(B.ABS, [T(x8, quant=quant(s_in, z_in))], [T(None, np.int8, quant=quant(s_out, z_out))])
        check_op(B.LOG, [T(x8, quant=quant(s_in, z_in))], [T(None, np.int8, quant=quant(float(rng.uniform(0.01, 0.05)),
                                                                                       int(rng.integers(-128, 128))))])
    x16 = np.array([-32768, -32767, -300, -1, 0, 1, 257, 32767], np.int16)
    for s_in, s_out in ((0.01, 0.01), (0.01, 0.003), (0.02, 0.05)):
        check_op(B.ABS, [T(x16, quant=quant(s_in, 0))], [T(None, np.int16, quant=quant(s_out, 0))])


def test_logical_not_and_refusals():
    check_op(B.LOGICAL_NOT, [T(np.array([[True, False, True]]))], [T(None, np.bool_)])
    for opcode, x, message in ((B.SQRT, T(np.zeros(3, np.int8), quant=quant(0.1, 0)), "quantized INT8 SQRT"),
                               (B.LOG, T(np.zeros(3, np.int16), quant=quant(0.1, 0)), "int16 LOG"),
                               (B.SQUARE, T(np.zeros(3, np.int32)), "INT32 input is not supported"),
                               (B.ABS, T(np.zeros(3, np.int16), quant=quant(0.1, 2)), "zero points of 0"),
                               (B.LOGICAL_NOT, T(np.zeros(3, np.float32)), "FLOAT32 input is not supported")):
        with pytest.raises(ModelError, match=message):
            run_ours_op(opcode, [x], [T(None, x.value.dtype, (3,), x.quant)], None, "numpy")


def test_pow():
    """POW of float32 (signs, fractional exponents, 0 ** 0, negative ** fraction = NaN) and int32
    (exponents from 0), broadcast; a negative int32 exponent is refused, as LiteRT refuses it."""
    rng = RNG(35)
    x = (rng.standard_normal((2, 3, 4)) * 3).astype(np.float32)
    x.flat[:4] = [0.0, -2.0, 2.0, -0.5]
    y = rng.uniform(-3, 3, (3, 1)).astype(np.float32)
    y.flat[:2] = [0.0, 2.0]
    check_op(B.POW, [T(x), T(y)], [T(None, np.float32)])
    check_op(B.POW, [T(x), T(np.array([2.0], np.float32), const=True)], [T(None, np.float32)])
    xi = rng.integers(-9, 10, (4, 5)).astype(np.int32)
    yi = rng.integers(0, 6, (1, 5)).astype(np.int32)
    check_op(B.POW, [T(xi), T(yi)], [T(None, np.int32)])
    with pytest.raises(ModelError, match="negative"):
        run_ours_op(B.POW, [T(xi), T(np.array([[1, -1, 2, 0, 1]], np.int32))], [T(None, np.int32, (4, 5))], None,
                    "numpy")
    with pytest.raises(ModelError, match="at most 4"):
        run_ours_op(B.POW, [T(np.zeros((2, 1, 3, 1, 2), np.float32)), T(np.zeros((1, 4, 1, 5, 1), np.float32))],
                    [T(None, np.float32, (1,))], None, "numpy")


# ------------------------------------------------------------ comparisons, SELECT / SELECT_V2

_COMPARE = [B.EQUAL, B.NOT_EQUAL, B.LESS, B.LESS_EQUAL, B.GREATER, B.GREATER_EQUAL]


@pytest.mark.parametrize("opcode", _COMPARE, ids=lambda o: o.name)
def test_comparisons(opcode):
    """Raw values of float32 (with NaN and ties), int32, int64 (and bool for the equalities),
    broadcast; uint8 / int8 with scales and zero points of their own (TFLite's fixed-point scaling:
    values equal in real terms compare equal after it); int16 raw, quantized int16 EQUAL scaled."""
    rng = RNG(36)
    out = T(None, np.bool_)
    a = rng.integers(-3, 4, (2, 3, 4)).astype(np.float32)
    a.flat[:3] = np.nan
    check_op(opcode, [T(a), T(rng.integers(-3, 4, (3, 1)).astype(np.float32))], [out])
    for dtype in (np.int32, np.int64):
        check_op(opcode, [T(rng.integers(-3, 4, (4, 5)).astype(dtype)), T(rng.integers(-3, 4, (5,)).astype(dtype))], [out])
    if opcode in (B.EQUAL, B.NOT_EQUAL):
        check_op(opcode, [T(rng.random((3, 4)) < 0.5), T(rng.random((1, 4)) < 0.5)], [out])
    for dtype in (np.uint8, np.int8):
        info = np.iinfo(dtype)
        x = np.arange(256, dtype=np.uint8).view(dtype).reshape(16, 16)
        for s_a, z_a, s_b, z_b in ((0.1, 0, 0.1, 0), (0.05, 10, 0.1, 5), (0.02, -3, 0.07, 40), (0.5, 100, 0.25, 0)):
            z_a, z_b = int(np.clip(z_a, info.min, info.max)), int(np.clip(z_b, info.min, info.max))
            check_op(opcode, [T(x, quant=quant(s_a, z_a)), T(x.T.copy(), quant=quant(s_b, z_b))], [out])
    if opcode != B.NOT_EQUAL:
        x16 = rng.integers(-5, 5, (3, 4)).astype(np.int16)
        check_op(opcode, [T(x16), T(rng.integers(-5, 5, (3, 4)).astype(np.int16))], [out])
    if opcode in (B.EQUAL, B.NOT_EQUAL):
        x16 = rng.integers(-50, 50, (3, 4)).astype(np.int16)
        check_op(opcode, [T(x16, quant=quant(0.1, 0)), T(x16 * 2, quant=quant(0.05, 0))], [out])


def test_select():
    """SELECT: a condition of x's shape, a scalar, a vector along the first dimension; SELECT_V2:
    the three broadcast; values copied raw (float32, uint8, int32, bool)."""
    rng = RNG(37)
    for dtype in (np.float32, np.uint8, np.int32, np.bool_):
        def t(shape):
            v = rng.integers(0, 3, shape)
            return T(v.astype(dtype))

        out = T(None, dtype)
        for cond_shape in ((3, 4, 2), (), (3,)):
            check_op(B.SELECT, [T(rng.random(cond_shape) < 0.5), t((3, 4, 2)), t((3, 4, 2))], [out])
        for cond_shape, x_shape, y_shape in (((3, 4, 2), (3, 4, 2), (3, 4, 2)), ((4, 1), (3, 1, 2), (2,)),
                                             ((), (2, 3), (1, 3)), ((2, 1, 1, 1, 3), (1, 2, 1, 4, 1), (1, 3)),
                                             ((3,), (3, 4, 3), (3, 1, 3))):  # (a vector broadcasts along the last)
            check_op(B.SELECT_V2, [T(rng.random(cond_shape) < 0.5), t(x_shape), t(y_shape)], [out])
        # One value in every shape: the output keeps its declared shape, as select.cc does.
        check_op(B.SELECT_V2, [T(np.array(True)), t((1, 1)), t(())], [T(None, dtype, (1,))])


def test_comparison_and_select_refusals():
    f = T(np.zeros((2, 3), np.float32))
    for opcode, inputs, out, message in (
            (B.LESS, [f, T(np.zeros((2, 3), np.int32))], T(None, np.bool_, (2, 3)), "input types differ"),
            (B.LESS, [T(np.zeros(2, np.bool_)), T(np.zeros(2, np.bool_))], T(None, np.bool_, (2,)), "BOOL inputs"),
            (B.EQUAL, [T(np.zeros(2, np.uint8), quant=quant(1.5, 0)), T(np.zeros(2, np.uint8), quant=quant(0.1, 0))],
             T(None, np.bool_, (2,)), "scale of 1 or more"),
            (B.NOT_EQUAL, [T(np.zeros(2, np.int16)), T(np.zeros(2, np.int16))], T(None, np.bool_, (2,)), "unwritten"),
            (B.SELECT, [T(np.zeros(3, np.bool_)), f, f], T(None, np.float32, (2, 3)), "first dimension"),
            (B.SELECT_V2, [T(np.zeros((2, 1), np.bool_)), f, T(np.zeros((3, 3), np.float32))],
             T(None, np.float32, (2, 3)), "do not broadcast")):
        with pytest.raises(ModelError, match=message):
            run_ours_op(opcode, inputs, [out], None, "numpy")


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int8, np.int32, np.int64, np.bool_], ids=lambda d: np.dtype(d).name)
def test_gather_nd(dtype):
    """GATHER_ND with index vectors of every length up to the params' rank, int16/int32/int64
    indices, constant or not; an index out of range is refused (at plan time for constants)."""
    rng = RNG(38)
    params = T(rng.integers(0, 100, (3, 4, 5)).astype(dtype))
    out = T(None, dtype)
    for nd, index_type, const in ((1, np.int32, True), (2, np.int64, False), (3, np.int16, True), (2, np.int32, True)):
        limits = np.array((3, 4, 5)[:nd])
        idx = (rng.random((2, 3, nd)) * limits).astype(index_type)
        check_op(B.GATHER_ND, [params, T(idx, const=const)], [out])
    with pytest.raises(ModelError, match="out of range"):
        run_ours_op(B.GATHER_ND, [params, T(np.array([[0, 4]], np.int32), const=True)], [T(None, dtype, (1, 5))], None,
                    "numpy")
    with pytest.raises(ModelError, match="exceed the params' rank"):
        run_ours_op(B.GATHER_ND, [params, T(np.zeros((1, 4), np.int32), const=True)], [T(None, dtype, (1,))], None,
                    "numpy")
    with pytest.raises(ModelError, match="index -1 at \\(0, 1\\) is out of range"):  # indices given at run time
        run_ours_op(B.GATHER_ND, [params, T(np.array([[0, -1]], np.int32))], [T(None, dtype, (1, 5))], None, "numpy")
