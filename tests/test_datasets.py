"""Dataset layouts (PASCAL VOC, ADE20K, Cityscapes) and `pydeeplab evaluate --dataset`.

The real check: a VOC folder built from ../shared/data/images/voc gives the
confusion matrix (hence mIoU) computed independently from LiteRT's labels
(reference kernels) on the same images. The layouts of ADE20K and Cityscapes,
label maps, broken files and --limit are checked on tiny constructed folders
with a tiny model whose labels are known by construction.
"""

import json

import numpy as np
import pytest
from dataset_fixtures import BLUE, DM05, GREEN, RED, save_palette_png, stripes, tiny_model
from oracle import run_litert
from PIL import Image

from pydeeplab.cli import main
from pydeeplab.datasets import (DatasetError, ade20k_lookup, check_label_set, cityscapes_lookup, load_label_map,
                                open_dataset)

def evaluate_json(capsys, *argv) -> tuple[int, dict]:
    rc = main(["evaluate", *map(str, argv), "--json"])
    out = capsys.readouterr().out
    return rc, json.loads(out)


def independent_confusion(pred: np.ndarray, truth: np.ndarray, classes: int) -> np.ndarray:
    """Confusion counts by a plain loop over (truth, prediction) values: not pydeeplab's function."""
    cm = np.zeros((classes, classes), np.int64)
    keep = truth != 255
    for t, p in zip(truth[keep].tolist(), pred[keep].tolist()):
        cm[t, p] += 1
    return cm


def independent_miou(cm: np.ndarray) -> float:
    ious = []
    for c in range(cm.shape[0]):
        union = cm[c, :].sum() + cm[:, c].sum() - cm[c, c]
        if union:
            ious.append(cm[c, c] / union)
    return float(np.mean(ious))


# -- PASCAL VOC on the real model, against LiteRT --------------------------------------------------


def test_voc_evaluate_equals_litert(voc, voc_local_json, model_path):
    root, ids = voc
    rc, text = voc_local_json
    assert rc == 0
    d = json.loads(text)
    assert set(d) >= {"miou", "pixel_accuracy", "per_class_iou", "confusion", "images"}
    assert d["images"] == len(ids) == 4 and d["label_set"] == "pascal_voc" and d["model"] == DM05
    content = model_path(DM05).read_bytes()
    total = np.zeros((21, 21), np.int64)
    voc_root = root / "VOCdevkit" / "VOC2012"
    for i in ids:
        rgb = np.asarray(Image.open(voc_root / "JPEGImages" / f"{i}.jpg").convert("RGB"))
        assert rgb.shape == (513, 513, 3)  # the model's input size: no resizing on either side
        (labels,) = run_litert(content, [rgb[None]], resolver="ref")
        truth = np.asarray(Image.open(voc_root / "SegmentationClass" / f"{i}.png"))
        total += independent_confusion(labels[0], truth, 21)
    np.testing.assert_array_equal(np.array(d["confusion"]), total)
    assert d["miou"] == pytest.approx(independent_miou(total), abs=1e-12)
    assert d["pixel_accuracy"] == pytest.approx(np.trace(total) / total.sum(), abs=1e-12)
    assert d["miou"] > 0.6  # the model does segment these images


# -- tiny folders of each layout --------------------------------------------------------------------


@pytest.fixture
def pascal_model(tmp_path):
    p = tmp_path / "tiny21.tflite"
    p.write_bytes(tiny_model(21, red=15, green=8))  # red person, green cat, else background
    return p


def make_voc(root, n=3, broken=()):
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    (root / "SegmentationClass").mkdir()
    ids = [f"2007_{k:06d}" for k in range(n)]
    for i in ids:
        Image.fromarray(stripes(16, 16, [RED, GREEN, BLUE, BLUE])).save(root / "JPEGImages" / f"{i}.jpg",
                                                                        quality=100, subsampling=0)
        truth = np.zeros((16, 16), np.uint8)
        truth[:, :4], truth[:, 4:8] = 15, 8
        truth[0, :] = 255
        save_palette_png(truth, root / "SegmentationClass" / f"{i}.png")
    for i in broken:
        (root / "JPEGImages" / f"{i}.jpg").write_bytes(b"not a jpeg")
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(ids) + "\n")
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text(ids[0] + "\n")
    return ids


