// Concurrency: several OS threads, each with its own contexts (REF and EMU), run prefill and decode
// at the same time; every result must be bit-identical to the same call made alone on one thread.
// posattn.h promises that distinct contexts are independent; the EMU backend keeps its fibers,
// stacks and shared-memory arena per OS thread, which is what this checks. Label threads: an
// ordinary build runs it with the rest of the suite; the tsan preset builds only this and runs it
// under ThreadSanitizer, where a data race between the threads fails it even when results agree.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "decode_fixture.h"
#include "pa_test_shim.h"
#include "posattn.h"

namespace {

constexpr int kThreads = 4;
constexpr int kRepeats = 2;

// Results of every call of one round, flattened: out and lse of each problem in order.
struct Round {
  std::vector<double> values;
  std::vector<std::string> errors;
};

struct Prefill {
  posattn_attention_desc desc{};
  posattn_dtype dt = POSATTN_DTYPE_F32;
  pat_inputs in{};
  std::vector<int32_t> cu, docs;
};

void add_run(Round &r, const char *what, const pat_run &run, const std::vector<double> &out,
             const std::vector<double> &lse) {
  if (run.status != POSATTN_STATUS_SUCCESS || !run.guards_ok)
    r.errors.push_back(std::string(what) + ": " + posattn_status_string(run.status) + " " +
                       run.message);
  r.values.insert(r.values.end(), out.begin(), out.end());
  r.values.insert(r.values.end(), lse.begin(), lse.end());
}

class Threads : public ::testing::Test {
 protected:
  void SetUp() override {
    pat_rng rng;
    pat_rng_seed(&rng, 11);
    // fp32 SIMT kernel: causal RoPE (EXACT angles), GQA, two sequences of different lengths
    Prefill &a = prefill_.emplace_back();
    posattn_attention_desc_init(&a.desc);
    a.desc.batch = 2; a.desc.q_heads = 4; a.desc.kv_heads = 2; a.desc.head_dim = 16;
    a.desc.q_len = 13; a.desc.kv_len = 21; a.desc.causal = 1;
    a.desc.pe.kind = POSATTN_PE_ROPE;
    a.desc.pe.rope.angle_mode = POSATTN_ANGLE_EXACT;
    // bf16 tensor-core kernel (head_dim 64): varlen packed documents with an anchor, ALiBi-free
    // sliding window
    Prefill &b = prefill_.emplace_back();
    posattn_attention_desc_init(&b.desc);
    b.dt = POSATTN_DTYPE_BF16;
    b.cu = {0, 9, 29};
    b.docs.resize(29);
    for (int i = 0; i < 29; ++i) b.docs[size_t(i)] = i < 9 ? i / 5 : (i - 9) / 7;
    b.desc.batch = 2; b.desc.q_heads = 2; b.desc.kv_heads = 1; b.desc.head_dim = 64;
    b.desc.q_len = b.desc.kv_len = 20;
    b.desc.cu_seqlens_q = b.desc.cu_seqlens_kv = b.cu.data();
    b.desc.doc_ids = b.docs.data();
    b.desc.num_anchor_tokens = 2;
    b.desc.causal = 1;
    b.desc.window_left = 6;
    for (Prefill &p : prefill_) ASSERT_EQ(pat_inputs_random(&p.in, &p.desc, p.dt, &rng, 1.0), 0);

    DecodeCase c;
    c.batch = 3; c.hq = 4; c.hkv = 2; c.d = 16; c.n = 3; c.page_size = 4;
    c.lens = {7, 0, 18};
    c.explicit_positions = true;
    c.seed = 12;
    decode_ = std::make_unique<DecodeData>(c);
    decode_->desc.pe.kind = POSATTN_PE_ROPE;
    decode_->desc.pe.rope.angle_mode = POSATTN_ANGLE_EXACT;
    decode_->desc.num_splits = 3;
  }
  void TearDown() override {
    for (Prefill &p : prefill_) pat_inputs_free(&p.in);
  }

  // Every problem on a fresh context of `backend`, on the calling thread.
  Round run_all(posattn_backend backend) {
    Round r;
    posattn_context *ctx = nullptr;
    if (posattn_context_create(backend, 0, &ctx) != POSATTN_STATUS_SUCCESS) {
      r.errors.push_back("context_create failed");
      return r;
    }
    for (const Prefill &p : prefill_) {
      const int64_t nl = pat_q_rows(&p.desc) * p.desc.q_heads;
      std::vector<double> out(static_cast<size_t>(nl * p.desc.head_dim));
      std::vector<double> lse(static_cast<size_t>(nl));
      const pat_run run = pat_forward_checked(ctx, &p.desc, &p.in.tq, &p.in.tk, &p.in.tv,
                                              POSATTN_DTYPE_F32, out.data(), lse.data());
      add_run(r, "forward", run, out, lse);
    }
    const DecodeOut d = run_decode(ctx, *decode_);
    if (d.status != POSATTN_STATUS_SUCCESS || !d.guards_ok)
      r.errors.push_back(std::string("decode: ") + posattn_status_string(d.status) + " " +
                         d.message);
    r.values.insert(r.values.end(), d.out.begin(), d.out.end());
    r.values.insert(r.values.end(), d.lse.begin(), d.lse.end());
    posattn_context_destroy(ctx);
    return r;
  }

  void check_concurrent(posattn_backend backend) {
    const Round alone = run_all(backend);
    ASSERT_TRUE(alone.errors.empty()) << alone.errors.front();
    ASSERT_FALSE(alone.values.empty());
    std::vector<std::vector<Round>> got(kThreads);
    std::vector<std::thread> pool;
    for (int t = 0; t < kThreads; ++t)
      pool.emplace_back([&, t] {
        // alternate the backends across threads so REF and EMU calls overlap too
        const posattn_backend other =
            backend == POSATTN_BACKEND_EMU ? POSATTN_BACKEND_REF : POSATTN_BACKEND_EMU;
        for (int i = 0; i < kRepeats; ++i) {
          got[size_t(t)].push_back(run_all(backend));
          if (t % 2) run_all(other);
        }
      });
    for (std::thread &th : pool) th.join();
    for (int t = 0; t < kThreads; ++t)
      for (const Round &r : got[size_t(t)]) {
        ASSERT_TRUE(r.errors.empty()) << "thread " << t << ": " << r.errors.front();
        ASSERT_EQ(r.values.size(), alone.values.size());
        EXPECT_EQ(std::memcmp(r.values.data(), alone.values.data(),
                              alone.values.size() * sizeof(double)),
                  0)
            << "thread " << t << " differs from the single-thread run";
      }
  }

  std::vector<Prefill> prefill_;
  std::unique_ptr<DecodeData> decode_;
};

TEST_F(Threads, EmuContextsPerThreadGiveBitIdenticalResults) {
  check_concurrent(POSATTN_BACKEND_EMU);
}

TEST_F(Threads, RefContextsPerThreadGiveBitIdenticalResults) {
  check_concurrent(POSATTN_BACKEND_REF);
}

}  // namespace
