"""ADD, SUB and MUL with NumPy broadcasting: the readable specification.

Float: ``clamp(x1 op x2, act_min, act_max)`` in float32 (TFLite's reference
kernels, ``reference/add.h``, ``sub.h``, ``mul.h``). Broadcasting is NumPy's, which
is TFLite's rule (shapes aligned on the right, a dimension of 1 stretches).

Quantized (uint8 / int8, ``reference/add.h``, ``integer_ops/add.h``, ``sub.h``,
``mul.h``): every value is an integer; intermediates are int64 arrays holding the
int32 values TFLite computes. ADD and SUB bring both inputs to a common scale with
20 bits of headroom (``left_shift``) before summing; MUL multiplies the offset
inputs and rescales the product once.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .fixedpoint import multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_smaller_than_one_exp


class ArithmeticParams(NamedTuple):
    """The integer constants of quantized ADD / SUB (TFLite's ``ArithmeticParams``).

    Offsets are ``-zero_point`` for inputs and ``+zero_point`` for the output; every
    (multiplier, shift) pair has shift <= 0 (a right shift by ``-shift``);
    [act_min, act_max] is the output clamp in output units.
    """

    left_shift: int
    input1_offset: int
    input1_multiplier: int
    input1_shift: int
    input2_offset: int
    input2_multiplier: int
    input2_shift: int
    output_offset: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


class MulParams(NamedTuple):
    """The integer constants of quantized MUL and DIV: one multiplier for the combined scale,
    s1 * s2 / s_out for MUL, s1 / (s2 * s_out) for DIV (any shift sign; positive = left)."""

    input1_offset: int
    input2_offset: int
    output_offset: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


def _clamp(out: np.ndarray, act_min: float, act_max: float) -> None:
    """The fused activation in place; none (infinite bounds) costs no pass."""
    if act_min > -np.inf or act_max < np.inf:
        np.clip(out, act_min, act_max, out=out)


def add(x1: np.ndarray, x2: np.ndarray, act_min: float, act_max: float, out: np.ndarray) -> None:
    """Float ADD: out = clamp(x1 + x2). x1, x2 broadcast to out's shape; float32."""
    np.add(x1, x2, out=out)
    _clamp(out, act_min, act_max)


def sub(x1: np.ndarray, x2: np.ndarray, act_min: float, act_max: float, out: np.ndarray) -> None:
    """Float SUB: out = clamp(x1 - x2). x1, x2 broadcast to out's shape; float32."""
    np.subtract(x1, x2, out=out)
    _clamp(out, act_min, act_max)


def mul(x1: np.ndarray, x2: np.ndarray, act_min: float, act_max: float, out: np.ndarray) -> None:
    """Float MUL: out = clamp(x1 * x2). x1, x2 broadcast to out's shape; float32."""
    np.multiply(x1, x2, out=out)
    _clamp(out, act_min, act_max)


def on_common_scale(x: np.ndarray, offset: int, left_shift: int, multiplier: int, shift: int) -> np.ndarray:
    """One input of ADD/SUB/SQUARED_DIFFERENCE on the shared scale 2 * max(s1, s2) / 2**left_shift (int32 values)."""
    shifted = (x.astype(np.int64) + offset) << left_shift  # |x - zp| < 2**9: fits int32 after << 20
    return multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, multiplier, shift)


def rescale_to_output(raw: np.ndarray, p: ArithmeticParams, out: np.ndarray) -> None:
    """Rescale a raw sum, difference or squared difference on the common scale to the
    output scale, add the zero point and clamp."""
    result = multiply_by_quantized_multiplier_smaller_than_one_exp(raw, p.output_multiplier, p.output_shift)
    out[...] = np.clip(result + p.output_offset, p.act_min, p.act_max)


def add_quantized(x1: np.ndarray, x2: np.ndarray, p: ArithmeticParams, out: np.ndarray) -> None:
    """Quantized ADD. x1, x2: uint8 or int8, broadcast to out's shape; out: same dtype."""
    a = on_common_scale(x1, p.input1_offset, p.left_shift, p.input1_multiplier, p.input1_shift)
    b = on_common_scale(x2, p.input2_offset, p.left_shift, p.input2_multiplier, p.input2_shift)
    rescale_to_output(a + b, p, out)


def sub_quantized(x1: np.ndarray, x2: np.ndarray, p: ArithmeticParams, out: np.ndarray) -> None:
    """Quantized SUB. x1, x2: uint8 or int8, broadcast to out's shape; out: same dtype."""
    a = on_common_scale(x1, p.input1_offset, p.left_shift, p.input1_multiplier, p.input1_shift)
    b = on_common_scale(x2, p.input2_offset, p.left_shift, p.input2_multiplier, p.input2_shift)
    rescale_to_output(a - b, p, out)


def mul_quantized(x1: np.ndarray, x2: np.ndarray, p: MulParams, out: np.ndarray) -> None:
    """Quantized MUL. x1, x2: uint8 or int8, broadcast to out's shape; out: same dtype.

    The product of the offset inputs (|.| <= 255 * 255, an exact int32) is rescaled by
    the double-rounding ``MultiplyByQuantizedMultiplier``.
    """
    product = (x1.astype(np.int64) + p.input1_offset) * (x2.astype(np.int64) + p.input2_offset)
    result = multiply_by_quantized_multiplier(product, p.output_multiplier, p.output_shift)
    out[...] = np.clip(result + p.output_offset, p.act_min, p.act_max)
