/* lowp.c -- low-precision attention emulation: fp64 arithmetic rounded to a chosen format at
 * every point where a kernel rounds, each point switchable on its own (drift.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drift.h"
#include "internal.h"

/* ---- configuration --------------------------------------------------------------------------- */

void pa_lp_config_fp64(pa_lp_config *c) {
  memset(c, 0, sizeof *c);
  c->angle = PA_ANGLE_F64;
  c->split = 4096;
}

void pa_lp_config_fp32(pa_lp_config *c) {
  pa_lp_config_fp64(c);
  c->input = c->table = c->rot = c->operand = c->qk_acc = PA_FMT_F32;
  c->softmax = c->p = c->pv_acc = c->output = PA_FMT_F32;
  c->angle = PA_ANGLE_FAST;
  c->kv_block = 64; /* a typical FlashAttention-2 key tile */
}

void pa_lp_config_baseline(pa_lp_config *c, pa_fmt dt) {
  pa_lp_config_fp32(c);
  c->input = c->p = c->output = dt;
}

void pa_lp_config_tc(pa_lp_config *c, pa_fmt dt) {
  pa_lp_config_baseline(c, dt);
  c->operand = dt;
  c->lazy = 8; /* kernels/prefill/epilogue.cuh: kLazy */
}

const char *pa_fmt_name(pa_fmt f) {
  switch (f) {
    case PA_FMT_F64: return "f64";
    case PA_FMT_F32: return "f32";
    case PA_FMT_F16: return "f16";
    case PA_FMT_BF16: return "bf16";
  }
  return "?";
}

const char *pa_angle_name(pa_angle a) {
  switch (a) {
    case PA_ANGLE_F64: return "f64";
    case PA_ANGLE_FAST: return "fast";
    case PA_ANGLE_EXACT: return "exact";
  }
  return "?";
}

static int parse_fmt(const char *s, pa_fmt *f) {
  static const pa_fmt all[] = {PA_FMT_F64, PA_FMT_F32, PA_FMT_F16, PA_FMT_BF16};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
    if (strcmp(s, pa_fmt_name(all[i])) == 0) {
      *f = all[i];
      return 1;
    }
  return 0;
}

