/* Tests of bench_core.c: visible-pair counts against hand-computed cases and against a brute-force
 * walk over every (i, j) with the visibility rule of posattn.h; statistics and the stopping rule
 * against hand-computed values. Exit status 0 = pass. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_core.h"

static int failures = 0;

#define CHECK_EQ(got, want, what)                                                              \
  do {                                                                                         \
    const long long g_ = (long long)(got), w_ = (long long)(want);                             \
    if (g_ != w_) {                                                                            \
      fprintf(stderr, "FAIL %s: got %lld, want %lld\n", what, g_, w_);                         \
      ++failures;                                                                              \
    }                                                                                          \
  } while (0)
#define CHECK_NEAR(got, want, what)                                                            \
  do {                                                                                         \
    const double g_ = (got), w_ = (want);                                                      \
    if (!(fabs(g_ - w_) <= 1e-12 * (1 + fabs(w_)))) {                                          \
      fprintf(stderr, "FAIL %s: got %.17g, want %.17g\n", what, g_, w_);                       \
      ++failures;                                                                              \
    }                                                                                          \
  } while (0)

/* The rule as posattn.h states it, one pair at a time. */
static long long brute(int lq, int lk, int causal, int wl, int wr, const int *doc, int anchors) {
  long long n = 0;
  for (int i = 0; i < lq; ++i)
    for (int j = 0; j < lk; ++j) {
      const int ip = i + lk - lq;
      int vis = 1;
      if (causal && j > ip) vis = 0;
      if (wl >= 0 && j < ip - wl) vis = 0;
      if (wr >= 0 && j > ip + wr) vis = 0;
      if (doc && !(doc[i] == doc[j] || j < anchors)) vis = 0;
      n += vis;
    }
  return n;
}

static void hand_cases(void) {
  const int d6[6] = {0, 0, 0, 1, 1, 1}, d4[4] = {0, 0, 1, 1};
  CHECK_EQ(pb_visible_pairs(4, 4, 0, -1, -1, NULL, 0), 16, "dense 4x4");
  CHECK_EQ(pb_visible_pairs(4, 4, 1, -1, -1, NULL, 0), 10, "causal 4x4");
  CHECK_EQ(pb_visible_pairs(2, 4, 1, -1, -1, NULL, 0), 7, "causal 2x4 bottom-right: 3+4");
  CHECK_EQ(pb_visible_pairs(4, 2, 1, -1, -1, NULL, 0), 3, "causal 4x2: rows 0,1 empty, 1+2");
  CHECK_EQ(pb_visible_pairs(4, 4, 1, 1, 0, NULL, 0), 7, "causal window 1: 1+2+2+2");
  CHECK_EQ(pb_visible_pairs(6, 6, 1, -1, -1, d6, 1), 15, "causal docs 3+3, 1 anchor");
  CHECK_EQ(pb_visible_pairs(6, 6, 0, -1, -1, d6, 1), 21, "docs 3+3, 1 anchor: 3*3 + 3*4");
  CHECK_EQ(pb_visible_pairs(4, 4, 0, -1, -1, d4, 2), 12, "docs 2+2, 2 anchors: 2*2 + 2*4");
  CHECK_EQ(pb_visible_pairs(6, 6, 0, -1, -1, d6, 0), 18, "docs without anchors: 9 + 9");
  CHECK_NEAR(pb_flops(10, 2, 64), 5120.0, "flops 4*64*10*2");
}

static void random_cases(void) {
  unsigned s = 12345;
  for (int t = 0; t < 3000; ++t) {
    s = s * 1103515245u + 12345u;
    const int lq = 1 + (int)(s >> 8) % 37;
    s = s * 1103515245u + 12345u;
    const int docs = (s >> 9) & 1;
    const int lk = docs ? lq : 1 + (int)(s >> 12) % 37;
    const int causal = (s >> 20) & 1;
    s = s * 1103515245u + 12345u;
    const int wl = (int)(s >> 10) % 12 - 3, wr = (int)(s >> 18) % 12 - 3;
    int doc[64];
    int anchors = 0;
    if (docs) {
      int id = 0;
      for (int i = 0; i < lk; ++i) {
        s = s * 1103515245u + 12345u;
        if (i > 0 && ((s >> 16) % 5) == 0) ++id;
        doc[i] = id;
      }
      anchors = (int)(s >> 24) % 4;
      if (anchors > lk) anchors = lk;
    }
    const int *dp = docs ? doc : NULL;
    const long long want = brute(lq, lk, causal, wl < 0 ? -1 : wl, wr < 0 ? -1 : wr, dp, anchors);
    const long long got =
        pb_visible_pairs(lq, lk, causal, wl < 0 ? -1 : wl, wr < 0 ? -1 : wr, dp, anchors);
    if (got != want) {
      fprintf(stderr, "FAIL random case %d: lq %d lk %d causal %d wl %d wr %d docs %d anchors %d: "
                      "got %lld want %lld\n", t, lq, lk, causal, wl, wr, docs, anchors, got, want);
      ++failures;
    }
  }
}

static void stats_cases(void) {
  double t[5] = {5, 1, 4, 2, 3};
  pb_stats s;
  pb_stats_compute(t, 5, &s);
  CHECK_EQ(s.n, 5, "n");
  CHECK_NEAR(s.median, 3, "median of 1..5");
  CHECK_NEAR(s.min, 1, "min");
  CHECK_NEAR(s.mean, 3, "mean");
  CHECK_NEAR(s.p20, 1.8, "p20 (rank 0.8)");
  CHECK_NEAR(s.p80, 4.2, "p80 (rank 3.2)");
  CHECK_NEAR(s.spread, 2.4 / 3, "spread (p80-p20)/median");
  double e[4] = {4, 1, 3, 2};
  pb_stats_compute(e, 4, &s);
  CHECK_NEAR(s.median, 2.5, "median of even count");

  const pb_time_opts o = {3, 10, 0.01, 1.0, 0};
  int conv = -1;
  const double flat[3] = {1, 1, 1}, noisy[3] = {1, 2, 3}, many[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  CHECK_EQ(pb_should_stop(flat, 2, 0, &o, &conv), 0, "below min samples: go on");
  CHECK_EQ(pb_should_stop(flat, 3, 0, &o, &conv), 1, "flat: stop");
  CHECK_EQ(conv, 1, "flat: converged");
  CHECK_EQ(pb_should_stop(noisy, 3, 0.5, &o, &conv), 0, "noisy within time: go on");
  CHECK_EQ(pb_should_stop(noisy, 3, 1.5, &o, &conv), 1, "noisy past time: stop");
  CHECK_EQ(conv, 0, "noisy: not converged");
  CHECK_EQ(pb_should_stop(many, 10, 0, &o, &conv), 1, "max samples: stop");
  CHECK_EQ(pb_should_stop(noisy, 1, 1.5, &o, &conv), 0, "time up, 1 sample: min samples first");
  CHECK_EQ(pb_should_stop(noisy, 1, 3.5, &o, &conv), 1, "one run longer than 3x budget: stop");
}

int main(void) {
  hand_cases();
  random_cases();
  stats_cases();
  if (failures) {
    fprintf(stderr, "%d failure(s)\n", failures);
    return 1;
  }
  printf("bench_core: all checks passed\n");
  return 0;
}
