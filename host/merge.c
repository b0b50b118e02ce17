/* merge.c -- posattn_merge_states and its in-place variant (posattn.h, "Merging partial attention
 * states"): validate (host/validate.c), then run on the context's backend. The REF backend below
 * is the definition: fp64, each output rounded once. */
#include <math.h>
#include <string.h>

#include "merge.h"

void posattn_attn_state_init(posattn_attn_state *s, void *o, posattn_dtype dtype, float *lse,
                             int32_t seq, int32_t heads, int32_t head_dim) {
  if (s == NULL) return;
  memset(s, 0, sizeof *s);
  posattn_tensor_init_contiguous(&s->o, o, dtype, seq, heads, head_dim);
  s->lse = lse;
  s->lse_stride_seq = 1;
  s->lse_stride_head = seq;
  s->lse_stride_batch = (int64_t)heads * seq;
}

void posattn_merge_desc_init(posattn_merge_desc *desc) {
  if (desc != NULL) memset(desc, 0, sizeof *desc);
}

static int64_t o_index(const posattn_attn_state *s, int32_t b, int32_t t, int32_t h) {
  return b * s->o.stride_batch + t * s->o.stride_seq + h * s->o.stride_head;
}
static int64_t lse_index(const posattn_attn_state *s, int32_t b, int32_t t, int32_t h) {
  return b * s->lse_stride_batch + t * s->lse_stride_seq + h * s->lse_stride_head;
}

/* Whether row (b, t, h) is poisoned (posattn.h: a NaN or +inf LSE, or a non-finite O element of a
 * non-empty state); lse[] receives the natural-log LSEs. */
static int row_poisoned(const pa_merge_problem *p, int32_t b, int32_t t, int32_t h, double *lse) {
  const double to_nat = p->base2 ? log(2.0) : 1.0;
  int bad = 0;
  for (int32_t s = 0; s < p->n; ++s) {
    const posattn_attn_state *in = &p->in[s];
    lse[s] = (double)in->lse[lse_index(in, b, t, h)] * to_nat;
    if (isnan(lse[s]) || lse[s] == INFINITY) bad = 1;
    if (lse[s] == -INFINITY) continue;
    for (int32_t c = 0; c < p->desc->head_dim; ++c)
      if (!isfinite(pa_load(in->o.data, in->o.dtype, o_index(in, b, t, h) + c))) bad = 1;
  }
  return bad;
}

/* One row at a time in fp64, its inputs read before its outputs are written (in place). */
static posattn_status ref_merge(const pa_merge_problem *p) {
  const posattn_merge_desc *D = p->desc;
  double lse[POSATTN_MERGE_MAX_STATES], w[POSATTN_MERGE_MAX_STATES];
  for (int32_t b = 0; b < D->batch; ++b)
    for (int32_t t = 0; t < D->seq_len; ++t)
      for (int32_t h = 0; h < D->heads; ++h) {
        const int poisoned = row_poisoned(p, b, t, h, lse);
        double M = -INFINITY, L = 0;
        for (int32_t s = 0; s < p->n; ++s) M = lse[s] > M ? lse[s] : M;
        if (M > -INFINITY)
          for (int32_t s = 0; s < p->n; ++s) L += w[s] = exp(lse[s] - M); /* -inf: 0 */
        const int64_t oo = o_index(p->out, b, t, h);
        for (int32_t c = 0; c < D->head_dim; ++c) {
          double o = 0;
          for (int32_t s = 0; s < p->n && L > 0; ++s)
            if (lse[s] > -INFINITY)
              o += w[s] / L *
                   pa_load(p->in[s].o.data, p->in[s].o.dtype, o_index(&p->in[s], b, t, h) + c);
          pa_store(p->out->o.data, p->out->o.dtype, oo + c, poisoned ? NAN : o);
        }
        if (p->out->lse != NULL) {
          const double out = poisoned ? NAN
                             : L > 0  ? (M + log(L)) / (p->base2 ? log(2.0) : 1.0)
                                      : -INFINITY;
          p->out->lse[lse_index(p->out, b, t, h)] = (float)out;
        }
      }
  return POSATTN_STATUS_SUCCESS;
}

static posattn_status merge_run(posattn_context *ctx, const posattn_merge_desc *desc, int32_t n,
                                const posattn_attn_state *in, const posattn_attn_state *out,
                                int in_place) {
  if (ctx == NULL) return POSATTN_STATUS_NULL_POINTER;
  pa_ctx_enter(ctx);
  pa_merge_problem p;
  PA_TRY(pa_validate_merge(ctx->msg, PA_MSG_SIZE, desc, n, in, out, in_place, &p));
  posattn_status st = POSATTN_STATUS_INTERNAL;
  switch (ctx->backend) {
    case POSATTN_BACKEND_REF: st = ref_merge(&p); break;
    case POSATTN_BACKEND_EMU: st = pa_merge_emu(ctx, &p); break;
    case POSATTN_BACKEND_CUDA:
#if defined(POSATTN_WITH_CUDA)
      st = pa_cuda_merge(ctx, &p);
#else
      st = pa_cuda_available(ctx->device, ctx->msg, PA_MSG_SIZE);
#endif
      break;
    case POSATTN_BACKEND_AUTO:
      return PA_CTX_FAIL(ctx, POSATTN_STATUS_INTERNAL, "context holds backend AUTO");
  }
  if (st == POSATTN_STATUS_SUCCESS) ctx->msg[0] = '\0';
  return st;
}

posattn_status posattn_merge_states(posattn_context *ctx, const posattn_merge_desc *desc,
                                    int32_t num_states, const posattn_attn_state *states,
                                    const posattn_attn_state *out) {
  return merge_run(ctx, desc, num_states, states, out, 0);
}

posattn_status posattn_merge_states_inplace(posattn_context *ctx, const posattn_merge_desc *desc,
                                            int32_t num_states, const posattn_attn_state *states) {
  return merge_run(ctx, desc, num_states, states, states, 1);
}
