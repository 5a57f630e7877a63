"""The Segmenter on any segmentation model: every output kind, settings from arguments/metadata/manifest,
confidence masks, the CLI flags, and MLPerf's ADE20K models in evaluate.

Tiny synthesized models have outputs known by construction; the real MLPerf model is held
bit-identical to LiteRT's reference kernels (its class ids), the TF Hub fp16 model to
MediaPipe's ImageSegmenter in test_mediapipe.py.
"""

import json

import numpy as np
import pytest
from oracle import run_litert
from test_metadata import build_metadata, zipped

from pydeeplab import Segmenter
from pydeeplab.cli import main
from pydeeplab.errors import ModelError
from pydeeplab.evaluate import evaluate
from pydeeplab.segment import upsample_bilinear
from pydeeplab.tflite.options import ArgMaxOptions, Conv2DOptions, ReshapeOptions, SoftmaxOptions
from pydeeplab.tflite.schema import BuiltinOperator, Padding, TensorType
from pydeeplab.tflite.writer import ModelBuilder

RED, BLUE = (255, 0, 0), (0, 0, 255)


def foreground_model(size: int = 8, logistic: bool = True, metadata: bytes | None = None) -> bytes:
    """float32 [1,size,size,3] -> CONV_2D 1x1 (score 4 * R', R' = (R - 127.5) / 127.5) [-> LOGISTIC] -> [1,s,s,1].

    Red pixels are foreground (p = sigmoid(4) = 0.98), blue ones background (p = sigmoid(-4)).
    """
    b = ModelBuilder()
    x = b.add_tensor("image", TensorType.FLOAT32, (1, size, size, 3))
    w = np.zeros((1, 1, 1, 3), np.float32)
    w[0, 0, 0, 0] = 4.0
    score = b.add_tensor("score", TensorType.FLOAT32, (1, size, size, 1))
    b.add_operator(BuiltinOperator.CONV_2D, [x, b.add_constant("w", w), b.add_constant("b", np.zeros(1, np.float32))],
                   [score], Conv2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1))
    out = score
    if logistic:
        out = b.add_tensor("p", TensorType.FLOAT32, (1, size, size, 1))
        b.add_operator(BuiltinOperator.LOGISTIC, [score], [out])
    b.set_inputs([x])
    b.set_outputs([out])
    if metadata is not None:
        b.add_metadata("TFLITE_METADATA", metadata)
    return b.finish()


def class_id_model(shape: tuple[int, ...], dtype: TensorType = TensorType.INT32, size: int = 8) -> bytes:
    """uint8 [1,size,size,3] -> ARG_MAX over RGB (red 0, green 1, blue 2) -> class ids reshaped to ``shape``."""
    b = ModelBuilder()
    x = b.add_tensor("image", TensorType.UINT8, (1, size, size, 3))
    ids = b.add_tensor("ids", dtype, (1, size, size))
    b.add_operator(BuiltinOperator.ARG_MAX, [x, b.add_constant("axis", np.array([3], np.int32))], [ids],
                   ArgMaxOptions(output_type=dtype))
    out = ids
    if tuple(shape) != (1, size, size):
        out = b.add_tensor("out", dtype, shape)
        b.add_operator(BuiltinOperator.RESHAPE, [ids, b.add_constant("shape", np.array(shape, np.int32))], [out],
                       ReshapeOptions(new_shape=tuple(shape)))
    b.set_inputs([x])
    b.set_outputs([out])
    return b.finish()


