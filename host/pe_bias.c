/* pe_bias.c -- the additive logit biases: ALiBi (pe-spec §3), T5 buckets (§7), KERPLE (§8.1), and
 * FIRE through its MLP (§4). posattn_pe_bias() and the REF backend share pa_pe_bias_eval(). */
#include <math.h>

#include "internal.h"

double pa_alibi_slope(int32_t n_heads, int32_t head) {
  /* c = largest power of two <= n_heads. The first c heads get 2^(-8k/c), k = 1..c; the rest take
   * the even-indexed slopes of the 2c-head sequence, 2^(-4(2k+1)/c), halfway between those. */
  int32_t c = 1;
  while (c <= n_heads / 2) c *= 2;
  if (head < c) return exp2(-8.0 * (head + 1) / c);
  return exp2(-4.0 * (2 * (head - c) + 1) / c);
}

posattn_status posattn_pe_alibi_slopes(int32_t n_heads, double *out) {
  if (!out) return pa_fail(NULL, 0, POSATTN_STATUS_NULL_POINTER, "out must not be NULL");
  if (n_heads < 1)
    return pa_fail(NULL, 0, POSATTN_STATUS_BAD_SIZE, "n_heads (%d) must be >= 1", (int)n_heads);
  for (int32_t h = 0; h < n_heads; h++) out[h] = pa_alibi_slope(n_heads, h);
  return POSATTN_STATUS_SUCCESS;
}

/* HF _relative_position_bucket, with the log-spaced buckets decided exactly: distance n reaches
 * log bucket k when n >= max_exact * (max_distance/max_exact)^(k/(nb - max_exact)). Values within
 * 1e-9 of an integer count as reaching it, so the exact powers (|rel| = 16, 32, 64 with the
 * defaults) fall in the upper bucket as the table of pe-spec §7 says, whatever libm does. fp64
 * error here is < 1e-12 because v < nb - max_exact <= 512. */
int32_t posattn_pe_t5_bucket(int64_t rel, int32_t bidirectional, int32_t num_buckets,
                             int32_t max_distance) {
  if (num_buckets < 2 || num_buckets > 1024 || (bidirectional != 0 && bidirectional != 1) ||
      (bidirectional && (num_buckets % 2 || num_buckets < 4)))
    return -1;
  int32_t nb = num_buckets, bucket = 0;
  uint64_t n;
  if (bidirectional) {
    nb /= 2;
    if (rel > 0) bucket = nb;
    n = rel < 0 ? (uint64_t)0 - (uint64_t)rel : (uint64_t)rel;
  } else {
    n = rel < 0 ? (uint64_t)0 - (uint64_t)rel : 0;
  }
  int32_t max_exact = nb / 2;
  if (max_distance <= max_exact) return -1;
  if (n < (uint64_t)max_exact) return bucket + (int32_t)n;
  if (n >= (uint64_t)max_distance || max_exact == nb - 1) return bucket + nb - 1;
  double v = log((double)n / max_exact) / log((double)max_distance / max_exact) *
             (double)(nb - max_exact);
  int32_t k = (int32_t)floor(v + 1e-9);
  if (k > nb - 1 - max_exact) k = nb - 1 - max_exact;
  return bucket + max_exact + k;
}

double pa_pe_bias_eval(const posattn_pe *pe, int32_t q_heads, int32_t head, int64_t pq,
                       int64_t pk) {
  double dist = fabs((double)pq - (double)pk);
  switch (pe->kind) {
    case POSATTN_PE_ALIBI: {
      double m = pe->alibi.slopes ? (double)pe->alibi.slopes[head] : pa_alibi_slope(q_heads, head);
      return -m * dist;
    }
    case POSATTN_PE_FIRE: {
      const posattn_fire_params *f = &pe->fire;
      return pa_fire_mlp_eval(f, q_heads, head, posattn_pe_fire_x(f->c, f->L, f->eps, pq, pk));
    }
    case POSATTN_PE_T5: {
      const posattn_t5_params *t = &pe->t5;
      /* pk - pq saturated: int64 positions far apart would overflow (found by fuzz_pe), and
       * every |rel| >= max_distance falls in the same last bucket anyway */
      int64_t rel;
      if (__builtin_sub_overflow(pk, pq, &rel)) rel = pk > pq ? INT64_MAX : -INT64_MAX;
      int32_t b = posattn_pe_t5_bucket(rel, t->bidirectional, t->num_buckets, t->max_distance);
      return (double)t->table[(int64_t)b * q_heads + head];
    }
    case POSATTN_PE_KERPLE_LOG:
      return -(double)pe->kerple.p[head] * log1p((double)pe->kerple.a[head] * dist);
    case POSATTN_PE_KERPLE_POWER:
      return dist == 0 ? 0.0 : -(double)pe->kerple.a[head] * pow(dist, (double)pe->kerple.p[head]);
    case POSATTN_PE_NONE:
    case POSATTN_PE_ROPE:
    case POSATTN_PE_XPOS: break;
  }
  return 0.0;
}

posattn_status posattn_pe_bias(const posattn_pe *pe, int32_t q_heads, int32_t head, int64_t pq,
                               int64_t pk, double *out) {
  if (!pe || !out) return pa_fail(NULL, 0, POSATTN_STATUS_NULL_POINTER, "pe and out must not be NULL");
  if (q_heads < 1)
    return pa_fail(NULL, 0, POSATTN_STATUS_BAD_SIZE, "q_heads (%d) must be >= 1", (int)q_heads);
  if (head < 0 || head >= q_heads)
    return pa_fail(NULL, 0, POSATTN_STATUS_BAD_SIZE, "head (%d) must be in [0, q_heads = %d)",
                   (int)head, (int)q_heads);
  if (pe->kind == POSATTN_PE_NONE || pe->kind == POSATTN_PE_ROPE || pe->kind == POSATTN_PE_XPOS) {
    *out = 0.0; /* no bias; their rotary parameters play no part here */
    return POSATTN_STATUS_SUCCESS;
  }
  /* head_dim does not enter the bias kinds; 2 is the smallest valid value */
  PA_TRY(pa_validate_pe(NULL, 0, pe, q_heads, 2));
  *out = pa_pe_bias_eval(pe, q_heads, head, pq, pk);
  return POSATTN_STATUS_SUCCESS;
}
