// decode_fixture.h -- a random paged-KV decode problem for the decode tests (tests/cpu and
// tests/emu): pools, block tables (optionally sharing a prefix between sequences), positions,
// and the dense prefill problem of one sequence gathered from its pages, which posattn_forward
// must agree with.
#ifndef PA_DECODE_FIXTURE_H
#define PA_DECODE_FIXTURE_H

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "pa_test_shim.h"
#include "posattn.h"

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
    std::vector<int32_t> ids(static_cast<size_t>(num_pages));
    for (int i = 0; i < num_pages; ++i) ids[size_t(i)] = i;
    for (int i = num_pages - 1; i > 0; --i) std::swap(ids[size_t(i)], ids[size_t(pat_rng_int(&r, 0, i))]);
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
      const float few_bits[] = {0.375f, 0.75f, 1.25f, 2.5f, 0.3125f, 1.75f};
      const size_t ns = c.scale_kind == POSATTN_KV_SCALE_PER_HEAD ? size_t(c.hkv) : 1;
      for (auto *sv : {&k_scale, &v_scale})
        for (size_t i = 0; i < ns; ++i) sv->push_back(few_bits[pat_rng_int(&r, 0, 5)]);
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
      int32_t p = pat_rng_int(&r, 0, 40);
      for (int j = 0; j < lens[size_t(b)]; ++j) {
        kv_pos[size_t(b * cap + j)] = p;
        p += pat_rng_int(&r, 1, 3);  // gaps: tokens evicted in between
      }
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
    posattn_attention_desc_init(&desc);
    desc.batch = 1;
    desc.q_heads = c.hq;
    desc.kv_heads = c.hkv;
    desc.head_dim = c.d;
    desc.q_len = c.n;
    desc.kv_len = len;
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

#endif
