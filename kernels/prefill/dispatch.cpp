// dispatch.cpp -- the prefill chooser and the EMU forward (dispatch.h).
#include "prefill/dispatch.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <new>

extern "C" const char *pa_prefill_kernel_name(pa_prefill_kernel k) {
  switch (k) {
    case PA_PREFILL_SIMT: return "simt";
    case PA_PREFILL_MMA: return "mma";
    case PA_PREFILL_WGMMA: return "wgmma";
    case PA_PREFILL_NONE: break;
  }
  return "none";
}

extern "C" int pa_prefill_prerotates_k(pa_prefill_kernel k, const pa_problem *p) {
  const posattn_pe &pe = p->desc->pe;
  if (pe.kind == POSATTN_PE_ROPE) return k == PA_PREFILL_MMA || k == PA_PREFILL_WGMMA;
  // xPos on the sm_90a kernel: each key transformed once, around the call's centre, where bf16
  // holds the factors (xpos_prepass_fits); otherwise the kernel transforms every K tile around its
  // block's first query.
#if defined(POSATTN_PREFILL_WGMMA)
  return k == PA_PREFILL_WGMMA && pa_kernels::wgmma::xpos_prepass_fits(p);
#else
  return 0;
#endif
}

namespace {
std::atomic<int> g_emu_target_sm{80};
}  // namespace

extern "C" int pa_prefill_set_emu_target_sm(int sm) { return g_emu_target_sm.exchange(sm); }

extern "C" posattn_status pa_prefill_choose(const pa_problem *p, int stage_out,
                                            pa_prefill_kernel *kernel, size_t *workspace_bytes,
                                            char *msg, size_t msg_size) {
  *kernel = PA_PREFILL_NONE;
  *workspace_bytes = 0;
#if defined(POSATTN_PREFILL_MMA)
  const char *why_not_mma = pa_kernels::mma::unfit(p);
#else
  const char *why_not_mma = "the tensor-core kernel is not built in";
#endif
  // stage_out: the EMU backend, whose target is g_emu_target_sm; the CUDA backend asks for sm_80
  // and re-decides for its device (cuda_backend.cu).
  const int sm = stage_out ? g_emu_target_sm.load() : 80;
#if defined(POSATTN_PREFILL_WGMMA)
  const bool wgmma_fits = sm >= 90 && pa_kernels::wgmma::unfit(p) == nullptr;
#else
  const bool wgmma_fits = false;
#endif
  if (wgmma_fits) {
    *kernel = PA_PREFILL_WGMMA;
  } else if (why_not_mma == nullptr) {
    *kernel = PA_PREFILL_MMA;
  } else if (p->d <= pa_prefill::kSimtMaxDim) {
    *kernel = PA_PREFILL_SIMT;
  } else {
    return pa_fail(msg, msg_size, POSATTN_STATUS_NOT_SUPPORTED,
                   "no prefill kernel for head_dim %d: the SIMT kernel takes head_dim <= %d and "
                   "the tensor-core kernel does not fit (%s)",
                   p->d, pa_prefill::kSimtMaxDim, why_not_mma);
  }
  pa_prefill_layout L;
  PA_TRY(pa_prefill_layout_make(p, stage_out, pa_prefill_prerotates_k(*kernel, p), &L, msg,
                                msg_size));
  *workspace_bytes = L.total;
  return POSATTN_STATUS_SUCCESS;
}

extern "C" posattn_status pa_prefill_emu_forward(posattn_context *ctx, const pa_problem *p,
                                                 void *ws, size_t ws_bytes) {
  PA_CHECK_INTERNAL(ctx, p && p->q && p->k && p->v && p->out);
  pa_prefill_kernel kernel;
  size_t need;
  PA_TRY(pa_prefill_choose(p, 1, &kernel, &need, ctx->msg, PA_MSG_SIZE));
  if (ws_bytes < need)
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_WORKSPACE_TOO_SMALL,
                       "workspace_bytes (%zu) must be >= %zu for the EMU backend", ws_bytes, need);
  if (need > 0 && ws == nullptr) return PA_CTX_FAIL(ctx, POSATTN_STATUS_NULL_POINTER, "workspace is NULL");
  if (reinterpret_cast<uintptr_t>(ws) % 16 != 0)
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_BAD_ALIGNMENT, "workspace must be 16-byte aligned");
  pa_prefill_layout L;
  PA_TRY(pa_prefill_layout_make(p, 1, pa_prefill_prerotates_k(kernel, p), &L, ctx->msg,
                                PA_MSG_SIZE));
  unsigned char *w = static_cast<unsigned char *>(ws);
  pa_prefill_scalars sc;
  PA_TRY(pa_prefill_tables_build(p, &L, w + L.tables_at, &sc, ctx->msg, PA_MSG_SIZE));

  // The kernel writes a contiguous [rows][hq][d] staging area (rows = tokens over the batch).
  const int64_t o_sh = p->d, o_ss = int64_t(p->hq) * p->d, o_sb = o_ss * p->q_len;
  const size_t rows = size_t(p->total_q) * size_t(p->hq);
  pa::launch_status st;
  try {
    pa_prefill_params prm;
    pa_prefill_params_fill(prm, p, L, sc, w + L.tables_at, p->q->data,
                           pa_prefill_span(p, p->q, p->q_len, p->total_q, p->hq), p->k->data,
                           pa_prefill_span(p, p->k, p->kv_len, p->total_kv, p->hkv), p->v->data,
                           pa_prefill_span(p, p->v, p->kv_len, p->total_kv, p->hkv), w + L.out,
                           rows * size_t(p->d), o_sb, o_ss, o_sh,
                           p->lse ? reinterpret_cast<float *>(w + L.lse) : nullptr);
    st = pa_prefill_launch(kernel, prm, nullptr);
  } catch (const std::bad_alloc &) {
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_ALLOC_FAILED, "EMU backend: out of host memory");
  }
  if (!st.ok) return PA_CTX_FAIL(ctx, POSATTN_STATUS_KERNEL_FAULT, "EMU %s kernel: %s",
                                 pa_prefill_kernel_name(kernel), st.msg);

  // The kernel ran clean: copy the staged rows to the caller's out (any strides) and lse.
  const size_t esz = posattn_dtype_size(p->out_dtype), row_bytes = size_t(p->d) * esz;
  const unsigned char *staged = w + L.out;
  for (int32_t b = 0; b < p->batch; ++b) {
    const int32_t lq = pa_q_seqlen(p, b);
    for (int32_t i = 0; i < lq; ++i)
      for (int32_t h = 0; h < p->hq; ++h) {
        const int64_t row = (pa_q_start(p, b) + i) * p->hq + h;
        std::memcpy(static_cast<char *>(p->out->data) + pa_q_offset(p, p->out, b, i, h) * int64_t(esz),
                    staged + row * int64_t(row_bytes), row_bytes);
      }
  }
  if (p->lse) std::memcpy(p->lse, w + L.lse, rows * sizeof(float));
  return POSATTN_STATUS_SUCCESS;
}
