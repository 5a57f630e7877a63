"""Running a kernel on Numba's threads without compiling it twice.

A ``parallel=True`` kernel is expensive to compile on a cold cache: Numba outlines the
``prange`` body into a new function and compiles it again, linking in and
re-optimizing every function the body calls (measured on the 3x3 depthwise kernel:
as long again as compiling the kernel itself). So the heavy kernels here are plain
functions ``chunk(*args, t, nt)`` that do part ``t`` of ``nt`` of the work (output
rows ``rows * t // nt`` to ``rows * (t + 1) // nt``), called through the address of
their C wrapper, which LLVM cannot inline and so does not re-optimize. The address is a
plain integer, with a token of the argument types that is checked: Numba's first-class
function values cost 6 us a launch to unbox (the signature unpickled and two Python
calls), as much as the 2-thread parallel region itself.

The ``prange`` loop, :func:`_launch`, takes only integers, so it is compiled once for
every chunk: per signature of the chunks' arguments, :func:`_enter`, a plain function,
stores the arguments in its frame and passes their address with that of a trampoline
that loads them and calls the chunk. A ``prange`` launcher per signature cost 0.25-0.45 s
of cold compile each (nine on the selfie segmenter: 3.3 s of its first image on two
threads); :func:`_enter` costs 0.1-0.3 s. A part of one calls the chunk through the same
frame on the calling thread: in :func:`_enter_gomp` where launches go through libgomp (below),
so that a signature launched both ways compiles once (the selfie segmenter's first image on two
threads, empty cache: four such compiles, 0.08-0.13 s each), else :func:`_enter_one`.

The frame holds the arrays borrowed (:func:`_borrowed`): without the NRT meminfo that Numba's
unboxing gives each array, so that the views a chunk takes in its loops (a row, a slice of
the bias) touch no reference count. Each such view otherwise costs an atomic increment and
decrement of the array's count, on two threads of one shared count. Measured (sums of
per-operator minima, A/B in one process): 2 threads, the 257 float model 7.92 -> 7.70 ms,
pascal_quant 26.50 -> 26.28, the selfie segmenter 2.38 -> 2.28; 1 thread, each launch through
the dispatcher against the borrowed frame, 13.61 -> 13.31 ms (the 3x3 depthwise 8%, the first
convolution 8%), 45.32 -> 45.02 and 2.64 -> 2.54.

Inside :func:`recording`, each launch also copies its frame (with the trampoline's address) into a
buffer of its own: :func:`replay` calls recorded launches again, one after the other, in one compiled
loop, which is how ``pydeeplab.replay`` runs most of a model's steps without Python between them;
:func:`recorded_call` records the NumPy calls a run makes between its launches, which a replay makes
again from Python.

Where Numba's threading layer is GNU OpenMP (its Linux wheels), a launch of as many parts as threads
skips even the ``prange`` loop: :func:`_enter_gomp` calls libgomp's ``GOMP_parallel``, what
``#pragma omp parallel`` compiles to, with a function that runs part t on thread t
(:func:`_gomp_ready` says where). Numba's loop around the same call costs about 1 us a launch
(scheduling arrays, thread-count bookkeeping): a trivial 2-thread launch 3.4-3.7 -> 2.5 us; the
257 float model on 2 threads, 55 launches an image, 9.25 -> 9.08 ms in a bench-like rotation, the
selfie segmenter 3.11 -> 2.87 ms back to back (A/B in one process).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

import numba
import numpy as np
from llvmlite import ir
from numba import config, njit, prange, typeof, types
from numba.core import cgutils
from numba.extending import intrinsic


def _token(args) -> int:
    """A number naming the Numba type of a chunk's arguments (the tuple ``args``), the same in every
    process: :func:`_enter` checks it against the chunk it is given."""
    return int.from_bytes(hashlib.blake2b(str(args).encode(), digest_size=7).digest(), "little")


class _Compiled:
    """A chunk kernel compiled (or loaded from the cache) for one signature: the address of its
    C-callable wrapper, the argument types' token, and the compiled code kept alive."""

    def __init__(self, chunk, argtypes: tuple) -> None:
        signature = argtypes + (types.int64, types.int64)  # (..., t, nt)
        chunk.compile(signature)
        self._result = chunk.overloads[signature]  # keeps the compiled code alive
        if self._result.signature.return_type != types.none:
            raise TypeError(f"a chunk kernel returns nothing, not {self._result.signature.return_type}")
        self.address = self._result.library.get_pointer_to_function(self._result.fndesc.llvm_cfunc_wrapper_name)
        self.token = _token(types.Tuple(argtypes))


