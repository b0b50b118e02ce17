// Building blocks of the precision study (posattn-drift): the low-precision emulation must
//  - reproduce fp64 attention when nothing rounds (against the shim's independent naive fp64
//    attention and against the REF backend), and stay at fp32 noise when everything is fp32;
//  - change exactly what a rounding point should change and nothing else, one point at a time;
//  - give RoPE angles whose relative-position violation is at fp64 noise in the exact modes and
//    grows with the shift in the fp32 common-practice mode;
//  - agree with the EMU kernels configured like them: fp32 math (SIMT kernel) and the tc presets
//    against the tensor-core kernel (mma.cuh), far closer than either is to fp64.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <string>
#include <vector>

#include "pa_drift_shim.h"
#include "pa_test_shim.h"
#include "posattn.h"

namespace {

constexpr double kPi = 3.14159265358979323846;

// A small problem with every feature the emulation touches: GQA, causal with q_len < kv_len,
// odd lengths, explicit position ids far from 0 (so angles are large).
struct Problem {
  posattn_attention_desc desc;
  std::vector<float> q, k, v;
  std::vector<int32_t> qpos, kpos;
  posattn_tensor tq, tk, tv;
  int64_t out_n() const { return (int64_t)desc.batch * desc.q_len * desc.q_heads * desc.head_dim; }
};

void MakeProblem(Problem *p, posattn_pe_kind kind, uint64_t seed, int32_t pos0 = 70000) {
  posattn_attention_desc_init(&p->desc);
  posattn_attention_desc &d = p->desc;
  d.batch = 2;
  d.q_heads = 4;
  d.kv_heads = 2;
  d.head_dim = 32;
  d.q_len = 7;
  d.kv_len = 19;
  d.causal = 1;
  d.pe.kind = kind;
  pat_rng r;
  pat_rng_seed(&r, seed);
  auto fill = [&](std::vector<float> *x, int64_t n) {
    x->resize((size_t)n);
    for (auto &e : *x) e = (float)pat_rng_normal(&r);
  };
  fill(&p->q, (int64_t)d.batch * d.q_len * d.q_heads * d.head_dim);
  fill(&p->k, (int64_t)d.batch * d.kv_len * d.kv_heads * d.head_dim);
  fill(&p->v, (int64_t)d.batch * d.kv_len * d.kv_heads * d.head_dim);
  p->qpos.resize((size_t)d.batch * d.q_len);
  p->kpos.resize((size_t)d.batch * d.kv_len);
  for (int32_t b = 0; b < d.batch; ++b) {
    for (int32_t j = 0; j < d.kv_len; ++j) p->kpos[(size_t)(b * d.kv_len + j)] = pos0 + 3 * j + b;
    for (int32_t i = 0; i < d.q_len; ++i)
      p->qpos[(size_t)(b * d.q_len + i)] = pos0 + 3 * (i + d.kv_len - d.q_len) + b;
  }
  d.q_positions = p->qpos.data();
  d.kv_positions = p->kpos.data();
  posattn_tensor_init_contiguous(&p->tq, p->q.data(), POSATTN_DTYPE_F32, d.q_len, d.q_heads,
                                 d.head_dim);
  posattn_tensor_init_contiguous(&p->tk, p->k.data(), POSATTN_DTYPE_F32, d.kv_len, d.kv_heads,
                                 d.head_dim);
  posattn_tensor_init_contiguous(&p->tv, p->v.data(), POSATTN_DTYPE_F32, d.kv_len, d.kv_heads,
                                 d.head_dim);
}

struct Result {
  std::vector<double> out, lse, logits;
};

Result Emulate(const Problem &p, const char *config) {
  Result r;
  const posattn_attention_desc &d = p.desc;
  r.out.assign((size_t)p.out_n(), NAN);
  r.lse.assign((size_t)d.batch * d.q_heads * d.q_len, NAN);
  r.logits.assign((size_t)d.batch * d.q_heads * d.q_len * d.kv_len, NAN);
  char msg[512] = "";
  posattn_status st = pa_drift_shim_forward(config, &d, &p.tq, &p.tk, &p.tv, r.out.data(),
                                            r.lse.data(), r.logits.data(), msg, sizeof msg);
  EXPECT_EQ(st, POSATTN_STATUS_SUCCESS) << config << ": " << msg;
  return r;
}

double MaxAbsDiff(const std::vector<double> &a, const std::vector<double> &b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isinf(a[i]) && std::isinf(b[i]) && a[i] == b[i]) continue; // both masked
    m = std::max(m, std::fabs(a[i] - b[i]));
  }
  return m;
}
double MaxAbs(const std::vector<double> &a) {
  double m = 0;
  for (double x : a)
    if (std::isfinite(x)) m = std::max(m, std::fabs(x));
  return m;
}

