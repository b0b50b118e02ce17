// Speed of the emulator, for docs/emulator.md. Run by hand: posattn_emu_bench (one core).
#include <chrono>
#include <cstdio>
#include <vector>

#include "device/device.cuh"
#include "posattn.h"

namespace {

__global__ void barriers_only(pa::gptr<int> out, int n) {
  int x = 0;
  for (int i = 0; i < n; ++i) {
    x += i;
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = x;
}

// 128 threads: 64 mma per warp and 200 barriers.
__global__ void mma_and_barriers(pa::gptr<float> out) {
  uint32_t a[4] = {0x3f803f80u, 0x3f803f80u, 0x3f803f80u, 0x3f803f80u}, b[2] = {0x3f803f80u, 0x3f803f80u};
  float c[4] = {0.f, 0.f, 0.f, 0.f};
  for (int i = 0; i < 200; ++i) {
    if (i < 64) pa::mma_m16n8k16_bf16(c, a, b, c);
    __syncthreads();
  }
  out[threadIdx.x] = c[0] + c[1] + c[2] + c[3];
}

double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main() {
  std::vector<int> o(1);
  std::vector<float> of(128);
  const int nb = 2000;
  for (unsigned threads : {32u, 256u, 1024u}) {
    auto t0 = std::chrono::steady_clock::now();
    pa::launch_status st = pa::launch("barriers_only", barriers_only, dim3(1), dim3(threads), 0,
                                      nullptr, pa::make_gptr(o.data(), 1, "out"), nb);
    double s = seconds(t0);
    if (!st.ok) return std::printf("%s\n", st.msg), 1;
    std::printf("barrier round trip (fiber -> scheduler -> fiber), %4u threads: %.1f ns per thread "
                "per barrier\n", threads, 1e9 * s / (double(threads) * nb));
  }
  for (bool race : {true, false}) {
    pa_emu::options().racecheck = race;
    auto t0 = std::chrono::steady_clock::now();
    const int reps = 20;
    for (int r = 0; r < reps; ++r) {
      pa::launch_status st = pa::launch("mma_and_barriers", mma_and_barriers, dim3(1), dim3(128), 0,
                                        nullptr, pa::make_gptr(of.data(), 128, "out"));
      if (!st.ok) return std::printf("%s\n", st.msg), 1;
    }
    std::printf("128-thread block, 64 mma + 200 barriers: %.3f ms (racecheck %s)\n",
                1e3 * seconds(t0) / reps, race ? "on" : "off");
  }
  pa_emu::options().racecheck = true;

  // batch 1, 2 heads, 256 tokens, head dim 64, bf16 in/out, through posattn.h on EMU
  posattn_context *ctx = nullptr;
  if (posattn_context_create(POSATTN_BACKEND_EMU, 0, &ctx) != POSATTN_STATUS_SUCCESS)
    return std::printf("EMU context: %s\n", posattn_context_last_message(ctx)), 1;
  const int L = 256, H = 2, D = 64;
  posattn_attention_desc desc;
  posattn_attention_desc_init(&desc);
  desc.batch = 1; desc.q_heads = H; desc.kv_heads = H; desc.head_dim = D; desc.q_len = L; desc.kv_len = L;
  std::vector<uint16_t> q(L * H * D), k(L * H * D), v(L * H * D), out(L * H * D);
  for (size_t i = 0; i < q.size(); ++i) {
    q[i] = pa::bf16_from_float(float(int(i * 7919 % 201) - 100) / 100.f).bits;
    k[i] = pa::bf16_from_float(float(int(i * 104729 % 203) - 101) / 100.f).bits;
    v[i] = pa::bf16_from_float(float(int(i * 1299709 % 199) - 99) / 100.f).bits;
  }
  posattn_tensor tq, tk, tv, to;
  posattn_tensor_init_contiguous(&tq, q.data(), POSATTN_DTYPE_BF16, L, H, D);
  posattn_tensor_init_contiguous(&tk, k.data(), POSATTN_DTYPE_BF16, L, H, D);
  posattn_tensor_init_contiguous(&tv, v.data(), POSATTN_DTYPE_BF16, L, H, D);
  posattn_tensor_init_contiguous(&to, out.data(), POSATTN_DTYPE_BF16, L, H, D);
  std::vector<float> lse(H * L);
  for (int causal : {0, 1}) {
    desc.causal = causal;
    size_t wsb = 0;
    posattn_workspace_size(ctx, &desc, POSATTN_DTYPE_BF16, POSATTN_DTYPE_BF16, &wsb);
    std::vector<double> ws(wsb / sizeof(double) + 64);
    void *w = reinterpret_cast<void *>((reinterpret_cast<uintptr_t>(ws.data()) + 255) & ~uintptr_t(255));
    auto t0 = std::chrono::steady_clock::now();
    posattn_status st = posattn_forward(ctx, &desc, &tq, &tk, &tv, &to, lse.data(), w, wsb);
    double s = seconds(t0);
    if (st != POSATTN_STATUS_SUCCESS) return std::printf("forward: %s\n", posattn_context_last_message(ctx)), 1;
    std::printf("attention b1 h2 s256 d64 bf16 %s through EMU: %.3f s\n",
                causal ? "causal" : "non-causal", s);
  }
  posattn_context_destroy(ctx);
  return 0;
}
