// Every validation rule of posattn provoked through the public API on a REF context: the exact
// status, a message that names the argument and the rule, and outputs left untouched.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "posattn.h"

namespace {

// Stores a raw int into an enum field, as a C caller can. Going through memcpy keeps the C++ side
// free of out-of-range enum values; only the (C) library reads the field.
template <class E>
void SetRaw(E &field, int value) {
  static_assert(sizeof(E) == sizeof(int), "enums are int-sized");
  std::memcpy(&field, &value, sizeof value);
}

constexpr float kSentinel = -12345.0f;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// A small valid dense problem (GQA, q_len != kv_len) with f32 data, contiguous tensors, outputs
// poisoned with a sentinel. Tests break one rule at a time and call Expect().
class Validation : public ::testing::Test {
 protected:
  static constexpr int B = 2, HQ = 4, HKV = 2, D = 8, LQ = 5, LK = 7;

  void SetUp() override {
    ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, &ctx), POSATTN_STATUS_SUCCESS);
    posattn_attention_desc_init(&desc);
    desc.batch = B;
    desc.q_heads = HQ;
    desc.kv_heads = HKV;
    desc.head_dim = D;
    desc.q_len = LQ;
    desc.kv_len = LK;
    qbuf.assign(size_t(B) * LQ * HQ * D, 0.f);
    kbuf.assign(size_t(B) * LK * HKV * D, 0.f);
    vbuf.assign(size_t(B) * LK * HKV * D, 0.f);
    for (size_t i = 0; i < qbuf.size(); ++i) qbuf[i] = std::sin(0.37f * float(i));
    for (size_t i = 0; i < kbuf.size(); ++i) kbuf[i] = std::cos(0.21f * float(i));
    for (size_t i = 0; i < vbuf.size(); ++i) vbuf[i] = std::sin(0.11f * float(i) + 1.f);
    // one spare element each so that a misaligned pointer stays inside the allocation
    outbuf.assign(size_t(B) * LQ * HQ * D + 1, kSentinel);
    lsebuf.assign(size_t(B) * HQ * LQ + 1, kSentinel);
    posattn_tensor_init_contiguous(&q, qbuf.data(), POSATTN_DTYPE_F32, LQ, HQ, D);
    posattn_tensor_init_contiguous(&k, kbuf.data(), POSATTN_DTYPE_F32, LK, HKV, D);
    posattn_tensor_init_contiguous(&v, vbuf.data(), POSATTN_DTYPE_F32, LK, HKV, D);
    posattn_tensor_init_contiguous(&out, outbuf.data(), POSATTN_DTYPE_F32, LQ, HQ, D);
    lse = lsebuf.data();
    size_t bytes = 0;
    ASSERT_EQ(posattn_workspace_size(ctx, &desc, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32, &bytes),
              POSATTN_STATUS_SUCCESS)
        << posattn_context_last_message(ctx);
    ws_required = bytes;
    ws_bytes = (bytes + 255) / 256 * 256 + 256;
    ws = std::aligned_alloc(256, ws_bytes);
    ASSERT_NE(ws, nullptr);
  }
  void TearDown() override {
    std::free(ws);
    posattn_context_destroy(ctx);
  }

  // PE kinds may need more workspace than the baseline problem: grow it when the query allows
  posattn_status Forward() {
    size_t bytes = 0;
    if (posattn_workspace_size(ctx, &desc, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32, &bytes) ==
            POSATTN_STATUS_SUCCESS &&
        bytes > ws_bytes) {
      std::free(ws);
      ws_bytes = (bytes + 255) / 256 * 256;
      ws = std::aligned_alloc(256, ws_bytes);
      if (ws == nullptr) ws_bytes = 0;
    }
    return posattn_forward(ctx, &desc, &q, &k, &v, &out, lse, ws, ws_bytes);
  }

  // a successful call earlier in a test writes the outputs: poison them again
  void Poison() {
    std::fill(outbuf.begin(), outbuf.end(), kSentinel);
    std::fill(lsebuf.begin(), lsebuf.end(), kSentinel);
  }

  bool OutputsUntouched() const {
    for (float x : outbuf)
      if (std::memcmp(&x, &kSentinel, sizeof x) != 0) return false;
    for (float x : lsebuf)
      if (std::memcmp(&x, &kSentinel, sizeof x) != 0) return false;
    return true;
  }

  // forward fails with `want`, its message contains every piece, and nothing was written
  void Expect(posattn_status want, std::initializer_list<const char *> pieces) {
    Poison();
    const posattn_status got = Forward();
    const std::string msg = posattn_context_last_message(ctx);
    EXPECT_EQ(got, want) << "got " << posattn_status_string(got) << ", message: " << msg;
    for (const char *piece : pieces)
      EXPECT_NE(msg.find(piece), std::string::npos)
          << "message \"" << msg << "\" does not mention \"" << piece << "\"";
    EXPECT_TRUE(OutputsUntouched()) << "forward wrote to out or lse before failing";
  }

  // a descriptor rule: forward and posattn_supported (same validation) both report it
  void ExpectDesc(posattn_status want, std::initializer_list<const char *> pieces) {
    Expect(want, pieces);
    const posattn_status got =
        posattn_supported(ctx, &desc, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32);
    EXPECT_EQ(got, want) << "posattn_supported: " << posattn_context_last_message(ctx);
    size_t bytes = 12345;
    EXPECT_EQ(posattn_workspace_size(ctx, &desc, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32, &bytes),
              want);
  }

  posattn_context *ctx = nullptr;
  posattn_attention_desc desc{};
  std::vector<float> qbuf, kbuf, vbuf, outbuf, lsebuf;
  posattn_tensor q{}, k{}, v{}, out{};
  float *lse = nullptr;
  void *ws = nullptr;
  size_t ws_bytes = 0, ws_required = 0;
};

