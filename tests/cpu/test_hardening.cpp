// Hardening (issue 11): what hostile or careless input gets from REF and from validation.
//   - the NaN RULE of posattn.h on the REF backend (pa_nan_rule.hpp: poisoned rows all NaN with
//     NaN lse, every other row bit-identical to the clean run), including fp32 overflow of q.k;
//   - the RANGES: parameters whose fp32 form overflows in the kernels are rejected with a message
//     naming the argument and the supported range;
//   - workspace sizes that do not fit in size_t are BAD_SIZE, never a wrapped number;
//   - contract details of the header: device >= 0 on every backend, BAD_SEQLENS for cache_lens,
//     BAD_PE_PARAMS for a NaN sink, the page-capacity limit.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "pa_nan_rule.hpp"
#include "pa_test_shim.h"

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

posattn_attention_desc Desc(int hq, int hkv, int d, int q_len, int kv_len) {
  posattn_attention_desc desc;
  posattn_attention_desc_init(&desc);
  desc.batch = 2;
  desc.q_heads = hq;
  desc.kv_heads = hkv;
  desc.head_dim = d;
  desc.q_len = q_len;
  desc.kv_len = kv_len;
  return desc;
}

class RefHardening : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, &ctx_), POSATTN_STATUS_SUCCESS);
    pat_rng_seed(&rng_, 1111);
  }
  void TearDown() override { posattn_context_destroy(ctx_); }

  // The descriptor is rejected with `want` and a message holding every piece.
  void ExpectRejected(const posattn_attention_desc &desc, posattn_status want,
                      std::initializer_list<const char *> pieces) {
    const posattn_status got = posattn_supported(ctx_, &desc, POSATTN_DTYPE_BF16, POSATTN_DTYPE_F32);
    const std::string msg = posattn_context_last_message(ctx_);
    EXPECT_EQ(got, want) << posattn_status_string(got) << ": " << msg;
    for (const char *piece : pieces)
      EXPECT_NE(msg.find(piece), std::string::npos) << "\"" << msg << "\" lacks \"" << piece << "\"";
  }

  // NaN rule of one poison on REF: some rows poisoned, some not.
  void ExpectRule(const posattn_attention_desc &desc, const pat_poison &pz) {
    pat_inputs in;
    ASSERT_EQ(pat_inputs_random(&in, &desc, POSATTN_DTYPE_BF16, &rng_, 1.0), 0);
    const int64_t n = pat_expect_nan_rule(ctx_, &desc, &in, POSATTN_DTYPE_BF16, pz);
    EXPECT_GT(n, 0);
    EXPECT_LT(n, int64_t(desc.batch) * desc.q_len * desc.q_heads);
    pat_inputs_free(&in);
  }

  posattn_context *ctx_ = nullptr;
  pat_rng rng_;
};

// Before: a NaN logit never won the row max, so a row whose q is NaN returned out 0 and
// lse -inf ("sees no key").
TEST_F(RefHardening, NanQueryPoisonsItsRowOnly) {
  posattn_attention_desc desc = Desc(4, 2, 16, 9, 9);
  desc.causal = 1;
  ExpectRule(desc, {'q', 1, 5, 3, 7, kNaN});
  ExpectRule(desc, {'q', 0, 0, 0, 0, kInf});  // query 0 sees key 0 only
}

// Before: a value +inf of a visible key gave +inf / NaN in one feature and a finite lse.
TEST_F(RefHardening, NonFiniteValuePoisonsTheRowsThatSeeItOnly) {
  posattn_attention_desc desc = Desc(4, 2, 16, 11, 11);
  desc.causal = 1;
  ExpectRule(desc, {'v', 0, 6, 1, 3, kInf});
  ExpectRule(desc, {'k', 1, 2, 0, 15, -kInf});
  desc.causal = 0;
  desc.window_left = 2;
  desc.window_right = 1;
  ExpectRule(desc, {'v', 1, 4, 1, 0, kNaN});
}

