// dispatch.cpp -- the decode chooser and the EMU runs of decode and cache append (host/decode.h).
//
// pa_decode_choose() is the one place that decides whether the decode kernels serve a problem,
// how many KV splits run, and how the workspace is laid out; posattn_decode_supported(),
// posattn_decode_workspace_size() and posattn_decode() all reach it (host/decode.c), so they
// cannot disagree. The CUDA backend is meant to call the same functions with stage_out = 0.
//
// Workspace (each region 256-byte aligned):
//   [staged out, staged lse]     EMU only: copied to the caller's tensors after a clean launch
//   partial outputs and LSEs     [splits][batch][n][hq][d] and [splits][batch][n][hq] fp32
//   index tables                 cache_lens, block table, positions, sinks (int32 / fp32 copies)
//   PE tables                    the prefill tables region (kernels/prefill/tables.h), built by
//                                the same code from a prefill-shaped view of the problem
#include <cstdint>
#include <cstring>
#include <new>

#include "decode.h"
#include "decode/decode.cu"
#include "prefill/tables.h"

namespace {

size_t align256(size_t n) { return (n + 255) & ~size_t(255); }

// Nominal SM count used to size the split count on the CPU backends (H100 SXM has 132 SMs); a
// GPU backend passes its own.
constexpr int kNominalSms = 132;
constexpr int kMinSplitTokens = 256;  // a split below this is dominated by its fixed costs
constexpr int kMaxAutoSplits = 64;

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
};

PeView decode_view(const pa_decode_problem *p) {
  return PeView(p->desc->pe, p->batch, p->hq, p->hkv, p->d, p->n, p->rotary_dim, p->max_q_pos,
                p->max_kv_pos, p->min_q_pos, p->scale, p->desc->softcap, p->cache->dtype,
                p->out_dtype);
}
PeView append_view(const pa_append_problem *p) {
  posattn_pe pe;
  posattn_pe_init(&pe);
  if (p->rotary_dim) pe = p->desc->pe;  // only the rotation matters to an append
  return PeView(pe, p->batch, 1, 1, p->d, p->n, p->rotary_dim, p->max_pos, p->max_pos, 0, 1.0,
                0.f, p->cache->dtype, p->cache->dtype);
}

struct DecodeLayout {
  int32_t splits, split_pages, row_chunks;
  size_t out, lse, part_o, part_lse, cache_lens, block_table, q_pos, kv_pos, sinks, tables;
  pa_prefill_layout pe;
  size_t total;
};

posattn_status decode_layout(const pa_decode_problem *p, int stage_out, DecodeLayout &L, char *msg,
                             size_t msg_size) {
  std::memset(&L, 0, sizeof L);
  const posattn_decode_desc *D = p->desc;
  L.row_chunks = (p->group * p->n + pa_decode::kRows - 1) / pa_decode::kRows;
  const int64_t max_pages = (int64_t(p->max_len) + p->page_size - 1) / p->page_size;
  int64_t splits = D->num_splits;
  if (splits == 0) {
    // Enough blocks for two waves of the device, but no split shorter than kMinSplitTokens.
    const int64_t blocks = int64_t(p->batch) * p->hkv * L.row_chunks;
    splits = (2 * kNominalSms + blocks - 1) / blocks;
    const int64_t by_len = (int64_t(p->max_len) + kMinSplitTokens - 1) / kMinSplitTokens;
    if (splits > by_len) splits = by_len;
    if (splits > kMaxAutoSplits) splits = kMaxAutoSplits;
    if (splits < 1) splits = 1;
  }
  L.splits = int32_t(splits);
  L.split_pages = int32_t(max_pages == 0 ? 1 : (max_pages + splits - 1) / splits);

  size_t at = 0;
  auto take = [&](size_t bytes) {
    const size_t off = at;
    at += align256(bytes);
    return off;
  };
  const size_t rows = size_t(p->batch) * size_t(p->n) * size_t(p->hq);
  if (stage_out) {
    L.out = take(rows * size_t(p->d) * posattn_dtype_size(p->out_dtype));
    L.lse = take(rows * sizeof(float));
  }
  L.part_o = take(size_t(L.splits) * rows * size_t(p->d) * sizeof(float));
  L.part_lse = take(size_t(L.splits) * rows * sizeof(float));
  L.cache_lens = take(size_t(p->batch) * 4);
  L.block_table = take(size_t(p->batch) * size_t(p->mpps) * 4);
  L.q_pos = take(D->q_positions ? rows / size_t(p->hq) * 4 : 0);
  L.kv_pos = take(D->kv_positions ? size_t(p->batch) * size_t(p->capacity) * 4 : 0);
  L.sinks = take(D->sink_logits ? size_t(p->hq) * 4 : 0);
  L.tables = at;
  PeView v = decode_view(p);
  PA_TRY(pa_prefill_layout_make(&v.prob, 0, &L.pe, msg, msg_size));
  L.total = at + L.pe.total;
  return POSATTN_STATUS_SUCCESS;
}

