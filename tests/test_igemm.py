"""kernels/igemm.py: the integer product of the quantized convolutions, against an int64 product."""

import numpy as np
import pytest

from pydeeplab.kernels.igemm import LANES, MR, igemm, igemm_numpy, pack_weights


def _wrapped(product: np.ndarray) -> np.ndarray:
    """int64 values wrapped to int32, as TFLite's accumulator wraps."""
    return ((product + 2**31) % 2**32 - 2**31).astype(np.int32)


@pytest.mark.parametrize("multiply", [igemm, igemm_numpy], ids=["numba", "numpy"])
@pytest.mark.parametrize(("m", "k", "n"), [(1, 1, 1), (7, 3, 5), (8, 16, 16), (13, 27, 21), (24, 96, 48),
                                           (37, 160, 40), (64, 255, 33), (9, 2, 80)])
def test_matches_an_int64_product(multiply, m, k, n):
    """Every tile shape (1 and 2 blocks, a partial last block, odd depth) gives the exact sums;
    the column past an odd depth holds garbage that the zero-padded filter cancels."""
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    rows = -(-m // MR) * MR
    a = rng.integers(-255, 256, (rows, k + k % 2)).astype(np.int16)
    w = rng.integers(-255, 256, (k, n))
    packed = pack_weights(w)
    assert packed.shape == (-(-n // LANES), -(-k // 2), 2 * LANES) and packed.dtype == np.int16
    acc = np.full((rows, packed.shape[0] * LANES), 12345, np.int32)
    multiply(a, packed, acc)
    np.testing.assert_array_equal(acc[:, :n], a[:, :k].astype(np.int64) @ w)
    np.testing.assert_array_equal(acc[:, n:], 0)  # the padded channels: zero filters


@pytest.mark.parametrize("multiply", [igemm, igemm_numpy], ids=["numba", "numpy"])
def test_sums_wrap_as_int32(multiply):
    """A depth whose sums leave int32 wraps exactly as TFLite's int32 accumulator does."""
    k = 40_000
    a = np.full((MR, k), 255, np.int16)
    a[1] = -255
    w = np.full((k, LANES), 255, np.int64)
    w[:, 1] = -255
    acc = np.zeros((MR, LANES), np.int32)
    multiply(a, pack_weights(w), acc)
    exact = a.astype(np.int64) @ w
    assert np.abs(exact).max() > 2**31
    np.testing.assert_array_equal(acc, _wrapped(exact))


def test_strided_rows():
    """Rows further apart than the depth (a slice of a wider scratch buffer) are read by their stride."""
    rng = np.random.default_rng(0)
    wide = rng.integers(-255, 256, (MR * 2, 40)).astype(np.int16)
    w = rng.integers(-255, 256, (10, 20))
    acc = np.zeros((MR * 2, 32), np.int32)
    igemm(wide[:, :10], pack_weights(w), acc)
    np.testing.assert_array_equal(acc[:, :20], wide[:, :10].astype(np.int64) @ w)
