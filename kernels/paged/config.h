// config.h -- the launch geometry of the paged kernels (kernels/paged/paged.cu), shared by the
// kernels and by the host code that sizes their grids and shared memory (kernels/paged/host.h,
// also compiled without the device layer for the CUDA backend's run path). No device code.
#ifndef POSATTN_PAGED_CONFIG_H
#define POSATTN_PAGED_CONFIG_H

#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define PA_PAGED_HD __host__ __device__ inline
#else
#define PA_PAGED_HD inline
#endif

namespace pa_paged {

constexpr int kThreads = 128;  // threads per block of every paged kernel
constexpr int kRows = 16;      // query rows per paged_split block (one sequence's tokens x group)
constexpr int kMaxDim = 256;
template <int DMAX>
constexpr int kKeysPerTile = DMAX > 128 ? 16 : 32;  // K/V tokens per shared-memory tile
// Blocks per SM promised to ptxas, as decode_split (kernels/decode/decode.cu).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
constexpr int kMinBlocksHd128 = 4;
#else
constexpr int kMinBlocksHd128 = 5;
#endif
template <int DMAX>
constexpr int kMinBlocks = DMAX > 128 ? 1 : DMAX > 64 ? kMinBlocksHd128 : 5;
// Most blocks of the grid-stride kernels (paged_combine, paged_append).
constexpr int64_t kMaxStrideBlocks = 4096;

// Cache dtype index of the kernel tables, and the head-dim class (DMAX 64, 128, 256).
enum { kCacheF32 = 0, kCacheF16 = 1, kCacheBF16 = 2, kCacheE4M3 = 3, kCacheE5M2 = 4, kCacheKinds = 5 };
enum { kDimClasses = 3 };
inline int dim_class(int d) { return d <= 64 ? 0 : d <= 128 ? 1 : 2; }

PA_PAGED_HD int row_floats(int d) { return (d + 3) & ~3; }

// Dynamic shared memory of paged_split for head dim d in class dim_class.
inline size_t split_smem_bytes(int dim_cls, int d) {
  const size_t dr = size_t(row_floats(d)), T = size_t(dim_cls == 2 ? 16 : 32);
  return (size_t(kRows) * dr + 2 * T * dr + size_t(kRows) * T + 3 * size_t(kRows)) * sizeof(float) +
         (T + kRows) * sizeof(int32_t);
}

}  // namespace pa_paged
#endif
