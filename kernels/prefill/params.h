/* params.h -- the parameter block of every prefill (attention forward) kernel.
 *
 * One plain struct, passed by value to the kernel. It holds no templates and no methods, only
 * sizes, element strides and device-visible pointers, so the SIMT kernel, the tensor-core kernel
 * and a later Hopper kernel share it, and the host fills it in one place
 * (kernels/prefill/dispatch.cpp through tables.h).
 *
 * Pointers: PA_PF_PTR(T) is pa::gptr<T> in kernel code (a raw T* under nvcc, a checked pointer under
 * the emulator) and T* in C. Every pointer points into backend memory: the tensors are the
 * caller's (or the EMU staging area), the index arrays and PE tables are copies in the workspace
 * built on the host by pa_prefill_tables_build() (tables.h). A NULL pointer means "absent".
 *
 * Tensor data pointers are untyped bytes: the element type is the kernel's template argument
 * (in_dtype for q/k/v, out_dtype for out); kernels cast with pa::ptr_cast. All strides are in
 * ELEMENTS. Element (b, t, h, f) of q lives at q + b*q_sb + t*q_ss + h*q_sh + f for dense problems;
 * for varlen (cu_q != NULL) token t of sequence b is packed token cu_q[b] + t and *_sb is unused.
 *
 * Every PE table is fp32, computed in fp64 on the host from engineer B's helpers (host/pe_*.c);
 * kernels hold no PE constant of their own. */
#ifndef POSATTN_PREFILL_PARAMS_H
#define POSATTN_PREFILL_PARAMS_H

#include <stdint.h>

#if defined(__cplusplus) && !defined(PA_PF_RAW_POINTERS)
#include "device/device.cuh"
#define PA_PF_PTR(T) pa::gptr<T>
#else /* C, and C++ host code that fills parameters for nvcc kernels (PA_PF_RAW_POINTERS:
         kernels/paged/cuda_run.cpp): the layout of nvcc's gptr = T* */
#define PA_PF_PTR(T) T *
#endif

/* Mask kinds are runtime fields; these bits summarise them for kernels that specialise. */
enum {
  PA_PF_MASK_CAUSAL = 1,  /* causal != 0 */
  PA_PF_MASK_WINDOW = 2,  /* window_left >= 0 or window_right >= 0 */
  PA_PF_MASK_DOCS = 4     /* doc_ids != NULL */
};

