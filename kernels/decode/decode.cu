// decode.cu -- the decode kernels, written once against the device layer (EMU and nvcc):
//
//   decode_split    one block per (KV split, kv head [x row chunk], sequence). The block holds
//                   the query rows of a whole GQA group (group * n rows, up to kRows) so every
//                   cached K/V token of the kv head is read ONCE from the pages for all of them.
//                   The block body is shared with the plan's paged_split (simt_split.cuh): keys
//                   staged kKeysPerTile at a time in shared memory as fp32 (gathered through the
//                   block table; K rotated there in fp32 for un-rotated caches), q rotated once,
//                   scores for (row, key) pairs spread over the threads, the online softmax (fp32)
//                   per row, and each thread owning a fixed set of accumulator elements.
//                   It writes a normalised partial output and its LSE per split.
//   decode_combine  merges the splits of one (sequence, token, head) through their LSEs, adds the
//                   sink logit as one more softmax term without a value, writes out and lse.
//   cache_append    writes new K/V rows into their page slots; K rotated in fp32 first when the
//                   cache holds rotated keys.
// Positional encodings enter through kernels/pe/ (rope.cuh, bias.cuh) on the pa_prefill_params
// embedded in the parameters; masks follow posattn_decode_desc (bottom-right causal, left window).
// Non-finite values (posattn.h NaN RULE): a non-finite V element is staged as 0 and the same
// element of that key's K as NaN, so exactly the rows that see the key get a NaN logit
// (simt_split.cuh). Logits go through logit_or_nan, NaN logits reach the row sum, and the combine
// keeps a NaN split LSE (max_nan).
// Cache dtypes: the kernels are templated on a cache element I/O policy (CacheIO for f32/f16/bf16,
// Fp8IO for the OCP FP8 formats: encoding by host/fp8.h, decoding in cache_io.cuh). An FP8
// element's value is decode(code) * scale in fp32 (scale of its kv head, or the tensor's); an
// append stores encode(x / scale), the fp32 quotient rounded once to fp8 with saturation.
#ifndef POSATTN_DECODE_CU
#define POSATTN_DECODE_CU

#include "decode/cache_io.cuh"
#include "decode/params.h"
#include "decode/simt_geometry.h"
#include "decode/simt_split.cuh"
#include "fp8.h"
#include "merge/merge.cuh"
#include "pe/bias.cuh"
#include "pe/mask.cuh"
#include "pe/rope.cuh"

namespace pa_decode {

// Block shape, kThreads / kRows / kKeysPerTile / kMinBlocks, and shared memory: simt_geometry.h.
template <int DMAX>
inline size_t split_smem_bytes(int d) {
  return simt_smem_bytes(kKeysPerTile<DMAX>, d);
}

// Element idx of a tensor whose dtype is known only at run time (q, new K/V: read once).
using pa_merge::load_any;
using pa_merge::store_any;

// Element I/O of the cache pools: kernels/decode/cache_io.cuh.
using pa_cache::CacheIO;
using pa_cache::Fp8IO;
// The dequantisation scale of kv head h (1 without scales: every non-FP8 cache).
template <class P>
PA_DEVICE float cache_scale(const P &p, pa::gptr<const float> s, int h) {
  return pa_cache::scale_of(s, p.scale_per_head, h);
}

// This split's keys [lo, hi) of sequence b (length len), narrowed by the window of the earliest
// query token (causal never cuts: the last token sees the whole cache). Both split kernels.
PA_DEVICE void split_keys(const pa_decode_params &p, int split, int len, int &lo, int &hi) {
  const int split_tokens = p.split_pages * p.page_size;
  lo = int(pa::min(int64_t(split) * split_tokens, int64_t(len)));
  hi = int(pa::min(int64_t(lo) + split_tokens, int64_t(len)));
  if (p.window_left >= 0)  // windows up to INT32_MAX: int64
    lo = int(pa::min(pa::max(int64_t(lo), int64_t(len) - p.n - p.window_left), int64_t(hi)));
}

// A split block's work (simt_split.cuh; decode_mma.cuh adds what mma_split.cuh needs): row r of
// the block is query token t of q head h (tokens of one head adjacent); the keys are the split's.
struct DecodeJob {
  const pa_decode_params &p;
  int split, b, hk, r0, rows, len, lo, hi;

