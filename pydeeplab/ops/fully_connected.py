"""FULLY_CONNECTED: float32, uint8 (per tensor), int8 (per tensor or per channel); BATCH_MATMUL.

Prepare follows TFLite's ``kernels/fully_connected.cc``: weights [units, depth], an
optional bias [units] (absent as a missing third input or -1), the input flattened to
[numel / depth, depth] rows; the output is [rows, units], or with ``keep_num_dims`` the
input's shape with its last dimension replaced by units. Quantized outputs are
rescaled as the reference kernels do, in double: ``double(s_in) * double(s_w[c]) /
double(s_out)`` per unit (one s_w for per-tensor weights). A bias scale must equal
s_in * s_w (relative 1e-6), as TFLite checks for per-tensor weights.

Weights need not be constant (attention blocks multiply two activations). Hybrid
models (float input, 8-bit weights), shuffled weight layouts and int16 are refused
with a message. Float: a BLAS product on both backends. 8-bit: the numpy backend runs
``reference/fully_connected.py`` (an exact float64 BLAS product, in blocks of rows), the
numba backend ``kernels/fully_connected.py`` (int32 accumulation, parallel over rows).

BATCH_MATMUL follows ``kernels/batch_matmul.cc``: operands of rank 2 to 5, ``adj_x`` / ``adj_y``
swapping the last two dimensions, batch dimensions broadcast; float32, and int8 with an int8
output (rescaled by the fixed-point multiplier of ``float(s_lhs * s_rhs) / s_out``) or an int32
one (the raw sums). Hybrid (float and int8) and int16 operands are refused with a message. Both
backends run the reference (BLAS products; exact float64 ones for int8).
"""

from __future__ import annotations

import numpy as np

from ..quantization import activation_range_float, activation_range_quantized, conv_output_multipliers
from ..quantization import quantize_multiplier
from ..reference import fully_connected as ref
from ..tflite.options import BatchMatMulOptions, FullyConnectedOptions
from ..tflite.schema import BuiltinOperator, TensorType
from .base import OpContext, Prepared, register
from .elementwise import EIGHT_BIT, in_out_quantization, quantization_of


def _weight_quantization(ctx: OpContext, w, units: int) -> tuple[np.ndarray, int]:
    """Filter scales (one, or one per unit along dimension 0) and the filter zero point."""
    q = w.quantization
    if q is None or q.scales.size == 0:
        raise ctx.error("the weights (input 1) have no quantization parameters")
    scales = np.asarray(q.scales, dtype=np.float32)
    if scales.size > 1:
        if w.type != TensorType.INT8:
            raise ctx.error("per-channel weights must be int8 (TFLite's requirement)")
        if q.quantized_dimension != 0 or scales.size != units:
            raise ctx.error(f"per-channel weights need {units} scales along dimension 0, have "
                            f"{scales.size} along {q.quantized_dimension}")
        if np.any(q.zero_points != 0):
            raise ctx.error("per-channel weights must have zero points of 0")
    if not np.all(scales > 0) or not np.all(np.isfinite(scales)):
        raise ctx.error("the weights have a non-positive or non-finite scale")
    return scales, int(q.zero_points[0]) if q.zero_points.size else 0


