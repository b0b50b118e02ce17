// The EMU backend: posattn.h attention calls run kernels/attn_simple.cu under the SIMT emulator.
#include <cmath>
#include <cstring>
#include <new>

#include "attn_simple.cu"
#include "internal.h"

namespace {

using pa_kernels::SimpleParams;

const char *pe_name(posattn_pe_kind k) {
  switch (k) {
    case POSATTN_PE_NONE: return "none";
    case POSATTN_PE_ROPE: return "rope";
    case POSATTN_PE_ALIBI: return "alibi";
    case POSATTN_PE_FIRE: return "fire";
    case POSATTN_PE_XPOS: return "xpos";
    case POSATTN_PE_T5: return "t5";
    case POSATTN_PE_KERPLE_LOG: return "kerple_log";
    case POSATTN_PE_KERPLE_POWER: return "kerple_power";
  }
  return "unknown";
}

size_t align256(size_t n) { return (n + 255) & ~size_t(255); }

// Workspace: the output and lse are staged there and copied to the caller's tensors only when the
// kernel ran clean (so a kernel fault writes nothing), followed by the fp32 PE tables.
struct Layout {
  size_t out, lse, inv_freq, slopes, total;
};
Layout layout(const pa_problem *p) {
  Layout L;
  const size_t rows = size_t(p->total_q) * size_t(p->hq);
  L.out = 0;
  L.lse = align256(rows * size_t(p->d) * posattn_dtype_size(p->out_dtype));
  L.inv_freq = L.lse + align256(rows * sizeof(float));
  L.slopes = L.inv_freq + align256(size_t(p->rotary_dim / 2) * sizeof(float));
  L.total = L.slopes + align256(size_t(p->hq) * sizeof(float));
  return L;
}

// Elements spanned by a [batch, seq, heads, d] (or packed) tensor: the buffer the kernel may touch.
size_t span(const pa_problem *p, const posattn_tensor *t, int64_t tokens_per_batch,
            int64_t total_tokens, int32_t heads) {
  if (p->varlen) {
    if (total_tokens == 0) return 0;
    return size_t((total_tokens - 1) * t->stride_seq + int64_t(heads - 1) * t->stride_head + p->d);
  }
  return size_t(int64_t(p->batch - 1) * t->stride_batch + (tokens_per_batch - 1) * t->stride_seq +
                int64_t(heads - 1) * t->stride_head + p->d);
}

template <class Tin, class Tout>
pa::launch_status run(const pa_problem *p, char *ws, const Layout &L, float attn_factor) {
  const posattn_attention_desc *D = p->desc;
  SimpleParams<Tin, Tout> k{};
  k.q = pa::make_gptr(static_cast<const Tin *>(p->q->data), span(p, p->q, p->q_len, p->total_q, p->hq), "q");
  k.k = pa::make_gptr(static_cast<const Tin *>(p->k->data), span(p, p->k, p->kv_len, p->total_kv, p->hkv), "k");
  k.v = pa::make_gptr(static_cast<const Tin *>(p->v->data), span(p, p->v, p->kv_len, p->total_kv, p->hkv), "v");
  const size_t rows = size_t(p->total_q) * size_t(p->hq);
  k.out = pa::make_gptr(reinterpret_cast<Tout *>(ws + L.out), rows * size_t(p->d), "out (staged)");
  if (p->lse) k.lse = pa::make_gptr(reinterpret_cast<float *>(ws + L.lse), rows, "lse (staged)");
  k.q_sb = p->q->stride_batch; k.q_ss = p->q->stride_seq; k.q_sh = p->q->stride_head;
  k.k_sb = p->k->stride_batch; k.k_ss = p->k->stride_seq; k.k_sh = p->k->stride_head;
  k.v_sb = p->v->stride_batch; k.v_ss = p->v->stride_seq; k.v_sh = p->v->stride_head;
  k.o_sh = p->d;
  k.o_ss = int64_t(p->hq) * p->d;
  k.o_sb = k.o_ss * p->q_len;
  k.batch = p->batch; k.hq = p->hq; k.hkv = p->hkv; k.group = p->group; k.d = p->d;
  k.q_len = p->q_len; k.kv_len = p->kv_len; k.varlen = p->varlen; k.total_q = p->total_q;
  const size_t nb = size_t(p->batch) + 1;
  if (p->varlen) {
    k.cu_q = pa::make_gptr(D->cu_seqlens_q, nb, "cu_seqlens_q");
    k.cu_kv = pa::make_gptr(D->cu_seqlens_kv, nb, "cu_seqlens_kv");
  }
  k.q_pos = pa::make_gptr(D->q_positions, size_t(p->total_q), "q_positions");
  k.kv_pos = pa::make_gptr(D->kv_positions, size_t(p->total_kv), "kv_positions");
  k.doc_ids = pa::make_gptr(D->doc_ids, size_t(p->total_q), "doc_ids");
  k.num_anchor = D->num_anchor_tokens;
  k.causal = D->causal; k.window_left = D->window_left; k.window_right = D->window_right;
  k.scale = float(p->scale);
  k.softcap = D->softcap;
  k.pe = D->pe.kind == POSATTN_PE_ROPE ? pa_kernels::kSimplePeRope
         : D->pe.kind == POSATTN_PE_ALIBI ? pa_kernels::kSimplePeAlibi : pa_kernels::kSimplePeNone;
  k.rotary_dim = p->rotary_dim;
  k.rope_gptj = D->pe.rope.layout == POSATTN_ROPE_GPTJ;
  k.rope_attn_factor = attn_factor;
  k.inv_freq = pa::make_gptr(reinterpret_cast<const float *>(ws + L.inv_freq), size_t(p->rotary_dim / 2), "inv_freq");
  k.slopes = pa::make_gptr(reinterpret_cast<const float *>(ws + L.slopes), size_t(p->hq), "slopes");
  const unsigned tiles = unsigned((p->q_len + pa_kernels::kSimpleRows - 1) / pa_kernels::kSimpleRows);
  return pa::launch("attn_simple", pa_kernels::attn_simple<Tin, Tout>,
                    dim3(tiles, unsigned(p->hq), unsigned(p->batch)), dim3(pa_kernels::kSimpleRows),
                    pa_kernels::attn_simple_smem_bytes(p->d), nullptr, k);
}

template <class Tin>
pa::launch_status run_in(const pa_problem *p, char *ws, const Layout &L, float af) {
  switch (p->out_dtype) {
    case POSATTN_DTYPE_F16: return run<Tin, pa::f16>(p, ws, L, af);
    case POSATTN_DTYPE_BF16: return run<Tin, pa::bf16>(p, ws, L, af);
    default: return run<Tin, float>(p, ws, L, af);
  }
}

}  // namespace

