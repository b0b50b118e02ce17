// device.cuh -- the device layer: everything a posattn kernel uses beyond plain C++.
//
// A kernel is written ONCE against this header. Compiled by nvcc (__CUDACC__) every name below is
// a CUDA built-in, an intrinsic or inline PTX. Compiled by the host C++ compiler the same names
// call the SIMT emulator (kernels/emu/), which runs the kernel on the CPU one fiber per thread and
// checks what a GPU would not forgive (see docs/emulator.md).
//
// API (stable; extend, do not change):
//   qualifiers      __global__ __device__ __host__ __forceinline__ __launch_bounds__(...)
//                   __align__(n); PA_DEVICE = __device__ __forceinline__; PA_UNROLL (= #pragma unroll)
//   indices         threadIdx blockIdx blockDim gridDim (.x .y .z), warpSize, dim3
//   vector types    float2 float4 int2 int4 uint2 uint4 (host definitions under the emulator)
//   global memory   pa::gptr<T>: a kernel's pointer into global memory. Under nvcc it IS T*; under
//                   the emulator a checked pointer that knows the launch buffer it points into.
//                   Host side: pa::make_gptr(ptr, count, "name") builds the kernel argument.
//                   Use p[i], *p, p + n, pa::load(p), pa::store(p, v) (load/store for structs
//                   such as float4: the emulator's p[i] is a proxy without members).
//   shared memory   pa::sptr<T>: same for shared memory.
//                   PA_SHARED(T, name, N): declares `pa::sptr<T> name` to a static __shared__
//                   array of N elements (16-byte aligned), inside a kernel or device function.
//                   pa::dynamic_shared<T>(): the launch's dynamic shared memory (16-byte aligned).
//                   pa::ptr_cast<U>(p): reinterpret a gptr/sptr as pointing to U.
//   barriers        __syncthreads(), __syncwarp(mask = full)
//   warp shuffles   __shfl_sync, __shfl_up_sync, __shfl_down_sync, __shfl_xor_sync (4- and 8-byte
//                   types, optional width); votes __all_sync, __any_sync, __ballot_sync
//   tensor cores    pa::mma_m16n8k16_bf16 / _f16 (d, a, b, c): D = A*B + C, fp32 accumulators
//                   pa::ldmatrix_x1/_x2/_x4 (+ _trans) from a per-lane shared row address
//   async copies    pa::cp_async_16(sptr dst, gptr src), pa::cp_async_16_zfill(dst, src, valid),
//                   pa::cp_async_commit(), pa::cp_async_wait<N>()
//   atomics         pa::atomic_add(gptr<T>, v) (float, int, unsigned), pa::atomic_max (int,
//                   unsigned), pa::atomic_cas (int, unsigned)
//   math            pa::exp2_approx(x) (ex2.approx), pa::fast_exp(x); libm names (expf, exp2f,
//                   logf, sqrtf, tanhf, sinf, cosf, fmaf, fminf, fmaxf, fabsf) work on both sides;
//                   pa::min, pa::max
//   16-bit floats   pa::bf16, pa::f16 (storage: uint16_t bits); pa::to_float(x),
//                   pa::from_float<T>(float) (round to nearest even), pa::pack_bf16x2(lo, hi),
//                   pa::pack_f16x2(lo, hi), pa::unpack_bf16x2(u), pa::unpack_f16x2(u),
//                   pa::mul_f16x2(a, b), pa::mul_bf16x2(a, b) (packed products, rounded once)
//   bytes           pa::prmt(a, b, sel): PTX prmt.b32 (default mode: sign replication included)
//   launching       pa::launch(name, kernel, grid, block, dyn_smem_bytes, stream, args...)
//                   -> pa::launch_status {ok, msg}: the one call site for nvcc and the emulator.
//                   nvcc: kernel<<<...>>> on the stream (cudaStream_t given as void*); emulator:
//                   runs the whole grid synchronously and reports the first kernel bug.
//
// Register fragments follow the PTX ISA (see the sections cited at each operation): 16-bit pairs
// are packed into uint32_t with the lower column index in the low half.
#ifndef POSATTN_DEVICE_CUH
#define POSATTN_DEVICE_CUH

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <type_traits>

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#define PA_DEVICE __device__ __forceinline__
#define PA_HD __host__ __device__ __forceinline__
#define PA_UNROLL _Pragma("unroll")
#else
#include "../emu/emu.h"
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define PA_DEVICE inline
#define PA_HD inline
#define PA_UNROLL
#define threadIdx (::pa_emu::this_thread().thread_idx)
#define blockIdx (::pa_emu::this_thread().block_idx)
#define blockDim (::pa_emu::this_thread().block_dim)
#define gridDim (::pa_emu::this_thread().grid_dim)
constexpr int warpSize = 32;
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct __align__(8) float2 { float x, y; };
struct __align__(16) float4 { float x, y, z, w; };
struct __align__(8) int2 { int x, y; };
struct __align__(16) int4 { int x, y, z, w; };
struct __align__(8) uint2 { unsigned x, y; };
struct __align__(16) uint4 { unsigned x, y, z, w; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
#endif

namespace pa {

template <class T>
PA_HD T min(T a, T b) { return b < a ? b : a; }
template <class T>
PA_HD T max(T a, T b) { return a < b ? b : a; }

// =================================================================================================
// Pointers into global and shared memory
// =================================================================================================
#if defined(__CUDACC__)
template <class T>
using gptr = T *;
template <class T>
using sptr = T *;
template <class T>
inline gptr<T> make_gptr(T *p, size_t /*count*/, const char * /*name*/) { return p; }
template <class U, class T>
PA_HD U *ptr_cast(T *p) { return reinterpret_cast<U *>(p); }
template <class T>
PA_DEVICE std::remove_const_t<T> load(T *p) { return *p; }
template <class T, class V>
PA_DEVICE void store(T *p, const V &v) { *p = v; }

#define PA_SHARED(T, name, N)                  \
  __shared__ __align__(16) T name##_pa_arr[N]; \
  ::pa::sptr<T> name = name##_pa_arr

template <class T>
PA_DEVICE sptr<T> dynamic_shared() {
  extern __shared__ __align__(16) unsigned char pa_dynamic_smem_[];
  return reinterpret_cast<T *>(pa_dynamic_smem_);
}
#else
namespace detail {
using pa_emu::Region;
using pa_emu::Space;

// What p[i] and *p return under the emulator: every read and write is checked.
template <class T, Space S>
class ref {
 public:
  using value_type = std::remove_const_t<T>;
  ref(T *p, const Region &r) : p_(p), r_(r) {}
  operator value_type() const {
    pa_emu::check_access(S, r_, p_, sizeof(T), alignof(T), false);
    return *p_;
  }
  const ref &operator=(const value_type &v) const {
    static_assert(!std::is_const<T>::value, "store through a pointer to const");
    pa_emu::check_access(S, r_, p_, sizeof(T), alignof(T), true);
    *p_ = v;
    return *this;
  }
  const ref &operator=(const ref &o) const { return *this = static_cast<value_type>(o); }
  template <class V>
  const ref &operator+=(const V &v) const { return *this = static_cast<value_type>(*this) + v; }
  template <class V>
  const ref &operator-=(const V &v) const { return *this = static_cast<value_type>(*this) - v; }
  template <class V>
  const ref &operator*=(const V &v) const { return *this = static_cast<value_type>(*this) * v; }
  template <class V>
  const ref &operator/=(const V &v) const { return *this = static_cast<value_type>(*this) / v; }
  template <class V>
  const ref &operator|=(const V &v) const { return *this = static_cast<value_type>(*this) | v; }

