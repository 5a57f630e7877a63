"""Everything the report shows, gathered as plain data (no HTML here).

:func:`gather` runs the model once with every tensor kept and once timed
(:meth:`Interpreter.invoke_profiled`), segments the image (:class:`Segmenter`),
recognises the DeepLab blocks (:mod:`.structure`), and, where LiteRT is
installed, compares every operator with LiteRT's reference kernels, isolated and
cascaded (:mod:`pydeeplab.verification`); for a quantized model it measures the
quantization error against the float shadow (:mod:`pydeeplab.quantization_error`).

Images are kept as small HxWx3 uint8 arrays; the renderer encodes them.
Each part that can fail on some model (no LiteRT, an operator LiteRT lacks, an
output the segmenter does not understand) records its error message instead of
stopping the report.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..image import load_rgb, resize_rgb, to_model_input
from ..interpreter import Interpreter
from ..shadow import dequantize, is_quantized_model, is_quantized_tensor
from ..summary import summarize
from ..tflite.model import Model
from .structure import Structure, recognise

#: Operators whose outputs get thumbnails, at most (the rest of the table has numbers only).
DEFAULT_MAX_THUMBNAIL_OPS = 48
#: Channels shown per operator, besides the channel mean.
THUMBNAIL_CHANNELS = 3
THUMBNAIL_SIZE = 56


@dataclass
class OpRow:
    """One operator of the table."""

    index: int
    op: str
    block: str
    inputs: list[list[int] | None]
    output: list[int]
    dtype: str
    options: dict
    macs: int
    time_ms: float | None
    output_stride: float | None
    receptive_field: float | None
    rate: int
    thumbnails: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (caption, HxW float image)


@dataclass
class Segmentation:
    input_image: np.ndarray | None = None  # HxWx3 uint8 at the model's input size
    class_map: np.ndarray | None = None  # HxWx3 uint8 colours
    overlay: np.ndarray | None = None
    legend: list[tuple[str, tuple[int, int, int], float]] = field(default_factory=list)  # name, colour, fraction
    error: str | None = None


@dataclass
class Comparison:
    """Per-operator error series; ``error`` says why one is missing."""

    litert_isolated: list[dict] = field(default_factory=list)
    litert_cascaded: list[dict] = field(default_factory=list)
    litert_error: str | None = None
    litert_ok: bool | None = None
    quant_isolated: list[dict] = field(default_factory=list)
    quant_cascaded: list[dict] = field(default_factory=list)
    quant_label_agreement: float | None = None
    quant_error: str | None = None


@dataclass
class ReportData:
    model_path: str
    image_path: str | None
    backend: str
    summary: dict
    structure: Structure
    ops: list[OpRow]
    segmentation: Segmentation
    comparison: Comparison
    quantized: bool
    timings: dict[str, float] = field(default_factory=dict)
    run_error: str | None = None


def _model_input(model_path: str, interp: Interpreter, image: str | os.PathLike | None, seed: int):
    """Input arrays and the RGB image at the model's size: preprocessing as the Segmenter does it."""
    from ..models import describe
    from ..verification import make_inputs

    g = interp.model.main
    inputs = make_inputs(g, None, seed)
    rgb = None
    d = interp.get_input_details()[0]
    shape = tuple(int(x) for x in d["shape"])
    if image is not None and len(shape) == 4 and shape[-1] == 3:
        with open(model_path, "rb") as f:
            info = describe(model_path, f.read(), interp.model)
        rgb = resize_rgb(load_rgb(image), shape[1], shape[2])
        inputs[0] = np.ascontiguousarray(to_model_input(rgb, d["dtype"], d["quantization"], info.mean, info.std))
    return inputs, rgb


