// FIRE on the tensor-core prefill kernel with positions in token order: the FIRE band
// (kernels/prefill/mma.cuh: fire_rows and the kink trips). Every row of a warp's tile takes the
// MLP segment of its nearest key (per element: psi from the band, one FFMA); a tile where some
// row crosses kinks then runs one kink trip per kink the most-crossing row crosses (each adds
// slope step x max(x - kink, 0)). Each case has kinks both near the diagonal (x small: tiles
// whose rows cross one kink or several) and far from it, with kink-free stretches wide enough
// for whole warp tiles in different segments (tiles without trips), and asserts on the host that
// all three occur. Steep segment slopes make a wrong segment or a missing kink term visible to
// the DESIGN.md section 5 rule against the fp64 reference (the test shim's naive attention, FIRE
// through the MLP).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "pa_test_check.hpp"
#include "pa_test_shim.h"

namespace {

struct Case {
  const char *name;
  int d;
  int q_len, kv_len;
  int causal, wl, wr;
  int docs;  // documents per sequence (q_len == kv_len), 3 anchor tokens
  float softcap;
};

// The band loop's warp rows (16 kM) and key tile (Bc) per head dim (mma.cuh: Traits<D>; FIRE's
// band kernel where split_paths).
void warp_shape(int d, int &rows, int &bc) {
  rows = d <= 128 ? 32 : 16;
  bc = d <= 128 ? 64 : 32;
}

class PrefillFireBand : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    char why[256];
    if (posattn_backend_available(POSATTN_BACKEND_EMU, why, sizeof why) != POSATTN_STATUS_SUCCESS)
      GTEST_SKIP() << "EMU backend unavailable: " << why;
    ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_EMU, 0, &ctx_), POSATTN_STATUS_SUCCESS);
  }
  void TearDown() override { posattn_context_destroy(ctx_); }
  posattn_context *ctx_ = nullptr;
};

