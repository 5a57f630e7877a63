"""Quantization error per operator: a quantized model against float numbers (``verify --against float``).

What TF's QuantizationDebugger reports per layer, computed with pydeeplab's own
operators and no TensorFlow. The quantized model runs once (integer kernels,
every tensor kept); a float model runs beside it, either

* its **float shadow** (:mod:`pydeeplab.shadow`: the same graph with dequantized
  weights, biases and inputs, no requantization between operators), tensors
  matched by index; or
* **another model** (e.g. the float model a quantized one was converted from),
  tensors matched by name.

For every operator of the quantized model, its first output ``q`` (dequantized:
``scale * (q - zero_point)``) is compared with the float tensor ``f`` of the same
name, in two ways:

* **isolated**: the float operator is fed the dequantized *integer* inputs, so
  the error is the one this operator adds (what QuantizationDebugger measures);
* **cascaded**: the float model runs on its own outputs from the dequantized
  input, so the error is everything accumulated up to this point.

Per operator: ``rmse`` = sqrt(mean((q - f)^2)), ``rmse/scale`` (about
1/sqrt(12) = 0.29 when the error is the rounding to the output grid alone; much
more means the operator's range or arithmetic loses information), ``mean error``
= mean(q - f) (a bias, e.g. from clamping), ``max abs error``; and for the final
output the fraction of pixels whose label (ARG_MAX output, or argmax of logits)
agrees between the integer model and the float one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import ModelError
from .interpreter import Interpreter
from .shadow import dequantize, float_shadow, is_quantized_model, is_quantized_tensor, quantize
from .tflite.model import Subgraph, Tensor
from .tflite.reader import read_model

#: rmse/scale of an error uniformly distributed over one quantization step.
UNIFORM_ROUNDING_RMSE = 1 / math.sqrt(12)


@dataclass
class ErrorStats:
    """Error of a dequantized tensor against its float counterpart (all in real units)."""

    n: int
    rmse: float
    rmse_over_scale: float | None  # None: the quantized tensor has no scale (a float or label tensor)
    mean_error: float
    max_abs_error: float


def error_stats(q_real: np.ndarray, f: np.ndarray, scale: float | None) -> ErrorStats:
    """Statistics of ``q_real - f`` (same shape, any real dtype): rmse, rmse/scale, mean error, max abs error."""
    q_real = np.asarray(q_real, np.float64)
    f = np.asarray(f, np.float64)
    if q_real.shape != f.shape:
        raise ValueError(f"cannot compare tensors of shapes {list(q_real.shape)} and {list(f.shape)}")
    if q_real.size == 0:
        return ErrorStats(0, 0.0, 0.0 if scale else None, 0.0, 0.0)
    d = q_real - f
    rmse = float(np.sqrt(np.mean(d * d)))
    return ErrorStats(int(d.size), rmse, rmse / scale if scale else None, float(d.mean()), float(np.abs(d).max()))


def label_agreement(a: np.ndarray, b: np.ndarray) -> float | None:
    """Fraction of equal labels: integer label maps directly, logits [..., C] through their argmax."""
    if a.shape != b.shape or a.size == 0:
        return None
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return float(np.mean(a == b))
    if a.ndim >= 3:
        return float(np.mean(np.argmax(a, axis=-1) == np.argmax(b, axis=-1)))
    return None


@dataclass
class QuantErrorRecord:
    """One operator of the quantized model and the error of its first output."""

    index: int
    op: str
    tensor: str
    shape: tuple[int, ...]
    scale: float | None
    matched: bool  # the float side has this tensor (and, isolated, could be fed)
    n: int = 0
    rmse: float = float("nan")
    rmse_over_scale: float | None = None
    mean_error: float = float("nan")
    max_abs_error: float = float("nan")
    label_agreement: float | None = None
    note: str = ""


@dataclass
class QuantErrorReport:
    model: str
    against: str  # "float shadow" or the other model's path
    backend: str
    isolated: list[QuantErrorRecord] = field(default_factory=list)
    cascaded: list[QuantErrorRecord] = field(default_factory=list)
    label_agreement: float | None = None  # final output, cascaded: integer model vs float
    note: str = ""  # why there is nothing to compare, when there is not

    def to_dict(self) -> dict:
        return {"model": self.model, "against": self.against, "backend": self.backend,
                "label_agreement": self.label_agreement, "note": self.note,
                "isolated": [_json_record(r) for r in self.isolated],
                "cascaded": [_json_record(r) for r in self.cascaded]}


def _json_record(r: QuantErrorRecord) -> dict:
    """asdict with NaN (nothing measured) as None: JSON has no NaN."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(r).items()}