// FIRE: the compiled segments cover x in [0, 1], which keys after their query can leave (the same
// rule as the prefill chooser).
posattn_status fire_range(const posattn_pe &pe, int32_t min_q, int32_t max_kv, char *msg,
                          size_t msg_size) {
  if (pe.kind != POSATTN_PE_FIRE) return POSATTN_STATUS_SUCCESS;
  const double limit = double(min_q) + (pe.fire.L > double(min_q) ? pe.fire.L : double(min_q));
  if (double(max_kv) > limit)
    return pa_fail(msg, msg_size, POSATTN_STATUS_NOT_SUPPORTED,
                   "FIRE: key positions up to %d exceed q_min + max(L = %g, q_min = %d), so x may "
                   "exceed 1, beyond the compiled segments (the kernels take x in [0, 1])",
                   max_kv, pe.fire.L, min_q);
  return POSATTN_STATUS_SUCCESS;
}

posattn_status check_ws(posattn_context *ctx, void *ws, size_t ws_bytes, size_t need) {
  if (ws_bytes < need)
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_WORKSPACE_TOO_SMALL,
                       "workspace_bytes (%zu) must be >= %zu for the EMU backend", ws_bytes, need);
  if (need > 0 && ws == nullptr) return PA_CTX_FAIL(ctx, POSATTN_STATUS_NULL_POINTER, "workspace is NULL");
  return POSATTN_STATUS_SUCCESS;
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

}  // namespace

extern "C" posattn_status pa_decode_choose(const pa_decode_problem *p, int stage_out,
                                           int32_t *num_splits, size_t *workspace_bytes, char *msg,
                                           size_t msg_size) {
  *num_splits = 0;
  *workspace_bytes = 0;
  if (p->d > pa_decode::kMaxDim)
    return pa_fail(msg, msg_size, POSATTN_STATUS_NOT_SUPPORTED,
                   "no decode kernel for head_dim %d: the decode kernel takes head_dim <= %d", p->d,
                   pa_decode::kMaxDim);
  PA_TRY(fire_range(p->desc->pe, p->min_q_pos, p->max_kv_pos, msg, msg_size));
  DecodeLayout L;
  PA_TRY(decode_layout(p, stage_out, L, msg, msg_size));
  *num_splits = L.splits;
  *workspace_bytes = L.total;
  return POSATTN_STATUS_SUCCESS;
}

