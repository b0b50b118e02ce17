/* posattn-bench -- attention microbenchmarks with same-run baselines (docs/benchmarks.md).
 *
 *   posattn-bench [--backend auto|cuda,ref,emu] [--quick] [--op prefill,decode,append]
 *                 [--pe none,rope,...] [--mask none,causal,window,docs,varlen] [--dtype bf16,...]
 *                 [--hd 64,128] [--seq 1024,512:4096] [--batch auto|1,2] [--tokens N]
 *                 [--heads 16] [--gqa 1,8] [--window N] [--docs N] [--anchors N]
 *                 [--baselines cublas,cudnn|none] [--max-time S] [--min-samples N] [--spread F]
 *                 [--json F] [--csv F] [--plot F.png] [--list] [--seed N] [--predicted F]
 *
 * Each list option replaces one axis of the default grid (a filter). Every contender of a
 * configuration is timed the same way and counted by the same rule (bench_core.h): FLOPs =
 * 4*head_dim per visible (i, j) pair and query head, bytes = inputs read once + outputs written
 * once. GPU: CUDA events around one launch, 2x-L2 memset before every repetition, warm-up first,
 * repetitions until the spread is < 1% or the time bound; ceilings (copy, cuBLAS bf16 GEMM)
 * measured at start. CPU (REF/EMU, used when there is no GPU): wall clock, same statistics, no L2
 * flush. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "bench_core.h"
#include "bench_decode.h"
#include "bench_gpu.h"
#include "decode.h" /* PA_DECODE_NOMINAL_SMS */
#include "posattn.h"
#ifdef PB_HAVE_CUDNN
#include "bench_cudnn.h"
#endif

#ifndef PB_BUILD_COMMIT
#define PB_BUILD_COMMIT "unknown"
#endif
#ifndef PB_SOURCE_DIR
#define PB_SOURCE_DIR "."
#endif

/* ---- grid ------------------------------------------------------------------------------------ */

enum { OP_PREFILL, OP_DECODE, OP_APPEND };
static const char *const OP_NAMES[] = {"prefill", "decode", "append"};
enum { MASK_NONE, MASK_CAUSAL, MASK_WINDOW, MASK_DOCS, MASK_VARLEN };
static const char *const MASK_NAMES[] = {"none", "causal", "window", "docs", "varlen"};
static const char *const PE_NAMES[] = {"none", "rope", "alibi", "fire", "xpos",
                                       "t5", "kerple_log", "kerple_power"};

#define MAXV 32
typedef struct axis {
  int n;
  int v[MAXV];
  int v2[MAXV]; /* seq: kv length (0 = same as q) */
} axis;

typedef struct config {
  int op, pe, mask, dtype, hd, q_len, kv_len, batch, heads, gqa;
  int window, docs, anchors;
} config;

typedef struct options {
  axis op, pe, mask, dtype, hd, seq, batch, heads, gqa; /* batch v = 0 means auto */
  int tokens, window, docs, anchors;
  int backends[4], nbackends;
  int cublas, cudnn;
  pb_time_opts gpu_t, cpu_t;
  const char *json, *csv, *plot, *predicted;
  int list, quick, backend_given;
  uint64_t seed;
} options;

typedef struct row {
  config c;
  char contender[24];
  char status[20]; /* ok, not-supported, not-implemented, error, skipped */
  char msg[240];
  double flops, bytes;
  pb_stats st;
  int has_check;
  double check; /* max |out - posattn CUDA out| */
  int has_combine;
  double combine_share; /* decode: upper bound of the combine step's share (bench_decode.h) */
} row;

/* One prediction of posattn-sass (bench/sass, --tsv): the static model's ceiling of the prefill
 * instance (op, pe, dtype, hd) on a device; shown beside the measured rate, labelled. */
typedef struct prediction {
  char op[16], pe[16], dtype[16], device[32];
  int hd;
  double tflops;
} prediction;

typedef struct report {
  row *rows;
  int n, cap;
  int gpu;
  pb_gpu_info info;
  int has_ceilings;
  double copy_gbps, gemm_tflops;
  long cudnn_version; /* 0: not built with cuDNN or no GPU */
  prediction pred[128];
  int npred;
  char cpu[256], os[256], date[32], commit[64];
} report;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int lookup(const char *s, const char *const *names, int n) {
  for (int i = 0; i < n; ++i)
    if (strcmp(s, names[i]) == 0) return i;
  return -1;
}

static int dtype_of(const char *s) {
  if (!strcmp(s, "bf16")) return POSATTN_DTYPE_BF16;
  if (!strcmp(s, "f16") || !strcmp(s, "fp16")) return POSATTN_DTYPE_F16;
  if (!strcmp(s, "f32") || !strcmp(s, "fp32")) return POSATTN_DTYPE_F32;
  if (!strcmp(s, "fp8_e4m3")) return POSATTN_DTYPE_FP8_E4M3; /* decode: the KV cache's dtype */
  if (!strcmp(s, "fp8_e5m2")) return POSATTN_DTYPE_FP8_E5M2;
  return -1;
}

/* Parses a comma list into `a` with `conv` (names) or as integers (names == NULL); seq entries
 * may be Q:KV. Returns 0 or -1 with a message on stderr. */
static int parse_axis(const char *opt, const char *arg, axis *a, const char *const *names,
                      int nnames, int is_dtype, int is_seq) {
  char buf[512];
  snprintf(buf, sizeof buf, "%s", arg);
  a->n = 0;
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    if (a->n == MAXV) {
      fprintf(stderr, "posattn-bench: %s: at most %d values\n", opt, MAXV);
      return -1;
    }
    int v = -1, v2 = 0;
    if (is_dtype) {
      v = dtype_of(tok);
    } else if (names) {
      v = lookup(tok, names, nnames);
    } else if (!strcmp(opt, "--batch") && !strcmp(tok, "auto")) {
      v = 0;
    } else {
      char *end;
      long x = strtol(tok, &end, 10);
      if (is_seq && *end == ':') {
        long y = strtol(end + 1, &end, 10);
        v2 = y > 0 && y < (1L << 30) ? (int)y : -1;
      }
      v = (*end == '\0' && x > 0 && x < (1L << 30) && v2 >= 0) ? (int)x : -1;
    }
    if (v < 0) {
      fprintf(stderr, "posattn-bench: %s: '%s' is not a valid value\n", opt, tok);
      return -1;
    }
    a->v[a->n] = v;
    a->v2[a->n++] = v2;
  }
  if (a->n == 0) {
    fprintf(stderr, "posattn-bench: %s: empty list\n", opt);
    return -1;
  }
  return 0;
}

static void set_axis(axis *a, int n, const int *v) {
  a->n = n;
  for (int i = 0; i < n; ++i) {
    a->v[i] = v[i];
    a->v2[i] = 0;
  }
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: posattn-bench [options]\n"
          "  --backend L     auto (default: cuda with a GPU, else ref,emu) or a list of cuda,ref,emu\n"
          "  --quick         the smallest grid (seconds)\n"
          "  grid axes (each replaces the default list):\n"
          "  --op L          prefill, decode (paged KV, 1 query token, page 16, seq = context;\n"
          "                  defaults: batch 1,8,64, context 1k..128k, 32/4 heads, hd128;\n"
          "                  quick/CPU: small); append: not implemented, reported as such\n"
          "  --pe L          none,rope,alibi,fire,xpos,t5,kerple_log,kerple_power\n"
          "  --mask L        none,causal,window,docs,varlen (window/docs/varlen are causal)\n"
          "  --dtype L       bf16,f16,f32; fp8_e4m3,fp8_e5m2 with --op decode (the cache; q and\n"
          "                  out bf16)\n"
          "  --hd L          head dims\n"
          "  --seq L         query lengths, or Q:KV pairs\n"
          "  --batch L|auto  batch sizes; auto = max(1, tokens/q_len)\n"
          "  --tokens N      tokens per configuration for --batch auto (GPU default 16384)\n"
          "  --heads L       query heads;  --gqa L  query heads per KV head\n"
          "  --window N      window mask: keys at most N before the query (default kv_len/4)\n"
          "  --docs N        docs mask: N equal documents (default 4); --anchors N (default 1)\n"
          "  --baselines L   list of cublas,cudnn (GPU default: both) or none\n"
          "  timing: --max-time S per contender (GPU 1, CPU 2), --min-samples N (GPU 10, CPU 3),\n"
          "          --spread F target relative spread (default 0.01)\n"
          "  output: --json F, --csv F, --plot F.png (gnuplot), --list (configurations only)\n"
          "  --predicted F   posattn-sass --tsv output: GPU rows show the static model's ceiling\n"
          "                  beside the measurement, labelled 'predicted (static)'\n");
}

