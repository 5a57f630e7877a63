"""The DeepLab family as whole models (tools/synth.py), LiteRT against pydeeplab, cascaded.

v1 (atrous backbone, output stride 8; dilated and space-to-batch encodings), v2 (ASPP of
four atrous classifiers, summed), v3 (ASPP with image-level pooling, MEAN and
AVERAGE_POOL_2D variants), v3+ (v3 encoder + decoder), each in float32 and uint8.

float32: logits within 1e-4 * (1 + max|ref|) of LiteRT's default kernels, argmax equal
on >= 99.99% of pixels. uint8: against LiteRT's reference kernels, labels (ARG_MAX)
identical and the uint8 logits identical. Both backends. The structure each model shows
in ``pydeeplab inspect`` is the one docs/deeplab.md describes.
"""

import functools
import sys
from pathlib import Path

import numpy as np
import pytest
from oracle import compare, run_litert

# tools/ is not an installed package: import the model builders from the repository's tools folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import synth  # noqa: E402

import pydeeplab  # noqa: E402
from pydeeplab.summary import summarize  # noqa: E402

NAMES = list(synth.FAMILY)
IMAGE_SEED = 7  # not one of the calibration images


@functools.lru_cache(maxsize=None)
def model(name: str, dtype: str) -> bytes:
    return synth.FAMILY[name](dtype)


def feed_for(data: bytes, dtype: str) -> np.ndarray:
    size = pydeeplab.read_model(data).main.tensors[0].shape[1]
    image = synth.random_image(size, IMAGE_SEED)
    return image if dtype == "uint8" else synth.float_input(image)


def run_ours(data: bytes, feed: np.ndarray, backend: str) -> list[np.ndarray]:
    interp = pydeeplab.Interpreter(model_content=data, backend=backend)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], feed)
    interp.invoke()
    return [interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("name", NAMES)
def test_float_model(name, backend):
    data = model(name, "float32")
    feed = feed_for(data, "float32")
    (ref,) = run_litert(data, [feed], "default")
    (ours,) = run_ours(data, feed, backend)
    compare(ours, ref, f"{name} float32 logits [{backend}]", atol_scale=1e-4)
    agree = float(np.mean(ours.argmax(-1) == ref.argmax(-1)))
    assert agree >= 0.9999, f"argmax agrees on {agree:.4%} of pixels"


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("name", NAMES)
def test_uint8_model(name, backend):
    data = model(name, "uint8")
    feed = feed_for(data, "uint8")
    ref_logits, ref_labels = run_litert(data, [feed], "ref")
    logits, labels = run_ours(data, feed, backend)
    assert labels.dtype == np.int64 and labels.shape == ref_labels.shape
    n_diff = int(np.count_nonzero(labels != ref_labels))
    assert n_diff == 0, f"{n_diff} of {labels.size} labels differ from LiteRT"
    compare(logits, ref_logits, f"{name} uint8 logits [{backend}]")


@pytest.mark.parametrize("name", NAMES)
def test_uint8_model_is_a_quantization_of_the_float_one(name):
    """The calibrated uint8 model labels the image like the float model (a sanity check of
    synth's quantization, in LiteRT alone): at least 90% of pixels agree."""
    (flogits,) = run_litert(model(name, "float32"), [feed_for(model(name, "float32"), "float32")], "ref")
    _, labels = run_litert(model(name, "uint8"), [feed_for(model(name, "uint8"), "uint8")], "ref")
    assert float(np.mean(flogits.argmax(-1) == labels)) >= 0.9


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_atrous_encodings_agree(dtype):
    """The dilated and the space-to-batch encodings of v1 compute the same function."""
    a, b = model("v1_dilated", dtype), model("v1_space_to_batch", dtype)
    feed = feed_for(a, dtype)
    ra, rb = run_litert(a, [feed], "ref"), run_litert(b, [feed], "ref")
    for x, y in zip(ra, rb):
        compare(x, y, f"v1 {dtype}: dilated vs space_to_batch", atol_scale=1e-5)


def _ops(name: str, dtype: str = "float32") -> list[dict]:
    return summarize(pydeeplab.read_model(model(name, dtype)))["operators"]


def _dilations(ops, op="CONV_2D") -> list[int]:
    return [o["options"]["dilation_h_factor"] for o in ops if o["op"] == op]


def test_structure_v1():
    d = _ops("v1_dilated")
    assert _dilations(d) == [1, 1, 1, 2, 1, 4, 1]
    assert _dilations(d, "DEPTHWISE_CONV_2D") == [1, 4]
    assert [o["outputs"][0][1] for o in d if o["op"] == "CONV_2D"][-1] == 9  # 65 / 8 -> 9
    s = _ops("v1_space_to_batch")
    names = [o["op"] for o in s]
    assert names.count("SPACE_TO_BATCH_ND") == names.count("BATCH_TO_SPACE_ND") == 3
    assert set(_dilations(s) + _dilations(s, "DEPTHWISE_CONV_2D")) == {1}
    i = names.index("SPACE_TO_BATCH_ND")
    assert names[i:i + 3] == ["SPACE_TO_BATCH_ND", "CONV_2D", "BATCH_TO_SPACE_ND"]
    assert s[i + 1]["options"]["padding"] == "VALID"
    assert s[i]["outputs"][0][0] == 4  # rate 2: 2*2 subsampled copies in the batch


def test_structure_v2():
    ops = _ops("v2")
    assert _dilations(ops)[-4:] == [6, 12, 18, 24]
    assert [o["op"] for o in ops][-4:] == ["ADD", "ADD", "ADD", "RESIZE_BILINEAR"]


@pytest.mark.parametrize("pooling,op", [("mean", "MEAN"), ("avgpool", "AVERAGE_POOL_2D")])
def test_structure_v3(pooling, op):
    ops = _ops(f"v3_{pooling}")
    names = [o["op"] for o in ops]
    assert _dilations(ops)[-7:] == [1, 6, 12, 18, 1, 1, 1]  # 1x1, rates, pooled 1x1, projection, logits
    assert names.count(op) == 1 and ops[names.index(op)]["outputs"][0][1:3] == [1, 1]
    cat = ops[names.index("CONCATENATION")]
    assert len(cat["inputs"]) == 5 and cat["options"]["axis"] == 3
    assert names[names.index(op) + 2] == "RESIZE_BILINEAR"
    q = _ops(f"v3_{pooling}", "uint8")
    assert [o["op"] for o in q][-2:] == ["RESIZE_BILINEAR", "ARG_MAX"]


def test_structure_v3plus():
    ops = _ops("v3plus")
    names = [o["op"] for o in ops]
    assert names.count("CONCATENATION") == 2
    dec = names.index("CONCATENATION", names.index("CONCATENATION") + 1)
    up = ops[dec - 1]
    assert up["op"] == "RESIZE_BILINEAR" and up["inputs"][0][1] * 4 - 3 == up["outputs"][0][1]  # 9 -> 33
    assert ops[dec]["outputs"][0][1:3] == [33, 33]  # stride 4 of 129
    assert [o["op"] for o in ops[dec + 1:]] == ["CONV_2D", "CONV_2D", "CONV_2D", "RESIZE_BILINEAR"]


def test_inspect_cli_shows_the_structure(tmp_path, capsys):
    from pydeeplab.cli import main

    path = tmp_path / "v3plus.tflite"
    path.write_bytes(model("v3plus", "uint8"))
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    for text in ("dh=6", "dh=12", "dh=18", "AVERAGE_POOL_2D", "QUANTIZE", "ARG_MAX", "1x9x9x16 2 -> 1x33x33x16"):
        assert text in out, text