  PA_DEVICE const pa_prefill_params &pe() const { return p.pe; }
  PA_DEVICE int causal() const { return p.causal; }
  PA_DEVICE int window_left() const { return p.window_left; }
  PA_DEVICE int rotate_k() const { return p.rotate_k; }
  PA_DEVICE int d() const { return p.d; }
  PA_DEVICE float k_scale() const { return cache_scale(p, p.k_scale, hk); }
  PA_DEVICE float v_scale() const { return cache_scale(p, p.v_scale, hk); }
  PA_DEVICE pa::gptr<const unsigned char> k_pages() const { return p.k_pages; }
  PA_DEVICE pa::gptr<const unsigned char> v_pages() const { return p.v_pages; }
  PA_DEVICE pa::gptr<float> part_o() const { return p.part_o; }
  PA_DEVICE pa::gptr<float> part_lse() const { return p.part_lse; }
  PA_DEVICE int row_head(int r) const { return hk * p.group + (r0 + r) / p.n; }
  PA_DEVICE int row_token(int r) const { return (r0 + r) % p.n; }
  PA_DEVICE int q_index(int r) const { return len - p.n + row_token(r); }
  PA_DEVICE int32_t q_pos(int r) const {
    return p.q_pos ? int32_t(p.q_pos[int64_t(b) * p.n + row_token(r)]) : len - p.n + row_token(r);
  }
  PA_DEVICE int32_t kv_pos(int j) const {
    return p.kv_pos ? int32_t(p.kv_pos[int64_t(b) * p.capacity + j]) : int32_t(j);
  }
  PA_DEVICE float q_elem(int r, int c) const {
    return load_any(p.q, p.q_dtype,
                    int64_t(b) * p.q_sb + int64_t(row_token(r)) * p.q_ss + int64_t(row_head(r)) * p.q_sh + c);
  }
  PA_DEVICE int64_t token_offset(int j) const {
    const int64_t page = p.block_table[int64_t(b) * p.mpps + j / p.page_size];
    return page * p.stride_page + int64_t(j % p.page_size) * p.stride_slot + int64_t(hk) * p.stride_head;
  }
  PA_DEVICE int64_t part_row(int r) const {
    return ((int64_t(split) * p.batch + b) * p.n + row_token(r)) * p.hq + row_head(r);
  }
};

template <class IO, int DMAX>
__global__ void __launch_bounds__(kThreads, kMinBlocks<DMAX>) decode_split(const pa_decode_params p) {
  const int split = int(blockIdx.x), b = int(blockIdx.z);
  const int hk = int(blockIdx.y) / p.row_chunks, r0 = (int(blockIdx.y) % p.row_chunks) * kRows;
  const int len = p.cache_lens[b];
  int lo, hi;
  split_keys(p, split, len, lo, hi);
  const DecodeJob job{p, split, b, hk, r0, pa::min(kRows, p.group * p.n - r0), len, lo, hi};
  simt_split_block<IO, DMAX>(job);
}

// One block per (token x head, sequence): the splits and the sink merged by combine_splits
// (kernels/merge/merge.cuh).
__global__ void __launch_bounds__(kThreads) decode_combine(const pa_decode_params p) {
  const int b = int(blockIdx.y), t = int(blockIdx.x) / p.hq, h = int(blockIdx.x) % p.hq;
  const int64_t per_split = int64_t(p.batch) * p.n * p.hq;
  const int64_t row0 = (int64_t(b) * p.n + t) * p.hq + h;
  const auto store = [&](int c, float o) {
    store_any(p.out, p.out_dtype, int64_t(b) * p.o_sb + int64_t(t) * p.o_ss + int64_t(h) * p.o_sh + c, o);
  };
  const pa_merge::LseSum sum = pa_merge::combine_splits<kThreads>(
      p.num_splits, per_split, row0, p.d, p.part_o, p.part_lse, p.sinks ? float(p.sinks[h]) : -INFINITY, store);
  if (p.lse && threadIdx.x == 0) p.lse[(int64_t(b) * p.hq + h) * p.n + t] = sum.lse(false);
}

// One block per (new token, sequence); threads over (head, feature).
template <class IO>
__global__ void __launch_bounds__(kThreads) cache_append(const pa_append_params p) {
  const int t = int(blockIdx.x), b = int(blockIdx.y);
  if (t >= (p.new_lens ? int(p.new_lens[b]) : p.n)) return;
  const int64_t j = int64_t(p.cache_lens[b]) + t;
  const int32_t pos = p.positions ? int32_t(p.positions[int64_t(b) * p.n + t]) : int32_t(j);
  const int64_t page = p.block_table[int64_t(b) * p.mpps + j / p.page_size];
  const int64_t slot = page * p.stride_page + (j % p.page_size) * p.stride_slot;
  for (int e = int(threadIdx.x); e < p.hkv * p.d; e += kThreads) {
    const int h = e / p.d, f = e % p.d;
    const int64_t ko = int64_t(b) * p.k_sb + int64_t(t) * p.k_ss + int64_t(h) * p.k_sh;
    const auto k_in = [&](int i) { return load_any(p.k, p.in_dtype, ko + i); };
    const float x = pa_cache::rope_feature(p.pe, f, pos, k_in);
    const int64_t dst = slot + int64_t(h) * p.stride_head + f;
    IO::store(p.k_pages, dst, x / cache_scale(p, p.k_scale, h));
    const int64_t vo = int64_t(b) * p.v_sb + int64_t(t) * p.v_ss + int64_t(h) * p.v_sh + f;
    IO::store(p.v_pages, dst, load_any(p.v, p.in_dtype, vo) / cache_scale(p, p.v_scale, h));
  }
}

// ---- launchers ---------------------------------------------------------------------------------
template <class IO, int DMAX>
pa::launch_status split_launch_dim(const pa_decode_params &p, void *stream) {
  return pa::launch("decode_split", decode_split<IO, DMAX>,
                    dim3(unsigned(p.num_splits), unsigned(p.hkv * p.row_chunks), unsigned(p.batch)),
                    dim3(kThreads), split_smem_bytes<DMAX>(p.d), stream, p);
}
template <class IO>
pa::launch_status split_launch_cache(const pa_decode_params &p, void *stream) {
  if (p.d <= 64) return split_launch_dim<IO, 64>(p, stream);
  if (p.d <= 128) return split_launch_dim<IO, 128>(p, stream);
  return split_launch_dim<IO, kMaxDim>(p, stream);
}
template <class IO>
pa::launch_status append_launch_cache(const pa_append_params &p, void *stream) {
  return pa::launch("cache_append", cache_append<IO>, dim3(unsigned(p.n), unsigned(p.batch)),
                    dim3(kThreads), 0, stream, p);
}
// The launcher L (split_launch_cache / append_launch_cache) for cache dtype `cache_dtype`.
template <template <class> class L, class P>
pa::launch_status by_cache_dtype(const P &p, int cache_dtype, void *stream) {
  switch (cache_dtype) {
    case POSATTN_DTYPE_F16: return L<CacheIO<pa::f16>>::run(p, stream);
    case POSATTN_DTYPE_BF16: return L<CacheIO<pa::bf16>>::run(p, stream);
    case POSATTN_DTYPE_FP8_E4M3: return L<Fp8IO<0>>::run(p, stream);
    case POSATTN_DTYPE_FP8_E5M2: return L<Fp8IO<1>>::run(p, stream);
    default: return L<CacheIO<float>>::run(p, stream);
  }
}
template <class IO>
struct SplitL {
  static pa::launch_status run(const pa_decode_params &p, void *s) { return split_launch_cache<IO>(p, s); }
};
template <class IO>
struct AppendL {
  static pa::launch_status run(const pa_append_params &p, void *s) { return append_launch_cache<IO>(p, s); }
};
// The combine step alone (after either split kernel: decode_split or decode_mma.cuh's decode_mma).
inline pa::launch_status combine_launch(const pa_decode_params &p, void *stream) {
  return pa::launch("decode_combine", decode_combine, dim3(unsigned(p.n * p.hq), unsigned(p.batch)),
                    dim3(kThreads), 0, stream, p);
}
// decode_split for cache dtype `cache_dtype` (p.d <= kMaxDim), then the combine.
inline pa::launch_status decode_launch(const pa_decode_params &p, int cache_dtype, void *stream) {
  const pa::launch_status st = by_cache_dtype<SplitL>(p, cache_dtype, stream);
  if (!st.ok) return st;
  return combine_launch(p, stream);
}
inline pa::launch_status append_launch(const pa_append_params &p, int cache_dtype, void *stream) {
  return by_cache_dtype<AppendL>(p, cache_dtype, stream);
}

}  // namespace pa_decode
#endif
