// tables.cpp -- builds the prefill kernels' workspace tables from a validated problem (tables.h).
#include "prefill/tables.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <vector>

namespace {

// Largest |position| any query or key of the call can have (default query positions
// i + Lk - Lq are negative for the first rows when Lq > Lk).
int64_t max_abs_position(const pa_problem *p) {
  int64_t m = p->max_q_pos > p->max_kv_pos ? p->max_q_pos : p->max_kv_pos;
  if (p->desc->q_positions == nullptr)
    for (int32_t b = 0; b < p->batch; ++b) {
      const int64_t neg = int64_t(pa_q_seqlen(p, b)) - pa_kv_seqlen(p, b);
      if (neg > m) m = neg;
    }
  return m < 0 ? 0 : m;
}

// FIRE's x grid: at most this many cells (16 KiB of workspace).
constexpr int32_t kFireCellsMax = 4096;
// FIRE's psi table: distances 0 .. at most this (256 KiB of workspace); longer ones use log1pf.
constexpr int32_t kFirePsiMax = 65535;

// The cell grid of FIRE's segment lookup (params.h fire_cell_*): cell of x = min(int(fl(x *
// scale)), G). Start k >= 1 lands in cell b_k = min(int(fl(start_k * scale)), G) -- the same fp32
// product the kernel forms, and rounding is monotone -- so every x of cell c lies at or beyond
// each start with b_k < c: cell_seg[c] = #{k >= 1 : b_k < c} never overshoots, and x's segment is
// at most (starts with b_k = c) further on: steps = the most starts sharing a cell. The smallest
// grid with one start per cell is taken (finer grids only when starts are close).
void fire_grid(const float *start, int32_t nseg, int32_t *cell_seg, pa_prefill_scalars *sc) {
  int32_t G = 1, steps = 0;
  float scale = 0.f;
  std::vector<int32_t> b(static_cast<size_t>(nseg));
  for (int32_t g = 256; nseg > 1 && g <= kFireCellsMax; g *= 4) {
    G = g;
    scale = float(double(g) / double(start[nseg - 1]));
    std::vector<int32_t> per_cell(size_t(g) + 1, 0);
    steps = 0;
    for (int32_t k = 1; k < nseg; ++k) {
      const float c = std::fmin(start[k] * scale, float(g));
      b[size_t(k)] = int32_t(c);
      steps = std::max(steps, ++per_cell[size_t(b[size_t(k)])]);
    }
    if (steps <= 1) break;
  }
  for (int32_t c = 0; c <= G; ++c) {
    int32_t n = 0;
    for (int32_t k = 1; k < nseg; ++k) n += b[size_t(k)] < c;
    cell_seg[c] = n;
  }
  sc->fire_cells = G;
  sc->fire_cell_scale = scale;
  sc->fire_steps = steps;
}

bool rotary(const pa_problem *p) {
  return p->desc->pe.kind == POSATTN_PE_ROPE || p->desc->pe.kind == POSATTN_PE_XPOS;
}

}  // namespace

