// The RoPE fields that express each popular model family exactly (docs/rope-configs.md), and one
// test per family of that document: the parameters are built as the document says and the
// inverse frequencies / attention factors are checked against values computed independently.
//
// Every expected number below was computed in fp64 with numpy from transformers' formulas
// (modeling_rope_utils.py: _compute_default / linear / yarn / longrope / llama3 / proportional,
// DeepseekV3Attention's softmax scale), not with posattn:
//   plain(base, d)[i] = 1 / base**(2i/d)
//   get_mscale(s, m)  = 0.1*m*ln(s) + 1 (1 if s <= 1)
//   yarn: low/high = floor/ceil(d*ln(orig/(beta*2pi)) / (2 ln base)) (no floor/ceil when
//         truncate = false), clipped to [0, d-1], +0.001 if equal; ramp = clip((i-low)/(high-low));
//         inv = plain/s * ramp + plain * (1 - ramp)
//   llama3: wavelen = 2pi/plain; plain/s above old/low, plain below old/high, else
//         (1-sm)*plain/s + sm*plain, sm = (old/wavelen - low)/(high - low)
//   longrope: inv = plain / ext; attention sqrt(1 + ln f / ln orig) (1 if f <= 1)
// The script is the one quoted in each comment; its printed values are pasted with repr().
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "posattn.h"

