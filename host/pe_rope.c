/* pe_rope.c -- RoPE inverse frequencies for every scaling (pe-spec §1-2), the exact rotation, and
 * the xPos decay (pe-spec §6). Everything in fp64. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* posattn.h RANGES: the largest values whose fp32 form the kernels can use without overflow. */
#define PA_MAX_ATTENTION_FACTOR 16.0
#define PA_MAX_INV_FREQ 1048576.0 /* 2^20 rad per position: angles stay < 2^50 */

#define PA_TWO_PI 6.283185307179586476925286766559

/* Unscaled frequency of pair i: base^(-2i/d). */
static double default_inv_freq(double base, int32_t d, int32_t i) {
  return pow(base, -(double)(2 * i) / (double)d);
}

/* NTK-aware frequency of pair i with base' = base * s^(d/(d-2)) (validation keeps d >= 4).
 * Written as base^(-2i/d) * s^(-2i/(d-2)) so the lowest pair comes out as exactly orig/s. */
static double ntk_inv_freq(double base, double s, int32_t d, int32_t i) {
  return default_inv_freq(base, d, i) * pow(s, -(double)(2 * i) / (double)(d - 2));
}

/* Pair index at which L_orig / wavelength == n_rot (YaRN reference code). */
static double yarn_correction_dim(double n_rot, int32_t d, double base, double orig) {
  double ratio = orig / (n_rot * PA_TWO_PI);
  /* a tiny beta (e.g. 1e-320) overflows the ratio: the log of the quotient is still finite, and
   * an infinite dimension on both ends would make the ramp inf/inf = NaN (found by fuzz_pe) */
  double lg = isfinite(ratio) ? log(ratio) : log(orig) - log(n_rot) - log(PA_TWO_PI);
  return (double)d * lg / (2.0 * log(base));
}

static void yarn_inv_freq(const posattn_rope_params *r, int32_t d, double *inv) {
  double orig = (double)r->original_max_position;
  double low = yarn_correction_dim(r->beta_fast, d, r->base, orig);
  double high = yarn_correction_dim(r->beta_slow, d, r->base, orig);
  if (r->yarn_truncate) {
    low = floor(low);
    high = ceil(high);
  }
  if (low < 0) low = 0;
  if (high > d - 1) high = d - 1;
  if (low == high) high += 0.001; /* the reference code's guard against a zero-width ramp */
  for (int32_t i = 0; i < d / 2; i++) {
    /* ramp is linear in the pair index (the code, not the paper's ramp in r) */
    double ramp = ((double)i - low) / (high - low);
    if (ramp < 0) ramp = 0;
    if (ramp > 1) ramp = 1;
    double extrap = 1.0 - ramp;
    double f = default_inv_freq(r->base, d, i);
    /* the two ends as plain values (what the blend gives there whenever f / factor is finite):
     * a factor so small that f / factor overflows would otherwise give inf * 0 = NaN (found by
     * fuzz_pe; such tables are outside the kernels' range and forward refuses them) */
    inv[i] = extrap == 1.0   ? f
             : extrap == 0.0 ? f / r->factor
                             : (f / r->factor) * (1.0 - extrap) + f * extrap;
  }
}

static void llama3_inv_freq(const posattn_rope_params *r, int32_t d, double *inv) {
  double old_ctx = (double)r->original_max_position;
  double low_wavelen = old_ctx / r->low_freq_factor;
  double high_wavelen = old_ctx / r->high_freq_factor;
  for (int32_t i = 0; i < d / 2; i++) {
    double f = default_inv_freq(r->base, d, i);
    double wavelen = PA_TWO_PI / f;
    if (wavelen < high_wavelen) {
      inv[i] = f;
    } else if (wavelen > low_wavelen) {
      inv[i] = f / r->factor;
    } else { /* both boundaries inclusive, where the blend is continuous with the sides */
      double sm = (old_ctx / wavelen - r->low_freq_factor) /
                  (r->high_freq_factor - r->low_freq_factor);
      inv[i] = (1.0 - sm) * f / r->factor + sm * f;
    }
  }
}

/* YaRN's magnitude scale (transformers' get_mscale): 0.1 * m * ln(s) + 1, or 1 when s <= 1. */
static double yarn_get_mscale(double s, double m) { return s <= 1 ? 1.0 : 0.1 * m * log(s) + 1.0; }

static double default_attention_factor(const posattn_rope_params *r) {
  if (r->scaling == POSATTN_ROPE_SCALING_YARN) {
    /* transformers: the DeepSeek ratio only when both mscale and mscale_all_dim are set */
    if (r->mscale != 0 && r->mscale_all_dim != 0)
      return yarn_get_mscale(r->factor, r->mscale) / yarn_get_mscale(r->factor, r->mscale_all_dim);
    return yarn_get_mscale(r->factor, 1.0);
  }
  if (r->scaling == POSATTN_ROPE_SCALING_LONGROPE) {
    /* transformers: the config's `factor` when given, else max / original */
    double orig = (double)r->original_max_position;
    double f = r->longrope_factor != 0
                   ? r->longrope_factor
                   : (r->max_position > 0 ? (double)r->max_position : orig) / orig;
    return f <= 1 ? 1.0 : sqrt(1.0 + log(f) / log(orig));
  }
  return 1.0;
}

