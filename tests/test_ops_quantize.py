"""QUANTIZE, requantization and DEQUANTIZE against LiteRT's reference kernels, on both backends.

Integer outputs bit-identical (including ties and saturation), float outputs within
the contract tolerance (they are in fact exact).
"""

from __future__ import annotations

import numpy as np
import pytest
from oracle import T, check_op, quant, run_litert, run_ours_op, single_op_model

from pydeeplab.errors import ModelError
from pydeeplab.tflite.schema import BuiltinOperator

B = BuiltinOperator
INT_TYPES = [np.uint8, np.int8, np.int16]


def _zp(rng, dtype):
    if dtype == np.int16:
        return int(rng.integers(-300, 300))
    info = np.iinfo(dtype)
    return int(rng.integers(info.min, info.max + 1))


@pytest.mark.parametrize("dtype", INT_TYPES, ids=lambda d: np.dtype(d).name)
def test_quantize_float(dtype):
    rng = np.random.default_rng(30)
    for scale in (0.02, 0.1, 1 / 3, 0.0078125):
        zp = _zp(rng, dtype)
        x = (rng.standard_normal((2, 6, 7, 3)) * 200 * scale).astype(np.float32)
        # Exact ties (k + 0.5) * scale in both signs, huge values and signed zeros.
        ties = ((np.arange(-20, 20) + 0.5) * np.float32(scale)).astype(np.float32)
        x.flat[:40] = ties
        x.flat[40:46] = [3e9, -3e9, 1e30, -1e30, -0.0, 0.0]
        check_op(B.QUANTIZE, [T(x)], [T(None, dtype, quant=quant(scale, zp))])


@pytest.mark.parametrize("dtype", INT_TYPES, ids=lambda d: np.dtype(d).name)
def test_quantize_float_non_finite(dtype):
    """NaN and infinities convert as x86 converts them (INT32_MIN), then wrap and clamp;
    the numba backend's one-pass kernel (kernels/quantize.py) included."""
    x = np.array([np.nan, np.inf, -np.inf, 2.5, -2.5, 1e-45, 7.0e9, -7.0e9], np.float32).reshape(1, 2, 2, 2)
    for zp in (0, 3, 7):
        check_op(B.QUANTIZE, [T(x)], [T(None, dtype, quant=quant(0.5, zp))])


@pytest.mark.parametrize("dtype", INT_TYPES, ids=lambda d: np.dtype(d).name)
def test_quantize_kernel_rounds_ties_away_from_zero(dtype):
    """The vectorized kernel's rounding (truncation, then one step away from zero where the
    dropped fraction is at least a half) against the reference's on ties, the floats on either
    side of them, values past 2**23 (no fraction) and at the int32 range's ends, at several scales."""
    from pydeeplab.kernels.quantize import quantize_per_tensor
    from pydeeplab.reference.quantize import quantize

    ties = np.arange(-40, 41, dtype=np.float32) + np.float32(0.5)
    x = np.concatenate([ties, np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(-np.inf)),
                        np.float32([0.49999997, -0.49999997, 8388609, -8388609, 8388607.5, -8388607.5,
                                    2147483520, -2147483648, 2147483648, np.nan, -0.0]),
                        np.random.default_rng(2).standard_normal(997).astype(np.float32) * 100])
    info = np.iinfo(dtype)
    for scale in (1.0, 0.5, 0.25, 3.0, 1e-7):
        for zp in (0, 5, -3) if dtype != np.uint8 else (0, 128, 255):
            ours, expected = np.empty(x.size, dtype), np.empty(x.size, dtype)
            quantize_per_tensor(x, np.float32(scale), np.int64(zp), np.int64(info.min), np.int64(info.max), ours)
            quantize(x, np.float32(scale), zp, expected)
            np.testing.assert_array_equal(ours, expected, err_msg=f"scale {scale}, zero point {zp}")


@pytest.mark.parametrize("dtype", [np.uint8, np.int8], ids=["uint8", "int8"])
def test_quantize_float_per_channel(dtype):
    rng = np.random.default_rng(31)
    x = (rng.standard_normal((2, 3, 4, 5)) * 5).astype(np.float32)
    scales = rng.uniform(0.01, 0.1, size=5)
    zps = [_zp(rng, dtype) for _ in range(5)]
    check_op(B.QUANTIZE, [T(x)], [T(None, dtype, x.shape, quant(scales, zps, dim=3))])


REQUANT_PAIRS = [(np.uint8, np.uint8), (np.uint8, np.int8), (np.int8, np.int8), (np.int8, np.uint8),
                 (np.uint8, np.int16), (np.int8, np.int16), (np.int16, np.int8)]


