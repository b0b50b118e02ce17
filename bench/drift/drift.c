/* drift.c -- the precision-study experiments of posattn-drift (drift.h), built on the
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
  o->b_rows = 20;
  o->b_sink_weight = 0.5;
  o->a_draws = 20;
  o->a_pairs = 4;
  o->a_gain = 8.0;
  o->d_max_len = 131072;
  o->d_draws = 20;
}

/* ---- spectra, shares, quantiles ---------------------------------------------------------------- */

void pa_drift_spectrum_init(pa_drift_spectrum *s, pa_spectrum_kind kind) {
  s->kind = kind;
  s->pairs = 4;
  s->gain = 8.0;
}

const char *pa_drift_spectrum_name(pa_spectrum_kind k) {
  switch (k) {
    case PA_SPEC_ISO: return "iso";
    case PA_SPEC_LOW: return "low";
    case PA_SPEC_HIGH: return "high";
  }
  return "?";
}

double pa_drift_pair_gain(const pa_drift_spectrum *s, int32_t i, int32_t half) {
  if (s->kind == PA_SPEC_LOW && i >= half - s->pairs) return s->gain;
  if (s->kind == PA_SPEC_HIGH && i < s->pairs) return s->gain;
  return 1.0;
}

void pa_drift_draw(const pa_drift_spectrum *s, int32_t d, int64_t n, uint64_t seed, double *out) {
  rng g = {seed};
  const int32_t half = d / 2;
  for (int64_t t = 0; t < n; ++t)
    for (int32_t f = 0; f < d; ++f) {
      double x = rng_normal(&g) * pa_drift_pair_gain(s, f < half ? f : f - half, half);
      out[t * d + f] = (double)(float)x;
    }
}

double pa_drift_weight_share(const double *w_low, const double *w_gold, int64_t n, int64_t j) {
  double sl = 0, sg = 0, tot = 0;
  for (int64_t t = 0; t < n; ++t) {
    sl += w_low[t];
    sg += w_gold[t];
  }
  for (int64_t t = 0; t < n; ++t) tot += fabs(w_low[t] / sl - w_gold[t] / sg);
  return tot > 0 ? fabs(w_low[j] / sl - w_gold[j] / sg) / tot : 0.0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double pa_drift_quantile(double *x, int64_t n, double q) {
  if (n <= 0) return NAN;
  qsort(x, (size_t)n, sizeof *x, cmp_double);
  double h = q * (double)(n - 1);
  int64_t lo = (int64_t)floor(h);
  int64_t hi = lo + 1 < n ? lo + 1 : lo;
  return x[lo] + (h - (double)lo) * (x[hi] - x[lo]);
}

/* writes median, 10 % and 90 % quantiles of x[n] (reordered) to out[0..2] */
static void spread3(double *x, int64_t n, double *out) {
  out[0] = pa_drift_quantile(x, n, 0.5);
  out[1] = pa_drift_quantile(x, n, 0.1);
  out[2] = pa_drift_quantile(x, n, 0.9);
}

/* ---- real activations: .npy files ------------------------------------------------------------- */

/* One .npy array: dtype text ("<f4"...), up to 3 dims, raw little-endian data. */
typedef struct npy {
  char descr[8];
  int ndim;
  int64_t shape[3], count;
  unsigned char *data;
} npy;

/* the value after 'key': in the header dict, or NULL */
static const char *npy_field(const char *h, const char *key) {
  const char *p = strstr(h, key);
  if (p == NULL) return NULL;
  p = strchr(p + strlen(key), ':');
  if (p == NULL) return NULL;
  for (++p; *p == ' '; ++p) {}
  return p;
}

static posattn_status npy_read(const char *path, npy *a, char *msg, size_t msz) {
  memset(a, 0, sizeof *a);
  FILE *f = fopen(path, "rb");
  if (f == NULL) return pa_fail(msg, msz, POSATTN_STATUS_INVALID_ARGUMENT, "%s: cannot open", path);
  unsigned char pre[12];
  char *h = NULL;
  posattn_status st = POSATTN_STATUS_SUCCESS;
  size_t hl = 0;
  if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0 || pre[6] < 1 || pre[6] > 3) {
    st = pa_fail(msg, msz, POSATTN_STATUS_INVALID_ARGUMENT, "%s: not a .npy file (version 1-3)",
                 path);
    goto done;
  }
  hl = (size_t)pre[8] | (size_t)pre[9] << 8;
  if (pre[6] > 1) { /* 4-byte header length */
    if (fread(pre + 10, 1, 2, f) != 2) hl = (size_t)-1;
    else hl |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
  }
  h = malloc(hl + 1);
  if (hl > (1u << 20) || h == NULL || fread(h, 1, hl, f) != hl) {
    st = pa_fail(msg, msz, POSATTN_STATUS_INVALID_ARGUMENT, "%s: truncated header", path);
    goto done;
  }
  h[hl] = '\0';
  const char *d = npy_field(h, "'descr'"), *fo = npy_field(h, "'fortran_order'"),
             *sh = npy_field(h, "'shape'");
  if (!d || !fo || !sh || *d != '\'' || *sh != '(') {
    st = pa_fail(msg, msz, POSATTN_STATUS_INVALID_ARGUMENT, "%s: header lacks descr/shape", path);
    goto done;
  }
  size_t n = strcspn(d + 1, "'");
  if (n >= sizeof a->descr || strncmp(fo, "False", 5) != 0) {
    st = pa_fail(msg, msz, POSATTN_STATUS_INVALID_ARGUMENT,
                 "%s: must be C order (fortran_order False) with a simple dtype", path);
    goto done;
  }
  memcpy(a->descr, d + 1, n);
  a->count = 1;
  for (const char *p = sh + 1; *p && *p != ')';) {
    char *end;
    long long v = strtoll(p, &end, 10);
    if (end == p) { /* ", " or spaces */
      ++p;
      continue;
    }
    if (a->ndim == 3 || v < 0 || v > (1LL << 31)) {
      st = pa_fail(msg, msz, POSATTN_STATUS_BAD_SIZE, "%s: at most 3 dimensions of < 2^31", path);
      goto done;
    }
    a->shape[a->ndim++] = v;
    a->count *= v;
    p = end;
  }
  int es = strcmp(a->descr, "<f2") == 0 ? 2
           : strcmp(a->descr, "<f4") == 0 || strcmp(a->descr, "<i4") == 0 ? 4
           : strcmp(a->descr, "<f8") == 0 || strcmp(a->descr, "<i8") == 0 ? 8 : 0;
  if (es == 0) {
    st = pa_fail(msg, msz, POSATTN_STATUS_INVALID_ARGUMENT,
                 "%s: dtype '%s' must be <f2, <f4, <f8 (tensors) or <i4, <i8 (positions)", path,
                 a->descr);
    goto done;
  }
  a->data = malloc((size_t)a->count * es + 1);
  if (a->data == NULL) {
    st = pa_fail(msg, msz, POSATTN_STATUS_ALLOC_FAILED, "%s: %lld elements", path,
                 (long long)a->count);
    goto done;
  }
  if (fread(a->data, (size_t)es, (size_t)a->count, f) != (size_t)a->count)
    st = pa_fail(msg, msz, POSATTN_STATUS_BAD_SIZE, "%s: data shorter than shape (%lld elements)",
                 path, (long long)a->count);
done:
  free(h);
  fclose(f);
  if (st != POSATTN_STATUS_SUCCESS) {
    free(a->data);
    a->data = NULL;
  }
  return st;
}

