// pa_merge_check.hpp -- tests of posattn_merge_states(_inplace) on one backend, shared by the REF
// suite (tests/cpu/test_merge.cpp, label cpu) and the EMU suite (tests/emu/
// test_emu_attention_merge.cpp, label emu). PAT_MERGE_TESTS(Suite, backend) defines them.
//
// Gold (fp64, independent of the library's formula): the states are folded one at a time,
// (o, l) <- (o e^(l - l') + o_s e^(l_s - l'), l'), l' = logaddexp(l, l_s), in long double.
// Baseline (DESIGN.md section 5): the same fold in fp32 arithmetic, output rounded once to the
// output dtype, LSE to fp32: the kernel's precision and rounding points.
#ifndef PA_MERGE_CHECK_HPP
#define PA_MERGE_CHECK_HPP

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "pa_test_shim.h"

struct pat_merge_case {
  int32_t batch, seq, heads, d, K;
  posattn_dtype in_dt, out_dt;
  double empty_frac;  // fraction of (state, row) pairs that are empty (LSE -inf)
};

// K states, O with padded strides (stride_seq = heads*d + 3), LSE [batch][seq][heads] (not
// forward's layout), every state its own buffers; garbage NaN in the O of empty states.
struct pat_merge_data {
  pat_merge_case c;
  std::vector<std::vector<unsigned char>> o;
  std::vector<std::vector<float>> lse;
  std::vector<posattn_attn_state> st;
  posattn_merge_desc desc;
  int64_t rows() const { return int64_t(c.batch) * c.seq * c.heads; }
  int64_t o_elems() const { return int64_t(c.batch) * c.seq * (int64_t(c.heads) * c.d + 3); }
  void state(posattn_attn_state *s, void *o_data, posattn_dtype dt, float *l) const {
    s->o.data = o_data;
    s->o.dtype = dt;
    s->o.stride_head = c.d;
    s->o.stride_seq = int64_t(c.heads) * c.d + 3;
    s->o.stride_batch = s->o.stride_seq * c.seq;
    s->lse = l;
    s->lse_stride_head = 1;
    s->lse_stride_seq = c.heads;
    s->lse_stride_batch = int64_t(c.heads) * c.seq;
  }
  int64_t oi(int64_t row, int f) const {  // row = (b*seq + t)*heads + h
    return row / c.heads * (int64_t(c.heads) * c.d + 3) + row % c.heads * c.d + f;
  }
  void make(const pat_merge_case &cc, uint64_t seed) {
    c = cc;
    pat_rng r;
    pat_rng_seed(&r, seed);
    o.assign(c.K, {});
    lse.assign(c.K, {});
    st.assign(c.K, {});
    for (int s = 0; s < c.K; ++s) {
      o[s].assign(size_t(o_elems()) * posattn_dtype_size(c.in_dt), 0);
      pat_fill_random(&r, c.in_dt, o[s].data(), nullptr, o_elems(), 2.0);
      lse[s].resize(size_t(rows()));
      for (int64_t i = 0; i < rows(); ++i) {
        const bool empty = pat_rng_uniform(&r, 0, 1) < c.empty_frac;
        lse[s][i] = empty ? -INFINITY : float(pat_rng_uniform(&r, -8, 30));
        if (empty) pat_store(o[s].data(), c.in_dt, oi(i, 0), NAN);  // never read into the result
      }
      state(&st[s], o[s].data(), c.in_dt, lse[s].data());
    }
    posattn_merge_desc_init(&desc);
    desc.batch = c.batch, desc.seq_len = c.seq, desc.heads = c.heads, desc.head_dim = c.d;
  }
  // The fold: gold in long double (low = false) or the fp32 baseline (low = true).
  void fold(bool low, std::vector<double> &out, std::vector<double> &out_lse) const {
    out.assign(size_t(rows()) * c.d, 0);
    out_lse.assign(size_t(rows()), 0);
    for (int64_t i = 0; i < rows(); ++i) {
      long double l = -INFINITY;
      std::vector<long double> acc(size_t(c.d), 0);
      for (int s = 0; s < c.K; ++s) {
        const long double ls = lse[s][i];
        if (ls == -INFINITY) continue;
        const long double m = std::max(l, ls);
        long double ln = m + std::log(std::exp(l - m) + std::exp(ls - m));
        if (low) ln = float(m) + std::log(float(std::exp(float(l - m)) + std::exp(float(ls - m))));
        long double a = std::exp(l - ln), b = std::exp(ls - ln);
        if (low) a = std::exp(float(l - ln)), b = std::exp(float(ls - ln));
        for (int f = 0; f < c.d; ++f) {
          acc[f] = a * acc[f] + b * pat_load(o[s].data(), c.in_dt, oi(i, f));
          if (low) acc[f] = float(acc[f]);
        }
        l = ln;
      }
      for (int f = 0; f < c.d; ++f)
        out[size_t(i) * c.d + f] = low ? pat_round_to(c.out_dt, double(acc[f])) : double(acc[f]);
      out_lse[size_t(i)] = low ? double(float(l)) : double(l);
    }
  }
};

