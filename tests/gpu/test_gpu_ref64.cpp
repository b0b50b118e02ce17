// The fp64 GPU reference (kernels/ref64/gpu_ref64.h), label gpu.
//
// Ref64Bias (runs everywhere): the reference's bias code, run on the host, equals posattn_pe_bias
// for every bias method over many position pairs: the device port of pa_pe_bias_eval is checked
// without a GPU.
// Ref64VsRef (needs a GPU; skips with the CUDA error otherwise): pa_gpu_ref64_forward on device
// buffers against the REF backend on the same inputs, every positional encoding, causal / window
// / documents with anchors / varlen / GQA / softcap / q_len < kv_len, each input dtype. REF stores
// fp32 out and lse (its fp64 result rounded once), so agreement is within one fp32 rounding plus
// fp64 noise; a wrong formula is off by orders of magnitude more.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "gpu_ref64.h"
#include "pa_test_shim.h"

namespace {

// PE parameter arrays for q_heads heads, kept alive with the descriptor that points at them.
struct PeArrays {
  std::vector<float> slopes, w1, b1, w2, b2, table, ka, kp;
  void fill(posattn_pe *pe, int hq, pat_rng *r) {
    const int w = 8;
    switch (pe->kind) {
      case POSATTN_PE_ALIBI:
        for (int h = 0; h < hq; ++h) slopes.push_back(float(pat_rng_uniform(r, 0.01, 0.5)));
        pe->alibi.slopes = slopes.data();
        break;
      case POSATTN_PE_FIRE:
        for (int i = 0; i < w; ++i) {
          w1.push_back(float(pat_rng_uniform(r, -2, 2)));
          b1.push_back(float(pat_rng_uniform(r, -1, 1)));
        }
        for (int i = 0; i < w * hq; ++i) w2.push_back(float(pat_rng_uniform(r, -1, 1)));
        for (int h = 0; h < hq; ++h) b2.push_back(float(pat_rng_uniform(r, -1, 1)));
        pe->fire.mlp_width = w;
        pe->fire.w1 = w1.data();
        pe->fire.b1 = b1.data();
        pe->fire.w2 = w2.data();
        pe->fire.b2 = b2.data();
        pe->fire.L = 16;  // below the test lengths: the max(L, pq) branch is exercised
        break;
      case POSATTN_PE_T5:
        pe->t5.num_buckets = 16;
        pe->t5.max_distance = 40;
        pe->t5.bidirectional = 1;
        for (int i = 0; i < 16 * hq; ++i) table.push_back(float(pat_rng_uniform(r, -2, 2)));
        pe->t5.table = table.data();
        break;
      case POSATTN_PE_KERPLE_LOG:
      case POSATTN_PE_KERPLE_POWER:
        for (int h = 0; h < hq; ++h) {
          ka.push_back(float(pat_rng_uniform(r, 0.05, 1)));
          kp.push_back(float(pat_rng_uniform(r, 0.2, 2)));
        }
        pe->kerple.a = ka.data();
        pe->kerple.p = kp.data();
        break;
      default: break;
    }
  }
};

const posattn_pe_kind kBiasKinds[] = {POSATTN_PE_ALIBI, POSATTN_PE_FIRE, POSATTN_PE_T5,
                                      POSATTN_PE_KERPLE_LOG, POSATTN_PE_KERPLE_POWER};

}  // namespace

