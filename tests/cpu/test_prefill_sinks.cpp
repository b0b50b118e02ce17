// Per-head sink logits in prefill (posattn_attention_desc.sink_logits, issue 13 item 5) on REF,
// and their validation.
//   - REF with sinks against an independent closed form built from REF without sinks: the sink
//     rescales a row to out * e^lse / (e^lse + e^sink) and its LSE to logaddexp(lse, sink), which
//     for a row that sees no key (lse -inf) is out 0 and lse = sink;
//   - the shim's naive attention (the fp64 gold of the EMU suites) agrees with REF with sinks;
//   - a non-finite sink is BAD_PE_PARAMS naming the element, on every entry point, and nothing is
//     written; posattn_attention_desc_init leaves sinks off.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "pa_test_shim.h"

namespace {

struct RefCtx {
  posattn_context *ctx = nullptr;
  RefCtx() {
    EXPECT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, &ctx), POSATTN_STATUS_SUCCESS);
  }
  ~RefCtx() { posattn_context_destroy(ctx); }
};

struct Shape {
  const char *name;
  int batch, hq, hkv, d, q_len, kv_len;
  std::vector<int32_t> cu;  // varlen self-attention offsets when not empty
  int causal, wl, wr;
  posattn_pe_kind pe;
};

posattn_attention_desc Desc(const Shape &s) {
  posattn_attention_desc d;
  posattn_attention_desc_init(&d);
  d.batch = s.batch; d.q_heads = s.hq; d.kv_heads = s.hkv; d.head_dim = s.d;
  d.q_len = s.q_len; d.kv_len = s.kv_len;
  if (!s.cu.empty()) {
    d.cu_seqlens_q = s.cu.data();
    d.cu_seqlens_kv = s.cu.data();
  }
  d.causal = s.causal; d.window_left = s.wl; d.window_right = s.wr;
  d.pe.kind = s.pe;
  return d;
}

// Head of lse index l: dense [batch][hq][q_len], varlen [hq][total_q].
int lse_head(const posattn_attention_desc &d, int64_t l) {
  return d.cu_seqlens_q ? int(l / pat_q_rows(&d)) : int((l / d.q_len) % d.q_heads);
}

const Shape kShapes[] = {
    {"dense causal gqa, q > kv (rows that see no key)", 2, 4, 2, 16, 19, 11, {}, 1, -1, -1,
     POSATTN_PE_NONE},
    {"varlen non-causal window alibi", 3, 2, 1, 8, 9, 9, {0, 4, 4, 13}, 0, 2, 1, POSATTN_PE_ALIBI},
    {"dense non-causal mqa rope", 1, 3, 1, 32, 7, 12, {}, 0, -1, -1, POSATTN_PE_ROPE},
};

TEST(PrefillSinksRef, MatchesTheClosedFormFromTheSinkFreeResult) {
  RefCtx R;
  uint64_t seed = 5;
  for (const Shape &s : kShapes) {
    SCOPED_TRACE(s.name);
    posattn_attention_desc desc = Desc(s);
    pat_rng rng;
    pat_rng_seed(&rng, seed++);
    // sinks around the logits, plus one far above (takes the row) and one far below (no effect)
    std::vector<float> sinks;
    for (int h = 0; h < s.hq; ++h) sinks.push_back(float(pat_rng_uniform(&rng, -3, 3)));
    sinks[0] = 60.f;
    sinks[size_t(s.hq - 1)] = -60.f;
    pat_inputs in;
    ASSERT_EQ(pat_inputs_random(&in, &desc, POSATTN_DTYPE_F32, &rng, 1.0), 0);
    const int64_t nl = pat_q_rows(&desc) * s.hq, n = nl * s.d;
    std::vector<double> out0(static_cast<size_t>(n)), lse0(static_cast<size_t>(nl)), out1(out0),
        lse1(lse0), gold(out0), gold_lse(lse0);
    pat_run run = pat_forward_checked(R.ctx, &desc, &in.tq, &in.tk, &in.tv, POSATTN_DTYPE_F32,
                                      out0.data(), lse0.data());
    ASSERT_EQ(run.status, POSATTN_STATUS_SUCCESS) << run.message;
    desc.sink_logits = sinks.data();
    run = pat_forward_checked(R.ctx, &desc, &in.tq, &in.tk, &in.tv, POSATTN_DTYPE_F32,
                              out1.data(), lse1.data());
    ASSERT_EQ(run.status, POSATTN_STATUS_SUCCESS) << run.message;
    EXPECT_TRUE(run.guards_ok);
    // the shim's naive fp64 attention, written from the header, with the same sinks
    ASSERT_EQ(pat_naive_forward(&desc, &in.tq, &in.tk, &in.tv, (posattn_dtype)0, POSATTN_DTYPE_F32,
                                gold.data(), gold_lse.data()),
              POSATTN_STATUS_SUCCESS);

    int64_t empty = 0, taken = 0;
    for (int64_t l = 0; l < nl; ++l) {
      const int h = lse_head(desc, l);
      const double sink = sinks[size_t(h)], lse = lse0[size_t(l)];
      // logaddexp(lse, sink); -inf lse: the sink alone
      const double m = std::fmax(lse, sink);
      const double want = m + std::log(std::exp(lse - m) + std::exp(sink - m));
      const double tol = 2e-7 * (1 + std::fabs(want));
      EXPECT_NEAR(lse1[size_t(l)], want, tol) << "lse " << l;
      EXPECT_NEAR(lse1[size_t(l)], gold_lse[size_t(l)], tol) << "lse " << l;
      if (lse == -INFINITY) {
        ++empty;
        EXPECT_EQ(lse1[size_t(l)], sink) << "a row that sees no key has lse = sink, row " << l;
      }
      if (sink == 60.f) ++taken;
    }
    // out rows: lse index -> out row [rows][hq][d]
    for (int64_t r = 0; r < pat_q_rows(&desc); ++r)
      for (int h = 0; h < s.hq; ++h) {
        int64_t l;
        if (desc.cu_seqlens_q) {
          l = int64_t(h) * pat_q_rows(&desc) + r;
        } else {
          const int64_t b = r / s.q_len, i = r % s.q_len;
          l = (b * s.hq + h) * s.q_len + i;
        }
        const double lse = lse0[size_t(l)], sink = sinks[size_t(h)];
        // share of the keys: e^lse / (e^lse + e^sink) = 1 / (1 + e^(sink - lse)); 0 when empty
        const double share = lse == -INFINITY ? 0.0 : 1.0 / (1.0 + std::exp(sink - lse));
        for (int f = 0; f < s.d; ++f) {
          const size_t e = size_t((r * s.hq + h) * s.d + f);
          const double want = out0[e] * share;
          EXPECT_NEAR(out1[e], want, 3e-7 * std::fabs(want) + 1e-30) << "row " << r << " h " << h;
          EXPECT_NEAR(out1[e], gold[e], 3e-7 * std::fabs(gold[e]) + 1e-30) << "out row " << r;
        }
      }
    EXPECT_GT(taken, 0);
    if (s.causal && s.q_len > s.kv_len) {
      EXPECT_GT(empty, 0) << "the case meant to have empty rows";
    }
    pat_inputs_free(&in);
  }
}

