/* drift.h -- low-precision attention emulation (lowp.c) and the drift-study experiments
 * (drift.c) behind posattn-drift: the precision-study engine, a static library beside the tool
 * (engine.cmake), not part of libposattn. Not installed, not seen by tests (they use
 * tests/shim/pa_drift_shim.h).
 *
 * The emulation computes attention in fp64 and rounds to a chosen format at each point where a
 * kernel rounds. Every rounding point has its own switch, so a study can turn one source of
 * error on at a time:
 *
 *   q,k,v --input--> [RoPE: angle mode, cos/sin table format, rotation arithmetic] --operand-->
 *   q.k (qk_acc accumulator) -> scale, bias, softcap, max, exp, row sum (softmax) ->
 *   P --p--> P.V (pv_acc accumulator) -> O / l --output--> out
 *
 * With every point at PA_FMT_F64 and PA_ANGLE_F64 the result is fp64 attention (the REF
 * definition); with every point at PA_FMT_F32 it is an fp32 kernel; the DESIGN.md §5 baseline
 * is the fp32 kernel with input, p and output in the low-precision dtype. Softmax is online
 * over key blocks of kv_block keys (FlashAttention-2 order: running max, rescale, P rounded
 * after subtracting the running max); kv_block 0 means one block (the exact row max). lazy > 0:
 * the max subtracted moves only when a block's maximum exceeds it by more than lazy log2 units
 * (kernels/prefill/mma.cuh: 8), so P can reach 2^lazy. */
#ifndef POSATTN_DRIFT_H
#define POSATTN_DRIFT_H

#include <stddef.h>
#include <stdint.h>

#include "posattn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A rounding format: 0 keeps fp64 (no rounding), the others are posattn_dtype values. */
typedef enum pa_fmt {
  PA_FMT_F64 = 0,
  PA_FMT_F32 = POSATTN_DTYPE_F32,
  PA_FMT_F16 = POSATTN_DTYPE_F16,
  PA_FMT_BF16 = POSATTN_DTYPE_BF16
} pa_fmt;

/* How the RoPE angle p*w becomes cos/sin. */
typedef enum pa_angle {
  /* exact: p*w formed exactly (fma) and reduced mod 2*pi in double-double, cos/sin in fp64 */
  PA_ANGLE_F64 = 0,
  /* common practice: float(p) * float(w) rounded to fp32, cos/sin of that fp32 angle */
  PA_ANGLE_FAST = 1,
  /* split: p = hi*B + lo, R(hi*B*w) * R(lo*w) from two tables computed exactly (as F64) and
   * stored in the table format; one complex multiply in the rotation arithmetic */
  PA_ANGLE_EXACT = 2
} pa_angle;

typedef struct pa_lp_config {
  pa_fmt input;      /* q, k, v as the kernel reads them */
  pa_angle angle;    /* RoPE angle computation */
  pa_fmt table;      /* cos/sin values (EXACT: both split tables) */
  pa_fmt rot;        /* arithmetic of the rotation (products, sums, the split's complex multiply) */
  pa_fmt operand;    /* q and k as fed to q.k (after RoPE); bf16/fp16 for tensor cores */
  pa_fmt qk_acc;     /* accumulator of q.k, rounded after every multiply-add */
  pa_fmt softmax;    /* scale, bias add, softcap, max, exp, rescale factor, row sum, O/l */
  pa_fmt p;          /* P before P.V */
  pa_fmt pv_acc;     /* accumulator of P.V and of its rescaling */
  pa_fmt output;     /* O as stored */
  int32_t kv_block;  /* online-softmax block (keys); 0 = one block */
  int32_t split;     /* B of PA_ANGLE_EXACT; default 4096 */
  int32_t lazy;      /* rescale threshold in log2 units; 0 = every block (FlashAttention-2) */
} pa_lp_config;

/* Presets. fp64: no rounding anywhere, exact angles. fp32: every point fp32, FAST angle.
 * baseline(dt): fp32 with input, p and output in dt (DESIGN.md §5). tc(dt): baseline plus
 * operands in dt (a tensor-core kernel that rotates in fp32 then feeds bf16/fp16 to mma) and
 * mma.cuh's lazy rescaling (lazy = 8). */
void pa_lp_config_fp64(pa_lp_config *c);
void pa_lp_config_fp32(pa_lp_config *c);
void pa_lp_config_baseline(pa_lp_config *c, pa_fmt dt);
void pa_lp_config_tc(pa_lp_config *c, pa_fmt dt);

