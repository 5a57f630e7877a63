"""Image loading (every color mode, EXIF orientation, bad files) and model-input preprocessing."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from pydeeplab.image import ImageError, letterbox, load_rgb, resize_labels, resize_rgb, to_model_input


def _quadrants(h=40, w=60) -> np.ndarray:
    """An RGB image whose four quadrants are red, green, blue and white: orientation is visible."""
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2, : w // 2] = (255, 0, 0)
    a[: h // 2, w // 2 :] = (0, 255, 0)
    a[h // 2 :, : w // 2] = (0, 0, 255)
    a[h // 2 :, w // 2 :] = (255, 255, 255)
    return a


def _save(tmp_path, im: Image.Image, name: str, **kw):
    p = tmp_path / name
    im.save(p, **kw)
    return p


def _png(width: int, height: int, bit_depth: int, color_type: int, rows: list[bytes]) -> bytes:
    """A PNG written by hand, for pixel formats Pillow cannot save (16-bit RGB/RGBA)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + r for r in rows)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


# -- color modes -----------------------------------------------------------------------------


def test_rgb_path_pil_and_array_agree(tmp_path):
    a = _quadrants()
    p = _save(tmp_path, Image.fromarray(a), "q.png")
    for source in (p, str(p), Image.fromarray(a), a):
        out = load_rgb(source)
        assert out.dtype == np.uint8 and out.shape == (40, 60, 3)
        np.testing.assert_array_equal(out, a)


@pytest.mark.parametrize("ext", ["png", "bmp", "tiff"])
def test_grayscale_file(tmp_path, ext):
    g = np.arange(0, 240, 4, dtype=np.uint8).reshape(6, 10)
    out = load_rgb(_save(tmp_path, Image.fromarray(g, "L"), f"g.{ext}"))
    np.testing.assert_array_equal(out, np.repeat(g[:, :, None], 3, axis=2))


def test_one_bit(tmp_path):
    bits = np.array([[0, 1], [1, 0]], bool)
    out = load_rgb(_save(tmp_path, Image.fromarray(bits).convert("1"), "b.png"))
    assert out[0, 0].tolist() == [0, 0, 0] and out[0, 1].tolist() == [255, 255, 255]


def test_rgba_is_composited_over_white(tmp_path):
    a = np.zeros((1, 3, 4), np.uint8)
    a[0, 0] = (255, 0, 0, 255)  # opaque red stays red
    a[0, 1] = (0, 0, 0, 0)  # fully transparent black shows as white
    a[0, 2] = (0, 0, 255, 128)  # half-transparent blue over white
    out = load_rgb(_save(tmp_path, Image.fromarray(a, "RGBA"), "a.png"))
    assert out[0, 0].tolist() == [255, 0, 0]
    assert out[0, 1].tolist() == [255, 255, 255]
    assert out[0, 2].tolist() == [127, 127, 255] or np.abs(out[0, 2].astype(int) - [127, 127, 255]).max() <= 1
    np.testing.assert_array_equal(load_rgb(a), out)  # an HxWx4 array is read the same way


def test_gray_alpha(tmp_path):
    la = Image.fromarray(np.array([[[10, 255], [10, 0]]], np.uint8), "LA")
    out = load_rgb(_save(tmp_path, la, "la.png"))
    assert out[0, 0].tolist() == [10, 10, 10] and out[0, 1].tolist() == [255, 255, 255]


def test_palette_with_and_without_transparency(tmp_path):
    p = Image.fromarray(np.array([[0, 1, 2]], np.uint8), "P")
    p.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    out = load_rgb(_save(tmp_path, p, "p.png"))
    assert out.tolist() == [[[255, 0, 0], [0, 255, 0], [0, 0, 255]]]
    out = load_rgb(_save(tmp_path, p, "pt.png", transparency=1))
    assert out.tolist() == [[[255, 0, 0], [255, 255, 255], [0, 0, 255]]]
    out = load_rgb(_save(tmp_path, p, "p.gif"))
    assert out.tolist() == [[[255, 0, 0], [0, 255, 0], [0, 0, 255]]]


@pytest.mark.parametrize("ext", ["jpg", "tiff"])
def test_cmyk(tmp_path, ext):
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # no black, full magenta+yellow: red
    out = load_rgb(_save(tmp_path, cmyk, f"c.{ext}"))
    assert out.shape == (8, 8, 3)
    assert out[..., 0].min() > 200 and out[..., 1:].max() < 60


def test_ycbcr():
    rgb = _quadrants()
    out = load_rgb(Image.fromarray(rgb).convert("YCbCr"))
    assert np.abs(out.astype(int) - rgb).max() <= 3


