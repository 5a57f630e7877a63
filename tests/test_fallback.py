"""backend="auto": Numba where it loads, else the NumPy backend with one warning (issue 16).

The real-model tests here run pydeeplab in a subprocess where Numba cannot be imported
(``tests/no_numba/sitecustomize.py`` on PYTHONPATH), as on a machine without Numba
wheels, and hold what it computes with its default settings against the Numba backend of
this process (itself held bit-exact / within the float contract to LiteRT by
test_real_models.py) and, for the float model, against LiteRT directly.
"""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import pydeeplab
from pydeeplab import backends
from pydeeplab.backends import NumbaStatus, NumbaUnavailableWarning, describe_backend, resolve_backend
from pydeeplab.errors import BackendUnavailableError
from pydeeplab.verification import make_inputs

BLOCKER = Path(__file__).resolve().parent / "no_numba"
FLOAT = "deeplabv3_257_mv_gpu"
QUANT = ["deeplabv3_mnv2_pascal_quant", "deeplabv3_mnv2_dm05_pascal_quant", "deeplabv3_mnv2_ade20k_uint8"]
#: Shared DeepLab models pydeeplab runs once other branches land (constant folding of float16
#: weights, MLPerf's ResizeArgmax): covered here as soon as the Numba backend can plan them.
LATER = ["mobilenetv2_dm05_coco_fp16", "mobile_segmenter_r3_quant"]
IMAGE = "bird_segmentation.bmp"


def _without_numba(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python args...`` with Numba unimportable; returns the finished process (text output)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(BLOCKER), os.environ.get("PYTHONPATH", "")]))
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def _warnings_in(stderr: str) -> int:
    """How many fallback warnings a process printed (the CLI prints them without the category name)."""
    return stderr.count("falls back to its NumPy backend")


# --------------------------------------------------------------------------- the decision, in process


@pytest.fixture
def numba_missing(monkeypatch):
    """This process believes Numba cannot load (and has not warned yet)."""
    monkeypatch.setattr(backends, "_status", NumbaStatus(False, None, "Numba cannot be imported (test)"))
    monkeypatch.setattr(backends, "_warned", False)


def test_auto_takes_numba_when_it_loads():
    assert backends.numba_status().available
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_backend("auto") == "numba" == resolve_backend("numba")
        assert resolve_backend("numpy") == "numpy"
    assert describe_backend().startswith("numba (Numba ")


def test_auto_falls_back_with_one_warning(numba_missing):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert [resolve_backend() for _ in range(3)] == ["numpy"] * 3
        assert resolve_backend("numpy") == "numpy"
    assert [w.category for w in caught] == [NumbaUnavailableWarning]
    text = str(caught[0].message)
    assert "Numba cannot be imported (test)" in text  # why
    assert "slower" in text  # the speed to expect
    assert "pip install numba" in text  # how to fix it
    assert describe_backend().startswith("numpy (fallback: Numba cannot be imported (test)")


def test_explicit_numba_fails_clearly(numba_missing):
    with pytest.raises(BackendUnavailableError, match=r"backend='numba'.*cannot be imported.*pip install numba"):
        resolve_backend("numba")
    with pytest.raises(ImportError):  # what code written against a missing package catches
        resolve_backend("numba")


def test_unknown_backend_is_a_value_error():
    with pytest.raises(ValueError, match="unknown backend 'cuda': choose one of auto, numba, numpy"):
        resolve_backend("cuda")


def test_interpreter_reports_the_backend_chosen(model_path, numba_missing):
    with pytest.warns(NumbaUnavailableWarning):
        it = pydeeplab.Interpreter(model_path=model_path(FLOAT))
    assert it.backend == "numpy"


# --------------------------------------------------------------------------- real models, Numba blocked

_RUN_BLOCKED = """
import sys, warnings
import numpy as np
import pydeeplab
from pydeeplab.verification import make_inputs

assert "numba" not in sys.modules
try:
    import numba  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("the blocker did not block numba")
out = {}
for path in sys.argv[2:]:
    it = pydeeplab.Interpreter(model_path=path)  # the defaults: backend="auto"
    assert it.backend == "numpy", it.backend
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), make_inputs(it.model.main, sys.argv[1])):
        it.set_tensor(d["index"], x)
    it.invoke()
    out[path] = it.get_tensor(it.get_output_details()[0]["index"])
np.savez(sys.stdout.buffer, *[out[p] for p in sys.argv[2:]])
assert "numba" not in sys.modules
"""


