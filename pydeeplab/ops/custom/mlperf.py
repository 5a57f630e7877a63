"""MLPerf Mobile's custom operator ``ResizeArgmax`` (mlcommons mobile_app_open).

Inputs: logits uint8 [N, H, W, C], size int32 [2], axis int32 [1] (must be the
channel axis, as the source checks); output int32 [N, 4H, 4W] (or with a trailing
1). The source always upsamples by 4, whatever ``size`` says: so does this.
Semantics in :mod:`pydeeplab.reference.mlperf`.
"""

from __future__ import annotations

import numpy as np

from ...reference import mlperf as ref
from ...tflite.schema import TensorType
from ..base import OpContext, Prepared
from . import register_custom_op

FACTOR = 4  # resize_argmax_task_4x: the only factor the source implements


def prepare_resize_argmax(ctx: OpContext) -> Prepared:
    ctx.expect_io(3)
    x, out = ctx.inputs[0], ctx.outputs[0]
    if x.type != TensorType.UINT8:
        raise ctx.error(f"the logits are {x.type.name}; MLPerf's kernel reads uint8 only")
    if out.type != TensorType.INT32:
        raise ctx.error(f"the output is {out.type.name}; MLPerf's kernel writes int32")
    if len(x.shape) != 4 or min(x.shape) <= 0:
        raise ctx.error(f"the logits must be 4-D [N, H, W, C] and not empty, have shape {list(x.shape)}")
    axis = ctx.constant(2, "the axis").reshape(-1)
    if axis.size != 1 or int(axis[0]) != len(x.shape) - 1:
        raise ctx.error(f"axis is {axis.tolist()}; the kernel computes the argmax over the last axis (3) only")
    if len(out.shape) not in (3, 4):
        raise ctx.error(f"the output must be [N, H, W] or [N, H, W, 1], is declared {list(out.shape)}")
    n, h, w, _ = x.shape
    out_shape = (n, FACTOR * h, FACTOR * w) + ((1,) if len(out.shape) == 4 else ())
    ctx.check_shape(out_shape, np.int32)
    if ctx.backend == "numba":
        from ...kernels import mlperf as kern
        from ...kernels.parallel import in_parallel, replayable, numba_threads

        resize_argmax = in_parallel(kern.resize_argmax)

        @replayable
        def run(inputs, outputs) -> None:
            resize_argmax(inputs[0], outputs[0].reshape(out_shape[:3]), nt=numba_threads(outputs[0].size * inputs[0].shape[3]))
    else:

        def run(inputs, outputs) -> None:
            ref.resize_argmax(inputs[0], outputs[0])

    return Prepared((out_shape,), run)


register_custom_op("ResizeArgmax", prepare_resize_argmax)
