// fuzz_pe -- the host-side positional helpers of posattn.h (posattn_pe_*) with raw arguments.
//
// Rules checked (formulas written here from posattn.h, not taken from the library):
//  - alibi_slopes: SUCCESS exactly when n_heads >= 1; every slope finite and in (0, 1];
//  - rope_inv_freq: on SUCCESS every inv_freq is >= 0 and the attention factor > 0 (never NaN),
//    and the table within the kernels' range (every inv_freq <= 2^20, attention factor <= 16,
//    posattn.h RANGES: the helpers refuse what forward refuses); on failure a message in `why`;
//  - rope_apply, within that range: SUCCESS, |y| over the rotated pairs = attention_factor * |x|
//    (a rotation, to 1e-9 relative) and the features outside [rotary_offset, + rotary_dim)
//    copied exactly; pairs from active_pairs on have inv_freq 0;
//  - t5_bucket: in [0, num_buckets) for valid parameters (the header's rule), -1 otherwise; causal
//    buckets never decrease as the key moves further into the past;
//  - fire_x: never negative for L > 0, eps >= 0 (x = log1p(|c| d) / (log1p(|c| max(L, pq)) + eps));
//  - xpos_scale: for valid parameters in the kernels' range (scale_base >= 1) positive, and
//    scale(delta) * scale(-delta) = 1 where finite; NaN outside that range;
//  - pe_bias: on SUCCESS finite, and equal (1e-9 relative) to the header's formula: ALiBi
//    -slope |pq - pk| (standard slopes from alibi_slopes), T5 table[bucket(pk - pq)][h], KERPLE
//    log -p log(1 + a d) and power -a d^p, FIRE the MLP Linear(1,w) -> ReLU -> Linear(w,H) at
//    fire_x; 0 for NONE, ROPE and XPOS.
#include <algorithm>

#include "fuzz_common.hpp"