@register(BuiltinOperator.FULLY_CONNECTED)
def prepare_fully_connected(ctx: OpContext) -> Prepared:
    if not 2 <= len(ctx.inputs) <= 3 or len(ctx.outputs) != 1:
        raise ctx.error(f"expects 2 or 3 inputs and 1 output, has {len(ctx.inputs)} and {len(ctx.outputs)}")
    x, w = ctx.inputs[0], ctx.inputs[1]
    if x is None or w is None:
        raise ctx.error("the input and the weights are required")
    bias = ctx.inputs[2] if len(ctx.inputs) == 3 else None
    o = ctx.outputs[0]
    options = ctx.options_as(FullyConnectedOptions)
    if options.weights_format != 0:
        raise ctx.error(f"weights_format {options.weights_format} (shuffled) is not supported; only DEFAULT is")
    if len(w.shape) != 2:
        raise ctx.error(f"weights must be 2-D [units, depth], have shape {w.shape}")
    units, depth = (int(d) for d in w.shape)
    numel = int(np.prod(x.shape, dtype=np.int64))
    if depth == 0 or numel % depth:
        raise ctx.error(f"input of shape {x.shape} does not split into rows of depth {depth}")
    rows = numel // depth
    if options.keep_num_dims:
        if not x.shape or x.shape[-1] != depth:
            raise ctx.error(f"keep_num_dims needs the input's last dimension ({x.shape}) to equal depth {depth}")
        out_shape = tuple(x.shape[:-1]) + (units,)
    else:
        out_shape = (rows, units)
    if bias is not None and int(np.prod(bias.shape, dtype=np.int64)) != units:
        raise ctx.error(f"bias has shape {bias.shape}, needs {units} elements")
    has_bias = bias is not None

    def b_of(inputs):
        return inputs[2].reshape(-1) if has_bias else None

    if x.type == TensorType.FLOAT32 and w.type == TensorType.INT8:
        return _hybrid_fully_connected(ctx, w, o, bias, options, units, rows, depth, out_shape)
    if x.type == TensorType.FLOAT32:
        if w.type != TensorType.FLOAT32:
            raise ctx.error(f"hybrid FULLY_CONNECTED of {w.type.name} weights is not supported (INT8 weights are)")
        if o.type != TensorType.FLOAT32 or (has_bias and bias.type != TensorType.FLOAT32):
            raise ctx.error("a float32 FULLY_CONNECTED needs float32 output and bias")
        lo, hi = activation_range_float(options.fused_activation_function)
        # Constant weights are transposed once here; run-time weights on every call.
        w_t = None if w.data is None else np.ascontiguousarray(w.data.T)

        def run(inputs, outputs):
            ref.fully_connected(inputs[0].reshape(rows, depth), w_t if w_t is not None else inputs[1].T,
                                b_of(inputs), lo, hi, outputs[0].reshape(rows, units))
        return Prepared((out_shape,), run)

    if x.type not in EIGHT_BIT:
        raise ctx.error(f"{x.type.name} input is not supported (float32, uint8 and int8 are)")
    if w.type != x.type or o.type != x.type:
        raise ctx.error(f"weights ({w.type.name}) and output ({o.type.name}) must have the input's type "
                        f"{x.type.name}")
    if has_bias and bias.type != TensorType.INT32:
        raise ctx.error(f"an 8-bit FULLY_CONNECTED needs an int32 bias, not {bias.type.name}")
    s_in, z_in, s_out, z_out = in_out_quantization(ctx, x, o)
    w_scales, z_w = _weight_quantization(ctx, w, units)
    if w_scales.size == 1:
        product = float(np.float32(s_in) * w_scales[0])
        if has_bias and bias.is_quantized:
            bs = float(np.float32(bias.quantization.scales[0]))
            if abs(product - bs) > 1e-6 * min(product, bs):
                raise ctx.error(f"bias scale {bs} differs from input scale x weight scale {product}")
    # TFLite also quantizes a fixed-point multiplier at Prepare (and refuses a non-finite one);
    # its reference Eval rescales with this double instead.
    effective = np.float64(np.float32(s_in)) * w_scales.astype(np.float64) / np.float64(np.float32(s_out))
    try:
        conv_output_multipliers(s_in, w_scales, s_out, np.uint8 if w_scales.size == 1 else np.int8)
    except ValueError as exc:
        raise ctx.error(str(exc)) from None
    try:
        act_min, act_max = activation_range_quantized(options.fused_activation_function, s_out, z_out, o.dtype)
    except ValueError as exc:
        raise ctx.error(str(exc)) from None
    params = ref.QuantizedFullyConnectedParams(-z_in, -z_w, z_out, effective, act_min, act_max)
    if ctx.backend == "numba":
        from ..kernels.fully_connected import fully_connected_quantized as kernel

        scale = np.ascontiguousarray(np.broadcast_to(effective, (units,)), dtype=np.float64)
        w_off = None if w.data is None else w.data.astype(np.int32) - z_w
        zero_bias = np.zeros(units, dtype=np.int32)

        def run_numba(inputs, outputs):
            weights = w_off if w_off is not None else inputs[1].astype(np.int32) - z_w
            bias_v = inputs[2].reshape(-1) if has_bias else zero_bias
            kernel(inputs[0].reshape(rows, depth), weights, bias_v, -z_in, scale, z_out, act_min, act_max,
                   outputs[0].reshape(rows, units))

        return Prepared((out_shape,), run_numba)
    ws_t = None if w.data is None else ref.offset_weights(w.data, -z_w)

    def run(inputs, outputs):
        weights = ws_t if ws_t is not None else ref.offset_weights(inputs[1], -z_w)
        ref.fully_connected_quantized(inputs[0].reshape(rows, depth), weights, b_of(inputs), params,
                                      outputs[0].reshape(rows, units))

    return Prepared((out_shape,), run)


