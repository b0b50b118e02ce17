// EXACT angle mode through the kernel: the rotation angle the kernel applies at positions up to
// 1e6 against fp64, per rotary pair. Each varlen sequence holds one query at position P and one key
// at position 0, one-hot on a pair's features; with a single visible key the LSE equals the logit,
// q'.k' = cos(P w_i) (key on the pair's first feature) or sin(P w_i) (second feature), read back
// exactly as fp32. EXACT must stay under 1e-6 rad; FAST is checked to be far off at 1e6, so the
// measurement can tell the two apart.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "pa_test_shim.h"

namespace {

// Largest |angle error| (rad) over all pairs of a d = 128, theta = 1e4 NeoX rotation at position P.
double max_angle_error(posattn_context *ctx, posattn_angle_mode mode, int32_t P) {
  const int d = 128, half = d / 2, nseq = 2 * half;  // per pair: a cos and a sin sequence
  posattn_attention_desc desc;
  posattn_attention_desc_init(&desc);
  desc.batch = nseq; desc.q_heads = 1; desc.kv_heads = 1; desc.head_dim = d;
  desc.q_len = 1; desc.kv_len = 1;
  desc.softmax_scale = 1;
  std::vector<int32_t> cu(nseq + 1), qpos(nseq, P), kpos(nseq, 0);
  for (int i = 0; i <= nseq; ++i) cu[i] = i;
  desc.cu_seqlens_q = cu.data(); desc.cu_seqlens_kv = cu.data();
  desc.q_positions = qpos.data(); desc.kv_positions = kpos.data();
  desc.pe.kind = POSATTN_PE_ROPE;
  desc.pe.rope.angle_mode = mode;
  std::vector<float> q(size_t(nseq) * d, 0.f), k(size_t(nseq) * d, 0.f), v(size_t(nseq) * d, 1.f);
  for (int s = 0; s < nseq; ++s) {
    const int pair = s / 2;
    q[size_t(s) * d + pair] = 1.f;                                     // NeoX pair (i, i + d/2)
    k[size_t(s) * d + (s % 2 ? pair + half : pair)] = 1.f;             // cos or sin partner
  }
  posattn_tensor tq, tk, tv, to;
  std::vector<float> out(size_t(nseq) * d), lse(nseq);
  posattn_tensor_init_contiguous(&tq, q.data(), POSATTN_DTYPE_F32, nseq, 1, d);
  posattn_tensor_init_contiguous(&tk, k.data(), POSATTN_DTYPE_F32, nseq, 1, d);
  posattn_tensor_init_contiguous(&tv, v.data(), POSATTN_DTYPE_F32, nseq, 1, d);
  posattn_tensor_init_contiguous(&to, out.data(), POSATTN_DTYPE_F32, nseq, 1, d);
  size_t ws_bytes = 0;
  EXPECT_EQ(posattn_workspace_size(ctx, &desc, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32, &ws_bytes),
            POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
  pat_buf ws;
  EXPECT_EQ(pat_buf_alloc(&ws, ws_bytes), 0);
  EXPECT_EQ(posattn_forward(ctx, &desc, &tq, &tk, &tv, &to, lse.data(), ws.data, ws_bytes),
            POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
  pat_buf_free(&ws);

  std::vector<double> w(half);
  EXPECT_EQ(posattn_pe_rope_inv_freq(&desc.pe.rope, d, P + 1, w.data(), nullptr, nullptr, 0),
            POSATTN_STATUS_SUCCESS);
  double worst = 0;
  for (int pair = 0; pair < half; ++pair) {
    const double got = std::atan2(double(lse[2 * pair + 1]), double(lse[2 * pair]));
    // exact angle P w, reduced: split P w into the product of a long double
    const double want = double(std::fmod((long double)P * (long double)w[pair], 2.0L * M_PIl));
    double err = std::fabs(std::remainder(got - want, 2.0 * M_PI));
    if (!(err == err)) err = INFINITY;
    worst = std::fmax(worst, err);
  }
  return worst;
}

class PrefillAngles : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_EMU, 0, &ctx_), POSATTN_STATUS_SUCCESS);
  }
  void TearDown() override { posattn_context_destroy(ctx_); }
  posattn_context *ctx_ = nullptr;
};

TEST_F(PrefillAngles, exact_mode_under_1e6_rad_up_to_position_1e6) {
  for (int32_t P : {0, 1, 4095, 4096, 100000, 777777, 999999, 1000000}) {
    const double e = max_angle_error(ctx_, POSATTN_ANGLE_EXACT, P);
    EXPECT_LT(e, 1e-6) << "position " << P;
  }
}

TEST_F(PrefillAngles, fast_mode_is_visibly_off_at_1e6) {
  EXPECT_GT(max_angle_error(ctx_, POSATTN_ANGLE_FAST, 1000000), 1e-4);
  EXPECT_LT(max_angle_error(ctx_, POSATTN_ANGLE_FAST, 10), 1e-5);
}

// The ranges posattn.h and docs/kernels.md state for the two modes (issue 11), measured through
// the kernel at positions 1e3 .. 2^30 - 1 (printed): FAST keeps its error below 1e-3 rad only up
// to ~1e4 and is meaningless (error ~1 rad) from ~1e7 on; EXACT stays below 1e-6 rad to 2^30 - 1.
TEST_F(PrefillAngles, documented_range_of_both_modes) {
  for (int32_t P : {1000, 10000, 100000, 1000000, 10000000, 100000000, (1 << 30) - 1}) {
    const double fast = max_angle_error(ctx_, POSATTN_ANGLE_FAST, P);
    const double exact = max_angle_error(ctx_, POSATTN_ANGLE_EXACT, P);
    std::printf("position %10d  FAST %.2e rad  EXACT %.2e rad\n", P, fast, exact);
    EXPECT_LT(exact, 1e-6) << "position " << P;
    if (P <= 10000) EXPECT_LT(fast, 1e-3) << "position " << P;
    if (P >= 10000000) EXPECT_GT(fast, 0.1) << "position " << P;
  }
}

}  // namespace