extern "C" posattn_status pa_emu_supported(const pa_problem *p, char *msg, size_t msg_size) {
  if (p == nullptr) return POSATTN_STATUS_SUCCESS;
  if (p->d > pa_kernels::kSimpleMaxDim)
    return pa_fail(msg, msg_size, POSATTN_STATUS_NOT_SUPPORTED,
                   "EMU backend: head_dim %d is not supported by the EMU kernel (at most %d)", p->d,
                   pa_kernels::kSimpleMaxDim);
  const posattn_pe &pe = p->desc->pe;
  if (pe.kind != POSATTN_PE_NONE && pe.kind != POSATTN_PE_ROPE && pe.kind != POSATTN_PE_ALIBI)
    return pa_fail(msg, msg_size, POSATTN_STATUS_NOT_SUPPORTED,
                   "EMU backend: desc->pe.kind %s is not implemented by the EMU kernel yet "
                   "(supported: none, rope with FAST angles, alibi)",
                   pe_name(pe.kind));
  if (pe.kind == POSATTN_PE_ROPE && pe.rope.angle_mode != POSATTN_ANGLE_FAST)
    return pa_fail(msg, msg_size, POSATTN_STATUS_NOT_SUPPORTED,
                   "EMU backend: desc->pe.rope.angle_mode EXACT is not implemented by the EMU "
                   "kernel yet (FAST only)");
  return POSATTN_STATUS_SUCCESS;
}

extern "C" size_t pa_emu_workspace_size(const pa_problem *p) { return layout(p).total; }

