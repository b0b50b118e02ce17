// The RoPE key pre-pass (kernels/prefill/rope_k.cu) on the emulator, and the tensor-core kernel
// that reads its output.
//   RopeKPrepass.*   the pre-pass alone, through the same host path as the EMU backend (validate,
//                    layout, tables, params): every rotated feature must be one of the two input-
//                    dtype neighbours of REF's fp64 rotation (posattn_pe_rope_apply, exact angles)
//                    -- i.e. rotated in fp32 and rounded ONCE -- up to the FAST angle error; every
//                    other feature is copied bit for bit; a NaN key stays in its own row.
//   BiasTables.*     the T5 and FIRE lookups without searches (bias.cuh) against REF's bucket and
//                    a linear scan of FIRE's segments.
//   RopeKForward.*   posattn_forward on EMU (tensor-core kernel after the pre-pass) against REF
//                    with the DESIGN.md section 5 rule: odd lengths, GQA, varlen, the rotary_offset
//                    and active_pairs fields, EXACT angles.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "pa_test_check.hpp"
#include "pa_test_shim.h"
#include "prefill/dispatch.h"

namespace {

constexpr posattn_dtype BF16 = POSATTN_DTYPE_BF16, F16 = POSATTN_DTYPE_F16;

struct Case {
  const char *name;
  posattn_dtype dt;
  int batch, hq, hkv, d, len;
  std::vector<int32_t> cu;  // varlen self-attention offsets when not empty
  int rotary_dim = 0, rotary_offset = 0, active_pairs = 0;
  posattn_rope_layout layout = POSATTN_ROPE_NEOX;
  posattn_angle_mode angles = POSATTN_ANGLE_FAST;
  bool positions = false;  // explicit random position ids in [0, 3000)
  posattn_rope_scaling scaling = POSATTN_ROPE_SCALING_NONE;
};

// The descriptor of c (self-attention, q_len = kv_len = len), position ids in *pos.
posattn_attention_desc make_desc(const Case &c, std::vector<int32_t> *pos, pat_rng *rng) {
  posattn_attention_desc desc;
  posattn_attention_desc_init(&desc);
  desc.batch = c.batch; desc.q_heads = c.hq; desc.kv_heads = c.hkv; desc.head_dim = c.d;
  desc.q_len = c.len; desc.kv_len = c.len;
  if (!c.cu.empty()) {
    desc.cu_seqlens_q = c.cu.data();
    desc.cu_seqlens_kv = c.cu.data();
  }
  if (c.positions) {
    for (int64_t i = 0; i < pat_kv_rows(&desc); ++i) pos->push_back(pat_rng_int(rng, 0, 2999));
    desc.q_positions = pos->data();
    desc.kv_positions = pos->data();
  }
  desc.pe.kind = POSATTN_PE_ROPE;
  desc.pe.rope.rotary_dim = c.rotary_dim;
  desc.pe.rope.rotary_offset = c.rotary_offset;
  desc.pe.rope.active_pairs = c.active_pairs;
  desc.pe.rope.layout = c.layout;
  desc.pe.rope.angle_mode = c.angles;
  desc.pe.rope.scaling = c.scaling;
  if (c.scaling == POSATTN_ROPE_SCALING_YARN) {
    desc.pe.rope.factor = 4;
    desc.pe.rope.original_max_position = 1024;
  }
  return desc;
}

// What the EMU backend builds before a launch (dispatch.cpp): the validated problem, the layout,
// the tables in a workspace and the kernel parameters.
struct Prepared {
  pa_problem p;
  pa_prefill_layout L;
  pa_prefill_scalars sc;
  std::vector<double> store;  // the workspace, 16-byte aligned (operator new)
  std::vector<unsigned char> out;
  posattn_tensor to;
  pa_prefill_params prm;
  unsigned char *ws() { return reinterpret_cast<unsigned char *>(store.data()); }
};
void prepare(const posattn_attention_desc *desc, pat_inputs *in, posattn_dtype dt, int prerotate_k,
             Prepared *r) {
  r->out.assign(size_t(pat_q_rows(desc)) * desc->q_heads * desc->head_dim * 2, 0);
  r->to = in->tq;
  r->to.data = r->out.data();
  char msg[512];
  pa_problem &p = r->p;
  ASSERT_EQ(pa_validate(msg, sizeof msg, desc, dt, dt, &in->tq, &in->tk, &in->tv, &r->to, nullptr, &p),
            POSATTN_STATUS_SUCCESS) << msg;
  ASSERT_EQ(pa_prefill_layout_make(&p, 1, prerotate_k, &r->L, msg, sizeof msg),
            POSATTN_STATUS_SUCCESS) << msg;
  r->store.assign((r->L.total + 15) / 8, 0.0);
  unsigned char *tables = r->ws() + r->L.tables_at;
  ASSERT_EQ(pa_prefill_tables_build(&p, &r->L, tables, &r->sc, msg, sizeof msg),
            POSATTN_STATUS_SUCCESS) << msg;
  pa_prefill_params_fill(r->prm, &p, r->L, r->sc, tables, in->tq.data,
                         pa_prefill_span(&p, &in->tq, p.q_len, p.total_q, p.hq), in->tk.data,
                         pa_prefill_span(&p, &in->tk, p.kv_len, p.total_kv, p.hkv), in->tv.data,
                         pa_prefill_span(&p, &in->tv, p.kv_len, p.total_kv, p.hkv),
                         r->ws() + r->L.out, size_t(p.total_q) * p.hq * p.d, 0, 0, 0, nullptr);
}

// Runs the pre-pass for c and checks its output against REF's rotation of every key.
void check_prepass(const Case &c, uint64_t seed, int nan_key = -1) {
  SCOPED_TRACE(c.name);
  pat_rng rng;
  pat_rng_seed(&rng, seed);
  std::vector<int32_t> pos;
  const posattn_attention_desc desc = make_desc(c, &pos, &rng);
  pat_inputs in;
  ASSERT_EQ(pat_inputs_random(&in, &desc, c.dt, &rng, 2.0), 0);
  const int64_t kv_rows = pat_kv_rows(&desc), row = int64_t(c.hkv) * c.d;
  if (nan_key >= 0) pat_store(in.k.data, c.dt, nan_key * row + 1, NAN);  // key nan_key, head 0
  Prepared pr;
  prepare(&desc, &in, c.dt, 1, &pr);
  if (::testing::Test::HasFatalFailure()) return;
  const pa_problem &p = pr.p;
  const pa_prefill_layout &L = pr.L;
  const pa_prefill_params &prm = pr.prm;
  const unsigned char *ws = pr.ws();
  ASSERT_EQ(L.n_k_rot, size_t(kv_rows * row));
  const pa::launch_status st = pa_prefill::rope_k_launch(prm, nullptr);
  ASSERT_TRUE(st.ok) << st.msg;

  // The angle error of the kernel: FAST float(p) * inv_freq rounds the angle (<= 2^-24 of it),
  // EXACT < 2e-7 rad (posattn.h).
  const int rd = p.rotary_dim;
  std::vector<double> w(size_t(rd / 2));
  ASSERT_EQ(posattn_pe_rope_inv_freq(&desc.pe.rope, c.d, p.max_kv_pos + 1, w.data(), nullptr,
                                     nullptr, 0), POSATTN_STATUS_SUCCESS);
  const unsigned char *rot = ws + L.tables_at + L.k_rot;
  std::vector<double> x(size_t(c.d)), y(size_t(c.d));
  int64_t rotated = 0, nan_rows = 0;
  for (int32_t b = 0; b < p.batch; ++b)
    for (int32_t j = 0; j < pa_kv_seqlen(&p, b); ++j)
      for (int32_t h = 0; h < c.hkv; ++h) {
        const int64_t tok = pa_kv_start(&p, b) + j, at = tok * row + int64_t(h) * c.d;
        const int64_t pk = pa_kv_pos(&p, b, j);
        for (int f = 0; f < c.d; ++f) x[size_t(f)] = pat_load(in.k.data, c.dt, pa_kv_offset(&p, &in.tk, b, j, h) + f);
        ASSERT_EQ(posattn_pe_rope_apply(&desc.pe.rope, c.d, p.max_kv_pos + 1, pk, x.data(), y.data()),
                  POSATTN_STATUS_SUCCESS);
        bool has_nan = false;
        for (int f = 0; f < c.d; ++f) {
          const double got = pat_load(rot, c.dt, at + f);
          has_nan = has_nan || std::isnan(got);
          if (std::isnan(x[size_t(f)]) || std::isnan(y[size_t(f)])) continue;  // the NaN key's pair
          const bool in_rot = f >= c.rotary_offset && f < c.rotary_offset + rd;
          if (!in_rot) {
            ASSERT_EQ(got, x[size_t(f)]) << "copied feature " << f << " of key " << tok;
            continue;
          }
          ++rotated;
          const int pair = c.layout == POSATTN_ROPE_GPTJ ? (f - c.rotary_offset) / 2
                                                         : (f - c.rotary_offset) % (rd / 2);
          const double angle = double(pk) * w[size_t(pair)];
          const double angle_err = c.angles == POSATTN_ANGLE_EXACT ? 2e-7 : 1e-7 + angle * 0x1p-24;
          const double norm = std::fabs(x[size_t(f)]) + 4.0;  // |a| + |b| <= 4 (amp 2)
          const double tol = pat_ulp(c.dt, y[size_t(f)]) + angle_err * norm;
          ASSERT_LE(std::fabs(got - y[size_t(f)]), tol)
              << "feature " << f << " of key " << tok << " at position " << pk << ": " << got
              << " vs REF " << y[size_t(f)];
        }
        if (has_nan) {
          ++nan_rows;
          EXPECT_EQ(tok, nan_key) << "NaN left key " << nan_key << " for key " << tok;
          EXPECT_EQ(h, 0);
        }
      }
  EXPECT_GT(rotated, 0);
  EXPECT_EQ(nan_rows, nan_key >= 0 ? 1 : 0);
  pat_inputs_free(&in);
}

TEST(RopeKPrepass, neox_full_bf16_odd_length_gqa) {
  check_prepass(Case{"neox bf16 37 gqa", BF16, 1, 6, 2, 64, 37}, 1);
}
TEST(RopeKPrepass, gptj_partial_f16_positions_two_batches) {
  Case c{"gptj f16 partial", F16, 2, 4, 4, 64, 45};
  c.rotary_dim = 32;
  c.layout = POSATTN_ROPE_GPTJ;
  c.positions = true;
  check_prepass(c, 2);
}
TEST(RopeKPrepass, offset_block_varlen_exact) {  // DeepSeek MLA-like: the last 32 of 128 rotated
  Case c{"offset varlen exact", BF16, 3, 2, 1, 128, 33, {0, 5, 38, 71}};
  c.rotary_dim = 32;
  c.rotary_offset = 96;
  c.angles = POSATTN_ANGLE_EXACT;
  c.positions = true;
  check_prepass(c, 3);
}
TEST(RopeKPrepass, proportional_active_pairs_yarn) {  // Gemma-like zero-frequency pairs, attn factor
  Case c{"proportional yarn", F16, 1, 2, 2, 64, 70};
  c.active_pairs = 8;
  c.scaling = POSATTN_ROPE_SCALING_YARN;
  check_prepass(c, 4);
}
TEST(RopeKPrepass, nan_key_stays_in_its_row) {
  check_prepass(Case{"nan key", BF16, 1, 2, 2, 64, 40}, 5, 17);
}

// ---- the bias lookups without searches (bias.cuh, tables.cpp), evaluated on the host ----
// A self-attention descriptor with explicit positions `pos` (one sequence, 1 kv head).
posattn_attention_desc bias_desc(std::vector<int32_t> &pos, int hq) {
  posattn_attention_desc desc;
  posattn_attention_desc_init(&desc);
  desc.batch = 1; desc.q_heads = hq; desc.kv_heads = 1; desc.head_dim = 64;
  desc.q_len = desc.kv_len = int32_t(pos.size());
  desc.q_positions = desc.kv_positions = pos.data();
  return desc;
}

// T5: the bucket table gives REF's bucket (posattn_pe_t5_bucket) for every pair of positions of
// the call, both directions, both forms, distances below and beyond max_distance.
TEST(BiasTables, t5_bucket_table_is_refs_bucket) {
  for (int bidir = 0; bidir < 2; ++bidir)
    for (int32_t spread : {15, 3000}) {  // reach below / beyond max_distance
      SCOPED_TRACE(::testing::Message() << "bidirectional " << bidir << " spread " << spread);
      pat_rng rng;
      pat_rng_seed(&rng, 21 + bidir);
      std::vector<int32_t> pos;
      for (int i = 0; i < 40; ++i) pos.push_back(pat_rng_int(&rng, 0, spread));
      const int hq = 3;
      std::vector<float> table(16 * hq);
      for (float &t : table) t = float(pat_rng_uniform(&rng, -2, 2));
      posattn_attention_desc desc = bias_desc(pos, hq);
      desc.pe.kind = POSATTN_PE_T5;
      desc.pe.t5.num_buckets = 16;
      desc.pe.t5.max_distance = 100;
      desc.pe.t5.bidirectional = bidir;
      desc.pe.t5.table = table.data();
      pat_inputs in;
      ASSERT_EQ(pat_inputs_random(&in, &desc, BF16, &rng, 1.0), 0);
      Prepared pr;
      prepare(&desc, &in, BF16, 0, &pr);
      ASSERT_FALSE(::testing::Test::HasFatalFailure());
      EXPECT_EQ(pr.prm.t5_nmax, std::min(spread * 2, 100));
      for (int h = 0; h < hq; ++h)
        for (int32_t pq : pos) {
          const pa_pe::Bias<POSATTN_PE_T5> bias(pr.prm, h, pq);
          for (int32_t pk : pos) {
            const int32_t bucket = posattn_pe_t5_bucket(int64_t(pk) - pq, bidir, 16, 100);
            ASSERT_EQ(bias(pk), table[size_t(bucket * hq + h)]) << "pq " << pq << " pk " << pk;
          }
        }
      pat_inputs_free(&in);
    }
}

// FIRE: the cell grid plus forward steps picks the same segment as a linear scan of the starts,
// for x swept finely across three kinks closer than any grid cell (so fire_steps >= 2 is used).
TEST(BiasTables, fire_cell_lookup_is_the_linear_scan) {
  const int hq = 2, width = 5;
  const float kinks[width] = {0.5f, 1.5f, 2.9f, 2.9001f, 2.9002f};
  std::vector<float> w1(width, 1.f), b1(width), w2(hq * width), b2(hq);
  pat_rng rng;
  pat_rng_seed(&rng, 31);
  for (int j = 0; j < width; ++j) b1[size_t(j)] = -kinks[j];
  for (float &w : w2) w = float(pat_rng_uniform(&rng, -1, 1));
  for (float &b : b2) b = float(pat_rng_uniform(&rng, -1, 1));
  // query at 0, keys 956000 .. 959999: x = log1p(0.1 d) / log1p(51.2) runs from 2.8995 to 2.9006
  // in steps of ~2.6e-7
  std::vector<int32_t> pos = {0};
  for (int32_t dd = 0; dd < 4000; ++dd) pos.push_back(956000 + dd);
  for (int32_t dd = 0; dd < 200; ++dd) pos.push_back(dd * 37);  // and the near kinks
  posattn_attention_desc desc = bias_desc(pos, hq);
  desc.pe.kind = POSATTN_PE_FIRE;
  posattn_fire_params &f = desc.pe.fire;
  f.mlp_width = width;
  f.w1 = w1.data(); f.b1 = b1.data(); f.w2 = w2.data(); f.b2 = b2.data();
  pat_inputs in;
  ASSERT_EQ(pat_inputs_random(&in, &desc, BF16, &rng, 1.0), 0);
  Prepared pr;
  prepare(&desc, &in, BF16, 0, &pr);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  const pa_prefill_params &prm = pr.prm;
  EXPECT_GE(prm.fire_steps, 2);
  int64_t in_close_kinks = 0;
  for (int h = 0; h < hq; ++h) {
    const pa_pe::Bias<POSATTN_PE_FIRE> bias(prm, h, 0);
    for (int32_t pk : pos) {
      // psi from the host table up to fire_psi_max, log_far beyond (the sweep has both)
      const float psi = uint32_t(pk) <= prm.fire_psi_max ? float(prm.fire_psi[pk])
                                                         : pa_pe::log_far(prm.fire_c * float(pk));
      ASSERT_NEAR(psi, std::log1p(double(prm.fire_c) * pk), 4e-7 * std::log1p(0.1 * pk) + 1e-30);
      const float x = psi * bias.inv_norm;
      int seg = 0;
      while (seg + 1 < prm.fire_nseg && prm.fire_start[seg + 1] <= x) ++seg;
      in_close_kinks += x >= 2.9f && x < 2.9002f;
      const int64_t i = int64_t(h) * prm.fire_nseg + seg;
      ASSERT_EQ(bias(pk), fmaf(prm.fire_slope[i], x, prm.fire_icpt[i])) << "key " << pk << " x " << x;
    }
  }
  EXPECT_GT(in_close_kinks, 100);  // the sweep did cross the close kinks
  pat_inputs_free(&in);
}

// ---- through posattn_forward: the tensor-core kernel after the pre-pass, against REF ----
class RopeKForward : public pat_emu_ref_test {
 protected:
  void check(const Case &c, int causal, uint64_t seed) {
    SCOPED_TRACE(c.name);
    pat_rng rng;
    pat_rng_seed(&rng, seed);
    std::vector<int32_t> pos;
    posattn_attention_desc desc = make_desc(c, &pos, &rng);
    desc.causal = causal;
    pat_inputs in;
    ASSERT_EQ(pat_inputs_random(&in, &desc, c.dt, &rng, 1.0), 0);
    pat_checked r;  // SUCCESS, guards, no NaN, the section 5 rule on out
    pat_check_forward(emu_, ref_, &desc, &in, c.dt, c.dt, &r);
    pat_inputs_free(&in);
  }
};

// The workspace of a tensor-core RoPE call holds every rotated key in the input dtype on top of
// what the same call without RoPE needs (tables aside: RoPE's own tables are < 4 KiB here).
TEST_F(RopeKForward, workspace_holds_the_rotated_keys) {
  std::vector<int32_t> pos;
  pat_rng rng;
  pat_rng_seed(&rng, 14);
  posattn_attention_desc desc = make_desc(Case{"ws", BF16, 2, 8, 2, 64, 300}, &pos, &rng);
  size_t rope = 0, none = 0;
  ASSERT_EQ(posattn_workspace_size(emu_, &desc, BF16, BF16, &rope), POSATTN_STATUS_SUCCESS);
  desc.pe.kind = POSATTN_PE_NONE;
  ASSERT_EQ(posattn_workspace_size(emu_, &desc, BF16, BF16, &none), POSATTN_STATUS_SUCCESS);
  const size_t keys = size_t(2) * 300 * 2 * 64 * 2;  // batch * kv_len * hkv * d * sizeof(bf16)
  EXPECT_GE(rope, none + keys);
  EXPECT_LE(rope, none + keys + 4096);
}

TEST_F(RopeKForward, hd64_bf16_odd_gqa_causal) {
  check(Case{"fwd bf16 gqa", BF16, 1, 4, 2, 64, 83}, 1, 11);
}
TEST_F(RopeKForward, hd128_f16_offset_varlen_exact) {
  Case c{"fwd offset varlen", F16, 2, 2, 1, 128, 71, {0, 70, 141}};
  c.rotary_dim = 64;
  c.rotary_offset = 64;
  c.angles = POSATTN_ANGLE_EXACT;
  c.positions = true;
  check(c, 0, 12);
}
TEST_F(RopeKForward, hd64_bf16_proportional_gptj) {
  Case c{"fwd proportional", BF16, 1, 2, 1, 64, 66};
  c.active_pairs = 12;
  c.layout = POSATTN_ROPE_GPTJ;
  check(c, 1, 13);
}

}  // namespace
