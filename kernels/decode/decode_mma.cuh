// decode_mma.cuh -- the tensor-core decode kernel (issue 14 item 2), written once against the
// device layer (EMU and nvcc) like decode.cu, whose combine step, element I/O policies and plan it
// shares:
//
//   decode_mma   one block per (KV split, kv head [x row chunk], sequence), 8 warps. The
//                block holds every query row of its kv head (GQA group x query tokens, up to
//                kMmaRows = 128, 64 at hd 256 with RoPE; row r = head r / n, token r % n as in
//                decode_split), so each cached K/V token of the split is read from the pages ONCE
//                per kv head whatever the group size and token count (row chunks only when
//                group x n exceeds that). The block body -- copies, fp8 widening, NaN rule, RoPE
//                as hi + lo operand pairs, S = Q K^T and O += P V by mma.sync m16n8k16, online
//                softmax, key slices, and what REF agreement rests on -- is mma_split_block
//                (kernels/decode/mma_split.cuh), shared with the plan's paged_split_mma. This file
//                maps a block to its rows and keys (the split's keys, narrowed by the window of
//                the earliest query token) and writes the partial O and LSE per split in the
//                layout of decode_split, so decode_combine merges either kernel's splits.
//
// Served (mma_unfit in kernels/decode/plan.h decides): q bf16/f16, a cache of the same dtype or
// FP8, head_dim 64/128/256, cache strides of whole 16-byte units and 16-byte aligned pools.
// Everything else (f32, other head dims) stays with decode_split.
#ifndef POSATTN_DECODE_MMA_CUH
#define POSATTN_DECODE_MMA_CUH

#include "decode/decode.cu"
#include "decode/mma_split.cuh"

namespace pa_decode {

// Bytes of one cache element: the pool is copied as stored.
template <class IO>
struct CacheBytes;
template <class T>
struct CacheBytes<CacheIO<T>> {
  static constexpr int value = int(sizeof(T));
};
template <int E5M2>
struct CacheBytes<Fp8IO<E5M2>> {
  static constexpr int value = 1;
};

// Query rows of the largest block of a launch (p.mma is mma_rows_per_block of the plan), and its
// Q tile rows (padded to 16): every block of a launch sizes its Q tile for mma_q_rows.
PA_HD int mma_block_rows(const pa_decode_params &p) { return pa::min(int(p.mma), p.group * p.n); }
PA_HD int mma_q_rows(const pa_decode_params &p) { return (mma_block_rows(p) + 15) / 16 * 16; }
inline MmaSmem mma_smem(const pa_decode_params &p, int d, int esz) {
  return MmaSmem(d, esz, mma_q_rows(p), p.pe.rotary_dim > 0, p.rotate_k != 0);
}

// A decode_mma block's work (mma_split.cuh, mma_split_block): decode_split's (decode.cu), with
// the Q tile rows of the launch and the logit scale of the mma body.
struct DecodeMmaJob : DecodeJob {
  PA_DEVICE int qrows() const { return mma_q_rows(p); }
  PA_DEVICE float qk_scale() const { return k_scale() * p.pe.scale; }
};

template <class IO, class Tin, int D>
__global__ void __launch_bounds__(kMmaThreads, kMmaMinBlocks<D, CacheBytes<IO>::value>) decode_mma(const pa_decode_params p) {
  const int split = int(blockIdx.x), b = int(blockIdx.z);
  const int hk = int(blockIdx.y) / p.row_chunks, r0 = (int(blockIdx.y) % p.row_chunks) * p.mma;
  const int len = p.cache_lens[b];
  int lo, hi;
  split_keys(p, split, len, lo, hi);  // as decode_split
  const DecodeMmaJob job{{p, split, b, hk, r0, pa::min(int(p.mma), p.group * p.n - r0), len, lo, hi}};
  mma_split_block<IO, Tin, D, CacheBytes<IO>::value>(job);
}

// ---- launchers ---------------------------------------------------------------------------------
template <class IO, class Tin>
pa::launch_status mma_launch_tin(const pa_decode_params &p, void *stream) {
  const dim3 grid(unsigned(p.num_splits), unsigned(p.hkv * p.row_chunks), unsigned(p.batch));
  switch (p.d) {
    case 64:
      return pa::launch("decode_mma", decode_mma<IO, Tin, 64>, grid, dim3(kMmaThreads),
                        mma_smem(p, 64, CacheBytes<IO>::value).total, stream, p);
    case 128:
      return pa::launch("decode_mma", decode_mma<IO, Tin, 128>, grid, dim3(kMmaThreads),
                        mma_smem(p, 128, CacheBytes<IO>::value).total, stream, p);
    case 256:
      return pa::launch("decode_mma", decode_mma<IO, Tin, 256>, grid, dim3(kMmaThreads),
                        mma_smem(p, 256, CacheBytes<IO>::value).total, stream, p);
    default: return pa::launch_status{false, "decode_mma: head_dim must be 64, 128 or 256"};
  }
}
// The mma type is the q dtype (for 16-bit caches also the cache dtype).
template <class IO>
struct MmaL {
  static pa::launch_status run(const pa_decode_params &p, void *s) {
    if (p.q_dtype == POSATTN_DTYPE_F16) return mma_launch_tin<IO, pa::f16>(p, s);
    return mma_launch_tin<IO, pa::bf16>(p, s);
  }
};
// The split kernel p.mma names (decode_mma or decode_split), then the combine.
inline pa::launch_status decode_launch_any(const pa_decode_params &p, int cache_dtype, void *stream) {
  if (!p.mma) return decode_launch(p, cache_dtype, stream);
  pa::launch_status st;
  switch (cache_dtype) {
    case POSATTN_DTYPE_F16: st = mma_launch_tin<CacheIO<pa::f16>, pa::f16>(p, stream); break;
    case POSATTN_DTYPE_BF16: st = mma_launch_tin<CacheIO<pa::bf16>, pa::bf16>(p, stream); break;
    case POSATTN_DTYPE_FP8_E4M3: st = MmaL<Fp8IO<0>>::run(p, stream); break;
    case POSATTN_DTYPE_FP8_E5M2: st = MmaL<Fp8IO<1>>::run(p, stream); break;
    default: return pa::launch_status{false, "decode_mma: no tensor-core kernel for this cache dtype"};
  }
  if (!st.ok) return st;
  return combine_launch(p, stream);
}

}  // namespace pa_decode
#endif
