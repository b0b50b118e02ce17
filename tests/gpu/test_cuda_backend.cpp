// The CUDA backend on a GPU (label gpu): posattn_forward on device buffers against the fp64 naive
// attention of the test shim, with the DESIGN.md section 5 rule (out and LSE), outputs poisoned
// with NaN before the call. Short shapes check every row; the long ones (4k to 32k, RoPE FAST and
// EXACT, ALiBi) check the last rows of the sequence, which see every key and carry the largest
// positions (bottom-right alignment makes the last n rows of an L x L problem the n x L problem).
// Also: the call is asynchronous on the context's stream and the descriptor's host arrays may be
// overwritten as soon as it returns; supported() and forward agree on NOT_SUPPORTED.
// Without a usable GPU every test skips with the backend's reason.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "pa_test_shim.h"

namespace {

// pat_naive_forward's lowp = 0: the fp64 gold answer.
constexpr posattn_dtype kGold = static_cast<posattn_dtype>(0);

// Device buffer; freed on scope exit.
struct DevBuf {
  void *p = nullptr;
  size_t bytes = 0;
  explicit DevBuf(size_t n) : bytes(n) {
    if (n > 0 && cudaMalloc(&p, n) != cudaSuccess) p = nullptr;
  }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf &) = delete;
  DevBuf &operator=(const DevBuf &) = delete;
};

#define CUDA_OK(expr)                                                         \
  do {                                                                        \
    cudaError_t e_ = (expr);                                                  \
    ASSERT_EQ(e_, cudaSuccess) << #expr << ": " << cudaGetErrorString(e_);    \
  } while (0)

struct Case {
  const char *name;
  posattn_pe_kind pe;
  posattn_angle_mode angle;
  posattn_dtype dt;
  int d, len, hq, hkv, causal;
  int check_rows;  // 0: all rows; else the last check_rows rows of the (single) sequence
  const float *sinks = nullptr;  // [hq] sink logits, or none
};

class CudaBackend : public ::testing::Test {
 protected:
  void SetUp() override {
    char why[512] = "";
    const posattn_status st = posattn_backend_available(POSATTN_BACKEND_CUDA, why, sizeof why);
    if (st != POSATTN_STATUS_SUCCESS)
      GTEST_SKIP() << "CUDA backend unavailable (" << posattn_status_string(st) << "): " << why;
    ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_CUDA, 0, &ctx_), POSATTN_STATUS_SUCCESS);
  }
  void TearDown() override { posattn_context_destroy(ctx_); }
  posattn_context *ctx_ = nullptr;
};

posattn_attention_desc make_desc(const Case &c) {
  posattn_attention_desc d;
  posattn_attention_desc_init(&d);
  d.batch = 1;
  d.q_heads = c.hq;
  d.kv_heads = c.hkv;
  d.head_dim = c.d;
  d.q_len = d.kv_len = c.len;
  d.causal = c.causal;
  d.pe.kind = c.pe;
  d.pe.rope.angle_mode = c.angle;
  d.sink_logits = c.sinks;
  return d;
}

// Copies a host tensor (contiguous, as pat_inputs_random makes them) to the device.
void upload(const pat_buf &host, DevBuf &dev) {
  ASSERT_NE(dev.p, nullptr);
  CUDA_OK(cudaMemcpy(dev.p, host.data, host.bytes, cudaMemcpyHostToDevice));
}

