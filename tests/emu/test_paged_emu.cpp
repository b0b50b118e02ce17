// test_paged_emu.cpp -- the EMU backend of the serving plan (posattn_plan_run / posattn_plan_append,
// kernels/paged/) against an independent oracle: for every sequence, the dense problem gathered
// from its pages, computed by the test shim's naive fp64 attention (pat_naive_forward), with the
// sink folded in by hand; the DESIGN.md section 5 rule on out and lse. Covers decode (n_b = 1..8),
// prefill chunks, mixed batches with empty sequences, page sizes 1..256, GQA groups, every PE,
// window, softcap, sinks, FP8 caches, split counts, replays of one plan with new device-side
// data, the bad-index grid (error record, untouched rows, guard bands) and append vs
// posattn_cache_append. The grid runs on the tensor-core split kernel wherever the plan allows
// (the default: bf16 at hd 64), and again on the SIMT one under POSATTN_PAGED_KERNEL=simt (the
// *.simt registration in CMakeLists.txt). Plans and their workspaces come from plan_fixture.h
// (PlanRun), the scrambled pages, gapped positions and FP8 scales from decode_fixture.h; the
// problems and the oracle are this file's own.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "../cpu/plan_fixture.h"
#include "pa_test_check.hpp"
#include "pa_test_shim.h"
#include "posattn.h"

namespace {

constexpr float kUnwritten = -12345.f;  // written into every out/lse element before a run

// Defaults: bf16 q and cache at head_dim 64, which the tensor-core split kernel (paged_split_mma)
// serves; POSATTN_PAGED_KERNEL=simt (the *_simt registration in CMakeLists.txt, and
// KernelForced below) runs the same grid on paged_split.
struct Case {
  int hq = 4, hkv = 2, d = 64, page_size = 16;
  std::vector<int> n{1, 3};     // query tokens per sequence
  std::vector<int> lens{20, 9}; // cached tokens per sequence (the step's tokens included)
  posattn_dtype q_dt = POSATTN_DTYPE_BF16, cache_dt = POSATTN_DTYPE_BF16, out_dt = POSATTN_DTYPE_F32;
  int causal = 1, window_left = -1;
  float softcap = 0.f;
  bool sinks = false, explicit_positions = false, rotated = false;
  int splits = 0;
  posattn_kv_scale_kind scale_kind = POSATTN_KV_SCALE_PER_TENSOR;
  int extra_q_tokens = 5;  // max_q_tokens beyond the rows used
  int extra_batch = 1;     // max_batch beyond the batch
  int max_position = 0;    // the plan's (0: 4096 with explicit positions, else the default)
  int pad = 0;             // q/out: elements between heads and between rows beyond the data
  int pool_offset = 0;     // bytes the page pools start past a 256-byte boundary
  uint64_t seed = 1;
  std::function<void(posattn_pe &, int hq)> pe;  // empty = NONE
  bool fp8() const { return cache_dt == POSATTN_DTYPE_FP8_E4M3 || cache_dt == POSATTN_DTYPE_FP8_E5M2; }
  int batch() const { return int(n.size()); }
  int64_t head_stride() const { return d + pad; }
  int64_t row_stride() const { return hq * head_stride() + pad; }
};

// PE parameter arrays that must outlive plan creation (kept per test for the oracle too).
struct PeStore {
  std::vector<float> a, b, c, dd, t5;
};

bool is_rope(const posattn_pe &pe) { return pe.kind == POSATTN_PE_ROPE; }

// One problem of a case: the paged cache (shared by every step of a replay) and one step's data.
struct Problem {
  Case c;
  PeStore pes;
  posattn_pe pe{};
  int mpps = 1, num_pages = 0, max_q = 0, max_batch = 0;
  int64_t bt_stride = 0, kvp_stride = 0, capacity = 0;
  pat_buf kpool{}, vpool{};
  std::vector<float> k_scale, v_scale, sinks;
  posattn_kv_cache cache{};
  // per step
  std::vector<int32_t> indptr, lens, bt, q_pos, kv_pos;
  std::vector<double> k_raw;  // rotated caches: the un-rotated K the test appended [b][j][hkv][d]
  std::vector<size_t> k_raw_at;
  pat_buf q{};
  posattn_tensor tq{};
  int rows = 0;

  explicit Problem(const Case &cc) : c(cc) {
    posattn_pe_init(&pe);
    if (c.pe) c.pe(pe, c.hq);
    int max_pages = 1;
    for (int l : c.lens) max_pages = std::max(max_pages, (l + c.page_size - 1) / c.page_size);
    mpps = max_pages + 1;
    capacity = int64_t(mpps) * c.page_size;
    num_pages = 3;
    for (int l : c.lens) num_pages += (l + c.page_size - 1) / c.page_size;
    num_pages += max_pages;  // room for replays with other tables
    bt_stride = mpps + 2;
    kvp_stride = capacity + 3;
    max_batch = c.batch() + c.extra_batch;
    int total = 0;
    for (int x : c.n) total += x;
    max_q = total + c.extra_q_tokens;
    const size_t pool = size_t(num_pages) * c.page_size * c.hkv * c.d;
    const size_t ces = posattn_dtype_size(c.cache_dt);
    for (pat_buf *b : {&kpool, &vpool}) {
      EXPECT_EQ(pat_buf_alloc(b, pool * ces + size_t(c.pool_offset)), 0);
      b->data = static_cast<unsigned char *>(b->data) + c.pool_offset;
      b->bytes = pool * ces;
    }
    pat_rng r;
    pat_rng_seed(&r, c.seed);
    pat_fill_random(&r, c.cache_dt, kpool.data, nullptr, int64_t(pool), 1.0);
    pat_fill_random(&r, c.cache_dt, vpool.data, nullptr, int64_t(pool), 1.0);
    posattn_kv_cache_init(&cache, kpool.data, vpool.data, c.cache_dt, num_pages, c.page_size, c.hkv, c.d);
    cache.k_rotated = c.rotated;
    if (c.fp8()) {
      fp8_scales(r, c.scale_kind, c.hkv, k_scale, v_scale);
      cache.k_scale = k_scale.data();
      cache.v_scale = v_scale.data();
      cache.scale_kind = c.scale_kind;
    }
    for (int h = 0; h < c.hq; ++h) sinks.push_back(float(pat_rng_uniform(&r, -1.0, 2.0)));
    step(c.n, c.lens, c.seed + 1000);
  }
  ~Problem() {
    pat_buf_free(&kpool);
    pat_buf_free(&vpool);
    pat_buf_free(&q);
  }
  Problem(const Problem &) = delete;
  Problem &operator=(const Problem &) = delete;

  int batch() const { return int(lens.size()); }

  // A step: query counts and lengths, fresh block tables (random distinct pages), positions, q.
  void step(const std::vector<int> &n, const std::vector<int> &l, uint64_t seed) {
    pat_rng r;
    pat_rng_seed(&r, seed);
    const int batch = int(n.size());
    lens.assign(l.begin(), l.end());
    indptr.assign(1, 0);
    for (int x : n) indptr.push_back(indptr.back() + x);
    rows = indptr.back();
    const std::vector<int32_t> ids = shuffled_pages(r, num_pages);
    bt.assign(size_t(batch) * bt_stride, -7);  // unused entries hold garbage
    size_t next = 0;
    for (int b = 0; b < batch; ++b)
      for (int k = 0; k < (lens[size_t(b)] + c.page_size - 1) / c.page_size; ++k)
        bt[size_t(b) * bt_stride + k] = ids[next++];
    kv_pos.assign(size_t(batch) * kvp_stride, -3);
    q_pos.assign(size_t(max_q), -5);
    for (int b = 0; b < batch; ++b) {
      gapped_positions(r, &kv_pos[size_t(b) * kvp_stride], lens[size_t(b)]);
      for (int t = 0; t < n[size_t(b)]; ++t) {
        const int j = lens[size_t(b)] - n[size_t(b)] + t;
        q_pos[size_t(indptr[size_t(b)] + t)] = kv_pos[size_t(b) * kvp_stride + j];
      }
    }
    pat_buf_free(&q);
    const size_t qn = size_t(max_q) * size_t(c.row_stride());
    EXPECT_EQ(pat_buf_alloc(&q, qn * posattn_dtype_size(c.q_dt)), 0);
    pat_fill_random(&r, c.q_dt, q.data, nullptr, int64_t(qn), 1.0);
    posattn_tensor_init_contiguous(&tq, q.data, c.q_dt, max_q, c.hq, c.d);
    tq.stride_head = c.head_stride();
    tq.stride_seq = c.row_stride();
    if (c.rotated && is_rope(pe)) fill_rotated(r);
  }