extern "C" posattn_status pa_decode_emu_run(posattn_context *ctx, const pa_decode_problem *p,
                                            void *ws, size_t ws_bytes) {
  PA_CHECK_INTERNAL(ctx, p && p->q && p->out && p->cache);
  DecodeLayout L;
  PA_TRY(pa_decode_choose(p, 1, &L.splits, &L.total, ctx->msg, PA_MSG_SIZE));
  PA_TRY(check_ws(ctx, ws, ws_bytes, L.total));
  PA_TRY(decode_layout(p, 1, L, ctx->msg, PA_MSG_SIZE));
  unsigned char *w = static_cast<unsigned char *>(ws);
  const posattn_decode_desc *D = p->desc;
  const posattn_kv_cache *c = p->cache;
  const size_t rows = size_t(p->batch) * size_t(p->n) * size_t(p->hq);

  // Index tables: copies of the host arrays (what the CUDA backend would upload).
  std::memcpy(w + L.cache_lens, D->cache_lens, size_t(p->batch) * 4);
  std::memcpy(w + L.block_table, D->block_table, size_t(p->batch) * size_t(p->mpps) * 4);
  if (D->q_positions) std::memcpy(w + L.q_pos, D->q_positions, size_t(p->batch) * size_t(p->n) * 4);
  if (D->kv_positions) std::memcpy(w + L.kv_pos, D->kv_positions, size_t(p->batch) * size_t(p->capacity) * 4);
  if (D->sink_logits) std::memcpy(w + L.sinks, D->sink_logits, size_t(p->hq) * 4);
  const PeView view = decode_view(p);
  pa_prefill_scalars sc;
  PA_TRY(pa_prefill_tables_build(&view.prob, &L.pe, w + L.tables + L.pe.tables_at, &sc, ctx->msg,
                                 PA_MSG_SIZE));

  const size_t esz_q = posattn_dtype_size(p->q_dtype), esz_c = posattn_dtype_size(c->dtype);
  const size_t esz_o = posattn_dtype_size(p->out_dtype);
  // Elements the kernels may touch in the caller's buffers (largest offset + 1).
  const size_t q_elems = size_t(int64_t(p->batch - 1) * p->q->stride_batch + int64_t(p->n - 1) * p->q->stride_seq +
                                int64_t(p->hq - 1) * p->q->stride_head + p->d);
  const size_t pool_elems = size_t(int64_t(c->num_pages - 1) * c->stride_page + int64_t(c->page_size - 1) * c->stride_slot +
                                   int64_t(c->kv_heads - 1) * c->stride_head + c->head_dim);
  pa::launch_status st;
  try {
    pa_decode_params k{};
    fill_pe(k.pe, view, L.pe, sc, w + L.tables + L.pe.tables_at);
    k.q = pa::make_gptr(static_cast<const unsigned char *>(p->q->data), q_elems * esz_q, "q");
    k.q_sb = p->q->stride_batch; k.q_ss = p->q->stride_seq; k.q_sh = p->q->stride_head;
    k.q_dtype = p->q_dtype;
    k.k_pages = pa::make_gptr(static_cast<const unsigned char *>(c->k_pages), pool_elems * esz_c, "k_pages");
    k.v_pages = pa::make_gptr(static_cast<const unsigned char *>(c->v_pages), pool_elems * esz_c, "v_pages");
    k.stride_page = c->stride_page; k.stride_slot = c->stride_slot; k.stride_head = c->stride_head;
    k.batch = p->batch; k.hq = p->hq; k.hkv = p->hkv; k.group = p->group; k.d = p->d; k.n = p->n;
    k.page_size = p->page_size; k.mpps = p->mpps; k.capacity = p->capacity;
    k.cache_lens = table<int32_t>(w, L.cache_lens, size_t(p->batch), "cache_lens");
    k.block_table = table<int32_t>(w, L.block_table, size_t(p->batch) * size_t(p->mpps), "block_table");
    k.q_pos = table<int32_t>(w, L.q_pos, D->q_positions ? size_t(p->batch) * size_t(p->n) : 0, "q_positions");
    k.kv_pos = table<int32_t>(w, L.kv_pos, D->kv_positions ? size_t(p->batch) * size_t(p->capacity) : 0, "kv_positions");
    k.sinks = table<float>(w, L.sinks, D->sink_logits ? size_t(p->hq) : 0, "sink_logits");
    k.causal = D->causal; k.window_left = D->window_left; k.rotate_k = p->rotate_k;
    k.num_splits = L.splits; k.split_pages = L.split_pages; k.row_chunks = L.row_chunks;
    k.part_o = pa::make_gptr(reinterpret_cast<float *>(w + L.part_o), size_t(L.splits) * rows * size_t(p->d), "part_o");
    k.part_lse = pa::make_gptr(reinterpret_cast<float *>(w + L.part_lse), size_t(L.splits) * rows, "part_lse");
    // staged out: contiguous [batch][n][hq][d]
    k.out = pa::make_gptr(w + L.out, rows * size_t(p->d) * esz_o, "out");
    k.o_sh = p->d; k.o_ss = int64_t(p->hq) * p->d; k.o_sb = k.o_ss * p->n;
    k.out_dtype = p->out_dtype;
    k.lse = pa::make_gptr(p->lse ? reinterpret_cast<float *>(w + L.lse) : nullptr, p->lse ? rows : 0, "lse");
    st = pa_decode::decode_launch(k, c->dtype, nullptr);
  } catch (const std::bad_alloc &) {
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_ALLOC_FAILED, "EMU backend: out of host memory");
  }
  if (!st.ok) return PA_CTX_FAIL(ctx, POSATTN_STATUS_KERNEL_FAULT, "EMU decode kernels: %s", st.msg);

  const size_t row_bytes = size_t(p->d) * esz_o;
  for (int32_t b = 0; b < p->batch; ++b)
    for (int32_t t = 0; t < p->n; ++t)
      for (int32_t h = 0; h < p->hq; ++h) {
        const int64_t off = int64_t(b) * p->out->stride_batch + int64_t(t) * p->out->stride_seq +
                            int64_t(h) * p->out->stride_head;
        std::memcpy(static_cast<char *>(p->out->data) + off * int64_t(esz_o),
                    w + L.out + ((size_t(b) * p->n + t) * p->hq + h) * row_bytes, row_bytes);
      }
  if (p->lse) std::memcpy(p->lse, w + L.lse, rows * sizeof(float));
  return POSATTN_STATUS_SUCCESS;
}

