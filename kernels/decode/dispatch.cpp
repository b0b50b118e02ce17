// dispatch.cpp -- the decode chooser and the EMU runs of decode and cache append (host/decode.h).
//
// pa_decode_choose() is the one place that decides whether the decode kernels serve a problem,
// how many KV splits run, and how the workspace is laid out (kernels/decode/plan.h);
// posattn_decode_supported(), posattn_decode_workspace_size() and posattn_decode() all reach it
// (host/decode.c) on EMU (stage_out = 1, nominal SM count) and on CUDA (stage_out = 0, the device's
// SM count; kernels/decode/cuda_decode.cu), so they cannot disagree.
#include <cstdint>
#include <cstring>
#include <new>

#include "decode/plan.h"

namespace {

posattn_status check_ws(posattn_context *ctx, void *ws, size_t ws_bytes, size_t need) {
  if (ws_bytes < need)
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_WORKSPACE_TOO_SMALL,
                       "workspace_bytes (%zu) must be >= %zu for the EMU backend", ws_bytes, need);
  if (need > 0 && ws == nullptr) return PA_CTX_FAIL(ctx, POSATTN_STATUS_NULL_POINTER, "workspace is NULL");
  return POSATTN_STATUS_SUCCESS;
}

}  // namespace

// The split count of decode_split (16-row blocks), for the paged plan's chunks; the decode chooser
// (pa_decode_choose, also what posattn-bench asks) sizes each kernel's own count (auto_splits in
// plan.h).
extern "C" int32_t pa_decode_auto_splits(int32_t batch, int32_t kv_heads, int32_t rows_per_kv_head,
                                         int32_t max_len, int sms) {
  return auto_splits(batch, kv_heads, (int64_t(rows_per_kv_head) + pa_decode::kRows - 1) / pa_decode::kRows,
                     max_len, sms);
}

// FIRE needs no range rule here: its compiled segments are exact for every x >= 0
// (host/pe_fire.c), so keys far after their query are served like any other.
extern "C" posattn_status pa_decode_choose(const pa_decode_problem *p, int stage_out, int sms,
                                           int32_t *num_splits, size_t *workspace_bytes, char *msg,
                                           size_t msg_size) {
  *num_splits = 0;
  *workspace_bytes = 0;
  if (p->d > pa_decode::kMaxDim)
    return pa_fail(msg, msg_size, POSATTN_STATUS_NOT_SUPPORTED,
                   "no decode kernel for head_dim %d: the decode kernel takes head_dim <= %d", p->d,
                   pa_decode::kMaxDim);
  DecodeLayout L;
  PA_TRY(decode_layout(p, stage_out, sms, L, msg, msg_size));
  *num_splits = L.splits;
  *workspace_bytes = L.total;
  return POSATTN_STATUS_SUCCESS;
}

extern "C" posattn_status pa_decode_emu_choose(const pa_decode_problem *p, size_t *workspace_bytes,
                                               char *msg, size_t msg_size) {
  int32_t splits;
  return pa_decode_choose(p, 1, PA_DECODE_NOMINAL_SMS, &splits, workspace_bytes, msg, msg_size);
}

extern "C" posattn_status pa_decode_emu_run(posattn_context *ctx, const pa_decode_problem *p,
                                            void *ws, size_t ws_bytes) {
  PA_CHECK_INTERNAL(ctx, p && p->q && p->out && p->cache);
  DecodeLayout L;
  PA_TRY(pa_decode_emu_choose(p, &L.total, ctx->msg, PA_MSG_SIZE));
  PA_TRY(check_ws(ctx, ws, ws_bytes, L.total));
  PA_TRY(decode_layout(p, 1, PA_DECODE_NOMINAL_SMS, L, ctx->msg, PA_MSG_SIZE));
  unsigned char *w = static_cast<unsigned char *>(ws);
  pa_prefill_scalars sc;
  PA_TRY(decode_inputs_build(p, L, w + L.inputs, &sc, ctx->msg, PA_MSG_SIZE));
  const size_t rows = size_t(p->batch) * size_t(p->n) * size_t(p->hq);
  const size_t esz_o = posattn_dtype_size(p->out_dtype);
  pa::launch_status st;
  try {
    pa_decode_params k;
    // staged out: contiguous [batch][n][hq][d]
    const int64_t o_sh = p->d, o_ss = int64_t(p->hq) * p->d, o_sb = o_ss * p->n;
    decode_params_fill(k, p, L, sc, w, w + L.out, o_sb, o_ss, o_sh,
                       p->lse ? reinterpret_cast<float *>(w + L.lse) : nullptr);
    st = pa_decode::decode_launch_any(k, p->cache->dtype, nullptr);
  } catch (const std::bad_alloc &) {
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_ALLOC_FAILED, "EMU backend: out of host memory");
  }
  if (!st.ok) return PA_CTX_FAIL(ctx, POSATTN_STATUS_KERNEL_FAULT, "EMU decode kernels: %s", st.msg);

  const size_t row_bytes = size_t(p->d) * esz_o;
  for (int32_t b = 0; b < p->batch; ++b)
    for (int32_t t = 0; t < p->n; ++t)
      for (int32_t h = 0; h < p->hq; ++h) {
        const int64_t off = int64_t(b) * p->out->stride_batch + int64_t(t) * p->out->stride_seq +
                            int64_t(h) * p->out->stride_head;
        std::memcpy(static_cast<char *>(p->out->data) + off * int64_t(esz_o),
                    w + L.out + ((size_t(b) * p->n + t) * p->hq + h) * row_bytes, row_bytes);
      }
  if (p->lse) std::memcpy(p->lse, w + L.lse, rows * sizeof(float));
  return POSATTN_STATUS_SUCCESS;
}

extern "C" posattn_status pa_append_choose(const pa_append_problem *p, size_t *workspace_bytes,
                                           char *msg, size_t msg_size) {
  AppendLayout L;
  *workspace_bytes = 0;
  PA_TRY(append_layout(p, L, msg, msg_size));
  *workspace_bytes = L.total;
  return POSATTN_STATUS_SUCCESS;
}

extern "C" posattn_status pa_append_emu_run(posattn_context *ctx, const pa_append_problem *p,
                                            void *ws, size_t ws_bytes) {
  PA_CHECK_INTERNAL(ctx, p && p->k && p->v && p->cache);
  AppendLayout L;
  PA_TRY(append_layout(p, L, ctx->msg, PA_MSG_SIZE));
  PA_TRY(check_ws(ctx, ws, ws_bytes, L.total));
  unsigned char *w = static_cast<unsigned char *>(ws);
  pa_prefill_scalars sc;
  PA_TRY(append_inputs_build(p, L, w, &sc, ctx->msg, PA_MSG_SIZE));
  pa::launch_status st;
  try {
    pa_append_params k;
    append_params_fill(k, p, L, sc, w);
    st = pa_decode::append_launch(k, p->cache->dtype, nullptr);
  } catch (const std::bad_alloc &) {
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_ALLOC_FAILED, "EMU backend: out of host memory");
  }
  // Validation guarantees every write lands in a page of the pool; a fault here is a kernel bug.
  if (!st.ok) return PA_CTX_FAIL(ctx, POSATTN_STATUS_KERNEL_FAULT, "EMU cache_append kernel: %s", st.msg);
  return POSATTN_STATUS_SUCCESS;
}