posattn_status pa_lp_config_parse(const char *text, pa_lp_config *c, char *msg, size_t msg_size) {
  if (text == NULL || c == NULL)
    return pa_fail(msg, msg_size, POSATTN_STATUS_NULL_POINTER, "config text and c must not be NULL");
  char buf[512];
  if (strlen(text) >= sizeof buf)
    return pa_fail(msg, msg_size, POSATTN_STATUS_INVALID_ARGUMENT,
                   "config text is longer than %zu characters", sizeof buf - 1);
  strcpy(buf, text);
  char *save = NULL;
  char *tok = strtok_r(buf, ",", &save);
  if (tok == NULL)
    return pa_fail(msg, msg_size, POSATTN_STATUS_INVALID_ARGUMENT, "config text is empty");
  if (strcmp(tok, "fp64") == 0) pa_lp_config_fp64(c);
  else if (strcmp(tok, "fp32") == 0) pa_lp_config_fp32(c);
  else if (strcmp(tok, "baseline-bf16") == 0) pa_lp_config_baseline(c, PA_FMT_BF16);
  else if (strcmp(tok, "baseline-fp16") == 0) pa_lp_config_baseline(c, PA_FMT_F16);
  else if (strcmp(tok, "tc-bf16") == 0) pa_lp_config_tc(c, PA_FMT_BF16);
  else if (strcmp(tok, "tc-fp16") == 0) pa_lp_config_tc(c, PA_FMT_F16);
  else
    return pa_fail(msg, msg_size, POSATTN_STATUS_INVALID_ARGUMENT,
                   "config preset '%s' must be fp64, fp32, baseline-bf16, baseline-fp16, tc-bf16 "
                   "or tc-fp16", tok);
  while ((tok = strtok_r(NULL, ",", &save)) != NULL) {
    char *eq = strchr(tok, '=');
    if (eq == NULL)
      return pa_fail(msg, msg_size, POSATTN_STATUS_INVALID_ARGUMENT,
                     "config token '%s' must be key=value", tok);
    *eq = '\0';
    const char *key = tok, *val = eq + 1;
    struct { const char *name; pa_fmt *field; } fmts[] = {
        {"input", &c->input},     {"table", &c->table},     {"rot", &c->rot},
        {"operand", &c->operand}, {"qk_acc", &c->qk_acc},   {"softmax", &c->softmax},
        {"p", &c->p},             {"pv_acc", &c->pv_acc},   {"output", &c->output}};
    int done = 0;
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0] && !done; ++i) {
      if (strcmp(key, fmts[i].name) != 0) continue;
      if (!parse_fmt(val, fmts[i].field))
        return pa_fail(msg, msg_size, POSATTN_STATUS_INVALID_ARGUMENT,
                       "config %s=%s: the format must be f64, f32, f16 or bf16", key, val);
      done = 1;
    }
    if (done) continue;
    if (strcmp(key, "angle") == 0) {
      if (strcmp(val, "f64") == 0) c->angle = PA_ANGLE_F64;
      else if (strcmp(val, "fast") == 0) c->angle = PA_ANGLE_FAST;
      else if (strcmp(val, "exact") == 0) c->angle = PA_ANGLE_EXACT;
      else
        return pa_fail(msg, msg_size, POSATTN_STATUS_INVALID_ARGUMENT,
                       "config angle=%s: must be f64, fast or exact", val);
    } else if (strcmp(key, "block") == 0 || strcmp(key, "split") == 0 ||
               strcmp(key, "lazy") == 0) {
      char *end = NULL;
      long n = strtol(val, &end, 10);
      const int lo = key[0] == 's' ? 1 : 0;
      const long hi = key[0] == 'l' ? 64 : (1L << 24); /* lazy: weights up to 2^64, inside fp32 */
      if (*val == '\0' || *end != '\0' || n < lo || n > hi)
        return pa_fail(msg, msg_size, POSATTN_STATUS_INVALID_ARGUMENT,
                       "config %s=%s: must be an integer in [%d, %ld]", key, val, lo, hi);
      if (key[0] == 'b') c->kv_block = (int32_t)n;
      else if (key[0] == 's') c->split = (int32_t)n;
      else c->lazy = (int32_t)n;
    } else {
      return pa_fail(msg, msg_size, POSATTN_STATUS_INVALID_ARGUMENT,
                     "config key '%s' is unknown (input, angle, table, rot, operand, qk_acc, "
                     "softmax, p, pv_acc, output, block, split, lazy)", key);
    }
  }
  return POSATTN_STATUS_SUCCESS;
}

void pa_lp_config_format(const pa_lp_config *c, char *buf, size_t size) {
  snprintf(buf, size,
           "input=%s angle=%s table=%s rot=%s operand=%s qk_acc=%s softmax=%s p=%s pv_acc=%s "
           "output=%s block=%d split=%d lazy=%d",
           pa_fmt_name(c->input), pa_angle_name(c->angle), pa_fmt_name(c->table),
           pa_fmt_name(c->rot), pa_fmt_name(c->operand), pa_fmt_name(c->qk_acc),
           pa_fmt_name(c->softmax), pa_fmt_name(c->p), pa_fmt_name(c->pv_acc),
           pa_fmt_name(c->output), (int)c->kv_block, (int)c->split, (int)c->lazy);
}

/* ---- rounding and the angle ------------------------------------------------------------------ */

double pa_lp_round(pa_fmt f, double x) {
  switch (f) {
    case PA_FMT_F64: return x;
    case PA_FMT_F32: return (double)(float)x;
    default: return pa_round_to((posattn_dtype)f, x);
  }
}
#define RND pa_lp_round

/* 2*pi = TWO_PI_HI + TWO_PI_LO to ~1e-32 (TWO_PI_LO = 2*pi - fl(2*pi)). */
#define TWO_PI_HI 6.283185307179586231995926937088
#define TWO_PI_LO 2.4492935982947063544521318610e-16

double pa_lp_exact_angle(int64_t p, double w) {
  /* p*w = hi + lo exactly (p < 2^53 is exact in a double); then subtract k*2*pi with k*TWO_PI_HI
   * formed exactly by fma, so the reduced angle keeps ~1e-16 absolute accuracy at any p. */
  double pd = (double)p;
  double hi = pd * w;
  double lo = fma(pd, w, -hi);
  double k = nearbyint(hi / TWO_PI_HI);
  double r = fma(-k, TWO_PI_HI, hi); /* exact: the result needs fewer bits than hi has */
  return (r + lo) - k * TWO_PI_LO;
}