def _hybrid_fully_connected(ctx: OpContext, w, o, bias, options, units: int, rows: int, depth: int,
                            out_shape: tuple) -> Prepared:
    """FULLY_CONNECTED of float32 input and int8 weights (dynamic-range quantization), as TFLite's
    ``EvalHybridDense``: per-channel scales where there is one per unit along dimension 0, else the
    first; the input symmetric unless ``asymmetric_quantize_inputs``; any fused activation, TANH and
    SIGN_BIT included (the hybrid kernel applies them all). Both backends run the reference.

    LiteRT 2.3.0's x86 kernel gets a product of a -128 weight and a negative input wrong (its SSSE3
    dot product negates the weight in 8 bits); a later LiteRT widens to 16 bits first. pydeeplab sums
    exactly. Converters write symmetric weights in [-127, 127], which that case never meets."""
    if o.type != TensorType.FLOAT32 or (bias is not None and bias.type != TensorType.FLOAT32):
        raise ctx.error("a hybrid FULLY_CONNECTED (float32 input, int8 weights) needs float32 output and bias")
    q = w.quantization
    if q is None or q.scales.size == 0:
        raise ctx.error("the int8 weights of a hybrid FULLY_CONNECTED have no quantization scales")
    scales = np.asarray(q.scales, dtype=np.float32)
    if scales.size > 1 and (scales.size != units or q.quantized_dimension != 0):
        raise ctx.error(f"hybrid FULLY_CONNECTED weights need one scale per unit along dimension 0 ({units}), "
                        f"have {scales.size} along dimension {q.quantized_dimension}")
    filter_scales = np.ascontiguousarray(np.broadcast_to(scales, (units,)), dtype=np.float32)
    activation, asymmetric = options.fused_activation_function, bool(options.asymmetric_quantize_inputs)
    has_bias = bias is not None
    constant = None if w.data is None else ref.hybrid_weights(w.data)  # (run-time weights: at every run)

    def run(inputs, outputs):
        weights = constant if constant is not None else ref.hybrid_weights(inputs[1])
        ref.hybrid_fully_connected(inputs[0].reshape(rows, depth), weights, filter_scales, asymmetric,
                                   inputs[2].reshape(-1) if has_bias else None, activation,
                                   outputs[0].reshape(rows, units))

    return Prepared((out_shape,), run)


