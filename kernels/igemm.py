"""Integer matrix products for the quantized convolutions: int32 sums of int16 products, as TFLite sums.

A quantized CONV_2D is ``acc[p, o] = sum_k (x[p, k] - x_zp) * (w[k, o] - w_zp)`` in
TFLite's int32 accumulator. Both centered factors lie in [-255, 255], so they are
held as int16 (the convolution writes its im2col rows as centered int16), every
product fits int32, and the int32 sums here wrap exactly as TFLite's accumulator
does (integer addition wraps the same whatever the order): the result is TFLite's
accumulator bit for bit, whatever the depth.

The work is done in tiles of :data:`MR` pixels x 16 or 32 output channels whose
int32 sums stay in vector registers for the whole K loop. Each step broadcasts two
consecutive inputs of a pixel (one int32 holding the int16 pair) and multiplies
them with the two filter rows packed side by side (:func:`pack_weights`), adding the
two products of each lane into its sum: LLVM turns that expression into one
``vpmaddwd`` (``vpdpwssd`` with AVX-512 VNNI: 32 multiply-adds per instruction,
twice a float32 FMA's 16). The tile is written in LLVM IR through a Numba intrinsic
because Numba has no vector types and its own vectorizer does not keep a tile of
sums in registers; the IR is plain LLVM (no target intrinsics), correct on every
CPU LLVM targets, fast where the CPU has 16-bit multiply-adds.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import config, njit, types
from numba.extending import intrinsic

#: Pixels per tile: 8 x 2 blocks of 16 int32 sums = 16 vector registers (of AVX-512's 32).
MR = 8
#: Output channels per block: one 512-bit vector of int32 sums.
LANES = 16

_I16, _I32, _I64 = ir.IntType(16), ir.IntType(32), ir.IntType(64)
_SUMS = ir.VectorType(_I32, LANES)  # a block's int32 sums
_PAIRS = ir.VectorType(_I16, 2 * LANES)  # a block's filter pairs: (w[2q, o], w[2q + 1, o]) for 16 o
_WIDE = ir.VectorType(_I32, 2 * LANES)


def pack_weights(centered: np.ndarray) -> np.ndarray:
    """The centered filter ``centered`` [K, N] (integers in int16) as the tiles read it.

    Returns int16 [ceil(N / 16), ceil(K / 2), 32]: block b, pair q holds
    ``w[2q, 16b + i], w[2q + 1, 16b + i]`` at positions 2i, 2i + 1. Padding (an odd K,
    N not a multiple of 16) is zero, so it adds nothing whatever the inputs there.
    """
    k, n = centered.shape
    kp, np_ = -(-k // 2) * 2, -(-n // LANES) * LANES
    padded = np.zeros((kp, np_), np.int16)
    padded[:k, :n] = centered
    return np.ascontiguousarray(padded.reshape(kp // 2, 2, np_ // LANES, LANES).transpose(2, 0, 3, 1)).reshape(
        np_ // LANES, kp // 2, 2 * LANES)


def _broadcast_pair(builder: ir.IRBuilder, at: ir.Value) -> ir.Value:
    """The int16 pair (x0, x1) at address ``at`` repeated over 32 lanes (one int32 broadcast), widened to int32."""
    pair = builder.load(builder.inttoptr(at, _I32.as_pointer()), align=2)
    one = builder.insert_element(ir.Constant(_SUMS, None), pair, ir.Constant(_I32, 0))
    every = builder.shuffle_vector(one, ir.Constant(_SUMS, None), ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))
    return builder.sext(builder.bitcast(every, _PAIRS), _WIDE)


def _tile(blocks: int):
    """The intrinsic ``tile(a, lda, w, w_stride, pairs, c, ldc)`` for ``blocks`` blocks of 16 channels.

    ``c[r, 16 * j + i] = sum_q a[r, 2q] * w_j[q, 2i] + a[r, 2q + 1] * w_j[q, 2i + 1]`` (int32,
    wrapping) for r < MR, j < blocks, q < pairs (>= 1). Pointers and strides in bytes except
    ``ldc`` (int32 elements): a: int16 rows ``lda`` bytes apart; w: block j's pairs at
    ``w + j * w_stride`` (int16 [pairs, 32]); c: the int32 sums.
    """

    @intrinsic
    def tile(typingctx, a, lda, w, w_stride, pairs, c, ldc):
        sig = types.void(types.intp, types.intp, types.intp, types.intp, types.intp, types.intp, types.intp)

        def codegen(context, builder, signature, args):
            a, lda, w, w_stride, pairs, c, ldc = args
            const = lambda v: ir.Constant(_I64, v)  # noqa: E731
            entry = builder.block
            loop = builder.append_basic_block("tile.loop")
            done = builder.append_basic_block("tile.done")
            builder.branch(loop)  # pairs >= 1: the loop body runs at least once
            builder.position_at_end(loop)
            q = builder.phi(_I64)
            q.add_incoming(const(0), entry)
            sums = [[builder.phi(_SUMS) for _ in range(blocks)] for _ in range(MR)]
            for row in sums:
                for s in row:
                    s.add_incoming(ir.Constant(_SUMS, None), entry)
            filters = []
            for j in range(blocks):
                at = builder.add(w, builder.add(builder.mul(const(j), w_stride), builder.mul(q, const(4 * LANES))))
                filters.append(builder.sext(builder.load(builder.inttoptr(at, _PAIRS.as_pointer()), align=2), _WIDE))
            even = ir.Constant(ir.VectorType(_I32, LANES), list(range(0, 2 * LANES, 2)))
            odd = ir.Constant(ir.VectorType(_I32, LANES), list(range(1, 2 * LANES, 2)))
            updated = []
            for r in range(MR):
                at = builder.add(a, builder.add(builder.mul(const(r), lda), builder.mul(q, const(4))))
                x = _broadcast_pair(builder, at)
                row = []
                for j in range(blocks):
                    p = builder.mul(x, filters[j])
                    # Adjacent products summed into int32: the pattern of vpmaddwd.
                    pairsum = builder.add(builder.shuffle_vector(p, p, even), builder.shuffle_vector(p, p, odd))
                    row.append(builder.add(sums[r][j], pairsum))
                updated.append(row)
            q_next = builder.add(q, const(1))
            q.add_incoming(q_next, loop)
            for r in range(MR):
                for j in range(blocks):
                    sums[r][j].add_incoming(updated[r][j], loop)
            builder.cbranch(builder.icmp_signed("<", q_next, pairs), loop, done)
            builder.position_at_end(done)
            for r in range(MR):
                for j in range(blocks):
                    at = builder.add(c, builder.mul(builder.add(builder.mul(const(r), ldc), const(LANES * j)), const(4)))
                    builder.store(updated[r][j], builder.inttoptr(at, _SUMS.as_pointer()), align=4)
            return context.get_dummy_value()

        return sig, codegen

    return tile


_tile1 = _tile(1)
_tile2 = _tile(2)


@njit(cache=True, nogil=True)
def igemm(a, wp, acc):
    """``acc = a @ w`` in wrapping int32: a int16 [M, >= 2 * KQ] with M a multiple of :data:`MR`
    (unit stride along a row), wp int16 [NB, KQ, 32] (:func:`pack_weights`), acc int32
    [M, >= 16 * NB] (unit stride along a row). Columns of ``a`` past the filter's K meet
    zeros in the packed filter: they may hold anything.
    """
    m = a.shape[0]
    nb, kq = wp.shape[0], wp.shape[1]
    lda, ldc, w_stride = a.strides[0], acc.strides[0] // 4, wp.strides[0]
    for p in range(0, m, MR):
        src = a[p:].ctypes.data
        for b in range(0, nb - 1, 2):
            _tile2(src, lda, wp[b].ctypes.data, w_stride, kq, acc[p, LANES * b :].ctypes.data, ldc)
        if nb % 2:
            _tile1(src, lda, wp[nb - 1].ctypes.data, w_stride, kq, acc[p, LANES * (nb - 1) :].ctypes.data, ldc)


def igemm_numpy(a, wp, acc) -> None:
    """:func:`igemm` in NumPy (int64 product wrapped to int32): what runs when Numba's JIT is disabled."""
    nb, kq = wp.shape[0], wp.shape[1]
    w = wp.reshape(nb, kq, LANES, 2).transpose(1, 3, 0, 2).reshape(2 * kq, nb * LANES)
    product = a[:, : 2 * kq].astype(np.int64) @ w.astype(np.int64)
    acc[:, : nb * LANES] = ((product + 2**31) % 2**32 - 2**31).astype(np.int32)


if config.DISABLE_JIT:  # the kernels run as plain Python (coverage, debugging)
    igemm = igemm_numpy  # noqa: F811


__all__ = ["LANES", "MR", "igemm", "igemm_numpy", "pack_weights"]