// Before: REF kept q.k of bf16 values near 3e19 in fp64 (finite) while the fp32 kernels overflow;
// now REF applies fp32's overflow to q.k and to the scaled logit, and such rows are poisoned.
TEST_F(RefHardening, QkBeyondFp32IsPoisonedAsInTheKernels) {
  posattn_attention_desc desc = Desc(2, 1, 8, 5, 5);
  desc.causal = 1;
  pat_inputs in;
  ASSERT_EQ(pat_inputs_random(&in, &desc, POSATTN_DTYPE_BF16, &rng_, 1.0), 0);
  for (int f = 0; f < 8; ++f) {  // query 3 of batch 1 head 0 and key 2 (kv head 0) at 3e19
    pat_store(in.tq.data, POSATTN_DTYPE_BF16, ((1 * 5 + 3) * 2 + 0) * 8 + f, 3e19);
    pat_store(in.tk.data, POSATTN_DTYPE_BF16, ((1 * 5 + 2) * 1 + 0) * 8 + f, 3e19);
  }
  std::vector<double> out(2 * 5 * 2 * 8), lse(2 * 2 * 5);
  const pat_run run = pat_forward_checked(ctx_, &desc, &in.tq, &in.tk, &in.tv, POSATTN_DTYPE_F32,
                                          out.data(), lse.data());
  ASSERT_EQ(run.status, POSATTN_STATUS_SUCCESS) << run.message;
  // lse [batch][hq][q_len]: only (b 1, h 0, i 3) holds an overflowing logit
  for (int i = 0; i < 5; ++i) EXPECT_EQ(std::isnan(lse[size_t((1 * 2 + 0) * 5 + i)]), i == 3) << i;
  for (int f = 0; f < 8; ++f) EXPECT_TRUE(std::isnan(out[size_t(((1 * 5 + 3) * 2 + 0) * 8 + f)]));
  pat_inputs_free(&in);
}

