// cuda_util.h -- helpers of the CUDA backend's translation units (kernels/cuda_backend.cu,
// kernels/decode/cuda_decode.cu, kernels/merge/cuda_merge.cu): CUDA errors as posattn statuses
// (through the classifier of host/cuda_error.c), the pending-error check, and a device scope.
// nvcc only; internal linkage (each part is localised before the library is linked,
// kernels/sources.cmake).
#ifndef POSATTN_CUDA_UTIL_H
#define POSATTN_CUDA_UTIL_H

#include <cuda_runtime.h>

#include <cstdio>

#include "device/device.cuh"
#include "internal.h"

// The entry points stay global through the localisation of the CUDA part (default visibility);
// the library's version script still keeps them out of the exported symbols.
#define PA_CUDA_ENTRY extern "C" __attribute__((visibility("default")))

// The classifier's numbers (host/cuda_error.c) are the CUDA headers' numbers.
#define PA_CUDA_CHECK_ERROR_NUMBER(name, value) \
  static_assert(static_cast<int>(name) == (value), #name " has a new number: update host/internal.h");
PA_CUDA_STICKY_ERRORS(PA_CUDA_CHECK_ERROR_NUMBER)
static_assert(static_cast<int>(cudaErrorMemoryAllocation) == PA_CUDA_ERROR_MEMORY_ALLOCATION,
              "cudaErrorMemoryAllocation has a new number: update host/internal.h");
#undef PA_CUDA_CHECK_ERROR_NUMBER

namespace {

// Every failed CUDA call of the backend becomes a status here, through the one classifier
// (pa_cuda_error_report): DEVICE_LOST for sticky errors, ALLOC_FAILED for an allocation, else
// `fallback`. The runtime's per-thread error is read back (cleared when recoverable), so that the
// next entry point does not find this call's error pending and call it an earlier one's.
posattn_status cuda_fail(char *msg, size_t msg_size, posattn_status fallback, const char *what,
                         cudaError_t e) {
  (void)cudaGetLastError();
  char detail[160];
  std::snprintf(detail, sizeof detail, "%s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
  return pa_cuda_error_report(msg, msg_size, static_cast<int>(e), fallback, 0, what, detail);
}

// The same on a context: its message, and the code for posattn_context_last_device_error().
posattn_status cuda_fail(posattn_context *ctx, const char *what, cudaError_t e) {
  ctx->device_error = static_cast<int>(e);
  return cuda_fail(ctx->msg, PA_MSG_SIZE, POSATTN_STATUS_DEVICE_ERROR, what, e);
}

// A kernel launch that failed (pa::launch_status): with the CUDA error of the launch when there
// is one, else (a launch refused before CUDA was asked) DEVICE_ERROR with the launcher's message.
posattn_status launch_fail(posattn_context *ctx, const char *what, const pa::launch_status &st) {
  if (st.cuda_error == 0)
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_DEVICE_ERROR, "CUDA backend: %s: %s", what, st.msg);
  (void)cudaGetLastError();
  ctx->device_error = st.cuda_error;
  return pa_cuda_error_report(ctx->msg, PA_MSG_SIZE, st.cuda_error, POSATTN_STATUS_DEVICE_ERROR,
                              0, what, st.msg);
}

// The first CUDA step of every entry point that does CUDA work (copies, launches): an error left
// pending by earlier work is reported as such (posattn.h, posattn_context_last_device_error) and
// the call does nothing. Reading it clears a recoverable error; a sticky one stays. No stream or
// device operation, so it is safe inside a CUDA graph capture.
posattn_status cuda_pending_check(posattn_context *ctx, const char *entry) {
  const cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return POSATTN_STATUS_SUCCESS;
  char detail[160];
  std::snprintf(detail, sizeof detail, "%s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
  ctx->device_error = static_cast<int>(e);
  return pa_cuda_error_report(ctx->msg, PA_MSG_SIZE, static_cast<int>(e),
                              POSATTN_STATUS_DEVICE_ERROR, 1, entry, detail);
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
