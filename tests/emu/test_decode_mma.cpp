// The tensor-core decode kernel (kernels/decode/decode_mma.cuh) on EMU against REF with the
// DESIGN.md section 5 rule. Every case runs with POSATTN_DECODE_KERNEL=mma, under which the chooser
// answers NOT_SUPPORTED for a problem the kernel cannot serve, so a SUCCESS below is a run of
// decode_mma (DecodeMma.ForcedKernelIsObservable checks that such problems are refused).
// Grid: page sizes 1, 16, 256 and odd ones, splits auto / 1 / several / more than pages, group
// sizes 1..16 and 32 (two row chunks), 1..8 query tokens, every decode PE (RoPE rotated and
// un-rotated caches, offset/YaRN, EXACT angles; ALiBi, FIRE, T5, KERPLE log and power), bf16/f16
// caches, FP8 E4M3/E5M2 with per-tensor and per-head scales, hd 64/128/256, window, softcap,
// sinks, empty sequences; the NaN rule; and the SIMT kernel (forced) agreeing on the same data.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "../cpu/decode_fixture.h"

namespace {

// Sets POSATTN_DECODE_KERNEL for the lifetime of the object.
struct ForceKernel {
  explicit ForceKernel(const char *k) { setenv("POSATTN_DECODE_KERNEL", k, 1); }
  ~ForceKernel() { unsetenv("POSATTN_DECODE_KERNEL"); }
};

struct Case : DecodeGridRow {  // decode_fixture.h
  posattn_dtype cache_dt = posattn_dtype(0);  // 0 = dt
  posattn_kv_scale_kind scale_kind = POSATTN_KV_SCALE_PER_TENSOR;
  bool positions = false, window_softcap = false, sinks = false, exact = false;
  int rope_cfg = 0;  // 1: offset block, GPT-J pairs, YaRN mscale (as test_decode_emu.cpp)
};

// Builds the case's data and PE tables; `fw`, `bt`, `sinks` hold what desc points to.
struct Problem {
  DecodeData D;
  FireWeights fw;
  BiasTables bt;
  std::vector<float> sinks;
  Problem(const Case &g, uint64_t seed) : D(grid_case(g, seed)) {
    D.desc.pe.kind = g.pe;
    set_rope_cfg(D.desc.pe.rope, g.rope_cfg, g.d);
    if (g.exact) D.desc.pe.rope.angle_mode = POSATTN_ANGLE_EXACT;
    D.cache.k_rotated = g.k_rotated;
    D.desc.num_splits = g.splits;
    if (g.pe == POSATTN_PE_FIRE) fw.set(D.desc.pe, g.hq, 3);
    bt.set(D.desc.pe, g.hq, 8, 4);  // KERPLE a, p repeat every 8 / 4 heads
    if (g.window_softcap) {
      D.desc.window_left = 9;
      D.desc.softcap = 2.5f;
    }
    if (g.sinks) {
      for (int h = 0; h < g.hq; ++h) sinks.push_back(0.5f * float(h % 5) - 1.f);
      D.desc.sink_logits = sinks.data();
    }
  }
};

void run_case(const Case &g, uint64_t seed, posattn_context *ref, posattn_context *emu) {
  SCOPED_TRACE(g.name);
  Problem P(g, seed);
  DecodeData &D = P.D;
  const DecodeOut R = run_decode(ref, D);
  DecodeOut E;
  {
    ForceKernel f("mma");
    E = run_decode(emu, D);
  }
  ASSERT_EQ(R.status, POSATTN_STATUS_SUCCESS) << R.message;
  ASSERT_EQ(E.status, POSATTN_STATUS_SUCCESS) << E.message;
  EXPECT_TRUE(E.guards_ok);
  EXPECT_EQ(E.nan, 0);
  // rule_baseline: a rotated cache's keys are used as stored, which the dense baseline cannot
  // express; its baseline error is that of the same data without RoPE, moved onto REF's answer.
  std::vector<double> base = rule_baseline(ref, D, R, POSATTN_DTYPE_F32);
  if (g.sinks && !g.k_rotated) {  // the dense baseline has no sink: scale each row by REF's sink share
    const float *s = D.desc.sink_logits;
    D.desc.sink_logits = nullptr;
    const DecodeOut R0 = run_decode(ref, D);
    D.desc.sink_logits = s;
    for (size_t i = 0; i < base.size(); ++i) base[i] *= R0.out[i] != 0.0 ? R.out[i] / R0.out[i] : 1.0;
  }
  expect_rule(E.out, base, R.out, POSATTN_DTYPE_F32);
  expect_lse_near(E.lse, R.lse, 1e-2);
}

void run_grid(const std::vector<Case> &grid) {
  TestContext ref(POSATTN_BACKEND_REF), emu(POSATTN_BACKEND_EMU);
  uint64_t seed = 100;
  for (const Case &g : grid) run_case(g, seed++, ref.ctx, emu.ctx);
}

const auto BF = POSATTN_DTYPE_BF16, F16 = POSATTN_DTYPE_F16;
const auto E4 = POSATTN_DTYPE_FP8_E4M3, E5 = POSATTN_DTYPE_FP8_E5M2;
const auto PT = POSATTN_KV_SCALE_PER_TENSOR, PH = POSATTN_KV_SCALE_PER_HEAD;

// Shapes: page sizes, splits, group sizes 1..16 (and 32: two 128-row chunks), 1..8 tokens.
TEST(DecodeMma, ShapesMatchRef) {
  run_grid({
      {{"page1 split3 group4", POSATTN_PE_NONE, 0, BF, 1, 1, 3, 64, 8, 2, {0, 1, 17, 97}}},
      {{"page256 auto mqa16", POSATTN_PE_NONE, 0, F16, 256, 1, 0, 64, 16, 1, {300, 1}}},
      {{"page16 group8 n8 (128 rows)", POSATTN_PE_NONE, 0, BF, 16, 8, 2, 64, 16, 2, {70, 9}}},
      {{"page5 group1 n3", POSATTN_PE_NONE, 0, F16, 5, 3, 0, 64, 2, 2, {2, 41}}},
      {{"page3 group3 n5 split50", POSATTN_PE_NONE, 0, BF, 3, 5, 50, 64, 6, 2, {0, 5, 33}}},
      {{"page7 group16 n2 hd128", POSATTN_PE_NONE, 0, BF, 7, 2, 3, 128, 16, 1, {130}}},
      {{"group32 n5: two row chunks", POSATTN_PE_NONE, 0, BF, 16, 5, 1, 64, 32, 1, {40}}},
      {{"hd256 group5 n7", POSATTN_PE_NONE, 0, F16, 16, 7, 2, 256, 5, 1, {50}}},
      {{"hd256 group16 n8", POSATTN_PE_NONE, 0, BF, 9, 8, 0, 256, 16, 1, {37}}},
      {{"hd128 group2 n1 long", POSATTN_PE_NONE, 0, BF, 16, 1, 0, 128, 4, 2, {600, 3}}},
  });
}

// Every decode PE, window, softcap, sinks, explicit positions.
TEST(DecodeMma, PositionalEncodingsMatchRef) {
  const auto R = POSATTN_PE_ROPE;
  Case exact{{"rope unrotated EXACT angles", R, 0, BF, 4, 2, 2, 64, 4, 2, {30, 9}}};
  exact.exact = true;
  exact.positions = true;
  Case rope_pos{{"rope unrotated n3 positions", R, 0, BF, 7, 3, 2, 64, 4, 2, {2, 17, 40}}};
  rope_pos.positions = true;
  Case rot{{"rope rotated cache", R, 1, F16, 5, 2, 0, 64, 4, 2, {9, 33}}};
  rot.positions = true;
  Case yarn{{"rope offset yarn gptj hd128", R, 0, BF, 5, 2, 2, 128, 4, 2, {3, 21}}};
  yarn.rope_cfg = 1;
  Case alibi{{"alibi window softcap sinks", POSATTN_PE_ALIBI, 0, BF, 3, 1, 4, 64, 4, 4, {1, 29, 55}}};
  alibi.window_softcap = true;
  alibi.sinks = true;
  Case fire{{"fire n8 group4", POSATTN_PE_FIRE, 0, F16, 4, 8, 1, 64, 4, 1, {8, 21}}};
  fire.positions = true;
  Case t5{{"t5 n5", POSATTN_PE_T5, 0, BF, 8, 5, 2, 64, 2, 2, {6, 50}}};
  Case kl{{"kerple log", POSATTN_PE_KERPLE_LOG, 0, BF, 16, 2, 3, 64, 6, 2, {0, 5, 33}}};
  Case kp{{"kerple power hd256", POSATTN_PE_KERPLE_POWER, 0, F16, 2, 3, 0, 256, 3, 1, {19}}};
  Case big{{"rope unrotated hd256 group16 n5 (64-row chunks)", R, 0, BF, 16, 5, 2, 256, 16, 1, {45}}};
  big.positions = true;
  Case big_rot{{"rope rotated hd256 f16", R, 1, F16, 3, 2, 0, 256, 4, 2, {8, 20}}};
  run_grid({exact, rope_pos, rot, yarn, alibi, fire, t5, kl, kp, big, big_rot});
}

// FP8 caches: both formats, both scale kinds, with RoPE (rotated and not) and biases.
TEST(DecodeMma, Fp8CachesMatchRef) {
  Case a{{"e4m3 per-tensor none page1", POSATTN_PE_NONE, 0, BF, 1, 1, 3, 64, 8, 2, {0, 1, 17, 97}}, E4, PT};
  Case b{{"e5m2 per-head mqa16 page256", POSATTN_PE_NONE, 0, F16, 256, 1, 0, 64, 16, 1, {300, 1}}, E5, PH};
  Case c{{"e4m3 per-head rope unrotated n3", POSATTN_PE_ROPE, 0, BF, 7, 3, 2, 64, 4, 2, {2, 17, 40}}, E4, PH};
  c.positions = true;
  Case d{{"e5m2 per-tensor rope rotated", POSATTN_PE_ROPE, 1, BF, 5, 2, 0, 64, 4, 2, {9, 33}}, E5, PT};
  Case e{{"e4m3 alibi window softcap f16", POSATTN_PE_ALIBI, 0, F16, 3, 1, 4, 128, 4, 4, {1, 29, 55}}, E4, PH};
  e.window_softcap = true;
  Case f{{"e5m2 fire n8", POSATTN_PE_FIRE, 0, F16, 4, 8, 1, 64, 4, 1, {8, 21}}, E5, PH};
  Case g{{"e4m3 hd128 rope offset", POSATTN_PE_ROPE, 0, BF, 16, 2, 0, 128, 8, 1, {97}}, E4, PH};
  g.rope_cfg = 1;
  Case h{{"e5m2 hd256 kerple", POSATTN_PE_KERPLE_LOG, 0, BF, 2, 1, 2, 256, 2, 1, {19}}, E5, PT};
  run_grid({a, b, c, d, e, f, g, h});
}

// The NaN RULE (posattn.h): a NaN/inf value or key in the cache poisons exactly the query tokens
// that see it, others are bit-identical to the clean run; one and several splits.
TEST(DecodeMma, NonFiniteCacheValuesPoisonOnlyTheTokensThatSeeThem) {
  ForceKernel force("mma");
  TestContext emu(POSATTN_BACKEND_EMU);
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (posattn_dtype cdt : {BF, E4, E5})
    for (int splits : {1, 3}) {
      DecodeCase c;
      c.n = 4;  // token t sees cache tokens j <= L - 4 + t
      c.lens = {11, 14};
      c.d = 64;
      c.dt = BF;
      c.cache_dt = cdt == BF ? posattn_dtype(0) : cdt;
      DecodeData D(c);
      D.desc.num_splits = splits;
      SCOPED_TRACE(std::string(posattn_dtype_string(cdt)) + " splits " + std::to_string(splits));
      expect_nan_rule(emu.ctx, D, true, 1, 12, 1, 3, nan);
      if (cdt != E4) expect_nan_rule(emu.ctx, D, true, 0, 8, 0, 15, inf);  // E4M3 has no inf
      expect_nan_rule(emu.ctx, D, false, 0, 9, 1, 40, nan);
    }
}

// Both kernels on the same data (sinks, empty sequence, several splits): the SIMT kernel forced,
// then the tensor-core kernel: both are fp32-accurate at hd 64 (exact operands, P as hi + lo), so
// they agree to 1e-4.
TEST(DecodeMma, AgreesWithSimtKernel) {
  TestContext emu(POSATTN_BACKEND_EMU);
  for (int splits : {0, 1, 4}) {
    DecodeCase c;
    c.lens = {0, 37, 5};
    c.n = 2;
    c.hq = 8;
    c.hkv = 2;
    c.d = 64;
    c.dt = BF;
    c.page_size = 4;
    DecodeData D(c);
    std::vector<float> sinks = {1.f, -2.f, 0.25f, 3.f, 0.f, -1.f, 2.f, 0.5f};
    D.desc.sink_logits = sinks.data();
    D.desc.num_splits = splits;
    DecodeOut S, M;
    {
      ForceKernel f("simt");
      S = run_decode(emu.ctx, D);
    }
    {
      ForceKernel f("mma");
      M = run_decode(emu.ctx, D);
    }
    ASSERT_EQ(S.status, POSATTN_STATUS_SUCCESS) << S.message;
    ASSERT_EQ(M.status, POSATTN_STATUS_SUCCESS) << M.message;
    for (size_t i = 0; i < S.out.size(); ++i) EXPECT_NEAR(M.out[i], S.out[i], 1e-4) << i;
    for (size_t i = 0; i < S.lse.size(); ++i) EXPECT_NEAR(M.lse[i], S.lse[i], 1e-4) << i;
    // the empty sequence 0: output 0, lse = the sink
    for (int h = 0; h < c.hq; ++h) EXPECT_FLOAT_EQ(float(M.lse[lse_index(c, 0, 0, h)]), sinks[size_t(h)]);
    EXPECT_EQ(M.out[0], 0.0);
  }
}

// The forcing knob: problems the kernel cannot serve are NOT_SUPPORTED under
// POSATTN_DECODE_KERNEL=mma with the reason, and served by decode_split by default.
TEST(DecodeMma, ForcedKernelIsObservable) {
  TestContext emu(POSATTN_BACKEND_EMU);
  struct Bad {
    int d;
    posattn_dtype dt;
    const char *why;
  };
  for (const Bad &x : {Bad{32, BF, "head_dim 64, 128 or 256"}, Bad{64, POSATTN_DTYPE_F32, "bf16 or f16 q"}}) {
    DecodeCase c;
    c.d = x.d;
    c.dt = x.dt;
    DecodeData D(c);
    DecodeOut M;
    {
      ForceKernel f("mma");
      M = run_decode(emu.ctx, D);
    }
    EXPECT_EQ(M.status, POSATTN_STATUS_NOT_SUPPORTED);
    EXPECT_NE(M.message.find(x.why), std::string::npos) << M.message;
    EXPECT_EQ(run_decode(emu.ctx, D).status, POSATTN_STATUS_SUCCESS);
  }
}

}  // namespace
