// Invariants of attention and of the positional encodings, checked on the REF backend: facts
// that hold whatever the implementation (norm preservation, shift invariance, softmax
// normalisation, GQA = repeated MHA, varlen = separate calls, documents = per-document calls,
// NeoX = permuted GPT-J, empty rows, FIRE segments = MLP).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "pa_test_shim.h"
#include "posattn.h"

namespace {

class RefTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, &ctx_), POSATTN_STATUS_SUCCESS);
    pat_rng_seed(&rng_, 1234);
  }
  void TearDown() override { posattn_context_destroy(ctx_); }

  static posattn_attention_desc Desc(int32_t b, int32_t hq, int32_t hkv, int32_t d, int32_t lq,
                                     int32_t lk) {
    posattn_attention_desc desc;
    posattn_attention_desc_init(&desc);
    desc.batch = b;
    desc.q_heads = hq;
    desc.kv_heads = hkv;
    desc.head_dim = d;
    desc.q_len = lq;
    desc.kv_len = lk;
    return desc;
  }

  // forward with f32 out; checks the run was clean (guards, no NaN left, no NaN lse)
  void Forward(const posattn_attention_desc &desc, const posattn_tensor &q,
               const posattn_tensor &k, const posattn_tensor &v, std::vector<double> *out,
               std::vector<double> *lse) {
    int64_t rows = pat_q_rows(&desc);
    out->assign(rows * desc.q_heads * desc.head_dim, 0);
    lse->assign(rows * desc.q_heads, 0);
    pat_run run = pat_forward_checked(ctx_, &desc, &q, &k, &v, POSATTN_DTYPE_F32, out->data(),
                                      lse->data());
    ASSERT_EQ(run.status, POSATTN_STATUS_SUCCESS) << run.message;
    EXPECT_TRUE(run.guards_ok);
    EXPECT_EQ(run.out_nan, 0);
    EXPECT_EQ(run.lse_nan, 0);
  }

  posattn_context *ctx_ = nullptr;
  pat_rng rng_;
};

// max over i of |a-b| / ulp_f32(b): 0 means identical, <= 1 means one rounding apart
double MaxUlpDiff(const std::vector<double> &a, const std::vector<double> &b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i]) continue;  // also equal infinities
    m = std::max(m, std::fabs(a[i] - b[i]) / pat_ulp(POSATTN_DTYPE_F32, b[i]));
  }
  return m;
}

std::vector<double> RandomVec(pat_rng *r, int n) {
  std::vector<double> x(n);
  for (double &v : x) v = pat_rng_uniform(r, -1, 1);
  return x;
}

