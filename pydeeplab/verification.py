"""Op-by-op comparison of pydeeplab with the TFLite runtime (LiteRT).

LiteRT runs the model once with ``experimental_preserve_all_tensors=True`` so
that every intermediate tensor can be read. Two comparisons follow:

* **isolated**: each of our operators is fed LiteRT's own input tensors, so an
  error is charged to the operator that made it (a 1-LSB difference early on
  cannot hide a later bug, nor make a later exact operator look wrong);
* **cascaded**: our interpreter runs the whole graph on its own outputs, as a
  user would, and every tensor is compared with LiteRT's.

The tolerance is the numerical contract: float outputs within
``1e-5 * (1 + max|ref|)`` (isolated) and final float outputs within ``1e-4``
(cascaded); integer outputs identical when held against the reference kernels
(``against="ref"``). Against LiteRT's optimized built-in kernels
(``against="builtin"``), the two TFLite kernel sets themselves differ by 1 LSB in
places, so an isolated integer output may differ by up to ``lsb_tolerance``
(default :data:`BUILTIN_LSB_TOLERANCE`, 1) and fails beyond it. In the cascaded
chain such a difference feeds every later operator and grows legitimately
(measured: up to 111 LSB inside the quantized DeepLab models, with every isolated
operator within 1), so there integer differences against builtin are counted
and reported, not judged: the isolated mode is the judge.

A hybrid model (float activations, int8 weights: dynamic-range quantization) quantizes its float
inputs at every hybrid operator with parameters taken from the values: a float difference of one
unit in the last place can move that scale, and so every value after it. Run whole, LiteRT's own
optimized kernels then differ from its reference kernels by up to 0.9 on logits of 20 and agree on
99.83-99.91% of the labels (the dynamic-range 257 and fp16 COCO DeepLabs of
``tools/quantize.py --dynamic-range``, the shared photographs). So a hybrid model's cascaded float
outputs are judged by their labels alone (:data:`HYBRID_ARGMAX_MIN_AGREEMENT`); the isolated mode,
where each hybrid operator must give LiteRT's numbers, is the judge of the arithmetic.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import numpy as np

from .image import load_rgb, resize_rgb, to_model_input
from .interpreter import Interpreter
from .summary import hybrid_operators
from .tflite.model import Subgraph
from .tflite.surgery import litert_equivalent

FLOAT_ISOLATED_RTOL = 1e-5
FLOAT_FINAL_ATOL = 1e-4
ARGMAX_MIN_AGREEMENT = 0.9999
#: The labels a hybrid model's cascaded output must keep (see the module docstring).
HYBRID_ARGMAX_MIN_AGREEMENT = 0.995
#: Isolated integer outputs may differ from LiteRT's optimized kernels by this many LSB.
BUILTIN_LSB_TOLERANCE = 1


@dataclass
class OpRecord:
    """The comparison of one operator's (first) output with LiteRT's."""

    index: int
    op: str
    shape: tuple[int, ...]
    dtype: str
    max_abs: float
    max_rel: float
    tolerance: float
    ok: bool
    lsb_count: int = 0  # integer outputs: elements that differ
    lsb_max: int = 0  # integer outputs: largest difference
    argmax_agreement: float | None = None  # the last operator: fraction of equal labels
    note: str = ""  # a custom operator: held against a builtin rewrite, or not comparable


@dataclass
class VerifyReport:
    model: str
    against: str
    backend: str
    isolated: list[OpRecord] = field(default_factory=list)
    cascaded: list[OpRecord] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.isolated + self.cascaded)

    def to_dict(self) -> dict:
        return {"model": self.model, "against": self.against, "backend": self.backend, "ok": self.ok,
                "isolated": [asdict(r) for r in self.isolated], "cascaded": [asdict(r) for r in self.cascaded]}


def _litert(model_content: bytes, against: str, num_threads: int | None):
    try:
        from ai_edge_litert.interpreter import Interpreter as LiteInterpreter
        from ai_edge_litert.interpreter import OpResolverType
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("verify needs LiteRT: pip install 'pydeeplab[test]' (ai-edge-litert)") from exc
    resolver = {"ref": OpResolverType.BUILTIN_REF, "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}[against]
    lite = LiteInterpreter(model_content=model_content, experimental_op_resolver_type=resolver,
                           experimental_preserve_all_tensors=True, num_threads=num_threads)
    lite.allocate_tensors()
    return lite


def make_inputs(graph: Subgraph, image: str | os.PathLike | None, seed: int = 0) -> list[np.ndarray]:
    """One array per input of ``graph``: the image preprocessed for the model, or seeded random values.

    Works from the model's tensors alone, so it serves models pydeeplab cannot run too.
    """
    rng = np.random.default_rng(seed)
    out = []
    for i in graph.inputs:
        t = graph.tensors[i]
        shape, dtype = tuple(t.shape), np.dtype(t.type.dtype)
        q = t.quantization
        if image is not None and len(shape) == 4 and shape[0] == 1 and shape[-1] == 3:
            rgb = resize_rgb(load_rgb(image), shape[1], shape[2])
            quantization = (q.scale, q.zero_point) if q is not None and q.scales.size else (0.0, 0)
            out.append(np.ascontiguousarray(to_model_input(rgb, dtype, quantization)))
        elif dtype.kind == "f":
            out.append(rng.uniform(-1, 1, shape).astype(dtype))
        else:
            info = np.iinfo(dtype)
            out.append(rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype))
    return out


def compare(ours: np.ndarray, ref: np.ndarray, *, rtol: float, against: str,
            lsb_tolerance: int = 0) -> tuple[float, float, float, bool, int, int]:
    """(max_abs, max_rel, tolerance, ok, lsb_count, lsb_max) of ``ours`` against ``ref``.

    Float outputs are held to ``rtol * (1 + max|ref|)``; integer outputs to
    ``lsb_tolerance`` (an int >= 0; 0 means bit-identical, which ``against="ref"`` requires).
    """
    if ours.shape != ref.shape:
        return float("inf"), float("inf"), 0.0, False, int(ref.size), 0
    if ref.dtype.kind == "f":
        diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
        max_abs = float(diff.max()) if diff.size else 0.0
        scale = float(np.abs(ref).max()) if ref.size else 0.0
        max_rel = float((diff / np.maximum(np.abs(ref.astype(np.float64)), 1e-12)).max()) if diff.size else 0.0
        tol = rtol * (1.0 + scale)
        return max_abs, max_rel, tol, bool(max_abs <= tol and np.isfinite(max_abs)), 0, 0
    diff = np.abs(ours.astype(np.int64) - ref.astype(np.int64))
    count, worst = int(np.count_nonzero(diff)), int(diff.max()) if diff.size else 0
    tolerance = 0 if against == "ref" else lsb_tolerance  # the reference kernels: bit-identical, always
    return float(worst), 0.0, float(tolerance), worst <= tolerance, count, worst


def _labels(x: np.ndarray) -> np.ndarray:
    return x if x.dtype.kind in "iu" and x.ndim == 3 else np.argmax(x, axis=-1)


class LiteRun:
    """LiteRT's run of a model on given inputs, with every intermediate tensor kept.

    A model with custom operators runs as :func:`pydeeplab.tflite.surgery.litert_equivalent`
    makes it: ``rewritten`` operators are held against their builtin twin, ``cut``
    operators (no builtin computes them) have no LiteRT counterpart.
    """

    def __init__(self, content: bytes, inputs: list[np.ndarray], against: str = "ref", num_threads: int | None = None):
        if against not in ("ref", "builtin"):
            raise ValueError(f"against must be 'ref' or 'builtin', not {against!r}")
        self.against = against
        self.inputs = inputs
        equivalent = litert_equivalent(content)
        self.rewritten, self.cut = equivalent.rewritten, equivalent.cut
        self.lite = _litert(equivalent.content, against, num_threads)
        for d, x in zip(self.lite.get_input_details(), inputs):
            self.lite.set_tensor(d["index"], x)
        self.lite.invoke()

    def tensor(self, index: int) -> np.ndarray:
        return self.lite.get_tensor(index)


def _record(op, last: int, out: np.ndarray, ref: np.ndarray, rtol: float, against: str,
            lsb_tolerance: int = 0) -> OpRecord:
    max_abs, max_rel, tol, ok, count, worst = compare(out, ref, rtol=rtol, against=against,
                                                      lsb_tolerance=lsb_tolerance)
    rec = OpRecord(op.index, op.name, tuple(ref.shape), str(ref.dtype), max_abs, max_rel, tol, ok, count, worst)
    if op.index == last and out.shape == ref.shape and ref.ndim >= 3:
        rec.argmax_agreement = float(np.mean(_labels(out) == _labels(ref)))
        if ref.dtype.kind == "f":
            rec.ok = rec.ok and rec.argmax_agreement >= ARGMAX_MIN_AGREEMENT
    return rec


def _not_comparable(op, ours: Interpreter) -> OpRecord:
    """The record of an operator LiteRT cannot run (a custom operator with no builtin twin, or after one)."""
    t = ours.model.main.tensors[op.outputs[0]]
    note = (f"not comparable: LiteRT has no kernel for {op.code.custom_code}" if op.code.custom_code
            else "not comparable: reads the output of a custom operator LiteRT cannot run")
    return OpRecord(op.index, op.name, tuple(t.shape), str(t.type.dtype), 0.0, 0.0, 0.0, True, note=note)


def _annotate(rec: OpRecord, op, run: LiteRun) -> OpRecord:
    if op.index in run.rewritten:
        rec.note = f"held against LiteRT's builtin rewrite of {run.rewritten[op.index]}"
    return rec


def compare_isolated(ours: Interpreter, run: LiteRun, lsb_tolerance: int = BUILTIN_LSB_TOLERANCE) -> list[OpRecord]:
    """Feed each of our operators LiteRT's inputs and compare its first output with LiteRT's.

    Integer outputs must be identical against ``ref``, within ``lsb_tolerance`` against ``builtin``.
    """
    g = ours.model.main
    last = len(g.operators) - 1
    records = []
    for op in g.operators:
        if op.index in run.cut:
            records.append(_not_comparable(op, ours))
            continue
        feeds = [None if i < 0 else (g.tensors[i].data if g.tensors[i].data is not None else run.tensor(i))
                 for i in op.inputs]
        out = ours.run_op(op.index, feeds)[0]
        records.append(_annotate(_record(op, last, out, run.tensor(op.outputs[0]), FLOAT_ISOLATED_RTOL, run.against,
                                         lsb_tolerance), op, run))
    return records


def compare_cascaded(ours: Interpreter, run: LiteRun) -> list[OpRecord]:
    """Run our whole graph on the same inputs and compare every operator's output with LiteRT's.

    ``ours`` must have been created with ``experimental_preserve_all_tensors=True``.
    Float errors accumulate legitimately along the chain, so only the graph's
    final float outputs carry a bound (1e-4 and the argmax agreement). Integer
    outputs must be identical against ``ref``; against ``builtin`` their differences
    grow along the chain too and are reported, not judged (see the module doc).
    """
    g = ours.model.main
    last = len(g.operators) - 1
    hybrid = bool(hybrid_operators(g))
    for d, x in zip(ours.get_input_details(), run.inputs):
        ours.set_tensor(d["index"], x)
    ours.invoke()
    records = []
    for op in g.operators:
        if op.index in run.cut:
            records.append(_not_comparable(op, ours))
            continue
        out, ref = ours.get_tensor(op.outputs[0]), run.tensor(op.outputs[0])
        rec = _record(op, last, out, ref, 0.0, run.against)
        if ref.dtype.kind in "iu" and run.against == "builtin":
            rec.tolerance, rec.ok = float("inf"), True
        if ref.dtype.kind == "f" and hybrid:
            rec.tolerance = float("inf")
            rec.ok = rec.argmax_agreement is None or rec.argmax_agreement >= HYBRID_ARGMAX_MIN_AGREEMENT
            if op.outputs[0] in g.outputs:
                rec.note = (f"hybrid model: values not bounded, labels must agree on "
                            f"{HYBRID_ARGMAX_MIN_AGREEMENT:.1%} (see pydeeplab.verification)")
        elif ref.dtype.kind == "f":
            rec.tolerance = FLOAT_FINAL_ATOL if op.outputs[0] in g.outputs else float("inf")
            rec.ok = bool(rec.max_abs <= rec.tolerance) and (
                rec.argmax_agreement is None or rec.argmax_agreement >= ARGMAX_MIN_AGREEMENT)
        records.append(_annotate(rec, op, run))
    return records


def verify(
    model_path: str | os.PathLike,
    image: str | os.PathLike | None = None,
    *,
    against: str = "ref",
    backend: str = "auto",
    modes: tuple[str, ...] = ("isolated", "cascaded"),
    num_threads: int | None = None,
    seed: int = 0,
    lsb_tolerance: int | None = None,
) -> VerifyReport:
    """Compare every operator of a model with LiteRT; see the module docstring.

    ``lsb_tolerance``: how many LSB an isolated integer output may differ from LiteRT's
    optimized kernels (``against="builtin"`` only; default 1). Against ``ref`` integers
    must be identical, and giving a tolerance is refused.

    Returns a :class:`VerifyReport` whose ``isolated`` and ``cascaded`` lists hold
    one :class:`OpRecord` per operator; ``report.ok`` says whether all are within
    the tolerance.
    """
    if lsb_tolerance is not None and against != "builtin":
        raise ValueError("an LSB tolerance applies only against LiteRT's optimized kernels (against='builtin'); "
                         "against its reference kernels integer outputs must be identical")
    if lsb_tolerance is None:
        lsb_tolerance = BUILTIN_LSB_TOLERANCE
    if isinstance(lsb_tolerance, bool) or not isinstance(lsb_tolerance, int) or lsb_tolerance < 0:
        raise ValueError(f"lsb_tolerance must be an integer >= 0, not {lsb_tolerance!r}")
    with open(model_path, "rb") as f:
        content = f.read()
    ours = Interpreter(model_content=content, backend=backend, num_threads=num_threads,
                       experimental_preserve_all_tensors=True)
    ours.allocate_tensors()
    run = LiteRun(content, make_inputs(ours.model.main, image, seed), against, num_threads)
    report = VerifyReport(model=os.fspath(model_path), against=against, backend=ours.backend)
    if "isolated" in modes:
        report.isolated = compare_isolated(ours, run, lsb_tolerance)
    if "cascaded" in modes:
        report.cascaded = compare_cascaded(ours, run)
    return report


def format_report(report: VerifyReport) -> str:
    """The per-operator table ``pydeeplab verify`` prints."""
    lines = [f"model {report.model}  against LiteRT {report.against}  backend {report.backend}"]
    for mode in ("isolated", "cascaded"):
        recs = getattr(report, mode)
        if not recs:
            continue
        lines.append("")
        lines.append(f"{mode}:")
        lines.append(f"{'#':>3}  {'operator':18} {'output shape':18} {'max abs':>10} {'max rel':>10} {'tolerance':>10}  "
                     f"{'LSB diff':>12}  result")
        for r in recs:
            shape = "x".join(map(str, r.shape))
            lsb = f"{r.lsb_count} (<= {r.lsb_max})" if r.dtype[0] in "iu" else ""
            if r.dtype[0] in "iu":
                tol = ("exact" if r.tolerance == 0 else "report" if r.tolerance == float("inf")
                       else f"{r.tolerance:g} LSB")
            else:
                tol = "-" if r.tolerance == float("inf") else f"{r.tolerance:.2e}"
            extra = f"  argmax agreement {r.argmax_agreement:.6f}" if r.argmax_agreement is not None else ""
            extra += f"  ({r.note})" if r.note else ""
            lines.append(f"{r.index:>3}  {r.op:18} {shape:18} {r.max_abs:>10.3g} {r.max_rel:>10.3g} {tol:>10}  "
                         f"{lsb:>12}  {'n/a' if r.note.startswith('not comparable') else ('ok' if r.ok else 'FAIL')}{extra}")
        bad = [r for r in recs if not r.ok]
        skipped = sum(r.note.startswith("not comparable") for r in recs)
        compared = len(recs) - skipped
        lines.append(f"{mode}: {compared - len(bad)} of {compared} operators within tolerance"
                     + (f"; {skipped} not comparable (no LiteRT kernel)" if skipped else ""))
    lines.append("PASS" if report.ok else "FAIL")
    return "\n".join(lines)
