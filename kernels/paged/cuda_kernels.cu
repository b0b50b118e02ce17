// cuda_kernels.cu -- the paged kernels (paged.cu, paged_mma.cuh) compiled by nvcc for the CUDA backend, and the
// table of their addresses that the backend's host code (cuda_run.cpp) launches with
// cudaLaunchKernel. Nothing else: no host logic lives here.
#include "paged/cuda_kernels.h"
#include "paged/paged_mma.cuh"

namespace {

pa_paged_kernel_table make_table() {
  pa_paged_kernel_table t{};
  t.check = reinterpret_cast<const void *>(pa_paged::paged_check);
  t.combine = reinterpret_cast<const void *>(pa_paged::paged_combine);
  for (int c = 0; c < pa_paged::kCacheKinds; ++c) {
    for (int d = 0; d < pa_paged::kDimClasses; ++d)
      t.split[c][d] = reinterpret_cast<const void *>(pa_paged::split_kernel(c, d));
    for (int q = 0; q < 2; ++q)
      for (int d = 0; d < pa_paged::kDimClasses; ++d)
        t.split_mma[c][q][d] = reinterpret_cast<const void *>(pa_paged::split_mma_kernel(c, q, d));
    t.append[c] = reinterpret_cast<const void *>(pa_paged::append_kernel(c));
  }
  return t;
}

}  // namespace

const pa_paged_kernel_table *pa_paged_cuda_kernels() {
  static const pa_paged_kernel_table table = make_table();
  return &table;
}
