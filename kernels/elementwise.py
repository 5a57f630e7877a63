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

import numpy as np
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


# ------------------------------------------------------------------------- float32

#: operation codes of :func:`activation_float` and :func:`arithmetic_float`
RELU, RELU6, RELU_N1_TO_1, HARD_SWISH = 0, 1, 2, 3
ADD, SUB, MUL = 0, 1, 2


@njit(cache=True, nogil=True)
def activation_float(x, out, op):
    """out = op(x) in one pass: RELU, RELU6, RELU_N1_TO_1 (clamps) or HARD_SWISH.

    x, out: float32 [N] (distinct arrays). The clamps keep NaN as ``np.clip`` does;
    HARD_SWISH is ``x * clamp(x + 3, 0, 6) / 6``, multiplied before dividing as the
    reference does. NumPy needs two to five passes and temporaries for these (RELU
    153 us, HARD_SWISH 275 us on 1x128x128x16 against 68 us here: memory bound).
    """
    zero, six = np.float32(0), np.float32(6)
    if op == HARD_SWISH:
        three = np.float32(3)
        for i in range(x.shape[0]):
            v = x[i]
            r = v + three
            r = zero if r < zero else r
            r = six if six < r else r
            out[i] = v * r / six
        return
    lo, hi = zero, np.float32(np.inf)
    if op == RELU6:
        hi = six
    elif op == RELU_N1_TO_1:
        lo, hi = np.float32(-1), np.float32(1)
    for i in range(x.shape[0]):
        v = x[i]
        v = lo if v < lo else v
        out[i] = hi if hi < v else v


@njit(cache=True, nogil=True)
def arithmetic_float(a, b, out, op, lo, hi):
    """out = clamp(a op b, lo, hi) for ADD, SUB or MUL, b broadcast along rows.

    a, out: float32 [R, C]; b: float32 [R, C], [1, C] (one row for all, e.g. a
    squeeze-and-excite scale) or [1, 1] (a scalar); lo, hi: float32 bounds of the fused
    activation (infinite for none). The clamp keeps NaN, as ``np.clip`` does.
    """
    rows, cols = out.shape
    row_b = b.shape[0] > 1
    scalar = b.shape[1] == 1 and cols > 1
    for r in range(rows):
        ar = a[r]
        br = b[r if row_b else 0]
        orow = out[r]
        s = br[0]
        for j in range(cols):
            y = br[j] if not scalar else s
            if op == ADD:
                v = ar[j] + y
            elif op == SUB:
                v = ar[j] - y
            else:
                v = ar[j] * y
            v = lo if v < lo else v
            orow[j] = hi if hi < v else v
