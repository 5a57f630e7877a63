"""Operator implementations, one module per operator family.

Importing this package registers every operator in :data:`base.REGISTRY`.
"""

import importlib

from .base import REGISTRY, OpContext, Prepared, TensorSpec, register

# Each family module registers its operators on import.
for _family in ("conv", "pool", "resize", "reduce", "elementwise", "activation", "shape", "quantize",
                "layout", "unary", "binary", "prelu", "fully_connected", "log_softmax"):
    importlib.import_module(f"{__name__}.{_family}")

__all__ = ["REGISTRY", "OpContext", "Prepared", "TensorSpec", "register"]
