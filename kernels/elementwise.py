"""Elementwise kernels: 8-bit table lookups, and one float32 pass for the float operators.

Table lookups are the fast path of every 8-bit -> 8-bit elementwise operator.

A quantized unary operator (requantize, RELU, LOGISTIC, HARD_SWISH, ...) maps an
8-bit input to an output through integer arithmetic that depends on the input
value alone, so plan time evaluates the reference arithmetic once on all 256
inputs and the kernel is a gather (of 8-bit outputs, where the CPU has AVX-512 VBMI,
64 at a time from the table held in registers: :func:`lookup_bytes`). A quantized
binary operator (ADD, SUB, MUL)
depends on a pair of 8-bit values: a 256 x 256 table (64 KiB) evaluated the same
way. Results are bit-identical to the reference by construction. ADD and SUB of two
same-size operands go twice as fast in float32 with a check that sends the values
float32 cannot decide to the table (:func:`add_sub_checked`).

Inputs are passed as uint8 views (an int8 tensor viewed as uint8 indexes its
table by its two's-complement byte, the order the tables are built in).

Float32 ADD / SUB / MUL (row broadcasts), the RELU family and HARD_SWISH share
:func:`elementwise_float`, one loop with the fused clamp (the NumPy twins are in
``pydeeplab.reference.elementwise`` and ``activation``).
"""

from __future__ import annotations

import llvmlite.binding as ll
import numpy as np
from llvmlite import ir
from numba import config, njit, types
from numba.core.errors import TypingError
from numba.extending import intrinsic

from .vector_ir import I8, I64, declare, lanes_below, masked_load, masked_store


@njit(cache=True, nogil=True, inline="always")
def part(rows, cols, t, nt):
    """Part t of nt of a [rows, cols] loop (:func:`pydeeplab.kernels.parallel.in_parallel`):
    (first row, stop row, first column, stop column). Rows ``rows * t // nt`` to
    ``rows * (t + 1) // nt``, or, with fewer rows than parts (two same-shape operands make
    one long row), that share of every row."""
    if rows >= nt:
        return rows * t // nt, rows * (t + 1) // nt, 0, cols
    return 0, rows, cols * t // nt, cols * (t + 1) // nt


@njit(cache=True, nogil=True)
def lookup_unary(table, x, out, t, nt):
    """out[i] = table[x[i]]. table: [256] any dtype; x: uint8 [N]; out: [N] of table's dtype.
    Part t of nt (:func:`part`) of the N values."""
    _, _, first, stop = part(1, x.shape[0], t, nt)
    xs, os = x[first:stop], out[first:stop]  # (indices from 0: no negative-index wraparound in the loop)
    for i in range(stop - first):
        os[i] = table[xs[i]]


def _target_has_vbmi() -> bool:
    """Whether the CPU Numba compiles for (NUMBA_CPU_FEATURES, else the host's) has AVX-512 VBMI."""
    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else ll.get_host_cpu_features().flatten()
    return "+avx512vbmi" in features.split(",")


#: The CPU Numba compiles for has AVX-512 VBMI's vpermi2b (64 byte lookups in a 128-byte table at once):
#: :func:`lookup_bytes` then replaces :func:`lookup_unary` for tables of bytes.
HAVE_VBMI = _target_has_vbmi() and not config.DISABLE_JIT


