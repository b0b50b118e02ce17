// FIRE with keys far after their query on the prefill kernels (EMU, or CUDA with
// POSATTN_TEST_BACKEND=cuda once the grid's device staging exists): non-causal attention where
// x = psi(|pq-pk|)/psi(max(L,pq)) reaches ~8, across kinks past 1, against the fp64 reference
// (the test shim's naive attention, FIRE through the MLP) with the DESIGN.md section 5 rule.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "pa_test_check.hpp"
#include "pa_test_shim.h"

namespace {

struct Case {
  const char *name;
  posattn_dtype dt;
  int d;
  bool explicit_positions;  // else default positions with q_len > kv_len (negative pq)
};

posattn_backend test_backend() {
  const char *e = std::getenv("POSATTN_TEST_BACKEND");
  return e && std::strcmp(e, "cuda") == 0 ? POSATTN_BACKEND_CUDA : POSATTN_BACKEND_EMU;
}

class PrefillFireRange : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const posattn_backend be = test_backend();
    char why[256];
    if (posattn_backend_available(be, why, sizeof why) != POSATTN_STATUS_SUCCESS)
      GTEST_SKIP() << posattn_backend_string(be) << " backend unavailable: " << why;
    if (be == POSATTN_BACKEND_CUDA)
      GTEST_SKIP() << "tensors are staged in host memory; device buffers are not written yet";
    ASSERT_EQ(posattn_context_create(be, 0, &ctx_), POSATTN_STATUS_SUCCESS);
  }
  void TearDown() override { posattn_context_destroy(ctx_); }
  posattn_context *ctx_ = nullptr;
};

TEST_P(PrefillFireRange, keys_after_queries_match_reference) {
  const Case c = GetParam();
  pat_rng rng;
  pat_rng_seed(&rng, 0x5eed0f1aeull ^ std::hash<std::string>()(c.name));
  posattn_attention_desc desc;
  posattn_attention_desc_init(&desc);  // non-causal, no window
  desc.q_heads = 4;
  desc.kv_heads = 2;
  desc.head_dim = c.d;
  desc.batch = 2;
  std::vector<int32_t> qpos, kvpos;
  posattn_pe &pe = desc.pe;
  pe.kind = POSATTN_PE_FIRE;
  pe.fire.c = 0.1;
  if (c.explicit_positions) {
    // queries near the start, keys up to 20000 later: x up to psi(20000)/psi(L = 16) ~ 8
    desc.q_len = 33;
    desc.kv_len = 70;
    pe.fire.L = 16;
    for (int64_t i = 0; i < desc.batch * desc.q_len; ++i) qpos.push_back(pat_rng_int(&rng, 0, 40));
    for (int64_t j = 0; j < desc.batch * desc.kv_len; ++j)
      kvpos.push_back(j % 7 == 0 ? pat_rng_int(&rng, 0, 40) : pat_rng_int(&rng, 0, 20000));
    desc.q_positions = qpos.data();
    desc.kv_positions = kvpos.data();
  } else {
    // pq = i + Lk - Lq runs from -80: keys 0..16 lie up to 96 after the first queries, and the
    // normaliser is psi(L = 4), so x reaches psi(96)/psi(4) ~ 7
    desc.q_len = 97;
    desc.kv_len = 17;
    pe.fire.L = 4;
  }

  // kinks spread over (0, 9), some below 0; w2 small so the bias stays O(1)
  const int width = 16;
  std::vector<float> w1, b1, w2, b2;
  for (int k = 0; k < width; ++k) {
    const float w = float(pat_rng_uniform(&rng, -1, 1));
    w1.push_back(w);
    b1.push_back(float(-pat_rng_uniform(&rng, -1, 9) * w));
  }
  for (int k = 0; k < width * desc.q_heads; ++k) w2.push_back(float(pat_rng_uniform(&rng, -0.25, 0.25)));
  for (int h = 0; h < desc.q_heads; ++h) b2.push_back(float(pat_rng_uniform(&rng, -0.5, 0.5)));
  pe.fire.mlp_width = width;
  pe.fire.w1 = w1.data(); pe.fire.b1 = b1.data(); pe.fire.w2 = w2.data(); pe.fire.b2 = b2.data();

  // The call does reach x > 1 across kinks past 1 (else the case tests nothing new).
  double max_x = 0;
  for (int32_t b = 0; b < desc.batch; ++b)
    for (int32_t i = 0; i < desc.q_len; ++i)
      for (int32_t j = 0; j < desc.kv_len; ++j) {
        const int64_t pq = c.explicit_positions ? qpos[b * desc.q_len + i] : i + desc.kv_len - desc.q_len;
        const int64_t pk = c.explicit_positions ? kvpos[b * desc.kv_len + j] : j;
        max_x = std::max(max_x, posattn_pe_fire_x(pe.fire.c, pe.fire.L, pe.fire.eps, pq, pk));
      }
  ASSERT_GT(max_x, 5.0);
  int kinks_past_one = 0;
  for (int k = 0; k < width; ++k)
    if (w1[k] != 0 && -double(b1[k]) / w1[k] > 1 && -double(b1[k]) / w1[k] < max_x) ++kinks_past_one;
  ASSERT_GE(kinks_past_one, 3);

  ASSERT_EQ(posattn_supported(ctx_, &desc, c.dt, c.dt), POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(ctx_);
  pat_inputs in;
  ASSERT_EQ(pat_inputs_random(&in, &desc, c.dt, &rng, 1.0), 0);
  pat_checked r;
  pat_check_forward(ctx_, nullptr, &desc, &in, c.dt, c.dt, &r);
  if (!HasFatalFailure()) pat_expect_lse_rule(r, c.dt);
  pat_inputs_free(&in);
}

INSTANTIATE_TEST_SUITE_P(emu, PrefillFireRange,
                         ::testing::Values(Case{"positions_hd64_f32", POSATTN_DTYPE_F32, 64, true},
                                           Case{"positions_hd128_bf16", POSATTN_DTYPE_BF16, 128, true},
                                           Case{"positions_hd64_f16", POSATTN_DTYPE_F16, 64, true},
                                           Case{"default_hd128_f32", POSATTN_DTYPE_F32, 128, false},
                                           Case{"default_hd64_bf16", POSATTN_DTYPE_BF16, 64, false}),
                         [](const ::testing::TestParamInfo<Case> &i) { return std::string(i.param.name); });

}  // namespace
