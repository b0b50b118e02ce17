// pa_prefill_case.hpp -- one attention problem of the EMU suites that check a prefill kernel
// against REF (test_emu_attention.cpp, test_prefill_mma.cpp, test_prefill_wgmma.cpp): the case,
// the descriptor it describes (with the host arrays it points to), and the checks of one call:
// DESIGN.md section 5 on the output (pa_test_check.hpp), LSE within 1e-3 relative, -inf exactly
// on the rows REF finds empty, and at least one such row where the case is built to have them.
#ifndef PA_PREFILL_CASE_HPP
#define PA_PREFILL_CASE_HPP

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "pa_test_check.hpp"
#include "pa_test_shim.h"

struct pat_case {
  const char *name;
  posattn_dtype in, out;
  int batch, hq, hkv, d, q_len, kv_len;
  std::vector<int32_t> cu_q, cu_kv;  // varlen when cu_q is not empty (cu_kv empty: = cu_q)
  int causal = 0, wl = -1, wr = -1;
  float softcap = 0.f;
  posattn_pe_kind pe = POSATTN_PE_NONE;
  int rotary_dim = 0;
  posattn_rope_layout layout = POSATTN_ROPE_NEOX;
  bool positions = false;          // explicit random position ids in [0, max_position]
  int max_position = 5000;
  bool default_positions = false;  // dense only: explicit ids equal to the defaults (i + Lk - Lq, j)
  int docs = 0;                    // documents per sequence (dense self-attention), equal parts
  std::vector<int> doc_lens;       // else documents of these lengths (cycled, cut at sequence ends)
  int anchors = 3;                 // anchor tokens with documents
  int t5_max_distance = 0;         // T5 (bidirectional, 32 buckets, random table) when > 0
  bool sinks = false;              // random per-head sink logits near the logits
  double xpos_scale_base = 64;     // xPos: small, so the decay is far from 1 at these distances
  double fire_L = 0;               // FIRE's L when > 0 (else posattn.h's default)
  int fire_width = 16;             // FIRE's mlp_width (its hidden units' kinks: w1, b1 below)
  bool fire_all_kinks = false;     // every unit's kink -b1/w1 in x > 0 (as many segments as units)
  double fire_w2_scale = 1;        // FIRE's output weights w2 ~ U(-1, 1) times this
};

// Host arrays a descriptor points to.
struct pat_case_arrays {
  std::vector<int32_t> docs, qpos, kvpos;
  std::vector<float> t5_table, ka, kp, w1, b1, w2, b2, sinks;
};

// desc for c; random positions, tables and parameters are drawn from rng.
inline void pat_case_describe(const pat_case &c, posattn_attention_desc *desc,
                              pat_case_arrays *arr, pat_rng *rng) {
  posattn_attention_desc_init(desc);
  desc->batch = c.batch; desc->q_heads = c.hq; desc->kv_heads = c.hkv; desc->head_dim = c.d;
  desc->q_len = c.q_len; desc->kv_len = c.kv_len;
  desc->causal = c.causal; desc->window_left = c.wl; desc->window_right = c.wr;
  desc->softcap = c.softcap;
  if (!c.cu_q.empty()) {
    desc->cu_seqlens_q = c.cu_q.data();
    desc->cu_seqlens_kv = c.cu_kv.empty() ? c.cu_q.data() : c.cu_kv.data();
  }
  if (c.positions) {
    for (int64_t i = 0; i < pat_q_rows(desc); ++i)
      arr->qpos.push_back(pat_rng_int(rng, 0, c.max_position));
    for (int64_t i = 0; i < pat_kv_rows(desc); ++i)
      arr->kvpos.push_back(pat_rng_int(rng, 0, c.max_position));
  }
  if (c.default_positions) {
    for (int b = 0; b < c.batch; ++b) {
      for (int i = 0; i < c.q_len; ++i) arr->qpos.push_back(i + c.kv_len - c.q_len);
      for (int j = 0; j < c.kv_len; ++j) arr->kvpos.push_back(j);
    }
  }
  if (c.positions || c.default_positions) {
    desc->q_positions = arr->qpos.data();
    desc->kv_positions = arr->kvpos.data();
  }
  if (c.docs) {
    for (int b = 0; b < c.batch; ++b)
      for (int i = 0; i < c.q_len; ++i) arr->docs.push_back(i * c.docs / c.q_len);
  } else if (!c.doc_lens.empty()) {  // ids 0, 1, ... per sequence (dense or varlen)
    const int nseq = c.cu_q.empty() ? c.batch : int(c.cu_q.size()) - 1;
    for (int b = 0; b < nseq; ++b) {
      const int len = c.cu_q.empty() ? c.q_len : c.cu_q[b + 1] - c.cu_q[b];
      for (int i = 0, k = 0, id = 0; i < len; ++id, ++k)
        for (int n = 0; n < c.doc_lens[k % c.doc_lens.size()] && i < len; ++n, ++i)
          arr->docs.push_back(id);
    }
  }
  if (c.docs || !c.doc_lens.empty()) {
    desc->doc_ids = arr->docs.data();
    desc->num_anchor_tokens = c.anchors;
  }
  desc->pe.kind = c.pe;
  if (c.t5_max_distance > 0) {
    desc->pe.kind = POSATTN_PE_T5;
    desc->pe.t5.bidirectional = 1;
    desc->pe.t5.num_buckets = 32;
    desc->pe.t5.max_distance = c.t5_max_distance;
    for (int k = 0; k < 32 * c.hq; ++k) arr->t5_table.push_back(float(pat_rng_uniform(rng, -2, 2)));
    desc->pe.t5.table = arr->t5_table.data();
  }
  if (c.pe == POSATTN_PE_KERPLE_LOG || c.pe == POSATTN_PE_KERPLE_POWER) {
    for (int h = 0; h < c.hq; ++h) {
      arr->ka.push_back(float(pat_rng_uniform(rng, 0.05, 1.0)));
      arr->kp.push_back(float(pat_rng_uniform(rng, 0.1, 2.0)));
    }
    desc->pe.kerple.a = arr->ka.data();
    desc->pe.kerple.p = arr->kp.data();
  }
  if (c.pe == POSATTN_PE_FIRE) {  // a random MLP (16 wide by default) with kinks inside [0, 1]
    desc->pe.fire.mlp_width = c.fire_width;
    for (int k = 0; k < c.fire_width; ++k) {
      arr->w1.push_back(float(pat_rng_uniform(rng, -3, 3)));
      arr->b1.push_back(float(pat_rng_uniform(rng, -1.5, 1.5)));
      if (c.fire_all_kinks && arr->w1.back() * arr->b1.back() > 0) arr->b1.back() *= -1.f;
    }
    for (int k = 0; k < c.fire_width * c.hq; ++k)
      arr->w2.push_back(float(pat_rng_uniform(rng, -1, 1) * c.fire_w2_scale));
    for (int h = 0; h < c.hq; ++h) arr->b2.push_back(float(pat_rng_uniform(rng, -0.5, 0.5)));
    desc->pe.fire.w1 = arr->w1.data(); desc->pe.fire.b1 = arr->b1.data();
    desc->pe.fire.w2 = arr->w2.data(); desc->pe.fire.b2 = arr->b2.data();
    if (c.fire_L > 0) desc->pe.fire.L = c.fire_L;
  }
  if (c.sinks) {
    for (int h = 0; h < c.hq; ++h) arr->sinks.push_back(float(pat_rng_uniform(rng, -1, 3)));
    desc->sink_logits = arr->sinks.data();
  }
  if (c.pe == POSATTN_PE_XPOS) desc->pe.xpos.scale_base = c.xpos_scale_base;
  desc->pe.rope.rotary_dim = c.rotary_dim;
  desc->pe.rope.layout = c.layout;
}

