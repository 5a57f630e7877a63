"""pydeeplab report: DeepLab structure recognition, the HTML page, and headless Chromium rendering it."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pydeeplab
from pydeeplab.cli import main
from pydeeplab.report import SECTIONS, recognise
from pydeeplab.report.structure import output_stride
from pydeeplab.tflite.reader import load_model, read_model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import synth  # noqa: E402


@pytest.fixture(scope="module")
def family():
    """The float synthesized family (no LiteRT needed to build them), read back."""
    return {name: read_model(build("float32")) for name, build in synth.FAMILY.items()}


def test_output_stride_reads_deeplab_sizes():
    assert output_stride(513, 33) == 16 and output_stride(512, 32) == 16 and output_stride(129, 9) == 16
    assert output_stride(257, 33) == 8 and output_stride(512, 31) == 16 and output_stride(48, 2) == 24


def test_v1_receptive_field_by_hand(family):
    """Worked by hand: 3x3/2, 3x3/2, dw3x3/2, 1x1, 3x3 rate 2, dw3x3 rate 4, 1x1, fc6 3x3 rate 4, logits 1x1:
    rf = 3, 3+2*2, 7+2*4, 15, 15+2*2*8, 47+2*4*8, 111, 111+2*4*8, 175; the atrous ones at output stride 8."""
    st = recognise(family["v1_dilated"].main)
    rf = [st.geometry[k].receptive_field for k in range(9)]
    assert rf == [3, 7, 15, 15, 47, 111, 111, 175, 175]
    assert [st.geometry[k].output_stride for k in range(9)] == [2, 4, 8, 8, 8, 8, 8, 8, 8]
    assert st.variant.startswith("DeepLab v1") and st.atrous_start == 4 and st.atrous_rates == [2, 4]
    assert [s.output_stride for s in st.stages] == [2, 4, 8] and st.stages[-1].rates == [2, 4]
    assert st.logits == 8 and st.final == [9] and not st.aspp_branches


def test_space_to_batch_reads_as_the_same_atrous_network(family):
    dilated, s2b = recognise(family["v1_dilated"].main), recognise(family["v1_space_to_batch"].main)
    assert s2b.atrous_rates == dilated.atrous_rates == [2, 4]
    assert s2b.atrous_encoding == "SPACE_TO_BATCH_ND/BATCH_TO_SPACE_ND" and dilated.atrous_encoding == "dilation"
    assert s2b.geometry[s2b.logits].receptive_field == dilated.geometry[dilated.logits].receptive_field == 175
    assert s2b.geometry[s2b.logits].output_stride == 8


def test_aspp_v2_v3_and_decoder(family):
    v2 = recognise(family["v2"].main)
    assert v2.variant.startswith("DeepLab v2")
    assert [b.kind for b in v2.aspp_branches] == [f"atrous 3x3 rate {r}" for r in (6, 12, 18, 24)]
    assert v2.logits == v2.aspp_merge  # the summed branches are the class scores
    for name in ("v3_mean", "v3_avgpool"):
        v3 = recognise(family[name].main)
        assert v3.variant.startswith("DeepLab v3 ") and v3.output_stride == 8
        assert sorted(b.kind for b in v3.aspp_branches) == ["1x1", "atrous 3x3 rate 12", "atrous 3x3 rate 18",
                                                           "atrous 3x3 rate 6", "image pooling"]
        pool = next(b for b in v3.aspp_branches if b.kind == "image pooling")
        assert [family[name].main.operators[k].name for k in pool.ops] == [
            "MEAN" if name == "v3_mean" else "AVERAGE_POOL_2D", "CONV_2D", "RESIZE_BILINEAR"]
        assert v3.geometry[pool.ops[0]].receptive_field == 97  # image pooling sees the whole image
        assert len(v3.aspp_projection) == 1 and not v3.decoder
    plus = recognise(family["v3plus"].main)
    assert plus.variant.startswith("DeepLab v3+") and plus.output_stride == 16
    assert plus.decoder_low_level.kind == "low-level features at output stride 4"
    g = family["v3plus"].main
    assert [g.operators[k].name for k in plus.decoder] == ["CONV_2D", "RESIZE_BILINEAR", "CONCATENATION", "CONV_2D",
                                                          "CONV_2D"]
    assert plus.blocks[plus.logits] == "logits" and plus.blocks[plus.final[0]].startswith("final")


@pytest.mark.parametrize("name, variant, stride, rates, encoding", [
    ("deeplabv3_257_mv_gpu", "DeepLab v3 ", 8, [2, 4], "dilation"),
    ("deeplabv3_mnv2_pascal_quant", "DeepLab v3 ", 16, [2], "dilation"),
    ("mobilenetv2_dm05_coco_fp16", "DeepLab v3 ", 8, [2, 4], "SPACE_TO_BATCH_ND/BATCH_TO_SPACE_ND"),
    ("deeplabv3_mnv2_ade20k_uint8", "DeepLab v3+", 16, [2], "dilation"),
])
def test_real_models_structure(model_path, name, variant, stride, rates, encoding):
    st = recognise(load_model(model_path(name)).main)
    assert st.variant.startswith(variant) and st.output_stride == stride
    assert st.atrous_rates == rates and st.atrous_encoding == encoding
    assert sorted(b.kind for b in st.aspp_branches) == ["1x1", "image pooling"]
    assert st.geometry[st.logits].receptive_field >= st.input_size / 2


@pytest.mark.parametrize("name", ["mobile_segmenter_r3_quant", "selfie_segmenter", "deeplabv3_mnv2_dm05_pascal_quant"])
def test_every_block_name_covers_every_operator(model_path, name):
    """Models that are not (or not quite) DeepLab still get a reading: every operator in one block."""
    g = load_model(model_path(name)).main
    st = recognise(g)
    assert set(st.blocks) == {op.index for op in g.operators}
    assert st.logits is not None and st.final and st.stages
    assert all(geo.receptive_field is None or geo.receptive_field >= 1 for geo in st.geometry)


def _write_image(path: Path, size: int) -> Path:
    Image.fromarray(synth.random_image(size, 7)[0]).save(path)
    return path


@pytest.fixture(scope="module")
def small_report(tmp_path_factory):
    """A report of the synthesized v3+ float model on a synthesized image, written by the CLI."""
    d = tmp_path_factory.mktemp("report")
    model = d / "v3plus.tflite"
    model.write_bytes(synth.deeplab_v3plus(dtype="float32"))
    image = _write_image(d / "image.png", 129)
    out = d / "report.html"
    assert main(["report", str(model), "--image", str(image), "--out", str(out), "-q"]) == 0
    return out


def test_report_is_self_contained_with_every_section(small_report):
    page = small_report.read_text("utf-8")
    for sid, title in SECTIONS:
        assert f'<section id="{sid}"><h2>{title}</h2>' in page
    assert not re.search(r'(src|href)="(?!data:|#)', page), "every resource is inline"
    assert "DeepLab v3+ (ASPP with image pooling, decoder)" in page and "atrous 3x3 rate 18" in page
    assert page.count('src="data:image/png;base64,') >= 3 + 10  # input, class map, overlay; thumbnails
    assert "<svg" in page and len(page) < 5_000_000


def test_report_function_and_errors(tmp_path):
    model = tmp_path / "v1.tflite"
    model.write_bytes(synth.deeplab_v1(dtype="float32"))
    html = pydeeplab.report(model, None, tmp_path / "r.html", litert=False, max_thumbnail_ops=2)
    assert (tmp_path / "r.html").read_text("utf-8") == html
    assert "no image given" in html and "not run (--no-litert)" in html and "a float model" in html
    assert html.count("data:image/png") == 2 * 4  # two operators: channel mean + three channels each
    assert main(["report", str(tmp_path / "missing.tflite"), "--out", str(tmp_path / "x.html")]) == 2
    assert not (tmp_path / "x.html").exists()


def test_report_quantized_real_model(model_path, image_path, tmp_path):
    """The uint8 dm05 model: LiteRT bit-identical, quantization error present, labels mostly agree."""
    pytest.importorskip("ai_edge_litert")
    out = tmp_path / "dm05.html"
    data = pydeeplab.report.gather(model_path("deeplabv3_mnv2_dm05_pascal_quant"),
                                   image_path("bird_segmentation.bmp"), max_thumbnail_ops=8)
    c = data.comparison
    assert c.litert_ok and len(c.litert_isolated) == len(data.ops)
    assert len(c.quant_isolated) == len(data.ops) and c.quant_label_agreement > 0.9
    convs = [r for r in c.quant_isolated if r["op"] == "CONV_2D"]
    assert all(0.05 < r["rmse_over_scale"] < 5 for r in convs)
    assert "bird" in [name for name, _, _ in data.segmentation.legend]
    out.write_text(pydeeplab.report.render(data), "utf-8")
    page = out.read_text("utf-8")
    assert "Final labels: the integer model and its float shadow agree" in page
    assert "every operator within the numerical contract" in page


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        message = "chromium is not installed (Debian: apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return exe


def run_chromium(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium on a local file, fresh profile, no network side traffic, console to stderr."""
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           "--enable-logging=stderr", "--v=0", *args, page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def test_chromium_renders_the_report_without_console_errors(small_report, tmp_path):
    result = run_chromium(small_report, tmp_path, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    dom = result.stdout
    assert 'data-report-ready="1"' in dom  # the page's script ran to its end
    for sid, _ in SECTIONS:
        assert f'id="{sid}"' in dom
    assert dom.count("<tr") > 20 and "<svg" in dom


def test_chromium_check_sees_console_errors(tmp_path):
    """The check above can fail: a page with a script error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
                   "<script>undefinedFunction();</script></body></html>")
    result = run_chromium(bad, tmp_path, "--dump-dom")
    assert any(":CONSOLE" in line and "undefinedFunction" in line for line in result.stderr.splitlines())


def test_screenshot_in_docs_is_a_report():
    """docs/report.png (linked from the README's study section) is a real screenshot of a report."""
    shot = Path(__file__).resolve().parent.parent / "docs" / "figures" / "report.png"
    im = Image.open(shot)
    assert im.width >= 1000 and im.height >= 1000
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    assert "docs/figures/report.png" in readme and "pydeeplab report" in readme
    assert np.asarray(im.convert("L")).std() > 20  # not a blank page


def test_report_of_a_hybrid_model_says_so(tmp_path):
    """A dynamic-range model (tools/quantize.py --dynamic-range): float activations, int8 weights. The
    report names its arithmetic hybrid and compares it with its float shadow (dequantized weights)."""
    import importlib.util

    from oracle import require_data

    # tools/quantize.py by its path (another test may have put a stand-in "quantize" on sys.path).
    spec = importlib.util.spec_from_file_location("pydeeplab_tools_quantize",
                                                  Path(__file__).resolve().parent.parent / "tools" / "quantize.py")
    quantize = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quantize)
    src = require_data("models/deeplabv3_257_mv_gpu.tflite")
    model = quantize.quantize_dynamic_range(src, tmp_path / "dr.tflite")
    html = pydeeplab.report(model, require_data("images/cat.bmp"), tmp_path / "dr.html", litert=False,
                            max_thumbnail_ops=1)
    assert "hybrid: float32 activations, int8 weights (41 operators quantize their input at every run" in html
    assert "Final labels: the hybrid model and its float shadow agree" in html