/* Parses "preset[,key=value...]": presets fp64, fp32, baseline-bf16|fp16, tc-bf16|fp16; keys
 * input, angle (f64|fast|exact), table, rot, operand, qk_acc, softmax, p, pv_acc, output
 * (f64|f32|f16|bf16), block, split, lazy (integers). INVALID_ARGUMENT with a message naming the
 * offending token. */
posattn_status pa_lp_config_parse(const char *text, pa_lp_config *c, char *msg, size_t msg_size);
/* Inverse of parse: the full key=value form, for CSV/JSON metadata. */
void pa_lp_config_format(const pa_lp_config *c, char *buf, size_t size);
const char *pa_fmt_name(pa_fmt f);
const char *pa_angle_name(pa_angle a);

/* x rounded to format f (identity for PA_FMT_F64). */
double pa_lp_round(pa_fmt f, double x);

/* RoPE tables for one configuration. Positions up to max_pos (EXACT sizes its hi table). */
typedef struct pa_lp_rope {
  int32_t head_dim, rotary_dim, half;
  int32_t offset;       /* first rotated feature (rope rotary_offset) */
  posattn_rope_layout layout;
  pa_angle angle;
  pa_fmt table, rot;
  int32_t split;
  int64_t max_pos;
  double attention_factor;
  double *w;            /* inv_freq [half], fp64 */
  double *lo_c, *lo_s;  /* EXACT: [split][half] cos/sin(lo*w) * attention factor */
  double *hi_c, *hi_s;  /* EXACT: [max_pos/split + 1][half] cos/sin(hi*split*w) */
} pa_lp_rope;

posattn_status pa_lp_rope_init(pa_lp_rope *r, const pa_lp_config *c,
                               const posattn_rope_params *rope, int32_t head_dim,
                               int32_t seq_len, int64_t max_pos, char *msg, size_t msg_size);
void pa_lp_rope_free(pa_lp_rope *r);
/* The angle p*w of pair i reduced to [-pi, pi], accurate to a few 1e-16 rad for p < 2^31. */
double pa_lp_exact_angle(int64_t p, double w);

/* Prepares one q or k head vector as the kernel feeds it to q.k: input rounding, RoPE at
 * position pos (r NULL = none), operand rounding. x and y have head_dim elements (y may be x).
 * pos must be in [0, r->max_pos]. */
void pa_lp_prepare(const pa_lp_config *c, const pa_lp_rope *r, int32_t head_dim, const double *x,
                   int64_t pos, double *y);
/* Dot product with the accumulator format of c->qk_acc. */
double pa_lp_dot(const pa_lp_config *c, const double *a, const double *b, int32_t n);

/* What turns q.k into a logit for one query head. */
typedef struct pa_lp_logit {
  double scale;
  double softcap;       /* 0 = off */
  const posattn_pe *pe; /* bias via posattn_pe_bias; NULL or a non-bias kind = none */
  int32_t q_heads, head;
} pa_lp_logit;

/* One query row against n keys K[idx[t]], V[idx[t]] (rows of d prepared values; V already
 * input-rounded), key positions pk[idx[t]]. Writes out[d] (rounded by c->output) and *lse (fp64,
 * -inf when n == 0). Optional: logits[n] (as the softmax sees them), weights[n] (the effective
 * normalised weight of each key in out: P as rounded, times the later rescales, over the row
 * sum). ALLOC_FAILED is the only error. */
posattn_status pa_lp_row(const pa_lp_config *c, const pa_lp_logit *lg, const double *q, int64_t pq,
                         const double *K, const double *V, const int64_t *pk, const int64_t *idx,
                         int64_t n, int32_t d, double *out, double *lse, double *logits,
                         double *weights);

/* Whole attention call like posattn_forward, emulated: same descriptor and validation, same
 * tensors (any input dtype, widened exactly). out: fp64 [total_q][q_heads][head_dim] in token
 * order (dense: b*q_len + i), lse: fp64 at pa_lse_index positions (NULL = not wanted),
 * logits: NULL or fp64 [batch][q_heads][q_len][kv_len] (dense only), -inf where masked.
 * Supports NONE, ROPE and the additive-bias kinds; XPOS is NOT_SUPPORTED. */
posattn_status pa_lp_forward(const pa_lp_config *c, const posattn_attention_desc *desc,
                             const posattn_tensor *q, const posattn_tensor *k,
                             const posattn_tensor *v, double *out, double *lse, double *logits,
                             char *msg, size_t msg_size);

