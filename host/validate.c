/* validate.c -- the one place where caller input is checked, before any work is done.
 *
 * Every failure returns the most specific status and a message that names the argument, the rule
 * it broke, and the offending values. Host arrays named by the descriptor (cu_seqlens, position
 * ids, document ids, PE tables) are read in full here, so a backend may trust them. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define FAIL(st, ...) return pa_fail(msg, msg_size, (st), __VA_ARGS__)

/* Position ids stay below 2^30 so that position differences and the exact-angle split
 * (p = hi*B + lo) never approach the int32 / fp32-integer limits in a kernel. */
#define PA_MAX_POSITION (INT32_C(1) << 30)

/* posattn.h RANGES: the largest values whose fp32 form the kernels can use without overflow. */
#define PA_MAX_SOFTMAX_SCALE 1e30
#define PA_MAX_XPOS_LOG2_WEIGHT 64.0
#define PA_MAX_DYNAMIC_NTK_FACTOR 1048576.0 /* 2^20 */
#define PA_FIRE_RANGE 18446744073709551616.0 /* 2^64 */

static int finite_pos(double x) { return isfinite(x) && x > 0; }
static int finite_nonneg(double x) { return isfinite(x) && x >= 0; }

/* Every entry of table[n] must be finite and (> 0, or >= 0 when zero_ok). */
static posattn_status check_table(char *msg, size_t msg_size, const float *table, int64_t n,
                                  const char *name, int zero_ok) {
  if (table == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "%s is NULL", name);
  for (int64_t i = 0; i < n; ++i) {
    double x = table[i];
    if (zero_ok ? !finite_nonneg(x) : !finite_pos(x))
      FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "%s[%" PRId64 "] (%g) must be finite and %s", name, i, x,
           zero_ok ? ">= 0" : "> 0");
  }
  return POSATTN_STATUS_SUCCESS;
}

/* check_table for the fp64 RoPE tables (ext_factors, inv_freq). */
static posattn_status check_table64(char *msg, size_t msg_size, const double *table, int64_t n,
                                    const char *name, int zero_ok) {
  if (table == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "%s is NULL", name);
  for (int64_t i = 0; i < n; ++i)
    if (zero_ok ? !finite_nonneg(table[i]) : !finite_pos(table[i]))
      FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "%s[%" PRId64 "] (%g) must be finite and %s", name, i,
           table[i], zero_ok ? ">= 0" : "> 0");
  return POSATTN_STATUS_SUCCESS;
}

/* Every entry of table[n] must be finite (learned weights may have any sign). */
static posattn_status check_finite(char *msg, size_t msg_size, const float *table, int64_t n,
                                   const char *name) {
  if (table == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "%s is NULL", name);
  for (int64_t i = 0; i < n; ++i)
    if (!isfinite(table[i]))
      FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "%s[%" PRId64 "] (%g) must be finite", name, i,
           (double)table[i]);
  return POSATTN_STATUS_SUCCESS;
}

/* ---- positional-encoding parameters -------------------------------------------------------- */

posattn_status pa_validate_rope(char *msg, size_t msg_size, const posattn_rope_params *rope,
                                int32_t head_dim, const char *prefix) {
  if (rope == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "%s is NULL", prefix);
  if (head_dim < 1) FAIL(POSATTN_STATUS_BAD_SIZE, "head_dim (%d) must be >= 1", head_dim);
  if (rope->layout != POSATTN_ROPE_NEOX && rope->layout != POSATTN_ROPE_GPTJ)
    FAIL(POSATTN_STATUS_BAD_ENUM, "%s.layout (%d) is not a posattn_rope_layout value", prefix,
         (int)rope->layout);
  if (rope->scaling < POSATTN_ROPE_SCALING_NONE || rope->scaling > POSATTN_ROPE_SCALING_INV_FREQ)
    FAIL(POSATTN_STATUS_BAD_ENUM, "%s.scaling (%d) is not a posattn_rope_scaling value", prefix,
         (int)rope->scaling);
  if (rope->angle_mode != POSATTN_ANGLE_FAST && rope->angle_mode != POSATTN_ANGLE_EXACT)
    FAIL(POSATTN_STATUS_BAD_ENUM, "%s.angle_mode (%d) is not a posattn_angle_mode value", prefix,
         (int)rope->angle_mode);

  if (rope->rotary_offset < 0 || rope->rotary_offset >= head_dim)
    FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "%s.rotary_offset (%d) must be in [0, head_dim (%d))",
         prefix, rope->rotary_offset, head_dim);
  if (rope->rotary_dim < 0 || rope->rotary_dim > head_dim - rope->rotary_offset)
    FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
         "%s.rotary_dim (%d) must be in [0, head_dim (%d) - rotary_offset (%d)]", prefix,
         rope->rotary_dim, head_dim, rope->rotary_offset);
  const int32_t rd = pa_rope_dim(rope, head_dim);
  if (rd % 2 != 0) {
    if (rope->rotary_dim == 0)
      FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
           "%s.rotary_dim is 0 (= head_dim (%d) - rotary_offset (%d)), which must be even",
           prefix, head_dim, rope->rotary_offset);
    FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "%s.rotary_dim (%d) must be even", prefix, rd);
  }
  if (rope->active_pairs < 0 || rope->active_pairs > rd / 2)
    FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
         "%s.active_pairs (%d) must be in [0, rotary_dim/2 (%d)] (0 = every pair)", prefix,
         rope->active_pairs, rd / 2);
  if (!finite_nonneg(rope->mscale) || !finite_nonneg(rope->mscale_all_dim))
    FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
         "%s.mscale (%g) and mscale_all_dim (%g) must be finite and >= 0 (0 = not set)", prefix,
         rope->mscale, rope->mscale_all_dim);
  if (!finite_nonneg(rope->longrope_factor))
    FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
         "%s.longrope_factor (%g) must be finite and >= 0 (0 = max_position / "
         "original_max_position)", prefix, rope->longrope_factor);
  if (!(isfinite(rope->base) && rope->base > 1))
    FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "%s.base (%g) must be finite and > 1", prefix, rope->base);
  if (!finite_nonneg(rope->attention_factor))
    FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
         "%s.attention_factor (%g) must be 0 (method default) or finite and > 0", prefix,
         rope->attention_factor);

  const posattn_rope_scaling sc = rope->scaling;
  if (sc == POSATTN_ROPE_SCALING_LINEAR || sc == POSATTN_ROPE_SCALING_YARN) {
    if (!finite_pos(rope->factor))
      FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "%s.factor (%g) must be finite and > 0", prefix,
           rope->factor);
  }
  if (sc == POSATTN_ROPE_SCALING_NTK || sc == POSATTN_ROPE_SCALING_DYNAMIC_NTK ||
      sc == POSATTN_ROPE_SCALING_LLAMA3) {
    if (!(isfinite(rope->factor) && rope->factor >= 1))
      FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "%s.factor (%g) must be finite and >= 1 for this scaling",
           prefix, rope->factor);
  }
  if (sc == POSATTN_ROPE_SCALING_NTK || sc == POSATTN_ROPE_SCALING_DYNAMIC_NTK) {
    /* base' = base * s^(d/(d-2)) needs d > 2 */
    if (rd < 4)
      FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
           "%s.rotary_dim (%d) must be >= 4 for NTK scaling (exponent d/(d-2))", prefix, rd);
  }
  if (sc == POSATTN_ROPE_SCALING_DYNAMIC_NTK || sc == POSATTN_ROPE_SCALING_YARN ||
      sc == POSATTN_ROPE_SCALING_LLAMA3) {
    if (rope->original_max_position < 1)
      FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "%s.original_max_position (%d) must be >= 1", prefix,
           rope->original_max_position);
  }
  if (sc == POSATTN_ROPE_SCALING_DYNAMIC_NTK && !(rope->factor <= PA_MAX_DYNAMIC_NTK_FACTOR))
    FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
         "%s.factor (%g) must be <= 2^20 for DYNAMIC_NTK (s = factor * seq / original - (factor - "
         "1) cancels in fp64 beyond it)", prefix, rope->factor);
  if (sc == POSATTN_ROPE_SCALING_DYNAMIC_NTK && rope->dynamic_seq_len < 0)
    FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
         "%s.dynamic_seq_len (%d) must be >= 0 (0 = largest position id + 1)", prefix,
         rope->dynamic_seq_len);
  if (sc == POSATTN_ROPE_SCALING_YARN) {
    if (!(isfinite(rope->beta_fast) && isfinite(rope->beta_slow) && rope->beta_slow > 0 &&
          rope->beta_fast >= rope->beta_slow))  /* Kimi-K2 ships beta_fast == beta_slow == 1 */
      FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
           "%s.beta_fast (%g) and beta_slow (%g) must be finite with beta_fast >= beta_slow > 0",
           prefix, rope->beta_fast, rope->beta_slow);
    if (rope->yarn_truncate != 0 && rope->yarn_truncate != 1)
      FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "%s.yarn_truncate (%d) must be 0 or 1", prefix,
           rope->yarn_truncate);
  }
  if (sc == POSATTN_ROPE_SCALING_LLAMA3) {
    if (!(isfinite(rope->low_freq_factor) && isfinite(rope->high_freq_factor) &&
          rope->low_freq_factor > 0 && rope->high_freq_factor > rope->low_freq_factor))
      FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
           "%s.high_freq_factor (%g) and low_freq_factor (%g) must be finite with "
           "high_freq_factor > low_freq_factor > 0",
           prefix, rope->high_freq_factor, rope->low_freq_factor);
  }
  char name[96];
  if (sc == POSATTN_ROPE_SCALING_LONGROPE) {
    /* the default attention factor divides by ln(original_max_position) */
    if (rope->original_max_position < 2)
      FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
           "%s.original_max_position (%d) must be >= 2 for LONGROPE (ln of it is a divisor)",
           prefix, rope->original_max_position);
    if (rope->max_position < 0)
      FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
           "%s.max_position (%d) must be >= 0 (0 = original_max_position)", prefix,
           rope->max_position);
    snprintf(name, sizeof name, "%s.ext_factors", prefix);
    PA_TRY(check_table64(msg, msg_size, rope->ext_factors, rd / 2, name, 0));
  }
  if (sc == POSATTN_ROPE_SCALING_INV_FREQ) {
    snprintf(name, sizeof name, "%s.inv_freq", prefix);
    /* 0 = a pair that is not rotated (Gemma's proportional RoPE) */
    PA_TRY(check_table64(msg, msg_size, rope->inv_freq, rd / 2, name, 1));
  }
  return POSATTN_STATUS_SUCCESS;
}

/* rope (validated here too) and the fp32 ranges of the rotation the kernels apply (posattn.h
 * RANGES), checked on the host's fp64 table by the same function as the posattn_pe_rope_*
 * helpers; seq_len 1: DYNAMIC_NTK unscaled, its largest frequencies. */
static posattn_status check_rope_fp32(char *msg, size_t msg_size, const posattn_rope_params *rope,
                                      int32_t head_dim, const char *prefix) {
  PA_TRY(pa_validate_rope(msg, msg_size, rope, head_dim, prefix));
  double *inv = (double *)malloc(((size_t)pa_rope_dim(rope, head_dim) / 2 + 1) * sizeof(double));
  if (inv == NULL) FAIL(POSATTN_STATUS_ALLOC_FAILED, "no memory for %s's frequency check", prefix);
  const posattn_status st = pa_rope_table_checked(rope, head_dim, 1, inv, NULL, prefix, msg, msg_size);
  free(inv);
  return st;
}

posattn_status pa_validate_xpos(char *msg, size_t msg_size, const posattn_xpos_params *x) {
  if (x == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "xpos is NULL");
  if (!(isfinite(x->scale_base) && x->scale_base >= 1))
    FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
         "pe.xpos.scale_base (%g) must be finite and >= 1 (the kernels' fp32 decay per position "
         "is log2(zeta)/scale_base)",
         x->scale_base);
  if (!finite_pos(x->gamma))
    FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "pe.xpos.gamma (%g) must be finite and > 0", x->gamma);
  return POSATTN_STATUS_SUCCESS;
}

