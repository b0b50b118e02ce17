/* ref_decode.c -- the REF backend of decode and cache append: the definition of what the
 * kernels must compute, in plain loops with fp64 arithmetic.
 *
 * FP8 caches: every stored code is dequantised exactly, value * scale in fp64 (k_scale / v_scale
 * of its kv head); an append stores fp8(x / scale), rounded once from fp64 and saturated.
 *
 * Decode walks each (sequence, query token, head) row over the sequence's cache tokens through
 * the block table (pa_ref_paged_row, shared with the plan run of host/ref_paged.c): logits
 * scale*(q'.k'), softcap, + pa_pe_bias_eval; two-pass softmax with the row maximum subtracted and
 * the sink (if any) as one more term without a value; out rounded once. K is rotated at its
 * position per row (un-rotated caches) and the logits are recomputed in the second pass rather
 * than stored, so the workspace is O(head_dim) however long the context. Append widens each new K row,
 * rotates it in fp64 when the cache holds rotated keys, and rounds once to the cache dtype.
 * Non-finite values follow posattn.h's NaN RULE as in ref.c (pa_ref_logit, pa_ref_poisoned_row). */
#include <math.h>
#include <stdint.h>

#include "decode.h"

/* [rotary_dim/2] inv_freq, q[d], k[d], acc[d] (doubles) */
size_t pa_ref_decode_workspace_size(const pa_decode_problem *p) {
  return ((size_t)(p->rotary_dim / 2) + 3 * (size_t)p->d) * sizeof(double);
}

static posattn_status check_ws(posattn_context *ctx, void *ws, size_t ws_bytes, size_t need) {
  if (ws_bytes < need)
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_WORKSPACE_TOO_SMALL,
                       "workspace_bytes (%zu) must be >= %zu for the REF backend", ws_bytes, need);
  if (need > 0 && ws == NULL) return PA_CTX_FAIL(ctx, POSATTN_STATUS_NULL_POINTER, "workspace is NULL");
  return POSATTN_STATUS_SUCCESS;
}

/* Logit of the row's query q' (rotated) and cache token j of seq, and whether token j's value
 * row holds a non-finite element (*bad_v). k[d] is scratch. */
static double paged_logit(const pa_ref_paged_cfg *cfg, const pa_ref_paged_seq *seq,
                          const double *q, double *k, int32_t h, int64_t pq, int32_t j,
                          int *bad_v) {
  const posattn_kv_cache *c = cfg->cache;
  const int32_t d = cfg->d, hk = h / cfg->group;
  const int64_t page = seq->block_row[j / cfg->page_size];
  const int64_t off = page * c->stride_page + (int64_t)(j % cfg->page_size) * c->stride_slot +
                      (int64_t)hk * c->stride_head;
  const int64_t pk = seq->kv_pos ? seq->kv_pos[j] : j;
  const double ks = pa_cache_scale(c, 0, hk);
  *bad_v = 0;
  for (int32_t f = 0; f < d; f++) *bad_v |= !isfinite(pa_load(c->v_pages, c->dtype, off + f));
  for (int32_t f = 0; f < d; f++) k[f] = pa_load(c->k_pages, c->dtype, off + f) * ks;
  if (cfg->rotate_k)
    pa_rope_rotate(cfg->pe->rope.layout, cfg->rotary_dim, cfg->inv_freq, cfg->attn_factor, pk,
                   k + cfg->pe->rope.rotary_offset);
  double dot = 0;
  for (int32_t f = 0; f < d; f++) dot += q[f] * k[f];
  return pa_ref_logit(dot, cfg->scale, cfg->softcap,
                      pa_pe_bias_eval(cfg->pe, cfg->hq, h, pq, pk));
}

static int paged_visible(const pa_ref_paged_cfg *cfg, int64_t ia, int32_t j) {
  if (cfg->causal && j > ia) return 0;
  if (cfg->window_left >= 0 && j < ia - cfg->window_left) return 0;
  return 1;
}

