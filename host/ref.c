/* ref.c -- the REF backend: attention as the header defines it, in plain loops with fp64
 * arithmetic. It is the definition of correct, so it favours the obvious form over speed; the one
 * concession is that each (sequence, kv head) has its K transformed and V widened once, which
 * keeps a 1024 x 1024 x 128 head well under a second.
 *
 * Per query row: logits s_j = scale * (q'.k'_j) [xPos: pair i weighted by zeta_i^((pq-pk)/base)],
 * softcap, + bias; two-pass softmax with the row maximum subtracted; out = sum p_j v_j / sum p_j,
 * lse = max + log(sum p_j). With a sink (desc->sink_logits) the sum has one more term
 * e^(sink - max) without a value, and the maximum includes the sink, so a row that sees no key
 * gets out 0 and lse = sink. Inputs are widened exactly, outputs rounded once.
 * Non-finite values follow posattn.h's NaN RULE: a row with a non-finite logit (pa_ref_logit,
 * which applies fp32's overflow like the kernels) or a non-finite value of a visible key (whose
 * prepared k is then made NaN, so its logit is NaN) gets NaN in every feature and a NaN lse;
 * masked keys are never read. */
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "internal.h"

/* The workspace, carved into fp64 arrays (see pa_ref_workspace_size). */
typedef struct ref_scratch {
  double *inv_freq; /* [rotary_dim/2] RoPE/xPos frequencies */
  double *xpos_ld;  /* [rotary_dim/2] xPos log decay per pair, per unit of pq - pk */
  double *k;        /* [kv_len][d] transformed keys of one (sequence, kv head) */
  double *v;        /* [kv_len][d] values of the same */
  double *q;        /* [d] transformed query row */
  double *acc;      /* [d] output accumulator */
  double *s;        /* [kv_len] logits of the row; -inf where the key is not visible */
} ref_scratch;

static size_t scratch_doubles(const pa_problem *p) {
  size_t half = (size_t)(p->rotary_dim / 2), kv = (size_t)p->kv_len, d = (size_t)p->d;
  return pa_size_add(pa_size_mul(2 * kv, d), 2 * half + 2 * d + kv);
}

/* SIZE_MAX when it does not fit (pa_choose answers BAD_SIZE) */
size_t pa_ref_workspace_size(const pa_problem *p) {
  return pa_size_mul(scratch_doubles(p), sizeof(double));
}

static void carve(const pa_problem *p, double *ws, ref_scratch *sc) {
  size_t half = (size_t)(p->rotary_dim / 2), kv = (size_t)p->kv_len, d = (size_t)p->d;
  sc->inv_freq = ws;
  sc->xpos_ld = sc->inv_freq + half;
  sc->k = sc->xpos_ld + half;
  sc->v = sc->k + kv * d;
  sc->q = sc->v + kv * d;
  sc->acc = sc->q + d;
  sc->s = sc->acc + d;
}

static int is_rotary(const posattn_pe *pe) {
  return pe->kind == POSATTN_PE_ROPE || pe->kind == POSATTN_PE_XPOS;
}

/* One head vector of tensor t at element offset `off`, widened to fp64, RoPE-rotated at `pos`
 * when the encoding is rotary. */
static void load_row(const pa_problem *p, const ref_scratch *sc, double attn_factor,
                     const posattn_tensor *t, int64_t off, int64_t pos, int rotate, double *x) {
  for (int32_t f = 0; f < p->d; f++) x[f] = pa_load(t->data, t->dtype, off + f);
  if (rotate)
    pa_rope_rotate(p->desc->pe.rope.layout, p->rotary_dim, sc->inv_freq, attn_factor, pos,
                   x + p->desc->pe.rope.rotary_offset);
}

/* q'.k' with xPos's per-pair decay over delta = pq - pk (weighting each pair's product rather
 * than scaling q and k apart, which would overflow at long distances). */
static double xpos_dot(const pa_problem *p, const ref_scratch *sc, const double *q,
                       const double *k, int64_t delta) {
  int32_t half = p->rotary_dim / 2;
  int gptj = p->desc->pe.rope.layout == POSATTN_ROPE_GPTJ;
  double dot = 0;
  for (int32_t i = 0; i < half; i++) {
    int32_t a = gptj ? 2 * i : i, b = gptj ? 2 * i + 1 : i + half;
    dot += exp((double)delta * sc->xpos_ld[i]) * (q[a] * k[a] + q[b] * k[b]);
  }
  for (int32_t f = p->rotary_dim; f < p->d; f++) dot += q[f] * k[f];
  return dot;
}

static double f32_overflow(double x) { return fabs(x) > FLT_MAX ? copysign(INFINITY, x) : x; }

double pa_ref_logit(double dot, double scale, float softcap, double bias) {
  double s = f32_overflow(scale * f32_overflow(dot));
  if (softcap > 0) s = (double)softcap * tanh(s / (double)softcap);
  /* the kernels add an fp32 bias to the fp32 logit: either beyond FLT_MAX is +-inf there */
  return f32_overflow(s + f32_overflow(bias));
}

void pa_ref_poisoned_row(void *out, posattn_dtype dtype, int64_t off, int32_t d, float *lse) {
  for (int32_t f = 0; f < d; f++) pa_store(out, dtype, off + f, NAN);
  if (lse) *lse = NAN;
}

/* Whether row v[0 .. d) holds a NaN or an infinity. */
static int any_nonfinite(const double *v, int32_t d) {
  for (int32_t f = 0; f < d; f++)
    if (!isfinite(v[f])) return 1;
  return 0;
}

