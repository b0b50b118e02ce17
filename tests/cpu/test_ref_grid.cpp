// Shape grid for the REF backend. Each case checks
//  (a) REF against the shim's independent fp64 attention (mask rule and PE written from the
//      header, biases via posattn_pe_bias): within one rounding of the output dtype;
//  (b) out fully written (NaN poison gone), lse free of NaN, guard bands intact;
//  (c) the DESIGN.md section 5 rule: REF passes against ref64 with the low-precision baseline
//      built in the shim, and that bound is finite and nonzero.
// Names read like hd128_s97_h8x2_causal_rope-yarn_bf16 (sQxK when the lengths differ, and
// in-out dtypes when they differ).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "pa_test_shim.h"
#include "posattn.h"

namespace {

enum class Mask { kNone, kCausal, kWindow, kDocs };
const char *MaskName(Mask m) {
  switch (m) {
    case Mask::kNone: return "full";
    case Mask::kCausal: return "causal";
    case Mask::kWindow: return "window";
    default: return "docs";
  }
}

// positional-encoding variants of the grid
const char *const kPeNames[] = {"none",        "rope",        "rope-gptj",   "rope-partial",
                                "rope-linear", "rope-ntk",    "rope-dynntk", "rope-yarn",
                                "rope-llama3", "rope-longrope", "rope-invfreq", "rope-exact",
                                "xpos",        "alibi",       "alibi-slopes", "fire",
                                "t5",          "t5-bidir",    "kerple-log",  "kerple-power"};
constexpr int kNumPe = sizeof(kPeNames) / sizeof(kPeNames[0]);

struct GridCase {
  int32_t d, lq, lk, hq, hkv, batch;
  Mask mask;
  int pe;  // index into kPeNames
  posattn_dtype in, out;
  bool softcap;
};

std::string CaseName(const GridCase &c) {
  std::string n = "hd" + std::to_string(c.d) + "_s" + std::to_string(c.lq);
  if (c.lk != c.lq) n += "x" + std::to_string(c.lk);
  n += "_h" + std::to_string(c.hq) + "x" + std::to_string(c.hkv);
  if (c.batch > 1) n += "_b" + std::to_string(c.batch);
  n += std::string("_") + MaskName(c.mask) + "_" + kPeNames[c.pe];
  if (c.softcap) n += "_softcap";
  n += std::string("_") + posattn_dtype_string(c.in);
  if (c.out != c.in) n += std::string("-") + posattn_dtype_string(c.out);
  for (char &ch : n)
    if (ch == '-') ch = '_';  // gtest names: letters, digits, underscores
  return n;
}

// gtest prints a parameter with this instead of a byte dump
void PrintTo(const GridCase &c, std::ostream *os) { *os << CaseName(c); }

std::vector<GridCase> MakeGrid() {
  std::vector<GridCase> g;
  const posattn_dtype dts[3] = {POSATTN_DTYPE_BF16, POSATTN_DTYPE_F16, POSATTN_DTYPE_F32};
  // every head dim x length pair x mask, PE kinds and dtypes rotating through the set
  const int32_t lens[6][2] = {{1, 1}, {17, 17}, {97, 97}, {1, 97}, {17, 97}, {97, 17}};
  const int32_t heads[3][2] = {{8, 2}, {4, 4}, {6, 1}};
  int k = 0;
  for (int32_t d : {64, 128, 256})
    for (auto &l : lens)
      for (Mask m : {Mask::kNone, Mask::kCausal, Mask::kWindow, Mask::kDocs}) {
        if (m == Mask::kDocs && l[0] != l[1]) continue;  // documents need self-attention
        const int32_t *h = heads[k % 3];
        const bool big = d == 256 && l[0] == 97 && l[1] == 97;
        g.push_back({d, l[0], l[1], big ? 2 : h[0], big ? 1 : h[1], l[1] <= 17 ? 2 : 1, m,
                     (k * 7 + 3) % kNumPe, dts[k % 3], dts[(k / 3) % 3], k % 5 == 4});
        ++k;
      }
  // every PE kind in every input dtype on one small causal shape
  for (int pe = 0; pe < kNumPe; ++pe)
    for (posattn_dtype dt : dts)
      g.push_back({64, 17, 33, 4, 2, 2, Mask::kCausal, pe, dt, dt, false});
  // every in/out dtype pair
  for (posattn_dtype in : dts)
    for (posattn_dtype out : dts)
      g.push_back({128, 17, 17, 2, 1, 1, Mask::kWindow, 7, in, out, true});
  // a few long rows (kept small in heads so the suite stays fast)
  g.push_back({64, 1025, 1025, 1, 1, 1, Mask::kCausal, 7, POSATTN_DTYPE_BF16, POSATTN_DTYPE_BF16, false});
  g.push_back({128, 1, 1025, 2, 1, 1, Mask::kNone, 13, POSATTN_DTYPE_F16, POSATTN_DTYPE_F32, false});
  g.push_back({64, 1025, 1025, 1, 1, 1, Mask::kDocs, 15, POSATTN_DTYPE_BF16, POSATTN_DTYPE_F32, false});
  g.push_back({256, 97, 1025, 1, 1, 1, Mask::kWindow, 8, POSATTN_DTYPE_F32, POSATTN_DTYPE_BF16, false});
  return g;
}

// Parameter arrays a PE config points at; they must outlive the calls.
struct PeStorage {
  std::vector<double> ext, inv;  // RoPE tables are fp64
  std::vector<float> slopes, w1, b1, w2, b2, table, a, p;
  std::vector<int32_t> doc;
};

void SetupPe(const GridCase &c, pat_rng *r, posattn_attention_desc *desc, PeStorage *st) {
  posattn_pe &pe = desc->pe;
  const std::string name = kPeNames[c.pe];
  const int32_t rd = name == "rope-partial" ? c.d / 4 : c.d;
  auto fill = [&](auto &v, size_t n, double lo, double hi) {
    v.resize(n);
    for (auto &x : v) x = static_cast<std::decay_t<decltype(x)>>(pat_rng_uniform(r, lo, hi));
  };
  if (name.rfind("rope", 0) == 0 || name == "xpos") {
    pe.kind = name == "xpos" ? POSATTN_PE_XPOS : POSATTN_PE_ROPE;
    pe.rope.rotary_dim = name == "rope-partial" ? rd : 0;
    if (name == "rope-gptj" || name == "xpos") pe.rope.layout = POSATTN_ROPE_GPTJ;
    if (name == "rope-linear") pe.rope.scaling = POSATTN_ROPE_SCALING_LINEAR, pe.rope.factor = 2.5;
    if (name == "rope-ntk") pe.rope.scaling = POSATTN_ROPE_SCALING_NTK, pe.rope.factor = 4;
    if (name == "rope-dynntk") {
      pe.rope.scaling = POSATTN_ROPE_SCALING_DYNAMIC_NTK;
      pe.rope.factor = 2;
      pe.rope.original_max_position = 16;  // shorter than the call: the base really changes
    }
    if (name == "rope-yarn") {
      pe.rope.scaling = POSATTN_ROPE_SCALING_YARN;
      pe.rope.factor = 8;
      pe.rope.original_max_position = 2048;
    }
    if (name == "rope-llama3") {
      pe.rope.scaling = POSATTN_ROPE_SCALING_LLAMA3;
      pe.rope.factor = 8;
      pe.rope.base = 500000;
      pe.rope.original_max_position = 8192;
    }
    if (name == "rope-longrope") {
      pe.rope.scaling = POSATTN_ROPE_SCALING_LONGROPE;
      pe.rope.max_position = 65536;
      fill(st->ext, rd / 2, 1, 30);
      pe.rope.ext_factors = st->ext.data();
    }
    if (name == "rope-invfreq") {
      pe.rope.scaling = POSATTN_ROPE_SCALING_INV_FREQ;
      fill(st->inv, rd / 2, 1e-4, 1.5);
      pe.rope.inv_freq = st->inv.data();
    }
    if (name == "rope-exact") pe.rope.angle_mode = POSATTN_ANGLE_EXACT;
  } else if (name == "alibi" || name == "alibi-slopes") {
    pe.kind = POSATTN_PE_ALIBI;
    if (name == "alibi-slopes") {
      fill(st->slopes, c.hq, 0, 0.5);
      pe.alibi.slopes = st->slopes.data();
    }
  } else if (name == "fire") {
    pe.kind = POSATTN_PE_FIRE;
    pe.fire.mlp_width = 12;
    fill(st->w1, 12, -3, 3);
    fill(st->b1, 12, -1, 1);
    fill(st->w2, 12 * c.hq, -1, 1);
    fill(st->b2, c.hq, -1, 1);
    pe.fire.w1 = st->w1.data();
    pe.fire.b1 = st->b1.data();
    pe.fire.w2 = st->w2.data();
    pe.fire.b2 = st->b2.data();
    pe.fire.L = 40;
  } else if (name == "t5" || name == "t5-bidir") {
    pe.kind = POSATTN_PE_T5;
    pe.t5.bidirectional = name == "t5-bidir";
    fill(st->table, 32 * c.hq, -2, 2);
    pe.t5.table = st->table.data();
  } else if (name == "kerple-log" || name == "kerple-power") {
    pe.kind = name == "kerple-log" ? POSATTN_PE_KERPLE_LOG : POSATTN_PE_KERPLE_POWER;
    fill(st->a, c.hq, 0.05, 1.5);
    fill(st->p, c.hq, 0.1, 2.0);
    pe.kerple.a = st->a.data();
    pe.kerple.p = st->p.data();
  }
}

class RefGrid : public ::testing::TestWithParam<GridCase> {
 protected:
  void SetUp() override {
    ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, &ctx_), POSATTN_STATUS_SUCCESS);
  }
  void TearDown() override { posattn_context_destroy(ctx_); }
  posattn_context *ctx_ = nullptr;
};

