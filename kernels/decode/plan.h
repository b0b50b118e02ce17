// plan.h -- the host side of decode and cache append shared by the EMU backend
// (kernels/decode/dispatch.cpp) and the CUDA backend (kernels/decode/cuda_decode.cu): the split
// count, the workspace layout, the host image of the index arrays and PE tables, and the kernel
// parameters. Included once by each build: gptr is a checked pointer in the emulator build and a
// raw pointer under nvcc, so everything here has internal linkage.
//
// Workspace (each region 256-byte aligned):
//   [staged out, staged lse]     EMU only: copied to the caller's tensors after a clean launch
//   partial outputs and LSEs     [splits][batch][n][hq][d] and [splits][batch][n][hq] fp32
//   index arrays                 cache_lens, block table, positions, sinks (int32 / fp32 copies)
//   PE tables                    the prefill tables region (kernels/prefill/tables.h), built by
//                                the same code from a prefill-shaped view of the problem
// The index arrays and PE tables form one contiguous span [`inputs`, `total`) built in host memory
// (directly in the workspace on EMU; in a host buffer copied to the device workspace on CUDA).
#ifndef POSATTN_DECODE_PLAN_H
#define POSATTN_DECODE_PLAN_H

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "decode.h"
#include "decode/decode_mma.cuh"
#include "prefill/tables.h"

namespace {


// A prefill-shaped view of a decode/append problem, for the prefill PE tables: heads, head dim,
// the PE, the largest positions (EXACT tables and DYNAMIC_NTK), no index arrays of its own.
struct PeView {
  posattn_attention_desc desc;
  pa_problem prob;
  PeView(const posattn_pe &pe, int32_t batch, int32_t hq, int32_t hkv, int32_t d, int32_t n,
         int32_t rotary_dim, int32_t max_q_pos, int32_t max_kv_pos, int32_t min_q_pos,
         double scale, float softcap, posattn_dtype in, posattn_dtype out) {
    posattn_attention_desc_init(&desc);
    desc.batch = batch;
    desc.q_heads = hq;
    desc.kv_heads = hkv;
    desc.head_dim = d;
    desc.pe = pe;
    desc.softcap = softcap;
    std::memset(&prob, 0, sizeof prob);
    prob.desc = &desc;
    prob.batch = batch;
    prob.hq = hq;
    prob.hkv = hkv;
    prob.d = d;
    prob.group = hq / hkv;
    prob.q_len = n;
    // The tables cover |position| up to max(max positions, n - kv_len) (default query positions
    // may be negative): kv_len = n + min_q_pos makes the second term -min_q_pos when that is > 0.
    prob.kv_len = min_q_pos < 0 ? n + min_q_pos : n;
    prob.total_q = int64_t(batch) * n;
    prob.rotary_dim = rotary_dim;
    prob.scale = scale;
    prob.max_q_pos = max_q_pos;
    prob.max_kv_pos = max_kv_pos;
    prob.in_dtype = in;
    prob.out_dtype = out;
  }
  PeView(const PeView &) = delete;  // prob.desc points into this object
  PeView &operator=(const PeView &) = delete;
};

// Built in place (guaranteed copy elision): `const PeView v = decode_view(p);`
PeView decode_view(const pa_decode_problem *p) {
  return PeView(p->desc->pe, p->batch, p->hq, p->hkv, p->d, p->n, p->rotary_dim, p->max_q_pos,
                p->max_kv_pos, p->min_q_pos, p->scale, p->desc->softcap, p->cache->dtype,
                p->out_dtype);
}
posattn_pe append_pe(const pa_append_problem *p) {
  posattn_pe pe;
  posattn_pe_init(&pe);
  if (p->rotary_dim) pe = p->desc->pe;  // only the rotation matters to an append
  return pe;
}
PeView append_view(const pa_append_problem *p) {
  return PeView(append_pe(p), p->batch, 1, 1, p->d, p->n, p->rotary_dim, p->max_pos, p->max_pos,
                0, 1.0, 0.f, p->cache->dtype, p->cache->dtype);
}

// Which split kernel runs. The environment variable POSATTN_DECODE_KERNEL (read on every choice,
// for tests and benchmarks) forces one: "simt" (decode_split) or "mma" (decode_mma: a problem it
// cannot serve is then NOT_SUPPORTED, naming why); unset or anything else: the tensor-core kernel
// wherever it can serve, decode_split elsewhere.
enum DecodeForce { kForceNone, kForceSimt, kForceMma };
DecodeForce decode_force() {
  const char *e = std::getenv("POSATTN_DECODE_KERNEL");
  if (e && std::strcmp(e, "simt") == 0) return kForceSimt;
  if (e && std::strcmp(e, "mma") == 0) return kForceMma;
  return kForceNone;
}

// Why decode_mma cannot serve p judged on the descriptor and cache shape (NULL when it can). The
// pool pointers' alignment is judged separately (mma_pools_unfit): supported / workspace queries
// may not hold the pools, and the layout must not depend on them.
const char *mma_unfit(const pa_decode_problem *p) {
  const posattn_dtype c = p->cache->dtype;
  if (p->q_dtype != POSATTN_DTYPE_BF16 && p->q_dtype != POSATTN_DTYPE_F16)
    return "the tensor-core decode kernel takes bf16 or f16 q";
  if (c != p->q_dtype && c != POSATTN_DTYPE_FP8_E4M3 && c != POSATTN_DTYPE_FP8_E5M2)
    return "the tensor-core decode kernel takes a cache of q's dtype or FP8";
  if (p->d != 64 && p->d != 128 && p->d != 256)
    return "the tensor-core decode kernel takes head_dim 64, 128 or 256";
  const int64_t per16 = 16 / int64_t(posattn_dtype_size(c));  // elements per 16-byte copy
  const posattn_kv_cache *k = p->cache;
  if (k->stride_page % per16 != 0 || k->stride_slot % per16 != 0 || k->stride_head % per16 != 0)
    return "the tensor-core decode kernel needs cache strides of whole 16-byte units";
  return nullptr;
}
const char *mma_pools_unfit(const pa_decode_problem *p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p->cache->k_pages) | reinterpret_cast<uintptr_t>(p->cache->v_pages);
  return a % 16 != 0 ? "the tensor-core decode kernel needs 16-byte aligned page pools" : nullptr;
}

