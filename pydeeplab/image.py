"""Images in, model inputs out: decoding, orientation, color modes and preprocessing.

DeepLab's TFLite models take a fixed-size RGB image. Float models want pixels
mapped to [-1, 1] by ``(x - 127.5) / 127.5``; uint8 models take the raw bytes
(their input quantization, scale 1/128 and zero point 128, encodes the same
mapping).

Every image is first brought to 8-bit RGB (:func:`load_rgb`): EXIF orientation
applied, alpha composited over white (what an image viewer shows, rather than
the arbitrary colors stored under transparent pixels), 16-bit and float
grayscale scaled to 8 bits, palette, grayscale, 1-bit, CMYK and YCbCr converted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ImageLike = str | os.PathLike | Image.Image | np.ndarray

#: File extensions taken as images when a folder is given.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")

#: Gray used to pad a letterboxed image: DeepLab pads training crops with the mean
#: pixel 127.5, and 128 is exactly 0.0 for the uint8 models (zero point 128).
PAD_VALUE = 128


class ImageError(ValueError):
    """An image that cannot be read or converted; the message names the file."""


def load_rgb(image: ImageLike) -> np.ndarray:
    """Decode ``image`` into an HxWx3 uint8 RGB array.

    ``image`` is a path, a PIL image, or a uint8 array: HxWx3 (RGB, returned as
    is), HxW or HxWx1 (gray) or HxWx4 (RGBA). EXIF orientation is applied;
    palette, grayscale, 1-bit, RGBA/LA/PA (composited over white), CMYK, YCbCr
    and 16-bit/32-bit/float images are converted to 8-bit RGB; an animated image
    gives its first frame. Raises :class:`ImageError` naming the file otherwise.
    """
    if isinstance(image, np.ndarray):
        return _array_to_rgb(image)
    if isinstance(image, Image.Image):
        return _pil_to_rgb(image, "image")
    path = Path(image)
    try:
        with Image.open(path) as im:
            im.seek(0)
            im.load()  # decode here, so that a truncated file is reported as unreadable, not as unconvertible
            return _pil_to_rgb(im, str(path))
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory, not an image") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: refused, too many pixels ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # Pillow reports bad data as any of these
        raise ImageError(f"{path}: not a readable image ({exc})") from None


def _array_to_rgb(a: np.ndarray) -> np.ndarray:
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise ImageError(f"an image array must be HxWx3 uint8 (or HxW, HxWx1, HxWx4 uint8), "
                         f"got shape {a.shape} dtype {a.dtype}")
    if a.size == 0:
        raise ImageError(f"an image array must not be empty, got shape {a.shape}")
    if a.ndim == 3 and a.shape[2] == 3:
        return np.ascontiguousarray(a)
    if a.ndim == 3 and a.shape[2] == 4:
        return _pil_to_rgb(Image.fromarray(np.ascontiguousarray(a), "RGBA"), "image array")
    gray = a.reshape(a.shape[0], a.shape[1])
    return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))


def _gray_to_8bit(im: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer or float grayscale to 8-bit "L", scaling the range rather than clipping.

    The range is guessed from the mode and the values: I;16 is 0..65535; float
    in [0, 1] is 0..1; otherwise 0..255 when every value fits, else 0..65535.
    """
    a = np.asarray(im, dtype=np.float64)
    peak = float(a.max()) if a.size else 0.0
    if im.mode.startswith("I;16"):
        top = 65535.0
    elif im.mode == "F" and peak <= 1.0:
        top = 1.0
    elif peak <= 255.0:
        top = 255.0
    else:
        top = max(65535.0, peak)
    return Image.fromarray(np.clip(a * (255.0 / top) + 0.5, 0, 255).astype(np.uint8), "L")