static double npy_at(const npy *a, int64_t i) {
  if (a->descr[1] == 'i') {
    if (a->descr[2] == '4') {
      int32_t x;
      memcpy(&x, a->data + 4 * i, 4);
      return x;
    }
    int64_t x;
    memcpy(&x, a->data + 8 * i, 8);
    return (double)x;
  }
  if (a->descr[2] == '8') {
    double x;
    memcpy(&x, a->data + 8 * i, 8);
    return x;
  }
  return pa_load(a->data, a->descr[2] == '2' ? POSATTN_DTYPE_F16 : POSATTN_DTYPE_F32, i);
}

void pa_drift_acts_free(pa_drift_acts *a) {
  if (a == NULL) return;
  free(a->q);
  free(a->k);
  free(a->v);
  free(a->pos);
  memset(a, 0, sizeof *a);
}

posattn_status pa_drift_acts_load(const char *dir, pa_drift_acts *a, char *msg, size_t msz) {
  memset(a, 0, sizeof *a);
  a->rope_base = 10000.0;
  static const char *const names[4] = {"q", "k", "v", "positions"};
  npy t[4];
  memset(t, 0, sizeof t);
  posattn_status st = POSATTN_STATUS_SUCCESS;
  char path[1024];
  for (int i = 0; i < 4 && st == POSATTN_STATUS_SUCCESS; ++i) {
    snprintf(path, sizeof path, "%s/%s.npy", dir, names[i]);
    st = npy_read(path, &t[i], msg, msz);
    if (st == POSATTN_STATUS_SUCCESS && (t[i].descr[1] == 'i') != (i == 3))
      st = pa_fail(msg, msz, POSATTN_STATUS_INVALID_ARGUMENT, "%s: dtype '%s': %s", path,
                   t[i].descr, i == 3 ? "positions must be <i4 or <i8" : "must be <f2, <f4 or <f8");
  }
  if (st == POSATTN_STATUS_SUCCESS) {
    const int64_t T = t[0].shape[0], hq = t[0].shape[1], hkv = t[1].shape[1], d = t[0].shape[2];
    int ok = t[0].ndim == 3 && t[1].ndim == 3 && t[2].ndim == 3 && t[3].ndim == 1 && T >= 1 &&
             hq >= 1 && hkv >= 1 && hq % hkv == 0 && d >= 2 && d <= 256 && d % 2 == 0;
    for (int i = 1; i < 4 && ok; ++i) ok = t[i].shape[0] == T;
    ok = ok && t[1].shape[2] == d && t[2].shape[1] == hkv && t[2].shape[2] == d;
    if (!ok)
      st = pa_fail(msg, msz, POSATTN_STATUS_BAD_SIZE,
                   "%s: shapes must be q [T, Hq, D], k and v [T, Hkv, D], positions [T] with Hq a "
                   "multiple of Hkv and D even in 2..256", dir);
    else {
      a->T = (int32_t)T;
      a->hq = (int32_t)hq;
      a->hkv = (int32_t)hkv;
      a->d = (int32_t)d;
      double **dst[3] = {&a->q, &a->k, &a->v};
      for (int i = 0; i < 3 && st == POSATTN_STATUS_SUCCESS; ++i) {
        *dst[i] = malloc(sizeof(double) * (size_t)t[i].count);
        if (*dst[i] == NULL) st = pa_fail(msg, msz, POSATTN_STATUS_ALLOC_FAILED, "%s", names[i]);
        for (int64_t e = 0; e < t[i].count && *dst[i]; ++e) (*dst[i])[e] = npy_at(&t[i], e);
      }
      a->pos = malloc(sizeof(int64_t) * (size_t)T);
      if (a->pos == NULL && st == POSATTN_STATUS_SUCCESS)
        st = pa_fail(msg, msz, POSATTN_STATUS_ALLOC_FAILED, "positions");
      for (int64_t e = 0; e < T && a->pos && st == POSATTN_STATUS_SUCCESS; ++e) {
        double p = npy_at(&t[3], e);
        if (p < 0 || p > (double)((1 << 30) - 1))
          st = pa_fail(msg, msz, POSATTN_STATUS_BAD_POSITIONS,
                       "%s/positions.npy: position %lld of token %lld must be in [0, 2^30)", dir,
                       (long long)p, (long long)e);
        a->pos[e] = (int64_t)p;
      }
    }
  }
  for (int i = 0; i < 4; ++i) free(t[i].data);
  if (st != POSATTN_STATUS_SUCCESS) pa_drift_acts_free(a);
  return st;
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

#define A_DIM 128 /* head dim of the synthetic draws */
#define PA_MAXD 256 /* largest head dim (real activations) */
#define A_KEYS 64

/* logits of q (position n_keys + shift) against keys at positions j + shift, scale 1/sqrt(d),
 * in the configuration's logit arithmetic */
static void shifted_logits(const pa_lp_config *c, const pa_lp_rope *r, const double *q,
                           const double *K, int32_t nk, int32_t d, int64_t shift, double *s) {
  double qv[PA_MAXD], kv[PA_MAXD];
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

static const char *const A_COLS[] = {
    "shift",         "max_dlogit_med", "max_dlogit_p10", "max_dlogit_p90", "mean_dlogit",
    "max_dprob_med", "max_dprob_p10",  "max_dprob_p90",  "mean_abs_logit", "draws"};

/* The 10 series of experiment a on D draws Q [D][d], K [D][A_KEYS][d]: 3 angle modes x 3
 * dtypes, then the fp64 control (every point fp64, exact angles). */
static posattn_status a_series(const pa_drift_opts *o, pa_drift_table *t, const char *label,
                               const posattn_rope_params *rp, const double *Q, const double *K,
                               int D, int32_t d, const int64_t *shifts, int ns, char *msg,
                               size_t msz) {
  const int32_t nk = A_KEYS;
  struct { const char *name; pa_angle angle; pa_fmt table; } modes[] = {
      {"bf16table", PA_ANGLE_FAST, PA_FMT_BF16},
      {"fp32", PA_ANGLE_FAST, PA_FMT_F32},
      {"exact", PA_ANGLE_EXACT, PA_FMT_F32},
  };
  const pa_fmt dts[] = {PA_FMT_BF16, PA_FMT_F16, PA_FMT_F32};
  double *base_s = malloc(sizeof(double) * (size_t)D * nk);
  double *mxl = malloc(sizeof(double) * (size_t)D), *mxp = malloc(sizeof(double) * (size_t)D);
  posattn_status st = POSATTN_STATUS_SUCCESS;
  if (!base_s || !mxl || !mxp)
    st = pa_fail(msg, msz, POSATTN_STATUS_ALLOC_FAILED, "experiment a buffers");
  for (int cfg = 0; cfg < 10 && st == POSATTN_STATUS_SUCCESS; ++cfg) {
    pa_lp_config c;
    char series[48];
    if (cfg < 9) {
      pa_lp_config_fp32(&c);
      c.input = c.operand = dts[cfg % 3];
      c.angle = modes[cfg / 3].angle;
      c.table = modes[cfg / 3].table;
      c.softmax = PA_FMT_F64; /* the logit as the dot product gives it: no extra rounding */
      snprintf(series, sizeof series, "%s/%s-%s", label, modes[cfg / 3].name,
               pa_fmt_name(dts[cfg % 3]));
    } else {
      pa_lp_config_fp64(&c);
      snprintf(series, sizeof series, "%s/f64-f64", label);
    }
    progress(o, "a: %s", series);
    pa_lp_rope r;
    st = pa_lp_rope_init(&r, &c, rp, d, nk + 1, nk + shifts[ns - 1], msg, msz);
    if (st != POSATTN_STATUS_SUCCESS) break;
    double s1[A_KEYS], p0[A_KEYS], p1[A_KEYS];
    for (int dr = 0; dr < D; ++dr)
      shifted_logits(&c, &r, Q + (int64_t)dr * d, K + (int64_t)dr * nk * d, nk, d, 0,
                     base_s + (int64_t)dr * nk);
    for (int si = 0; si < ns && st == POSATTN_STATUS_SUCCESS; ++si) {
      double sum_l = 0, sum_abs = 0;
      for (int dr = 0; dr < D; ++dr) {
        const double *s0 = base_s + (int64_t)dr * nk;
        shifted_logits(&c, &r, Q + (int64_t)dr * d, K + (int64_t)dr * nk * d, nk, d, shifts[si],
                       s1);
        softmax64(s0, nk, p0);
        softmax64(s1, nk, p1);
        mxl[dr] = mxp[dr] = 0;
        for (int32_t j = 0; j < nk; ++j) {
          double dl = fabs(s1[j] - s0[j]);
          mxl[dr] = fmax(mxl[dr], dl);
          mxp[dr] = fmax(mxp[dr], fabs(p1[j] - p0[j]));
          sum_l += dl;
          sum_abs += fabs(s0[j]);
        }
      }
      double n = (double)D * nk, row[10];
      row[0] = (double)shifts[si];
      spread3(mxl, D, row + 1);
      row[4] = sum_l / n;
      spread3(mxp, D, row + 5);
      row[8] = sum_abs / n;
      row[9] = D;
      st = table_add(t, series, row, msg, msz);
    }
    pa_lp_rope_free(&r);
  }
  free(base_s);
  free(mxl);
  free(mxp);
  return st;
}

/* Draw i of the real activations: query token t_i >= A_KEYS (spread over the sequence), head
 * i % Hq; keys: the A_KEYS tokens before it on the head's kv head. */
static void acts_draw(const pa_drift_acts *a, int i, int n, int64_t *t, int32_t *h, int32_t *hk) {
  int64_t lo = A_KEYS < a->T ? A_KEYS : a->T - 1, span = a->T - 1 - lo;
  *t = lo + (n > 1 ? span * i / (n - 1) : span);
  *h = i % a->hq;
  *hk = *h / (a->hq / a->hkv);
}

/* One draw is one q and A_KEYS keys; its statistic is the max over the keys. Synthetic draws
 * come in three spectra that scale the same N(0,1) draws, so they differ only on the outlier
 * pairs; with real activations the draws are theirs (series "real/..."). */
posattn_status pa_drift_exp_a(const pa_drift_opts *o, pa_drift_table *t, char *msg, size_t msz) {
  table_init(t, "a_rope_shift", 10, A_COLS);
  const pa_drift_acts *ac = o->acts;
  const int32_t d = ac ? ac->d : A_DIM, nk = A_KEYS, D = o->full ? 64 : o->a_draws;
  if (D < 1 || o->a_pairs < 0 || o->a_pairs > d / 2 || !(o->a_gain > 0))
    return pa_fail(msg, msz, POSATTN_STATUS_BAD_SIZE,
                   "a_draws (%d) must be >= 1, a_pairs (%d) in [0, %d], a_gain (%g) > 0", (int)D,
                   (int)o->a_pairs, (int)(d / 2), o->a_gain);
  if (ac && ac->T <= A_KEYS)
    return pa_fail(msg, msz, POSATTN_STATUS_BAD_SIZE,
                   "experiment a needs more than %d tokens of activations (T = %d)", A_KEYS,
                   (int)ac->T);
  int64_t shifts[128];
  int ns = shift_grid((int64_t)1 << 20, o->full ? 4 : 2, shifts, 128);
  posattn_rope_params rp;
  rope_defaults(&rp, ac ? ac->rope_base : 10000.0);
  double *Q = malloc(sizeof(double) * (size_t)D * d);
  double *K = malloc(sizeof(double) * (size_t)D * nk * d);
  posattn_status st = POSATTN_STATUS_SUCCESS;
  if (!Q || !K) st = pa_fail(msg, msz, POSATTN_STATUS_ALLOC_FAILED, "experiment a inputs");
  if (ac && st == POSATTN_STATUS_SUCCESS) {
    for (int i = 0; i < D; ++i) {
      int64_t tq;
      int32_t h, hk;
      acts_draw(ac, i, D, &tq, &h, &hk);
      memcpy(Q + (int64_t)i * d, ac->q + (tq * ac->hq + h) * d, sizeof(double) * (size_t)d);
      for (int32_t j = 0; j < nk; ++j)
        memcpy(K + ((int64_t)i * nk + j) * d, ac->k + ((tq - nk + j) * ac->hkv + hk) * d,
               sizeof(double) * (size_t)d);
    }
    st = a_series(o, t, "real", &rp, Q, K, D, d, shifts, ns, msg, msz);
  }
  for (int sp = 0; sp < 3 && !ac && st == POSATTN_STATUS_SUCCESS; ++sp) {
    pa_drift_spectrum spec;
    pa_drift_spectrum_init(&spec, (pa_spectrum_kind)sp);
    spec.pairs = o->a_pairs;
    spec.gain = o->a_gain;
    pa_drift_draw(&spec, d, D, o->seed, Q);
    pa_drift_draw(&spec, d, (int64_t)D * nk, o->seed ^ 0xA, K);
    st = a_series(o, t, pa_drift_spectrum_name(spec.kind), &rp, Q, K, D, d, shifts, ns, msg, msz);
  }
  free(Q);
  free(K);
  return st;
}

/* ---- experiment b: growth with context length ------------------------------------------------ */

#define B_DIM 128
#define B_OFFSET 65536 /* the "sink not at position 0" variant starts its positions here */

static const char *const B_COLS[] = {
    "len",          "nrmse_med",      "nrmse_p10",       "nrmse_p90",       "max_abs_err_med",
    "sink_share_med", "sink_share_p10", "sink_share_p90", "tok0_share_med", "tok0_share_p10",
    "tok0_share_p90", "w_sink_med",   "w_sink_p10",      "w_sink_p90",      "sink_dlogit_med",
    "sink_dlogit_p10", "sink_dlogit_p90", "err_per_pred_med", "rows"};
#define B_NCOLS 19

typedef struct b_method {
  const char *name;
  posattn_pe_kind kind;
  pa_angle angle;
  pa_fmt table;
  pa_fmt dt;     /* inputs, q.k operands, P and output (bf16/fp16: tc preset; f32: fp32 preset) */
  int two_only;  /* run in the plain and sink0 variants only (keeps the default run short) */
} b_method;

/* Where the sink is. Every variant sees the same query rows and the same ordinary tokens; they
 * differ only in the sink's key (none, or one token's key replaced by the sink's), its slot and
 * the position offset. */
typedef struct b_variant {
  const char *name;
  int sink;      /* a sink token exists */
  int64_t pos0;  /* position of token 0 */
  int mid;       /* the sink is token len/2 (token 0 is ordinary); else token 0 */
  int fixw;      /* the sink's key is scaled per row so that its fp64 weight is b_sink_weight */
} b_variant;

static const b_variant B_VARIANTS[] = {
    {"plain", 0, 0, 0, 0},   {"sink0", 1, 0, 0, 0}, {"sinkoff", 1, B_OFFSET, 0, 0},
    {"sinkmid", 1, 0, 1, 0}, {"sinkfix", 1, 0, 0, 1},
};

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

/* What one series of experiment b works on: the gold (fp64 on bf16 inputs) and low-precision
 * configurations with their RoPE tables (NULL without RoPE), key positions, prepared keys. */
typedef struct b_state {
  int32_t d;
  int kernel;
  const pa_lp_config *cg, *cl;
  const pa_lp_rope *rg, *rl;
  const int64_t *pk;
  double *Kg, *Kl;
} b_state;

/* key j gets content kj: prepared for the gold and the low-precision rows (a kernel rounds and
 * rotates itself: it gets the bf16 inputs) */
static void b_set_key(const b_state *b, int64_t j, const double *kj) {
  const int32_t d = b->d;
  pa_lp_prepare(b->cg, b->rg, d, kj, b->pk[j], b->Kg + j * d);
  if (b->kernel)
    for (int32_t f = 0; f < d; ++f) b->Kl[j * d + f] = pa_lp_round(PA_FMT_BF16, kj[f]);
  else
    pa_lp_prepare(b->cl, b->rl, d, kj, b->pk[j], b->Kl + j * d);
}

/* The sink's key gamma*u + noise with gamma such that its fp64 logit against the prepared query
 * qg is lse_rest + log(w / (1 - w)), i.e. its fp64 weight is w among keys whose logsumexp is
 * lse_rest (no bias: NoPE or RoPE). The logit is linear in gamma before input rounding. */
static double b_sink_gamma(const b_state *b, const double *qg, int64_t pos, const double *u,
                           const double *noise, double lse_rest, double w, double gamma0) {
  pa_lp_config c64;
  pa_lp_config_fp64(&c64);
  const int32_t d = b->d;
  double pu[B_DIM], pn[B_DIM];
  pa_lp_prepare(&c64, b->rg, d, u, pos, pu);
  pa_lp_prepare(&c64, b->rg, d, noise, pos, pn);
  double a = pa_lp_dot(&c64, qg, pu, d) / sqrt((double)d);
  double c = pa_lp_dot(&c64, qg, pn, d) / sqrt((double)d);
  return a > 1e-6 ? (lse_rest + log(w / (1 - w)) - c) / a : gamma0;
}

/* per-row measures of experiment b */
enum { M_NRMSE, M_MAXERR, M_SHARE_SINK, M_SHARE_TOK0, M_WSINK, M_DLOGIT, M_RATIO, M_N };

/* median, 10 % and 90 % over the nr rows of measure k (rows where it is NaN are left out) */
static void b_spread(const double *acc, int nr, int k, double *tmp, double *out3) {
  int64_t n = 0;
  for (int r = 0; r < nr; ++r)
    if (!isnan(acc[(size_t)r * M_N + k])) tmp[n++] = acc[(size_t)r * M_N + k];
  if (n > 0) spread3(tmp, n, out3);
  else out3[0] = out3[1] = out3[2] = NAN;
}

/* The measures of one row into m[M_N]: the error of ol against og; with per-key weights (not a
 * kernel run) token 0's share and, when there is a sink (key js), its share, weight, logit error
 * and the error per (1 - w_sink)|logit error|. */
static void b_measure(double *m, const double *og, const double *ol, int32_t d, const double *wl,
                      const double *wg, const double *sl, const double *sg, int64_t n, int64_t js,
                      int sink, int kernel) {
  for (int c = 0; c < M_N; ++c) m[c] = NAN;
  double emax = 0, e2 = 0, g2 = 0;
  for (int32_t f = 0; f < d; ++f) {
    double e = ol[f] - og[f];
    emax = fmax(emax, fabs(e));
    e2 += e * e;
    g2 += og[f] * og[f];
  }
  m[M_NRMSE] = sqrt(e2 / g2);
  m[M_MAXERR] = emax;
  if (!kernel) m[M_SHARE_TOK0] = pa_drift_weight_share(wl, wg, n, 0);
  if (!sink) return;
  m[M_WSINK] = wg[js];
  if (kernel) return;
  m[M_SHARE_SINK] = pa_drift_weight_share(wl, wg, n, js);
  m[M_DLOGIT] = fabs(sl[js] - sg[js]);
  m[M_RATIO] = m[M_NRMSE] / ((1 - m[M_WSINK]) * m[M_DLOGIT]);
}

/* one table row of experiment b from the nr rows' measures */
static void b_stats(const double *acc, int nr, double *tmp, int64_t len, double *row) {
  double three[3];
  row[0] = (double)len;
  b_spread(acc, nr, M_NRMSE, tmp, row + 1);
  b_spread(acc, nr, M_MAXERR, tmp, three);
  row[4] = three[0];
  b_spread(acc, nr, M_SHARE_SINK, tmp, row + 5);
  b_spread(acc, nr, M_SHARE_TOK0, tmp, row + 8);
  b_spread(acc, nr, M_WSINK, tmp, row + 11);
  b_spread(acc, nr, M_DLOGIT, tmp, row + 14);
  b_spread(acc, nr, M_RATIO, tmp, three);
  row[17] = three[0];
  row[18] = nr;
}

/* Experiment b on real activations: the model's own rows. A draw is one query row (token i in
 * the second half of the sequence, head r % Hq) against its causal keys 0..i at their position
 * ids; the sink is the key with the largest fp64 weight. One table row per method, len = T. */
static posattn_status b_real(const pa_drift_opts *o, pa_drift_table *t, char *msg, size_t msz) {
  const pa_drift_acts *a = o->acts;
  const int32_t d = a->d, T = a->T, R = o->b_rows;
  const b_method methods[] = {
      {"rope-bf16table", POSATTN_PE_ROPE, PA_ANGLE_FAST, PA_FMT_BF16, PA_FMT_BF16, 0},
      {"rope-fp32", POSATTN_PE_ROPE, PA_ANGLE_FAST, PA_FMT_F32, PA_FMT_BF16, 0},
      {"rope-exact", POSATTN_PE_ROPE, PA_ANGLE_EXACT, PA_FMT_F32, PA_FMT_BF16, 0},
      {"rope-exact-fp16", POSATTN_PE_ROPE, PA_ANGLE_EXACT, PA_FMT_F32, PA_FMT_F16, 0},
      {"rope-exact-fp32", POSATTN_PE_ROPE, PA_ANGLE_EXACT, PA_FMT_F32, PA_FMT_F32, 0},
  };
  size_t nel = (size_t)T * d;
  double *Kg = malloc(sizeof(double) * nel), *Kl = malloc(sizeof(double) * nel);
  double *Vr = malloc(sizeof(double) * nel);
  double *wg = malloc(sizeof(double) * (size_t)T), *wl = malloc(sizeof(double) * (size_t)T);
  double *sg = malloc(sizeof(double) * (size_t)T), *sl = malloc(sizeof(double) * (size_t)T);
  double *acc = malloc(sizeof(double) * (size_t)R * M_N), *tmp = malloc(sizeof(double) * (size_t)R);
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)T), maxp = 0;
  posattn_status st = POSATTN_STATUS_SUCCESS;
  if (!Kg || !Kl || !Vr || !wg || !wl || !sg || !sl || !acc || !tmp || !idx)
    st = pa_fail(msg, msz, POSATTN_STATUS_ALLOC_FAILED, "experiment b buffers (%d tokens)", (int)T);
  for (int64_t j = 0; j < T && st == POSATTN_STATUS_SUCCESS; ++j) {
    idx[j] = j;
    maxp = a->pos[j] > maxp ? a->pos[j] : maxp;
  }
  double og[PA_MAXD], ol[PA_MAXD], qg[PA_MAXD], ql[PA_MAXD];
  for (size_t mi = 0; mi < sizeof methods / sizeof methods[0] && st == POSATTN_STATUS_SUCCESS;
       ++mi) {
    const b_method *me = &methods[mi];
    pa_lp_config cg, cl;
    pa_lp_config_fp64(&cg);
    cg.input = me->dt;
    if (me->dt == PA_FMT_F32) pa_lp_config_fp32(&cl);
    else pa_lp_config_tc(&cl, me->dt);
    cl.angle = me->angle;
    cl.table = me->table;
    posattn_pe pe;
    posattn_pe_init(&pe);
    pe.kind = POSATTN_PE_ROPE;
    pe.rope.base = a->rope_base;
    pa_lp_rope rg, rl;
    st = pa_lp_rope_init(&rg, &cg, &pe.rope, d, T, maxp, msg, msz);
    if (st != POSATTN_STATUS_SUCCESS) break;
    st = pa_lp_rope_init(&rl, &cl, &pe.rope, d, T, maxp, msg, msz);
    if (st != POSATTN_STATUS_SUCCESS) {
      pa_lp_rope_free(&rg);
      break;
    }
    b_state bs = {d, 0, &cg, &cl, &rg, &rl, a->pos, Kg, Kl};
    pa_lp_logit lg = {1.0 / sqrt((double)d), 0.0, &pe, 1, 0};
    char series[48];
    snprintf(series, sizeof series, "real/%s", me->name);
    progress(o, "b: %s", series);
    const int64_t stride = T / 2 / R > 0 ? T / 2 / R : 1;
    int nr = 0;
    for (int r = 0; r < R && st == POSATTN_STATUS_SUCCESS; ++r, ++nr) {
      const int64_t i = T - 1 - r * stride > 0 ? T - 1 - r * stride : 0;
      const int32_t h = r % a->hq, hk = h / (a->hq / a->hkv);
      for (int64_t j = 0; j <= i; ++j) {
        b_set_key(&bs, j, a->k + (j * a->hkv + hk) * d);
        for (int32_t f = 0; f < d; ++f)
          Vr[j * d + f] = pa_lp_round(me->dt, a->v[(j * a->hkv + hk) * d + f]);
      }
      const double *q = a->q + (i * a->hq + h) * d;
      double lse;
      pa_lp_prepare(&cg, &rg, d, q, a->pos[i], qg);
      pa_lp_prepare(&cl, &rl, d, q, a->pos[i], ql);
      st = pa_lp_row(&cg, &lg, qg, a->pos[i], Kg, Vr, a->pos, idx, i + 1, d, og, &lse, sg, wg);
      if (st == POSATTN_STATUS_SUCCESS)
        st = pa_lp_row(&cl, &lg, ql, a->pos[i], Kl, Vr, a->pos, idx, i + 1, d, ol, &lse, sl, wl);
      if (st != POSATTN_STATUS_SUCCESS) break;
      int64_t js = 0;
      for (int64_t j = 1; j <= i; ++j) js = wg[j] > wg[js] ? j : js;
      b_measure(acc + (size_t)nr * M_N, og, ol, d, wl, wg, sl, sg, i + 1, js, 1, 0);
    }
    double row[B_NCOLS];
    if (st == POSATTN_STATUS_SUCCESS) {
      b_stats(acc, nr, tmp, T, row);
      st = table_add(t, series, row, msg, msz);
    }
    pa_lp_rope_free(&rg);
    pa_lp_rope_free(&rl);
  }
  free(Kg);
  free(Kl);
  free(Vr);
  free(wg);
  free(wl);
  free(sg);
  free(sl);
  free(acc);
  free(tmp);
  free(idx);
  return st;
}

