// cuda_run.cpp -- the CUDA backend of a plan (host/plan.h hooks pa_plan_cuda_*): plain C++ over the
// CUDA runtime API, compiled by the host compiler (no nvcc needed; kernels live in cuda_kernels.cu
// and are reached through their address table).
//
// prepare (once, synchronous): the SM count, the geometry (host.h), the PE tables built on the host
// and copied into device memory owned by the plan (cudaMalloc + one cudaMemcpy), the parameter
// templates pointing into them, and the split kernels' dynamic shared-memory attributes.
// run / append (the hot path, graph-capturable): patch the call's pointers into a template and
// cudaLaunchKernel on the context's stream -- nothing else: no allocation, copy, synchronisation,
// attribute query or device switch (the caller's current device must be the plan's, as for any
// launch into its stream). A CUDA error already pending before the launches is reported as such,
// not blamed on posattn's kernels. read_error / clear_error: synchronous, outside the hot path.
//
// Every CUDA runtime function this file calls goes through PA_CUDA(fn): the real function here,
// the recording stand-in of the capture test (tests/cpu/test_plan_capture.cpp) when compiled with
// PA_PAGED_CUDA_STANDIN, which also renames this file's entry points (*_standin) so that the test
// links next to a library that has the real ones. The test asserts that the compiled stand-in
// object references no CUDA runtime symbol directly, so nothing can bypass the list.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <new>
#include <vector>

#define PA_PF_RAW_POINTERS 1
#include <cstddef>
namespace pa {
// The kernels' pointers are raw under nvcc: the parameter fillers' pointer constructor.
template <class T>
inline T *make_gptr(T *p, size_t /*count*/, const char * /*name*/) { return p; }
}  // namespace pa

#include "paged/cuda_kernels.h"
#include "paged/host.h"

#if defined(PA_PAGED_CUDA_STANDIN)
#define PA_CUDA(fn) pa_standin_##fn
#define PA_HOOK(fn) fn##_standin
#define PA_ENTRY extern "C"
// The stand-in's declarations: the runtime's signatures under other names.
extern "C" {
cudaError_t pa_standin_cudaLaunchKernel(const void *func, dim3 grid, dim3 block, void **args,
                                        size_t smem, cudaStream_t stream);
cudaError_t pa_standin_cudaGetLastError(void);
cudaError_t pa_standin_cudaPeekAtLastError(void);
const char *pa_standin_cudaGetErrorString(cudaError_t e);
const char *pa_standin_cudaGetErrorName(cudaError_t e);
cudaError_t pa_standin_cudaGetDevice(int *device);
cudaError_t pa_standin_cudaSetDevice(int device);
cudaError_t pa_standin_cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device);
cudaError_t pa_standin_cudaMalloc(void **p, size_t bytes);
cudaError_t pa_standin_cudaFree(void *p);
cudaError_t pa_standin_cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t pa_standin_cudaMemcpyAsync(void *dst, const void *src, size_t bytes,
                                       cudaMemcpyKind kind, cudaStream_t stream);
cudaError_t pa_standin_cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t stream);
cudaError_t pa_standin_cudaStreamSynchronize(cudaStream_t stream);
cudaError_t pa_standin_cudaFuncSetAttribute(const void *func, cudaFuncAttribute attr, int value);
}
const pa_paged_kernel_table *pa_paged_cuda_kernels_standin();
#else
#define PA_CUDA(fn) fn
#define PA_HOOK(fn) fn
// Global through the CUDA part's localisation, as the other entry points (kernels/cuda_util.h).
#define PA_ENTRY extern "C" __attribute__((visibility("default")))
#endif

