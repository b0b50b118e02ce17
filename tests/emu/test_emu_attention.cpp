// EMU backend vs REF through posattn.h: the same attention calls on both contexts, compared with
// the DESIGN.md section 5 rule (REF computed in fp64 and delivered in fp32 is the gold answer; the
// baseline is the naive low-precision attention of the test shim).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "pa_prefill_case.hpp"
#include "pa_test_shim.h"

namespace {

using Case = pat_case;

class EmuAttention : public pat_emu_ref_test {
 protected:
  void check(Case c, uint64_t seed) {  // positions in [0, 300], 2 anchor tokens with documents
    c.max_position = 300;
    c.anchors = 2;
    pat_case_check(emu_, ref_, c, seed);
  }
};

TEST_F(EmuAttention, attention_dense_gqa_causal_bf16_with_empty_rows) {
  Case c{"bf16 gqa causal q40 kv17", POSATTN_DTYPE_BF16, POSATTN_DTYPE_BF16, 1, 4, 2, 64, 40, 17, {}, {}};
  c.causal = 1;
  check(c, 1);
}
TEST_F(EmuAttention, attention_window_alibi_f16_batch2) {
  Case c{"f16 window alibi", POSATTN_DTYPE_F16, POSATTN_DTYPE_F16, 2, 3, 3, 32, 33, 33, {}, {}};
  c.wl = 5; c.wr = 3; c.pe = POSATTN_PE_ALIBI;
  check(c, 2);
}
TEST_F(EmuAttention, attention_f32_odd_sizes) {
  Case c{"f32 q97 kv1", POSATTN_DTYPE_F32, POSATTN_DTYPE_F32, 1, 2, 1, 16, 97, 1, {}, {}};
  check(c, 3);
  Case c2{"f32 q1 kv97 alibi softcap", POSATTN_DTYPE_F32, POSATTN_DTYPE_F32, 2, 2, 2, 18, 1, 97, {}, {}};
  c2.pe = POSATTN_PE_ALIBI; c2.softcap = 5.f;
  check(c2, 4);
}
TEST_F(EmuAttention, attention_varlen_rope_neox_partial) {
  Case c{"varlen rope neox partial", POSATTN_DTYPE_BF16, POSATTN_DTYPE_F32, 3, 2, 1, 64, 70, 70,
         {0, 17, 17 + 70, 17 + 70 + 1}, {0, 30, 30 + 70, 30 + 70 + 5}};
  c.causal = 1; c.pe = POSATTN_PE_ROPE; c.rotary_dim = 32;
  check(c, 5);
}
TEST_F(EmuAttention, attention_rope_gptj_positions_f16) {
  Case c{"rope gptj positions", POSATTN_DTYPE_F16, POSATTN_DTYPE_BF16, 2, 2, 2, 32, 20, 45, {}, {}};
  c.pe = POSATTN_PE_ROPE; c.layout = POSATTN_ROPE_GPTJ; c.positions = true;
  check(c, 6);
}
TEST_F(EmuAttention, attention_documents_with_anchors) {
  Case c{"documents + anchors", POSATTN_DTYPE_BF16, POSATTN_DTYPE_BF16, 2, 2, 2, 32, 80, 80, {}, {}};
  c.causal = 1; c.docs = 4;
  check(c, 7);
}
TEST_F(EmuAttention, attention_mqa_head_dim_256) {
  Case c{"mqa hd256", POSATTN_DTYPE_BF16, POSATTN_DTYPE_BF16, 1, 3, 1, 256, 5, 70, {}, {}};
  check(c, 8);
}

TEST_F(EmuAttention, attention_unsupported_configurations_say_what_is_missing) {
  posattn_attention_desc desc;
  posattn_attention_desc_init(&desc);
  desc.batch = 1; desc.q_heads = 2; desc.kv_heads = 2; desc.head_dim = 512; desc.q_len = 4; desc.kv_len = 4;
  EXPECT_EQ(posattn_supported(emu_, &desc, POSATTN_DTYPE_BF16, POSATTN_DTYPE_BF16),
            POSATTN_STATUS_NOT_SUPPORTED);
  EXPECT_NE(std::string(posattn_context_last_message(emu_)).find("head_dim"), std::string::npos);
  // The chooser answers the same way for supported() and forward(): a supported neighbour of
  // the refused shape is accepted, so the refusal above is about head_dim and nothing else.
  desc.head_dim = 64;
  EXPECT_EQ(posattn_supported(emu_, &desc, POSATTN_DTYPE_BF16, POSATTN_DTYPE_BF16),
            POSATTN_STATUS_SUCCESS);
}

}  // namespace
