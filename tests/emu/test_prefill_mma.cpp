// Focused tests of the tensor-core prefill kernel (kernels/prefill/mma.cuh) on EMU, against REF
// with the DESIGN.md section 5 rule. The chooser sends bf16/f16 inputs with head dim 64, 80, 96,
// 112, 128, 192 or 256 and 16-byte rows to this kernel; every case below is such a problem
// (contiguous, 256-byte aligned guarded buffers). posattn.h does not say which kernel ran; that
// the chooser picks this one for these shapes was confirmed under gdb.
// Shapes cover one tile, partial tiles (17, 97 rows), several query and key tiles, GQA/MQA,
// causal (also q_len > kv_len: empty rows), sliding window, varlen, documents with anchors (tile
// skipping), RoPE (NeoX partial, GPT-J with positions), ALiBi, and every output dtype. The
// emulator's race and bounds checks are on (their default), so a missing barrier in the cp.async
// ring fails here as KERNEL_FAULT.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "pa_prefill_case.hpp"
#include "pa_test_shim.h"

namespace {

using Case = pat_case;

class PrefillMma : public pat_emu_ref_test {
 protected:
  void check(const Case &c, uint64_t seed) { pat_case_check(emu_, ref_, c, seed); }
};

constexpr posattn_dtype BF16 = POSATTN_DTYPE_BF16, F16 = POSATTN_DTYPE_F16, F32 = POSATTN_DTYPE_F32;

// ---- head dim 64 (4 warps x 32 rows, 128 x 32 tiles, 3-stage ring) ----
TEST_F(PrefillMma, hd64_bf16_one_partial_tile_17_causal_gqa) {
  Case c{"hd64 bf16 17", BF16, BF16, 1, 4, 2, 64, 17, 17};
  c.causal = 1;
  check(c, 1);
}
TEST_F(PrefillMma, hd64_f16_97_rows_noncausal_out_f32) {
  check(Case{"hd64 f16 97", F16, F32, 1, 1, 1, 64, 97, 97}, 2);
}
TEST_F(PrefillMma, hd64_bf16_multi_tile_causal_more_queries_than_keys) {
  Case c{"hd64 q>kv", BF16, F16, 2, 2, 1, 64, 150, 70};  // bottom-right: the first 80 rows see nothing
  c.causal = 1;
  check(c, 3);
}
TEST_F(PrefillMma, hd64_bf16_documents_with_anchors_skip_tiles) {
  Case c{"hd64 docs", BF16, BF16, 1, 1, 1, 64, 300, 300};
  c.causal = 1;
  c.docs = 4;
  check(c, 4);
}
TEST_F(PrefillMma, hd64_f16_sliding_window_alibi) {
  Case c{"hd64 window alibi", F16, F16, 1, 2, 2, 64, 200, 200};
  c.causal = 1;
  c.wl = 40;
  c.pe = POSATTN_PE_ALIBI;
  check(c, 5);
}
TEST_F(PrefillMma, hd64_bf16_rope_gptj_positions) {
  Case c{"hd64 rope gptj", BF16, BF16, 1, 2, 1, 64, 97, 130};
  c.pe = POSATTN_PE_ROPE;
  c.layout = POSATTN_ROPE_GPTJ;
  c.positions = true;
  check(c, 6);
}

TEST_F(PrefillMma, hd64_f16_xpos_causal) {  // the centred q/k decay on 16-bit operands
  Case c{"hd64 xpos", F16, F16, 1, 2, 2, 64, 150, 150};
  c.pe = POSATTN_PE_XPOS;
  c.layout = POSATTN_ROPE_GPTJ;
  c.causal = 1;
  check(c, 12);
}

// ---- head dim 128 (8 warps, 128 x 64 tiles, 2-stage ring) ----
TEST_F(PrefillMma, hd128_bf16_multi_tile_causal_mqa) {
  Case c{"hd128 mqa", BF16, BF16, 1, 3, 1, 128, 140, 200};
  c.causal = 1;
  check(c, 7);
}
TEST_F(PrefillMma, hd128_f16_varlen_causal) {
  Case c{"hd128 varlen", F16, F16, 2, 2, 2, 128, 97, 97};
  c.cu_q = {0, 17, 114};
  c.causal = 1;
  check(c, 8);
}
// T5's bias table lives in shared memory (2 (t5_nmax + 1) floats): distances up to 5000 with a
// 4000-entry reach; beyond max_distance 8191 the chooser sends T5 to the SIMT kernel.
TEST_F(PrefillMma, hd128_bf16_t5_shared_table_positions) {
  Case c{"hd128 t5 4000", BF16, F32, 1, 2, 1, 128, 150, 130};
  c.positions = true;
  c.t5_max_distance = 4000;
  check(c, 20);
}
TEST_F(PrefillMma, hd64_f16_t5_beyond_the_shared_table) {
  Case c{"hd64 t5 9000", F16, F16, 1, 2, 2, 64, 90, 90};
  c.positions = true;
  c.t5_max_distance = 9000;
  check(c, 21);
}
TEST_F(PrefillMma, hd128_bf16_rope_neox_partial) {
  Case c{"hd128 rope", BF16, F32, 1, 2, 2, 128, 70, 70};
  c.pe = POSATTN_PE_ROPE;
  c.rotary_dim = 64;
  c.causal = 1;
  check(c, 9);
}

// ---- head dim 256 (4 warps, 64 x 16 tiles, 3-stage ring) ----
TEST_F(PrefillMma, hd256_bf16_17_noncausal) {
  check(Case{"hd256 bf16 17", BF16, BF16, 1, 2, 1, 256, 17, 17}, 10);
}
TEST_F(PrefillMma, hd256_f16_multi_tile_window) {
  Case c{"hd256 f16 window", F16, BF16, 1, 1, 1, 256, 97, 97};
  c.wl = 20;
  c.wr = 10;
  check(c, 11);
}

// ---- head dims 80, 96, 112 (padded shared-memory rows) and 192 ----
// Lengths 1, 17 and 97: one row, one partial tile, several key tiles with a partial last one.
TEST_F(PrefillMma, hd96_bf16_lengths_1_17_97_causal_gqa) {
  for (int n : {1, 17, 97}) {
    Case c{"hd96", BF16, BF16, 1, 4, 2, 96, n, n};
    c.causal = 1;
    check(c, 100 + n);
  }
}
TEST_F(PrefillMma, hd80_f16_lengths_1_17_97_alibi) {
  for (int n : {1, 17, 97}) {
    Case c{"hd80 alibi", F16, F32, 1, 2, 1, 80, n, n};
    c.pe = POSATTN_PE_ALIBI;
    check(c, 200 + n);
  }
}
TEST_F(PrefillMma, hd112_bf16_lengths_1_17_97_rope_causal) {
  for (int n : {1, 17, 97}) {
    Case c{"hd112 rope", BF16, F16, 1, 2, 2, 112, n, n};
    c.pe = POSATTN_PE_ROPE;
    c.causal = 1;
    check(c, 300 + n);
  }
}
// hd80, hd96 and hd112 at 4 warps x 32 rows (two slabs per warp, one K and one V buffer):
// two query blocks (the second one partial), key tiles with a partial last one, q_len < kv_len,
// every slab row of a warp; FIRE's band loop too (its own band kernel at hd80 and hd112,
// mma.cuh split_paths).
TEST_F(PrefillMma, hd80_96_112_two_slabs_several_blocks) {
  int seed = 400;
  for (int d : {80, 96, 112})
    for (posattn_pe_kind pe : {POSATTN_PE_NONE, POSATTN_PE_ALIBI, POSATTN_PE_FIRE}) {
      Case c{"hd80/96/112 two slabs", BF16, BF16, 2, 4, 2, d, 200, 261};
      c.pe = pe;
      c.causal = pe != POSATTN_PE_ALIBI;
      check(c, ++seed);
    }
}
TEST_F(PrefillMma, hd192_f16_lengths_1_17_97_window) {
  for (int n : {1, 17, 97}) {
    Case c{"hd192 window", F16, BF16, 1, 1, 1, 192, n, n};
    c.wl = 20;
    c.wr = 10;
    check(c, 400 + n);
  }
}

// The tile walk (TileWalk: the anchor tiles, then a jump to the block's documents) and the masked
// tiles' visibility words from the row table's document keys (row_docs, visible_words):
// documents shorter and longer than a KV tile (Bc = 64 at hd128 and hd80: two visibility
// words per row), several anchors (more than a tile), windows that exclude the anchors for later
// blocks, varlen sequences.
TEST_F(PrefillMma, documents_anchors_tile_walk_and_row_table) {
  uint64_t seed = 900;
  for (int d : {128, 80})
    for (int v = 0; v < 5; ++v) {
      Case c{"walk", BF16, BF16, 1, 2, 1, d, 400, 400};
      c.doc_lens = {7, 150, 3, 40, 300, 20, 1, 90};
      if (v == 0) c.causal = 1, c.anchors = 5;
      if (v == 1) c.causal = 1, c.anchors = 37, c.wl = 60;  // 2 anchor tiles; later blocks: none
      if (v == 2) c.wl = 100, c.wr = 30, c.anchors = 1;      // both sides, no causal
      if (v == 3) c.causal = 1, c.anchors = 0, c.doc_lens = {200, 10, 250};
      if (v == 4) {  // varlen: 3 sequences, the first shorter than a tile
        c.batch = 3;
        c.cu_q = {0, 19, 300, 700};
        c.q_len = c.kv_len = 400;
        c.causal = 1;
        c.anchors = 9;
        c.wl = 170;
      }
      SCOPED_TRACE(testing::Message() << "d " << d << " variant " << v);
      check(c, ++seed);
      if (HasFatalFailure()) return;
    }
}
// Without documents the walk is the causal/window tile range: fewer queries than keys, a window
// that starts each block's range past the first tile.
TEST_F(PrefillMma, hd128_bf16_window_fewer_queries_than_keys) {
  Case c{"hd128 q<kv window", BF16, BF16, 2, 2, 2, 128, 150, 420};
  c.causal = 1;
  c.wl = 90;
  check(c, 950);
}

// The distance band (mma.cuh): with positions in token order, ALiBi, T5 and KERPLE read their
// bias from a per-warp table over the distances of the tile; explicit position ids take the
// per-element path. Both paths for each kind, q_len < kv_len (positions shifted by Lk - Lq),
// partial tiles of rows and keys, causal, window (both sides), documents with anchors and a
// softcap; the explicit ids are random or equal to the defaults (the band's distances).
TEST_F(PrefillMma, distance_band_and_explicit_positions_every_bias_kind) {
  const posattn_pe_kind kinds[] = {POSATTN_PE_ALIBI, POSATTN_PE_T5, POSATTN_PE_KERPLE_LOG,
                                   POSATTN_PE_KERPLE_POWER};
  uint64_t seed = 500;
  // hd64 4 x 32 rows, Bc 32; hd80 4 x 16, Bc 64; hd128 4 x 32, Bc 64 (band) / 32 (per element);
  // hd192 8 x 16, Bc 32
  for (int d : {64, 80, 128, 192})
    for (posattn_pe_kind k : kinds)
      for (int pos = 0; pos < 3; ++pos)  // band, random ids, default ids given explicitly
        for (int mask = 0; mask < 4; ++mask) {
          Case c{"band", BF16, BF16, 1, 2, 1, d, 97, 161};
          c.pe = k;
          if (k == POSATTN_PE_T5) c.t5_max_distance = 100;
          c.positions = pos == 1;
          c.default_positions = pos == 2;
          if (mask == 0) c.causal = 1;
          if (mask == 1) c.wl = 50, c.wr = 20;
          if (mask == 2) c.causal = 1, c.q_len = c.kv_len = 161, c.docs = 3;
          if (mask == 3) c.softcap = 5.f;
          SCOPED_TRACE(testing::Message() << "d " << d << " kind " << k << " positions " << pos
                                          << " mask " << mask);
          check(c, ++seed);
          if (HasFatalFailure()) return;
        }
}

// hd128 (4 warps x 32 rows, Bc = 64, one K and one V buffer: the copies split around Q K^T) for
// every PE kind: q_len 97 < kv_len 161 (partial row and key tiles, positions shifted), GQA 4:2,
// causal, a two-sided window, documents with anchors, a softcap; explicit random positions for
// the kinds that take them on the per-element path. xPos only causal (the kernel's rule).
TEST_F(PrefillMma, hd128_every_pe_kind_odd_shapes) {
  const posattn_pe_kind kinds[] = {POSATTN_PE_NONE,  POSATTN_PE_ROPE, POSATTN_PE_ALIBI,
                                   POSATTN_PE_FIRE,  POSATTN_PE_XPOS, POSATTN_PE_T5,
                                   POSATTN_PE_KERPLE_LOG, POSATTN_PE_KERPLE_POWER};
  uint64_t seed = 1200;
  for (posattn_pe_kind k : kinds)
    for (int mask = 0; mask < 5; ++mask) {
      const bool xpos = k == POSATTN_PE_XPOS;
      if (mask == 4 && (xpos || k == POSATTN_PE_NONE)) continue;  // explicit positions
      Case c{"hd128 kind", BF16, BF16, 2, 4, 2, 128, 97, 161};
      c.pe = k;
      c.fire_L = 16;  // FIRE: rows past L, each with its own normaliser
      if (k == POSATTN_PE_T5) c.t5_max_distance = 100;
      if (mask == 0) c.causal = 1;
      if (mask == 1) c.wl = 50, c.wr = xpos ? -1 : 20, c.causal = xpos;
      if (mask == 2) c.causal = 1, c.q_len = c.kv_len = 161, c.docs = 3;
      if (mask == 3) c.softcap = 5.f, c.causal = xpos;
      if (mask == 4) c.positions = true, c.wl = 70;
      SCOPED_TRACE(testing::Message() << "kind " << k << " mask " << mask);
      check(c, ++seed);
      if (HasFatalFailure()) return;
    }
}

// Lazy rescaling (mma.cuh: a row keeps its reference maximum until its logits rise more than
// 2^8 in weight above it). Feature 0 of key j is 0.75 j and feature 0 of query row i is +4, -4
// or +0.25 by i % 3, the other features random: per 64-key tile the logits of the first kind of
// row rise by ~24 log2 units (hd128; rescaled on every tile), the second fall (never rescaled),
// the third rise by ~1.5 (kept for several tiles with weights above 1, then rescaled). One warp
// holds all three kinds, so rows whose factor is exactly 1 are multiplied under the vote too.
TEST_F(PrefillMma, lazy_rescale_rising_falling_and_slow_rows) {
  struct Shape {
    posattn_dtype in;
    int d, q_len, kv_len, causal;
  };
  uint64_t seed = 1400;
  for (const Shape &sh : {Shape{BF16, 128, 300, 300, 0}, Shape{F16, 64, 200, 330, 1},
                          Shape{BF16, 128, 97, 400, 1}}) {
    Case c{"lazy rescale", sh.in, POSATTN_DTYPE_F32, 2, 2, 1, sh.d, sh.q_len, sh.kv_len};
    c.causal = sh.causal;
    SCOPED_TRACE(testing::Message() << "d " << sh.d << " q " << sh.q_len << " kv " << sh.kv_len);
    pat_rng rng;
    pat_rng_seed(&rng, ++seed);
    posattn_attention_desc desc;
    pat_case_arrays arr;
    pat_case_describe(c, &desc, &arr, &rng);
    pat_inputs in;
    ASSERT_EQ(pat_inputs_random(&in, &desc, c.in, &rng, 1.0), 0);
    const double qf[3] = {4.0, -4.0, 0.25};
    for (int b = 0; b < c.batch; ++b) {
      for (int j = 0; j < c.kv_len; ++j)
        pat_store(in.tk.data, c.in, (int64_t(b) * c.kv_len + j) * c.hkv * c.d, 0.75 * j);
      for (int i = 0; i < c.q_len; ++i)
        for (int h = 0; h < c.hq; ++h)
          pat_store(in.tq.data, c.in, ((int64_t(b) * c.q_len + i) * c.hq + h) * c.d, qf[i % 3]);
    }
    pat_checked r;
    pat_check_forward(emu_, ref_, &desc, &in, c.in, c.out, &r);
    pat_inputs_free(&in);
    ASSERT_FALSE(HasFatalFailure());
    for (size_t i = 0; i < r.lse.size(); ++i)
      EXPECT_NEAR(r.lse[i], r.gold_lse[i], 1e-3 * (1.0 + std::fabs(r.gold_lse[i]))) << "lse " << i;
  }
}

// FIRE's band with hostile MLPs (mma.cuh, the kink trips). The widest MLP (1024 hidden units,
// every kink at x > 0: 1025 segments; rows near the diagonal cross hundreds of kinks per tile,
// hundreds of trips) against REF. Output weights that make biases of ~1e3 (with and without
// softcap), ~6e3 and ~1e35 (natural-log units): the band (kink form: the base segment's
// intercept in every element's FFMA, each kink's term max(psi - ps, 0) scaled) against REF, and
// no worse than the exact per-element path (FireBias; explicit ids equal to the defaults) on the
// same data. At ~1e3 the fp32 bias itself is near the rule's bound: segment slopes of several
// thousand make fmaf(slope, x, icpt) round at ~1e-3, and on some draws (seed 1504, softcap) both
// paths exceed it by ~25 % alike. The sm_90a kernel's row offsets need a bias bound for the same
// cases (test_prefill_wgmma.cpp). hd128 and hd64: their Bc = 64 band kernels (and Bc = 32 and 64
// per-element ones).
TEST_F(PrefillMma, fire_band_widest_mlp_and_huge_biases) {
  uint64_t seed = 1500;
  for (int d : {128, 64}) {
    Case c{"fire width 1024", BF16, BF16, 1, 2, 1, d, 150, 290};
    c.pe = POSATTN_PE_FIRE;
    c.fire_width = 1024;
    c.fire_all_kinks = true;
    c.fire_L = 8;
    c.causal = 1;
    SCOPED_TRACE(testing::Message() << "d " << d << " width 1024");
    check(c, ++seed);
  }
  for (int d : {128, 64})
    for (const pat_fire_bias_case &k : kPatFireBiasCases) {
      ++seed;
      SCOPED_TRACE(testing::Message() << "d " << d << " " << k.what << " seed " << seed);
      pat_rule_result rule[2];
      for (int element = 0; element < 2; ++element) {
        Case c{k.what, BF16, F32, 1, 2, 1, d, 100, 150};
        c.pe = POSATTN_PE_FIRE;
        c.fire_w2_scale = k.w2;
        c.softcap = k.softcap;
        c.causal = 1;
        c.default_positions = element;  // explicit ids: the per-element path
        pat_rng rng;
        pat_rng_seed(&rng, seed);
        posattn_attention_desc desc;
        pat_case_arrays arr;
        pat_case_describe(c, &desc, &arr, &rng);
        pat_inputs in;
        ASSERT_EQ(pat_inputs_random(&in, &desc, c.in, &rng, 1.0), 0);
        pat_checked r;
        pat_check_forward(emu_, ref_, &desc, &in, c.in, c.out, &r, false);  // the rule: below
        pat_inputs_free(&in);
        rule[element] = r.out_rule;
      }
      EXPECT_EQ(rule[0].bad_nonfinite, 0);
      EXPECT_LE(rule[0].max_err, std::max(rule[0].bound, 1.05 * rule[1].max_err))
          << "band: max_err " << rule[0].max_err << " bound " << rule[0].bound
          << "; per-element: max_err " << rule[1].max_err;
    }
}

}  // namespace
