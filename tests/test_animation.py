"""Animated input: a GIF (or a folder of numbered frames) in, an animated overlay GIF and per-frame labels out."""

import json

import numpy as np
import pytest
from dataset_fixtures import BLUE, GREEN, RED, stripes, tiny_model
from PIL import Image, ImageSequence

from pydeeplab.animation import GifWriter, frames_clip, is_animated, open_clip, read_clip
from pydeeplab.cli import main
from pydeeplab.image import ImageError

PERSON, CAT = 15, 8


@pytest.fixture
def model(tmp_path):
    p = tmp_path / "tiny21.tflite"
    p.write_bytes(tiny_model(21, red=PERSON, green=CAT))
    return p


FRAMES = [[RED, BLUE], [RED, BLUE], [GREEN, BLUE], [BLUE, RED]]  # frames 0 and 1 are the same picture
DURATIONS = [80, 120, 200, 60]


def expected_labels(colors, h=12, w=20):
    ids = {RED: PERSON, GREEN: CAT, BLUE: 0}
    return stripes(h, w, [(ids[c], 0, 0) for c in colors])[..., 0]


def read_gif(path):
    with Image.open(path) as im:
        frames = [(np.asarray(f.convert("RGB")), f.info["duration"]) for f in ImageSequence.Iterator(im)]
        return frames, im.info.get("loop")


def test_gif_in_animated_gif_out(tmp_path, model, capsys):
    frames = [Image.fromarray(stripes(12, 20, colors)) for colors in FRAMES]
    # Pillow's encoder would fold the two equal frames into one: the input is written with our writer.
    writer = GifWriter()
    for f in frames:
        writer.add(f)
    writer.save(tmp_path / "clip.gif", DURATIONS, loop=0)
    assert open_clip(tmp_path / "clip.gif").durations == tuple(DURATIONS) and is_animated(tmp_path / "clip.gif")

    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "clip.gif"), "--model", str(model), "--out", str(out), "-q"]) == 0
    overlay, loop = read_gif(out / "clip_overlay.gif")
    assert len(overlay) == 4 and [d for _, d in overlay] == DURATIONS and loop == 0
    for k, colors in enumerate(FRAMES):
        labels = np.asarray(Image.open(out / "clip_labels" / f"frame_{k:04d}.png"))
        np.testing.assert_array_equal(labels, expected_labels(colors), err_msg=f"frame {k}")
        # The overlay tints objects and leaves background untouched: the blue stripe stays pure blue.
        rgb = overlay[k][0]
        background = labels == 0
        assert (rgb[background] == BLUE).all(), k
        assert not (rgb[~background] == np.asarray(frames[k])[~background]).all(axis=-1).any(), k
    np.testing.assert_array_equal(overlay[0][0], overlay[1][0])  # the equal frames stayed two frames
    summary = json.loads((out / "clip.json").read_text())
    assert summary["frames"] == 4 and summary["durations_ms"] == DURATIONS
    assert [f["classes"] for f in summary["per_frame"]][2] == {"background": 0.5, "cat": 0.5}


def test_folder_of_numbered_frames(tmp_path, model):
    folder = tmp_path / "frames"
    folder.mkdir()
    # Numeric order, not name order: 2 before 10.
    for number, colors in ((1, [RED, BLUE]), (10, [BLUE, GREEN]), (2, [GREEN, BLUE])):
        Image.fromarray(stripes(12, 20, colors)).save(folder / f"frame_{number}.png")
    out = tmp_path / "out"
    assert main(["segment", str(folder), "--clip", "--frame-ms", "40", "--format", "npy", "--model", str(model),
                 "--out", str(out), "-q"]) == 0
    overlay, _ = read_gif(out / "frames_overlay.gif")
    assert [d for _, d in overlay] == [40, 40, 40]
    for k, colors in enumerate([[RED, BLUE], [GREEN, BLUE], [BLUE, GREEN]]):
        np.testing.assert_array_equal(np.load(out / "frames_labels" / f"frame_{k:04d}.npy"), expected_labels(colors))


def test_frames_folder_errors(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(ImageError, match="no image files"):
        frames_clip(tmp_path / "a")
    Image.new("RGB", (4, 4)).save(tmp_path / "a" / "cover.png")
    with pytest.raises(ImageError, match="must hold its number"):
        frames_clip(tmp_path / "a")
    (tmp_path / "a" / "cover.png").unlink()
    Image.new("RGB", (4, 4)).save(tmp_path / "a" / "f01.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "a" / "f1.jpg")
    with pytest.raises(ImageError, match="both are frame 1"):
        frames_clip(tmp_path / "a")


def test_gif_writer_keeps_equal_frames_and_colors(tmp_path):
    a = stripes(6, 9, [RED, GREEN, BLUE])
    writer = GifWriter()
    for _ in range(3):
        writer.add(Image.fromarray(a))
    writer.save(tmp_path / "x.gif", [10, 20, 30], loop=None)
    clip = open_clip(tmp_path / "x.gif")
    assert clip.durations == (10, 20, 30) and clip.loop is None
    for frame in read_clip(clip):
        np.testing.assert_array_equal(frame, a)