TEST(Ref64Bias, HostRunOfTheDeviceCodeEqualsPosattnPeBias) {
  pat_rng r;
  pat_rng_seed(&r, 0xB1A5);
  const int hq = 6;
  for (posattn_pe_kind kind : kBiasKinds) {
    posattn_pe pe;
    posattn_pe_init(&pe);
    pe.kind = kind;
    PeArrays arr;
    arr.fill(&pe, hq, &r);
    if (kind == POSATTN_PE_ALIBI) pe.alibi.slopes = nullptr;  // the standard slopes path too
    int nonzero = 0;
    for (int t = 0; t < 400; ++t) {
      const int64_t pq = pat_rng_int(&r, 0, 1 << 20), pk = t % 4 ? pat_rng_int(&r, 0, 1 << 20)
                                                                 : pq - pat_rng_int(&r, -50, 50);
      const int h = pat_rng_int(&r, 0, hq - 1);
      double want = 0, got = 0;
      ASSERT_EQ(posattn_pe_bias(&pe, hq, h, pq, pk < 0 ? 0 : pk, &want), POSATTN_STATUS_SUCCESS);
      ASSERT_EQ(pa_gpu_ref64_bias_host(&pe, hq, h, pq, pk < 0 ? 0 : pk, &got),
                POSATTN_STATUS_SUCCESS);
      EXPECT_DOUBLE_EQ(got, want) << "kind " << kind << " pq " << pq << " pk " << pk << " h " << h;
      nonzero += want != 0;
    }
    EXPECT_GT(nonzero, 100) << "kind " << kind;  // the comparison saw real biases
  }
}

namespace {

struct DevBuf {
  void *p = nullptr;
  explicit DevBuf(size_t n) {
    if (cudaMalloc(&p, n > 0 ? n : 1) != cudaSuccess) p = nullptr;
  }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf &) = delete;
  DevBuf &operator=(const DevBuf &) = delete;
};

class Ref64VsRef : public ::testing::Test {
 protected:
  void SetUp() override {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess)
      GTEST_SKIP() << "no GPU for the fp64 GPU reference: cudaGetDeviceCount: "
                   << cudaGetErrorString(e) << " (" << cudaGetErrorName(e) << ")";
    if (n == 0) GTEST_SKIP() << "no GPU for the fp64 GPU reference: no CUDA device";
    ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, &ref_), POSATTN_STATUS_SUCCESS);
  }
  void TearDown() override { posattn_context_destroy(ref_); }
  posattn_context *ref_ = nullptr;
};

struct Case {
  std::string name;
  posattn_attention_desc desc;
  posattn_dtype dt;
};