/* ---- problem construction ------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545F4914F6CDD1DULL;
}
/* k/256 with |k| <= 255: exact in bf16, f16 and f32, so every backend sees the same inputs. */
static float rng_val(uint64_t *s) { return (float)((int)(rng_next(s) % 511) - 255) / 256.0f; }
static float rng_pos(uint64_t *s, float lo, float hi) {
  return lo + (hi - lo) * (float)(rng_next(s) >> 40) / (float)(1 << 24);
}

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
/* Exact conversions for the k/256 values above (normal in every format, or zero). */
static uint16_t to_bf16(float f) { return (uint16_t)(f32_bits(f) >> 16); }
static uint16_t to_f16(float f) {
  const uint32_t u = f32_bits(f), sign = (u >> 16) & 0x8000u;
  if ((u & 0x7fffffffu) == 0) return (uint16_t)sign;
  const int e = (int)((u >> 23) & 0xff) - 127 + 15;
  return (uint16_t)(sign | ((uint32_t)e << 10) | ((u & 0x7fffff) >> 13));
}
#ifdef PB_HAVE_CUDA /* only the GPU contenders read outputs back */
static float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static float from_half(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e == 0) return (sign ? -1.0f : 1.0f) * ldexpf((float)m, -24);
  if (e == 31) return bits_f32(sign | 0x7f800000u | ((uint32_t)m << 13));
  return bits_f32(sign | ((uint32_t)(e - 15 + 127) << 23) | ((uint32_t)m << 13));
}
static double load(const void *p, int dtype, size_t i) {
  if (dtype == POSATTN_DTYPE_F32) return ((const float *)p)[i];
  const uint16_t h = ((const uint16_t *)p)[i];
  return dtype == POSATTN_DTYPE_BF16 ? bits_f32((uint32_t)h << 16) : from_half(h);
}
#endif

static void *random_tensor(size_t n, int dtype, uint64_t *s) {
  const size_t es = posattn_dtype_size((posattn_dtype)dtype);
  void *p = malloc(n * es + 1);
  if (!p) return NULL;
  for (size_t i = 0; i < n; ++i) {
    const float x = rng_val(s);
    if (dtype == POSATTN_DTYPE_F32) ((float *)p)[i] = x;
    else ((uint16_t *)p)[i] = dtype == POSATTN_DTYPE_BF16 ? to_bf16(x) : to_f16(x);
  }
  return p;
}

/* The problem plus everything it owns. */
typedef struct built {
  pb_problem p;
  int32_t *cu_q, *cu_kv, *doc;
  float *pe_arrays[6];
  void *q, *k, *v;
  int64_t pairs;
  double flops, bytes;
} built;

static void built_free(built *b) {
  free(b->cu_q);
  free(b->cu_kv);
  free(b->doc);
  for (int i = 0; i < 6; ++i) free(b->pe_arrays[i]);
  free(b->q);
  free(b->k);
  free(b->v);
  memset(b, 0, sizeof *b);
}

static float *rand_array(built *b, int slot, size_t n, float lo, float hi, uint64_t *s) {
  float *a = malloc(n * sizeof *a);
  if (a)
    for (size_t i = 0; i < n; ++i) a[i] = rng_pos(s, lo, hi);
  b->pe_arrays[slot] = a;
  return a;
}

static const int VARLEN_PATTERN[4] = {4, 2, 1, 3}; /* sequence b has length L*pattern[b%4]/4 */

/* Builds the descriptor, host data and counts of configuration c. Returns 0, or -1 with msg. */
static int build(const config *c, uint64_t seed, built *b, char *msg, size_t msg_size) {
  memset(b, 0, sizeof *b);
  posattn_attention_desc *d = &b->p.desc;
  posattn_attention_desc_init(d);
  d->batch = c->batch;
  d->q_heads = c->heads;
  d->kv_heads = c->heads / c->gqa;
  d->head_dim = c->hd;
  d->q_len = c->q_len;
  d->kv_len = c->kv_len;
  d->causal = c->mask != MASK_NONE;
  if (c->mask == MASK_WINDOW) {
    d->window_left = c->window;
    d->window_right = 0;
  }
  b->p.dtype = (posattn_dtype)c->dtype;
  uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;

  int64_t tq = 0, tk = 0;
  if (c->mask == MASK_VARLEN) {
    b->cu_q = calloc((size_t)c->batch + 1, sizeof(int32_t));
    b->cu_kv = calloc((size_t)c->batch + 1, sizeof(int32_t));
    if (!b->cu_q || !b->cu_kv) goto oom;
    for (int i = 0; i < c->batch; ++i) {
      const int f = VARLEN_PATTERN[i % 4];
      const int lq = c->q_len * f / 4 > 0 ? c->q_len * f / 4 : 1;
      const int lk = c->kv_len * f / 4 > 0 ? c->kv_len * f / 4 : 1;
      b->cu_q[i + 1] = b->cu_q[i] + lq;
      b->cu_kv[i + 1] = b->cu_kv[i] + lk;
      b->pairs += pb_visible_pairs(lq, lk, 1, -1, -1, NULL, 0);
    }
    tq = b->cu_q[c->batch];
    tk = b->cu_kv[c->batch];
    d->cu_seqlens_q = b->cu_q;
    d->cu_seqlens_kv = b->cu_kv;
  } else {
    tq = (int64_t)c->batch * c->q_len;
    tk = (int64_t)c->batch * c->kv_len;
    if (c->mask == MASK_DOCS) {
      if (c->q_len != c->kv_len) {
        snprintf(msg, msg_size, "docs mask needs q_len == kv_len (self-attention)");
        return -1;
      }
      b->doc = malloc((size_t)tq * sizeof(int32_t));
      if (!b->doc) goto oom;
      for (int64_t t = 0; t < tq; ++t)
        b->doc[t] = (int32_t)((t % c->q_len) * c->docs / c->q_len);
      d->doc_ids = b->doc;
      d->num_anchor_tokens = c->anchors < c->q_len ? c->anchors : c->q_len;
    }
    const int64_t per = pb_visible_pairs(c->q_len, c->kv_len, d->causal, d->window_left,
                                         d->window_right, b->doc, d->num_anchor_tokens);
    b->pairs = per * c->batch; /* every batch item has the same documents */
  }
  b->p.total_q = tq;
  b->p.total_kv = tk;

  posattn_pe *pe = &d->pe;
  pe->kind = (posattn_pe_kind)c->pe;
  const int hq = c->heads;
  switch (c->pe) {
    case POSATTN_PE_FIRE:
      pe->fire.w1 = rand_array(b, 0, (size_t)pe->fire.mlp_width, -1, 1, &s);
      pe->fire.b1 = rand_array(b, 1, (size_t)pe->fire.mlp_width, -1, 1, &s);
      pe->fire.w2 = rand_array(b, 2, (size_t)hq * (size_t)pe->fire.mlp_width, -1, 1, &s);
      pe->fire.b2 = rand_array(b, 3, (size_t)hq, -1, 1, &s);
      if (!pe->fire.w1 || !pe->fire.b1 || !pe->fire.w2 || !pe->fire.b2) goto oom;
      break;
    case POSATTN_PE_T5:
      pe->t5.table = rand_array(b, 0, (size_t)pe->t5.num_buckets * (size_t)hq, -1, 1, &s);
      if (!pe->t5.table) goto oom;
      break;
    case POSATTN_PE_KERPLE_LOG:
    case POSATTN_PE_KERPLE_POWER:
      pe->kerple.a = rand_array(b, 0, (size_t)hq, 0.1f, 2, &s);
      pe->kerple.p = rand_array(b, 1, (size_t)hq, 0.1f, 2, &s);
      if (!pe->kerple.a || !pe->kerple.p) goto oom;
      break;
    default: break; /* none, rope, alibi, xpos: defaults of posattn_pe_init */
  }

  const size_t nq = (size_t)tq * (size_t)hq * (size_t)c->hd;
  const size_t nkv = (size_t)tk * (size_t)d->kv_heads * (size_t)c->hd;
  b->q = random_tensor(nq, c->dtype, &s);
  b->k = random_tensor(nkv, c->dtype, &s);
  b->v = random_tensor(nkv, c->dtype, &s);
  if (!b->q || !b->k || !b->v) goto oom;
  b->p.q = b->q;
  b->p.k = b->k;
  b->p.v = b->v;

  const double es = (double)posattn_dtype_size((posattn_dtype)c->dtype);
  b->flops = pb_flops(b->pairs, hq, c->hd);
  /* q, k, v read once, out written once (same dtype); plus the index arrays the call reads. */
  b->bytes = es * (2.0 * (double)nq + 2.0 * (double)nkv);
  if (b->doc) b->bytes += 4.0 * (double)tq;
  if (b->cu_q) b->bytes += 8.0 * (double)(c->batch + 1);
  return 0;
oom:
  snprintf(msg, msg_size, "host allocation failed");
  return -1;
}

