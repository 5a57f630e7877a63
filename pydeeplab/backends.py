"""Which backend runs the kernels: Numba where it loads, else the NumPy reference.

pydeeplab exists for the machines where LiteRT cannot be installed, and on some of
those Numba cannot be either (no wheel for the platform, an LLVM that fails to
load, a CPython it does not support yet). The default backend, ``"auto"``, takes
Numba when it imports and compiles, and otherwise falls back to the NumPy backend
(the readable reference, same numbers) with one :class:`NumbaUnavailableWarning`
per process saying why, the speed to expect and how to install Numba. Asking for
``"numba"`` explicitly fails with :class:`~pydeeplab.errors.BackendUnavailableError`
instead of falling back.

Every entry point (``Interpreter``, ``Segmenter``, ``verify``, the CLI commands)
goes through :func:`resolve_backend`, so they all decide the same way.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

from .errors import BackendUnavailableError

#: The backends that run kernels.
BACKENDS = ("numba", "numpy")
#: What callers may ask for: a backend, or "auto" (Numba if it loads, else NumPy).
CHOICES = ("auto", *BACKENDS)

#: What to expect from the NumPy backend, measured on a 2-core x86-64 machine, one thread: the 257
#: float model 0.13 s against 0.035 s with Numba, pascal_quant (513x513 uint8) 2.9 s against 0.24 s.
NUMPY_SPEED = ("the same results, about 4 to 12 times slower (the 513x513 uint8 models take seconds "
               "per image instead of a fraction of one)")
INSTALL_HINT = ("install Numba for the fast kernels (`pip install numba`; it needs a platform with Numba "
                "wheels or an LLVM build), or pass backend='numpy' (CLI: --backend numpy) to choose the "
                "NumPy backend knowingly and silence this warning")


class NumbaUnavailableWarning(RuntimeWarning):
    """backend="auto" fell back to the NumPy backend because Numba cannot be loaded."""


@dataclass(frozen=True)
class NumbaStatus:
    """Whether the Numba kernels can run here: ``available``, else ``reason`` says why."""

    available: bool
    version: str | None
    reason: str


_lock = threading.Lock()
_status: NumbaStatus | None = None
_warned = False


def _probe() -> NumbaStatus:
    """Import Numba and compile one small kernel (the on-disk cache makes it cheap after the first run;
    kernels load from it without readying Numba's compiler from here on)."""
    try:
        import numba
    except Exception as exc:  # ImportError, or OSError/RuntimeError from a broken llvmlite
        return NumbaStatus(False, None, f"Numba cannot be imported ({type(exc).__name__}: {exc})")
    try:
        from .kernels import load_without_compiler
        from .kernels.probe import probe

        load_without_compiler()
        if probe(20) != 21:  # pragma: no cover - a miscompiling JIT
            return NumbaStatus(False, numba.__version__, "Numba compiled a test kernel that gives wrong results")
    except Exception as exc:
        return NumbaStatus(False, numba.__version__,
                           f"Numba {numba.__version__} imports but cannot compile ({type(exc).__name__}: {exc})")
    return NumbaStatus(True, numba.__version__, f"Numba {numba.__version__} imports and compiles")


def numba_status() -> NumbaStatus:
    """Whether Numba loads and compiles in this process (probed once, then remembered)."""
    global _status
    with _lock:
        if _status is None:
            _status = _probe()
        return _status


def _decide(requested: str) -> tuple[str | None, str]:
    """(the backend ``requested`` runs here, or None when it cannot run; why), without warning."""
    if requested not in CHOICES:
        raise ValueError(f"unknown backend {requested!r}: choose one of {', '.join(CHOICES)}")
    if requested == "numpy":
        return "numpy", "chosen explicitly"
    status = numba_status()
    if status.available:
        return "numba", status.reason
    return (None if requested == "numba" else "numpy"), status.reason


def resolve_backend(requested: str = "auto") -> str:
    """The backend to run: ``"numba"`` or ``"numpy"``.

    Args:
        requested: ``"auto"`` (Numba if it loads and compiles, else NumPy with one
            :class:`NumbaUnavailableWarning` per process), ``"numba"`` or ``"numpy"``.

    Raises:
        ValueError: ``requested`` is not one of :data:`CHOICES`.
        BackendUnavailableError: ``"numba"`` was asked for and Numba cannot be loaded.
    """
    global _warned
    backend, why = _decide(requested)
    if backend is None:
        raise BackendUnavailableError(f"backend='numba' was asked for but {why}; install Numba "
                                      "(`pip install numba`), or use backend='auto' or 'numpy' (same results, "
                                      "slower)")
    if requested == "auto" and backend == "numpy":
        with _lock:
            first, _warned = not _warned, True
        if first:
            warnings.warn(f"pydeeplab falls back to its NumPy backend: {why}. Expect {NUMPY_SPEED}. "
                          f"To fix: {INSTALL_HINT}.", NumbaUnavailableWarning, stacklevel=3)
    return backend


def describe_backend(requested: str = "auto") -> str:
    """One line for ``--version`` and ``inspect``: which backend ``requested`` runs and why.

    Does not warn: it reports the fallback instead of announcing it.
    """
    backend, why = _decide(requested)
    if backend is None:
        return f"none: numba was asked for but {why}"
    if requested == "auto" and backend == "numpy":
        return f"numpy (fallback: {why}; {INSTALL_HINT.split(', or pass')[0]})"
    return f"{backend} ({why})"


__all__ = ["BACKENDS", "CHOICES", "NumbaStatus", "NumbaUnavailableWarning", "describe_backend", "numba_status",
           "resolve_backend"]
