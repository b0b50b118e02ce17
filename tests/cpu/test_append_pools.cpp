// Cache append validation on REF (issue 13 item 3): K and V pools in one buffer, interleaved per
// page, per slot or per head, are accepted and give the same cache and the same decode as
// separate pools; pools that share an element are rejected (the test decides "share" by brute
// force over the element offsets); two writes to one (page, slot) are rejected, however they
// arise; a batch-64 x 512-token append is accepted and writes exactly its tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "pa_test_shim.h"
#include "posattn.h"

namespace {

struct Ctx {
  posattn_context *ctx = nullptr;
  Ctx() { EXPECT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, &ctx), POSATTN_STATUS_SUCCESS); }
  ~Ctx() { posattn_context_destroy(ctx); }
};

bool contains(const std::string &s, const char *part) { return s.find(part) != std::string::npos; }

// One buffer of f32 elements holding both pools at element offsets k_at and v_at.
struct Pools {
  std::vector<float> buf;
  posattn_kv_cache cache{};
  Pools(int64_t elements, int64_t k_at, int64_t v_at, int pages, int page_size, int heads, int d,
        int64_t s_page, int64_t s_slot, int64_t s_head)
      : buf(size_t(elements), -99.f) {
    posattn_kv_cache_init(&cache, buf.data() + k_at, buf.data() + v_at, POSATTN_DTYPE_F32, pages,
                          page_size, heads, d);
    cache.stride_page = s_page;
    cache.stride_slot = s_slot;
    cache.stride_head = s_head;
  }
  int64_t off(int p, int s, int h, int f) const {
    return p * cache.stride_page + s * cache.stride_slot + h * cache.stride_head + f;
  }
  float &k(int p, int s, int h, int f) { return static_cast<float *>(cache.k_pages)[off(p, s, h, f)]; }
  float &v(int p, int s, int h, int f) { return static_cast<float *>(cache.v_pages)[off(p, s, h, f)]; }
};

posattn_status append(posattn_context *ctx, const posattn_cache_append_desc &a,
                      const posattn_kv_cache &cache, std::vector<float> &k0,
                      std::vector<float> &v0, int heads, int d) {
  posattn_tensor tk, tv;
  posattn_tensor_init_contiguous(&tk, k0.data(), POSATTN_DTYPE_F32, a.num_tokens, heads, d);
  posattn_tensor_init_contiguous(&tv, v0.data(), POSATTN_DTYPE_F32, a.num_tokens, heads, d);
  size_t ws = 0;
  posattn_status st = posattn_cache_append_workspace_size(ctx, &a, &cache, POSATTN_DTYPE_F32, &ws);
  if (st != POSATTN_STATUS_SUCCESS) return st;
  pat_buf w{};
  pat_buf_alloc(&w, ws ? ws : 1);
  st = posattn_cache_append(ctx, &a, &cache, &tk, &tv, ws ? w.data : nullptr, ws);
  EXPECT_TRUE(pat_buf_guards_ok(&w));
  pat_buf_free(&w);
  return st;
}

// ---- interleaved pools ------------------------------------------------------------------------

enum class Layout { Separate, PerPage, PerSlot, PerHead, PerPageVFirst };

const char *layout_name(Layout l) {
  switch (l) {
    case Layout::Separate: return "separate";
    case Layout::PerPage: return "per_page";
    case Layout::PerSlot: return "per_slot";
    case Layout::PerHead: return "per_head";
    case Layout::PerPageVFirst: return "per_page_v_first";
  }
  return "?";
}

constexpr int kPages = 9, kPs = 4, kH = 2, kD = 6, kB = 3, kHq = 4, kN = 5;

// The pools of `l` for the shapes above; K and V values at (p, s, h, f) are set from the same
// random stream for every layout, so that all layouts hold the same cache.
Pools make_pools(Layout l) {
  const int64_t E = int64_t(kPages) * kPs * kH * kD, HD = int64_t(kH) * kD, D = kD;
  switch (l) {
    case Layout::Separate:  // [pages, ps, h, d] twice, V after K
      return Pools(2 * E, 0, E, kPages, kPs, kH, kD, kPs * HD, HD, D);
    case Layout::PerPage:  // FlashInfer: [pages, 2, ps, h, d]
      return Pools(2 * E, 0, kPs * HD, kPages, kPs, kH, kD, 2 * kPs * HD, HD, D);
    case Layout::PerSlot:  // [pages, ps, 2, h, d]
      return Pools(2 * E, 0, HD, kPages, kPs, kH, kD, 2 * kPs * HD, 2 * HD, D);
    case Layout::PerHead:  // [pages, ps, h, 2, d]
      return Pools(2 * E, 0, D, kPages, kPs, kH, kD, 2 * kPs * HD, 2 * HD, 2 * D);
    case Layout::PerPageVFirst:  // [pages, 2, ps, h, d] with V in the first half
      return Pools(2 * E, kPs * HD, 0, kPages, kPs, kH, kD, 2 * kPs * HD, HD, D);
  }
  return Pools(1, 0, 0, 1, 1, 1, 2, 2, 2, 2);
}

