// Self-tests of the Hopper primitives under the emulator (kernels/device/sm90.cuh): TMA + wgmma
// GEMMs against a double-precision matmul for every operand layout and swizzle the kernels use,
// mbarrier phases, named barriers, and one planted-bug kernel per check (the test passes only when
// the emulator reports the bug). The layouts themselves are proven against CuTe in
// test_sm90_cute.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "sm90_kernels.cu"

namespace {

using pa::make_gptr;
using sm90_test::Tile;

class Sm90 : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = pa_emu::options(); }
  void TearDown() override { pa_emu::options() = saved_; }
  pa_emu::Options saved_;
};

void expect_fault(const pa::launch_status &st, std::initializer_list<const char *> parts) {
  ASSERT_FALSE(st.ok) << "the planted bug was not reported";
  for (const char *p : parts)
    EXPECT_NE(std::string(st.msg).find(p), std::string::npos)
        << "message lacks '" << p << "': " << st.msg;
}

// The tensor map of a row-major [outer][cols] bf16 matrix loaded as `chunks` blocks of
// `inner` columns x all rows (3D: inner elements, rows, chunks).
pa::tma_map tile_map(const std::vector<pa::bf16> &m, int rows, int cols, int inner, int swizzle) {
  pa::tma_layout l{};
  l.rank = 3;
  l.elem_bytes = 2;
  l.dims[0] = uint64_t(inner);
  l.dims[1] = uint64_t(rows);
  l.dims[2] = uint64_t(cols / inner);
  l.strides[1] = uint64_t(cols) * 2;
  l.strides[2] = uint64_t(inner) * 2;
  l.box[0] = uint32_t(inner);
  l.box[1] = uint32_t(rows);
  l.box[2] = uint32_t(cols / inner);
  l.swizzle = swizzle;
  pa::tma_map map;
  const char *e = pa::make_tma_map(&map, make_gptr<const pa::bf16>(m.data(), m.size(), "tile"), l);
  EXPECT_EQ(e, nullptr) << e;
  return map;
}

std::vector<pa::bf16> random_bf16(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> d(-8, 8);  // small integers: every sum is exact
  std::vector<pa::bf16> v(n);
  for (auto &x : v) x = pa::bf16_from_float(float(d(rng)) * 0.25f);
  return v;
}

// D = A * B through TMA + wgmma, compared element by element with a double matmul.
template <int N, bool RS, int TransB>
void check_gemm(int swz_a, int swz_b, int ktiles) {
  const int K = 16 * ktiles;
  auto inner = [&](int swz) { return swz ? swz / 2 : 8; };
  std::vector<pa::bf16> A = random_bf16(size_t(64) * K, 1), B = random_bf16(size_t(K) * N, 2);
  std::vector<float> D(size_t(64) * N, NAN);
  Tile at{inner(swz_a), 64, K / inner(swz_a), swz_a};
  Tile bt = TransB ? Tile{inner(swz_b), K, N / inner(swz_b), swz_b}
                   : Tile{inner(swz_b), N, K / inner(swz_b), swz_b};
  pa::tma_map ta = tile_map(A, 64, K, at.inner, swz_a);
  pa::tma_map tb = TransB ? tile_map(B, K, N, bt.inner, swz_b) : tile_map(B, N, K, bt.inner, swz_b);
  auto st = pa::launch("wgmma_gemm", sm90_test::wgmma_gemm<N, RS, TransB>, dim3(1), dim3(128),
                       65536, nullptr, ta, tb, make_gptr<const pa::bf16>(A.data(), A.size(), "A"),
                       at, bt, ktiles, make_gptr(D.data(), D.size(), "D"));
  ASSERT_TRUE(st.ok) << st.msg;
  for (int m = 0; m < 64; ++m)
    for (int n = 0; n < N; ++n) {
      double ref = 0;
      for (int k = 0; k < K; ++k)
        ref += double(pa::to_float(A[size_t(m) * K + k])) *
               pa::to_float(TransB ? B[size_t(k) * N + n] : B[size_t(n) * K + k]);
      ASSERT_EQ(D[size_t(m) * N + n], float(ref)) << "D[" << m << "][" << n << "]";
    }
}

