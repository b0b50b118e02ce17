// fuzz_decode -- posattn_decode on REF and EMU from fuzzed paged caches and descriptors.
//
// Rules checked on every input:
//  - a failed call leaves out and lse untouched, every guard band intact (pools and q included)
//    and a message; REF and EMU fail with the same status, except that EMU may answer
//    NOT_SUPPORTED for a valid request;
//  - on success: no +inf LSE; a row is NaN in every feature and its LSE (poisoned, the header's
//    NaN RULE) or nowhere, and never poisoned unless the amplitude is raw; a query that sees no cached token (the header's
//    rule) gets out 0 and LSE -inf, or LSE = its head's sink logit with sinks; one that sees a
//    token never gets LSE -inf;
//  - in the moderate part of the input space (amplitude <= 4, small positions, default or moderate
//    scale, softcap and sinks), EMU agrees with REF: |out difference| <= ulp(out dtype, amplitude)
//    + 1e-4 * amplitude (one rounding of the output plus fp32 softmax error far below that, for
//    logits up to amplitude^2 * head_dim * scale ~ 1e3), |LSE difference| <= 1e-3 (1 + |LSE|).
//    A wrong mask, page or position moves a row by O(amplitude), far outside these bounds.
#include "decode_problem.hpp"

namespace {
using namespace pa_fuzz;
using namespace pa_fuzz::dec;

void check_failure(const char *who, const Run &r) {
  PA_FUZZ_CHECK(r.untouched && r.guards_ok, "%s: failed decode (%s) wrote to out/lse or past a "
                "buffer", who, posattn_status_string(r.status));
  PA_FUZZ_CHECK(r.message[0] != 0, "%s: failed decode (%s) left no message", who,
                posattn_status_string(r.status));
}

void check_success(const char *who, const Problem &P, const Run &R) {
  const posattn_decode_desc &d = P.desc;
  PA_FUZZ_CHECK(R.guards_ok, "%s: a guard band was overwritten", who);
  const int n = d.num_q_tokens;
  for (int b = 0; b < d.batch; ++b)
    for (int t = 0; t < n; ++t) {
      const bool any = sees_any(d, b, t);
      for (int h = 0; h < d.q_heads; ++h) {
        const double lse = R.lse[size_t((b * d.q_heads + h) * n + t)];
        int64_t nan = 0;
        for (int f = 0; f < d.head_dim; ++f)
          nan += std::isnan(R.out[size_t(((b * n + t) * d.q_heads + h) * d.head_dim + f)]);
        PA_FUZZ_CHECK((nan == 0 && !std::isnan(lse)) || (nan == d.head_dim && std::isnan(lse)),
                      "%s: sequence %d token %d head %d: %lld of %d features NaN, LSE %g (a row "
                      "is poisoned whole or not at all)", who, b, t, h, (long long)nan,
                      d.head_dim, lse);
        PA_FUZZ_CHECK(!std::isnan(lse) || !P.finite_range, "%s: sequence %d token %d head %d "
                      "poisoned with finite inputs far from the fp32 limit", who, b, t, h);
        PA_FUZZ_CHECK(lse != INFINITY, "%s: LSE +inf (sequence %d token %d head %d)", who, b, t, h);
        if (any) {
          PA_FUZZ_CHECK(lse != -INFINITY, "%s: sequence %d token %d head %d sees cached tokens "
                        "but has LSE -inf", who, b, t, h);
          continue;
        }
        const double empty = d.sink_logits ? double(d.sink_logits[h]) : -INFINITY;
        PA_FUZZ_CHECK(lse == empty, "%s: sequence %d token %d head %d sees no token: LSE %g, "
                      "expected %g", who, b, t, h, lse, empty);
        for (int f = 0; f < d.head_dim; ++f)
          PA_FUZZ_CHECK(R.out[size_t(((b * n + t) * d.q_heads + h) * d.head_dim + f)] == 0,
                        "%s: a query without tokens has a nonzero output", who);
      }
    }
}

void check_agreement(const Problem &P, const Run &ref, const Run &emu) {
  const double tol = pat_ulp(P.out_dt, P.amp) + 1e-4 * P.amp;
  for (size_t i = 0; i < ref.out.size(); ++i)
    PA_FUZZ_CHECK(std::fabs(emu.out[i] - ref.out[i]) <= tol, "EMU out[%zu] = %g, REF %g (bound %g)",
                  i, emu.out[i], ref.out[i], tol);
  for (size_t i = 0; i < ref.lse.size(); ++i)
    PA_FUZZ_CHECK(emu.lse[i] == ref.lse[i] ||
                      std::fabs(emu.lse[i] - ref.lse[i]) <= 1e-3 * (1 + std::fabs(ref.lse[i])),
                  "EMU lse[%zu] = %g, REF %g", i, emu.lse[i], ref.lse[i]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const Case c = decode_case<Case>(data, size);
  Problem P;
  pat_rng rng;
  pat_rng_seed(&rng, c.seed);
  build(c, P, rng);
  const posattn_decode_desc &d = P.desc;
  note("  batch %d, q_heads %d, head_dim %d, tokens %d, pages of %d, lens %d %d %d, splits %d, "
       "window %d, softcap %g, scale %g, pe %d", d.batch, d.q_heads, d.head_dim, d.num_q_tokens,
       P.cache.page_size, P.lens[0], d.batch > 1 ? P.lens[1] : -1, d.batch > 2 ? P.lens[2] : -1,
       d.num_splits, d.window_left, double(d.softcap), double(d.softmax_scale), c.pe_kind % 9);
  const Run ref = decode(POSATTN_BACKEND_REF, P);
  const Run emu = decode(POSATTN_BACKEND_EMU, P);
  note("  decode: REF %s, EMU %s%s; %s", posattn_status_string(ref.status),
       posattn_status_string(emu.status), P.moderate ? " (moderate: agreement bound)" : "",
       ref.status ? ref.message : emu.message);
  if (ref.status != POSATTN_STATUS_SUCCESS) {
    check_failure("REF", ref);
    check_failure("EMU", emu);
    PA_FUZZ_CHECK(emu.status == ref.status, "REF says %s (%s), EMU says %s (%s)",
                  posattn_status_string(ref.status), ref.message,
                  posattn_status_string(emu.status), emu.message);
    return 0;
  }
  check_success("REF", P, ref);
  if (emu.status == POSATTN_STATUS_NOT_SUPPORTED) {
    check_failure("EMU", emu);
    return 0;
  }
  PA_FUZZ_CHECK(emu.status == POSATTN_STATUS_SUCCESS, "REF succeeds, EMU says %s (%s)",
                posattn_status_string(emu.status), emu.message);
  check_success("EMU", P, emu);
  if (P.moderate) check_agreement(P, ref, emu);
  return 0;
}

std::vector<pa_fuzz::Seed> pa_fuzz::seeds() {
  std::vector<Seed> s;
  Case c;  // one sequence of 9 tokens in pages of 4, one query, f32
  c.lens[0] = 9; c.page_size = 3; c.flags = 1; c.seed = 1;
  s.push_back(make_seed("plain-f32", c));
  Case g = c;  // bf16 cache, 3 sequences (one empty), 3 speculative tokens, GQA, RoPE, splits
  g.batch = 2; g.lens[1] = 0; g.lens[2] = 37; g.n = 2; g.group = 1; g.kv_heads = 1;
  g.cache_dt = 1; g.q_dt = 1; g.pe_kind = POSATTN_PE_ROPE; g.split_sel = 1; g.splits = 2;
  g.seed = 2;
  s.push_back(make_seed("rope-bf16-speculative-splits", g));
  Case w = g;  // window, softcap, sinks, shared prefix, rotated cache, gapped positions, ALiBi
  w.flags = 1 | 2 | 4 | 8; w.wl_sel = 1; w.wl = 5; w.cap_sel = 1; w.softcap = 20; w.sink_amp = 2;
  w.pos_sel = 1; w.pos_base = 3; w.pe_kind = POSATTN_PE_ALIBI; w.lens[2] = 30; w.seed = 3;
  s.push_back(make_seed("window-softcap-sinks-shared-alibi", w));
  const uint8_t kinds[] = {POSATTN_PE_FIRE, POSATTN_PE_T5, POSATTN_PE_KERPLE_LOG,
                           POSATTN_PE_KERPLE_POWER, POSATTN_PE_XPOS};
  const char *names[] = {"fire", "t5", "kerple-log", "kerple-power", "xpos-not-supported"};
  for (int i = 0; i < 5; ++i) {
    Case p = g;
    p.pe_kind = kinds[i]; p.pos_sel = 1; p.seed = uint64_t(10 + i); p.hd = uint8_t(i % 2);
    s.push_back(make_seed(names[i], p));
  }
  Case ro = g;  // the newer RoPE fields into a rotated cache: offset 6, 3 active pairs, YaRN mscale
  ro.flags |= 8; ro.rope_scaling = 1; ro.rope_extra.sel = 1 | 2 | 4; ro.rope_extra.offset = 6;
  ro.rope_extra.active = 3; ro.rope_extra.mscale = 1; ro.rope_extra.mscale_all = 0.7; ro.seed = 4;
  s.push_back(make_seed("rope-offset-active-yarn-rotated", ro));
  Case lr = g;  // LongRoPE with its own factor (1 + 5), un-rotated cache
  lr.rope_scaling = 2; lr.rope_extra.sel = 8; lr.rope_extra.longrope = 5; lr.seed = 5;
  s.push_back(make_seed("rope-longrope-factor", lr));
  Case bad = c;  // a block-table entry out of the pool
  bad.bt_at = 0x80; bad.bt_val = 1000;
  s.push_back(make_seed("block-table-out-of-pool", bad));
  // ---- issue 11 findings ----
  Case wl = g;  // 1: window_left = INT32_MAX in decode (the kernel's window arithmetic wrapped)
  wl.wl_sel = 2; wl.wl = 2147483647;
  s.push_back(make_seed("issue11-1-window-left-int32max", wl));
  Case ns = w;  // 7: a NaN sink logit is refused (BAD_PE_PARAMS), on REF and EMU alike
  ns.sink_amp = std::nanf("");
  s.push_back(make_seed("issue11-7-nan-sink", ns));
  return s;
}