def scores_model(softmax: bool, size: int = 4) -> bytes:
    """float32 [1,size,size,3] -> CONV_2D 1x1 identity (3 classes: R', G', B') [-> SOFTMAX]."""
    b = ModelBuilder()
    x = b.add_tensor("image", TensorType.FLOAT32, (1, size, size, 3))
    w = np.eye(3, dtype=np.float32).reshape(3, 1, 1, 3)
    y = b.add_tensor("logits", TensorType.FLOAT32, (1, size, size, 3))
    b.add_operator(BuiltinOperator.CONV_2D, [x, b.add_constant("w", w), b.add_constant("b", np.zeros(3, np.float32))],
                   [y], Conv2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1))
    out = y
    if softmax:
        out = b.add_tensor("probs", TensorType.FLOAT32, (1, size, size, 3))
        b.add_operator(BuiltinOperator.SOFTMAX, [y], [out], SoftmaxOptions(beta=1.0))
    b.set_inputs([x])
    b.set_outputs([out])
    return b.finish()


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def red_left_blue_right(h=6, w=10):
    img = np.empty((h, w, 3), np.uint8)
    img[:, : w // 2], img[:, w // 2:] = RED, BLUE
    return img


# -- one foreground channel ----------------------------------------------------------------------------------


@pytest.mark.parametrize("logistic, kind", [(True, "probability"), (False, "logit")])
def test_one_channel_foreground(tmp_path, logistic, kind):
    seg = Segmenter(write(tmp_path, "fg.tflite", foreground_model(logistic=logistic)))
    assert seg.info.output == kind and seg.class_names == ("background", "person")
    r = seg.segment(red_left_blue_right())
    assert r.labels.shape == (6, 10)
    assert (r.labels[:, :5] == 1).all() and (r.labels[:, 5:] == 0).all()
    masks = r.confidence_masks
    assert masks.shape == (2, 6, 10) and masks.dtype == np.float32
    np.testing.assert_allclose(masks.sum(axis=0), 1.0, atol=1e-6)
    assert np.array_equal(masks[1] > 0.5, r.labels == 1)
    # At the image's corners (clamped edges) the probability is exactly the model's.
    assert masks[1, 0, 0] == pytest.approx(1 / (1 + np.exp(-4.0)), abs=1e-6)


def test_metadata_activation_and_single_label(tmp_path):
    # MediaPipe's metadata says sigmoid: the output is a logit even though no LOGISTIC ends the graph;
    # its one label names the foreground.
    meta = build_metadata(mean=(0.0,), std=(255.0,), activation=1)
    data = zipped(foreground_model(logistic=False, metadata=meta), {"labels.txt": "selfie\n"})
    seg = Segmenter(write(tmp_path, "mp.tflite", data))
    assert seg.info.output == "logit" and seg.class_names == ("background", "selfie")
    assert seg.info.sources == {"output": "metadata and model", "labels": "metadata", "normalization": "metadata"}
    # x / 255 puts red at R' = 1, blue at 0: p = sigmoid(4) and sigmoid(0) = 0.5, which is not > 0.5
    # (an image of the model's size: no interpolation across the edge).
    r = seg.segment(red_left_blue_right(8, 8))
    assert (r.labels[:, :4] == 1).all() and (r.labels[:, 4:] == 0).all()


# -- class ids -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, dtype", [((1, 8, 8), TensorType.INT32), ((1, 8, 8), TensorType.INT64),
                                          ((8, 8), TensorType.INT32), ((1, 8, 8, 1), TensorType.INT64)])
def test_class_ids_of_any_layout(tmp_path, shape, dtype):
    seg = Segmenter(write(tmp_path, "ids.tflite", class_id_model(shape, dtype)))
    assert seg.info.output == "labels" and seg.output_size == (8, 8)
    img = np.zeros((16, 24, 3), np.uint8)
    img[:, :12] = (0, 200, 0)
    img[:, 12:] = (0, 0, 200)
    r = seg.segment(img)
    assert r.labels.shape == (16, 24) and (r.labels[:, :12] == 1).all() and (r.labels[:, 12:] == 2).all()
    assert r.logits is None and r.confidence_masks is None
    if len(shape) == 3:  # class ids cannot be read as a score map
        with pytest.raises(ModelError, match="logits"):
            Segmenter(tmp_path / "ids.tflite", output="logits")


# -- scores ----------------------------------------------------------------------------------------------------


def test_logits_confidence_is_softmax_and_raw_on_request(tmp_path):
    seg = Segmenter(write(tmp_path, "logits.tflite", scores_model(softmax=False)))
    assert seg.info.output == "logits"
    img = np.random.default_rng(1).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    r = seg.segment(img)  # image at the model's size: no resizing anywhere
    x = (img.astype(np.float32) - 127.5) / 127.5
    np.testing.assert_allclose(r.confidence("none"), np.moveaxis(x, -1, 0), atol=1e-6)
    e = np.exp(x - x.max(-1, keepdims=True))
    np.testing.assert_allclose(r.confidence_masks, np.moveaxis(e / e.sum(-1, keepdims=True), -1, 0), atol=1e-6)
    assert np.array_equal(r.confidence_masks.argmax(0), r.labels)
    with pytest.raises(ValueError, match="activation"):
        r.confidence("relu")


def test_softmax_output_is_not_softmaxed_twice(tmp_path):
    seg = Segmenter(write(tmp_path, "probs.tflite", scores_model(softmax=True)))
    assert seg.info.output == "probabilities"
    r = seg.segment(np.full((8, 8, 3), (200, 10, 10), np.uint8))
    expected = upsample_bilinear(r.logits, 8, 8)
    np.testing.assert_allclose(r.confidence_masks, np.moveaxis(expected, -1, 0), atol=1e-7)
    assert (r.labels == 0).all()


# -- settings: arguments, metadata, manifest --------------------------------------------------------------------