 private:
  T *p_;
  Region r_;
};

// A fat pointer: the raw address plus the region (buffer or shared array) it may touch.
template <class T, Space S>
class cptr {
 public:
  using element_type = T;
  cptr() : p_(nullptr), r_{nullptr, 0, "null"} {}
  cptr(std::nullptr_t) : cptr() {}
  cptr(T *p, const Region &r) : p_(p), r_(r) {}
  template <class U, class = std::enable_if_t<std::is_convertible<U *, T *>::value>>
  cptr(const cptr<U, S> &o) : p_(o.raw()), r_(o.region()) {}

  T *raw() const { return p_; }
  const Region &region() const { return r_; }
  explicit operator bool() const { return p_ != nullptr; }

  ref<T, S> operator*() const { return ref<T, S>(p_, r_); }
  ref<T, S> operator[](ptrdiff_t i) const { return ref<T, S>(p_ + i, r_); }
  cptr operator+(ptrdiff_t n) const { return cptr(p_ + n, r_); }
  cptr operator-(ptrdiff_t n) const { return cptr(p_ - n, r_); }
  ptrdiff_t operator-(const cptr &o) const { return p_ - o.p_; }
  cptr &operator+=(ptrdiff_t n) { p_ += n; return *this; }
  cptr &operator-=(ptrdiff_t n) { p_ -= n; return *this; }
  cptr &operator++() { ++p_; return *this; }
  cptr &operator--() { --p_; return *this; }
  bool operator==(const cptr &o) const { return p_ == o.p_; }
  bool operator!=(const cptr &o) const { return p_ != o.p_; }
  bool operator<(const cptr &o) const { return p_ < o.p_; }

