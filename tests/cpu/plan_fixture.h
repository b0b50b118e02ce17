// plan_fixture.h -- a random varlen-Q paged problem for the plan/run tests (posattn.h, "Serving:
// plan once, run per layer"): sequences with their own query counts n_b and cache lengths L_b,
// pools in a scrambled page order, block tables with garbage in the unused slots, optional gapped
// positions, every PE kind's parameters; the run's arguments; and the oracle: each sequence as
// the dense problem gathered from its pages, computed by posattn_forward (REF).
#ifndef PA_PLAN_FIXTURE_H
#define PA_PLAN_FIXTURE_H

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "decode_fixture.h"
#include "pa_test_shim.h"
#include "posattn.h"

struct SeqSpec {
  int n, len;  // query tokens n_b, cache length L_b (new tokens included)
};

struct PlanCase {
  std::vector<SeqSpec> seqs{{1, 9}, {5, 12}};
  int hq = 4, hkv = 2, d = 16, page_size = 4;
  posattn_dtype q_dt = POSATTN_DTYPE_F32, out_dt = POSATTN_DTYPE_F32;
  posattn_dtype cache_dt = POSATTN_DTYPE_F32;
  posattn_kv_scale_kind scale_kind = POSATTN_KV_SCALE_PER_TENSOR;
  posattn_pe_kind pe = POSATTN_PE_NONE;
  bool k_rotated = false;           // ROPE: the cache holds K rotated at its position
  bool explicit_positions = false;  // gapped kv positions; query rows at their token's position
  bool sinks = false;
  int window_left = -1;
  float softcap = 0.f, softmax_scale = 0.f;
  int extra_q_rows = 3;  // max_q_tokens = rows + this
  // lower bounds on the geometry, so that several problems fit one plan (replay)
  int min_mpps = 0, min_pages = 0, min_max_q = 0;
  uint64_t seed = 1;
  bool fp8() const {
    return cache_dt == POSATTN_DTYPE_FP8_E4M3 || cache_dt == POSATTN_DTYPE_FP8_E5M2;
  }
};

struct PlanData {
  PlanCase c;
  int batch = 0, rows = 0, max_q = 0, mpps = 1, num_pages = 0;
  int64_t bt_stride = 0, kvp_stride = 0;
  std::vector<int32_t> q_indptr, kv_lens, block_table, q_pos, kv_pos;
  std::vector<float> sinks, k_scale, v_scale;
  pat_buf kpool{}, vpool{}, q{};
  std::vector<float> k_plain;  // rotated caches: K before rotation, laid out like the pool (f32)
  FireWeights fire;
  std::vector<float> t5_table, kerple_a, kerple_p;
  posattn_plan_desc desc{};