// Enough blocks (batch x kv heads x row chunks) for two waves of the device's SMs, but no split
// shorter than kMinSplitTokens (below that a split is dominated by its fixed costs) and at most
// kMaxAutoSplits.
int32_t auto_splits(int32_t batch, int32_t kv_heads, int64_t row_chunks, int32_t max_len, int sms) {
  constexpr int64_t kMinSplitTokens = 256, kMaxAutoSplits = 64;
  const int64_t blocks = int64_t(batch) * kv_heads * row_chunks;
  if (blocks < 1) return 1;
  int64_t s = (2 * int64_t(sms) + blocks - 1) / blocks;
  const int64_t by_len = (int64_t(max_len) + kMinSplitTokens - 1) / kMinSplitTokens;
  if (s > by_len) s = by_len;
  if (s > kMaxAutoSplits) s = kMaxAutoSplits;
  return int32_t(s < 1 ? 1 : s);
}

struct DecodeLayout {
  int32_t mma;  // the layout (split count) of decode_mma; decode_params_fill may still fall back
  int32_t splits, split_pages, row_chunks;
  size_t out, lse, part_o, part_lse;
  size_t inputs;  // start of the host-built span: index arrays, then the PE tables
  size_t cache_lens, block_table, q_pos, kv_pos, sinks, tables;
  pa_prefill_layout pe;
  size_t total;
};