void fill_same(Pools &P, uint64_t seed) {
  pat_rng r;
  pat_rng_seed(&r, seed);
  for (int p = 0; p < kPages; ++p)
    for (int s = 0; s < kPs; ++s)
      for (int h = 0; h < kH; ++h)
        for (int f = 0; f < kD; ++f) {
          P.k(p, s, h, f) = float(pat_rng_uniform(&r, -1, 1));
          P.v(p, s, h, f) = float(pat_rng_uniform(&r, -1, 1));
        }
}

struct Decoded {
  std::vector<float> out, lse;
};

Decoded decode(posattn_context *ctx, const posattn_kv_cache &cache, const std::vector<int32_t> &lens,
               const std::vector<int32_t> &bt, int mpps, std::vector<float> &q) {
  posattn_decode_desc d;
  posattn_decode_desc_init(&d);
  d.batch = kB;
  d.q_heads = kHq;
  d.head_dim = kD;
  d.num_q_tokens = 1;
  d.cache_lens = lens.data();
  d.block_table = bt.data();
  d.max_pages_per_seq = mpps;
  d.pe.kind = POSATTN_PE_ROPE;
  Decoded R;
  R.out.assign(size_t(kB) * kHq * kD, 0.f);
  R.lse.assign(size_t(kB) * kHq, 0.f);
  posattn_tensor tq, to;
  posattn_tensor_init_contiguous(&tq, q.data(), POSATTN_DTYPE_F32, 1, kHq, kD);
  posattn_tensor_init_contiguous(&to, R.out.data(), POSATTN_DTYPE_F32, 1, kHq, kD);
  size_t ws = 0;
  EXPECT_EQ(posattn_decode_workspace_size(ctx, &d, &cache, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32, &ws),
            POSATTN_STATUS_SUCCESS);
  std::vector<unsigned char> w(ws + 256);
  void *wp = w.data() + (256 - reinterpret_cast<uintptr_t>(w.data()) % 256) % 256;
  EXPECT_EQ(posattn_decode(ctx, &d, &cache, &tq, &to, R.lse.data(), ws ? wp : nullptr, ws),
            POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(ctx);
  return R;
}

class AppendInterleaved : public ::testing::TestWithParam<Layout> {};

TEST_P(AppendInterleaved, SameCacheAndDecodeAsSeparatePools) {
  Ctx C;
  Pools ref = make_pools(Layout::Separate), P = make_pools(GetParam());
  fill_same(ref, 7);
  fill_same(P, 7);
  const std::vector<float> untouched_buf = P.buf;
  // three sequences, pages in shuffled order, one mid-page start
  const int mpps = 3;
  const std::vector<int32_t> bt = {4, 0, 7, 2, 8, 5, 1, 6, 3};
  const std::vector<int32_t> before = {3, 0, 6}, news = {5, 2, 4};
  std::vector<int32_t> after(kB);
  for (int b = 0; b < kB; ++b) after[size_t(b)] = before[size_t(b)] + news[size_t(b)];
  posattn_cache_append_desc a;
  posattn_cache_append_desc_init(&a);
  a.batch = kB;
  a.num_tokens = kN;
  a.new_lens = news.data();
  a.cache_lens = before.data();
  a.block_table = bt.data();
  a.max_pages_per_seq = mpps;
  pat_rng r;
  pat_rng_seed(&r, 11);
  std::vector<float> k0(size_t(kB) * kN * kH * kD), v0(k0.size()), q(size_t(kB) * kHq * kD);
  for (float &x : k0) x = float(pat_rng_uniform(&r, -2, 2));
  for (float &x : v0) x = float(pat_rng_uniform(&r, -2, 2));
  for (float &x : q) x = float(pat_rng_uniform(&r, -1, 1));
  ASSERT_EQ(append(C.ctx, a, ref.cache, k0, v0, kH, kD), POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(C.ctx);
  ASSERT_EQ(append(C.ctx, a, P.cache, k0, v0, kH, kD), POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(C.ctx);

  // every element of both pools equals the separate layout's, and the written ones are k0/v0
  int written = 0;
  for (int p = 0; p < kPages; ++p)
    for (int s = 0; s < kPs; ++s)
      for (int h = 0; h < kH; ++h)
        for (int f = 0; f < kD; ++f) {
          ASSERT_EQ(P.k(p, s, h, f), ref.k(p, s, h, f)) << "K page " << p << " slot " << s;
          ASSERT_EQ(P.v(p, s, h, f), ref.v(p, s, h, f)) << "V page " << p << " slot " << s;
        }
  for (int b = 0; b < kB; ++b)
    for (int t = 0; t < news[size_t(b)]; ++t) {
      const int j = before[size_t(b)] + t, page = bt[size_t(b * mpps + j / kPs)];
      for (int h = 0; h < kH; ++h)
        for (int f = 0; f < kD; ++f) {
          const size_t i = ((size_t(b) * kN + t) * kH + h) * kD + f;
          EXPECT_EQ(P.k(page, j % kPs, h, f), k0[i]);
          EXPECT_EQ(P.v(page, j % kPs, h, f), v0[i]);
          ++written;
        }
    }
  EXPECT_EQ(written, (5 + 2 + 4) * kH * kD);
  // outside the two pools (the buffer's unused tail of the separate layout: none here) nothing
  // changed, and the number of changed elements is exactly the K and V writes
  int changed = 0;
  for (size_t i = 0; i < P.buf.size(); ++i) changed += P.buf[i] != untouched_buf[i];
  EXPECT_LE(changed, 2 * written);

  const Decoded x = decode(C.ctx, ref.cache, after, bt, mpps, q);
  const Decoded y = decode(C.ctx, P.cache, after, bt, mpps, q);
  EXPECT_EQ(x.out, y.out);
  EXPECT_EQ(x.lse, y.lse);
}

INSTANTIATE_TEST_SUITE_P(Layouts, AppendInterleaved,
                         ::testing::Values(Layout::PerPage, Layout::PerSlot, Layout::PerHead,
                                           Layout::PerPageVFirst),
                         [](const ::testing::TestParamInfo<Layout> &i) {
                           return std::string(layout_name(i.param));
                         });

// ---- pools that share elements ------------------------------------------------------------------

struct Shift {
  const char *name;
  int64_t v_minus_k;  // elements, for the contiguous separate layout of the shapes above
  bool shares;
};

class AppendPoolShift : public ::testing::TestWithParam<Shift> {};

TEST_P(AppendPoolShift, RejectedExactlyWhenAnElementIsShared) {
  Ctx C;
  const Shift sh = GetParam();
  const int64_t E = int64_t(kPages) * kPs * kH * kD, HD = int64_t(kH) * kD;
  const int64_t k_at = sh.v_minus_k < 0 ? -sh.v_minus_k : 0;
  Pools P(k_at + std::max<int64_t>(sh.v_minus_k, 0) + E + 8, k_at, k_at + sh.v_minus_k, kPages,
          kPs, kH, kD, kPs * HD, HD, kD);
  const std::vector<float> before = P.buf;
  posattn_cache_append_desc a;
  posattn_cache_append_desc_init(&a);
  const std::vector<int32_t> bt = {0, 1}, lens = {0};
  a.batch = 1;
  a.num_tokens = 2;
  a.cache_lens = lens.data();
  a.block_table = bt.data();
  a.max_pages_per_seq = 2;
  std::vector<float> k0(size_t(2) * kH * kD, 0.25f), v0(k0.size(), 0.5f);
  const posattn_status st = append(C.ctx, a, P.cache, k0, v0, kH, kD);
  const std::string m = posattn_context_last_message(C.ctx);
  if (sh.shares) {
    EXPECT_EQ(st, POSATTN_STATUS_INVALID_ARGUMENT) << m;
    EXPECT_TRUE(contains(m, "cache->k_pages and cache->v_pages share elements")) << m;
    EXPECT_TRUE(contains(m, "disjoint element by element")) << m;
    EXPECT_EQ(P.buf, before);  // nothing written
  } else {
    EXPECT_EQ(st, POSATTN_STATUS_SUCCESS) << m;
  }
}

constexpr int64_t kE = int64_t(kPages) * kPs * kH * kD, kSlot = int64_t(kH) * kD,
                  kPage = kPs * kSlot;
const Shift kShifts[] = {
    {"same_base", 0, true},
    {"one_element", 1, true},
    {"minus_one_element", -1, true},
    {"one_head", kD, true},
    {"one_slot", kSlot, true},
    {"one_page", kPage, true},
    {"last_page_shared", kE - kPage, true},
    {"last_element_shared", kE - 1, true},
    {"adjacent_after", kE, false},
    {"adjacent_before", -kE, false},
    {"gap_after", kE + 3, false},
};

INSTANTIATE_TEST_SUITE_P(Shifts, AppendPoolShift, ::testing::ValuesIn(kShifts),
                         [](const ::testing::TestParamInfo<Shift> &i) {
                           return std::string(i.param.name);
                         });

// Random small layouts with gaps between axes (strides larger than needed, any order of the
// slot / head / page axes) and random base distances: the library rejects exactly the pools whose
// element offsets meet, decided here by brute force over the two offset sets.
TEST(AppendPoolOverlap, MatchesBruteForceOnRandomLayouts) {
  Ctx C;
  pat_rng r;
  pat_rng_seed(&r, 2024);
  int shared = 0, apart = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const int pages = pat_rng_int(&r, 1, 4), ps = pat_rng_int(&r, 1, 3), heads = pat_rng_int(&r, 1, 3);
    const int d = 2 * pat_rng_int(&r, 1, 2);
    // nest the three caller axes in a random order, each stride >= the span below plus a gap
    int order[3] = {0, 1, 2};  // 0 head, 1 slot, 2 page
    for (int i = 2; i > 0; --i) std::swap(order[i], order[pat_rng_int(&r, 0, i)]);
    const int ext[3] = {heads, ps, pages};
    int64_t stride[3] = {0, 0, 0}, span = d;
    for (int i = 0; i < 3; ++i) {
      stride[order[i]] = span + pat_rng_int(&r, 0, 3);
      span = stride[order[i]] * (ext[order[i]] - 1) + span;
    }
    std::set<int64_t> offs;
    for (int p = 0; p < pages; ++p)
      for (int s = 0; s < ps; ++s)
        for (int h = 0; h < heads; ++h)
          for (int f = 0; f < d; ++f) offs.insert(p * stride[2] + s * stride[1] + h * stride[0] + f);
    const int64_t delta = pat_rng_int(&r, -int32_t(span) - 2, int32_t(span) + 2);
    bool expect_shared = false;
    for (int64_t o : offs) expect_shared = expect_shared || offs.count(o + delta) > 0;
    (expect_shared ? shared : apart)++;

    const int64_t k_at = delta < 0 ? -delta : 0;
    Pools P(k_at + std::max<int64_t>(delta, 0) + span + 1, k_at, k_at + delta, pages, ps, heads, d,
            stride[2], stride[1], stride[0]);
    posattn_cache_append_desc a;
    posattn_cache_append_desc_init(&a);
    const std::vector<int32_t> bt = {0}, lens = {0};
    a.batch = 1;
    a.num_tokens = 1;
    a.cache_lens = lens.data();
    a.block_table = bt.data();
    a.max_pages_per_seq = 1;
    std::vector<float> k0(size_t(heads) * d, 1.f), v0(k0.size(), 2.f);
    const posattn_status st = append(C.ctx, a, P.cache, k0, v0, heads, d);
    ASSERT_EQ(st, expect_shared ? POSATTN_STATUS_INVALID_ARGUMENT : POSATTN_STATUS_SUCCESS)
        << "trial " << trial << ": pages " << pages << " slots " << ps << " heads " << heads
        << " d " << d << ", strides page " << stride[2] << " slot " << stride[1] << " head "
        << stride[0] << ", v - k = " << delta << ": " << posattn_context_last_message(C.ctx);
  }
  // both outcomes were exercised many times
  EXPECT_GT(shared, 50);
  EXPECT_GT(apart, 50);
}

// ---- two writes to one (page, slot) -------------------------------------------------------------

struct TwoWriters {
  const char *name;
  std::vector<int32_t> bt;     // [batch][2]
  std::vector<int32_t> lens;   // cache_lens
  std::vector<int32_t> news;   // new_lens
  bool rejected;
};

class AppendDuplicateSlot : public ::testing::TestWithParam<TwoWriters> {};

TEST_P(AppendDuplicateSlot, RejectedBeforeAnyWrite) {
  Ctx C;
  const TwoWriters &tw = GetParam();
  Pools P = make_pools(Layout::Separate);
  fill_same(P, 3);
  const std::vector<float> before = P.buf;
  posattn_cache_append_desc a;
  posattn_cache_append_desc_init(&a);
  a.batch = int32_t(tw.lens.size());
  a.num_tokens = 8;
  a.new_lens = tw.news.data();
  a.cache_lens = tw.lens.data();
  a.block_table = tw.bt.data();
  a.max_pages_per_seq = 2;
  std::vector<float> k0(size_t(a.batch) * 8 * kH * kD, 0.5f), v0(k0);
  const posattn_status st = append(C.ctx, a, P.cache, k0, v0, kH, kD);
  const std::string m = posattn_context_last_message(C.ctx);
  if (tw.rejected) {
    EXPECT_EQ(st, POSATTN_STATUS_INVALID_ARGUMENT) << m;
    EXPECT_TRUE(contains(m, "is written twice")) << m;
    EXPECT_EQ(P.buf, before);
  } else {
    EXPECT_EQ(st, POSATTN_STATUS_SUCCESS) << m;
  }
}

// page_size 4; rows of two pages
const TwoWriters kWriters[] = {
    {"shared_page_same_slots", {5, 6, 5, 7}, {0, 0}, {2, 2}, true},
    {"shared_page_one_common_slot", {5, 6, 5, 7}, {0, 2}, {3, 2}, true},
    {"shared_page_disjoint_halves", {5, 6, 5, 7}, {0, 2}, {2, 2}, false},
    {"row_lists_a_page_twice", {3, 3}, {0}, {6}, true},  // slots 0..3, then 0..1 again
    {"row_lists_a_page_twice_disjoint_slots", {3, 3}, {2}, {4}, false},  // slots 2..3, 0..1
    {"third_sequence_hits_the_first", {1, 2, 3, 4, 2, 5}, {0, 0, 0}, {6, 4, 2}, true},
    {"empty_writer_is_not_read", {5, 6, -1, -1}, {0, 0}, {6, 0}, false},
    {"distinct_pages", {0, 1, 2, 3}, {1, 0}, {7, 8}, false},
};

INSTANTIATE_TEST_SUITE_P(Cases, AppendDuplicateSlot, ::testing::ValuesIn(kWriters),
                         [](const ::testing::TestParamInfo<TwoWriters> &i) {
                           return std::string(i.param.name);
                         });

// ---- a serving-sized append ---------------------------------------------------------------------

TEST(AppendLargeBatch, Batch64x512TokensPage16IsAcceptedAndExact) {
  Ctx C;
  const int B = 64, N = 512, PS = 16, MPPS = 34, H = 1, D = 2;
  const int pages = B * MPPS;
  std::vector<int32_t> bt(size_t(B) * MPPS), lens(B);
  std::vector<int32_t> ids(static_cast<size_t>(pages));
  for (int i = 0; i < pages; ++i) ids[size_t(i)] = i;
  pat_rng r;
  pat_rng_seed(&r, 99);
  for (int i = pages - 1; i > 0; --i) std::swap(ids[size_t(i)], ids[size_t(pat_rng_int(&r, 0, i))]);
  for (size_t i = 0; i < bt.size(); ++i) bt[i] = ids[i];
  for (int b = 0; b < B; ++b) lens[size_t(b)] = pat_rng_int(&r, 0, 2 * PS);
  const int64_t E = int64_t(pages) * PS * H * D;
  Pools P(2 * E, 0, E, pages, PS, H, D, PS * H * D, H * D, D);
  posattn_cache_append_desc a;
  posattn_cache_append_desc_init(&a);
  a.batch = B;
  a.num_tokens = N;
  a.cache_lens = lens.data();
  a.block_table = bt.data();
  a.max_pages_per_seq = MPPS;
  std::vector<float> k0(size_t(B) * N * H * D), v0(k0.size());
  for (size_t i = 0; i < k0.size(); ++i) {
    k0[i] = float(i % 1000) + 0.5f;
    v0[i] = -float(i % 777) - 0.25f;
  }
  ASSERT_EQ(append(C.ctx, a, P.cache, k0, v0, H, D), POSATTN_STATUS_SUCCESS)
      << posattn_context_last_message(C.ctx);
  int64_t written = 0;
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < N; ++t) {
      const int j = lens[size_t(b)] + t, page = bt[size_t(b) * MPPS + j / PS];
      for (int f = 0; f < D; ++f) {
        const size_t i = (size_t(b) * N + t) * D + f;
        ASSERT_EQ(P.k(page, j % PS, 0, f), k0[i]) << "b " << b << " t " << t;
        ASSERT_EQ(P.v(page, j % PS, 0, f), v0[i]) << "b " << b << " t " << t;
        written += 2;
      }
    }
  int64_t changed = 0;
  for (float x : P.buf) changed += x != -99.f;
  EXPECT_EQ(changed, written);  // nothing else was touched
}

}  // namespace
