/* ref_decode.c -- the REF backend of decode and cache append: the definition of what the
 * kernels must compute, in plain loops with fp64 arithmetic.
 *
 * Decode walks each (sequence, query token, head) row over the sequence's cache tokens through
 * the block table: logits scale*(q'.k'), softcap, + pa_pe_bias_eval; two-pass softmax with the
 * row maximum subtracted and the sink (if any) as one more term without a value; out rounded
 * once. K is rotated at its position per row (un-rotated caches) rather than cached, so the
 * workspace stays O(max cache length) however long the context. Append widens each new K row,
 * rotates it in fp64 when the cache holds rotated keys, and rounds once to the cache dtype.
 * Non-finite values follow posattn.h's NaN RULE as in ref.c (pa_ref_logit, pa_ref_poisoned_row). */
#include <math.h>
#include <stdint.h>

#include "decode.h"

/* [rotary_dim/2] inv_freq, q[d], k[d], acc[d], s[max_len] (doubles) */
size_t pa_ref_decode_workspace_size(const pa_decode_problem *p) {
  return ((size_t)(p->rotary_dim / 2) + 3 * (size_t)p->d + (size_t)p->max_len) * sizeof(double);
}

static posattn_status check_ws(posattn_context *ctx, void *ws, size_t ws_bytes, size_t need) {
  if (ws_bytes < need)
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_WORKSPACE_TOO_SMALL,
                       "workspace_bytes (%zu) must be >= %zu for the REF backend", ws_bytes, need);
  if (need > 0 && ws == NULL) return PA_CTX_FAIL(ctx, POSATTN_STATUS_NULL_POINTER, "workspace is NULL");
  return POSATTN_STATUS_SUCCESS;
}

/* One query row (sequence b, token t, head h). */
static void decode_row(const pa_decode_problem *p, const double *inv_freq, double af, double *q,
                       double *k, double *acc, double *s, int32_t b, int32_t t, int32_t h) {
  const posattn_decode_desc *D = p->desc;
  const posattn_kv_cache *c = p->cache;
  const int32_t d = p->d, len = pa_dec_len(p, b), hk = h / p->group;
  const int64_t pq = pa_dec_q_pos(p, b, t);
  const int64_t qoff = (int64_t)b * p->q->stride_batch + (int64_t)t * p->q->stride_seq +
                       (int64_t)h * p->q->stride_head;
  for (int32_t f = 0; f < d; f++) q[f] = pa_load(p->q->data, p->q->dtype, qoff + f);
  if (p->rotary_dim) pa_rope_rotate(D->pe.rope.layout, p->rotary_dim, inv_freq, af, pq, q);

  double mx = D->sink_logits ? (double)D->sink_logits[h] : -INFINITY;
  int poisoned = 0;
  for (int32_t j = 0; j < len; j++) {
    s[j] = -INFINITY;
    if (!pa_dec_visible(p, b, t, j)) continue;
    const int64_t pk = pa_dec_kv_pos(p, b, j), off = pa_dec_kv_offset(p, b, j, hk);
    for (int32_t f = 0; f < d; f++) poisoned |= !isfinite(pa_load(c->v_pages, c->dtype, off + f));
    for (int32_t f = 0; f < d; f++) k[f] = pa_load(c->k_pages, c->dtype, off + f);
    if (p->rotate_k) pa_rope_rotate(D->pe.rope.layout, p->rotary_dim, inv_freq, af, pk, k);
    double dot = 0;
    for (int32_t f = 0; f < d; f++) dot += q[f] * k[f];
    const double sc =
        pa_ref_logit(dot, p->scale, D->softcap, pa_pe_bias_eval(&D->pe, p->hq, h, pq, pk));
    poisoned |= !isfinite(sc);
    s[j] = sc;
    if (sc > mx) mx = sc;
  }
  const int64_t ooff = (int64_t)b * p->out->stride_batch + (int64_t)t * p->out->stride_seq +
                       (int64_t)h * p->out->stride_head;
  float *lse = p->lse ? &p->lse[((int64_t)b * p->hq + h) * p->n + t] : NULL;
  if (poisoned) {
    pa_ref_poisoned_row(p->out->data, p->out->dtype, ooff, d, lse);
    return;
  }

  for (int32_t f = 0; f < d; f++) acc[f] = 0;
  double sum = 0;
  if (mx > -INFINITY) { /* else no visible token and no sink: out 0, lse -inf */
    if (D->sink_logits) sum = exp((double)D->sink_logits[h] - mx);
    for (int32_t j = 0; j < len; j++) {
      if (s[j] == -INFINITY) continue;
      const double w = exp(s[j] - mx);
      sum += w;
      const int64_t off = pa_dec_kv_offset(p, b, j, hk);
      for (int32_t f = 0; f < d; f++) acc[f] += w * pa_load(c->v_pages, c->dtype, off + f);
    }
  }
  for (int32_t f = 0; f < d; f++)
    pa_store(p->out->data, p->out->dtype, ooff + f, sum > 0 ? acc[f] / sum : 0.0);
  if (lse) *lse = sum > 0 ? (float)(mx + log(sum)) : -INFINITY;
}

posattn_status pa_ref_decode(posattn_context *ctx, const pa_decode_problem *p, void *ws,
                             size_t ws_bytes) {
  PA_CHECK_INTERNAL(ctx, p && p->desc && p->cache && p->q && p->out);
  PA_TRY(check_ws(ctx, ws, ws_bytes, pa_ref_decode_workspace_size(p)));
  double *inv_freq = (double *)ws, *q = inv_freq + p->rotary_dim / 2, *k = q + p->d,
         *acc = k + p->d, *s = acc + p->d;
  double af = 1.0;
  if (p->rotary_dim) {
    /* DYNAMIC_NTK without dynamic_seq_len: the largest position in the call + 1, as prefill */
    const int64_t max_pos = p->max_q_pos > p->max_kv_pos ? p->max_q_pos : p->max_kv_pos;
    const int32_t seq_len = max_pos + 1 > INT32_MAX ? INT32_MAX : (int32_t)(max_pos + 1);
    PA_TRY(posattn_pe_rope_inv_freq(&p->desc->pe.rope, p->d, seq_len, inv_freq, &af, ctx->msg,
                                    PA_MSG_SIZE));
  }
  for (int32_t b = 0; b < p->batch; b++)
    for (int32_t t = 0; t < p->n; t++)
      for (int32_t h = 0; h < p->hq; h++) decode_row(p, inv_freq, af, q, k, acc, s, b, t, h);
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
                         pa_app_pos(p, b, t), x);
        for (int32_t f = 0; f < p->d; f++) pa_store(c->k_pages, c->dtype, dst + f, x[f]);
        for (int32_t f = 0; f < p->d; f++)
          pa_store(c->v_pages, c->dtype, dst + f, pa_load(p->v->data, p->v->dtype, vo + f));
      }
  return POSATTN_STATUS_SUCCESS;
}