/* ---- CPU timing (REF, EMU) ------------------------------------------------------------------- */

static int time_cpu(posattn_backend be, const built *b, const pb_time_opts *o, pb_stats *st,
                    char *status, char *msg, size_t msg_size) {
  posattn_context *ctx = NULL;
  const pb_problem *p = &b->p;
  posattn_status rc = posattn_context_create(be, 0, &ctx);
  if (rc != POSATTN_STATUS_SUCCESS) {
    snprintf(status, 20, "error");
    snprintf(msg, msg_size, "context: %s", posattn_status_string(rc));
    return -1;
  }
  int result = -1;
  void *out = NULL, *ws = NULL;
  double *t = NULL;
  rc = posattn_supported(ctx, &p->desc, p->dtype, p->dtype);
  if (rc != POSATTN_STATUS_SUCCESS) {
    snprintf(status, 20, rc == POSATTN_STATUS_NOT_SUPPORTED ? "not-supported" : "error");
    snprintf(msg, msg_size, "%s", posattn_context_last_message(ctx));
    goto done;
  }
  size_t wsb = 0;
  posattn_workspace_size(ctx, &p->desc, p->dtype, p->dtype, &wsb);
  const int d = p->desc.head_dim;
  const size_t es = posattn_dtype_size(p->dtype);
  out = malloc((size_t)p->total_q * (size_t)p->desc.q_heads * (size_t)d * es + 1);
  ws = wsb ? aligned_alloc(256, (wsb + 255) / 256 * 256) : NULL;
  t = malloc((size_t)o->max_samples * sizeof *t);
  if (!out || (wsb && !ws) || !t) {
    snprintf(status, 20, "error");
    snprintf(msg, msg_size, "host allocation failed");
    goto done;
  }
  posattn_tensor tq, tk, tv, to;
  const int32_t lq = p->desc.cu_seqlens_q ? 0 : p->desc.q_len;
  const int32_t lk = p->desc.cu_seqlens_q ? 0 : p->desc.kv_len;
  posattn_tensor_init_contiguous(&tq, (void *)p->q, p->dtype, lq, p->desc.q_heads, d);
  posattn_tensor_init_contiguous(&tk, (void *)p->k, p->dtype, lk, p->desc.kv_heads, d);
  posattn_tensor_init_contiguous(&tv, (void *)p->v, p->dtype, lk, p->desc.kv_heads, d);
  posattn_tensor_init_contiguous(&to, out, p->dtype, lq, p->desc.q_heads, d);
  /* Warm-up: one call (page faults, PE tables), then until warmup_seconds. */
  const double w0 = now_s();
  do {
    rc = posattn_forward(ctx, &p->desc, &tq, &tk, &tv, &to, NULL, ws, wsb);
    if (rc != POSATTN_STATUS_SUCCESS) {
      snprintf(status, 20, "error");
      snprintf(msg, msg_size, "%s: %s", posattn_status_string(rc),
               posattn_context_last_message(ctx));
      goto done;
    }
  } while (now_s() - w0 < o->warmup_seconds);
  int n = 0, conv = 0;
  const double t0 = now_s();
  for (;;) {
    const double a = now_s();
    posattn_forward(ctx, &p->desc, &tq, &tk, &tv, &to, NULL, ws, wsb);
    t[n++] = (now_s() - a) * 1e3;
    if (pb_should_stop(t, n, now_s() - t0, o, &conv)) break;
  }
  pb_stats_compute(t, n, st);
  st->converged = conv;
  snprintf(status, 20, "ok");
  result = 0;
done:
  free(t);
  free(out);
  free(ws);
  posattn_context_destroy(ctx);
  return result;
}

/* ---- report ----------------------------------------------------------------------------------- */

static row *add_row(report *r, const config *c, const char *contender) {
  if (r->n == r->cap) {
    const int cap = r->cap ? 2 * r->cap : 64;
    row *nr = realloc(r->rows, (size_t)cap * sizeof *nr);
    if (!nr) return NULL;
    r->rows = nr;
    r->cap = cap;
  }
  row *w = &r->rows[r->n++];
  memset(w, 0, sizeof *w);
  w->c = *c;
  snprintf(w->contender, sizeof w->contender, "%s", contender);
  return w;
}

/* A row's status for a PB_RUN_* result. */
static const char *run_status(int rc) {
  return rc == PB_RUN_OK ? "ok" : rc == PB_RUN_SKIP ? "not-supported" : "error";
}

#ifdef PB_HAVE_CUDA
/* A GPU baseline's row after its run: the status, the counts, and, when both it and posattn ran
 * (ours not NULL), the largest |difference| between their n outputs (a NaN sticks). */
static void baseline_done(row *bw, int rc, const void *ours, const void *theirs, int dtype,
                          size_t n, int *measured, int *failed) {
  snprintf(bw->status, sizeof bw->status, "%s", run_status(rc));
  if (rc == PB_RUN_OK && ours && theirs) {
    double m = 0;
    for (size_t i = 0; i < n; ++i) {
      const double e = fabs(load(ours, dtype, i) - load(theirs, dtype, i));
      if (!(e <= m)) m = e;
    }
    bw->has_check = 1;
    bw->check = m;
  }
  *failed += rc == PB_RUN_ERROR;
  *measured += rc == PB_RUN_OK;
}
#endif

static const char *dtype_name(int d) { return posattn_dtype_string((posattn_dtype)d); }

static void config_label(const config *c, char *buf, size_t n) {
  snprintf(buf, n, "%s pe=%s mask=%s %s d=%d q=%d kv=%d b=%d h=%d/%d", OP_NAMES[c->op],
           PE_NAMES[c->pe], MASK_NAMES[c->mask], dtype_name(c->dtype), c->hd, c->q_len,
           c->kv_len, c->batch, c->heads, c->heads / c->gqa);
}

