"""Builders shared by the dataset, distributed and animation tests: dataset folders in tmp, tiny models.

Import as ``from dataset_fixtures import ...`` (tests/ is on sys.path, like oracle.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from pydeeplab.palette import pascal_color_map
from pydeeplab.tflite.options import Conv2DOptions
from pydeeplab.tflite.schema import BuiltinOperator, Padding, TensorType
from pydeeplab.tflite.writer import ModelBuilder

#: The real model the dataset tests run (uint8: labels bit-identical with LiteRT's reference kernels).
DM05 = "deeplabv3_mnv2_dm05_pascal_quant"

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)

#: The VOC colour of the "ignore" label 255 in VOC's colour masks.
VOC_IGNORE_COLOR = (224, 224, 192)


def tiny_model(classes: int = 21, red: int = 15, green: int = 8, size: int = 16) -> bytes:
    """float32 [1,size,size,3] -> CONV_2D 1x1 -> logits [1,size,size,classes].

    With the default normalization x' = (x - 127.5) / 127.5: class ``red`` scores
    R', class ``green`` G', class 0 a constant 0.25, every other class -5. So a
    red pixel is ``red``, a green one ``green``, a blue or gray one class 0.
    """
    b = ModelBuilder(description="tiny segmenter")
    x = b.add_tensor("image", TensorType.FLOAT32, (1, size, size, 3))
    w = np.zeros((classes, 1, 1, 3), np.float32)
    bias = np.full(classes, -5.0, np.float32)
    w[red, 0, 0, 0], bias[red] = 1.0, 0.0
    w[green, 0, 0, 1], bias[green] = 1.0, 0.0
    bias[0] = 0.25
    y = b.add_tensor("logits", TensorType.FLOAT32, (1, size, size, classes))
    b.add_operator(BuiltinOperator.CONV_2D, [x, b.add_constant("w", w), b.add_constant("b", bias)], [y],
                   Conv2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1))
    b.set_inputs([x])
    b.set_outputs([y])
    return b.finish()


def stripes(h: int, w: int, colors) -> np.ndarray:
    """An HxWx3 uint8 image of vertical stripes of equal width in ``colors``."""
    img = np.zeros((h, w, 3), np.uint8)
    bounds = np.linspace(0, w, len(colors) + 1).round().astype(int)
    for color, a, b in zip(colors, bounds, bounds[1:]):
        img[:, a:b] = color
    return img


def save_palette_png(labels: np.ndarray, path: Path) -> None:
    """Class ids as a palette PNG (pixel value = id), PASCAL colours, as VOC ships its masks."""
    im = Image.fromarray(labels.astype(np.uint8), "L").convert("P")
    im.putpalette(pascal_color_map().tobytes())
    im.save(path)


def voc_colour_mask_to_ids(rgb: np.ndarray) -> np.ndarray:
    """A VOC colour mask (HxWx3, the VOC palette's colours) as class ids; (224,224,192) -> 255."""
    cmap = pascal_color_map().astype(np.int64)
    code = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    out = np.full(code.shape, 254, np.uint8)  # 254: a colour of no class (checked below)
    for i in range(21):
        out[code == ((cmap[i, 0] << 16) | (cmap[i, 1] << 8) | cmap[i, 2])] = i
    r, g, b = VOC_IGNORE_COLOR
    out[code == ((r << 16) | (g << 8) | b)] = 255
    if (out == 254).any():
        raise ValueError("a colour of the mask is no VOC class colour")
    return out


def voc_from_shared(images: Path, root: Path) -> list[str]:
    """A PASCAL VOC folder at ``root`` built from ``images/voc/*_image.png`` and their colour masks.

    Images become JPEGImages/<id>.jpg (quality 95), masks palette-index PNGs in
    SegmentationClass/, ids listed in ImageSets/Segmentation/val.txt. Returns the ids.
    """
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    (root / "SegmentationClass").mkdir()
    ids = []
    for p in sorted((images / "voc").glob("*_image.png")):
        i = p.name.split("_")[0]
        ids.append(i)
        with Image.open(p) as im:
            im.convert("RGB").save(root / "JPEGImages" / f"{i}.jpg", quality=95)
        with Image.open(images / "voc" / f"{i}_target.png") as im:
            save_palette_png(voc_colour_mask_to_ids(np.asarray(im.convert("RGB"))),
                             root / "SegmentationClass" / f"{i}.png")
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(ids) + "\n")
    return ids