const posattn_pe_kind kKinds[] = {POSATTN_PE_NONE, POSATTN_PE_ROPE, POSATTN_PE_ALIBI};

TEST(DriftEmulation, Fp64MatchesIndependentNaiveAttention) {
  for (posattn_pe_kind kind : kKinds) {
    Problem p;
    MakeProblem(&p, kind, 11 + kind);
    Result e = Emulate(p, "fp64");
    std::vector<double> out((size_t)p.out_n()), lse(e.lse.size());
    ASSERT_EQ(pat_naive_forward(&p.desc, &p.tq, &p.tk, &p.tv, (posattn_dtype)0, POSATTN_DTYPE_F32,
                                out.data(), lse.data()),
              POSATTN_STATUS_SUCCESS);
    // the shim forms p*w in plain fp64: at positions ~7e4 its angle carries ~1e-11 rad of
    // rounding that the engine's exactly reduced angle does not
    const double tol = kind == POSATTN_PE_ROPE ? 1e-10 : 1e-12;
    EXPECT_LT(MaxAbsDiff(e.out, out), tol) << "pe kind " << kind;
    EXPECT_LT(MaxAbsDiff(e.lse, lse), tol) << "pe kind " << kind;
  }
}

TEST(DriftEmulation, Fp64MatchesRefBackend) {
  posattn_context *ctx = nullptr;
  ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, &ctx), POSATTN_STATUS_SUCCESS);
  for (posattn_pe_kind kind : kKinds) {
    Problem p;
    MakeProblem(&p, kind, 21 + kind);
    Result e = Emulate(p, "fp64");
    std::vector<double> out((size_t)p.out_n());
    pat_run run = pat_forward_checked(ctx, &p.desc, &p.tq, &p.tk, &p.tv, POSATTN_DTYPE_F32,
                                      out.data(), nullptr);
    ASSERT_EQ(run.status, POSATTN_STATUS_SUCCESS) << run.message;
    // REF stores fp32: within half an fp32 ulp of the fp64 answer, plus fp64 noise
    for (size_t i = 0; i < out.size(); ++i)
      ASSERT_LE(std::fabs(out[i] - e.out[i]), 0.5 * pat_ulp(POSATTN_DTYPE_F32, e.out[i]) + 1e-12)
          << "pe kind " << kind << " element " << i;
  }
  posattn_context_destroy(ctx);
}

TEST(DriftEmulation, Fp32IsAtFp32Noise) {
  for (posattn_pe_kind kind : kKinds) {
    Problem p;
    MakeProblem(&p, kind, 31 + kind, /*pos0=*/50);  // small positions: FAST angles are accurate
    Result g = Emulate(p, "fp64"), f = Emulate(p, "fp32");
    double err = MaxAbsDiff(f.out, g.out);
    EXPECT_GT(err, 0.0) << "fp32 must round somewhere";
    EXPECT_LT(err, 64 * 0x1p-24 * MaxAbs(g.out)) << "pe kind " << kind;
  }
}

TEST(DriftEmulation, OnlyInputRoundingEqualsRoundingInputsByHand) {
  Problem p, h;
  MakeProblem(&p, POSATTN_PE_ROPE, 41);
  MakeProblem(&h, POSATTN_PE_ROPE, 41);
  for (auto *x : {&h.q, &h.k, &h.v})
    for (float &e : *x) e = (float)pat_round_to(POSATTN_DTYPE_BF16, e);
  Result a = Emulate(p, "fp64,input=bf16"), b = Emulate(h, "fp64");
  EXPECT_EQ(MaxAbsDiff(a.out, b.out), 0.0);
  EXPECT_EQ(MaxAbsDiff(a.logits, b.logits), 0.0);
  EXPECT_GT(MaxAbsDiff(a.out, Emulate(p, "fp64").out), 0.0);
}

