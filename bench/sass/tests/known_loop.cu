// A kernel written for posattn-sass's tests: one loop whose every iteration does exactly
// 3 ldmatrix.x4 (3 x 512 bytes per warp), 6 mma.sync m16n8k16 bf16 and one __syncthreads.
// known_loop_sm80.sass is its committed `cuobjdump -sass` (nvcc 13, -O3 -arch=sm_80), so the
// parser tests run without nvcc; test_sass.py rebuilds it when nvcc is there.
#include <cstdint>

__global__ void known_loop(float *out, int n) {
  __shared__ __align__(16) uint16_t s[8192];
  for (int i = threadIdx.x; i < 8192; i += blockDim.x) s[i] = uint16_t(i);
  __syncthreads();
  float d[3][2][4] = {};
  const int lane = threadIdx.x % 32;
#pragma unroll 1
  for (int it = 0; it < n; ++it) {
#pragma unroll
    for (int j = 0; j < 3; ++j) {
      uint32_t a[4];
      const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(
          s + (((it * 3 + j) * 32 + lane) & 1023) * 8));
      asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                   : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3]) : "r"(addr));
      for (int h = 0; h < 2; ++h)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                     : "+f"(d[j][h][0]), "+f"(d[j][h][1]), "+f"(d[j][h][2]), "+f"(d[j][h][3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(a[2 * h]), "r"(a[2 * h + 1]));
    }
    __syncthreads();
  }
  float acc = 0.f;
  for (int j = 0; j < 3; ++j)
    for (int h = 0; h < 2; ++h) acc += d[j][h][0] + d[j][h][1] + d[j][h][2] + d[j][h][3];
  out[blockIdx.x * blockDim.x + threadIdx.x] = acc;
}