// Runs the merge (out of place, or in place into a copy of state 0 when out_dt == in_dt) with
// guarded, NaN-poisoned outputs; returns out [rows][d] and lse [rows] as doubles.
inline void pat_merge_run(posattn_context *ctx, const pat_merge_data &m, bool in_place,
                          std::vector<double> &out, std::vector<double> &out_lse) {
  const pat_merge_case &c = m.c;
  const posattn_dtype dt = in_place ? c.in_dt : c.out_dt;
  pat_buf ob, lb;
  ASSERT_EQ(pat_buf_alloc(&ob, size_t(m.o_elems()) * posattn_dtype_size(dt)), 0);
  ASSERT_EQ(pat_buf_alloc(&lb, size_t(m.rows()) * sizeof(float)), 0);
  pat_buf_poison_nan(&ob, dt, m.o_elems());
  pat_buf_poison_nan(&lb, POSATTN_DTYPE_F32, m.rows());
  std::vector<posattn_attn_state> st = m.st;
  posattn_status s;
  if (in_place) {
    std::memcpy(ob.data, m.o[0].data(), ob.bytes);
    std::memcpy(lb.data, m.lse[0].data(), lb.bytes);
    m.state(&st[0], ob.data, dt, static_cast<float *>(lb.data));
    s = posattn_merge_states_inplace(ctx, &m.desc, c.K, st.data());
  } else {
    posattn_attn_state o;
    m.state(&o, ob.data, dt, static_cast<float *>(lb.data));
    s = posattn_merge_states(ctx, &m.desc, c.K, st.data(), &o);
  }
  EXPECT_EQ(s, POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
  EXPECT_TRUE(pat_buf_guards_ok(&ob));
  EXPECT_TRUE(pat_buf_guards_ok(&lb));
  out.assign(size_t(m.rows()) * c.d, 0);
  out_lse.assign(size_t(m.rows()), 0);
  for (int64_t i = 0; i < m.rows(); ++i) {
    for (int f = 0; f < c.d; ++f) out[size_t(i) * c.d + f] = pat_load(ob.data, dt, m.oi(i, f));
    out_lse[size_t(i)] = static_cast<float *>(lb.data)[i];
  }
  pat_buf_free(&ob);
  pat_buf_free(&lb);
}

// The section 5 rule on a merge's result (out [rows][d], lse [rows]); in place the output dtype
// is the input dtype.
inline void pat_merge_expect_rule(const pat_merge_data &m, bool in_place,
                                  const std::vector<double> &out, const std::vector<double> &lse) {
  std::vector<double> gold, gold_lse, base, base_lse;
  m.fold(false, gold, gold_lse);
  m.fold(true, base, base_lse);
  const posattn_dtype dt = in_place ? m.c.in_dt : m.c.out_dt;
  if (in_place)  // the baseline then rounds to the state's dtype
    for (size_t i = 0; i < base.size(); ++i) base[i] = pat_round_to(dt, base[i]);
  const pat_rule_result r =
      pat_rule_check(out.data(), base.data(), gold.data(), int64_t(out.size()), dt);
  EXPECT_TRUE(r.pass) << "out: max_err " << r.max_err << " bound " << r.bound << " nmse " << r.nmse
                      << " nonfinite " << r.bad_nonfinite;
  const pat_rule_result rl = pat_rule_check(lse.data(), base_lse.data(), gold_lse.data(),
                                            int64_t(lse.size()), POSATTN_DTYPE_F32);
  EXPECT_TRUE(rl.pass) << "lse: max_err " << rl.max_err << " bound " << rl.bound << " nonfinite "
                       << rl.bad_nonfinite;
}

// The cases of the random test: odd shapes, every dtype pair, 2 .. POSATTN_MERGE_MAX_STATES states.
inline std::vector<pat_merge_case> pat_merge_cases() {
  return {{1, 1, 1, 1, 2, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32, 0.0},
          {2, 17, 3, 17, 3, POSATTN_DTYPE_BF16, POSATTN_DTYPE_F32, 0.3},
          {1, 5, 2, 97, 7, POSATTN_DTYPE_F16, POSATTN_DTYPE_BF16, 0.4},
          {3, 2, 1, 64, POSATTN_MERGE_MAX_STATES, POSATTN_DTYPE_F32, POSATTN_DTYPE_F16, 0.5},
          {1, 3, 2, 130, 2, POSATTN_DTYPE_BF16, POSATTN_DTYPE_BF16, 0.6}};
}

#define PAT_MERGE_TESTS(Suite, backend)                                                         \
  static posattn_context *Suite##_ctx() {                                                       \
    static posattn_context *ctx = [] {                                                          \
      posattn_context *c = nullptr;                                                             \
      return posattn_context_create(backend, 0, &c) == POSATTN_STATUS_SUCCESS ? c : nullptr;    \
    }();                                                                                        \
    return ctx;                                                                                 \
  }                                                                                             \
  TEST(Suite, RandomStatesSection5) {                                                           \
    posattn_context *ctx = Suite##_ctx();                                                       \
    ASSERT_NE(ctx, nullptr);                                                                    \
    uint64_t seed = 15;                                                                         \
    for (const pat_merge_case &c : pat_merge_cases())                                           \
      for (int in_place = 0; in_place < 2; ++in_place) {                                        \
        SCOPED_TRACE("K " + std::to_string(c.K) + " d " + std::to_string(c.d) + " in_place " +  \
                     std::to_string(in_place));                                                 \
        pat_merge_data m;                                                                       \
        m.make(c, ++seed);                                                                      \
        std::vector<double> out, lse;                                                           \
        pat_merge_run(ctx, m, in_place != 0, out, lse);                                         \
        pat_merge_expect_rule(m, in_place != 0, out, lse);                                      \
      }                                                                                         \
  }                                                                                             \
  TEST(Suite, EmptyAndPoisonedRows) {                                                           \
    posattn_context *ctx = Suite##_ctx();                                                       \
    ASSERT_NE(ctx, nullptr);                                                                    \
    pat_merge_data m;                                                                           \
    m.make({1, 6, 1, 9, 3, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32, 0.0}, 99);                     \
    /* row 0: all empty; row 1: NaN LSE; row 2: +inf LSE; row 3: inf in O; row 4: base rows */  \
    for (int s = 0; s < 3; ++s) m.lse[s][0] = -INFINITY;                                        \
    m.lse[1][1] = NAN;                                                                          \
    m.lse[2][2] = INFINITY;                                                                     \
    pat_store(m.o[0].data(), POSATTN_DTYPE_F32, m.oi(3, 4), INFINITY);                          \
    m.lse[0][4] = -INFINITY; /* empty state with a NaN O: ignored */                            \
    pat_store(m.o[0].data(), POSATTN_DTYPE_F32, m.oi(4, 2), NAN);                               \
    std::vector<double> out, lse, gold, gold_lse;                                               \
    for (int base2 = 0; base2 < 2; ++base2) {                                                   \
      pat_merge_data m2 = m;                                                                    \
      for (auto &s : m2.st) s.o.data = m2.o[size_t(&s - m2.st.data())].data();                  \
      for (int s = 0; s < 3; ++s) m2.st[s].lse = m2.lse[s].data();                              \
      if (base2) {                                                                              \
        m2.desc.flags = POSATTN_MERGE_LSE_BASE2;                                                \
        for (auto &v : m2.lse)                                                                  \
          for (float &x : v) x = float(double(x) / std::log(2.0));                              \
      }                                                                                         \
      pat_merge_run(ctx, m2, false, out, lse);                                                  \
      m.fold(false, gold, gold_lse);                                                            \
      for (int f = 0; f < 9; ++f) EXPECT_EQ(out[f], 0.0) << f;                                  \
      EXPECT_EQ(lse[0], -INFINITY);                                                             \
      for (int row = 1; row <= 3; ++row) {                                                      \
        EXPECT_TRUE(std::isnan(lse[row])) << row;                                               \
        for (int f = 0; f < 9; ++f) EXPECT_TRUE(std::isnan(out[size_t(row) * 9 + f])) << row;   \
      }                                                                                         \
      for (int row = 4; row < 6; ++row) {                                                       \
        const double l = base2 ? lse[row] * std::log(2.0) : lse[row];                           \
        EXPECT_NEAR(l, gold_lse[row], 1e-5 * (1 + std::fabs(gold_lse[row]))) << row;            \
        for (int f = 0; f < 9; ++f)                                                             \
          EXPECT_NEAR(out[size_t(row) * 9 + f], gold[size_t(row) * 9 + f], 1e-5) << row;        \
      }                                                                                         \
    }                                                                                           \
  }                                                                                             \
  TEST(Suite, ValidationNamesTheArgument) {                                                     \
    posattn_context *ctx = Suite##_ctx();                                                       \
    ASSERT_NE(ctx, nullptr);                                                                    \
    pat_merge_data m;                                                                           \
    m.make({1, 4, 2, 8, 3, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32, 0.0}, 7);                      \
    std::vector<float> ob(size_t(m.o_elems()), 5.f), lb(size_t(m.rows()), 5.f);                 \
    posattn_attn_state o;                                                                       \
    m.state(&o, ob.data(), POSATTN_DTYPE_F32, lb.data());                                       \
    auto expect = [&](posattn_status want, const char *needle, int32_t K,                       \
                      const posattn_attn_state *in, const posattn_merge_desc *d) {              \
      EXPECT_EQ(posattn_merge_states(ctx, d, K, in, &o), want) << needle;                       \
      EXPECT_NE(std::string(posattn_context_last_message(ctx)).find(needle), std::string::npos) \
          << posattn_context_last_message(ctx);                                                 \
      for (float x : ob) EXPECT_EQ(x, 5.f);                                                     \
    };                                                                                          \
    expect(POSATTN_STATUS_BAD_SIZE, "num_states (1)", 1, m.st.data(), &m.desc);                 \
    expect(POSATTN_STATUS_BAD_SIZE, "num_states (33)", 33, m.st.data(), &m.desc);               \
    posattn_merge_desc d = m.desc;                                                              \
    d.head_dim = 0;                                                                             \
    expect(POSATTN_STATUS_BAD_SIZE, "desc->head_dim (0)", 3, m.st.data(), &d);                  \
    d = m.desc;                                                                                 \
    d.flags = 6;                                                                                \
    expect(POSATTN_STATUS_INVALID_ARGUMENT, "desc->flags", 3, m.st.data(), &d);                 \
    std::vector<posattn_attn_state> bad = m.st;                                                 \
    bad[2].lse = nullptr;                                                                       \
    expect(POSATTN_STATUS_NULL_POINTER, "states[2].lse", 3, bad.data(), &m.desc);               \
    bad = m.st;                                                                                 \
    bad[1].o.dtype = posattn_dtype(9);                                                          \
    expect(POSATTN_STATUS_BAD_ENUM, "states[1].o.dtype", 3, bad.data(), &m.desc);               \
    bad = m.st;                                                                                 \
    bad[1].o.dtype = POSATTN_DTYPE_FP8_E4M3; /* a KV-cache dtype only */                        \
    expect(POSATTN_STATUS_BAD_DTYPE, "states[1].o.dtype", 3, bad.data(), &m.desc);              \
    bad = m.st;                                                                                 \
    bad[1].o.stride_seq = 4;                                                                    \
    expect(POSATTN_STATUS_BAD_STRIDE, "states[1].o->stride_seq", 3, bad.data(), &m.desc);       \
    bad = m.st;                                                                                 \
    bad[0].lse_stride_seq = 0;                                                                  \
    expect(POSATTN_STATUS_BAD_STRIDE, "lse_stride_seq", 3, bad.data(), &m.desc);                \
    bad = m.st;                                                                                 \
    bad[1].lse = lb.data() + 1;                                                                 \
    expect(POSATTN_STATUS_INVALID_ARGUMENT, "out.lse overlaps states[1].lse", 3, bad.data(),    \
           &m.desc);                                                                            \
    bad = m.st;                                                                                 \
    bad[2].o.data = reinterpret_cast<char *>(m.st[2].o.data) + 1;                               \
    expect(POSATTN_STATUS_BAD_ALIGNMENT, "states[2].o.data", 3, bad.data(), &m.desc);           \
    bad = m.st;                                                                                 \
    bad[0].lse = nullptr; /* in place, states[0] receives the LSE: required */                  \
    EXPECT_EQ(posattn_merge_states_inplace(ctx, &m.desc, 3, bad.data()),                        \
              POSATTN_STATUS_NULL_POINTER);                                                     \
    EXPECT_NE(std::string(posattn_context_last_message(ctx)).find("states[0].lse is NULL"),     \
              std::string::npos)                                                                \
        << posattn_context_last_message(ctx);                                                   \
    bad = m.st;                                                                                 \
    bad[1] = bad[0];                                                                            \
    EXPECT_EQ(posattn_merge_states_inplace(ctx, &m.desc, 3, bad.data()),                        \
              POSATTN_STATUS_INVALID_ARGUMENT);                                                 \
    EXPECT_NE(std::string(posattn_context_last_message(ctx))                                    \
                  .find("states[0].o overlaps "                                                 \
                        "states[1].o"),                                                         \
              std::string::npos)                                                                \
        << posattn_context_last_message(ctx);                                                   \
  }

#endif  // PA_MERGE_CHECK_HPP
