// decode_fixture.h -- a random paged-KV decode problem for the decode tests (tests/cpu, tests/emu
// and tests/gpu): pools, block tables (optionally sharing a prefix between sequences), positions,
// and the dense prefill problem of one sequence gathered from its pages, which posattn_forward
// must agree with; the DESIGN.md section 5 baseline built from it, and the checks the decode
// suites share (the rule, LSEs, the NaN RULE).
#ifndef PA_DECODE_FIXTURE_H
#define PA_DECODE_FIXTURE_H

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "pa_test_shim.h"
#include "posattn.h"

// Page ids 0 .. num_pages - 1 in a random order (pools with their pages scrambled).
inline std::vector<int32_t> shuffled_pages(pat_rng &r, int num_pages) {
  std::vector<int32_t> ids(static_cast<size_t>(num_pages));
  for (int i = 0; i < num_pages; ++i) ids[size_t(i)] = i;
  for (int i = num_pages - 1; i > 0; --i) std::swap(ids[size_t(i)], ids[size_t(pat_rng_int(&r, 0, i))]);
  return ids;
}

// Gapped positions of `len` cached tokens: a random start in [0, 40], then steps of 1 to 3
// (tokens evicted in between).
inline void gapped_positions(pat_rng &r, int32_t *pos, int len) {
  int32_t p = pat_rng_int(&r, 0, 40);
  for (int j = 0; j < len; ++j) {
    pos[j] = p;
    p += pat_rng_int(&r, 1, 3);
  }
}

// FP8 dequantisation scales of few significant bits (value * scale is exact in fp32), one per
// tensor or one per kv head: K's, then V's.
inline void fp8_scales(pat_rng &r, posattn_kv_scale_kind kind, int hkv, std::vector<float> &k_scale,
                       std::vector<float> &v_scale) {
  const float few_bits[] = {0.375f, 0.75f, 1.25f, 2.5f, 0.3125f, 1.75f};
  const size_t ns = kind == POSATTN_KV_SCALE_PER_HEAD ? size_t(hkv) : 1;
  for (auto *sv : {&k_scale, &v_scale})
    for (size_t i = 0; i < ns; ++i) sv->push_back(few_bits[pat_rng_int(&r, 0, 5)]);
}

// The descriptor of one sequence as a dense problem: batch 1, n query tokens over len keys; mask,
// scale and PE at their defaults (the caller copies its own).
inline posattn_attention_desc dense_desc(int hq, int hkv, int d, int n, int len) {
  posattn_attention_desc desc;
  posattn_attention_desc_init(&desc);
  desc.batch = 1;
  desc.q_heads = hq;
  desc.kv_heads = hkv;
  desc.head_dim = d;
  desc.q_len = n;
  desc.kv_len = len;
  return desc;
}

// A context of one backend for the lifetime of the object.
struct TestContext {
  posattn_context *ctx = nullptr;
  explicit TestContext(posattn_backend b) {
    EXPECT_EQ(posattn_context_create(b, 0, &ctx), POSATTN_STATUS_SUCCESS);
  }
  ~TestContext() { posattn_context_destroy(ctx); }
  TestContext(const TestContext &) = delete;
  TestContext &operator=(const TestContext &) = delete;
};

struct DecodeCase {
  int batch = 2, hq = 4, hkv = 2, d = 16, n = 1, page_size = 4;
  std::vector<int> lens{5, 9};
  posattn_dtype dt = POSATTN_DTYPE_F32;
  bool share_prefix = false;  // sequences b >= 1 reuse sequence 0's full prefix pages
  bool explicit_positions = false;  // gapped kv positions (evictions), q at its token's position
  int extra_pages = 3;
  uint64_t seed = 1;
  // The cache dtype when it differs from dt (the FP8 formats; q stays dt). FP8 caches get random
  // scales of few significant bits (value * scale is exact in fp32), one per tensor or per head.
  posattn_dtype cache_dt = posattn_dtype(0);
  posattn_kv_scale_kind scale_kind = POSATTN_KV_SCALE_PER_TENSOR;
  posattn_dtype cdt() const { return cache_dt ? cache_dt : dt; }
  bool fp8() const { return cdt() == POSATTN_DTYPE_FP8_E4M3 || cdt() == POSATTN_DTYPE_FP8_E5M2; }
};