double Dot(const std::vector<double> &a, const std::vector<double> &b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

posattn_rope_params Rope(posattn_rope_scaling scaling, posattn_rope_layout layout, int32_t rd) {
  posattn_pe pe;
  posattn_pe_init(&pe);
  pe.rope.scaling = scaling;
  pe.rope.layout = layout;
  pe.rope.rotary_dim = rd;
  switch (scaling) {
    case POSATTN_ROPE_SCALING_YARN: pe.rope.factor = 8; break;
    case POSATTN_ROPE_SCALING_LLAMA3:
      pe.rope.factor = 8;
      pe.rope.original_max_position = 8192;
      pe.rope.base = 500000;
      break;
    case POSATTN_ROPE_SCALING_LINEAR: pe.rope.factor = 3; break;
    default: break;
  }
  return pe.rope;
}

// ---------------------------------------------------------------- RoPE through posattn_pe_rope_apply
TEST(RopeInvariants, PreservesNormAndTail) {
  pat_rng rng;
  pat_rng_seed(&rng, 5);
  for (int32_t d : {8, 64, 128, 256})
    for (int32_t rd : {0, d / 2, 2})
      for (posattn_rope_layout layout : {POSATTN_ROPE_NEOX, POSATTN_ROPE_GPTJ})
        for (posattn_rope_scaling sc : {POSATTN_ROPE_SCALING_NONE, POSATTN_ROPE_SCALING_YARN}) {
          posattn_rope_params rope = Rope(sc, layout, rd);
          int32_t r = rd ? rd : d;
          double af = 0;
          std::vector<double> inv(r / 2);
          ASSERT_EQ(posattn_pe_rope_inv_freq(&rope, d, 1, inv.data(), &af, nullptr, 0),
                    POSATTN_STATUS_SUCCESS);
          for (int64_t pos : {0LL, 1LL, 17LL, 4096LL, 99991LL, 1000000LL}) {
            std::vector<double> x = RandomVec(&rng, d), y(d);
            ASSERT_EQ(posattn_pe_rope_apply(&rope, d, 1, pos, x.data(), y.data()),
                      POSATTN_STATUS_SUCCESS);
            double nx = 0, ny = 0;
            for (int e = 0; e < r; ++e) {
              nx += x[e] * x[e];
              ny += y[e] * y[e];
            }
            EXPECT_NEAR(std::sqrt(ny), af * std::sqrt(nx), 1e-13 * std::sqrt(nx))
                << "d=" << d << " rd=" << rd << " layout=" << layout << " scaling=" << sc
                << " pos=" << pos;
            for (int e = r; e < d; ++e) EXPECT_EQ(y[e], x[e]) << "tail dim " << e;
          }
        }
}

// <R(m)q, R(n)k> depends only on m - n: to 1e-12 of |q||k| for shifts up to 1e6 (fp64 angles).
TEST(RopeInvariants, DotDependsOnlyOnDifference) {
  pat_rng rng;
  pat_rng_seed(&rng, 6);
  const int32_t d = 128;
  for (posattn_rope_scaling sc :
       {POSATTN_ROPE_SCALING_NONE, POSATTN_ROPE_SCALING_YARN, POSATTN_ROPE_SCALING_LLAMA3})
    for (posattn_rope_layout layout : {POSATTN_ROPE_NEOX, POSATTN_ROPE_GPTJ}) {
      posattn_rope_params rope = Rope(sc, layout, 0);
      std::vector<double> q = RandomVec(&rng, d), k = RandomVec(&rng, d);
      double norm = std::sqrt(Dot(q, q) * Dot(k, k));
      std::vector<double> qr(d), kr(d);
      const int64_t m = 10, n = 3;
      posattn_pe_rope_apply(&rope, d, 1, m, q.data(), qr.data());
      posattn_pe_rope_apply(&rope, d, 1, n, k.data(), kr.data());
      double s0 = Dot(qr, kr);
      for (int64_t shift : {1LL, 997LL, 65536LL, 123457LL, 999990LL, 1000000LL}) {
        ASSERT_EQ(posattn_pe_rope_apply(&rope, d, 1, m + shift, q.data(), qr.data()),
                  POSATTN_STATUS_SUCCESS);
        ASSERT_EQ(posattn_pe_rope_apply(&rope, d, 1, n + shift, k.data(), kr.data()),
                  POSATTN_STATUS_SUCCESS);
        EXPECT_LE(std::fabs(Dot(qr, kr) - s0), 1e-12 * norm)
            << "scaling=" << sc << " layout=" << layout << " shift=" << shift
            << " rel=" << std::fabs(Dot(qr, kr) - s0) / norm;
      }
    }
}

// ---------------------------------------------------------------- through posattn_forward
struct ShiftCase {
  const char *name;
  posattn_pe_kind kind;
  posattn_rope_scaling scaling;
};

class ShiftInvariance : public RefTest, public ::testing::WithParamInterface<ShiftCase> {};

// Attention with position ids p and p + s gives the same output and lse (relative methods).
TEST_P(ShiftInvariance, OutputsAgree) {
  const ShiftCase &c = GetParam();
  posattn_attention_desc desc = Desc(1, 4, 2, 64, 13, 29);
  desc.causal = 1;
  desc.pe.kind = c.kind;
  desc.pe.rope.scaling = c.scaling;
  if (c.scaling == POSATTN_ROPE_SCALING_YARN) desc.pe.rope.factor = 4;
  pat_inputs in;
  ASSERT_EQ(pat_inputs_random(&in, &desc, POSATTN_DTYPE_BF16, &rng_, 1.0), 0);
  std::vector<int32_t> qp(13), kp(29);
  for (int j = 0; j < 29; ++j) kp[j] = 3 * j + 1;  // spread positions, not token indices
  for (int i = 0; i < 13; ++i) qp[i] = kp[16 + i];
  desc.q_positions = qp.data();
  desc.kv_positions = kp.data();
  std::vector<double> out0, lse0, out1, lse1;
  Forward(desc, in.tq, in.tk, in.tv, &out0, &lse0);
  for (int32_t shift : {1, 1000, 500000, 999000}) {
    std::vector<int32_t> qs(qp), ks(kp);
    for (int32_t &p : qs) p += shift;
    for (int32_t &p : ks) p += shift;
    desc.q_positions = qs.data();
    desc.kv_positions = ks.data();
    Forward(desc, in.tq, in.tk, in.tv, &out1, &lse1);
    // fp64 inside, one f32 rounding at the end: at most one rounding apart
    EXPECT_LE(MaxUlpDiff(out1, out0), 1.0) << "shift " << shift;
    EXPECT_LE(MaxUlpDiff(lse1, lse0), 1.0) << "shift " << shift;
  }
  pat_inputs_free(&in);
}

const ShiftCase kShiftCases[] = {
    {"rope", POSATTN_PE_ROPE, POSATTN_ROPE_SCALING_NONE},
    {"rope_yarn", POSATTN_PE_ROPE, POSATTN_ROPE_SCALING_YARN},
    {"xpos", POSATTN_PE_XPOS, POSATTN_ROPE_SCALING_NONE},
    {"alibi", POSATTN_PE_ALIBI, POSATTN_ROPE_SCALING_NONE},
};
INSTANTIATE_TEST_SUITE_P(Ref, ShiftInvariance, ::testing::ValuesIn(kShiftCases),
                         [](const ::testing::TestParamInfo<ShiftCase> &i) {
                           return std::string(i.param.name);
                         });

// v = 1 everywhere: every visible row averages ones, so out = 1 exactly up to the f32 rounding.
TEST_F(RefTest, SoftmaxRowsSumToOne) {
  for (posattn_pe_kind kind : {POSATTN_PE_NONE, POSATTN_PE_ROPE, POSATTN_PE_ALIBI}) {
    posattn_attention_desc desc = Desc(2, 6, 3, 32, 17, 23);
    desc.causal = 1;
    desc.window_left = 9;
    desc.softcap = 5.0f;
    desc.pe.kind = kind;
    pat_inputs in;
    ASSERT_EQ(pat_inputs_random(&in, &desc, POSATTN_DTYPE_F16, &rng_, 2.0), 0);
    int64_t nv = pat_kv_rows(&desc) * desc.kv_heads * desc.head_dim;
    for (int64_t e = 0; e < nv; ++e) pat_store(in.v.data, POSATTN_DTYPE_F16, e, 1.0);
    std::vector<double> out, lse;
    Forward(desc, in.tq, in.tk, in.tv, &out, &lse);
    for (double o : out) ASSERT_NEAR(o, 1.0, 1.2e-7) << "kind " << kind;
    // lse is finite and at least the largest visible logit (it is max + log(sum >= 1))
    for (double l : lse) EXPECT_TRUE(std::isfinite(l));
    pat_inputs_free(&in);
  }
}

// GQA/MQA equals MHA with every kv head repeated group times.
TEST_F(RefTest, GqaEqualsRepeatedMha) {
  for (int32_t hkv : {1, 2}) {
    const int32_t hq = 6, d = 64, lq = 9, lk = 14;
    posattn_attention_desc gqa = Desc(2, hq, hkv, d, lq, lk);
    gqa.causal = 1;
    gqa.pe.kind = POSATTN_PE_ROPE;
    pat_inputs in;
    ASSERT_EQ(pat_inputs_random(&in, &gqa, POSATTN_DTYPE_BF16, &rng_, 1.0), 0);
    posattn_attention_desc mha = gqa;
    mha.kv_heads = hq;
    pat_inputs rep;
    ASSERT_EQ(pat_inputs_random(&rep, &mha, POSATTN_DTYPE_BF16, &rng_, 1.0), 0);
    // q is shared; k/v head h of MHA = kv head h / group of GQA
    for (int64_t e = 0; e < pat_q_rows(&gqa) * hq * d; ++e)
      pat_store(rep.q.data, POSATTN_DTYPE_BF16, e, pat_load(in.q.data, POSATTN_DTYPE_BF16, e));
    for (int64_t row = 0; row < pat_kv_rows(&gqa); ++row)
      for (int32_t h = 0; h < hq; ++h)
        for (int32_t e = 0; e < d; ++e) {
          int64_t src = (row * hkv + h / (hq / hkv)) * d + e, dst = (row * hq + h) * d + e;
          pat_store(rep.k.data, POSATTN_DTYPE_BF16, dst, pat_load(in.k.data, POSATTN_DTYPE_BF16, src));
          pat_store(rep.v.data, POSATTN_DTYPE_BF16, dst, pat_load(in.v.data, POSATTN_DTYPE_BF16, src));
        }
    std::vector<double> o1, l1, o2, l2;
    Forward(gqa, in.tq, in.tk, in.tv, &o1, &l1);
    Forward(mha, rep.tq, rep.tk, rep.tv, &o2, &l2);
    EXPECT_LE(MaxUlpDiff(o1, o2), 1.0) << "kv_heads " << hkv;
    EXPECT_LE(MaxUlpDiff(l1, l2), 1.0) << "kv_heads " << hkv;
    pat_inputs_free(&in);
    pat_inputs_free(&rep);
  }
}

// Copies `rows` token rows of a packed [tokens, heads, d] bf16 buffer starting at `from`.
void CopyRows(const void *src, int64_t from, void *dst, int64_t to, int64_t rows, int32_t width) {
  for (int64_t e = 0; e < rows * width; ++e)
    pat_store(dst, POSATTN_DTYPE_BF16, to * width + e,
              pat_load(src, POSATTN_DTYPE_BF16, from * width + e));
}

// Varlen equals one dense call per sequence (default positions are per sequence); a sequence with
// no keys gives 0 and -inf.
TEST_F(RefTest, VarlenEqualsSeparateDenseCalls) {
  const int32_t hq = 4, hkv = 2, d = 32;
  const std::vector<int32_t> lq = {5, 17, 3, 1, 9}, lk = {7, 17, 0, 4, 12};
  std::vector<int32_t> cuq = {0}, cuk = {0};
  for (size_t b = 0; b < lq.size(); ++b) {
    cuq.push_back(cuq.back() + lq[b]);
    cuk.push_back(cuk.back() + lk[b]);
  }
  for (int causal = 0; causal <= 1; ++causal) {
    posattn_attention_desc vd = Desc((int32_t)lq.size(), hq, hkv, d, 17, 17);
    vd.cu_seqlens_q = cuq.data();
    vd.cu_seqlens_kv = cuk.data();
    vd.causal = causal;
    vd.pe.kind = POSATTN_PE_ROPE;
    vd.pe.rope.layout = POSATTN_ROPE_GPTJ;
    pat_inputs in;
    ASSERT_EQ(pat_inputs_random(&in, &vd, POSATTN_DTYPE_BF16, &rng_, 1.0), 0);
    std::vector<double> out, lse;
    Forward(vd, in.tq, in.tk, in.tv, &out, &lse);
    const int64_t total_q = cuq.back();
    for (size_t b = 0; b < lq.size(); ++b) {
      SCOPED_TRACE("sequence " + std::to_string(b) + " causal " + std::to_string(causal));
      if (lk[b] == 0) {
        for (int32_t i = 0; i < lq[b]; ++i)
          for (int32_t h = 0; h < hq; ++h) {
            EXPECT_EQ(lse[(int64_t)h * total_q + cuq[b] + i], -INFINITY);
            for (int32_t e = 0; e < d; ++e)
              EXPECT_EQ(out[((cuq[b] + i) * (int64_t)hq + h) * d + e], 0.0);
          }
        continue;
      }
      posattn_attention_desc dd = vd;
      dd.batch = 1;
      dd.cu_seqlens_q = dd.cu_seqlens_kv = nullptr;
      dd.q_len = lq[b];
      dd.kv_len = lk[b];
      pat_inputs one;
      ASSERT_EQ(pat_inputs_random(&one, &dd, POSATTN_DTYPE_BF16, &rng_, 1.0), 0);
      CopyRows(in.q.data, cuq[b], one.q.data, 0, lq[b], hq * d);
      CopyRows(in.k.data, cuk[b], one.k.data, 0, lk[b], hkv * d);
      CopyRows(in.v.data, cuk[b], one.v.data, 0, lk[b], hkv * d);
      std::vector<double> o1, l1;
      Forward(dd, one.tq, one.tk, one.tv, &o1, &l1);
      std::vector<double> ov(out.begin() + (int64_t)cuq[b] * hq * d,
                             out.begin() + (int64_t)cuq[b + 1] * hq * d);
      EXPECT_LE(MaxUlpDiff(ov, o1), 1.0);
      std::vector<double> lv;  // varlen lse is [hq][total_q]; dense [1][hq][lq]
      for (int32_t h = 0; h < hq; ++h)
        for (int32_t i = 0; i < lq[b]; ++i) lv.push_back(lse[(int64_t)h * total_q + cuq[b] + i]);
      EXPECT_LE(MaxUlpDiff(lv, l1), 1.0);
      pat_inputs_free(&one);
    }
    pat_inputs_free(&in);
  }
}

// Packed documents with shared anchors equal one call per document over [anchors, document]
// with the original position ids; the anchor rows equal a call over the anchors alone.
TEST_F(RefTest, DocumentsWithAnchorEqualPerDocumentCalls) {
  const int32_t hq = 4, hkv = 4, d = 32;
  const std::vector<int32_t> doc_len = {6, 1, 11, 4};
  for (int32_t anchors : {1, 2})
    for (int causal = 0; causal <= 1; ++causal)
      for (posattn_pe_kind kind : {POSATTN_PE_ROPE, POSATTN_PE_ALIBI}) {
        SCOPED_TRACE("anchors " + std::to_string(anchors) + " causal " + std::to_string(causal) +
                     " kind " + std::to_string(kind));
        std::vector<int32_t> doc(anchors, 0);
        for (size_t k = 0; k < doc_len.size(); ++k) doc.insert(doc.end(), doc_len[k], (int32_t)k + 1);
        const int32_t n = (int32_t)doc.size();
        posattn_attention_desc pd = Desc(1, hq, hkv, d, n, n);
        pd.causal = causal;
        pd.doc_ids = doc.data();
        pd.num_anchor_tokens = anchors;
        pd.pe.kind = kind;
        pat_inputs in;
        ASSERT_EQ(pat_inputs_random(&in, &pd, POSATTN_DTYPE_BF16, &rng_, 1.0), 0);
        std::vector<double> out, lse;
        Forward(pd, in.tq, in.tk, in.tv, &out, &lse);

        int32_t start = anchors;
        for (size_t k = 0; k <= doc_len.size(); ++k) {
          // k == doc_len.size(): the anchors alone
          const bool anchor_only = k == doc_len.size();
          const int32_t len = anchor_only ? 0 : doc_len[k];
          const int32_t m = anchors + len;
          std::vector<int32_t> pos;
          for (int32_t t = 0; t < anchors; ++t) pos.push_back(t);
          for (int32_t t = 0; t < len; ++t) pos.push_back(start + t);
          posattn_attention_desc sd = Desc(1, hq, hkv, d, m, m);
          sd.causal = causal;
          sd.q_positions = pos.data();
          sd.kv_positions = pos.data();
          sd.pe.kind = kind;
          pat_inputs one;
          ASSERT_EQ(pat_inputs_random(&one, &sd, POSATTN_DTYPE_BF16, &rng_, 1.0), 0);
          for (const auto &[src, dst, width] :
               {std::tuple{in.q.data, one.q.data, hq * d}, std::tuple{in.k.data, one.k.data, hkv * d},
                std::tuple{in.v.data, one.v.data, hkv * d}}) {
            CopyRows(src, 0, dst, 0, anchors, width);
            CopyRows(src, start, dst, anchors, len, width);
          }
          std::vector<double> o1, l1;
          Forward(sd, one.tq, one.tk, one.tv, &o1, &l1);
          // compare the document's rows (or the anchor rows)
          const int32_t first = anchor_only ? 0 : anchors, count = anchor_only ? anchors : len;
          const int32_t packed_first = anchor_only ? 0 : start;
          std::vector<double> a(out.begin() + (int64_t)packed_first * hq * d,
                                out.begin() + (int64_t)(packed_first + count) * hq * d);
          std::vector<double> b(o1.begin() + (int64_t)first * hq * d,
                                o1.begin() + (int64_t)(first + count) * hq * d);
          EXPECT_LE(MaxUlpDiff(a, b), 1.0) << "document " << k;
          std::vector<double> la, lb;
          for (int32_t h = 0; h < hq; ++h)
            for (int32_t i = 0; i < count; ++i) {
              la.push_back(lse[(int64_t)h * n + packed_first + i]);
              lb.push_back(l1[(int64_t)h * m + first + i]);
            }
          EXPECT_LE(MaxUlpDiff(la, lb), 1.0) << "document " << k;
          pat_inputs_free(&one);
          start += len;
        }
        pat_inputs_free(&in);
      }
}

// GPT-J layout = NeoX layout on inputs whose rotary dims are permuted (even dims first, then
// odd dims); the logits are dot products, so the outputs agree.
TEST_F(RefTest, NeoxGptjAgreeUpToPermutation) {
  for (int32_t rd : {0, 16})
    for (posattn_pe_kind kind : {POSATTN_PE_ROPE, POSATTN_PE_XPOS}) {
      const int32_t hq = 2, d = 64, n = 19;
      const int32_t r = rd ? rd : d;
      posattn_attention_desc g = Desc(1, hq, hq, d, n, n);
      g.causal = 1;
      g.pe.kind = kind;
      g.pe.rope.rotary_dim = rd;
      g.pe.rope.layout = POSATTN_ROPE_GPTJ;
      pat_inputs in;
      ASSERT_EQ(pat_inputs_random(&in, &g, POSATTN_DTYPE_F32, &rng_, 1.0), 0);
      posattn_attention_desc x = g;
      x.pe.rope.layout = POSATTN_ROPE_NEOX;
      pat_inputs perm;
      ASSERT_EQ(pat_inputs_random(&perm, &x, POSATTN_DTYPE_F32, &rng_, 1.0), 0);
      for (int64_t row = 0; row < (int64_t)n * hq; ++row)
        for (int32_t e = 0; e < d; ++e) {
          // permuted dim e takes original dim 2e (first half) or 2(e - r/2) + 1 (second half)
          int32_t src = e >= r ? e : (e < r / 2 ? 2 * e : 2 * (e - r / 2) + 1);
          for (auto [s, t] : {std::pair{in.q.data, perm.q.data}, std::pair{in.k.data, perm.k.data}})
            pat_store(t, POSATTN_DTYPE_F32, row * d + e, pat_load(s, POSATTN_DTYPE_F32, row * d + src));
          pat_store(perm.v.data, POSATTN_DTYPE_F32, row * d + e,
                    pat_load(in.v.data, POSATTN_DTYPE_F32, row * d + e));
        }
      std::vector<double> o1, l1, o2, l2;
      Forward(g, in.tq, in.tk, in.tv, &o1, &l1);
      Forward(x, perm.tq, perm.tk, perm.tv, &o2, &l2);
      EXPECT_LE(MaxUlpDiff(o1, o2), 1.0) << "rotary_dim " << rd << " kind " << kind;
      EXPECT_LE(MaxUlpDiff(l1, l2), 1.0) << "rotary_dim " << rd << " kind " << kind;
      pat_inputs_free(&in);
      pat_inputs_free(&perm);
    }
}

// Rows with no visible key give out 0 and lse -inf, never NaN.
TEST_F(RefTest, EmptyRowsGiveZeroAndMinusInf) {
  struct Setup {
    const char *what;
    int32_t lq, lk, causal, wl, wr;
    int32_t first_visible;  // rows before this are empty
  } setups[] = {
      {"causal q_len > kv_len", 7, 4, 1, -1, -1, 3},
      {"window beyond the keys", 6, 3, 0, 0, 0, 3},
      {"causal+window", 9, 5, 1, 1, -1, 4},
  };
  for (const Setup &s : setups) {
    SCOPED_TRACE(s.what);
    posattn_attention_desc desc = Desc(2, 2, 1, 16, s.lq, s.lk);
    desc.causal = s.causal;
    desc.window_left = s.wl;
    desc.window_right = s.wr;
    desc.pe.kind = POSATTN_PE_ALIBI;
    pat_inputs in;
    ASSERT_EQ(pat_inputs_random(&in, &desc, POSATTN_DTYPE_BF16, &rng_, 1.0), 0);
    std::vector<double> out, lse;
    Forward(desc, in.tq, in.tk, in.tv, &out, &lse);
    for (int32_t b = 0; b < 2; ++b)
      for (int32_t h = 0; h < 2; ++h)
        for (int32_t i = 0; i < s.lq; ++i) {
          double l = lse[((int64_t)b * 2 + h) * s.lq + i];
          const double *o = &out[(((int64_t)b * s.lq + i) * 2 + h) * 16];
          if (i < s.first_visible) {
            EXPECT_EQ(l, -INFINITY) << "row " << i;
            for (int e = 0; e < 16; ++e) EXPECT_EQ(o[e], 0.0) << "row " << i;
          } else {
            EXPECT_TRUE(std::isfinite(l)) << "row " << i;
            EXPECT_NE(o[0], 0.0) << "row " << i;
          }
        }
    pat_inputs_free(&in);
  }
}

// ---------------------------------------------------------------- FIRE segments vs MLP
TEST(FireSegments, AgreeWithMlp) {
  pat_rng rng;
  pat_rng_seed(&rng, 99);
  for (int t = 0; t < 40; ++t) {
    const int32_t width = t < 4 ? 1 + t : pat_rng_int(&rng, 1, 96), hq = pat_rng_int(&rng, 1, 8);
    std::vector<float> w1(width), b1(width), w2(hq * width), b2(hq);
    for (int32_t k = 0; k < width; ++k) {
      w1[k] = (float)pat_rng_uniform(&rng, -3, 3);
      b1[k] = (float)pat_rng_uniform(&rng, -2, 2);
      if (k % 7 == 3) w1[k] = 0;              // a constant unit (no kink)
      if (k % 5 == 1) b1[k] = -w1[k] * 0.5f;  // kinks that coincide at x = 0.5
    }
    for (float &x : w2) x = (float)pat_rng_uniform(&rng, -2, 2);
    for (float &x : b2) x = (float)pat_rng_uniform(&rng, -2, 2);
    posattn_pe pe;
    posattn_pe_init(&pe);
    posattn_fire_params f = pe.fire;
    f.mlp_width = width;
    f.w1 = w1.data();
    f.b1 = b1.data();
    f.w2 = w2.data();
    f.b2 = b2.data();
    pat_fire_segs *segs = nullptr;
    char msg[256] = "";
    ASSERT_EQ(pat_fire_segments_build(&f, hq, &segs, msg, sizeof msg), POSATTN_STATUS_SUCCESS) << msg;
    const int32_t nseg = pat_fire_segments_count(segs);
    EXPECT_GE(nseg, 1);
    EXPECT_LE(nseg, width + 1);
    EXPECT_EQ(pat_fire_segments_start(segs, 0), 0.0);
    for (int32_t s = 1; s < nseg; ++s)
      EXPECT_GT(pat_fire_segments_start(segs, s), pat_fire_segments_start(segs, s - 1));
    // evaluation points: ends, every kink inside [0,1] and its neighbours, random points
    std::vector<double> xs = {0.0, 1.0, 0.5, std::nextafter(0.5, 0.0), std::nextafter(0.5, 1.0)};
    for (int32_t k = 0; k < width; ++k) {
      if (w1[k] == 0) continue;
      double kink = -(double)b1[k] / (double)w1[k];
      if (kink < 0 || kink > 1) continue;
      for (double dx : {0.0, 1e-12, -1e-12, 1e-7, -1e-7}) xs.push_back(std::clamp(kink + dx, 0.0, 1.0));
    }
    for (int i = 0; i < 200; ++i) xs.push_back(pat_rng_uniform(&rng, 0, 1));
    for (int32_t h = 0; h < hq; ++h) {
      // magnitude of the terms summed: the scale an exact evaluation can be held to
      double mag = std::fabs(b2[h]);
      for (int32_t k = 0; k < width; ++k)
        mag += std::fabs(w2[h * width + k]) * (std::fabs(w1[k]) + std::fabs(b1[k]));
      for (double x : xs) {
        double mlp = pat_fire_mlp_eval(&f, hq, h, x);
        double want = b2[h];
        for (int32_t k = 0; k < width; ++k)
          want += (double)w2[h * width + k] * std::max(0.0, (double)w1[k] * x + (double)b1[k]);
        EXPECT_NEAR(mlp, want, 1e-13 * mag) << "MLP, case " << t << " head " << h << " x " << x;
        EXPECT_NEAR(pat_fire_segments_eval(segs, h, x), mlp, 1e-12 * mag)
            << "case " << t << " width " << width << " head " << h << " x " << x;
      }
    }
    pat_fire_segments_free(segs);
  }
}

// ---------------------------------------------------------------- biases added correctly
class BiasInForward : public RefTest, public ::testing::WithParamInterface<posattn_pe_kind> {};

// REF against the shim's fp64 attention, which adds posattn_pe_bias explicitly per (i, j).
TEST_P(BiasInForward, MatchesExplicitBias) {
  const int32_t hq = 4;
  std::vector<float> a = {0.3f, 1.2f, 0.05f, 2.0f}, p = {0.7f, 1.5f, 0.2f, 1.9f};
  std::vector<float> w1(8), b1(8), w2(hq * 8), b2(hq), table(32 * hq);
  for (float &x : w1) x = (float)pat_rng_uniform(&rng_, -2, 2);
  for (float &x : b1) x = (float)pat_rng_uniform(&rng_, -1, 1);
  for (float &x : w2) x = (float)pat_rng_uniform(&rng_, -1, 1);
  for (float &x : b2) x = (float)pat_rng_uniform(&rng_, -1, 1);
  for (float &x : table) x = (float)pat_rng_uniform(&rng_, -2, 2);
  posattn_attention_desc desc = Desc(2, hq, 2, 32, 21, 33);
  desc.causal = 1;
  desc.pe.kind = GetParam();
  desc.pe.kerple.a = a.data();
  desc.pe.kerple.p = p.data();
  desc.pe.fire.mlp_width = 8;
  desc.pe.fire.w1 = w1.data();
  desc.pe.fire.b1 = b1.data();
  desc.pe.fire.w2 = w2.data();
  desc.pe.fire.b2 = b2.data();
  desc.pe.fire.L = 16;
  desc.pe.t5.table = table.data();
  pat_inputs in;
  ASSERT_EQ(pat_inputs_random(&in, &desc, POSATTN_DTYPE_F32, &rng_, 1.0), 0);
  std::vector<double> out, lse;
  Forward(desc, in.tq, in.tk, in.tv, &out, &lse);
  std::vector<double> o64(out.size()), l64(lse.size());
  ASSERT_EQ(pat_naive_forward(&desc, &in.tq, &in.tk, &in.tv, (posattn_dtype)0, POSATTN_DTYPE_F32,
                              o64.data(), l64.data()),
            POSATTN_STATUS_SUCCESS);
  EXPECT_LE(MaxUlpDiff(out, o64), 1.0);
  EXPECT_LE(MaxUlpDiff(lse, l64), 1.0);
  // without the bias the answer is different: the bias is not silently dropped
  posattn_attention_desc plain = desc;
  plain.pe.kind = POSATTN_PE_NONE;
  std::vector<double> o0, l0;
  Forward(plain, in.tq, in.tk, in.tv, &o0, &l0);
  EXPECT_GT(MaxUlpDiff(o0, out), 100.0);
  pat_inputs_free(&in);
}

INSTANTIATE_TEST_SUITE_P(Ref, BiasInForward,
                         ::testing::Values(POSATTN_PE_ALIBI, POSATTN_PE_KERPLE_LOG,
                                           POSATTN_PE_KERPLE_POWER, POSATTN_PE_T5, POSATTN_PE_FIRE),
                         [](const ::testing::TestParamInfo<posattn_pe_kind> &i) {
                           switch (i.param) {
                             case POSATTN_PE_ALIBI: return std::string("alibi");
                             case POSATTN_PE_KERPLE_LOG: return std::string("kerple_log");
                             case POSATTN_PE_KERPLE_POWER: return std::string("kerple_power");
                             case POSATTN_PE_T5: return std::string("t5");
                             default: return std::string("fire");
                           }
                         });

}  // namespace