/* cos/sin of pair i at position p, in the table format, attention factor included (FAST, F64). */
static void direct_cos_sin(const pa_lp_rope *r, int32_t i, int64_t p, double *c, double *s) {
  double a;
  if (r->angle == PA_ANGLE_FAST) {
    float w32 = (float)r->w[i];
    a = (double)((float)p * w32); /* one fp32 multiply, as an fp32 kernel forms the angle */
  } else {
    a = pa_lp_exact_angle(p, r->w[i]);
  }
  *c = RND(r->table, r->attention_factor * cos(a));
  *s = RND(r->table, r->attention_factor * sin(a));
}

void pa_lp_rope_free(pa_lp_rope *r) {
  if (r == NULL) return;
  free(r->w);
  free(r->lo_c);
  free(r->lo_s);
  free(r->hi_c);
  free(r->hi_s);
  memset(r, 0, sizeof *r);
}

posattn_status pa_lp_rope_init(pa_lp_rope *r, const pa_lp_config *c,
                               const posattn_rope_params *rope, int32_t head_dim,
                               int32_t seq_len, int64_t max_pos, char *msg, size_t msg_size) {
  memset(r, 0, sizeof *r);
  if (max_pos < 0 || max_pos > INT32_MAX)
    return pa_fail(msg, msg_size, POSATTN_STATUS_BAD_POSITIONS,
                   "max_pos (%lld) must be in [0, 2^31-1]", (long long)max_pos);
  if (c->split < 1)
    return pa_fail(msg, msg_size, POSATTN_STATUS_INVALID_ARGUMENT,
                   "config split (%d) must be >= 1", (int)c->split);
  PA_TRY(pa_validate_rope(msg, msg_size, rope, head_dim, "rope"));
  r->head_dim = head_dim;
  r->rotary_dim = pa_rope_dim(rope, head_dim);
  r->offset = rope->rotary_offset;
  r->half = r->rotary_dim / 2;
  r->layout = rope->layout;
  r->angle = c->angle;
  r->table = c->table;
  r->rot = c->rot;
  r->split = c->split;
  r->max_pos = max_pos;
  r->w = malloc(sizeof(double) * (size_t)(r->half > 0 ? r->half : 1));
  if (r->w == NULL) return pa_fail(msg, msg_size, POSATTN_STATUS_ALLOC_FAILED, "inv_freq table");
  char why[256] = "";
  posattn_status st = posattn_pe_rope_inv_freq(rope, head_dim, seq_len, r->w,
                                               &r->attention_factor, why, sizeof why);
  if (st != POSATTN_STATUS_SUCCESS) {
    pa_lp_rope_free(r);
    return pa_fail(msg, msg_size, st, "%s", why);
  }
  if (c->angle != PA_ANGLE_EXACT) return POSATTN_STATUS_SUCCESS;
  size_t nlo = (size_t)r->split * (size_t)r->half;
  size_t nhi = (size_t)(max_pos / r->split + 1) * (size_t)r->half;
  r->lo_c = malloc(sizeof(double) * nlo);
  r->lo_s = malloc(sizeof(double) * nlo);
  r->hi_c = malloc(sizeof(double) * nhi);
  r->hi_s = malloc(sizeof(double) * nhi);
  if (!r->lo_c || !r->lo_s || !r->hi_c || !r->hi_s) {
    pa_lp_rope_free(r);
    return pa_fail(msg, msg_size, POSATTN_STATUS_ALLOC_FAILED, "EXACT RoPE tables (%zu entries)",
                   2 * (nlo + nhi));
  }
  for (size_t t = 0; t < nlo; ++t) {
    int64_t p = (int64_t)(t / (size_t)r->half);
    double a = pa_lp_exact_angle(p, r->w[t % (size_t)r->half]);
    r->lo_c[t] = RND(r->table, r->attention_factor * cos(a));
    r->lo_s[t] = RND(r->table, r->attention_factor * sin(a));
  }
  for (size_t t = 0; t < nhi; ++t) {
    int64_t p = (int64_t)(t / (size_t)r->half) * r->split;
    double a = pa_lp_exact_angle(p, r->w[t % (size_t)r->half]);
    r->hi_c[t] = RND(r->table, cos(a));
    r->hi_s[t] = RND(r->table, sin(a));
  }
  return POSATTN_STATUS_SUCCESS;
}