@intrinsic
def _token_of(typingctx, args):
    """The token of ``args``'s type (:func:`_token`), a constant of the compiled :func:`_enter`."""
    token = _token(types.Tuple(tuple(args)))
    return types.int64(args), lambda context, builder, sig, llargs: ir.Constant(ir.IntType(64), token)


def _trampoline(context, module, args_type) -> ir.Function:
    """The module's function ``void(chunk, frame, t, nt)`` (four int64) that loads the arguments of type
    ``args_type`` (a tuple) stored at address ``frame`` and calls ``chunk(*args, t, nt)``, ``chunk`` the
    address of a chunk's C wrapper (:class:`_Compiled`)."""
    name = f"pydeeplab_trampoline_{_token(args_type):x}"
    if name in module.globals:
        return module.globals[name]
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ir.IntType(64)] * 4), name=name)
    fn.linkage = "internal"
    builder = ir.IRBuilder(fn.append_basic_block())
    chunk, frame, t, nt = fn.args
    stored = builder.load(builder.inttoptr(frame, context.get_value_type(args_type).as_pointer()))
    prototype = types.FunctionPrototype(types.none, tuple(args_type) + (types.int64, types.int64))
    callee = builder.inttoptr(chunk, context.get_value_type(prototype))
    builder.call(callee, cgutils.unpack_tuple(builder, stored, len(args_type)) + [t, nt])
    builder.ret_void()
    return fn


def _borrowed(context, builder, args_type, args):
    """The tuple ``args`` with each array's NRT meminfo and parent pointer null: the arrays as
    borrowed views, whose slices inside a chunk then touch no reference count (NRT skips a null
    meminfo). The caller's own references keep the data alive for the launch."""
    values = cgutils.unpack_tuple(builder, args, len(args_type))
    for k, ty in enumerate(args_type):
        if isinstance(ty, types.Array):
            array = cgutils.create_struct_proxy(ty)(context, builder, value=values[k])
            array.meminfo = cgutils.get_null_value(array.meminfo.type)
            array.parent = cgutils.get_null_value(array.parent.type)
            values[k] = array._getvalue()
    return context.make_tuple(builder, args_type, values)


@intrinsic
def _frame(typingctx, args):
    """(trampoline, frame): ``args`` stored in the caller's stack frame (valid until it returns) and
    the address of :func:`_trampoline` for their type."""
    def codegen(context, builder, sig, llargs):
        frame = cgutils.alloca_once_value(builder, _borrowed(context, builder, sig.args[0], llargs[0]))
        i64 = ir.IntType(64)
        trampoline = builder.ptrtoint(_trampoline(context, builder.module, sig.args[0]), i64)
        return context.make_tuple(builder, sig.return_type, [trampoline, builder.ptrtoint(frame, i64)])

    return types.UniTuple(types.int64, 2)(args), codegen


@intrinsic
def _call(typingctx, trampoline, chunk, frame, t, nt):
    """``trampoline(chunk, frame, t, nt)``: the chunk on the arguments stored at ``frame`` (:func:`_frame`)."""
    def codegen(context, builder, sig, llargs):
        function = builder.inttoptr(llargs[0], ir.FunctionType(ir.VoidType(), [ir.IntType(64)] * 4).as_pointer())
        builder.call(function, llargs[1:])
        return context.get_dummy_value()

    return types.none(trampoline, chunk, frame, t, nt), codegen


#: Bytes a recorded launch's frame may take (:func:`recording`): an array argument takes 40 + 16 per
#: dimension, a scalar 8; a chunk's arguments take a few hundred.
FRAME_BYTES = 2048


