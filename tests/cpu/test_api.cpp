// The API layer seen from outside: status strings and groups, version, contexts and backends,
// the initialisers' documented defaults, and the mask rule of the header checked against an
// independent brute-force attention in this file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "posattn.h"

namespace {

// An int that is no enumerator of E, as a C caller may pass one. For enums whose values fill their
// bit range (posattn_backend: 0..3) the cast is outside that range; the value only crosses into
// the C library, which must reject it.
template <class E>
E NotAnEnumerator(int value) {
  return static_cast<E>(value);
}

const posattn_status kAllStatuses[] = {
    POSATTN_STATUS_SUCCESS,          POSATTN_STATUS_INVALID_ARGUMENT,
    POSATTN_STATUS_NULL_POINTER,     POSATTN_STATUS_BAD_SIZE,
    POSATTN_STATUS_BAD_STRIDE,       POSATTN_STATUS_BAD_SEQLENS,
    POSATTN_STATUS_BAD_POSITIONS,    POSATTN_STATUS_BAD_MASK,
    POSATTN_STATUS_BAD_ENUM,         POSATTN_STATUS_BAD_PE_PARAMS,
    POSATTN_STATUS_BAD_DTYPE,        POSATTN_STATUS_WORKSPACE_TOO_SMALL,
    POSATTN_STATUS_BAD_ALIGNMENT,    POSATTN_STATUS_NOT_SUPPORTED,
    POSATTN_STATUS_BACKEND_UNAVAILABLE, POSATTN_STATUS_DEVICE_ERROR,
    POSATTN_STATUS_NO_DEVICE,        POSATTN_STATUS_KERNEL_FAULT,
    POSATTN_STATUS_DEVICE_LOST,      POSATTN_STATUS_ALLOC_FAILED,
    POSATTN_STATUS_INTERNAL};

// ---- status codes and version ------------------------------------------------------------------

TEST(Status, EveryCodeHasADistinctName) {
  std::set<std::string> names;
  for (posattn_status s : kAllStatuses) {
    const std::string name = posattn_status_string(s);
    EXPECT_EQ(name.rfind("POSATTN_STATUS_", 0), 0u) << name;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), sizeof kAllStatuses / sizeof kAllStatuses[0]);
  EXPECT_STREQ(posattn_status_string(POSATTN_STATUS_BAD_STRIDE), "POSATTN_STATUS_BAD_STRIDE");
  EXPECT_STREQ(posattn_status_string(POSATTN_STATUS_SUCCESS), "POSATTN_STATUS_SUCCESS");
}

TEST(Status, UnknownCodesHaveAFixedName) {
  EXPECT_STREQ(posattn_status_string(static_cast<posattn_status>(150)), "unknown status");
  EXPECT_STREQ(posattn_status_string(static_cast<posattn_status>(511)), "unknown status");
}

TEST(Status, GroupIsTheHundreds) {
  for (posattn_status s : kAllStatuses) {
    const int code = static_cast<int>(s);
    EXPECT_EQ(posattn_status_group(s), code - code % 100) << posattn_status_string(s);
  }
  EXPECT_EQ(posattn_status_group(POSATTN_STATUS_BAD_ALIGNMENT), 100);
  EXPECT_EQ(posattn_status_group(POSATTN_STATUS_INTERNAL), 500);
  EXPECT_EQ(posattn_status_group(static_cast<posattn_status>(199)), 100);
}

TEST(Version, MatchesTheHeaderMacros) {
  EXPECT_EQ(posattn_version(), POSATTN_VERSION);
  EXPECT_EQ(POSATTN_VERSION,
            POSATTN_VERSION_MAJOR * 10000 + POSATTN_VERSION_MINOR * 100 + POSATTN_VERSION_PATCH);
  char want[64];
  std::snprintf(want, sizeof want, "%d.%d.%d", POSATTN_VERSION_MAJOR, POSATTN_VERSION_MINOR,
                POSATTN_VERSION_PATCH);
  EXPECT_STREQ(posattn_version_string(), want);
}

