"""RELU, RELU6, RELU_N1_TO_1, LOGISTIC, TANH, HARD_SWISH: the readable specification.

Float functions follow TFLite's reference kernels (``reference_ops.h``,
``reference/logistic.h``, ``tanh.h``, ``hard_swish.h``) in float32.

Quantized (uint8 / int8), as ``kernels/activations.cc`` runs them with the
reference kernel type:

* the RELU family requantizes, ``clamp(zp_out + MultiplyByQuantizedMultiplier(x - zp_in))``
  (``reference_ops::ReluX``);
* LOGISTIC and TANH look the input up in a 256-entry table that Prepare fills by
  dequantizing every input value, applying the float32 function and requantizing
  (``LUTPopulate``); the table is the specification, so we build it the same way;
* HARD_SWISH is 16-bit fixed-point arithmetic (``reference/hard_swish.h``), written
  here on int64 arrays that hold int16 values.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .fixedpoint import round_half_away

from .fixedpoint import multiply_by_quantized_multiplier

# ---------------------------------------------------------------------------- float


def relu(x: np.ndarray, out: np.ndarray) -> None:
    """max(x, 0); float32, any shape. NaN stays NaN, as ``x < 0 ? 0 : x`` does."""
    np.maximum(x, np.float32(0), out=out)


def relu6(x: np.ndarray, out: np.ndarray) -> None:
    """clamp(x, 0, 6); float32, any shape."""
    np.clip(x, np.float32(0), np.float32(6), out=out)


def relu_n1_to_1(x: np.ndarray, out: np.ndarray) -> None:
    """clamp(x, -1, 1); float32, any shape."""
    np.clip(x, np.float32(-1), np.float32(1), out=out)


def logistic(x: np.ndarray, out: np.ndarray) -> None:
    """1 / (1 + exp(-x)) in float32 with the reference kernel's cut-offs: 1 above
    16.619047..., exp(x) below -9 (where 1 + exp(-x) loses exp(x)'s bits).

    x, out: float32, same shape, distinct arrays. Below -87.33, where exp(x) would be
    subnormal, the result is exp(-87.33) = 1.2e-38: NumPy's exp takes ten times as long
    on subnormal results, and the difference is far below the float contract.
    """
    one = np.float32(1)
    # Each branch on x clamped to its range, so that exp neither overflows nor goes
    # subnormal; built in ``out``, one SIMD pass a step (np.where on three whole
    # branches took 3x as long).
    np.clip(x, np.float32(-9), np.float32(17), out=out)
    np.exp(np.negative(out, out=out), out=out)
    np.add(out, one, out=out)
    np.divide(one, out, out=out)
    np.copyto(out, one, where=x > np.float32(16.619047164916992188))
    low = x < np.float32(-9)
    if low.any():
        tail = np.clip(x, np.float32(-87.33), np.float32(-9))
        np.copyto(out, np.exp(tail, out=tail), where=low)


def tanh(x: np.ndarray, out: np.ndarray) -> None:
    """tanh(x); float32, any shape."""
    np.tanh(x, out=out)


def erfc(z: np.ndarray) -> np.ndarray:
    """The complementary error function in float64, to a relative 1.2e-7 (NumPy has none): the
    Chebyshev-fitted ``t * exp(-z^2 + P(t))``, t = 1 / (1 + |z| / 2), of Numerical Recipes' erfcc,
    reflected for z < 0 (erfc(-z) = 2 - erfc(z))."""
    z = np.asarray(z, np.float64)
    t = 1.0 / (1.0 + 0.5 * np.abs(z))
    p = 0.17087277
    for c in (-0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196, 1.00002368,
              -1.26551223):
        p = c + t * p
    tail = t * np.exp(-z * z + p)
    return np.where(z >= 0, tail, 2.0 - tail)


def gelu(x: np.ndarray, approximate: bool, out: np.ndarray) -> None:
    """GELU in float32 (``reference/gelu.h``): ``x * Phi(x)`` as ``0.5 x erfc(-x / sqrt 2)``, or
    with ``approximate`` ``0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))``; within the float
    contract of TFLite's Eigen evaluation (the sums in float64 here)."""
    v = x.astype(np.float64)
    if approximate:
        out[...] = 0.5 * v * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v * v * v)))
    else:
        out[...] = 0.5 * v * erfc(-v / math.sqrt(2.0))


def hard_swish(x: np.ndarray, out: np.ndarray) -> None:
    """x * clamp(x + 3, 0, 6) / 6 in float32, multiplied before dividing as the reference does."""
    np.divide(x * np.clip(x + np.float32(3), np.float32(0), np.float32(6)), np.float32(6), out=out)


