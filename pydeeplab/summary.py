"""What ``pydeeplab inspect`` shows: a model's inputs, outputs and operators, with their cost.

Multiply-accumulates (MACs) are counted for the operators that carry the
compute of a DeepLab network: CONV_2D (``out_h*out_w*C_out*k_h*k_w*C_in``),
DEPTHWISE_CONV_2D (``out_h*out_w*C_out*k_h*k_w``), TRANSPOSE_CONV and MediaPipe's
Convolution2DTransposeBias (``in_h*in_w*C_in*k_h*k_w*C_out``) and FULLY_CONNECTED, per image of the batch
times the batch.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import Counter
from math import prod

from .tflite.model import Model, Operator, Tensor
from .tflite.schema import BuiltinOperator, BuiltinOptionsType, TensorType

# The options worth a column: the ones that change what an operator computes.
_SHOWN_OPTIONS = (
    "padding", "stride_h", "stride_w", "dilation_h_factor", "dilation_w_factor", "depth_multiplier",
    "filter_height", "filter_width", "fused_activation_function", "align_corners", "half_pixel_centers",
    "axis", "keep_dims", "beta", "output_type",
    "keep_num_dims", "alpha", "block_size", "batch_dims", "values_count", "num", "out_type", "in_data_type",
    "out_data_type", "num_splits", "mode", "approximate", "adj_x", "adj_y",
)


def tensor_summary(t: Tensor) -> dict:
    q = t.quantization
    quant = None
    if q is not None and q.scales.size:
        quant = {"scale": q.scale, "zero_point": q.zero_point} if q.scales.size == 1 else {
            "per_channel": int(q.scales.size), "quantized_dimension": q.quantized_dimension}
    return {"index": t.index, "name": t.name, "dtype": t.type.name.lower(), "shape": list(t.shape),
            "quantization": quant}


def operator_macs(op: Operator, tensors: tuple[Tensor, ...]) -> int:
    """Multiply-accumulates of one operator at the model's declared shapes (0 for non-MAC ops)."""
    code = op.builtin
    if code in (BuiltinOperator.CONV_2D, BuiltinOperator.DEPTHWISE_CONV_2D):
        out, w = tensors[op.outputs[0]].shape, tensors[op.inputs[1]].shape
        if len(out) != 4 or len(w) != 4:
            return 0
        if code == BuiltinOperator.CONV_2D:
            return prod(out) * w[1] * w[2] * w[3]
        return prod(out) * w[1] * w[2]
    if code == BuiltinOperator.TRANSPOSE_CONV:
        w, x = tensors[op.inputs[1]].shape, tensors[op.inputs[2]].shape
        return prod(x) * w[0] * w[1] * w[2] if len(w) == 4 and len(x) == 4 else 0
    if code == BuiltinOperator.CUSTOM and op.code.custom_code == "Convolution2DTransposeBias":
        x, w = tensors[op.inputs[0]].shape, tensors[op.inputs[1]].shape  # MediaPipe's order: input, weights, bias
        return prod(x) * w[0] * w[1] * w[2] if len(w) == 4 and len(x) == 4 else 0
    if code == BuiltinOperator.BATCH_MATMUL and len(op.inputs) == 2:
        # One multiply-accumulate per output element and step of the inner dimension.
        lhs = tensors[op.inputs[0]].shape
        adj_x = getattr(op.options, "adj_x", False)
        return prod(tensors[op.outputs[0]].shape) * lhs[-2 if adj_x else -1] if len(lhs) >= 2 else 0
    if code == BuiltinOperator.FULLY_CONNECTED:
        # One multiply-accumulate per (row, unit, depth): output elements x weights' depth.
        w = tensors[op.inputs[1]].shape
        return prod(tensors[op.outputs[0]].shape) * w[-1] if len(w) == 2 else 0
    return 0


def _option_values(options) -> dict:
    if options is None or not dataclasses.is_dataclass(options):
        return {}
    out = {}
    for name in _SHOWN_OPTIONS:
        if hasattr(options, name):
            value = getattr(options, name)
            out[name] = value.name if isinstance(value, enum.Enum) else value
    return out


def _union_name(union_type: int) -> str:
    try:
        return BuiltinOptionsType(union_type).name
    except ValueError:
        return f"BuiltinOptions type {union_type}"


#: Operators that run hybrid with float32 input and int8 weights: (input index, weights index).
_HYBRID_OPERANDS = {BuiltinOperator.CONV_2D: (0, 1), BuiltinOperator.DEPTHWISE_CONV_2D: (0, 1),
                    BuiltinOperator.TRANSPOSE_CONV: (2, 1), BuiltinOperator.FULLY_CONNECTED: (0, 1)}


