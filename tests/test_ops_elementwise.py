"""ADD, SUB, MUL against LiteRT's reference kernels, on both backends.

Float within the contract tolerance; uint8 / int8 bit-identical, with broadcasting
shapes, fused activations and varied scales and zero points.
"""

from __future__ import annotations

import numpy as np
import pytest
from oracle import T, check_op, quant, run_ours_op

from pydeeplab.errors import ModelError
from pydeeplab.tflite.options import AddOptions, MulOptions, SubOptions
from pydeeplab.tflite.schema import Activation, BuiltinOperator

OPS = {
    BuiltinOperator.ADD: AddOptions,
    BuiltinOperator.SUB: SubOptions,
    BuiltinOperator.MUL: MulOptions,
}

SHAPES = [
    ((1, 4, 4, 3), (1, 4, 4, 3)),
    ((1, 4, 4, 3), (1, 1, 1, 3)),
    ((1, 1, 1, 3), (1, 4, 4, 3)),
    ((2, 1, 3), (1, 5, 1)),
    ((1, 5, 6, 3), ()),
    ((), (2, 3)),
    ((3,), (2, 4, 3)),
    ((2, 1, 3, 1, 4), (1, 3, 1, 5, 1)),
    ((1, 8, 8, 16), (1, 8, 1, 16)),
    ((2, 1, 2, 1, 3, 1), (1, 2, 1, 3, 1, 2)),  # six alternating broadcast groups
]

ACTIVATIONS = [Activation.NONE, Activation.RELU, Activation.RELU6, Activation.RELU_N1_TO_1]


def _qtensor(rng, shape, dtype, scale, zp):
    info = np.iinfo(dtype)
    return T(rng.integers(info.min, info.max + 1, size=shape).astype(dtype), quant=quant(scale, zp))


@pytest.mark.parametrize("opcode", list(OPS))
@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_float_broadcast(opcode, shapes):
    rng = np.random.default_rng(1)
    a = rng.standard_normal(shapes[0]).astype(np.float32) * 4
    b = rng.standard_normal(shapes[1]).astype(np.float32) * 4
    # A 0-d operand is a constant: the oracle cannot feed a 0-d model input yet.
    check_op(opcode, [T(a, const=a.ndim == 0), T(b, const=b.ndim == 0)], [T(None, np.float32)], OPS[opcode]())


@pytest.mark.parametrize("opcode", list(OPS))
@pytest.mark.parametrize("act", ACTIVATIONS, ids=lambda a: a.name)
def test_float_activation(opcode, act):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((2, 3, 5, 4)).astype(np.float32) * 3
    b = rng.standard_normal((1, 3, 1, 4)).astype(np.float32) * 3
    check_op(opcode, [T(a), T(b, const=True)], [T(None, np.float32)], OPS[opcode](act))


@pytest.mark.parametrize("opcode", list(OPS))
@pytest.mark.parametrize("dtype", [np.uint8, np.int8], ids=["uint8", "int8"])
@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_quantized_broadcast(opcode, dtype, shapes):
    rng = np.random.default_rng(3)
    info = np.iinfo(dtype)
    for trial in range(3):
        s1, s2 = rng.uniform(0.005, 0.1, size=2)
        so = rng.uniform(0.01, 0.2) if opcode != BuiltinOperator.MUL else s1 * s2 * rng.uniform(20, 200)
        z1, z2, zo = rng.integers(info.min, info.max + 1, size=3)
        act = ACTIVATIONS[trial % len(ACTIVATIONS)]
        a = _qtensor(rng, shapes[0], dtype, s1, z1)
        b = _qtensor(rng, shapes[1], dtype, s2, z2)
        a.const, b.const = a.value.ndim == 0, b.value.ndim == 0
        check_op(opcode, [a, b], [T(None, dtype, quant=quant(so, zo))], OPS[opcode](act))