extern "C" posattn_status pa_prefill_layout_make(const pa_problem *p, int stage_out,
                                                 int prerotate_k, pa_prefill_layout *L, char *msg,
                                                 size_t msg_size) {
  const posattn_attention_desc *D = p->desc;
  const posattn_pe &pe = D->pe;
  std::memset(L, 0, sizeof *L);
  L->stage_out = stage_out;
  size_t at = 0;
  auto take = [&](size_t bytes) {  // saturates at SIZE_MAX for sizes beyond size_t
    const size_t off = at;
    at = pa_size_add(at, pa_size_align256(bytes));
    return off;
  };
  // EMU stages out and lse here and copies them to the caller's tensors only once the kernel has
  // finished without an emulator fault: posattn.h promises that nothing is written to out or lse
  // on error, and a fault (bounds, race, barrier) is only known at the end. Hence EMU's workspace
  // is as large as the output (1.2 GB at 70k tokens x 64 heads x hd128 in f16); CUDA stages nothing.
  if (stage_out) {
    const size_t rows = pa_size_mul(size_t(p->total_q), size_t(p->hq));
    L->out = take(pa_size_mul(pa_size_mul(rows, size_t(p->d)), posattn_dtype_size(p->out_dtype)));
    L->lse = take(pa_size_mul(rows, sizeof(float)));
  }
  L->tables_at = at;
  at = 0;
  if (p->varlen) L->n_cu = int64_t(p->batch) + 1;
  if (D->q_positions) L->n_q_pos = p->total_q;
  if (D->kv_positions) L->n_kv_pos = p->total_kv;
  if (D->doc_ids) L->n_doc = p->total_q;
  L->cu_q = take(size_t(L->n_cu) * 4);
  L->cu_kv = take(size_t(L->n_cu) * 4);
  L->q_pos = take(size_t(L->n_q_pos) * 4);
  L->kv_pos = take(size_t(L->n_kv_pos) * 4);
  L->doc_ids = take(size_t(L->n_doc) * 4);
  if (rotary(p)) {
    L->n_half = p->rotary_dim / 2;
    if (pe.rope.angle_mode == POSATTN_ANGLE_EXACT) {
      // 2^shift >= sqrt(max|p| + 1) balances the two tables: ~2 sqrt(P) rows in all.
      const int64_t maxp = max_abs_position(p);
      int32_t shift = 1;
      while ((int64_t(1) << (2 * shift)) < maxp + 1) ++shift;
      L->exact_shift = shift;
      L->exact_hi_count = int32_t((maxp >> shift) + 1);
      L->n_exact_lo = (int64_t(1) << shift) * L->n_half * 2;
      L->n_exact_hi = int64_t(L->exact_hi_count) * L->n_half * 2;
    }
  }
  L->inv_freq = take(size_t(L->n_half) * 4);
  L->exact_lo = take(size_t(L->n_exact_lo) * 4);
  L->exact_hi = take(size_t(L->n_exact_hi) * 4);
  L->xpos = take(pe.kind == POSATTN_PE_XPOS ? size_t(L->n_half) * 4 : 0);
  L->n_heads_tab = p->hq;
  const size_t heads = size_t(p->hq) * 4;
  L->alibi = take(pe.kind == POSATTN_PE_ALIBI ? heads : 0);
  if (pe.kind == POSATTN_PE_FIRE) L->fire_max_seg = pe.fire.mlp_width + 1;
  L->fire_start = take(L->fire_max_seg ? size_t(L->fire_max_seg + 1) * 4 : 0);  // + the +inf stop
  L->fire_cell_seg = take(L->fire_max_seg ? size_t(kFireCellsMax + 1) * 4 : 0);
  if (pe.kind == POSATTN_PE_FIRE) {  // psi over the distances of the call, at most kFirePsiMax
    const int64_t reach = 2 * max_abs_position(p);
    L->fire_psi_max = int32_t(reach < kFirePsiMax ? reach : kFirePsiMax);
  }
  L->fire_psi = take(pe.kind == POSATTN_PE_FIRE ? (size_t(L->fire_psi_max) + 1) * 4 : 0);
  L->fire_slope = take(size_t(L->fire_max_seg) * heads);
  L->fire_icpt = take(size_t(L->fire_max_seg) * heads);
  if (pe.kind == POSATTN_PE_T5)
    L->t5_dir_buckets = pe.t5.bidirectional ? pe.t5.num_buckets / 2 : pe.t5.num_buckets;
  if (pe.kind == POSATTN_PE_T5) {
    // buckets are constant from max_distance on, and no two positions of the call are further
    // apart than twice the largest |position|
    const int64_t reach = 2 * max_abs_position(p);
    L->t5_nmax = int32_t(reach < pe.t5.max_distance ? reach : pe.t5.max_distance);
  }
  L->t5_bucket = take(pe.kind == POSATTN_PE_T5
                          ? pa_size_mul(size_t(L->t5_nmax) + 1, 2 * sizeof(int32_t)) : 0);
  L->t5_table = take(pe.kind == POSATTN_PE_T5 ? size_t(pe.t5.num_buckets) * heads : 0);
  const bool kerple = pe.kind == POSATTN_PE_KERPLE_LOG || pe.kind == POSATTN_PE_KERPLE_POWER;
  L->kerple_a = take(kerple ? heads : 0);
  L->kerple_p = take(kerple ? heads : 0);
  L->sinks = take(D->sink_logits ? heads : 0);
  L->tables_bytes = at;
  if (prerotate_k) {  // every key of every kv head, in the input dtype (saturating sizes)
    L->n_k_rot = pa_size_mul(pa_size_mul(size_t(p->total_kv), size_t(p->hkv)), size_t(p->d));
    L->k_rot = take(pa_size_mul(L->n_k_rot, posattn_dtype_size(p->in_dtype)));
  }
  L->total = pa_size_add(L->tables_at, at);
  return pa_workspace_too_big(L->total, msg, msg_size);
}