@intrinsic
def _kept(typingctx, trampoline, frame, args, record):
    """Where ``record`` (an address) is not 0: the trampoline, then the ``args`` frame at ``frame``
    copied after it (at ``record + 64``), if it fits in FRAME_BYTES; returns the frame's size (0 where
    nothing was recorded, -1 where it did not fit)."""
    def codegen(context, builder, sig, llargs):
        trampoline, frame, _, record = llargs
        i64, i8p = ir.IntType(64), ir.IntType(8).as_pointer()
        size = context.get_abi_sizeof(context.get_value_type(sig.args[2]))
        result = cgutils.alloca_once_value(builder, ir.Constant(i64, 0))
        with builder.if_then(builder.icmp_signed("!=", record, ir.Constant(i64, 0))):
            if size > FRAME_BYTES:
                builder.store(ir.Constant(i64, -1), result)
            else:
                builder.store(trampoline, builder.inttoptr(record, i64.as_pointer()))
                into = builder.inttoptr(builder.add(record, ir.Constant(i64, 64)), i8p)
                cgutils.memcpy(builder, into, builder.inttoptr(frame, i8p), ir.Constant(i64, size))
                builder.store(ir.Constant(i64, size), result)
        return builder.load(result)

    return types.int64(trampoline, frame, args, record), codegen


@njit(cache=True, parallel=True, nogil=True)
def _launch(trampoline, chunk, frame, nt):
    """The parallel region: every argument an int64, so compiled once for every chunk."""
    for t in prange(nt):
        _call(trampoline, chunk, frame, np.int64(t), nt)


def _gomp_body(module) -> ir.Function:
    """The module's ``void body(i8* job)`` that GNU OpenMP runs on each thread of a team: job holds
    (trampoline, chunk, frame, nt), four int64; thread t of T calls ``trampoline(chunk, frame, p, nt)``
    for p = t, t + T, ... < nt (T is nt unless the OpenMP runtime gave a smaller team)."""
    name = "pydeeplab_gomp_body"
    if name in module.globals:
        return module.globals[name]
    i32, i64 = ir.IntType(32), ir.IntType(64)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()]), name=name)
    fn.linkage = "internal"
    builder = ir.IRBuilder(fn.append_basic_block())
    job = builder.bitcast(fn.args[0], i64.as_pointer())
    trampoline, chunk, frame, nt = (builder.load(builder.gep(job, [ir.Constant(i32, k)])) for k in range(4))
    omp = {name: cgutils.get_or_insert_function(module, ir.FunctionType(i32, []), name)
           for name in ("omp_get_thread_num", "omp_get_num_threads")}
    first = builder.sext(builder.call(omp["omp_get_thread_num"], []), i64)
    step = builder.sext(builder.call(omp["omp_get_num_threads"], []), i64)
    function = builder.inttoptr(trampoline, ir.FunctionType(ir.VoidType(), [i64] * 4).as_pointer())
    entry, loop, done = builder.block, fn.append_basic_block("part"), fn.append_basic_block("done")
    builder.cbranch(builder.icmp_signed("<", first, nt), loop, done)
    builder.position_at_end(loop)
    part = builder.phi(i64)
    part.add_incoming(first, entry)
    builder.call(function, [chunk, frame, part, nt])
    following = builder.add(part, step)
    part.add_incoming(following, loop)
    builder.cbranch(builder.icmp_signed("<", following, nt), loop, done)
    builder.position_at_end(done)
    builder.ret_void()
    return fn


@intrinsic
def _gomp_parallel(typingctx, trampoline, chunk, frame, nt):
    """``trampoline(chunk, frame, t, nt)`` on thread t of a GNU OpenMP team of nt (the caller thread 0):
    libgomp's ``GOMP_parallel``, as ``#pragma omp parallel`` compiles to."""
    def codegen(context, builder, sig, llargs):
        i64, i8p = ir.IntType(64), ir.IntType(8).as_pointer()
        job = cgutils.alloca_once(builder, i64, size=4)
        for k, value in enumerate(llargs):
            builder.store(value, builder.gep(job, [ir.Constant(ir.IntType(32), k)]))
        body = _gomp_body(builder.module)
        parallel = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [body.type, i8p, ir.IntType(32), ir.IntType(32)]),
            "GOMP_parallel")
        builder.call(parallel, [body, builder.bitcast(job, i8p), builder.trunc(llargs[3], ir.IntType(32)),
                                ir.Constant(ir.IntType(32), 0)])
        return context.get_dummy_value()

    return types.none(trampoline, chunk, frame, nt), codegen