typedef struct pa_prefill_params {
  /* ---- tensors ---- */
  PA_PF_PTR(const unsigned char) q; /* [batch, q_len, hq, d] or packed [total_q, hq, d]; in_dtype */
  PA_PF_PTR(const unsigned char) k; /* [batch, kv_len, hkv, d] or packed; in_dtype */
  PA_PF_PTR(const unsigned char) v; /* like k */
  PA_PF_PTR(unsigned char) out;     /* like q; out_dtype */
  PA_PF_PTR(float) lse;             /* NULL or fp32 natural-log LSE: dense [batch][hq][q_len], varlen [hq][total_q] */
  int64_t q_sb, q_ss, q_sh;         /* q strides (elements): batch, token, head */
  int64_t k_sb, k_ss, k_sh;         /* k strides */
  int64_t v_sb, v_ss, v_sh;         /* v strides */
  int64_t o_sb, o_ss, o_sh;         /* out strides */
  int32_t in_dtype, out_dtype;      /* posattn_dtype of q/k/v and out (the kernel instance must match) */

  /* ---- shape ---- */
  int32_t batch;          /* sequences */
  int32_t hq, hkv, group; /* query heads, kv heads, hq / hkv (q head h reads kv head h / group) */
  int32_t d;              /* head dim */
  int32_t q_len, kv_len;  /* dense lengths; varlen: the maximum lengths (grid sizing) */
  int64_t total_q, total_kv; /* tokens over the batch (dense: batch * len) */

  /* ---- sequences, positions, documents (int32 copies in the workspace) ---- */
  PA_PF_PTR(const int32_t) cu_q;    /* varlen: [batch+1] query token offsets; NULL = dense */
  PA_PF_PTR(const int32_t) cu_kv;   /* varlen: [batch+1] key token offsets; NULL = dense */
  PA_PF_PTR(const int32_t) q_pos;   /* [total_q] position ids; NULL = i + Lk - Lq */
  PA_PF_PTR(const int32_t) kv_pos;  /* [total_kv] position ids; NULL = j */
  PA_PF_PTR(const int32_t) doc_ids; /* [total_q] document ids (self-attention), non-decreasing per sequence; NULL = off */
  int32_t num_anchor;               /* first num_anchor tokens of each sequence are visible to every query of it */

  /* ---- mask and logit ---- */
  int32_t causal;        /* 1: key j visible only when j <= i + Lk - Lq (bottom-right) */
  int32_t window_left;   /* -1 = unbounded; else j >= i + Lk - Lq - window_left */
  int32_t window_right;  /* -1 = unbounded; else j <= i + Lk - Lq + window_right */
  int32_t mask_bits;     /* PA_PF_MASK_* summary of the three fields above and doc_ids */
  float scale;           /* softmax scale applied to q.k */
  float softcap;         /* 0 = off; else s = softcap * tanh(s / softcap) before the bias */

  /* ---- positional encoding: kind ---- */
  int32_t pe_kind;       /* posattn_pe_kind */

  /* ---- transform q/k: RoPE and the rotary part of xPos (pe-spec §1-2, §6) ---- */
  int32_t rotary_dim;    /* rotated features [rope_offset, rope_offset + rotary_dim); 0 when the PE does not rotate */
  int32_t rope_offset;   /* first rotated feature (DeepSeek MLA: the last 64 of 192) */
  int32_t rope_gptj;     /* 1: pairs (2i, 2i+1); 0: NeoX pairs (i, i + rotary_dim/2) */
  int32_t rope_exact;    /* 1: EXACT angles from the two tables below; 0: FAST float(p) * inv_freq */
  float rope_attn_factor;             /* multiplies the rotated features (cos and sin) */
  PA_PF_PTR(const float) inv_freq;    /* [rotary_dim/2] scaled inverse frequencies (FAST) */
  int32_t exact_shift;                /* EXACT: p = hi * 2^exact_shift + lo */
  int32_t exact_hi_count;             /* EXACT: rows of exact_hi; hi = p >> shift must be < this */
  PA_PF_PTR(const float) exact_lo;    /* EXACT: [2^shift][rotary_dim/2][2] cos, sin of lo * w_i */
  PA_PF_PTR(const float) exact_hi;    /* EXACT: [exact_hi_count][rotary_dim/2][2] cos, sin of hi * 2^shift * w_i */
  PA_PF_PTR(const float) xpos_log2_decay; /* xPos: [rotary_dim/2] log2(zeta_i) / scale_base: pair i of the
                                             logit is weighted by exp2((pq - pk) * this) */
  int32_t k_prerotated;  /* 1: k already holds the RoPE-rotated keys (the pre-pass, rope_k.cu); the
                            main kernel rotates only Q. Default 0: the kernel rotates K itself */
  PA_PF_PTR(unsigned char) k_rot; /* pre-pass output, NULL = no pre-pass: rotated K in in_dtype,
                                     packed [total_kv][hkv][d] in the workspace */

  /* ---- bias the logit (pe-spec §3, §4, §7, §8.1) ---- */
  PA_PF_PTR(const float) alibi_slopes; /* ALiBi: [hq] slopes m_h; bias -m_h * |pq - pk| */
  int32_t fire_nseg;                   /* FIRE: segments of the compiled MLP over x >= 0 (last unbounded) */
  PA_PF_PTR(const float) fire_start;   /* FIRE: [fire_nseg + 1] segment starts, increasing, start[0] = 0,
                                          start[fire_nseg] = +inf */
  int32_t fire_cells;                  /* FIRE: cells of the x grid (cell fire_cells holds x beyond it) */
  float fire_cell_scale;               /* FIRE: cell of x = min(int(x * this), fire_cells) */
  PA_PF_PTR(const int32_t) fire_cell_seg; /* FIRE: [fire_cells + 1] a segment <= that of every x of the cell */
  int32_t fire_steps;                  /* FIRE: forward steps from fire_cell_seg that reach x's segment */
  uint32_t fire_psi_max;               /* FIRE: distances 0 .. this read psi from fire_psi */
  PA_PF_PTR(const float) fire_psi;     /* FIRE: [fire_psi_max + 1] psi(d) = log1p(c d) (fp64 on the host) */
  PA_PF_PTR(const float) fire_slope;   /* FIRE: [hq][fire_nseg] bias = slope * x + icpt on the segment */
  PA_PF_PTR(const float) fire_icpt;    /* FIRE: [hq][fire_nseg] */
  float fire_c;                        /* FIRE: |c| of psi(t) = log(1 + |c| t) */
  float fire_L;                        /* FIRE: normaliser threshold L */
  float fire_eps;                      /* FIRE: x = psi(|pq - pk|) / (psi(max(L, pq)) + eps) */
  float fire_bias_bound;               /* FIRE: >= |bias| of every pair of positions in token order
                                          (|pq - pk| <= q_len + kv_len); +inf when unbounded in fp32 */
  int32_t t5_bidirectional;            /* T5: 1 = keys after the query use the upper half of the buckets (informative: t5_bucket encodes it) */
  int32_t t5_dir_buckets;              /* T5: buckets per direction (num_buckets, halved when bidirectional) */
  int32_t t5_nmax;                     /* T5: distances >= this share the bucket of this distance */
  PA_PF_PTR(const int32_t) t5_bucket;  /* T5: [2 (t5_nmax + 1)] bucket of rel = -n, then of rel = +n, n = 0..t5_nmax */
  PA_PF_PTR(const float) t5_table;     /* T5: [num_buckets][hq] learned biases */
  PA_PF_PTR(const float) kerple_a;     /* KERPLE: [hq] a_h */
  PA_PF_PTR(const float) kerple_p;     /* KERPLE: [hq] p_h */

  /* ---- sinks (read by the epilogue only) ---- */
  PA_PF_PTR(const float) sinks;        /* [hq] finite sink logits: one more softmax term e^sink
                                          without a value per row of head h; NULL = none */
} pa_prefill_params;

#endif /* POSATTN_PREFILL_PARAMS_H */
