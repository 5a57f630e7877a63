"""pydeeplab verify: records, tolerance, exit status, JSON."""

import json

import numpy as np
import pytest
from oracle import T, quant, single_op_model

from pydeeplab import ops
from pydeeplab.cli import main
from pydeeplab.ops.base import Prepared
from pydeeplab.tflite.options import AddOptions
from pydeeplab.tflite.schema import BuiltinOperator, TensorType
from pydeeplab.verification import compare, verify


def _add_model(tmp_path, dtype=np.float32):
    x = np.zeros((1, 8, 8, 3), dtype)
    q = quant(0.05, 10) if dtype == np.uint8 else None
    model = single_op_model(BuiltinOperator.ADD, [T(x, quant=q), T(x, quant=q)],
                            [T(None, TensorType.UINT8 if dtype == np.uint8 else TensorType.FLOAT32, (1, 8, 8, 3), quant=q)],
                            AddOptions())
    path = tmp_path / "add.tflite"
    path.write_bytes(model)
    return path


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_verify_passes_and_prints_json(tmp_path, capsys, dtype):
    path = _add_model(tmp_path, dtype)
    assert main(["verify", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and len(report["isolated"]) == 1 and len(report["cascaded"]) == 1
    rec = report["isolated"][0]
    assert rec["op"] == "ADD" and rec["shape"] == [1, 8, 8, 3] and rec["max_abs"] == 0


def test_verify_fails_on_a_wrong_operator(tmp_path, capsys, monkeypatch):
    path = _add_model(tmp_path)

    def wrong_add(ctx):
        def run(inputs, outputs):
            outputs[0][...] = inputs[0] + inputs[1] + 1e-3  # off by a little: beyond 1e-5

        return Prepared((ctx.inputs[0].shape,), run)

    monkeypatch.setitem(ops.REGISTRY, BuiltinOperator.ADD, wrong_add)
    assert main(["verify", str(path), "--mode", "isolated"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "isolated: 0 of 1 operators within tolerance" in out
    report = verify(path, modes=("isolated",))
    assert not report.ok and report.isolated[0].max_abs == pytest.approx(1e-3, rel=1e-3)


def test_compare_integer_against_ref_and_builtin():
    ref = np.array([1, 2, 3], np.uint8)
    ours = np.array([1, 3, 3], np.uint8)
    assert compare(ours, ref, rtol=0, against="ref")[3] is False
    assert compare(ours, ref, rtol=0, against="ref", lsb_tolerance=1)[3] is False  # ref: always exact
    max_abs, _, tolerance, ok, count, worst = compare(ours, ref, rtol=0, against="builtin", lsb_tolerance=1)
    assert ok and count == 1 and worst == 1 and max_abs == 1 and tolerance == 1
    assert compare(ours, ref, rtol=0, against="builtin", lsb_tolerance=0)[3] is False
    assert compare(ours + 1, ref, rtol=0, against="builtin", lsb_tolerance=1)[3] is False  # 2 LSB


_ADD = ops.REGISTRY[BuiltinOperator.ADD]


def _off_by(n: int, original=_ADD):
    """The registered ADD, then every 7th output element moved by exactly ``n`` LSB."""

    def prepare(ctx):
        prepared = original(ctx)

        def run(inputs, outputs):
            prepared.run(inputs, outputs)
            flat = outputs[0].reshape(-1)
            some = flat[::7].astype(np.int64)
            flat[::7] = np.where(some >= n, some - n, some + n)

        return Prepared(prepared.output_shapes, run)

    return prepare


def test_verify_against_builtin_fails_beyond_the_lsb_tolerance(tmp_path, capsys, monkeypatch):
    """An integer operator off by 2 fails --against builtin (default 1 LSB); off by 1 passes;
    --tolerance N moves the bound; against ref even 1 LSB fails."""
    path = str(_add_model(tmp_path, np.uint8))
    monkeypatch.setitem(ops.REGISTRY, BuiltinOperator.ADD, _off_by(2))
    assert main(["verify", path, "--against", "builtin"]) == 1
    out = capsys.readouterr().out
    assert "isolated: 0 of 1 operators within tolerance" in out and "1 LSB" in out and "FAIL" in out
    report = verify(path, against="builtin", modes=("isolated",))
    assert not report.ok and report.isolated[0].lsb_max == 2
    assert main(["verify", path, "--against", "builtin", "--tolerance", "2"]) == 0
    capsys.readouterr()
    monkeypatch.setitem(ops.REGISTRY, BuiltinOperator.ADD, _off_by(1))
    assert verify(path, against="builtin", modes=("isolated",)).ok
    assert not verify(path, against="builtin", modes=("isolated",), lsb_tolerance=0).ok
    assert not verify(path, against="ref", modes=("isolated",)).ok
    # Cascaded, integer differences against builtin are reported (they grow along a chain), not judged.
    cascaded = verify(path, against="builtin", modes=("cascaded",)).cascaded[0]
    assert cascaded.ok and cascaded.lsb_max == 1 and cascaded.tolerance == float("inf")


def test_verify_tolerance_is_refused_against_ref(tmp_path, capsys):
    path = str(_add_model(tmp_path, np.uint8))
    assert main(["verify", path, "--tolerance", "1"]) == 2
    assert "against='builtin'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["verify", path, "--against", "builtin", "--tolerance", "-1"])


def test_verify_missing_model(capsys):
    assert main(["verify", "/nonexistent/model.tflite"]) == 2
    assert "No such file" in capsys.readouterr().err


def test_package_level_verify_is_the_function(tmp_path):
    import pydeeplab

    report = pydeeplab.verify(_add_model(tmp_path), modes=("isolated",))
    assert report.ok and report.isolated[0].op == "ADD"