def _real(value: np.ndarray, t: Tensor) -> np.ndarray:
    """A tensor's value in real units (dequantized if quantized), float64."""
    return dequantize(value, t.quantization) if is_quantized_tensor(t) else np.asarray(value, np.float64)


def _convert(value: np.ndarray, src: Tensor, dst: Tensor) -> np.ndarray:
    """Re-express ``value`` of tensor ``src`` in the representation of tensor ``dst`` (float or quantized)."""
    if dst.type == src.type and not is_quantized_tensor(dst):
        return value
    if (dst.type == src.type and is_quantized_tensor(src)
            and np.array_equal(dst.quantization.scales, src.quantization.scales)
            and np.array_equal(dst.quantization.zero_points, src.quantization.zero_points)):
        return value
    if is_quantized_tensor(dst):
        return quantize(_real(value, src), dst.quantization, dst.type.dtype)
    if dst.type.dtype.kind == "f":
        return _real(value, src).astype(dst.type.dtype)
    return value.astype(dst.type.dtype)


def _scale(t: Tensor) -> float | None:
    return t.quantization.scale if is_quantized_tensor(t) and not t.quantization.per_channel else None


def _fill(rec: QuantErrorRecord, q_val: np.ndarray, q_t: Tensor, f_val: np.ndarray, f_t: Tensor) -> QuantErrorRecord:
    if q_val.shape != f_val.shape:
        rec.matched, rec.note = False, f"shapes differ: {list(q_val.shape)} vs {list(f_val.shape)}"
        return rec
    if q_t.type.dtype.kind in "iu" and not is_quantized_tensor(q_t):
        # Labels (ARG_MAX) or shape vectors: agreement, not a distance.
        rec.label_agreement = label_agreement(q_val, np.asarray(f_val))
        rec.n = int(q_val.size)
        return rec
    s = error_stats(_real(q_val, q_t), _real(f_val, f_t), _scale(q_t))
    rec.n, rec.rmse, rec.rmse_over_scale, rec.mean_error, rec.max_abs_error = (
        s.n, s.rmse, s.rmse_over_scale, s.mean_error, s.max_abs_error)
    return rec


def _writers(g: Subgraph) -> dict[int, tuple[int, int]]:
    """tensor -> (operator, output position) for every tensor an operator writes."""
    return {t: (op.index, k) for op in g.operators for k, t in enumerate(op.outputs)}


