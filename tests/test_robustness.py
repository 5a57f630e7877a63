"""API misuse, threads and memory stability of the Interpreter (beyond tests/test_interpreter.py).

Where tflite_runtime (LiteRT) raises ValueError, pydeeplab raises ValueError with the same
message; where LiteRT raises something else or accepts a call that makes no sense,
pydeeplab raises ValueError with a message naming the problem. The misuse tests hold the
two side by side.
"""

from __future__ import annotations

import gc
import importlib.util
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import pydeeplab
from pydeeplab import ModelError
from pydeeplab.interpreter import InterpreterStateError

REPO = Path(__file__).resolve().parent.parent


def _load_fuzz():
    name = "pydeeplab_fuzz"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tools" / "fuzz.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


fuzz = _load_fuzz()
MINI = fuzz.mini_deeplab("float32", size=17)  # conv, atrous depthwise, add, pool, resize, concat
MINI_UINT8 = fuzz.mini_deeplab("uint8", size=17)


def _litert(model: bytes):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)


def _pair(model: bytes = MINI, allocate: bool = True):
    lite, ours = _litert(model), pydeeplab.Interpreter(model_content=model)
    if allocate:
        lite.allocate_tensors()
        ours.allocate_tensors()
    return lite, ours


def _error(fn) -> BaseException | None:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the exception is what is compared
        return exc
    return None


def _input(interp, seed: int = 0) -> np.ndarray:
    d = interp.get_input_details()[0]
    rng = np.random.default_rng(seed)
    if d["dtype"] == np.float32:
        return rng.uniform(-1, 1, d["shape"]).astype(np.float32)
    return rng.integers(0, 256, d["shape"]).astype(d["dtype"])


def _run(interp, x: np.ndarray) -> np.ndarray:
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


# -- calls out of order ---------------------------------------------------------------------------


def test_invoke_before_allocate_and_after_resize_like_litert():
    lite, ours = _pair(allocate=False)
    theirs, mine = _error(lite.invoke), _error(ours.invoke)
    assert isinstance(theirs, RuntimeError)
    prefix = "Invoke called on model that is not ready"
    assert isinstance(mine, RuntimeError) and isinstance(mine, ValueError)
    assert str(theirs).startswith(prefix) and str(mine).startswith(prefix)
    for it in (lite, ours):
        it.allocate_tensors()
        it.invoke()
        it.resize_tensor_input(it.get_input_details()[0]["index"], [1, 9, 9, 3])
    theirs, mine = _error(lite.invoke), _error(ours.invoke)
    assert str(theirs).startswith(prefix)
    assert isinstance(mine, InterpreterStateError) and str(mine).startswith(prefix)


def test_tensor_data_before_allocate_like_litert():
    lite, ours = _pair(allocate=False)
    out = ours.get_output_details()[0]["index"]
    for call in (lambda it: it.get_tensor(0), lambda it: it.get_tensor(out), lambda it: it.tensor(out)()):
        theirs, mine = _error(lambda: call(lite)), _error(lambda: call(ours))
        assert type(theirs) is ValueError and isinstance(mine, ValueError)
        assert str(mine) == str(theirs) == "Tensor data is null. Run allocate_tensors() first"


# -- unknown tensor indices ------------------------------------------------------------------------


def test_unknown_tensor_index_like_litert():
    lite, ours = _pair()
    n = len(ours.get_tensor_details())
    x = _input(ours)
    calls = {
        "get_tensor": lambda it, i: it.get_tensor(i),
        "set_tensor": lambda it, i: it.set_tensor(i, x),
        "tensor": lambda it, i: it.tensor(i)(),
    }
    for name, call in calls.items():
        for index in (n, n + 7, -1, -n, np.int64(n)):
            theirs, mine = _error(lambda: call(lite, index)), _error(lambda: call(ours, index))
            assert type(theirs) is ValueError, (name, index, theirs)
            assert isinstance(mine, ValueError) and str(mine) == str(theirs), (name, index, mine)
    # LiteRT's resize_tensor_input fails an internal check (RuntimeError); ours says which index.
    for index in (n, -1):
        with pytest.raises(ValueError, match=f"Invalid tensor index {index} exceeds max tensor index {n}"):
            ours.resize_tensor_input(index, [1, 17, 17, 3])


@pytest.mark.parametrize("index", [1.0, "0", None, 2**70, [0]])
def test_tensor_index_of_a_wrong_type_is_a_value_error(index):
    """LiteRT's bindings raise TypeError here; pydeeplab a ValueError naming the index."""
    ours = pydeeplab.Interpreter(model_content=MINI)
    ours.allocate_tensors()
    for call in (lambda: ours.get_tensor(index), lambda: ours.set_tensor(index, _input(ours)),
                 lambda: ours.tensor(index), lambda: ours.resize_tensor_input(index, [1, 17, 17, 3])):
        with pytest.raises(ValueError, match="Invalid tensor index"):
            call()