// Runs one case on the GPU reference and on REF and compares out and lse row by row.
void check(posattn_context *ref, const Case &c, uint64_t seed) {
  SCOPED_TRACE(c.name);
  const posattn_attention_desc &desc = c.desc;
  pat_rng rng;
  pat_rng_seed(&rng, seed);
  pat_inputs in;
  ASSERT_EQ(pat_inputs_random(&in, &desc, c.dt, &rng, 1.0), 0);
  const int64_t rows = pat_q_rows(&desc), n_out = rows * desc.q_heads * desc.head_dim;
  const int64_t n_lse = rows * desc.q_heads;

  // REF: fp32 out and lse, then widened
  pat_buf out32, lse32;
  ASSERT_EQ(pat_buf_alloc(&out32, size_t(n_out) * 4), 0);
  ASSERT_EQ(pat_buf_alloc(&lse32, size_t(n_lse) * 4), 0);
  posattn_tensor to;
  posattn_tensor_init_contiguous(&to, out32.data, POSATTN_DTYPE_F32,
                                 desc.cu_seqlens_q ? int32_t(rows) : desc.q_len, desc.q_heads,
                                 desc.head_dim);
  size_t ws_bytes = 0;
  ASSERT_EQ(posattn_workspace_size(ref, &desc, c.dt, POSATTN_DTYPE_F32, &ws_bytes),
            POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(ref);
  pat_buf ws;
  ASSERT_EQ(pat_buf_alloc(&ws, ws_bytes), 0);
  ASSERT_EQ(posattn_forward(ref, &desc, &in.tq, &in.tk, &in.tv, &to,
                            static_cast<float *>(lse32.data), ws.data, ws_bytes),
            POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(ref);

  // GPU reference
  DevBuf q(in.q.bytes), k(in.k.bytes), v(in.v.bytes), out(size_t(n_out) * 8), lse(size_t(n_lse) * 8);
  ASSERT_TRUE(q.p && k.p && v.p && out.p && lse.p);
  ASSERT_EQ(cudaMemcpy(q.p, in.q.data, in.q.bytes, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(k.p, in.k.data, in.k.bytes, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(v.p, in.v.data, in.v.bytes, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemset(out.p, 0xff, size_t(n_out) * 8), cudaSuccess);  // NaN poison
  ASSERT_EQ(cudaMemset(lse.p, 0xff, size_t(n_lse) * 8), cudaSuccess);
  posattn_tensor tq = in.tq, tk = in.tk, tv = in.tv;
  tq.data = q.p;
  tk.data = k.p;
  tv.data = v.p;
  char msg[512] = "";
  ASSERT_EQ(pa_gpu_ref64_forward(&desc, &tq, &tk, &tv, static_cast<double *>(out.p),
                                 static_cast<double *>(lse.p), 0, msg, sizeof msg),
            POSATTN_STATUS_SUCCESS)
      << msg;
  std::vector<double> got(static_cast<size_t>(n_out)), got_lse(static_cast<size_t>(n_lse));
  ASSERT_EQ(cudaMemcpy(got.data(), out.p, got.size() * 8, cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(got_lse.data(), lse.p, got_lse.size() * 8, cudaMemcpyDeviceToHost),
            cudaSuccess);

  // one fp32 rounding of REF's fp64 value (half an ulp) plus room for fp64 summation order
  auto close = [](double g, double r) {
    if (std::isinf(r)) return g == r;
    return std::isfinite(g) && std::fabs(g - r) <= pat_ulp(POSATTN_DTYPE_F32, r) + 1e-12;
  };
  int64_t bad = 0, empty_rows = 0;
  for (int64_t i = 0; i < n_out; ++i) {
    const double r = pat_load(out32.data, POSATTN_DTYPE_F32, i);
    if (!close(got[size_t(i)], r) && bad++ < 5)
      ADD_FAILURE() << "out[" << i << "] gpu " << got[size_t(i)] << " ref " << r;
  }
  for (int64_t i = 0; i < n_lse; ++i) {
    const double r = pat_load(lse32.data, POSATTN_DTYPE_F32, i);
    empty_rows += std::isinf(r);
    if (!close(got_lse[size_t(i)], r) && bad++ < 10)
      ADD_FAILURE() << "lse[" << i << "] gpu " << got_lse[size_t(i)] << " ref " << r;
  }
  EXPECT_EQ(bad, 0);
  EXPECT_LT(empty_rows, n_lse);  // the case computed something
  pat_buf_free(&ws);
  pat_buf_free(&out32);
  pat_buf_free(&lse32);
  pat_inputs_free(&in);
}

posattn_attention_desc base_desc(int hq, int hkv, int d, int lq, int lk) {
  posattn_attention_desc desc;
  posattn_attention_desc_init(&desc);
  desc.batch = 2;
  desc.q_heads = hq;
  desc.kv_heads = hkv;
  desc.head_dim = d;
  desc.q_len = lq;
  desc.kv_len = lk;
  return desc;
}

}  // namespace

TEST_F(Ref64VsRef, EveryPositionalEncodingCausal) {
  const posattn_pe_kind kinds[] = {POSATTN_PE_NONE,  POSATTN_PE_ROPE,       POSATTN_PE_XPOS,
                                   POSATTN_PE_ALIBI, POSATTN_PE_FIRE,       POSATTN_PE_T5,
                                   POSATTN_PE_KERPLE_LOG, POSATTN_PE_KERPLE_POWER};
  pat_rng r;
  pat_rng_seed(&r, 0x64);
  for (posattn_pe_kind kind : kinds) {
    Case c{"pe kind " + std::to_string(kind), base_desc(4, 2, 64, 97, 97), POSATTN_DTYPE_BF16};
    c.desc.causal = 1;
    c.desc.pe.kind = kind;
    if (kind == POSATTN_PE_XPOS) c.desc.pe.rope.layout = POSATTN_ROPE_GPTJ;
    PeArrays arr;
    arr.fill(&c.desc.pe, c.desc.q_heads, &r);
    check(ref_, c, 0x100 + uint64_t(kind));
  }
}

// Per-head sink logits (one far above the logits), causal with more queries than keys: the rows
// that see no key get out 0 and lse = their sink, as in REF.
TEST_F(Ref64VsRef, SinkLogits) {
  Case c{"sinks causal q > kv", base_desc(4, 2, 64, 40, 25), POSATTN_DTYPE_BF16};
  c.desc.causal = 1;
  const std::vector<float> sinks = {-1.f, 0.5f, 2.f, 60.f};
  c.desc.sink_logits = sinks.data();
  check(ref_, c, 0x51);
}

TEST_F(Ref64VsRef, RopeScalingsAndLayouts) {
  pat_rng r;
  pat_rng_seed(&r, 0x65);
  // partial rotary GPTJ with YaRN, NEOX with Llama 3; positions far out (1e6) with f16/f32 inputs
  Case a{"gptj partial yarn f16", base_desc(2, 1, 128, 33, 65), POSATTN_DTYPE_F16};
  a.desc.pe.kind = POSATTN_PE_ROPE;
  a.desc.pe.rope.layout = POSATTN_ROPE_GPTJ;
  a.desc.pe.rope.rotary_dim = 64;
  a.desc.pe.rope.scaling = POSATTN_ROPE_SCALING_YARN;
  a.desc.pe.rope.factor = 4;
  check(ref_, a, 1);
  Case b{"neox llama3 far positions f32", base_desc(4, 4, 64, 16, 40), POSATTN_DTYPE_F32};
  b.desc.batch = 1;
  b.desc.pe.kind = POSATTN_PE_ROPE;
  b.desc.pe.rope.scaling = POSATTN_ROPE_SCALING_LLAMA3;
  b.desc.pe.rope.factor = 8;
  b.desc.pe.rope.original_max_position = 8192;
  std::vector<int32_t> qp(16), kp(40);
  for (int i = 0; i < 16; ++i) qp[size_t(i)] = 1000000 + 24 + i;
  for (int j = 0; j < 40; ++j) kp[size_t(j)] = 1000000 + j;
  b.desc.q_positions = qp.data();
  b.desc.kv_positions = kp.data();
  b.desc.causal = 1;
  check(ref_, b, 2);
}

TEST_F(Ref64VsRef, MasksSoftcapVarlenDocuments) {
  pat_rng r;
  pat_rng_seed(&r, 0x66);
  Case w{"window + softcap + alibi, lq < lk", base_desc(4, 1, 64, 50, 130), POSATTN_DTYPE_BF16};
  w.desc.causal = 1;
  w.desc.window_left = 17;
  w.desc.softcap = 5.0f;
  w.desc.pe.kind = POSATTN_PE_ALIBI;
  PeArrays aw;
  aw.fill(&w.desc.pe, 4, &r);
  check(ref_, w, 3);

  Case nc{"non-causal two-sided window rope", base_desc(2, 2, 32, 70, 70), POSATTN_DTYPE_F32};
  nc.desc.window_left = 9;
  nc.desc.window_right = 4;
  nc.desc.pe.kind = POSATTN_PE_ROPE;
  check(ref_, nc, 4);

  // varlen: three sequences (one empty), documents with two anchor tokens, FIRE
  Case dv{"varlen documents anchors fire", base_desc(4, 2, 64, 40, 40), POSATTN_DTYPE_BF16};
  const std::vector<int32_t> cu = {0, 40, 40, 71};
  dv.desc.batch = 3;
  dv.desc.cu_seqlens_q = cu.data();
  dv.desc.cu_seqlens_kv = cu.data();
  std::vector<int32_t> docs(71);
  for (int t = 0; t < 40; ++t) docs[size_t(t)] = t < 13 ? 0 : t < 29 ? 1 : 2;
  for (int t = 40; t < 71; ++t) docs[size_t(t)] = t < 55 ? 0 : 1;
  dv.desc.doc_ids = docs.data();
  dv.desc.num_anchor_tokens = 2;
  dv.desc.causal = 1;
  dv.desc.pe.kind = POSATTN_PE_FIRE;
  PeArrays af;
  af.fill(&dv.desc.pe, 4, &r);
  check(ref_, dv, 5);
}
