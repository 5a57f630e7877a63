"""Knowing when the Numba kernels are compiled, so that a first run is never silent.

The kernels are compiled on their first call and kept in Numba's on-disk cache
(``NUMBA_CACHE_DIR``, else ``__pycache__`` next to them): on a fresh install the first
image waits for the compiler, every later run loads the compiled code in a moment.
Library code does not print; :func:`compile_notice` lets a caller (the CLI) say
something at the moment a compile really starts. It listens to Numba's
``numba:compile`` event, which fires only on a cache miss, so a warm cache says
nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: What the CLI says when the first kernel compile of a process starts.
COMPILING_MESSAGE = "compiling kernels, first run only…"

#: The modules whose compiles count (Numba's own helpers compile as part of them).
_KERNEL_MODULE = "pydeeplab.kernels"


@contextmanager
def compile_notice(callback: Callable[[str], None]) -> Iterator[None]:
    """Within the block, call ``callback(name)`` once, when the first pydeeplab kernel compile starts.

    ``name`` is the kernel's qualified name (e.g. ``"pydeeplab.kernels.conv.conv_float"``).
    Kernels loaded from the on-disk cache do not count. Without a loadable Numba the
    block runs unobserved (nothing can compile then).

    Args:
        callback: called from the compiling thread, at most once per block.
    """
    try:
        from numba.core import event
    except Exception:  # no Numba, or a broken one: the NumPy backend compiles nothing
        yield
        return

    class _FirstCompile(event.Listener):
        def __init__(self) -> None:
            self.seen = False

        def on_start(self, ev) -> None:
            if self.seen:
                return
            func = getattr(ev.data.get("dispatcher"), "py_func", None)
            module = getattr(func, "__module__", "") or ""
            if module == _KERNEL_MODULE or module.startswith(_KERNEL_MODULE + "."):
                self.seen = True
                callback(f"{module}.{func.__name__}")

        def on_end(self, ev) -> None:
            pass

    with event.install_listener("numba:compile", _FirstCompile()):
        yield