TEST(DriftEmulation, OnlyPRoundingChangesOutputNotLogits) {
  Problem p;
  MakeProblem(&p, POSATTN_PE_ALIBI, 51);
  Result g = Emulate(p, "fp64"), r = Emulate(p, "fp64,p=bf16");
  EXPECT_EQ(MaxAbsDiff(r.logits, g.logits), 0.0);
  EXPECT_EQ(MaxAbsDiff(r.lse, g.lse), 0.0) << "the row sum uses P before rounding";
  double err = MaxAbsDiff(r.out, g.out);
  EXPECT_GT(err, 0.0);
  // each weight moves by at most half a bf16 ulp (2^-9 relative): |dout| <= 2^-9 * max|v|
  double vmax = 0;
  for (float x : p.v) vmax = std::max(vmax, (double)std::fabs(x));
  EXPECT_LE(err, 0x1p-9 * vmax);
}

TEST(DriftEmulation, OnlyOutputRoundingRoundsTheFp64Answer) {
  Problem p;
  MakeProblem(&p, POSATTN_PE_ROPE, 61);
  Result g = Emulate(p, "fp64"), r = Emulate(p, "fp64,output=f16");
  EXPECT_EQ(MaxAbsDiff(r.logits, g.logits), 0.0);
  for (size_t i = 0; i < g.out.size(); ++i)
    ASSERT_EQ(r.out[i], pat_round_to(POSATTN_DTYPE_F16, g.out[i])) << i;
}

TEST(DriftEmulation, OperandRoundingTouchesQKNotV) {
  // without RoPE, rounding the q.k operands equals rounding q and k on input; v stays exact
  Problem p, h;
  MakeProblem(&p, POSATTN_PE_NONE, 71);
  MakeProblem(&h, POSATTN_PE_NONE, 71);
  for (auto *x : {&h.q, &h.k})
    for (float &e : *x) e = (float)pat_round_to(POSATTN_DTYPE_BF16, e);
  Result a = Emulate(p, "fp64,operand=bf16"), b = Emulate(h, "fp64");
  EXPECT_EQ(MaxAbsDiff(a.logits, b.logits), 0.0);
  EXPECT_LT(MaxAbsDiff(a.out, b.out), 1e-14);
  EXPECT_GT(MaxAbsDiff(a.logits, Emulate(p, "fp64").logits), 0.0);
}

TEST(DriftEmulation, TableAndAngleOnlyMatterWithRope) {
  Problem n, r;
  MakeProblem(&n, POSATTN_PE_ALIBI, 81);
  MakeProblem(&r, POSATTN_PE_ROPE, 81);
  const char *rope_only[] = {"fp64,table=bf16", "fp64,angle=fast", "fp64,rot=bf16"};
  for (const char *cfg : rope_only) {
    EXPECT_EQ(MaxAbsDiff(Emulate(n, cfg).out, Emulate(n, "fp64").out), 0.0) << cfg;
    Result g = Emulate(r, "fp64"), x = Emulate(r, cfg);
    EXPECT_GT(MaxAbsDiff(x.logits, g.logits), 0.0) << cfg;
  }
}

TEST(DriftEmulation, SoftmaxBlockingIsExactInFp64) {
  Problem p;
  MakeProblem(&p, POSATTN_PE_ROPE, 91);
  Result one = Emulate(p, "fp64,block=0"), tiny = Emulate(p, "fp64,block=3");
  EXPECT_LT(MaxAbsDiff(one.out, tiny.out), 1e-14);
  EXPECT_LT(MaxAbsDiff(one.lse, tiny.lse), 1e-13);
}