/* Reads posattn-sass's TSV (op pe dtype hd device tflops per line). 0 or -1 with a message. */
static int load_predictions(report *r, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "posattn-bench: --predicted: cannot open '%s'\n", path);
    return -1;
  }
  prediction p;
  int n;
  while ((n = fscanf(f, "%15s %15s %15s %d %31s %lf", p.op, p.pe, p.dtype, &p.hd, p.device,
                     &p.tflops)) == 6 && r->npred < (int)(sizeof r->pred / sizeof r->pred[0]))
    r->pred[r->npred++] = p;
  fclose(f);
  if (n != EOF && n != 6) {
    fprintf(stderr, "posattn-bench: --predicted: '%s' line %d is not 'op pe dtype hd device "
            "tflops' (posattn-sass --tsv writes it)\n", path, r->npred + 1);
    return -1;
  }
  return 0;
}

/* The static prediction for a posattn row on this GPU (device "H100-SXM" matches a name
 * holding "H100"), or NULL. */
static const prediction *prediction_for(const report *r, const row *w) {
  if (!r->gpu || strcmp(w->contender, "posattn") != 0) return NULL;
  for (int i = 0; i < r->npred; ++i) {
    const prediction *p = &r->pred[i];
    char dev[32];
    snprintf(dev, sizeof dev, "%s", p->device);
    dev[strcspn(dev, "-")] = 0;
    if (!strcmp(p->op, OP_NAMES[w->c.op]) && !strcmp(p->pe, PE_NAMES[w->c.pe]) &&
        !strcmp(p->dtype, dtype_name(w->c.dtype)) && p->hd == w->c.hd && strstr(r->info.name, dev))
      return p;
  }
  return NULL;
}

static double tflops(const row *w) { return w->st.median > 0 ? w->flops / (w->st.median * 1e9) : 0; }
static double gbps(const row *w) { return w->st.median > 0 ? w->bytes / (w->st.median * 1e6) : 0; }

/* GPU runs print TFLOP/s, CPU runs GFLOP/s (the JSON and CSV always hold TFLOP/s). */
static void print_table(const report *r) {
  const double unit = r->gpu ? 1 : 1e3;
  printf("\n%-14s %-8s %-7s %-5s %4s %6s %6s %4s %6s %10s %7s %4s %9s %8s %6s %6s  %s\n",
         "contender", "pe", "mask", "dtype", "d", "q", "kv", "B", "Hq/Hkv", "median_ms",
         "spread", "n", r->gpu ? "TFLOP/s" : "GFLOP/s", "GB/s", "%F", "%BW", "note");
  for (int i = 0; i < r->n; ++i) {
    const row *w = &r->rows[i];
    const config *c = &w->c;
    char heads[16];
    snprintf(heads, sizeof heads, "%d/%d", c->heads, c->heads / c->gqa);
    printf("%-14s %-8s %-7s %-5s %4d %6d %6d %4d %6s ", w->contender, PE_NAMES[c->pe],
           MASK_NAMES[c->mask], dtype_name(c->dtype), c->hd, c->q_len, c->kv_len, c->batch,
           heads);
    if (strcmp(w->status, "ok") != 0) {
      printf("%s: %s\n", w->status, w->msg);
      continue;
    }
    printf("%10.4g %6.2f%% %4d %9.4g %8.4g ", w->st.median, 100 * w->st.spread, w->st.n,
           unit * tflops(w), gbps(w));
    if (r->has_ceilings)
      printf("%5.1f%% %5.1f%% ", 100 * tflops(w) / r->gemm_tflops, 100 * gbps(w) / r->copy_gbps);
    else
      printf("%6s %6s ", "-", "-");
    if (!w->st.converged) printf(" spread above target (time bound)");
    if (w->has_check) printf(" max|diff vs posattn-cuda|=%.3g", w->check);
    if (w->has_combine) printf(" combine<=%.1f%%", 100 * w->combine_share);
    const prediction *pr = prediction_for(r, w);
    if (pr) printf(" predicted (static) %.0f TFLOP/s [%s]", pr->tflops, pr->device);
    printf("\n");
  }
}

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; ++s) {
    const unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
    else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
    else fputc(ch, f);
  }
  fputc('"', f);
}

static void json_num(FILE *f, double x) {
  if (isfinite(x)) fprintf(f, "%.9g", x);
  else fprintf(f, "null");
}

static int write_json(const report *r, const options *o, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fprintf(f, "{\n  \"tool\": \"posattn-bench\",\n  \"posattn_version\": ");
  json_str(f, posattn_version_string());
  fprintf(f, ",\n  \"commit\": ");
  json_str(f, r->commit);
  fprintf(f, ",\n  \"date\": ");
  json_str(f, r->date);
  fprintf(f, ",\n  \"host\": {\"cpu\": ");
  json_str(f, r->cpu);
  fprintf(f, ", \"os\": ");
  json_str(f, r->os);
  if (r->gpu) {
    fprintf(f, ", \"gpu\": ");
    json_str(f, r->info.name);
    fprintf(f, ", \"compute_capability\": \"%d.%d\", \"driver\": %d, \"cuda_runtime\": %d, "
               "\"cublas\": %d, \"l2_bytes\": %lld",
            r->info.cc_major, r->info.cc_minor, r->info.driver_version, r->info.runtime_version,
            r->info.cublas_version, (long long)r->info.l2_bytes);
    if (r->cudnn_version) fprintf(f, ", \"cudnn\": %ld", r->cudnn_version);
  } else {
    fprintf(f, ", \"gpu\": null, \"driver\": null");
  }
  fprintf(f, "},\n  \"method\": {\"flops\": \"4*head_dim per visible (i,j) pair per query head\", "
             "\"bytes\": \"q,k,v read once + out written once (+ doc ids, cu_seqlens); decode: KV "
             "cache read once + q + out + block table\", "
             "\"timer\": ");
  json_str(f, r->gpu ? "cuda events around one launch" : "wall clock (CLOCK_MONOTONIC)");
  const pb_time_opts *t = r->gpu ? &o->gpu_t : &o->cpu_t;
  fprintf(f, ", \"l2_flush\": %s, \"statistic\": \"median\", "
             "\"spread\": \"(p80-p20)/median\", \"target_spread\": ",
          r->gpu ? "\"memset of 2x L2 before every repetition\"" : "false");
  json_num(f, t->target_spread);
  fprintf(f, ", \"min_samples\": %d, \"max_seconds\": ", t->min_samples);
  json_num(f, t->max_seconds);
  fprintf(f, "},\n  \"ceilings\": ");
  if (r->has_ceilings) {
    fprintf(f, "{\"copy_GBps\": ");
    json_num(f, r->copy_gbps);
    fprintf(f, ", \"gemm_bf16_TFLOPs\": ");
    json_num(f, r->gemm_tflops);
    fprintf(f, "}");
  } else {
    fprintf(f, "null");
  }
  fprintf(f, ",\n  \"results\": [\n");
  for (int i = 0; i < r->n; ++i) {
    const row *w = &r->rows[i];
    const config *c = &w->c;
    fprintf(f, "    {\"contender\": ");
    json_str(f, w->contender);
    fprintf(f, ", \"op\": \"%s\", \"pe\": \"%s\", \"mask\": \"%s\", \"dtype\": \"%s\", "
               "\"head_dim\": %d, \"q_len\": %d, \"kv_len\": %d, \"batch\": %d, \"q_heads\": %d, "
               "\"kv_heads\": %d, \"window\": %d, \"docs\": %d, \"anchors\": %d, \"status\": ",
            OP_NAMES[c->op], PE_NAMES[c->pe], MASK_NAMES[c->mask], dtype_name(c->dtype), c->hd,
            c->q_len, c->kv_len, c->batch, c->heads, c->heads / c->gqa,
            c->mask == MASK_WINDOW ? c->window : -1, c->mask == MASK_DOCS ? c->docs : 0,
            c->mask == MASK_DOCS ? c->anchors : 0);
    json_str(f, w->status);
    fprintf(f, ", \"message\": ");
    json_str(f, w->msg);
    fprintf(f, ", \"flops\": ");
    json_num(f, w->flops);
    fprintf(f, ", \"bytes\": ");
    json_num(f, w->bytes);
    if (!strcmp(w->status, "ok")) {
      fprintf(f, ", \"samples\": %d, \"converged\": %s, \"median_ms\": ", w->st.n,
              w->st.converged ? "true" : "false");
      json_num(f, w->st.median);
      fprintf(f, ", \"min_ms\": ");
      json_num(f, w->st.min);
      fprintf(f, ", \"p20_ms\": ");
      json_num(f, w->st.p20);
      fprintf(f, ", \"p80_ms\": ");
      json_num(f, w->st.p80);
      fprintf(f, ", \"spread\": ");
      json_num(f, w->st.spread);
      fprintf(f, ", \"tflops\": ");
      json_num(f, tflops(w));
      fprintf(f, ", \"gbps\": ");
      json_num(f, gbps(w));
      if (r->has_ceilings) {
        fprintf(f, ", \"frac_gemm_ceiling\": ");
        json_num(f, tflops(w) / r->gemm_tflops);
        fprintf(f, ", \"frac_copy_ceiling\": ");
        json_num(f, gbps(w) / r->copy_gbps);
      }
      const prediction *pr = prediction_for(r, w);
      if (pr) {
        fprintf(f, ", \"predicted_static_tflops\": ");
        json_num(f, pr->tflops);
      }
      if (w->has_check) {
        fprintf(f, ", \"max_abs_diff_vs_posattn_cuda\": ");
        json_num(f, w->check);
      }
      if (w->has_combine) {
        fprintf(f, ", \"combine_share_upper\": ");
        json_num(f, w->combine_share);
      }
    }
    fprintf(f, "}%s\n", i + 1 < r->n ? "," : "");
  }
  fprintf(f, "  ]\n}\n");
  return fclose(f) == 0 ? 0 : -1;
}

