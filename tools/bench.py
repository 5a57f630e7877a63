"""Benchmark harness: pydeeplab against LiteRT (and ONNX Runtime) on real models.

Run it from a checkout: ``python tools/bench.py --help`` (it is not installed with the
package, which holds runtime code only; BENCHMARKS.md has the latest figures).

What it measures, per model:

- **latency**: every runtime on the same input at each thread count, all in one
  process, after warm-up, in alternating rounds (each round runs every runtime
  once, in a rotated order, so that drift and noise from other processes fall on
  all of them alike). Only ``invoke`` is timed. Median and min per runtime, and
  the ratio pydeeplab / each peer.
- **memory**: peak resident memory (VmHWM) of a fresh process that imports the
  runtime, loads the model and runs one image; and of one that only imports,
  so that the library's own footprint can be told from the model's.
- **cold start**: time from spawning a fresh ``python -c`` to its first result,
  with a warm Numba cache, and once with an empty one (``NUMBA_CACHE_DIR`` set
  to a new temporary folder: the first-ever JIT compile).
- **profile** (``--profile``): per-operator time of pydeeplab's interpreter
  (``Interpreter.invoke_profiled``), summed by operator type, and the slowest
  operators with their shapes and achieved multiply-accumulate rate.

Runtimes: ``numba`` and ``numpy`` (pydeeplab's two backends), ``xnnpack``
(LiteRT's default, which applies the XNNPACK delegate), ``builtin`` (LiteRT
``BUILTIN_WITHOUT_DEFAULT_DELEGATES``: its optimized kernels without XNNPACK),
``ref`` (LiteRT ``BUILTIN_REF``: its reference kernels) and ``onnxruntime``
(when installed; the model converted once to ONNX with a converter from PyPI,
``tflite2onnx`` or ``tf2onnx``, and cached outside the repository).

Threads: LiteRT and ONNX Runtime take the thread count at construction;
pydeeplab's Interpreter applies it to Numba on each invoke. The float model's
1x1 convolutions run in BLAS (numpy matmul), whose threads must follow the same
count: with ``threadpoolctl`` installed the harness sets the BLAS limit before
every pydeeplab run; without it, each thread count is measured in its own child
process with ``OPENBLAS_NUM_THREADS`` (and MKL/BLIS equivalents) set, and the
report says so.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

try:
    import pydeeplab  # noqa: F401
except ImportError:  # run from a checkout where pydeeplab is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydeeplab.models import data_dir  # noqa: E402

RUNTIMES = ("numba", "numpy", "xnnpack", "builtin", "ref", "onnxruntime")
PYDEEPLAB_RUNTIMES = ("numba", "numpy")
LABELS = {
    "numba": "pydeeplab numba",
    "numpy": "pydeeplab numpy",
    "xnnpack": "LiteRT default (XNNPACK)",
    "builtin": "LiteRT built-in, no XNNPACK",
    "ref": "LiteRT reference kernels",
    "onnxruntime": "ONNX Runtime",
}
_LITERT_RESOLVERS = {"xnnpack": "AUTO", "builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "ref": "BUILTIN_REF"}
SECTIONS = ("latency", "memory", "cold", "profile")
DEFAULT_SECTIONS = ("latency", "memory", "cold")
DEFAULT_IMAGE = "bird_segmentation.bmp"
#: Environment variables that set BLAS thread pools at library load time.
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")
#: Set in the child processes the harness runs itself (no re-spawning from there).
_CHILD_ENV = "PYDEEPLAB_BENCH_CHILD"

FLOAT_MODEL = "deeplabv3_257_mv_gpu"
QUANT_MODEL = "deeplabv3_mnv2_pascal_quant"

Log = Callable[[str], None]


class Unavailable(Exception):
    """A runtime that cannot run here (not installed, no converted model, unsupported model)."""


# -- machine and environment ------------------------------------------------------------------


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """CPU, cores, load, library versions and the BLAS/threading environment."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        pass
    simd = [s for s in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16") if f" {s}" in flags]
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "simd": simd,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {d: _version(d) for d in ("pydeeplab", "numpy", "numba", "llvmlite", "ai-edge-litert",
                                                 "onnxruntime", "threadpoolctl")},
        "environment": {k: v for k, v in sorted(os.environ.items())
                        if k.startswith(("OPENBLAS", "NUMBA_", "OMP_", "MKL_", "BLIS_", "GOTO"))},
    }


def _numpy_blas_config() -> dict | None:
    try:
        cfg = np.show_config(mode="dicts")
        return cfg.get("Build Dependencies", {}).get("blas")
    except Exception:  # the config format is not a stable API
        return None


class BlasThreads:
    """Sets the BLAS thread count in this process, through threadpoolctl when it is installed."""

    def __init__(self) -> None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            self._controller = None
        else:
            self._controller = ThreadpoolController()
        self._original = None

    @property
    def method(self) -> str:
        return "threadpoolctl" if self._controller is not None else "environment"

    def set(self, n: int) -> None:
        if self._controller is None:
            return
        limiter = self._controller.limit(limits=n, user_api="blas")
        if self._original is None:
            self._original = limiter

    def restore(self) -> None:
        if self._original is not None:
            self._original.restore_original_limits()
            self._original = None

    def info(self) -> dict:
        out = {"method": self.method, "numpy_blas": _numpy_blas_config()}
        if self._controller is not None:
            keys = ("user_api", "internal_api", "prefix", "version", "num_threads", "architecture",
                    "threading_layer", "filepath")
            out["libraries"] = [{k: lib.get(k) for k in keys if k in lib} for lib in self._controller.info()]
        return out


# -- models and inputs ------------------------------------------------------------------------


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


