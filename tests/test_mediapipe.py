"""The Segmenter against MediaPipe's ImageSegmenter on the shared models, at the image's resolution.

MediaPipe (``pip install mediapipe``, a test-only dependency) is an oracle independent of
pydeeplab and of LiteRT's Python API: its own preprocessing, TFLite runtime and
post-processing (category mask: argmax, or p > 0.5 for one channel; confidence masks resized
with OpenCV's INTER_LINEAR). Skipped when mediapipe is absent, failing under CI=true.
"""

import os

import numpy as np
import pytest

from pydeeplab import Segmenter
from pydeeplab.image import load_rgb


def require_mediapipe():
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"mediapipe is needed in CI: pip install 'pydeeplab[test]' ({exc})")
        pytest.skip(f"mediapipe is not installed ({exc})")
    return mp, BaseOptions, vision


def mediapipe_segment(model, image) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's (category mask HxW uint8, confidence masks [C, H, W] float32) for an image file."""
    mp, BaseOptions, vision = require_mediapipe()
    rgb = np.ascontiguousarray(load_rgb(image))
    options = vision.ImageSegmenterOptions(base_options=BaseOptions(model_asset_path=str(model)),
                                           output_category_mask=True, output_confidence_masks=True)
    with vision.ImageSegmenter.create_from_options(options) as segmenter:
        result = segmenter.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
    h, w = rgb.shape[:2]
    category = result.category_mask.numpy_view().reshape(h, w).copy()
    confidence = np.stack([m.numpy_view().reshape(h, w) for m in result.confidence_masks])
    return category, confidence


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_tf_hub_fp16_model_category_mask(model_path, image_path, backend):
    model = model_path("mobilenetv2_dm05_coco_fp16")
    image = image_path("voc/8_image.png")
    category, confidence = mediapipe_segment(model, image)
    seg = Segmenter(model, backend=backend)
    assert seg.info.sources["normalization"] == "metadata" and seg.info.sources["labels"] == "metadata"
    r = seg.segment(image)
    assert r.labels.shape == category.shape
    assert np.array_equal(r.labels, category), f"{np.count_nonzero(r.labels != category)} pixels differ"
    # Without segmenter metadata MediaPipe's confidence masks are the raw scores (activation NONE).
    ours = r.confidence("none")
    err = float(np.abs(ours - confidence).max())
    assert err <= 1e-4 * (1 + float(np.abs(confidence).max())), err
    assert len(np.unique(category)) >= 2  # a real scene, not an all-background image


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_selfie_segmenter_confidence_and_labels(model_path, image_path, backend):
    model = model_path("selfie_segmenter")
    image = image_path("grace_hopper.bmp")
    _, confidence = mediapipe_segment(model, image)
    assert confidence.shape == (1, 600, 512)
    # resample="bilinear" is MediaPipe's own resizing (OpenCV's fixed-point warp): the same input tensor.
    seg = Segmenter(model, backend=backend, resample="bilinear")
    assert seg.info.output == "probability" and seg.class_names == ("background", "selfie")
    r = seg.segment(image)
    ours = r.confidence_masks
    assert ours.shape == (2, 600, 512)
    err = float(np.abs(ours[1] - confidence[0]).max())
    assert err <= 1e-4, err
    assert np.array_equal(r.labels == 1, confidence[0] > 0.5)
    assert 0.1 < (r.labels == 1).mean() < 0.9  # a person and a background in the picture


def test_selfie_segmenter_default_resizing_is_close(model_path, image_path):
    # Pillow's low-pass resizing (the default) sees a slightly different input: labels differ at the edges only.
    model = model_path("selfie_segmenter")
    image = image_path("grace_hopper.bmp")
    _, confidence = mediapipe_segment(model, image)
    r = Segmenter(model).segment(image)
    assert np.mean((r.labels == 1) == (confidence[0] > 0.5)) > 0.99