int32_t pa_rope_dim(const posattn_rope_params *rope, int32_t head_dim) {
  return rope->rotary_dim ? rope->rotary_dim : head_dim - rope->rotary_offset;
}

/* The table and attention factor for parameters already validated. */
static void rope_table(const posattn_rope_params *rope, int32_t head_dim, int32_t seq_len,
                       double *inv_freq, double *attention_factor) {
  int32_t d = pa_rope_dim(rope, head_dim);
  double base = rope->base, s = rope->factor;
  for (int32_t i = 0; i < d / 2; i++) {
    switch (rope->scaling) {
      case POSATTN_ROPE_SCALING_NONE: inv_freq[i] = default_inv_freq(base, d, i); break;
      case POSATTN_ROPE_SCALING_LINEAR: inv_freq[i] = default_inv_freq(base, d, i) / s; break;
      case POSATTN_ROPE_SCALING_NTK: inv_freq[i] = ntk_inv_freq(base, s, d, i); break;
      case POSATTN_ROPE_SCALING_DYNAMIC_NTK: {
        /* HF: seq = max(seq, max_position_embeddings); the NTK factor grows with it */
        double orig = (double)rope->original_max_position;
        double seq = rope->dynamic_seq_len > 0 ? (double)rope->dynamic_seq_len : (double)seq_len;
        if (seq < orig) seq = orig;
        inv_freq[i] = ntk_inv_freq(base, s * seq / orig - (s - 1.0), d, i);
        break;
      }
      case POSATTN_ROPE_SCALING_LONGROPE:
        inv_freq[i] = default_inv_freq(base, d, i) / rope->ext_factors[i];
        break;
      case POSATTN_ROPE_SCALING_INV_FREQ: inv_freq[i] = rope->inv_freq[i]; break;
      case POSATTN_ROPE_SCALING_YARN:
      case POSATTN_ROPE_SCALING_LLAMA3: break; /* whole table below: they need the ramp bounds */
    }
  }
  if (rope->scaling == POSATTN_ROPE_SCALING_YARN) yarn_inv_freq(rope, d, inv_freq);
  if (rope->scaling == POSATTN_ROPE_SCALING_LLAMA3) llama3_inv_freq(rope, d, inv_freq);
  /* Gemma's proportional RoPE: only the first active_pairs pairs turn */
  if (rope->active_pairs > 0)
    for (int32_t i = rope->active_pairs; i < d / 2; i++) inv_freq[i] = 0.0;
  *attention_factor =
      rope->attention_factor != 0 ? rope->attention_factor : default_attention_factor(rope);
}

static posattn_status check_rope_args(const posattn_rope_params *rope, int32_t head_dim,
                                      int32_t seq_len, const char *prefix, char *why,
                                      size_t why_size) {
  if (!rope) return pa_fail(why, why_size, POSATTN_STATUS_NULL_POINTER, "rope must not be NULL");
  PA_TRY(pa_validate_rope(why, why_size, rope, head_dim, prefix));
  if (seq_len < 0)
    return pa_fail(why, why_size, POSATTN_STATUS_BAD_SIZE, "seq_len (%d) must be >= 0",
                   (int)seq_len);
  return POSATTN_STATUS_SUCCESS;
}

posattn_status pa_rope_table_checked(const posattn_rope_params *rope, int32_t head_dim,
                                     int32_t seq_len, double *inv_freq, double *attention_factor,
                                     const char *prefix, char *why, size_t why_size) {
  PA_TRY(check_rope_args(rope, head_dim, seq_len, prefix, why, why_size));
  double af;
  rope_table(rope, head_dim, seq_len, inv_freq, &af);
  if (attention_factor) *attention_factor = af;
  if (!(af <= PA_MAX_ATTENTION_FACTOR))
    return pa_fail(why, why_size, POSATTN_STATUS_BAD_PE_PARAMS,
                   "%s.attention_factor (%g, given or the method's default) must be <= %g: the "
                   "kernels scale the fp32 rotation by it and logits by its square",
                   prefix, af, PA_MAX_ATTENTION_FACTOR);
  for (int32_t i = 0; i < pa_rope_dim(rope, head_dim) / 2; i++)
    if (!(inv_freq[i] <= PA_MAX_INV_FREQ))  /* NaN fails too */
      return pa_fail(why, why_size, POSATTN_STATUS_BAD_PE_PARAMS,
                     "%s: the scaled inverse frequency of pair %d (%g) must be <= 2^20 rad per "
                     "position (the kernels' fp32 angles); e.g. a LINEAR or YaRN factor (%g) "
                     "must be >= 2^-20",
                     prefix, (int)i, inv_freq[i], rope->factor);
  return POSATTN_STATUS_SUCCESS;
}