namespace {

// CUDA failures become statuses through the backend's one classifier (host/cuda_error.c:
// DEVICE_LOST for sticky errors, ALLOC_FAILED for allocations, else DEVICE_ERROR).
posattn_status cuda_failed(char *msg, size_t msg_size, const char *what, cudaError_t e,
                           int pending = 0) {
  char detail[160];
  std::snprintf(detail, sizeof detail, "%s (%s)", PA_CUDA(cudaGetErrorString)(e),
                PA_CUDA(cudaGetErrorName)(e));
  return pa_cuda_error_report(msg, msg_size, static_cast<int>(e), POSATTN_STATUS_DEVICE_ERROR,
                              pending, what, detail);
}
posattn_status cuda_failed(posattn_context *ctx, const char *what, cudaError_t e,
                           int pending = 0) {
  ctx->device_error = static_cast<int>(e);
  return cuda_failed(ctx->msg, PA_MSG_SIZE, what, e, pending);
}

struct CudaPlanState {
  PagedPlan P;
  void *tables = nullptr;  // device memory: the PE tables the templates point into
  const pa_paged_kernel_table *kernels = nullptr;
};

const CudaPlanState &cuda_state(const posattn_plan *plan) {
  return *static_cast<const CudaPlanState *>(plan->backend_state);
}

// Makes the plan's device current for prepare / release / the error record, and restores the
// caller's afterwards (never used on the hot path).
class DeviceScope {
 public:
  cudaError_t enter(int device) {
    cudaError_t e = PA_CUDA(cudaGetDevice)(&prev_);
    if (e != cudaSuccess || prev_ == device) return e;
    e = PA_CUDA(cudaSetDevice)(device);
    restore_ = e == cudaSuccess;
    return e;
  }
  ~DeviceScope() {
    if (restore_) PA_CUDA(cudaSetDevice)(prev_);
  }

 private:
  int prev_ = 0;
  bool restore_ = false;
};

// Launches kernel `fn` with the parameter block `params` (passed by value) on `stream`.
template <class Params>
cudaError_t launch(const void *fn, dim3 grid, size_t smem, const Params &params, cudaStream_t stream,
                   unsigned threads = pa_paged::kThreads) {
  void *args[] = {const_cast<Params *>(&params)};
  return PA_CUDA(cudaLaunchKernel)(fn, grid, dim3(threads), args, smem, stream);
}

// Before anything is launched: an earlier failure of someone else's work must not be reported as
// posattn's (and a sticky error makes every launch fail anyway).
posattn_status pending_error(posattn_context *ctx, const char *call) {
  const cudaError_t e = PA_CUDA(cudaGetLastError)();  // clears a recoverable one, as cuda_util.h
  if (e == cudaSuccess) return POSATTN_STATUS_SUCCESS;
  return cuda_failed(ctx, call, e, 1);
}

posattn_status launched(posattn_context *ctx, cudaError_t e, const char *what) {
  if (e == cudaSuccess) e = PA_CUDA(cudaGetLastError)();
  else PA_CUDA(cudaGetLastError)();  // clear the launch error that e reports
  if (e != cudaSuccess) return cuda_failed(ctx, what, e);
  return POSATTN_STATUS_SUCCESS;
}

}  // namespace