TEST_F(Sm90, wgmma_ss_k_major_128B_swizzle_n64) { check_gemm<64, false, 0>(128, 128, 4); }
TEST_F(Sm90, wgmma_ss_k_major_128B_swizzle_n128) { check_gemm<128, false, 0>(128, 128, 4); }
TEST_F(Sm90, wgmma_ss_k_major_128B_swizzle_n256) { check_gemm<256, false, 0>(128, 128, 4); }
TEST_F(Sm90, wgmma_ss_k_major_64B_swizzle_n64) { check_gemm<64, false, 0>(64, 64, 4); }
TEST_F(Sm90, wgmma_ss_k_major_32B_swizzle_n64) { check_gemm<64, false, 0>(32, 32, 2); }
TEST_F(Sm90, wgmma_ss_k_major_no_swizzle_n64) { check_gemm<64, false, 0>(0, 0, 2); }
TEST_F(Sm90, wgmma_ss_k_major_mixed_swizzle_n40) { check_gemm<40, false, 0>(128, 0, 4); }
TEST_F(Sm90, wgmma_ss_mn_major_b_128B_swizzle_n128) { check_gemm<128, false, 1>(128, 128, 4); }
TEST_F(Sm90, wgmma_ss_mn_major_b_64B_swizzle_n64) { check_gemm<64, false, 1>(32, 64, 2); }
TEST_F(Sm90, wgmma_ss_mn_major_b_32B_swizzle_n32) { check_gemm<32, false, 1>(32, 32, 2); }
TEST_F(Sm90, wgmma_ss_mn_major_b_no_swizzle_n64) { check_gemm<64, false, 1>(32, 0, 2); }
TEST_F(Sm90, wgmma_rs_k_major_b_n128) { check_gemm<128, true, 0>(128, 128, 4); }
TEST_F(Sm90, wgmma_rs_mn_major_b_n64) { check_gemm<64, true, 1>(128, 128, 4); }
TEST_F(Sm90, wgmma_rs_mn_major_b_n256) { check_gemm<256, true, 1>(128, 128, 4); }

// pa::wgmma_desc_advance (the prefill kernel builds each descriptor once and moves it per stage
// and k-block): the bits of the descriptor built from the moved start, for every 1024-byte
// aligned tile start below 227 KiB and every 16-byte step that stays below 256 KiB, K- and
// MN-major, each swizzle; planted: moving by the byte count itself (no >> 4) differs.
TEST(Sm90Desc, advance_equals_the_descriptor_of_the_moved_start) {
  int checked = 0, bad = 0, planted_same = 0;
  for (int swizzle : {0, 32, 64, 128})
    for (uint32_t base = 0; base < 227u * 1024; base += 1024)
      for (uint32_t off = 16; base + off < 256u * 1024 && off <= 64u * 1024; off += 16 * 37) {
        for (bool k_major : {true, false}) {
          auto build = [&](uint32_t at) {
            return k_major ? pa::wgmma_desc_k_major_bits(at, 128, swizzle)
                           : pa::wgmma_desc_mn_major_bits(at, 64, swizzle);
          };
          const uint64_t d = build(base);
          bad += pa::wgmma_desc_advance(d, off) != build(base + off);
          planted_same += (d + off) == build(base + off);
          ++checked;
        }
      }
  EXPECT_GT(checked, 100000);
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(planted_same, 0);
}