static int write_csv(const report *r, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fprintf(f, "# posattn-bench %s commit %s date %s cpu \"%s\" gpu \"%s\" driver %d\n",
          posattn_version_string(), r->commit, r->date, r->cpu, r->gpu ? r->info.name : "none",
          r->gpu ? r->info.driver_version : 0);
  fprintf(f, "contender,op,pe,mask,dtype,head_dim,q_len,kv_len,batch,q_heads,kv_heads,status,"
             "flops,bytes,samples,converged,median_ms,min_ms,p20_ms,p80_ms,spread,tflops,gbps,"
             "frac_gemm_ceiling,frac_copy_ceiling\n");
  for (int i = 0; i < r->n; ++i) {
    const row *w = &r->rows[i];
    const config *c = &w->c;
    const int ok = !strcmp(w->status, "ok");
    fprintf(f, "%s,%s,%s,%s,%s,%d,%d,%d,%d,%d,%d,%s,%.9g,%.9g,", w->contender, OP_NAMES[c->op],
            PE_NAMES[c->pe], MASK_NAMES[c->mask], dtype_name(c->dtype), c->hd, c->q_len,
            c->kv_len, c->batch, c->heads, c->heads / c->gqa, w->status, w->flops, w->bytes);
    if (ok) {
      fprintf(f, "%d,%d,%.6g,%.6g,%.6g,%.6g,%.4g,%.6g,%.6g,", w->st.n, w->st.converged,
              w->st.median, w->st.min, w->st.p20, w->st.p80, w->st.spread, tflops(w), gbps(w));
      if (r->has_ceilings)
        fprintf(f, "%.4g,%.4g\n", tflops(w) / r->gemm_tflops, gbps(w) / r->copy_gbps);
      else
        fprintf(f, ",\n");
    } else {
      fprintf(f, ",,,,,,,,,,\n");
    }
  }
  return fclose(f) == 0 ? 0 : -1;
}

/* PNG: throughput against query length, one line per contender and configuration family. */
static int write_plot(const report *r, const char *png) {
  if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
    fprintf(stderr, "posattn-bench: gnuplot not found: no plot (install gnuplot-nox); the JSON and "
                    "CSV hold every number\n");
    return 1;
  }
  char gp[1024];
  snprintf(gp, sizeof gp, "%s.gp", png);
  FILE *f = fopen(gp, "w");
  if (!f) return -1;
  const int gpu = r->gpu;
  fprintf(f, "set terminal pngcairo size 1100,700 noenhanced\nset output '%s'\n", png);
  fprintf(f, "set title 'posattn-bench %s, %s, commit %s, %s'\n", gpu ? r->info.name : r->cpu,
          gpu ? "CUDA events, L2 flushed" : "CPU wall clock", r->commit, r->date);
  fprintf(f, "set xlabel 'query length'\nset ylabel '%s'\nset logscale x 2\nset logscale y\n"
             "set key outside right\nset grid\n",
          gpu ? "TFLOP/s (4*d per visible pair)" : "GFLOP/s (4*d per visible pair)");
  /* Series key: everything but the lengths and batch. */
  int nseries = 0;
  char keys[64][96];
  for (int i = 0; i < r->n; ++i) {
    const row *w = &r->rows[i];
    if (strcmp(w->status, "ok") != 0) continue;
    char k[96];
    snprintf(k, sizeof k, "%s %s %s %s d%d h%d/%d", w->contender, PE_NAMES[w->c.pe],
             MASK_NAMES[w->c.mask], dtype_name(w->c.dtype), w->c.hd, w->c.heads,
             w->c.heads / w->c.gqa);
    int found = 0;
    for (int s = 0; s < nseries && !found; ++s) found = !strcmp(keys[s], k);
    if (!found && nseries < 64) snprintf(keys[nseries++], sizeof keys[0], "%s", k);
  }
  for (int s = 0; s < nseries; ++s) {
    fprintf(f, "$S%d << EOD\n", s);
    for (int i = 0; i < r->n; ++i) {
      const row *w = &r->rows[i];
      if (strcmp(w->status, "ok") != 0) continue;
      char k[96];
      snprintf(k, sizeof k, "%s %s %s %s d%d h%d/%d", w->contender, PE_NAMES[w->c.pe],
               MASK_NAMES[w->c.mask], dtype_name(w->c.dtype), w->c.hd, w->c.heads,
               w->c.heads / w->c.gqa);
      if (!strcmp(k, keys[s])) fprintf(f, "%d %.6g\n", w->c.q_len, tflops(w) * (gpu ? 1 : 1e3));
    }
    fprintf(f, "EOD\n");
  }
  fprintf(f, "plot ");
  for (int s = 0; s < nseries; ++s)
    fprintf(f, "%s$S%d using 1:2 with linespoints title '%s'", s ? ", " : "", s, keys[s]);
  fprintf(f, "\n");
  fclose(f);
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "gnuplot '%s'", gp);
  if (nseries == 0) {
    fprintf(stderr, "posattn-bench: nothing measured: no plot\n");
    return 1;
  }
  return system(cmd) == 0 ? 0 : -1;
}

