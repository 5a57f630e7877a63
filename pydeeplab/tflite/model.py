"""The parsed model: plain, frozen dataclasses that the rest of pydeeplab reads.

Constant tensor data are zero-copy, read-only NumPy views into the model bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .schema import BuiltinOperator, TensorType, operator_name


@dataclass(frozen=True)
class Quantization:
    """Affine quantization: ``real = scale * (q - zero_point)``, per tensor or per channel.

    ``scales`` (float32) and ``zero_points`` (int64) have one entry per tensor, or one per
    slice along ``quantized_dimension``.
    """

    scales: np.ndarray
    zero_points: np.ndarray
    quantized_dimension: int = 0
    min: np.ndarray | None = None
    max: np.ndarray | None = None

    @property
    def scale(self) -> float:
        """TFLite's per-tensor ``params.scale`` (``GetLegacyQuantization``): the scale where there is
        one scale and one zero point, else 0 (per-channel quantization has none)."""
        return float(self.scales[0]) if self.scales.size == 1 and self.zero_points.size == 1 else 0.0

    @property
    def zero_point(self) -> int:
        """TFLite's per-tensor ``params.zero_point``, as :attr:`scale`: 0 for per-channel quantization."""
        return int(self.zero_points[0]) if self.scales.size == 1 and self.zero_points.size == 1 else 0

    @property
    def per_channel(self) -> bool:
        return self.scales.size > 1


@dataclass(frozen=True)
class Tensor:
    """One tensor of a subgraph. ``data`` is the constant value (a read-only view) or None."""

    index: int
    name: str
    type: TensorType
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    buffer: int
    is_variable: bool = False
    quantization: Quantization | None = None
    data: np.ndarray | None = field(default=None, repr=False, compare=False)
    sparse: bool = False

    @property
    def dtype(self) -> np.dtype | None:
        return self.type.dtype

    @property
    def is_constant(self) -> bool:
        return self.data is not None


@dataclass(frozen=True)
class OperatorCode:
    """``builtin_code`` is already ``max(builtin_code, deprecated_builtin_code)``."""

    builtin_code: int
    custom_code: str | None = None
    version: int = 1

    @property
    def name(self) -> str:
        if self.builtin_code == BuiltinOperator.CUSTOM:
            return f"CUSTOM({self.custom_code})"
        return operator_name(self.builtin_code)


@dataclass(frozen=True)
class Operator:
    """One operator: tensor indices (-1 marks an absent optional input) and parsed options."""

    index: int
    opcode_index: int
    code: OperatorCode
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: object | None = None
    custom_options: bytes | None = None
    intermediates: tuple[int, ...] = ()
    #: A builtin-options union of a type the operator does not read (BuiltinOptions position),
    #: ignored as LiteRT ignores it (the operator then has its default options); 0 when none.
    ignored_options_type: int = 0

    @property
    def builtin(self) -> int:
        return self.code.builtin_code

    @property
    def name(self) -> str:
        return self.code.name


@dataclass(frozen=True)
class Subgraph:
    name: str
    tensors: tuple[Tensor, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    operators: tuple[Operator, ...]


@dataclass(frozen=True)
class SignatureDef:
    """Named entry point: alias -> tensor index, for inputs and outputs."""

    key: str
    inputs: dict[str, int]
    outputs: dict[str, int]
    subgraph_index: int


@dataclass(frozen=True)
class Model:
    version: int
    description: str
    operator_codes: tuple[OperatorCode, ...]
    subgraphs: tuple[Subgraph, ...]
    buffers: tuple[memoryview, ...] = field(repr=False)
    metadata: dict[str, bytes] = field(default_factory=dict, repr=False)
    signature_defs: tuple[SignatureDef, ...] = ()

    @property
    def main(self) -> Subgraph:
        """The subgraph that is executed (the first one)."""
        return self.subgraphs[0]
