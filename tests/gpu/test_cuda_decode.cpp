// Decode and cache append on the CUDA backend (label gpu): posattn_decode on device pools, q, out,
// lse and workspace against REF (fp64) with the DESIGN.md section 5 rule (baseline: each sequence's
// dense problem gathered from its pages, through the shim's naive attention in the cache dtype).
// Page sizes 1/16/256, shared pages, empty and length-1 sequences, 1 and 4 query tokens, forced and
// automatic splits, RoPE on rotated and un-rotated caches, ALiBi, sinks, contexts of 8k to 128k,
// FP8 caches (e4m3 / e5m2, per-tensor and per-head scales in device memory);
// append against REF's append. Outputs are poisoned with NaN before each call.
// Without a usable GPU every test skips with the backend's reason.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "../cpu/decode_fixture.h"

namespace {

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

class CudaDecode : public ::testing::Test {
 protected:
  void SetUp() override {
    char why[512] = "";
    const posattn_status st = posattn_backend_available(POSATTN_BACKEND_CUDA, why, sizeof why);
    if (st != POSATTN_STATUS_SUCCESS)
      GTEST_SKIP() << "CUDA backend unavailable (" << posattn_status_string(st) << "): " << why;
    ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_CUDA, 0, &cuda_), POSATTN_STATUS_SUCCESS);
    ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, &ref_), POSATTN_STATUS_SUCCESS);
  }
  void TearDown() override {
    posattn_context_destroy(cuda_);
    posattn_context_destroy(ref_);
  }
  posattn_context *cuda_ = nullptr, *ref_ = nullptr;
};

void upload(DevBuf &dev, const pat_buf &host) {
  ASSERT_NE(dev.p, nullptr);
  CUDA_OK(cudaMemcpy(dev.p, host.data, host.bytes, cudaMemcpyHostToDevice));
}

// D's pools and q copied to the device, and D's cache and q descriptors pointing there.
struct DeviceInputs {
  DevBuf k, v, q;
  posattn_kv_cache cache;
  posattn_tensor tq;
  explicit DeviceInputs(const DecodeData &D)
      : k(D.kpool.bytes), v(D.vpool.bytes), q(D.q.bytes), cache(D.cache), tq(D.tq) {
    upload(k, D.kpool);
    upload(v, D.vpool);
    upload(q, D.q);
    cache.k_pages = k.p;
    cache.v_pages = v.p;
    tq.data = q.p;
  }
};

