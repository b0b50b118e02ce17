// attn_simple.cu -- a small, straightforward attention forward kernel written for the device layer:
// the EMU backend's kernel until the prefill kernels land, and the proof that the path from
// posattn.h through the emulator computes what REF computes.
//
// fp32 arithmetic; f32/f16/bf16 inputs and outputs; dense and varlen; GQA/MQA; causal, sliding
// window and documents with anchors (the header's visibility rule); softcap; positional encodings
// NONE, RoPE (fp32 rotation from a host-computed fp32 inv_freq table, FAST angles: float(p)*w) and
// ALiBi (relative form, fp32 slopes).
//
// One thread per query row, 64 rows per block, grid (row tiles, q heads, batch). K and V go through
// dynamic shared memory 16 keys at a time, K rotated while it is staged. Online softmax per row.
#ifndef POSATTN_ATTN_SIMPLE_CU
#define POSATTN_ATTN_SIMPLE_CU

#include "device/device.cuh"

namespace pa_kernels {

constexpr int kSimpleRows = 64;     // query rows (threads) per block
constexpr int kSimpleKeys = 16;     // keys per shared-memory tile
constexpr int kSimpleMaxDim = 256;  // head dim limit (per-thread q and accumulator arrays)

enum SimplePe { kSimplePeNone = 0, kSimplePeRope = 1, kSimplePeAlibi = 2 };

template <class Tin, class Tout>
struct SimpleParams {
  pa::gptr<const Tin> q, k, v;
  pa::gptr<Tout> out;
  pa::gptr<float> lse;  // null: no lse
  int64_t q_sb, q_ss, q_sh, k_sb, k_ss, k_sh, v_sb, v_ss, v_sh, o_sb, o_ss, o_sh;
  int batch, hq, hkv, group, d, q_len, kv_len;
  int varlen;
  int64_t total_q;
  pa::gptr<const int32_t> cu_q, cu_kv;         // varlen only
  pa::gptr<const int32_t> q_pos, kv_pos;       // null: defaults
  pa::gptr<const int32_t> doc_ids;             // null: no documents
  int num_anchor;
  int causal, window_left, window_right;
  float scale, softcap;
  int pe;  // SimplePe
  int rotary_dim, rope_gptj;
  float rope_attn_factor;
  pa::gptr<const float> inv_freq;  // [rotary_dim/2]
  pa::gptr<const float> slopes;    // [hq]
};

// Feature c of a head vector after RoPE at position `pos` (c outside the rotary part unchanged).
// NeoX pairs (i, i + r/2), GPT-J pairs (2i, 2i+1); pe-spec §1.
template <class Tin, class Tout, class Load>
PA_DEVICE float rope_feature(const SimpleParams<Tin, Tout> &p, Load x, int c, int64_t pos) {
  const int r = p.rotary_dim;
  if (p.pe != kSimplePeRope || c >= r) return x(c);
  int pair, partner;
  bool first;
  if (p.rope_gptj) {
    pair = c / 2;
    first = (c % 2) == 0;
    partner = first ? c + 1 : c - 1;
  } else {
    pair = c < r / 2 ? c : c - r / 2;
    first = c < r / 2;
    partner = first ? c + r / 2 : c - r / 2;
  }
  const float angle = float(pos) * p.inv_freq[pair];
  const float cs = cosf(angle) * p.rope_attn_factor, sn = sinf(angle) * p.rope_attn_factor;
  // (a, b) -> (a cos - b sin, a sin + b cos)
  return first ? x(c) * cs - x(partner) * sn : x(c) * cs + x(partner) * sn;
}

template <class Tin, class Tout>
__global__ void __launch_bounds__(kSimpleRows) attn_simple(const SimpleParams<Tin, Tout> p) {
  const int b = int(blockIdx.z), h = int(blockIdx.y), hk = h / p.group;
  const int64_t q0 = p.varlen ? int64_t(p.cu_q[b]) : int64_t(b) * p.q_len;
  const int64_t k0 = p.varlen ? int64_t(p.cu_kv[b]) : int64_t(b) * p.kv_len;
  const int Lq = p.varlen ? p.cu_q[b + 1] - p.cu_q[b] : p.q_len;
  const int Lk = p.varlen ? p.cu_kv[b + 1] - p.cu_kv[b] : p.kv_len;
  if (int(blockIdx.x) * kSimpleRows >= Lq) return;  // the whole block: no barrier is skipped

  const int i = int(blockIdx.x) * kSimpleRows + int(threadIdx.x);
  const bool has_row = i < Lq;  // threads without a row still help staging K/V
  const int d = p.d;
  auto q_off = [&](int64_t tok) {
    return p.varlen ? (q0 + tok) * p.q_ss + h * p.q_sh : b * p.q_sb + tok * p.q_ss + h * p.q_sh;
  };
  auto kv_off = [&](int64_t tok, int64_t sb, int64_t ss, int64_t sh) {
    return p.varlen ? (k0 + tok) * ss + hk * sh : b * sb + tok * ss + hk * sh;
  };

  float q[kSimpleMaxDim], acc[kSimpleMaxDim];
  int64_t pq = 0;
  if (has_row) {
    pq = p.q_pos ? int64_t(p.q_pos[q0 + i]) : int64_t(i) + Lk - Lq;
    const pa::gptr<const Tin> qrow = p.q + q_off(i);
    auto xq = [&](int c) { return pa::to_float(Tin(qrow[c])); };
    for (int c = 0; c < d; ++c) q[c] = rope_feature(p, xq, c, pq);
  }
  for (int c = 0; c < d; ++c) acc[c] = 0.f;
  const int ishift = i + Lk - Lq;  // bottom-right aligned query index in key coordinates
  const int doc_i = (p.doc_ids && has_row) ? p.doc_ids[q0 + i] : 0;
  const float slope = p.pe == kSimplePeAlibi ? p.slopes[h] : 0.f;
  float m = -INFINITY, l = 0.f;

  pa::sptr<float> ks = pa::dynamic_shared<float>();
  pa::sptr<float> vs = ks + kSimpleKeys * d;
  for (int kt = 0; kt < Lk; kt += kSimpleKeys) {
    for (int e = int(threadIdx.x); e < kSimpleKeys * d; e += kSimpleRows) {
      const int jj = e / d, c = e % d, j = kt + jj;
      float kval = 0.f, vval = 0.f;
      if (j < Lk) {
        const pa::gptr<const Tin> krow = p.k + kv_off(j, p.k_sb, p.k_ss, p.k_sh);
        const int64_t pk = p.kv_pos ? int64_t(p.kv_pos[k0 + j]) : int64_t(j);
        auto xk = [&](int cc) { return pa::to_float(Tin(krow[cc])); };
        kval = rope_feature(p, xk, c, pk);
        vval = pa::to_float(Tin(p.v[kv_off(j, p.v_sb, p.v_ss, p.v_sh) + c]));
      }
      ks[e] = kval;
      vs[e] = vval;
    }
    __syncthreads();
    if (has_row) {
      const int jend = Lk - kt < kSimpleKeys ? Lk - kt : kSimpleKeys;
      for (int jj = 0; jj < jend; ++jj) {
        const int j = kt + jj;
        // visibility rule of posattn.h (token indices inside the sequence)
        if (p.causal && j > ishift) continue;
        if (p.window_left >= 0 && j < ishift - p.window_left) continue;
        if (p.window_right >= 0 && j > ishift + p.window_right) continue;
        if (p.doc_ids && j >= p.num_anchor && p.doc_ids[k0 + j] != doc_i) continue;
        float dot = 0.f;
        const pa::sptr<const float> krow = ks + jj * d;
        for (int c = 0; c < d; c += 2) {
          const float2 kk = pa::load(pa::ptr_cast<const float2>(krow + c));
          dot = fmaf(q[c], kk.x, dot);
          dot = fmaf(q[c + 1], kk.y, dot);
        }
        float s = dot * p.scale;
        if (p.softcap > 0.f) s = p.softcap * tanhf(s / p.softcap);
        if (p.pe == kSimplePeAlibi) {
          const int64_t pk = p.kv_pos ? int64_t(p.kv_pos[k0 + j]) : int64_t(j);
          const int64_t dist = pq > pk ? pq - pk : pk - pq;
          s -= slope * float(dist);
        }
        const float m_new = fmaxf(m, s);
        const float corr = expf(m - m_new), w = expf(s - m_new);
        l = l * corr + w;
        const pa::sptr<const float> vrow = vs + jj * d;
        for (int c = 0; c < d; c += 2) {
          const float2 vv = pa::load(pa::ptr_cast<const float2>(vrow + c));
          acc[c] = acc[c] * corr + w * vv.x;
          acc[c + 1] = acc[c + 1] * corr + w * vv.y;
        }
        m = m_new;
      }
    }
    __syncthreads();
  }

  if (!has_row) return;
  const pa::gptr<Tout> orow =
      p.out + (p.varlen ? (q0 + i) * p.o_ss + h * p.o_sh : b * p.o_sb + int64_t(i) * p.o_ss + h * p.o_sh);
  const float inv = l > 0.f ? 1.f / l : 0.f;  // a row that sees no key: output 0, lse -inf
  for (int c = 0; c < d; ++c) orow[c] = pa::from_float<Tout>(acc[c] * inv);
  if (p.lse) {
    const int64_t li = p.varlen ? int64_t(h) * p.total_q + q0 + i
                                : (int64_t(b) * p.hq + h) * p.q_len + i;
    p.lse[li] = l > 0.f ? m + logf(l) : -INFINITY;
  }
}

// Dynamic shared memory of one launch.
inline size_t attn_simple_smem_bytes(int d) { return size_t(2) * kSimpleKeys * d * sizeof(float); }

#if defined(__CUDACC__)
// Compile check of every instance under nvcc (the CUDA backend will launch them later).
template __global__ void attn_simple<float, float>(const SimpleParams<float, float>);
template __global__ void attn_simple<pa::bf16, pa::bf16>(const SimpleParams<pa::bf16, pa::bf16>);
template __global__ void attn_simple<pa::f16, pa::f16>(const SimpleParams<pa::f16, pa::f16>);
template __global__ void attn_simple<pa::bf16, float>(const SimpleParams<pa::bf16, float>);
#endif

}  // namespace pa_kernels
#endif
