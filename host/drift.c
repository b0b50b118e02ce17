/* drift.c -- the precision-study experiments of posattn-drift (host/drift.h), built on the
 * low-precision emulation of lowp.c. Everything is deterministic for a given seed. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drift.h"
#include "internal.h"

/* ---- small helpers ---------------------------------------------------------------------------- */

typedef struct rng { uint64_t s; } rng;
static uint64_t rng_next(rng *r) { /* splitmix64 */
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double rng_unit(rng *r) { return ((double)(rng_next(r) >> 11) + 0.5) * 0x1p-53; }
/* standard normal, rounded to fp32: the "true" activations of the studies are fp32 values */
static double rng_normal(rng *r) {
  double u = rng_unit(r), v = rng_unit(r);
  return (double)(float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* r as if n rng_normal draws had been made (each takes two splitmix64 steps) */
static void rng_skip_normals(rng *r, uint64_t n) { r->s += 2 * n * 0x9E3779B97F4A7C15ull; }

void pa_drift_table_free(pa_drift_table *t) {
  if (t == NULL) return;
  free(t->series);
  free(t->val);
  t->series = NULL;
  t->val = NULL;
  t->nrows = t->cap = 0;
}

static void table_init(pa_drift_table *t, const char *name, int ncols, const char *const *cols) {
  memset(t, 0, sizeof *t);
  t->name = name;
  t->ncols = ncols;
  t->cols = cols;
}

static posattn_status table_add(pa_drift_table *t, const char *series, const double *vals,
                                char *msg, size_t msz) {
  if (t->nrows == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 64;
    char(*s)[48] = realloc(t->series, cap * sizeof *s);
    if (s) t->series = s;
    double *v = realloc(t->val, cap * (size_t)t->ncols * sizeof(double));
    if (v) t->val = v;
    if (!s || !v) return pa_fail(msg, msz, POSATTN_STATUS_ALLOC_FAILED, "table %s", t->name);
    t->cap = cap;
  }
  snprintf(t->series[t->nrows], sizeof t->series[0], "%s", series);
  memcpy(t->val + t->nrows * (size_t)t->ncols, vals, sizeof(double) * (size_t)t->ncols);
  t->nrows++;
  return POSATTN_STATUS_SUCCESS;
}

static void progress(const pa_drift_opts *o, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void progress(const pa_drift_opts *o, const char *fmt, ...) {
  if (o->progress == NULL) return;
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  o->progress(o->user, line);
}

void pa_drift_opts_init(pa_drift_opts *o) {
  memset(o, 0, sizeof *o);
  o->seed = 20241118;
  o->backend = POSATTN_BACKEND_REF;
  o->b_max_len = 65536;
  o->b_rows = 6;
}

/* Shifts on a half-octave grid: 1, 1, 2, 3, 4, 6, 8, ... up to and including `top` (a power of
 * two), deduplicated. Returns the count. */
static int shift_grid(int64_t top, int steps_per_octave, int64_t *out, int cap) {
  int n = 0;
  for (int k = 0;; ++k) {
    int64_t s = (int64_t)llround(pow(2.0, (double)k / steps_per_octave));
    if (s > top || n == cap) break;
    if (n == 0 || out[n - 1] != s) out[n++] = s;
  }
  return n;
}

/* ---- experiment a: RoPE relative-position violation ------------------------------------------ */

#define A_DIM 128
#define A_KEYS 64

/* logits of q (position n_keys + shift) against keys at positions j + shift, scale 1/sqrt(d),
 * in the configuration's logit arithmetic */
static void shifted_logits(const pa_lp_config *c, const pa_lp_rope *r, const double *q,
                           const double *K, int32_t nk, int32_t d, int64_t shift, double *s) {
  double qv[A_DIM], kv[A_DIM];
  pa_lp_prepare(c, r, d, q, nk + shift, qv);
  for (int32_t j = 0; j < nk; ++j) {
    pa_lp_prepare(c, r, d, K + (int64_t)j * d, j + shift, kv);
    s[j] = pa_lp_round(c->softmax, pa_lp_dot(c, qv, kv, d) / sqrt((double)d));
  }
}

static void softmax64(const double *s, int32_t n, double *p) {
  double m = -INFINITY, z = 0;
  for (int32_t j = 0; j < n; ++j) m = s[j] > m ? s[j] : m;
  for (int32_t j = 0; j < n; ++j) z += (p[j] = exp(s[j] - m));
  for (int32_t j = 0; j < n; ++j) p[j] /= z;
}

static void rope_defaults(posattn_rope_params *rp, double base) {
  posattn_pe pe;
  posattn_pe_init(&pe);
  *rp = pe.rope;
  rp->base = base;
}

posattn_status pa_drift_violation(const pa_lp_config *c, int32_t head_dim, double base,
                                  int64_t shift, int32_t n_keys, uint64_t seed, double *rel,
                                  char *msg, size_t msz) {
  if (head_dim < 2 || head_dim > A_DIM || n_keys < 1 || n_keys > 4096 || shift < 0 ||
      shift > (1 << 30))
    return pa_fail(msg, msz, POSATTN_STATUS_BAD_SIZE,
                   "head_dim (%d) must be in [2, %d], n_keys (%d) in [1, 4096], shift (%lld) in "
                   "[0, 2^30]", (int)head_dim, A_DIM, (int)n_keys, (long long)shift);
  posattn_rope_params rp;
  rope_defaults(&rp, base);
  pa_lp_rope r;
  PA_TRY(pa_lp_rope_init(&r, c, &rp, head_dim, n_keys + 1, n_keys + shift, msg, msz));
  double *K = malloc(sizeof(double) * (size_t)n_keys * head_dim);
  double *s0 = malloc(sizeof(double) * (size_t)n_keys), *s1 = malloc(sizeof(double) * (size_t)n_keys);
  posattn_status st = POSATTN_STATUS_SUCCESS;
  if (!K || !s0 || !s1) {
    st = pa_fail(msg, msz, POSATTN_STATUS_ALLOC_FAILED, "violation buffers");
  } else {
    rng g = {seed};
    double q[A_DIM];
    for (int32_t f = 0; f < head_dim; ++f) q[f] = rng_normal(&g);
    for (int64_t t = 0; t < (int64_t)n_keys * head_dim; ++t) K[t] = rng_normal(&g);
    shifted_logits(c, &r, q, K, n_keys, head_dim, 0, s0);
    shifted_logits(c, &r, q, K, n_keys, head_dim, shift, s1);
    double dmax = 0, smax = 0;
    for (int32_t j = 0; j < n_keys; ++j) {
      dmax = fmax(dmax, fabs(s1[j] - s0[j]));
      smax = fmax(smax, fabs(s0[j]));
    }
    *rel = dmax / smax;
  }
  free(K);
  free(s0);
  free(s1);
  pa_lp_rope_free(&r);
  return st;
}

static const char *const A_COLS[] = {"shift", "max_dlogit", "mean_dlogit", "max_dprob",
                                     "mean_dprob", "max_rel_dlogit"};

posattn_status pa_drift_exp_a(const pa_drift_opts *o, pa_drift_table *t, char *msg, size_t msz) {
  table_init(t, "a_rope_shift", 6, A_COLS);
  const int32_t d = A_DIM, nk = A_KEYS, trials = o->full ? 64 : 16;
  const double base = 10000.0;
  int64_t shifts[128];
  int ns = shift_grid((int64_t)1 << 20, o->full ? 4 : 2, shifts, 128);
  struct { const char *name; pa_angle angle; pa_fmt table; } modes[] = {
      {"bf16table", PA_ANGLE_FAST, PA_FMT_BF16},
      {"fp32", PA_ANGLE_FAST, PA_FMT_F32},
      {"exact", PA_ANGLE_EXACT, PA_FMT_F32},
  };
  const pa_fmt dts[] = {PA_FMT_BF16, PA_FMT_F16, PA_FMT_F32};
  posattn_rope_params rp;
  rope_defaults(&rp, base);
  double *Q = malloc(sizeof(double) * (size_t)trials * d);
  double *K = malloc(sizeof(double) * (size_t)trials * nk * d);
  if (!Q || !K) {
    free(Q);
    free(K);
    return pa_fail(msg, msz, POSATTN_STATUS_ALLOC_FAILED, "experiment a inputs");
  }
  rng g = {o->seed};
  for (int64_t i = 0; i < (int64_t)trials * d; ++i) Q[i] = rng_normal(&g);
  for (int64_t i = 0; i < (int64_t)trials * nk * d; ++i) K[i] = rng_normal(&g);
  posattn_status st = POSATTN_STATUS_SUCCESS;
  /* 3 angle modes x 3 dtypes, then the fp64 control (every point fp64, exact angles) */
  for (int cfg = 0; cfg < 10 && st == POSATTN_STATUS_SUCCESS; ++cfg) {
    pa_lp_config c;
    char series[48];
    if (cfg < 9) {
      pa_lp_config_fp32(&c);
      c.input = c.operand = dts[cfg % 3];
      c.angle = modes[cfg / 3].angle;
      c.table = modes[cfg / 3].table;
      c.softmax = PA_FMT_F64; /* the logit as the dot product gives it: no extra rounding */
      snprintf(series, sizeof series, "%s-%s", modes[cfg / 3].name, pa_fmt_name(dts[cfg % 3]));
    } else {
      pa_lp_config_fp64(&c);
      snprintf(series, sizeof series, "f64-f64");
    }
    progress(o, "a: %s", series);
    pa_lp_rope r;
    st = pa_lp_rope_init(&r, &c, &rp, d, nk + 1, nk + shifts[ns - 1], msg, msz);
    if (st != POSATTN_STATUS_SUCCESS) break;
    double s0[A_KEYS], s1[A_KEYS], p0[A_KEYS], p1[A_KEYS];
    double *base_s = malloc(sizeof(double) * (size_t)trials * nk);
    if (base_s == NULL) st = pa_fail(msg, msz, POSATTN_STATUS_ALLOC_FAILED, "experiment a logits");
    for (int tr = 0; tr < trials && st == POSATTN_STATUS_SUCCESS; ++tr)
      shifted_logits(&c, &r, Q + (int64_t)tr * d, K + (int64_t)tr * nk * d, nk, d, 0,
                     base_s + (int64_t)tr * nk);
    for (int si = 0; si < ns && st == POSATTN_STATUS_SUCCESS; ++si) {
      double mx_l = 0, sum_l = 0, mx_p = 0, sum_p = 0, mx_rel = 0;
      for (int tr = 0; tr < trials; ++tr) {
        memcpy(s0, base_s + (int64_t)tr * nk, sizeof s0);
        shifted_logits(&c, &r, Q + (int64_t)tr * d, K + (int64_t)tr * nk * d, nk, d, shifts[si],
                       s1);
        softmax64(s0, nk, p0);
        softmax64(s1, nk, p1);
        double smax = 0, dmax = 0;
        for (int32_t j = 0; j < nk; ++j) {
          double dl = fabs(s1[j] - s0[j]), dp = fabs(p1[j] - p0[j]);
          mx_l = fmax(mx_l, dl);
          mx_p = fmax(mx_p, dp);
          sum_l += dl;
          sum_p += dp;
          dmax = fmax(dmax, dl);
          smax = fmax(smax, fabs(s0[j]));
        }
        mx_rel = fmax(mx_rel, dmax / smax);
      }
      double n = (double)trials * nk;
      double row[6] = {(double)shifts[si], mx_l, sum_l / n, mx_p, sum_p / n, mx_rel};
      st = table_add(t, series, row, msg, msz);
    }
    free(base_s);
    pa_lp_rope_free(&r);
  }
  free(Q);
  free(K);
  return st;
}

/* ---- experiment b: growth with context length ------------------------------------------------ */

#define B_DIM 128
#define B_OFFSET 65536 /* the "sink not at position 0" variant starts its positions here */

static const char *const B_COLS[] = {"len", "max_abs_err", "rms_err", "nrmse", "max_abs_err_max",
                                     "first_share", "first_weight"};

typedef struct b_method {
  const char *name;
  posattn_pe_kind kind;
  pa_angle angle;
  pa_fmt table;
} b_method;

/* fills out[d] for one sampled row through a kernel backend (EMU/CUDA): bf16 q/k/v, bf16 out */
static posattn_status backend_row(posattn_context *ctx, const posattn_pe *pe, const double *q,
                                  int32_t pq, const double *K, const double *V, const int32_t *pk,
                                  int32_t n, double *out, char *msg, size_t msz) {
  const int32_t d = B_DIM;
  size_t kvb = (size_t)n * d * 2;
  uint16_t *qb = malloc((size_t)d * 2), *kb = malloc(kvb), *vb = malloc(kvb),
           *ob = malloc((size_t)d * 2);
  posattn_status st = POSATTN_STATUS_SUCCESS;
  void *ws = NULL;
  if (!qb || !kb || !vb || !ob) {
    st = pa_fail(msg, msz, POSATTN_STATUS_ALLOC_FAILED, "backend row buffers");
    goto done;
  }
  for (int32_t f = 0; f < d; ++f) pa_store(qb, POSATTN_DTYPE_BF16, f, q[f]);
  for (int64_t t = 0; t < (int64_t)n * d; ++t) {
    pa_store(kb, POSATTN_DTYPE_BF16, t, K[t]);
    pa_store(vb, POSATTN_DTYPE_BF16, t, V[t]);
  }
  posattn_attention_desc desc;
  posattn_attention_desc_init(&desc);
  desc.batch = desc.q_heads = desc.kv_heads = 1;
  desc.head_dim = d;
  desc.q_len = 1;
  desc.kv_len = n;
  desc.q_positions = &pq;
  desc.kv_positions = pk;
  desc.pe = *pe;
  posattn_tensor tq, tk, tv, to;
  posattn_tensor_init_contiguous(&tq, qb, POSATTN_DTYPE_BF16, 1, 1, d);
  posattn_tensor_init_contiguous(&tk, kb, POSATTN_DTYPE_BF16, n, 1, d);
  posattn_tensor_init_contiguous(&tv, vb, POSATTN_DTYPE_BF16, n, 1, d);
  posattn_tensor_init_contiguous(&to, ob, POSATTN_DTYPE_BF16, 1, 1, d);
  size_t wsb = 0;
  st = posattn_workspace_size(ctx, &desc, POSATTN_DTYPE_BF16, POSATTN_DTYPE_BF16, &wsb);
  if (st == POSATTN_STATUS_SUCCESS && wsb > 0) {
    ws = aligned_alloc(256, (wsb + 255) / 256 * 256);
    if (ws == NULL) st = pa_fail(msg, msz, POSATTN_STATUS_ALLOC_FAILED, "workspace");
  }
  if (st == POSATTN_STATUS_SUCCESS)
    st = posattn_forward(ctx, &desc, &tq, &tk, &tv, &to, NULL, ws, wsb);
  if (st != POSATTN_STATUS_SUCCESS) {
    if (st != POSATTN_STATUS_ALLOC_FAILED)
      pa_fail(msg, msz, st, "%s backend: %s", posattn_backend_string(posattn_context_backend(ctx)),
              posattn_context_last_message(ctx));
    goto done;
  }
  for (int32_t f = 0; f < d; ++f) out[f] = pa_load(ob, POSATTN_DTYPE_BF16, f);
done:
  free(qb);
  free(kb);
  free(vb);
  free(ob);
  free(ws);
  return st;
}

posattn_status pa_drift_exp_b(const pa_drift_opts *o, pa_drift_table *t, char *msg, size_t msz) {
  table_init(t, "b_context_growth", 7, B_COLS);
  const int32_t d = B_DIM, lmax = o->b_max_len, R = o->b_rows;
  if (lmax < 1024 || lmax > (1 << 22) || R < 1)
    return pa_fail(msg, msz, POSATTN_STATUS_BAD_SIZE,
                   "b_max_len (%d) must be in [1024, 2^22] and b_rows (%d) >= 1", (int)lmax,
                   (int)R);
  const b_method methods[] = {
      {"nope", POSATTN_PE_NONE, PA_ANGLE_F64, PA_FMT_F32},
      {"alibi", POSATTN_PE_ALIBI, PA_ANGLE_F64, PA_FMT_F32},
      {"rope-bf16table", POSATTN_PE_ROPE, PA_ANGLE_FAST, PA_FMT_BF16},
      {"rope-fp32", POSATTN_PE_ROPE, PA_ANGLE_FAST, PA_FMT_F32},
      {"rope-exact", POSATTN_PE_ROPE, PA_ANGLE_EXACT, PA_FMT_F32},
  };
  const char *variants[] = {"plain", "sink0", "sinkoff"};
  const int kernel = o->backend != POSATTN_BACKEND_REF;
  posattn_context *ctx = NULL;
  if (kernel) {
    char why[256] = "";
    posattn_status av = posattn_backend_available(o->backend, why, sizeof why);
    if (av != POSATTN_STATUS_SUCCESS)
      return pa_fail(msg, msz, av, "backend %s is unavailable: %s",
                     posattn_backend_string(o->backend), why);
    PA_TRY(posattn_context_create(o->backend, 0, &ctx));
  }
  /* The sink: a direction u on the lowest-frequency rotary pairs (which barely turn over the
   * whole context at base 5e5), carried by every query and, with a large weight, by the key of
   * token 0, so that token 0 takes a large share of the attention as in trained models. */
  double u[B_DIM] = {0};
  for (int32_t i = 60; i < 64; ++i) u[i] = u[i + 64] = 1.0 / sqrt(8.0);
  const double beta = 4.0, gamma = 34.0; /* sink logit ~ beta*gamma/sqrt(d) = 12 */
  float slope = (float)pa_alibi_slope(8, 7); /* the gentlest of 8 heads: 2^-8 */
  size_t nel = (size_t)lmax * d;
  double *K = malloc(sizeof(double) * nel), *V = malloc(sizeof(double) * nel);
  double *Kg = malloc(sizeof(double) * nel), *Kl = malloc(sizeof(double) * nel);
  double *Vr = malloc(sizeof(double) * nel);
  double *wg = malloc(sizeof(double) * (size_t)lmax), *wl = malloc(sizeof(double) * (size_t)lmax);
  int64_t *pk = malloc(sizeof(int64_t) * (size_t)lmax), *idx = malloc(sizeof(int64_t) * (size_t)lmax);
  int32_t *pk32 = malloc(sizeof(int32_t) * (size_t)lmax);
  posattn_status st = POSATTN_STATUS_SUCCESS;
  if (!K || !V || !Kg || !Kl || !Vr || !wg || !wl || !pk || !idx || !pk32)
    st = pa_fail(msg, msz, POSATTN_STATUS_ALLOC_FAILED, "experiment b buffers (%d tokens)",
                 (int)lmax);
  for (int64_t j = 0; j < lmax && st == POSATTN_STATUS_SUCCESS; ++j) idx[j] = j;
  rng g = {o->seed ^ 0xB};
  if (st == POSATTN_STATUS_SUCCESS) {
    for (size_t i = 0; i < nel; ++i) K[i] = rng_normal(&g);
    for (size_t i = 0; i < nel; ++i) V[i] = rng_normal(&g);
  }
  double qrow[B_DIM], og[B_DIM], ol[B_DIM];
  for (int vi = 0; vi < 3 && st == POSATTN_STATUS_SUCCESS; ++vi) {
    const int sink = vi > 0;
    const int64_t pos0 = vi == 2 ? B_OFFSET : 0;
    double k0[B_DIM];
    rng gs = {o->seed ^ 0x5111C};
    for (int32_t f = 0; f < d; ++f)
      k0[f] = sink ? (double)(float)(gamma * u[f] + 0.1 * rng_normal(&gs)) : K[f];
    for (int64_t j = 0; j < lmax; ++j) {
      pk[j] = pos0 + j;
      pk32[j] = (int32_t)pk[j];
    }
    for (size_t mi = 0; mi < sizeof methods / sizeof methods[0] && st == POSATTN_STATUS_SUCCESS;
         ++mi) {
      const b_method *me = &methods[mi];
      /* Every series draws its query rows from where a REF run's would start, whatever a kernel
       * skips, so that --backend emu|cuda and the emulation see the same rows. */
      int32_t nlens = 0;
      for (int32_t len = 1024; len <= lmax; len *= 2) ++nlens;
      rng g_next = g;
      rng_skip_normals(&g_next, (uint64_t)nlens * (uint64_t)R * (uint64_t)d);
      if (kernel && me->table != PA_FMT_F32) { /* kernels keep their tables in fp32 */
        g = g_next;
        continue;
      }
      pa_lp_config cg, cl;
      pa_lp_config_fp64(&cg);
      cg.input = PA_FMT_BF16; /* gold: fp64 on the same bf16 inputs */
      pa_lp_config_tc(&cl, PA_FMT_BF16);
      cl.angle = me->angle;
      cl.table = me->table;
      posattn_pe pe;
      posattn_pe_init(&pe);
      pe.kind = me->kind;
      pe.rope.base = 500000.0;
      pe.rope.angle_mode = me->angle == PA_ANGLE_EXACT ? POSATTN_ANGLE_EXACT : POSATTN_ANGLE_FAST;
      pe.alibi.slopes = &slope;
      st = pa_validate_pe(msg, msz, &pe, 1, d);
      if (st != POSATTN_STATUS_SUCCESS) break;
      pa_lp_rope rg, rl;
      int rope = me->kind == POSATTN_PE_ROPE;
      if (rope) {
        st = pa_lp_rope_init(&rg, &cg, &pe.rope, d, lmax, pos0 + lmax, msg, msz);
        if (st != POSATTN_STATUS_SUCCESS) break;
        st = pa_lp_rope_init(&rl, &cl, &pe.rope, d, lmax, pos0 + lmax, msg, msz);
        if (st != POSATTN_STATUS_SUCCESS) {
          pa_lp_rope_free(&rg);
          break;
        }
      }
      for (int64_t j = 0; j < lmax; ++j) {
        const double *kj = j == 0 ? k0 : K + j * d;
        pa_lp_prepare(&cg, rope ? &rg : NULL, d, kj, pk[j], Kg + j * d);
        if (kernel) /* a kernel rounds and rotates itself: it gets the bf16 inputs */
          for (int32_t f = 0; f < d; ++f) Kl[j * d + f] = pa_lp_round(PA_FMT_BF16, kj[f]);
        else
          pa_lp_prepare(&cl, rope ? &rl : NULL, d, kj, pk[j], Kl + j * d);
        for (int32_t f = 0; f < d; ++f) Vr[j * d + f] = pa_lp_round(PA_FMT_BF16, V[j * d + f]);
      }
      pa_lp_logit lg = {1.0 / sqrt((double)d), 0.0, &pe, 1, 0};
      int unsupported = 0;
      for (int32_t len = 1024; len <= lmax && st == POSATTN_STATUS_SUCCESS && !unsupported;
           len *= 2) {
        char series[48];
        snprintf(series, sizeof series, "%s/%s", me->name, variants[vi]);
        progress(o, "b: %s len %d", series, (int)len);
        double a_max = 0, a_rms = 0, a_nrmse = 0, mx = 0, a_share = 0, a_w0 = 0;
        int64_t stride = len / (8 * R) > 0 ? len / (8 * R) : 1;
        for (int r = 0; r < R && st == POSATTN_STATUS_SUCCESS; ++r) {
          /* rows in the last eighth of the sequence: each sees (almost) len keys */
          int64_t i = len - 1 - r * stride;
          for (int32_t f = 0; f < d; ++f) qrow[f] = rng_normal(&g) + beta * u[f];
          double lse, qg[B_DIM], ql[B_DIM], qin[B_DIM];
          for (int32_t f = 0; f < d; ++f) qin[f] = pa_lp_round(PA_FMT_BF16, qrow[f]);
          pa_lp_prepare(&cg, rope ? &rg : NULL, d, qrow, pk[i], qg);
          if (kernel && o->gold_row) {
            /* fp64 on the GPU; token 0's weight from its logit (the lse of it alone) */
            double l0, o0[B_DIM];
            st = o->gold_row(o->gold_user, &pe, qin, pk32[i], Kl, Vr, pk32, (int32_t)(i + 1), d,
                             og, &lse, msg, msz);
            if (st != POSATTN_STATUS_SUCCESS) break;
            st = pa_lp_row(&cg, &lg, qg, pk[i], Kg, Vr, pk, idx, 1, d, o0, &l0, NULL, NULL);
            wg[0] = exp(l0 - lse);
          } else {
            st = pa_lp_row(&cg, &lg, qg, pk[i], Kg, Vr, pk, idx, i + 1, d, og, &lse, NULL, wg);
          }
          if (st != POSATTN_STATUS_SUCCESS) break;
          if (kernel) {
            st = backend_row(ctx, &pe, qin, pk32[i], Kl, Vr, pk32, (int32_t)(i + 1), ol, msg,
                             msz);
            if (st == POSATTN_STATUS_NOT_SUPPORTED) { /* the kernel lacks this method: say so */
              progress(o, "b: %s skipped: %s", series, msg);
              unsupported = 1;
              st = POSATTN_STATUS_SUCCESS;
            }
            if (st != POSATTN_STATUS_SUCCESS || unsupported) break;
          } else {
            pa_lp_prepare(&cl, rope ? &rl : NULL, d, qrow, pk[i], ql);
            st = pa_lp_row(&cl, &lg, ql, pk[i], Kl, Vr, pk, idx, i + 1, d, ol, &lse, NULL, wl);
            if (st != POSATTN_STATUS_SUCCESS) break;
          }
          double emax = 0, e2 = 0, g2 = 0;
          for (int32_t f = 0; f < d; ++f) {
            double e = ol[f] - og[f];
            emax = fmax(emax, fabs(e));
            e2 += e * e;
            g2 += og[f] * og[f];
          }
          a_max += emax / R;
          mx = fmax(mx, emax);
          a_rms += sqrt(e2 / d) / R;
          a_nrmse += sqrt(e2 / g2) / R;
          a_w0 += wg[0] / R;
          if (!kernel) {
            double tot = 0;
            for (int64_t j = 0; j <= i; ++j) tot += fabs(wl[j] - wg[j]);
            a_share += (tot > 0 ? fabs(wl[0] - wg[0]) / tot : 0) / R;
          }
        }
        double row[7] = {(double)len, a_max, a_rms, a_nrmse, mx, kernel ? NAN : a_share, a_w0};
        if (st == POSATTN_STATUS_SUCCESS && !unsupported) st = table_add(t, series, row, msg, msz);
      }
      if (rope) {
        pa_lp_rope_free(&rg);
        pa_lp_rope_free(&rl);
      }
      g = g_next;
    }
  }
  free(K);
  free(V);
  free(Kg);
  free(Kl);
  free(Vr);
  free(wg);
  free(wl);
  free(pk);
  free(idx);
  free(pk32);
  posattn_context_destroy(ctx);
  return st;
}

/* ---- experiment c: where to rotate K ----------------------------------------------------------- */

static const char *const C_COLS[] = {"position", "max_abs_err", "mean_abs_err", "mean_abs_logit"};

posattn_status pa_drift_exp_c(const pa_drift_opts *o, pa_drift_table *t, char *msg, size_t msz) {
  table_init(t, "c_where_to_rotate", 4, C_COLS);
  const int32_t d = A_DIM, trials = o->full ? 256 : 64;
  int64_t pos[256];
  int np = shift_grid((int64_t)1 << 20, o->full ? 8 : 4, pos, 256);
  struct { const char *name; pa_angle angle; pa_fmt table, rot, operand; } vs[] = {
      /* HF eager in bf16: fp32 angle, cos/sin cast to bf16, rotation in bf16 tensors, cached */
      {"cache-bf16math", PA_ANGLE_FAST, PA_FMT_BF16, PA_FMT_BF16, PA_FMT_BF16},
      /* an fp32 RoPE kernel (fp32 angle and math) writing the rotated K to a bf16 cache */
      {"cache-fp32rope", PA_ANGLE_FAST, PA_FMT_F32, PA_FMT_F32, PA_FMT_BF16},
      /* un-rotated bf16 cache; the attention kernel rotates in fp32 (exact angles) and feeds
       * bf16 operands to the tensor cores */
      {"kernel-exact-bf16op", PA_ANGLE_EXACT, PA_FMT_F32, PA_FMT_F32, PA_FMT_BF16},
      /* same, fp32 operands (an fp32 dot product): common-practice and exact angles */
      {"kernel-fast-fp32op", PA_ANGLE_FAST, PA_FMT_F32, PA_FMT_F32, PA_FMT_F32},
      {"kernel-exact-fp32op", PA_ANGLE_EXACT, PA_FMT_F32, PA_FMT_F32, PA_FMT_F32},
  };
  posattn_rope_params rp;
  rope_defaults(&rp, 10000.0);
  const int64_t maxp = pos[np - 1] + 64;
  pa_lp_config cg;
  pa_lp_config_fp64(&cg);
  cg.input = PA_FMT_BF16;
  pa_lp_rope rg;
  PA_TRY(pa_lp_rope_init(&rg, &cg, &rp, d, (int32_t)maxp, maxp, msg, msz));
  posattn_status st = POSATTN_STATUS_SUCCESS;
  for (size_t vi = 0; vi < sizeof vs / sizeof vs[0] && st == POSATTN_STATUS_SUCCESS; ++vi) {
    pa_lp_config cl;
    pa_lp_config_fp32(&cl);
    cl.input = PA_FMT_BF16;
    cl.angle = vs[vi].angle;
    cl.table = vs[vi].table;
    cl.rot = vs[vi].rot;
    cl.operand = vs[vi].operand;
    pa_lp_rope rl;
    st = pa_lp_rope_init(&rl, &cl, &rp, d, (int32_t)maxp, maxp, msg, msz);
    if (st != POSATTN_STATUS_SUCCESS) break;
    progress(o, "c: %s", vs[vi].name);
    rng g = {o->seed ^ 0xC}; /* the same q, k, offsets for every variant */
    for (int pi = 0; pi < np && st == POSATTN_STATUS_SUCCESS; ++pi) {
      double mx = 0, sum = 0, sabs = 0;
      for (int tr = 0; tr < trials; ++tr) {
        double q[A_DIM], k[A_DIM], a[A_DIM], b[A_DIM];
        for (int32_t f = 0; f < d; ++f) q[f] = rng_normal(&g);
        for (int32_t f = 0; f < d; ++f) k[f] = rng_normal(&g);
        int64_t pq = pos[pi] + (int64_t)(rng_next(&g) % 64); /* query a little after the key */
        pa_lp_prepare(&cg, &rg, d, q, pq, a);
        pa_lp_prepare(&cg, &rg, d, k, pos[pi], b);
        double sg = pa_lp_dot(&cg, a, b, d) / sqrt((double)d);
        pa_lp_prepare(&cl, &rl, d, q, pq, a);
        pa_lp_prepare(&cl, &rl, d, k, pos[pi], b);
        double sl = pa_lp_dot(&cl, a, b, d) / sqrt((double)d);
        mx = fmax(mx, fabs(sl - sg));
        sum += fabs(sl - sg);
        sabs += fabs(sg);
      }
      double row[4] = {(double)pos[pi], mx, sum / trials, sabs / trials};
      st = table_add(t, vs[vi].name, row, msg, msz);
    }
    pa_lp_rope_free(&rl);
  }
  pa_lp_rope_free(&rg);
  return st;
}
