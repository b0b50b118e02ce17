// emu.cpp -- the SIMT emulator: fibers, the block scheduler, warp collectives, and the checks.
// See emu.h for the model and docs/emulator.md for the design.
#include "emu.h"
#include "emu_internal.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define PA_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PA_EMU_ASAN 1
#endif
#endif
#if defined(PA_EMU_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
// ThreadSanitizer must be told about every stack switch (else it attributes a fiber's accesses and
// call stack to whatever ran before, and its shadow call stack overflows): each emulated thread
// gets a TSan fiber, and the scheduler switches to it just before the context switch.
#if defined(__SANITIZE_THREAD__)
#define PA_EMU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PA_EMU_TSAN 1
#endif
#endif
#if defined(PA_EMU_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace pa_emu {

namespace {
thread_local ThreadInfo *tl_thread = nullptr;
thread_local bool tl_racecheck = false;
}  // namespace
const ThreadInfo &this_thread() { return *tl_thread; }

Options &options() {
  thread_local Options opts;
  return opts;
}

// =================================================================================================
// Context switch. x86-64: a hand-written switch saving the callee-saved registers (System V ABI)
// on the old stack -- no system call, ~10x cheaper than swapcontext, which also saves the signal
// mask with a syscall. Elsewhere: ucontext (correct, slower).
// =================================================================================================
#if defined(__x86_64__)
extern "C" void pa_emu_switch(void **save_sp, void *new_sp);
extern "C" void pa_emu_fiber_start();
asm(R"(
  .text
  .globl pa_emu_switch
  .hidden pa_emu_switch
  .type pa_emu_switch, @function
pa_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size pa_emu_switch, .-pa_emu_switch

  .globl pa_emu_fiber_start
  .hidden pa_emu_fiber_start
  .type pa_emu_fiber_start, @function
pa_emu_fiber_start:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size pa_emu_fiber_start, .-pa_emu_fiber_start
)");

struct Ctx {
  void *sp = nullptr;
};
static void ctx_init(Ctx &c, char *stack, size_t size, void (*fn)(void *), void *arg) {
  // Frame popped by pa_emu_switch: r15 r14 r13(fn) r12(arg) rbx rbp, then the return address.
  // After `ret` rsp must be 16-byte aligned so that the call in pa_emu_fiber_start enters fn
  // with the ABI's alignment.
  uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + size) & ~uintptr_t(15);
  void **sp = reinterpret_cast<void **>(top - 72);
  sp[0] = nullptr;
  sp[1] = nullptr;
  sp[2] = reinterpret_cast<void *>(fn);
  sp[3] = arg;
  sp[4] = nullptr;
  sp[5] = nullptr;
  sp[6] = reinterpret_cast<void *>(&pa_emu_fiber_start);
  c.sp = sp;
}
static inline void ctx_switch(Ctx &from, Ctx &to) { pa_emu_switch(&from.sp, to.sp); }
#else
struct Ctx {
  ucontext_t uc;
};
static thread_local void (*tl_start_fn)(void *);
static thread_local void *tl_start_arg;
static void ucontext_entry() { tl_start_fn(tl_start_arg); }
static void ctx_init(Ctx &c, char *stack, size_t size, void (*fn)(void *), void *arg) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = size;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, ucontext_entry, 0);
  // makecontext cannot pass a pointer portably; the first switch into a fiber hands it over.
  (void)fn;
  (void)arg;
}
static inline void ctx_switch(Ctx &from, Ctx &to) { swapcontext(&from.uc, &to.uc); }
#endif

