"""Benchmark pydeeplab against LiteRT (and ONNX Runtime) on the real models: ``python tools/bench.py --help``.

A thin wrapper: the harness is :mod:`pydeeplab.bench` (also ``pydeeplab bench``), installed
with the package. See BENCHMARKS.md for the latest figures and the command that made them.
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    try:
        from pydeeplab.bench import main
    except ImportError:  # run from a checkout that is not installed
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from pydeeplab.bench import main
    sys.exit(main(sys.argv[1:], prog="python tools/bench.py"))