// ---- the baseline problem is valid -------------------------------------------------------------

TEST_F(Validation, ValidProblemSucceedsAndClearsMessage) {
  desc.causal = 2;
  ASSERT_NE(Forward(), POSATTN_STATUS_SUCCESS);
  ASSERT_STRNE(posattn_context_last_message(ctx), "");
  desc.causal = 1;
  EXPECT_EQ(posattn_supported(ctx, &desc, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32),
            POSATTN_STATUS_SUCCESS);
  EXPECT_STREQ(posattn_context_last_message(ctx), "");
  ASSERT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
  EXPECT_STREQ(posattn_context_last_message(ctx), "");
  EXPECT_FALSE(OutputsUntouched()) << "a successful forward must write out";
}

// ---- NULL pointers ---------------------------------------------------------------------------

TEST_F(Validation, NullContextIsReportedWithoutCrashing) {
  EXPECT_EQ(posattn_forward(nullptr, &desc, &q, &k, &v, &out, lse, ws, ws_bytes),
            POSATTN_STATUS_NULL_POINTER);
  EXPECT_EQ(posattn_supported(nullptr, &desc, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32),
            POSATTN_STATUS_NULL_POINTER);
  size_t bytes = 0;
  EXPECT_EQ(posattn_workspace_size(nullptr, &desc, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32, &bytes),
            POSATTN_STATUS_NULL_POINTER);
  EXPECT_EQ(posattn_context_set_stream(nullptr, nullptr), POSATTN_STATUS_NULL_POINTER);
  EXPECT_STREQ(posattn_context_last_message(nullptr), "context is NULL");
  EXPECT_TRUE(OutputsUntouched());
}

TEST_F(Validation, NullDescriptor) {
  EXPECT_EQ(posattn_forward(ctx, nullptr, &q, &k, &v, &out, lse, ws, ws_bytes),
            POSATTN_STATUS_NULL_POINTER);
  EXPECT_NE(std::string(posattn_context_last_message(ctx)).find("desc"), std::string::npos);
  EXPECT_EQ(posattn_supported(ctx, nullptr, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32),
            POSATTN_STATUS_NULL_POINTER);
  EXPECT_TRUE(OutputsUntouched());
}

TEST_F(Validation, NullWorkspaceSizeOutput) {
  EXPECT_EQ(posattn_workspace_size(ctx, &desc, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32, nullptr),
            POSATTN_STATUS_NULL_POINTER);
  EXPECT_NE(std::string(posattn_context_last_message(ctx)).find("bytes"), std::string::npos);
}

TEST_F(Validation, NullTensorDescriptors) {
  const struct {
    const char *name;
    int which;
  } cases[] = {{"q", 0}, {"k", 1}, {"v", 2}, {"out", 3}};
  for (const auto &c : cases) {
    SCOPED_TRACE(c.name);
    const posattn_tensor *t[4] = {&q, &k, &v, &out};
    t[c.which] = nullptr;
    EXPECT_EQ(posattn_forward(ctx, &desc, t[0], t[1], t[2], t[3], lse, ws, ws_bytes),
              POSATTN_STATUS_NULL_POINTER);
    EXPECT_EQ(std::string(posattn_context_last_message(ctx)), std::string(c.name) + " is NULL");
    EXPECT_TRUE(OutputsUntouched());
  }
}

TEST_F(Validation, NullTensorData) {
  for (posattn_tensor *t : {&q, &k, &v, &out}) {
    void *saved = t->data;
    t->data = nullptr;
    const char *name = t == &q ? "q->data" : t == &k ? "k->data" : t == &v ? "v->data" : "out->data";
    SCOPED_TRACE(name);
    Expect(POSATTN_STATUS_NULL_POINTER, {name, "NULL"});
    t->data = saved;
  }
}

// ---- sizes -------------------------------------------------------------------------------------

TEST_F(Validation, EverySizeMustBePositive) {
  struct Field {
    const char *name;
    int32_t *field;
  } fields[] = {{"desc->batch", &desc.batch},       {"desc->q_heads", &desc.q_heads},
                {"desc->kv_heads", &desc.kv_heads}, {"desc->head_dim", &desc.head_dim},
                {"desc->q_len", &desc.q_len},       {"desc->kv_len", &desc.kv_len}};
  for (const Field &f : fields) {
    for (int32_t bad : {0, -1, INT32_MIN}) {
      SCOPED_TRACE(std::string(f.name) + " = " + std::to_string(bad));
      const int32_t saved = *f.field;
      *f.field = bad;
      ExpectDesc(POSATTN_STATUS_BAD_SIZE, {f.name, ">= 1", std::to_string(bad).c_str()});
      *f.field = saved;
    }
  }
}

