"""Integer matrix products for the quantized convolutions: uint8 x int8, int32 sums as TFLite sums,
and TFLite's output stage on them.

A quantized CONV_2D is ``acc[p, o] = sum_k (x[p, k] - x_zp) * (w[k, o] - w_zp)`` in
TFLite's int32 accumulator. The convolution writes its inputs as uint8 and its filter as
int8, and corrects the sum with its bias and a term per pixel (``conv_plan.conv_2d_runner``):
here is the product of the two, in int32 sums that wrap exactly as TFLite's accumulator does
(integer addition wraps the same whatever the order), whatever the depth, requantized to the
8-bit outputs while they are in registers (:func:`_tile_requantized`).

The work is done in tiles of :data:`MR` pixels x 16 or 32 output channels whose
int32 sums stay in vector registers for the whole K loop. Each step broadcasts four
consecutive inputs of a pixel (one int32 holding the four bytes) and multiplies them with
the four filter rows packed side by side (:func:`pack_weights`), adding the four products
of each lane into its sum: one ``vpdpbusd`` (64 multiply-adds per instruction, four times a
float32 FMA's 16) where the CPU has AVX-512 VNNI (:data:`HAVE_VNNI`), else the same sum
written as plain LLVM IR, correct on every CPU LLVM targets. (Against int16 pairs, 32
multiply-adds a step, which uint8 filters needed before the per-pixel term: pascal_quant's
1x1 convs 36.0 -> 23.1 ms, 1 thread.) The tile is written in LLVM IR through a Numba
intrinsic because Numba has no vector types and its own vectorizer does not keep a tile
of sums in registers. (Against storing the int32 sums and requantizing them in a second pass:
257x257x16 -> x96 2.33 -> 2.14 ms, 33x33x80 -> x480 0.313 -> 0.292 ms, 1 thread.)
"""

from __future__ import annotations

import numpy as np
import llvmlite.binding as ll
from llvmlite import ir
from numba import config, njit, types
from numba.extending import intrinsic

from .requantize import STAGE_BYTES, output_stage, requantize_one, stage_bounds, stage_constants, unpack_stage
from .vector_ir import declare, lanes_below, masked_store, splat

#: Pixels per tile: 8 x 2 blocks of 16 int32 sums = 16 vector registers (of AVX-512's 32).
MR = 8
#: Output channels per block: one 512-bit vector of int32 sums.
LANES = 16



def _target_has_vnni() -> bool:
    """Whether the CPU features Numba compiles for (NUMBA_CPU_FEATURES, else the host's) include AVX-512 VNNI."""
    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else ll.get_host_cpu_features().flatten()
    return "+avx512vnni" in features.split(",")


#: The CPU Numba compiles for has AVX-512 VNNI's vpdpbusd (uint8 x int8, four products per lane).
HAVE_VNNI = _target_has_vnni()

_I32, _I64 = ir.IntType(32), ir.IntType(64)

_SUMS = ir.VectorType(_I32, LANES)  # a block's int32 sums; also one step's 64 bytes of filter or a broadcast