  // Rotated caches: random un-rotated K for every cached token, appended with the plan itself
  // (posattn_plan_append rotates it into the pages); the oracle rotates k_raw.
  void fill_rotated(pat_rng &r);

  int64_t kv_position(int b, int j) const {
    return c.explicit_positions ? kv_pos[size_t(b) * kvp_stride + j] : j;
  }

  posattn_plan_desc plan_desc() const {
    posattn_plan_desc D;
    posattn_plan_desc_init(&D);
    D.max_batch = max_batch;
    D.max_q_tokens = max_q;
    D.max_pages_per_seq = mpps;
    D.q_heads = c.hq;
    D.head_dim = c.d;
    D.cache = cache;
    D.q_dtype = c.q_dt;
    D.out_dtype = c.out_dt;
    D.causal = c.causal;
    D.window_left = c.window_left;
    D.softcap = c.softcap;
    D.use_sinks = c.sinks;
    D.num_splits = c.splits;
    D.pe = pe;
    if (c.explicit_positions) D.max_position = 1 << 12;
    if (c.max_position) D.max_position = c.max_position;
    return D;
  }
};

posattn_context *g_emu = nullptr;
posattn_context *g_ref = nullptr;  // REF: defines correct; expect_matches runs every problem on it too

void Problem::fill_rotated(pat_rng &r) {
  const int batch = int(lens.size());
  k_raw.clear();
  k_raw_at.clear();
  std::vector<int32_t> app_indptr(1, 0);
  for (int b = 0; b < batch; ++b) {
    k_raw_at.push_back(k_raw.size());
    app_indptr.push_back(app_indptr.back() + lens[size_t(b)]);
    for (int64_t i = 0; i < int64_t(lens[size_t(b)]) * c.hkv * c.d; ++i)
      k_raw.push_back(pat_round_to(c.q_dt, pat_rng_uniform(&r, -1.0, 1.0)));
  }
  const int total = app_indptr.back();
  if (total == 0) return;
  std::vector<unsigned char> kn(size_t(total) * c.hkv * c.d * posattn_dtype_size(c.q_dt));
  std::vector<unsigned char> vn(kn.size());
  for (int64_t i = 0; i < int64_t(k_raw.size()); ++i) {
    pat_store(kn.data(), c.q_dt, i, k_raw[size_t(i)]);
    pat_store(vn.data(), c.q_dt, i, pat_round_to(c.q_dt, pat_rng_uniform(&r, -1.0, 1.0)));
  }
  // The appended rows as a plan with room for them (same cache, PE and positions).
  posattn_plan_desc D = plan_desc();
  D.max_q_tokens = total;
  PlanRun H(g_emu, D);  // plan_fixture.h: the plan and its initialised workspace
  ASSERT_EQ(H.status, POSATTN_STATUS_SUCCESS) << H.message;
  posattn_plan *plan = H.plan;
  pat_buf &ws = H.ws;
  const size_t wsb = H.ws_bytes;
  std::vector<int32_t> pos(static_cast<size_t>(total));
  for (int b = 0; b < batch; ++b)
    for (int j = 0; j < lens[size_t(b)]; ++j) pos[size_t(app_indptr[size_t(b)] + j)] = int32_t(kv_position(b, j));
  posattn_append_args a;
  posattn_append_args_init(&a);
  a.batch = batch;
  a.new_indptr = app_indptr.data();
  a.kv_lens = lens.data();
  a.block_table = bt.data();
  a.block_table_stride = bt_stride;
  a.positions = c.explicit_positions ? pos.data() : nullptr;
  a.k_pages = kpool.data;
  a.v_pages = vpool.data;
  a.k_scale = cache.k_scale;
  a.v_scale = cache.v_scale;
  posattn_tensor_init_contiguous(&a.k_new, kn.data(), c.q_dt, total, c.hkv, c.d);
  posattn_tensor_init_contiguous(&a.v_new, vn.data(), c.q_dt, total, c.hkv, c.d);
  a.workspace = ws.data;
  a.workspace_bytes = wsb;
  EXPECT_EQ(posattn_plan_append(g_emu, plan, &a), POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(g_emu);
  EXPECT_EQ(posattn_plan_check(g_emu, plan, ws.data, wsb), POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(g_emu);
}

// Result of one run: out [max_q][hq][d] and lse [max_q][hq] as doubles (sentinels where unwritten).
struct RunResult {
  posattn_status status = POSATTN_STATUS_INTERNAL, check = POSATTN_STATUS_INTERNAL;
  std::string message, check_message;
  std::vector<double> out, lse;
  bool guards_ok = false;
  bool pads_ok = false;  // q/out padding between heads and rows untouched
};

RunResult run_plan(posattn_plan *plan, Problem &P, pat_buf &ws, size_t wsb,
                posattn_context *ctx = g_emu) {
  RunResult R;
  const Case &c = P.c;
  const int64_t n_out = int64_t(P.max_q) * c.hq * c.d, n_lse = int64_t(P.max_q) * c.hq;
  const int64_t n_alloc = int64_t(P.max_q) * c.row_stride();
  pat_buf out{}, lse{};
  EXPECT_EQ(pat_buf_alloc(&out, size_t(n_alloc) * posattn_dtype_size(c.out_dt)), 0);
  EXPECT_EQ(pat_buf_alloc(&lse, size_t(n_lse) * 4), 0);
  for (int64_t i = 0; i < n_alloc; ++i) pat_store(out.data, c.out_dt, i, kUnwritten);
  for (int64_t i = 0; i < n_lse; ++i) static_cast<float *>(lse.data)[i] = kUnwritten;
  posattn_run_args a;
  posattn_run_args_init(&a);
  a.batch = P.batch();
  a.q_indptr = P.indptr.data();
  a.kv_lens = P.lens.data();
  a.block_table = P.bt.data();
  a.block_table_stride = P.bt_stride;
  if (c.explicit_positions) {
    a.q_positions = P.q_pos.data();
    a.kv_positions = P.kv_pos.data();
    a.kv_positions_stride = P.kvp_stride;
  }
  a.sink_logits = c.sinks ? P.sinks.data() : nullptr;
  a.k_pages = P.kpool.data;
  a.v_pages = P.vpool.data;
  a.k_scale = P.cache.k_scale;
  a.v_scale = P.cache.v_scale;
  a.q = P.tq;
  posattn_tensor_init_contiguous(&a.out, out.data, c.out_dt, P.max_q, c.hq, c.d);
  a.out.stride_head = c.head_stride();
  a.out.stride_seq = c.row_stride();
  a.lse = static_cast<float *>(lse.data);
  a.workspace = ws.data;
  a.workspace_bytes = wsb;
  R.status = posattn_plan_run(ctx, plan, &a);
  R.message = posattn_context_last_message(ctx);
  R.check = posattn_plan_check(ctx, plan, ws.data, wsb);
  R.check_message = posattn_context_last_message(ctx);
  R.out.resize(size_t(n_out));
  R.lse.resize(size_t(n_lse));
  R.pads_ok = true;
  for (int64_t i = 0; i < n_alloc; ++i) {  // compact [max_q][hq][d]; padding keeps the sentinel
    const int64_t row = i / c.row_stride(), in_row = i % c.row_stride();
    const int64_t h = in_row / c.head_stride(), f = in_row % c.head_stride();
    const double x = pat_load(out.data, c.out_dt, i);
    if (h < c.hq && f < c.d) R.out[size_t((row * c.hq + h) * c.d + f)] = x;
    else if (x != pat_round_to(c.out_dt, kUnwritten)) R.pads_ok = false;
  }
  for (int64_t i = 0; i < n_lse; ++i) R.lse[size_t(i)] = static_cast<float *>(lse.data)[i];
  R.guards_ok = pat_buf_guards_ok(&out) && pat_buf_guards_ok(&lse) && pat_buf_guards_ok(&ws);
  pat_buf_free(&out);
  pat_buf_free(&lse);
  return R;
}

// The oracle for sequence b: gold (fp64) and baseline (low precision) out [n][hq][d] and lse
// [hq][n], from the dense problem gathered from its pages (or k_raw for a rotated cache).
struct SeqOracle {
  std::vector<double> gold, base, gold_lse, base_lse;
};

SeqOracle oracle(const Problem &P, int b) {
  const Case &c = P.c;
  const int n = P.indptr[size_t(b) + 1] - P.indptr[size_t(b)], len = P.lens[size_t(b)];
  SeqOracle O;
  O.gold.assign(size_t(n) * c.hq * c.d, 0);
  O.base = O.gold;
  O.gold_lse.assign(size_t(n) * c.hq, 0);
  O.base_lse = O.gold_lse;
  if (n == 0) return O;
  const posattn_dtype f32 = POSATTN_DTYPE_F32;
  const size_t row = size_t(c.hkv) * c.d;
  std::vector<float> k(std::max<size_t>(1, size_t(len) * row)), v(k.size()), q(size_t(n) * c.hq * c.d);
  for (int j = 0; j < len; ++j) {
    const int page = P.bt[size_t(b) * P.bt_stride + j / c.page_size];
    const int64_t tok = int64_t(page) * c.page_size + j % c.page_size;
    for (int h = 0; h < c.hkv; ++h) {
      const double ks = P.k_scale.empty() ? 1.0 : P.k_scale[P.k_scale.size() > 1 ? size_t(h) : 0];
      const double vs = P.v_scale.empty() ? 1.0 : P.v_scale[P.v_scale.size() > 1 ? size_t(h) : 0];
      for (int f = 0; f < c.d; ++f) {
        const int64_t src = tok * int64_t(row) + h * c.d + f;
        const size_t dst = size_t(j) * row + size_t(h) * c.d + f;
        k[dst] = float(pat_load(P.kpool.data, c.cache_dt, src) * ks);
        v[dst] = float(pat_load(P.vpool.data, c.cache_dt, src) * vs);
        if (c.rotated && is_rope(P.pe)) k[dst] = float(P.k_raw[P.k_raw_at[size_t(b)] + dst]);
      }
    }
  }
  for (int t = 0; t < n; ++t)
    for (int e = 0; e < c.hq * c.d; ++e)
      q[size_t(t) * c.hq * c.d + e] =
          float(pat_load(P.q.data, c.q_dt, int64_t(P.indptr[size_t(b)] + t) * c.row_stride() +
                                               (e / c.d) * c.head_stride() + e % c.d));
  posattn_tensor tk, tv, tq;
  posattn_tensor_init_contiguous(&tk, k.data(), f32, len, c.hkv, c.d);
  posattn_tensor_init_contiguous(&tv, v.data(), f32, len, c.hkv, c.d);
  posattn_tensor_init_contiguous(&tq, q.data(), f32, n, c.hq, c.d);
  posattn_attention_desc desc = dense_desc(c.hq, c.hkv, c.d, n, len);
  desc.causal = c.causal;
  desc.window_left = c.window_left;
  desc.softcap = c.softcap;
  desc.pe = P.pe;
  if (desc.pe.kind == POSATTN_PE_ROPE && desc.pe.rope.scaling == POSATTN_ROPE_SCALING_DYNAMIC_NTK &&
      desc.pe.rope.dynamic_seq_len == 0)
    desc.pe.rope.dynamic_seq_len = (c.explicit_positions ? (1 << 12) : int(P.capacity) - 1) + 1;
  std::vector<int32_t> qp, kp;
  if (c.explicit_positions) {
    qp.assign(P.q_pos.begin() + P.indptr[size_t(b)], P.q_pos.begin() + P.indptr[size_t(b)] + n);
    kp.assign(P.kv_pos.begin() + int64_t(b) * P.kvp_stride, P.kv_pos.begin() + int64_t(b) * P.kvp_stride + len);
    desc.q_positions = qp.data();
    desc.kv_positions = kp.data();
  }
  const posattn_dtype lowp = c.q_dt == POSATTN_DTYPE_F32 ? POSATTN_DTYPE_BF16 : c.q_dt;
  EXPECT_EQ(pat_naive_forward(&desc, &tq, &tk, &tv, posattn_dtype(0), c.out_dt, O.gold.data(),
                              O.gold_lse.data()), POSATTN_STATUS_SUCCESS);
  EXPECT_EQ(pat_naive_forward(&desc, &tq, &tk, &tv, lowp, c.out_dt, O.base.data(), O.base_lse.data()),
            POSATTN_STATUS_SUCCESS);
  if (c.sinks)  // the sink is one more softmax term without a value
    for (auto [o, l] : {std::make_pair(&O.gold, &O.gold_lse), std::make_pair(&O.base, &O.base_lse)})
      for (int h = 0; h < c.hq; ++h)
        for (int t = 0; t < n; ++t) {
          double &lse = (*l)[size_t(h) * n + t];
          const double s = P.sinks[size_t(h)];
          const double m = std::max(lse, s);
          const double nl = m + std::log(std::exp(lse - m) + std::exp(s - m));
          const double w = std::isinf(lse) && lse < 0 ? 0.0 : std::exp(lse - nl);
          for (int f = 0; f < c.d; ++f) (*o)[(size_t(t) * c.hq + h) * c.d + f] *= w;
          lse = nl;
        }
  return O;
}

// Checks a successful run against the oracle: section 5 on out and lse of every row of good
// sequences, the sentinel in rows of `bad` sequences and in rows >= indptr[batch].
void expect_matches(const Problem &P, const RunResult &R, const std::vector<int> &bad = {}) {
  const Case &c = P.c;
  ASSERT_EQ(R.status, POSATTN_STATUS_SUCCESS) << R.message;
  EXPECT_TRUE(R.guards_ok);
  EXPECT_TRUE(R.pads_ok);
  const double sentinel_out = pat_round_to(c.out_dt, kUnwritten);
  std::vector<double> out, base, gold, lse, base_lse, gold_lse;
  for (int b = 0; b < P.batch(); ++b) {
    const int q0 = P.indptr[size_t(b)], n = P.indptr[size_t(b) + 1] - q0;
    const bool is_bad = std::find(bad.begin(), bad.end(), b) != bad.end();
    if (is_bad) {
      for (int t = 0; t < n; ++t)
        for (int e = 0; e < c.hq * c.d; ++e)
          ASSERT_EQ(R.out[(size_t(q0) + t) * c.hq * c.d + e], sentinel_out) << "bad sequence " << b << " written";
      for (int t = 0; t < n; ++t)
        for (int h = 0; h < c.hq; ++h) ASSERT_EQ(R.lse[(size_t(q0) + t) * c.hq + h], kUnwritten);
      continue;
    }
    const SeqOracle O = oracle(P, b);
    for (int t = 0; t < n; ++t)
      for (int h = 0; h < c.hq; ++h) {
        for (int f = 0; f < c.d; ++f) {
          const size_t i = ((size_t(q0) + t) * c.hq + h) * c.d + f, o = (size_t(t) * c.hq + h) * c.d + f;
          out.push_back(R.out[i]);
          base.push_back(O.base[o]);
          gold.push_back(O.gold[o]);
        }
        lse.push_back(R.lse[(size_t(q0) + t) * c.hq + h]);
        base_lse.push_back(O.base_lse[size_t(h) * n + t]);
        gold_lse.push_back(O.gold_lse[size_t(h) * n + t]);
      }
  }
  for (size_t i = size_t(P.rows) * c.hq * c.d; i < R.out.size(); ++i)
    ASSERT_EQ(R.out[i], sentinel_out) << "row beyond q_indptr[batch] written";
  for (size_t i = size_t(P.rows) * c.hq; i < R.lse.size(); ++i) ASSERT_EQ(R.lse[i], kUnwritten);
  // The same problem on a REF plan (fp64, defines correct): it writes exactly the rows EMU
  // writes, reports the same violation (single-violation problems), and its values are the
  // oracle's up to the one rounding to out_dt -- so EMU meets the rule against REF itself.
  if (g_ref != nullptr) {
    PlanRun HR(g_ref, P.plan_desc());
    ASSERT_EQ(HR.status, POSATTN_STATUS_SUCCESS) << HR.message;
    const RunResult RR = run_plan(HR.plan, const_cast<Problem &>(P), HR.ws, HR.ws_bytes, g_ref);
    ASSERT_EQ(RR.status, POSATTN_STATUS_SUCCESS) << RR.message;
    if (bad.size() <= 1) EXPECT_EQ(RR.check, R.check) << "REF: " << RR.check_message;
    const double rel = c.out_dt == POSATTN_DTYPE_F32 ? 1e-6 : c.out_dt == POSATTN_DTYPE_F16 ? 1e-3 : 8e-3;
    size_t k = 0;
    for (size_t i = 0; i < R.out.size(); ++i)
      ASSERT_EQ(R.out[i] == sentinel_out, RR.out[i] == sentinel_out) << "EMU and REF write different rows, element " << i;
    for (int b = 0; b < P.batch(); ++b) {
      if (std::find(bad.begin(), bad.end(), b) != bad.end()) continue;
      const int q0 = P.indptr[size_t(b)], n = P.indptr[size_t(b) + 1] - q0;
      for (int t = 0; t < n; ++t)
        for (int e = 0; e < c.hq * c.d; ++e, ++k) {
          const double g = gold[k], x = RR.out[(size_t(q0) + t) * c.hq * c.d + size_t(e)];
          if (std::isnan(g) || std::isnan(x)) {
            ASSERT_EQ(std::isnan(g), std::isnan(x)) << "REF vs oracle NaN, sequence " << b;
            continue;
          }
          // a rotated cache holds K rounded once after the rotation; the oracle rotates in fp64
          const double abs = c.rotated ? 2e-5 : 0.0;
          ASSERT_LE(std::fabs(x - g), rel * std::fmax(std::fabs(g), 1e-3) + abs)
              << "REF vs oracle, sequence " << b;
        }
    }
  }
  if (out.empty()) return;
  const pat_rule_result r = pat_rule_check(out.data(), base.data(), gold.data(), int64_t(out.size()), c.out_dt);
  EXPECT_TRUE(r.pass) << "out: max_err " << r.max_err << " bound " << r.bound << " nmse " << r.nmse
                      << " nonfinite " << r.bad_nonfinite;
  const posattn_dtype res = c.q_dt == POSATTN_DTYPE_F32 ? POSATTN_DTYPE_F16 : c.q_dt;
  // Rows that see nothing have lse -inf in both; the rule takes matched infinities.
  const pat_rule_result rl = pat_rule_check(lse.data(), base_lse.data(), gold_lse.data(), int64_t(lse.size()), res);
  EXPECT_TRUE(rl.pass) << "lse: max_err " << rl.max_err << " bound " << rl.bound << " nonfinite "
                       << rl.bad_nonfinite;
}


class PagedEmu : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_EMU, 0, &g_emu), POSATTN_STATUS_SUCCESS);
    ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, &g_ref), POSATTN_STATUS_SUCCESS);
  }
  static void TearDownTestSuite() {
    posattn_context_destroy(g_emu);
    posattn_context_destroy(g_ref);
    g_ref = nullptr;
  }

  void check_case(const Case &c) {
    Problem P(c);
    PlanRun H(g_emu, P.plan_desc());
    ASSERT_EQ(H.status, POSATTN_STATUS_SUCCESS) << H.message;
    const RunResult R = run_plan(H.plan, P, H.ws, H.ws_bytes);
    EXPECT_EQ(R.check, POSATTN_STATUS_SUCCESS) << R.check_message;
    expect_matches(P, R);
  }
};