extern "C" posattn_status pa_emu_forward(posattn_context *ctx, const pa_problem *p, void *ws,
                                         size_t ws_bytes) {
  PA_TRY(pa_emu_supported(p, ctx->msg, PA_MSG_SIZE));
  const Layout L = layout(p);
  if (ws_bytes < L.total)
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_WORKSPACE_TOO_SMALL,
                       "workspace_bytes (%zu) must be >= %zu for the EMU backend", ws_bytes, L.total);
  if (ws == nullptr) return PA_CTX_FAIL(ctx, POSATTN_STATUS_NULL_POINTER, "workspace is NULL");
  if (reinterpret_cast<uintptr_t>(ws) % 16 != 0)
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_BAD_ALIGNMENT, "workspace must be 16-byte aligned");
  char *w = static_cast<char *>(ws);
  const posattn_pe &pe = p->desc->pe;

  float attn_factor = 1.f;
  if (pe.kind == POSATTN_PE_ROPE) {
    const int32_t half = p->rotary_dim / 2;
    double inv_freq[pa_kernels::kSimpleMaxDim / 2], af = 1.0;
    // DYNAMIC_NTK without dynamic_seq_len: the largest position id in the call + 1 (as REF)
    const int64_t max_pos = p->max_q_pos > p->max_kv_pos ? p->max_q_pos : p->max_kv_pos;
    const int32_t seq_len = max_pos + 1 > INT32_MAX ? INT32_MAX : int32_t(max_pos + 1);
    PA_TRY(posattn_pe_rope_inv_freq(&pe.rope, p->d, seq_len, inv_freq, &af, ctx->msg, PA_MSG_SIZE));
    float *f = reinterpret_cast<float *>(w + L.inv_freq);
    for (int32_t i = 0; i < half; ++i) f[i] = float(inv_freq[i]);
    attn_factor = float(af);
  }
  if (pe.kind == POSATTN_PE_ALIBI) {
    float *s = reinterpret_cast<float *>(w + L.slopes);
    if (pe.alibi.slopes) {
      for (int32_t h = 0; h < p->hq; ++h) s[h] = pe.alibi.slopes[h];
    } else {
      double *tmp = new (std::nothrow) double[size_t(p->hq)];
      if (!tmp) return PA_CTX_FAIL(ctx, POSATTN_STATUS_ALLOC_FAILED, "EMU backend: ALiBi slopes");
      posattn_status st = posattn_pe_alibi_slopes(p->hq, tmp);
      for (int32_t h = 0; st == POSATTN_STATUS_SUCCESS && h < p->hq; ++h) s[h] = float(tmp[h]);
      delete[] tmp;
      if (st != POSATTN_STATUS_SUCCESS)
        return PA_CTX_FAIL(ctx, st, "EMU backend: ALiBi slopes for %d heads", p->hq);
    }
  }

  pa::launch_status st;
  try {
    switch (p->in_dtype) {
      case POSATTN_DTYPE_F16: st = run_in<pa::f16>(p, w, L, attn_factor); break;
      case POSATTN_DTYPE_BF16: st = run_in<pa::bf16>(p, w, L, attn_factor); break;
      default: st = run_in<float>(p, w, L, attn_factor); break;
    }
  } catch (const std::bad_alloc &) {
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_ALLOC_FAILED, "EMU backend: out of host memory");
  }
  if (!st.ok) return PA_CTX_FAIL(ctx, POSATTN_STATUS_KERNEL_FAULT, "EMU: %s", st.msg);

  // The kernel ran clean: copy the staged rows to the caller's out (any strides) and lse.
  const size_t esz = posattn_dtype_size(p->out_dtype), row_bytes = size_t(p->d) * esz;
  const char *staged = w + L.out;
  for (int32_t b = 0; b < p->batch; ++b) {
    const int32_t lq = pa_q_seqlen(p, b);
    for (int32_t i = 0; i < lq; ++i)
      for (int32_t h = 0; h < p->hq; ++h) {
        const int64_t row = (pa_q_start(p, b) + i) * p->hq + h;
        std::memcpy(static_cast<char *>(p->out->data) + pa_q_offset(p, p->out, b, i, h) * int64_t(esz),
                    staged + row * int64_t(row_bytes), row_bytes);
      }
  }
  if (p->lse) std::memcpy(p->lse, w + L.lse, size_t(p->total_q) * size_t(p->hq) * sizeof(float));
  return POSATTN_STATUS_SUCCESS;
}
