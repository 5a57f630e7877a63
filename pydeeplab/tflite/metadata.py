"""TFLite model metadata: input normalization, labels and output kind, as TF Hub and MediaPipe files carry them.

A model file may hold a ``TFLITE_METADATA`` entry (in the model's ``metadata``
list) whose buffer is a second flatbuffer, ``ModelMetadata`` of TFLite's
``metadata_schema.fbs`` (file identifier ``M001``). What pydeeplab reads of it:

* per input tensor: the ``NormalizationOptions`` process unit (mean/std per
  channel, ``(x - mean) / std``), the ``Stats`` (min/max: the value range the
  tensor expects), the content kind (image, feature);
* per output tensor: its name, content kind and the first label file
  (``TENSOR_AXIS_LABELS`` or ``TENSOR_VALUE_LABELS``) of the tensor, else of the
  subgraph, else of the model;
* MediaPipe's ``SEGMENTER_METADATA`` custom metadata (a flatbuffer of its
  ``image_segmenter_metadata_schema.fbs``, identifier ``V001``): the activation
  of the output layer (none, sigmoid, softmax).

Associated files (label lists) are zipped into the model file after the
flatbuffer; a zip reader finds them from the archive's end, so the model bytes
are opened as a zip archive as they are.

Metadata comes from outside and is optional: :func:`parse_metadata` raises
:class:`ModelError` on a corrupt buffer, and :func:`read_model_metadata` turns
that into a warning and ``None`` so that a model with broken metadata still runs
(with the defaults or the user's settings).
"""

from __future__ import annotations

import io
import warnings
import zipfile
from dataclasses import dataclass

from flatbuffers import packer

from ..errors import ModelError

#: Name of the model metadata entry that holds the metadata flatbuffer.
METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
SEGMENTER_METADATA_NAME = "SEGMENTER_METADATA"
SEGMENTER_IDENTIFIER = b"V001"

# Field slots (metadata_schema.fbs, declaration order; a union takes two slots: type, then value).
_MM_NAME, _MM_DESCRIPTION, _MM_VERSION, _MM_SUBGRAPHS, _MM_AUTHOR, _MM_LICENSE, _MM_ASSOCIATED = range(7)
_SG_NAME, _SG_DESCRIPTION, _SG_INPUTS, _SG_OUTPUTS, _SG_ASSOCIATED = range(5)
_SG_CUSTOM_METADATA = 9
_TM_NAME, _TM_DESCRIPTION, _TM_DIMENSION_NAMES, _TM_CONTENT, _TM_PROCESS_UNITS, _TM_STATS, _TM_ASSOCIATED = range(7)
_CONTENT_PROPERTIES_TYPE, _CONTENT_PROPERTIES = 0, 1
_CONTENT_KINDS = {1: "feature", 2: "image", 3: "bounding_box", 4: "audio"}
_PU_OPTIONS_TYPE, _PU_OPTIONS = 0, 1
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions.NormalizationOptions
_NO_MEAN, _NO_STD = 0, 1
_STATS_MAX, _STATS_MIN = 0, 1
_AF_NAME, _AF_DESCRIPTION, _AF_TYPE = 0, 1, 2
_TENSOR_AXIS_LABELS, _TENSOR_VALUE_LABELS = 2, 3
_CM_NAME, _CM_DATA = 0, 1
_SEG_ACTIVATION = 0
#: ImageSegmenterOptions.Activation of MediaPipe's segmenter metadata.
ACTIVATIONS = {0: "none", 1: "sigmoid", 2: "softmax"}


@dataclass(frozen=True)
class TensorMetadata:
    """What the metadata says about one input or output tensor (None where it is silent).

    ``mean``/``std``: normalization ``(x - mean) / std``, one value or one per
    channel. ``min``/``max``: the value range of the tensor (its ``Stats``).
    ``content``: "image", "feature"... ``label_file``/``labels``: the tensor's
    label file and its lines.
    """

    name: str | None = None
    description: str | None = None
    content: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    min: tuple[float, ...] | None = None
    max: tuple[float, ...] | None = None
    label_file: str | None = None
    labels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ModelMetadata:
    """A model's TFLite metadata: model facts, the main subgraph's inputs and outputs.

    ``activation`` is MediaPipe's segmenter activation ("none", "sigmoid",
    "softmax") when the model carries ``SEGMENTER_METADATA``, else None.
    ``files``: the names of the files zipped into the model.
    """

    name: str | None = None
    description: str | None = None
    version: str | None = None
    author: str | None = None
    license: str | None = None
    inputs: tuple[TensorMetadata, ...] = ()
    outputs: tuple[TensorMetadata, ...] = ()
    activation: str | None = None
    files: tuple[str, ...] = ()

    @property
    def mean(self) -> tuple[float, ...] | None:
        return self.inputs[0].mean if self.inputs else None

    @property
    def std(self) -> tuple[float, ...] | None:
        return self.inputs[0].std if self.inputs else None

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """The labels of the first output tensor (None when the metadata has no label file)."""
        return self.outputs[0].labels if self.outputs else None

    @property
    def label_file(self) -> str | None:
        return self.outputs[0].label_file if self.outputs else None


def _root(buf: memoryview, identifier: bytes, what: str):
    from .reader import _Table  # the same bounds-checked table reader as the model's

    if len(buf) < 8:
        raise ModelError(f"{what}: {len(buf)} bytes, too short for a flatbuffer")
    if bytes(buf[4:8]) != identifier:
        raise ModelError(f"{what}: file identifier {bytes(buf[4:8])!r}, expected {identifier!r}")
    return _Table(buf, packer.uoffset.unpack_from(buf, 0)[0], what)


def _floats(table, slot: int) -> tuple[float, ...] | None:
    a = table.array(slot, "float32")
    return tuple(float(v) for v in a) if a is not None and a.size else None


