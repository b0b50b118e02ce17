// Hardening of decode (issue 11), on EMU and REF:
//   - the NaN RULE of posattn.h: a NaN / inf value or key in the cache poisons exactly the query
//     tokens that see it (before: on EMU, 0 * NaN in P V reached the earlier speculative tokens,
//     and the split combine turned a poisoned split into 0 / -inf), with one and several KV
//     splits;
//   - window_left up to INT32_MAX means unbounded (before: L - n - window_left wrapped in int32
//     for a cache shorter than the new tokens, and the sequence's rows saw no key).
#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <limits>
#include <string>

#include "../cpu/decode_fixture.h"

namespace {

struct Ctx {
  posattn_context *ctx = nullptr;
  explicit Ctx(posattn_backend b) { EXPECT_EQ(posattn_context_create(b, 0, &ctx), POSATTN_STATUS_SUCCESS); }
  ~Ctx() { posattn_context_destroy(ctx); }
};

// Element offset of (sequence b, cache token j, kv head kh, feature f) in the contiguous pools.
int64_t pool_offset(const DecodeData &D, int b, int j, int kh, int f) {
  const int64_t page = D.block_table[size_t(b) * size_t(D.mpps) + size_t(j / D.c.page_size)];
  return ((page * D.c.page_size + j % D.c.page_size) * D.c.hkv + kh) * D.c.d + f;
}

// Poisons (b, j, kh, f) of the K or V pool, then expects: rows (b, t, h in kv head kh's group)
// with t seeing j (causal: j <= L - n + t) are NaN with NaN lse, all others equal the clean run.
void expect_decode_rule(posattn_context *ctx, DecodeData &D, bool in_v, int b, int j, int kh,
                        int f, double value) {
  const DecodeOut clean = run_decode(ctx, D);
  ASSERT_EQ(clean.status, POSATTN_STATUS_SUCCESS) << clean.message;
  void *pool = in_v ? D.vpool.data : D.kpool.data;
  const int64_t at = pool_offset(D, b, j, kh, f);
  const double saved = pat_load(pool, D.c.dt, at);
  pat_store(pool, D.c.dt, at, value);
  const DecodeOut bad = run_decode(ctx, D);
  pat_store(pool, D.c.dt, at, saved);
  ASSERT_EQ(bad.status, POSATTN_STATUS_SUCCESS) << bad.message;
  const DecodeCase &c = D.c;
  int poisoned = 0, wrong = 0;
  for (int bb = 0; bb < c.batch; ++bb)
    for (int t = 0; t < c.n; ++t)
      for (int h = 0; h < c.hq; ++h) {
        const bool p = bb == b && h / (c.hq / c.hkv) == kh && j <= D.lens[size_t(bb)] - c.n + t;
        poisoned += p;
        const size_t l = size_t((bb * c.hq + h) * c.n + t), r = size_t((bb * c.n + t) * c.hq + h);
        bool ok = p ? std::isnan(bad.lse[l]) : bad.lse[l] == clean.lse[l];
        for (int e = 0; e < c.d; ++e) {
          const double x = bad.out[r * size_t(c.d) + size_t(e)];
          ok = ok && (p ? std::isnan(x) : x == clean.out[r * size_t(c.d) + size_t(e)]);
        }
        if (!ok) ++wrong;
        EXPECT_TRUE(ok) << "b " << bb << " token " << t << " head " << h
                        << (p ? " should be poisoned" : " must equal the clean run") << ": lse "
                        << bad.lse[l] << " (clean " << clean.lse[l] << ")";
      }
  EXPECT_GT(poisoned, 0);
  EXPECT_EQ(wrong, 0);
}

TEST(DecodeHardening, NonFiniteCacheValuesPoisonOnlyTheTokensThatSeeThem) {
  for (posattn_backend be : {POSATTN_BACKEND_EMU, POSATTN_BACKEND_REF})
    for (int splits : {1, 3}) {
      DecodeCase c;
      c.n = 4;  // speculative tokens: token t sees cache tokens j <= L - 4 + t
      c.lens = {11, 14};
      c.dt = POSATTN_DTYPE_BF16;
      DecodeData D(c);
      D.desc.num_splits = splits;
      Ctx ctx(be);
      SCOPED_TRACE(std::string(posattn_backend_string(be)) + " splits " + std::to_string(splits));
      expect_decode_rule(ctx.ctx, D, true, 1, 12, 1, 3, std::numeric_limits<double>::quiet_NaN());
      expect_decode_rule(ctx.ctx, D, true, 0, 8, 0, 15, std::numeric_limits<double>::infinity());
      expect_decode_rule(ctx.ctx, D, false, 0, 9, 1, 0, std::numeric_limits<double>::quiet_NaN());
    }
}

TEST(DecodeHardening, WindowUpToInt32MaxIsUnbounded) {
  for (posattn_backend be : {POSATTN_BACKEND_EMU, POSATTN_BACKEND_REF}) {
    DecodeCase c;
    c.n = 3;
    c.lens = {1, 13};  // L - n = -2: L - n - INT32_MAX wrapped in int32
    DecodeData D(c);
    D.desc.causal = 0;
    Ctx ctx(be);
    const DecodeOut unbounded = run_decode(ctx.ctx, D);
    D.desc.window_left = INT32_MAX;
    const DecodeOut wide = run_decode(ctx.ctx, D);
    ASSERT_EQ(wide.status, POSATTN_STATUS_SUCCESS) << wide.message;
    EXPECT_EQ(wide.out, unbounded.out) << posattn_backend_string(be);
    EXPECT_EQ(wide.lse, unbounded.lse) << posattn_backend_string(be);
  }
}

}  // namespace
