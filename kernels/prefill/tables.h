/* tables.h -- host side of the prefill kernels: where everything a kernel reads besides q/k/v
 * lives in the workspace, and how it is built from a validated pa_problem.
 *
 * The workspace holds (each region 256-byte aligned, absent regions have size 0):
 *   [staged out, staged lse]   EMU only: the kernel writes there and the backend copies to the
 *                              caller's tensors once the launch ran clean (a fault writes nothing)
 *   tables                     int32 index arrays (cu_seqlens, positions, doc ids), the fp32
 *                              PE tables and the fp32 sink logits; built in HOST memory by
 *                              pa_prefill_tables_build() -- directly in the workspace on EMU, in
 *                              a host buffer that the CUDA backend copies to the device
 *                              workspace.
 *   [rotated K]                the RoPE key pre-pass's output (prerotate_k only): every key of
 *                              every kv head in the input dtype, packed [total_kv][hkv][d];
 *                              written on the device by the pre-pass (kernels/prefill/rope_k.cu).
 * All PE math comes from the fp64 helpers of host/pe_*.c (posattn_pe_rope_inv_freq,
 * posattn_pe_alibi_slopes, pa_fire_segments_build, posattn_pe_t5_bucket, pa_xpos_log_decay); this
 * file only rounds their results to fp32 and lays them out. */
#ifndef POSATTN_PREFILL_TABLES_H
#define POSATTN_PREFILL_TABLES_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Byte offsets; table offsets are relative to the start of the tables region (tables_at). */
typedef struct pa_prefill_layout {
  size_t out, lse;          /* staged output / lse (stage_out only), from the workspace start */
  size_t tables_at;         /* start of the tables region in the workspace */
  size_t tables_bytes;      /* size of the tables region */
  size_t k_rot;             /* rotated K, relative to tables_at (after the tables region) */
  size_t n_k_rot;           /* its elements (0 = no pre-pass) */
  size_t total;             /* workspace bytes */
  /* table offsets inside the tables region; SIZE_MAX-free: a region of size 0 is absent */
  size_t cu_q, cu_kv, q_pos, kv_pos, doc_ids;
  size_t inv_freq, exact_lo, exact_hi, xpos;
  size_t alibi, fire_start, fire_slope, fire_icpt, fire_cell_seg, fire_psi, t5_bucket, t5_table,
      kerple_a, kerple_p, sinks;
  /* sizes in elements of the tables (0 = absent) */
  int64_t n_cu, n_q_pos, n_kv_pos, n_doc, n_half, n_exact_lo, n_exact_hi, n_heads_tab;
  int32_t fire_max_seg;     /* FIRE: room for this many segments (mlp_width + 1) */
  int32_t t5_dir_buckets;   /* T5: buckets per direction */
  int32_t t5_nmax;          /* T5: distances of the bucket table: 0 .. t5_nmax */
  int32_t fire_psi_max;     /* FIRE: distances of the psi table: 0 .. fire_psi_max */
  int32_t exact_shift;      /* EXACT: lo covers [0, 2^exact_shift) */
  int32_t exact_hi_count;   /* EXACT: rows of the hi table */
  int32_t stage_out;        /* out/lse are staged in the workspace */
} pa_prefill_layout;

/* Values the kernel needs that the tables build computes. */
typedef struct pa_prefill_scalars {
  float rope_attn_factor; /* 1 when the PE does not rotate */
  int32_t fire_nseg;      /* segments actually built */
  int32_t fire_cells;     /* FIRE: cells of the x grid (see params.h) */
  float fire_cell_scale;
  int32_t fire_steps;
  float fire_bias_bound;  /* FIRE: a bound on |bias| with positions in token order (params.h) */
} pa_prefill_scalars;

/* Workspace layout for p. stage_out = 1 for EMU; prerotate_k = 1 reserves the rotated-K region
 * (pa_prefill_prerotates_k). Never fails for a validated problem except on size overflow
 * (BAD_SIZE). */
posattn_status pa_prefill_layout_make(const pa_problem *p, int stage_out, int prerotate_k,
                                      pa_prefill_layout *L, char *msg, size_t msg_size);