TEST_F(Validation, HeadDimMustBeEven) {
  desc.head_dim = 7;
  ExpectDesc(POSATTN_STATUS_BAD_SIZE, {"desc->head_dim (7)", "even"});
}

TEST_F(Validation, QueryHeadsMustBeAMultipleOfKvHeads) {
  desc.q_heads = 12;
  desc.kv_heads = 5;
  ExpectDesc(POSATTN_STATUS_BAD_SIZE, {"desc->q_heads (12)", "multiple", "desc->kv_heads (5)"});
}

// ---- dtypes and alignment --------------------------------------------------------------------

TEST_F(Validation, InputDtypesMustMatch) {
  k.dtype = POSATTN_DTYPE_F16;
  Expect(POSATTN_STATUS_BAD_DTYPE, {"k->dtype", "f16", "in_dtype", "f32"});
  k.dtype = POSATTN_DTYPE_F32;
  v.dtype = POSATTN_DTYPE_BF16;
  Expect(POSATTN_STATUS_BAD_DTYPE, {"v->dtype", "bf16"});
}

TEST_F(Validation, UnknownDtypesAreBadEnums) {
  SetRaw(out.dtype, 99);
  Expect(POSATTN_STATUS_BAD_ENUM, {"out->dtype", "99"});
  out.dtype = POSATTN_DTYPE_F32;
  SetRaw(q.dtype, 0);
  Expect(POSATTN_STATUS_BAD_ENUM, {"q->dtype"});
  EXPECT_EQ(posattn_supported(ctx, &desc, static_cast<posattn_dtype>(0), POSATTN_DTYPE_F32),
            POSATTN_STATUS_BAD_ENUM);
  EXPECT_NE(std::string(posattn_context_last_message(ctx)).find("in_dtype"), std::string::npos);
  EXPECT_EQ(posattn_supported(ctx, &desc, POSATTN_DTYPE_F32, static_cast<posattn_dtype>(0)),
            POSATTN_STATUS_BAD_ENUM);
  EXPECT_NE(std::string(posattn_context_last_message(ctx)).find("out_dtype"), std::string::npos);
}

TEST_F(Validation, DataPointersMustBeAlignedToTheElementSize) {
  out.data = reinterpret_cast<char *>(outbuf.data()) + 2;
  Expect(POSATTN_STATUS_BAD_ALIGNMENT, {"out->data", "aligned", "4 bytes"});
  out.data = outbuf.data();
  lse = reinterpret_cast<float *>(reinterpret_cast<char *>(lsebuf.data()) + 1);
  Expect(POSATTN_STATUS_BAD_ALIGNMENT, {"lse", "aligned"});
}

// ---- strides ---------------------------------------------------------------------------------

TEST_F(Validation, NegativeStrides) {
  q.stride_seq = -HQ * D;
  Expect(POSATTN_STATUS_BAD_STRIDE, {"q->stride_seq", ">= 0"});
  q.stride_seq = HQ * D;
  v.stride_batch = -1;
  Expect(POSATTN_STATUS_BAD_STRIDE, {"v->stride_batch", ">= 0"});
}

TEST_F(Validation, HeadStrideSmallerThanHeadDimOverlaps) {
  q.stride_head = D / 2;
  Expect(POSATTN_STATUS_BAD_STRIDE, {"q->stride_head (4)", "overlaps", "head_dim", ">= 8"});
}

TEST_F(Validation, SequenceStrideSmallerThanAllHeadsOverlaps) {
  out.stride_seq = D;  // heads*head_dim = 32 needed
  Expect(POSATTN_STATUS_BAD_STRIDE, {"out->stride_seq (8)", "overlaps", ">= 32"});
}

TEST_F(Validation, ZeroBatchStrideOverlapsWhenBatchIsAboveOne) {
  k.stride_batch = 0;
  Expect(POSATTN_STATUS_BAD_STRIDE, {"k->stride_batch (0)", "overlaps"});
}

TEST_F(Validation, StrideOfAnAxisWithExtentOneIsIgnored) {
  desc.batch = 1;
  q.stride_batch = k.stride_batch = v.stride_batch = out.stride_batch = 0;
  ASSERT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
}

TEST_F(Validation, HugeStridesOverflowInt64) {
  q.stride_batch = INT64_MAX / 2 + 1;
  Expect(POSATTN_STATUS_BAD_STRIDE, {"q", "overflow"});
  q.stride_batch = int64_t(LQ) * HQ * D;
  out.stride_seq = INT64_MAX / 3;
  Expect(POSATTN_STATUS_BAD_STRIDE, {"out", "overflow"});
}

