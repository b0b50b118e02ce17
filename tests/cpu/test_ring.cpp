// Ring attention (context parallelism) with N in-process ranks on the REF backend:
// every PE, causal and not, contiguous and zig-zag sharding, with and without packed documents,
// N = 2, 3, 4, 7, against single-device attention by the DESIGN.md section 5 rule
// (tests/shim/pa_ring.hpp).
#include "pa_ring.hpp"

class RingRef : public ::testing::TestWithParam<pat_ring_case> {};

TEST_P(RingRef, MatchesSingleDevice) {
  posattn_context *ctx = nullptr;
  ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, &ctx), POSATTN_STATUS_SUCCESS);
  pat_ring_check(ctx, GetParam(), 1500 + uint64_t(GetParam().N));
  posattn_context_destroy(ctx);
}

INSTANTIATE_TEST_SUITE_P(Grid, RingRef, ::testing::ValuesIn(pat_ring_grid()),
                         [](const ::testing::TestParamInfo<pat_ring_case> &i) {
                           return pat_ring_name(i.param);
                         });

// The one encoding setting that does not shard as is: DYNAMIC_NTK with dynamic_seq_len = 0 takes
// the scaling from the largest position id IN THE CALL, which differs from rank to rank (and from
// the single-device call); the grid's dynntk cases give dynamic_seq_len and match.
TEST(RingRefCaveat, DynamicNtkWithoutExplicitLengthDiffers) {
  posattn_context *ctx = nullptr;
  ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, &ctx), POSATTN_STATUS_SUCCESS);
  pat_ring_check(ctx, {4, 19, 1, POSATTN_PE_ROPE, PAT_ZIGZAG, 0, 2}, 1504, false);
  posattn_context_destroy(ctx);
}
