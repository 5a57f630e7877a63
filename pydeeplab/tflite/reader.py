"""A bounds-checked reader of TFLite flatbuffers.

A flatbuffer is a tree of *tables* addressed by 32-bit offsets. A table starts
with a signed offset back to its *vtable*, a list of 16-bit field offsets
indexed by the field's slot in ``schema.fbs``; an absent field (offset 0) takes
its default. Scalars sit inline in the table, strings/vectors/sub-tables behind
an unsigned offset relative to where the offset is stored.

The file comes from outside, so every offset and length is checked against the
buffer before it is followed: a truncated or corrupted file raises
:class:`ModelError` naming what is wrong, never IndexError or struct.error.
Decoding of scalars uses the ``flatbuffers`` runtime's packers.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import numpy as np
from flatbuffers import packer

from ..errors import ModelError
from .model import Model, Operator, OperatorCode, Quantization, SignatureDef, Subgraph, Tensor
from .options import OPERATOR_OPTIONS, OPTIONS_CLASSES, SCALAR_KINDS, default_options
from .schema import FILE_IDENTIFIER, SCHEMA_VERSION, BuiltinOperator, BuiltinOptionsType, TensorType, operator_name

# Field slots of the tables we read (schema.fbs, in declaration order).
MODEL_VERSION, MODEL_OPCODES, MODEL_SUBGRAPHS, MODEL_DESCRIPTION, MODEL_BUFFERS = 0, 1, 2, 3, 4
MODEL_METADATA, MODEL_SIGNATURES = 6, 7
OPCODE_DEPRECATED_BUILTIN, OPCODE_CUSTOM, OPCODE_VERSION, OPCODE_BUILTIN = 0, 1, 2, 3
SUBGRAPH_TENSORS, SUBGRAPH_INPUTS, SUBGRAPH_OUTPUTS, SUBGRAPH_OPERATORS, SUBGRAPH_NAME = 0, 1, 2, 3, 4
TENSOR_SHAPE, TENSOR_TYPE, TENSOR_BUFFER, TENSOR_NAME, TENSOR_QUANT = 0, 1, 2, 3, 4
TENSOR_IS_VARIABLE, TENSOR_SPARSITY, TENSOR_SHAPE_SIGNATURE = 5, 6, 7
QUANT_MIN, QUANT_MAX, QUANT_SCALE, QUANT_ZERO_POINT, QUANT_DETAILS_TYPE, QUANT_DIMENSION = 0, 1, 2, 3, 4, 6
OP_OPCODE_INDEX, OP_INPUTS, OP_OUTPUTS, OP_OPTIONS_TYPE, OP_OPTIONS, OP_CUSTOM_OPTIONS = 0, 1, 2, 3, 4, 5
OP_INTERMEDIATES = 8
BUFFER_DATA, BUFFER_OFFSET, BUFFER_SIZE = 0, 1, 2
METADATA_NAME, METADATA_BUFFER = 0, 1
SIGNATURE_INPUTS, SIGNATURE_OUTPUTS, SIGNATURE_KEY, SIGNATURE_SUBGRAPH = 0, 1, 2, 4
TENSORMAP_NAME, TENSORMAP_INDEX = 0, 1

_SCALAR = {
    "bool": packer.boolean,
    "int8": packer.int8,
    "uint8": packer.uint8,
    "uint16": packer.uint16,
    "int32": packer.int32,
    "uint32": packer.uint32,
    "int64": packer.int64,
    "uint64": packer.uint64,
    "float32": packer.float32,
}
_VECTOR_DTYPES = {"int32": "<i4", "int64": "<i8", "float32": "<f4", "uint8": "u1", "bool": "?"}


class _Table:
    """A checked view of one flatbuffer table: ``what`` names it in error messages."""

    __slots__ = ("buf", "pos", "what", "_vtable", "_vtable_len")

    def __init__(self, buf: memoryview, pos: int, what: str):
        self.buf, self.pos, self.what = buf, pos, what
        _check_range(buf, pos, 4, what)
        vtable = pos - packer.soffset.unpack_from(buf, pos)[0]
        _check_range(buf, vtable, 4, f"{what} vtable")
        vtable_len, table_len = packer.voffset.unpack_from(buf, vtable)[0], packer.voffset.unpack_from(buf, vtable + 2)[0]
        if vtable_len < 4 or vtable_len % 2:
            raise ModelError(f"{what}: corrupt vtable (length {vtable_len})")
        _check_range(buf, vtable, vtable_len, f"{what} vtable")
        _check_range(buf, pos, max(table_len, 4), what)
        self._vtable, self._vtable_len = vtable, vtable_len

    def _field(self, slot: int) -> int:
        """Absolute position of a field, or 0 when the field is absent."""
        entry = 4 + 2 * slot
        if entry >= self._vtable_len:
            return 0
        off = packer.voffset.unpack_from(self.buf, self._vtable + entry)[0]
        return self.pos + off if off else 0

    def scalar(self, slot: int, kind: str, default: Any = 0) -> Any:
        pos = self._field(slot)
        if not pos:
            return default
        p = _SCALAR[kind]
        _check_range(self.buf, pos, p.size, f"{self.what} field {slot}")
        return p.unpack_from(self.buf, pos)[0]

    def _target(self, slot: int) -> int:
        pos = self._field(slot)
        if not pos:
            return 0
        _check_range(self.buf, pos, 4, f"{self.what} field {slot}")
        target = pos + packer.uoffset.unpack_from(self.buf, pos)[0]
        _check_range(self.buf, target, 4, f"{self.what} field {slot}")
        return target

    def table(self, slot: int, what: str) -> _Table | None:
        target = self._target(slot)
        return _Table(self.buf, target, what) if target else None

    def _vector(self, slot: int, itemsize: int) -> tuple[int, int]:
        """(position of the first element, length) of a vector field; (0, 0) when absent."""
        target = self._target(slot)
        if not target:
            return 0, 0
        n = packer.uoffset.unpack_from(self.buf, target)[0]
        if n * itemsize > len(self.buf) - target - 4:
            raise ModelError(f"{self.what}: field {slot} declares {n} elements, more than the file holds")
        return target + 4, n

    def string(self, slot: int) -> str | None:
        start, n = self._vector(slot, 1)
        if not start:
            return None
        return bytes(self.buf[start : start + n]).decode("utf-8", errors="replace")

    def array(self, slot: int, kind: str) -> np.ndarray | None:
        """A vector of scalars as a read-only NumPy view (None when absent)."""
        dtype = np.dtype(_VECTOR_DTYPES[kind])
        start, n = self._vector(slot, dtype.itemsize)
        if not start:
            return None
        return np.frombuffer(self.buf, dtype=dtype, count=n, offset=start)

    def tables(self, slot: int, what: str) -> list[_Table]:
        start, n = self._vector(slot, 4)
        out = []
        for i in range(n):
            elem = start + 4 * i
            out.append(_Table(self.buf, elem + packer.uoffset.unpack_from(self.buf, elem)[0], f"{what} {i}"))
        return out


def _check_range(buf: memoryview, pos: int, size: int, what: str) -> None:
    if pos < 0 or size < 0 or pos + size > len(buf):
        raise ModelError(f"{what}: offset {pos} (+{size} bytes) lies outside the file ({len(buf)} bytes)")


def _ints(values: np.ndarray | None) -> tuple[int, ...]:
    return () if values is None else tuple(int(v) for v in values)


def read_model(data: bytes | bytearray | memoryview) -> Model:
    """Parse TFLite flatbuffer bytes into a :class:`Model`.

    Constant tensors become read-only NumPy views of ``data`` (no copies), so
    ``data`` must stay alive and unchanged as long as the model is used.
    Raises :class:`ModelError` for anything that is not a valid TFLite model.
    """
    buf = memoryview(data).cast("B")
    if len(buf) < 8:
        raise ModelError(f"not a TFLite model: the file has only {len(buf)} bytes")
    if bytes(buf[4:8]) != FILE_IDENTIFIER:
        raise ModelError(
            f"not a TFLite model: file identifier is {bytes(buf[4:8])!r}, expected {FILE_IDENTIFIER!r}"
        )
    root = _Table(buf, packer.uoffset.unpack_from(buf, 0)[0], "model")
    version = root.scalar(MODEL_VERSION, "uint32")
    if version != SCHEMA_VERSION:
        raise ModelError(f"unsupported TFLite schema version {version} (pydeeplab reads version {SCHEMA_VERSION})")

    buffers = tuple(_read_buffer(buf, t) for t in root.tables(MODEL_BUFFERS, "buffer"))
    codes = tuple(_read_operator_code(t) for t in root.tables(MODEL_OPCODES, "operator code"))
    subgraphs = tuple(
        _read_subgraph(t, i, buffers, codes) for i, t in enumerate(root.tables(MODEL_SUBGRAPHS, "subgraph"))
    )
    if not subgraphs:
        raise ModelError("the model has no subgraph")
    metadata = {}
    for t in root.tables(MODEL_METADATA, "metadata"):
        index = t.scalar(METADATA_BUFFER, "uint32")
        metadata[t.string(METADATA_NAME) or ""] = bytes(_buffer(buffers, index, f"metadata {t.string(METADATA_NAME)!r}"))
    signatures = tuple(_read_signature(t, subgraphs) for t in root.tables(MODEL_SIGNATURES, "signature def"))
    return Model(
        version=version,
        description=root.string(MODEL_DESCRIPTION) or "",
        operator_codes=codes,
        subgraphs=subgraphs,
        buffers=buffers,
        metadata=metadata,
        signature_defs=signatures,
    )


def model_file_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of a model file; a ModelError in LiteRT's words when it cannot be opened."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ModelError(f"Could not open '{os.fspath(path)}'. ({exc.strerror or exc})") from exc


def load_model(path: str | os.PathLike) -> Model:
    """Read a ``.tflite`` file. The bytes are read once and shared by every constant tensor."""
    return read_model(model_file_bytes(path))


def _read_buffer(buf: memoryview, t: _Table) -> memoryview:
    start, n = t._vector(BUFFER_DATA, 1)
    if start:
        return buf[start : start + n]
    offset, size = t.scalar(BUFFER_OFFSET, "uint64"), t.scalar(BUFFER_SIZE, "uint64")
    if offset > 1:  # data stored after the flatbuffer (models > 2 GB, or written that way)
        _check_range(buf, offset, size, t.what)
        return buf[offset : offset + size]
    return buf[0:0]


def _buffer(buffers: tuple[memoryview, ...], index: int, who: str) -> memoryview:
    if index >= len(buffers):
        raise ModelError(f"{who} points at buffer {index}, model has {len(buffers)} buffers")
    return buffers[index]


def _read_operator_code(t: _Table) -> OperatorCode:
    deprecated = t.scalar(OPCODE_DEPRECATED_BUILTIN, "int8")
    builtin = t.scalar(OPCODE_BUILTIN, "int32")
    # Old files only set the byte-sized deprecated field; new ones set both (the byte capped at 127).
    code = OperatorCode(
        builtin_code=max(builtin, deprecated),
        custom_code=t.string(OPCODE_CUSTOM),
        version=t.scalar(OPCODE_VERSION, "int32", 1),
    )
    if code.custom_code is None and code.version < 1:  # (LiteRT's op resolver has no kernel for it)
        raise ModelError(f"operator code {code.builtin_code} ({operator_name(code.builtin_code)}) has version "
                         f"{code.version}; versions start at 1")
    return code


def _read_subgraph(
    t: _Table, index: int, buffers: tuple[memoryview, ...], codes: tuple[OperatorCode, ...]
) -> Subgraph:
    what = f"subgraph {index}"
    tensors = tuple(_read_tensor(tt, i, buffers) for i, tt in enumerate(t.tables(SUBGRAPH_TENSORS, "tensor")))
    n = len(tensors)

    def indices(values: np.ndarray | None, who: str, optional: bool = False) -> tuple[int, ...]:
        out = _ints(values)
        for v in out:
            if not (-1 if optional else 0) <= v < n:
                raise ModelError(f"{who} refers to tensor {v}, {what} has {n} tensors")
        return out

    inputs = indices(t.array(SUBGRAPH_INPUTS, "int32"), f"{what} inputs")
    outputs = indices(t.array(SUBGRAPH_OUTPUTS, "int32"), f"{what} outputs")
    operators = []
    for i, ot in enumerate(t.tables(SUBGRAPH_OPERATORS, "operator")):
        opcode_index = ot.scalar(OP_OPCODE_INDEX, "uint32")
        if opcode_index >= len(codes):
            raise ModelError(f"operator {i} uses operator code {opcode_index}, model has {len(codes)} codes")
        code = codes[opcode_index]
        custom = ot.array(OP_CUSTOM_OPTIONS, "uint8")
        options, ignored = _read_options(ot, i, code)
        operators.append(
            Operator(
                index=i,
                opcode_index=opcode_index,
                code=code,
                inputs=indices(ot.array(OP_INPUTS, "int32"), f"operator {i} inputs", optional=True),
                outputs=indices(ot.array(OP_OUTPUTS, "int32"), f"operator {i} outputs"),
                options=options,
                custom_options=None if custom is None else custom.tobytes(),
                intermediates=indices(ot.array(OP_INTERMEDIATES, "int32"), f"operator {i} intermediates"),
                ignored_options_type=ignored,
            )
        )
    return Subgraph(
        name=t.string(SUBGRAPH_NAME) or "",
        tensors=tensors,
        inputs=inputs,
        outputs=outputs,
        operators=tuple(operators),
    )


def _read_tensor(t: _Table, index: int, buffers: tuple[memoryview, ...]) -> Tensor:
    name = t.string(TENSOR_NAME) or ""
    who = f"tensor {index} ({name!r})"
    type_code = t.scalar(TENSOR_TYPE, "int8")
    try:
        ttype = TensorType(type_code)
    except ValueError:
        raise ModelError(f"{who} has unknown tensor type {type_code}") from None
    shape = _ints(t.array(TENSOR_SHAPE, "int32"))
    if any(d < 0 for d in shape):
        raise ModelError(f"{who} has a negative dimension in shape {list(shape)}")
    signature = t.array(TENSOR_SHAPE_SIGNATURE, "int32")
    buffer_index = t.scalar(TENSOR_BUFFER, "uint32")
    raw = _buffer(buffers, buffer_index, who)
    data = None
    if len(raw):
        data = _constant_view(raw, ttype, shape, who)
    is_variable = bool(t.scalar(TENSOR_IS_VARIABLE, "bool", False))
    if is_variable and data is not None:  # (as InterpreterBuilder refuses it)
        raise ModelError(f"{who} is a variable with a buffer of its own; variables start from zeros")
    return Tensor(
        index=index,
        name=name,
        type=ttype,
        shape=shape,
        shape_signature=shape if signature is None else _ints(signature),
        buffer=buffer_index,
        is_variable=is_variable,
        quantization=_read_quantization(t.table(TENSOR_QUANT, f"{who} quantization"), shape, who),
        data=data,
        sparse=t._field(TENSOR_SPARSITY) != 0,
    )


def _constant_view(raw: memoryview, ttype: TensorType, shape: tuple[int, ...], who: str) -> np.ndarray | None:
    dtype = ttype.dtype
    if dtype is None:  # strings, int4, resources: not numeric arrays; kept out of reach of the kernels
        return None
    count = math.prod(shape)
    if count * dtype.itemsize != len(raw):
        raise ModelError(
            f"{who}: its buffer has {len(raw)} bytes, shape {list(shape)} of {ttype.name} needs "
            f"{count * dtype.itemsize}"
        )
    view = np.frombuffer(raw, dtype=dtype, count=count).reshape(shape)
    view.flags.writeable = False
    return view


def _read_quantization(t: _Table | None, shape: tuple[int, ...], who: str) -> Quantization | None:
    if t is None:
        return None
    scales = t.array(QUANT_SCALE, "float32")
    zero_points = t.array(QUANT_ZERO_POINT, "int64")
    if scales is None and zero_points is None and t._field(QUANT_MIN) == 0:
        return None
    if scales is not None and scales.size and (zero_points is None or zero_points.size != scales.size):
        # (InterpreterBuilder::ParseQuantization refuses the model: TFLite would have no zero point to read)
        raise ModelError(f"{who}: {0 if zero_points is None else zero_points.size} zero points for "
                         f"{scales.size} scales; TFLite needs one for each")
    scales = np.zeros(0, np.float32) if scales is None else scales
    zero_points = np.zeros(0, np.int64) if zero_points is None else zero_points
    dim = t.scalar(QUANT_DIMENSION, "int32")
    if scales.size and (dim < 0 or (shape and dim >= len(shape))):
        # (InterpreterBuilder::ParseQuantization refuses it whatever the number of scales)
        raise ModelError(f"{who}: quantized_dimension {dim} is not a dimension of shape {list(shape)}")
    if scales.size > 1:
        if not 0 <= dim < len(shape) or shape[dim] != scales.size:
            raise ModelError(
                f"{who}: {scales.size} per-channel scales do not match dimension {dim} of shape {list(shape)}"
            )
    return Quantization(
        scales=scales,
        zero_points=zero_points,
        quantized_dimension=dim,
        min=t.array(QUANT_MIN, "float32"),
        max=t.array(QUANT_MAX, "float32"),
    )


def _read_options(t: _Table, op_index: int, code: OperatorCode) -> tuple[object | None, int]:
    """(the operator's options, the union type ignored or 0).

    LiteRT reads an operator's options with ``builtin_options_as_XOptions()``, which
    gives null for a union of another type, and the operator then runs with its
    defaults; operators that read no options never look. Converters do emit such
    stray unions (an ST-converted QUANTIZE carrying another op's options), so they
    are ignored here too, and reported through ``Operator.ignored_options_type``.
    """
    union_type = t.scalar(OP_OPTIONS_TYPE, "uint8")
    try:
        op = BuiltinOperator(code.builtin_code)
    except ValueError:
        return None, 0
    expected = OPERATOR_OPTIONS.get(op)
    if union_type == BuiltinOptionsType.NONE:
        return default_options(op), 0
    if expected is None or union_type != expected:
        return default_options(op), union_type
    table = t.table(OP_OPTIONS, f"operator {op_index} options")
    cls = OPTIONS_CLASSES[expected]
    if table is None:
        return cls(), 0
    return _parse_options(table, cls, f"operator {op_index} ({op.name}) options"), 0


def _parse_options(t: _Table, cls: type, who: str) -> object:
    values: dict[str, Any] = {}
    for slot_index, f in enumerate(dataclasses.fields(cls)):
        kind, enum_type = f.metadata["kind"], f.metadata["enum"]
        if kind.startswith("vector:"):
            arr = t.array(slot_index, kind.split(":", 1)[1])
            values[f.name] = f.default if arr is None else _ints(arr)
            continue
        assert kind in SCALAR_KINDS
        value = t.scalar(slot_index, kind, f.default)
        if enum_type is not None:
            try:
                value = enum_type(value)
            except ValueError:
                raise ModelError(f"{who}: {f.name} has unknown value {value}") from None
        elif kind == "bool":
            value = bool(value)
        values[f.name] = value
    return cls(**values)


def _read_signature(t: _Table, subgraphs: tuple[Subgraph, ...]) -> SignatureDef:
    key = t.string(SIGNATURE_KEY) or ""
    sub = t.scalar(SIGNATURE_SUBGRAPH, "uint32")
    if sub >= len(subgraphs):
        raise ModelError(f"signature {key!r} refers to subgraph {sub}, model has {len(subgraphs)}")
    n = len(subgraphs[sub].tensors)

    def tensor_map(slot: int, what: str) -> dict[str, int]:
        out = {}
        for m in t.tables(slot, f"signature {key!r} {what}"):
            index = m.scalar(TENSORMAP_INDEX, "uint32")
            if index >= n:
                raise ModelError(f"signature {key!r} {what} refers to tensor {index}, subgraph has {n}")
            out[m.string(TENSORMAP_NAME) or ""] = index
        return out

    return SignatureDef(key=key, inputs=tensor_map(SIGNATURE_INPUTS, "input"),
                        outputs=tensor_map(SIGNATURE_OUTPUTS, "output"), subgraph_index=sub)


