// sm90.cuh -- the device layer's Hopper (sm_90a) primitives: mbarrier, TMA, wgmma, named barriers,
// setmaxnreg, elect.sync. Include after (or instead of) device.cuh. Like device.cuh, every name
// is PTX under nvcc and an emulator call under the host compiler (kernels/emu/emu_sm90.h), where
// the emulator checks what the hardware would punish (docs/emulator.md, "Hopper primitives").
//
// Availability: PA_SM90 is 1 where these primitives exist: the emulator, nvcc's host pass, and
// nvcc's device pass for sm_90a (__CUDA_ARCH__ >= 900 with __CUDA_ARCH_FEAT_SM90_ALL). In any other
// device pass (sm_80, plain sm_90) the functions are declared but not defined, so a kernel that
// calls one fails to build there instead of running wrong: wrap such a kernel's body in
// `#if PA_SM90` and never launch it on those devices.
//
// API (extend, do not change):
//   mbarrier   pa::mbarrier_init(bar, count), mbarrier_arrive(bar), mbarrier_arrive_expect_tx(bar,
//              bytes), mbarrier_expect_tx(bar, bytes), mbarrier_wait(bar, parity) (blocks until the
//              phase of that parity completed: try_wait.parity in a loop), fence_mbarrier_init().
//              bar is a pa::sptr<uint64_t> to an 8-byte shared object touched by nothing else.
//   TMA        pa::tma_layout (what cuTensorMapEncodeTiled takes), pa::tma_map (the tensor map; a
//              kernel takes it as `const __grid_constant__ pa::tma_map`), pa::make_tma_map(&map,
//              gptr, layout) -> nullptr or the rule broken; pa::tma_load_{1..5}d(dst, map, coords...,
//              bar): the box at element coordinates (innermost first; outside the tensor reads as
//              zero) into shared memory at dst (128-byte aligned), completing box bytes on bar;
//              pa::tma_store_{1..5}d(map, coords..., src) (outside the tensor: not written),
//              pa::tma_store_commit(), pa::tma_store_wait<N>() (the source may be reused).
//   wgmma      pa::wgmma_acc<N> (fp32 accumulators of m64nNk16: N/2 per thread, acc[i]),
//              pa::wgmma_a (the A operand in registers: 4 x b32 per thread),
//              pa::make_wgmma_desc(sptr, lbo_bytes, sbo_bytes, swizzle_bytes) (matrix
//              descriptor), pa::wgmma_ss<N, T, TransA, TransB>(acc, adesc, bdesc, scale_d),
//              pa::wgmma_rs<N, T, TransB>(acc, a, bdesc, scale_d), pa::wgmma_fence(),
//              pa::wgmma_a_from_acc<T>(a, acc, kb) (an accumulator's columns as the next A),
//              pa::wgmma_acc_row/col(t, i), pa::wgmma_desc_{k,mn}_major (tile descriptors),
//              pa::wgmma_commit(), pa::wgmma_wait<N>(). T = pa::bf16 or pa::f16; N = 8..256 step 8.
//   other      pa::fence_proxy_async(), pa::named_barrier_sync(id, threads),
//              pa::named_barrier_arrive(id, threads) (id 1..15), pa::setmaxnreg_inc<R>(),
//              pa::setmaxnreg_dec<R>() (warpgroup-uniform), pa::elect_one_sync().
//
// Fragment layouts (PTX ISA "Register Fragments and Shared Memory Matrix Layouts" for wgmma;
// proven against CuTe's MMA_Traits by tests/emu/test_sm90_cute.cpp). Thread t of the warpgroup
// (0..127), w = t / 32, g = (t % 32) / 4, q = t % 4:
//   accumulator  acc[i] = D[16w + g + 8((i/2) % 2)][8(i/4) + 2q + (i % 2)],  i < N/2
//   A (RS)       a[0] = A[16w+g][2q..2q+1], a[1] = A[16w+g+8][2q..2q+1], a[2] = A[16w+g][2q+8..2q+9],
//                a[3] = A[16w+g+8][2q+8..2q+9] (lower column in the low half): each warp holds
//                the mma.m16n8k16 A fragment of its 16 rows.
// Matrix descriptors: 14-bit start address, leading byte offset (LBO) and stride byte offset
// (SBO), each >> 4, at bits 0, 16, 32; the swizzle at bits 62-63 (0 none, 1 128B, 2 64B, 3 32B);
// base offset 0. Element (mn, k) of a 16-bit operand (mn: row of A or column of B) lies at
//   K-major  none: start + 16(mn%8) + SBO(mn/8) + LBO(k/8) + 2(k%8)
//            W-byte swizzle: start + W(mn%8) + SBO(mn/8) + 2k
//   MN-major none: start + 2(mn%8) + SBO(mn/8) + 16(k%8) + LBO(k/8)
//            W-byte swizzle: start + 2(mn%(W/2)) + LBO(mn/(W/2)) + W(k%8) + SBO(k/8)
// then swizzled by address: bits [4,4+b) ^= bits [7,7+b), b = 1, 2, 3 for W = 32, 64, 128 -- the
// same function a TMA load with that swizzle writes with. Advancing a descriptor by `bytes`
// (e.g. to the next k-block inside a swizzled tile) is desc + (bytes >> 4).
#ifndef POSATTN_SM90_CUH
#define POSATTN_SM90_CUH