TEST_P(PrefillFireBand, fast_and_kink_tiles_match_reference) {
  const Case c = GetParam();
  pat_rng rng;
  pat_rng_seed(&rng, 0xf17eba9dull ^ std::hash<std::string>()(c.name));
  posattn_attention_desc desc;
  posattn_attention_desc_init(&desc);
  desc.q_heads = 4;
  desc.kv_heads = 2;
  desc.head_dim = c.d;
  desc.batch = 2;
  desc.q_len = c.q_len;
  desc.kv_len = c.kv_len;
  desc.causal = c.causal;
  desc.window_left = c.wl;
  desc.window_right = c.wr;
  desc.softcap = c.softcap;
  std::vector<int32_t> docs;
  if (c.docs) {
    for (int b = 0; b < desc.batch; ++b)
      for (int i = 0; i < c.q_len; ++i) docs.push_back(i * c.docs / c.q_len);
    desc.doc_ids = docs.data();
    desc.num_anchor_tokens = 3;
  }
  posattn_pe &pe = desc.pe;
  pe.kind = POSATTN_PE_FIRE;
  pe.fire.c = 0.5;
  pe.fire.L = 8;

  // Kinks (x where a hidden unit turns on): four near the diagonal, two far from it with wide
  // gaps between (x reaches ~1.3), one beyond; slopes up to ~2 per unit.
  const double base[] = {0.08, 0.18, 0.3, 0.45, 0.8, 1.05, 3.0};
  const int width = int(sizeof base / sizeof base[0]);
  std::vector<float> w1, b1, w2, b2;
  std::vector<double> kinks;
  for (int k = 0; k < width; ++k) {
    const double kink = base[k] + pat_rng_uniform(&rng, -0.02, 0.02);
    const float w = float(pat_rng_uniform(&rng, 0.8, 1.6) * (k % 2 ? -1 : 1));
    w1.push_back(w);
    b1.push_back(float(-kink * w));
    kinks.push_back(-double(b1.back()) / double(w));
  }
  for (int k = 0; k < width * desc.q_heads; ++k) w2.push_back(float(pat_rng_uniform(&rng, -1.2, 1.2)));
  for (int h = 0; h < desc.q_heads; ++h) b2.push_back(float(pat_rng_uniform(&rng, -0.5, 0.5)));
  pe.fire.mlp_width = width;
  pe.fire.w1 = w1.data(); pe.fire.b1 = b1.data(); pe.fire.w2 = w2.data(); pe.fire.b2 = b2.data();

  // The kernel's (warp rows x key tile) blocks, classified as the FIRE band does (fp64 x here):
  // no kink trip when each row's x over the tile's keys stays between two kinks, else as many
  // trips as the most kinks one row crosses. The case must have tiles without trips (in at least
  // two segments), and tiles with one trip and with several.
  auto segment = [&](double x) {
    int s = 0;
    for (double k : kinks) s += k <= x;
    return s;
  };
  int rows, bc;
  warp_shape(c.d, rows, bc);
  const int64_t shift = int64_t(c.kv_len) - c.q_len;
  int fast = 0, slow = 0, multi = 0;
  std::set<int> fast_segments;
  for (int r0 = 0; r0 < c.q_len; r0 += rows)
    for (int j0 = 0; j0 < c.kv_len; j0 += bc) {
      if (c.causal && j0 > r0 + rows - 1 + shift) continue;  // a tile no row of the warp sees
      bool ok = true;
      size_t trips = 0;
      std::set<int> segs;
      for (int i = r0; i < std::min(r0 + rows, c.q_len); ++i) {
        const int64_t pq = i + shift;
        std::set<int> row;
        for (int j = j0; j < std::min(j0 + bc, c.kv_len); ++j)
          row.insert(segment(posattn_pe_fire_x(pe.fire.c, pe.fire.L, pe.fire.eps, pq, j)));
        ok = ok && row.size() == 1;
        trips = std::max(trips, row.size() - 1);
        segs.insert(row.begin(), row.end());
      }
      if (ok) {
        ++fast;
        fast_segments.insert(segs.begin(), segs.end());
      } else {
        ++slow;
        multi += trips >= 2;
      }
    }
  ASSERT_GE(fast, 1) << "the case meant to have fast tiles";
  ASSERT_GE(slow, 1) << "the case meant to have tiles that cross a kink";
  ASSERT_GE(multi, 1) << "the case meant to have tiles where a row crosses several kinks";
  ASSERT_GE(fast_segments.size(), 2u) << "the case meant to have fast tiles in several segments";

  ASSERT_EQ(posattn_supported(ctx_, &desc, POSATTN_DTYPE_BF16, POSATTN_DTYPE_BF16),
            POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(ctx_);
  pat_inputs in;
  ASSERT_EQ(pat_inputs_random(&in, &desc, POSATTN_DTYPE_BF16, &rng, 1.0), 0);
  pat_checked r;
  pat_check_forward(ctx_, nullptr, &desc, &in, POSATTN_DTYPE_BF16, POSATTN_DTYPE_BF16, &r);
  if (!HasFatalFailure()) pat_expect_lse_rule(r, POSATTN_DTYPE_BF16);
  pat_inputs_free(&in);
}

INSTANTIATE_TEST_SUITE_P(
    emu, PrefillFireBand,
    ::testing::Values(Case{"hd64_causal", 64, 161, 353, 1, -1, -1, 0, 0.f},
                      Case{"hd80_noncausal", 80, 97, 353, 0, -1, -1, 0, 0.f},
                      Case{"hd96_causal_softcap", 96, 161, 353, 1, -1, -1, 0, 25.f},
                      Case{"hd128_noncausal_softcap", 128, 97, 353, 0, -1, -1, 0, 30.f},
                      Case{"hd128_causal_documents", 128, 500, 500, 1, -1, -1, 3, 0.f},
                      Case{"hd64_window", 64, 161, 353, 0, 60, 20, 0, 0.f},
                      Case{"hd192_causal_window_softcap", 192, 97, 161, 1, 100, -1, 0, 20.f}),
    [](const ::testing::TestParamInfo<Case> &i) { return std::string(i.param.name); });

}  // namespace
