"""FULLY_CONNECTED and BATCH_MATMUL: the readable specification (``reference/fully_connected.h``,
``reference/integer_ops/fully_connected.h``, ``reference/batch_matmul.h``).

The input is seen as [batch, depth] rows, the weights as [units, depth]. Float:
``clamp(x @ W.T + bias)``. Quantized (uint8, int8 per tensor or per channel): the
int32 accumulator ``sum((x - zp_x) * (w - zp_w)) + bias`` is rescaled by the
output multiplier of its unit (``MultiplyByQuantizedMultiplier``), offset by the
output zero point and clamped to the activation range.

The accumulator is computed as a float64 matrix product of the offset integers:
every product and partial sum is an integer below 2**53, so it is exact, and BLAS
computes it quickly.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..tflite.schema import Activation
from .fixedpoint import multiply_by_quantized_multiplier, round_half_away, wrap_int32
from .quantize import quantize_floats


def fully_connected(x: np.ndarray, w_t: np.ndarray, bias: np.ndarray | None, act_min: float, act_max: float,
                    out: np.ndarray) -> None:
    """Float FULLY_CONNECTED. x: float32 [batch, depth]; w_t: the weights transposed, [depth, units];
    bias: [units] or None; out: float32 [batch, units]."""
    y = x @ w_t
    if bias is not None:
        y = y + bias
    np.clip(y, act_min, act_max, out=out)


class QuantizedFullyConnectedParams(NamedTuple):
    """Offsets (-zp for input and weights, +zp for the output), the float64 effective
    output scales ([units] or [1]: s_in * s_w / s_out in double) and the output clamp range."""

    input_offset: int
    weights_offset: int
    output_offset: int
    effective_scale: np.ndarray
    act_min: int
    act_max: int


def offset_weights(w: np.ndarray, weights_offset: int) -> np.ndarray:
    """The offset weights ``w - zp_w`` as float64, transposed to [depth, units] (plan time for constants)."""
    return np.ascontiguousarray((w.astype(np.float64) + weights_offset).T)


def accumulate(x: np.ndarray, ws_t: np.ndarray, input_offset: int, bias: np.ndarray | None) -> np.ndarray:
    """The int32 accumulators [batch, units] of quantized FULLY_CONNECTED (wrapping as int32).
    ws_t: :func:`offset_weights`."""
    xs = x.astype(np.float64) + input_offset
    acc = (xs @ ws_t).astype(np.int64)
    if bias is not None:
        acc = acc + bias.astype(np.int64)
    return wrap_int32(acc)


def fully_connected_quantized(x: np.ndarray, ws_t: np.ndarray, bias: np.ndarray | None,
                              p: QuantizedFullyConnectedParams, out: np.ndarray) -> None:
    """Quantized FULLY_CONNECTED. x: uint8/int8 [batch, depth]; ws_t: the offset weights
    [depth, units] (:func:`offset_weights`); bias: int32 [units] or None; out: [batch, units]
    of the output's 8-bit type."""
    # Blocks of rows bound the float64 / int64 temporaries (~32 MiB) on long inputs.
    step = max(1, (1 << 22) // max(1, ws_t.shape[0], ws_t.shape[1]))
    for start in range(0, x.shape[0], step):
        rows = slice(start, start + step)
        acc = accumulate(x[rows], ws_t, p.input_offset, bias)
        y = round_half_away(acc.astype(np.float64) * p.effective_scale).astype(np.int64) + p.output_offset
        out[rows] = np.clip(y, p.act_min, p.act_max)


def apply_activation_to_vector(values: np.ndarray, activation: Activation) -> None:
    """TFLite's ``ApplyActivationToVector`` in place on float32 ``values``, as the hybrid kernels apply a
    fused activation: no clamp at all for NONE; ``std::max(0.0f, x)`` and the like (a NaN becomes the
    bound); tanh; ``std::signbit`` (1 or 0) for SIGN_BIT."""
    if activation == Activation.RELU:
        values[...] = np.where(0 < values, values, np.float32(0))
    elif activation in (Activation.RELU6, Activation.RELU_N1_TO_1):
        low, high = (np.float32(0), np.float32(6)) if activation == Activation.RELU6 else (np.float32(-1), np.float32(1))
        capped = np.where(high < values, high, values)
        values[...] = np.where(low < capped, capped, low)
    elif activation == Activation.TANH:
        np.tanh(values, out=values)
    elif activation == Activation.SIGN_BIT:
        values[...] = np.signbit(values)


def hybrid_weights(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the int8 weights [units, depth] as float64 [depth, units], their row sums int64 [units]): what
    :func:`hybrid_fully_connected` multiplies by (plan time for constant weights)."""
    return np.ascontiguousarray(w.astype(np.float64).T), w.astype(np.int64).sum(axis=1)


def hybrid_fully_connected(x: np.ndarray, weights: tuple[np.ndarray, np.ndarray], filter_scales: np.ndarray,
                           asymmetric: bool, bias: np.ndarray | None, activation: Activation,
                           out: np.ndarray) -> None:
    """Hybrid FULLY_CONNECTED (``EvalHybridDense``): float32 input and output, int8 weights.

    Each input row is quantized to int8 on its own (symmetric, or with a zero point where the options
    ask ``asymmetric_quantize_inputs``: ``reference/quantize.py``); the exact integer sums
    ``q . w[u]`` (less ``zp * sum(w[u])``) become ``bias[u] + float(sum) * (s_in * s_w[u])`` in float32,
    then the activation (:func:`apply_activation_to_vector`). An input of zeros only gives the bias.
    x: [batch, depth]; weights: :func:`hybrid_weights`; filter_scales: float32 [units] (a per-tensor
    scale repeated); out: [batch, units].
    """
    w_t, row_sums = weights
    base = np.zeros(w_t.shape[1], np.float32) if bias is None else bias.astype(np.float32)
    if not x.any():  # (TFLite skips the product for an input of zeros)
        out[...] = base
    else:
        for b in range(x.shape[0]):
            q, p = quantize_floats(x[b], asymmetric)
            sums = wrap_int32((q.astype(np.float64) @ w_t).astype(np.int64) - row_sums * p.zero_point)
            out[b] = base + sums.astype(np.float32) * (p.factor * filter_scales)
    apply_activation_to_vector(out, activation)


def _operands(lhs: np.ndarray, rhs: np.ndarray, adj_x: bool, adj_y: bool) -> tuple[np.ndarray, np.ndarray]:
    """The matrices of BATCH_MATMUL: the last two dimensions of each swapped where its adjoint is asked."""
    return (np.swapaxes(lhs, -1, -2) if adj_x else lhs), (np.swapaxes(rhs, -1, -2) if adj_y else rhs)


def batch_matmul(lhs: np.ndarray, rhs: np.ndarray, adj_x: bool, adj_y: bool, out: np.ndarray) -> None:
    """Float BATCH_MATMUL: ``out[..., i, j] = sum_k L[..., i, k] R[..., k, j]``, L and R the operands
    (their adjoints with ``adj_x`` / ``adj_y``), batch dimensions broadcast."""
    a, b = _operands(lhs, rhs, adj_x, adj_y)
    np.matmul(a, b, out=out)


def batch_matmul_quantized(lhs: np.ndarray, rhs: np.ndarray, adj_x: bool, adj_y: bool, lhs_offset: int,
                           rhs_offset: int, multiplier: int, shift: int, output_offset: int, out: np.ndarray) -> None:
    """int8 BATCH_MATMUL: the int32 sums ``sum_k (L + lhs_offset)(R + rhs_offset)`` (offsets = -zero points),
    rescaled by ``MultiplyByQuantizedMultiplier(multiplier, shift)``, offset and clamped to int8.
    The sums are float64 products of integers below 2**53 (exact), wrapped as TFLite's int32."""
    a, b = _operands(lhs, rhs, adj_x, adj_y)
    acc = wrap_int32(np.matmul(a.astype(np.float64) + lhs_offset, b.astype(np.float64) + rhs_offset).astype(np.int64))
    y = multiply_by_quantized_multiplier(acc, multiplier, shift) + output_offset
    out[...] = np.clip(y, -128, 127)


def batch_matmul_int32(lhs: np.ndarray, rhs: np.ndarray, adj_x: bool, adj_y: bool, out: np.ndarray) -> None:
    """int8 BATCH_MATMUL with an int32 output: the raw products' sums, zero points not applied (as
    TFLite's ``BatchMatMul<int8, int8, int32>``), wrapped as int32."""
    a, b = _operands(lhs, rhs, adj_x, adj_y)
    out[...] = wrap_int32(np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(np.int64))
