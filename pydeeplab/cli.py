"""The ``pydeeplab`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from .errors import ModelError

EPILOG = {
    "inspect": "example:\n  pydeeplab inspect ../shared/data/models/deeplabv3_257_mv_gpu.tflite\n"
               "  pydeeplab inspect model.tflite --json > summary.json",
    "verify": "example:\n  pydeeplab verify ../shared/data/models/deeplabv3_257_mv_gpu.tflite "
              "--image ../shared/data/images/cat.bmp\n"
              "  pydeeplab verify deeplabv3_mnv2_pascal_quant.tflite --against builtin --json\n\n"
              "exit status: 0 when every operator is within tolerance, 1 when one is not, 2 on errors",
}


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .summary import format_summary, summarize
    from .tflite.reader import load_model

    summary = summarize(load_model(args.model))
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from .verify import format_report, verify

    modes = ("isolated", "cascaded") if args.mode == "both" else (args.mode,)
    report = verify(args.model, args.image, against=args.against, backend=args.backend, modes=modes,
                    num_threads=args.threads)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0 if report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pydeeplab",
        description="DeepLab semantic segmentation as TensorFlow Lite runs it, in NumPy and Numba.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, fn: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, epilog=EPILOG.get(name),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=fn)
        return p

    p = command("inspect", "show a model's inputs, outputs, operators, options and multiply-accumulates", _cmd_inspect)
    p.add_argument("model", help="path of a .tflite file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = command("verify", "compare every operator of a model with the TFLite runtime (LiteRT)", _cmd_verify)
    p.add_argument("model", help="path of a .tflite file")
    p.add_argument("--image", help="an image to feed (default: seeded random input)")
    p.add_argument("--against", choices=["ref", "builtin"], default="ref",
                   help="LiteRT's reference kernels (ref, the default) or its optimized built-in kernels")
    p.add_argument("--mode", choices=["isolated", "cascaded", "both"], default="both",
                   help="isolated: each op fed LiteRT's inputs; cascaded: our own chain (default both)")
    p.add_argument("--backend", choices=["numba", "numpy"], default="numba")
    p.add_argument("--threads", type=int, default=None, help="threads for both runtimes")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ModelError, OSError, ValueError, RuntimeError) as exc:
        print(f"pydeeplab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
