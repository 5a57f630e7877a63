"""The CLI says, once, that it compiles the Numba kernels on a cold cache, and says nothing on a warm one.

Each run is a fresh process with its own empty ``NUMBA_CACHE_DIR`` (the real cache is
left alone); the model is a tiny synthesized one, so the cold run compiles only a few
small kernels.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from test_bench import tiny_model  # a 3x3 CONV_2D and an ADD: two kernels to compile
from test_segment import halves, tiny_logits_model

from pydeeplab import compiling
from pydeeplab.compiling import COMPILING_MESSAGE, HELPER_ENV, compile_helper, compile_notice
from pydeeplab.kernels import load_without_compiler

LINE = f"pydeeplab: {COMPILING_MESSAGE}"


def _segment(cache, model, image, out, *extra):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    code = "import sys; from pydeeplab.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, "segment", str(image), "--model", str(model),
                           "--out", str(out), *extra], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def files(tmp_path):
    model = tmp_path / "tiny.tflite"
    model.write_bytes(tiny_logits_model())
    image = tmp_path / "a.png"
    Image.fromarray(halves(16, 16)).save(image)
    return model, image


def test_message_on_a_cold_cache_only(files, tmp_path):
    model, image = files
    cache = tmp_path / "numba-cache"
    cold = _segment(cache, model, image, tmp_path / "out1")
    assert cold.returncode == 0, cold.stderr
    assert cold.stderr.count(LINE) == 1, cold.stderr  # once, however many kernels compile
    assert any(cache.rglob("*.nbi")), "the cold run should have filled the Numba cache"
    warm = _segment(cache, model, image, tmp_path / "out2")
    assert warm.returncode == 0, warm.stderr
    assert COMPILING_MESSAGE not in warm.stderr, warm.stderr


def test_no_message_with_the_numpy_backend(files, tmp_path):
    model, image = files
    run = _segment(tmp_path / "numba-cache", model, image, tmp_path / "out", "--backend", "numpy")
    assert run.returncode == 0, run.stderr
    assert COMPILING_MESSAGE not in run.stderr, run.stderr


def test_notice_names_the_first_kernel_compiled_and_only_once():
    from numba import njit

    # A kernel outside pydeeplab.kernels compiling does not count ...
    @njit
    def outside(x):
        return x + 1

    seen = []
    with compile_notice(seen.append):
        outside(1)
        assert seen == []
        # ... one of ours does, once: a fresh dispatcher of a kernel's Python function, without the disk cache.
        from pydeeplab.kernels import probe as module

        fresh = njit(module.probe.py_func)
        fresh(1)
        fresh(1.5)  # a second specialization: still one call
    assert seen == ["pydeeplab.kernels.probe.probe"]


# --------------------------------------------------------------------------- the compile helper

#: A fresh process: the model's first run on the numba backend (the compile helper as configured),
#: printing what it compiled (the first kernel, or None), the helper's exit status and the output.
_FIRST_RUN = r"""
import json, sys, numpy as np, pydeeplab
from pydeeplab import compiling
compiled = []
it = pydeeplab.Interpreter(model_path=sys.argv[1], backend="numba")
it.allocate_tensors()
d = it.get_input_details()[0]
it.set_tensor(d["index"], np.linspace(-1, 1, np.prod(d["shape"]), dtype=np.float32).reshape(d["shape"]))
with compiling.compile_notice(compiled.append):
    it.invoke()
helper = compiling._last_helper
print(json.dumps({"compiled": compiled[0] if compiled else None,
                  "helper": None if helper is None else helper.returncode,
                  "out": it.get_tensor(it.get_output_details()[0]["index"]).ravel().tolist()}))