posattn_status pa_validate_pe(char *msg, size_t msg_size, const posattn_pe *pe, int32_t q_heads,
                              int32_t head_dim) {
  if (pe == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "pe is NULL");
  if (q_heads < 1) FAIL(POSATTN_STATUS_BAD_SIZE, "q_heads (%d) must be >= 1", q_heads);
  switch (pe->kind) {
    case POSATTN_PE_NONE: return POSATTN_STATUS_SUCCESS;

    case POSATTN_PE_ROPE:
      return check_rope_fp32(msg, msg_size, &pe->rope, head_dim, "pe.rope");

    case POSATTN_PE_XPOS: {
      PA_TRY(pa_validate_xpos(msg, msg_size, &pe->xpos));
      if (pe->rope.rotary_offset != 0)
        FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
             "pe.rope.rotary_offset (%d) must be 0 for XPOS (its decay weights the first "
             "rotary_dim features)", pe->rope.rotary_offset);
      return check_rope_fp32(msg, msg_size, &pe->rope, head_dim, "pe.rope");
    }

    case POSATTN_PE_ALIBI:
      /* NULL slopes select the standard geometric slopes */
      if (pe->alibi.slopes == NULL) return POSATTN_STATUS_SUCCESS;
      return check_table(msg, msg_size, pe->alibi.slopes, q_heads, "pe.alibi.slopes", 1);

    case POSATTN_PE_FIRE: {
      const posattn_fire_params *f = &pe->fire;
      if (f->mlp_width < 1 || f->mlp_width > 1024)
        FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "pe.fire.mlp_width (%d) must be in [1, 1024]",
             f->mlp_width);
      if (!(fabs(f->c) >= 1 / PA_FIRE_RANGE && fabs(f->c) <= PA_FIRE_RANGE))
        FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
             "pe.fire.c (%g) must have 2^-64 <= |c| <= 2^64 (the kernels hold c in fp32)", f->c);
      if (!(finite_pos(f->L) && f->L <= PA_FIRE_RANGE))
        FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
             "pe.fire.L (%g) must be > 0 and <= 2^64 (the kernels hold L in fp32)", f->L);
      /* The kernels' normaliser of a query at position 0 is log1pf(|c| L) + eps in fp32: it must
       * stay >= ~2^-64 so that 1/norm and x = log1p(|c| d) / norm stay finite (0 gives 0/0). */
      if (!(fabs(f->c) * f->L >= 1 / PA_FIRE_RANGE))
        FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
             "pe.fire.c (%g) and pe.fire.L (%g) must have |c| * L >= 2^-64 (the kernels' fp32 "
             "normaliser log1p(|c| max(L, pq)) would be 0 at position 0)", f->c, f->L);
      if (!finite_nonneg(f->eps))
        FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "pe.fire.eps (%g) must be finite and >= 0", f->eps);
      const int64_t w = f->mlp_width;
      PA_TRY(check_finite(msg, msg_size, f->w1, w, "pe.fire.w1"));
      PA_TRY(check_finite(msg, msg_size, f->b1, w, "pe.fire.b1"));
      PA_TRY(check_finite(msg, msg_size, f->w2, (int64_t)q_heads * w, "pe.fire.w2"));
      return check_finite(msg, msg_size, f->b2, q_heads, "pe.fire.b2");
    }

    case POSATTN_PE_T5: {
      const posattn_t5_params *t = &pe->t5;
      if (t->bidirectional != 0 && t->bidirectional != 1)
        FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "pe.t5.bidirectional (%d) must be 0 or 1",
             t->bidirectional);
      if (t->num_buckets < 2 || t->num_buckets > 1024)
        FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "pe.t5.num_buckets (%d) must be in [2, 1024]",
             t->num_buckets);
      if (t->bidirectional && (t->num_buckets % 2 != 0 || t->num_buckets < 4))
        FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
             "pe.t5.num_buckets (%d) must be even and >= 4 when bidirectional (each direction "
             "needs at least one exact bucket)",
             t->num_buckets);
      const int32_t max_exact = t->bidirectional ? t->num_buckets / 4 : t->num_buckets / 2;
      if (t->max_distance <= max_exact)
        FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
             "pe.t5.max_distance (%d) must be > max_exact (%d = num_buckets/%d)", t->max_distance,
             max_exact, t->bidirectional ? 4 : 2);
      return check_finite(msg, msg_size, t->table, (int64_t)t->num_buckets * q_heads,
                          "pe.t5.table");
    }

    case POSATTN_PE_KERPLE_LOG:
    case POSATTN_PE_KERPLE_POWER: {
      PA_TRY(check_table(msg, msg_size, pe->kerple.a, q_heads, "pe.kerple.a", 0));
      PA_TRY(check_table(msg, msg_size, pe->kerple.p, q_heads, "pe.kerple.p", 0));
      if (pe->kind == POSATTN_PE_KERPLE_POWER)
        for (int32_t h = 0; h < q_heads; ++h)
          if (pe->kerple.p[h] > 2)
            FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
                 "pe.kerple.p[%d] (%g) must be <= 2 for KERPLE_POWER", h,
                 (double)pe->kerple.p[h]);
      return POSATTN_STATUS_SUCCESS;
    }
  }
  FAIL(POSATTN_STATUS_BAD_ENUM, "pe.kind (%d) is not a posattn_pe_kind value", (int)pe->kind);
}

/* ---- descriptor ----------------------------------------------------------------------------- */

/* cu_seqlens[0..batch]: starts at 0, non-decreasing, every sequence at most max_len tokens. */
static posattn_status check_cu_seqlens(char *msg, size_t msg_size, const int32_t *cu,
                                       int32_t batch, int32_t max_len, const char *name,
                                       const char *len_name) {
  if (cu[0] != 0) FAIL(POSATTN_STATUS_BAD_SEQLENS, "desc->%s[0] (%d) must be 0", name, cu[0]);
  for (int32_t b = 0; b < batch; ++b) {
    if (cu[b + 1] < cu[b])
      FAIL(POSATTN_STATUS_BAD_SEQLENS, "desc->%s[%d] (%d) < %s[%d] (%d): must be non-decreasing",
           name, b + 1, cu[b + 1], name, b, cu[b]);
    if (cu[b + 1] - cu[b] > max_len)
      FAIL(POSATTN_STATUS_BAD_SEQLENS,
           "desc->%s: sequence %d has %d tokens (%s[%d] - %s[%d]) but desc->%s (%d), the maximum "
           "sequence length, is smaller",
           name, b, cu[b + 1] - cu[b], name, b + 1, name, b, len_name, max_len);
  }
  return POSATTN_STATUS_SUCCESS;
}

/* Scans pos[n]; every id in [0, 2^30). *max_pos receives the largest (or stays as given). */
static posattn_status check_positions(char *msg, size_t msg_size, const int32_t *pos, int64_t n,
                                      const char *name, int32_t *max_pos) {
  for (int64_t i = 0; i < n; ++i) {
    if (pos[i] < 0 || pos[i] >= PA_MAX_POSITION)
      FAIL(POSATTN_STATUS_BAD_POSITIONS, "desc->%s[%" PRId64 "] (%d) must be in [0, 2^30)", name,
           i, pos[i]);
    if (pos[i] > *max_pos) *max_pos = pos[i];
  }
  return POSATTN_STATUS_SUCCESS;
}

static posattn_status check_documents(char *msg, size_t msg_size, const pa_problem *p) {
  const posattn_attention_desc *desc = p->desc;
  if (desc->q_len != desc->kv_len)
    FAIL(POSATTN_STATUS_BAD_MASK,
         "desc->doc_ids requires self-attention: desc->q_len (%d) != desc->kv_len (%d)",
         desc->q_len, desc->kv_len);
  if (p->varlen)
    for (int32_t b = 0; b <= p->batch; ++b)
      if (desc->cu_seqlens_q[b] != desc->cu_seqlens_kv[b])
        FAIL(POSATTN_STATUS_BAD_MASK,
             "desc->doc_ids requires self-attention: desc->cu_seqlens_kv[%d] (%d) != "
             "desc->cu_seqlens_q[%d] (%d)",
             b, desc->cu_seqlens_kv[b], b, desc->cu_seqlens_q[b]);
  if (desc->num_anchor_tokens < 0 || desc->num_anchor_tokens > desc->q_len)
    FAIL(POSATTN_STATUS_BAD_MASK, "desc->num_anchor_tokens (%d) must be in [0, desc->q_len (%d)]",
         desc->num_anchor_tokens, desc->q_len);
  for (int32_t b = 0; b < p->batch; ++b) {
    const int64_t start = pa_q_start(p, b);
    const int32_t len = pa_q_seqlen(p, b);
    if (len > 0 && desc->num_anchor_tokens > len)
      FAIL(POSATTN_STATUS_BAD_MASK,
           "desc->num_anchor_tokens (%d) exceeds the length (%d) of sequence %d",
           desc->num_anchor_tokens, len, b);
    for (int32_t i = 1; i < len; ++i) {
      const int32_t prev = desc->doc_ids[start + i - 1], cur = desc->doc_ids[start + i];
      if (cur < prev)
        FAIL(POSATTN_STATUS_BAD_MASK,
             "desc->doc_ids[%" PRId64 "] (%d) < doc_ids[%" PRId64
             "] (%d) in sequence %d: document ids must be non-decreasing within a sequence",
             start + i, cur, start + i - 1, prev, b);
    }
  }
  return POSATTN_STATUS_SUCCESS;
}

/* xPos weights zeta_i^((pq - pk)/scale_base) exceed 1 for keys after their query. Bound the
 * largest such distance R this call can reach (conservatively) and require the weight to stay
 * <= 2^64 so the kernels' fp32 products cannot overflow (posattn.h RANGES). */
static posattn_status check_xpos_growth(char *msg, size_t msg_size, const pa_problem *p) {
  const posattn_attention_desc *desc = p->desc;
  int64_t R;
  if (desc->q_positions == NULL && desc->kv_positions == NULL) {
    /* pk - pq = j - i' */
    R = desc->causal ? 0 : p->q_len - 1;
    if (desc->window_right >= 0 && desc->window_right < R) R = desc->window_right;
  } else { /* largest key position minus smallest query position (default ones >= 1 - q_len) */
    int64_t min_q = 1 - (int64_t)p->q_len;
    if (desc->q_positions) {
      min_q = INT32_MAX;
      for (int64_t t = 0; t < p->total_q; ++t)
        if (desc->q_positions[t] < min_q) min_q = desc->q_positions[t];
    }
    R = p->max_kv_pos - min_q;
  }
  /* pair 0 has the smallest zeta (the fastest decay) */
  const double bits = (double)R * -pa_xpos_log_decay(&desc->pe.xpos, p->rotary_dim, 0) / log(2.0);
  if (bits > PA_MAX_XPOS_LOG2_WEIGHT)
    FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
         "pe.xpos: keys up to %" PRId64 " positions after their query make the weight "
         "zeta^((pq - pk)/scale_base) reach 2^%.0f; the kernels keep it <= 2^64 in fp32: use "
         "causal masking with default positions, window_right, a larger scale_base or gamma",
         R, bits);
  return POSATTN_STATUS_SUCCESS;
}

/* The fields every attention descriptor shares: the mask flags, softcap and the softmax scale. */
static posattn_status check_mask_and_scale(char *msg, size_t msg_size, int32_t causal,
                                           int32_t window_left, float softcap, float softmax_scale) {
  if (causal != 0 && causal != 1)
    FAIL(POSATTN_STATUS_BAD_MASK, "desc->causal (%d) must be 0 or 1", causal);
  if (window_left < -1)
    FAIL(POSATTN_STATUS_BAD_MASK, "desc->window_left (%d) must be >= -1 (-1 = unbounded)",
         window_left);
  if (!finite_nonneg(softcap))
    FAIL(POSATTN_STATUS_INVALID_ARGUMENT, "desc->softcap (%g) must be 0 (off) or finite and > 0",
         (double)softcap);
  if (!(finite_nonneg(softmax_scale) && softmax_scale <= PA_MAX_SOFTMAX_SCALE))
    FAIL(POSATTN_STATUS_INVALID_ARGUMENT,
         "desc->softmax_scale (%g) must be 0 (= 1/sqrt(head_dim)) or in (0, 1e30] (the kernels "
         "scale fp32 logits by it)",
         (double)softmax_scale);
  return POSATTN_STATUS_SUCCESS;
}

