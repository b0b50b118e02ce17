// Self-test kernels of the Hopper primitives (kernels/device/sm90.cuh). Compiled by the host
// compiler into the emu self-tests (test_emu_sm90.cpp and test_sm90_cute.cpp include this file)
// and by nvcc for sm_90a as a compile check of the PTX side (tests/emu/CMakeLists.txt); for sm_80
// the kernel bodies are compiled out (PA_SM90 is 0 there).
#include "device/sm90.cuh"

namespace sm90_test {

// One operand tile in shared memory as a TMA load lays it out: `chunks` blocks of `rows` rows of
// `inner` elements (row bytes = 2 * inner; with a swizzle, row bytes = the swizzle width).
struct Tile {
  int inner, rows, chunks, swizzle;
};

// Descriptors of k-block kb of a K-major tile (rows = M or N) and of an MN-major one (rows = k).
PA_DEVICE uint64_t desc_k_major(pa::sptr<pa::bf16> base, const Tile &t, int kb) {
  return pa::wgmma_desc_k_major(base + pa::wgmma_kblock_k_major(kb, t.rows, t.swizzle) / 2, t.rows,
                                t.swizzle);
}
PA_DEVICE uint64_t desc_mn_major(pa::sptr<pa::bf16> base, const Tile &t, int kb) {
  return pa::wgmma_desc_mn_major(base + pa::wgmma_kblock_mn_major(kb, t.swizzle) / 2, t.rows,
                                 t.swizzle);
}

// D (64 x N, fp32, row-major) = A (64 x K) * B, K = 16 * ktiles. A row-major [64][K]; B: TransB 0:
// [N][K] (K-major), 1: [K][N] (MN-major). A through TMA (SS) or read into registers (RS), B
// through TMA; one warpgroup (128 threads) plus nothing else. Tiles: dynamic shared memory, A at
// 0, B at 32 KiB.
template <int N, bool RS, int TransB>
__global__ void __launch_bounds__(128) wgmma_gemm(const __grid_constant__ pa::tma_map ta,
                                                  const __grid_constant__ pa::tma_map tb,
                                                  pa::gptr<const pa::bf16> a_glob, Tile at, Tile bt,
                                                  int ktiles, pa::gptr<float> d_out) {
#if PA_SM90
  PA_SHARED(uint64_t, bar, 1);
  pa::sptr<pa::bf16> sa = pa::dynamic_shared<pa::bf16>();
  pa::sptr<pa::bf16> sb = sa + 16384;
  const int t = int(threadIdx.x);
  if (t == 0) {
    pa::mbarrier_init(bar, 1);
    pa::fence_mbarrier_init();
  }
  __syncthreads();
  if (pa::elect_one_sync() && t < 32) {
    const unsigned abytes = RS ? 0u : unsigned(at.inner * at.rows * at.chunks * 2);
    pa::mbarrier_arrive_expect_tx(bar, abytes + unsigned(bt.inner * bt.rows * bt.chunks * 2));
    if (!RS) pa::tma_load_3d(sa, ta, 0, 0, 0, bar);
    pa::tma_load_3d(sb, tb, 0, 0, 0, bar);
  }
  pa::mbarrier_wait(bar, 0);
  const int K = 16 * ktiles;
  pa::wgmma_acc<N> acc;
  pa::wgmma_fence();
  for (int kb = 0; kb < ktiles; ++kb) {
    const uint64_t bdesc = TransB ? desc_mn_major(sb, bt, kb) : desc_k_major(sb, bt, kb);
    if (RS) {
      pa::wgmma_a a;
      const int w = t / 32, g = (t % 32) / 4, q = t % 4;
      for (int r = 0; r < 4; ++r) {
        const int m = 16 * w + g + 8 * (r % 2), k = 16 * kb + 2 * q + 8 * (r / 2);
        a[r] = uint32_t(pa::bf16(a_glob[m * K + k]).bits) |
               (uint32_t(pa::bf16(a_glob[m * K + k + 1]).bits) << 16);
      }
      pa::wgmma_fence();
      pa::wgmma_rs<N, pa::bf16, TransB>(acc, a, bdesc, kb > 0);
      pa::wgmma_commit();
      pa::wgmma_wait<0>();  // a goes out of scope: its wgmma must have retired
    } else {
      pa::wgmma_ss<N, pa::bf16, 0, TransB>(acc, desc_k_major(sa, at, kb), bdesc, kb > 0);
    }
  }
  pa::wgmma_commit();
  pa::wgmma_wait<0>();
  for (int i = 0; i < N / 2; ++i)
    d_out[pa::wgmma_acc_row(t, i) * N + pa::wgmma_acc_col(t, i)] = acc[i];
#endif
}

// The FlashAttention-3 pattern without the softmax: S = Q K^T (SS, Q and K K-major through TMA
// with 128-byte swizzle), P = bf16(S) taken straight from the accumulator as A fragments, O = P V
// (RS, V [key][d] MN-major through TMA). Q 64 x 64, K and V N x 64; O 64 x 64 fp32 row-major.
template <int N>
__global__ void __launch_bounds__(128) qk_pv(const __grid_constant__ pa::tma_map tq,
                                             const __grid_constant__ pa::tma_map tk,
                                             const __grid_constant__ pa::tma_map tv,
                                             pa::gptr<float> o_out) {
#if PA_SM90
  PA_SHARED(uint64_t, bar, 1);
  pa::sptr<pa::bf16> sq = pa::dynamic_shared<pa::bf16>();
  pa::sptr<pa::bf16> sk = sq + 4096, sv = sk + N * 64;
  const int t = int(threadIdx.x);
  if (t == 0) {
    pa::mbarrier_init(bar, 1);
    pa::mbarrier_arrive_expect_tx(bar, unsigned(2 * (4096 + 2 * N * 64)));
    pa::tma_load_2d(sq, tq, 0, 0, bar);
    pa::tma_load_2d(sk, tk, 0, 0, bar);
    pa::tma_load_2d(sv, tv, 0, 0, bar);
  }
  __syncthreads();
  pa::mbarrier_wait(bar, 0);
  pa::wgmma_acc<N> s;
  pa::wgmma_fence();
  for (int kb = 0; kb < 4; ++kb)
    pa::wgmma_ss<N, pa::bf16>(s, pa::wgmma_desc_k_major(sq + pa::wgmma_kblock_k_major(kb, 64, 128) / 2, 64, 128),
                              pa::wgmma_desc_k_major(sk + pa::wgmma_kblock_k_major(kb, N, 128) / 2, N, 128),
                              kb > 0);
  pa::wgmma_commit();
  pa::wgmma_wait<0>();
  pa::wgmma_a p[N / 16];
  for (int kb = 0; kb < N / 16; ++kb) pa::wgmma_a_from_acc<pa::bf16>(p[kb], s, kb);
  pa::wgmma_acc<64> o;
  pa::wgmma_fence();
  for (int kb = 0; kb < N / 16; ++kb)
    pa::wgmma_rs<64, pa::bf16, 1>(o, p[kb],
                                  pa::wgmma_desc_mn_major(sv + pa::wgmma_kblock_mn_major(kb, 128) / 2, N, 128),
                                  kb > 0);
  pa::wgmma_commit();
  pa::wgmma_wait<0>();
  for (int i = 0; i < 32; ++i) o_out[pa::wgmma_acc_row(t, i) * 64 + pa::wgmma_acc_col(t, i)] = o[i];
#endif
}

// Planted bugs: each mode breaks one rule; the test expects the emulator's report.
enum Bug {
  kAccReadBeforeWait,
  kTmaDestReadEarly,
  kSmemWriteDuringWgmma,
  kExpectTxTooSmall,
  kExpectTxTooLarge,
  kParityNeverCompletes,
  kSwizzleMismatch,
  kMissingWgmmaFence,
  kMissingProxyFence,
  kMbarrierGenericAccess,
  kNamedBarrierCountMismatch,
  kSetmaxnregDivergent,
  kAFragWriteDuringWgmma,
  kFragOutOfScope,
  kAccTouchedAfterFence,
  kProxyFenceKept,  // threads write A with fence_proxy_async: must pass
  kNone,  // the same kernel with every rule kept (must pass)
  kWriteNotOrdered,  // a thread writes A (fenced) after the last barrier: no order to the wgmma
};

// A (64 x 64) through TMA with 128-byte swizzle, B (64 x 64, K-major) likewise; one k-block.
__global__ void __launch_bounds__(128) sm90_bug(const __grid_constant__ pa::tma_map ta,
                                                const __grid_constant__ pa::tma_map tb, int bug,
                                                pa::gptr<float> out) {
#if PA_SM90
  PA_SHARED(uint64_t, bar, 2);
  pa::sptr<pa::bf16> sa = pa::dynamic_shared<pa::bf16>();
  pa::sptr<pa::bf16> sb = sa + 4096;
  const int t = int(threadIdx.x);
  if (t == 0) {
    pa::mbarrier_init(bar, 1);
    pa::mbarrier_init(bar + 1, 1);
  }
  __syncthreads();
  if (bug == kMbarrierGenericAccess && t == 5) out[0] = float(bar[0]);
  const bool threads_write_a = bug == kMissingProxyFence || bug == kProxyFenceKept;
  if (threads_write_a) {
    // threads write A themselves: without fence_proxy_async the wgmma may not see it
    for (int i = t; i < 4096; i += 128) sa[i] = pa::bf16_from_float(float(i % 7));
    if (bug == kProxyFenceKept) pa::fence_proxy_async();
    if (t == 0) {
      pa::mbarrier_arrive_expect_tx(bar, 8192);
      pa::tma_load_2d(sb, tb, 0, 0, bar);
    }
  } else if (t == 0) {
    const unsigned bytes = bug == kExpectTxTooSmall ? 8192u : bug == kExpectTxTooLarge ? 20480u : 16384u;
    pa::mbarrier_arrive_expect_tx(bar, bytes);
    pa::tma_load_2d(sa, ta, 0, 0, bar);
    pa::tma_load_2d(sb, tb, 0, 0, bar);
  }
  if (bug == kTmaDestReadEarly && t == 3) out[0] = pa::to_float(pa::bf16(sa[3]));
  if (bug == kNamedBarrierCountMismatch) pa::named_barrier_sync(1, t < 64 ? 128 : 96);
  if (bug == kSetmaxnregDivergent) {
    if (t < 64)
      pa::setmaxnreg_inc<240>();
    else
      pa::setmaxnreg_dec<40>();
  }
  pa::mbarrier_wait(bar, 0);
  if (bug == kParityNeverCompletes) pa::mbarrier_wait(bar + 1, 0);  // nobody arrives on bar[1]
  __syncthreads();
  pa::wgmma_acc<64> acc;
  for (int i = 0; i < 32; ++i) acc[i] = 0.f;
  if (threads_write_a) __syncthreads();
  if (bug == kWriteNotOrdered && t == 5) {
    sa[0] = pa::bf16_from_float(1.f);
    pa::fence_proxy_async();
  }
  if (bug != kMissingWgmmaFence) pa::wgmma_fence();
  if (bug == kAccTouchedAfterFence) acc[1] = 2.f;
  const int swz_a = bug == kSwizzleMismatch ? 0 : 128;
  const uint64_t adesc = threads_write_a ? pa::make_wgmma_desc(sa, 1024u, 128u, 0)
                                                   : pa::make_wgmma_desc(sa, 16u, 1024u, swz_a);
  if (bug == kFragOutOfScope) {
    pa::wgmma_acc<64> tmp;
    pa::wgmma_fence();
    pa::wgmma_ss<64, pa::bf16>(tmp, adesc, pa::make_wgmma_desc(sb, 16u, 1024u, 128), false);
    pa::wgmma_commit();
  }  // tmp ends while its wgmma is in flight
  pa::wgmma_a afrag;
  for (int r = 0; r < 4; ++r) afrag[r] = 0u;
  if (bug == kAFragWriteDuringWgmma) {
    pa::wgmma_fence();
    pa::wgmma_rs<64, pa::bf16>(acc, afrag, pa::make_wgmma_desc(sb, 16u, 1024u, 128), true);
    afrag[1] = 7u;
  } else {
    pa::wgmma_ss<64, pa::bf16>(acc, adesc, pa::make_wgmma_desc(sb, 16u, 1024u, 128), true);
  }
  pa::wgmma_commit();
  if (bug == kAccReadBeforeWait) out[t] = acc[3];
  if (bug == kSmemWriteDuringWgmma && t == 70) sb[1] = pa::bf16_from_float(1.f);
  pa::wgmma_wait<0>();
  out[t] = acc[0];
#endif
}

// One 2D TMA load at (c0, c1) into dynamic shared memory (1024-byte aligned); the raw image, as
// it lies in shared memory (swizzled), copied to out (box bytes / 4 words).
__global__ void tma_copy(const __grid_constant__ pa::tma_map m, int c0, int c1, int bytes,
                         pa::gptr<uint32_t> out) {
#if PA_SM90
  PA_SHARED(uint64_t, bar, 1);
  pa::sptr<uint32_t> img = pa::dynamic_shared<uint32_t>();
  const int t = int(threadIdx.x);
  if (t == 0) {
    pa::mbarrier_init(bar, 1);
    pa::mbarrier_arrive_expect_tx(bar, unsigned(bytes));
    pa::tma_load_2d(img, m, c0, c1, bar);
  }
  __syncthreads();
  pa::mbarrier_wait(bar, 0);
  for (int i = t; i < bytes / 4; i += int(blockDim.x)) out[i] = img[i];
#endif
}

// TMA store of a 64 x 16 box at (c0, c1). Mode 0: the tile comes from a TMA load (map tin, its
// swizzle); 1: threads write it (fence_proxy_async kept); 2: threads write it without the fence
// (bug); 3: the source is overwritten before tma_store_wait (bug).
__global__ void tma_store_box(const __grid_constant__ pa::tma_map tin,
                              const __grid_constant__ pa::tma_map tout, pa::gptr<const uint16_t> raw,
                              int c0, int c1, int mode) {
#if PA_SM90
  PA_SHARED(uint64_t, bar, 1);
  pa::sptr<uint16_t> tile = pa::dynamic_shared<uint16_t>();
  const int t = int(threadIdx.x);
  if (t == 0) pa::mbarrier_init(bar, 1);  // the block's first Hopper operation: checks start here
  __syncthreads();
  if (mode == 0) {
    if (t == 0) {
      pa::mbarrier_arrive_expect_tx(bar, 64 * 16 * 2);
      pa::tma_load_2d(tile, tin, 0, 0, bar);
    }
    pa::mbarrier_wait(bar, 0);
  } else {
    for (int i = t; i < 64 * 16; i += int(blockDim.x)) tile[i] = raw[i];
    if (mode == 1 || mode == 3) pa::fence_proxy_async();
    __syncthreads();
  }
  if (t == 0) {
    pa::tma_store_2d(tout, c0, c1, tile);
    pa::tma_store_commit();
    if (mode == 3) tile[5] = 0;
    pa::tma_store_wait<0>();
  }
#endif
}

// mbarrier phases: a producer warp fills a 2-slot ring for `rounds` rounds, one consumer warp
// waits and sums (full/empty barriers, parity flipping every lap). out[r] = sum of round r. The
// racecheck follows the hand-over through the mbarriers (docs/emulator.md). skip_empty: planted
// bug, the producer refills a slot without waiting on its empty barrier from round 2 on (its
// writes race with the consumer's reads of the lap before).
__global__ void mbarrier_ring(pa::gptr<const float> in, int rounds, pa::gptr<float> out,
                              int skip_empty) {
#if PA_SM90
  PA_SHARED(uint64_t, full, 2);
  PA_SHARED(uint64_t, empty, 2);
  PA_SHARED(float, slot, 64);
  const int t = int(threadIdx.x);
  if (t == 0)
    for (int s = 0; s < 2; ++s) {
      pa::mbarrier_init(full + s, 32);
      pa::mbarrier_init(empty + s, 32);
    }
  __syncthreads();
  if (t < 32) {  // producer
    for (int r = 0; r < rounds; ++r) {
      const int s = r % 2;
      if (!(skip_empty && r >= 2))
        pa::mbarrier_wait(empty + s, unsigned((r / 2) % 2) ^ 1u);  // first lap passes
      slot[s * 32 + t] = in[r * 32 + t];
      pa::mbarrier_arrive(full + s);
    }
  } else {  // consumer
    const int l = t - 32;
    for (int r = 0; r < rounds; ++r) {
      const int s = r % 2;
      pa::mbarrier_wait(full + s, unsigned((r / 2) % 2));
      float v = slot[s * 32 + l];
      for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
      if (l == 0) out[r] = v;
      pa::mbarrier_arrive(empty + s);
    }
  }
#endif
}

// Named barriers: warpgroup 1 waits on barrier 1 for warpgroup 0's value (bar.arrive / bar.sync),
// then all 256 threads meet at barrier 2. elect_one_sync marks one lane per warp.
__global__ void __launch_bounds__(256) named_barriers(pa::gptr<int> out) {
#if PA_SM90
  PA_SHARED(int, v, 1);
  const int t = int(threadIdx.x);
  if (t < 128) {
    pa::setmaxnreg_dec<40>();
    if (t == 0) v[0] = 42;
    pa::named_barrier_arrive(1, 256);
  } else {
    pa::setmaxnreg_inc<232>();
    pa::named_barrier_sync(1, 256);
    out[t] = v[0];
  }
  pa::named_barrier_sync(2, 256);
  if (t < 128) out[t] = pa::elect_one_sync() ? 1 : 0;
#endif
}

// The racecheck across partial named barriers (docs/emulator.md). 256 threads, two warpgroups;
// each hands values among its own 128 threads through a double-buffered shared table ordered by a
// 128-thread named barrier (1 + warpgroup), the pattern of a per-warpgroup table: in round r
// thread t writes word t of buffer r % 2, bar.sync, then every thread reads all 128 words (read by
// the 4 warps); the next write to that buffer, in round r + 2, is ordered after those reads by the
// barrier of round r + 1. Then warpgroup 0 hands one value to warpgroup 1 through barrier 7 (bar.arrive
// by warpgroup 0, bar.sync by warpgroup 1: the whole block, but with arrivals, so not a barrier
// interval). out[tid] = the sum of the last round + the handed value. Each mode but the first
// plants one missing order, which the racecheck must report.
enum PartialBarrierMode {
  kPartialOk,
  kPartialNoBarrier,         // round 1 skips its barrier
  kPartialSingleBuffer,      // one buffer: a round's writes race with the last round's reads
  kPartialHalves,            // two 64-thread barriers per warpgroup (3 + 2 wg + half) instead of one:
                             // words of the other half are not ordered
  kPartialWriteAfterArrive,  // thread 5 writes the handed value again after its bar.arrive
  kPartialReadersOfOtherHalf,  // one buffer, and between a round's reads and the next round's
                               // writes only a 64-thread barrier of each half of the warpgroup:
                               // the other half's reads are not ordered before the writes
};
constexpr int kPartialRounds = 4;
__global__ void __launch_bounds__(256) partial_barriers(int mode, pa::gptr<float> out) {
#if PA_SM90
  PA_SHARED(float, buf, 2 * 2 * 128);  // [warpgroup][buffer][word]
  PA_SHARED(float, handed, 1);
  const int tid = int(threadIdx.x), wg = tid / 128, t = tid % 128;
  if (tid == 0) pa::fence_proxy_async();  // the block's first Hopper operation: checks start here
  __syncthreads();
  float sum = 0.f;
  for (int r = 0; r < kPartialRounds; ++r) {
    const bool one_buffer = mode == kPartialSingleBuffer || mode == kPartialReadersOfOtherHalf;
    const pa::sptr<float> b = buf + (2 * wg + (one_buffer ? 0 : r % 2)) * 128;
    if (mode == kPartialReadersOfOtherHalf && r > 0) pa::named_barrier_sync(3 + 2 * wg + t / 64, 64);
    b[t] = float(1000 * r + tid);
    if (mode == kPartialHalves)
      pa::named_barrier_sync(3 + 2 * wg + t / 64, 64);
    else if (!(mode == kPartialNoBarrier && r == 1))
      pa::named_barrier_sync(1 + wg, 128);
    sum = 0.f;
    for (int i = 0; i < 128; ++i) sum += b[(t + i) % 128];
  }
  if (wg == 0) {
    if (t == 5) handed[0] = 42.f;
    pa::named_barrier_arrive(7, 256);
    if (mode == kPartialWriteAfterArrive && t == 5) handed[0] = 43.f;
    out[tid] = sum;
  } else {
    pa::named_barrier_sync(7, 256);
    out[tid] = sum + handed[0];
  }
#endif
}

#if defined(__CUDACC__)
// nvcc compile check of the template kernels (the emulator tests instantiate their own).
template __global__ void qk_pv<128>(const __grid_constant__ pa::tma_map, const __grid_constant__ pa::tma_map,
                                    const __grid_constant__ pa::tma_map, pa::gptr<float>);
template __global__ void wgmma_gemm<128, false, 1>(const __grid_constant__ pa::tma_map,
                                                   const __grid_constant__ pa::tma_map,
                                                   pa::gptr<const pa::bf16>, Tile, Tile, int,
                                                   pa::gptr<float>);
template __global__ void wgmma_gemm<256, true, 0>(const __grid_constant__ pa::tma_map,
                                                  const __grid_constant__ pa::tma_map,
                                                  pa::gptr<const pa::bf16>, Tile, Tile, int,
                                                  pa::gptr<float>);
#endif

}  // namespace sm90_test
