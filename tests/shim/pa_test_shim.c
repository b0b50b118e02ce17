/* pa_test_shim.c -- see pa_test_shim.h. Test code: it may use the library's internals. */
#include "pa_test_shim.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp8.h"
#include "internal.h"

/* ---- random numbers ------------------------------------------------------------------------ */
void pat_rng_seed(pat_rng *r, uint64_t seed) { r->state = seed * 0x9E3779B97F4A7C15ull + 1; }

uint64_t pat_rng_u64(pat_rng *r) {
  uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double pat_rng_uniform(pat_rng *r, double lo, double hi) {
  double u = (double)(pat_rng_u64(r) >> 11) * 0x1.0p-53;
  return lo + (hi - lo) * u;
}

int32_t pat_rng_int(pat_rng *r, int32_t lo, int32_t hi) {
  uint64_t span = (uint64_t)((int64_t)hi - lo + 1);
  return (int32_t)(lo + (int64_t)(pat_rng_u64(r) % span));
}

double pat_rng_normal(pat_rng *r) {
  double u1 = pat_rng_uniform(r, 0x1.0p-60, 1.0);
  double u2 = pat_rng_uniform(r, 0.0, 1.0);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- conversions ------------------------------------------------------------------------- */
double pat_round_to(posattn_dtype dt, double x) { return pa_round_to(dt, x); }
double pat_load(const void *base, posattn_dtype dt, int64_t idx) { return pa_load(base, dt, idx); }
void pat_store(void *base, posattn_dtype dt, int64_t idx, double x) { pa_store(base, dt, idx, x); }

uint8_t pat_fp8_encode(int e5m2, float x) { return pa_fp8_encode(e5m2, x); }
float pat_fp8_decode(int e5m2, uint8_t code) { return pa_fp8_decode(e5m2, code); }
uint8_t pat_fp8_from_f64(int e5m2, double x) { return pa_f64_to_fp8(e5m2, x); }

double pat_ulp(posattn_dtype dt, double x) {
  int mant_bits, min_exp; /* significand bits incl. the implicit one; exponent of the smallest
                             normal */
  switch (dt) {
    case POSATTN_DTYPE_F16: mant_bits = 11; min_exp = -14; break;
    case POSATTN_DTYPE_BF16: mant_bits = 8; min_exp = -126; break;
    case POSATTN_DTYPE_FP8_E4M3: mant_bits = 4; min_exp = -6; break;
    case POSATTN_DTYPE_FP8_E5M2: mant_bits = 3; min_exp = -14; break;
    default: mant_bits = 24; min_exp = -126; break;
  }
  x = fabs(x);
  int e = min_exp;
  if (x > 0 && isfinite(x)) {
    int fe;
    frexp(x, &fe); /* x = m * 2^fe, m in [0.5, 1) */
    if (fe - 1 > min_exp) e = fe - 1;
  }
  return ldexp(1.0, e - (mant_bits - 1));
}

void pat_fill_random(pat_rng *r, posattn_dtype dt, void *buf, double *widened, int64_t n,
                     double amp) {
  for (int64_t i = 0; i < n; ++i) {
    double x;
    do {
      x = pa_round_to(dt, pat_rng_uniform(r, -amp, amp));
    } while (x == 0.0);
    pa_store(buf, dt, i, x);
    if (widened) widened[i] = x;
  }
}

/* ---- guarded buffers ------------------------------------------------------------------- */
enum { PAT_GUARD = 256, PAT_GUARD_BYTE = 0xA7 };

int pat_buf_alloc(pat_buf *b, size_t bytes) {
  b->block = (unsigned char *)malloc(PAT_GUARD * 3 + bytes);
  if (!b->block) return -1;
  uintptr_t p = (uintptr_t)b->block + PAT_GUARD;
  p = (p + PAT_GUARD - 1) / PAT_GUARD * PAT_GUARD; /* 256-aligned, >= 256 bytes of front guard */
  b->data = (void *)p;
  b->bytes = bytes;
  memset(b->block, PAT_GUARD_BYTE, PAT_GUARD * 3 + bytes);
  memset(b->data, 0, bytes);
  return 0;
}

void pat_buf_free(pat_buf *b) {
  free(b->block);
  b->block = NULL;
  b->data = NULL;
}

int pat_buf_guards_ok(const pat_buf *b) {
  const unsigned char *d = (const unsigned char *)b->data;
  for (const unsigned char *p = b->block; p < d; ++p)
    if (*p != PAT_GUARD_BYTE) return 0;
  const unsigned char *end = b->block + PAT_GUARD * 3 + b->bytes;
  for (const unsigned char *p = d + b->bytes; p < end; ++p)
    if (*p != PAT_GUARD_BYTE) return 0;
  return 1;
}

void pat_buf_poison_nan(pat_buf *b, posattn_dtype dt, int64_t n) {
  for (int64_t i = 0; i < n; ++i) pa_store(b->data, dt, i, NAN);
}

int64_t pat_count_nan(const void *data, posattn_dtype dt, int64_t n) {
  int64_t c = 0;
  for (int64_t i = 0; i < n; ++i) c += isnan(pa_load(data, dt, i)) ? 1 : 0;
  return c;
}

/* ---- the section 5 rule ---------------------------------------------------------------- */
pat_rule_result pat_rule_check(const double *out, const double *baseline, const double *ref64,
                               int64_t n, posattn_dtype out_dtype) {
  pat_rule_result r;
  memset(&r, 0, sizeof r);
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (isnan(out[i]) || isnan(baseline[i])) {
      r.bad_nonfinite++;
      continue;
    }
    if (!isfinite(ref64[i])) {
      if (out[i] != ref64[i] || baseline[i] != ref64[i]) r.bad_nonfinite++;
      continue;
    }
    double e = fabs(out[i] - ref64[i]), eb = fabs(baseline[i] - ref64[i]);
    if (!(e <= r.max_err)) r.max_err = e;
    if (eb > r.max_base_err) r.max_base_err = eb;
    if (fabs(ref64[i]) > r.max_ref) r.max_ref = fabs(ref64[i]);
    num += e * e;
    den += ref64[i] * ref64[i];
  }
  r.nmse = den > 0 ? num / den : (num > 0 ? INFINITY : 0.0);
  r.bound = 2.0 * r.max_base_err + 2.0 * pat_ulp(out_dtype, r.max_ref);
  r.pass = r.bad_nonfinite == 0 && r.max_err <= r.bound && r.nmse <= 5e-4;
  return r;
}

/* ---- naive attention --------------------------------------------------------------------- */
int64_t pat_q_rows(const posattn_attention_desc *d) {
  return d->cu_seqlens_q ? d->cu_seqlens_q[d->batch] : (int64_t)d->batch * d->q_len;
}
int64_t pat_kv_rows(const posattn_attention_desc *d) {
  return d->cu_seqlens_kv ? d->cu_seqlens_kv[d->batch] : (int64_t)d->batch * d->kv_len;
}

/* element offset of (row r of the q-rows or kv-rows numbering, head h); for dense tensors the
 * row splits into batch and token so that stride_batch is honoured */
static int64_t row_offset(const posattn_tensor *t, int varlen, int32_t len, int64_t row,
                          int32_t h) {
  if (varlen) return row * t->stride_seq + (int64_t)h * t->stride_head;
  return (row / len) * t->stride_batch + (row % len) * t->stride_seq +
         (int64_t)h * t->stride_head;
}

void pat_gather(const posattn_attention_desc *desc, const posattn_tensor *t, int64_t rows,
                int32_t heads, int32_t head_dim, double *dst) {
  int varlen = desc->cu_seqlens_q != NULL;
  for (int64_t r = 0; r < rows; ++r)
    for (int32_t h = 0; h < heads; ++h) {
      int64_t off = row_offset(t, varlen, desc->q_len, r, h);
      for (int32_t e = 0; e < head_dim; ++e)
        dst[(r * heads + h) * head_dim + e] = pa_load(t->data, t->dtype, off + e);
    }
}

typedef struct naive_pe {
  int rotary;          /* RoPE or xPos */
  int32_t rd;          /* rotary dim */
  int32_t offset;      /* first rotated feature */
  int gptj;            /* pairing */
  double *inv_freq;    /* [rd/2] */
  double attn_factor;  /* multiplies cos and sin */
} naive_pe;

/* the two feature indices of pair k */
static void pair_dims(const naive_pe *pe, int32_t k, int32_t *a, int32_t *b) {
  if (pe->gptj) {
    *a = pe->offset + 2 * k;
    *b = pe->offset + 2 * k + 1;
  } else {
    *a = pe->offset + k;
    *b = pe->offset + k + pe->rd / 2;
  }
}

static void rotate(const naive_pe *pe, int64_t pos, const double *x, double *y, int32_t d) {
  memcpy(y, x, sizeof(double) * (size_t)d);
  for (int32_t k = 0; k < pe->rd / 2; ++k) {
    int32_t a, b;
    pair_dims(pe, k, &a, &b);
    double ang = (double)pos * pe->inv_freq[k];
    double c = cos(ang) * pe->attn_factor, s = sin(ang) * pe->attn_factor;
    y[a] = x[a] * c - x[b] * s;
    y[b] = x[a] * s + x[b] * c;
  }
}

posattn_status pat_naive_forward(const posattn_attention_desc *desc, const posattn_tensor *q,
                                 const posattn_tensor *k, const posattn_tensor *v,
                                 posattn_dtype lowp, posattn_dtype out_dtype, double *out64,
                                 double *lse64) {
  const int varlen = desc->cu_seqlens_q != NULL;
  const int32_t d = desc->head_dim, hq = desc->q_heads, group = hq / desc->kv_heads;
  const double scale = desc->softmax_scale > 0 ? desc->softmax_scale : 1.0 / sqrt((double)d);
  const posattn_pe *pe = &desc->pe;
  const int64_t qrows = pat_q_rows(desc), kvrows = pat_kv_rows(desc);
  posattn_status st = POSATTN_STATUS_SUCCESS;

  /* the largest position id of the call (dynamic NTK's default sequence length) */
  int64_t maxpos = -1;
  for (int32_t b = 0; b < desc->batch; ++b) {
    int32_t lq = varlen ? desc->cu_seqlens_q[b + 1] - desc->cu_seqlens_q[b] : desc->q_len;
    int32_t lk = varlen ? desc->cu_seqlens_kv[b + 1] - desc->cu_seqlens_kv[b] : desc->kv_len;
    int64_t q0 = varlen ? desc->cu_seqlens_q[b] : (int64_t)b * desc->q_len;
    int64_t k0 = varlen ? desc->cu_seqlens_kv[b] : (int64_t)b * desc->kv_len;
    for (int32_t i = 0; i < lq; ++i) {
      int64_t p = desc->q_positions ? desc->q_positions[q0 + i] : (int64_t)i + lk - lq;
      if (p > maxpos) maxpos = p;
    }
    for (int32_t j = 0; j < lk; ++j) {
      int64_t p = desc->kv_positions ? desc->kv_positions[k0 + j] : j;
      if (p > maxpos) maxpos = p;
    }
  }

  naive_pe npe;
  memset(&npe, 0, sizeof npe);
  if (pe->kind == POSATTN_PE_ROPE || pe->kind == POSATTN_PE_XPOS) {
    npe.rotary = 1;
    npe.offset = pe->rope.rotary_offset;
    npe.rd = pe->rope.rotary_dim ? pe->rope.rotary_dim : d - npe.offset;
    npe.gptj = pe->rope.layout == POSATTN_ROPE_GPTJ;
    npe.inv_freq = (double *)malloc(sizeof(double) * (size_t)(npe.rd / 2));
    if (!npe.inv_freq) return POSATTN_STATUS_ALLOC_FAILED;
    st = posattn_pe_rope_inv_freq(&pe->rope, d, (int32_t)(maxpos + 1), npe.inv_freq,
                                  &npe.attn_factor, NULL, 0);
    if (st != POSATTN_STATUS_SUCCESS) {
      free(npe.inv_freq);
      return st;
    }
  }

  /* inputs widened, and rotated copies of q and k (at each token's own position) */
  double *qd = (double *)malloc(sizeof(double) * (size_t)(qrows * hq * d + 1));
  double *kd = (double *)malloc(sizeof(double) * (size_t)(kvrows * desc->kv_heads * d + 1));
  double *vd = (double *)malloc(sizeof(double) * (size_t)(kvrows * desc->kv_heads * d + 1));
  double *s = (double *)malloc(sizeof(double) * (size_t)(desc->kv_len + 1));
  double *tmp = (double *)malloc(sizeof(double) * (size_t)d);
  if (!qd || !kd || !vd || !s || !tmp) {
    st = POSATTN_STATUS_ALLOC_FAILED;
    goto done;
  }
  for (int32_t b = 0; b < desc->batch; ++b) {
    int32_t lq = varlen ? desc->cu_seqlens_q[b + 1] - desc->cu_seqlens_q[b] : desc->q_len;
    int32_t lk = varlen ? desc->cu_seqlens_kv[b + 1] - desc->cu_seqlens_kv[b] : desc->kv_len;
    int64_t q0 = varlen ? desc->cu_seqlens_q[b] : (int64_t)b * desc->q_len;
    int64_t k0 = varlen ? desc->cu_seqlens_kv[b] : (int64_t)b * desc->kv_len;
    for (int32_t i = 0; i < lq; ++i) {
      int64_t p = desc->q_positions ? desc->q_positions[q0 + i] : (int64_t)i + lk - lq;
      for (int32_t h = 0; h < hq; ++h) {
        int64_t off = row_offset(q, varlen, desc->q_len, q0 + i, h);
        double *dst = qd + ((q0 + i) * hq + h) * d;
        for (int32_t e = 0; e < d; ++e) tmp[e] = pa_load(q->data, q->dtype, off + e);
        if (npe.rotary)
          rotate(&npe, p, tmp, dst, d);
        else
          memcpy(dst, tmp, sizeof(double) * (size_t)d);
      }
    }
    for (int32_t j = 0; j < lk; ++j) {
      int64_t p = desc->kv_positions ? desc->kv_positions[k0 + j] : j;
      for (int32_t h = 0; h < desc->kv_heads; ++h) {
        int64_t ok = row_offset(k, varlen, desc->kv_len, k0 + j, h);
        int64_t ov = row_offset(v, varlen, desc->kv_len, k0 + j, h);
        double *dk = kd + ((k0 + j) * desc->kv_heads + h) * d;
        double *dv = vd + ((k0 + j) * desc->kv_heads + h) * d;
        for (int32_t e = 0; e < d; ++e) {
          tmp[e] = pa_load(k->data, k->dtype, ok + e);
          dv[e] = pa_load(v->data, v->dtype, ov + e);
        }
        if (npe.rotary)
          rotate(&npe, p, tmp, dk, d);
        else
          memcpy(dk, tmp, sizeof(double) * (size_t)d);
      }
    }
  }

  for (int32_t b = 0; b < desc->batch; ++b) {
    int32_t lq = varlen ? desc->cu_seqlens_q[b + 1] - desc->cu_seqlens_q[b] : desc->q_len;
    int32_t lk = varlen ? desc->cu_seqlens_kv[b + 1] - desc->cu_seqlens_kv[b] : desc->kv_len;
    int64_t q0 = varlen ? desc->cu_seqlens_q[b] : (int64_t)b * desc->q_len;
    int64_t k0 = varlen ? desc->cu_seqlens_kv[b] : (int64_t)b * desc->kv_len;
    for (int32_t h = 0; h < hq; ++h) {
      int32_t hk = h / group;
      for (int32_t i = 0; i < lq; ++i) {
        int64_t ib = (int64_t)i + lk - lq; /* bottom-right aligned query index */
        int64_t pq = desc->q_positions ? desc->q_positions[q0 + i] : ib;
        const double *qi = qd + ((q0 + i) * hq + h) * d;
        double m = -INFINITY;
        for (int32_t j = 0; j < lk; ++j) {
          int vis = 1;
          if (desc->causal && j > ib) vis = 0;
          if (desc->window_left >= 0 && j < ib - desc->window_left) vis = 0;
          if (desc->window_right >= 0 && j > ib + desc->window_right) vis = 0;
          if (desc->doc_ids && j >= desc->num_anchor_tokens &&
              desc->doc_ids[q0 + i] != desc->doc_ids[k0 + j])
            vis = 0;
          if (!vis) {
            s[j] = -INFINITY;
            continue;
          }
          int64_t pk = desc->kv_positions ? desc->kv_positions[k0 + j] : j;
          const double *kj = kd + ((k0 + j) * desc->kv_heads + hk) * d;
          double dot = 0;
          if (pe->kind == POSATTN_PE_XPOS) {
            /* each rotated pair decays by zeta_k^((pq-pk)/scale_base); the tail does not */
            double g = pe->xpos.gamma;
            for (int32_t kk = 0; kk < npe.rd / 2; ++kk) {
              int32_t a, bb;
              pair_dims(&npe, kk, &a, &bb);
              double zeta = (2.0 * kk / npe.rd + g) / (1.0 + g);
              double decay = pow(zeta, (double)(pq - pk) / pe->xpos.scale_base);
              dot += (qi[a] * kj[a] + qi[bb] * kj[bb]) * decay;
            }
            for (int32_t e = npe.rd; e < d; ++e) dot += qi[e] * kj[e];
          } else {
            for (int32_t e = 0; e < d; ++e) dot += qi[e] * kj[e];
          }
          double logit = scale * dot;
          if (desc->softcap > 0) logit = desc->softcap * tanh(logit / desc->softcap);
          double bias = 0;
          st = posattn_pe_bias(pe, hq, h, pq, pk, &bias);
          if (st != POSATTN_STATUS_SUCCESS) goto done;
          logit += bias;
          if (lowp) logit = (float)logit;
          s[j] = logit;
          if (logit > m) m = logit;
        }
        double *o = out64 + ((q0 + i) * hq + h) * d;
        int64_t li = varlen ? (int64_t)h * qrows + q0 + i
                            : ((int64_t)b * hq + h) * desc->q_len + i;
        /* a sink: one more softmax term e^sink with no value vector */
        const double sink = desc->sink_logits ? desc->sink_logits[h] : -INFINITY;
        if (sink > m) m = sink;
        if (m == -INFINITY) { /* no visible key and no sink */
          for (int32_t e = 0; e < d; ++e) o[e] = 0.0;
          if (lse64) lse64[li] = -INFINITY;
          continue;
        }
        for (int32_t e = 0; e < d; ++e) o[e] = 0.0;
        double l = 0;
        if (sink > -INFINITY) l = lowp ? (double)expf((float)(sink - m)) : exp(sink - m);
        for (int32_t j = 0; j < lk; ++j) {
          if (s[j] == -INFINITY) continue;
          double p;
          if (lowp) {
            float pf = expf((float)(s[j] - m));
            l = (float)(l + pf);
            p = pa_round_to(lowp, pf);
          } else {
            p = exp(s[j] - m);
            l += p;
          }
          const double *vj = vd + ((k0 + j) * desc->kv_heads + hk) * d;
          for (int32_t e = 0; e < d; ++e) {
            o[e] += p * vj[e];
            if (lowp) o[e] = (float)o[e];
          }
        }
        for (int32_t e = 0; e < d; ++e) {
          o[e] /= l;
          if (lowp) o[e] = pa_round_to(out_dtype, o[e]);
        }
        if (lse64) lse64[li] = lowp ? (double)(float)(m + logf((float)l)) : m + log(l);
      }
    }
  }

done:
  free(qd);
  free(kd);
  free(vd);
  free(s);
  free(tmp);
  free(npe.inv_freq);
  return st;
}

/* ---- running posattn_forward under guard ------------------------------------------------ */
int pat_inputs_random(pat_inputs *in, const posattn_attention_desc *desc, posattn_dtype dt,
                      pat_rng *r, double amp) {
  memset(in, 0, sizeof *in);
  const int64_t qn = pat_q_rows(desc) * desc->q_heads * desc->head_dim;
  const int64_t kn = pat_kv_rows(desc) * desc->kv_heads * desc->head_dim;
  const size_t es = posattn_dtype_size(dt);
  if (pat_buf_alloc(&in->q, (size_t)qn * es + 1) || pat_buf_alloc(&in->k, (size_t)kn * es + 1) ||
      pat_buf_alloc(&in->v, (size_t)kn * es + 1)) {
    pat_inputs_free(in);
    return -1;
  }
  pat_fill_random(r, dt, in->q.data, NULL, qn, amp);
  pat_fill_random(r, dt, in->k.data, NULL, kn, amp);
  pat_fill_random(r, dt, in->v.data, NULL, kn, amp);
  const int varlen = desc->cu_seqlens_q != NULL;
  posattn_tensor_init_contiguous(&in->tq, in->q.data, dt,
                                 varlen ? (int32_t)pat_q_rows(desc) : desc->q_len,
                                 desc->q_heads, desc->head_dim);
  posattn_tensor_init_contiguous(&in->tk, in->k.data, dt,
                                 varlen ? (int32_t)pat_kv_rows(desc) : desc->kv_len,
                                 desc->kv_heads, desc->head_dim);
  posattn_tensor_init_contiguous(&in->tv, in->v.data, dt,
                                 varlen ? (int32_t)pat_kv_rows(desc) : desc->kv_len,
                                 desc->kv_heads, desc->head_dim);
  return 0;
}

void pat_inputs_free(pat_inputs *in) {
  pat_buf_free(&in->q);
  pat_buf_free(&in->k);
  pat_buf_free(&in->v);
}

pat_run pat_forward_checked(posattn_context *ctx, const posattn_attention_desc *desc,
                            const posattn_tensor *q, const posattn_tensor *k,
                            const posattn_tensor *v, posattn_dtype out_dtype, double *out64,
                            double *lse64) {
  pat_run run;
  memset(&run, 0, sizeof run);
  const int varlen = desc->cu_seqlens_q != NULL;
  const int64_t rows = pat_q_rows(desc);
  const int64_t on = rows * desc->q_heads * desc->head_dim, ln = rows * desc->q_heads;
  pat_buf out, lse, ws;
  memset(&ws, 0, sizeof ws);
  memset(&out, 0, sizeof out);
  memset(&lse, 0, sizeof lse);
  /* a failed size query leaves no workspace: forward then reports its own validation error */
  size_t ws_bytes = 0;
  if (posattn_workspace_size(ctx, desc, q->dtype, out_dtype, &ws_bytes) != POSATTN_STATUS_SUCCESS)
    ws_bytes = 0;
  if (pat_buf_alloc(&ws, ws_bytes) ||
      pat_buf_alloc(&out, (size_t)on * posattn_dtype_size(out_dtype) + 1) ||
      pat_buf_alloc(&lse, (size_t)ln * sizeof(float) + 1)) {
    run.status = POSATTN_STATUS_ALLOC_FAILED;
  } else {
    pat_buf_poison_nan(&out, out_dtype, on);
    pat_buf_poison_nan(&lse, POSATTN_DTYPE_F32, ln);
    posattn_tensor to;
    posattn_tensor_init_contiguous(&to, out.data, out_dtype, varlen ? (int32_t)rows : desc->q_len,
                                   desc->q_heads, desc->head_dim);
    run.status = posattn_forward(ctx, desc, q, k, v, &to, (float *)lse.data,
                                 ws_bytes ? ws.data : NULL, ws_bytes);
    snprintf(run.message, sizeof run.message, "%s", posattn_context_last_message(ctx));
    run.guards_ok = pat_buf_guards_ok(&out) && pat_buf_guards_ok(&lse) && pat_buf_guards_ok(&ws);
    run.out_nan = pat_count_nan(out.data, out_dtype, on);
    run.lse_nan = pat_count_nan(lse.data, POSATTN_DTYPE_F32, ln);
    run.untouched = run.out_nan == on && run.lse_nan == ln;
    if (run.status == POSATTN_STATUS_SUCCESS) {
      if (out64) pat_gather(desc, &to, rows, desc->q_heads, desc->head_dim, out64);
      if (lse64)
        for (int64_t i = 0; i < ln; ++i) lse64[i] = ((const float *)lse.data)[i];
    }
  }
  pat_buf_free(&out);
  pat_buf_free(&lse);
  pat_buf_free(&ws);
  return run;
}

/* ---- FIRE internals ---------------------------------------------------------------------- */
struct pat_fire_segs {
  pa_fire_segments s;
};

posattn_status pat_fire_segments_build(const posattn_fire_params *fire, int32_t q_heads,
                                       pat_fire_segs **out, char *msg, size_t msg_size) {
  *out = (pat_fire_segs *)calloc(1, sizeof(pat_fire_segs));
  if (!*out) return POSATTN_STATUS_ALLOC_FAILED;
  posattn_status st = pa_fire_segments_build(fire, q_heads, &(*out)->s, msg, msg_size);
  if (st != POSATTN_STATUS_SUCCESS) {
    free(*out);
    *out = NULL;
  }
  return st;
}

void pat_fire_segments_free(pat_fire_segs *s) {
  if (!s) return;
  pa_fire_segments_free(&s->s);
  free(s);
}

int32_t pat_fire_segments_count(const pat_fire_segs *s) { return s->s.nseg; }
double pat_fire_segments_start(const pat_fire_segs *s, int32_t seg) { return s->s.start[seg]; }
double pat_fire_segments_eval(const pat_fire_segs *s, int32_t head, double x) {
  return pa_fire_segments_eval(&s->s, head, x);
}
double pat_fire_mlp_eval(const posattn_fire_params *fire, int32_t q_heads, int32_t head,
                         double x) {
  return pa_fire_mlp_eval(fire, q_heads, head, x);
}

/* ---- CUDA error classifier ----------------------------------------------------------------- */
int pat_cuda_error_is_sticky(int code) { return pa_cuda_error_is_sticky(code); }

posattn_status pat_cuda_error_report(char *msg, size_t msg_size, int code, int pending,
                                     const char *what, const char *detail) {
  return pa_cuda_error_report(msg, msg_size, code, POSATTN_STATUS_DEVICE_ERROR, pending, what,
                              detail);
}

void pat_context_fake_device_error(posattn_context *ctx, int code, const char *detail) {
  ctx->device_error = code;
  pa_cuda_error_report(ctx->msg, PA_MSG_SIZE, code, POSATTN_STATUS_DEVICE_ERROR, 0, "test",
                       detail);
}
