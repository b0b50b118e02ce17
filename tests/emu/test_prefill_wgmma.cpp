// The sm_90a prefill kernel (kernels/prefill/wgmma.cuh: TMA, mbarrier ring, warp specialisation,
// wgmma) on EMU against REF with the DESIGN.md section 5 rule. The EMU chooser targets sm_80
// unless told otherwise; these tests set its target to sm_90 (pa_prefill_set_emu_target_sm), check
// through the chooser that the wgmma kernel is the one that runs, and restore the target.
// Shapes: odd lengths (one partial tile, several key tiles with a partial last one), causal
// bottom-right (also q_len > kv_len: empty rows), GQA/MQA, window, documents with anchors (tile
// skipping), softcap, varlen, bf16 and f16, every output dtype. The emulator's checks are on,
// race checker included, in every test (also the NaN-rule test, where the producer warp writes
// masked tiles that hold a non-finite V before handing them over: the emulator reported no race
// there; the test fails when that write is left out).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "emu/emu.h"
#include "pa_drift_shim.h"
#include "pa_nan_rule.hpp"
#include "pa_prefill_case.hpp"
#include "pa_test_shim.h"

extern "C" int pa_prefill_set_emu_target_sm(int sm);

namespace {

using Case = pat_case;
using Arrays = pat_case_arrays;

class PrefillWgmma : public pat_emu_ref_test {
 protected:
  void SetUp() override {
    pat_emu_ref_test::SetUp();
    old_sm_ = pa_prefill_set_emu_target_sm(90);
  }
  void TearDown() override {
    pa_prefill_set_emu_target_sm(old_sm_);
    pat_emu_ref_test::TearDown();
  }
  void check(const Case &c, uint64_t seed, const char *kernel = "wgmma");
  // check() with the block's ready threads run in random orders, one run per order seed (data
  // seed + order seed); the emulator's options are restored afterwards.
  void check_shuffled(const Case &c, uint64_t seed, std::initializer_list<uint64_t> orders) {
    pa_emu::Options &o = pa_emu::options();
    const pa_emu::Options saved = o;
    o.shuffle = true;
    for (uint64_t order : orders) {
      o.seed = order;
      check(c, seed + order);
      if (HasFatalFailure()) break;
    }
    o = saved;
  }
  int old_sm_ = 80;
};

// desc for c, its random tables drawn from a fixed seed (the tests that build their own inputs).
void describe(const Case &c, posattn_attention_desc &desc, Arrays &arr) {
  pat_rng rng;
  pat_rng_seed(&rng, 777);
  pat_case_describe(c, &desc, &arr, &rng);
}

// The case through the chooser, which must pick `kernel` (the wgmma kernel unless told).
void PrefillWgmma::check(const Case &c, uint64_t seed, const char *kernel) {
  pat_case_check(emu_, ref_, c, seed, [&](const posattn_attention_desc &desc) {
    char msg[256] = {0};
    const char *chosen = pa_drift_shim_prefill_kernel(&desc, c.in, c.out, msg, sizeof msg);
    ASSERT_NE(chosen, nullptr) << msg;
    ASSERT_EQ(std::string(chosen), kernel);
  });
}

constexpr posattn_dtype BF16 = POSATTN_DTYPE_BF16, F16 = POSATTN_DTYPE_F16, F32 = POSATTN_DTYPE_F32;

// ---- head dim 128 ----
TEST_F(PrefillWgmma, hd128_bf16_noncausal_odd_gqa) {
  check(Case{"hd128 bf16 97x131", BF16, BF16, 1, 4, 2, 128, 97, 131}, 1);
}
TEST_F(PrefillWgmma, hd128_f16_causal_multi_tile_mqa_out_f32) {
  Case c{"hd128 f16 causal", F16, F32, 1, 3, 1, 128, 150, 300};
  c.causal = 1;
  check(c, 2);
}
TEST_F(PrefillWgmma, hd128_bf16_causal_more_queries_than_keys) {
  Case c{"hd128 q>kv", BF16, F16, 2, 2, 1, 128, 150, 70};  // bottom-right: 80 rows see nothing
  c.causal = 1;
  check(c, 3);
}
TEST_F(PrefillWgmma, hd128_f16_varlen_causal) {
  Case c{"hd128 varlen", F16, F16, 2, 2, 2, 128, 150, 150};
  c.cu_q = {0, 17, 167};
  c.causal = 1;
  check(c, 4);
}

// ---- positional encodings (the policies of kernels/pe/*.cuh) ----
TEST_F(PrefillWgmma, hd128_bf16_rope_neox_partial_causal) {
  Case c{"hd128 rope", BF16, F32, 1, 2, 1, 128, 130, 130};
  c.pe = POSATTN_PE_ROPE;
  c.rotary_dim = 64;
  c.causal = 1;
  check(c, 40);
}
TEST_F(PrefillWgmma, hd64_f16_rope_gptj_positions_varlen) {
  Case c{"hd64 rope gptj", F16, F16, 2, 2, 2, 64, 140, 140};
  c.cu_q = {0, 9, 149};
  c.pe = POSATTN_PE_ROPE;
  c.layout = POSATTN_ROPE_GPTJ;
  c.positions = true;
  check(c, 41);
}
TEST_F(PrefillWgmma, hd64_bf16_alibi_window) {
  Case c{"hd64 alibi", BF16, BF16, 1, 2, 2, 64, 200, 200};
  c.pe = POSATTN_PE_ALIBI;
  c.causal = 1;
  c.wl = 60;
  check(c, 42);
}
TEST_F(PrefillWgmma, hd128_f16_t5_positions) {
  Case c{"hd128 t5", F16, F32, 1, 2, 1, 128, 90, 150};
  c.positions = true;
  c.t5_max_distance = 4000;
  check(c, 43);
}
TEST_F(PrefillWgmma, hd64_bf16_kerple_log_and_power_causal) {
  for (posattn_pe_kind k : {POSATTN_PE_KERPLE_LOG, POSATTN_PE_KERPLE_POWER}) {
    Case c{"hd64 kerple", BF16, BF16, 1, 2, 1, 64, 150, 150};
    c.pe = k;
    c.causal = 1;
    check(c, 44 + int(k));
  }
}
// The distance-band kinds (ALiBi, T5, KERPLE log/power) at hd128: positions in token order (the
// per-warpgroup distance band) and explicit positions (the per-element path), odd shapes (partial
// tiles, queries shorter than keys: bottom-right shift), causal and not, softcap, varlen.
TEST_F(PrefillWgmma, hd128_band_kinds_token_order_and_explicit_positions) {
  const posattn_pe_kind kinds[] = {POSATTN_PE_ALIBI, POSATTN_PE_T5, POSATTN_PE_KERPLE_LOG,
                                   POSATTN_PE_KERPLE_POWER};
  int n = 0;
  for (posattn_pe_kind k : kinds)
    for (int v = 0; v < 3; ++v, ++n) {
      Case c{"", n % 2 ? F16 : BF16, n % 3 ? BF16 : F32, 1, 2, 1, 128, 97, 203};
      const std::string name = "hd128 band kind " + std::to_string(int(k)) + " variant " +
                               std::to_string(v);
      c.name = name.c_str();
      c.pe = k == POSATTN_PE_T5 ? POSATTN_PE_NONE : k;
      if (k == POSATTN_PE_T5) c.t5_max_distance = 300;
      c.positions = v == 2;
      c.causal = v != 1;
      if (v == 1) c.softcap = 20.f;
      if (v == 2 && n % 2) {  // varlen self-attention with explicit positions
        c.batch = 2;
        c.q_len = c.kv_len = 140;
        c.cu_q = {0, 23, 163};
      }
      check(c, 300 + n);
    }
}
// The per-warpgroup distance band (positions in token order) of every band kind x every mask at
// hd64 and hd128: several key tiles in a row (the ring's steady state: one new distance per
// thread and tile), tiles skipped by documents + anchors (a whole new window in the other ring),
// windows, causal with more queries than keys (empty rows), varlen, GQA, softcap, odd lengths.
// Planted faults checked by hand: one distance short in the steady fill fails every case; the
// whole-window fill into the ring in use gives the racecheck's report (documents).
// FIRE (its band holds psi; the rows' segment ranges and kink trips, wgmma.cuh "FIRE band"): the
// test MLP has 16 kinks in [0, 1], so rows near the diagonal cross several per tile; L = 8 on odd
// masks makes every row's normaliser differ (positions beyond L), the default L = 512 keeps it
// one value for most rows.
TEST_F(PrefillWgmma, band_kinds_times_every_mask_hd64_hd128) {
  const posattn_pe_kind kinds[] = {POSATTN_PE_ALIBI, POSATTN_PE_T5, POSATTN_PE_KERPLE_LOG,
                                   POSATTN_PE_KERPLE_POWER, POSATTN_PE_FIRE};
  const char *names[] = {"alibi", "t5", "kerple_log", "kerple_power", "fire"};
  int n = 0;
  for (int d : {64, 128})
    for (int ki = 0; ki < 5; ++ki)
      for (int mask = 0; mask < 6; ++mask, ++n) {
        Case c{"", n % 2 ? F16 : BF16, n % 3 ? BF16 : F32, 1, 2, 1, d, 97, 403};
        const std::string name = "hd" + std::to_string(d) + " " + names[ki] + " mask " +
                                 std::to_string(mask);
        c.name = name.c_str();
        c.pe = kinds[ki] == POSATTN_PE_T5 ? POSATTN_PE_NONE : kinds[ki];
        if (kinds[ki] == POSATTN_PE_T5) c.t5_max_distance = 700;
        if (kinds[ki] == POSATTN_PE_FIRE && mask % 2) c.fire_L = 8;
        switch (mask) {
          case 0: break;  // non-causal, 97 queries x 403 keys: 4 key tiles in a row
          case 1:         // causal, more queries than keys: empty rows
            c.q_len = 301;
            c.kv_len = 259;
            c.causal = 1;
            break;
          case 2:  // causal sliding window
            c.q_len = c.kv_len = 389;
            c.causal = 1;
            c.wl = 150;
            break;
          case 3:  // documents with anchors: tiles skipped
            c.q_len = c.kv_len = 521;
            c.causal = 1;
            c.docs = 4;
            break;
          case 4:  // varlen self-attention, GQA 4:2
            c.batch = 2;
            c.hq = 4;
            c.hkv = 2;
            c.q_len = c.kv_len = 269;
            c.cu_q = {0, 269, 400};
            c.causal = 1;
            break;
          case 5:  // softcap, MQA, odd lengths
            c.hq = 3;
            c.q_len = 131;
            c.kv_len = 277;
            c.softcap = 15.f;
            break;
        }
        check(c, 500 + n);
      }
}
// The band's rings, ordered by the ping-pong barriers only, in random thread orders (documents:
// skipped tiles too).
TEST_F(PrefillWgmma, band_shuffled_thread_orders) {
  Case c{"hd128 kerple_power docs shuffled", BF16, BF16, 1, 1, 1, 128, 521, 521};
  c.pe = POSATTN_PE_KERPLE_POWER;
  c.causal = 1;
  c.docs = 4;
  check_shuffled(c, 560, {31, 32});
}
// FIRE's tables and the bands share the shared memory beside the tiles: with the widest MLP
// (1024 hidden units, every kink at x > 0: 1025 segments and 4096 cells, ~28 KiB of tables)
// they fit at hd128 (the band, every tile crossing many kinks) but not at hd256, where the call
// takes the per-element path (a band that did not fit would fail the launch: 227 KiB; planted:
// uses_band without its fit test fails the hd256 case).
TEST_F(PrefillWgmma, fire_widest_mlp_band_hd128_per_element_hd256) {
  for (int d : {128, 256}) {
    Case c{d == 128 ? "hd128 fire width 1024" : "hd256 fire width 1024", BF16, BF16, 1, 2, 1, d,
           150, 290};
    c.pe = POSATTN_PE_FIRE;
    c.fire_width = 1024;
    c.fire_all_kinks = true;
    c.fire_L = 8;
    c.causal = 1;
    check(c, 580 + d);
  }
}
// FIRE's band takes biases within kFireBandBound (fire_bias_bound <= 1024): near the bound its
// row offsets (intercept and kinks, thousands in raw units) round like an fp32 bias, in raw units
// and with softcap; larger biases take the per-element path. Planted: a bound of 2^16 fails the
// ~6e3 case (error 2x the bound), no bound gives NaN rows at ~1e35.
TEST_F(PrefillWgmma, fire_large_biases_band_huge_biases_per_element) {
  for (const pat_fire_bias_case &k : kPatFireBiasCases) {
    Case c{k.what, BF16, F32, 1, 2, 1, 64, 100, 150};
    c.pe = POSATTN_PE_FIRE;
    c.fire_w2_scale = k.w2;
    c.softcap = k.softcap;
    c.causal = 1;
    check(c, 590);
  }
}
TEST_F(PrefillWgmma, fire_band_shuffled_thread_orders) {
  Case c{"hd128 fire docs shuffled", F16, BF16, 1, 1, 1, 128, 521, 521};
  c.pe = POSATTN_PE_FIRE;
  c.causal = 1;
  c.docs = 4;
  c.fire_L = 8;
  check_shuffled(c, 570, {33, 34});
}
TEST_F(PrefillWgmma, hd128_bf16_alibi_varlen_window_token_order) {
  Case c{"hd128 alibi varlen window", BF16, BF16, 2, 2, 2, 128, 150, 150};
  c.cu_q = {0, 131, 281};
  c.pe = POSATTN_PE_ALIBI;
  c.causal = 1;
  c.wl = 40;
  check(c, 320);
}
TEST_F(PrefillWgmma, hd64_f16_fire_causal) {
  Case c{"hd64 fire", F16, F16, 1, 2, 2, 64, 140, 140};
  c.pe = POSATTN_PE_FIRE;
  c.causal = 1;
  check(c, 50);
}

// ---- head dim 64 ----
TEST_F(PrefillWgmma, hd64_bf16_one_partial_tile_17_causal_gqa) {
  Case c{"hd64 bf16 17", BF16, BF16, 1, 4, 2, 64, 17, 17};
  c.causal = 1;
  check(c, 5);
}
TEST_F(PrefillWgmma, hd64_f16_varlen_noncausal_softcap) {
  Case c{"hd64 varlen softcap", F16, BF16, 3, 2, 1, 64, 140, 140};
  c.cu_q = {0, 140, 141, 270};
  c.softcap = 30.f;
  check(c, 6);
}
TEST_F(PrefillWgmma, hd64_bf16_documents_with_anchors_skip_tiles) {
  Case c{"hd64 docs", BF16, BF16, 1, 1, 1, 64, 390, 390};
  c.causal = 1;
  c.docs = 4;
  check(c, 7);
}
TEST_F(PrefillWgmma, hd64_f16_sliding_window_skips_tiles) {
  Case c{"hd64 window", F16, F16, 1, 2, 2, 64, 300, 300};
  c.causal = 1;
  c.wl = 40;
  check(c, 8);
}

// The producer/consumer protocol (mbarrier ring, parities over several laps of a 2-stage ring)
// with the block's ready threads run in random orders.
TEST_F(PrefillWgmma, shuffled_thread_orders) {
  Case c{"hd64 shuffled", BF16, BF16, 1, 2, 1, 64, 130, 600};
  c.causal = 1;
  check_shuffled(c, 30, {11, 12, 13});
}

// Strided q/k/v (the TMA maps' strides): [batch][heads][seq][d + 8] (head-major, padded rows)
// instead of the contiguous [batch][seq][heads][d].
TEST_F(PrefillWgmma, hd128_bf16_head_major_padded_strides_causal_gqa) {
  const Case c{"hd128 strided", BF16, BF16, 2, 4, 2, 128, 130, 150, {}, {}, 1};
  posattn_attention_desc desc;
  Arrays arr;
  describe(c, desc, arr);
  ASSERT_STREQ(pa_drift_shim_prefill_kernel(&desc, BF16, BF16, nullptr, 0), "wgmma");
  pat_rng rng;
  pat_rng_seed(&rng, 60);
  pat_inputs in;
  ASSERT_EQ(pat_inputs_random(&in, &desc, BF16, &rng, 1.0), 0);
  const int pitch = c.d + 8;
  std::vector<void *> bufs;
  auto restride = [&](posattn_tensor &t, int len, int heads) {
    const size_t n = size_t(c.batch) * heads * len * pitch;
    uint16_t *dst = static_cast<uint16_t *>(std::aligned_alloc(256, (n * 2 + 255) / 256 * 256));
    for (size_t i = 0; i < n; ++i) dst[i] = 0x7fc0;  // NaN in the padding: must never be read
    const uint16_t *src = static_cast<const uint16_t *>(t.data);
    for (int b = 0; b < c.batch; ++b)
      for (int i = 0; i < len; ++i)
        for (int h = 0; h < heads; ++h)
          for (int f = 0; f < c.d; ++f)
            dst[((size_t(b) * heads + h) * len + i) * pitch + f] =
                src[b * t.stride_batch + i * t.stride_seq + h * t.stride_head + f];
    t.data = dst;
    t.stride_head = int64_t(len) * pitch;
    t.stride_seq = pitch;
    t.stride_batch = int64_t(heads) * len * pitch;
    bufs.push_back(dst);
  };
  pat_inputs strided = in;
  restride(strided.tq, c.q_len, c.hq);
  restride(strided.tk, c.kv_len, c.hkv);
  restride(strided.tv, c.kv_len, c.hkv);
  pat_checked r;
  pat_check_forward(emu_, ref_, &desc, &strided, BF16, BF16, &r);
  for (void *b : bufs) std::free(b);
  pat_inputs_free(&in);
}

// ---- sinks (posattn.h "Sink"): one more softmax term e^sink in the epilogue ----
TEST_F(PrefillWgmma, hd64_bf16_sinks_causal_more_queries_than_keys) {
  Case c{"hd64 sinks q>kv", BF16, F32, 1, 2, 1, 64, 150, 70};  // rows seeing no key: lse = sink
  c.causal = 1;
  c.sinks = true;
  check(c, 70);
}
TEST_F(PrefillWgmma, hd128_f16_sinks_varlen_window_alibi) {
  Case c{"hd128 sinks varlen", F16, BF16, 2, 2, 1, 128, 150, 150};
  c.cu_q = {0, 21, 171};
  c.causal = 1;
  c.wl = 50;
  c.pe = POSATTN_PE_ALIBI;
  c.sinks = true;
  check(c, 71);
}

// ---- xPos: K transformed by the producer warpgroup after TMA lands (one key row per thread),
// Q by the consumers; the centred decay of mma.cuh. bf16 while the call-centred factors stay
// within 2^64 (pa_prefill_prerotates_k): K transformed once by the key pre-pass around the
// call's centre, Q around the same centre, no producer transform ----
TEST_F(PrefillWgmma, hd64_f16_xpos_gptj_causal) {
  Case c{"hd64 xpos", F16, F16, 1, 2, 2, 64, 150, 150};
  c.pe = POSATTN_PE_XPOS;
  c.layout = POSATTN_ROPE_GPTJ;
  c.causal = 1;
  check(c, 120);
}
TEST_F(PrefillWgmma, hd128_bf16_xpos_neox_partial_q_shorter_gqa) {
  Case c{"hd128 xpos 97x161", BF16, F32, 1, 4, 2, 128, 97, 161};
  c.pe = POSATTN_PE_XPOS;
  c.rotary_dim = 64;
  c.causal = 1;
  check(c, 121);
}
TEST_F(PrefillWgmma, hd128_f16_xpos_varlen_window_default_scale) {
  Case c{"hd128 xpos varlen", F16, BF16, 2, 2, 1, 128, 300, 300};
  c.cu_q = {0, 37, 300};
  c.pe = POSATTN_PE_XPOS;
  c.layout = POSATTN_ROPE_GPTJ;
  c.causal = 1;
  c.wl = 90;
  c.xpos_scale_base = 512;
  check(c, 122);
}
// bf16 both ways: scale_base 2 decays ~0.9 bits per position, so 300 keys (150 around the
// centre: 135 bits) take the in-tile transform, 100 keys (45 bits) the pre-pass; and more queries
// than keys (empty rows, query positions below 0 in the call-centred factors).
TEST_F(PrefillWgmma, hd128_bf16_xpos_prepass_range_and_empty_rows) {
  struct {
    const char *what;
    int lq, lk;
  } cases[] = {{"hd128 xpos sb 2, 300 keys: in-tile transform", 300, 300},
               {"hd128 xpos sb 2, 100 keys: pre-pass", 100, 100},
               {"hd128 xpos sb 16, 140 queries 60 keys: pre-pass", 140, 60}};
  for (const auto &k : cases) {
    Case c{k.what, BF16, BF16, 1, 2, 1, 128, k.lq, k.lk};
    c.pe = POSATTN_PE_XPOS;
    c.causal = 1;
    c.xpos_scale_base = k.lq > k.lk ? 16 : 2;
    check(c, 124);
  }
}
// hd256 xPos: the wgmma kernel only through the key pre-pass (no in-tile transform there):
// 100 keys at scale_base 2 (45 bits) on it, 300 keys (135 bits) on the sm80 kernel; both
// against REF.
TEST_F(PrefillWgmma, hd256_bf16_xpos_prepass_or_sm80) {
  for (int n : {100, 300}) {
    Case c{n == 100 ? "hd256 xpos 100: pre-pass" : "hd256 xpos 300: sm80 kernel", BF16, BF16, 1,
           2, 1, 256, n, n};
    c.pe = POSATTN_PE_XPOS;
    c.causal = 1;
    c.xpos_scale_base = 2;
    check(c, 125, n == 100 ? "wgmma" : "mma");
  }
}
TEST_F(PrefillWgmma, hd128_bf16_xpos_shuffled_thread_orders) {
  Case c{"hd128 xpos shuffled", BF16, BF16, 1, 2, 1, 128, 130, 400};
  c.pe = POSATTN_PE_XPOS;
  c.causal = 1;
  check_shuffled(c, 123, {31, 32});
}

// ---- head dim 256 (Bc = 64 keys per tile) ----
// Shapes are small: the emulator runs the 384-thread block with 128 fp32 accumulators of O per
// consumer thread. Odd lengths with q_len < kv_len (bottom-right causal), several key tiles with a
// partial last one.
TEST_F(PrefillWgmma, hd256_bf16_noncausal_odd_gqa_q_shorter) {
  check(Case{"hd256 bf16 97x161", BF16, BF16, 1, 4, 2, 256, 97, 161}, 80);
}
TEST_F(PrefillWgmma, hd256_f16_causal_odd_mqa_out_f32_sinks) {
  Case c{"hd256 f16 causal 97x161", F16, F32, 1, 3, 1, 256, 97, 161};
  c.causal = 1;
  c.sinks = true;
  check(c, 81);
}
TEST_F(PrefillWgmma, hd256_bf16_causal_more_queries_than_keys) {
  Case c{"hd256 q>kv", BF16, F16, 2, 2, 1, 256, 97, 40};  // bottom-right: 57 rows see nothing
  c.causal = 1;
  check(c, 82);
}
TEST_F(PrefillWgmma, hd256_f16_varlen_causal_softcap) {
  Case c{"hd256 varlen softcap", F16, F16, 2, 2, 2, 256, 140, 140};
  c.cu_q = {0, 13, 140};
  c.causal = 1;
  c.softcap = 30.f;
  check(c, 83);
}

// Every PE kind the kernel serves x every mask kind (none, causal, causal + sliding window,
// causal + documents with anchors), once each at hd256, bf16 and f16 alternating, 97 x 161
// (window and documents: self-attention 161 x 161, where tiles get skipped). (xPos is served at
// hd64 and hd128 only.)
TEST_F(PrefillWgmma, hd256_every_pe_times_every_mask) {
  const posattn_pe_kind kinds[] = {POSATTN_PE_NONE,       POSATTN_PE_ROPE,
                                   POSATTN_PE_ALIBI,      POSATTN_PE_T5,
                                   POSATTN_PE_KERPLE_LOG, POSATTN_PE_KERPLE_POWER,
                                   POSATTN_PE_FIRE};
  const char *names[] = {"none", "rope", "alibi", "t5", "kerple_log", "kerple_power", "fire"};
  int n = 0;
  for (int ki = 0; ki < 7; ++ki)
    for (int mask = 0; mask < 4; ++mask, ++n) {
      const posattn_pe_kind k = kinds[ki];
      const bool self = mask >= 2;
      Case c{"", n % 2 ? F16 : BF16, n % 3 ? BF16 : F32, 1, 2, 1, 256, self ? 161 : 97, 161};
      const std::string name = std::string("hd256 pe ") + names[ki] + " mask " +
                               std::to_string(mask);
      c.name = name.c_str();
      c.pe = k == POSATTN_PE_T5 ? POSATTN_PE_NONE : k;
      if (k == POSATTN_PE_T5) c.t5_max_distance = 4000;  // the hd256 limit is 4095
      if (k == POSATTN_PE_ROPE) {
        c.rotary_dim = mask % 2 ? 256 : 128;
        c.layout = mask < 2 ? POSATTN_ROPE_NEOX : POSATTN_ROPE_GPTJ;
      }
      c.positions = k == POSATTN_PE_T5 || (k == POSATTN_PE_ROPE && mask == 1);
      c.causal = mask >= 1;
      if (mask == 2) c.wl = 50;
      if (mask == 3) c.docs = 3;
      check(c, 100 + n);
    }
}

// The mbarrier ring at hd256 (a different Bc, several laps) with threads run in random orders.
TEST_F(PrefillWgmma, hd256_shuffled_thread_orders) {
  Case c{"hd256 shuffled", F16, BF16, 1, 1, 1, 256, 70, 300};
  c.causal = 1;
  check_shuffled(c, 69, {21});
}

// The chooser: wgmma on an sm_90 target only where it serves; mma otherwise.
TEST_F(PrefillWgmma, chooser_prefers_wgmma_on_sm90_only) {
  posattn_attention_desc desc;
  Arrays docs;
  char msg[256];
  describe(Case{"", BF16, BF16, 1, 1, 1, 128, 8, 8}, desc, docs);
  EXPECT_STREQ(pa_drift_shim_prefill_kernel(&desc, BF16, BF16, msg, sizeof msg), "wgmma");
  pa_prefill_set_emu_target_sm(80);
  EXPECT_STREQ(pa_drift_shim_prefill_kernel(&desc, BF16, BF16, msg, sizeof msg), "mma");
  pa_prefill_set_emu_target_sm(90);
  desc.pe.kind = POSATTN_PE_XPOS;  // causal with default positions only (as the sm80 kernel)
  desc.causal = 1;
  EXPECT_STREQ(pa_drift_shim_prefill_kernel(&desc, BF16, BF16, msg, sizeof msg), "wgmma");
  desc.causal = 0;
  EXPECT_STRNE(pa_drift_shim_prefill_kernel(&desc, BF16, BF16, msg, sizeof msg), "wgmma");
  desc.causal = 1;
  desc.head_dim = 256;  // xPos at hd256: bf16 through the key pre-pass (lengths decide at
                        // forward time: hd256_bf16_xpos_prepass_or_sm80), f16 the sm80 kernel
  EXPECT_STREQ(pa_drift_shim_prefill_kernel(&desc, BF16, BF16, msg, sizeof msg), "wgmma");
#if PAT_FULL_MMA_GRID
  EXPECT_STREQ(pa_drift_shim_prefill_kernel(&desc, F16, BF16, msg, sizeof msg), "mma");
#else  // a pruned build may lack that instance (then SIMT); never the sm_90a kernel
  EXPECT_STRNE(pa_drift_shim_prefill_kernel(&desc, F16, BF16, msg, sizeof msg), "wgmma");
#endif
  desc.head_dim = 64;
  EXPECT_STREQ(pa_drift_shim_prefill_kernel(&desc, F16, BF16, msg, sizeof msg), "wgmma");
  desc.pe.kind = POSATTN_PE_NONE;
  desc.head_dim = 96;
  EXPECT_STRNE(pa_drift_shim_prefill_kernel(&desc, BF16, BF16, msg, sizeof msg), "wgmma");
  desc.head_dim = 256;
  EXPECT_STREQ(pa_drift_shim_prefill_kernel(&desc, F16, BF16, msg, sizeof msg), "wgmma");
  // T5's shared table beside the hd256 tiles: max_distance <= 4095, beyond that the sm80 kernel
  Arrays t5;
  Case c{"", BF16, BF16, 1, 1, 1, 256, 8, 8};
  c.t5_max_distance = 4095;
  describe(c, desc, t5);
  EXPECT_STREQ(pa_drift_shim_prefill_kernel(&desc, BF16, BF16, msg, sizeof msg), "wgmma");
  desc.pe.t5.max_distance = 4096;
  EXPECT_STRNE(pa_drift_shim_prefill_kernel(&desc, BF16, BF16, msg, sizeof msg), "wgmma");
  EXPECT_EQ(posattn_supported(emu_, &desc, BF16, BF16), POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(emu_);
  c.d = 128;
  c.t5_max_distance = 8000;
  describe(c, desc, t5);
  EXPECT_STREQ(pa_drift_shim_prefill_kernel(&desc, BF16, BF16, msg, sizeof msg), "wgmma");
}

// NaN RULE (posattn.h): a NaN / inf in q, k or v poisons exactly the rows that see it, also when
// the key shares a masked tile with rows that do not see it (the producer's isolate pass), at
// hd64 (Bc = 128), hd256 (Bc = 64: the poisoned keys 17, 70 and 130 lie in tiles 0, 1 and 2) and
// hd128 with xPos (the producer warpgroup's per-row pass after the K transform); hd64 in bf16 and
// f16, hd256 in f16, hd128 xPos in bf16.
TEST_F(PrefillWgmma, nonfinite_inputs_poison_only_the_rows_that_see_them) {
  const double kNaN = std::numeric_limits<double>::quiet_NaN();
  const double kInf = std::numeric_limits<double>::infinity();
  for (int d : {64, 256, 128}) {
    const pat_poison poisons[] = {
        {'v', 0, 17, 0, 5, kNaN},       // a future key of earlier rows in the first tile
        {'v', 1, 130, 0, d - 1, kInf},  // a later key tile, the last feature
        {'v', 0, 70, 0, d / 2 + 3, -kInf},
        {'k', 1, 9, 0, 0, kNaN},
        {'q', 0, 30, 1, 2, -kInf},
    };
    for (posattn_dtype dt : {BF16, F16}) {
      if ((d == 256 && dt == BF16) || (d == 128 && dt == F16)) continue;  // emulator time
      Case c{"nan", dt, F32, 2, 2, 1, d, 140, 140};
      c.causal = 1;
      if (d == 128) c.pe = POSATTN_PE_XPOS;  // the producer warpgroup's per-row pass
      if (d == 64) c.pe = POSATTN_PE_FIRE;   // its band: raw logits, each row's offset once
      posattn_attention_desc desc;
      Arrays docs;
      describe(c, desc, docs);
      SCOPED_TRACE(std::string(posattn_dtype_string(dt)) + " hd" + std::to_string(d));
      ASSERT_STREQ(pa_drift_shim_prefill_kernel(&desc, dt, F32, nullptr, 0), "wgmma");
      pat_rng rng;
      pat_rng_seed(&rng, 99);
      pat_inputs in;
      ASSERT_EQ(pat_inputs_random(&in, &desc, dt, &rng, 1.0), 0);
      for (const pat_poison &pz : poisons) {
        const int64_t n = pat_expect_nan_rule(emu_, &desc, &in, dt, pz);
        EXPECT_GT(n, 0);
        EXPECT_LT(n, 2 * 140 * 2);
      }
      pat_inputs_free(&in);
    }
  }
}

}  // namespace
