// fuzz_common.hpp -- what the fuzz targets in tests/fuzz share.
//
// A target decodes its input bytes into a plain struct (a "case") with one field visitor,
// fields(io, case), used both to read fuzzer bytes (ByteIn: fixed-size little-endian fields from
// the front, zeros once the input is exhausted, so every input decodes) and to write the named
// seed inputs (ByteOut) that make up the committed corpora. Sizes are mapped into small ranges so
// that one execution takes milliseconds on EMU; values that validation must judge (windows,
// scales, positions, PE parameters) are passed raw whenever a selector byte asks for it.
//
// A broken rule calls PA_FUZZ_FAIL, which prints what broke and aborts: libFuzzer saves the input
// as a crash, the replay program (replay.cpp) stops with a non-zero status.
#ifndef PA_FUZZ_COMMON_HPP
#define PA_FUZZ_COMMON_HPP

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "pa_test_shim.h"
#include "posattn.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

namespace pa_fuzz {

[[noreturn]] inline void fail(const char *file, int line, const char *fmt, ...) {
  std::fprintf(stderr, "\nposattn fuzz check failed (%s:%d): ", file, line);
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "\n");
  std::abort();
}
#define PA_FUZZ_FAIL(...) ::pa_fuzz::fail(__FILE__, __LINE__, __VA_ARGS__)
#define PA_FUZZ_CHECK(cond, ...) \
  do {                           \
    if (!(cond)) PA_FUZZ_FAIL(__VA_ARGS__); \
  } while (0)

// PA_FUZZ_VERBOSE=1 in the environment: each input prints what the calls returned (for the replay
// programs and docs/reliability.md's table).
inline void note(const char *fmt, ...) {
  static const bool on = std::getenv("PA_FUZZ_VERBOSE") != nullptr;
  if (!on) return;
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stdout, fmt, ap);
  va_end(ap);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

// Checks skipped for open findings (docs/reliability.md) run anyway with PA_FUZZ_STRICT=1: the
// reproducers in tests/fuzz/pending/ then fail until the finding is fixed.
inline bool strict() {
  static const bool on = std::getenv("PA_FUZZ_STRICT") != nullptr;
  return on;
}

struct ByteIn {
  const uint8_t *p;
  size_t n;
  template <class T>
  void operator()(T &v) {
    v = T{};
    const size_t k = n < sizeof(T) ? n : sizeof(T);
    std::memcpy(&v, p, k);
    p += k;
    n -= k;
  }
};

struct ByteOut {
  std::vector<uint8_t> bytes;
  template <class T>
  void operator()(T &v) {
    const uint8_t *b = reinterpret_cast<const uint8_t *>(&v);
    bytes.insert(bytes.end(), b, b + sizeof(T));
  }
};

template <class Case>
Case decode_case(const uint8_t *data, size_t size) {
  Case c;
  ByteIn in{data, size};
  fields(in, c);
  return c;
}

// A named seed of a target: its bytes (written by `<replay program> --write-seeds DIR`).
struct Seed {
  const char *name;
  std::vector<uint8_t> bytes;
};
template <class Case>
Seed make_seed(const char *name, Case c) {
  ByteOut out;
  fields(out, c);
  return Seed{name, out.bytes};
}
// Every target defines its seeds (the corpus, and one per issue-11 finding it reproduces).
std::vector<Seed> seeds();

// One context per backend for the whole process (the fuzzers run single-threaded).
inline posattn_context *context(posattn_backend b) {
  static posattn_context *ctx[4] = {nullptr, nullptr, nullptr, nullptr};
  if (!ctx[b] && posattn_context_create(b, 0, &ctx[b]) != POSATTN_STATUS_SUCCESS)
    PA_FUZZ_FAIL("cannot create a context for backend %s", posattn_backend_string(b));
  return ctx[b];
}

// Small integer in [lo, lo + n) from a raw byte.
inline int32_t pick(uint8_t raw, int32_t lo, int32_t n) { return lo + int32_t(raw % unsigned(n)); }

// Stores a raw value into an enum field of a public struct: the library (C) must reject unknown
// values, but in C++ a value outside the enum's range may not be formed by a cast.
template <class E>
void set_raw(E &field, int32_t v) {
  static_assert(sizeof(E) == sizeof(int32_t), "posattn's enums are int-sized");
  std::memcpy(&field, &v, sizeof v);
}