TEST(Backend, Names) {
  EXPECT_STREQ(posattn_backend_string(POSATTN_BACKEND_REF), "ref");
  EXPECT_STREQ(posattn_backend_string(POSATTN_BACKEND_EMU), "emu");
  EXPECT_STREQ(posattn_backend_string(POSATTN_BACKEND_CUDA), "cuda");
  EXPECT_STREQ(posattn_backend_string(POSATTN_BACKEND_AUTO), "auto");
  EXPECT_STREQ(posattn_backend_string(NotAnEnumerator<posattn_backend>(9)), "unknown");
}

// ---- contexts --------------------------------------------------------------------------------

TEST(Context, ReferenceBackendIsAlwaysAvailable) {
  char why[128] = "stale";
  EXPECT_EQ(posattn_backend_available(POSATTN_BACKEND_REF, why, sizeof why),
            POSATTN_STATUS_SUCCESS);
  EXPECT_STREQ(why, "");
  posattn_context *ctx = nullptr;
  // the device ordinal's value is ignored on CPU backends
  ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 7, &ctx), POSATTN_STATUS_SUCCESS);
  ASSERT_NE(ctx, nullptr);
  EXPECT_EQ(posattn_context_backend(ctx), POSATTN_BACKEND_REF);
  EXPECT_STREQ(posattn_context_last_message(ctx), "");
  posattn_context_destroy(ctx);
}

TEST(Context, EmulatorIsAvailableOrSaysWhyNot) {
  char why[256] = "";
  const posattn_status avail = posattn_backend_available(POSATTN_BACKEND_EMU, why, sizeof why);
  posattn_context *ctx = reinterpret_cast<posattn_context *>(&why);  // must be overwritten
  const posattn_status created = posattn_context_create(POSATTN_BACKEND_EMU, 0, &ctx);
  EXPECT_EQ(created, avail) << "create and availability must agree";
  if (avail == POSATTN_STATUS_SUCCESS) {
    ASSERT_NE(ctx, nullptr);
    EXPECT_EQ(posattn_context_backend(ctx), POSATTN_BACKEND_EMU);
  } else {
    EXPECT_EQ(avail, POSATTN_STATUS_BACKEND_UNAVAILABLE);
    EXPECT_GT(std::strlen(why), 0u) << "an unavailable backend must say why";
    EXPECT_EQ(ctx, nullptr);
  }
  posattn_context_destroy(ctx);
}

TEST(Context, CudaIsUnavailableWithoutAGpu) {
  char why[256] = "";
  const posattn_status avail = posattn_backend_available(POSATTN_BACKEND_CUDA, why, sizeof why);
  posattn_context *ctx = nullptr;
  const posattn_status created = posattn_context_create(POSATTN_BACKEND_CUDA, 0, &ctx);
  EXPECT_EQ(created, avail);
  if (!std::filesystem::exists("/dev/nvidiactl")) {
    EXPECT_NE(avail, POSATTN_STATUS_SUCCESS);
    EXPECT_NE(created, POSATTN_STATUS_SUCCESS);
  }
  if (avail != POSATTN_STATUS_SUCCESS) {
    EXPECT_TRUE(avail == POSATTN_STATUS_BACKEND_UNAVAILABLE || avail == POSATTN_STATUS_NO_DEVICE)
        << posattn_status_string(avail);
    EXPECT_GT(std::strlen(why), 0u);
    EXPECT_EQ(ctx, nullptr);
  }
  posattn_context_destroy(ctx);
}

TEST(Context, AutoPicksTheFirstAvailableOfCudaEmuRef) {
  posattn_backend want = POSATTN_BACKEND_REF;
  if (posattn_backend_available(POSATTN_BACKEND_EMU, nullptr, 0) == POSATTN_STATUS_SUCCESS)
    want = POSATTN_BACKEND_EMU;
  if (posattn_backend_available(POSATTN_BACKEND_CUDA, nullptr, 0) == POSATTN_STATUS_SUCCESS)
    want = POSATTN_BACKEND_CUDA;
  EXPECT_EQ(posattn_backend_available(POSATTN_BACKEND_AUTO, nullptr, 0), POSATTN_STATUS_SUCCESS);
  posattn_context *ctx = nullptr;
  ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_AUTO, 0, &ctx), POSATTN_STATUS_SUCCESS);
  EXPECT_EQ(posattn_context_backend(ctx), want);
  posattn_context_destroy(ctx);
}

