// config.h -- the launch geometry of the paged kernels (kernels/paged/paged.cu), shared by the
// kernels and by the host code that sizes their grids and shared memory (kernels/paged/host.h,
// also compiled without the device layer for the CUDA backend's run path). No device code.
#ifndef POSATTN_PAGED_CONFIG_H
#define POSATTN_PAGED_CONFIG_H

#include <cstddef>
#include <cstdint>

#include "decode/simt_geometry.h"

namespace pa_paged {

// The block shape of paged_split is decode_split's (kernels/decode/simt_geometry.h: the two
// kernels share their block body), and every paged kernel runs kThreads threads.
using pa_decode::kThreads;
using pa_decode::kRows;  // query rows per paged_split block (one sequence's tokens x group)
using pa_decode::kMaxDim;
using pa_decode::kKeysPerTile;
using pa_decode::kMinBlocks;
using pa_decode::row_floats;
// Most blocks of the grid-stride kernels (paged_combine, paged_append).
constexpr int64_t kMaxStrideBlocks = 4096;

// Cache dtype index of the kernel tables, and the head-dim class (DMAX 64, 128, 256).
enum { kCacheF32 = 0, kCacheF16 = 1, kCacheBF16 = 2, kCacheE4M3 = 3, kCacheE5M2 = 4, kCacheKinds = 5 };
enum { kDimClasses = 3 };
inline int dim_class(int d) { return d <= 64 ? 0 : d <= 128 ? 1 : 2; }

// Dynamic shared memory of paged_split for head dim d in class dim_class.
inline size_t split_smem_bytes(int dim_cls, int d) {
  return pa_decode::simt_smem_bytes(dim_cls == 2 ? kKeysPerTile<kMaxDim> : kKeysPerTile<128>, d);
}

}  // namespace pa_paged
#endif
