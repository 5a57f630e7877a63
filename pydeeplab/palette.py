"""Label sets: class names and the color maps that draw them.

Label sets known (besides ``person``, background vs person, and ``ade20k_mlperf``,
the 32 classes of MLPerf's ADE20K models, both drawn with PASCAL's colors):

* ``pascal_voc``: the 21 PASCAL VOC classes (0 = background, 255 = "ignore" in
  ground-truth masks) with PASCAL's standard color map, the one the VOC
  development kit ships: color ``i`` spreads the bits of ``i`` over the high
  bits of R, G and B, so every id 0..255 has a distinct color (255 is the
  cream-colored boundary of VOC masks).
* ``cityscapes``: the 19 Cityscapes training classes with Cityscapes' official
  colors (ids above 18 are drawn black).

A palette PNG written with :func:`palette_bytes` stores the class id as the
pixel value, so any image viewer shows the colors while programs read the ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PASCAL_VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)

CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)

#: The classes of MLPerf Mobile's ADE20K segmentation models: ADE20K's annotation ids 0..31, i.e. "other"
#: (0, every pixel outside the 31 most frequent classes) and the first 31 of ADE20K's 150 classes.
#: MLPerf's training data map annotation ids >= 32 to 0 (mlcommons/mobile_open, input_preprocess.py).
ADE20K_MLPERF_CLASSES: tuple[str, ...] = (
    "other", "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car",
    "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair",
)

#: Person vs background, the two classes of a single-channel (foreground probability) segmenter.
PERSON_CLASSES: tuple[str, ...] = ("background", "person")

_CITYSCAPES_COLORS = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
    (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
)

#: The value of "no label / don't care" pixels in ground-truth masks of both datasets.
IGNORE_INDEX = 255


def pascal_color_map(n: int = 256) -> np.ndarray:
    """PASCAL VOC's color map: an [n, 3] uint8 array, row ``i`` the RGB color of class ``i``.

    Bit ``3k`` of the id goes to bit ``7-k`` of red, bit ``3k+1`` to green and
    ``3k+2`` to blue, so small ids get bright, well-separated colors.
    """
    ids = np.arange(n, dtype=np.int64)
    cmap = np.zeros((n, 3), dtype=np.int64)
    for k in range(8):
        for channel in range(3):
            cmap[:, channel] |= ((ids >> (3 * k + channel)) & 1) << (7 - k)
    return cmap.astype(np.uint8)


def cityscapes_color_map(n: int = 256) -> np.ndarray:
    """Cityscapes' colors for the 19 training ids as an [n, 3] uint8 array (other ids black)."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    k = min(n, len(_CITYSCAPES_COLORS))
    cmap[:k] = np.array(_CITYSCAPES_COLORS[:k], dtype=np.uint8)
    return cmap


@dataclass(frozen=True)
class LabelSet:
    """The classes of a model's output: ``names[i]`` is class id ``i``; ``colors`` is [256, 3] uint8."""

    name: str
    names: tuple[str, ...]
    colors: np.ndarray
    ignore_index: int = IGNORE_INDEX

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def with_names(self, names: tuple[str, ...] | list[str]) -> LabelSet:
        """The same colors with other class names (e.g. the labels a model's metadata carries)."""
        return LabelSet(self.name, tuple(names), self.colors, self.ignore_index)


LABEL_SETS: dict[str, LabelSet] = {
    "pascal_voc": LabelSet("pascal_voc", PASCAL_VOC_CLASSES, pascal_color_map()),
    "cityscapes": LabelSet("cityscapes", CITYSCAPES_CLASSES, cityscapes_color_map()),
    "person": LabelSet("person", PERSON_CLASSES, pascal_color_map()),
    "ade20k_mlperf": LabelSet("ade20k_mlperf", ADE20K_MLPERF_CLASSES, pascal_color_map()),
}


def get_label_set(name: str) -> LabelSet:
    """The label set called ``name`` (``pascal_voc``, ``cityscapes``, ``person``, ``ade20k_mlperf``)."""
    try:
        return LABEL_SETS[name]
    except KeyError:
        raise ValueError(f"unknown label set {name!r}: choose one of {', '.join(LABEL_SETS)}") from None


def label_set_for(num_classes: int) -> LabelSet:
    """A label set to use for a model of ``num_classes`` outputs that names none.

    21 classes are PASCAL VOC, 19 Cityscapes; any other count keeps PASCAL's
    colors with names ``class_<i>``.
    """
    for ls in (LABEL_SETS["pascal_voc"], LABEL_SETS["cityscapes"]):  # a class count alone says no more
        if ls.num_classes == num_classes:
            return ls
    return LABEL_SETS["pascal_voc"].with_names(tuple(f"class_{i}" for i in range(num_classes)))


def palette_bytes(colors: np.ndarray) -> bytes:
    """The 768-byte RGB palette of a PIL "P" image from an [n <= 256, 3] uint8 color map."""
    full = np.zeros((256, 3), dtype=np.uint8)
    full[: len(colors)] = colors[:256]
    return full.tobytes()


def decode_colors(rgb: np.ndarray, colors: np.ndarray) -> np.ndarray | None:
    """The class ids of an HxWx3 uint8 colour mask drawn with ``colors`` ([256, 3] uint8, distinct rows).

    This reads ground truth shipped as colour images (PASCAL VOC's masks drawn in
    its palette, where the boundary colour (224, 224, 192) is id 255). Returns
    None when some pixel has a colour that is not in ``colors``.
    """
    def code(c: np.ndarray) -> np.ndarray:  # one integer per RGB colour
        c = c.astype(np.int64)
        return (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]

    table = code(colors)
    order = np.argsort(table)
    pixels = code(rgb)
    pos = np.clip(np.searchsorted(table[order], pixels), 0, len(table) - 1)
    ids = order[pos]
    if (table[ids] != pixels).any():
        return None
    return ids.astype(np.uint8)


def colorize(labels: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """An HxWx3 uint8 RGB image of an HxW integer label map drawn with ``colors`` ([256, 3] uint8)."""
    return colors[np.asarray(labels, dtype=np.intp) & 0xFF]