TEST_F(Validation, HeadMajorLayoutIsAccepted) {
  // [batch, heads, seq, head_dim] storage described through the strides
  for (posattn_tensor *t : {&q, &out}) {
    t->stride_seq = D;
    t->stride_head = int64_t(LQ) * D;
  }
  for (posattn_tensor *t : {&k, &v}) {
    t->stride_seq = D;
    t->stride_head = int64_t(LK) * D;
  }
  EXPECT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
}

TEST_F(Validation, PackedQkvInputsMayShareOneBuffer) {
  desc.batch = 1;
  desc.kv_len = desc.q_len = LQ;
  desc.q_heads = desc.kv_heads = HKV;
  std::vector<float> qkv(size_t(LQ) * 3 * HKV * D);
  for (size_t i = 0; i < qkv.size(); ++i) qkv[i] = std::sin(float(i));
  const int64_t row = 3 * HKV * D;
  posattn_tensor *ts[3] = {&q, &k, &v};
  for (int i = 0; i < 3; ++i) {
    ts[i]->data = qkv.data() + i * HKV * D;
    ts[i]->stride_seq = row;
    ts[i]->stride_head = D;
    ts[i]->stride_batch = row * LQ;
  }
  posattn_tensor_init_contiguous(&out, outbuf.data(), POSATTN_DTYPE_F32, LQ, HKV, D);
  EXPECT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
}

TEST_F(Validation, OutputMustNotOverlapInputs) {
  // in-place: out written over q
  std::vector<float> keep_q = qbuf;
  out.data = qbuf.data();
  Expect(POSATTN_STATUS_INVALID_ARGUMENT, {"out overlaps q"});
  EXPECT_EQ(qbuf, keep_q);
  // out starting inside v, both in one allocation that q and k do not touch
  std::vector<float> shared(vbuf.size() + outbuf.size());
  v.data = shared.data();
  out.data = shared.data() + vbuf.size() - 1;
  Expect(POSATTN_STATUS_INVALID_ARGUMENT, {"out overlaps v"});
  for (float x : shared) ASSERT_EQ(x, 0.0f);
}

TEST_F(Validation, LseMustNotOverlapInputsOrOut) {
  lse = kbuf.data();
  Expect(POSATTN_STATUS_INVALID_ARGUMENT, {"lse overlaps k"});
  lse = outbuf.data() + 8;
  {
    const posattn_status got = Forward();
    EXPECT_EQ(got, POSATTN_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(posattn_context_last_message(ctx)).find("overlaps"), std::string::npos);
  }
  EXPECT_TRUE(OutputsUntouched());
}

// ---- varlen ----------------------------------------------------------------------------------

class VarlenValidation : public Validation {
 protected:
  void SetUp() override {
    Validation::SetUp();
    // 2 sequences: q lengths 3 and 5 (max LQ = 5), kv lengths 7 and 4 (max LK = 7)
    cu_q = {0, 3, 8};
    cu_kv = {0, 7, 11};
    desc.cu_seqlens_q = cu_q.data();
    desc.cu_seqlens_kv = cu_kv.data();
    posattn_tensor_init_contiguous(&q, qbuf.data(), POSATTN_DTYPE_F32, 8, HQ, D);
    posattn_tensor_init_contiguous(&out, outbuf.data(), POSATTN_DTYPE_F32, 8, HQ, D);
    posattn_tensor_init_contiguous(&k, kbuf.data(), POSATTN_DTYPE_F32, 11, HKV, D);
    posattn_tensor_init_contiguous(&v, vbuf.data(), POSATTN_DTYPE_F32, 11, HKV, D);
  }
  std::vector<int32_t> cu_q, cu_kv;
};

TEST_F(VarlenValidation, ValidVarlenSucceeds) {
  q.stride_batch = -7;  // ignored for varlen
  ASSERT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
}

TEST_F(VarlenValidation, BothCuSeqlensOrNeither) {
  desc.cu_seqlens_kv = nullptr;
  ExpectDesc(POSATTN_STATUS_BAD_SEQLENS, {"cu_seqlens_q", "cu_seqlens_kv", "together"});
}

TEST_F(VarlenValidation, FirstEntryMustBeZero) {
  cu_q[0] = 1;
  ExpectDesc(POSATTN_STATUS_BAD_SEQLENS, {"desc->cu_seqlens_q[0] (1)", "must be 0"});
}

TEST_F(VarlenValidation, MustBeNonDecreasing) {
  cu_kv = {0, 7, 5};
  desc.cu_seqlens_kv = cu_kv.data();
  ExpectDesc(POSATTN_STATUS_BAD_SEQLENS,
             {"desc->cu_seqlens_kv[2] (5)", "cu_seqlens_kv[1] (7)", "non-decreasing"});
}

TEST_F(VarlenValidation, SequenceLongerThanTheMaximumLength) {
  desc.q_len = 4;  // sequence 1 has 5 tokens
  ExpectDesc(POSATTN_STATUS_BAD_SEQLENS, {"cu_seqlens_q", "sequence 1", "5 tokens", "desc->q_len (4)"});
}

