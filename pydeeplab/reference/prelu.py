"""PRELU and LEAKY_RELU: the readable specification (``reference/prelu.h``, ``leaky_relu.h``).

Float: PRELU is ``x >= 0 ? x : x * alpha`` with a broadcast alpha tensor, LEAKY_RELU
``x > 0 ? x : x * alpha`` with a scalar option. Quantized (uint8 / int8): the
offset input is rescaled by one of two multipliers, chosen by its sign: the
identity ``s_in / s_out`` for x >= 0, ``s_in * s_alpha / s_out`` applied to
``x * (alpha - zp_alpha)`` (PRELU) or ``s_in * alpha / s_out`` (LEAKY_RELU) below 0.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .fixedpoint import multiply_by_quantized_multiplier as mbqm


def prelu(x: np.ndarray, alpha: np.ndarray, out: np.ndarray) -> None:
    """Float PRELU: out = x >= 0 ? x : x * alpha, alpha broadcast to x's shape."""
    out[...] = np.where(x >= 0, x, x * alpha)


class PreluParams(NamedTuple):
    """TFLite's ``PreluParams``: offsets (-zp for inputs, +zp for the output) and the two
    (multiplier, shift) pairs (positive shift = left)."""

    input_offset: int
    alpha_offset: int
    output_offset: int
    output_multiplier_1: int
    output_shift_1: int
    output_multiplier_2: int
    output_shift_2: int


def prelu_quantized(x: np.ndarray, alpha: np.ndarray, p: PreluParams, out: np.ndarray) -> None:
    """Quantized PRELU (uint8 / int8), alpha broadcast to x's shape, clamped to out's type."""
    v = x.astype(np.int64) + p.input_offset
    a = alpha.astype(np.int64) + p.alpha_offset
    positive = mbqm(v, p.output_multiplier_1, p.output_shift_1)
    negative = mbqm(v * a, p.output_multiplier_2, p.output_shift_2)
    info = np.iinfo(out.dtype)
    out[...] = np.clip(np.where(v >= 0, positive, negative) + p.output_offset, info.min, info.max)


def leaky_relu(x: np.ndarray, alpha: np.float32, out: np.ndarray) -> None:
    """Float LEAKY_RELU: out = x > 0 ? x : x * alpha (float32)."""
    out[...] = np.where(x > 0, x, x * alpha)


class LeakyReluParams(NamedTuple):
    """Zero points and the (multiplier, shift) pairs of the identity and the alpha branch;
    a negative alpha has a negative multiplier (applied to |multiplier|, then negated)."""

    input_zero_point: int
    output_zero_point: int
    multiplier_identity: int
    shift_identity: int
    multiplier_alpha: int
    shift_alpha: int


def leaky_relu_quantized(x: np.ndarray, p: LeakyReluParams, out: np.ndarray) -> None:
    """Quantized LEAKY_RELU (``QuantizeLeakyRelu``), clamped to out's type."""
    v = x.astype(np.int64) - p.input_zero_point
    identity = mbqm(v, p.multiplier_identity, p.shift_identity)
    scaled = mbqm(v, abs(p.multiplier_alpha), p.shift_alpha)
    below = -scaled if p.multiplier_alpha < 0 else scaled
    info = np.iinfo(out.dtype)
    out[...] = np.clip(p.output_zero_point + np.where(v >= 0, identity, below), info.min, info.max)
