/* decode.c -- the decode and cache-append entry points (posattn.h, "Decode and paged KV cache").
 * Same shape as api.c: validate (host/validate.c), choose, run; nothing is written to the
 * caller's outputs (or the cache) before every check has passed. */
#include <string.h>

#include "decode.h"

void posattn_kv_cache_init(posattn_kv_cache *cache, void *k_pages, void *v_pages,
                           posattn_dtype dtype, int32_t num_pages, int32_t page_size,
                           int32_t kv_heads, int32_t head_dim) {
  if (cache == NULL) return;
  memset(cache, 0, sizeof *cache);
  cache->k_pages = k_pages;
  cache->v_pages = v_pages;
  cache->dtype = dtype;
  cache->num_pages = num_pages;
  cache->page_size = page_size;
  cache->kv_heads = kv_heads;
  cache->head_dim = head_dim;
  cache->stride_head = head_dim;
  cache->stride_slot = (int64_t)kv_heads * head_dim;
  cache->stride_page = (int64_t)page_size * kv_heads * head_dim;
}

void posattn_decode_desc_init(posattn_decode_desc *desc) {
  if (desc == NULL) return;
  memset(desc, 0, sizeof *desc);
  desc->causal = 1;
  desc->window_left = -1;
  posattn_pe_init(&desc->pe);
}

void posattn_cache_append_desc_init(posattn_cache_append_desc *desc) {
  if (desc == NULL) return;
  memset(desc, 0, sizeof *desc);
  posattn_pe_init(&desc->pe);
}

/* The decode chooser per backend: kernel availability, split count and workspace. EMU and CUDA
 * share pa_decode_choose (kernels/decode/dispatch.cpp); CUDA sizes the splits by its SM count. */
static posattn_status decode_choose(posattn_context *ctx, const pa_decode_problem *p,
                                    size_t *bytes) {
  switch (ctx->backend) {
    case POSATTN_BACKEND_REF: *bytes = pa_ref_decode_workspace_size(p); return POSATTN_STATUS_SUCCESS;
    case POSATTN_BACKEND_EMU: return pa_decode_emu_choose(p, bytes, ctx->msg, PA_MSG_SIZE);
    case POSATTN_BACKEND_CUDA:
#if defined(POSATTN_WITH_CUDA)
      return pa_cuda_decode_choose(ctx->device, p, bytes, &ctx->device_error, ctx->msg,
                                   PA_MSG_SIZE);
#else
      return pa_cuda_available(ctx->device, ctx->msg, PA_MSG_SIZE);
#endif
    case POSATTN_BACKEND_AUTO: break;
  }
  return PA_CTX_FAIL(ctx, POSATTN_STATUS_INTERNAL, "context holds backend %d", (int)ctx->backend);
}

/* Append needs no device facts: one workspace layout for EMU and CUDA. */
static posattn_status append_choose(posattn_context *ctx, const pa_append_problem *p,
                                    size_t *bytes) {
  switch (ctx->backend) {
    case POSATTN_BACKEND_REF: *bytes = pa_ref_append_workspace_size(p); return POSATTN_STATUS_SUCCESS;
    case POSATTN_BACKEND_EMU: return pa_append_choose(p, bytes, ctx->msg, PA_MSG_SIZE);
    case POSATTN_BACKEND_CUDA:
#if defined(POSATTN_WITH_CUDA)
      return pa_append_choose(p, bytes, ctx->msg, PA_MSG_SIZE);
#else
      return pa_cuda_available(ctx->device, ctx->msg, PA_MSG_SIZE);
#endif
    case POSATTN_BACKEND_AUTO: break;
  }
  return PA_CTX_FAIL(ctx, POSATTN_STATUS_INTERNAL, "context holds backend %d", (int)ctx->backend);
}

/* The run on the context's backend (the chooser has accepted the problem). */
static posattn_status decode_run(posattn_context *ctx, const pa_decode_problem *p, void *ws,
                                 size_t ws_bytes) {
  switch (ctx->backend) {
    case POSATTN_BACKEND_REF: return pa_ref_decode(ctx, p, ws, ws_bytes);
    case POSATTN_BACKEND_EMU: return pa_decode_emu_run(ctx, p, ws, ws_bytes);
#if defined(POSATTN_WITH_CUDA)
    case POSATTN_BACKEND_CUDA: return pa_cuda_decode(ctx, p, ws, ws_bytes);
#endif
    default: break;
  }
  return PA_CTX_FAIL(ctx, POSATTN_STATUS_INTERNAL, "decode on backend %d", (int)ctx->backend);
}

static posattn_status append_run(posattn_context *ctx, const pa_append_problem *p, void *ws,
                                 size_t ws_bytes) {
  switch (ctx->backend) {
    case POSATTN_BACKEND_REF: return pa_ref_append(ctx, p, ws, ws_bytes);
    case POSATTN_BACKEND_EMU: return pa_append_emu_run(ctx, p, ws, ws_bytes);
#if defined(POSATTN_WITH_CUDA)
    case POSATTN_BACKEND_CUDA: return pa_cuda_append(ctx, p, ws, ws_bytes);
#endif
    default: break;
  }
  return PA_CTX_FAIL(ctx, POSATTN_STATUS_INTERNAL, "cache append on backend %d", (int)ctx->backend);
}