 private:
  T *p_;
  Region r_;
};
template <class T, Space S>
cptr<T, S> operator+(ptrdiff_t n, const cptr<T, S> &p) { return p + n; }
}  // namespace detail

template <class T>
using gptr = detail::cptr<T, pa_emu::Space::Global>;
template <class T>
using sptr = detail::cptr<T, pa_emu::Space::Shared>;

// Host side: the kernel argument for a buffer of `count` elements (NULL gives a null gptr).
template <class T>
inline gptr<T> make_gptr(T *p, size_t count, const char *name) {
  if (p == nullptr) return gptr<T>();
  using C = std::conditional_t<std::is_const<T>::value, const char, char>;
  return gptr<T>(p, pa_emu::Region{const_cast<char *>(reinterpret_cast<C *>(p)),
                                    count * sizeof(T), name});
}
template <class U, class T, pa_emu::Space S>
inline detail::cptr<U, S> ptr_cast(const detail::cptr<T, S> &p) {
  return detail::cptr<U, S>(reinterpret_cast<U *>(p.raw()), p.region());
}
template <class T, pa_emu::Space S>
inline std::remove_const_t<T> load(const detail::cptr<T, S> &p) { return *p; }
template <class T, pa_emu::Space S, class V>
inline void store(const detail::cptr<T, S> &p, const V &v) { *p = v; }

#define PA_SHARED(T, name, N)                                                         \
  static const char name##_pa_tag = 0;                                                \
  ::pa::sptr<T> name = ::pa::detail::shared_array<T>(&name##_pa_tag, (N), #name)
namespace detail {
template <class T>
inline sptr<T> shared_array(const void *tag, size_t n, const char *name) {
  Region r = pa_emu::shared_static(tag, n * sizeof(T), name);
  return sptr<T>(reinterpret_cast<T *>(r.base), r);
}
}  // namespace detail
template <class T>
inline sptr<T> dynamic_shared() {
  pa_emu::Region r = pa_emu::shared_dynamic();
  return sptr<T>(reinterpret_cast<T *>(r.base), r);
}
#endif

// =================================================================================================
// 16-bit floating point storage types
// =================================================================================================
struct bf16 {
  uint16_t bits;
};
struct f16 {
  uint16_t bits;
};

#if defined(__CUDACC__)
PA_DEVICE float to_float(bf16 x) { return __bfloat162float(__ushort_as_bfloat16(x.bits)); }
PA_DEVICE float to_float(f16 x) { return __half2float(__ushort_as_half(x.bits)); }
PA_DEVICE bf16 bf16_from_float(float x) { return bf16{__bfloat16_as_ushort(__float2bfloat16_rn(x))}; }
PA_DEVICE f16 f16_from_float(float x) { return f16{__half_as_ushort(__float2half_rn(x))}; }
#else
inline float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float to_float(bf16 x) { return bits_to_float(uint32_t(x.bits) << 16); }
inline bf16 bf16_from_float(float x) {
  uint32_t u = float_to_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{uint16_t((u >> 16) | 0x40)};  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
  return bf16{uint16_t(u >> 16)};
}
inline float to_float(f16 x) {
  uint32_t sign = uint32_t(x.bits & 0x8000u) << 16, e = (x.bits >> 10) & 0x1fu, m = x.bits & 0x3ffu;
  if (e == 0x1f) return bits_to_float(sign | 0x7f800000u | (m << 13));
  if (e == 0) return (sign ? -1.0f : 1.0f) * std::ldexp(float(m), -24);  // zero and subnormals
  return bits_to_float(sign | ((e + 112u) << 23) | (m << 13));
}
inline f16 f16_from_float(float x) {
  uint32_t u = float_to_bits(x), sign = (u >> 16) & 0x8000u;
  float a = std::fabs(x);
  if (std::isnan(x)) return f16{uint16_t(sign | 0x7e00u)};
  if (a >= 65520.0f) return f16{uint16_t(sign | 0x7c00u)};  // rounds to inf
  if (a < 6.103515625e-05f) {  // subnormal range: a multiple of 2^-24, rounded to nearest even
    float q = std::nearbyint(a * 16777216.0f);  // default rounding mode: to nearest even
    return f16{uint16_t(sign | uint32_t(q))};
  }
  uint32_t au = float_to_bits(a);
  uint32_t r = au + 0xfffu + ((au >> 13) & 1u);  // round the 13 dropped mantissa bits to even
  return f16{uint16_t(sign | (((r >> 23) - 112u) << 10) | ((r >> 13) & 0x3ffu))};
}
#endif
PA_HD float to_float(float x) { return x; }
template <class T>
PA_DEVICE T from_float(float x);
template <>
PA_DEVICE float from_float<float>(float x) { return x; }
template <>
PA_DEVICE bf16 from_float<bf16>(float x) { return bf16_from_float(x); }
template <>
PA_DEVICE f16 from_float<f16>(float x) { return f16_from_float(x); }

PA_DEVICE uint32_t pack_bf16x2(float lo, float hi) {
  return uint32_t(bf16_from_float(lo).bits) | (uint32_t(bf16_from_float(hi).bits) << 16);
}
PA_DEVICE uint32_t pack_f16x2(float lo, float hi) {
  return uint32_t(f16_from_float(lo).bits) | (uint32_t(f16_from_float(hi).bits) << 16);
}
PA_DEVICE float2 unpack_bf16x2(uint32_t u) {
  return make_float2(to_float(bf16{uint16_t(u & 0xffffu)}), to_float(bf16{uint16_t(u >> 16)}));
}
PA_DEVICE float2 unpack_f16x2(uint32_t u) {
  return make_float2(to_float(f16{uint16_t(u & 0xffffu)}), to_float(f16{uint16_t(u >> 16)}));
}

// PTX prmt.b32, default mode (PTX ISA, "prmt"): byte i of the result is byte (nibble i of sel) & 7
// of the 8 bytes {b, a} (a = bytes 0-3), or, when that nibble's bit 3 is set, that byte's sign
// bit replicated (0x00 / 0xff).
#if defined(__CUDACC__)
PA_DEVICE uint32_t prmt(uint32_t a, uint32_t b, uint32_t sel) {
  uint32_t d;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(sel));
  return d;
}
#else
inline uint32_t prmt(uint32_t a, uint32_t b, uint32_t sel) {
  const uint64_t bytes = uint64_t(a) | (uint64_t(b) << 32);
  uint32_t d = 0;
  for (int i = 0; i < 4; ++i) {
    const uint32_t n = (sel >> (4 * i)) & 0xfu, byte = uint32_t(bytes >> (8 * (n & 7u))) & 0xffu;
    d |= ((n & 8u) ? ((byte & 0x80u) ? 0xffu : 0u) : byte) << (8 * i);
  }
  return d;
}
#endif

// Packed products of two 16-bit pairs, each lane rounded once to nearest even, subnormals kept
// (one HMUL2 / HFMA2.BF16; bf16 as fma with -0 since mul.bf16x2 needs sm_90). The emulator rounds
// the fp32 product, which is exact for any two f16 and any two bf16 normals: equal to the GPU
// whenever the fp32 product is exact (every use: scaling by powers of two).
#if defined(__CUDACC__)
PA_DEVICE uint32_t mul_f16x2(uint32_t a, uint32_t b) {
  uint32_t d;
  asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
  return d;
}
PA_DEVICE uint32_t mul_bf16x2(uint32_t a, uint32_t b) {
  uint32_t d;
  asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(0x80008000u));
  return d;
}
#else
inline uint32_t mul_f16x2(uint32_t a, uint32_t b) {
  const float2 x = unpack_f16x2(a), y = unpack_f16x2(b);
  return pack_f16x2(x.x * y.x, x.y * y.y);
}
inline uint32_t mul_bf16x2(uint32_t a, uint32_t b) {
  const float2 x = unpack_bf16x2(a), y = unpack_bf16x2(b);
  return pack_bf16x2(x.x * y.x, x.y * y.y);
}
#endif

// =================================================================================================
// Math
// =================================================================================================
PA_DEVICE float exp2_approx(float x) {
#if defined(__CUDACC__)
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#else
  return std::exp2(x);
#endif
}
PA_DEVICE float fast_exp(float x) { return exp2_approx(x * 1.4426950408889634f); }

// =================================================================================================
// Tensor cores: mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32
// PTX ISA, "Warp Level Matrix Multiply-Accumulate Instructions" > "Matrix Fragments for
// mma.m16n8k16 with floating point type". With g = laneid >> 2 and t = laneid % 4:
//   A (16x16, row): a[0] = A[g][2t..2t+1],   a[1] = A[g+8][2t..2t+1],
//                   a[2] = A[g][2t+8..2t+9], a[3] = A[g+8][2t+8..2t+9]
//   B (16x8, col):  b[0] = B[2t..2t+1][g],   b[1] = B[2t+8..2t+9][g]
//   C, D (16x8):    c[0..1] = C[g][2t..2t+1], c[2..3] = C[g+8][2t..2t+1]
// Every lane of the warp must execute it (.aligned). d may be the same array as c.
// =================================================================================================
PA_DEVICE void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                 const float (&c)[4]
#if !defined(__CUDACC__)
                                 , const char *file = __builtin_FILE(), int line = __builtin_LINE()
#endif
) {
#if defined(__CUDACC__)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
        "f"(c[2]), "f"(c[3]));
