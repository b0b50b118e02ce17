// pa_test_check.hpp -- the DESIGN.md section 5 check of one prefill call, shared by the EMU test
// suites (GoogleTest; header-only C++ over the C shim).
//
// pat_check_forward runs desc on ctx with poisoned, guarded outputs, computes the gold answer in
// fp64 (the shim's independent naive attention, or a second context such as REF when gold_ctx is
// given) and the low-precision baseline (the naive attention rounding like the kernel: inputs in
// in_dt, logits fp32, P in in_dt, output in out_dt), and EXPECTs: SUCCESS, guards intact, no NaN in
// out or lse, and the section 5 rule on out (unless expect_rule is false: the caller judges
// out_rule itself). The numbers stay in the result for further checks (pat_lse_rule, empty
// rows, ...).
#ifndef PA_TEST_CHECK_HPP
#define PA_TEST_CHECK_HPP

#include <gtest/gtest.h>

#include <vector>

#include "pa_test_shim.h"

struct pat_checked {
  std::vector<double> out, lse, gold, gold_lse, base, base_lse;
  pat_rule_result out_rule{};
};

inline void pat_check_forward(posattn_context *ctx, posattn_context *gold_ctx,
                              const posattn_attention_desc *desc, pat_inputs *in,
                              posattn_dtype in_dt, posattn_dtype out_dt, pat_checked *r,
                              bool expect_rule = true) {
  const int64_t nl = pat_q_rows(desc) * desc->q_heads, n = nl * desc->head_dim;
  r->out.assign(n, 0); r->gold.assign(n, 0); r->base.assign(n, 0);
  r->lse.assign(nl, 0); r->gold_lse.assign(nl, 0); r->base_lse.assign(nl, 0);
  const pat_run run = pat_forward_checked(ctx, desc, &in->tq, &in->tk, &in->tv, out_dt,
                                          r->out.data(), r->lse.data());
  ASSERT_EQ(run.status, POSATTN_STATUS_SUCCESS) << run.message;
  EXPECT_TRUE(run.guards_ok);
  EXPECT_EQ(run.out_nan, 0);
  EXPECT_EQ(run.lse_nan, 0);
  if (gold_ctx) {  // delivered in f32: the rule's ulp term covers that one rounding
    const pat_run g = pat_forward_checked(gold_ctx, desc, &in->tq, &in->tk, &in->tv,
                                          POSATTN_DTYPE_F32, r->gold.data(), r->gold_lse.data());
    ASSERT_EQ(g.status, POSATTN_STATUS_SUCCESS) << g.message;
  } else {  // lowp = 0: fp64 throughout
    ASSERT_EQ(pat_naive_forward(desc, &in->tq, &in->tk, &in->tv, (posattn_dtype)0, out_dt,
                                r->gold.data(), r->gold_lse.data()),
              POSATTN_STATUS_SUCCESS);
  }
  ASSERT_EQ(pat_naive_forward(desc, &in->tq, &in->tk, &in->tv, in_dt, out_dt, r->base.data(),
                              r->base_lse.data()),
            POSATTN_STATUS_SUCCESS);
  r->out_rule = pat_rule_check(r->out.data(), r->base.data(), r->gold.data(), n, out_dt);
  EXPECT_TRUE(!expect_rule || r->out_rule.pass) << "out: max_err " << r->out_rule.max_err << " bound "
                                << r->out_rule.bound << " (baseline " << r->out_rule.max_base_err
                                << ") nmse " << r->out_rule.nmse << " nonfinite "
                                << r->out_rule.bad_nonfinite;
}

// The section 5 rule on the LSE at the resolution of a 16-bit input (the input dtype, f16 for
// f32 inputs). The tensor-core kernel rounds RoPE-rotated q/k to the input dtype for the mma and
// the fp32 kernel's dot products accumulate d roundings; the baseline does neither, so an
// fp32-ulp bound would fail correct kernels, while a wrong mask or bias moves the LSE far more.
inline void pat_expect_lse_rule(const pat_checked &r, posattn_dtype in_dt) {
  const posattn_dtype res = in_dt == POSATTN_DTYPE_F32 ? POSATTN_DTYPE_F16 : in_dt;
  const pat_rule_result rl = pat_rule_check(r.lse.data(), r.base_lse.data(), r.gold_lse.data(),
                                            (int64_t)r.lse.size(), res);
  EXPECT_TRUE(rl.pass) << "lse: max_err " << rl.max_err << " bound " << rl.bound << " (baseline "
                       << rl.max_base_err << ") nonfinite " << rl.bad_nonfinite;
}

// An EMU context and a REF context for one test: the fixture of the suites that run a call on EMU
// and check it against REF.
class pat_emu_ref_test : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_EMU, 0, &emu_), POSATTN_STATUS_SUCCESS);
    ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, &ref_), POSATTN_STATUS_SUCCESS);
  }
  void TearDown() override {
    posattn_context_destroy(emu_);
    posattn_context_destroy(ref_);
  }
  posattn_context *emu_ = nullptr, *ref_ = nullptr;
};

#endif  // PA_TEST_CHECK_HPP