// lazy=8 (the tc presets, as mma.cuh): the max subtracted stays while a block's maximum rises by
// at most 8 log2 units. Exact in fp64 (every weight and its rescale move together); with P
// rounded to bf16 the weights are rounded at other magnitudes, so the result moves.
TEST(DriftEmulation, LazyRescalingIsExactInFp64AndMovesPRounding) {
  Problem p;
  MakeProblem(&p, POSATTN_PE_ROPE, 92);
  Result eager = Emulate(p, "fp64,block=3"), lazy = Emulate(p, "fp64,block=3,lazy=8");
  EXPECT_LT(MaxAbsDiff(eager.out, lazy.out), 1e-14);
  EXPECT_LT(MaxAbsDiff(eager.lse, lazy.lse), 1e-13);
  EXPECT_GT(MaxAbsDiff(Emulate(p, "fp32,block=3,p=bf16").out,
                       Emulate(p, "fp32,block=3,p=bf16,lazy=8").out),
            0.0);
}

TEST(DriftEmulation, Fp16AccumulatorsRoundMoreThanFp32) {
  Problem p;
  MakeProblem(&p, POSATTN_PE_NONE, 101);
  Result g = Emulate(p, "fp64");
  double e32 = MaxAbsDiff(Emulate(p, "fp64,qk_acc=f32").logits, g.logits);
  double e16 = MaxAbsDiff(Emulate(p, "fp64,qk_acc=f16").logits, g.logits);
  EXPECT_GT(e32, 0.0);
  EXPECT_GT(e16, 16 * e32);
  EXPECT_GT(MaxAbsDiff(Emulate(p, "fp64,pv_acc=f16").out, g.out), 0.0);
}

TEST(DriftEmulation, ExactAngleIsReducedAccurately) {
  // (p*w mod 2*pi) via long double; x86 long double has 64 bits, enough for p < 2^31 at 1e-12
  const double w = 0.8659643233601203;  // inv_freq of pair 1 at d=128, base 1e4
  for (int64_t p : {1LL, 1000LL, 123457LL, 1048576LL, 2000000000LL}) {
    long double a = (long double)p * (long double)w;
    long double two_pi = 6.283185307179586476925286766559L;
    a -= two_pi * roundl(a / two_pi);
    EXPECT_NEAR(pa_drift_shim_exact_angle(p, w), (double)a, 2e-12 + 1e-19 * (double)p) << p;
    EXPECT_LE(std::fabs(pa_drift_shim_exact_angle(p, w)), kPi + 1e-15);
  }
}

TEST(DriftEmulation, ExactModesMatchRopeApplyAtLongPositions) {
  posattn_pe pe;
  posattn_pe_init(&pe);
  const int32_t d = 64;
  pat_rng r;
  pat_rng_seed(&r, 7);
  std::vector<double> x(d), y(d), ref(d);
  for (double &e : x) e = pat_rng_normal(&r);
  for (int64_t pos : {5LL, 77777LL, 1000003LL}) {
    ASSERT_EQ(posattn_pe_rope_apply(&pe.rope, d, (int32_t)pos + 1, pos, x.data(), ref.data()),
              POSATTN_STATUS_SUCCESS);
    char msg[256];
    for (const char *cfg : {"fp64", "fp64,angle=exact"}) {
      ASSERT_EQ(pa_drift_shim_prepare(cfg, &pe.rope, d, pos, x.data(), y.data(), msg, sizeof msg),
                POSATTN_STATUS_SUCCESS)
          << msg;
      for (int32_t f = 0; f < d; ++f) EXPECT_NEAR(y[f], ref[f], 1e-12) << cfg << " pos " << pos;
    }
  }
}

// Relative-position violation max|dlogit|/max|logit| at a shift of 2^20.
double Violation(const char *cfg, int64_t shift) {
  double rel = NAN;
  char msg[256] = "";
  EXPECT_EQ(pa_drift_shim_violation(cfg, 128, 10000.0, shift, 64, 5, &rel, msg, sizeof msg),
            POSATTN_STATUS_SUCCESS)
      << msg;
  return rel;
}

TEST(DriftEmulation, ExactModesViolationIsAtFp64Noise) {
  // Measured here: ~1e-15 for both (a 128-term fp64 dot product of O(1) values has ~1e-15
  // relative noise; the exact angle keeps ~1e-16 rad at any position).
  for (int64_t s : {1LL, 131072LL, 1048576LL}) {
    EXPECT_LT(Violation("fp64", s), 1e-12) << s;
    EXPECT_LT(Violation("fp64,angle=exact", s), 1e-12) << s;
  }
}

