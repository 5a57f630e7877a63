"""Animated input and output: frames of a GIF (or a folder of numbered frames), an animated GIF back.

A clip is read one frame at a time (:func:`read_clip`), so a long clip costs
one frame of memory to decode; the overlay GIF keeps its frames as 8-bit
palette images (one byte a pixel) until it is written, atomically.

GIF encoders (Pillow's among them) fold a frame identical to the previous one
into it, adding the durations: the clip would lose frames. :class:`GifWriter`
keeps every frame by drawing a repeated frame's first pixel with a second
palette entry of the same color, invisible but not identical.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from .atomic import atomic_write
from .image import IMAGE_EXTENSIONS, ImageError, load_rgb

#: Formats whose files may hold several frames that play as an animation.
ANIMATED_SUFFIXES = (".gif", ".png", ".webp")
#: Frame duration (milliseconds) for a folder of frames when none is given.
DEFAULT_FRAME_MS = 100


@dataclass(frozen=True)
class Clip:
    """An animation to segment: a multi-frame image ``path``, or a folder's numbered ``frames``.

    ``durations``: milliseconds each frame shows; ``loop``: GIF loop count
    (0 = forever, None = play once).
    """

    path: Path
    frames: tuple[Path, ...] = ()
    durations: tuple[int, ...] = ()
    loop: int | None = 0

    @property
    def frame_count(self) -> int:
        return len(self.durations)


def is_animated(path: str | os.PathLike) -> bool:
    """True for a GIF, APNG or WebP file of more than one frame (False for anything else, unreadable included)."""
    p = Path(path)
    if p.suffix.lower() not in ANIMATED_SUFFIXES or not p.is_file():
        return False
    try:
        with Image.open(p) as im:
            return bool(getattr(im, "is_animated", False))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False  # not an animation; reading it as an image reports what is wrong


def open_clip(path: str | os.PathLike) -> Clip:
    """The frame count, durations and loop count of an animated image file (frames are not decoded)."""
    p = Path(path)
    try:
        with Image.open(p) as im:
            durations = []
            for frame in ImageSequence.Iterator(im):
                durations.append(int(frame.info.get("duration", 0) or 0))
            loop = im.info.get("loop")
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{p}: not a readable animation ({exc})") from None
    return Clip(p, (), tuple(durations), None if loop is None else int(loop))


_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def frames_clip(folder: str | os.PathLike, frame_ms: int = DEFAULT_FRAME_MS) -> Clip:
    """A folder of numbered frames (``frame_0001.png``, ``12.jpg``...) as one clip, in numeric order.

    Every image file must carry a number in its name (the last digits count),
    and no two the same number: frames out of order are worse than an error.
    """
    d = Path(folder)
    files = [p for p in sorted(d.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    if not files:
        raise ImageError(f"{d}: no image files to use as frames")
    numbered = []
    for p in files:
        m = _NUMBER.search(p.stem)
        if m is None:
            raise ImageError(f"{p}: a frame's name must hold its number (e.g. frame_0001.png)")
        numbered.append((int(m.group(1)), p))
    numbered.sort()
    for (a, p), (b, q) in zip(numbered, numbered[1:]):
        if a == b:
            raise ImageError(f"{p} and {q} both are frame {a}")
    frames = tuple(p for _, p in numbered)
    return Clip(d, frames, (int(frame_ms),) * len(frames), 0)


def read_clip(clip: Clip) -> Iterator[np.ndarray]:
    """The clip's frames one by one as HxWx3 uint8 RGB arrays (each frame as the player shows it)."""
    if clip.frames:
        for p in clip.frames:
            yield load_rgb(p)
        return
    try:
        with Image.open(clip.path) as im:
            for frame in ImageSequence.Iterator(im):
                # Pillow composes each GIF frame onto the previous ones (disposal applied).
                yield load_rgb(frame.convert("RGBA") if frame.mode == "P" else frame.copy())
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{clip.path}: cannot decode a frame ({exc})") from None


class GifWriter:
    """Collects RGB frames and writes them as one animated GIF, every frame kept."""

    def __init__(self) -> None:
        self.frames: list[Image.Image] = []

    def add(self, frame: Image.Image) -> None:
        """Append an RGB frame (stored as a 255-color palette image; entry 255 is the spare)."""
        p = frame.convert("RGB").quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        palette = bytearray(p.getpalette("RGB") or b"")
        palette += bytes(768 - len(palette))
        # The spare repeats the first pixel's color in every frame, so that equal frames have equal palettes
        # (the encoder then compares indices, and one changed index is enough for it to keep the frame).
        index = p.getpixel((0, 0))
        palette[765:768] = palette[3 * index: 3 * index + 3]
        p.putpalette(bytes(palette), "RGB")
        if self.frames:
            prev = self.frames[-1]
            if prev.tobytes() == p.tobytes() and prev.getpalette("RGB") == p.getpalette("RGB"):
                p.putpixel((0, 0), 255)
        self.frames.append(p)

    def save(self, path: str | os.PathLike, durations: list[int] | tuple[int, ...], loop: int | None = 0) -> Path:
        """Write the frames atomically to ``path`` with ``durations`` (ms, one per frame)."""
        if not self.frames:
            raise ValueError("an animation needs at least one frame")
        if len(durations) != len(self.frames):
            raise ValueError(f"{len(durations)} durations for {len(self.frames)} frames")
        p = Path(path)
        options = {"save_all": True, "append_images": self.frames[1:], "duration": list(durations),
                   "optimize": False, "disposal": 1}
        if loop is not None:
            options["loop"] = loop
        with atomic_write(p) as f:
            self.frames[0].save(f, format="GIF", **options)
        return p