TEST_F(VarlenValidation, DocumentsNeedIdenticalCuSeqlens) {
  desc.kv_len = LQ;
  cu_kv = {0, 3, 7};
  desc.cu_seqlens_kv = cu_kv.data();
  std::vector<int32_t> docs(8, 0);
  desc.doc_ids = docs.data();
  ExpectDesc(POSATTN_STATUS_BAD_MASK, {"doc_ids", "self-attention", "cu_seqlens_kv[2] (7)"});
}

TEST_F(VarlenValidation, DocumentIdsMustNotDecreaseInsideASequence) {
  desc.kv_len = LQ;
  cu_kv = cu_q;
  desc.cu_seqlens_kv = cu_kv.data();
  // a drop across the sequence boundary (index 2 -> 3) is fine, inside sequence 1 it is not
  std::vector<int32_t> docs = {4, 4, 5, 0, 0, 1, 1, 0};
  desc.doc_ids = docs.data();
  ExpectDesc(POSATTN_STATUS_BAD_MASK, {"desc->doc_ids[7] (0)", "doc_ids[6] (1)", "non-decreasing"});
  docs[7] = 2;
  EXPECT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
}

TEST_F(VarlenValidation, AnchorsLongerThanASequence) {
  desc.kv_len = LQ;
  cu_kv = cu_q;
  desc.cu_seqlens_kv = cu_kv.data();
  std::vector<int32_t> docs(8, 0);
  desc.doc_ids = docs.data();
  desc.num_anchor_tokens = 4;  // sequence 0 has 3 tokens
  ExpectDesc(POSATTN_STATUS_BAD_MASK, {"num_anchor_tokens (4)", "sequence 0"});
}

TEST_F(VarlenValidation, PositionIdsAreScannedOverAllTokens) {
  std::vector<int32_t> pos(8, 1);
  pos[6] = -2;
  desc.q_positions = pos.data();
  ExpectDesc(POSATTN_STATUS_BAD_POSITIONS, {"desc->q_positions[6] (-2)"});
}

// ---- mask, positions, scalars ----------------------------------------------------------------

TEST_F(Validation, CausalMustBeZeroOrOne) {
  desc.causal = 2;
  ExpectDesc(POSATTN_STATUS_BAD_MASK, {"desc->causal (2)", "0 or 1"});
  desc.causal = -1;
  ExpectDesc(POSATTN_STATUS_BAD_MASK, {"desc->causal (-1)"});
}

TEST_F(Validation, WindowsMustBeAtLeastMinusOne) {
  desc.window_left = -2;
  ExpectDesc(POSATTN_STATUS_BAD_MASK, {"desc->window_left (-2)", ">= -1"});
  desc.window_left = 3;
  desc.window_right = -7;
  ExpectDesc(POSATTN_STATUS_BAD_MASK, {"desc->window_right (-7)"});
}

TEST_F(Validation, DocumentsRequireSelfAttention) {
  std::vector<int32_t> docs(size_t(B) * LQ, 0);
  desc.doc_ids = docs.data();
  ExpectDesc(POSATTN_STATUS_BAD_MASK, {"doc_ids", "self-attention", "q_len (5)", "kv_len (7)"});
}

TEST_F(Validation, AnchorCountMustBeInRange) {
  desc.kv_len = LQ;
  std::vector<int32_t> docs(size_t(B) * LQ, 0);
  desc.doc_ids = docs.data();
  desc.num_anchor_tokens = -1;
  ExpectDesc(POSATTN_STATUS_BAD_MASK, {"num_anchor_tokens (-1)"});
  desc.num_anchor_tokens = LQ + 1;
  ExpectDesc(POSATTN_STATUS_BAD_MASK, {"num_anchor_tokens (6)", "q_len"});
}

TEST_F(Validation, DenseDocumentIdsMustNotDecrease) {
  desc.kv_len = LQ;
  std::vector<int32_t> docs = {0, 0, 1, 1, 2, /* sequence 1 */ 0, 1, 1, 0, 3};
  desc.doc_ids = docs.data();
  ExpectDesc(POSATTN_STATUS_BAD_MASK, {"desc->doc_ids[8] (0)", "sequence 1", "non-decreasing"});
}

TEST_F(Validation, PositionIdsMustBeNonNegativeAndBelow2To30) {
  std::vector<int32_t> qpos(size_t(B) * LQ, 3), kvpos(size_t(B) * LK, 3);
  desc.q_positions = qpos.data();
  desc.kv_positions = kvpos.data();
  qpos[7] = -1;
  ExpectDesc(POSATTN_STATUS_BAD_POSITIONS, {"desc->q_positions[7] (-1)", "[0, 2^30)"});
  qpos[7] = 0;
  kvpos[13] = 1 << 30;
  ExpectDesc(POSATTN_STATUS_BAD_POSITIONS, {"desc->kv_positions[13] (1073741824)"});
  kvpos[13] = (1 << 30) - 1;
  EXPECT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
}

TEST_F(Validation, SoftcapMustBeFiniteAndNonNegative) {
  for (float bad : {-1.0f, kNaN, kInf}) {
    SCOPED_TRACE(bad);
    desc.softcap = bad;
    ExpectDesc(POSATTN_STATUS_INVALID_ARGUMENT, {"desc->softcap"});
  }
}