static void rope_cos_sin(const pa_lp_rope *r, int32_t i, int64_t p, double *c, double *s) {
  if (r->angle != PA_ANGLE_EXACT) {
    direct_cos_sin(r, i, p, c, s);
    return;
  }
  size_t hi = (size_t)(p / r->split) * (size_t)r->half + (size_t)i;
  size_t lo = (size_t)(p % r->split) * (size_t)r->half + (size_t)i;
  double hc = r->hi_c[hi], hs = r->hi_s[hi], lc = r->lo_c[lo], ls = r->lo_s[lo];
  /* R(hi) * R(lo) as one complex multiply in the rotation arithmetic */
  *c = RND(r->rot, RND(r->rot, hc * lc) - RND(r->rot, hs * ls));
  *s = RND(r->rot, RND(r->rot, hs * lc) + RND(r->rot, hc * ls));
}

void pa_lp_prepare(const pa_lp_config *c, const pa_lp_rope *r, int32_t head_dim, const double *x,
                   int64_t pos, double *y) {
  for (int32_t f = 0; f < head_dim; ++f) y[f] = RND(c->input, x[f]);
  if (r != NULL) {
    for (int32_t i = 0; i < r->half; ++i) {
      int32_t ia = r->offset + (r->layout == POSATTN_ROPE_NEOX ? i : 2 * i);
      int32_t ib = r->offset + (r->layout == POSATTN_ROPE_NEOX ? i + r->half : 2 * i + 1);
      double cs, sn;
      rope_cos_sin(r, i, pos, &cs, &sn);
      double a = y[ia], b = y[ib];
      y[ia] = RND(c->rot, RND(c->rot, a * cs) - RND(c->rot, b * sn));
      y[ib] = RND(c->rot, RND(c->rot, a * sn) + RND(c->rot, b * cs));
    }
  }
  for (int32_t f = 0; f < head_dim; ++f) y[f] = RND(c->operand, y[f]);
}

double pa_lp_dot(const pa_lp_config *c, const double *a, const double *b, int32_t n) {
  double s = 0.0;
  switch (c->qk_acc) {
    case PA_FMT_F64:
      for (int32_t i = 0; i < n; ++i) s += a[i] * b[i];
      break;
    case PA_FMT_F32: /* products of fp32 operands are exact in fp64: one rounding per step */
      for (int32_t i = 0; i < n; ++i) s = (double)(float)(s + a[i] * b[i]);
      break;
    default:
      for (int32_t i = 0; i < n; ++i) s = RND(c->qk_acc, s + a[i] * b[i]);
  }
  return s;
}

/* ---- one query row: online softmax over key blocks ------------------------------------------- */

static double logit_of(const pa_lp_config *c, const pa_lp_logit *lg, const double *q, int64_t pq,
                       const double *k, int64_t pk, int32_t d) {
  const pa_fmt sm = c->softmax;
  double s = RND(sm, lg->scale * pa_lp_dot(c, q, k, d));
  if (lg->softcap > 0) s = RND(sm, lg->softcap * tanh(s / lg->softcap));
  if (lg->pe != NULL) {
    double bias = pa_pe_bias_eval(lg->pe, lg->q_heads, lg->head, pq, pk);
    if (bias != 0.0) s = RND(sm, s + RND(sm, bias));
  }
  return s;
}

