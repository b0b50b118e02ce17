// host.h -- the host side of a plan's paged kernels, shared by the EMU backend
// (kernels/paged/dispatch.cpp) and the CUDA backend (kernels/paged/cuda_run.cpp): the launch
// geometry and workspace layout fixed at creation, the PE tables built once (through the prefill
// table builder, kernels/prefill/tables.h, from a prefill-shaped view of the plan), the kernel
// parameter templates, and the per-call patch of those templates (pointers and batch only).
//
// Compiled twice: by the EMU build (PA_PF_PTR = the emulator's checked pointer, pa::make_gptr from
// the device layer) and by the CUDA backend's plain C++ file, which defines PA_PF_RAW_POINTERS
// and a pa::make_gptr that returns the raw pointer. Internal linkage only.
//
// Workspace (every region 256-byte aligned):
//   [0, PA_RUN_ERROR_BYTES)   the error record (host/plan.h)
//   verdict                   int32 [max_batch], written by paged_check every call
//   part_o                    fp32 [num_splits][max_q_tokens][q_heads][head_dim]
//   part_lse                  fp32 [num_splits][max_q_tokens][q_heads]
#ifndef POSATTN_PAGED_HOST_H
#define POSATTN_PAGED_HOST_H

#include <cstdint>
#include <cstring>

#include <cstdlib>

#include "decode.h"
#include "decode/mma_geometry.h"
#include "paged/config.h"
#include "paged/params.h"
#include "plan.h"
#include "prefill/tables.h"