TEST_F(Validation, SoftmaxScaleMustBeFiniteAndNonNegative) {
  for (float bad : {-0.5f, kNaN, -kInf}) {
    SCOPED_TRACE(bad);
    desc.softmax_scale = bad;
    ExpectDesc(POSATTN_STATUS_INVALID_ARGUMENT, {"desc->softmax_scale"});
  }
}

// ---- positional encodings --------------------------------------------------------------------

TEST_F(Validation, UnknownPeKind) {
  SetRaw(desc.pe.kind, 42);
  ExpectDesc(POSATTN_STATUS_BAD_ENUM, {"pe.kind (42)"});
}

class RopeValidation : public Validation {
 protected:
  void SetUp() override {
    Validation::SetUp();
    desc.pe.kind = POSATTN_PE_ROPE;
  }
  posattn_rope_params &rope() { return desc.pe.rope; }
};

TEST_F(RopeValidation, DefaultsAreValid) {
  EXPECT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
}

TEST_F(RopeValidation, RotaryDimRules) {
  rope().rotary_dim = 3;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.rotary_dim (3)", "even"});
  rope().rotary_dim = D + 2;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.rotary_dim (10)", "head_dim (8)"});
  rope().rotary_dim = -2;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.rotary_dim (-2)"});
}

TEST_F(RopeValidation, BaseMustExceedOne) {
  for (double bad : {1.0, 0.5, -3.0, double(kNaN), double(kInf)}) {
    SCOPED_TRACE(bad);
    rope().base = bad;
    ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.base", "> 1"});
  }
}

TEST_F(RopeValidation, EnumsAreChecked) {
  SetRaw(rope().layout, 2);
  ExpectDesc(POSATTN_STATUS_BAD_ENUM, {"pe.rope.layout (2)"});
  rope().layout = POSATTN_ROPE_GPTJ;
  SetRaw(rope().scaling, 8);
  ExpectDesc(POSATTN_STATUS_BAD_ENUM, {"pe.rope.scaling (8)"});
  rope().scaling = POSATTN_ROPE_SCALING_NONE;
  SetRaw(rope().angle_mode, -1);
  ExpectDesc(POSATTN_STATUS_BAD_ENUM, {"pe.rope.angle_mode (-1)"});
}

TEST_F(RopeValidation, AttentionFactorMustBeFiniteAndNonNegative) {
  rope().attention_factor = -1;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.attention_factor (-1)"});
}

TEST_F(RopeValidation, FactorRangeDependsOnScaling) {
  rope().scaling = POSATTN_ROPE_SCALING_LINEAR;
  rope().factor = 0;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.factor (0)", "> 0"});
  rope().factor = 0.5;  // interpolation below 1 is allowed for LINEAR
  EXPECT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
  for (posattn_rope_scaling sc : {POSATTN_ROPE_SCALING_NTK, POSATTN_ROPE_SCALING_DYNAMIC_NTK,
                                  POSATTN_ROPE_SCALING_LLAMA3}) {
    SCOPED_TRACE(int(sc));
    rope().scaling = sc;
    ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.factor (0.5)", ">= 1"});
  }
  // NONE ignores factor
  rope().scaling = POSATTN_ROPE_SCALING_NONE;
  rope().factor = -4;
  EXPECT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
}

TEST_F(RopeValidation, NtkNeedsRotaryDimAboveTwo) {
  rope().scaling = POSATTN_ROPE_SCALING_NTK;
  rope().factor = 2;
  rope().rotary_dim = 2;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.rotary_dim (2)", ">= 4"});
}

TEST_F(RopeValidation, DynamicNtkParameters) {
  rope().scaling = POSATTN_ROPE_SCALING_DYNAMIC_NTK;
  rope().factor = 2;
  rope().dynamic_seq_len = -1;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.dynamic_seq_len (-1)"});
  rope().dynamic_seq_len = 0;
  rope().original_max_position = 0;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.original_max_position (0)", ">= 1"});
}

TEST_F(RopeValidation, YarnParameters) {
  rope().scaling = POSATTN_ROPE_SCALING_YARN;
  rope().factor = 16;
  EXPECT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
  rope().beta_fast = 1;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.beta_fast (1)", "beta_slow (1)"});
  rope().beta_fast = 32;
  rope().beta_slow = 0;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"beta_slow (0)", "> 0"});
  rope().beta_slow = 1;
  rope().yarn_truncate = 2;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.yarn_truncate (2)", "0 or 1"});
  rope().yarn_truncate = 0;
  rope().original_max_position = -5;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.original_max_position (-5)"});
}

TEST_F(RopeValidation, Llama3FrequencyFactors) {
  rope().scaling = POSATTN_ROPE_SCALING_LLAMA3;
  rope().factor = 8;
  rope().high_freq_factor = 1;  // == low_freq_factor
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.high_freq_factor (1)", "low_freq_factor (1)"});
  rope().high_freq_factor = 4;
  rope().low_freq_factor = 0;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"low_freq_factor (0)", "> 0"});
}