def compare_quantized(
    quant: Interpreter,
    other: Interpreter,
    quant_inputs: list[np.ndarray],
    match: dict[int, int],
    *,
    modes: tuple[str, ...] = ("isolated", "cascaded"),
    progress: Callable[[int], None] | None = None,
    feeds_from: dict[int, int] | None = None,
) -> tuple[list[QuantErrorRecord], list[QuantErrorRecord], float | None]:
    """The per-operator error of ``quant`` against ``other`` (both allocated with every tensor preserved).

    ``match`` maps tensor indices of ``quant`` to tensors of ``other``. ``other``'s inputs are
    ``quant_inputs`` converted to its representation. ``feeds_from`` names more tensors of
    ``other`` that the isolated mode may feed from a tensor of ``quant`` (other -> quant). Returns (isolated, cascaded, final label agreement).
    """
    qg, fg = quant.model.main, other.model.main
    for d, x in zip(quant.get_input_details(), quant_inputs):
        quant.set_tensor(d["index"], x)
    quant.invoke()
    for i, x in zip(qg.inputs, quant_inputs):
        j = match.get(i)
        if j is None or j not in fg.inputs:
            raise ModelError(f"input {qg.tensors[i].name!r} of the quantized model has no input of the same name "
                             f"in the float model")
        if tuple(fg.tensors[j].shape) != tuple(x.shape):
            raise ModelError(f"input {qg.tensors[i].name!r} has shape {list(x.shape)} in the quantized model but "
                             f"{list(fg.tensors[j].shape)} in the float one: the two are not the same network")
    if any(j not in match.values() for j in fg.inputs):
        raise ModelError("the float model has inputs that the quantized model does not have")
    for i, x in zip(qg.inputs, quant_inputs):
        j = match[i]
        other.set_tensor(j, _convert(x, qg.tensors[i], fg.tensors[j]))
    other.invoke()
    writers = _writers(fg)
    back = {j: i for i, j in match.items()} | dict(feeds_from or {})
    isolated, cascaded = [], []
    for op in qg.operators:
        out = op.outputs[0]
        q_t = qg.tensors[out]
        q_val = quant.get_tensor(out)
        base = dict(index=op.index, op=op.name, tensor=q_t.name, shape=tuple(q_val.shape), scale=_scale(q_t))
        j = match.get(out)
        if "cascaded" in modes:
            rec = QuantErrorRecord(**base, matched=j is not None)
            if j is None:
                rec.note = "no float tensor of this name"
            else:
                _fill(rec, q_val, q_t, other.get_tensor(j), fg.tensors[j])
            cascaded.append(rec)
        if "isolated" in modes:
            rec = QuantErrorRecord(**base, matched=False)
            if j is None or j not in writers:
                rec.note = "no float tensor of this name" if j is None else "a float input or constant"
            else:
                f_op_index, pos = writers[j]
                f_op = fg.operators[f_op_index]
                feeds, missing = [], []
                for k in f_op.inputs:
                    if k < 0:
                        feeds.append(None)
                    elif fg.tensors[k].data is not None:
                        feeds.append(fg.tensors[k].data)
                    elif k in back and tuple(qg.tensors[back[k]].shape) == tuple(fg.tensors[k].shape):
                        feeds.append(_convert(quant.get_tensor(back[k]), qg.tensors[back[k]], fg.tensors[k]))
                    else:
                        missing.append(fg.tensors[k].name)
                if missing:
                    rec.note = ("float inputs without a quantized tensor of the same name and shape: "
                                + ", ".join(missing))
                else:
                    rec.matched = True
                    f_val = other.run_op(f_op_index, feeds)[pos]
                    _fill(rec, q_val, q_t, f_val, fg.tensors[j])
            isolated.append(rec)
        if progress is not None:
            progress(1)
    final = None
    q_out = qg.outputs[0]
    if q_out in match:
        final = label_agreement(quant.get_tensor(q_out), other.get_tensor(match[q_out]))
    return isolated, cascaded, final


def shadow_integer_inputs(model: Subgraph, shadow: Subgraph) -> dict[int, int]:
    """Shadow tensors that hold a model tensor in its integer form (a custom operator's inputs): shadow -> model.

    They are the outputs of the QUANTIZE operators :func:`~pydeeplab.shadow.float_shadow` adds
    (tensors past the model's own), written from the float twin of the model's tensor.
    """
    n = len(model.tensors)
    return {op.outputs[0]: op.inputs[0] for op in shadow.operators
            if op.name == "QUANTIZE" and op.outputs and op.outputs[0] >= n and 0 <= op.inputs[0] < n}


def _name_match(a: Subgraph, b: Subgraph) -> dict[int, int]:
    """Tensors of ``a`` -> tensors of ``b`` with the same name (names that are unique in both)."""
    def index(g: Subgraph) -> dict[str, int]:
        seen: dict[str, int] = {}
        dup = set()
        for t in g.tensors:
            if t.name in seen:
                dup.add(t.name)
            seen[t.name] = t.index
        return {k: v for k, v in seen.items() if k and k not in dup}

    ia, ib = index(a), index(b)
    return {ia[name]: ib[name] for name in ia.keys() & ib.keys()}