  explicit PlanData(const PlanCase &cc) : c(cc) {
    pat_rng r;
    pat_rng_seed(&r, c.seed);
    batch = int(c.seqs.size());
    q_indptr.assign(1, 0);
    for (const SeqSpec &s : c.seqs) {
      q_indptr.push_back(q_indptr.back() + s.n);
      kv_lens.push_back(s.len);
      mpps = std::max(mpps, (s.len + c.page_size - 1) / c.page_size);
      num_pages += (s.len + c.page_size - 1) / c.page_size;
    }
    rows = q_indptr.back();
    max_q = std::max(rows + c.extra_q_rows, c.min_max_q);
    mpps = std::max(mpps + 1, c.min_mpps);       // a spare slot per row (garbage)
    num_pages = std::max(num_pages + 3, c.min_pages);  // pages no sequence uses
    bt_stride = mpps + 2;  // a row stride wider than the plan's max_pages_per_seq
    kvp_stride = bt_stride * c.page_size;
    const std::vector<int32_t> ids = shuffled_pages(r, num_pages);
    block_table.assign(size_t(batch) * size_t(bt_stride), -7);  // unused slots hold garbage
    size_t next = 0;
    for (int b = 0; b < batch; ++b)
      for (int p = 0; p < (c.seqs[size_t(b)].len + c.page_size - 1) / c.page_size; ++p)
        block_table[size_t(b) * size_t(bt_stride) + size_t(p)] = ids[next++];

    // positions: gapped kv positions; query row t at the position of its aligned token
    kv_pos.assign(size_t(batch) * size_t(kvp_stride), -1);
    q_pos.assign(size_t(max_q), -3);
    for (int b = 0; b < batch; ++b) {
      const SeqSpec s = c.seqs[size_t(b)];
      gapped_positions(r, &kv_pos[size_t(b) * size_t(kvp_stride)], s.len);
      for (int t = 0; t < s.n; ++t) {
        const int j = s.len - s.n + t;
        q_pos[size_t(q_indptr[size_t(b)] + t)] = j >= 0 ? kv_pos[size_t(b) * size_t(kvp_stride) + size_t(j)] : t;
      }
    }

    const size_t pool = size_t(num_pages) * c.page_size * c.hkv * c.d;
    const size_t ces = posattn_dtype_size(c.cache_dt);
    EXPECT_EQ(pat_buf_alloc(&kpool, pool * ces), 0);
    EXPECT_EQ(pat_buf_alloc(&vpool, pool * ces), 0);
    pat_fill_random(&r, c.cache_dt, kpool.data, nullptr, int64_t(pool), 1.0);
    pat_fill_random(&r, c.cache_dt, vpool.data, nullptr, int64_t(pool), 1.0);
    if (c.fp8()) fp8_scales(r, c.scale_kind, c.hkv, k_scale, v_scale);
    const size_t qn = size_t(max_q) * c.hq * c.d;
    EXPECT_EQ(pat_buf_alloc(&q, qn * posattn_dtype_size(c.q_dt)), 0);
    pat_fill_random(&r, c.q_dt, q.data, nullptr, int64_t(qn), 1.0);
    for (int h = 0; h < c.hq; ++h) sinks.push_back(float(pat_rng_uniform(&r, -1.0, 2.0)));

    posattn_plan_desc_init(&desc);
    desc.max_batch = batch + 1;
    desc.max_q_tokens = max_q;
    desc.max_pages_per_seq = mpps;
    desc.max_position = c.explicit_positions ? 4000 : 0;
    desc.q_heads = c.hq;
    desc.head_dim = c.d;
    posattn_kv_cache_init(&desc.cache, nullptr, nullptr, c.cache_dt, num_pages, c.page_size, c.hkv, c.d);
    desc.cache.k_rotated = c.k_rotated ? 1 : 0;
    desc.cache.scale_kind = c.scale_kind;
    desc.q_dtype = c.q_dt;
    desc.out_dtype = c.out_dt;
    desc.window_left = c.window_left;
    desc.softcap = c.softcap;
    desc.softmax_scale = c.softmax_scale;
    desc.use_sinks = c.sinks ? 1 : 0;
    set_pe(desc.pe, r);
    if (c.k_rotated) rotate_pool();
  }
  ~PlanData() {
    pat_buf_free(&kpool);
    pat_buf_free(&vpool);
    pat_buf_free(&q);
  }
  PlanData(const PlanData &) = delete;
  PlanData &operator=(const PlanData &) = delete;

  int64_t capacity() const { return int64_t(mpps) * c.page_size; }
  int32_t page_of(int b, int j) const {
    return block_table[size_t(b) * size_t(bt_stride) + size_t(j / c.page_size)];
  }