static void host_facts(report *r) {
  snprintf(r->cpu, sizeof r->cpu, "unknown CPU");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f) {
    char line[512];
    while (fgets(line, sizeof line, f)) {
      if (strncmp(line, "model name", 10) == 0) {
        const char *c = strchr(line, ':');
        if (c) {
          c += 1 + (c[1] == ' ');
          snprintf(r->cpu, sizeof r->cpu, "%s", c);
          r->cpu[strcspn(r->cpu, "\n")] = 0;
        }
        break;
      }
    }
    fclose(f);
  }
  struct utsname u;
  if (uname(&u) == 0) snprintf(r->os, sizeof r->os, "%s %s %s", u.sysname, u.release, u.machine);
  const time_t now = time(NULL);
  struct tm tmv;
  gmtime_r(&now, &tmv);
  strftime(r->date, sizeof r->date, "%Y-%m-%dT%H:%M:%SZ", &tmv);
  /* The commit of the source tree at run time when it is a git checkout, else at build time. */
  snprintf(r->commit, sizeof r->commit, "%s", PB_BUILD_COMMIT);
  FILE *g = popen("git -C '" PB_SOURCE_DIR "' describe --always --dirty 2>/dev/null", "r");
  if (g) {
    char buf[64];
    if (fgets(buf, sizeof buf, g) && buf[0] && buf[0] != '\n') {
      buf[strcspn(buf, "\n")] = 0;
      snprintf(r->commit, sizeof r->commit, "%s", buf);
    }
    pclose(g);
  }
}

/* ---- main ------------------------------------------------------------------------------------ */

static int parse_int(const char *opt, const char *s, int lo, int *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*end || v < lo || v > (1L << 30)) {
    fprintf(stderr, "posattn-bench: %s: '%s' must be an integer >= %d\n", opt, s, lo);
    return -1;
  }
  *out = (int)v;
  return 0;
}

static int parse_double(const char *opt, const char *s, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (*end || !(v > 0)) {
    fprintf(stderr, "posattn-bench: %s: '%s' must be a positive number\n", opt, s);
    return -1;
  }
  *out = v;
  return 0;
}

static void set_defaults(options *o, int gpu) {
  static const int pe_full[] = {POSATTN_PE_NONE, POSATTN_PE_ROPE, POSATTN_PE_ALIBI};
  static const int pe_quick[] = {POSATTN_PE_NONE, POSATTN_PE_ALIBI};
  static const int mask_gpu[] = {MASK_NONE, MASK_CAUSAL, MASK_DOCS};
  static const int mask_cpu[] = {MASK_CAUSAL, MASK_DOCS};
  static const int one[] = {1}, prefill[] = {OP_PREFILL}, bf16[] = {POSATTN_DTYPE_BF16};
  static const int seq_gpu[] = {1024, 4096, 8192}, seq_cpu[] = {128, 256}, seq_quick[] = {64};
  static const int hd128[] = {128}, hd64[] = {64}, auto_b[] = {0};
  static const int h16[] = {16}, h4[] = {4}, h2[] = {2};
  if (!o->op.n) set_axis(&o->op, 1, prefill);
  if (o->op.n == 1 && o->op.v[0] == OP_DECODE) {
    /* the serving grid of the decode issue: GQA 8:1, hd128, page 16, PE none/rope */
    static const int d_pe[] = {POSATTN_PE_NONE, POSATTN_PE_ROPE}, d_h32[] = {32}, d_h8[] = {8};
    static const int d_g8[] = {8}, d_causal[] = {MASK_CAUSAL};
    static const int d_seq_gpu[] = {1024, 8192, 32768, 131072}, d_seq_cpu[] = {1024, 4096};
    static const int d_seq_quick[] = {256}, d_b_gpu[] = {1, 8, 64}, d_b_cpu[] = {1, 4};
    if (!o->pe.n) set_axis(&o->pe, 2, d_pe);
    if (!o->mask.n) set_axis(&o->mask, 1, d_causal);
    if (!o->hd.n) set_axis(&o->hd, 1, hd128);
    if (!o->heads.n) set_axis(&o->heads, 1, gpu ? d_h32 : d_h8);
    if (!o->gqa.n) set_axis(&o->gqa, 1, d_g8);
    if (!o->seq.n)
      o->quick ? set_axis(&o->seq, 1, d_seq_quick)
               : (gpu ? set_axis(&o->seq, 4, d_seq_gpu) : set_axis(&o->seq, 2, d_seq_cpu));
    if (!o->batch.n)
      o->quick ? set_axis(&o->batch, 1, one)
               : (gpu ? set_axis(&o->batch, 3, d_b_gpu) : set_axis(&o->batch, 2, d_b_cpu));
  }
  if (!o->pe.n) o->quick ? set_axis(&o->pe, 2, pe_quick) : set_axis(&o->pe, 3, pe_full);
  if (!o->mask.n)
    gpu && !o->quick ? set_axis(&o->mask, 3, mask_gpu)
                     : set_axis(&o->mask, o->quick ? 1 : 2, mask_cpu);
  if (!o->dtype.n) set_axis(&o->dtype, 1, bf16);
  if (!o->hd.n) set_axis(&o->hd, 1, gpu ? hd128 : hd64);
  if (!o->seq.n)
    o->quick ? set_axis(&o->seq, 1, seq_quick)
             : (gpu ? set_axis(&o->seq, 3, seq_gpu) : set_axis(&o->seq, 2, seq_cpu));
  if (!o->batch.n) set_axis(&o->batch, 1, gpu ? auto_b : one);
  if (!o->heads.n) set_axis(&o->heads, 1, gpu ? h16 : (o->quick ? h2 : h4));
  if (!o->gqa.n) set_axis(&o->gqa, 1, one);
  if (!o->tokens) o->tokens = gpu ? 16384 : 256;
}

/* The decode op: one row per backend, the full call timed, then the same call on empty caches
 * for the combine share (bench_decode.h). Returns -1 only when the report cannot grow. */
static int run_decode(report *r, const options *o, const config *c, const char *label,
                      double t_start, int *measured, int *failed) {
  pb_decode_problem p;
  char msg[240] = "";
  const int sms = r->gpu && r->info.sms > 0 ? r->info.sms : PA_DECODE_NOMINAL_SMS;
  if (pb_decode_build(&p, c->batch, c->kv_len, c->heads, c->heads / c->gqa, c->hd, c->dtype, c->pe,
                      sms, o->seed, msg, sizeof msg) != 0) {
    row *w = add_row(r, c, "posattn");
    if (!w) return -1;
    snprintf(w->status, sizeof w->status, "skipped");
    snprintf(w->msg, sizeof w->msg, "%s", msg);
    printf("%s: skipped: %s\n", label, msg);
    return 0;
  }
  fprintf(stderr, "[%6.1f s] %s\n", now_s() - t_start, label);
  for (int bi = 0; bi < o->nbackends; ++bi) {
    const posattn_backend be = (posattn_backend)o->backends[bi];
    char name[24];
    snprintf(name, sizeof name, "posattn-%s", posattn_backend_string(be));
    row *w = add_row(r, c, name);
    if (!w) {
      pb_decode_free(&p);
      return -1;
    }
    w->flops = p.flops;
    w->bytes = p.bytes;
    pb_stats empty;
    int rc, rc_empty = 2;
    const int want_share = be != POSATTN_BACKEND_REF; /* REF has no split/combine step */
    if (be == POSATTN_BACKEND_CUDA) {
#ifdef PB_HAVE_CUDA
      rc = pb_gpu_time_decode(&p, 0, &o->gpu_t, &w->st, w->msg, sizeof w->msg);
      if (rc == 0 && want_share) rc_empty = pb_gpu_time_decode(&p, 1, &o->gpu_t, &empty, msg, sizeof msg);
#else
      rc = 2;
      snprintf(w->msg, sizeof w->msg, "no CUDA in this build");
#endif
    } else {
      rc = pb_cpu_time_decode(be, &p, 0, &o->cpu_t, &w->st, w->msg, sizeof w->msg);
      if (rc == 0 && want_share) rc_empty = pb_cpu_time_decode(be, &p, 1, &o->cpu_t, &empty, msg, sizeof msg);
    }
    snprintf(w->status, sizeof w->status, "%s", run_status(rc));
    if (rc == 0 && rc_empty == 0 && w->st.median > 0) {
      w->has_combine = 1;
      w->combine_share = empty.median / w->st.median;
    }
    *measured += rc == 0;
    *failed += rc == 2;
  }
  pb_decode_free(&p);
  return 0;
}

