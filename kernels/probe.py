"""A kernel small enough to compile in a moment: proves that Numba imports *and* compiles here.

``pydeeplab.backends`` calls it before choosing the Numba backend; a Numba that imports
but whose LLVM cannot generate code fails here, not halfway through a model.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True)
def probe(n: int) -> int:
    """n + 1, computed by compiled code."""
    return n + 1