/* ---- experiments (drift.c) ----------------------------------------------------------------
 * Each fills a table: one string column "series", numeric columns, one row per point. */
typedef struct pa_drift_table {
  const char *name;      /* "a_rope_shift", ... */
  int ncols;
  const char *const *cols;
  size_t nrows, cap;
  char (*series)[48];
  double *val;           /* [nrows][ncols]; NaN = not measured */
} pa_drift_table;
void pa_drift_table_free(pa_drift_table *t);

/* Spectrum of the random q and k of experiments a and c: N(0,1) components, with the components
 * of `pairs` RoPE pairs multiplied by `gain` (outlier channels, as reported for trained models).
 * Pair i (NeoX layout: components i and i + d/2) turns at w_i = base^(-2i/d): LOW puts the
 * outliers on the slowest pairs (d/2 - pairs .. d/2 - 1), HIGH on the fastest (0 .. pairs - 1). */
typedef enum pa_spectrum_kind { PA_SPEC_ISO = 0, PA_SPEC_LOW = 1, PA_SPEC_HIGH = 2 } pa_spectrum_kind;
typedef struct pa_drift_spectrum {
  pa_spectrum_kind kind;
  int32_t pairs; /* default 4 */
  double gain;   /* default 8 */
} pa_drift_spectrum;
void pa_drift_spectrum_init(pa_drift_spectrum *s, pa_spectrum_kind kind);
const char *pa_drift_spectrum_name(pa_spectrum_kind k);
/* The factor on the components of pair i (of half = d/2 pairs): gain or 1. */
double pa_drift_pair_gain(const pa_drift_spectrum *s, int32_t i, int32_t half);
/* n vectors of d (even, NeoX layout) components drawn with spectrum s from seed, rounded to fp32
 * (the study's "true" activations are fp32 values); out[n][d]. */
void pa_drift_draw(const pa_drift_spectrum *s, int32_t d, int64_t n, uint64_t seed, double *out);

/* Key j's share of the attention-weight error between low-precision weights w_low (as the kernel
 * applies them; they need not sum to 1) and fp64 weights w_gold, both taken normalised (w/sum w):
 * |w_low_j - w_gold_j| / sum_t |w_low_t - w_gold_t|. Both normalised vectors sum to 1, so the
 * errors sum to 0 and one key's share is at most 1/2. 0 when the weights agree. */
double pa_drift_weight_share(const double *w_low, const double *w_gold, int64_t n, int64_t j);

/* Quantile q in [0, 1] of x[n] (linear interpolation between order statistics; x is sorted in
 * place). NaN when n == 0. */
double pa_drift_quantile(double *x, int64_t n, double q);

/* Activations captured from a real model, for one layer and one sequence (posattn-drift
 * --activations DIR; docs/precision.md "Real activations"). DIR holds four .npy files (format
 * version 1-3, C order, little-endian):
 *   q.npy          [T, Hq, D]  float32 | float16 | float64: queries before RoPE
 *   k.npy          [T, Hkv, D] same dtypes: keys before RoPE (Hq a multiple of Hkv)
 *   v.npy          [T, Hkv, D] same dtypes
 *   positions.npy  [T]         int32 | int64: position ids, >= 0
 * D even, 2..256; RoPE is applied by the study (NeoX / rotate_half layout). Values are widened
 * exactly; bf16 tensors are saved as float32 (exact). */
typedef struct pa_drift_acts {
  int32_t T, hq, hkv, d;
  double *q, *k, *v; /* [T][hq][d], [T][hkv][d] */
  int64_t *pos;      /* [T] */
  double rope_base;  /* the model's RoPE base (posattn-drift --rope-base; default 10000) */
} pa_drift_acts;
/* Loads DIR/{q,k,v,positions}.npy. Errors name the file and the rule it breaks (BAD_SIZE,
 * INVALID_ARGUMENT, BAD_POSITIONS, ALLOC_FAILED); on error *a holds nothing to free. */
posattn_status pa_drift_acts_load(const char *dir, pa_drift_acts *a, char *msg, size_t msz);
void pa_drift_acts_free(pa_drift_acts *a);

