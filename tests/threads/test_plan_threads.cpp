// One plan shared by several threads (posattn.h, "Serving: plan once, run per layer": a plan is
// immutable after creation and may be used from several threads at once, each with its own
// context and workspace). Every thread's runs must be bit-identical to one run made alone; under
// ThreadSanitizer (the tsan preset) a race on the plan fails the test even when results agree.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "plan_fixture.h"

namespace {

constexpr int kThreads = 4;
constexpr int kRepeats = 2;

// out and lse of every row of D after one run on ctx with its own workspace; "" or an error.
std::string run_once(posattn_context *ctx, const posattn_plan *plan, PlanData &D,
                     std::vector<double> &values) {
  size_t bytes = 0;
  if (posattn_plan_workspace_size(plan, &bytes) != POSATTN_STATUS_SUCCESS) return "workspace_size";
  pat_buf ws{};
  if (pat_buf_alloc(&ws, bytes) != 0) return "alloc";
  std::string err;
  RunOut R(D);
  if (posattn_plan_workspace_init(ctx, plan, ws.data, bytes) != POSATTN_STATUS_SUCCESS)
    err = std::string("workspace_init: ") + posattn_context_last_message(ctx);
  posattn_run_args a = D.args(R.out.data, R.lsep(), ws.data, bytes);
  if (err.empty() && posattn_plan_run(ctx, plan, &a) != POSATTN_STATUS_SUCCESS)
    err = std::string("run: ") + posattn_context_last_message(ctx);
  if (err.empty() && posattn_plan_check(ctx, plan, ws.data, bytes) != POSATTN_STATUS_SUCCESS)
    err = std::string("check: ") + posattn_context_last_message(ctx);
  for (int64_t r = 0; r < D.rows; ++r)
    for (int h = 0; h < D.c.hq; ++h) {
      values.push_back(R.l(r, h));
      for (int f = 0; f < D.c.d; ++f) values.push_back(R.o(r, h, f));
    }
  if (err.empty() && !(R.guards_ok() && pat_buf_guards_ok(&ws))) err = "guards";
  pat_buf_free(&ws);
  return err;
}

TEST(PlanThreads, OneRefPlanManyThreads) {
  PlanCase pc;
  pc.seqs = {{1, 40}, {23, 30}, {0, 5}, {4, 17}};
  pc.pe = POSATTN_PE_ROPE;
  pc.explicit_positions = true;
  pc.sinks = true;
  PlanData D(pc);
  posattn_context *ctx = nullptr;
  ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, &ctx), POSATTN_STATUS_SUCCESS);
  posattn_plan *plan = nullptr;
  ASSERT_EQ(posattn_plan_create(ctx, &D.desc, &plan), POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(ctx);
  std::vector<double> alone;
  ASSERT_EQ(run_once(ctx, plan, D, alone), "");

  std::vector<std::vector<double>> got(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      posattn_context *own = nullptr;
      if (posattn_context_create(POSATTN_BACKEND_REF, 0, &own) != POSATTN_STATUS_SUCCESS) {
        errors[size_t(t)] = "context";
        return;
      }
      for (int rep = 0; rep < kRepeats && errors[size_t(t)].empty(); ++rep) {
        std::vector<double> v;
        errors[size_t(t)] = run_once(own, plan, D, v);
        if (rep == 0) got[size_t(t)] = v;
        else if (v != got[size_t(t)]) errors[size_t(t)] = "repeat differs";
      }
      posattn_context_destroy(own);
    });
  for (std::thread &th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(errors[size_t(t)], "") << "thread " << t;
    ASSERT_EQ(got[size_t(t)].size(), alone.size());
    EXPECT_EQ(std::memcmp(got[size_t(t)].data(), alone.data(), alone.size() * sizeof(double)), 0)
        << "thread " << t;
  }
  posattn_plan_destroy(plan);
  posattn_context_destroy(ctx);
}

}  // namespace