posattn_status decode_layout(const pa_decode_problem *p, int stage_out, int sms, DecodeLayout &L,
                             char *msg, size_t msg_size) {
  std::memset(&L, 0, sizeof L);
  const posattn_decode_desc *D = p->desc;
  const DecodeForce force = decode_force();
  const char *why = mma_unfit(p);
  if (force == kForceMma && !why && p->cache->k_pages) why = mma_pools_unfit(p);
  if (force == kForceMma && why)
    return pa_fail(msg, msg_size, POSATTN_STATUS_NOT_SUPPORTED,
                   "POSATTN_DECODE_KERNEL=mma, but %s", why);
  L.mma = force != kForceSimt && !why;
  const int rows_per_block = L.mma ? pa_decode::mma_rows_per_block(p->d, p->rotary_dim) : pa_decode::kRows;
  L.row_chunks = (p->group * p->n + rows_per_block - 1) / rows_per_block;
  const int64_t max_pages = (int64_t(p->max_len) + p->page_size - 1) / p->page_size;
  int64_t splits = D->num_splits;
  if (splits == 0) splits = auto_splits(p->batch, p->hkv, L.row_chunks, p->max_len, sms);
  L.splits = int32_t(splits);
  L.split_pages = int32_t(max_pages == 0 ? 1 : (max_pages + splits - 1) / splits);

  size_t at = 0;
  auto take = [&](size_t bytes) {  // saturates at SIZE_MAX for sizes beyond size_t
    const size_t off = at;
    at = pa_size_add(at, pa_size_align256(bytes));
    return off;
  };
  const size_t rows = pa_size_mul(size_t(p->batch) * size_t(p->n), size_t(p->hq));
  const size_t split_rows = pa_size_mul(size_t(L.splits), rows);
  if (stage_out) {  // EMU: copied to out/lse only after a fault-free run (see prefill/tables.cpp)
    L.out = take(pa_size_mul(pa_size_mul(rows, size_t(p->d)), posattn_dtype_size(p->out_dtype)));
    L.lse = take(pa_size_mul(rows, sizeof(float)));
  }
  L.part_o = take(pa_size_mul(pa_size_mul(split_rows, size_t(p->d)), sizeof(float)));
  L.part_lse = take(pa_size_mul(split_rows, sizeof(float)));
  L.inputs = at;
  L.cache_lens = take(size_t(p->batch) * 4);
  L.block_table = take(size_t(p->batch) * size_t(p->mpps) * 4);
  L.q_pos = take(D->q_positions ? size_t(p->batch) * size_t(p->n) * 4 : 0);
  L.kv_pos = take(D->kv_positions ? size_t(p->batch) * size_t(p->capacity) * 4 : 0);
  L.sinks = take(D->sink_logits ? size_t(p->hq) * 4 : 0);
  L.tables = at;
  const PeView v = decode_view(p);
  PA_TRY(pa_prefill_layout_make(&v.prob, 0, 0, &L.pe, msg, msg_size));
  L.total = pa_size_add(at, L.pe.total);
  return pa_workspace_too_big(L.total, msg, msg_size);
}

// Writes the span [L.inputs, L.total) of the workspace into `host` (that span's bytes, host
// memory): copies of the caller's index arrays and the PE tables.
posattn_status decode_inputs_build(const pa_decode_problem *p, const DecodeLayout &L,
                                   unsigned char *host, pa_prefill_scalars *sc, char *msg,
                                   size_t msg_size) {
  const posattn_decode_desc *D = p->desc;
  unsigned char *w = host - L.inputs;  // workspace offsets address the span through w
  std::memcpy(w + L.cache_lens, D->cache_lens, size_t(p->batch) * 4);
  std::memcpy(w + L.block_table, D->block_table, size_t(p->batch) * size_t(p->mpps) * 4);
  if (D->q_positions) std::memcpy(w + L.q_pos, D->q_positions, size_t(p->batch) * size_t(p->n) * 4);
  if (D->kv_positions)
    std::memcpy(w + L.kv_pos, D->kv_positions, size_t(p->batch) * size_t(p->capacity) * 4);
  if (D->sink_logits) std::memcpy(w + L.sinks, D->sink_logits, size_t(p->hq) * 4);
  const PeView view = decode_view(p);
  return pa_prefill_tables_build(&view.prob, &L.pe, w + L.tables + L.pe.tables_at, sc, msg,
                                 msg_size);
}

template <class T>
pa::gptr<const T> table(unsigned char *base, size_t off, size_t n, const char *name) {
  return pa::make_gptr(n ? reinterpret_cast<const T *>(base + off) : nullptr, n, name);
}

// The PE part of the parameters, through the prefill filler (dummy tensors: only the PE, scale
// and softcap fields are used by the decode kernels).
void fill_pe(pa_prefill_params &pe, const PeView &v, const pa_prefill_layout &L,
             const pa_prefill_scalars &sc, unsigned char *tables) {
  posattn_tensor none{};
  none.dtype = v.prob.in_dtype;
  pa_problem prob = v.prob;
  prob.q = prob.k = prob.v = prob.out = &none;
  pa_prefill_params_fill(pe, &prob, L, sc, tables, nullptr, 0, nullptr, 0, nullptr, 0, nullptr, 0,
                         0, 0, 0, nullptr);
}

// Elements the kernels may touch in a paged pool (largest offset + 1).
size_t pool_elems(const posattn_kv_cache *c) {
  return size_t(int64_t(c->num_pages - 1) * c->stride_page + int64_t(c->page_size - 1) * c->stride_slot +
                int64_t(c->kv_heads - 1) * c->stride_head + c->head_dim);
}

// The FP8 scales of a cache ([1] or [kv_heads] fp32; empty pointers for other dtypes).
template <class P>
void scales_fill(P &k, const posattn_kv_cache *c) {
  const size_t n = c->k_scale ? (c->scale_kind == POSATTN_KV_SCALE_PER_HEAD ? size_t(c->kv_heads) : 1) : 0;
  k.k_scale = pa::make_gptr(c->k_scale, n, "k_scale");
  k.v_scale = pa::make_gptr(c->v_scale, c->v_scale ? n : 0, "v_scale");
  k.scale_per_head = c->scale_kind == POSATTN_KV_SCALE_PER_HEAD;
}