TEST_F(RopeValidation, LongRopeNeedsPositiveExtFactors) {
  rope().scaling = POSATTN_ROPE_SCALING_LONGROPE;
  ExpectDesc(POSATTN_STATUS_NULL_POINTER, {"pe.rope.ext_factors", "NULL"});
  std::vector<float> ext(D / 2, 1.5f);
  ext[2] = 0;
  rope().ext_factors = ext.data();
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.ext_factors[2] (0)", "> 0"});
  ext[2] = kNaN;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.ext_factors[2]", "finite"});
  ext[2] = 2;
  rope().max_position = -1;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.max_position (-1)"});
  rope().max_position = 0;
  rope().original_max_position = 1;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.original_max_position (1)", ">= 2"});
  rope().original_max_position = 4096;
  EXPECT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
}

TEST_F(RopeValidation, InvFreqTableIsScanned) {
  rope().scaling = POSATTN_ROPE_SCALING_INV_FREQ;
  ExpectDesc(POSATTN_STATUS_NULL_POINTER, {"pe.rope.inv_freq"});
  std::vector<float> inv = {1.0f, 0.1f, 0.01f, -0.001f};
  rope().inv_freq = inv.data();
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.inv_freq[3]", "> 0"});
  inv[3] = kInf;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.inv_freq[3]", "finite"});
  inv[3] = 0.001f;
  EXPECT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
}

TEST_F(Validation, XposParameters) {
  desc.pe.kind = POSATTN_PE_XPOS;
  desc.pe.xpos.scale_base = 0;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.xpos.scale_base (0)", ">= 1"});
  desc.pe.xpos.scale_base = 512;
  desc.pe.xpos.gamma = -0.4;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.xpos.gamma (-0.4)"});
  desc.pe.xpos.gamma = 0.4;
  desc.pe.rope.base = 0.5;  // xPos rotates too, so its rope parameters are checked
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.rope.base (0.5)"});
}

TEST_F(Validation, AlibiSlopes) {
  desc.pe.kind = POSATTN_PE_ALIBI;
  EXPECT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << "NULL slopes select the standard ones: "
                                                 << posattn_context_last_message(ctx);
  std::vector<float> slopes = {0.5f, -0.25f, 0.125f, 0.0625f};
  desc.pe.alibi.slopes = slopes.data();
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.alibi.slopes[1] (-0.25)", ">= 0"});
  slopes[1] = kNaN;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.alibi.slopes[1]"});
  slopes[1] = 0;  // a zero slope is a head without bias
  EXPECT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
}

class FireValidation : public Validation {
 protected:
  void SetUp() override {
    Validation::SetUp();
    desc.pe.kind = POSATTN_PE_FIRE;
    const int w = desc.pe.fire.mlp_width;
    w1.assign(w, 0.3f);
    b1.assign(w, -0.1f);
    w2.assign(size_t(HQ) * w, 0.05f);
    b2.assign(HQ, 0.f);
    desc.pe.fire.w1 = w1.data();
    desc.pe.fire.b1 = b1.data();
    desc.pe.fire.w2 = w2.data();
    desc.pe.fire.b2 = b2.data();
  }
  std::vector<float> w1, b1, w2, b2;
};

TEST_F(FireValidation, ValidWeightsSucceed) {
  EXPECT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
}

TEST_F(FireValidation, WidthRange) {
  desc.pe.fire.mlp_width = 0;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.fire.mlp_width (0)", "[1, 1024]"});
  desc.pe.fire.mlp_width = 1025;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.fire.mlp_width (1025)"});
}

TEST_F(FireValidation, ScalarParameters) {
  desc.pe.fire.c = 0;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.fire.c (0)", "2^-64 <= |c| <= 2^64"});
  desc.pe.fire.c = -0.1;  // |c| is used
  EXPECT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
  desc.pe.fire.L = 0;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.fire.L (0)", "> 0"});
  desc.pe.fire.L = 512;
  desc.pe.fire.eps = -1e-6;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.fire.eps", ">= 0"});
}

TEST_F(FireValidation, WeightsMustBeGivenAndFinite) {
  desc.pe.fire.w1 = nullptr;
  ExpectDesc(POSATTN_STATUS_NULL_POINTER, {"pe.fire.w1"});
  desc.pe.fire.w1 = w1.data();
  desc.pe.fire.b2 = nullptr;
  ExpectDesc(POSATTN_STATUS_NULL_POINTER, {"pe.fire.b2"});
  desc.pe.fire.b2 = b2.data();
  w2.back() = kNaN;  // the last entry: the whole [q_heads][width] table is scanned
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS,
             {("pe.fire.w2[" + std::to_string(w2.size() - 1) + "]").c_str(), "finite"});
}

class T5Validation : public Validation {
 protected:
  void SetUp() override {
    Validation::SetUp();
    desc.pe.kind = POSATTN_PE_T5;
    table.assign(size_t(1024) * HQ, 0.25f);
    desc.pe.t5.table = table.data();
  }
  std::vector<float> table;
};

TEST_F(T5Validation, DefaultsAreValid) {
  EXPECT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
}

