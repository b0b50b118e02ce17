// Hardening of the prefill kernels on EMU (issue 11), on both kernels: the SIMT kernel (f32
// inputs) and the tensor-core kernel (bf16, head dim 64):
//   - windows up to INT32_MAX mean "unbounded" and give REF's answer (before: int32 wrap, every
//     row 0 / -inf);
//   - the NaN RULE of posattn.h (pa_nan_rule.hpp): a NaN / inf in q, k or v poisons exactly the
//     rows that see it, whatever the mask (causal, window, documents), and leaves every other row
//     bit-identical (before: on the tensor-core kernel 0 * NaN in P V leaked to rows that cannot
//     see the key; a NaN q row returned 0 / -inf);
//   - q.k beyond fp32: EMU and REF poison the same rows.
// Small shapes: the emulator runs every thread on the CPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "pa_nan_rule.hpp"
#include "pa_test_check.hpp"
#include "pa_test_shim.h"

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// f32 inputs run the SIMT kernel, bf16 at head dim 64 the tensor-core kernel.
const posattn_dtype kKernels[] = {POSATTN_DTYPE_F32, POSATTN_DTYPE_BF16};

class PrefillHardening : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_EMU, 0, &emu_), POSATTN_STATUS_SUCCESS);
    ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, &ref_), POSATTN_STATUS_SUCCESS);
    pat_rng_seed(&rng_, 4242);
  }
  void TearDown() override {
    posattn_context_destroy(emu_);
    posattn_context_destroy(ref_);
  }
  static posattn_attention_desc Desc(int s) {
    posattn_attention_desc d;
    posattn_attention_desc_init(&d);
    d.batch = 2;
    d.q_heads = 2;
    d.kv_heads = 1;
    d.head_dim = 64;
    d.q_len = d.kv_len = s;
    return d;
  }
  // desc on REF (c = 0) and EMU (c = 1), fp32 out and lse of Desc's shape (batch 2, 2 q heads)
  void RunBoth(const posattn_attention_desc &desc, pat_inputs *in, std::vector<double> out[2],
               std::vector<double> lse[2]) {
    posattn_context *ctx[2] = {ref_, emu_};
    for (int c = 0; c < 2; ++c) {
      out[c].assign(size_t(2 * desc.q_len * 2 * 64), 0.0);
      lse[c].assign(size_t(2 * 2 * desc.q_len), 0.0);
      const pat_run run = pat_forward_checked(ctx[c], &desc, &in->tq, &in->tk, &in->tv,
                                              POSATTN_DTYPE_F32, out[c].data(), lse[c].data());
      ASSERT_EQ(run.status, POSATTN_STATUS_SUCCESS) << run.message;
      EXPECT_TRUE(run.guards_ok);
    }
  }
  posattn_context *emu_ = nullptr, *ref_ = nullptr;
  pat_rng rng_;
};

TEST_F(PrefillHardening, WindowsUpToInt32MaxAreUnbounded) {
  for (posattn_dtype dt : kKernels)
    for (int causal : {0, 1}) {
      posattn_attention_desc desc = Desc(37);
      desc.kv_len = 45;  // i' = i + 8
      desc.causal = causal;
      desc.window_left = INT32_MAX;
      desc.window_right = causal ? -1 : INT32_MAX;
      SCOPED_TRACE(std::string(posattn_dtype_string(dt)) + (causal ? " causal" : " both sides"));
      pat_inputs in;
      ASSERT_EQ(pat_inputs_random(&in, &desc, dt, &rng_, 1.0), 0);
      pat_checked r;
      pat_check_forward(emu_, ref_, &desc, &in, dt, POSATTN_DTYPE_F32, &r);
      pat_expect_lse_rule(r, dt);
      pat_inputs_free(&in);
    }
}

TEST_F(PrefillHardening, NonFiniteInputsPoisonOnlyTheRowsThatSeeThem) {
  enum { kCausal, kWindow, kDocs };
  std::vector<int32_t> docs(2 * 40);
  for (int b = 0; b < 2; ++b)
    for (int t = 0; t < 40; ++t) docs[size_t(b * 40 + t)] = t < 13 ? 0 : t < 29 ? 1 : 2;
  const pat_poison poisons[] = {
      {'v', 0, 17, 0, 5, kNaN},  // a key in the middle of the tile (future key of earlier rows)
      {'v', 1, 20, 0, 63, kInf},
      {'k', 1, 9, 0, 0, kNaN},
      {'q', 0, 30, 1, 2, -kInf},
  };
  for (posattn_dtype dt : kKernels)
    for (int mask : {kCausal, kWindow, kDocs}) {
      posattn_attention_desc desc = Desc(40);
      desc.causal = mask != kWindow;
      if (mask == kWindow) {
        desc.window_left = 3;
        desc.window_right = 2;
      }
      if (mask == kDocs) {
        desc.doc_ids = docs.data();
        desc.num_anchor_tokens = 2;
      }
      SCOPED_TRACE(std::string(posattn_dtype_string(dt)) + " mask " + std::to_string(mask));
      pat_inputs in;
      ASSERT_EQ(pat_inputs_random(&in, &desc, dt, &rng_, 1.0), 0);
      for (const pat_poison &pz : poisons) {
        const int64_t n = pat_expect_nan_rule(emu_, &desc, &in, dt, pz);
        EXPECT_GT(n, 0);
        EXPECT_LT(n, 2 * 40 * 2);
      }
      pat_inputs_free(&in);
    }
}

