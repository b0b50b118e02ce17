/* dtype.c -- element conversions between f32/f16/bf16/fp8 and double, rounding to nearest even
 * (FP8: host/fp8.h, saturating).
 *
 * Rounding from double is done in double arithmetic on the exact value (scale by a power of two,
 * rint in the default rounding mode, scale back), so every conversion rounds exactly once. */
#include <math.h>
#include <string.h>

#include "fp8.h"
#include "internal.h"

static uint32_t f32_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

static float bits_f32(uint32_t u) {
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

/* |x| (finite, non-zero) rounded to nearest even in a binary format with `digits` significand
 * bits (implicit bit included) and smallest normal exponent `emin`; below 2^emin the quantum stays
 * 2^(emin - digits + 1) (subnormals). Overflow is left to the caller. */
static double round_magnitude(double a, int digits, int emin) {
  int e = ilogb(a);
  if (e < emin) e = emin;
  int q = e - digits + 1; /* exponent of one unit in the last place */
  return ldexp(rint(ldexp(a, -q)), q);
}

uint16_t pa_f32_to_bf16(float x) {
  uint32_t u = f32_bits(x);
  if (isnan(x)) return (uint16_t)((u >> 16) | 0x0040u); /* keep sign and payload top, force quiet */
  /* Adding 0x7fff plus the lowest kept bit rounds to nearest even; a carry into the exponent is
   * the correct rounding up, and the largest finite values carry into inf as they must. */
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

float pa_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t pa_f64_to_bf16(double x) {
  if (isnan(x)) return (uint16_t)(signbit(x) ? 0xffc0u : 0x7fc0u);
  double a = fabs(x);
  if (a != 0 && !isinf(a)) {
    a = round_magnitude(a, 8, -126);
    if (a > 0x1.fep127) a = INFINITY;
  }
  /* a is now exactly representable in bf16 (hence in float): take the top half of its bits */
  float f = (float)(signbit(x) ? -a : a);
  return (uint16_t)(f32_bits(f) >> 16);
}

uint16_t pa_f64_to_f16(double x) {
  uint16_t sign = signbit(x) ? 0x8000u : 0;
  if (isnan(x)) return (uint16_t)(sign | 0x7e00u);
  double a = fabs(x);
  if (a == 0) return sign;
  if (!isinf(a)) a = round_magnitude(a, 11, -14);
  if (isinf(a) || a > 65504.0) return (uint16_t)(sign | 0x7c00u);
  if (a < 0x1p-14) return (uint16_t)(sign | (uint16_t)ldexp(a, 24)); /* subnormal: a / 2^-24 */
  int e = ilogb(a);
  uint16_t mant = (uint16_t)(ldexp(a, 10 - e) - 1024.0);
  return (uint16_t)(sign | (uint16_t)((e + 15) << 10) | mant);
}

uint16_t pa_f32_to_f16(float x) {
  if (isnan(x)) { /* keep sign and the top payload bits, force quiet */
    uint32_t u = f32_bits(x);
    return (uint16_t)(((u >> 16) & 0x8000u) | 0x7e00u | ((u >> 13) & 0x01ffu));
  }
  return pa_f64_to_f16((double)x); /* float -> double is exact, so this rounds once */
}

float pa_f16_to_f32(uint16_t h) {
  int e = (h >> 10) & 0x1f;
  int m = h & 0x3ff;
  float v;
  if (e == 0x1f)
    v = m ? bits_f32(0x7fc00000u | ((uint32_t)m << 13)) : INFINITY;
  else if (e == 0)
    v = ldexpf((float)m, -24);
  else
    v = ldexpf((float)(m | 0x400), e - 25);
  return (h & 0x8000u) ? -v : v;
}

/* x rounded once (nearest even) to an FP8 format and saturated as in fp8.h, as a code. */
uint8_t pa_f64_to_fp8(int e5m2, double x) {
  double a = fabs(x);
  if (!isnan(x) && a != 0 && !isinf(a)) {
    a = round_magnitude(a, pa_fp8_mbits(e5m2) + 1, 1 - pa_fp8_bias(e5m2));
    if (a > pa_fp8_max(e5m2)) a = pa_fp8_max(e5m2);
  }
  /* a is now an fp8 value (or NaN / inf, which the encoder maps): encoding it rounds nothing */
  return pa_fp8_encode(e5m2, (float)(signbit(x) ? -a : a));
}

double pa_round_to(posattn_dtype dt, double x) {
  switch (dt) {
    case POSATTN_DTYPE_F32: return (double)(float)x;
    case POSATTN_DTYPE_F16: return (double)pa_f16_to_f32(pa_f64_to_f16(x));
    case POSATTN_DTYPE_BF16: return (double)pa_bf16_to_f32(pa_f64_to_bf16(x));
    case POSATTN_DTYPE_FP8_E4M3: return (double)pa_fp8_decode(0, pa_f64_to_fp8(0, x));
    case POSATTN_DTYPE_FP8_E5M2: return (double)pa_fp8_decode(1, pa_f64_to_fp8(1, x));
  }
  return NAN;
}

double pa_load(const void *base, posattn_dtype dt, int64_t idx) {
  switch (dt) {
    case POSATTN_DTYPE_F32: return (double)((const float *)base)[idx];
    case POSATTN_DTYPE_F16: return (double)pa_f16_to_f32(((const uint16_t *)base)[idx]);
    case POSATTN_DTYPE_BF16: return (double)pa_bf16_to_f32(((const uint16_t *)base)[idx]);
    case POSATTN_DTYPE_FP8_E4M3: return (double)pa_fp8_decode(0, ((const uint8_t *)base)[idx]);
    case POSATTN_DTYPE_FP8_E5M2: return (double)pa_fp8_decode(1, ((const uint8_t *)base)[idx]);
  }
  return NAN;
}

void pa_store(void *base, posattn_dtype dt, int64_t idx, double x) {
  switch (dt) {
    case POSATTN_DTYPE_F32: ((float *)base)[idx] = (float)x; break;
    case POSATTN_DTYPE_F16: ((uint16_t *)base)[idx] = pa_f64_to_f16(x); break;
    case POSATTN_DTYPE_BF16: ((uint16_t *)base)[idx] = pa_f64_to_bf16(x); break;
    case POSATTN_DTYPE_FP8_E4M3: ((uint8_t *)base)[idx] = pa_f64_to_fp8(0, x); break;
    case POSATTN_DTYPE_FP8_E5M2: ((uint8_t *)base)[idx] = pa_f64_to_fp8(1, x); break;
  }
}

size_t posattn_dtype_size(posattn_dtype dtype) {
  switch (dtype) {
    case POSATTN_DTYPE_F32: return 4;
    case POSATTN_DTYPE_F16:
    case POSATTN_DTYPE_BF16: return 2;
    case POSATTN_DTYPE_FP8_E4M3:
    case POSATTN_DTYPE_FP8_E5M2: return 1;
  }
  return 0;
}

const char *posattn_dtype_string(posattn_dtype dtype) {
  switch (dtype) {
    case POSATTN_DTYPE_F32: return "f32";
    case POSATTN_DTYPE_F16: return "f16";
    case POSATTN_DTYPE_BF16: return "bf16";
    case POSATTN_DTYPE_FP8_E4M3: return "fp8_e4m3";
    case POSATTN_DTYPE_FP8_E5M2: return "fp8_e5m2";
  }
  return "unknown";
}
