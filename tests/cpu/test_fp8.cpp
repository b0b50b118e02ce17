// The FP8 conversions (host/fp8.h, used by REF, EMU and the CUDA kernels) against the OCP FP8
// definition, computed here independently from the bit fields: all 256 codes of E4M3 and E5M2
// decode to their values; encoding rounds to nearest even (every midpoint between adjacent codes,
// and just either side of it), once from double (values a hair off a midpoint that a float would
// round onto it), and saturates (beyond the largest value, +-inf), keeps NaN and -0; random
// values of every magnitude encode to the nearest code found by search.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "pa_test_shim.h"

namespace {

struct Format {
  int e5m2, bias, mbits, emax_field;
  const char *name;
};
const Format kFormats[] = {{0, 7, 3, 15, "e4m3"}, {1, 15, 2, 31, "e5m2"}};

// OCP 8-bit floating point specification (v1.0): E4M3 has no infinities and one NaN mantissa
// (S.1111.111); E5M2 follows IEEE 754 (S.11111.00 = inf, other all-ones exponents NaN).
double ocp_value(const Format &f, int code) {
  const int s = code >> 7, e = (code >> f.mbits) & ((1 << (7 - f.mbits)) - 1);
  const int m = code & ((1 << f.mbits) - 1);
  double v;
  if (f.e5m2 && e == f.emax_field) v = m == 0 ? INFINITY : NAN;
  else if (!f.e5m2 && e == f.emax_field && m == (1 << f.mbits) - 1) v = NAN;
  else if (e == 0) v = std::ldexp(double(m), 1 - f.bias - f.mbits);
  else v = std::ldexp(1.0 + double(m) / (1 << f.mbits), e - f.bias);
  return s ? -v : v;
}

// The finite non-negative codes in increasing value order (0x00 up to the largest finite code).
std::vector<int> positive_codes(const Format &f) {
  std::vector<int> c;
  for (int code = 0; code < 128; ++code)
    if (std::isfinite(ocp_value(f, code))) c.push_back(code);
  for (size_t i = 1; i < c.size(); ++i) EXPECT_GT(ocp_value(f, c[i]), ocp_value(f, c[i - 1]));
  return c;
}

// Nearest code to x by search (ties to the even code), saturating: the independent encoder.
int nearest_code(const Format &f, double x) {
  const std::vector<int> pos = positive_codes(f);
  const double a = std::fabs(x);
  int best = pos.back();
  if (a < ocp_value(f, pos.back()))
    for (size_t i = 0; i + 1 < pos.size(); ++i) {
      const double lo = ocp_value(f, pos[i]), hi = ocp_value(f, pos[i + 1]);
      if (a >= lo && a <= hi) {
        if (a - lo < hi - a) best = pos[i];
        else if (hi - a < a - lo) best = pos[i + 1];
        else best = pos[i] % 2 == 0 ? pos[i] : pos[i + 1];
        break;
      }
    }
  return (std::signbit(x) ? 0x80 : 0) | best;
}

void expect_code(const Format &f, double x, int want) {
  EXPECT_EQ(pat_fp8_from_f64(f.e5m2, x), want) << f.name << " from double " << x;
  if (double(float(x)) == x) {
    EXPECT_EQ(pat_fp8_encode(f.e5m2, float(x)), want) << f.name << " from float " << x;
  }
}

TEST(Fp8, AllCodesDecodeToOcpValues) {
  for (const Format &f : kFormats) {
    int nans = 0, infs = 0;
    for (int code = 0; code < 256; ++code) {
      const double want = ocp_value(f, code);
      const float got = pat_fp8_decode(f.e5m2, uint8_t(code));
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(got)) << f.name << " code " << code;
        ++nans;
        continue;
      }
      infs += std::isinf(want);
      EXPECT_EQ(double(got), want) << f.name << " code " << code;
      EXPECT_EQ(std::signbit(got), code >= 128) << f.name << " code " << code;
    }
    EXPECT_EQ(nans, f.e5m2 ? 6 : 2) << f.name;
    EXPECT_EQ(infs, f.e5m2 ? 2 : 0) << f.name;
  }
  EXPECT_EQ(ocp_value(kFormats[0], 0x7e), 448.0);
  EXPECT_EQ(ocp_value(kFormats[1], 0x7b), 57344.0);
  EXPECT_EQ(ocp_value(kFormats[0], 0x01), std::ldexp(1.0, -9));
  EXPECT_EQ(ocp_value(kFormats[1], 0x01), std::ldexp(1.0, -16));
}