@pytest.fixture(scope="module")
def blocked_outputs(model_path, image_path):
    """{model name: output} of every real DeepLab model run with Numba unimportable."""
    import io

    names = [FLOAT, *QUANT, *(n for n in LATER if _cannot_run(model_path(n)) is None)]
    paths = [str(model_path(n)) for n in names]
    proc = subprocess.run(
        [sys.executable, "-c", _RUN_BLOCKED, str(image_path(IMAGE)), *paths],
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(BLOCKER), os.environ.get("PYTHONPATH", "")])),
        capture_output=True, timeout=900)
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, stderr
    arrays = np.load(io.BytesIO(proc.stdout))
    return {n: arrays[f"arr_{i}"] for i, n in enumerate(names)}, stderr


def _cannot_run(path: Path) -> str | None:
    """Why pydeeplab cannot plan this model (None when it can)."""
    try:
        pydeeplab.Interpreter(model_path=path, backend="numba").allocate_tensors()
    except pydeeplab.ModelError as exc:
        return str(exc)
    return None


def _numba_output(path: Path, image: Path) -> np.ndarray:
    it = pydeeplab.Interpreter(model_path=path, backend="numba")
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), make_inputs(it.model.main, image)):
        it.set_tensor(d["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def test_blocked_run_warns_once(blocked_outputs):
    _, stderr = blocked_outputs
    assert _warnings_in(stderr) == 1 and stderr.count("NumbaUnavailableWarning") == 1, stderr
    assert "pip install numba" in stderr


def test_blocked_float_model_within_the_contract(blocked_outputs, model_path, image_path):
    from ai_edge_litert.interpreter import Interpreter

    ours = blocked_outputs[0][FLOAT]
    path = model_path(FLOAT)
    lite = Interpreter(model_path=str(path), num_threads=1)
    lite.allocate_tensors()
    lite.set_tensor(lite.get_input_details()[0]["index"], make_inputs(pydeeplab.load_model(path).main,
                                                                      image_path(IMAGE))[0])
    lite.invoke()
    theirs = lite.get_tensor(lite.get_output_details()[0]["index"])
    assert ours.shape == theirs.shape == (1, 257, 257, 21)
    assert np.abs(ours - theirs).max() <= 1e-4
    assert np.mean(ours.argmax(-1) == theirs.argmax(-1)) >= 0.9999
    assert np.abs(ours - _numba_output(path, image_path(IMAGE))).max() <= 1e-4


@pytest.mark.parametrize("name", QUANT)
def test_blocked_quantized_models_bit_exact(blocked_outputs, model_path, image_path, name):
    ours = blocked_outputs[0][name]
    expected = _numba_output(model_path(name), image_path(IMAGE))
    assert ours.dtype == expected.dtype and ours.shape == expected.shape
    assert np.array_equal(ours, expected)
    assert len(np.unique(ours)) > 1  # a real segmentation, not a constant map


@pytest.mark.parametrize("name", LATER)
def test_blocked_later_models_match_numba(blocked_outputs, model_path, image_path, name):
    reason = _cannot_run(model_path(name))
    if reason is not None:
        pytest.xfail(f"pydeeplab cannot run {name} on this branch yet: {reason[:200]}")
    ours = blocked_outputs[0][name]
    expected = _numba_output(model_path(name), image_path(IMAGE))
    assert ours.dtype == expected.dtype and ours.shape == expected.shape
    if ours.dtype.kind == "f":
        assert np.abs(ours - expected).max() <= 1e-4 * (1 + np.abs(expected).max())
    else:
        assert np.array_equal(ours, expected)


def test_blocked_cli_segments_an_image(tmp_path, model_path, image_path):
    from PIL import Image

    model, image = model_path(FLOAT), image_path("cat.bmp")
    proc = _without_numba(["-m", "pydeeplab.cli", "segment", str(image), "--model", str(model),
                           "--out", str(tmp_path / "blocked"), "-q"])
    assert proc.returncode == 0, proc.stderr
    assert _warnings_in(proc.stderr) == 1, proc.stderr
    assert proc.stderr.startswith("pydeeplab segment: warning: pydeeplab falls back"), proc.stderr
    blocked = np.asarray(Image.open(tmp_path / "blocked" / "cat_labels.png"))

    from pydeeplab.cli import main

    assert main(["segment", str(image), "--model", str(model), "--out", str(tmp_path / "numba"), "-q",
                 "--backend", "numba"]) == 0
    with_numba = np.asarray(Image.open(tmp_path / "numba" / "cat_labels.png"))
    assert blocked.shape == with_numba.shape == (341, 512)
    assert np.mean(blocked == with_numba) >= 0.9999
    assert 8 in blocked  # the cat


def test_blocked_cli_says_which_backend_and_refuses_numba(model_path, image_path, tmp_path):
    proc = _without_numba(["-m", "pydeeplab.cli", "--version"])
    assert proc.returncode == 0 and "backend: numpy (fallback: Numba cannot be imported" in proc.stdout
    assert _warnings_in(proc.stderr) == 0  # --version reports, it does not warn
    proc = _without_numba(["-m", "pydeeplab.cli", "inspect", str(model_path(FLOAT))])
    assert proc.returncode == 0 and "backend: numpy (fallback:" in proc.stdout
    proc = _without_numba(["-m", "pydeeplab.cli", "segment", str(image_path("cat.bmp")), "--model",
                           str(model_path(FLOAT)), "--out", str(tmp_path), "--backend", "numba"])
    assert proc.returncode == 2
    assert "backend='numba' was asked for but Numba cannot be imported" in proc.stderr
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- the NumPy backend's memory


@pytest.mark.parametrize("depthwise", [False, True])
def test_numpy_convolutions_work_in_bounded_blocks(depthwise):
    """The quantized reference convolutions keep their float64 temporaries to blocks of output
    rows: on a 257x257x96 uint8 input (51 MB as a whole-image float64 array, which the reference
    allocated before, with its padded copy and im2col on top) they stay within a dozen block-sized
    arrays (the output stage's int64 temporaries included)."""
    import tracemalloc

    from pydeeplab.reference import conv as reference

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (1, 257, 257, 96), dtype=np.uint8)
    cout = 96 if depthwise else 24
    shape = (1, 3, 3, 96) if depthwise else (24, 3, 3, 96)
    weights = rng.integers(0, 256, shape, dtype=np.uint8)
    stage = reference.QuantizedStage(input_zero_point=128, weight_zero_point=120,
                                     multiplier=np.full(cout, 1 << 30, np.int32), shift=np.full(cout, -8, np.int32),
                                     output_zero_point=3, act_min=0, act_max=255)
    out = np.empty((1, 129, 129, cout), np.uint8)
    fn = reference.depthwise_conv_2d if depthwise else reference.conv_2d
    tracemalloc.start()
    try:
        fn(x, weights, None, out, (2, 2), (1, 1), (0, 0), stage)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 * reference.BLOCK_ELEMENTS * 8, f"{peak / 2**20:.1f} MB"
    # And the numbers: output pixel (5, 7), written out as TFLite's loop would compute it.
    xs = x[0, 10:13, 14:17].astype(np.int64) - 128
    ws = weights.astype(np.int64) - 120
    acc = (xs * ws[0]).sum(axis=(0, 1)) if depthwise else np.einsum("ijc,oijc->o", xs, ws)
    from pydeeplab.reference.fixedpoint import multiply_by_quantized_multiplier, wrap_int32

    expected = np.clip(multiply_by_quantized_multiplier(wrap_int32(acc), stage.multiplier, stage.shift) + 3, 0, 255)
    assert np.array_equal(out[0, 5, 7], expected)


def test_version_says_which_backend_runs(capsys):
    from pydeeplab.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"pydeeplab {pydeeplab.__version__}\nbackend: numba (Numba ")