# -- set_tensor ------------------------------------------------------------------------------------


def test_set_tensor_values_like_litert():
    lite, ours = _pair()
    index = ours.get_input_details()[0]["index"]
    good = _input(ours)
    values = [
        good.tolist(),  # a nested list of Python floats: float64
        good.astype(np.float64),
        good.astype(np.int32),
        good.astype(np.float16),
        1.5,
        np.float32(1.5),  # 0-d
        good[..., None],  # 5-D
        good[:, :8],  # one dimension short
        good[0],  # rank 3
    ]
    for value in values:
        theirs = _error(lambda: lite.set_tensor(index, value))
        mine = _error(lambda: ours.set_tensor(index, value))
        assert type(theirs) is ValueError, value
        assert isinstance(mine, ValueError) and str(mine) == str(theirs)


def test_set_tensor_string_and_object_values_like_litert():
    """LiteRT reports a str (or None) value as type STRING; the message names a TFLite type."""
    lite, ours = _pair()
    index = ours.get_input_details()[0]["index"]
    for value in ("abc", None, np.array(["a"], dtype=object)):
        theirs = _error(lambda: lite.set_tensor(index, value))
        mine = _error(lambda: ours.set_tensor(index, value))
        assert type(theirs) is ValueError and isinstance(mine, ValueError)
        assert str(mine) == str(theirs)


def test_set_tensor_copies_and_accepts_any_layout():
    ours = pydeeplab.Interpreter(model_content=MINI)
    ours.allocate_tensors()
    x = _input(ours, 1)
    want = _run(ours, x)
    index = ours.get_input_details()[0]["index"]
    source = x.copy()
    ours.set_tensor(index, source)
    source[...] = 0  # the interpreter holds a copy, not the caller's array
    ours.invoke()
    np.testing.assert_array_equal(ours.get_tensor(ours.get_output_details()[0]["index"]), want)
    transposed = np.ascontiguousarray(x.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)  # not C-contiguous
    readonly = x.copy()
    readonly.flags.writeable = False
    for value in (transposed, readonly):
        np.testing.assert_array_equal(_run(ours, value), want)


def test_set_tensor_on_a_constant_is_refused():
    """LiteRT lets set_tensor overwrite a weight; pydeeplab's weights are read-only views of
    the model bytes, so it refuses with a ValueError instead of corrupting them."""
    ours = pydeeplab.Interpreter(model_content=MINI)
    ours.allocate_tensors()
    const = next(t for t in ours.model.main.tensors if t.data is not None)
    with pytest.raises(ValueError, match="constant"):
        ours.set_tensor(const.index, np.zeros(const.shape, const.type.dtype))
    np.testing.assert_array_equal(ours.get_tensor(const.index), const.data)


# -- resize_tensor_input ---------------------------------------------------------------------------


IMPOSSIBLE_SHAPES = {
    "negative": [1, -5, 17, 3],
    "rank 3": [1, 17, 17],
    "rank 5": [1, 17, 17, 3, 1],
    "scalar": [],
    "empty dims": [1, 0, 0, 3],
    "channels": [1, 17, 17, 4],  # the convolution's weights have 3 input channels
    "huge batch": [2**31 - 1, 17, 17, 3],  # huge H or W: see test_fuzz.py::test_bug_huge_shapes...
    "beyond int32": [2**40, 1, 1, 3],
    "fractional": [1, 16.5, 17, 3],
    "text": "abc",
    "nested": [[1, 17], [17, 3]],
    "none": None,
}


@pytest.mark.parametrize("shape", IMPOSSIBLE_SHAPES.values(), ids=IMPOSSIBLE_SHAPES.keys())
def test_resize_to_an_impossible_shape(shape):
    """A ValueError at resize_tensor_input or a ModelError (a ValueError) naming the problem
    at allocate_tensors; the interpreter refuses to invoke until a good shape is planned."""
    ours = pydeeplab.Interpreter(model_content=MINI)
    ours.allocate_tensors()
    x = _input(ours, 2)
    want = _run(ours, x)
    index = ours.get_input_details()[0]["index"]
    err = _error(lambda: ours.resize_tensor_input(index, shape))
    if err is None:
        err = _error(ours.allocate_tensors)
        assert isinstance(err, ModelError), err
        with pytest.raises(InterpreterStateError, match="not ready"):
            ours.invoke()
    assert isinstance(err, ValueError) and str(err).strip(), repr(err)
    ours.resize_tensor_input(index, [1, 17, 17, 3])
    ours.allocate_tensors()
    np.testing.assert_array_equal(_run(ours, x), want)