def model_facts(model_path: Path) -> dict:
    """Name, input signature and multiply-accumulates of a model."""
    from pydeeplab.summary import operator_macs
    from pydeeplab.tflite.reader import load_model

    graph = load_model(model_path).main
    macs = sum(operator_macs(op, graph.tensors) for op in graph.operators)
    inputs = [f"{graph.tensors[i].type.name.lower()}{list(graph.tensors[i].shape)}" for i in graph.inputs]
    return {"model": model_path.stem, "path": str(model_path), "inputs": inputs, "macs": int(macs),
            "operators": len(graph.operators)}


# -- ONNX Runtime: a converted model, cached outside the repository --------------------------------


def onnx_cache_dir() -> Path:
    from pydeeplab.models import user_cache_dir

    return user_cache_dir() / "onnx"


# Tried in this order: tf2onnx (the maintained converter, handles the uint8 models; needs
# TensorFlow), tflite2onnx (light, float models only in practice).
_CONVERTERS = {
    "tf2onnx": ["-m", "tf2onnx.convert", "--tflite", "{src}", "--output", "{dst}"],
    "tflite2onnx": ["-c", "import sys, tflite2onnx; tflite2onnx.convert(sys.argv[1], sys.argv[2])", "{src}", "{dst}"],
}


def onnx_model(model_path: Path, cache_dir: Path | None = None, python: str | None = None,
               timeout: float = 900.0) -> Path:
    """The ONNX conversion of ``model_path``, converting it once into ``cache_dir``.

    Converters are tried in order (tf2onnx, which needs TensorFlow; tflite2onnx)
    with the Python ``python`` (default: this one), so that a
    converter can live in its own environment. A failed conversion leaves a
    ``.failed`` note beside the cache entry (delete it to try again). Raises
    :class:`Unavailable` with the reason.
    """
    from pydeeplab.models import sha256_file

    cache_dir = Path(cache_dir) if cache_dir is not None else onnx_cache_dir()
    digest = sha256_file(model_path)[:16]
    target = cache_dir / f"{model_path.stem}-{digest}.onnx"
    failed = target.with_suffix(".onnx.failed")
    if target.exists():
        return target
    if failed.exists():
        raise Unavailable(f"conversion failed before ({failed}): {failed.read_text(encoding='utf-8').strip()}")
    python = python or sys.executable
    try:
        probe = subprocess.run([python, "-c", "import importlib.util as u, sys; "
                                "print(' '.join(m for m in sys.argv[1:] if u.find_spec(m)))", *_CONVERTERS],
                               capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"cannot run the converter's Python {python}: {exc}") from None
    found = probe.stdout.split()
    if not found:
        raise Unavailable(f"no converter ({' or '.join(_CONVERTERS)}) importable by {python}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    reasons = []
    for name in found:
        tmp = target.with_suffix(f".{os.getpid()}.tmp.onnx")
        args = [a.format(src=model_path, dst=tmp) for a in _CONVERTERS[name]]
        try:
            done = subprocess.run([python, *args], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            reasons.append(f"{name}: timed out after {timeout:.0f} s")
            continue
        if done.returncode == 0 and tmp.exists():
            os.replace(tmp, target)
            version = subprocess.run([python, "-c", f"import importlib.metadata as m; print(m.version({name!r}))"],
                                     capture_output=True, text=True, timeout=60).stdout.strip()
            meta = {"source": str(model_path), "source_sha256": sha256_file(model_path), "converter": name,
                    "converter_version": version or None, "python": python}
            target.with_suffix(".onnx.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
            return target
        tmp.unlink(missing_ok=True)
        last = (done.stderr.strip().splitlines() or ["exit status %d" % done.returncode])[-1]
        reasons.append(f"{name}: {last}")
    failed.write_text("; ".join(reasons) + "\n", encoding="utf-8")
    raise Unavailable("conversion failed: " + "; ".join(reasons))


# -- runners ------------------------------------------------------------------------------------


@dataclass
class Runner:
    """One runtime at one thread count, loaded with the model and its input, ready to invoke."""

    runtime: str
    threads: int
    invoke: Callable[[], None]
    outputs: Callable[[], list[np.ndarray]]
    before: Callable[[], None] = lambda: None  # untimed setup before each run (BLAS threads)
    samples: list[float] = field(default_factory=list)
    spent: float = 0.0
    info: dict = field(default_factory=dict)  # facts for the report (the ONNX converter)


def make_runner(runtime: str, model_path: Path, content: bytes, inputs: list[np.ndarray], threads: int,
                blas: BlasThreads, onnx_cache: Path | None = None, onnx_python: str | None = None) -> Runner:
    """Load ``model_path`` in ``runtime`` with ``threads`` threads and set its inputs; raises Unavailable."""
    if runtime in PYDEEPLAB_RUNTIMES:
        from pydeeplab.errors import ModelError
        from pydeeplab.interpreter import Interpreter

        try:
            it = Interpreter(model_content=content, num_threads=threads, backend=runtime)
            it.allocate_tensors()
        except ModelError as exc:
            raise Unavailable(f"{type(exc).__name__}: {exc}") from None
        _set_inputs(it, inputs)
        return Runner(runtime, threads, it.invoke, _tflite_outputs(it), before=lambda: blas.set(threads))
    if runtime in _LITERT_RESOLVERS:
        try:
            from ai_edge_litert.interpreter import Interpreter as LiteInterpreter
            from ai_edge_litert.interpreter import OpResolverType
        except ImportError:
            raise Unavailable("not installed (pip install ai-edge-litert)") from None
        resolver = getattr(OpResolverType, _LITERT_RESOLVERS[runtime])
        it = LiteInterpreter(model_content=content, num_threads=threads, experimental_op_resolver_type=resolver)
        it.allocate_tensors()
        _set_inputs(it, inputs)
        return Runner(runtime, threads, it.invoke, _tflite_outputs(it))
    if runtime == "onnxruntime":
        return _onnx_runner(model_path, inputs, threads, onnx_cache, onnx_python)
    raise ValueError(f"unknown runtime {runtime!r}: choose from {', '.join(RUNTIMES)}")


def _set_inputs(it, inputs: list[np.ndarray]) -> None:
    """Set the inputs of a tflite_runtime-style interpreter (pydeeplab's or LiteRT's)."""
    details = it.get_input_details()
    if len(details) != len(inputs):
        raise Unavailable(f"model has {len(details)} inputs, {len(inputs)} prepared")
    for d, x in zip(details, inputs):
        it.set_tensor(d["index"], x)


def _tflite_outputs(it) -> Callable[[], list[np.ndarray]]:
    indices = [d["index"] for d in it.get_output_details()]
    return lambda: [np.array(it.get_tensor(i)) for i in indices]


def _onnx_runner(model_path: Path, inputs: list[np.ndarray], threads: int, cache: Path | None,
                 python: str | None) -> Runner:
    try:
        import onnxruntime as ort
    except ImportError:
        raise Unavailable("not installed (pip install onnxruntime)") from None
    path = onnx_model(model_path, cache, python)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {}
    for d, x in zip(session.get_inputs(), inputs):
        # Converters may turn the graph to NCHW; feed the same pixels in the layout it declares.
        want = tuple(d.shape)
        if len(want) == 4 and x.ndim == 4 and want != x.shape and want == tuple(x.transpose(0, 3, 1, 2).shape):
            x = x.transpose(0, 3, 1, 2)
        feed[d.name] = np.ascontiguousarray(x)
    last: list = []

    def invoke() -> None:
        last[:] = session.run(None, feed)

    def outputs() -> list[np.ndarray]:
        return [np.asarray(o) for o in last]

    meta_file = path.with_suffix(".onnx.json")
    meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.exists() else {}
    info = {"onnx": {"path": str(path), "converter": meta.get("converter"),
                     "converter_version": meta.get("converter_version")}}
    return Runner("onnxruntime", threads, invoke, outputs, info=info)


def _agreement(out: np.ndarray, ref: np.ndarray) -> dict:
    """How an output agrees with a reference output: max |diff| (float) or fraction equal (integer)."""
    if out.shape != ref.shape and out.ndim == 4 and out.transpose(0, 2, 3, 1).shape == ref.shape:
        out = out.transpose(0, 2, 3, 1)  # an NCHW ONNX graph
    if out.shape != ref.shape:
        return {"error": f"shape {list(out.shape)} vs {list(ref.shape)}"}
    if ref.dtype.kind == "f":
        return {"max_abs_diff": float(np.abs(out.astype(np.float64) - ref.astype(np.float64)).max())}
    return {"equal_fraction": float(np.mean(out == ref))}


# -- latency ------------------------------------------------------------------------------------


def measure(runners: list[Runner], repeat: int, warmup: int, budget: float, pause: float) -> None:
    """Fill each runner's ``samples``: warm-up, then ``repeat`` alternating rounds.

    Each round runs every runner once, starting one further along the list each
    time. A runner whose timed total passed ``budget`` seconds stops once it has
    min(3, repeat) samples. ``pause`` seconds before each run let the previous
    runtime's spinning worker threads go to sleep instead of competing with it.
    """
    for r in runners:
        for _ in range(warmup):
            r.before()
            r.invoke()
    floor = min(3, repeat)
    enabled = gc.isenabled()
    gc.disable()
    try:
        for rnd in range(repeat):
            k = rnd % len(runners)
            for r in runners[k:] + runners[:k]:
                if len(r.samples) >= floor and r.spent >= budget:
                    continue
                r.before()
                time.sleep(pause)
                start = time.perf_counter()
                r.invoke()
                elapsed = time.perf_counter() - start
                r.samples.append(elapsed)
                r.spent += elapsed
            gc.collect()
    finally:
        if enabled:
            gc.enable()


def bench_latency(model_path: Path, inputs: list[np.ndarray], runtimes: Sequence[str], threads: Sequence[int],
                  repeat: int, warmup: int, budget: float, pause: float, blas: BlasThreads,
                  onnx_cache: Path | None = None, onnx_python: str | None = None,
                  log: Log | None = None) -> list[dict]:
    """Latency rows for one model: one per (runtime, threads), with samples or the reason it did not run."""
    content = model_path.read_bytes()
    rows, runners = [], []
    for n in threads:
        for rt in runtimes:
            row = {"model": model_path.stem, "runtime": rt, "threads": n}
            try:
                runners.append(make_runner(rt, model_path, content, inputs, n, blas, onnx_cache, onnx_python))
            except Unavailable as exc:
                row["error"] = str(exc)
            except Exception as exc:  # a runtime that crashes on load is reported, not fatal
                row["error"] = f"{type(exc).__name__}: {exc}"
            rows.append(row)
    if log:
        log(f"{model_path.stem}: timing {', '.join(f'{r.runtime}/{r.threads}t' for r in runners)}")
    failed = []
    for r in list(runners):  # a first run outside the timing: checks it runs at all
        try:
            r.before()
            r.invoke()
        except Exception as exc:
            failed.append(r)
            runners.remove(r)
            _row(rows, r)["error"] = f"invoke failed: {type(exc).__name__}: {exc}"
    if runners:
        measure(runners, repeat, max(0, warmup - 1), budget, pause)
    blas.restore()
    reference = _reference_outputs(runners)
    for r in runners:
        row = _row(rows, r)
        row.update(_stats(r.samples), **r.info)
        if reference is not None:
            ref_rt, ref_out = reference[r.threads] if r.threads in reference else next(iter(reference.values()))
            try:
                row["check"] = {"against": ref_rt, **_agreement(r.outputs()[0], ref_out)}
            except Exception as exc:
                row["check"] = {"against": ref_rt, "error": f"{type(exc).__name__}: {exc}"}
    return rows


def _row(rows: list[dict], r: Runner) -> dict:
    return next(x for x in rows if x["runtime"] == r.runtime and x["threads"] == r.threads)


def _reference_outputs(runners: list[Runner]) -> dict[int, tuple[str, np.ndarray]] | None:
    """Per thread count, the first output of the most exact LiteRT runner present (ref, builtin, default)."""
    out = {}
    for rt in ("ref", "builtin", "xnnpack"):
        for r in runners:
            if r.runtime == rt and r.threads not in out:
                out[r.threads] = (rt, r.outputs()[0])
    return out or None


def _stats(samples: list[float]) -> dict:
    return {"median_ms": statistics.median(samples) * 1e3, "min_ms": min(samples) * 1e3,
            "max_ms": max(samples) * 1e3, "samples": len(samples)}


def _latency_in_children(models: list[Path], runtimes: Sequence[str], threads: Sequence[int], args: list[str],
                         machine: dict, log: Log | None) -> list[dict]:
    """Without threadpoolctl: each thread count in its own process, BLAS threads set by environment.

    The children's Numba threading facts are copied into ``machine``.
    """
    rows = []
    for n in threads:
        env = dict(os.environ, **{k: str(n) for k in BLAS_ENV}, **{_CHILD_ENV: "1"})
        cmd = [sys.executable, __file__, "--json", "--sections", "latency", "--threads", str(n),
               "--backends", *runtimes, "--models", *map(str, models), *args]
        if log:
            log(f"latency at {n} thread(s) in a child process ({', '.join(f'{k}={n}' for k in BLAS_ENV)})")
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"latency child for {n} thread(s) failed: {done.stderr.strip()[-2000:]}")
        child = json.loads(done.stdout)
        rows.extend(child["latency"])
        for key in ("numba_threading_layer", "numba_num_threads"):
            if key in child["machine"]:
                machine[key] = child["machine"][key]
    return rows


# -- memory and cold start: fresh processes ----------------------------------------------------

# Self-contained on purpose: a LiteRT child must not import pydeeplab (or Numba), or
# its peak memory and start-up time would include them.
_CHILD = r"""
import json, sys, time
T0 = time.time()
spec = json.loads(sys.argv[1])
rt = spec["runtime"]
if rt in ("numba", "numpy"):
    import pydeeplab
    if spec["imports_only"] == "kernels":
        import pydeeplab.kernels.conv, pydeeplab.ops
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
    it = make()
    it.allocate_tensors()
    out["t_load"] = time.time()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    result = [it.get_tensor(d["index"]) for d in it.get_output_details()]
    out["t_result"] = time.time()
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


def run_child(runtime: str, model_path: Path | None, inputs_file: Path | None, threads: int = 1,
              imports_only: bool | str = False, env: dict | None = None, timeout: float = 1800.0) -> dict:
    """Run one fresh process that loads the model in ``runtime`` and runs one image.

    ``imports_only``: only import the runtime (``"kernels"``: pydeeplab with its
    operators and Numba kernels, which ``import pydeeplab`` alone does not load).

    Returns its report: ``peak_kb`` (VmHWM), and wall-clock times (``time.time``)
    of ``spawn`` (just before the parent started it), ``t_start`` (the script's
    first line), ``t_import``, ``t_load`` (model planned), ``t_result`` (first
    output read) and ``exit``.
    """
    spec = {"runtime": runtime, "model": str(model_path) if model_path else None, "threads": threads,
            "inputs": str(inputs_file) if inputs_file else None, "imports_only": imports_only,
            "resolver": _LITERT_RESOLVERS.get(runtime)}
    child_env = dict(os.environ if env is None else env)
    child_env.update({k: str(threads) for k in BLAS_ENV})
    spawn = time.time()
    done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(spec)], env=child_env,
                          capture_output=True, text=True, timeout=timeout)
    end = time.time()
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH-CHILD ")), None)
    if done.returncode != 0 or line is None:
        tail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise Unavailable(f"child process failed: {tail}")
    return {**json.loads(line[len("BENCH-CHILD "):]), "spawn": spawn, "exit": end}


def _phases(r: dict) -> dict:
    return {"total_s": r["t_result"] - r["spawn"], "python_start_s": r["t_start"] - r["spawn"],
            "import_s": r["t_import"] - r["t_start"], "load_s": r["t_load"] - r["t_import"],
            "first_invoke_s": r["t_result"] - r["t_load"]}


def bench_memory(models: list[Path], inputs_files: dict[str, Path], runtimes: Sequence[str],
                 log: Log | None = None) -> list[dict]:
    """Peak RSS of a fresh process per (model, runtime), 1 thread; plus import-only baselines (model None).

    ``above_import_mb``: the peak less that of a process that only imports the
    same runtime (for the numba backend: with its kernels), i.e. what the model
    and the first run add.
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
        for rt in runtimes:
            if log:
                log(f"{m.stem}: peak memory of {rt}")
            row = {"model": m.stem, "runtime": rt}
            try:
                if rt == "numba":  # a stale Numba cache would add the compiler's memory to the model's
                    run_child(rt, m, inputs_files[m.stem])
                r = run_child(rt, m, inputs_files[m.stem])
                row["peak_mb"] = r["peak_kb"] / 1024
                if base_of.get(rt) is not None:
                    row["above_import_mb"] = row["peak_mb"] - base_of[rt]
            except Unavailable as exc:
                row["error"] = str(exc)
            rows.append(row)
    return rows


def bench_cold(models: list[Path], inputs_files: dict[str, Path], runtimes: Sequence[str], repeat: int,
               compile_once: bool = True, log: Log | None = None) -> list[dict]:
    """Cold-start rows: warm Numba cache (median of ``repeat`` after one warming run), empty cache (once)."""
    rows = []
    for m in models:
        for rt in runtimes:
            kinds = [("warm", None)]
            if rt in PYDEEPLAB_RUNTIMES and compile_once:
                kinds.append(("empty_cache", "numba-cache"))
            for kind, cache in kinds:
                if log:
                    log(f"{m.stem}: cold start of {rt} ({kind.replace('_', ' ')})")
                row = {"model": m.stem, "runtime": rt, "numba_cache": kind if rt in PYDEEPLAB_RUNTIMES else None}
                try:
                    if cache is None:
                        run_child(rt, m, inputs_files[m.stem])  # warms the cache (and the OS file cache)
                        runs = [_phases(run_child(rt, m, inputs_files[m.stem])) for _ in range(repeat)]
                    else:
                        with tempfile.TemporaryDirectory(prefix="pydeeplab-numba-cache-") as tmp:
                            env = dict(os.environ, NUMBA_CACHE_DIR=tmp)
                            runs = [_phases(run_child(rt, m, inputs_files[m.stem], env=env))]
                except Unavailable as exc:
                    row["error"] = str(exc)
                    rows.append(row)
                    continue
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                row.update(med, min_total_s=min(r["total_s"] for r in runs), runs=len(runs))
                rows.append(row)
    return rows


# -- profile ------------------------------------------------------------------------------------


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
                  warmup: int, budget: float, blas: BlasThreads, top: int = 15) -> dict:
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
    return {"model": model_path.stem, "backend": backend, "threads": threads, "runs": len(runs), "total_ms": total,
            "by_type": sorted(by_type.values(), key=lambda t: -t["ms"]),
            "top": sorted(per_op, key=lambda p: -p["ms"])[:top]}


# -- goals --------------------------------------------------------------------------------------


def _median(report: dict, model: str, runtime: str, threads: int = 1, stat: str = "median_ms") -> float | None:
    """A latency statistic (the median unless ``stat`` names another) of one runtime, None if not measured."""
    for r in report.get("latency", []):
        if r["model"] == model and r["runtime"] == runtime and r["threads"] == threads and stat in r:
            return r[stat]
    return None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def evaluate_goals(report: dict) -> list[dict]:
    """The goals of the benchmark issue with their measured values (None where not measured).

    ``measured`` is the ratio of medians (the goal's figure); ``of_mins`` the same
    ratio of the fastest runs, less sensitive to other processes on a busy machine.
    """
    goals = []

    def add(what: str, peer: str, goal: str, value: float | None, limit: float, higher_is_better: bool = False,
            unit: str = "x", stretch: float | None = None, of_mins: float | None = None) -> None:
        met = None if value is None else (value >= limit if higher_is_better else value <= limit)
        row = {"what": what, "against": peer, "goal": goal, "measured": value, "of_mins": of_mins, "unit": unit,
               "met": met}
        if stretch is not None and value is not None:
            row["stretch_met"] = value <= stretch
        goals.append(row)

    def latency(model: str, ours: str, peer: str, ours_threads: int = 1, peer_threads: int = 1) -> tuple:
        """(ratio of medians, ratio of mins) of two latency rows."""
        return tuple(_ratio(_median(report, model, ours, ours_threads, stat),
                            _median(report, model, peer, peer_threads, stat)) for stat in ("median_ms", "min_ms"))

    f, q = FLOAT_MODEL, QUANT_MODEL
    for model, kind, peer, goal, limit, stretch in [
            (f, "float", "xnnpack", "<= 1.25x (stretch <= 1.0x)", 1.25, 1.0),
            (f, "float", "builtin", "<= 0.35x", 0.35, None),
            (q, "uint8", "builtin", "<= 1.0x", 1.0, None),
            (q, "uint8", "xnnpack", "<= 2.0x", 2.0, None)]:
        med, mins = latency(model, "numba", peer)
        add(f"{model} ({kind}), numba", LABELS[peer], goal, med, limit, stretch=stretch, of_mins=mins)
    med, mins = latency(f, "numpy", "numba")
    add(f"{f} (float), numpy backend", "pydeeplab numba", "<= 3x", med, 3.0, of_mins=mins)
    models = sorted({r["model"] for r in report.get("latency", [])})
    for m in models:
        med, mins = latency(m, "numba", "numba", 1, 2)
        add(f"{m}, numba 2 threads vs 1", "itself", ">= 1.6x faster", med, 1.6, higher_is_better=True, of_mins=mins)
    for r in report.get("cold", []):
        if r["runtime"] == "numba" and r.get("numba_cache") == "warm":
            add(f"{r['model']}, cold start, warm cache", "-", "<= 1.5 s", r.get("total_s"), 1.5, unit="s",
                of_mins=r.get("min_total_s"))
    peaks = {(r["model"], r["runtime"]): r.get("peak_mb") for r in report.get("memory", [])}
    for m in sorted({r["model"] for r in report.get("memory", []) if r["model"]}):
        add(f"{m}, peak memory, numba", LABELS["xnnpack"], "<= 1.5x",
            _ratio(peaks.get((m, "numba")), peaks.get((m, "xnnpack"))), 1.5)
    return goals


# -- the run ------------------------------------------------------------------------------------


def run_bench(models: Sequence[str | os.PathLike] | None = None, *, models_dir: str | os.PathLike | None = None,
              runtimes: Sequence[str] = RUNTIMES, threads: Sequence[int] = (1, 2), repeat: int = 20,
              warmup: int = 2, budget: float = 20.0, pause: float = 0.02, image: str | os.PathLike | None = "default",
              sections: Sequence[str] = DEFAULT_SECTIONS, cold_repeat: int = 3, compile_once: bool = True,
              top: int = 15, onnx_cache: str | os.PathLike | None = None, onnx_python: str | None = None,
              command: str | None = None, log: Log | None = None) -> dict:
    """Run the benchmark; returns the report as a JSON-able dict (see :func:`format_report`).

    ``models``: paths or names in ``models_dir`` (default: every model of
    ``<data>/models``). ``runtimes``: a subset of :data:`RUNTIMES`. ``image``: a
    path, ``"default"`` (``bird_segmentation.bmp`` of the data folder, or random
    input when it is missing) or None (seeded random input). ``sections``: a
    subset of :data:`SECTIONS`. ``repeat`` timed runs per runtime and thread
    count (fewer for one whose runs passed ``budget`` seconds, at least 3).
    """
    bad = [r for r in runtimes if r not in RUNTIMES]
    if bad:
        raise ValueError(f"unknown runtime(s) {', '.join(bad)}: choose from {', '.join(RUNTIMES)}")
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        raise ValueError(f"unknown section(s) {', '.join(bad)}: choose from {', '.join(SECTIONS)}")
    if repeat < 1 or not threads or any(n < 1 for n in threads):
        raise ValueError("repeat and thread counts must be >= 1")
    paths = find_models([str(m) for m in models] if models else None, models_dir)
    if image == "default":
        candidate = data_dir() / "images" / DEFAULT_IMAGE
        image = candidate if candidate.exists() else None
    blas = BlasThreads()
    cache = Path(onnx_cache) if onnx_cache else onnx_cache_dir()
    report: dict = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine_info(),
        "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "blas": blas.info(),
        "config": {"runtimes": list(runtimes), "threads": list(threads), "repeat": repeat, "warmup": warmup,
                   "budget_s": budget, "pause_s": pause, "image": str(image) if image else "random (seed 0)",
                   "sections": list(sections), "onnx_cache": str(cache)},
        "models": [model_facts(p) for p in paths],
    }
    inputs = {p.stem: make_inputs(p, image) for p in paths}
    if "latency" in sections:
        in_child = os.environ.get(_CHILD_ENV) == "1"
        if blas.method == "threadpoolctl" or in_child:
            rows = []
            for p in paths:
                rows += bench_latency(p, inputs[p.stem], runtimes, threads, repeat, warmup, budget, pause, blas,
                                      cache, onnx_python, log)
        else:
            report["blas"]["note"] = ("threadpoolctl is not installed: each thread count was timed in its own "
                                      f"process with {', '.join(BLAS_ENV)} set to it")
            args = ["--repeat", str(repeat), "--warmup", str(warmup), "--budget", str(budget), "--pause", str(pause),
                    "--onnx-cache", str(cache)]
            args += ["--image", str(image)] if image else ["--random-input"]
            if onnx_python:
                args += ["--onnx-python", onnx_python]
            rows = _latency_in_children(paths, runtimes, threads, args, report["machine"], log)
        report["latency"] = rows
    if "memory" in sections or "cold" in sections:
        with tempfile.TemporaryDirectory(prefix="pydeeplab-bench-") as tmp:
            files = {}
            for stem, arrays in inputs.items():
                files[stem] = Path(tmp) / f"{stem}.npz"
                np.savez(files[stem], **{f"input{i}": a for i, a in enumerate(arrays)})
            if "memory" in sections:
                rts = [r for r in runtimes if r in ("numba", "numpy", "xnnpack", "builtin")]
                report["memory"] = bench_memory(paths, files, rts, log)
            if "cold" in sections:
                rts = [r for r in runtimes if r in ("numba", "xnnpack")]
                report["cold"] = bench_cold(paths, files, rts, cold_repeat, compile_once, log)
    if "profile" in sections:
        profiles = []
        for p in paths:
            for backend in [r for r in runtimes if r in PYDEEPLAB_RUNTIMES] or ["numba"]:
                if log:
                    log(f"{p.stem}: profile of {backend}")
                try:
                    profiles.append(bench_profile(p, inputs[p.stem], backend, threads[0], repeat, warmup, budget,
                                                  blas, top))
                except Exception as exc:
                    profiles.append({"model": p.stem, "backend": backend, "threads": threads[0],
                                     "error": f"{type(exc).__name__}: {exc}"})
        report["profile"] = profiles
    if "numba" in sys.modules:
        numba = sys.modules["numba"]
        try:
            report["machine"]["numba_threading_layer"] = numba.threading_layer()
            report["machine"]["numba_num_threads"] = numba.config.NUMBA_NUM_THREADS
        except ValueError:  # no parallel region ran in this process
            pass
    report["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    report["goals"] = evaluate_goals(report)
    return report


# -- the text report ------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: list[Sequence]) -> str:
    """A Markdown table (readable as is in a terminal)."""
    cells = [[str(c) for c in header]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells[1:])])


