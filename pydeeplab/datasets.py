"""Dataset layouts: PASCAL VOC, ADE20K and Cityscapes folders as they are published.

A :class:`Dataset` is a list of :class:`Sample` (an image file and its
ground-truth mask file), the names of the classes its masks label, and the
lookup table that turns a mask's stored values into those class ids (255 =
ignored). Only file names are listed up front; pixels are read one sample at a
time by whoever evaluates, so memory does not grow with the dataset.

Layouts, recognised by their folders (:func:`open_dataset`):

* **PASCAL VOC** (``VOCdevkit/VOC2012`` or the folder itself):
  ``ImageSets/Segmentation/<split>.txt`` lists ids; ``JPEGImages/<id>.jpg``;
  ``SegmentationClass/<id>.png``, palette PNGs whose pixel values are class
  ids 0..20, 255 = ignore (object boundaries).
* **ADE20K** (SceneParsing's ``ADEChallengeData2016``): ``images/`` and
  ``annotations/``, each with ``training/`` and ``validation/`` (split
  ``train`` / ``val``) or flat; annotation value 0 is "other" (ignored) and
  ``k`` is class ``k - 1`` of the 150 in ``objectInfo150.csv`` / ``.txt``
  (names ``class_<k>`` when that file is absent).
* **Cityscapes**: ``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` and
  ``gtFine/<split>/<city>/<name>_gtFine_labelIds.png``; the 34 label ids are
  mapped to the 19 training ids (cityscapesScripts' ``trainId``), the rest 255.

A model whose label set is not the dataset's needs a mapping from the mask's
stored values to the model's class ids (:func:`load_label_map`).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .palette import CITYSCAPES_CLASSES, IGNORE_INDEX, PASCAL_VOC_CLASSES


class DatasetError(ValueError):
    """A dataset folder that cannot be used as asked; the message says what is missing or wrong."""


@dataclass(frozen=True)
class Sample:
    """One image of a dataset: ``id`` (a name to report), its ``image`` and ``mask`` files."""

    id: str
    image: Path
    mask: Path


@dataclass(frozen=True)
class Dataset:
    """The samples of one split of a dataset and how to read their masks.

    ``lookup``: uint8 [256], stored mask value -> class id in ``class_names``
    (or 255 = ignored). ``label_set``: the name of the classes (``pascal_voc``,
    ``ade20k``, ``cityscapes``).
    """

    layout: str
    root: Path
    split: str
    label_set: str
    class_names: tuple[str, ...]
    samples: tuple[Sample, ...]
    lookup: np.ndarray

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def limited(self, limit: int | None) -> Dataset:
        """The first ``limit`` samples (all when None)."""
        if limit is None:
            return self
        return Dataset(self.layout, self.root, self.split, self.label_set, self.class_names,
                       self.samples[:limit], self.lookup)

    def with_label_map(self, lookup: np.ndarray, class_names: tuple[str, ...], label_set: str) -> Dataset:
        """The same samples read through another table (stored value -> the model's class id)."""
        return Dataset(self.layout, self.root, self.split, label_set, tuple(class_names), self.samples,
                       np.asarray(lookup, dtype=np.uint8))


def identity_lookup() -> np.ndarray:
    """The table of masks whose stored values already are the class ids (255 stays ignored)."""
    return np.arange(256, dtype=np.uint8)


#: Cityscapes label id -> training id (cityscapesScripts' labels.py); ids not listed are ignored.
CITYSCAPES_TRAIN_IDS: dict[int, int] = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13,
    27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}


def cityscapes_lookup() -> np.ndarray:
    """uint8 [256]: Cityscapes ``*_gtFine_labelIds.png`` value -> one of the 19 training ids, else 255."""
    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for label_id, train_id in CITYSCAPES_TRAIN_IDS.items():
        table[label_id] = train_id
    return table


def ade20k_lookup() -> np.ndarray:
    """uint8 [256]: ADE20K annotation value -> class id: 0 ("other") -> 255, k -> k - 1."""
    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    table[1:151] = np.arange(150, dtype=np.uint8)
    return table


VOC_SPLITS_DIR = Path("ImageSets") / "Segmentation"