// ---- PE settings ---------------------------------------------------------------------------
void pe_rope(posattn_pe &pe, int) { pe.kind = POSATTN_PE_ROPE; }
void pe_rope_exact(posattn_pe &pe, int) {
  pe.kind = POSATTN_PE_ROPE;
  pe.rope.angle_mode = POSATTN_ANGLE_EXACT;
  pe.rope.layout = POSATTN_ROPE_GPTJ;
}
void pe_alibi(posattn_pe &pe, int) { pe.kind = POSATTN_PE_ALIBI; }
void pe_kerple(posattn_pe &pe, int hq) {
  static std::vector<float> a, p;
  a.assign(size_t(hq), 0.f);
  p.assign(size_t(hq), 0.f);
  for (int h = 0; h < hq; ++h) {
    a[size_t(h)] = 0.5f + 0.25f * h;
    p[size_t(h)] = 0.75f + 0.125f * h;
  }
  pe.kind = POSATTN_PE_KERPLE_LOG;
  pe.kerple.a = a.data();
  pe.kerple.p = p.data();
}
void pe_kerple_power(posattn_pe &pe, int hq) {
  pe_kerple(pe, hq);
  pe.kind = POSATTN_PE_KERPLE_POWER;
}
void pe_t5(posattn_pe &pe, int hq) {
  static std::vector<float> t;
  pe.kind = POSATTN_PE_T5;
  pe.t5.num_buckets = 16;
  pe.t5.max_distance = 64;
  pe.t5.bidirectional = 0;
  t.assign(size_t(16) * hq, 0.f);
  for (size_t i = 0; i < t.size(); ++i) t[i] = float(std::sin(double(i)) * 2.0);
  pe.t5.table = t.data();
}
void pe_fire(posattn_pe &pe, int hq) {
  static std::vector<float> w1, b1, w2, b2;
  const int w = 8;
  w1.resize(w); b1.resize(w); w2.resize(size_t(hq) * w); b2.resize(size_t(hq));
  int i = 0;
  for (auto *v : {&w1, &b1, &w2, &b2})
    for (float &x : *v) x = float(std::sin(1.7 * ++i));
  pe.kind = POSATTN_PE_FIRE;
  pe.fire.mlp_width = w;
  pe.fire.w1 = w1.data(); pe.fire.b1 = b1.data(); pe.fire.w2 = w2.data(); pe.fire.b2 = b2.data();
}