static posattn_status check_descriptor(char *msg, size_t msg_size, pa_problem *p) {
  const posattn_attention_desc *desc = p->desc;
  const struct {
    const char *name;
    int32_t value;
  } sizes[] = {{"batch", desc->batch},       {"q_heads", desc->q_heads},
               {"kv_heads", desc->kv_heads}, {"head_dim", desc->head_dim},
               {"q_len", desc->q_len},       {"kv_len", desc->kv_len}};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i)
    if (sizes[i].value < 1)
      FAIL(POSATTN_STATUS_BAD_SIZE, "desc->%s (%d) must be >= 1", sizes[i].name, sizes[i].value);
  if (desc->head_dim % 2 != 0)
    FAIL(POSATTN_STATUS_BAD_SIZE, "desc->head_dim (%d) must be even", desc->head_dim);
  if (desc->q_heads % desc->kv_heads != 0)
    FAIL(POSATTN_STATUS_BAD_SIZE, "desc->q_heads (%d) must be a multiple of desc->kv_heads (%d)",
         desc->q_heads, desc->kv_heads);

  if ((desc->cu_seqlens_q == NULL) != (desc->cu_seqlens_kv == NULL))
    FAIL(POSATTN_STATUS_BAD_SEQLENS,
         "desc->cu_seqlens_q and desc->cu_seqlens_kv must be given together (%s is NULL)",
         desc->cu_seqlens_q == NULL ? "cu_seqlens_q" : "cu_seqlens_kv");
  p->batch = desc->batch;
  p->hq = desc->q_heads;
  p->hkv = desc->kv_heads;
  p->d = desc->head_dim;
  p->q_len = desc->q_len;
  p->kv_len = desc->kv_len;
  p->group = desc->q_heads / desc->kv_heads;
  p->varlen = desc->cu_seqlens_q != NULL;
  if (p->varlen) {
    PA_TRY(check_cu_seqlens(msg, msg_size, desc->cu_seqlens_q, p->batch, p->q_len, "cu_seqlens_q",
                            "q_len"));
    PA_TRY(check_cu_seqlens(msg, msg_size, desc->cu_seqlens_kv, p->batch, p->kv_len,
                            "cu_seqlens_kv", "kv_len"));
    p->total_q = desc->cu_seqlens_q[p->batch];
    p->total_kv = desc->cu_seqlens_kv[p->batch];
  } else {
    p->total_q = (int64_t)p->batch * p->q_len;
    p->total_kv = (int64_t)p->batch * p->kv_len;
  }

  PA_TRY(check_mask_and_scale(msg, msg_size, desc->causal, desc->window_left, desc->softcap,
                              desc->softmax_scale));
  if (desc->window_right < -1)
    FAIL(POSATTN_STATUS_BAD_MASK, "desc->window_right (%d) must be >= -1 (-1 = unbounded)",
         desc->window_right);
  if (desc->doc_ids != NULL) PA_TRY(check_documents(msg, msg_size, p));

  p->scale = desc->softmax_scale > 0 ? (double)desc->softmax_scale : 1.0 / sqrt((double)p->d);

  /* The defaults are pq = i + Lk - Lq and pk = j; their largest values come from the lengths. */
  p->max_q_pos = -1;
  p->max_kv_pos = -1;
  if (!p->varlen) {
    if (desc->q_positions == NULL) p->max_q_pos = p->kv_len - 1;
    if (desc->kv_positions == NULL) p->max_kv_pos = p->kv_len - 1;
  } else {
    for (int32_t b = 0; b < p->batch; ++b) {
      const int32_t lq = pa_q_seqlen(p, b), lk = pa_kv_seqlen(p, b);
      if (desc->q_positions == NULL && lq > 0 && lk - 1 > p->max_q_pos) p->max_q_pos = lk - 1;
      if (desc->kv_positions == NULL && lk - 1 > p->max_kv_pos) p->max_kv_pos = lk - 1;
    }
  }
  if (desc->q_positions != NULL)
    PA_TRY(check_positions(msg, msg_size, desc->q_positions, p->total_q, "q_positions",
                           &p->max_q_pos));
  if (desc->kv_positions != NULL)
    PA_TRY(check_positions(msg, msg_size, desc->kv_positions, p->total_kv, "kv_positions",
                           &p->max_kv_pos));

  PA_TRY(pa_validate_pe(msg, msg_size, &desc->pe, p->hq, p->d));
  if (desc->pe.kind == POSATTN_PE_ROPE || desc->pe.kind == POSATTN_PE_XPOS)
    p->rotary_dim = pa_rope_dim(&desc->pe.rope, p->d);
  if (desc->pe.kind == POSATTN_PE_XPOS) PA_TRY(check_xpos_growth(msg, msg_size, p));
  /* sinks: one finite logit per q head, as in decode (a sink never poisons a row) */
  if (desc->sink_logits != NULL)
    PA_TRY(check_finite(msg, msg_size, desc->sink_logits, p->hq, "desc->sink_logits"));
  return POSATTN_STATUS_SUCCESS;
}

/* ---- tensors -------------------------------------------------------------------------------- */

typedef struct byte_range {
  uintptr_t lo, hi; /* [lo, hi); empty when lo == hi */
} byte_range;

typedef struct axis {
  const char *stride_name; /* "stride_seq", ...; NULL for the contiguous head_dim axis */
  const char *extent_name;
  int64_t extent, stride;
} axis;

/* Distinct (b, s, h, d) elements must have distinct offsets. Sufficient rule: with the axes of
 * extent > 1 sorted by stride, each stride is at least the span of the axes below it. Ties put
 * head_dim (stride 1, not the caller's choice) first so that the message names a caller stride.
 * *span receives the largest offset + 1 (0 for an empty tensor). */
static posattn_status check_strides(char *msg, size_t msg_size, const char *tname, axis *ax,
                                    int nax, int64_t *span) {
  for (int i = 0; i < nax; ++i)
    if (ax[i].stride < 0)
      FAIL(POSATTN_STATUS_BAD_STRIDE, "%s->%s (%" PRId64 ") must be >= 0", tname,
           ax[i].stride_name, ax[i].stride);
  for (int i = 0; i < nax; ++i)
    if (ax[i].extent == 0) { /* varlen with no tokens: nothing is addressed */
      *span = 0;
      return POSATTN_STATUS_SUCCESS;
    }
  for (int i = 1; i < nax; ++i) /* insertion sort, stable */
    for (int j = i; j > 0 && ax[j].stride < ax[j - 1].stride; --j) {
      axis t = ax[j];
      ax[j] = ax[j - 1];
      ax[j - 1] = t;
    }
  int64_t sp = 1;
  char below[128] = "";
  for (int i = 0; i < nax; ++i) {
    if (ax[i].extent == 1) continue;
    if (ax[i].stride == 0)
      FAIL(POSATTN_STATUS_BAD_STRIDE,
           "%s->%s (0) overlaps: it maps all %" PRId64 " %s to the same elements (a stride may "
           "be 0 only where the extent is 1)",
           tname, ax[i].stride_name, ax[i].extent, ax[i].extent_name);
    if (ax[i].stride < sp)
      FAIL(POSATTN_STATUS_BAD_STRIDE,
           "%s->%s (%" PRId64 ") overlaps: the axes with smaller strides (%s) span %" PRId64
           " elements, so it must be >= %" PRId64 " (distinct elements need distinct addresses)",
           tname, ax[i].stride_name, ax[i].stride, below[0] ? below : "none", sp, sp);
    int64_t add;
    if (__builtin_mul_overflow(ax[i].extent - 1, ax[i].stride, &add) ||
        __builtin_add_overflow(sp, add, &sp))
      FAIL(POSATTN_STATUS_BAD_STRIDE,
           "%s: the largest element offset overflows int64 (%s = %" PRId64 ", %s = %" PRId64 ")",
           tname, ax[i].stride_name ? ax[i].stride_name : "head_dim stride", ax[i].stride,
           ax[i].extent_name, ax[i].extent);
    size_t used = strlen(below);
    snprintf(below + used, sizeof below - used, "%s%s", used ? ", " : "", ax[i].extent_name);
  }
  *span = sp;
  return POSATTN_STATUS_SUCCESS;
}

/* Byte range [data, data + span*esize) without wrapping the address space. */
static posattn_status to_range(char *msg, size_t msg_size, const char *tname, const void *data,
                               int64_t span, size_t esize, byte_range *r) {
  uint64_t bytes;
  uintptr_t hi;
  if (__builtin_mul_overflow((uint64_t)span, (uint64_t)esize, &bytes) ||
      __builtin_add_overflow((uintptr_t)data, bytes, &hi))
    FAIL(POSATTN_STATUS_BAD_STRIDE, "%s: %" PRId64 " elements from %p overflow the address space",
         tname, span, data);
  r->lo = (uintptr_t)data;
  r->hi = hi;
  return POSATTN_STATUS_SUCCESS;
}

/* The four axes of q/out (is_q) or k/v; the batch axis only for dense problems. */
static int tensor_axes(const pa_problem *p, const posattn_tensor *t, int is_q, axis ax[4]) {
  int n = 0;
  ax[n++] = (axis){NULL, "head_dim", p->d, 1};
  ax[n++] = (axis){"stride_head", is_q ? "q_heads" : "kv_heads", is_q ? p->hq : p->hkv,
                   t->stride_head};
  if (p->varlen) {
    ax[n++] = (axis){"stride_seq", is_q ? "total_q tokens" : "total_kv tokens",
                     is_q ? p->total_q : p->total_kv, t->stride_seq};
  } else {
    ax[n++] = (axis){"stride_seq", is_q ? "q_len" : "kv_len", is_q ? p->q_len : p->kv_len,
                     t->stride_seq};
    ax[n++] = (axis){"stride_batch", "batch", p->batch, t->stride_batch};
  }
  return n;
}

static posattn_status check_tensor(char *msg, size_t msg_size, const pa_problem *p,
                                   const char *tname, const posattn_tensor *t, int is_q,
                                   posattn_dtype want, const char *want_name, byte_range *r) {
  if (t == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "%s is NULL", tname);
  if (t->data == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "%s->data is NULL", tname);
  const size_t esize = posattn_dtype_size(t->dtype);
  if (esize == 0)
    FAIL(POSATTN_STATUS_BAD_ENUM, "%s->dtype (%d) is not a posattn_dtype value", tname,
         (int)t->dtype);
  if (t->dtype != want)
    FAIL(POSATTN_STATUS_BAD_DTYPE, "%s->dtype (%s) must equal %s (%s)", tname,
         posattn_dtype_string(t->dtype), want_name, posattn_dtype_string(want));
  if ((uintptr_t)t->data % esize != 0)
    FAIL(POSATTN_STATUS_BAD_ALIGNMENT,
         "%s->data (%p) must be aligned to its element size (%zu bytes)", tname, t->data, esize);
  axis ax[4];
  const int nax = tensor_axes(p, t, is_q, ax);
  int64_t span;
  PA_TRY(check_strides(msg, msg_size, tname, ax, nax, &span));
  return to_range(msg, msg_size, tname, t->data, span, esize, r);
}

static posattn_status check_disjoint(char *msg, size_t msg_size, const char *a_name,
                                     byte_range a, const char *b_name, byte_range b) {
  if (a.lo < a.hi && b.lo < b.hi && a.lo < b.hi && b.lo < a.hi)
    FAIL(POSATTN_STATUS_INVALID_ARGUMENT,
         "%s overlaps %s: %s spans bytes [%#" PRIxPTR ", %#" PRIxPTR ") and %s [%#" PRIxPTR
         ", %#" PRIxPTR "); what the call writes must not share memory with anything else",
         a_name, b_name, a_name, a.lo, a.hi, b_name, b.lo, b.hi);
  return POSATTN_STATUS_SUCCESS;
}

/* Byte ranges of q, k, v, out, lse (in that order) of a validated problem; lse may be empty. */
static posattn_status tensor_ranges(char *msg, size_t msg_size, const pa_problem *p,
                                    byte_range r[5]) {
  PA_TRY(check_tensor(msg, msg_size, p, "q", p->q, 1, p->in_dtype, "in_dtype", &r[0]));
  PA_TRY(check_tensor(msg, msg_size, p, "k", p->k, 0, p->in_dtype, "in_dtype", &r[1]));
  PA_TRY(check_tensor(msg, msg_size, p, "v", p->v, 0, p->in_dtype, "in_dtype", &r[2]));
  PA_TRY(check_tensor(msg, msg_size, p, "out", p->out, 1, p->out_dtype, "out_dtype", &r[3]));
  r[4] = (byte_range){0, 0};
  if (p->lse != NULL) {
    if ((uintptr_t)p->lse % sizeof(float) != 0)
      FAIL(POSATTN_STATUS_BAD_ALIGNMENT, "lse (%p) must be aligned to 4 bytes (fp32)",
           (void *)p->lse);
    PA_TRY(to_range(msg, msg_size, "lse", p->lse, p->total_q * p->hq, sizeof(float), &r[4]));
  }
  return POSATTN_STATUS_SUCCESS;
}

