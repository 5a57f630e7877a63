"""The models a run times: the real ones, their LiteRT stand-ins, and the synthesized int8 model.

A model's class (float, uint8 or int8), which sets its goal, is read from the graph:
the dtype its convolutions compute in, float16 constants behind DEQUANTIZE, and
QUANTIZE/DEQUANTIZE at the graph's ends, never from the file name.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pydeeplab.models import data_dir

#: The real float model the int8 model is synthesized from, and the synthesized model's name.
SYNTH_SOURCE = "deeplabv3_257_mv_gpu"
SYNTH_NAME = f"{SYNTH_SOURCE}_int8"
#: The dynamic-range (hybrid) model tools/quantize.py builds from the same source.
HYBRID_NAME = f"{SYNTH_SOURCE}_dr"
#: Synthesized model name -> (the suffix of its file name after the source's, tools/quantize.py's
#: function that builds it, whether that calibrates on images).
SYNTHESIZED = {SYNTH_NAME: ("_int8", "quantize_int8", True), HYBRID_NAME: ("_dr", "quantize_dynamic_range", False)}
#: tools/, where tools/quantize.py lives (beside this package).
TOOLS_DIR = Path(__file__).resolve().parent.parent


def find_models(names: Sequence[str] | None = None, models_dir: str | os.PathLike | None = None) -> list[Path]:
    """The .tflite files to benchmark: paths, or names (file stems, or a unique part of one) in ``models_dir``.

    Without ``names``, every .tflite file of ``models_dir`` (default: ``<data>/models``).
    """
    folder = Path(models_dir) if models_dir is not None else data_dir() / "models"
    available = sorted(folder.glob("*.tflite")) if folder.is_dir() else []
    if not names:
        if not available:
            raise FileNotFoundError(f"no .tflite models in {folder} (set PYDEEPLAB_DATA or pass --models-dir)")
        return available
    out = []
    for name in names:
        p = Path(name)
        if p.suffix == ".tflite" and p.exists():
            out.append(p)
            continue
        exact = [m for m in available if m.stem == name or m.name == name]
        partial = [m for m in available if name in m.stem]
        if exact:
            out.append(exact[0])
        elif len(partial) == 1:
            out.append(partial[0])
        elif partial:
            raise ValueError(f"model name {name!r} is ambiguous: {', '.join(m.stem for m in partial)}")
        else:
            raise FileNotFoundError(f"no model {name!r} in {folder} "
                                    f"(have: {', '.join(m.stem for m in available) or 'none'})")
    return out


def make_inputs(model_path: Path, image: str | os.PathLike | None, seed: int = 0) -> list[np.ndarray]:
    """One array per model input: ``image`` preprocessed for the model, or seeded random values."""
    from pydeeplab.tflite.reader import load_model
    from pydeeplab.verification import make_inputs as inputs_for

    return inputs_for(load_model(model_path).main, image, seed)


# -- classification ---------------------------------------------------------------------------------

#: Operators whose activation input dtype says what arithmetic the model runs in.
_COMPUTE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def classify_model(model) -> dict:
    """The class of a parsed :class:`pydeeplab.tflite.model.Model` for the goals: ``float``, ``uint8``,
    ``int8``, ``hybrid`` (float activations, some convolutions with int8 weights) or ``other``, with ``why`` (what in the graph says so) and the facts it rests on.

    The class is the dtype most convolutions read (their activation input): float32 is
    ``float`` (float16 weights dequantized included), uint8 ``uint8``, int8 ``int8``.
    """
    from pydeeplab.summary import hybrid_operators
    from pydeeplab.tflite.schema import BuiltinOperator, TensorType

    g = model.main
    t = g.tensors
    compute = [op for op in g.operators
               if op.builtin in {getattr(BuiltinOperator, n) for n in _COMPUTE_OPS} and op.inputs and op.inputs[0] >= 0]
    counts = Counter(t[op.inputs[0]].type for op in compute)
    io_types = sorted({t[i].type.name.lower() for i in (*g.inputs, *g.outputs)})
    fp16 = sum(1 for op in g.operators if op.builtin == BuiltinOperator.DEQUANTIZE
               and t[op.inputs[0]].type == TensorType.FLOAT16 and t[op.inputs[0]].data is not None)
    quantize_in = any(op.builtin == BuiltinOperator.QUANTIZE and op.inputs[0] in g.inputs for op in g.operators)
    dequantize_out = any(op.builtin == BuiltinOperator.DEQUANTIZE and set(op.outputs) & set(g.outputs)
                         for op in g.operators)
    per_channel = sum(1 for op in compute if len(op.inputs) > 1 and op.inputs[1] >= 0
                      and t[op.inputs[1]].quantization is not None and t[op.inputs[1]].quantization.per_channel)
    customs = sorted({op.code.custom_code for op in g.operators if op.builtin == BuiltinOperator.CUSTOM})
    facts = {"compute_dtypes": {k.name.lower(): v for k, v in counts.most_common()}, "io_dtypes": io_types,
             "fp16_constants": fp16, "quantize_at_input": quantize_in, "dequantize_at_output": dequantize_out,
             "per_channel_weights": per_channel, "custom_ops": customs}
    if not counts:
        return {"class": "other", "why": "no convolution to read a compute dtype from", **facts}
    dominant, n = counts.most_common(1)[0]
    of = f"{n} of {len(compute)} convolutions read {dominant.name.lower()}"
    hybrid = len(hybrid_operators(g))
    if dominant == TensorType.FLOAT32 and hybrid:
        return {"class": "hybrid", "why": f"{of}, {hybrid} of them with int8 weights (dynamic-range quantization)",
                **facts}
    if dominant == TensorType.FLOAT32:
        why = of + (f"; {fp16} float16 weight tensors dequantized" if fp16 else "; float32 weights")
        return {"class": "float", "why": why, **facts}
    if dominant == TensorType.UINT8:
        return {"class": "uint8", "why": of + ", per-tensor uint8" + (" (some per-channel)" if per_channel else ""),
                **facts}
    if dominant == TensorType.INT8:
        ends = ("float I/O through QUANTIZE/DEQUANTIZE" if quantize_in and dequantize_out
                else f"I/O {', '.join(io_types)}")
        return {"class": "int8", "why": f"{of}, {per_channel} with per-channel weights, {ends}", **facts}
    return {"class": "other", "why": of, **facts}


# -- the synthesized int8 model ---------------------------------------------------------------------


def synth_cache_dir() -> Path:
    """Where synthesized models are kept between runs: ``~/.cache/pydeeplab/synth``."""
    from pydeeplab.models import user_cache_dir

    return user_cache_dir() / "synth"


def synthesized(name: str, source: Path, cache_dir: Path | None = None, tools_dir: Path | None = None,
                images: Sequence[Path] | None = None, progress: bool = True) -> tuple[Path | None, str]:
    """The model ``name`` (one of :data:`SYNTHESIZED`) built from the float model ``source`` by
    ``tools/quantize.py``: the int8 per-channel model, or the dynamic-range one.

    Built once into ``cache_dir/<source and quantizer digests>/<source stem><suffix>.tflite`` (written to
    a temporary name, then renamed) and reused. ``images``: calibration images of the int8 model (None: the
    quantizer's default, the shared photographs). Returns ``(path, note)``; ``path`` is None when it
    cannot be had, and ``note`` says why ("<name>: tools/quantize.py not available", or the
    quantizer's error).
    """
    from pydeeplab.models import sha256_file

    suffix, function, calibrated = SYNTHESIZED[name]
    source = Path(source)
    script = Path(tools_dir if tools_dir is not None else TOOLS_DIR) / "quantize.py"
    if not script.exists():
        return None, f"{name}: tools/quantize.py not available"
    if not source.exists():
        return None, f"{name}: its source {source} is missing"
    # Keyed by the source and the quantizer: a changed tools/quantize.py builds a new model.
    digest = f"{sha256_file(source)[:12]}-{sha256_file(script)[:8]}"
    target = (Path(cache_dir) if cache_dir is not None else synth_cache_dir()) / digest / f"{source.stem}{suffix}.tflite"
    label = f"synthesized from {source.stem} by tools/quantize.py"
    if target.exists():
        return target, f"{label} (cached {target})"
    if str(script.parent) not in sys.path:  # quantize.py imports its sibling tools (synth.py)
        sys.path.insert(0, str(script.parent))
    try:
        spec = importlib.util.spec_from_file_location("quantize", script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        build = getattr(module, function)
    except Exception as exc:
        return None, f"{name}: tools/quantize.py not usable: {type(exc).__name__}: {exc}"
    images = list(images) if images is not None else None
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=".tflite", dir=target.parent)
    os.close(fd)
    try:
        if calibrated:
            build(source, Path(tmp), images, progress=progress)
        else:
            build(source, Path(tmp))
        if os.path.getsize(tmp) == 0:
            raise RuntimeError("it wrote an empty file")
        os.replace(tmp, target)
    except Exception as exc:
        return None, f"{name}: tools/quantize.py failed on {source.name}: {type(exc).__name__}: {exc}"
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    meta = {"source": str(source), "source_sha256": sha256_file(source), "tool": f"tools/quantize.py {function}"}
    if calibrated:
        meta["calibration_images"] = [str(p) for p in images] if images is not None else "tools/quantize.py's default"
    target.with_suffix(".json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return target, f"{label} (built into {target})"


def synthesized_int8(source: Path, cache_dir: Path | None = None, tools_dir: Path | None = None,
                     images: Sequence[Path] | None = None, progress: bool = True) -> tuple[Path | None, str]:
    """:func:`synthesized` of the int8 per-channel model (:data:`SYNTH_NAME`)."""
    return synthesized(SYNTH_NAME, source, cache_dir, tools_dir, images, progress)


# -- what a run times -------------------------------------------------------------------------------


@dataclass
class BenchModel:
    """One model of a run: what pydeeplab runs (``path``) and what LiteRT runs in its place.

    ``litert_path``: the model itself, its builtin rewrite (custom operators a builtin computes exactly),
    or None when LiteRT cannot run it; ``litert_note`` says which and why. ``label``: how tables name
    the model's origin ("synthesized from ...", "graph cut before ...").
    """

    name: str
    path: Path
    litert_path: Path | None
    litert_note: str = ""
    label: str = ""
    #: Only latency and profile for a stand-in graph (a cut): memory and start-up belong to real models.
    latency_only: bool = False
    facts: dict = field(default_factory=dict)


def bench_models(paths: Sequence[Path], workdir: Path,
                 synthesized_models: Sequence[tuple[Path, str, str]] = ()) -> list[BenchModel]:
    """The models of a run: each of ``paths``, then the ``synthesized_models`` ((path, name, label)
    each); for a model with a custom operator that no builtin computes, also its graph cut before
    that operator, which both sides run (written into ``workdir``, which must outlive the run)."""
    from pydeeplab.tflite.reader import read_model
    from pydeeplab.tflite.schema import BuiltinOperator
    from pydeeplab.tflite.surgery import litert_equivalent

    out = []
    items = [(p, p.stem, "") for p in paths] + list(synthesized_models)
    for path, name, label in items:
        content = path.read_bytes()
        eq = litert_equivalent(content)
        if not eq.rewritten and not eq.cut:
            out.append(BenchModel(name, path, path, label=label))
            continue
        model = read_model(content)
        customs = [op for op in model.main.operators if op.builtin == BuiltinOperator.CUSTOM]
        if eq.rewritten and not eq.cut:
            rewrite = workdir / f"{name}-litert.tflite"
            rewrite.write_bytes(eq.content)
            what = ", ".join(f"{c} as the builtin that computes it exactly" for c in sorted(set(eq.rewritten.values())))
            out.append(BenchModel(name, path, rewrite, f"LiteRT runs the builtin rewrite ({what})", label))
            continue
        opaque = sorted({op.code.custom_code for op in customs if op.index in eq.cut})
        cut_name = f"{name}-cut"
        cut = workdir / f"{cut_name}.tflite"
        cut.write_bytes(eq.content)
        why = (f"LiteRT cannot run the custom operator {', '.join(opaque)}; see {cut_name}, the graph cut "
               "before it, timed on both sides")
        out.append(BenchModel(name, path, None, why, label))
        out.append(BenchModel(cut_name, cut, cut,
                              f"the graph of {name} cut before {', '.join(opaque)} "
                              f"({len(eq.cut)} of {len(model.main.operators)} operators removed); both sides run it",
                              label=f"cut from {name} before {', '.join(opaque)}", latency_only=True))
    return out


def model_facts(m: BenchModel) -> dict:
    """Name, origin, input signature, multiply-accumulates and class of a model."""
    from pydeeplab.summary import operator_macs
    from pydeeplab.tflite.reader import load_model

    model = load_model(m.path)
    graph = model.main
    macs = sum(operator_macs(op, graph.tensors) for op in graph.operators)
    inputs = [f"{graph.tensors[i].type.name.lower()}{list(graph.tensors[i].shape)}" for i in graph.inputs]
    cls = classify_model(model)
    return {"model": m.name, "path": str(m.path), "label": m.label, "litert": m.litert_note,
            "litert_runs": m.litert_path is not None, "latency_only": m.latency_only, "inputs": inputs,
            "macs": int(macs), "operators": len(graph.operators), "class": cls.pop("class"),
            "class_why": cls.pop("why"),
            "graph": cls}
