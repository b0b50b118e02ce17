// decode.cu -- the decode kernels, written once against the device layer (EMU and nvcc):
//
//   decode_split    one block per (KV split, kv head [x row chunk], sequence). The block holds
//                   the query rows of a whole GQA group (group * n rows, up to kRows) so every
//                   cached K/V token of the kv head is read ONCE from the pages for all of them.
//                   Keys are staged kKeys at a time in shared memory as fp32 (gathered through the
//                   block table; K rotated there in fp32 for un-rotated caches), q is rotated once.
//                   Scores for (row, key) pairs are spread over the threads, the online softmax
//                   (fp32) runs per row, and each thread owns a fixed set of accumulator elements.
//                   It writes a normalised partial output and its LSE per split.
//   decode_combine  merges the splits of one (sequence, token, head) through their LSEs, adds the
//                   sink logit as one more softmax term without a value, writes out and lse.
//   cache_append    writes new K/V rows into their page slots; K rotated in fp32 first when the
//                   cache holds rotated keys.
// Positional encodings enter through kernels/pe/ (rope.cuh, bias.cuh) on the pa_prefill_params
// embedded in the parameters; masks follow posattn_decode_desc (bottom-right causal, left window).
// Non-finite values (posattn.h NaN RULE): the P V loop multiplies every staged value by its row's
// weight, 0 for masked keys, and 0 * NaN = NaN would reach the earlier speculative tokens that do
// not see a key. So a non-finite V element is staged as 0 and the same element of that key's K as
// NaN: exactly the rows that see the key get a NaN logit. Logits go through logit_or_nan, NaN
// logits reach the row sum, and the combine keeps a NaN split LSE (max_nan).
// Cache dtypes: the kernels are templated on a cache element I/O policy (CacheIO for f32/f16/bf16,
// Fp8IO for the OCP FP8 formats: encoding by host/fp8.h, decoding below). An FP8 element's value is
// decode(code) * scale in fp32 (scale of its kv head, or the tensor's); an append stores
// encode(x / scale), the fp32 quotient rounded once to fp8 with saturation.
#ifndef POSATTN_DECODE_CU
#define POSATTN_DECODE_CU

#include "decode/cache_io.cuh"
#include "decode/params.h"
#include "fp8.h"
#include "merge/merge.cuh"
#include "pe/bias.cuh"
#include "pe/mask.cuh"
#include "pe/rope.cuh"