@pytest.mark.parametrize("opcode", list(OPS))
@pytest.mark.parametrize("dtype", [np.uint8, np.int8], ids=["uint8", "int8"])
@pytest.mark.parametrize("act", ACTIVATIONS, ids=lambda a: a.name)
def test_quantized_every_input_pair(opcode, dtype, act):
    """All 256 x 256 input pairs at once, with scales giving ties and saturation."""
    rng = np.random.default_rng(4)
    values = np.arange(256, dtype=np.uint8).view(dtype)
    a = values.reshape(1, 256, 1)
    b = values.reshape(1, 1, 256)
    info = np.iinfo(dtype)
    for s1, s2, so in [(0.02, 0.02, 0.04), (0.5, 0.003, 0.01), (0.0123, 0.0456, 0.0789)]:
        if opcode == BuiltinOperator.MUL:
            so = s1 * s2 * 64
        z1, z2, zo = (int(z) for z in rng.integers(info.min, info.max + 1, size=3))
        check_op(opcode, [T(a, quant=quant(s1, z1)), T(b, quant=quant(s2, z2))],
                 [T(None, dtype, quant=quant(so, zo))], OPS[opcode](act))


def test_quantized_big_tensor_with_constant():
    """A DeepLab-sized residual ADD (uint8) and a constant broadcast operand (int8 MUL)."""
    rng = np.random.default_rng(5)
    a = _qtensor(rng, (1, 33, 33, 64), np.uint8, 0.05, 120)
    b = _qtensor(rng, (1, 33, 33, 64), np.uint8, 0.07, 131)
    check_op(BuiltinOperator.ADD, [a, b], [T(None, np.uint8, quant=quant(0.09, 125))], AddOptions())
    x = _qtensor(rng, (1, 33, 33, 64), np.int8, 0.05, -3)
    c = _qtensor(rng, (64,), np.int8, 0.01, 2)
    c.const = True
    check_op(BuiltinOperator.MUL, [x, c], [T(None, np.int8, quant=quant(0.004, 7))], MulOptions())


def test_errors():
    x = T(np.zeros((1, 4, 3), np.float32))
    with pytest.raises(ModelError, match="do not broadcast"):
        run_ours_op(BuiltinOperator.ADD, [x, T(np.zeros((1, 5, 3), np.float32))],
                    [T(None, np.float32, (1, 4, 3))], AddOptions(), "numpy")
    with pytest.raises(ModelError, match="types differ"):
        run_ours_op(BuiltinOperator.MUL, [x, T(np.zeros((1, 4, 3), np.int32))],
                    [T(None, np.float32, (1, 4, 3))], MulOptions(), "numpy")
    q = T(np.zeros((2,), np.uint8))
    with pytest.raises(ModelError, match="no quantization"):
        run_ours_op(BuiltinOperator.ADD, [q, q], [T(None, np.uint8, (2,))], AddOptions(), "numpy")


@pytest.mark.parametrize("opcode", list(OPS))
@pytest.mark.parametrize("act", [Activation.NONE, Activation.RELU6], ids=lambda a: a.name)
@pytest.mark.parametrize("shapes", [((1, 6, 5, 8), (1, 6, 5, 8)), ((1, 6, 5, 8), (1, 1, 1, 8)),
                                    ((1, 1, 1, 8), (1, 6, 5, 8)), ((1, 6, 5, 8), (1, 1, 1, 1))],
                         ids=lambda s: f"{s[0]}x{s[1]}")