// FIRE's hostile output weights (pat_case::fire_w2_scale) and softcaps: biases of ~1e3 (natural-
// log units; raw and with softcap), ~6e3 and ~1e35 (the EMU suites of both tensor-core kernels).
struct pat_fire_bias_case {
  const char *what;
  double w2;
  float softcap;
};
inline const pat_fire_bias_case kPatFireBiasCases[] = {{"fire biases ~1e3 raw units", 150, 0.f},
                                                       {"fire biases ~1e3 softcap", 150, 25.f},
                                                       {"fire biases ~6e3", 1000, 0.f},
                                                       {"fire biases ~1e35", 1e35, 0.f}};

// Runs c (data drawn from seed) on emu against ref. on_desc, when given, sees the descriptor
// after posattn_supported() accepted it (e.g. to ask which kernel the chooser picks).
inline void pat_case_check(posattn_context *emu, posattn_context *ref, const pat_case &c,
                           uint64_t seed,
                           const std::function<void(const posattn_attention_desc &)> &on_desc = {}) {
  SCOPED_TRACE(c.name);
  pat_rng rng;
  pat_rng_seed(&rng, seed);
  posattn_attention_desc desc;
  pat_case_arrays arr;
  pat_case_describe(c, &desc, &arr, &rng);
  ASSERT_EQ(posattn_supported(emu, &desc, c.in, c.out), POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(emu);
  if (on_desc) {
    on_desc(desc);
    if (::testing::Test::HasFatalFailure()) return;
  }
  pat_inputs in;
  ASSERT_EQ(pat_inputs_random(&in, &desc, c.in, &rng, 1.0), 0);
  pat_checked r;  // gold: REF delivered in f32
  pat_check_forward(emu, ref, &desc, &in, c.in, c.out, &r);
  pat_inputs_free(&in);
  if (::testing::Test::HasFatalFailure()) return;
  int64_t empty = 0;
  for (size_t i = 0; i < r.lse.size(); ++i) {
    if (std::isinf(r.gold_lse[i])) {
      ++empty;
      EXPECT_TRUE(std::isinf(r.lse[i]) && r.lse[i] < 0) << "lse row " << i << " = " << r.lse[i];
    } else {
      EXPECT_NEAR(r.lse[i], r.gold_lse[i], 1e-3 * (1.0 + std::fabs(r.gold_lse[i])))
          << "lse row " << i;
    }
  }
  pat_expect_lse_rule(r, c.in);
  if (c.causal && c.q_len > c.kv_len && c.cu_q.empty() && !c.sinks)  // (a sink empties no row)
    EXPECT_GT(empty, 0) << "the case meant to have empty rows";
}

#endif  // PA_PREFILL_CASE_HPP