TEST(DriftEmulation, FastAngleViolationGrowsWithShiftExactStaysFlat) {
  // fp32 p*w has an ulp of 2^(floor(log2 p)-23) rad: 0.06 rad at 2^20 (pe-spec §1.4)
  double fast_small = Violation("fp64,angle=fast,table=f32", 16);
  double fast_big = Violation("fp64,angle=fast,table=f32", 1048576);
  EXPECT_GT(fast_big, 100 * fast_small);
  EXPECT_GT(fast_big, 1e-3);
  // exact split with fp32 tables and fp32 rotation: fp32 noise, independent of the shift
  double exact_big = Violation("fp64,angle=exact,table=f32,rot=f32", 1048576);
  EXPECT_LT(exact_big, 1e-5);
  EXPECT_LT(exact_big, fast_big / 100);
}

TEST(DriftEmulation, BaselineAgreesWithShimBaseline) {
  // DESIGN.md section 5 baseline two ways: this engine (online softmax, fp32) and the test
  // shim's naive two-pass one; they differ only in summation order, so by a few bf16 ulps.
  Problem p;
  MakeProblem(&p, POSATTN_PE_ALIBI, 111);
  for (auto *x : {&p.q, &p.k, &p.v})
    for (float &e : *x) e = (float)pat_round_to(POSATTN_DTYPE_BF16, e);
  Result e = Emulate(p, "baseline-bf16");
  std::vector<double> out((size_t)p.out_n());
  ASSERT_EQ(pat_naive_forward(&p.desc, &p.tq, &p.tk, &p.tv, POSATTN_DTYPE_BF16,
                              POSATTN_DTYPE_BF16, out.data(), nullptr),
            POSATTN_STATUS_SUCCESS);
  EXPECT_LE(MaxAbsDiff(e.out, out), 4 * pat_ulp(POSATTN_DTYPE_BF16, MaxAbs(out)));
}

TEST(DriftEmulation, AgreesWithEmuKernelAtFp32) {
  char why[256] = "";
  if (posattn_backend_available(POSATTN_BACKEND_EMU, why, sizeof why) != POSATTN_STATUS_SUCCESS)
    GTEST_SKIP() << "EMU backend unavailable: " << why;
  posattn_context *ctx = nullptr;
  ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_EMU, 0, &ctx), POSATTN_STATUS_SUCCESS);
  int ran = 0;
  for (posattn_pe_kind kind : kKinds) {
    Problem p;
    MakeProblem(&p, kind, 121 + kind, /*pos0=*/100);
    if (posattn_supported(ctx, &p.desc, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32) !=
        POSATTN_STATUS_SUCCESS)
      continue;
    std::vector<double> out((size_t)p.out_n());
    pat_run run = pat_forward_checked(ctx, &p.desc, &p.tq, &p.tk, &p.tv, POSATTN_DTYPE_F32,
                                      out.data(), nullptr);
    ASSERT_EQ(run.status, POSATTN_STATUS_SUCCESS) << run.message;
    Result e = Emulate(p, "fp32"), g = Emulate(p, "fp64");
    // both are fp32 computations of the same thing: their distance is of the order of each
    // one's distance to fp64, far below bf16 noise
    double emu_err = MaxAbsDiff(out, g.out), lp_err = MaxAbsDiff(e.out, g.out);
    EXPECT_LE(MaxAbsDiff(out, e.out), 4 * std::max(emu_err, lp_err) + 1e-6) << "kind " << kind;
    EXPECT_LT(MaxAbsDiff(out, e.out), 64 * 0x1p-24 * MaxAbs(g.out)) << "kind " << kind;
    ++ran;
  }
  posattn_context_destroy(ctx);
  if (ran == 0) GTEST_SKIP() << "EMU supports none of the fp32 cases";
}