TEST_P(RefGrid, MatchesNaiveFp64) {
  const GridCase &c = GetParam();
  pat_rng rng;
  pat_rng_seed(&rng, std::hash<std::string>{}(CaseName(c)));
  posattn_attention_desc desc;
  posattn_attention_desc_init(&desc);
  desc.batch = c.batch;
  desc.q_heads = c.hq;
  desc.kv_heads = c.hkv;
  desc.head_dim = c.d;
  desc.q_len = c.lq;
  desc.kv_len = c.lk;
  if (c.softcap) desc.softcap = 4.0f;
  PeStorage st;
  switch (c.mask) {
    case Mask::kNone: break;
    case Mask::kCausal: desc.causal = 1; break;
    case Mask::kWindow:
      desc.window_left = 13;
      desc.window_right = 5;
      break;
    case Mask::kDocs: {
      desc.causal = 1;
      desc.num_anchor_tokens = c.lq > 1 ? 1 : 0;
      // documents of pseudo-random lengths after the anchor, per batch item
      for (int32_t b = 0; b < c.batch; ++b) {
        int32_t id = 0, left = 0;
        for (int32_t i = 0; i < c.lq; ++i) {
          if (i >= desc.num_anchor_tokens && left == 0) {
            ++id;
            left = pat_rng_int(&rng, 1, std::max(1, c.lq / 3));
          }
          if (i >= desc.num_anchor_tokens) --left;
          st.doc.push_back(id);
        }
      }
      desc.doc_ids = st.doc.data();
      break;
    }
  }
  SetupPe(c, &rng, &desc, &st);
  pat_inputs in;
  ASSERT_EQ(pat_inputs_random(&in, &desc, c.in, &rng, 1.5), 0);

  const int64_t rows = pat_q_rows(&desc), n = rows * c.hq * c.d, nl = rows * c.hq;
  std::vector<double> out(n), lse(nl), ref64(n), lse64(nl), base(n), lse_base(nl);
  pat_run run = pat_forward_checked(ctx_, &desc, &in.tq, &in.tk, &in.tv, c.out, out.data(), lse.data());
  ASSERT_EQ(run.status, POSATTN_STATUS_SUCCESS) << run.message;
  // (b)
  EXPECT_TRUE(run.guards_ok) << "a guard band was overwritten";
  EXPECT_EQ(run.out_nan, 0) << "out not fully written";
  EXPECT_EQ(run.lse_nan, 0);
  EXPECT_TRUE(pat_buf_guards_ok(&in.q) && pat_buf_guards_ok(&in.k) && pat_buf_guards_ok(&in.v));

  // (a)
  ASSERT_EQ(pat_naive_forward(&desc, &in.tq, &in.tk, &in.tv, (posattn_dtype)0, c.out, ref64.data(),
                              lse64.data()),
            POSATTN_STATUS_SUCCESS);
  double worst = 0, worst_lse = 0;
  int64_t at = 0;
  for (int64_t i = 0; i < n; ++i) {
    double u = std::fabs(out[i] - ref64[i]) / pat_ulp(c.out, ref64[i]);
    if (u > worst) worst = u, at = i;
  }
  for (int64_t i = 0; i < nl; ++i) {
    if (lse64[i] == -INFINITY) {
      EXPECT_EQ(lse[i], -INFINITY) << "lse row " << i;
      continue;
    }
    worst_lse = std::max(worst_lse, std::fabs(lse[i] - lse64[i]) / pat_ulp(POSATTN_DTYPE_F32, lse64[i]));
  }
  EXPECT_LE(worst, 1.0) << "out[" << at << "] = " << out[at] << ", fp64 " << ref64[at];
  EXPECT_LE(worst_lse, 1.0);

  // (c)
  ASSERT_EQ(pat_naive_forward(&desc, &in.tq, &in.tk, &in.tv, c.in, c.out, base.data(), lse_base.data()),
            POSATTN_STATUS_SUCCESS);
  pat_rule_result rr = pat_rule_check(out.data(), base.data(), ref64.data(), n, c.out);
  EXPECT_TRUE(rr.pass) << "max_err " << rr.max_err << " bound " << rr.bound << " nmse " << rr.nmse
                       << " nonfinite " << rr.bad_nonfinite;
  EXPECT_TRUE(std::isfinite(rr.bound));
  EXPECT_GT(rr.bound, 0.0);
  pat_inputs_free(&in);
}

