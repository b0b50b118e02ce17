// bench_decode_gpu.cu -- posattn_decode on the CUDA backend, timed by the harness's rig
// (pb_gpu_time_launch: events around one call, L2 flushed before each repetition).
#include <cuda_runtime.h>

#include <cstdio>

#include "bench_decode.h"
#include "bench_gpu.h"

namespace {

struct Dev {
  void *p = nullptr;
  ~Dev() { cudaFree(p); }
};

struct Call {
  posattn_context *ctx;
  posattn_decode_desc desc;
  posattn_kv_cache cache;
  posattn_tensor q, out;
  void *ws;
  size_t ws_bytes;
};

int launch(void *stream, void *user, char *msg, size_t msg_size) {
  Call &c = *static_cast<Call *>(user);
  posattn_status rc = posattn_context_set_stream(c.ctx, stream);
  if (rc == POSATTN_STATUS_SUCCESS)
    rc = posattn_decode(c.ctx, &c.desc, &c.cache, &c.q, &c.out, nullptr, c.ws, c.ws_bytes);
  if (rc == POSATTN_STATUS_SUCCESS) return PB_RUN_OK;
  snprintf(msg, msg_size, "%s: %s", posattn_status_string(rc), posattn_context_last_message(c.ctx));
  return rc == POSATTN_STATUS_NOT_SUPPORTED ? PB_RUN_SKIP : PB_RUN_ERROR;
}

}  // namespace

extern "C" int pb_gpu_time_decode(const pb_decode_problem *p, int empty, const pb_time_opts *o,
                                  pb_stats *st, char *msg, size_t msg_size) {
  Call c{};
  if (posattn_context_create(POSATTN_BACKEND_CUDA, 0, &c.ctx) != POSATTN_STATUS_SUCCESS) {
    snprintf(msg, msg_size, "posattn CUDA context could not be created");
    return PB_RUN_ERROR;
  }
  int rc = PB_RUN_ERROR;
  Dev k, v, q, out, ws, scale;
  c.desc = p->desc;
  if (empty) {
    c.desc.cache_lens = p->empty_lens;
    c.desc.num_splits = p->auto_splits;
  }
  c.cache = p->cache;
  cudaError_t e = cudaMalloc(&k.p, p->pool_bytes);
  if (e == cudaSuccess) e = cudaMalloc(&v.p, p->pool_bytes);
  if (e == cudaSuccess) e = cudaMalloc(&q.p, p->q_bytes);
  if (e == cudaSuccess) e = cudaMalloc(&out.p, p->q_bytes);
  if (e == cudaSuccess) e = cudaMemcpy(k.p, p->k_pages, p->pool_bytes, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(v.p, p->v_pages, p->pool_bytes, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(q.p, p->q, p->q_bytes, cudaMemcpyHostToDevice);
  if (e == cudaSuccess && p->cache.k_scale) { /* FP8: the scale is device memory too */
    e = cudaMalloc(&scale.p, sizeof(float));
    if (e == cudaSuccess) e = cudaMemcpy(scale.p, &p->scale, sizeof(float), cudaMemcpyHostToDevice);
  }
  if (e != cudaSuccess) {
    snprintf(msg, msg_size, "device buffers: %s", cudaGetErrorString(e));
  } else {
    c.cache.k_pages = k.p;
    c.cache.v_pages = v.p;
    if (p->cache.k_scale) c.cache.k_scale = c.cache.v_scale = static_cast<const float *>(scale.p);
    posattn_tensor_init_contiguous(&c.q, q.p, p->q_dtype, 1, c.desc.q_heads, c.desc.head_dim);
    posattn_tensor_init_contiguous(&c.out, out.p, p->q_dtype, 1, c.desc.q_heads, c.desc.head_dim);
    const posattn_status s =
        posattn_decode_workspace_size(c.ctx, &c.desc, &c.cache, p->q_dtype, p->q_dtype, &c.ws_bytes);
    if (s != POSATTN_STATUS_SUCCESS) {
      snprintf(msg, msg_size, "%s", posattn_context_last_message(c.ctx));
      rc = s == POSATTN_STATUS_NOT_SUPPORTED ? PB_RUN_SKIP : PB_RUN_ERROR;
    } else if (c.ws_bytes && (e = cudaMalloc(&ws.p, c.ws_bytes)) != cudaSuccess) {
      snprintf(msg, msg_size, "workspace: %s", cudaGetErrorString(e));
    } else {
      c.ws = ws.p;
      rc = pb_gpu_time_launch(o, launch, &c, st, msg, msg_size);
    }
  }
  posattn_context_destroy(c.ctx);
  return rc;
}