@register(BuiltinOperator.BATCH_MATMUL)
def prepare_batch_matmul(ctx: OpContext) -> Prepared:
    """``lhs @ rhs`` over broadcast batch dimensions (their adjoints with ``adj_x`` / ``adj_y``)."""
    ctx.expect_io(2)
    lhs, rhs, o = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
    options = ctx.options_as(BatchMatMulOptions)
    adj_x, adj_y = options.adj_x, options.adj_y
    if lhs.type == TensorType.FLOAT32 and rhs.type == TensorType.INT8:
        raise ctx.error("hybrid BATCH_MATMUL (float32 lhs, int8 rhs) is not supported")
    if TensorType.INT16 in (lhs.type, rhs.type):
        raise ctx.error("int16 BATCH_MATMUL is not supported (float32 and int8 are)")
    if lhs.type not in (TensorType.FLOAT32, TensorType.INT8) or rhs.type != lhs.type:
        raise ctx.error(f"operands {lhs.type.name} and {rhs.type.name}: both float32 or both int8 are supported")
    for t, what in ((lhs, "lhs"), (rhs, "rhs")):
        if not 2 <= len(t.shape) <= 5:
            raise ctx.error(f"{what} has rank {len(t.shape)}; 2 to 5 are supported (as in TFLite)")
    rank = max(len(lhs.shape), len(rhs.shape))
    a = (1,) * (rank - len(lhs.shape)) + tuple(lhs.shape)
    b = (1,) * (rank - len(rhs.shape)) + tuple(rhs.shape)
    batch = []
    for d, (m, n) in enumerate(zip(a[:-2], b[:-2])):
        if m != n and 1 not in (m, n):
            raise ctx.error(f"batch dimension {d} of lhs {lhs.shape} and rhs {rhs.shape} do not broadcast")
        batch.append(n if m == 1 else m)
    rows, depth = (a[-1], a[-2]) if adj_x else (a[-2], a[-1])
    depth_r, cols = (b[-1], b[-2]) if adj_y else (b[-2], b[-1])
    if depth != depth_r:
        raise ctx.error(f"lhs {lhs.shape} (adj_x={adj_x}) and rhs {rhs.shape} (adj_y={adj_y}) have inner "
                        f"dimensions {depth} and {depth_r}")
    out_shape = (*batch, rows, cols)

    if lhs.type == TensorType.FLOAT32:
        if o.type != TensorType.FLOAT32:
            raise ctx.error(f"a float32 BATCH_MATMUL needs a float32 output, not {o.type.name}")

        def run(inputs, outputs):
            ref.batch_matmul(inputs[0].reshape(a), inputs[1].reshape(b), adj_x, adj_y, outputs[0])

        return Prepared((out_shape,), run)
    if depth * 255 * 255 >= 2**53:
        raise ctx.error(f"an inner dimension of {depth} is too deep for exact sums")
    if o.type == TensorType.INT32:

        def run_int32(inputs, outputs):
            ref.batch_matmul_int32(inputs[0].reshape(a), inputs[1].reshape(b), adj_x, adj_y, outputs[0])

        return Prepared((out_shape,), run_int32)
    if o.type != TensorType.INT8:
        raise ctx.error(f"an int8 BATCH_MATMUL's output must be int8 or int32, not {o.type.name}")
    s_l, z_l = quantization_of(ctx, lhs, "lhs")
    s_r, z_r = quantization_of(ctx, rhs, "rhs")
    s_o, z_o = quantization_of(ctx, o, "the output")
    # kernel_util.cc GetQuantizedConvolutionMultipler: the scales' product in float, widened.
    try:
        multiplier, shift = quantize_multiplier(float(np.float32(s_l) * np.float32(s_r)) / float(np.float32(s_o)))
    except ValueError as exc:
        raise ctx.error(str(exc)) from None

    def run_int8(inputs, outputs):
        ref.batch_matmul_quantized(inputs[0].reshape(a), inputs[1].reshape(b), adj_x, adj_y, -z_l, -z_r, multiplier,
                                   shift, z_o, outputs[0])

    return Prepared((out_shape,), run_int8)
