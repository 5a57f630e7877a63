"""Segmentation quality: confusion matrix, IoU, pixel accuracy, and Coral's agreement figure.

PASCAL VOC's convention: ground-truth pixels of value 255 (object boundaries,
"difficult" regions) are ignored; IoU of class c is ``TP / (TP + FP + FN)``;
mean IoU averages over the classes present in the ground truth or the
prediction (a class absent from both has no IoU, not 0 or 1).

Coral's test of its DeepLab models counts something else, called here the
*agreement*: the number of equal pixels over ``a.size + b.size - same``, after
reading the mask's 255 as background 0 and resizing the model's raw output to
the mask's size by nearest neighbor. It is the "IoU" of the two label maps
viewed as sets of (pixel, label) pairs; ``../shared/data/README.md`` quotes it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .image import IMAGE_EXTENSIONS, resize_labels
from .palette import IGNORE_INDEX, decode_colors, pascal_color_map


def confusion_matrix(pred: np.ndarray, truth: np.ndarray, num_classes: int,
                     ignore_index: int | None = IGNORE_INDEX) -> np.ndarray:
    """[num_classes, num_classes] int64 counts, row = true class, column = predicted class.

    ``pred`` and ``truth`` are integer label maps of one shape. Pixels whose truth
    is ``ignore_index`` are skipped; any other value outside [0, num_classes)
    raises ValueError (a wrong label set is a bug, not noise).
    """
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth shape {truth.shape}")
    t = truth.astype(np.int64).ravel()
    p = pred.astype(np.int64).ravel()
    keep = t != ignore_index if ignore_index is not None else np.ones(t.shape, bool)
    t, p = t[keep], p[keep]
    for what, a in (("ground truth", t), ("prediction", p)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            bad = a[(a < 0) | (a >= num_classes)][0]
            raise ValueError(f"{what} holds label {bad}, outside the {num_classes} classes"
                             + (f" (and not the ignore value {ignore_index})" if what == "ground truth" else ""))
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """IoU of each class from a confusion matrix: float64 [C], NaN for classes absent from both sides."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    union = cm.sum(axis=0) + cm.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(cm: np.ndarray) -> float:
    """Mean of :func:`iou_per_class` over the classes present (NaN when no pixel counts)."""
    ious = iou_per_class(cm)
    return float(np.nanmean(ious)) if np.isfinite(ious).any() else float("nan")


def pixel_accuracy(cm: np.ndarray) -> float:
    """Fraction of counted (non-ignored) pixels labeled correctly (NaN when none counts)."""
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def coral_agreement(pred: np.ndarray, mask: np.ndarray, ignore_index: int = IGNORE_INDEX) -> float:
    """Coral's agreement of a label map with a mask: ``same / (a.size + b.size - same)``.

    ``pred`` is resized to the mask's shape by nearest neighbor; mask pixels equal
    to ``ignore_index`` count as background (0), as Coral's tests read them.
    """
    mask = np.where(np.asarray(mask) == ignore_index, 0, mask)
    a = resize_labels(pred, *mask.shape)
    same = int(np.count_nonzero(a.astype(np.int64) == mask.astype(np.int64)))
    return same / (a.size + mask.size - same)


