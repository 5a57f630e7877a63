"""Test oracle: single-operator models run by LiteRT and by pydeeplab's operators.

Import from a test as ``from oracle import T, check_op, quant`` (pytest puts ``tests/``
on ``sys.path``: it has no ``__init__.py``, so pytest's rootdir-relative import mode
inserts the test file's directory).

Typical use::

    x = T(rng.standard_normal((1, 8, 8, 3)).astype(np.float32))
    w = T(weights, const=True)
    check_op(BuiltinOperator.CONV_2D, [x, w, None], [T(None, np.float32)], Conv2DOptions(...))

The output shape rule: an output ``T`` with ``shape=None`` gets the shape LiteRT computes
for it. :func:`single_op_model` builds the model once with a placeholder shape ``(1,)``,
lets LiteRT allocate it, and rebuilds it with the shapes LiteRT's Prepare gave the
outputs. That works for every operator whose output shape follows from the input
shapes and constant inputs; for shapes that depend on non-constant input values, pass
the shape. ``type=None`` for an output means FLOAT32.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pydeeplab import models
from pydeeplab.tflite.model import Quantization
from pydeeplab.tflite.schema import BuiltinOperator, TensorType, tensor_type_of
from pydeeplab.tflite.writer import ModelBuilder

REPO = Path(__file__).resolve().parent.parent

_RESOLVERS = {
    "ref": "BUILTIN_REF",
    "builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES",
    "default": "AUTO",
}


@dataclass
class T:
    """One tensor of a single-operator test model.

    ``value``: the input or constant value (raw quantized integers for quantized
    tensors); None for outputs. ``type`` defaults to the TensorType of ``value.dtype``
    (FLOAT32 for an output); a NumPy dtype is accepted too. ``shape`` defaults to
    ``value.shape`` (for outputs: the shape LiteRT computes). ``const=True`` stores
    the value as a constant buffer instead of making it a model input.
    """

    value: np.ndarray | None
    type: TensorType | np.dtype | type | None = None
    shape: tuple | None = None
    quant: Quantization | None = None
    const: bool = False

    def tensor_type(self) -> TensorType:
        if isinstance(self.type, TensorType):
            return self.type
        if self.type is not None:
            return tensor_type_of(np.dtype(self.type))
        if self.value is not None:
            return tensor_type_of(np.asarray(self.value).dtype)
        return TensorType.FLOAT32

    def array(self) -> np.ndarray:
        """The value as an array of this tensor's dtype (refusing a lossy conversion)."""
        value = np.asarray(self.value)
        dtype = self.tensor_type().dtype
        if value.dtype == dtype:
            return value
        converted = value.astype(dtype)
        if not np.array_equal(converted, value):
            raise ValueError(f"value of dtype {value.dtype} does not fit {self.tensor_type().name}")
        return converted

    def resolved_shape(self) -> tuple[int, ...] | None:
        if self.shape is not None:
            return tuple(int(d) for d in self.shape)
        return tuple(np.shape(self.value)) if self.value is not None else None


def quant(scale, zero_point, dim: int = 0) -> Quantization:
    """Quantization parameters from scalars (per tensor) or sequences (per channel along ``dim``).

    A scalar ``zero_point`` with several scales is repeated for every channel.
    """
    scales = np.atleast_1d(np.asarray(scale, dtype=np.float32))
    zero_points = np.atleast_1d(np.asarray(zero_point, dtype=np.int64))
    if zero_points.size == 1 and scales.size > 1:
        zero_points = np.repeat(zero_points, scales.size)
    if zero_points.size != scales.size:
        raise ValueError(f"{scales.size} scales but {zero_points.size} zero points")
    return Quantization(scales=scales, zero_points=zero_points, quantized_dimension=dim)


def _build(opcode, inputs: Sequence[T | None], outputs: Sequence[T], options, version: int,
           output_shapes: Sequence[tuple[int, ...]]) -> bytes:
    b = ModelBuilder(description=f"single {BuiltinOperator(opcode).name}")
    in_idx, graph_inputs = [], []
    for i, t in enumerate(inputs):
        if t is None:
            in_idx.append(-1)
        elif t.const:
            in_idx.append(b.add_constant(f"const{i}", t.array(), t.quant, t.tensor_type()))
        else:
            if t.value is None and t.shape is None:
                raise ValueError(f"input {i} needs a value or a shape")
            idx = b.add_tensor(f"input{i}", t.tensor_type(), t.resolved_shape(), t.quant)
            in_idx.append(idx)
            graph_inputs.append(idx)
    out_idx = [b.add_tensor(f"output{i}", t.tensor_type(), shape, t.quant)
               for i, (t, shape) in enumerate(zip(outputs, output_shapes))]
    b.add_operator(opcode, in_idx, out_idx, options, version)
    b.set_inputs(graph_inputs)
    b.set_outputs(out_idx)
    return b.finish()