void pa_ref_paged_row(const pa_ref_paged_cfg *cfg, const pa_ref_paged_seq *seq, int64_t ia,
                      int64_t pq, int32_t h, double *q, double *k, double *acc, void *out,
                      posattn_dtype out_dtype, int64_t ooff, float *lse) {
  const posattn_kv_cache *c = cfg->cache;
  const int32_t d = cfg->d, hk = h / cfg->group;
  if (cfg->rotary_dim)
    pa_rope_rotate(cfg->pe->rope.layout, cfg->rotary_dim, cfg->inv_freq, cfg->attn_factor, pq,
                   q + cfg->pe->rope.rotary_offset);
  /* pass 1: the maximum logit (the sink counts) and the NaN rule */
  const double sink = cfg->sink_logits ? (double)cfg->sink_logits[h] : -INFINITY;
  double mx = sink;
  int poisoned = 0, bad_v = 0;
  for (int32_t j = 0; j < seq->len; j++) {
    if (!paged_visible(cfg, ia, j)) continue;
    const double sc = paged_logit(cfg, seq, q, k, h, pq, j, &bad_v);
    poisoned |= bad_v | !isfinite(sc);
    if (sc > mx) mx = sc;
  }
  if (poisoned) {
    pa_ref_poisoned_row(out, out_dtype, ooff, d, lse);
    return;
  }
  /* pass 2: the same logits again (bit-identical), weights and the weighted sum of values */
  const double vs = pa_cache_scale(c, 1, hk);
  for (int32_t f = 0; f < d; f++) acc[f] = 0;
  double sum = 0;
  if (mx > -INFINITY) { /* else no visible token and no sink: out 0, lse -inf */
    if (cfg->sink_logits) sum = exp(sink - mx);
    for (int32_t j = 0; j < seq->len; j++) {
      if (!paged_visible(cfg, ia, j)) continue;
      const double w = exp(paged_logit(cfg, seq, q, k, h, pq, j, &bad_v) - mx);
      sum += w;
      const int64_t page = seq->block_row[j / cfg->page_size];
      const int64_t off = page * c->stride_page +
                          (int64_t)(j % cfg->page_size) * c->stride_slot +
                          (int64_t)hk * c->stride_head;
      for (int32_t f = 0; f < d; f++) acc[f] += w * (pa_load(c->v_pages, c->dtype, off + f) * vs);
    }
  }
  for (int32_t f = 0; f < d; f++)
    pa_store(out, out_dtype, ooff + f, sum > 0 ? acc[f] / sum : 0.0);
  if (lse) *lse = sum > 0 ? (float)(mx + log(sum)) : -INFINITY;
}

