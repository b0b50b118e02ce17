/* validate.c -- the one place where caller input is checked, before any work is done.
 *
 * Every failure returns the most specific status and a message that names the argument, the rule
 * it broke, and the offending values. Host arrays named by the descriptor (cu_seqlens, position
 * ids, document ids, PE tables) are read in full here, so a backend may trust them. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define FAIL(st, ...) return pa_fail(msg, msg_size, (st), __VA_ARGS__)

/* Position ids stay below 2^30 so that position differences and the exact-angle split
 * (p = hi*B + lo) never approach the int32 / fp32-integer limits in a kernel. */
#define PA_MAX_POSITION (INT32_C(1) << 30)

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

  if (rope->rotary_dim < 0 || rope->rotary_dim > head_dim)
    FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "%s.rotary_dim (%d) must be in [0, head_dim (%d)]", prefix,
         rope->rotary_dim, head_dim);
  const int32_t rd = rope->rotary_dim ? rope->rotary_dim : head_dim;
  if (rd % 2 != 0) {
    if (rope->rotary_dim == 0)
      FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
           "%s.rotary_dim is 0 (= head_dim (%d)), which must be even", prefix, head_dim);
    FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "%s.rotary_dim (%d) must be even", prefix, rd);
  }
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
  if (sc == POSATTN_ROPE_SCALING_DYNAMIC_NTK && rope->dynamic_seq_len < 0)
    FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
         "%s.dynamic_seq_len (%d) must be >= 0 (0 = largest position id + 1)", prefix,
         rope->dynamic_seq_len);
  if (sc == POSATTN_ROPE_SCALING_YARN) {
    if (!(isfinite(rope->beta_fast) && isfinite(rope->beta_slow) && rope->beta_slow > 0 &&
          rope->beta_fast > rope->beta_slow))
      FAIL(POSATTN_STATUS_BAD_PE_PARAMS,
           "%s.beta_fast (%g) and beta_slow (%g) must be finite with beta_fast > beta_slow > 0",
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
    PA_TRY(check_table(msg, msg_size, rope->ext_factors, rd / 2, name, 0));
  }
  if (sc == POSATTN_ROPE_SCALING_INV_FREQ) {
    snprintf(name, sizeof name, "%s.inv_freq", prefix);
    PA_TRY(check_table(msg, msg_size, rope->inv_freq, rd / 2, name, 0));
  }
  return POSATTN_STATUS_SUCCESS;
}

posattn_status pa_validate_pe(char *msg, size_t msg_size, const posattn_pe *pe, int32_t q_heads,
                              int32_t head_dim) {
  if (pe == NULL) FAIL(POSATTN_STATUS_NULL_POINTER, "pe is NULL");
  if (q_heads < 1) FAIL(POSATTN_STATUS_BAD_SIZE, "q_heads (%d) must be >= 1", q_heads);
  switch (pe->kind) {
    case POSATTN_PE_NONE: return POSATTN_STATUS_SUCCESS;

    case POSATTN_PE_ROPE: return pa_validate_rope(msg, msg_size, &pe->rope, head_dim, "pe.rope");

    case POSATTN_PE_XPOS: {
      const posattn_xpos_params *x = &pe->xpos;
      if (!finite_pos(x->scale_base))
        FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "pe.xpos.scale_base (%g) must be finite and > 0",
             x->scale_base);
      if (!finite_pos(x->gamma))
        FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "pe.xpos.gamma (%g) must be finite and > 0", x->gamma);
      return pa_validate_rope(msg, msg_size, &pe->rope, head_dim, "pe.rope");
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
      if (!(isfinite(f->c) && f->c != 0))
        FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "pe.fire.c (%g) must be finite and != 0", f->c);
      if (!finite_pos(f->L))
        FAIL(POSATTN_STATUS_BAD_PE_PARAMS, "pe.fire.L (%g) must be finite and > 0", f->L);
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

  if (desc->causal != 0 && desc->causal != 1)
    FAIL(POSATTN_STATUS_BAD_MASK, "desc->causal (%d) must be 0 or 1", desc->causal);
  if (desc->window_left < -1)
    FAIL(POSATTN_STATUS_BAD_MASK, "desc->window_left (%d) must be >= -1 (-1 = unbounded)",
         desc->window_left);
  if (desc->window_right < -1)
    FAIL(POSATTN_STATUS_BAD_MASK, "desc->window_right (%d) must be >= -1 (-1 = unbounded)",
         desc->window_right);
  if (desc->doc_ids != NULL) PA_TRY(check_documents(msg, msg_size, p));

  if (!finite_nonneg(desc->softcap))
    FAIL(POSATTN_STATUS_INVALID_ARGUMENT, "desc->softcap (%g) must be 0 (off) or finite and > 0",
         (double)desc->softcap);
  if (!finite_nonneg(desc->softmax_scale))
    FAIL(POSATTN_STATUS_INVALID_ARGUMENT,
         "desc->softmax_scale (%g) must be 0 (= 1/sqrt(head_dim)) or finite and > 0",
         (double)desc->softmax_scale);
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
    p->rotary_dim = desc->pe.rope.rotary_dim ? desc->pe.rope.rotary_dim : p->d;
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
  byte_range w, r[5];
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
