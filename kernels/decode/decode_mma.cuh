// decode_mma.cuh -- the tensor-core decode kernel (issue 14 item 2), written once against the
// device layer (EMU and nvcc) like decode.cu, whose combine step, element I/O policies and plan it
// shares:
//
//   decode_mma   one block per (KV split, kv head [x row chunk of 128], sequence), 8 warps. The
//                block holds every query row of its kv head (GQA group x query tokens, up to
//                kMmaRows = 128; row r = head r / n, token r % n as in decode_split), padded to
//                m-tiles of 16 rows, so each cached K/V token of the split is read from the pages
//                ONCE per kv head whatever the group size and token count (row chunks only when
//                group x n > 128). Per KV tile of kTile keys:
//                  copy      16-byte cp.async of each token's K and V rows, gathered through the
//                            block table, 2-stage ring (zero fill past the split's end)
//                  fp8       the tile's codes widened to the q dtype in shared memory: exact (every
//                            E4M3/E5M2 value is a bf16 and an f16), the scales stay out (below)
//                  NaN RULE  a non-finite V element becomes 0 and one K element of its key NaN
//                            (isolate_nonfinite_v of the prefill kernel: the rows that see the key,
//                            and only they, get a NaN logit), every tile
//                  RoPE      un-rotated caches: K rotated in fp32 in shared memory at its position
//                            and rounded once to the mma type (transform_tile of the prefill kernel)
//                  S = Q K^T mma.sync m16n8k16 per 16-key chunk, fp32 accumulators
//                  logits    (s * k_scale * scale) -> softcap -> + bias (pa_pe::BiasAny) ->
//                            logit_or_nan, masked keys exact -inf: the SIMT kernel's order
//                  softmax   online per row in fp32 (quad shuffles)
//                  O += P V  P as the sum of two mma-type terms (hi + lo, ~16 bits), V fragments
//                            by ldmatrix.trans
//                Warps: the MT = ceil(rows / 16) m-tiles are spread over the 8 warps; when
//                MT < 8 several warps share an m-tile and take alternate 16-key chunks of each
//                tile (KS "key slices", each with its own running max / sum / O), merged through
//                shared memory at the end of the split by the LSE rule of the combine. The
//                block writes the normalised partial O (x v_scale) and its LSE per split, the
//                layout of decode_split, so decode_combine merges either kernel's splits.
//
// Rounding (what REF agreement rests on; DESIGN.md section 5): q is read in its dtype (= the mma
// type) and, with RoPE, rotated in fp32 and rounded once to the mma type. K/V of a bf16/f16 cache
// are the operands as stored (cache dtype = q dtype); an FP8 code's value decode(c) is exact in
// the mma type, and the per-tensor / per-head scales are applied in fp32 to the accumulators:
// k_scale * scale on the raw logit (one fp32 product of the two), v_scale on the normalised
// output. An un-rotated cache's K is rotated in fp32 from the exact decode(c) (or the stored
// 16-bit value) and rounded once to the mma type. P enters P V as P_hi + P_lo (each rounded to
// the mma type; together ~16 significant bits), not rounded once as in the prefill kernel: the
// extra mma are free in a memory-bound kernel and keep decode within the fp32-softmax accuracy
// the decode fuzzer asserts. Every sum and the softmax are fp32.
//
// Served (pa_decode_mma_unfit in dispatch.cpp decides): q bf16/f16, cache of the same dtype or
// FP8, head_dim 64/128/256, 16-byte aligned pools and rows. Everything else (f32, other head
// dims) stays with decode_split.
#ifndef POSATTN_DECODE_MMA_CUH
#define POSATTN_DECODE_MMA_CUH

#include "decode/decode.cu"
#include "prefill/mma.cuh"