namespace {

// The plan's PE as a prefill problem for the table builder. Given positions are checked against
// [0, max_position]; default ones are not (as REF) and reach |L_b - n_b + t| <= max_q_tokens
// (queries before the cache start) and j <= capacity - 1 (keys, and tokens an append rotates), so
// the tables (EXACT angles; FIRE's and T5's distance tables) cover |position| up to the largest
// of the three. The RoPE length (LongRoPE's factor choice, DYNAMIC_NTK) stays max_position + 1,
// as REF's: the largest position is max_position, and the table builder's coverage of negative
// default positions (q_len - kv_len, as for decode) carries the rest.
inline int32_t paged_table_reach(const posattn_plan *pl) {
  int64_t m = pl->max_position;
  if (pl->capacity - 1 > m) m = pl->capacity - 1;
  if (pl->desc.max_q_tokens > m) m = pl->desc.max_q_tokens;
  return m > INT32_MAX - 1 ? INT32_MAX - 1 : int32_t(m);
}
struct PagedPeView {
  posattn_attention_desc desc;
  pa_problem prob;
  explicit PagedPeView(const posattn_plan *pl) {
    const posattn_plan_desc &D = pl->desc;
    posattn_attention_desc_init(&desc);
    desc.batch = 1;
    desc.q_heads = pl->hq;
    desc.kv_heads = pl->hkv;
    desc.head_dim = pl->d;
    desc.pe = D.pe;
    desc.softcap = D.softcap;
    std::memset(&prob, 0, sizeof prob);
    prob.desc = &desc;
    prob.batch = 1;
    prob.hq = pl->hq;
    prob.hkv = pl->hkv;
    prob.d = pl->d;
    prob.group = pl->group;
    prob.q_len = paged_table_reach(pl) + 1;
    prob.kv_len = 1;  // q_len - kv_len: the |position| the tables must cover
    prob.total_q = prob.q_len;
    prob.rotary_dim = pl->rotary_dim;
    prob.scale = pl->scale;
    prob.max_q_pos = pl->max_position;
    prob.max_kv_pos = pl->max_position;
    prob.in_dtype = D.cache.dtype;
    prob.out_dtype = D.out_dtype;
  }
  PagedPeView(const PagedPeView &) = delete;  // prob.desc points into this object
  PagedPeView &operator=(const PagedPeView &) = delete;
};

// Everything a backend keeps from prepare (backend_state points to one, plus the backend's own).
// Split kernels: paged_split (SIMT) always, with chunk_slots / split_smem; paged_split_mma
// (tensor cores) when mma_rows > 0, with mma_chunk_slots / mma_smem. A run takes the tensor-core
// kernel when the plan has one and the call's pools are 16-byte aligned (paged_run_mma).
struct PagedPlan {
  int32_t splits, chunk_slots, combine_blocks, append_blocks, dim_cls, cache_index;
  size_t verdict_at, part_o_at, part_lse_at, total;
  size_t split_smem;
  int32_t mma_rows, mma_chunk_slots, q_f16;
  size_t mma_smem;
  pa_prefill_layout pe_layout;
  pa_prefill_scalars pe_scalars;
  pa_paged_params run_tpl;           // pointers into the tables set; per-run fields empty
  pa_paged_append_params append_tpl;
};

inline int cache_index_of(posattn_dtype dt) {
  switch (dt) {
    case POSATTN_DTYPE_F16: return pa_paged::kCacheF16;
    case POSATTN_DTYPE_BF16: return pa_paged::kCacheBF16;
    case POSATTN_DTYPE_FP8_E4M3: return pa_paged::kCacheE4M3;
    case POSATTN_DTYPE_FP8_E5M2: return pa_paged::kCacheE5M2;
    default: return pa_paged::kCacheF32;
  }
}

// Which split kernel a plan's run takes. The environment variable POSATTN_PAGED_KERNEL (read at
// plan creation, for tests and benchmarks) forces one: "simt" (paged_split) or "mma"
// (paged_split_mma: a plan it cannot serve is then NOT_SUPPORTED, naming why); unset or anything
// else: the tensor-core kernel wherever it can serve, paged_split elsewhere.
enum PagedForce { kPagedAuto, kPagedSimt, kPagedMma };
inline PagedForce paged_force() {
  const char *e = std::getenv("POSATTN_PAGED_KERNEL");
  if (e && std::strcmp(e, "simt") == 0) return kPagedSimt;
  if (e && std::strcmp(e, "mma") == 0) return kPagedMma;
  return kPagedAuto;
}
// Why paged_split_mma cannot serve the plan (NULL when it can). The pools' alignment is a run's
// (paged_run_mma).
inline const char *paged_mma_unfit(const posattn_plan *pl) {
  const posattn_plan_desc &D = pl->desc;
  const posattn_dtype c = D.cache.dtype;
  if (D.q_dtype != POSATTN_DTYPE_BF16 && D.q_dtype != POSATTN_DTYPE_F16)
    return "the tensor-core paged kernel takes bf16 or f16 q";
  if (c != D.q_dtype && c != POSATTN_DTYPE_FP8_E4M3 && c != POSATTN_DTYPE_FP8_E5M2)
    return "the tensor-core paged kernel takes a cache of q's dtype or FP8";
  if (pl->d != 64 && pl->d != 128 && pl->d != 256)
    return "the tensor-core paged kernel takes head_dim 64, 128 or 256";
  const int64_t per16 = 16 / int64_t(posattn_dtype_size(c));  // elements per 16-byte copy
  if (D.cache.stride_page % per16 != 0 || D.cache.stride_slot % per16 != 0 ||
      D.cache.stride_head % per16 != 0)
    return "the tensor-core paged kernel needs cache strides of whole 16-byte units";
  return nullptr;
}
// Whether this call runs paged_split_mma: the plan has it and the pools are 16-byte aligned
// (host pointers of the call, never device data: a captured run replays the same choice).
inline bool paged_run_mma(const PagedPlan &P, const void *k_pages, const void *v_pages) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(k_pages) | reinterpret_cast<uintptr_t>(v_pages);
  return P.mma_rows > 0 && a % 16 == 0;
}

// Partial outputs beyond this many bytes are not worth more splits: the automatic split count
// stays below it (a forced num_splits is taken as given).
constexpr size_t kAutoPartialBudget = size_t(256) << 20;

