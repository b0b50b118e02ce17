// simt.cu -- the portable prefill kernel: plain SIMT, fp32 arithmetic, every feature of the
// attention descriptor. It is the correctness baseline on a GPU, the fp32 path for precision
// studies, and what the EMU backend runs for configurations the tensor-core kernel does not take.
//
// Work split: one thread per query row, kRows rows per block, grid (row tiles, q heads, batch).
// The block walks the KV tiles its rows may see (causal/window bounds; documents: tiles outside
// the rows' documents are skipped except those holding anchor tokens), staging kKeys keys at a
// time in shared memory as fp32 with K already rotated (RoPE/xPos, once per key and tile). Each
// row keeps q (rotated once) and its output accumulator in registers, sized by the DMAX template
// argument (64, 128, 256), and runs an online softmax over tile-wise maxima.
// Positional encodings enter through the policies of kernels/pe/: transform (rope.cuh), the
// xPos per-pair weight (xpos.cuh, score side: cannot overflow for pk <= pq), bias (bias.cuh),
// mask (mask.cuh). Output in any dtype; LSE natural log; a row that sees no key gets 0 and -inf
// (with sinks, which enter only the epilogue: 0 and the sink logit).
// Non-finite values (posattn.h NaN RULE): masked keys are skipped, never multiplied by 0; a
// non-finite V element is staged as 0 with the same element of that key's K staged as NaN, so
// exactly the rows that see the key get a NaN logit, and NaN logits reach the row's sum (max_nan).
//
// Registers: DMAX = 256 keeps 512 floats per thread, which spills on a GPU; this kernel is the
// baseline, the tensor-core kernel is the fast path for the common head dims.
#ifndef POSATTN_PREFILL_SIMT_CU
#define POSATTN_PREFILL_SIMT_CU

#include "pe/bias.cuh"
#include "pe/mask.cuh"
#include "pe/rope.cuh"
#include "pe/xpos.cuh"
#include "prefill/params.h"

