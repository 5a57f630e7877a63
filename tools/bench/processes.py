"""Peak memory and start-up time, each measured in a fresh Python process."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from .models import BenchModel
from .runtimes import _LITERT_RESOLVERS, BLAS_ENV, PYDEEPLAB_RUNTIMES, SHORT, Log, Unavailable


# its peak memory and start-up time would include them.
_CHILD = r"""
import contextlib, json, sys, time
T0 = time.time()
spec = json.loads(sys.argv[1])
rt = spec["runtime"]
watch = contextlib.nullcontext()
compiled = {}
if rt in ("numba", "numpy"):
    import pydeeplab
    if spec["imports_only"] == "kernels":
        import pydeeplab.kernels.conv, pydeeplab.ops
    if rt == "numba" and not spec["imports_only"]:
        # What makes the CLI say "compiling kernels, first run only...": a kernel compile (a cache miss).
        from pydeeplab.compiling import compile_notice
        watch = compile_notice(lambda name: compiled.setdefault("kernel", name))
    def make():
        return pydeeplab.Interpreter(model_path=spec["model"], num_threads=spec["threads"], backend=rt)
else:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    resolver = getattr(OpResolverType, spec["resolver"])
    def make():
        return Interpreter(model_path=spec["model"], num_threads=spec["threads"],
                           experimental_op_resolver_type=resolver)
import numpy as np
out = {"t_start": T0, "t_import": time.time()}
if not spec["imports_only"]:
    with np.load(spec["inputs"]) as data:
        inputs = [data[f"input{i}"] for i in range(len(data.files))]
    with watch:
        it = make()
        it.allocate_tensors()
        out["t_load"] = time.time()
        for d, x in zip(it.get_input_details(), inputs):
            it.set_tensor(d["index"], x)
        it.invoke()
        result = [it.get_tensor(d["index"]) for d in it.get_output_details()]
        out["t_result"] = time.time()
    if rt == "numba":
        out["compiled"] = compiled.get("kernel")