#include "device.cuh"

#if !defined(__CUDACC__)
#include "../emu/emu_sm90.h"
#define PA_SM90 1
#define __grid_constant__
#elif !defined(__CUDA_ARCH__)
#define PA_SM90 1
#elif __CUDA_ARCH__ >= 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define PA_SM90 1
#else
#define PA_SM90 0
#endif

#if defined(__CUDACC__)
#include <cuda.h>  // CUtensorMap and cuTensorMapEncodeTiled's types (host side of make_tma_map)
#endif

// PA_SM90_BODY(...) is the body of a Hopper device function: the code where PA_SM90, a bare `;`
// (declared, never defined) in other device passes.
#if PA_SM90
#define PA_SM90_FN PA_DEVICE
#define PA_SM90_BODY(...) { __VA_ARGS__ }
#else
#define PA_SM90_FN __device__
#define PA_SM90_BODY(...) ;
#endif

#if !defined(__CUDACC__) && !defined(PA_SITE)
#define PA_SITE const char *file = __builtin_FILE(), int line = __builtin_LINE()
#endif
#if defined(__CUDACC__)
#define PA_SMEM_ADDR(p) static_cast<uint32_t>(__cvta_generic_to_shared(p))
#else
#define PA_SMEM_ADDR(p) ::pa_emu::shared_address((p).raw())
#endif

namespace pa {

// =================================================================================================
// mbarrier (PTX ISA "Parallel Synchronization and Communication Instructions: mbarrier")
// =================================================================================================
#if defined(__CUDACC__)
PA_SM90_FN void mbarrier_init(sptr<uint64_t> bar, unsigned count) PA_SM90_BODY(
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(PA_SMEM_ADDR(bar)), "r"(count));)
PA_SM90_FN void mbarrier_arrive(sptr<uint64_t> bar) PA_SM90_BODY(
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(PA_SMEM_ADDR(bar)) : "memory");)
PA_SM90_FN void mbarrier_arrive_expect_tx(sptr<uint64_t> bar, unsigned bytes) PA_SM90_BODY(
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(PA_SMEM_ADDR(bar)),
                 "r"(bytes) : "memory");)
PA_SM90_FN void mbarrier_expect_tx(sptr<uint64_t> bar, unsigned bytes) PA_SM90_BODY(
    asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;\n" ::"r"(PA_SMEM_ADDR(bar)),
                 "r"(bytes) : "memory");)
PA_SM90_FN void mbarrier_wait(sptr<uint64_t> bar, unsigned parity) PA_SM90_BODY(
    asm volatile(
        "{\n.reg .pred done;\nPA_MBAR_WAIT:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
        "@!done bra PA_MBAR_WAIT;\n}\n" ::"r"(PA_SMEM_ADDR(bar)), "r"(parity) : "memory");)