posattn_status pa_ref_decode(posattn_context *ctx, const pa_decode_problem *p, void *ws,
                             size_t ws_bytes) {
  PA_CHECK_INTERNAL(ctx, p && p->desc && p->cache && p->q && p->out);
  PA_TRY(check_ws(ctx, ws, ws_bytes, pa_ref_decode_workspace_size(p)));
  const posattn_decode_desc *D = p->desc;
  double *inv_freq = (double *)ws, *q = inv_freq + p->rotary_dim / 2, *k = q + p->d,
         *acc = k + p->d;
  double af = 1.0;
  if (p->rotary_dim) {
    /* DYNAMIC_NTK without dynamic_seq_len: the largest position in the call + 1, as prefill */
    const int64_t max_pos = p->max_q_pos > p->max_kv_pos ? p->max_q_pos : p->max_kv_pos;
    const int32_t seq_len = max_pos + 1 > INT32_MAX ? INT32_MAX : (int32_t)(max_pos + 1);
    PA_TRY(posattn_pe_rope_inv_freq(&D->pe.rope, p->d, seq_len, inv_freq, &af, ctx->msg,
                                    PA_MSG_SIZE));
  }
  const pa_ref_paged_cfg cfg = {.cache = p->cache,
                                .d = p->d,
                                .hq = p->hq,
                                .group = p->group,
                                .page_size = p->page_size,
                                .scale = p->scale,
                                .softcap = D->softcap,
                                .causal = D->causal,
                                .window_left = D->window_left,
                                .pe = &D->pe,
                                .rotary_dim = p->rotary_dim,
                                .rotate_k = p->rotate_k,
                                .inv_freq = inv_freq,
                                .attn_factor = af,
                                .sink_logits = D->sink_logits};
  for (int32_t b = 0; b < p->batch; b++) {
    const pa_ref_paged_seq seq = {D->block_table + (int64_t)b * p->mpps,
                                  D->kv_positions ? D->kv_positions + b * p->capacity : NULL,
                                  pa_dec_len(p, b)};
    for (int32_t t = 0; t < p->n; t++)
      for (int32_t h = 0; h < p->hq; h++) {
        const int64_t qoff = (int64_t)b * p->q->stride_batch + (int64_t)t * p->q->stride_seq +
                             (int64_t)h * p->q->stride_head;
        const int64_t ooff = (int64_t)b * p->out->stride_batch +
                             (int64_t)t * p->out->stride_seq + (int64_t)h * p->out->stride_head;
        for (int32_t f = 0; f < p->d; f++) q[f] = pa_load(p->q->data, p->q->dtype, qoff + f);
        float *lse = p->lse ? &p->lse[((int64_t)b * p->hq + h) * p->n + t] : NULL;
        pa_ref_paged_row(&cfg, &seq, (int64_t)seq.len - p->n + t, pa_dec_q_pos(p, b, t), h, q, k,
                         acc, p->out->data, p->out->dtype, ooff, lse);
      }
  }
  return POSATTN_STATUS_SUCCESS;
}

/* [rotary_dim/2] inv_freq, x[d] */
size_t pa_ref_append_workspace_size(const pa_append_problem *p) {
  return ((size_t)(p->rotary_dim / 2) + (size_t)p->d) * sizeof(double);
}

posattn_status pa_ref_append(posattn_context *ctx, const pa_append_problem *p, void *ws,
                             size_t ws_bytes) {
  PA_CHECK_INTERNAL(ctx, p && p->desc && p->cache && p->k && p->v);
  PA_TRY(check_ws(ctx, ws, ws_bytes, pa_ref_append_workspace_size(p)));
  const posattn_kv_cache *c = p->cache;
  double *inv_freq = (double *)ws, *x = inv_freq + p->rotary_dim / 2;
  double af = 1.0;
  if (p->rotary_dim)
    PA_TRY(posattn_pe_rope_inv_freq(&p->desc->pe.rope, p->d, p->max_pos + 1, inv_freq, &af,
                                    ctx->msg, PA_MSG_SIZE));
  for (int32_t b = 0; b < p->batch; b++)
    for (int32_t t = 0; t < pa_app_count(p, b); t++)
      for (int32_t h = 0; h < p->hkv; h++) {
        const int64_t dst = pa_app_offset(p, b, t, h);
        const int64_t ko = (int64_t)b * p->k->stride_batch + (int64_t)t * p->k->stride_seq +
                           (int64_t)h * p->k->stride_head;
        const int64_t vo = (int64_t)b * p->v->stride_batch + (int64_t)t * p->v->stride_seq +
                           (int64_t)h * p->v->stride_head;
        for (int32_t f = 0; f < p->d; f++) x[f] = pa_load(p->k->data, p->k->dtype, ko + f);
        if (p->rotary_dim)
          pa_rope_rotate(p->desc->pe.rope.layout, p->rotary_dim, inv_freq, af,
                         pa_app_pos(p, b, t), x + p->desc->pe.rope.rotary_offset);
        const double ks = pa_cache_scale(c, 0, h), vs = pa_cache_scale(c, 1, h);
        for (int32_t f = 0; f < p->d; f++) pa_store(c->k_pages, c->dtype, dst + f, x[f] / ks);
        for (int32_t f = 0; f < p->d; f++)
          pa_store(c->v_pages, c->dtype, dst + f, pa_load(p->v->data, p->v->dtype, vo + f) / vs);
      }
  return POSATTN_STATUS_SUCCESS;
}