INSTANTIATE_TEST_SUITE_P(Ref, RefGrid, ::testing::ValuesIn(MakeGrid()),
                         [](const ::testing::TestParamInfo<GridCase> &i) { return CaseName(i.param); });

// The rule machinery itself: a bf16 baseline is off from ref64 by a finite, nonzero amount, and
// an output with one element pushed past the bound (or a NaN) fails.
TEST(RuleMachinery, BaselineBoundAndFailures) {
  pat_rng rng;
  pat_rng_seed(&rng, 3);
  posattn_attention_desc desc;
  posattn_attention_desc_init(&desc);
  desc.batch = 1;
  desc.q_heads = desc.kv_heads = 2;
  desc.head_dim = 64;
  desc.q_len = desc.kv_len = 33;
  desc.causal = 1;
  pat_inputs in;
  ASSERT_EQ(pat_inputs_random(&in, &desc, POSATTN_DTYPE_BF16, &rng, 1.0), 0);
  const int64_t n = 33 * 2 * 64;
  std::vector<double> ref(n), base(n);
  ASSERT_EQ(pat_naive_forward(&desc, &in.tq, &in.tk, &in.tv, (posattn_dtype)0, POSATTN_DTYPE_BF16,
                              ref.data(), nullptr), POSATTN_STATUS_SUCCESS);
  ASSERT_EQ(pat_naive_forward(&desc, &in.tq, &in.tk, &in.tv, POSATTN_DTYPE_BF16, POSATTN_DTYPE_BF16,
                              base.data(), nullptr), POSATTN_STATUS_SUCCESS);
  pat_rule_result self = pat_rule_check(base.data(), base.data(), ref.data(), n, POSATTN_DTYPE_BF16);
  EXPECT_TRUE(self.pass);
  EXPECT_GT(self.max_base_err, 0.0);
  EXPECT_TRUE(std::isfinite(self.bound));
  EXPECT_LT(self.nmse, 1e-4);
  std::vector<double> bad(base);
  bad[17] = ref[17] + 3 * self.bound;
  EXPECT_FALSE(pat_rule_check(bad.data(), base.data(), ref.data(), n, POSATTN_DTYPE_BF16).pass);
  bad[17] = NAN;
  pat_rule_result nan = pat_rule_check(bad.data(), base.data(), ref.data(), n, POSATTN_DTYPE_BF16);
  EXPECT_FALSE(nan.pass);
  EXPECT_EQ(nan.bad_nonfinite, 1);
  pat_inputs_free(&in);
}

