"""Segmentation metrics (PASCAL convention), Coral's agreement figure, mask pairing, and the real figures."""

import json

import numpy as np
import pytest
from oracle import data_dir, require_data
from PIL import Image

from pydeeplab.cli import main
from pydeeplab.evaluate import (EvalResult, confusion_matrix, coral_agreement, evaluate, format_result, iou_per_class,
                                load_mask, mean_iou, pair_images_and_masks, pixel_accuracy)
from pydeeplab.image import ImageError

# Label agreement with bird_segmentation_mask.bmp measured with LiteRT (../shared/data/README.md).
README_AGREEMENT = {
    "deeplabv3_257_mv_gpu": 0.936,
    "deeplabv3_mnv2_pascal_quant": 0.958,
    "deeplabv3_mnv2_dm05_pascal_quant": 0.924,
}


# -- metrics ----------------------------------------------------------------------------------


def test_confusion_matrix_by_hand():
    truth = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [1, 0, 2]])
    cm = confusion_matrix(pred, truth, 3)
    assert cm.dtype == np.int64
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]  # the 255 pixel is not counted
    iou = iou_per_class(cm)
    np.testing.assert_allclose(iou, [1 / 3, 2 / 3, 0.0])
    assert mean_iou(cm) == pytest.approx(1 / 3)
    assert pixel_accuracy(cm) == pytest.approx(3 / 5)


def test_absent_classes_have_no_iou():
    cm = confusion_matrix(np.array([0, 0, 3]), np.array([0, 0, 3]), 5)
    iou = iou_per_class(cm)
    assert iou[0] == 1 and iou[3] == 1 and np.isnan(iou[[1, 2, 4]]).all()
    assert mean_iou(cm) == 1.0
    empty = confusion_matrix(np.array([1]), np.array([255]), 3)
    assert empty.sum() == 0 and np.isnan(mean_iou(empty)) and np.isnan(pixel_accuracy(empty))


def test_confusion_matrix_matches_a_loop():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 6, (40, 30))
    truth[rng.random(truth.shape) < 0.1] = 255
    pred = rng.integers(0, 6, (40, 30))
    cm = confusion_matrix(pred, truth, 6)
    ref = np.zeros((6, 6), np.int64)
    for t, p in zip(truth.ravel(), pred.ravel()):
        if t != 255:
            ref[t, p] += 1
    np.testing.assert_array_equal(cm, ref)


def test_out_of_range_labels_and_shapes_are_errors():
    with pytest.raises(ValueError, match="ground truth holds label 7"):
        confusion_matrix(np.zeros(3), np.array([0, 7, 1]), 3)
    with pytest.raises(ValueError, match="prediction holds label 4"):
        confusion_matrix(np.array([0, 4, 1]), np.zeros(3), 3)
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 3)


def test_coral_agreement():
    a = np.array([[0, 3], [3, 3]], np.uint8)
    assert coral_agreement(a, a) == 1.0
    mask = np.array([[255, 3], [3, 0]], np.uint8)  # 255 is read as background 0
    same = 3
    assert coral_agreement(a, mask) == pytest.approx(same / (4 + 4 - same))
    # The prediction is resized to the mask by nearest neighbor first.
    small = np.array([[0, 3]], np.uint8)
    big = np.array([[0, 0, 3, 3]] * 2, np.uint8)
    assert coral_agreement(small, big) == 1.0


# -- masks and pairing -------------------------------------------------------------------------


def test_load_mask_keeps_ids(tmp_path):
    ids = np.array([[0, 15, 255]], np.uint8)
    p = Image.fromarray(ids, "L").convert("P")
    p.putpalette([i % 256 for i in range(768)])
    p.save(tmp_path / "p.png")
    Image.fromarray(ids, "L").save(tmp_path / "l.bmp")
    Image.fromarray(np.repeat(ids[:, :, None], 3, 2), "RGB").save(tmp_path / "rgb.png")
    for name in ("p.png", "l.bmp", "rgb.png"):
        np.testing.assert_array_equal(load_mask(tmp_path / name), ids)
    Image.new("RGB", (2, 2), (255, 0, 0)).save(tmp_path / "color.png")
    with pytest.raises(ImageError, match="not a label mask"):
        load_mask(tmp_path / "color.png")
    (tmp_path / "bad.png").write_bytes(b"junk")
    with pytest.raises(ImageError, match="bad.png"):
        load_mask(tmp_path / "bad.png")


def _touch_image(p):
    Image.new("L", (2, 2)).save(p)
    return p


def test_pairing_in_one_folder_skips_the_masks_themselves(tmp_path):
    for name in ("bird.bmp", "bird_mask.bmp", "cat.jpg", "dog.png", "dog_labels.png"):
        _touch_image(tmp_path / name)
    pairs, skipped = pair_images_and_masks(tmp_path, tmp_path)
    assert [(i.name, m.name) for i, m in pairs] == [("bird.bmp", "bird_mask.bmp"), ("dog.png", "dog_labels.png")]
    assert skipped == ["cat.jpg: no mask"]


