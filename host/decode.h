/* decode.h -- internal interfaces of decode and cache append (issue 5), shared by host/decode.c
 * (entry points), host/validate.c (the "decode and cache append" section), host/ref_decode.c (REF)
 * kernels/decode/dispatch.cpp (the chooser, EMU) and kernels/decode/cuda_decode.cu (CUDA). C11,
 * also valid C++. */
#ifndef POSATTN_DECODE_H
#define POSATTN_DECODE_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A validated decode call. Host arrays are read through desc; tensors are NULL for the
 * supported / workspace queries. */
typedef struct pa_decode_problem {
  const posattn_decode_desc *desc;
  const posattn_kv_cache *cache;
  int32_t batch, hq, hkv, group, d, n; /* n = num_q_tokens */
  int32_t page_size, num_pages, mpps;  /* mpps = max_pages_per_seq */
  int64_t capacity;                    /* mpps * page_size: row length of kv_positions */
  double scale;                        /* effective softmax scale */
  int32_t rotary_dim;                  /* ROPE: effective rotary dim, else 0 */
  int rotate_k;                        /* ROPE on an un-rotated cache: rotate K at pk */
  int32_t max_len;                     /* largest cache_lens[b] */
  int64_t total_len;                   /* sum of cache_lens */
  int32_t max_q_pos, max_kv_pos;       /* largest position in the call (-1: none) */
  int32_t min_q_pos;                   /* smallest query position (defaults may be negative) */
  posattn_dtype q_dtype, out_dtype;
  const posattn_tensor *q, *out;
  float *lse;
} pa_decode_problem;

static inline int32_t pa_dec_len(const pa_decode_problem *p, int32_t b) {
  return p->desc->cache_lens[b];
}
static inline int64_t pa_dec_q_pos(const pa_decode_problem *p, int32_t b, int32_t t) {
  const int32_t *qp = p->desc->q_positions;
  return qp ? qp[(int64_t)b * p->n + t] : (int64_t)pa_dec_len(p, b) - p->n + t;
}
static inline int64_t pa_dec_kv_pos(const pa_decode_problem *p, int32_t b, int32_t j) {
  const int32_t *kp = p->desc->kv_positions;
  return kp ? kp[(int64_t)b * p->capacity + j] : j;
}
/* element offset of cache token j of sequence b, kv head h, feature 0, in either page pool */
static inline int64_t pa_dec_kv_offset(const pa_decode_problem *p, int32_t b, int32_t j,
                                       int32_t h) {
  const posattn_kv_cache *c = p->cache;
  const int64_t page = p->desc->block_table[(int64_t)b * p->mpps + j / p->page_size];
  return page * c->stride_page + (int64_t)(j % p->page_size) * c->stride_slot +
         (int64_t)h * c->stride_head;
}
/* Dequantisation scale of a pool (v = 0: K, 1: V) for kv head h: 1 unless the cache is FP8
 * (posattn_kv_cache.k_scale / v_scale; backend memory, host memory on REF). */
static inline double pa_cache_scale(const posattn_kv_cache *c, int v, int32_t h) {
  const float *s = v ? c->v_scale : c->k_scale;
  if (s == NULL) return 1.0;
  return (double)s[c->scale_kind == POSATTN_KV_SCALE_PER_HEAD ? h : 0];
}
/* The visibility rule of posattn_decode_desc: query t of sequence b, cache token j. */
static inline int pa_dec_visible(const pa_decode_problem *p, int32_t b, int32_t t, int32_t j) {
  const int64_t ia = (int64_t)pa_dec_len(p, b) - p->n + t;
  if (p->desc->causal && j > ia) return 0;
  if (p->desc->window_left >= 0 && j < ia - p->desc->window_left) return 0;
  return 1;
}

