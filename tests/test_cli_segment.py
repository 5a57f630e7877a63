"""``pydeeplab segment``: argument parsing, batches with bad files, output files, atomic writes, exit status."""

import hashlib
import json

import numpy as np
import pytest
from oracle import data_dir, require_data
from PIL import Image
from test_segment import CAT, PERSON, RED, GREEN, halves, tiny_logits_model

from pydeeplab.cli import build_parser, main


@pytest.fixture
def model(tmp_path):
    p = tmp_path / "tiny.tflite"
    p.write_bytes(tiny_logits_model())
    return p


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _images(folder):
    """One image per color mode the loader converts, all red-left/green-right."""
    folder.mkdir()
    rgb = Image.fromarray(halves(24, 32))
    rgb.save(folder / "rgb.jpg", quality=95)
    rgb.convert("RGBA").save(folder / "rgba.png")
    rgb.convert("P").save(folder / "palette.png")
    rgb.convert("CMYK").save(folder / "cmyk.tiff")
    rgb.convert("L").save(folder / "gray.bmp")
    (folder / "notes.txt").write_text("not an image, not picked from the folder")
    return folder


# -- parsing ---------------------------------------------------------------------------------------


def test_defaults_and_options():
    a = build_parser().parse_args(["segment", "x.jpg"])
    assert (a.model, a.out, a.overlay, a.alpha, a.format, a.keep_aspect, a.jobs, a.backend) == \
        ("deeplabv3_257", "segmentation", False, 0.5, "png", False, 1, "auto")
    a = build_parser().parse_args(["segment", "a", "b", "--model", "m.tflite", "--out", "o", "--overlay",
                                   "--alpha", "0.7", "--format", "npy", "--keep-aspect", "--jobs", "3"])
    assert (a.inputs, a.model, a.out, a.overlay, a.alpha, a.format, a.keep_aspect, a.jobs) == \
        (["a", "b"], "m.tflite", "o", True, 0.7, "npy", True, 3)


@pytest.mark.parametrize("argv", [["segment"], ["segment", "x", "--alpha", "2"], ["segment", "x", "--jobs", "0"],
                                  ["segment", "x", "--format", "gif"], ["evaluate", "--model", "m"],
                                  ["segment", "x", "--alpha", "half"]])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


@pytest.mark.parametrize("command", ["segment", "evaluate", "fetch", "inspect", "verify"])
def test_every_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "example" in capsys.readouterr().out


# -- batches -----------------------------------------------------------------------------------------