struct DecodeData {
  DecodeCase c;
  int num_pages = 0, mpps = 1;
  std::vector<int32_t> block_table, kv_pos, q_pos, lens;
  std::vector<float> k_scale, v_scale;  // FP8 caches: [1] or [hkv]
  pat_buf kpool{}, vpool{}, q{};
  posattn_kv_cache cache{};
  posattn_tensor tq{};
  posattn_decode_desc desc{};

  explicit DecodeData(const DecodeCase &cc) : c(cc) {
    pat_rng r;
    pat_rng_seed(&r, c.seed);
    lens.assign(c.lens.begin(), c.lens.end());
    std::vector<int> pages(static_cast<size_t>(c.batch));
    for (int b = 0; b < c.batch; ++b) {
      pages[size_t(b)] = (lens[size_t(b)] + c.page_size - 1) / c.page_size;
      mpps = std::max(mpps, pages[size_t(b)]);
    }
    mpps += 1;  // a spare entry per row that decode must not read
    num_pages = c.extra_pages;
    for (int x : pages) num_pages += x;
    const std::vector<int32_t> ids = shuffled_pages(r, num_pages);
    block_table.assign(size_t(c.batch) * mpps, -7);  // unused entries hold garbage
    size_t next = 0;
    for (int b = 0; b < c.batch; ++b) {
      int shared = 0;
      if (c.share_prefix && b > 0) shared = std::min(lens[0], lens[size_t(b)]) / c.page_size;
      for (int k = 0; k < pages[size_t(b)]; ++k)
        block_table[size_t(b) * mpps + k] = k < shared ? block_table[size_t(k)] : ids[next++];
    }
    const size_t pool = size_t(num_pages) * c.page_size * c.hkv * c.d;
    const size_t es = posattn_dtype_size(c.dt), ces = posattn_dtype_size(c.cdt());
    EXPECT_EQ(pat_buf_alloc(&kpool, pool * ces), 0);
    EXPECT_EQ(pat_buf_alloc(&vpool, pool * ces), 0);
    pat_fill_random(&r, c.cdt(), kpool.data, nullptr, int64_t(pool), 1.0);
    pat_fill_random(&r, c.cdt(), vpool.data, nullptr, int64_t(pool), 1.0);
    posattn_kv_cache_init(&cache, kpool.data, vpool.data, c.cdt(), num_pages, c.page_size, c.hkv, c.d);
    if (c.fp8()) {
      fp8_scales(r, c.scale_kind, c.hkv, k_scale, v_scale);
      cache.k_scale = k_scale.data();
      cache.v_scale = v_scale.data();
      cache.scale_kind = c.scale_kind;
    }
    const size_t qn = size_t(c.batch) * c.n * c.hq * c.d;
    EXPECT_EQ(pat_buf_alloc(&q, qn * es), 0);
    pat_fill_random(&r, c.dt, q.data, nullptr, int64_t(qn), 1.0);
    posattn_tensor_init_contiguous(&tq, q.data, c.dt, c.n, c.hq, c.d);

    const int64_t cap = int64_t(mpps) * c.page_size;
    kv_pos.assign(size_t(c.batch * cap), -1);
    q_pos.assign(size_t(c.batch) * c.n, 0);
    for (int b = 0; b < c.batch; ++b) {
      gapped_positions(r, &kv_pos[size_t(b * cap)], lens[size_t(b)]);
      for (int t = 0; t < c.n; ++t) {
        const int j = lens[size_t(b)] - c.n + t;
        q_pos[size_t(b) * c.n + t] = j >= 0 ? kv_pos[size_t(b * cap + j)] : t;
      }
    }
    posattn_decode_desc_init(&desc);
    desc.batch = c.batch;
    desc.q_heads = c.hq;
    desc.head_dim = c.d;
    desc.num_q_tokens = c.n;
    desc.cache_lens = lens.data();
    desc.block_table = block_table.data();
    desc.max_pages_per_seq = mpps;
    if (c.explicit_positions) {
      desc.q_positions = q_pos.data();
      desc.kv_positions = kv_pos.data();
    }
  }
  ~DecodeData() {
    pat_buf_free(&kpool);
    pat_buf_free(&vpool);
    pat_buf_free(&q);
  }
  DecodeData(const DecodeData &) = delete;
  DecodeData &operator=(const DecodeData &) = delete;

  int64_t capacity() const { return int64_t(mpps) * c.page_size; }
};

// Result of a decode: out [batch][n][hq][d], lse [batch][hq][n] (as doubles).
struct DecodeOut {
  posattn_status status = POSATTN_STATUS_INTERNAL;
  std::vector<double> out, lse;
  std::string message;
  bool guards_ok = true;
  int64_t nan = 0;
};