def test_arguments_win(tmp_path):
    labels = tmp_path / "names.txt"
    labels.write_text("sky\nland\nsea\n")
    p = write(tmp_path, "logits.tflite", scores_model(softmax=False))
    seg = Segmenter(p, mean=0.0, std=(255.0, 255.0, 255.0), labels=labels)
    assert seg.class_names == ("sky", "land", "sea") and seg.info.mean == (0.0,) and seg.info.std == (255.0,) * 3
    assert seg.info.sources["labels"] == "argument" and seg.info.sources["normalization"] == "argument"
    assert Segmenter(p, labels=["a", "b", "c"]).class_names == ("a", "b", "c")
    assert Segmenter(p, labels="cityscapes").class_names == ("road", "sidewalk", "building")
    # Forcing class ids onto a score map is refused with the reason.
    with pytest.raises(ModelError, match="labels"):
        Segmenter(p, output="labels")
    for bad in ({"std": 0.0}, {"mean": (1.0, 2.0)}, {"output": "masks"}, {"labels": tmp_path / "missing.txt"}):
        with pytest.raises(ModelError):
            Segmenter(p, **bad)


def test_cli_flags(tmp_path, capsys):
    labels = tmp_path / "names.txt"
    labels.write_text("sky\nland\nsea\n")
    model = write(tmp_path, "logits.tflite", scores_model(softmax=False))
    img = tmp_path / "img.png"
    from PIL import Image

    Image.fromarray(np.full((4, 4, 3), (10, 240, 10), np.uint8)).save(img)
    out = tmp_path / "out"
    rc = main(["segment", str(img), "--model", str(model), "--out", str(out), "--labels", str(labels),
               "--mean", "0", "--std", "255,255,255", "-q"])
    assert rc == 0
    assert json.loads((out / "img.json").read_text())["classes"] == {"land": 1.0}
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["segment", str(img), "--model", str(model), "--mean", "1,2"])
    assert exc.value.code == 2 and "three" in capsys.readouterr().err
    assert main(["segment", str(img), "--model", str(model), "--std", "0", "-q"]) == 2
    assert "std must not be 0" in capsys.readouterr().err


# -- evaluate: MLPerf's ADE20K classes -----------------------------------------------------------------------------


def test_evaluate_maps_ade20k_annotations_for_mlperf_models(tmp_path):
    from PIL import Image

    model = write(tmp_path, "ids.tflite", class_id_model((1, 8, 8)))
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, :4] = (0, 200, 0)  # predicted 1 (wall)
    img[:, 4:] = (200, 0, 0)  # predicted 0 (other)
    mask = np.zeros((8, 8), np.uint8)
    mask[:2, :4] = 1  # wall, right
    mask[2:4, :4] = 40  # ADE20K class 40, outside MLPerf's 31: ignored
    mask[4:, :4] = 0  # ADE20K "other": ignored
    mask[:, 4:] = 2  # building, predicted other: a miss
    Image.fromarray(img).save(tmp_path / "a.png")
    Image.fromarray(mask).save(tmp_path / "a_mask.png")
    seg = Segmenter(model, labels="ade20k_mlperf")
    result = evaluate(seg, [(tmp_path / "a.png", tmp_path / "a_mask.png")])
    assert not result.failed
    cm = result.confusion
    assert cm.sum() == 8 + 32 and cm[1, 1] == 8 and cm[2, 0] == 32
    # The same mask against a PASCAL model: class 40 is outside its label set, refused by name.
    result = evaluate(Segmenter(model), [(tmp_path / "a.png", tmp_path / "a_mask.png")])
    assert len(result.failed) == 1 and "label set (pascal_voc, 21 classes)" in result.failed[0]


# -- the real MLPerf model --------------------------------------------------------------------------------------


def test_mlperf_ade20k_model_matches_litert_ref(model_path, image_path):
    from pydeeplab.image import load_rgb, resize_rgb

    p = model_path("deeplabv3_mnv2_ade20k_uint8")
    image = image_path("ade20k/ADE_val_00000001.jpg")
    seg = Segmenter(p)
    assert seg.info.name == "deeplabv3_mnv2_ade20k_uint8" and seg.info.output == "labels"
    assert seg.label_set.name == "ade20k_mlperf" and seg.class_names[:3] == ("other", "wall", "building")
    r = seg.segment(image)
    x = resize_rgb(load_rgb(image), 512, 512)[None]
    (ref,) = run_litert(p.read_bytes(), [x], "ref")
    assert np.array_equal(r.model_labels, ref.reshape(512, 512))
    assert r.labels.shape == load_rgb(image).shape[:2]


def test_mlperf_models_evaluate_on_ade20k(model_path, image_path):
    # Both MLPerf models on ADE20K's own annotation (150 classes mapped to MLPerf's 32): a quality floor
    # well under what they reach (mean IoU 0.56 and 0.68 on this image), far above chance (1/32).
    pairs = [(image_path("ade20k/ADE_val_00000001.jpg"), image_path("ade20k/ADE_val_00000001.png"))]
    for name in ("deeplabv3_mnv2_ade20k_uint8", "mobile_segmenter_r3_quant"):
        seg = Segmenter(model_path(name))
        assert seg.label_set.name == "ade20k_mlperf" and seg.info.output == "labels"
        result = evaluate(seg, pairs)
        assert not result.failed and result.confusion.sum() > 0.8 * 512 * 683
        assert result.mean_iou > 0.4 and result.pixel_accuracy > 0.8, (name, result.mean_iou)