TEST(Context, BadArguments) {
  posattn_context *ctx = nullptr;
  EXPECT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, nullptr), POSATTN_STATUS_NULL_POINTER);
  EXPECT_EQ(posattn_context_create(NotAnEnumerator<posattn_backend>(7), 0, &ctx),
            POSATTN_STATUS_BAD_ENUM);
  EXPECT_EQ(ctx, nullptr);
  char why[128] = "";
  EXPECT_EQ(posattn_backend_available(NotAnEnumerator<posattn_backend>(-3), why, sizeof why),
            POSATTN_STATUS_BAD_ENUM);
  EXPECT_NE(std::string(why).find("backend (-3)"), std::string::npos) << why;
}

TEST(Context, ReasonIsTruncatedAndTerminated) {
  char why[8];
  std::memset(why, 'x', sizeof why);
  const posattn_status st = posattn_backend_available(NotAnEnumerator<posattn_backend>(5), why, 6);
  EXPECT_EQ(st, POSATTN_STATUS_BAD_ENUM);
  EXPECT_EQ(std::strlen(why), 5u);
  EXPECT_EQ(why[6], 'x') << "wrote past why_size";
}

TEST(Context, DestroyNullIsANoOp) { posattn_context_destroy(nullptr); }

TEST(Context, StreamMustBeNullOnCpuBackends) {
  posattn_context *ctx = nullptr;
  ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, &ctx), POSATTN_STATUS_SUCCESS);
  int not_a_stream = 0;
  EXPECT_EQ(posattn_context_set_stream(ctx, &not_a_stream), POSATTN_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(posattn_context_last_message(ctx)).find("stream"), std::string::npos);
  EXPECT_EQ(posattn_context_set_stream(ctx, nullptr), POSATTN_STATUS_SUCCESS);
  EXPECT_STREQ(posattn_context_last_message(ctx), "");
  EXPECT_EQ(posattn_context_backend(nullptr), POSATTN_BACKEND_AUTO);
  posattn_context_destroy(ctx);
}

// ---- initialisers: the defaults documented in posattn.h ---------------------------------------

TEST(Init, PeDefaults) {
  posattn_pe pe;
  std::memset(&pe, 0x5a, sizeof pe);
  posattn_pe_init(&pe);
  EXPECT_EQ(pe.kind, POSATTN_PE_NONE);
  EXPECT_EQ(pe.rope.layout, POSATTN_ROPE_NEOX);
  EXPECT_EQ(pe.rope.rotary_dim, 0);
  EXPECT_EQ(pe.rope.base, 10000.0);
  EXPECT_EQ(pe.rope.scaling, POSATTN_ROPE_SCALING_NONE);
  EXPECT_EQ(pe.rope.factor, 1.0);
  EXPECT_EQ(pe.rope.original_max_position, 4096);
  EXPECT_EQ(pe.rope.max_position, 0);
  EXPECT_EQ(pe.rope.dynamic_seq_len, 0);
  EXPECT_EQ(pe.rope.beta_fast, 32.0);
  EXPECT_EQ(pe.rope.beta_slow, 1.0);
  EXPECT_EQ(pe.rope.yarn_truncate, 1);
  EXPECT_EQ(pe.rope.low_freq_factor, 1.0);
  EXPECT_EQ(pe.rope.high_freq_factor, 4.0);
  EXPECT_EQ(pe.rope.attention_factor, 0.0);
  EXPECT_EQ(pe.rope.ext_factors, nullptr);
  EXPECT_EQ(pe.rope.inv_freq, nullptr);
  EXPECT_EQ(pe.rope.angle_mode, POSATTN_ANGLE_FAST);
  // appended fields: zero keeps the earlier behaviour (docs/rope-configs.md)
  EXPECT_EQ(pe.rope.mscale, 0.0);
  EXPECT_EQ(pe.rope.mscale_all_dim, 0.0);
  EXPECT_EQ(pe.rope.longrope_factor, 0.0);
  EXPECT_EQ(pe.rope.rotary_offset, 0);
  EXPECT_EQ(pe.rope.active_pairs, 0);
  EXPECT_EQ(pe.alibi.slopes, nullptr);
  EXPECT_EQ(pe.fire.mlp_width, 32);
  EXPECT_EQ(pe.fire.w1, nullptr);
  EXPECT_EQ(pe.fire.w2, nullptr);
  EXPECT_EQ(pe.fire.c, 0.1);
  EXPECT_EQ(pe.fire.L, 512.0);
  EXPECT_EQ(pe.fire.eps, 1e-6);
  EXPECT_EQ(pe.xpos.scale_base, 512.0);
  EXPECT_EQ(pe.xpos.gamma, 0.4);
  EXPECT_EQ(pe.t5.num_buckets, 32);
  EXPECT_EQ(pe.t5.max_distance, 128);
  EXPECT_EQ(pe.t5.bidirectional, 0);
  EXPECT_EQ(pe.t5.table, nullptr);
  EXPECT_EQ(pe.kerple.a, nullptr);
  EXPECT_EQ(pe.kerple.p, nullptr);
  posattn_pe_init(nullptr);
}

