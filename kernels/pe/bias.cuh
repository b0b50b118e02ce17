// bias.cuh -- the "bias the logit" hook: softcap, then ALiBi, FIRE, T5, KERPLE (pe-spec §3, §4,
// §7, §8.1), each from host-built fp32 tables in pa_prefill_params.
//
// A policy is built once per (query row, head) -- it caches what depends on the row only -- and
// called once per key position:
//     pa_pe::Bias<POSATTN_PE_ALIBI> bias(p, h, pq);   s += bias(pk);
// Bias<kind> is a compile-time policy for kernels templated on the kind; BiasAny dispatches on
// p.pe_kind at run time (the SIMT kernel). Kinds without a bias (NONE, ROPE, XPOS) add 0.
// Distances |pq - pk| are converted to float exactly up to 2^24 (positions are int32).
#ifndef POSATTN_PE_BIAS_CUH
#define POSATTN_PE_BIAS_CUH

#include "posattn.h"
#include "prefill/params.h"

namespace pa_pe {

// s = softcap * tanh(s / softcap) when softcap > 0 (applied before the bias, as in posattn.h).
// The SIMT and decode kernels' form: an IEEE division per element.
PA_DEVICE float apply_softcap(const pa_prefill_params &p, float s) {
  return p.softcap > 0.f ? p.softcap * tanhf(s / p.softcap) : s;
}

// The tensor-core prefill kernels' form, for a caller that has tested softcap > 0: s / c taken as
// s * inv_cap, inv_cap = 1 / softcap computed once per block. The division's slow-path call made
// ptxas save registers to local memory around it in the hd128 instances of mma.cuh. Differs from
// apply_softcap by at most an ulp of the tanh argument.
PA_DEVICE float softcap_logit(const pa_prefill_params &p, float inv_cap, float s) {
  return p.softcap * tanhf(s * inv_cap);
}

// |pq - pk| (< 2^32) in 32-bit arithmetic: the unsigned difference of the larger minus the smaller
// is exact.
PA_DEVICE uint32_t abs_diff(int32_t pq, int32_t pk) {
  return pk > pq ? uint32_t(pk) - uint32_t(pq) : uint32_t(pq) - uint32_t(pk);
}
PA_DEVICE float abs_distance(int32_t pq, int32_t pk) { return float(abs_diff(pq, pk)); }

template <int Kind>
struct Bias {  // NONE, ROPE, XPOS
  PA_DEVICE Bias(const pa_prefill_params &, int, int32_t) {}
  PA_DEVICE float operator()(int32_t) const { return 0.f; }
};

// ALiBi, relative form: -m_h |pq - pk|.
template <>
struct Bias<POSATTN_PE_ALIBI> {
  float m;
  int32_t pq;
  PA_DEVICE Bias(const pa_prefill_params &p, int h, int32_t pq_) : m(p.alibi_slopes[h]), pq(pq_) {}
  PA_DEVICE Bias(float m_, float, int32_t pq_) : m(m_), pq(pq_) {}  // head value already read
  PA_DEVICE float operator()(int32_t pk) const { return -m * abs_distance(pq, pk); }
};

// log(1 + u) for the distances beyond FIRE's psi table (u = c d with d > 65535): ex2's sibling
// lg2.approx on the GPU (absolute error ~2^-22 in log2(1 + u); 1 + u rounds by < 2^-24 of itself),
// exact log on the emulator. Cheap enough that the compiler's predicated select costs ~4
// instructions per element where log1pf's software polynomial cost ~35.
PA_DEVICE float log_far(float u) {
#if defined(__CUDACC__)
  float y;
  asm("lg2.approx.f32 %0, %1;" : "=f"(y) : "f"(1.f + u));
  return y * 0.693147182f;
#else
  return std::log1p(u);
#endif
}

// FIRE: x = psi(|pq-pk|) / (psi(max(L, pq)) + eps), psi(t) = log1p(c t); the bias is the compiled
// MLP's segment containing x: slope * x + icpt. psi of the distance is one table load for the
// distances the call can have up to fire_psi_max (log_far beyond: contexts over 64K). No search: a host grid over x (tables.cpp) gives a lower
// bound of x's segment from x's cell, and forward steps finish the lookup exactly. One step is
// always taken (harmless: start[nseg] = +inf stops it) and enough for every MLP whose segment
// starts are not closer than a cell; closer ones need p.fire_steps (measured by the host).
// The segment tables are read through pointers of kind P: global (pa::gptr), or the tensor-core
// kernel's per-block shared-memory copy (pa::sptr, fill_shared_table).
template <template <class> class P>
struct FireSegments {
  P<const float> start, slope, icpt;  // slope and icpt of head h
  P<const int32_t> cell_seg;
  float scale, cells;
  int32_t steps;
  // The segment of x (start[seg] <= x < start[seg + 1]): non-decreasing in x.
  PA_DEVICE int index(float x) const {
    int seg = cell_seg[int(fminf(x * scale, cells))];
    seg += start[seg + 1] <= x;
#if defined(__CUDACC__)
#pragma unroll 1  // rare (close starts): a compact loop, not 16 unrolled copies per element
#endif
    for (int k = 1; k < steps; ++k) seg += start[seg + 1] <= x;
    return seg;
  }
  PA_DEVICE float operator()(float x) const {
    const int seg = index(x);
    return fmaf(slope[seg], x, icpt[seg]);
  }
};
// psi(d) = log1p(c d) of a distance: the host table up to fire_psi_max, log_far beyond.
// Non-decreasing in d up to psi_max (the table rounds an increasing fp64 function).
PA_DEVICE float fire_psi(pa::gptr<const float> psi, uint32_t psi_max, float c, uint32_t d) {
  return d <= psi_max ? float(psi[d]) : log_far(c * float(d));
}
// The nearest and farthest psi of a row whose window of a distance band holds n consecutive
// distances from dlo (entry lw[k]: distance dlo + k, 32-bit wrapping): psi is non-decreasing in
// |d| (up to fire_psi_max), so both lie at the ends, except the nearest at d = 0 when the window
// crosses it. Both tensor-core kernels' FIRE bands take a row's segment range from these.
struct FirePsiRange {
  float near, far;
};
template <int N, class Ptr>
PA_DEVICE FirePsiRange fire_psi_range(Ptr lw, int32_t dlo) {
  const int32_t dhi = int32_t(uint32_t(dlo) + uint32_t(N - 1));
  const float a = lw[0], b = lw[N - 1];
  return {dlo <= 0 && dhi >= 0 ? float(lw[-dlo]) : fminf(a, b), fmaxf(a, b)};
}
PA_DEVICE float fire_norm(const pa_prefill_params &p, int32_t pq) {  // the row's normaliser
  return log1pf(p.fire_c * fmaxf(p.fire_L, float(pq))) + p.fire_eps;
}
PA_DEVICE float fire_inv_norm(const pa_prefill_params &p, int32_t pq) {
  return 1.f / fire_norm(p, pq);
}
template <template <class> class P>
struct FireBias {
  FireSegments<P> seg;
  pa::gptr<const float> psi;
  float c, inv_norm;
  int32_t pq;
  uint32_t psi_max;
  PA_DEVICE FireBias(const pa_prefill_params &pp, const FireSegments<P> &seg_, int32_t pq_,
                     float inv_norm_)
      : seg(seg_), psi(pp.fire_psi), c(pp.fire_c), inv_norm(inv_norm_), pq(pq_),
        psi_max(pp.fire_psi_max) {}
  PA_DEVICE float operator()(int32_t pk) const {
    return seg(fire_psi(psi, psi_max, c, abs_diff(pq, pk)) * inv_norm);
  }
};
PA_DEVICE FireSegments<pa::gptr> fire_segments_global(const pa_prefill_params &p, int h) {
  return {p.fire_start, p.fire_slope + int64_t(h) * p.fire_nseg, p.fire_icpt + int64_t(h) * p.fire_nseg,
          p.fire_cell_seg, p.fire_cell_scale, float(p.fire_cells), p.fire_steps};
}
template <>
struct Bias<POSATTN_PE_FIRE> : FireBias<pa::gptr> {
  PA_DEVICE Bias(const pa_prefill_params &pp, int h, int32_t pq_)
      : Bias(pp, h, pq_, fire_inv_norm(pp, pq_)) {}
  PA_DEVICE Bias(const pa_prefill_params &pp, int h, int32_t pq_, float inv_norm_)
      : FireBias<pa::gptr>(pp, fire_segments_global(pp, h), pq_, inv_norm_) {}
};

// T5: the bucket of rel = pk - pq read from a host table over the distances min(|rel|, t5_nmax)
// (no log, no search), keys after the query in its second half; then table[bucket][h].
template <>
struct Bias<POSATTN_PE_T5> {
  pa::gptr<const int32_t> bucket;
  pa::gptr<const float> table;  // column h of [num_buckets][hq]
  uint32_t nmax;
  int32_t hq, pq;
  PA_DEVICE Bias(const pa_prefill_params &pp, int h, int32_t pq_)
      : bucket(pp.t5_bucket), table(pp.t5_table + h), nmax(uint32_t(pp.t5_nmax)), hq(pp.hq), pq(pq_) {}
  PA_DEVICE float operator()(int32_t pk) const {
    const uint32_t n = pa::min(abs_diff(pq, pk), nmax);
    return table[bucket[n + (pk > pq ? nmax + 1 : 0u)] * hq];
  }
};

// Per-block shared-memory tables of the tensor-core kernel (T5, FIRE): copied once per block from
// the host tables (fill_shared_table, shared_table_bytes of them), so an element reads shared
// memory instead of dependent global loads with 64-bit addressing. T5: head h's bias for every
// entry of the bucket table, 2 (t5_nmax + 1) floats (the chooser keeps max_distance within
// kT5SharedMaxDistance; mma.cuh: unfit). FIRE: starts, head h's slopes and intercepts, the cell
// grid: 3 nseg + cells + 2 words (< 30 KiB: mlp_width <= 1024, cells <= 4096).
constexpr int kT5SharedMaxDistance = 8191;
template <int Kind>
PA_HD size_t shared_table_bytes(const pa_prefill_params &p) {
  return Kind == POSATTN_PE_T5     ? 2 * (size_t(p.t5_nmax) + 1) * sizeof(float)
         : Kind == POSATTN_PE_FIRE ? (3 * size_t(p.fire_nseg) + size_t(p.fire_cells) + 2) * 4
                                   : 0;
}
template <int Kind>
PA_DEVICE void fill_shared_table(const pa_prefill_params &p, int h, pa::sptr<float> tb, int tid,
                                 int nthreads) {
  if (Kind == POSATTN_PE_T5) {
    for (int i = tid; i < 2 * (p.t5_nmax + 1); i += nthreads)
      tb[i] = p.t5_table[p.t5_bucket[i] * p.hq + h];
  } else if (Kind == POSATTN_PE_FIRE) {
    const int n = p.fire_nseg;
    const pa::sptr<int32_t> cs = pa::ptr_cast<int32_t>(tb + 3 * n + 1);
    for (int i = tid; i <= n; i += nthreads) tb[i] = p.fire_start[i];
    for (int i = tid; i < n; i += nthreads) {
      tb[n + 1 + i] = p.fire_slope[int64_t(h) * n + i];
      tb[2 * n + 1 + i] = p.fire_icpt[int64_t(h) * n + i];
    }
    for (int i = tid; i <= p.fire_cells; i += nthreads) cs[i] = p.fire_cell_seg[i];
  }
}
PA_DEVICE FireSegments<pa::sptr> fire_segments_shared(const pa_prefill_params &p,
                                                      pa::sptr<float> tb) {
  const int n = p.fire_nseg;
  return {tb, tb + n + 1, tb + 2 * n + 1, pa::ptr_cast<int32_t>(tb + 3 * n + 1),
          p.fire_cell_scale, float(p.fire_cells), p.fire_steps};
}
struct T5Shared {
  pa::sptr<const float> tb;
  uint32_t nmax;
  int32_t pq;
  PA_DEVICE float operator()(int32_t pk) const {
    return tb[pa::min(abs_diff(pq, pk), nmax) + (pk > pq ? nmax + 1 : 0u)];
  }
};

// KERPLE log: -p_h log(1 + a_h |pq-pk|).
template <>
struct Bias<POSATTN_PE_KERPLE_LOG> {
  float a, pw;
  int32_t pq;
  PA_DEVICE Bias(const pa_prefill_params &p, int h, int32_t pq_)
      : a(p.kerple_a[h]), pw(p.kerple_p[h]), pq(pq_) {}
  PA_DEVICE Bias(float a_, float pw_, int32_t pq_) : a(a_), pw(pw_), pq(pq_) {}
  PA_DEVICE float operator()(int32_t pk) const { return -pw * log1pf(a * abs_distance(pq, pk)); }
};

// KERPLE power: -a_h |pq-pk|^p_h (0 at distance 0).
template <>
struct Bias<POSATTN_PE_KERPLE_POWER> {
  float a, pw;
  int32_t pq;
  PA_DEVICE Bias(const pa_prefill_params &p, int h, int32_t pq_)
      : a(p.kerple_a[h]), pw(p.kerple_p[h]), pq(pq_) {}
  PA_DEVICE Bias(float a_, float pw_, int32_t pq_) : a(a_), pw(pw_), pq(pq_) {}
  PA_DEVICE float operator()(int32_t pk) const {
    const float dist = abs_distance(pq, pk);
    return dist == 0.f ? 0.f : -a * powf(dist, pw);
  }
};

// Run-time dispatch over p.pe_kind (uniform across a block, so no divergence).
struct BiasAny {
  int kind;
  const pa_prefill_params *p;
  int h;
  int32_t pq;
  float row_a, row_b;  // per-row values of the kind (slope / a, p / FIRE 1/norm)
  PA_DEVICE BiasAny(const pa_prefill_params &pp, int h_, int32_t pq_)
      : kind(pp.pe_kind), p(&pp), h(h_), pq(pq_), row_a(0.f), row_b(0.f) {
    switch (kind) {
      case POSATTN_PE_ALIBI: row_a = Bias<POSATTN_PE_ALIBI>(pp, h_, pq_).m; break;
      case POSATTN_PE_FIRE: row_b = Bias<POSATTN_PE_FIRE>(pp, h_, pq_).inv_norm; break;
      case POSATTN_PE_KERPLE_LOG:
      case POSATTN_PE_KERPLE_POWER:
        row_a = pp.kerple_a[h_];
        row_b = pp.kerple_p[h_];
        break;
      default: break;
    }
  }
  PA_DEVICE float operator()(int32_t pk) const {
    switch (kind) {
      case POSATTN_PE_ALIBI: return -row_a * abs_distance(pq, pk);
      case POSATTN_PE_FIRE: return Bias<POSATTN_PE_FIRE>(*p, h, pq, row_b)(pk);
      case POSATTN_PE_T5: return Bias<POSATTN_PE_T5>(*p, h, pq)(pk);
      case POSATTN_PE_KERPLE_LOG: return -row_b * log1pf(row_a * abs_distance(pq, pk));
      case POSATTN_PE_KERPLE_POWER: {
        const float dist = abs_distance(pq, pk);
        return dist == 0.f ? 0.f : -row_a * powf(dist, row_b);
      }
      default: return 0.f;
    }
  }
};

}  // namespace pa_pe
#endif