# ------------------------------------------------------------- quantized RELU family


def relu_quantized(x: np.ndarray, input_zero_point: int, multiplier: int, shift: int, output_zero_point: int,
                   act_min: int, act_max: int, out: np.ndarray) -> None:
    """Quantized RELU / RELU6 / RELU_N1_TO_1 (``ReluX``): rescale by s_in / s_out, then clamp.

    x, out: uint8 or int8, same shape. (multiplier, shift) quantize s_in / s_out;
    [act_min, act_max] is the activation's range in output units.
    """
    v = multiply_by_quantized_multiplier(x.astype(np.int64) - input_zero_point, multiplier, shift)
    out[...] = np.clip(v + output_zero_point, act_min, act_max)


# ------------------------------------------------------------ LOGISTIC / TANH tables


def _libm_float_function(name: str, fallback: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """The C library's float32 function ``name`` (expf, tanhf, erfcf, logf) applied elementwise.

    TFLite fills its tables with ``std::exp`` / ``std::tanh`` (and GELU's ``std::erfc``, LOG's
    ``std::log``) on float, i.e. the C library's expf / tanhf / erfcf / logf. NumPy's own float32
    functions differ from glibc's in the last bit for many inputs, which occasionally moves a table
    entry by one; calling libm keeps the tables identical. Without a loadable libm, NumPy's (or
    :func:`erfc`) is used.
    """
    path = ctypes.util.find_library("m")
    try:
        fn = getattr(ctypes.CDLL(path), name) if path else None
    except (OSError, AttributeError):
        fn = None
    if fn is None:
        warned = []

        def numpy_instead(v: np.ndarray) -> np.ndarray:
            if not warned:  # said once per function, when a table first needs it
                warned.append(True)
                warnings.warn(f"the C library's {name} is not loadable here, so the 8-bit tables that need it "
                              f"use NumPy's, which differs in the last bit for some inputs: uint8/int8 results "
                              f"may then differ from TFLite's by 1", RuntimeWarning, stacklevel=2)
            return fallback(v)

        return numpy_instead
    fn.restype = ctypes.c_float
    fn.argtypes = [ctypes.c_float]

    def apply(v: np.ndarray) -> np.ndarray:
        return np.array([fn(float(e)) for e in np.ravel(v)], dtype=np.float32).reshape(np.shape(v))

    return apply


_expf = _libm_float_function("expf", lambda v: np.exp(v.astype(np.float32)))
_tanhf = _libm_float_function("tanhf", lambda v: np.tanh(v.astype(np.float32)))


_erfcf = _libm_float_function("erfcf", lambda v: erfc(v).astype(np.float32))
#: sqrt(2 / pi) as ``reference/gelu.h`` has it: a double product rounded to float.
_SQRT_2_OVER_PI = np.float32((2.0 / math.sqrt(math.pi)) * math.sqrt(0.5))


def gelu_float32(v: np.ndarray) -> np.ndarray:
    """``GeluTransform``: ``0.5f * v * erfc(v * -M_SQRT1_2)`` on float, as GELU's table builder does."""
    v = np.asarray(v, np.float32)
    return (np.float32(0.5) * v) * _erfcf(v * np.float32(-math.sqrt(0.5)))


def gelu_approximate_float32(v: np.ndarray) -> np.ndarray:
    """``GeluTransformApproximate``: ``0.5f * v * (1 + tanh(sqrt(2/pi) * (v + 0.044715f * v^3)))`` on float."""
    v = np.asarray(v, np.float32)
    inner = v + ((np.float32(0.044715) * v) * v) * v
    return (np.float32(0.5) * v) * (np.float32(1) + _tanhf(_SQRT_2_OVER_PI * inner))


def logistic_float32(v: np.ndarray) -> np.ndarray:
    """``1.0f / (1.0f + std::exp(-v))`` as LOGISTIC's table builder evaluates it."""
    return np.float32(1) / (np.float32(1) + _expf(-v))


def tanh_float32(v: np.ndarray) -> np.ndarray:
    """``std::tanh(v)`` on float, as TANH's table builder evaluates it."""
    return _tanhf(v)


def lut_populate(fn: Callable[[np.ndarray], np.ndarray], input_scale: float, input_zero_point: int,
                 output_scale: float, output_zero_point: int, dtype: np.dtype) -> np.ndarray:
    """TFLite's ``LUTPopulate`` for uint8 / int8: the [256] table of ``fn`` on every input value.

    Each input q is dequantized (``s_in * (q - zp_in)`` in float32), transformed by the
    float32 function ``fn``, multiplied by ``1 / s_out`` (float32), rounded half away
    from zero, offset by zp_out and clamped to dtype. Entry k belongs to the input
    whose byte is k (int8 -1 is entry 255), so the lookup indexes with the uint8 view.
    """
    dtype = np.dtype(dtype)
    values = np.arange(256, dtype=np.uint8).view(dtype).astype(np.int64)
    dequantized = np.float32(input_scale) * (values - input_zero_point).astype(np.float32)
    inverse_scale = np.float32(1) / np.float32(output_scale)
    rescaled = round_half_away(fn(dequantized).astype(np.float32) * inverse_scale)
    quantized = (rescaled + np.float32(output_zero_point)).astype(np.int64)
    info = np.iinfo(dtype)
    return np.clip(quantized, info.min, info.max).astype(dtype)


def lookup(table: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
    """out = table[x], indexing the [256] table with x's byte. x: uint8 or int8; out: table's dtype."""
    out[...] = table[x.view(np.uint8)]


# ------------------------------------------------------------------ HARD_SWISH


class HardSwishParams(NamedTuple):
    """TFLite's ``HardSwishParams``: 16-bit multipliers and their exponents (positive = left)."""

    input_zero_point: int
    output_zero_point: int
    reluish_multiplier_fixedpoint_int16: int
    reluish_multiplier_exponent: int
    output_multiplier_fixedpoint_int16: int
    output_multiplier_exponent: int


def _wrap16(x: np.ndarray) -> np.ndarray:
    """Reduce int64 values modulo 2**16 into the int16 range (C's conversion to int16_t)."""
    return ((x + 32768) & 0xFFFF) - 32768


def _div_trunc(a: np.ndarray, d: int) -> np.ndarray:
    """C's integer division (toward zero) of int64 values by a positive d."""
    return np.where(a >= 0, a // d, -((-a) // d))


def _srdhm16(a: np.ndarray, b: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int16: round(a * b / 2**15), ties away from 0."""
    ab = a * b
    high = _div_trunc(ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14)), 1 << 15)
    return np.where((a == b) & (a == -32768), 32767, _wrap16(high))


def _sdhm16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SaturatingDoublingHighMul on int16: a * b / 2**15 truncated toward zero (no rounding)."""
    return np.where((a == b) & (a == -32768), 32767, _wrap16(_div_trunc(a * b, 1 << 15)))


def _saturating_left_shift16(x: np.ndarray, amount: int) -> np.ndarray:
    return np.clip(x * (1 << amount), -32768, 32767)


def _rounding_divide_by_pot16(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT with int16 operands (the mask is an int16 too)."""
    mask = int(_wrap16(np.int64((1 << exponent) - 1)))
    threshold = _wrap16((mask >> 1) + (x < 0))
    return _wrap16((x >> exponent) + ((x & mask) > threshold))


def hard_swish_quantized(x: np.ndarray, p: HardSwishParams, out: np.ndarray) -> None:
    """Quantized HARD_SWISH in 16-bit fixed point (``reference/hard_swish.h``).

    x, out: uint8 or int8, same shape. The input, moved to a 2**7 finer scale, is
    scaled once to the output scale and once to a "relu-ish" factor in [0, 1] (3.0
    maps to 2**15, saturating), and the two are multiplied.
    """
    hires = _wrap16(_wrap16(x.astype(np.int64) - p.input_zero_point) * (1 << 7))
    on_output_scale = _srdhm16(hires, p.output_multiplier_fixedpoint_int16)
    reluish = hires
    exponent = p.reluish_multiplier_exponent
    if exponent > 0:
        # Saturation in this partial shift is overwritten by the final one-bit shift.
        reluish = _saturating_left_shift16(reluish, exponent - 1)
    reluish = _srdhm16(reluish, p.reluish_multiplier_fixedpoint_int16)
    if exponent > 0:
        reluish = _saturating_left_shift16(reluish, 1)
    if exponent < 0:
        reluish = _rounding_divide_by_pot16(reluish, -exponent)
    reluish = (reluish + (1 << 15)) >> 1  # [-1, 1] -> [0, 1]
    product = _sdhm16(reluish, on_output_scale)
    value = _wrap16(_rounding_divide_by_pot16(product, -p.output_multiplier_exponent) + p.output_zero_point)
    info = np.iinfo(out.dtype)
    out[...] = np.clip(value, info.min, info.max)