// Forces the plan's split kernel (POSATTN_PAGED_KERNEL, read at plan creation) in a scope, and
// restores the setting the test started with.
struct KernelForce {
  explicit KernelForce(const char *kind) {
    const char *prev = std::getenv("POSATTN_PAGED_KERNEL");
    had_ = prev != nullptr;
    if (had_) prev_ = prev;
    setenv("POSATTN_PAGED_KERNEL", kind, 1);
  }
  ~KernelForce() {
    if (had_) setenv("POSATTN_PAGED_KERNEL", prev_.c_str(), 1);
    else unsetenv("POSATTN_PAGED_KERNEL");
  }
  bool had_ = false;
  std::string prev_;
  KernelForce(const KernelForce &) = delete;
  KernelForce &operator=(const KernelForce &) = delete;
};

// ---- correctness grid ----------------------------------------------------------------------

TEST_F(PagedEmu, DecodeTokens1To8) {
  for (int n : {1, 2, 5, 8}) {
    Case c;
    c.n = {n, n, n};
    c.lens = {n + 40, n + 3, n};
    c.seed = 10 + n;
    SCOPED_TRACE(n);
    check_case(c);
  }
}

TEST_F(PagedEmu, PrefillChunksOddLengths) {
  Case c;
  c.n = {37, 1, 0, 5, 199};
  c.lens = {37 + 150, 60, 25, 5, 199 + 40};
  c.hq = 6;
  c.hkv = 3;
  c.d = 40;
  c.seed = 3;
  check_case(c);
}