@njit(cache=True, nogil=True)
def _enter_gomp(address, token, args, nt, record):
    """:func:`_enter` with the team started by libgomp itself (:func:`_gomp_parallel`), and a part of one
    called on this thread, as :func:`_enter_one` does: one compile for a signature launched both ways."""
    if token != _token_of(args):
        raise TypeError("a chunk kernel launched with arguments of other types than it was compiled for")
    trampoline, frame = _frame(args)
    if nt == 1:
        _call(trampoline, address, frame, np.int64(0), np.int64(1))
    else:
        _gomp_parallel(trampoline, address, frame, nt)
    return _kept(trampoline, frame, args, record)


@njit(cache=True, nogil=True)
def _enter_one(address, token, args, record):
    """``chunk(*args, 0, 1)`` on the calling thread, through the borrowed frame of a launch
    (:func:`_frame`): no thread pool is started."""
    if token != _token_of(args):
        raise TypeError("a chunk kernel launched with arguments of other types than it was compiled for")
    trampoline, frame = _frame(args)
    _call(trampoline, address, frame, np.int64(0), np.int64(1))
    return _kept(trampoline, frame, args, record)


@njit(cache=True, nogil=True)
def _enter(address, token, args, nt, record):
    """``chunk(*args, t, nt)`` for t < nt on Numba's threads, ``address`` and ``token`` the chunk's
    (:class:`_Compiled`). Compiled once per signature of the chunks' arguments, as a plain function:
    the ``prange`` loop is :func:`_launch`'s, compiled once. Where ``record`` (an address) is not 0,
    the launch is copied there (:func:`_kept`, :func:`recording`)."""
    if token != _token_of(args):
        raise TypeError("a chunk kernel launched with arguments of other types than it was compiled for")
    trampoline, frame = _frame(args)
    _launch(trampoline, address, frame, nt)
    return _kept(trampoline, frame, args, record)


@njit(cache=True, nogil=True)
def _replay_one(launches):
    """Recorded launches (rows of :meth:`Launch.row`) of one part each, in order, on the calling thread.
    (Three such loops, as three enters: :func:`_replay_gomp` links libgomp's symbol, which only a
    process where it is loaded may, and :func:`_replay`'s prange loop starts Numba's threads.)"""
    for i in range(launches.shape[0]):
        _call(launches[i, 0], launches[i, 1], launches[i, 2], np.int64(0), np.int64(1))


@njit(cache=True, nogil=True)
def _replay_gomp(launches):
    """Recorded launches in order, those of more than one part through libgomp (:func:`_enter_gomp`)."""
    for i in range(launches.shape[0]):
        if launches[i, 3] == 1:
            _call(launches[i, 0], launches[i, 1], launches[i, 2], np.int64(0), np.int64(1))
        else:
            _gomp_parallel(launches[i, 0], launches[i, 1], launches[i, 2], launches[i, 3])


@njit(cache=True, nogil=True)
def _replay(launches):
    """Recorded launches in order, those of more than one part through Numba's prange loop (:func:`_enter`)."""
    for i in range(launches.shape[0]):
        if launches[i, 3] == 1:
            _call(launches[i, 0], launches[i, 1], launches[i, 2], np.int64(0), np.int64(1))
        else:
            _launch(launches[i, 0], launches[i, 1], launches[i, 2], launches[i, 3])


#: Work (multiply-adds, or elements for kernels that only move data) below which a kernel runs
#: on the calling thread alone: starting and joining the team costs more than it saves there
#: (the squeeze-and-excite convs of a single pixel, the 16x16 layers of the selfie segmenter).
PARALLEL_MIN = 1 << 18

