// emu.h -- the SIMT emulator's runtime interface, as seen by the device layer (device.cuh) when a
// kernel is compiled by the host C++ compiler. Kernels never include this file directly.
//
// Model: a launch runs its grid block by block; inside a block every CUDA thread is a fiber with
// its own stack. A fiber runs until it reaches a barrier, a warp-collective operation or its end,
// then the scheduler picks another. Warp collectives complete when every participating lane has
// arrived; the last lane to arrive computes the result for all of them.
#ifndef POSATTN_EMU_H
#define POSATTN_EMU_H

#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>

namespace pa_emu {

struct Dim3 {
  unsigned x, y, z;
};

enum class Space { Global, Shared };

// A memory region a checked pointer may touch: one launch buffer, or one shared-memory array.
struct Region {
  char *base;
  size_t bytes;
  const char *name;
};

// Per-fiber identity, read by threadIdx/blockIdx/... in emulated kernels.
struct ThreadInfo {
  Dim3 thread_idx, block_idx, block_dim, grid_dim;
  unsigned linear;  // linear thread index inside the block
};
// The running fiber (a function, not an extern thread_local: the TLS wrapper of an extern
// thread_local trips UBSan's null check when read on a fiber stack).
const ThreadInfo &this_thread();

// Options of the emulator for launches made from the calling OS thread.
struct Options {
  bool racecheck = true;      // shared-memory hazards between threads within a barrier interval
  bool shuffle = false;       // run the ready threads of a block in a random order
  uint64_t seed = 1;          // seed of the shuffled order
  size_t stack_bytes = 0;     // fiber stack size; 0 = default (256 KiB, 1 MiB under ASan)
};
Options &options();

// Result of a launch: ok, or the first kernel bug found (kernel, block, thread, address, rule).
struct Status {
  bool ok = true;
  char msg[768] = {0};
};

// ---- called by the device layer from inside a kernel -------------------------------------------
// Reports a kernel bug and abandons the launch (never returns to the kernel).
[[noreturn]] void fault(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
[[noreturn]] void access_fault(Space s, const Region &r, const void *p, size_t n, bool write,
                               const char *why);
void shared_track(const void *p, size_t n, bool write);  // racecheck bookkeeping (if enabled)

// Bounds and alignment check of an n-byte access at p (alignment = n for scalar/vector loads).
inline void check_access(Space s, const Region &r, const void *p, size_t n, size_t align,
                         bool write) {
  const char *c = static_cast<const char *>(p);
  if (r.base == nullptr) access_fault(s, r, p, n, write, "through a null pointer");
  if (c < r.base || c + n > r.base + r.bytes || c + n < c)
    access_fault(s, r, p, n, write, "out of range");
  if (reinterpret_cast<uintptr_t>(p) % align != 0) access_fault(s, r, p, n, write, "misaligned");
  if (s == Space::Shared) shared_track(p, n, write);
}

void barrier(const char *file, int line);
enum class ShflMode { Idx, Up, Down, Xor };
uint32_t shfl(ShflMode m, uint32_t mask, uint32_t v, int arg, int width, const char *file,
              int line);
enum class VoteMode { All, Any, Ballot };
uint32_t vote(VoteMode m, uint32_t mask, int pred, const char *file, int line);
void syncwarp(uint32_t mask, const char *file, int line);
enum class MmaType { BF16, F16 };
void mma_m16n8k16(MmaType t, float d[4], const uint32_t a[4], const uint32_t b[2],
                  const float c[4], const char *file, int line);
void ldmatrix(int nmat, bool trans, uint32_t *r, const void *row, const Region &reg,
              const char *file, int line);
void cp_async16(void *dst, const Region &dreg, const void *src, const Region &sreg, bool fill,
                const char *file, int line);
void cp_async_commit();
void cp_async_wait(int pending, const char *file, int line);
// Shared memory of the running block: a static array (one per declaration site `tag`) and the
// dynamic array sized by the launch.
Region shared_static(const void *tag, size_t bytes, const char *name);
Region shared_dynamic();

// ---- launching -----------------------------------------------------------------------------
struct LaunchSpec {
  const char *name;
  Dim3 grid, block;
  size_t dyn_smem;
  void (*entry)(void *);  // runs the kernel body for the current fiber
  void *arg;
};
Status run(const LaunchSpec &spec);

template <class... P>
struct Pack {
  void (*kernel)(P...);
  std::tuple<std::decay_t<P>...> args;
  static void entry(void *self) {
    Pack *pk = static_cast<Pack *>(self);
    std::apply(pk->kernel, pk->args);  // by value: every thread gets the same parameters
  }
};

template <class... P, class... A>
Status launch(const char *name, void (*kernel)(P...), Dim3 grid, Dim3 block, size_t dyn_smem,
              A &&...args) {
  Pack<P...> pk{kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(args)...)};
  return run(LaunchSpec{name, grid, block, dyn_smem, &Pack<P...>::entry, &pk});
}

}  // namespace pa_emu
#endif
