// Ring attention (context parallelism) with N in-process ranks on the EMU backend (the prefill and
// merge kernels run by the emulator; tiny shapes, about 2 s in all): every PE, causal and not, with
// and without packed documents, N = 2, 4 (contiguous) and 3, 7 (zig-zag), against single-device
// attention by the DESIGN.md section 5 rule (tests/shim/pa_ring.hpp).
#include "pa_ring.hpp"

class RingEmu : public ::testing::TestWithParam<pat_ring_case> {};

TEST_P(RingEmu, MatchesSingleDevice) {
  posattn_context *ctx = nullptr;
  ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_EMU, 0, &ctx), POSATTN_STATUS_SUCCESS);
  pat_ring_check(ctx, GetParam(), 1500 + uint64_t(GetParam().N));
  posattn_context_destroy(ctx);
}

INSTANTIATE_TEST_SUITE_P(Grid, RingEmu, ::testing::ValuesIn(pat_ring_grid(true)),
                         [](const ::testing::TestParamInfo<pat_ring_case> &i) {
                           return pat_ring_name(i.param);
                         });