// ---- the tensor-core presets against the EMU tensor-core kernel ----------------------------
// kernels/prefill/mma.cuh (bf16/f16 inputs, head dims 64/128/256) rounds at exactly the points
// the tc presets switch on: q, k, v read in the input dtype; the RoPE angle float(p)*inv_freq
// (FAST) or the product of two fp32 split tables (EXACT), cos/sin and the rotation in fp32, the
// rotated q and k rounded once to the input dtype (operand); q.k and P.V in fp32 accumulators,
// key tiles of KernelKeyTile(d) keys; the softmax in fp32; P rounded to the input dtype
// before P.V (the row sum uses P before that rounding); O/l rounded once to the output dtype.
// Only the order of fp32 operations differs (mma summation order, exp2 in log2 units), so the
// emulation must sit far closer to the kernel than either sits to fp64.

struct TcCase {
  int32_t d;
  int causal;
  posattn_pe_kind kind;
  int exact;  // RoPE with split-table (EXACT) angles
  posattn_dtype dt;
};

std::string Name(const TcCase &c) {
  const char *pe = c.kind == POSATTN_PE_NONE ? "none"
                   : c.kind == POSATTN_PE_ALIBI ? "alibi"
                   : c.exact ? "rope-exact" : "rope";
  return "hd" + std::to_string(c.d) + (c.causal ? " causal " : " full ") + pe +
         (c.dt == POSATTN_DTYPE_BF16 ? " bf16" : " f16");
}

// GQA (2 q heads on 1 kv head), 150 tokens: two query tiles of 128 and three key tiles of 64,
// the last ones partial. RoPE positions start at 5000 so that the angles are not small.
struct TcProblem {
  static constexpr int32_t kLen = 150, kPos0 = 5000;
  posattn_attention_desc desc;
  std::vector<uint16_t> q, k, v;
  std::vector<int32_t> pos;
  posattn_tensor tq, tk, tv;
  int32_t split = 0;  // the kernel's EXACT split 2^s (prefill/tables.cpp: 4^s >= max|p| + 1)
  TcProblem(const TcCase &c, uint64_t seed) {
    posattn_attention_desc_init(&desc);
    desc.batch = 1;
    desc.q_heads = 2;
    desc.kv_heads = 1;
    desc.head_dim = c.d;
    desc.q_len = desc.kv_len = kLen;
    desc.causal = c.causal;
    desc.pe.kind = c.kind;
    if (c.kind == POSATTN_PE_ROPE) {
      pos.resize(kLen);
      for (int32_t j = 0; j < kLen; ++j) pos[(size_t)j] = kPos0 + j;
      desc.q_positions = desc.kv_positions = pos.data();
      if (c.exact) desc.pe.rope.angle_mode = POSATTN_ANGLE_EXACT;
      int32_t s = 1;
      while ((int64_t(1) << (2 * s)) < kPos0 + kLen) ++s;
      split = 1 << s;
    }
    pat_rng r;
    pat_rng_seed(&r, seed);
    for (auto *x : {&q, &k, &v}) {
      int32_t heads = x == &q ? desc.q_heads : desc.kv_heads;
      x->resize((size_t)kLen * heads * c.d);
      for (int64_t i = 0; i < (int64_t)x->size(); ++i) pat_store(x->data(), c.dt, i, pat_rng_normal(&r));
    }
    posattn_tensor_init_contiguous(&tq, q.data(), c.dt, kLen, desc.q_heads, c.d);
    posattn_tensor_init_contiguous(&tk, k.data(), c.dt, kLen, desc.kv_heads, c.d);
    posattn_tensor_init_contiguous(&tv, v.data(), c.dt, kLen, desc.kv_heads, c.d);
  }
  size_t out_n() const { return (size_t)kLen * desc.q_heads * desc.head_dim; }
  // The emulation of `preset` (+ ",key=value..." switches) on the same dt tensors, configured like
  // the kernel for this case (split of the EXACT tables).
  std::vector<double> Emulate(const std::string &config, const TcCase &c) const {
    std::string cfg = config;
    if (c.exact) cfg += ",angle=exact,split=" + std::to_string(split);
    std::vector<double> out(out_n(), NAN);
    char msg[512] = "";
    EXPECT_EQ(pa_drift_shim_forward(cfg.c_str(), &desc, &tq, &tk, &tv, out.data(), nullptr,
                                    nullptr, msg, sizeof msg),
              POSATTN_STATUS_SUCCESS)
        << cfg << ": " << msg;
    return out;
  }
};

