// cute_tables.cpp -- the tables of cute_tables.h, computed by CuTe itself on the host. Plain C++17:
// CuTe's layout algebra needs no CUDA (only libcu++'s cuda/std headers, from the CUDA toolkit).
#include "cute_tables.h"

#include <cute/tensor.hpp>
#include <cute/atom/copy_traits_sm75.hpp>
#include <cute/atom/mma_traits_sm80.hpp>
#include <cute/atom/mma_traits_sm90_gmma.hpp>
#include <cute/arch/mma_sm90_gmma_ext.hpp>  // the N that are not multiples of 16
#include <cute/atom/mma_traits_sm90_gmma_ext.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>

namespace cute_tables {
namespace {
using namespace cute;

template <class L>
TV tv_of(L layout, int rows) {
  TV tv;
  tv.threads = int(size<0>(layout));
  tv.values = int(size<1>(layout));
  for (int t = 0; t < tv.threads; ++t)
    for (int v = 0; v < tv.values; ++v) {
      const int idx = int(layout(t, v));  // column-major index into rows x cols
      tv.row.push_back(idx % rows);
      tv.col.push_back(idx / rows);
    }
  return tv;
}

template <class Op>
Ldsm ldsm_of(int nmat) {
  using T = Copy_Traits<Op>;
  const auto src = typename T::SrcLayout{};
  const auto dst = typename T::DstLayout{};
  Ldsm r;
  for (int t = 0; t < 32; ++t)
    for (int j = 0; j < nmat; ++j)
      for (int h = 0; h < 2; ++h) {
        const int bit = int(dst(t, j * 32 + h * 16));  // first bit of the 16-bit element
        int lane = -1, elem = -1;
        for (int s = 0; s < int(size<0>(src)) && lane < 0; ++s)
          for (int o = 0; o < int(size<1>(src)); o += 16)
            if (int(src(s, o)) == bit) {
              lane = s;
              elem = o / 16;
              break;
            }
        if (lane < 0) throw std::runtime_error("ldmatrix: destination bit has no source");
        r.src_lane.push_back(lane);
        r.src_elem.push_back(elem);
      }
  return r;
}

#define PA_GMMA_C(N)                                                                            \
  case N:                                                                                       \
    return tv_of(typename MMA_Traits<SM90::GMMA::MMA_64x##N##x16_F32BF16BF16_RS<                \
                     GMMA::Major::K, GMMA::Major::K>>::CLayout{},                               \
                 64);
#define PA_GMMA_A(N)                                                                            \
  case N:                                                                                       \
    return tv_of(typename MMA_Traits<SM90::GMMA::MMA_64x##N##x16_F32BF16BF16_RS<                \
                     GMMA::Major::K, GMMA::Major::K>>::ALayout{},                               \
                 64);
#define PA_GMMA_ALL_N(X)                                                                        \
  X(8) X(16) X(24) X(32) X(40) X(48) X(56) X(64) X(72) X(80) X(88) X(96) X(104) X(112) X(120)    \
  X(128) X(136) X(144) X(152) X(160) X(168) X(176) X(184) X(192) X(200) X(208) X(216) X(224)     \
  X(232) X(240) X(248) X(256)

// On the host CuTe cannot turn a shared-memory pointer into a shared address and says so on
// stdout for every descriptor; the start address is supplied here, so the message is muted.
class MuteStdout {
 public:
  MuteStdout() {
    std::fflush(stdout);
    saved_ = dup(1);
    const int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
      dup2(null, 1);
      close(null);
    }
  }
  ~MuteStdout() {
    std::fflush(stdout);
    if (saved_ >= 0) {
      dup2(saved_, 1);
      close(saved_);
    }
  }

 private:
  int saved_;
};

template <bool KMajor, class Atom, int MN, int KT>
GmmaTile tile_of(Atom atom) {
  alignas(1024) static cute::bfloat16_t smem[256 * 64];
  constexpr GMMA::Major major = KMajor ? GMMA::Major::K : GMMA::Major::MN;
  using Shape = cute::Shape<Int<MN>, Int<KT>>;
  // K-major: atoms along mn first (CuTe's default); MN-major: along k first.
  auto layout = [&] {
    if constexpr (KMajor) return tile_to_shape(atom, Shape{});
    else return tile_to_shape(atom, Shape{}, Step<_2, _1>{});
  }();
  auto t = make_tensor(make_smem_ptr(smem), layout);
  GmmaTile g;
  for (int kb = 0; kb < KT / 16; ++kb) {
    auto blk = local_tile(t, cute::Shape<Int<MN>, _16>{}, make_coord(0, kb));
    GmmaDescriptor d;
    {
      MuteStdout mute;
      d = GMMA::make_gmma_desc<major>(blk);
    }
    const auto *start = reinterpret_cast<const char *>(raw_pointer_cast(blk.data()));
    d.bitfield.start_address_ = uint16_t(uint32_t(start - reinterpret_cast<const char *>(smem)) >> 4);
    g.desc.push_back(d.desc_);
    std::vector<uint32_t> off;
    for (int r = 0; r < MN; ++r)
      for (int k = 0; k < 16; ++k)
        off.push_back(uint32_t(reinterpret_cast<const char *>(&blk(r, k)) -
                               reinterpret_cast<const char *>(smem)));
    g.offset.push_back(off);
  }
  return g;
}

template <bool KMajor, int MN>
GmmaTile tile_by_swizzle(int swizzle) {
  using T = cute::bfloat16_t;
  constexpr int KT = KMajor ? 64 : 32;
  if constexpr (KMajor) {
    if (swizzle == 0) return tile_of<true, GMMA::Layout_K_INTER_Atom<T>, MN, KT>({});
    if (swizzle == 32) return tile_of<true, GMMA::Layout_K_SW32_Atom<T>, MN, KT>({});
    if (swizzle == 64) return tile_of<true, GMMA::Layout_K_SW64_Atom<T>, MN, KT>({});
    return tile_of<true, GMMA::Layout_K_SW128_Atom<T>, MN, KT>({});
  } else {
    if (swizzle == 0) return tile_of<false, GMMA::Layout_MN_INTER_Atom<T>, MN, KT>({});
    if (swizzle == 32) return tile_of<false, GMMA::Layout_MN_SW32_Atom<T>, MN, KT>({});
    if (swizzle == 64) return tile_of<false, GMMA::Layout_MN_SW64_Atom<T>, MN, KT>({});
    return tile_of<false, GMMA::Layout_MN_SW128_Atom<T>, MN, KT>({});
  }
}
}  // namespace

