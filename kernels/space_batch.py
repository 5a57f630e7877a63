"""SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND as one Numba kernel: a gather of whole pixels.

Older converters write an atrous convolution as SPACE_TO_BATCH_ND -> conv ->
BATCH_TO_SPACE_ND (the fp16 DeepLab: 65x65x480 tensors into 16 batches of 19x19
and back). Both ops only move pixels, each a contiguous run of C values, so plan
time maps every output pixel to the input pixel it copies (-1: padding), by running
the reference (``pydeeplab.reference.shape``) on an image of pixel numbers; the
kernel copies the runs. One kernel for both operators: one compile on a cold cache
(two specialised kernels cost 0.7 s). Measured on one thread against NumPy's strided
copy per block position (the numpy backend): the fp16 model's 20 such ops 13.5 ->
9.2 ms; and the output pixels split over the threads (part t of nt,
:func:`pydeeplab.kernels.parallel.in_parallel`).
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True)
def gather_pixels(x, index, pad, out, t, nt):
    """out[p] = x[index[p]] for each pixel p (a row of C values), or ``pad`` where index[p] < 0.

    x [P_in, C] and out [P_out, C] C-contiguous, any one dtype; index int64 [P_out];
    pad: a scalar of out's dtype. Part t of nt of the output pixels.
    """
    p_out, c = out.shape
    src = x.reshape(x.size)
    dst = out.reshape(out.size)
    for p in range(p_out * t // nt, p_out * (t + 1) // nt):
        k = index[p]
        d = dst[p * c : (p + 1) * c]
        if k < 0:
            for j in range(c):
                d[j] = pad
        else:
            s = src[k * c : (k + 1) * c]
            for j in range(c):
                d[j] = s[j]