def test_resize_strict_only_changes_dynamic_dimensions():
    ours = pydeeplab.Interpreter(model_content=MINI)
    index = ours.get_input_details()[0]["index"]
    with pytest.raises(ValueError, match="strict"):
        ours.resize_tensor_input(index, [1, 33, 33, 3], strict=True)
    ours.resize_tensor_input(index, [1, 17, 17, 3], strict=True)  # unchanged: allowed
    ours.allocate_tensors()


def test_resize_then_run_matches_litert():
    lite, ours = _pair(allocate=False)
    x = np.random.default_rng(3).uniform(-1, 1, (3, 17, 17, 3)).astype(np.float32)
    outs = []
    for it in (lite, ours):
        index = it.get_input_details()[0]["index"]
        it.resize_tensor_input(index, list(x.shape))
        it.allocate_tensors()
        outs.append(_run(it, x))
    # (The pooling branch's RESIZE_BILINEAR has a constant size: only the batch can change.)
    assert outs[1].shape == outs[0].shape == (3, 17, 17, 5)
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-5 * (1 + np.abs(outs[0]).max()))


# -- construction ------------------------------------------------------------------------------------


def test_bad_model_content_and_path(tmp_path):
    from ai_edge_litert.interpreter import Interpreter as LiteRT

    with pytest.raises(ValueError, match="`model_path` or `model_content` must be specified"):
        pydeeplab.Interpreter(model_content=b"")  # empty counts as not given, as in LiteRT
    for content in (b"x" * 100, MINI[:100], MINI[: len(MINI) // 2]):
        assert isinstance(_error(lambda: LiteRT(model_content=content)), ValueError)
        with pytest.raises(ModelError):
            pydeeplab.Interpreter(model_content=content)
    for content in ("not bytes", 123):  # not a buffer: a TypeError, as LiteRT's
        assert isinstance(_error(lambda: LiteRT(model_content=content)), TypeError)
        assert isinstance(_error(lambda: pydeeplab.Interpreter(model_content=content)), TypeError)
    for path in (tmp_path / "missing.tflite", tmp_path):
        assert isinstance(_error(lambda: LiteRT(model_path=str(path))), ValueError)
        with pytest.raises(ValueError, match=str(path)):
            pydeeplab.Interpreter(model_path=path)
    with pytest.raises(ValueError):
        pydeeplab.Interpreter(model_path=str(tmp_path / "x"), model_content=MINI)
    # Accepted buffer types beyond bytes (LiteRT only takes bytes).
    for content in (bytearray(MINI), memoryview(MINI)):
        it = pydeeplab.Interpreter(model_content=content)
        it.allocate_tensors()


@pytest.mark.parametrize("num_threads", [0, -2, 1.5, "2"])
def test_num_threads_validation_like_litert(num_threads):
    from ai_edge_litert.interpreter import Interpreter as LiteRT

    theirs = _error(lambda: LiteRT(model_content=MINI, num_threads=num_threads))
    assert type(theirs) is ValueError
    with pytest.raises(ValueError, match="num_threads"):
        pydeeplab.Interpreter(model_content=MINI, num_threads=num_threads)


# -- threads ---------------------------------------------------------------------------------------


def _in_threads(target, n: int) -> list[BaseException]:
    errors: list[BaseException] = []

    def wrapped(k: int) -> None:
        try:
            target(k)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hangs"
    return errors


@pytest.mark.parametrize("model", [MINI, MINI_UINT8], ids=["float32", "uint8"])
def test_separate_interpreters_in_threads(model):
    ref = pydeeplab.Interpreter(model_content=model)
    ref.allocate_tensors()
    xs = [_input(ref, seed) for seed in range(6)]
    want = [_run(ref, x) for x in xs]
    mismatches = []

    def work(k: int) -> None:
        it = pydeeplab.Interpreter(model_content=model)
        it.allocate_tensors()
        for j in range(30):
            i = (k + j) % len(xs)
            if not np.array_equal(_run(it, xs[i]), want[i]):
                mismatches.append((k, j))

    assert not _in_threads(work, 4)
    assert not mismatches


def test_shared_interpreter_serializes_set_tensor_and_invoke():
    """Two threads invoke one interpreter while a third keeps switching its input: every
    output read back is the output of one of the two inputs, never a mixture (set_tensor,
    invoke and get_tensor each hold the interpreter's lock)."""
    it = pydeeplab.Interpreter(model_content=MINI)
    it.allocate_tensors()
    xs = [_input(it, 10), _input(it, 11)]
    want = [_run(it, x) for x in xs]
    index, out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    stop = threading.Event()
    bad, seen = [], [0, 0]

    def work(k: int) -> None:
        if k == 0:
            try:
                j, deadline = 0, time.monotonic() + 30
                while (j < 400 or min(seen) < 20) and time.monotonic() < deadline:
                    it.set_tensor(index, xs[j % 2])
                    j += 1
            finally:
                stop.set()
            return
        while not stop.is_set():
            it.invoke()
            got = it.get_tensor(out)
            for i in (0, 1):
                if np.array_equal(got, want[i]):
                    seen[i] += 1
                    break
            else:
                bad.append(k)

    assert not _in_threads(work, 3)
    assert not bad, f"{len(bad)} corrupted outputs"
    assert min(seen) >= 20, seen  # both inputs were seen by invokes


def test_shared_interpreter_reallocated_while_invoking():
    """One thread resizes and re-plans the interpreter while others invoke it: calls are
    refused (not ready) or served on a consistent plan, never fail inside a kernel. (The
    plan is replaced as a whole, so this holds even without the lock; the lock's
    serialization is what the previous test checks.)"""
    it = pydeeplab.Interpreter(model_content=MINI)
    it.allocate_tensors()
    index, out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    shapes = [(1, 17, 17, 3), (3, 17, 17, 3)]  # the model's constant resize sizes fix H and W
    xs = {s: np.random.default_rng(s[0]).uniform(-1, 1, s).astype(np.float32) for s in shapes}
    stop = threading.Event()
    counts = {"refused": 0, "served": 0}

    def work(k: int) -> None:
        if k == 0:
            try:
                j, deadline = 0, time.monotonic() + 30
                while (j < 40 or counts["served"] < 20) and time.monotonic() < deadline:
                    shape = shapes[j % 2]
                    it.resize_tensor_input(index, list(shape))
                    it.allocate_tensors()
                    it.set_tensor(index, xs[shape])
                    j += 1
                    time.sleep(0.001)  # let the invoking threads in
            finally:
                stop.set()
            return
        while not stop.is_set():
            try:
                it.invoke()
            except InterpreterStateError:
                counts["refused"] += 1
                continue
            got = it.get_tensor(out)
            assert got.shape in {(1, 17, 17, 5), (3, 17, 17, 5)}, got.shape
            counts["served"] += 1

    assert not _in_threads(work, 3)
    assert counts["served"] >= 20


# -- memory over many invokes -------------------------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_a_thousand_invokes_do_not_grow_memory(backend):
    """1,000 set_tensor/invoke/get_tensor rounds after a warm-up: Python allocations
    (tracemalloc, which sees NumPy arrays), Numba's runtime allocations (NRT counters) and
    the process's RSS are sampled every 100 rounds; none may grow. A leak of one small
    intermediate per invoke (~20 KiB here) would add ~20 MiB."""
    from numba.core.runtime import _nrt_python, rtsys

    model = fuzz.mini_deeplab("float32", size=33)
    it = pydeeplab.Interpreter(model_content=model, backend=backend)
    it.allocate_tensors()
    index, out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    xs = [_input(it, seed) for seed in range(4)]
    for j in range(50):
        it.set_tensor(index, xs[j % 4])
        it.invoke()
        it.get_tensor(out)
    stats_were_on = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()
    gc.collect()
    tracemalloc.start()
    samples = []
    try:
        for j in range(1000):
            it.set_tensor(index, xs[j % 4])
            it.invoke()
            it.get_tensor(out)
            if j % 100 == 0 or j == 999:
                gc.collect()
                stats = rtsys.get_allocation_stats()
                samples.append((tracemalloc.get_traced_memory()[0], _rss(), stats.alloc - stats.free))
    finally:
        tracemalloc.stop()
        if not stats_were_on:
            _nrt_python.memsys_disable_stats()
    traced, rss, nrt_live = (np.array(v, np.int64) for v in zip(*samples))
    assert traced.max() - traced[0] < 64 << 10, f"Python/NumPy memory grew: {traced.tolist()}"
    assert nrt_live.max() - nrt_live[0] <= 0, f"Numba runtime allocations not freed: {nrt_live.tolist()}"
    assert rss[-1] - rss[0] < 8 << 20, f"RSS grew: {(rss - rss[0]).tolist()}"


def test_interpreters_created_and_dropped_do_not_accumulate():
    """A service that builds an interpreter per request: 200 of them, each planned and
    invoked once then dropped, leave no Python/NumPy memory behind (plans, arenas and
    prepared closures are freed with the interpreter)."""
    x = None
    for _ in range(20):  # warm-up: kernels compiled, caches filled
        it = pydeeplab.Interpreter(model_content=MINI)
        it.allocate_tensors()
        x = _input(it) if x is None else x
        _run(it, x)
    del it
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(200):
            it = pydeeplab.Interpreter(model_content=MINI)
            it.allocate_tensors()
            _run(it, x)
            del it
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert grown < 256 << 10, f"{grown} bytes still allocated after 200 interpreters"
