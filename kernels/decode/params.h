/* params.h -- the parameter blocks of the decode kernels (decode.cu): the split-KV attention
 * kernel, the combine kernel and the cache-append kernel. Filled on the host in one place
 * (kernels/decode/dispatch.cpp); every pointer is backend memory: the caller's q / pools / new
 * K-V, and copies of the host index arrays and PE tables in the workspace.
 *
 * The positional encoding travels as a pa_prefill_params (`pe`) so that the PE device policies of
 * kernels/pe/ (rope.cuh, bias.cuh) serve decode unchanged: its rotary fields, tables, scale,
 * softcap and pe_kind are filled exactly as for prefill; its tensor and shape fields are unused. */
#ifndef POSATTN_DECODE_PARAMS_H
#define POSATTN_DECODE_PARAMS_H

#include <stdint.h>

#include "prefill/params.h"

typedef struct pa_decode_params {
  pa_prefill_params pe;             /* PE tables, scale, softcap (see above) */

  PA_PF_PTR(const unsigned char) q; /* [batch, n, hq, d], dtype q_dtype */
  int64_t q_sb, q_ss, q_sh;
  int32_t q_dtype;                  /* posattn_dtype (read with a run-time switch) */
  PA_PF_PTR(const unsigned char) k_pages, v_pages; /* [num_pages, page_size, hkv, d], cache dtype */
  int64_t stride_page, stride_slot, stride_head;
  PA_PF_PTR(const float) k_scale, v_scale; /* FP8 caches: [1] or [hkv]; NULL otherwise */
  int32_t scale_per_head;

  int32_t batch, hq, hkv, group, d, n; /* n = query tokens per sequence */
  int32_t page_size, mpps;             /* tokens per page, block-table row length */
  int64_t capacity;                    /* mpps * page_size: kv_pos row length */
  PA_PF_PTR(const int32_t) cache_lens;  /* [batch] */
  PA_PF_PTR(const int32_t) block_table; /* [batch][mpps] */
  PA_PF_PTR(const int32_t) q_pos;       /* [batch][n]; NULL = len - n + t */
  PA_PF_PTR(const int32_t) kv_pos;      /* [batch][capacity]; NULL = j */
  PA_PF_PTR(const float) sinks;         /* [hq]; NULL = none */
  int32_t causal, window_left;
  int32_t rotate_k;                     /* rotate K at its position (ROPE, un-rotated cache) */

  int32_t num_splits, split_pages;      /* split s covers pages [s*split_pages, (s+1)*split_pages) */
  int32_t row_chunks;                   /* blocks per kv head: ceil(group * n / rows per block) */
  int32_t mma;                          /* split kernel: decode_mma (tensor cores) with this many
                                           query rows per block, or 0: decode_split */
  PA_PF_PTR(float) part_o;              /* [num_splits][batch][n][hq][d] normalised partial outputs */
  PA_PF_PTR(float) part_lse;            /* [num_splits][batch][n][hq]; -inf = the split saw nothing */

  PA_PF_PTR(unsigned char) out;         /* [batch, n, hq, d] of out_dtype */
  int64_t o_sb, o_ss, o_sh;
  int32_t out_dtype;
  PA_PF_PTR(float) lse;                 /* [batch][hq][n]; NULL = not wanted */
} pa_decode_params;

typedef struct pa_append_params {
  pa_prefill_params pe;                 /* rotary fields (rotary_dim 0: store K as given) */
  PA_PF_PTR(const unsigned char) k, v;  /* [batch, n, hkv, d] of in_dtype */
  int64_t k_sb, k_ss, k_sh, v_sb, v_ss, v_sh;
  int32_t in_dtype;
  PA_PF_PTR(unsigned char) k_pages, v_pages;
  int64_t stride_page, stride_slot, stride_head;
  PA_PF_PTR(const float) k_scale, v_scale; /* FP8 caches: [1] or [hkv]; NULL otherwise */
  int32_t scale_per_head;
  int32_t batch, n, hkv, d, page_size, mpps;
  PA_PF_PTR(const int32_t) new_lens;    /* [batch]; NULL = n */
  PA_PF_PTR(const int32_t) cache_lens;  /* [batch] first write index */
  PA_PF_PTR(const int32_t) block_table; /* [batch][mpps] */
  PA_PF_PTR(const int32_t) positions;   /* [batch][n]; NULL = cache index */
} pa_append_params;

#endif /* POSATTN_DECODE_PARAMS_H */