namespace pa_decode {

constexpr int kThreads = 128;  // threads per block of decode_split
constexpr int kRows = 16;      // query rows per block (a GQA group of <= 16 heads x tokens)
constexpr int kMaxDim = 256;
template <int DMAX>
constexpr int kKeysPerTile = DMAX > 128 ? 16 : 32;  // K/V tokens per shared-memory tile
// Blocks per SM promised to ptxas (__launch_bounds__), chosen so that no instance spills and the
// hd 128 instance keeps the occupancy of bench/sass/baseline.json: 5 on sm_80 (<= 96 registers)
// for hd <= 128; on sm_90 hd 128 gets 4 (5 spills 8 bytes there); hd 256 needs ~168 registers (1).
// Without these ptxas picked 72-127 registers and spilled 4-20 bytes in some instances.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
constexpr int kMinBlocksHd128 = 4;
#else
constexpr int kMinBlocksHd128 = 5;
#endif
template <int DMAX>
constexpr int kMinBlocks = DMAX > 128 ? 1 : DMAX > 64 ? kMinBlocksHd128 : 5;

PA_HD int row_floats(int d) { return (d + 3) & ~3; }

template <int DMAX>
inline size_t split_smem_bytes(int d) {
  const size_t dr = size_t(row_floats(d)), T = size_t(kKeysPerTile<DMAX>);
  return (size_t(kRows) * dr + 2 * T * dr + size_t(kRows) * T + 3 * size_t(kRows)) * sizeof(float) +
         (T + kRows) * sizeof(int32_t);
}

// Element idx of a tensor whose dtype is known only at run time (q, new K/V: read once).
using pa_merge::load_any;
using pa_merge::store_any;

// Element I/O of the cache pools and fp32 RoPE of shared rows: kernels/decode/cache_io.cuh.
using pa_cache::CacheIO;
using pa_cache::Fp8IO;
// The dequantisation scale of kv head h (1 without scales: every non-FP8 cache).
template <class P>
PA_DEVICE float cache_scale(const P &p, pa::gptr<const float> s, int h) {
  return pa_cache::scale_of(s, p.scale_per_head, h);
}
PA_DEVICE void rope_rows(const pa_prefill_params &pe, pa::sptr<float> rows, int count, int dr,
                         int half, pa::sptr<int32_t> pos, int tid) {
  pa_cache::rope_rows<kThreads>(pe, rows, count, dr, half, pos, tid);
}

template <class IO, int DMAX>
__global__ void __launch_bounds__(kThreads, kMinBlocks<DMAX>) decode_split(const pa_decode_params p) {
  constexpr int T = kKeysPerTile<DMAX>;
  constexpr int kAcc = kRows * DMAX / kThreads;  // accumulator elements per thread
  const int split = int(blockIdx.x), b = int(blockIdx.z);
  const int hk = int(blockIdx.y) / p.row_chunks, r0 = (int(blockIdx.y) % p.row_chunks) * kRows;
  const int tid = int(threadIdx.x);
  const int rows = pa::min(kRows, p.group * p.n - r0);
  const int d = p.d, dr = row_floats(d), half = p.pe.rotary_dim / 2;
  const int len = p.cache_lens[b];
  const float k_sc = cache_scale(p, p.k_scale, hk), v_sc = cache_scale(p, p.v_scale, hk);

  pa::sptr<float> qs = pa::dynamic_shared<float>();   // [kRows][dr] rotated queries
  pa::sptr<float> ks = qs + kRows * dr;                 // [T][dr]
  pa::sptr<float> vs = ks + T * dr;                     // [T][dr]
  pa::sptr<float> ss = vs + T * dr;                     // [kRows][T] scores, then weights
  pa::sptr<float> ms = ss + kRows * T;                  // [kRows] running max
  pa::sptr<float> ls = ms + kRows;                      // [kRows] running sum
  pa::sptr<float> cs = ls + kRows;                      // [kRows] rescale of this tile
  pa::sptr<int32_t> kpos = pa::ptr_cast<int32_t>(cs + kRows);  // [T]
  pa::sptr<int32_t> qpos = kpos + T;                            // [kRows]

  // Row r of the block is query token t of q head h (tokens of one head are adjacent).
  auto row_head = [&](int r) { return hk * p.group + (r0 + r) / p.n; };
  auto row_token = [&](int r) { return (r0 + r) % p.n; };

  for (int r = tid; r < kRows; r += kThreads) {
    ms[r] = -INFINITY;
    ls[r] = 0.f;
    qpos[r] = 0;
    if (r < rows) {
      const int t = row_token(r);
      qpos[r] = p.q_pos ? int32_t(p.q_pos[int64_t(b) * p.n + t]) : len - p.n + t;
    }
  }
  for (int e = tid; e < kRows * dr; e += kThreads) {
    const int r = e / dr, c = e % dr;
    float x = 0.f;
    if (r < rows && c < d)
      x = load_any(p.q, p.q_dtype,
                   int64_t(b) * p.q_sb + int64_t(row_token(r)) * p.q_ss + int64_t(row_head(r)) * p.q_sh + c);
    qs[e] = x;
  }
  __syncthreads();
  if (half > 0) {  // RoPE on q, once per row, in fp32
    rope_rows(p.pe, qs, rows, dr, half, qpos, tid);
    __syncthreads();
  }

  float acc[kAcc];
  PA_UNROLL  // acc stays in registers only when every index is a constant
  for (int k = 0; k < kAcc; ++k) acc[k] = 0.f;

  // This split's keys, narrowed by the window of the earliest query token (causal never cuts:
  // the last token sees the whole cache).
  const int split_tokens = p.split_pages * p.page_size;
  int lo = int(pa::min(int64_t(split) * split_tokens, int64_t(len)));
  const int hi = int(pa::min(int64_t(lo) + split_tokens, int64_t(len)));
  if (p.window_left >= 0)  // windows up to INT32_MAX: int64
    lo = int(pa::min(pa::max(int64_t(lo), int64_t(len) - p.n - p.window_left), int64_t(hi)));

  for (int kn, kt = lo; kt < hi; kt += kn) {  // kt + kn <= hi: never past INT32_MAX
    kn = pa::min(T, hi - kt);
    // Gather K and V rows through the block table (fp32, zero padded).
    for (int e = tid; e < T * dr; e += kThreads) {
      const int jj = e / dr, c = e % dr;
      float kv = 0.f, vv = 0.f;
      if (jj < kn && c < d) {
        const int j = kt + jj;
        const int64_t page = p.block_table[int64_t(b) * p.mpps + j / p.page_size];
        const int64_t off = page * p.stride_page + int64_t(j % p.page_size) * p.stride_slot +
                            int64_t(hk) * p.stride_head + c;
        kv = IO::load(p.k_pages, off) * k_sc;
        vv = IO::load(p.v_pages, off) * v_sc;
        if (!pa_pe::is_finite(vv)) {  // poisons the rows that see token j, no other
          kv = NAN;
          vv = 0.f;
        }
      }
      ks[e] = kv;
      vs[e] = vv;
    }
    for (int jj = tid; jj < T; jj += kThreads)
      kpos[jj] = jj < kn ? (p.kv_pos ? int32_t(p.kv_pos[int64_t(b) * p.capacity + kt + jj]) : kt + jj) : 0;
    __syncthreads();
    if (p.rotate_k && half > 0) {  // un-rotated cache: rotate K at its position, in fp32
      rope_rows(p.pe, ks, kn, dr, half, kpos, tid);
      __syncthreads();
    }

    // Logits of every (row, key) pair of the tile.
    for (int e = tid; e < kRows * T; e += kThreads) {
      const int r = e / T, jj = e % T;
      float s = -INFINITY;
      const int j = kt + jj, ia = len - p.n + row_token(r);
      const bool vis = r < rows && jj < kn && pa_pe::in_window(ia, j, p.causal, p.window_left, -1);
      if (vis) {
        const pa::sptr<const float> qrow = qs + r * dr, krow = ks + jj * dr;
        float dot = 0.f;
        for (int c = 0; c < dr; c += 4) {
          const float4 qq = pa::load(pa::ptr_cast<const float4>(qrow + c));
          const float4 kk = pa::load(pa::ptr_cast<const float4>(krow + c));
          dot = fmaf(qq.x, kk.x, dot);
          dot = fmaf(qq.y, kk.y, dot);
          dot = fmaf(qq.z, kk.z, dot);
          dot = fmaf(qq.w, kk.w, dot);
        }
        s = pa_pe::apply_softcap(p.pe, dot * p.pe.scale);
        s = pa_pe::logit_or_nan(s + pa_pe::BiasAny(p.pe, row_head(r), qpos[r])(kpos[jj]));
      }
      ss[e] = s;
    }
    __syncthreads();

    // Online softmax per row: new max, rescale factor, weights in place of the scores.
    for (int r = tid; r < kRows; r += kThreads) {
      float mt = -INFINITY;
      for (int jj = 0; jj < T; ++jj) mt = fmaxf(mt, ss[r * T + jj]);
      const float m_old = ms[r], m_new = fmaxf(m_old, mt);  // NaN logits reach the sum below
      // While nothing is visible m_new is -inf; subtracting 0 then keeps exp at 0 for masked keys
      // (and NaN for NaN logits) instead of computing -inf - (-inf).
      const float base = m_new == -INFINITY ? 0.f : m_new;
      const float corr = expf(m_old - base);  // 0 while nothing was seen (m_old = -inf)
      float sum = 0.f;
      for (int jj = 0; jj < T; ++jj) {
        const float s = ss[r * T + jj];
        const float w = s == -INFINITY ? 0.f : expf(s - base);
        ss[r * T + jj] = w;
        sum += w;
      }
      ls[r] = ls[r] * corr + sum;
      ms[r] = m_new;
      cs[r] = corr;
    }
    __syncthreads();

    // P V into the thread's accumulator elements (row e / DMAX, feature e % DMAX).
    PA_UNROLL
    for (int k = 0; k < kAcc; ++k) {
      const int e = tid + k * kThreads, r = e / DMAX, c = e % DMAX;
      if (r >= rows || c >= d) continue;
      float a = acc[k] * cs[r];
      for (int jj = 0; jj < kn; ++jj) a = fmaf(ss[r * T + jj], vs[jj * dr + c], a);
      acc[k] = a;
    }
    __syncthreads();
  }

  // Normalised partial output and LSE of this split.
  PA_UNROLL
  for (int k = 0; k < kAcc; ++k) {
    const int e = tid + k * kThreads, r = e / DMAX, c = e % DMAX;
    if (r >= rows || c >= d) continue;
    const int64_t row = ((int64_t(split) * p.batch + b) * p.n + row_token(r)) * p.hq + row_head(r);
    const float l = ls[r];
    p.part_o[row * d + c] = l == 0.f ? 0.f : acc[k] / l;  // l is 0 only when nothing is visible
    if (c == 0) p.part_lse[row] = l == 0.f ? -INFINITY : ms[r] + logf(l);
  }
}

// One block per (token x head, sequence): out = sum_s e^{lse_s - M} o_s / (sum_s e^{lse_s - M}
// + e^{sink - M}), M the largest of the split LSEs and the sink.
__global__ void __launch_bounds__(kThreads) decode_combine(const pa_decode_params p) {
  const int b = int(blockIdx.y), t = int(blockIdx.x) / p.hq, h = int(blockIdx.x) % p.hq;
  const int64_t per_split = int64_t(p.batch) * p.n * p.hq;
  const int64_t row0 = (int64_t(b) * p.n + t) * p.hq + h;
  const auto split_lse = [&](int s) { return float(p.part_lse[s * per_split + row0]); };
  const pa_merge::LseSum sum =
      pa_merge::lse_merge(p.num_splits, split_lse, p.sinks ? float(p.sinks[h]) : -INFINITY, false);
  const int64_t obase = int64_t(b) * p.o_sb + int64_t(t) * p.o_ss + int64_t(h) * p.o_sh;
  for (int c = int(threadIdx.x); c < p.d; c += kThreads) {
    float o = 0.f;
    if (!sum.empty())
      for (int s = 0; s < p.num_splits; ++s) {
        const float w = sum.weight(split_lse(s), false);
        if (w != 0.f) o = fmaf(w, p.part_o[(s * per_split + row0) * p.d + c], o);  // empty splits: w = 0
      }
    store_any(p.out, p.out_dtype, obase + c, o);
  }
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
  const int rd = p.pe.rotary_dim, half = rd / 2, off = p.pe.rope_offset;
  for (int e = int(threadIdx.x); e < p.hkv * p.d; e += kThreads) {
    const int h = e / p.d, f = e % p.d, fr = f - off;  // fr: index inside the rotated features
    const int64_t ko = int64_t(b) * p.k_sb + int64_t(t) * p.k_ss + int64_t(h) * p.k_sh;
    float x = load_any(p.k, p.in_dtype, ko + f);
    if (fr >= 0 && fr < rd) {  // rotate the pair holding f (each thread computes its own half)
      const int pair = p.pe.rope_gptj ? fr / 2 : (fr < half ? fr : fr - half);
      int a, bb;
      pa_pe::rope_pair_features(p.pe, pair, a, bb);
      const float2 v = pa_pe::rope_rotate(load_any(p.k, p.in_dtype, ko + a),
                                          load_any(p.k, p.in_dtype, ko + bb),
                                          pa_pe::rope_cos_sin(p.pe, pair, pos));
      x = f == a ? v.x : v.y;
    }
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
