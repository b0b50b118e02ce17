/* params.h -- the parameter blocks of the paged kernels of a plan (kernels/paged/paged.cu):
 * paged_check, paged_split or paged_split_mma (kernels/paged/paged_mma.cuh), paged_combine
 * (pa_paged_params) and paged_append
 * (pa_paged_append_params).
 *
 * Filled in two steps (kernels/paged/host.h): at plan creation a TEMPLATE with everything the
 * plan fixes (shape, masks, the PE tables and scalars through `pe`, the launch geometry); at each
 * run the per-run pointers (the caller's device arrays, pools, tensors and workspace regions) are
 * patched into a copy of the template. Nothing here is read from device memory on the host.
 *
 * Pointers are PA_PF_PTR(T): pa::gptr<T> in the kernels (a checked pointer under the emulator, T*
 * under nvcc) and T* in the CUDA backend's plain C++ host code (kernels/paged/cuda_run.cpp, which
 * defines PA_PF_RAW_POINTERS: same layout as nvcc's; one declarator per PA_PF_PTR, as T* does not
 * distribute over a declarator list). Strides are in elements. */
#ifndef POSATTN_PAGED_PARAMS_H
#define POSATTN_PAGED_PARAMS_H

#include <stdint.h>

#include "prefill/params.h"

/* Verdicts of paged_check, one int32 per sequence in the workspace (every run overwrites the
 * first `batch`): the split, combine and append kernels skip a sequence whose verdict is not OK. */
enum {
  PA_PAGED_OK = 0,
  PA_PAGED_BAD_SEQ = 1, /* a bad length, page or position of this sequence */
  PA_PAGED_BAD_RUN = 2  /* q_indptr / new_indptr is bad: the whole call writes nothing */
};

/* The sequences of a call and the plan's bounds on them: what paged_check validates and every
 * other kernel reads. `indptr` is a run's q_indptr or an append's new_indptr, `pos` a run's
 * q_positions or an append's positions. */
typedef struct pa_paged_seqs {
  PA_PF_PTR(const int32_t) indptr;        /* [batch + 1] */
  PA_PF_PTR(const int32_t) kv_lens;       /* [batch] */
  PA_PF_PTR(const int32_t) block_table;   /* [batch][bt_stride] */
  int64_t bt_stride;
  PA_PF_PTR(const int32_t) pos;           /* [rows]; NULL = L_b - n_b + t */
  PA_PF_PTR(const int32_t) kv_pos;        /* [batch][kvp_stride]; NULL = j (runs only) */
  int64_t kvp_stride;
  int32_t batch;
  PA_PF_PTR(int32_t) err;                 /* the workspace's error record (host/plan.h), 64 int32 */
  PA_PF_PTR(int32_t) verdict;             /* [max_batch] in the workspace */
  /* fixed by the plan */
  int32_t page_size, num_pages, max_q_tokens;
  int64_t capacity;                       /* max_pages_per_seq * page_size */
  int32_t max_position;
  int32_t check_pos;                      /* 1: given position arrays are read: check them */
  int32_t op;                             /* PA_RUN_OP_RUN or PA_RUN_OP_APPEND */
} pa_paged_seqs;

typedef struct pa_paged_params {
  pa_prefill_params pe; /* PE tables and scalars, scale, softcap (tensor fields unused) */
  pa_paged_seqs sq;

  /* ---- per run ---- */
  PA_PF_PTR(const unsigned char) q;       /* [rows, hq, d] of q_dtype */
  int64_t q_ss, q_sh;
  PA_PF_PTR(const unsigned char) k_pages; /* [num_pages, page_size, hkv, d] */
  PA_PF_PTR(const unsigned char) v_pages;
  PA_PF_PTR(const float) k_scale;         /* FP8 caches: [1] or [hkv]; NULL otherwise */
  PA_PF_PTR(const float) v_scale;
  PA_PF_PTR(const float) sinks;           /* [hq]; NULL = none */
  PA_PF_PTR(unsigned char) out;           /* [rows, hq, d] of out_dtype */
  int64_t o_ss, o_sh;
  PA_PF_PTR(float) lse;                   /* [rows][hq]; NULL = not wanted */
  PA_PF_PTR(float) part_o;                /* workspace: [num_splits][max_q_tokens][hq][d] */
  PA_PF_PTR(float) part_lse;              /* workspace: [num_splits][max_q_tokens][hq]; -inf = empty */

  /* ---- fixed by the plan ---- */
  int32_t q_dtype, out_dtype;             /* posattn_dtype */
  int64_t stride_page, stride_slot, stride_head;
  int32_t scale_per_head;
  int32_t hq, hkv, group, d;
  int32_t causal, window_left;
  int32_t rotate_k;                       /* ROPE on an un-rotated cache: rotate K at its position */
  int32_t num_splits;
  int32_t chunk_slots;                    /* blocks per (split, kv head) of the split kernel */
  int32_t mma_rows;                       /* paged_split_mma: query rows per block (0: paged_split) */
  int32_t combine_blocks;                 /* blocks of paged_combine (grid-stride over rows x heads) */
} pa_paged_params;

typedef struct pa_paged_append_params {
  pa_prefill_params pe; /* rotary fields when the append rotates (rotary_dim 0: store K as given) */
  pa_paged_seqs sq;

  /* ---- per append ---- */
  PA_PF_PTR(const unsigned char) k;       /* [rows, hkv, d] of in_dtype */
  PA_PF_PTR(const unsigned char) v;
  int64_t k_ss, k_sh, v_ss, v_sh;
  PA_PF_PTR(unsigned char) k_pages;
  PA_PF_PTR(unsigned char) v_pages;
  PA_PF_PTR(const float) k_scale;
  PA_PF_PTR(const float) v_scale;

  /* ---- fixed by the plan ---- */
  int32_t in_dtype;
  int64_t stride_page, stride_slot, stride_head;
  int32_t scale_per_head;
  int32_t hkv, d;
  int32_t row_blocks;                     /* blocks of paged_append (grid-stride over rows) */
} pa_paged_append_params;

#endif /* POSATTN_PAGED_PARAMS_H */
