// EMU prefill kernels vs REF (DESIGN.md section 5 rule) on the RoPE fields of the model families
// in docs/rope-configs.md: a rotated block that does not start at feature 0 (DeepSeek MLA), Gemma's
// proportional layout (zero-frequency pairs, exponent over the whole head), DeepSeek's YaRN
// attention factor, and an fp64 inv_freq table with zeros, with FAST and EXACT angles. The chooser
// sends bf16/f16 with head dim 64 to the tensor-core kernel and f32 / other head dims to the SIMT
// kernel (test_prefill_mma.cpp), so both kernels see every field.
#include <gtest/gtest.h>

#include <vector>

#include "pa_test_check.hpp"
#include "pa_test_shim.h"

namespace {

class EmuRopeConfigs : public pat_emu_ref_test {
 protected:
  // Runs desc (shapes and pe set by the caller) on EMU and checks it against REF. Positions are
  // random in [0, max_pos] when max_pos > 0.
  void check(posattn_attention_desc &desc, posattn_dtype in, posattn_dtype out, int32_t max_pos,
             uint64_t seed) {
    pat_rng rng;
    pat_rng_seed(&rng, seed);
    std::vector<int32_t> qpos, kvpos;
    if (max_pos > 0) {
      for (int64_t i = 0; i < pat_q_rows(&desc); ++i) qpos.push_back(pat_rng_int(&rng, 0, max_pos));
      for (int64_t i = 0; i < pat_kv_rows(&desc); ++i) kvpos.push_back(pat_rng_int(&rng, 0, max_pos));
      desc.q_positions = qpos.data();
      desc.kv_positions = kvpos.data();
    }
    ASSERT_EQ(posattn_supported(emu_, &desc, in, out), POSATTN_STATUS_SUCCESS)
        << posattn_context_last_message(emu_);
    pat_inputs inputs;
    ASSERT_EQ(pat_inputs_random(&inputs, &desc, in, &rng, 1.0), 0);
    pat_checked r;
    pat_check_forward(emu_, ref_, &desc, &inputs, in, out, &r);
    if (!HasFatalFailure()) pat_expect_lse_rule(r, in);
    pat_inputs_free(&inputs);
    desc.q_positions = desc.kv_positions = nullptr;
  }
};

posattn_attention_desc Desc(int hq, int hkv, int d, int q_len, int kv_len, int causal) {
  posattn_attention_desc desc;
  posattn_attention_desc_init(&desc);
  desc.batch = 2;
  desc.q_heads = hq;
  desc.kv_heads = hkv;
  desc.head_dim = d;
  desc.q_len = q_len;
  desc.kv_len = kv_len;
  desc.causal = causal;
  desc.pe.kind = POSATTN_PE_ROPE;
  return desc;
}

// DeepSeek-V3 shape, scaled down: the rotated block is the last features of the head, GPT-J
// pairs, YaRN with mscale = 0.8 / mscale_all_dim = 1 (attention factor 0.96...) so a kernel that
// ignored the ratio or rotated the wrong features fails. The softmax multiplier of the model goes
// into softmax_scale, as the document says.
TEST_F(EmuRopeConfigs, attention_rope_offset_yarn_mscale) {
  for (posattn_dtype dt : {POSATTN_DTYPE_BF16, POSATTN_DTYPE_F32}) {  // tensor-core, SIMT
    SCOPED_TRACE(posattn_dtype_string(dt));
    posattn_attention_desc desc = Desc(4, 2, 64, 37, 45, 1);
    posattn_rope_params &r = desc.pe.rope;
    // fp32 FAST angles are off by ~p 2^-24 rad, above the fp32 rule by design (pe-spec 1.4)
    r.angle_mode = dt == POSATTN_DTYPE_F32 ? POSATTN_ANGLE_EXACT : POSATTN_ANGLE_FAST;
    r.layout = POSATTN_ROPE_GPTJ;
    r.rotary_offset = 40;
    r.rotary_dim = 24;
    r.scaling = POSATTN_ROPE_SCALING_YARN;
    r.factor = 40;
    r.original_max_position = 64;
    r.mscale = 0.8;
    r.mscale_all_dim = 1;
    double mult = 0;
    ASSERT_EQ(posattn_pe_rope_softmax_multiplier(&r, 64, &mult, nullptr, 0), POSATTN_STATUS_SUCCESS);
    desc.softmax_scale = float(mult / 8.0);  // 1/sqrt(64) times the multiplier
    check(desc, dt, dt, 300, 11);
    r.layout = POSATTN_ROPE_NEOX;  // odd offset, NeoX pairs inside the block
    r.rotary_offset = 13;
    r.rotary_dim = 50;  // features [13, 63)
    check(desc, dt, dt, 300, 12);
  }
}

// Gemma 4's proportional layout: rotary_dim = head_dim, 1/4 of the pairs turn (base 1e6, the
// exponent over the whole head), the rest have inv_freq 0. EXACT angles at positions up to 2e5
// build their tables from the fp64 frequencies, zero pairs included.
TEST_F(EmuRopeConfigs, attention_rope_proportional) {
  for (posattn_dtype dt : {POSATTN_DTYPE_F16, POSATTN_DTYPE_F32}) {
    SCOPED_TRACE(posattn_dtype_string(dt));
    posattn_attention_desc desc = Desc(2, 1, 64, 29, 29, 1);
    desc.pe.rope.base = 1e6;
    desc.pe.rope.active_pairs = 8;
    if (dt == POSATTN_DTYPE_F16) check(desc, dt, POSATTN_DTYPE_F32, 0, 21);  // FAST angles
    desc.pe.rope.angle_mode = POSATTN_ANGLE_EXACT;
    desc.pe.rope.scaling = POSATTN_ROPE_SCALING_LINEAR;
    desc.pe.rope.factor = 8;
    check(desc, dt, POSATTN_DTYPE_F32, 200000, 22);
  }
}

// The fp64 inv_freq table with zero entries (the other way to write proportional RoPE), on the
// SIMT kernel (head dim 40), EXACT angles at positions up to 1e6. In f32 the section 5 rule sees
// an angle error of ~1e-3 rad, so EXACT tables built from a float-rounded copy of these
// frequencies (relative error ~3e-8, ~0.03 rad at 1e6) would fail here.
TEST_F(EmuRopeConfigs, attention_rope_inv_freq_table_with_zeros) {
  posattn_attention_desc desc = Desc(3, 3, 40, 21, 33, 0);
  std::vector<double> table(20, 0.0);
  for (int i = 0; i < 6; ++i) table[size_t(i)] = 1.0 / (1.0 + 0.37 * i * i);
  desc.pe.rope.scaling = POSATTN_ROPE_SCALING_INV_FREQ;
  desc.pe.rope.inv_freq = table.data();
  desc.pe.rope.angle_mode = POSATTN_ANGLE_EXACT;
  check(desc, POSATTN_DTYPE_BF16, POSATTN_DTYPE_BF16, 150000, 31);
  check(desc, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32, 1000000, 32);
}

}  // namespace