static const char *const range_names[5] = {"q", "k", "v", "out", "lse"};

static posattn_status check_tensors(char *msg, size_t msg_size, const pa_problem *p) {
  byte_range r[5];
  PA_TRY(tensor_ranges(msg, msg_size, p, r));
  /* inputs may alias each other (packed qkv); the outputs out and lse may alias nothing */
  for (int w = 3; w < 5; ++w)
    for (int o = 0; o < w; ++o)
      PA_TRY(check_disjoint(msg, msg_size, range_names[w], r[w], range_names[o], r[o]));
  return POSATTN_STATUS_SUCCESS;
}

/* The FP8 dtypes are storage for the KV cache only (posattn.h): never a compute input or output. */
static int is_fp8(posattn_dtype dt) {
  return dt == POSATTN_DTYPE_FP8_E4M3 || dt == POSATTN_DTYPE_FP8_E5M2;
}
static posattn_status check_not_fp8(char *msg, size_t msg_size, const char *name, posattn_dtype dt) {
  if (is_fp8(dt))
    FAIL(POSATTN_STATUS_BAD_DTYPE,
         "%s (%s) must be F32, F16 or BF16: the FP8 dtypes are for the KV cache only "
         "(posattn_kv_cache.dtype)",
         name, posattn_dtype_string(dt));
  return POSATTN_STATUS_SUCCESS;
}

/* ---- entry points --------------------------------------------------------------------------- */

posattn_status pa_validate(char *msg, size_t msg_size, const posattn_attention_desc *desc,
                           posattn_dtype in_dtype, posattn_dtype out_dtype,
                           const posattn_tensor *q, const posattn_tensor *k,
                           const posattn_tensor *v, const posattn_tensor *out, float *lse,
                           pa_problem *prob) {
  if (prob == NULL) FAIL(POSATTN_STATUS_INTERNAL, "pa_validate: prob is NULL");
  memset(prob, 0, sizeof *prob);
  if (desc == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "desc is NULL");
  /* forward takes its dtypes from q and out: name those fields then */
  if (posattn_dtype_size(in_dtype) == 0)
    FAIL(POSATTN_STATUS_BAD_ENUM, "%s (%d) is not a posattn_dtype value",
         q != NULL && q->dtype == in_dtype ? "q->dtype" : "in_dtype", (int)in_dtype);
  if (posattn_dtype_size(out_dtype) == 0)
    FAIL(POSATTN_STATUS_BAD_ENUM, "%s (%d) is not a posattn_dtype value",
         out != NULL && out->dtype == out_dtype ? "out->dtype" : "out_dtype", (int)out_dtype);
  PA_TRY(check_not_fp8(msg, msg_size, q != NULL && q->dtype == in_dtype ? "q->dtype" : "in_dtype",
                       in_dtype));
  PA_TRY(check_not_fp8(msg, msg_size,
                       out != NULL && out->dtype == out_dtype ? "out->dtype" : "out_dtype", out_dtype));
  pa_problem p;
  memset(&p, 0, sizeof p);
  p.desc = desc;
  p.in_dtype = in_dtype;
  p.out_dtype = out_dtype;
  PA_TRY(check_descriptor(msg, msg_size, &p));
  /* descriptor-only queries pass no tensors; a forward passes all four (pa_require_tensors) */
  if (q != NULL || k != NULL || v != NULL || out != NULL || lse != NULL) {
    p.q = q;
    p.k = k;
    p.v = v;
    p.out = out;
    p.lse = lse;
    PA_TRY(check_tensors(msg, msg_size, &p));
  }
  *prob = p;
  return POSATTN_STATUS_SUCCESS;
}

posattn_status pa_require_tensors(char *msg, size_t msg_size, const posattn_tensor *q,
                                  const posattn_tensor *k, const posattn_tensor *v,
                                  const posattn_tensor *out) {
  const posattn_tensor *ts[4] = {q, k, v, out};
  for (int i = 0; i < 4; ++i)
    if (ts[i] == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "%s is NULL", range_names[i]);
  return POSATTN_STATUS_SUCCESS;
}

posattn_status pa_validate_workspace(char *msg, size_t msg_size, const pa_problem *p,
                                     const void *workspace, size_t workspace_bytes,
                                     size_t required) {
  if (workspace_bytes < required)
    FAIL(POSATTN_STATUS_WORKSPACE_TOO_SMALL,
         "workspace_bytes (%zu) is smaller than the %zu bytes required (posattn_workspace_size())",
         workspace_bytes, required);
  if (required == 0) return POSATTN_STATUS_SUCCESS;
  if (workspace == NULL)
    FAIL(POSATTN_STATUS_NULL_POINTER, "workspace is NULL but %zu bytes are required", required);
  if ((uintptr_t)workspace % 256 != 0)
    FAIL(POSATTN_STATUS_BAD_ALIGNMENT, "workspace (%p) must be 256-byte aligned", workspace);
  byte_range w = {0, 0}, r[5];
  PA_TRY(to_range(msg, msg_size, "workspace", workspace, (int64_t)required, 1, &w));
  if (p->q == NULL) return POSATTN_STATUS_SUCCESS;
  PA_TRY(tensor_ranges(msg, msg_size, p, r));
  for (int i = 0; i < 5; ++i)
    PA_TRY(check_disjoint(msg, msg_size, "workspace", w, range_names[i], r[i]));
  return POSATTN_STATUS_SUCCESS;
}

/* ---- the mask rule of the header ------------------------------------------------------------ */

int pa_visible(const pa_problem *p, int32_t b, int32_t i, int32_t j) {
  const posattn_attention_desc *desc = p->desc;
  const int64_t ii = (int64_t)i + pa_kv_seqlen(p, b) - pa_q_seqlen(p, b); /* bottom-right */
  if (desc->causal && j > ii) return 0;
  if (desc->window_left >= 0 && j < ii - desc->window_left) return 0;
  if (desc->window_right >= 0 && j > ii + desc->window_right) return 0;
  if (desc->doc_ids != NULL && j >= desc->num_anchor_tokens) {
    /* self-attention (validated): queries and keys share the token indexing */
    const int64_t s = pa_q_start(p, b);
    if (desc->doc_ids[s + i] != desc->doc_ids[s + j]) return 0;
  }
  return 1;
}

/* =============================================================================================
 * Decode and cache append (issue 5). Same rules and message style as above; the paged cache's
 * pools are checked like tensors, the index arrays (cache_lens, block tables, positions) are
 * read in full so that the backends may trust every entry they use.
 * ============================================================================================= */
#include "decode.h"

#define PA_MAX_PAGE_SIZE 256
#define PA_MAX_DECODE_Q_TOKENS 8
#define PA_MAX_DECODE_SPLITS 256

/* The cache's fields; when `need_data`, its pools and FP8 scales too (byte ranges into r[0],
 * r[1]: the pools, r[2], r[3]: k_scale, v_scale, empty without scales). */
static posattn_status check_cache(char *msg, size_t msg_size, const posattn_kv_cache *c,
                                  int need_data, byte_range r[4]) {
  if (c == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "cache is NULL");
  const size_t esize = posattn_dtype_size(c->dtype);
  if (esize == 0)
    FAIL(POSATTN_STATUS_BAD_ENUM, "cache->dtype (%d) is not a posattn_dtype value", (int)c->dtype);
  if (c->num_pages < 1) FAIL(POSATTN_STATUS_BAD_SIZE, "cache->num_pages (%d) must be >= 1", c->num_pages);
  if (c->page_size < 1 || c->page_size > PA_MAX_PAGE_SIZE)
    FAIL(POSATTN_STATUS_BAD_SIZE, "cache->page_size (%d) must be in [1, %d]", c->page_size,
         PA_MAX_PAGE_SIZE);
  if (c->kv_heads < 1) FAIL(POSATTN_STATUS_BAD_SIZE, "cache->kv_heads (%d) must be >= 1", c->kv_heads);
  if (c->head_dim < 2 || c->head_dim % 2 != 0)
    FAIL(POSATTN_STATUS_BAD_SIZE, "cache->head_dim (%d) must be even and >= 2", c->head_dim);
  if (c->k_rotated != 0 && c->k_rotated != 1)
    FAIL(POSATTN_STATUS_INVALID_ARGUMENT, "cache->k_rotated (%d) must be 0 or 1", c->k_rotated);
  const int fp8 = is_fp8(c->dtype);
  if (!fp8 && (c->k_scale != NULL || c->v_scale != NULL))
    FAIL(POSATTN_STATUS_INVALID_ARGUMENT,
         "cache->k_scale / v_scale must be NULL for a %s cache (scales apply to FP8 caches only)",
         posattn_dtype_string(c->dtype));
  if (c->scale_kind != POSATTN_KV_SCALE_PER_TENSOR && c->scale_kind != POSATTN_KV_SCALE_PER_HEAD)
    FAIL(POSATTN_STATUS_BAD_ENUM,
         "cache->scale_kind (%d) is not a posattn_kv_scale_kind value (0 per tensor, 1 per head)",
         c->scale_kind);
  axis ax[4] = {{NULL, "head_dim", c->head_dim, 1},
                {"stride_head", "kv_heads", c->kv_heads, c->stride_head},
                {"stride_slot", "page_size slots", c->page_size, c->stride_slot},
                {"stride_page", "num_pages", c->num_pages, c->stride_page}};
  int64_t span;
  PA_TRY(check_strides(msg, msg_size, "cache", ax, 4, &span));
  r[0] = r[1] = r[2] = r[3] = (byte_range){0, 0};
  if (!need_data) return POSATTN_STATUS_SUCCESS;
  if (fp8) {
    const char *snames[2] = {"cache->k_scale", "cache->v_scale"};
    const float *scales[2] = {c->k_scale, c->v_scale};
    const int64_t count = c->scale_kind == POSATTN_KV_SCALE_PER_HEAD ? c->kv_heads : 1;
    for (int i = 0; i < 2; ++i) {
      if (scales[i] == NULL)
        FAIL(POSATTN_STATUS_NULL_POINTER, "%s is NULL: an %s cache needs its dequantisation scales",
             snames[i], posattn_dtype_string(c->dtype));
      if ((uintptr_t)scales[i] % sizeof(float) != 0)
        FAIL(POSATTN_STATUS_BAD_ALIGNMENT, "%s (%p) must be aligned to 4 bytes (fp32)", snames[i],
             (const void *)scales[i]);
      PA_TRY(to_range(msg, msg_size, snames[i], scales[i], count, sizeof(float), &r[2 + i]));
    }
  }
  const char *names[2] = {"cache->k_pages", "cache->v_pages"};
  void *data[2] = {c->k_pages, c->v_pages};
  for (int i = 0; i < 2; ++i) {
    if (data[i] == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "%s is NULL", names[i]);
    if ((uintptr_t)data[i] % esize != 0)
      FAIL(POSATTN_STATUS_BAD_ALIGNMENT, "%s (%p) must be aligned to its element size (%zu bytes)",
           names[i], data[i], esize);
    PA_TRY(to_range(msg, msg_size, names[i], data[i], span, esize, &r[i]));
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 2; j < 4; ++j)
      PA_TRY(check_disjoint(msg, msg_size, names[i], r[i],
                            j == 2 ? "cache->k_scale" : "cache->v_scale", r[j]));
  return POSATTN_STATUS_SUCCESS;
}

/* A [batch, tokens, heads, head_dim] tensor of dtype `want` (checks like check_tensor). */
static posattn_status check_btd_tensor(char *msg, size_t msg_size, const char *tname,
                                       const posattn_tensor *t, int32_t batch, int32_t tokens,
                                       const char *tokens_name, int32_t heads,
                                       const char *heads_name, int32_t d, posattn_dtype want,
                                       const char *want_name, byte_range *r) {
  if (t == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "%s is NULL", tname);
  if (t->data == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "%s->data is NULL", tname);
  const size_t esize = posattn_dtype_size(t->dtype);
  if (esize == 0)
    FAIL(POSATTN_STATUS_BAD_ENUM, "%s->dtype (%d) is not a posattn_dtype value", tname, (int)t->dtype);
  if (t->dtype != want)
    FAIL(POSATTN_STATUS_BAD_DTYPE, "%s->dtype (%s) must equal %s (%s)", tname,
         posattn_dtype_string(t->dtype), want_name, posattn_dtype_string(want));
  if ((uintptr_t)t->data % esize != 0)
    FAIL(POSATTN_STATUS_BAD_ALIGNMENT, "%s->data (%p) must be aligned to its element size (%zu bytes)",
         tname, t->data, esize);
  axis ax[4] = {{NULL, "head_dim", d, 1},
                {"stride_head", heads_name, heads, t->stride_head},
                {"stride_seq", tokens_name, tokens, t->stride_seq},
                {"stride_batch", "batch", batch, t->stride_batch}};
  int64_t span;
  PA_TRY(check_strides(msg, msg_size, tname, ax, 4, &span));
  return to_range(msg, msg_size, tname, t->data, span, esize, r);
}