def test_batch_of_every_mode_with_a_corrupt_file(model, tmp_path, capsys):
    images = _images(tmp_path / "in")
    (images / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    before = _digest(images)
    out = tmp_path / "out"
    rc = main(["segment", str(images), "--model", str(model), "--out", str(out), "--overlay"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "corrupt.png" in captured.err and "5 of 6 images segmented" in captured.err
    assert _digest(images) == before  # inputs untouched
    names = {p.name for p in out.iterdir()}
    assert not [n for n in names if n.endswith(".tmp")]
    assert not [n for n in names if n.startswith("corrupt")]
    for stem in ("rgb", "rgba", "palette", "cmyk", "gray"):
        assert {f"{stem}_labels.png", f"{stem}_overlay.png", f"{stem}.json"} <= names
        with Image.open(out / f"{stem}_labels.png") as im:
            assert im.mode == "P" and im.size == (32, 24)
            labels = np.asarray(im)
        summary = json.loads((out / f"{stem}.json").read_text())
        assert summary["width"] == 32 and summary["height"] == 24 and summary["model"] == "tiny"
        assert summary["outputs"]["labels"].endswith(f"{stem}_labels.png")
        if stem != "gray":  # gray has no red or green: all background
            assert (labels[:, :14] == PERSON).all() and (labels[:, 18:] == CAT).all(), stem
            assert set(summary["classes"]) >= {"person", "cat"}
    assert np.asarray(Image.open(out / "gray_labels.png")).max() == 0


def test_all_good_exits_0_and_prints_classes(model, tmp_path, capsys):
    img = tmp_path / "a.png"
    Image.fromarray(halves(8, 8)).save(img)
    assert main(["segment", str(img), "--model", str(model), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "a.png" in out and "person" in out and "cat" in out


def test_missing_input_is_reported_and_the_rest_is_written(model, tmp_path, capsys):
    img = tmp_path / "a.png"
    Image.fromarray(halves(8, 8)).save(img)
    rc = main(["segment", str(tmp_path / "absent.jpg"), str(img), "--model", str(model), "--out", str(tmp_path / "o")])
    assert rc == 1
    assert "absent.jpg: no such file" in capsys.readouterr().err
    assert (tmp_path / "o" / "a_labels.png").exists()


@pytest.mark.parametrize("fmt, files", [("npy", {"a_labels.npy", "a.json"}), ("json", {"a.json"})])
def test_formats(model, tmp_path, fmt, files):
    img = tmp_path / "a.png"
    Image.fromarray(halves(8, 8)).save(img)
    out = tmp_path / "o"
    assert main(["segment", str(img), "--model", str(model), "--out", str(out), "--format", fmt, "-q"]) == 0
    assert {p.name for p in out.iterdir()} == files
    if fmt == "npy":
        labels = np.load(out / "a_labels.npy")
        assert labels.dtype == np.uint8 and labels.shape == (8, 8) and labels[0, 0] == PERSON


def test_same_stem_from_two_folders(model, tmp_path):
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        Image.fromarray(halves(8, 8)).save(tmp_path / d / "img.png")
    out = tmp_path / "o"
    assert main(["segment", str(tmp_path / "x"), str(tmp_path / "y"), "--model", str(model), "--out", str(out),
                 "-q"]) == 0
    assert {p.name for p in out.iterdir()} == {"img_labels.png", "img.json", "img-2_labels.png", "img-2.json"}
    assert json.loads((out / "img-2.json").read_text())["image"].endswith("y/img.png")


def test_an_input_is_never_overwritten(model, tmp_path, capsys):
    # A PNG named like the summary this run would write for it, in the output folder itself.
    sneaky = tmp_path / "photo.json"
    Image.fromarray(halves(8, 8)).save(sneaky, format="PNG")
    before = sneaky.read_bytes()
    assert main(["segment", str(sneaky), "--model", str(model), "--out", str(tmp_path)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert sneaky.read_bytes() == before


def test_outputs_are_atomic(model, tmp_path, monkeypatch, capsys):
    """A write that fails half-way leaves the previous file and no temporary file; the image is reported."""
    img = tmp_path / "a.png"
    Image.fromarray(halves(8, 8)).save(img)
    out = tmp_path / "o"
    out.mkdir()
    (out / "a_overlay.png").write_bytes(b"old overlay")
    real_save = Image.Image.save

    def failing_save(self, fp, format=None, **kw):
        if self.mode == "RGB":  # the overlay
            fp.write(b"partial")
            raise OSError("No space left on device")
        return real_save(self, fp, format=format, **kw)

    monkeypatch.setattr(Image.Image, "save", failing_save)
    rc = main(["segment", str(img), "--model", str(model), "--out", str(out), "--overlay"])
    assert rc == 1
    assert "a.png" in capsys.readouterr().err
    assert (out / "a_overlay.png").read_bytes() == b"old overlay"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert not (out / "a.json").exists()  # the summary comes last: it says the image is done


def test_keep_aspect_option(model, tmp_path):
    img = tmp_path / "wide.png"
    wide = np.zeros((10, 40, 3), np.uint8)
    wide[:] = RED
    wide[:, 30:] = GREEN
    Image.fromarray(wide).save(img)
    out = tmp_path / "o"
    assert main(["segment", str(img), "--model", str(model), "--out", str(out), "--keep-aspect", "-q"]) == 0
    labels = np.asarray(Image.open(out / "wide_labels.png"))
    assert labels.shape == (10, 40) and (labels[:, :26] == PERSON).all() and (labels[:, 34:] == CAT).all()
    assert json.loads((out / "wide.json").read_text())["keep_aspect"] is True


def test_jobs_in_parallel_processes(model, tmp_path):
    images = tmp_path / "in"
    images.mkdir()
    for i in range(3):
        Image.fromarray(halves(8, 8 + 2 * i)).save(images / f"i{i}.png")
    (images / "bad.jpg").write_bytes(b"junk")
    out = tmp_path / "o"
    assert main(["segment", str(images), "--model", str(model), "--out", str(out), "--jobs", "2", "-q"]) == 1
    assert {p.name for p in out.iterdir()} == {f"i{i}{s}" for i in range(3) for s in ("_labels.png", ".json")}


def test_unknown_model_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    img = tmp_path / "a.png"
    Image.fromarray(halves(8, 8)).save(img)
    assert main(["segment", str(img), "--model", "no_such_model"]) == 2
    assert "no_such_model" in capsys.readouterr().err


def test_empty_folder(tmp_path, capsys):
    assert main(["segment", str(tmp_path)]) == 1
    assert "no images" in capsys.readouterr().err


def test_real_model_overlay(tmp_path, model_path):
    img = require_data(data_dir() / "images" / "grace_hopper.bmp")
    out = tmp_path / "o"
    assert main(["segment", str(img), "--model", str(model_path("deeplabv3_257_mv_gpu")), "--out", str(out),
                 "--overlay", "-q"]) == 0
    summary = json.loads((out / "grace_hopper.json").read_text())
    assert list(summary["classes"])[0] == "person" and summary["model"] == "deeplabv3_257"
    with Image.open(out / "grace_hopper_overlay.png") as ov, Image.open(img) as photo:
        assert ov.size == photo.size and ov.mode == "RGB"