int main(int argc, char **argv) {
  options o;
  memset(&o, 0, sizeof o);
  o.seed = 1;
  o.docs = 4;
  o.anchors = 1;
  o.window = -1;
  o.cublas = 1;
  o.cudnn = 1;
  o.gpu_t = (pb_time_opts){10, 2000, 0.01, 1.0, 0.025};
  o.cpu_t = (pb_time_opts){3, 200, 0.01, 2.0, 0.0};
  double max_time = 0, spread = 0;
  int min_samples = 0;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int rc = 0, used = 1;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--quick")) {
      o.quick = 1;
      used = 0;
    } else if (!strcmp(a, "--list")) {
      o.list = 1;
      used = 0;
    } else if (!v) {
      fprintf(stderr, "posattn-bench: unknown option or missing value: %s\n", a);
      usage(stderr);
      return 2;
    } else if (!strcmp(a, "--backend")) {
      static const char *const bn[] = {"auto", "ref", "emu", "cuda"};
      axis b;
      rc = parse_axis(a, v, &b, bn, 4, 0, 0);
      o.nbackends = 0;
      for (int j = 0; !rc && j < b.n; ++j)
        if (b.v[j] != 0 && o.nbackends < 4) o.backends[o.nbackends++] = b.v[j];
      o.backend_given = o.nbackends > 0;
    } else if (!strcmp(a, "--op")) rc = parse_axis(a, v, &o.op, OP_NAMES, 3, 0, 0);
    else if (!strcmp(a, "--pe")) rc = parse_axis(a, v, &o.pe, PE_NAMES, 8, 0, 0);
    else if (!strcmp(a, "--mask")) rc = parse_axis(a, v, &o.mask, MASK_NAMES, 5, 0, 0);
    else if (!strcmp(a, "--dtype")) rc = parse_axis(a, v, &o.dtype, NULL, 0, 1, 0);
    else if (!strcmp(a, "--hd")) rc = parse_axis(a, v, &o.hd, NULL, 0, 0, 0);
    else if (!strcmp(a, "--seq")) rc = parse_axis(a, v, &o.seq, NULL, 0, 0, 1);
    else if (!strcmp(a, "--batch")) rc = parse_axis(a, v, &o.batch, NULL, 0, 0, 0);
    else if (!strcmp(a, "--heads")) rc = parse_axis(a, v, &o.heads, NULL, 0, 0, 0);
    else if (!strcmp(a, "--gqa")) rc = parse_axis(a, v, &o.gqa, NULL, 0, 0, 0);
    else if (!strcmp(a, "--tokens")) rc = parse_int(a, v, 1, &o.tokens);
    else if (!strcmp(a, "--window")) rc = parse_int(a, v, 0, &o.window);
    else if (!strcmp(a, "--docs")) rc = parse_int(a, v, 1, &o.docs);
    else if (!strcmp(a, "--anchors")) rc = parse_int(a, v, 0, &o.anchors);
    else if (!strcmp(a, "--min-samples")) rc = parse_int(a, v, 1, &min_samples);
    else if (!strcmp(a, "--max-time")) rc = parse_double(a, v, &max_time);
    else if (!strcmp(a, "--spread")) rc = parse_double(a, v, &spread);
    else if (!strcmp(a, "--seed")) {
      int s;
      rc = parse_int(a, v, 0, &s);
      o.seed = (uint64_t)s;
    } else if (!strcmp(a, "--json")) o.json = v;
    else if (!strcmp(a, "--predicted")) o.predicted = v;
    else if (!strcmp(a, "--csv")) o.csv = v;
    else if (!strcmp(a, "--plot")) o.plot = v;
    else if (!strcmp(a, "--baselines")) {
      static const char *const bl[] = {"none", "cublas", "cudnn"};
      axis b;
      rc = parse_axis(a, v, &b, bl, 3, 0, 0);
      o.cublas = o.cudnn = 0;
      for (int j = 0; !rc && j < b.n; ++j) {
        o.cublas |= b.v[j] == 1;
        o.cudnn |= b.v[j] == 2;
      }
    } else {
      fprintf(stderr, "posattn-bench: unknown option %s\n", a);
      usage(stderr);
      return 2;
    }
    if (rc) return 2;
    i += used;
  }
  if (max_time > 0) o.gpu_t.max_seconds = o.cpu_t.max_seconds = max_time;
  if (spread > 0) o.gpu_t.target_spread = o.cpu_t.target_spread = spread;
  if (min_samples > 0) {
    o.gpu_t.min_samples = o.cpu_t.min_samples = min_samples;
    if (o.cpu_t.max_samples < min_samples) o.cpu_t.max_samples = min_samples;
    if (o.gpu_t.max_samples < min_samples) o.gpu_t.max_samples = min_samples;
  }

  report r;
  memset(&r, 0, sizeof r);
  host_facts(&r);
  if (o.predicted && load_predictions(&r, o.predicted) != 0) return 2;
  char why[512] = "";
#ifdef PB_HAVE_CUDA
  r.gpu = pb_gpu_probe(&r.info, why, sizeof why);
#else
  snprintf(why, sizeof why, "this build has no CUDA (CMake found no nvcc)");
#endif
  int want_cuda = 0;
  if (!o.backend_given) {
    if (r.gpu) o.backends[o.nbackends++] = POSATTN_BACKEND_CUDA;
    else {
      o.backends[o.nbackends++] = POSATTN_BACKEND_REF;
      o.backends[o.nbackends++] = POSATTN_BACKEND_EMU;
    }
  }
  for (int i = 0; i < o.nbackends; ++i) want_cuda |= o.backends[i] == POSATTN_BACKEND_CUDA;
  if (!r.gpu) {
    printf("posattn-bench: NO GPU: %s.\n", why);
    if (want_cuda) {
      fprintf(stderr, "posattn-bench: --backend cuda needs a GPU\n");
      return 1;
    }
    printf("posattn-bench: the GPU contenders (posattn-cuda, cublas-unfused, cudnn-sdpa) need a "
           "GPU; benchmarking the CPU backends (REF, EMU) instead: wall clock, no L2 flush, no "
           "ceilings, no baselines. These numbers say nothing about GPU speed.\n");
  } else {
    printf("posattn-bench: GPU %s (sm_%d%d, %.0f GiB, L2 %.0f MiB), driver %d, CUDA runtime %d\n",
           r.info.name, r.info.cc_major, r.info.cc_minor, r.info.mem_gib,
           (double)r.info.l2_bytes / 1048576.0, r.info.driver_version, r.info.runtime_version);
#ifdef PB_HAVE_CUDNN
    r.cudnn_version = (long)pb_cudnn_version();
    printf("posattn-bench: cuDNN %ld (cudnn-sdpa baseline)\n", r.cudnn_version);
#endif
  }
  /* A mixed CPU/GPU run keeps the GPU timing method for the GPU rows and the CPU one for the
   * others; the report's method block describes the GPU one. */
  r.gpu = r.gpu && want_cuda;
  set_defaults(&o, r.gpu);
  printf("posattn-bench: %s, commit %s, %s\n", r.cpu, r.commit, r.date);

