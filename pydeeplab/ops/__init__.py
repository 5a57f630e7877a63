"""Operator implementations, one module per operator family.

Importing this package registers every operator in :data:`base.REGISTRY`.
"""

import importlib

from .base import REGISTRY, OpContext, Prepared, TensorSpec, register

# Each family module registers its operators on import. A module that does not
# exist yet is skipped, so that families can land one at a time.
for _family in ("conv", "pool", "resize", "reduce", "elementwise", "activation", "shape", "quantize"):
    try:
        importlib.import_module(f"{__name__}.{_family}")
    except ModuleNotFoundError as exc:  # pragma: no cover - only while a family is missing
        if exc.name != f"{__name__}.{_family}":
            raise

__all__ = ["REGISTRY", "OpContext", "Prepared", "TensorSpec", "register"]
