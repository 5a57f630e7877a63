"""Known models: the manifest, finding a model file, downloading it, reading its TFLite metadata.

**The manifest** (``weights/manifest.json``, installed as ``pydeeplab/weights/``)
names every model pydeeplab knows: file name, official URL, SHA-256, input size,
dtype and normalization, label set, and whether the output is logits or labels.

**Finding a model** (:func:`find_model`), first match wins:

1. an explicit path (a ``Path``, a string with a folder separator, or a file
   that exists relative to the current folder) is used as it is;
2. a name (a manifest name or alias, or a file name/stem) is looked up as a
   file in the *models folders*, in this order:

   a. each folder of ``$PYDEEPLAB_MODELS`` (several separated by ``os.pathsep``),
   b. the ``weights/`` folder of the source checkout, when pydeeplab runs from one,
   c. the per-user cache: ``$XDG_CACHE_HOME/pydeeplab``, default ``~/.cache/pydeeplab``
      (``%LOCALAPPDATA%\\pydeeplab`` on Windows).

   A file found by a manifest name must have the manifest's SHA-256.

**Downloading** (:func:`fetch`) saves into the first of those folders: the
first folder of ``$PYDEEPLAB_MODELS`` when it is set, else the checkout's
``weights/``, else the per-user cache; ``dest_dir`` overrides it. The file is
streamed to a temporary file beside the destination, its SHA-256 checked, and
only then renamed into place (:mod:`pydeeplab.atomic`).

**Describing a model file** (:func:`describe`): normalization, labels and the
output kind come from the caller's arguments, else the model's TFLite metadata
(:mod:`pydeeplab.tflite.metadata`: class names from the label file zipped into
the model, mean/std, MediaPipe's activation), else the manifest, else what the
output tensor says (:func:`infer_output_kind`).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .errors import ModelError
from .tflite.metadata import METADATA_NAME, parse_metadata

MODELS_ENV = "PYDEEPLAB_MODELS"
_PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE_DIR.parent


class ModelNotFoundError(FileNotFoundError):
    """No file for a model name or path; the message says where pydeeplab looked and what to do."""


class FetchError(OSError):
    """A download that failed (no network, HTTP error, wrong SHA-256); the message says what to do."""


@dataclass(frozen=True)
class ModelInfo:
    """What pydeeplab knows about one model (a manifest entry, or what a file tells about itself).

    ``input_size`` is (height, width); ``mean``/``std`` the float normalization
    ``(x - mean) / std`` per RGB channel (one value for all three, or three);
    ``labels`` the label set name (``pascal_voc``, ``cityscapes``, ``person``,
    ``ade20k_mlperf``); ``output`` one of :data:`OUTPUT_KINDS` (``"logits"``:
    [1,H,W,C] scores; ``"labels"``: class ids; ...).
    ``class_names`` overrides the label set's names (from TFLite metadata).
    """

    name: str
    file: str
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    input_size: tuple[int, int] | None = None
    input_dtype: str | None = None
    mean: tuple[float, ...] = (127.5,)
    std: tuple[float, ...] = (127.5,)
    labels: str = "pascal_voc"
    output: str = "logits"
    description: str = ""
    aliases: tuple[str, ...] = ()
    class_names: tuple[str, ...] | None = field(default=None, compare=False)
    #: Where each setting came from ("normalization", "labels", "output" -> "argument", "metadata", ...).
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    #: The model's TFLite metadata (a :class:`pydeeplab.tflite.metadata.ModelMetadata`), when it has some.
    metadata: object | None = field(default=None, compare=False, repr=False)

    @property
    def preprocessing(self) -> str:
        """The input mapping as a formula, for summaries and ``fetch --list``."""
        if self.input_dtype == "uint8":
            return "raw RGB bytes"
        mean = self.mean[0] if len(set(self.mean)) == 1 else list(self.mean)
        std = self.std[0] if len(set(self.std)) == 1 else list(self.std)
        return f"(x - {mean}) / {std}"

    def to_dict(self) -> dict:
        return {
            "name": self.name, "file": self.file, "url": self.url, "sha256": self.sha256, "size": self.size,
            "input_size": list(self.input_size) if self.input_size else None, "input_dtype": self.input_dtype,
            "preprocessing": self.preprocessing, "labels": self.labels, "output": self.output,
        }


# -- the manifest ---------------------------------------------------------------------------


def manifest_path() -> Path:
    """The manifest file: installed beside the package, or in the checkout's ``weights/``."""
    for candidate in (_PACKAGE_DIR / "weights" / "manifest.json", _CHECKOUT / "weights" / "manifest.json"):
        if candidate.is_file():
            return candidate
    raise ModelError("pydeeplab's model manifest (weights/manifest.json) is missing from the installation")