namespace pa_prefill {

constexpr int kSimtRows = 64;    // query rows (threads) per block
constexpr int kSimtKeys = 16;    // keys per shared-memory tile
constexpr int kSimtMaxDim = 256; // largest head dim of the SIMT kernel

// Shared-memory row length: d rounded up to 4 so rows are read as float4 (zero padding).
PA_HD int simt_row_floats(int d) { return (d + 3) & ~3; }

inline size_t simt_smem_bytes(int d) {
  return size_t(kSimtKeys) * (2 * size_t(simt_row_floats(d)) * sizeof(float) + 2 * sizeof(int32_t));
}

template <class Tin, class Tout, int DMAX>
__global__ void __launch_bounds__(kSimtRows) prefill_simt(const pa_prefill_params p) {
  const int b = int(blockIdx.z), h = int(blockIdx.y), hk = h / p.group;
  const pa_pe::Seq seq(p, b);
  const int i0 = int(blockIdx.x) * kSimtRows;
  if (i0 >= seq.Lq) return;  // the whole block leaves: no barrier is skipped
  const int i1 = pa::min(i0 + kSimtRows, seq.Lq);
  const int i = i0 + int(threadIdx.x);
  const bool has_row = i < seq.Lq;  // threads without a row still help staging
  const int d = p.d, dr = simt_row_floats(d), half = p.rotary_dim / 2;
  const bool xpos = p.pe_kind == POSATTN_PE_XPOS;
  const pa::gptr<const Tin> qg = pa::ptr_cast<const Tin>(p.q);
  const pa::gptr<const Tin> kg = pa::ptr_cast<const Tin>(p.k);
  const pa::gptr<const Tin> vg = pa::ptr_cast<const Tin>(p.v);

  float q[DMAX], acc[DMAX];
  for (int c = 0; c < DMAX; ++c) q[c] = acc[c] = 0.f;
  int32_t pq = 0, doc_i = 0;
  int first, last;  // keys this row may see by causal / window
  seq.row_keys(i, first, last);
  if (has_row) {
    pq = seq.q_pos(i);
    doc_i = seq.q_doc(i);
    const pa::gptr<const Tin> qrow = qg + seq.q_off(i, h, p.q_sb, p.q_ss, p.q_sh);
    for (int c = 0; c < d; ++c) q[c] = pa::to_float(Tin(qrow[c]));
    pa_pe::rope_rotate_row(p, q, pq);
  }
  const pa_pe::BiasAny bias(p, h, pq);
  float m = -INFINITY, l = 0.f;

  pa::sptr<float> ks = pa::dynamic_shared<float>();
  pa::sptr<float> vs = ks + kSimtKeys * dr;
  pa::sptr<int32_t> kpos = pa::ptr_cast<int32_t>(vs + kSimtKeys * dr);
  pa::sptr<int32_t> kdoc = kpos + kSimtKeys;

  int lo, hi;
  seq.kv_bounds(i0, i1, lo, hi);
  const int t_end = hi / kSimtKeys + (hi % kSimtKeys != 0);  // tile indices: kt never passes hi
  for (int t = lo / kSimtKeys; t < t_end; ++t) {
    const int kt = t * kSimtKeys;
    const int kn = pa::min(kSimtKeys, seq.Lk - kt);
    if (!seq.tile_has_docs(i0, i1, kt, kt + kn)) continue;  // uniform over the block

    // Stage K and V (fp32, zero padded), key positions and documents.
    for (int e = int(threadIdx.x); e < kSimtKeys * dr; e += kSimtRows) {
      const int jj = e / dr, c = e % dr, j = kt + jj;
      float kv = 0.f, vv = 0.f;
      if (jj < kn && c < d) {
        kv = pa::to_float(Tin(kg[seq.kv_off(j, hk, p.k_sb, p.k_ss, p.k_sh) + c]));
        vv = pa::to_float(Tin(vg[seq.kv_off(j, hk, p.v_sb, p.v_ss, p.v_sh) + c]));
        if (!pa_pe::is_finite(vv)) {  // poisons the rows that see key j, no other
          kv = NAN;
          vv = 0.f;
        }
      }
      ks[e] = kv;
      vs[e] = vv;
    }
    for (int jj = int(threadIdx.x); jj < kSimtKeys; jj += kSimtRows) {
      kpos[jj] = jj < kn ? seq.kv_pos(kt + jj) : 0;
      kdoc[jj] = jj < kn ? seq.kv_doc(kt + jj) : 0;
    }
    __syncthreads();
    // Rotate the staged keys pair by pair (each pair read and written by one thread), unless the
    // RoPE pre-pass (rope_k.cu) already did.
    if (half > 0 && !p.k_prerotated) {
      for (int e = int(threadIdx.x); e < kn * half; e += kSimtRows) {
        const int jj = e / half, pair = e % half;
        int a, bb;
        pa_pe::rope_pair_features(p, pair, a, bb);
        const pa::sptr<float> krow = ks + jj * dr;
        const float2 r = pa_pe::rope_rotate(krow[a], krow[bb], pa_pe::rope_cos_sin(p, pair, kpos[jj]));
        krow[a] = r.x;
        krow[bb] = r.y;
      }
      __syncthreads();
    }

    if (has_row) {
      float s[kSimtKeys];
      float tile_max = -INFINITY;
      for (int jj = 0; jj < kn; ++jj) {
        s[jj] = -INFINITY;
        const int j = kt + jj;
        if (j < first || j > last) continue;
        if (p.doc_ids && j >= p.num_anchor && kdoc[jj] != doc_i) continue;
        const pa::sptr<const float> krow = ks + jj * dr;
        float dot = 0.f;
        if (xpos) {
          for (int pair = 0; pair < half; ++pair) {
            int a, bb;
            pa_pe::rope_pair_features(p, pair, a, bb);
            const float w = pa_pe::xpos_pair_weight(p, pair, int64_t(pq) - kpos[jj]);
            dot = fmaf(w, fmaf(q[a], krow[a], q[bb] * krow[bb]), dot);
          }
          for (int c = p.rotary_dim; c < d; ++c) dot = fmaf(q[c], krow[c], dot);
        } else {
          for (int c = 0; c < dr; c += 4) {
            const float4 kk = pa::load(pa::ptr_cast<const float4>(krow + c));
            dot = fmaf(q[c], kk.x, dot);
            dot = fmaf(q[c + 1], kk.y, dot);
            dot = fmaf(q[c + 2], kk.z, dot);
            dot = fmaf(q[c + 3], kk.w, dot);
          }
        }
        float sc = pa_pe::apply_softcap(p, dot * p.scale);
        sc = pa_pe::logit_or_nan(sc + bias(kpos[jj]));
        s[jj] = sc;
        tile_max = pa_pe::max_nan(tile_max, sc);
      }
      if (tile_max != -INFINITY) {  // some key visible (NaN: a poisoned row, which stays NaN)
        const float m_new = pa_pe::max_nan(m, tile_max);
        const float corr = expf(m - m_new);  // 0 on the first visible tile (m = -inf)
        l *= corr;
        for (int c = 0; c < dr; ++c) acc[c] *= corr;
        for (int jj = 0; jj < kn; ++jj) {
          if (s[jj] == -INFINITY) continue;
          const float w = expf(s[jj] - m_new);
          l += w;
          const pa::sptr<const float> vrow = vs + jj * dr;
          for (int c = 0; c < dr; c += 4) {
            const float4 vv = pa::load(pa::ptr_cast<const float4>(vrow + c));
            acc[c] = fmaf(w, vv.x, acc[c]);
            acc[c + 1] = fmaf(w, vv.y, acc[c + 1]);
            acc[c + 2] = fmaf(w, vv.z, acc[c + 2]);
            acc[c + 3] = fmaf(w, vv.w, acc[c + 3]);
          }
        }
        m = m_new;
      }
    }
    __syncthreads();
  }

  if (!has_row) return;
  // Sink (posattn.h): one more term e^sink without a value, summed at M = max(m, sink) so that a
  // sink far above the row's logits cannot overflow. A row that saw no key (m = -inf, l = 0) gets
  // l = 1 and m = sink: out 0, lse = sink exactly. A poisoned row's NaN m or l stays NaN.
  float o_scale = 1.f;
  if (p.sinks) {
    const float sink = p.sinks[h];
    const float M = pa_pe::max_nan(m, sink);
    o_scale = expf(m - M);  // 0 when m = -inf
    l = fmaf(l, o_scale, expf(sink - M));
    m = M;
  }
  const pa::gptr<Tout> orow = pa::ptr_cast<Tout>(p.out) + seq.q_off(i, h, p.o_sb, p.o_ss, p.o_sh);
  const float inv = l == 0.f ? 0.f : o_scale / l;  // l is 0 only when no key is visible (no sink)
  for (int c = 0; c < d; ++c) orow[c] = pa::from_float<Tout>(acc[c] * inv);
  if (p.lse) p.lse[seq.lse_index(i, h)] = l == 0.f ? -INFINITY : m + logf(l);
}

template <class Tin, class Tout, int DMAX>
pa::launch_status simt_launch_dim(const pa_prefill_params &p, void *stream) {
  const unsigned tiles = unsigned(p.q_len / kSimtRows + (p.q_len % kSimtRows != 0));
  return pa::launch("prefill_simt", prefill_simt<Tin, Tout, DMAX>,
                    dim3(tiles, unsigned(p.hq), unsigned(p.batch)), dim3(kSimtRows),
                    simt_smem_bytes(p.d), stream, p);
}
template <class Tin, class Tout>
pa::launch_status simt_launch_out(const pa_prefill_params &p, void *stream) {
  if (p.d <= 64) return simt_launch_dim<Tin, Tout, 64>(p, stream);
  if (p.d <= 128) return simt_launch_dim<Tin, Tout, 128>(p, stream);
  return simt_launch_dim<Tin, Tout, kSimtMaxDim>(p, stream);
}
template <class Tin>
pa::launch_status simt_launch_in(const pa_prefill_params &p, void *stream) {
  switch (p.out_dtype) {
    case POSATTN_DTYPE_F16: return simt_launch_out<Tin, pa::f16>(p, stream);
    case POSATTN_DTYPE_BF16: return simt_launch_out<Tin, pa::bf16>(p, stream);
    default: return simt_launch_out<Tin, float>(p, stream);
  }
}
// Launches the SIMT kernel instance for p's dtypes and head dim (p.d <= kSimtMaxDim).
inline pa::launch_status simt_launch(const pa_prefill_params &p, void *stream) {
  switch (p.in_dtype) {
    case POSATTN_DTYPE_F16: return simt_launch_in<pa::f16>(p, stream);
    case POSATTN_DTYPE_BF16: return simt_launch_in<pa::bf16>(p, stream);
    default: return simt_launch_in<float>(p, stream);
  }
}

}  // namespace pa_prefill
#endif