// S = Q K^T, P = bf16(S) from the accumulator, O = P V: the emulator rounds each wgmma's sum to fp32
// once, so the reference does the same per k-block of 16 keys.
template <int N>
void check_qk_pv() {
  std::vector<pa::bf16> Q = random_bf16(64 * 64, 7), K = random_bf16(size_t(N) * 64, 8),
                        V = random_bf16(size_t(N) * 64, 9);
  auto map = [](const std::vector<pa::bf16> &m, int rows) {
    pa::tma_layout l{};
    l.rank = 2;
    l.elem_bytes = 2;
    l.dims[0] = 64;
    l.dims[1] = uint64_t(rows);
    l.strides[1] = 128;
    l.box[0] = 64;
    l.box[1] = uint32_t(rows);
    l.swizzle = 128;
    pa::tma_map mm;
    EXPECT_EQ(pa::make_tma_map(&mm, make_gptr<const pa::bf16>(m.data(), m.size(), "m"), l), nullptr);
    return mm;
  };
  std::vector<float> O(64 * 64, NAN);
  auto st = pa::launch("qk_pv", sm90_test::qk_pv<N>, dim3(1), dim3(128), size_t(2) * (4096 + 2 * N * 64),
                       nullptr, map(Q, 64), map(K, N), map(V, N), make_gptr(O.data(), O.size(), "O"));
  ASSERT_TRUE(st.ok) << st.msg;
  for (int m = 0; m < 64; ++m) {
    std::vector<float> P(N);
    for (int n = 0; n < N; ++n) {
      double s = 0;
      for (int d = 0; d < 64; ++d) s += double(pa::to_float(Q[m * 64 + d])) * pa::to_float(K[size_t(n) * 64 + d]);
      P[n] = pa::to_float(pa::bf16_from_float(float(s)));
    }
    for (int d = 0; d < 64; ++d) {
      float acc = 0.f;
      for (int kb = 0; kb < N / 16; ++kb) {
        double sum = acc;
        for (int k = 16 * kb; k < 16 * kb + 16; ++k) sum += double(P[k]) * pa::to_float(V[size_t(k) * 64 + d]);
        acc = float(sum);
      }
      ASSERT_EQ(O[m * 64 + d], acc) << "O[" << m << "][" << d << "]";
    }
  }
}
TEST_F(Sm90, wgmma_qk_then_pv_from_accumulator_n64) { check_qk_pv<64>(); }
TEST_F(Sm90, wgmma_qk_then_pv_from_accumulator_n128) { check_qk_pv<128>(); }

// The same kernels with the ready threads run in random orders: TMA landing, mbarrier waits and the
// warpgroup collectives must not depend on thread order.
TEST_F(Sm90, wgmma_tma_mbarrier_in_shuffled_thread_orders) {
  pa_emu::options().shuffle = true;
  for (uint64_t seed : {1, 2, 3}) {
    pa_emu::options().seed = seed;
    check_gemm<64, true, 1>(128, 128, 4);
    check_qk_pv<64>();
  }
}