@pytest.mark.parametrize("pair", REQUANT_PAIRS, ids=lambda p: f"{np.dtype(p[0]).name}-{np.dtype(p[1]).name}")
def test_requantize(pair):
    src, dst = pair
    rng = np.random.default_rng(32)
    if src == np.int16:
        x = rng.integers(-32768, 32768, size=(3, 256)).astype(np.int16)
        x[0, :4] = [-32768, 32767, 0, -1]
    else:
        x = np.arange(256, dtype=np.uint8).view(src).reshape(1, 16, 16)
    scales = [(0.05, 0.05), (0.05, 0.1), (0.1, 0.013), (0.003, 0.7), (1.0, 1.0 / 255)]
    for s_in, s_out in scales:
        z_in = 0 if src == np.int16 else _zp(rng, src)
        z_out = 0 if dst == np.int16 else _zp(rng, dst)
        check_op(B.QUANTIZE, [T(x, quant=quant(s_in, z_in))], [T(None, dst, quant=quant(s_out, z_out))])


def test_requantize_uint8_int8_shift_by_128():
    """Same scale, zero points 128 apart: TFLite's XOR-0x80 fast path gives the same numbers."""
    x = np.arange(256, dtype=np.uint8).reshape(2, 128)
    check_op(B.QUANTIZE, [T(x, quant=quant(0.02, 130))], [T(None, np.int8, quant=quant(0.02, 2))])
    check_op(B.QUANTIZE, [T(x.view(np.int8), quant=quant(0.02, 2))], [T(None, np.uint8, quant=quant(0.02, 130))])


@pytest.mark.parametrize("dtype", INT_TYPES, ids=lambda d: np.dtype(d).name)
def test_dequantize(dtype):
    rng = np.random.default_rng(33)
    for scale in (0.02, 0.1, 1 / 3, 123.456):
        zp = 0 if dtype == np.int16 else _zp(rng, dtype)
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max + 1, size=(2, 5, 6, 3)).astype(dtype)
        check_op(B.DEQUANTIZE, [T(x, quant=quant(scale, zp))], [T(None, np.float32)])
        check_op(B.DEQUANTIZE, [T(x, quant=quant(scale, zp), const=True)], [T(None, np.float32)])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8], ids=lambda d: np.dtype(d).name)
def test_dequantize_every_8bit_value(dtype):
    # The numba kernel multiplies in float32 where TFLite takes the product in double and rounds
    # it: the same bits for 8-bit inputs. Every value, scales with long mantissas, tiny ones
    # (subnormal products), the extreme zero points; bit for bit, not within a tolerance.
    x = np.arange(256, dtype=np.uint8).view(dtype).reshape(1, 16, 16, 1)
    info = np.iinfo(dtype)
    for scale in (1 / 3, 0.0078125, 123.456, 1e-38):
        for zp in (int(info.min), 0, int(info.max)):
            inputs, outputs = [T(x, quant=quant(scale, zp))], [T(None, np.float32)]
            (theirs,) = run_litert(single_op_model(B.DEQUANTIZE, inputs, outputs), [x])
            for backend in ("numba", "numpy"):
                (ours,) = run_ours_op(B.DEQUANTIZE, inputs, [T(None, np.float32, theirs.shape)], None, backend)
                np.testing.assert_array_equal(ours, theirs, err_msg=f"{backend} scale {scale} zero point {zp}")


@pytest.mark.parametrize("dtype", [np.uint8, np.int8], ids=["uint8", "int8"])
def test_dequantize_per_channel(dtype):
    rng = np.random.default_rng(34)
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max + 1, size=(8, 3, 3, 4)).astype(dtype)
    scales = rng.uniform(0.001, 0.3, size=8)
    zps = [_zp(rng, dtype) for _ in range(8)]
    check_op(B.DEQUANTIZE, [T(x, quant=quant(scales, zps, dim=0), const=True)], [T(None, np.float32)])
    check_op(B.DEQUANTIZE, [T(x, quant=quant(scales, zps, dim=0))], [T(None, np.float32)])


def test_dequantize_float16():
    rng = np.random.default_rng(35)
    w = (rng.standard_normal((16, 3, 3, 8)) * 3).astype(np.float16)
    w.flat[:4] = [np.inf, -np.inf, 65504, 6e-8]
    check_op(B.DEQUANTIZE, [T(w, const=True)], [T(None, np.float32)])
    check_op(B.DEQUANTIZE, [T(w)], [T(None, np.float32)])


def test_errors():
    x = T(np.zeros((4,), np.float32))
    with pytest.raises(ModelError, match="no quantization"):
        run_ours_op(B.QUANTIZE, [x], [T(None, np.uint8, (4,))], None, "numpy")
    q = T(np.zeros((4,), np.int16), quant=quant(0.1, 3))
    with pytest.raises(ModelError, match="zero point 0"):
        run_ours_op(B.DEQUANTIZE, [q], [T(None, np.float32, (4,))], None, "numpy")
    with pytest.raises(ModelError, match="cannot dequantize"):
        run_ours_op(B.DEQUANTIZE, [T(np.zeros((4,), np.int32), quant=quant(0.1, 0))],
                    [T(None, np.float32, (4,))], None, "numpy")