// Chunks of several blocks (128 rows per tensor-core block: 199 tokens x group 2 and x group 8),
// f16 at hd 128 with RoPE from explicit positions.
TEST_F(PagedEmu, LongPrefillChunksManyBlocks) {
  {
    Case c;
    c.n = {37, 1, 0, 5, 199};
    c.lens = {37 + 150, 60, 25, 5, 199 + 40};
    c.d = 128;
    c.seed = 13;
    check_case(c);
  }
  {
    Case c;
    c.hq = 8;
    c.hkv = 1;
    c.q_dt = POSATTN_DTYPE_F16;
    c.cache_dt = POSATTN_DTYPE_F16;
    c.pe = pe_rope;
    c.explicit_positions = true;
    c.n = {70, 2};
    c.lens = {70 + 33, 40};
    c.seed = 14;
    check_case(c);
  }
}

TEST_F(PagedEmu, MixedBatchEmptySequencesPage1) {
  Case c;
  c.page_size = 1;
  c.n = {0, 3, 0, 1, 12};
  c.lens = {0, 17, 9, 1, 30};
  c.seed = 4;
  check_case(c);
}

TEST_F(PagedEmu, Page256Group8) {
  Case c;
  c.page_size = 256;
  c.hq = 8;
  c.hkv = 1;
  c.n = {2, 9};
  c.lens = {300, 20};
  c.d = 64;
  c.seed = 5;
  check_case(c);
}

TEST_F(PagedEmu, Group1HeadDim128F16OutBf16) {
  Case c;
  c.hq = 3;
  c.hkv = 3;
  c.d = 128;
  c.q_dt = POSATTN_DTYPE_F16;
  c.cache_dt = POSATTN_DTYPE_F16;
  c.out_dt = POSATTN_DTYPE_BF16;
  c.n = {4, 1};
  c.lens = {50, 33};
  c.seed = 6;
  check_case(c);
}

TEST_F(PagedEmu, StridedQAndOut) {
  Case c;
  c.pad = 5;
  c.pe = pe_rope;
  c.n = {3, 1, 6};
  c.lens = {25, 40, 6};
  c.seed = 8;
  check_case(c);
}

TEST_F(PagedEmu, HeadDim256) {
  Case c;
  c.hq = 2;
  c.hkv = 1;
  c.d = 256;
  c.n = {3, 1};
  c.lens = {40, 17};
  c.seed = 7;
  check_case(c);
}

TEST_F(PagedEmu, EveryPe) {
  const std::vector<std::pair<const char *, std::function<void(posattn_pe &, int)>>> pes = {
      {"rope", pe_rope}, {"rope_exact_gptj", pe_rope_exact}, {"alibi", pe_alibi},
      {"fire", pe_fire}, {"t5", pe_t5}, {"kerple_log", pe_kerple},
      {"kerple_power", pe_kerple_power}};
  for (const auto &[name, fn] : pes)
    for (int explicit_pos = 0; explicit_pos < 2; ++explicit_pos) {
      SCOPED_TRACE(std::string(name) + (explicit_pos ? " explicit positions" : " default positions"));
      Case c;
      c.pe = fn;
      c.explicit_positions = explicit_pos;
      c.n = {1, 6, 0};
      c.lens = {33, 21, 4};
      c.seed = 20 + explicit_pos;
      check_case(c);
    }
}

TEST_F(PagedEmu, RopeRotatedCache) {
  for (int exact = 0; exact < 2; ++exact)
    for (int explicit_pos = 0; explicit_pos < 2; ++explicit_pos) {
      SCOPED_TRACE(std::to_string(exact) + " " + std::to_string(explicit_pos));
      Case c;
      c.pe = exact ? pe_rope_exact : pe_rope;
      c.rotated = true;
      c.cache_dt = POSATTN_DTYPE_F32;  // the rotated K is stored exactly enough for the oracle
      c.explicit_positions = explicit_pos;
      c.n = {2, 7};
      c.lens = {30, 7};
      c.seed = 30 + exact * 2 + explicit_pos;
      check_case(c);
    }
}

TEST_F(PagedEmu, WindowSoftcapSinks) {
  Case c;
  c.window_left = 5;
  c.softcap = 8.f;
  c.sinks = true;
  c.pe = pe_rope;
  c.n = {1, 11, 0};
  c.lens = {40, 25, 0};
  c.seed = 40;
  check_case(c);
}

TEST_F(PagedEmu, NonCausalWindow) {
  Case c;
  c.causal = 0;
  c.window_left = 3;
  c.n = {4, 2};
  c.lens = {19, 8};
  c.seed = 41;
  check_case(c);
}

TEST_F(PagedEmu, Fp8Caches) {
  for (posattn_dtype dt : {POSATTN_DTYPE_FP8_E4M3, POSATTN_DTYPE_FP8_E5M2})
    for (auto sk : {POSATTN_KV_SCALE_PER_TENSOR, POSATTN_KV_SCALE_PER_HEAD}) {
      SCOPED_TRACE(int(dt) * 10 + int(sk));
      Case c;
      c.cache_dt = dt;
      c.scale_kind = sk;
      c.pe = pe_alibi;
      c.n = {3, 1};
      c.lens = {44, 10};
      c.seed = 50 + int(dt) + int(sk);
      check_case(c);
    }
}

TEST_F(PagedEmu, SplitCounts) {
  for (int splits : {1, 0, 7, 40}) {
    SCOPED_TRACE(splits);
    Case c;
    c.splits = splits;
    c.page_size = 4;
    c.n = {1, 5, 2};
    c.lens = {90, 13, 2};
    c.seed = 60 + splits;
    check_case(c);
  }
}

// One plan, several steps with new lengths, tables, query counts and batch sizes: each matches.
TEST_F(PagedEmu, ReplayOnePlan) {
  Case c;
  c.pe = pe_rope;
  c.sinks = true;
  c.n = {4, 1, 8};
  c.lens = {60, 30, 40};
  c.extra_q_tokens = 10;
  c.seed = 70;
  Problem P(c);
  PlanRun H(g_emu, P.plan_desc());
  ASSERT_EQ(H.status, POSATTN_STATUS_SUCCESS) << H.message;
  const std::vector<std::pair<std::vector<int>, std::vector<int>>> steps = {
      {{4, 1, 8}, {60, 30, 40}}, {{1, 1, 1}, {61, 31, 41}}, {{0, 20, 2}, {0, 55, 3}},
      {{3, 0}, {9, 60}}, {{22, 1, 0}, {22, 2, 0}}};
  uint64_t seed = 71;
  for (const auto &[n, l] : steps) {
    SCOPED_TRACE(seed);
    P.step(n, l, seed++);
    const RunResult R = run_plan(H.plan, P, H.ws, H.ws_bytes);
    EXPECT_EQ(R.check, POSATTN_STATUS_SUCCESS) << R.check_message;
    expect_matches(P, R);
  }
}