inline posattn_dtype dtype_of(uint8_t sel) {
  static const posattn_dtype t[3] = {POSATTN_DTYPE_F32, POSATTN_DTYPE_BF16, POSATTN_DTYPE_F16};
  return t[sel % 3];
}

// Largest finite magnitude of dtype dt (inputs are drawn below it so that they stay finite).
inline double dtype_max(posattn_dtype dt) {
  return dt == POSATTN_DTYPE_F16 ? 65504.0 : 3.0e38;
}

// Amplitude of random inputs: a selector picks 1 (the usual case, which the accuracy rule checks),
// 4, or the raw float (in [1e-4, the dtype's largest value]).
inline double amplitude(uint8_t sel, float raw, posattn_dtype dt, bool *moderate) {
  switch (sel % 4) {
    case 0: case 1: return 1.0;
    case 2: return 4.0;
    default: {
      // below 1e-4 (f16's normal range) the shim's never-zero fill could not find a value
      double a = std::fabs(double(raw));
      if (!(a >= 1e-4) || !std::isfinite(a)) return 1.0;
      *moderate = false;
      return a < dtype_max(dt) ? a : dtype_max(dt);
    }
  }
}

// The RoPE fields added after the first corpora (rotary_offset, active_pairs, mscale /
// mscale_all_dim, longrope_factor). Targets keep this at the END of their Case, so that the
// committed inputs, which are shorter, decode it as zeros: every field at its default.
struct RopeExtra {
  uint8_t sel = 0;  // bit0 rotary_offset, bit1 active_pairs, bit2 mscale pair, bit3 longrope
                    // factor, bit4 raw numbers (else mapped into their valid ranges)
  int32_t offset = 0, active = 0;
  double mscale = 0, mscale_all = 0, longrope = 0;
};
template <class IO>
inline void fields(IO &io, RopeExtra &e) {
  io(e.sel); io(e.offset); io(e.active); io(e.mscale); io(e.mscale_all); io(e.longrope);
}

// |x| mod m, 0 for NaN / inf.
inline double mod_abs(double x, double m) { return std::isfinite(x) ? std::fmod(std::fabs(x), m) : 0; }

// Sets e's fields on rope (a head of hd features); raw numbers when raw or e asks. A valid offset
// shrinks rotary_dim (to "the rest of the head") when it no longer fits; with_offset false keeps
// rotary_offset 0 unless raw (xPos requires 0).
inline void apply_rope_extra(const RopeExtra &e, posattn_rope_params &ro, int32_t hd, bool raw,
                             bool with_offset = true) {
  raw = raw || (e.sel & 16);
  if ((e.sel & 1) && (with_offset || raw)) {
    ro.rotary_offset = raw ? e.offset : int32_t((uint32_t(e.offset) % uint32_t(std::max(1, hd))) & ~1u);
    if (!raw && ro.rotary_dim > hd - ro.rotary_offset) ro.rotary_dim = 0;
  }
  // int64: raw offsets and head dims may be anything
  const int64_t rd = ro.rotary_dim ? ro.rotary_dim : int64_t(hd) - ro.rotary_offset;
  if (e.sel & 2)
    ro.active_pairs = raw ? e.active
                          : int32_t(uint64_t(uint32_t(e.active)) %
                                    uint64_t(std::max<int64_t>(1, rd / 2 + 1)));
  if (e.sel & 4) {
    ro.mscale = raw ? e.mscale : mod_abs(e.mscale, 2);
    ro.mscale_all_dim = raw ? e.mscale_all : mod_abs(e.mscale_all, 2);
  }
  if (e.sel & 8) ro.longrope_factor = raw ? e.longrope : 1 + mod_abs(e.longrope, 16);
}

// The header's visibility rule of key j for query i (token indices in their sequence, lengths
// lq, lk), written from posattn.h independently of the library: bottom-right alignment, causal,
// window, documents with anchors. docs_q / docs_k point at the sequence's doc ids or are NULL.
inline bool visible(int64_t i, int64_t j, int64_t lq, int64_t lk, int causal, int64_t wl,
                    int64_t wr, const int32_t *docs_q, const int32_t *docs_k, int64_t anchors) {
  const int64_t ip = i + lk - lq;
  if (causal && j > ip) return false;
  if (wl >= 0 && j < ip - wl) return false;
  if (wr >= 0 && j > ip + wr) return false;
  if (docs_q && !(docs_q[i] == docs_k[j] || j < anchors)) return false;
  return true;
}

}  // namespace pa_fuzz

#endif  // PA_FUZZ_COMMON_HPP