TV sm80_mma_a() { return tv_of(typename MMA_Traits<SM80_16x8x16_F32BF16BF16F32_TN>::ALayout{}, 16); }
TV sm80_mma_b() { return tv_of(typename MMA_Traits<SM80_16x8x16_F32BF16BF16F32_TN>::BLayout{}, 8); }
TV sm80_mma_c() { return tv_of(typename MMA_Traits<SM80_16x8x16_F32BF16BF16F32_TN>::CLayout{}, 16); }

TV sm90_gmma_a(int n) {
  switch (n) { PA_GMMA_ALL_N(PA_GMMA_A) }
  throw std::runtime_error("sm90_gmma_a: N");
}
TV sm90_gmma_c(int n) {
  switch (n) { PA_GMMA_ALL_N(PA_GMMA_C) }
  throw std::runtime_error("sm90_gmma_c: N");
}

Ldsm ldsm(int nmat, bool trans) {
  if (!trans) {
    if (nmat == 1) return ldsm_of<SM75_U32x1_LDSM_N>(1);
    if (nmat == 2) return ldsm_of<SM75_U32x2_LDSM_N>(2);
    return ldsm_of<SM75_U32x4_LDSM_N>(4);
  }
  if (nmat == 1) return ldsm_of<SM75_U16x2_LDSM_T>(1);
  if (nmat == 2) return ldsm_of<SM75_U16x4_LDSM_T>(2);
  return ldsm_of<SM75_U16x8_LDSM_T>(4);
}

std::vector<uint32_t> swizzle(int bytes, uint32_t n) {
  std::vector<uint32_t> r(n);
  for (uint32_t a = 0; a < n; ++a)
    r[a] = bytes == 32 ? uint32_t(Swizzle<1, 4, 3>{}(int(a)))
         : bytes == 64 ? uint32_t(Swizzle<2, 4, 3>{}(int(a)))
         : bytes == 128 ? uint32_t(Swizzle<3, 4, 3>{}(int(a)))
                        : a;
  return r;
}

GmmaTile gmma_tile(bool k_major, int swizzle, int mn) {
  if (k_major) {
    if (mn == 64) return tile_by_swizzle<true, 64>(swizzle);
    if (mn == 128) return tile_by_swizzle<true, 128>(swizzle);
    return tile_by_swizzle<true, 256>(swizzle);
  }
  if (mn == 64) return tile_by_swizzle<false, 64>(swizzle);
  if (mn == 128) return tile_by_swizzle<false, 128>(swizzle);
  return tile_by_swizzle<false, 256>(swizzle);
}

GmmaTile gmma_tile_sw128(bool k_major, int mn, int kt) {
  using T = cute::bfloat16_t;
  using K = GMMA::Layout_K_SW128_Atom<T>;
  using MN = GMMA::Layout_MN_SW128_Atom<T>;
  if (k_major) {
    if (mn == 64 && kt == 64) return tile_of<true, K, 64, 64>({});
    if (mn == 128 && kt == 64) return tile_of<true, K, 128, 64>({});
    if (mn == 64 && kt == 128) return tile_of<true, K, 64, 128>({});
    if (mn == 128 && kt == 128) return tile_of<true, K, 128, 128>({});
    if (mn == 64 && kt == 256) return tile_of<true, K, 64, 256>({});
  } else {
    if (mn == 64 && kt == 128) return tile_of<false, MN, 64, 128>({});
    if (mn == 128 && kt == 128) return tile_of<false, MN, 128, 128>({});
    if (mn == 256 && kt == 64) return tile_of<false, MN, 256, 64>({});
  }
  throw std::runtime_error("gmma_tile_sw128: not a shape of the prefill kernel");
}

}  // namespace cute_tables
