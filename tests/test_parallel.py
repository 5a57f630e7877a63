"""kernels/parallel.py: a chunk kernel run on Numba's threads through the launcher."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from llvmlite import ir
from numba import njit, typeof, types
from numba.core import cgutils
from numba.extending import intrinsic

from pydeeplab.kernels.parallel import (_Compiled, _enter, _enter_one, _gomp_ready, _launch, _native_thread_id,
                                       in_parallel)


@njit(nogil=True)
def _mark(out, value, t, nt):
    """out[i] += value + t for the i of part t of nt."""
    for i in range(out.shape[0] * t // nt, out.shape[0] * (t + 1) // nt):
        out[i] += value + t


def test_every_part_runs_once_with_its_index():
    run = in_parallel(_mark)
    for nt in (1, 2, 3, 7):
        out = np.zeros(20)
        run(out, 1.5, nt=nt)
        parts = np.array([next(t for t in range(nt) if i < 20 * (t + 1) // nt) for i in range(20)])
        np.testing.assert_array_equal(out, 1.5 + parts, err_msg=f"nt={nt}")


def test_a_launch_with_arguments_of_other_types_is_refused():
    """The launcher calls a chunk by address: arguments of other types than the chunk was compiled
    for would be read as garbage, so the launcher checks their token first."""
    out = np.zeros(4)
    compiled = _Compiled(_mark, (typeof(out), typeof(1.0)))
    _enter(compiled.address, compiled.token, (out, 1.0), 2, 0)
    np.testing.assert_array_equal(out, [1.0, 1.0, 2.0, 2.0])
    with pytest.raises(TypeError, match="other types"):
        _enter(compiled.address, compiled.token, (out.astype(np.float32), 1.0), 2, 0)
    with pytest.raises(TypeError, match="other types"):
        _enter(compiled.address, compiled.token, (out, 1), 2, 0)


@njit(nogil=True)
def _scale(out, x, factor, t, nt):
    """out = x * factor over part t of nt."""
    for i in range(out.shape[0] * t // nt, out.shape[0] * (t + 1) // nt):
        out[i] = x[i] * factor


@intrinsic
def _meminfo_of(typingctx, array):
    """The address of ``array``'s NRT meminfo (0 for a borrowed array)."""
    def codegen(context, builder, sig, llargs):
        meminfo = cgutils.create_struct_proxy(sig.args[0])(context, builder, value=llargs[0]).meminfo
        return builder.ptrtoint(meminfo, ir.IntType(64))

    return types.int64(array), codegen


@njit(nogil=True)
def _record_meminfo(seen, x, t, nt):
    """seen[t] = the meminfo address of x (as part t sees it), and of a row of it."""
    seen[t, 0] = _meminfo_of(x)
    seen[t, 1] = _meminfo_of(x[t])


@pytest.mark.parametrize("nt", [1, 2])
def test_a_chunk_sees_its_arrays_borrowed(nt):
    """Launched (and on one thread too), a chunk gets its arrays without NRT meminfo, so the views it
    takes touch no reference count; through Numba's dispatcher the same array has one."""
    seen, x = np.full((2, 2), -1, np.int64), np.zeros((2, 3))
    in_parallel(_record_meminfo)(seen, x, nt=nt)
    np.testing.assert_array_equal(seen[:nt], 0)
    _record_meminfo(seen, x, 0, 1)  # (the dispatcher: a meminfo for the call)
    assert seen[0, 0] != 0 and seen[0, 1] == seen[0, 0]


@njit(nogil=True)
def _record_thread(ids, t, nt):
    ids[t] = _native_thread_id()


def test_one_part_runs_on_the_calling_thread():
    ids = np.zeros(1, np.int64)
    compiled = _Compiled(_record_thread, (typeof(ids),))
    _enter_one(compiled.address, compiled.token, (ids,), 0)
    assert ids[0] == threading.get_native_id()
    with pytest.raises(TypeError, match="other types"):
        _enter_one(compiled.address, compiled.token, (ids.astype(np.int32),), 0)


