"""The machine and its environment: CPU, versions, load, BLAS kernel and threads, and the variables that skew them."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import numpy as np

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
        """The BLAS and OpenMP libraries loaded now (threadpoolctl ``threadpool_info()``: internal_api,
        version, architecture = the kernel OpenBLAS chose, num_threads), and numpy's build-time BLAS."""
        out = {"method": self.method, "numpy_blas": _numpy_blas_config()}
        if self._controller is not None:
            from threadpoolctl import threadpool_info

            keys = ("user_api", "internal_api", "prefix", "version", "num_threads", "architecture",
                    "threading_layer", "filepath")
            out["libraries"] = [{k: lib.get(k) for k in keys if k in lib} for lib in threadpool_info()]
        return out


#: Variables that make OpenBLAS choose other kernels or cache blocking than a user's machine would
#: (this workplace exports them; users do not): benchmarks must run without them.
SKEWING_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def skewing_variables(environ: dict | None = None) -> dict[str, str]:
    """The :data:`SKEWING_VARIABLES` set in ``environ`` (default: this process's environment)."""
    environ = os.environ if environ is None else environ
    return {k: environ[k] for k in SKEWING_VARIABLES if k in environ}


def openblas_warning(environ: dict | None = None, command: str | None = None) -> str | None:
    """A warning naming the set :data:`SKEWING_VARIABLES` and how to unset them for this command; None if unset."""
    found = skewing_variables(environ)
    if not found:
        return None
    unset = " ".join(f"-u {k}" for k in found)
    rerun = f"env {unset} {command}" if command else f"env {unset} python tools/bench.py ..."
    return (f"WARNING: {', '.join(f'{k}={v}' for k, v in found.items())} set: OpenBLAS then runs other kernels "
            "(or cache blocking) than a user's machine chooses, and the float models' BLAS-bound convolutions are "
            f"timed slow (16 ms instead of 10 on the 257 model on AVX-512). Unset them for this command only: {rerun}")


def git_commit(repo: str | os.PathLike | None = None) -> dict | None:
    """The checkout's commit (``sha``, short ``short``) and whether tracked files differ from it; None outside git."""
    repo = Path(repo) if repo is not None else Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=30)
        if sha.returncode != 0:
            return None
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    full = sha.stdout.strip()
    return {"sha": full, "short": full[:9], "dirty": bool(status.stdout.strip())}