/* block_table[b][k] for k < pages must be a page of the pool. */
static posattn_status check_block_row(char *msg, size_t msg_size, const int32_t *bt, int32_t b,
                                      int32_t mpps, int64_t first, int64_t pages,
                                      int32_t num_pages) {
  for (int64_t k = first; k < pages; ++k) {
    const int32_t page = bt[(int64_t)b * mpps + k];
    if (page < 0 || page >= num_pages)
      FAIL(POSATTN_STATUS_INVALID_ARGUMENT,
           "desc->block_table[%d][%" PRId64 "] (%d) must be a page index in [0, cache->num_pages "
           "(%d))",
           b, k, page, num_pages);
  }
  return POSATTN_STATUS_SUCCESS;
}

/* Decode and serving plans over a paged cache (`cache_name` as the caller spells it): the split
 * count and the positional encodings a paged cache can serve. */
static posattn_status check_paged_pe(char *msg, size_t msg_size, const posattn_pe *pe,
                                     int32_t q_heads, int32_t head_dim, int32_t num_splits,
                                     int32_t k_rotated, const char *cache_name, const char *what) {
  if (num_splits < 0 || num_splits > PA_MAX_DECODE_SPLITS)
    FAIL(POSATTN_STATUS_BAD_SIZE, "desc->num_splits (%d) must be in [0, %d] (0 = library chooses)",
         num_splits, PA_MAX_DECODE_SPLITS);
  PA_TRY(pa_validate_pe(msg, msg_size, pe, q_heads, head_dim));
  if (pe->kind == POSATTN_PE_XPOS)
    FAIL(POSATTN_STATUS_NOT_SUPPORTED, "desc->pe.kind XPOS is not available %s", what);
  if (pe->kind == POSATTN_PE_ROPE && k_rotated &&
      pe->rope.scaling == POSATTN_ROPE_SCALING_DYNAMIC_NTK)
    FAIL(POSATTN_STATUS_NOT_SUPPORTED,
         "desc->pe.rope.scaling DYNAMIC_NTK with %sk_rotated = 1: the frequencies change "
         "with the length, so keys rotated at append time would not match; keep K un-rotated",
         cache_name);
  return POSATTN_STATUS_SUCCESS;
}

posattn_status pa_validate_decode(char *msg, size_t msg_size, const posattn_decode_desc *desc,
                                  const posattn_kv_cache *cache, posattn_dtype q_dtype,
                                  posattn_dtype out_dtype, const posattn_tensor *q,
                                  const posattn_tensor *out, float *lse, pa_decode_problem *prob) {
  if (prob == NULL) FAIL(POSATTN_STATUS_INTERNAL, "pa_validate_decode: prob is NULL");
  memset(prob, 0, sizeof *prob);
  if (desc == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "desc is NULL");
  if (posattn_dtype_size(q_dtype) == 0)
    FAIL(POSATTN_STATUS_BAD_ENUM, "q_dtype (%d) is not a posattn_dtype value", (int)q_dtype);
  if (posattn_dtype_size(out_dtype) == 0)
    FAIL(POSATTN_STATUS_BAD_ENUM, "out_dtype (%d) is not a posattn_dtype value", (int)out_dtype);
  PA_TRY(check_not_fp8(msg, msg_size, "q_dtype", q_dtype));
  PA_TRY(check_not_fp8(msg, msg_size, "out_dtype", out_dtype));
  const int run = q != NULL || out != NULL;
  byte_range pools[4];
  PA_TRY(check_cache(msg, msg_size, cache, run, pools));

  pa_decode_problem p;
  memset(&p, 0, sizeof p);
  p.desc = desc;
  p.cache = cache;
  p.q_dtype = q_dtype;
  p.out_dtype = out_dtype;
  if (desc->batch < 1) FAIL(POSATTN_STATUS_BAD_SIZE, "desc->batch (%d) must be >= 1", desc->batch);
  if (desc->q_heads < 1 || desc->q_heads % cache->kv_heads != 0)
    FAIL(POSATTN_STATUS_BAD_SIZE,
         "desc->q_heads (%d) must be >= 1 and a multiple of cache->kv_heads (%d)", desc->q_heads,
         cache->kv_heads);
  if (desc->head_dim != cache->head_dim)
    FAIL(POSATTN_STATUS_BAD_SIZE, "desc->head_dim (%d) must equal cache->head_dim (%d)",
         desc->head_dim, cache->head_dim);
  if (desc->num_q_tokens < 1 || desc->num_q_tokens > PA_MAX_DECODE_Q_TOKENS)
    FAIL(POSATTN_STATUS_BAD_SIZE, "desc->num_q_tokens (%d) must be in [1, %d]",
         desc->num_q_tokens, PA_MAX_DECODE_Q_TOKENS);
  if (desc->max_pages_per_seq < 1)
    FAIL(POSATTN_STATUS_BAD_SIZE, "desc->max_pages_per_seq (%d) must be >= 1",
         desc->max_pages_per_seq);
  p.batch = desc->batch;
  p.hq = desc->q_heads;
  p.hkv = cache->kv_heads;
  p.group = p.hq / p.hkv;
  p.d = desc->head_dim;
  p.n = desc->num_q_tokens;
  p.page_size = cache->page_size;
  p.num_pages = cache->num_pages;
  p.mpps = desc->max_pages_per_seq;
  p.capacity = (int64_t)p.mpps * p.page_size;
  if (p.capacity > INT32_MAX)
    FAIL(POSATTN_STATUS_BAD_SIZE,
         "desc->max_pages_per_seq (%d) * cache->page_size (%d) must be < 2^31 tokens", p.mpps,
         p.page_size);

  if (desc->cache_lens == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "desc->cache_lens is NULL");
  if (desc->block_table == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "desc->block_table is NULL");
  p.max_q_pos = p.max_kv_pos = -1;
  p.min_q_pos = INT32_MAX;
  for (int32_t b = 0; b < p.batch; ++b) {
    const int32_t len = desc->cache_lens[b];
    if (len < 0 || len > p.capacity)
      FAIL(POSATTN_STATUS_BAD_SEQLENS,
           "desc->cache_lens[%d] (%d) must be in [0, max_pages_per_seq * page_size (%" PRId64 ")]",
           b, len, p.capacity);
    PA_TRY(check_block_row(msg, msg_size, desc->block_table, b, p.mpps, 0,
                           ((int64_t)len + p.page_size - 1) / p.page_size, p.num_pages));
    if (len > p.max_len) p.max_len = len;
    p.total_len += len;
    if (desc->kv_positions != NULL) {
      int32_t mx = p.max_kv_pos;
      char name[64];
      snprintf(name, sizeof name, "kv_positions[%d]", b);
      PA_TRY(check_positions(msg, msg_size, desc->kv_positions + (int64_t)b * p.capacity, len,
                             name, &mx));
      p.max_kv_pos = mx;
    } else if (len - 1 > p.max_kv_pos) {
      p.max_kv_pos = len - 1;
    }
    for (int32_t t = 0; t < p.n; ++t) {
      if (desc->q_positions != NULL) {
        const int32_t qp = desc->q_positions[(int64_t)b * p.n + t];
        if (qp < 0 || qp >= PA_MAX_POSITION)
          FAIL(POSATTN_STATUS_BAD_POSITIONS, "desc->q_positions[%d][%d] (%d) must be in [0, 2^30)",
               b, t, qp);
      }
      const int64_t qp = pa_dec_q_pos(&p, b, t);
      if (qp > p.max_q_pos) p.max_q_pos = (int32_t)qp;
      if (qp < p.min_q_pos) p.min_q_pos = (int32_t)qp;
    }
  }

  PA_TRY(check_mask_and_scale(msg, msg_size, desc->causal, desc->window_left, desc->softcap,
                              desc->softmax_scale));
  p.scale = desc->softmax_scale > 0 ? (double)desc->softmax_scale : 1.0 / sqrt((double)p.d);
  if (desc->sink_logits != NULL)
    PA_TRY(check_finite(msg, msg_size, desc->sink_logits, p.hq, "desc->sink_logits"));
  PA_TRY(check_paged_pe(msg, msg_size, &desc->pe, p.hq, p.d, desc->num_splits, cache->k_rotated,
                        "cache->", "in decode"));
  if (desc->pe.kind == POSATTN_PE_ROPE) {
    p.rotary_dim = pa_rope_dim(&desc->pe.rope, p.d);
    p.rotate_k = !cache->k_rotated;
  }

  if (run) {
    byte_range rq, ro, rl = {0, 0};
    PA_TRY(check_btd_tensor(msg, msg_size, "q", q, p.batch, p.n, "num_q_tokens", p.hq, "q_heads",
                            p.d, q_dtype, "q_dtype", &rq));
    PA_TRY(check_btd_tensor(msg, msg_size, "out", out, p.batch, p.n, "num_q_tokens", p.hq,
                            "q_heads", p.d, out_dtype, "out_dtype", &ro));
    if (lse != NULL) {
      if ((uintptr_t)lse % sizeof(float) != 0)
        FAIL(POSATTN_STATUS_BAD_ALIGNMENT, "lse (%p) must be aligned to 4 bytes (fp32)", (void *)lse);
      PA_TRY(to_range(msg, msg_size, "lse", lse, (int64_t)p.batch * p.hq * p.n, sizeof(float), &rl));
    }
    PA_TRY(check_disjoint(msg, msg_size, "out", ro, "q", rq));
    PA_TRY(check_disjoint(msg, msg_size, "out", ro, "cache->k_pages", pools[0]));
    PA_TRY(check_disjoint(msg, msg_size, "out", ro, "cache->v_pages", pools[1]));
    PA_TRY(check_disjoint(msg, msg_size, "lse", rl, "q", rq));
    PA_TRY(check_disjoint(msg, msg_size, "lse", rl, "out", ro));
    PA_TRY(check_disjoint(msg, msg_size, "lse", rl, "cache->k_pages", pools[0]));
    PA_TRY(check_disjoint(msg, msg_size, "lse", rl, "cache->v_pages", pools[1]));
    for (int i = 2; i < 4; ++i) {
      const char *sname = i == 2 ? "cache->k_scale" : "cache->v_scale";
      PA_TRY(check_disjoint(msg, msg_size, "out", ro, sname, pools[i]));
      PA_TRY(check_disjoint(msg, msg_size, "lse", rl, sname, pools[i]));
    }
    p.q = q;
    p.out = out;
    p.lse = lse;
  }
  *prob = p;
  return POSATTN_STATUS_SUCCESS;
}

/* The workspace may overlap nothing the call reads or writes. */
static posattn_status check_ws_common(char *msg, size_t msg_size, const void *ws, size_t ws_bytes,
                                      size_t required, byte_range *w) {
  if (ws_bytes < required)
    FAIL(POSATTN_STATUS_WORKSPACE_TOO_SMALL,
         "workspace_bytes (%zu) is smaller than the %zu bytes required", ws_bytes, required);
  *w = (byte_range){0, 0};
  if (required == 0) return POSATTN_STATUS_SUCCESS;
  if (ws == NULL)
    FAIL(POSATTN_STATUS_NULL_POINTER, "workspace is NULL but %zu bytes are required", required);
  if ((uintptr_t)ws % 256 != 0)
    FAIL(POSATTN_STATUS_BAD_ALIGNMENT, "workspace (%p) must be 256-byte aligned", ws);
  return to_range(msg, msg_size, "workspace", ws, (int64_t)required, 1, w);
}

