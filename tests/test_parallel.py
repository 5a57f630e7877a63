"""kernels/parallel.py: a chunk kernel run on Numba's threads through the launcher."""

import numpy as np
from numba import njit, typeof

from pydeeplab.kernels.parallel import _Compiled, in_parallel


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


def test_the_function_type_is_built_once():
    out = np.zeros(4)
    compiled = _Compiled(_mark, (typeof(out), typeof(1.0), typeof(0), typeof(0)))
    assert typeof(compiled) is typeof(compiled)
    assert str(typeof(compiled)).startswith("FunctionType")
