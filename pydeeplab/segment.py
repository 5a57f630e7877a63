"""Segmenter: an image in, a class label per pixel out, at the image's own resolution.

The pipeline around the TFLite model:

1. decode the image to 8-bit RGB (:func:`pydeeplab.image.load_rgb`: EXIF
   orientation, color modes);
2. resize it to the model's input (``resample``: Pillow's antialiased bilinear, or
   MediaPipe's bilinear sampling), or with ``keep_aspect`` fit it
   inside keeping its proportions and pad the rest (:func:`pydeeplab.image.letterbox`);
3. normalize (float models ``(x - mean) / std``, uint8 models raw bytes) and run
   :class:`pydeeplab.Interpreter`;
4. bring the result back to the image's size, by output kind
   (:data:`pydeeplab.models.OUTPUT_KINDS`): scores ([1,h,w,C] logits or
   probabilities) are upsampled bilinearly and then argmaxed (sharper edges
   than upsampling the labels); a one-channel foreground probability (or logit,
   through a sigmoid) is upsampled and thresholded at 0.5, as MediaPipe's
   ImageSegmenter does; class ids (ARG_MAX, ResizeArgmax; any integer type, with
   or without the batch dimension) are upsampled by nearest neighbor. With
   ``keep_aspect`` the padded part of the output is cropped off first.

Normalization, class names and the output kind come from the Segmenter's
arguments, else the model's TFLite metadata, else the manifest, else the
output tensor (:func:`pydeeplab.models.describe`).
:attr:`Segmentation.confidence_masks` gives per-class maps at the image's size.

Example::

    from pydeeplab import Segmenter
    seg = Segmenter("deeplabv3_257").segment("cat.jpg")
    seg.class_fractions()          # {"background": 0.61, "cat": 0.39}
    seg.overlay(0.5).save("cat_overlay.png")
    seg.save("cat_labels.png")     # palette PNG: pixel value = class id
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .animation import Clip
from .atomic import atomic_write
from .errors import ModelError
from .image import (IMAGE_EXTENSIONS, RESAMPLE_METHODS, ImageLike, letterbox, load_rgb, resize_image, resize_labels,
                    to_model_input)
from .interpreter import Interpreter
from .models import ModelInfo, describe, find_model, output_grid
from .palette import LabelSet, colorize, get_label_set, palette_bytes

#: Rows of output computed at once when upsampling logits (bounds the memory to a strip).
_STRIP_BYTES = 16 << 20
#: Pixels counted at once by Segmentation's class statistics.
_COUNT_CHUNK = 1 << 20


def _bilinear_axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (i0, i1) and weights of i1 for resizing one axis from n_in to n_out samples.

    Half-pixel centers (``src = (dst + 0.5) * n_in / n_out - 0.5``, clamped to
    the edges), the convention of Pillow, OpenCV and TF2's ``tf.image.resize``:
    it keeps the image centered, where ``align_corners`` would shift it.
    """
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    i0 = np.floor(src).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0).astype(np.float32)


