"""The benchmark harness (tools/bench.py) on a tiny synthesized model: structure, not timings."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# tools/ is not an installed package: import the harness from the repository's tools folder.
TOOLS = Path(__file__).resolve().parent.parent / "tools"
sys.path.insert(0, str(TOOLS))

import bench  # noqa: E402
from pydeeplab.tflite.options import AddOptions, Conv2DOptions  # noqa: E402
from pydeeplab.tflite.schema import Activation, BuiltinOperator, Padding, TensorType  # noqa: E402
from pydeeplab.tflite.writer import ModelBuilder  # noqa: E402


def tiny_model(path: Path) -> Path:
    """CONV_2D 3x3 (RELU6) then ADD of the input's projection: two operators, float32 [1,12,12,3]."""
    rng = np.random.default_rng(0)
    b = ModelBuilder(description="bench smoke test")
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 12, 12, 3))
    w = b.add_constant("w", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    bias = b.add_constant("b", rng.standard_normal(4).astype(np.float32))
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 12, 12, 4))
    b.add_operator(BuiltinOperator.CONV_2D, [x, w, bias], [y],
                   Conv2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1,
                                 fused_activation_function=Activation.RELU6))
    c = b.add_constant("c", rng.standard_normal((1, 1, 1, 4)).astype(np.float32))
    z = b.add_tensor("z", TensorType.FLOAT32, (1, 12, 12, 4))
    b.add_operator(BuiltinOperator.ADD, [y, c], [z], AddOptions())
    b.set_inputs([x])
    b.set_outputs([z])
    path.write_bytes(b.finish())
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("bench") / "tiny.tflite")


def test_latency_and_profile_structure(model, tmp_path):
    report = bench.run_bench([model], runtimes=("numba", "numpy", "builtin", "ref", "onnxruntime"), threads=(1,),
                             repeat=1, warmup=0, budget=0.0, pause=0.0, image=None,
                             sections=("latency", "profile"), top=2, onnx_cache=tmp_path / "onnx",
                             onnx_python=str(tmp_path / "no-such-python"))
    assert report["models"] == [{"model": "tiny", "path": str(model), "inputs": ["float32[1, 12, 12, 3]"],
                                 "macs": 12 * 12 * 4 * 27, "operators": 2}]
    rows = {r["runtime"]: r for r in report["latency"]}
    assert set(rows) == {"numba", "numpy", "builtin", "ref", "onnxruntime"}
    for rt in ("numba", "numpy", "builtin", "ref"):
        r = rows[rt]
        assert r["model"] == "tiny" and r["threads"] == 1 and r["samples"] == 1
        assert 0 < r["min_ms"] <= r["median_ms"] <= r["max_ms"]
        assert r["check"]["against"] == "ref"
        assert r["check"]["max_abs_diff"] <= 1e-4  # every runtime computed the same model
    # No converter can run with a Python that does not exist: reported, not fatal.
    assert "error" in rows["onnxruntime"] or "median_ms" in rows["onnxruntime"]

    profiles = {p["backend"]: p for p in report["profile"]}
    assert set(profiles) == {"numba", "numpy"}
    for p in profiles.values():
        assert p["runs"] == 1 and p["threads"] == 1
        assert sorted(t["op"] for t in p["by_type"]) == ["ADD", "CONV_2D"]
        assert sum(t["count"] for t in p["by_type"]) == 2
        assert abs(sum(t["share"] for t in p["by_type"]) - 1) < 1e-9
        conv = next(t for t in p["top"] if t["op"] == "CONV_2D")
        assert conv["kernel"] == "3x3" and conv["in"] == [1, 12, 12, 3] and conv["out"] == [1, 12, 12, 4]
        assert conv["macs"] == 12 * 12 * 4 * 27
        assert len(p["top"]) == 2

    goals = report["goals"]
    assert [g["goal"] for g in goals[:5]] == ["<= 1.25x (stretch <= 1.0x)", "<= 0.35x", "<= 1.0x", "<= 2.0x", "<= 3x"]
    assert all(g["measured"] is None and g["met"] is None for g in goals[:5])  # the real models were not run
    two = next(g for g in goals if g["what"] == "tiny, numba 2 threads vs 1")
    assert two["measured"] is None  # only 1 thread was timed

    text = bench.format_report(report)
    for needle in ("## tiny:", "| pydeeplab numba", "| LiteRT reference kernels", "## Profile: tiny, numba backend",
                   "## Goals", "not measured"):
        assert needle in text
    json.dumps(report)  # JSON-able as is


def test_main_json(model, capsys):
    status = bench.main(["--models", str(model), "--backends", "numpy,builtin", "--threads", "1", "--repeat", "2",
                         "--warmup", "0", "--pause", "0", "--random-input", "--sections", "latency", "--json",
                         "--quiet"])
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert report["command"].startswith("python tools/bench.py --models")
    assert report["config"]["image"] == "random (seed 0)"
    assert [(r["runtime"], r["samples"]) for r in report["latency"]] == [("numpy", 2), ("builtin", 2)]
    assert "memory" not in report and "cold" not in report


