// cuda_standin.hpp -- a RECORDING stand-in for the CUDA runtime functions that the CUDA plan
// backend's host code (kernels/paged/cuda_run.cpp) calls. That file reaches the runtime only
// through PA_CUDA(fn); compiled with PA_PAGED_CUDA_STANDIN, PA_CUDA(fn) is pa_standin_fn, defined
// here, and its entry points are renamed *_standin. So:
//   - every runtime call of the backend is seen here (and a call the backend adds to a function
//     without a stand-in below fails to link the capture test);
//   - a call that bypasses PA_CUDA shows up as an undefined cuda* symbol of the stand-in object,
//     which the test plan_capture_no_direct_cuda_symbols rejects (tests/capture/CMakeLists.txt).
// No GPU and no CUDA library are involved: "device memory" is host memory from malloc, kernels
// are fake addresses, launches only record (function, grid, block, shared memory, stream, the
// parameter block's bytes). While `hot` is set (a run or an append), every call other than
// cudaLaunchKernel / cudaGetLastError / cudaPeekAtLastError is recorded as forbidden.
// Include in exactly one translation unit per program.
#ifndef PA_CUDA_STANDIN_HPP
#define PA_CUDA_STANDIN_HPP

#include <cuda_runtime_api.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#define PA_PF_RAW_POINTERS 1
#include "paged/cuda_kernels.h"
#include "paged/params.h"
#include "plan.h"

// The renamed entry points of the stand-in build of cuda_run.cpp.
extern "C" {
posattn_status pa_plan_cuda_prepare_standin(posattn_plan *plan, char *msg, size_t msg_size);
void pa_plan_cuda_release_standin(posattn_plan *plan);
posattn_status pa_plan_cuda_run_standin(posattn_context *ctx, const posattn_plan *plan,
                                        const posattn_run_args *a);
posattn_status pa_plan_cuda_append_standin(posattn_context *ctx, const posattn_plan *plan,
                                           const posattn_append_args *a);
posattn_status pa_plan_cuda_read_error_standin(posattn_context *ctx, const void *ws,
                                               pa_run_error *rec);
posattn_status pa_plan_cuda_clear_error_standin(posattn_context *ctx, void *ws);
}

struct StandinLaunch {
  const void *func;
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
  std::vector<unsigned char> params;  // the parameter block, byte for byte
};

struct Standin {
  bool hot = false;                    // inside a run / append
  bool record_params = true;           // off for timing
  std::vector<std::string> calls;      // every call, in order
  std::vector<std::string> forbidden;  // calls made while hot that a run must not make
  std::vector<StandinLaunch> launches;
  int mallocs = 0, frees = 0;
  void clear() {
    calls.clear();
    forbidden.clear();
    launches.clear();
  }
  void note(const char *fn, bool allowed_hot) {
    if (record_params) calls.push_back(fn);
    if (hot && !allowed_hot) forbidden.push_back(fn);
  }
};
inline Standin g_standin;

// Fake kernels: distinct addresses, never called.
inline char g_fake_kernels[2 + 3 * pa_paged::kCacheKinds * pa_paged::kDimClasses + pa_paged::kCacheKinds];

const pa_paged_kernel_table *pa_paged_cuda_kernels_standin() {
  static pa_paged_kernel_table t = [] {
    pa_paged_kernel_table x{};
    int i = 0;
    x.check = &g_fake_kernels[i++];
    x.combine = &g_fake_kernels[i++];
    for (int c = 0; c < pa_paged::kCacheKinds; ++c) {
      for (int d = 0; d < pa_paged::kDimClasses; ++d) x.split[c][d] = &g_fake_kernels[i++];
      for (int q = 0; q < 2; ++q)
        for (int d = 0; d < pa_paged::kDimClasses; ++d) x.split_mma[c][q][d] = &g_fake_kernels[i++];
      x.append[c] = &g_fake_kernels[i++];
    }
    return x;
  }();
  return &t;
}

