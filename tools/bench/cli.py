"""The command line of the harness: ``python tools/bench.py --help``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from .environment import openblas_warning
from .goals import evaluate_goals
from .models import HYBRID_NAME, SYNTH_NAME
from .report import format_report, write_document
from .run import DEFAULT_IMAGE, DEFAULT_SECTIONS, PROFILE_WORST, SECTIONS, run_bench
from .runtimes import RUNTIMES

PROG = "python tools/bench.py"


def _split(values: Sequence[str] | None) -> list[str]:
    return [v for item in values or [] for v in item.split(",") if v]


DESCRIPTION = ("time pydeeplab against LiteRT (and ONNX Runtime) on real models: latency, peak memory, "
               "start-up, per-operator profile; evaluate the goals of issue 12 and write BENCHMARKS.md")


def epilog(prog: str = PROG) -> str:
    return ("examples:\n"
            f"  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE {prog} --json > bench.json   # the full run\n"
            f"  {prog} --from-json bench.json --write BENCHMARKS.md    # the document from a saved run\n"
            f"  {prog} --write BENCHMARKS.md                            # run and write in one go\n"
            f"  {prog} --models deeplabv3_257_mv_gpu --repeat 3 --sections latency\n"
            f"  {prog} --models deeplabv3_257_mv_gpu --backends numba xnnpack --threads 1 --repeat 5\n"
            f"  {prog} --sections profile --models deeplabv3_mnv2_pascal_quant --backends numba\n"
            f"  {prog} --models {SYNTH_NAME} --backends numba xnnpack   # the synthesized int8 model\n"
            f"  {prog} --models {HYBRID_NAME} --backends numba xnnpack     # the dynamic-range one\n\n"
            "The machine's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, if set, change OpenBLAS's kernels: the\n"
            "harness warns; unset them for the command with `env -u ...` as above.")


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=epilog(prog),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of the ``bench`` command (for a subcommand parser: then call :func:`run_from_args`)."""
    p.add_argument("--models", nargs="+", metavar="MODEL",
                   help="model paths or names in the models folder (default: all, and the synthesized models "
                        f"{SYNTH_NAME} and {HYBRID_NAME}); commas also separate")
    p.add_argument("--models-dir", help="folder of .tflite models (default: $PYDEEPLAB_DATA/models, "
                                        "else ../shared/data/models beside the checkout)")
    p.add_argument("--no-synth", action="store_true",
                   help=f"leave out {SYNTH_NAME} and {HYBRID_NAME}, the int8 per-channel and dynamic-range models "
                        "that tools/quantize.py builds from deeplabv3_257_mv_gpu (built once into "
                        "~/.cache/pydeeplab/synth/)")
    p.add_argument("--synth-cache", help="folder of synthesized models (default: ~/.cache/pydeeplab/synth)")
    p.add_argument("--backends", "--runtimes", nargs="+", metavar="NAME", dest="runtimes",
                   help=f"runtimes to time, of: {', '.join(RUNTIMES)} (default: all)")
    p.add_argument("--threads", nargs="+", default=["1,2"], help="thread counts (default: 1 2)")
    p.add_argument("--repeat", type=int, default=20, help="timed runs per runtime and thread count (default 20)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    p.add_argument("--budget", type=float, default=20.0,
                   help="seconds of timed runs after which a slow runtime stops (at least 3 runs; default 20)")
    p.add_argument("--pause", type=float, default=0.02, help="untimed sleep before each run, and on until the other runtimes' threads are idle "
                   "(default 0.02 s)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--image", help=f"image to feed (default: {DEFAULT_IMAGE} of the data folder)")
    src.add_argument("--random-input", action="store_true", help="feed seeded random input instead of an image")
    p.add_argument("--sections", nargs="+", default=None,
                   help=f"what to measure, of: {', '.join(SECTIONS)} (default: {' '.join(DEFAULT_SECTIONS)})")
    p.add_argument("--profile", action="store_true", help="add the per-operator profile to --sections")
    p.add_argument("--profile-worst", type=int, default=PROFILE_WORST,
                   help=f"after latency, profile only the N models furthest from their goal (default {PROFILE_WORST};"
                        " 0: every model)")
    p.add_argument("--top", type=int, default=15, help="operators listed in the profile (default 15)")
    p.add_argument("--cold-repeat", type=int, default=3, help="warm-cache starts timed per model (default 3)")
    p.add_argument("--no-compile", action="store_true", help="skip the start with an empty Numba cache")
    p.add_argument("--onnx-cache",
                   help="folder of converted ONNX models (default: the user cache, ~/.cache/pydeeplab/onnx)")
    p.add_argument("--onnx-python", help="Python that has the converter (tflite2onnx or tf2onnx), "
                                         "if not this one")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--write", metavar="FILE", help="write the report as the whole BENCHMARKS.md-style document "
                                                   "to FILE (atomically), besides printing it")
    p.add_argument("--from-json", metavar="FILE",
                   help="do not measure: read a report saved with --json (use with --write to regenerate "
                        "BENCHMARKS.md)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """The ``bench`` command: parse ``argv``, run (or read a saved run), print/write the report.
    Returns the exit status."""
    args = build_parser(prog).parse_args(argv)
    command = " ".join([prog, *map(shlex.quote, argv if argv is not None else sys.argv[1:])])
    try:
        return run_from_args(args, command)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2


def load_report(path: str | Path) -> dict:
    """A report saved with ``--json``; ValueError when the file is not one."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not a saved report (JSON): {exc}") from None
    missing = [k for k in ("date", "machine", "config", "models", "blas") if not isinstance(report, dict)
               or k not in report]
    if missing:
        raise ValueError(f"{path} is not a report of tools/bench.py --json (no {', '.join(missing)})")
    return report


def run_from_args(args: argparse.Namespace, command: str | None = None) -> int:
    """Run the benchmark the parsed options of :func:`add_arguments` ask for; print the report; return 0.

    Errors (a model not found, a bad option value, an unreadable saved report) raise OSError or ValueError.
    """
    if command is None:
        command = " ".join([PROG, *map(shlex.quote, sys.argv[1:])])
    if args.from_json:
        report = load_report(args.from_json)
        report["goals"] = evaluate_goals(report)  # the goals as defined now, from the saved figures
    else:
        warning = openblas_warning(command=command)
        if warning:  # loudly, before any figure is spent on a skewed BLAS
            print(f"\n{'!' * 78}\n{warning}\n{'!' * 78}\n", file=sys.stderr, flush=True)
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
                           profile_worst=args.profile_worst or None, synth=not args.no_synth,
                           synth_cache=args.synth_cache, onnx_cache=args.onnx_cache, onnx_python=args.onnx_python,
                           command=command, log=log)
    if args.write:
        path = write_document(report, args.write)
        if not args.quiet:
            print(f"[bench] wrote {path}", file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
