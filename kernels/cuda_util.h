// cuda_util.h -- helpers of the CUDA backend's translation units (kernels/cuda_backend.cu,
// kernels/decode/cuda_decode.cu): CUDA errors as posattn statuses, and a device scope. nvcc only;
// internal linkage (each part is localised before the library is linked, kernels/sources.cmake).
#ifndef POSATTN_CUDA_UTIL_H
#define POSATTN_CUDA_UTIL_H

#include <cuda_runtime.h>

#include "internal.h"

// The entry points stay global through the localisation of the CUDA part (default visibility);
// the library's version script still keeps them out of the exported symbols.
#define PA_CUDA_ENTRY extern "C" __attribute__((visibility("default")))

namespace {

posattn_status cuda_fail(char *msg, size_t msg_size, posattn_status st, const char *what,
                         cudaError_t e) {
  return pa_fail(msg, msg_size, st, "CUDA backend: %s: %s (%s)", what, cudaGetErrorString(e),
                 cudaGetErrorName(e));
}

// Makes `device` current for the scope and restores the caller's device afterwards, so the library
// never changes which GPU the caller's own CUDA calls go to.
class DeviceScope {
 public:
  cudaError_t enter(int device) {
    cudaError_t e = cudaGetDevice(&prev_);
    if (e != cudaSuccess) return e;
    if (prev_ == device) return cudaSuccess;
    e = cudaSetDevice(device);
    if (e == cudaSuccess) restore_ = true;
    return e;
  }
  ~DeviceScope() {
    if (restore_) cudaSetDevice(prev_);
  }

 private:
  int prev_ = 0;
  bool restore_ = false;
};

}  // namespace

#endif /* POSATTN_CUDA_UTIL_H */
