// rope_k.cu -- the RoPE key pre-pass: every key of every kv head rotated ONCE per call, before the
// tensor-core kernel runs (issue 12, item 3). Without it each query-tile block rotated every K tile
// it visits again (hq / hkv * Lq / Br times per key).
//
// One thread per (key, rotary pair): the pair is read in the input dtype, rotated in fp32 by the
// same routines the kernels use (rope.cuh: rope_cos_sin, rope_rotate) and rounded once to the input
// dtype -- exactly what the tensor-core kernel did to each K tile in shared memory, so its numerics
// are unchanged. Features outside the rotated block are copied. The output is packed
// [total_kv][hkv][d] (p.k_rot, in the workspace); pa_prefill::prerotated() gives the main kernel's
// parameters reading it, with p.k_prerotated = 1.
// xPos (the sm_90a kernel, pa_prefill_prerotates_k): each rotated pair also takes its K-side
// decay around the call's centre (xpos.cuh, call-centred transform), the same fp32 product as the
// kernel's in-tile transform, still rounded once.
// Non-finite keys (posattn.h NaN RULE): a key's pairs only ever mix with each other, so a NaN/inf
// in key j stays in key j's row, as in the in-kernel rotation; NaN isolation of non-finite V
// (mma.cuh isolate_nonfinite_v) happens later, on the rotated tile, as before.
#ifndef POSATTN_PREFILL_ROPE_K_CU
#define POSATTN_PREFILL_ROPE_K_CU

#include "pe/mask.cuh"
#include "pe/rope.cuh"
#include "pe/xpos.cuh"
#include "prefill/params.h"

namespace pa_prefill {

constexpr int kRopeKRows = 32;      // keys per block
constexpr int kRopeKThreads = 128;  // threads per block

// Strides (elements) of the packed [total_kv][hkv][d] pre-pass output; batch stride for dense.
PA_HD int64_t rope_k_ss(const pa_prefill_params &p) { return int64_t(p.hkv) * p.d; }
PA_HD int64_t rope_k_sb(const pa_prefill_params &p) { return rope_k_ss(p) * p.kv_len; }

// Grid: (ceil(max Lk / kRopeKRows), hkv, batch).
template <class Tin>
__global__ void __launch_bounds__(kRopeKThreads) prefill_rope_k(const pa_prefill_params p) {
  const int b = int(blockIdx.z), hk = int(blockIdx.y);
  const pa_pe::Seq sq(p, b);
  const int j0 = int(blockIdx.x) * kRopeKRows;
  if (j0 >= sq.Lk) return;
  const int rows = pa::min(kRopeKRows, sq.Lk - j0), d = p.d, half = p.rotary_dim / 2;
  const int tid = int(threadIdx.x);
  const pa::gptr<const Tin> src = pa::ptr_cast<const Tin>(p.k);
  const pa::gptr<Tin> dst = pa::ptr_cast<Tin>(p.k_rot);
  const int64_t ss = rope_k_ss(p), sb = rope_k_sb(p);
  auto in = [&](int r) { return src + sq.kv_off(j0 + r, hk, p.k_sb, p.k_ss, p.k_sh); };
  auto out = [&](int r) { return dst + sq.kv_off(j0 + r, hk, sb, ss, d); };

  for (int e = tid; e < rows * d; e += kRopeKThreads) {  // features the rotation leaves alone
    const int r = e / d, f = e % d;
    if (f < p.rope_offset || f >= p.rope_offset + p.rotary_dim) out(r)[f] = Tin(in(r)[f]);
  }
  for (int e = tid; e < rows * half; e += kRopeKThreads) {
    const int r = e / half, i = e % half;
    int fa, fb;
    pa_pe::rope_pair_features(p, i, fa, fb);
    const pa::gptr<const Tin> x = in(r);
    const int32_t pos = sq.kv_pos(j0 + r);
    float2 y = pa_pe::rope_rotate(pa::to_float(Tin(x[fa])), pa::to_float(Tin(x[fb])),
                                  pa_pe::rope_cos_sin(p, i, pos));
    if (p.pe_kind == POSATTN_PE_XPOS) {
      const float w = pa_pe::xpos_k_scale(p, i, pos, pa_pe::xpos_call_centre(p.kv_len));
      y.x *= w;
      y.y *= w;
    }
    out(r)[fa] = pa::from_float<Tin>(y.x);
    out(r)[fb] = pa::from_float<Tin>(y.y);
  }
}

// Launches the pre-pass on p (p.k_rot set).
inline pa::launch_status rope_k_launch(const pa_prefill_params &p, void *stream) {
  if (p.kv_len == 0) return pa::launch_status{true, {0}};  // no key: nothing to rotate
  const dim3 grid(unsigned(p.kv_len / kRopeKRows + (p.kv_len % kRopeKRows != 0)), unsigned(p.hkv),
                  unsigned(p.batch));
  switch (p.in_dtype) {
    case POSATTN_DTYPE_F16:
      return pa::launch("prefill_rope_k", prefill_rope_k<pa::f16>, grid, dim3(kRopeKThreads), 0, stream, p);
    case POSATTN_DTYPE_BF16:
      return pa::launch("prefill_rope_k", prefill_rope_k<pa::bf16>, grid, dim3(kRopeKThreads), 0, stream, p);
    default:
      return pa::launch("prefill_rope_k", prefill_rope_k<float>, grid, dim3(kRopeKThreads), 0, stream, p);
  }
}

// The main kernel's parameters once the pre-pass has run: K read from the pre-pass output.
inline pa_prefill_params prerotated(const pa_prefill_params &p) {
  pa_prefill_params m = p;
  m.k = p.k_rot;
  m.k_sb = rope_k_sb(p);
  m.k_ss = rope_k_ss(p);
  m.k_sh = p.d;
  m.k_prerotated = 1;
  return m;
}

}  // namespace pa_prefill
#endif