inline DecodeOut run_decode(posattn_context *ctx, DecodeData &D,
                            posattn_dtype out_dt = POSATTN_DTYPE_F32) {
  DecodeOut R;
  const DecodeCase &c = D.c;
  const int64_t rows = int64_t(c.batch) * c.n * c.hq;
  size_t ws = 0;
  R.status = posattn_decode_workspace_size(ctx, &D.desc, &D.cache, c.dt, out_dt, &ws);
  if (R.status != POSATTN_STATUS_SUCCESS) {
    R.message = posattn_context_last_message(ctx);
    return R;
  }
  pat_buf out{}, lse{}, w{};
  pat_buf_alloc(&out, size_t(rows) * c.d * posattn_dtype_size(out_dt));
  pat_buf_alloc(&lse, size_t(rows) * sizeof(float));
  pat_buf_alloc(&w, ws ? ws : 1);
  pat_buf_poison_nan(&out, out_dt, rows * c.d);
  pat_buf_poison_nan(&lse, POSATTN_DTYPE_F32, rows);
  posattn_tensor to;
  posattn_tensor_init_contiguous(&to, out.data, out_dt, c.n, c.hq, c.d);
  R.status = posattn_decode(ctx, &D.desc, &D.cache, &D.tq, &to, static_cast<float *>(lse.data),
                            ws ? w.data : nullptr, ws);
  R.message = posattn_context_last_message(ctx);
  if (R.status == POSATTN_STATUS_SUCCESS) {
    R.out.resize(size_t(rows * c.d));
    R.lse.resize(size_t(rows));
    for (int64_t i = 0; i < rows * c.d; ++i) R.out[size_t(i)] = pat_load(out.data, out_dt, i);
    for (int64_t i = 0; i < rows; ++i) R.lse[size_t(i)] = static_cast<float *>(lse.data)[i];
    R.nan = pat_count_nan(out.data, out_dt, rows * c.d) + pat_count_nan(lse.data, POSATTN_DTYPE_F32, rows);
  }
  R.guards_ok = pat_buf_guards_ok(&out) && pat_buf_guards_ok(&lse) && pat_buf_guards_ok(&w);
  pat_buf_free(&out);
  pat_buf_free(&lse);
  pat_buf_free(&w);
  return R;
}

// Sequence b as a dense prefill problem: K/V gathered from its pages (raw elements, same dtype),
// its q rows, positions and the decode descriptor's mask/PE settings. len must be >= 1.
struct DenseSeq {
  std::vector<unsigned char> k, v, q;
  posattn_tensor tk{}, tv{}, tq{};
  posattn_attention_desc desc{};
  std::vector<int32_t> qp, kp;
  // FP8 caches are gathered dequantised into f32 (value * scale, exact for the fixture's scales).
  DenseSeq(const DecodeData &D, int b) {
    const DecodeCase &c = D.c;
    const int len = D.lens[size_t(b)];
    const posattn_dtype kvdt = c.fp8() ? POSATTN_DTYPE_F32 : c.dt;
    const size_t es = posattn_dtype_size(c.dt), row = size_t(c.hkv) * c.d * posattn_dtype_size(kvdt);
    k.resize(size_t(len) * row);
    v.resize(size_t(len) * row);
    for (int j = 0; j < len; ++j) {
      const int page = D.block_table[size_t(b) * D.mpps + j / c.page_size];
      const size_t tok = size_t(page) * c.page_size + j % c.page_size;
      if (!c.fp8()) {
        std::memcpy(&k[size_t(j) * row], static_cast<unsigned char *>(D.kpool.data) + tok * row, row);
        std::memcpy(&v[size_t(j) * row], static_cast<unsigned char *>(D.vpool.data) + tok * row, row);
        continue;
      }
      for (int h = 0; h < c.hkv; ++h) {
        const size_t si = D.k_scale.size() > 1 ? size_t(h) : 0;
        for (int f = 0; f < c.d; ++f) {
          const int64_t src = int64_t(tok) * c.hkv * c.d + h * c.d + f, dst = int64_t(j) * c.hkv * c.d + h * c.d + f;
          pat_store(k.data(), kvdt, dst, pat_load(D.kpool.data, c.cdt(), src) * D.k_scale[si]);
          pat_store(v.data(), kvdt, dst, pat_load(D.vpool.data, c.cdt(), src) * D.v_scale[si]);
        }
      }
    }
    const size_t qrow = size_t(c.n) * c.hq * c.d * es;
    q.assign(static_cast<unsigned char *>(D.q.data) + size_t(b) * qrow,
             static_cast<unsigned char *>(D.q.data) + size_t(b + 1) * qrow);
    posattn_tensor_init_contiguous(&tk, k.data(), kvdt, len, c.hkv, c.d);
    posattn_tensor_init_contiguous(&tv, v.data(), kvdt, len, c.hkv, c.d);
    posattn_tensor_init_contiguous(&tq, q.data(), c.dt, c.n, c.hq, c.d);
    desc = dense_desc(c.hq, c.hkv, c.d, c.n, len);
    desc.causal = D.desc.causal;
    desc.window_left = D.desc.window_left;
    desc.softcap = D.desc.softcap;
    desc.softmax_scale = D.desc.softmax_scale;
    desc.pe = D.desc.pe;
    if (D.desc.kv_positions) {
      kp.assign(D.desc.kv_positions + b * D.capacity(), D.desc.kv_positions + b * D.capacity() + len);
      qp.assign(D.desc.q_positions + b * c.n, D.desc.q_positions + (b + 1) * c.n);
      desc.kv_positions = kp.data();
      desc.q_positions = qp.data();
    }
  }
};