namespace {
struct AppendLayout {
  size_t new_lens, cache_lens, block_table, positions, tables;
  pa_prefill_layout pe;
  size_t total;
};
posattn_status append_layout(const pa_append_problem *p, AppendLayout &L, char *msg, size_t msg_size) {
  std::memset(&L, 0, sizeof L);
  size_t at = 0;
  auto take = [&](size_t bytes) {
    const size_t off = at;
    at += align256(bytes);
    return off;
  };
  L.new_lens = take(p->desc->new_lens ? size_t(p->batch) * 4 : 0);
  L.cache_lens = take(size_t(p->batch) * 4);
  L.block_table = take(size_t(p->batch) * size_t(p->mpps) * 4);
  L.positions = take(p->desc->positions ? size_t(p->batch) * size_t(p->n) * 4 : 0);
  L.tables = at;
  PeView v = append_view(p);
  PA_TRY(pa_prefill_layout_make(&v.prob, 0, &L.pe, msg, msg_size));
  L.total = at + L.pe.total;
  return POSATTN_STATUS_SUCCESS;
}
}  // namespace

extern "C" posattn_status pa_append_choose(const pa_append_problem *p, size_t *workspace_bytes,
                                           char *msg, size_t msg_size) {
  AppendLayout L;
  *workspace_bytes = 0;
  PA_TRY(append_layout(p, L, msg, msg_size));
  *workspace_bytes = L.total;
  return POSATTN_STATUS_SUCCESS;
}