TEST(PrefillSinksRef, DescInitLeavesSinksOff) {
  posattn_attention_desc d;
  d.sink_logits = reinterpret_cast<const float *>(&d);  // garbage before init
  posattn_attention_desc_init(&d);
  EXPECT_EQ(d.sink_logits, nullptr);
}

TEST(PrefillSinksRef, NonFiniteSinkIsRejectedNamingTheElement) {
  RefCtx R;
  posattn_context *emu = nullptr;
  ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_EMU, 0, &emu), POSATTN_STATUS_SUCCESS);
  const Shape s{"small", 1, 4, 2, 8, 5, 5, {}, 1, -1, -1, POSATTN_PE_NONE};
  posattn_attention_desc desc = Desc(s);
  pat_rng rng;
  pat_rng_seed(&rng, 3);
  pat_inputs in;
  ASSERT_EQ(pat_inputs_random(&in, &desc, POSATTN_DTYPE_F32, &rng, 1.0), 0);
  const float inf = std::numeric_limits<float>::infinity();
  const float bad[] = {std::numeric_limits<float>::quiet_NaN(), inf, -inf};
  for (float x : bad)
    for (int at : {0, 2, 3}) {
      std::vector<float> sinks = {0.f, 1.f, -1.f, 2.f};
      sinks[size_t(at)] = x;
      desc.sink_logits = sinks.data();
      const std::string name = "desc->sink_logits[" + std::to_string(at) + "]";
      SCOPED_TRACE(name + " = " + std::to_string(x));
      for (posattn_context *ctx : {R.ctx, emu}) {
        EXPECT_EQ(posattn_supported(ctx, &desc, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32),
                  POSATTN_STATUS_BAD_PE_PARAMS);
        std::string msg = posattn_context_last_message(ctx);
        EXPECT_NE(msg.find(name), std::string::npos) << msg;
        EXPECT_NE(msg.find("finite"), std::string::npos) << msg;
        size_t bytes = 1;
        EXPECT_EQ(posattn_workspace_size(ctx, &desc, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32, &bytes),
                  POSATTN_STATUS_BAD_PE_PARAMS);
        const pat_run run = pat_forward_checked(ctx, &desc, &in.tq, &in.tk, &in.tv,
                                                POSATTN_DTYPE_F32, nullptr, nullptr);
        EXPECT_EQ(run.status, POSATTN_STATUS_BAD_PE_PARAMS);
        EXPECT_NE(std::string(run.message).find(name), std::string::npos) << run.message;
        EXPECT_TRUE(run.untouched) << "out / lse written on a validation failure";
        EXPECT_TRUE(run.guards_ok);
      }
    }
  // finite extremes are fine
  std::vector<float> ok = {3e38f, -3e38f, 0.f, 1e-30f};
  desc.sink_logits = ok.data();
  EXPECT_EQ(posattn_supported(R.ctx, &desc, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32),
            POSATTN_STATUS_SUCCESS);
  pat_inputs_free(&in);
  posattn_context_destroy(emu);
}

}  // namespace
