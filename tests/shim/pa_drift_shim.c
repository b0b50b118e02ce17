/* pa_drift_shim.c -- C wrappers that let the tests reach the drift-study engine. */
#include "pa_drift_shim.h"

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
