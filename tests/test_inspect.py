"""pydeeplab inspect: structure, options and multiply-accumulates of the real models."""

import json

import pytest

from pydeeplab.cli import main

# MACs per image as ../shared/data/README.md states them (in G).
EXPECTED_GMACS = {"deeplabv3_257_mv_gpu": 0.73, "deeplabv3_mnv2_pascal_quant": 2.74,
                  "deeplabv3_mnv2_dm05_pascal_quant": 0.87}


@pytest.mark.parametrize("name", sorted(EXPECTED_GMACS))
def test_inspect_json_totals(model_path, capsys, name):
    assert main(["inspect", str(model_path(name)), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert round(s["totals"]["macs"] / 1e9, 2) == EXPECTED_GMACS[name]
    assert s["totals"]["by_type"]["CONV_2D"] == 38 and s["totals"]["by_type"]["DEPTHWISE_CONV_2D"] == 17
    dilations = {o["options"].get("dilation_h_factor") for o in s["operators"] if o["op"] == "DEPTHWISE_CONV_2D"}
    # The atrous part: the float model dilates by 2 and 4, the quantized ones by 2.
    assert dilations == ({1, 2, 4} if name == "deeplabv3_257_mv_gpu" else {1, 2})


def test_inspect_table(model_path, capsys):
    assert main(["inspect", str(model_path("deeplabv3_257_mv_gpu"))]) == 0
    out = capsys.readouterr().out
    assert "input   183 sub_7  float32 [1, 257, 257, 3]" in out
    assert "AVERAGE_POOL_2D" in out and "dh=4 dw=4" in out
    assert "MACs: 725,849,344 (0.73 G)" in out


def test_inspect_bad_file(tmp_path, capsys):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model at all")
    assert main(["inspect", str(bad)]) == 2
    assert "not a TFLite model" in capsys.readouterr().err
