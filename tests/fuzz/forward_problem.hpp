// forward_problem.hpp -- a fuzzed prefill problem (posattn_attention_desc and what it points at),
// shared by fuzz_forward and fuzz_nan. See fuzz_common.hpp for how bytes become a Case.
#ifndef PA_FUZZ_FORWARD_PROBLEM_HPP
#define PA_FUZZ_FORWARD_PROBLEM_HPP

#include <algorithm>
#include <climits>

#include "fuzz_common.hpp"

namespace pa_fuzz {
namespace fwd {

struct Case {
  uint8_t batch = 0, kv_heads = 0, group = 0, hd = 0, q_len = 0, kv_len = 0, in_dt = 0, out_dt = 0;
  uint8_t flags = 0;  // bit0 causal, bit1 varlen, bit2 documents, bit3 self-attention, bit4 raw
                      // sizes, bit5 q and k all equal to +amplitude (largest logits)
  uint8_t wl_sel = 0, wr_sel = 0, cap_sel = 0, scale_sel = 0, pos_sel = 0, amp_sel = 0;
  int32_t wl = 0, wr = 0;
  float softcap = 0, scale = 0;
  int32_t pos_base = 0, q_off = 0;
  uint8_t pos_step = 0, doc_len = 0, anchors = 0, pe_kind = 0;
  uint8_t pe_raw = 0;  // bit0 RoPE numbers, bit1 xPos, bit2 FIRE, bit3 T5, bit4 parameter amplitude
  uint8_t rope_scaling = 0, rope_layout = 0, rope_angle = 0, rope_rot = 0;
  double rope_base = 0, rope_factor = 0, rope_attn = 0;
  double xpos_sb = 0, xpos_gamma = 0;
  double fire_c = 0, fire_L = 0, fire_eps = 0;
  uint8_t t5_buckets = 0, t5_bidir = 0;
  uint16_t t5_maxdist = 0;
  float amp_raw = 0, param_amp = 0;
  uint64_t seed = 0;
  int32_t raw_q_len = 0, raw_heads = 0, raw_kv_len = 0;
  RopeExtra rope_extra;  // older inputs end before it (see RopeExtra)
  // Sink logits, after the fields above for the same reason (older inputs: 0 = no sinks):
  // sink_sel % 4: 0 none, 1 per-head logits in [-2, 3], 2 one large logit for every head
  // (|sink_raw| mod 1e4 with its sign), 3 the logits of 1 with sink_raw (any float) on head 0.
  uint8_t sink_sel = 0;
  float sink_raw = 0;
};

template <class IO>
inline void fields(IO &io, Case &c) {
  io(c.batch); io(c.kv_heads); io(c.group); io(c.hd); io(c.q_len); io(c.kv_len); io(c.in_dt);
  io(c.out_dt); io(c.flags); io(c.wl_sel); io(c.wr_sel); io(c.cap_sel); io(c.scale_sel);
  io(c.pos_sel); io(c.amp_sel); io(c.wl); io(c.wr); io(c.softcap); io(c.scale); io(c.pos_base);
  io(c.q_off); io(c.pos_step); io(c.doc_len); io(c.anchors); io(c.pe_kind); io(c.pe_raw);
  io(c.rope_scaling); io(c.rope_layout); io(c.rope_angle); io(c.rope_rot); io(c.rope_base);
  io(c.rope_factor); io(c.rope_attn); io(c.xpos_sb); io(c.xpos_gamma); io(c.fire_c); io(c.fire_L);
  io(c.fire_eps); io(c.t5_buckets); io(c.t5_bidir); io(c.t5_maxdist); io(c.amp_raw);
  io(c.param_amp); io(c.seed); io(c.raw_q_len); io(c.raw_heads); io(c.raw_kv_len);
  fields(io, c.rope_extra);
  io(c.sink_sel); io(c.sink_raw);
}

inline int32_t window(uint8_t sel, int32_t raw) {
  switch (sel % 3) {
    case 0: return -1;
    case 1: return raw & 15;
    default: return raw;
  }
}

// Everything a descriptor points at.
struct Problem {
  posattn_attention_desc desc{};
  posattn_dtype in_dt = POSATTN_DTYPE_F32, out_dt = POSATTN_DTYPE_F32;
  double amp = 1;
  bool moderate = true;      // EMU must pass the section 5 rule against REF
  bool finite_range = true;  // amplitudes not raw: no logit can reach the fp32 limit
  bool constant = false;     // q and k all +amp
  int kind = -1;             // desc.pe.kind when known, -1 for a raw (unknown) value
  std::vector<int32_t> cu_q, cu_k, qpos, kpos, docs;
  std::vector<float> f1, f2, f3, f4;  // PE parameter arrays
  std::vector<double> d1, d2;         // fp64 RoPE tables (ext_factors, inv_freq)
  std::vector<float> sinks;           // [q_heads] sink logits (desc.sink_logits when not empty)
};

template <typename T>
inline void fill(pat_rng *r, std::vector<T> &v, size_t n, double lo, double hi) {
  v.resize(n);
  for (T &x : v) x = T(pat_rng_uniform(r, lo, hi));
}

inline void set_pe(const Case &c, Problem &P, pat_rng *r) {
  posattn_pe &pe = P.desc.pe;
  const int hq = P.desc.q_heads, hd = P.desc.head_dim;
  const unsigned kind = c.pe_kind % 9u;  // 8: the raw byte, usually an unknown kind
  set_raw(pe.kind, kind == 8 ? c.pe_kind : int32_t(kind));
  P.kind = kind == 8 ? -1 : int(kind);
  if (kind == 8) {
    P.moderate = false;
    return;  // nothing below may read pe.kind as an enum
  }
  double pa = 1;
  if (c.pe_raw & 16) {
    pa = std::fabs(double(c.param_amp));
    if (!std::isfinite(pa) || pa == 0) pa = 1;
    P.moderate = P.finite_range = false;
  }
  if (pe.kind == POSATTN_PE_ROPE || pe.kind == POSATTN_PE_XPOS) {
    posattn_rope_params &ro = pe.rope;
    ro.layout = posattn_rope_layout(c.rope_layout % 2);
    ro.angle_mode = posattn_angle_mode(c.rope_angle % 2);
    ro.rotary_dim = c.rope_rot % 3 == 0 ? 0 : c.rope_rot % 3 == 1 ? (hd / 2) & ~1 : c.rope_rot;
    const int pairs = std::max(1, hd / 2);
    fill(r, P.d1, size_t(pairs), 1.0, 4.0);  // LONGROPE ext_factors
    fill(r, P.d2, size_t(pairs), 1e-4, 1.0);  // INV_FREQ table
    ro.ext_factors = P.d1.data();
    ro.inv_freq = P.d2.data();
    if (c.pe_raw & 1) {
      set_raw(ro.scaling, c.rope_scaling);
      ro.base = c.rope_base;
      ro.factor = c.rope_factor;
      ro.attention_factor = c.rope_attn;
      P.moderate = false;
    } else {
      ro.scaling = posattn_rope_scaling(c.rope_scaling % 8);
      if (ro.scaling != POSATTN_ROPE_SCALING_NONE) ro.factor = 2;
    }
    apply_rope_extra(c.rope_extra, ro, hd, c.pe_raw & 1, pe.kind == POSATTN_PE_ROPE);
    if (c.rope_extra.sel & 16) P.moderate = false;
  }
  if (pe.kind == POSATTN_PE_XPOS && (c.pe_raw & 2)) {
    pe.xpos.scale_base = c.xpos_sb;
    pe.xpos.gamma = c.xpos_gamma;
    P.moderate = false;
  }
  if (pe.kind == POSATTN_PE_ALIBI && (c.pe_raw & 16)) {
    fill(r, P.f1, size_t(hq), 0, pa);
    pe.alibi.slopes = P.f1.data();
  }
  if (pe.kind == POSATTN_PE_FIRE) {
    const int w = 4;
    fill(r, P.f1, w, -pa, pa);
    fill(r, P.f2, w, -pa, pa);
    fill(r, P.f3, size_t(hq) * w, -pa, pa);
    fill(r, P.f4, size_t(hq), -pa, pa);
    pe.fire.mlp_width = w;
    pe.fire.w1 = P.f1.data(); pe.fire.b1 = P.f2.data(); pe.fire.w2 = P.f3.data();
    pe.fire.b2 = P.f4.data();
    if (c.pe_raw & 4) {
      pe.fire.c = c.fire_c;
      pe.fire.L = c.fire_L;
      pe.fire.eps = c.fire_eps;
      P.moderate = false;
    }
  }
  if (pe.kind == POSATTN_PE_T5) {
    if (c.pe_raw & 8) {
      pe.t5.num_buckets = c.t5_buckets;
      pe.t5.max_distance = c.t5_maxdist;
    }
    pe.t5.bidirectional = c.t5_bidir & 1;
    fill(r, P.f1, size_t(std::max(1, pe.t5.num_buckets)) * hq, -pa, pa);
    pe.t5.table = P.f1.data();
  }
  if (pe.kind == POSATTN_PE_KERPLE_LOG || pe.kind == POSATTN_PE_KERPLE_POWER) {
    fill(r, P.f1, size_t(hq), 0.01, pa);
    fill(r, P.f2, size_t(hq), 0.01, pe.kind == POSATTN_PE_KERPLE_POWER ? 2.0 : pa);
    pe.kerple.a = P.f1.data();
    pe.kerple.p = P.f2.data();
  }
}

// Positions of one sequence: kv token j at base + j*step, query i at base + q_off + (i + lk - lq)*step
// (mode 1 small, mode 2 anywhere below 2^30 and a raw query offset, mode 3 raw: may be invalid).
inline void positions(const Case &c, Problem &P, int lq, int lk, int64_t *max_pos) {
  const int mode = c.pos_sel % 4;
  const uint32_t step = 1u + c.pos_step % 3u;
  uint32_t base = uint32_t(c.pos_base), off = 0;
  if (mode == 1) base &= 63;
  if (mode == 2) base &= 0x3fffffffu;
  if (mode >= 2) off = uint32_t(c.q_off);
  for (int j = 0; j < lk; ++j) P.kpos.push_back(int32_t(base + uint32_t(j) * step));
  for (int i = 0; i < lq; ++i)
    P.qpos.push_back(int32_t(base + off + uint32_t(i + lk - lq) * step));
  for (int32_t p : P.kpos) *max_pos = std::max<int64_t>(*max_pos, std::llabs(p));
  for (int32_t p : P.qpos) *max_pos = std::max<int64_t>(*max_pos, std::llabs(p));
}

// The descriptor of case c into P (sizes small: batch <= 2, heads <= 4, lengths <= 12; raw
// windows, scales, positions and PE parameters when c asks), and whether it lies in the moderate
// part of the input space (P.moderate: where EMU must pass the section 5 rule against REF).
inline void build(const Case &c, Problem &P, pat_rng &rng) {
  static const int32_t kHeadDims[8] = {64, 16, 64, 8, 2, 32, 6, 3};
  posattn_attention_desc &d = P.desc;
  posattn_attention_desc_init(&d);
  d.batch = pick(c.batch, 1, 2);
  d.kv_heads = pick(c.kv_heads, 1, 2);
  d.q_heads = d.kv_heads * pick(c.group, 1, 2);
  d.head_dim = kHeadDims[c.hd % 8];
  const bool self = c.flags & 8, varlen = c.flags & 2;
  d.q_len = pick(c.q_len, 1, 12);
  d.kv_len = self ? d.q_len : pick(c.kv_len, 1, 12);
  d.causal = c.flags & 1;
  d.window_left = window(c.wl_sel, c.wl);
  d.window_right = window(c.wr_sel, c.wr);
  P.in_dt = dtype_of(c.in_dt);
  P.out_dt = dtype_of(c.out_dt);
  if (c.cap_sel % 3 == 1) d.softcap = 0.5f + std::fabs(std::fmod(c.softcap, 50.f));
  if (c.cap_sel % 3 == 2) d.softcap = c.softcap;
  if (c.scale_sel % 3 == 1) d.softmax_scale = 0.05f + std::fabs(std::fmod(c.scale, 1.f));
  if (c.scale_sel % 3 == 2) d.softmax_scale = c.scale;
  if (c.cap_sel % 3 == 2 || c.scale_sel % 3 == 2) P.moderate = false;
  if (!std::isfinite(d.softcap)) d.softcap = 0;  // NaN would make the moderate choices pointless
  P.amp = amplitude(c.amp_sel, c.amp_raw, P.in_dt, &P.finite_range);
  // The section 5 rule is the project's accuracy rule at amplitude 1 (what the test suites use);
  // at 4 the fp32 kernel's logit errors grow with the logits and the rule's ulp term does not
  // (the fuzzer found 3.8 ulp vs a 3 ulp bound, nmse 2e-14): checked for poisoning only.
  P.moderate = P.moderate && P.finite_range && P.amp <= 1;
  P.constant = c.flags & 32;
  // Constant q and k make rounding errors coherent: the tensor-core kernel rounds RoPE-rotated
  // q/k to the input dtype, which the section 5 baseline does not model (pa_test_check.hpp), and
  // with constant rows those roundings add up instead of averaging out (found by the fuzzer).
  if (P.constant) P.moderate = false;

  // sequences: dense, or varlen with lengths 0..q_len (self-attention: equal lengths)
  std::vector<int> lq(size_t(d.batch), d.q_len), lk(size_t(d.batch), d.kv_len);
  if (varlen) {
    P.cu_q.push_back(0);
    P.cu_k.push_back(0);
    for (int b = 0; b < d.batch; ++b) {
      lq[size_t(b)] = pat_rng_int(&rng, 0, d.q_len);
      lk[size_t(b)] = self ? lq[size_t(b)] : pat_rng_int(&rng, 0, d.kv_len);
      P.cu_q.push_back(P.cu_q.back() + lq[size_t(b)]);
      P.cu_k.push_back(P.cu_k.back() + lk[size_t(b)]);
    }
    d.q_len = std::max(1, *std::max_element(lq.begin(), lq.end()));
    d.kv_len = std::max(1, *std::max_element(lk.begin(), lk.end()));
    d.cu_seqlens_q = P.cu_q.data();
    d.cu_seqlens_kv = P.cu_k.data();
  }
  int64_t max_pos = 0;
  const int pos_mode = c.pos_sel % 4;
  if (pos_mode) {
    for (int b = 0; b < d.batch; ++b) positions(c, P, lq[size_t(b)], lk[size_t(b)], &max_pos);
    d.q_positions = P.qpos.data();
    d.kv_positions = P.kpos.data();
  }
  if (c.flags & 4) {  // documents of 1..6 tokens, anchors 0..3
    const int per = 1 + c.doc_len % 6;
    for (int b = 0; b < d.batch; ++b)
      for (int i = 0; i < lq[size_t(b)]; ++i) P.docs.push_back(i / per);
    P.docs.push_back(0);  // never empty
    d.doc_ids = P.docs.data();
    d.num_anchor_tokens = c.anchors % 4;
  }
  set_pe(c, P, &rng);
  // Where the kernels are documented to be accurate: RoPE/xPos angles at small positions, EXACT
  // angles up to 1e6; the bias methods use differences (and max(L, pq)), fine anywhere.
  const bool rotary = P.kind == POSATTN_PE_ROPE || P.kind == POSATTN_PE_XPOS;
  if (pos_mode == 3) P.moderate = false;
  if (pos_mode == 2 && rotary &&
      !(P.kind == POSATTN_PE_ROPE && d.pe.rope.angle_mode == POSATTN_ANGLE_EXACT &&
        max_pos <= 1000064))
    P.moderate = false;
  if (P.kind == POSATTN_PE_XPOS && P.qpos.size() && std::llabs(int64_t(c.q_off)) > 64)
    P.moderate = false;
  // The bias methods use differences, but the kernels add the bias to an fp32 logit: once the
  // bias reaches ~2^16 (KERPLE power at distances of 1e7, ALiBi at 1e9, ...) fp32 no longer
  // resolves the logit differences the softmax needs, and REF (fp64) legitimately differs
  // (found by the fuzzer: KERPLE_POWER, bias -5.7e13). Checked for poisoning only there.
  if (pos_mode == 2 && !rotary && P.kind > 0 && P.moderate) {
    int64_t far = 0;
    for (int32_t a : P.qpos)
      for (int32_t b : P.kpos) far = std::max<int64_t>(far, std::llabs(int64_t(a) - b));
    for (int h = 0; h < d.q_heads && P.moderate; ++h)
      for (int dir = 0; dir < 2; ++dir) {
        double bias = 0;
        if (posattn_pe_bias(&d.pe, d.q_heads, h, dir ? far : 0, dir ? 0 : far, &bias) ==
                POSATTN_STATUS_SUCCESS &&
            !(std::fabs(bias) <= 65536.0))
          P.moderate = false;
      }
  }

  // sinks last, so that inputs without them draw the same random numbers as before
  const int sink_mode = c.sink_sel % 4;
  if (sink_mode == 1 || sink_mode == 3) fill(&rng, P.sinks, size_t(d.q_heads), -2, 3);
  if (sink_mode == 2) {
    const float big = std::isfinite(c.sink_raw) ? std::fmod(c.sink_raw, 1e4f) : 50.f;
    P.sinks.assign(size_t(d.q_heads), big);
  }
  if (sink_mode == 3) P.sinks[0] = c.sink_raw;  // non-finite: BAD_PE_PARAMS on every backend
  if (sink_mode >= 2) P.moderate = false;
  if (sink_mode) d.sink_logits = P.sinks.data();
}

// Random inputs for P in guarded buffers (q and k constant +amplitude when c asks).
inline void make_inputs(const Case &c, const Problem &P, pat_rng &rng, pat_inputs &in) {
  if (pat_inputs_random(&in, &P.desc, P.in_dt, &rng, P.amp) != 0) PA_FUZZ_FAIL("out of memory");
  if (!(c.flags & 32)) return;
  const int64_t qn = pat_q_rows(&P.desc) * P.desc.q_heads * P.desc.head_dim;
  const int64_t kn = pat_kv_rows(&P.desc) * P.desc.kv_heads * P.desc.head_dim;
  for (int64_t i = 0; i < qn; ++i) pat_store(in.q.data, P.in_dt, i, P.amp);
  for (int64_t i = 0; i < kn; ++i) pat_store(in.k.data, P.in_dt, i, P.amp);
}

// Calls fn(b, q0, k0, i, lq, lk, any) for every query row of P's sequences: q0/k0 the first rows of
// sequence b, i the row inside it, any whether the header's rule lets it see at least one key.
template <class Fn>
void for_each_row(const posattn_attention_desc &d, Fn fn) {
  const bool varlen = d.cu_seqlens_q != nullptr;
  for (int b = 0; b < d.batch; ++b) {
    const int64_t q0 = varlen ? d.cu_seqlens_q[b] : int64_t(b) * d.q_len;
    const int64_t k0 = varlen ? d.cu_seqlens_kv[b] : int64_t(b) * d.kv_len;
    const int64_t lq = varlen ? d.cu_seqlens_q[b + 1] - q0 : d.q_len;
    const int64_t lk = varlen ? d.cu_seqlens_kv[b + 1] - k0 : d.kv_len;
    const int32_t *dq = d.doc_ids ? d.doc_ids + q0 : nullptr;
    const int32_t *dk = d.doc_ids ? d.doc_ids + k0 : nullptr;
    for (int64_t i = 0; i < lq; ++i) {
      bool any = false;
      for (int64_t j = 0; j < lk && !any; ++j)
        any = visible(i, j, lq, lk, d.causal, d.window_left, d.window_right, dq, dk,
                      d.num_anchor_tokens);
      fn(b, q0, k0, i, lq, lk, any);
    }
  }
}

// Index of (row of the sequence starting at q0, i, head h) in posattn's lse layout.
inline int64_t lse_index(const posattn_attention_desc &d, int b, int64_t q0, int64_t i, int h) {
  return d.cu_seqlens_q ? h * pat_q_rows(&d) + q0 + i : (int64_t(b) * d.q_heads + h) * d.q_len + i;
}

// One forward call on a context of backend b with poisoned, guarded outputs.
struct Run {
  pat_run r{};
  std::vector<double> out, lse;
};
inline Run forward(posattn_backend b, const posattn_attention_desc &d, const pat_inputs &in,
                   posattn_dtype out_dt) {
  Run R;
  const int64_t nl = pat_q_rows(&d) * d.q_heads;
  R.out.assign(size_t(nl * d.head_dim), 0);
  R.lse.assign(size_t(nl), 0);
  R.r = pat_forward_checked(context(b), &d, &in.tq, &in.tk, &in.tv, out_dt, R.out.data(),
                            R.lse.data());
  return R;
}

}  // namespace fwd
}  // namespace pa_fuzz

#endif  // PA_FUZZ_FORWARD_PROBLEM_HPP