// The decode kernels' parameters. `ws` is the workspace as the kernels see it; out (with its
// strides) and lse are where the combine step writes (EMU: the staging area).
void decode_params_fill(pa_decode_params &k, const pa_decode_problem *p, const DecodeLayout &L,
                        const pa_prefill_scalars &sc, unsigned char *ws, void *out, int64_t o_sb,
                        int64_t o_ss, int64_t o_sh, float *lse) {
  const posattn_decode_desc *D = p->desc;
  const posattn_kv_cache *c = p->cache;
  const size_t rows = size_t(p->batch) * size_t(p->n) * size_t(p->hq);
  const size_t esz_q = posattn_dtype_size(p->q_dtype), esz_c = posattn_dtype_size(c->dtype);
  const size_t q_elems = size_t(int64_t(p->batch - 1) * p->q->stride_batch + int64_t(p->n - 1) * p->q->stride_seq +
                                int64_t(p->hq - 1) * p->q->stride_head + p->d);
  const size_t out_elems = size_t(int64_t(p->batch - 1) * o_sb + int64_t(p->n - 1) * o_ss +
                                  int64_t(p->hq - 1) * o_sh + p->d);
  k = pa_decode_params{};
  const PeView view = decode_view(p);
  fill_pe(k.pe, view, L.pe, sc, ws + L.tables + L.pe.tables_at);
  k.q = pa::make_gptr(static_cast<const unsigned char *>(p->q->data), q_elems * esz_q, "q");
  k.q_sb = p->q->stride_batch; k.q_ss = p->q->stride_seq; k.q_sh = p->q->stride_head;
  k.q_dtype = p->q_dtype;
  k.k_pages = pa::make_gptr(static_cast<const unsigned char *>(c->k_pages), pool_elems(c) * esz_c, "k_pages");
  k.v_pages = pa::make_gptr(static_cast<const unsigned char *>(c->v_pages), pool_elems(c) * esz_c, "v_pages");
  k.stride_page = c->stride_page; k.stride_slot = c->stride_slot; k.stride_head = c->stride_head;
  scales_fill(k, c);
  k.batch = p->batch; k.hq = p->hq; k.hkv = p->hkv; k.group = p->group; k.d = p->d; k.n = p->n;
  k.page_size = p->page_size; k.mpps = p->mpps; k.capacity = p->capacity;
  k.cache_lens = table<int32_t>(ws, L.cache_lens, size_t(p->batch), "cache_lens");
  k.block_table = table<int32_t>(ws, L.block_table, size_t(p->batch) * size_t(p->mpps), "block_table");
  k.q_pos = table<int32_t>(ws, L.q_pos, D->q_positions ? size_t(p->batch) * size_t(p->n) : 0, "q_positions");
  k.kv_pos = table<int32_t>(ws, L.kv_pos, D->kv_positions ? size_t(p->batch) * size_t(p->capacity) : 0, "kv_positions");
  k.sinks = table<float>(ws, L.sinks, D->sink_logits ? size_t(p->hq) : 0, "sink_logits");
  k.causal = D->causal; k.window_left = D->window_left; k.rotate_k = p->rotate_k;
  k.num_splits = L.splits; k.split_pages = L.split_pages;
  // Pools that 16-byte copies cannot read go to decode_split with the same split count (the
  // workspace and the combine do not depend on the split kernel).
  k.mma = L.mma && !mma_pools_unfit(p) ? pa_decode::mma_rows_per_block(p->d, p->rotary_dim) : 0;
  k.row_chunks = k.mma ? L.row_chunks : (p->group * p->n + pa_decode::kRows - 1) / pa_decode::kRows;
  k.part_o = pa::make_gptr(reinterpret_cast<float *>(ws + L.part_o), size_t(L.splits) * rows * size_t(p->d), "part_o");
  k.part_lse = pa::make_gptr(reinterpret_cast<float *>(ws + L.part_lse), size_t(L.splits) * rows, "part_lse");
  k.out = pa::make_gptr(static_cast<unsigned char *>(out), out_elems * posattn_dtype_size(p->out_dtype), "out");
  k.o_sb = o_sb; k.o_ss = o_ss; k.o_sh = o_sh;
  k.out_dtype = p->out_dtype;
  k.lse = pa::make_gptr(lse, lse ? rows : 0, "lse");
}

struct AppendLayout {
  size_t new_lens, cache_lens, block_table, positions, tables;
  pa_prefill_layout pe;
  size_t total;  // the whole workspace is host-built (index arrays and PE tables)
};

