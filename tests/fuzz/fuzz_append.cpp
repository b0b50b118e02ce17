// fuzz_append -- posattn_cache_append on REF and EMU: two copies of one random page pool, the same
// fuzzed descriptor (lengths, block tables with shared or corrupted entries, positions, a rotated
// cache with RoPE).
//
// Rules checked on every input:
//  - REF and EMU return the same status (EMU may answer NOT_SUPPORTED);
//  - a failed append leaves both pools bit-identical to before and leaves a message;
//  - a successful one changes exactly the slots (page, slot) of tokens cache_lens[b] ..
//    cache_lens[b] + new_lens[b] - 1 (every other element bit-identical), V there is the input
//    rounded once to the cache dtype (bit-exact, both backends), K too unless the cache is rotated
//    under RoPE; then REF and EMU agree within one ulp of the cache dtype plus the angle error
//    (FAST: 2 p 2^-24 at positions p < 2^11, EXACT: 1e-6), i.e. one rounding each after fp32
//    rotations; larger FAST positions are not compared (documented as inaccurate).
#include <algorithm>

#include "fuzz_common.hpp"

namespace {
using namespace pa_fuzz;

struct Case {
  uint8_t batch = 0, kv_heads = 0, hd = 0, page_size = 0, cache_dt = 0, in_dt = 0, tokens = 0;
  uint8_t flags = 0;  // bit0 rotated cache, bit1 new_lens, bit2 shared table rows, bit3 one page
                      // short, bit4 RoPE, bit5 EXACT angles
  uint8_t cache_lens[4] = {0, 0, 0, 0}, new_lens[4] = {0, 0, 0, 0};
  uint8_t pos_sel = 0, bt_at = 0;
  int32_t pos_base = 0, bt_val = 0;
  uint64_t seed = 0;
};

template <class IO>
void fields(IO &io, Case &c) {
  io(c.batch); io(c.kv_heads); io(c.hd); io(c.page_size); io(c.cache_dt); io(c.in_dt);
  io(c.tokens); io(c.flags);
  for (uint8_t &x : c.cache_lens) io(x);
  for (uint8_t &x : c.new_lens) io(x);
  io(c.pos_sel); io(c.bt_at); io(c.pos_base); io(c.bt_val); io(c.seed);
}

struct Result {
  posattn_status status;
  std::vector<unsigned char> k, v;
  char message[512];
};

Result append(posattn_backend be, const posattn_cache_append_desc &d, posattn_kv_cache cache,
              const pat_buf &k0, const pat_buf &v0, size_t pool_bytes, const posattn_tensor &kn,
              const posattn_tensor &vn) {
  Result R;
  R.k.assign(static_cast<const unsigned char *>(k0.data),
             static_cast<const unsigned char *>(k0.data) + pool_bytes);
  R.v.assign(static_cast<const unsigned char *>(v0.data),
             static_cast<const unsigned char *>(v0.data) + pool_bytes);
  cache.k_pages = R.k.data();
  cache.v_pages = R.v.data();
  posattn_context *ctx = context(be);
  size_t ws = 0;
  R.status = posattn_cache_append_workspace_size(ctx, &d, &cache, kn.dtype, &ws);
  if (R.status == POSATTN_STATUS_SUCCESS) {
    pat_buf w{};
    if (pat_buf_alloc(&w, ws ? ws : 1)) PA_FUZZ_FAIL("out of memory");
    R.status = posattn_cache_append(ctx, &d, &cache, &kn, &vn, ws ? w.data : nullptr, ws);
    PA_FUZZ_CHECK(pat_buf_guards_ok(&w), "append wrote past its workspace");
    pat_buf_free(&w);
  }
  std::snprintf(R.message, sizeof R.message, "%s", posattn_context_last_message(ctx));
  return R;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const int32_t kHeadDims[8] = {16, 64, 8, 2, 6, 3, 32, 128};
  const Case c = decode_case<Case>(data, size);
  pat_rng rng;
  pat_rng_seed(&rng, c.seed);
  posattn_cache_append_desc d;
  posattn_cache_append_desc_init(&d);
  d.batch = pick(c.batch, 1, 3);
  d.num_tokens = pick(c.tokens, 1, 8);
  const int hkv = pick(c.kv_heads, 1, 2), hd = kHeadDims[c.hd % 8], ps = pick(c.page_size, 1, 16);
  const posattn_dtype cdt = dtype_of(c.cache_dt), idt = dtype_of(c.in_dt);
  std::vector<int32_t> cl, nl, bt, pos;
  int mpp = 1;
  for (int b = 0; b < d.batch; ++b) {
    cl.push_back(c.cache_lens[b] % 33);
    nl.push_back((c.flags & 2) ? c.new_lens[b] % 10 : d.num_tokens);
    mpp = std::max(mpp, (cl.back() + nl.back() + ps - 1) / ps);
  }
  if ((c.flags & 8) && mpp > 1) --mpp;
  const int pages = d.batch * mpp + 2;
  std::vector<int32_t> ids(size_t(pages), 0);
  for (int i = 0; i < pages; ++i) ids[size_t(i)] = i;
  for (int i = pages - 1; i > 0; --i) std::swap(ids[size_t(i)], ids[size_t(pat_rng_int(&rng, 0, i))]);
  for (int b = 0; b < d.batch; ++b)
    for (int k = 0; k < mpp; ++k)
      bt.push_back((c.flags & 4) && b ? bt[size_t(k)] : ids[size_t(b * mpp + k)]);
  if (c.bt_at & 0x80) bt[(c.bt_at & 0x7f) % bt.size()] = c.bt_val;
  d.cache_lens = cl.data();
  if (c.flags & 2) d.new_lens = nl.data();
  d.block_table = bt.data();
  d.max_pages_per_seq = mpp;
  const int mode = c.pos_sel % 3;
  if (mode) {
    for (int b = 0; b < d.batch; ++b)
      for (int t = 0; t < d.num_tokens; ++t)
        pos.push_back(mode == 1 ? (c.pos_base & 1023) + cl[size_t(b)] + t
                                : int32_t(uint32_t(c.pos_base) + uint32_t(t)));
    d.positions = pos.data();
  }
  if (c.flags & 16) {
    d.pe.kind = POSATTN_PE_ROPE;
    d.pe.rope.angle_mode = posattn_angle_mode((c.flags >> 5) & 1);
  }
  const bool rotated = (c.flags & 1) && (c.flags & 16);

  const size_t elems = size_t(pages) * ps * hkv * hd, pool_bytes = elems * posattn_dtype_size(cdt);
  const size_t nn = size_t(d.batch) * d.num_tokens * hkv * hd;
  pat_buf k0{}, v0{}, kn{}, vn{};
  if (pat_buf_alloc(&k0, pool_bytes) || pat_buf_alloc(&v0, pool_bytes) ||
      pat_buf_alloc(&kn, nn * posattn_dtype_size(idt)) || pat_buf_alloc(&vn, nn * posattn_dtype_size(idt)))
    PA_FUZZ_FAIL("out of memory");
  pat_fill_random(&rng, cdt, k0.data, nullptr, int64_t(elems), 1.0);
  pat_fill_random(&rng, cdt, v0.data, nullptr, int64_t(elems), 1.0);
  pat_fill_random(&rng, idt, kn.data, nullptr, int64_t(nn), 1.0);
  pat_fill_random(&rng, idt, vn.data, nullptr, int64_t(nn), 1.0);
  posattn_kv_cache cache;
  posattn_kv_cache_init(&cache, k0.data, v0.data, cdt, pages, ps, hkv, hd);
  cache.k_rotated = c.flags & 1;
  posattn_tensor tk, tv;
  posattn_tensor_init_contiguous(&tk, kn.data, idt, d.num_tokens, hkv, hd);
  posattn_tensor_init_contiguous(&tv, vn.data, idt, d.num_tokens, hkv, hd);

  const Result ref = append(POSATTN_BACKEND_REF, d, cache, k0, v0, pool_bytes, tk, tv);
  const Result emu = append(POSATTN_BACKEND_EMU, d, cache, k0, v0, pool_bytes, tk, tv);
  note("  append: REF %s, EMU %s; %s", posattn_status_string(ref.status),
       posattn_status_string(emu.status), ref.status ? ref.message : emu.message);
  const Result *runs[2] = {&ref, &emu};
  const bool emu_ran = emu.status != POSATTN_STATUS_NOT_SUPPORTED ||
                       ref.status != POSATTN_STATUS_SUCCESS;
  if (emu_ran)
    PA_FUZZ_CHECK(emu.status == ref.status, "REF says %s (%s), EMU says %s (%s)",
                  posattn_status_string(ref.status), ref.message,
                  posattn_status_string(emu.status), emu.message);
  for (const Result *r : runs) {
    if (r->status == POSATTN_STATUS_SUCCESS) continue;
    PA_FUZZ_CHECK(std::memcmp(r->k.data(), k0.data, pool_bytes) == 0 &&
                      std::memcmp(r->v.data(), v0.data, pool_bytes) == 0,
                  "a failed append (%s) changed the pools", posattn_status_string(r->status));
    PA_FUZZ_CHECK(r->message[0] != 0, "a failed append (%s) left no message",
                  posattn_status_string(r->status));
  }
  if (ref.status == POSATTN_STATUS_SUCCESS) {
    // expected pools: the old ones with the new tokens' slots written
    std::vector<char> written(size_t(pages) * ps, 0);
    std::vector<double> want_v(elems), want_k(elems);
    for (size_t i = 0; i < elems; ++i) {
      want_v[i] = pat_load(v0.data, cdt, int64_t(i));
      want_k[i] = pat_load(k0.data, cdt, int64_t(i));
    }
    for (int b = 0; b < d.batch; ++b)
      for (int t = 0; t < nl[size_t(b)]; ++t) {
        const int j = cl[size_t(b)] + t, page = bt[size_t(b * mpp + j / ps)];
        written[size_t(page) * ps + j % ps] = 1;
        for (int64_t e = 0; e < int64_t(hkv) * hd; ++e) {
          const int64_t dst = (int64_t(page) * ps + j % ps) * hkv * hd + e;
          const int64_t src = (int64_t(b) * d.num_tokens + t) * hkv * hd + e;
          want_v[size_t(dst)] = pat_round_to(cdt, pat_load(vn.data, idt, src));
          want_k[size_t(dst)] = pat_round_to(cdt, pat_load(kn.data, idt, src));
        }
      }
    const bool check_k = !rotated || mode == 1 || d.pe.rope.angle_mode == POSATTN_ANGLE_EXACT;
    for (const Result *r : runs) {
      if (r->status != POSATTN_STATUS_SUCCESS) continue;
      for (size_t i = 0; i < elems; ++i) {
        const bool w = written[i / size_t(hkv * hd)];
        const double kv = pat_load(r->k.data(), cdt, int64_t(i)), vv = pat_load(r->v.data(), cdt, int64_t(i));
        PA_FUZZ_CHECK(vv == want_v[i], "V element %zu (%s slot): %g, expected %g", i,
                      w ? "written" : "untouched", vv, want_v[i]);
        if (!w || !rotated)
          PA_FUZZ_CHECK(kv == want_k[i], "K element %zu (%s slot): %g, expected %g", i,
                        w ? "written" : "untouched", kv, want_k[i]);
      }
    }
    // FAST angles: p * inv_freq is rounded to fp32 (error <= p * 2^-24 rad for inv_freq <= 1),
    // which moves a rotated pair of |k| <= sqrt(2) by up to 2 p 2^-24; EXACT: ~1e-6 rad
    int64_t max_pos = 64;
    for (int32_t p : pos) max_pos = std::max<int64_t>(max_pos, p);
    const double angle_err = d.pe.rope.angle_mode == POSATTN_ANGLE_EXACT ? 1e-6 : 2.0 * max_pos * 0x1p-24;
    if (rotated && check_k && emu.status == POSATTN_STATUS_SUCCESS)
      for (size_t i = 0; i < elems; ++i) {
        const double a = pat_load(ref.k.data(), cdt, int64_t(i)), b = pat_load(emu.k.data(), cdt, int64_t(i));
        PA_FUZZ_CHECK(std::fabs(a - b) <= pat_ulp(cdt, std::max(std::fabs(a), std::fabs(b))) + angle_err,
                      "rotated K element %zu: REF %g, EMU %g (bound: one ulp + %g)", i, a, b, angle_err);
      }
  }
  for (pat_buf *b : {&k0, &v0, &kn, &vn}) pat_buf_free(b);
  return 0;
}

std::vector<pa_fuzz::Seed> pa_fuzz::seeds() {
  std::vector<Seed> s;
  Case c;  // 2 sequences with 5 and 17 cached tokens, 3 new each, pages of 4
  c.batch = 1; c.tokens = 2; c.page_size = 3; c.cache_lens[0] = 5; c.cache_lens[1] = 17;
  c.seed = 1;
  s.push_back(make_seed("plain", c));
  Case r = c;  // rotated cache with RoPE at explicit positions, bf16 cache from f32 input
  r.flags = 1 | 16; r.pos_sel = 1; r.pos_base = 100; r.cache_dt = 1; r.seed = 2;
  s.push_back(make_seed("rotated-rope-bf16", r));
  Case n = c;  // per-sequence new lengths (one zero), three sequences
  n.batch = 2; n.flags = 2; n.new_lens[0] = 0; n.new_lens[1] = 2; n.new_lens[2] = 3; n.seed = 3;
  s.push_back(make_seed("new-lens", n));
  Case sh = c;  // two sequences through the same pages: two writes to one slot are refused
  sh.flags = 4; sh.cache_lens[1] = 5; sh.seed = 4;
  s.push_back(make_seed("shared-pages-collide", sh));
  Case sh2 = c;
  sh2.flags = 8; sh2.seed = 5;  // one page short: the write past the table is refused
  s.push_back(make_seed("past-the-table", sh2));
  return s;
}