#else
  pa_emu::mma_m16n8k16(pa_emu::MmaType::BF16, d, a, b, c, file, line);
#endif
}
PA_DEVICE void mma_m16n8k16_f16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                const float (&c)[4]
#if !defined(__CUDACC__)
                                , const char *file = __builtin_FILE(), int line = __builtin_LINE()
#endif
) {
#if defined(__CUDACC__)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
        "f"(c[2]), "f"(c[3]));
#else
  pa_emu::mma_m16n8k16(pa_emu::MmaType::F16, d, a, b, c, file, line);
#endif
}

// =================================================================================================
// ldmatrix.sync.aligned.m8n8.{x1,x2,x4}{,.trans}.shared.b16
// PTX ISA, "Warp-level matrix load instruction: ldmatrix". Lanes 8i..8i+7 give the addresses of
// rows 0..7 of matrix i (16 contiguous bytes each, 16-byte aligned); the other lanes' addresses
// are ignored. r[i] of lane l holds row l/4, columns 2(l%4) and 2(l%4)+1 of matrix i; with
// .trans it holds column l/4, rows 2(l%4) and 2(l%4)+1 (the matrix transposed).
// =================================================================================================
#if defined(__CUDACC__)
#define PA_LDSM_ADDR(p) static_cast<unsigned>(__cvta_generic_to_shared(p))
template <class T>
PA_DEVICE uint32_t ldmatrix_x1(sptr<T> row) {
  uint32_t r;
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r) : "r"(PA_LDSM_ADDR(row)));
  return r;
}
template <class T>
PA_DEVICE uint32_t ldmatrix_x1_trans(sptr<T> row) {
  uint32_t r;
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n" : "=r"(r) : "r"(PA_LDSM_ADDR(row)));
  return r;
}
template <class T>
PA_DEVICE void ldmatrix_x2(uint32_t (&r)[2], sptr<T> row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1]) : "r"(PA_LDSM_ADDR(row)));
}
template <class T>
PA_DEVICE void ldmatrix_x2_trans(uint32_t (&r)[2], sptr<T> row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1]) : "r"(PA_LDSM_ADDR(row)));
}
template <class T>
PA_DEVICE void ldmatrix_x4(uint32_t (&r)[4], sptr<T> row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(PA_LDSM_ADDR(row)));
}
template <class T>
PA_DEVICE void ldmatrix_x4_trans(uint32_t (&r)[4], sptr<T> row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(PA_LDSM_ADDR(row)));
}
#else
#define PA_SITE const char *file = __builtin_FILE(), int line = __builtin_LINE()
template <class T>
inline uint32_t ldmatrix_x1(sptr<T> row, PA_SITE) {
  uint32_t r;
  pa_emu::ldmatrix(1, false, &r, row.raw(), row.region(), file, line);
  return r;
}
template <class T>
inline uint32_t ldmatrix_x1_trans(sptr<T> row, PA_SITE) {
  uint32_t r;
  pa_emu::ldmatrix(1, true, &r, row.raw(), row.region(), file, line);
  return r;
}
template <class T>
inline void ldmatrix_x2(uint32_t (&r)[2], sptr<T> row, PA_SITE) {
  pa_emu::ldmatrix(2, false, r, row.raw(), row.region(), file, line);
}
template <class T>
inline void ldmatrix_x2_trans(uint32_t (&r)[2], sptr<T> row, PA_SITE) {
  pa_emu::ldmatrix(2, true, r, row.raw(), row.region(), file, line);
}
template <class T>
inline void ldmatrix_x4(uint32_t (&r)[4], sptr<T> row, PA_SITE) {
  pa_emu::ldmatrix(4, false, r, row.raw(), row.region(), file, line);
}
template <class T>
inline void ldmatrix_x4_trans(uint32_t (&r)[4], sptr<T> row, PA_SITE) {
  pa_emu::ldmatrix(4, true, r, row.raw(), row.region(), file, line);
}
#endif