/* Writes the tables region of L into `tables` (host memory, L->tables_bytes bytes). */
posattn_status pa_prefill_tables_build(const pa_problem *p, const pa_prefill_layout *L,
                                       void *tables, pa_prefill_scalars *sc, char *msg,
                                       size_t msg_size);

#ifdef __cplusplus
}
#endif

#ifdef __cplusplus
#include "prefill/params.h"

/* Elements a kernel may touch in t, a [batch, seq, heads, d] (or packed) tensor of p with
 * tokens_per_batch rows per batch (total_tokens when packed): its largest offset + 1. */
inline size_t pa_prefill_span(const pa_problem *p, const posattn_tensor *t, int64_t tokens_per_batch,
                              int64_t total_tokens, int32_t heads) {
  if (p->varlen) {
    if (total_tokens == 0) return 0;
    return size_t((total_tokens - 1) * t->stride_seq + int64_t(heads - 1) * t->stride_head + p->d);
  }
  return size_t(int64_t(p->batch - 1) * t->stride_batch + (tokens_per_batch - 1) * t->stride_seq +
                int64_t(heads - 1) * t->stride_head + p->d);
}

/* Fills the kernel parameters for p. `tables` is the tables region as the KERNEL sees it (device
 * memory on CUDA; the workspace on EMU); q/k/v/out/lse as the kernel sees them; out strides are
 * the given ones (EMU: the contiguous staging area). Header-inline because gptr differs between
 * the nvcc and the emulator builds. */