// Size of the parameter block of a fake kernel.
inline size_t standin_param_bytes(const void *func) {
  const pa_paged_kernel_table *t = pa_paged_cuda_kernels_standin();
  if (func == t->check) return sizeof(pa_paged_seqs);
  for (int c = 0; c < pa_paged::kCacheKinds; ++c)
    if (func == t->append[c]) return sizeof(pa_paged_append_params);
  return sizeof(pa_paged_params);
}

extern "C" {
cudaError_t pa_standin_cudaLaunchKernel(const void *func, dim3 grid, dim3 block, void **args,
                                        size_t smem, cudaStream_t stream) {
  g_standin.note("cudaLaunchKernel", true);
  if (!g_standin.record_params) return cudaSuccess;
  StandinLaunch l{func, grid, block, smem, stream, {}};
  const unsigned char *p = static_cast<const unsigned char *>(args[0]);
  l.params.assign(p, p + standin_param_bytes(func));
  g_standin.launches.push_back(std::move(l));
  return cudaSuccess;
}
cudaError_t pa_standin_cudaGetLastError(void) {
  g_standin.note("cudaGetLastError", true);
  return cudaSuccess;
}
cudaError_t pa_standin_cudaPeekAtLastError(void) {
  g_standin.note("cudaPeekAtLastError", true);
  return cudaSuccess;
}
const char *pa_standin_cudaGetErrorString(cudaError_t) { return "stand-in error"; }
const char *pa_standin_cudaGetErrorName(cudaError_t) { return "cudaErrorStandin"; }
cudaError_t pa_standin_cudaGetDevice(int *device) {
  g_standin.note("cudaGetDevice", false);
  *device = 0;
  return cudaSuccess;
}
cudaError_t pa_standin_cudaSetDevice(int) {
  g_standin.note("cudaSetDevice", false);
  return cudaSuccess;
}
cudaError_t pa_standin_cudaDeviceGetAttribute(int *value, cudaDeviceAttr, int) {
  g_standin.note("cudaDeviceGetAttribute", false);
  *value = 132;
  return cudaSuccess;
}
cudaError_t pa_standin_cudaMalloc(void **p, size_t bytes) {
  g_standin.note("cudaMalloc", false);
  *p = std::malloc(bytes ? bytes : 1);
  ++g_standin.mallocs;
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t pa_standin_cudaFree(void *p) {
  g_standin.note("cudaFree", false);
  std::free(p);
  ++g_standin.frees;
  return cudaSuccess;
}
cudaError_t pa_standin_cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind) {
  g_standin.note("cudaMemcpy", false);
  std::memcpy(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t pa_standin_cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind,
                                       cudaStream_t) {
  g_standin.note("cudaMemcpyAsync", false);
  std::memcpy(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t pa_standin_cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t) {
  g_standin.note("cudaMemsetAsync", false);
  std::memset(dst, value, bytes);
  return cudaSuccess;
}
cudaError_t pa_standin_cudaStreamSynchronize(cudaStream_t) {
  g_standin.note("cudaStreamSynchronize", false);
  return cudaSuccess;
}
cudaError_t pa_standin_cudaFuncSetAttribute(const void *, cudaFuncAttribute, int) {
  g_standin.note("cudaFuncSetAttribute", false);
  return cudaSuccess;
}
}

// A plan as posattn_plan_create builds it (validation, then the backend's prepare), on the CUDA
// backend through the stand-in. PE arrays must not be used (no PE copy here).
inline posattn_status standin_plan_create(const posattn_plan_desc *desc, posattn_plan *plan,
                                          char *msg, size_t msg_size) {
  std::memset(plan, 0, sizeof *plan);
  posattn_status st = pa_validate_plan_desc(msg, msg_size, desc, plan);
  if (st != POSATTN_STATUS_SUCCESS) return st;
  plan->backend = POSATTN_BACKEND_CUDA;
  plan->device = 0;
  plan->desc = *desc;
  plan->desc.cache.k_pages = plan->desc.cache.v_pages = nullptr;
  return pa_plan_cuda_prepare_standin(plan, msg, msg_size);
}

#endif
