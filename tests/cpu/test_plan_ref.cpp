// The plan/run API on the REF backend (posattn.h, "Serving: plan once, run per layer"):
//  - a run equals REF posattn_decode for n_b <= 8 (bit for bit: both go through one fp64 row);
//  - a run of prefill chunks, decodes and empty sequences in one batch equals REF posattn_forward
//    on each sequence's gathered dense problem, for every PE kind, window, softcap, sinks, GQA,
//    page sizes 1, 16, 256;
//  - plan validation and the run's / append's host-side errors, each with its status and a
//    message naming the field;
//  - the bad-index grid: each kind of bad device-side index is reported by posattn_plan_check
//    with sequence, element and value; the offending sequence's rows stay untouched, the others
//    are right, nothing outside the outputs is written;
//  - replay: one plan, runs with changed lengths, tables, query counts and batch;
//  - append: posattn_plan_append equals posattn_cache_append (the pools, byte for byte).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "plan_fixture.h"

namespace {


// Runs D's problem on a fresh REF plan; R receives the outputs. Expects SUCCESS, a clean check
// and intact guards.
void run_ok(posattn_context *ctx, PlanData &D, RunOut &R) {
  PlanRun P(ctx, D.desc);
  ASSERT_EQ(P.status, POSATTN_STATUS_SUCCESS) << P.message;
  posattn_run_args a = D.args(R.out.data, R.lsep(), P.ws.data, P.ws_bytes);
  ASSERT_EQ(posattn_plan_run(ctx, P.plan, &a), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
  EXPECT_EQ(P.check(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
  EXPECT_TRUE(R.guards_ok());
  EXPECT_TRUE(pat_buf_guards_ok(&P.ws));
}

// ---- (a) equals posattn_decode for n_b <= 8 ------------------------------------------------------

struct DecodeEqCase {
  const char *name;
  int n, page_size;
  posattn_pe_kind pe;
  bool explicit_positions, sinks;
  posattn_dtype cache_dt;
};

class PlanRefEqualsDecode : public ::testing::TestWithParam<DecodeEqCase> {};

TEST_P(PlanRefEqualsDecode, BitForBit) {
  const DecodeEqCase &e = GetParam();
  TestContext C(POSATTN_BACKEND_REF);
  PlanCase pc;
  pc.seqs = {{e.n, e.n + 6}, {e.n, std::max(0, e.n - 2)}, {e.n, 29}, {e.n, 1}};
  pc.page_size = e.page_size;
  pc.pe = e.pe;
  pc.explicit_positions = e.explicit_positions;
  pc.sinks = e.sinks;
  pc.cache_dt = e.cache_dt;
  pc.scale_kind = POSATTN_KV_SCALE_PER_HEAD;
  pc.q_dt = POSATTN_DTYPE_BF16;
  pc.window_left = e.explicit_positions ? 7 : -1;
  pc.softcap = e.explicit_positions ? 2.5f : 0.f;
  pc.seed = uint64_t(e.n * 100 + e.page_size);
  PlanData D(pc);
  RunOut R(D);
  run_ok(C.ctx, D, R);

  // the same problem as a decode: block table rows of bt_stride entries, positions as given
  posattn_kv_cache cache;
  posattn_kv_cache_init(&cache, D.kpool.data, D.vpool.data, pc.cache_dt, D.num_pages, pc.page_size, pc.hkv, pc.d);
  cache.scale_kind = pc.scale_kind;
  if (pc.fp8()) {
    cache.k_scale = D.k_scale.data();
    cache.v_scale = D.v_scale.data();
  }
  posattn_decode_desc dd;
  posattn_decode_desc_init(&dd);
  dd.batch = D.batch;
  dd.q_heads = pc.hq;
  dd.head_dim = pc.d;
  dd.num_q_tokens = e.n;
  dd.cache_lens = D.kv_lens.data();
  dd.block_table = D.block_table.data();
  dd.max_pages_per_seq = int32_t(D.bt_stride);
  if (pc.explicit_positions) {
    dd.q_positions = D.q_pos.data();
    dd.kv_positions = D.kv_pos.data();  // kvp_stride = bt_stride * page_size
  }
  dd.window_left = pc.window_left;
  dd.softcap = pc.softcap;
  dd.sink_logits = pc.sinks ? D.sinks.data() : nullptr;
  dd.pe = D.desc.pe;
  size_t ws = 0;
  ASSERT_EQ(posattn_decode_workspace_size(C.ctx, &dd, &cache, pc.q_dt, pc.out_dt, &ws), POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(C.ctx);
  const int rows = D.rows;
  std::vector<float> out(size_t(rows) * pc.hq * pc.d), lse(size_t(rows) * pc.hq);
  pat_buf w{};
  ASSERT_EQ(pat_buf_alloc(&w, ws ? ws : 1), 0);
  posattn_tensor tq, to;
  posattn_tensor_init_contiguous(&tq, D.q.data, pc.q_dt, e.n, pc.hq, pc.d);
  posattn_tensor_init_contiguous(&to, out.data(), POSATTN_DTYPE_F32, e.n, pc.hq, pc.d);
  const posattn_status st = posattn_decode(C.ctx, &dd, &cache, &tq, &to, lse.data(), w.data, ws);
  pat_buf_free(&w);
  ASSERT_EQ(st, POSATTN_STATUS_SUCCESS) << posattn_context_last_message(C.ctx);
  int64_t differ = 0;
  for (int b = 0; b < D.batch; ++b)
    for (int t = 0; t < e.n; ++t)
      for (int h = 0; h < pc.hq; ++h) {
        const int64_t row = int64_t(b) * e.n + t;
        const float dl = lse[(size_t(b) * pc.hq + size_t(h)) * e.n + size_t(t)];
        if (!(R.l(row, h) == dl || (std::isnan(R.l(row, h)) && std::isnan(dl)))) ++differ;
        for (int f = 0; f < pc.d; ++f)
          if (R.o(row, h, f) != out[(size_t(row) * pc.hq + size_t(h)) * pc.d + size_t(f)]) ++differ;
      }
  EXPECT_EQ(differ, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Grid, PlanRefEqualsDecode,
    ::testing::Values(
        DecodeEqCase{"n1_p16_none", 1, 16, POSATTN_PE_NONE, false, false, POSATTN_DTYPE_F32},
        DecodeEqCase{"n1_p1_rope_pos_sinks", 1, 1, POSATTN_PE_ROPE, true, true, POSATTN_DTYPE_F32},
        DecodeEqCase{"n3_p4_alibi_pos", 3, 4, POSATTN_PE_ALIBI, true, false, POSATTN_DTYPE_BF16},
        DecodeEqCase{"n8_p16_rope_sinks", 8, 16, POSATTN_PE_ROPE, false, true, POSATTN_DTYPE_BF16},
        DecodeEqCase{"n5_p3_t5_pos", 5, 3, POSATTN_PE_T5, true, false, POSATTN_DTYPE_F32},
        DecodeEqCase{"n2_p16_rope_fp8e4m3", 2, 16, POSATTN_PE_ROPE, true, true, POSATTN_DTYPE_FP8_E4M3},
        DecodeEqCase{"n4_p8_kerplelog_fp8e5m2", 4, 8, POSATTN_PE_KERPLE_LOG, false, false,
                     POSATTN_DTYPE_FP8_E5M2}),
    [](const ::testing::TestParamInfo<DecodeEqCase> &i) { return std::string(i.param.name); });

// ---- (b) prefill chunks + decode + empty sequences vs posattn_forward --------------------------

struct ForwardEqCase {
  posattn_pe_kind pe;
  bool k_rotated;
  int page_size;
  bool features;  // window, softcap, softmax_scale, sinks, explicit positions
};

std::string pe_name(posattn_pe_kind k) {
  switch (k) {
    case POSATTN_PE_NONE: return "none";
    case POSATTN_PE_ROPE: return "rope";
    case POSATTN_PE_ALIBI: return "alibi";
    case POSATTN_PE_FIRE: return "fire";
    case POSATTN_PE_T5: return "t5";
    case POSATTN_PE_KERPLE_LOG: return "kerplelog";
    case POSATTN_PE_KERPLE_POWER: return "kerplepower";
    default: return "other";
  }
}

class PlanRefEqualsForward : public ::testing::TestWithParam<ForwardEqCase> {};

TEST_P(PlanRefEqualsForward, MixedBatch) {
  const ForwardEqCase &e = GetParam();
  TestContext C(POSATTN_BACKEND_REF);
  PlanCase pc;
  // decode; a chunk onto a prefix; padding (n 0, garbage length); an empty cache with queries;
  // a fresh prefill; more queries than cached tokens; an empty cache without queries
  pc.seqs = {{1, 50}, {37, 57}, {0, 10}, {2, 0}, {200, 200}, {3, 2}, {0, 0}};
  pc.hq = 6;
  pc.hkv = 2;  // GQA 3:1
  pc.page_size = e.page_size;
  pc.pe = e.pe;
  pc.k_rotated = e.k_rotated;
  if (e.features) {
    pc.explicit_positions = true;
    pc.sinks = true;
    pc.window_left = 45;
    pc.softcap = 4.f;
    pc.softmax_scale = 0.3f;
  }
  pc.seed = uint64_t(e.pe * 1000 + e.page_size * 2 + (e.features ? 1 : 0) + (e.k_rotated ? 7 : 0));
  PlanData D(pc);
  D.kv_lens[2] = -99;  // padding: n_b = 0, so its length and table are never read
  RunOut R(D);
  run_ok(C.ctx, D, R);
  const double tol = e.k_rotated ? 2e-5 : 1e-6;  // rotated K was rounded to f32 once
  for (int b = 0; b < D.batch; ++b) expect_seq_matches_forward(C.ctx, D, R, b, tol);
  EXPECT_TRUE(R.untouched(D.rows, D.max_q));  // rows past the last sequence
}

std::vector<ForwardEqCase> forward_grid() {
  std::vector<ForwardEqCase> v;
  const posattn_pe_kind kinds[] = {POSATTN_PE_NONE, POSATTN_PE_ROPE, POSATTN_PE_ALIBI,
                                   POSATTN_PE_FIRE, POSATTN_PE_T5, POSATTN_PE_KERPLE_LOG,
                                   POSATTN_PE_KERPLE_POWER};
  for (posattn_pe_kind k : kinds)
    for (int ps : {1, 16, 256})
      for (bool features : {false, true}) {
        v.push_back({k, false, ps, features});
        if (k == POSATTN_PE_ROPE) v.push_back({k, true, ps, features});
      }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Grid, PlanRefEqualsForward, ::testing::ValuesIn(forward_grid()),
                         [](const ::testing::TestParamInfo<ForwardEqCase> &i) {
                           return pe_name(i.param.pe) + (i.param.k_rotated ? "_rotated" : "") +
                                  "_p" + std::to_string(i.param.page_size) +
                                  (i.param.features ? "_window_softcap_sinks_pos" : "");
                         });

// The NaN rule per (row, head): a non-finite value reaches exactly the rows that see its key.
TEST(PlanRefNanRule, PoisonsOnlyTheRowsThatSeeTheKey) {
  TestContext C(POSATTN_BACKEND_REF);
  PlanCase pc;
  pc.seqs = {{2, 10}, {3, 12}};
  PlanData D(pc);
  const int64_t row_elems = int64_t(pc.hkv) * pc.d;
  auto slot_of = [&](int b, int j) { return (int64_t(D.page_of(b, j)) * pc.page_size + j % pc.page_size) * row_elems; };
  static_cast<float *>(D.vpool.data)[slot_of(0, 4) + 3] = NAN;               // kv head 0, token 4 of 0
  static_cast<float *>(D.kpool.data)[slot_of(1, 11) + pc.d + 1] = INFINITY;  // kv head 1, last token of 1
  RunOut R(D);
  run_ok(C.ctx, D, R);
  for (int h = 0; h < pc.hq; ++h) {
    const bool head1 = h / (pc.hq / pc.hkv) == 1;
    // sequence 0 (rows 0, 1): both queries see token 4, through kv head 0
    for (int64_t r = 0; r < 2; ++r) {
      EXPECT_EQ(std::isnan(R.l(r, h)), !head1) << "row " << r << " head " << h;
      EXPECT_EQ(std::isnan(R.o(r, h, 0)), !head1) << "row " << r << " head " << h;
    }
    // sequence 1 (rows 2..4): only query 2 (i' = 11) sees token 11, and only through kv head 1
    for (int64_t r = 2; r < 4; ++r) EXPECT_TRUE(std::isfinite(R.l(r, h)) && std::isfinite(R.o(r, h, 5)));
    EXPECT_EQ(std::isnan(R.l(4, h)), head1) << "head " << h;
    EXPECT_EQ(std::isnan(R.o(4, h, 0)), head1) << "head " << h;
  }
}

// ---- (c) plan validation ---------------------------------------------------------------------

struct DescRule {
  const char *name;
  std::function<void(posattn_plan_desc &)> mutate;
  posattn_status status;
  const char *field;  // the message must name it
};

class PlanRefValidation : public ::testing::TestWithParam<DescRule> {};

TEST_P(PlanRefValidation, RuleNamesTheField) {
  const DescRule &r = GetParam();
  TestContext C(POSATTN_BACKEND_REF);
  PlanData D(PlanCase{});
  posattn_plan_desc d = D.desc;
  r.mutate(d);
  posattn_plan *plan = reinterpret_cast<posattn_plan *>(&d);  // must be overwritten with NULL
  EXPECT_EQ(posattn_plan_create(C.ctx, &d, &plan), r.status);
  EXPECT_EQ(plan, nullptr);
  const std::string msg = posattn_context_last_message(C.ctx);
  EXPECT_NE(msg.find(r.field), std::string::npos) << msg;
}

const float kBadW[4] = {1.f, NAN, 1.f, 1.f};

INSTANTIATE_TEST_SUITE_P(
    Rules, PlanRefValidation,
    ::testing::Values(
        DescRule{"max_batch", [](posattn_plan_desc &d) { d.max_batch = 0; }, POSATTN_STATUS_BAD_SIZE, "max_batch"},
        DescRule{"max_q_tokens", [](posattn_plan_desc &d) { d.max_q_tokens = 0; }, POSATTN_STATUS_BAD_SIZE, "max_q_tokens"},
        DescRule{"max_pages_per_seq", [](posattn_plan_desc &d) { d.max_pages_per_seq = 0; }, POSATTN_STATUS_BAD_SIZE, "max_pages_per_seq"},
        DescRule{"capacity", [](posattn_plan_desc &d) { d.max_pages_per_seq = 1 << 30; }, POSATTN_STATUS_BAD_SIZE, "max_pages_per_seq"},
        DescRule{"max_position", [](posattn_plan_desc &d) { d.max_position = 1 << 30; }, POSATTN_STATUS_BAD_POSITIONS, "max_position"},
        DescRule{"max_position_neg", [](posattn_plan_desc &d) { d.max_position = -1; }, POSATTN_STATUS_BAD_POSITIONS, "max_position"},
        DescRule{"q_heads", [](posattn_plan_desc &d) { d.q_heads = 3; }, POSATTN_STATUS_BAD_SIZE, "q_heads"},
        DescRule{"head_dim", [](posattn_plan_desc &d) { d.head_dim = 32; }, POSATTN_STATUS_BAD_SIZE, "head_dim"},
        DescRule{"causal", [](posattn_plan_desc &d) { d.causal = 2; }, POSATTN_STATUS_BAD_MASK, "causal"},
        DescRule{"window_left", [](posattn_plan_desc &d) { d.window_left = -2; }, POSATTN_STATUS_BAD_MASK, "window_left"},
        DescRule{"softcap", [](posattn_plan_desc &d) { d.softcap = -1.f; }, POSATTN_STATUS_INVALID_ARGUMENT, "softcap"},
        DescRule{"softmax_scale", [](posattn_plan_desc &d) { d.softmax_scale = INFINITY; }, POSATTN_STATUS_INVALID_ARGUMENT, "softmax_scale"},
        DescRule{"use_sinks", [](posattn_plan_desc &d) { d.use_sinks = 2; }, POSATTN_STATUS_INVALID_ARGUMENT, "use_sinks"},
        DescRule{"num_splits", [](posattn_plan_desc &d) { d.num_splits = 257; }, POSATTN_STATUS_BAD_SIZE, "num_splits"},
        DescRule{"q_dtype_fp8", [](posattn_plan_desc &d) { d.q_dtype = POSATTN_DTYPE_FP8_E4M3; }, POSATTN_STATUS_BAD_DTYPE, "q_dtype"},
        DescRule{"out_dtype_enum", [](posattn_plan_desc &d) { d.out_dtype = posattn_dtype(99); }, POSATTN_STATUS_BAD_ENUM, "out_dtype"},
        DescRule{"page_size", [](posattn_plan_desc &d) { d.cache.page_size = 0; }, POSATTN_STATUS_BAD_SIZE, "page_size"},
        DescRule{"num_pages", [](posattn_plan_desc &d) { d.cache.num_pages = 0; }, POSATTN_STATUS_BAD_SIZE, "num_pages"},
        DescRule{"xpos", [](posattn_plan_desc &d) { d.pe.kind = POSATTN_PE_XPOS; }, POSATTN_STATUS_NOT_SUPPORTED, "XPOS"},
        DescRule{"rope_base", [](posattn_plan_desc &d) { d.pe.kind = POSATTN_PE_ROPE; d.pe.rope.base = 0.5; }, POSATTN_STATUS_BAD_PE_PARAMS, "base"},
        DescRule{"dynamic_ntk_rotated",
                 [](posattn_plan_desc &d) {
                   d.pe.kind = POSATTN_PE_ROPE;
                   d.pe.rope.scaling = POSATTN_ROPE_SCALING_DYNAMIC_NTK;
                   d.pe.rope.factor = 2.0;
                   d.cache.k_rotated = 1;
                 },
                 POSATTN_STATUS_NOT_SUPPORTED, "DYNAMIC_NTK"},
        DescRule{"fire_nan_weight",
                 [](posattn_plan_desc &d) {
                   static std::vector<float> w(4 * 8, 0.5f);
                   d.pe.kind = POSATTN_PE_FIRE;
                   d.pe.fire.mlp_width = 4;
                   d.pe.fire.w1 = kBadW;
                   d.pe.fire.b1 = w.data();
                   d.pe.fire.w2 = w.data();
                   d.pe.fire.b2 = w.data();
                 },
                 POSATTN_STATUS_BAD_PE_PARAMS, "w1"}),
    [](const ::testing::TestParamInfo<DescRule> &i) { return std::string(i.param.name); });

TEST(PlanRefLifecycle, CreateDestroyQueries) {
  TestContext C(POSATTN_BACKEND_REF);
  PlanData D(PlanCase{});
  posattn_plan *plan = nullptr;
  EXPECT_EQ(posattn_plan_create(nullptr, &D.desc, &plan), POSATTN_STATUS_NULL_POINTER);
  EXPECT_EQ(posattn_plan_create(C.ctx, nullptr, &plan), POSATTN_STATUS_NULL_POINTER);
  EXPECT_EQ(posattn_plan_create(C.ctx, &D.desc, nullptr), POSATTN_STATUS_NULL_POINTER);
  posattn_plan_destroy(nullptr);
  size_t bytes = 0;
  EXPECT_EQ(posattn_plan_workspace_size(nullptr, &bytes), POSATTN_STATUS_NULL_POINTER);
  ASSERT_EQ(posattn_plan_create(C.ctx, &D.desc, &plan), POSATTN_STATUS_SUCCESS);
  EXPECT_EQ(posattn_plan_workspace_size(plan, nullptr), POSATTN_STATUS_NULL_POINTER);
  ASSERT_EQ(posattn_plan_workspace_size(plan, &bytes), POSATTN_STATUS_SUCCESS);
  // the error record, then O(head_dim) scratch: independent of the cache length
  EXPECT_GE(bytes, 256u);
  EXPECT_LE(bytes, 256u + 8u * (3u * 16u + 8u) + 255u);
  posattn_plan_destroy(plan);
}

TEST(PlanRefLifecycle, PeArraysAreCopiedAtCreation) {
  TestContext C(POSATTN_BACKEND_REF);
  PlanCase pc;
  pc.pe = POSATTN_PE_ALIBI;
  pc.seqs = {{4, 20}};
  PlanData D(pc);
  std::vector<float> slopes = {0.5f, 0.25f, 0.125f, 0.0625f};
  D.desc.pe.alibi.slopes = slopes.data();
  RunOut before(D);
  run_ok(C.ctx, D, before);
  // create a plan, then scribble over the caller's array: the plan must not see it
  PlanRun P(C.ctx, D.desc);
  ASSERT_EQ(P.status, POSATTN_STATUS_SUCCESS) << P.message;
  for (float &s : slopes) s = 9.f;
  RunOut after(D);
  posattn_run_args a = D.args(after.out.data, after.lsep(), P.ws.data, P.ws_bytes);
  ASSERT_EQ(posattn_plan_run(C.ctx, P.plan, &a), POSATTN_STATUS_SUCCESS);
  for (int64_t r = 0; r < D.rows; ++r)
    for (int h = 0; h < pc.hq; ++h) EXPECT_EQ(after.l(r, h), before.l(r, h));
}

// ---- (c) run and append host-side errors ---------------------------------------------------------

struct ArgRule {
  const char *name;
  std::function<void(posattn_run_args &, PlanData &)> mutate;
  posattn_status status;
  const char *field;
};

class PlanRefRunArgs : public ::testing::TestWithParam<ArgRule> {};

TEST_P(PlanRefRunArgs, RefusedBeforeAnythingIsWritten) {
  const ArgRule &r = GetParam();
  TestContext C(POSATTN_BACKEND_REF);
  PlanCase pc;
  pc.sinks = true;
  PlanData D(pc);
  PlanRun P(C.ctx, D.desc);
  ASSERT_EQ(P.status, POSATTN_STATUS_SUCCESS) << P.message;
  RunOut R(D);
  posattn_run_args a = D.args(R.out.data, R.lsep(), P.ws.data, P.ws_bytes);
  r.mutate(a, D);
  EXPECT_EQ(posattn_plan_run(C.ctx, P.plan, &a), r.status);
  const std::string msg = posattn_context_last_message(C.ctx);
  EXPECT_NE(msg.find(r.field), std::string::npos) << msg;
  EXPECT_TRUE(R.untouched(0, D.max_q));
  EXPECT_TRUE(R.guards_ok());
  EXPECT_EQ(P.check(), POSATTN_STATUS_SUCCESS);
}

INSTANTIATE_TEST_SUITE_P(
    Rules, PlanRefRunArgs,
    ::testing::Values(
        ArgRule{"q_indptr_null", [](posattn_run_args &a, PlanData &) { a.q_indptr = nullptr; }, POSATTN_STATUS_NULL_POINTER, "q_indptr"},
        ArgRule{"kv_lens_null", [](posattn_run_args &a, PlanData &) { a.kv_lens = nullptr; }, POSATTN_STATUS_NULL_POINTER, "kv_lens"},
        ArgRule{"block_table_null", [](posattn_run_args &a, PlanData &) { a.block_table = nullptr; }, POSATTN_STATUS_NULL_POINTER, "block_table"},
        ArgRule{"k_pages_null", [](posattn_run_args &a, PlanData &) { a.k_pages = nullptr; }, POSATTN_STATUS_NULL_POINTER, "k_pages"},
        ArgRule{"q_null", [](posattn_run_args &a, PlanData &) { a.q.data = nullptr; }, POSATTN_STATUS_NULL_POINTER, "q"},
        ArgRule{"out_null", [](posattn_run_args &a, PlanData &) { a.out.data = nullptr; }, POSATTN_STATUS_NULL_POINTER, "out"},
        ArgRule{"sinks_null", [](posattn_run_args &a, PlanData &) { a.sink_logits = nullptr; }, POSATTN_STATUS_NULL_POINTER, "sink_logits"},
        ArgRule{"batch_zero", [](posattn_run_args &a, PlanData &) { a.batch = 0; }, POSATTN_STATUS_BAD_SIZE, "batch"},
        ArgRule{"batch_over_max", [](posattn_run_args &a, PlanData &D) { a.batch = D.desc.max_batch + 1; }, POSATTN_STATUS_BAD_SIZE, "max_batch"},
        ArgRule{"block_table_stride", [](posattn_run_args &a, PlanData &D) { a.block_table_stride = D.mpps - 1; }, POSATTN_STATUS_BAD_STRIDE, "block_table_stride"},
        ArgRule{"kv_positions_stride",
                [](posattn_run_args &a, PlanData &D) {
                  a.kv_positions = D.kv_pos.data();
                  a.kv_positions_stride = D.capacity() - 1;
                },
                POSATTN_STATUS_BAD_STRIDE, "kv_positions_stride"},
        ArgRule{"q_dtype", [](posattn_run_args &a, PlanData &) { a.q.dtype = POSATTN_DTYPE_BF16; }, POSATTN_STATUS_BAD_DTYPE, "q"},
        ArgRule{"out_dtype", [](posattn_run_args &a, PlanData &) { a.out.dtype = POSATTN_DTYPE_F16; }, POSATTN_STATUS_BAD_DTYPE, "out"},
        ArgRule{"out_stride_overlap", [](posattn_run_args &a, PlanData &) { a.out.stride_head = 1; }, POSATTN_STATUS_BAD_STRIDE, "out"},
        ArgRule{"workspace_too_small", [](posattn_run_args &a, PlanData &) { a.workspace_bytes -= 8; }, POSATTN_STATUS_WORKSPACE_TOO_SMALL, "workspace"},
        ArgRule{"workspace_null", [](posattn_run_args &a, PlanData &) { a.workspace = nullptr; }, POSATTN_STATUS_NULL_POINTER, "workspace"},
        ArgRule{"lse_overlaps_out",
                [](posattn_run_args &a, PlanData &) { a.lse = static_cast<float *>(a.out.data); },
                POSATTN_STATUS_INVALID_ARGUMENT, "lse"}),
    [](const ::testing::TestParamInfo<ArgRule> &i) { return std::string(i.param.name); });

TEST(PlanRefRunArgsMore, MisalignedWorkspaceAndWrongContext) {
  TestContext C(POSATTN_BACKEND_REF);
  PlanData D(PlanCase{});
  PlanRun P(C.ctx, D.desc);
  ASSERT_EQ(P.status, POSATTN_STATUS_SUCCESS) << P.message;
  RunOut R(D);
  // a workspace big enough but not 256-byte aligned
  pat_buf big{};
  ASSERT_EQ(pat_buf_alloc(&big, P.ws_bytes + 512), 0);
  posattn_run_args a = D.args(R.out.data, R.lsep(), static_cast<char *>(big.data) + 8, P.ws_bytes + 256);
  EXPECT_EQ(posattn_plan_run(C.ctx, P.plan, &a), POSATTN_STATUS_BAD_ALIGNMENT);
  EXPECT_NE(std::string(posattn_context_last_message(C.ctx)).find("workspace"), std::string::npos);
  EXPECT_EQ(posattn_plan_workspace_init(C.ctx, P.plan, static_cast<char *>(big.data) + 8, P.ws_bytes + 256),
            POSATTN_STATUS_BAD_ALIGNMENT);
  pat_buf_free(&big);
  // NULL args / plan / ctx
  EXPECT_EQ(posattn_plan_run(nullptr, P.plan, &a), POSATTN_STATUS_NULL_POINTER);
  EXPECT_EQ(posattn_plan_run(C.ctx, nullptr, &a), POSATTN_STATUS_NULL_POINTER);
  EXPECT_EQ(posattn_plan_run(C.ctx, P.plan, nullptr), POSATTN_STATUS_NULL_POINTER);
  EXPECT_EQ(posattn_plan_check(C.ctx, P.plan, nullptr, P.ws_bytes), POSATTN_STATUS_NULL_POINTER);
  // a context of another backend
  TestContext E(POSATTN_BACKEND_EMU);
  a = D.args(R.out.data, R.lsep(), P.ws.data, P.ws_bytes);
  EXPECT_EQ(posattn_plan_run(E.ctx, P.plan, &a), POSATTN_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(posattn_context_last_message(E.ctx)).find("backend"), std::string::npos);
  EXPECT_TRUE(R.untouched(0, D.max_q));
}

// ---- (d) bad device-side indices ------------------------------------------------------------------

struct BadIndex {
  const char *name;
  // plants the bad index into D (whose sequences are {3, 9}, {4, 14}, {2, 7}, page size 4)
  std::function<void(PlanData &)> plant;
  posattn_status status;       // of posattn_plan_check
  std::vector<std::string> msg;  // substrings of its message
  std::vector<int> skipped;    // the sequences not written; {-1}: the whole run; {}: none
};

class PlanRefBadIndex : public ::testing::TestWithParam<BadIndex> {};

TEST_P(PlanRefBadIndex, ReportedSkippedAndContained) {
  const BadIndex &bi = GetParam();
  TestContext C(POSATTN_BACKEND_REF);
  PlanCase pc;
  pc.seqs = {{3, 9}, {4, 14}, {2, 7}};
  pc.explicit_positions = true;
  pc.pe = POSATTN_PE_ROPE;
  pc.extra_q_rows = 0;
  PlanData D(pc);
  D.desc.max_position = 500;
  bi.plant(D);
  PlanRun P(C.ctx, D.desc);
  ASSERT_EQ(P.status, POSATTN_STATUS_SUCCESS) << P.message;
  RunOut R(D);
  posattn_run_args a = D.args(R.out.data, R.lsep(), P.ws.data, P.ws_bytes);
  ASSERT_EQ(posattn_plan_run(C.ctx, P.plan, &a), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(C.ctx);
  EXPECT_TRUE(R.guards_ok());
  EXPECT_TRUE(pat_buf_guards_ok(&P.ws));
  EXPECT_EQ(P.check(), bi.status);
  const std::string msg = posattn_context_last_message(C.ctx);
  for (const std::string &s : bi.msg) EXPECT_NE(msg.find(s), std::string::npos) << "'" << s << "' not in: " << msg;
  EXPECT_EQ(P.check(), POSATTN_STATUS_SUCCESS);  // check cleared the record
  // the run's rows: the offending sequence untouched, the others right
  PlanData Clean(pc);  // same seed: the unplanted problem
  for (int b = 0; b < D.batch; ++b) {
    const int64_t r0 = Clean.q_indptr[size_t(b)], r1 = Clean.q_indptr[size_t(b) + 1];
    const bool skipped = std::find(bi.skipped.begin(), bi.skipped.end(), -1) != bi.skipped.end() ||
                         std::find(bi.skipped.begin(), bi.skipped.end(), b) != bi.skipped.end();
    if (skipped) EXPECT_TRUE(R.untouched(r0, r1)) << "sequence " << b;
    else expect_seq_matches_forward(C.ctx, Clean, R, b, 1e-6);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Grid, PlanRefBadIndex,
    ::testing::Values(
        BadIndex{"q_indptr_start", [](PlanData &D) { D.q_indptr[0] = 1; }, POSATTN_STATUS_BAD_SEQLENS,
                 {"q_indptr[0] = 1", "run"}, {-1}},
        BadIndex{"q_indptr_decreasing", [](PlanData &D) { D.q_indptr[2] = D.q_indptr[1] - 1; },
                 POSATTN_STATUS_BAD_SEQLENS, {"q_indptr[2] = 2"}, {-1}},
        BadIndex{"q_indptr_beyond_max_q_tokens", [](PlanData &D) { D.q_indptr[3] = D.max_q + 1; },
                 POSATTN_STATUS_BAD_SEQLENS, {"q_indptr[3] = 10", "max_q_tokens (9)"}, {-1}},
        BadIndex{"kv_len_negative", [](PlanData &D) { D.kv_lens[1] = -1; }, POSATTN_STATUS_BAD_SEQLENS,
                 {"sequence 1", "kv_lens[1] = -1"}, {1}},
        BadIndex{"kv_len_beyond_capacity", [](PlanData &D) { D.kv_lens[0] = int32_t(D.capacity()) + 1; },
                 POSATTN_STATUS_BAD_SEQLENS, {"sequence 0", "kv_lens[0] = 21"}, {0}},
        BadIndex{"page_minus_one",
                 [](PlanData &D) { D.block_table[size_t(1) * size_t(D.bt_stride) + 2] = -1; },
                 POSATTN_STATUS_INVALID_ARGUMENT, {"sequence 1", "block_table[1][2] = -1"}, {1}},
        BadIndex{"page_num_pages",
                 [](PlanData &D) { D.block_table[size_t(2) * size_t(D.bt_stride) + 1] = D.num_pages; },
                 POSATTN_STATUS_INVALID_ARGUMENT, {"sequence 2", "block_table[2][1] = 12", "num_pages = 12"}, {2}},
        BadIndex{"page_unused_slot_harmless",
                 [](PlanData &D) {
                   // sequence 0 has 9 tokens = 3 pages of 4: slot 3 is not used
                   D.block_table[3] = D.num_pages + 100;
                 },
                 POSATTN_STATUS_SUCCESS, {}, {}},
        BadIndex{"q_position_beyond_max",
                 [](PlanData &D) { D.q_pos[5] = 501; },  // row 5: sequence 1, query 2
                 POSATTN_STATUS_BAD_POSITIONS, {"sequence 1", "q_positions[5] = 501", "max_position = 500"}, {1}},
        BadIndex{"q_position_negative", [](PlanData &D) { D.q_pos[0] = -4; }, POSATTN_STATUS_BAD_POSITIONS,
                 {"sequence 0", "q_positions[0] = -4"}, {0}},
        BadIndex{"kv_position_beyond_max",
                 [](PlanData &D) { D.kv_pos[size_t(2) * size_t(D.kvp_stride) + 6] = 100000; },
                 POSATTN_STATUS_BAD_POSITIONS, {"sequence 2", "kv_positions[2][6] = 100000"}, {2}},
        BadIndex{"kv_position_past_length_harmless",
                 [](PlanData &D) { D.kv_pos[size_t(2) * size_t(D.kvp_stride) + 7] = 100000; },
                 POSATTN_STATUS_SUCCESS, {}, {}},
        BadIndex{"first_of_two_is_reported",
                 [](PlanData &D) {
                   D.kv_pos[size_t(1) * size_t(D.kvp_stride)] = -9;          // sequence 1
                   D.block_table[size_t(2) * size_t(D.bt_stride)] = -5;     // sequence 2 (skipped too)
                 },
                 POSATTN_STATUS_BAD_POSITIONS, {"sequence 1", "kv_positions[1][0] = -9"}, {1, 2}}),
    [](const ::testing::TestParamInfo<BadIndex> &i) { return std::string(i.param.name); });

TEST(PlanRefBadIndexMore, BothOffendersSkippedAndFirstRecordKept) {
  TestContext C(POSATTN_BACKEND_REF);
  PlanCase pc;
  pc.seqs = {{3, 9}, {4, 14}, {2, 7}};
  PlanData D(pc);
  D.kv_lens[0] = -3;
  D.block_table[size_t(2) * size_t(D.bt_stride)] = -5;
  PlanRun P(C.ctx, D.desc);
  ASSERT_EQ(P.status, POSATTN_STATUS_SUCCESS) << P.message;
  RunOut R(D);
  posattn_run_args a = D.args(R.out.data, R.lsep(), P.ws.data, P.ws_bytes);
  ASSERT_EQ(posattn_plan_run(C.ctx, P.plan, &a), POSATTN_STATUS_SUCCESS);
  EXPECT_TRUE(R.untouched(0, 3));  // sequence 0
  EXPECT_TRUE(R.untouched(7, 9));  // sequence 2
  EXPECT_FALSE(R.untouched(3, 4));
  // a second run with another violation, no check in between: the first record stays
  D.kv_lens[0] = 9;
  D.q_indptr[0] = 2;
  ASSERT_EQ(posattn_plan_run(C.ctx, P.plan, &a), POSATTN_STATUS_SUCCESS);
  EXPECT_EQ(P.check(), POSATTN_STATUS_BAD_SEQLENS);
  EXPECT_NE(std::string(posattn_context_last_message(C.ctx)).find("kv_lens[0] = -3"), std::string::npos)
      << posattn_context_last_message(C.ctx);
  EXPECT_EQ(P.check(), POSATTN_STATUS_SUCCESS);
}

// ---- (e) replay: one plan, changing device-side arrays -------------------------------------------

TEST(PlanRefReplay, OnePlanManyRuns) {
  TestContext C(POSATTN_BACKEND_REF);
  // one geometry for every step: the plan is created once, from the first step's descriptor
  PlanCase base;
  base.page_size = 8;
  base.pe = POSATTN_PE_ROPE;
  base.min_mpps = 12;
  base.min_pages = 40;
  base.min_max_q = 64;
  const std::vector<std::vector<SeqSpec>> steps = {
      {{40, 60}, {1, 70}, {1, 33}, {8, 8}},
      {{1, 61}, {1, 71}, {1, 34}, {5, 13}},  // decode + a chunk
      {{1, 62}, {0, 0}, {20, 40}},            // a sequence finished, another joined; batch 3
      {{2, 2}},                               // batch 1
      {{1, 64}, {1, 72}, {1, 36}, {1, 16}}};
  PlanCase first = base;
  first.seqs = steps[0];
  PlanData F(first);
  F.desc.max_batch = 4;
  PlanRun P(C.ctx, F.desc);
  ASSERT_EQ(P.status, POSATTN_STATUS_SUCCESS) << P.message;
  int step = 0;
  for (const auto &seqs : steps) {
    SCOPED_TRACE("step " + std::to_string(step));
    PlanCase pc = base;
    pc.seqs = seqs;
    pc.seed = 50 + uint64_t(step++);
    PlanData D(pc);  // new pools, tables, lengths, query counts
    ASSERT_EQ(D.mpps, F.mpps);
    ASSERT_EQ(D.num_pages, F.num_pages);
    ASSERT_EQ(D.max_q, F.max_q);
    RunOut R(D);
    posattn_run_args a = D.args(R.out.data, R.lsep(), P.ws.data, P.ws_bytes);
    ASSERT_EQ(posattn_plan_run(C.ctx, P.plan, &a), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(C.ctx);
    EXPECT_EQ(P.check(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(C.ctx);
    EXPECT_TRUE(R.guards_ok());
    for (int b = 0; b < D.batch; ++b) expect_seq_matches_forward(C.ctx, D, R, b, 1e-6);
    EXPECT_TRUE(R.untouched(D.rows, D.max_q));
  }
}

// ---- (f) append --------------------------------------------------------------------------------

struct AppendCase {
  const char *name;
  posattn_dtype cache_dt;
  bool k_rotated, positions;
  posattn_pe_kind pe;
  int page_size;
};

class PlanRefAppend : public ::testing::TestWithParam<AppendCase> {};

// Appends new tokens to every sequence of a cache twice -- posattn_plan_append and
// posattn_cache_append -- and compares the pools byte for byte: a run on them is then a run on
// identical caches, which PlanRefEqualsDecode shows equals posattn_decode bit for bit.
TEST_P(PlanRefAppend, EqualsCacheAppendThenDecode) {
  const AppendCase &e = GetParam();
  TestContext C(POSATTN_BACKEND_REF);
  const int n_max = 3;
  PlanCase pc;
  pc.seqs = {{n_max, 10}, {1, 5}, {2, 2}, {0, 6}};  // n_b = new tokens; L_b after the append
  pc.cache_dt = e.cache_dt;
  pc.scale_kind = POSATTN_KV_SCALE_PER_HEAD;
  pc.pe = e.pe;
  pc.page_size = e.page_size;
  pc.q_dt = POSATTN_DTYPE_BF16;
  pc.explicit_positions = e.positions;
  PlanData D(pc);
  D.desc.cache.k_rotated = e.k_rotated ? 1 : 0;
  PlanData Twin(pc);  // identical pools: appended through posattn_cache_append
  // new K/V rows (bf16): packed rows for the plan, [batch][n_max] rows for cache_append
  pat_rng r;
  pat_rng_seed(&r, 77);
  const int rows = D.rows, row_elems = pc.hkv * pc.d;
  std::vector<uint16_t> kn(size_t(D.max_q) * row_elems), vn(kn.size());
  pat_fill_random(&r, POSATTN_DTYPE_BF16, kn.data(), nullptr, int64_t(kn.size()), 2.0);
  pat_fill_random(&r, POSATTN_DTYPE_BF16, vn.data(), nullptr, int64_t(vn.size()), 2.0);
  std::vector<int32_t> pos(size_t(D.max_q), 0);
  for (int i = 0; i < rows; ++i) pos[size_t(i)] = 100 + 7 * i;

  PlanRun P(C.ctx, D.desc);
  ASSERT_EQ(P.status, POSATTN_STATUS_SUCCESS) << P.message;
  posattn_append_args aa;
  posattn_append_args_init(&aa);
  aa.batch = D.batch;
  aa.new_indptr = D.q_indptr.data();
  aa.kv_lens = D.kv_lens.data();
  aa.block_table = D.block_table.data();
  aa.block_table_stride = D.bt_stride;
  aa.positions = e.positions ? pos.data() : nullptr;
  aa.k_pages = D.kpool.data;
  aa.v_pages = D.vpool.data;
  if (pc.fp8()) {
    aa.k_scale = D.k_scale.data();
    aa.v_scale = D.v_scale.data();
  }
  posattn_tensor_init_contiguous(&aa.k_new, kn.data(), POSATTN_DTYPE_BF16, D.max_q, pc.hkv, pc.d);
  posattn_tensor_init_contiguous(&aa.v_new, vn.data(), POSATTN_DTYPE_BF16, D.max_q, pc.hkv, pc.d);
  aa.workspace = P.ws.data;
  aa.workspace_bytes = P.ws_bytes;
  ASSERT_EQ(posattn_plan_append(C.ctx, P.plan, &aa), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(C.ctx);
  EXPECT_EQ(P.check(), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(C.ctx);

  // the same through posattn_cache_append: rows [batch][n_max], new_lens, cache_lens = L - n
  std::vector<uint16_t> kb(size_t(D.batch) * n_max * row_elems, 0), vb(kb.size(), 0);
  std::vector<int32_t> new_lens, start, bpos(size_t(D.batch) * n_max, 0);
  for (int b = 0; b < D.batch; ++b) {
    const int n = pc.seqs[size_t(b)].n;
    new_lens.push_back(n);
    start.push_back(pc.seqs[size_t(b)].len - n);
    for (int t = 0; t < n; ++t) {
      const size_t src = size_t(D.q_indptr[size_t(b)] + t), dst = size_t(b) * n_max + size_t(t);
      std::memcpy(&kb[dst * row_elems], &kn[src * row_elems], size_t(row_elems) * 2);
      std::memcpy(&vb[dst * row_elems], &vn[src * row_elems], size_t(row_elems) * 2);
      bpos[dst] = pos[src];
    }
  }
  posattn_kv_cache tc;
  posattn_kv_cache_init(&tc, Twin.kpool.data, Twin.vpool.data, pc.cache_dt, Twin.num_pages, pc.page_size, pc.hkv, pc.d);
  tc.k_rotated = D.desc.cache.k_rotated;
  tc.scale_kind = pc.scale_kind;
  if (pc.fp8()) {
    tc.k_scale = Twin.k_scale.data();
    tc.v_scale = Twin.v_scale.data();
  }
  posattn_cache_append_desc ad;
  posattn_cache_append_desc_init(&ad);
  ad.batch = D.batch;
  ad.num_tokens = n_max;
  ad.new_lens = new_lens.data();
  ad.cache_lens = start.data();
  ad.block_table = Twin.block_table.data();
  ad.max_pages_per_seq = int32_t(Twin.bt_stride);
  ad.positions = e.positions ? bpos.data() : nullptr;
  ad.pe = D.desc.pe;
  posattn_tensor tk, tv;
  posattn_tensor_init_contiguous(&tk, kb.data(), POSATTN_DTYPE_BF16, n_max, pc.hkv, pc.d);
  posattn_tensor_init_contiguous(&tv, vb.data(), POSATTN_DTYPE_BF16, n_max, pc.hkv, pc.d);
  size_t ws = 0;
  ASSERT_EQ(posattn_cache_append_workspace_size(C.ctx, &ad, &tc, POSATTN_DTYPE_BF16, &ws), POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(C.ctx);
  pat_buf w{};
  ASSERT_EQ(pat_buf_alloc(&w, ws ? ws : 1), 0);
  const posattn_status st = posattn_cache_append(C.ctx, &ad, &tc, &tk, &tv, w.data, ws);
  pat_buf_free(&w);
  ASSERT_EQ(st, POSATTN_STATUS_SUCCESS) << posattn_context_last_message(C.ctx);
  EXPECT_EQ(std::memcmp(D.kpool.data, Twin.kpool.data, D.kpool.bytes), 0);
  EXPECT_EQ(std::memcmp(D.vpool.data, Twin.vpool.data, D.vpool.bytes), 0);
  EXPECT_TRUE(pat_buf_guards_ok(&D.kpool) && pat_buf_guards_ok(&D.vpool));
  // the rotated-cache append did rotate: K differs from a plain copy of the rows
  if (e.k_rotated && e.pe == POSATTN_PE_ROPE) {
    const int64_t dst = ((int64_t(D.page_of(0, 9)) * pc.page_size + 9 % pc.page_size) * pc.hkv) * pc.d;
    const int64_t src = int64_t(D.q_indptr[0] + 2) * row_elems;
    int same = 0;
    for (int f = 0; f < pc.d; ++f)
      same += pat_load(D.kpool.data, pc.cache_dt, dst + f) ==
              pat_round_to(POSATTN_DTYPE_F32, pat_load(kn.data(), POSATTN_DTYPE_BF16, src + f));
    EXPECT_LT(same, pc.d);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Grid, PlanRefAppend,
    ::testing::Values(AppendCase{"f32_plain_rope", POSATTN_DTYPE_F32, false, false, POSATTN_PE_ROPE, 4},
                      AppendCase{"f32_rotated_rope_positions", POSATTN_DTYPE_F32, true, true, POSATTN_PE_ROPE, 4},
                      AppendCase{"bf16_rotated_rope_p1", POSATTN_DTYPE_BF16, true, false, POSATTN_PE_ROPE, 1},
                      AppendCase{"fp8e4m3_scaled_alibi", POSATTN_DTYPE_FP8_E4M3, false, false, POSATTN_PE_ALIBI, 4},
                      AppendCase{"fp8e4m3_rotated_rope_positions", POSATTN_DTYPE_FP8_E4M3, true, true, POSATTN_PE_ROPE, 16},
                      AppendCase{"fp8e5m2_rotated_rope", POSATTN_DTYPE_FP8_E5M2, true, false, POSATTN_PE_ROPE, 3}),
    [](const ::testing::TestParamInfo<AppendCase> &i) { return std::string(i.param.name); });

// An append's bad indices: the offending sequence's slots keep their old contents.
TEST(PlanRefAppendBadIndex, OffenderWritesNothing) {
  TestContext C(POSATTN_BACKEND_REF);
  struct Plant {
    const char *name;
    std::function<void(PlanData &, std::vector<int32_t> &)> plant;
    posattn_status status;
    const char *msg;
    int seq;
  };
  const Plant plants[] = {
      {"new_indptr", [](PlanData &D, std::vector<int32_t> &) { D.q_indptr[1] = D.q_indptr[2] + 1; },
       POSATTN_STATUS_BAD_SEQLENS, "new_indptr[2]", -1},
      {"kv_len_below_n", [](PlanData &D, std::vector<int32_t> &) { D.kv_lens[1] = 0; },
       POSATTN_STATUS_BAD_SEQLENS, "kv_lens[1] = 0", 1},
      {"page_written", [](PlanData &D, std::vector<int32_t> &) { D.block_table[2] = D.num_pages; },
       POSATTN_STATUS_INVALID_ARGUMENT, "block_table[0][2]", 0},
      {"page_not_written_harmless", [](PlanData &D, std::vector<int32_t> &) { D.block_table[0] = -1; },
       POSATTN_STATUS_SUCCESS, "", -2},
      {"position", [](PlanData &, std::vector<int32_t> &pos) { pos[3] = -1; }, POSATTN_STATUS_BAD_POSITIONS,
       "positions[3] = -1", 1},
  };
  for (const Plant &pl : plants) {
    SCOPED_TRACE(pl.name);
    PlanCase pc;
    pc.seqs = {{3, 10}, {1, 5}, {2, 2}};
    pc.pe = POSATTN_PE_ROPE;
    pc.k_rotated = true;
    PlanData D(pc), Before(pc), Clean(pc);
    std::vector<int32_t> pos(size_t(D.max_q), 12);  // <= max_position = capacity - 1 = 15
    pl.plant(D, pos);
    PlanRun P(C.ctx, D.desc);
    ASSERT_EQ(P.status, POSATTN_STATUS_SUCCESS) << P.message;
    std::vector<float> kn(size_t(D.max_q) * pc.hkv * pc.d, 0.25f), vn(kn.size(), -0.5f);
    auto append = [&](PlanData &X, const std::vector<int32_t> &ps) {
      posattn_append_args aa;
      posattn_append_args_init(&aa);
      aa.batch = X.batch;
      aa.new_indptr = X.q_indptr.data();
      aa.kv_lens = X.kv_lens.data();
      aa.block_table = X.block_table.data();
      aa.block_table_stride = X.bt_stride;
      aa.positions = ps.data();
      aa.k_pages = X.kpool.data;
      aa.v_pages = X.vpool.data;
      posattn_tensor_init_contiguous(&aa.k_new, kn.data(), POSATTN_DTYPE_F32, X.max_q, pc.hkv, pc.d);
      posattn_tensor_init_contiguous(&aa.v_new, vn.data(), POSATTN_DTYPE_F32, X.max_q, pc.hkv, pc.d);
      aa.workspace = P.ws.data;
      aa.workspace_bytes = P.ws_bytes;
      return posattn_plan_append(C.ctx, P.plan, &aa);
    };
    ASSERT_EQ(append(D, pos), POSATTN_STATUS_SUCCESS) << posattn_context_last_message(C.ctx);
    EXPECT_EQ(P.check(), pl.status);
    EXPECT_NE(std::string(posattn_context_last_message(C.ctx)).find(pl.msg), std::string::npos)
        << posattn_context_last_message(C.ctx);
    std::vector<int32_t> clean_pos(size_t(D.max_q), 12);
    ASSERT_EQ(append(Clean, clean_pos), POSATTN_STATUS_SUCCESS);
    EXPECT_EQ(P.check(), POSATTN_STATUS_SUCCESS);
    EXPECT_TRUE(pat_buf_guards_ok(&D.kpool) && pat_buf_guards_ok(&D.vpool));
    // slot by slot: the offender's written slots as before, every other slot as the clean append
    const size_t slot = size_t(pc.hkv) * pc.d;
    std::vector<int> owner(size_t(D.num_pages) * pc.page_size, -1);
    for (int b = 0; b < D.batch; ++b)
      for (int j = pc.seqs[size_t(b)].len - pc.seqs[size_t(b)].n; j < pc.seqs[size_t(b)].len; ++j)
        owner[size_t(Clean.page_of(b, j)) * pc.page_size + size_t(j % pc.page_size)] = b;
    int64_t wrong = 0;
    for (size_t s = 0; s < owner.size(); ++s) {
      const bool skipped = pl.seq == -1 || owner[s] == pl.seq;
      const PlanData &want = skipped ? Before : Clean;
      wrong += std::memcmp(static_cast<float *>(D.kpool.data) + s * slot,
                           static_cast<const float *>(want.kpool.data) + s * slot, slot * 4) != 0;
      wrong += std::memcmp(static_cast<float *>(D.vpool.data) + s * slot,
                           static_cast<const float *>(want.vpool.data) + s * slot, slot * 4) != 0;
    }
    EXPECT_EQ(wrong, 0);
  }
}

}  // namespace
