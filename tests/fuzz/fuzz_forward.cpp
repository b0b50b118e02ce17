// fuzz_forward -- posattn_forward (and the size queries) on REF and EMU from fuzzed descriptors.
//
// Rules checked on every input:
//  - a call that fails leaves out and lse untouched, keeps every guard band, and leaves a message;
//    REF and EMU fail with the same status (one validator), except that EMU may answer
//    NOT_SUPPORTED for a valid request;
//  - on success (finite inputs): no +inf LSE, guards intact; a row has LSE -inf (with out 0;
//    with sinks: LSE = its sink) exactly when the header's visibility rule gives it no key, on
//    REF and on EMU; a row is NaN
//    in every feature and its LSE (poisoned, the header's NaN RULE) or nowhere; no row is
//    poisoned unless the input amplitude or PE parameter amplitude is raw (logits may then
//    overflow fp32), and with q = k = +amplitude every row that sees a key is poisoned exactly
//    when scale * head_dim * amplitude^2 overflows fp32;
//  - in the "moderate" part of the input space (input amplitude 1, default or moderate scale,
//    softcap and PE parameters, positions where the angle mode is accurate, random q and k),
//    EMU's out and LSE are within twice the DESIGN.md section 5 bound of REF (nmse <= 5e-4), with
//    the shim's low-precision naive attention as the baseline;
//  - size queries with huge sizes (raw-size inputs) fail with a message, or (EMU, which stages
//    out in the workspace) give at least the output's bytes: no wrap-around.
#include <cfloat>

#include "forward_problem.hpp"