posattn_status pa_drift_exp_b(const pa_drift_opts *o, pa_drift_table *t, char *msg, size_t msz) {
  table_init(t, "b_context_growth", B_NCOLS, B_COLS);
  if (o->acts) {
    if (o->backend != POSATTN_BACKEND_REF)
      return pa_fail(msg, msz, POSATTN_STATUS_NOT_SUPPORTED,
                     "experiment b on real activations runs on the emulation only (--backend ref)");
    if (o->b_rows < 1)
      return pa_fail(msg, msz, POSATTN_STATUS_BAD_SIZE, "b_rows (%d) must be >= 1", (int)o->b_rows);
    return b_real(o, t, msg, msz);
  }
  const int32_t d = B_DIM, lmax = o->b_max_len, R = o->b_rows;
  if (lmax < 1024 || lmax > (1 << 22) || R < 1)
    return pa_fail(msg, msz, POSATTN_STATUS_BAD_SIZE,
                   "b_max_len (%d) must be in [1024, 2^22] and b_rows (%d) >= 1", (int)lmax,
                   (int)R);
  if (!(o->b_sink_weight > 0 && o->b_sink_weight < 1))
    return pa_fail(msg, msz, POSATTN_STATUS_INVALID_ARGUMENT,
                   "b_sink_weight (%g) must be in (0, 1)", o->b_sink_weight);
  const b_method methods[] = {
      {"nope", POSATTN_PE_NONE, PA_ANGLE_F64, PA_FMT_F32, PA_FMT_BF16, 0},
      {"alibi", POSATTN_PE_ALIBI, PA_ANGLE_F64, PA_FMT_F32, PA_FMT_BF16, 0},
      {"fire", POSATTN_PE_FIRE, PA_ANGLE_F64, PA_FMT_F32, PA_FMT_BF16, 1},
      {"rope-bf16table", POSATTN_PE_ROPE, PA_ANGLE_FAST, PA_FMT_BF16, PA_FMT_BF16, 0},
      {"rope-fp32", POSATTN_PE_ROPE, PA_ANGLE_FAST, PA_FMT_F32, PA_FMT_BF16, 0},
      {"rope-exact", POSATTN_PE_ROPE, PA_ANGLE_EXACT, PA_FMT_F32, PA_FMT_BF16, 0},
      {"rope-exact-fp16", POSATTN_PE_ROPE, PA_ANGLE_EXACT, PA_FMT_F32, PA_FMT_F16, 1},
      {"rope-exact-fp32", POSATTN_PE_ROPE, PA_ANGLE_EXACT, PA_FMT_F32, PA_FMT_F32, 1},
      {"nope-fp16", POSATTN_PE_NONE, PA_ANGLE_F64, PA_FMT_F32, PA_FMT_F16, 1},
      {"nope-fp32", POSATTN_PE_NONE, PA_ANGLE_F64, PA_FMT_F32, PA_FMT_F32, 1},
  };
  /* FIRE's MLP (width 32, one head): fixed random weights, biases of O(1) over the range */
  float fw1[32], fb1[32], fw2[32], fb2 = 0;
  rng gf = {o->seed ^ 0xF1E};
  for (int k = 0; k < 32; ++k) {
    fw1[k] = (float)(2 * rng_normal(&gf));
    fb1[k] = (float)rng_normal(&gf);
    fw2[k] = (float)(rng_normal(&gf) / sqrt(32.0));
  }
  const int nvar = (int)(sizeof B_VARIANTS / sizeof B_VARIANTS[0]);
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
   * whole context at base 5e5), carried by every query and, with a large weight, by the sink's
   * key, so that the sink takes a large share of the attention as in trained models. */
  double u[B_DIM] = {0}, noise[B_DIM];
  for (int32_t i = 60; i < 64; ++i) u[i] = u[i + 64] = 1.0 / sqrt(8.0);
  rng gs = {o->seed ^ 0x5111C};
  for (int32_t f = 0; f < d; ++f) noise[f] = 0.1 * rng_normal(&gs);
  const double beta = 4.0, gamma0 = 34.0; /* sink logit ~ beta*gamma0/sqrt(d) = 12 */
  float slope = (float)pa_alibi_slope(8, 7); /* the gentlest of 8 heads: 2^-8 */
  size_t nel = (size_t)lmax * d;
  double *K = malloc(sizeof(double) * nel), *V = malloc(sizeof(double) * nel);
  double *Kg = malloc(sizeof(double) * nel), *Kl = malloc(sizeof(double) * nel);
  double *Vr = malloc(sizeof(double) * nel);
  double *wg = malloc(sizeof(double) * (size_t)lmax), *wl = malloc(sizeof(double) * (size_t)lmax);
  double *sg = malloc(sizeof(double) * (size_t)lmax), *sl = malloc(sizeof(double) * (size_t)lmax);
  double *acc = malloc(sizeof(double) * (size_t)R * M_N), *tmp = malloc(sizeof(double) * (size_t)R);
  int64_t *pk = malloc(sizeof(int64_t) * (size_t)lmax), *idx = malloc(sizeof(int64_t) * (size_t)lmax);
  int32_t *pk32 = malloc(sizeof(int32_t) * (size_t)lmax);
  posattn_status st = POSATTN_STATUS_SUCCESS;
  if (!K || !V || !Kg || !Kl || !Vr || !wg || !wl || !sg || !sl || !acc || !tmp || !pk || !idx || !pk32)
    st = pa_fail(msg, msz, POSATTN_STATUS_ALLOC_FAILED, "experiment b buffers (%d tokens)",
                 (int)lmax);
  for (int64_t j = 0; j < lmax && st == POSATTN_STATUS_SUCCESS; ++j) idx[j] = j;
  rng g = {o->seed ^ 0xB};
  if (st == POSATTN_STATUS_SUCCESS) {
    for (size_t i = 0; i < nel; ++i) K[i] = rng_normal(&g);
    for (size_t i = 0; i < nel; ++i) V[i] = rng_normal(&g);
  }
  double qrow[B_DIM], og[B_DIM], ol[B_DIM], ks[B_DIM];
  for (int vi = 0; vi < nvar && st == POSATTN_STATUS_SUCCESS; ++vi) {
    const b_variant *va = &B_VARIANTS[vi];
    for (int64_t j = 0; j < lmax; ++j) {
      pk[j] = va->pos0 + j;
      pk32[j] = (int32_t)pk[j];
    }
    for (size_t mi = 0; mi < sizeof methods / sizeof methods[0] && st == POSATTN_STATUS_SUCCESS;
         ++mi) {
      const b_method *me = &methods[mi];
      /* kernels keep their tables in fp32; this study feeds them bf16 */
      if (kernel && (me->table != PA_FMT_F32 || me->dt != PA_FMT_BF16)) continue;
      if (me->two_only && vi > 1) continue;
      if (va->fixw && me->kind == POSATTN_PE_ALIBI) continue; /* a bias would need the sink's
                                                                  logit to grow with distance */
      pa_lp_config cg, cl;
      pa_lp_config_fp64(&cg);
      cg.input = me->dt; /* gold: fp64 on the same rounded inputs */
      if (me->dt == PA_FMT_F32) pa_lp_config_fp32(&cl);
      else pa_lp_config_tc(&cl, me->dt);
      cl.angle = me->angle;
      cl.table = me->table;
      posattn_pe pe;
      posattn_pe_init(&pe);
      pe.kind = me->kind;
      pe.rope.base = 500000.0;
      pe.rope.angle_mode = me->angle == PA_ANGLE_EXACT ? POSATTN_ANGLE_EXACT : POSATTN_ANGLE_FAST;
      pe.alibi.slopes = &slope;
      pe.fire.w1 = fw1;
      pe.fire.b1 = fb1;
      pe.fire.w2 = fw2;
      pe.fire.b2 = &fb2;
      st = pa_validate_pe(msg, msz, &pe, 1, d);
      if (st != POSATTN_STATUS_SUCCESS) break;
      pa_lp_rope rg, rl;
      int rope = me->kind == POSATTN_PE_ROPE;
      if (rope) {
        st = pa_lp_rope_init(&rg, &cg, &pe.rope, d, lmax, va->pos0 + lmax, msg, msz);
        if (st != POSATTN_STATUS_SUCCESS) break;
        st = pa_lp_rope_init(&rl, &cl, &pe.rope, d, lmax, va->pos0 + lmax, msg, msz);
        if (st != POSATTN_STATUS_SUCCESS) {
          pa_lp_rope_free(&rg);
          break;
        }
      }
      b_state bs = {d, kernel, &cg, &cl, rope ? &rg : NULL, rope ? &rl : NULL, pk, Kg, Kl};
      for (int64_t j = 0; j < lmax; ++j) b_set_key(&bs, j, K + j * d);
      for (size_t e = 0; e < nel; ++e) Vr[e] = pa_lp_round(me->dt, V[e]);
      pa_lp_logit lg = {1.0 / sqrt((double)d), 0.0, &pe, 1, 0};
      int unsupported = 0;
      char series[48];
      snprintf(series, sizeof series, "%s/%s", me->name, va->name);
      for (int32_t len = 1024; len <= lmax && st == POSATTN_STATUS_SUCCESS && !unsupported;
           len *= 2) {
        progress(o, "b: %s len %d", series, (int)len);
        const int64_t js = va->mid ? len / 2 : 0; /* the sink's token */
        int64_t stride = len / (8 * R) > 0 ? len / (8 * R) : 1;
        int nr = 0;
        for (int r = 0; r < R && st == POSATTN_STATUS_SUCCESS; ++r, ++nr) {
          /* rows in the last eighth of the sequence: each sees (almost) len keys; the same
           * query content for every series */
          int64_t i = len - 1 - r * stride;
          rng gr = {o->seed * 0x100000001B3ull ^ (uint64_t)len * 0x9E3779B97F4A7C15ull ^
                    (uint64_t)(r + 1) * 0xD1B54A32D192ED03ull};
          for (int32_t f = 0; f < d; ++f) qrow[f] = rng_normal(&gr) + beta * u[f];
          double lse, qg[B_DIM], ql[B_DIM], qin[B_DIM];
          for (int32_t f = 0; f < d; ++f) qin[f] = pa_lp_round(me->dt, qrow[f]);
          pa_lp_prepare(&cg, bs.rg, d, qrow, pk[i], qg);
          if (va->sink) {
            double gamma = gamma0;
            if (va->fixw) { /* the other keys' logsumexp, then the sink's scale */
              double lse_rest;
              st = pa_lp_row(&cg, &lg, qg, pk[i], Kg, Vr, pk, idx + 1, i, d, og, &lse_rest, NULL,
                             NULL);
              if (st != POSATTN_STATUS_SUCCESS) break;
              gamma = b_sink_gamma(&bs, qg, pk[js], u, noise, lse_rest, o->b_sink_weight, gamma0);
            }
            for (int32_t f = 0; f < d; ++f) ks[f] = (double)(float)(gamma * u[f] + noise[f]);
            b_set_key(&bs, js, ks);
          }
          if (kernel && o->gold_row) {
            /* fp64 on the GPU; the sink's weight from its logit (the lse of it alone) */
            double ls, o0[B_DIM];
            st = o->gold_row(o->gold_user, &pe, qin, pk32[i], Kl, Vr, pk32, (int32_t)(i + 1), d,
                             og, &lse, msg, msz);
            if (st != POSATTN_STATUS_SUCCESS) break;
            st = pa_lp_row(&cg, &lg, qg, pk[i], Kg, Vr, pk, idx + js, 1, d, o0, &ls, NULL, NULL);
            wg[js] = exp(ls - lse);
          } else {
            st = pa_lp_row(&cg, &lg, qg, pk[i], Kg, Vr, pk, idx, i + 1, d, og, &lse, sg, wg);
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
            pa_lp_prepare(&cl, bs.rl, d, qrow, pk[i], ql);
            st = pa_lp_row(&cl, &lg, ql, pk[i], Kl, Vr, pk, idx, i + 1, d, ol, &lse, sl, wl);
            if (st != POSATTN_STATUS_SUCCESS) break;
          }
          b_measure(acc + (size_t)nr * M_N, og, ol, d, wl, wg, sl, sg, i + 1, js, va->sink,
                    kernel);
          if (va->sink) {
            b_set_key(&bs, js, K + js * d); /* the ordinary token again */
          }
        }
        if (st != POSATTN_STATUS_SUCCESS || unsupported) break;
        double row[B_NCOLS];
        b_stats(acc, nr, tmp, len, row);
        st = table_add(t, series, row, msg, msz);
      }
      if (rope) {
        pa_lp_rope_free(&rg);
        pa_lp_rope_free(&rl);
      }
    }
  }
  free(K);
  free(V);
  free(Kg);
  free(Kl);
  free(Vr);
  free(wg);
  free(wl);
  free(sg);
  free(sl);
  free(acc);
  free(tmp);
  free(pk);
  free(idx);
  free(pk32);
  posattn_context_destroy(ctx);
  return st;
}

