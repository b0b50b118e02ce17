// cuda_decode.cu -- decode and cache append on the CUDA backend (host/decode.h, CUDA block).
//
// The same host plan as EMU (kernels/decode/plan.h: split count, workspace layout, index arrays and
// PE tables, kernel parameters), with stage_out = 0: the combine step writes the caller's out and
// lse directly, and the workspace holds the partial results, the index arrays and the PE tables.
// The automatic split count uses the device's SM count, asked of the driver on every choice so that
// supported(), workspace_size() and decode() see the same number.
//
// Host arrays go the way of the prefill tables (kernels/cuda_backend.cu): built in a host buffer
// and copied into the device workspace with one cudaMemcpyAsync from pageable memory on the
// context's stream, which the driver stages before the call returns; the caller may reuse its
// arrays as soon as decode / append return.
#include <cuda_runtime.h>

#include <new>
#include <vector>

#include "cuda_util.h"
#include "decode/plan.h"

namespace {

// The device's SM count; on failure *device_error (when not NULL) receives the CUDA error.
posattn_status sm_count(int device, int *sms, int *device_error, char *msg, size_t msg_size) {
  const cudaError_t e = cudaDeviceGetAttribute(sms, cudaDevAttrMultiProcessorCount, device);
  if (e == cudaSuccess) return POSATTN_STATUS_SUCCESS;
  if (device_error != nullptr) *device_error = static_cast<int>(e);
  return cuda_fail(msg, msg_size, POSATTN_STATUS_DEVICE_ERROR,
                   "cudaDeviceGetAttribute(cudaDevAttrMultiProcessorCount)", e);
}

// Copies the host image of [at, at + bytes) of the workspace to the device workspace.
posattn_status upload(posattn_context *ctx, unsigned char *ws, size_t at,
                      const std::vector<unsigned char> &host) {
  if (host.empty()) return POSATTN_STATUS_SUCCESS;
  const cudaError_t e = cudaMemcpyAsync(ws + at, host.data(), host.size(), cudaMemcpyHostToDevice,
                                        static_cast<cudaStream_t>(ctx->stream));
  if (e != cudaSuccess)
    return cuda_fail(ctx, "cudaMemcpyAsync of the index arrays and PE tables to the workspace", e);
  return POSATTN_STATUS_SUCCESS;
}

posattn_status launched(posattn_context *ctx, const pa::launch_status &st, const char *what) {
  if (!st.ok) return launch_fail(ctx, what, st);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return cuda_fail(ctx, what, e);
  return POSATTN_STATUS_SUCCESS;
}

}  // namespace

PA_CUDA_ENTRY posattn_status pa_cuda_decode_choose(int device, const pa_decode_problem *p,
                                                   size_t *workspace_bytes, int *device_error,
                                                   char *msg, size_t msg_size) {
  *workspace_bytes = 0;
  int sms = 0;
  PA_TRY(sm_count(device, &sms, device_error, msg, msg_size));
  int32_t splits;
  return pa_decode_choose(p, 0, sms, &splits, workspace_bytes, msg, msg_size);
}

PA_CUDA_ENTRY posattn_status pa_cuda_decode(posattn_context *ctx, const pa_decode_problem *p,
                                            void *ws, size_t ws_bytes) {
  PA_CHECK_INTERNAL(ctx, p && p->q && p->out && p->cache);
  PA_TRY(cuda_pending_check(ctx, "decode"));
  DeviceScope scope;
  cudaError_t e = scope.enter(ctx->device);
  if (e != cudaSuccess) return cuda_fail(ctx, "cudaSetDevice", e);
  int sms = 0;
  PA_TRY(sm_count(ctx->device, &sms, &ctx->device_error, ctx->msg, PA_MSG_SIZE));
  DecodeLayout L;
  PA_TRY(decode_layout(p, 0, sms, L, ctx->msg, PA_MSG_SIZE));
  PA_CHECK_INTERNAL(ctx, ws_bytes >= L.total && ws != nullptr);
  unsigned char *w = static_cast<unsigned char *>(ws);
  pa_prefill_scalars sc;
  try {
    std::vector<unsigned char> host(L.total - L.inputs);
    PA_TRY(decode_inputs_build(p, L, host.data(), &sc, ctx->msg, PA_MSG_SIZE));
    PA_TRY(upload(ctx, w, L.inputs, host));
  } catch (const std::bad_alloc &) {
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_ALLOC_FAILED,
                       "CUDA backend: out of host memory for %zu bytes of decode tables",
                       L.total - L.inputs);
  }
  pa_decode_params k;
  decode_params_fill(k, p, L, sc, w, p->out->data, p->out->stride_batch, p->out->stride_seq,
                     p->out->stride_head, p->lse);
  return launched(ctx, pa_decode::decode_launch_any(k, p->cache->dtype, ctx->stream),
                  "decode kernels (split-KV, combine)");
}

PA_CUDA_ENTRY posattn_status pa_cuda_append(posattn_context *ctx, const pa_append_problem *p,
                                            void *ws, size_t ws_bytes) {
  PA_CHECK_INTERNAL(ctx, p && p->k && p->v && p->cache);
  PA_TRY(cuda_pending_check(ctx, "cache_append"));
  DeviceScope scope;
  cudaError_t e = scope.enter(ctx->device);
  if (e != cudaSuccess) return cuda_fail(ctx, "cudaSetDevice", e);
  AppendLayout L;
  PA_TRY(append_layout(p, L, ctx->msg, PA_MSG_SIZE));
  PA_CHECK_INTERNAL(ctx, ws_bytes >= L.total && ws != nullptr);
  unsigned char *w = static_cast<unsigned char *>(ws);
  pa_prefill_scalars sc;
  try {
    std::vector<unsigned char> host(L.total);
    PA_TRY(append_inputs_build(p, L, host.data(), &sc, ctx->msg, PA_MSG_SIZE));
    PA_TRY(upload(ctx, w, 0, host));
  } catch (const std::bad_alloc &) {
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_ALLOC_FAILED,
                       "CUDA backend: out of host memory for %zu bytes of append tables", L.total);
  }
  pa_append_params k;
  append_params_fill(k, p, L, sc, w);
  return launched(ctx, pa_decode::append_launch(k, p->cache->dtype, ctx->stream), "cache_append kernel");
}