posattn_status pa_lp_row(const pa_lp_config *c, const pa_lp_logit *lg, const double *q, int64_t pq,
                         const double *K, const double *V, const int64_t *pk, const int64_t *idx,
                         int64_t n, int32_t d, double *out, double *lse, double *logits,
                         double *weights) {
  const pa_fmt sm = c->softmax, pv = c->pv_acc;
  const int64_t bc = c->kv_block > 0 ? c->kv_block : (n > 0 ? n : 1);
  const int64_t nblk = (n + bc - 1) / bc;
  double *s = malloc(sizeof(double) * (size_t)bc);
  double *acc = calloc((size_t)d, sizeof(double));
  double *mblk = weights ? malloc(sizeof(double) * (size_t)(nblk > 0 ? nblk : 1)) : NULL;
  if (!s || !acc || (weights && !mblk)) {
    free(s);
    free(acc);
    free(mblk);
    return pa_fail(NULL, 0, POSATTN_STATUS_ALLOC_FAILED, "row buffers (%lld keys)", (long long)bc);
  }
  double m = -INFINITY, l = 0.0;
  for (int64_t b0 = 0, blk = 0; b0 < n; b0 += bc, ++blk) {
    int64_t nb = n - b0 < bc ? n - b0 : bc;
    double mnew = m;
    for (int64_t t = 0; t < nb; ++t) {
      int64_t j = idx[b0 + t];
      s[t] = logit_of(c, lg, q, pq, K + j * d, pk[j], d);
      if (logits) logits[b0 + t] = s[t];
      if (s[t] > mnew) mnew = s[t];
    }
    /* lazy: keep the old max while this block's exceeds it by at most lazy log2 units */
    if (c->lazy > 0 && m != -INFINITY && !((mnew - m) * 1.4426950408889634 > c->lazy)) mnew = m;
    double alpha = m == -INFINITY ? 0.0 : RND(sm, exp(RND(sm, m - mnew)));
    l = RND(sm, l * alpha);
    for (int32_t f = 0; f < d; ++f) acc[f] = RND(pv, acc[f] * alpha);
    for (int64_t t = 0; t < nb; ++t) {
      double p = RND(sm, exp(RND(sm, s[t] - mnew)));
      l = RND(sm, l + p); /* the row sum uses P before its rounding, as FlashAttention does */
      double pr = RND(c->p, p);
      if (weights) weights[b0 + t] = pr;
      const double *v = V + idx[b0 + t] * d;
      for (int32_t f = 0; f < d; ++f) acc[f] = RND(pv, acc[f] + pr * v[f]);
    }
    if (mblk) mblk[blk] = mnew;
    m = mnew;
  }
  for (int32_t f = 0; f < d; ++f)
    out[f] = n > 0 ? RND(c->output, RND(sm, acc[f] / l)) : 0.0;
  *lse = n > 0 ? m + log(l) : -INFINITY;
  if (weights) /* later blocks rescaled this block's P by exp(m_block - m_final) */
    for (int64_t t = 0; t < n; ++t) weights[t] *= exp(mblk[t / bc] - m) / l;
  free(s);
  free(acc);
  free(mblk);
  return POSATTN_STATUS_SUCCESS;
}

/* ---- a whole call ---------------------------------------------------------------------------- */

#define PA_LP_MAX_DIM 1024 /* one head vector lives on the stack */

