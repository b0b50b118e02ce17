// mma_split.cuh -- the block body of the tensor-core split kernels, written once against the
// device layer (EMU and nvcc) and shared by decode_mma (kernels/decode/decode_mma.cuh) and the
// plan's paged_split_mma (kernels/paged/paged_mma.cuh). A kernel maps its block to a Job (which
// query rows, which keys, where they live, where the partial goes) and calls mma_split_block.
//
// One block of kMmaThreads (8 warps) holds up to kMmaRows query rows of ONE kv head (the rows'
// q heads share it: GQA group x query tokens, in the order the Job defines), padded to m-tiles of
// 16 rows, so each cached K/V token of the block's key range is read from the pages ONCE per kv
// head whatever the group size and token count. Per KV tile of kMmaTile keys:
//   copy      16-byte cp.async of each token's K and V rows, gathered through the block table
//             (Job::token_offset), 2-stage ring (zero fill past the range's end)
//   fp8       the tile's codes widened to the q dtype in shared memory: exact (every E4M3/E5M2
//             value is a bf16 and an f16), the scales stay out (below)
//   NaN RULE  a non-finite V element becomes 0 and one K element of its key NaN
//             (isolate_nonfinite_v of the prefill kernel: the rows that see the key, and only
//             they, get a NaN logit), every tile
//   RoPE      un-rotated caches: K rotated in fp32 in shared memory at its position, kept as
//             hi + lo terms of the mma type (rotate_split; q the same way)
//   S = Q K^T mma.sync m16n8k16 per 16-key chunk, fp32 accumulators
//   logits    (s * k_scale * scale) -> softcap -> + bias (pa_pe::BiasAny) -> logit_or_nan,
//             masked keys (causal / window at the row's Job::q_index) exact -inf
//   softmax   online per row in fp32 (quad shuffles)
//   O += P V  P as the sum of two mma-type terms (hi + lo, ~16 bits; hd 256: P rounded once),
//             V fragments by ldmatrix.trans
// Warps: the MT = ceil(rows / 16) m-tiles are spread over the 8 warps; when MT < 8 several warps
// share an m-tile and take alternate 16-key chunks of each tile (KS "key slices", each with its
// own running max / sum / O), merged through shared memory at the end by the LSE rule of the
// combine. The block writes the normalised partial O (x v_scale) and its LSE of every row at
// Job::part_row, for the kernel's combine.
//
// Rounding (what REF agreement rests on; DESIGN.md section 5). q is read in its dtype (= the mma
// type). K/V of a bf16/f16 cache are the operands as stored (cache dtype = q dtype); an FP8
// code's value decode(c) is exact in the mma type, and the per-tensor / per-head scales are
// applied in fp32 to the accumulators: k_scale * scale on the raw logit (one fp32 product of the
// two), v_scale on the normalised output. RoPE: q, and K of an un-rotated cache, are rotated in
// fp32 from those exact values and each rotated element x is kept as hi = round(x) plus
// lo = round(x - hi) in the mma type (~16 significant bits); S = Qhi Khi + Qlo Khi + Qhi Klo
// (Qlo Klo, ~2^-16 relative, dropped). P enters P V the same way, P_hi + P_lo, at hd 64 and 128;
// hd 256 rounds P once to the mma type as the prefill kernel does (its 128 accumulators leave no
// registers for P_lo). So hd 64/128 are as accurate as the fp32 SIMT kernels rather than
// rounding rotated vectors and P once as the prefill kernel does; the extra mma are nearly free
// in a memory-bound kernel. Every sum and the softmax are fp32.
//
// Served: q bf16/f16, a cache of the same dtype or FP8, head_dim 64/128/256, cache strides of
// whole 16-byte units and 16-byte aligned pools (each kernel's host side decides).
#ifndef POSATTN_DECODE_MMA_SPLIT_CUH
#define POSATTN_DECODE_MMA_SPLIT_CUH

#include <type_traits>

#include "decode/mma_geometry.h"
#include "pe/bias.cuh"
#include "pe/mask.cuh"
#include "pe/rope.cuh"
#include "prefill/mma.cuh"

