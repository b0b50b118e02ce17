// pa_nan_rule.hpp -- the NaN RULE of posattn.h checked on one dense prefill call (GoogleTest;
// header-only C++ over the C shim), shared by the REF suite (tests/cpu) and the EMU suite
// (tests/emu).
//
// pat_expect_nan_rule runs desc twice on ctx: on clean inputs, then with ONE element of q, k or v
// set to a non-finite value. Rows that the rule poisons (the row owning a poisoned q, when it sees
// any key; every row that sees a poisoned key) must be NaN in every feature with a NaN lse; every
// other row must equal the clean run bit for bit (the poisoned value must not reach it at all).
// Visibility is the header's rule, written out here for dense problems.
#ifndef PA_NAN_RULE_HPP
#define PA_NAN_RULE_HPP

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "pa_test_shim.h"

struct pat_poison {
  char tensor;  // 'q', 'k' or 'v'
  int b, token, head, feature;  // head: a q head for 'q', a kv head for 'k' / 'v'
  double value;                 // NaN, +inf or -inf
};

// Whether query i of batch item b sees key j (dense: Lq = q_len, Lk = kv_len).
inline bool pat_sees(const posattn_attention_desc *d, int b, int i, int j) {
  const int64_t rel = int64_t(j) - (int64_t(i) + d->kv_len - d->q_len);
  if (d->causal && rel > 0) return false;
  if (d->window_left >= 0 && -rel > d->window_left) return false;
  if (d->window_right >= 0 && rel > d->window_right) return false;
  if (d->doc_ids && j >= d->num_anchor_tokens &&
      d->doc_ids[int64_t(b) * d->q_len + i] != d->doc_ids[int64_t(b) * d->kv_len + j])
    return false;
  return true;
}

inline bool pat_poisoned_row(const posattn_attention_desc *d, const pat_poison &pz, int b, int i,
                             int h) {
  if (b != pz.b) return false;
  if (pz.tensor == 'q') {
    if (i != pz.token || h != pz.head) return false;
    for (int j = 0; j < d->kv_len; ++j)
      if (pat_sees(d, b, i, j)) return true;
    return false;
  }
  return h / (d->q_heads / d->kv_heads) == pz.head && pat_sees(d, b, i, pz.token);
}

// Runs the check; returns the number of poisoned rows (so callers can require the case to be
// non-trivial: some rows poisoned, some not).
inline int64_t pat_expect_nan_rule(posattn_context *ctx, const posattn_attention_desc *desc,
                                   pat_inputs *in, posattn_dtype dt, const pat_poison &pz) {
  const int64_t rows = int64_t(desc->batch) * desc->q_len * desc->q_heads, dd = desc->head_dim;
  std::vector<double> out0(size_t(rows * dd)), lse0(static_cast<size_t>(rows)), out1(out0), lse1(lse0);
  const pat_run clean = pat_forward_checked(ctx, desc, &in->tq, &in->tk, &in->tv,
                                            POSATTN_DTYPE_F32, out0.data(), lse0.data());
  EXPECT_EQ(clean.status, POSATTN_STATUS_SUCCESS) << clean.message;
  const posattn_tensor *t = pz.tensor == 'q' ? &in->tq : pz.tensor == 'k' ? &in->tk : &in->tv;
  const int64_t len = pz.tensor == 'q' ? desc->q_len : desc->kv_len;
  const int64_t heads = pz.tensor == 'q' ? desc->q_heads : desc->kv_heads;
  const int64_t idx = ((int64_t(pz.b) * len + pz.token) * heads + pz.head) * dd + pz.feature;
  const double saved = pat_load(t->data, dt, idx);
  pat_store(t->data, dt, idx, pz.value);
  const pat_run run = pat_forward_checked(ctx, desc, &in->tq, &in->tk, &in->tv, POSATTN_DTYPE_F32,
                                          out1.data(), lse1.data());
  pat_store(t->data, dt, idx, saved);
  EXPECT_EQ(run.status, POSATTN_STATUS_SUCCESS) << run.message;
  EXPECT_TRUE(run.guards_ok);
  int64_t poisoned = 0, wrong = 0;
  for (int b = 0; b < desc->batch; ++b)
    for (int i = 0; i < desc->q_len; ++i)
      for (int h = 0; h < desc->q_heads; ++h) {
        const int64_t r = (int64_t(b) * desc->q_len + i) * desc->q_heads + h;
        const int64_t l = (int64_t(b) * desc->q_heads + h) * desc->q_len + i;
        const bool p = pat_poisoned_row(desc, pz, b, i, h);
        poisoned += p;
        bool ok = p ? std::isnan(lse1[size_t(l)]) : lse1[size_t(l)] == lse0[size_t(l)];
        for (int64_t f = 0; f < dd; ++f) {
          const double x = out1[size_t(r * dd + f)], x0 = out0[size_t(r * dd + f)];
          ok = ok && (p ? std::isnan(x) : x == x0);
        }
        if (!ok && ++wrong <= 4)
          ADD_FAILURE() << "row (b " << b << ", i " << i << ", h " << h << ") "
                        << (p ? "should be poisoned (all NaN, lse NaN)"
                              : "must equal the clean run")
                        << ": lse " << lse1[size_t(l)] << " (clean " << lse0[size_t(l)]
                        << "), out[0] " << out1[size_t(r * dd)] << " (clean "
                        << out0[size_t(r * dd)] << ")";
      }
  EXPECT_EQ(wrong, 0) << "rows breaking the NaN rule, poison " << pz.tensor << "[b " << pz.b
                      << ", token " << pz.token << ", head " << pz.head << ", f " << pz.feature
                      << "] = " << pz.value;
  return poisoned;
}

#endif  // PA_NAN_RULE_HPP
