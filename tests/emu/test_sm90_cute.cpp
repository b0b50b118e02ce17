// The emulator's tensor-core semantics against CuTe (CUTLASS's layout library, from the PyPI
// package nvidia-cutlass; tests/emu/cute_tables.cpp turns its definitions into tables): the
// fragment layouts of mma.sync m16n8k16 and wgmma m64nNk16 (A from registers, C), ldmatrix x1/x2/x4
// (+trans), the 32/64/128-byte swizzle functions, the shared-memory operand layouts a wgmma
// descriptor addresses, and make_gmma_desc's bits for the tile layouts posattn's descriptors
// (pa::wgmma_desc_{k,mn}_major) describe. Fragments and shared-memory images are built from
// CuTe's tables, the emulator computes, and the result must equal the exact matmul element by
// element. Planted wrong variants (a swapped swizzle bit, transposed or permuted fragments, a
// transposed descriptor) must fail the same comparison.
//
// Without the CuTe headers (POSATTN_HAVE_CUTE 0) every test is skipped with the reason.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "emu_kernels.cu"
#include "sm90_kernels.cu"

#if POSATTN_HAVE_CUTE
#include "cute_tables.h"
#endif

namespace cute_check {

// ---- kernels: fragments in, fragments out -------------------------------------------------------
// mma.sync with each lane's registers given: a[lane*4 + i], b[lane*2 + i]; d[lane*4 + i] out.
__global__ void mma_regs(pa::gptr<const uint32_t> a, pa::gptr<const uint32_t> b,
                         pa::gptr<float> d) {
  const unsigned l = threadIdx.x;
  const uint32_t ra[4] = {a[l * 4], a[l * 4 + 1], a[l * 4 + 2], a[l * 4 + 3]};
  const uint32_t rb[2] = {b[l * 2], b[l * 2 + 1]};
  float c[4] = {0.f, 0.f, 0.f, 0.f};
  pa::mma_m16n8k16_bf16(c, ra, rb, c);
  for (int i = 0; i < 4; ++i) d[l * 4 + i] = c[i];
}

// Copies the shared-memory images (16-bit elements) to dynamic shared memory: A at 0, B at 64 KiB.
PA_DEVICE void stage(pa::gptr<const uint16_t> img, int n, int at) {
  pa::sptr<uint16_t> s = pa::dynamic_shared<uint16_t>() + at / 2;
  for (int i = int(threadIdx.x); i < n; i += int(blockDim.x)) s[i] = img[i];
}
// The descriptor's start address is relative to the image: add the image's shared address.
PA_DEVICE uint64_t rebase(uint64_t desc, int at) {
  return desc + (uint64_t(PA_SMEM_ADDR(pa::dynamic_shared<uint16_t>() + at / 2)) >> 4);
}

// wgmma RS: A registers a[t*4 + i] given per thread, B from its image; acc[t*N/2 + i] out.
template <int N>
__global__ void gmma_rs_regs(pa::gptr<const uint32_t> a, pa::gptr<const uint16_t> bimg, int bn,
                             uint64_t bdesc, pa::gptr<float> d) {
  const int t = int(threadIdx.x);
  stage(bimg, bn, 65536);
  pa::fence_proxy_async();
  __syncthreads();
  pa::wgmma_acc<N> acc;
  pa::wgmma_a ra;
  for (int i = 0; i < 4; ++i) ra[i] = a[t * 4 + i];
  pa::wgmma_fence();
  pa::wgmma_rs<N, pa::bf16>(acc, ra, rebase(bdesc, 65536), false);
  pa::wgmma_commit();
  pa::wgmma_wait<0>();
  for (int i = 0; i < N / 2; ++i) d[t * (N / 2) + i] = acc[i];
}

// wgmma SS: A and B from their images through CuTe's descriptors.
template <int N, int TransA, int TransB>
__global__ void gmma_ss_imgs(pa::gptr<const uint16_t> aimg, int an, uint64_t adesc,
                             pa::gptr<const uint16_t> bimg, int bn, uint64_t bdesc,
                             pa::gptr<float> d) {
  const int t = int(threadIdx.x);
  stage(aimg, an, 0);
  stage(bimg, bn, 65536);
  pa::fence_proxy_async();
  __syncthreads();
  pa::wgmma_acc<N> acc;
  pa::wgmma_fence();
  pa::wgmma_ss<N, pa::bf16, TransA, TransB>(acc, rebase(adesc, 0), rebase(bdesc, 65536), false);
  pa::wgmma_commit();
  pa::wgmma_wait<0>();
  for (int i = 0; i < N / 2; ++i) d[t * (N / 2) + i] = acc[i];
}

#if POSATTN_HAVE_CUTE
using cute_tables::TV;
using pa::make_gptr;

uint16_t bf(int v) { return pa::bf16_from_float(float(v)).bits; }
// Small integers: every product and sum is exact in fp32.
std::vector<int> small_ints(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> d(-3, 3);
  std::vector<int> v(n);
  for (int &x : v) x = d(rng);
  return v;
}

// ---- SM80 mma.sync: fragments from CuTe's layouts, product checked exactly ----------------------
// Returns the number of D elements that differ from A0 * B0 (A0 16x16, B0 16x8 as [k][n]).
int mma_mismatches(const TV &ta, const TV &tb, const TV &tc) {
  const std::vector<int> A0 = small_ints(256, 11), B0 = small_ints(128, 12);
  std::vector<uint32_t> a(128, 0), b(64, 0);
  for (int t = 0; t < 32; ++t) {
    for (int v = 0; v < 8; ++v)
      a[size_t(t) * 4 + v / 2] |= uint32_t(bf(A0[size_t(ta.row[t * 8 + v]) * 16 + ta.col[t * 8 + v]]))
                                  << (16 * (v % 2));
    for (int v = 0; v < 4; ++v)  // B table: (n, k)
      b[size_t(t) * 2 + v / 2] |= uint32_t(bf(B0[size_t(tb.col[t * 4 + v]) * 8 + tb.row[t * 4 + v]]))
                                  << (16 * (v % 2));
  }
  std::vector<float> d(128, NAN);
  auto st = pa::launch("mma_regs", mma_regs, dim3(1), dim3(32), 0, nullptr,
                       make_gptr<const uint32_t>(a.data(), a.size(), "a"),
                       make_gptr<const uint32_t>(b.data(), b.size(), "b"), make_gptr(d.data(), 128, "d"));
  EXPECT_TRUE(st.ok) << st.msg;
  int bad = 0;
  for (int t = 0; t < 32; ++t)
    for (int v = 0; v < 4; ++v) {
      const int m = tc.row[t * 4 + v], n = tc.col[t * 4 + v];
      int ref = 0;
      for (int k = 0; k < 16; ++k) ref += A0[size_t(m) * 16 + k] * B0[size_t(k) * 8 + n];
      bad += d[size_t(t) * 4 + v] != float(ref);
    }
  return bad;
}

// A variant of a table with two values of every thread swapped (a permuted fragment).
TV swap_values(TV tv, int v1, int v2) {
  for (int t = 0; t < tv.threads; ++t) {
    std::swap(tv.row[t * tv.values + v1], tv.row[t * tv.values + v2]);
    std::swap(tv.col[t * tv.values + v1], tv.col[t * tv.values + v2]);
  }
  return tv;
}

TEST(CuTe, sm80_mma_m16n8k16_fragments) {
  const TV a = cute_tables::sm80_mma_a(), b = cute_tables::sm80_mma_b(), c = cute_tables::sm80_mma_c();
  ASSERT_EQ(a.threads, 32);
  ASSERT_EQ(a.values, 8);
  ASSERT_EQ(b.values, 4);
  ASSERT_EQ(c.values, 4);
  EXPECT_EQ(mma_mismatches(a, b, c), 0);
  // planted: A's registers 1 and 2 swapped (rows +8 vs columns +8), B's two registers swapped,
  // C's two rows swapped
  EXPECT_GT(mma_mismatches(swap_values(swap_values(a, 2, 4), 3, 5), b, c), 0);
  EXPECT_GT(mma_mismatches(a, swap_values(swap_values(b, 0, 2), 1, 3), c), 0);
  EXPECT_GT(mma_mismatches(a, b, swap_values(c, 0, 2)), 0);
}

// ---- ldmatrix -----------------------------------------------------------------------------------
int ldsm_mismatches(int nmat, bool trans, const cute_tables::Ldsm &ref) {
  std::vector<uint16_t> src(256);
  for (int i = 0; i < 256; ++i) src[i] = uint16_t(1000 + i);  // lane s's row: src[8s .. 8s+7]
  std::vector<uint32_t> out(128, 0xdeadbeefu);
  auto st = pa::launch("ldsm", emu_test::ldsm, dim3(1), dim3(32), 0, nullptr,
                       make_gptr<const uint16_t>(src.data(), 256, "src"),
                       make_gptr(out.data(), 128, "out"), nmat, int(trans));
  EXPECT_TRUE(st.ok) << st.msg;
  int bad = 0;
  for (int t = 0; t < 32; ++t)
    for (int j = 0; j < nmat; ++j)
      for (int h = 0; h < 2; ++h) {
        const size_t i = (size_t(t) * nmat + j) * 2 + h;
        const uint16_t want = uint16_t(1000 + 8 * ref.src_lane[i] + ref.src_elem[i]);
        bad += uint16_t(out[size_t(t) * 4 + j] >> (16 * h)) != want;
      }
  return bad;
}
TEST(CuTe, ldmatrix_x1_x2_x4_and_trans) {
  for (int nmat : {1, 2, 4})
    for (bool trans : {false, true}) {
      EXPECT_EQ(ldsm_mismatches(nmat, trans, cute_tables::ldsm(nmat, trans)), 0)
          << "x" << nmat << (trans ? ".trans" : "");
      // planted: the other transpose's layout
      EXPECT_GT(ldsm_mismatches(nmat, trans, cute_tables::ldsm(nmat, !trans)), 0)
          << "x" << nmat << (trans ? ".trans" : "") << " against the wrong layout";
    }
}

// ---- swizzle ------------------------------------------------------------------------------------
TEST(CuTe, swizzle_32_64_128_bytes) {
  for (int w : {32, 64, 128}) {
    const std::vector<uint32_t> ref = cute_tables::swizzle(w, 1u << 15);
    auto mismatches = [&](const std::function<uint32_t(uint32_t)> &f) {
      int bad = 0;
      for (uint32_t a = 0; a < ref.size(); ++a) bad += f(a) != ref[a];
      return bad;
    };
    EXPECT_EQ(mismatches([&](uint32_t a) { return pa_emu::swizzle_address(a, w); }), 0) << w;
    // planted: the row bits taken one higher; the 16-byte chunk bits one lower
    const uint32_t mask = uint32_t(w / 16 - 1);
    EXPECT_GT(mismatches([&](uint32_t a) { return a ^ (((a >> 8) & mask) << 4); }), 0) << w;
    EXPECT_GT(mismatches([&](uint32_t a) { return a ^ (((a >> 7) & mask) << 3); }), 0) << w;
  }
}

// ---- descriptors: the emulator's reading of CuTe's descriptors, and posattn's bits -------------
// Elements (mn, k) of every k-block whose address (desc_address + swizzle) differs from CuTe's.
int desc_mismatches(const cute_tables::GmmaTile &g, bool k_major, int mn, int w, bool interpret_k_major) {
  int bad = 0;
  for (size_t kb = 0; kb < g.desc.size(); ++kb) {
    bad += pa_emu::desc_swizzle_bytes(g.desc[kb]) != w;
    for (int r = 0; r < mn; ++r)
      for (int k = 0; k < 16; ++k)
        bad += pa_emu::swizzle_address(pa_emu::desc_address(g.desc[kb], interpret_k_major, unsigned(r),
                                                             unsigned(k)),
                                       w) != g.offset[kb][size_t(r) * 16 + k];
  }
  (void)k_major;
  return bad;
}
struct DescCase {
  bool k_major;
  int swizzle, mn;
};
void PrintTo(const DescCase &c, std::ostream *os) {
  *os << (c.k_major ? "K-major" : "MN-major") << " swizzle " << c.swizzle << " rows " << c.mn;
}
class CuTeDesc : public ::testing::TestWithParam<DescCase> {};
TEST_P(CuTeDesc, emulator_reads_cute_layout_and_posattn_bits_match_make_gmma_desc) {
  const DescCase c = GetParam();
  const cute_tables::GmmaTile g = cute_tables::gmma_tile(c.k_major, c.swizzle, c.mn);
  ASSERT_FALSE(g.desc.empty());
  EXPECT_EQ(desc_mismatches(g, c.k_major, c.mn, c.swizzle, c.k_major), 0);
  // planted: the descriptor read with the other major-ness (a transposed operand)
  EXPECT_GT(desc_mismatches(g, c.k_major, c.mn, c.swizzle, !c.k_major), 0);
  const int kt = c.k_major ? 64 : 32;
  for (size_t kb = 0; kb < g.desc.size(); ++kb) {
    const uint32_t start = c.k_major ? pa::wgmma_kblock_k_major(int(kb), c.mn, c.swizzle)
                                     : pa::wgmma_kblock_mn_major(int(kb), c.swizzle);
    const uint64_t ours = c.k_major ? pa::wgmma_desc_k_major_bits(start, c.mn, c.swizzle)
                                    : pa::wgmma_desc_mn_major_bits(start, kt, c.swizzle);
    // With a single swizzle atom along M/N (mn <= W/2) an MN-major descriptor's LBO is never used:
    // CuTe writes 0 there, posattn the atom stride. Every other bit must agree.
    const uint64_t care = !c.k_major && c.swizzle && c.mn <= c.swizzle / 2
                              ? ~(uint64_t(0x3fff) << 16) : ~uint64_t(0);
    EXPECT_EQ(ours & care, g.desc[kb] & care)
        << "k-block " << kb << std::hex << ": posattn 0x" << ours << ", CuTe 0x" << g.desc[kb];
  }
}
std::vector<DescCase> desc_cases() {
  std::vector<DescCase> v;
  for (bool k : {true, false})
    for (int w : {0, 32, 64, 128})
      for (int mn : {64, 128, 256}) v.push_back({k, w, mn});
  return v;
}
INSTANTIATE_TEST_SUITE_P(All, CuTeDesc, ::testing::ValuesIn(desc_cases()),
                         [](const ::testing::TestParamInfo<DescCase> &i) {
                           return std::string(i.param.k_major ? "k_major" : "mn_major") + "_sw" +
                                  std::to_string(i.param.swizzle) + "_mn" + std::to_string(i.param.mn);
                         });

// The operand tiles of the sm_90a prefill kernel (kernels/prefill/wgmma.cuh) at their real shapes:
// Q (64 rows x D) and K (Bc keys x D) K-major, V (D features x Bc keys) MN-major, 128-byte
// swizzle, every k-block of the tile -- in particular the k-blocks past the first 64-element
// chunk of a K-major tile (hd128/hd256: the chunk offset of wgmma_kblock_k_major) and the
// leading byte offset Bc * 128 between 64-feature atoms of V (hd256: Bc = 64). Planted: the V
// descriptor built for Bc = 128 at hd256 (the tile's real k extent is 64), and k-blocks of a
// K-major tile taken as if the tile had 128 rows.
struct KernelTile {
  bool k_major;
  int mn, kt;
};
TEST(CuTe, prefill_wgmma_operand_tiles_and_descriptors) {
  const KernelTile tiles[] = {{true, 64, 64},   {true, 128, 64},   {true, 64, 128},
                              {true, 128, 128}, {true, 64, 256},   {false, 64, 128},
                              {false, 128, 128}, {false, 256, 64}};
  for (const KernelTile &c : tiles) {
    SCOPED_TRACE(std::string(c.k_major ? "K-major " : "MN-major ") + std::to_string(c.mn) + " x " +
                 std::to_string(c.kt));
    const cute_tables::GmmaTile g = cute_tables::gmma_tile_sw128(c.k_major, c.mn, c.kt);
    ASSERT_EQ(g.desc.size(), size_t(c.kt / 16));
    EXPECT_EQ(desc_mismatches(g, c.k_major, c.mn, 128, c.k_major), 0);
    // one swizzle atom along M/N (mn = 64): the MN-major LBO is never used (see CuTeDesc above)
    const uint64_t care = !c.k_major && c.mn <= 64 ? ~(uint64_t(0x3fff) << 16) : ~uint64_t(0);
    int wrong = 0;  // k-blocks where a planted variant agrees with CuTe
    for (size_t kb = 0; kb < g.desc.size(); ++kb) {
      // the bits of wgmma.cuh's descriptors: Q/K wgmma_desc_k_major(tile + kblock_k_major(kb,
      // rows)), V wgmma_desc_mn_major(tile + kblock_mn_major(kb), Bc) (the kernel moves the
      // tile's descriptor by wgmma_desc_advance, the same bits: test_emu_sm90.cpp, and below)
      const uint32_t start = c.k_major ? pa::wgmma_kblock_k_major(int(kb), c.mn, 128)
                                       : pa::wgmma_kblock_mn_major(int(kb), 128);
      const uint64_t ours = c.k_major ? pa::wgmma_desc_k_major_bits(start, c.mn, 128)
                                      : pa::wgmma_desc_mn_major_bits(start, c.kt, 128);
      EXPECT_EQ(ours & care, g.desc[kb] & care) << "k-block " << kb << std::hex << ": posattn 0x" << ours
                                  << ", CuTe 0x" << g.desc[kb];
      const uint64_t tile = c.k_major ? pa::wgmma_desc_k_major_bits(0, c.mn, 128)
                                      : pa::wgmma_desc_mn_major_bits(0, c.kt, 128);
      const uint64_t moved = pa::wgmma_desc_advance(tile, start);
      EXPECT_EQ(moved, ours) << "k-block " << kb << ": wgmma_desc_advance";
      const uint64_t planted =
          c.k_major ? pa::wgmma_desc_k_major_bits(pa::wgmma_kblock_k_major(int(kb), 128, 128),
                                                  c.mn, 128)
                    : pa::wgmma_desc_mn_major_bits(start, 128, 128);
      wrong += (planted & care) == (g.desc[kb] & care);
    }
    // the planted variant equals the real one where the tile has 128 rows / 128 keys, where
    // (K-major) every k-block lies in the first chunk, or (MN-major) the LBO is unused
    const bool planted_is_real =
        c.k_major ? (c.mn == 128 || c.kt == 64) : (c.kt == 128 || c.mn <= 64);
    if (!planted_is_real) EXPECT_LT(wrong, int(g.desc.size())) << "a planted variant agrees";
  }
}

// ---- wgmma RS: A fragment and C layouts from CuTe, B from a CuTe tile -----------------------------
// D mismatches of A0 (64x16) * B0 (16xN): A registers from table ta, D read through table tc.
template <int N>
int gmma_rs_mismatches(const TV &ta, const TV &tc) {
  const std::vector<int> A0 = small_ints(64 * 16, 21), B0 = small_ints(size_t(16) * N, 22);
  // B: the first N rows of a K-major 128-byte-swizzled 256-row CuTe tile (k-block 0)
  const cute_tables::GmmaTile g = cute_tables::gmma_tile(true, 128, 256);
  std::vector<uint16_t> img(256 * 64, 0);
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < 16; ++k) img[g.offset[0][size_t(n) * 16 + k] / 2] = bf(B0[size_t(k) * N + n]);
  std::vector<uint32_t> a(128 * 4, 0);
  for (int t = 0; t < 128; ++t)
    for (int v = 0; v < 8; ++v)
      a[size_t(t) * 4 + v / 2] |=
          uint32_t(bf(A0[size_t(ta.row[t * 8 + v]) * 16 + ta.col[t * 8 + v]])) << (16 * (v % 2));
  std::vector<float> d(size_t(128) * N / 2, NAN);
  auto st = pa::launch("gmma_rs_regs", gmma_rs_regs<N>, dim3(1), dim3(128), 65536 + img.size() * 2,
                       nullptr, make_gptr<const uint32_t>(a.data(), a.size(), "a"),
                       make_gptr<const uint16_t>(img.data(), img.size(), "bimg"), int(img.size()),
                       g.desc[0], make_gptr(d.data(), d.size(), "d"));
  EXPECT_TRUE(st.ok) << st.msg;
  int bad = 0;
  for (int t = 0; t < 128; ++t)
    for (int v = 0; v < N / 2; ++v) {
      const int m = tc.row[t * (N / 2) + v], n = tc.col[t * (N / 2) + v];
      int ref = 0;
      for (int k = 0; k < 16; ++k) ref += A0[size_t(m) * 16 + k] * B0[size_t(k) * N + n];
      bad += d[size_t(t) * (N / 2) + v] != float(ref);
    }
  return bad;
}
template <int N>
void check_gmma_rs() {
  const TV a = cute_tables::sm90_gmma_a(N), c = cute_tables::sm90_gmma_c(N);
  ASSERT_EQ(a.threads, 128);
  ASSERT_EQ(a.values, 8);
  ASSERT_EQ(c.values, N / 2);
  // the emulator's documented layout (sm90.cuh: pa::wgmma_acc_row/col) is CuTe's C layout
  for (int t = 0; t < 128; ++t)
    for (int i = 0; i < N / 2; ++i) {
      ASSERT_EQ(pa::wgmma_acc_row(t, i), c.row[t * (N / 2) + i]) << "N " << N << " t " << t << " i " << i;
      ASSERT_EQ(pa::wgmma_acc_col(t, i), c.col[t * (N / 2) + i]) << "N " << N << " t " << t << " i " << i;
    }
  EXPECT_EQ((gmma_rs_mismatches<N>(a, c)), 0) << "N " << N;
  // planted: A's k halves swapped (registers 0,1 <-> 2,3); C's two rows swapped
  EXPECT_GT((gmma_rs_mismatches<N>(swap_values(swap_values(a, 0, 4), 1, 5), c)), 0) << "N " << N;
  EXPECT_GT((gmma_rs_mismatches<N>(a, swap_values(c, 0, 2))), 0) << "N " << N;
}
TEST(CuTe, sm90_gmma_rs_a_and_c_layouts_every_n) {
  check_gmma_rs<8>(); check_gmma_rs<16>(); check_gmma_rs<24>(); check_gmma_rs<32>();
  check_gmma_rs<40>(); check_gmma_rs<48>(); check_gmma_rs<56>(); check_gmma_rs<64>();
  check_gmma_rs<72>(); check_gmma_rs<80>(); check_gmma_rs<88>(); check_gmma_rs<96>();
  check_gmma_rs<104>(); check_gmma_rs<112>(); check_gmma_rs<120>(); check_gmma_rs<128>();
  check_gmma_rs<136>(); check_gmma_rs<144>(); check_gmma_rs<152>(); check_gmma_rs<160>();
  check_gmma_rs<168>(); check_gmma_rs<176>(); check_gmma_rs<184>(); check_gmma_rs<192>();
  check_gmma_rs<200>(); check_gmma_rs<208>(); check_gmma_rs<216>(); check_gmma_rs<224>();
  check_gmma_rs<232>(); check_gmma_rs<240>(); check_gmma_rs<248>(); check_gmma_rs<256>();
}

