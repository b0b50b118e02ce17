// The prefill kernels on EMU (or on CUDA, POSATTN_TEST_BACKEND=cuda) against the fp64 reference,
// through posattn.h, with the DESIGN.md section 5 rule: every positional encoding x every mask x
// every input dtype, head dims 64/128/256 and odd lengths (1, 17, 97, one longer), on fresh random
// data, outputs poisoned with NaN and guarded. The emulator's bounds and race checks are on
// (a kernel bug fails the call with KERNEL_FAULT).
//
// Reference: the test shim's naive attention in fp64 (independent of host/ref.c, written from the
// header's math); baseline: the same in the input precision (fp32 logits and softmax, P rounded
// to the input dtype, output rounded once). LSE is held to the same rule against the fp64 LSE.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "pa_test_check.hpp"
#include "pa_test_shim.h"

namespace {

enum class Pe {
  None, RopePlain, RopeGptjExact, RopePartial, RopeYarnExact, RopeLlama3Gptj, RopeLongrope,
  RopeLinearExact, RopeDynNtk, Xpos, Alibi, Fire, T5Bidir, T5Causal, KerpleLog, KerplePower,
  Softcap, Count
};
const char *pe_name(Pe p) {
  static const char *n[] = {"none", "rope_plain", "rope_gptj_exact", "rope_partial",
                            "rope_yarn_exact", "rope_llama3_gptj", "rope_longrope",
                            "rope_linear_exact", "rope_dynntk", "xpos", "alibi", "fire",
                            "t5_bidir", "t5_causal", "kerple_log", "kerple_power", "softcap"};
  return n[int(p)];
}
enum class Mask { None, Causal, Window, Varlen, Docs, Count };
const char *mask_name(Mask m) {
  static const char *n[] = {"nomask", "causal", "window", "varlen", "docs"};
  return n[int(m)];
}
const posattn_dtype kDtypes[] = {POSATTN_DTYPE_F32, POSATTN_DTYPE_F16, POSATTN_DTYPE_BF16};

struct Config {
  Pe pe;
  Mask mask;
  posattn_dtype dt;
  int d, s, hq, hkv;
  std::string name() const {
    const bool fast_rope = pe == Pe::RopePlain || pe == Pe::RopeLlama3Gptj || pe == Pe::RopeDynNtk;
    return "hd" + std::to_string(d) + "_s" + std::to_string(s) + "_h" + std::to_string(hq) + "x" +
           std::to_string(hkv) + "_" + mask_name(mask) + "_" + pe_name(pe) + "_" +
           (fast_rope && dt == POSATTN_DTYPE_F32 ? "exact_" : "") + posattn_dtype_string(dt);
  }
};

// Which backend the binary tests: EMU unless POSATTN_TEST_BACKEND says "cuda" (the gpu label).
posattn_backend test_backend() {
  const char *e = std::getenv("POSATTN_TEST_BACKEND");
  return e && std::strcmp(e, "cuda") == 0 ? POSATTN_BACKEND_CUDA : POSATTN_BACKEND_EMU;
}

// Every (pe, mask, dtype), the head dim and length rotating so each pair meets all three of each;
// plus longer sequences for the masks that skip tiles.
std::vector<Config> grid() {
  const int dims[] = {64, 128, 256}, lens[] = {1, 17, 97};
  std::vector<Config> g;
  for (int pe = 0; pe < int(Pe::Count); ++pe)
    for (int m = 0; m < int(Mask::Count); ++m)
      for (int t = 0; t < 3; ++t) {
        Config c{Pe(pe), Mask(m), kDtypes[t], dims[(pe + m + t) % 3], lens[(pe + 2 * m + t) % 3], 8, 2};
        if (c.d == 256 && c.s == 97) c.hq = 4;  // keep the emulator's time in budget
        g.push_back(c);
      }
  for (Pe pe : {Pe::None, Pe::RopePlain, Pe::Alibi, Pe::Fire})
    for (Mask m : {Mask::Causal, Mask::Docs, Mask::Window})
      g.push_back(Config{pe, m, POSATTN_DTYPE_BF16, 128, 300, 2, 1});
  return g;
}

class PrefillGrid : public ::testing::TestWithParam<Config> {
 protected:
  void SetUp() override {
    const posattn_backend be = test_backend();
    char why[256];
    if (posattn_backend_available(be, why, sizeof why) != POSATTN_STATUS_SUCCESS)
      GTEST_SKIP() << posattn_backend_string(be) << " backend unavailable: " << why;
    if (be == POSATTN_BACKEND_CUDA)
      GTEST_SKIP() << "the grid stages its tensors in host memory; device buffers for the cuda "
                      "run are not written yet";
    ASSERT_EQ(posattn_context_create(be, 0, &ctx_), POSATTN_STATUS_SUCCESS);
  }
  void TearDown() override { posattn_context_destroy(ctx_); }
  posattn_context *ctx_ = nullptr;
};

TEST_P(PrefillGrid, matches_reference) {
  const Config c = GetParam();
  pat_rng rng;
  pat_rng_seed(&rng, 0x9e3779b97f4a7c15ull ^ std::hash<std::string>()(c.name()));
  posattn_attention_desc desc;
  posattn_attention_desc_init(&desc);
  desc.q_heads = c.hq;
  desc.kv_heads = c.hkv;
  desc.head_dim = c.d;
  desc.batch = 1;
  desc.q_len = desc.kv_len = c.s;
  std::vector<int32_t> cu_q, cu_kv, qpos, kvpos, docs;
  bool random_positions = false;
  switch (c.mask) {
    case Mask::None:  // cross attention: more keys than queries, bottom-right aligned positions
      desc.batch = 2;
      desc.kv_len = c.s + 5;
      break;
    case Mask::Causal: desc.causal = 1; desc.kv_len = c.s + (c.s > 1 ? 3 : 0); break;
    case Mask::Window: desc.window_left = 7; desc.window_right = 3; break;
    case Mask::Varlen: {  // three sequences with different q/kv lengths, random position ids
      desc.batch = 3;
      desc.causal = 1;
      const int lq[] = {c.s, c.s / 3 + 1, 1}, lk[] = {c.s + 2, c.s / 3 + 4, 1};
      cu_q = {0}; cu_kv = {0};
      for (int b = 0; b < 3; ++b) {
        cu_q.push_back(cu_q.back() + lq[b]);
        cu_kv.push_back(cu_kv.back() + lk[b]);
      }
      desc.q_len = std::max(lq[0], lq[1]);  // the maximum lengths
      desc.kv_len = std::max(lk[0], lk[1]);
      desc.cu_seqlens_q = cu_q.data();
      desc.cu_seqlens_kv = cu_kv.data();
      random_positions = true;
      break;
    }
    case Mask::Docs: {  // packed documents, 2 anchor tokens, causal: tiles of other documents skipped
      desc.batch = 2;
      desc.causal = 1;
      const int ndoc = c.s >= 97 ? 5 : 2;
      for (int b = 0; b < 2; ++b)
        for (int i = 0; i < c.s; ++i) docs.push_back(b * 100 + i * ndoc / c.s);
      desc.doc_ids = docs.data();
      desc.num_anchor_tokens = c.s >= 2 ? 2 : 1;
      break;
    }
    default: break;
  }
  if (random_positions) {
    for (int64_t i = 0; i < pat_q_rows(&desc); ++i) qpos.push_back(pat_rng_int(&rng, 0, 1500));
    for (int64_t i = 0; i < pat_kv_rows(&desc); ++i) kvpos.push_back(pat_rng_int(&rng, 0, 1500));
    desc.q_positions = qpos.data();
    desc.kv_positions = kvpos.data();
  }

  // Positional encoding parameters.
  posattn_pe &pe = desc.pe;
  std::vector<double> ext;  // LongRoPE factors are fp64
  std::vector<float> w1, b1, w2, b2, table, ka, kp;
  auto rope = [&](posattn_rope_scaling sc, posattn_rope_layout lay, posattn_angle_mode am) {
    pe.kind = POSATTN_PE_ROPE;
    pe.rope.scaling = sc;
    pe.rope.layout = lay;
    // FAST angles in fp32 are off by ~p 2^-24 rad, above the fp32 rule at these positions by
    // design (pe-spec §1.4): f32 runs use EXACT (the name says so); 16-bit runs keep FAST.
    pe.rope.angle_mode = c.dt == POSATTN_DTYPE_F32 ? POSATTN_ANGLE_EXACT : am;
  };
  switch (c.pe) {
    case Pe::None: break;
    case Pe::RopePlain: rope(POSATTN_ROPE_SCALING_NONE, POSATTN_ROPE_NEOX, POSATTN_ANGLE_FAST); break;
    case Pe::RopeGptjExact: rope(POSATTN_ROPE_SCALING_NONE, POSATTN_ROPE_GPTJ, POSATTN_ANGLE_EXACT); break;
    case Pe::RopePartial:
      rope(POSATTN_ROPE_SCALING_NONE, POSATTN_ROPE_NEOX, POSATTN_ANGLE_EXACT);
      pe.rope.rotary_dim = c.d / 4;
      break;
    case Pe::RopeYarnExact:
      rope(POSATTN_ROPE_SCALING_YARN, POSATTN_ROPE_NEOX, POSATTN_ANGLE_EXACT);
      pe.rope.factor = 4;
      pe.rope.original_max_position = 64;
      break;
    case Pe::RopeLlama3Gptj:
      rope(POSATTN_ROPE_SCALING_LLAMA3, POSATTN_ROPE_GPTJ, POSATTN_ANGLE_FAST);
      pe.rope.factor = 8;
      pe.rope.original_max_position = 32;
      pe.rope.base = 500000;
      break;
    case Pe::RopeLongrope:
      rope(POSATTN_ROPE_SCALING_LONGROPE, POSATTN_ROPE_NEOX, POSATTN_ANGLE_EXACT);
      pe.rope.rotary_dim = c.d / 2;
      for (int i = 0; i < c.d / 4; ++i) ext.push_back(pat_rng_uniform(&rng, 1.0, 6.0));
      pe.rope.ext_factors = ext.data();
      pe.rope.original_max_position = 64;
      pe.rope.max_position = 512;
      break;
    case Pe::RopeLinearExact:
      rope(POSATTN_ROPE_SCALING_LINEAR, POSATTN_ROPE_GPTJ, POSATTN_ANGLE_EXACT);
      pe.rope.factor = 2.5;
      break;
    case Pe::RopeDynNtk:
      rope(POSATTN_ROPE_SCALING_DYNAMIC_NTK, POSATTN_ROPE_NEOX, POSATTN_ANGLE_FAST);
      pe.rope.factor = 2;
      pe.rope.original_max_position = 16;
      break;
    case Pe::Xpos:
      rope(POSATTN_ROPE_SCALING_NONE, POSATTN_ROPE_GPTJ, POSATTN_ANGLE_EXACT);
      pe.kind = POSATTN_PE_XPOS;
      pe.xpos.scale_base = 64;  // small, so the decay is far from 1 at these distances
      break;
    case Pe::Alibi: pe.kind = POSATTN_PE_ALIBI; break;
    case Pe::Fire: {
      pe.kind = POSATTN_PE_FIRE;
      pe.fire.mlp_width = 16;
      // L = 512 (default): varlen's query positions up to 1500 exercise the normaliser max(L, pq)
      for (int k = 0; k < 16; ++k) {
        w1.push_back(float(pat_rng_uniform(&rng, -3, 3)));
        b1.push_back(float(pat_rng_uniform(&rng, -1.5, 1.5)));  // kinks inside [0, 1]
      }
      for (int k = 0; k < 16 * c.hq; ++k) w2.push_back(float(pat_rng_uniform(&rng, -1, 1)));
      for (int h = 0; h < c.hq; ++h) b2.push_back(float(pat_rng_uniform(&rng, -0.5, 0.5)));
      pe.fire.w1 = w1.data(); pe.fire.b1 = b1.data(); pe.fire.w2 = w2.data(); pe.fire.b2 = b2.data();
      break;
    }
    case Pe::T5Bidir:
    case Pe::T5Causal:
      pe.kind = POSATTN_PE_T5;
      pe.t5.bidirectional = c.pe == Pe::T5Bidir;
      for (int k = 0; k < 32 * c.hq; ++k) table.push_back(float(pat_rng_uniform(&rng, -2, 2)));
      pe.t5.table = table.data();
      // T5 models use softmax_scale 1; kept at the default here because with scale 1 the logits
      // reach ~15 and the d roundings of an fp32 dot product exceed the once-rounded f32 baseline.
      break;
    case Pe::KerpleLog:
    case Pe::KerplePower:
      pe.kind = c.pe == Pe::KerpleLog ? POSATTN_PE_KERPLE_LOG : POSATTN_PE_KERPLE_POWER;
      for (int h = 0; h < c.hq; ++h) {
        ka.push_back(float(pat_rng_uniform(&rng, 0.05, 1.0)));
        kp.push_back(float(pat_rng_uniform(&rng, 0.1, 2.0)));
      }
      pe.kerple.a = ka.data();
      pe.kerple.p = kp.data();
      break;
    case Pe::Softcap:
      desc.softcap = 0.5f;  // below the logits' range, so the cap bends them
      desc.softmax_scale = 1;
      break;
    default: break;
  }

  ASSERT_EQ(posattn_supported(ctx_, &desc, c.dt, c.dt), POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(ctx_);
  pat_inputs in;
  ASSERT_EQ(pat_inputs_random(&in, &desc, c.dt, &rng, 1.0), 0);
  // gold: the shim's naive attention in fp64; baseline rounds like the kernel
  pat_checked r;
  pat_check_forward(ctx_, nullptr, &desc, &in, c.dt, c.dt, &r);
  if (!HasFatalFailure()) pat_expect_lse_rule(r, c.dt);
  pat_inputs_free(&in);
}

INSTANTIATE_TEST_SUITE_P(emu, PrefillGrid, ::testing::ValuesIn(grid()),
                         [](const ::testing::TestParamInfo<Config> &i) { return i.param.name(); });

}  // namespace