/* ---- experiment c: where to rotate K ----------------------------------------------------------- */

static const char *const C_COLS[] = {"position", "err_med", "err_p10", "err_p90",
                                     "mean_abs_err", "max_abs_err", "mean_abs_logit", "draws"};

posattn_status pa_drift_exp_c(const pa_drift_opts *o, pa_drift_table *t, char *msg, size_t msz) {
  table_init(t, "c_where_to_rotate", 8, C_COLS);
  const pa_drift_acts *ac = o->acts;
  const int32_t d = ac ? ac->d : A_DIM, trials = o->full ? 256 : 64;
  if (ac && ac->T <= A_KEYS)
    return pa_fail(msg, msz, POSATTN_STATUS_BAD_SIZE,
                   "experiment c needs more than %d tokens of activations (T = %d)", A_KEYS,
                   (int)ac->T);
  int64_t pos[256];
  int np = shift_grid((int64_t)1 << 20, o->full ? 8 : 4, pos, 256);
  struct { const char *name; pa_fmt dt; pa_angle angle; pa_fmt table, rot, operand; } vs[] = {
      /* HF eager in bf16: fp32 angle, cos/sin cast to bf16, rotation in bf16 tensors, cached */
      {"cache-bf16math", PA_FMT_BF16, PA_ANGLE_FAST, PA_FMT_BF16, PA_FMT_BF16, PA_FMT_BF16},
      /* the same in fp16 (cos/sin cast to fp16, rotation in fp16 tensors) */
      {"cache-fp16math", PA_FMT_F16, PA_ANGLE_FAST, PA_FMT_F16, PA_FMT_F16, PA_FMT_F16},
      /* an fp32 RoPE kernel (fp32 angle and math) writing the rotated K to a bf16/fp16 cache */
      {"cache-fp32rope", PA_FMT_BF16, PA_ANGLE_FAST, PA_FMT_F32, PA_FMT_F32, PA_FMT_BF16},
      {"cache-fp32rope-f16", PA_FMT_F16, PA_ANGLE_FAST, PA_FMT_F32, PA_FMT_F32, PA_FMT_F16},
      /* un-rotated bf16/fp16 cache; the attention kernel rotates in fp32 (exact angles) and
       * feeds bf16/fp16 operands to the tensor cores */
      {"kernel-exact-bf16op", PA_FMT_BF16, PA_ANGLE_EXACT, PA_FMT_F32, PA_FMT_F32, PA_FMT_BF16},
      {"kernel-exact-f16op", PA_FMT_F16, PA_ANGLE_EXACT, PA_FMT_F32, PA_FMT_F32, PA_FMT_F16},
      /* same, fp32 operands (an fp32 dot product): common-practice and exact angles */
      {"kernel-fast-fp32op", PA_FMT_BF16, PA_ANGLE_FAST, PA_FMT_F32, PA_FMT_F32, PA_FMT_F32},
      {"kernel-exact-fp32op", PA_FMT_BF16, PA_ANGLE_EXACT, PA_FMT_F32, PA_FMT_F32, PA_FMT_F32},
  };
  posattn_rope_params rp;
  rope_defaults(&rp, ac ? ac->rope_base : 10000.0);
  const int64_t maxp = pos[np - 1] + 64;
  pa_lp_config cg;
  pa_lp_config_fp64(&cg);
  pa_lp_rope rg;
  PA_TRY(pa_lp_rope_init(&rg, &cg, &rp, d, (int32_t)maxp, maxp, msg, msz));
  double *err = malloc(sizeof(double) * (size_t)trials);
  posattn_status st = POSATTN_STATUS_SUCCESS;
  if (err == NULL) st = pa_fail(msg, msz, POSATTN_STATUS_ALLOC_FAILED, "experiment c buffers");
  for (size_t vi = 0; vi < sizeof vs / sizeof vs[0] && st == POSATTN_STATUS_SUCCESS; ++vi) {
    pa_lp_config cl;
    pa_lp_config_fp32(&cl);
    cl.input = cg.input = vs[vi].dt; /* the gold: fp64 on the same rounded inputs */
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
        double qr[A_DIM], kr[A_DIM], a[PA_MAXD], b[PA_MAXD];
        const double *q = qr, *k = kr;
        int64_t pq;
        if (ac) { /* a real query and one of the 64 keys before it, at the same distance */
          int64_t tq;
          int32_t h, hk;
          acts_draw(ac, tr, trials, &tq, &h, &hk);
          int64_t dist = 1 + tr % A_KEYS;
          q = ac->q + (tq * ac->hq + h) * d;
          k = ac->k + ((tq - dist) * ac->hkv + hk) * d;
          pq = pos[pi] + dist;
        } else {
          for (int32_t f = 0; f < d; ++f) qr[f] = rng_normal(&g);
          for (int32_t f = 0; f < d; ++f) kr[f] = rng_normal(&g);
          pq = pos[pi] + (int64_t)(rng_next(&g) % 64); /* query a little after the key */
        }
        pa_lp_prepare(&cg, &rg, d, q, pq, a);
        pa_lp_prepare(&cg, &rg, d, k, pos[pi], b);
        double sg = pa_lp_dot(&cg, a, b, d) / sqrt((double)d);
        pa_lp_prepare(&cl, &rl, d, q, pq, a);
        pa_lp_prepare(&cl, &rl, d, k, pos[pi], b);
        double sl = pa_lp_dot(&cl, a, b, d) / sqrt((double)d);
        err[tr] = fabs(sl - sg);
        mx = fmax(mx, err[tr]);
        sum += err[tr];
        sabs += fabs(sg);
      }
      double row[8] = {(double)pos[pi], 0, 0, 0, sum / trials, mx, sabs / trials, trials};
      spread3(err, trials, row + 1);
      char series[48];
      snprintf(series, sizeof series, "%s%s", ac ? "real/" : "", vs[vi].name);
      st = table_add(t, series, row, msg, msz);
    }
    pa_lp_rope_free(&rl);
  }
  free(err);
  pa_lp_rope_free(&rg);
  return st;
}

