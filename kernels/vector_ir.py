"""LLVM IR building blocks shared by the kernels written as Numba intrinsics.

The tiles of :mod:`.igemm`, :mod:`.direct_conv`, :mod:`.depthwise_row` and
:mod:`.depthwise_quantized` and the output stage of :mod:`.requantize` are LLVM IR (Numba
has no vector types, and its vectorizer neither keeps a tile of sums in registers nor goes
past 256-bit vectors on this CPU family). What they have in common is here: declaring
an LLVM intrinsic once per module, broadcasting a scalar, and the vector intrinsics they
call (fused multiply-add, masked loads and stores, which AVX-512 does in one instruction
and LLVM emulates elsewhere). Pointers are built from integer addresses (``ctypes.data``
and byte offsets).
"""

from __future__ import annotations

from llvmlite import ir

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)


def declare(module: ir.Module, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
    """The function ``name`` of ``module``, declared with this signature the first time."""
    return module.globals.get(name) or ir.Function(module, ir.FunctionType(ret, args), name)


def splat(builder: ir.IRBuilder, value: ir.Value, vector: ir.VectorType) -> ir.Value:
    """``value`` in every lane of a ``vector`` (its element type)."""
    one = builder.insert_element(ir.Constant(vector, None), value, ir.Constant(I32, 0))
    return builder.shuffle_vector(one, ir.Constant(vector, None), ir.Constant(ir.VectorType(I32, vector.count),
                                                                              [0] * vector.count))


def pointer(builder: ir.IRBuilder, address: ir.Value, pointee: ir.Type) -> ir.Value:
    """The integer ``address`` (bytes) as a pointer to ``pointee``."""
    return builder.inttoptr(address, pointee.as_pointer())


def _suffix(vector: ir.VectorType) -> str:
    element = vector.element
    kind = f"i{element.width}" if isinstance(element, ir.IntType) else (
        "f32" if isinstance(element, ir.FloatType) else "f64")
    return f"v{vector.count}{kind}"


def fma(builder: ir.IRBuilder, a: ir.Value, b: ir.Value, c: ir.Value) -> ir.Value:
    """``a * b + c`` lane by lane, rounded once (``llvm.fma``)."""
    return builder.call(declare(builder.module, f"llvm.fma.{_suffix(a.type)}", a.type, [a.type] * 3), [a, b, c])


def lanes_below(builder: ir.IRBuilder, count: ir.Value, lanes: int, *, within: bool = False) -> ir.Value:
    """The mask of the first ``count`` (an i64) of ``lanes`` (at most 64) lanes: the low bits of one
    integer (a mask register written by two scalar instructions, where comparing a vector of lane
    numbers took several vector ones). Any count, or with ``within`` one known to lie in 1 ..
    lanes (no clamp: two instructions less on a hot path, the 16-value copies of an im2col)."""
    n = count
    if not within:
        n = builder.select(builder.icmp_signed("<", n, ir.Constant(I64, lanes)), n, ir.Constant(I64, lanes))
        n = builder.select(builder.icmp_signed(">", n, ir.Constant(I64, 0)), n, ir.Constant(I64, 0))
    # n low bits set: all ones shifted right by 64 - n (a shift by 64, for n = 0, is undefined: selected out).
    bits = builder.lshr(ir.Constant(I64, -1), builder.sub(ir.Constant(I64, 64), n))
    if not within:
        bits = builder.select(builder.icmp_signed("==", n, ir.Constant(I64, 0)), ir.Constant(I64, 0), bits)
    return builder.bitcast(builder.trunc(bits, ir.IntType(lanes)), ir.VectorType(I1, lanes))


def masked_load(builder: ir.IRBuilder, at: ir.Value, mask: ir.Value, vector: ir.VectorType, align: int) -> ir.Value:
    """The lanes of ``vector`` at pointer ``at`` where ``mask`` holds (undefined elsewhere); nothing else is read."""
    fn = declare(builder.module, f"llvm.masked.load.{_suffix(vector)}.p0", vector,
                 [vector.as_pointer(), I32, ir.VectorType(I1, vector.count), vector])
    return builder.call(fn, [at, ir.Constant(I32, align), mask, ir.Constant(vector, None)])


def masked_store(builder: ir.IRBuilder, value: ir.Value, at: ir.Value, mask: ir.Value, align: int) -> None:
    """Store the lanes of ``value`` where ``mask`` holds at pointer ``at``; nothing else is written."""
    vector = value.type
    fn = declare(builder.module, f"llvm.masked.store.{_suffix(vector)}.p0", ir.VoidType(),
                 [vector, vector.as_pointer(), I32, ir.VectorType(I1, vector.count)])
    builder.call(fn, [value, at, ir.Constant(I32, align), mask])


__all__ = ["I1", "I8", "I32", "I64", "declare", "fma", "lanes_below", "masked_load", "masked_store", "pointer",
           "splat"]
