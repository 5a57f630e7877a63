"""The runtimes the harness times, and a :class:`Runner` per runtime loaded with a model, ready to invoke."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .environment import BlasThreads

RUNTIMES = ("numba", "numpy", "xnnpack", "builtin", "ref", "onnxruntime")
PYDEEPLAB_RUNTIMES = ("numba", "numpy")
LABELS = {
    "numba": "pydeeplab numba",
    "numpy": "pydeeplab numpy",
    "xnnpack": "LiteRT default (XNNPACK)",
    "builtin": "LiteRT built-in, no XNNPACK",
    "ref": "LiteRT reference kernels",
    "onnxruntime": "ONNX Runtime",
}
#: Short names for "no <name> figure: <why>".
SHORT = {"numba": "numba", "numpy": "numpy", "xnnpack": "XNNPACK", "builtin": "LiteRT built-in",
         "ref": "LiteRT reference", "onnxruntime": "ONNX Runtime"}
_LITERT_RESOLVERS = {"xnnpack": "AUTO", "builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "ref": "BUILTIN_REF"}
#: Environment variables that set BLAS thread pools at library load time.
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")
#: Where progress lines go (stderr in the command line).
Log = Callable[[str], None]


class Unavailable(Exception):
    """A runtime that cannot run here (not installed, no converted model, unsupported model)."""


@dataclass
class Runner:
    """One runtime at one thread count, loaded with the model and its input, ready to invoke."""

    runtime: str
    threads: int
    invoke: Callable[[], None]
    outputs: Callable[[], list[np.ndarray]]
    before: Callable[[], None] = lambda: None  # untimed setup before each run (BLAS threads)
    samples: list[float] = field(default_factory=list)
    spent: float = 0.0
    info: dict = field(default_factory=dict)  # facts for the report (the ONNX converter)


def make_runner(runtime: str, model_path: Path, content: bytes, inputs: list[np.ndarray], threads: int,
                blas: BlasThreads, onnx_cache: Path | None = None, onnx_python: str | None = None) -> Runner:
    """Load ``model_path`` in ``runtime`` with ``threads`` threads and set its inputs; raises Unavailable."""
    if runtime in PYDEEPLAB_RUNTIMES:
        from pydeeplab.errors import ModelError
        from pydeeplab.interpreter import Interpreter

        try:
            it = Interpreter(model_content=content, num_threads=threads, backend=runtime)
            it.allocate_tensors()
        except ModelError as exc:
            raise Unavailable(f"{type(exc).__name__}: {exc}") from None
        _set_inputs(it, inputs)
        return Runner(runtime, threads, it.invoke, _tflite_outputs(it), before=lambda: blas.set(threads))
    if runtime in _LITERT_RESOLVERS:
        try:
            from ai_edge_litert.interpreter import Interpreter as LiteInterpreter
            from ai_edge_litert.interpreter import OpResolverType
        except ImportError:
            raise Unavailable("not installed (pip install ai-edge-litert)") from None
        resolver = getattr(OpResolverType, _LITERT_RESOLVERS[runtime])
        it = LiteInterpreter(model_content=content, num_threads=threads, experimental_op_resolver_type=resolver)
        it.allocate_tensors()
        _set_inputs(it, inputs)
        return Runner(runtime, threads, it.invoke, _tflite_outputs(it))
    if runtime == "onnxruntime":
        return _onnx_runner(model_path, inputs, threads, onnx_cache, onnx_python)
    raise ValueError(f"unknown runtime {runtime!r}: choose from {', '.join(RUNTIMES)}")


def _set_inputs(it, inputs: list[np.ndarray]) -> None:
    """Set the inputs of a tflite_runtime-style interpreter (pydeeplab's or LiteRT's)."""
    details = it.get_input_details()
    if len(details) != len(inputs):
        raise Unavailable(f"model has {len(details)} inputs, {len(inputs)} prepared")
    for d, x in zip(details, inputs):
        it.set_tensor(d["index"], x)


def _tflite_outputs(it) -> Callable[[], list[np.ndarray]]:
    indices = [d["index"] for d in it.get_output_details()]
    return lambda: [np.array(it.get_tensor(i)) for i in indices]


def _onnx_runner(model_path: Path, inputs: list[np.ndarray], threads: int, cache: Path | None,
                 python: str | None) -> Runner:
    try:
        import onnxruntime as ort
    except ImportError:
        raise Unavailable("not installed (pip install onnxruntime)") from None
    from .onnx_conversion import onnx_model

    path = onnx_model(model_path, cache, python)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {}
    for d, x in zip(session.get_inputs(), inputs):
        # Converters may turn the graph to NCHW; feed the same pixels in the layout it declares.
        want = tuple(d.shape)
        if len(want) == 4 and x.ndim == 4 and want != x.shape and want == tuple(x.transpose(0, 3, 1, 2).shape):
            x = x.transpose(0, 3, 1, 2)
        feed[d.name] = np.ascontiguousarray(x)
    last: list = []

    def invoke() -> None:
        last[:] = session.run(None, feed)

    def outputs() -> list[np.ndarray]:
        return [np.asarray(o) for o in last]

    meta_file = path.with_suffix(".onnx.json")
    meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.exists() else {}
    info = {"onnx": {"path": str(path), "converter": meta.get("converter"),
                     "converter_version": meta.get("converter_version")}}
    return Runner("onnxruntime", threads, invoke, outputs, info=info)


def _agreement(out: np.ndarray, ref: np.ndarray) -> dict:
    """How an output agrees with a reference output: max |diff| (float; for scores per class also the
    fraction of equal labels) or fraction equal (integer)."""
    if out.shape != ref.shape and out.ndim == 4 and out.transpose(0, 2, 3, 1).shape == ref.shape:
        out = out.transpose(0, 2, 3, 1)  # an NCHW ONNX graph
    if out.shape != ref.shape:
        return {"error": f"shape {list(out.shape)} vs {list(ref.shape)}"}
    if ref.dtype.kind == "f":
        check = {"max_abs_diff": float(np.abs(out.astype(np.float64) - ref.astype(np.float64)).max())}
        if ref.ndim == 4 and ref.shape[-1] > 1:  # scores per class: the labels they give
            check["labels_equal"] = float(np.mean(out.argmax(-1) == ref.argmax(-1)))
        return check
    return {"equal_fraction": float(np.mean(out == ref))}