def _pil_to_rgb(im: Image.Image, name: str) -> np.ndarray:
    try:
        im = ImageOps.exif_transpose(im)
        if im.mode.startswith("I;16") or im.mode in ("I", "F"):
            im = _gray_to_8bit(im)
        if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im = Image.alpha_composite(white, rgba).convert("RGB")
        elif im.mode != "RGB":
            im = im.convert("RGB")
        rgb = np.asarray(im, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{name}: cannot convert a {im.mode} image to RGB ({exc})") from None
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
        raise ImageError(f"{name}: cannot convert to RGB (shape {rgb.shape})")
    return rgb


def resize_rgb(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of an HxWx3 uint8 image to (height, width).

    Pillow's bilinear filter widens its support when shrinking (it averages every
    source pixel under an output pixel instead of sampling four), so large
    photos are not aliased on their way to a 257x257 input.
    """
    if rgb.shape[:2] == (height, width):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.BILINEAR), dtype=np.uint8)


#: How :func:`resize_image` resamples: ``antialias`` (Pillow's bilinear, which widens its support when
#: shrinking) or ``bilinear`` (four-tap sampling, as OpenCV's warps and so MediaPipe and TFLite Support do).
RESAMPLE_METHODS = ("antialias", "bilinear")


def resize_sampled(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an HxWx3 uint8 image by bilinear sampling, bit for bit as MediaPipe's ImageSegmenter does.

    MediaPipe maps the image's corners onto the tensor's corners and warps with
    OpenCV (``warpPerspective``, ``INTER_LINEAR``, replicated border): output
    pixel (x, y) samples the source at (x * W / width, y * H / height), in pixel
    index coordinates (no half-pixel shift, no low-pass filter). OpenCV rounds
    the source position to 1/32 pixel and weighs the four neighbors with
    integers that sum to 1024 (products of 32 - f and f), then rounds the
    weighted sum: ``(sum + 512) >> 10``.
    """
    h, w = rgb.shape[:2]
    if (h, w) == (height, width):
        return rgb

    def taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Position in 1/32 pixel, rounded half away from zero like OpenCV's saturate_cast (never negative here).
        pos = (np.arange(n_out, dtype=np.int64) * n_in * 64 + n_out) // (2 * n_out)
        i0, frac = pos >> 5, pos & 31
        return np.minimum(i0, n_in - 1), np.minimum(i0 + 1, n_in - 1), frac

    y0, y1, fy = taps(h, height)
    x0, x1, fx = taps(w, width)
    src = rgb.astype(np.int64)
    wx0, wx1 = (32 - fx)[None, :, None], fx[None, :, None]
    top = src[y0][:, x0] * wx0 + src[y0][:, x1] * wx1
    bottom = src[y1][:, x0] * wx0 + src[y1][:, x1] * wx1
    total = top * (32 - fy)[:, None, None] + bottom * fy[:, None, None]
    return ((total + 512) >> 10).astype(np.uint8)


def resize_image(rgb: np.ndarray, height: int, width: int, resample: str = "antialias") -> np.ndarray:
    """Resize an HxWx3 uint8 image with one of :data:`RESAMPLE_METHODS`."""
    if resample == "antialias":
        return resize_rgb(rgb, height, width)
    if resample == "bilinear":
        return resize_sampled(rgb, height, width)
    raise ValueError(f"resample must be one of {', '.join(RESAMPLE_METHODS)}, not {resample!r}")


def resize_labels(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbor resize of an HxW label map (values 0..255) to uint8 [height, width].

    Pillow's NEAREST filter: each output pixel takes the source pixel under its
    center (about ``floor((i + 0.5) * n_in / n_out)``), which keeps the map centered.
    """
    labels = np.asarray(labels)
    if labels.shape == (height, width):
        return labels.astype(np.uint8, copy=False)
    return np.asarray(Image.fromarray(labels.astype(np.uint8)).resize((width, height), Image.NEAREST))


def letterbox(rgb: np.ndarray, height: int, width: int, pad_value: int = PAD_VALUE,
              resample: str = "antialias") -> tuple[np.ndarray, tuple[int, int]]:
    """Fit an HxWx3 uint8 image into (height, width) keeping its aspect ratio.

    The image is resized (bilinear) as large as fits and placed in the top-left
    corner; the rest is ``pad_value`` gray (see :data:`PAD_VALUE`). Returns the
    (height, width, 3) uint8 canvas and the (rows, cols) of the image inside it,
    the region of the model's output to keep. ``resample``: see :func:`resize_image`.
    """
    h, w = rgb.shape[:2]
    scale = min(height / h, width / w)
    rows = min(height, max(1, round(h * scale)))
    cols = min(width, max(1, round(w * scale)))
    canvas = np.full((height, width, 3), pad_value, dtype=np.uint8)
    canvas[:rows, :cols] = resize_image(rgb, rows, cols, resample)
    return canvas, (rows, cols)


def to_model_input(
    rgb: np.ndarray,
    dtype: np.dtype,
    quantization: tuple[float, int] = (0.0, 0),
    mean: float | Sequence[float] = 127.5,
    std: float | Sequence[float] = 127.5,
) -> np.ndarray:
    """Turn an HxWx3 uint8 image (already at the model's size) into a [1,H,W,3] input tensor.

    float32: ``(x - mean) / std`` (per channel when ``mean``/``std`` have three
    values; DeepLab's default 127.5/127.5 maps to [-1, 1]). uint8: the raw bytes,
    as the Coral/TFLite uint8 DeepLab models expect. int8: the normalized value
    quantized with the input's own scale and zero point.
    """
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return rgb[None].copy()
    m = np.asarray(mean, dtype=np.float32)
    s = np.asarray(std, dtype=np.float32)
    x = (rgb[None].astype(np.float32) - m) / s
    if dtype == np.float32:
        return x
    if dtype == np.int8:
        scale, zero_point = quantization
        if not scale:
            raise ImageError("an int8 model input needs a quantization scale")
        q = np.round(x / np.float32(scale)) + zero_point
        return np.clip(q, -128, 127).astype(np.int8)
    raise ImageError(f"no image preprocessing for model input type {dtype}")
