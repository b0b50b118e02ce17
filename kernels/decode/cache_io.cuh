// cache_io.cuh -- pieces shared by the paged-cache kernels (decode: kernels/decode/decode.cu and
// decode_mma.cuh; the plan's run and append: kernels/paged/): element I/O of a cache pool, the
// fp32 RoPE of shared-memory rows and of a new K row's features. Written against the device
// layer (EMU and nvcc).
#ifndef POSATTN_CACHE_IO_CUH
#define POSATTN_CACHE_IO_CUH

#include <type_traits>

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
  // Four codes (one 32-bit word, code i in byte i) widened exactly to Tin (bf16 or f16): codes 0, 1
  // as the packed pair .x, codes 2, 3 as .y; each lane is value(c) (NaN codes give a NaN). Branch
  // free on 16-bit lanes, ~7 integer / packed instructions a pair. E5M2 -> f16: the code is the
  // top byte of the f16 of its value (one byte permute). Otherwise: one permute makes each lane
  // the code sign-extended to 16 bits; a shift left by 8 - kSh and one mask put the sign at bit
  // 15 and the exponent and mantissa fields under Tin's (bits kMarker/2 .. 8 - kSh), which reads
  // value * 2^-b (b = Tin's bias - the format's; subnormals included: both read 2^(1 - bias) *
  // 0.m); lanes whose special field is all ones (E4M3 S.1111.111, E5M2 exponent 11111) carry
  // into bit 15 - kSh (kMarker), and that carry times 2^kSh - 1 fills Tin's exponent up to bit
  // 14 (an add: those bits are zero), making NaN (mantissa kept: E4M3 111, E5M2 01..11) or, for
  // E5M2 00, inf; one exact packed product by 2^b then gives the value (NaN and inf stay).
  template <class Tin>
  static PA_DEVICE uint2 widen4(uint32_t w) {
    constexpr bool kBf = std::is_same<Tin, pa::bf16>::value;
    if (E5M2 && !kBf) return make_uint2(pa::prmt(w, 0u, 0x1404u), pa::prmt(w, 0u, 0x3424u));
    constexpr int kSh = kBf ? (E5M2 ? 3 : 4) : 1;  // the fields' offset below the code's byte
    constexpr uint32_t kLanes = 0x10001u;
    constexpr uint32_t kMask = (0x8000u | (0x7f00u >> kSh)) * kLanes;
    constexpr uint32_t kAdd = (1u << (8 - kSh + (E5M2 ? 2 : 0))) * kLanes;  // E5M2: exponent only
    constexpr uint32_t kMarker = (0x8000u >> kSh) * kLanes;
    constexpr uint32_t kScale = (kBf ? (E5M2 ? 127u - 15u : 127u - 7u) + 127u : 15u - 7u + 15u) *
                                (kBf ? 0x80u : 0x400u) * kLanes;  // 2^b in Tin
    auto pair = [](uint32_t y) {
      const uint32_t v = (y << (8 - kSh)) & kMask;
      const uint32_t s = v + ((v + kAdd) & kMarker) * ((1u << kSh) - 1u);
      return kBf ? pa::mul_bf16x2(s, kScale) : pa::mul_f16x2(s, kScale);
    };
    return make_uint2(pair(pa::prmt(w, 0u, 0x9180u)), pair(pa::prmt(w, 0u, 0xb3a2u)));
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

// Feature f of a new K row (load(i): its feature i), rotated at position pos when f lies in the
// rotary block: the pair holding f is rotated in fp32 and f's half of it returned (each thread of
// an append computes its own half). Used by the appends of decode and of the plan.
template <class Load>
PA_DEVICE float rope_feature(const pa_prefill_params &pe, int f, int32_t pos, Load load) {
  const int rd = pe.rotary_dim, half = rd / 2, fr = f - pe.rope_offset;  // fr: inside the block
  float x = load(f);
  if (fr >= 0 && fr < rd) {
    const int pair = pe.rope_gptj ? fr / 2 : (fr < half ? fr : fr - half);
    int a, b;
    pa_pe::rope_pair_features(pe, pair, a, b);
    const float2 v = pa_pe::rope_rotate(load(a), load(b), pa_pe::rope_cos_sin(pe, pair, pos));
    x = f == a ? v.x : v.y;
  }
  return x;
}

}  // namespace pa_cache
#endif