typedef struct pa_drift_opts {
  int full;                  /* longer sweeps, more samples */
  uint64_t seed;
  posattn_backend backend;   /* REF: emulation; EMU/CUDA: the kernels produce the outputs (b) */
  int32_t b_max_len;         /* experiment b: longest sequence (default 65536) */
  int32_t b_rows;            /* experiment b: sampled query rows per length (default 20) */
  double b_sink_weight;      /* experiment b, variant sinkfix: the sink's fp64 weight (0.5) */
  int32_t a_draws;           /* experiment a: draws (q and 64 keys) per point (default 20) */
  int32_t a_pairs;           /* experiment a, spectra low/high: outlier pairs (default 4) */
  double a_gain;             /* experiment a, spectra low/high: outlier gain (default 8) */
  int32_t d_max_len;         /* experiment d: longest context (default 131072) */
  int32_t d_draws;           /* experiment d: query draws per point (default 20) */
  const pa_drift_acts *acts; /* non-NULL: a, b and c draw q, k, v from these activations */
  void (*progress)(void *user, const char *line); /* optional; the library never prints */
  void *user;
  /* Experiment b with a kernel backend: where a sampled row's fp64 answer comes from. NULL = the
   * emulation in fp64 on the CPU; posattn-drift --backend cuda sets the cuBLAS GPU reference
   * (kernels/ref64/gpu_ref64.h, pa_gpu_ref64_row). Gets the row as the kernel gets it (q[d] at pq,
   * un-rotated K and V [n][d], key positions pk[n]); writes out[d] and the row's lse. */
  posattn_status (*gold_row)(void *gold_user, const posattn_pe *pe, const double *q, int32_t pq,
                             const double *K, const double *V, const int32_t *pk, int32_t n,
                             int32_t d, double *out, double *lse, char *msg, size_t msz);
  void *gold_user;
} pa_drift_opts;
void pa_drift_opts_init(pa_drift_opts *o);

/* Every point of a, b and c is a median with its 10 % and 90 % quantiles over draws (columns
 * *_med, *_p10, *_p90); with o->acts the draws come from the activations (series "real/...").
 * a: RoPE relative-position violation: logits of q and 64 keys at positions (64, 0..63) and
 * shifted by s; per draw the max |dlogit| and |dprob| over the keys, per spectrum (iso, low,
 * high), angle mode and dtype. */
posattn_status pa_drift_exp_a(const pa_drift_opts *o, pa_drift_table *t, char *msg, size_t msz);
/* b: output error against fp64 (same rounded inputs) as the sequence grows, over b_rows query
 * rows per length (the same rows in every series), per positional method and precision, for the
 * sink variants plain, sink0, sinkoff (positions from 65536), sinkmid (sink = token len/2) and
 * sinkfix (the sink's fp64 weight held at b_sink_weight); the sink's and token 0's shares of the
 * attention-weight error (pa_drift_weight_share), the sink's weight and logit error. */
posattn_status pa_drift_exp_b(const pa_drift_opts *o, pa_drift_table *t, char *msg, size_t msz);
/* c: where to rotate K: logit error against fp64 as the position grows, for rotated-then-
 * rounded caches and in-kernel rotation of un-rotated bf16/fp16 K. */
posattn_status pa_drift_exp_c(const pa_drift_opts *o, pa_drift_table *t, char *msg, size_t msz);

/* d: how much a quantised KV cache (fp8 e4m3 / e5m2 with a per-tensor amax scale, or bf16)
 * moves decode outputs and LSEs against fp64 as the context grows (1024 .. d_max_len), with and
 * without RoPE (K rotated in fp64, then stored: a rotated cache), for diffuse (q ~ N(0,1)) and
 * peaked (q ~ N(0,16)) attention. Everything but the cache is fp64, so the error is the cache's.
 * K and V: fp32 values of N(0,1) draws, one set per run; each draw is a fresh query, the newest
 * token (position len - 1), seeing every cached token. Columns: output NRMSE and |LSE error|. */
posattn_status pa_drift_exp_d(const pa_drift_opts *o, pa_drift_table *t, char *msg, size_t msz);

/* Relative-position violation of one configuration (used by a and by the tests): n_keys random
 * keys at positions 0..n_keys-1 against a query at n_keys, shifted by s; returns
 * max|dlogit| / max|logit|. */
posattn_status pa_drift_violation(const pa_lp_config *c, int32_t head_dim, double base,
                                  int64_t shift, int32_t n_keys, uint64_t seed, double *rel,
                                  char *msg, size_t msz);

#ifdef __cplusplus
}
#endif
#endif /* POSATTN_DRIFT_H */
