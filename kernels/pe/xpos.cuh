// xpos.cuh -- xPos (pe-spec §6): RoPE rotation (rope.cuh) plus a per-pair decay of the logit,
// zeta_i^((pq - pk) / scale_base), from the host table xpos_log2_decay[i] = log2(zeta_i)/scale_base.
//
// Overflow: torchscale scales q by zeta^(pq/base) and k by zeta^(-pk/base) separately, which
// over/underflows fp32 beyond a few thousand positions. Two forms here never do:
//   - score side (SIMT kernel): pair i's product q_a k_a + q_b k_b is weighted by
//     exp2((pq - pk) * log2_decay_i); for pk <= pq (causal) the weight is in (0, 1].
//   - centred transform (tiled tensor-core kernels): with a centre c per query tile (e.g. the
//     smallest query position of the tile), q pair i is scaled by exp2((pq - c) * ld_i) and k pair i
//     by exp2(-(pk - c) * ld_i); the product is the same weight, the q factor stays in (0, 1] and
//     k's only grows for keys after the tile's centre, which causal masks away.
//   - call-centred transform (the sm_90a kernel with the key pre-pass, rope_k.cu): one centre
//     for the whole call, c = xpos_call_centre, so each key is transformed once per call (not per
//     query tile); its factors reach 2^(|p - c| |ld_0|) both ways, which the host allows only
//     while that stays <= kXposCallLog2Range (pa_prefill_prerotates_k: bf16, whose exponent
//     range is fp32's, positions in token order).
#ifndef POSATTN_PE_XPOS_CUH
#define POSATTN_PE_XPOS_CUH

#include "prefill/params.h"

namespace pa_pe {

// The call-centred transform's centre (positions in token order lie in [0, kv_len)) and the
// largest log2 of its factors the host admits (far inside bf16's 2^-126 .. 2^127: a factor times
// a key element stays finite and a query element's product stays normal).
PA_HD int32_t xpos_call_centre(int64_t kv_len) { return int32_t(kv_len / 2); }
constexpr double kXposCallLog2Range = 64;

// Weight of rotary pair `pair` in the logit for delta = pq - pk.
PA_DEVICE float xpos_pair_weight(const pa_prefill_params &p, int pair, int64_t delta) {
  return exp2f(float(delta) * p.xpos_log2_decay[pair]);
}

// Centred transform factors (see above): q side and k side for centre c.
PA_DEVICE float xpos_q_scale(const pa_prefill_params &p, int pair, int32_t pq, int32_t c) {
  return exp2f(float(int64_t(pq) - c) * p.xpos_log2_decay[pair]);
}
PA_DEVICE float xpos_k_scale(const pa_prefill_params &p, int pair, int32_t pk, int32_t c) {
  return exp2f(-float(int64_t(pk) - c) * p.xpos_log2_decay[pair]);
}

}  // namespace pa_pe
#endif