def _parse_entry(entry: dict, where: str) -> ModelInfo:
    try:
        inp = entry.get("input", {})
        size = inp.get("size")
        info = ModelInfo(
            name=str(entry["name"]),
            file=str(entry["file"]),
            url=entry.get("url"),
            sha256=str(entry["sha256"]).lower() if entry.get("sha256") else None,
            size=int(entry["size"]) if entry.get("size") else None,
            input_size=(int(size[0]), int(size[1])) if size else None,
            input_dtype=inp.get("dtype"),
            mean=tuple(float(v) for v in inp.get("mean", (127.5,))),
            std=tuple(float(v) for v in inp.get("std", (127.5,))),
            labels=str(entry.get("labels", "pascal_voc")),
            output=str(entry.get("output", "logits")),
            description=str(entry.get("description", "")),
            aliases=tuple(str(a) for a in entry.get("aliases", ())),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelError(f"{where}: bad manifest entry {entry!r} ({exc})") from None
    if info.output not in OUTPUT_KINDS:
        raise ModelError(f"{where}: model {info.name}: output must be one of {', '.join(OUTPUT_KINDS)}, "
                         f"not {info.output!r}")
    return info


def load_manifest(path: str | os.PathLike | None = None) -> list[ModelInfo]:
    """The known models, in manifest order (``path`` defaults to :func:`manifest_path`)."""
    p = Path(path) if path is not None else manifest_path()
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        entries = data["models"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{p}: not a readable model manifest ({exc})") from None
    return [_parse_entry(e, str(p)) for e in entries]


def lookup(name: str, manifest: list[ModelInfo] | None = None) -> ModelInfo | None:
    """The manifest entry called ``name``: its name, an alias, its file name or file stem."""
    for info in manifest if manifest is not None else load_manifest():
        if name in (info.name, info.file, Path(info.file).stem) or name in info.aliases:
            return info
    return None


def lookup_sha256(digest: str, manifest: list[ModelInfo] | None = None) -> ModelInfo | None:
    """The manifest entry whose file has this SHA-256 (hex), if any."""
    for info in manifest if manifest is not None else load_manifest():
        if info.sha256 == digest.lower():
            return info
    return None


# -- where models live ------------------------------------------------------------------------


def user_cache_dir() -> Path:
    """The per-user model cache: ``$XDG_CACHE_HOME/pydeeplab`` or ``~/.cache/pydeeplab``
    (``%LOCALAPPDATA%\\pydeeplab`` on Windows)."""
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "pydeeplab"
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "pydeeplab"


def checkout_weights_dir() -> Path | None:
    """The ``weights/`` folder of the source checkout pydeeplab runs from (None when installed)."""
    weights = _CHECKOUT / "weights"
    if (_CHECKOUT / "pyproject.toml").is_file() and weights.is_dir():
        return weights
    return None


def models_dirs() -> list[Path]:
    """The folders a model name is looked up in, in order (see the module docstring)."""
    dirs = [Path(p) for p in os.environ.get(MODELS_ENV, "").split(os.pathsep) if p]
    checkout = checkout_weights_dir()
    if checkout is not None:
        dirs.append(checkout)
    dirs.append(user_cache_dir())
    return dirs


def default_download_dir() -> Path:
    """Where :func:`fetch` saves: the first of :func:`models_dirs`."""
    return models_dirs()[0]


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, as 64 lowercase hex digits."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _is_path(text: str) -> bool:
    """A string with a folder separator names a file, never a model."""
    return os.sep in text or (os.altsep is not None and os.altsep in text)


def find_model(model: str | os.PathLike) -> tuple[Path, ModelInfo | None]:
    """The file of ``model`` (a path or a name) and its manifest entry (None when unknown).

    See the module docstring for the search order. Raises :class:`ModelNotFoundError`
    with the folders searched and how to get the file; :class:`ModelError` when a
    file found by a manifest name has another SHA-256.
    """
    manifest = load_manifest()
    text = os.fspath(model)
    p = Path(text)
    if isinstance(model, os.PathLike) or _is_path(text) or p.is_file():
        if p.is_file():
            return p, lookup_sha256(sha256_file(p), manifest)
        raise ModelNotFoundError(f"model file {p} does not exist" if not p.exists() else f"model {p} is not a file")
    info = lookup(text, manifest)
    file = info.file if info is not None else (text if text.endswith(".tflite") else f"{text}.tflite")
    dirs = models_dirs()
    for d in dirs:
        candidate = d / file
        if candidate.is_file():
            if info is not None and info.sha256:
                digest = sha256_file(candidate)
                if digest != info.sha256:
                    raise ModelError(
                        f"{candidate} has SHA-256 {digest}, but {info.name} has {info.sha256}: the file is corrupt or "
                        f"another model. Run `pydeeplab fetch {info.name} --force` or pass the file as a path.")
            return candidate, info
    searched = "\n".join(f"  {d}" for d in dirs)
    if info is not None:
        hint = (f"Run `pydeeplab fetch {info.name}` to download it, or place {file} in one of those folders "
                f"(or set {MODELS_ENV} to the folder that holds it).")
    else:
        known = ", ".join(i.name for i in manifest)
        hint = f"It is not a known model name ({known}) nor an existing file; pass a path to a .tflite file."
    raise ModelNotFoundError(f"model {text!r}: no file {file} in\n{searched}\n{hint}")


# -- downloading ----------------------------------------------------------------------------


Opener = Callable[..., object]


def _no_network_message(info: ModelInfo, url: str, dest: Path, reason: object) -> str:
    return (f"cannot download {info.name} from {url}: {reason}\n"
            f"If this machine has no network, download that URL on another machine and place the file at\n"
            f"  {dest}\n"
            f"(SHA-256 {info.sha256}), or put it in any folder and set {MODELS_ENV} to that folder.")


def download(info: ModelInfo, dest: Path, *, url: str | None = None, opener: Opener | None = None,
             progress: bool = False, timeout: float = 30.0) -> Path:
    """Download ``info``'s file to ``dest`` atomically, checking its SHA-256.

    ``opener(url, timeout=...)`` returns a response with ``read(n)`` and ``headers``
    (default :func:`urllib.request.urlopen`; tests pass a fake). The data go to a
    temporary file beside ``dest`` that is renamed into place only when complete
    and matching ``info.sha256``. Raises :class:`FetchError` otherwise.
    """
    url = url or info.url
    if not url:
        raise FetchError(f"{info.name} has no download URL; place {info.file} in {dest.parent} by hand")
    opener = opener or urllib.request.urlopen
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    try:
        with opener(url, timeout=timeout) as response, atomic_write(dest) as out:
            length = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
            total = int(length) if length and str(length).isdigit() else info.size
            from tqdm import tqdm

            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=info.file,
                      disable=None if progress else True, leave=False) as bar:
                while True:
                    block = response.read(1 << 16)
                    if not block:
                        break
                    h.update(block)
                    out.write(block)
                    bar.update(len(block))
            digest = h.hexdigest()
            if info.sha256 and digest != info.sha256:
                # Raising inside atomic_write removes the temporary file: nothing lands at dest.
                raise FetchError(f"{url}: downloaded data have SHA-256 {digest}, expected {info.sha256}; "
                                 f"nothing was saved (a changed or corrupted download)")
    except FetchError:
        raise
    except urllib.error.HTTPError as exc:
        raise FetchError(f"cannot download {info.name} from {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(_no_network_message(info, url, dest, reason)) from None
    except OSError as exc:
        if exc.filename is not None and Path(exc.filename).parent == dest.parent:
            raise FetchError(f"cannot write {dest}: {exc.strerror or exc}") from None
        raise FetchError(_no_network_message(info, url, dest, exc)) from None
    return dest


def fetch(name: str, dest_dir: str | os.PathLike | None = None, *, force: bool = False,
          opener: Opener | None = None, progress: bool = False, url: str | None = None) -> tuple[Path, bool]:
    """Download the manifest model ``name`` into ``dest_dir`` (default :func:`default_download_dir`).

    Returns (path, downloaded): a file already there with the right SHA-256 is
    kept (downloaded False) unless ``force``. Raises :class:`FetchError`, or
    :class:`ModelNotFoundError` for a name the manifest does not know.
    """
    manifest = load_manifest()
    info = lookup(name, manifest)
    if info is None:
        known = ", ".join(i.name for i in manifest)
        raise ModelNotFoundError(f"unknown model {name!r}: known models are {known}")
    dest = Path(dest_dir) if dest_dir is not None else default_download_dir()
    path = dest / info.file
    if not force and path.is_file() and (info.sha256 is None or sha256_file(path) == info.sha256):
        return path, False
    return download(info, path, url=url, opener=opener, progress=progress), True


# -- TFLite metadata --------------------------------------------------------------------------


@dataclass(frozen=True)
class TfliteMetadata:
    """What :func:`read_tflite_metadata` returns (None where the metadata is silent)."""

    label_file: str | None = None
    class_names: tuple[str, ...] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


def read_tflite_metadata(metadata: bytes, model_content: bytes | None = None) -> TfliteMetadata:
    """Labels and normalization of a ``TFLITE_METADATA`` flatbuffer (see :mod:`pydeeplab.tflite.metadata`).

    Raises :class:`ModelError` for a corrupt metadata buffer; a label file
    missing from ``model_content``'s archive leaves ``class_names`` None.
    """
    meta = parse_metadata(metadata, model_content)
    return TfliteMetadata(meta.label_file, meta.class_names, meta.mean, meta.std)


# -- describing a model file --------------------------------------------------------------------

#: Output kinds. logits: [1,H,W,C] scores (argmax; softmax for confidences); probabilities: the same
#: already softmaxed; probability / logit: one foreground channel [1,H,W,1] (labels p > 0.5, sigmoid
#: first for a logit); labels: integer class ids ([1,H,W], [H,W] or [1,H,W,1]).
OUTPUT_KINDS = ("logits", "probabilities", "probability", "logit", "labels")


def output_grid(shape: tuple[int, ...], kind: str) -> tuple[int, int]:
    """(height, width) of a segmentation output of ``shape`` read as ``kind``.

    Scores: [1,H,W,C] or [H,W,C]; class ids and one-channel scores: [1,H,W,1],
    [1,H,W] or [H,W]. Raises :class:`ModelError` for any other shape.
    """
    shape = tuple(int(d) for d in shape)
    one_channel = kind in ("labels", "probability", "logit")
    if len(shape) == 4 and shape[0] == 1 and (shape[3] == 1 or not one_channel):
        return shape[1], shape[2]
    if len(shape) == 3 and one_channel and shape[0] == 1:
        return shape[1], shape[2]
    if len(shape) == 3 and kind in ("logits", "probabilities") and shape[0] != 1:  # [1,H,W] is not [H,W,C]
        return shape[0], shape[1]
    if len(shape) == 2 and one_channel:
        return shape
    expected = "[1,H,W,1], [1,H,W] or [H,W]" if one_channel else "[1,H,W,C] or [H,W,C]"
    raise ModelError(f"a segmentation output of kind {kind!r} must be {expected}, got shape {list(shape)}")


def _producer(graph, tensor: int):
    for op in graph.operators:
        if tensor in op.outputs:
            return op
    return None


def infer_output_kind(model, activation: str | None = None) -> str:
    """The output kind (:data:`OUTPUT_KINDS`) of a parsed model's first output.

    Integer tensors without a quantization scale hold class ids. Scores with
    one channel are a probability when the graph ends in LOGISTIC (or
    MediaPipe's metadata says activation "none"), else a logit; with several
    channels they are probabilities when the graph ends in SOFTMAX, else logits.
    ``activation``: MediaPipe's segmenter activation, when the metadata has it.
    """
    from .tflite.schema import BuiltinOperator

    g = model.main
    out = g.tensors[g.outputs[0]]
    shape = tuple(int(d) for d in out.shape)
    dtype = np.dtype(out.type.dtype) if out.type.dtype is not None else None
    quantized = out.quantization is not None and out.quantization.scale != 0.0
    op = _producer(g, g.outputs[0])
    last = op.builtin if op is not None else None
    if dtype is not None and dtype.kind in "iub" and not quantized:
        kind = "labels"
    elif len(shape) >= 3 and shape[-1] == 1:
        if activation == "sigmoid":
            kind = "logit"
        elif activation == "none" or last == BuiltinOperator.LOGISTIC:
            kind = "probability"
        else:
            kind = "logit"
    elif len(shape) == 3 and shape[0] == 1 and last != BuiltinOperator.LOGISTIC:
        kind = "labels"  # float class ids (some converters cast ARG_MAX's result)
    elif len(shape) == 3 and shape[0] == 1:
        kind = "probability"
    elif activation == "softmax":
        kind = "logits"
    else:
        kind = "probabilities" if last == BuiltinOperator.SOFTMAX else "logits"
    output_grid(shape, kind)  # refuses shapes that are not a segmentation map
    return kind


def read_label_file(path: str | os.PathLike) -> tuple[str, ...]:
    """Class names from a text file, one a line (index = class id); raises ModelError when unreadable or empty."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the label file ({exc.strerror or exc})") from None
    names = tuple(line.strip() for line in text.splitlines())
    while names and not names[-1]:
        names = names[:-1]
    if not names:
        raise ModelError(f"{path}: the label file holds no class name")
    return names


def _channels(values: float | tuple[float, ...] | list[float] | None, what: str) -> tuple[float, ...] | None:
    if values is None:
        return None
    v = tuple(float(x) for x in (values if isinstance(values, (tuple, list)) else (values,)))
    if len(v) not in (1, 3) or not all(np.isfinite(v)):
        raise ModelError(f"{what} must be one number or three (R, G, B), got {list(v)}")
    if what == "std" and any(x == 0 for x in v):
        raise ModelError(f"std must not be 0, got {list(v)}")
    return v


def describe(path: str | os.PathLike, content: bytes, model, info: ModelInfo | None = None, *,
             mean: float | tuple[float, ...] | None = None, std: float | tuple[float, ...] | None = None,
             labels: str | os.PathLike | tuple[str, ...] | list[str] | None = None,
             output: str | None = None) -> ModelInfo:
    """The :class:`ModelInfo` to run a model file with.

    Each setting comes from the first source that has it: the arguments
    (``mean``/``std``, ``labels`` as a label-set name, a label file or a list
    of names, ``output`` one of :data:`OUTPUT_KINDS`), the model's TFLite
    metadata, its manifest entry (``info``, or found by SHA-256), what the
    tensors say. ``ModelInfo.sources`` records which one each came from.
    Input size and dtype always come from the model. Broken metadata is
    ignored with a warning. ``model`` is the parsed :class:`pydeeplab.tflite.model.Model`.
    """
    from .palette import LABEL_SETS, label_set_for
    from .tflite.metadata import read_model_metadata

    path = Path(path)
    digest = hashlib.sha256(content).hexdigest()
    if info is None:
        info = lookup_sha256(digest)
    known = info is not None
    g = model.main
    if len(g.inputs) != 1:
        raise ModelError(f"{path}: a segmentation model has one input, this one has {len(g.inputs)}")
    inp = g.tensors[g.inputs[0]]
    if len(inp.shape) != 4 or inp.shape[0] != 1 or inp.shape[3] != 3:
        raise ModelError(f"{path}: the input must be an RGB image [1,H,W,3], got shape {list(inp.shape)}")
    meta = read_model_metadata(model, content, str(path))
    sources = {}

    if output is not None:
        if output not in OUTPUT_KINDS:
            raise ModelError(f"output kind {output!r} is not one of {', '.join(OUTPUT_KINDS)}")
        kind, sources["output"] = output, "argument"
    else:
        kind = infer_output_kind(model, meta.activation if meta else None)
        sources["output"] = "metadata and model" if meta and meta.activation else "model"
    out = g.tensors[g.outputs[0]]
    try:
        output_grid(out.shape, kind)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from None
    channels = int(out.shape[-1]) if kind in ("logits", "probabilities") else None

    if info is None:
        info = ModelInfo(name=path.stem, file=path.name, sha256=digest, size=len(content))
    base_names = info.class_names
    label_set = info.labels if known else None
    names = None
    if labels is not None:
        if isinstance(labels, (tuple, list)):
            names = tuple(str(n) for n in labels)
        elif str(labels) in LABEL_SETS:
            label_set, names = str(labels), None
        else:
            names = read_label_file(labels)
        sources["labels"] = "argument"
    elif meta is not None and meta.class_names:
        names, sources["labels"] = meta.class_names, "metadata"
    elif known:
        names, sources["labels"] = base_names, "manifest"
    if kind in ("probability", "logit"):
        # One channel: class 1 is the foreground the metadata names (MediaPipe: "selfie"), 0 the rest.
        if names is not None and len(names) == 1:
            names = ("background", names[0])
        elif names is None and label_set in (None, "pascal_voc"):
            label_set = "person"
    if label_set is None:
        classes = channels if kind in ("logits", "probabilities") else None
        ls = label_set_for(classes) if classes else LABEL_SETS["pascal_voc"]
        label_set = ls.name
        if names is None and ls.names != LABEL_SETS[ls.name].names:
            names = ls.names
        sources.setdefault("labels", "model")

    m, s = _channels(mean, "mean"), _channels(std, "std")
    if m is not None or s is not None:
        sources["normalization"] = "argument"
    elif meta is not None and (meta.mean or meta.std):
        sources["normalization"] = "metadata"
    else:
        sources["normalization"] = "manifest" if known else "default"
    if m is None:
        m = (meta.mean if meta is not None and meta.mean else None) or info.mean
    if s is None:
        s = (meta.std if meta is not None and meta.std else None) or info.std
    return replace(info, input_size=(int(inp.shape[1]), int(inp.shape[2])), input_dtype=str(np.dtype(inp.type.dtype)),
                   output=kind, sha256=digest, labels=label_set, class_names=names, mean=tuple(m), std=tuple(s),
                   sources=sources, metadata=meta)