@intrinsic
def _lookup64(typingctx, table, x, out, start, n):
    """out[start : start + n] = table[x[start : start + n]] for 1 <= n <= 64, the 256-entry table of
    bytes held in four vectors: two vpermi2b (each a lookup of the index's low 7 bits in 128 bytes),
    one picked per byte by the index's top bit. x uint8, out and table 1-byte, C-contiguous 1-D;
    the last (n < 64) values through masked loads and stores: nothing past them is read or written."""
    for name, arr in (("table", table), ("x", x), ("out", out)):
        if not isinstance(arr, types.Array) or arr.ndim != 1 or arr.layout != "C" or arr.dtype.bitwidth != 8:
            raise TypingError(f"_lookup64: {name} must be a C-contiguous 1-D array of bytes, not {arr}")
    sig = types.void(table, x, out, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        table_v, x_v, out_v, start_v, n_v = args
        bytes64 = ir.VectorType(I8, 64)
        data = {name: builder.bitcast(context.make_array(t)(context, builder, v).data, I8.as_pointer())
                for name, t, v in (("table", table, table_v), ("x", x, x_v), ("out", out, out_v))}
        quarters = [builder.load(builder.bitcast(builder.gep(data["table"], [ir.Constant(I64, 64 * k)]),
                                                 bytes64.as_pointer()), align=1) for k in range(4)]
        mask = lanes_below(builder, n_v, 64, within=True)
        index = masked_load(builder, builder.bitcast(builder.gep(data["x"], [start_v]), bytes64.as_pointer()), mask,
                            bytes64, 1)
        vpermi2b = declare(builder.module, "llvm.x86.avx512.vpermi2var.qi.512", bytes64, [bytes64] * 3)
        low = builder.call(vpermi2b, [quarters[0], index, quarters[1]])
        high = builder.call(vpermi2b, [quarters[2], index, quarters[3]])
        value = builder.select(builder.icmp_signed("<", index, ir.Constant(bytes64, None)), high, low)
        at = builder.bitcast(builder.gep(data["out"], [start_v]), bytes64.as_pointer())
        masked_store(builder, value, at, mask, 1)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True)
def lookup_bytes(table, x, out, t, nt):
    """:func:`lookup_unary` for a table of bytes, 64 values a step (:func:`_lookup64`; only where
    :data:`HAVE_VBMI`). 1 thread, 279,037 int8 values: 0.087 -> 0.012 ms."""
    _, _, first, stop = part(1, x.shape[0], t, nt)
    for i in range(first, stop, 64):
        _lookup64(table, x, out, i, min(stop - i, 64))


@njit(cache=True, nogil=True)
def lookup_binary(table, a, b, out, t, nt):
    """out[...] = table[a, b] with broadcasting.

    table: [256, 256]; a, b: uint8 6-D arrays already broadcast to out's shape (zero
    strides on broadcast dimensions); out: 6-D, table's dtype. Callers merge
    dimensions first, so the innermost loop is usually long and contiguous. Part t of
    nt (:func:`part`) of the rows (all dimensions but the last).
    """
    n0, n1, n2, n3, n4, n5 = out.shape
    first, stop, lo, hi = part(n0 * n1 * n2 * n3 * n4, n5, t, nt)
    for r in range(first, stop):
        i4 = r % n4
        i3 = r // n4 % n3
        i2 = r // (n4 * n3) % n2
        i1 = r // (n4 * n3 * n2) % n1
        i0 = r // (n4 * n3 * n2 * n1)
        # Slices: indices from 0, which Numba knows need no negative-index wraparound.
        ra = a[i0, i1, i2, i3, i4, lo:hi]
        rb = b[i0, i1, i2, i3, i4, lo:hi]
        ro = out[i0, i1, i2, i3, i4, lo:hi]
        for i5 in range(hi - lo):
            ro[i5] = table[ra[i5], rb[i5]]