// ---- TMA: out-of-range elements read as zero; the image is swizzled by address -------------------
// A 2D load whose box hangs over every edge of a 50 x 70 matrix (row stride 64 elements): the
// image must hold the matrix where the box is inside, zero elsewhere, with the 16-byte chunks of
// each row permuted as the swizzle says (written out here independently of the emulator).
void check_tma_box(int swizzle, int c0, int c1) {
  const int cols = 50, rows = 70, pitch = 64, box0 = swizzle ? swizzle / 2 : 24, box1 = 40;
  std::vector<uint16_t> A(size_t(rows) * pitch);
  for (size_t i = 0; i < A.size(); ++i) A[i] = uint16_t(1 + i);
  pa::tma_layout l{};
  l.rank = 2;
  l.elem_bytes = 2;
  l.dims[0] = uint64_t(cols);
  l.dims[1] = uint64_t(rows);
  l.strides[1] = uint64_t(pitch) * 2;
  l.box[0] = uint32_t(box0);
  l.box[1] = uint32_t(box1);
  l.swizzle = swizzle;
  pa::tma_map map;
  ASSERT_EQ(pa::make_tma_map(&map, make_gptr<const uint16_t>(A.data(), A.size(), "A"), l), nullptr);
  const int bytes = box0 * box1 * 2;
  std::vector<uint32_t> img(size_t(bytes) / 4, 0xdeadbeefu);
  auto st = pa::launch("tma_copy", sm90_test::tma_copy, dim3(1), dim3(64), 16384, nullptr, map, c0,
                       c1, bytes, make_gptr(img.data(), img.size(), "img"));
  ASSERT_TRUE(st.ok) << st.msg;
  const uint16_t *got = reinterpret_cast<const uint16_t *>(img.data());
  for (int r = 0; r < box1; ++r)
    for (int c = 0; c < box0; ++c) {
      const int gr = c1 + r, gc = c0 + c;
      const uint16_t want = gr >= 0 && gr < rows && gc >= 0 && gc < cols ? A[size_t(gr) * pitch + gc] : 0;
      int o = (r * box0 + c) * 2;  // dense offset; swizzle: 16-byte chunk ^= (offset / 128) % (W/16)
      if (swizzle) o = (o & ~0x70) | ((((o >> 4) & 7) ^ ((o >> 7) & (swizzle / 16 - 1))) << 4);
      ASSERT_EQ(got[o / 2], want) << "box element (" << r << ", " << c << "), swizzle " << swizzle;
    }
}
TEST_F(Sm90, tma_box_over_the_edges_zero_fill_no_swizzle) { check_tma_box(0, -5, -3); }
TEST_F(Sm90, tma_box_over_the_edges_zero_fill_32B) { check_tma_box(32, 40, 45); }
TEST_F(Sm90, tma_box_over_the_edges_zero_fill_64B) { check_tma_box(64, -20, 50); }
TEST_F(Sm90, tma_box_over_the_edges_zero_fill_128B) { check_tma_box(128, 10, -30); }

// TMA store: A (40 x 64) -> shared (64 x 16 box at (0, 0)) -> out (30 x 50, row pitch 64) at
// (c0, c1) = (-8, 20): only the part of the box inside out is written.
pa::launch_status run_tma_store(int mode, std::vector<uint16_t> &out) {
  std::vector<uint16_t> A(40 * 64);
  for (size_t i = 0; i < A.size(); ++i) A[i] = uint16_t(7 + i);
  out.assign(30 * 64, 0xbeef);
  const int swz = mode == 0 ? 128 : 0;
  auto map = [&](std::vector<uint16_t> &m, int rows, int cols) {
    pa::tma_layout l{};
    l.rank = 2;
    l.elem_bytes = 2;
    l.dims[0] = uint64_t(cols);
    l.dims[1] = uint64_t(rows);
    l.strides[1] = 128;
    l.box[0] = 64;
    l.box[1] = 16;
    l.swizzle = swz;
    pa::tma_map mm;
    EXPECT_EQ(pa::make_tma_map(&mm, make_gptr<const uint16_t>(m.data(), m.size(), "m"), l), nullptr);
    return mm;
  };
  return pa::launch("tma_store_box", sm90_test::tma_store_box, dim3(1), dim3(64), 4096, nullptr,
                    map(A, 40, 64), map(out, 30, 50),
                    make_gptr<const uint16_t>(A.data(), A.size(), "raw"), -8, 20, mode);
}
void check_store(int mode) {
  std::vector<uint16_t> out;
  auto st = run_tma_store(mode, out);
  ASSERT_TRUE(st.ok) << st.msg;
  for (int r = 0; r < 30; ++r)
    for (int c = 0; c < 64; ++c) {
      const bool inside = r >= 20 && c < 50 && c + 8 < 64;
      const uint16_t want = inside ? uint16_t(7 + (r - 20) * 64 + c + 8) : uint16_t(0xbeef);
      ASSERT_EQ(out[size_t(r) * 64 + c], want) << "out[" << r << "][" << c << "], mode " << mode;
    }
}
TEST_F(Sm90, tma_store_of_a_swizzled_tile_clipped_to_the_tensor) { check_store(0); }
TEST_F(Sm90, tma_store_of_a_tile_threads_wrote) { check_store(1); }
TEST_F(Sm90, bug_tma_store_without_fence_proxy_async) {
  std::vector<uint16_t> out;
  expect_fault(run_tma_store(2, out), {"TMA store at", "no fence_proxy_async after the write"});
}
TEST_F(Sm90, bug_tma_store_source_overwritten_before_wait) {
  std::vector<uint16_t> out;
  expect_fault(run_tma_store(3, out),
               {"shared 2-byte write", "a TMA store issued at", "tma_store_wait first"});
}