posattn_status pa_validate_decode_workspace(char *msg, size_t msg_size,
                                            const pa_decode_problem *p, const void *ws,
                                            size_t ws_bytes, size_t required) {
  byte_range w, pools[4], r[3] = {{0, 0}, {0, 0}, {0, 0}};
  PA_TRY(check_ws_common(msg, msg_size, ws, ws_bytes, required, &w));
  if (w.lo == w.hi || p->q == NULL) return POSATTN_STATUS_SUCCESS;
  PA_TRY(check_cache(msg, msg_size, p->cache, 1, pools));
  PA_TRY(check_btd_tensor(msg, msg_size, "q", p->q, p->batch, p->n, "num_q_tokens", p->hq,
                          "q_heads", p->d, p->q_dtype, "q_dtype", &r[0]));
  PA_TRY(check_btd_tensor(msg, msg_size, "out", p->out, p->batch, p->n, "num_q_tokens", p->hq,
                          "q_heads", p->d, p->out_dtype, "out_dtype", &r[1]));
  if (p->lse) PA_TRY(to_range(msg, msg_size, "lse", p->lse, (int64_t)p->batch * p->hq * p->n, 4, &r[2]));
  const char *names[7] = {"q", "out", "lse", "cache->k_pages", "cache->v_pages", "cache->k_scale",
                          "cache->v_scale"};
  const byte_range all[7] = {r[0], r[1], r[2], pools[0], pools[1], pools[2], pools[3]};
  for (int i = 0; i < 7; ++i) PA_TRY(check_disjoint(msg, msg_size, "workspace", w, names[i], all[i]));
  return POSATTN_STATUS_SUCCESS;
}

/* Slots [lo, hi) of `page` written for sequence b; a second writer of any of them is an error. */
typedef struct append_write {
  int32_t page, b, lo, hi;
} append_write;

static int append_write_order(const void *x, const void *y) {
  const append_write *a = (const append_write *)x, *b = (const append_write *)y;
  if (a->page != b->page) return a->page < b->page ? -1 : 1;
  if (a->lo != b->lo) return a->lo < b->lo ? -1 : 1;
  return a->b < b->b ? -1 : a->b > b->b;
}

/* Two writes into one (page, slot) would race on a GPU and leave one of them. Every sequence's
 * writes are cut into one slot range per touched page (`touched` of them, counted by the caller),
 * sorted by (page, first slot); ranges of one page then overlap exactly when one starts before
 * the furthest end seen so far on that page: O(touched log touched). */
static posattn_status check_append_writes(char *msg, size_t msg_size, const pa_append_problem *p,
                                          int64_t touched) {
  const posattn_cache_append_desc *desc = p->desc;
  if ((uint64_t)touched > SIZE_MAX / sizeof(append_write))
    FAIL(POSATTN_STATUS_BAD_SIZE, "the append touches %" PRId64 " pages: too many to check",
         touched);
  append_write *w = (append_write *)malloc((size_t)touched * sizeof *w);
  if (w == NULL)
    FAIL(POSATTN_STATUS_ALLOC_FAILED,
         "out of host memory checking the %" PRId64 " page writes of the append", touched);
  int64_t n = 0;
  for (int32_t b = 0; b < p->batch; ++b) {
    const int64_t start = desc->cache_lens[b], end = start + pa_app_count(p, b);
    for (int64_t j = start; j < end; j = (j / p->page_size + 1) * p->page_size) {
      const int64_t k = j / p->page_size, page_end = (k + 1) * p->page_size;
      w[n++] = (append_write){desc->block_table[(int64_t)b * p->mpps + k], b,
                              (int32_t)(j - k * p->page_size),
                              (int32_t)((end < page_end ? end : page_end) - k * p->page_size)};
    }
  }
  posattn_status st = POSATTN_STATUS_SUCCESS;
  if (n != touched) {
    st = pa_fail(msg, msg_size, POSATTN_STATUS_INTERNAL,
                 "internal check failed at %s:%d: %" PRId64 " page writes, %" PRId64 " counted",
                 __FILE__, __LINE__, n, touched);
  } else {
    qsort(w, (size_t)n, sizeof *w, append_write_order);
    int64_t reach = 0; /* the write of the current page that ends last */
    for (int64_t i = 1; i < n && st == POSATTN_STATUS_SUCCESS; ++i) {
      if (w[i].page != w[reach].page) {
        reach = i;
        continue;
      }
      if (w[i].lo < w[reach].hi) {
        const append_write *a = &w[reach], *c = &w[i];
        st = pa_fail(msg, msg_size, POSATTN_STATUS_INVALID_ARGUMENT,
                     "page %d is written twice: by sequence %d (slots %d..%d) and sequence %d "
                     "(slots %d..%d); one append must not write a (page, slot) twice (a page "
                     "shared between sequences, or listed twice in a block_table row)",
                     a->page, a->b, a->lo, a->hi - 1, c->b, c->lo, c->hi - 1);
      } else if (w[i].hi > w[reach].hi) {
        reach = i;
      }
    }
  }
  free(w);
  return st;
}

/* Whether the offset difference x is sum_i c_i * stride_i with |c_i| < extent_i over the axes
 * ax[0 .. n) (extent > 1, sorted by stride, each stride above the span of the axes below it, as
 * check_strides accepts them). Exact: the axes below the top one reach at most stride - 1 either
 * way, so the top coefficient is floor(x / stride) or one more; at most 2^n leaves. c[] receives
 * the coefficients found. */
static int offset_difference(const axis *ax, int n, int64_t x, int64_t *c) {
  if (n == 0) return x == 0;
  const int64_t s = ax[n - 1].stride, e = ax[n - 1].extent;
  const int64_t q = x / s - (x % s < 0); /* floor: x - q*s in [0, s) */
  for (int64_t k = q; k <= q + 1; ++k) {
    if (k <= -e || k >= e) continue; /* |k * s| <= span: no overflow below */
    c[n - 1] = k;
    if (offset_difference(ax, n - 1, x - k * s, c)) return 1;
  }
  return 0;
}

/* K and V pools that an append writes must not share an element. They share one layout (the
 * cache's strides), so they do exactly when the distance between their bases is the difference
 * of two element offsets of that layout: interleaved pools (K and V of a page, or of a slot,
 * side by side in one buffer) are disjoint, a V pool that starts inside a K page is not. */
static posattn_status check_pools_disjoint(char *msg, size_t msg_size, const posattn_kv_cache *c) {
  const int64_t esize = (int64_t)posattn_dtype_size(c->dtype);
  /* both pools are aligned to esize (check_cache); a distance beyond int64 shares nothing */
  const uintptr_t kp = (uintptr_t)c->k_pages, vp = (uintptr_t)c->v_pages;
  const uintptr_t dist = kp < vp ? vp - kp : kp - vp;
  if (dist > (uintptr_t)INT64_MAX) return POSATTN_STATUS_SUCCESS;
  const int64_t delta = kp <= vp ? (int64_t)dist / esize : -((int64_t)dist / esize); /* v - k */
  axis all[4] = {{NULL, "feature", c->head_dim, 1},
                 {"stride_head", "head", c->kv_heads, c->stride_head},
                 {"stride_slot", "slot", c->page_size, c->stride_slot},
                 {"stride_page", "page", c->num_pages, c->stride_page}};
  axis ax[4];
  int n = 0;
  for (int i = 0; i < 4; ++i)
    if (all[i].extent > 1) ax[n++] = all[i];
  for (int i = 1; i < n; ++i) /* by stride, as check_strides orders them */
    for (int j = i; j > 0 && ax[j].stride < ax[j - 1].stride; --j) {
      const axis t = ax[j];
      ax[j] = ax[j - 1];
      ax[j - 1] = t;
    }
  int64_t coef[4] = {0, 0, 0, 0};
  if (!offset_difference(ax, n, delta, coef)) return POSATTN_STATUS_SUCCESS;
  char apart[160] = "";
  for (int i = n - 1; i >= 0; --i) {
    if (coef[i] == 0) continue;
    const size_t used = strlen(apart);
    snprintf(apart + used, sizeof apart - used, "%s%+" PRId64 " %s", used ? ", " : "", coef[i],
             ax[i].extent_name);
  }
  FAIL(POSATTN_STATUS_INVALID_ARGUMENT,
       "cache->k_pages and cache->v_pages share elements: v_pages - k_pages = %" PRId64
       " elements = %s in the cache strides, so an element of K at (page, slot, head, feature) "
       "is also the V element that many steps away; the pools an append writes must be disjoint "
       "element by element (interleaved pools are fine)",
       delta, apart[0] ? apart : "0 (the same base)");
}

posattn_status pa_validate_append(char *msg, size_t msg_size, const posattn_cache_append_desc *desc,
                                  const posattn_kv_cache *cache, posattn_dtype in_dtype,
                                  const posattn_tensor *k_new, const posattn_tensor *v_new,
                                  pa_append_problem *prob) {
  if (prob == NULL) FAIL(POSATTN_STATUS_INTERNAL, "pa_validate_append: prob is NULL");
  memset(prob, 0, sizeof *prob);
  if (desc == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "desc is NULL");
  if (posattn_dtype_size(in_dtype) == 0)
    FAIL(POSATTN_STATUS_BAD_ENUM, "in_dtype (%d) is not a posattn_dtype value", (int)in_dtype);
  PA_TRY(check_not_fp8(msg, msg_size, "in_dtype", in_dtype));
  const int run = k_new != NULL || v_new != NULL;
  byte_range pools[4];
  PA_TRY(check_cache(msg, msg_size, cache, run, pools));
  pa_append_problem p;
  memset(&p, 0, sizeof p);
  p.desc = desc;
  p.cache = cache;
  p.in_dtype = in_dtype;
  if (desc->batch < 1) FAIL(POSATTN_STATUS_BAD_SIZE, "desc->batch (%d) must be >= 1", desc->batch);
  if (desc->num_tokens < 1)
    FAIL(POSATTN_STATUS_BAD_SIZE, "desc->num_tokens (%d) must be >= 1", desc->num_tokens);
  if (desc->max_pages_per_seq < 1)
    FAIL(POSATTN_STATUS_BAD_SIZE, "desc->max_pages_per_seq (%d) must be >= 1",
         desc->max_pages_per_seq);
  if (desc->cache_lens == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "desc->cache_lens is NULL");
  if (desc->block_table == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "desc->block_table is NULL");
  p.batch = desc->batch;
  p.n = desc->num_tokens;
  p.hkv = cache->kv_heads;
  p.d = cache->head_dim;
  p.page_size = cache->page_size;
  p.mpps = desc->max_pages_per_seq;
  p.max_pos = -1;
  const int64_t capacity = (int64_t)p.mpps * p.page_size;
  int64_t touched = 0;
  for (int32_t b = 0; b < p.batch; ++b) {
    const int32_t start = desc->cache_lens[b], cnt = pa_app_count(&p, b);
    if (start < 0) FAIL(POSATTN_STATUS_BAD_SEQLENS, "desc->cache_lens[%d] (%d) must be >= 0", b, start);
    if (cnt < 0 || cnt > p.n)
      FAIL(POSATTN_STATUS_BAD_SEQLENS, "desc->new_lens[%d] (%d) must be in [0, desc->num_tokens (%d)]",
           b, cnt, p.n);
    if ((int64_t)start + cnt > capacity)
      FAIL(POSATTN_STATUS_BAD_SIZE,
           "sequence %d: writing %d tokens from cache index %d reaches index %" PRId64
           ", outside the pages given (max_pages_per_seq (%d) * page_size (%d) = %" PRId64 " tokens)",
           b, cnt, start, (int64_t)start + cnt - 1, p.mpps, p.page_size, capacity);
    if (cnt == 0) continue;
    const int64_t first = start / p.page_size, last = ((int64_t)start + cnt - 1) / p.page_size;
    PA_TRY(check_block_row(msg, msg_size, desc->block_table, b, p.mpps, first, last + 1,
                           cache->num_pages));
    touched += last - first + 1;
    for (int32_t t = 0; t < cnt; ++t) {
      const int64_t pos = pa_app_pos(&p, b, t);
      if (pos < 0 || pos >= PA_MAX_POSITION)
        FAIL(POSATTN_STATUS_BAD_POSITIONS, "desc->positions[%d][%d] (%" PRId64 ") must be in [0, 2^30)",
             b, t, pos);
      if (pos > p.max_pos) p.max_pos = (int32_t)pos;
    }
  }
  if (touched > 1) PA_TRY(check_append_writes(msg, msg_size, &p, touched));
  if (desc->pe.kind == POSATTN_PE_ROPE && cache->k_rotated) {
    PA_TRY(check_rope_fp32(msg, msg_size, &desc->pe.rope, p.d, "desc->pe.rope"));
    if (desc->pe.rope.scaling == POSATTN_ROPE_SCALING_DYNAMIC_NTK)
      FAIL(POSATTN_STATUS_NOT_SUPPORTED,
           "desc->pe.rope.scaling DYNAMIC_NTK into a rotated cache: the frequencies change with "
           "the length; keep K un-rotated (cache->k_rotated = 0)");
    p.rotary_dim = pa_rope_dim(&desc->pe.rope, p.d);
  }
  if (run) {
    byte_range rk, rv;
    PA_TRY(check_btd_tensor(msg, msg_size, "k_new", k_new, p.batch, p.n, "num_tokens", p.hkv,
                            "kv_heads", p.d, in_dtype, "in_dtype", &rk));
    PA_TRY(check_btd_tensor(msg, msg_size, "v_new", v_new, p.batch, p.n, "num_tokens", p.hkv,
                            "kv_heads", p.d, in_dtype, "in_dtype", &rv));
    PA_TRY(check_pools_disjoint(msg, msg_size, cache));
    PA_TRY(check_disjoint(msg, msg_size, "cache->k_pages", pools[0], "k_new", rk));
    PA_TRY(check_disjoint(msg, msg_size, "cache->k_pages", pools[0], "v_new", rv));
    PA_TRY(check_disjoint(msg, msg_size, "cache->v_pages", pools[1], "k_new", rk));
    PA_TRY(check_disjoint(msg, msg_size, "cache->v_pages", pools[1], "v_new", rv));
    p.k = k_new;
    p.v = v_new;
  }
  *prob = p;
  return POSATTN_STATUS_SUCCESS;
}