posattn_status pa_lp_forward(const pa_lp_config *c, const posattn_attention_desc *desc,
                             const posattn_tensor *q, const posattn_tensor *k,
                             const posattn_tensor *v, double *out, double *lse, double *logits,
                             char *msg, size_t msg_size) {
  if (c == NULL || out == NULL || q == NULL || k == NULL || v == NULL)
    return pa_fail(msg, msg_size, POSATTN_STATUS_NULL_POINTER,
                   "c, q, k, v and out must not be NULL");
  pa_problem p;
  /* validation needs an output tensor; this fp32 scratch only stands in for it */
  posattn_status st = pa_validate(msg, msg_size, desc, q->dtype, POSATTN_DTYPE_F32, NULL, NULL,
                                  NULL, NULL, NULL, &p);
  if (st != POSATTN_STATUS_SUCCESS) return st;
  const int32_t d = p.d;
  float *scratch = malloc(sizeof(float) * (size_t)(p.total_q * p.hq * d));
  if (scratch == NULL)
    return pa_fail(msg, msg_size, POSATTN_STATUS_ALLOC_FAILED, "validation scratch output");
  posattn_tensor ot;
  posattn_tensor_init_contiguous(&ot, scratch, POSATTN_DTYPE_F32, p.varlen ? 0 : p.q_len, p.hq, d);
  if (p.varlen) {
    ot.stride_head = d;
    ot.stride_seq = (int64_t)p.hq * d;
  }
  st = pa_validate(msg, msg_size, desc, q->dtype, POSATTN_DTYPE_F32, q, k, v, &ot, NULL, &p);
  free(scratch);
  if (st != POSATTN_STATUS_SUCCESS) return st;
  if (desc->pe.kind == POSATTN_PE_XPOS)
    return pa_fail(msg, msg_size, POSATTN_STATUS_NOT_SUPPORTED,
                   "desc->pe.kind XPOS: the low-precision emulation covers NONE, ROPE and the "
                   "additive biases");
  if (logits != NULL && p.varlen)
    return pa_fail(msg, msg_size, POSATTN_STATUS_NOT_SUPPORTED,
                   "logits output is for dense problems only (cu_seqlens given)");
  if (p.d > PA_LP_MAX_DIM)
    return pa_fail(msg, msg_size, POSATTN_STATUS_NOT_SUPPORTED,
                   "desc->head_dim (%d): the emulation handles at most %d", (int)p.d,
                   PA_LP_MAX_DIM);
  const int rope = desc->pe.kind == POSATTN_PE_ROPE;
  pa_lp_rope r;
  if (rope)
    PA_TRY(pa_lp_rope_init(&r, c, &desc->pe.rope, d, p.kv_len,
                           p.max_q_pos > p.max_kv_pos ? p.max_q_pos : p.max_kv_pos, msg,
                           msg_size));
  const int32_t maxkv = p.kv_len;
  double *K = malloc(sizeof(double) * (size_t)maxkv * d);
  double *V = malloc(sizeof(double) * (size_t)maxkv * d);
  double *qv = malloc(sizeof(double) * (size_t)d);
  int64_t *pk = malloc(sizeof(int64_t) * (size_t)maxkv);
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)maxkv);
  double *lrow = malloc(sizeof(double) * (size_t)maxkv);
  st = POSATTN_STATUS_SUCCESS;
  if (!K || !V || !qv || !pk || !idx || !lrow)
    st = pa_fail(msg, msg_size, POSATTN_STATUS_ALLOC_FAILED, "key/value buffers (%d keys)",
                 (int)maxkv);
  double x[PA_LP_MAX_DIM];
  pa_lp_logit lg = {p.scale, desc->softcap, &desc->pe, p.hq, 0};
  for (int32_t b = 0; b < p.batch && st == POSATTN_STATUS_SUCCESS; ++b) {
    const int32_t lq = pa_q_seqlen(&p, b), lk = pa_kv_seqlen(&p, b);
    for (int32_t hk = 0; hk < p.hkv && st == POSATTN_STATUS_SUCCESS; ++hk) {
      for (int32_t j = 0; j < lk; ++j) {
        int64_t ko = pa_kv_offset(&p, k, b, j, hk), vo = pa_kv_offset(&p, v, b, j, hk);
        pk[j] = pa_kv_pos(&p, b, j);
        for (int32_t f = 0; f < d; ++f) x[f] = pa_load(k->data, k->dtype, ko + f);
        pa_lp_prepare(c, rope ? &r : NULL, d, x, pk[j], K + (int64_t)j * d);
        for (int32_t f = 0; f < d; ++f)
          V[(int64_t)j * d + f] = RND(c->input, pa_load(v->data, v->dtype, vo + f));
      }
      for (int32_t h = hk * p.group; h < (hk + 1) * p.group && st == POSATTN_STATUS_SUCCESS; ++h) {
        lg.head = h;
        for (int32_t i = 0; i < lq && st == POSATTN_STATUS_SUCCESS; ++i) {
          int64_t pq = pa_q_pos(&p, b, i);
          int64_t qo = pa_q_offset(&p, q, b, i, h);
          for (int32_t f = 0; f < d; ++f) x[f] = pa_load(q->data, q->dtype, qo + f);
          pa_lp_prepare(c, rope ? &r : NULL, d, x, pq, qv);
          int64_t n = 0;
          for (int32_t j = 0; j < lk; ++j)
            if (pa_visible(&p, b, i, j)) idx[n++] = j;
          int64_t row = pa_q_start(&p, b) + i;
          double l = -INFINITY; /* set by pa_lp_row on success */
          st = pa_lp_row(c, &lg, qv, pq, K, V, pk, idx, n, d, out + (row * p.hq + h) * d, &l,
                         logits ? lrow : NULL, NULL);
          if (st != POSATTN_STATUS_SUCCESS) {
            pa_fail(msg, msg_size, st, "row buffers");
            break;
          }
          if (lse) lse[pa_lse_index(&p, b, i, h)] = l;
          if (logits) {
            double *dst = logits + (((int64_t)b * p.hq + h) * p.q_len + i) * p.kv_len;
            for (int32_t j = 0; j < p.kv_len; ++j) dst[j] = -INFINITY;
            for (int64_t t = 0; t < n; ++t) dst[idx[t]] = lrow[t];
          }
        }
      }
    }
  }
  free(K);
  free(V);
  free(qv);
  free(pk);
  free(idx);
  free(lrow);
  if (rope) pa_lp_rope_free(&r);
  return st;
}
