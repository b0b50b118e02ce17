// cache_io.cuh -- pieces shared by the paged-cache kernels (decode: kernels/decode/decode.cu and
// decode_mma.cuh; the plan's run and append: kernels/paged/): element I/O of a cache pool and the
// fp32 RoPE of shared-memory rows. Written against the device layer (EMU and nvcc).
#ifndef POSATTN_CACHE_IO_CUH
#define POSATTN_CACHE_IO_CUH

#include "fp8.h"
#include "pe/rope.cuh"

namespace pa_cache {

// Element I/O of a cache pool of 16/32-bit floats and of the FP8 formats.
template <class T>
struct CacheIO {
  static PA_DEVICE float load(pa::gptr<const unsigned char> pool, int64_t i) {
    return pa::to_float(T(pa::ptr_cast<const T>(pool)[i]));
  }
  static PA_DEVICE void store(pa::gptr<unsigned char> pool, int64_t i, float x) {
    pa::ptr_cast<T>(pool)[i] = pa::from_float<T>(x);
  }
};
// FP8 reads widen exactly through an f16 bit pattern (one conversion instruction on the GPU, no
// branches: fewer registers than host/fp8.h's generic decoder, which REF uses and the tests compare
// against). An E5M2 code is the top byte of the f16 of the same value (inf and NaN included).
// E4M3's exponent and mantissa fields placed in f16's give value * 2^-8 (bias 7 against 15),
// subnormals included; S.1111.111 is NaN.
template <int E5M2>
struct Fp8IO {
  // The value of code c (0..255).
  static PA_DEVICE float value(uint32_t c) {
    if (E5M2) return pa::to_float(pa::f16{uint16_t(c << 8)});
    const float v = pa::to_float(pa::f16{uint16_t(((c & 0x80u) << 8) | ((c & 0x7fu) << 7))}) * 256.f;
    return (c & 0x7fu) == 0x7fu ? NAN : v;
  }
  static PA_DEVICE float load(pa::gptr<const unsigned char> pool, int64_t i) {
    return value(uint8_t(pool[i]));
  }
  static PA_DEVICE void store(pa::gptr<unsigned char> pool, int64_t i, float x) {
    pool[i] = pa_fp8_encode(E5M2, x);
  }
};

// The dequantisation scale of kv head h from a [1] or [kv_heads] scale array (1 without scales:
// every non-FP8 cache).
PA_DEVICE float scale_of(pa::gptr<const float> s, int per_head, int h) {
  return s ? float(s[per_head ? h : 0]) : 1.f;
}

// RoPE, in fp32, on `count` shared-memory rows of width dr, row r at position pos[r]; the block's
// kThreads threads share the (row, pair) work.
template <int kThreads>
PA_DEVICE void rope_rows(const pa_prefill_params &pe, pa::sptr<float> rows, int count, int dr,
                         int half, pa::sptr<int32_t> pos, int tid) {
  for (int e = tid; e < count * half; e += kThreads) {
    const int r = e / half, pair = e % half;
    int a, b;
    pa_pe::rope_pair_features(pe, pair, a, b);
    const pa::sptr<float> row = rows + r * dr;
    const float2 v = pa_pe::rope_rotate(row[a], row[b], pa_pe::rope_cos_sin(pe, pair, pos[r]));
    row[a] = v.x;
    row[b] = v.y;
  }
}

}  // namespace pa_cache
#endif
