/* fp8.h -- the one definition of the OCP FP8 conversions (E4M3 "e4m3fn" and E5M2), shared by the
 * host (host/dtype.c: REF, tests) and the kernels (kernels/decode/decode.cu: EMU and nvcc).
 * C99 and C++; under nvcc the functions are __host__ __device__.
 *
 *   format  bias  mantissa bits  largest finite  special codes
 *   E4M3    7     3              448 (0x7e)      S.1111.111 = NaN; no infinity
 *   E5M2    15    2              57344 (0x7b)    S.11111.00 = inf, S.11111.{01,10,11} = NaN
 *
 * Decoding is exact (every fp8 value is a float). Encoding from float rounds to nearest, ties to
 * even, once, and SATURATES: a finite value beyond the largest finite one and +-inf become +-max
 * (NVIDIA's __NV_SATFINITE); NaN becomes NaN (sign kept: E4M3 S.1111.111, E5M2 S.11111.10);
 * -0 stays -0. */
#ifndef POSATTN_FP8_H
#define POSATTN_FP8_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define PA_FP8_FN static __host__ __device__ __forceinline__
#else
#define PA_FP8_FN static inline
#endif

PA_FP8_FN uint32_t pa_fp8_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}
PA_FP8_FN float pa_fp8_float(uint32_t u) {
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

/* Format parameters: e5m2 = 0 for E4M3, 1 for E5M2. */
PA_FP8_FN int pa_fp8_mbits(int e5m2) { return e5m2 ? 2 : 3; }
PA_FP8_FN int pa_fp8_bias(int e5m2) { return e5m2 ? 15 : 7; }
PA_FP8_FN float pa_fp8_max(int e5m2) { return e5m2 ? 57344.0f : 448.0f; }

/* The value of `code`. */
PA_FP8_FN float pa_fp8_decode(int e5m2, uint8_t code) {
  const int mb = pa_fp8_mbits(e5m2), bias = pa_fp8_bias(e5m2);
  const uint32_t sign = (uint32_t)(code & 0x80u) << 24;
  const uint32_t e = (code & 0x7fu) >> mb, m = code & ((1u << mb) - 1u);
  const uint32_t emax = e5m2 ? 31u : 15u;
  if (e5m2 && e == emax) return pa_fp8_float(sign | 0x7f800000u | (m << 21)); /* inf, NaN */
  if (!e5m2 && e == emax && m == 7u) return pa_fp8_float(sign | 0x7fc00000u); /* NaN */
  if (e == 0) { /* subnormal: m * 2^(1 - bias - mb), exact in float */
    const float v = (float)m * pa_fp8_float((uint32_t)(127 + 1 - bias - mb) << 23);
    return sign ? -v : v;
  }
  return pa_fp8_float(sign | ((e + 127u - (uint32_t)bias) << 23) | (m << (23 - mb)));
}

/* `x` rounded to nearest even and saturated (see above), as a code. */
PA_FP8_FN uint8_t pa_fp8_encode(int e5m2, float x) {
  const int mb = pa_fp8_mbits(e5m2), bias = pa_fp8_bias(e5m2);
  const uint32_t u = pa_fp8_bits(x), sign = (u >> 24) & 0x80u, a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint8_t)(sign | (e5m2 ? 0x7eu : 0x7fu));  /* NaN */
  const float ax = pa_fp8_float(a);
  if (ax >= pa_fp8_max(e5m2)) return (uint8_t)(sign | (e5m2 ? 0x7bu : 0x7eu)); /* saturate */
  /* One unit in the last place at |x|'s binade (the subnormal quantum below the normal range);
   * |x| / ulp and the product back are exact, so rintf is the only rounding. */
  int ex = (int)(a >> 23) - 127;
  if (ex < 1 - bias) ex = 1 - bias;
  const float ulp = pa_fp8_float((uint32_t)(ex - mb + 127) << 23);
  const float n = rintf(ax / ulp);
  const float r = n * ulp; /* <= max: values that round past max were saturated above */
  if (r < pa_fp8_float((uint32_t)(1 - bias + 127) << 23)) /* subnormal (n may reach 2^mb) */
    return (uint8_t)(sign | (uint32_t)n);
  const uint32_t rb = pa_fp8_bits(r);
  const uint32_t e = (rb >> 23) - 127u + (uint32_t)bias, m = (rb >> (23 - mb)) & ((1u << mb) - 1u);
  return (uint8_t)(sign | (e << mb) | m);
}

#endif /* POSATTN_FP8_H */