posattn_status pa_validate_append_workspace(char *msg, size_t msg_size,
                                            const pa_append_problem *p, const void *ws,
                                            size_t ws_bytes, size_t required) {
  byte_range w, pools[4], rk, rv;
  PA_TRY(check_ws_common(msg, msg_size, ws, ws_bytes, required, &w));
  if (w.lo == w.hi || p->k == NULL) return POSATTN_STATUS_SUCCESS;
  PA_TRY(check_cache(msg, msg_size, p->cache, 1, pools));
  PA_TRY(check_btd_tensor(msg, msg_size, "k_new", p->k, p->batch, p->n, "num_tokens", p->hkv,
                          "kv_heads", p->d, p->in_dtype, "in_dtype", &rk));
  PA_TRY(check_btd_tensor(msg, msg_size, "v_new", p->v, p->batch, p->n, "num_tokens", p->hkv,
                          "kv_heads", p->d, p->in_dtype, "in_dtype", &rv));
  const char *names[6] = {"k_new", "v_new", "cache->k_pages", "cache->v_pages", "cache->k_scale",
                          "cache->v_scale"};
  const byte_range all[6] = {rk, rv, pools[0], pools[1], pools[2], pools[3]};
  for (int i = 0; i < 6; ++i) PA_TRY(check_disjoint(msg, msg_size, "workspace", w, names[i], all[i]));
  return POSATTN_STATUS_SUCCESS;
}

/* ---- merging attention states (issue 15; host/merge.h) -------------------------------------- */

#include "merge.h"

/* O and LSE of one state: pointers, dtype, alignment, strides; their byte ranges (LSE empty when
 * NULL and allowed) and spans in elements. */
static posattn_status check_state(char *msg, size_t msg_size, const char *name,
                                  const posattn_merge_desc *D, const posattn_attn_state *s,
                                  int lse_optional, byte_range r[2], int64_t *o_span,
                                  int64_t *lse_span) {
  char tname[48], lname[48];
  snprintf(tname, sizeof tname, "%s.o", name);
  snprintf(lname, sizeof lname, "%s.lse", name);
  const posattn_tensor *t = &s->o;
  if (t->data == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "%s.data is NULL", tname);
  const size_t esize = posattn_dtype_size(t->dtype);
  if (esize == 0)
    FAIL(POSATTN_STATUS_BAD_ENUM, "%s.dtype (%d) is not a posattn_dtype value", tname,
         (int)t->dtype);
  char dname[64];
  snprintf(dname, sizeof dname, "%s.dtype", tname);
  PA_TRY(check_not_fp8(msg, msg_size, dname, t->dtype));
  if ((uintptr_t)t->data % esize != 0)
    FAIL(POSATTN_STATUS_BAD_ALIGNMENT,
         "%s.data (%p) must be aligned to its element size (%zu bytes)", tname, t->data, esize);
  axis ax[4] = {{NULL, "head_dim", D->head_dim, 1},
                {"stride_head", "heads", D->heads, t->stride_head},
                {"stride_seq", "seq_len", D->seq_len, t->stride_seq},
                {"stride_batch", "batch", D->batch, t->stride_batch}};
  PA_TRY(check_strides(msg, msg_size, tname, ax, 4, o_span));
  PA_TRY(to_range(msg, msg_size, tname, t->data, *o_span, esize, &r[0]));
  r[1] = (byte_range){0, 0};
  *lse_span = 0;
  if (s->lse == NULL) {
    if (lse_optional) return POSATTN_STATUS_SUCCESS;
    FAIL(POSATTN_STATUS_NULL_POINTER, "%s is NULL (every input state needs its LSE)", lname);
  }
  if ((uintptr_t)s->lse % sizeof(float) != 0)
    FAIL(POSATTN_STATUS_BAD_ALIGNMENT, "%s (%p) must be aligned to 4 bytes (fp32)", lname,
         (void *)s->lse);
  axis lx[3] = {{"lse_stride_head", "heads", D->heads, s->lse_stride_head},
                {"lse_stride_seq", "seq_len", D->seq_len, s->lse_stride_seq},
                {"lse_stride_batch", "batch", D->batch, s->lse_stride_batch}};
  PA_TRY(check_strides(msg, msg_size, name, lx, 3, lse_span));
  return to_range(msg, msg_size, lname, s->lse, *lse_span, sizeof(float), &r[1]);
}

posattn_status pa_validate_merge(char *msg, size_t msg_size, const posattn_merge_desc *desc,
                                 int32_t n, const posattn_attn_state *in,
                                 const posattn_attn_state *out, int in_place, pa_merge_problem *p) {
  if (desc == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "desc is NULL");
  if (in == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "states is NULL");
  if (out == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "out is NULL");
  const struct { const char *name; int32_t v; } sizes[4] = {
      {"batch", desc->batch}, {"seq_len", desc->seq_len}, {"heads", desc->heads},
      {"head_dim", desc->head_dim}};
  for (int i = 0; i < 4; ++i)
    if (sizes[i].v < 1)
      FAIL(POSATTN_STATUS_BAD_SIZE, "desc->%s (%d) must be >= 1", sizes[i].name, sizes[i].v);
  if (desc->flags & ~POSATTN_MERGE_LSE_BASE2)
    FAIL(POSATTN_STATUS_INVALID_ARGUMENT,
         "desc->flags (%#x) has unknown bits: only POSATTN_MERGE_LSE_BASE2 (%#x) is defined",
         desc->flags, POSATTN_MERGE_LSE_BASE2);
  if (n < 2 || n > POSATTN_MERGE_MAX_STATES)
    FAIL(POSATTN_STATUS_BAD_SIZE,
         "num_states (%d) must be in [2, %d] (POSATTN_MERGE_MAX_STATES; merge more in groups)", n,
         POSATTN_MERGE_MAX_STATES);
  memset(p, 0, sizeof *p);
  p->desc = desc;
  p->n = n;
  p->in = in;
  p->out = out;
  p->base2 = (desc->flags & POSATTN_MERGE_LSE_BASE2) != 0;
  byte_range r[POSATTN_MERGE_MAX_STATES + 1][2];
  char name[32];
  for (int32_t s = 0; s < n; ++s) {
    snprintf(name, sizeof name, "states[%d]", s);
    PA_TRY(check_state(msg, msg_size, name, desc, &in[s], 0, r[s], &p->o_span[s], &p->lse_span[s]));
  }
  const char *oname = in_place ? "states[0]" : "out";
  PA_TRY(check_state(msg, msg_size, oname, desc, out, !in_place, r[n], &p->o_span[n],
                     &p->lse_span[n]));
  PA_TRY(check_disjoint(msg, msg_size, in_place ? "states[0].o" : "out.o", r[n][0],
                        in_place ? "states[0].lse" : "out.lse", r[n][1]));
  for (int32_t s = in_place ? 1 : 0; s < n; ++s)
    for (int w = 0; w < 2; ++w)
      for (int o = 0; o < 2; ++o) {
        char wn[40], on[40];
        snprintf(wn, sizeof wn, "%s.%s", oname, w ? "lse" : "o");
        snprintf(on, sizeof on, "states[%d].%s", s, o ? "lse" : "o");
        PA_TRY(check_disjoint(msg, msg_size, wn, r[n][w], on, r[s][o]));
      }
  return POSATTN_STATUS_SUCCESS;
}

/* =============================================================================================
 * Serving plans (issue 13). The plan descriptor is checked in full at creation; a run or append
 * checks only what the host can see in O(1) -- pointers, the batch against the plan, strides,
 * dtypes, alignment, overlap of what it writes, the workspace -- and never reads the device-side
 * index arrays (the kernels check those: posattn.h, BAD DEVICE-SIDE INDICES).
 * ============================================================================================= */
#include "plan.h"

static posattn_status check_compute_dtype(char *msg, size_t msg_size, const char *name,
                                          posattn_dtype dt) {
  if (dt != POSATTN_DTYPE_F32 && dt != POSATTN_DTYPE_F16 && dt != POSATTN_DTYPE_BF16) {
    if (posattn_dtype_size(dt) == 0)
      FAIL(POSATTN_STATUS_BAD_ENUM, "%s (%d) is not a posattn_dtype value", name, (int)dt);
    PA_TRY(check_not_fp8(msg, msg_size, name, dt));
  }
  return POSATTN_STATUS_SUCCESS;
}

posattn_status pa_validate_plan_desc(char *msg, size_t msg_size, const posattn_plan_desc *desc,
                                     posattn_plan *plan) {
  if (desc == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "desc is NULL");
  byte_range unused[4];
  PA_TRY(check_cache(msg, msg_size, &desc->cache, 0, unused));
  const posattn_kv_cache *c = &desc->cache;
  PA_TRY(check_compute_dtype(msg, msg_size, "desc->q_dtype", desc->q_dtype));
  PA_TRY(check_compute_dtype(msg, msg_size, "desc->out_dtype", desc->out_dtype));
  if (desc->max_batch < 1)
    FAIL(POSATTN_STATUS_BAD_SIZE, "desc->max_batch (%d) must be >= 1", desc->max_batch);
  if (desc->max_q_tokens < 1)
    FAIL(POSATTN_STATUS_BAD_SIZE, "desc->max_q_tokens (%d) must be >= 1", desc->max_q_tokens);
  if (desc->max_pages_per_seq < 1)
    FAIL(POSATTN_STATUS_BAD_SIZE, "desc->max_pages_per_seq (%d) must be >= 1",
         desc->max_pages_per_seq);
  const int64_t capacity = (int64_t)desc->max_pages_per_seq * c->page_size;
  if (capacity > INT32_MAX)
    FAIL(POSATTN_STATUS_BAD_SIZE,
         "desc->max_pages_per_seq (%d) * desc->cache.page_size (%d) must be < 2^31 tokens",
         desc->max_pages_per_seq, c->page_size);
  if (desc->max_position < 0 || desc->max_position >= PA_MAX_POSITION)
    FAIL(POSATTN_STATUS_BAD_POSITIONS,
         "desc->max_position (%d) must be in [0, 2^30) (0 = the capacity minus one)",
         desc->max_position);
  if (desc->q_heads < 1 || desc->q_heads % c->kv_heads != 0)
    FAIL(POSATTN_STATUS_BAD_SIZE,
         "desc->q_heads (%d) must be >= 1 and a multiple of desc->cache.kv_heads (%d)",
         desc->q_heads, c->kv_heads);
  if (desc->head_dim != c->head_dim)
    FAIL(POSATTN_STATUS_BAD_SIZE, "desc->head_dim (%d) must equal desc->cache.head_dim (%d)",
         desc->head_dim, c->head_dim);
  PA_TRY(check_mask_and_scale(msg, msg_size, desc->causal, desc->window_left, desc->softcap,
                              desc->softmax_scale));
  if (desc->use_sinks != 0 && desc->use_sinks != 1)
    FAIL(POSATTN_STATUS_INVALID_ARGUMENT, "desc->use_sinks (%d) must be 0 or 1", desc->use_sinks);
  PA_TRY(check_paged_pe(msg, msg_size, &desc->pe, desc->q_heads, desc->head_dim, desc->num_splits,
                        c->k_rotated, "desc->cache.", "over a paged cache (as in decode)"));

  plan->hq = desc->q_heads;
  plan->hkv = c->kv_heads;
  plan->group = plan->hq / plan->hkv;
  plan->d = desc->head_dim;
  plan->page_size = c->page_size;
  plan->num_pages = c->num_pages;
  plan->mpps = desc->max_pages_per_seq;
  plan->capacity = capacity;
  plan->max_position = desc->max_position > 0 ? desc->max_position
                       : capacity - 1 < PA_MAX_POSITION ? (int32_t)(capacity - 1)
                                                        : PA_MAX_POSITION - 1;
  plan->scale = desc->softmax_scale > 0 ? (double)desc->softmax_scale : 1.0 / sqrt((double)plan->d);
  if (desc->pe.kind == POSATTN_PE_ROPE) {
    plan->rotary_dim = pa_rope_dim(&desc->pe.rope, plan->d);
    plan->rotate_k = !c->k_rotated;
    plan->rotate_on_append = c->k_rotated;
  }
  plan->num_splits = desc->num_splits;
  return POSATTN_STATUS_SUCCESS;
}