def test_main_rejects_bad_arguments(model, capsys):
    assert bench.main(["--models", str(model), "--backends", "tensorflow", "--quiet"]) == 2
    assert "unknown runtime" in capsys.readouterr().err
    assert bench.main(["--models", "no-such-model", "--quiet"]) == 2


def test_memory_and_cold_start_in_fresh_processes(model, tmp_path):
    inputs = tmp_path / "tiny.npz"
    np.savez(inputs, input0=np.zeros((1, 12, 12, 3), np.float32))
    memory = bench.bench_memory([model], {"tiny": inputs}, ["numpy", "builtin"])
    baselines = [r for r in memory if r["model"] is None]
    assert len(baselines) == 3 and all(r["peak_mb"] > 5 for r in baselines)
    peaks = {r["runtime"]: r["peak_mb"] for r in memory if r["model"] == "tiny"}
    assert set(peaks) == {"numpy", "builtin"} and all(v > 5 for v in peaks.values())

    cold = bench.bench_cold([model], {"tiny": inputs}, ["xnnpack"], repeat=1)
    (row,) = cold
    assert row["runs"] == 1 and row["numba_cache"] is None
    assert 0 < row["import_s"] < row["total_s"] and row["first_invoke_s"] >= 0
    parts = row["python_start_s"] + row["import_s"] + row["load_s"] + row["first_invoke_s"]
    assert abs(parts - row["total_s"]) < 1e-6


def test_latency_without_threadpoolctl_runs_each_thread_count_in_a_child(model):
    machine = {}
    rows = bench._latency_in_children([model], ["numpy"], [1], ["--repeat", "1", "--warmup", "0", "--pause", "0",
                                                                "--random-input"], machine, None)
    assert [(r["runtime"], r["threads"], r["samples"]) for r in rows] == [("numpy", 1, 1)]


def test_goals_from_a_report():
    lat = [{"model": bench.FLOAT_MODEL, "runtime": rt, "threads": n, "median_ms": ms, "min_ms": ms / 2}
           for rt, n, ms in [("numba", 1, 30.0), ("numba", 2, 15.0), ("xnnpack", 1, 26.0), ("builtin", 1, 130.0),
                             ("numpy", 1, 100.0)]]
    report = {"latency": lat, "cold": [{"model": bench.FLOAT_MODEL, "runtime": "numba", "numba_cache": "warm",
                                        "total_s": 1.2}],
              "memory": [{"model": bench.FLOAT_MODEL, "runtime": "numba", "peak_mb": 200.0},
                         {"model": bench.FLOAT_MODEL, "runtime": "xnnpack", "peak_mb": 100.0}]}
    goals = {(g["what"], g["against"]): g for g in bench.evaluate_goals(report)}
    f = bench.FLOAT_MODEL
    g = goals[(f"{f} (float), numba", bench.LABELS["xnnpack"])]
    assert g["measured"] == pytest.approx(30 / 26) and g["met"] and not g["stretch_met"]
    assert g["of_mins"] == pytest.approx(30 / 26)
    g = goals[(f"{f} (float), numba", bench.LABELS["builtin"])]
    assert g["measured"] == pytest.approx(30 / 130) and g["met"]
    assert goals[(f"{f} (float), numpy backend", "pydeeplab numba")]["met"] is False  # 3.33x
    assert goals[(f"{f}, numba 2 threads vs 1", "itself")]["measured"] == pytest.approx(2.0)
    assert goals[(f"{f}, cold start, warm cache", "-")]["met"] is True
    assert goals[(f"{f}, peak memory, numba", bench.LABELS["xnnpack"])]["met"] is False
    assert goals[(f"{bench.QUANT_MODEL} (uint8), numba", bench.LABELS["builtin"])]["met"] is None


def test_find_models(tmp_path):
    for name in ("alpha_float", "alpha_quant", "beta"):
        (tmp_path / f"{name}.tflite").write_bytes(b"")
    stems = lambda names: [p.stem for p in bench.find_models(names, tmp_path)]  # noqa: E731
    assert stems(None) == ["alpha_float", "alpha_quant", "beta"]
    assert stems(["beta", "quant"]) == ["beta", "alpha_quant"]
    with pytest.raises(ValueError, match="ambiguous"):
        bench.find_models(["alpha"], tmp_path)
    with pytest.raises(FileNotFoundError, match="no model 'gamma'"):
        bench.find_models(["gamma"], tmp_path)


def test_runs_as_a_script_from_the_checkout_only(model):
    """The harness is a tool of the checkout, not part of the installed package."""
    done = subprocess.run([sys.executable, str(TOOLS / "bench.py"), "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "python tools/bench.py --models" in done.stdout
    import importlib.util

    assert importlib.util.find_spec("pydeeplab.bench") is None
