"""The model manifest, model lookup, fetch (offline: fake openers and file:// URLs), TFLite metadata."""

import io
import os
import urllib.error
import zipfile
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from oracle import data_dir, require_data

from pydeeplab import models
from pydeeplab.cli import main
from pydeeplab.errors import ModelError
from pydeeplab.models import (FetchError, ModelNotFoundError, fetch, find_model, load_manifest, lookup,
                              read_tflite_metadata, sha256_file)

REAL = ("deeplabv3_257_mv_gpu", "deeplabv3_mnv2_pascal_quant", "deeplabv3_mnv2_dm05_pascal_quant")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No $PYDEEPLAB_DATA (nor the old $PYDEEPLAB_MODELS), no checkout weights/, a private per-user cache."""
    monkeypatch.delenv("PYDEEPLAB_DATA", raising=False)
    monkeypatch.delenv("PYDEEPLAB_MODELS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(models, "checkout_weights_dir", lambda: None)
    return tmp_path


# -- manifest ---------------------------------------------------------------------------------


def test_manifest_names_the_known_models():
    manifest = {m.name: m for m in load_manifest()}
    assert {"deeplabv3_257", "deeplabv3_mnv2_pascal_quant", "deeplabv3_mnv2_dm05_pascal_quant",
            "deeplabv3_257_metadata"} <= set(manifest)
    hub = manifest["deeplabv3_257_metadata"]
    assert hub.sha256 == "9711334db2b01d5894fed8ed0f5cb3e97d125b8d229f8d8692f625801818f5ef"
    assert hub.output == "logits" and hub.input_dtype == "float32"
    f = manifest["deeplabv3_257"]
    assert (f.input_size, f.input_dtype, f.output, f.labels) == ((257, 257), "float32", "logits", "pascal_voc")
    assert f.preprocessing == "(x - 127.5) / 127.5"
    q = manifest["deeplabv3_mnv2_pascal_quant"]
    assert (q.input_size, q.input_dtype, q.output, q.preprocessing) == ((513, 513), "uint8", "labels", "raw RGB bytes")
    for m in manifest.values():
        assert m.url.startswith("https://") and len(m.sha256) == 64 and m.file.endswith(".tflite")


@pytest.mark.parametrize("stem", REAL)
def test_manifest_sha256_matches_the_real_files(stem):
    path = require_data(data_dir() / "models" / f"{stem}.tflite")
    info = lookup(stem)
    assert info is not None and info.file == path.name
    assert sha256_file(path) == info.sha256


def test_lookup_by_name_alias_file_and_stem():
    assert lookup("deeplabv3_257").file == "deeplabv3_257_mv_gpu.tflite"
    assert lookup("deeplabv3_257_mv_gpu").name == "deeplabv3_257"
    assert lookup("deeplabv3_257_mv_gpu.tflite").name == "deeplabv3_257"
    assert lookup("lite-model_deeplabv3_1_metadata_2").name == "deeplabv3_257_metadata"
    assert lookup("nonsense") is None


def test_bad_manifest_is_a_model_error(tmp_path):
    p = tmp_path / "m.json"
    p.write_text('{"models": [{"name": "x"}]}')
    with pytest.raises(ModelError, match="bad manifest entry"):
        load_manifest(p)
    p.write_text("{not json")
    with pytest.raises(ModelError, match="not a readable model manifest"):
        load_manifest(p)


# -- finding a model ---------------------------------------------------------------------------


def test_explicit_path_wins_and_is_recognized_by_sha256(isolated):
    src = require_data(data_dir() / "models" / "deeplabv3_mnv2_dm05_pascal_quant.tflite")
    renamed = isolated / "renamed.tflite"
    renamed.write_bytes(src.read_bytes())
    path, info = find_model(renamed)
    assert path == renamed and info.name == "deeplabv3_mnv2_dm05_pascal_quant"
    path, info = find_model(str(renamed))
    assert path == renamed
    other = isolated / "other.tflite"
    other.write_bytes(b"whatever")
    assert find_model(other) == (other, None)  # an unknown file is used as it is
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        find_model(str(isolated / "absent.tflite"))


def test_search_order_env_then_cache(isolated, monkeypatch):
    src = require_data(data_dir() / "models" / "deeplabv3_mnv2_dm05_pascal_quant.tflite")
    a, b, cache = isolated / "a", isolated / "b", isolated / "xdg" / "pydeeplab"
    for d in (a, b, cache):
        d.mkdir(parents=True)
    (cache / src.name).write_bytes(src.read_bytes())
    assert find_model("deeplabv3_mnv2_dm05_pascal_quant")[0] == cache / src.name
    monkeypatch.setenv("PYDEEPLAB_DATA", os.pathsep.join([str(a), str(b)]))
    (b / src.name).write_bytes(src.read_bytes())
    assert find_model("deeplabv3_mnv2_dm05_pascal_quant")[0] == b / src.name
    (a / src.name).write_bytes(src.read_bytes())
    assert find_model("deeplabv3_mnv2_dm05_pascal_quant")[0] == a / src.name
    # A data folder laid out like ../shared/data: its models/ subfolder comes first.
    (a / "models").mkdir()
    (a / "models" / src.name).write_bytes(src.read_bytes())
    assert find_model("deeplabv3_mnv2_dm05_pascal_quant")[0] == a / "models" / src.name
    # An unknown name is a file stem in the same folders.
    (b / "mine.tflite").write_bytes(b"x")
    assert find_model("mine") == (b / "mine.tflite", None)


def test_checkout_weights_folder_comes_after_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PYDEEPLAB_DATA", raising=False)
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setattr(models, "checkout_weights_dir", lambda: weights)
    assert models.models_dirs() == [weights, tmp_path / "xdg" / "pydeeplab"]
    assert models.default_download_dir() == weights
    monkeypatch.setenv("PYDEEPLAB_DATA", str(tmp_path / "env"))
    assert models.models_dirs()[:3] == [tmp_path / "env" / "models", tmp_path / "env", weights]
    assert models.default_download_dir() == tmp_path / "env" / "models"
    assert models.data_dir() == tmp_path / "env"


def test_the_real_checkout_has_a_weights_folder():
    assert models.checkout_weights_dir() == Path(models.__file__).resolve().parent.parent / "weights"


def test_not_found_says_where_it_looked_and_what_to_do(isolated):
    with pytest.raises(ModelNotFoundError) as exc:
        find_model("deeplabv3_257")
    text = str(exc.value)
    assert "deeplabv3_257_mv_gpu.tflite" in text and str(isolated / "xdg" / "pydeeplab") in text
    assert "pydeeplab fetch deeplabv3_257" in text and "PYDEEPLAB_DATA" in text
    assert "PYDEEPLAB_MODELS" not in text
    with pytest.raises(ModelNotFoundError, match="not a known model name"):
        find_model("no_such_model")


def test_the_old_models_variable_is_named_when_a_model_is_not_found(isolated, monkeypatch):
    monkeypatch.setenv("PYDEEPLAB_MODELS", str(isolated))
    with pytest.raises(ModelNotFoundError, match="PYDEEPLAB_MODELS is no longer read: set PYDEEPLAB_DATA"):
        find_model("deeplabv3_257")


def test_a_named_file_with_the_wrong_sha256_is_refused(isolated, monkeypatch):
    monkeypatch.setenv("PYDEEPLAB_DATA", str(isolated))
    (isolated / "deeplabv3_257_mv_gpu.tflite").write_bytes(b"truncated download")
    with pytest.raises(ModelError, match="SHA-256"):
        find_model("deeplabv3_257")


# -- fetch --------------------------------------------------------------------------------------


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_fetch_file_url_verifies_and_writes_atomically(isolated):
    src = require_data(data_dir() / "models" / "deeplabv3_mnv2_dm05_pascal_quant.tflite")
    dest = isolated / "models"
    path, downloaded = fetch("deeplabv3_mnv2_dm05_pascal_quant", dest, url=src.as_uri())
    assert downloaded and path == dest / src.name
    assert path.read_bytes() == src.read_bytes()
    assert _no_temp_files(dest)
    # A good copy is kept; --force downloads again.
    assert fetch("deeplabv3_mnv2_dm05_pascal_quant", dest, url=src.as_uri()) == (path, False)
    assert fetch("deeplabv3_mnv2_dm05_pascal_quant", dest, url=src.as_uri(), force=True) == (path, True)


def test_fetch_goes_to_the_models_variable_by_default(isolated, monkeypatch):
    src = require_data(data_dir() / "models" / "deeplabv3_mnv2_dm05_pascal_quant.tflite")
    monkeypatch.setenv("PYDEEPLAB_DATA", str(isolated / "env"))
    path, _ = fetch("deeplabv3_mnv2_dm05_pascal_quant", url=src.as_uri())
    assert path == isolated / "env" / "models" / src.name
    assert find_model("deeplabv3_mnv2_dm05_pascal_quant")[0] == path


def test_fetch_rejects_a_wrong_sha256_and_keeps_the_old_file(isolated):
    bogus = isolated / "bogus.bin"
    bogus.write_bytes(b"not the model" * 1000)
    dest = isolated / "models"
    dest.mkdir()
    old = dest / "deeplabv3_257_mv_gpu.tflite"
    old.write_bytes(b"previous content")
    with pytest.raises(FetchError, match="SHA-256"):
        fetch("deeplabv3_257", dest, url=bogus.as_uri())
    assert old.read_bytes() == b"previous content"
    assert _no_temp_files(dest)


class _Response:
    """A fake HTTP response: ``fail_after`` blocks, then a connection reset."""

    def __init__(self, data: bytes, fail_after: int | None = None):
        self._data, self._pos, self._fail_after, self._reads = data, 0, fail_after, 0
        self.headers = {"Content-Length": str(len(data))}

    def read(self, n: int) -> bytes:
        if self._fail_after is not None and self._reads >= self._fail_after:
            raise ConnectionResetError("connection reset by peer")
        self._reads += 1
        block = self._data[self._pos : self._pos + n]
        self._pos += len(block)
        return block

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_fetch_without_network_explains_how_to_place_the_file(isolated):
    def offline(url, timeout):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    dest = isolated / "models"
    with pytest.raises(FetchError) as exc:
        fetch("deeplabv3_257", dest, opener=offline)
    text = str(exc.value)
    assert "cannot download deeplabv3_257" in text and "name resolution" in text
    assert str(dest / "deeplabv3_257_mv_gpu.tflite") in text and "PYDEEPLAB_DATA" in text
    assert "68a539782c2c6a72f8aac3724600124a85ed977162b44e84cbae5db717c933c6" in text
    assert not (dest / "deeplabv3_257_mv_gpu.tflite").exists() and _no_temp_files(dest)


def test_fetch_unreachable_host(isolated):
    # Port 9 (discard) on the loopback: refused at once, no real network involved.
    with pytest.raises(FetchError, match="cannot download"):
        fetch("deeplabv3_257", isolated / "m", url="http://127.0.0.1:9/deeplabv3_257_mv_gpu.tflite")


def test_interrupted_download_leaves_nothing(isolated):
    src = require_data(data_dir() / "models" / "deeplabv3_mnv2_dm05_pascal_quant.tflite")
    data = src.read_bytes()
    dest = isolated / "models"
    with pytest.raises(FetchError):
        fetch("deeplabv3_mnv2_dm05_pascal_quant", dest, opener=lambda url, timeout: _Response(data, fail_after=3))
    assert list(dest.iterdir()) == []
    path, _ = fetch("deeplabv3_mnv2_dm05_pascal_quant", dest, opener=lambda url, timeout: _Response(data))
    assert sha256_file(path) == lookup("deeplabv3_mnv2_dm05_pascal_quant").sha256


def test_fetch_unknown_name(isolated):
    with pytest.raises(ModelNotFoundError, match="known models are"):
        fetch("no_such_model", isolated)


def test_cli_fetch_offline_exit_status(isolated, monkeypatch, capsys):
    def offline(url, timeout):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(models.urllib.request, "urlopen", offline)
    assert main(["fetch", "deeplabv3_257", "--dir", str(isolated / "m")]) == 1
    err = capsys.readouterr().err
    assert "no network" in err and "place the file at" in err
    assert main(["fetch", "--list"]) == 0
    out = capsys.readouterr().out
    assert "deeplabv3_mnv2_pascal_quant" in out and "not downloaded" in out


def test_cli_fetch_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fetch", "--help"])
    assert exc.value.code == 0
    assert "example" in capsys.readouterr().out


# -- TFLite metadata ----------------------------------------------------------------------------


def _vector(b: flatbuffers.Builder, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def metadata_buffer(label_file: str | None = "labels.txt", mean=(0.0,), std=(255.0,), where: str = "output",
                    file_type: int = 2) -> bytes:
    """A metadata_schema.fbs ModelMetadata flatbuffer ("M001") written with the flatbuffers Builder."""
    b = flatbuffers.Builder(0)
    units = []
    if mean is not None:
        m = b.CreateNumpyVector(np.asarray(mean, np.float32))
        s = b.CreateNumpyVector(np.asarray(std, np.float32))
        b.StartObject(2)  # NormalizationOptions
        b.PrependUOffsetTRelativeSlot(0, m, 0)
        b.PrependUOffsetTRelativeSlot(1, s, 0)
        norm = b.EndObject()
        b.StartObject(2)  # ProcessUnit: options_type (union tag), options
        b.PrependUint8Slot(0, 1, 0)
        b.PrependUOffsetTRelativeSlot(1, norm, 0)
        units.append(b.EndObject())
    unit_vec = _vector(b, units)
    in_name = b.CreateString("image")
    b.StartObject(7)  # TensorMetadata (input)
    b.PrependUOffsetTRelativeSlot(0, in_name, 0)
    b.PrependUOffsetTRelativeSlot(4, unit_vec, 0)
    tin = b.EndObject()
    files = None
    if label_file is not None:
        fname = b.CreateString(label_file)
        b.StartObject(4)  # AssociatedFile
        b.PrependUOffsetTRelativeSlot(0, fname, 0)
        b.PrependInt8Slot(2, file_type, 0)
        files = _vector(b, [b.EndObject()])
    b.StartObject(7)  # TensorMetadata (output)
    if files is not None and where == "output":
        b.PrependUOffsetTRelativeSlot(6, files, 0)
    tout = b.EndObject()
    ins, outs = _vector(b, [tin]), _vector(b, [tout])
    b.StartObject(7)  # SubGraphMetadata
    b.PrependUOffsetTRelativeSlot(2, ins, 0)
    b.PrependUOffsetTRelativeSlot(3, outs, 0)
    sg = _vector(b, [b.EndObject()])
    name = b.CreateString("tiny segmenter")
    b.StartObject(8)  # ModelMetadata
    b.PrependUOffsetTRelativeSlot(0, name, 0)
    b.PrependUOffsetTRelativeSlot(3, sg, 0)
    if files is not None and where == "model":
        b.PrependUOffsetTRelativeSlot(6, files, 0)
    b.Finish(b.EndObject(), file_identifier=b"M001")
    return bytes(b.Output())


def with_zip(model: bytes, files: dict[str, str]) -> bytes:
    """``model`` with a zip archive of ``files`` appended, as TFLite's metadata populator packs them."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return model + buf.getvalue()