namespace {
using namespace pa_fuzz;

struct Case {
  uint8_t which = 0, kind = 0, layout = 0, scaling = 0, heads = 0, head = 0, bidir = 0;
  int32_t n = 0, head_dim = 0, rotary_dim = 0, seq_len = 0, orig = 0, buckets = 0, maxdist = 0;
  int64_t pq = 0, pk = 0;
  double base = 0, factor = 0, attn = 0, beta_fast = 0, beta_slow = 0, lowf = 0, highf = 0;
  double c = 0, L = 0, eps = 0, sb = 0, gamma = 0;
  float amp = 0;
  uint64_t seed = 0;
  RopeExtra rope_extra;  // last: older inputs end before it (see RopeExtra)
};

template <class IO>
void fields(IO &io, Case &c) {
  io(c.which); io(c.kind); io(c.layout); io(c.scaling); io(c.heads); io(c.head); io(c.bidir);
  io(c.n); io(c.head_dim); io(c.rotary_dim); io(c.seq_len); io(c.orig); io(c.buckets);
  io(c.maxdist); io(c.pq); io(c.pk); io(c.base); io(c.factor); io(c.attn); io(c.beta_fast);
  io(c.beta_slow); io(c.lowf); io(c.highf); io(c.c); io(c.L); io(c.eps); io(c.sb); io(c.gamma);
  io(c.amp); io(c.seed);
  fields(io, c.rope_extra);
}

bool close(double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max(1.0, std::fabs(b)); }

// RoPE parameters from the case: defaults, with the raw numbers where the case has them nonzero.
struct Rope {
  posattn_rope_params p{};
  std::vector<double> ext, inv;
  int32_t head_dim = 0;
  Rope(const Case &c, pat_rng *r) {
    posattn_pe pe;
    posattn_pe_init(&pe);
    p = pe.rope;
    set_raw(p.layout, c.layout % 3);    // 2: an unknown layout
    set_raw(p.scaling, c.scaling % 9);  // 8: an unknown scaling
    head_dim = c.head_dim % 600 - 20;
    p.rotary_dim = c.rotary_dim % 3 == 0 ? 0 : c.rotary_dim % 600 - 20;
    if (c.base != 0) p.base = c.base;
    if (c.factor != 0) p.factor = c.factor;
    p.attention_factor = c.attn;
    if (c.orig != 0) p.original_max_position = c.orig;
    if (c.beta_fast != 0) p.beta_fast = c.beta_fast;
    if (c.beta_slow != 0) p.beta_slow = c.beta_slow;
    if (c.lowf != 0) p.low_freq_factor = c.lowf;
    if (c.highf != 0) p.high_freq_factor = c.highf;
    const double a = c.amp != 0 ? double(c.amp) : 1.0;  // raw: may be negative, NaN, inf
    ext.resize(600);
    inv.resize(600);
    for (double &x : ext) x = 1 + pat_rng_uniform(r, 0, 1) * a;
    for (double &x : inv) x = pat_rng_uniform(r, 0.001, 1) * a;
    p.ext_factors = ext.data();
    p.inv_freq = inv.data();
    apply_rope_extra(c.rope_extra, p, head_dim, false);
  }
};

void check_rope(const Case &c, pat_rng *r) {
  Rope R(c, r);
  std::vector<double> inv(600), x(600), y(600);
  double af = 0;
  char why[256] = "";
  const posattn_status st =
      posattn_pe_rope_inv_freq(&R.p, R.head_dim, c.seq_len, inv.data(), &af, why, sizeof why);
  note("  rope_inv_freq(scaling %d, head_dim %d, rotary_dim %d, base %g, factor %g, attention "
       "factor %g, original %d, beta %g/%g, llama3 %g/%g, seq_len %d, amp %g, rotary_offset %d, "
       "active_pairs %d, mscale %g/%g, longrope_factor %g): %s %s",
       int(c.scaling % 9), R.head_dim, R.p.rotary_dim, R.p.base, R.p.factor, R.p.attention_factor,
       R.p.original_max_position, R.p.beta_fast, R.p.beta_slow, R.p.low_freq_factor,
       R.p.high_freq_factor, c.seq_len, double(c.amp), R.p.rotary_offset, R.p.active_pairs,
       R.p.mscale, R.p.mscale_all_dim, R.p.longrope_factor, posattn_status_string(st), why);
  if (st != POSATTN_STATUS_SUCCESS) {
    PA_FUZZ_CHECK(why[0] != 0, "rope_inv_freq failed (%s) without a message", posattn_status_string(st));
    return;
  }
  const int32_t d = R.p.rotary_dim ? R.p.rotary_dim : R.head_dim - R.p.rotary_offset;
  double w = 0;
  for (int i = 0; i < d / 2; ++i) {
    PA_FUZZ_CHECK(inv[size_t(i)] >= 0, "rope_inv_freq: SUCCESS with inv_freq[%d] = %g", i,
                  inv[size_t(i)]);  // 0: an fp64 underflow (e.g. a huge LINEAR factor), harmless
    w = std::max(w, inv[size_t(i)]);
  }
  PA_FUZZ_CHECK(af > 0 && !std::isnan(af), "rope_inv_freq: SUCCESS with attention factor %g", af);
  // the kernels' range (posattn.h RANGES): a table beyond it must be refused, as forward does
  PA_FUZZ_CHECK(w <= 0x1p20 && af <= 16, "rope_inv_freq: SUCCESS with inv_freq up to %g and "
                "attention factor %g, outside the kernels' range", w, af);
  for (int i = 0; i < R.head_dim; ++i) x[size_t(i)] = pat_rng_uniform(r, -1, 1);
  const int64_t pos = c.pq % (int64_t(1) << 40);
  const posattn_status sa = posattn_pe_rope_apply(&R.p, R.head_dim, c.seq_len, pos, x.data(), y.data());
  PA_FUZZ_CHECK(sa == POSATTN_STATUS_SUCCESS, "rope_apply: %s where rope_inv_freq succeeded",
                posattn_status_string(sa));
  const int32_t off = R.p.rotary_offset;  // rotated: features [off, off + d)
  double nx = 0, ny = 0;
  for (int i = off; i < off + d; ++i) {
    nx += x[size_t(i)] * x[size_t(i)];
    ny += y[size_t(i)] * y[size_t(i)];
  }
  PA_FUZZ_CHECK(std::isfinite(ny) && close(std::sqrt(ny), af * std::sqrt(nx)),
                "rope_apply at %lld: |y| = %g, attention factor * |x| = %g", (long long)pos,
                std::sqrt(ny), af * std::sqrt(nx));
  for (int i = 0; i < R.head_dim; ++i)
    if (i < off || i >= off + d)
      PA_FUZZ_CHECK(y[size_t(i)] == x[size_t(i)], "rope_apply changed feature %d outside "
                    "[rotary_offset %d, + rotary_dim %d)", i, off, d);
  for (int i = R.p.active_pairs; R.p.active_pairs > 0 && i < d / 2; ++i)
    PA_FUZZ_CHECK(inv[size_t(i)] == 0, "rope_inv_freq: pair %d past active_pairs %d turns (%g)", i,
                  R.p.active_pairs, inv[size_t(i)]);
}

void check_t5(const Case &c) {
  const int32_t nb = c.buckets, md = c.maxdist, bi = c.bidir % 3;  // 2: not a boolean
  const int64_t rel = c.pq;
  const int32_t b = posattn_pe_t5_bucket(rel, bi, nb, md);
  const int32_t half = bi == 1 ? nb / 2 : nb;
  const bool valid = nb >= 2 && nb <= 1024 && bi <= 1 && (bi == 0 || (nb % 2 == 0 && nb >= 4)) &&
                     md > half / 2;
  note("  t5_bucket(rel %lld, bidirectional %d, buckets %d, max_distance %d) = %d", (long long)rel,
       bi, nb, md, b);
  PA_FUZZ_CHECK(valid ? (b >= 0 && b < nb) : b == -1, "t5_bucket = %d for %s parameters", b,
                valid ? "valid" : "invalid");
  if (valid && bi == 0 && rel <= 0 && rel > INT64_MIN)
    PA_FUZZ_CHECK(posattn_pe_t5_bucket(rel - 1, 0, nb, md) >= b,
                  "t5_bucket decreases from rel %lld to %lld", (long long)rel, (long long)rel - 1);
}

void check_xpos(const Case &c) {
  posattn_xpos_params x{c.sb, c.gamma};
  const int32_t rd = c.rotary_dim % 600 - 20, pair = c.head % 40;
  const int64_t delta = c.pq % 100000;
  const double a = posattn_pe_xpos_scale(&x, rd, pair, delta), b = posattn_pe_xpos_scale(&x, rd, pair, -delta);
  // the kernels' range (posattn.h RANGES: scale_base >= 1); below it the fp64 decay per
  // position log(zeta) / scale_base can overflow (scale_base 3e-310 gives 0 * inf = NaN at delta 0)
  const bool valid = rd >= 2 && rd % 2 == 0 && pair < rd / 2 && c.sb >= 1 && c.gamma > 0 &&
                     std::isfinite(c.sb) && std::isfinite(c.gamma);
  if (!valid) {
    PA_FUZZ_CHECK(std::isnan(a) && std::isnan(b), "xpos_scale(scale_base %g, gamma %g, rotary_dim "
                  "%d, pair %d) = %g, %g outside the kernels' range (NaN expected)", c.sb, c.gamma,
                  rd, pair, a, b);
    return;
  }
  PA_FUZZ_CHECK(a >= 0 && b >= 0, "xpos_scale negative or NaN: %g, %g", a, b);
  if (std::isnormal(a) && std::isnormal(b) && std::isnormal(a * b))
    PA_FUZZ_CHECK(std::fabs(a * b - 1) <= 1e-6, "xpos_scale(delta) * xpos_scale(-delta) = %g", a * b);
}

void check_bias(const Case &c, pat_rng *r) {
  posattn_pe pe;
  posattn_pe_init(&pe);
  const unsigned k = c.kind % 9u;  // 8: the raw byte, usually an unknown kind
  set_raw(pe.kind, k == 8 ? c.kind : int32_t(k));
  const int32_t hq = pick(c.heads, 1, 8), head = c.head % 10 - 1;
  const double amp = std::isfinite(c.amp) && c.amp != 0 ? std::fabs(double(c.amp)) : 1.0;
  std::vector<float> a(static_cast<size_t>(hq)), p(static_cast<size_t>(hq)), w1(8), b1(8), w2(size_t(hq) * 8), b2(static_cast<size_t>(hq)),
      table(size_t(64) * hq);
  for (float &v : a) v = float(pat_rng_uniform(r, 0.01, 1) * amp);
  for (float &v : p) v = float(pat_rng_uniform(r, 0.01, 2));
  for (auto *v : {&w1, &b1, &w2, &b2, &table})
    for (float &x : *v) x = float(pat_rng_uniform(r, -amp, amp));
  pe.alibi.slopes = (c.which & 16) ? a.data() : nullptr;
  pe.kerple.a = a.data();
  pe.kerple.p = p.data();
  pe.fire.mlp_width = 8;
  pe.fire.w1 = w1.data(); pe.fire.b1 = b1.data(); pe.fire.w2 = w2.data(); pe.fire.b2 = b2.data();
  if (c.which & 32) {
    pe.fire.c = c.c; pe.fire.L = c.L; pe.fire.eps = c.eps;
  }
  pe.t5.table = table.data();
  pe.t5.num_buckets = 2 + c.buckets % 63;
  pe.t5.bidirectional = c.bidir & 1;
  if (pe.t5.bidirectional) pe.t5.num_buckets &= ~1;
  const int64_t pq = c.pq, pk = c.pk;
  double got = 0;
  const posattn_status st = posattn_pe_bias(&pe, hq, head, pq, pk, &got);
  note("  pe_bias(kind %u, head %d of %d, pq %lld, pk %lld): %s %g", k, head, hq,
       (long long)pq, (long long)pk, posattn_status_string(st), got);
  if (st != POSATTN_STATUS_SUCCESS) return;
  const double dist = std::fabs(double(pq) - double(pk));
  double want = 0;
  switch (k) {
    case POSATTN_PE_ALIBI: {
      std::vector<double> s(static_cast<size_t>(hq));
      posattn_pe_alibi_slopes(hq, s.data());
      want = -(pe.alibi.slopes ? double(a[size_t(head)]) : s[size_t(head)]) * dist;
      break;
    }
    case POSATTN_PE_T5: {
      int64_t rel;  // pk - pq, saturated (every |rel| >= max_distance has the last bucket)
      if (__builtin_sub_overflow(pk, pq, &rel)) rel = pk > pq ? INT64_MAX : -INT64_MAX;
      const int32_t b = posattn_pe_t5_bucket(rel, pe.t5.bidirectional, pe.t5.num_buckets,
                                             pe.t5.max_distance);
      want = double(table[size_t(b) * hq + head]);
      break;
    }
    case POSATTN_PE_KERPLE_LOG: want = -double(p[size_t(head)]) * std::log1p(double(a[size_t(head)]) * dist); break;
    case POSATTN_PE_KERPLE_POWER: want = -double(a[size_t(head)]) * std::pow(dist, double(p[size_t(head)])); break;
    case POSATTN_PE_FIRE: {
      const double x = posattn_pe_fire_x(pe.fire.c, pe.fire.L, pe.fire.eps, pq, pk);
      want = b2[size_t(head)];
      for (int i = 0; i < 8; ++i)
        want += double(w2[size_t(head) * 8 + i]) * std::max(0.0, double(w1[size_t(i)]) * x + double(b1[size_t(i)]));
      break;
    }
    default: break;
  }
  // NaN only where the header's formula itself is NaN in fp64 (e.g. FIRE weights near FLT_MAX
  // times a huge x: inf - inf)
  PA_FUZZ_CHECK(!std::isnan(got) || std::isnan(want), "pe_bias: SUCCESS with NaN (kind %u), the "
                "header's formula gives %g", k, want);
  if (std::isfinite(want))
    PA_FUZZ_CHECK(close(got, want), "pe_bias kind %u head %d (pq %lld, pk %lld) = %.17g, the "
                  "header's formula gives %.17g", k, head, (long long)pq, (long long)pk,
                  got, want);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const Case c = decode_case<Case>(data, size);
  pat_rng r;
  pat_rng_seed(&r, c.seed);
  switch (c.which % 6) {
    case 0: {
      const int32_t n = c.n % 5000 - 4;
      std::vector<double> s(size_t(std::max(1, n)), 0);
      const posattn_status st = posattn_pe_alibi_slopes(n, s.data());
      PA_FUZZ_CHECK((st == POSATTN_STATUS_SUCCESS) == (n >= 1), "alibi_slopes(%d): %s", n,
                    posattn_status_string(st));
      for (int i = 0; i < n; ++i)
        PA_FUZZ_CHECK(s[size_t(i)] > 0 && s[size_t(i)] <= 1, "alibi slope %d of %d = %g", i, n, s[size_t(i)]);
      break;
    }
    case 1: check_rope(c, &r); break;
    case 2: check_t5(c); break;
    case 3: {
      const double x = posattn_pe_fire_x(c.c, c.L, c.eps, c.pq, c.pk);
      if (c.L > 0 && c.eps >= 0)  // the struct's rules for L and eps (fire_x does not check them)
        PA_FUZZ_CHECK(!(x < 0), "fire_x(c %g, L %g, eps %g, %lld, %lld) = %g < 0", c.c, c.L, c.eps,
                      (long long)c.pq, (long long)c.pk, x);
      break;
    }
    case 4: check_xpos(c); break;
    default: check_bias(c, &r); break;
  }
  return 0;
}

std::vector<pa_fuzz::Seed> pa_fuzz::seeds() {
  std::vector<Seed> s;
  Case c;
  c.n = 4 + 12;  // 12 heads: the non-power-of-two rule
  s.push_back(make_seed("alibi-slopes-12", c));
  Case r;  // RoPE defaults, head_dim 64, position 1000; YaRN; LLAMA3
  r.which = 1; r.head_dim = 84; r.pq = 1000; r.seed = 1;
  s.push_back(make_seed("rope-default", r));
  r.scaling = POSATTN_ROPE_SCALING_YARN; r.factor = 4;
  s.push_back(make_seed("rope-yarn", r));
  r.scaling = POSATTN_ROPE_SCALING_LLAMA3; r.factor = 8; r.orig = 8192;
  s.push_back(make_seed("rope-llama3", r));
  r.scaling = POSATTN_ROPE_SCALING_LONGROPE; r.factor = 0; r.orig = 4096; r.rotary_dim = 52;
  s.push_back(make_seed("rope-longrope-partial", r));
  Case ro = r;  // the newer RoPE fields: offset 10, 7 active pairs, YaRN mscale pair; LongRoPE factor
  ro.scaling = POSATTN_ROPE_SCALING_YARN; ro.factor = 4; ro.orig = 0; ro.rotary_dim = 0;
  ro.rope_extra.sel = 1 | 2 | 4; ro.rope_extra.offset = 10; ro.rope_extra.active = 7;
  ro.rope_extra.mscale = 1; ro.rope_extra.mscale_all = 0.5;
  s.push_back(make_seed("rope-offset-active-yarn-mscale", ro));
  Case lr = r;
  lr.rope_extra.sel = 8; lr.rope_extra.longrope = 6;
  s.push_back(make_seed("rope-longrope-factor", lr));
  Case t;
  t.which = 2; t.buckets = 32; t.maxdist = 128; t.pq = -100;
  s.push_back(make_seed("t5-causal", t));
  t.bidir = 1; t.pq = 40;
  s.push_back(make_seed("t5-bidirectional", t));
  Case f;
  f.which = 3; f.c = 0.1; f.L = 512; f.eps = 1e-6; f.pq = 700; f.pk = 3;
  s.push_back(make_seed("fire-x", f));
  Case x;
  x.which = 4; x.sb = 512; x.gamma = 0.4; x.rotary_dim = 1 + 84; x.head = 3; x.pq = 300;
  s.push_back(make_seed("xpos-scale", x));
  const uint8_t kinds[] = {POSATTN_PE_ALIBI, POSATTN_PE_FIRE, POSATTN_PE_T5, POSATTN_PE_KERPLE_LOG,
                           POSATTN_PE_KERPLE_POWER, POSATTN_PE_ROPE};
  const char *names[] = {"bias-alibi", "bias-fire", "bias-t5", "bias-kerple-log",
                         "bias-kerple-power", "bias-rope-zero"};
  for (int i = 0; i < 6; ++i) {
    Case b;
    b.which = 5; b.kind = kinds[i]; b.heads = 5; b.head = 3; b.pq = 90; b.pk = 17; b.buckets = 30;
    b.seed = uint64_t(i);
    s.push_back(make_seed(names[i], b));
  }
  // ---- issue 11 findings (the helpers' half; the kernels' half is in the forward target) ----
  Case lf = r;  // 4: LINEAR factor 1e-300 gives inv_freq 1e300: fine in fp64, inf in the kernels
  lf.scaling = POSATTN_ROPE_SCALING_LINEAR; lf.factor = 1e-300; lf.orig = 0; lf.rotary_dim = 0;
  s.push_back(make_seed("issue11-4-rope-linear-factor-1e-300", lf));
  Case fc = f;  // 4: FIRE c = 1e-50, eps = 0: 0/0 in fp32; fp64 keeps x = d / max(L, pq)
  fc.c = 1e-50; fc.eps = 0;
  s.push_back(make_seed("issue11-4-fire-c-1e-50", fc));
  Case yb = r;  // found by this target: YaRN betas so small that orig / (beta 2 pi) overflows made
                // both ramp ends infinite and every inv_freq NaN, with SUCCESS (fixed in pe_rope.c)
  yb.scaling = POSATTN_ROPE_SCALING_YARN; yb.factor = 4; yb.orig = 0; yb.rotary_dim = 0;
  yb.beta_fast = 2.1e-314; yb.beta_slow = 7.9e-323;
  s.push_back(make_seed("issue11-fuzz-yarn-tiny-beta", yb));
  Case yf = r;  // found by this target: a YaRN factor of 1.3e-318 made f / factor overflow and
                // the ramp's ends inf * 0 = NaN, with SUCCESS (fixed in pe_rope.c)
  yf.scaling = POSATTN_ROPE_SCALING_YARN; yf.factor = 1.26481e-318; yf.orig = 0; yf.rotary_dim = 0;
  s.push_back(make_seed("issue11-fuzz-yarn-denormal-factor", yf));
  Case tb;  // found by this target: pe_bias (T5) computed pk - pq in int64 and overflowed (UB)
  tb.which = 5; tb.kind = POSATTN_PE_T5; tb.heads = 5; tb.head = 3; tb.buckets = 30;
  tb.pq = INT64_MIN + 1; tb.pk = 324608;
  s.push_back(make_seed("issue11-fuzz-t5-bias-position-overflow", tb));
  return s;
}
