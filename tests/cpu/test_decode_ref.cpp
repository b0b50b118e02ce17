// REF decode and cache append: decode equals posattn_forward on the dense problem gathered from
// the pages; append then decode; sinks; empty sequences; every validation rule with its status.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "decode_fixture.h"

namespace {


// Every sequence of D: decode rows vs posattn_forward (REF) on the gathered dense problem.
void expect_matches_prefill(posattn_context *ctx, DecodeData &D, const DecodeOut &R, double tol) {
  const DecodeCase &c = D.c;
  for (int b = 0; b < c.batch; ++b) {
    SCOPED_TRACE("sequence " + std::to_string(b));
    if (D.lens[size_t(b)] == 0) {
      for (int t = 0; t < c.n; ++t)
        for (int h = 0; h < c.hq; ++h) {
          EXPECT_TRUE(std::isinf(R.lse[lse_index(c, b, t, h)]) && R.lse[lse_index(c, b, t, h)] < 0);
          for (int f = 0; f < c.d; ++f) EXPECT_EQ(R.out[out_index(c, b, t, h, f)], 0.0);
        }
      continue;
    }
    DenseSeq S(D, b);
    std::vector<double> out(size_t(c.n) * c.hq * c.d), lse(size_t(c.hq) * c.n);
    pat_run run = pat_forward_checked(ctx, &S.desc, &S.tq, &S.tk, &S.tv, POSATTN_DTYPE_F32,
                                      out.data(), lse.data());
    ASSERT_EQ(run.status, POSATTN_STATUS_SUCCESS) << run.message;
    for (int t = 0; t < c.n; ++t)
      for (int h = 0; h < c.hq; ++h) {
        const double a = R.lse[lse_index(c, b, t, h)], e = lse[size_t(h) * c.n + t];
        if (std::isinf(e)) EXPECT_EQ(a, e);
        else EXPECT_NEAR(a, e, tol * (1 + std::fabs(e)));
        for (int f = 0; f < c.d; ++f)
          EXPECT_NEAR(R.out[out_index(c, b, t, h, f)], out[(size_t(t) * c.hq + h) * c.d + f], tol)
              << "t " << t << " h " << h << " f " << f;
      }
  }
}

TEST(DecodeRef, EqualsPrefillOnGatheredPages) {
  TestContext C(POSATTN_BACKEND_REF);
  FireWeights fw;
  const posattn_pe_kind kinds[] = {POSATTN_PE_NONE, POSATTN_PE_ROPE, POSATTN_PE_ALIBI,
                                   POSATTN_PE_FIRE};
  int cases = 0;
  for (posattn_pe_kind kind : kinds)
    for (int ps : {1, 3, 16})
      for (int n : {1, 3})
        for (int variant = 0; variant < 2; ++variant) {
          DecodeCase dc;
          dc.batch = 3;
          dc.n = n;
          dc.page_size = ps;
          dc.lens = {n + 6, 1 + n, 23};
          dc.share_prefix = variant == 1;
          dc.explicit_positions = variant == 1;
          dc.seed = 100 + cases;
          DecodeData D(dc);
          D.desc.pe.kind = kind;
          if (kind == POSATTN_PE_FIRE) fw.set(D.desc.pe, dc.hq, 7);
          if (variant == 1) {
            D.desc.window_left = 5;
            D.desc.softcap = 3.f;
            D.desc.softmax_scale = 0.4f;
          }
          SCOPED_TRACE("pe " + std::to_string(kind) + " page " + std::to_string(ps) + " n " +
                       std::to_string(n) + " variant " + std::to_string(variant));
          DecodeOut R = run_decode(C.ctx, D);
          ASSERT_EQ(R.status, POSATTN_STATUS_SUCCESS) << R.message;
          EXPECT_TRUE(R.guards_ok);
          EXPECT_EQ(R.nan, 0);
          expect_matches_prefill(C.ctx, D, R, 1e-6);
          ++cases;
        }
  EXPECT_EQ(cases, 48);
}

TEST(DecodeRef, EmptyAndShortSequences) {
  TestContext C(POSATTN_BACKEND_REF);
  DecodeCase dc;
  dc.batch = 3;
  dc.n = 2;
  dc.lens = {0, 1, 6};  // empty; shorter than n (query 0 sees nothing); normal
  DecodeData D(dc);
  DecodeOut R = run_decode(C.ctx, D);
  ASSERT_EQ(R.status, POSATTN_STATUS_SUCCESS) << R.message;
  expect_matches_prefill(C.ctx, D, R, 1e-6);
  // sequence 1 (length 1, two queries): query 0 is aligned with token -1 and sees nothing
  EXPECT_TRUE(std::isinf(R.lse[lse_index(dc, 1, 0, 0)]));
  EXPECT_FALSE(std::isinf(R.lse[lse_index(dc, 1, 1, 0)]));
}

TEST(DecodeRef, SinksAddATermWithoutValue) {
  TestContext C(POSATTN_BACKEND_REF);
  DecodeCase dc;
  dc.lens = {0, 11};
  DecodeData D(dc);
  DecodeOut plain = run_decode(C.ctx, D);
  ASSERT_EQ(plain.status, POSATTN_STATUS_SUCCESS) << plain.message;
  std::vector<float> sinks = {0.5f, -1.f, 2.f, 0.f};
  D.desc.sink_logits = sinks.data();
  DecodeOut S = run_decode(C.ctx, D);
  ASSERT_EQ(S.status, POSATTN_STATUS_SUCCESS) << S.message;
  for (int b = 0; b < dc.batch; ++b)
    for (int h = 0; h < dc.hq; ++h) {
      const double l = plain.lse[lse_index(dc, b, 0, h)], sk = sinks[size_t(h)];
      const double want = std::isinf(l) ? sk : std::max(l, sk) + std::log1p(std::exp(-std::fabs(l - sk)));
      EXPECT_NEAR(S.lse[lse_index(dc, b, 0, h)], want, 1e-6);
      const double shrink = std::isinf(l) ? 0.0 : std::exp(l - want);
      for (int f = 0; f < dc.d; ++f)
        EXPECT_NEAR(S.out[out_index(dc, b, 0, h, f)], plain.out[out_index(dc, b, 0, h, f)] * shrink, 1e-6);
    }
}

// Appends the rows of k0/v0 ([batch, n, hkv, d] f32) into D's cache through posattn_cache_append.
posattn_status append(posattn_context *ctx, DecodeData &D, posattn_cache_append_desc &a,
                      std::vector<float> &k0, std::vector<float> &v0) {
  posattn_tensor tk, tv;
  posattn_tensor_init_contiguous(&tk, k0.data(), POSATTN_DTYPE_F32, a.num_tokens, D.c.hkv, D.c.d);
  posattn_tensor_init_contiguous(&tv, v0.data(), POSATTN_DTYPE_F32, a.num_tokens, D.c.hkv, D.c.d);
  size_t ws = 0;
  posattn_status st = posattn_cache_append_workspace_size(ctx, &a, &D.cache, POSATTN_DTYPE_F32, &ws);
  if (st != POSATTN_STATUS_SUCCESS) return st;
  pat_buf w{};
  pat_buf_alloc(&w, ws ? ws : 1);
  st = posattn_cache_append(ctx, &a, &D.cache, &tk, &tv, ws ? w.data : nullptr, ws);
  EXPECT_TRUE(pat_buf_guards_ok(&w));
  pat_buf_free(&w);
  return st;
}

// Prefill tokens 0..len-1 of every sequence through append into a ROTATED cache, then decode:
// must equal RoPE prefill on the un-rotated keys (the cache rounds rotated K to f32 once).
TEST(DecodeRef, AppendRotatedThenDecodeEqualsRopePrefill) {
  TestContext C(POSATTN_BACKEND_REF);
  for (int ps : {1, 5}) {
    DecodeCase dc;
    dc.page_size = ps;
    dc.lens = {7, 12};
    dc.explicit_positions = true;
    DecodeData D(dc);
    // D's pools hold the un-rotated keys; keep a copy in token order, then rebuild by append.
    DecodeData U(dc);  // same seed: identical pools, tables, positions
    D.cache.k_rotated = 1;
    const int n = 12;
    std::vector<float> k0(size_t(dc.batch) * n * dc.hkv * dc.d), v0(k0.size());
    for (int b = 0; b < dc.batch; ++b) {
      DenseSeq S(U, b);
      const size_t row = size_t(dc.hkv) * dc.d;
      for (int j = 0; j < U.lens[size_t(b)]; ++j)
        for (size_t e = 0; e < row; ++e) {
          k0[(size_t(b) * n + j) * row + e] = float(pat_load(S.k.data(), dc.dt, int64_t(j * row + e)));
          v0[(size_t(b) * n + j) * row + e] = float(pat_load(S.v.data(), dc.dt, int64_t(j * row + e)));
        }
    }
    std::memset(D.kpool.data, 0, D.kpool.bytes);
    std::memset(D.vpool.data, 0, D.vpool.bytes);
    posattn_cache_append_desc a;
    posattn_cache_append_desc_init(&a);
    std::vector<int32_t> zero(size_t(dc.batch), 0), pos(size_t(dc.batch) * n, 0);
    for (int b = 0; b < dc.batch; ++b)
      for (int j = 0; j < D.lens[size_t(b)]; ++j) pos[size_t(b) * n + j] = D.kv_pos[size_t(b * D.capacity() + j)];
    a.batch = dc.batch;
    a.num_tokens = n;
    a.new_lens = D.lens.data();
    a.cache_lens = zero.data();
    a.block_table = D.block_table.data();
    a.max_pages_per_seq = D.mpps;
    a.positions = pos.data();
    a.pe.kind = POSATTN_PE_ROPE;
    ASSERT_EQ(append(C.ctx, D, a, k0, v0), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(C.ctx);

    D.desc.pe.kind = POSATTN_PE_ROPE;
    U.desc.pe.kind = POSATTN_PE_ROPE;
    DecodeOut R = run_decode(C.ctx, D);
    ASSERT_EQ(R.status, POSATTN_STATUS_SUCCESS) << R.message;
    expect_matches_prefill(C.ctx, U, R, 2e-5);  // U: un-rotated keys, RoPE in the prefill
    // V was copied exactly.
    DenseSeq SU(U, 1), SD(D, 1);
    EXPECT_EQ(SU.v, SD.v);
  }
}

TEST(DecodeRef, AppendRejectsWritesOutsideThePages) {
  TestContext C(POSATTN_BACKEND_REF);
  DecodeCase dc;
  dc.share_prefix = true;
  dc.lens = {8, 8};
  DecodeData D(dc);
  std::vector<unsigned char> before(static_cast<unsigned char *>(D.kpool.data),
                                    static_cast<unsigned char *>(D.kpool.data) + D.kpool.bytes);
  std::vector<float> k0(size_t(dc.batch) * 2 * dc.hkv * dc.d, 0.5f), v0(k0);
  posattn_cache_append_desc a;
  posattn_cache_append_desc_init(&a);
  std::vector<int32_t> lens = {D.mpps * dc.page_size - 1, 0};
  a.batch = dc.batch;
  a.num_tokens = 2;
  a.cache_lens = lens.data();
  a.block_table = D.block_table.data();
  a.max_pages_per_seq = D.mpps;
  // sequence 0 would write index capacity: outside its pages
  EXPECT_EQ(append(C.ctx, D, a, k0, v0), POSATTN_STATUS_BAD_SIZE);
  EXPECT_NE(std::string(posattn_context_last_message(C.ctx)).find("outside the pages"), std::string::npos)
      << posattn_context_last_message(C.ctx);
  // the last block-table entry of sequence 0 is the spare (-7): a page index outside the pool
  std::vector<int32_t> one = {1, 1};
  a.new_lens = one.data();
  EXPECT_EQ(append(C.ctx, D, a, k0, v0), POSATTN_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(posattn_context_last_message(C.ctx)).find("block_table[0]"), std::string::npos);
  // both sequences writing slot 0 of their shared first page
  lens = {0, 0};
  EXPECT_EQ(append(C.ctx, D, a, k0, v0), POSATTN_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(posattn_context_last_message(C.ctx)).find("written twice"), std::string::npos)
      << posattn_context_last_message(C.ctx);
  EXPECT_EQ(0, std::memcmp(before.data(), D.kpool.data, before.size()));
}

TEST(DecodeRef, ValidationRules) {
  TestContext C(POSATTN_BACKEND_REF);
  struct Rule {
    const char *name;
    posattn_status st;
    const char *msg;
    void (*breakit)(DecodeData &);
  };
  static std::vector<int32_t> bad;
  static std::vector<float> badf;
  const Rule rules[] = {
      {"batch", POSATTN_STATUS_BAD_SIZE, "desc->batch", [](DecodeData &D) { D.desc.batch = 0; }},
      {"gqa", POSATTN_STATUS_BAD_SIZE, "multiple of cache->kv_heads", [](DecodeData &D) { D.desc.q_heads = 3; }},
      {"head_dim", POSATTN_STATUS_BAD_SIZE, "must equal cache->head_dim", [](DecodeData &D) { D.desc.head_dim = 8; }},
      {"tokens", POSATTN_STATUS_BAD_SIZE, "num_q_tokens", [](DecodeData &D) { D.desc.num_q_tokens = 9; }},
      {"page_size", POSATTN_STATUS_BAD_SIZE, "cache->page_size", [](DecodeData &D) { D.cache.page_size = 257; }},
      {"k_rotated", POSATTN_STATUS_INVALID_ARGUMENT, "k_rotated", [](DecodeData &D) { D.cache.k_rotated = 2; }},
      {"cache stride", POSATTN_STATUS_BAD_STRIDE, "cache->stride_", [](DecodeData &D) { D.cache.stride_slot = 1; }},
      {"lens null", POSATTN_STATUS_NULL_POINTER, "cache_lens", [](DecodeData &D) { D.desc.cache_lens = nullptr; }},
      {"len too long", POSATTN_STATUS_BAD_SEQLENS, "cache_lens[1]", [](DecodeData &D) { D.lens[1] = D.mpps * D.c.page_size + 1; }},
      {"negative len", POSATTN_STATUS_BAD_SEQLENS, "cache_lens[0]", [](DecodeData &D) { D.lens[0] = -1; }},
      {"page index", POSATTN_STATUS_INVALID_ARGUMENT, "block_table[1][0]", [](DecodeData &D) { D.block_table[size_t(D.mpps)] = D.num_pages; }},
      {"q position", POSATTN_STATUS_BAD_POSITIONS, "q_positions[1][0]", [](DecodeData &D) {
         D.desc.q_positions = D.q_pos.data(); D.desc.kv_positions = D.kv_pos.data(); D.q_pos[1] = -2; }},
      {"kv position", POSATTN_STATUS_BAD_POSITIONS, "kv_positions[0]", [](DecodeData &D) {
         D.desc.q_positions = D.q_pos.data(); D.desc.kv_positions = D.kv_pos.data(); D.kv_pos[2] = 1 << 30; }},
      {"causal", POSATTN_STATUS_BAD_MASK, "desc->causal", [](DecodeData &D) { D.desc.causal = 2; }},
      {"window", POSATTN_STATUS_BAD_MASK, "window_left", [](DecodeData &D) { D.desc.window_left = -2; }},
      {"softcap", POSATTN_STATUS_INVALID_ARGUMENT, "softcap", [](DecodeData &D) { D.desc.softcap = -1.f; }},
      {"scale", POSATTN_STATUS_INVALID_ARGUMENT, "softmax_scale", [](DecodeData &D) { D.desc.softmax_scale = NAN; }},
      {"sinks", POSATTN_STATUS_BAD_PE_PARAMS, "sink_logits[2]", [](DecodeData &D) {
         badf.assign(size_t(D.c.hq), 0.f); badf[2] = INFINITY; D.desc.sink_logits = badf.data(); }},
      {"splits", POSATTN_STATUS_BAD_SIZE, "num_splits", [](DecodeData &D) { D.desc.num_splits = 257; }},
      {"pe", POSATTN_STATUS_BAD_PE_PARAMS, "pe.rope.base", [](DecodeData &D) { D.desc.pe.kind = POSATTN_PE_ROPE; D.desc.pe.rope.base = 0.5; }},
      {"xpos", POSATTN_STATUS_NOT_SUPPORTED, "XPOS", [](DecodeData &D) { D.desc.pe.kind = POSATTN_PE_XPOS; }},
      {"q data", POSATTN_STATUS_NULL_POINTER, "q->data", [](DecodeData &D) { D.tq.data = nullptr; }},
      {"q stride", POSATTN_STATUS_BAD_STRIDE, "q->stride_head", [](DecodeData &D) { D.tq.stride_head = 3; }},
  };
  for (const Rule &r : rules) {
    SCOPED_TRACE(r.name);
    DecodeCase dc;
    DecodeData D(dc);
    r.breakit(D);
    DecodeOut R = run_decode(C.ctx, D);
    if (R.status == POSATTN_STATUS_SUCCESS) ADD_FAILURE() << "accepted";
    EXPECT_EQ(R.status, r.st) << R.message;
    EXPECT_NE(R.message.find(r.msg), std::string::npos) << R.message;
  }
}

TEST(DecodeRef, OutMayNotOverlapThePool) {
  TestContext C(POSATTN_BACKEND_REF);
  DecodeCase dc;
  DecodeData D(dc);
  posattn_tensor to;
  posattn_tensor_init_contiguous(&to, D.kpool.data, POSATTN_DTYPE_F32, dc.n, dc.hq, dc.d);
  size_t ws = 0;
  ASSERT_EQ(posattn_decode_workspace_size(C.ctx, &D.desc, &D.cache, dc.dt, POSATTN_DTYPE_F32, &ws),
            POSATTN_STATUS_SUCCESS);
  std::vector<double> w(ws / 8 + 64);
  EXPECT_EQ(posattn_decode(C.ctx, &D.desc, &D.cache, &D.tq, &to, nullptr, w.data(), ws),
            POSATTN_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(posattn_context_last_message(C.ctx)).find("cache->k_pages"), std::string::npos);
}

// FP8 caches on REF: decode equals decode of an f32 cache holding the dequantised values
// (value * scale, exact for the fixture's scales), bit for bit: the definition is "dequantise to
// fp64". Both formats, both scale kinds, RoPE on an un-rotated cache, 3 query tokens.
TEST(DecodeRef, Fp8CacheEqualsItsDequantisedF32Cache) {
  TestContext C(POSATTN_BACKEND_REF);
  for (posattn_dtype cdt : {POSATTN_DTYPE_FP8_E4M3, POSATTN_DTYPE_FP8_E5M2})
    for (posattn_kv_scale_kind kind : {POSATTN_KV_SCALE_PER_TENSOR, POSATTN_KV_SCALE_PER_HEAD}) {
      SCOPED_TRACE(std::string(posattn_dtype_string(cdt)) + (kind ? " per head" : " per tensor"));
      DecodeCase dc;
      dc.dt = POSATTN_DTYPE_BF16;
      dc.cache_dt = cdt;
      dc.scale_kind = kind;
      dc.n = 3;
      dc.lens = {7, 13};
      DecodeData D(dc);
      D.desc.pe.kind = POSATTN_PE_ROPE;
      if (kind == POSATTN_KV_SCALE_PER_HEAD) D.k_scale[1] = D.v_scale[0] = 2.5f;  // heads differ
      const DecodeOut R8 = run_decode(C.ctx, D);
      ASSERT_EQ(R8.status, POSATTN_STATUS_SUCCESS) << R8.message;
      const int64_t per_head = int64_t(dc.d), slot = per_head * dc.hkv;
      const int64_t nel = int64_t(D.kpool.bytes);
      std::vector<float> kf(static_cast<size_t>(nel)), vf(static_cast<size_t>(nel));
      for (int64_t i = 0; i < nel; ++i) {
        const size_t h = kind == POSATTN_KV_SCALE_PER_HEAD ? size_t((i % slot) / per_head) : 0;
        kf[size_t(i)] = float(pat_load(D.kpool.data, cdt, i) * D.k_scale[h]);
        vf[size_t(i)] = float(pat_load(D.vpool.data, cdt, i) * D.v_scale[h]);
      }
      const posattn_kv_cache saved = D.cache;
      posattn_kv_cache_init(&D.cache, kf.data(), vf.data(), POSATTN_DTYPE_F32, D.num_pages,
                            dc.page_size, dc.hkv, dc.d);
      const DecodeOut R32 = run_decode(C.ctx, D);
      D.cache = saved;
      ASSERT_EQ(R32.status, POSATTN_STATUS_SUCCESS) << R32.message;
      EXPECT_EQ(R8.out, R32.out);
      EXPECT_EQ(R8.lse, R32.lse);
    }
}

// REF append into FP8 caches stores fp8(x / scale of its head), rounded once from fp64 and
// saturated (the conversion itself is checked exhaustively in test_fp8.cpp); decode then reads
// the stored values back.
TEST(DecodeRef, AppendIntoFp8CacheQuantisesPerHead) {
  TestContext C(POSATTN_BACKEND_REF);
  for (posattn_dtype cdt : {POSATTN_DTYPE_FP8_E4M3, POSATTN_DTYPE_FP8_E5M2}) {
    SCOPED_TRACE(posattn_dtype_string(cdt));
    const int e5m2 = cdt == POSATTN_DTYPE_FP8_E5M2;
    DecodeCase dc;
    dc.cache_dt = cdt;
    dc.scale_kind = POSATTN_KV_SCALE_PER_HEAD;
    dc.lens = {4, 6};
    DecodeData D(dc);
    D.k_scale = {0.75f, 3.f};
    D.v_scale = {0.1f, 7.f};
    D.cache.k_scale = D.k_scale.data();
    D.cache.v_scale = D.v_scale.data();
    const int n = 2;
    std::vector<float> k0(size_t(dc.batch) * n * dc.hkv * dc.d), v0(k0.size());
    pat_rng r;
    pat_rng_seed(&r, 5);
    for (size_t i = 0; i < k0.size(); ++i) {
      k0[i] = float(pat_rng_uniform(&r, -2, 2)) * (i % 11 == 0 ? 1e6f : 1.f);
      v0[i] = float(pat_rng_uniform(&r, -2, 2));
    }
    posattn_cache_append_desc a;
    posattn_cache_append_desc_init(&a);
    std::vector<int32_t> start = {2, 5};
    a.batch = dc.batch;
    a.num_tokens = n;
    a.cache_lens = start.data();
    a.block_table = D.block_table.data();
    a.max_pages_per_seq = D.mpps;
    ASSERT_EQ(append(C.ctx, D, a, k0, v0), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(C.ctx);
    const uint8_t *kp = static_cast<const uint8_t *>(D.kpool.data), *vp = static_cast<const uint8_t *>(D.vpool.data);
    for (int b = 0; b < dc.batch; ++b)
      for (int t = 0; t < n; ++t) {
        const int j = start[size_t(b)] + t;
        const int64_t page = D.block_table[size_t(b) * D.mpps + j / dc.page_size];
        for (int h = 0; h < dc.hkv; ++h)
          for (int f = 0; f < dc.d; ++f) {
            const int64_t dst = ((page * dc.page_size + j % dc.page_size) * dc.hkv + h) * dc.d + f;
            const size_t src = ((size_t(b) * n + t) * dc.hkv + h) * dc.d + f;
            ASSERT_EQ(kp[dst], pat_fp8_from_f64(e5m2, double(k0[src]) / D.k_scale[size_t(h)])) << src;
            ASSERT_EQ(vp[dst], pat_fp8_from_f64(e5m2, double(v0[src]) / D.v_scale[size_t(h)])) << src;
          }
      }
  }
}

TEST(DecodeRef, Fp8ValidationRules) {
  TestContext C(POSATTN_BACKEND_REF);
  static std::vector<float> big(4096);
  struct Rule {
    const char *name;
    posattn_status st;
    const char *msg;
    void (*breakit)(DecodeData &);
  };
  const Rule rules[] = {
      {"k_scale null", POSATTN_STATUS_NULL_POINTER, "cache->k_scale is NULL", [](DecodeData &D) { D.cache.k_scale = nullptr; }},
      {"v_scale null", POSATTN_STATUS_NULL_POINTER, "cache->v_scale is NULL", [](DecodeData &D) { D.cache.v_scale = nullptr; }},
      {"misaligned", POSATTN_STATUS_BAD_ALIGNMENT, "cache->v_scale", [](DecodeData &D) {
         D.cache.v_scale = reinterpret_cast<const float *>(reinterpret_cast<const char *>(big.data()) + 1); }},
      {"scale kind", POSATTN_STATUS_BAD_ENUM, "cache->scale_kind", [](DecodeData &D) { D.cache.scale_kind = 2; }},
      {"scale in pool", POSATTN_STATUS_INVALID_ARGUMENT, "cache->k_scale", [](DecodeData &D) {
         D.cache.k_scale = static_cast<const float *>(D.vpool.data); }},
      {"scales on bf16", POSATTN_STATUS_INVALID_ARGUMENT, "FP8 caches only", [](DecodeData &D) {
         D.cache.dtype = POSATTN_DTYPE_BF16; }},
      {"fp8 q", POSATTN_STATUS_BAD_DTYPE, "KV cache only", [](DecodeData &D) { D.tq.dtype = POSATTN_DTYPE_FP8_E4M3; }},
  };
  for (const Rule &r : rules) {
    SCOPED_TRACE(r.name);
    DecodeCase dc;
    dc.cache_dt = POSATTN_DTYPE_FP8_E5M2;
    dc.lens = {3, 5};
    DecodeData D(dc);
    r.breakit(D);
    if (D.tq.dtype != dc.dt) D.c.dt = D.tq.dtype;  // run_decode passes c.dt as q_dtype
    DecodeOut R = run_decode(C.ctx, D);
    EXPECT_EQ(R.status, r.st) << R.message;
    EXPECT_NE(R.message.find(r.msg), std::string::npos) << R.message;
  }
  // queries may leave the scales NULL; fp8 is rejected for out and for forward
  DecodeCase dc;
  dc.cache_dt = POSATTN_DTYPE_FP8_E4M3;
  DecodeData D(dc);
  D.cache.k_scale = D.cache.v_scale = nullptr;
  EXPECT_EQ(posattn_decode_supported(C.ctx, &D.desc, &D.cache, dc.dt, POSATTN_DTYPE_F32), POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(C.ctx);
  EXPECT_EQ(posattn_decode_supported(C.ctx, &D.desc, &D.cache, dc.dt, POSATTN_DTYPE_FP8_E5M2),
            POSATTN_STATUS_BAD_DTYPE);
  EXPECT_NE(std::string(posattn_context_last_message(C.ctx)).find("out_dtype"), std::string::npos);
  posattn_attention_desc fd;
  posattn_attention_desc_init(&fd);
  fd.batch = 1; fd.q_heads = 1; fd.kv_heads = 1; fd.head_dim = 16; fd.q_len = 1; fd.kv_len = 1;
  EXPECT_EQ(posattn_supported(C.ctx, &fd, POSATTN_DTYPE_FP8_E4M3, POSATTN_DTYPE_F32), POSATTN_STATUS_BAD_DTYPE);
  EXPECT_NE(std::string(posattn_context_last_message(C.ctx)).find("KV cache only"), std::string::npos);
  posattn_cache_append_desc a;
  posattn_cache_append_desc_init(&a);
  std::vector<int32_t> start = {0, 0};
  a.batch = 2; a.num_tokens = 1; a.cache_lens = start.data(); a.block_table = D.block_table.data();
  a.max_pages_per_seq = D.mpps;
  size_t ws = 0;
  EXPECT_EQ(posattn_cache_append_workspace_size(C.ctx, &a, &D.cache, POSATTN_DTYPE_FP8_E5M2, &ws),
            POSATTN_STATUS_BAD_DTYPE);
  EXPECT_NE(std::string(posattn_context_last_message(C.ctx)).find("in_dtype"), std::string::npos);
}

}  // namespace