def test_float_one_pass_kernel_layouts(opcode, act, shapes):
    """The layouts the numba backend's one-pass kernel takes (whole, repeated row, scalar; the
    first operand the smaller: swapped for ADD and MUL, NumPy for SUB), fused clamp included."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal(shapes[0]).astype(np.float32) * 4
    b = rng.standard_normal(shapes[1]).astype(np.float32) * 4
    check_op(opcode, [T(a), T(b, const=True)], [T(None, np.float32)], OPS[opcode](act))


def test_rows_layout():
    from pydeeplab.ops.elementwise import image_rows, rows_layout

    out = (1, 4, 5, 8)
    assert rows_layout(out, out, out) == ((4, 40), (4, 40))  # the image's rows: the kernel splits by row
    assert rows_layout(out, (1, 1, 1, 8), out) == ((20, 8), (1, 8))
    assert rows_layout(out, (5, 8), out) == ((4, 40), (1, 40))
    assert rows_layout(out, (), out) == ((4, 40), (1, 1))
    assert image_rows((2, 3, 5, 8)) == (6, 40)
    assert image_rows((1, 1, 7, 8)) == (7, 8)  # one image row: each pixel a row
    assert image_rows((1, 1, 1, 8)) == (1, 8)
    assert image_rows((6,)) == (1, 6)
    assert rows_layout(out, (1, 4, 1, 8), out) is None  # a broadcast in the middle: NumPy
    assert rows_layout((1, 1, 1, 8), out, out) is None  # a must cover the output
    assert rows_layout((0, 3), (0, 3), (0, 3)) is None


def test_wide_rows():
    """A short row repeated is laid out k rows side by side (its copies k times), k dividing the rows."""
    from pydeeplab.ops.elementwise import WIDE_ROW, repeat_row, wide_rows

    assert wide_rows((16384, 16), (1, 16)) == ((1024, WIDE_ROW), 16)
    assert wide_rows((63, 16), (1, 16)) == ((7, 144), 9)  # 9: the largest divisor of 63 up to 16
    assert wide_rows((17, 16), (1, 16)) == ((17, 16), 1)  # a prime number of rows: as given
    assert wide_rows((100, 1), (1, 1)) == ((1, 100), 100)  # one value a row
    assert wide_rows((4, 40), (4, 40)) == ((4, 40), 1)  # no repeat
    assert wide_rows((4, 40), (1, 1)) == ((4, 40), 1)  # one value for all: the kernel's scalar
    assert wide_rows((20, 200), (1, 200)) == ((20, 200), 1)  # long enough
    row = np.arange(16, dtype=np.float32).reshape(1, 1, 1, 16)
    np.testing.assert_array_equal(repeat_row((1, 16), 9)(row), np.tile(row.reshape(1, 16), (1, 9)))
    assert repeat_row((4, 40), 1)(np.zeros((1, 4, 40), np.float32)).shape == (4, 40)


def test_byte_table_lookup_every_length_and_part():
    """8-bit -> 8-bit lookups (requantize, activations) through the run ops use, against
    ``table[x]``: lengths around the 64-value steps of the VBMI kernel (its last values masked:
    nothing past the output written), int8 and uint8 tables, 1 to 3 parts; where the CPU has
    VBMI the run is that kernel's, else the scalar gather's."""
    from pydeeplab.kernels import elementwise as kern
    from pydeeplab.kernels.parallel import in_parallel
    from pydeeplab.ops.elementwise import unary_lookup_run

    rng = np.random.default_rng(4)
    for dtype in (np.int8, np.uint8):
        info = np.iinfo(dtype)
        table = rng.integers(info.min, info.max + 1, 256).astype(dtype)
        run = unary_lookup_run(table)
        for n in (1, 2, 63, 64, 65, 127, 128, 129, 191, 1000, 4099):
            x = rng.integers(info.min, info.max + 1, n).astype(dtype)
            out = np.full(n + 64, 77, dtype)
            run([x], [out[:n]])
            np.testing.assert_array_equal(out[:n], table[x.view(np.uint8)], err_msg=f"{dtype.__name__} n={n}")
            assert (out[n:] == 77).all()
            if kern.HAVE_VBMI:
                for nt in (1, 2, 3):
                    out[:] = 77
                    in_parallel(kern.lookup_bytes)(table, x.view(np.uint8), out[:n], nt=nt)
                    np.testing.assert_array_equal(out[:n], table[x.view(np.uint8)], err_msg=f"n={n}, {nt} parts")
                    assert (out[n:] == 77).all()


def _add_params(rng, dtype, scales, act_range=None):
    from pydeeplab.quantization import add_params
    from pydeeplab.reference.elementwise import ArithmeticParams

    info = np.iinfo(dtype)
    z1, z2, zo = (int(z) for z in rng.integers(info.min, info.max + 1, size=3))
    lo, hi = act_range or (info.min, info.max)
    p = add_params(*scales, left_shift=20)
    return ArithmeticParams(p.left_shift, -z1, p.input1_multiplier, p.input1_shift, -z2, p.input2_multiplier,
                            p.input2_shift, zo, p.output_multiplier, p.output_shift, lo, hi)


@pytest.mark.parametrize("opcode", [BuiltinOperator.ADD, BuiltinOperator.SUB])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8], ids=["uint8", "int8"])
def test_checked_float_add_is_the_table_on_every_input_pair(opcode, dtype):
    """``add_sub_checked`` (8-bit ADD / SUB in float32, blocks near a rounding boundary looked up) gives
    TFLite's byte on all 65536 input pairs, for random scales, zero points and clamps. And its float32
    path alone is right: with the pairs its check would look up (found here in NumPy, with a margin)
    put last and a table of zeros, every block before them holds TFLite's bytes, so none of them was
    looked up and each is the float32 path's."""
    from pydeeplab.kernels.elementwise import CHECK_A, CHECK_B, CHECK_C, CHECK_EPS, CHECKED_BLOCK, add_sub_checked
    from pydeeplab.ops.elementwise import binary_table, checked_add_constants
    from pydeeplab.reference import elementwise as ref

    rng = np.random.default_rng(11)
    fn = ref.add_quantized if opcode == BuiltinOperator.ADD else ref.sub_quantized
    info, flip = np.iinfo(dtype), np.uint8(0x80 if dtype == np.int8 else 0)
    a, b = np.repeat(np.arange(256, dtype=np.uint8), 256), np.tile(np.arange(256, dtype=np.uint8), 256)
    used = 0
    for trial in range(40):
        s1, s2, so = rng.uniform(0.002, 0.2), rng.uniform(0.002, 0.2), rng.uniform(0.01, 0.4)
        act = tuple(sorted(int(v) for v in rng.integers(info.min, info.max + 1, 2))) if trial % 3 == 0 else None
        try:
            p = _add_params(rng, dtype, (s1, s2, so), act)
        except ValueError:  # the output scale too small for ADD
            continue
        table = binary_table(lambda x1, x2, out: fn(x1, x2, p, out), dtype, dtype).view(np.uint8)
        k = checked_add_constants(p, dtype, opcode == BuiltinOperator.SUB)
        if k is None:
            continue
        used += 1
        out = np.zeros(65536, np.uint8)
        add_sub_checked(a, b, out, table, k, flip, 0, 1)
        np.testing.assert_array_equal(out, table.reshape(-1), err_msg=f"{p}")
        u = (np.arange(256, dtype=np.uint8) ^ flip).astype(np.float32)  # the kernel's u of each byte
        y = (u[:, None] * k[CHECK_A] + (u[None, :] * k[CHECK_B] + k[CHECK_C])).reshape(-1)
        near = np.abs(y - np.round(y)) < 2 * k[CHECK_EPS] + 1e-5
        order = np.argsort(near, kind="stable")
        out[:] = 0
        add_sub_checked(a[order], b[order], out, np.zeros((256, 256), np.uint8), k, flip, 0, 1)
        clear = (int((~near).sum()) // CHECKED_BLOCK) * CHECKED_BLOCK
        assert clear > 60000
        np.testing.assert_array_equal(out[:clear], table.reshape(-1)[order][:clear], err_msg=f"{p}")
    assert used >= 30


def test_checked_float_add_leaves_ties_to_the_table():
    """Where many pairs fall on a rounding tie (equal scales, an output scale twice theirs: half of
    the sums end in .5) float32 cannot decide them: no constants, the table lookup runs."""
    from pydeeplab.ops.elementwise import checked_add_constants

    p = _add_params(np.random.default_rng(12), np.uint8, (0.05, 0.05, 0.1))
    assert checked_add_constants(p, np.uint8, False) is None
    p = _add_params(np.random.default_rng(12), np.uint8, (0.05, 0.07, 0.09))
    assert checked_add_constants(p, np.uint8, False) is not None


@pytest.mark.parametrize("opcode", [BuiltinOperator.ADD, BuiltinOperator.SUB])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8], ids=["uint8", "int8"])
def test_quantized_same_shape_every_input_pair(opcode, dtype):
    """Two same-shape 8-bit operands holding all 256 x 256 input pairs, against LiteRT: scales as a
    calibration gives them (the numba backend's float32 ADD / SUB with its check), and decimal ones,
    whose sums fall on exact rounding ties in one pair of 52 or more (the table lookup)."""
    from pydeeplab.ops.elementwise import checked_add_constants

    rng = np.random.default_rng(13)
    values = np.arange(256, dtype=np.uint8).view(dtype)
    a = np.repeat(values, 256).reshape(1, 64, 64, 16)
    b = np.tile(values, 256).reshape(1, 64, 64, 16)
    info = np.iinfo(dtype)
    for s1, s2, so, act, checked in [(0.0123, 0.0456, 0.0789, Activation.RELU, True),
                                     (0.0311234, 0.0473351, 0.0529771, Activation.NONE, True),
                                     (0.0501377, 0.0029914, 0.0613052, Activation.RELU6, True),
                                     (0.02, 0.02, 0.04, Activation.NONE, False),
                                     (0.031, 0.047, 0.052, Activation.NONE, False)]:
        z1, z2, zo = (int(z) for z in rng.integers(info.min, info.max + 1, size=3))
        p = _add_params(np.random.default_rng(0), dtype, (s1, s2, so))._replace(
            input1_offset=-z1, input2_offset=-z2, output_offset=zo)
        assert (checked_add_constants(p, dtype, opcode == BuiltinOperator.SUB) is not None) == checked
        check_op(opcode, [T(a, quant=quant(s1, z1)), T(b, quant=quant(s2, z2))],
                 [T(None, dtype, quant=quant(so, zo))], OPS[opcode](act))