TEST_F(Sm90, tma_layout_rules_are_checked) {
  std::vector<pa::bf16> A(4096);
  pa::tma_layout l{};
  l.rank = 2;
  l.elem_bytes = 2;
  l.dims[0] = 64;
  l.dims[1] = 64;
  l.strides[1] = 128;
  l.box[0] = 32;  // 64 bytes with a 128-byte swizzle
  l.box[1] = 8;
  l.swizzle = 128;
  pa::tma_map m;
  const char *e = pa::make_tma_map(&m, make_gptr<const pa::bf16>(A.data(), A.size(), "A"), l);
  ASSERT_NE(e, nullptr);
  EXPECT_NE(std::string(e).find("swizzle width"), std::string::npos) << e;
  l.box[0] = 64;
  l.strides[1] = 100;
  e = pa::make_tma_map(&m, make_gptr<const pa::bf16>(A.data(), A.size(), "A"), l);
  ASSERT_NE(e, nullptr);
  EXPECT_NE(std::string(e).find("multiples of 16"), std::string::npos) << e;
}

// ---- mbarrier phases, named barriers, setmaxnreg, elect -------------------------------------------
TEST_F(Sm90, mbarrier_ring_phases) {
  // racecheck on: the slots are handed from warp to warp through the mbarriers only
  for (bool shuffle : {false, true}) {
    pa_emu::options().shuffle = shuffle;
    const int rounds = 9;
    std::vector<float> in(32 * rounds), out(rounds, NAN);
    for (size_t i = 0; i < in.size(); ++i) in[i] = float(i % 13);
    auto st = pa::launch("mbarrier_ring", sm90_test::mbarrier_ring, dim3(2), dim3(64), 0, nullptr,
                         make_gptr<const float>(in.data(), in.size(), "in"), rounds,
                         make_gptr(out.data(), out.size(), "out"), 0);
    ASSERT_TRUE(st.ok) << st.msg;
    for (int r = 0; r < rounds; ++r) {
      float ref = 0;
      for (int l = 0; l < 32; ++l) ref += in[size_t(r) * 32 + l];
      EXPECT_EQ(out[r], ref) << "round " << r << (shuffle ? " (shuffled)" : "");
    }
    // planted: a slot refilled without waiting on its empty barrier
    expect_fault(pa::launch("mbarrier_ring", sm90_test::mbarrier_ring, dim3(1), dim3(64), 0,
                            nullptr, make_gptr<const float>(in.data(), in.size(), "in"), rounds,
                            make_gptr(out.data(), out.size(), "out"), 1),
                 {"shared-memory race", "'slot'", "nor a named barrier or mbarrier"});
  }
}

