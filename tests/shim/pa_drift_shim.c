/* pa_drift_shim.c -- C wrappers that let the tests reach the drift-study engine. */
#include "pa_drift_shim.h"

#include <stdlib.h>
#include <string.h>

#include "drift.h"
#include "internal.h"
#include "prefill/dispatch.h"

posattn_status pa_drift_shim_forward(const char *config, const posattn_attention_desc *desc,
                                     const posattn_tensor *q, const posattn_tensor *k,
                                     const posattn_tensor *v, double *out, double *lse,
                                     double *logits, char *msg, size_t msg_size) {
  pa_lp_config c;
  PA_TRY(pa_lp_config_parse(config, &c, msg, msg_size));
  return pa_lp_forward(&c, desc, q, k, v, out, lse, logits, msg, msg_size);
}

posattn_status pa_drift_shim_prepare(const char *config, const posattn_rope_params *rope,
                                     int32_t head_dim, int64_t pos, const double *x, double *y,
                                     char *msg, size_t msg_size) {
  pa_lp_config c;
  PA_TRY(pa_lp_config_parse(config, &c, msg, msg_size));
  pa_lp_rope r;
  PA_TRY(pa_lp_rope_init(&r, &c, rope, head_dim, (int32_t)(pos + 1), pos, msg, msg_size));
  pa_lp_prepare(&c, &r, head_dim, x, pos, y);
  pa_lp_rope_free(&r);
  return POSATTN_STATUS_SUCCESS;
}

posattn_status pa_drift_shim_violation(const char *config, int32_t head_dim, double base,
                                       int64_t shift, int32_t n_keys, uint64_t seed, double *rel,
                                       char *msg, size_t msg_size) {
  pa_lp_config c;
  PA_TRY(pa_lp_config_parse(config, &c, msg, msg_size));
  return pa_drift_violation(&c, head_dim, base, shift, n_keys, seed, rel, msg, msg_size);
}

double pa_drift_shim_exact_angle(int64_t p, double w) { return pa_lp_exact_angle(p, w); }

const char *pa_drift_shim_prefill_kernel(const posattn_attention_desc *desc, posattn_dtype in,
                                         posattn_dtype out, char *msg, size_t msg_size) {
  pa_problem p;
  if (pa_validate(msg, msg_size, desc, in, out, NULL, NULL, NULL, NULL, NULL, &p) !=
      POSATTN_STATUS_SUCCESS)
    return NULL;
  pa_prefill_kernel k;
  size_t ws;
  if (pa_prefill_choose(&p, 1, &k, &ws, msg, msg_size) != POSATTN_STATUS_SUCCESS) return NULL;
  return pa_prefill_kernel_name(k);
}

double pa_drift_shim_weight_share(const double *w_low, const double *w_gold, int64_t n, int64_t j) {
  return pa_drift_weight_share(w_low, w_gold, n, j);
}

posattn_status pa_drift_shim_draw(const char *spectrum, int32_t pairs, double gain, int32_t d,
                                  int64_t n, uint64_t seed, double *out, char *msg,
                                  size_t msg_size) {
  for (int k = PA_SPEC_ISO; k <= PA_SPEC_HIGH; ++k) {
    if (strcmp(spectrum, pa_drift_spectrum_name((pa_spectrum_kind)k)) != 0) continue;
    pa_drift_spectrum s;
    pa_drift_spectrum_init(&s, (pa_spectrum_kind)k);
    s.pairs = pairs;
    s.gain = gain;
    pa_drift_draw(&s, d, n, seed, out);
    return POSATTN_STATUS_SUCCESS;
  }
  return pa_fail(msg, msg_size, POSATTN_STATUS_INVALID_ARGUMENT,
                 "spectrum '%s' must be iso, low or high", spectrum);
}

posattn_status pa_drift_shim_experiment(char exp, uint64_t seed, int32_t b_max_len,
                                        int32_t b_rows, int32_t a_draws, const char *acts_dir,
                                        pa_drift_shim_table *t, char *msg, size_t msg_size) {
  pa_drift_opts o;
  pa_drift_opts_init(&o);
  o.seed = seed;
  o.b_max_len = b_max_len;
  o.b_rows = b_rows;
  o.a_draws = a_draws;
  o.d_max_len = b_max_len;
  o.d_draws = b_rows;
  pa_drift_table d;
  memset(t, 0, sizeof *t);
  pa_drift_acts acts;
  if (acts_dir != NULL) {
    PA_TRY(pa_drift_acts_load(acts_dir, &acts, msg, msg_size));
    o.acts = &acts;
  }
  posattn_status st = exp == 'a'   ? pa_drift_exp_a(&o, &d, msg, msg_size)
                      : exp == 'b' ? pa_drift_exp_b(&o, &d, msg, msg_size)
                      : exp == 'c' ? pa_drift_exp_c(&o, &d, msg, msg_size)
                      : exp == 'd' ? pa_drift_exp_d(&o, &d, msg, msg_size)
                                   : pa_fail(msg, msg_size, POSATTN_STATUS_INVALID_ARGUMENT,
                                             "experiment '%c' must be a, b, c or d", exp);
  if (acts_dir != NULL) pa_drift_acts_free(&acts);
  if (st != POSATTN_STATUS_SUCCESS) {
    if (exp >= 'a' && exp <= 'd') pa_drift_table_free(&d);
    return st;
  }
  t->ncols = d.ncols;
  t->cols = d.cols;
  t->nrows = d.nrows;
  t->series = d.series;
  t->val = d.val;
  return POSATTN_STATUS_SUCCESS;
}

void pa_drift_shim_table_free(pa_drift_shim_table *t) {
  free(t->series);
  free(t->val);
  memset(t, 0, sizeof *t);
}

posattn_status pa_drift_shim_acts_load(const char *dir, pa_drift_shim_acts *a, char *msg,
                                       size_t msg_size) {
  memset(a, 0, sizeof *a);
  pa_drift_acts *x = malloc(sizeof *x);
  if (x == NULL) return pa_fail(msg, msg_size, POSATTN_STATUS_ALLOC_FAILED, "activations");
  posattn_status st = pa_drift_acts_load(dir, x, msg, msg_size);
  if (st != POSATTN_STATUS_SUCCESS) {
    free(x);
    return st;
  }
  a->T = x->T;
  a->hq = x->hq;
  a->hkv = x->hkv;
  a->d = x->d;
  a->q = x->q;
  a->k = x->k;
  a->v = x->v;
  a->pos = x->pos;
  a->impl = x;
  return POSATTN_STATUS_SUCCESS;
}

void pa_drift_shim_acts_free(pa_drift_shim_acts *a) {
  pa_drift_acts_free((pa_drift_acts *)a->impl);
  free(a->impl);
  memset(a, 0, sizeof *a);
}