// D's decode on the GPU: pools and q copied to the device, the result copied back.
void run_cuda(posattn_context *ctx, DecodeData &D, posattn_dtype out_dt, DecodeOut &R) {
  const DecodeCase &c = D.c;
  const int64_t rows = int64_t(c.batch) * c.n * c.hq;
  DeviceInputs in(D);
  posattn_kv_cache &cache = in.cache;
  // FP8 scales are backend memory too
  DevBuf ks(D.k_scale.size() * sizeof(float)), vs(D.v_scale.size() * sizeof(float));
  if (!D.k_scale.empty()) {
    CUDA_OK(cudaMemcpy(ks.p, D.k_scale.data(), ks.bytes, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(vs.p, D.v_scale.data(), vs.bytes, cudaMemcpyHostToDevice));
    cache.k_scale = static_cast<const float *>(ks.p);
    cache.v_scale = static_cast<const float *>(vs.p);
  }
  const posattn_tensor &tq = in.tq;
  size_t ws_bytes = 0;
  R.status = posattn_decode_workspace_size(ctx, &D.desc, &cache, c.dt, out_dt, &ws_bytes);
  R.message = posattn_context_last_message(ctx);
  if (R.status != POSATTN_STATUS_SUCCESS) return;
  DevBuf out(size_t(rows) * c.d * posattn_dtype_size(out_dt)), lse(size_t(rows) * sizeof(float));
  DevBuf ws(ws_bytes);
  ASSERT_TRUE(out.p && lse.p && (ws_bytes == 0 || ws.p));
  CUDA_OK(cudaMemset(out.p, 0xff, out.bytes));  // NaN in every dtype
  CUDA_OK(cudaMemset(lse.p, 0xff, lse.bytes));
  posattn_tensor to;
  posattn_tensor_init_contiguous(&to, out.p, out_dt, c.n, c.hq, c.d);
  R.status = posattn_decode(ctx, &D.desc, &cache, &tq, &to, static_cast<float *>(lse.p), ws.p, ws_bytes);
  R.message = posattn_context_last_message(ctx);
  if (R.status != POSATTN_STATUS_SUCCESS) return;
  CUDA_OK(cudaDeviceSynchronize());
  std::vector<unsigned char> oh(out.bytes);
  std::vector<float> lh(static_cast<size_t>(rows));
  CUDA_OK(cudaMemcpy(oh.data(), out.p, out.bytes, cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemcpy(lh.data(), lse.p, lse.bytes, cudaMemcpyDeviceToHost));
  R.out.resize(size_t(rows * c.d));
  R.lse.assign(lh.begin(), lh.end());
  for (int64_t i = 0; i < rows * c.d; ++i) R.out[size_t(i)] = pat_load(oh.data(), out_dt, i);
  R.nan = pat_count_nan(oh.data(), out_dt, rows * c.d) + pat_count_nan(lh.data(), POSATTN_DTYPE_F32, rows);
}

struct Case : DecodeGridRow {  // decode_fixture.h
  bool share, positions, sinks;
  posattn_dtype cache_dt = posattn_dtype(0);  // FP8 caches (q and out stay dt)
  posattn_kv_scale_kind scale_kind = POSATTN_KV_SCALE_PER_TENSOR;
};

void check_case(posattn_context *cuda, posattn_context *ref, const Case &g, uint64_t seed) {
  SCOPED_TRACE(g.name);
  DecodeCase dc = grid_case(g, seed);
  dc.share_prefix = g.share;
  DecodeData D(dc);
  D.desc.pe.kind = g.pe;
  D.cache.k_rotated = g.k_rotated;
  D.desc.num_splits = g.splits;
  std::vector<float> sinks(size_t(g.hq));
  for (int h = 0; h < g.hq; ++h) sinks[size_t(h)] = 0.5f * float(h) - 1.f;
  if (g.sinks) D.desc.sink_logits = sinks.data();
  const posattn_dtype out_dt = g.dt;
  DecodeOut R = run_decode(ref, D, out_dt), G;
  ASSERT_EQ(R.status, POSATTN_STATUS_SUCCESS) << R.message;
  // REF's output in out_dt is rounded; the gold answer is REF in fp32 out (fp64 inside).
  DecodeOut gold = run_decode(ref, D, POSATTN_DTYPE_F32);
  ASSERT_EQ(posattn_decode_supported(cuda, &D.desc, &D.cache, g.dt, out_dt), POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(cuda);
  run_cuda(cuda, D, out_dt, G);
  ASSERT_EQ(G.status, POSATTN_STATUS_SUCCESS) << G.message;
  EXPECT_EQ(G.nan, 0);
  // The section 5 baseline: each sequence's dense problem in the cache dtype (rule_baseline: a
  // rotated cache, which the dense problem cannot express, by the same data without RoPE).
  expect_rule(G.out, rule_baseline(ref, D, gold, out_dt), gold.out, out_dt);
  expect_lse_near(G.lse, gold.lse, 1e-3);
}

const auto BF = POSATTN_DTYPE_BF16, F16 = POSATTN_DTYPE_F16;

}  // namespace

TEST_F(CudaDecode, ShortGridMatchesRef) {
  const Case grid[] = {
      {{"none bf16 page1 split3 empty+len1", POSATTN_PE_NONE, 0, BF, 1, 1, 3, 128, 8, 1, {0, 1, 17, 97}}, false, false, false},
      {{"none f16 page256 auto", POSATTN_PE_NONE, 0, F16, 256, 1, 0, 64, 4, 1, {300, 1}}, false, false, false},
      {{"rope unrotated n4 page16 shared", POSATTN_PE_ROPE, 0, BF, 16, 4, 0, 128, 32, 4, {40, 200, 4}}, true, true, false},
      {{"rope rotated n1 page16", POSATTN_PE_ROPE, 1, BF, 16, 1, 0, 128, 8, 1, {9, 333}}, false, true, false},
      {{"rope rotated n4 split5", POSATTN_PE_ROPE, 1, F16, 16, 4, 5, 64, 8, 2, {33, 150}}, true, false, false},
      {{"alibi sinks page16", POSATTN_PE_ALIBI, 0, BF, 16, 1, 0, 128, 8, 2, {0, 1, 129, 257}}, false, false, true},
      {{"none sinks n4 splits 7", POSATTN_PE_NONE, 0, BF, 16, 4, 7, 128, 8, 1, {100, 4}}, false, false, true},
      {{"hd256 rope page256", POSATTN_PE_ROPE, 0, BF, 256, 1, 0, 256, 4, 1, {700}}, false, false, false},
      {{"fp8 e4m3 per head rope n4", POSATTN_PE_ROPE, 0, BF, 16, 4, 0, 128, 32, 4, {40, 200, 4}}, true, true, false,
       POSATTN_DTYPE_FP8_E4M3, POSATTN_KV_SCALE_PER_HEAD},
      {{"fp8 e5m2 per tensor rotated split5", POSATTN_PE_ROPE, 1, F16, 16, 2, 5, 64, 8, 2, {33, 150}}, false, false, true,
       POSATTN_DTYPE_FP8_E5M2, POSATTN_KV_SCALE_PER_TENSOR},
  };
  uint64_t seed = 100;
  for (const Case &g : grid) check_case(cuda_, ref_, g, seed++);
}

// Long contexts, GQA 8:1 hd128: the automatic split count from the device's SM count, and a forced
// one; REF checks every row (one or four query tokens per sequence).
TEST_F(CudaDecode, LongContextsMatchRef) {
  const Case grid[] = {
      {{"rope unrotated 8k n4", POSATTN_PE_ROPE, 0, BF, 16, 4, 0, 128, 16, 2, {8192, 5000}}, false, false, false},
      {{"rope rotated 32k", POSATTN_PE_ROPE, 1, BF, 16, 1, 0, 128, 8, 1, {32768}}, false, false, false},
      {{"alibi 128k split 64", POSATTN_PE_ALIBI, 0, BF, 16, 1, 64, 128, 8, 1, {131072}}, false, false, true},
      {{"none 128k page256 auto", POSATTN_PE_NONE, 0, F16, 256, 1, 0, 128, 8, 1, {131072}}, false, false, false},
      {{"fp8 e4m3 rope 32k n4", POSATTN_PE_ROPE, 0, BF, 16, 4, 0, 128, 16, 2, {32768, 5000}}, false, false, false,
       POSATTN_DTYPE_FP8_E4M3, POSATTN_KV_SCALE_PER_HEAD},
  };
  uint64_t seed = 200;
  for (const Case &g : grid) check_case(cuda_, ref_, g, seed++);
}

// Append on the GPU writes the same pool bytes as REF's append (V exactly; K rotated in fp32 first
// on a rotated cache, within one rounding of REF's fp64 rotation).
TEST_F(CudaDecode, AppendMatchesRef) {
  for (int rotated : {0, 1}) {
    SCOPED_TRACE(rotated);
    DecodeCase dc;
    dc.dt = POSATTN_DTYPE_BF16;
    dc.page_size = 16;
    dc.hkv = 4;
    dc.d = 128;
    dc.lens = {4, 30};
    DecodeData A(dc);
    A.cache.k_rotated = rotated;
    const int n = 4;
    AppendRows rows(dc, n, 19);
    std::vector<float> &k0 = rows.k, &v0 = rows.v;
    const std::vector<int32_t> start = {1, 14}, cnt = {4, 2}, pos = {100, 101, 102, 103, 70000, 70001, 0, 0};
    const posattn_cache_append_desc a = rope_append_desc(A, n, start, cnt, pos);

    // the GPU's pools start as copies of A's
    DevBuf kp(A.kpool.bytes), vp(A.vpool.bytes), kn(k0.size() * 4), vn(v0.size() * 4);
    upload(kp, A.kpool);
    upload(vp, A.vpool);
    CUDA_OK(cudaMemcpy(kn.p, k0.data(), kn.bytes, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(vn.p, v0.data(), vn.bytes, cudaMemcpyHostToDevice));
    posattn_kv_cache dcache = A.cache;
    dcache.k_pages = kp.p;
    dcache.v_pages = vp.p;
    posattn_tensor tk, tv;
    posattn_tensor_init_contiguous(&tk, kn.p, POSATTN_DTYPE_F32, n, dc.hkv, dc.d);
    posattn_tensor_init_contiguous(&tv, vn.p, POSATTN_DTYPE_F32, n, dc.hkv, dc.d);
    size_t ws = 0;
    ASSERT_EQ(posattn_cache_append_workspace_size(cuda_, &a, &dcache, POSATTN_DTYPE_F32, &ws),
              POSATTN_STATUS_SUCCESS) << posattn_context_last_message(cuda_);
    DevBuf w(ws);
    ASSERT_EQ(posattn_cache_append(cuda_, &a, &dcache, &tk, &tv, w.p, ws), POSATTN_STATUS_SUCCESS)
        << posattn_context_last_message(cuda_);
    CUDA_OK(cudaDeviceSynchronize());
    std::vector<unsigned char> kg(A.kpool.bytes), vg(A.vpool.bytes);
    CUDA_OK(cudaMemcpy(kg.data(), kp.p, kg.size(), cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(vg.data(), vp.p, vg.size(), cudaMemcpyDeviceToHost));

    // REF on the host pools
    posattn_tensor hk, hv;
    posattn_tensor_init_contiguous(&hk, k0.data(), POSATTN_DTYPE_F32, n, dc.hkv, dc.d);
    posattn_tensor_init_contiguous(&hv, v0.data(), POSATTN_DTYPE_F32, n, dc.hkv, dc.d);
    size_t rws = 0;
    ASSERT_EQ(posattn_cache_append_workspace_size(ref_, &a, &A.cache, POSATTN_DTYPE_F32, &rws),
              POSATTN_STATUS_SUCCESS);
    std::vector<unsigned char> rw(rws ? rws : 1);
    ASSERT_EQ(posattn_cache_append(ref_, &a, &A.cache, &hk, &hv, rws ? rw.data() : nullptr, rws),
              POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ref_);

    EXPECT_EQ(0, std::memcmp(vg.data(), A.vpool.data, vg.size()));
    int64_t differ = 0;
    for (int64_t i = 0; i < int64_t(kg.size() / 2); ++i) {
      const double x = pat_load(A.kpool.data, dc.dt, i), y = pat_load(kg.data(), dc.dt, i);
      if (x != y) {
        ++differ;
        EXPECT_LE(std::fabs(x - y), pat_ulp(dc.dt, std::fabs(x)) * 1.01) << i;
      }
    }
    if (!rotated) {
      EXPECT_EQ(differ, 0);
    }
  }
}

// The descriptor's host arrays may be reused as soon as decode returns: the block table and the
// lengths are scribbled over before the stream is synchronised.
TEST_F(CudaDecode, HostArraysReusableWhenDecodeReturns) {
  DecodeCase dc;
  dc.dt = BF;
  dc.hq = 8;
  dc.hkv = 1;
  dc.d = 128;
  dc.page_size = 16;
  dc.lens = {300, 77};
  DecodeData D(dc);
  DecodeOut want = run_decode(ref_, D, POSATTN_DTYPE_F32);
  ASSERT_EQ(want.status, POSATTN_STATUS_SUCCESS) << want.message;
  cudaStream_t stream = nullptr;
  CUDA_OK(cudaStreamCreate(&stream));
  ASSERT_EQ(posattn_context_set_stream(cuda_, stream), POSATTN_STATUS_SUCCESS);
  DeviceInputs in(D);
  const posattn_kv_cache &cache = in.cache;
  const posattn_tensor &tq = in.tq;
  posattn_tensor to;
  const size_t rows = size_t(dc.batch) * dc.hq;
  DevBuf out(rows * dc.d * 4);
  posattn_tensor_init_contiguous(&to, out.p, POSATTN_DTYPE_F32, 1, dc.hq, dc.d);
  size_t ws_bytes = 0;
  ASSERT_EQ(posattn_decode_workspace_size(cuda_, &D.desc, &cache, BF, POSATTN_DTYPE_F32, &ws_bytes),
            POSATTN_STATUS_SUCCESS);
  DevBuf ws(ws_bytes);
  ASSERT_EQ(posattn_decode(cuda_, &D.desc, &cache, &tq, &to, nullptr, ws.p, ws_bytes),
            POSATTN_STATUS_SUCCESS) << posattn_context_last_message(cuda_);
  std::fill(D.block_table.begin(), D.block_table.end(), 0);
  std::fill(D.lens.begin(), D.lens.end(), 1);
  CUDA_OK(cudaStreamSynchronize(stream));
  std::vector<float> got(rows * dc.d);
  CUDA_OK(cudaMemcpy(got.data(), out.p, out.bytes, cudaMemcpyDeviceToHost));
  CUDA_OK(cudaStreamDestroy(stream));
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want.out[i], 2e-3) << i;
}

// head_dim beyond the decode kernels: supported() and decode() give the same NOT_SUPPORTED.
TEST_F(CudaDecode, UnsupportedHeadDimAgrees) {
  DecodeCase dc;
  dc.d = 264;
  dc.lens = {3, 4};
  DecodeData D(dc);
  EXPECT_EQ(posattn_decode_supported(cuda_, &D.desc, &D.cache, dc.dt, dc.dt), POSATTN_STATUS_NOT_SUPPORTED);
  EXPECT_NE(std::string(posattn_context_last_message(cuda_)).find("head_dim 264"), std::string::npos);
  DecodeOut G;
  run_cuda(cuda_, D, dc.dt, G);
  EXPECT_EQ(G.status, POSATTN_STATUS_NOT_SUPPORTED);
}