#ifdef PB_HAVE_CUDA
  if (r.gpu && !o.list) {
    pb_stats cs, gs;
    double cb = 0, gf = 0;
    char msg[256] = "";
    if (pb_gpu_ceilings(&o.gpu_t, &cs, &cb, &gs, &gf, msg, sizeof msg) == PB_RUN_OK) {
      r.has_ceilings = 1;
      r.copy_gbps = cb / (cs.median * 1e6);
      r.gemm_tflops = gf / (gs.median * 1e9);
      printf("posattn-bench: ceilings measured now: copy %.0f GB/s (D2D cudaMemcpy, read+write), "
             "cuBLAS bf16 GEMM %.1f TFLOP/s\n", r.copy_gbps, r.gemm_tflops);
    } else {
      printf("posattn-bench: ceilings not measured: %s\n", msg);
    }
  }
#endif

  int measured = 0, failed = 0;
  const double t_start = now_s();
  for (int a0 = 0; a0 < o.op.n; ++a0)
  for (int a1 = 0; a1 < o.pe.n; ++a1)
  for (int a2 = 0; a2 < o.mask.n; ++a2)
  for (int a3 = 0; a3 < o.dtype.n; ++a3)
  for (int a4 = 0; a4 < o.hd.n; ++a4)
  for (int a5 = 0; a5 < o.seq.n; ++a5)
  for (int a6 = 0; a6 < o.batch.n; ++a6)
  for (int a7 = 0; a7 < o.heads.n; ++a7)
  for (int a8 = 0; a8 < o.gqa.n; ++a8) {
    config c = {o.op.v[a0], o.pe.v[a1], o.mask.v[a2], o.dtype.v[a3], o.hd.v[a4], o.seq.v[a5],
                o.seq.v2[a5] ? o.seq.v2[a5] : o.seq.v[a5], o.batch.v[a6], o.heads.v[a7],
                o.gqa.v[a8], 0, o.docs, o.anchors};
    if (c.batch == 0) c.batch = o.tokens / c.q_len > 0 ? o.tokens / c.q_len : 1;
    c.window = o.window >= 0 ? o.window : c.kv_len / 4;
    char label[160];
    config_label(&c, label, sizeof label);
    if (c.heads % c.gqa != 0) {
      printf("skip %s: --gqa %d does not divide %d heads\n", label, c.gqa, c.heads);
      continue;
    }
    if (o.list) {
      printf("%s\n", label);
      continue;
    }
    if (c.op == OP_APPEND) {
      row *w = add_row(&r, &c, "posattn");
      if (!w) return 1;
      snprintf(w->status, sizeof w->status, "not-implemented");
      snprintf(w->msg, sizeof w->msg, "not implemented: the append op has no benchmark yet");
      printf("%s: %s\n", label, w->msg);
      continue;
    }
    if (c.dtype == POSATTN_DTYPE_FP8_E4M3 || c.dtype == POSATTN_DTYPE_FP8_E5M2) {
      if (c.op != OP_DECODE) { /* FP8 is a KV-cache dtype only (posattn.h) */
        printf("skip %s: %s is a KV-cache dtype (--op decode only)\n", label, dtype_name(c.dtype));
        continue;
      }
    }
    if (c.op == OP_DECODE) {
      c.q_len = 1; /* one query token per sequence; seq is the context */
      if (run_decode(&r, &o, &c, label, t_start, &measured, &failed) != 0) return 1;
      continue;
    }
    built b;
    char msg[240] = "";
    if (build(&c, o.seed, &b, msg, sizeof msg) != 0) {
      row *w = add_row(&r, &c, "posattn");
      if (!w) return 1;
      snprintf(w->status, sizeof w->status, "skipped");
      snprintf(w->msg, sizeof w->msg, "%s", msg);
      printf("%s: skipped: %s\n", label, msg);
      built_free(&b);
      continue;
    }
    fprintf(stderr, "[%6.1f s] %s\n", now_s() - t_start, label);
    for (int bi = 0; bi < o.nbackends; ++bi) {
      const posattn_backend be = (posattn_backend)o.backends[bi];
      char name[24];
      snprintf(name, sizeof name, "posattn-%s", posattn_backend_string(be));
      row *w = add_row(&r, &c, name);
      if (!w) return 1;
      w->flops = b.flops;
      w->bytes = b.bytes;
      if (be == POSATTN_BACKEND_CUDA) {
#ifdef PB_HAVE_CUDA
        const size_t nout = (size_t)b.p.total_q * (size_t)c.heads * (size_t)c.hd;
        const int dt = c.dtype;
        void *o1 = malloc(nout * posattn_dtype_size((posattn_dtype)dt) + 1);
        void *o2 = malloc(nout * posattn_dtype_size((posattn_dtype)dt) + 1);
        int rc = pb_gpu_time_posattn(&b.p, &o.gpu_t, &w->st, o1, w->msg, sizeof w->msg);
        snprintf(w->status, sizeof w->status, "%s", run_status(rc));
        const void *ours = rc == PB_RUN_OK ? o1 : NULL; /* compared with each baseline */
        if (o.cublas) {
          row *bw = add_row(&r, &c, "cublas-unfused");
          if (!bw) return 1;
          w = &r.rows[r.n - 2]; /* add_row may have moved the array */
          bw->flops = b.flops;
          bw->bytes = b.bytes;
          rc = pb_gpu_time_cublas(&b.p, &o.gpu_t, &bw->st, o2, bw->msg, sizeof bw->msg);
          baseline_done(bw, rc, ours, o2, dt, nout, &measured, &failed);
        }
        if (o.cudnn) {
          row *dw = add_row(&r, &c, "cudnn-sdpa");
          if (!dw) return 1;
          w = &r.rows[r.n - 2 - o.cublas]; /* add_row may have moved the array */
          dw->flops = b.flops;
          dw->bytes = b.bytes;
#ifdef PB_HAVE_CUDNN
          rc = pb_gpu_time_cudnn(&b.p, &o.gpu_t, &dw->st, o2, dw->msg, sizeof dw->msg);
          baseline_done(dw, rc, ours, o2, dt, nout, &measured, &failed);
#else
          snprintf(dw->status, sizeof dw->status, "not-supported");
          snprintf(dw->msg, sizeof dw->msg, "this build has no cuDNN (CMake found no cudnn.h or "
                                            "libcudnn)");
#endif
        }
        free(o1);
        free(o2);
#else
        snprintf(w->status, sizeof w->status, "error");
        snprintf(w->msg, sizeof w->msg, "no CUDA in this build");
#endif
      } else {
        time_cpu(be, &b, &o.cpu_t, &w->st, w->status, w->msg, sizeof w->msg);
      }
      measured += !strcmp(w->status, "ok");
      failed += !strcmp(w->status, "error");
    }
    built_free(&b);
  }
  if (o.list) return 0;

  print_table(&r);
  printf("\nFLOPs = 4*head_dim per visible (i,j) pair per query head; bytes = q,k,v read once + "
         "out written once. median over repetitions; spread = (p80-p20)/median; %s\n",
         r.gpu ? "CUDA events, L2 flushed before each repetition."
               : "CPU wall clock, no L2 flush.");
  int rc = 0;
  if (o.json && write_json(&r, &o, o.json) != 0) {
    fprintf(stderr, "posattn-bench: cannot write %s\n", o.json);
    rc = 1;
  }
  if (o.csv && write_csv(&r, o.csv) != 0) {
    fprintf(stderr, "posattn-bench: cannot write %s\n", o.csv);
    rc = 1;
  }
  if (o.plot && write_plot(&r, o.plot) < 0) {
    fprintf(stderr, "posattn-bench: gnuplot failed on %s.gp\n", o.plot);
    rc = 1;
  }
  free(r.rows);
  if (failed) {
    fprintf(stderr, "posattn-bench: %d contender(s) failed (status error)\n", failed);
    return 1;
  }
  if (!measured) {
    fprintf(stderr, "posattn-bench: nothing was measured\n");
    return rc ? rc : 3;
  }
  return rc;
}
