// EMU decode and cache append vs REF (DESIGN.md section 5 rule): odd lengths, empty and length-1
// sequences, page sizes 1..256, shared pages, 1 and several query tokens, forced split counts
// (more splits than pages too), every PE (RoPE on rotated and un-rotated caches), bf16/f16.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "../cpu/decode_fixture.h"

namespace {

struct Grid : DecodeGridRow {  // decode_fixture.h
  bool share, positions, window_softcap;
  int rope_cfg = 0;  // 1: DeepSeek-like offset block, GPT-J pairs, YaRN mscale; 2: proportional
  posattn_dtype cache_dt = posattn_dtype(0);  // FP8 caches (q stays dt); 0 = dt
  posattn_kv_scale_kind scale_kind = POSATTN_KV_SCALE_PER_TENSOR;
};

void run_grid(const std::vector<Grid> &grid);

TEST(DecodeEmu, GridMatchesRef) {
  const auto BF = POSATTN_DTYPE_BF16, F16 = POSATTN_DTYPE_F16;
  run_grid({
      {{"none bf16 page1 split3", POSATTN_PE_NONE, 0, BF, 1, 1, 3, 32, 8, 2, {0, 1, 17, 97}}, false, false, false},
      {{"none f16 page256", POSATTN_PE_NONE, 0, F16, 256, 1, 0, 64, 4, 1, {300, 1}}, false, false, false},
      {{"rope unrotated n3", POSATTN_PE_ROPE, 0, BF, 7, 3, 2, 32, 4, 2, {2, 17, 40}}, true, true, false},
      {{"rope rotated cache", POSATTN_PE_ROPE, 1, F16, 5, 2, 0, 32, 4, 2, {9, 33}}, false, true, false},
      {{"alibi window softcap", POSATTN_PE_ALIBI, 0, BF, 3, 1, 4, 32, 4, 4, {1, 29, 55}}, true, false, true},
      {{"fire n8 group", POSATTN_PE_FIRE, 0, F16, 4, 8, 1, 32, 4, 1, {8, 21}}, false, true, false},
      {{"more splits than pages", POSATTN_PE_ROPE, 0, BF, 16, 1, 50, 64, 2, 1, {0, 5, 33}}, true, false, false},
      {{"hd128 mqa", POSATTN_PE_NONE, 0, BF, 16, 2, 0, 128, 4, 1, {97}}, false, false, false},
      {{"rope offset yarn mscale", POSATTN_PE_ROPE, 0, BF, 5, 2, 2, 64, 4, 2, {3, 21}}, false, true, false, 1},
      {{"rope offset rotated cache", POSATTN_PE_ROPE, 1, F16, 4, 1, 0, 32, 4, 2, {9, 30}}, false, true, false, 1},
      {{"rope proportional", POSATTN_PE_ROPE, 0, BF, 6, 2, 0, 64, 2, 1, {17, 40}}, false, false, false, 2},
  });
}

// FP8 caches (both formats, both scale kinds): page sizes, splits, group sizes 1-16, 1-8 query
// tokens, every decode PE, rotated and un-rotated RoPE caches. The baseline gathers the cache
// dequantised (the values the kernel reads), so it rounds K/V to fp8 exactly where the kernel does.
TEST(DecodeEmu, Fp8GridMatchesRef) {
  const auto BF = POSATTN_DTYPE_BF16, F16 = POSATTN_DTYPE_F16;
  const auto E4 = POSATTN_DTYPE_FP8_E4M3, E5 = POSATTN_DTYPE_FP8_E5M2;
  const auto T = POSATTN_KV_SCALE_PER_TENSOR, H = POSATTN_KV_SCALE_PER_HEAD;
  run_grid({
      {{"e4m3 none page1 split3", POSATTN_PE_NONE, 0, BF, 1, 1, 3, 32, 8, 2, {0, 1, 17, 97}}, false, false, false, 0, E4, T},
      {{"e5m2 none page256 mqa16", POSATTN_PE_NONE, 0, F16, 256, 1, 0, 64, 16, 1, {300, 1}}, false, false, false, 0, E5, H},
      {{"e4m3 rope unrotated n3", POSATTN_PE_ROPE, 0, BF, 7, 3, 2, 32, 4, 2, {2, 17, 40}}, true, true, false, 0, E4, H},
      {{"e5m2 rope rotated", POSATTN_PE_ROPE, 1, BF, 5, 2, 0, 32, 4, 2, {9, 33}}, false, true, false, 0, E5, T},
      {{"e4m3 alibi window softcap", POSATTN_PE_ALIBI, 0, BF, 3, 1, 4, 32, 4, 4, {1, 29, 55}}, true, false, true, 0, E4, H},
      {{"e5m2 fire n8", POSATTN_PE_FIRE, 0, F16, 4, 8, 1, 32, 4, 1, {8, 21}}, false, true, false, 0, E5, H},
      {{"e4m3 t5 group1 n5", POSATTN_PE_T5, 0, BF, 8, 5, 2, 64, 2, 2, {6, 50}}, false, false, false, 0, E4, T},
      {{"e5m2 kerple splits>pages", POSATTN_PE_KERPLE_LOG, 0, BF, 16, 2, 50, 32, 6, 2, {0, 5, 33}}, true, false, false, 0, E5, T},
      {{"e4m3 hd128 rope offset", POSATTN_PE_ROPE, 0, BF, 16, 2, 0, 128, 8, 1, {97}}, false, true, false, 1, E4, H},
      {{"e5m2 hd256", POSATTN_PE_NONE, 0, BF, 2, 1, 2, 256, 2, 1, {19}}, false, false, false, 0, E5, H},
  });
}

void run_grid(const std::vector<Grid> &grid) {
  TestContext ref(POSATTN_BACKEND_REF), emu(POSATTN_BACKEND_EMU);
  FireWeights fw;
  int seed = 1;
  for (const Grid &g : grid) {
    SCOPED_TRACE(g.name);
    DecodeCase dc = grid_case(g, uint64_t(seed++));
    dc.share_prefix = g.share;
    DecodeData D(dc);
    D.desc.pe.kind = g.pe;
    set_rope_cfg(D.desc.pe.rope, g.rope_cfg, g.d);
    D.cache.k_rotated = g.k_rotated;
    D.desc.num_splits = g.splits;
    if (g.pe == POSATTN_PE_FIRE) fw.set(D.desc.pe, dc.hq, 3);
    BiasTables bt;
    bt.set(D.desc.pe, dc.hq, dc.hq, dc.hq);
    if (g.window_softcap) {
      D.desc.window_left = 9;
      D.desc.softcap = 2.5f;
    }
    DecodeOut R = run_decode(ref.ctx, D), E = run_decode(emu.ctx, D);
    ASSERT_EQ(R.status, POSATTN_STATUS_SUCCESS) << R.message;
    ASSERT_EQ(E.status, POSATTN_STATUS_SUCCESS) << E.message;
    EXPECT_TRUE(E.guards_ok);
    EXPECT_EQ(E.nan, 0);
    // Baseline: the gathered dense problem (rule_baseline: a rotated cache's keys are used as
    // stored, which the dense problem cannot express; its baseline is then the same data without
    // RoPE, moved onto REF's answer).
    expect_rule(E.out, rule_baseline(ref.ctx, D, R, POSATTN_DTYPE_F32), R.out, POSATTN_DTYPE_F32);
    expect_lse_near(E.lse, R.lse, 1e-3);
  }
}

TEST(DecodeEmu, SinksAndSplitsAgree) {
  TestContext ref(POSATTN_BACKEND_REF), emu(POSATTN_BACKEND_EMU);
  DecodeCase dc;
  dc.lens = {0, 37};
  dc.page_size = 4;
  DecodeData D(dc);
  std::vector<float> sinks = {1.f, -2.f, 0.25f, 3.f};
  D.desc.sink_logits = sinks.data();
  DecodeOut R = run_decode(ref.ctx, D);
  ASSERT_EQ(R.status, POSATTN_STATUS_SUCCESS) << R.message;
  for (int splits : {1, 2, 7, 20}) {
    SCOPED_TRACE(splits);
    D.desc.num_splits = splits;
    DecodeOut E = run_decode(emu.ctx, D);
    ASSERT_EQ(E.status, POSATTN_STATUS_SUCCESS) << E.message;
    for (size_t i = 0; i < R.out.size(); ++i) EXPECT_NEAR(E.out[i], R.out[i], 2e-5) << i;
    for (size_t i = 0; i < R.lse.size(); ++i) EXPECT_NEAR(E.lse[i], R.lse[i], 2e-5) << i;
  }
  // empty sequence 0 with a sink: out 0, lse = the sink
  EXPECT_EQ(R.out[0], 0.0);
  EXPECT_FLOAT_EQ(float(R.lse[lse_index(dc, 0, 0, 3)]), 3.f);
}

// FP8 caches: K scales of three significant bits (K within one fp8 step of REF's single rounding
// of the fp64 rotation), V scales powers of two per head (x / scale exact in fp32: V identical),
// and a few inputs far beyond the largest fp8 value (saturation).
TEST(DecodeEmu, AppendMatchesRef) {
  TestContext ref(POSATTN_BACKEND_REF), emu(POSATTN_BACKEND_EMU);
  for (posattn_dtype cdt : {POSATTN_DTYPE_BF16, POSATTN_DTYPE_FP8_E4M3, POSATTN_DTYPE_FP8_E5M2})
  for (int rotated : {0, 1, 2}) {  // 2: rotated cache, DeepSeek-like offset block (rope_cfg 1)
    SCOPED_TRACE(rotated);
    SCOPED_TRACE(posattn_dtype_string(cdt));
    DecodeCase dc;
    dc.dt = POSATTN_DTYPE_BF16;
    dc.cache_dt = cdt;
    dc.scale_kind = rotated == 1 ? POSATTN_KV_SCALE_PER_TENSOR : POSATTN_KV_SCALE_PER_HEAD;
    dc.page_size = 3;
    dc.lens = {4, 10};
    DecodeData A(dc), B(dc);  // identical caches
    A.cache.k_rotated = B.cache.k_rotated = rotated != 0;
    for (DecodeData *X : {&A, &B})
      for (size_t h = 0; h < X->k_scale.size(); ++h) {
        X->k_scale[h] = 0.375f * float(h + 1);
        X->v_scale[h] = std::ldexp(1.f, int(h) - 1);
      }
    const int n = 3;
    AppendRows rows(dc, n, 9);
    std::vector<float> &k0 = rows.k, &v0 = rows.v;
    if (dc.fp8())
      for (size_t i = 0; i < k0.size(); i += 7) {
        k0[i] *= 1e5f;
        v0[i] *= 1e5f;
      }
    posattn_tensor tk, tv;
    posattn_tensor_init_contiguous(&tk, k0.data(), POSATTN_DTYPE_F32, n, dc.hkv, dc.d);
    posattn_tensor_init_contiguous(&tv, v0.data(), POSATTN_DTYPE_F32, n, dc.hkv, dc.d);
    const std::vector<int32_t> start = {1, 7}, cnt = {3, 2}, pos = {100, 101, 102, 5000, 5001, 0};
    posattn_cache_append_desc a = rope_append_desc(A, n, start, cnt, pos);
    a.pe.rope.rotary_dim = 8;
    if (rotated == 2) set_rope_cfg(a.pe.rope, 1, dc.d);
    for (int which = 0; which < 2; ++which) {
      posattn_context *ctx = which ? emu.ctx : ref.ctx;
      DecodeData &X = which ? B : A;
      size_t ws = 0;
      ASSERT_EQ(posattn_cache_append_workspace_size(ctx, &a, &X.cache, POSATTN_DTYPE_F32, &ws),
                POSATTN_STATUS_SUCCESS);
      pat_buf w{};
      pat_buf_alloc(&w, ws ? ws : 1);
      ASSERT_EQ(posattn_cache_append(ctx, &a, &X.cache, &tk, &tv, ws ? w.data : nullptr, ws),
                POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
      pat_buf_free(&w);
    }
    // V identical; K within one rounding step of the cache dtype of the fp64 rotation (fp32
    // rotation and fp32 division by the scale first)
    EXPECT_EQ(0, std::memcmp(A.vpool.data, B.vpool.data, A.vpool.bytes));
    const int64_t nel = int64_t(A.kpool.bytes / posattn_dtype_size(cdt));
    int64_t differ = 0, saturated = 0;
    for (int64_t i = 0; i < nel; ++i) {
      const double x = pat_load(A.kpool.data, cdt, i), y = pat_load(B.kpool.data, cdt, i);
      saturated += dc.fp8() && std::fabs(x) == (cdt == POSATTN_DTYPE_FP8_E4M3 ? 448.0 : 57344.0);
      EXPECT_TRUE(std::isfinite(y)) << i;
      if (x != y) {
        ++differ;
        EXPECT_LE(std::fabs(x - y), pat_ulp(cdt, std::fabs(x)) * 1.01) << i;
      }
    }
    if (!rotated && !dc.fp8()) EXPECT_EQ(differ, 0);
    if (dc.fp8()) EXPECT_GT(saturated, 0);
  }
}

// FIRE with keys far after their query: x = psi(|pq - pk|) / psi(max(L, pq)) reaches ~5 here, past
// the [0, 1] range the segments once covered; they are exact for every x >= 0 (host/pe_fire.c), so
// the chooser serves it and EMU agrees with REF by the section 5 rule.
TEST(DecodeEmu, FireKeysFarAfterQuery) {
  TestContext ref(POSATTN_BACKEND_REF), emu(POSATTN_BACKEND_EMU);
  DecodeCase dc;
  dc.lens = {61, 7};
  dc.n = 2;
  dc.page_size = 4;
  dc.dt = POSATTN_DTYPE_BF16;
  dc.explicit_positions = true;
  DecodeData D(dc);
  for (int b = 0; b < dc.batch; ++b) {
    for (int j = 0; j < D.lens[size_t(b)]; ++j) D.kv_pos[size_t(b * D.capacity() + j)] = 30 * j + b;
    for (int t = 0; t < dc.n; ++t) D.q_pos[size_t(b * dc.n + t)] = 3 + 4 * t;  // queries near 0
  }
  FireWeights fw;
  fw.set(D.desc.pe, dc.hq, 11);
  D.desc.pe.fire.L = 16;
  D.desc.causal = 0;
  const double x_max = posattn_pe_fire_x(D.desc.pe.fire.c, D.desc.pe.fire.L, D.desc.pe.fire.eps, 3,
                                         30 * (dc.lens[0] - 1));
  ASSERT_GT(x_max, 4.0) << "the case must reach far past x = 1";
  ASSERT_EQ(posattn_decode_supported(emu.ctx, &D.desc, &D.cache, dc.dt, POSATTN_DTYPE_F32),
            POSATTN_STATUS_SUCCESS) << posattn_context_last_message(emu.ctx);
  for (int splits : {0, 3}) {
    SCOPED_TRACE(splits);
    D.desc.num_splits = splits;
    DecodeOut R = run_decode(ref.ctx, D), E = run_decode(emu.ctx, D);
    ASSERT_EQ(R.status, POSATTN_STATUS_SUCCESS) << R.message;
    ASSERT_EQ(E.status, POSATTN_STATUS_SUCCESS) << E.message;
    EXPECT_TRUE(E.guards_ok);
    expect_rule(E.out, dense_baseline(D, POSATTN_DTYPE_F32), R.out, POSATTN_DTYPE_F32);
    expect_lse_near(E.lse, R.lse, 1e-3);
  }
}

// Every finite FP8 code through the kernel's reader: one sequence of one token whose V row (head
// dim 256) holds all finite codes, so out = V * v_scale exactly (weight 1, f32 out); compared with
// the library's decoder (host/fp8.h, itself checked against the OCP definition in test_fp8.cpp).
// The kernel widens through f16 bit patterns, an independent implementation.
TEST(DecodeEmu, Fp8EveryFiniteCodeReadsExactly) {
  TestContext emu(POSATTN_BACKEND_EMU);
  for (posattn_dtype cdt : {POSATTN_DTYPE_FP8_E4M3, POSATTN_DTYPE_FP8_E5M2}) {
    SCOPED_TRACE(posattn_dtype_string(cdt));
    const int e5m2 = cdt == POSATTN_DTYPE_FP8_E5M2;
    DecodeCase dc;
    dc.batch = 1;
    dc.hq = dc.hkv = 1;
    dc.d = 256;
    dc.lens = {1};
    dc.page_size = 1;
    dc.dt = POSATTN_DTYPE_F32;
    dc.cache_dt = cdt;
    DecodeData D(dc);
    D.k_scale = {1.f};
    D.v_scale = {0.5f};  // a power of two: value * scale stays exact
    D.cache.k_scale = D.k_scale.data();
    D.cache.v_scale = D.v_scale.data();
    std::vector<int> codes;
    for (int c = 0; c < 256; ++c)
      if (std::isfinite(pat_fp8_decode(e5m2, uint8_t(c)))) codes.push_back(c);
    ASSERT_EQ(codes.size(), e5m2 ? 248u : 254u);
    const int page = D.block_table[0];
    uint8_t *v = static_cast<uint8_t *>(D.vpool.data) + size_t(page) * dc.d;
    for (int f = 0; f < dc.d; ++f) v[f] = uint8_t(codes[size_t(f) % codes.size()]);
    const DecodeOut E = run_decode(emu.ctx, D);
    ASSERT_EQ(E.status, POSATTN_STATUS_SUCCESS) << E.message;
    for (int f = 0; f < dc.d; ++f)
      EXPECT_EQ(E.out[size_t(f)], 0.5 * double(pat_fp8_decode(e5m2, v[f]))) << "code " << int(v[f]);
    EXPECT_TRUE(std::isfinite(E.lse[0]));
    // a NaN code (and E5M2's inf) in V poisons the row (posattn.h NaN RULE)
    for (int bad : e5m2 ? std::vector<int>{0x7e, 0xfc} : std::vector<int>{0x7f, 0xff}) {
      v[3] = uint8_t(bad);
      const DecodeOut P = run_decode(emu.ctx, D);
      ASSERT_EQ(P.status, POSATTN_STATUS_SUCCESS) << P.message;
      EXPECT_TRUE(std::isnan(P.out[0]) && std::isnan(P.lse[0])) << "code " << bad;
    }
  }
}

TEST(DecodeEmu, UnsupportedHeadDim) {
  TestContext emu(POSATTN_BACKEND_EMU);
  DecodeCase dc;
  dc.d = 264;
  dc.lens = {3, 4};
  DecodeData D(dc);
  EXPECT_EQ(posattn_decode_supported(emu.ctx, &D.desc, &D.cache, dc.dt, dc.dt), POSATTN_STATUS_NOT_SUPPORTED);
  EXPECT_NE(std::string(posattn_context_last_message(emu.ctx)).find("head_dim 264"), std::string::npos);
}

}  // namespace
