// fuzz_nan -- NaN / inf injection against posattn.h's NaN RULE, on REF and EMU, prefill and decode.
//
// A valid problem (the forward or decode target's case) is run clean, then again with one element
// of q, k or v (decode: of q or of the K/V page pools) replaced by NaN, +inf or -inf. For each
// backend, every row (query token, head) is classified from the header's visibility rules alone:
//  - a row that cannot see the injected element (another head group, another sequence or batch
//    item, another document, a future key under causal masking, a key outside the window, a pool
//    slot no block table reaches) must equal the clean run exactly (value by value; NaN = NaN);
//  - a row that sees no key at all keeps out 0 and LSE -inf (decode with a sink: LSE = the sink);
//  - a row that sees it is POISONED (NaN in every output feature, NaN LSE) -- except that with a
//    softcap an infinite q or k element gives a bounded logit, so such a row is only required to
//    be all-NaN or NaN-free.
// The clean runs themselves must succeed on both backends (inputs are otherwise valid).
#include "decode_problem.hpp"
#include "forward_problem.hpp"

namespace {
using namespace pa_fuzz;

struct Case {
  uint8_t mode = 0;    // 0 prefill, 1 decode
  uint8_t tensor = 0;  // 0 q, 1 k, 2 v
  uint8_t value = 0;   // 0 NaN, 1 +inf, 2 -inf
  uint8_t head = 0, feat = 0;
  uint16_t row = 0;
  fwd::Case fwd;
  dec::Case dec;
};

template <class IO>
void fields(IO &io, Case &c) {
  io(c.mode); io(c.tensor); io(c.value); io(c.head); io(c.feat); io(c.row);
  if (c.mode % 2 == 0)
    fields(io, c.fwd);
  else
    fields(io, c.dec);
}

double injected(uint8_t v) {
  return v % 3 == 0 ? double(NAN) : v % 3 == 1 ? double(INFINITY) : -double(INFINITY);
}

bool same(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

enum class Expect { Untouched, Poisoned, Bounded };

// What the NaN RULE asks of a row that sees (or not) value v injected into tensor t (0 q, 1 k, 2 v).
Expect expect(bool sees, int t, double v, float softcap) {
  if (!sees) return Expect::Untouched;
  // a softcap bounds the logit of an infinite q or k element: the row may stay finite
  return t < 2 && !std::isnan(v) && softcap > 0 ? Expect::Bounded : Expect::Poisoned;
}

// Checks one row (out[0..d), its lse) against e and the clean run.
void check_row(const char *who, const char *where, Expect e, const double *out, const double *clean,
               int d, double lse, double clean_lse) {
  int64_t nan = 0;
  for (int f = 0; f < d; ++f) nan += std::isnan(out[f]);
  switch (e) {
    case Expect::Untouched:
      for (int f = 0; f < d; ++f)
        PA_FUZZ_CHECK(same(out[f], clean[f]), "%s: %s cannot see the injected value, but its "
                      "feature %d changed from %g to %g", who, where, f, clean[f], out[f]);
      PA_FUZZ_CHECK(same(lse, clean_lse), "%s: %s cannot see the injected value, but its LSE "
                    "changed from %g to %g", who, where, clean_lse, lse);
      break;
    case Expect::Poisoned:
      PA_FUZZ_CHECK(nan == d && std::isnan(lse), "%s: %s sees the injected value but is not "
                    "poisoned: %lld of %d features NaN, LSE %g", who, where, (long long)nan, d, lse);
      break;
    case Expect::Bounded:
      PA_FUZZ_CHECK((nan == 0 && !std::isnan(lse)) || (nan == d && std::isnan(lse)),
                    "%s: %s: %lld of %d features NaN, LSE %g (poisoned whole or not at all)", who,
                    where, (long long)nan, d, lse);
      break;
  }
}

// ---- prefill ------------------------------------------------------------------------------------
void run_prefill(const Case &c) {
  fwd::Problem P;
  pat_rng rng;
  pat_rng_seed(&rng, c.fwd.seed);
  fwd::build(c.fwd, P, rng);
  const posattn_attention_desc &d = P.desc;
  pat_inputs in;
  fwd::make_inputs(c.fwd, P, rng, in);
  const posattn_backend be[2] = {POSATTN_BACKEND_REF, POSATTN_BACKEND_EMU};
  fwd::Run clean[2];
  for (int i = 0; i < 2; ++i) clean[i] = fwd::forward(be[i], d, in, P.out_dt);
  note("  prefill clean: REF %s, EMU %s", posattn_status_string(clean[0].r.status),
       posattn_status_string(clean[1].r.status));
  if (clean[0].r.status != POSATTN_STATUS_SUCCESS || clean[1].r.status != POSATTN_STATUS_SUCCESS) {
    pat_inputs_free(&in);
    return;  // invalid or unsupported problem: the forward target checks those
  }
  // the element: row (q: query rows, k/v: key rows), head, feature
  const int t = c.tensor % 3;
  const int64_t rows = t == 0 ? pat_q_rows(&d) : pat_kv_rows(&d);
  const int heads = t == 0 ? d.q_heads : d.kv_heads;
  if (rows == 0) {
    pat_inputs_free(&in);
    return;
  }
  const int64_t row = c.row % rows;
  const int head = c.head % heads, feat = c.feat % d.head_dim;
  const double v = injected(c.value);
  pat_buf *buf = t == 0 ? &in.q : t == 1 ? &in.k : &in.v;
  pat_store(buf->data, P.in_dt, (row * heads + head) * d.head_dim + feat, v);
  note("  inject %g into %s row %lld head %d feature %d", v, t == 0 ? "q" : t == 1 ? "k" : "v",
       (long long)row, head, feat);
  const int group = d.q_heads / d.kv_heads;
  for (int i = 0; i < 2; ++i) {
    const fwd::Run R = fwd::forward(be[i], d, in, P.out_dt);
    PA_FUZZ_CHECK(R.r.status == POSATTN_STATUS_SUCCESS, "%s: %s after injection (%s)",
                  posattn_backend_string(be[i]), posattn_status_string(R.r.status), R.r.message);
    fwd::for_each_row(d, [&](int b, int64_t q0, int64_t k0, int64_t qi, int64_t lq, int64_t lk,
                             bool any) {
      const int32_t *dq = d.doc_ids ? d.doc_ids + q0 : nullptr, *dk = d.doc_ids ? d.doc_ids + k0 : nullptr;
      for (int h = 0; h < d.q_heads; ++h) {
        bool sees;
        if (t == 0)
          sees = q0 + qi == row && h == head;
        else
          sees = h / group == head && row >= k0 && row < k0 + lk &&
                 visible(qi, row - k0, lq, lk, d.causal, d.window_left, d.window_right, dq, dk,
                         d.num_anchor_tokens);
        sees = sees && any;  // a row that sees no key is never poisoned, whatever its q
        const Expect e = expect(sees, t, v, d.softcap);
        char where[96];
        std::snprintf(where, sizeof where, "sequence %d row %lld head %d", b, (long long)qi, h);
        const size_t o = size_t(((q0 + qi) * d.q_heads + h) * d.head_dim);
        const size_t l = size_t(fwd::lse_index(d, b, q0, qi, h));
        check_row(posattn_backend_string(be[i]), where, e, &R.out[o], &clean[i].out[o], d.head_dim,
                  R.lse[l], clean[i].lse[l]);
      }
    });
  }
  pat_inputs_free(&in);
}

// ---- decode -------------------------------------------------------------------------------------
void run_decode(const Case &c) {
  dec::Problem P;
  pat_rng rng;
  pat_rng_seed(&rng, c.dec.seed);
  dec::build(c.dec, P, rng);
  const posattn_decode_desc &d = P.desc;
  const posattn_backend be[2] = {POSATTN_BACKEND_REF, POSATTN_BACKEND_EMU};
  dec::Run clean[2];
  for (int i = 0; i < 2; ++i) clean[i] = dec::decode(be[i], P);
  note("  decode clean: REF %s, EMU %s", posattn_status_string(clean[0].status),
       posattn_status_string(clean[1].status));
  if (clean[0].status != POSATTN_STATUS_SUCCESS || clean[1].status != POSATTN_STATUS_SUCCESS) return;
  const int t = c.tensor % 3, n = d.num_q_tokens, hkv = P.cache.kv_heads, ps = P.cache.page_size;
  const double v = injected(c.value);
  const int feat = c.feat % d.head_dim;
  int qb = 0, qt = 0, qh = 0, page = 0, slot = 0, g = 0;
  if (t == 0) {
    qb = c.row % d.batch;
    qt = (c.row / 8) % n;
    qh = c.head % d.q_heads;
    pat_store(P.q.data, P.q_dt, ((int64_t(qb) * n + qt) * d.q_heads + qh) * d.head_dim + feat, v);
  } else {
    // a slot some sequence reaches when possible, else any slot of the pool
    const int b = c.row % d.batch, L = P.lens[size_t(b)];
    if (L > 0) {
      const int j = (c.row / 4) % L;
      page = P.block_table[size_t(b) * d.max_pages_per_seq + j / ps];
      slot = j % ps;
    } else {
      page = (c.row / 4) % P.cache.num_pages;
      slot = c.row % ps;
    }
    g = c.head % hkv;
    pat_buf *pool = t == 1 ? &P.kpool : &P.vpool;
    pat_store(pool->data, P.cache.dtype, ((int64_t(page) * ps + slot) * hkv + g) * d.head_dim + feat, v);
  }
  note("  inject %g into %s", v, t == 0 ? "q" : t == 1 ? "the K pool" : "the V pool");
  const int group = d.q_heads / hkv;
  for (int i = 0; i < 2; ++i) {
    const dec::Run R = dec::decode(be[i], P);
    PA_FUZZ_CHECK(R.status == POSATTN_STATUS_SUCCESS, "%s: %s after injection (%s)",
                  posattn_backend_string(be[i]), posattn_status_string(R.status), R.message);
    for (int b = 0; b < d.batch; ++b)
      for (int q = 0; q < n; ++q)
        for (int h = 0; h < d.q_heads; ++h) {
          const int64_t L = P.lens[size_t(b)];
          bool sees = false;
          if (t == 0) {
            sees = b == qb && q == qt && h == qh;
          } else if (h / group == g) {
            for (int64_t j = 0; j < L && !sees; ++j)
              sees = P.block_table[size_t(b) * d.max_pages_per_seq + j / ps] == page &&
                     j % ps == slot &&
                     visible(q, j, n, L, d.causal, d.window_left, -1, nullptr, nullptr, 0);
          }
          sees = sees && dec::sees_any(d, b, q);
          const Expect e = expect(sees, t, v, d.softcap);
          char where[96];
          std::snprintf(where, sizeof where, "sequence %d token %d head %d", b, q, h);
          const size_t o = size_t(((int64_t(b) * n + q) * d.q_heads + h) * d.head_dim);
          const size_t l = size_t((int64_t(b) * d.q_heads + h) * n + q);
          check_row(posattn_backend_string(be[i]), where, e, &R.out[o], &clean[i].out[o],
                    d.head_dim, R.lse[l], clean[i].lse[l]);
        }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const Case c = decode_case<Case>(data, size);
  if (c.mode % 2 == 0)
    run_prefill(c);
  else
    run_decode(c);
  return 0;
}

std::vector<pa_fuzz::Seed> pa_fuzz::seeds() {
  std::vector<Seed> s;
  Case c;  // prefill, f32 SIMT, causal, NaN in v of key 3
  c.fwd.hd = 1; c.fwd.flags = 1; c.fwd.q_len = 7; c.fwd.kv_len = 7; c.fwd.seed = 1;
  c.tensor = 2; c.row = 3;
  s.push_back(make_seed("prefill-simt-causal-v-nan", c));
  Case q = c;  // +inf in q with a softcap: the row's logits are bounded
  q.tensor = 0; q.value = 1; q.fwd.cap_sel = 1; q.fwd.softcap = 10;
  s.push_back(make_seed("prefill-q-inf-softcap", q));
  Case sk = c;  // prefill with per-head sinks, tensor cores, NaN in v: poisoned rows stay NaN
  sk.fwd.hd = 0; sk.fwd.in_dt = 1; sk.fwd.q_len = 9; sk.fwd.kv_len = 9; sk.fwd.sink_sel = 1;
  sk.row = 5;
  s.push_back(make_seed("prefill-sinks-mma-v-nan", sk));
  Case dq = c;  // decode, 3 speculative tokens, NaN in V of a middle cached token
  dq.mode = 1; dq.dec.lens[0] = 11; dq.dec.n = 2; dq.dec.flags = 1; dq.dec.seed = 2;
  dq.tensor = 2; dq.row = 4 * 5;
  s.push_back(make_seed("decode-v-nan", dq));
  // ---- issue 11 findings ----
  Case fut = c;  // 2: tensor-core kernel, NaN in v of a future key in the same tile (causal)
  fut.fwd.hd = 0; fut.fwd.in_dt = 1; fut.fwd.q_len = 9; fut.fwd.kv_len = 9; fut.row = 6;
  s.push_back(make_seed("issue11-2-mma-future-key-v-nan", fut));
  Case win = fut;  // 2: inf in v of a key outside the window
  win.fwd.flags = 0; win.fwd.wl_sel = 1; win.fwd.wl = 2; win.fwd.wr_sel = 1; win.fwd.wr = 1;
  win.value = 1; win.row = 0;
  s.push_back(make_seed("issue11-2-mma-outside-window-v-inf", win));
  Case doc = fut;  // 2: NaN in v of another document poisons its neighbours in a packed batch
  doc.fwd.flags = 4 | 8; doc.fwd.doc_len = 2; doc.fwd.q_len = 11; doc.row = 7;
  s.push_back(make_seed("issue11-2-mma-other-document-v-nan", doc));
  Case qn = c;  // 3: a NaN q row must be poisoned, not answered 0 / -inf ("no visible key")
  qn.tensor = 0; qn.row = 4; qn.head = 0;
  s.push_back(make_seed("issue11-3-nan-q-row", qn));
  Case ki = fut;  // 3: +inf in k of a visible key: REF and EMU agree (poisoned)
  ki.tensor = 1; ki.value = 1; ki.row = 2;
  s.push_back(make_seed("issue11-3-inf-k", ki));
  Case spec = dq;  // 2: decode, NaN V of the newest token must not reach the earlier speculative ones
  spec.dec.n = 3; spec.dec.lens[0] = 12; spec.row = 4 * 11; spec.dec.page_size = 3;
  s.push_back(make_seed("issue11-2-decode-speculative-v-nan", spec));
  return s;
}