TEST(Init, DescriptorDefaults) {
  posattn_attention_desc d;
  std::memset(&d, 0x5a, sizeof d);
  posattn_attention_desc_init(&d);
  EXPECT_EQ(d.batch, 0);
  EXPECT_EQ(d.q_heads, 0);
  EXPECT_EQ(d.head_dim, 0);
  EXPECT_EQ(d.cu_seqlens_q, nullptr);
  EXPECT_EQ(d.cu_seqlens_kv, nullptr);
  EXPECT_EQ(d.q_positions, nullptr);
  EXPECT_EQ(d.kv_positions, nullptr);
  EXPECT_EQ(d.causal, 0);
  EXPECT_EQ(d.window_left, -1);
  EXPECT_EQ(d.window_right, -1);
  EXPECT_EQ(d.softcap, 0.0f);
  EXPECT_EQ(d.softmax_scale, 0.0f);
  EXPECT_EQ(d.doc_ids, nullptr);
  EXPECT_EQ(d.num_anchor_tokens, 0);
  EXPECT_EQ(d.pe.kind, POSATTN_PE_NONE);
  EXPECT_EQ(d.pe.rope.base, 10000.0);
  posattn_attention_desc_init(nullptr);
}

TEST(Init, ContiguousTensorStrides) {
  posattn_tensor t;
  int dummy = 0;
  posattn_tensor_init_contiguous(&t, &dummy, POSATTN_DTYPE_BF16, 100000, 64, 256);
  EXPECT_EQ(t.data, &dummy);
  EXPECT_EQ(t.dtype, POSATTN_DTYPE_BF16);
  EXPECT_EQ(t.stride_head, 256);
  EXPECT_EQ(t.stride_seq, 64 * 256);
  EXPECT_EQ(t.stride_batch, int64_t(100000) * 64 * 256);  // beyond int32
  posattn_tensor_init_contiguous(nullptr, &dummy, POSATTN_DTYPE_F32, 1, 1, 2);
}

// ---- the mask rule, checked through the REF backend -------------------------------------------

// A brute-force attention written from the header's comment alone: f32 inputs, fp64 math,
// no positional encoding. Returns out [tokens][hq][d] and lse [hq][tokens] (varlen layout) or
// [b][hq][lq] (dense), as the header says.
struct Problem {
  int batch = 1, hq = 2, hkv = 1, d = 4, lq = 0, lk = 0;
  std::vector<int32_t> cu_q, cu_kv, docs;  // empty = dense / no documents
  int causal = 0, wl = -1, wr = -1, anchors = 0;
};

struct Result {
  std::vector<double> out, lse;
};