TEST_F(T5Validation, BucketCountRange) {
  desc.pe.t5.num_buckets = 1;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.t5.num_buckets (1)", "[2, 1024]"});
  desc.pe.t5.num_buckets = 1025;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.t5.num_buckets (1025)"});
  desc.pe.t5.num_buckets = 31;
  desc.pe.t5.bidirectional = 1;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.t5.num_buckets (31)", "even"});
  desc.pe.t5.bidirectional = 2;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.t5.bidirectional (2)", "0 or 1"});
}

TEST_F(T5Validation, MaxDistanceMustExceedMaxExact) {
  desc.pe.t5.max_distance = 16;  // causal max_exact = 32/2 = 16
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.t5.max_distance (16)", "max_exact (16"});
  desc.pe.t5.bidirectional = 1;  // bidirectional max_exact = 32/4 = 8
  EXPECT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
  desc.pe.t5.max_distance = 8;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.t5.max_distance (8)", "max_exact (8"});
}

TEST_F(T5Validation, TableMustBeGivenAndFinite) {
  desc.pe.t5.table = nullptr;
  ExpectDesc(POSATTN_STATUS_NULL_POINTER, {"pe.t5.table"});
  desc.pe.t5.table = table.data();
  table[size_t(32) * HQ - 1] = -kInf;  // last entry of [32][q_heads]
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.t5.table[127]", "finite"});
}

TEST_F(Validation, KerpleParameters) {
  std::vector<float> a(HQ, 0.5f), p(HQ, 1.5f);
  for (posattn_pe_kind kind : {POSATTN_PE_KERPLE_LOG, POSATTN_PE_KERPLE_POWER}) {
    SCOPED_TRACE(int(kind));
    desc.pe.kind = kind;
    desc.pe.kerple.a = nullptr;
    desc.pe.kerple.p = p.data();
    ExpectDesc(POSATTN_STATUS_NULL_POINTER, {"pe.kerple.a"});
    desc.pe.kerple.a = a.data();
    p[3] = 0;
    ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.kerple.p[3] (0)", "> 0"});
    p[3] = 1.5f;
    a[0] = kNaN;
    ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.kerple.a[0]", "finite"});
    a[0] = 0.5f;
    EXPECT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
  }
  p[2] = 2.5f;
  desc.pe.kind = POSATTN_PE_KERPLE_POWER;
  ExpectDesc(POSATTN_STATUS_BAD_PE_PARAMS, {"pe.kerple.p[2] (2.5)", "<= 2"});
  desc.pe.kind = POSATTN_PE_KERPLE_LOG;  // no upper bound on p for the log kernel
  EXPECT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
}

TEST_F(Validation, ParametersOfOtherPeKindsAreNotRead) {
  desc.pe.kind = POSATTN_PE_ALIBI;
  desc.pe.rope.base = -1;
  desc.pe.fire.mlp_width = 0;
  desc.pe.t5.num_buckets = 0;
  EXPECT_EQ(Forward(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
}

// ---- workspace -------------------------------------------------------------------------------

TEST_F(Validation, WorkspaceChecks) {
  if (ws_required == 0) GTEST_SKIP() << "the REF backend needs no workspace for this problem";
  const posattn_status small =
      posattn_forward(ctx, &desc, &q, &k, &v, &out, lse, ws, ws_required - 1);
  EXPECT_EQ(small, POSATTN_STATUS_WORKSPACE_TOO_SMALL);
  const std::string msg = posattn_context_last_message(ctx);
  EXPECT_NE(msg.find(std::to_string(ws_required - 1)), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(ws_required)), std::string::npos) << msg;
  EXPECT_EQ(posattn_forward(ctx, &desc, &q, &k, &v, &out, lse, nullptr, ws_required),
            POSATTN_STATUS_NULL_POINTER);
  EXPECT_EQ(posattn_forward(ctx, &desc, &q, &k, &v, &out, lse, static_cast<char *>(ws) + 16,
                            ws_required),
            POSATTN_STATUS_BAD_ALIGNMENT);
  EXPECT_NE(std::string(posattn_context_last_message(ctx)).find("256"), std::string::npos);
  EXPECT_TRUE(OutputsUntouched());
}

TEST_F(Validation, WorkspaceMustNotOverlapOutputs) {
  if (ws_required == 0) GTEST_SKIP() << "the REF backend needs no workspace for this problem";
  const size_t bytes = (ws_required + 255) / 256 * 256;
  void *both = std::aligned_alloc(256, bytes + (outbuf.size() * sizeof(float) + 255) / 256 * 256);
  ASSERT_NE(both, nullptr);
  float *o = reinterpret_cast<float *>(static_cast<char *>(both) + bytes - 256);
  for (size_t i = 0; i + 1 < outbuf.size(); ++i) o[i] = kSentinel;
  out.data = o;
  EXPECT_EQ(posattn_forward(ctx, &desc, &q, &k, &v, &out, lse, both, ws_required),
            POSATTN_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(posattn_context_last_message(ctx)).find("workspace overlaps out"),
            std::string::npos)
      << posattn_context_last_message(ctx);
  for (size_t i = 0; i + 1 < outbuf.size(); ++i) ASSERT_EQ(o[i], kSentinel);
  std::free(both);
}

}  // namespace