def quantization_error(
    model_path: str | os.PathLike,
    image: str | os.PathLike | None = None,
    *,
    against: str | os.PathLike = "float",
    backend: str | None = None,
    modes: tuple[str, ...] = ("isolated", "cascaded"),
    num_threads: int | None = None,
    seed: int = 0,
    progress: bool = False,
    input_arrays: list[np.ndarray] | None = None,
) -> QuantErrorReport:
    """Quantization error per operator of a quantized model (see the module docstring).

    ``against="float"``: the model's float shadow; else the path of another model (a float
    version of the same network), tensors matched by name. ``image``: fed to the quantized
    model (default: seeded random input); ``input_arrays`` instead gives the quantized model's input
    arrays themselves. ``backend``: as :class:`~pydeeplab.Interpreter`
    (None: its default).
    """
    from .verification import make_inputs

    with open(model_path, "rb") as f:
        content = f.read()
    model = read_model(content)
    kwargs = dict(num_threads=num_threads, experimental_preserve_all_tensors=True)
    if backend is not None:
        kwargs["backend"] = backend
    if os.fspath(against) == "float":
        if not is_quantized_model(model):
            halves = sum(1 for t in model.main.tensors if t.data is not None and t.type.name == "FLOAT16")
            return QuantErrorReport(
                model=os.fspath(model_path), against="float shadow", backend=backend or "-",
                note="the model has no quantized (integer) tensors: it computes in float already, so it is its own "
                     "float shadow and has no quantization error to measure"
                     + (f" ({halves} float16 constants are widened to float32 exactly by DEQUANTIZE)" if halves else "")
                     + ". To compare two models use --against OTHER.tflite.")
        other = Interpreter(model_content=float_shadow(model), **kwargs)
        match = {t.index: t.index for t in model.main.tensors}
        feeds_from = shadow_integer_inputs(model.main, other.model.main)
        label = "float shadow"
    else:
        other = Interpreter(model_path=against, **kwargs)
        match = _name_match(model.main, other.model.main)
        feeds_from = {}
        label = os.fspath(against)
        if not match:
            raise ModelError(f"no tensor of {os.fspath(model_path)} has a name found in {label}: "
                             "the two models are not versions of the same graph")
    quant = Interpreter(model_content=content, **kwargs)
    quant.allocate_tensors()
    other.allocate_tensors()
    inputs = make_inputs(quant.model.main, image, seed) if input_arrays is None else list(input_arrays)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(model.main.operators), unit="op", desc="quantization error", leave=False)
    try:
        iso, cas, final = compare_quantized(quant, other, inputs, match, modes=modes,
                                            progress=bar.update if bar is not None else None, feeds_from=feeds_from)
    finally:
        if bar is not None:
            bar.close()
    return QuantErrorReport(model=os.fspath(model_path), against=label, backend=quant.backend,
                            isolated=iso, cascaded=cas, label_agreement=final)


def _num(x: float | None, fmt: str = ".3g") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def format_quantization_error(report: QuantErrorReport) -> str:
    """The per-operator table ``pydeeplab verify --against float`` prints."""
    lines = [f"model {report.model}  against {report.against}  backend {report.backend}"]
    if report.note:
        return "\n".join(lines + [report.note])
    lines.append(f"error = dequantized integer output - float output; rmse/scale ~ {UNIFORM_ROUNDING_RMSE:.2f} "
                 "is rounding alone")
    for mode in ("isolated", "cascaded"):
        recs = getattr(report, mode)
        if not recs:
            continue
        lines += ["", f"{mode}:",
                  f"{'#':>3}  {'operator':18} {'output shape':16} {'scale':>9} {'rmse':>9} {'rmse/scale':>10} "
                  f"{'mean err':>9} {'max abs':>9}  labels"]
        for r in recs:
            shape = "x".join(map(str, r.shape))
            if not r.matched:
                lines.append(f"{r.index:>3}  {r.op:18} {shape:16} {'':>9} {'-':>9}  ({r.note})")
                continue
            labels = f"{r.label_agreement:.4f}" if r.label_agreement is not None else ""
            lines.append(f"{r.index:>3}  {r.op:18} {shape:16} {_num(r.scale):>9} {_num(r.rmse):>9} "
                         f"{_num(r.rmse_over_scale, '.3f'):>10} {_num(r.mean_error):>9} {_num(r.max_abs_error):>9}  "
                         f"{labels}")
        worst = [r for r in recs if r.rmse_over_scale is not None]
        if worst:
            w = max(worst, key=lambda r: r.rmse_over_scale)
            lines.append(f"{mode}: largest rmse/scale {w.rmse_over_scale:.3f} at operator {w.index} ({w.op}); "
                         f"{sum(r.matched for r in recs)} of {len(recs)} operators compared")
    if report.label_agreement is not None:
        lines += ["", f"final labels: integer model and {report.against} agree on "
                      f"{100 * report.label_agreement:.2f}% of pixels"]
    return "\n".join(lines)