// Partial named barriers order exactly their participants (sm90_kernels.cu, partial_barriers).
pa::launch_status run_partial(int mode, std::vector<float> &out) {
  out.assign(256, NAN);
  return pa::launch("partial_barriers", sm90_test::partial_barriers, dim3(1), dim3(256), 0,
                    nullptr, mode, make_gptr(out.data(), out.size(), "out"));
}
TEST_F(Sm90, racecheck_follows_partial_named_barriers) {
  for (bool shuffle : {false, true})
    for (uint64_t seed : {1, 2, 3}) {
      pa_emu::options().shuffle = shuffle;
      pa_emu::options().seed = seed;
      std::vector<float> out;
      auto st = run_partial(sm90_test::kPartialOk, out);
      ASSERT_TRUE(st.ok) << st.msg;
      const int r = sm90_test::kPartialRounds - 1;
      for (int tid = 0; tid < 256; ++tid) {
        const int wg = tid / 128;  // the words of the last round: 1000 r + 128 wg + i, i < 128
        const float want = float(128 * (1000 * r + 128 * wg) + 127 * 64) + (wg ? 42.f : 0.f);
        EXPECT_EQ(out[tid], want) << "thread " << tid << (shuffle ? " (shuffled)" : "");
      }
    }
}
TEST_F(Sm90, racecheck_reports_what_partial_barriers_do_not_order) {
  struct Planted {
    int mode;
    const char *what;
  } planted[] = {{sm90_test::kPartialNoBarrier, "a round without its barrier"},
                 {sm90_test::kPartialSingleBuffer, "a write after reads with no barrier between"},
                 {sm90_test::kPartialHalves, "a barrier of the other half"},
                 {sm90_test::kPartialWriteAfterArrive, "a write after bar.arrive"},
                 {sm90_test::kPartialReadersOfOtherHalf, "a write after reads of the other half"}};
  for (const Planted &p : planted)
    for (bool shuffle : {false, true}) {
      SCOPED_TRACE(std::string(p.what) + (shuffle ? " (shuffled)" : ""));
      pa_emu::options().shuffle = shuffle;
      std::vector<float> out;
      auto st = run_partial(p.mode, out);
      expect_fault(st, {"shared-memory race", "nor a named barrier or mbarrier"});
      if (p.mode == sm90_test::kPartialReadersOfOtherHalf && !shuffle)  // the emulator's order
        expect_fault(st, {"writes a byte read by several other threads", "'buf'"});
      else if (p.mode == sm90_test::kPartialWriteAfterArrive)
        expect_fault(st, {"reads a byte written by thread (5,0,0)", "'handed'"});
      else
        expect_fault(st, {"'buf'"});
    }
}

TEST_F(Sm90, named_barrier_setmaxnreg_elect) {
  std::vector<int> out(256, -1);
  auto st = pa::launch("named_barriers", sm90_test::named_barriers, dim3(1), dim3(256), 0, nullptr,
                       make_gptr(out.data(), out.size(), "out"));
  ASSERT_TRUE(st.ok) << st.msg;
  for (int t = 0; t < 128; ++t) EXPECT_EQ(out[t], t % 32 == 0 ? 1 : 0) << "elect, thread " << t;
  for (int t = 128; t < 256; ++t) EXPECT_EQ(out[t], 42) << "value across barrier 1, thread " << t;
}

// ---- planted bugs ---------------------------------------------------------------------------------
pa::launch_status run_bug(int bug) {
  static std::vector<pa::bf16> A = random_bf16(4096, 5), B = random_bf16(4096, 6);
  pa::tma_map ta = tile_map(A, 64, 64, 64, 128), tb = tile_map(B, 64, 64, 64, 128);
  std::vector<float> out(128, NAN);
  // rank 3 maps with one chunk: the kernel loads with tma_load_2d, so make rank-2 maps instead
  pa::tma_layout l{};
  l.rank = 2;
  l.elem_bytes = 2;
  l.dims[0] = 64;
  l.dims[1] = 64;
  l.strides[1] = 128;
  l.box[0] = 64;
  l.box[1] = 64;
  l.swizzle = 128;
  EXPECT_EQ(pa::make_tma_map(&ta, make_gptr<const pa::bf16>(A.data(), A.size(), "A"), l), nullptr);
  EXPECT_EQ(pa::make_tma_map(&tb, make_gptr<const pa::bf16>(B.data(), B.size(), "B"), l), nullptr);
  return pa::launch("sm90_bug", sm90_test::sm90_bug, dim3(1), dim3(128), 16384, nullptr, ta, tb,
                    bug, make_gptr(out.data(), out.size(), "out"));
}