def test_checked_float_add_in_parts():
    """``add_sub_checked`` split into 1 to 3 parts (each its own blocks, the last one short) gives
    the table's bytes, and writes nothing past the output."""
    from pydeeplab.kernels.elementwise import add_sub_checked
    from pydeeplab.kernels.parallel import in_parallel
    from pydeeplab.ops.elementwise import binary_table, checked_add_constants
    from pydeeplab.reference import elementwise as ref

    rng = np.random.default_rng(14)
    p = _add_params(rng, np.int8, (0.0311234, 0.0473351, 0.0529771))
    k = checked_add_constants(p, np.int8, False)
    assert k is not None
    table = binary_table(lambda x1, x2, out: ref.add_quantized(x1, x2, p, out), np.int8, np.int8).view(np.uint8)
    for n in (1, 5, 127, 128, 129, 1000, 4099):
        a, b = (rng.integers(0, 256, n).astype(np.uint8) for _ in range(2))
        for nt in (1, 2, 3):
            out = np.full(n + 16, 77, np.uint8)
            in_parallel(add_sub_checked)(a, b, out[:n], table, k, np.uint8(0x80), nt=nt)
            np.testing.assert_array_equal(out[:n], table[a, b], err_msg=f"n={n}, {nt} parts")
            assert (out[n:] == 77).all()
