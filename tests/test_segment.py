"""Segmenter and Segmentation: pre/post-processing on tiny synthetic models, then the real models.

The tiny models (built with pydeeplab's ModelBuilder) run in microseconds and have
outputs known by construction, so every step around the interpreter (resizing,
letterboxing, upsampling, metadata, outputs) is checked exactly.
"""

import io
import json
import zipfile

import numpy as np
import pytest
from oracle import data_dir, require_data
from PIL import Image

from pydeeplab import Segmentation, Segmenter
from pydeeplab import segment as segment_module
from pydeeplab.image import ImageError
from pydeeplab.palette import pascal_color_map
from pydeeplab.segment import _bilinear_axis, upsample_argmax
from pydeeplab.tflite.options import ArgMaxOptions, Conv2DOptions, ReshapeOptions
from pydeeplab.tflite.schema import BuiltinOperator, Padding, TensorType
from pydeeplab.tflite.writer import ModelBuilder

PERSON, CAT, BIRD = 15, 8, 3
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def tiny_logits_model(size: int = 16, stride: int = 2, metadata: bytes | None = None,
                      files: dict[str, str] | None = None) -> bytes:
    """float32 [1,size,size,3] -> CONV_2D 1x1 (stride) -> logits [1,size/stride,size/stride,21].

    With the default normalization x' = (x - 127.5) / 127.5: person scores R', cat G',
    background a constant 0.25, every other class -5. So red is person, green cat,
    blue, gray or dark red background.
    """
    b = ModelBuilder(description="tiny segmenter")
    x = b.add_tensor("image", TensorType.FLOAT32, (1, size, size, 3))
    w = np.zeros((21, 1, 1, 3), np.float32)
    bias = np.full(21, -5.0, np.float32)
    w[PERSON, 0, 0, 0], bias[PERSON] = 1.0, 0.0
    w[CAT, 0, 0, 1], bias[CAT] = 1.0, 0.0
    bias[0] = 0.25
    out = -(-size // stride)
    y = b.add_tensor("logits", TensorType.FLOAT32, (1, out, out, 21))
    b.add_operator(BuiltinOperator.CONV_2D, [x, b.add_constant("w", w), b.add_constant("b", bias)], [y],
                   Conv2DOptions(padding=Padding.SAME, stride_w=stride, stride_h=stride))
    b.set_inputs([x])
    b.set_outputs([y])
    if metadata is not None:
        b.add_metadata("TFLITE_METADATA", metadata)
    data = b.finish()
    if files:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for name, text in files.items():
                z.writestr(name, text)
        data += buf.getvalue()
    return data


def tiny_labels_model(size: int = 8) -> bytes:
    """uint8 [1,size,size,3] -> ARG_MAX over channels -> int64 labels [1,size,size]:
    red 0 (background), green 1 (aeroplane), blue 2 (bicycle)."""
    b = ModelBuilder()
    x = b.add_tensor("image", TensorType.UINT8, (1, size, size, 3))
    axis = b.add_constant("axis", np.array([3], np.int32))
    y = b.add_tensor("labels", TensorType.INT64, (1, size, size))
    b.add_operator(BuiltinOperator.ARG_MAX, [x, axis], [y], ArgMaxOptions(output_type=TensorType.INT64))
    b.set_inputs([x])
    b.set_outputs([y])
    return b.finish()


def tiny_uint8_scores_model(size: int = 8) -> bytes:
    """uint8 [1,size,size,3] -> RESHAPE (identity) -> the pixels as uint8 scores of 3 classes."""
    from pydeeplab.tflite.model import Quantization

    q = Quantization(np.array([1 / 128], np.float32), np.array([128]))
    b = ModelBuilder()
    x = b.add_tensor("image", TensorType.UINT8, (1, size, size, 3), q)
    shape = b.add_constant("shape", np.array([1, size, size, 3], np.int32))
    y = b.add_tensor("scores", TensorType.UINT8, (1, size, size, 3), q)
    b.add_operator(BuiltinOperator.RESHAPE, [x, shape], [y], ReshapeOptions(new_shape=(1, size, size, 3)))
    b.set_inputs([x])
    b.set_outputs([y])
    return b.finish()


def write(tmp_path, name: str, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.fixture
def logits_model(tmp_path):
    return write(tmp_path, "tiny_logits.tflite", tiny_logits_model())


def halves(h: int, w: int, left=RED, right=GREEN) -> np.ndarray:
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2] = left
    a[:, w // 2 :] = right
    return a


# -- upsampling -------------------------------------------------------------------------------------


def _dense_bilinear(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Half-pixel bilinear resize written per output pixel: the definition upsample_argmax follows."""
    h, w, _ = x.shape
    out = np.empty((height, width, x.shape[2]))
    for i in range(height):
        sy = min(max((i + 0.5) * h / height - 0.5, 0), h - 1)
        y0 = int(np.floor(sy))
        y1, fy = min(y0 + 1, h - 1), sy - y0
        for j in range(width):
            sx = min(max((j + 0.5) * w / width - 0.5, 0), w - 1)
            x0 = int(np.floor(sx))
            x1, fx = min(x0 + 1, w - 1), sx - x0
            top = x[y0, x0] * (1 - fx) + x[y0, x1] * fx
            bottom = x[y1, x0] * (1 - fx) + x[y1, x1] * fx
            out[i, j] = top * (1 - fy) + bottom * fy
    return out


@pytest.mark.parametrize("shape, size", [((5, 7, 4), (23, 17)), ((9, 9, 21), (4, 6)), ((3, 3, 2), (3, 3))])
def test_upsample_argmax_matches_the_definition(shape, size, monkeypatch):
    monkeypatch.setattr(segment_module, "_STRIP_BYTES", 64)  # many strips: their seams are covered too
    rng = np.random.default_rng(7)
    logits = rng.standard_normal(shape).astype(np.float32)
    ref = _dense_bilinear(logits.astype(np.float64), *size)
    out = upsample_argmax(logits, *size)
    assert out.shape == size and out.dtype == np.uint8
    # Equal except where two classes tie within float32 rounding.
    top2 = np.sort(ref, axis=-1)[..., -2:]
    clear = (top2[..., 1] - top2[..., 0]) > 1e-5
    np.testing.assert_array_equal(out[clear], ref.argmax(-1)[clear])


def test_bilinear_axis_identity_and_edges():
    i0, i1, f = _bilinear_axis(5, 5)
    np.testing.assert_array_equal(i0, np.arange(5))
    assert (f == 0).all()
    i0, i1, f = _bilinear_axis(2, 4)  # src = -0.25, 0.25, 0.75, 1.25 -> clamped at both ends
    assert i0.tolist() == [0, 0, 0, 1] and i1.tolist() == [1, 1, 1, 1]
    np.testing.assert_allclose(f, [0, 0.25, 0.75, 0])


# -- a float logits model -----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_logits_model_at_the_image_resolution(logits_model, tmp_path, backend):
    seg = Segmenter(logits_model, backend=backend)
    assert seg.info.output == "logits" and seg.input_size == (16, 16) and seg.output_size == (8, 8)
    assert seg.class_names[PERSON] == "person" and len(seg.class_names) == 21
    img = halves(30, 50)
    Image.fromarray(img).save(tmp_path / "h.png")
    results = [seg.segment(src) for src in (img, Image.fromarray(img), tmp_path / "h.png", str(tmp_path / "h.png"))]
    for r in results:
        assert isinstance(r, Segmentation)
        assert r.labels.shape == (30, 50) and r.labels.dtype == np.uint8
        np.testing.assert_array_equal(r.labels, results[0].labels)
    r = results[0]
    assert (r.labels[:, :24] == PERSON).all() and (r.labels[:, 26:] == CAT).all()
    # Where red meets green the two scores cross below background's 0.25: a thin seam.
    assert set(np.unique(r.labels)) == {0, PERSON, CAT} and (r.labels == 0).sum() <= 2 * 30
    assert r.logits.shape == (8, 8, 21) and r.logits.dtype == np.float32
    np.testing.assert_array_equal(r.model_labels, r.logits.argmax(-1))
    fractions = r.class_fractions()
    assert list(fractions)[:2] in (["person", "cat"], ["cat", "person"]) and sum(fractions.values()) == pytest.approx(1.0)
    assert abs(fractions["person"] - 0.5) <= 0.04
    assert results[2].source == str(tmp_path / "h.png") and r.source is None
    assert set(r.timings) == {"decode", "preprocess", "invoke", "postprocess", "total"}


def test_default_normalization_is_minus_one_to_one(logits_model):
    # Dark red (100, 0, 0) -> R' = -0.22 < 0.25: background with (x - 127.5) / 127.5.
    seg = Segmenter(logits_model).segment(np.full((4, 4, 3), (100, 0, 0), np.uint8))
    assert (seg.labels == 0).all()


def test_keep_aspect_crops_the_padding(logits_model):
    seg = Segmenter(logits_model)
    wide = np.zeros((20, 80, 3), np.uint8)
    wide[:] = RED
    wide[:, 60:] = GREEN
    stretched = seg.segment(wide)
    kept = seg.segment(wide, keep_aspect=True)
    for r in (stretched, kept):
        assert r.labels.shape == (20, 80)
    # The gray padding below the letterboxed image is background; none of it may leak back.
    assert set(np.unique(kept.labels)) <= {0, PERSON, CAT} and (kept.labels == 0).sum() <= 8 * 20
    assert kept.model_labels.shape == (2, 8)  # 4 of 16 input rows hold the image: 2 of 8 output rows
    assert (kept.labels[:, :56] == PERSON).all() and (kept.labels[:, 64:] == CAT).all()
    assert Segmenter(seg.path, keep_aspect=True).segment(wide).model_labels.shape == (2, 8)


def test_exif_rotated_photo_gives_rotated_labels(logits_model, tmp_path):
    stored = Image.fromarray(halves(20, 40))  # red left, green right as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: red on top
    stored.save(tmp_path / "r.jpg", exif=exif, quality=95)
    r = Segmenter(logits_model).segment(tmp_path / "r.jpg")
    assert r.labels.shape == (40, 20)
    assert (r.labels[:15] == PERSON).all() and (r.labels[25:] == CAT).all()


def test_bad_image_is_an_image_error(logits_model, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ImageError, match="bad.png"):
        Segmenter(logits_model).segment(tmp_path / "bad.png")


# -- label-only and quantized-score models ---------------------------------------------------------------


def test_labels_model_is_upsampled_by_nearest(tmp_path):
    seg = Segmenter(write(tmp_path, "labels.tflite", tiny_labels_model()))
    assert seg.info.output == "labels" and seg.info.input_dtype == "uint8"
    img = np.zeros((8, 8, 3), np.uint8)
    img[:4] = RED
    img[4:, :4] = GREEN
    img[4:, 4:] = BLUE
    r = seg.segment(np.asarray(Image.fromarray(img).resize((24, 16), Image.NEAREST)))
    assert r.logits is None and r.labels.shape == (16, 24)
    expected = np.zeros((16, 24), np.uint8)
    expected[8:, :12] = 1
    expected[8:, 12:] = 2
    np.testing.assert_array_equal(r.labels, expected)
    np.testing.assert_array_equal(r.model_labels, expected[::2, ::3])
    assert r.class_fractions() == {"background": 0.5, "aeroplane": 0.25, "bicycle": 0.25}


def test_uint8_scores_are_dequantized_logits(tmp_path):
    seg = Segmenter(write(tmp_path, "scores.tflite", tiny_uint8_scores_model()))
    assert seg.info.output == "logits" and seg.class_names == ("class_0", "class_1", "class_2")
    r = seg.segment(np.full((8, 8, 3), (10, 200, 30), np.uint8))
    assert (r.labels == 1).all()
    assert r.logits.dtype == np.float32 and r.logits[0, 0].tolist() == [(10 - 128) / 128, (200 - 128) / 128,
                                                                        (30 - 128) / 128]


# -- TFLite metadata ---------------------------------------------------------------------------------------


def test_metadata_names_and_normalization_are_used(tmp_path):
    from test_models import LABELS, metadata_buffer

    data = tiny_logits_model(metadata=metadata_buffer(mean=(0.0,), std=(255.0,)), files={"labels.txt": LABELS})
    seg = Segmenter(write(tmp_path, "meta.tflite", data))
    assert seg.class_names == tuple(f"m{i}" for i in range(21))
    assert (seg.info.mean, seg.info.std) == ((0.0,), (255.0,))
    # Dark red with x / 255: R' = 0.39 > 0.25, person (background under the default normalization).
    r = seg.segment(np.full((4, 4, 3), (100, 0, 0), np.uint8))
    assert (r.labels == PERSON).all() and r.class_fractions() == {"m15": 1.0}


def test_metadata_with_too_few_names_is_completed(tmp_path):
    from test_models import metadata_buffer

    data = tiny_logits_model(metadata=metadata_buffer(), files={"labels.txt": "a\nb\n"})
    seg = Segmenter(write(tmp_path, "meta.tflite", data))
    assert seg.class_names[:3] == ("a", "b", "class_2") and len(seg.class_names) == 21


# -- the Segmentation's outputs -----------------------------------------------------------------------------


@pytest.fixture
def result(logits_model) -> Segmentation:
    img = halves(12, 20, left=RED, right=BLUE)
    img[:, 15:] = GREEN
    return Segmenter(logits_model).segment(img)


def test_color_mask_and_label_image(result):
    cmap = pascal_color_map()
    mask = np.asarray(result.color_mask())
    assert result.color_mask().mode == "RGB" and mask.shape == (12, 20, 3)
    np.testing.assert_array_equal(mask, cmap[result.labels])
    assert cmap[PERSON].tolist() == [192, 128, 128] and cmap[CAT].tolist() == [64, 0, 0]
    assert cmap[255].tolist() == [224, 224, 192]
    p = result.label_image()
    assert p.mode == "P"
    np.testing.assert_array_equal(np.asarray(p), result.labels)
    assert p.getpalette()[: 3 * 21] == cmap[:21].ravel().tolist()


def test_overlay_blends_objects_and_keeps_background(result):
    photo = result.image.astype(np.float64)
    for alpha in (0.0, 0.3, 1.0):
        ov = np.asarray(result.overlay(alpha)).astype(np.float64)
        assert ov.shape == photo.shape
        bg = result.labels == 0
        assert bg.any() and (~bg).any()
        np.testing.assert_array_equal(ov[bg], photo[bg])
        tint = pascal_color_map()[result.labels].astype(np.float64)
        expected = np.floor(photo * (1 - alpha) + tint * alpha + 0.5)
        assert np.abs(ov[~bg] - expected[~bg]).max() <= 1
    with pytest.raises(ValueError):
        result.overlay(1.5)


def test_save_png_npy_json(result, tmp_path):
    p = result.save(tmp_path / "l.png")
    with Image.open(p) as im:
        assert im.mode == "P"
        np.testing.assert_array_equal(np.asarray(im), result.labels)
    np.testing.assert_array_equal(np.load(result.save(tmp_path / "l.npy")), result.labels)
    summary = json.loads(result.save(tmp_path / "s.json").read_text())
    assert summary["model"] == "tiny_logits" and (summary["width"], summary["height"]) == (20, 12)
    assert set(summary["classes"]) == {"person", "background", "cat"}
    assert summary["class_ids"] == {"person": PERSON, "background": 0, "cat": CAT}
    assert sum(summary["classes"].values()) == pytest.approx(1.0, abs=1e-5)
    result.save(tmp_path / "noext", format="npy")
    with pytest.raises(ValueError, match="unknown output format"):
        result.save(tmp_path / "x.gif")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_save_is_atomic(result, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    target = out / "l.png"
    target.write_bytes(b"previous result")

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"half a PNG")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        result.save(target)
    assert target.read_bytes() == b"previous result"
    assert [p.name for p in out.iterdir()] == ["l.png"]  # no temporary file left behind


# -- the real models ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def float257(model_path):
    return Segmenter(model_path("deeplabv3_257_mv_gpu"))


@pytest.mark.parametrize("image, cls, share", [("grace_hopper.bmp", "person", 0.5), ("cat.bmp", "cat", 0.3),
                                               ("bird_segmentation.bmp", "bird", 0.15)])
def test_real_images_with_the_257_model(float257, image, cls, share):
    path = require_data(data_dir() / "images" / image)
    r = float257.segment(path)
    with Image.open(path) as im:
        assert r.labels.shape == (im.height, im.width)
    assert r.logits.shape == (257, 257, 21)
    fractions = r.class_fractions()
    objects = {k: v for k, v in fractions.items() if k != "background"}
    assert max(objects, key=objects.get) == cls, fractions
    assert fractions[cls] > share, fractions
    assert r.overlay(0.5).size == (r.labels.shape[1], r.labels.shape[0])


def test_model_by_name_through_the_data_variable(monkeypatch, model_path):
    folder = model_path("deeplabv3_mnv2_dm05_pascal_quant").parent.parent  # the data folder, models/ inside
    monkeypatch.setenv("PYDEEPLAB_DATA", str(folder))
    seg = Segmenter("deeplabv3_mnv2_dm05_pascal_quant")
    assert seg.info.name == "deeplabv3_mnv2_dm05_pascal_quant" and seg.info.output == "labels"
    assert seg.input_size == (513, 513) and seg.class_names[BIRD] == "bird"
