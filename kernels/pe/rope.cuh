// rope.cuh -- the "transform q/k" hook: RoPE (pe-spec §1-2) and the rotary part of xPos.
//
// Every scaling (linear, NTK, dynamic NTK, YaRN, Llama 3, LongRoPE, caller table, proportional
// zero pairs) arrives as the host-computed inv_freq table (fp64 on the host; the fp32 copy is
// read by FAST only, EXACT reads tables built from the fp64 values) plus rope_attn_factor, so one
// device routine serves them all.
// Angles:
//   FAST   angle = float(p) * inv_freq[i] in fp32 (error ~ p * 2^-24 rad), then fast_cos_sin: no
//          libm call, so no slow path and no stack frame in any instance (issue 12).
//   EXACT  p = hi * 2^shift + lo; R(p w) = R(hi 2^shift w) * R(lo w), both factors read from fp32
//          tables computed in fp64 on the host: each entry is within 2^-24 of the true cos/sin,
//          so the product is within ~1.5e-7 rad of the exact angle for every p the table covers.
//          Negative positions (default positions when q_len > kv_len) use R(-p) = conj(R(p)).
// The attention factor multiplies cos and sin, i.e. the rotated features only (partial rotary
// leaves features >= rotary_dim untouched and unscaled).
#ifndef POSATTN_PE_ROPE_CUH
#define POSATTN_PE_ROPE_CUH

#include "prefill/params.h"

namespace pa_pe {

// Features (a, b) forming rotary pair `pair` (0 <= pair < rotary_dim/2): NeoX (i, i + r/2),
// GPT-J (2i, 2i+1), both shifted by rope_offset.
PA_HD void rope_pair_features(const pa_prefill_params &p, int pair, int &a, int &b) {
  if (p.rope_gptj) {
    a = p.rope_offset + 2 * pair;
    b = p.rope_offset + 2 * pair + 1;
  } else {
    a = p.rope_offset + pair;
    b = p.rope_offset + pair + p.rotary_dim / 2;
  }
}

// cos and sin of an fp32 angle a (|a| < 2^31), branch-free and identical on the GPU and in the
// emulator (only fmaf, rintf and conversions): a = j pi/2 + x, |x| <= pi/4, with pi/2 = P1 + P2 +
// P3 (P1, P2 fp32) subtracted by FMAs; j = j1 + j2 in two rounds because a 2/pi rounded to fp32
// misses the nearest integer by up to ulp(a) once a > 2^24. Then the Taylor polynomials of sin to
// x^9 and cos to x^10 (truncation < 2e-9) and the quadrant j mod 4. Error against the exact cos,
// sin of the fp32 angle (host check over 2^-10 .. 2^30): < 1e-7 up to a = 2^24, 5e-6 at 2^30,
// always far below the angle's own fp32 rounding (a 2^-24); no libm slow path, no stack frame.
PA_HD float2 fast_cos_sin(float a) {
  const float j1 = rintf(a * 0.636619772f);
  float x = fmaf(-j1, 1.57079637f, a);
  x = fmaf(-j1, -4.37113883e-8f, x);
  x = fmaf(-j1, -1.71512444e-15f, x);
  const float j2 = rintf(x * 0.636619772f);
  x = fmaf(-j2, 1.57079637f, x);
  x = fmaf(-j2, -4.37113883e-8f, x);
  const float z = x * x;
  const float sn = fmaf(x * z, fmaf(z, fmaf(z, fmaf(z, 2.75573188e-6f, -1.98412701e-4f),
                                            8.33333377e-3f), -0.166666672f), x);
  const float cs = fmaf(z, fmaf(z, fmaf(z, fmaf(z, fmaf(z, -2.75573200e-7f, 2.48015876e-5f),
                                                -1.38888892e-3f), 4.16666679e-2f), -0.5f), 1.f);
  const int q = int((int64_t(j1) + int64_t(j2)) & 3);  // j mod 4, also for negative j
  const float c = (q & 1) ? sn : cs, s = (q & 1) ? cs : sn;
  return make_float2((q == 1 || q == 2) ? -c : c, (q & 2) ? -s : s);
}

// (cos, sin) of pair `pair` at position `pos`, times the attention factor.
PA_DEVICE float2 rope_cos_sin(const pa_prefill_params &p, int pair, int32_t pos) {
  float c, s;
  if (p.rope_exact) {
    const int half = p.rotary_dim / 2;
    const int64_t ap = pos < 0 ? -int64_t(pos) : int64_t(pos);
    const int64_t hi = ap >> p.exact_shift, lo = ap & ((int64_t(1) << p.exact_shift) - 1);
    const float ch = p.exact_hi[(hi * half + pair) * 2], sh = p.exact_hi[(hi * half + pair) * 2 + 1];
    const float cl = p.exact_lo[(lo * half + pair) * 2], sl = p.exact_lo[(lo * half + pair) * 2 + 1];
    c = ch * cl - sh * sl;
    s = sh * cl + ch * sl;
    if (pos < 0) s = -s;
  } else {
    const float2 cs = fast_cos_sin(float(pos) * p.inv_freq[pair]);
    c = cs.x;
    s = cs.y;
  }
  return make_float2(c * p.rope_attn_factor, s * p.rope_attn_factor);
}

// (a, b) rotated by (c, s): (a c - b s, a s + b c).
PA_HD float2 rope_rotate(float a, float b, float2 cs) {
  return make_float2(a * cs.x - b * cs.y, a * cs.y + b * cs.x);
}

// Rotates features [rope_offset, rope_offset + rotary_dim) of an fp32 row x (anything indexable: array, sptr) at
// position pos, in place. No-op when rotary_dim is 0.
template <class X>
PA_DEVICE void rope_rotate_row(const pa_prefill_params &p, X x, int32_t pos) {
  for (int i = 0; i < p.rotary_dim / 2; ++i) {
    int a, b;
    rope_pair_features(p, i, a, b);
    const float2 r = rope_rotate(x[a], x[b], rope_cos_sin(p, i, pos));
    x[a] = r.x;
    x[b] = r.y;
  }
}

}  // namespace pa_pe
#endif