posattn_status append_layout(const pa_append_problem *p, AppendLayout &L, char *msg, size_t msg_size) {
  std::memset(&L, 0, sizeof L);
  size_t at = 0;
  auto take = [&](size_t bytes) {
    const size_t off = at;
    at = pa_size_add(at, pa_size_align256(bytes));
    return off;
  };
  L.new_lens = take(p->desc->new_lens ? size_t(p->batch) * 4 : 0);
  L.cache_lens = take(size_t(p->batch) * 4);
  L.block_table = take(size_t(p->batch) * size_t(p->mpps) * 4);
  L.positions = take(p->desc->positions ? size_t(p->batch) * size_t(p->n) * 4 : 0);
  L.tables = at;
  const PeView v = append_view(p);
  PA_TRY(pa_prefill_layout_make(&v.prob, 0, 0, &L.pe, msg, msg_size));
  L.total = pa_size_add(at, L.pe.total);
  return pa_workspace_too_big(L.total, msg, msg_size);
}

// Writes the whole append workspace (L.total bytes) into `host`.
posattn_status append_inputs_build(const pa_append_problem *p, const AppendLayout &L,
                                   unsigned char *host, pa_prefill_scalars *sc, char *msg,
                                   size_t msg_size) {
  const posattn_cache_append_desc *D = p->desc;
  if (D->new_lens) std::memcpy(host + L.new_lens, D->new_lens, size_t(p->batch) * 4);
  std::memcpy(host + L.cache_lens, D->cache_lens, size_t(p->batch) * 4);
  std::memcpy(host + L.block_table, D->block_table, size_t(p->batch) * size_t(p->mpps) * 4);
  if (D->positions) std::memcpy(host + L.positions, D->positions, size_t(p->batch) * size_t(p->n) * 4);
  const PeView view = append_view(p);
  return pa_prefill_tables_build(&view.prob, &L.pe, host + L.tables + L.pe.tables_at, sc, msg,
                                 msg_size);
}

void append_params_fill(pa_append_params &k, const pa_append_problem *p, const AppendLayout &L,
                        const pa_prefill_scalars &sc, unsigned char *ws) {
  const posattn_cache_append_desc *D = p->desc;
  const posattn_kv_cache *c = p->cache;
  auto elems = [&](const posattn_tensor *t) {
    return size_t(int64_t(p->batch - 1) * t->stride_batch + int64_t(p->n - 1) * t->stride_seq +
                  int64_t(p->hkv - 1) * t->stride_head + p->d);
  };
  const size_t esz_in = posattn_dtype_size(p->in_dtype), esz_c = posattn_dtype_size(c->dtype);
  k = pa_append_params{};
  const PeView view = append_view(p);
  fill_pe(k.pe, view, L.pe, sc, ws + L.tables + L.pe.tables_at);
  k.k = pa::make_gptr(static_cast<const unsigned char *>(p->k->data), elems(p->k) * esz_in, "k_new");
  k.v = pa::make_gptr(static_cast<const unsigned char *>(p->v->data), elems(p->v) * esz_in, "v_new");
  k.k_sb = p->k->stride_batch; k.k_ss = p->k->stride_seq; k.k_sh = p->k->stride_head;
  k.v_sb = p->v->stride_batch; k.v_ss = p->v->stride_seq; k.v_sh = p->v->stride_head;
  k.in_dtype = p->in_dtype;
  k.k_pages = pa::make_gptr(static_cast<unsigned char *>(c->k_pages), pool_elems(c) * esz_c, "k_pages");
  k.v_pages = pa::make_gptr(static_cast<unsigned char *>(c->v_pages), pool_elems(c) * esz_c, "v_pages");
  k.stride_page = c->stride_page; k.stride_slot = c->stride_slot; k.stride_head = c->stride_head;
  scales_fill(k, c);
  k.batch = p->batch; k.n = p->n; k.hkv = p->hkv; k.d = p->d; k.page_size = p->page_size; k.mpps = p->mpps;
  k.new_lens = table<int32_t>(ws, L.new_lens, D->new_lens ? size_t(p->batch) : 0, "new_lens");
  k.cache_lens = table<int32_t>(ws, L.cache_lens, size_t(p->batch), "cache_lens");
  k.block_table = table<int32_t>(ws, L.block_table, size_t(p->batch) * size_t(p->mpps), "block_table");
  k.positions = table<int32_t>(ws, L.positions, D->positions ? size_t(p->batch) * size_t(p->n) : 0, "positions");
}

}  // namespace

#endif /* POSATTN_DECODE_PLAN_H */
