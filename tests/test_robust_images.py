"""Bad, odd and huge images and masks through ``pydeeplab segment`` and ``pydeeplab evaluate``.

What test_image.py, test_cli_segment.py and test_evaluate.py do not already cover:
truncated JPEG/PNG/BMP, zero-byte and text files, animated GIF/APNG, 16-bit and
CMYK JPEG inside one CLI batch (named, the rest written, exit 1, no temporary or
partial files, inputs and earlier outputs of failed images untouched);
decompression bombs refused by name without allocating them; a 6000x4000 photo
segmented (with overlay) within a few full-resolution copies of memory; and
evaluate batches with masks of the wrong size, labels outside the label set,
broken masks and images among good pairs.
"""

import io
import json
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image
from test_cli_segment import _digest, model  # noqa: F401 (model is a fixture)
from test_segment import CAT, PERSON, halves

from pydeeplab.cli import main
from pydeeplab.evaluate import evaluate, format_result, load_mask, pair_images_and_masks
from pydeeplab.image import ImageError, load_rgb


def _encoded(rgb: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **kw)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width x height 8-bit RGB, followed by one tiny IDAT: a decompression bomb's shape."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


# -- truncated files, one format at a time ------------------------------------------------------------


@pytest.mark.parametrize("fmt, ext", [("JPEG", "jpg"), ("PNG", "png"), ("BMP", "bmp")])
def test_truncated_file_of_each_format_is_named(tmp_path, fmt, ext):
    rng = np.random.default_rng(0)
    data = _encoded(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), fmt)
    p = tmp_path / f"cut.{ext}"
    p.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageError, match=f"cut.{ext}"):
        load_rgb(p)


# -- one CLI batch with every kind of bad and odd file ----------------------------------------------