namespace {
using namespace pa_fuzz;
using namespace pa_fuzz::fwd;

// Size queries with raw (possibly huge) sizes: nothing is allocated or run. EMU stages out in its
// workspace (docs/emulator.md), so an EMU size below the output's bytes means the size wrapped
// around; posattn.h asks for BAD_SIZE when a size does not fit in size_t.
void check_size_queries(const Case &c) {
  posattn_attention_desc d;
  posattn_attention_desc_init(&d);
  d.batch = c.batch;
  d.q_heads = c.raw_heads;
  d.kv_heads = c.kv_heads % 2 ? 1 : c.raw_heads;
  d.head_dim = 2 * (1 + c.hd % 128);
  d.q_len = c.raw_q_len;
  d.kv_len = c.raw_kv_len;
  const posattn_dtype in = dtype_of(c.in_dt), out = dtype_of(c.out_dt);
  posattn_status st[2];
  const posattn_backend be[2] = {POSATTN_BACKEND_REF, POSATTN_BACKEND_EMU};
  for (int i = 0; i < 2; ++i) {
    size_t bytes = 0;
    st[i] = posattn_workspace_size(context(be[i]), &d, in, out, &bytes);
    note("  workspace_size %s: %s, %zu bytes; %s", posattn_backend_string(be[i]),
         posattn_status_string(st[i]), bytes, posattn_context_last_message(context(be[i])));
    if (st[i] != POSATTN_STATUS_SUCCESS) {
      PA_FUZZ_CHECK(posattn_context_last_message(context(be[i]))[0] != 0,
                    "workspace_size failed (%s) without a message", posattn_status_string(st[i]));
      continue;
    }
    const unsigned __int128 out_bytes = (unsigned __int128)uint64_t(d.batch) * uint64_t(d.q_len) *
                                        uint64_t(d.q_heads) * uint64_t(d.head_dim) *
                                        posattn_dtype_size(out);
    if (be[i] == POSATTN_BACKEND_EMU)
      PA_FUZZ_CHECK(bytes >= out_bytes, "EMU workspace_size: SUCCESS with %zu bytes, less than "
                    "the output it stages (batch %d, q_len %d, q_heads %d, head_dim %d): the size "
                    "wrapped around", bytes, d.batch, d.q_len, d.q_heads, d.head_dim);
  }
  if (posattn_status_group(st[0]) == 100)
    PA_FUZZ_CHECK(st[1] == st[0], "workspace_size: REF %s, EMU %s", posattn_status_string(st[0]),
                  posattn_status_string(st[1]));
}

void check_failure(const char *who, const pat_run &r) {
  PA_FUZZ_CHECK(r.untouched && r.guards_ok, "%s: failed call (%s) wrote to out/lse or past a buffer",
                who, posattn_status_string(r.status));
  PA_FUZZ_CHECK(r.message[0] != 0, "%s: failed call (%s) left no message", who,
                posattn_status_string(r.status));
}

// Rows of a run: which are poisoned (the header's NaN RULE: NaN in every feature and a NaN LSE).
// With finite inputs only an fp32 overflow of a logit poisons a row; a row that is partly NaN, or
// NaN in out but not in the LSE, breaks the rule.
std::vector<char> poisoned(const char *who, const posattn_attention_desc &d, const Run &R) {
  std::vector<char> p(R.lse.size(), 0);
  for_each_row(d, [&](int b, int64_t q0, int64_t, int64_t i, int64_t, int64_t, bool) {
    for (int h = 0; h < d.q_heads; ++h) {
      const int64_t li = lse_index(d, b, q0, i, h), o = ((q0 + i) * d.q_heads + h) * d.head_dim;
      int64_t nan = 0;
      for (int f = 0; f < d.head_dim; ++f) nan += std::isnan(R.out[size_t(o + f)]);
      const bool lnan = std::isnan(R.lse[size_t(li)]);
      PA_FUZZ_CHECK((nan == 0 && !lnan) || (nan == d.head_dim && lnan), "%s: sequence %d row %lld "
                    "head %d has %lld of %d output features NaN and %s LSE: a row is poisoned "
                    "whole or not at all", who, b, (long long)i, h, (long long)nan, d.head_dim,
                    lnan ? "a NaN" : "a non-NaN");
      p[size_t(li)] = lnan;
    }
  });
  return p;
}

// The checks that hold on every successful run (see the file comment).
void check_success(const char *who, const Problem &P, const Run &R) {
  const posattn_attention_desc &d = P.desc;
  PA_FUZZ_CHECK(R.r.guards_ok, "%s: a guard band was overwritten", who);
  const std::vector<char> bad = poisoned(who, d, R);
  for_each_row(d, [&](int b, int64_t q0, int64_t, int64_t i, int64_t, int64_t, bool any) {
    for (int h = 0; h < d.q_heads; ++h) {
      const double lse = R.lse[size_t(lse_index(d, b, q0, i, h))];
      PA_FUZZ_CHECK(lse != INFINITY, "%s: LSE +inf at sequence %d row %lld head %d", who, b,
                    (long long)i, h);
      // a row that sees no key: LSE -inf, or its sink; one that sees keys: never -inf
      const double empty_lse = d.sink_logits ? double(d.sink_logits[h]) : -INFINITY;
      PA_FUZZ_CHECK(any ? lse != -INFINITY : lse == empty_lse, "%s: sequence %d row %lld head %d "
                    "%s but has LSE %g", who, b, (long long)i, h, any ? "sees keys" : "sees no key",
                    lse);
      if (!any)
        for (int f = 0; f < d.head_dim; ++f)
          PA_FUZZ_CHECK(R.out[size_t(((q0 + i) * d.q_heads + h) * d.head_dim + f)] == 0,
                        "%s: row without keys has a nonzero output", who);
    }
  });
  // Where logits stay far below the fp32 limit nothing may be poisoned; q = k = +amplitude
  // without PE or softcap makes every logit scale * head_dim * amplitude^2 exactly, so every row
  // that sees a key is poisoned when that overflows fp32 (the RANGES paragraph of posattn.h).
  const double scale = d.softmax_scale != 0 ? d.softmax_scale : 1 / std::sqrt(double(d.head_dim));
  const double logit = scale * d.head_dim * P.amp * P.amp;
  const bool overflow = P.constant && P.kind == POSATTN_PE_NONE && d.softcap == 0 &&
                        logit > 2.0 * FLT_MAX;
  if (!P.finite_range && !overflow) return;
  for_each_row(d, [&](int b, int64_t q0, int64_t, int64_t i, int64_t, int64_t, bool any) {
    for (int h = 0; h < d.q_heads; ++h)
      PA_FUZZ_CHECK(bad[size_t(lse_index(d, b, q0, i, h))] == (overflow && any),
                    "%s: sequence %d row %lld head %d is %s", who, b, (long long)i, h,
                    overflow && any ? "not poisoned though every logit overflows fp32"
                                    : "poisoned though no logit can reach the fp32 limit");
  });
}

void check_rule(const Problem &P, const pat_inputs &in, const Run &ref, const Run &emu) {
  std::vector<double> base(ref.out.size()), base_lse(ref.lse.size());
  if (pat_naive_forward(&P.desc, &in.tq, &in.tk, &in.tv, P.in_dt, P.out_dt, base.data(),
                        base_lse.data()) != POSATTN_STATUS_SUCCESS)
    return;  // the naive attention's PE helper refused: nothing to compare against
  // Twice the section 5 bound: the rule is tuned for random data on the suites' grids, and the
  // fuzzer's corners exceed it by a few percent through rounding alone (max_err 1.67e-4 vs
  // 1.65e-4, nmse 4e-8); a wrong mask, position or bias misses by orders of magnitude.
  const pat_rule_result o = pat_rule_check(emu.out.data(), base.data(), ref.out.data(),
                                           int64_t(base.size()), P.out_dt);
  PA_FUZZ_CHECK(o.nmse <= 5e-4 && o.bad_nonfinite == 0 && o.max_err <= 2 * o.bound,
                "EMU out vs REF fails twice the section 5 rule: max_err %g bound %g (baseline "
                "%g) nmse %g nonfinite %lld", o.max_err, o.bound, o.max_base_err, o.nmse,
                (long long)o.bad_nonfinite);
  const posattn_dtype res = P.in_dt == POSATTN_DTYPE_F32 ? POSATTN_DTYPE_F16 : P.in_dt;
  const pat_rule_result l = pat_rule_check(emu.lse.data(), base_lse.data(), ref.lse.data(),
                                           int64_t(base_lse.size()), res);
  PA_FUZZ_CHECK(l.bad_nonfinite == 0 && l.max_err <= 2 * l.bound,
                "EMU lse vs REF fails twice the section 5 rule: max_err %g bound %g (baseline "
                "%g) nonfinite %lld", l.max_err, l.bound, l.max_base_err, (long long)l.bad_nonfinite);
}

void run_case(const Case &c) {
  if (c.flags & 16) {
    check_size_queries(c);
    return;
  }
  Problem P;
  pat_rng rng;
  pat_rng_seed(&rng, c.seed);
  build(c, P, rng);
  const posattn_attention_desc &d = P.desc;
  pat_inputs in;
  make_inputs(c, P, rng, in);
  const Run ref = forward(POSATTN_BACKEND_REF, d, in, POSATTN_DTYPE_F32);
  const Run emu = forward(POSATTN_BACKEND_EMU, d, in, P.out_dt);
  note("  forward: REF %s, EMU %s%s; %s", posattn_status_string(ref.r.status),
       posattn_status_string(emu.r.status), P.moderate ? " (moderate: section 5 rule)" : "",
       ref.r.status ? ref.r.message : emu.r.message);
  if (ref.r.status != POSATTN_STATUS_SUCCESS) {
    check_failure("REF", ref.r);
    check_failure("EMU", emu.r);
    PA_FUZZ_CHECK(emu.r.status == ref.r.status, "REF says %s (%s), EMU says %s (%s)",
                  posattn_status_string(ref.r.status), ref.r.message,
                  posattn_status_string(emu.r.status), emu.r.message);
  } else {
    check_success("REF", P, ref);
    if (emu.r.status == POSATTN_STATUS_NOT_SUPPORTED) {
      check_failure("EMU", emu.r);
    } else {
      PA_FUZZ_CHECK(emu.r.status == POSATTN_STATUS_SUCCESS, "REF succeeds, EMU says %s (%s)",
                    posattn_status_string(emu.r.status), emu.r.message);
      check_success("EMU", P, emu);
      if (P.moderate) check_rule(P, in, ref, emu);
    }
  }
  pat_inputs_free(&in);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  run_case(decode_case<Case>(data, size));
  return 0;
}

std::vector<pa_fuzz::Seed> pa_fuzz::seeds() {
  std::vector<Seed> s;
  Case c;  // f32, head_dim 64, 1 sequence, dense, no PE
  c.q_len = 4; c.kv_len = 6; c.seed = 1;
  s.push_back(make_seed("plain-f32", c));
  Case r = c;  // causal RoPE, GQA, f32 SIMT kernel
  r.hd = 1; r.group = 1; r.flags = 1; r.pe_kind = POSATTN_PE_ROPE; r.q_len = 9; r.kv_len = 11;
  s.push_back(make_seed("rope-causal-gqa-simt", r));
  Case m = c;  // bf16 tensor-core kernel, varlen self-attention with documents and anchors
  m.in_dt = 1; m.out_dt = 1; m.batch = 1; m.flags = 1 | 2 | 4 | 8; m.q_len = 11; m.doc_len = 2;
  m.anchors = 1; m.wl_sel = 1; m.wl = 5; m.seed = 2;
  s.push_back(make_seed("mma-bf16-varlen-docs-window", m));
  const uint8_t kinds[] = {POSATTN_PE_ALIBI, POSATTN_PE_FIRE, POSATTN_PE_XPOS, POSATTN_PE_T5,
                           POSATTN_PE_KERPLE_LOG, POSATTN_PE_KERPLE_POWER};
  const char *names[] = {"alibi-positions", "fire-positions", "xpos-positions", "t5-positions",
                         "kerple-log-positions", "kerple-power-positions"};
  for (int i = 0; i < 6; ++i) {
    Case p = c;
    p.pe_kind = kinds[i]; p.pos_sel = 1; p.pos_base = 7; p.pos_step = 1; p.flags = 1;
    p.in_dt = uint8_t(i % 3); p.seed = uint64_t(10 + i); p.q_len = 5; p.kv_len = 8;
    s.push_back(make_seed(names[i], p));
  }
  Case ro = r;  // the newer RoPE fields: offset 8, 3 active pairs, YaRN with DeepSeek's mscale pair
  ro.rope_scaling = POSATTN_ROPE_SCALING_YARN; ro.rope_extra.sel = 1 | 2 | 4;
  ro.rope_extra.offset = 8; ro.rope_extra.active = 3; ro.rope_extra.mscale = 1;
  ro.rope_extra.mscale_all = 0.8;
  s.push_back(make_seed("rope-offset-active-yarn-mscale", ro));
  Case lr = r;  // LongRoPE with its own factor (1 + 3) for the attention factor, bf16 tensor cores
  lr.rope_scaling = POSATTN_ROPE_SCALING_LONGROPE; lr.rope_extra.sel = 8; lr.rope_extra.longrope = 3;
  lr.in_dt = 1; lr.hd = 0; lr.seed = 3;
  s.push_back(make_seed("rope-longrope-factor-mma", lr));
  Case sk = c;  // sinks: per-head logits in [-2, 3], causal with more queries than keys (rows
                // that see no key: LSE = sink), bf16 tensor cores and f32 SIMT
  sk.flags = 1; sk.q_len = 9; sk.kv_len = 5; sk.group = 1; sk.sink_sel = 1; sk.seed = 30;
  s.push_back(make_seed("sinks-causal-empty-rows-simt", sk));
  sk.in_dt = 1; sk.out_dt = 1; sk.seed = 31;
  s.push_back(make_seed("sinks-causal-empty-rows-mma", sk));
  Case sb = c;  // one sink far above every logit (out ~ 0), and a NaN sink (BAD_PE_PARAMS)
  sb.sink_sel = 2; sb.sink_raw = 3000.f; sb.seed = 32;
  s.push_back(make_seed("sinks-large", sb));
  sb.sink_sel = 3; sb.sink_raw = NAN;
  s.push_back(make_seed("sinks-nan-rejected", sb));
  Case z = c;  // raw size query
  z.flags = 16; z.batch = 2; z.raw_heads = 8; z.raw_q_len = 1000; z.raw_kv_len = 1000;
  s.push_back(make_seed("size-query", z));

  // ---- issue 11 findings ----
  Case w1 = c;  // 1: window_right = INT32_MAX ("unbounded"): REF sees every key, kernels wrapped
  w1.hd = 1; w1.wr_sel = 2; w1.wr = INT32_MAX;
  s.push_back(make_seed("issue11-1-window-right-int32max-simt", w1));
  Case w2 = c;
  w2.in_dt = 1; w2.wr_sel = 2; w2.wr = INT32_MAX;
  s.push_back(make_seed("issue11-1-window-right-int32max-mma", w2));
  Case w3 = c;  // window_left = INT32_MAX with keys after the query (non-causal, SIMT)
  w3.hd = 1; w3.wl_sel = 2; w3.wl = INT32_MAX; w3.q_len = 9; w3.kv_len = 3;
  s.push_back(make_seed("issue11-1-window-left-int32max-simt", w3));
  Case x = c;  // 4: xPos, default parameters, keys 40,000 positions after the queries
  x.pe_kind = POSATTN_PE_XPOS; x.pos_sel = 2; x.pos_base = 40000; x.q_off = -40000; x.hd = 1;
  s.push_back(make_seed("issue11-4-xpos-distance-40000", x));
  Case af = c;  // 4: RoPE attention_factor 1e30
  af.pe_kind = POSATTN_PE_ROPE; af.pe_raw = 1; af.rope_base = 10000; af.rope_factor = 1;
  af.rope_attn = 1e30;
  s.push_back(make_seed("issue11-4-rope-attention-factor-1e30", af));
  Case sc = c;  // 4: softmax_scale 3.4e38
  sc.scale_sel = 2; sc.scale = 3.4e38f;
  s.push_back(make_seed("issue11-4-softmax-scale-3.4e38", sc));
  Case lf = af;  // 4: LINEAR factor 1e-300
  lf.rope_attn = 0; lf.rope_scaling = POSATTN_ROPE_SCALING_LINEAR; lf.rope_factor = 1e-300;
  s.push_back(make_seed("issue11-4-rope-linear-factor-1e-300", lf));
  Case fc = c;  // 4: FIRE c = 1e-50
  fc.pe_kind = POSATTN_PE_FIRE; fc.pe_raw = 4; fc.fire_c = 1e-50; fc.fire_L = 512;
  fc.fire_eps = 0; fc.pos_sel = 1; fc.pos_base = 3;
  s.push_back(make_seed("issue11-4-fire-c-1e-50", fc));
  Case xs = x;  // 4: xPos scale_base 5e-324
  xs.pos_sel = 1; xs.q_off = 0; xs.pe_raw = 2; xs.xpos_sb = 5e-324; xs.xpos_gamma = 0.4;
  s.push_back(make_seed("issue11-4-xpos-scale-base-denormal", xs));
  Case big = c;  // 4: bf16 q and k of 3e19: q.k overflows fp32 before the scale
  big.in_dt = 1; big.amp_sel = 3; big.amp_raw = 3e19f; big.flags = 32;
  s.push_back(make_seed("issue11-4-bf16-qk-3e19", big));
  Case ws = z;  // 5: workspace_size with q_len = q_heads = 2^31 - 1 wrapped around
  ws.batch = 1; ws.kv_heads = 1; ws.raw_heads = INT32_MAX; ws.raw_q_len = INT32_MAX;
  ws.raw_kv_len = 1; ws.hd = 63;
  s.push_back(make_seed("issue11-5-workspace-size-wrap", ws));
  Case ex = c;  // 6: EXACT angles at positions near 1e6 keep the section 5 accuracy
  ex.pe_kind = POSATTN_PE_ROPE; ex.rope_angle = 1; ex.pos_sel = 2; ex.pos_base = 1000000;
  ex.flags = 1; ex.hd = 1; ex.q_len = 6; ex.kv_len = 9;
  s.push_back(make_seed("issue11-6-exact-angles-1e6", ex));
  return s;
}
