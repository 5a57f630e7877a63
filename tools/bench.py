"""Benchmark harness: ``python tools/bench.py --help``. The code is the package tools/bench/."""

import sys
from pathlib import Path

# The package bench/ beside this script; `import bench` finds the package (a folder wins over a module).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