def test_16bit_gray_png_scales_the_full_range(tmp_path):
    g = np.array([[0, 65535, 32768, 257]], ">u2")
    p = tmp_path / "g16.png"
    p.write_bytes(_png(4, 1, 16, 0, [g.tobytes()]))
    assert Image.open(p).mode.startswith("I")
    assert load_rgb(p)[0, :, 0].tolist() == [0, 255, 128, 1]


def test_16bit_rgb_and_rgba_png(tmp_path):
    rgb = np.array([[[65535, 0, 32768], [256, 512, 1024]]], ">u2")
    p = tmp_path / "rgb16.png"
    p.write_bytes(_png(2, 1, 16, 2, [rgb.tobytes()]))
    assert load_rgb(p).tolist() == [[[255, 0, 128], [1, 2, 4]]]
    rgba = np.array([[[65535, 0, 0, 65535], [0, 0, 0, 0]]], ">u2")
    p = tmp_path / "rgba16.png"
    p.write_bytes(_png(2, 1, 16, 6, [rgba.tobytes()]))
    assert load_rgb(p).tolist() == [[[255, 0, 0], [255, 255, 255]]]


def test_32bit_integer_and_float_gray(tmp_path):
    small = Image.fromarray(np.array([[0, 100, 255]], np.int32), "I")
    assert load_rgb(small)[0, :, 0].tolist() == [0, 100, 255]  # values that fit 8 bits are kept
    big = Image.fromarray(np.array([[0, 65535]], np.int32), "I")
    assert load_rgb(_save(tmp_path, big, "i.tiff"))[0, :, 0].tolist() == [0, 255]
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32), "F")
    assert load_rgb(_save(tmp_path, unit, "f.tiff"))[0, :, 0].tolist() == [0, 128, 255]


def test_gray_arrays():
    g = np.array([[1, 2], [3, 4]], np.uint8)
    np.testing.assert_array_equal(load_rgb(g), np.repeat(g[:, :, None], 3, axis=2))
    np.testing.assert_array_equal(load_rgb(g[:, :, None]), np.repeat(g[:, :, None], 3, axis=2))


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 2), np.uint8),
                                 np.zeros((4,), np.uint8), np.zeros((0, 4, 3), np.uint8)])
def test_bad_arrays(bad):
    with pytest.raises(ImageError):
        load_rgb(bad)


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 255, 0))]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    out = load_rgb(p)
    assert out[0, 0, 0] > 200 and out[0, 0, 1] < 50


# -- EXIF orientation ---------------------------------------------------------------------------


@pytest.mark.parametrize("orientation, transpose", [
    (1, None),
    (3, Image.Transpose.ROTATE_180),
    (6, Image.Transpose.ROTATE_270),  # stored sideways: shown rotated 90 degrees clockwise
    (8, Image.Transpose.ROTATE_90),
    (2, Image.Transpose.FLIP_LEFT_RIGHT),
])
def test_exif_orientation_is_applied(tmp_path, orientation, transpose):
    stored = Image.fromarray(_quadrants())
    exif = Image.Exif()
    exif[0x0112] = orientation
    p = tmp_path / f"o{orientation}.jpg"
    stored.save(p, exif=exif, quality=95)
    expected = np.asarray(stored if transpose is None else stored.transpose(transpose)).astype(int)
    out = load_rgb(p)
    assert out.shape == expected.shape
    assert np.abs(out.astype(int) - expected).mean() < 6  # JPEG noise only
    # The same photo handed over as a PIL image is turned the same way.
    with Image.open(p) as im:
        np.testing.assert_array_equal(load_rgb(im), out)


def test_exif_orientation_in_png(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    p = tmp_path / "o6.png"
    Image.fromarray(_quadrants()).save(p, exif=exif)
    out = load_rgb(p)
    np.testing.assert_array_equal(out, np.asarray(Image.fromarray(_quadrants()).transpose(Image.Transpose.ROTATE_270)))


# -- bad files ----------------------------------------------------------------------------------


def test_truncated_file_is_named(tmp_path):
    good = io.BytesIO()
    Image.fromarray(_quadrants(200, 200)).save(good, "PNG")
    p = tmp_path / "broken.png"
    p.write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    with pytest.raises(ImageError, match="broken.png"):
        load_rgb(p)


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40,
                                     b"\xff\xd8\xff\xe0" + b"\x00" * 100])