def _fmt(x: float | None, spec: str = ".1f", suffix: str = "") -> str:
    return "-" if x is None else f"{x:{spec}}{suffix}"


def _check_text(check: dict | None) -> str:
    if not check:
        return ""
    if "error" in check:
        return f"vs {check['against']}: {check['error']}"
    if "max_abs_diff" in check:
        return f"max abs diff {check['max_abs_diff']:.2g} vs {check['against']}"
    return f"{100 * check['equal_fraction']:.3f}% = {check['against']}"


def format_report(report: dict) -> str:
    """The report as Markdown: machine, latency with ratios, threads, memory, cold start, profile, goals."""
    m = report["machine"]
    out = [f"# pydeeplab benchmark, {report['date']}", ""]
    if report.get("command"):
        out += [f"Command: `{report['command']}`", ""]
    v = m["versions"]
    out += [f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), {' '.join(m['simd'])}; "
            f"Python {m['python']}, numpy {v['numpy']}, numba {v['numba']}, ai-edge-litert {v['ai-edge-litert']}, "
            f"onnxruntime {v['onnxruntime'] or 'not installed'}; "
            f"Numba threading layer {m.get('numba_threading_layer', '?')}.",
            f"Load average (1, 5, 15 min) at start {_loads(report.get('load_average_start'))}, "
            f"at end {_loads(report.get('load_average_end'))}.",
            "Environment: " + (", ".join(f"{k}={val}" for k, val in m["environment"].items())
                               or "no BLAS, OpenMP or Numba variables set") + "."]
    blas = report["blas"]
    libs = blas.get("libraries")
    if libs:
        out.append("BLAS (threadpoolctl): " + "; ".join(
            f"{lib.get('internal_api')} {lib.get('version')} ({lib.get('architecture')}, {lib.get('num_threads')} "
            f"threads by default, {Path(lib.get('filepath') or '?').name})"
            for lib in libs if lib.get("user_api") == "blas")
            + "; BLAS threads set to the thread count before every pydeeplab run.")
    else:
        out.append(f"BLAS: {blas.get('note') or 'threadpoolctl not installed'}.")
    c = report["config"]
    out += [f"Input: {c['image']}. {c['repeat']} timed runs per runtime and thread count after {c['warmup']} "
            f"warm-up (fewer, at least 3, past {c['budget_s']:.0f} s), alternating rounds in one process.", ""]

    facts = {f["model"]: f for f in report["models"]}
    lat = report.get("latency", [])
    for model in [f["model"] for f in report["models"]]:
        rows = [r for r in lat if r["model"] == model]
        if not rows:
            continue
        f = facts[model]
        out += [f"## {model}: {', '.join(f['inputs'])}, {f['macs'] / 1e9:.2f} G MACs, {f['operators']} operators", ""]
        table = []
        for r in rows:
            ours = {rt: _median(report, model, rt, r["threads"]) for rt in PYDEEPLAB_RUNTIMES}
            if "error" in r:
                table.append([LABELS[r["runtime"]], r["threads"], "-", "-", "-", "-", "-", "", r["error"][:160]])
                continue
            ratios = [_fmt(_ratio(ours[rt], r["median_ms"]), ".2f", "x") for rt in PYDEEPLAB_RUNTIMES]
            gmacs = f["macs"] / (r["median_ms"] * 1e6) if f["macs"] else None
            note = _check_text(r.get("check"))
            if r.get("onnx", {}).get("converter"):
                note += f"; converted by {r['onnx']['converter']} {r['onnx'].get('converter_version') or ''}".rstrip()
            table.append([LABELS[r["runtime"]], r["threads"], _fmt(r["median_ms"]), _fmt(r["min_ms"]), r["samples"],
                          *ratios, _fmt(gmacs, ".1f"), note])
        out += [_table(["runtime", "threads", "median ms", "min ms", "runs", "numba / it", "numpy / it",
                        "GMAC/s", "output check / note"], table), ""]
        speed = []
        for rt in RUNTIMES:
            t = {n: _median(report, model, rt, n) for n in report["config"]["threads"]}
            ns = sorted(n for n, x in t.items() if x is not None)
            if len(ns) >= 2:
                speed.append([LABELS[rt], *[_fmt(t[n]) for n in ns], *[_fmt(_ratio(t[ns[0]], t[n]), ".2f", "x")
                                                                     for n in ns[1:]]])
        if speed:
            ns = sorted(report["config"]["threads"])
            out += [_table(["runtime", *[f"{n} thread{'s' * (n > 1)} ms" for n in ns],
                            *[f"speed-up {ns[0]}->{n}" for n in ns[1:]]], speed), ""]

    mem = report.get("memory")
    if mem:
        out += ["## Peak memory (VmHWM of a fresh process: import, load, one image; 1 thread)", ""]
        rows = [["(none)", r["runtime"], _fmt(r.get("peak_mb")), "", "", r.get("error", "")]
                for r in mem if r["model"] is None]
        for r in mem:
            if r["model"] is None:
                continue
            peer = next((x.get("peak_mb") for x in mem
                         if x["model"] == r["model"] and x["runtime"] == "xnnpack"), None)
            rows.append([r["model"], LABELS[r["runtime"]], _fmt(r.get("peak_mb")), _fmt(r.get("above_import_mb")),
                         _fmt(_ratio(r.get("peak_mb"), peer), ".2f", "x"), r.get("error", "")[:160]])
        out += [_table(["model", "runtime", "peak MB", "MB above its import", "vs LiteRT default", "note"], rows), ""]

    cold = report.get("cold")
    if cold:
        out += ["## Cold start (fresh `python -c` to the first result, 1 thread)", ""]
        rows = []
        for r in cold:
            what = LABELS[r["runtime"]] + ({"warm": ", warm Numba cache", "empty_cache": ", empty Numba cache"}
                                           .get(r.get("numba_cache"), ""))
            if "error" in r:
                rows.append([r["model"], what, "-", "-", "-", "-", "-", "-", r["error"][:160]])
                continue
            rows.append([r["model"], what, *(f"{r[k]:.2f}" for k in ("total_s", "min_total_s", "python_start_s",
                                                                     "import_s", "load_s", "first_invoke_s")),
                         f"{r['runs']} run(s)"])
        out += [_table(["model", "runtime", "total s (median)", "min s", "python start", "imports", "load+plan",
                        "first invoke", "note"], rows), ""]

    for p in report.get("profile", []):
        out += [f"## Profile: {p['model']}, {p['backend']} backend, {p['threads']} thread(s)", ""]
        if "error" in p:
            out += [p["error"], ""]
            continue
        out += [f"Sum of per-operator medians over {p['runs']} run(s): {p['total_ms']:.2f} ms.", ""]
        out += [_table(["operator", "count", "ms", "share", "G MACs", "GMAC/s"],
                       [[t["op"], t["count"], f"{t['ms']:.2f}", f"{100 * t['share']:.1f}%",
                         _fmt(t["macs"] / 1e9 if t["macs"] else None, ".3f"), _fmt(t["gmacs_per_s"])]
                        for t in p["by_type"]]), ""]
        out += [_table(["#", "operator", "dtype", "in -> out", "kernel/stride/dilation", "ms", "share", "GMAC/s"],
                       [[t["index"], t["op"], t.get("dtype"), f"{t.get('in')} -> {t.get('out')}",
                         " ".join(f"{k} {t[k]}" for k in ("kernel", "stride", "dilation") if k in t),
                         f"{t['ms']:.2f}", f"{100 * t['share']:.1f}%", _fmt(t["gmacs_per_s"])]
                        for t in p["top"]]), ""]

    goals = report.get("goals", [])
    if goals:
        out += ["## Goals (ratios from this run, 1 thread unless said)", ""]
        rows = []
        unit = lambda g, x: "-" if x is None else f"{x:.2f}{'x' if g['unit'] == 'x' else ' s'}"  # noqa: E731
        for g in goals:
            status = "not measured" if g["met"] is None else ("met" if g["met"] else "NOT met")
            if g.get("stretch_met"):
                status += " (stretch met)"
            rows.append([g["what"], g["against"], g["goal"], unit(g, g["measured"]), status, unit(g, g.get("of_mins"))])
        out += [_table(["what", "against", "goal", "measured (medians)", "status", "same from the fastest runs"],
                       rows), ""]
    return "\n".join(out)