// ---- bad device-side indices ---------------------------------------------------------------

struct Planted {
  const char *name;
  std::function<void(Problem &)> plant;
  posattn_status status;
  std::vector<int> bad;  // sequences whose rows stay untouched; empty + all = whole run
  bool whole_run;
  const char *msg_part;
};

TEST_F(PagedEmu, BadIndexGrid) {
  Case c;
  c.pe = pe_alibi;
  c.explicit_positions = true;
  c.page_size = 4;
  c.n = {2, 3, 1};
  c.lens = {20, 12, 9};
  c.seed = 80;
  const std::vector<Planted> grid = {
      {"q_indptr decreasing", [](Problem &P) { P.indptr[2] = P.indptr[1] - 1; },
       POSATTN_STATUS_BAD_SEQLENS, {}, true, "q_indptr[2]"},
      {"q_indptr[0] != 0", [](Problem &P) { P.indptr[0] = 1; }, POSATTN_STATUS_BAD_SEQLENS, {}, true,
       "q_indptr[0]"},
      {"q_indptr beyond max_q_tokens", [](Problem &P) { P.indptr[3] = P.max_q + 1; },
       POSATTN_STATUS_BAD_SEQLENS, {}, true, "q_indptr[3]"},
      {"kv_len negative", [](Problem &P) { P.lens[1] = -4; }, POSATTN_STATUS_BAD_SEQLENS, {1}, false,
       "kv_lens[1] = -4"},
      {"kv_len beyond capacity", [](Problem &P) { P.lens[2] = int(P.capacity) + 1; },
       POSATTN_STATUS_BAD_SEQLENS, {2}, false, "kv_lens[2]"},
      {"page out of range", [](Problem &P) { P.bt[size_t(P.bt_stride) + 1] = 9001; },
       POSATTN_STATUS_INVALID_ARGUMENT, {1}, false, "block_table[1][1] = 9001"},
      {"page negative", [](Problem &P) { P.bt[0] = -1; }, POSATTN_STATUS_INVALID_ARGUMENT, {0}, false,
       "block_table[0][0] = -1"},
      {"q position", [](Problem &P) { P.q_pos[3] = -2; }, POSATTN_STATUS_BAD_POSITIONS, {1}, false,
       "q_positions[3] = -2"},
      {"kv position", [](Problem &P) { P.kv_pos[size_t(2 * P.kvp_stride + 4)] = (1 << 12) + 1; },
       POSATTN_STATUS_BAD_POSITIONS, {2}, false, "kv_positions[2][4]"},
      {"two bad sequences", [](Problem &P) { P.bt[0] = 77777; P.lens[2] = -1; },
       POSATTN_STATUS_INVALID_ARGUMENT, {0, 2}, false, "sequence 0"},
  };
  for (const Planted &g : grid) {
    SCOPED_TRACE(g.name);
    Problem P(c);
    PlanRun H(g_emu, P.plan_desc());
    ASSERT_EQ(H.status, POSATTN_STATUS_SUCCESS) << H.message;
    g.plant(P);
    const RunResult R = run_plan(H.plan, P, H.ws, H.ws_bytes);
    ASSERT_EQ(R.status, POSATTN_STATUS_SUCCESS) << R.message;
    EXPECT_EQ(R.check, g.status) << R.check_message;
    EXPECT_NE(R.check_message.find(g.msg_part), std::string::npos) << R.check_message;
    EXPECT_TRUE(R.guards_ok);
    if (g.whole_run) {
      for (double x : R.out) ASSERT_EQ(x, pat_round_to(c.out_dt, kUnwritten));
      for (double x : R.lse) ASSERT_EQ(x, kUnwritten);
    } else {
      expect_matches(P, R, g.bad);
    }
    // The check cleared the record: a clean run afterwards reports nothing.
    Problem Q(c);
    const RunResult R2 = run_plan(H.plan, Q, H.ws, H.ws_bytes);
    EXPECT_EQ(R2.check, POSATTN_STATUS_SUCCESS) << R2.check_message;
    expect_matches(Q, R2);
  }
}


// NaN rule (as decode): a non-finite V element poisons exactly the rows that see its key.
TEST_F(PagedEmu, NanInValuePoisonsOnlyRowsThatSeeIt) {
  for (posattn_dtype dt : {POSATTN_DTYPE_F32, POSATTN_DTYPE_BF16}) {
  SCOPED_TRACE(int(dt));
  Case c;
  c.cache_dt = dt;
  c.n = {4, 2};
  c.lens = {20, 9};
  c.splits = 3;
  c.seed = 97;
  Problem P(c);
  PlanRun H(g_emu, P.plan_desc());
  ASSERT_EQ(H.status, POSATTN_STATUS_SUCCESS) << H.message;
  const int j = 18, page = P.bt[size_t(j / c.page_size)];  // sequence 0, token j, kv head 0
  const int64_t at = (int64_t(page) * c.page_size + j % c.page_size) * c.hkv * c.d + 3;
  if (dt == POSATTN_DTYPE_F32) static_cast<float *>(P.vpool.data)[at] = NAN;
  else static_cast<uint16_t *>(P.vpool.data)[at] = 0x7fc0;  // bf16 NaN
  const RunResult R = run_plan(H.plan, P, H.ws, H.ws_bytes);
  ASSERT_EQ(R.status, POSATTN_STATUS_SUCCESS) << R.message;
  const int group = c.hq / c.hkv;
  for (int row = 0; row < P.rows; ++row)
    for (int h = 0; h < c.hq; ++h) {
      // sequence 0, tokens 2 and 3 (i' = 18, 19 >= j), q heads of kv head 0
      const bool sees = row >= 2 && row < 4 && h / group == 0;
      const double l = R.lse[size_t(row) * c.hq + h];
      EXPECT_EQ(std::isnan(l), sees) << row << " " << h;
      for (int f = 0; f < c.d; ++f)
        EXPECT_EQ(std::isnan(R.out[(size_t(row) * c.hq + h) * c.d + f]), sees) << row << " " << h << " " << f;
    }
  }
}

// Default positions are not checked (as REF): beyond the plan's max_position, or before the
// cache start (n_b > L_b: negative query positions), they are computed, with EXACT tables too.
TEST_F(PagedEmu, DefaultPositionsBeyondMaxPosition) {
  for (auto pe : {pe_alibi, pe_rope_exact, pe_t5, pe_fire}) {
    Case c;
    c.pe = pe;
    c.max_position = 15;
    c.n = {1, 2, 6};
    c.lens = {40, 10, 3};
    c.seed = 96;
    check_case(c);
  }
}

// Sequences with n_b = 0 are padding: their lengths and block-table rows are not read.
TEST_F(PagedEmu, PaddingSequencesAreNotRead) {
  Case c;
  c.pe = pe_rope_exact;
  c.n = {2, 0, 3, 0};
  c.lens = {20, 0, 12, 0};
  c.seed = 95;
  Problem P(c);
  PlanRun H(g_emu, P.plan_desc());
  ASSERT_EQ(H.status, POSATTN_STATUS_SUCCESS) << H.message;
  P.lens[1] = -99;
  P.lens[3] = 1 << 30;
  for (int64_t p = 0; p < P.bt_stride; ++p) P.bt[size_t(P.bt_stride + p)] = 123456;
  const RunResult R = run_plan(H.plan, P, H.ws, H.ws_bytes);
  EXPECT_EQ(R.check, POSATTN_STATUS_SUCCESS) << R.check_message;
  expect_matches(P, R);
}

