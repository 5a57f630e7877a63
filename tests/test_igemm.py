"""kernels/igemm.py: the integer product of the quantized convolutions and its output stage, against
an int64 product and the reference fixed-point functions."""

import numpy as np
import pytest

from numba import njit

from pydeeplab.kernels import igemm as module
from pydeeplab.kernels.igemm import LANES, MR, igemm, igemm_numpy, pack_weights
from pydeeplab.kernels.requantize import pack_stage, requant_table
from pydeeplab.reference.fixedpoint import multiply_by_quantized_multiplier


def _wrapped(product: np.ndarray) -> np.ndarray:
    """int64 values wrapped to int32, as TFLite's accumulator wraps."""
    return (product + 2**31) % 2**32 - 2**31


def _stage(bias, multiplier, shift):
    """The output stage's constants (pack_stage) for per-channel ``bias``, ``multiplier`` and ``shift``
    (TFLite's signed shift), zero-padded to whole blocks of 16 channels as the conv plan pads them,
    64-byte aligned."""
    channels = len(bias)
    width = -(-channels // LANES) * LANES
    table = np.zeros((6, width), np.int64)
    table[:, :channels] = requant_table(multiplier, np.maximum(shift, 0), np.maximum(-shift, 0))
    padded = np.zeros(width, np.int64)
    padded[:channels] = bias
    packed = pack_stage(padded, table)
    raw = np.empty(packed.nbytes + 64, np.uint8)
    start = -raw.ctypes.data % 64
    aligned = raw[start : start + packed.nbytes].view(np.int64).reshape(packed.shape)
    aligned[...] = packed
    return aligned


def _expected(totals, bias, multiplier, shift, zp, lo, hi):
    """The reference output stage of int64 ``totals`` [M, C] (before the bias)."""
    wrapped = _wrapped(totals + bias)
    return np.clip(multiply_by_quantized_multiplier(wrapped, multiplier.astype(np.int32), shift.astype(np.int32))
                   + zp, lo, hi)


def _quads_case(m, k, n, seed):
    rng = np.random.default_rng(seed)
    rows = -(-m // MR) * MR
    a = rng.integers(0, 256, (rows, -(-k // 4) * 4)).astype(np.uint8)
    w = rng.integers(-128, 128, (k, n))
    init = rng.integers(-(2**31), 2**31, rows).astype(np.int32)
    return a, w, init


def _run(multiply, a, w, init, bias, multiplier, shift, zp, lo, hi, dtype, m):
    """``multiply`` on the case, its output [m, N] written into a buffer whose bytes past it must
    stay as they were (the last block's channels and the last tile's rows past the output)."""
    n = w.shape[1]
    guarded = np.full((m + 1, n + 5), 42, dtype)  # the output is [:m, :n]
    multiply(a, pack_weights(w), init, _stage(np.broadcast_to(bias, n), multiplier, shift), zp, lo, hi,
             guarded[:m, :n])
    assert (guarded[m] == 42).all() and (guarded[:, n:] == 42).all()
    return guarded[:m, :n]


@pytest.mark.parametrize("multiply", [igemm, igemm_numpy], ids=["numba", "numpy"])
@pytest.mark.parametrize(("m", "k", "n"), [(1, 1, 1), (7, 3, 5), (8, 16, 16), (13, 27, 21), (24, 96, 48),
                                           (37, 162, 40), (64, 255, 33), (9, 4, 80)])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_matches_an_int64_product_through_the_output_stage(multiply, m, k, n, dtype):
    """uint8 inputs x int8 filters, four per step, from each row's own start, then TFLite's output
    stage per channel: every tile shape (1 and 2 blocks, a partial last block, a depth not a
    multiple of 4, a last tile of fewer rows) gives the reference's outputs, whatever lies in a
    row's columns past K (the packed filter is zero there), and writes nothing past the output.
    The start and the scale put most outputs inside the 8-bit range, not on its bounds."""
    a, w, init = _quads_case(m, k, n, m * 1000 + k * 10 + n)
    rng = np.random.default_rng(m + k + n)
    init = rng.integers(-3000, 3000, init.shape).astype(np.int32)
    packed = pack_weights(w)
    assert packed.shape == (-(-n // LANES), -(-k // 4), 4 * LANES) and packed.dtype == np.int8
    exact = a[:m, :k].astype(np.int64) @ w + init[:m, None]
    multiplier = rng.integers(2**30, 2**31, n)
    spread = max(1.0, float(np.abs(exact).max()))
    shift = np.full(n, -int(np.ceil(np.log2(spread / 100))))  # |outputs| up to about 100
    bias = rng.integers(-500, 500, n)
    info = np.iinfo(dtype)
    zp = 128 if dtype == np.uint8 else 0
    ours = _run(multiply, a, w, init, bias, multiplier, shift, zp, info.min, info.max, dtype, m)
    expected = _expected(exact, bias, multiplier, shift, zp, info.min, info.max)
    np.testing.assert_array_equal(ours.astype(np.int64), expected)
    inside = (expected > info.min) & (expected < info.max)
    assert inside.mean() > 0.5


@pytest.mark.parametrize("multiply", [igemm, igemm_numpy], ids=["numba", "numpy"])
def test_the_output_stage_at_every_shift_and_edge(multiply):
    """The output stage on chosen int32 sums (a zero filter: each row's sums are its start): ties,
    negatives, both ends of the int32 range, sums with the bias that wrap, every shift TFLite can
    produce (left shifts too), extreme multipliers; observed through the output's low 8 bits
    (no clamp) and through 8-bit bounds with a zero point."""
    rng = np.random.default_rng(11)
    edges = [-(2**31), -(2**31) + 1, -(2**30), -3, -2, -1, 0, 1, 2, 3, 2**30, 2**31 - 1]
    totals = np.concatenate([edges, rng.integers(-(2**31), 2**31, 600), rng.integers(-4096, 4096, 400)])
    shift, multiplier = np.meshgrid(np.arange(-31, 31), [0, 1, 2**30, 1518500250, 2**31 - 1], indexing="ij")
    shift, multiplier = shift.ravel(), multiplier.ravel()
    n = shift.size  # 310: 19 whole blocks and one of 6 channels
    m = totals.size  # not a multiple of MR: a last tile of fewer rows
    a = np.zeros((-(-m // MR) * MR, 4), np.uint8)
    init = np.zeros(a.shape[0], np.int32)
    init[:m] = totals
    w = np.zeros((4, n), np.int64)
    bias = rng.integers(-(2**31), 2**31, n)
    for dtype, zp, lo, hi in ((np.uint8, 0, -(2**31), 2**31 - 1), (np.uint8, 77, 0, 255), (np.int8, -9, -128, 127),
                              (np.int8, 3, -20, 90)):
        ours = _run(multiply, a, w, init, bias, multiplier, shift, zp, lo, hi, dtype, m)
        expected = _expected(totals[:, None].astype(np.int64), bias, multiplier, shift, zp, lo, hi)
        np.testing.assert_array_equal(ours, expected.astype(dtype), err_msg=f"{np.dtype(dtype)} zp {zp}")


@pytest.mark.parametrize("multiply", [igemm, igemm_numpy], ids=["numba", "numpy"])
def test_sums_wrap_as_int32(multiply):
    """A depth whose sums leave int32 wraps exactly as TFLite's int32 accumulator does."""
    k = 70_000
    a = np.full((MR, k), 255, np.uint8)
    a[1] = 1
    w = np.full((k, LANES), 127, np.int64)
    w[:, 1] = -128
    exact = a.astype(np.int64) @ w
    assert np.abs(exact).max() > 2**31
    multiplier, shift = np.full(LANES, 2**30), np.full(LANES, 0)
    ours = _run(multiply, a, w, np.zeros(MR, np.int32), np.zeros(LANES, np.int64), multiplier, shift, 0,
                -(2**31), 2**31 - 1, np.uint8, MR)
    np.testing.assert_array_equal(ours, _expected(exact, 0, multiplier, shift, 0, -(2**31), 2**31 - 1).astype(np.uint8))


def test_strided_rows():
    """Rows further apart than the depth (a slice of a wider scratch buffer) are read by their stride."""
    rng = np.random.default_rng(0)
    wide = rng.integers(0, 256, (MR * 2, 40)).astype(np.uint8)
    w = rng.integers(-128, 128, (12, 20))
    multiplier, shift = np.full(20, 2**30), np.full(20, -8)
    ours = _run(igemm, wide[:, :12], w, np.zeros(MR * 2, np.int32), np.zeros(20, np.int64), multiplier, shift, 128,
                0, 255, np.uint8, MR * 2)
    expected = _expected(wide[:, :12].astype(np.int64) @ w, 0, multiplier, shift, 128, 0, 255)
    np.testing.assert_array_equal(ours, expected)


def test_constants_at_any_address():
    """The output stage's constants need not be 64-byte aligned (the tiles load them unaligned)."""
    a, w, init = _quads_case(16, 20, 24, 3)
    multiplier, shift, bias = np.full(24, 1518500250), np.full(24, -12), np.arange(24) * 100
    aligned = _stage(bias, multiplier, shift)
    raw = np.empty(aligned.nbytes + 128, np.uint8)
    start = -raw.ctypes.data % 64 + 8  # 8 bytes past a 64-byte boundary
    shifted = raw[start : start + aligned.nbytes].view(np.int64).reshape(aligned.shape)
    assert shifted.ctypes.data % 64 == 8
    shifted[...] = aligned
    outs = [np.zeros((16, 24), np.int8) for _ in range(2)]
    for stage, out in zip((aligned, shifted), outs):
        igemm(a, pack_weights(w), init, stage, 0, -128, 127, out)
    np.testing.assert_array_equal(outs[0], outs[1])
    expected = _expected(a[:, :20].astype(np.int64) @ w + init[:, None], bias, multiplier, shift, 0, -128, 127)
    np.testing.assert_array_equal(outs[1], expected)


def test_quads_without_vnni(monkeypatch):
    """The plain-IR form of the four-product step (CPUs without AVX-512 VNNI) gives the same outputs."""
    monkeypatch.setattr(module, "HAVE_VNNI", False)
    tile = module._tile_requantized(1)

    @njit
    def multiply(a, wp, init, stage, zp, lo, hi, out):
        for p in range(0, a.shape[0], MR):
            tile(a[p:].ctypes.data, a.strides[0], wp[0].ctypes.data, wp.strides[0], wp.shape[1],
                 out[p:].ctypes.data, out.strides[0], init[p:].ctypes.data, stage.ctypes.data, MR, LANES, zp, lo, hi)

    a, w, init = _quads_case(16, 40, 16, 5)
    init = np.arange(-8, 8, dtype=np.int32) * 1000
    multiplier, shift = np.full(16, 1518500250), np.full(16, -10)
    ours = _run(multiply, a, w, init, np.arange(16), multiplier, shift, 0, -128, 127, np.int8, 16)
    expected = _expected(a[:, :40].astype(np.int64) @ w + init[:, None], np.arange(16), multiplier, shift, 0, -128, 127)
    np.testing.assert_array_equal(ours, expected)
    assert len(np.unique(ours)) > 20


def test_vnni_follows_the_features_numba_compiles_for(monkeypatch):
    """NUMBA_CPU_FEATURES (a portable cache, another target) decides, not the host: vpdpbusd only
    where the target has it, else instruction selection would fail."""
    from numba.core import config

    monkeypatch.setattr(config, "CPU_FEATURES", "+avx2,+fma,-avx512vnni")
    assert not module._target_has_vnni()
    monkeypatch.setattr(config, "CPU_FEATURES", "+avx2,+avx512f,+avx512vnni")
    assert module._target_has_vnni()
