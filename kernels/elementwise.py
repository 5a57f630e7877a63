"""Table lookups: the fast path of every 8-bit -> 8-bit elementwise operator.

A quantized unary operator (requantize, RELU, LOGISTIC, HARD_SWISH, ...) maps an
8-bit input to an output through integer arithmetic that depends on the input
value alone, so plan time evaluates the reference arithmetic once on all 256
inputs and the kernel is a gather. A quantized binary operator (ADD, SUB, MUL)
depends on a pair of 8-bit values: a 256 x 256 table (64 KiB) evaluated the same
way. Results are bit-identical to the reference by construction.

Inputs are passed as uint8 views (an int8 tensor viewed as uint8 indexes its
table by its two's-complement byte, the order the tables are built in).
"""

from __future__ import annotations

from numba import njit


@njit(cache=True)
def lookup_unary(table, x, out):
    """out[i] = table[x[i]]. table: [256] any dtype; x: uint8 [N]; out: [N] of table's dtype."""
    for i in range(x.shape[0]):
        out[i] = table[x[i]]


@njit(cache=True)
def lookup_binary(table, a, b, out):
    """out[...] = table[a, b] with broadcasting.

    table: [256, 256]; a, b: uint8 6-D arrays already broadcast to out's shape (zero
    strides on broadcast dimensions); out: 6-D, table's dtype. Callers merge
    dimensions first, so the innermost loop is usually long and contiguous.
    """
    n0, n1, n2, n3, n4, n5 = out.shape
    for i0 in range(n0):
        for i1 in range(n1):
            for i2 in range(n2):
                for i3 in range(n3):
                    for i4 in range(n4):
                        ra = a[i0, i1, i2, i3, i4]
                        rb = b[i0, i1, i2, i3, i4]
                        ro = out[i0, i1, i2, i3, i4]
                        for i5 in range(n5):
                            ro[i5] = table[ra[i5], rb[i5]]