/* One query row (sequence b, token i, head h) against the prepared keys/values. */
static void row(const pa_problem *p, const ref_scratch *sc, double attn_factor, int32_t b,
                int32_t i, int32_t h) {
  const posattn_attention_desc *desc = p->desc;
  const posattn_pe *pe = &desc->pe;
  const int32_t d = p->d, lk = pa_kv_seqlen(p, b);
  const int64_t pq = pa_q_pos(p, b, i);
  load_row(p, sc, attn_factor, p->q, pa_q_offset(p, p->q, b, i, h), pq, is_rotary(pe), sc->q);

  /* the sink's logit, -inf without one (then it adds e^-inf = 0 to the sum) */
  const double sink = desc->sink_logits ? (double)desc->sink_logits[h] : -INFINITY;
  double mx = sink;
  int poisoned = 0;
  for (int32_t j = 0; j < lk; j++) {
    if (!pa_visible(p, b, i, j)) {
      sc->s[j] = -INFINITY;
      continue;
    }
    const int64_t pk = pa_kv_pos(p, b, j);
    const double *k = sc->k + (int64_t)j * d;
    double dot = 0;
    if (pe->kind == POSATTN_PE_XPOS) {
      dot = xpos_dot(p, sc, sc->q, k, pq - pk);
    } else {
      for (int32_t f = 0; f < d; f++) dot += sc->q[f] * k[f];
    }
    const double s = pa_ref_logit(dot, p->scale, desc->softcap, pa_pe_bias_eval(pe, p->hq, h, pq, pk));
    poisoned |= !isfinite(s);
    sc->s[j] = s;
    if (s > mx) mx = s;
  }
  const int64_t off = pa_q_offset(p, p->out, b, i, h);
  float *lse = p->lse ? &p->lse[pa_lse_index(p, b, i, h)] : NULL;
  if (poisoned) {
    pa_ref_poisoned_row(p->out->data, p->out->dtype, off, d, lse);
    return;
  }

  for (int32_t f = 0; f < d; f++) sc->acc[f] = 0;
  double sum = 0;
  if (mx > -INFINITY) { /* else no visible key and no sink: out 0, lse -inf */
    sum = exp(sink - mx);
    for (int32_t j = 0; j < lk; j++) {
      if (sc->s[j] == -INFINITY) continue;
      double w = exp(sc->s[j] - mx);
      sum += w;
      const double *v = sc->v + (int64_t)j * d;
      for (int32_t f = 0; f < d; f++) sc->acc[f] += w * v[f];
    }
  }

  for (int32_t f = 0; f < d; f++)
    pa_store(p->out->data, p->out->dtype, off + f, sum > 0 ? sc->acc[f] / sum : 0.0);
  if (lse) *lse = sum > 0 ? (float)(mx + log(sum)) : -INFINITY;
}

posattn_status pa_ref_forward(posattn_context *ctx, const pa_problem *p, void *ws,
                              size_t ws_bytes) {
  PA_CHECK_INTERNAL(ctx, p && p->desc && p->q && p->k && p->v && p->out);
  const size_t need = pa_ref_workspace_size(p);
  if (ws_bytes < need)
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_WORKSPACE_TOO_SMALL,
                       "workspace_bytes (%zu) must be >= %zu for the REF backend", ws_bytes, need);
  if (!ws) return PA_CTX_FAIL(ctx, POSATTN_STATUS_NULL_POINTER, "workspace is NULL");
  if ((uintptr_t)ws % sizeof(double) != 0)
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_BAD_ALIGNMENT,
                       "workspace must be aligned to %zu bytes", sizeof(double));

  ref_scratch sc;
  carve(p, (double *)ws, &sc);
  const posattn_pe *pe = &p->desc->pe;
  double attn_factor = 1.0;
  if (is_rotary(pe)) {
    /* DYNAMIC_NTK without dynamic_seq_len: the largest position id in the call + 1 */
    int64_t max_pos = p->max_q_pos > p->max_kv_pos ? p->max_q_pos : p->max_kv_pos;
    int32_t seq_len = max_pos + 1 > INT32_MAX ? INT32_MAX : (int32_t)(max_pos + 1);
    PA_TRY(posattn_pe_rope_inv_freq(&pe->rope, p->d, seq_len, sc.inv_freq, &attn_factor,
                                    ctx->msg, PA_MSG_SIZE));
    if (pe->kind == POSATTN_PE_XPOS)
      for (int32_t i = 0; i < p->rotary_dim / 2; i++)
        sc.xpos_ld[i] = pa_xpos_log_decay(&pe->xpos, p->rotary_dim, i);
  }

  for (int32_t b = 0; b < p->batch; b++) {
    const int32_t lq = pa_q_seqlen(p, b), lk = pa_kv_seqlen(p, b);
    for (int32_t kh = 0; kh < p->hkv; kh++) {
      for (int32_t j = 0; j < lk; j++) {
        const int64_t pk = pa_kv_pos(p, b, j);
        load_row(p, &sc, attn_factor, p->k, pa_kv_offset(p, p->k, b, j, kh), pk, is_rotary(pe),
                 sc.k + (int64_t)j * p->d);
        load_row(p, &sc, attn_factor, p->v, pa_kv_offset(p, p->v, b, j, kh), pk, 0,
                 sc.v + (int64_t)j * p->d);
        /* a non-finite value poisons the rows that see key j: its logit becomes NaN */
        if (any_nonfinite(sc.v + (int64_t)j * p->d, p->d)) sc.k[(int64_t)j * p->d] = NAN;
      }
      for (int32_t h = kh * p->group; h < (kh + 1) * p->group; h++)
        for (int32_t i = 0; i < lq; i++) row(p, &sc, attn_factor, b, i, h);
    }
  }
  return POSATTN_STATUS_SUCCESS;
}
