// emu_internal.h -- between the emulator's core (emu.cpp) and its extensions (emu_sm90.cpp: the
// Hopper primitives). Not seen by kernels or the device layer.
#ifndef POSATTN_EMU_INTERNAL_H
#define POSATTN_EMU_INTERNAL_H

#include <cstddef>
#include <cstdint>

namespace pa_emu {

// ---- provided by the core (emu.cpp), callable from inside a kernel ------------------------------
namespace core {
unsigned self();           // linear index of the running thread in its block
unsigned block_threads();  // threads of the block
uint64_t block_serial();   // different for every block run: extensions reset their state on change
void enable_sm90();        // this block uses Hopper primitives: route shared accesses, idle, deadlock
// Parks the running thread until wake(self); `what` names the wait in a deadlock report.
void park(const char *what, const char *file, int line);
void wake(unsigned t);  // makes a parked thread ready (no effect on others)
bool exited(unsigned t);
// Records a fault on behalf of thread t without leaving the running context (for the scheduler's
// idle hook, where no fiber runs); the launch stops at the next scheduling step.
void report(unsigned t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
bool failed();
void new_epoch();  // every thread waited at a barrier other than __syncthreads (racecheck interval)
char *arena();  // shared memory of the block: a shared-window address is an offset from here
size_t arena_bytes();
void thread_name(char *buf, size_t n, unsigned t);       // "(x,y,z)"
const char *shared_name(const void *p, long long *offset);  // array name and offset in it
}  // namespace core

// ---- provided by emu_sm90.cpp, called by the core once enable_sm90() was called in the block ---
namespace sm90 {
// Every checked shared access (before the racecheck): ownership by in-flight async operations,
// and the swizzle tag of the bytes written.
void shared_access(const void *p, size_t n, bool write);
// No thread is ready: lands the TMA copies in flight. True if that made a thread ready.
bool idle();
// Memory ordering for the async-proxy checks: a completed __syncthreads; a completed __syncwarp
// of the lanes in `mask` of warp `warp`.
void block_barrier();
void warp_barrier(unsigned warp, uint32_t mask);
// Appends the state of mbarriers with waiters to a deadlock report.
void describe(char *buf, size_t n);
// Happens-before for the racecheck, beyond __syncthreads and warp collectives (which the core
// tracks itself): partial named barriers and mbarrier chains. stamp(): the time stamp of an access
// by the running thread now (stamps grow with every release). ordered(u, at): an access by thread
// u stamped `at` is ordered before the running thread's next access. warps_ordered(warps, at):
// the same for every thread of the warps in the bit mask `warps` (conservative: all their lanes).
uint32_t stamp();
bool ordered(unsigned u, uint32_t at);
bool warps_ordered(uint32_t warps, uint32_t at);
}  // namespace sm90

}  // namespace pa_emu
#endif
