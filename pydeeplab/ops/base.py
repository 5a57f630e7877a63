"""The contract between the graph plan and the operator modules.

For every operator of the model the plan (``Interpreter.allocate_tensors``) calls
the operator's *prepare* function once, with an :class:`OpContext` that holds
the operator's options and static facts about its tensors. Prepare checks the
operator (raising :class:`~pydeeplab.errors.ModelError` with a message that names
the problem), computes everything that does not depend on the input values
(output shapes, padding amounts, quantized multipliers, re-arranged weights) and
returns a :class:`Prepared`: the output shapes and a ``run`` closure.

At invoke time the interpreter only calls ``run(inputs, outputs)``: ``inputs`` are
the current input arrays (None for an absent optional input; constants are
their read-only data), ``outputs`` are preallocated arrays of the prepared shapes
and the model's dtypes, which ``run`` must fill completely, in place.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..tflite.model import Quantization
from ..tflite.schema import BuiltinOperator, TensorType

Run = Callable[[Sequence[np.ndarray | None], Sequence[np.ndarray]], None]

#: The largest tensor a plan accepts (a corrupt shape, not a real model, goes past it).
MAX_TENSOR_BYTES = 8 << 30


@dataclass(frozen=True)
class TensorSpec:
    """What the plan knows about a tensor before any value flows.

    ``shape`` is the current shape (after ``resize_tensor_input`` and shape
    propagation for inputs; the model's declared shape for outputs, which prepare
    may ignore). ``data`` is the value of a constant tensor, else None.
    """

    index: int
    name: str
    type: TensorType
    shape: tuple[int, ...]
    quantization: Quantization | None = None
    data: np.ndarray | None = None

    @property
    def dtype(self) -> np.dtype:
        return self.type.dtype

    @property
    def is_quantized(self) -> bool:
        return self.quantization is not None and self.quantization.scales.size > 0


@dataclass(frozen=True)
class OpContext:
    """One operator, as prepare sees it."""

    index: int  # position of the operator in the subgraph
    opcode: BuiltinOperator
    version: int
    options: object | None  # a dataclass from pydeeplab.tflite.options, or None
    inputs: tuple[TensorSpec | None, ...]  # None where the model has -1 (absent optional input)
    outputs: tuple[TensorSpec, ...]
    backend: str  # "numpy" (the readable reference) or "numba" (the fast kernels)
    max_tensor_bytes: int = MAX_TENSOR_BYTES
    custom_code: str | None = None  # a CUSTOM operator's name in the model
    custom_options: bytes | None = None  # a CUSTOM operator's raw options (a little-endian struct, flexbuffer, ...)

    @property
    def name(self) -> str:
        """The operator's name: the builtin's (CONV_2D) or the custom code (Convolution2DTransposeBias)."""
        return self.custom_code if self.opcode == BuiltinOperator.CUSTOM and self.custom_code else self.opcode.name

    def error(self, message: str) -> ModelError:
        """A ModelError that names this operator: ``raise ctx.error("...")``."""
        return ModelError(f"operator {self.index} ({self.name}): {message}")

    def expect_io(self, n_inputs: int | tuple[int, int], n_outputs: int = 1) -> None:
        """Check the operator's arity; ``n_inputs`` may be an inclusive (min, max) range."""
        lo, hi = (n_inputs, n_inputs) if isinstance(n_inputs, int) else n_inputs
        if not lo <= len(self.inputs) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            raise self.error(f"expects {want} inputs, has {len(self.inputs)}")
        if len(self.outputs) != n_outputs:
            raise self.error(f"expects {n_outputs} outputs, has {len(self.outputs)}")
        for i in range(lo):
            if self.inputs[i] is None:
                raise self.error(f"input {i} is required but absent (-1)")

    def check_shape(self, shape: tuple[int, ...], dtype: np.dtype, what: str = "output") -> None:
        """Refuse a shape whose tensor would exceed the plan's size limit.

        For operators whose output size comes from a constant (a resize target, a
        tile multiple): call it before building any table of that size.
        """
        nbytes = math.prod(int(d) for d in shape) * np.dtype(dtype).itemsize
        if nbytes > self.max_tensor_bytes:
            raise self.error(f"{what} of shape {list(shape)} would need {nbytes} bytes, "
                             f"more than pydeeplab allows ({self.max_tensor_bytes})")

    def constant(self, i: int, what: str) -> np.ndarray:
        """The value of input ``i``, which this implementation requires to be constant."""
        spec = self.inputs[i]
        if spec is None or spec.data is None:
            raise self.error(f"{what} (input {i}) must be a constant tensor")
        return spec.data


@dataclass(frozen=True)
class Prepared:
    """What prepare returns: the shapes of the outputs and the closure that computes them."""

    output_shapes: tuple[tuple[int, ...], ...]
    run: Run


Prepare = Callable[[OpContext], Prepared]

#: operator -> prepare function; filled by the ``register`` decorator in each ops module.
REGISTRY: dict[BuiltinOperator, Prepare] = {}


def register(*opcodes: BuiltinOperator) -> Callable[[Prepare], Prepare]:
    """Register a prepare function for one or more operators."""

    def deco(fn: Prepare) -> Prepare:
        for op in opcodes:
            if op in REGISTRY:
                raise RuntimeError(f"{op.name} registered twice")
            REGISTRY[op] = fn
        return fn

    return deco