// Index helpers of DecodeOut.
inline size_t out_index(const DecodeCase &c, int b, int t, int h, int f) {
  return ((size_t(b) * c.n + t) * c.hq + h) * c.d + f;
}
inline size_t lse_index(const DecodeCase &c, int b, int t, int h) {
  return (size_t(b) * c.hq + h) * c.n + t;
}

// FIRE parameters with random finite weights (arrays owned by the caller).
struct FireWeights {
  std::vector<float> w1, b1, w2, b2;
  void set(posattn_pe &pe, int hq, uint64_t seed) {
    pat_rng r;
    pat_rng_seed(&r, seed);
    const int w = 8;
    w1.resize(w); b1.resize(w); w2.resize(size_t(hq) * w); b2.resize(size_t(hq));
    for (auto *v : {&w1, &b1, &w2, &b2})
      for (float &x : *v) x = float(pat_rng_uniform(&r, -1, 1));
    pe.kind = POSATTN_PE_FIRE;
    pe.fire.mlp_width = w;
    pe.fire.w1 = w1.data(); pe.fire.b1 = b1.data(); pe.fire.w2 = w2.data(); pe.fire.b2 = b2.data();
  }
};

// The leading fields of a grid row of the decode suites (test_decode_emu, test_decode_mma,
// test_cuda_decode), each suite's row type adding its own after them: a name, the PE kind, a
// rotated-key cache, q's dtype, page size, query tokens, KV splits (0: automatic), head dim, q and
// kv heads, the sequences' cache lengths.
struct DecodeGridRow {
  const char *name;
  posattn_pe_kind pe;
  int k_rotated;
  posattn_dtype dt;
  int page_size, n, splits, d, hq, hkv;
  std::vector<int> lens;
};

// The DecodeCase of a grid row G of the decode suites: a DecodeGridRow with cache_dt, scale_kind
// and positions (explicit positions); the caller sets what else it varies.
template <class G>
DecodeCase grid_case(const G &g, uint64_t seed) {
  DecodeCase dc;
  dc.batch = int(g.lens.size());
  dc.hq = g.hq;
  dc.hkv = g.hkv;
  dc.d = g.d;
  dc.n = g.n;
  dc.page_size = g.page_size;
  dc.lens = g.lens;
  dc.dt = g.dt;
  dc.cache_dt = g.cache_dt;
  dc.scale_kind = g.scale_kind;
  dc.explicit_positions = g.positions;
  dc.seed = seed;
  return dc;
}

// The RoPE fields of docs/rope-configs.md on top of a plain RoPE: cfg 1 a DeepSeek-like offset
// block (odd offset: the block need not be aligned), GPT-J pairs, YaRN with mscale; cfg 2
// proportional (a larger base, some pairs active); 0 leaves r as it is.
inline void set_rope_cfg(posattn_rope_params &r, int cfg, int d) {
  if (cfg == 1) {
    r.layout = POSATTN_ROPE_GPTJ;
    r.rotary_offset = d / 2 + 1;
    r.rotary_dim = d / 4;
    r.scaling = POSATTN_ROPE_SCALING_YARN;
    r.factor = 16;
    r.original_max_position = 32;
    r.mscale = 0.7;
    r.mscale_all_dim = 1;
  } else if (cfg == 2) {
    r.base = 1e6;
    r.active_pairs = d / 8;
  }
}

