"""Running a kernel on Numba's threads without compiling it twice.

A ``parallel=True`` kernel is expensive to compile on a cold cache: Numba outlines the
``prange`` body into a new function and compiles it again, linking in and
re-optimizing every function the body calls (measured on the 3x3 depthwise kernel:
as long again as compiling the kernel itself). So the heavy kernels here are plain
functions ``chunk(*args, t, nt)`` that do part ``t`` of ``nt`` of the work (output
rows ``rows * t // nt`` to ``rows * (t + 1) // nt``), and :func:`_launch`, one small
``prange`` loop compiled once per chunk signature, calls them through a function
pointer, which LLVM cannot inline and so does not re-optimize. On one thread the
chunk is called directly and no launcher is compiled at all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numba
import numpy as np
from numba import config, njit, prange, typeof, types
from numba.experimental.function_type import WrapperAddressProtocol
from numba.extending import typeof_impl


class _Compiled(WrapperAddressProtocol):
    """A chunk kernel compiled (or loaded from the cache) for one signature, as the
    function pointer Numba passes to :func:`_launch`."""

    def __init__(self, chunk, argtypes: tuple) -> None:
        chunk.compile(argtypes)
        self._result = chunk.overloads[argtypes]  # keeps the compiled code alive
        self._signature = self._result.signature
        self._address = self._result.library.get_pointer_to_function(self._result.fndesc.llvm_cfunc_wrapper_name)
        self.numba_type = types.FunctionType(self._signature)

    def __wrapper_address__(self) -> int:
        return self._address

    def signature(self):
        return self._signature


@typeof_impl.register(_Compiled)
def _typeof_compiled(value: _Compiled, context) -> types.FunctionType:
    # Numba's own typeof for a WrapperAddressProtocol builds a new FunctionType at every
    # call (measured: 25 us of a launch's 30); the type is made once per chunk instead.
    return value.numba_type


@njit(cache=True, parallel=True, nogil=True)
def _launch(chunk, args, nt):
    for t in prange(nt):
        chunk(*args, np.int64(t), nt)


#: Work (multiply-adds, or elements for kernels that only move data) below which a kernel runs
#: on the calling thread alone: starting and joining the team costs more than it saves there
#: (the squeeze-and-excite convs of a single pixel, the 16x16 layers of the selfie segmenter).
PARALLEL_MIN = 1 << 18


_team = threading.local()  # .size: the thread count a run set (:func:`team`), read at every kernel


@contextmanager
def team(n: int) -> Iterator[None]:
    """Numba's thread count set to ``n`` in this thread for the block, and known to
    :func:`numba_threads` without asking Numba (``numba.get_num_threads`` costs 1 us, at
    every kernel of a run)."""
    before, size = numba.get_num_threads(), getattr(_team, "size", None)
    numba.set_num_threads(n)
    _team.size = n
    try:
        yield
    finally:
        _team.size = size
        numba.set_num_threads(before)


def numba_threads(work: int | None = None) -> int:
    """The parts a kernel doing ``work`` splits into: Numba's thread count for this thread (as
    :func:`team` set it, else Numba's), or 1 below PARALLEL_MIN."""
    if work is not None and work < PARALLEL_MIN:
        return 1
    size = getattr(_team, "size", None)
    return numba.get_num_threads() if size is None else size


def in_parallel(chunk) -> Callable[..., None]:
    """``run(*args, nt=N)``: ``chunk(*args, t, N)`` for t = 0 .. N - 1, on Numba's threads.

    Make one per operator (its arguments keep their types from call to call): the
    launcher is bound to the argument types of the first call.
    """
    compiled: list[_Compiled] = []

    def run(*args, nt: int) -> None:
        if nt == 1 or config.DISABLE_JIT:  # (plain Python under DISABLE_JIT: no launcher to compile)
            for t in range(nt):
                chunk(*args, t, nt)
            return
        if not compiled:
            compiled.append(_Compiled(chunk, tuple(typeof(a) for a in args) + (types.int64, types.int64)))
        _launch(compiled[0], args, nt)

    return run


__all__ = ["in_parallel", "numba_threads", "team"]