/* A validated append call. */
typedef struct pa_append_problem {
  const posattn_cache_append_desc *desc;
  const posattn_kv_cache *cache;
  int32_t batch, n, hkv, d, page_size, mpps;
  int32_t rotary_dim; /* > 0 when K is rotated before it is stored */
  int32_t max_pos;    /* largest position written (-1: none) */
  posattn_dtype in_dtype;
  const posattn_tensor *k, *v;
} pa_append_problem;

static inline int32_t pa_app_count(const pa_append_problem *p, int32_t b) {
  return p->desc->new_lens ? p->desc->new_lens[b] : p->n;
}
static inline int64_t pa_app_pos(const pa_append_problem *p, int32_t b, int32_t t) {
  const int32_t *pos = p->desc->positions;
  return pos ? pos[(int64_t)b * p->n + t] : (int64_t)p->desc->cache_lens[b] + t;
}
static inline int64_t pa_app_offset(const pa_append_problem *p, int32_t b, int32_t t,
                                    int32_t h) {
  const posattn_kv_cache *c = p->cache;
  const int64_t j = (int64_t)p->desc->cache_lens[b] + t;
  const int64_t page = p->desc->block_table[(int64_t)b * p->mpps + j / p->page_size];
  return page * c->stride_page + (j % p->page_size) * c->stride_slot + (int64_t)h * c->stride_head;
}

/* ---- validation (host/validate.c, section "decode and cache append") ----------------------- */
/* Everything about desc and cache; the tensors too when q/out (or k_new/v_new) are given. */
posattn_status pa_validate_decode(char *msg, size_t msg_size, const posattn_decode_desc *desc,
                                  const posattn_kv_cache *cache, posattn_dtype q_dtype,
                                  posattn_dtype out_dtype, const posattn_tensor *q,
                                  const posattn_tensor *out, float *lse, pa_decode_problem *prob);
posattn_status pa_validate_decode_workspace(char *msg, size_t msg_size,
                                            const pa_decode_problem *p, const void *ws,
                                            size_t ws_bytes, size_t required);
posattn_status pa_validate_append(char *msg, size_t msg_size, const posattn_cache_append_desc *desc,
                                  const posattn_kv_cache *cache, posattn_dtype in_dtype,
                                  const posattn_tensor *k_new, const posattn_tensor *v_new,
                                  pa_append_problem *prob);
posattn_status pa_validate_append_workspace(char *msg, size_t msg_size,
                                            const pa_append_problem *p, const void *ws,
                                            size_t ws_bytes, size_t required);

/* ---- REF (host/ref_decode.c), fp64 ---------------------------------------------------------- */
/* One query row of paged attention in fp64, shared by REF decode and the REF plan run
 * (host/ref_paged.c) so that both compute exactly the same thing. The settings of the call: */
typedef struct pa_ref_paged_cfg {
  const posattn_kv_cache *cache; /* pools, dtype, strides, FP8 scales */
  int32_t d, hq, group, page_size;
  double scale;                  /* effective softmax scale */
  float softcap;
  int32_t causal, window_left;
  const posattn_pe *pe;          /* validated; its arrays readable */
  int32_t rotary_dim;            /* ROPE: effective rotary dim (q is rotated), else 0 */
  int rotate_k;                  /* ROPE on an un-rotated cache: K rotated at its position */
  const double *inv_freq;        /* [rotary_dim/2] when rotary_dim > 0 */
  double attn_factor;
  const float *sink_logits;      /* [hq] or NULL */
} pa_ref_paged_cfg;
/* One sequence of the cache: its block-table row, its kv positions row (NULL: j) and length. */
typedef struct pa_ref_paged_seq {
  const int32_t *block_row;
  const int32_t *kv_pos;
  int32_t len;
} pa_ref_paged_seq;
/* Query row (head h) aligned with cache index ia, at position pq: q[d] holds the widened,
 * un-rotated query and is rotated in place; k[d], acc[d] are scratch. Two passes over the visible
 * tokens (maximum and NaN rule, then the weighted sum), the logits recomputed rather than stored,
 * so the scratch does not grow with the cache. Writes out[ooff .. ooff + d) (rounded once to
 * out_dtype) and *lse (if not NULL). */