def _interpreter(model: bytes, resolver: str):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    if resolver not in _RESOLVERS:
        raise ValueError(f"resolver must be one of {sorted(_RESOLVERS)}, not {resolver!r}")
    return Interpreter(model_content=model, num_threads=1,
                       experimental_op_resolver_type=getattr(OpResolverType, _RESOLVERS[resolver]))


def single_op_model(opcode, inputs: Sequence[T | None], outputs: Sequence[T], options=None,
                    version: int = 1) -> bytes:
    """A .tflite model of one operator: non-constant inputs become model inputs (in order),
    constants become buffers, None inputs are absent (-1). See the module doc for output shapes."""
    shapes = [t.resolved_shape() for t in outputs]
    if any(s is None for s in shapes):
        probe = _build(opcode, inputs, outputs, options, version,
                       [s if s is not None else (1,) for s in shapes])
        interp = _interpreter(probe, "ref")
        interp.allocate_tensors()
        computed = [tuple(int(d) for d in det["shape"]) for det in interp.get_output_details()]
        shapes = [s if s is not None else c for s, c in zip(shapes, computed)]
    return _build(opcode, inputs, outputs, options, version, shapes)


def run_litert(model: bytes, feeds: Sequence[np.ndarray], resolver: str = "ref") -> list[np.ndarray]:
    """Run ``model`` in LiteRT with ``feeds`` for its inputs (in order); return copies of its outputs.

    ``resolver``: "ref" (BUILTIN_REF, the reference kernels), "builtin"
    (BUILTIN_WITHOUT_DEFAULT_DELEGATES, the optimized kernels), "default" (AUTO, XNNPACK).
    An input fed with a shape other than the declared one is resized first.
    """
    interp = _interpreter(model, resolver)
    details = interp.get_input_details()
    if len(details) != len(feeds):
        raise ValueError(f"model has {len(details)} inputs, {len(feeds)} feeds given")
    for det, feed in zip(details, feeds):
        if tuple(det["shape"]) != np.shape(feed):
            interp.resize_tensor_input(det["index"], list(np.shape(feed)))
    interp.allocate_tensors()
    for det, feed in zip(details, feeds):
        interp.set_tensor(det["index"], np.require(feed, dtype=det["dtype"], requirements="C"))
    interp.invoke()
    return [np.array(interp.get_tensor(det["index"])) for det in interp.get_output_details()]


def _spec(index: int, name: str, t: T, shape: tuple[int, ...]):
    from pydeeplab.ops.base import TensorSpec

    data = None
    if t.const:
        data = t.array().copy()
        data.flags.writeable = False  # constants are read-only views in the real plan
    return TensorSpec(index=index, name=name, type=t.tensor_type(), shape=shape,
                      quantization=t.quant, data=data)