/* An int32 index array of `count` elements, 4-byte aligned, as a byte range. */
static posattn_status check_index_array(char *msg, size_t msg_size, const char *name,
                                        const void *a, int64_t count, byte_range *r) {
  if (a == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "%s is NULL", name);
  if ((uintptr_t)a % 4 != 0)
    FAIL(POSATTN_STATUS_BAD_ALIGNMENT, "%s (%p) must be aligned to 4 bytes", name, a);
  return to_range(msg, msg_size, name, a, count, 4, r);
}

/* The run's / append's view of the plan's cache with this layer's pools: checked like decode's
 * cache (pools and FP8 scales), byte ranges into pools[4]. */
static posattn_status check_layer_pools(char *msg, size_t msg_size, const posattn_plan *plan,
                                        void *k_pages, void *v_pages, const float *k_scale,
                                        const float *v_scale, byte_range pools[4]) {
  posattn_kv_cache c = plan->desc.cache;
  c.k_pages = k_pages;
  c.v_pages = v_pages;
  c.k_scale = k_scale;
  c.v_scale = v_scale;
  return check_cache(msg, msg_size, &c, 1, pools);
}

static posattn_status check_plan_workspace(char *msg, size_t msg_size, const posattn_plan *plan,
                                           const void *ws, size_t bytes, byte_range *r) {
  if (bytes < plan->workspace_bytes)
    FAIL(POSATTN_STATUS_WORKSPACE_TOO_SMALL,
         "workspace_bytes (%zu) is smaller than the plan's %zu bytes (posattn_plan_workspace_size())",
         bytes, plan->workspace_bytes);
  if (ws == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "workspace is NULL");
  if ((uintptr_t)ws % 256 != 0)
    FAIL(POSATTN_STATUS_BAD_ALIGNMENT, "workspace (%p) must be 256-byte aligned", ws);
  return to_range(msg, msg_size, "workspace", ws, (int64_t)plan->workspace_bytes, 1, r);
}

posattn_status pa_validate_plan_workspace(char *msg, size_t msg_size, const posattn_plan *plan,
                                          const void *ws, size_t bytes) {
  byte_range r;
  return check_plan_workspace(msg, msg_size, plan, ws, bytes, &r);
}

/* Everything a run writes (out, lse, the workspace) must be disjoint from everything it reads
 * and from each other. ins: the byte ranges it reads. */
static posattn_status check_writes_disjoint(char *msg, size_t msg_size, int nw,
                                            const char *const *wnames, const byte_range *w,
                                            int ni, const char *const *inames,
                                            const byte_range *in) {
  for (int a = 0; a < nw; ++a) {
    for (int b = a + 1; b < nw; ++b)
      PA_TRY(check_disjoint(msg, msg_size, wnames[a], w[a], wnames[b], w[b]));
    for (int b = 0; b < ni; ++b)
      PA_TRY(check_disjoint(msg, msg_size, wnames[a], w[a], inames[b], in[b]));
  }
  return POSATTN_STATUS_SUCCESS;
}

/* What run and append arguments share: the batch within the plan's and the block-table stride
 * (check_batch_and_table), then the three per-sequence index arrays (indptr, kv_lens,
 * block_table) as byte ranges in[0..2] (check_sequence_arrays). */
static posattn_status check_batch_and_table(char *msg, size_t msg_size, const posattn_plan *plan,
                                            int32_t batch, int64_t block_table_stride) {
  if (batch < 1 || batch > plan->desc.max_batch)
    FAIL(POSATTN_STATUS_BAD_SIZE, "args->batch (%d) must be in [1, the plan's max_batch (%d)]",
         batch, plan->desc.max_batch);
  if (block_table_stride < plan->mpps)
    FAIL(POSATTN_STATUS_BAD_STRIDE,
         "args->block_table_stride (%" PRId64 ") must be >= the plan's max_pages_per_seq (%d)",
         block_table_stride, plan->mpps);
  return POSATTN_STATUS_SUCCESS;
}
static posattn_status check_sequence_arrays(char *msg, size_t msg_size, const posattn_plan *plan,
                                            int32_t batch, int64_t block_table_stride,
                                            const char *const names[3], const int32_t *indptr,
                                            const int32_t *kv_lens, const int32_t *block_table,
                                            byte_range in[3]) {
  PA_TRY(check_index_array(msg, msg_size, names[0], indptr, (int64_t)batch + 1, &in[0]));
  PA_TRY(check_index_array(msg, msg_size, names[1], kv_lens, batch, &in[1]));
  return check_index_array(msg, msg_size, names[2], block_table,
                           (int64_t)(batch - 1) * block_table_stride + plan->mpps, &in[2]);
}

posattn_status pa_validate_run_args(char *msg, size_t msg_size, const posattn_plan *plan,
                                    const posattn_run_args *a) {
  if (a == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "args is NULL");
  const posattn_plan_desc *D = &plan->desc;
  PA_TRY(check_batch_and_table(msg, msg_size, plan, a->batch, a->block_table_stride));
  if (a->kv_positions != NULL && a->kv_positions_stride < plan->capacity)
    FAIL(POSATTN_STATUS_BAD_STRIDE,
         "args->kv_positions_stride (%" PRId64 ") must be >= max_pages_per_seq * page_size "
         "(%" PRId64 ") when kv_positions is given",
         a->kv_positions_stride, plan->capacity);
  if (D->use_sinks && a->sink_logits == NULL)
    FAIL(POSATTN_STATUS_NULL_POINTER, "args->sink_logits is NULL but the plan has use_sinks = 1");
  if (!D->use_sinks && a->sink_logits != NULL)
    FAIL(POSATTN_STATUS_INVALID_ARGUMENT,
         "args->sink_logits must be NULL: the plan was created with use_sinks = 0");
  enum { kIn = 10 };
  const char *const inames[kIn] = {"args->q_indptr", "args->kv_lens", "args->block_table",
                                   "args->q_positions", "args->kv_positions", "args->sink_logits",
                                   "args->k_pages", "args->v_pages", "args->k_scale",
                                   "args->v_scale"};
  byte_range in[kIn + 1];
  memset(in, 0, sizeof in);
  PA_TRY(check_sequence_arrays(msg, msg_size, plan, a->batch, a->block_table_stride, inames,
                               a->q_indptr, a->kv_lens, a->block_table, in));
  if (a->q_positions != NULL)
    PA_TRY(check_index_array(msg, msg_size, inames[3], a->q_positions, D->max_q_tokens, &in[3]));
  if (a->kv_positions != NULL)
    PA_TRY(check_index_array(msg, msg_size, inames[4], a->kv_positions,
                             (int64_t)(a->batch - 1) * a->kv_positions_stride + plan->capacity,
                             &in[4]));
  if (a->sink_logits != NULL)
    PA_TRY(check_index_array(msg, msg_size, inames[5], a->sink_logits, plan->hq, &in[5]));
  PA_TRY(check_layer_pools(msg, msg_size, plan, a->k_pages, a->v_pages, a->k_scale, a->v_scale,
                           &in[6]));
  PA_TRY(check_btd_tensor(msg, msg_size, "args->q", &a->q, 1, D->max_q_tokens, "max_q_tokens rows",
                          plan->hq, "q_heads", plan->d, D->q_dtype, "the plan's q_dtype",
                          &in[kIn]));
  byte_range w[3] = {{0, 0}, {0, 0}, {0, 0}};
  const char *const wnames[3] = {"args->out", "args->lse", "args->workspace"};
  PA_TRY(check_btd_tensor(msg, msg_size, "args->out", &a->out, 1, D->max_q_tokens,
                          "max_q_tokens rows", plan->hq, "q_heads", plan->d, D->out_dtype,
                          "the plan's out_dtype", &w[0]));
  if (a->lse != NULL) {
    if ((uintptr_t)a->lse % sizeof(float) != 0)
      FAIL(POSATTN_STATUS_BAD_ALIGNMENT, "args->lse (%p) must be aligned to 4 bytes (fp32)",
           (void *)a->lse);
    PA_TRY(to_range(msg, msg_size, "args->lse", a->lse, (int64_t)D->max_q_tokens * plan->hq,
                    sizeof(float), &w[1]));
  }
  PA_TRY(check_plan_workspace(msg, msg_size, plan, a->workspace, a->workspace_bytes, &w[2]));
  const char *const all_in[kIn + 1] = {inames[0], inames[1], inames[2], inames[3], inames[4],
                                       inames[5], inames[6], inames[7], inames[8], inames[9],
                                       "args->q"};
  return check_writes_disjoint(msg, msg_size, 3, wnames, w, kIn + 1, all_in, in);
}

posattn_status pa_validate_append_args(char *msg, size_t msg_size, const posattn_plan *plan,
                                       const posattn_append_args *a) {
  if (a == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "args is NULL");
  const posattn_plan_desc *D = &plan->desc;
  PA_TRY(check_batch_and_table(msg, msg_size, plan, a->batch, a->block_table_stride));
  enum { kIn = 6 };
  const char *const inames[kIn] = {"args->new_indptr", "args->kv_lens", "args->block_table",
                                   "args->positions",  "args->k_new",   "args->v_new"};
  byte_range in[kIn];
  memset(in, 0, sizeof in);
  PA_TRY(check_sequence_arrays(msg, msg_size, plan, a->batch, a->block_table_stride, inames,
                               a->new_indptr, a->kv_lens, a->block_table, in));
  if (a->positions != NULL)
    PA_TRY(check_index_array(msg, msg_size, inames[3], a->positions, D->max_q_tokens, &in[3]));
  PA_TRY(check_btd_tensor(msg, msg_size, "args->k_new", &a->k_new, 1, D->max_q_tokens,
                          "max_q_tokens rows", plan->hkv, "kv_heads", plan->d, D->q_dtype,
                          "the plan's q_dtype", &in[4]));
  PA_TRY(check_btd_tensor(msg, msg_size, "args->v_new", &a->v_new, 1, D->max_q_tokens,
                          "max_q_tokens rows", plan->hkv, "kv_heads", plan->d, D->q_dtype,
                          "the plan's q_dtype", &in[5]));
  /* The append writes the pools and the workspace's error record; the FP8 scales are read. */
  byte_range pools[4], ws;
  PA_TRY(check_layer_pools(msg, msg_size, plan, a->k_pages, a->v_pages, a->k_scale, a->v_scale,
                           pools));
  PA_TRY(check_plan_workspace(msg, msg_size, plan, a->workspace, a->workspace_bytes, &ws));
  /* K and V pools may interleave (one buffer, K and V of a page or slot side by side): they must
   * not share an ELEMENT (the append's rule, check_pools_disjoint); their byte ranges may cross. */
  posattn_kv_cache layer = plan->desc.cache;
  layer.k_pages = a->k_pages;
  layer.v_pages = a->v_pages;
  PA_TRY(check_pools_disjoint(msg, msg_size, &layer));
  const byte_range reads[kIn + 3] = {in[0], in[1], in[2],    in[3],    in[4],
                                     in[5], pools[2], pools[3], ws};
  const char *const rnames[kIn + 3] = {inames[0],       inames[1],       inames[2],
                                       inames[3],       inames[4],       inames[5],
                                       "args->k_scale", "args->v_scale", "args->workspace"};
  const char *const wnames[2] = {"args->k_pages", "args->v_pages"};
  for (int w = 0; w < 2; ++w)
    for (int r = 0; r < kIn + 3; ++r)
      PA_TRY(check_disjoint(msg, msg_size, wnames[w], pools[w], rnames[r], reads[r]));
  return POSATTN_STATUS_SUCCESS;
}