def load_mask(path: str | os.PathLike) -> np.ndarray:
    """A ground-truth mask file as an HxW uint8 array of class ids.

    Palette ("P") and grayscale PNG/BMP masks store the id as the pixel value,
    which is kept as is (never mapped through the palette's colors). An RGB mask
    drawn in PASCAL VOC's colours (as VOC samples are often shared) is decoded
    through that palette, its boundary colour (224, 224, 192) to 255. A ``.npy``
    file must hold a 2-D integer array of values 0..255.
    """
    from .image import ImageError

    if Path(path).suffix.lower() == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise ImageError(f"{path}: not a readable .npy mask ({exc})") from None
        if a.ndim != 2 or a.dtype.kind not in "iub":
            raise ImageError(f"{path}: a .npy mask must be a 2-D integer array, not {a.dtype} of shape {a.shape}")
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ImageError(f"{path}: mask values {a.min()}..{a.max()} do not fit class ids 0..255")
        return a.astype(np.uint8)
    try:
        with Image.open(path) as im:
            if im.mode in ("P", "L"):
                return np.array(im, dtype=np.uint8)
            if im.mode.startswith("I"):
                a = np.asarray(im)
                if a.min() < 0 or a.max() > 255:
                    raise ImageError(f"{path}: mask values {a.min()}..{a.max()} do not fit class ids 0..255")
                return a.astype(np.uint8)
            if im.mode in ("RGB", "RGBA"):
                a = np.asarray(im)
                if (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all():
                    return np.ascontiguousarray(a[..., 0])
                ids = decode_colors(a[..., :3], pascal_color_map())
                if ids is not None:  # a PASCAL VOC colour mask: every colour one of the VOC palette's
                    return ids
                raise ImageError(f"{path}: a colour mask whose colours are not all PASCAL VOC palette colours "
                                 f"is not a label mask (use a palette or grayscale PNG of class ids)")
            raise ImageError(f"{path}: a {im.mode} image is not a label mask (use a palette or grayscale PNG)")
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"{path}: not a readable mask ({exc})") from None


@dataclass
class EvalResult:
    """Metrics over a set of images: the summed confusion matrix and per-image agreement."""

    model: str
    class_names: tuple[str, ...]
    confusion: np.ndarray
    images: list[dict] = field(default_factory=list)  # {"image", "mask", "agreement", "pixel_accuracy"}
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # pairs that could not be evaluated, each naming its files

    @property
    def iou(self) -> np.ndarray:
        return iou_per_class(self.confusion)

    @property
    def mean_iou(self) -> float:
        return mean_iou(self.confusion)

    @property
    def pixel_accuracy(self) -> float:
        return pixel_accuracy(self.confusion)

    @property
    def agreement(self) -> float:
        """Mean Coral agreement over the images."""
        values = [r["agreement"] for r in self.images]
        return float(np.mean(values)) if values else float("nan")

    def to_dict(self) -> dict:
        def num(x: float) -> float | None:
            return None if not np.isfinite(x) else round(float(x), 6)

        return {
            "model": self.model,
            "images": self.images,
            "skipped": self.skipped,
            "failed": self.failed,
            "pixel_accuracy": num(self.pixel_accuracy),
            "mean_iou": num(self.mean_iou),
            "coral_agreement": num(self.agreement),
            "iou": {name: num(v) for name, v in zip(self.class_names, self.iou) if np.isfinite(v)},
            "class_names": list(self.class_names),
            "confusion_matrix": self.confusion.tolist(),
            "ignore_index": IGNORE_INDEX,
        }


def format_result(result: EvalResult) -> str:
    """A text report: per-class IoU table, totals, per-image agreement, the confusion matrix."""
    cm = result.confusion
    ious = result.iou
    lines = [f"model: {result.model}", f"images: {len(result.images)}", "",
             f"{'class':<16}{'IoU':>8}{'truth px':>12}{'pred px':>12}"]
    for c, name in enumerate(result.class_names):
        if not np.isfinite(ious[c]):
            continue
        lines.append(f"{name:<16}{ious[c]:>8.4f}{int(cm[c].sum()):>12}{int(cm[:, c].sum()):>12}")
    lines += ["", f"mean IoU        {result.mean_iou:.4f}", f"pixel accuracy  {result.pixel_accuracy:.4f}",
              f"Coral agreement {result.agreement:.4f}  (same / (a.size + b.size - same), 255 read as 0)"]
    if len(result.images) > 1:
        lines.append("")
        lines += [f"  {Path(r['image']).name}: agreement {r['agreement']:.4f}" for r in result.images]
    present = [c for c in range(len(result.class_names)) if cm[c].sum() or cm[:, c].sum()]
    if present:
        lines += ["", "confusion matrix (rows: truth, columns: prediction)"]
        width = max(8, max(len(str(int(v))) for v in cm[np.ix_(present, present)].ravel()) + 1)
        lines.append(" " * 16 + "".join(f"{result.class_names[c][:width - 1]:>{width}}" for c in present))
        for r in present:
            lines.append(f"{result.class_names[r]:<16}" + "".join(f"{int(cm[r, c]):>{width}}" for c in present))
    if result.skipped:
        lines += ["", "skipped: " + "; ".join(result.skipped)]
    if result.failed:
        lines += ["", "failed:"] + [f"  {message}" for message in result.failed]
    return "\n".join(lines)


