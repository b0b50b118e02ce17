// cuda_backend.cu -- the CUDA backend: posattn.h calls on an NVIDIA GPU through the prefill kernels.
//
// Compiled by nvcc into the library when CUDA is enabled (POSATTN_WITH_CUDA; kernels/sources.cmake).
// The host modules reach it through the C functions declared in host/internal.h (CUDA backend
// block); everything else in this translation unit -- the nvcc build of the device layer, the SIMT
// kernel and the chooser's inline launch -- shares names with the emulator build of the same
// source and is made local to the CUDA part before the library is linked (sources.cmake).
//
// Kernel choice: pa_prefill_choose(), the chooser the EMU backend uses, with stage_out = 0 (the
// kernels write the caller's out and lse directly; the workspace holds only the tables). The
// tensor-core kernel is the emulator build's table entry; the nvcc build may hold fewer instances
// (POSATTN_CUDA_PREFILL_INSTANCES, kernels/prefill/instances.cmake), and then the SIMT kernel runs
// the problem: pa_cuda_choose() is the one place that applies this, for supported(), the workspace
// query and forward alike. On a compute capability 9.0 device, in a build with sm_90a code
// (POSATTN_PREFILL_WGMMA, kernels/sources.cmake), the wgmma kernel (kernels/prefill/wgmma.cuh)
// takes every problem it serves (pa_kernels::wgmma::unfit).
//
// Host arrays (index arrays, PE parameters): the tables are built on the host and copied into the
// device workspace with cudaMemcpyAsync from PAGEABLE memory. For pageable sources the driver
// stages the bytes before the call returns, so the temporary host buffer may be freed at once and
// the caller may reuse its arrays as soon as forward returns (posattn.h). The cost: such a copy
// waits for earlier work on the stream, so the host does not run ahead of the GPU across calls that
// carry tables. A per-context pinned buffer guarded by an event would lift that.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <new>
#include <vector>

#include "cuda_util.h"
#include "internal.h"
#include "prefill/dispatch.h"

PA_CUDA_ENTRY posattn_status pa_cuda_probe(int device, char *why, size_t why_size) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess)
    return cuda_fail(why, why_size, POSATTN_STATUS_NO_DEVICE, "cudaGetDeviceCount", e);
  if (count == 0)
    return pa_fail(why, why_size, POSATTN_STATUS_NO_DEVICE,
                   "CUDA backend: cudaGetDeviceCount found no CUDA device");
  if (device < 0 || device >= count)
    return pa_fail(why, why_size, POSATTN_STATUS_NO_DEVICE,
                   "CUDA backend: device %d does not exist (%d CUDA device%s)", device, count,
                   count == 1 ? "" : "s");
  cudaDeviceProp prop;
  e = cudaGetDeviceProperties(&prop, device);
  if (e != cudaSuccess)
    return cuda_fail(why, why_size, POSATTN_STATUS_DEVICE_ERROR, "cudaGetDeviceProperties", e);
  if (prop.major < 8)
    return pa_fail(why, why_size, POSATTN_STATUS_NO_DEVICE,
                   "CUDA backend: device %d (%s) has compute capability %d.%d; the kernels need "
                   "8.0 (sm_80) or later", device, prop.name, prop.major, prop.minor);
  DeviceScope scope;
  e = scope.enter(device);  // creates the device's primary context: a broken driver shows here
  if (e != cudaSuccess) return cuda_fail(why, why_size, POSATTN_STATUS_DEVICE_ERROR, "cudaSetDevice", e);
  return POSATTN_STATUS_SUCCESS;
}

PA_CUDA_ENTRY int pa_cuda_mma_built(int head_dim, int in_dtype, int pe_kind) {
  return pa_kernels::mma::find(head_dim, in_dtype, pe_kind) != nullptr;
}

