/* pa_drift_shim.h -- what the drift tests need from the precision-study engine (bench/drift/drift.h,
 * which tests may not include). Configurations are the engine's text form:
 * "preset[,key=value...]", presets fp64, fp32, baseline-bf16|fp16, tc-bf16|fp16, keys input,
 * angle (f64|fast|exact), table, rot, operand, qk_acc, softmax, p, pv_acc, output
 * (f64|f32|f16|bf16), block, split. */
#ifndef PA_DRIFT_SHIM_H
#define PA_DRIFT_SHIM_H

#include <stddef.h>
#include <stdint.h>

#include "posattn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The emulated attention call: out fp64 [rows][q_heads][head_dim], lse fp64 in posattn's lse
 * layout (may be NULL), logits NULL or fp64 [batch][q_heads][q_len][kv_len] (-inf = masked). */
posattn_status pa_drift_shim_forward(const char *config, const posattn_attention_desc *desc,
                                     const posattn_tensor *q, const posattn_tensor *k,
                                     const posattn_tensor *v, double *out, double *lse,
                                     double *logits, char *msg, size_t msg_size);

/* One head vector x[head_dim] as the configuration feeds it to q.k at position pos: input
 * rounding, RoPE with `rope`, operand rounding. */
posattn_status pa_drift_shim_prepare(const char *config, const posattn_rope_params *rope,
                                     int32_t head_dim, int64_t pos, const double *x, double *y,
                                     char *msg, size_t msg_size);

/* Relative-position violation max|dlogit|/max|logit| of the configuration between positions
 * (n_keys, 0..n_keys-1) and the same shifted by `shift` (random content from `seed`). */
posattn_status pa_drift_shim_violation(const char *config, int32_t head_dim, double base,
                                       int64_t shift, int32_t n_keys, uint64_t seed, double *rel,
                                       char *msg, size_t msg_size);

/* Name of the prefill kernel the EMU/CUDA chooser picks for desc with these dtypes ("mma",
 * "simt"), or NULL with the reason in msg when the descriptor is invalid or unsupported. Tests
 * that model one kernel's rounding skip when another one would run (pruned instance builds). */
const char *pa_drift_shim_prefill_kernel(const posattn_attention_desc *desc, posattn_dtype in,
                                         posattn_dtype out, char *msg, size_t msg_size);

/* Key j's share of the attention-weight error on normalised weights (w / sum w):
 * |w_low_j - w_gold_j| / sum_t |w_low_t - w_gold_t| (bench/drift/drift.h pa_drift_weight_share). */
double pa_drift_shim_weight_share(const double *w_low, const double *w_gold, int64_t n, int64_t j);

/* n vectors of d components with spectrum "iso", "low" or "high" (outliers x gain on `pairs`
 * RoPE pairs, NeoX layout), as experiments a and c draw q and k. INVALID_ARGUMENT names a bad
 * spectrum. */
posattn_status pa_drift_shim_draw(const char *spectrum, int32_t pairs, double gain, int32_t d,
                                  int64_t n, uint64_t seed, double *out, char *msg,
                                  size_t msg_size);

/* An experiment's table (posattn-drift's CSV): one series name and ncols values per row. */
typedef struct pa_drift_shim_table {
  int ncols;
  const char *const *cols;
  size_t nrows;
  char (*series)[48];
  double *val; /* [nrows][ncols], NaN = not measured */
} pa_drift_shim_table;
/* Runs experiment 'a', 'b', 'c' or 'd' with the default options except: seed, b_max_len and
 * b_rows (b; for d: d_max_len and d_draws), a_draws (a), and acts_dir (NULL = synthetic draws; else the activations in that directory,
 * as posattn-drift --activations). Free the table with pa_drift_shim_table_free. */
posattn_status pa_drift_shim_experiment(char exp, uint64_t seed, int32_t b_max_len,
                                        int32_t b_rows, int32_t a_draws, const char *acts_dir,
                                        pa_drift_shim_table *t, char *msg, size_t msg_size);

/* Activations as posattn-drift --activations loads them from dir (bench/drift/drift.h pa_drift_acts):
 * q [T][hq][d], k and v [T][hkv][d], widened to fp64; pos [T]. */
typedef struct pa_drift_shim_acts {
  int32_t T, hq, hkv, d;
  const double *q, *k, *v;
  const int64_t *pos;
  void *impl;
} pa_drift_shim_acts;
posattn_status pa_drift_shim_acts_load(const char *dir, pa_drift_shim_acts *a, char *msg,
                                       size_t msg_size);
void pa_drift_shim_acts_free(pa_drift_shim_acts *a);
void pa_drift_shim_table_free(pa_drift_shim_table *t);

/* p*w reduced to [-pi, pi] by the engine's exact angle computation. */
double pa_drift_shim_exact_angle(int64_t p, double w);

#ifdef __cplusplus
}
#endif
#endif /* PA_DRIFT_SHIM_H */
