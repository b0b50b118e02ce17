// merge.cuh -- merging attention states through their log-sum-exps (posattn.h, "Merging partial
// attention states"), written once against the device layer (EMU and nvcc).
//
//   lse_merge()   the LSE arithmetic of a merge: the NaN-keeping maximum M of the LSEs and
//                 L = sum e^(lse - M), with an optional extra term that has no value (decode's
//                 sink). Shared by merge_states below and the split combines (combine_splits).
//   combine_splits()  one (row, head) of the split-KV combine: decode_combine and paged_combine.
//   merge_states  (merge.cu, included once by the EMU run and once by the CUDA run) one block
//                 per row (batch, token, head), grid-stride over the rows, threads over the
//                 features. Empty states (LSE -inf) are skipped outright, so their O is never read
//                 into the result. A first pass flags non-finite O elements of non-empty states
//                 (one shared slot per thread, read by all after a barrier), so such an element
//                 poisons the whole row and its LSE, as in REF. In place (out = state 0) every
//                 thread reads its own elements before writing them, and the LSE is written after
//                 a barrier.
#ifndef POSATTN_MERGE_CUH
#define POSATTN_MERGE_CUH

#include "merge/params.h"
#include "pe/mask.cuh" /* max_nan */

namespace pa_merge {

constexpr int kThreads = 64;
constexpr unsigned kMaxBlocks = 1u << 20;

// Element idx of a tensor whose dtype is known only at run time.
PA_DEVICE float load_any(pa::gptr<const unsigned char> base, int dtype, int64_t idx) {
  switch (dtype) {
    case POSATTN_DTYPE_F16: return pa::to_float(pa::f16(pa::ptr_cast<const pa::f16>(base)[idx]));
    case POSATTN_DTYPE_BF16: return pa::to_float(pa::bf16(pa::ptr_cast<const pa::bf16>(base)[idx]));
    default: return float(pa::ptr_cast<const float>(base)[idx]);
  }
}
PA_DEVICE void store_any(pa::gptr<unsigned char> base, int dtype, int64_t idx, float x) {
  switch (dtype) {
    case POSATTN_DTYPE_F16: pa::ptr_cast<pa::f16>(base)[idx] = pa::from_float<pa::f16>(x); break;
    case POSATTN_DTYPE_BF16: pa::ptr_cast<pa::bf16>(base)[idx] = pa::from_float<pa::bf16>(x); break;
    default: pa::ptr_cast<float>(base)[idx] = x; break;
  }
}

PA_DEVICE float lse_exp(float x, bool base2) { return base2 ? exp2f(x) : expf(x); }
PA_DEVICE float lse_log(float x, bool base2) { return base2 ? log2f(x) : logf(x); }

// M: NaN-keeping max of lse_at(0 .. n-1) and `extra` (-inf: none); L = sum of lse_exp(l - M) over
// them, 0 when M is -inf (nothing seen), NaN when M is NaN or +inf (a poisoned row).
struct LseSum {
  float M, L;
  PA_DEVICE bool empty() const { return L == 0.f; }
  // The merged LSE: -inf when nothing was seen, NaN for a poisoned row.
  PA_DEVICE float lse(bool base2) const { return empty() ? -INFINITY : M + lse_log(L, base2); }
  // Weight of a term with LSE l (only for non-empty sums).
  PA_DEVICE float weight(float l, bool base2) const { return lse_exp(l - M, base2) / L; }
};
template <class LseAt>
PA_DEVICE LseSum lse_merge(int n, LseAt lse_at, float extra, bool base2) {
  LseSum r{extra, 0.f};
  for (int s = 0; s < n; ++s) r.M = pa_pe::max_nan(r.M, lse_at(s));
  if (r.M == -INFINITY) return r;
  for (int s = 0; s < n; ++s) r.L += lse_exp(lse_at(s) - r.M, base2);  // -inf terms add 0
  if (extra != -INFINITY) r.L += lse_exp(extra - r.M, base2);
  return r;
}

// One (row, head) of a split-KV combine, shared by decode's decode_combine (kernels/decode/
// decode.cu) and the plan's paged_combine (kernels/paged/paged.cu): the normalised partial outputs
// part_o[(s * per_split + row) * d + c] of splits s < num_splits are merged through their LSEs
// part_lse[s * per_split + row] with the sink logit `sink` (-inf: none) as one more softmax term
// without a value: out = sum_s e^{lse_s - M} o_s / (sum_s e^{lse_s - M} + e^{sink - M}), M the
// largest of the split LSEs and the sink. The block's kThreads threads write feature c through
// store(c, value); an empty split (LSE -inf) weighs 0 and is not read. Returns the merged sum,
// whose lse(false) is the row's LSE.
template <int kThreads, class Store>
PA_DEVICE LseSum combine_splits(int num_splits, int64_t per_split, int64_t row, int d,
                                pa::gptr<const float> part_o, pa::gptr<const float> part_lse,
                                float sink, Store store) {
  const auto split_lse = [&](int s) { return float(part_lse[s * per_split + row]); };
  const LseSum sum = lse_merge(num_splits, split_lse, sink, false);
  for (int c = int(threadIdx.x); c < d; c += kThreads) {
    float o = 0.f;
    if (!sum.empty())
      for (int s = 0; s < num_splits; ++s) {
        const float w = sum.weight(split_lse(s), false);
        if (w != 0.f) o = fmaf(w, part_o[(s * per_split + row) * d + c], o);  // empty splits: w = 0
      }
    store(c, o);
  }
  return sum;
}

}  // namespace pa_merge
#endif