namespace {

::testing::AssertionResult Rel(double got, double want, double rel = 1e-14) {
  const double err = std::fabs(got - want);
  if (err <= rel * std::fabs(want)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << " want " << want << " rel err "
                                       << err / std::fabs(want) << " > " << rel;
}

posattn_rope_params Rope() {
  posattn_pe pe;
  posattn_pe_init(&pe);
  return pe.rope;
}

// inv_freq of the rotated block (rotary_dim, or head_dim - rotary_offset) and the attention factor.
std::vector<double> Inv(const posattn_rope_params &r, int32_t head_dim, double *af = nullptr,
                        int32_t seq_len = 1) {
  const int32_t rd = r.rotary_dim ? r.rotary_dim : head_dim - r.rotary_offset;
  std::vector<double> inv(size_t(rd / 2), -1.0);
  char why[256] = "";
  double a = 0;
  EXPECT_EQ(posattn_pe_rope_inv_freq(&r, head_dim, seq_len, inv.data(), &a, why, sizeof why),
            POSATTN_STATUS_SUCCESS)
      << why;
  if (af) *af = a;
  return inv;
}

double SoftmaxMultiplier(const posattn_rope_params &r, int32_t head_dim) {
  double m = -1;
  char why[256] = "";
  EXPECT_EQ(posattn_pe_rope_softmax_multiplier(&r, head_dim, &m, why, sizeof why),
            POSATTN_STATUS_SUCCESS)
      << why;
  return m;
}

struct Want {
  int i;
  double inv;
};
void ExpectInv(const std::vector<double> &inv, std::initializer_list<Want> want, double rel = 1e-14) {
  for (const Want &w : want) EXPECT_TRUE(Rel(inv[size_t(w.i)], w.inv, rel)) << "pair " << w.i;
}

// ================================================================ the new fields, one by one

// mscale / mscale_all_dim (transformers' _compute_yarn_parameters): s = 40.
//   get_mscale(40, 1)                     = 1.3688879454113936  (the default, unchanged)
//   get_mscale(40, 0.707)/get_mscale(40, 1) = 0.9210423553163399
TEST(RopeFields, YarnMscaleRatio) {
  posattn_rope_params r = Rope();
  r.scaling = POSATTN_ROPE_SCALING_YARN;
  r.factor = 40;
  double af = 0;
  Inv(r, 64, &af);
  EXPECT_TRUE(Rel(af, 1.3688879454113936));
  r.mscale = 0.707;  // mscale_all_dim not set: transformers keeps the default
  Inv(r, 64, &af);
  EXPECT_TRUE(Rel(af, 1.3688879454113936));
  r.mscale_all_dim = 1.0;
  Inv(r, 64, &af);
  EXPECT_TRUE(Rel(af, 0.9210423553163399));
  r.mscale = 1.0;  // every released DeepSeek / Kimi config: exactly 1
  Inv(r, 64, &af);
  EXPECT_EQ(af, 1.0);
  r.attention_factor = 0.75;  // an explicit factor still wins
  Inv(r, 64, &af);
  EXPECT_EQ(af, 0.75);
  r.attention_factor = 0;
  r.factor = 1;  // s <= 1: get_mscale is 1 for both
  Inv(r, 64, &af);
  EXPECT_EQ(af, 1.0);
}

// DeepSeek's softmax multiplier get_mscale(s, mscale_all_dim)^2:
//   s = 40, m = 1: 1.8738542070926265; s = 40, m = 0.5: 1.4029075244788534.
TEST(RopeFields, SoftmaxMultiplier) {
  posattn_rope_params r = Rope();
  EXPECT_EQ(SoftmaxMultiplier(r, 64), 1.0);  // not YaRN
  r.scaling = POSATTN_ROPE_SCALING_YARN;
  r.factor = 40;
  EXPECT_EQ(SoftmaxMultiplier(r, 64), 1.0);  // mscale_all_dim not set
  r.mscale_all_dim = 1;
  EXPECT_TRUE(Rel(SoftmaxMultiplier(r, 64), 1.8738542070926265));
  r.mscale_all_dim = 0.5;
  EXPECT_TRUE(Rel(SoftmaxMultiplier(r, 64), 1.4029075244788534));
  double m = 0;
  EXPECT_EQ(posattn_pe_rope_softmax_multiplier(&r, 64, nullptr, nullptr, 0),
            POSATTN_STATUS_NULL_POINTER);
  EXPECT_EQ(posattn_pe_rope_softmax_multiplier(nullptr, 64, &m, nullptr, 0),
            POSATTN_STATUS_NULL_POINTER);
  r.mscale_all_dim = -1;
  char why[256] = "";
  EXPECT_EQ(posattn_pe_rope_softmax_multiplier(&r, 64, &m, why, sizeof why),
            POSATTN_STATUS_BAD_PE_PARAMS);
  EXPECT_NE(std::string(why).find("rope.mscale"), std::string::npos) << why;
}

// LongRoPE's `factor` (transformers: used when the config has it, else max/original):
//   orig 4096: f = 16 -> sqrt(1 + ln 16/ln 4096) = sqrt(4/3) = 1.1547005383792517,
//              f = 32 -> 1.1902380714238083; f <= 1 -> 1.
TEST(RopeFields, LongropeFactor) {
  std::vector<double> ext(32, 2.0);
  posattn_rope_params r = Rope();
  r.scaling = POSATTN_ROPE_SCALING_LONGROPE;
  r.ext_factors = ext.data();
  r.original_max_position = 4096;
  r.max_position = 131072;  // max/original = 32
  double af = 0;
  Inv(r, 64, &af);
  EXPECT_TRUE(Rel(af, 1.1902380714238083));
  r.longrope_factor = 16;
  Inv(r, 64, &af);
  EXPECT_TRUE(Rel(af, 1.1547005383792517));
  r.longrope_factor = 0.5;
  Inv(r, 64, &af);
  EXPECT_EQ(af, 1.0);
}

// rotary_offset: x = 1..8, head 8, offset 4, rotary_dim 4, base 10000 (theta = 1, 0.01), p = 5.
// numpy: y = x; for pair i, (a, b) = (4+i, 6+i) NEOX or (4+2i, 5+2i) GPTJ;
//        y[a], y[b] = x[a] cos(5 theta_i) - x[b] sin(5 theta_i), x[a] sin + x[b] cos
TEST(RopeFields, RotaryOffset) {
  const double x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  const double neox[8] = {1, 2, 3, 4, 8.1307808499581, 5.592668208204371, -2.8089860750731086,
                          8.2898770987838};
  const double gptj[8] = {1, 2, 3, 4, 7.171856575294962, -3.092648260536335, 6.591418468599337,
                          8.33985626805448};
  for (posattn_rope_layout lay : {POSATTN_ROPE_NEOX, POSATTN_ROPE_GPTJ}) {
    for (int32_t rd : {4, 0}) {  // 0 = head_dim - rotary_offset = 4
      posattn_rope_params r = Rope();
      r.layout = lay;
      r.rotary_offset = 4;
      r.rotary_dim = rd;
      double y[8];
      ASSERT_EQ(posattn_pe_rope_apply(&r, 8, 1, 5, x, y), POSATTN_STATUS_SUCCESS);
      const double *want = lay == POSATTN_ROPE_NEOX ? neox : gptj;
      for (int f = 0; f < 8; ++f)
        EXPECT_NEAR(y[f], want[f], 1e-13) << "layout " << lay << " rotary_dim " << rd << " f " << f;
    }
  }
}

// active_pairs (Gemma's proportional RoPE): head 16, base 1e6, LINEAR factor 8, 2 active pairs:
//   inv = plain(1e6, 16)[:2] / 8 = [0.125, 0.022228492625486537], then zeros; the zero pairs are
//   not rotated at any position.
TEST(RopeFields, ActivePairs) {
  posattn_rope_params r = Rope();
  r.base = 1e6;
  r.scaling = POSATTN_ROPE_SCALING_LINEAR;
  r.factor = 8;
  r.active_pairs = 2;
  const std::vector<double> inv = Inv(r, 16);
  EXPECT_TRUE(Rel(inv[0], 0.125));
  EXPECT_TRUE(Rel(inv[1], 0.022228492625486537));
  for (size_t i = 2; i < 8; ++i) EXPECT_EQ(inv[i], 0.0) << i;
  std::vector<double> x(16), y(16);
  for (int f = 0; f < 16; ++f) x[size_t(f)] = f + 1;
  ASSERT_EQ(posattn_pe_rope_apply(&r, 16, 1, 123457, x.data(), y.data()), POSATTN_STATUS_SUCCESS);
  for (int f : {2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15}) EXPECT_EQ(y[size_t(f)], x[size_t(f)]) << f;
  EXPECT_NE(y[0], x[0]);
  EXPECT_NE(y[9], x[9]);
}

// The inv_freq table is fp64 end to end: 0.1 is no float, and at p = 1e6 the float rounding of it
// (0.100000001490116...) would move the angle by 1.49e-3 rad. The exact rotation of (1, 0) by
// 1e6 * 0.1 = 100000 rad must come back as (cos 1e5, sin 1e5) to fp64 accuracy.
TEST(RopeFields, InvFreqTableStaysDouble) {
  const double table[2] = {0.1, 0.0};
  posattn_rope_params r = Rope();
  r.scaling = POSATTN_ROPE_SCALING_INV_FREQ;
  r.inv_freq = table;
  const std::vector<double> inv = Inv(r, 4);
  EXPECT_EQ(inv[0], 0.1);
  EXPECT_EQ(inv[1], 0.0);
  const double x[4] = {1, 0, 0, 0};
  double y[4];
  ASSERT_EQ(posattn_pe_rope_apply(&r, 4, 1, 1000000, x, y), POSATTN_STATUS_SUCCESS);
  const double angle = 1e6 * 0.1;  // 100000 (the product of 1e6 and the double 0.1 is 1e5 + ~5.6e-12)
  EXPECT_NEAR(y[0], std::cos(angle), 1e-9);
  EXPECT_NEAR(y[2], std::sin(angle), 1e-9);
  const double af32 = 1e6 * double(0.1f);  // the angle a float table would give
  EXPECT_GT(std::hypot(std::cos(af32) - std::cos(angle), std::sin(af32) - std::sin(angle)), 1e-3)
      << "the float rounding of the table would be visible at this position";
}

// ================================================================ one test per family

// Llama 2: head_dim 128, rope_theta 10000, no rope_scaling.
//   plain(1e4, 128)[1, 31, 63] = 0.8659643233600653, 0.011547819846894583, 0.00011547819846894582
TEST(RopeConfigs, Llama2) {
  double af = 0;
  const std::vector<double> inv = Inv(Rope(), 128, &af);
  ExpectInv(inv, {{1, 0.8659643233600653}, {31, 0.011547819846894583}, {63, 0.00011547819846894582}});
  EXPECT_EQ(af, 1.0);
}

// Llama 3.1 (8B/70B/405B): theta 500000, rope_type llama3, factor 8, low 1, high 4, original 8192.
// Llama 3.2 1B/3B: the same with factor 32 (head_dim 128 is the 3B; the 1B has 64).
TEST(RopeConfigs, Llama3x) {
  posattn_rope_params r = Rope();
  r.base = 500000;
  r.scaling = POSATTN_ROPE_SCALING_LLAMA3;
  r.factor = 8;
  r.low_freq_factor = 1;
  r.high_freq_factor = 4;
  r.original_max_position = 8192;
  double af = 0;
  ExpectInv(Inv(r, 128, &af),
            {{0, 1.0}, {28, 0.0032114459947525913}, {29, 0.002166570763503359},
             {32, 0.0005248461609929547}, {34, 0.00017850781276799638},
             {35, 9.556212353964683e-05}, {63, 3.068925988914511e-07}});
  EXPECT_EQ(af, 1.0);
  r.factor = 32;
  ExpectInv(Inv(r, 128),
            {{29, 0.002118406996779608}, {34, 9.70828780262767e-05}, {35, 2.3890530884911708e-05},
             {63, 7.672314972286278e-08}});
}

// Qwen2.5 / Qwen3 (and Mistral v0.2+): theta 1e6, head_dim 128; plain(1e6, 128)[1, 63] =
// 0.8058421877614819, 1.2409377607517195e-06. Long context: rope_scaling yarn, factor 4,
// original 32768 -> low 23, high 40, attention factor get_mscale(4) = 1.138629436111989.
TEST(RopeConfigs, Qwen25Qwen3Mistral) {
  posattn_rope_params r = Rope();
  r.base = 1e6;
  ExpectInv(Inv(r, 128), {{1, 0.8058421877614819}, {63, 1.2409377607517195e-06}});
  r.scaling = POSATTN_ROPE_SCALING_YARN;
  r.factor = 4;
  r.original_max_position = 32768;
  double af = 0;
  ExpectInv(Inv(r, 128, &af),
            {{0, 1.0}, {23, 0.006978305848598663}, {24, 0.005375321490790102},
             {31, 0.0008029597275452302}, {40, 4.445698525097307e-05}, {63, 3.102344401879299e-07}});
  EXPECT_TRUE(Rel(af, 1.138629436111989));
}

// gpt-oss: head_dim 64, theta 150000, yarn factor 32, beta 32/1, original 4096, truncate false
// -> low 8.0928, high 17.398 (unrounded); attention factor get_mscale(32) = 1.3465735902799727.
TEST(RopeConfigs, GptOss) {
  posattn_rope_params r = Rope();
  r.base = 150000;
  r.scaling = POSATTN_ROPE_SCALING_YARN;
  r.factor = 32;
  r.original_max_position = 4096;
  r.yarn_truncate = 0;
  double af = 0;
  ExpectInv(Inv(r, 64, &af),
            {{0, 1.0}, {8, 0.050813274815461475}, {10, 0.019335001126540362},
             {12, 0.006794959489732219}, {17, 0.00012931870124506317},
             {20, 1.818833668168956e-05}, {31, 3.0235114281192144e-07}});
  EXPECT_TRUE(Rel(af, 1.3465735902799727));
}

// Phi-3-mini/medium-128k, Phi-3.5-mini: head_dim 96, theta 10000, longrope, original 4096,
// max_position_embeddings 131072 -> attention factor 1.1902380714238083; inv = plain(1e4, 96)/ext
// (plain[1] = 0.8254041852680185, plain[47] = 0.00012115276586285887). Phi-4-mini: head_dim 128,
// partial_rotary_factor 0.75 -> rotary_dim 96, same numbers. ext here is a stand-in list.
TEST(RopeConfigs, Phi3Phi35Phi4) {
  std::vector<double> ext(48);
  for (size_t i = 0; i < ext.size(); ++i) ext[i] = 1.0 + double(i) / 8;
  for (int32_t head_dim : {96, 128}) {
    posattn_rope_params r = Rope();
    r.rotary_dim = head_dim == 128 ? 96 : 0;
    r.scaling = POSATTN_ROPE_SCALING_LONGROPE;
    r.ext_factors = ext.data();
    r.original_max_position = 4096;
    r.max_position = 131072;
    double af = 0;
    const std::vector<double> inv = Inv(r, head_dim, &af);
    EXPECT_EQ(inv[0], 1.0);
    EXPECT_TRUE(Rel(inv[1], 0.8254041852680185 / 1.125));
    EXPECT_TRUE(Rel(inv[47], 0.00012115276586285887 / (1.0 + 47.0 / 8)));
    EXPECT_TRUE(Rel(af, 1.1902380714238083));
  }
}

// Gemma 2 (and Gemma 3/4 sliding layers): head_dim 256, theta 10000: plain[1] =
// 0.930572040929699, plain[127] = 0.00010746078283213175. Gemma 3 global layers (4B and up):
// theta 1e6, linear factor 8: 0.125, 0.11221089155591428, 1.3924673249935028e-07.
TEST(RopeConfigs, Gemma2Gemma3) {
  posattn_rope_params r = Rope();
  ExpectInv(Inv(r, 256), {{1, 0.930572040929699}, {127, 0.00010746078283213175}});
  r.base = 1e6;
  r.scaling = POSATTN_ROPE_SCALING_LINEAR;
  r.factor = 8;
  ExpectInv(Inv(r, 256), {{0, 0.125}, {1, 0.11221089155591428}, {127, 1.3924673249935028e-07}});
}

// Gemma 4 full-attention layers: proportional, global_head_dim 512, partial_rotary_factor 0.25,
// theta 1e6: rope_angles = int(0.25*512//2) = 64 pairs with plain(1e6, 512)[i] (exponent over the
// whole head: [1] = 0.9474635256553754, [63] = 0.033376246942920386), 192 zero pairs; pairs are
// (i, i + 256).
TEST(RopeConfigs, Gemma4Proportional) {
  posattn_rope_params r = Rope();
  r.base = 1e6;
  r.active_pairs = 64;
  const std::vector<double> inv = Inv(r, 512);
  ASSERT_EQ(inv.size(), 256u);
  ExpectInv(inv, {{0, 1.0}, {1, 0.9474635256553754}, {63, 0.033376246942920386}});
  for (size_t i = 64; i < 256; ++i) ASSERT_EQ(inv[i], 0.0) << i;
  std::vector<double> x(512), y(512);
  for (int f = 0; f < 512; ++f) x[size_t(f)] = std::sin(0.37 * f) + 0.5;
  ASSERT_EQ(posattn_pe_rope_apply(&r, 512, 1, 1001, x.data(), y.data()), POSATTN_STATUS_SUCCESS);
  // pair 1 = features (1, 257) turns by 1001 * inv[1]; pair 64 = (64, 320) stays
  const double c = std::cos(1001 * 0.9474635256553754), s = std::sin(1001 * 0.9474635256553754);
  EXPECT_NEAR(y[1], x[1] * c - x[257] * s, 1e-12);
  EXPECT_NEAR(y[257], x[1] * s + x[257] * c, 1e-12);
  EXPECT_EQ(y[64], x[64]);
  EXPECT_EQ(y[320], x[320]);
}

// DeepSeek-V3 (and V2): qk_nope_head_dim 128 + qk_rope_head_dim 64 = head 192, rope part last,
// rope_interleave -> GPTJ pairs; yarn factor 40, beta 32/1, original 4096, mscale = mscale_all_dim
// = 1, theta 10000. rotary dim 64: low 10, high 23; attention factor 1; softmax multiplier
// get_mscale(40, 1)^2 = 1.8738542070926265.
TEST(RopeConfigs, DeepSeekV3) {
  posattn_rope_params r = Rope();
  r.layout = POSATTN_ROPE_GPTJ;
  r.rotary_offset = 128;
  r.rotary_dim = 64;
  r.scaling = POSATTN_ROPE_SCALING_YARN;
  r.factor = 40;
  r.original_max_position = 4096;
  r.mscale = 1;
  r.mscale_all_dim = 1;
  double af = 0;
  ExpectInv(Inv(r, 192, &af),
            {{0, 1.0}, {10, 0.056234132519034905}, {11, 0.03900692656714386}, {16, 0.0055},
             {23, 3.33380358040831e-05}, {31, 3.3338035804083097e-06}});
  EXPECT_EQ(af, 1.0);
  EXPECT_TRUE(Rel(SoftmaxMultiplier(r, 192), 1.8738542070926265));
  std::vector<double> x(192), y(192);
  for (int f = 0; f < 192; ++f) x[size_t(f)] = 0.01 * f - 0.7;
  ASSERT_EQ(posattn_pe_rope_apply(&r, 192, 1, 77, x.data(), y.data()), POSATTN_STATUS_SUCCESS);
  for (int f = 0; f < 128; ++f) ASSERT_EQ(y[size_t(f)], x[size_t(f)]) << f;
  EXPECT_NEAR(y[128], x[128] * std::cos(77.0) - x[129] * std::sin(77.0), 1e-13);
}

// Kimi-K2: DeepSeek-V3 layout, theta 50000, yarn factor 32, beta_fast = beta_slow = 1, original
// 4096, mscale = mscale_all_dim = 1: low 19, high 20; softmax multiplier 1.8132604340394958.
TEST(RopeConfigs, KimiK2) {
  posattn_rope_params r = Rope();
  r.layout = POSATTN_ROPE_GPTJ;
  r.rotary_offset = 128;
  r.rotary_dim = 64;
  r.base = 50000;
  r.scaling = POSATTN_ROPE_SCALING_YARN;
  r.factor = 32;
  r.beta_fast = 1;
  r.beta_slow = 1;
  r.original_max_position = 4096;
  r.mscale = 1;
  r.mscale_all_dim = 1;
  double af = 0;
  ExpectInv(Inv(r, 192, &af),
            {{0, 1.0}, {18, 0.0022742037565104418}, {19, 0.0016217599081159522},
             {20, 3.6140467735726306e-05}, {31, 8.764412911589875e-07}});
  EXPECT_EQ(af, 1.0);
  EXPECT_TRUE(Rel(SoftmaxMultiplier(r, 192), 1.8132604340394958));
}

// GPT-NeoX-20B: head 96, rotary_pct 0.25 -> 24: plain(1e4, 24)[1, 11] = 0.46415888336127786,
// 0.00021544346900318845. Pythia (head 128): 32 -> 0.5623413251903491, 0.00017782794100389227.
// GPT-J-6B: head 256, rotary_dim 64, GPTJ pairs: 0.7498942093324559, 0.0001333521432163324.
TEST(RopeConfigs, NeoxPythiaGptj) {
  posattn_rope_params r = Rope();
  r.rotary_dim = 24;
  ExpectInv(Inv(r, 96), {{1, 0.46415888336127786}, {11, 0.00021544346900318845}});
  r.rotary_dim = 32;
  ExpectInv(Inv(r, 128), {{1, 0.5623413251903491}, {15, 0.00017782794100389227}});
  r.rotary_dim = 64;
  r.layout = POSATTN_ROPE_GPTJ;
  ExpectInv(Inv(r, 256), {{1, 0.7498942093324559}, {31, 0.0001333521432163324}});
}

// BLOOM (ALiBi, 112 heads in bloom-176b): the closest power of two is 64, so heads 0..63 have
// 2^(-8(h+1)/64) and heads 64..111 take 2^(-(4/64)(2k+1)), k = h - 64 (BLOOM's
// build_alibi_tensor and Press et al. agree): head 0 2^-0.125, 63 2^-8, 64 2^-0.0625, 111 2^-5.9375.
TEST(RopeConfigs, BloomAlibi) {
  std::vector<double> s(112);
  ASSERT_EQ(posattn_pe_alibi_slopes(112, s.data()), POSATTN_STATUS_SUCCESS);
  EXPECT_TRUE(Rel(s[0], std::exp2(-0.125)));
  EXPECT_TRUE(Rel(s[63], std::exp2(-8.0)));
  EXPECT_TRUE(Rel(s[64], std::exp2(-0.0625)));
  EXPECT_TRUE(Rel(s[111], std::exp2(-5.9375)));
}

// T5 (and mT5, Flan-T5): 32 buckets, max_distance 128; encoder bidirectional, decoder causal.
// Buckets from pe-spec §7's table (HF _relative_position_bucket, computed there).
TEST(RopeConfigs, T5Buckets) {
  const int64_t rel[6] = {-300, -100, -9, 1, 16, 128};
  const int32_t bidir[6] = {15, 15, 8, 17, 26, 31}, causal[6] = {31, 30, 9, 0, 0, 0};
  for (int k = 0; k < 6; ++k) {
    EXPECT_EQ(posattn_pe_t5_bucket(rel[k], 1, 32, 128), bidir[k]) << rel[k];
    EXPECT_EQ(posattn_pe_t5_bucket(rel[k], 0, 32, 128), causal[k]) << rel[k];
  }
}

}  // namespace
