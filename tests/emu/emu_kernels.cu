// Self-test kernels of the device layer. Compiled by the host compiler into the emu self-tests
// (test_emu_primitives.cpp includes this file) and by nvcc as a compile check (see
// tests/emu/CMakeLists.txt), so the PTX side of every primitive used here is at least type-checked.
#include "device/device.cuh"

namespace emu_test {

// ---- mma: fragments built directly from the PTX ISA layout (see device.cuh) -----------------------
// A: 16x16 row-major, B: 16x8 row-major ([k][n]), C, D: 16x8 row-major fp32. One warp.
template <bool BF16>
__global__ void mma_frag(pa::gptr<const uint16_t> A, pa::gptr<const uint16_t> B,
                         pa::gptr<const float> C, pa::gptr<float> D) {
  const unsigned lane = threadIdx.x, g = lane >> 2, t = lane & 3;
  auto pair = [](uint16_t lo, uint16_t hi) { return uint32_t(lo) | (uint32_t(hi) << 16); };
  uint32_t a[4] = {pair(A[g * 16 + 2 * t], A[g * 16 + 2 * t + 1]),
                   pair(A[(g + 8) * 16 + 2 * t], A[(g + 8) * 16 + 2 * t + 1]),
                   pair(A[g * 16 + 2 * t + 8], A[g * 16 + 2 * t + 9]),
                   pair(A[(g + 8) * 16 + 2 * t + 8], A[(g + 8) * 16 + 2 * t + 9])};
  uint32_t b[2] = {pair(B[(2 * t) * 8 + g], B[(2 * t + 1) * 8 + g]),
                   pair(B[(2 * t + 8) * 8 + g], B[(2 * t + 9) * 8 + g])};
  float c[4] = {C[g * 8 + 2 * t], C[g * 8 + 2 * t + 1], C[(g + 8) * 8 + 2 * t],
                C[(g + 8) * 8 + 2 * t + 1]};
  if (BF16)
    pa::mma_m16n8k16_bf16(c, a, b, c);
  else
    pa::mma_m16n8k16_f16(c, a, b, c);
  D[g * 8 + 2 * t] = c[0];
  D[g * 8 + 2 * t + 1] = c[1];
  D[(g + 8) * 8 + 2 * t] = c[2];
  D[(g + 8) * 8 + 2 * t + 1] = c[3];
}

// ---- the FlashAttention-2 pattern: operands through ldmatrix, then mma ----------------------------
// A [16][16] and B [16][8] (row-major, B as [k][n]) staged in shared memory with cp.async; A via
// ldmatrix.x4, B via ldmatrix.x2.trans. One warp.
__global__ void ldsm_mma(pa::gptr<const pa::bf16> A, pa::gptr<const pa::bf16> B,
                         pa::gptr<float> D) {
  PA_SHARED(pa::bf16, sa, 256);
  PA_SHARED(pa::bf16, sb, 128);
  const unsigned lane = threadIdx.x;
  pa::cp_async_16(sa + lane * 8, A + lane * 8);  // 32 chunks of 8 = A
  if (lane < 16) pa::cp_async_16(sb + lane * 8, B + lane * 8);
  pa::cp_async_commit();
  pa::cp_async_wait<0>();
  __syncthreads();
  uint32_t a[4], b[2];
  // matrix i = lane/8 of x4: rows (lane%16), columns 8*(lane/16) -> a[0..3] in the mma order
  pa::ldmatrix_x4(a, sa + (lane % 16) * 16 + (lane / 16) * 8);
  // B[k][n] rows k = lane (0..15): .trans gives b[j] = B[2t+8j .. 2t+8j+1][g]
  pa::ldmatrix_x2_trans(b, sb + (lane % 16) * 8);
  float d[4] = {0.f, 0.f, 0.f, 0.f};
  pa::mma_m16n8k16_bf16(d, a, b, d);
  const unsigned g = lane >> 2, t = lane & 3;
  pa::store(pa::ptr_cast<float2>(D + g * 8 + 2 * t), make_float2(d[0], d[1]));
  pa::store(pa::ptr_cast<float2>(D + (g + 8) * 8 + 2 * t), make_float2(d[2], d[3]));
}

// ---- ldmatrix: four 8x8 matrices M[m][r][c] = src[(m*8 + r)*8 + c]; out[lane*4 + i] = r[i] ------
// Lanes whose address ldmatrix ignores pass a null pointer, which must not matter.
__global__ void ldsm(pa::gptr<const uint16_t> src, pa::gptr<uint32_t> out, int nmat, int trans) {
  PA_SHARED(uint16_t, s, 256);
  const unsigned lane = threadIdx.x;
  for (unsigned i = lane; i < 256; i += 32) s[i] = src[i];
  __syncwarp();
  pa::sptr<uint16_t> row = lane < unsigned(8 * nmat) ? s + lane * 8 : pa::sptr<uint16_t>();
  uint32_t r[4] = {0, 0, 0, 0};
  if (nmat == 1) {
    r[0] = trans ? pa::ldmatrix_x1_trans(row) : pa::ldmatrix_x1(row);
  } else if (nmat == 2) {
    uint32_t r2[2];
    if (trans)
      pa::ldmatrix_x2_trans(r2, row);
    else
      pa::ldmatrix_x2(r2, row);
    r[0] = r2[0];
    r[1] = r2[1];
  } else {
    if (trans)
      pa::ldmatrix_x4_trans(r, row);
    else
      pa::ldmatrix_x4(r, row);
  }
  for (int i = 0; i < 4; ++i) out[lane * 4 + i] = r[i];
}

// ---- shuffles and votes: out[warp*32 + lane] per mode ----------------------------------------------
// mode 0 idx, 1 up, 2 down, 3 xor; float and double values (the double path shuffles two words)
__global__ void shfl(pa::gptr<float> outf, pa::gptr<double> outd, int mode, int arg, int width) {
  const unsigned t = threadIdx.x, lane = t % 32;
  float v = 100.f * float(t / 32) + float(lane) + 0.5f;
  double dv = -1e10 * double(lane + 1);
  float r = 0.f;
  double rd = 0.0;
  switch (mode) {
    case 0: r = __shfl_sync(0xffffffffu, v, arg, width); rd = __shfl_sync(0xffffffffu, dv, arg, width); break;
    case 1: r = __shfl_up_sync(0xffffffffu, v, unsigned(arg), width); rd = __shfl_up_sync(0xffffffffu, dv, unsigned(arg), width); break;
    case 2: r = __shfl_down_sync(0xffffffffu, v, unsigned(arg), width); rd = __shfl_down_sync(0xffffffffu, dv, unsigned(arg), width); break;
    default: r = __shfl_xor_sync(0xffffffffu, v, arg, width); rd = __shfl_xor_sync(0xffffffffu, dv, arg, width); break;
  }
  outf[t] = r;
  outd[t] = rd;
}

// out[lane*4 + {0,1,2,3}] = all, any, ballot over the full warp of pred[lane]; then ballot over the
// lower half only (a diverged branch with its own mask)
__global__ void votes(pa::gptr<const int> pred, pa::gptr<unsigned> out) {
  const unsigned lane = threadIdx.x;
  int p = pred[lane];
  out[lane * 4 + 0] = unsigned(__all_sync(0xffffffffu, p));
  out[lane * 4 + 1] = unsigned(__any_sync(0xffffffffu, p));
  out[lane * 4 + 2] = __ballot_sync(0xffffffffu, p);
  if (lane < 16)
    out[lane * 4 + 3] = __ballot_sync(0x0000ffffu, p);
  else
    out[lane * 4 + 3] = 0u;
}

// ---- cp.async ordering: two groups; what each wait makes visible ----------------------------------
// Thread t copies src[t*8 .. t*8+7] (group 0) and src[256 + t*8 ..] (group 1), 32 threads.
// seen[t*4 + 0]: first word of its group-0 chunk read after wait_group 1
// seen[t*4 + 1]: first word of its group-1 chunk read after wait_group 1 (still in flight)
// seen[t*4 + 2]: first word of group-1 chunk after wait_group 0
// seen[t*4 + 3]: first word of a zero-filled chunk (valid = false) after wait_group 0
__global__ void cp_async_order(pa::gptr<const unsigned> src, pa::gptr<unsigned> seen) {
  PA_SHARED(unsigned, s, 768);
  const unsigned t = threadIdx.x;
  s[512 + t * 8] = 7u;
  pa::cp_async_16(s + t * 8, src + t * 4);
  pa::cp_async_16(s + t * 8 + 4, src + t * 4 + 128);
  pa::cp_async_commit();
  pa::cp_async_16(s + 256 + t * 8, src + 256 + t * 4);
  pa::cp_async_commit();
  pa::cp_async_wait<1>();
  seen[t * 4 + 0] = s[t * 8];
  seen[t * 4 + 1] = s[256 + t * 8];
  pa::cp_async_16_zfill(s + 512 + t * 8, src + 100000, false);  // not dereferenced
  pa::cp_async_commit();
  pa::cp_async_wait<0>();
  seen[t * 4 + 2] = s[256 + t * 8];
  seen[t * 4 + 3] = s[512 + t * 8];
}

// ---- barriers: tree reduction over a 2D block; out[block] = sum of in over the block --------------
__global__ void block_sum(pa::gptr<const float> in, pa::gptr<float> out) {
  PA_SHARED(float, s, 256);
  const unsigned n = blockDim.x * blockDim.y, t = threadIdx.y * blockDim.x + threadIdx.x;
  s[t] = in[blockIdx.x * n + t];
  __syncthreads();
  for (unsigned half = n / 2; half > 0; half /= 2) {
    if (t < half) s[t] = s[t] + s[t + half];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = s[0];
}

// Order in which threads pass the point between two barriers (tickets from an atomic counter).
__global__ void ticket_order(pa::gptr<unsigned> counter, pa::gptr<unsigned> ticket) {
  __syncthreads();
  ticket[threadIdx.x] = pa::atomic_add(counter, 1u);
  __syncthreads();
}

// Warp-synchronous exchange through shared memory, ordered by __syncwarp: not a race.
__global__ void warp_exchange(pa::gptr<float> out) {
  PA_SHARED(float, s, 64);
  const unsigned t = threadIdx.x;
  s[t] = float(t);
  __syncwarp();
  out[t] = s[(t / 32) * 32 + (t + 1) % 32];
}

// Dynamic shared memory: reverse `in` through it.
__global__ void dyn_reverse(pa::gptr<const float> in, pa::gptr<float> out) {
  pa::sptr<float> s = pa::dynamic_shared<float>();
  const unsigned n = blockDim.x, t = threadIdx.x;
  s[t] = in[t];
  __syncthreads();
  out[t] = s[n - 1 - t];
}

// ---- planted bugs: each must be reported ---------------------------------------------------------
// Missing barrier between the write and the read of a neighbour's slot.
__global__ void bug_missing_barrier(pa::gptr<float> out, int with_barrier) {
  PA_SHARED(float, s, 128);
  const unsigned t = threadIdx.x;
  s[t] = float(t);
  if (with_barrier) __syncthreads();
  out[t] = s[(t + 33) % blockDim.x];
}
// Read of a slot that another thread overwrites in the same interval (write after read).
__global__ void bug_write_after_read(pa::gptr<float> out) {
  PA_SHARED(float, s, 128);
  const unsigned t = threadIdx.x;
  s[t] = float(t);
  __syncthreads();
  float x = s[(t + 64) % 128];
  s[t] = x + 1.f;
  out[t] = x;
}
// Off-by-one: the last thread writes one element past the end of `out`.
__global__ void bug_oob_global_write(pa::gptr<float> out, int n) {
  const int t = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (t <= n) out[t] = 1.f;
}
// Reads one element past the end of a shared array.
__global__ void bug_oob_shared_read(pa::gptr<float> out) {
  PA_SHARED(float, s, 64);
  const unsigned t = threadIdx.x;
  s[t] = 1.f;
  __syncthreads();
  out[t] = s[t + 1];
}
// Thread 5 skips the first of two barriers.
__global__ void bug_skip_barrier(pa::gptr<float> out) {
  PA_SHARED(float, s, 64);
  const unsigned t = threadIdx.x;
  s[t] = 1.f;
  if (t != 5) __syncthreads();
  out[t] = s[t];
  __syncthreads();
}
// Thread 3 returns before a barrier the others wait at.
__global__ void bug_exit_before_barrier(pa::gptr<float> out) {
  PA_SHARED(float, s, 64);
  const unsigned t = threadIdx.x;
  if (t == 3) return;
  s[t] = 1.f;
  __syncthreads();
  out[t] = s[t];
}
// Lanes of one warp reach different collectives.
__global__ void bug_warp_divergence(pa::gptr<float> out) {
  const unsigned t = threadIdx.x;
  float v = float(t);
  if (t % 2)
    v = __shfl_xor_sync(0xffffffffu, v, 1);
  else
    v = __shfl_down_sync(0xffffffffu, v, 1);
  out[t] = v;
}

#if defined(__CUDACC__)
// nvcc compile check: instantiate the templates so their inline PTX is checked too.
template __global__ void mma_frag<true>(pa::gptr<const uint16_t>, pa::gptr<const uint16_t>,
                                        pa::gptr<const float>, pa::gptr<float>);
template __global__ void mma_frag<false>(pa::gptr<const uint16_t>, pa::gptr<const uint16_t>,
                                         pa::gptr<const float>, pa::gptr<float>);
#endif

}  // namespace emu_test