extern "C" posattn_status pa_prefill_tables_build(const pa_problem *p, const pa_prefill_layout *L,
                                                  void *tables, pa_prefill_scalars *sc, char *msg,
                                                  size_t msg_size) {
  const posattn_attention_desc *D = p->desc;
  const posattn_pe &pe = D->pe;
  unsigned char *t = static_cast<unsigned char *>(tables);
  auto f32 = [&](size_t off) { return reinterpret_cast<float *>(t + off); };
  auto i32 = [&](size_t off) { return reinterpret_cast<int32_t *>(t + off); };
  sc->rope_attn_factor = 1.f;
  sc->fire_nseg = 0;
  sc->fire_cells = 0;
  sc->fire_cell_scale = 0.f;
  sc->fire_steps = 0;
  sc->fire_bias_bound = 0.f;

  if (L->n_cu) {
    std::memcpy(i32(L->cu_q), D->cu_seqlens_q, size_t(L->n_cu) * 4);
    std::memcpy(i32(L->cu_kv), D->cu_seqlens_kv, size_t(L->n_cu) * 4);
  }
  if (L->n_q_pos) std::memcpy(i32(L->q_pos), D->q_positions, size_t(L->n_q_pos) * 4);
  if (L->n_kv_pos) std::memcpy(i32(L->kv_pos), D->kv_positions, size_t(L->n_kv_pos) * 4);
  if (L->n_doc) std::memcpy(i32(L->doc_ids), D->doc_ids, size_t(L->n_doc) * 4);
  if (D->sink_logits) std::memcpy(f32(L->sinks), D->sink_logits, size_t(p->hq) * 4);

  try {
    if (rotary(p)) {
      const int64_t half = L->n_half;
      std::vector<double> w(static_cast<size_t>(half));
      double af = 1.0;
      // DYNAMIC_NTK without dynamic_seq_len: the largest position id + 1, as REF does
      const int64_t max_pos = p->max_q_pos > p->max_kv_pos ? p->max_q_pos : p->max_kv_pos;
      const int32_t seq_len = max_pos + 1 > INT32_MAX ? INT32_MAX : int32_t(max_pos + 1);
      PA_TRY(posattn_pe_rope_inv_freq(&pe.rope, p->d, seq_len, w.data(), &af, msg, msg_size));
      sc->rope_attn_factor = float(af);
      for (int64_t i = 0; i < half; ++i) f32(L->inv_freq)[i] = float(w[size_t(i)]);
      if (L->n_exact_lo) {
        const int64_t B = int64_t(1) << L->exact_shift;
        float *lo = f32(L->exact_lo), *hi = f32(L->exact_hi);
        for (int64_t r = 0; r < B; ++r)
          for (int64_t i = 0; i < half; ++i) {
            const double a = double(r) * w[size_t(i)];
            lo[(r * half + i) * 2] = float(std::cos(a));
            lo[(r * half + i) * 2 + 1] = float(std::sin(a));
          }
        for (int64_t r = 0; r < L->exact_hi_count; ++r)
          for (int64_t i = 0; i < half; ++i) {
            // angle of hi * B * w, reduced mod 2 pi in fp64 before cos/sin
            const double a = std::fmod(double(r * B) * w[size_t(i)], 2.0 * M_PI);
            hi[(r * half + i) * 2] = float(std::cos(a));
            hi[(r * half + i) * 2 + 1] = float(std::sin(a));
          }
      }
      if (pe.kind == POSATTN_PE_XPOS)
        for (int64_t i = 0; i < half; ++i)
          f32(L->xpos)[i] = float(pa_xpos_log_decay(&pe.xpos, p->rotary_dim, int32_t(i)) / M_LN2);
    }

    switch (pe.kind) {
      case POSATTN_PE_ALIBI: {
        std::vector<double> s(static_cast<size_t>(p->hq));
        if (pe.alibi.slopes)
          for (int32_t h = 0; h < p->hq; ++h) s[size_t(h)] = pe.alibi.slopes[h];
        else
          PA_TRY(posattn_pe_alibi_slopes(p->hq, s.data()));
        for (int32_t h = 0; h < p->hq; ++h) f32(L->alibi)[h] = float(s[size_t(h)]);
        break;
      }
      case POSATTN_PE_FIRE: {
        pa_fire_segments segs;
        PA_TRY(pa_fire_segments_build(&pe.fire, p->hq, &segs, msg, msg_size));
        if (segs.nseg > L->fire_max_seg) {
          pa_fire_segments_free(&segs);
          return pa_fail(msg, msg_size, POSATTN_STATUS_INTERNAL,
                         "FIRE: %d segments exceed the %d reserved", segs.nseg, L->fire_max_seg);
        }
        sc->fire_nseg = segs.nseg;
        for (int32_t s = 0; s < segs.nseg; ++s) f32(L->fire_start)[s] = float(segs.start[s]);
        f32(L->fire_start)[segs.nseg] = INFINITY;
        fire_grid(f32(L->fire_start), segs.nseg, i32(L->fire_cell_seg), sc);
        const double c = std::fabs(pe.fire.c);
        for (int32_t d = 0; d <= L->fire_psi_max; ++d)
          f32(L->fire_psi)[d] = float(std::log1p(c * d));
        // |bias| <= max |icpt| + max |slope| x_max, x_max = psi(q_len + kv_len) / psi(L): the
        // largest x of a pair of positions in token order (the wgmma kernel takes its FIRE band
        // only below kFireBandBound)
        const double x_max =
            std::log1p(c * (double(p->q_len) + double(p->kv_len))) /
            (std::log1p(c * std::fmax(pe.fire.L, 0.0)) + pe.fire.eps);
        double bound = 0;
        for (int64_t i = 0; i < int64_t(p->hq) * segs.nseg; ++i) {
          f32(L->fire_slope)[i] = float(segs.slope[i]);
          f32(L->fire_icpt)[i] = float(segs.icpt[i]);
          bound = std::fmax(bound, std::fabs(segs.icpt[i]) + std::fabs(segs.slope[i]) * x_max);
        }
        sc->fire_bias_bound = bound < 1e38 ? float(bound) : INFINITY;
        pa_fire_segments_free(&segs);
        break;
      }
      case POSATTN_PE_T5: {
        // bucket of rel = -n (keys before the query) at [n], of rel = +n at [nmax + 1 + n]
        const posattn_t5_params &t5 = pe.t5;
        int32_t *bk = i32(L->t5_bucket);
        const int64_t nmax = L->t5_nmax;
        for (int64_t n = 0; n <= nmax; ++n) {
          bk[n] = posattn_pe_t5_bucket(-n, t5.bidirectional, t5.num_buckets, t5.max_distance);
          bk[nmax + 1 + n] = posattn_pe_t5_bucket(n, t5.bidirectional, t5.num_buckets, t5.max_distance);
        }
        for (int64_t i = 0; i < int64_t(t5.num_buckets) * p->hq; ++i) f32(L->t5_table)[i] = t5.table[i];
        break;
      }
      case POSATTN_PE_KERPLE_LOG:
      case POSATTN_PE_KERPLE_POWER:
        for (int32_t h = 0; h < p->hq; ++h) {
          f32(L->kerple_a)[h] = pe.kerple.a[h];
          f32(L->kerple_p)[h] = pe.kerple.p[h];
        }
        break;
      default: break;
    }
  } catch (const std::bad_alloc &) {
    return pa_fail(msg, msg_size, POSATTN_STATUS_ALLOC_FAILED, "prefill PE tables: out of memory");
  }
  return POSATTN_STATUS_SUCCESS;
}
