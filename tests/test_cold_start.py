"""The CLI says, once, that it compiles the Numba kernels on a cold cache, and says nothing on a warm one.

Each run is a fresh process with its own empty ``NUMBA_CACHE_DIR`` (the real cache is
left alone); the model is a tiny synthesized one, so the cold run compiles only a few
small kernels.
"""

import os
import subprocess
import sys

import pytest
from PIL import Image
from test_segment import halves, tiny_logits_model

from pydeeplab.compiling import COMPILING_MESSAGE, compile_notice

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