// Step 1 of prepare: geometry, split count and workspace layout; the PE tables' layout. `sms` sizes
// the automatic split count. NOT_SUPPORTED with the reason when no kernel serves the plan.
inline posattn_status paged_geometry(const posattn_plan *pl, int sms, PagedPlan &P, char *msg,
                                     size_t msg_size) {
  const posattn_plan_desc &D = pl->desc;
  P = PagedPlan{};
  if (pl->d > pa_paged::kMaxDim)
    return pa_fail(msg, msg_size, POSATTN_STATUS_NOT_SUPPORTED,
                   "no paged kernel for head_dim %d: the paged kernels take head_dim <= %d", pl->d,
                   pa_paged::kMaxDim);
  if (D.pe.kind == POSATTN_PE_XPOS)
    return pa_fail(msg, msg_size, POSATTN_STATUS_NOT_SUPPORTED,
                   "no paged kernel for desc->pe.kind XPOS");
  const int64_t mq = D.max_q_tokens, hq = pl->hq, d = pl->d;
  int64_t splits = D.num_splits;
  if (splits == 0) {
    const int64_t per_seq = mq / D.max_batch > 0 ? mq / D.max_batch : 1;
    const int32_t max_len = pl->capacity > INT32_MAX ? INT32_MAX : int32_t(pl->capacity);
    splits = pa_decode_auto_splits(D.max_batch, pl->hkv, int32_t(per_seq * pl->group), max_len, sms);
    const int64_t per_split = mq * hq * d * 4;
    const int64_t cap = int64_t(kAutoPartialBudget) / per_split;
    if (splits > cap) splits = cap < 1 ? 1 : cap;
  }
  P.splits = int32_t(splits);
  P.chunk_slots = int32_t((mq * pl->group + pa_paged::kRows - 1) / pa_paged::kRows + D.max_batch);
  P.combine_blocks = int32_t(mq * hq < pa_paged::kMaxStrideBlocks ? mq * hq : pa_paged::kMaxStrideBlocks);
  P.append_blocks = int32_t(mq < pa_paged::kMaxStrideBlocks ? mq : pa_paged::kMaxStrideBlocks);
  P.dim_cls = pa_paged::dim_class(pl->d);
  P.cache_index = cache_index_of(D.cache.dtype);
  P.split_smem = pa_paged::split_smem_bytes(P.dim_cls, pl->d);
  const PagedForce force = paged_force();
  const char *why = paged_mma_unfit(pl);
  if (force == kPagedMma && why)
    return pa_fail(msg, msg_size, POSATTN_STATUS_NOT_SUPPORTED, "POSATTN_PAGED_KERNEL=mma, but %s", why);
  if (force != kPagedSimt && !why) {
    const int R = pa_decode::mma_rows_per_block(pl->d, pl->rotary_dim);
    P.mma_rows = R;
    P.mma_chunk_slots = int32_t((mq * pl->group + R - 1) / R + D.max_batch);
    P.q_f16 = D.q_dtype == POSATTN_DTYPE_F16;
    P.mma_smem = pa_decode::MmaSmem(pl->d, int(posattn_dtype_size(D.cache.dtype)), R,
                                    pl->rotary_dim > 0, pl->rotate_k != 0).total;
  }

  size_t at = 0;
  auto take = [&](size_t bytes) {
    const size_t off = at;
    at = pa_size_add(at, pa_size_align256(bytes));
    return off;
  };
  take(PA_RUN_ERROR_BYTES);
  const size_t rows = pa_size_mul(size_t(mq), size_t(hq));
  const size_t split_rows = pa_size_mul(size_t(P.splits), rows);
  P.verdict_at = take(size_t(D.max_batch) * 4);
  P.part_o_at = take(pa_size_mul(pa_size_mul(split_rows, size_t(d)), sizeof(float)));
  P.part_lse_at = take(pa_size_mul(split_rows, sizeof(float)));
  P.total = at;
  PA_TRY(pa_workspace_too_big(P.total, msg, msg_size));
  const PagedPeView v(pl);
  return pa_prefill_layout_make(&v.prob, 0, 0, &P.pe_layout, msg, msg_size);
}

// Step 2: builds the PE tables (P.pe_layout.total bytes of host memory at `host_tables`).
inline posattn_status paged_tables_build(const posattn_plan *pl, PagedPlan &P, void *host_tables,
                                         char *msg, size_t msg_size) {
  const PagedPeView v(pl);
  return pa_prefill_tables_build(&v.prob, &P.pe_layout, host_tables, &P.pe_scalars, msg, msg_size);
}

