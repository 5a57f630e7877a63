"""SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND on NHWC tensors (two block dimensions), as Numba copies.

Older converters write an atrous convolution as SPACE_TO_BATCH_ND -> conv ->
BATCH_TO_SPACE_ND (the fp16 DeepLab: 65x65x480 tensors into 16 batches of 19x19
and back). Both ops only move pixels; each pixel is a contiguous run of C values,
copied whole. Measured on one thread against NumPy's strided copy per block position
(``pydeeplab.reference.shape``, the semantics and the numpy backend): 65x65x480 ->
16x19x19x480 1.57 -> 1.06 ms, back 1.37 -> 0.69 ms, the fp16 model's 20 such ops
13.5 -> 9.2 ms; and they split over the threads (part t of nt,
:func:`pydeeplab.kernels.parallel.in_parallel`) by output rows.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True)
def space_to_batch(x, bh, bw, pt, pl, pad, out, t, nt):
    """out [BH * BW * N, OH, OW, C] from x [N, H, W, C] padded by pt rows on top and pl columns
    on the left (``pad``, x's dtype, elsewhere outside x): output batch ``(i * BW + j) * N + n``,
    pixel (y, xo) is padded-input pixel ``(y * BH + i, xo * BW + j)`` of batch n."""
    n, h, w, c = x.shape
    ob, oh, ow, _ = out.shape
    rows = ob * oh
    for r in range(rows * t // nt, rows * (t + 1) // nt):
        batch, y = r // oh, r % oh
        block, b = batch // n, batch % n
        iy = y * bh + block // bw - pt
        row = out[batch, y]
        if iy < 0 or iy >= h:
            row[:, :] = pad
            continue
        src = x[b, iy]
        for xo in range(ow):
            ix = xo * bw + block % bw - pl
            o = row[xo]
            if ix < 0 or ix >= w:
                o[:] = pad
            else:
                s = src[ix]
                for k in range(c):
                    o[k] = s[k]


@njit(cache=True, nogil=True)
def batch_to_space(x, bh, bw, ct, cl, out, t, nt):
    """out [N, OH, OW, C] from x [BH * BW * N, H, W, C]: output pixel (y, xo) of batch n is pixel
    ``(Y // BH, X // BW)`` of input batch ``((Y % BH) * BW + X % BW) * N + n``, where
    ``Y = y + ct`` and ``X = xo + cl`` (the crops before each dimension)."""
    n, oh, ow, c = out.shape
    rows = n * oh
    for r in range(rows * t // nt, rows * (t + 1) // nt):
        b, y = r // oh, r % oh
        yy = y + ct
        row = out[b, y]
        for xo in range(ow):
            xx = xo + cl
            s = x[((yy % bh) * bw + xx % bw) * n + b, yy // bh, xx // bw]
            o = row[xo]
            for k in range(c):
                o[k] = s[k]
