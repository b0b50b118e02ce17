// Per-head sink logits in prefill (posattn_attention_desc.sink_logits, issue 13 item 5) on EMU,
// against REF with the DESIGN.md section 5 rule, on both prefill kernels: the SIMT kernel (f32
// inputs, or a head dim the tensor-core kernel has no instance for) and the tensor-core kernel
// (bf16/f16 at head dims 64 and 128). The kernel each case runs is asked from the chooser; a
// build that pruned the tensor-core instance skips that case.
// The sink is one more softmax term e^sink without a value, added in the epilogue only:
//   - random sinks near the logits: dense and varlen, causal / non-causal / window, GQA, ALiBi;
//   - rows that see no key (causal, q_len > kv_len): out 0 and lse = sink exactly;
//   - a sink far above every logit (80, 1e30, 3e38): out ~ 0 (exactly 0 from 1e30), lse ~ sink;
//   - a sink of -3e38 (e^sink = 0 in fp32) leaves out and lse bit-identical to no sink;
//   - the NaN RULE with sinks (pa_nan_rule.hpp): a poisoned row stays NaN, others untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "pa_drift_shim.h"
#include "pa_nan_rule.hpp"
#include "pa_test_check.hpp"
#include "pa_test_shim.h"

namespace {

constexpr posattn_dtype BF16 = POSATTN_DTYPE_BF16, F16 = POSATTN_DTYPE_F16, F32 = POSATTN_DTYPE_F32;

struct Case {
  const char *name;
  const char *kernel;  // "simt" or "mma": the kernel the chooser must pick
  posattn_dtype in, out;
  int batch, hq, hkv, d, q_len, kv_len;
  std::vector<int32_t> cu;  // varlen self-attention offsets when not empty
  int causal = 0, wl = -1, wr = -1;
  posattn_pe_kind pe = POSATTN_PE_NONE;
};

class PrefillSinks : public pat_emu_ref_test {
 protected:
  // desc for c (sinks not set)
  static posattn_attention_desc Desc(const Case &c) {
    posattn_attention_desc desc;
    posattn_attention_desc_init(&desc);
    desc.batch = c.batch; desc.q_heads = c.hq; desc.kv_heads = c.hkv; desc.head_dim = c.d;
    desc.q_len = c.q_len; desc.kv_len = c.kv_len;
    desc.causal = c.causal; desc.window_left = c.wl; desc.window_right = c.wr;
    if (!c.cu.empty()) {
      desc.cu_seqlens_q = c.cu.data();
      desc.cu_seqlens_kv = c.cu.data();
    }
    desc.pe.kind = c.pe;
    return desc;
  }
  // False (and a skip) when the chooser would not run c on c.kernel.
  bool runs_on_kernel(const Case &c, const posattn_attention_desc &desc) {
    char msg[256];
    const char *k = pa_drift_shim_prefill_kernel(&desc, c.in, c.out, msg, sizeof msg);
    EXPECT_NE(k, nullptr) << msg;
    if (k == nullptr) return false;
    if (std::string(c.kernel) == "simt") {
      EXPECT_STREQ(k, "simt");
    }
    return std::string(k) == c.kernel;
  }
  // Section 5 rule on out and lse against REF; rows REF says see no key get out 0 and lse equal
  // to their sink exactly. Returns those rows.
  int64_t check(const Case &c, const posattn_attention_desc &desc, uint64_t seed) {
    pat_rng rng;
    pat_rng_seed(&rng, seed);
    pat_inputs in;
    EXPECT_EQ(pat_inputs_random(&in, &desc, c.in, &rng, 1.0), 0);
    pat_checked r;
    pat_check_forward(emu_, ref_, &desc, &in, c.in, c.out, &r);
    pat_inputs_free(&in);
    if (HasFailure()) return 0;
    pat_expect_lse_rule(r, c.in);
    int64_t empty = 0;
    const int64_t nrows = int64_t(r.lse.size()), qrows = pat_q_rows(&desc);
    for (int64_t l = 0; l < nrows; ++l) {
      // lse index -> head: dense [batch][hq][q_len], varlen [hq][total_q]
      const int h = desc.cu_seqlens_q ? int(l / qrows) : int((l / desc.q_len) % desc.q_heads);
      const double sink = desc.sink_logits[h];
      EXPECT_GE(r.gold_lse[size_t(l)], sink) << "REF lse row " << l << " below its sink";
      if (r.gold_lse[size_t(l)] != sink) continue;  // only rows that see no key (or all e^s ~ 0)
      ++empty;
      EXPECT_EQ(r.lse[size_t(l)], sink) << "lse row " << l;
    }
    return empty;
  }
};

std::vector<float> random_sinks(int hq, uint64_t seed, double lo, double hi) {
  pat_rng rng;
  pat_rng_seed(&rng, seed);
  std::vector<float> s;
  for (int h = 0; h < hq; ++h) s.push_back(float(pat_rng_uniform(&rng, lo, hi)));
  return s;
}

// Cases of both kernels: random sinks in [-1, 3] (the logits of uniform [-1, 1] inputs are a few
// units at most, so the sink takes a visible share of every row).
const Case kCases[] = {
    // SIMT: f32 inputs, and bf16/f16 at head dims without a tensor-core instance
    {"simt f32 dense causal gqa", "simt", F32, F32, 2, 4, 2, 64, 37, 37, {}, 1},
    {"simt bf16 hd48 q>kv causal", "simt", BF16, BF16, 1, 2, 1, 48, 40, 23, {}, 1},
    {"simt f16 hd32 varlen window", "simt", F16, F16, 2, 2, 2, 32, 45, 45, {0, 13, 45}, 0, 5, 3},
    {"simt f32 noncausal alibi", "simt", F32, BF16, 1, 3, 1, 64, 20, 33, {}, 0, -1, -1,
     POSATTN_PE_ALIBI},
    // tensor cores: bf16/f16 at head dims 64 and 128
    {"mma bf16 hd64 q>kv causal gqa alibi", "mma", BF16, BF16, 2, 4, 2, 64, 150, 70, {}, 1, -1, -1,
     POSATTN_PE_ALIBI},
    {"mma f16 hd64 noncausal window", "mma", F16, F32, 1, 2, 1, 64, 97, 97, {}, 0, 20, 10},
    {"mma f16 hd128 varlen causal", "mma", F16, F16, 2, 2, 2, 128, 97, 97, {0, 17, 97}, 1},
    {"mma bf16 hd128 noncausal mqa", "mma", BF16, F16, 1, 3, 1, 128, 70, 140},
};

TEST_F(PrefillSinks, MatchRefOnBothKernels) {
  uint64_t seed = 1;
  for (const Case &c : kCases) {
    SCOPED_TRACE(c.name);
    posattn_attention_desc desc = Desc(c);
    const std::vector<float> sinks = random_sinks(c.hq, 100 + seed, -1.0, 3.0);
    desc.sink_logits = sinks.data();
    if (!runs_on_kernel(c, desc)) {
      std::printf("  [ note ] %s: the tensor-core instance is pruned from this build\n", c.name);
      continue;
    }
    const int64_t empty = check(c, desc, seed++);
    if (c.causal && c.q_len > c.kv_len) {
      EXPECT_GT(empty, 0) << "the case meant to have empty rows";
    }
  }
}

// A sink far above every logit takes the whole row: out ~ e^(s - sink) v, lse ~ sink. At 80 the
// weights are ~e^-80 (still normal fp32 numbers, so REF and the kernels agree under the rule); at
// 1e30 and 3e38 (where sink * log2(e) is beyond fp32) they are 0: out exactly 0, lse the sink.
TEST_F(PrefillSinks, SinkFarAboveEveryLogitTakesTheRow) {
  const Case cases[] = {
      {"simt f32", "simt", F32, F32, 1, 2, 1, 64, 33, 33, {}, 1},
      {"mma bf16 hd64", "mma", BF16, F32, 1, 2, 1, 64, 70, 70, {}, 1},
  };
  for (const Case &c : cases)
    for (float big : {80.f, 1e30f, 3e38f}) {
      SCOPED_TRACE(std::string(c.name) + " sink " + std::to_string(big));
      posattn_attention_desc desc = Desc(c);
      const std::vector<float> sinks(size_t(c.hq), big);
      desc.sink_logits = sinks.data();
      if (!runs_on_kernel(c, desc)) continue;
      const int64_t n = pat_q_rows(&desc) * c.hq;
      std::vector<double> out(size_t(n * c.d)), lse(static_cast<size_t>(n));
      pat_rng rng;
      pat_rng_seed(&rng, 7);
      pat_inputs in;
      ASSERT_EQ(pat_inputs_random(&in, &desc, c.in, &rng, 1.0), 0);
      const pat_run run = pat_forward_checked(emu_, &desc, &in.tq, &in.tk, &in.tv, c.out,
                                              out.data(), lse.data());
      ASSERT_EQ(run.status, POSATTN_STATUS_SUCCESS) << run.message;
      double worst = 0;
      for (double x : out) worst = std::fmax(worst, std::fabs(x));
      EXPECT_LT(worst, big > 100 ? 1e-300 : 1e-30);  // 0 at 1e30; ~e^-80 (~1.8e-35) at 80
      for (double l : lse) EXPECT_NEAR(l, big, big > 100 ? 0.0 : 1e-5);
      if (big < 100) {  // and the rule against REF holds at 80
        pat_checked r;
        pat_check_forward(emu_, ref_, &desc, &in, c.in, c.out, &r);
      }
      pat_inputs_free(&in);
    }
}

// e^(-3e38) is 0 in fp32: the sink must change nothing, bit for bit (the sink enters only the
// final normalisation; every row here sees a key).
TEST_F(PrefillSinks, NegligibleSinkIsBitIdenticalToNoSink) {
  const Case cases[] = {
      {"simt f32 window", "simt", F32, F32, 2, 2, 1, 64, 41, 41, {}, 0, 6, 6},
      {"mma bf16 hd64 causal", "mma", BF16, BF16, 1, 2, 2, 64, 150, 150, {}, 1},
      {"mma f16 hd128 varlen", "mma", F16, F16, 2, 2, 1, 128, 97, 97, {0, 40, 97}, 1},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.name);
    posattn_attention_desc desc = Desc(c);
    const std::vector<float> sinks(size_t(c.hq), -3e38f);
    if (!runs_on_kernel(c, desc)) continue;
    const int64_t n = pat_q_rows(&desc) * c.hq;
    std::vector<double> out0(size_t(n * c.d)), lse0(static_cast<size_t>(n)), out1(out0), lse1(lse0);
    pat_rng rng;
    pat_rng_seed(&rng, 11);
    pat_inputs in;
    ASSERT_EQ(pat_inputs_random(&in, &desc, c.in, &rng, 1.0), 0);
    pat_run run = pat_forward_checked(emu_, &desc, &in.tq, &in.tk, &in.tv, c.out, out0.data(),
                                      lse0.data());
    ASSERT_EQ(run.status, POSATTN_STATUS_SUCCESS) << run.message;
    desc.sink_logits = sinks.data();
    run = pat_forward_checked(emu_, &desc, &in.tq, &in.tk, &in.tv, c.out, out1.data(), lse1.data());
    ASSERT_EQ(run.status, POSATTN_STATUS_SUCCESS) << run.message;
    int64_t diff = 0;
    for (size_t e = 0; e < out0.size(); ++e) diff += out0[e] != out1[e];
    for (size_t e = 0; e < lse0.size(); ++e) diff += lse0[e] != lse1[e];
    EXPECT_EQ(diff, 0);
    pat_inputs_free(&in);
  }
}