  void set_pe(posattn_pe &pe, pat_rng &r) {
    pe.kind = c.pe;
    switch (c.pe) {
      case POSATTN_PE_FIRE: fire.set(pe, c.hq, c.seed + 5); break;
      case POSATTN_PE_T5:
        pe.t5.num_buckets = 16;
        pe.t5.max_distance = 64;
        t5_table.resize(size_t(16) * c.hq);
        for (float &x : t5_table) x = float(pat_rng_uniform(&r, -1, 1));
        pe.t5.table = t5_table.data();
        break;
      case POSATTN_PE_KERPLE_LOG:
      case POSATTN_PE_KERPLE_POWER:
        for (int h = 0; h < c.hq; ++h) {
          kerple_a.push_back(float(pat_rng_uniform(&r, 0.05, 1.0)));
          kerple_p.push_back(float(pat_rng_uniform(&r, 0.2, 1.9)));
        }
        pe.kerple.a = kerple_a.data();
        pe.kerple.p = kerple_p.data();
        break;
      default: break;
    }
  }

  // Rotated cache (f32 pools): keep the plain K, store K rotated at each used token's position.
  void rotate_pool() {
    EXPECT_EQ(c.cache_dt, POSATTN_DTYPE_F32);
    const size_t n = kpool.bytes / sizeof(float);
    k_plain.assign(static_cast<float *>(kpool.data), static_cast<float *>(kpool.data) + n);
    std::vector<double> x(size_t(c.d)), y(size_t(c.d));
    for (int b = 0; b < batch; ++b)
      for (int j = 0; j < c.seqs[size_t(b)].len; ++j) {
        const int64_t pos = c.explicit_positions ? kv_pos[size_t(b) * size_t(kvp_stride) + size_t(j)] : j;
        for (int h = 0; h < c.hkv; ++h) {
          const size_t off = ((size_t(page_of(b, j)) * c.page_size + size_t(j % c.page_size)) * c.hkv + size_t(h)) * c.d;
          for (int f = 0; f < c.d; ++f) x[size_t(f)] = k_plain[off + size_t(f)];
          ASSERT_EQ(posattn_pe_rope_apply(&desc.pe.rope, c.d, 4001, pos, x.data(), y.data()),
                    POSATTN_STATUS_SUCCESS);
          for (int f = 0; f < c.d; ++f) static_cast<float *>(kpool.data)[off + size_t(f)] = float(y[size_t(f)]);
        }
      }
  }

  // The run's arguments (out/lse/workspace supplied by the caller).
  posattn_run_args args(void *out, float *lse, void *ws, size_t ws_bytes) {
    posattn_run_args a;
    posattn_run_args_init(&a);
    a.batch = batch;
    a.q_indptr = q_indptr.data();
    a.kv_lens = kv_lens.data();
    a.block_table = block_table.data();
    a.block_table_stride = bt_stride;
    if (c.explicit_positions) {
      a.q_positions = q_pos.data();
      a.kv_positions = kv_pos.data();
      a.kv_positions_stride = kvp_stride;
    }
    a.sink_logits = c.sinks ? sinks.data() : nullptr;
    a.k_pages = kpool.data;
    a.v_pages = vpool.data;
    if (c.fp8()) {
      a.k_scale = k_scale.data();
      a.v_scale = v_scale.data();
    }
    posattn_tensor_init_contiguous(&a.q, q.data, c.q_dt, max_q, c.hq, c.d);
    posattn_tensor_init_contiguous(&a.out, out, c.out_dt, max_q, c.hq, c.d);
    a.lse = lse;
    a.workspace = ws;
    a.workspace_bytes = ws_bytes;
    return a;
  }
};

// A created plan and a workspace for it (guarded), prepared with posattn_plan_workspace_init.
struct PlanRun {
  posattn_context *ctx = nullptr;
  posattn_plan *plan = nullptr;
  pat_buf ws{};
  size_t ws_bytes = 0;
  posattn_status status = POSATTN_STATUS_INTERNAL;
  std::string message;
  PlanRun(posattn_context *cx, const posattn_plan_desc &d) : ctx(cx) {
    status = posattn_plan_create(ctx, &d, &plan);
    message = posattn_context_last_message(ctx);
    if (status != POSATTN_STATUS_SUCCESS) return;
    EXPECT_EQ(posattn_plan_workspace_size(plan, &ws_bytes), POSATTN_STATUS_SUCCESS);
    EXPECT_EQ(pat_buf_alloc(&ws, ws_bytes), 0);
    std::memset(ws.data, 0xA5, ws_bytes);  // garbage: init must clear the record
    EXPECT_EQ(posattn_plan_workspace_init(ctx, plan, ws.data, ws_bytes), POSATTN_STATUS_SUCCESS);
  }
  ~PlanRun() {
    posattn_plan_destroy(plan);
    pat_buf_free(&ws);
  }
  PlanRun(const PlanRun &) = delete;
  PlanRun &operator=(const PlanRun &) = delete;
  posattn_status check() { return posattn_plan_check(ctx, plan, ws.data, ws_bytes); }
};