def _loads(loads: list | None) -> str:
    return "?" if not loads else ", ".join(f"{x:.2f}" for x in loads)


# -- command line -------------------------------------------------------------------------------


def _split(values: Sequence[str] | None) -> list[str]:
    return [v for item in values or [] for v in item.split(",") if v]


DESCRIPTION = ("time pydeeplab against LiteRT (and ONNX Runtime) on real models: latency, peak memory, "
               "cold start, per-operator profile")


def epilog(prog: str = "python tools/bench.py") -> str:
    return ("examples:\n"
            f"  {prog}                                  # every model of ../shared/data/models\n"
            f"  {prog} --models deeplabv3_257_mv_gpu --backends numba xnnpack --threads 1 --repeat 5\n"
            f"  {prog} --sections profile --models deeplabv3_mnv2_pascal_quant --backends numba\n"
            f"  {prog} --json > bench.json")


def build_parser(prog: str = "python tools/bench.py") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=epilog(prog),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of the ``bench`` command (for a subcommand parser: then call :func:`run_from_args`)."""
    p.add_argument("--models", nargs="+", metavar="MODEL",
                   help="model paths or names in the models folder (default: all); commas also separate")
    p.add_argument("--models-dir", help="folder of .tflite models (default: $PYDEEPLAB_DATA/models, "
                                        "else ../shared/data/models beside the checkout)")
    p.add_argument("--backends", "--runtimes", nargs="+", metavar="NAME", dest="runtimes",
                   help=f"runtimes to time, of: {', '.join(RUNTIMES)} (default: all)")
    p.add_argument("--threads", nargs="+", default=["1,2"], help="thread counts (default: 1 2)")
    p.add_argument("--repeat", type=int, default=20, help="timed runs per runtime and thread count (default 20)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    p.add_argument("--budget", type=float, default=20.0,
                   help="seconds of timed runs after which a slow runtime stops (at least 3 runs; default 20)")
    p.add_argument("--pause", type=float, default=0.02, help="untimed sleep before each run (default 0.02 s)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--image", help=f"image to feed (default: {DEFAULT_IMAGE} of the data folder)")
    src.add_argument("--random-input", action="store_true", help="feed seeded random input instead of an image")
    p.add_argument("--sections", nargs="+", default=None,
                   help=f"what to measure, of: {', '.join(SECTIONS)} (default: {' '.join(DEFAULT_SECTIONS)})")
    p.add_argument("--profile", action="store_true", help="add the per-operator profile of pydeeplab")
    p.add_argument("--top", type=int, default=15, help="operators listed in the profile (default 15)")
    p.add_argument("--cold-repeat", type=int, default=3, help="cold starts timed with a warm cache (default 3)")
    p.add_argument("--no-compile", action="store_true", help="skip the cold start with an empty Numba cache")
    p.add_argument("--onnx-cache",
                   help="folder of converted ONNX models (default: the user cache, ~/.cache/pydeeplab/onnx)")
    p.add_argument("--onnx-python", help="Python that has the converter (tflite2onnx or tf2onnx), "
                                         "if not this one")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def main(argv: Sequence[str] | None = None, prog: str = "python tools/bench.py") -> int:
    """The ``bench`` command: parse ``argv``, run, print the report. Returns the exit status."""
    args = build_parser(prog).parse_args(argv)
    command = " ".join([prog, *map(shlex.quote, argv if argv is not None else sys.argv[1:])])
    try:
        return run_from_args(args, command)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2


def run_from_args(args: argparse.Namespace, command: str | None = None) -> int:
    """Run the benchmark the parsed options of :func:`add_arguments` ask for; print the report; return 0.

    Errors (a model not found, a bad option value) raise OSError or ValueError.
    """
    if command is None:
        command = " ".join(["python tools/bench.py", *map(shlex.quote, sys.argv[1:])])
    sections = _split(args.sections) if args.sections else list(DEFAULT_SECTIONS)
    if args.profile and "profile" not in sections:
        sections.append("profile")
    try:
        threads = [int(t) for t in _split(args.threads)]
    except ValueError:
        raise ValueError(f"--threads takes integers, not {' '.join(args.threads)}") from None
    image = None if args.random_input else (args.image or "default")
    log = None if args.quiet else (lambda msg: print(f"[bench] {msg}", file=sys.stderr, flush=True))
    report = run_bench(_split(args.models) or None, models_dir=args.models_dir,
                       runtimes=_split(args.runtimes) or RUNTIMES, threads=threads, repeat=args.repeat,
                       warmup=args.warmup, budget=args.budget, pause=args.pause, image=image, sections=sections,
                       cold_repeat=args.cold_repeat, compile_once=not args.no_compile, top=args.top,
                       onnx_cache=args.onnx_cache, onnx_python=args.onnx_python, command=command, log=log)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