def hybrid_operators(graph) -> list[int]:
    """The operators of ``graph`` (a Subgraph) that run hybrid: float32 input, int8 weights
    (dynamic-range quantization; see docs/operators.md)."""
    found = []
    for op in graph.operators:
        x, w = _HYBRID_OPERANDS.get(op.builtin, (-1, -1))
        if 0 <= x and max(x, w) < len(op.inputs) and min(op.inputs[x], op.inputs[w]) >= 0 \
                and graph.tensors[op.inputs[x]].type == TensorType.FLOAT32 \
                and graph.tensors[op.inputs[w]].type == TensorType.INT8:
            found.append(op.index)
    return found


def summarize(model: Model) -> dict:
    """The whole summary as plain JSON-ready data."""
    g = model.main
    t = g.tensors
    ops = []
    hybrid = set(hybrid_operators(g))
    for op in g.operators:
        ops.append({
            "index": op.index,
            "op": op.name,
            "inputs": [list(t[i].shape) if i >= 0 else None for i in op.inputs],
            "outputs": [list(t[i].shape) for i in op.outputs],
            "options": _option_values(op.options),
            "macs": operator_macs(op, t),
            "hybrid": op.index in hybrid,
        })
        if op.ignored_options_type:
            ops[-1]["ignored_options"] = _union_name(op.ignored_options_type)
    constants = [x for x in t if x.data is not None]
    return {
        "description": model.description,
        "subgraphs": [s.name for s in model.subgraphs],
        "inputs": [tensor_summary(t[i]) for i in g.inputs],
        "outputs": [tensor_summary(t[i]) for i in g.outputs],
        "operators": ops,
        "totals": {
            "operators": len(g.operators),
            "by_type": dict(Counter(o["op"] for o in ops).most_common()),
            "parameters": sum(int(x.data.size) for x in constants),
            "weight_bytes": sum(int(x.data.nbytes) for x in constants),
            "macs": sum(o["macs"] for o in ops),
        },
    }


def _fmt_options(options: dict) -> str:
    short = {"padding": "pad", "stride_h": "sh", "stride_w": "sw", "dilation_h_factor": "dh",
             "dilation_w_factor": "dw", "depth_multiplier": "dm", "filter_height": "fh", "filter_width": "fw",
             "fused_activation_function": "act", "align_corners": "align", "half_pixel_centers": "half_px"}
    parts = []
    for k, v in options.items():
        if (k.startswith("dilation") and v == 1) or (k == "fused_activation_function" and v == "NONE"):
            continue
        parts.append(f"{short.get(k, k)}={v}")
    return " ".join(parts)


def format_summary(s: dict) -> str:
    """The summary as the text table ``pydeeplab inspect`` prints."""
    lines = []
    if s["description"]:
        lines.append(f"description: {s['description']}")
    for role in ("inputs", "outputs"):
        for x in s[role]:
            q = x["quantization"]
            qs = "" if q is None else (f"  scale={q['scale']:.6g} zero_point={q['zero_point']}" if "scale" in q
                                       else f"  per-channel({q['per_channel']}) dim {q['quantized_dimension']}")
            lines.append(f"{role[:-1]:6} {x['index']:4} {x['name']}  {x['dtype']} {x['shape']}{qs}")
    lines.append("")
    lines.append(f"{'#':>3}  {'operator':18} {'inputs -> output':44} {'MACs':>12}  options")
    for o in s["operators"]:
        shapes = " ".join("x".join(map(str, sh)) if sh is not None else "-" for sh in o["inputs"][:2])
        io = f"{shapes} -> {'x'.join(map(str, o['outputs'][0])) if o['outputs'] else '-'}"
        macs = f"{o['macs']:,}" if o["macs"] else ""
        ignored = f"  (ignored stray {o['ignored_options']}, as LiteRT does)" if o.get("ignored_options") else ""
        hybrid = "  hybrid: int8 weights" if o.get("hybrid") else ""
        lines.append(f"{o['index']:>3}  {o['op']:18} {io:44} {macs:>12}  {_fmt_options(o['options'])}{hybrid}{ignored}")
    tot = s["totals"]
    lines.append("")
    lines.append("operators: " + ", ".join(f"{k} {v}" for k, v in tot["by_type"].items()) + f" ({tot['operators']} in all)")
    hybrid = sum(1 for o in s["operators"] if o.get("hybrid"))
    if hybrid:
        lines.append(f"hybrid: {hybrid} operator(s) take float32 input with int8 weights (dynamic-range "
                     "quantization): each quantizes its input at every run")
    stray = [o for o in s["operators"] if o.get("ignored_options")]
    if stray:
        lines.append(f"ignored options: {len(stray)} operator(s) carry an options union of a type they do not "
                     f"read ({', '.join(str(o['index']) for o in stray)}); LiteRT ignores these and so does pydeeplab")
    lines.append(f"parameters: {tot['parameters']:,}   weight bytes: {tot['weight_bytes']:,}   "
                 f"MACs: {tot['macs']:,} ({tot['macs'] / 1e9:.2f} G)")
    return "\n".join(lines)
