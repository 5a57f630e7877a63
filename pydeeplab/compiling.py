"""Knowing when the Numba kernels are compiled, so that a first run is never silent.

The kernels are compiled on their first call and kept in Numba's on-disk cache
(``NUMBA_CACHE_DIR``, else ``__pycache__`` next to them): on a fresh install the first
image waits for the compiler, every later run loads the compiled code in a moment.
Library code does not print; :func:`compile_notice` lets a caller (the CLI) say
something at the moment a compile really starts. It listens to Numba's
``numba:compile`` event, which fires only on a cache miss, so a warm cache says
nothing. Numba compiles one function at a time in a process, so on two CPUs or more a
model's first run has a helper process compile half of its kernels (:func:`compile_helper`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import threading
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


# --------------------------------------------------------------------------- compiling on two cores

#: Set to "0" to keep a first run from starting a :func:`compile_helper` process.
HELPER_ENV = "PYDEEPLAB_COMPILE_HELPER"

_helper_lock = threading.Lock()
_helper_running = False
_last_helper: subprocess.Popen | None = None  # the process last started (reaped once stopped)


def _allowed_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def serialize_cache_saves() -> bool:
    """Make this process's saves to Numba's on-disk cache safe beside another process's: True when done
    (idempotent), False where it cannot be (no ``fcntl``, or a Numba whose cache file class differs).

    Numba saves an entry by reading the function's index, taking the first data file number it does not
    name, writing the index, then the data. Two processes saving other signatures of one function at
    once could take the same number (one's index then names the other's code), and a process stopped
    between the two writes would leave an index naming a data file not written, or a stale one. Here a
    save holds a lock on the cache folder (``flock``; loads take it shared) and writes the data first:
    an index only ever names complete data, and the helper may be stopped at any moment.
    """
    try:
        import fcntl

        from numba.core.caching import IndexDataCacheFile as File
    except ImportError:
        return False
    if getattr(File.save, "_pydeeplab_locked", False):
        return True
    if not all(hasattr(File, name) for name in ("_load_index", "_save_index", "_save_data", "_data_name")):
        return False

    def locked(method, mode):
        def run(self, *args):
            try:
                fd = os.open(self._cache_path, os.O_RDONLY)
            except (AttributeError, OSError):  # no folder yet (Numba makes it before a save): as it was
                return method(self, *args)
            try:
                try:
                    fcntl.flock(fd, mode)
                except OSError:  # a file system without locks (some network ones): as Numba alone does
                    pass
                return method(self, *args)
            finally:
                os.close(fd)  # (releases the lock)

        run._pydeeplab_locked = True
        return run

    def save(self, key, data) -> None:  # Numba's save, the data written before the index
        overloads = self._load_index()
        name = overloads.get(key)
        if name is None:
            taken = set(overloads.values())
            name = next(self._data_name(i) for i in itertools.count(1) if self._data_name(i) not in taken)
        self._save_data(name, data)
        if overloads.get(key) != name:
            overloads[key] = name
            self._save_index(overloads)

    File.save = locked(save, fcntl.LOCK_EX)
    File.load = locked(File.load, fcntl.LOCK_SH)
    return True


@contextmanager
def compile_helper(spec: dict | Callable[[], dict]) -> Iterator[None]:
    """Within the block (a model's first run), if a pydeeplab kernel compile starts (an empty cache),
    start a second process that compiles the same model's kernels into the shared on-disk cache, from
    the operators this run reaches last (:func:`_help`), while this one compiles from the first: where
    they meet, this process loads the rest from the cache. Measured on this 2-core machine, a first image
    on an empty cache: 257 float 6.6 -> 5.0 s, pascal_quant 7.8 -> 5.4 s, the selfie segmenter 8.8 ->
    5.4-5.7 s. It is stopped when the block ends, having saved only complete entries
    (:func:`serialize_cache_saves`).

    ``spec`` (or a function returning it, called when the helper starts): the model as
    :func:`_help` reads it. Nothing is started on a single CPU, without ``fcntl``, with
    ``PYDEEPLAB_COMPILE_HELPER=0``, in a frozen application, or while another helper of this process runs.
    """
    global _helper_running
    started: list = []

    def start() -> None:
        global _helper_running, _last_helper
        with _helper_lock:
            if _helper_running or not serialize_cache_saves():
                return
            _helper_running = True
        try:
            details = spec() if callable(spec) else spec
            env = dict(os.environ, **{HELPER_ENV: "0"})
            _last_helper = subprocess.Popen([sys.executable, "-m", "pydeeplab.compiling", json.dumps(details)],
                                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, env=env)
            started.append((_last_helper, details))
        except Exception:  # no helper: this process compiles everything, as without one
            with _helper_lock:
                _helper_running = False

    # (A frozen application's executable is not a Python that could run the helper.)
    if os.environ.get(HELPER_ENV) == "0" or _allowed_cpus() < 2 or getattr(sys, "frozen", False):
        yield
        return
    with compile_notice(lambda _name: start()):
        try:
            yield
        finally:
            for process, details in started:
                process.terminate()
                process.wait()
                if details.get("temporary"):
                    with contextlib.suppress(OSError):
                        os.unlink(details["model"])
                with _helper_lock:
                    _helper_running = False


def _help(spec: dict) -> None:
    """The helper's work: plan the model as the first run does (``spec``: ``model`` a file, ``threads``,
    ``preserve``, ``shapes`` {input tensor: shape}) and run its operators on zeros, each kernel compiled
    on its first call and saved to the cache: first the first operator of each kind (:func:`_kind`), the
    kind the first run reaches last first, then the others from the last. An operator that fails on
    zeros (not its real inputs) is passed over."""
    serialize_cache_saves()
    import numpy as np

    from .interpreter import Interpreter

    it = Interpreter(model_path=spec["model"], num_threads=spec["threads"], backend="numba",
                     experimental_preserve_all_tensors=spec["preserve"])
    for index, shape in spec["shapes"].items():
        it.resize_tensor_input(int(index), shape)
    it.allocate_tensors()
    it._arena[...] = 0  # the intermediates too: a kernel may index with them
    for d in it.get_input_details():
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    # (A kind's later operators mostly run the kernels its first one compiled.)
    first: dict = {}
    for step in it._program:
        first.setdefault(_kind(step), step)
    order = list(first.values())[::-1] + [s for s in reversed(it._program) if first[_kind(s)] is not s]
    with it._threads():
        for step in order:
            try:
                step.run(step.in_arrays, step.out_arrays)
            except Exception:
                pass


def _kind(step) -> tuple:
    """An operator's code and its tensors' types, ranks and filter sizes: operators of one kind run the
    same kernels, mostly."""
    return (step.opcode, *((a.dtype.str, a.ndim, a.shape[1:3] if a.ndim == 4 and i == 1 else ())
                           for i, a in enumerate(step.in_arrays + step.out_arrays) if a is not None))


if __name__ == "__main__":
    _help(json.loads(sys.argv[1]))