#: The work an elementwise kernel (a table lookup, a float ADD) counts for each element it writes:
#: loading, computing and storing one takes as long as tens of a convolution's multiply-adds (float
#: ADD 0.8 ns an element, the 1x1 tile 0.013 ns a multiply-add, one thread), so 16 keeps below
#: PARALLEL_MIN the ones under 16384 elements (~13 us), where a launch on 2 threads costs 4 us.
ELEMENT_WORK = 16


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


@intrinsic
def _native_thread_id(typingctx):
    """The kernel's (Linux) thread id of the calling thread: glibc's ``gettid``."""
    def codegen(context, builder, sig, llargs):
        gettid = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []), "gettid")
        return builder.sext(builder.call(gettid, []), ir.IntType(64))

    return types.int64(), codegen


@njit(cache=True, nogil=True)
def _record_thread_ids(ids, t, nt):
    """ids[Numba's index of the thread running part t] = its Linux thread id."""
    ids[numba.get_thread_id()] = _native_thread_id()


def team_thread_ids(n: int) -> list[int]:
    """The Linux thread ids of the Numba threads that run this thread's kernels on ``n`` threads
    (the calling thread's among them; OpenMP gives each calling thread a team of its own). Linux
    only: glibc's ``gettid``."""
    ids = np.full(n, -1, np.int64)
    in_parallel(_record_thread_ids)(ids, nt=n)
    return [int(i) for i in ids if i >= 0]


_gomp: list[bool] = []  # [whether libgomp's GOMP_parallel is linked in], once known


def _gomp_ready() -> bool:
    """Whether launches call libgomp's ``GOMP_parallel`` directly (:func:`_enter_gomp`): where Numba's
    threading layer is GNU OpenMP, its library found among the process's (Linux) and its symbols
    made known to the JIT; elsewhere, and in a child forked after (libgomp is not fork-safe, and
    Numba's own launcher then stops the child with a message rather than hang), Numba's ``prange``."""
    if not _gomp:
        ready = False
        try:
            numba.get_num_threads()  # (starts the threading layer)
            from numba.np.ufunc import omppool

            if numba.threading_layer() == "omp" and omppool.openmp_vendor == "GNU":
                with open("/proc/self/maps") as maps:
                    found = {line.split()[-1] for line in maps if "/libgomp" in line}
                if len(found) == 1:
                    import llvmlite.binding

                    llvmlite.binding.load_library_permanently(found.pop())
                    ready = True
        except (ImportError, OSError, RuntimeError, ValueError):
            ready = False
        _gomp.append(ready)
        if ready and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=lambda: _gomp.__setitem__(0, False))
    return _gomp[0]


def in_parallel(chunk) -> Callable[..., None]:
    """``run(*args, nt=N)``: ``chunk(*args, t, N)`` for t = 0 .. N - 1, on Numba's threads.

    Make one per operator (its arguments keep their types from call to call): the
    launcher is bound to the argument types of the first call.
    """
    compiled: list[_Compiled] = []

    def run(*args, nt: int) -> None:
        if config.DISABLE_JIT:  # (plain Python: no launcher to compile, nothing a replay could run)
            for t in range(nt):
                chunk(*args, t, nt)
            if getattr(_recorder, "launches", None) is not None:
                _recorder.launches.append(Launch(0, nt, args, None, 0))
            return
        if not compiled:
            compiled.append(_Compiled(chunk, tuple(typeof(a) for a in args)))
        address, token = compiled[0].address, compiled[0].token
        launches = getattr(_recorder, "launches", None)
        kept = np.zeros(FRAME_BYTES + 128, np.uint8) if launches is not None else None
        record = 0 if kept is None else kept.ctypes.data + -kept.ctypes.data % 64
        if _gomp_ready() and (nt == 1 or nt <= (getattr(_team, "size", None) or numba.get_num_threads())):
            size = _enter_gomp(address, token, args, nt, record)
        elif nt == 1:
            size = _enter_one(address, token, args, record)
        else:
            size = _enter(address, token, args, nt, record)
        if launches is not None:
            launches.append(Launch(address, nt, args, kept, record if size > 0 else 0))

    return run