namespace {
// Whether `device` runs this build's sm_90a code (the wgmma kernel): compute capability 9.0 and a
// build with POSATTN_PREFILL_WGMMA (kernels/sources.cmake: 90a among the CUDA architectures).
bool runs_sm90a(int device) {
#if defined(POSATTN_PREFILL_WGMMA)
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return major == 9 && minor == 0;
#else
  (void)device;
  return false;
#endif
}

posattn_status choose(int device, const pa_problem *p, pa_prefill_kernel *kernel, size_t *bytes,
                      char *msg, size_t msg_size) {
  PA_TRY(pa_prefill_choose(p, 0, kernel, bytes, msg, msg_size));
  // The chooser judged the emulator build's instances; fall back to SIMT where nvcc built none
  // (every tensor-core head dim is within the SIMT kernel's range).
  if (*kernel == PA_PREFILL_MMA && !pa_cuda_mma_built(p->d, p->in_dtype, p->desc->pe.kind))
    *kernel = PA_PREFILL_SIMT;
#if defined(POSATTN_PREFILL_WGMMA)
  // sm_90: the wgmma kernel where it serves (its workspace: that of the MMA kernel's layout).
  if (runs_sm90a(device) && pa_kernels::wgmma::unfit(p) == nullptr) {
    *kernel = PA_PREFILL_WGMMA;
    pa_prefill_layout L;
    PA_TRY(pa_prefill_layout_make(p, 0, pa_prefill_prerotates_k(*kernel, p), &L, msg, msg_size));
    *bytes = L.total;
  }
#endif
  return POSATTN_STATUS_SUCCESS;
}
}  // namespace

PA_CUDA_ENTRY posattn_status pa_cuda_choose(int device, const pa_problem *p,
                                            size_t *workspace_bytes, char *msg, size_t msg_size) {
  pa_prefill_kernel kernel;
  return choose(device, p, &kernel, workspace_bytes, msg, msg_size);
}

PA_CUDA_ENTRY posattn_status pa_cuda_forward(posattn_context *ctx, const pa_problem *p, void *ws,
                                             size_t ws_bytes) {
  PA_CHECK_INTERNAL(ctx, p && p->q && p->k && p->v && p->out);
  pa_prefill_kernel kernel;
  size_t need;
  PA_TRY(choose(ctx->device, p, &kernel, &need, ctx->msg, PA_MSG_SIZE));
  PA_CHECK_INTERNAL(ctx, ws_bytes >= need && (need == 0 || ws != nullptr));
  pa_prefill_layout L;
  PA_TRY(pa_prefill_layout_make(p, 0, pa_prefill_prerotates_k(kernel, p), &L, ctx->msg,
                                PA_MSG_SIZE));

  PA_TRY(cuda_pending_check(ctx, "forward"));
  DeviceScope scope;
  cudaError_t e = scope.enter(ctx->device);
  if (e != cudaSuccess) return cuda_fail(ctx, "cudaSetDevice", e);
  const cudaStream_t stream = static_cast<cudaStream_t>(ctx->stream);
  unsigned char *tables = static_cast<unsigned char *>(ws) + L.tables_at;
  pa_prefill_scalars sc;
  try {
    std::vector<unsigned char> host(L.tables_bytes);
    PA_TRY(pa_prefill_tables_build(p, &L, host.data(), &sc, ctx->msg, PA_MSG_SIZE));
    if (L.tables_bytes > 0) {
      // Pageable source: staged by the driver before the call returns (see the top of the file).
      e = cudaMemcpyAsync(tables, host.data(), L.tables_bytes, cudaMemcpyHostToDevice, stream);
      if (e != cudaSuccess)
        return cuda_fail(ctx, "cudaMemcpyAsync of the kernel tables to the workspace", e);
    }
  } catch (const std::bad_alloc &) {
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_ALLOC_FAILED,
                       "CUDA backend: out of host memory for %zu bytes of kernel tables",
                       L.tables_bytes);
  }

  pa_prefill_params prm;
  pa_prefill_params_fill(prm, p, L, sc, tables,
                         p->q->data, pa_prefill_span(p, p->q, p->q_len, p->total_q, p->hq),
                         p->k->data, pa_prefill_span(p, p->k, p->kv_len, p->total_kv, p->hkv),
                         p->v->data, pa_prefill_span(p, p->v, p->kv_len, p->total_kv, p->hkv),
                         p->out->data, pa_prefill_span(p, p->out, p->q_len, p->total_q, p->hq),
                         p->out->stride_batch, p->out->stride_seq, p->out->stride_head, p->lse);
  const pa::launch_status st = pa_prefill_launch(kernel, prm, ctx->stream);
  if (!st.ok) {
    char what[96];
    std::snprintf(what, sizeof what, "%s kernel", pa_prefill_kernel_name(kernel));
    return launch_fail(ctx, what, st);
  }
  e = cudaGetLastError();
  if (e != cudaSuccess) return cuda_fail(ctx, "after the kernel launch", e);
  return POSATTN_STATUS_SUCCESS;
}