// Before: EMU answered NaN out with lse -inf for the overflowing row; REF a finite row.
TEST_F(PrefillHardening, QkBeyondFp32PoisonsTheSameRowsAsRef) {
  for (posattn_dtype dt : kKernels) {
    posattn_attention_desc desc = Desc(24);
    desc.causal = 1;
    pat_inputs in;
    ASSERT_EQ(pat_inputs_random(&in, &desc, dt, &rng_, 1.0), 0);
    for (int f = 0; f < 64; ++f) {  // query 11 (b 1, head 1) and key 6 (b 1, kv head 0) at 3e19
      pat_store(in.tq.data, dt, ((1 * 24 + 11) * 2 + 1) * 64 + f, 3e19);
      pat_store(in.tk.data, dt, ((1 * 24 + 6) * 1 + 0) * 64 + f, 3e19);
    }
    std::vector<double> out[2], lse[2];
    RunBoth(desc, &in, out, lse);
    ASSERT_FALSE(HasFatalFailure());
    for (size_t l = 0; l < lse[0].size(); ++l) {
      EXPECT_EQ(std::isnan(lse[0][l]), l == size_t((1 * 2 + 1) * 24 + 11)) << "REF lse " << l;
      EXPECT_EQ(std::isnan(lse[1][l]), std::isnan(lse[0][l])) << posattn_dtype_string(dt) << " lse " << l;
    }
    for (size_t e = 0; e < out[0].size(); ++e)
      EXPECT_EQ(std::isnan(out[1][e]), std::isnan(out[0][e])) << posattn_dtype_string(dt) << " out " << e;
    pat_inputs_free(&in);
  }
}

// The row minimum of the tensor-core kernel (mma.cuh, "Logit units") at work: a visible logit at
// -inf looks like a masked one, and only the minimum tells them apart.
//   - Query (b 1, head 1, row 100) against key (b 1, kv head 0, key 6): q.k = -64 * 2^28, finite,
//     whose scaled logit leaves fp32 (-inf) at softmax_scale 1e29 only (scale log2 e > 1).
//   - At the other scales, query (b 0, head 0, row 50) against key (b 0, kv head 0, key 70):
//     q.k = -64 * 9e38 is -inf in fp32 itself; that row is poisoned unless causal hides key 70.
// Causal: the keys lie on the block's masked diagonal tile; not causal: on wholly visible tiles.
TEST_F(PrefillHardening, ScaledLogitBeyondFp32PoisonsItsRowAtEveryScale) {
  for (posattn_dtype dt : kKernels)
    for (int causal : {0, 1})
      for (float scale : {0.f, 1.f, 1e29f}) {
        SCOPED_TRACE(std::string(posattn_dtype_string(dt)) + " causal " + std::to_string(causal) +
                     " scale " + std::to_string(double(scale)));
        posattn_attention_desc desc = Desc(128);
        desc.causal = causal;
        desc.softmax_scale = scale;
        pat_inputs in;
        ASSERT_EQ(pat_inputs_random(&in, &desc, dt, &rng_, 1.0), 0);
        for (int f = 0; f < 64; ++f) {
          pat_store(in.tq.data, dt, ((1 * 128 + 100) * 2 + 1) * 64 + f, 16384.0);
          pat_store(in.tk.data, dt, ((1 * 128 + 6) * 1 + 0) * 64 + f, -16384.0);
          if (scale < 1e29f) {
            pat_store(in.tq.data, dt, ((0 * 128 + 50) * 2 + 0) * 64 + f, 3e19);
            pat_store(in.tk.data, dt, ((0 * 128 + 70) * 1 + 0) * 64 + f, -3e19);
          }
        }
        std::vector<double> out[2], lse[2];
        RunBoth(desc, &in, out, lse);
        ASSERT_FALSE(HasFatalFailure());
        const size_t bad = scale == 1e29f ? (1 * 2 + 1) * 128 + 100 : causal ? ~size_t(0) : 50;
        double worst = 0;
        for (size_t l = 0; l < lse[0].size(); ++l) {
          EXPECT_EQ(std::isnan(lse[0][l]), l == bad) << "REF lse " << l;
          EXPECT_EQ(std::isnan(lse[1][l]), std::isnan(lse[0][l])) << "EMU lse " << l;
          if (scale < 1e29f && !std::isnan(lse[1][l]))
            worst = std::max(worst, std::fabs(lse[1][l] - lse[0][l]) / (1 + std::fabs(lse[0][l])));
        }
        for (size_t e = 0; e < out[0].size(); ++e)
          EXPECT_EQ(std::isnan(out[1][e]), std::isnan(out[0][e])) << "out " << e;
        // bf16 inputs, fp32 logits: the relative LSE error stays far below the 2^14-scale logits
        EXPECT_LT(worst, 1e-2);
        pat_inputs_free(&in);
      }
}

}  // namespace