Result BruteForce(const Problem &pr, const std::vector<float> &q, const std::vector<float> &k,
                  const std::vector<float> &v) {
  const bool varlen = !pr.cu_q.empty();
  const int64_t total_q = varlen ? pr.cu_q[pr.batch] : int64_t(pr.batch) * pr.lq;
  Result r;
  r.out.assign(size_t(total_q) * pr.hq * pr.d, 0.0);
  r.lse.assign(size_t(total_q) * pr.hq, 0.0);
  const double scale = 1.0 / std::sqrt(double(pr.d));
  for (int b = 0; b < pr.batch; ++b) {
    const int64_t q0 = varlen ? pr.cu_q[b] : int64_t(b) * pr.lq;
    const int64_t k0 = varlen ? pr.cu_kv[b] : int64_t(b) * pr.lk;
    const int Lq = varlen ? pr.cu_q[b + 1] - pr.cu_q[b] : pr.lq;
    const int Lk = varlen ? pr.cu_kv[b + 1] - pr.cu_kv[b] : pr.lk;
    for (int h = 0; h < pr.hq; ++h) {
      const int hk = h / (pr.hq / pr.hkv);
      for (int i = 0; i < Lq; ++i) {
        const int64_t ii = i + Lk - Lq;
        std::vector<double> s(Lk, -INFINITY);
        double mx = -INFINITY;
        for (int j = 0; j < Lk; ++j) {
          bool vis = true;
          if (pr.causal && j > ii) vis = false;
          if (pr.wl >= 0 && j < ii - pr.wl) vis = false;
          if (pr.wr >= 0 && j > ii + pr.wr) vis = false;
          if (!pr.docs.empty() && !(pr.docs[q0 + i] == pr.docs[q0 + j] || j < pr.anchors))
            vis = false;
          if (!vis) continue;
          double dot = 0;
          for (int f = 0; f < pr.d; ++f)
            dot += double(q[((q0 + i) * pr.hq + h) * pr.d + f]) *
                   double(k[((k0 + j) * pr.hkv + hk) * pr.d + f]);
          s[j] = scale * dot;
          mx = std::max(mx, s[j]);
        }
        const int64_t li = varlen ? int64_t(h) * total_q + q0 + i
                                  : (int64_t(b) * pr.hq + h) * pr.lq + i;
        if (mx == -INFINITY) {
          r.lse[li] = -INFINITY;
          continue;
        }
        double sum = 0;
        for (int j = 0; j < Lk; ++j) sum += std::exp(s[j] - mx);
        r.lse[li] = mx + std::log(sum);
        for (int j = 0; j < Lk; ++j) {
          const double w = std::exp(s[j] - mx) / sum;
          for (int f = 0; f < pr.d; ++f)
            r.out[((q0 + i) * pr.hq + h) * pr.d + f] +=
                w * double(v[((k0 + j) * pr.hkv + hk) * pr.d + f]);
        }
      }
    }
  }
  return r;
}

void CheckAgainstReference(const Problem &pr) {
  const bool varlen = !pr.cu_q.empty();
  const int64_t tq = varlen ? pr.cu_q[pr.batch] : int64_t(pr.batch) * pr.lq;
  const int64_t tk = varlen ? pr.cu_kv[pr.batch] : int64_t(pr.batch) * pr.lk;
  std::vector<float> q(size_t(tq) * pr.hq * pr.d), k(size_t(tk) * pr.hkv * pr.d),
      v(size_t(tk) * pr.hkv * pr.d);
  for (size_t i = 0; i < q.size(); ++i) q[i] = float(std::sin(1.3 * double(i) + 0.2));
  for (size_t i = 0; i < k.size(); ++i) k[i] = float(std::cos(0.7 * double(i) + 0.5));
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(std::sin(0.9 * double(i) - 1.0));
  std::vector<float> out(q.size(), std::numeric_limits<float>::quiet_NaN());
  std::vector<float> lse(size_t(tq) * pr.hq, std::numeric_limits<float>::quiet_NaN());

  posattn_attention_desc desc;
  posattn_attention_desc_init(&desc);
  desc.batch = pr.batch;
  desc.q_heads = pr.hq;
  desc.kv_heads = pr.hkv;
  desc.head_dim = pr.d;
  desc.q_len = pr.lq;
  desc.kv_len = pr.lk;
  desc.causal = pr.causal;
  desc.window_left = pr.wl;
  desc.window_right = pr.wr;
  if (varlen) {
    desc.cu_seqlens_q = pr.cu_q.data();
    desc.cu_seqlens_kv = pr.cu_kv.data();
  }
  if (!pr.docs.empty()) desc.doc_ids = pr.docs.data();
  desc.num_anchor_tokens = pr.anchors;
  posattn_tensor tq_{}, tk_{}, tv_{}, to_{};
  posattn_tensor_init_contiguous(&tq_, q.data(), POSATTN_DTYPE_F32, pr.lq, pr.hq, pr.d);
  posattn_tensor_init_contiguous(&tk_, k.data(), POSATTN_DTYPE_F32, pr.lk, pr.hkv, pr.d);
  posattn_tensor_init_contiguous(&tv_, v.data(), POSATTN_DTYPE_F32, pr.lk, pr.hkv, pr.d);
  posattn_tensor_init_contiguous(&to_, out.data(), POSATTN_DTYPE_F32, pr.lq, pr.hq, pr.d);

  posattn_context *ctx = nullptr;
  ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, &ctx), POSATTN_STATUS_SUCCESS);
  size_t bytes = 0;
  ASSERT_EQ(posattn_workspace_size(ctx, &desc, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32, &bytes),
            POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(ctx);
  std::vector<unsigned char> ws_store(bytes + 256);
  void *ws = ws_store.data() + (256 - reinterpret_cast<uintptr_t>(ws_store.data()) % 256) % 256;
  const posattn_status st =
      posattn_forward(ctx, &desc, &tq_, &tk_, &tv_, &to_, lse.data(), bytes ? ws : nullptr, bytes);
  const std::string msg = posattn_context_last_message(ctx);
  posattn_context_destroy(ctx);
  ASSERT_EQ(st, POSATTN_STATUS_SUCCESS) << msg;

  const Result want = BruteForce(pr, q, k, v);
  for (size_t i = 0; i < out.size(); ++i)
    ASSERT_NEAR(out[i], want.out[i], 1e-5) << "out element " << i;
  for (size_t i = 0; i < lse.size(); ++i) {
    if (std::isinf(want.lse[i])) {
      ASSERT_TRUE(std::isinf(lse[i]) && lse[i] < 0) << "lse " << i << " = " << lse[i];
    } else {
      ASSERT_NEAR(lse[i], want.lse[i], 1e-5) << "lse " << i;
    }
  }
}

