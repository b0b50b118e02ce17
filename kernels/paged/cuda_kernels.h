// cuda_kernels.h -- what the CUDA backend's plain C++ host code (kernels/paged/cuda_run.cpp) knows
// of the nvcc-compiled paged kernels (kernels/paged/cuda_kernels.cu): their addresses, for
// cudaLaunchKernel. No CUDA header needed.
#ifndef POSATTN_PAGED_CUDA_KERNELS_H
#define POSATTN_PAGED_CUDA_KERNELS_H

#include "paged/config.h"

struct pa_paged_kernel_table {
  const void *check;    // paged_check(pa_paged_seqs)
  const void *combine;  // paged_combine(pa_paged_params)
  const void *split[pa_paged::kCacheKinds][pa_paged::kDimClasses];  // paged_split(pa_paged_params)
  // paged_split_mma(pa_paged_params) by [cache][q is f16][head dim 64/128/256]; NULL: none
  const void *split_mma[pa_paged::kCacheKinds][2][pa_paged::kDimClasses];
  const void *append[pa_paged::kCacheKinds];                        // paged_append(pa_paged_append_params)
};

// Defined by cuda_kernels.cu (the capture test's stand-in defines its own, with fake addresses).
const pa_paged_kernel_table *pa_paged_cuda_kernels();

#endif