// The NaN RULE with sinks: poisoned rows are NaN (out and lse), every other row equals the clean
// run bit for bit; on REF too (the same helper).
TEST_F(PrefillSinks, NanRuleHoldsWithSinks) {
  const double kNaN = std::numeric_limits<double>::quiet_NaN();
  const double kInf = std::numeric_limits<double>::infinity();
  const pat_poison poisons[] = {
      {'v', 0, 17, 0, 5, kNaN},
      {'k', 1, 9, 0, 0, kInf},
      {'q', 0, 30, 1, 2, kNaN},
  };
  const Case cases[] = {
      {"simt f32 causal", "simt", F32, F32, 2, 2, 1, 64, 40, 40, {}, 1},
      {"mma bf16 hd64 window", "mma", BF16, F32, 2, 2, 1, 64, 40, 40, {}, 0, 3, 2},
  };
  const std::vector<float> sinks = {0.5f, 2.0f};
  for (const Case &c : cases) {
    SCOPED_TRACE(c.name);
    posattn_attention_desc desc = Desc(c);
    desc.sink_logits = sinks.data();
    if (!runs_on_kernel(c, desc)) continue;
    pat_rng rng;
    pat_rng_seed(&rng, 23);
    pat_inputs in;
    ASSERT_EQ(pat_inputs_random(&in, &desc, c.in, &rng, 1.0), 0);
    for (const pat_poison &pz : poisons)
      for (posattn_context *ctx : {emu_, ref_}) {
        const int64_t n = pat_expect_nan_rule(ctx, &desc, &in, c.in, pz);
        EXPECT_GT(n, 0);
        EXPECT_LT(n, int64_t(c.batch) * c.q_len * c.hq);
      }
    pat_inputs_free(&in);
  }
}

}  // namespace