std::vector<TcCase> TcCases() {
  std::vector<TcCase> cs;
  for (posattn_dtype dt : {POSATTN_DTYPE_BF16, POSATTN_DTYPE_F16})
    for (int32_t d : {64, 128})
      for (int causal : {0, 1})
        for (posattn_pe_kind kind : {POSATTN_PE_NONE, POSATTN_PE_ROPE, POSATTN_PE_ALIBI})
          cs.push_back({d, causal, kind, 0, dt});
  cs.push_back({128, 1, POSATTN_PE_ROPE, 1, POSATTN_DTYPE_BF16});
  cs.push_back({64, 0, POSATTN_PE_ROPE, 1, POSATTN_DTYPE_F16});
  return cs;
}

class TcVsEmu : public ::testing::Test {
 protected:
  void SetUp() override {
    char why[256] = "";
    if (posattn_backend_available(POSATTN_BACKEND_EMU, why, sizeof why) != POSATTN_STATUS_SUCCESS)
      GTEST_SKIP() << "EMU backend unavailable: " << why;
    ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_EMU, 0, &ctx_), POSATTN_STATUS_SUCCESS);
  }
  void TearDown() override { posattn_context_destroy(ctx_); }
  // The EMU output with out of out_dtype, widened; empty when the chooser would not run the
  // tensor-core kernel (a build whose instance knobs, kernels/prefill/instances.cmake, prune
  // this configuration runs the fp32 SIMT kernel, whose rounding the tc presets do not model).
  std::vector<double> Kernel(const TcProblem &p, posattn_dtype out_dtype) {
    char why[256] = "";
    const char *k = pa_drift_shim_prefill_kernel(&p.desc, p.tq.dtype, out_dtype, why, sizeof why);
    if (k == nullptr || std::string(k) != "mma") {
      ++not_mma_;
      return {};
    }
    std::vector<double> out(p.out_n(), NAN);
    pat_run run = pat_forward_checked(ctx_, &p.desc, &p.tq, &p.tk, &p.tv, out_dtype, out.data(),
                                      nullptr);
    EXPECT_EQ(run.status, POSATTN_STATUS_SUCCESS) << run.message;
    EXPECT_TRUE(run.guards_ok);
    return out;
  }
  posattn_context *ctx_ = nullptr;
  int not_mma_ = 0;  // cases skipped because the tensor-core kernel would not run them
};

const char *Preset(posattn_dtype dt) { return dt == POSATTN_DTYPE_BF16 ? "tc-bf16" : "tc-fp16"; }

// The tensor-core kernel's key tile (kBc of KernelTraits in kernels/prefill/mma.cuh): the online
// softmax rounds P relative to the running maximum at the end of each tile, so the emulation must
// use the same tile. hd64 to hd128 run 64-key tiles, hd192 and hd256 32 (Traits<D>), except the
// per-element bias kernels of hd128 (ALiBi, T5, KERPLE, FIRE with explicit position ids: 32). The
// cases give explicit position ids to RoPE only (TcProblem): the bias kinds take the distance
// band, whose kernels have Traits<D>'s tile.
int KernelKeyTile(const TcCase &c) { return c.d <= 128 ? 64 : 32; }

// The tc preset for a case: dtype, the kernel's key tile, plus `extra` options.
std::string TcPreset(const TcCase &c, const std::string &extra = "") {
  return std::string(Preset(c.dt)) + ",block=" + std::to_string(KernelKeyTile(c)) + extra;
}

double Rms(const std::vector<double> &a, const std::vector<double> &b) {
  double s2 = 0;
  for (size_t i = 0; i < a.size(); ++i) s2 += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(s2 / (double)a.size());
}