def test_one_parallel_loop_serves_chunks_of_every_signature():
    """The prange loop takes integers only: chunks of other argument types (and chunk kernels) add
    a plain entry function each, never another compile of the parallel loop (0.25-0.45 s each on a
    cold cache)."""
    for dtype in (np.float64, np.float32, np.int32):
        x = np.arange(9, dtype=dtype)
        out = np.zeros_like(x)
        in_parallel(_scale)(out, x, dtype(3), nt=2)
        np.testing.assert_array_equal(out, 3 * x)
    out = np.zeros(6)
    in_parallel(_mark)(out, 0.5, nt=3)
    np.testing.assert_array_equal(out, [0.5, 0.5, 1.5, 1.5, 2.5, 2.5])
    # (No signature at all when _enter came from the on-disk cache, _launch's code linked into it.)
    assert set(_launch.signatures) <= {(types.int64,) * 4}, _launch.signatures


def test_launches_on_gnu_openmp_call_libgomp_directly():
    """Where Numba's threading layer is GNU OpenMP (Linux wheels), a launch of as many parts as threads
    calls libgomp's GOMP_parallel itself (1 us of Numba's prange machinery less per launch): thread t
    of the team runs part t, the caller thread 0; a launch of one part runs on the caller alone
    (through the same enter); a launch of more parts than threads goes through the prange loop. A
    refused argument type is refused there too."""
    import numba
    from numba.np.ufunc import omppool

    from pydeeplab.kernels.parallel import _enter_gomp, _record_thread_ids, team, team_thread_ids

    if numba.threading_layer() != "omp" or omppool.openmp_vendor != "GNU" or not sys.platform.startswith("linux"):
        pytest.skip("Numba's threading layer here is not GNU OpenMP on Linux")
    assert _gomp_ready()
    with team(2):
        ids = team_thread_ids(2)
        assert len(set(ids)) == 2 and threading.get_native_id() in ids
        out = np.zeros(6)
        in_parallel(_mark)(out, 0.5, nt=2)
        np.testing.assert_array_equal(out, [0.5, 0.5, 0.5, 1.5, 1.5, 1.5])
        alone = np.full(2, -1, np.int64)
        in_parallel(_record_thread_ids)(alone, nt=1)  # a part of one: the same enter, on this thread alone
        assert alone.tolist() == [threading.get_native_id(), -1]
    compiled = _Compiled(_mark, (typeof(out), typeof(1.0)))
    with pytest.raises(TypeError, match="other types"):
        _enter_gomp(compiled.address, compiled.token, (out, 1), 2, 0)


def test_a_smaller_openmp_team_still_runs_every_part():
    """GOMP_parallel may start fewer threads than asked (OMP_THREAD_LIMIT, OMP_DYNAMIC): each thread
    then runs every T-th part, so none is skipped. In a child, where the limit is read at start."""
    code = """
import numpy as np
from numba import njit
from pydeeplab.kernels.parallel import in_parallel, team, _gomp_ready
@njit(nogil=True)
def mark(out, t, nt):
    for i in range(out.shape[0] * t // nt, out.shape[0] * (t + 1) // nt):
        out[i] += 1 + t
out = np.zeros(8)
with team(2):
    in_parallel(mark)(out, nt=2)
print(_gomp_ready(), out.tolist())
"""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(" ", 1)[1].strip() == str([1.0] * 4 + [2.0] * 4)