def pack_weights(w: np.ndarray) -> np.ndarray:
    """The filter ``w`` [K, N] (integers in the int8 range) as the tiles read it, four filter rows a
    step: int8 [ceil(N / 16), ceil(K / 4), 64], ``w[4q + j, 16b + i]`` at position 4i + j of block b,
    step q. Padding (K not a multiple of 4, N not of 16) is zero, so it adds nothing whatever the
    inputs there."""
    k, n = w.shape
    kp, np_ = -(-k // 4) * 4, -(-n // LANES) * LANES
    padded = np.zeros((kp, np_), np.int8)
    padded[:k, :n] = w
    return np.ascontiguousarray(padded.reshape(kp // 4, 4, np_ // LANES, LANES).transpose(2, 0, 3, 1)).reshape(
        np_ // LANES, kp // 4, 4 * LANES)


def _lanes(builder: ir.IRBuilder, v: ir.Value, bits: int, extend) -> ir.Value:
    """The 512-bit vector v as 512 / bits lanes of ``bits`` bits, each extended to int32."""
    n = 512 // bits
    return extend(builder.bitcast(v, ir.VectorType(ir.IntType(bits), n)), ir.VectorType(_I32, n))


def _sum_groups(builder: ir.IRBuilder, products: ir.Value, size: int) -> ir.Value:
    """Int32 lane i = the sum of products[size * i : size * (i + 1)] (16 lanes)."""
    parts = [builder.shuffle_vector(products, products, ir.Constant(ir.VectorType(_I32, LANES),
                                                                    [size * i + j for i in range(LANES)]))
             for j in range(size)]
    total = parts[0]
    for part in parts[1:]:
        total = builder.add(total, part)
    return total


def _dot_quads(builder: ir.IRBuilder, sums: ir.Value, x: ir.Value, w: ir.Value) -> ir.Value:
    """sums + (uint8 quads of x) . (int8 quads of w), lane by lane: vpdpbusd where the CPU has it."""
    if HAVE_VNNI:
        vpdpbusd = declare(builder.module, "llvm.x86.avx512.vpdpbusd.512", _SUMS, [_SUMS] * 3)
        return builder.call(vpdpbusd, [sums, x, w])
    products = builder.mul(_lanes(builder, x, 8, builder.zext), _lanes(builder, w, 8, builder.sext))
    return builder.add(sums, _sum_groups(builder, products, 4))


def _tile_sums(builder: ir.IRBuilder, a, lda, w, w_stride, steps, init, blocks: int) -> list[list[ir.Value]]:
    """The K loop of a tile: MR x ``blocks`` <16 x i32> sums, row r's from ``init[r]`` (int32) in every
    lane; per step q (q < steps, steps >= 1) and row r, four bytes (uint8) of a's row r (at byte 4q)
    broadcast and multiplied with 64 bytes (int8) of each block's filter (block j's at ``w + j *
    w_stride + 64 q``, :func:`pack_weights`), the products of each lane summed in (int32, wrapping:
    :func:`_dot_quads`). Addresses and strides in bytes; the builder is left after the loop."""
    const = lambda v: ir.Constant(_I64, v)  # noqa: E731
    starts = [splat(builder, builder.load(builder.inttoptr(builder.add(init, const(4 * r)), _I32.as_pointer()),
                                          align=4), _SUMS) for r in range(MR)]
    entry = builder.block
    loop = builder.append_basic_block("tile.loop")
    done = builder.append_basic_block("tile.done")
    builder.branch(loop)  # steps >= 1: the loop body runs at least once
    builder.position_at_end(loop)
    q = builder.phi(_I64)
    q.add_incoming(const(0), entry)
    sums = [[builder.phi(_SUMS) for _ in range(blocks)] for _ in range(MR)]
    for start, row in zip(starts, sums):
        for s in row:
            s.add_incoming(start, entry)
    filters = []
    for j in range(blocks):
        at = builder.add(w, builder.add(builder.mul(const(j), w_stride), builder.mul(q, const(64))))
        filters.append(builder.load(builder.inttoptr(at, _SUMS.as_pointer()), align=1))
    updated = []
    for r in range(MR):
        at = builder.add(a, builder.add(builder.mul(const(r), lda), builder.mul(q, const(4))))
        x = splat(builder, builder.load(builder.inttoptr(at, _I32.as_pointer()), align=1), _SUMS)
        updated.append([_dot_quads(builder, sums[r][j], x, filters[j]) for j in range(blocks)])
    q_next = builder.add(q, const(1))
    q.add_incoming(q_next, loop)
    for r in range(MR):
        for j in range(blocks):
            sums[r][j].add_incoming(updated[r][j], loop)
    builder.cbranch(builder.icmp_signed("<", q_next, steps), loop, done)
    builder.position_at_end(done)
    return updated


def _tile_requantized(blocks: int):
    """The intrinsic ``tile(a, lda, w, w_stride, steps, out, ldo, init, stage, rows, lanes, zp, lo, hi)``:
    the sums of :func:`_tile_sums` through TFLite's output stage while they are in registers, stored
    as 8-bit outputs: rows r < ``rows`` at ``out + r * ldo`` (bytes), block j's 16 channels from
    byte 16 j, the last block's first ``lanes`` (1 .. 16) only.

    ``stage``: the address of the tile's first block of :func:`.requantize.pack_stage` (64-byte
    aligned, its rows then each in one cache line; any address works); per
    channel ``clamp(rescale(((sum + bias) << left)) + zp, lo, hi)`` in int32 as TFLite computes it
    (:func:`.requantize.output_stage`), where a second pass over the int32 sums in memory did it before.
    """

    @intrinsic
    def tile(typingctx, a, lda, w, w_stride, steps, out, ldo, init, stage, rows, lanes, zp, lo, hi):
        sig = types.void(*[types.intp] * 14)

        def codegen(context, builder, signature, args):
            a, lda, w, w_stride, steps, out, ldo, init, stage, rows, lanes, zp, lo, hi = args
            const = lambda v: ir.Constant(_I64, v)  # noqa: E731
            v8 = ir.VectorType(ir.IntType(8), LANES)
            sums = _tile_sums(builder, a, lda, w, w_stride, steps, init, blocks)
            bounds = stage_bounds(builder, zp, lo, hi)
            last = lanes_below(builder, lanes, LANES, within=True)
            for j in range(blocks):
                constants = stage_constants(builder, builder.add(stage, const(STAGE_BYTES * j)))
                for r in range(MR):
                    with builder.if_then(builder.icmp_signed("<", const(r), rows), likely=True):
                        v = builder.trunc(output_stage(builder, sums[r][j], constants, bounds), v8)
                        at = builder.inttoptr(builder.add(out, builder.add(builder.mul(const(r), ldo),
                                                                           const(LANES * j))), v8.as_pointer())
                        if j == blocks - 1:
                            masked_store(builder, v, at, last, 1)
                        else:
                            builder.store(v, at, align=1)
            return context.get_dummy_value()

        return sig, codegen

    return tile


_tile1 = _tile_requantized(1)
_tile2 = _tile_requantized(2)


@njit(cache=True, nogil=True)
def igemm(a, wp, init, stage, out_zero_point, act_min, act_max, out):
    """``out = output_stage(a @ w + init[:, None] + bias)`` (TFLite's int32 sums, wrapping, then its
    output stage), out [M, C] uint8/int8 with unit stride along a row.

    a uint8 [>= M rounded up to MR, >= 4 * KQ], unit stride along a row (the rows past M are read,
    their outputs not written; columns past the filter's K meet zeros in the packed filter: they
    may hold anything); wp int8 [NB, KQ, 64] (:func:`pack_weights`); init int32 [>= M rounded up
    to MR], contiguous: a term per row that its sums start from (the quantized conv's per-pixel
    correction: where a pass added it to the int32 sums afterwards, 0.36 ms of pascal_quant's
    257x257x16 -> x96 conv's 2.48); stage int64 [NB, 10, 8] (:func:`.requantize.pack_stage`),
    C-contiguous, best 64-byte aligned.
    """
    m, c = out.shape
    nb, steps = wp.shape[0], wp.shape[1]
    lda, ldo, w_stride = a.strides[0], out.strides[0], wp.strides[0]
    zp, lo, hi = np.int64(out_zero_point), np.int64(act_min), np.int64(act_max)
    for p in range(0, m, MR):
        src, start, rows = a[p:].ctypes.data, init[p:].ctypes.data, min(MR, m - p)
        for b in range(0, nb - 1, 2):
            k = LANES * b
            _tile2(src, lda, wp[b].ctypes.data, w_stride, steps, out[p, k:].ctypes.data, ldo, start,
                   stage[b].ctypes.data, rows, min(LANES, c - k - LANES), zp, lo, hi)
        if nb % 2:
            k = LANES * (nb - 1)
            _tile1(src, lda, wp[nb - 1].ctypes.data, w_stride, steps, out[p, k:].ctypes.data, ldo, start,
                   stage[nb - 1].ctypes.data, rows, c - k, zp, lo, hi)


def igemm_numpy(a, wp, init, stage, out_zero_point, act_min, act_max, out) -> None:
    """:func:`igemm` in NumPy (an int64 product wrapped to int32, the output stage one value at a time):
    what runs when Numba's JIT is disabled."""
    m, c = out.shape
    nb, steps, _ = wp.shape
    w = wp.reshape(nb, steps, LANES, 4).transpose(1, 3, 0, 2).reshape(4 * steps, nb * LANES)[:, :c]
    bias, mult, left, right = unpack_stage(stage, c)
    product = a[:m, : 4 * steps].astype(np.int64) @ w.astype(np.int64) + init[:m, None] + bias
    totals = (product + 2**31) % 2**32 - 2**31
    result = np.empty((m, c), np.int64)
    for r in range(m):
        for k in range(c):
            result[r, k] = requantize_one(totals[r, k], mult[k], left[k], right[k], out_zero_point, act_min, act_max)
    out[...] = result.astype(out.dtype)  # (the low 8 bits, as the tile stores them)


if config.DISABLE_JIT:  # the kernels run as plain Python (coverage, debugging)
    igemm = igemm_numpy  # noqa: F811


__all__ = ["HAVE_VNNI", "LANES", "MR", "igemm", "igemm_numpy", "pack_weights"]