// =================================================================================================
// cp.async (PTX ISA, "Data Movement and Conversion Instructions: cp.async", cp.async.commit_group,
// cp.async.wait_group): 16-byte global -> shared copies that complete asynchronously. Copies
// issued since the last commit form one group; wait<N> returns when at most N of this thread's
// groups are still pending. Reading the destination before the wait is a bug (the emulator
// performs the copy only at the wait, so such a read sees stale data). zfill with valid = false
// writes 16 zero bytes and reads nothing (src-size 0).
// =================================================================================================
#if defined(__CUDACC__)
template <class T, class U>
PA_DEVICE void cp_async_16(sptr<T> dst, gptr<U> src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(PA_LDSM_ADDR(dst)), "l"(src));
}
template <class T, class U>
PA_DEVICE void cp_async_16_zfill(sptr<T> dst, gptr<U> src, bool valid) {
  int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(PA_LDSM_ADDR(dst)), "l"(src),
               "r"(n));
}
PA_DEVICE void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
PA_DEVICE void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
#else
template <class T, class U>
inline void cp_async_16(sptr<T> dst, gptr<U> src, PA_SITE) {
  pa_emu::cp_async16(dst.raw(), dst.region(), src.raw(), src.region(), true, file, line);
}
template <class T, class U>
inline void cp_async_16_zfill(sptr<T> dst, gptr<U> src, bool valid, PA_SITE) {
  pa_emu::cp_async16(dst.raw(), dst.region(), src.raw(), src.region(), valid, file, line);
}
inline void cp_async_commit() { pa_emu::cp_async_commit(); }
template <int N>
inline void cp_async_wait(PA_SITE) {
  pa_emu::cp_async_wait(N, file, line);
}
#endif