def test_a_forked_child_does_not_call_libgomp_directly():
    """libgomp is not fork-safe: in a child forked after a launch, launches go back to Numba's prange
    loop (which stops the child with a message rather than hang)."""
    code = """
import os, sys, numpy as np
from pydeeplab.kernels.parallel import in_parallel, team, _gomp_ready
from numba import njit
@njit(nogil=True)
def mark(out, t, nt):
    out[t] = 1
with team(2):
    in_parallel(mark)(np.zeros(2), nt=2)
before = _gomp_ready()
pid = os.fork()
if pid == 0:
    os._exit(0 if not _gomp_ready() else 3)
_, status = os.waitpid(pid, 0)
print(before, os.waitstatus_to_exitcode(status))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    ready, child = out.stdout.split()
    assert child == "0"


def test_the_token_is_the_same_in_another_process():
    """A cached launcher holds the token as a constant: it must not depend on the process."""
    out = np.zeros(4)
    token = _Compiled(_mark, (typeof(out), typeof(1.0))).token
    code = ("import numpy as np; from numba import typeof, types; from pydeeplab.kernels.parallel import _token; "
            "print(_token(types.Tuple((typeof(np.zeros(4)), typeof(1.0)))))")
    assert int(subprocess.check_output([sys.executable, "-c", code], text=True)) == token


@njit(nogil=True)
def _returns(out, t, nt):
    return out.sum()


def test_a_chunk_that_returns_a_value_is_refused():
    with pytest.raises(TypeError, match="returns nothing"):
        _Compiled(_returns, (typeof(np.zeros(4)),))


@pytest.mark.parametrize("layout", [(1, 37), (5, 8), (2, 3)], ids=lambda s: "x".join(map(str, s)))
def test_the_elementwise_kernels_give_the_same_values_in_any_number_of_parts(layout):
    """Each part of the elementwise kernels (rows, or a share of one long row) is written once:
    the results in 2 and 3 parts are those in one."""
    from pydeeplab.kernels import elementwise as kern

    rng = np.random.default_rng(0)
    rows, cols = layout
    a, b, y = (rng.standard_normal(layout).astype(np.float32) for _ in range(3))
    row = rng.standard_normal((1, cols)).astype(np.float32)
    codes = rng.integers(0, 256, (rows * cols,)).astype(np.uint8)
    table = rng.integers(0, 256, (256, 256)).astype(np.uint8)
    lo, hi = np.float32(-1), np.float32(2)
    cases = {
        "elementwise_float": (kern.elementwise_float, lambda: (a, row, np.empty_like(a), kern.ADD, lo, hi)),
        "multiply_add_float": (kern.multiply_add_float, lambda: (a, row, y, np.empty_like(a), lo, hi)),
        "lookup_unary": (kern.lookup_unary, lambda: (table[0], codes, np.empty_like(codes))),
        "lookup_bytes": (kern.lookup_bytes, lambda: (table[0], codes, np.empty_like(codes))),
        "lookup_binary": (kern.lookup_binary, lambda: (table, codes.reshape(1, 1, 1, 1, rows, cols),
                                                       codes[::-1].reshape(1, 1, 1, 1, rows, cols),
                                                       np.empty((1, 1, 1, 1, rows, cols), np.uint8))),
    }
    outputs = {"elementwise_float": 2, "multiply_add_float": 3, "lookup_unary": 2, "lookup_bytes": 2,
               "lookup_binary": 3}
    if not kern.HAVE_VBMI:
        del cases["lookup_bytes"]
    for name, (chunk, make) in cases.items():
        results = []
        for nt in (1, 2, 3):
            args = make()
            args[outputs[name]].fill(0)
            in_parallel(chunk)(*args, nt=nt)
            results.append(args[outputs[name]].copy())
        for nt, r in zip((2, 3), results[1:]):
            np.testing.assert_array_equal(r, results[0], err_msg=f"{name}, {nt} parts")
    np.testing.assert_array_equal(results[0], table[codes, codes[::-1]].reshape(1, 1, 1, 1, rows, cols))


@pytest.mark.parametrize("one_cpu", [False, True], ids=["all-cpus", "one-cpu"])
def test_the_workers_are_kept_off_the_callers_cpu(one_cpu):
    """After keep_workers_apart, this thread's OpenMP worker may run on every allowed CPU but the one
    the calling thread was on (where Linux would otherwise often wake it after an idle spell); the
    calling thread itself stays unbound; a process allowed one CPU is left as it is. Run in a child:
    the binding lasts as long as the process."""
    code = """
import os, threading
from pydeeplab.threads import start_numba_threads, keep_workers_apart, _placement
start_numba_threads()
import numba
from pydeeplab.kernels.parallel import team, team_thread_ids
allowed = os.sched_getaffinity(0)
with team(2):
    ids = team_thread_ids(2)
    assert threading.get_native_id() in ids and len(ids) == 2, ids
    keep_workers_apart(2)
    cpu = _placement.cpu
    for tid in ids:
        if tid != threading.get_native_id():
            expected = allowed - {cpu} if len(allowed) > 1 else allowed
            assert os.sched_getaffinity(tid) == expected, (tid, os.sched_getaffinity(tid), cpu)
assert os.sched_getaffinity(0) == allowed
print("ok", numba.threading_layer(), len(allowed))
"""
    first = min(os.sched_getaffinity(0))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "NUMBA_NUM_THREADS": "2"},  # (Numba's default: the CPUs allowed)
                         preexec_fn=(lambda: os.sched_setaffinity(0, {first})) if one_cpu else None)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:2] == ["ok", "omp"]
    assert one_cpu == (out.stdout.split()[2] == "1")