// The value every output element holds before a run: rows a run must not write keep it.
constexpr double kSentinel = 4242.0;

// Outputs of one run: out [max_q][hq][d] of out_dt and lse [max_q][hq], filled with kSentinel,
// in guarded buffers.
struct RunOut {
  pat_buf out{}, lse{};
  const PlanData &D;
  explicit RunOut(const PlanData &d) : D(d) {
    const int64_t n = int64_t(D.max_q) * D.c.hq;
    EXPECT_EQ(pat_buf_alloc(&out, size_t(n) * D.c.d * posattn_dtype_size(D.c.out_dt)), 0);
    EXPECT_EQ(pat_buf_alloc(&lse, size_t(n) * sizeof(float)), 0);
    for (int64_t i = 0; i < n * D.c.d; ++i) pat_store(out.data, D.c.out_dt, i, kSentinel);
    for (int64_t i = 0; i < n; ++i) static_cast<float *>(lse.data)[i] = float(kSentinel);
  }
  ~RunOut() {
    pat_buf_free(&out);
    pat_buf_free(&lse);
  }
  RunOut(const RunOut &) = delete;
  RunOut &operator=(const RunOut &) = delete;
  float *lsep() { return static_cast<float *>(lse.data); }
  double o(int64_t row, int h, int f) const {
    return pat_load(out.data, D.c.out_dt, (row * D.c.hq + h) * D.c.d + f);
  }
  double l(int64_t row, int h) const { return static_cast<const float *>(lse.data)[row * D.c.hq + h]; }
  bool guards_ok() const { return pat_buf_guards_ok(&out) && pat_buf_guards_ok(&lse); }
  // every element of rows [r0, r1) still holds the sentinel
  bool untouched(int64_t r0, int64_t r1) const {
    for (int64_t r = r0; r < r1; ++r)
      for (int h = 0; h < D.c.hq; ++h) {
        if (l(r, h) != kSentinel) return false;
        for (int f = 0; f < D.c.d; ++f)
          if (o(r, h, f) != kSentinel) return false;
      }
    return true;
  }
};

