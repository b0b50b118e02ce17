// Worked values of pe-spec.md reproduced through the public posattn_pe_* helpers, plus the
// closed forms of each additive bias. Tolerances follow the digits the spec prints: a value
// printed with n significant digits is checked to about half a unit of its last digit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "pa_test_shim.h"
#include "posattn.h"

namespace {

constexpr double kPi = 3.14159265358979323846;

// |got - want| <= rel * |want|
::testing::AssertionResult RelNear(double got, double want, double rel) {
  double err = std::fabs(got - want);
  if (err <= rel * std::fabs(want)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << " want " << want << " rel err "
                                       << err / std::fabs(want) << " > " << rel;
}

posattn_rope_params DefaultRope() {
  posattn_pe pe;
  posattn_pe_init(&pe);
  return pe.rope;
}

std::vector<double> InvFreq(const posattn_rope_params &rope, int32_t head_dim, int32_t seq_len,
                            double *attn_factor = nullptr) {
  int32_t rd = rope.rotary_dim ? rope.rotary_dim : head_dim;
  std::vector<double> inv(rd / 2);
  char why[256] = "";
  double af = 0;
  posattn_status st =
      posattn_pe_rope_inv_freq(&rope, head_dim, seq_len, inv.data(), &af, why, sizeof why);
  EXPECT_EQ(st, POSATTN_STATUS_SUCCESS) << why;
  if (attn_factor) *attn_factor = af;
  return inv;
}

// ---------------------------------------------------------------- ALiBi slopes (spec 3.1)
void ExpectSlopesPow2(int32_t n, const std::vector<double> &x) {
  std::vector<double> s(n);
  ASSERT_EQ(posattn_pe_alibi_slopes(n, s.data()), POSATTN_STATUS_SUCCESS);
  ASSERT_EQ((size_t)n, x.size());
  for (int32_t h = 0; h < n; ++h) EXPECT_TRUE(RelNear(s[h], std::exp2(-x[h]), 1e-14)) << "h=" << h;
}

TEST(PeValues, AlibiSlopes8) { ExpectSlopesPow2(8, {1, 2, 3, 4, 5, 6, 7, 8}); }

TEST(PeValues, AlibiSlopes12) {
  ExpectSlopesPow2(12, {1, 2, 3, 4, 5, 6, 7, 8, 0.5, 1.5, 2.5, 3.5});
  std::vector<double> s(12);
  ASSERT_EQ(posattn_pe_alibi_slopes(12, s.data()), POSATTN_STATUS_SUCCESS);
  const double printed[4] = {0.7071067812, 0.3535533906, 0.1767766953, 0.08838834765};
  for (int k = 0; k < 4; ++k) EXPECT_TRUE(RelNear(s[8 + k], printed[k], 1e-9));
}

TEST(PeValues, AlibiSlopes16) {
  std::vector<double> x;
  for (int k = 1; k <= 16; ++k) x.push_back(0.5 * k);
  ExpectSlopesPow2(16, x);
  const double printed[16] = {0.7071067812,  0.5,        0.3535533906,   0.25,
                              0.1767766953,  0.125,      0.08838834765,  0.0625,
                              0.04419417382, 0.03125,    0.02209708691,  0.015625,
                              0.01104854346, 0.0078125,  0.005524271728, 0.00390625};
  std::vector<double> s(16);
  ASSERT_EQ(posattn_pe_alibi_slopes(16, s.data()), POSATTN_STATUS_SUCCESS);
  for (int h = 0; h < 16; ++h) EXPECT_TRUE(RelNear(s[h], printed[h], 1e-9)) << "h=" << h;
}

TEST(PeValues, AlibiSlopes20And40) {
  std::vector<double> x20;
  for (int k = 1; k <= 16; ++k) x20.push_back(0.5 * k);
  for (double e : {0.25, 0.75, 1.25, 1.75}) x20.push_back(e);
  ExpectSlopesPow2(20, x20);
  std::vector<double> x40;
  for (int k = 1; k <= 32; ++k) x40.push_back(0.25 * k);
  for (int k = 0; k < 8; ++k) x40.push_back(0.125 + 0.25 * k);
  ExpectSlopesPow2(40, x40);
}

TEST(PeValues, AlibiSlopesErrors) {
  double s[1];
  EXPECT_EQ(posattn_pe_alibi_slopes(0, s), POSATTN_STATUS_BAD_SIZE);
  EXPECT_EQ(posattn_pe_alibi_slopes(4, nullptr), POSATTN_STATUS_NULL_POINTER);
}

// ALiBi bias example (spec 3.2): head 0 of 8 (m = 0.5), row i = 3.
TEST(PeValues, AlibiBiasRow) {
  posattn_pe pe;
  posattn_pe_init(&pe);
  pe.kind = POSATTN_PE_ALIBI;
  const double want[4] = {-1.5, -1.0, -0.5, 0.0};
  for (int j = 0; j < 4; ++j) {
    double b = 1;
    ASSERT_EQ(posattn_pe_bias(&pe, 8, 0, 3, j, &b), POSATTN_STATUS_SUCCESS);
    EXPECT_DOUBLE_EQ(b, want[j]) << "j=" << j;
  }
}

// ---------------------------------------------------------------- RoPE frequencies (spec 1, 1.4)
TEST(PeValues, RopeDefaultInvFreqFp64) {
  posattn_rope_params rope = DefaultRope();
  double af = 0;
  std::vector<double> inv = InvFreq(rope, 128, 1, &af);
  EXPECT_EQ(af, 1.0);
  EXPECT_EQ(inv[0], 1.0);
  EXPECT_TRUE(RelNear(inv[1], 8.659643233601e-01, 1e-12));
  EXPECT_TRUE(RelNear(inv[31], 1.154781984689e-02, 1e-12));
  EXPECT_TRUE(RelNear(inv[63], 1.154781984689e-04, 1e-12));
  // wavelengths 2*pi/theta_i run from 6.2832 to 54410.14
  EXPECT_NEAR(2 * kPi / inv[0], 6.2832, 5e-5);
  EXPECT_NEAR(2 * kPi / inv[63], 54410.14, 5e-3);
  for (int i = 0; i < 64; ++i)
    EXPECT_TRUE(RelNear(inv[i], std::pow(10000.0, -2.0 * i / 128), 1e-14)) << "i=" << i;
}

// Partial rotary: frequencies use rotary_dim as the denominator (spec 1.3).
TEST(PeValues, RopePartialInvFreq) {
  posattn_rope_params rope = DefaultRope();
  rope.rotary_dim = 32;
  std::vector<double> inv = InvFreq(rope, 128, 1);
  ASSERT_EQ(inv.size(), 16u);
  for (int i = 0; i < 16; ++i)
    EXPECT_TRUE(RelNear(inv[i], std::pow(10000.0, -2.0 * i / 32), 1e-14)) << "i=" << i;
}

// Linear (spec 2.1): s = 4, d = 128.
TEST(PeValues, RopeLinear) {
  posattn_rope_params rope = DefaultRope();
  rope.scaling = POSATTN_ROPE_SCALING_LINEAR;
  rope.factor = 4;
  double af = 0;
  std::vector<double> inv = InvFreq(rope, 128, 1, &af);
  EXPECT_EQ(af, 1.0);
  EXPECT_TRUE(RelNear(inv[0], 0.25, 1e-14));
  // the spec printed HF's fp32 values (fp32-level agreement); the fp64 closed form is exact
  EXPECT_TRUE(RelNear(inv[1], 0.2164910883, 1e-7));
  EXPECT_TRUE(RelNear(inv[2], 0.1874735504, 1e-7));
  for (int i = 0; i < 64; ++i)
    EXPECT_TRUE(RelNear(inv[i], std::pow(10000.0, -2.0 * i / 128) / 4, 1e-14)) << i;
}

// NTK (spec 2.2): base' = inv_freq[last]^(-d/(d-2)) since inv_freq[63] = base'^(-126/128).
TEST(PeValues, RopeNtk) {
  const double factors[3] = {2, 4, 8};
  const double base_prime[3] = {20221.2617, 40889.9424, 82684.6226};
  posattn_rope_params plain = DefaultRope();
  std::vector<double> orig = InvFreq(plain, 128, 1);
  for (int t = 0; t < 3; ++t) {
    posattn_rope_params rope = DefaultRope();
    rope.scaling = POSATTN_ROPE_SCALING_NTK;
    rope.factor = factors[t];
    double af = 0;
    std::vector<double> inv = InvFreq(rope, 128, 1, &af);
    EXPECT_EQ(af, 1.0);
    EXPECT_TRUE(RelNear(std::pow(inv[63], -128.0 / 126.0), base_prime[t], 5e-9)) << "s=" << factors[t];
    EXPECT_TRUE(RelNear(inv[63], orig[63] / factors[t], 1e-12)) << "lowest frequency = theta/s";
    EXPECT_EQ(inv[0], 1.0) << "highest frequency unchanged";
  }
  posattn_rope_params rope = DefaultRope();
  rope.scaling = POSATTN_ROPE_SCALING_NTK;
  rope.factor = 2;
  EXPECT_TRUE(RelNear(InvFreq(rope, 128, 1)[63], 5.773909923e-05, 1e-9));
}

// Dynamic NTK (spec 2.3): factor 2, max_position_embeddings 4096, d = 128.
TEST(PeValues, RopeDynamicNtk) {
  const int32_t lens[5] = {100, 4096, 5000, 8192, 16384};
  const double base_prime[5] = {10000, 10000, 14497.9574, 30527.7367, 72195.8601};
  for (int t = 0; t < 5; ++t) {
    posattn_rope_params rope = DefaultRope();
    rope.scaling = POSATTN_ROPE_SCALING_DYNAMIC_NTK;
    rope.factor = 2;
    rope.original_max_position = 4096;
    // the length comes from the seq_len argument ...
    std::vector<double> inv = InvFreq(rope, 128, lens[t]);
    EXPECT_TRUE(RelNear(std::pow(inv[63], -128.0 / 126.0), base_prime[t], 5e-9)) << lens[t];
    // ... or from dynamic_seq_len, which then wins over the argument
    rope.dynamic_seq_len = lens[t];
    std::vector<double> inv2 = InvFreq(rope, 128, 1);
    EXPECT_TRUE(RelNear(std::pow(inv2[63], -128.0 / 126.0), base_prime[t], 5e-9)) << lens[t];
  }
}

// YaRN (spec 2.4): Llama-2-7B style, d=128, base 1e4, L_orig 4096, s = 16, truncate.
TEST(PeValues, RopeYarnTable) {
  posattn_rope_params plain = DefaultRope();
  std::vector<double> orig = InvFreq(plain, 128, 1);
  posattn_rope_params rope = DefaultRope();
  rope.scaling = POSATTN_ROPE_SCALING_YARN;
  rope.factor = 16;
  rope.original_max_position = 4096;
  rope.beta_fast = 32;
  rope.beta_slow = 1;
  rope.yarn_truncate = 1;
  double af = 0;
  std::vector<double> inv = InvFreq(rope, 128, 1, &af);
  EXPECT_TRUE(RelNear(af, 1.277259, 5e-7));
  EXPECT_TRUE(RelNear(af * af, 1.631390, 5e-7));

  struct Row {
    int i;
    double extrap_w, inv, ratio;  // inv/ratio < 0: not printed
  };
  const Row rows[] = {
      {0, 1, 1.000000000e+00, 1},          {20, 1, 5.623412877e-02, 1},
      {21, 0.961538, 4.694085941e-02, 1.037406}, {22, 0.923077, -1, -1},
      {25, 0.807692, 2.244714089e-02, 1.219941}, {30, 0.615385, 8.526843973e-03, 1.563910},
      {35, 0.423077, 2.981535858e-03, 2.178010}, {40, 0.230769, 8.817889611e-04, 3.586207},
      {45, 0.038462, 1.517716446e-04, 10.146338}, {50, 0, 4.686838656e-05, 16},
      {63, 0, 7.217387065e-06, 16}};
  const double s = 16;
  for (const Row &r : rows) {
    SCOPED_TRACE("pair " + std::to_string(r.i));
    // inv = orig/s*(1-w) + orig*w  =>  w = (inv/orig - 1/s) / (1 - 1/s)
    double w = (inv[r.i] / orig[r.i] - 1 / s) / (1 - 1 / s);
    EXPECT_NEAR(w, r.extrap_w, 6e-7);
    // the printed table was computed with HF's fp32 formula: fp32-level agreement only
    if (r.inv > 0) {
      EXPECT_TRUE(RelNear(inv[r.i], r.inv, 3e-7));
    }
    if (r.ratio > 0) {
      EXPECT_TRUE(RelNear(orig[r.i] / inv[r.i], r.ratio, 6e-7));
    }
  }
  // 21 pure extrapolation pairs, 25 blended, 18 pure interpolation
  int pure_ex = 0, blended = 0, pure_in = 0;
  for (int i = 0; i < 64; ++i) {
    double r = orig[i] / inv[i];
    if (std::fabs(r - 1) < 1e-12) ++pure_ex;
    else if (std::fabs(r - 16) < 1e-12) ++pure_in;
    else ++blended;
  }
  EXPECT_EQ(pure_ex, 21);
  EXPECT_EQ(blended, 25);
  EXPECT_EQ(pure_in, 18);
}

TEST(PeValues, RopeYarnNoTruncate) {
  posattn_rope_params plain = DefaultRope();
  std::vector<double> orig = InvFreq(plain, 128, 1);
  posattn_rope_params rope = DefaultRope();
  rope.scaling = POSATTN_ROPE_SCALING_YARN;
  rope.factor = 16;
  rope.original_max_position = 4096;
  rope.yarn_truncate = 0;
  std::vector<double> inv = InvFreq(rope, 128, 1);
  double w = (inv[30] / orig[30] - 1.0 / 16) / (1 - 1.0 / 16);
  EXPECT_NEAR(w, 0.623978, 6e-7);
  // low = 20.9445 is not floored: pair 20 stays pure extrapolation, pair 21 gets a fractional ramp
  EXPECT_LT(inv[21], orig[21]);
  double w20 = (inv[20] / orig[20] - 1.0 / 16) / (1 - 1.0 / 16);
  EXPECT_NEAR(w20, 1.0, 1e-12);  // ramp(20) = clamp(negative) = 0 -> w = 1
  double w21 = (inv[21] / orig[21] - 1.0 / 16) / (1 - 1.0 / 16);
  EXPECT_NEAR(w21, 1 - (21 - 20.9445) / (45.0269 - 20.9445), 5e-5);
}

TEST(PeValues, RopeYarnMscale) {
  const double s[6] = {2, 4, 8, 16, 32, 64};
  const double m[6] = {1.069315, 1.138629, 1.207944, 1.277259, 1.346574, 1.415888};
  for (int t = 0; t < 6; ++t) {
    posattn_rope_params rope = DefaultRope();
    rope.scaling = POSATTN_ROPE_SCALING_YARN;
    rope.factor = s[t];
    double af = 0;
    InvFreq(rope, 128, 1, &af);
    EXPECT_TRUE(RelNear(af, m[t], 5e-7)) << "s=" << s[t];
  }
  // an explicit attention_factor replaces the default
  posattn_rope_params rope = DefaultRope();
  rope.scaling = POSATTN_ROPE_SCALING_YARN;
  rope.factor = 8;
  rope.attention_factor = 0.75;
  double af = 0;
  InvFreq(rope, 128, 1, &af);
  EXPECT_EQ(af, 0.75);
}

// Llama 3.1 (spec 2.5): d=128, theta 5e5, factor 8, low 1, high 4, old_ctx 8192.
TEST(PeValues, RopeLlama3Table) {
  posattn_rope_params plain = DefaultRope();
  plain.base = 500000;
  std::vector<double> orig = InvFreq(plain, 128, 1);
  posattn_rope_params rope = plain;
  rope.scaling = POSATTN_ROPE_SCALING_LLAMA3;
  rope.factor = 8;
  rope.low_freq_factor = 1;
  rope.high_freq_factor = 4;
  rope.original_max_position = 8192;
  double af = 0;
  std::vector<double> inv = InvFreq(rope, 128, 1, &af);
  EXPECT_EQ(af, 1.0);
  for (int i = 0; i <= 28; ++i) EXPECT_EQ(inv[i], orig[i]) << "unchanged pair " << i;
  for (int i = 35; i < 64; ++i) EXPECT_TRUE(RelNear(orig[i] / inv[i], 8, 1e-14)) << "pair " << i;
  for (int i = 29; i <= 34; ++i) {
    double r = orig[i] / inv[i];
    EXPECT_GT(r, 1.0) << i;
    EXPECT_LT(r, 8.0) << i;
  }
  EXPECT_NEAR(2 * kPi / orig[29], 2401.74, 5e-3);
  EXPECT_TRUE(RelNear(orig[29], 2.616099082e-3, 3e-7));
  EXPECT_TRUE(RelNear(inv[29], 2.166570630e-3, 3e-7));
  EXPECT_TRUE(RelNear(orig[29] / inv[29], 1.207484, 5e-7));
  EXPECT_NEAR(2 * kPi / orig[32], 4442.88, 5e-3);
  EXPECT_TRUE(RelNear(orig[32] / inv[32], 2.694530, 5e-7));
  EXPECT_NEAR(2 * kPi / orig[34], 6695.11, 5e-3);
  EXPECT_TRUE(RelNear(inv[34], 1.785077911e-4, 3e-7));
  EXPECT_TRUE(RelNear(orig[34] / inv[34], 5.257327, 5e-7));
  EXPECT_NEAR(2 * kPi / orig[35], 8218.72, 5e-3);
  // smoothing rule written out: sm = (old_ctx/wavelen - low)/(high - low)
  for (int i = 29; i <= 34; ++i) {
    double sm = (8192.0 / (2 * kPi / orig[i]) - 1) / 3;
    EXPECT_TRUE(RelNear(inv[i], (1 - sm) * orig[i] / 8 + sm * orig[i], 1e-13)) << i;
  }
}

// LongRoPE (spec 2.6): original 4096, max 131072 -> factor 32, attention 1.190238.
TEST(PeValues, RopeLongRope) {
  pat_rng rng;
  pat_rng_seed(&rng, 26);
  std::vector<double> ext(64);
  for (double &e : ext) e = pat_rng_uniform(&rng, 1.0, 40.0);
  posattn_rope_params rope = DefaultRope();
  rope.scaling = POSATTN_ROPE_SCALING_LONGROPE;
  rope.original_max_position = 4096;
  rope.max_position = 131072;
  rope.ext_factors = ext.data();
  double af = 0;
  std::vector<double> inv = InvFreq(rope, 128, 1, &af);
  EXPECT_TRUE(RelNear(af, 1.190238, 5e-7));
  EXPECT_TRUE(RelNear(af, std::sqrt(1 + std::log(32.0) / std::log(4096.0)), 1e-14));
  for (int i = 0; i < 64; ++i)
    EXPECT_TRUE(RelNear(inv[i], 1.0 / (ext[i] * std::pow(10000.0, 2.0 * i / 128)), 1e-14))
        << i;
  // max_position = 0 means original: factor 1, attention factor 1
  rope.max_position = 0;
  InvFreq(rope, 128, 1, &af);
  EXPECT_EQ(af, 1.0);
}

TEST(PeValues, RopeExplicitInvFreq) {
  // fp64 entries that are not float values come back unrounded
  std::vector<double> table = {1.0, 0.3, 0.01, 2.5e-4};
  posattn_rope_params rope = DefaultRope();
  rope.scaling = POSATTN_ROPE_SCALING_INV_FREQ;
  rope.inv_freq = table.data();
  rope.rotary_dim = 8;
  std::vector<double> inv = InvFreq(rope, 16, 1);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(inv[i], table[i]);
}

// ---------------------------------------------------------------- RoPE apply (spec 1.2, 1.3)
struct RopeExample {
  const char *name;
  posattn_rope_layout layout;
  int32_t rotary_dim;
  int64_t pos;
  double want[8];
};

class RopeApplyExample : public ::testing::TestWithParam<RopeExample> {};

TEST_P(RopeApplyExample, MatchesSpec) {
  const RopeExample &ex = GetParam();
  posattn_rope_params rope = DefaultRope();
  rope.layout = ex.layout;
  rope.rotary_dim = ex.rotary_dim;
  double x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8];
  ASSERT_EQ(posattn_pe_rope_apply(&rope, 8, (int32_t)ex.pos + 1, ex.pos, x, y),
            POSATTN_STATUS_SUCCESS);
  for (int e = 0; e < 8; ++e) EXPECT_NEAR(y[e], ex.want[e], 5.1e-7) << "dim " << e;
  // in place gives the same
  ASSERT_EQ(posattn_pe_rope_apply(&rope, 8, (int32_t)ex.pos + 1, ex.pos, x, x),
            POSATTN_STATUS_SUCCESS);
  for (int e = 0; e < 8; ++e) EXPECT_EQ(x[e], y[e]) << "dim " << e;
}

const RopeExample kRopeExamples[] = {
    {"neox_p1", POSATTN_ROPE_NEOX, 0, 1,
     {-3.667053, 1.391008, 2.929851, 3.991998, 3.542983, 6.169692, 7.029650, 8.003996}},
    {"gptj_p1", POSATTN_ROPE_GPTJ, 0, 1,
     {-1.142640, 1.922076, 2.585679, 4.279517, 4.939751, 6.049699, 6.991997, 8.006996}},
    {"neox_p5", POSATTN_ROPE_NEOX, 0, 5,
     {5.078284, -1.121388, 2.646397, 3.959950, 0.459387, 6.224346, 7.141189, 8.019900}},
    {"gptj_p5", POSATTN_ROPE_GPTJ, 0, 5,
     {2.201511, -0.391600, 0.715046, 4.948607, 4.693876, 6.242397, 6.959913, 8.034900}},
    {"neox_rd4_p1", POSATTN_ROPE_NEOX, 4, 1, {-1.984111, 1.959901, 2.462378, 4.019800, 5, 6, 7, 8}},
    {"gptj_rd4_p1", POSATTN_ROPE_GPTJ, 4, 1, {-1.142640, 1.922076, 2.959851, 4.029800, 5, 6, 7, 8}},
};

INSTANTIATE_TEST_SUITE_P(PeValues, RopeApplyExample, ::testing::ValuesIn(kRopeExamples),
                         [](const ::testing::TestParamInfo<RopeExample> &i) {
                           return std::string(i.param.name);
                         });

// ---------------------------------------------------------------- T5 buckets (spec 7)
TEST(PeValues, T5BucketTable) {
  const int64_t rel[26] = {-300, -128, -100, -64, -50, -32, -20, -16, -12, -9, -8, -7, -1,
                           0,    1,    7,    8,   9,   12,  16,  20,  32,  50,  64, 100, 128};
  const int32_t bidir[26] = {15, 15, 15, 14, 13, 12, 10, 10, 9,  8,  8,  7,  1,
                             0,  17, 23, 24, 24, 25, 26, 26, 28, 29, 30, 31, 31};
  const int32_t causal[26] = {31, 31, 30, 26, 24, 21, 17, 16, 12, 9, 8, 7, 1,
                              0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 0, 0, 0};
  for (int c = 0; c < 26; ++c) {
    EXPECT_EQ(posattn_pe_t5_bucket(rel[c], 1, 32, 128), bidir[c]) << "bidirectional rel=" << rel[c];
    EXPECT_EQ(posattn_pe_t5_bucket(rel[c], 0, 32, 128), causal[c]) << "causal rel=" << rel[c];
  }
}

TEST(PeValues, T5BucketStartsCausal) {
  // distance n = query - key; buckets 0..16 start at n = 0..16
  int32_t start[32];
  for (int b = 0; b <= 16; ++b) start[b] = b;
  const int32_t tail[15] = {19, 21, 24, 27, 31, 35, 40, 46, 52, 59, 67, 77, 87, 99, 113};
  for (int b = 17; b < 32; ++b) start[b] = tail[b - 17];
  for (int b = 0; b < 32; ++b) {
    EXPECT_EQ(posattn_pe_t5_bucket(-start[b], 0, 32, 128), b) << "start of bucket " << b;
    if (b > 0) {
      EXPECT_EQ(posattn_pe_t5_bucket(-(start[b] - 1), 0, 32, 128), b - 1) << b;
    }
  }
  EXPECT_EQ(posattn_pe_t5_bucket(-100000, 0, 32, 128), 31);
}

TEST(PeValues, T5BucketStartsBidirectional) {
  const int32_t start[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 23, 32, 46, 64, 91};
  for (int b = 0; b < 16; ++b) {
    EXPECT_EQ(posattn_pe_t5_bucket(-start[b], 1, 32, 128), b) << "key before, bucket " << b;
    if (b > 0) {
      EXPECT_EQ(posattn_pe_t5_bucket(-(start[b] - 1), 1, 32, 128), b - 1) << b;
      // keys after the query use the upper half
      EXPECT_EQ(posattn_pe_t5_bucket(start[b], 1, 32, 128), b + 16) << "key after, bucket " << b;
      EXPECT_EQ(posattn_pe_t5_bucket(start[b] - 1, 1, 32, 128), b - 1 + (b > 1 ? 16 : 0)) << b;
    }
  }
}

TEST(PeValues, T5BucketInvalidParams) {
  EXPECT_EQ(posattn_pe_t5_bucket(3, 0, 1, 128), -1);   // num_buckets < 2
  EXPECT_EQ(posattn_pe_t5_bucket(3, 1, 31, 128), -1);  // odd when bidirectional
  EXPECT_EQ(posattn_pe_t5_bucket(3, 0, 32, 16), -1);   // max_distance <= max_exact
}

// ---------------------------------------------------------------- FIRE x (spec 4.3)
TEST(PeValues, FireX) {
  struct {
    int64_t i, j;
    double x;
  } rows[] = {{10, 0, 0.175255},    {100, 0, 0.606282},      {511, 0, 0.999515},
              {1000, 0, 1.000000},  {2000, 1000, 0.870235},  {8192, 8000, 0.447971}};
  for (auto &r : rows)
    EXPECT_NEAR(posattn_pe_fire_x(0.1, 512, 1e-6, r.i, r.j), r.x, 1e-6) << r.i << "," << r.j;
}

TEST(PeValues, FireXClosedForm) {
  pat_rng rng;
  pat_rng_seed(&rng, 4);
  for (int t = 0; t < 200; ++t) {
    double c = pat_rng_uniform(&rng, -2, 2), L = pat_rng_uniform(&rng, 1, 2000);
    double eps = t % 2 ? 0.0 : 1e-6;
    int64_t pq = pat_rng_int(&rng, 0, 5000), pk = pat_rng_int(&rng, 0, 5000);
    if (c == 0) continue;
    double want = std::log(std::fabs(c) * (double)std::llabs(pq - pk) + 1) /
                  (std::log(std::fabs(c) * std::max(L, (double)pq) + 1) + eps);
    EXPECT_TRUE(RelNear(posattn_pe_fire_x(c, L, eps, pq, pk), want, 1e-14) ||
                std::fabs(posattn_pe_fire_x(c, L, eps, pq, pk) - want) < 1e-300)
        << "c=" << c << " L=" << L << " pq=" << pq << " pk=" << pk;
  }
}

// ---------------------------------------------------------------- xPos (spec 6)
TEST(PeValues, XposZetaAndDecay) {
  posattn_pe pe;
  posattn_pe_init(&pe);
  const posattn_xpos_params &xp = pe.xpos;
  ASSERT_EQ(xp.scale_base, 512);
  ASSERT_EQ(xp.gamma, 0.4);
  // zeta_i = decay at delta = scale_base
  EXPECT_NEAR(posattn_pe_xpos_scale(&xp, 128, 0, 512), 0.285714, 5e-7);
  EXPECT_NEAR(posattn_pe_xpos_scale(&xp, 128, 1, 512), 0.296875, 5e-7);
  EXPECT_NEAR(posattn_pe_xpos_scale(&xp, 128, 31, 512), 0.631696, 5e-7);
  EXPECT_NEAR(posattn_pe_xpos_scale(&xp, 128, 63, 512), 0.988839, 5e-7);
  for (int i = 0; i < 64; ++i)
    EXPECT_TRUE(RelNear(posattn_pe_xpos_scale(&xp, 128, i, 512), (2.0 * i + 0.4 * 128) / (1.4 * 128),
                        1e-14)) << i;
  struct {
    int64_t delta;
    double p0, rel0, p63;
  } rows[] = {{64, 0.85505, 1e-5, 0.998598},
              {512, 0.285714, 2e-6, 0.988839},
              {2048, 6.66e-3, 1e-3, 0.956099},
              {8192, 1.97e-9, 3e-3, 0.835625}};
  for (auto &r : rows) {
    EXPECT_TRUE(RelNear(posattn_pe_xpos_scale(&xp, 128, 0, r.delta), r.p0, r.rel0)) << r.delta;
    EXPECT_NEAR(posattn_pe_xpos_scale(&xp, 128, 63, r.delta), r.p63, 5e-7) << r.delta;
  }
  // over/underflow range quoted in the spec (2 digits): +-4096 gives 4.4e-5 / 2.3e4 at pair 0
  EXPECT_TRUE(RelNear(posattn_pe_xpos_scale(&xp, 128, 0, 4096), 4.4e-5, 0.02));
  EXPECT_TRUE(RelNear(posattn_pe_xpos_scale(&xp, 128, 0, -4096), 2.3e4, 0.025));
  EXPECT_EQ(posattn_pe_xpos_scale(&xp, 128, 5, 0), 1.0);
}

// ---------------------------------------------------------------- KERPLE (spec 8.1)
TEST(PeValues, KerpleLogTable) {
  float a[1] = {1}, p[1] = {1};
  posattn_pe pe;
  posattn_pe_init(&pe);
  pe.kind = POSATTN_PE_KERPLE_LOG;
  pe.kerple.a = a;
  pe.kerple.p = p;
  const int64_t dist[4] = {1, 10, 100, 1000};
  const double want[4] = {-0.693147, -2.397895, -4.615121, -6.908755};
  for (int t = 0; t < 4; ++t) {
    double b = 0;
    ASSERT_EQ(posattn_pe_bias(&pe, 1, 0, 5000 + dist[t], 5000, &b), POSATTN_STATUS_SUCCESS);
    EXPECT_NEAR(b, want[t], 5e-7) << dist[t];
    // symmetric in |pq - pk|
    ASSERT_EQ(posattn_pe_bias(&pe, 1, 0, 5000, 5000 + dist[t], &b), POSATTN_STATUS_SUCCESS);
    EXPECT_NEAR(b, want[t], 5e-7) << -dist[t];
  }
}

// ---------------------------------------------------------------- bias closed forms
class BiasClosedForm : public ::testing::Test {
 protected:
  void SetUp() override {
    pat_rng_seed(&rng_, 77);
    posattn_pe_init(&pe_);
  }
  void RandomPositions(int64_t *pq, int64_t *pk) {
    *pq = pat_rng_int(&rng_, 0, 3000);
    *pk = pat_rng_int(&rng_, 0, 3000);
  }
  pat_rng rng_;
  posattn_pe pe_;
  const int32_t hq_ = 6;
};

TEST_F(BiasClosedForm, AlibiDefaultAndGivenSlopes) {
  std::vector<double> std_slopes(hq_);
  ASSERT_EQ(posattn_pe_alibi_slopes(hq_, std_slopes.data()), POSATTN_STATUS_SUCCESS);
  std::vector<float> given(hq_);
  for (float &s : given) s = (float)pat_rng_uniform(&rng_, 0, 1);
  pe_.kind = POSATTN_PE_ALIBI;
  for (int t = 0; t < 100; ++t) {
    int64_t pq, pk;
    RandomPositions(&pq, &pk);
    int32_t h = t % hq_;
    double b;
    pe_.alibi.slopes = nullptr;
    ASSERT_EQ(posattn_pe_bias(&pe_, hq_, h, pq, pk, &b), POSATTN_STATUS_SUCCESS);
    EXPECT_TRUE(RelNear(b, -std_slopes[h] * (double)std::llabs(pq - pk), 1e-14) || (pq == pk && b == 0));
    pe_.alibi.slopes = given.data();
    ASSERT_EQ(posattn_pe_bias(&pe_, hq_, h, pq, pk, &b), POSATTN_STATUS_SUCCESS);
    EXPECT_TRUE(RelNear(b, -(double)given[h] * (double)std::llabs(pq - pk), 1e-14) || (pq == pk && b == 0));
  }
}

TEST_F(BiasClosedForm, KerpleLogAndPower) {
  std::vector<float> a(hq_), p(hq_);
  for (int h = 0; h < hq_; ++h) {
    a[h] = (float)pat_rng_uniform(&rng_, 0.01, 2);
    p[h] = (float)pat_rng_uniform(&rng_, 0.01, 2);
  }
  pe_.kerple.a = a.data();
  pe_.kerple.p = p.data();
  for (int t = 0; t < 100; ++t) {
    int64_t pq, pk;
    RandomPositions(&pq, &pk);
    if (t == 0) pk = pq;  // distance 0: both kernels give 0 (0^p = 0)
    int32_t h = t % hq_;
    double dist = (double)std::llabs(pq - pk), b = 1;
    pe_.kind = POSATTN_PE_KERPLE_LOG;
    ASSERT_EQ(posattn_pe_bias(&pe_, hq_, h, pq, pk, &b), POSATTN_STATUS_SUCCESS);
    EXPECT_NEAR(b, -(double)p[h] * std::log1p((double)a[h] * dist), 1e-13 * (1 + std::fabs(b)));
    pe_.kind = POSATTN_PE_KERPLE_POWER;
    ASSERT_EQ(posattn_pe_bias(&pe_, hq_, h, pq, pk, &b), POSATTN_STATUS_SUCCESS);
    EXPECT_NEAR(b, -(double)a[h] * std::pow(dist, (double)p[h]), 1e-13 * (1 + std::fabs(b)));
  }
}

TEST_F(BiasClosedForm, T5TableLookup) {
  for (int bidir = 0; bidir <= 1; ++bidir) {
    const int32_t nb = 24, md = 100;
    std::vector<float> table(nb * hq_);
    for (float &v : table) v = (float)pat_rng_uniform(&rng_, -3, 3);
    pe_.kind = POSATTN_PE_T5;
    pe_.t5.num_buckets = nb;
    pe_.t5.max_distance = md;
    pe_.t5.bidirectional = bidir;
    pe_.t5.table = table.data();
    for (int t = 0; t < 100; ++t) {
      int64_t pq, pk;
      RandomPositions(&pq, &pk);
      pk = pq + pat_rng_int(&rng_, -150, 150);
      if (pk < 0) pk = 0;
      int32_t h = t % hq_;
      int32_t bucket = posattn_pe_t5_bucket(pk - pq, bidir, nb, md);
      ASSERT_GE(bucket, 0);
      double b;
      ASSERT_EQ(posattn_pe_bias(&pe_, hq_, h, pq, pk, &b), POSATTN_STATUS_SUCCESS);
      EXPECT_EQ(b, (double)table[bucket * hq_ + h]) << "rel=" << pk - pq << " h=" << h;
    }
  }
}

TEST_F(BiasClosedForm, FireIsMlpOfX) {
  const int32_t w = 16;
  std::vector<float> w1(w), b1(w), w2(hq_ * w), b2(hq_);
  for (float &x : w1) x = (float)pat_rng_uniform(&rng_, -2, 2);
  for (float &x : b1) x = (float)pat_rng_uniform(&rng_, -1, 1);
  for (float &x : w2) x = (float)pat_rng_uniform(&rng_, -1, 1);
  for (float &x : b2) x = (float)pat_rng_uniform(&rng_, -1, 1);
  pe_.kind = POSATTN_PE_FIRE;
  pe_.fire.mlp_width = w;
  pe_.fire.w1 = w1.data();
  pe_.fire.b1 = b1.data();
  pe_.fire.w2 = w2.data();
  pe_.fire.b2 = b2.data();
  pe_.fire.c = 0.3;
  pe_.fire.L = 200;
  pe_.fire.eps = 1e-6;
  for (int t = 0; t < 100; ++t) {
    int64_t pq, pk;
    RandomPositions(&pq, &pk);
    int32_t h = t % hq_;
    double x = posattn_pe_fire_x(0.3, 200, 1e-6, pq, pk);
    double want = b2[h];
    for (int k = 0; k < w; ++k)
      want += (double)w2[h * w + k] * std::max(0.0, (double)w1[k] * x + (double)b1[k]);
    double b;
    ASSERT_EQ(posattn_pe_bias(&pe_, hq_, h, pq, pk, &b), POSATTN_STATUS_SUCCESS);
    EXPECT_NEAR(b, want, 1e-13) << "pq=" << pq << " pk=" << pk << " h=" << h;
  }
}

TEST_F(BiasClosedForm, TransformKindsGiveZero) {
  for (posattn_pe_kind kind : {POSATTN_PE_NONE, POSATTN_PE_ROPE, POSATTN_PE_XPOS}) {
    pe_.kind = kind;
    double b = 1;
    ASSERT_EQ(posattn_pe_bias(&pe_, hq_, 1, 100, 7, &b), POSATTN_STATUS_SUCCESS);
    EXPECT_EQ(b, 0.0) << kind;
  }
}

}  // namespace
