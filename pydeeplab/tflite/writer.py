"""Write TFLite flatbuffers: the inverse of :mod:`pydeeplab.tflite.reader`.

Used to synthesize models for tests (single-operator models run by LiteRT and by
pydeeplab) and for model surgery. The output follows what TFLite's converter
writes: schema version 3, file identifier ``TFL3``, buffer 0 the empty sentinel,
constant data 16-byte aligned, operator codes deduplicated and carrying both
``deprecated_builtin_code`` and ``builtin_code``.

Field slots are the positions of the fields in ``schema.fbs`` (a union takes two
slots: its type, then its value); options tables are written by walking the
dataclass fields of :mod:`pydeeplab.tflite.options`, which are declared in slot order.

    b = ModelBuilder(description="conv")
    x = b.add_tensor("x", TensorType.FLOAT32, (1, 8, 8, 3))
    w = b.add_constant("w", weights)
    y = b.add_tensor("y", TensorType.FLOAT32, (1, 8, 8, 4))
    b.add_operator(BuiltinOperator.CONV_2D, [x, w, -1], [y], Conv2DOptions(stride_w=1, stride_h=1))
    b.set_inputs([x]); b.set_outputs([y])
    data = b.finish()
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import flatbuffers
import numpy as np

from .model import Quantization
from .options import OPERATOR_OPTIONS, OPTIONS_CLASSES
from .schema import FILE_IDENTIFIER, SCHEMA_VERSION, BuiltinOperator, TensorType, tensor_type_of

#: Buffer data is ``[ubyte] (force_align: 16)`` in the schema, for mmap-friendly weights.
BUFFER_ALIGNMENT = 16

# Field slots, from the tables of schema.fbs.
_MODEL = dict(version=0, operator_codes=1, subgraphs=2, description=3, buffers=4, metadata=6,
              signature_defs=7, n=8)
_SUBGRAPH = dict(tensors=0, inputs=1, outputs=2, operators=3, name=4, n=5)
_TENSOR = dict(shape=0, type=1, buffer=2, name=3, quantization=4, is_variable=5,
               shape_signature=7, has_rank=8, n=9)
_QUANT = dict(min=0, max=1, scale=2, zero_point=3, quantized_dimension=6, n=7)
_OPCODE = dict(deprecated_builtin_code=0, custom_code=1, version=2, builtin_code=3, n=4)
_OPERATOR = dict(opcode_index=0, inputs=1, outputs=2, builtin_options_type=3, builtin_options=4,
                 custom_options=5, intermediates=8, n=9)
_BUFFER = dict(data=0, n=1)
_METADATA = dict(name=0, buffer=1, n=2)
_TENSORMAP = dict(name=0, tensor_index=1, n=2)
_SIGNATURE = dict(inputs=0, outputs=1, signature_key=2, subgraph_index=4, n=5)

_PREPEND_SCALAR = {
    "bool": flatbuffers.Builder.PrependBoolSlot,
    "int8": flatbuffers.Builder.PrependInt8Slot,
    "int32": flatbuffers.Builder.PrependInt32Slot,
    "float32": flatbuffers.Builder.PrependFloat32Slot,
}


@dataclass
class _Tensor:
    name: str
    type: TensorType
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    buffer: int
    quantization: Quantization | None
    is_variable: bool


@dataclass
class _Graph:
    """One subgraph under construction."""

    name: str
    tensors: list[_Tensor] = dataclasses.field(default_factory=list)
    operators: list["_Operator"] = dataclasses.field(default_factory=list)
    inputs: tuple[int, ...] = ()
    outputs: tuple[int, ...] = ()


@dataclass
class _Operator:
    opcode_index: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: object | None
    options_type: int
    custom_options: bytes | None
    intermediates: tuple[int, ...]


class ModelBuilder:
    """Collects subgraphs' tensors and operators and serializes them as a .tflite model.

    Tensor and operator methods return indices, which are the indices the written
    model uses; ``-1`` marks an absent optional operator input. They act on the
    current subgraph: subgraph 0 at first, the newest after :meth:`add_subgraph`
    (models with several signatures hold one subgraph per signature).
    """

    def __init__(self, description: str = "pydeeplab.tflite.writer", subgraph_name: str = "main"):
        self.description = description
        self.subgraph_name = subgraph_name
        self._buffers: list[bytes] = [b""]  # buffer 0: the empty sentinel
        self._graphs: list[_Graph] = [_Graph(subgraph_name)]
        self._current = 0
        self._opcodes: dict[tuple[int, str | None, int], int] = {}
        self._metadata: list[tuple[str, int]] = []
        self._signatures: list[tuple[str, dict[str, int], dict[str, int], int]] = []

    # The current subgraph's parts (the methods below were written for one subgraph).
    @property
    def _tensors(self) -> list[_Tensor]:
        return self._graphs[self._current].tensors

    @property
    def _operators(self) -> list[_Operator]:
        return self._graphs[self._current].operators

    def add_subgraph(self, name: str) -> int:
        """Start a new subgraph; later tensors and operators go to it. Returns its index."""
        self._graphs.append(_Graph(name))
        self._current = len(self._graphs) - 1
        return self._current

    # -- graph construction ---------------------------------------------------------------

    def add_buffer(self, data: bytes) -> int:
        """Append a raw buffer and return its index."""
        self._buffers.append(bytes(data))
        return len(self._buffers) - 1

    def add_tensor(self, name: str, type: TensorType, shape: Sequence[int],
                   quantization: Quantization | None = None, *, buffer: int = 0,
                   shape_signature: Sequence[int] | None = None, is_variable: bool = False) -> int:
        """Add a tensor (an activation unless ``buffer`` names a data buffer); return its index.

        ``shape_signature`` defaults to ``shape`` (use -1 entries for dynamic dimensions).
        """
        shape = tuple(int(d) for d in shape)
        sig = shape if shape_signature is None else tuple(int(d) for d in shape_signature)
        self._tensors.append(_Tensor(name, TensorType(type), shape, sig, buffer, quantization,
                                     is_variable))
        return len(self._tensors) - 1

    def add_constant(self, name: str, value: np.ndarray, quantization: Quantization | None = None,
                     type: TensorType | None = None) -> int:
        """Add a constant tensor holding ``value`` (stored little-endian); return its index.

        ``type`` defaults to the TensorType of ``value.dtype``; when given, the value is
        stored as that type's dtype.
        """
        value = np.asarray(value)
        type = tensor_type_of(value.dtype) if type is None else TensorType(type)
        if type.dtype is None:
            raise ValueError(f"cannot store constant data of type {type.name}")
        data = np.ascontiguousarray(value, dtype=type.dtype).tobytes()
        return self.add_tensor(name, type, value.shape, quantization, buffer=self.add_buffer(data))

    def add_operator(self, opcode: int, inputs: Sequence[int], outputs: Sequence[int],
                     options: object | None = None, version: int = 1, *,
                     custom_code: str | None = None, custom_options: bytes | None = None,
                     intermediates: Sequence[int] = (), options_type: int | None = None) -> int:
        """Add an operator (in execution order); return its index.

        ``options`` is a dataclass of :mod:`pydeeplab.tflite.options`; its union type is
        the one the operator requires (``OPERATOR_OPTIONS``), since several operators
        share a class such as ``EmptyOptions``. ``options_type`` overrides that union type,
        to write the stray unions some converters emit (tests of reader leniency).
        """
        code = int(opcode)
        if options is None:
            options_type = 0
        elif options_type is not None:
            options_type = int(options_type)
        else:
            try:
                union = OPERATOR_OPTIONS[BuiltinOperator(code)]
            except (KeyError, ValueError):
                raise ValueError(f"no options union type known for operator {code}") from None
            if type(options) is not OPTIONS_CLASSES[union]:
                raise ValueError(f"operator {BuiltinOperator(code).name} takes "
                                 f"{OPTIONS_CLASSES[union].__name__}, not {type(options).__name__}")
            options_type = int(union)
        key = (code, custom_code, int(version))  # deduplicated, listed in first-use order
        if key not in self._opcodes:
            self._opcodes[key] = len(self._opcodes)
        self._operators.append(_Operator(self._opcodes[key], tuple(int(i) for i in inputs),
                                         tuple(int(i) for i in outputs), options, options_type,
                                         custom_options, tuple(int(i) for i in intermediates)))
        return len(self._operators) - 1

    def set_inputs(self, inputs: Sequence[int]) -> None:
        self._graphs[self._current].inputs = tuple(int(i) for i in inputs)

    def set_outputs(self, outputs: Sequence[int]) -> None:
        self._graphs[self._current].outputs = tuple(int(i) for i in outputs)

    def add_metadata(self, name: str, data: bytes) -> None:
        """Attach named metadata (stored in its own buffer, as the converter does)."""
        self._metadata.append((name, self.add_buffer(data)))

    def add_signature(self, key: str, inputs: dict[str, int], outputs: dict[str, int],
                      subgraph_index: int = 0) -> None:
        """Add a SignatureDef of a subgraph: alias -> tensor index for inputs and outputs."""
        self._signatures.append((key, dict(inputs), dict(outputs), int(subgraph_index)))

    # -- serialization --------------------------------------------------------------------

    def finish(self) -> bytes:
        """Serialize the model; returns the bytes of a .tflite file."""
        b = flatbuffers.Builder(1024 + sum(len(d) for d in self._buffers))
        # Flatbuffers are built back to front: children before the tables that point to them.
        buffers = self._vector_of_tables(b, [self._write_buffer(b, d) for d in self._buffers])
        opcodes = self._vector_of_tables(b, [self._write_opcode(b, *k) for k in self._opcodes])
        subgraphs = self._vector_of_tables(b, [self._write_subgraph(b, g) for g in self._graphs])
        description = b.CreateString(self.description)
        metadata = signatures = None
        if self._metadata:
            metadata = self._vector_of_tables(b, [self._write_metadata(b, *m) for m in self._metadata])
        if self._signatures:
            signatures = self._vector_of_tables(b, [self._write_signature(b, *s) for s in self._signatures])

        b.StartObject(_MODEL["n"])
        b.PrependUint32Slot(_MODEL["version"], SCHEMA_VERSION, 0)
        b.PrependUOffsetTRelativeSlot(_MODEL["operator_codes"], opcodes, 0)
        b.PrependUOffsetTRelativeSlot(_MODEL["subgraphs"], subgraphs, 0)
        b.PrependUOffsetTRelativeSlot(_MODEL["description"], description, 0)
        b.PrependUOffsetTRelativeSlot(_MODEL["buffers"], buffers, 0)
        if metadata is not None:
            b.PrependUOffsetTRelativeSlot(_MODEL["metadata"], metadata, 0)
        if signatures is not None:
            b.PrependUOffsetTRelativeSlot(_MODEL["signature_defs"], signatures, 0)
        b.Finish(b.EndObject(), file_identifier=FILE_IDENTIFIER)
        return bytes(b.Output())

    @staticmethod
    def _vector_of_tables(b: flatbuffers.Builder, offsets: list[int]) -> int:
        b.StartVector(4, len(offsets), 4)
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    @staticmethod
    def _vector(b: flatbuffers.Builder, values, dtype: str) -> int:
        return b.CreateNumpyVector(np.asarray(values, dtype=dtype).reshape(-1))

    @staticmethod
    def _write_buffer(b: flatbuffers.Builder, data: bytes) -> int:
        if not data:  # the sentinel (and any empty buffer) has no data vector, as in real files
            b.StartObject(_BUFFER["n"])
            return b.EndObject()
        b.StartVector(1, len(data), BUFFER_ALIGNMENT)
        b.head -= len(data)
        b.Bytes[b.head:b.head + len(data)] = data
        vec = b.EndVector()
        b.StartObject(_BUFFER["n"])
        b.PrependUOffsetTRelativeSlot(_BUFFER["data"], vec, 0)
        return b.EndObject()

    @staticmethod
    def _write_opcode(b: flatbuffers.Builder, code: int, custom_code: str | None, version: int) -> int:
        custom = b.CreateString(custom_code) if custom_code is not None else None
        b.StartObject(_OPCODE["n"])
        # Codes above 127 do not fit the old byte field, which then holds the placeholder.
        b.PrependInt8Slot(_OPCODE["deprecated_builtin_code"],
                          min(code, BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES), 0)
        if custom is not None:
            b.PrependUOffsetTRelativeSlot(_OPCODE["custom_code"], custom, 0)
        b.PrependInt32Slot(_OPCODE["version"], version, 1)
        b.PrependInt32Slot(_OPCODE["builtin_code"], code, 0)
        return b.EndObject()

    def _write_quantization(self, b: flatbuffers.Builder, q: Quantization) -> int:
        fields = {}
        if q.min is not None:
            fields["min"] = self._vector(b, q.min, "<f4")
        if q.max is not None:
            fields["max"] = self._vector(b, q.max, "<f4")
        fields["scale"] = self._vector(b, q.scales, "<f4")
        fields["zero_point"] = self._vector(b, q.zero_points, "<i8")
        b.StartObject(_QUANT["n"])
        for name, off in fields.items():
            b.PrependUOffsetTRelativeSlot(_QUANT[name], off, 0)
        b.PrependInt32Slot(_QUANT["quantized_dimension"], int(q.quantized_dimension), 0)
        return b.EndObject()

    def _write_tensor(self, b: flatbuffers.Builder, t: _Tensor) -> int:
        shape = self._vector(b, t.shape, "<i4")
        sig = self._vector(b, t.shape_signature, "<i4")
        name = b.CreateString(t.name)
        quant = self._write_quantization(b, t.quantization) if t.quantization is not None else None
        b.StartObject(_TENSOR["n"])
        b.PrependUOffsetTRelativeSlot(_TENSOR["shape"], shape, 0)
        b.PrependInt8Slot(_TENSOR["type"], int(t.type), 0)
        b.PrependUint32Slot(_TENSOR["buffer"], t.buffer, 0)
        b.PrependUOffsetTRelativeSlot(_TENSOR["name"], name, 0)
        if quant is not None:
            b.PrependUOffsetTRelativeSlot(_TENSOR["quantization"], quant, 0)
        b.PrependBoolSlot(_TENSOR["is_variable"], t.is_variable, False)
        b.PrependUOffsetTRelativeSlot(_TENSOR["shape_signature"], sig, 0)
        b.PrependBoolSlot(_TENSOR["has_rank"], True, False)
        return b.EndObject()

    def _write_options(self, b: flatbuffers.Builder, options: object) -> int:
        fields = dataclasses.fields(options)
        vectors = {}
        for f in fields:  # vectors first: nothing may be written while a table is open
            value = getattr(options, f.name)
            if f.metadata["kind"] == "vector:int32" and value is not None:
                vectors[f.name] = self._vector(b, value, "<i4")
        b.StartObject(len(fields))
        for slot_index, f in enumerate(fields):
            kind, value = f.metadata["kind"], getattr(options, f.name)
            if kind == "vector:int32":
                if f.name in vectors:
                    b.PrependUOffsetTRelativeSlot(slot_index, vectors[f.name], 0)
                continue
            # Like the converter, a field equal to its schema default (the dataclass default) is omitted.
            default = f.default
            cast = float if kind == "float32" else (bool if kind == "bool" else int)
            _PREPEND_SCALAR[kind](b, slot_index, cast(value), cast(default))
        return b.EndObject()

    def _write_operator(self, b: flatbuffers.Builder, op: _Operator) -> int:
        inputs = self._vector(b, op.inputs, "<i4")
        outputs = self._vector(b, op.outputs, "<i4")
        options = self._write_options(b, op.options) if op.options is not None else None
        custom = (self._vector(b, np.frombuffer(op.custom_options, np.uint8), "u1")
                  if op.custom_options is not None else None)
        intermediates = self._vector(b, op.intermediates, "<i4") if op.intermediates else None
        b.StartObject(_OPERATOR["n"])
        b.PrependUint32Slot(_OPERATOR["opcode_index"], op.opcode_index, 0)
        b.PrependUOffsetTRelativeSlot(_OPERATOR["inputs"], inputs, 0)
        b.PrependUOffsetTRelativeSlot(_OPERATOR["outputs"], outputs, 0)
        if options is not None:
            b.PrependUint8Slot(_OPERATOR["builtin_options_type"], op.options_type, 0)
            b.PrependUOffsetTRelativeSlot(_OPERATOR["builtin_options"], options, 0)
        if custom is not None:
            b.PrependUOffsetTRelativeSlot(_OPERATOR["custom_options"], custom, 0)
        if intermediates is not None:
            b.PrependUOffsetTRelativeSlot(_OPERATOR["intermediates"], intermediates, 0)
        return b.EndObject()

    def _write_subgraph(self, b: flatbuffers.Builder, g: _Graph) -> int:
        tensors = self._vector_of_tables(b, [self._write_tensor(b, t) for t in g.tensors])
        inputs = self._vector(b, g.inputs, "<i4")
        outputs = self._vector(b, g.outputs, "<i4")
        operators = self._vector_of_tables(b, [self._write_operator(b, op) for op in g.operators])
        name = b.CreateString(g.name)
        b.StartObject(_SUBGRAPH["n"])
        b.PrependUOffsetTRelativeSlot(_SUBGRAPH["tensors"], tensors, 0)
        b.PrependUOffsetTRelativeSlot(_SUBGRAPH["inputs"], inputs, 0)
        b.PrependUOffsetTRelativeSlot(_SUBGRAPH["outputs"], outputs, 0)
        b.PrependUOffsetTRelativeSlot(_SUBGRAPH["operators"], operators, 0)
        b.PrependUOffsetTRelativeSlot(_SUBGRAPH["name"], name, 0)
        return b.EndObject()

    @staticmethod
    def _write_metadata(b: flatbuffers.Builder, name: str, buffer: int) -> int:
        name_off = b.CreateString(name)
        b.StartObject(_METADATA["n"])
        b.PrependUOffsetTRelativeSlot(_METADATA["name"], name_off, 0)
        b.PrependUint32Slot(_METADATA["buffer"], buffer, 0)
        return b.EndObject()

    def _write_signature(self, b: flatbuffers.Builder, key: str, inputs: dict[str, int],
                         outputs: dict[str, int], subgraph_index: int) -> int:
        def tensor_maps(aliases: dict[str, int]) -> int:
            maps = []
            for alias, index in aliases.items():
                name = b.CreateString(alias)
                b.StartObject(_TENSORMAP["n"])
                b.PrependUOffsetTRelativeSlot(_TENSORMAP["name"], name, 0)
                b.PrependUint32Slot(_TENSORMAP["tensor_index"], int(index), 0)
                maps.append(b.EndObject())
            return self._vector_of_tables(b, maps)

        ins, outs = tensor_maps(inputs), tensor_maps(outputs)
        key_off = b.CreateString(key)
        b.StartObject(_SIGNATURE["n"])
        b.PrependUOffsetTRelativeSlot(_SIGNATURE["inputs"], ins, 0)
        b.PrependUOffsetTRelativeSlot(_SIGNATURE["outputs"], outs, 0)
        b.PrependUOffsetTRelativeSlot(_SIGNATURE["signature_key"], key_off, 0)
        b.PrependUint32Slot(_SIGNATURE["subgraph_index"], subgraph_index, 0)
        return b.EndObject()
