// FIRE's compiled segments beyond x = 1: keys far after their query (non-causal attention, or
// explicit positions) give x = psi(|pq-pk|)/psi(max(L,pq)) > 1, so the segment table must agree
// with the MLP for every x >= 0, including kinks past 1 and the unbounded last segment.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "pa_test_shim.h"

namespace {

struct Mlp {
  int32_t width, hq;
  std::vector<float> w1, b1, w2, b2;
  posattn_fire_params params() {
    posattn_pe pe;
    posattn_pe_init(&pe);
    posattn_fire_params f = pe.fire;
    f.mlp_width = width;
    f.w1 = w1.data();
    f.b1 = b1.data();
    f.w2 = w2.data();
    f.b2 = b2.data();
    return f;
  }
  double kink(int32_t k) const { return -(double)b1[k] / (double)w1[k]; }
  // The MLP written out here, independent of host/pe_fire.c.
  double eval(int32_t h, double x) const {
    double y = b2[h];
    for (int32_t k = 0; k < width; ++k)
      y += (double)w2[h * width + k] * std::max(0.0, (double)w1[k] * x + (double)b1[k]);
    return y;
  }
  // Sum of the magnitudes of the terms at x: the scale an exact evaluation is held to.
  double mag(int32_t h, double x) const {
    double m = std::fabs(b2[h]);
    for (int32_t k = 0; k < width; ++k)
      m += std::fabs(w2[h * width + k]) * (std::fabs(w1[k]) * x + std::fabs(b1[k]));
    return m;
  }
};

// Weights whose kinks spread over (0, 8), some beyond 8 and some below 0.
Mlp random_mlp(pat_rng *rng, int32_t width, int32_t hq) {
  Mlp m{width, hq, {}, {}, {}, {}};
  for (int32_t k = 0; k < width; ++k) {
    const float w = (float)pat_rng_uniform(rng, -3, 3);
    const double t = pat_rng_uniform(rng, -1, 10);  // wanted kink
    m.w1.push_back(k % 9 == 4 ? 0.f : w);           // a constant unit now and then
    m.b1.push_back(k % 6 == 2 ? -w * 3.0f : (float)(-t * w));  // several kinks at exactly 3
  }
  for (int32_t i = 0; i < hq * width; ++i) m.w2.push_back((float)pat_rng_uniform(rng, -2, 2));
  for (int32_t h = 0; h < hq; ++h) m.b2.push_back((float)pat_rng_uniform(rng, -2, 2));
  return m;
}

TEST(FireRange, SegmentsMatchMlpUpToEight) {
  pat_rng rng;
  pat_rng_seed(&rng, 20240611);
  int kinks_beyond_one = 0;
  for (int t = 0; t < 40; ++t) {
    const int32_t width = t < 3 ? 1 + t : pat_rng_int(&rng, 1, 128), hq = pat_rng_int(&rng, 1, 6);
    Mlp m = random_mlp(&rng, width, hq);
    const posattn_fire_params f = m.params();
    pat_fire_segs *segs = nullptr;
    char msg[256] = "";
    ASSERT_EQ(pat_fire_segments_build(&f, hq, &segs, msg, sizeof msg), POSATTN_STATUS_SUCCESS) << msg;
    const int32_t nseg = pat_fire_segments_count(segs);
    EXPECT_LE(nseg, width + 1);
    EXPECT_EQ(pat_fire_segments_start(segs, 0), 0.0);
    for (int32_t s = 1; s < nseg; ++s)
      EXPECT_GT(pat_fire_segments_start(segs, s), pat_fire_segments_start(segs, s - 1));

    // every kink, its neighbours, the ends of [0, 8], points far beyond, random points
    std::vector<double> xs = {0.0, 1.0, 3.0, 8.0, 64.0, 1e6};
    int distinct_kinks = 0;
    std::vector<double> seen;
    for (int32_t k = 0; k < width; ++k) {
      if (m.w1[k] == 0) continue;
      const double kink = m.kink(k);
      if (kink <= 0) continue;
      if (std::find(seen.begin(), seen.end(), kink) == seen.end()) {
        seen.push_back(kink);
        ++distinct_kinks;
      }
      if (kink > 1) ++kinks_beyond_one;
      for (double dx : {0.0, 1e-12, -1e-12, 1e-7, -1e-7, 0.25, -0.25})
        if (kink + dx >= 0) xs.push_back(kink + dx);
    }
    // one segment per distinct kink in (0, inf), plus the first
    EXPECT_EQ(nseg, distinct_kinks + 1) << "case " << t;
    for (int i = 0; i < 300; ++i) xs.push_back(pat_rng_uniform(&rng, 0, 8));
    for (int32_t h = 0; h < hq; ++h)
      for (double x : xs) {
        const double want = m.eval(h, x), tol = 1e-12 * m.mag(h, x);
        EXPECT_NEAR(pat_fire_mlp_eval(&f, hq, h, x), want, tol) << "MLP, case " << t << " x " << x;
        EXPECT_NEAR(pat_fire_segments_eval(segs, h, x), want, tol)
            << "case " << t << " width " << width << " head " << h << " x " << x;
      }
    pat_fire_segments_free(segs);
  }
  EXPECT_GT(kinks_beyond_one, 100);  // the range past 1 was actually exercised
}

// A unit that switches on only past x = 1 changes the bias there: a table cut at 1 would miss it.
TEST(FireRange, KinkPastOneChangesTheSlope) {
  Mlp m{2, 1, {1.f, 1.f}, {0.f, -2.f}, {1.f, -3.f}, {0.5f}};  // y = x - 3 max(0, x - 2) + 0.5
  const posattn_fire_params f = m.params();
  pat_fire_segs *segs = nullptr;
  char msg[256] = "";
  ASSERT_EQ(pat_fire_segments_build(&f, 1, &segs, msg, sizeof msg), POSATTN_STATUS_SUCCESS) << msg;
  ASSERT_EQ(pat_fire_segments_count(segs), 2);
  EXPECT_EQ(pat_fire_segments_start(segs, 1), 2.0);
  for (double x : {0.0, 0.5, 1.0, 2.0, 3.0, 8.0, 100.0})
    EXPECT_NEAR(pat_fire_segments_eval(segs, 0, x), x - 3 * std::max(0.0, x - 2) + 0.5, 1e-14 * (1 + 4 * x))
        << "x " << x;
  pat_fire_segments_free(segs);
}

}  // namespace