/* ---- experiment d: a quantised KV cache as the context grows --------------------------------- */

#define D_DIM 128

static const char *const D_COLS[] = {"len",      "nrmse_med", "nrmse_p10", "nrmse_p90",
                                     "dlse_med", "dlse_p10",  "dlse_p90",  "draws"};

/* The cache formats of experiment d: FP8 with a per-tensor scale amax / largest value (the usual
 * calibration), and bf16 (no scale). */
typedef struct d_format {
  const char *name;
  posattn_dtype dt;
} d_format;
static const d_format D_FORMATS[] = {{"fp8-e4m3", POSATTN_DTYPE_FP8_E4M3},
                                     {"fp8-e5m2", POSATTN_DTYPE_FP8_E5M2},
                                     {"bf16", POSATTN_DTYPE_BF16}};
#define D_NFMT 3

/* x[n] stored in cache format f and read back (fp64): FP8 codes are fp8(x / s) rounded once,
 * saturating, read as code * s with s = amax / largest finite value. */
static void d_quantise(posattn_dtype f, const double *x, size_t n, double *y) {
  if (f == POSATTN_DTYPE_BF16) {
    for (size_t i = 0; i < n; ++i) y[i] = pa_round_to(f, x[i]);
    return;
  }
  double amax = 0;
  for (size_t i = 0; i < n; ++i) amax = fmax(amax, fabs(x[i]));
  const double s = amax > 0 ? amax / pa_round_to(f, 1e300) : 1.0; /* 1e300 saturates: the max */
  for (size_t i = 0; i < n; ++i) y[i] = pa_round_to(f, x[i] / s) * s;
}