// Step 3: the parameter templates; `tables` is the tables set as the kernels see it (device memory
// on CUDA). Only pointer arithmetic on it.
inline void paged_templates_fill(const posattn_plan *pl, PagedPlan &P, unsigned char *tables) {
  const posattn_plan_desc &D = pl->desc;
  const posattn_kv_cache &c = D.cache;
  const PagedPeView v(pl);
  pa_prefill_params pe;
  {
    posattn_tensor none{};
    none.dtype = v.prob.in_dtype;
    pa_problem prob = v.prob;
    prob.q = prob.k = prob.v = prob.out = &none;
    pa_prefill_params_fill(pe, &prob, P.pe_layout, P.pe_scalars, tables, nullptr, 0, nullptr, 0,
                           nullptr, 0, nullptr, 0, 0, 0, 0, nullptr);
  }
  pa_paged_seqs sq{};
  sq.page_size = pl->page_size;
  sq.num_pages = pl->num_pages;
  sq.max_q_tokens = D.max_q_tokens;
  sq.capacity = pl->capacity;
  sq.max_position = pl->max_position;

  pa_paged_params &k = P.run_tpl;
  k = pa_paged_params{};
  k.pe = pe;
  k.sq = sq;
  k.sq.check_pos = 1;  // as REF: given positions are checked whatever the PE
  k.sq.op = PA_RUN_OP_RUN;
  k.q_dtype = D.q_dtype;
  k.out_dtype = D.out_dtype;
  k.stride_page = c.stride_page; k.stride_slot = c.stride_slot; k.stride_head = c.stride_head;
  k.scale_per_head = c.scale_kind == POSATTN_KV_SCALE_PER_HEAD;
  k.hq = pl->hq; k.hkv = pl->hkv; k.group = pl->group; k.d = pl->d;
  k.causal = D.causal;
  k.window_left = D.window_left;
  k.rotate_k = pl->rotate_k;
  k.num_splits = P.splits;
  k.chunk_slots = P.chunk_slots;  // the run patches both for paged_split_mma (paged_run_fill)
  k.mma_rows = 0;
  k.combine_blocks = P.combine_blocks;

  pa_paged_append_params &a = P.append_tpl;
  a = pa_paged_append_params{};
  a.pe = pe;
  if (!pl->rotate_on_append) a.pe.rotary_dim = 0;  // K is stored as given
  a.sq = sq;
  a.sq.check_pos = pl->rotate_on_append;  // positions are read only to rotate K
  a.sq.op = PA_RUN_OP_APPEND;
  a.in_dtype = D.q_dtype;
  a.stride_page = c.stride_page; a.stride_slot = c.stride_slot; a.stride_head = c.stride_head;
  a.scale_per_head = k.scale_per_head;
  a.hkv = pl->hkv; a.d = pl->d;
  a.row_blocks = P.append_blocks;
}

// ---- per call: the templates with this call's pointers ------------------------------------------
// Element counts are spans for the emulator's bounds checks (ignored under raw pointers): the
// sizes the plan allows, never device data.
inline size_t paged_pool_elems(const posattn_plan *pl) {
  const posattn_kv_cache &c = pl->desc.cache;
  return size_t(int64_t(c.num_pages - 1) * c.stride_page + int64_t(c.page_size - 1) * c.stride_slot +
                int64_t(c.kv_heads - 1) * c.stride_head + c.head_dim);
}
inline size_t paged_scale_count(const posattn_plan *pl, const float *s) {
  if (s == nullptr) return 0;
  return pl->desc.cache.scale_kind == POSATTN_KV_SCALE_PER_HEAD ? size_t(pl->hkv) : 1;
}
inline size_t paged_rows_span(const posattn_tensor &t, int64_t rows, int32_t heads, int32_t d) {
  return size_t((rows - 1) * t.stride_seq + int64_t(heads - 1) * t.stride_head + d);
}
inline void paged_seqs_patch(pa_paged_seqs &s, const posattn_plan *pl, const PagedPlan &P,
                             int32_t batch, const int32_t *indptr, const int32_t *kv_lens,
                             const int32_t *bt, int64_t bt_stride, const int32_t *pos,
                             const int32_t *kv_pos, int64_t kvp_stride, unsigned char *ws) {
  s.batch = batch;
  s.indptr = pa::make_gptr(indptr, size_t(batch) + 1, "indptr");
  s.kv_lens = pa::make_gptr(kv_lens, size_t(batch), "kv_lens");
  s.block_table = pa::make_gptr(bt, size_t((batch - 1) * bt_stride + pl->mpps), "block_table");
  s.bt_stride = bt_stride;
  s.pos = pa::make_gptr(pos, size_t(pl->desc.max_q_tokens), "positions");
  s.kv_pos = pa::make_gptr(kv_pos, kv_pos ? size_t((batch - 1) * kvp_stride + pl->capacity) : 0,
                           "kv_positions");
  s.kvp_stride = kvp_stride;
  s.err = pa::make_gptr(reinterpret_cast<int32_t *>(ws), PA_RUN_ERROR_BYTES / 4, "error record");
  s.verdict = pa::make_gptr(reinterpret_cast<int32_t *>(ws + P.verdict_at), size_t(pl->desc.max_batch),
                            "verdicts");
}