_recorder = threading.local()  # .launches: the list :func:`recording` fills, else absent or None


class Launch(NamedTuple):
    """One launch of a chunk, as :func:`recording` saw it: the chunk's address, its parts, the arguments
    (kept, with the memory the recorded frame points into) and the copy of its frame."""

    address: int
    nt: int
    args: tuple
    kept: np.ndarray | None
    record: int  # where the trampoline and the frame were copied (0: not recorded)

    def same_as(self, other) -> bool:
        """Whether the two launches run the same chunk on the same memory with the same values."""
        return (isinstance(other, Launch) and self.address == other.address and self.nt == other.nt
                and self.record != 0 and other.record != 0
                and [_identity(a) for a in self.args] == [_identity(a) for a in other.args])

    def row(self) -> tuple[int, int, int, int]:
        """(trampoline, chunk, frame, parts): what :func:`replay` runs."""
        return ctypes.c_int64.from_address(self.record).value, self.address, self.record + 64, self.nt


def _identity(value) -> tuple:
    """What a launch's argument is, as a replay would see it: an array's memory and layout, a value."""
    if isinstance(value, np.ndarray):
        return "array", value.ctypes.data, value.shape, value.strides, value.dtype.str
    if isinstance(value, tuple):
        return "tuple", tuple(_identity(v) for v in value)
    return "value", type(value).__name__, value


@contextmanager
def recording() -> Iterator[list[Launch | Call]]:
    """The launches :func:`in_parallel`'s runs make in this thread inside the block, each with a copy of
    its frame (the arguments as the chunk gets them, arrays borrowed): :func:`replay` runs them again
    without Python; and the calls made through :func:`recorded_call`, in order among them. A recorded
    launch stands for its run only while every array it points into lives unchanged (the caller keeps
    :attr:`Launch.args`) and the run would pass the same arguments. (Without the JIT, a launch is
    recorded as one that cannot be replayed: ``record`` 0.)"""
    launches: list[Launch | Call] = []
    before = getattr(_recorder, "launches", None)
    _recorder.launches = launches
    try:
        yield launches
    finally:
        _recorder.launches = before


def replayable(run: Callable) -> Callable:
    """Mark ``run`` (a step's run, or the fill a conv's run wraps) as :func:`in_parallel` launches and
    :func:`recorded_call` calls and nothing else that a replay of what was recorded would leave out
    (a copy of an input, a buffer filled from one). ``pydeeplab.replay`` replays only marked steps."""
    run.replayable = True
    return run


class Call(NamedTuple):
    """A call of a Python function (a NumPy function on fixed arrays, say) in a recorded run, made again
    as it was by a replay (:func:`recorded_call`)."""

    function: Callable
    args: tuple

    def same_as(self, other) -> bool:
        """Whether the two calls call the same function on the same memory with the same values."""
        return (isinstance(other, Call) and self.function is other.function
                and [_identity(a) for a in self.args] == [_identity(a) for a in other.args])


def recorded_call(function: Callable, *args) -> None:
    """``function(*args)``, recorded as a :class:`Call` inside :func:`recording`: the NumPy work between
    the launches of a :func:`replayable` run (LOGISTIC's exp), which a replay then makes from Python
    between its compiled loops. The arguments are kept, as a launch's are."""
    function(*args)
    launches = getattr(_recorder, "launches", None)
    if launches is not None:
        launches.append(Call(function, args))


def replay(rows: np.ndarray, parts: int) -> None:
    """Run recorded launches (int64 rows of :meth:`Launch.row`, ``parts`` the most parts of one) in
    order, in one compiled loop, on this thread's team (:func:`team`)."""
    if _gomp_ready() and (parts == 1 or parts <= (getattr(_team, "size", None) or numba.get_num_threads())):
        _replay_gomp(rows)
    elif parts == 1:
        _replay_one(rows)
    else:
        _replay(rows)


__all__ = ["ELEMENT_WORK", "FRAME_BYTES", "Call", "Launch", "in_parallel", "numba_threads", "recorded_call",
           "recording", "replay", "replayable", "team", "team_thread_ids"]
