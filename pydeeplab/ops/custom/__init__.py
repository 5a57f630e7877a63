"""Custom operators: the registry that users extend, and the ones pydeeplab ships.

A TFLite model names a custom operator by a string (``OperatorCode.custom_code``)
and passes it raw ``custom_options`` bytes; the runtime that executes the model
must bring the implementation. pydeeplab ships MediaPipe's
``Convolution2DTransposeBias``, ``MaxPoolingWithArgmax2D``, ``MaxUnpooling2D``
(:mod:`.mediapipe`) and MLPerf's ``ResizeArgmax`` (:mod:`.mlperf`); anyone can add
more with :func:`register_custom_op` (for every interpreter) or with
``Interpreter(..., custom_ops={name: prepare})`` (for one).

An implementation is a *prepare* function with the contract of the builtin
operators (:mod:`pydeeplab.ops.base`): it receives an :class:`OpContext` whose
``custom_code`` and ``custom_options`` carry the operator's name and raw option
bytes, checks the operator (``raise ctx.error("...")``), and returns
``Prepared(output_shapes, run)``; ``run(inputs, outputs)`` fills the
preallocated outputs in place, in NumPy or by calling a Numba function.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from ...errors import CustomOpRegistrationError
from ..base import Prepare

#: custom_code -> prepare; filled by :func:`register_custom_op` (and this package's own modules).
CUSTOM_REGISTRY: dict[str, Prepare] = {}


def check_custom_op(name: object, prepare: object) -> None:
    """Refuse a registration that could never work, with a message saying what to pass instead."""
    if not isinstance(name, str) or not name:
        raise CustomOpRegistrationError(
            f"a custom operator is registered under its custom_code, a non-empty string, not {name!r}")
    if not callable(prepare):
        raise CustomOpRegistrationError(
            f"custom operator {name!r}: prepare must be a function prepare(ctx) -> Prepared(output_shapes, run), "
            f"not {type(prepare).__name__}")


def register_custom_op(name: str, prepare: Prepare, *, replace: bool = False) -> Prepare:
    """Make ``prepare`` the implementation of custom operator ``name`` for every Interpreter.

    Args:
        name: the operator's ``custom_code`` in the model (case-sensitive, as TFLite matches it).
        prepare: ``prepare(ctx: OpContext) -> Prepared``, called once per operator at plan
            time; see the module docstring and docs/custom_ops.md.
        replace: allow replacing an existing implementation (pydeeplab's own included).

    Returns ``prepare``, so that this also works as ``@functools.partial(register_custom_op, name)``.
    Raises :class:`~pydeeplab.errors.CustomOpRegistrationError` for a bad name or prepare,
    or when ``name`` is taken and ``replace`` is false.
    """
    check_custom_op(name, prepare)
    if name in CUSTOM_REGISTRY and not replace:
        raise CustomOpRegistrationError(
            f"custom operator {name!r} is already registered; pass replace=True to replace it")
    CUSTOM_REGISTRY[name] = prepare
    return prepare


def unregister_custom_op(name: str) -> None:
    """Remove a custom operator registered with :func:`register_custom_op`."""
    if name not in CUSTOM_REGISTRY:
        raise CustomOpRegistrationError(f"custom operator {name!r} is not registered")
    del CUSTOM_REGISTRY[name]


def lookup_custom_op(name: str | None, extra: Mapping[str, Prepare] | None = None) -> Prepare | None:
    """The implementation of ``name``: from ``extra`` (an Interpreter's own) first, then the registry."""
    if name is None:
        return None
    if extra and name in extra:
        return extra[name]
    return CUSTOM_REGISTRY.get(name)


# pydeeplab's own custom operators register themselves on import.
for _module in ("mediapipe", "mlperf"):
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["CUSTOM_REGISTRY", "check_custom_op", "lookup_custom_op", "register_custom_op", "unregister_custom_op"]
