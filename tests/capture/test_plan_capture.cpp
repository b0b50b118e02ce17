// test_plan_capture.cpp -- proof without a GPU that a plan's run and append on the CUDA backend
// can be captured in a CUDA graph (issue 13, item 7): the backend's host code
// (kernels/paged/cuda_run.cpp) runs against the recording stand-in of cuda_standin.hpp, and the
// tests assert that run and append issue kernel launches only (plus cudaGetLastError /
// cudaPeekAtLastError), all on the context's stream, with grids that follow from the plan and the
// host scalar batch alone, and that runs over different device-side contents (lengths, block
// tables, query counts) issue byte-identical launch sequences -- what a graph replay relies on.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cuda_standin.hpp"
#include "decode/mma_geometry.h"

namespace {

// Host memory standing in for device arrays (the backend never dereferences them).
struct Arrays {
  int batch, max_q, mpps, hq, hkv, d;
  std::vector<int32_t> indptr, lens, bt, q_pos;
  std::vector<uint16_t> kpool, vpool, q, out, kn, vn;
  std::vector<float> lse, sinks;
  std::vector<unsigned char> ws_store;
  void *ws = nullptr;
  size_t ws_bytes = 0;
};

posattn_plan_desc desc_for(int max_batch, int max_q, int mpps, int num_pages) {
  posattn_plan_desc D;
  posattn_plan_desc_init(&D);
  D.max_batch = max_batch;
  D.max_q_tokens = max_q;
  D.max_pages_per_seq = mpps;
  D.q_heads = 32;
  D.head_dim = 128;
  posattn_kv_cache_init(&D.cache, nullptr, nullptr, POSATTN_DTYPE_BF16, num_pages, 16, 8, 128);
  D.pe.kind = POSATTN_PE_ROPE;
  D.use_sinks = 1;
  return D;
}

void arrays_init(Arrays &A, const posattn_plan &plan, int batch) {
  const posattn_plan_desc &D = plan.desc;
  A.batch = batch;
  A.max_q = D.max_q_tokens;
  A.mpps = D.max_pages_per_seq;
  A.hq = plan.hq;
  A.hkv = plan.hkv;
  A.d = plan.d;
  A.indptr.assign(size_t(batch) + 1, 0);
  A.lens.assign(size_t(batch), 0);
  A.bt.assign(size_t(batch) * A.mpps, 0);
  A.q_pos.assign(size_t(A.max_q), 0);
  const size_t pool = size_t(D.cache.num_pages) * D.cache.page_size * A.hkv * A.d;
  A.kpool.assign(pool, 0);
  A.vpool.assign(pool, 0);
  A.q.assign(size_t(A.max_q) * A.hq * A.d, 0);
  A.out.assign(A.q.size(), 0);
  A.kn.assign(size_t(A.max_q) * A.hkv * A.d, 0);
  A.vn.assign(A.kn.size(), 0);
  A.lse.assign(size_t(A.max_q) * A.hq, 0.f);
  A.sinks.assign(size_t(A.hq), 0.f);
  A.ws_bytes = plan.workspace_bytes;
  A.ws_store.assign(A.ws_bytes + 256, 0);
  A.ws = reinterpret_cast<void *>((reinterpret_cast<uintptr_t>(A.ws_store.data()) + 255) & ~uintptr_t(255));
}

// Device-side contents of one step: query counts, lengths, block tables (values only).
void arrays_step(Arrays &A, int q_per_seq, int len, int page_shift) {
  for (int b = 0; b < A.batch; ++b) {
    A.indptr[size_t(b) + 1] = A.indptr[size_t(b)] + q_per_seq;
    A.lens[size_t(b)] = len + b;
    for (int p = 0; p < A.mpps; ++p) A.bt[size_t(b) * A.mpps + p] = (b * A.mpps + p + page_shift) % 97;
  }
}

posattn_run_args run_args(Arrays &A) {
  posattn_run_args a;
  posattn_run_args_init(&a);
  a.batch = A.batch;
  a.q_indptr = A.indptr.data();
  a.kv_lens = A.lens.data();
  a.block_table = A.bt.data();
  a.block_table_stride = A.mpps;
  a.q_positions = A.q_pos.data();
  a.sink_logits = A.sinks.data();
  a.k_pages = A.kpool.data();
  a.v_pages = A.vpool.data();
  posattn_tensor_init_contiguous(&a.q, A.q.data(), POSATTN_DTYPE_BF16, A.max_q, A.hq, A.d);
  posattn_tensor_init_contiguous(&a.out, A.out.data(), POSATTN_DTYPE_BF16, A.max_q, A.hq, A.d);
  a.lse = A.lse.data();
  a.workspace = A.ws;
  a.workspace_bytes = A.ws_bytes;
  return a;
}

posattn_append_args append_args(Arrays &A) {
  posattn_append_args a;
  posattn_append_args_init(&a);
  a.batch = A.batch;
  a.new_indptr = A.indptr.data();
  a.kv_lens = A.lens.data();
  a.block_table = A.bt.data();
  a.block_table_stride = A.mpps;
  a.k_pages = A.kpool.data();
  a.v_pages = A.vpool.data();
  posattn_tensor_init_contiguous(&a.k_new, A.kn.data(), POSATTN_DTYPE_BF16, A.max_q, A.hkv, A.d);
  posattn_tensor_init_contiguous(&a.v_new, A.vn.data(), POSATTN_DTYPE_BF16, A.max_q, A.hkv, A.d);
  a.workspace = A.ws;
  a.workspace_bytes = A.ws_bytes;
  return a;
}

bool same_launch(const StandinLaunch &x, const StandinLaunch &y) {
  return x.func == y.func && x.grid.x == y.grid.x && x.grid.y == y.grid.y && x.grid.z == y.grid.z &&
         x.block.x == y.block.x && x.block.y == y.block.y && x.block.z == y.block.z &&
         x.smem == y.smem && x.stream == y.stream && x.params == y.params;
}

class PlanCapture : public ::testing::Test {
 protected:
  void SetUp() override {
    g_standin = Standin{};
    const posattn_plan_desc D = desc_for(64, 2048, 40, 512);
    ASSERT_EQ(standin_plan_create(&D, &plan_, msg_, sizeof msg_), POSATTN_STATUS_SUCCESS) << msg_;
    prepare_calls_ = g_standin.calls;
    g_standin.clear();
    ctx_.backend = POSATTN_BACKEND_CUDA;
    ctx_.device = 0;
    ctx_.stream = reinterpret_cast<void *>(uintptr_t(0x5eed));
  }
  void TearDown() override {
    pa_plan_cuda_release_standin(&plan_);
    EXPECT_EQ(g_standin.mallocs, g_standin.frees) << "the plan's device tables leak";
  }
  // A run as posattn_plan_run does it: host-side checks, then the backend, with the stand-in hot.
  void run(Arrays &A) {
    const posattn_run_args a = run_args(A);
    ASSERT_EQ(pa_validate_run_args(msg_, sizeof msg_, &plan_, &a), POSATTN_STATUS_SUCCESS) << msg_;
    g_standin.hot = true;
    EXPECT_EQ(pa_plan_cuda_run_standin(&ctx_, &plan_, &a), POSATTN_STATUS_SUCCESS) << ctx_.msg;
    g_standin.hot = false;
  }
  void append(Arrays &A) {
    const posattn_append_args a = append_args(A);
    ASSERT_EQ(pa_validate_append_args(msg_, sizeof msg_, &plan_, &a), POSATTN_STATUS_SUCCESS) << msg_;
    g_standin.hot = true;
    EXPECT_EQ(pa_plan_cuda_append_standin(&ctx_, &plan_, &a), POSATTN_STATUS_SUCCESS) << ctx_.msg;
    g_standin.hot = false;
  }
  posattn_plan plan_{};
  posattn_context ctx_{};
  char msg_[512] = {0};
  std::vector<std::string> prepare_calls_;
};

TEST_F(PlanCapture, PrepareBuildsTablesOnce) {
  // Creation is where allocation, the table copy and the SM count live.
  auto has = [&](const char *fn) {
    return std::find(prepare_calls_.begin(), prepare_calls_.end(), fn) != prepare_calls_.end();
  };
  EXPECT_TRUE(has("cudaMalloc"));
  EXPECT_TRUE(has("cudaMemcpy"));
  EXPECT_TRUE(has("cudaDeviceGetAttribute"));
  EXPECT_FALSE(has("cudaLaunchKernel"));
  EXPECT_GE(plan_.num_splits, 1);
  EXPECT_GE(plan_.workspace_bytes, size_t(PA_RUN_ERROR_BYTES));
}

TEST_F(PlanCapture, RunIssuesOnlyLaunchesOnTheStream) {
  Arrays A;
  arrays_init(A, plan_, 64);
  arrays_step(A, 1, 500, 0);
  run(A);
  EXPECT_TRUE(g_standin.forbidden.empty()) << "first forbidden call: " << g_standin.forbidden[0];
  for (const std::string &c : g_standin.calls)
    EXPECT_TRUE(c == "cudaLaunchKernel" || c == "cudaGetLastError" || c == "cudaPeekAtLastError") << c;
  const pa_paged_kernel_table *kt = pa_paged_cuda_kernels_standin();
  ASSERT_EQ(g_standin.launches.size(), 3u);
  for (const StandinLaunch &l : g_standin.launches)
    EXPECT_EQ(l.stream, static_cast<cudaStream_t>(ctx_.stream));
  // check: one block per sequence of the call
  EXPECT_EQ(g_standin.launches[0].func, kt->check);
  EXPECT_EQ(g_standin.launches[0].grid.x, 64u);
  EXPECT_EQ(g_standin.launches[0].block.x, unsigned(pa_paged::kThreads));
  // split (bf16 q and cache, hd 128: the tensor-core kernel): (chunk slots, kv heads, splits),
  // chunk slots = ceil(max_q_tokens * group / 128) + max_batch, 8 warps
  const StandinLaunch &s = g_standin.launches[1];
  EXPECT_EQ(s.func, kt->split_mma[pa_paged::kCacheBF16][0][1]);
  EXPECT_EQ(s.grid.x, unsigned((2048 * 4 + 127) / 128 + 64));
  EXPECT_EQ(s.grid.y, 8u);
  EXPECT_EQ(s.grid.z, unsigned(plan_.num_splits));
  EXPECT_EQ(s.block.x, unsigned(pa_decode::kMmaThreads));
  EXPECT_EQ(s.smem, pa_decode::MmaSmem(128, 2, 128, plan_.rotary_dim > 0, plan_.rotate_k != 0).total);
  EXPECT_EQ(g_standin.launches[2].func, kt->combine);
  EXPECT_EQ(g_standin.launches[2].block.x, unsigned(pa_paged::kThreads));
  // the launches' parameters point at the call's arrays
  pa_paged_params k;
  ASSERT_EQ(s.params.size(), sizeof k);
  std::memcpy(&k, s.params.data(), sizeof k);
  EXPECT_EQ(k.sq.indptr, A.indptr.data());
  EXPECT_EQ(k.sq.kv_lens, A.lens.data());
  EXPECT_EQ(k.sq.block_table, A.bt.data());
  EXPECT_EQ(static_cast<const void *>(k.q), static_cast<const void *>(A.q.data()));
  EXPECT_EQ(static_cast<void *>(k.sq.err), A.ws);
}

// POSATTN_PAGED_KERNEL=simt at creation: the SIMT split kernel, 16 rows per block.
TEST_F(PlanCapture, ForcedSimtSplitKernel) {
  pa_plan_cuda_release_standin(&plan_);
  setenv("POSATTN_PAGED_KERNEL", "simt", 1);
  const posattn_plan_desc D = desc_for(64, 2048, 40, 512);
  const posattn_status st = standin_plan_create(&D, &plan_, msg_, sizeof msg_);
  unsetenv("POSATTN_PAGED_KERNEL");
  ASSERT_EQ(st, POSATTN_STATUS_SUCCESS) << msg_;
  g_standin.clear();
  Arrays A;
  arrays_init(A, plan_, 64);
  arrays_step(A, 1, 500, 0);
  run(A);
  EXPECT_TRUE(g_standin.forbidden.empty());
  ASSERT_EQ(g_standin.launches.size(), 3u);
  const pa_paged_kernel_table *kt = pa_paged_cuda_kernels_standin();
  const StandinLaunch &s = g_standin.launches[1];
  EXPECT_EQ(s.func, kt->split[pa_paged::kCacheBF16][1]);
  EXPECT_EQ(s.grid.x, unsigned((2048 * 4 + 15) / 16 + 64));
  EXPECT_EQ(s.block.x, unsigned(pa_paged::kThreads));
  EXPECT_EQ(s.smem, pa_paged::split_smem_bytes(1, 128));
}

// The graph-replay property: new device-side contents, same pointers and batch -> the same launches.
TEST_F(PlanCapture, LaunchesDoNotDependOnDeviceData) {
  Arrays A;
  arrays_init(A, plan_, 48);
  arrays_step(A, 1, 100, 0);  // decode at short context
  run(A);
  append(A);
  const std::vector<StandinLaunch> first = g_standin.launches;
  g_standin.clear();
  arrays_step(A, 40, 600, 13);  // chunked prefill at longer context, other pages
  run(A);
  append(A);
  ASSERT_EQ(g_standin.launches.size(), first.size());
  ASSERT_EQ(first.size(), 5u);  // run: check, split, combine; append: check, append
  for (size_t i = 0; i < first.size(); ++i) EXPECT_TRUE(same_launch(first[i], g_standin.launches[i])) << i;
  EXPECT_TRUE(g_standin.forbidden.empty());
}

TEST_F(PlanCapture, AppendIssuesOnlyLaunchesOnTheStream) {
  Arrays A;
  arrays_init(A, plan_, 64);
  arrays_step(A, 8, 300, 5);
  append(A);
  EXPECT_TRUE(g_standin.forbidden.empty()) << "first forbidden call: " << g_standin.forbidden[0];
  const pa_paged_kernel_table *kt = pa_paged_cuda_kernels_standin();
  ASSERT_EQ(g_standin.launches.size(), 2u);
  EXPECT_EQ(g_standin.launches[0].func, kt->check);
  EXPECT_EQ(g_standin.launches[1].func, kt->append[pa_paged::kCacheBF16]);
  for (const StandinLaunch &l : g_standin.launches)
    EXPECT_EQ(l.stream, static_cast<cudaStream_t>(ctx_.stream));
}

// The checker itself: the error-record read is synchronous by design and must be caught as such.
TEST_F(PlanCapture, CheckerFlagsCopiesAndSynchronisation) {
  Arrays A;
  arrays_init(A, plan_, 1);
  pa_run_error rec;
  g_standin.hot = true;
  EXPECT_EQ(pa_plan_cuda_read_error_standin(&ctx_, A.ws, &rec), POSATTN_STATUS_SUCCESS);
  g_standin.hot = false;
  auto has = [&](const char *fn) {
    return std::find(g_standin.forbidden.begin(), g_standin.forbidden.end(), fn) != g_standin.forbidden.end();
  };
  EXPECT_TRUE(has("cudaMemcpyAsync"));
  EXPECT_TRUE(has("cudaStreamSynchronize"));
}

}  // namespace