def _ade20k_to_mlperf() -> np.ndarray:
    """ADE20K annotation id (0..150) -> MLPerf ADE20K model class (1..31 kept, the rest ignored).

    MLPerf's data preparation (mlcommons/mobile_open, input_preprocess.py) sets
    every annotation id >= 32 to its ignore label 0, and its mIoU counts classes
    1..31 only: here both 0 and ids >= 32 become the ignore value 255.
    """
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    lut[1:32] = np.arange(1, 32, dtype=np.uint8)
    return lut


#: Label-set name -> lookup table from the annotation ids of the dataset such models are evaluated on
#: to the model's class ids (255 = ignored).
ANNOTATION_MAPS: dict[str, np.ndarray] = {"ade20k_mlperf": _ade20k_to_mlperf()}


MASK_SUFFIXES = ("_mask", "_labels", "_label", "_gt", "")


def pair_images_and_masks(images: str | os.PathLike, masks: str | os.PathLike) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Match images with their masks. Returns ([(image, mask)], [reasons for images skipped]).

    ``images`` and ``masks`` are files or folders. An image ``NAME.ext`` matches
    the mask file whose stem is ``NAME_mask``, ``NAME_labels``, ``NAME_label``,
    ``NAME_gt`` or ``NAME`` (any image extension, preferring PNG). When both are
    folders and the same, files that are themselves masks are not images.
    """
    img, msk = Path(images), Path(masks)
    if img.is_file():
        if msk.is_file():
            return [(img, msk)], []
        found = _find_mask(img.stem, msk, exclude=img)
        return ([(img, found)], []) if found else ([], [f"{img}: no mask in {msk}"])
    if not img.is_dir():
        raise FileNotFoundError(f"{img}: no such image file or folder")
    if not msk.is_dir():
        raise FileNotFoundError(f"{msk}: no such mask folder")
    files = sorted(p for p in img.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    stems = {p.stem for p in files}
    same_folder = img.resolve() == msk.resolve()

    def is_a_mask(p: Path) -> bool:
        return any(s and p.stem.endswith(s) and p.stem[: -len(s)] in stems for s in MASK_SUFFIXES)

    pairs, skipped = [], []
    for p in files:
        if same_folder and is_a_mask(p):
            continue
        found = _find_mask(p.stem, msk, exclude=p)
        if found:
            pairs.append((p, found))
        else:
            skipped.append(f"{p.name}: no mask")
    return pairs, skipped


def _find_mask(stem: str, folder: Path, exclude: Path) -> Path | None:
    for suffix in MASK_SUFFIXES:
        candidates = sorted((p for p in folder.glob(f"{_glob_escape(stem + suffix)}.*")
                             if p.suffix.lower() in IMAGE_EXTENSIONS + (".npy",) and p.resolve() != exclude.resolve()),
                            key=lambda p: (p.suffix.lower() != ".png", p.name))
        if candidates:
            return candidates[0]
    return None


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def evaluate(segmenter, pairs: Sequence[tuple[Path, Path]], skipped: Sequence[str] = (), progress: bool = False) -> EvalResult:
    """Run ``segmenter`` (a :class:`pydeeplab.Segmenter`) on each (image, mask) pair and sum the metrics.

    The confusion matrix compares the segmentation at the image's resolution
    with the mask, 255 ignored. The agreement uses the model's raw labels resized
    to the mask (Coral's way). A ``.npy`` mask is read with NumPy. Models of a
    label set in :data:`ANNOTATION_MAPS` (MLPerf's ADE20K models) have their
    masks mapped from the dataset's annotation ids first. A pair that
    cannot be evaluated (unreadable image or mask, a mask of another size than
    the image, mask values outside the label set) goes to ``result.failed`` with
    a message naming its file; the other pairs are still evaluated.
    """
    from .image import ImageError

    from tqdm import tqdm

    names = tuple(segmenter.class_names)
    lut = ANNOTATION_MAPS.get(segmenter.label_set.name)
    cm = np.zeros((len(names), len(names)), dtype=np.int64)
    result = EvalResult(model=segmenter.info.name, class_names=names, confusion=cm, skipped=list(skipped))
    for image, mask_path in tqdm(pairs, desc="evaluate", unit="image", disable=None if progress else True, leave=False):
        try:
            mask = load_mask(mask_path)
            if lut is not None:
                mask = lut[mask]
            seg = segmenter.segment(image)
            if seg.labels.shape != mask.shape:
                raise ImageError(f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but the image {image} is "
                                 f"{seg.labels.shape[1]}x{seg.labels.shape[0]} (width x height, after EXIF orientation)")
            try:
                one = confusion_matrix(seg.labels, mask, len(names))
            except ValueError as exc:
                raise ImageError(f"{mask_path}: {exc}; the model's label set ({segmenter.label_set.name}, "
                                 f"{len(names)} classes) differs from the mask's") from None
        except (ImageError, OSError, ValueError) as exc:
            result.failed.append(str(exc) if str(image) in str(exc) or str(mask_path) in str(exc)
                                 else f"{image}: {exc}")
            continue
        cm += one
        result.images.append({
            "image": str(image), "mask": str(mask_path),
            "agreement": round(coral_agreement(seg.model_labels, mask), 6),
            "pixel_accuracy": round(pixel_accuracy(one), 6) if one.sum() else None,
            "mean_iou": round(mean_iou(one), 6) if one.sum() else None,
        })
    return result


# -- whole datasets: one image at a time, on this machine or a Dask cluster ----------------------


@dataclass
class PartitionResult:
    """What evaluating some samples gives: their summed int64 confusion matrix, the count, the broken files."""

    confusion: np.ndarray
    images: int = 0
    broken: list[str] = field(default_factory=list)

    def add(self, other: PartitionResult) -> None:
        # Integer sums: the total is the same whatever the partitioning and the order partitions finish in.
        self.confusion += other.confusion
        self.images += other.images
        self.broken += other.broken


def evaluate_sample(segmenter, image: Path, mask_path: Path, lookup: np.ndarray) -> np.ndarray:
    """The [C, C] int64 confusion matrix of one image (C = the segmenter's classes).

    The mask's stored values go through ``lookup`` (uint8 [256], stored value ->
    class id, 255 = ignored) first. Raises :class:`pydeeplab.image.ImageError`
    naming the file when the image or mask cannot be read, differ in size, or
    the mask holds a value outside the label set.
    """
    from .image import ImageError

    num_classes = len(segmenter.class_names)
    mask = lookup[load_mask(mask_path)]
    seg = segmenter.segment(image)
    if seg.labels.shape != mask.shape:
        raise ImageError(f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but the image {image} is "
                         f"{seg.labels.shape[1]}x{seg.labels.shape[0]} (width x height)")
    try:
        return confusion_matrix(seg.labels, mask, num_classes)
    except ValueError as exc:
        raise ImageError(f"{mask_path}: {exc}") from None


def evaluate_partition(segmenter, samples: Sequence, lookup: np.ndarray) -> PartitionResult:
    """Evaluate ``samples`` (:class:`pydeeplab.datasets.Sample`) one by one into one :class:`PartitionResult`.

    A sample whose files cannot be used is counted in ``broken`` with a message
    naming the file; the others are still evaluated. This is the per-image
    work of ``pydeeplab evaluate --dataset``, run in this process, in worker
    processes or on Dask workers alike.
    """
    from .image import ImageError

    c = len(segmenter.class_names)
    out = PartitionResult(np.zeros((c, c), dtype=np.int64))
    for sample in samples:
        try:
            out.confusion += evaluate_sample(segmenter, sample.image, sample.mask, lookup)
            out.images += 1
        except (ImageError, OSError, ValueError) as exc:
            text = str(exc)
            out.broken.append(text if str(sample.image) in text or str(sample.mask) in text
                              else f"{sample.image}: {text}")
    return out


@dataclass
class DatasetResult:
    """The metrics of a model on a dataset split: the summed confusion matrix and what was left out."""

    model: str
    dataset: str
    split: str
    label_set: str
    class_names: tuple[str, ...]
    confusion: np.ndarray
    images: int = 0
    broken: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """``miou`` (over classes present in truth or prediction), ``pixel_accuracy``, ``per_class_iou``
        (name -> IoU, classes present only), ``confusion`` (rows truth, columns prediction), ``images``
        (the number evaluated), and ``model``, ``label_set``, ``broken`` (the files skipped)."""
        def num(x: float) -> float | None:
            return None if not np.isfinite(x) else float(x)

        ious = iou_per_class(self.confusion)
        return {
            "miou": num(mean_iou(self.confusion)),
            "pixel_accuracy": num(pixel_accuracy(self.confusion)),
            "per_class_iou": {n: float(v) for n, v in zip(self.class_names, ious) if np.isfinite(v)},
            "confusion": self.confusion.tolist(),
            "images": self.images,
            "model": self.model,
            "label_set": self.label_set,
            "broken": list(self.broken),
        }


def format_dataset_result(result: DatasetResult) -> str:
    """A text report: what was evaluated, the per-class IoU table, mIoU, pixel accuracy, the confusion matrix."""
    cm = result.confusion
    ious = iou_per_class(cm)
    lines = [f"model:     {result.model}", f"dataset:   {result.dataset} ({result.split})",
             f"label set: {result.label_set} ({len(result.class_names)} classes)",
             f"images:    {result.images}" + (f" ({len(result.broken)} broken, skipped)" if result.broken else ""),
             "", f"{'id':>4}  {'class':<22}{'IoU':>8}{'truth px':>14}{'pred px':>14}"]
    for c, name in enumerate(result.class_names):
        if np.isfinite(ious[c]):
            lines.append(f"{c:>4}  {name[:21]:<22}{ious[c]:>8.4f}{int(cm[c].sum()):>14}{int(cm[:, c].sum()):>14}")
    lines += ["", f"mIoU            {mean_iou(cm):.4f}  (over the {int(np.isfinite(ious).sum())} classes present)",
              f"pixel accuracy  {pixel_accuracy(cm):.4f}"]
    present = [c for c in range(len(result.class_names)) if cm[c].sum() or cm[:, c].sum()]
    if present and len(present) <= 30:
        width = max(8, max(len(str(int(v))) for v in cm[np.ix_(present, present)].ravel()) + 1)
        lines += ["", "confusion matrix (rows: truth, columns: prediction)",
                  " " * 16 + "".join(f"{result.class_names[c][:width - 1]:>{width}}" for c in present)]
        for r in present:
            lines.append(f"{result.class_names[r][:15]:<16}" + "".join(f"{int(cm[r, c]):>{width}}" for c in present))
    elif present:
        lines += ["", f"confusion matrix: {len(present)} classes present, too wide to print (see --json)"]
    if result.broken:
        lines += ["", "broken (skipped):"] + [f"  {message}" for message in result.broken]
    return "\n".join(lines)