peak = None
try:
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out["peak_kb"] = peak
print("BENCH-CHILD " + json.dumps(out), flush=True)
"""


def run_child(runtime: str, model_path: Path | None, inputs_file: Path | None, threads: int | None = 1,
              imports_only: bool | str = False, env: dict | None = None, timeout: float = 1800.0) -> dict:
    """Run one fresh process that loads the model in ``runtime`` and runs one image.

    ``imports_only``: only import the runtime (``"kernels"``: pydeeplab with its
    operators and Numba kernels, which ``import pydeeplab`` alone does not load).
    ``threads`` None: the runtime's default (every core), the BLAS variables left as they are.

    Returns its report: ``peak_kb`` (VmHWM), and wall-clock times (``time.time``)
    of ``spawn`` (just before the parent started it), ``t_start`` (the script's
    first line), ``t_import``, ``t_load`` (model planned), ``t_result`` (first
    output read) and ``exit``.
    """
    spec = {"runtime": runtime, "model": str(model_path) if model_path else None, "threads": threads,
            "inputs": str(inputs_file) if inputs_file else None, "imports_only": imports_only,
            "resolver": _LITERT_RESOLVERS.get(runtime)}
    child_env = dict(os.environ if env is None else env)
    if threads is not None:
        child_env.update({k: str(threads) for k in BLAS_ENV})
    spawn = time.time()
    done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(spec)], env=child_env,
                          capture_output=True, text=True, timeout=timeout)
    end = time.time()
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH-CHILD ")), None)
    if done.returncode != 0 or line is None:
        tail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise Unavailable(f"child process failed: {tail}")
    return {**json.loads(line[len("BENCH-CHILD "):]), "spawn": spawn, "exit": end, "stderr": done.stderr}


def _phases(r: dict) -> dict:
    return {"total_s": r["t_result"] - r["spawn"], "python_start_s": r["t_start"] - r["spawn"],
            "import_s": r["t_import"] - r["t_start"], "load_s": r["t_load"] - r["t_import"],
            "first_invoke_s": r["t_result"] - r["t_load"]}


def _model_for(m: BenchModel, runtime: str) -> Path:
    """The file ``runtime`` runs for ``m`` (LiteRT: its stand-in); raises Unavailable when it has none."""
    if runtime in PYDEEPLAB_RUNTIMES:
        return m.path
    if m.litert_path is None:
        raise Unavailable(f"no {SHORT.get(runtime, runtime)} figure: {m.litert_note}")
    return m.litert_path


def bench_memory(models: Sequence[BenchModel], inputs_files: dict[str, Path], runtimes: Sequence[str],
                 log: Log | None = None) -> list[dict]:
    """Peak RSS of a fresh process per (model, runtime), 1 thread; plus import-only baselines (model None).

    ``above_import_mb``: the peak less that of a process that only imports the
    same runtime (for the numba backend: with its kernels), i.e. what the model
    and the first run add. Stand-in graphs (``latency_only``) are left out.
    """
    rows = []
    baselines = {"import pydeeplab": ("numpy", True),
                 "import pydeeplab, its ops and kernels (Numba)": ("numba", "kernels"),
                 "import ai_edge_litert": ("xnnpack", True)}
    base_of = {}
    for what, (rt, level) in baselines.items():
        try:
            r = run_child(rt, None, None, imports_only=level)
            rows.append({"model": None, "runtime": what, "peak_mb": r["peak_kb"] / 1024})
            base_of[rt] = r["peak_kb"] / 1024
        except Unavailable as exc:
            rows.append({"model": None, "runtime": what, "error": str(exc)})
    base_of["builtin"] = base_of.get("xnnpack")
    for m in models:
        if m.latency_only:
            continue
        for rt in runtimes:
            if log:
                log(f"{m.name}: peak memory of {rt}")
            row = {"model": m.name, "runtime": rt}
            try:
                path = _model_for(m, rt)
                if rt == "numba":  # a stale Numba cache would add the compiler's memory to the model's
                    run_child(rt, path, inputs_files[m.name])
                r = run_child(rt, path, inputs_files[m.name])
                row["peak_mb"] = r["peak_kb"] / 1024
                if base_of.get(rt) is not None:
                    row["above_import_mb"] = row["peak_mb"] - base_of[rt]
            except Unavailable as exc:
                row["error"] = str(exc)
            rows.append(row)
    return rows


#: Set on some machines (this one, CI images): Python then writes no bytecode, and every process compiles
#: pydeeplab's modules from source again (71 of them, 0.1 s of each start here, by cProfile), which a
#: user does not pay: pip compiles the bytecode when it installs a package, and a checkout's is written
#: on its first import.
NO_BYTECODE = "PYTHONDONTWRITEBYTECODE"


def startup_env(pycache: str, environ: dict | None = None) -> dict:
    """The environment of a start-up child: ``environ`` (default this process's) with bytecode written,
    and read again, under the folder ``pycache`` (``PYTHONPYCACHEPREFIX``): no file beside the sources,
    and no :data:`NO_BYTECODE` to make each process compile them again."""
    env = {k: v for k, v in (os.environ if environ is None else environ).items() if k != NO_BYTECODE}
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def bench_cold(models: Sequence[BenchModel], inputs_files: dict[str, Path], runtimes: Sequence[str], repeat: int,
               compile_once: bool = True, log: Log | None = None) -> list[dict]:
    """Start-up rows: warm Numba cache (median of ``repeat`` after one warming run) and, for pydeeplab,
    an empty one (once: ``NUMBA_CACHE_DIR`` a new folder, the first-ever compile, with what the
    process said on stderr meanwhile). Each runtime at its default thread count, as a new user runs
    it (``pydeeplab segment`` uses every core: on 2+, its first run also compiles the kernels'
    launcher). For numba, ``compiled``: the first kernel whose compile
    :func:`pydeeplab.compiling.compile_notice` saw (what makes the CLI announce it), None when
    everything came from the cache. Stand-in graphs (``latency_only``) are left out. Python's bytecode
    is cached for them all (:func:`startup_env`, in a folder of its own for the call), as after an install:
    the first run of each model writes what it imports, before the timed ones."""
    with tempfile.TemporaryDirectory(prefix="pydeeplab-bytecode-") as pycache:
        return _bench_cold(models, inputs_files, runtimes, repeat, compile_once, startup_env(pycache), log)


def _bench_cold(models, inputs_files, runtimes, repeat, compile_once, env, log) -> list[dict]:
    rows = []
    for m in models:
        if m.latency_only:
            continue
        for rt in runtimes:
            kinds = [("warm", None)]
            if rt in PYDEEPLAB_RUNTIMES and compile_once:
                kinds.append(("empty_cache", "numba-cache"))
            for kind, cache in kinds:
                if log:
                    log(f"{m.name}: cold start of {rt} ({kind.replace('_', ' ')})")
                row = {"model": m.name, "runtime": rt, "numba_cache": kind if rt in PYDEEPLAB_RUNTIMES else None}
                try:
                    path = _model_for(m, rt)
                    if cache is None:
                        # warms the caches: Numba's, the bytecode and the OS's file cache
                        run_child(rt, path, inputs_files[m.name], None, env=env)
                        done = [run_child(rt, path, inputs_files[m.name], None, env=env) for _ in range(repeat)]
                    else:
                        with tempfile.TemporaryDirectory(prefix="pydeeplab-numba-cache-") as tmp:
                            done = [run_child(rt, path, inputs_files[m.name], None, env=dict(env, NUMBA_CACHE_DIR=tmp))]
                            row["stderr"] = done[0]["stderr"].strip()[:300]
                    if rt == "numba":  # the first kernel compiled (None: all from the cache)
                        row["compiled"] = next((r["compiled"] for r in done if r.get("compiled")), None)
                except Unavailable as exc:
                    row["error"] = str(exc)
                    rows.append(row)
                    continue
                runs = [_phases(r) for r in done]
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                row.update(med, min_total_s=min(r["total_s"] for r in runs), runs=len(runs))
                rows.append(row)
    return rows