"""


def _first_run(model, cache, helper="1"):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), HELPER_ENV: helper}
    done = subprocess.run([sys.executable, "-c", _FIRST_RUN, str(model)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_first_run_on_two_cpus_compiles_with_a_helper_and_leaves_a_whole_cache(tmp_path):
    model = tiny_model(tmp_path / "m.tflite")
    cache = tmp_path / "cache"
    first = _first_run(model, cache)
    assert first["compiled"] is not None
    if len(os.sched_getaffinity(0)) >= 2:  # (CI's machine has 2)
        assert first["helper"] is not None  # started, then stopped (reaped)
    else:
        assert first["helper"] is None
    again = _first_run(model, cache)
    assert again["compiled"] is None and again["helper"] is None  # all from the cache: no helper
    alone = _first_run(model, tmp_path / "cache-alone", helper="0")
    assert alone["compiled"] is not None and alone["helper"] is None
    np.testing.assert_array_equal(first["out"], alone["out"])
    assert first["out"] == again["out"]


def test_the_helper_alone_compiles_every_kernel_of_the_first_run(tmp_path):
    model = tiny_model(tmp_path / "m.tflite")
    cache = tmp_path / "cache"
    spec = {"model": str(model), "temporary": False, "threads": 2, "preserve": False, "shapes": {}}
    done = subprocess.run([sys.executable, "-m", "pydeeplab.compiling", json.dumps(spec)], timeout=600,
                          env={**os.environ, "NUMBA_CACHE_DIR": str(cache)}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _first_run(model, cache, helper="0")["compiled"] is None


# --------------------------------------------------------------------------- a warm start

#: A fresh process: ``import pydeeplab`` (no Numba yet), the model on 2 threads, then a cached function of the user's own (module
#: ``users_code`` in the folder argv[2]); whether Numba's compiler registries were loaded after each
#: (``numba.np.arraymath`` is one of the modules they import) and the model's output.
_WARM_START = r"""
import json, sys, numpy as np, pydeeplab
assert "numba" not in sys.modules  # (the NumPy backend and the CLI's help do without it)
it = pydeeplab.Interpreter(model_path=sys.argv[1], num_threads=2, backend="numba")
it.allocate_tensors()
d = it.get_input_details()[0]
it.set_tensor(d["index"], np.linspace(-1, 1, np.prod(d["shape"]), dtype=np.float32).reshape(d["shape"]))
it.invoke()
after_model = "numba.np.arraymath" in sys.modules
sys.path.insert(0, sys.argv[2])
import users_code
assert users_code.twice(2.5) == 5.0
print(json.dumps({"out": it.get_tensor(it.get_output_details()[0]["index"]).ravel().tolist(),
                  "after_model": after_model, "after_own": "numba.np.arraymath" in sys.modules}))
"""


def test_a_warm_start_loads_the_kernels_without_readying_numbas_compiler(tmp_path):
    model = tiny_model(tmp_path / "m.tflite")
    (tmp_path / "users_code.py").write_text("from numba import njit\n\n\n"
                                            "@njit(cache=True)\ndef twice(x):\n    return 2 * x\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), HELPER_ENV: "0"}
    runs = []
    for _ in range(2):  # the first compiles and fills the cache, the second loads from it
        done = subprocess.run([sys.executable, "-c", _WARM_START, str(model), str(tmp_path)], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    cold, warm = runs
    assert cold["after_model"]  # compiling readies the compiler
    assert not warm["after_model"]  # the kernels came from the cache without it
    assert warm["after_own"]  # the user's function loads as Numba does it
    assert warm["out"] == cold["out"]
    assert load_without_compiler()  # installed (by the backend's probe), idempotent


class _FakeProcess:
    started: list = []

    def __init__(self, args, **kwargs):
        self.args, self.env, self.returncode = args, kwargs["env"], None
        _FakeProcess.started.append(self)

    def terminate(self):
        self.returncode = -15

    def wait(self):
        return self.returncode


def _fresh_kernel():
    """A kernel of pydeeplab's that compiles when called (a new dispatcher, no disk cache)."""
    from numba import njit

    from pydeeplab.kernels import probe as module

    return njit(module.probe.py_func)


