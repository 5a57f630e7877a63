"""Benchmark harness: pydeeplab against LiteRT (and ONNX Runtime) on real models, and BENCHMARKS.md.

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
  to a new temporary folder: the first-ever JIT compile), at each runtime's
  default thread count, as a new user runs it.
- **host check** (with the latency, on 2+ threads): whether the host runs the
  machine's CPUs at the same time (:mod:`bench.host`), before and after the
  latency rounds: a virtual machine's CPUs shared by the host run in turns, and
  then no 2-thread time can halve a 1-thread one; and, on arithmetic that keeps a
  core's multiply-add units busy, whether they run on cores of their own (two
  CPUs on one host core's hyperthreads share its units): the host's ceiling for
  a compute-bound kernel's 2-thread speedup in that run.
- **profile**: per-operator time of pydeeplab's interpreter
  (``Interpreter.invoke_profiled``), summed by operator type, and the slowest
  operators with their shapes and achieved multiply-accumulate rate; after a
  latency section, of the models furthest from their goal (``--profile-worst``).

Models: every .tflite of the data folder, each classed by reading its graph; for one
with a custom operator LiteRT cannot load, LiteRT runs its builtin rewrite, or (an
operator no builtin computes) the graph cut before it, timed on both sides; and an int8
per-channel model built once from deeplabv3_257_mv_gpu by tools/quantize.py.

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

Goals (:mod:`bench.goals`): the ratios of issue 12 by model class, read from each graph
(:func:`bench.models.classify_model`); start-up and memory; see ``--help``. BENCHMARKS.md is
:func:`bench.report.format_report` of one run (``--write``, or ``--from-json`` a saved run).

Modules: ``environment`` (machine, BLAS kernel, skewing variables), ``models`` (which models,
their class, LiteRT stand-ins, the synthesized int8 model), ``runtimes`` (a runner per runtime),
``onnx_conversion``, ``latency``, ``processes`` (memory and start-up in fresh processes),
``host`` (the host check), ``profile``, ``goals``, ``run`` (one run), ``report`` (Markdown), ``cli``.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import pydeeplab  # noqa: F401
except ImportError:  # run from a checkout where pydeeplab is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from .cli import add_arguments, build_parser, load_report, main, run_from_args  # noqa: E402
from .environment import BlasThreads, machine_info, openblas_warning, skewing_variables  # noqa: E402
from .goals import FLOAT_MODEL, QUANT_MODEL, RATIO_LIMITS, evaluate_goals  # noqa: E402
from .latency import bench_latency, latency_in_children, measure  # noqa: E402
from .models import (HYBRID_NAME, SYNTH_NAME, BenchModel, bench_models, classify_model, find_models,  # noqa: E402
                     make_inputs, model_facts, synthesized, synthesized_int8)
from .processes import bench_cold, bench_memory, run_child  # noqa: E402
from .profile import bench_profile  # noqa: E402
from .report import DOCUMENT_SECTIONS, format_report, goal_status, write_document  # noqa: E402
from .run import DEFAULT_SECTIONS, SECTIONS, run_bench  # noqa: E402
from .runtimes import LABELS, PYDEEPLAB_RUNTIMES, RUNTIMES, Runner, Unavailable, make_runner  # noqa: E402

__all__ = ["BenchModel", "BlasThreads", "DEFAULT_SECTIONS", "DOCUMENT_SECTIONS", "FLOAT_MODEL", "LABELS",
           "PYDEEPLAB_RUNTIMES", "QUANT_MODEL", "RATIO_LIMITS", "RUNTIMES", "Runner", "SECTIONS", "SYNTH_NAME", "HYBRID_NAME",
           "Unavailable", "add_arguments", "bench_cold", "bench_latency", "bench_memory", "bench_models",
           "bench_profile", "build_parser", "classify_model", "evaluate_goals", "find_models", "format_report",
           "goal_status", "latency_in_children", "load_report", "machine_info", "main", "make_inputs",
           "make_runner", "measure", "model_facts", "openblas_warning", "run_bench", "run_child", "run_from_args",
           "skewing_variables", "synthesized", "synthesized_int8", "write_document"]