// Runs c on the GPU and checks the checked rows against the fp64 naive attention.
void run_case(posattn_context *ctx, const Case &c) {
  SCOPED_TRACE(c.name);
  const posattn_attention_desc desc = make_desc(c);
  ASSERT_EQ(posattn_supported(ctx, &desc, c.dt, c.dt), POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(ctx);
  pat_rng rng;
  pat_rng_seed(&rng, 0x9e3779b97f4a7c15ull ^ uint64_t(c.len * 131 + c.d));
  pat_inputs in;
  ASSERT_EQ(pat_inputs_random(&in, &desc, c.dt, &rng, 1.0), 0);
  DevBuf q(in.q.bytes), k(in.k.bytes), v(in.v.bytes);
  upload(in.q, q);
  upload(in.k, k);
  upload(in.v, v);

  const size_t esz = posattn_dtype_size(c.dt);
  const int64_t rows = c.len, out_elems = rows * c.hq * c.d, lse_elems = rows * c.hq;
  DevBuf out(size_t(out_elems) * esz), lse(size_t(lse_elems) * sizeof(float));
  ASSERT_NE(out.p, nullptr);
  ASSERT_NE(lse.p, nullptr);
  CUDA_OK(cudaMemset(out.p, 0xff, out.bytes));  // NaN in every dtype
  CUDA_OK(cudaMemset(lse.p, 0xff, lse.bytes));
  size_t ws_bytes = 0;
  ASSERT_EQ(posattn_workspace_size(ctx, &desc, c.dt, c.dt, &ws_bytes), POSATTN_STATUS_SUCCESS);
  DevBuf ws(ws_bytes);
  posattn_tensor tq = in.tq, tk = in.tk, tv = in.tv, to;
  tq.data = q.p;
  tk.data = k.p;
  tv.data = v.p;
  posattn_tensor_init_contiguous(&to, out.p, c.dt, c.len, c.hq, c.d);
  ASSERT_EQ(posattn_forward(ctx, &desc, &tq, &tk, &tv, &to, static_cast<float *>(lse.p), ws.p,
                            ws_bytes),
            POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(ctx);
  CUDA_OK(cudaDeviceSynchronize());

  std::vector<unsigned char> out_host(out.bytes);
  std::vector<float> lse_host(static_cast<size_t>(lse_elems));
  CUDA_OK(cudaMemcpy(out_host.data(), out.p, out.bytes, cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemcpy(lse_host.data(), lse.p, lse.bytes, cudaMemcpyDeviceToHost));

  // The reference problem: the last n rows against every key (n = len checks everything).
  const int n = c.check_rows ? c.check_rows : c.len, first = c.len - n;
  posattn_attention_desc sub = desc;
  sub.q_len = n;
  posattn_tensor sq = in.tq;
  sq.data = static_cast<unsigned char *>(in.q.data) + size_t(first) * size_t(sq.stride_seq) * esz;
  const size_t nv = size_t(n) * c.hq * c.d;
  std::vector<double> ref(nv), base(nv), got(nv), ref_lse(size_t(n) * c.hq),
      base_lse(size_t(n) * c.hq), got_lse(size_t(n) * c.hq);
  ASSERT_EQ(pat_naive_forward(&sub, &sq, &in.tk, &in.tv, c.dt, c.dt, base.data(), base_lse.data()),
            POSATTN_STATUS_SUCCESS);
  ASSERT_EQ(pat_naive_forward(&sub, &sq, &in.tk, &in.tv, kGold, c.dt, ref.data(),
                              ref_lse.data()),
            POSATTN_STATUS_SUCCESS);
  for (size_t i = 0; i < nv; ++i)
    got[i] = pat_load(out_host.data(), c.dt, int64_t(size_t(first) * c.hq * c.d + i));
  for (int h = 0; h < c.hq; ++h)  // lse [hq][len] (batch 1); the reference's is [hq][n]
    for (int i = 0; i < n; ++i) got_lse[size_t(h) * n + i] = lse_host[size_t(h) * c.len + first + i];

  const pat_rule_result r = pat_rule_check(got.data(), base.data(), ref.data(), int64_t(nv), c.dt);
  EXPECT_TRUE(r.pass) << "out: max_err " << r.max_err << " bound " << r.bound << " nmse " << r.nmse
                      << " bad " << r.bad_nonfinite;
  const pat_rule_result rl = pat_rule_check(got_lse.data(), base_lse.data(), ref_lse.data(),
                                            int64_t(n) * c.hq, POSATTN_DTYPE_F32);
  EXPECT_TRUE(rl.pass) << "lse: max_err " << rl.max_err << " bound " << rl.bound;
  pat_inputs_free(&in);
}

}  // namespace

TEST_F(CudaBackend, ShortShapesEveryRow) {
  const Case cases[] = {
      {"bf16_hd128_none_causal_97", POSATTN_PE_NONE, POSATTN_ANGLE_FAST, POSATTN_DTYPE_BF16, 128, 97, 8, 2, 1, 0},
      {"f16_hd64_alibi_17", POSATTN_PE_ALIBI, POSATTN_ANGLE_FAST, POSATTN_DTYPE_F16, 64, 17, 4, 4, 0, 0},
      {"f32_hd64_rope_exact_causal_97", POSATTN_PE_ROPE, POSATTN_ANGLE_EXACT, POSATTN_DTYPE_F32, 64, 97, 4, 1, 1, 0},
      {"bf16_hd256_rope_causal_300", POSATTN_PE_ROPE, POSATTN_ANGLE_FAST, POSATTN_DTYPE_BF16, 256, 300, 2, 1, 1, 0},
      {"bf16_hd128_1", POSATTN_PE_NONE, POSATTN_ANGLE_FAST, POSATTN_DTYPE_BF16, 128, 1, 2, 1, 1, 0},
  };
  for (const Case &c : cases) run_case(ctx_, c);
}

// Per-head sink logits (posattn_attention_desc.sink_logits) on the tensor-core kernel (bf16, f16)
// and the SIMT kernel (f32); the naive reference adds the sink as the header says.
TEST_F(CudaBackend, SinkLogitsOnBothKernels) {
  const float s4[] = {-1.f, 0.5f, 2.f, 60.f}, s2[] = {1.5f, -3e38f};
  const Case cases[] = {
      {"bf16_hd128_sinks_causal_97", POSATTN_PE_NONE, POSATTN_ANGLE_FAST, POSATTN_DTYPE_BF16, 128, 97, 4, 2, 1, 0, s4},
      {"f16_hd64_alibi_sinks_130", POSATTN_PE_ALIBI, POSATTN_ANGLE_FAST, POSATTN_DTYPE_F16, 64, 130, 2, 1, 0, 0, s2},
      {"f32_hd64_rope_sinks_causal_65", POSATTN_PE_ROPE, POSATTN_ANGLE_FAST, POSATTN_DTYPE_F32, 64, 65, 4, 4, 1, 0, s4},
      // on sm_90: the wgmma kernel's sink epilogue at hd256 (Bc = 64, three key tiles)
      {"f16_hd256_sinks_causal_161", POSATTN_PE_NONE, POSATTN_ANGLE_FAST, POSATTN_DTYPE_F16, 256, 161, 2, 1, 1, 0, s4},
  };
  for (const Case &c : cases) run_case(ctx_, c);
}

TEST_F(CudaBackend, LongSequencesRopeAndAlibi) {
  const Case cases[] = {
      {"bf16_hd128_rope_fast_causal_4k", POSATTN_PE_ROPE, POSATTN_ANGLE_FAST, POSATTN_DTYPE_BF16, 128, 4096, 2, 1, 1, 16},
      {"bf16_hd128_rope_exact_causal_16k", POSATTN_PE_ROPE, POSATTN_ANGLE_EXACT, POSATTN_DTYPE_BF16, 128, 16384, 2, 1, 1, 16},
      {"bf16_hd128_rope_exact_causal_32k", POSATTN_PE_ROPE, POSATTN_ANGLE_EXACT, POSATTN_DTYPE_BF16, 128, 32768, 2, 1, 1, 16},
      {"bf16_hd128_alibi_causal_4k", POSATTN_PE_ALIBI, POSATTN_ANGLE_FAST, POSATTN_DTYPE_BF16, 128, 4096, 2, 1, 1, 16},
      {"bf16_hd256_alibi_causal_4k", POSATTN_PE_ALIBI, POSATTN_ANGLE_FAST, POSATTN_DTYPE_BF16, 256, 4096, 2, 1, 1, 16},
      {"f16_hd64_alibi_32k", POSATTN_PE_ALIBI, POSATTN_ANGLE_FAST, POSATTN_DTYPE_F16, 64, 32768, 2, 2, 0, 16},
  };
  for (const Case &c : cases) run_case(ctx_, c);
}

// The descriptor's host arrays may be reused as soon as forward returns, even though the kernel
// has not run yet: the positions are scribbled over before the stream is synchronised.
TEST_F(CudaBackend, HostArraysReusableWhenForwardReturns) {
  cudaStream_t stream = nullptr;
  CUDA_OK(cudaStreamCreate(&stream));
  ASSERT_EQ(posattn_context_set_stream(ctx_, stream), POSATTN_STATUS_SUCCESS);
  const int L = 257, d = 64, hq = 2;
  posattn_attention_desc desc;
  posattn_attention_desc_init(&desc);
  desc.batch = 1;
  desc.q_heads = desc.kv_heads = hq;
  desc.head_dim = d;
  desc.q_len = desc.kv_len = L;
  desc.causal = 1;
  desc.pe.kind = POSATTN_PE_ROPE;
  std::vector<int32_t> pos(L), pos_copy(L);
  for (int i = 0; i < L; ++i) pos[i] = pos_copy[i] = 1000 + 3 * i;
  desc.q_positions = desc.kv_positions = pos.data();

  pat_rng rng;
  pat_rng_seed(&rng, 7);
  pat_inputs in;
  ASSERT_EQ(pat_inputs_random(&in, &desc, POSATTN_DTYPE_BF16, &rng, 1.0), 0);
  DevBuf q(in.q.bytes), k(in.k.bytes), v(in.v.bytes), out(in.q.bytes);
  upload(in.q, q);
  upload(in.k, k);
  upload(in.v, v);
  size_t ws_bytes = 0;
  ASSERT_EQ(posattn_workspace_size(ctx_, &desc, POSATTN_DTYPE_BF16, POSATTN_DTYPE_BF16, &ws_bytes),
            POSATTN_STATUS_SUCCESS);
  EXPECT_GE(ws_bytes, 2 * L * sizeof(int32_t)) << "the positions are staged in the workspace";
  DevBuf ws(ws_bytes);
  posattn_tensor tq = in.tq, tk = in.tk, tv = in.tv, to = in.tq;
  tq.data = q.p;
  tk.data = k.p;
  tv.data = v.p;
  to.data = out.p;
  ASSERT_EQ(posattn_forward(ctx_, &desc, &tq, &tk, &tv, &to, nullptr, ws.p, ws_bytes),
            POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(ctx_);
  for (int i = 0; i < L; ++i) pos[i] = 7;  // the caller reuses its array at once
  CUDA_OK(cudaStreamSynchronize(stream));
  std::vector<unsigned char> got_raw(in.q.bytes);
  CUDA_OK(cudaMemcpy(got_raw.data(), out.p, got_raw.size(), cudaMemcpyDeviceToHost));
  CUDA_OK(cudaStreamDestroy(stream));

  desc.q_positions = desc.kv_positions = pos_copy.data();
  const size_t n = size_t(L) * hq * d;
  std::vector<double> ref(n), base(n), got(n);
  ASSERT_EQ(pat_naive_forward(&desc, &in.tq, &in.tk, &in.tv, kGold, POSATTN_DTYPE_BF16,
                              ref.data(), nullptr),
            POSATTN_STATUS_SUCCESS);
  ASSERT_EQ(pat_naive_forward(&desc, &in.tq, &in.tk, &in.tv, POSATTN_DTYPE_BF16, POSATTN_DTYPE_BF16,
                              base.data(), nullptr),
            POSATTN_STATUS_SUCCESS);
  for (size_t i = 0; i < n; ++i) got[i] = pat_load(got_raw.data(), POSATTN_DTYPE_BF16, int64_t(i));
  const pat_rule_result r = pat_rule_check(got.data(), base.data(), ref.data(), int64_t(n),
                                           POSATTN_DTYPE_BF16);
  EXPECT_TRUE(r.pass) << "max_err " << r.max_err << " bound " << r.bound << " nmse " << r.nmse;
  pat_inputs_free(&in);
}

// A head dim no kernel takes: supported() and forward give the same NOT_SUPPORTED.
TEST_F(CudaBackend, UnsupportedHeadDimAgreesBetweenSupportedAndForward) {
  Case c{"bf16_hd320", POSATTN_PE_NONE, POSATTN_ANGLE_FAST, POSATTN_DTYPE_BF16, 320, 16, 1, 1, 0, 0};
  const posattn_attention_desc desc = make_desc(c);
  EXPECT_EQ(posattn_supported(ctx_, &desc, c.dt, c.dt), POSATTN_STATUS_NOT_SUPPORTED);
  const std::string why = posattn_context_last_message(ctx_);
  EXPECT_NE(why.find("head_dim"), std::string::npos) << why;
  DevBuf in(size_t(c.len) * c.d * 2), out(size_t(c.len) * c.d * 2);
  posattn_tensor t, o;
  posattn_tensor_init_contiguous(&t, in.p, c.dt, c.len, 1, c.d);
  posattn_tensor_init_contiguous(&o, out.p, c.dt, c.len, 1, c.d);
  EXPECT_EQ(posattn_forward(ctx_, &desc, &t, &t, &t, &o, nullptr, nullptr, 0),
            POSATTN_STATUS_NOT_SUPPORTED);
}