// An odd head_dim is invalid for every backend: BAD_SIZE from supported() and forward(), and
// nothing is written. (REF serves every even head_dim, so it has no NOT_SUPPORTED shape.)
TEST(RefGridUnsupported, OddHeadDim) {
  posattn_context *ctx = nullptr;
  ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, &ctx), POSATTN_STATUS_SUCCESS);
  posattn_attention_desc desc;
  posattn_attention_desc_init(&desc);
  desc.batch = 1;
  desc.q_heads = desc.kv_heads = 1;
  desc.head_dim = 63;
  desc.q_len = desc.kv_len = 17;
  EXPECT_EQ(posattn_supported(ctx, &desc, POSATTN_DTYPE_BF16, POSATTN_DTYPE_BF16), POSATTN_STATUS_BAD_SIZE);
  EXPECT_NE(std::string(posattn_context_last_message(ctx)).find("head_dim"), std::string::npos)
      << posattn_context_last_message(ctx);
  pat_rng rng;
  pat_rng_seed(&rng, 1);
  pat_inputs in;
  ASSERT_EQ(pat_inputs_random(&in, &desc, POSATTN_DTYPE_BF16, &rng, 1.0), 0);
  pat_run run = pat_forward_checked(ctx, &desc, &in.tq, &in.tk, &in.tv, POSATTN_DTYPE_BF16, nullptr, nullptr);
  EXPECT_EQ(run.status, POSATTN_STATUS_BAD_SIZE);
  EXPECT_TRUE(run.untouched) << "a failed call wrote to out or lse";
  EXPECT_NE(std::string(run.message).find("head_dim"), std::string::npos) << run.message;
  pat_inputs_free(&in);
  posattn_context_destroy(ctx);
}

}  // namespace