posattn_status posattn_decode_supported(posattn_context *ctx, const posattn_decode_desc *desc,
                                        const posattn_kv_cache *cache, posattn_dtype q_dtype,
                                        posattn_dtype out_dtype) {
  if (ctx == NULL) return POSATTN_STATUS_NULL_POINTER;
  pa_ctx_enter(ctx);
  pa_decode_problem p;
  size_t bytes = 0;
  PA_TRY(pa_validate_decode(ctx->msg, PA_MSG_SIZE, desc, cache, q_dtype, out_dtype, NULL, NULL,
                            NULL, &p));
  PA_TRY(decode_choose(ctx, &p, &bytes));
  ctx->msg[0] = '\0';
  return POSATTN_STATUS_SUCCESS;
}

posattn_status posattn_decode_workspace_size(posattn_context *ctx, const posattn_decode_desc *desc,
                                             const posattn_kv_cache *cache, posattn_dtype q_dtype,
                                             posattn_dtype out_dtype, size_t *bytes) {
  if (ctx == NULL) return POSATTN_STATUS_NULL_POINTER;
  pa_ctx_enter(ctx);
  if (bytes == NULL) return PA_CTX_FAIL(ctx, POSATTN_STATUS_NULL_POINTER, "bytes is NULL");
  *bytes = 0;
  pa_decode_problem p;
  PA_TRY(pa_validate_decode(ctx->msg, PA_MSG_SIZE, desc, cache, q_dtype, out_dtype, NULL, NULL,
                            NULL, &p));
  PA_TRY(decode_choose(ctx, &p, bytes));
  ctx->msg[0] = '\0';
  return POSATTN_STATUS_SUCCESS;
}

posattn_status posattn_decode(posattn_context *ctx, const posattn_decode_desc *desc,
                              const posattn_kv_cache *cache, const posattn_tensor *q,
                              const posattn_tensor *out, float *lse, void *workspace,
                              size_t workspace_bytes) {
  if (ctx == NULL) return POSATTN_STATUS_NULL_POINTER;
  pa_ctx_enter(ctx);
  if (q == NULL) return PA_CTX_FAIL(ctx, POSATTN_STATUS_NULL_POINTER, "q is NULL");
  if (out == NULL) return PA_CTX_FAIL(ctx, POSATTN_STATUS_NULL_POINTER, "out is NULL");
  pa_decode_problem p;
  PA_TRY(pa_validate_decode(ctx->msg, PA_MSG_SIZE, desc, cache, q->dtype, out->dtype, q, out, lse,
                            &p));
  size_t need = 0;
  PA_TRY(decode_choose(ctx, &p, &need));
  PA_TRY(pa_validate_decode_workspace(ctx->msg, PA_MSG_SIZE, &p, workspace, workspace_bytes, need));
  PA_TRY(decode_run(ctx, &p, workspace, workspace_bytes));
  ctx->msg[0] = '\0';
  return POSATTN_STATUS_SUCCESS;
}

posattn_status posattn_cache_append_workspace_size(posattn_context *ctx,
                                                   const posattn_cache_append_desc *desc,
                                                   const posattn_kv_cache *cache,
                                                   posattn_dtype in_dtype, size_t *bytes) {
  if (ctx == NULL) return POSATTN_STATUS_NULL_POINTER;
  pa_ctx_enter(ctx);
  if (bytes == NULL) return PA_CTX_FAIL(ctx, POSATTN_STATUS_NULL_POINTER, "bytes is NULL");
  *bytes = 0;
  pa_append_problem p;
  PA_TRY(pa_validate_append(ctx->msg, PA_MSG_SIZE, desc, cache, in_dtype, NULL, NULL, &p));
  PA_TRY(append_choose(ctx, &p, bytes));
  ctx->msg[0] = '\0';
  return POSATTN_STATUS_SUCCESS;
}

posattn_status posattn_cache_append(posattn_context *ctx, const posattn_cache_append_desc *desc,
                                    const posattn_kv_cache *cache, const posattn_tensor *k_new,
                                    const posattn_tensor *v_new, void *workspace,
                                    size_t workspace_bytes) {
  if (ctx == NULL) return POSATTN_STATUS_NULL_POINTER;
  pa_ctx_enter(ctx);
  if (k_new == NULL) return PA_CTX_FAIL(ctx, POSATTN_STATUS_NULL_POINTER, "k_new is NULL");
  if (v_new == NULL) return PA_CTX_FAIL(ctx, POSATTN_STATUS_NULL_POINTER, "v_new is NULL");
  pa_append_problem p;
  PA_TRY(pa_validate_append(ctx->msg, PA_MSG_SIZE, desc, cache, k_new->dtype, k_new, v_new, &p));
  size_t need = 0;
  PA_TRY(append_choose(ctx, &p, &need));
  PA_TRY(pa_validate_append_workspace(ctx->msg, PA_MSG_SIZE, &p, workspace, workspace_bytes, need));
  PA_TRY(append_run(ctx, &p, workspace, workspace_bytes));
  ctx->msg[0] = '\0';
  return POSATTN_STATUS_SUCCESS;
}
