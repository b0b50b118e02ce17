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

// The NaN RULE check (expect_nan_rule) is the fixture's: rows (b, t, h in kv head kh's group)
// with t seeing the poisoned token j (causal: j <= L - n + t) are NaN with NaN lse, all others
// equal the clean run.
TEST(DecodeHardening, NonFiniteCacheValuesPoisonOnlyTheTokensThatSeeThem) {
  for (posattn_backend be : {POSATTN_BACKEND_EMU, POSATTN_BACKEND_REF})
    for (int splits : {1, 3}) {
      DecodeCase c;
      c.n = 4;  // speculative tokens: token t sees cache tokens j <= L - 4 + t
      c.lens = {11, 14};
      c.dt = POSATTN_DTYPE_BF16;
      DecodeData D(c);
      D.desc.num_splits = splits;
      TestContext ctx(be);
      SCOPED_TRACE(std::string(posattn_backend_string(be)) + " splits " + std::to_string(splits));
      expect_nan_rule(ctx.ctx, D, true, 1, 12, 1, 3, std::numeric_limits<double>::quiet_NaN());
      expect_nan_rule(ctx.ctx, D, true, 0, 8, 0, 15, std::numeric_limits<double>::infinity());
      expect_nan_rule(ctx.ctx, D, false, 0, 9, 1, 0, std::numeric_limits<double>::quiet_NaN());
    }
}

TEST(DecodeHardening, WindowUpToInt32MaxIsUnbounded) {
  for (posattn_backend be : {POSATTN_BACKEND_EMU, POSATTN_BACKEND_REF}) {
    DecodeCase c;
    c.n = 3;
    c.lens = {1, 13};  // L - n = -2: L - n - INT32_MAX wrapped in int32
    DecodeData D(c);
    D.desc.causal = 0;
    TestContext ctx(be);
    const DecodeOut unbounded = run_decode(ctx.ctx, D);
    D.desc.window_left = INT32_MAX;
    const DecodeOut wide = run_decode(ctx.ctx, D);
    ASSERT_EQ(wide.status, POSATTN_STATUS_SUCCESS) << wide.message;
    EXPECT_EQ(wide.out, unbounded.out) << posattn_backend_string(be);
    EXPECT_EQ(wide.lse, unbounded.lse) << posattn_backend_string(be);
  }
}

}  // namespace
