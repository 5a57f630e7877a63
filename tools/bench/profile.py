"""Per-operator profile of pydeeplab's interpreter: time by operator type and the slowest operators."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from .environment import BlasThreads
from .runtimes import _set_inputs

def _describe_op(op, tensors) -> dict:
    """Shapes and the options that set an operator's cost, for the profile listing."""
    o = op.options
    first = tensors[op.inputs[0]] if op.inputs and op.inputs[0] >= 0 else None
    out = tensors[op.outputs[0]] if op.outputs else None
    d = {"in": list(first.shape) if first is not None else None, "out": list(out.shape) if out is not None else None,
         "dtype": first.type.name.lower() if first is not None else None}
    if len(op.inputs) > 1 and op.inputs[1] >= 0 and tensors[op.inputs[1]].data is not None and o is not None \
            and hasattr(o, "stride_h"):
        w = tensors[op.inputs[1]].shape
        if len(w) == 4:
            d["kernel"] = f"{w[1]}x{w[2]}"
    for name, key in (("stride_h", "stride"), ("dilation_h_factor", "dilation")):
        v = getattr(o, name, None)
        if v not in (None, 0, 1):
            d[key] = int(v)
    return d


def bench_profile(model_path: Path, inputs: list[np.ndarray], backend: str, threads: int, repeat: int,
                  warmup: int, budget: float, blas: BlasThreads, top: int = 15, model_name: str | None = None) -> dict:
    """Per-operator median times of pydeeplab's interpreter, by operator type and the slowest ones."""
    from pydeeplab.interpreter import Interpreter
    from pydeeplab.summary import operator_macs

    it = Interpreter(model_path=str(model_path), num_threads=threads, backend=backend)
    it.allocate_tensors()
    _set_inputs(it, inputs)
    blas.set(threads)
    for _ in range(max(1, warmup)):
        it.invoke()
    runs = []
    spent = 0.0
    for _ in range(repeat):
        runs.append(it.invoke_profiled())
        spent += sum(t for _, _, t in runs[-1])
        if len(runs) >= min(3, repeat) and spent >= budget:
            break
    blas.restore()
    graph = it.model.main
    per_op = []
    for k, (index, name, _) in enumerate(runs[0]):
        op = graph.operators[index]
        per_op.append({"index": index, "op": name, "ms": statistics.median(r[k][2] for r in runs) * 1e3,
                       "macs": int(operator_macs(op, graph.tensors)), **_describe_op(op, graph.tensors)})
    total = sum(p["ms"] for p in per_op)
    by_type: dict[str, dict] = {}
    for p in per_op:
        t = by_type.setdefault(p["op"], {"op": p["op"], "count": 0, "ms": 0.0, "macs": 0})
        t["count"] += 1
        t["ms"] += p["ms"]
        t["macs"] += p["macs"]
    for p in [*per_op, *by_type.values()]:
        p["share"] = p["ms"] / total if total else 0.0
        p["gmacs_per_s"] = p["macs"] / (p["ms"] * 1e6) if p["macs"] and p["ms"] else None
    return {"model": model_name or model_path.stem, "backend": backend, "threads": threads, "runs": len(runs),
            "total_ms": total,
            "by_type": sorted(by_type.values(), key=lambda t: -t["ms"]),
            "top": sorted(per_op, key=lambda p: -p["ms"])[:top]}


