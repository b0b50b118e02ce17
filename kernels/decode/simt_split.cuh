// simt_split.cuh -- the block body of the fp32 SIMT split kernels, written once against the device
// layer (EMU and nvcc) and shared by decode_split (kernels/decode/decode.cu) and the plan's
// paged_split (kernels/paged/paged.cu), as mma_split.cuh is by their tensor-core kernels. A kernel
// maps its block to a Job (which query rows, which keys, where they live, where the partial goes:
// decode.cu's DecodeJob, paged.cu's PagedJob) and calls simt_split_block.
//
// One block of kThreads holds up to kRows query rows of ONE kv head (simt_geometry.h), so every
// cached K/V token of the block's key range [Job::lo, Job::hi) is read ONCE from the pages for all
// of them. q is read (Job::q_elem) and rotated once in fp32. Per tile of kKeysPerTile keys:
//   gather    K and V rows through the block table (Job::token_offset) into shared memory as
//             fp32, times the kv head's dequantisation scales, zero padded
//   NaN RULE  the P V loop multiplies every staged value by its row's weight, 0 for masked keys,
//             and 0 * NaN = NaN would reach the rows that do not see a key. So a non-finite V
//             element is staged as 0 and the same element of that key's K as NaN: exactly the
//             rows that see the key get a NaN logit (posattn.h NaN RULE)
//   RoPE      un-rotated caches: K rotated in fp32 at its position (Job::kv_pos)
//   logits    (q . k) * scale -> softcap -> + bias (pa_pe::BiasAny) -> logit_or_nan, for every
//             (row, key) pair spread over the threads; masked keys (causal / window at the row's
//             Job::q_index) exact -inf
//   softmax   online per row in fp32; NaN logits reach the row sum
//   O += P V  each thread owns a fixed set of accumulator elements (row e / DMAX, feature e % DMAX)
// It writes the normalised partial output and the LSE of every row at Job::part_row.
#ifndef POSATTN_DECODE_SIMT_SPLIT_CUH
#define POSATTN_DECODE_SIMT_SPLIT_CUH

#include "decode/cache_io.cuh"
#include "decode/simt_geometry.h"
#include "pe/bias.cuh"
#include "pe/mask.cuh"
#include "pe/rope.cuh"

namespace pa_decode {

// The block's work, Job: members rows (query rows, <= kRows), lo, hi (the key range); methods
// pe(), causal(), window_left(), rotate_k(), d(), k_scale(), v_scale(), k_pages(), v_pages(),
// part_o(), part_lse(), row_head(r), q_index(r) (the row's index in the key sequence, for the
// mask), q_pos(r), kv_pos(j), q_elem(r, c), token_offset(j) (of key j's K/V row in the pools),
// part_row(r). IO: the cache element policy (cache_io.cuh).
template <class IO, int DMAX, class Job>
PA_DEVICE void simt_split_block(const Job &job) {
  constexpr int T = kKeysPerTile<DMAX>;
  constexpr int kAcc = kRows * DMAX / kThreads;  // accumulator elements per thread
  const pa_prefill_params &pe = job.pe();
  const int tid = int(threadIdx.x), rows = job.rows;
  const int d = job.d(), dr = row_floats(d), half = pe.rotary_dim / 2;
  const float k_sc = job.k_scale(), v_sc = job.v_scale();

  pa::sptr<float> qs = pa::dynamic_shared<float>();   // [kRows][dr] rotated queries
  pa::sptr<float> ks = qs + kRows * dr;                 // [T][dr]
  pa::sptr<float> vs = ks + T * dr;                     // [T][dr]
  pa::sptr<float> ss = vs + T * dr;                     // [kRows][T] scores, then weights
  pa::sptr<float> ms = ss + kRows * T;                  // [kRows] running max
  pa::sptr<float> ls = ms + kRows;                      // [kRows] running sum
  pa::sptr<float> cs = ls + kRows;                      // [kRows] rescale of this tile
  pa::sptr<int32_t> kpos = pa::ptr_cast<int32_t>(cs + kRows);  // [T]
  pa::sptr<int32_t> qpos = kpos + T;                            // [kRows]

  for (int r = tid; r < kRows; r += kThreads) {
    ms[r] = -INFINITY;
    ls[r] = 0.f;
    qpos[r] = r < rows ? job.q_pos(r) : 0;
  }
  for (int e = tid; e < kRows * dr; e += kThreads) {
    const int r = e / dr, c = e % dr;
    qs[e] = r < rows && c < d ? job.q_elem(r, c) : 0.f;
  }
  __syncthreads();
  if (half > 0) {  // RoPE on q, once per row, in fp32
    pa_cache::rope_rows<kThreads>(pe, qs, rows, dr, half, qpos, tid);
    __syncthreads();
  }

  float acc[kAcc];
  PA_UNROLL  // acc stays in registers only when every index is a constant
  for (int k = 0; k < kAcc; ++k) acc[k] = 0.f;

  for (int kn, kt = job.lo; kt < job.hi; kt += kn) {  // kt + kn <= hi: never past INT32_MAX
    kn = pa::min(T, job.hi - kt);
    // Gather K and V rows through the block table (fp32, zero padded).
    for (int e = tid; e < T * dr; e += kThreads) {
      const int jj = e / dr, c = e % dr;
      float kv = 0.f, vv = 0.f;
      if (jj < kn && c < d) {
        const int64_t off = job.token_offset(kt + jj) + c;
        kv = IO::load(job.k_pages(), off) * k_sc;
        vv = IO::load(job.v_pages(), off) * v_sc;
        if (!pa_pe::is_finite(vv)) {  // poisons the rows that see the key, no other
          kv = NAN;
          vv = 0.f;
        }
      }
      ks[e] = kv;
      vs[e] = vv;
    }
    for (int jj = tid; jj < T; jj += kThreads) kpos[jj] = jj < kn ? job.kv_pos(kt + jj) : 0;
    __syncthreads();
    if (job.rotate_k() && half > 0) {  // un-rotated cache: rotate K at its position, in fp32
      pa_cache::rope_rows<kThreads>(pe, ks, kn, dr, half, kpos, tid);
      __syncthreads();
    }

    // Logits of every (row, key) pair of the tile.
    for (int e = tid; e < kRows * T; e += kThreads) {
      const int r = e / T, jj = e % T;
      float s = -INFINITY;
      const bool vis = r < rows && jj < kn &&
                       pa_pe::in_window(job.q_index(r), kt + jj, job.causal(), job.window_left(), -1);
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
        s = pa_pe::apply_softcap(pe, dot * pe.scale);
        s = pa_pe::logit_or_nan(s + pa_pe::BiasAny(pe, job.row_head(r), qpos[r])(kpos[jj]));
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

  // Normalised partial output and LSE of the block's rows.
  const pa::gptr<float> part_o = job.part_o(), part_lse = job.part_lse();
  PA_UNROLL
  for (int k = 0; k < kAcc; ++k) {
    const int e = tid + k * kThreads, r = e / DMAX, c = e % DMAX;
    if (r >= rows || c >= d) continue;
    const int64_t row = job.part_row(r);
    const float l = ls[r];
    part_o[row * d + c] = l == 0.f ? 0.f : acc[k] / l;  // l is 0 only when nothing is visible
    if (c == 0) part_lse[row] = l == 0.f ? -INFINITY : ms[r] + logf(l);
  }
}

}  // namespace pa_decode
#endif
