"""The study and verification report: one self-contained HTML page per model and image.

``pydeeplab.report(model, image, out="report.html")`` (this package is callable, so
``pydeeplab.report`` is both the function and the package) or ``pydeeplab report
MODEL --image IMG --out report.html``. Data gathering (:mod:`.gather`, with the
DeepLab block recognition of :mod:`.structure`) is apart from rendering
(:mod:`.render`).
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable
from pathlib import Path

from .gather import DEFAULT_MAX_THUMBNAIL_OPS, ReportData, gather
from .render import SECTIONS, render
from .structure import Structure, recognise

__all__ = ["report", "gather", "render", "recognise", "ReportData", "Structure", "SECTIONS"]


def report(
    model: str | os.PathLike,
    image: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    *,
    backend: str | None = None,
    num_threads: int | None = None,
    litert: bool = True,
    quantization: bool = True,
    max_thumbnail_ops: int = DEFAULT_MAX_THUMBNAIL_OPS,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Build the report of ``model`` (a .tflite path) run on ``image``; returns the HTML.

    When ``out`` is given the HTML is also written there (atomically). ``litert=False``
    skips the comparison with LiteRT, ``quantization=False`` the float shadow of a
    quantized model; ``max_thumbnail_ops`` bounds how many operators get pictures.
    """
    data = gather(model, image, backend=backend, num_threads=num_threads, litert=litert, quantization=quantization,
                  max_thumbnail_ops=max_thumbnail_ops, progress=progress)
    page = render(data)
    if out is not None:
        from ..atomic import atomic_write

        with atomic_write(Path(out)) as f:
            f.write(page.encode("utf-8"))
    return page


class _CallableModule(types.ModuleType):
    """``pydeeplab.report(...)`` calls :func:`report` while ``pydeeplab.report.gather`` stays a module path."""

    def __call__(self, *args, **kwargs) -> str:
        return report(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