namespace pa_decode {

constexpr int kMmaWarps = 8, kMmaThreads = 32 * kMmaWarps;
constexpr int kMmaRows = 16 * kMmaWarps;  // query rows per block (8 m-tiles)
constexpr int kMmaStages = 2;
// Keys per shared-memory tile: 64 (4 chunks of 16), 32 at hd 256 (the ring stays 64 KiB).
template <int D>
constexpr int kMmaTile = D > 128 ? 32 : 64;
// Blocks per SM promised to ptxas: 2 at hd 64; 1 above (hd 128 spilled ~48 bytes under 128
// registers; hd 256 holds 128 O accumulators per thread).
template <int D>
constexpr int kMmaMinBlocks = D > 64 ? 1 : 2;

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

// Rows of this kernel's blocks (all blocks of a launch hold the same padded count of Q rows).
PA_HD int mma_block_rows(const pa_decode_params &p) { return pa::min(kMmaRows, p.group * p.n); }
PA_HD int mma_q_rows(const pa_decode_params &p) { return (mma_block_rows(p) + 15) / 16 * 16; }

// Shared memory: [Q tile | K/V ring | fp8: K, V work tiles] overlaid by the fp32 merge buffer
// after the loop, then the per-warp / per-row softmax statistics.
template <class IO, class Tin, int D>
struct MmaSmem {
  static constexpr int kBc = kMmaTile<D>, kEsz = CacheBytes<IO>::value;
  static constexpr bool kFp8 = kEsz == 1;
  static constexpr size_t kRingSlot = size_t(kBc) * D * kEsz;  // bytes of one K (or V) tile
  static constexpr size_t kWork = kFp8 ? 2 * size_t(kBc) * D * sizeof(Tin) : 0;
  static constexpr size_t kStats = (3 * kMmaWarps * 16 + 2 * kMmaRows) * sizeof(float);
  size_t q, ring, work, main, stats, total;
  PA_HD explicit MmaSmem(const pa_decode_params &p) {
    const size_t qrows = size_t(mma_q_rows(p));
    q = 0;
    ring = qrows * D * sizeof(Tin);
    work = ring + 2 * kMmaStages * kRingSlot;
    main = work + kWork;
    const size_t merge = qrows * D * sizeof(float);
    if (merge > main) main = merge;
    stats = main;
    total = stats + kStats;
  }
};

// FP8 codes of a ring slot widened to Tin in a swizzled work tile (exact conversions).
template <class IO, class Tin, int D, int kBc>
PA_DEVICE void widen_fp8_tile(pa::sptr<const unsigned char> src, pa::sptr<Tin> dst, int tid) {
  using L = pa_kernels::mma::Smem<D>;
  for (int e = tid; e < kBc * D / 16; e += kMmaThreads) {
    const int row = e / (D / 16), col = (e % (D / 16)) * 16;
    const uint4 w = pa::load(pa::ptr_cast<const uint4>(src + row * D + col));
    const uint32_t words[4] = {w.x, w.y, w.z, w.w};
    uint32_t out[8];
    PA_UNROLL
    for (int k = 0; k < 8; ++k) {  // codes 2k, 2k+1 (little-endian bytes of the 16-byte chunk)
      const uint32_t word = words[k / 2], sh = 16 * (k % 2);
      const float lo = IO::value((word >> sh) & 0xffu), hi = IO::value((word >> (sh + 8)) & 0xffu);
      out[k] = uint32_t(pa::from_float<Tin>(lo).bits) | (uint32_t(pa::from_float<Tin>(hi).bits) << 16);
    }
    pa::store(pa::ptr_cast<uint4>(dst + L::at(row, col)), make_uint4(out[0], out[1], out[2], out[3]));
    pa::store(pa::ptr_cast<uint4>(dst + L::at(row, col + 8)), make_uint4(out[4], out[5], out[6], out[7]));
  }
}

// (a, b) as two packed pairs of the mma type: hi = round(a, b), lo = round(a - hi_a, b - hi_b).
template <class Tin>
PA_DEVICE void split_pair(float a, float b, uint32_t &hi, uint32_t &lo) {
  hi = pa_kernels::mma::MmaOp<Tin>::pack(a, b);
  const float2 h = std::is_same<Tin, pa::bf16>::value ? pa::unpack_bf16x2(hi) : pa::unpack_f16x2(hi);
  lo = pa_kernels::mma::MmaOp<Tin>::pack(a - h.x, b - h.y);
}

template <class IO, class Tin, int D>
__global__ void __launch_bounds__(kMmaThreads, kMmaMinBlocks<D>) decode_mma(const pa_decode_params p) {
  using namespace pa_kernels::mma;
  using S = MmaSmem<IO, Tin, D>;
  using L = Smem<D>;
  constexpr int kBc = S::kBc, kEsz = S::kEsz, kChunks = kBc / 16;
  constexpr int kCpr = D * kEsz / 16;  // 16-byte copies per K (or V) row
  constexpr int kDA = D / 8;           // n8 atoms of the O tile
  constexpr bool kFp8 = S::kFp8;

  const int split = int(blockIdx.x), b = int(blockIdx.z);
  const int hk = int(blockIdx.y) / p.row_chunks, r0 = (int(blockIdx.y) % p.row_chunks) * kMmaRows;
  const int rows = pa::min(kMmaRows, p.group * p.n - r0);  // this block's query rows
  const int tid = int(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t4 = lane % 4;  // fragment row group and column pair (PTX ISA layout)
  const int len = p.cache_lens[b];
  const bool rope = p.pe.rotary_dim > 0;

  // Warp roles: m-tile mt, key slice ks of KS (KS warps per m-tile, a power of two, <= chunks).
  const int mtiles = (rows + 15) / 16;
  int key_slices = 1;
  while (2 * key_slices * mtiles <= kMmaWarps && 2 * key_slices <= kChunks) key_slices *= 2;
  const int mt = warp / key_slices, ks = warp % key_slices;
  const bool active = mt < mtiles;

  const S sm(p);
  const pa::sptr<unsigned char> base = pa::dynamic_shared<unsigned char>();
  const pa::sptr<Tin> sQ = pa::ptr_cast<Tin>(base + sm.q);
  const pa::sptr<unsigned char> ring = base + sm.ring;
  const pa::sptr<float> sO = pa::ptr_cast<float>(base);  // after the loop only
  const pa::sptr<float> stat_m = pa::ptr_cast<float>(base + sm.stats);  // [warp][16]
  const pa::sptr<float> stat_l = stat_m + kMmaWarps * 16;               // [warp][16]
  const pa::sptr<float> stat_f = stat_l + kMmaWarps * 16;               // [warp][16]
  const pa::sptr<float> row_m = stat_f + kMmaWarps * 16;                // [kMmaRows]
  const pa::sptr<float> row_l = row_m + kMmaRows;                       // [kMmaRows]

  // Row r of the block is query token t of q head h (tokens of one head are adjacent).
  auto row_head = [&](int r) { return hk * p.group + (r0 + r) / p.n; };
  auto row_token = [&](int r) { return (r0 + r) % p.n; };
  auto q_pos = [&](int r) {
    return p.q_pos ? int32_t(p.q_pos[int64_t(b) * p.n + row_token(r)]) : len - p.n + row_token(r);
  };
  auto kv_pos = [&](int j) {
    return p.kv_pos ? int32_t(p.kv_pos[int64_t(b) * p.capacity + j]) : int32_t(j);
  };

  // This split's keys, narrowed by the window of the earliest query token (as decode_split).
  const int split_tokens = p.split_pages * p.page_size;
  int lo = int(pa::min(int64_t(split) * split_tokens, int64_t(len)));
  const int hi = int(pa::min(int64_t(lo) + split_tokens, int64_t(len)));
  if (p.window_left >= 0)
    lo = int(pa::min(pa::max(int64_t(lo), int64_t(len) - p.n - p.window_left), int64_t(hi)));

  // ---- copies: tile n (keys lo + n kBc ...) into ring slot n % kMmaStages, K then V ----
  const int ntiles = (hi - lo + kBc - 1) / kBc;
  const pa::gptr<const unsigned char> gk = p.k_pages, gv = p.v_pages;
  int fetch = 0;
  auto issue = [&]() {
    if (fetch < ntiles) {
      const int kt = lo + fetch * kBc, kn = pa::min(kBc, hi - kt);
      const pa::sptr<unsigned char> dk = ring + (fetch % kMmaStages) * 2 * S::kRingSlot;
      const pa::sptr<unsigned char> dv = dk + S::kRingSlot;
      for (int e = tid; e < kBc * kCpr; e += kMmaThreads) {
        const int jj = e / kCpr, c = e % kCpr;
        const bool ok = jj < kn;
        int64_t off = 0;  // bytes from the pool start (the pool start itself for zero fill)
        if (ok) {
          const int j = kt + jj;
          const int64_t page = p.block_table[int64_t(b) * p.mpps + j / p.page_size];
          off = (page * p.stride_page + int64_t(j % p.page_size) * p.stride_slot +
                 int64_t(hk) * p.stride_head) * kEsz + c * 16;
        }
        const int at = kFp8 ? jj * D + c * 16 : int(sizeof(Tin)) * L::at(jj, c * 8);
        pa::cp_async_16_zfill(dk + at, gk + off, ok);
        pa::cp_async_16_zfill(dv + at, gv + off, ok);
      }
    }
    ++fetch;
    pa::cp_async_commit();  // empty groups too: the wait count is the same every iteration
  };
  for (int s = 0; s < kMmaStages - 1; ++s) issue();

  // ---- Q: this block's rows in the mma type (padding rows 0), RoPE in fp32, rounded once ----
  for (int e = tid; e < mma_q_rows(p) * D; e += kMmaThreads) {
    const int r = e / D, c = e % D;
    float x = 0.f;
    if (r < rows)
      x = load_any(p.q, p.q_dtype,
                   int64_t(b) * p.q_sb + int64_t(row_token(r)) * p.q_ss + int64_t(row_head(r)) * p.q_sh + c);
    sQ[L::at(r, c)] = pa::from_float<Tin>(x);
  }
  const Transform<POSATTN_PE_ROPE> xf{&p.pe, 0};
  if (rope) {
    __syncthreads();
    transform_tile<D, kMmaThreads>(sQ, xf, rows, true, q_pos, tid);
  }
  // (the loop's first barrier orders these writes before any ldmatrix of Q)

  // ---- per-thread rows: g and g + 8 of m-tile mt ----
  const float qk_scale = cache_scale(p, p.k_scale, hk) * p.pe.scale;
  const bool has_bias = p.pe.pe_kind == POSATTN_PE_ALIBI || p.pe.pe_kind == POSATTN_PE_FIRE ||
                        p.pe.pe_kind == POSATTN_PE_T5 || p.pe.pe_kind == POSATTN_PE_KERPLE_LOG ||
                        p.pe.pe_kind == POSATTN_PE_KERPLE_POWER;
  bool row_ok[2];
  int first[2], last[2];
  float rmax[2], rsum[2];  // running maximum; this thread's share of the running sum
  pa_pe::BiasAny bias[2] = {pa_pe::BiasAny(p.pe, hk * p.group, 0), pa_pe::BiasAny(p.pe, hk * p.group, 0)};
  PA_UNROLL
  for (int rr = 0; rr < 2; ++rr) {
    const int r = mt * 16 + g + 8 * rr;
    row_ok[rr] = active && r < rows;
    pa_pe::key_range(len - p.n + (row_ok[rr] ? row_token(r) : 0), p.causal, p.window_left, -1,
                     first[rr], last[rr]);
    if (row_ok[rr] && has_bias) bias[rr] = pa_pe::BiasAny(p.pe, row_head(r), q_pos(r));
    rmax[rr] = -INFINITY;
    rsum[rr] = 0.f;
  }
  float o[kDA][4];
  PA_UNROLL
  for (int a = 0; a < kDA; ++a) o[a][0] = o[a][1] = o[a][2] = o[a][3] = 0.f;

  // ldmatrix rows of this lane (matrix mi = lane / 8 of each x4), as in prefill_mma.
  const int mi = lane / 8;
  const LaneRow<D> q_row(mt * 16 + (mi % 2) * 8 + lane % 8, mi / 2);
  const LaneRow<D> k_row((mi / 2) * 8 + lane % 8, mi % 2);
  const LaneRow<D> v_row((mi % 2) * 8 + lane % 8, mi / 2);

  for (int n = 0; n < ntiles; ++n) {
    pa::cp_async_wait<kMmaStages - 2>();  // tile n has landed for this thread ...
    __syncthreads();                      // ... for all threads, and tile n-1's slot is free
    issue();
    const int kt = lo + n * kBc, kn = pa::min(kBc, hi - kt);
    const pa::sptr<unsigned char> slot = ring + (n % kMmaStages) * 2 * S::kRingSlot;
    pa::sptr<Tin> k_s = pa::ptr_cast<Tin>(slot), v_s = pa::ptr_cast<Tin>(slot + S::kRingSlot);
    if constexpr (kFp8) {
      k_s = pa::ptr_cast<Tin>(base + sm.work);
      v_s = k_s + kBc * D;
      widen_fp8_tile<IO, Tin, D, kBc>(slot, k_s, tid);
      widen_fp8_tile<IO, Tin, D, kBc>(slot + S::kRingSlot, v_s, tid);
      __syncthreads();
    }
    isolate_nonfinite_v<D, kBc, kMmaThreads>(k_s, v_s, tid);
    __syncthreads();
    if (p.rotate_k && rope) {
      transform_tile<D, kMmaThreads>(k_s, xf, kn, false, [&](int r) { return kv_pos(kt + r); }, tid);
      __syncthreads();
    }
    if (!active) continue;

    for (int ch = ks; ch < kChunks && 16 * ch < kn; ch += key_slices) {
      const int c0 = 16 * ch;
      // ---- S = Q K^T for keys kt + c0 .. + 15: two n8 atoms ----
      float s[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
      PA_UNROLL
      for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t qa[4], kb[4];
        pa::ldmatrix_x4(qa, sQ + q_row.at(kk));
        pa::ldmatrix_x4(kb, k_s + k_row.at(kk) + c0 * L::kPitch);
        const uint32_t b0[2] = {kb[0], kb[1]}, b1[2] = {kb[2], kb[3]};
        MmaOp<Tin>::run(s[0], qa, b0);
        MmaOp<Tin>::run(s[1], qa, b1);
      }
      // ---- logits and mask; element (a, e): row g + 8 (e / 2), key c0 + 8a + 2 t4 + (e & 1) ----
      PA_UNROLL
      for (int a = 0; a < 2; ++a)
        PA_UNROLL
        for (int e = 0; e < 4; ++e) {
          const int rr = e / 2, j = kt + c0 + 8 * a + 2 * t4 + (e & 1);
          float x = -INFINITY;
          if (row_ok[rr] && j < kt + kn && j >= first[rr] && j <= last[rr]) {
            x = pa_pe::apply_softcap(p.pe, s[a][e] * qk_scale);
            if (has_bias) x += bias[rr](kv_pos(j));
            x = pa_pe::logit_or_nan(x);
          }
          s[a][e] = x;
        }
      // ---- online softmax (a row's values live in lanes 4g .. 4g+3) ----
      PA_UNROLL
      for (int rr = 0; rr < 2; ++rr) {
        float mx = fmaxf(fmaxf(s[0][2 * rr], s[0][2 * rr + 1]), fmaxf(s[1][2 * rr], s[1][2 * rr + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(rmax[rr], mx);  // NaN logits reach the sum below
        // Nothing visible yet: m_new = -inf; subtracting 0 keeps exp at 0 for masked keys.
        const float bse = m_new == -INFINITY ? 0.f : m_new;
        const float corr = pa::fast_exp(rmax[rr] - bse);  // 0 while nothing was seen
        rmax[rr] = m_new;
        float sum = 0.f;
        PA_UNROLL
        for (int a = 0; a < 2; ++a)
          PA_UNROLL
          for (int e = 2 * rr; e < 2 * rr + 2; ++e) {
            s[a][e] = pa::fast_exp(s[a][e] - bse);
            sum += s[a][e];
          }
        rsum[rr] = fmaf(rsum[rr], corr, sum);
        PA_UNROLL
        for (int a = 0; a < kDA; ++a) {
          o[a][2 * rr] *= corr;
          o[a][2 * rr + 1] *= corr;
        }
      }
      // ---- O += P V: the S atoms are the A fragment of one k-step. P = P_hi + P_lo, both in
      // the mma type (P - P_hi is exact in fp32): two mma per V fragment keep P to ~16 bits,
      // which the memory-bound kernel gets for free, so decode stays as accurate as fp32 P ----
      uint32_t ph[4], pl[4];
      split_pair<Tin>(s[0][0], s[0][1], ph[0], pl[0]);
      split_pair<Tin>(s[0][2], s[0][3], ph[1], pl[1]);
      split_pair<Tin>(s[1][0], s[1][1], ph[2], pl[2]);
      split_pair<Tin>(s[1][2], s[1][3], ph[3], pl[3]);
      PA_UNROLL
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t vb[4];
        pa::ldmatrix_x4_trans(vb, v_s + v_row.at(dp) + c0 * L::kPitch);
        const uint32_t b0[2] = {vb[0], vb[1]}, b1[2] = {vb[2], vb[3]};
        MmaOp<Tin>::run(o[2 * dp], pl, b0);
        MmaOp<Tin>::run(o[2 * dp + 1], pl, b1);
        MmaOp<Tin>::run(o[2 * dp], ph, b0);
        MmaOp<Tin>::run(o[2 * dp + 1], ph, b1);
      }
    }
  }
  pa::cp_async_wait<0>();  // no copy outlives the loop (the ring's tail groups are empty)

  // ---- merge the key slices of each m-tile (LSE rule), then the normalised partial output ----
  PA_UNROLL
  for (int rr = 0; rr < 2; ++rr) {
    rsum[rr] += __shfl_xor_sync(0xffffffffu, rsum[rr], 1);
    rsum[rr] += __shfl_xor_sync(0xffffffffu, rsum[rr], 2);
    if (t4 == 0) {
      stat_m[warp * 16 + g + 8 * rr] = rmax[rr];
      stat_l[warp * 16 + g + 8 * rr] = rsum[rr];
    }
  }
  __syncthreads();  // also: every warp is done with Q and the K/V tiles (sO overlays them)
  for (int r = tid; r < mtiles * 16; r += kMmaThreads) {
    const int w0 = (r / 16) * key_slices, i = r % 16;
    float m = -INFINITY;
    for (int s = 0; s < key_slices; ++s) m = fmaxf(m, stat_m[(w0 + s) * 16 + i]);
    const float bse = m == -INFINITY ? 0.f : m;
    float l = 0.f;
    for (int s = 0; s < key_slices; ++s) {
      const float f = pa::fast_exp(stat_m[(w0 + s) * 16 + i] - bse);  // 0 for a slice that saw nothing
      stat_f[(w0 + s) * 16 + i] = f;
      l = fmaf(stat_l[(w0 + s) * 16 + i], f, l);  // a NaN slice sum makes the row NaN
    }
    row_m[r] = m;
    row_l[r] = l;
  }
  __syncthreads();
  for (int s = 0; s < key_slices; ++s) {  // slice s adds its rescaled O (slice 0 stores)
    if (active && ks == s) {
      PA_UNROLL
      for (int rr = 0; rr < 2; ++rr) {
        const int r = mt * 16 + g + 8 * rr;
        const float f = stat_f[warp * 16 + g + 8 * rr];
        PA_UNROLL
        for (int a = 0; a < kDA; ++a)
          PA_UNROLL
          for (int e = 0; e < 2; ++e) {
            const pa::sptr<float> at = sO + r * D + 8 * a + 2 * t4 + e;
            const float x = o[a][2 * rr + e] * f;
            if (s == 0) *at = x;
            else *at += x;
          }
      }
    }
    __syncthreads();
  }
  const float v_sc = cache_scale(p, p.v_scale, hk);
  for (int e = tid; e < rows * D; e += kMmaThreads) {
    const int r = e / D, c = e % D;
    const int64_t row = ((int64_t(split) * p.batch + b) * p.n + row_token(r)) * p.hq + row_head(r);
    const float l = row_l[r];
    p.part_o[row * D + c] = l == 0.f ? 0.f : sO[e] * v_sc / l;  // l is 0 only when nothing is visible
    if (c == 0) p.part_lse[row] = l == 0.f ? -INFINITY : row_m[r] + logf(l);
  }
}

// ---- launchers ---------------------------------------------------------------------------------
template <class IO, class Tin>
pa::launch_status mma_launch_tin(const pa_decode_params &p, void *stream) {
  const dim3 grid(unsigned(p.num_splits), unsigned(p.hkv * p.row_chunks), unsigned(p.batch));
  switch (p.d) {
    case 64:
      return pa::launch("decode_mma", decode_mma<IO, Tin, 64>, grid, dim3(kMmaThreads),
                        MmaSmem<IO, Tin, 64>(p).total, stream, p);
    case 128:
      return pa::launch("decode_mma", decode_mma<IO, Tin, 128>, grid, dim3(kMmaThreads),
                        MmaSmem<IO, Tin, 128>(p).total, stream, p);
    case 256:
      return pa::launch("decode_mma", decode_mma<IO, Tin, 256>, grid, dim3(kMmaThreads),
                        MmaSmem<IO, Tin, 256>(p).total, stream, p);
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