extern "C" posattn_status pa_append_emu_run(posattn_context *ctx, const pa_append_problem *p,
                                            void *ws, size_t ws_bytes) {
  PA_CHECK_INTERNAL(ctx, p && p->k && p->v && p->cache);
  AppendLayout L;
  PA_TRY(append_layout(p, L, ctx->msg, PA_MSG_SIZE));
  PA_TRY(check_ws(ctx, ws, ws_bytes, L.total));
  unsigned char *w = static_cast<unsigned char *>(ws);
  const posattn_cache_append_desc *D = p->desc;
  const posattn_kv_cache *c = p->cache;
  if (D->new_lens) std::memcpy(w + L.new_lens, D->new_lens, size_t(p->batch) * 4);
  std::memcpy(w + L.cache_lens, D->cache_lens, size_t(p->batch) * 4);
  std::memcpy(w + L.block_table, D->block_table, size_t(p->batch) * size_t(p->mpps) * 4);
  if (D->positions) std::memcpy(w + L.positions, D->positions, size_t(p->batch) * size_t(p->n) * 4);
  const PeView view = append_view(p);
  pa_prefill_scalars sc;
  PA_TRY(pa_prefill_tables_build(&view.prob, &L.pe, w + L.tables + L.pe.tables_at, &sc, ctx->msg,
                                 PA_MSG_SIZE));
  auto elems = [&](const posattn_tensor *t) {
    return size_t(int64_t(p->batch - 1) * t->stride_batch + int64_t(p->n - 1) * t->stride_seq +
                  int64_t(p->hkv - 1) * t->stride_head + p->d);
  };
  const size_t esz_in = posattn_dtype_size(p->in_dtype), esz_c = posattn_dtype_size(c->dtype);
  const size_t pool_elems = size_t(int64_t(c->num_pages - 1) * c->stride_page + int64_t(c->page_size - 1) * c->stride_slot +
                                   int64_t(c->kv_heads - 1) * c->stride_head + c->head_dim);
  pa::launch_status st;
  try {
    pa_append_params k{};
    fill_pe(k.pe, view, L.pe, sc, w + L.tables + L.pe.tables_at);
    k.k = pa::make_gptr(static_cast<const unsigned char *>(p->k->data), elems(p->k) * esz_in, "k_new");
    k.v = pa::make_gptr(static_cast<const unsigned char *>(p->v->data), elems(p->v) * esz_in, "v_new");
    k.k_sb = p->k->stride_batch; k.k_ss = p->k->stride_seq; k.k_sh = p->k->stride_head;
    k.v_sb = p->v->stride_batch; k.v_ss = p->v->stride_seq; k.v_sh = p->v->stride_head;
    k.in_dtype = p->in_dtype;
    k.k_pages = pa::make_gptr(static_cast<unsigned char *>(c->k_pages), pool_elems * esz_c, "k_pages");
    k.v_pages = pa::make_gptr(static_cast<unsigned char *>(c->v_pages), pool_elems * esz_c, "v_pages");
    k.stride_page = c->stride_page; k.stride_slot = c->stride_slot; k.stride_head = c->stride_head;
    k.batch = p->batch; k.n = p->n; k.hkv = p->hkv; k.d = p->d; k.page_size = p->page_size; k.mpps = p->mpps;
    k.new_lens = table<int32_t>(w, L.new_lens, D->new_lens ? size_t(p->batch) : 0, "new_lens");
    k.cache_lens = table<int32_t>(w, L.cache_lens, size_t(p->batch), "cache_lens");
    k.block_table = table<int32_t>(w, L.block_table, size_t(p->batch) * size_t(p->mpps), "block_table");
    k.positions = table<int32_t>(w, L.positions, D->positions ? size_t(p->batch) * size_t(p->n) : 0, "positions");
    st = pa_decode::append_launch(k, c->dtype, nullptr);
  } catch (const std::bad_alloc &) {
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_ALLOC_FAILED, "EMU backend: out of host memory");
  }
  // Validation guarantees every write lands in a page of the pool; a fault here is a kernel bug.
  if (!st.ok) return PA_CTX_FAIL(ctx, POSATTN_STATUS_KERNEL_FAULT, "EMU cache_append kernel: %s", st.msg);
  return POSATTN_STATUS_SUCCESS;
}