inline void paged_run_fill(pa_paged_params &k, const posattn_plan *pl, const PagedPlan &P,
                           const posattn_run_args *a) {
  const int32_t hq = pl->hq, d = pl->d;
  const int64_t mq = pl->desc.max_q_tokens;
  const size_t esz_c = posattn_dtype_size(pl->desc.cache.dtype), pool = paged_pool_elems(pl);
  unsigned char *ws = static_cast<unsigned char *>(a->workspace);
  k = P.run_tpl;
  if (paged_run_mma(P, a->k_pages, a->v_pages)) {
    k.mma_rows = P.mma_rows;
    k.chunk_slots = P.mma_chunk_slots;
  }
  paged_seqs_patch(k.sq, pl, P, a->batch, a->q_indptr, a->kv_lens, a->block_table,
                   a->block_table_stride, a->q_positions, a->kv_positions, a->kv_positions_stride, ws);
  k.q = pa::make_gptr(static_cast<const unsigned char *>(a->q.data),
                      paged_rows_span(a->q, mq, hq, d) * posattn_dtype_size(pl->desc.q_dtype), "q");
  k.q_ss = a->q.stride_seq;
  k.q_sh = a->q.stride_head;
  k.k_pages = pa::make_gptr(static_cast<const unsigned char *>(a->k_pages), pool * esz_c, "k_pages");
  k.v_pages = pa::make_gptr(static_cast<const unsigned char *>(a->v_pages), pool * esz_c, "v_pages");
  k.k_scale = pa::make_gptr(a->k_scale, paged_scale_count(pl, a->k_scale), "k_scale");
  k.v_scale = pa::make_gptr(a->v_scale, paged_scale_count(pl, a->v_scale), "v_scale");
  k.sinks = pa::make_gptr(a->sink_logits, a->sink_logits ? size_t(hq) : 0, "sink_logits");
  k.out = pa::make_gptr(static_cast<unsigned char *>(a->out.data),
                        paged_rows_span(a->out, mq, hq, d) * posattn_dtype_size(pl->desc.out_dtype),
                        "out");
  k.o_ss = a->out.stride_seq;
  k.o_sh = a->out.stride_head;
  k.lse = pa::make_gptr(a->lse, a->lse ? size_t(mq) * size_t(hq) : 0, "lse");
  const size_t split_rows = size_t(P.splits) * size_t(mq) * size_t(hq);
  k.part_o = pa::make_gptr(reinterpret_cast<float *>(ws + P.part_o_at), split_rows * size_t(d), "part_o");
  k.part_lse = pa::make_gptr(reinterpret_cast<float *>(ws + P.part_lse_at), split_rows, "part_lse");
}

inline void paged_append_fill(pa_paged_append_params &k, const posattn_plan *pl, const PagedPlan &P,
                              const posattn_append_args *a) {
  const int32_t hkv = pl->hkv, d = pl->d;
  const int64_t mq = pl->desc.max_q_tokens;
  const size_t esz_c = posattn_dtype_size(pl->desc.cache.dtype), pool = paged_pool_elems(pl);
  const size_t esz_in = posattn_dtype_size(pl->desc.q_dtype);
  unsigned char *ws = static_cast<unsigned char *>(a->workspace);
  k = P.append_tpl;
  paged_seqs_patch(k.sq, pl, P, a->batch, a->new_indptr, a->kv_lens, a->block_table,
                   a->block_table_stride, a->positions, nullptr, 0, ws);
  k.k = pa::make_gptr(static_cast<const unsigned char *>(a->k_new.data),
                      paged_rows_span(a->k_new, mq, hkv, d) * esz_in, "k_new");
  k.v = pa::make_gptr(static_cast<const unsigned char *>(a->v_new.data),
                      paged_rows_span(a->v_new, mq, hkv, d) * esz_in, "v_new");
  k.k_ss = a->k_new.stride_seq; k.k_sh = a->k_new.stride_head;
  k.v_ss = a->v_new.stride_seq; k.v_sh = a->v_new.stride_head;
  k.k_pages = pa::make_gptr(static_cast<unsigned char *>(a->k_pages), pool * esz_c, "k_pages");
  k.v_pages = pa::make_gptr(static_cast<unsigned char *>(a->v_pages), pool * esz_c, "v_pages");
  k.k_scale = pa::make_gptr(a->k_scale, paged_scale_count(pl, a->k_scale), "k_scale");
  k.v_scale = pa::make_gptr(a->v_scale, paged_scale_count(pl, a->v_scale), "v_scale");
}

}  // namespace

#endif /* POSATTN_PAGED_HOST_H */
