"""The TFLite metadata reader: every field pydeeplab uses, broken metadata, and the real files' metadata.

Metadata buffers are built here with the flatbuffers Builder, slot by slot from
metadata_schema.fbs (and MediaPipe's image_segmenter_metadata_schema.fbs for the
SEGMENTER_METADATA custom metadata), so the reader is checked against the schema's
layout rather than against itself.
"""

import io
import warnings
import zipfile

import flatbuffers
import numpy as np
import pytest
from oracle import require_data

from pydeeplab.errors import ModelError
from pydeeplab.tflite.metadata import ModelMetadata, parse_metadata, read_model_metadata, zipped_files
from pydeeplab.tflite.reader import load_model


def _vector(b: flatbuffers.Builder, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _associated_file(b: flatbuffers.Builder, name: str, file_type: int = 2) -> int:
    n = b.CreateString(name)
    b.StartObject(4)
    b.PrependUOffsetTRelativeSlot(0, n, 0)
    b.PrependInt8Slot(2, file_type, 0)
    return b.EndObject()


def _segmenter_options(activation: int) -> bytes:
    b = flatbuffers.Builder(64)
    b.StartObject(2)  # ImageSegmenterOptions: activation (byte), min_parser_version
    b.PrependInt8Slot(0, activation, -1)  # force the field to be written even for 0
    b.Finish(b.EndObject(), file_identifier=b"V001")
    return bytes(b.Output())


def build_metadata(mean=(127.5, 127.5, 127.5), std=(127.5,), stats=((-1.0,), (1.0,)), content=2,
                   labels_at="subgraph", label_file="labels.txt", activation: int | None = 1,
                   custom_name="SEGMENTER_METADATA") -> bytes:
    """A ModelMetadata with a normalized image input and a labeled output, as TF Hub and MediaPipe write them."""
    b = flatbuffers.Builder(1024)
    # input tensor: content (ImageProperties), process unit (NormalizationOptions), stats
    b.StartObject(2)  # ImageProperties
    props = b.EndObject()
    b.StartObject(3)  # Content: content_properties_type, content_properties, range
    b.PrependUint8Slot(0, content, 0)
    b.PrependUOffsetTRelativeSlot(1, props, 0)
    content_table = b.EndObject()
    m = b.CreateNumpyVector(np.asarray(mean, np.float32))
    s = b.CreateNumpyVector(np.asarray(std, np.float32))
    b.StartObject(2)
    b.PrependUOffsetTRelativeSlot(0, m, 0)
    b.PrependUOffsetTRelativeSlot(1, s, 0)
    norm = b.EndObject()
    b.StartObject(2)  # ProcessUnit
    b.PrependUint8Slot(0, 1, 0)
    b.PrependUOffsetTRelativeSlot(1, norm, 0)
    units = _vector(b, [b.EndObject()])
    lo, hi = b.CreateNumpyVector(np.asarray(stats[0], np.float32)), b.CreateNumpyVector(np.asarray(stats[1], np.float32))
    b.StartObject(2)  # Stats: max, min
    b.PrependUOffsetTRelativeSlot(0, hi, 0)
    b.PrependUOffsetTRelativeSlot(1, lo, 0)
    stats_table = b.EndObject()
    in_name = b.CreateString("image")
    b.StartObject(7)  # TensorMetadata
    b.PrependUOffsetTRelativeSlot(0, in_name, 0)
    b.PrependUOffsetTRelativeSlot(3, content_table, 0)
    b.PrependUOffsetTRelativeSlot(4, units, 0)
    b.PrependUOffsetTRelativeSlot(5, stats_table, 0)
    tin = b.EndObject()
    files = _vector(b, [_associated_file(b, "readme.txt", 1), _associated_file(b, label_file)])
    out_name = b.CreateString("segmentation_masks")
    b.StartObject(7)
    b.PrependUOffsetTRelativeSlot(0, out_name, 0)
    if labels_at == "tensor":
        b.PrependUOffsetTRelativeSlot(6, files, 0)
    tout = b.EndObject()
    custom = None
    if activation is not None:
        data = b.CreateNumpyVector(np.frombuffer(_segmenter_options(activation), np.uint8))
        cname = b.CreateString(custom_name)
        b.StartObject(2)  # CustomMetadata: name, data
        b.PrependUOffsetTRelativeSlot(0, cname, 0)
        b.PrependUOffsetTRelativeSlot(1, data, 0)
        custom = _vector(b, [b.EndObject()])
    ins, outs = _vector(b, [tin]), _vector(b, [tout])
    b.StartObject(10)  # SubGraphMetadata
    b.PrependUOffsetTRelativeSlot(2, ins, 0)
    b.PrependUOffsetTRelativeSlot(3, outs, 0)
    if labels_at == "subgraph":
        b.PrependUOffsetTRelativeSlot(4, files, 0)
    if custom is not None:
        b.PrependUOffsetTRelativeSlot(9, custom, 0)
    sg = _vector(b, [b.EndObject()])
    name, version, author = b.CreateString("tiny"), b.CreateString("v3"), b.CreateString("pydeeplab tests")
    b.StartObject(8)  # ModelMetadata
    b.PrependUOffsetTRelativeSlot(0, name, 0)
    b.PrependUOffsetTRelativeSlot(2, version, 0)
    b.PrependUOffsetTRelativeSlot(3, sg, 0)
    b.PrependUOffsetTRelativeSlot(4, author, 0)
    b.Finish(b.EndObject(), file_identifier=b"M001")
    return bytes(b.Output())


def zipped(model: bytes, files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return model + buf.getvalue()


def test_every_field_is_read():
    meta = parse_metadata(build_metadata(), zipped(b"model", {"labels.txt": "bg\nfg\n"}))
    assert (meta.name, meta.version, meta.author) == ("tiny", "v3", "pydeeplab tests")
    (inp,), (out,) = meta.inputs, meta.outputs
    assert inp.name == "image" and inp.content == "image"
    assert inp.mean == (127.5, 127.5, 127.5) and inp.std == (127.5,)
    assert (inp.min, inp.max) == ((-1.0,), (1.0,))
    # The readme (type DESCRIPTIONS) is not a label file; the subgraph's label file serves the output.
    assert out.name == "segmentation_masks" and out.label_file == "labels.txt" and out.labels == ("bg", "fg")
    assert meta.activation == "sigmoid" and meta.class_names == ("bg", "fg") and meta.files == ("labels.txt",)


@pytest.mark.parametrize("code, name", [(0, "none"), (1, "sigmoid"), (2, "softmax")])
def test_mediapipe_activation(code, name):
    assert parse_metadata(build_metadata(activation=code)).activation == name


def test_other_custom_metadata_and_tensor_level_labels():
    meta = parse_metadata(build_metadata(custom_name="OTHER", labels_at="tensor"), zipped(b"m", {"labels.txt": "a"}))
    assert meta.activation is None and meta.class_names == ("a",)
    assert parse_metadata(build_metadata(activation=None)).activation is None


@pytest.mark.parametrize("kwargs, match", [
    ({"activation": 7}, "activation 7"),
    ({"std": (1.0, 0.0, 1.0)}, "std"),
    ({"mean": (1.0, 2.0)}, "2 values"),
])
def test_invalid_values_are_model_errors(kwargs, match):
    with pytest.raises(ModelError, match=match):
        parse_metadata(build_metadata(**kwargs))


def test_truncated_or_damaged_metadata_never_crashes():
    good = build_metadata()
    rng = np.random.default_rng(0)
    cases = [good[:n] for n in range(0, len(good), 7)]
    for _ in range(300):
        bad = bytearray(good)
        for i in rng.integers(0, len(bad), size=3):
            bad[i] = int(rng.integers(0, 256))
        cases.append(bytes(bad))
    for buf in cases:
        try:
            meta = parse_metadata(buf)
        except ModelError:
            continue
        assert isinstance(meta, ModelMetadata)


def test_model_with_broken_metadata_warns_and_runs(tmp_path):
    from test_segment import tiny_logits_model

    from pydeeplab import Segmenter

    p = tmp_path / "broken.tflite"
    p.write_bytes(tiny_logits_model(metadata=b"\x08\x00\x00\x00M001\xff\xff"))
    with pytest.warns(UserWarning, match="ignoring its TFLite metadata"):
        assert read_model_metadata(load_model(p), p.read_bytes(), str(p)) is None
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        seg = Segmenter(p)
    assert seg.info.mean == (127.5,) and seg.info.sources["normalization"] == "default"


def test_zipped_files_without_archive():
    assert zipped_files(b"not a zip") == {}
    assert zipped_files(zipped(b"m", {"a.txt": "x"})) == {"a.txt": b"x"}


def test_real_metadata_tf_hub_fp16(model_path):
    p = model_path("mobilenetv2_dm05_coco_fp16")
    meta = read_model_metadata(load_model(p), p.read_bytes())
    assert meta.mean == (127.5,) and meta.std == (127.5,) and meta.inputs[0].min == (-1.0,)
    assert meta.class_names[:2] == ("background", "aeroplane") and len(meta.class_names) == 21
    assert meta.activation is None


def test_real_metadata_mediapipe_selfie(model_path):
    p = model_path("selfie_segmenter")
    meta = read_model_metadata(load_model(p), p.read_bytes())
    assert meta.mean == (0.0,) and meta.std == (255.0,) and meta.inputs[0].max == (1.0,)
    assert meta.class_names == ("selfie",) and meta.activation == "none"


def test_mlperf_models_have_no_metadata(model_path):
    p = require_data(model_path("deeplabv3_mnv2_ade20k_uint8"))
    assert read_model_metadata(load_model(p), p.read_bytes()) is None
