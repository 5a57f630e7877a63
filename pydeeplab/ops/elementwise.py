"""ADD, SUB, MUL: float32 and quantized uint8/int8, with broadcasting and fused activation.

Prepare follows TFLite's ``kernels/add.cc``, ``sub.cc`` and ``mul.cc``: the output
shape is the broadcast of the input shapes; for 8-bit tensors the rescaling
multipliers come from the float32 scales exactly as TFLite computes them.

Backends: on the numba backend, two same-shape inputs, a scalar or a repeated row (the
squeeze-and-excite scale) run ``kernels/elementwise.elementwise_float``, one pass with the
fused activation, split by rows over the threads; an irregular broadcast is NumPy (one
pass into the output, a second for a fused activation), as on the numpy backend.
The quantized numba path evaluates the reference arithmetic once at plan time on all
256 x 256 input pairs and gathers from that table (``kernels/elementwise.py``), which
is bit-identical by construction; an ADD or SUB of two same-size operands computes the
sum in float32 instead, twice as fast, where a bound worked out at plan time shows float32
gives TFLite's byte, and looks up the blocks of values that lie too near a rounding
boundary for it to tell (:func:`checked_add_constants`).

This module also holds the small helpers the other elementwise-like families
(activation, shape, quantize) share: reading per-tensor quantization and building
and running 8-bit lookup tables.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ..quantization import activation_range_float, activation_range_quantized, add_params, quantize_multiplier
from ..reference import elementwise as ref
from ..tflite.options import AddOptions, MulOptions, SubOptions
from ..tflite.schema import BuiltinOperator, TensorType
from .base import OpContext, Prepared, Run, TensorSpec, register

#: the 8-bit tensor types whose values index a 256-entry table
EIGHT_BIT = (TensorType.UINT8, TensorType.INT8)


def quantization_of(ctx: OpContext, spec: TensorSpec, what: str) -> tuple[float, int]:
    """(scale, zero_point) of a per-tensor quantized tensor, as TFLite's ``params`` reads them.

    The scale is returned as a Python float holding the exact float32 value. Raises a
    ModelError when the tensor has no quantization or a non-positive scale.
    """
    if not spec.is_quantized:
        raise ctx.error(f"{what} ({spec.type.name} tensor {spec.name!r}) has no quantization parameters")
    q = spec.quantization
    if not q.scale > 0.0 or not np.isfinite(q.scale):
        raise ctx.error(f"{what} ({spec.name!r}) has scale {q.scale}; a positive finite scale is required")
    return q.scale, q.zero_point


def all_values(dtype: np.dtype) -> np.ndarray:
    """The 256 values of an 8-bit dtype in table order: ``all_values(d)[k]`` has the byte k."""
    return np.arange(256, dtype=np.uint8).view(np.dtype(dtype))


def unary_table(fn: Callable[[np.ndarray, np.ndarray], None], in_dtype: np.dtype, out_dtype: np.dtype) -> np.ndarray:
    """Tabulate an 8-bit elementwise function: ``fn(x, out)`` on all 256 inputs.

    Returns the [256] table of out_dtype indexed by the input's byte (see :func:`all_values`).
    """
    table = np.empty(256, dtype=out_dtype)
    fn(all_values(in_dtype), table)
    return table


def _view(a: np.ndarray, shape) -> np.ndarray:
    """``a`` reshaped without copying (a kernel writes through it into ``a``)."""
    v = a.reshape(shape)
    if v.size and not np.may_share_memory(v, a):
        raise ValueError(f"output array of shape {a.shape} and strides {a.strides} is not contiguous")
    return v


def unary_lookup_run(table: np.ndarray) -> Run:
    """A ``run`` that maps input 0 through ``table`` (indexed by the input's byte) into output 0."""
    from ..kernels.elementwise import HAVE_VBMI, lookup_bytes, lookup_unary
    from ..kernels.parallel import ELEMENT_WORK, in_parallel, replayable, numba_threads

    lookup = in_parallel(lookup_bytes if HAVE_VBMI and table.dtype.itemsize == 1 else lookup_unary)

    @replayable
    def run(inputs: Sequence[np.ndarray | None], outputs: Sequence[np.ndarray]) -> None:
        lookup(table, inputs[0].view(np.uint8).reshape(-1), _view(outputs[0], -1),
               nt=numba_threads(outputs[0].size * ELEMENT_WORK))

    return run


def unary_run(fn: Callable[[np.ndarray, np.ndarray], None]) -> Run:
    """A ``run`` that calls ``fn(input 0, output 0)``."""

    def run(inputs: Sequence[np.ndarray | None], outputs: Sequence[np.ndarray]) -> None:
        fn(inputs[0], outputs[0])

    return run


def quantized_unary_run(ctx: OpContext, spec: Callable[[np.ndarray, np.ndarray], None],
                        in_dtype: np.dtype, out_dtype: np.dtype) -> Run:
    """The ``run`` of an 8-bit one-input operator given its reference ``spec(x, out)``.

    The numpy backend runs the reference itself; the numba backend tabulates it on the
    256 possible inputs at plan time and gathers (bit-identical by construction).
    """
    if ctx.backend == "numba":
        return unary_lookup_run(unary_table(spec, in_dtype, out_dtype))
    return unary_run(spec)


def in_out_quantization(ctx: OpContext, x: TensorSpec, o: TensorSpec) -> tuple[float, int, float, int]:
    """(s_in, z_in, s_out, z_out) of a one-input operator's input 0 and output 0."""
    s_in, z_in = quantization_of(ctx, x, "input 0")
    s_out, z_out = quantization_of(ctx, o, "output 0")
    return s_in, z_in, s_out, z_out


def _merged_broadcast_shapes(a: tuple[int, ...], b: tuple[int, ...], out: tuple[int, ...]):
    """Shapes of a, b and out as 6-D arrays with adjacent dimensions of the same broadcast
    pattern merged (so a plain elementwise op becomes one long row), or None if more than
    six groups remain. Size-1 output dimensions are dropped; a and b are left-padded."""
    r = len(out)
    pa = (1,) * (r - len(a)) + tuple(a)
    pb = (1,) * (r - len(b)) + tuple(b)
    groups: list[list] = []  # [a_is_full, b_is_full, size]
    for da, db, do in zip(pa, pb, out):
        if do == 1:
            continue
        kind = (da == do, db == do)
        if groups and tuple(groups[-1][:2]) == kind:
            groups[-1][2] *= do
        else:
            groups.append([kind[0], kind[1], do])
    if len(groups) > 6:
        return None
    pad = [(True, True, 1)] * (6 - len(groups))
    groups = pad + [tuple(g) for g in groups]
    sa = tuple(n if full else 1 for full, _, n in groups)
    sb = tuple(n if full else 1 for _, full, n in groups)
    so = tuple(n for _, _, n in groups)
    return sa, sb, so


def image_rows(shape) -> tuple[int, int]:
    """``shape`` as [rows, columns] for the float kernels, which split their work by rows: an
    image's N * H rows of W * C values, else all dimensions but the last as the rows."""
    n = math.prod(shape)
    rows = math.prod(shape[:-2]) if len(shape) >= 3 else 1
    if rows <= 1:
        rows = math.prod(shape[:-1]) if len(shape) >= 2 else 1
    return (rows, n // rows) if rows else (1, n)


def rows_layout(a_shape, b_shape, out_shape) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """2-D shapes of a and b against out viewed as [R, C] for ``elementwise_float``, or None.

    a must cover the whole output; b may too (both the output's :func:`image_rows`), or be one
    value ([1, 1]), or the output's trailing dimensions (a row repeated: [R, C] and [1, C]).
    """
    n = math.prod(out_shape)
    if math.prod(a_shape) != n or n == 0:
        return None
    nb = math.prod(b_shape)
    if nb == n:
        return image_rows(out_shape), image_rows(out_shape)
    if nb == 1:
        return image_rows(out_shape), (1, 1)
    row = list(b_shape)
    while row and row[0] == 1:  # leading ones broadcast for free
        row.pop(0)
    if tuple(out_shape[len(out_shape) - len(row):]) == tuple(row):
        return (n // nb, nb), (1, nb)
    return None


#: Rows at least this long for the float kernels where a short row is repeated (:func:`wide_rows`).
WIDE_ROW = 256


def wide_rows(sa: tuple[int, int], sb: tuple[int, int]) -> tuple[tuple[int, int], int]:
    """``(a's shape, k)``: a [R, C] against b [1, C] (a row repeated, or one value with C = 1) as k rows
    side by side, [R / k, k * C], against b repeated k times (:func:`repeat_row`), k the largest divisor
    of R with k * C <= :data:`WIDE_ROW`; k = 1 (a's shape as given) otherwise. A squeeze-and-excite scale,
    [16384, 16] * [1, 16]: 83 -> 76 us (one thread, the copies of the row included)."""
    (rows, cols), (brows, bcols) = sa, sb
    if brows != 1 or bcols != cols or cols * 2 > WIDE_ROW:
        return sa, 1
    k = max(d for d in range(1, WIDE_ROW // cols + 1) if rows % d == 0)
    return (rows // k, k * cols), k


def repeat_row(shape: tuple[int, int], k: int) -> Callable[[np.ndarray], np.ndarray]:
    """``f(b)``: b viewed as ``shape``, or, for k > 1, its one row k times side by side, [1, k * C], in
    a buffer of its own (:func:`wide_rows`), filled by a kernel launch (which a replay makes again)."""
    from ..kernels import elementwise as kern
    from ..kernels.parallel import in_parallel

    if k == 1:
        return lambda b: b.reshape(shape)
    repeated = np.empty((k, shape[1]), np.float32)
    wide, fill = repeated.reshape(1, -1), in_parallel(kern.repeat_row)

    def f(b: np.ndarray) -> np.ndarray:
        fill(b.reshape(shape), repeated, nt=1)
        return wide

    return f


def _binary_lookup_run(table: np.ndarray, a_shape, b_shape, out_shape) -> Run | None:
    """A ``run`` computing output 0 = table[input0, input1] with broadcasting, or None when
    the broadcast does not fit the kernel's six dimensions."""
    from ..kernels.elementwise import lookup_binary
    from ..kernels.parallel import ELEMENT_WORK, in_parallel, replayable, numba_threads

    merged = _merged_broadcast_shapes(a_shape, b_shape, out_shape)
    if merged is None:
        return None
    sa, sb, so = merged
    lookup = in_parallel(lookup_binary)

    @replayable
    def run(inputs: Sequence[np.ndarray | None], outputs: Sequence[np.ndarray]) -> None:
        a = np.broadcast_to(inputs[0].view(np.uint8).reshape(sa), so)
        b = np.broadcast_to(inputs[1].view(np.uint8).reshape(sb), so)
        lookup(table, a, b, _view(outputs[0], so), nt=numba_threads(outputs[0].size * ELEMENT_WORK))

    return run


def binary_table(spec: Callable[[np.ndarray, np.ndarray, np.ndarray], None], in_dtype: np.dtype,
                 out_dtype: np.dtype) -> np.ndarray:
    """Tabulate an 8-bit two-input function: ``spec(x1, x2, out)`` on all 256 x 256 input pairs, [256, 256]
    of out_dtype indexed by the inputs' bytes (see :func:`all_values`)."""
    values = all_values(in_dtype)
    table = np.empty((256, 256), dtype=out_dtype)
    spec(values[:, None], values[None, :], table)
    return table


def checked_add_constants(p: ref.ArithmeticParams, dtype: np.dtype, subtract: bool) -> np.ndarray | None:
    """The float32 constants of ``kernels/elementwise.add_sub_checked`` for an 8-bit ADD (SUB with
    ``subtract``) of TFLite's constants ``p`` on ``dtype`` tensors, or None where float32 is not
    close enough to TFLite's arithmetic, or too many input pairs fall near a rounding boundary (the
    table lookup then does it all).

    The kernel's ``y = u1 * A + u2 * B + C`` (u the inputs' bytes, ``^ 0x80`` for int8) stands for
    TFLite's w, of which the result is the floor: the sum (or difference) on the output's scale, the
    zero point and the roundings' offset added. The bound ``eps`` on ``|y - w|`` is worked out here in
    exact rationals, as the sum of: for each input, the largest distance over its 256 values between
    TFLite's rescaled value (two roundings: ``reference.on_common_scale``) and the value times its
    slope, on the output's scale; the constants' rounding to float32; half a float32 step of each
    product and sum the kernel rounds (with fused multiply-adds or without), at the largest magnitude
    it can take; and the roundings' offset's distance from the 1/2 in C (1/2 less or more
    ``2**-(right + 1)``, by the sum's sign, for an output right shift ``right`` > 0). Then it is made
    1/16 larger (and at least 2**-20).
    """
    from fractions import Fraction

    from ..kernels.elementwise import CHECK_A, CHECK_B, CHECK_C, CHECK_EPS, CHECK_HI, CHECK_LO, CHECKED_BLOCK

    values = np.arange(256) - (128 if np.dtype(dtype) == np.int8 else 0)  # the value of each u
    right = -int(p.output_shift)
    scale = Fraction(int(p.output_multiplier), 2 ** (31 + right))  # output units per unit of the common scale
    slopes, error, c = [], Fraction(0), Fraction(int(p.output_offset)) + Fraction(1, 2)
    for offset, multiplier, shift, sign in ((p.input1_offset, p.input1_multiplier, p.input1_shift, 1),
                                            (p.input2_offset, p.input2_multiplier, p.input2_shift,
                                             -1 if subtract else 1)):
        slope = Fraction(int(multiplier) << int(p.left_shift), 2 ** (31 - int(shift))) * scale
        exact = ref.on_common_scale(values, offset, p.left_shift, multiplier, shift)
        error += max(abs(int(e) * scale - int(x) * slope) for e, x in zip(exact, values + offset))
        slopes.append(sign * slope)
        c += sign * slope * (int(offset) + int(values[0]))
    constants = np.zeros(6, np.float32)
    for k, v in ((CHECK_A, slopes[0]), (CHECK_B, slopes[1]), (CHECK_C, c)):
        constants[k] = np.float32(float(v))
        error += (255 if k != CHECK_C else 1) * abs(v - Fraction(float(constants[k])))
    a_, b_, c_ = (abs(Fraction(float(constants[k]))) for k in (CHECK_A, CHECK_B, CHECK_C))
    inner, outer = 255 * b_ + c_, 255 * (a_ + b_) + c_  # the largest u2 * B + C, and y
    error += Fraction(1, 2**24) * (255 * a_ + 255 * b_ + inner + outer) * Fraction(2**20 + 1, 2**20)
    if right > 0:
        error += Fraction(1, 2 ** (right + 1))
    # At least 2**-20: the kernel's 1 - eps, rounded to float32 (by up to 2**-25), still at least error below 1.
    eps = max(np.float32(float(error * Fraction(17, 16))), np.float32(2**-20))
    if not eps < np.float32(2**-9):
        return None
    constants[CHECK_EPS] = eps
    constants[CHECK_LO], constants[CHECK_HI] = p.act_min, p.act_max
    # The share of the 65536 input pairs near a boundary (float32 without fused multiply-adds: an estimate).
    u = np.arange(256, dtype=np.float32)
    y = u[:, None] * constants[CHECK_A] + (u[None, :] * constants[CHECK_B] + constants[CHECK_C])
    near = np.mean(np.abs(y - np.round(y)) < eps)
    if 1 - (1 - near) ** CHECKED_BLOCK > 0.25:  # a quarter of the blocks looked up: no faster than the table
        return None
    return constants


def quantized_binary_run(ctx: OpContext, spec: Callable[[np.ndarray, np.ndarray, np.ndarray], None],
                         a: TensorSpec, b: TensorSpec, o: TensorSpec, out_shape: tuple[int, ...],
                         check: Callable[[np.ndarray], None] | None = None) -> Run:
    """The ``run`` of an 8-bit two-input operator given its reference ``spec(x1, x2, out)``.

    The numba backend tabulates the spec on all 256 x 256 input pairs at plan time and
    gathers with broadcasting (when the broadcast fits the kernel's six dimensions);
    otherwise the reference runs. ``check(input 1)``, if given, runs first on every call.
    """
    fast = None
    if ctx.backend == "numba":
        fast = _binary_lookup_run(binary_table(spec, a.dtype, o.dtype), a.shape, b.shape, out_shape)

    def run(inputs: Sequence[np.ndarray | None], outputs: Sequence[np.ndarray]) -> None:
        if check is not None:
            check(inputs[1])
        if fast is not None:
            fast(inputs, outputs)
        else:
            spec(inputs[0], inputs[1], outputs[0])

    return fast if fast is not None and check is None else run


_FLOAT_FNS = {BuiltinOperator.ADD: ref.add, BuiltinOperator.SUB: ref.sub, BuiltinOperator.MUL: ref.mul}
_QUANTIZED_FNS = {
    BuiltinOperator.ADD: ref.add_quantized,
    BuiltinOperator.SUB: ref.sub_quantized,
    BuiltinOperator.MUL: ref.mul_quantized,
}
_DEFAULT_OPTIONS = {BuiltinOperator.ADD: AddOptions, BuiltinOperator.SUB: SubOptions, BuiltinOperator.MUL: MulOptions}


def _quantized_params(ctx: OpContext, a: TensorSpec, b: TensorSpec, o: TensorSpec, activation):
    """ArithmeticParams (ADD/SUB) or MulParams (MUL) from the tensors' float32 scales."""
    s1, z1 = quantization_of(ctx, a, "input 0")
    s2, z2 = quantization_of(ctx, b, "input 1")
    so, zo = quantization_of(ctx, o, "output 0")
    info = np.iinfo(o.dtype)
    for z, what in ((z1, "input 0"), (z2, "input 1"), (zo, "output 0")):
        if not info.min <= z <= info.max:
            raise ctx.error(f"{what} zero point {z} is outside the {o.type.name} range")
    try:
        act_min, act_max = activation_range_quantized(activation, so, zo, o.dtype)
    except ValueError as exc:
        raise ctx.error(str(exc)) from None
    if ctx.opcode == BuiltinOperator.MUL:
        # mul.cc multiplies and divides the float scales in float32 before widening.
        real = float(np.float32(s1) * np.float32(s2) / np.float32(so))
        try:
            m, s = quantize_multiplier(real)
        except ValueError as exc:
            raise ctx.error(str(exc)) from None
        return ref.MulParams(-z1, -z2, zo, m, s, act_min, act_max)
    try:
        p = add_params(s1, s2, so, left_shift=20)
    except ValueError:
        # TFLite's ADD fails its check here; its SUB goes on with a multiplier > 1 whose
        # reference arithmetic shifts by a negative amount (undefined): refuse both.
        raise ctx.error(f"output scale {so} is too small for input scales {s1}, {s2}: the output "
                        "rescaling multiplier is not below 1") from None
    return ref.ArithmeticParams(p.left_shift, -z1, p.input1_multiplier, p.input1_shift, -z2,
                                p.input2_multiplier, p.input2_shift, zo, p.output_multiplier,
                                p.output_shift, act_min, act_max)


def _float_kernel_run(ctx: OpContext, a_shape, b_shape, out_shape, act_min: float, act_max: float) -> Run | None:
    """The numba backend's ``run`` of a float ADD / SUB / MUL whose broadcast ``rows_layout``
    takes (ADD and MUL swap their operands when the first is the smaller), else None."""
    if ctx.backend != "numba":
        return None
    swap = False
    layout = rows_layout(a_shape, b_shape, out_shape)
    if layout is None and ctx.opcode != BuiltinOperator.SUB:
        layout, swap = rows_layout(b_shape, a_shape, out_shape), True
    if layout is None:
        return None
    from ..kernels import elementwise as kern
    from ..kernels.parallel import ELEMENT_WORK, in_parallel, replayable, numba_threads

    op = {BuiltinOperator.ADD: kern.ADD, BuiltinOperator.SUB: kern.SUB, BuiltinOperator.MUL: kern.MUL}[ctx.opcode]
    (sa, row), (first, second) = layout, (1, 0) if swap else (0, 1)
    sa, k = wide_rows(sa, row)
    b_of = repeat_row(row, k)
    lo, hi = np.float32(act_min), np.float32(act_max)
    kernel, work = in_parallel(kern.elementwise_float), math.prod(out_shape) * ELEMENT_WORK

    @replayable
    def run(inputs, outputs):
        kernel(inputs[first].reshape(sa), b_of(inputs[second]), _view(outputs[0], sa), op, lo, hi,
               nt=numba_threads(work))

    return run


def fused_multiply_add(ctx: OpContext, a_shape, s_shape, y_shape) -> Run | None:
    """The numba backend's run of a float ADD (``ctx``) one of whose inputs is a MUL of ``a`` and ``s``
    read by it alone (``pydeeplab.fusion``): inputs (a, s, the ADD's other input), output the ADD's,
    in one pass (``kernels/elementwise.multiply_add_float``); None where ``a`` or the other input is not
    the output's size or ``s`` does not broadcast as one row or one value."""
    out_shape = ctx.outputs[0].shape
    layout = rows_layout(a_shape, s_shape, out_shape)
    if (layout is None or math.prod(a_shape) != math.prod(out_shape) or math.prod(y_shape) != math.prod(out_shape)
            or not all(t.type == TensorType.FLOAT32 for t in (*ctx.inputs, ctx.outputs[0]))):
        return None
    from ..kernels import elementwise as kern
    from ..kernels.parallel import ELEMENT_WORK, in_parallel, replayable, numba_threads

    sa, row = layout
    sa, k = wide_rows(sa, row)
    s_of = repeat_row(row, k)
    activation = ctx.options_as(AddOptions).fused_activation_function
    lo, hi = (np.float32(v) for v in activation_range_float(activation))
    kernel, work = in_parallel(kern.multiply_add_float), math.prod(out_shape) * ELEMENT_WORK

    @replayable
    def run(inputs, outputs):
        kernel(inputs[0].reshape(sa), s_of(inputs[1]), inputs[2].reshape(sa), _view(outputs[0], sa), lo, hi,
               nt=numba_threads(work))

    return run


@register(BuiltinOperator.ADD, BuiltinOperator.SUB, BuiltinOperator.MUL)
def prepare_arithmetic(ctx: OpContext) -> Prepared:
    """ADD / SUB / MUL of two tensors of the same type, broadcast against each other."""
    ctx.expect_io(2)
    a, b = ctx.inputs
    o = ctx.outputs[0]
    options = ctx.options_as(_DEFAULT_OPTIONS[ctx.opcode])
    activation = options.fused_activation_function
    if a.type != b.type:
        raise ctx.error(f"input types differ: {a.type.name} and {b.type.name}")
    if o.type != a.type:
        raise ctx.error(f"output type {o.type.name} differs from the input type {a.type.name}")
    try:
        out_shape = tuple(int(d) for d in np.broadcast_shapes(a.shape, b.shape))
    except ValueError:
        raise ctx.error(f"input shapes {a.shape} and {b.shape} do not broadcast") from None

    if a.type == TensorType.FLOAT32:
        act_min, act_max = activation_range_float(activation)
        fast = _float_kernel_run(ctx, a.shape, b.shape, out_shape, act_min, act_max)
        if fast is not None:
            return Prepared((out_shape,), fast)
        fn = _FLOAT_FNS[ctx.opcode]

        def run(inputs, outputs):
            fn(inputs[0], inputs[1], act_min, act_max, outputs[0])

        return Prepared((out_shape,), run)

    if a.type not in EIGHT_BIT:
        raise ctx.error(f"{a.type.name} tensors are not supported (float32, uint8 and int8 are)")
    params = _quantized_params(ctx, a, b, o, activation)
    fn = _QUANTIZED_FNS[ctx.opcode]
    spec = lambda x1, x2, out: fn(x1, x2, params, out)  # noqa: E731
    fast = _checked_add_run(ctx, spec, params, a, b, o, out_shape)
    return Prepared((out_shape,), fast or quantized_binary_run(ctx, spec, a, b, o, out_shape))


def _checked_add_run(ctx: OpContext, spec, params, a: TensorSpec, b: TensorSpec, o: TensorSpec,
                     out_shape) -> Run | None:
    """The numba backend's run of an 8-bit ADD or SUB of two operands the output's size in float32 with
    its check (``kernels/elementwise.add_sub_checked``), or None (another backend, a broadcast, or
    constants float32 cannot follow: :func:`checked_add_constants`)."""
    n = math.prod(out_shape)
    if (ctx.backend != "numba" or ctx.opcode not in (BuiltinOperator.ADD, BuiltinOperator.SUB)
            or math.prod(a.shape) != n or math.prod(b.shape) != n):
        return None
    constants = checked_add_constants(params, a.dtype, ctx.opcode == BuiltinOperator.SUB)
    if constants is None:
        return None
    from ..kernels.elementwise import add_sub_checked
    from ..kernels.parallel import ELEMENT_WORK, in_parallel, numba_threads, replayable

    table, flip = binary_table(spec, a.dtype, o.dtype).view(np.uint8), np.uint8(0x80 if a.dtype == np.int8 else 0)
    kernel = in_parallel(add_sub_checked)

    @replayable
    def run(inputs: Sequence[np.ndarray | None], outputs: Sequence[np.ndarray]) -> None:
        kernel(inputs[0].view(np.uint8).reshape(-1), inputs[1].view(np.uint8).reshape(-1),
               _view(outputs[0], -1).view(np.uint8), table, constants, flip, nt=numba_threads(n * ELEMENT_WORK))

    return run
