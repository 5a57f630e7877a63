"""One benchmark run: every section over every model, into one JSON-able report."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from pydeeplab.models import data_dir

from .environment import BlasThreads, git_commit, machine_info, openblas_warning, skewing_variables
from .goals import RATIO_LIMITS, _median, _ratio, evaluate_goals
from .host import cpu_overlap
from .latency import CHILD_ENV, bench_latency, latency_in_children
from .models import SYNTH_SOURCE, SYNTHESIZED, bench_models, find_models, make_inputs, model_facts, synthesized
from .onnx_conversion import onnx_cache_dir
from .processes import bench_cold, bench_memory
from .profile import bench_profile
from .runtimes import BLAS_ENV, PYDEEPLAB_RUNTIMES, RUNTIMES, Log

SECTIONS = ("latency", "memory", "cold", "profile")
DEFAULT_SECTIONS = SECTIONS
DEFAULT_IMAGE = "bird_segmentation.bmp"
#: Models profiled per operator after the latency section: those this far from their goal.
PROFILE_WORST = 3


def _cpu_overlap(n: int, log: Log | None, work: str) -> dict:
    """The host check of :mod:`.host` on ``n`` threads, on ``work`` (:data:`.host.WORK`)."""
    if log:
        log(f"host check: {n} threads busy at once against one ({work})")
    return cpu_overlap(n, work=work)


def _loads() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def worst_models(report: dict, k: int) -> list[str]:
    """The ``k`` models whose numba / XNNPACK ratio is furthest above (or least below) their class's goal."""
    scored = []
    for f in report.get("models", []):
        ratio = _ratio(_median(report, f["model"], "numba"), _median(report, f["model"], "xnnpack"))
        if ratio is not None:
            scored.append((ratio / RATIO_LIMITS.get(f.get("class"), 1.0), f["model"]))
    return [m for _, m in sorted(scored, reverse=True)[:k]]