def _channel_images(x: np.ndarray, n_channels: int) -> list[tuple[str, np.ndarray]]:
    """(caption, HxW float) for the channel mean and the ``n_channels`` most varied channels of [1,H,W,C]."""
    if x.ndim != 4 or x.shape[1] < 2 or x.shape[2] < 2:
        return []
    a = x[0].astype(np.float32)
    step = max(1, max(a.shape[0], a.shape[1]) // (2 * THUMBNAIL_SIZE))
    a = a[::step, ::step]  # the renderer resizes; no need to carry 513x513xC floats
    out = [("mean of channels", a.mean(axis=-1))]
    var = a.reshape(-1, a.shape[-1]).var(axis=0)
    for c in sorted(np.argsort(-var, kind="stable")[:n_channels].tolist()):
        out.append((f"channel {c}", a[..., c]))
    return out


def _pick_thumbnail_ops(structure: Structure, rows_ops: list[int], limit: int) -> set[int]:
    """Which operators get pictures: the last of each block first, then evenly spread, at most ``limit``."""
    if len(rows_ops) <= limit:
        return set(rows_ops)
    chosen = []
    last_of_block: dict[str, int] = {}
    for k in rows_ops:
        last_of_block[structure.blocks.get(k, "")] = k
    chosen += sorted(last_of_block.values())
    rest = [k for k in rows_ops if k not in chosen]
    room = max(0, limit - len(chosen))
    if room and rest:
        chosen += [rest[int(i)] for i in np.linspace(0, len(rest) - 1, min(room, len(rest)))]
    return set(chosen[:limit])


def _real(x: np.ndarray, t) -> np.ndarray:
    """A tensor's value in real units: the pictures show what the integers stand for."""
    return dequantize(x, t.quantization) if is_quantized_tensor(t) else x


def gather(
    model_path: str | os.PathLike,
    image: str | os.PathLike | None = None,
    *,
    backend: str | None = None,
    num_threads: int | None = None,
    litert: bool = True,
    quantization: bool = True,
    max_thumbnail_ops: int = DEFAULT_MAX_THUMBNAIL_OPS,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> ReportData:
    """Run the model and collect what the report shows (see the module docstring).

    ``litert=False`` skips the LiteRT comparison, ``quantization=False`` the float
    shadow; ``max_thumbnail_ops`` bounds the pictures. ``progress(stage)`` is called
    before each stage.
    """
    say = progress or (lambda stage: None)
    model_path = os.fspath(model_path)
    kwargs = dict(num_threads=num_threads)
    if backend is not None:
        kwargs["backend"] = backend
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    say("planning")
    ours = Interpreter(model_path=model_path, experimental_preserve_all_tensors=True, **kwargs)
    ours.allocate_tensors()
    model: Model = ours.model
    g = model.main
    summary = summarize(model)
    structure = recognise(g)
    quantized = is_quantized_model(model)
    inputs, rgb = _model_input(model_path, ours, image, seed)
    timings["plan_s"] = time.perf_counter() - t0

    say("running the model")
    for d, x in zip(ours.get_input_details(), inputs):
        ours.set_tensor(d["index"], x)
    t1 = time.perf_counter()
    ours.invoke()  # also compiles what the JIT has not cached yet
    timings["first_invoke_s"] = time.perf_counter() - t1
    profile = {i: sec for i, _, sec in ours.invoke_profiled()}
    timings["invoke_s"] = sum(profile.values())

    say("pictures")
    compute_ops = [op.index for op in g.operators if not structure.geometry[op.index].weight_prep]
    pictured = _pick_thumbnail_ops(structure, compute_ops, max_thumbnail_ops)
    rows = []
    for o, op in zip(summary["operators"], g.operators):
        geo = structure.geometry[op.index]
        out_t = g.tensors[op.outputs[0]]
        row = OpRow(op.index, o["op"], structure.blocks.get(op.index, ""), o["inputs"],
                    o["outputs"][0] if o["outputs"] else [], out_t.type.name.lower(), o["options"], o["macs"],
                    profile.get(op.index, 0.0) * 1e3, geo.output_stride, geo.receptive_field, geo.rate)
        if op.index in pictured:
            row.thumbnails = _channel_images(_real(ours.get_tensor(op.outputs[0]), out_t), THUMBNAIL_CHANNELS)
        rows.append(row)

    say("segmentation")
    seg = _segmentation(model_path, image, backend, num_threads, rgb)

    comparison = Comparison()
    if litert:
        say("LiteRT comparison")
        _litert_comparison(model_path, ours, inputs, comparison, num_threads)
    if quantization and quantized:
        say("quantization error")
        _quantization_comparison(model, ours, inputs, kwargs, comparison)
    timings["total_s"] = time.perf_counter() - t0
    return ReportData(model_path, os.fspath(image) if image is not None else None, ours.backend, summary, structure,
                      rows, seg, comparison, quantized, timings)


def _segmentation(model_path, image, backend, num_threads, rgb) -> Segmentation:
    seg = Segmentation(input_image=rgb)
    if image is None:
        seg.error = "no image given (--image): the model ran on seeded random input"
        return seg
    try:
        from ..segment import Segmenter

        kwargs = {} if backend is None else {"backend": backend}
        s = Segmenter(model_path, num_threads=num_threads, **kwargs).segment(image)
        h, w = rgb.shape[:2] if rgb is not None else s.labels.shape
        # Shown at the model's input size: the picture the network saw.
        from PIL import Image

        labels = np.asarray(Image.fromarray(s.labels).resize((w, h), Image.NEAREST))
        small = dataclasses.replace(s, labels=labels, image=rgb if rgb is not None else resize_rgb(s.image, h, w))
        seg.class_map = np.asarray(small.color_mask())
        seg.overlay = np.asarray(small.overlay(0.5))
        seg.legend = [(name, tuple(int(c) for c in s.colors[s.class_names.index(name)]) if name in s.class_names
                       else (0, 0, 0), frac) for name, frac in s.class_fractions().items()]
    except Exception as exc:  # any model the segmenter cannot read still gets the rest of its report
        seg.error = f"{type(exc).__name__}: {exc}"
    return seg


def _litert_comparison(model_path: str, ours: Interpreter, inputs, comparison: Comparison,
                       num_threads: int | None) -> None:
    try:
        import ai_edge_litert  # noqa: F401
    except ImportError:
        comparison.litert_error = "LiteRT (ai-edge-litert) is not installed: pip install 'pydeeplab[test]'"
        return
    from ..verification import LiteRun, compare_cascaded, compare_isolated

    try:
        with open(model_path, "rb") as f:
            run = LiteRun(f.read(), inputs, "ref", num_threads)
    except Exception as exc:  # LiteRT refuses the model (e.g. a custom operator it does not know)
        comparison.litert_error = f"LiteRT cannot run this model: {type(exc).__name__}: {exc}"
        return
    iso = compare_isolated(ours, run)
    cas = compare_cascaded(ours, run)
    comparison.litert_isolated = [dataclasses.asdict(r) for r in iso]
    comparison.litert_cascaded = [dataclasses.asdict(r) for r in cas]
    comparison.litert_ok = all(r.ok for r in iso + cas)


def _quantization_comparison(model: Model, ours: Interpreter, inputs, kwargs, comparison: Comparison) -> None:
    from ..quantization_error import compare_quantized, shadow_integer_inputs
    from ..shadow import float_shadow

    try:
        shadow = Interpreter(model_content=float_shadow(model), experimental_preserve_all_tensors=True, **kwargs)
        shadow.allocate_tensors()
        match = {t.index: t.index for t in model.main.tensors}
        iso, cas, final = compare_quantized(ours, shadow, inputs, match,
                                            feeds_from=shadow_integer_inputs(model.main, shadow.model.main))
    except Exception as exc:  # e.g. an operator without a float path
        comparison.quant_error = f"{type(exc).__name__}: {exc}"
        return
    comparison.quant_isolated = [dataclasses.asdict(r) for r in iso]
    comparison.quant_cascaded = [dataclasses.asdict(r) for r in cas]
    comparison.quant_label_agreement = final