def _garbage(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An output buffer prefilled with a recognizable pattern, so that elements ``run``
    forgets to write show up as differences (np.empty could hold a previous correct result)."""
    out = np.empty(shape, dtype=dtype)
    if out.dtype.kind == "f":
        out.fill(np.nan)
    else:
        out.reshape(-1).view(np.uint8).fill(0xA5)
    return out


def run_ours_op(opcode, inputs: Sequence[T | None], outputs: Sequence[T], options, backend: str,
                version: int = 1) -> list[np.ndarray]:
    """Run pydeeplab's implementation of one operator directly (no reader, no interpreter).

    Builds the :class:`OpContext` the plan would build, calls the registered prepare
    function, allocates the outputs with the prepared shapes and the output T's types,
    and calls ``run`` once. Input arrays are passed read-only.
    """
    from pydeeplab.ops import REGISTRY
    from pydeeplab.ops.base import OpContext

    opcode = BuiltinOperator(opcode)
    if opcode not in REGISTRY:
        raise KeyError(f"no prepare function registered for {opcode.name}")
    in_specs = tuple(None if t is None else _spec(i, f"input{i}", t, t.resolved_shape())
                     for i, t in enumerate(inputs))
    out_specs = tuple(_spec(len(inputs) + i, f"output{i}", t, t.resolved_shape() or ())
                      for i, t in enumerate(outputs))
    ctx = OpContext(index=0, opcode=opcode, version=version, options=options, inputs=in_specs,
                    outputs=out_specs, backend=backend)
    prepared = REGISTRY[opcode](ctx)
    if len(prepared.output_shapes) != len(outputs):
        raise AssertionError(f"{opcode.name}/{backend}: prepare gave {len(prepared.output_shapes)} "
                             f"output shapes for {len(outputs)} outputs")
    arrays = []
    for spec, t in zip(in_specs, inputs):
        if spec is None:
            arrays.append(None)
        elif spec.data is not None:
            arrays.append(spec.data)
        else:
            a = t.array().copy()
            a.flags.writeable = False  # an op must never write into its inputs
            arrays.append(a)
    outs = [_garbage(tuple(shape), t.tensor_type().dtype)
            for shape, t in zip(prepared.output_shapes, outputs)]
    prepared.run(arrays, outs)
    return outs


def compare(ours: np.ndarray, ref: np.ndarray, what: str, atol_scale: float = 1e-5) -> None:
    """Assert the numerical contract: same shape and dtype; float within
    ``atol_scale * (1 + max|ref|)`` (NaN where ref is NaN); integer and bool identical."""
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape}, LiteRT {ref.shape}"
    assert ours.dtype == ref.dtype, f"{what}: dtype {ours.dtype}, LiteRT {ref.dtype}"
    if ref.size == 0:
        return
    if ref.dtype.kind == "f":
        ref64, ours64 = ref.astype(np.float64), ours.astype(np.float64)
        finite = np.isfinite(ref64)
        tol = atol_scale * (1.0 + (np.abs(ref64[finite]).max() if finite.any() else 0.0))
        with np.errstate(invalid="ignore"):  # inf - inf where ref is not finite
            err = np.where(finite, np.abs(ours64 - ref64), 0.0)  # NaN where ours is NaN
        # Non-finite reference values (inf, nan) must be matched exactly.
        same_nonfinite = (ours64 == ref64) | (np.isnan(ours64) & np.isnan(ref64))
        bad = np.where(finite, ~(err <= tol), ~same_nonfinite)
        max_err = float(err.max())
        limit = f" (tolerance {tol:.3g})"
    else:
        bad = ours != ref
        max_err = float(np.abs(ours.astype(np.int64) - ref.astype(np.int64)).max())
        limit = " (must be identical)"
    n_bad = int(np.count_nonzero(bad))
    if n_bad:
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(
            f"{what}: max error {max_err:.6g}{limit}, {n_bad} of {ref.size} elements differ; "
            f"first at {first}: ours {ours[first]!r}, LiteRT {ref[first]!r}")


def check_op(opcode, inputs: Sequence[T | None], outputs: Sequence[T], options=None, *,
             version: int = 1, backends: Sequence[str] = ("numpy", "numba"),
             atol_scale: float = 1e-5) -> list[np.ndarray]:
    """Run one operator in LiteRT (BUILTIN_REF) and in pydeeplab on each backend; assert they agree.

    Returns LiteRT's outputs. Output T's with ``shape=None`` take LiteRT's computed shape,
    which is also the declared output shape prepare sees.
    """
    opcode = BuiltinOperator(opcode)
    model = single_op_model(opcode, inputs, outputs, options, version)
    feeds = [t.array() for t in inputs if t is not None and not t.const]
    refs = run_litert(model, feeds, "ref")
    declared = [T(None, t.tensor_type(), ref.shape, t.quant) for t, ref in zip(outputs, refs)]
    for backend in backends:
        ours = run_ours_op(opcode, inputs, declared, options, backend, version)
        for k, (o, r) in enumerate(zip(ours, refs)):
            compare(o, r, f"{opcode.name} output {k} [{backend}]", atol_scale)
    return refs


def check_model(model: bytes, feeds: Sequence[np.ndarray], backend: str, atol_scale: float = 1e-4) -> None:
    """Run a whole model in LiteRT (BUILTIN_REF) and in pydeeplab's Interpreter (default plan, fusions
    and all) on ``backend`` with ``feeds`` for its inputs; assert every output agrees."""
    from pydeeplab import Interpreter

    refs = run_litert(model, feeds, "ref")
    interp = Interpreter(model_content=model, backend=backend)
    interp.allocate_tensors()
    for det, feed in zip(interp.get_input_details(), feeds):
        interp.set_tensor(det["index"], feed)
    interp.invoke()
    for det, ref in zip(interp.get_output_details(), refs):
        compare(interp.get_tensor(det["index"]), ref, f"{det['name']} [{backend}]", atol_scale)


_START_DIR = Path.cwd()
# A relative $PYDEEPLAB_DATA (the README's ../shared/data) names a folder seen from where the
# tests started; some tests change directory, and subprocesses inherit the variable.
if os.environ.get(models.DATA_ENV):
    os.environ[models.DATA_ENV] = os.pathsep.join(str((_START_DIR / d).resolve()) for d in models.data_dirs())


def data_dir() -> Path:
    """The folder of real models and images: :func:`pydeeplab.models.data_dir` ($PYDEEPLAB_DATA,
    default ../shared/data beside the checkout), relative paths taken from where the tests started."""
    return (_START_DIR / models.data_dir()).resolve()


def require_data(path: str | os.PathLike) -> Path:
    """``path`` (relative to :func:`data_dir` unless absolute) if it exists; else skip the
    test, or fail it when running in CI (``CI=true``), where missing real data is an error."""
    p = Path(path)
    if not p.is_absolute():
        p = data_dir() / p
    if p.exists():
        return p
    message = f"real data not found: {p} (set PYDEEPLAB_DATA to the data folder)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)