// =================================================================================================
// Atomics on global memory (blocks and fibers never run concurrently in the emulator, so a
// checked read-modify-write is atomic there).
// =================================================================================================
#if defined(__CUDACC__)
template <class T>
PA_DEVICE T atomic_add(gptr<T> p, T v) { return atomicAdd(p, v); }
template <class T>
PA_DEVICE T atomic_max(gptr<T> p, T v) { return atomicMax(p, v); }
template <class T>
PA_DEVICE T atomic_cas(gptr<T> p, T expected, T desired) { return atomicCAS(p, expected, desired); }
#else
template <class T>
inline T atomic_add(gptr<T> p, T v) {
  T old = *p;
  *p = T(old + v);
  return old;
}
template <class T>
inline T atomic_max(gptr<T> p, T v) {
  T old = *p;
  *p = old < v ? v : old;
  return old;
}
template <class T>
inline T atomic_cas(gptr<T> p, T expected, T desired) {
  T old = *p;
  if (old == expected) *p = desired;
  return old;
}
#endif

// =================================================================================================
// Launch: one call site for nvcc and the emulator.
// =================================================================================================
struct launch_status {
  bool ok;
  char msg[768];
  int cuda_error = 0;  // the cudaError_t of a failed nvcc launch; 0 otherwise (always on the EMU)
};

