// The FP8 widening of the tensor-core split kernels (pa_cache::Fp8IO::widen4, kernels/decode/
// cache_io.cuh, used by widen_fp8_tile in kernels/decode/mma_split.cuh) and the packed products it
// rests on (pa::mul_f16x2 / pa::mul_bf16x2, kernels/device/device.cuh), checked exhaustively on
// the emulator path against host/fp8.h's decoder (the one REF uses): every pair of codes in every
// lane of a word, both formats, both targets; values bit-exact (signed zeros included), NaN
// codes NaN, E5M2 infinities infinite.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "decode/cache_io.cuh"

namespace {

template <class Tin>
float lane(uint32_t pair, int hi) {
  return pa::to_float(Tin{uint16_t(hi ? pair >> 16 : pair & 0xffffu)});
}

// Returns the number of mismatching lanes (the first few are reported).
template <int E5M2, class Tin>
int widen_mismatches(const char *what) {
  int bad = 0;
  for (uint32_t a = 0; a < 256; ++a) {
    for (uint32_t b = 0; b < 256; ++b) {
      // a and b in every byte position and next to each other both ways
      const uint32_t w = a | (b << 8) | (b << 16) | (a << 24);
      const uint2 r = pa_cache::Fp8IO<E5M2>::template widen4<Tin>(w);
      const uint32_t codes[4] = {a, b, b, a};
      const float got[4] = {lane<Tin>(r.x, 0), lane<Tin>(r.x, 1), lane<Tin>(r.y, 0), lane<Tin>(r.y, 1)};
      for (int i = 0; i < 4; ++i) {
        const float want = pa_fp8_decode(E5M2, uint8_t(codes[i]));
        const bool ok = std::isnan(want) ? std::isnan(got[i])
                                         : got[i] == want && std::signbit(got[i]) == std::signbit(want);
        if (!ok && ++bad <= 5)
          ADD_FAILURE() << what << ": code 0x" << std::hex << codes[i] << " in lane " << i << " of word 0x" << w
                        << std::dec << " widened to " << got[i] << ", decoder says " << want;
      }
    }
  }
  return bad;
}

TEST(Fp8Widen, E4M3ToF16MatchesDecoderForAllCodePairs) {
  EXPECT_EQ((widen_mismatches<0, pa::f16>("E4M3->f16")), 0);
}
TEST(Fp8Widen, E4M3ToBf16MatchesDecoderForAllCodePairs) {
  EXPECT_EQ((widen_mismatches<0, pa::bf16>("E4M3->bf16")), 0);
}
TEST(Fp8Widen, E5M2ToF16MatchesDecoderForAllCodePairs) {
  EXPECT_EQ((widen_mismatches<1, pa::f16>("E5M2->f16")), 0);
}
TEST(Fp8Widen, E5M2ToBf16MatchesDecoderForAllCodePairs) {
  EXPECT_EQ((widen_mismatches<1, pa::bf16>("E5M2->bf16")), 0);
}

// The packed products: each lane the correctly rounded product, subnormal inputs kept (widen4
// multiplies bf16 / f16 subnormals by powers of two).
TEST(Fp8Widen, PackedProductsScaleSubnormalsExactly) {
  for (uint32_t m = 1; m < 0x80u; ++m) {  // bf16 subnormals m * 2^-133, times 2^120
    const uint32_t r = pa::mul_bf16x2(m | ((m | 0x8000u) << 16), 0x7b807b80u);
    EXPECT_EQ(lane<pa::bf16>(r, 0), std::ldexp(float(m), -13)) << m;
    EXPECT_EQ(lane<pa::bf16>(r, 1), -std::ldexp(float(m), -13)) << m;
  }
  for (uint32_t m = 1; m < 0x400u; ++m) {  // f16 subnormals m * 2^-24, times 2^8
    const uint32_t r = pa::mul_f16x2(m | ((m | 0x8000u) << 16), 0x5c005c00u);
    EXPECT_EQ(lane<pa::f16>(r, 0), std::ldexp(float(m), -16)) << m;
    EXPECT_EQ(lane<pa::f16>(r, 1), -std::ldexp(float(m), -16)) << m;
  }
  // rounding: 1.5 * (1 + 2^-10) = 1.5 + 1.5 ulp, a tie in f16, goes to the even 1.5 + 2 ulp
  EXPECT_EQ(lane<pa::f16>(pa::mul_f16x2(0x3e00u, 0x3c01u), 0), 1.5f + std::ldexp(1.f, -9));
}

// pa::prmt on the emulator: byte selection from {b, a} and sign replication (nibble bit 3).
TEST(Fp8Widen, PrmtSelectsAndSignReplicatesBytes) {
  const uint32_t a = 0x80417f02u, b = 0xc3b4a596u;
  EXPECT_EQ(pa::prmt(a, b, 0x3210u), a);
  EXPECT_EQ(pa::prmt(a, b, 0x7654u), b);
  EXPECT_EQ(pa::prmt(a, b, 0x0415u), 0x02967fa5u);
  EXPECT_EQ(pa::prmt(a, b, 0x9180u), 0x007f0002u);  // byte 0 sign +, byte 1 sign +
  EXPECT_EQ(pa::prmt(a, b, 0xb3a2u), 0xff800041u);  // byte 2 sign +, byte 3 sign -
  EXPECT_EQ(pa::prmt(a, b, 0xfedcu), 0xffffffffu);  // b's bytes 4..7 all negative
}

}  // namespace