TEST_F(Sm90, bug_free_variants_pass) {
  for (int bug : {sm90_test::kNone, sm90_test::kProxyFenceKept}) {
    auto st = run_bug(bug);
    EXPECT_TRUE(st.ok) << "mode " << bug << ": " << st.msg;
  }
}
TEST_F(Sm90, bug_accumulator_read_before_wait) {
  expect_fault(run_bug(sm90_test::kAccReadBeforeWait),
               {"reads accumulator element 3 while the wgmma issued at", "sm90_kernels.cu:",
                "is in flight", "wgmma_wait"});
}
TEST_F(Sm90, bug_tma_destination_read_before_mbarrier_wait) {
  expect_fault(run_bug(sm90_test::kTmaDestReadEarly),
               {"thread (3,0,0)", "shared 2-byte read", "a TMA load issued at", "still writes"});
}
TEST_F(Sm90, bug_shared_write_while_wgmma_reads) {
  expect_fault(run_bug(sm90_test::kSmemWriteDuringWgmma),
               {"thread (70,0,0)", "a wgmma issued at", "still reads these bytes"});
}
TEST_F(Sm90, bug_a_fragment_written_while_wgmma_reads) {
  expect_fault(run_bug(sm90_test::kAFragWriteDuringWgmma), {"writes A fragment element 1"});
}
TEST_F(Sm90, bug_accumulator_out_of_scope_before_wait) {
  expect_fault(run_bug(sm90_test::kFragOutOfScope),
               {"a wgmma fragment goes out of scope while the wgmma issued at", "wgmma_wait first"});
}
TEST_F(Sm90, bug_expect_tx_too_small) {
  expect_fault(run_bug(sm90_test::kExpectTxTooSmall),
               {"after the phase it was issued in (0) completed", "expect_tx announced fewer"});
}
TEST_F(Sm90, bug_expect_tx_too_large_deadlocks) {
  expect_fault(run_bug(sm90_test::kExpectTxTooLarge),
               {"deadlock", "an mbarrier wait", "expect_tx announced 20480 bytes",
                "TMA loads delivered 16384"});
}
TEST_F(Sm90, bug_parity_wait_that_never_completes) {
  expect_fault(run_bug(sm90_test::kParityNeverCompletes),
               {"deadlock", "an mbarrier wait", "'bar' + 8", "1 of 1 arrivals missing"});
}
TEST_F(Sm90, bug_descriptor_swizzle_does_not_match_tma) {
  expect_fault(run_bug(sm90_test::kSwizzleMismatch),
               {"the A descriptor says no swizzle", "used 128-byte swizzle"});
}
TEST_F(Sm90, bug_missing_wgmma_fence) {
  expect_fault(run_bug(sm90_test::kMissingWgmmaFence), {"no wgmma_fence before the first wgmma"});
}
TEST_F(Sm90, bug_accumulator_written_after_wgmma_fence) {
  expect_fault(run_bug(sm90_test::kAccTouchedAfterFence),
               {"the accumulator was accessed after the last wgmma_fence"});
}
TEST_F(Sm90, bug_missing_fence_proxy_async) {
  expect_fault(run_bug(sm90_test::kMissingProxyFence),
               {"A operand at", "no fence_proxy_async after the write"});
}
TEST_F(Sm90, bug_generic_write_not_ordered_before_wgmma) {
  expect_fault(run_bug(sm90_test::kWriteNotOrdered),
               {"A operand at", "written by thread (5,0,0)", "no barrier orders that write"});
}
TEST_F(Sm90, bug_generic_access_to_mbarrier) {
  expect_fault(run_bug(sm90_test::kMbarrierGenericAccess),
               {"thread (5,0,0)", "touches an mbarrier object"});
}
TEST_F(Sm90, bug_named_barrier_thread_count_mismatch) {
  expect_fault(run_bug(sm90_test::kNamedBarrierCountMismatch),
               {"named barrier 1", "expects 96 threads", "expecting 128"});
}
TEST_F(Sm90, bug_setmaxnreg_not_warpgroup_uniform) {
  expect_fault(run_bug(sm90_test::kSetmaxnregDivergent), {"warpgroup divergence", "setmaxnreg"});
}

}  // namespace
