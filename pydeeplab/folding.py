"""Constant folding at plan time: operators whose inputs are all constant run once.

LiteRT does this for DEQUANTIZE of constant weights (``dequantize.cc`` marks the
output persistent and computes it in Prepare) and, through the same
``IsConstantOrPersistentTensor`` test, for other operators whose operands are all
known before the first invoke. Converters rely on it: TF Hub and MediaPipe
models store float16 weights behind DEQUANTIZE, so a CONV_2D's filter is the
*output* of an operator rather than a constant tensor of the file.

:func:`fold` is called by the plan right after an operator's prepare. When every
input of the operator is constant (a weight of the file, or the output of an
operator folded before it), it runs the operator now, on fresh arrays, and
returns the outputs. The plan then hands those arrays to the prepare of later
operators as constants (so ``ctx.constant(...)`` accepts them), keeps them
readable through ``get_tensor``, leaves them out of the activation arena, and
does not run the operator again at invoke.
"""

from __future__ import annotations

import numpy as np

from .ops.base import OpContext, Prepared
from .tflite.schema import BuiltinOperator

#: Operators that are not pure functions of their inputs (random numbers, resource
#: variables, control flow): never folded, even with constant operands.
NEVER_FOLD = frozenset({
    BuiltinOperator.CUSTOM,
    BuiltinOperator.IF,
    BuiltinOperator.WHILE,
    BuiltinOperator.CALL_ONCE,
    BuiltinOperator.VAR_HANDLE,
    BuiltinOperator.READ_VARIABLE,
    BuiltinOperator.ASSIGN_VARIABLE,
    BuiltinOperator.RANDOM_STANDARD_NORMAL,
    BuiltinOperator.RANDOM_UNIFORM,
    BuiltinOperator.MULTINOMIAL,
})


def foldable(ctx: OpContext) -> bool:
    """True when the operator is pure and every input it has is constant."""
    present = [spec for spec in ctx.inputs if spec is not None]
    return ctx.opcode not in NEVER_FOLD and bool(present) and all(spec.data is not None for spec in present)


def fold(ctx: OpContext, prepared: Prepared) -> tuple[np.ndarray, ...] | None:
    """Run a prepared operator now if :func:`foldable`; its outputs (read-only arrays) or None.

    ``prepared.output_shapes`` give the shapes, the model's tensor types the
    dtypes, exactly as the arena would have; the arrays belong to the caller.
    """
    if not foldable(ctx):
        return None
    outputs = [np.empty(shape, dtype=spec.dtype) for shape, spec in zip(prepared.output_shapes, ctx.outputs)]
    try:
        prepared.run([None if spec is None else spec.data for spec in ctx.inputs], outputs)
    except MemoryError:
        raise ctx.error("its outputs, computed at plan time from constant inputs, do not fit in memory") from None
    except (ArithmeticError, IndexError, ValueError) as exc:  # constants invoke would have failed on too
        raise ctx.error(f"computing it from its constant inputs at plan time failed: {exc}") from exc
    for array in outputs:
        array.flags.writeable = False  # a constant from now on, shared by every later reader
    return tuple(outputs)