// =================================================================================================
// State of a launch
// =================================================================================================
namespace {

// Wait: parked by an extension (emu_sm90.cpp: mbarrier, named barrier, warpgroup collective).
enum class St : uint8_t { Ready, Barrier, Warp, Wait, Done };
enum class Coll : uint8_t { Shfl, Vote, Sync, Mma, Ldsm };
const char *coll_name(Coll c) {
  switch (c) {
    case Coll::Shfl: return "a shuffle";
    case Coll::Vote: return "a vote";
    case Coll::Sync: return "__syncwarp";
    case Coll::Mma: return "mma.sync";
    case Coll::Ldsm: return "ldmatrix";
  }
  return "?";
}

// What a lane hands to a warp collective (pointers into its own stack stay valid while it waits).
struct Post {
  uint32_t v = 0;       // shuffle value / vote predicate
  uint32_t result = 0;  // shuffle / vote result
  int sub = 0;          // ShflMode / VoteMode / MmaType / ldmatrix count
  int arg = 0, width = 32;
  bool trans = false;
  const uint32_t *a = nullptr, *b = nullptr;
  const float *c = nullptr;
  float *d = nullptr;
  const char *row = nullptr;
  uint32_t *r = nullptr;
};

struct Copy {
  char *dst;
  unsigned group;
  unsigned char data[16];
};

struct Fiber {
  Ctx ctx;
  ThreadInfo info;
  St st = St::Ready;
  unsigned lane = 0, warp = 0;
  char *stack = nullptr;
  size_t stack_size = 0;
  void *fake_stack = nullptr;
  void *tsan_fiber = nullptr;  // TSan's state of this emulated thread (TSan builds only)
  unsigned tsan_runs = 0;      // blocks run on tsan_fiber
  const char *file = nullptr;  // where it waits (barrier or collective)
  int line = 0;
  const char *wait_what = nullptr;  // St::Wait: what it waits for (deadlock report)
  Post *post = nullptr;
  std::vector<Copy> copies;  // cp.async not yet performed
  unsigned commits = 0;
};

struct Warp {
  uint32_t lanes_mask = 0;  // lanes that exist (a last partial warp has fewer)
  uint32_t exited = 0;
  uint32_t arrived = 0;
  uint32_t mask = 0;
  Coll kind = Coll::Sync;
  int sub = 0;
  const char *file = nullptr;
  int line = 0;
  uint32_t syncs = 0;  // collectives completed: orders shared accesses of its lanes (racecheck)
};

// Racecheck shadow of one shared-memory byte: its last write, and its reads since (in the
// barrier interval). w_sync / r_sync: the warp collectives completed by the accessing warp at the
// access; w_time / r_time: the Hopper happens-before stamp (sm90::stamp; the latest read's);
// r_warps: bit w set when a thread of warp w read it.
struct Shadow {
  uint32_t w_epoch, w_sync, r_epoch, r_sync;
  uint32_t w_time, r_time, r_warps;
  uint16_t w_tid, r_tid, r_warp;
};
constexpr uint16_t kMany = 0xffff;

constexpr size_t kArenaBytes = 232448;   // 227 KiB: the most an sm_90 block can have
constexpr size_t kStaticLimit = 49152;  // static __shared__ limit of CUDA

struct StaticShared {
  const void *tag;
  Region region;
};

struct Launch {
  const LaunchSpec *spec;
  unsigned nthreads = 0;
  Fiber *fibers = nullptr;
  std::vector<Warp> warps;
  Ctx sched;
  const void *sched_bottom = nullptr;
  size_t sched_size = 0;
  void *sched_fake = nullptr;
  void *sched_tsan = nullptr;  // TSan's state of the OS thread that runs the scheduler
  std::vector<unsigned> ready;
  size_t ready_head = 0;
  std::mt19937_64 rng;
  bool shuffle = false;
  unsigned at_barrier = 0, exited = 0;
  uint32_t epoch = 0;  // barrier intervals (over the whole launch)
  char *arena = nullptr;
  Shadow *shadow = nullptr;
  size_t dyn_bytes = 0, static_bytes = 0;
  std::vector<StaticShared> statics;
  bool failed = false;
  char msg[sizeof(Status::msg)] = {0};
};

thread_local Launch *tl_launch = nullptr;
thread_local bool tl_sm90 = false;      // the block used Hopper primitives: check shared accesses
thread_local uint64_t tl_block_serial = 0;
thread_local uint32_t tl_epoch = 0;  // barrier intervals, never reused: the shadow needs no reset
[[noreturn]] void leave();  // the running fiber stops for good (after a fault was recorded)
thread_local Fiber *tl_fiber = nullptr;

// Memory kept per OS thread between launches: fibers with their stacks, the shared arena and its
// shadow. Stacks are mmap'ed with a PROT_NONE guard page below each one.
struct Pool {
  std::vector<Fiber> fibers;
  char *stacks = nullptr;
  size_t stacks_bytes = 0, stack_size = 0, nstacks = 0;
  std::vector<char> arena;
  std::vector<Shadow> shadow;
  ~Pool() {
#if defined(PA_EMU_TSAN)
    for (Fiber &f : fibers)
      if (f.tsan_fiber) __tsan_destroy_fiber(f.tsan_fiber);
#endif
    if (stacks) munmap(stacks, stacks_bytes);
  }
  bool reserve(unsigned n, size_t size) {
    if (fibers.size() < n) fibers.resize(n);
    if (stacks && nstacks >= n && stack_size == size) return true;
    if (stacks) munmap(stacks, stacks_bytes);
    stacks = nullptr;
    size_t page = size_t(sysconf(_SC_PAGESIZE));
    size_t each = size + page;
    void *m = mmap(nullptr, each * n, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return false;
    stacks = static_cast<char *>(m);
    stacks_bytes = each * n;
    stack_size = size;
    nstacks = n;
    for (unsigned i = 0; i < n; ++i) mprotect(stacks + i * each, page, PROT_NONE);
    return true;
  }
  char *stack(unsigned i) const {
    size_t page = size_t(sysconf(_SC_PAGESIZE));
    return stacks + i * (stack_size + page) + page;
  }
};
Pool &pool() {
  thread_local Pool p;
  return p;
}

// ---- fiber switching with ASan and TSan annotations ---------------------------------------------
void to_scheduler(Fiber &f, bool final) {
  Launch &L = *tl_launch;
#if defined(PA_EMU_ASAN)
  __sanitizer_start_switch_fiber(final ? nullptr : &f.fake_stack, L.sched_bottom, L.sched_size);
#else
  (void)final;
#endif
#if defined(PA_EMU_TSAN)
  __tsan_switch_to_fiber(L.sched_tsan, 0);
#endif
  ctx_switch(f.ctx, L.sched);
#if defined(PA_EMU_ASAN)
  __sanitizer_finish_switch_fiber(f.fake_stack, &L.sched_bottom, &L.sched_size);
#endif
}

void to_fiber(Launch &L, Fiber &f) {
  tl_fiber = &f;
  tl_thread = &f.info;
#if defined(PA_EMU_ASAN)
  __sanitizer_start_switch_fiber(&L.sched_fake, f.stack, f.stack_size);
#endif
#if !defined(__x86_64__)
  tl_start_arg = &f;
#endif
#if defined(PA_EMU_TSAN)
  __tsan_switch_to_fiber(f.tsan_fiber, 0);
#endif
  ctx_switch(L.sched, f.ctx);
#if defined(PA_EMU_ASAN)
  __sanitizer_finish_switch_fiber(L.sched_fake, nullptr, nullptr);
#endif
  tl_fiber = nullptr;
  tl_thread = nullptr;
}

void make_ready(Launch &L, unsigned t) {
  L.fibers[t].st = St::Ready;
  L.ready.push_back(t);
}

// ---- messages ---------------------------------------------------------------------------------
int thread_str(char *buf, size_t n, const Launch &L, unsigned t) {
  const Dim3 &b = L.spec->block;
  return std::snprintf(buf, n, "(%u,%u,%u)", t % b.x, (t / b.x) % b.y, t / (b.x * b.y));
}

void vrecord(Launch &L, const Fiber *f, const char *fmt, va_list ap) {
  if (L.failed) return;
  L.failed = true;
  int k = 0;
  const size_t n = sizeof L.msg;
  const ThreadInfo &i = (f ? f : &L.fibers[0])->info;
  k += std::snprintf(L.msg + k, n - k, "kernel %s block (%u,%u,%u)", L.spec->name, i.block_idx.x,
                     i.block_idx.y, i.block_idx.z);
  if (f && size_t(k) < n)
    k += std::snprintf(L.msg + k, n - k, " thread (%u,%u,%u)", i.thread_idx.x, i.thread_idx.y,
                       i.thread_idx.z);
  if (size_t(k) < n - 2) {
    L.msg[k++] = ':';
    L.msg[k++] = ' ';
    std::vsnprintf(L.msg + k, n - k, fmt, ap);
  }
}
void record(Launch &L, const Fiber *f, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vrecord(L, f, fmt, ap);
  va_end(ap);
}

const Region *shared_region_of(const Launch &L, const char *p) {
  if (L.dyn_bytes && p >= L.arena && p < L.arena + L.dyn_bytes) return nullptr;
  for (const StaticShared &s : L.statics)
    if (p >= s.region.base && p < s.region.base + s.region.bytes) return &s.region;
  return nullptr;
}

}  // namespace

// =================================================================================================
// Faults: record the message, leave the fiber for good. The scheduler abandons the launch; fiber
// stacks are reused by the next launch (nothing on them needs destruction: kernels own no
// resources).
// =================================================================================================
void fault(const char *fmt, ...) {
  Launch *L = tl_launch;
  Fiber *f = tl_fiber;
  if (L == nullptr || f == nullptr) {
    // A device-layer call outside any emulated kernel: a bug in posattn itself, with no launch to
    // report to and no fiber to leave.
    std::fprintf(stderr, "posattn emulator: device operation called outside a kernel\n");
    std::abort();
  }
  va_list ap;
  va_start(ap, fmt);
  vrecord(*L, f, fmt, ap);
  va_end(ap);
  leave();
}

namespace {
void leave() {
  Fiber &f = *tl_fiber;
  f.st = St::Done;
  for (;;) to_scheduler(f, true);
}
}  // namespace

void access_fault(Space s, const Region &r, const void *p, size_t n, bool write, const char *why) {
  const char *c = static_cast<const char *>(p);
  const char *space = s == Space::Global ? "global" : "shared";
  if (r.base == nullptr)
    fault("%s %zu-byte %s at address %p %s", space, n, write ? "write" : "read", p, why);
  fault("%s %zu-byte %s at address %p %s: buffer '%s' is %zu bytes, the access is at byte offset "
        "%lld",
        space, n, write ? "write" : "read", p, why, r.name ? r.name : "?", r.bytes,
        static_cast<long long>(c - r.base));
}

// =================================================================================================
// Racecheck
// =================================================================================================
void shared_track(const void *p, size_t n, bool write) {
  if (tl_sm90) sm90::shared_access(p, n, write);
  if (!tl_racecheck) return;
  Launch &L = *tl_launch;
  Fiber &f = *tl_fiber;
  const uint16_t me = uint16_t(f.info.linear);
  const uint16_t warp = uint16_t(f.warp);
  const uint32_t sync = L.warps[f.warp].syncs, E = L.epoch;
  // Blocks with Hopper primitives: named barriers of some threads and mbarriers order accesses too
  // (sm90::ordered); elsewhere only __syncthreads (the epoch) and warp collectives do.
  const bool hb = tl_sm90;
  const uint32_t now = hb ? sm90::stamp() : 0;
  size_t off = size_t(static_cast<const char *>(p) - L.arena);
  for (size_t i = 0; i < n; ++i) {
    Shadow &s = L.shadow[off + i];
    const char *kind = nullptr;
    unsigned other = 0;
    // An access of this barrier interval by another thread conflicts unless ordered before this
    // one: another lane of the same warp by a warp collective both took part in since; any thread
    // by a named barrier or mbarrier chain from it to this thread (Hopper blocks).
    if (s.w_epoch == E && s.w_tid != me &&
        !(L.fibers[s.w_tid].warp == warp && s.w_sync < sync) &&
        !(hb && sm90::ordered(s.w_tid, s.w_time))) {
      kind = write ? "writes a byte written" : "reads a byte written";
      other = s.w_tid;
    } else if (write && s.r_epoch == E && s.r_tid != me &&
               !(s.r_warp == warp && s.r_sync < sync) &&
               !(hb && (s.r_tid != kMany ? sm90::ordered(s.r_tid, s.r_time)
                                          : sm90::warps_ordered(s.r_warps, s.r_time)))) {
      kind = "writes a byte read";
      other = s.r_tid;
    }
    if (kind) {
      char who[48];
      if (other == kMany)
        std::snprintf(who, sizeof who, "several other threads");
      else {
        int k = std::snprintf(who, sizeof who, "thread ");
        thread_str(who + k, sizeof who - k, L, other);
      }
      const char *addr = static_cast<const char *>(p) + i;
      const Region *r = shared_region_of(L, addr);
      fault("shared-memory race: %s by %s in the same barrier interval (no __syncthreads "
            "between%s), address %p = '%s' + %lld bytes",
            kind, who, hb ? ", nor a named barrier or mbarrier from it to this thread" : "",
            static_cast<const void *>(addr), r ? r->name : "dynamic shared memory",
            static_cast<long long>(addr - (r ? r->base : L.arena)));
    }
    if (write) {
      // every earlier access of the interval is ordered before this write (else reported above):
      // later accesses ordered after the write are ordered after them too
      s.w_epoch = E;
      s.w_tid = me;
      s.w_sync = sync;
      s.w_time = now;
      s.r_epoch = 0;  // no reads since (epochs start at 1)
    } else if (s.r_epoch != E) {
      s.r_epoch = E;
      s.r_tid = me;
      s.r_warp = warp;
      s.r_sync = sync;
      s.r_time = now;
      s.r_warps = 1u << warp;
    } else {
      if (s.r_tid != me) s.r_tid = kMany;
      if (s.r_warp != warp) s.r_warp = kMany;
      if (sync > s.r_sync) s.r_sync = sync;
      s.r_time = now;  // stamps never decrease
      s.r_warps |= 1u << warp;
    }
  }
}

// =================================================================================================
// Block barrier (bar.sync 0 semantics, checked: every thread of the block must reach the same
// __syncthreads; a thread that exits or waits elsewhere is reported).
// =================================================================================================
namespace {
void check_exit_vs_barrier(Launch &L, Fiber &f) {
  // Called when f has exited and others wait, or f waits and others have exited.
  for (unsigned t = 0; t < L.nthreads; ++t) {
    Fiber &o = L.fibers[t];
    if (f.st == St::Barrier && o.st == St::Done) {
      char who[48];
      thread_str(who, sizeof who, L, t);
      fault("waits at the barrier at %s:%d, but thread %s exited without reaching it", f.file,
            f.line, who);
    }
    if (f.st == St::Done && o.st == St::Barrier) {
      char who[48];
      thread_str(who, sizeof who, L, t);
      fault("exited without reaching the barrier at %s:%d where thread %s waits", o.file, o.line,
            who);
    }
  }
}
}  // namespace

void barrier(const char *file, int line) {
  Launch &L = *tl_launch;
  Fiber &f = *tl_fiber;
  f.st = St::Barrier;
  f.file = file;
  f.line = line;
  if (L.exited) check_exit_vs_barrier(L, f);
  if (++L.at_barrier == L.nthreads) {
    for (unsigned t = 0; t < L.nthreads; ++t) {
      const Fiber &o = L.fibers[t];
      if (o.line != line || std::strcmp(o.file, file) != 0) {
        char who[48];
        thread_str(who, sizeof who, L, t);
        fault("barrier mismatch: this thread waits at %s:%d while thread %s waits at %s:%d (a "
              "thread skipped a barrier)",
              file, line, who, o.file, o.line);
      }
    }
    L.at_barrier = 0;
    L.epoch = ++tl_epoch;
    if (tl_sm90) sm90::block_barrier();
    for (unsigned t = 0; t < L.nthreads; ++t) make_ready(L, t);
  }
  to_scheduler(f, false);
}

// =================================================================================================
// Warp collectives. Each lane posts its operands and waits; the last lane of the mask to arrive
// computes every lane's result.
// =================================================================================================
namespace {

void complete(Launch &L, Warp &w, unsigned warp_id) {
  Fiber *lane[32] = {nullptr};
  for (unsigned l = 0; l < 32; ++l)
    if (w.mask >> l & 1u) lane[l] = &L.fibers[warp_id * 32 + l];
  switch (w.kind) {
    case Coll::Sync:
      break;
    case Coll::Vote: {
      uint32_t ballot = 0;
      for (unsigned l = 0; l < 32; ++l)
        if (lane[l] && lane[l]->post->v) ballot |= 1u << l;
      uint32_t res = 0;
      switch (VoteMode(w.sub)) {
        case VoteMode::All: res = ballot == w.mask; break;
        case VoteMode::Any: res = ballot != 0; break;
        case VoteMode::Ballot: res = ballot; break;
      }
      for (unsigned l = 0; l < 32; ++l)
        if (lane[l]) lane[l]->post->result = res;
      break;
    }
    case Coll::Shfl: {
      // PTX ISA "shfl.sync" / CUDA __shfl*_sync: segments of `width` lanes.
      for (unsigned l = 0; l < 32; ++l) {
        if (!lane[l]) continue;
        const Post &p = *lane[l]->post;
        const unsigned width = unsigned(p.width), base = l & ~(width - 1);
        unsigned src = l;
        switch (ShflMode(w.sub)) {
          case ShflMode::Idx: src = base + (unsigned(p.arg) & (width - 1)); break;
          case ShflMode::Up:
            if (l - base >= unsigned(p.arg)) src = l - unsigned(p.arg);
            break;
          case ShflMode::Down:
            if (l - base + unsigned(p.arg) < width) src = l + unsigned(p.arg);
            break;
          case ShflMode::Xor:  // lanes of later segments are out of reach: own value
            if ((l ^ unsigned(p.arg)) < base + width) src = l ^ unsigned(p.arg);
            break;
        }
        if (!lane[src]) {
          record(L, lane[l], "shuffle at %s:%d reads lane %u, which is not in the mask 0x%08x",
                 w.file, w.line, src, w.mask);
          leave();
        }
        lane[l]->post->result = lane[src]->post->v;
      }
      break;
    }
    case Coll::Mma: {
      // PTX ISA "Matrix Fragments for mma.m16n8k16 with floating point type" (see device.cuh).
      auto half = [&](uint32_t u, int hi) -> double {
        uint16_t h = uint16_t(hi ? u >> 16 : u & 0xffffu);
        if (MmaType(w.sub) == MmaType::BF16) {
          uint32_t b = uint32_t(h) << 16;
          float f;
          std::memcpy(&f, &b, 4);
          return f;
        }
        int e = (h >> 10) & 0x1f, m = h & 0x3ff;
        double s = (h & 0x8000) ? -1.0 : 1.0;
        if (e == 0x1f) return m ? NAN : s * INFINITY;
        if (e == 0) return s * std::ldexp(double(m), -24);
        return s * std::ldexp(double(m | 0x400), e - 25);
      };
      double A[16][16], B[16][8];
      for (unsigned l = 0; l < 32; ++l) {
        const Post &p = *lane[l]->post;
        const unsigned g = l >> 2, t = l & 3;
        for (int h = 0; h < 2; ++h) {
          A[g][2 * t + h] = half(p.a[0], h);
          A[g + 8][2 * t + h] = half(p.a[1], h);
          A[g][2 * t + 8 + h] = half(p.a[2], h);
          A[g + 8][2 * t + 8 + h] = half(p.a[3], h);
          B[2 * t + h][g] = half(p.b[0], h);
          B[2 * t + 8 + h][g] = half(p.b[1], h);
        }
      }
      for (unsigned l = 0; l < 32; ++l) {
        const Post &p = *lane[l]->post;
        const unsigned g = l >> 2, t = l & 3;
        float out[4];
        for (int i = 0; i < 4; ++i) {
          const unsigned row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
          // 16-bit products are exact in double; the sum of 16 is rounded once to fp32.
          double acc = p.c[i];
          for (int k = 0; k < 16; ++k) acc += A[row][k] * B[k][col];
          out[i] = float(acc);
        }
        std::memcpy(p.d, out, sizeof out);
      }
      break;
    }
    case Coll::Ldsm: {
      // PTX ISA "Warp-level matrix load instruction: ldmatrix" (see device.cuh).
      const int nmat = w.sub;
      uint16_t M[4][8][8];
      for (int m = 0; m < nmat; ++m)
        for (int r = 0; r < 8; ++r) std::memcpy(M[m][r], lane[8 * m + r]->post->row, 16);
      for (unsigned l = 0; l < 32; ++l) {
        const Post &p = *lane[l]->post;
        const unsigned g = l >> 2, t = l & 3;
        for (int m = 0; m < nmat; ++m) {
          uint16_t lo = p.trans ? M[m][2 * t][g] : M[m][g][2 * t];
          uint16_t hi = p.trans ? M[m][2 * t + 1][g] : M[m][g][2 * t + 1];
          p.r[m] = uint32_t(lo) | (uint32_t(hi) << 16);
        }
      }
      break;
    }
  }
}

void collective(Coll kind, int sub, uint32_t mask, Post &p, const char *file, int line) {
  Launch &L = *tl_launch;
  Fiber &f = *tl_fiber;
  Warp &w = L.warps[f.warp];
  const uint32_t me = 1u << f.lane;
  if (!(mask & me))
    fault("%s at %s:%d with mask 0x%08x that does not name the calling lane %u", coll_name(kind),
          file, line, mask, f.lane);
  if (mask & ~w.lanes_mask)
    fault("%s at %s:%d: mask 0x%08x names lanes that do not exist in this warp (block size)",
          coll_name(kind), file, line, mask);
  if (mask & w.exited)
    fault("%s at %s:%d: mask 0x%08x names lane(s) 0x%08x that have exited", coll_name(kind), file,
          line, mask, mask & w.exited);
  if (w.arrived == 0) {
    w.kind = kind;
    w.sub = sub;
    w.mask = mask;
    w.file = file;
    w.line = line;
  } else if (w.kind != kind || w.sub != sub || w.mask != mask) {
    fault("warp divergence: this lane is at %s (%s:%d, mask 0x%08x) while other lanes wait at %s "
          "(%s:%d, mask 0x%08x)",
          coll_name(kind), file, line, mask, coll_name(w.kind), w.file, w.line, w.mask);
  }
  f.post = &p;
  f.file = file;
  f.line = line;
  w.arrived |= me;
  if (w.arrived != w.mask) {
    f.st = St::Warp;
    to_scheduler(f, false);
    return;
  }
  complete(L, w, f.warp);
  w.arrived = 0;
  ++w.syncs;
  if (tl_sm90 && kind == Coll::Sync) sm90::warp_barrier(f.warp, w.mask);
  for (unsigned l = 0; l < 32; ++l)
    if ((w.mask >> l & 1u) && l != f.lane) make_ready(L, f.warp * 32 + l);
}

void check_width(int width, const char *file, int line) {
  if (width < 1 || width > 32 || (width & (width - 1)) != 0)
    fault("shuffle at %s:%d with width %d: must be a power of two in 1..32", file, line, width);
}
}  // namespace

uint32_t shfl(ShflMode m, uint32_t mask, uint32_t v, int arg, int width, const char *file,
              int line) {
  check_width(width, file, line);
  Post p;
  p.v = v;
  p.arg = arg;
  p.width = width;
  collective(Coll::Shfl, int(m), mask, p, file, line);
  return p.result;
}

uint32_t vote(VoteMode m, uint32_t mask, int pred, const char *file, int line) {
  Post p;
  p.v = pred != 0;
  collective(Coll::Vote, int(m), mask, p, file, line);
  return p.result;
}

void syncwarp(uint32_t mask, const char *file, int line) {
  Post p;
  collective(Coll::Sync, 0, mask, p, file, line);
}

void mma_m16n8k16(MmaType t, float d[4], const uint32_t a[4], const uint32_t b[2],
                  const float c[4], const char *file, int line) {
  Post p;
  p.a = a;
  p.b = b;
  p.c = c;
  p.d = d;
  collective(Coll::Mma, int(t), 0xffffffffu, p, file, line);
}

void ldmatrix(int nmat, bool trans, uint32_t *r, const void *row, const Region &reg,
              const char *file, int line) {
  Fiber &f = *tl_fiber;
  Post p;
  p.trans = trans;
  p.r = r;
  if (f.lane < unsigned(8 * nmat)) {  // only these lanes' addresses are used
    check_access(Space::Shared, reg, row, 16, 16, false);
    p.row = static_cast<const char *>(row);
  }
  collective(Coll::Ldsm, nmat, 0xffffffffu, p, file, line);
}

// =================================================================================================
// cp.async: the source is read (and checked) when the copy is issued, the destination written
// (and checked, raced) when a wait_group retires its group.
// =================================================================================================
void cp_async16(void *dst, const Region &dreg, const void *src, const Region &sreg, bool fill,
                const char *, int) {
  Fiber &f = *tl_fiber;
  check_access(Space::Shared, dreg, dst, 16, 16, true);
  Copy c;
  c.dst = static_cast<char *>(dst);
  c.group = f.commits;
  if (fill) {
    // The write is tracked when it lands; here only bounds and alignment of the destination.
    check_access(Space::Global, sreg, src, 16, 16, false);
    std::memcpy(c.data, src, 16);
  } else {
    std::memset(c.data, 0, 16);
  }
  f.copies.push_back(c);
}

void cp_async_commit() { ++tl_fiber->commits; }

void cp_async_wait(int pending, const char *, int) {
  Fiber &f = *tl_fiber;
  size_t keep = 0;
  for (size_t i = 0; i < f.copies.size(); ++i) {
    Copy &c = f.copies[i];
    if (c.group + unsigned(pending) < f.commits) {
      if (tl_racecheck) shared_track(c.dst, 16, true);
      std::memcpy(c.dst, c.data, 16);
    } else {
      f.copies[keep++] = c;
    }
  }
  f.copies.resize(keep);
}

// =================================================================================================
// Shared memory: [dynamic | static arrays...] in one arena per OS thread. Blocks run one at a
// time, so every block of a launch reuses it; it is filled with 0xff (NaN) at each block start so
// that reading what was never written shows.
// =================================================================================================
Region shared_static(const void *tag, size_t bytes, const char *name) {
  Launch &L = *tl_launch;
  for (const StaticShared &s : L.statics)
    if (s.tag == tag) return s.region;
  size_t off = (L.dyn_bytes + L.static_bytes + 15) & ~size_t(15);
  if (L.static_bytes + bytes > kStaticLimit || off + bytes > kArenaBytes)
    fault("static shared array '%s' (%zu bytes) exceeds the shared-memory limits (48 KiB static, "
          "227 KiB in all; %zu static and %zu dynamic bytes already used)",
          name, bytes, L.static_bytes, L.dyn_bytes);
  Region r{L.arena + off, bytes, name};
  std::memset(r.base, 0xff, bytes);
  L.static_bytes = off + bytes - L.dyn_bytes;
  L.statics.push_back(StaticShared{tag, r});
  return r;
}

Region shared_dynamic() {
  Launch &L = *tl_launch;
  return Region{L.arena, L.dyn_bytes, "dynamic shared memory"};
}

// =================================================================================================
// Running a launch
// =================================================================================================
namespace {

[[noreturn]] void fiber_main(void *arg) {
  Fiber &f = *static_cast<Fiber *>(arg);
  Launch &L = *tl_launch;
#if defined(PA_EMU_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &L.sched_bottom, &L.sched_size);
#endif
  L.spec->entry(L.spec->arg);
  // Copies still in flight land when the thread ends, as on the GPU.
  cp_async_wait(0, nullptr, 0);
  f.st = St::Done;
  ++L.exited;
  Warp &w = L.warps[f.warp];
  w.exited |= 1u << f.lane;
  if (w.arrived && (w.mask >> f.lane & 1u))
    fault("exited while lanes of its warp wait for it at %s (%s:%d)", coll_name(w.kind), w.file,
          w.line);
  if (L.at_barrier) check_exit_vs_barrier(L, f);
  for (;;) to_scheduler(f, true);
}

void deadlock(Launch &L) {
  char a[160] = "", b[160] = "", c[200] = "", x[320] = "";
  for (unsigned t = 0; t < L.nthreads; ++t) {
    const Fiber &f = L.fibers[t];
    char *dst = f.st == St::Barrier ? a : f.st == St::Warp ? b : f.st == St::Wait ? c : nullptr;
    const size_t n = f.st == St::Wait ? sizeof c : sizeof a;
    if (!dst || dst[0]) continue;
    int k = std::snprintf(dst, n, "thread ");
    k += thread_str(dst + k, n - k, L, t);
    std::snprintf(dst + k, n - k, " waits at %s %s:%d",
                  f.st == St::Barrier ? "the barrier"
                  : f.st == St::Warp  ? coll_name(L.warps[f.warp].kind)
                                      : f.wait_what,
                  f.file, f.line);
  }
  if (tl_sm90) sm90::describe(x, sizeof x);
  record(L, nullptr, "deadlock: %s%s%s%s%s%s%s", a, a[0] && b[0] ? "; " : "", b,
         (a[0] || b[0]) && c[0] ? "; " : "", c, x[0] ? "; " : "", x);
}

bool run_block(Launch &L, Dim3 bidx) {
  Pool &P = pool();
  const Dim3 bd = L.spec->block;
  L.ready.clear();
  L.ready_head = 0;
  L.at_barrier = L.exited = 0;
  L.epoch = ++tl_epoch;
  ++tl_block_serial;  // tl_sm90 stays on for the launch's later blocks once one used Hopper ops
  for (unsigned w = 0; w < L.warps.size(); ++w) {
    unsigned n = L.nthreads - w * 32 < 32 ? L.nthreads - w * 32 : 32;
    L.warps[w] = Warp();
    L.warps[w].lanes_mask = n == 32 ? 0xffffffffu : (1u << n) - 1;
  }
  std::memset(L.arena, 0xff, (L.dyn_bytes + L.static_bytes + 15) & ~size_t(15));
  for (unsigned t = 0; t < L.nthreads; ++t) {
    Fiber &f = L.fibers[t];
    f.info = ThreadInfo{Dim3{t % bd.x, (t / bd.x) % bd.y, t / (bd.x * bd.y)}, bidx, bd,
                        L.spec->grid, t};
    f.lane = t % 32;
    f.warp = t / 32;
    f.stack = P.stack(t);
    f.stack_size = P.stack_size;
    f.fake_stack = nullptr;
    f.copies.clear();
    f.commits = 0;
    f.file = nullptr;
    f.line = 0;
#if defined(PA_EMU_ASAN)
    ASAN_UNPOISON_MEMORY_REGION(f.stack, f.stack_size);  // left poisoned by abandoned fibers
#endif
#if defined(PA_EMU_TSAN)
    // A fiber never returns (it ends parked in to_scheduler), so each run leaves a few frames on
    // its TSan shadow call stack (64K entries). A fresh TSan fiber every 256 runs keeps far from
    // that limit; one per run would make a TSan build of the tests ~5x slower.
    if (f.tsan_fiber && ++f.tsan_runs % 256 == 0) {
      __tsan_destroy_fiber(f.tsan_fiber);
      f.tsan_fiber = nullptr;
    }
    if (!f.tsan_fiber) f.tsan_fiber = __tsan_create_fiber(0);
#endif
    ctx_init(f.ctx, f.stack, f.stack_size, fiber_main, &f);
    make_ready(L, t);
  }
  while (!L.failed) {
    if (L.ready_head == L.ready.size()) {
      unsigned done = 0;
      for (unsigned t = 0; t < L.nthreads; ++t) done += L.fibers[t].st == St::Done;
      if (done == L.nthreads) break;
      // Nobody can run: asynchronous copies in flight land now (as late as possible, so that a
      // thread touching their destination early is caught), which may complete an mbarrier.
      if (tl_sm90 && sm90::idle()) continue;
      deadlock(L);
      break;
    }
    if (L.shuffle) {
      size_t n = L.ready.size() - L.ready_head;
      std::swap(L.ready[L.ready_head], L.ready[L.ready_head + L.rng() % n]);
    }
    Fiber &f = L.fibers[L.ready[L.ready_head++]];
    if (L.ready_head == L.ready.size()) {  // keep the queue short
      L.ready.clear();
      L.ready_head = 0;
    }
    to_fiber(L, f);
  }
  return !L.failed;
}
}  // namespace

// =================================================================================================
// The core's interface to its extensions (emu_internal.h)
// =================================================================================================
namespace core {
unsigned self() { return tl_fiber->info.linear; }
unsigned block_threads() { return tl_launch->nthreads; }
uint64_t block_serial() { return tl_block_serial; }
void enable_sm90() { tl_sm90 = true; }
void park(const char *what, const char *file, int line) {
  Fiber &f = *tl_fiber;
  f.st = St::Wait;
  f.wait_what = what;
  f.file = file;
  f.line = line;
  to_scheduler(f, false);
}
void wake(unsigned t) {
  Launch &L = *tl_launch;
  if (L.fibers[t].st == St::Wait) make_ready(L, t);
}
bool exited(unsigned t) { return tl_launch->fibers[t].st == St::Done; }
void report(unsigned t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vrecord(*tl_launch, &tl_launch->fibers[t], fmt, ap);
  va_end(ap);
}
bool failed() { return tl_launch->failed; }
void new_epoch() { tl_launch->epoch = ++tl_epoch; }
char *arena() { return tl_launch->arena; }
size_t arena_bytes() { return kArenaBytes; }
void thread_name(char *buf, size_t n, unsigned t) { thread_str(buf, n, *tl_launch, t); }
const char *shared_name(const void *p, long long *offset) {
  const Launch &L = *tl_launch;
  const char *c = static_cast<const char *>(p);
  const Region *r = shared_region_of(L, c);
  *offset = static_cast<long long>(c - (r ? r->base : L.arena));
  return r ? r->name : "dynamic shared memory";
}
}  // namespace core

Status run(const LaunchSpec &spec) {
  Status st;
  auto fail = [&](const char *fmt, auto... a) {
    st.ok = false;
    int k = std::snprintf(st.msg, sizeof st.msg, "kernel %s: ", spec.name);
    std::snprintf(st.msg + k, sizeof st.msg - k, fmt, a...);
    return st;
  };
  if (tl_launch) return fail("launched from inside an emulated kernel (not supported)");
  const Dim3 g = spec.grid, b = spec.block;
  if (g.x == 0 || g.y == 0 || g.z == 0 || b.x == 0 || b.y == 0 || b.z == 0)
    return fail("grid (%u,%u,%u) and block (%u,%u,%u) must have no zero dimension", g.x, g.y, g.z,
                b.x, b.y, b.z);
  const unsigned long long nt = 1ull * b.x * b.y * b.z;
  if (nt > 1024 || b.z > 64)
    return fail("block (%u,%u,%u) has more than 1024 threads or z > 64", b.x, b.y, b.z);
  if (g.y > 65535 || g.z > 65535)
    return fail("grid (%u,%u,%u): y and z must be <= 65535", g.x, g.y, g.z);
  if (spec.dyn_smem > kArenaBytes)
    return fail("%zu bytes of dynamic shared memory exceed 227 KiB", spec.dyn_smem);

  const Options &opt = options();
  size_t stack = opt.stack_bytes;
#if defined(PA_EMU_ASAN)
  if (stack == 0) stack = size_t(1) << 20;
#else
  if (stack == 0) stack = size_t(256) << 10;
#endif
  Pool &P = pool();
  if (!P.reserve(unsigned(nt), stack)) return fail("cannot map %llu fiber stacks", nt);
  if (P.arena.size() < kArenaBytes) P.arena.resize(kArenaBytes);
  if (opt.racecheck && P.shadow.size() < kArenaBytes) P.shadow.assign(kArenaBytes, Shadow{});

  Launch L;
  L.spec = &spec;
  L.nthreads = unsigned(nt);
  L.fibers = P.fibers.data();
  L.warps.resize((nt + 31) / 32);
  L.ready.reserve(nt);
  L.rng.seed(opt.seed);
  L.shuffle = opt.shuffle;
  L.arena = P.arena.data();
  L.shadow = P.shadow.data();
  L.dyn_bytes = spec.dyn_smem;
  tl_launch = &L;
  tl_racecheck = opt.racecheck;
  tl_sm90 = false;
#if defined(PA_EMU_TSAN)
  L.sched_tsan = __tsan_get_current_fiber();
#endif
  for (unsigned z = 0; z < g.z && !L.failed; ++z)
    for (unsigned y = 0; y < g.y && !L.failed; ++y)
      for (unsigned x = 0; x < g.x && !L.failed; ++x) run_block(L, Dim3{x, y, z});
  tl_launch = nullptr;
  tl_racecheck = false;
  tl_sm90 = false;
  if (L.failed) {
    st.ok = false;
    std::memcpy(st.msg, L.msg, sizeof st.msg);
  }
  return st;
}

}  // namespace pa_emu