// Both split kernels forced on key cases (decode, a long chunk, a mixed batch on pages of 1, fp8
// per head, RoPE, splits); "mma" on a plan the tensor-core kernel cannot serve is refused at
// creation with the reason.
TEST_F(PagedEmu, KernelForced) {
  for (const char *kind : {"mma", "simt"}) {
    SCOPED_TRACE(kind);
    const KernelForce force(kind);
    Case c;
    c.n = {1, 1, 1, 1};
    c.lens = {90, 3, 1, 40};
    c.seed = 110;
    check_case(c);
    c.n = {150, 0, 4};
    c.lens = {170, 5, 4};
    c.d = 128;
    c.pe = pe_rope;
    c.seed = 111;
    check_case(c);
    c = Case{};
    c.page_size = 1;
    c.n = {0, 3, 0, 1, 12};
    c.lens = {0, 17, 9, 1, 30};
    c.cache_dt = POSATTN_DTYPE_FP8_E4M3;
    c.scale_kind = POSATTN_KV_SCALE_PER_HEAD;
    c.splits = 3;
    c.seed = 112;
    check_case(c);
  }
  const KernelForce force("mma");
  for (int which = 0; which < 2; ++which) {
    Case c;
    if (which == 0) c.q_dt = POSATTN_DTYPE_F32;
    else c.d = 40;
    Problem P(c);
    const posattn_plan_desc D = P.plan_desc();
    posattn_plan *plan = nullptr;
    EXPECT_EQ(posattn_plan_create(g_emu, &D, &plan), POSATTN_STATUS_NOT_SUPPORTED);
    EXPECT_EQ(plan, nullptr);
    EXPECT_NE(std::string(posattn_context_last_message(g_emu)).find("POSATTN_PAGED_KERNEL=mma"),
              std::string::npos)
        << posattn_context_last_message(g_emu);
  }
}

// Page pools that are not 16-byte aligned: the plan holds the tensor-core kernel, this run takes
// paged_split (a host-pointer test at run time), and matches.
TEST_F(PagedEmu, UnalignedPoolsTakeSimtKernel) {
  for (const char *kind : {"auto", "mma"}) {
    SCOPED_TRACE(kind);
    const KernelForce force(kind);
    Case c;
    c.pool_offset = 2;  // one bf16 element
    c.pe = pe_rope;
    c.n = {3, 1, 20};
    c.lens = {30, 12, 20};
    c.seed = 120;
    check_case(c);
  }
}

// The EMU paged kernels take head_dim <= 256: a larger plan is refused at creation with the reason.
TEST_F(PagedEmu, HeadDimAbove256NotSupported) {
  Case c;
  c.d = 320;
  Problem P(c);
  const posattn_plan_desc D = P.plan_desc();
  posattn_plan *plan = nullptr;
  EXPECT_EQ(posattn_plan_create(g_emu, &D, &plan), POSATTN_STATUS_NOT_SUPPORTED);
  EXPECT_EQ(plan, nullptr);
  EXPECT_NE(std::string(posattn_context_last_message(g_emu)).find("head_dim 320"), std::string::npos)
      << posattn_context_last_message(g_emu);
}

// ---- append --------------------------------------------------------------------------------

