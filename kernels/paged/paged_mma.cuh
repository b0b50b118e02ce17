// paged_mma.cuh -- paged_split_mma: the tensor-core split kernel of a plan's run (issue 13 item 2,
// "the tensor-core path for the long-query sequences"), written once against the device layer
// (EMU and nvcc). It replaces paged_split (kernels/paged/paged.cu) where the plan allows
// (kernels/paged/host.h, paged_mma_unfit: q bf16/f16, a cache of q's dtype or FP8, head_dim
// 64/128/256, 16-byte cache strides; 16-byte aligned pools at run), with the same grid rule and
// partial layout, so paged_check and paged_combine are unchanged:
//
//   paged_split_mma  one block of 8 warps per (chunk slot, kv head, KV split): a chunk is up to
//                    p.mma_rows query rows (128; 64 at hd 256 with RoPE) of ONE sequence (its
//                    tokens x the GQA group, token-major, as paged_split). The slot is mapped to
//                    (sequence, chunk) by walking the indptr (unused slots and sequences whose
//                    verdict is not OK exit); the split's keys come from the sequence's own length,
//                    narrowed to the keys the chunk's first token may see (window) and its last
//                    may see (causal: key tiles beyond the chunk's last row are never read). The
//                    block body is decode_mma's (kernels/decode/mma_split.cuh): K/V gathered
//                    through the block table by cp.async, fp8 widened in shared memory, RoPE'd q/k
//                    as hi + lo operand pairs, mma.sync m16n8k16, causal / window per row at
//                    i' = L_b - n_b + t. It writes the normalised partial O and LSE of every row
//                    at (split, q row, q head) as paged_split does.
#ifndef POSATTN_PAGED_MMA_CUH
#define POSATTN_PAGED_MMA_CUH

#include "decode/mma_split.cuh"
#include "paged/paged.cu"

namespace pa_paged {

// A paged_split_mma block's work (mma_split.cuh, mma_split_block): paged_split's (paged.cu),
// with the Q tile rows of the block and the logit scale of the mma body.
struct PagedMmaJob : PagedJob {
  PA_DEVICE int qrows() const { return (rows + 15) / 16 * 16; }
  PA_DEVICE float qk_scale() const { return k_scale() * p.pe.scale; }
};

// Fp8: the element policy whose value(c) widens an FP8 code (unused for 16-bit caches); kEsz:
// bytes of a cache element; Tin: the mma type (q's dtype).
template <class Fp8, class Tin, int D, int kEsz>
__global__ void __launch_bounds__(pa_decode::kMmaThreads, pa_decode::kMmaMinBlocks<D, kEsz>)
    paged_split_mma(const pa_paged_params p) {
  const pa_paged_seqs &sq = p.sq;
  if (sq.verdict[0] == PA_PAGED_BAD_RUN) return;  // the indptr is bad: nothing to map
  int chunk;
  const int b = slot_sequence(sq, p.group, p.mma_rows, int(blockIdx.x), chunk);
  if (b < 0 || sq.verdict[b] != PA_PAGED_OK) return;

  const int split = int(blockIdx.z), hk = int(blockIdx.y);
  const int q0 = sq.indptr[b], n = int32_t(sq.indptr[b + 1]) - q0, len = sq.kv_lens[b];
  const int r0 = chunk * p.mma_rows, rows = pa::min(int(p.mma_rows), n * p.group - r0);
  const int base = len - n;  // i' of token t is base + t
  int lo, hi;
  split_keys(p, len, base, split, r0 / p.group, (r0 + rows - 1) / p.group, lo, hi);
  const PagedMmaJob job{{p, split, b, hk, q0, r0, base, rows, lo, hi}};
  pa_decode::mma_split_block<Fp8, Tin, D, kEsz>(job);
}

// The tensor-core split kernel for (cache dtype index, q dtype, head-dim class: 64, 128, 256), or
// nullptr where there is none (an f32 cache, a 16-bit cache of another dtype than q).
template <class Fp8, class Tin, int kEsz>
inline SplitFn split_mma_kernel_dim(int dim_class) {
  switch (dim_class) {
    case 0: return paged_split_mma<Fp8, Tin, 64, kEsz>;
    case 1: return paged_split_mma<Fp8, Tin, 128, kEsz>;
    default: return paged_split_mma<Fp8, Tin, 256, kEsz>;
  }
}
template <class Tin>
inline SplitFn split_mma_kernel_tin(int cache_index, int dim_class) {
  switch (cache_index) {
    case kCacheF16:
    case kCacheBF16:  // the cache's dtype must be q's
      if ((cache_index == kCacheF16) != std::is_same<Tin, pa::f16>::value) return nullptr;
      return split_mma_kernel_dim<CacheIO<Tin>, Tin, 2>(dim_class);
    case kCacheE4M3: return split_mma_kernel_dim<Fp8IO<0>, Tin, 1>(dim_class);
    case kCacheE5M2: return split_mma_kernel_dim<Fp8IO<1>, Tin, 1>(dim_class);
    default: return nullptr;
  }
}
inline SplitFn split_mma_kernel(int cache_index, int q_f16, int dim_class) {
  return q_f16 ? split_mma_kernel_tin<pa::f16>(cache_index, dim_class)
               : split_mma_kernel_tin<pa::bf16>(cache_index, dim_class);
}

}  // namespace pa_paged
#endif