inline void pa_prefill_params_fill(pa_prefill_params &k, const pa_problem *p,
                                   const pa_prefill_layout &L, const pa_prefill_scalars &sc,
                                   unsigned char *tables, const void *q, size_t q_elems,
                                   const void *kk, size_t k_elems, const void *v, size_t v_elems,
                                   void *out, size_t out_elems, int64_t o_sb, int64_t o_ss,
                                   int64_t o_sh, float *lse) {
  const posattn_attention_desc *D = p->desc;
  const size_t ein = posattn_dtype_size(p->in_dtype), eout = posattn_dtype_size(p->out_dtype);
  k = pa_prefill_params{};
  k.q = pa::make_gptr(static_cast<const unsigned char *>(q), q_elems * ein, "q");
  k.k = pa::make_gptr(static_cast<const unsigned char *>(kk), k_elems * ein, "k");
  k.v = pa::make_gptr(static_cast<const unsigned char *>(v), v_elems * ein, "v");
  k.out = pa::make_gptr(static_cast<unsigned char *>(out), out_elems * eout, "out");
  k.lse = pa::make_gptr(lse, lse ? size_t(p->total_q) * size_t(p->hq) : 0, "lse");
  k.q_sb = p->q->stride_batch; k.q_ss = p->q->stride_seq; k.q_sh = p->q->stride_head;
  k.k_sb = p->k->stride_batch; k.k_ss = p->k->stride_seq; k.k_sh = p->k->stride_head;
  k.v_sb = p->v->stride_batch; k.v_ss = p->v->stride_seq; k.v_sh = p->v->stride_head;
  k.o_sb = o_sb; k.o_ss = o_ss; k.o_sh = o_sh;
  k.in_dtype = p->in_dtype; k.out_dtype = p->out_dtype;
  k.batch = p->batch; k.hq = p->hq; k.hkv = p->hkv; k.group = p->group; k.d = p->d;
  k.q_len = p->q_len; k.kv_len = p->kv_len; k.total_q = p->total_q; k.total_kv = p->total_kv;

  auto i32 = [&](size_t off, int64_t n, const char *name) {
    return pa::make_gptr(n ? reinterpret_cast<const int32_t *>(tables + off) : nullptr, size_t(n), name);
  };
  auto f32 = [&](size_t off, int64_t n, const char *name) {
    return pa::make_gptr(n ? reinterpret_cast<const float *>(tables + off) : nullptr, size_t(n), name);
  };
  k.cu_q = i32(L.cu_q, L.n_cu, "cu_seqlens_q");
  k.cu_kv = i32(L.cu_kv, L.n_cu, "cu_seqlens_kv");
  k.q_pos = i32(L.q_pos, L.n_q_pos, "q_positions");
  k.kv_pos = i32(L.kv_pos, L.n_kv_pos, "kv_positions");
  k.doc_ids = i32(L.doc_ids, L.n_doc, "doc_ids");
  k.num_anchor = D->doc_ids ? D->num_anchor_tokens : 0;

  k.causal = D->causal;
  k.window_left = D->window_left;
  k.window_right = D->window_right;
  k.mask_bits = (D->causal ? PA_PF_MASK_CAUSAL : 0) |
                (D->window_left >= 0 || D->window_right >= 0 ? PA_PF_MASK_WINDOW : 0) |
                (D->doc_ids ? PA_PF_MASK_DOCS : 0);
  k.scale = float(p->scale);
  k.softcap = D->softcap;

  const posattn_pe &pe = D->pe;
  k.pe_kind = pe.kind;
  const bool rotary = pe.kind == POSATTN_PE_ROPE || pe.kind == POSATTN_PE_XPOS;
  k.rotary_dim = rotary ? p->rotary_dim : 0;
  k.rope_offset = rotary ? pe.rope.rotary_offset : 0;
  k.rope_gptj = rotary && pe.rope.layout == POSATTN_ROPE_GPTJ;
  k.rope_exact = L.n_exact_lo > 0;
  k.rope_attn_factor = sc.rope_attn_factor;
  k.inv_freq = f32(L.inv_freq, rotary ? L.n_half : 0, "inv_freq");
  k.exact_shift = L.exact_shift;
  k.exact_hi_count = L.exact_hi_count;
  k.exact_lo = f32(L.exact_lo, L.n_exact_lo, "exact_lo");
  k.exact_hi = f32(L.exact_hi, L.n_exact_hi, "exact_hi");
  k.xpos_log2_decay = f32(L.xpos, pe.kind == POSATTN_PE_XPOS ? L.n_half : 0, "xpos_log2_decay");
  k.k_rot = pa::make_gptr(L.n_k_rot ? tables + L.k_rot : nullptr, L.n_k_rot * ein, "rotated k");

  const int64_t nh = L.n_heads_tab;
  k.alibi_slopes = f32(L.alibi, pe.kind == POSATTN_PE_ALIBI ? nh : 0, "alibi_slopes");
  if (pe.kind == POSATTN_PE_FIRE) {
    k.fire_nseg = sc.fire_nseg;
    k.fire_start = f32(L.fire_start, sc.fire_nseg + 1, "fire_start");
    k.fire_cells = sc.fire_cells;
    k.fire_cell_scale = sc.fire_cell_scale;
    k.fire_cell_seg = i32(L.fire_cell_seg, sc.fire_cells + 1, "fire_cell_seg");
    k.fire_steps = sc.fire_steps;
    k.fire_bias_bound = sc.fire_bias_bound;
    k.fire_psi_max = uint32_t(L.fire_psi_max);
    k.fire_psi = f32(L.fire_psi, int64_t(L.fire_psi_max) + 1, "fire_psi");
    k.fire_slope = f32(L.fire_slope, int64_t(p->hq) * sc.fire_nseg, "fire_slope");
    k.fire_icpt = f32(L.fire_icpt, int64_t(p->hq) * sc.fire_nseg, "fire_icpt");
    k.fire_c = float(pe.fire.c < 0 ? -pe.fire.c : pe.fire.c);
    k.fire_L = float(pe.fire.L);
    k.fire_eps = float(pe.fire.eps);
  }
  if (pe.kind == POSATTN_PE_T5) {
    k.t5_bidirectional = pe.t5.bidirectional;
    k.t5_dir_buckets = L.t5_dir_buckets;
    k.t5_nmax = L.t5_nmax;
    k.t5_bucket = i32(L.t5_bucket, 2 * (int64_t(L.t5_nmax) + 1), "t5_bucket");
    k.t5_table = f32(L.t5_table, int64_t(pe.t5.num_buckets) * p->hq, "t5_table");
  }
  const bool kerple = pe.kind == POSATTN_PE_KERPLE_LOG || pe.kind == POSATTN_PE_KERPLE_POWER;
  k.kerple_a = f32(L.kerple_a, kerple ? nh : 0, "kerple_a");
  k.kerple_p = f32(L.kerple_p, kerple ? nh : 0, "kerple_p");
  k.sinks = f32(L.sinks, D->sink_logits ? nh : 0, "sink_logits");
}
#endif

#endif /* POSATTN_PREFILL_TABLES_H */