def test_garbage_is_an_image_error(tmp_path, content):
    p = tmp_path / "garbage.jpg"
    p.write_bytes(content)
    with pytest.raises(ImageError, match="garbage.jpg"):
        load_rgb(p)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_rgb(tmp_path / "absent.png")
    with pytest.raises(ImageError, match="directory"):
        load_rgb(tmp_path)


def test_input_file_is_not_modified(tmp_path):
    p = _save(tmp_path, Image.fromarray(_quadrants()), "keep.png")
    before = p.read_bytes(), p.stat().st_mtime_ns
    load_rgb(p)
    assert (p.read_bytes(), p.stat().st_mtime_ns) == before


# -- resizing and preprocessing --------------------------------------------------------------------


def test_resize_rgb_and_identity():
    a = _quadrants()
    assert resize_rgb(a, 40, 60) is a
    out = resize_rgb(a, 20, 30)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    assert out[2, 2].tolist() == [255, 0, 0] and out[17, 27].tolist() == [255, 255, 255]


@pytest.mark.parametrize("shape, valid", [((40, 60), (11, 16)), ((60, 40), (16, 11)), ((10, 10), (16, 16)),
                                          ((1, 500), (1, 16))])
def test_letterbox(shape, valid):
    rgb = np.full(shape + (3,), 200, np.uint8)
    canvas, (rows, cols) = letterbox(rgb, 16, 16)
    assert canvas.shape == (16, 16, 3)
    assert (rows, cols) == valid
    assert (canvas[:rows, :cols] == 200).all()
    assert (canvas[rows:] == 128).all() and (canvas[:, cols:] == 128).all()


def test_float_input_normalization():
    rgb = np.array([[[0, 127, 255]]], np.uint8)
    x = to_model_input(rgb, np.float32)
    assert x.shape == (1, 1, 1, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0, 0, 0], (np.array([0, 127, 255], np.float32) - 127.5) / 127.5)
    x = to_model_input(rgb, np.float32, mean=(0, 127, 255), std=(1, 2, 5))
    np.testing.assert_array_equal(x[0, 0, 0], [0, 0, 0])


def test_uint8_input_is_raw_and_int8_is_quantized():
    rgb = np.array([[[0, 128, 255]]], np.uint8)
    u = to_model_input(rgb, np.uint8)
    assert u.dtype == np.uint8 and u.tolist() == [[[[0, 128, 255]]]]
    u[...] = 7
    assert rgb.tolist() == [[[0, 128, 255]]]  # a copy: the caller's image is untouched
    q = to_model_input(rgb, np.int8, (1 / 128, 0))
    assert q.dtype == np.int8 and q.tolist() == [[[[-128, 1, 127]]]]  # 128 -> 0.0039 -> 0.502 -> 1
    with pytest.raises(ImageError):
        to_model_input(rgb, np.int16)


def test_resize_labels_keeps_label_values():
    labels = np.array([[0, 3], [15, 255]], np.uint8)
    out = resize_labels(labels, 5, 7)
    assert out.shape == (5, 7) and out.dtype == np.uint8
    assert set(np.unique(out)) == {0, 3, 15, 255}
    assert out[0, 0] == 0 and out[-1, -1] == 255
    np.testing.assert_array_equal(resize_labels(out, 5, 7), out)


def test_resize_sampled_is_opencv_fixed_point_bilinear():
    from pydeeplab.image import resize_image, resize_sampled

    # Two columns 0 and 255 stretched to 8: samples at x * 2 / 8 = 0, 1/4, 1/2, 3/4, then the replicated edge.
    img = np.zeros((1, 2, 3), np.uint8)
    img[0, 1] = 255
    assert resize_sampled(img, 1, 8)[0, :, 0].tolist() == [0, 64, 128, 191, 255, 255, 255, 255]
    # 1/32-pixel positions: 3 columns to 7 samples at x * 3 / 7 (0.4286 -> 14/32), weights (32 - f) and f.
    img = np.zeros((1, 3, 3), np.uint8)
    img[0, :, 0] = (0, 100, 200)
    out = resize_sampled(img, 1, 7)[0, :, 0].tolist()
    positions = [round(x * 3 / 7 * 32) for x in range(7)]
    expected = []
    for p in positions:
        i, f = p >> 5, p & 31
        v0, v1 = img[0, min(i, 2), 0], img[0, min(i + 1, 2), 0]
        expected.append(((32 - f) * 32 * int(v0) + f * 32 * int(v1) + 512) >> 10)
    assert out == expected and out[1] == 44  # 14/32 of the way from 0 to 100 is 43.75
    same = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    assert resize_sampled(same, 2, 4) is same
    with pytest.raises(ValueError, match="resample"):
        resize_image(same, 3, 3, "cubic")