namespace pa_decode {

// FP8 codes of a ring slot widened to Tin in a swizzled work tile (exact conversions): eight codes
// (one 8-byte load, one 16-byte chunk of the tile) per step through Fp8::widen4 (cache_io.cuh),
// integer and packed 16-bit instructions only: few live registers next to hd 256's 128
// accumulators, and few instructions a code (the step that bounds an fp8 tile's issue rate).
template <class Fp8, class Tin, int D, int kBc>
PA_DEVICE void widen_fp8_tile(pa::sptr<const unsigned char> src, pa::sptr<Tin> dst, int tid) {
  using L = pa_kernels::mma::Smem<D>;
  constexpr int kChunks = D / 8, kRowStep = kMmaThreads / kChunks;  // 16-byte chunks of a row
  static_assert(kMmaThreads % kChunks == 0 && kBc % kRowStep == 0, "whole rows, whole steps");
  static_assert(!L::kSwizzle || kRowStep % 8 == 0, "the swizzle repeats every 8 rows");
  // A thread's column and its rows' swizzle are fixed (rows step by a multiple of 8): its chunk
  // addresses are constant offsets from the first.
  const int row0 = tid / kChunks, col = (tid % kChunks) * 8;
  const pa::sptr<const unsigned char> s = src + row0 * D + col;
  const pa::sptr<Tin> d = dst + L::at(row0, col);
  PA_UNROLL
  for (int r = 0; r < kBc; r += kRowStep) {
    const uint2 w = pa::load(pa::ptr_cast<const uint2>(s + r * D));
    const uint2 a = Fp8::template widen4<Tin>(w.x), b = Fp8::template widen4<Tin>(w.y);
    pa::store(pa::ptr_cast<uint4>(d + r * L::kPitch), make_uint4(a.x, a.y, b.x, b.y));
  }
}

// RoPE on rows [0, rows) of a tile: each pair rotated in fp32 from the stored mma-type values,
// the result kept as hi (in place) + lo (in `lo`, same layout), both of the mma type: ~16
// significant bits, so the rotated q and k lose no more than fp32-level accuracy in Q K^T. pos(r)
// is the position of row r. Features outside the rotary pairs keep lo as it was (zero).
template <int D, class Tin, class Pos>
PA_DEVICE void rotate_split(const pa_prefill_params &pe, pa::sptr<Tin> t, pa::sptr<Tin> lo, int rows,
                            Pos pos, int tid) {
  using L = pa_kernels::mma::Smem<D>;
  const int npairs = pe.rotary_dim / 2;
  for (int e = tid; e < rows * npairs; e += kMmaThreads) {
    const int r = e / npairs, i = e % npairs;
    int fa, fb;
    pa_pe::rope_pair_features(pe, i, fa, fb);
    const int ia = L::at(r, fa), ib = L::at(r, fb);
    const float2 v = pa_pe::rope_rotate(pa::to_float(Tin(t[ia])), pa::to_float(Tin(t[ib])),
                                        pa_pe::rope_cos_sin(pe, i, pos(r)));
    const Tin ha = pa::from_float<Tin>(v.x), hb = pa::from_float<Tin>(v.y);
    t[ia] = ha;
    t[ib] = hb;
    lo[ia] = pa::from_float<Tin>(v.x - pa::to_float(ha));
    lo[ib] = pa::from_float<Tin>(v.y - pa::to_float(hb));
  }
}

// (a, b) as two packed pairs of the mma type: hi = round(a, b), lo = round(a - hi_a, b - hi_b).
template <class Tin>
PA_DEVICE void split_pair(float a, float b, uint32_t &hi, uint32_t &lo) {
  hi = pa_kernels::mma::MmaOp<Tin>::pack(a, b);
  const float2 h = std::is_same<Tin, pa::bf16>::value ? pa::unpack_bf16x2(hi) : pa::unpack_f16x2(hi);
  lo = pa_kernels::mma::MmaOp<Tin>::pack(a - h.x, b - h.y);
}

// One block's work, built by the kernel. Data members (uniform in the block): rows (query rows of
// this block), lo, hi (the keys [lo, hi) it reads). Member functions (evaluated where used, so
// that values a kernel parameter holds stay there rather than in registers): pe(), causal(),
// window_left(), rotate_k() (un-rotated cache), qrows() (Q tile rows: >= rows, a multiple of 16),
// qk_scale() (k_scale * scale on raw logits), v_scale() (on the output), k_pages(), v_pages()
// (the pools, bytes), part_o(), part_lse(); and the row / key maps: q_elem(r, c) (row r's element
// c of q as float, r < rows), row_head(r), q_index(r) (the row's i' for the causal / window rule),
// q_pos(r), kv_pos(j), token_offset(j) (the element offset of key j's row of this kv head in the
// pools), part_row(r) (partial O at part_row(r) * D, LSE at part_row(r)).
template <class Fp8, class Tin, int D, int kEsz, class Job>
PA_DEVICE void mma_split_block(const Job &job) {
  using namespace pa_kernels::mma;
  using L = Smem<D>;
  constexpr int kBc = kMmaTile<D>, kChunks = kBc / 16;
  constexpr int kCpr = D * kEsz / 16;  // 16-byte copies per K (or V) row
  constexpr int kDA = D / 8;           // n8 atoms of the O tile
  constexpr bool kFp8 = kEsz == 1;
  constexpr bool kSplitP = D <= 128;  // P V with P = P_hi + P_lo (below)
  constexpr size_t kRingSlot = size_t(kBc) * D * kEsz;  // bytes of one K (or V) tile

  const int rows = job.rows;
  const int tid = int(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t4 = lane % 4;  // fragment row group and column pair (PTX ISA layout)
  const bool rope = job.pe().rotary_dim > 0, rope_k = rope && job.rotate_k();

  // Warp roles: m-tile mt, key slice ks of KS (KS warps per m-tile, a power of two, <= chunks).
  const int mtiles = (rows + 15) / 16;
  int key_slices = 1;
  while (2 * key_slices * mtiles <= kMmaWarps && 2 * key_slices <= kChunks) key_slices *= 2;
  const int mt = warp / key_slices, ks = warp % key_slices;
  const bool active = mt < mtiles;

  const MmaSmem sm(D, kEsz, job.qrows(), rope, job.rotate_k());
  const pa::sptr<unsigned char> base = pa::dynamic_shared<unsigned char>();
  const pa::sptr<Tin> sQ = pa::ptr_cast<Tin>(base + sm.q);
  const pa::sptr<Tin> sQlo = pa::ptr_cast<Tin>(base + sm.q_lo);  // RoPE only
  const pa::sptr<Tin> sKlo = pa::ptr_cast<Tin>(base + sm.k_lo);  // RoPE on an un-rotated cache only
  const pa::sptr<unsigned char> ring = base + sm.ring;
  const pa::sptr<float> sO = pa::ptr_cast<float>(base);  // after the loop only
  const pa::sptr<float> stat_m = pa::ptr_cast<float>(base + sm.stats);  // [warp][16]
  const pa::sptr<float> stat_l = stat_m + kMmaWarps * 16;               // [warp][16]
  const pa::sptr<float> stat_f = stat_l + kMmaWarps * 16;               // [warp][16]
  const pa::sptr<float> row_m = stat_f + kMmaWarps * 16;                // [kMmaRows] (rows used)
  const pa::sptr<float> row_l = row_m + kMmaRows;                       // [kMmaRows]

  const int lo = job.lo, hi = job.hi;

  // ---- copies: tile n (keys lo + n kBc ...) into ring slot n % kMmaStages, K then V ----
  const int ntiles = (hi - lo) / kBc + ((hi - lo) % kBc != 0);  // hi - lo + kBc - 1 may overflow
  const pa::gptr<const unsigned char> gk = job.k_pages(), gv = job.v_pages();
  int fetch = 0;
  auto issue = [&]() {
    if (fetch < ntiles) {
      const int kt = lo + fetch * kBc, kn = pa::min(kBc, hi - kt);
      const pa::sptr<unsigned char> dk = ring + (fetch % kMmaStages) * 2 * kRingSlot;
      const pa::sptr<unsigned char> dv = dk + kRingSlot;
      for (int e = tid; e < kBc * kCpr; e += kMmaThreads) {
        const int jj = e / kCpr, c = e % kCpr;
        const bool ok = jj < kn;
        int64_t off = 0;  // bytes from the pool start (the pool start itself for zero fill)
        if (ok) off = job.token_offset(kt + jj) * kEsz + c * 16;
        const int at = kFp8 ? jj * D + c * 16 : int(sizeof(Tin)) * L::at(jj, c * 8);
        pa::cp_async_16_zfill(dk + at, gk + off, ok);
        pa::cp_async_16_zfill(dv + at, gv + off, ok);
      }
    }
    ++fetch;
    pa::cp_async_commit();  // empty groups too: the wait count is the same every iteration
  };
  for (int s = 0; s < kMmaStages - 1; ++s) issue();

  // ---- Q: this block's rows in the mma type (padding rows 0); RoPE in fp32 into hi + lo ----
  for (int e = tid; e < job.qrows() * D; e += kMmaThreads) {
    const int r = e / D, c = e % D;
    const float x = r < rows ? job.q_elem(r, c) : 0.f;
    sQ[L::at(r, c)] = pa::from_float<Tin>(x);
    if (rope) sQlo[L::at(r, c)] = Tin{0};
  }
  if (rope_k)
    for (int e = tid; e < kBc * D; e += kMmaThreads) sKlo[e] = Tin{0};
  if (rope) {
    __syncthreads();
    rotate_split<D>(job.pe(), sQ, sQlo, rows, [&](int r) { return job.q_pos(r); }, tid);
  }
  // (the loop's first barrier orders these writes before any ldmatrix of Q)

  // ---- per-thread rows: g and g + 8 of m-tile mt ----
  const float qk_scale = job.qk_scale();
  const int pe_kind = job.pe().pe_kind;
  const bool has_bias = pe_kind == POSATTN_PE_ALIBI || pe_kind == POSATTN_PE_FIRE ||
                        pe_kind == POSATTN_PE_T5 || pe_kind == POSATTN_PE_KERPLE_LOG ||
                        pe_kind == POSATTN_PE_KERPLE_POWER;
  int first[2], last[2];  // visible keys of the thread's rows (none for padding rows)
  float rmax[2], rsum[2];  // running maximum; this thread's share of the running sum
  PA_UNROLL
  for (int rr = 0; rr < 2; ++rr) {
    const int r = mt * 16 + g + 8 * rr;
    pa_pe::key_range(job.q_index(r < rows ? r : 0), job.causal(), job.window_left(), -1, first[rr],
                     last[rr]);
    if (!active || r >= rows) {
      first[rr] = INT32_MAX;
      last[rr] = -1;
    }
    rmax[rr] = -INFINITY;
    rsum[rr] = 0.f;
  }
  float o[kDA][4];
  PA_UNROLL
  for (int a = 0; a < kDA; ++a) o[a][0] = o[a][1] = o[a][2] = o[a][3] = 0.f;

  // ldmatrix rows of this lane (matrix mi = lane / 8 of each x4), as in prefill_mma.
  const int mi = lane / 8;
  // Q (A: rows x features) and V (B via .trans: keys x features) take the same lane rows, Q's
  // 16 mt rows further (same swizzle phase): one set of offsets serves both.
  const LaneRow<D> k_row((mi / 2) * 8 + lane % 8, mi % 2);
  const LaneRow<D> v_row((mi % 2) * 8 + lane % 8, mi / 2);
  const int q_off = mt * 16 * L::kPitch;

  for (int n = 0; n < ntiles; ++n) {
    pa::cp_async_wait<kMmaStages - 2>();  // tile n has landed for this thread ...
    __syncthreads();                      // ... for all threads, and tile n-1's slot is free
    issue();
    const int kt = lo + n * kBc, kn = pa::min(kBc, hi - kt);
    const pa::sptr<unsigned char> slot = ring + (n % kMmaStages) * 2 * kRingSlot;
    pa::sptr<Tin> k_s = pa::ptr_cast<Tin>(slot), v_s = pa::ptr_cast<Tin>(slot + kRingSlot);
    if constexpr (kFp8) {
      k_s = pa::ptr_cast<Tin>(base + sm.work);
      v_s = k_s + kBc * D;
      widen_fp8_tile<Fp8, Tin, D, kBc>(slot, k_s, tid);
      widen_fp8_tile<Fp8, Tin, D, kBc>(slot + kRingSlot, v_s, tid);
      __syncthreads();
    }
    isolate_nonfinite_v<D, kBc, kMmaThreads>(k_s, v_s, tid);
    __syncthreads();
    if (rope_k) {
      rotate_split<D>(job.pe(), k_s, sKlo, kn, [&](int r) { return job.kv_pos(kt + r); }, tid);
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
        pa::ldmatrix_x4(qa, sQ + q_off + v_row.at(kk));
        pa::ldmatrix_x4(kb, k_s + k_row.at(kk) + c0 * L::kPitch);
        const uint32_t b0[2] = {kb[0], kb[1]}, b1[2] = {kb[2], kb[3]};
        if (rope) {  // rotated q = hi + lo: Q_lo K (and Q K_lo below); Q_lo K_lo is dropped
          uint32_t ql[4];
          pa::ldmatrix_x4(ql, sQlo + q_off + v_row.at(kk));
          MmaOp<Tin>::run(s[0], ql, b0);
          MmaOp<Tin>::run(s[1], ql, b1);
        }
        if (rope_k) {
          uint32_t kl[4];
          pa::ldmatrix_x4(kl, sKlo + k_row.at(kk) + c0 * L::kPitch);
          const uint32_t l0[2] = {kl[0], kl[1]}, l1[2] = {kl[2], kl[3]};
          MmaOp<Tin>::run(s[0], qa, l0);
          MmaOp<Tin>::run(s[1], qa, l1);
        }
        MmaOp<Tin>::run(s[0], qa, b0);
        MmaOp<Tin>::run(s[1], qa, b1);
      }
      // ---- logits and mask; element (a, e): row g + 8 (e / 2), key c0 + 8a + 2 t4 + (e & 1) ----
      // The bias policy is rebuilt per row and chunk (a few cached loads) rather than held in
      // registers across the loop: hd 256 has none to spare.
      PA_UNROLL
      for (int rr = 0; rr < 2; ++rr) {
        const int r = pa::min(mt * 16 + g + 8 * rr, rows - 1);  // padding rows: any valid row
        const pa_pe::BiasAny bias(job.pe(), job.row_head(r), has_bias ? job.q_pos(r) : 0);
        PA_UNROLL
        for (int a = 0; a < 2; ++a)
          PA_UNROLL
          for (int e = 2 * rr; e < 2 * rr + 2; ++e) {
            const int j = kt + c0 + 8 * a + 2 * t4 + (e & 1);
            float x = -INFINITY;
            if (j < kt + kn && j >= first[rr] && j <= last[rr]) {
              x = pa_pe::apply_softcap(job.pe(), s[a][e] * qk_scale);
              if (has_bias) x += bias(job.kv_pos(j));
              x = pa_pe::logit_or_nan(x);
            }
            s[a][e] = x;
          }
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
      // nearly free in a memory-bound kernel. hd 256 (no registers to spare next to its 128
      // accumulators) rounds P once, as the prefill kernel does ----
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
        if (kSplitP) {
          MmaOp<Tin>::run(o[2 * dp], pl, b0);
          MmaOp<Tin>::run(o[2 * dp + 1], pl, b1);
        }
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
  const float v_sc = job.v_scale();
  for (int e = tid; e < rows * D; e += kMmaThreads) {
    const int r = e / D, c = e % D;
    const int64_t row = job.part_row(r);
    const float l = row_l[r];
    job.part_o()[row * D + c] = l == 0.f ? 0.f : sO[e] * v_sc / l;  // l is 0 only when nothing is visible
    if (c == 0) job.part_lse()[row] = l == 0.f ? -INFINITY : row_m[r] + logf(l);
  }
}

}  // namespace pa_decode
#endif