def _label_file(table, slot: int) -> str | None:
    for f in table.tables(slot, "associated file"):
        if f.scalar(_AF_TYPE, "int8") in (_TENSOR_AXIS_LABELS, _TENSOR_VALUE_LABELS) and f.string(_AF_NAME):
            return f.string(_AF_NAME)
    return None


def _tensor(t, archive: dict[str, bytes], fallback_labels: str | None) -> TensorMetadata:
    content = None
    c = t.table(_TM_CONTENT, "tensor content")
    if c is not None:
        content = _CONTENT_KINDS.get(c.scalar(_CONTENT_PROPERTIES_TYPE, "uint8"))
    mean = std = None
    for unit in t.tables(_TM_PROCESS_UNITS, "process unit"):
        if unit.scalar(_PU_OPTIONS_TYPE, "uint8") == _NORMALIZATION_OPTIONS:
            opts = unit.table(_PU_OPTIONS, "normalization options")
            if opts is not None:
                mean, std = _floats(opts, _NO_MEAN), _floats(opts, _NO_STD)
            break
    if std is not None and any(v == 0 for v in std):
        raise ModelError(f"normalization std {list(std)} contains 0")
    for name, v in (("mean", mean), ("std", std)):
        if v is not None and len(v) not in (1, 3):
            raise ModelError(f"normalization {name} has {len(v)} values, expected 1 or 3 (RGB)")
    lo = hi = None
    stats = t.table(_TM_STATS, "tensor stats")
    if stats is not None:
        hi, lo = _floats(stats, _STATS_MAX), _floats(stats, _STATS_MIN)
    label_file = _label_file(t, _TM_ASSOCIATED) or fallback_labels
    labels = _label_lines(archive[label_file]) if label_file in archive else None
    return TensorMetadata(t.string(_TM_NAME), t.string(_TM_DESCRIPTION), content, mean, std, lo, hi,
                          label_file, labels)


def _activation(subgraph) -> str | None:
    for cm in subgraph.tables(_SG_CUSTOM_METADATA, "custom metadata"):
        if cm.string(_CM_NAME) != SEGMENTER_METADATA_NAME:
            continue
        data = cm.array(_CM_DATA, "uint8")
        if data is None:
            return None
        opts = _root(memoryview(data.tobytes()), SEGMENTER_IDENTIFIER, "segmenter metadata")
        code = opts.scalar(_SEG_ACTIVATION, "int8")
        if code not in ACTIVATIONS:
            raise ModelError(f"segmenter metadata: unknown activation {code}")
        return ACTIVATIONS[code]
    return None


def parse_metadata(metadata: bytes, model_content: bytes | None = None) -> ModelMetadata:
    """Parse a ``TFLITE_METADATA`` flatbuffer; label files are read from ``model_content``'s zip archive.

    Raises :class:`ModelError` naming what is wrong for a corrupt buffer
    (bad identifier, offsets outside the buffer, std of 0). A label file that
    the archive lacks leaves that tensor's ``labels`` None.
    """
    root = _root(memoryview(bytes(metadata)), METADATA_IDENTIFIER, "TFLite metadata")
    archive = zipped_files(model_content) if model_content is not None else {}
    subgraphs = root.tables(_MM_SUBGRAPHS, "subgraph metadata")
    model_labels = _label_file(root, _MM_ASSOCIATED)
    inputs: tuple[TensorMetadata, ...] = ()
    outputs: tuple[TensorMetadata, ...] = ()
    activation = None
    if subgraphs:
        sg = subgraphs[0]
        shared = _label_file(sg, _SG_ASSOCIATED) or model_labels
        inputs = tuple(_tensor(t, archive, None) for t in sg.tables(_SG_INPUTS, "input tensor metadata"))
        outputs = tuple(_tensor(t, archive, shared) for t in sg.tables(_SG_OUTPUTS, "output tensor metadata"))
        activation = _activation(sg)
    return ModelMetadata(root.string(_MM_NAME), root.string(_MM_DESCRIPTION), root.string(_MM_VERSION),
                         root.string(_MM_AUTHOR), root.string(_MM_LICENSE), inputs, outputs, activation,
                         tuple(archive))


def read_model_metadata(model, model_content: bytes, where: str = "model") -> ModelMetadata | None:
    """The metadata of a parsed :class:`pydeeplab.tflite.model.Model` (None when it has none).

    Broken metadata is not fatal (the model itself may be fine): it gives a
    :class:`UserWarning` naming ``where`` and the problem, and None.
    """
    buf = model.metadata.get(METADATA_NAME)
    if buf is None:
        return None
    try:
        return parse_metadata(buf, model_content)
    except ModelError as exc:
        warnings.warn(f"{where}: ignoring its TFLite metadata, which is unreadable ({exc})", stacklevel=2)
        return None


#: Files larger than this in a model's zip archive are not read (a label list is a few kB).
_MAX_ZIPPED_FILE = 16 << 20


def zipped_files(model_content: bytes) -> dict[str, bytes]:
    """The files zipped into a model file (name -> bytes); {} when it carries no readable archive."""
    try:
        with zipfile.ZipFile(io.BytesIO(model_content)) as z:
            return {i.filename: z.read(i) for i in z.infolist()
                    if not i.is_dir() and i.file_size <= _MAX_ZIPPED_FILE}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError,
            RuntimeError):
        return {}


def _label_lines(data: bytes) -> tuple[str, ...] | None:
    """Class names, one a line; a trailing empty line is not a class, inner empty lines keep their index."""
    names = tuple(line.strip() for line in data.decode("utf-8", errors="replace").splitlines())
    while names and not names[-1]:
        names = names[:-1]
    return names or None