// Makes initialised mbarriers visible to the async proxy (TMA) before their first use.
PA_SM90_FN void fence_mbarrier_init() PA_SM90_BODY(
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");)
#else
inline void mbarrier_init(sptr<uint64_t> bar, unsigned count, PA_SITE) {
  pa_emu::mbar_init(bar.raw(), bar.region(), count, file, line);
}
inline void mbarrier_arrive(sptr<uint64_t> bar, PA_SITE) {
  pa_emu::mbar_arrive(bar.raw(), bar.region(), false, 0, file, line);
}
inline void mbarrier_arrive_expect_tx(sptr<uint64_t> bar, unsigned bytes, PA_SITE) {
  pa_emu::mbar_arrive(bar.raw(), bar.region(), true, bytes, file, line);
}
inline void mbarrier_expect_tx(sptr<uint64_t> bar, unsigned bytes, PA_SITE) {
  pa_emu::mbar_expect_tx(bar.raw(), bar.region(), bytes, file, line);
}
inline void mbarrier_wait(sptr<uint64_t> bar, unsigned parity, PA_SITE) {
  pa_emu::mbar_wait(bar.raw(), bar.region(), parity, file, line);
}
inline void fence_mbarrier_init() {}
#endif

// =================================================================================================
// TMA: cp.async.bulk.tensor.Nd.shared::cluster.global.mbarrier::complete_tx::bytes
// =================================================================================================
// The tensor map's fields (cuTensorMapEncodeTiled's arguments): dims and box in elements,
// innermost first; strides[d] in bytes for d >= 1 (strides[0] is the element size: contiguous
// innermost dimension). Interleave none, L2 promotion none, out-of-range elements read as zero.
struct tma_layout {
  int rank;            // 1..5
  int elem_bytes;      // 1, 2, 4, 8
  uint64_t dims[5];
  uint64_t strides[5];
  uint32_t box[5];
  int swizzle;         // 0, 32, 64 or 128 bytes; swizzled: box[0] * elem_bytes == swizzle
};

// The rules of cuTensorMapEncodeTiled that the kernels rely on (plus the emulator's swizzle rule);
// nullptr when `l` obeys them.
inline const char *tma_layout_error(const void *base, const tma_layout &l) {
  if (l.rank < 1 || l.rank > 5) return "tma_layout: rank must be 1..5";
  if (l.elem_bytes != 1 && l.elem_bytes != 2 && l.elem_bytes != 4 && l.elem_bytes != 8)
    return "tma_layout: elem_bytes must be 1, 2, 4 or 8";
  if (reinterpret_cast<uintptr_t>(base) % 16) return "tma_layout: the global address must be 16-byte aligned";
  for (int d = 0; d < l.rank; ++d) {
    if (l.dims[d] == 0 || l.dims[d] > (uint64_t(1) << 32)) return "tma_layout: dims must be 1..2^32";
    if (l.box[d] == 0 || l.box[d] > 256) return "tma_layout: box sizes must be 1..256";
    if (d > 0 && (l.strides[d] % 16 || l.strides[d] >= (uint64_t(1) << 40)))
      return "tma_layout: strides must be multiples of 16 bytes below 2^40";
  }
  if ((uint64_t(l.box[0]) * l.elem_bytes) % 16) return "tma_layout: box[0] * elem_bytes must be a multiple of 16";
  if (l.swizzle != 0 && l.swizzle != 32 && l.swizzle != 64 && l.swizzle != 128)
    return "tma_layout: swizzle must be 0, 32, 64 or 128";
  if (l.swizzle && uint64_t(l.box[0]) * l.elem_bytes != uint64_t(l.swizzle))
    return "tma_layout: with a swizzle, box[0] * elem_bytes must equal the swizzle width";
  return nullptr;
}

#if defined(__CUDACC__)
struct alignas(64) tma_map {
  uint64_t opaque[16];  // a CUtensorMap
};
// Host: encodes the map with the driver's cuTensorMapEncodeTiled, reached through the runtime's
// entry-point query (no link against libcuda). Returns nullptr or what went wrong.
template <class T>
inline __host__ const char *make_tma_map(tma_map *out, gptr<const T> base, const tma_layout &l) {
  if (const char *e = tma_layout_error(base, l)) return e;
  using encode_fn = CUresult (*)(CUtensorMap *, CUtensorMapDataType, cuuint32_t, void *,
                                 const cuuint64_t *, const cuuint64_t *, const cuuint32_t *,
                                 const cuuint32_t *, CUtensorMapInterleave, CUtensorMapSwizzle,
                                 CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
  static encode_fn encode = nullptr;
  if (!encode) {
    void *fn = nullptr;
    cudaDriverEntryPointQueryResult q;
#if CUDART_VERSION >= 12050
    const cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000,
                                                           cudaEnableDefault, &q);
#else
    const cudaError_t e = cudaGetDriverEntryPoint("cuTensorMapEncodeTiled", &fn, cudaEnableDefault, &q);
#endif
    if (e != cudaSuccess ||
        q != cudaDriverEntryPointSuccess || !fn)
      return "make_tma_map: cuTensorMapEncodeTiled is not available from the driver";
    encode = reinterpret_cast<encode_fn>(fn);
  }
  const CUtensorMapDataType dt = l.elem_bytes == 1 ? CU_TENSOR_MAP_DATA_TYPE_UINT8
                                 : l.elem_bytes == 2 ? CU_TENSOR_MAP_DATA_TYPE_UINT16
                                 : l.elem_bytes == 4 ? CU_TENSOR_MAP_DATA_TYPE_UINT32
                                                     : CU_TENSOR_MAP_DATA_TYPE_INT64;
  const CUtensorMapSwizzle sw = l.swizzle == 128 ? CU_TENSOR_MAP_SWIZZLE_128B
                                : l.swizzle == 64 ? CU_TENSOR_MAP_SWIZZLE_64B
                                : l.swizzle == 32 ? CU_TENSOR_MAP_SWIZZLE_32B
                                                  : CU_TENSOR_MAP_SWIZZLE_NONE;
  cuuint64_t dims[5], strides[4];
  cuuint32_t box[5], estr[5];
  for (int d = 0; d < l.rank; ++d) {
    dims[d] = l.dims[d];
    box[d] = l.box[d];
    estr[d] = 1;
    if (d > 0) strides[d - 1] = l.strides[d];
  }
  static_assert(sizeof(tma_map) == sizeof(CUtensorMap), "tma_map holds a CUtensorMap");
  CUresult r = encode(reinterpret_cast<CUtensorMap *>(out), dt, cuuint32_t(l.rank),
                      const_cast<void *>(static_cast<const void *>(base)), dims, strides, box, estr,
                      CU_TENSOR_MAP_INTERLEAVE_NONE, sw, CU_TENSOR_MAP_L2_PROMOTION_NONE,
                      CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? nullptr : "make_tma_map: cuTensorMapEncodeTiled failed";
}
namespace detail {
#define PA_TMA_ASM(DIMS, COORDS, ...)                                                               \
  asm volatile("cp.async.bulk.tensor." #DIMS "d.shared::cluster.global.mbarrier::complete_tx::bytes" \
               " [%0], [%1, {" COORDS "}], [%2];\n" ::"r"(PA_SMEM_ADDR(dst)),                       \
               "l"(reinterpret_cast<uint64_t>(&m)), "r"(PA_SMEM_ADDR(bar)), __VA_ARGS__ : "memory")
}  // namespace detail
template <class T>
PA_SM90_FN void tma_load_1d(sptr<T> dst, const tma_map &m, int c0, sptr<uint64_t> bar)
    PA_SM90_BODY(PA_TMA_ASM(1, "%3", "r"(c0));)
template <class T>
PA_SM90_FN void tma_load_2d(sptr<T> dst, const tma_map &m, int c0, int c1, sptr<uint64_t> bar)
    PA_SM90_BODY(PA_TMA_ASM(2, "%3, %4", "r"(c0), "r"(c1));)
template <class T>
PA_SM90_FN void tma_load_3d(sptr<T> dst, const tma_map &m, int c0, int c1, int c2,
                            sptr<uint64_t> bar)
    PA_SM90_BODY(PA_TMA_ASM(3, "%3, %4, %5", "r"(c0), "r"(c1), "r"(c2));)
template <class T>
PA_SM90_FN void tma_load_4d(sptr<T> dst, const tma_map &m, int c0, int c1, int c2, int c3,
                            sptr<uint64_t> bar)
    PA_SM90_BODY(PA_TMA_ASM(4, "%3, %4, %5, %6", "r"(c0), "r"(c1), "r"(c2), "r"(c3));)
template <class T>
PA_SM90_FN void tma_load_5d(sptr<T> dst, const tma_map &m, int c0, int c1, int c2, int c3, int c4,
                            sptr<uint64_t> bar)
    PA_SM90_BODY(PA_TMA_ASM(5, "%3, %4, %5, %6, %7", "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(c4));)
namespace detail {
#define PA_TMA_STORE_ASM(DIMS, COORDS, ...)                                                  \
  asm volatile("cp.async.bulk.tensor." #DIMS "d.global.shared::cta.bulk_group [%0, {" COORDS \
               "}], [%1];\n" ::"l"(reinterpret_cast<uint64_t>(&m)),                          \
               "r"(PA_SMEM_ADDR(src)), __VA_ARGS__ : "memory")
}  // namespace detail
template <class T>
PA_SM90_FN void tma_store_1d(const tma_map &m, int c0, sptr<T> src)
    PA_SM90_BODY(PA_TMA_STORE_ASM(1, "%2", "r"(c0));)
template <class T>
PA_SM90_FN void tma_store_2d(const tma_map &m, int c0, int c1, sptr<T> src)
    PA_SM90_BODY(PA_TMA_STORE_ASM(2, "%2, %3", "r"(c0), "r"(c1));)
template <class T>
PA_SM90_FN void tma_store_3d(const tma_map &m, int c0, int c1, int c2, sptr<T> src)
    PA_SM90_BODY(PA_TMA_STORE_ASM(3, "%2, %3, %4", "r"(c0), "r"(c1), "r"(c2));)
template <class T>
PA_SM90_FN void tma_store_4d(const tma_map &m, int c0, int c1, int c2, int c3, sptr<T> src)
    PA_SM90_BODY(PA_TMA_STORE_ASM(4, "%2, %3, %4, %5", "r"(c0), "r"(c1), "r"(c2), "r"(c3));)
template <class T>
PA_SM90_FN void tma_store_5d(const tma_map &m, int c0, int c1, int c2, int c3, int c4, sptr<T> src)
    PA_SM90_BODY(PA_TMA_STORE_ASM(5, "%2, %3, %4, %5, %6", "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(c4));)
PA_SM90_FN void tma_store_commit() PA_SM90_BODY(
    asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");)
// Waits until at most N bulk groups of this thread still read their shared-memory source.
template <int N>
PA_SM90_FN void tma_store_wait() PA_SM90_BODY(
    asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(N) : "memory");)
#else
struct tma_map {
  pa_emu::TmaMap m;
};
template <class T>
inline const char *make_tma_map(tma_map *out, gptr<const T> base, const tma_layout &l) {
  if (const char *e = tma_layout_error(base.raw(), l)) return e;
  pa_emu::TmaMap &m = out->m;
  m = pa_emu::TmaMap();
  m.global = base.region();
  m.base = reinterpret_cast<const char *>(base.raw());
  m.rank = l.rank;
  m.elem_bytes = l.elem_bytes;
  m.swizzle = l.swizzle;
  for (int d = 0; d < l.rank; ++d) {
    m.dims[d] = l.dims[d];
    m.strides[d] = d == 0 ? uint64_t(l.elem_bytes) : l.strides[d];
    m.box[d] = l.box[d];
  }
  return nullptr;
}
namespace detail {
template <class T>
inline void tma_load(sptr<T> dst, const tma_map &m, std::initializer_list<int32_t> c,
                     sptr<uint64_t> bar, const char *file, int line) {
  if (int(c.size()) != m.m.rank)
    pa_emu::fault("TMA load at %s:%d with %d coordinates for a rank-%d tensor map", file, line,
                  int(c.size()), m.m.rank);
  pa_emu::tma_load(m.m, dst.raw(), dst.region(), c.begin(), bar.raw(), bar.region(), file, line);
}
}  // namespace detail
template <class T>
inline void tma_load_1d(sptr<T> dst, const tma_map &m, int c0, sptr<uint64_t> bar, PA_SITE) {
  detail::tma_load(dst, m, {c0}, bar, file, line);
}
template <class T>
inline void tma_load_2d(sptr<T> dst, const tma_map &m, int c0, int c1, sptr<uint64_t> bar,
                        PA_SITE) {
  detail::tma_load(dst, m, {c0, c1}, bar, file, line);
}
template <class T>
inline void tma_load_3d(sptr<T> dst, const tma_map &m, int c0, int c1, int c2, sptr<uint64_t> bar,
                        PA_SITE) {
  detail::tma_load(dst, m, {c0, c1, c2}, bar, file, line);
}
template <class T>
inline void tma_load_4d(sptr<T> dst, const tma_map &m, int c0, int c1, int c2, int c3,
                        sptr<uint64_t> bar, PA_SITE) {
  detail::tma_load(dst, m, {c0, c1, c2, c3}, bar, file, line);
}
template <class T>
inline void tma_load_5d(sptr<T> dst, const tma_map &m, int c0, int c1, int c2, int c3, int c4,
                        sptr<uint64_t> bar, PA_SITE) {
  detail::tma_load(dst, m, {c0, c1, c2, c3, c4}, bar, file, line);
}
namespace detail {
template <class T>
inline void tma_store(const tma_map &m, std::initializer_list<int32_t> c, sptr<T> src,
                      const char *file, int line) {
  if (int(c.size()) != m.m.rank)
    pa_emu::fault("TMA store at %s:%d with %d coordinates for a rank-%d tensor map", file, line,
                  int(c.size()), m.m.rank);
  pa_emu::tma_store(m.m, src.raw(), src.region(), c.begin(), file, line);
}
}  // namespace detail
template <class T>
inline void tma_store_1d(const tma_map &m, int c0, sptr<T> src, PA_SITE) {
  detail::tma_store(m, {c0}, src, file, line);
}
template <class T>
inline void tma_store_2d(const tma_map &m, int c0, int c1, sptr<T> src, PA_SITE) {
  detail::tma_store(m, {c0, c1}, src, file, line);
}
template <class T>
inline void tma_store_3d(const tma_map &m, int c0, int c1, int c2, sptr<T> src, PA_SITE) {
  detail::tma_store(m, {c0, c1, c2}, src, file, line);
}
template <class T>
inline void tma_store_4d(const tma_map &m, int c0, int c1, int c2, int c3, sptr<T> src, PA_SITE) {
  detail::tma_store(m, {c0, c1, c2, c3}, src, file, line);
}
template <class T>
inline void tma_store_5d(const tma_map &m, int c0, int c1, int c2, int c3, int c4, sptr<T> src,
                         PA_SITE) {
  detail::tma_store(m, {c0, c1, c2, c3, c4}, src, file, line);
}
inline void tma_store_commit() { pa_emu::tma_store_commit(); }
template <int N>
inline void tma_store_wait(PA_SITE) {
  pa_emu::tma_store_wait(N, file, line);
}
#endif

// =================================================================================================
// wgmma: fragments, descriptors, the operation (PTX ISA "Asynchronous Warpgroup Level Matrix
// Multiply-Accumulate Instructions")
// =================================================================================================
template <class T>
PA_HD uint64_t wgmma_desc_bits(uint32_t start, uint32_t lbo_bytes, uint32_t sbo_bytes, int swizzle) {
  const uint64_t code = swizzle == 128 ? 1 : swizzle == 64 ? 2 : swizzle == 32 ? 3 : 0;
  return uint64_t((start >> 4) & 0x3fff) | (uint64_t((lbo_bytes >> 4) & 0x3fff) << 16) |
         (uint64_t((sbo_bytes >> 4) & 0x3fff) << 32) | (code << 62);
}
// The descriptor of the operand `bytes` (a multiple of 16) further on in shared memory than
// desc's: the bits wgmma_desc_bits gives for the moved start while that stays below 256 KiB (every
// shared-memory address does), with one 32-bit add on the low word, so that a kernel builds each
// descriptor once and moves it per stage and k-block (the high word, SBO and swizzle, stays a
// compile-time constant where desc's is).
PA_HD uint64_t wgmma_desc_advance(uint64_t desc, uint32_t bytes) {
  return (desc & 0xffffffff00000000ull) | uint32_t(uint32_t(desc) + (bytes >> 4));
}
// The descriptor of the operand starting at `start` (see the layouts at the top of this file).
template <class T>
PA_DEVICE uint64_t make_wgmma_desc(sptr<T> start, uint32_t lbo_bytes, uint32_t sbo_bytes,
                                   int swizzle) {
  return wgmma_desc_bits<T>(PA_SMEM_ADDR(start), lbo_bytes, sbo_bytes, swizzle);
}

// The tile layout a TMA load writes and these descriptors describe: `chunks` blocks of rows, each
// row `row_bytes` = the swizzle width (16 bytes without swizzle, i.e. 8 elements), chunk-major
// ([chunk][row][element]); the rows of a chunk are the operand's M/N rows (K-major, chunks along
// k) or its k rows (MN-major, chunks along M/N). The same layouts as CuTe's GMMA::Layout_{K,MN}_*
// atoms tiled K-chunk-last (K-major) or K-first (MN-major); test_sm90_cute.cpp compares the bits
// with cute::GMMA::make_gmma_desc.
// K-major, `rows` rows per chunk: the descriptor of k-block kb (16 elements of k) at tile + the
// byte offset wgmma_kblock_k_major(kb, rows, swizzle).
PA_HD uint32_t wgmma_kblock_k_major(int kb, int rows, int swizzle) {
  const int inner = swizzle ? swizzle / 2 : 8;
  return uint32_t(kb * 16 / inner * rows * 2 * inner + kb * 16 % inner * 2);
}
PA_HD uint32_t wgmma_kblock_mn_major(int kb, int swizzle) {
  return uint32_t(kb * 16 * (swizzle ? swizzle : 16));
}
PA_HD uint64_t wgmma_desc_k_major_bits(uint32_t start, int rows, int swizzle) {
  // swizzled: k of one wgmma lies in one row (LBO unused, 16 by convention); none: the two
  // 8-element halves of k are consecutive chunks
  return wgmma_desc_bits<void>(start, swizzle ? 16u : uint32_t(16 * rows),
                               uint32_t(8 * (swizzle ? swizzle : 16)), swizzle);
}
PA_HD uint64_t wgmma_desc_mn_major_bits(uint32_t start, int k_rows, int swizzle) {
  if (swizzle == 0)  // SBO: the next 8 of M/N (next chunk); LBO: the next 8 rows of k
    return wgmma_desc_bits<void>(start, 128u, uint32_t(16 * k_rows), 0);
  return wgmma_desc_bits<void>(start, uint32_t(k_rows * swizzle), uint32_t(8 * swizzle), swizzle);
}
template <class T>
PA_DEVICE uint64_t wgmma_desc_k_major(sptr<T> start, int rows, int swizzle) {
  return wgmma_desc_k_major_bits(PA_SMEM_ADDR(start), rows, swizzle);
}
template <class T>
PA_DEVICE uint64_t wgmma_desc_mn_major(sptr<T> start, int k_rows, int swizzle) {
  return wgmma_desc_mn_major_bits(PA_SMEM_ADDR(start), k_rows, swizzle);
}

#if defined(__CUDACC__)
template <int N>
struct wgmma_acc {
  static_assert(N >= 8 && N <= 256 && N % 8 == 0, "m64nNk16: N = 8..256 in steps of 8");
  static constexpr int size = N / 2;
  float v[N / 2];
  PA_DEVICE float &operator[](int i) { return v[i]; }
  PA_DEVICE float operator[](int i) const { return v[i]; }
};
struct wgmma_a {
  uint32_t v[4];
  PA_DEVICE uint32_t &operator[](int i) { return v[i]; }
  PA_DEVICE uint32_t operator[](int i) const { return v[i]; }
};
#else
// Emulator: every element access is checked against the wgmmas in flight (emu_sm90.h).
template <int N>
class wgmma_acc {
 public:
  static_assert(N >= 8 && N <= 256 && N % 8 == 0, "m64nNk16: N = 8..256 in steps of 8");
  static constexpr int size = N / 2;
  wgmma_acc() = default;
  wgmma_acc(const wgmma_acc &o) {
    for (int i = 0; i < size; ++i) v_[i] = o[i];
  }
  wgmma_acc &operator=(const wgmma_acc &o) {
    for (int i = 0; i < size; ++i) (*this)[i] = float(o[i]);
    return *this;
  }
  ~wgmma_acc() {
    if (t_.pending) pa_emu::frag_destroyed(t_, __FILE__, __LINE__);
  }
  class ref {  // acc[i]: a read or a write, each checked
   public:
    ref(wgmma_acc &f, int i) : f_(f), i_(i) {}
    operator float() const {
      pa_emu::frag_access(f_.t_, true, false, i_, nullptr, 0);
      return f_.v_[i_];
    }
    ref &operator=(float x) {
      pa_emu::frag_access(f_.t_, true, true, i_, nullptr, 0);
      f_.v_[i_] = x;
      return *this;
    }
    ref &operator=(const ref &o) { return *this = float(o); }
    ref &operator+=(float x) { return *this = float(*this) + x; }
    ref &operator-=(float x) { return *this = float(*this) - x; }
    ref &operator*=(float x) { return *this = float(*this) * x; }
    ref &operator/=(float x) { return *this = float(*this) / x; }

   private:
    wgmma_acc &f_;
    int i_;
  };
  ref operator[](int i) { return ref(*this, i); }
  float operator[](int i) const {
    pa_emu::frag_access(const_cast<pa_emu::FragTrack &>(t_), true, false, i, nullptr, 0);
    return v_[i];
  }
  // for the device layer
  float *raw() { return v_; }
  float *next() { return next_; }
  pa_emu::FragTrack *track() { return &t_; }

 private:
  float v_[N / 2];
  float next_[N / 2];
  pa_emu::FragTrack t_;
};
class wgmma_a {
 public:
  class ref {  // reads are free while a wgmma reads the fragment; writes are not
   public:
    ref(wgmma_a &f, int i) : f_(f), i_(i) {}
    operator uint32_t() const {
      pa_emu::frag_access(f_.t_, false, false, i_, nullptr, 0);
      return f_.v_[i_];
    }
    ref &operator=(uint32_t x) {
      pa_emu::frag_access(f_.t_, false, true, i_, nullptr, 0);
      f_.v_[i_] = x;
      return *this;
    }
    ref &operator=(const ref &o) { return *this = uint32_t(o); }

   private:
    wgmma_a &f_;
    int i_;
  };
  wgmma_a() = default;
  wgmma_a(const wgmma_a &o) { std::memcpy(v_, o.v_, sizeof v_); }
  ~wgmma_a() {
    if (t_.pending) pa_emu::frag_destroyed(t_, __FILE__, __LINE__);
  }
  ref operator[](int i) { return ref(*this, i); }
  uint32_t operator[](int i) const { return v_[i]; }
  const uint32_t *raw() const { return v_; }
  pa_emu::FragTrack *track() { return &t_; }

 private:
  uint32_t v_[4];
  pa_emu::FragTrack t_;
};
#endif

// The A operand (RS form) of k-block kb taken from an m64nN accumulator: columns 16kb..16kb+15 of
// D become k 0..15 of A, rows unchanged. The two layouts line up thread by thread, so no shuffle
// is needed: a[r] = the pair acc[8kb + 2r], acc[8kb + 2r + 1] converted to T (FlashAttention-3's
// P = softmax(S) feeding O += P V). A wgmma_fence must follow before the wgmma that reads it.
template <class T, int N>
PA_DEVICE void wgmma_a_from_acc(wgmma_a &a, const wgmma_acc<N> &acc, int kb) {
  static_assert(std::is_same<T, bf16>::value || std::is_same<T, f16>::value, "bf16 or f16");
  PA_UNROLL
  for (int r = 0; r < 4; ++r) {
    const float lo = acc[8 * kb + 2 * r], hi = acc[8 * kb + 2 * r + 1];
    a[r] = std::is_same<T, bf16>::value ? pack_bf16x2(lo, hi) : pack_f16x2(lo, hi);
  }
}

// Coordinates of accumulator element i of warpgroup thread t (0..127): row in 0..63, column.
PA_HD int wgmma_acc_row(int t, int i) { return 16 * (t / 32) + (t % 32) / 4 + 8 * ((i / 2) % 2); }
PA_HD int wgmma_acc_col(int t, int i) { return 8 * (i / 4) + 2 * (t % 4) + (i % 2); }

#if defined(__CUDACC__)
PA_SM90_FN void wgmma_fence() PA_SM90_BODY(asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");)
PA_SM90_FN void wgmma_commit() PA_SM90_BODY(asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");)
template <int N>
PA_SM90_FN void wgmma_wait() PA_SM90_BODY(
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");)

namespace detail {
#include "sm90_wgmma.inc"
#define PA_WGMMA_SPLIT(a, b) a, b
#define PA_WGMMA_EMIT_SS(N, DT, PRE, POST)                                                       \
  asm volatile("{\n.reg .pred p;\n" PRE "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." DT "." DT \
               " " PA_WGMMA_D##N POST "}\n"                                                       \
               : PA_WGMMA_OUT##N(d)                                                               \
               : "l"(adesc), "l"(bdesc), "r"(scale_d), "n"(TA), "n"(TB))
#define PA_WGMMA_EMIT_RS(N, DT, PRE, POST)                                                       \
  asm volatile("{\n.reg .pred p;\n" PRE "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." DT "." DT \
               " " PA_WGMMA_D##N POST "}\n"                                                       \
               : PA_WGMMA_OUT##N(d)                                                               \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(bdesc), "r"(scale_d), "n"(TB))
#define PA_WGMMA_CALL(M, ...) M(__VA_ARGS__)
template <int N>
struct wgmma_ptx;
#define PA_WGMMA_PTX(N)                                                                         \
  template <>                                                                                   \
  struct wgmma_ptx<N> {                                                                         \
    template <bool BF16, int TA, int TB>                                                        \
    PA_SM90_FN static void ss(float *d, uint64_t adesc, uint64_t bdesc, int scale_d)            \
        PA_SM90_BODY(if constexpr (BF16) PA_WGMMA_CALL(PA_WGMMA_EMIT_SS, N, "bf16", PA_WGMMA_SS##N); \
                     else PA_WGMMA_CALL(PA_WGMMA_EMIT_SS, N, "f16", PA_WGMMA_SS##N);)           \
    template <bool BF16, int TB>                                                                \
    PA_SM90_FN static void rs(float *d, const uint32_t *a, uint64_t bdesc, int scale_d)         \
        PA_SM90_BODY(if constexpr (BF16) PA_WGMMA_CALL(PA_WGMMA_EMIT_RS, N, "bf16", PA_WGMMA_RS##N); \
                     else PA_WGMMA_CALL(PA_WGMMA_EMIT_RS, N, "f16", PA_WGMMA_RS##N);)           \
  };
PA_WGMMA_PTX(8) PA_WGMMA_PTX(16) PA_WGMMA_PTX(24) PA_WGMMA_PTX(32) PA_WGMMA_PTX(40)
PA_WGMMA_PTX(48) PA_WGMMA_PTX(56) PA_WGMMA_PTX(64) PA_WGMMA_PTX(72) PA_WGMMA_PTX(80)
PA_WGMMA_PTX(88) PA_WGMMA_PTX(96) PA_WGMMA_PTX(104) PA_WGMMA_PTX(112) PA_WGMMA_PTX(120)
PA_WGMMA_PTX(128) PA_WGMMA_PTX(136) PA_WGMMA_PTX(144) PA_WGMMA_PTX(152) PA_WGMMA_PTX(160)
PA_WGMMA_PTX(168) PA_WGMMA_PTX(176) PA_WGMMA_PTX(184) PA_WGMMA_PTX(192) PA_WGMMA_PTX(200)
PA_WGMMA_PTX(208) PA_WGMMA_PTX(216) PA_WGMMA_PTX(224) PA_WGMMA_PTX(232) PA_WGMMA_PTX(240)
PA_WGMMA_PTX(248) PA_WGMMA_PTX(256)
}  // namespace detail

// D (64 x N, fp32) = A (64 x 16) * B (16 x N) + (scale_d ? D : 0); A and B in shared memory.
// TransA/TransB = 0: K-major operands (A row-major, B stored N x K); 1: MN-major.
template <int N, class T, int TransA = 0, int TransB = 0>
PA_DEVICE void wgmma_ss(wgmma_acc<N> &acc, uint64_t adesc, uint64_t bdesc, bool scale_d) {
  static_assert(std::is_same<T, bf16>::value || std::is_same<T, f16>::value, "bf16 or f16");
  detail::wgmma_ptx<N>::template ss<std::is_same<T, bf16>::value, TransA, TransB>(
      acc.v, adesc, bdesc, int(scale_d));
}
// The same with A from registers (wgmma_a, the layout at the top of this file).
template <int N, class T, int TransB = 0>
PA_DEVICE void wgmma_rs(wgmma_acc<N> &acc, const wgmma_a &a, uint64_t bdesc, bool scale_d) {
  static_assert(std::is_same<T, bf16>::value || std::is_same<T, f16>::value, "bf16 or f16");
  detail::wgmma_ptx<N>::template rs<std::is_same<T, bf16>::value, TransB>(acc.v, a.v, bdesc,
                                                                         int(scale_d));
}
#else
inline void wgmma_fence() { pa_emu::wgmma_fence(); }
inline void wgmma_commit() { pa_emu::wgmma_commit(); }
template <int N>
inline void wgmma_wait(PA_SITE) {
  pa_emu::wgmma_wait(N, file, line);
}
template <int N, class T, int TransA = 0, int TransB = 0>
inline void wgmma_ss(wgmma_acc<N> &acc, uint64_t adesc, uint64_t bdesc, bool scale_d, PA_SITE) {
  static_assert(std::is_same<T, bf16>::value || std::is_same<T, f16>::value, "bf16 or f16");
  pa_emu::WgmmaArgs w;
  w.n = N;
  w.bf16 = std::is_same<T, bf16>::value;
  w.adesc = adesc;
  w.bdesc = bdesc;
  w.acc = acc.raw();
  w.acc_next = acc.next();
  w.acctrack = acc.track();
  w.scale_d = scale_d;
  w.trans_a = TransA;
  w.trans_b = TransB;
  pa_emu::wgmma(w, file, line);
}
template <int N, class T, int TransB = 0>
inline void wgmma_rs(wgmma_acc<N> &acc, wgmma_a &a, uint64_t bdesc, bool scale_d, PA_SITE) {
  static_assert(std::is_same<T, bf16>::value || std::is_same<T, f16>::value, "bf16 or f16");
  pa_emu::WgmmaArgs w;
  w.n = N;
  w.bf16 = std::is_same<T, bf16>::value;
  w.a = a.raw();
  w.atrack = a.track();
  w.bdesc = bdesc;
  w.acc = acc.raw();
  w.acc_next = acc.next();
  w.acctrack = acc.track();
  w.scale_d = scale_d;
  w.trans_b = TransB;
  pa_emu::wgmma(w, file, line);
}
#endif

// =================================================================================================
// Fences, named barriers, register reallocation, election
// =================================================================================================
#if defined(__CUDACC__)
// Orders this thread's generic-proxy shared-memory accesses before later async-proxy ones (a
// wgmma or TMA store reading what threads wrote).
PA_SM90_FN void fence_proxy_async() PA_SM90_BODY(
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");)
// bar.sync / bar.arrive on barrier id (1..15; 0 is __syncthreads') with `threads` (multiple of 32).
PA_SM90_FN void named_barrier_sync(int id, int threads) PA_SM90_BODY(
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");)
PA_SM90_FN void named_barrier_arrive(int id, int threads) PA_SM90_BODY(
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");)
template <int R>
PA_SM90_FN void setmaxnreg_inc() PA_SM90_BODY(
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(R));)
template <int R>
PA_SM90_FN void setmaxnreg_dec() PA_SM90_BODY(
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(R));)
// True in exactly one lane of the (full, converged) warp: the lowest.
PA_SM90_FN bool elect_one_sync() PA_SM90_BODY(
    uint32_t pred = 0;
    asm volatile("{\n.reg .pred p;\nelect.sync _|p, %1;\nselp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(pred) : "r"(0xffffffffu));
    return pred != 0;)
#else
inline void fence_proxy_async() { pa_emu::fence_proxy_async(); }
inline void named_barrier_sync(int id, int threads, PA_SITE) {
  pa_emu::named_barrier(id, threads, true, file, line);
}
inline void named_barrier_arrive(int id, int threads, PA_SITE) {
  pa_emu::named_barrier(id, threads, false, file, line);
}
template <int R>
inline void setmaxnreg_inc(PA_SITE) {
  pa_emu::setmaxnreg(R, true, file, line);
}
template <int R>
inline void setmaxnreg_dec(PA_SITE) {
  pa_emu::setmaxnreg(R, false, file, line);
}
// elect.sync: the lowest lane of the full warp (a warp collective: every lane must call it).
inline bool elect_one_sync(PA_SITE) {
  const unsigned ballot = pa_emu::vote(pa_emu::VoteMode::Ballot, 0xffffffffu, 1, file, line);
  return (threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) % 32 ==
         unsigned(__builtin_ctz(ballot));
}
#endif

}  // namespace pa

#endif  // POSATTN_SM90_CUH