#: Values a block of :func:`add_sub_checked` takes: a block with a value near a rounding boundary is
#: looked up in the table, all of it.
CHECKED_BLOCK = 128
#: Where :func:`add_sub_checked` finds its float32 constants.
CHECK_A, CHECK_B, CHECK_C, CHECK_EPS, CHECK_LO, CHECK_HI = range(6)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def add_sub_checked(a, b, out, table, constants, flip, t, nt):
    """out = table[a, b] for an 8-bit ADD or SUB of two same-size operands (the table of
    :func:`lookup_binary`, TFLite's exact result), computed in float32 where that gives the same
    byte: 129x129x24, one thread, 0.094 ms against the table's 0.181 ms.

    TFLite's result is ``floor(w)``: w the two inputs on the common scale added (or subtracted),
    rescaled to the output's scale, plus the zero point and its two roundings' offset (1/2, or a
    little less or more: :func:`.requantize.requant_table`). Here ``y = u1 * A + u2 * B + C`` in
    float32 stands for it, u the input bytes (``^ flip``, 0x80 for int8: 0..255), with a bound eps
    on ``|y - w|`` (constants and bound from ``pydeeplab.ops.elementwise.checked_add_constants``):
    where y lies more than eps from every integer, ``floor(y) = floor(w)``, clamped to [lo, hi]. A
    block of :data:`CHECKED_BLOCK` values with one within eps of an integer (a rounding tie, or
    near one) is looked up in the table instead. a, b, out: uint8 [N] (int8 viewed as uint8);
    table: uint8 [256, 256]; constants: float32, :data:`CHECK_A` ... :data:`CHECK_HI`. Part t of nt
    (:func:`part`) of the N values."""
    a_, b_, c_, eps = constants[CHECK_A], constants[CHECK_B], constants[CHECK_C], constants[CHECK_EPS]
    lo, hi, top = constants[CHECK_LO], constants[CHECK_HI], np.float32(1) - eps
    _, _, first, stop = part(1, out.shape[0], t, nt)
    for s in range(first, stop, CHECKED_BLOCK):
        e = min(s + CHECKED_BLOCK, stop)
        ra, rb, ro = a[s:e], b[s:e], out[s:e]  # (indices from 0: no negative-index wraparound in the loop)
        near = False
        for i in range(e - s):
            y = np.float32(ra[i] ^ flip) * a_ + (np.float32(rb[i] ^ flip) * b_ + c_)
            f = np.floor(y)
            r = y - f  # (exact)
            near |= (r < eps) | (r > top)
            ro[i] = np.uint8(np.int32(max(min(f, hi), lo)) & 0xFF)
        if near:
            for i in range(e - s):
                ro[i] = table[ra[i], rb[i]]


# ------------------------------------------------------------------------- float32

#: operation codes of :func:`elementwise_float`: three binary, two unary (b unused), and the
#: two passes around LOGISTIC's exp
ADD, SUB, MUL, CLAMP, HARD_SWISH, LOGISTIC_ARGUMENT, LOGISTIC = 0, 1, 2, 3, 4, 5, 6


