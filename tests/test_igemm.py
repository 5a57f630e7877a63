"""kernels/igemm.py: the integer product of the quantized convolutions, against an int64 product."""

import numpy as np
import pytest

from numba import njit

from pydeeplab.kernels import igemm as module
from pydeeplab.kernels.igemm import LANES, MR, igemm, igemm_numpy, pack_weights


def _wrapped(product: np.ndarray) -> np.ndarray:
    """int64 values wrapped to int32, as TFLite's accumulator wraps."""
    return ((product + 2**31) % 2**32 - 2**31).astype(np.int32)


def _quads_case(m, k, n, seed):
    rng = np.random.default_rng(seed)
    rows = -(-m // MR) * MR
    a = rng.integers(0, 256, (rows, -(-k // 4) * 4)).astype(np.uint8)
    w = rng.integers(-128, 128, (k, n))
    return a, w


@pytest.mark.parametrize("multiply", [igemm, igemm_numpy], ids=["numba", "numpy"])
@pytest.mark.parametrize(("m", "k", "n"), [(1, 1, 1), (7, 3, 5), (8, 16, 16), (13, 27, 21), (24, 96, 48),
                                           (37, 162, 40), (64, 255, 33), (9, 4, 80)])
def test_matches_an_int64_product(multiply, m, k, n):
    """uint8 inputs x int8 filters, four per step, from each row's own start: every tile shape (1
    and 2 blocks, a partial last block, a depth not a multiple of 4) gives the exact sums,
    whatever lies in a row's columns past K (the packed filter is zero there)."""
    a, w = _quads_case(m, k, n, m * 1000 + k * 10 + n)
    init = np.random.default_rng(m).integers(-(2**31), 2**31, a.shape[0]).astype(np.int32)
    packed = pack_weights(w)
    assert packed.shape == (-(-n // LANES), -(-k // 4), 4 * LANES) and packed.dtype == np.int8
    acc = np.full((a.shape[0], packed.shape[0] * LANES), 12345, np.int32)
    multiply(a, packed, acc, init)
    np.testing.assert_array_equal(acc[:, :n], _wrapped(a[:, :k].astype(np.int64) @ w + init[:, None]))
    assert (acc[:, n:] == init[:, None]).all()  # the padded channels: zero filters


@pytest.mark.parametrize("multiply", [igemm, igemm_numpy], ids=["numba", "numpy"])
def test_sums_wrap_as_int32(multiply):
    """A depth whose sums leave int32 wraps exactly as TFLite's int32 accumulator does."""
    k = 70_000
    a = np.full((MR, k), 255, np.uint8)
    a[1] = 1
    w = np.full((k, LANES), 127, np.int64)
    w[:, 1] = -128
    acc = np.zeros((MR, LANES), np.int32)
    multiply(a, pack_weights(w), acc, np.zeros(MR, np.int32))
    exact = a.astype(np.int64) @ w
    assert np.abs(exact).max() > 2**31
    np.testing.assert_array_equal(acc, _wrapped(exact))


def test_strided_rows():
    """Rows further apart than the depth (a slice of a wider scratch buffer) are read by their stride."""
    rng = np.random.default_rng(0)
    wide = rng.integers(0, 256, (MR * 2, 40)).astype(np.uint8)
    w = rng.integers(-128, 128, (12, 20))
    acc = np.zeros((MR * 2, 32), np.int32)
    igemm(wide[:, :12], pack_weights(w), acc, np.zeros(MR * 2, np.int32))
    np.testing.assert_array_equal(acc[:, :20], wide[:, :12].astype(np.int64) @ w)


def test_quads_without_vnni(monkeypatch):
    """The plain-IR form of the four-product step (CPUs without AVX-512 VNNI) gives the same sums."""
    monkeypatch.setattr(module, "HAVE_VNNI", False)
    tile = module._tile(1)

    @njit
    def multiply(a, wp, acc, init):
        for p in range(0, a.shape[0], MR):
            tile(a[p:].ctypes.data, a.strides[0], wp[0].ctypes.data, wp.strides[0], wp.shape[1],
                 acc[p:].ctypes.data, acc.strides[0] // 4, init[p:].ctypes.data)

    a, w = _quads_case(16, 40, 16, 5)
    init = np.arange(-8, 8, dtype=np.int32) * 1000
    acc = np.zeros((16, LANES), np.int32)
    multiply(a, pack_weights(w), acc, init)
    np.testing.assert_array_equal(acc, a[:, :40].astype(np.int64) @ w + init[:, None])


def test_vnni_follows_the_features_numba_compiles_for(monkeypatch):
    """NUMBA_CPU_FEATURES (a portable cache, another target) decides, not the host: vpdpbusd only
    where the target has it, else instruction selection would fail."""
    from numba.core import config

    monkeypatch.setattr(config, "CPU_FEATURES", "+avx2,+fma,-avx512vnni")
    assert not module._target_has_vnni()
    monkeypatch.setattr(config, "CPU_FEATURES", "+avx2,+avx512f,+avx512vnni")
    assert module._target_has_vnni()