posattn_status posattn_pe_rope_inv_freq(const posattn_rope_params *rope, int32_t head_dim,
                                        int32_t seq_len, double *inv_freq,
                                        double *attention_factor, char *why, size_t why_size) {
  if (!inv_freq)
    return pa_fail(why, why_size, POSATTN_STATUS_NULL_POINTER, "inv_freq must not be NULL");
  return pa_rope_table_checked(rope, head_dim, seq_len, inv_freq, attention_factor, "rope", why,
                               why_size);
}

posattn_status posattn_pe_rope_softmax_multiplier(const posattn_rope_params *rope,
                                                  int32_t head_dim, double *multiplier, char *why,
                                                  size_t why_size) {
  if (!multiplier)
    return pa_fail(why, why_size, POSATTN_STATUS_NULL_POINTER, "multiplier must not be NULL");
  PA_TRY(check_rope_args(rope, head_dim, 0, "rope", why, why_size));
  double m = 1.0;
  if (rope->scaling == POSATTN_ROPE_SCALING_YARN && rope->mscale_all_dim != 0) {
    m = yarn_get_mscale(rope->factor, rope->mscale_all_dim);
    m *= m;
  }
  *multiplier = m;
  return POSATTN_STATUS_SUCCESS;
}

void pa_rope_rotate(posattn_rope_layout layout, int32_t rotary_dim, const double *inv_freq,
                    double attention_factor, int64_t pos, double *x) {
  int32_t half = rotary_dim / 2;
  double p = (double)pos; /* exact: callers keep |pos| <= 2^53 */
  for (int32_t i = 0; i < half; i++) {
    /* angle = hi + lo exactly (fma gives the rounding error of the product); the cosine of a
     * sum then keeps lo, which at p ~ 1e6 is ~1e-10 rad and would otherwise be lost. */
    double hi = p * inv_freq[i];
    double lo = fma(p, inv_freq[i], -hi);
    double ch = cos(hi), sh = sin(hi), cl = cos(lo), sl = sin(lo);
    double c = (ch * cl - sh * sl) * attention_factor;
    double s = (sh * cl + ch * sl) * attention_factor;
    int32_t a = layout == POSATTN_ROPE_GPTJ ? 2 * i : i;
    int32_t b = layout == POSATTN_ROPE_GPTJ ? 2 * i + 1 : i + half;
    double xa = x[a], xb = x[b];
    x[a] = xa * c - xb * s;
    x[b] = xa * s + xb * c;
  }
}

posattn_status posattn_pe_rope_apply(const posattn_rope_params *rope, int32_t head_dim,
                                     int32_t seq_len, int64_t pos, const double *x, double *y) {
  if (!x || !y) return pa_fail(NULL, 0, POSATTN_STATUS_NULL_POINTER, "x and y must not be NULL");
  if (pos > (INT64_C(1) << 53) || pos < -(INT64_C(1) << 53))
    return pa_fail(NULL, 0, POSATTN_STATUS_BAD_POSITIONS, "|pos| must be <= 2^53");
  PA_TRY(check_rope_args(rope, head_dim, seq_len, "rope", NULL, 0));
  int32_t d = pa_rope_dim(rope, head_dim);
  double *inv = (double *)malloc((size_t)(d / 2 + 1) * sizeof(double));
  if (!inv) return pa_fail(NULL, 0, POSATTN_STATUS_ALLOC_FAILED, "rope: inv_freq table");
  double af;
  const posattn_status st = pa_rope_table_checked(rope, head_dim, seq_len, inv, &af, "rope", NULL, 0);
  if (st != POSATTN_STATUS_SUCCESS) {
    free(inv);
    return st;
  }
  memmove(y, x, (size_t)head_dim * sizeof(double));
  pa_rope_rotate(rope->layout, d, inv, af, pos, y + rope->rotary_offset);
  free(inv);
  return POSATTN_STATUS_SUCCESS;
}

double pa_xpos_log_decay(const posattn_xpos_params *xpos, int32_t rotary_dim, int32_t pair) {
  double zeta = (2.0 * pair / rotary_dim + xpos->gamma) / (1.0 + xpos->gamma);
  return log(zeta) / xpos->scale_base;
}

double posattn_pe_xpos_scale(const posattn_xpos_params *xpos, int32_t rotary_dim, int32_t pair,
                             int64_t delta) {
  /* no status to return: invalid arguments, and parameters outside the kernels' range that
   * forward refuses (scale_base < 1), give NaN */
  if (rotary_dim < 2 || rotary_dim % 2 || pair < 0 || pair >= rotary_dim / 2 ||
      pa_validate_xpos(NULL, 0, xpos) != POSATTN_STATUS_SUCCESS)
    return NAN;
  return exp((double)delta * pa_xpos_log_decay(xpos, rotary_dim, pair));
}