#if defined(__CUDACC__)
template <class... P, class... A>
launch_status launch(const char *name, void (*kernel)(P...), dim3 grid, dim3 block,
                     size_t dyn_smem, void *stream, A &&...args) {
  launch_status st{true, {0}};
  if (dyn_smem > 48 * 1024) {
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(dyn_smem));
    if (e != cudaSuccess) {
      st.ok = false;
      st.cuda_error = static_cast<int>(e);
      std::snprintf(st.msg, sizeof st.msg, "kernel %s: %zu bytes of dynamic shared memory: %s (%s)",
                    name, dyn_smem, cudaGetErrorString(e), cudaGetErrorName(e));
      return st;
    }
  }
  kernel<<<grid, block, dyn_smem, static_cast<cudaStream_t>(stream)>>>(static_cast<A &&>(args)...);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) {
    st.ok = false;
    st.cuda_error = static_cast<int>(e);
    std::snprintf(st.msg, sizeof st.msg, "kernel %s: launch failed: %s (%s)", name,
                  cudaGetErrorString(e), cudaGetErrorName(e));
  }
  return st;
}
#else
template <class... P, class... A>
launch_status launch(const char *name, void (*kernel)(P...), dim3 grid, dim3 block,
                     size_t dyn_smem, void * /*stream*/, A &&...args) {
  pa_emu::Status s = pa_emu::launch(name, kernel, pa_emu::Dim3{grid.x, grid.y, grid.z},
                                    pa_emu::Dim3{block.x, block.y, block.z}, dyn_smem,
                                    static_cast<A &&>(args)...);
  launch_status st{s.ok, {0}};
  std::memcpy(st.msg, s.msg, sizeof st.msg);
  return st;
}
#endif

}  // namespace pa

// =================================================================================================
// Barriers, shuffles and votes under the emulator (nvcc has them built in).
// __syncthreads: PTX bar.sync 0; shuffles: shfl.sync (PTX ISA "shfl.sync"): lane l of a segment of
// `width` lanes reads lane src (idx), l - d (up; itself when l - d leaves the segment), l + d
// (down; same), l ^ m (xor; itself when outside the segment). Every lane named in mask must
// execute the same call.
// =================================================================================================
#if !defined(__CUDACC__)
inline void __syncthreads(PA_SITE) { pa_emu::barrier(file, line); }
inline void __syncwarp(unsigned mask = 0xffffffffu, PA_SITE) { pa_emu::syncwarp(mask, file, line); }

namespace pa {
namespace detail {
template <class T>
inline T shfl(pa_emu::ShflMode m, unsigned mask, T v, int arg, int width, const char *file,
              int line) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "shuffles move 4- or 8-byte values");
  uint32_t w[sizeof(T) / 4];
  std::memcpy(w, &v, sizeof(T));
  for (uint32_t &x : w) x = pa_emu::shfl(m, mask, x, arg, width, file, line);
  std::memcpy(&v, w, sizeof(T));
  return v;
}
}  // namespace detail
}  // namespace pa
template <class T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32, PA_SITE) {
  return pa::detail::shfl(pa_emu::ShflMode::Idx, mask, v, src, width, file, line);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32, PA_SITE) {
  return pa::detail::shfl(pa_emu::ShflMode::Up, mask, v, int(delta), width, file, line);
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32, PA_SITE) {
  return pa::detail::shfl(pa_emu::ShflMode::Down, mask, v, int(delta), width, file, line);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32, PA_SITE) {
  return pa::detail::shfl(pa_emu::ShflMode::Xor, mask, v, lane_mask, width, file, line);
}
inline int __all_sync(unsigned mask, int pred, PA_SITE) {
  return int(pa_emu::vote(pa_emu::VoteMode::All, mask, pred, file, line));
}
inline int __any_sync(unsigned mask, int pred, PA_SITE) {
  return int(pa_emu::vote(pa_emu::VoteMode::Any, mask, pred, file, line));
}
inline unsigned __ballot_sync(unsigned mask, int pred, PA_SITE) {
  return pa_emu::vote(pa_emu::VoteMode::Ballot, mask, pred, file, line);
}
#endif

#endif  // POSATTN_DEVICE_CUH