// Sequence b as a dense prefill problem (q_len = n_b, kv_len = L_b, bottom-right causal), its
// K/V gathered from the pages in f32 (FP8 dequantised: value * scale, exact for the fixture's
// scales; rotated caches: the plain K, the prefill rotating it), run by posattn_forward on ctx.
// Expects sequence b's rows of R to match within tol, sinks applied in closed form:
// lse' = logaddexp(lse, sink), out' = out * exp(lse - lse').
inline void expect_seq_matches_forward(posattn_context *ctx, const PlanData &D, const RunOut &R,
                                       int b, double tol) {
  const PlanCase &c = D.c;
  const int n = c.seqs[size_t(b)].n, len = c.seqs[size_t(b)].len;
  const int64_t row0 = D.q_indptr[size_t(b)];
  SCOPED_TRACE("sequence " + std::to_string(b) + " (n " + std::to_string(n) + ", L " +
               std::to_string(len) + ")");
  if (n == 0) return;
  std::vector<double> out(size_t(n) * c.hq * c.d, 0.0), lse(size_t(c.hq) * n, -INFINITY);
  if (len > 0) {
    std::vector<float> k(size_t(len) * c.hkv * c.d), v(k.size()), q(size_t(n) * c.hq * c.d);
    for (int j = 0; j < len; ++j)
      for (int h = 0; h < c.hkv; ++h) {
        const int64_t src = ((int64_t(D.page_of(b, j)) * c.page_size + j % c.page_size) * c.hkv + h) * c.d;
        const size_t ks = D.k_scale.size() > 1 ? size_t(h) : 0;
        for (int f = 0; f < c.d; ++f) {
          const size_t dst = (size_t(j) * c.hkv + size_t(h)) * c.d + size_t(f);
          double kv = c.k_rotated ? D.k_plain[size_t(src + f)] : pat_load(D.kpool.data, c.cache_dt, src + f);
          double vv = pat_load(D.vpool.data, c.cache_dt, src + f);
          if (c.fp8()) kv *= D.k_scale[ks], vv *= D.v_scale[ks];
          k[dst] = float(kv);
          v[dst] = float(vv);
        }
      }
    for (size_t i = 0; i < q.size(); ++i)
      q[i] = float(pat_load(D.q.data, c.q_dt, row0 * c.hq * c.d + int64_t(i)));
    posattn_tensor tq, tk, tv;
    posattn_tensor_init_contiguous(&tq, q.data(), POSATTN_DTYPE_F32, n, c.hq, c.d);
    posattn_tensor_init_contiguous(&tk, k.data(), POSATTN_DTYPE_F32, len, c.hkv, c.d);
    posattn_tensor_init_contiguous(&tv, v.data(), POSATTN_DTYPE_F32, len, c.hkv, c.d);
    posattn_attention_desc fd = dense_desc(c.hq, c.hkv, c.d, n, len);
    fd.causal = D.desc.causal;
    fd.window_left = D.desc.window_left;
    fd.softcap = D.desc.softcap;
    fd.softmax_scale = D.desc.softmax_scale;
    fd.pe = D.desc.pe;
    std::vector<int32_t> qp, kp;
    if (c.explicit_positions) {
      qp.assign(D.q_pos.begin() + row0, D.q_pos.begin() + row0 + n);
      kp.assign(D.kv_pos.begin() + int64_t(b) * D.kvp_stride,
                D.kv_pos.begin() + int64_t(b) * D.kvp_stride + len);
      fd.q_positions = qp.data();
      fd.kv_positions = kp.data();
    }
    pat_run run = pat_forward_checked(ctx, &fd, &tq, &tk, &tv, POSATTN_DTYPE_F32, out.data(), lse.data());
    ASSERT_EQ(run.status, POSATTN_STATUS_SUCCESS) << run.message;
  }
  int bad = 0;
  for (int t = 0; t < n && bad < 5; ++t)
    for (int h = 0; h < c.hq; ++h) {
      double e = lse[size_t(h) * n + t], scale_out = 1.0;
      if (c.sinks) {
        const double s = D.sinks[size_t(h)];
        const double e2 = std::isinf(e) ? s : std::max(e, s) + std::log1p(std::exp(-std::fabs(e - s)));
        scale_out = std::isinf(e) ? 0.0 : std::exp(e - e2);
        e = e2;
      }
      const double a = R.l(row0 + t, h);
      if (std::isinf(e)) EXPECT_EQ(a, e) << "t " << t << " h " << h;
      else if (!(std::fabs(a - e) <= tol * (1 + std::fabs(e)))) {
        ADD_FAILURE() << "lse t " << t << " h " << h << ": " << a << " vs " << e;
        ++bad;
      }
      for (int f = 0; f < c.d; ++f) {
        const double want = out[(size_t(t) * c.hq + size_t(h)) * c.d + size_t(f)] * scale_out;
        if (!(std::fabs(R.o(row0 + t, h, f) - want) <= tol)) {
          ADD_FAILURE() << "out t " << t << " h " << h << " f " << f << ": " << R.o(row0 + t, h, f)
                        << " vs " << want;
          ++bad;
          break;
        }
      }
    }
}

#endif