// Before: each of these was accepted (SUCCESS) and overflowed fp32 in the kernels.
TEST_F(RefHardening, ParametersBeyondTheKernelsFp32RangeAreRejected) {
  posattn_attention_desc desc = Desc(2, 1, 16, 8, 8);
  desc.softmax_scale = 3.4e38f;
  ExpectRejected(desc, POSATTN_STATUS_INVALID_ARGUMENT, {"softmax_scale", "1e30"});
  desc = Desc(2, 1, 16, 8, 8);
  desc.pe.kind = POSATTN_PE_ROPE;
  desc.pe.rope.attention_factor = 1e30;
  ExpectRejected(desc, POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.attention_factor", "<= 16"});
  desc.pe.rope.attention_factor = 0;
  desc.pe.rope.scaling = POSATTN_ROPE_SCALING_LINEAR;
  desc.pe.rope.factor = 1e-300;
  ExpectRejected(desc, POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope", "inverse frequency", "2^20"});
  desc = Desc(2, 1, 16, 8, 8);
  desc.pe.kind = POSATTN_PE_FIRE;
  std::vector<float> w1(32, 0.5f), b1(32, 0.f), w2(64, 0.25f), b2(2, 0.f);
  desc.pe.fire.w1 = w1.data();
  desc.pe.fire.b1 = b1.data();
  desc.pe.fire.w2 = w2.data();
  desc.pe.fire.b2 = b2.data();
  desc.pe.fire.c = 1e-50;
  ExpectRejected(desc, POSATTN_STATUS_BAD_PE_PARAMS, {"pe.fire.c", "2^-64"});
  desc.pe.fire.c = 0.1;
  desc.pe.fire.L = 1e30;
  ExpectRejected(desc, POSATTN_STATUS_BAD_PE_PARAMS, {"pe.fire.L", "2^64"});
  desc = Desc(2, 1, 16, 8, 8);
  desc.pe.kind = POSATTN_PE_XPOS;
  desc.pe.xpos.scale_base = 5e-324;
  ExpectRejected(desc, POSATTN_STATUS_BAD_PE_PARAMS, {"pe.xpos.scale_base", ">= 1"});
  // default parameters, keys 40,000 positions after their query (non-causal)
  desc = Desc(2, 1, 16, 40001, 40001);
  desc.pe.kind = POSATTN_PE_XPOS;
  ExpectRejected(desc, POSATTN_STATUS_BAD_PE_PARAMS, {"pe.xpos", "40000 positions", "2^64"});
  desc.causal = 1;  // keys never follow their query: the weights stay <= 1
  EXPECT_EQ(posattn_supported(ctx_, &desc, POSATTN_DTYPE_BF16, POSATTN_DTYPE_F32),
            POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(ctx_);
}

// Found by fuzz_forward (tests/fuzz/regressions/forward/issue11-fuzz-fire-tiny-L): before, FIRE
// with |c| L = 3e-5 x 1.8e-312 was accepted; the kernels' fp32 normaliser log1p(|c| max(L, pq))
// is 0 for a query at position 0 (L is 0 in fp32), so EMU poisoned rows REF answered finite.
TEST_F(RefHardening, FireNormaliserBelowTheKernelsRangeIsRejected) {
  posattn_attention_desc desc = Desc(2, 1, 16, 8, 8);
  desc.pe.kind = POSATTN_PE_FIRE;
  std::vector<float> w1(32, 0.5f), b1(32, 0.f), w2(64, 0.25f), b2(2, 0.f);
  desc.pe.fire.w1 = w1.data();
  desc.pe.fire.b1 = b1.data();
  desc.pe.fire.w2 = w2.data();
  desc.pe.fire.b2 = b2.data();
  desc.pe.fire.c = 3e-5;
  desc.pe.fire.L = 1.8e-312;
  desc.pe.fire.eps = 0;
  ExpectRejected(desc, POSATTN_STATUS_BAD_PE_PARAMS, {"pe.fire.c", "pe.fire.L", "|c| * L", "2^-64"});
  desc.pe.fire.L = std::ldexp(1.0, -64) / 3e-5 * (1 + 1e-15);  // just inside: accepted
  EXPECT_EQ(posattn_supported(ctx_, &desc, POSATTN_DTYPE_BF16, POSATTN_DTYPE_F32),
            POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(ctx_);
}

// Found by fuzz_forward (regressions/forward/issue11-fuzz-huge-bias): before, a bias beyond
// FLT_MAX stayed finite in REF's fp64 (a finite or +inf LSE) while the kernels' fp32 bias
// overflows and poisons the row. ALiBi slope 1e38, causal, default positions: the bias of key j
// for query i is -1e38 (i - j), beyond -FLT_MAX (3.40e38) from distance 4 on, so rows 0..3 see
// finite logits only and rows 4.. are poisoned, on REF and EMU alike.
TEST(BiasRange, BiasBeyondFp32PoisonsTheRowOnEveryBackend) {
  for (posattn_backend be : {POSATTN_BACKEND_REF, POSATTN_BACKEND_EMU}) {
    if (posattn_backend_available(be, nullptr, 0) != POSATTN_STATUS_SUCCESS) continue;
    posattn_context *ctx = nullptr;
    ASSERT_EQ(posattn_context_create(be, 0, &ctx), POSATTN_STATUS_SUCCESS);
    posattn_attention_desc desc = Desc(2, 1, 16, 7, 7);
    desc.causal = 1;
    desc.pe.kind = POSATTN_PE_ALIBI;
    std::vector<float> slopes(2, 1e38f);
    desc.pe.alibi.slopes = slopes.data();
    pat_rng rng;
    pat_rng_seed(&rng, 77);
    pat_inputs in;
    ASSERT_EQ(pat_inputs_random(&in, &desc, POSATTN_DTYPE_F32, &rng, 1.0), 0);
    std::vector<double> out(2 * 7 * 2 * 16), lse(2 * 2 * 7);
    const pat_run run = pat_forward_checked(ctx, &desc, &in.tq, &in.tk, &in.tv, POSATTN_DTYPE_F32,
                                            out.data(), lse.data());
    ASSERT_EQ(run.status, POSATTN_STATUS_SUCCESS) << run.message;
    for (int b = 0; b < 2; ++b)
      for (int h = 0; h < 2; ++h)
        for (int i = 0; i < 7; ++i) {
          const double l = lse[size_t((b * 2 + h) * 7 + i)];
          EXPECT_EQ(std::isnan(l), i >= 4) << posattn_backend_string(be) << " b " << b << " h " << h
                                           << " row " << i << ": lse " << l;
          if (i < 4) {
            EXPECT_TRUE(std::isfinite(l)) << posattn_backend_string(be) << " row " << i;
          }
          for (int f = 0; f < 16; ++f)
            EXPECT_EQ(std::isnan(out[size_t(((b * 7 + i) * 2 + h) * 16 + f)]), i >= 4);
        }
    pat_inputs_free(&in);
    posattn_context_destroy(ctx);
  }
}

// Found by fuzz_pe (regressions/pe/issue11-fuzz-dynamic-ntk-huge-factor): before, DYNAMIC_NTK
// with factor 1.4e248 gave a NaN table with SUCCESS (factor * L / orig - (factor - 1) cancels),
// and outside the kernels' range the fp64 helpers answered SUCCESS with inf (LINEAR factor
// 1e-300: inv_freq 1e300; rope_apply then inf). They now refuse what forward refuses, through
// the same check.
TEST(PeHelpers, RefuseWhatForwardRefuses) {
  posattn_pe pe;
  posattn_pe_init(&pe);
  posattn_rope_params rope = pe.rope;
  std::vector<double> inv(32), x(64, 0.5), y(64);
  double af = 0;
  char why[256] = "";
  rope.scaling = POSATTN_ROPE_SCALING_DYNAMIC_NTK;
  rope.factor = 1.4e248;
  EXPECT_EQ(posattn_pe_rope_inv_freq(&rope, 64, 10000, inv.data(), &af, why, sizeof why),
            POSATTN_STATUS_BAD_PE_PARAMS);
  EXPECT_NE(std::string(why).find("rope.factor"), std::string::npos) << why;
  EXPECT_NE(std::string(why).find("2^20"), std::string::npos) << why;
  rope.factor = 0x1p20;  // the largest accepted: a finite table at any length
  ASSERT_EQ(posattn_pe_rope_inv_freq(&rope, 64, 1 << 30, inv.data(), &af, why, sizeof why),
            POSATTN_STATUS_SUCCESS) << why;
  for (double f : inv) EXPECT_TRUE(std::isfinite(f) && f >= 0) << f;
  rope.scaling = POSATTN_ROPE_SCALING_LINEAR;
  rope.factor = 1e-300;
  why[0] = 0;
  EXPECT_EQ(posattn_pe_rope_inv_freq(&rope, 64, 1, inv.data(), &af, why, sizeof why),
            POSATTN_STATUS_BAD_PE_PARAMS);
  EXPECT_NE(std::string(why).find("inverse frequency"), std::string::npos) << why;
  EXPECT_EQ(posattn_pe_rope_apply(&rope, 64, 1, 15000000, x.data(), y.data()),
            POSATTN_STATUS_BAD_PE_PARAMS);
  rope.scaling = POSATTN_ROPE_SCALING_NONE;
  rope.attention_factor = 1e30;
  EXPECT_EQ(posattn_pe_rope_apply(&rope, 64, 1, 3, x.data(), y.data()),
            POSATTN_STATUS_BAD_PE_PARAMS);
  posattn_xpos_params xp{0.5, 0.4};  // scale_base < 1: forward refuses it
  EXPECT_TRUE(std::isnan(posattn_pe_xpos_scale(&xp, 64, 3, 100)));
  xp.scale_base = 512;
  EXPECT_GT(posattn_pe_xpos_scale(&xp, 64, 3, 100), 0);
}

// Before: the REF and EMU workspace sizes wrapped around in size_t and answered SUCCESS.
TEST(WorkspaceSize, ShapesBeyondSizeTAreBadSize) {
  for (posattn_backend be : {POSATTN_BACKEND_REF, POSATTN_BACKEND_EMU}) {
    if (posattn_backend_available(be, nullptr, 0) != POSATTN_STATUS_SUCCESS) continue;
    posattn_context *ctx = nullptr;
    ASSERT_EQ(posattn_context_create(be, 0, &ctx), POSATTN_STATUS_SUCCESS);
    posattn_attention_desc desc;
    posattn_attention_desc_init(&desc);
    desc.batch = 1;
    desc.kv_heads = 1;
    desc.q_heads = desc.q_len = INT32_MAX;
    desc.kv_len = INT32_MAX;
    desc.head_dim = be == POSATTN_BACKEND_REF ? INT32_MAX - 1 : 64;
    size_t bytes = 7;
    EXPECT_EQ(posattn_workspace_size(ctx, &desc, POSATTN_DTYPE_BF16, POSATTN_DTYPE_F32, &bytes),
              POSATTN_STATUS_BAD_SIZE)
        << posattn_backend_string(be) << ": " << bytes << " bytes, "
        << posattn_context_last_message(ctx);
    EXPECT_NE(std::string(posattn_context_last_message(ctx)).find("size_t"), std::string::npos);
    posattn_context_destroy(ctx);
  }
}

// Before: REF, EMU and AUTO accepted device -1 although the header required >= 0.
TEST(ContextContract, NegativeDeviceIsInvalidOnEveryBackend) {
  for (posattn_backend be : {POSATTN_BACKEND_AUTO, POSATTN_BACKEND_REF, POSATTN_BACKEND_EMU,
                             POSATTN_BACKEND_CUDA}) {
    posattn_context *ctx = reinterpret_cast<posattn_context *>(&be);  // must be overwritten
    EXPECT_EQ(posattn_context_create(be, -1, &ctx), POSATTN_STATUS_INVALID_ARGUMENT)
        << posattn_backend_string(be);
    EXPECT_EQ(ctx, nullptr);
  }
}

// The statuses posattn.h now documents for decode: BAD_SEQLENS for cache_lens, BAD_PE_PARAMS
// for a NaN sink, BAD_SIZE past max_pages_per_seq * page_size >= 2^31.
TEST(DecodeContract, DocumentedStatuses) {
  posattn_context *ctx = nullptr;
  ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, &ctx), POSATTN_STATUS_SUCCESS);
  posattn_kv_cache cache;
  posattn_kv_cache_init(&cache, nullptr, nullptr, POSATTN_DTYPE_BF16, 4, 16, 1, 8);
  std::vector<int32_t> lens{-1}, table{0, 1, 2, 3};
  std::vector<float> sink{std::numeric_limits<float>::quiet_NaN()};
  posattn_decode_desc desc;
  posattn_decode_desc_init(&desc);
  desc.batch = 1;
  desc.q_heads = 1;
  desc.head_dim = 8;
  desc.num_q_tokens = 1;
  desc.cache_lens = lens.data();
  desc.block_table = table.data();
  desc.max_pages_per_seq = 4;
  auto status = [&]() {
    return posattn_decode_supported(ctx, &desc, &cache, POSATTN_DTYPE_BF16, POSATTN_DTYPE_F32);
  };
  EXPECT_EQ(status(), POSATTN_STATUS_BAD_SEQLENS);
  lens[0] = 5;
  desc.sink_logits = sink.data();
  EXPECT_EQ(status(), POSATTN_STATUS_BAD_PE_PARAMS);
  desc.sink_logits = nullptr;
  EXPECT_EQ(status(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
  desc.max_pages_per_seq = INT32_MAX / 8;  // x 16 slots > 2^31
  EXPECT_EQ(status(), POSATTN_STATUS_BAD_SIZE);
  EXPECT_NE(std::string(posattn_context_last_message(ctx)).find("2^31"), std::string::npos);
  posattn_context_destroy(ctx);
}

}  // namespace