def run_bench(models: Sequence[str | os.PathLike] | None = None, *, models_dir: str | os.PathLike | None = None,
              runtimes: Sequence[str] = RUNTIMES, threads: Sequence[int] = (1, 2), repeat: int = 20,
              warmup: int = 2, budget: float = 20.0, pause: float = 0.02, image: str | os.PathLike | None = "default",
              sections: Sequence[str] = DEFAULT_SECTIONS, cold_repeat: int = 3, compile_once: bool = True,
              top: int = 15, profile_worst: int | None = PROFILE_WORST, synth: bool = True,
              synth_cache: str | os.PathLike | None = None, onnx_cache: str | os.PathLike | None = None,
              onnx_python: str | None = None, command: str | None = None, log: Log | None = None) -> dict:
    """Run the benchmark; returns the report as a JSON-able dict (see :func:`bench.report.format_report`).

    ``models``: paths or names in ``models_dir`` (default: every model of
    ``<data>/models``, plus the int8 and the dynamic-range models synthesized from deeplabv3_257_mv_gpu
    unless ``synth`` is False; with ``models`` given, a synthesized model only when its name,
    ``deeplabv3_257_mv_gpu_int8`` or ``deeplabv3_257_mv_gpu_dr``, is among them). ``runtimes``: a subset of :data:`RUNTIMES`. ``image``: a path, ``"default"``
    (``bird_segmentation.bmp`` of the data folder, or random input when it is missing) or None
    (seeded random input). ``sections``: a subset of :data:`SECTIONS`. ``repeat`` timed runs per
    runtime and thread count (fewer for one whose runs passed ``budget`` seconds, at least 3).
    ``profile_worst``: after a latency section, profile only the models furthest from their goal
    (None: every model).
    """
    bad = [r for r in runtimes if r not in RUNTIMES]
    if bad:
        raise ValueError(f"unknown runtime(s) {', '.join(bad)}: choose from {', '.join(RUNTIMES)}")
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        raise ValueError(f"unknown section(s) {', '.join(bad)}: choose from {', '.join(SECTIONS)}")
    if repeat < 1 or not threads or any(n < 1 for n in threads):
        raise ValueError("repeat and thread counts must be >= 1")
    names = [str(m) for m in models] if models else None
    want_synth = [n for n in SYNTHESIZED if synth and (names is None or n in names)]
    if names is not None:
        names = [n for n in names if n not in SYNTHESIZED]
    paths = find_models(names, models_dir) if names or names is None else []
    if image == "default":
        candidate = data_dir() / "images" / DEFAULT_IMAGE
        image = candidate if candidate.exists() else None
    blas = BlasThreads()
    cache = Path(onnx_cache) if onnx_cache else onnx_cache_dir()
    report: dict = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "commit": git_commit(),
        "machine": machine_info(),
        "load_average_start": _loads(),
        "blas": blas.info(),
        "warnings": [w for w in [openblas_warning(command=command)] if w],
        "skewing_variables": skewing_variables(),
        "config": {"runtimes": list(runtimes), "threads": list(threads), "repeat": repeat, "warmup": warmup,
                   "budget_s": budget, "pause_s": pause, "image": str(image) if image else "random (seed 0)",
                   "sections": list(sections), "onnx_cache": str(cache), "synth": want_synth},
        "notes": [],
    }
    built = []
    if want_synth:
        source = next((p for p in paths if p.stem == SYNTH_SOURCE), None)
        if source is None:
            source = data_dir() / "models" / f"{SYNTH_SOURCE}.tflite"
        for name in want_synth:
            if log:
                log(f"{name}: from {source.name} with tools/quantize.py (built once, cached)")
            path, note = synthesized(name, source, Path(synth_cache) if synth_cache else None, progress=log is not None)
            report["notes"].append(note)
            if log:
                log(note)
            if path is not None:
                built.append((path, name, f"synthesized from {SYNTH_SOURCE}"))
    with tempfile.TemporaryDirectory(prefix="pydeeplab-bench-") as tmp:
        work = Path(tmp)
        entries = bench_models(paths, work, built)
        report["models"] = [model_facts(m) for m in entries]
        inputs = {m.name: make_inputs(m.path, image) for m in entries}
        overlap_check = "latency" in sections and max(threads) > 1 and os.environ.get(CHILD_ENV) != "1"
        if overlap_check:
            report["cpu_overlap"] = {"start": _cpu_overlap(max(threads), log, "chain")}
            report["core_overlap"] = {"start": _cpu_overlap(max(threads), log, "wide")}
        if "latency" in sections:
            in_child = os.environ.get(CHILD_ENV) == "1"
            if blas.method == "threadpoolctl" or in_child:
                rows = []
                for m in entries:
                    rows += bench_latency(m, inputs[m.name], runtimes, threads, repeat, warmup, budget, pause, blas,
                                          cache, onnx_python, log)
            else:
                report["config"]["latency_in_children"] = True  # (runs of other thread counts never in one round)
                report["blas"]["note"] = ("threadpoolctl is not installed: each thread count was timed in its own "
                                          f"process with {', '.join(BLAS_ENV)} set to it")
                args = ["--repeat", str(repeat), "--warmup", str(warmup), "--budget", str(budget), "--pause",
                        str(pause), "--onnx-cache", str(cache)]
                args += ["--image", str(image)] if image else ["--random-input"]
                if onnx_python:
                    args += ["--onnx-python", onnx_python]
                real = [m.path for m in entries if not m.latency_only]
                rows = latency_in_children(real, runtimes, threads, args, report["machine"], log)
            report["latency"] = rows
        if overlap_check:
            report["cpu_overlap"]["end"] = _cpu_overlap(max(threads), log, "chain")
            report["core_overlap"]["end"] = _cpu_overlap(max(threads), log, "wide")
        if "memory" in sections or "cold" in sections:
            files = {}
            for name, arrays in inputs.items():
                files[name] = work / f"{name}.npz"
                np.savez(files[name], **{f"input{i}": a for i, a in enumerate(arrays)})
            if "memory" in sections:
                rts = [r for r in runtimes if r in ("numba", "numpy", "xnnpack", "builtin")]
                report["memory"] = bench_memory(entries, files, rts, log)
            if "cold" in sections:
                rts = [r for r in runtimes if r in ("numba", "xnnpack")]
                report["cold"] = bench_cold(entries, files, rts, cold_repeat, compile_once, log)
        if "profile" in sections:
            chosen = entries
            if "latency" in sections and profile_worst is not None:
                worst = worst_models(report, profile_worst)
                chosen = [m for m in entries if m.name in worst] or entries
                chosen.sort(key=lambda m: worst.index(m.name) if m.name in worst else len(worst))
            backends = ([r for r in runtimes if r == "numba"] or [r for r in runtimes if r in PYDEEPLAB_RUNTIMES]
                        or ["numba"])
            profiles = []
            for m in chosen:
                for backend in backends:
                    if log:
                        log(f"{m.name}: profile of {backend}")
                    try:
                        profiles.append(bench_profile(m.path, inputs[m.name], backend, threads[0], repeat, warmup,
                                                      budget, blas, top, model_name=m.name))
                    except Exception as exc:
                        profiles.append({"model": m.name, "backend": backend, "threads": threads[0],
                                         "error": f"{type(exc).__name__}: {exc}"})
            report["profile"] = profiles
    if "numba" in sys.modules:
        numba = sys.modules["numba"]
        try:
            report["machine"]["numba_threading_layer"] = numba.threading_layer()
            report["machine"]["numba_num_threads"] = numba.config.NUMBA_NUM_THREADS
        except ValueError:  # no parallel region ran in this process
            pass
    report["load_average_end"] = _loads()
    # Again at the end: the OpenMP runtime Numba loaded is only there once a kernel ran.
    report["blas"] = {**report["blas"], **blas.info()}
    report["goals"] = evaluate_goals(report)
    return report