/* One decode row in fp64: q against keys 0..n-1 (all visible), out[d] and the LSE. */
static double d_row(const double *q, const double *K, const double *V, int64_t n, int32_t d,
                    double *s, double *out) {
  double m = -INFINITY, z = 0;
  for (int64_t j = 0; j < n; ++j) {
    double dot = 0;
    for (int32_t f = 0; f < d; ++f) dot += q[f] * K[j * d + f];
    s[j] = dot / sqrt((double)d);
    m = fmax(m, s[j]);
  }
  for (int32_t f = 0; f < d; ++f) out[f] = 0;
  for (int64_t j = 0; j < n; ++j) {
    const double w = exp(s[j] - m);
    z += w;
    for (int32_t f = 0; f < d; ++f) out[f] += w * V[j * d + f];
  }
  for (int32_t f = 0; f < d; ++f) out[f] /= z;
  return m + log(z);
}

posattn_status pa_drift_exp_d(const pa_drift_opts *o, pa_drift_table *t, char *msg, size_t msz) {
  table_init(t, "d_kv_cache", 8, D_COLS);
  const int32_t d = D_DIM, lmax = o->d_max_len, R = o->d_draws;
  if (lmax < 1024 || lmax > (1 << 21) || R < 1)
    return pa_fail(msg, msz, POSATTN_STATUS_BAD_SIZE,
                   "d_max_len (%d) must be in [1024, 2^21] and d_draws (%d) >= 1", (int)lmax,
                   (int)R);
  const size_t nel = (size_t)lmax * d;
  double *K = malloc(sizeof(double) * nel), *V = malloc(sizeof(double) * nel);
  double *Kq = malloc(sizeof(double) * nel), *Vq = malloc(sizeof(double) * nel);
  double *s = malloc(sizeof(double) * (size_t)lmax);
  /* the fp64 answer (out[d], lse) of every (length, draw): at most 12 lengths 1024 .. 2^21 */
  double *gold = malloc(sizeof(double) * 12 * (size_t)R * (d + 1));
  double *nrmse = malloc(sizeof(double) * (size_t)R), *dlse = malloc(sizeof(double) * (size_t)R);
  posattn_status st = POSATTN_STATUS_SUCCESS;
  if (!K || !V || !Kq || !Vq || !s || !gold || !nrmse || !dlse)
    st = pa_fail(msg, msz, POSATTN_STATUS_ALLOC_FAILED, "experiment d buffers (%d tokens)", (int)lmax);
  pa_lp_config c64;
  pa_lp_config_fp64(&c64);
  posattn_rope_params rp;
  rope_defaults(&rp, 500000.0);
  /* attention sharpness: q ~ N(0, gain^2): logits have standard deviation ~gain */
  static const struct { const char *name; double gain; } qk[] = {{"diffuse", 1.0}, {"peaked", 4.0}};
  for (int rope = 0; rope < 2 && st == POSATTN_STATUS_SUCCESS; ++rope) {
    /* the "true" K and V: fp32 values of N(0, 1) draws; with RoPE, K is stored rotated at its
     * position (rotated in fp64, then quantised once, as a rotated cache holds it) */
    rng g = {o->seed ^ 0xD};
    for (size_t i = 0; i < nel; ++i) K[i] = (double)(float)rng_normal(&g);
    for (size_t i = 0; i < nel; ++i) V[i] = (double)(float)rng_normal(&g);
    pa_lp_rope r;
    if (rope) {
      st = pa_lp_rope_init(&r, &c64, &rp, d, lmax, lmax, msg, msz);
      if (st != POSATTN_STATUS_SUCCESS) break;
      for (int64_t j = 0; j < lmax; ++j) pa_lp_prepare(&c64, &r, d, K + j * d, j, K + j * d);
    }
    for (size_t qi = 0; qi < sizeof qk / sizeof qk[0] && st == POSATTN_STATUS_SUCCESS; ++qi)
      for (int fi = -1; fi < D_NFMT && st == POSATTN_STATUS_SUCCESS; ++fi) {
        /* fi = -1: the fp64 answers of every (length, draw), then each format against them */
        if (fi >= 0) {
          d_quantise(D_FORMATS[fi].dt, K, nel, Kq);
          d_quantise(D_FORMATS[fi].dt, V, nel, Vq);
        }
        char series[48];
        if (fi >= 0)
          snprintf(series, sizeof series, "%s/%s/%s", D_FORMATS[fi].name, rope ? "rope" : "nope",
                   qk[qi].name);
        int li = 0;
        for (int32_t len = 1024; len <= lmax && st == POSATTN_STATUS_SUCCESS; len *= 2, ++li) {
          if (fi >= 0) progress(o, "d: %s len %d", series, (int)len);
          for (int r0 = 0; r0 < R; ++r0) {
            /* draw r0: a fresh query, the newest token (position len - 1; same for every format) */
            rng gq = {o->seed * 0x100000001B3ull ^ (uint64_t)len * 0x9E3779B97F4A7C15ull ^
                      (uint64_t)(r0 + 1) * 0xD1B54A32D192ED03ull ^ (uint64_t)qi};
            double q[D_DIM], out[D_DIM];
            for (int32_t f = 0; f < d; ++f) q[f] = (double)(float)(qk[qi].gain * rng_normal(&gq));
            if (rope) pa_lp_prepare(&c64, &r, d, q, len - 1, q);
            double *gr = gold + ((size_t)li * R + (size_t)r0) * (d + 1);
            if (fi < 0) {
              gr[d] = d_row(q, K, V, len, d, s, gr);
              continue;
            }
            const double lse = d_row(q, Kq, Vq, len, d, s, out);
            double e2 = 0, g2 = 0;
            for (int32_t f = 0; f < d; ++f) {
              e2 += (out[f] - gr[f]) * (out[f] - gr[f]);
              g2 += gr[f] * gr[f];
            }
            nrmse[r0] = sqrt(e2 / g2);
            dlse[r0] = fabs(lse - gr[d]);
          }
          if (fi < 0) continue;
          double row[8] = {(double)len, 0, 0, 0, 0, 0, 0, (double)R};
          spread3(nrmse, R, row + 1);
          spread3(dlse, R, row + 4);
          st = table_add(t, series, row, msg, msz);
        }
      }
    if (rope) pa_lp_rope_free(&r);
  }
  free(K);
  free(V);
  free(Kq);
  free(Vq);
  free(s);
  free(gold);
  free(nrmse);
  free(dlse);
  return st;
}