// ---- wgmma SS on CuTe's shared-memory tiles and descriptors ---------------------------------------
// One k-block kb of A (64 rows) and B (N rows) tiles with the given major-ness and swizzle.
template <int N, int TransA, int TransB>
int gmma_ss_mismatches(int swa, int swb, int kb) {
  const cute_tables::GmmaTile ga = cute_tables::gmma_tile(!TransA, swa, 64);
  const cute_tables::GmmaTile gb = cute_tables::gmma_tile(!TransB, swb, N);
  const std::vector<int> A0 = small_ints(64 * 16, 31), B0 = small_ints(size_t(16) * N, 32);
  std::vector<uint16_t> ai(64 * 64, 0), bi(64 * size_t(N), 0);
  for (int m = 0; m < 64; ++m)
    for (int k = 0; k < 16; ++k) ai[ga.offset[kb][size_t(m) * 16 + k] / 2] = bf(A0[size_t(m) * 16 + k]);
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < 16; ++k) bi[gb.offset[kb][size_t(n) * 16 + k] / 2] = bf(B0[size_t(k) * N + n]);
  std::vector<float> d(size_t(128) * N / 2, NAN);
  auto st = pa::launch("gmma_ss_imgs", gmma_ss_imgs<N, TransA, TransB>, dim3(1), dim3(128),
                       65536 + bi.size() * 2, nullptr,
                       make_gptr<const uint16_t>(ai.data(), ai.size(), "aimg"), int(ai.size()),
                       ga.desc[kb], make_gptr<const uint16_t>(bi.data(), bi.size(), "bimg"),
                       int(bi.size()), gb.desc[kb], make_gptr(d.data(), d.size(), "d"));
  EXPECT_TRUE(st.ok) << st.msg;
  int bad = 0;
  for (int t = 0; t < 128; ++t)
    for (int i = 0; i < N / 2; ++i) {
      const int m = pa::wgmma_acc_row(t, i), n = pa::wgmma_acc_col(t, i);
      int ref = 0;
      for (int k = 0; k < 16; ++k) ref += A0[size_t(m) * 16 + k] * B0[size_t(k) * N + n];
      bad += d[size_t(t) * (N / 2) + i] != float(ref);
    }
  return bad;
}
template <int N, int TA, int TB>
void check_gmma_ss() {
  const int other[4][2] = {{0, 128}, {32, 0}, {64, 32}, {128, 64}};  // A swizzle, B swizzle
  for (const auto &sw : other)
    for (int kb : {0, 1})
      EXPECT_EQ((gmma_ss_mismatches<N, TA, TB>(sw[0], sw[1], kb)), 0)
          << "N " << N << " transA " << TA << " transB " << TB << " swizzle A " << sw[0] << " B " << sw[1] << " k-block " << kb;
}
TEST(CuTe, sm90_gmma_ss_on_cute_tiles) {
  check_gmma_ss<64, 0, 0>();
  check_gmma_ss<128, 0, 1>();
  check_gmma_ss<256, 1, 0>();
  check_gmma_ss<64, 1, 1>();
}

#else
TEST(CuTe, skipped_without_cute_headers) {
#if defined(POSATTN_CUTE_LEFT_OUT)
  GTEST_SKIP() << "CuTe is left out of sanitizer builds (tests/emu/CMakeLists.txt); the Release "
                  "build runs this cross-check";
#endif
  GTEST_SKIP() << "CuTe headers not found at configure time: install the PyPI package "
                  "nvidia-cutlass (scripts/lib.sh ensure_build_deps tests does) and a CUDA toolkit "
                  "(libcu++ cuda/std headers), or set POSATTN_CUTLASS_INCLUDE / "
                  "POSATTN_CCCL_INCLUDE, then reconfigure";
}
#endif

}  // namespace cute_check
