"""Draw the figures of docs/deeplab.md (PNG, with Pillow) into docs/figures/.

    python tools/figures.py                 # every figure
    python tools/figures.py atrous aspp     # some of them

The segmentation figure runs the real float model (deeplabv3_257_mv_gpu.tflite, from
$PYDEEPLAB_DATA or ../shared/data) with ``pydeeplab.Interpreter``; the others are
computed from first principles or from the models' structure.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pydeeplab.models import data_dir

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "figures"
DATA = data_dir()

INK = (40, 40, 40)
GRID = (200, 200, 200)
TAP = (214, 69, 65)
CENTER = (120, 20, 20)
FIELD = (66, 133, 244)
PALE = (244, 244, 244)
BLOCK_COLORS = [(231, 111, 81), (42, 157, 143), (233, 196, 106), (38, 70, 83)]


def font(size: int = 16) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def canvas(w: int, h: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("RGB", (w, h), "white")
    return img, ImageDraw.Draw(img)


def text_center(d: ImageDraw.ImageDraw, xy: tuple[float, float], s: str, size: int = 16, fill=INK) -> None:
    d.text(xy, s, font=font(size), fill=fill, anchor="mm")


# ---------------------------------------------------------------------------------------
# Atrous sampling
# ---------------------------------------------------------------------------------------

def atrous() -> Image.Image:
    """A 3x3 kernel at rates 1, 2, 4 on an 11x11 input: the 9 taps and the field they span."""
    n, cell, pad = 11, 26, 30
    panel = n * cell
    img, d = canvas(3 * panel + 4 * pad, panel + 2 * pad + 50)
    for i, rate in enumerate((1, 2, 4)):
        x0, y0 = pad + i * (panel + pad), pad + 30
        c = n // 2
        for y in range(n):
            for x in range(n):
                dy, dx = y - c, x - c
                is_tap = dy % rate == 0 and dx % rate == 0 and abs(dy) <= rate and abs(dx) <= rate
                fill = (CENTER if dy == dx == 0 else TAP) if is_tap else PALE
                d.rectangle([x0 + x * cell, y0 + y * cell, x0 + (x + 1) * cell - 2, y0 + (y + 1) * cell - 2],
                            fill=fill, outline=GRID)
        lo, hi = c - rate, c + rate + 1
        d.rectangle([x0 + lo * cell - 3, y0 + lo * cell - 3, x0 + hi * cell + 1, y0 + hi * cell + 1],
                    outline=FIELD, width=3)
        text_center(d, (x0 + panel / 2, pad + 8), f"rate {rate}: taps at -{rate}, 0, +{rate}", 18)
        text_center(d, (x0 + panel / 2, y0 + panel + 20),
                    f"9 weights, field {2 * rate + 1}x{2 * rate + 1}", 16)
    return img


def space_to_batch() -> Image.Image:
    """SPACE_TO_BATCH_ND with block 2: an 8x8 map becomes 4 maps of 4x4 (one per phase);
    a dense 3x3 conv on each is the rate-2 conv on the original."""
    n, cell, pad = 8, 30, 30
    img, d = canvas(2 * n * cell + 3 * pad + 160, n * cell + 2 * pad + 70)
    x0, y0 = pad, pad + 30
    text_center(d, (x0 + n * cell / 2, pad + 8), "input 8x8 (colour = phase y%2, x%2)", 16)
    for y in range(n):
        for x in range(n):
            col = BLOCK_COLORS[(y % 2) * 2 + x % 2]
            d.rectangle([x0 + x * cell, y0 + y * cell, x0 + (x + 1) * cell - 2, y0 + (y + 1) * cell - 2], fill=col)
    # The taps of a rate-2 3x3 kernel centred at (3, 3): all of one phase.
    for dy in (-2, 0, 2):
        for dx in (-2, 0, 2):
            cx, cy = x0 + (3 + dx) * cell + cell / 2 - 1, y0 + (3 + dy) * cell + cell / 2 - 1
            d.ellipse([cx - 6, cy - 6, cx + 6, cy + 6], fill="white", outline=INK, width=2)
    ax = x0 + n * cell + 20
    d.line([ax, y0 + n * cell / 2, ax + 120, y0 + n * cell / 2], fill=INK, width=3)
    d.polygon([(ax + 120, y0 + n * cell / 2 - 8), (ax + 136, y0 + n * cell / 2), (ax + 120, y0 + n * cell / 2 + 8)],
              fill=INK)
    text_center(d, (ax + 68, y0 + n * cell / 2 - 22), "SPACE_TO_BATCH_ND", 14)
    text_center(d, (ax + 68, y0 + n * cell / 2 + 22), "block [2, 2]", 14)
    bx = ax + 160
    small = cell
    text_center(d, (bx + n * cell / 2, pad + 8), "batch of 4 maps, 4x4 each", 16)
    for b in range(4):
        py, px = divmod(b, 2)
        ox, oy = bx + px * (4 * small + 14), y0 + py * (4 * small + 14)
        for y in range(4):
            for x in range(4):
                d.rectangle([ox + x * small, oy + y * small, ox + (x + 1) * small - 2, oy + (y + 1) * small - 2],
                            fill=BLOCK_COLORS[b])
        if b == 3:  # the same 9 taps, now adjacent: a dense 3x3 conv (VALID) on each map
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    cx, cy = ox + (1 + dx) * small + small / 2 - 1, oy + (1 + dy) * small + small / 2 - 1
                    d.ellipse([cx - 6, cy - 6, cx + 6, cy + 6], fill="white", outline=INK, width=2)
    text_center(d, (img.width / 2, img.height - 22),
                "a rate-2 3x3 kernel (left) reads one phase only; after the reshuffle its taps are adjacent "
                "(right)", 15)
    return img


# ---------------------------------------------------------------------------------------
# Charts
# ---------------------------------------------------------------------------------------

def valid_tap_fraction(size: int, rate: int, k: int = 3) -> float:
    """Mean fraction of a k x k atrous kernel's taps (SAME padding) that land inside a
    size x size map, over all output positions."""
    offsets = (np.arange(k) - k // 2) * rate
    pos = np.arange(size)
    inside = ((pos[:, None] + offsets[None, :]) >= 0) & ((pos[:, None] + offsets[None, :]) < size)
    per_axis = inside.mean(axis=1)  # fraction of the k taps inside, per position, one axis
    return float(np.mean(per_axis[:, None] * per_axis[None, :]))


def _axes(d, box, xlim, ylim, xticks, yticks, xlabel, ylabel, fmt_y=lambda v: f"{v:g}"):
    x0, y0, x1, y1 = box
    d.line([x0, y1, x1, y1], fill=INK, width=2)
    d.line([x0, y0, x0, y1], fill=INK, width=2)

    def px(x):
        return x0 + (x - xlim[0]) / (xlim[1] - xlim[0]) * (x1 - x0)

    def py(y):
        return y1 - (y - ylim[0]) / (ylim[1] - ylim[0]) * (y1 - y0)

    for t in xticks:
        d.line([px(t), y1, px(t), y1 + 5], fill=INK)
        text_center(d, (px(t), y1 + 16), f"{t:g}", 13)
    for t in yticks:
        d.line([x0 - 5, py(t), x0, py(t)], fill=INK)
        d.line([x0, py(t), x1, py(t)], fill=(235, 235, 235))
        d.text((x0 - 9, py(t)), fmt_y(t), font=font(13), fill=INK, anchor="rm")
    text_center(d, ((x0 + x1) / 2, y1 + 40), xlabel, 15)
    d.text((x0 - 50, y0 - 28), ylabel, font=font(15), fill=INK)
    return px, py


def valid_taps() -> Image.Image:
    """Why ASPP needs image-level pooling: on a small map, large rates leave only the centre tap."""
    img, d = canvas(800, 450)
    box = (80, 75, 560, 375)
    px, py = _axes(d, box, (1, 36), (0, 1), (1, 6, 12, 18, 24, 30, 36), (0, 0.25, 0.5, 0.75, 1),
                   "atrous rate", "mean fraction of the 9 taps inside the map", lambda v: f"{v:.0%}")
    rates = np.arange(1, 37)
    for (size, label), col in zip(((65, "65x65 (513 input, stride 8)"), (33, "33x33 (257 input, stride 8)"),
                                   (13, "13x13 (synth v3, 97 input)"), (9, "9x9 (synth v3+, 129 input)")),
                                  BLOCK_COLORS):
        pts = [(px(r), py(valid_tap_fraction(size, int(r)))) for r in rates]
        d.line(pts, fill=col, width=3)
        ly = 95 + 26 * BLOCK_COLORS.index(col)
        d.line([575, ly, 605, ly], fill=col, width=4)
        d.text((612, ly), label, font=font(13), fill=INK, anchor="lm")
    d.line([px(1), py(1 / 9), px(36), py(1 / 9)], fill=GRID, width=1)
    d.text((px(36) - 4, py(1 / 9) - 4), "1/9: only the centre tap", font=font(12), fill=(120, 120, 120), anchor="rb")
    for r in (6, 12, 18, 24):
        d.line([px(r), box[1], px(r), box[3]], fill=(225, 225, 225))
    text_center(d, (400, 18), "3x3 atrous conv, SAME padding: how many weights still see the image", 17)
    return img


def resolution_257() -> Image.Image:
    """Output height of every operator of deeplabv3_257_mv_gpu, coloured by operator, dilations marked."""
    from pydeeplab.summary import summarize
    from pydeeplab.tflite.reader import load_model

    s = summarize(load_model(DATA / "models" / "deeplabv3_257_mv_gpu.tflite"))
    ops = s["operators"]
    colors = {"CONV_2D": (38, 70, 83), "DEPTHWISE_CONV_2D": (42, 157, 143), "ADD": (233, 196, 106),
              "AVERAGE_POOL_2D": (231, 111, 81), "RESIZE_BILINEAR": (214, 69, 65), "CONCATENATION": (130, 90, 160)}
    img, d = canvas(980, 500)
    box = (70, 70, 940, 370)
    heights = [o["outputs"][0][1] for o in ops]
    logy = lambda h: np.log2(h)  # noqa: E731
    px, py = _axes(d, box, (-1, len(ops)), (-0.6, logy(257) + 0.3), range(0, len(ops), 10),
                   [logy(v) for v in (1, 33, 65, 129, 257)], "operator index", "output height (log scale)",
                   lambda v: f"{round(2 ** v)}")
    bw = (box[2] - box[0]) / (len(ops) + 1) * 0.8
    for i, (o, h) in enumerate(zip(ops, heights)):
        x = px(i)
        d.rectangle([x - bw / 2, py(logy(h)), x + bw / 2, box[3]], fill=colors.get(o["op"], GRID))
        dil = o["options"].get("dilation_h_factor", 1)
        if dil > 1:
            text_center(d, (x, py(logy(h)) - 10), str(dil), 11, fill=(42, 157, 143))
    for j, (name, col) in enumerate(colors.items()):
        x = 80 + (j % 3) * 280
        y = 440 + (j // 3) * 24
        d.rectangle([x, y - 7, x + 14, y + 7], fill=col)
        d.text((x + 20, y), name, font=font(13), fill=INK, anchor="lm")
    text_center(d, (505, 22), "deeplabv3_257_mv_gpu: resolution per operator "
                "(numbers: dilation of the depthwise convs)", 16)
    text_center(d, (505, 46), "three stride-2 steps down to 33x33 (output stride 8), then atrous rates 2 and 4 "
                "instead of more striding", 14)
    return img


# ---------------------------------------------------------------------------------------
# Block diagrams
# ---------------------------------------------------------------------------------------

def _box(d, center, text, w=150, h=44, fill=(232, 240, 254), size=14):
    x, y = center
    d.rounded_rectangle([x - w / 2, y - h / 2, x + w / 2, y + h / 2], radius=8, fill=fill, outline=INK, width=2)
    for k, line in enumerate(text.split("\n")):
        n = len(text.split("\n"))
        text_center(d, (x, y + (k - (n - 1) / 2) * (size + 3)), line, size)
    return (x, y, w, h)


def _arrow(d, a, b, fill=INK):
    """From the bottom of box a to the top of box b (boxes as returned by _box), or between points."""
    if len(a) == 4:
        a = (a[0], a[1] + a[3] / 2)
    if len(b) == 4:
        b = (b[0], b[1] - b[3] / 2)
    d.line([a, b], fill=fill, width=2)
    v = np.array(b, float) - np.array(a, float)
    v /= max(np.linalg.norm(v), 1e-6)
    p = np.array(b, float)
    n = np.array([-v[1], v[0]])
    d.polygon([tuple(p), tuple(p - 10 * v + 5 * n), tuple(p - 10 * v - 5 * n)], fill=fill)


def heads() -> Image.Image:
    """The four DeepLab heads, one panel each, in TFLite operator terms."""
    CONV, ATR, POOL, JOIN, UP = (232, 240, 254), (253, 226, 214), (255, 243, 205), (226, 243, 232), (243, 232, 250)
    W, H1, H2 = 640, 410, 540
    img, d = canvas(2 * W, H1 + H2 + 50)

    def panel(ox, oy, title):
        text_center(d, (ox + W / 2, oy + 22), title, 19)
        return lambda x, y: (ox + x, oy + y)

    # v1: the atrous backbone itself is the novelty; the head is a conv and an upsampling.
    at = panel(0, 0, "v1: atrous backbone (output stride 8)")
    f = _box(d, at(320, 80), "features /8\n(atrous rates 2, 4 inside)", 230, 50, fill=ATR)
    c = _box(d, at(320, 165), "CONV_2D 3x3, rate 4 (fc6)", 230, fill=ATR)
    lg = _box(d, at(320, 240), "CONV_2D 1x1 (class scores)", 230)
    up = _box(d, at(320, 315), "RESIZE_BILINEAR x8", 230, fill=UP)
    for a, b in ((f, c), (c, lg), (lg, up)):
        _arrow(d, a, b)
    # v2: four atrous classifiers on the same features, summed.
    at = panel(W, 0, "v2: ASPP, four atrous classifiers summed")
    f = _box(d, at(320, 80), "features /8", 200, fill=ATR)
    brs = [_box(d, at(320 + (i - 1.5) * 130, 175), f"CONV_2D 3x3\nrate {r}", 115, 50, fill=ATR)
           for i, r in enumerate((6, 12, 18, 24))]
    sm = _box(d, at(320, 270), "ADD x3", 200, fill=JOIN)
    up = _box(d, at(320, 345), "RESIZE_BILINEAR x8", 200, fill=UP)
    for b in brs:
        _arrow(d, f, b)
        _arrow(d, b, sm)
    _arrow(d, sm, up)
    # v3: parallel 1x1, three atrous 3x3 and image-level pooling, concatenated, projected.
    at = panel(0, H1, "v3: ASPP with image-level pooling")
    f = _box(d, at(320, 75), "features /8 or /16", 220, fill=ATR)
    names = ["CONV_2D\n1x1", "CONV_2D 3x3\nrate 6", "CONV_2D 3x3\nrate 12", "CONV_2D 3x3\nrate 18",
             "MEAN or\nAVERAGE_POOL"]
    brs = [_box(d, at(70 + 125 * i, 170), n, 112, 50, fill=POOL if i == 4 else (ATR if i else CONV), size=13)
           for i, n in enumerate(names)]
    p1 = _box(d, at(570, 245), "CONV_2D 1x1", 112, 36, size=13)
    p2 = _box(d, at(570, 310), "RESIZE_BILINEAR\nto the map size", 130, 44, fill=UP, size=13)
    cat = _box(d, at(280, 330), "CONCATENATION (axis 3)", 250, fill=JOIN)
    proj = _box(d, at(280, 405), "CONV_2D 1x1 projection", 250)
    lg = _box(d, at(280, 480), "CONV_2D 1x1, RESIZE_BILINEAR", 250, fill=UP)
    for b in brs:
        _arrow(d, f, b)
    for b in brs[:4]:
        _arrow(d, b, cat)
    _arrow(d, brs[4], p1)
    _arrow(d, p1, p2)
    _arrow(d, (p2[0] - p2[2] / 2, p2[1]), (cat[0] + cat[2] / 2, cat[1]))
    _arrow(d, cat, proj)
    _arrow(d, proj, lg)
    # v3+: the decoder.
    at = panel(W, H1, "v3+: v3 encoder + decoder")
    low = _box(d, at(170, 80), "low-level features /4", 210, fill=CONV)
    enc = _box(d, at(470, 80), "v3 encoder output /16", 210, fill=ATR)
    lp = _box(d, at(170, 160), "CONV_2D 1x1\n(few channels)", 170, 50)
    u4 = _box(d, at(470, 160), "RESIZE_BILINEAR x4", 210, fill=UP)
    cat = _box(d, at(320, 245), "CONCATENATION", 220, fill=JOIN)
    c1 = _box(d, at(320, 315), "CONV_2D 3x3", 220)
    c2 = _box(d, at(320, 380), "CONV_2D 3x3", 220)
    lg = _box(d, at(320, 445), "CONV_2D 1x1 (class scores)", 220)
    upf = _box(d, at(320, 510), "RESIZE_BILINEAR x4", 220, fill=UP)
    for a, b in ((low, lp), (enc, u4), (lp, cat), (u4, cat), (cat, c1), (c1, c2), (c2, lg), (lg, upf)):
        _arrow(d, a, b)
    d.line([W, 40, W, H1 + H2], fill=GRID, width=1)
    d.line([20, H1, 2 * W - 20, H1], fill=GRID, width=1)
    legend = [(CONV, "plain conv"), (ATR, "atrous or strided features"), (POOL, "image-level pooling"),
              (JOIN, "merge"), (UP, "bilinear upsampling")]
    for i, (col, name) in enumerate(legend):
        lx = 60 + i * 240
        d.rectangle([lx, H1 + H2 + 16, lx + 18, H1 + H2 + 34], fill=col, outline=INK)
        d.text((lx + 26, H1 + H2 + 25), name, font=font(14), fill=INK, anchor="lm")
    return img


# ---------------------------------------------------------------------------------------
# Segmentation with the real model
# ---------------------------------------------------------------------------------------

def pascal_palette() -> np.ndarray:
    """The PASCAL VOC colour map: label bits spread over the high bits of R, G, B."""
    pal = np.zeros((256, 3), np.uint8)
    for label in range(256):
        c, r, g, b = label, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        pal[label] = (r, g, b)
    return pal


def run_257(photo: Image.Image) -> np.ndarray:
    """Labels [257, 257] of deeplabv3_257_mv_gpu for an RGB image, run by pydeeplab.Interpreter:
    the image squashed to 257x257, pixels mapped to [-1, 1], argmax of the logits."""
    import pydeeplab

    interp = pydeeplab.Interpreter(model_path=str(DATA / "models" / "deeplabv3_257_mv_gpu.tflite"))
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    size = int(inp["shape"][1])
    x = np.asarray(photo.resize((size, size), Image.BILINEAR), np.float32)
    interp.set_tensor(inp["index"], ((x - 127.5) / 127.5)[None])
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])[0].argmax(-1).astype(np.uint8)


def segmentation(image_name: str = "bird_segmentation.bmp", mask_name: str = "bird_segmentation_mask.bmp",
                 panel: int = 360) -> Image.Image:
    """Input, ground truth, pydeeplab's labels and the overlay, for the real 257 float model."""
    names = (DATA / "models" / "pascal_voc_labels.txt").read_text().split()
    photo = Image.open(DATA / "images" / image_name).convert("RGB")
    truth = np.asarray(Image.open(DATA / "images" / mask_name))
    labels = run_257(photo)
    w, h = photo.size
    full = np.asarray(Image.fromarray(labels).resize((w, h), Image.NEAREST))
    # Agreement as Coral's tests count it (shared/data/README.md): 255 (boundary) read as 0.
    t = np.where(truth == 255, 0, truth)
    same = int(np.count_nonzero(full == t))
    score = same / (full.size + t.size - same)
    pal = pascal_palette()
    over = np.asarray(photo, np.float32).copy()
    fg = full > 0
    over[fg] = 0.4 * over[fg] + 0.6 * pal[full][fg]
    truth_rgb = pal[truth]
    truth_rgb[truth == 255] = (224, 224, 192)  # the palette's "void" colour
    panels = [(photo, f"input ({image_name}, {w}x{h})"), (Image.fromarray(truth_rgb), "ground truth"),
              (Image.fromarray(pal[full]), "pydeeplab labels (257x257, resized)"),
              (Image.fromarray(over.astype(np.uint8)), "overlay")]
    pad, top = 14, 36
    ph = round(panel * h / w)
    img, d = canvas(4 * panel + 5 * pad, ph + top + 64)
    for i, (im, title) in enumerate(panels):
        resample = Image.NEAREST if i in (1, 2) else Image.BILINEAR
        img.paste(im.resize((panel, ph), resample), (pad + i * (panel + pad), top))
        text_center(d, (pad + i * (panel + pad) + panel / 2, top / 2), title, 15)
    x = pad
    for v in [int(v) for v in np.unique(labels)]:
        name = f"{v} {names[v] if v < len(names) else v}"
        d.rectangle([x, ph + top + 12, x + 18, ph + top + 30], fill=tuple(int(c) for c in pal[v]), outline=INK)
        d.text((x + 24, ph + top + 21), name, font=font(14), fill=INK, anchor="lm")
        x += 40 + int(d.textlength(name, font=font(14)))
    d.text((pad, ph + top + 48), f"deeplabv3_257_mv_gpu.tflite run by pydeeplab.Interpreter (numba backend); "
           f"agreement with the ground truth {score:.3f} (same / (a.size + b.size - same))",
           font=font(14), fill=INK, anchor="lm")
    return img


