// mma_geometry.h -- the block shape and shared-memory layout of the tensor-core split kernels
// (kernels/decode/mma_split.cuh: decode_mma and the plan's paged_split_mma). No device code: the
// CUDA backend's plain C++ host code (kernels/paged/cuda_run.cpp) sizes their shared memory with
// it at plan creation.
#ifndef POSATTN_DECODE_MMA_GEOMETRY_H
#define POSATTN_DECODE_MMA_GEOMETRY_H

#include <cstddef>

#if defined(__CUDACC__)
#define PA_MMA_HD __host__ __device__ inline
#else
#define PA_MMA_HD inline
#endif

namespace pa_decode {

constexpr int kMmaWarps = 8, kMmaThreads = 32 * kMmaWarps;
constexpr int kMmaRows = 16 * kMmaWarps;  // query rows per block (8 m-tiles)
constexpr int kMmaStages = 2;
constexpr int kMmaOperandBytes = 2;  // bf16 / f16: the mma type
// Keys per shared-memory tile: 64 (4 chunks of 16), 32 at hd 256 (the ring stays 64 KiB).
template <int D>
constexpr int kMmaTile = D > 128 ? 32 : 64;
// Blocks per SM promised to ptxas: 2 at hd 64 with a 16-bit cache; 1 elsewhere (under 128
// registers hd 128 spilled ~48 bytes and hd 64 FP8 4-8 bytes; hd 256 holds 128 O accumulators
// per thread).
template <int D, int kEsz>
constexpr int kMmaMinBlocks = D > 64 || kEsz == 1 ? 1 : 2;

// Query rows per block: kMmaRows, 64 at hd 256 with RoPE (the split Q and K tiles below would not
// fit 128 rows in an sm_80 block's shared memory).
PA_MMA_HD int mma_rows_per_block(int d, int rotary_dim) { return d > 128 && rotary_dim > 0 ? 64 : kMmaRows; }

// Shared memory of a block with `qrows` Q rows (a multiple of 16), head dim d, cache elements of
// `esz` bytes: [Q tile | RoPE: Q lo tile | K/V ring | fp8: K, V work tiles | un-rotated cache:
// K lo tile] overlaid by the fp32 merge buffer after the loop, then the per-warp / per-row
// softmax statistics.
struct MmaSmem {
  size_t q, q_lo, ring, work, k_lo, main, stats, total;
  PA_MMA_HD MmaSmem(int d, int esz, int qrows, bool rope, bool rotate_k) {
    const size_t D = size_t(d), bc = size_t(d > 128 ? 32 : 64), op = kMmaOperandBytes;
    const size_t ring_slot = bc * D * size_t(esz);
    const size_t stats_bytes = (3 * kMmaWarps * 16 + 2 * kMmaRows) * sizeof(float);
    q = 0;
    q_lo = size_t(qrows) * D * op;
    ring = q_lo + (rope ? size_t(qrows) * D * op : 0);
    work = ring + 2 * kMmaStages * ring_slot;
    k_lo = work + (esz == 1 ? 2 * bc * D * op : 0);
    main = k_lo + (rope && rotate_k ? bc * D * op : 0);
    const size_t merge = size_t(qrows) * D * sizeof(float);
    if (merge > main) main = merge;
    stats = main;
    total = stats + stats_bytes;
  }
};

}  // namespace pa_decode
#endif