// The T5 table and KERPLE a, p of the bias PEs (arrays owned by the object). KERPLE's a and p
// of head h are 0.1 + 0.2 (h % a_cycle) and 0.5 + 0.25 (h % p_cycle).
struct BiasTables {
  std::vector<float> t5, ka, kp;
  void set(posattn_pe &pe, int hq, int a_cycle, int p_cycle) {
    t5.resize(size_t(32) * hq);
    ka.resize(size_t(hq));
    kp.resize(size_t(hq));
    for (size_t i = 0; i < t5.size(); ++i) t5[i] = float(std::sin(0.7 * double(i)));
    for (int h = 0; h < hq; ++h) {
      ka[size_t(h)] = 0.1f + 0.2f * float(h % a_cycle);
      kp[size_t(h)] = 0.5f + 0.25f * float(h % p_cycle);
    }
    pe.t5.table = t5.data();
    pe.kerple.a = ka.data();
    pe.kerple.p = kp.data();
  }
};

// The low-precision baseline of section 5 for every row of D: each sequence's dense problem
// (DenseSeq: FP8 caches gathered dequantised) through the shim's naive attention in q's dtype,
// out in out_dt. Empty sequences stay 0.
inline std::vector<double> dense_baseline(const DecodeData &D, posattn_dtype out_dt) {
  const DecodeCase &c = D.c;
  std::vector<double> all(size_t(c.batch) * c.n * c.hq * c.d, 0.0);
  for (int b = 0; b < c.batch; ++b) {
    if (D.lens[size_t(b)] == 0) continue;
    DenseSeq S(D, b);
    std::vector<double> o(size_t(c.n) * c.hq * c.d);
    EXPECT_EQ(pat_naive_forward(&S.desc, &S.tq, &S.tk, &S.tv, c.dt, out_dt, o.data(), nullptr),
              POSATTN_STATUS_SUCCESS);
    std::copy(o.begin(), o.end(), all.begin() + long(size_t(b) * o.size()));
  }
  return all;
}

// The section 5 baseline of D against gold (REF's fp32 answer of D, from `ref`). A rotated RoPE
// cache holds keys as stored, which the dense problem cannot express; its baseline is the error of
// the same data without RoPE (dense baseline minus REF's fp32 answer), moved onto gold.
inline std::vector<double> rule_baseline(posattn_context *ref, DecodeData &D, const DecodeOut &gold,
                                         posattn_dtype out_dt) {
  if (!(D.cache.k_rotated && D.desc.pe.kind == POSATTN_PE_ROPE)) return dense_baseline(D, out_dt);
  const posattn_pe saved = D.desc.pe;
  D.desc.pe.kind = POSATTN_PE_NONE;  // same data without any rotation: a comparable error scale
  std::vector<double> base = dense_baseline(D, out_dt);
  const DecodeOut R0 = run_decode(ref, D);
  D.desc.pe = saved;
  for (size_t i = 0; i < base.size(); ++i) base[i] = gold.out[i] + (base[i] - R0.out[i]);
  return base;
}

// got passes the section 5 rule against (base, gold) in dtype dt.
inline void expect_rule(const std::vector<double> &got, const std::vector<double> &base,
                        const std::vector<double> &gold, posattn_dtype dt) {
  const pat_rule_result r = pat_rule_check(got.data(), base.data(), gold.data(), int64_t(gold.size()), dt);
  EXPECT_TRUE(r.pass) << "out: max_err " << r.max_err << " bound " << r.bound << " nmse " << r.nmse
                      << " bad " << r.bad_nonfinite;
}

// LSEs: an infinite gold LSE (an empty row) exactly, others within rel * (1 + |gold|).
inline void expect_lse_near(const std::vector<double> &got, const std::vector<double> &gold, double rel) {
  ASSERT_EQ(got.size(), gold.size());
  for (size_t i = 0; i < gold.size(); ++i) {
    if (std::isinf(gold[i])) EXPECT_EQ(got[i], gold[i]) << i;
    else EXPECT_NEAR(got[i], gold[i], rel * (1 + std::fabs(gold[i]))) << i;
  }
}

// Element offset of (sequence b, cache token j, kv head kh, feature f) in the contiguous pools.
inline int64_t pool_offset(const DecodeData &D, int b, int j, int kh, int f) {
  const int64_t page = D.block_table[size_t(b) * size_t(D.mpps) + size_t(j / D.c.page_size)];
  return ((page * D.c.page_size + j % D.c.page_size) * D.c.hkv + kh) * D.c.d + f;
}