PA_ENTRY posattn_status PA_HOOK(pa_plan_cuda_prepare)(posattn_plan *plan, char *msg, size_t msg_size) {
  CudaPlanState *s = nullptr;
  try {
    s = new CudaPlanState();
  } catch (const std::bad_alloc &) {
    return pa_fail(msg, msg_size, POSATTN_STATUS_ALLOC_FAILED, "CUDA backend: out of host memory");
  }
  plan->backend_state = s;
#if defined(PA_PAGED_CUDA_STANDIN)
  s->kernels = pa_paged_cuda_kernels_standin();
#else
  s->kernels = pa_paged_cuda_kernels();
#endif
  DeviceScope scope;
  cudaError_t e = scope.enter(plan->device);
  if (e != cudaSuccess) return cuda_failed(msg, msg_size, "cudaSetDevice", e);
  int sms = 0;
  e = PA_CUDA(cudaDeviceGetAttribute)(&sms, cudaDevAttrMultiProcessorCount, plan->device);
  if (e != cudaSuccess)
    return cuda_failed(msg, msg_size, "cudaDeviceGetAttribute(cudaDevAttrMultiProcessorCount)", e);
  PagedPlan &P = s->P;
  PA_TRY(paged_geometry(plan, sms, P, msg, msg_size));
  const size_t bytes = P.pe_layout.total;
  if (bytes > 0) {
    try {
      std::vector<unsigned char> host(bytes, 0);
      PA_TRY(paged_tables_build(plan, P, host.data(), msg, msg_size));
      e = PA_CUDA(cudaMalloc)(&s->tables, bytes);
      if (e != cudaSuccess) {
        s->tables = nullptr;
        PA_CUDA(cudaGetLastError)();
        return pa_fail(msg, msg_size, POSATTN_STATUS_ALLOC_FAILED,
                       "CUDA backend: cudaMalloc of %zu bytes of PE tables: %s", bytes,
                       PA_CUDA(cudaGetErrorString)(e));
      }
      e = PA_CUDA(cudaMemcpy)(s->tables, host.data(), bytes, cudaMemcpyHostToDevice);
      if (e != cudaSuccess) return cuda_failed(msg, msg_size, "cudaMemcpy of the PE tables", e);
    } catch (const std::bad_alloc &) {
      return pa_fail(msg, msg_size, POSATTN_STATUS_ALLOC_FAILED,
                     "CUDA backend: out of host memory for %zu bytes of PE tables", bytes);
    }
  }
  paged_templates_fill(plan, P, static_cast<unsigned char *>(s->tables));
  // The attribute every launch needs, set once here so that runs never touch it.
  // Both split kernels when the plan has the tensor-core one: a run with unaligned pools takes
  // paged_split (paged_run_mma).
  if (P.split_smem > 48 * 1024) {
    e = PA_CUDA(cudaFuncSetAttribute)(s->kernels->split[P.cache_index][P.dim_cls],
                                      cudaFuncAttributeMaxDynamicSharedMemorySize, int(P.split_smem));
    if (e != cudaSuccess)
      return cuda_failed(msg, msg_size, "cudaFuncSetAttribute(paged_split, max dynamic shared memory)", e);
  }
  if (P.mma_rows > 0 && P.mma_smem > 48 * 1024) {
    e = PA_CUDA(cudaFuncSetAttribute)(s->kernels->split_mma[P.cache_index][P.q_f16][P.dim_cls],
                                      cudaFuncAttributeMaxDynamicSharedMemorySize, int(P.mma_smem));
    if (e != cudaSuccess)
      return cuda_failed(msg, msg_size,
                         "cudaFuncSetAttribute(paged_split_mma, max dynamic shared memory)", e);
  }
  plan->num_splits = P.splits;
  plan->workspace_bytes = P.total;
  return POSATTN_STATUS_SUCCESS;
}

PA_ENTRY void PA_HOOK(pa_plan_cuda_release)(posattn_plan *plan) {
  if (plan == nullptr || plan->backend_state == nullptr) return;
  CudaPlanState *s = static_cast<CudaPlanState *>(plan->backend_state);
  if (s->tables) {
    DeviceScope scope;
    if (scope.enter(plan->device) == cudaSuccess) PA_CUDA(cudaFree)(s->tables);
  }
  delete s;
  plan->backend_state = nullptr;
}