def upsample_argmax(logits: np.ndarray, height: int, width: int) -> np.ndarray:
    """Argmax over classes of ``logits`` [h, w, C] resized bilinearly to (height, width): uint8 [height, width].

    Columns are interpolated once on the small map; rows in strips, each strip's
    argmax taken before the next, so the full-size [height, width, C] array is
    never held. Ties go to the lower class id, as TFLite's ARG_MAX does.
    """
    h, w, c = logits.shape
    if c > 256:
        raise ModelError(f"{c} classes do not fit uint8 labels")
    x = logits.astype(np.float32, copy=False)
    x0, x1, fx = _bilinear_axis(w, width)
    cols = x[:, x0] * (1.0 - fx)[None, :, None] + x[:, x1] * fx[None, :, None]  # [h, width, C]
    y0, y1, fy = _bilinear_axis(h, height)
    out = np.empty((height, width), dtype=np.uint8)
    step = max(1, _STRIP_BYTES // max(1, width * c * 4))
    for r in range(0, height, step):
        rows = slice(r, min(height, r + step))
        wy = fy[rows][:, None, None]
        strip = cols[y0[rows]] * (1.0 - wy) + cols[y1[rows]] * wy
        out[rows] = np.argmax(strip, axis=-1)
    return out


def upsample_bilinear(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """float32 [h, w, C] resized bilinearly (half-pixel centers, edges clamped) to [height, width, C].

    The convention of OpenCV's ``INTER_LINEAR``, with which MediaPipe's
    ImageSegmenter resizes its confidence masks.
    """
    h, w, _ = x.shape
    x = x.astype(np.float32, copy=False)
    x0, x1, fx = _bilinear_axis(w, width)
    cols = x[:, x0] * (1.0 - fx)[None, :, None] + x[:, x1] * fx[None, :, None]
    y0, y1, fy = _bilinear_axis(h, height)
    return cols[y0] * (1.0 - fy)[:, None, None] + cols[y1] * fy[:, None, None]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of a negative argument only: no overflow warning for large |x|.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


@dataclass
class Segmentation:
    """The result of :meth:`Segmenter.segment`.

    ``labels``: HxW uint8 class ids at the input image's resolution.
    ``class_names``: name of each id. ``logits``: [h, w, C] float32 scores at the
    model's output resolution (padding cropped) when the model outputs scores,
    else None (for a one-channel model, [h, w, 1]: the foreground probability).
    ``model_labels``: [h, w] uint8 labels at the model's output resolution
    (what Coral's agreement figure compares). ``image``: the HxWx3 uint8 RGB
    image that was segmented. ``timings``: milliseconds per stage.
    ``output_kind``: the model's output kind (see :data:`pydeeplab.models.OUTPUT_KINDS`).
    """

    labels: np.ndarray
    class_names: tuple[str, ...]
    logits: np.ndarray | None
    model_labels: np.ndarray
    image: np.ndarray = field(repr=False)
    colors: np.ndarray = field(repr=False)
    model: str = ""
    source: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    output_kind: str = "logits"

    @property
    def confidence_masks(self) -> np.ndarray | None:
        """Per-class probabilities at the image's size: float32 [num_classes, H, W], or None for class-id models.

        ``confidence("auto")``: softmax over the classes of a logits model,
        sigmoid of a one-channel logit, probability outputs as they are; then
        each class's map resized bilinearly to the image, as MediaPipe's
        ImageSegmenter resizes its confidence masks. A one-channel model gives
        two masks, background ``1 - p`` and foreground ``p`` (``p`` is
        MediaPipe's single mask). Computed on each access: C x H x W x 4 bytes.
        """
        return self.confidence("auto")

    def confidence(self, activation: str = "auto") -> np.ndarray | None:
        """Per-class confidence maps at the image's size: float32 [num_classes, H, W] (None for class-id models).

        ``activation``: ``"auto"`` (probabilities, see :attr:`confidence_masks`),
        ``"softmax"``, ``"sigmoid"`` or ``"none"`` (the model's scores as they
        are, which is what MediaPipe's ImageSegmenter returns for a model whose
        metadata names no activation). A one-channel model always gives its
        probability ``p`` (a logit output has been through the sigmoid) and
        ``1 - p`` for the background, whatever ``activation`` says.
        """
        if activation not in ("auto", "softmax", "sigmoid", "none"):
            raise ValueError(f"activation must be auto, softmax, sigmoid or none, not {activation!r}")
        if self.logits is None:
            return None
        x = self.logits
        one_channel = self.output_kind in ("probability", "logit")
        if activation == "auto":
            activation = "softmax" if self.output_kind == "logits" else "none"
        if one_channel:  # logits holds p already (a logit output went through the sigmoid in segment)
            x = np.concatenate([1.0 - x, x], axis=-1)
        elif activation == "softmax":
            x = _softmax(x)
        elif activation == "sigmoid":
            x = _sigmoid(x)
        h, w = self.labels.shape
        return np.ascontiguousarray(np.moveaxis(upsample_bilinear(x, h, w), -1, 0))

    def _present(self) -> list[tuple[int, int]]:
        """(class id, pixel count) of each class present, largest first."""
        # Counted in chunks: bincount widens its input to intp, 8 bytes a pixel for the whole image otherwise.
        flat = self.labels.ravel()
        counts = np.zeros(max(256, len(self.class_names)), dtype=np.int64)
        for i in range(0, flat.size, _COUNT_CHUNK):
            counts += np.bincount(flat[i: i + _COUNT_CHUNK], minlength=counts.size)
        return sorted(((int(c), int(counts[c])) for c in np.flatnonzero(counts)), key=lambda t: (-t[1], t[0]))

    def _name(self, c: int) -> str:
        return self.class_names[c] if c < len(self.class_names) else f"class_{c}"

    def class_pixels(self) -> dict[str, int]:
        """Pixel count of each class present, largest first."""
        return {self._name(c): n for c, n in self._present()}

    def class_fractions(self) -> dict[str, float]:
        """Fraction of the image's pixels in each class present, largest first (they sum to 1)."""
        total = self.labels.size
        return {self._name(c): n / total for c, n in self._present()}

    def color_mask(self) -> Image.Image:
        """The labels drawn in the label set's colors: an RGB PIL image of the image's size."""
        return Image.fromarray(colorize(self.labels, self.colors), "RGB")

    def label_image(self) -> Image.Image:
        """The labels as a palette ("P") PIL image: pixel value = class id, palette = class colors."""
        im = Image.fromarray(self.labels, "L").convert("P")
        im.putpalette(palette_bytes(self.colors))
        return im

    def overlay(self, alpha: float = 0.5) -> Image.Image:
        """The photo with each class tinted in its color: an RGB PIL image.

        ``alpha`` (0..1) is the weight of the class color. Pixels of the
        "background" class keep the photo untouched, so objects stand out.
        """
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be between 0 and 1, not {alpha}")
        background = self.class_names.index("background") if "background" in self.class_names else None
        out = np.empty_like(self.image)
        # Blended in strips of rows: float copies of a whole large photo would take 4 bytes a channel each.
        step = max(1, _STRIP_BYTES // max(1, self.image.shape[1] * 3 * 4))
        for r in range(0, out.shape[0], step):
            rows = slice(r, r + step)
            photo = self.image[rows].astype(np.float32)
            labels = self.labels[rows]
            blended = photo * (1.0 - alpha) + colorize(labels, self.colors).astype(np.float32) * alpha
            if background is not None:
                keep = labels == background
                blended[keep] = photo[keep]
            out[rows] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(out, "RGB")

    def summary(self) -> dict:
        """A JSON-able summary: image, model, size, class fractions and ids, timings."""
        total = self.labels.size
        present = self._present()
        return {
            "image": self.source,
            "model": self.model,
            "width": int(self.labels.shape[1]),
            "height": int(self.labels.shape[0]),
            "classes": {self._name(c): round(n / total, 6) for c, n in present},
            "class_ids": {self._name(c): c for c, _ in present},
            "timings_ms": {k: round(v, 3) for k, v in self.timings.items()},
        }

    def save(self, path: str | os.PathLike, format: str | None = None) -> Path:
        """Write the result atomically; ``format`` (default: from the extension) is one of

        ``png``: palette PNG of class ids (see :meth:`label_image`); ``npy``: the
        HxW uint8 labels; ``json``: :meth:`summary`. Returns the path.
        """
        p = Path(path)
        fmt = (format or p.suffix.lstrip(".")).lower()
        if fmt == "png":
            with atomic_write(p) as f:
                self.label_image().save(f, format="PNG")
        elif fmt == "npy":
            with atomic_write(p) as f:
                np.save(f, self.labels)
        elif fmt == "json":
            with atomic_write(p) as f:
                f.write((json.dumps(self.summary(), indent=2) + "\n").encode("utf-8"))
        else:
            raise ValueError(f"{p}: unknown output format {fmt!r} (use png, npy or json)")
        return p


class Segmenter:
    """Semantic segmentation with any segmentation TFLite model on pydeeplab's interpreter.

    Args:
        model: a model name (``deeplabv3_257``, ``deeplabv3_mnv2_pascal_quant``,
            ``deeplabv3_mnv2_dm05_pascal_quant``, ``deeplabv3_257_metadata``, see
            ``pydeeplab fetch --list``) or a path to a ``.tflite`` file; names are
            looked up as :func:`pydeeplab.models.find_model` describes.
        backend: ``"numba"`` or ``"numpy"`` (see :class:`pydeeplab.Interpreter`).
        num_threads: threads for the Numba kernels (default: all).
        keep_aspect: default for :meth:`segment`: letterbox instead of stretching.
        mean, std: float input normalization ``(x - mean) / std`` (one value or R, G, B).
        labels: class names: a label-set name, a text file (one a line) or a list.
        output: the output kind (:data:`pydeeplab.models.OUTPUT_KINDS`).
        resample: how the image is resized to the model input: ``"antialias"``
            (default; Pillow's bilinear, low-pass when shrinking) or
            ``"bilinear"`` (four-tap sampling, bit for bit MediaPipe's
            ImageSegmenter: use it to reproduce MediaPipe's results).

    ``mean``, ``std``, ``labels`` and ``output`` default to the model's TFLite
    metadata, else its manifest entry, else what its output tensor says
    (:func:`pydeeplab.models.describe`; ``info.sources`` tells which).

    A Segmenter may be shared by threads; calls to the model are serialized.
    """

    def __init__(self, model: str | os.PathLike = "deeplabv3_257", backend: str = "numba",
                 num_threads: int | None = None, keep_aspect: bool = False, *,
                 mean: float | tuple[float, ...] | None = None, std: float | tuple[float, ...] | None = None,
                 labels: str | os.PathLike | tuple[str, ...] | list[str] | None = None, output: str | None = None,
                 resample: str = "antialias"):
        if resample not in RESAMPLE_METHODS:
            raise ValueError(f"resample must be one of {', '.join(RESAMPLE_METHODS)}, not {resample!r}")
        start = time.perf_counter()
        path, info = find_model(model)
        self.path = path
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise ModelError(f"{path}: cannot read the model ({exc.strerror or exc})") from None
        self.interpreter = Interpreter(model_content=content, backend=backend, num_threads=num_threads)
        self.interpreter.allocate_tensors()
        # Arguments given here win over the metadata, which wins over the manifest (see models.describe).
        self.settings = {"mean": mean, "std": std, "labels": labels, "output": output}
        self.info: ModelInfo = describe(path, content, self.interpreter.model, info, **self.settings)
        self.resample = resample
        self.settings["resample"] = resample
        self.backend = backend
        self.keep_aspect = keep_aspect
        self._lock = threading.Lock()

        inp = self.interpreter.get_input_details()[0]
        self._input = inp
        self.input_size: tuple[int, int] = (int(inp["shape"][1]), int(inp["shape"][2]))
        out = self.interpreter.get_output_details()[0]
        self._output = out
        self.output_size: tuple[int, int] = output_grid(tuple(out["shape"]), self.info.output)
        self.label_set: LabelSet = self._label_set(out)
        self.load_ms = (time.perf_counter() - start) * 1e3

    def _label_set(self, out: dict) -> LabelSet:
        ls = get_label_set(self.info.labels)
        names = list(self.info.class_names or ls.names)
        classes = {"logits": int(out["shape"][-1]), "probabilities": int(out["shape"][-1]),
                   "probability": 2, "logit": 2}.get(self.info.output)
        if classes is not None:
            # A label list that does not fit the output is completed or cut so that every id has a name.
            names = (names + [f"class_{i}" for i in range(len(names), classes)])[:classes]
        return ls.with_names(tuple(names))

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.label_set.names

    def segment(self, image: ImageLike, keep_aspect: bool | None = None) -> Segmentation:
        """Segment ``image`` (a path, a PIL image, or an HxWx3 uint8 array).

        Returns a :class:`Segmentation` whose ``labels`` have the image's size
        (after EXIF orientation). Raises :class:`pydeeplab.image.ImageError` for
        an unreadable image.
        """
        keep_aspect = self.keep_aspect if keep_aspect is None else keep_aspect
        t0 = time.perf_counter()
        rgb = load_rgb(image)
        t1 = time.perf_counter()
        h_in, w_in = self.input_size
        if keep_aspect:
            x, (rows, cols) = letterbox(rgb, h_in, w_in, resample=self.resample)
        else:
            x, (rows, cols) = resize_image(rgb, h_in, w_in, self.resample), (h_in, w_in)
        tensor = to_model_input(x, self._input["dtype"], self._input["quantization"], self.info.mean, self.info.std)
        t2 = time.perf_counter()
        with self._lock:
            self.interpreter.set_tensor(self._input["index"], tensor)
            self.interpreter.invoke()
            raw = self.interpreter.get_tensor(self._output["index"])
        t3 = time.perf_counter()

        h_out, w_out = self.output_size
        # The part of the output that saw the image (all of it unless letterboxed).
        valid = (max(1, round(rows * h_out / h_in)), max(1, round(cols * w_out / w_in)))
        height, width = rgb.shape[:2]
        kind = self.info.output
        if kind == "labels":
            lab = raw.reshape(h_out, w_out)[: valid[0], : valid[1]]
            if lab.size and (lab.min() < 0 or lab.max() > 255):
                raise ModelError(f"{self.path}: the model output labels {lab.min()}..{lab.max()}, outside 0..255")
            scores = None
            model_labels = np.ascontiguousarray(lab, dtype=np.uint8)
            labels = resize_labels(model_labels, height, width)
        else:
            scores = raw.reshape(h_out, w_out, -1)[: valid[0], : valid[1], :]
            if scores.dtype != np.float32:  # quantized scores: dequantize (argmax is unchanged by it)
                scale, zero_point = self._output["quantization"]
                scores = (scores.astype(np.float32) - zero_point) * np.float32(scale or 1.0)
            scores = np.ascontiguousarray(scores, dtype=np.float32)
            if kind in ("probability", "logit"):
                if kind == "logit":
                    scores = _sigmoid(scores)
                # Foreground where p > 0.5, as MediaPipe's ImageSegmenter draws its category mask
                # (the probability is upsampled first, like its confidence mask).
                model_labels = (scores[..., 0] > 0.5).astype(np.uint8)
                labels = (upsample_bilinear(scores, height, width)[..., 0] > 0.5).astype(np.uint8)
            else:
                model_labels = np.argmax(scores, axis=-1).astype(np.uint8)
                labels = upsample_argmax(scores, height, width)
        t4 = time.perf_counter()
        timings = {"decode": (t1 - t0) * 1e3, "preprocess": (t2 - t1) * 1e3, "invoke": (t3 - t2) * 1e3,
                   "postprocess": (t4 - t3) * 1e3, "total": (t4 - t0) * 1e3}
        source = os.fspath(image) if isinstance(image, (str, os.PathLike)) else None
        return Segmentation(labels=labels, class_names=self.class_names, logits=scores, model_labels=model_labels,
                            image=rgb, colors=self.label_set.colors, model=self.info.name, source=source,
                            timings=timings, output_kind=kind)


# -- many images: the engine of ``pydeeplab segment`` ---------------------------------------------


@dataclass
class Job:
    """One image (or clip) of a batch and the files it is to produce (keys: labels, overlay, summary).

    A clip (``clip`` set: an animated image or a folder of frames) writes its
    per-frame labels into the folder ``outputs["labels"]`` and its overlay as an
    animated GIF. The summary is always written last: its presence means the
    job is complete (what ``--resume`` checks).
    """

    index: int
    input: Path
    outputs: dict[str, Path]
    format: str = "png"
    overlay_alpha: float | None = None
    clip: Clip | None = None

    def done(self) -> bool:
        """True when every output exists (each is written atomically, the summary last)."""
        return all(p.exists() for p in self.outputs.values())


@dataclass
class JobResult:
    job: Job
    summary: dict | None = None
    error: str | None = None
    skipped: bool = False  # --resume found its outputs


def expand_inputs(paths: list[str | os.PathLike]) -> list[Path]:
    """Files to segment: each path as given, a folder replaced by its image files (sorted, not recursive)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS)
        else:
            files.append(p)
    return files


def plan_jobs(inputs: list[Path], out_dir: Path, format: str = "png", overlay_alpha: float | None = None,
              clips: dict[Path, Clip] | None = None) -> list[Job]:
    """A :class:`Job` per input with output names ``<stem>_labels.<format>``, ``<stem>_overlay.png``, ``<stem>.json``.

    ``format``: ``png`` (palette PNG of class ids), ``npy`` (uint8 array) or
    ``json`` (the summary only). Inputs sharing a stem get ``<stem>-2``, ``-3``...
    An input in ``clips`` (see :mod:`pydeeplab.animation`) gets
    ``<stem>_overlay.gif`` (always) and a folder ``<stem>_labels/`` of
    ``frame_<nnnn>.<format>`` files.
    """
    if format not in ("png", "npy", "json"):
        raise ValueError(f"unknown output format {format!r} (use png, npy or json)")
    clips = clips or {}
    jobs, used = [], set()
    for i, path in enumerate(inputs):
        stem, n = path.stem, 1
        while stem in used:
            n += 1
            stem = f"{path.stem}-{n}"
        used.add(stem)
        clip = clips.get(path)
        outputs = {"summary": out_dir / f"{stem}.json"}
        if format != "json":
            outputs["labels"] = out_dir / (f"{stem}_labels" if clip else f"{stem}_labels.{format}")
        if clip is not None:
            outputs["overlay"] = out_dir / f"{stem}_overlay.gif"
        elif overlay_alpha is not None:
            outputs["overlay"] = out_dir / f"{stem}_overlay.png"
        jobs.append(Job(i, path, outputs, format, overlay_alpha, clip))
    return jobs


def run_job(segmenter: Segmenter, job: Job, protected: frozenset[str] = frozenset()) -> JobResult:
    """Segment one image (or clip) and write its outputs atomically; errors are returned, not raised.

    ``protected``: resolved paths never to write (the batch's inputs).
    """
    from .image import ImageError

    try:
        for p in job.outputs.values():
            if str(p.resolve()) in protected:
                return JobResult(job, error=f"{job.input}: refusing to overwrite the input file {p}")
        if job.clip is not None:
            return _run_clip(segmenter, job)
        seg = segmenter.segment(job.input)
        written = {}
        if "labels" in job.outputs:
            written["labels"] = str(seg.save(job.outputs["labels"], job.format))
        if "overlay" in job.outputs:
            with atomic_write(job.outputs["overlay"]) as f:
                seg.overlay(job.overlay_alpha).save(f, format="PNG")
            written["overlay"] = str(job.outputs["overlay"])
        summary = seg.summary()
        summary.update(model_file=str(segmenter.path), backend=segmenter.backend,
                       keep_aspect=segmenter.keep_aspect, outputs=written)
        with atomic_write(job.outputs["summary"]) as f:
            f.write((json.dumps(summary, indent=2) + "\n").encode("utf-8"))
        return JobResult(job, summary=summary)
    except ImageError as exc:
        return JobResult(job, error=str(exc))
    except Exception as exc:  # one bad image must not stop a batch; the message names it
        return JobResult(job, error=f"{job.input}: {type(exc).__name__}: {exc}")


def _run_clip(segmenter: Segmenter, job: Job) -> JobResult:
    """Each frame segmented in turn: its labels written at once, its overlay kept for the animated GIF."""
    from .animation import GifWriter, read_clip

    clip = job.clip
    labels_dir = job.outputs.get("labels")
    if labels_dir is not None:
        labels_dir.mkdir(parents=True, exist_ok=True)
    gif = GifWriter()
    frames, pixels = [], {}
    alpha = 0.5 if job.overlay_alpha is None else job.overlay_alpha
    width = height = 0
    for n, rgb in enumerate(read_clip(clip)):
        seg = segmenter.segment(rgb)
        height, width = seg.labels.shape
        if labels_dir is not None:
            seg.save(labels_dir / f"frame_{n:04d}.{job.format}", job.format)
        gif.add(seg.overlay(alpha))
        fractions = seg.class_fractions()
        frames.append({"frame": n, "duration_ms": clip.durations[n] if n < len(clip.durations) else None,
                       "classes": {k: round(v, 6) for k, v in fractions.items()},
                       "timings_ms": {k: round(v, 3) for k, v in seg.timings.items()}})
        for name, count in seg.class_pixels().items():
            pixels[name] = pixels.get(name, 0) + count
    if len(frames) != clip.frame_count:
        raise ValueError(f"{job.input}: read {len(frames)} frames, the file announced {clip.frame_count}")
    gif.save(job.outputs["overlay"], clip.durations, clip.loop)
    total = sum(pixels.values()) or 1
    written = {"overlay": str(job.outputs["overlay"])}
    if labels_dir is not None:
        written["labels"] = str(labels_dir)
    summary = {"image": str(job.input), "model": segmenter.info.name, "width": width, "height": height,
               "frames": len(frames), "durations_ms": list(clip.durations), "loop": clip.loop,
               "classes": {k: round(v / total, 6) for k, v in sorted(pixels.items(), key=lambda kv: -kv[1])},
               "per_frame": frames, "model_file": str(segmenter.path), "backend": segmenter.backend,
               "keep_aspect": segmenter.keep_aspect, "outputs": written,
               "timings_ms": {"total": round(sum(f["timings_ms"].get("total", 0.0) for f in frames), 3)}}
    with atomic_write(job.outputs["summary"]) as f:
        f.write((json.dumps(summary, indent=2) + "\n").encode("utf-8"))
    return JobResult(job, summary=summary)


def run_jobs(segmenter: Segmenter, jobs: list[Job], workers: int = 1, num_threads: int | None = None,
             scheduler: str | None = None, resume: bool = False):
    """Run ``jobs``, yielding a :class:`JobResult` per job as each completes.

    With ``workers`` > 1, that many processes each load the model once (spawned,
    not forked: Numba's thread pool does not survive a fork) and share the jobs;
    with ``scheduler`` (a Dask scheduler address) the cluster's workers do (see
    :mod:`pydeeplab.distributed`); ``num_threads`` is then per process. With
    ``resume``, jobs whose outputs all exist are not run (their results have
    ``skipped`` set). Inputs are never written.
    """
    from .distributed import segment_jobs

    todo = []
    for job in jobs:
        if resume and job.done():
            yield JobResult(job, skipped=True)
        else:
            todo.append(job)
    protected = frozenset(str(j.input.resolve()) for j in jobs)
    yield from segment_jobs(segmenter, todo, workers=workers, scheduler=scheduler, threads=num_threads,
                            protected=protected)
