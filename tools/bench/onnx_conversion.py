"""ONNX Runtime's model: the .tflite converted once to ONNX by a converter from PyPI, cached outside the repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .runtimes import Unavailable

def onnx_cache_dir() -> Path:
    from pydeeplab.models import user_cache_dir

    return user_cache_dir() / "onnx"


# Tried in this order: tf2onnx (the maintained converter, handles the uint8 models; needs
# TensorFlow), tflite2onnx (light, float models only in practice).
_CONVERTERS = {
    "tf2onnx": ["-m", "tf2onnx.convert", "--tflite", "{src}", "--output", "{dst}"],
    "tflite2onnx": ["-c", "import sys, tflite2onnx; tflite2onnx.convert(sys.argv[1], sys.argv[2])", "{src}", "{dst}"],
}


def onnx_model(model_path: Path, cache_dir: Path | None = None, python: str | None = None,
               timeout: float = 900.0) -> Path:
    """The ONNX conversion of ``model_path``, converting it once into ``cache_dir``.

    Converters are tried in order (tf2onnx, which needs TensorFlow; tflite2onnx)
    with the Python ``python`` (default: this one), so that a
    converter can live in its own environment. A failed conversion leaves a
    ``.failed`` note beside the cache entry (delete it to try again). Raises
    :class:`Unavailable` with the reason.
    """
    from pydeeplab.models import sha256_file

    cache_dir = Path(cache_dir) if cache_dir is not None else onnx_cache_dir()
    digest = sha256_file(model_path)[:16]
    target = cache_dir / f"{model_path.stem}-{digest}.onnx"
    failed = target.with_suffix(".onnx.failed")
    if target.exists():
        return target
    if failed.exists():
        raise Unavailable(f"conversion failed before ({failed}): {failed.read_text(encoding='utf-8').strip()}")
    python = python or sys.executable
    try:
        probe = subprocess.run([python, "-c", "import importlib.util as u, sys; "
                                "print(' '.join(m for m in sys.argv[1:] if u.find_spec(m)))", *_CONVERTERS],
                               capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"cannot run the converter's Python {python}: {exc}") from None
    found = probe.stdout.split()
    if not found:
        raise Unavailable(f"no converter ({' or '.join(_CONVERTERS)}) importable by {python}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    reasons = []
    for name in found:
        tmp = target.with_suffix(f".{os.getpid()}.tmp.onnx")
        args = [a.format(src=model_path, dst=tmp) for a in _CONVERTERS[name]]
        try:
            done = subprocess.run([python, *args], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            reasons.append(f"{name}: timed out after {timeout:.0f} s")
            continue
        if done.returncode == 0 and tmp.exists():
            os.replace(tmp, target)
            version = subprocess.run([python, "-c", f"import importlib.metadata as m; print(m.version({name!r}))"],
                                     capture_output=True, text=True, timeout=60).stdout.strip()
            meta = {"source": str(model_path), "source_sha256": sha256_file(model_path), "converter": name,
                    "converter_version": version or None, "python": python}
            target.with_suffix(".onnx.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
            return target
        tmp.unlink(missing_ok=True)
        last = (done.stderr.strip().splitlines() or ["exit status %d" % done.returncode])[-1]
        reasons.append(f"{name}: {last}")
    failed.write_text("; ".join(reasons) + "\n", encoding="utf-8")
    raise Unavailable("conversion failed: " + "; ".join(reasons))