// The NaN RULE of posattn.h on ctx: puts `value` (NaN or inf) at (b, j, kh, f) of the K or V pool
// (FP8 pools: the format's NaN / inf code, as storing inf would saturate), then expects the rows
// (b, t, h in kv head kh's group) with t seeing j (causal: j <= L - n + t) NaN with NaN lse, and
// every other row bit-identical to the clean run; the pool is restored afterwards.
inline void expect_nan_rule(posattn_context *ctx, DecodeData &D, bool in_v, int b, int j, int kh,
                            int f, double value) {
  const DecodeOut clean = run_decode(ctx, D);
  ASSERT_EQ(clean.status, POSATTN_STATUS_SUCCESS) << clean.message;
  void *pool = in_v ? D.vpool.data : D.kpool.data;
  const int64_t at = pool_offset(D, b, j, kh, f);
  const posattn_dtype cdt = D.c.cdt();
  const bool fp8 = D.c.fp8();
  unsigned char *byte = static_cast<unsigned char *>(pool) + at;
  const unsigned char saved_code = fp8 ? *byte : 0;
  const double saved = fp8 ? 0.0 : pat_load(pool, cdt, at);
  if (fp8)  // the codes themselves: E4M3 NaN S.1111.111, E5M2 inf / NaN
    *byte = cdt == POSATTN_DTYPE_FP8_E4M3 ? 0x7f : std::isinf(value) ? 0x7c : 0x7e;
  else
    pat_store(pool, cdt, at, value);
  const DecodeOut bad = run_decode(ctx, D);
  if (fp8) *byte = saved_code;
  else pat_store(pool, cdt, at, saved);
  ASSERT_EQ(bad.status, POSATTN_STATUS_SUCCESS) << bad.message;
  const DecodeCase &c = D.c;
  int poisoned = 0, wrong = 0;
  for (int bb = 0; bb < c.batch; ++bb)
    for (int t = 0; t < c.n; ++t)
      for (int h = 0; h < c.hq; ++h) {
        const bool p = bb == b && h / (c.hq / c.hkv) == kh && j <= D.lens[size_t(bb)] - c.n + t;
        poisoned += p;
        const size_t l = lse_index(c, bb, t, h), r = out_index(c, bb, t, h, 0);
        bool ok = p ? std::isnan(bad.lse[l]) : bad.lse[l] == clean.lse[l];
        for (int e = 0; e < c.d; ++e) {
          const double x = bad.out[r + size_t(e)];
          ok = ok && (p ? std::isnan(x) : x == clean.out[r + size_t(e)]);
        }
        if (!ok) ++wrong;
        EXPECT_TRUE(ok) << "b " << bb << " token " << t << " head " << h
                        << (p ? " should be poisoned" : " must equal the clean run") << ": lse "
                        << bad.lse[l] << " (clean " << clean.lse[l] << ")";
      }
  EXPECT_GT(poisoned, 0);
  EXPECT_EQ(wrong, 0);
}

// New K and V rows of an append: n tokens for every sequence of c, [batch][n][hkv][d] in f32,
// uniform in [-1, 1] from `seed` (all of K, then all of V).
struct AppendRows {
  std::vector<float> k, v;
  AppendRows(const DecodeCase &c, int n, uint64_t seed)
      : k(size_t(c.batch) * n * c.hkv * c.d), v(k.size()) {
    pat_rng r;
    pat_rng_seed(&r, seed);
    for (float &x : k) x = float(pat_rng_uniform(&r, -1, 1));
    for (float &x : v) x = float(pat_rng_uniform(&r, -1, 1));
  }
};

// An append into D's cache with RoPE on K: sequence b writes cnt[b] of its n new tokens from cache
// index start[b], token t at position pos[b * n + t] (the arrays are the caller's).
inline posattn_cache_append_desc rope_append_desc(const DecodeData &D, int n, const std::vector<int32_t> &start,
                                                  const std::vector<int32_t> &cnt,
                                                  const std::vector<int32_t> &pos) {
  posattn_cache_append_desc a;
  posattn_cache_append_desc_init(&a);
  a.batch = D.c.batch;
  a.num_tokens = n;
  a.new_lens = cnt.data();
  a.cache_lens = start.data();
  a.block_table = D.block_table.data();
  a.max_pages_per_seq = D.mpps;
  a.positions = pos.data();
  a.pe.kind = POSATTN_PE_ROPE;
  return a;
}

#endif
