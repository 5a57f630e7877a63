"""The LLVM IR building blocks of the kernels (pydeeplab.kernels.vector_ir), through small intrinsics."""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from pydeeplab.kernels.vector_ir import I8, lanes_below, masked_store


def _lanes_writer(lanes: int, within: bool = False):
    """An intrinsic storing ``lanes`` ones through lanes_below(count) at an int8 array's start."""

    @intrinsic
    def write(typingctx, out, count):
        sig = types.void(out, types.int64)

        def codegen(context, builder, signature, args):
            out_v, count_v = args
            data = context.make_array(out)(context, builder, out_v).data
            vector = ir.VectorType(I8, lanes)
            at = builder.bitcast(data, vector.as_pointer())
            mask = lanes_below(builder, count_v, lanes, within=within)
            masked_store(builder, ir.Constant(vector, [1] * lanes), at, mask, 1)
            return context.get_dummy_value()

        return sig, codegen

    @njit
    def run(out, count):
        write(out, count)

    return run


def test_lanes_below_any_count():
    """The first min(max(count, 0), lanes) lanes, for counts below 0, 0, inside, at and past the width,
    at the widths the kernels use (16) and the widest (64)."""
    for lanes in (16, 64):
        run = _lanes_writer(lanes)
        for count in (-5, 0, 1, 7, lanes - 1, lanes, lanes + 1, 1000, -(2**62)):
            out = np.zeros(lanes, np.int8)
            run(out, count)
            expected = (np.arange(lanes) < count).astype(np.int8)
            np.testing.assert_array_equal(out, expected, err_msg=f"{lanes} lanes, count {count}")


def test_lanes_below_a_count_known_within_the_width():
    """``within``: counts 1 .. lanes, without the clamp."""
    for lanes in (16, 64):
        run = _lanes_writer(lanes, within=True)
        for count in (1, 2, lanes // 2, lanes - 1, lanes):
            out = np.zeros(lanes, np.int8)
            run(out, count)
            np.testing.assert_array_equal(out, (np.arange(lanes) < count).astype(np.int8))