TEST(MaskRule, CausalIsBottomRightAlignedWhenKeysOutnumberQueries) {
  Problem pr;
  pr.batch = 2;
  pr.lq = 3;
  pr.lk = 8;
  pr.causal = 1;
  CheckAgainstReference(pr);
}

TEST(MaskRule, QueriesBeforeTheFirstKeySeeNothingWhenQueriesOutnumberKeys) {
  Problem pr;
  pr.lq = 6;
  pr.lk = 3;
  pr.causal = 1;  // queries 0..2 align before key 0: output 0, lse -inf
  CheckAgainstReference(pr);
}

TEST(MaskRule, SlidingWindowBothSides) {
  Problem pr;
  pr.hq = 4;
  pr.hkv = 2;
  pr.lq = 7;
  pr.lk = 9;
  pr.wl = 2;
  pr.wr = 1;
  CheckAgainstReference(pr);
  pr.causal = 1;
  pr.wr = -1;
  pr.wl = 0;  // each query sees exactly its aligned key
  CheckAgainstReference(pr);
}

TEST(MaskRule, DocumentsWithAnchorsDense) {
  Problem pr;
  pr.batch = 2;
  pr.lq = pr.lk = 8;
  pr.anchors = 2;
  pr.docs = {0, 0, 1, 1, 1, 2, 2, 2, /* sequence 1 */ 5, 6, 6, 6, 7, 7, 7, 7};
  CheckAgainstReference(pr);
  pr.causal = 1;
  CheckAgainstReference(pr);
}

TEST(MaskRule, VarlenUsesEachSequencesOwnLengths) {
  Problem pr;
  pr.batch = 3;
  pr.cu_q = {0, 2, 2, 7};   // lengths 2, 0, 5
  pr.cu_kv = {0, 6, 9, 12}; // lengths 6, 3, 3
  pr.lq = 5;
  pr.lk = 6;
  pr.causal = 1;
  CheckAgainstReference(pr);
}

TEST(MaskRule, VarlenDocumentsWithAnchors) {
  Problem pr;
  pr.batch = 2;
  pr.cu_q = pr.cu_kv = {0, 5, 11};
  pr.lq = pr.lk = 6;
  pr.anchors = 1;
  pr.docs = {3, 3, 4, 4, 4, /* sequence 1 */ 0, 1, 1, 2, 2, 2};
  pr.causal = 1;
  CheckAgainstReference(pr);
}

}  // namespace