LABELS = "\n".join(f"m{i}" for i in range(21)) + "\n"


def test_metadata_labels_and_normalization():
    meta = read_tflite_metadata(metadata_buffer(), with_zip(b"model bytes", {"labels.txt": LABELS}))
    assert meta.label_file == "labels.txt"
    assert meta.class_names == tuple(f"m{i}" for i in range(21))
    assert meta.mean == (0.0,) and meta.std == (255.0,)


def test_metadata_model_level_label_file_and_value_labels():
    meta = read_tflite_metadata(metadata_buffer(where="model", file_type=3), with_zip(b"m", {"labels.txt": "a\nb"}))
    assert meta.class_names == ("a", "b")


def test_metadata_without_labels_or_normalization():
    meta = read_tflite_metadata(metadata_buffer(label_file=None, mean=None))
    assert meta == models.TfliteMetadata()
    # A label file the archive lacks (or no archive at all) leaves the names unset.
    assert read_tflite_metadata(metadata_buffer(), b"no zip here").class_names is None
    assert read_tflite_metadata(metadata_buffer(), with_zip(b"m", {"other.txt": "x"})).class_names is None
    # Other associated files (type 1: descriptions) are not labels.
    assert read_tflite_metadata(metadata_buffer(file_type=1)).label_file is None


@pytest.mark.parametrize("damage", ["identifier", "truncate", "offset"])
def test_corrupt_metadata_is_a_model_error(damage):
    buf = bytearray(metadata_buffer())
    if damage == "identifier":
        buf[4:8] = b"XXXX"
    elif damage == "truncate":
        buf = buf[:20]
    else:
        buf[0:4] = (len(buf) + 100).to_bytes(4, "little")
    with pytest.raises(ModelError):
        read_tflite_metadata(bytes(buf))


def test_zero_std_is_refused():
    with pytest.raises(ModelError, match="std"):
        read_tflite_metadata(metadata_buffer(std=(0.0,)))