PA_ENTRY posattn_status PA_HOOK(pa_plan_cuda_run)(posattn_context *ctx, const posattn_plan *plan,
                                                  const posattn_run_args *a) {
  PA_CHECK_INTERNAL(ctx, plan && plan->backend_state && a);
  const CudaPlanState &s = cuda_state(plan);
  const PagedPlan &P = s.P;
  cudaStream_t stream = static_cast<cudaStream_t>(ctx->stream);
  PA_TRY(pending_error(ctx, "posattn_plan_run"));
  pa_paged_params k;
  paged_run_fill(k, plan, P, a);
  cudaError_t e = launch(s.kernels->check, dim3(unsigned(a->batch)), 0, k.sq, stream);
  PA_TRY(launched(ctx, e, "launch of paged_check"));
  const dim3 split_grid(unsigned(k.chunk_slots), unsigned(plan->hkv), unsigned(P.splits));
  if (k.mma_rows > 0) {  // paged_run_fill chose the tensor-core kernel
    e = launch(s.kernels->split_mma[P.cache_index][P.q_f16][P.dim_cls], split_grid, P.mma_smem, k,
               stream, unsigned(pa_decode::kMmaThreads));
    PA_TRY(launched(ctx, e, "launch of paged_split_mma"));
  } else {
    e = launch(s.kernels->split[P.cache_index][P.dim_cls], split_grid, P.split_smem, k, stream);
    PA_TRY(launched(ctx, e, "launch of paged_split"));
  }
  e = launch(s.kernels->combine, dim3(unsigned(P.combine_blocks)), 0, k, stream);
  return launched(ctx, e, "launch of paged_combine");
}

PA_ENTRY posattn_status PA_HOOK(pa_plan_cuda_append)(posattn_context *ctx, const posattn_plan *plan,
                                                     const posattn_append_args *a) {
  PA_CHECK_INTERNAL(ctx, plan && plan->backend_state && a);
  const CudaPlanState &s = cuda_state(plan);
  const PagedPlan &P = s.P;
  cudaStream_t stream = static_cast<cudaStream_t>(ctx->stream);
  PA_TRY(pending_error(ctx, "posattn_plan_append"));
  pa_paged_append_params k;
  paged_append_fill(k, plan, P, a);
  cudaError_t e = launch(s.kernels->check, dim3(unsigned(a->batch)), 0, k.sq, stream);
  PA_TRY(launched(ctx, e, "launch of paged_check"));
  e = launch(s.kernels->append[P.cache_index], dim3(unsigned(P.append_blocks)), 0, k, stream);
  return launched(ctx, e, "launch of paged_append");
}

PA_ENTRY posattn_status PA_HOOK(pa_plan_cuda_read_error)(posattn_context *ctx, const void *ws,
                                                         pa_run_error *rec) {
  DeviceScope scope;
  cudaError_t e = scope.enter(ctx->device);
  if (e != cudaSuccess) return cuda_failed(ctx, "cudaSetDevice", e);
  cudaStream_t stream = static_cast<cudaStream_t>(ctx->stream);
  e = PA_CUDA(cudaMemcpyAsync)(rec, ws, sizeof *rec, cudaMemcpyDeviceToHost, stream);
  if (e == cudaSuccess) e = PA_CUDA(cudaStreamSynchronize)(stream);
  if (e != cudaSuccess)
    return cuda_failed(ctx, "reading the workspace's error record (the stream's "
                       "work up to here failed, or the copy did)", e);
  return POSATTN_STATUS_SUCCESS;
}

PA_ENTRY posattn_status PA_HOOK(pa_plan_cuda_clear_error)(posattn_context *ctx, void *ws) {
  DeviceScope scope;
  cudaError_t e = scope.enter(ctx->device);
  if (e != cudaSuccess) return cuda_failed(ctx, "cudaSetDevice", e);
  cudaStream_t stream = static_cast<cudaStream_t>(ctx->stream);
  e = PA_CUDA(cudaMemsetAsync)(ws, 0, PA_RUN_ERROR_BYTES, stream);
  if (e == cudaSuccess) e = PA_CUDA(cudaStreamSynchronize)(stream);
  if (e != cudaSuccess) return cuda_failed(ctx, "clearing the workspace's error record", e);
  return POSATTN_STATUS_SUCCESS;
}