TEST_F(TcVsEmu, TcPresetIsFarCloserToTheKernelThanFp64Is) {
  // Output in fp32 so that the comparison sees every rounding point before the store. Measured
  // on this machine (2026-11-28, seeds 200 + case index), over the 26 cases:
  //   RMS|emu - tc| / RMS|emu - fp64|: bf16 0.000-0.028, f16 0.026-0.098;
  //   the same with P not rounded (p=f32): 0.46-1.0; RoPE with the rotated operands not rounded
  //   (operand=f32): 1.08-1.13.
  // RMS, not max: fp32 noise (mma summation order, exp2 in log2 units) moves a P value across a
  // bf16/f16 rounding boundary now and then, and one such flip of a heavy weight moves a whole
  // output row by as much as all the rounding of the row together. The max ratio measured
  // 0.00-0.13 (bf16) and 0.06-0.64 (f16), and the emulation differs from itself by as much when
  // only its fp32 noise changes (tc against tc with fp64 accumulators and softmax: the same max).
  const double kAgree = 0.2, kDisagree = 0.4;
  int seed = 200;
  for (const TcCase &c : TcCases()) {
    TcProblem p(c, (uint64_t)seed++);
    std::vector<double> emu = Kernel(p, POSATTN_DTYPE_F32);
    if (emu.empty()) continue;
    const std::string tc = TcPreset(c, ",output=f32");
    const double to_fp64 = Rms(emu, p.Emulate("fp64", c));
    ASSERT_GT(to_fp64, 0.0) << Name(c);
    EXPECT_LE(Rms(emu, p.Emulate(tc, c)) / to_fp64, kAgree) << Name(c);
    // the comparison tells a rounding point missing from the preset
    EXPECT_GE(Rms(emu, p.Emulate(tc + ",p=f32", c)) / to_fp64, kDisagree) << Name(c) << " p=f32";
    if (c.kind == POSATTN_PE_ROPE) {
      EXPECT_GE(Rms(emu, p.Emulate(tc + ",operand=f32", c)) / to_fp64, kDisagree)
          << Name(c) << " operand=f32";
    }
  }
  if (not_mma_ > 0) GTEST_SKIP() << not_mma_ << " cases not served by the tensor-core kernel here";
}

TEST_F(TcVsEmu, OutputRoundedOnceToTheInputDtype) {
  // With out in the input dtype, kernel and preset round fp32 values that differ by fp32 noise
  // (and the rare P flip above), so nearly every element is bit-identical: measured 99.85-99.99 %
  // (bf16) and 99.00-99.64 % (f16) at hd 128. Without the output rounding (output=f32) the preset
  // matches 0.00-0.68 % of them (causal row 0 is v0 itself, representable either way).
  int seed = 300;
  for (const TcCase &c : TcCases()) {
    if (c.d != 128) continue;
    TcProblem p(c, (uint64_t)seed++);
    std::vector<double> emu = Kernel(p, c.dt);
    if (emu.empty()) continue;
    auto same = [&](const std::vector<double> &x) {
      size_t n = 0;
      for (size_t i = 0; i < x.size(); ++i) n += x[i] == emu[i];
      return (double)n / (double)x.size();
    };
    EXPECT_GE(same(p.Emulate(TcPreset(c), c)), 0.9) << Name(c);
    EXPECT_LE(same(p.Emulate(TcPreset(c, ",output=f32"), c)), 0.1) << Name(c);
  }
  if (not_mma_ > 0) GTEST_SKIP() << not_mma_ << " cases not served by the tensor-core kernel here";
}

TEST(DriftEmulation, ConfigErrorsNameTheToken) {
  Problem p;
  MakeProblem(&p, POSATTN_PE_NONE, 1);
  std::vector<double> out((size_t)p.out_n());
  char msg[512] = "";
  for (const char *bad : {"fp63", "fp64,p=bf17", "fp64,colour=f32", "fp64,block=-1", "fp64,p",
                          "fp64,lazy=65"}) {
    EXPECT_EQ(pa_drift_shim_forward(bad, &p.desc, &p.tq, &p.tk, &p.tv, out.data(), nullptr,
                                    nullptr, msg, sizeof msg),
              POSATTN_STATUS_INVALID_ARGUMENT)
        << bad;
    EXPECT_NE(std::string(msg).find(std::string(bad).substr(std::string(bad).rfind(',') + 1)
                                        .substr(0, 3)),
              std::string::npos)
        << bad << " -> " << msg;
  }
  p.desc.pe.kind = POSATTN_PE_XPOS;
  EXPECT_EQ(pa_drift_shim_forward("fp64", &p.desc, &p.tq, &p.tk, &p.tv, out.data(), nullptr,
                                  nullptr, msg, sizeof msg),
            POSATTN_STATUS_NOT_SUPPORTED);
}

}  // namespace
