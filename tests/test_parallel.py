"""kernels/parallel.py: a chunk kernel run on Numba's threads through the launcher."""

import subprocess
import sys

import numpy as np
import pytest
from numba import njit, typeof

from pydeeplab.kernels.parallel import _Compiled, _launch, in_parallel


@njit(nogil=True)
def _mark(out, value, t, nt):
    """out[i] += value + t for the i of part t of nt."""
    for i in range(out.shape[0] * t // nt, out.shape[0] * (t + 1) // nt):
        out[i] += value + t


def test_every_part_runs_once_with_its_index():
    run = in_parallel(_mark)
    for nt in (1, 2, 3, 7):
        out = np.zeros(20)
        run(out, 1.5, nt=nt)
        parts = np.array([next(t for t in range(nt) if i < 20 * (t + 1) // nt) for i in range(20)])
        np.testing.assert_array_equal(out, 1.5 + parts, err_msg=f"nt={nt}")


def test_a_launch_with_arguments_of_other_types_is_refused():
    """The launcher calls a chunk by address: arguments of other types than the chunk was compiled
    for would be read as garbage, so the launcher checks their token first."""
    out = np.zeros(4)
    compiled = _Compiled(_mark, (typeof(out), typeof(1.0)))
    _launch(compiled.address, compiled.token, (out, 1.0), 2)
    np.testing.assert_array_equal(out, [1.0, 1.0, 2.0, 2.0])
    with pytest.raises(TypeError, match="other types"):
        _launch(compiled.address, compiled.token, (out.astype(np.float32), 1.0), 2)
    with pytest.raises(TypeError, match="other types"):
        _launch(compiled.address, compiled.token, (out, 1), 2)


def test_the_token_is_the_same_in_another_process():
    """A cached launcher holds the token as a constant: it must not depend on the process."""
    out = np.zeros(4)
    token = _Compiled(_mark, (typeof(out), typeof(1.0))).token
    code = ("import numpy as np; from numba import typeof, types; from pydeeplab.kernels.parallel import _token; "
            "print(_token(types.Tuple((typeof(np.zeros(4)), typeof(1.0)))))")
    assert int(subprocess.check_output([sys.executable, "-c", code], text=True)) == token


@njit(nogil=True)
def _returns(out, t, nt):
    return out.sum()


def test_a_chunk_that_returns_a_value_is_refused():
    with pytest.raises(TypeError, match="returns nothing"):
        _Compiled(_returns, (typeof(np.zeros(4)),))