def open_dataset(root: str | os.PathLike, split: str = "val") -> Dataset:
    """The dataset in folder ``root``, its layout recognised by its folders (see the module doc).

    Raises :class:`DatasetError` when ``root`` is no known layout, or the split
    is missing, naming what was looked for.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    for candidate in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (candidate / VOC_SPLITS_DIR).is_dir() and (candidate / "JPEGImages").is_dir():
            return _voc(candidate, split)
    if (root / "leftImg8bit").is_dir() and (root / "gtFine").is_dir():
        return _cityscapes(root, split)
    for candidate in (root, root / "ADEChallengeData2016"):
        if (candidate / "images").is_dir() and (candidate / "annotations").is_dir():
            return _ade20k(candidate, split)
    raise DatasetError(
        f"{root}: not a dataset folder this knows: expected PASCAL VOC (ImageSets/Segmentation/, JPEGImages/, "
        "SegmentationClass/), ADE20K (images/, annotations/) or Cityscapes (leftImg8bit/, gtFine/)")


def _voc(root: Path, split: str) -> Dataset:
    listing = root / VOC_SPLITS_DIR / f"{split}.txt"
    if not listing.is_file():
        have = sorted(p.stem for p in (root / VOC_SPLITS_DIR).glob("*.txt"))
        raise DatasetError(f"{root}: PASCAL VOC layout without split {split!r} ({listing} is missing; "
                           f"splits: {', '.join(have) or 'none'})")
    try:
        ids = [line.split()[0] for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{listing}: cannot read the split list ({exc})") from None
    samples = tuple(Sample(i, root / "JPEGImages" / f"{i}.jpg", root / "SegmentationClass" / f"{i}.png")
                    for i in ids)
    return Dataset("pascal_voc", root, split, "pascal_voc", PASCAL_VOC_CLASSES, samples, identity_lookup())


def _ade20k(root: Path, split: str) -> Dataset:
    sub = {"val": "validation", "train": "training"}.get(split, split)
    images, annotations = root / "images" / sub, root / "annotations" / sub
    if not images.is_dir():
        if any(p.is_dir() for p in (root / "images").iterdir()):
            raise DatasetError(f"{root}: ADE20K layout without split {split!r} ({images} is missing)")
        images, annotations = root / "images", root / "annotations"  # a flat copy: one split
    samples = tuple(Sample(p.stem, p, annotations / f"{p.stem}.png")
                    for p in sorted(images.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return Dataset("ade20k", root, split, "ade20k", ade20k_class_names(root), samples, ade20k_lookup())


def ade20k_class_names(root: Path) -> tuple[str, ...]:
    """The 150 ADE20K class names from ``objectInfo150.csv`` (or ``.txt``) in ``root`` or its parent.

    Each class keeps the first of its synonyms (``building;edifice`` -> ``building``);
    ``class_<k>`` for classes the file does not name (or when there is no file).
    """
    names = [f"class_{k}" for k in range(1, 151)]
    for folder in (root, root.parent):
        for path in (folder / "objectInfo150.csv", folder / "objectInfo150.txt"):
            if not path.is_file():
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise DatasetError(f"{path}: cannot read the class names ({exc})") from None
            delimiter = "," if path.suffix == ".csv" else "\t"
            for row in csv.DictReader(text.splitlines(), delimiter=delimiter):
                try:
                    k = int(row["Idx"])
                    name = (row.get("Name") or "").split(";")[0].strip()
                except (KeyError, TypeError, ValueError):
                    raise DatasetError(f"{path}: expected columns Idx and Name, as SceneParsing's file has") from None
                if 1 <= k <= 150 and name:
                    names[k - 1] = name
            return tuple(names)
    return tuple(names)


def _cityscapes(root: Path, split: str) -> Dataset:
    images, masks = root / "leftImg8bit" / split, root / "gtFine" / split
    if not images.is_dir() or not masks.is_dir():
        raise DatasetError(f"{root}: Cityscapes layout without split {split!r} ({images} and {masks} are needed)")
    suffix = "_leftImg8bit.png"
    samples = []
    for city in sorted(p for p in images.iterdir() if p.is_dir()):
        for p in sorted(city.glob(f"*{suffix}")):
            stem = p.name[: -len(suffix)]
            samples.append(Sample(f"{city.name}/{stem}", p, masks / city.name / f"{stem}_gtFine_labelIds.png"))
    return Dataset("cityscapes", root, split, "cityscapes", CITYSCAPES_CLASSES, tuple(samples), cityscapes_lookup())


def load_label_map(path: str | os.PathLike) -> np.ndarray:
    """A mapping from stored mask values to a model's class ids, as a uint8 [256] table.

    The file is JSON (an object ``{"<mask value>": <class id>, ...}``) or text
    (lines ``<mask value> <class id>``, ``#`` comments). Values not listed are
    ignored (255); map a value to 255 to ignore it explicitly.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{p}: cannot read the label map ({exc})") from None
    pairs: list[tuple[object, object]] = []
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{p}: not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise DatasetError(f'{p}: a JSON label map is an object {{"<mask value>": <class id>}}')
        pairs = list(data.items())
    else:
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split("#")[0].strip()
            if not line:
                continue
            fields = line.split()
            if len(fields) != 2:
                raise DatasetError(f"{p}:{n}: expected '<mask value> <class id>', got {line!r}")
            pairs.append((fields[0], fields[1]))
    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for source, target in pairs:
        try:
            s, t = int(source), int(target)
        except (TypeError, ValueError):
            raise DatasetError(f"{p}: {source!r} -> {target!r} is not a pair of integers") from None
        if not (0 <= s <= 255 and 0 <= t <= 255):
            raise DatasetError(f"{p}: {s} -> {t}: mask values and class ids are 0..255")
        table[s] = t
    return table


def check_label_set(dataset: Dataset, model_names: tuple[str, ...], model: str) -> None:
    """Raise :class:`DatasetError` unless the model labels the dataset's classes (same names, same order).

    Names are compared without case, spaces or punctuation ("dining table" is
    "diningtable", "tv/monitor" is "tvmonitor"), as label files spell them differently.
    """
    def key(name: str) -> str:
        return "".join(ch for ch in name.lower() if ch.isalnum())

    if [key(n) for n in model_names] == [key(n) for n in dataset.class_names]:
        return

    def show(names: tuple[str, ...]) -> str:
        return ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")

    raise DatasetError(
        f"{model} labels {len(model_names)} classes ({show(tuple(model_names))}) but the {dataset.layout} dataset "
        f"{dataset.root} labels {len(dataset.class_names)} ({show(dataset.class_names)}): give --label-map FILE "
        "mapping the dataset's mask values to the model's class ids (lines '<mask value> <class id>', or a JSON "
        "object); values it does not list are ignored")