void pa_ref_paged_row(const pa_ref_paged_cfg *cfg, const pa_ref_paged_seq *seq, int64_t ia,
                      int64_t pq, int32_t h, double *q, double *k, double *acc, void *out,
                      posattn_dtype out_dtype, int64_t ooff, float *lse);

size_t pa_ref_decode_workspace_size(const pa_decode_problem *p);
posattn_status pa_ref_decode(posattn_context *ctx, const pa_decode_problem *p, void *ws,
                             size_t ws_bytes);
size_t pa_ref_append_workspace_size(const pa_append_problem *p);
posattn_status pa_ref_append(posattn_context *ctx, const pa_append_problem *p, void *ws,
                             size_t ws_bytes);

/* ---- the decode chooser and EMU runs (kernels/decode/dispatch.cpp) --------------------------
 * pa_decode_choose: whether the kernels serve p (NOT_SUPPORTED says why), the split count
 * (desc->num_splits, or the heuristic for a device of `sms` SMs) and the workspace bytes
 * (stage_out: EMU stages out/lse). pa_decode_emu_choose: the same for EMU (nominal SM count). */
posattn_status pa_decode_choose(const pa_decode_problem *p, int stage_out, int sms,
                                int32_t *num_splits, size_t *workspace_bytes, char *msg,
                                size_t msg_size);
posattn_status pa_decode_emu_choose(const pa_decode_problem *p, size_t *workspace_bytes,
                                    char *msg, size_t msg_size);
/* The automatic split count of pa_decode_choose (num_splits = 0) for batch x kv_heads groups of
 * rows_per_kv_head query rows (group * num_q_tokens), the longest cache max_len and a device of
 * `sms` SMs, for blocks of decode_split's 16 rows (the paged plan's chunks; posattn-bench asks
 * pa_decode_choose, which sizes the splits per kernel). */
int32_t pa_decode_auto_splits(int32_t batch, int32_t kv_heads, int32_t rows_per_kv_head,
                              int32_t max_len, int sms);
/* SM count that sizes the automatic split count on the CPU backends (H100 SXM has 132 SMs). */
enum { PA_DECODE_NOMINAL_SMS = 132 };
posattn_status pa_decode_emu_run(posattn_context *ctx, const pa_decode_problem *p, void *ws,
                                 size_t ws_bytes);
posattn_status pa_append_choose(const pa_append_problem *p, size_t *workspace_bytes, char *msg,
                                size_t msg_size);
posattn_status pa_append_emu_run(posattn_context *ctx, const pa_append_problem *p, void *ws,
                                 size_t ws_bytes);

/* ---- CUDA backend (kernels/decode/cuda_decode.cu), defined only with POSATTN_WITH_CUDA -------
 * pa_cuda_decode_choose: pa_decode_choose with stage_out = 0 and the SM count of `device` (a
 * failed query leaves its cudaError_t in *device_error when that is not NULL);
 * pa_cuda_decode / pa_cuda_append: asynchronous on ctx->stream, index arrays and PE tables copied
 * into the device workspace; CUDA errors go through the classifier (internal.h: DEVICE_ERROR,
 * DEVICE_LOST, ALLOC_FAILED) with the CUDA message. */
posattn_status pa_cuda_decode_choose(int device, const pa_decode_problem *p, size_t *workspace_bytes,
                                     int *device_error, char *msg, size_t msg_size);
posattn_status pa_cuda_decode(posattn_context *ctx, const pa_decode_problem *p, void *ws,
                              size_t ws_bytes);
posattn_status pa_cuda_append(posattn_context *ctx, const pa_append_problem *p, void *ws,
                              size_t ws_bytes);

#ifdef __cplusplus
}
#endif
#endif /* POSATTN_DECODE_H */