def _batch(folder):
    """Good files (incl. animated, 16-bit, CMYK JPEG) and bad ones; returns (good stems, bad names)."""
    folder.mkdir()
    rgb = halves(24, 32)
    Image.fromarray(rgb).save(folder / "good.png")
    Image.fromarray(rgb).save(folder / "good.jpg", quality=95)
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    # 16-bit grayscale: all gray is background; checks only that it is read.
    Image.fromarray(np.full((24, 32), 40000, np.uint16)).save(folder / "deep16.png")
    # Animated: the first frame is red/green halves, the second all blue (background).
    frames = [Image.fromarray(rgb), Image.new("RGB", (32, 24), (0, 0, 255))]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    frames[0].save(folder / "anim.png", save_all=True, append_images=frames[1:], duration=50)
    for fmt, ext in (("JPEG", "jpg"), ("PNG", "png"), ("BMP", "bmp")):
        data = _encoded(np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8), fmt)
        (folder / f"cut_{ext}.{ext}").write_bytes(data[: len(data) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("this is a text file with an image's name\n")
    good = ["good", "good-2", "cmyk", "deep16", "anim", "anim-2"]
    bad = ["cut_jpg.jpg", "cut_png.png", "cut_bmp.bmp", "empty.jpg", "text.jpg"]
    return good, bad


def test_batch_with_truncated_empty_text_and_animated_files(model, tmp_path, capsys):
    images = tmp_path / "in"
    good, bad = _batch(images)
    before = _digest(images)
    out = tmp_path / "out"
    out.mkdir()
    # Outputs of an earlier run for files that now fail: left exactly as they were.
    (out / "empty_labels.png").write_bytes(b"earlier result")
    (out / "text.json").write_text("{}")
    rc = main(["segment", str(images), "--model", str(model), "--out", str(out), "--overlay", "-q"])
    err = capsys.readouterr().err
    assert rc == 1
    for name in bad:
        line = next((ln for ln in err.splitlines() if name in ln), "")
        assert "not a readable image" in line, (name, err)
    assert f"{len(good)} of {len(good) + len(bad)} images segmented" in err and f"{len(bad)} failed" in err
    assert "Traceback" not in err
    assert _digest(images) == before  # inputs byte-identical
    names = {p.name for p in out.iterdir()}
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")]
    assert (out / "empty_labels.png").read_bytes() == b"earlier result"
    assert (out / "text.json").read_text() == "{}"
    assert not [n for n in names if n.startswith("cut_")]
    for stem in good:
        animated = stem.startswith("anim")
        # An animation gives an animated overlay and a folder of per-frame labels (issue 14).
        expected = ({f"{stem}_labels", f"{stem}_overlay.gif", f"{stem}.json"} if animated
                    else {f"{stem}_labels.png", f"{stem}_overlay.png", f"{stem}.json"})
        assert expected <= names, stem
        with Image.open(out / (f"{stem}_labels/frame_0000.png" if animated else f"{stem}_labels.png")) as im:
            im.load()
            assert im.size == (32, 24)
            labels = np.asarray(im)
        if stem == "deep16":
            assert (labels == 0).all()
        else:
            assert (labels[:, :14] == PERSON).all() and (labels[:, 18:] == CAT).all(), stem
        if animated:  # the blue second frame is background
            assert (np.asarray(Image.open(out / f"{stem}_labels/frame_0001.png")) == 0).all(), stem


# -- decompression bombs -------------------------------------------------------------------------


def test_png_declaring_a_huge_size_is_refused_without_allocating(model, tmp_path, capsys):
    images = tmp_path / "in"
    images.mkdir()
    (images / "bomb.png").write_bytes(_png_header_only(40000, 40000))  # 1.6e9 pixels, 4.8 GB as RGB
    Image.fromarray(halves(8, 8)).save(images / "ok.png")
    out = tmp_path / "out"
    tracemalloc.start()
    try:
        rc = main(["segment", str(images), "--model", str(model), "--out", str(out), "-q"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err
    assert rc == 1
    assert "bomb.png" in err and "too many pixels" in err and "1 of 2 images segmented" in err
    assert peak < 64 << 20
    assert {p.name for p in out.iterdir()} == {"ok_labels.png", "ok.json"}


def test_pillow_pixel_limit_is_honored(model, tmp_path, monkeypatch, capsys):
    """Over twice Image.MAX_IMAGE_PIXELS Pillow refuses the image; over it (with Pillow's warning) it is read."""
    images = tmp_path / "in"
    images.mkdir()
    Image.fromarray(halves(40, 40)).save(images / "big.png")  # 1600 pixels: refused
    Image.fromarray(halves(30, 30)).save(images / "mid.png")  # 900 pixels: a warning
    Image.fromarray(halves(8, 8)).save(images / "small.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 700)
    out = tmp_path / "out"
    with pytest.warns(Image.DecompressionBombWarning):
        rc = main(["segment", str(images), "--model", str(model), "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and "big.png" in err and "too many pixels" in err and "2 of 3" in err
    assert "mid.png" not in err
    assert (out / "small_labels.png").exists() and (out / "mid_labels.png").exists()
    assert not (out / "big_labels.png").exists() and not (out / "big.json").exists()


# -- a very large photo ----------------------------------------------------------------------------


def test_large_photo_stays_within_a_few_copies(model, tmp_path, capsys):
    h, w = 4000, 6000
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, : w // 2, 0] = 255
    rgb[:, w // 2:, 1] = 255
    src = tmp_path / "huge.png"
    Image.fromarray(rgb).save(src, compress_level=1)
    del rgb
    out = tmp_path / "out"
    main(["segment", str(tmp_path / "absent.png"), "--model", str(model), "--out", str(out), "-q"])  # warm up
    capsys.readouterr()
    tracemalloc.start()
    try:
        rc = main(["segment", str(src), "--model", str(model), "--out", str(out), "--overlay", "-q"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rc == 0, capsys.readouterr().err
    copies = peak / (h * w * 3)
    assert copies < 5, f"peak Python allocation {copies:.1f} full-resolution RGB copies"
    summary = json.loads((out / "huge.json").read_text())
    assert (summary["width"], summary["height"]) == (w, h)
    # The 8x8 model output is upsampled: the edge between the halves is blurred over a few hundred columns.
    assert summary["classes"]["person"] == pytest.approx(0.5, abs=0.03)
    assert summary["classes"]["cat"] == pytest.approx(0.5, abs=0.03)
    with Image.open(out / "huge_labels.png") as im:
        assert im.size == (w, h)
        assert im.getpixel((10, 10)) == PERSON and im.getpixel((w - 10, h - 10)) == CAT
    with Image.open(out / "huge_overlay.png") as im:
        assert im.size == (w, h)


# -- evaluate with bad masks among good pairs -----------------------------------------------------


def _eval_folder(folder):
    """Pairs: good a and b, c with a mask of another size, d with label 30 (21 classes), e with a broken
    image, f with a truncated mask, g with a .npy mask holding -1."""
    folder.mkdir()
    img = halves(16, 16)  # person left, cat right
    truth = np.zeros((16, 16), np.uint8)
    truth[:, :8], truth[:, 8:] = PERSON, CAT
    for stem in "abcdfg":
        Image.fromarray(img).save(folder / f"{stem}.png")
    for stem in "ab":
        Image.fromarray(truth).save(folder / f"{stem}_mask.png")
    Image.fromarray(np.zeros((16, 20), np.uint8)).save(folder / "c_mask.png")
    wrong = truth.copy()
    wrong[3, 3] = 30
    Image.fromarray(wrong).save(folder / "d_mask.png")
    (folder / "e.png").write_bytes(_encoded(img, "PNG")[:60])
    Image.fromarray(truth).save(folder / "e_mask.png")
    (folder / "f_mask.png").write_bytes(_encoded(truth, "PNG")[:50])
    np.save(folder / "g_mask.npy", np.full((16, 16), -1, np.int32))
    return folder


def test_evaluate_reports_bad_pairs_and_evaluates_the_rest(model, tmp_path, capsys):
    folder = _eval_folder(tmp_path / "data")
    before = _digest(folder)
    rc = main(["evaluate", "--model", str(model), "--images", str(folder), "--masks", str(folder), "--json"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "Traceback" not in captured.err
    for name, why in (("c_mask.png", "20x16"), ("d_mask.png", "30"), ("e.png", "not a readable image"),
                      ("f_mask.png", "mask"), ("g_mask.npy", "-1")):
        line = next((ln for ln in captured.err.splitlines() if name in ln), None)
        assert line is not None and why in line, (name, captured.err)
    assert "2 of 7 image and mask pairs evaluated; 5 failed" in captured.err
    d = json.loads(captured.out)
    assert [r["image"].rsplit("/", 1)[-1] for r in d["images"]] == ["a.png", "b.png"]
    assert len(d["failed"]) == 5
    assert d["pixel_accuracy"] == 1.0 and d["iou"] == {"cat": 1.0, "person": 1.0}
    assert _digest(folder) == before


def test_evaluate_api_collects_failures(model, tmp_path):
    from pydeeplab import Segmenter

    folder = _eval_folder(tmp_path / "data")
    pairs, skipped = pair_images_and_masks(folder, folder)
    result = evaluate(Segmenter(model), pairs, skipped)
    assert len(result.images) == 2 and len(result.failed) == 5
    assert int(result.confusion.sum()) == 2 * 16 * 16
    assert "failed:" in format_result(result) and "c_mask.png" in format_result(result)


def test_npy_masks_are_checked(tmp_path):
    p = tmp_path / "m.npy"
    np.save(p, np.array([[0, 15], [255, 3]], np.int64))
    np.testing.assert_array_equal(load_mask(p), [[0, 15], [255, 3]])
    for bad, match in ((np.full((2, 2), 300), "300"), (np.zeros((2, 2, 3), np.uint8), "2-D"),
                       (np.zeros((2, 2), np.float32), "integer")):
        np.save(p, bad)
        with pytest.raises(ImageError, match=match):
            load_mask(p)
    p.write_bytes(b"garbage")
    with pytest.raises(ImageError, match="m.npy"):
        load_mask(p)