def segment_cli(image_name: str = "grace_hopper.bmp", model: str = "deeplabv3_mnv2_pascal_quant",
                panel: int = 300) -> Image.Image:
    """What ``pydeeplab segment IMAGE --model MODEL --overlay`` writes, side by side: the
    input, NAME_labels.png (a palette PNG) and NAME_overlay.png."""
    import subprocess
    import tempfile

    image = DATA / "images" / image_name
    stem = Path(image_name).stem
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYDEEPLAB_DATA=str(DATA))
        subprocess.run([sys.executable, "-m", "pydeeplab.cli", "segment", str(image), "--model", model,
                        "--overlay", "--out", tmp, "-q"], check=True, env=env)
        labels = Image.open(Path(tmp) / f"{stem}_labels.png")
        label_ids = np.asarray(labels)
        labels = labels.convert("RGB")
        overlay = Image.open(Path(tmp) / f"{stem}_overlay.png").convert("RGB")
    photo = Image.open(image).convert("RGB")
    w, h = photo.size
    ph = round(panel * h / w)
    pad, top = 14, 36
    img, d = canvas(3 * panel + 4 * pad, ph + top + 40)
    for i, (im, title) in enumerate(((photo, f"{image_name} ({w}x{h})"), (labels, f"{stem}_labels.png"),
                                     (overlay, f"{stem}_overlay.png"))):
        img.paste(im.resize((panel, ph), Image.NEAREST if i == 1 else Image.BILINEAR), (pad + i * (panel + pad), top))
        text_center(d, (pad + i * (panel + pad) + panel / 2, top / 2), title, 15)
    names = (DATA / "models" / "pascal_voc_labels.txt").read_text().split()
    found = ", ".join(f"{v} {names[v]}" for v in np.unique(label_ids) if v < len(names))
    d.text((pad, ph + top + 20), f"pydeeplab segment {image_name} --model {model} --overlay   (classes: {found})",
           font=font(14), fill=INK, anchor="lm")
    return img


FIGURES: dict[str, tuple[str, Callable[[], Image.Image]]] = {
    "atrous": ("atrous_rates.png", atrous),
    "space_to_batch": ("space_to_batch.png", space_to_batch),
    "valid_taps": ("valid_taps.png", valid_taps),
    "resolution": ("resolution_257.png", resolution_257),
    "heads": ("deeplab_heads.png", heads),
    "segmentation": ("segmentation_257.png", segmentation),
    "segment_cli": ("segment_cli.png", segment_cli),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Draw the figures of docs/deeplab.md into docs/figures/.")
    ap.add_argument("names", nargs="*", help=f"figures to draw (default: all): {', '.join(FIGURES)}")
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in FIGURES]
    if unknown:
        ap.error(f"unknown figures {unknown}; choose from {', '.join(FIGURES)}")
    OUT.mkdir(parents=True, exist_ok=True)
    for name in args.names or FIGURES:
        filename, draw = FIGURES[name]
        draw().save(OUT / filename, optimize=True)
        print(OUT / filename)
    return 0


if __name__ == "__main__":
    sys.exit(main())