def test_voc_layout_exact_figures(tmp_path, pascal_model, capsys):
    make_voc(tmp_path / "VOC2012")
    rc, d = evaluate_json(capsys, "--model", pascal_model, "--dataset", tmp_path)  # finds VOC2012/ inside
    assert rc == 0 and d["images"] == 3
    cm = np.array(d["confusion"])
    assert cm.sum() == 3 * 15 * 16 and np.trace(cm) == cm.sum()  # row 0 ignored; every other pixel right
    assert d["per_class_iou"] == {"background": 1.0, "cat": 1.0, "person": 1.0} and d["miou"] == 1.0
    rc, d = evaluate_json(capsys, "--model", pascal_model, "--dataset", tmp_path, "--split", "train")
    assert d["images"] == 1
    rc, d = evaluate_json(capsys, "--model", pascal_model, "--dataset", tmp_path, "--limit", "2")
    assert d["images"] == 2


def test_text_report_is_a_table(tmp_path, pascal_model, capsys):
    make_voc(tmp_path)
    assert main(["evaluate", "--model", str(pascal_model), "--dataset", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "label set: pascal_voc" in out and "images:    3" in out and "mIoU            1.0000" in out
    assert any(line.split()[:3] == ["15", "person", "1.0000"] for line in out.splitlines()), out


def test_broken_files_are_named_skipped_and_counted(tmp_path, pascal_model, capsys):
    ids = make_voc(tmp_path, n=4, broken=["2007_000001"])
    (tmp_path / "SegmentationClass" / f"{ids[2]}.png").unlink()
    rc = main(["evaluate", "--model", str(pascal_model), "--dataset", str(tmp_path), "--json"])
    captured = capsys.readouterr()
    d = json.loads(captured.out)
    assert rc == 1 and d["images"] == 2 and len(d["broken"]) == 2
    assert "2007_000001.jpg" in captured.err and "2007_000002.png" in captured.err
    assert "2 of 4 images evaluated; 2 broken, skipped" in captured.err


def test_unknown_folder_and_missing_split(tmp_path, pascal_model, capsys):
    assert main(["evaluate", "--model", str(pascal_model), "--dataset", str(tmp_path)]) == 2
    assert "not a dataset folder" in capsys.readouterr().err
    make_voc(tmp_path)
    assert main(["evaluate", "--model", str(pascal_model), "--dataset", str(tmp_path), "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert "without split 'test'" in err and "splits: train, val" in err


def make_ade20k(root):
    """ADEChallengeData2016: two validation images; annotation 13 = person, 0 = other (ignored)."""
    for sub in ("images/validation", "annotations/validation", "images/training", "annotations/training"):
        (root / sub).mkdir(parents=True)
    (root / "objectInfo150.csv").write_text("Idx,Ratio,Train,Val,Stuff,Name\n1,0.15,1,1,1,wall\n"
                                            "13,0.01,1,1,0,person;individual;someone\n")
    for k in (1, 2):
        name = f"ADE_val_{k:08d}"
        Image.fromarray(stripes(16, 16, [RED, BLUE])).save(root / "images" / "validation" / f"{name}.jpg",
                                                           quality=100, subsampling=0)
        ann = np.zeros((16, 16), np.uint8)
        ann[:, :8] = 13  # person where the image is red
        ann[:, 8:12] = 1  # wall
        Image.fromarray(ann, "L").save(root / "annotations" / "validation" / f"{name}.png")


def test_ade20k_layout(tmp_path, pascal_model, capsys):
    root = tmp_path / "ADEChallengeData2016"
    make_ade20k(root)
    ds = open_dataset(tmp_path)
    assert ds.layout == "ade20k" and len(ds) == 2 and ds.samples[0].id == "ADE_val_00000001"
    assert ds.class_names[0] == "wall" and ds.class_names[12] == "person" and ds.class_names[1] == "class_2"
    assert ade20k_lookup()[0] == 255 and ade20k_lookup()[13] == 12
    assert len(open_dataset(root, "train")) == 0
    # A PASCAL model on ADE20K: a clear error, then the same run with a mapping.
    assert main(["evaluate", "--model", str(pascal_model), "--dataset", str(root)]) == 2
    err = capsys.readouterr().err
    assert "labels 21 classes" in err and "labels 150" in err and "--label-map" in err
    (tmp_path / "ade_to_voc.txt").write_text("# ADE20K value -> PASCAL id\n13 15\n1 0\n")
    rc, d = evaluate_json(capsys, "--model", pascal_model, "--dataset", root, "--label-map",
                          tmp_path / "ade_to_voc.txt")
    assert rc == 0 and d["images"] == 2
    cm = np.array(d["confusion"])
    # Per image: 128 person pixels right, 64 wall pixels (background) right, 64 "other" ignored.
    assert cm[15, 15] == 2 * 128 and cm[0, 0] == 2 * 64 and cm.sum() == 2 * 192
    assert d["per_class_iou"] == {"background": 1.0, "person": 1.0}


def make_cityscapes(root):
    for split in ("val", "train"):
        for city in ("frankfurt", "lindau"):
            (root / "leftImg8bit" / split / city).mkdir(parents=True)
            (root / "gtFine" / split / city).mkdir(parents=True)
    for city, n in (("frankfurt", 2), ("lindau", 1)):
        for k in range(n):
            stem = f"{city}_000000_{k:06d}"
            Image.fromarray(stripes(16, 16, [RED, GREEN, BLUE, BLUE])).save(
                root / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png")
            ids = np.full((16, 16), 7, np.uint8)  # road (train id 0)
            ids[:, :4] = 24  # person (train id 11)
            ids[:, 4:8] = 26  # car (train id 13)
            ids[:, 15] = 1  # ego vehicle: ignored
            Image.fromarray(ids, "L").save(root / "gtFine" / "val" / city / f"{stem}_gtFine_labelIds.png")
            Image.fromarray(ids, "L").save(root / "gtFine" / "val" / city / f"{stem}_gtFine_color.png")


def test_cityscapes_layout_maps_label_ids_to_train_ids(tmp_path, capsys):
    make_cityscapes(tmp_path)
    ds = open_dataset(tmp_path)
    assert ds.layout == "cityscapes" and [s.id for s in ds] == [
        "frankfurt/frankfurt_000000_000000", "frankfurt/frankfurt_000000_000001", "lindau/lindau_000000_000000"]
    table = cityscapes_lookup()
    assert (table[[7, 24, 26, 33, 1, 0, 255]] == [0, 11, 13, 18, 255, 255, 255]).all()
    assert (table != 255).sum() == 19
    model = tmp_path / "tiny19.tflite"
    model.write_bytes(tiny_model(19, red=11, green=13))  # 19 classes: the Cityscapes label set
    rc, d = evaluate_json(capsys, "--model", model, "--dataset", tmp_path)
    assert rc == 0 and d["images"] == 3 and d["label_set"] == "cityscapes"
    assert d["per_class_iou"] == {"road": 1.0, "person": 1.0, "car": 1.0}
    assert np.array(d["confusion"]).sum() == 3 * 16 * 15


def test_label_map_files(tmp_path):
    (tmp_path / "m.json").write_text('{"13": 15, "1": 0, "2": 255}')
    table = load_label_map(tmp_path / "m.json")
    assert table[13] == 15 and table[1] == 0 and table[2] == 255 and table[3] == 255
    for text, message in (("13\n", "expected"), ("13 300\n", "0..255"), ("a b\n", "integers")):
        (tmp_path / "bad.txt").write_text(text)
        with pytest.raises(DatasetError, match=message):
            load_label_map(tmp_path / "bad.txt")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(DatasetError, match="object"):
        load_label_map(tmp_path / "bad.json")


def test_evaluate_jobs_2_is_identical(tmp_path, pascal_model, capsys):
    make_voc(tmp_path, n=5)
    _, one = evaluate_json(capsys, "--model", pascal_model, "--dataset", tmp_path)
    _, two = evaluate_json(capsys, "--model", pascal_model, "--dataset", tmp_path, "--jobs", "2")
    assert one == two and one["images"] == 5


def test_evaluate_without_a_source_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--model", "m"])
    assert exc.value.code == 2 and "--dataset" in capsys.readouterr().err


def test_label_set_check_ignores_spelling_not_classes(tmp_path):
    make_voc(tmp_path)
    ds = open_dataset(tmp_path)
    names = list(ds.class_names)
    names[11], names[20] = "Dining Table", "tv/monitor"
    check_label_set(ds, tuple(names), "m")  # the same classes spelt otherwise
    with pytest.raises(DatasetError, match="labels 20 classes"):
        check_label_set(ds, tuple(names[:20]), "m")
    names[1], names[2] = names[2], names[1]  # same names, another order: other ids
    with pytest.raises(DatasetError, match="--label-map"):
        check_label_set(ds, tuple(names), "m")