@njit(cache=True, nogil=True)
def repeat_row(row, out, t, nt):
    """out[i] = row[0] for each row i of part t of nt: one row repeated, [1, C] -> [K, C] (a
    squeeze-and-excite scale laid side by side for the wide rows of ``pydeeplab.ops.elementwise``).
    Element by element: a row assignment (``out[i] = row[0]``) took 1.9 s to compile, its shape
    check's error message included."""
    first = row[0]
    for i in range(out.shape[0] * t // nt, out.shape[0] * (t + 1) // nt):
        into = out[i]
        for j in range(into.shape[0]):
            into[j] = first[j]


@njit(cache=True, nogil=True)
def multiply_add_float(a, s, y, out, lo, hi, t, nt):
    """out = clamp(a * s + y, lo, hi): a MUL, then the ADD of its product (a squeeze-and-excite scale
    and the residual after it), in one pass. The product is rounded to float32 before the sum, as
    the two operators round it (the loop has no contraction into a fused multiply-add): the same
    bits. a, y, out: float32 [R, C]; s: [R, C], [1, C] (one row for all) or [1, 1]. Part t of nt
    (:func:`pydeeplab.kernels.parallel.in_parallel`): rows ``R * t // nt`` to ``R * (t + 1) // nt``."""
    rows, cols = out.shape
    row_s = s.shape[0] > 1
    scalar = s.shape[1] == 1 and cols > 1
    for r in range(rows * t // nt, rows * (t + 1) // nt):
        ar, yr, orow = a[r], y[r], out[r]
        sr = s[r if row_s else 0]
        k = sr[0]
        for j in range(cols):
            v = ar[j] * (k if scalar else sr[j]) + yr[j]
            v = lo if v < lo else v
            orow[j] = hi if hi < v else v


@njit(cache=True, nogil=True, error_model="numpy")
def elementwise_float(a, b, out, op, lo, hi, t, nt):
    """out = clamp(f(a, b), lo, hi) in one pass, for the float elementwise operators.

    f is a + b, a - b, a * b (ADD, SUB, MUL), a (CLAMP: the RELU family by its bounds)
    or a * clamp(a + 3, 0, 6) / 6 (HARD_SWISH, multiplied before dividing as the
    reference does). LOGISTIC takes two passes around NumPy's exp (SIMD, where Numba's
    is a scalar call, 15x slower): LOGISTIC_ARGUMENT gives each element the one
    argument its branch of ``reference.activation.logistic`` needs, clamped as there
    (x below -9: x, else -x); LOGISTIC then takes b = exp of those and gives 1 above
    the cut-off, b below -9, else 1 / (1 + b): the reference's bits, in two passes
    instead of ten. a, out: float32 [R, C]; b: float32 [R, C], [1, C] (one row for
    all, e.g. a squeeze-and-excite scale) or [1, 1] (a scalar), ignored by the unary
    ops; lo, hi: float32 bounds (a fused activation's, infinite for none). The clamps
    keep NaN, as ``np.clip`` does. One kernel, so one compile on a cold cache (0.4 s);
    NumPy needs two to five passes and temporaries for these: on 1x128x128x16, RELU
    153 -> 65 us, HARD_SWISH 275 -> 68 us, ADD with no activation 164 -> 96 us,
    squeeze-excite MUL by [1, 1, 1, 16] 154 -> 120 us (thread_time, min of 200).
    NumPy's error model: a float division is IEEE's, without Python's test for a zero
    divisor, which kept LOGISTIC's ``1 / (1 + b)`` loop scalar (65536 values 99 -> 14 us).
    Part t of nt (:func:`pydeeplab.kernels.parallel.in_parallel`): rows ``R * t // nt`` to
    ``R * (t + 1) // nt`` (callers view an image as its rows, ``pydeeplab.ops.elementwise.image_rows``;
    a split of the columns, as the lookups do, kept the loop from vectorizing: 2-5x slower).
    """
    rows, cols = out.shape
    row_b = b.shape[0] > 1
    scalar = b.shape[1] == 1 and cols > 1
    zero, three, six = np.float32(0), np.float32(3), np.float32(6)
    for r in range(rows * t // nt, rows * (t + 1) // nt):
        ar = a[r]
        br = b[r if row_b else 0]
        orow = out[r]
        s = br[0]
        # The tests on op and scalar are loop-invariant: LLVM moves them out of the loop.
        # Short rows cost their setting up (the views, LLVM's checks that the rows do not
        # overlap): callers give rows of 256 values or more where they can
        # (``pydeeplab.ops.elementwise.wide_rows``).
        for j in range(cols):
            v = ar[j]
            if op == HARD_SWISH:
                g = v + three
                g = zero if g < zero else g
                g = six if six < g else g
                v = v * g / six
            elif op == LOGISTIC_ARGUMENT:  # (NaN stays NaN)
                if v < np.float32(-9):
                    v = np.float32(-87.33) if v < np.float32(-87.33) else v
                else:
                    v = -(np.float32(17) if np.float32(17) < v else v)
            elif op == LOGISTIC:
                e = br[j]
                if v > np.float32(16.619047164916992188):
                    v = np.float32(1)
                elif v < np.float32(-9):
                    v = e
                else:
                    v = np.float32(1) / (np.float32(1) + e)
            elif op != CLAMP:
                y = br[j] if not scalar else s
                if op == ADD:
                    v = v + y
                elif op == SUB:
                    v = v - y
                else:
                    v = v * y
            v = lo if v < lo else v
            orow[j] = hi if hi < v else v