def test_pairing_across_folders_and_single_files(tmp_path):
    images, masks = tmp_path / "JPEGImages", tmp_path / "SegmentationClass"
    images.mkdir()
    masks.mkdir()
    for name in ("2007_000032.jpg", "2007_000033.jpg"):
        _touch_image(images / name)
    _touch_image(masks / "2007_000032.png")
    pairs, skipped = pair_images_and_masks(images, masks)
    assert [(i.name, m.name) for i, m in pairs] == [("2007_000032.jpg", "2007_000032.png")]
    assert skipped == ["2007_000033.jpg: no mask"]
    pairs, _ = pair_images_and_masks(images / "2007_000032.jpg", masks)
    assert pairs == [(images / "2007_000032.jpg", masks / "2007_000032.png")]
    pairs, _ = pair_images_and_masks(images / "2007_000033.jpg", masks / "2007_000032.png")
    assert len(pairs) == 1
    with pytest.raises(FileNotFoundError):
        pair_images_and_masks(tmp_path / "absent", masks)


def test_result_report_and_json():
    cm = confusion_matrix(np.array([0, 0, 3, 3]), np.array([0, 3, 3, 255]), 4)
    r = EvalResult("m", ("background", "aeroplane", "bicycle", "bird"), cm,
                   images=[{"image": "a.png", "mask": "a_mask.png", "agreement": 0.5}])
    d = r.to_dict()
    assert d["mean_iou"] == pytest.approx(0.5) and d["pixel_accuracy"] == pytest.approx(2 / 3)
    assert d["iou"] == {"background": 0.5, "bird": 0.5} and d["coral_agreement"] == 0.5
    json.dumps(d)
    text = format_result(r)
    assert "mean IoU        0.5000" in text and "bird" in text and "aeroplane" not in text.split("mean IoU")[0]


# -- the real models -------------------------------------------------------------------------------


@pytest.mark.parametrize("stem", list(README_AGREEMENT))
def test_bird_agreement_reproduces_the_readme(stem, model_path):
    from pydeeplab import Segmenter

    model = model_path(stem)
    image = require_data(data_dir() / "images" / "bird_segmentation.bmp")
    mask = require_data(data_dir() / "images" / "bird_segmentation_mask.bmp")
    pairs, _ = pair_images_and_masks(image, mask)
    result = evaluate(Segmenter(model), pairs)
    assert abs(result.agreement - README_AGREEMENT[stem]) <= 0.01, result.agreement
    assert result.iou[3] > 0.75  # bird
    assert result.pixel_accuracy > 0.94


def test_cli_evaluate_json(tmp_path, capsys):
    """The command on a synthetic model and masks: exact, known figures."""
    from test_segment import tiny_logits_model

    model = tmp_path / "tiny.tflite"
    model.write_bytes(tiny_logits_model())
    img = np.zeros((16, 16, 3), np.uint8)
    img[:, :8] = (255, 0, 0)  # person on the left
    img[:, 8:] = (0, 0, 255)  # background on the right
    Image.fromarray(img).save(tmp_path / "x.png")
    truth = np.zeros((16, 16), np.uint8)
    truth[:, :8] = 15
    truth[:, 12:] = 255  # ignored
    truth[0, 9] = 15  # one mistake of the model
    Image.fromarray(truth).save(tmp_path / "x_mask.png")
    assert main(["evaluate", "--model", str(model), "--images", str(tmp_path), "--masks", str(tmp_path),
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["pixel_accuracy"] == pytest.approx(191 / 192)
    assert d["iou"] == {"background": pytest.approx(63 / 64), "person": pytest.approx(128 / 129)}
    # Agreement: 255 counts as background, which the model predicts there; one pixel differs.
    assert d["images"][0]["agreement"] == pytest.approx(255 / (512 - 255))
    assert main(["evaluate", "--model", str(model), "--images", str(tmp_path), "--masks", str(tmp_path)]) == 0
    assert "Coral agreement" in capsys.readouterr().out


def test_cli_evaluate_without_masks(tmp_path, capsys):
    _touch_image(tmp_path / "a.png")
    assert main(["evaluate", "--model", "x", "--images", str(tmp_path), "--masks", str(tmp_path)]) == 1
    assert "no image" in capsys.readouterr().err


def test_cli_evaluate_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert "example" in capsys.readouterr().out


def test_load_mask_reads_voc_colour_masks(tmp_path):
    """VOC samples shared as colour images decode through the VOC palette, (224,224,192) to 255."""
    from dataset_fixtures import voc_colour_mask_to_ids

    target = require_data(data_dir() / "images" / "voc" / "0_target.png")
    with Image.open(target) as im:
        rgb = np.asarray(im.convert("RGB"))
    want = voc_colour_mask_to_ids(rgb)  # the test's own decoding, written independently
    assert (want == 255).any() and len(np.unique(want)) > 2
    np.testing.assert_array_equal(load_mask(target), want)
    # One pixel off the palette: not a mask, and the message says why.
    rgb = rgb.copy()
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb, "RGB").save(tmp_path / "off.png")
    with pytest.raises(ImageError, match="not all PASCAL VOC palette colours"):
        load_mask(tmp_path / "off.png")
