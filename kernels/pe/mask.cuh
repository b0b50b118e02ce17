// mask.cuh -- the "mask" hook: varlen sequences, causal (bottom-right), sliding window, and
// packed documents with anchor tokens (AnchorAttention), as posattn.h defines visibility:
//   i' = i + Lk - Lq; causal: j <= i'; window: i' - wl <= j <= i' + wr;
//   documents: doc(i) == doc(j) or j < num_anchor.
// Besides the per-element rule, Seq answers tile questions so kernels skip whole KV tiles:
//   kv_bounds(i0, i1)            keys [lo, hi) any of rows [i0, i1) may see (causal, window)
//   tile_has_docs(i0, i1, j0, j1) whether keys [j0, j1) can share a document with rows [i0, i1)
//                                or hold an anchor. Documents are contiguous (doc ids
//                                non-decreasing inside a sequence), so tile ranges of doc ids
//                                decide it from four loads: a KV tile outside the query tile's
//                                documents is skipped unless it holds anchor tokens. No dense mask.
#ifndef POSATTN_PE_MASK_CUH
#define POSATTN_PE_MASK_CUH

#include "prefill/params.h"

namespace pa_pe {

// One sequence b of the batch: where its tokens are, its lengths, positions and documents.
struct Seq {
  const pa_prefill_params *p;
  int b;
  int64_t q0, k0;  // first packed token (varlen) or b * len (dense): index into position/doc arrays
  int Lq, Lk;
  int shift;       // Lk - Lq: query i is aligned with key i + shift

  PA_DEVICE Seq(const pa_prefill_params &pp, int b_) : p(&pp), b(b_) {
    if (pp.cu_q) {
      q0 = pp.cu_q[b_];
      k0 = pp.cu_kv[b_];
      Lq = int(pp.cu_q[b_ + 1] - q0);
      Lk = int(pp.cu_kv[b_ + 1] - k0);
    } else {
      q0 = int64_t(b_) * pp.q_len;
      k0 = int64_t(b_) * pp.kv_len;
      Lq = pp.q_len;
      Lk = pp.kv_len;
    }
    shift = Lk - Lq;
  }

  // Element offsets of token t, head h, feature 0.
  PA_DEVICE int64_t q_off(int64_t t, int h, int64_t sb, int64_t ss, int64_t sh) const {
    return p->cu_q ? (q0 + t) * ss + h * sh : b * sb + t * ss + h * sh;
  }
  PA_DEVICE int64_t kv_off(int64_t t, int h, int64_t sb, int64_t ss, int64_t sh) const {
    return p->cu_q ? (k0 + t) * ss + h * sh : b * sb + t * ss + h * sh;
  }
  // LSE index of row i, head h (dense [batch][hq][q_len], varlen [hq][total_q]).
  PA_DEVICE int64_t lse_index(int i, int h) const {
    return p->cu_q ? int64_t(h) * p->total_q + q0 + i : (int64_t(b) * p->hq + h) * p->q_len + i;
  }

  // Position ids (defaults: pq = i + Lk - Lq, pk = j).
  PA_DEVICE int32_t q_pos(int i) const { return p->q_pos ? int32_t(p->q_pos[q0 + i]) : i + shift; }
  PA_DEVICE int32_t kv_pos(int j) const { return p->kv_pos ? int32_t(p->kv_pos[k0 + j]) : j; }
  // Document of query row i / key j (self-attention: same tokens); 0 without documents.
  PA_DEVICE int32_t q_doc(int i) const { return p->doc_ids ? int32_t(p->doc_ids[q0 + i]) : 0; }
  PA_DEVICE int32_t kv_doc(int j) const { return p->doc_ids ? int32_t(p->doc_ids[k0 + j]) : 0; }

  // The per-element rule; doc_i = q_doc(i), hoisted by the caller.
  PA_DEVICE bool visible(int i, int j, int32_t doc_i) const {
    const int ia = i + shift;
    if (p->causal && j > ia) return false;
    if (p->window_left >= 0 && j < ia - p->window_left) return false;
    if (p->window_right >= 0 && j > ia + p->window_right) return false;
    if (p->doc_ids && j >= p->num_anchor && kv_doc(j) != doc_i) return false;
    return true;
  }

  // Keys [lo, hi) that rows [i0, i1) (non-empty, inside the sequence) may see by causal/window.
  PA_DEVICE void kv_bounds(int i0, int i1, int &lo, int &hi) const {
    lo = 0;
    hi = Lk;
    if (p->window_left >= 0) lo = pa::max(lo, i0 + shift - p->window_left);
    if (p->causal) hi = pa::min(hi, i1 - 1 + shift + 1);
    if (p->window_right >= 0) hi = pa::min(hi, i1 - 1 + shift + p->window_right + 1);
    if (hi < lo) hi = lo;
  }

  // Whether keys [j0, j1) may be visible to rows [i0, i1) as far as documents go.
  PA_DEVICE bool tile_has_docs(int i0, int i1, int j0, int j1) const {
    if (!p->doc_ids || j0 < p->num_anchor) return true;
    return kv_doc(j1 - 1) >= q_doc(i0) && kv_doc(j0) <= q_doc(i1 - 1);
  }
};

}  // namespace pa_pe
#endif