TEST(Fp8, EveryFiniteCodeEncodesToItself) {
  for (const Format &f : kFormats)
    for (int code = 0; code < 256; ++code) {
      const double v = ocp_value(f, code);
      if (std::isfinite(v)) expect_code(f, v, code);
    }
}

TEST(Fp8, MidpointsRoundToEvenAndNeighboursToNearest) {
  for (const Format &f : kFormats) {
    const std::vector<int> pos = positive_codes(f);
    for (size_t i = 0; i + 1 < pos.size(); ++i) {
      const int lo = pos[i], hi = pos[i + 1];
      const double a = ocp_value(f, lo), b = ocp_value(f, hi), mid = 0.5 * (a + b);
      const int even = lo % 2 == 0 ? lo : hi;
      for (int sign : {0, 0x80}) {
        const double s = sign ? -1.0 : 1.0;
        expect_code(f, s * mid, sign | even);
        // either side of the midpoint, by a float step and by a tiny double step: a float would
        // round the latter onto the midpoint (double rounding), the double encoder must not
        expect_code(f, s * double(std::nextafter(float(mid), float(b))), sign | hi);
        expect_code(f, s * double(std::nextafter(float(mid), float(a))), sign | lo);
        const double tiny = mid * std::ldexp(1.0, -40);
        EXPECT_EQ(pat_fp8_from_f64(f.e5m2, s * (mid + tiny)), sign | hi) << f.name << " " << mid;
        EXPECT_EQ(pat_fp8_from_f64(f.e5m2, s * (mid - tiny)), sign | lo) << f.name << " " << mid;
      }
    }
  }
}

TEST(Fp8, SaturationNanInfAndSignedZero) {
  for (const Format &f : kFormats) {
    const std::vector<int> pos = positive_codes(f);
    const int maxc = pos.back();
    const double mx = ocp_value(f, maxc);
    const double step = mx - ocp_value(f, pos[pos.size() - 2]);  // ulp of the top binade
    for (double x : {mx + 0.5 * step, mx + 0.75 * step, mx + step, 2 * mx, 1e30,
                     double(std::numeric_limits<float>::max()), double(INFINITY)}) {
      expect_code(f, x, maxc);
      expect_code(f, -x, 0x80 | maxc);
    }
    EXPECT_EQ(pat_fp8_from_f64(f.e5m2, 1e300), maxc) << f.name;  // beyond float range too
    for (double nan : {double(NAN), -double(NAN)}) {
      EXPECT_TRUE(std::isnan(pat_fp8_decode(f.e5m2, pat_fp8_from_f64(f.e5m2, nan)))) << f.name;
      EXPECT_TRUE(std::isnan(pat_fp8_decode(f.e5m2, pat_fp8_encode(f.e5m2, float(nan))))) << f.name;
    }
    expect_code(f, -0.0, 0x80);
    expect_code(f, 0.0, 0x00);
    const double tiny = ocp_value(f, 1);  // smallest subnormal
    expect_code(f, 0.5 * tiny, 0x00);     // tie between 0 and the smallest subnormal: even (0)
    expect_code(f, -0.5 * tiny, 0x80);
    expect_code(f, 0.75 * tiny, 0x01);
    expect_code(f, 1e-30, 0x00);
    expect_code(f, double(std::numeric_limits<float>::denorm_min()), 0x00);
  }
}

TEST(Fp8, RandomValuesEncodeToNearestCode) {
  pat_rng r;
  pat_rng_seed(&r, 14);
  for (const Format &f : kFormats) {
    const double top = std::log2(ocp_value(f, positive_codes(f).back())) + 2;
    for (int i = 0; i < 20000; ++i) {
      const double mag = std::exp2(pat_rng_uniform(&r, -f.bias - f.mbits - 3, top));
      const double x = pat_rng_uniform(&r, 0, 1) < 0.5 ? -mag : mag;
      const int want = nearest_code(f, x);
      ASSERT_EQ(pat_fp8_from_f64(f.e5m2, x), want) << f.name << " " << x;
      ASSERT_EQ(pat_fp8_encode(f.e5m2, float(x)), nearest_code(f, double(float(x)))) << f.name << " " << x;
    }
  }
}

}  // namespace