@pytest.mark.parametrize("case", ["two cpus", "one cpu", "turned off", "nothing compiled", "frozen application"])
def test_the_helper_starts_at_the_first_kernel_compile_only_where_it_can_help(case, tmp_path, monkeypatch):
    monkeypatch.setattr(compiling.subprocess, "Popen", _FakeProcess)
    monkeypatch.setattr(compiling, "_allowed_cpus", lambda: 1 if case == "one cpu" else 2)
    monkeypatch.setenv(HELPER_ENV, "0" if case == "turned off" else "1")
    if case == "frozen application":  # (PyInstaller's and cx_Freeze's mark)
        monkeypatch.setattr(sys, "frozen", True, raising=False)
    _FakeProcess.started = []
    copy = tmp_path / "model.tflite"
    copy.write_bytes(b"model")
    spec = {"model": str(copy), "temporary": True}
    kernel = _fresh_kernel()
    with compile_helper(spec):
        if case != "nothing compiled":
            kernel(1)
            kernel(2.5)  # a second compile: still one helper
    if case != "two cpus":
        assert _FakeProcess.started == [] and copy.exists()
        return
    (helper,) = _FakeProcess.started
    assert helper.args[:3] == [sys.executable, "-m", "pydeeplab.compiling"] and json.loads(helper.args[3]) == spec
    assert helper.env[HELPER_ENV] == "0"  # the helper starts no helper
    assert helper.returncode == -15 and not copy.exists()  # stopped when the first run ended; its copy removed
    assert not compiling._helper_running


def test_cache_saves_take_the_folder_lock_and_write_the_data_before_the_index(tmp_path, monkeypatch):
    import fcntl
    import threading

    from numba.core.caching import IndexDataCacheFile

    assert compiling.serialize_cache_saves()
    entry = IndexDataCacheFile(str(tmp_path), "kernel", "stamp")
    holder = os.open(tmp_path, os.O_RDONLY)  # another process's save, as far as flock is concerned
    fcntl.flock(holder, fcntl.LOCK_EX)
    saving = threading.Thread(target=entry.save, args=(("sig", 1), b"code 1"))
    saving.start()
    saving.join(0.3)
    assert saving.is_alive() and not list(tmp_path.iterdir())  # waits for the lock
    os.close(holder)
    saving.join(10)
    assert entry.load(("sig", 1)) == b"code 1"

    # Where the file system has no locks, saves go on without one.
    def no_locks(fd, mode):
        raise OSError(37, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    entry.save(("sig", 3), b"code 3")
    monkeypatch.undo()
    assert entry.load(("sig", 3)) == b"code 3"

    # Stopped between its two writes, a save leaves no index naming data it did not write: here a stale
    # data file of an older source is where the new entry goes (Numba numbers them again from 1).
    stale = tmp_path / "stale"
    stale.mkdir()
    IndexDataCacheFile(str(stale), "kernel", "old source").save(("sig",), b"old code")
    entry = IndexDataCacheFile(str(stale), "kernel", "new source")
    writes = []

    def second_write_stops(method):
        def run(*args):
            writes.append(method.__name__)
            if len(writes) == 2:
                raise KeyboardInterrupt
            return method(*args)
        return run

    entry._save_index, entry._save_data = second_write_stops(entry._save_index), second_write_stops(entry._save_data)
    with pytest.raises(KeyboardInterrupt):
        entry.save(("sig",), b"new code")
    assert writes == ["_save_data", "_save_index"]
    assert IndexDataCacheFile(str(stale), "kernel", "new source").load(("sig",)) is None  # not the old code


def test_every_kernel_source_shares_the_newest_modification_time(tmp_path):
    """Numba keys a cached kernel on its own file only, though other files' functions are compiled
    into it: share_source_stamp gives every source of the folder the newest time, so that an edit of
    any one invalidates them all; the package's own sources share one after import."""
    from pathlib import Path

    import pydeeplab.kernels as kernels
    from pydeeplab.kernels import share_source_stamp

    for k, name in enumerate(("a.py", "b.py", "c.py")):
        (tmp_path / name).write_text("x = 1\n")
        os.utime(tmp_path / name, ns=(10**18, 10**18 + k * 10**9))
    (tmp_path / "notes.txt").write_text("not a source\n")
    os.utime(tmp_path / "notes.txt", ns=(10**18, 10**18))
    share_source_stamp(tmp_path)
    assert {(tmp_path / n).stat().st_mtime_ns for n in ("a.py", "b.py", "c.py")} == {10**18 + 2 * 10**9}
    assert (tmp_path / "notes.txt").stat().st_mtime_ns == 10**18
    assert len({f.stat().st_mtime_ns for f in Path(kernels.__file__).parent.glob("*.py")}) == 1
