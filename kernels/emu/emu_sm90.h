// emu_sm90.h -- the emulator's Hopper (sm_90a) primitives, as called by the device layer
// (kernels/device/sm90.cuh) when a kernel is compiled by the host compiler. Kernels never include
// this file directly. docs/emulator.md ("Hopper primitives") describes the model and the checks.
//
// Model in one paragraph: mbarriers live in a side table keyed by their shared-memory address
// (the 8 bytes of the object may not be touched otherwise). A TMA load reads and checks global
// memory when issued and builds the swizzled image; it lands -- writes shared memory, completes
// its transaction bytes on the mbarrier -- only when no thread of the block can run, so that any
// thread touching the destination before waiting on the mbarrier is caught. wgmma is a warpgroup
// collective (128 threads); the last thread to arrive computes D for all and stores it in the
// accumulator fragments' pending copy; wait_group makes it visible. Accumulator and A fragments
// are tracked objects: touching them while a wgmma owns them is reported, and so is shared memory
// an in-flight TMA writes or an in-flight wgmma reads.
#ifndef POSATTN_EMU_SM90_H
#define POSATTN_EMU_SM90_H

#include <cstddef>
#include <cstdint>

#include "emu.h"

namespace pa_emu {

// ---- swizzle and descriptors (also used by the CuTe cross-check test) ---------------------------
// The 32/64/128-byte swizzle of a shared-memory byte address: bits [4, 4+b) XOR bits [7, 7+b),
// b = 1, 2, 3 (CuTe Swizzle<b,4,3>). `bytes` is 0 (none), 32, 64 or 128.
inline uint32_t swizzle_address(uint32_t addr, int bytes) {
  const uint32_t mask = bytes == 128 ? 7u : bytes == 64 ? 3u : bytes == 32 ? 1u : 0u;
  return addr ^ (((addr >> 7) & mask) << 4);
}
// Shared-memory address of element (mn, k) (mn: row of A / column of B; k in 0..15) of the 16-bit
// operand a wgmma matrix descriptor describes (PTX ISA "Matrix Descriptor Format" and the
// canonical layouts of "Shared Memory Matrix Layout"), before the swizzle. k_major: the
// transpose bit is 0. Swizzle modes: 0 none, 1 128B, 2 64B, 3 32B (the descriptor's encoding).
uint32_t desc_address(uint64_t desc, bool k_major, unsigned mn, unsigned k);
int desc_swizzle_bytes(uint64_t desc);  // 0, 32, 64, 128 from bits 62-63

// Shared-window address of p (what cvta.to.shared gives on the GPU): its offset in the block's
// shared memory.
uint32_t shared_address(const void *p);

// ---- mbarrier ------------------------------------------------------------------------------------
void mbar_init(void *bar, const Region &r, unsigned count, const char *file, int line);
// arrive (with_tx: arrive.expect_tx, adding `tx` bytes to the phase's transaction count first)
void mbar_arrive(void *bar, const Region &r, bool with_tx, unsigned tx, const char *file, int line);
void mbar_expect_tx(void *bar, const Region &r, unsigned tx, const char *file, int line);
// Blocks until the phase with parity `parity` has completed (try_wait.parity in a loop).
void mbar_wait(void *bar, const Region &r, unsigned parity, const char *file, int line);

// ---- TMA -----------------------------------------------------------------------------------------
struct TmaMap {
  Region global{nullptr, 0, "null"};  // the tensor's launch buffer
  const char *base = nullptr;         // address of element (0, ..., 0)
  int rank = 0, elem_bytes = 0, swizzle = 0;  // swizzle: 0, 32, 64, 128 (bytes)
  uint64_t dims[5] = {0, 0, 0, 0, 0};     // elements per dimension, innermost first
  uint64_t strides[5] = {0, 0, 0, 0, 0};  // bytes between consecutive indices of each dimension
  uint32_t box[5] = {0, 0, 0, 0, 0};      // elements per dimension copied by one load
};
// Copies the box at element coordinates `coords` (signed; out-of-range elements read as zero) to
// shared memory at dst, the innermost dimension contiguous, swizzled by address; completes
// box-bytes transaction bytes on the mbarrier when it lands.
void tma_load(const TmaMap &m, void *dst, const Region &dreg, const int32_t *coords, void *bar,
              const Region &breg, const char *file, int line);

// The box at `coords` from shared memory at src (laid out and swizzled as a load would write it) to
// global memory; elements outside the tensor are not written. The emulator writes global memory
// when the store is issued and keeps the source bytes owned (writes to them are reported) until
// tma_store_wait retires its bulk group.
void tma_store(const TmaMap &m, const void *src, const Region &sreg, const int32_t *coords,
               const char *file, int line);
void tma_store_commit();
void tma_store_wait(int pending, const char *file, int line);

// ---- wgmma ---------------------------------------------------------------------------------------
// The emulator's record of one fragment (accumulator or A operand) of one thread.
struct FragTrack {
  int pending = 0;         // in-flight wgmmas that write (accumulator) or read (A) it
  uint32_t touched = 0;    // 1 + the thread's wgmma.fence count at its last access; 0: never
  const char *file = nullptr;  // last access, where the device layer knows it
  int line = 0;
  const char *wfile = nullptr;  // the last wgmma that used it
  int wline = 0;
};
// Checks an access by the running thread to element i of a fragment (write: for A fragments only
// writes conflict with an in-flight wgmma) and marks it touched.
void frag_access(FragTrack &t, bool accumulator, bool write, int i, const char *file, int line);
void frag_destroyed(FragTrack &t, const char *file, int line);

struct WgmmaArgs {
  int n = 0;               // N of m64nNk16
  bool bf16 = true;        // else f16
  uint64_t adesc = 0;      // SS: A descriptor
  const uint32_t *a = nullptr;  // RS: the thread's 4 A registers
  FragTrack *atrack = nullptr;
  uint64_t bdesc = 0;
  float *acc = nullptr, *acc_next = nullptr;  // N/2 values: visible and pending copies
  FragTrack *acctrack = nullptr;
  bool scale_d = true;     // false: D = A*B (the accumulator's value is ignored)
  int trans_a = 0, trans_b = 0;
};
void wgmma(const WgmmaArgs &w, const char *file, int line);
void wgmma_fence();
void wgmma_commit();
void wgmma_wait(int pending, const char *file, int line);

// ---- the rest ------------------------------------------------------------------------------------
void fence_proxy_async();
void named_barrier(int id, int count, bool wait, const char *file, int line);  // bar.sync/arrive
void setmaxnreg(int count, bool inc, const char *file, int line);

}  // namespace pa_emu
#endif
