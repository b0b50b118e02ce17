// simt_geometry.h -- the block shape and shared-memory layout of the fp32 SIMT split kernels
// (kernels/decode/simt_split.cuh: decode_split and the plan's paged_split). No device code: the
// paged host code (kernels/paged/host.h via config.h, also compiled without the device layer for
// the CUDA backend's run path) sizes their grids and shared memory with it.
#ifndef POSATTN_DECODE_SIMT_GEOMETRY_H
#define POSATTN_DECODE_SIMT_GEOMETRY_H

#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define PA_SIMT_HD __host__ __device__ inline
#else
#define PA_SIMT_HD inline
#endif

namespace pa_decode {

constexpr int kThreads = 128;  // threads per block of the split kernels (and of their combines)
constexpr int kRows = 16;      // query rows per block (a GQA group of <= 16 heads x tokens)
constexpr int kMaxDim = 256;
template <int DMAX>
constexpr int kKeysPerTile = DMAX > 128 ? 16 : 32;  // K/V tokens per shared-memory tile
// Blocks per SM promised to ptxas (__launch_bounds__), chosen so that no instance spills and the
// hd 128 instance keeps the occupancy of bench/sass/baseline.json: 5 on sm_80 (<= 96 registers)
// for hd <= 128; on sm_90 hd 128 gets 4 (5 spills 8 bytes there); hd 256 needs ~168 registers (1).
// Without these ptxas picked 72-127 registers and spilled 4-20 bytes in some instances.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
constexpr int kMinBlocksHd128 = 4;
#else
constexpr int kMinBlocksHd128 = 5;
#endif
template <int DMAX>
constexpr int kMinBlocks = DMAX > 128 ? 1 : DMAX > 64 ? kMinBlocksHd128 : 5;

// Floats of one shared-memory row of head dim d (whole float4 units).
PA_SIMT_HD int row_floats(int d) { return (d + 3) & ~3; }

// Dynamic shared memory of a split block with `keys` K/V tokens per tile (kKeysPerTile) and head
// dim d: q rows, K and V tiles, scores, three per-row statistics, then key and query positions.
inline size_t simt_smem_bytes(int keys, int d) {
  const size_t dr = size_t(row_floats(d)), T = size_t(keys);
  return (size_t(kRows) * dr + 2 * T * dr + size_t(kRows) * T + 3 * size_t(kRows)) * sizeof(float) +
         (T + kRows) * sizeof(int32_t);
}

}  // namespace pa_decode
#endif
