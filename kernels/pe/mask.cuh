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
//   doc_keys(i0, i1, lo, hi)     keys [lo, hi) of the documents of rows [i0, i1) (binary search)
//
// Overflow: windows may be anything up to INT32_MAX (-1 = unbounded). i' +- window is formed in
// int64 and clamped to int once per row (key_range); the tile bounds, computed once per block or
// tile, use int64 too.
//
// Non-finite values (posattn.h, NaN RULE): logit_or_nan() turns +-inf logits into NaN so that a
// visible infinite logit can never pass for a masked one (-inf); max_nan() is a row maximum that
// keeps NaN (fmaxf drops it).
#ifndef POSATTN_PE_MASK_CUH
#define POSATTN_PE_MASK_CUH

#include "prefill/params.h"

namespace pa_pe {

// x for finite x, NaN for +-inf and NaN (x * 0 is NaN exactly then; one FFMA).
PA_DEVICE float logit_or_nan(float x) { return fmaf(x, 0.f, x); }
// Whether x is neither an infinity nor a NaN.
PA_DEVICE bool is_finite(float x) { return fabsf(x) < INFINITY; }
// max(a, b), NaN when either is NaN.
PA_DEVICE float max_nan(float a, float b) { return a != a || b != b ? a + b : fmaxf(a, b); }

// Keys [first, last] (inclusive) that aligned query position ia may see by causal / window. The
// window bounds are formed in int64 and clamped to int, so windows up to INT32_MAX cannot wrap
// (wider than the sequence = unbounded). Kernels compute it once per row, outside the key loops.
PA_DEVICE void key_range(int ia, int causal, int window_left, int window_right, int &first,
                         int &last) {
  first = window_left >= 0 ? int(pa::max(int64_t(ia) - window_left, int64_t(-1))) : -1;
  last = INT32_MAX;
  if (window_right >= 0) last = int(pa::min(int64_t(ia) + window_right, int64_t(INT32_MAX)));
  if (causal) last = pa::min(last, ia);
}
// Whether key j is inside the causal / window limits of aligned query position ia.
PA_DEVICE bool in_window(int ia, int j, int causal, int window_left, int window_right) {
  int first, last;
  key_range(ia, causal, window_left, window_right, first, last);
  return j >= first && j <= last;
}

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

  // Keys [first, last] row i may see by causal / window (key_range).
  PA_DEVICE void row_keys(int i, int &first, int &last) const {
    key_range(i + shift, p->causal, p->window_left, p->window_right, first, last);
  }
  // The per-element rule for a row whose row_keys are [first, last]; doc_i = q_doc(i), both
  // hoisted by the caller.
  PA_DEVICE bool visible(int first, int last, int j, int32_t doc_i) const {
    if (j < first || j > last) return false;
    if (p->doc_ids && j >= p->num_anchor && kv_doc(j) != doc_i) return false;
    return true;
  }

  // Keys [lo, hi) that rows [i0, i1) (non-empty, inside the sequence) may see by causal/window.
  PA_DEVICE void kv_bounds(int i0, int i1, int &lo, int &hi) const {
    int64_t l = 0, h = Lk;
    const int64_t first = int64_t(i0) + shift, last = int64_t(i1) - 1 + shift;
    if (p->window_left >= 0) l = pa::max(l, first - p->window_left);
    if (p->causal) h = pa::min(h, last + 1);
    if (p->window_right >= 0) h = pa::min(h, last + p->window_right + 1);
    lo = int(pa::min(l, int64_t(Lk)));
    hi = int(pa::max(h, int64_t(lo)));
  }

  // Keys [lo, hi) of the documents of rows [i0, i1) (non-empty, inside the sequence); [0, Lk)
  // without documents. Documents are contiguous with non-decreasing ids and mean self-attention
  // (query i is key i), so two binary searches over kv_doc find them: O(log Lk) loads, for a
  // kernel to compute once per block or row, not per tile (proposed in docs/kernels.md, Issue 12
  // log, AnchorAttention proportionality; bench/sass/tile_walk.cpp checks it).
  PA_DEVICE void doc_keys(int i0, int i1, int &lo, int &hi) const {
    lo = 0;
    hi = Lk;
    if (!p->doc_ids) return;
    const int32_t d0 = q_doc(i0), d1 = q_doc(i1 - 1);
    int a = 0, z = i0;  // the first key of document d0 is in [a, z] (key i0 is in it)
    while (a < z) {
      const int m = a + (z - a) / 2;
      if (kv_doc(m) >= d0) z = m;
      else a = m + 1;
    }
    lo = a;
    a = i1;  // the first key after document d1 is in [a, z] (key i1 - 1 is in it)
    z = Lk;
    while (a < z) {
      const int m = a + (z - a) / 2;
      if (kv_doc(m) > d1) z = m;
      else a = m + 1;
    }
    hi = a;
  }

  // Whether keys [j0, j1) may be visible to rows [i0, i1) as far as documents go.
  PA_DEVICE bool tile_has_docs(int i0, int i1, int j0, int j1) const {
    if (!p->doc_ids || j0 < p->num_anchor) return true;
    return kv_doc(j1 - 1) >= q_doc(i0) && kv_doc(j0) <= q_doc(i1 - 1);
  }
};

}  // namespace pa_pe
#endif