// posattn_plan_append vs posattn_cache_append (EMU, the one-shot call) on identical pools.
void append_case(posattn_dtype cache_dt, bool rotated, bool positions, int page_size, uint64_t seed) {
  const int hkv = 2, d = 32, batch = 3;
  const std::vector<int32_t> before = {5, 0, 17}, added = {3, 6, 0};
  pat_rng r;
  pat_rng_seed(&r, seed);
  const int mpps = 24;
  const int num_pages = batch * mpps + 2;
  const posattn_dtype in_dt = POSATTN_DTYPE_BF16;
  const size_t pool = size_t(num_pages) * page_size * hkv * d, ces = posattn_dtype_size(cache_dt);
  std::vector<unsigned char> k1(pool * ces), v1(pool * ces);
  pat_fill_random(&r, cache_dt, k1.data(), nullptr, int64_t(pool), 1.0);
  pat_fill_random(&r, cache_dt, v1.data(), nullptr, int64_t(pool), 1.0);
  std::vector<unsigned char> k2 = k1, v2 = v1;
  std::vector<float> ks = {0.75f, 1.25f}, vs = {2.5f, 0.375f};
  posattn_kv_cache cache;
  posattn_kv_cache_init(&cache, k1.data(), v1.data(), cache_dt, num_pages, page_size, hkv, d);
  cache.k_rotated = rotated;
  const bool fp8 = cache_dt == POSATTN_DTYPE_FP8_E4M3 || cache_dt == POSATTN_DTYPE_FP8_E5M2;
  if (fp8) {
    cache.k_scale = ks.data();
    cache.v_scale = vs.data();
    cache.scale_kind = POSATTN_KV_SCALE_PER_HEAD;
  }
  std::vector<int32_t> bt(size_t(batch) * mpps);
  for (size_t i = 0; i < bt.size(); ++i) bt[i] = int32_t((i * 7 + 3) % size_t(num_pages));
  const int n_max = 6;
  std::vector<int32_t> indptr(1, 0), lens_after, new_lens, pos_rows, pos_bn(size_t(batch) * n_max, 0);
  for (int b = 0; b < batch; ++b) {
    indptr.push_back(indptr.back() + added[size_t(b)]);
    lens_after.push_back(before[size_t(b)] + added[size_t(b)]);
    new_lens.push_back(added[size_t(b)]);
    for (int t = 0; t < added[size_t(b)]; ++t) {
      const int32_t p = 3 * (before[size_t(b)] + t) + 1;
      pos_rows.push_back(p);
      pos_bn[size_t(b) * n_max + t] = p;
    }
  }
  const int rows = indptr.back();
  // new K/V: packed rows for the plan, [batch][n_max] for the one-shot call
  std::vector<double> kv(size_t(rows) * hkv * d * 2);
  for (double &x : kv) x = pat_round_to(in_dt, pat_rng_uniform(&r, -2.0, 2.0));
  std::vector<unsigned char> kp(size_t(rows) * hkv * d * 2), vp(kp.size());
  std::vector<unsigned char> kb(size_t(batch) * n_max * hkv * d * 2, 0), vb(kb.size(), 0);
  for (int b = 0; b < batch; ++b)
    for (int t = 0; t < added[size_t(b)]; ++t)
      for (int e = 0; e < hkv * d; ++e) {
        const size_t row = size_t(indptr[size_t(b)] + t);
        const double kx = kv[row * hkv * d + e], vx = kv[(size_t(rows) + row) * hkv * d + e];
        pat_store(kp.data(), in_dt, int64_t(row * hkv * d + e), kx);
        pat_store(vp.data(), in_dt, int64_t(row * hkv * d + e), vx);
        pat_store(kb.data(), in_dt, int64_t((size_t(b) * n_max + t) * hkv * d + e), kx);
        pat_store(vb.data(), in_dt, int64_t((size_t(b) * n_max + t) * hkv * d + e), vx);
      }
  posattn_pe pe;
  posattn_pe_init(&pe);
  pe.kind = POSATTN_PE_ROPE;

  // the plan
  posattn_plan_desc D;
  posattn_plan_desc_init(&D);
  D.max_batch = batch;
  D.max_q_tokens = rows + 2;
  D.max_pages_per_seq = mpps;
  D.q_heads = hkv * 2;
  D.head_dim = d;
  D.cache = cache;
  D.q_dtype = in_dt;
  D.pe = pe;
  D.max_position = 1000;
  PlanRun H(g_emu, D);
  ASSERT_EQ(H.status, POSATTN_STATUS_SUCCESS) << H.message;
  posattn_plan *plan = H.plan;
  pat_buf &ws = H.ws;
  const size_t wsb = H.ws_bytes;
  std::vector<unsigned char> kpad(kp.size() + 64), vpad(vp.size() + 64);  // rows + 2 rows readable
  std::memcpy(kpad.data(), kp.data(), kp.size());
  std::memcpy(vpad.data(), vp.data(), vp.size());
  kpad.resize(size_t(rows + 2) * hkv * d * 2);
  vpad.resize(kpad.size());
  posattn_append_args a;
  posattn_append_args_init(&a);
  a.batch = batch;
  a.new_indptr = indptr.data();
  a.kv_lens = lens_after.data();
  a.block_table = bt.data();
  a.block_table_stride = mpps;
  a.positions = positions ? pos_rows.data() : nullptr;
  a.k_pages = k1.data();
  a.v_pages = v1.data();
  a.k_scale = cache.k_scale;
  a.v_scale = cache.v_scale;
  posattn_tensor_init_contiguous(&a.k_new, kpad.data(), in_dt, rows + 2, hkv, d);
  posattn_tensor_init_contiguous(&a.v_new, vpad.data(), in_dt, rows + 2, hkv, d);
  a.workspace = ws.data;
  a.workspace_bytes = wsb;
  ASSERT_EQ(posattn_plan_append(g_emu, plan, &a), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(g_emu);
  EXPECT_EQ(posattn_plan_check(g_emu, plan, ws.data, wsb), POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(g_emu);
  EXPECT_TRUE(pat_buf_guards_ok(&ws));

  // the one-shot call
  posattn_kv_cache c2 = cache;
  c2.k_pages = k2.data();
  c2.v_pages = v2.data();
  posattn_cache_append_desc ad;
  posattn_cache_append_desc_init(&ad);
  ad.batch = batch;
  ad.num_tokens = n_max;
  ad.new_lens = new_lens.data();
  ad.cache_lens = before.data();
  ad.block_table = bt.data();
  ad.max_pages_per_seq = mpps;
  ad.positions = positions ? pos_bn.data() : nullptr;
  ad.pe = pe;
  posattn_tensor tk, tv;
  posattn_tensor_init_contiguous(&tk, kb.data(), in_dt, n_max, hkv, d);
  posattn_tensor_init_contiguous(&tv, vb.data(), in_dt, n_max, hkv, d);
  size_t aw = 0;
  ASSERT_EQ(posattn_cache_append_workspace_size(g_emu, &ad, &c2, in_dt, &aw), POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(g_emu);
  std::vector<unsigned char> aws(aw + 256);
  void *awp = reinterpret_cast<void *>((reinterpret_cast<uintptr_t>(aws.data()) + 255) & ~uintptr_t(255));
  ASSERT_EQ(posattn_cache_append(g_emu, &ad, &c2, &tk, &tv, aw ? awp : nullptr, aw), POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(g_emu);
  // the same kernels' arithmetic: identical bytes
  EXPECT_EQ(std::memcmp(k1.data(), k2.data(), k1.size()), 0);
  EXPECT_EQ(std::memcmp(v1.data(), v2.data(), v1.size()), 0);
}

TEST_F(PagedEmu, AppendMatchesCacheAppend) {
  append_case(POSATTN_DTYPE_BF16, false, false, 4, 100);
  append_case(POSATTN_DTYPE_BF16, true, true, 4, 101);
  append_case(POSATTN_DTYPE_F32, true, false, 1, 102);
  append_case(POSATTN_DTYPE_FP8_E4M3, false, false, 16, 103);
  append_case(POSATTN_DTYPE_FP8_E5M2, true, true, 3, 104);
}

TEST_F(PagedEmu, AppendBadIndicesWriteNothing) {
  const int hkv = 1, d = 16, page = 4, mpps = 4, num_pages = 6;
  std::vector<float> kpool(size_t(num_pages) * page * hkv * d, 7.f), vpool(kpool);
  posattn_kv_cache cache;
  posattn_kv_cache_init(&cache, kpool.data(), vpool.data(), POSATTN_DTYPE_F32, num_pages, page, hkv, d);
  posattn_plan_desc D;
  posattn_plan_desc_init(&D);
  D.max_batch = 2;
  D.max_q_tokens = 4;
  D.max_pages_per_seq = mpps;
  D.q_heads = 1;
  D.head_dim = d;
  D.cache = cache;
  D.q_dtype = POSATTN_DTYPE_F32;
  PlanRun H(g_emu, D);
  ASSERT_EQ(H.status, POSATTN_STATUS_SUCCESS) << H.message;
  posattn_plan *plan = H.plan;
  pat_buf &ws = H.ws;
  const size_t wsb = H.ws_bytes;
  std::vector<float> kn(size_t(4) * d, 1.f), vn(kn);
  struct Bad {
    std::vector<int32_t> indptr, lens, bt;
    posattn_status st;
    const char *msg;
    int good_seq;  // -1: nothing may change
  };
  const std::vector<Bad> bads = {
      {{0, 2, 1}, {2, 1}, {0, 1, 2, 3, 4, 5, 0, 0}, POSATTN_STATUS_BAD_SEQLENS, "new_indptr[2]", -1},
      {{0, 2, 3}, {1, 1}, {0, 1, 2, 3, 4, 5, 0, 0}, POSATTN_STATUS_BAD_SEQLENS, "kv_lens[0] = 1", 1},
      {{0, 2, 3}, {2, 5}, {0, 1, 2, 3, 4, 99, 0, 0}, POSATTN_STATUS_INVALID_ARGUMENT,
       "block_table[1][1] = 99", 0},
  };
  for (const Bad &bd : bads) {
    SCOPED_TRACE(bd.msg);
    std::fill(kpool.begin(), kpool.end(), 7.f);
    std::fill(vpool.begin(), vpool.end(), 7.f);
    posattn_append_args a;
    posattn_append_args_init(&a);
    a.batch = 2;
    a.new_indptr = bd.indptr.data();
    a.kv_lens = bd.lens.data();
    a.block_table = bd.bt.data();
    a.block_table_stride = mpps;
    a.k_pages = kpool.data();
    a.v_pages = vpool.data();
    posattn_tensor_init_contiguous(&a.k_new, kn.data(), POSATTN_DTYPE_F32, 4, hkv, d);
    posattn_tensor_init_contiguous(&a.v_new, vn.data(), POSATTN_DTYPE_F32, 4, hkv, d);
    a.workspace = ws.data;
    a.workspace_bytes = wsb;
    ASSERT_EQ(posattn_plan_append(g_emu, plan, &a), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(g_emu);
    EXPECT_EQ(posattn_plan_check(g_emu, plan, ws.data, wsb), bd.st);
    const std::string m = posattn_context_last_message(g_emu);
    EXPECT_NE(m.find(bd.msg), std::string::npos) << m;
    // only the good sequence's new slots changed
    int64_t changed = 0, expected = 0;
    for (float x : kpool) changed += x != 7.f;
    if (bd.good_seq >= 0)
      expected = int64_t(bd.indptr[size_t(bd.good_seq) + 1] - bd.indptr[size_t(bd.good_seq)]) * hkv * d;
    EXPECT_EQ(changed, expected);
  }
  EXPECT_TRUE(pat_buf_guards_ok(&ws));
}

}  // namespace
