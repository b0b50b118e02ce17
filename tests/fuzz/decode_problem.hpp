// decode_problem.hpp -- a fuzzed paged-KV decode problem (posattn_decode_desc, the cache and what
// they point at), shared by fuzz_decode and fuzz_nan. See fuzz_common.hpp for how bytes become a
// Case.
#ifndef PA_FUZZ_DECODE_PROBLEM_HPP
#define PA_FUZZ_DECODE_PROBLEM_HPP

#include <algorithm>

#include "fuzz_common.hpp"

namespace pa_fuzz {
namespace dec {

struct Case {
  uint8_t batch = 0, kv_heads = 0, group = 0, hd = 0, n = 0, page_size = 0, cache_dt = 0,
          q_dt = 0, out_dt = 0;
  uint8_t flags = 0;  // bit0 causal, bit1 sinks, bit2 shared prefix, bit3 rotated cache, bit4 raw n
  uint8_t wl_sel = 0, cap_sel = 0, scale_sel = 0, split_sel = 0, pos_sel = 0, amp_sel = 0;
  uint8_t pe_kind = 0, bt_at = 0;
  uint8_t lens[4] = {0, 0, 0, 0};
  int32_t wl = 0, splits = 0, pos_base = 0, bt_val = 0;
  float softcap = 0, scale = 0, amp_raw = 0, sink_amp = 0;
  uint64_t seed = 0;
  uint8_t rope_scaling = 0;  // appended with rope_extra (older inputs end before): NONE, YARN, LONGROPE
  RopeExtra rope_extra;
};

template <class IO>
inline void fields(IO &io, Case &c) {
  io(c.batch); io(c.kv_heads); io(c.group); io(c.hd); io(c.n); io(c.page_size); io(c.cache_dt);
  io(c.q_dt); io(c.out_dt); io(c.flags); io(c.wl_sel); io(c.cap_sel); io(c.scale_sel);
  io(c.split_sel); io(c.pos_sel); io(c.amp_sel); io(c.pe_kind); io(c.bt_at);
  for (uint8_t &l : c.lens) io(l);
  io(c.wl); io(c.splits); io(c.pos_base); io(c.bt_val); io(c.softcap); io(c.scale);
  io(c.amp_raw); io(c.sink_amp); io(c.seed); io(c.rope_scaling);
  fields(io, c.rope_extra);
}

struct Problem {
  posattn_decode_desc desc{};
  posattn_kv_cache cache{};
  posattn_tensor tq{};
  posattn_dtype q_dt = POSATTN_DTYPE_F32, out_dt = POSATTN_DTYPE_F32;
  double amp = 1;
  bool moderate = true;      // EMU must agree with REF within the target's bound
  bool finite_range = true;  // amplitude not raw: no logit can reach the fp32 limit
  int64_t capacity = 0;  // max_pages_per_seq * page_size
  std::vector<int32_t> lens, block_table, qpos, kpos;
  std::vector<float> sinks, f1, f2, f3, f4;
  std::vector<double> ext;  // LONGROPE ext_factors
  pat_buf kpool{}, vpool{}, q{};
  Problem() = default;
  Problem(const Problem &) = delete;
  Problem &operator=(const Problem &) = delete;
  ~Problem() {
    pat_buf_free(&kpool);
    pat_buf_free(&vpool);
    pat_buf_free(&q);
  }
};

// Default PE parameters with random arrays (the forward target fuzzes the parameters themselves).
inline void set_pe(uint8_t raw_kind, Problem &P, pat_rng *r) {
  posattn_pe &pe = P.desc.pe;
  const int hq = P.desc.q_heads;
  const unsigned kind = raw_kind % 9u;  // 8: the raw byte, usually an unknown kind
  set_raw(pe.kind, kind == 8 ? raw_kind : int32_t(kind));
  if (kind == 8) return;  // nothing below may read pe.kind as an enum
  auto fill = [r](std::vector<float> &v, size_t n, double lo, double hi) {
    v.resize(n);
    for (float &x : v) x = float(pat_rng_uniform(r, lo, hi));
  };
  if (pe.kind == POSATTN_PE_FIRE) {
    fill(P.f1, 4, -1, 1); fill(P.f2, 4, -1, 1); fill(P.f3, size_t(hq) * 4, -1, 1);
    fill(P.f4, size_t(hq), -1, 1);
    pe.fire.mlp_width = 4;
    pe.fire.w1 = P.f1.data(); pe.fire.b1 = P.f2.data(); pe.fire.w2 = P.f3.data();
    pe.fire.b2 = P.f4.data();
  }
  if (pe.kind == POSATTN_PE_T5) {
    fill(P.f1, size_t(pe.t5.num_buckets) * hq, -1, 1);
    pe.t5.table = P.f1.data();
  }
  if (pe.kind == POSATTN_PE_KERPLE_LOG || pe.kind == POSATTN_PE_KERPLE_POWER) {
    fill(P.f1, size_t(hq), 0.01, 1);
    fill(P.f2, size_t(hq), 0.01, 2);
    pe.kerple.a = P.f1.data();
    pe.kerple.p = P.f2.data();
  }
}

// Builds P from c: batch <= 3, lengths <= 40, pages of 1..16 tokens in a shuffled pool, block
// tables with a spare entry (garbage), optionally one entry overwritten by a raw value.
inline void build(const Case &c, Problem &P, pat_rng &rng) {
  static const int32_t kHeadDims[8] = {16, 64, 8, 2, 32, 128, 6, 3};
  posattn_decode_desc &d = P.desc;
  posattn_decode_desc_init(&d);
  d.batch = pick(c.batch, 1, 3);
  const int hkv = pick(c.kv_heads, 1, 2);
  d.q_heads = hkv * pick(c.group, 1, 2);
  d.head_dim = kHeadDims[c.hd % 8];
  d.num_q_tokens = (c.flags & 16) ? int32_t(c.n) : pick(c.n, 1, 8);
  d.causal = c.flags & 1;
  d.window_left = c.wl_sel % 3 == 0 ? -1 : c.wl_sel % 3 == 1 ? (c.wl & 15) : c.wl;
  if (c.cap_sel % 3 == 1) d.softcap = 0.5f + std::fabs(std::fmod(c.softcap, 50.f));
  if (c.cap_sel % 3 == 2) d.softcap = c.softcap;
  if (c.scale_sel % 3 == 1) d.softmax_scale = 0.05f + std::fabs(std::fmod(c.scale, 1.f));
  if (c.scale_sel % 3 == 2) d.softmax_scale = c.scale;
  if (c.cap_sel % 3 == 2 || c.scale_sel % 3 == 2) P.moderate = false;
  if (!std::isfinite(d.softcap)) d.softcap = 0;
  d.num_splits = c.split_sel % 3 == 0 ? 0 : c.split_sel % 3 == 1 ? 1 + (c.splits & 7) : c.splits;
  const posattn_dtype cdt = dtype_of(c.cache_dt);
  P.q_dt = dtype_of(c.q_dt);
  P.out_dt = dtype_of(c.out_dt);
  P.amp = amplitude(c.amp_sel, c.amp_raw, cdt == POSATTN_DTYPE_F16 || P.q_dt == POSATTN_DTYPE_F16
                                              ? POSATTN_DTYPE_F16 : cdt, &P.finite_range);
  P.moderate = P.moderate && P.finite_range;
  const int ps = pick(c.page_size, 1, 16);
  int mpp = 1, pages = 2;
  for (int b = 0; b < d.batch; ++b) {
    P.lens.push_back(c.lens[b] % 41);
    const int np = (P.lens.back() + ps - 1) / ps;
    mpp = std::max(mpp, np + 1);
    pages += np;
  }
  std::vector<int32_t> ids(size_t(pages), 0);
  for (int i = 0; i < pages; ++i) ids[size_t(i)] = i;
  for (int i = pages - 1; i > 0; --i) std::swap(ids[size_t(i)], ids[size_t(pat_rng_int(&rng, 0, i))]);
  P.block_table.assign(size_t(d.batch) * mpp, -7);
  size_t next = 0;
  for (int b = 0; b < d.batch; ++b) {
    const int shared = (c.flags & 4) && b ? std::min(P.lens[0], P.lens[size_t(b)]) / ps : 0;
    for (int k = 0; k < (P.lens[size_t(b)] + ps - 1) / ps; ++k)
      P.block_table[size_t(b) * mpp + k] = k < shared ? P.block_table[size_t(k)] : ids[next++];
  }
  if (c.bt_at & 0x80) P.block_table[(c.bt_at & 0x7f) % P.block_table.size()] = c.bt_val;
  P.capacity = int64_t(mpp) * ps;
  // positions: 1 small with gaps (evictions), 2 below 2^30, 3 raw (may be invalid)
  const int mode = c.pos_sel % 4;
  if (mode) {
    uint32_t base = uint32_t(c.pos_base);
    if (mode == 1) base &= 63;
    if (mode == 2) base &= 0x3fffffffu;
    if (mode >= 2) P.moderate = false;
    P.kpos.assign(size_t(d.batch * P.capacity), -1);
    for (int b = 0; b < d.batch; ++b) {
      uint32_t p = base;
      for (int j = 0; j < P.lens[size_t(b)]; ++j, p += 1u + uint32_t(pat_rng_int(&rng, 0, 2)))
        P.kpos[size_t(b * P.capacity + j)] = int32_t(p);
      for (int t = 0; t < std::max(0, d.num_q_tokens); ++t) {
        const int j = P.lens[size_t(b)] - d.num_q_tokens + t;
        P.qpos.push_back(j >= 0 ? P.kpos[size_t(b * P.capacity + j)] : int32_t(base) + t);
      }
    }
    P.qpos.push_back(0);  // never empty
    d.q_positions = P.qpos.data();
    d.kv_positions = P.kpos.data();
  }
  d.cache_lens = P.lens.data();
  d.block_table = P.block_table.data();
  d.max_pages_per_seq = mpp;
  if (c.flags & 2) {
    double sa = std::fabs(double(c.sink_amp));
    if (!(sa <= 8)) P.moderate = false;  // NaN or large sinks: validation's business
    P.sinks.resize(size_t(d.q_heads));
    for (float &s : P.sinks)
      s = std::isfinite(sa) ? float(pat_rng_uniform(&rng, -sa, sa)) : c.sink_amp;
    d.sink_logits = P.sinks.data();
  }
  set_pe(c.pe_kind, P, &rng);
  if (c.pe_kind % 9 == 8) P.moderate = false;
  if (c.pe_kind % 9 == POSATTN_PE_ROPE) {  // the newer RoPE fields, YaRN and LongRoPE
    posattn_rope_params &ro = d.pe.rope;
    const unsigned sc = c.rope_scaling % 3u;
    if (sc == 1) {
      ro.scaling = POSATTN_ROPE_SCALING_YARN;
      ro.factor = 4;
    }
    if (sc == 2) {
      ro.scaling = POSATTN_ROPE_SCALING_LONGROPE;
      P.ext.resize(size_t(d.head_dim));
      for (double &x : P.ext) x = pat_rng_uniform(&rng, 1, 4);
      ro.ext_factors = P.ext.data();
    }
    apply_rope_extra(c.rope_extra, ro, d.head_dim, false);
    if (c.rope_extra.sel & 16) P.moderate = false;
  }

  const size_t pool = size_t(pages) * ps * hkv * d.head_dim;
  const size_t es = posattn_dtype_size(cdt);
  const size_t qn = size_t(d.batch) * std::max(1, d.num_q_tokens) * d.q_heads * d.head_dim;
  if (pat_buf_alloc(&P.kpool, pool * es) || pat_buf_alloc(&P.vpool, pool * es) ||
      pat_buf_alloc(&P.q, qn * posattn_dtype_size(P.q_dt)))
    PA_FUZZ_FAIL("out of memory");
  pat_fill_random(&rng, cdt, P.kpool.data, nullptr, int64_t(pool), P.amp);
  pat_fill_random(&rng, cdt, P.vpool.data, nullptr, int64_t(pool), P.amp);
  pat_fill_random(&rng, P.q_dt, P.q.data, nullptr, int64_t(qn), P.amp);
  posattn_kv_cache_init(&P.cache, P.kpool.data, P.vpool.data, cdt, pages, ps, hkv, d.head_dim);
  P.cache.k_rotated = (c.flags & 8) ? 1 : 0;
  posattn_tensor_init_contiguous(&P.tq, P.q.data, P.q_dt, std::max(1, d.num_q_tokens), d.q_heads,
                                 d.head_dim);
}

// One decode call with poisoned, guarded outputs: out [batch][n][q_heads][head_dim] and
// lse [batch][q_heads][n] as doubles.
struct Run {
  posattn_status status = POSATTN_STATUS_INTERNAL;
  bool guards_ok = true, untouched = true;
  int64_t nan_out = 0, nan_lse = 0;
  std::vector<double> out, lse;
  char message[512] = "";
};
inline Run decode(posattn_backend be, const Problem &P) {
  Run R;
  posattn_context *ctx = context(be);
  const posattn_decode_desc &d = P.desc;
  const int64_t rows = int64_t(d.batch) * std::max(1, d.num_q_tokens) * d.q_heads;
  pat_buf out{}, lse{}, w{};
  size_t ws = 0;
  R.status = posattn_decode_workspace_size(ctx, &d, &P.cache, P.q_dt, P.out_dt, &ws);
  if (R.status == POSATTN_STATUS_SUCCESS && ws > (size_t(1) << 30)) PA_FUZZ_FAIL("workspace %zu", ws);
  if (pat_buf_alloc(&out, size_t(rows) * d.head_dim * posattn_dtype_size(P.out_dt)) ||
      pat_buf_alloc(&lse, size_t(rows) * sizeof(float)) || pat_buf_alloc(&w, ws ? ws : 1))
    PA_FUZZ_FAIL("out of memory");
  pat_buf_poison_nan(&out, P.out_dt, rows * d.head_dim);
  pat_buf_poison_nan(&lse, POSATTN_DTYPE_F32, rows);
  posattn_tensor to;
  posattn_tensor_init_contiguous(&to, out.data, P.out_dt, std::max(1, d.num_q_tokens), d.q_heads,
                                 d.head_dim);
  if (R.status == POSATTN_STATUS_SUCCESS)
    R.status = posattn_decode(ctx, &d, &P.cache, &P.tq, &to, static_cast<float *>(lse.data),
                              ws ? w.data : nullptr, ws);
  std::snprintf(R.message, sizeof R.message, "%s", posattn_context_last_message(ctx));
  R.nan_out = pat_count_nan(out.data, P.out_dt, rows * d.head_dim);
  R.nan_lse = pat_count_nan(lse.data, POSATTN_DTYPE_F32, rows);
  R.untouched = R.nan_out == rows * d.head_dim && R.nan_lse == rows;
  R.guards_ok = pat_buf_guards_ok(&out) && pat_buf_guards_ok(&lse) && pat_buf_guards_ok(&w) &&
                pat_buf_guards_ok(&P.kpool) && pat_buf_guards_ok(&P.vpool) &&
                pat_buf_guards_ok(&P.q);
  R.out.resize(size_t(rows * d.head_dim));
  R.lse.resize(size_t(rows));
  for (int64_t i = 0; i < rows * d.head_dim; ++i) R.out[size_t(i)] = pat_load(out.data, P.out_dt, i);
  for (int64_t i = 0; i < rows; ++i) R.lse[size_t(i)] = static_cast<float *>(lse.data)[i];
  pat_buf_free(&out);
  pat_buf_free(&lse);
  pat_buf_free(&w);
  return R;
}

// Whether query t of sequence b sees at least one cached token (posattn.h's decode rule).
inline bool sees_any(const posattn_decode_desc &d, int b, int t) {
  const int64_t L = d.cache_lens[b];
  for (int64_t j = 0; j < L; ++j)
    if (visible(t, j, d.num_q_tokens, L, d.causal, d.window_left, -1, nullptr, nullptr, 0))
      return true;
  return false;
}

}  // namespace dec
}  // namespace pa_fuzz

#endif  // PA_FUZZ_DECODE_PROBLEM_HPP
