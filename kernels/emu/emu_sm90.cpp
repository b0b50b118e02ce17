// emu_sm90.cpp -- the emulator's Hopper primitives: mbarrier, TMA loads, wgmma, named barriers,
// setmaxnreg, and their checks. See emu_sm90.h for the model and docs/emulator.md for the design.
#include "emu_sm90.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "emu_internal.h"

namespace pa_emu {

namespace {

constexpr uint8_t kTagMbar = 0xfe;  // shared byte tag: part of an mbarrier object
// other tags: 0 written by threads (or never), 1 + code for a TMA with swizzle code 0..4
uint8_t swizzle_tag(int bytes) { return uint8_t(bytes == 0 ? 1 : bytes == 32 ? 2 : bytes == 64 ? 3 : 4); }
const char *tag_name(uint8_t t) {
  switch (t) {
    case 1: return "no swizzle";
    case 2: return "32-byte swizzle";
    case 3: return "64-byte swizzle";
    case 4: return "128-byte swizzle";
  }
  return "?";
}

struct Mbar {
  uint32_t addr = 0;
  bool live = false;
  unsigned expected = 0, pending = 0;
  int64_t tx = 0;                           // transaction bytes still expected in this phase
  uint64_t phases = 0;                      // completed phases; the current phase's parity is phases & 1
  uint64_t announced = 0, landed = 0;       // expect_tx bytes and TMA bytes of this phase
  unsigned inflight = 0;                    // TMA loads not landed yet
  std::vector<unsigned> waiters;
  std::vector<uint32_t> rel, done;  // clocks: the arrivals of this phase; of the last completed one
};

struct TmaOp {
  uint32_t dst = 0, bar = 0;
  uint64_t phase = 0;  // the mbarrier's phase when the load was issued: the one it completes
  std::vector<uint8_t> image;  // the bytes as they land, swizzle applied
  uint8_t tag = 0;
  unsigned tid = 0;
  const char *file = nullptr;
  int line = 0;
};

struct Pend {  // one thread's share of an in-flight wgmma
  uint64_t op;
  uint32_t group;
  FragTrack *acc, *a;
  float *v, *next;
  int nv;
};

struct Store {  // a TMA store in flight: its op (the shared bytes it reads) and bulk group
  uint64_t op;
  uint32_t group;
};

struct Thread {
  uint32_t fence = 0, commits = 0, proxy = 0, store_commits = 0;
  std::vector<Pend> pend;
  std::vector<Store> stores;
};

struct WgOp {  // a wgmma or TMA store in flight: the shared bytes it reads, threads that hold it
  unsigned refs = 0;
  std::vector<uint32_t> reads;  // element addresses (2 bytes each)
  const char *what = "a wgmma", *wait = "wgmma_wait";
  const char *file = nullptr;
  int line = 0;
};

enum class WgKind { Wgmma, Setmaxnreg };
struct Warpgroup {
  unsigned arrived = 0;
  WgKind kind = WgKind::Wgmma;
  int sub = 0;
  const char *file = nullptr;
  int line = 0;
  const void *posts[128] = {nullptr};
};

struct NamedBar {
  unsigned count = 0, arrived = 0;
  const char *file = nullptr;
  int line = 0;
  std::vector<unsigned> waiters;  // parked in bar.sync
  std::vector<unsigned> syncers;  // this round's bar.sync arrivals (the waiters and the last one)
  std::vector<uint32_t> rel;      // what this round's arrivals release (State::vc)
};

struct State {
  uint64_t serial = ~uint64_t(0);
  std::vector<Mbar> bars;
  std::vector<TmaOp> tmas;  // in flight, in issue order
  std::vector<Thread> threads;
  std::vector<Warpgroup> wgs;
  NamedBar named[16];
  std::vector<uint8_t> tag;       // per shared byte (see kTagMbar)
  std::vector<uint16_t> wg_read;  // per shared byte: in-flight wgmmas reading it
  std::vector<uint16_t> gw_tid;   // per shared byte: 1 + the thread that last wrote it (generic)
  std::vector<uint32_t> gw_proxy; // that thread's fence.proxy.async count at the write
  std::vector<uint32_t> gw_clock; // the write's stamp (State::now)
  // Happens-before among the block's threads, for generic writes read by the async proxy (wgmma,
  // TMA store) and for the core's racecheck (partial named barriers, mbarrier chains). Time
  // stamps: `now` grows by one at every release; an access is stamped with `now` when it happens.
  // A release (mbarrier arrive, bar.arrive) is stamped with ++now, so the releasing thread's
  // accesses before it carry smaller stamps and those after it do not; a thread parked in bar.sync
  // or __syncwarp until the barrier completes releases with the completion's stamp (it accesses
  // nothing meanwhile). vc[t * nt + u]: the latest release stamp of thread u that thread t has
  // acquired, directly or through others (a completed mbarrier wait, bar.sync, __syncwarp);
  // vc[t * nt + t] = ~0. An access by u stamped a is ordered before t's next access when
  // max(vc[t * nt + u], floor) > a, floor being the stamp of the last __syncthreads (where every
  // thread acquires every other's release).
  uint32_t now = 1, floor = 0;
  std::vector<uint32_t> vc;
  std::vector<uint32_t> join;   // scratch of a barrier completing among a group of threads
  // Per thread t and warp w: the minimum of vc[t * nt + u] over the lanes u of w, valid while
  // wmin_ver equals ver[t] (ver[t] grows whenever t acquires)
  std::vector<uint32_t> ver, wmin, wmin_ver;
  unsigned cur_wg = 0;          // the warpgroup whose wgmma reads its operands
  std::vector<uint32_t> known;  // per wgmma: min over its warpgroup of vc[. * nt + u] (0: not yet)
  std::unordered_map<uint64_t, WgOp> ops;
  uint64_t next_op = 1;
};
thread_local State S;

State &st() {
  if (S.serial != core::block_serial()) {
    const size_t n = core::arena_bytes();
    S.serial = core::block_serial();
    S.bars.clear();
    S.tmas.clear();
    S.threads.assign(core::block_threads(), Thread());
    S.wgs.assign((core::block_threads() + 127) / 128, Warpgroup());
    for (NamedBar &b : S.named) b = NamedBar();
    S.tag.assign(n, 0);
    S.wg_read.assign(n, 0);
    S.gw_tid.assign(n, 0);
    S.gw_proxy.assign(n, 0);
    S.gw_clock.assign(n, 0);
    const size_t nt = core::block_threads(), nw = (nt + 31) / 32;
    S.now = 1;
    S.floor = 0;
    S.vc.assign(nt * nt, 0);
    for (size_t t = 0; t < nt; ++t) S.vc[t * nt + t] = ~0u;
    S.join.assign(nt, 0);
    S.ver.assign(nt, 1);
    S.wmin.assign(nt * nw, 0);
    S.wmin_ver.assign(nt * nw, 0);
    S.known.assign(nt, 0);
    S.ops.clear();
    core::enable_sm90();
  }
  return S;
}

// "'name' + offset" of a shared address, for messages.
struct Where {
  char s[96];
  explicit Where(uint32_t addr) {
    long long off = 0;
    const char *name = core::shared_name(core::arena() + addr, &off);
    std::snprintf(s, sizeof s, "'%s' + %lld", name, off);
  }
};

// ---- happens-before (State::vc) ----
uint32_t *clock_of(State &s, unsigned t) { return s.vc.data() + size_t(t) * s.threads.size(); }
// What thread t knows of thread u's releases (~0 for u = t).
uint32_t known_of(State &s, unsigned t, unsigned u) {
  return std::max(clock_of(s, t)[u], s.floor);
}
// The running thread releases what it knows into `into`, its own entry stamped `own` (0: the
// caller stamps it later).
void release_into(State &s, std::vector<uint32_t> &into, uint32_t own) {
  const unsigned nt = unsigned(s.threads.size()), me = core::self();
  if (into.size() != nt) into.assign(nt, 0);
  const uint32_t *c = clock_of(s, me);
  for (unsigned u = 0; u < nt; ++u)
    if (u != me) into[u] = std::max(into[u], c[u]);
  into[me] = std::max(into[me], own);
}
void acquire_from(State &s, unsigned t, const std::vector<uint32_t> &from) {
  if (from.empty()) return;
  uint32_t *c = clock_of(s, t);
  for (size_t u = 0; u < from.size(); ++u) c[u] = std::max(c[u], from[u]);  // c[t] stays ~0
  ++s.ver[t];
}
// A barrier completing among `group`, every member parked in it: each releases what it knows,
// stamped with the completion, and acquires everything released.
void sync_group(State &s, const unsigned *group, size_t n) {
  const uint32_t stamp = ++s.now;
  std::vector<uint32_t> &j = s.join;
  std::fill(j.begin(), j.end(), 0u);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t *c = clock_of(s, group[i]);
    for (size_t u = 0; u < j.size(); ++u)
      if (u != group[i]) j[u] = std::max(j[u], c[u]);
  }
  for (size_t i = 0; i < n; ++i) j[group[i]] = stamp;
  for (size_t i = 0; i < n; ++i) acquire_from(s, group[i], j);
}
// Whether the generic write to shared byte b is ordered before an async-proxy read by thread t.
bool write_ordered_before(State &s, uint32_t b, unsigned t) {
  const unsigned u = s.gw_tid[b] - 1u;
  return known_of(s, t, u) > s.gw_clock[b];
}

// Bounds and alignment of an n-byte object at p in region r (no race or ownership tracking).
void check_object(const void *p, size_t n, size_t align, const Region &r, const char *what) {
  const char *c = static_cast<const char *>(p);
  if (r.base == nullptr) access_fault(Space::Shared, r, p, n, true, what);
  if (c < r.base || c + n > r.base + r.bytes) access_fault(Space::Shared, r, p, n, true, what);
  if (reinterpret_cast<uintptr_t>(p) % align) access_fault(Space::Shared, r, p, n, true, what);
}

Mbar *find_bar(uint32_t addr) {
  for (Mbar &b : S.bars)
    if (b.addr == addr) return &b;
  return nullptr;
}
Mbar &live_bar(const void *p, const Region &r, const char *op, const char *file, int line) {
  check_object(p, 8, 8, r, "(mbarrier object) out of range or misaligned");
  const uint32_t addr = shared_address(p);
  Mbar *b = find_bar(addr);
  if (!b || !b->live)
    fault("%s at %s:%d on the mbarrier at %s, which was not initialised (mbarrier_init)", op, file,
          line, Where(addr).s);
  return *b;
}

// After an arrival or landed bytes: completes the phase when nothing is pending. Returns a
// message (and changes nothing) when more bytes landed than were announced.
const char *try_complete(Mbar &b, char *msg, size_t n) {
  if (b.pending != 0) return nullptr;
  if (b.tx < 0) {
    std::snprintf(msg, n,
                  "mbarrier at %s, phase %llu: TMA loads delivered %llu bytes but expect_tx "
                  "announced %llu (the expect_tx byte count must equal the bytes of the loads)",
                  Where(b.addr).s, static_cast<unsigned long long>(b.phases),
                  static_cast<unsigned long long>(b.landed),
                  static_cast<unsigned long long>(b.announced));
    return msg;
  }
  if (b.tx > 0) return nullptr;
  ++b.phases;
  b.done.swap(b.rel);
  b.rel.assign(b.done.size(), 0);
  b.pending = b.expected;
  b.announced = b.landed = 0;
  for (unsigned t : b.waiters) core::wake(t);
  b.waiters.clear();
  return nullptr;
}

void land(TmaOp &op, char *msg, size_t n, const char **err) {
  std::memcpy(core::arena() + op.dst, op.image.data(), op.image.size());
  for (size_t i = 0; i < op.image.size(); ++i) {
    S.tag[op.dst + i] = op.tag;
    S.gw_tid[op.dst + i] = 0;
  }
  Mbar *b = find_bar(op.bar);
  if (!b) return;  // re-initialised meanwhile: reported when it was
  --b->inflight;
  if (b->phases != op.phase && !*err) {
    std::snprintf(msg, n,
                  "the TMA load issued at %s:%d lands on the mbarrier at %s after the phase it "
                  "was issued in (%llu) completed: expect_tx announced fewer bytes than the loads "
                  "deliver",
                  op.file, op.line, Where(b->addr).s, static_cast<unsigned long long>(op.phase));
    *err = msg;
  }
  b->tx -= int64_t(op.image.size());
  b->landed += op.image.size();
  if (!*err) *err = try_complete(*b, msg, n);
}

void release_op(uint64_t id) {
  auto it = S.ops.find(id);
  if (it == S.ops.end() || --it->second.refs != 0) return;
  for (uint32_t a : it->second.reads) {
    --S.wg_read[a];
    --S.wg_read[a + 1];
  }
  S.ops.erase(it);
}

}  // namespace

uint32_t shared_address(const void *p) {
  return uint32_t(static_cast<const char *>(p) - core::arena());
}

int desc_swizzle_bytes(uint64_t desc) {
  switch (desc >> 62) {
    case 1: return 128;
    case 2: return 64;
    case 3: return 32;
  }
  return 0;
}

uint32_t desc_address(uint64_t d, bool k_major, unsigned mn, unsigned k) {
  const uint32_t start = uint32_t(d & 0x3fff) << 4, lbo = uint32_t((d >> 16) & 0x3fff) << 4,
                 sbo = uint32_t((d >> 32) & 0x3fff) << 4;
  const unsigned w = unsigned(desc_swizzle_bytes(d));
  if (k_major) {
    // 8-row core matrices: rows at 16 bytes (none) or at the swizzle width, 8-row groups at SBO;
    // without swizzle the two 8-element halves of k are LBO apart (swizzled: adjacent).
    if (w == 0) return start + (mn % 8) * 16 + (mn / 8) * sbo + (k / 8) * lbo + (k % 8) * 2;
    return start + (mn % 8) * w + (mn / 8) * sbo + k * 2;
  }
  // MN-major: mn contiguous. None: 8 x 8 core matrices (k rows of 16 bytes), mn groups of 8 at
  // SBO, k groups of 8 at LBO. Swizzled: rows of w bytes (w/2 elements of mn) per k, 8 k-rows
  // form the swizzle atom; atoms along mn at LBO, along k at SBO.
  if (w == 0) return start + (mn % 8) * 2 + (mn / 8) * sbo + (k % 8) * 16 + (k / 8) * lbo;
  const unsigned per = w / 2;
  return start + (mn % per) * 2 + (mn / per) * lbo + (k % 8) * w + (k / 8) * sbo;
}

// =================================================================================================
// Shared-memory accesses by threads (called by the core for every checked access)
// =================================================================================================
namespace sm90 {
void shared_access(const void *p, size_t n, bool write) {
  State &s = st();
  const uint32_t addr = shared_address(p);
  const unsigned me = core::self();
  for (const TmaOp &op : s.tmas)
    if (addr < op.dst + op.image.size() && op.dst < addr + n) {
      char who[32];
      core::thread_name(who, sizeof who, op.tid);
      fault("shared %zu-byte %s at %s: a TMA load issued at %s:%d by thread %s still writes these "
            "bytes (wait on its mbarrier first)",
            n, write ? "write" : "read", Where(addr).s, op.file, op.line, who);
    }
  for (size_t i = 0; i < n; ++i) {
    if (s.tag[addr + i] == kTagMbar)
      fault("shared %zu-byte %s at %s touches an mbarrier object (use the mbarrier operations)", n,
            write ? "write" : "read", Where(addr).s);
    if (write && s.wg_read[addr + i]) {
      const WgOp *op = nullptr;
      for (const auto &kv : s.ops)
        for (uint32_t a : kv.second.reads)
          if (a == addr + i || a + 1 == addr + i) op = &kv.second;
      fault("shared %zu-byte write at %s: %s issued at %s:%d still reads these bytes (%s first)",
            n, Where(addr).s, op ? op->what : "an async operation", op ? op->file : "?",
            op ? op->line : 0, op ? op->wait : "wait");
    }
  }
  if (write)
    for (size_t i = 0; i < n; ++i) {
      s.tag[addr + i] = 0;
      s.gw_tid[addr + i] = uint16_t(me + 1);
      s.gw_proxy[addr + i] = s.threads[me].proxy;
      s.gw_clock[addr + i] = s.now;
    }
}

bool idle() {
  State &s = st();
  if (s.tmas.empty()) return false;
  char msg[400];
  const char *err = nullptr;
  unsigned who = 0;
  for (TmaOp &op : s.tmas) {
    const char *before = err;
    land(op, msg, sizeof msg, &err);
    if (err && !before) who = op.tid;
  }
  s.tmas.clear();
  if (err) core::report(who, "%s", err);
  return true;
}

// A completed __syncthreads: every thread knows every access before it.
void block_barrier() {
  State &s = st();
  s.floor = ++s.now;
}
// A completed __syncwarp of the lanes in `mask` of warp `warp`.
void warp_barrier(unsigned warp, uint32_t mask) {
  State &s = st();
  unsigned group[32];
  size_t n = 0;
  for (unsigned l = 0; l < 32; ++l)
    if ((mask >> l & 1u) && warp * 32 + l < s.threads.size()) group[n++] = warp * 32 + l;
  sync_group(s, group, n);
}

uint32_t stamp() { return st().now; }
bool ordered(unsigned u, uint32_t at) {
  State &s = st();
  return known_of(s, core::self(), u) > at;
}
bool warps_ordered(uint32_t warps, uint32_t at) {
  State &s = st();
  const unsigned me = core::self(), nt = unsigned(s.threads.size()), nw = (nt + 31) / 32;
  if (s.floor > at) return true;
  for (unsigned w = 0; w < nw; ++w) {
    if (!(warps >> w & 1u)) continue;
    const size_t k = size_t(me) * nw + w;
    if (s.wmin_ver[k] != s.ver[me]) {
      const uint32_t *c = clock_of(s, me);
      uint32_t m = ~0u;
      for (unsigned u = w * 32; u < std::min(nt, w * 32 + 32); ++u) m = std::min(m, c[u]);
      s.wmin[k] = m;
      s.wmin_ver[k] = s.ver[me];
    }
    if (s.wmin[k] <= at) return false;
  }
  return true;
}

void describe(char *buf, size_t n) {
  State &s = st();
  size_t k = 0;
  for (const Mbar &b : s.bars) {
    if (b.waiters.empty() || k + 1 >= n) continue;
    k += size_t(std::snprintf(
        buf + k, n - k,
        "%smbarrier at %s: phase %llu has %u of %u arrivals missing, expect_tx announced %llu "
        "bytes, TMA loads delivered %llu",
        k ? "; " : "", Where(b.addr).s, static_cast<unsigned long long>(b.phases), b.pending,
        b.expected, static_cast<unsigned long long>(b.announced),
        static_cast<unsigned long long>(b.landed)));
  }
}
}  // namespace sm90

// =================================================================================================
// mbarrier
// =================================================================================================
void mbar_init(void *bar, const Region &r, unsigned count, const char *file, int line) {
  State &s = st();
  check_object(bar, 8, 8, r, "(mbarrier object) out of range or misaligned");
  if (count == 0 || count >= (1u << 20))
    fault("mbarrier_init at %s:%d with count %u: must be in 1..2^20-1", file, line, count);
  const uint32_t addr = shared_address(bar);
  Mbar *b = find_bar(addr);
  if (b && (!b->waiters.empty() || b->inflight))
    fault("mbarrier_init at %s:%d re-initialises the mbarrier at %s while threads wait on it or "
          "TMA loads complete on it",
          file, line, Where(addr).s);
  if (!b) {
    s.bars.push_back(Mbar());
    b = &s.bars.back();
  }
  *b = Mbar();
  b->addr = addr;
  b->live = true;
  b->expected = b->pending = count;
  for (int i = 0; i < 8; ++i) s.tag[addr + i] = kTagMbar;
}

void mbar_arrive(void *bar, const Region &r, bool with_tx, unsigned tx, const char *file,
                 int line) {
  State &s = st();
  Mbar &b = live_bar(bar, r, "mbarrier_arrive", file, line);
  release_into(s, b.rel, ++s.now);
  if (with_tx) {
    b.tx += tx;
    b.announced += tx;
  }
  --b.pending;
  char msg[400];
  if (const char *e = try_complete(b, msg, sizeof msg)) fault("%s", e);
}

void mbar_expect_tx(void *bar, const Region &r, unsigned tx, const char *file, int line) {
  st();
  Mbar &b = live_bar(bar, r, "mbarrier_expect_tx", file, line);
  b.tx += tx;
  b.announced += tx;
}

void mbar_wait(void *bar, const Region &r, unsigned parity, const char *file, int line) {
  st();
  if (parity > 1) fault("mbarrier_wait at %s:%d with parity %u: must be 0 or 1", file, line, parity);
  for (;;) {
    Mbar &b = live_bar(bar, r, "mbarrier_wait", file, line);
    if ((b.phases & 1u) != parity) {  // the phase with this parity has completed
      acquire_from(S, core::self(), b.done);
      return;
    }
    b.waiters.push_back(core::self());
    core::park("an mbarrier wait", file, line);
  }
}

// =================================================================================================
// TMA
// =================================================================================================
void tma_load(const TmaMap &m, void *dst, const Region &dreg, const int32_t *coords, void *bar,
              const Region &breg, const char *file, int line) {
  State &s = st();
  if (m.rank < 1 || m.rank > 5)
    fault("TMA load at %s:%d with a tensor map that was not made (make_tma_map)", file, line);
  size_t bytes = size_t(m.elem_bytes);
  for (int i = 0; i < m.rank; ++i) bytes *= m.box[i];
  check_object(dst, bytes, 16, dreg, "(TMA destination) out of range or misaligned");
  const uint32_t daddr = shared_address(dst);
  if (daddr % 128)
    fault("TMA load at %s:%d: the destination %s is not 128-byte aligned", file, line,
          Where(daddr).s);
  Mbar &b = live_bar(bar, breg, "TMA load", file, line);
  for (const TmaOp &op : s.tmas)
    if (daddr < op.dst + op.image.size() && op.dst < daddr + bytes)
      fault("TMA load at %s:%d writes %s, which the TMA load issued at %s:%d still writes", file,
            line, Where(daddr).s, op.file, op.line);
  for (size_t i = 0; i < bytes; ++i)
    if (s.wg_read[daddr + i])
      fault("TMA load at %s:%d writes %s, which an in-flight wgmma or TMA store reads (wait for "
            "it first)",
            file, line, Where(daddr + uint32_t(i)).s);
  TmaOp op;
  op.dst = daddr;
  op.bar = b.addr;
  op.phase = b.phases;
  op.tag = swizzle_tag(m.swizzle);
  op.tid = core::self();
  op.file = file;
  op.line = line;
  op.image.assign(bytes, 0);
  // Walk the box innermost first; o is the element's byte offset in the dense box.
  uint32_t idx[5] = {0, 0, 0, 0, 0};
  const size_t eb = size_t(m.elem_bytes);
  for (size_t o = 0; o < bytes; o += eb) {
    bool inside = true;
    int64_t off = 0;  // byte offset of the element from the tensor's base (when inside)
    for (int d = 0; d < m.rank; ++d) {
      const int64_t c = int64_t(coords[d]) + idx[d];
      if (c < 0 || uint64_t(c) >= m.dims[d]) inside = false;
      off += c * int64_t(m.strides[d]);
    }
    const uint32_t phys = swizzle_address(daddr + uint32_t(o), m.swizzle) - daddr;
    if (inside) {
      const char *src = m.base + off;
      check_access(Space::Global, m.global, src, eb, 1, false);
      std::memcpy(&op.image[phys], src, eb);
    }
    for (int d = 0; d < m.rank && ++idx[d] == m.box[d]; ++d) idx[d] = 0;
  }
  ++b.inflight;
  s.tmas.push_back(std::move(op));
}

void tma_store(const TmaMap &m, const void *src, const Region &sreg, const int32_t *coords,
               const char *file, int line) {
  State &s = st();
  if (m.rank < 1 || m.rank > 5)
    fault("TMA store at %s:%d with a tensor map that was not made (make_tma_map)", file, line);
  size_t bytes = size_t(m.elem_bytes);
  for (int i = 0; i < m.rank; ++i) bytes *= m.box[i];
  check_object(src, bytes, 16, sreg, "(TMA store source) out of range or misaligned");
  const uint32_t saddr = shared_address(src);
  if (saddr % 128)
    fault("TMA store at %s:%d: the source %s is not 128-byte aligned", file, line, Where(saddr).s);
  for (const TmaOp &op : s.tmas)
    if (saddr < op.dst + op.image.size() && op.dst < saddr + bytes)
      fault("TMA store at %s:%d reads %s, which the TMA load issued at %s:%d still writes", file,
            line, Where(saddr).s, op.file, op.line);
  const uint64_t id = s.next_op++;
  WgOp &op = s.ops[id];
  op.refs = 1;
  op.what = "a TMA store";
  op.wait = "tma_store_wait";
  op.file = file;
  op.line = line;
  uint32_t idx[5] = {0, 0, 0, 0, 0};
  const size_t eb = size_t(m.elem_bytes);
  for (size_t o = 0; o < bytes; o += eb) {
    bool inside = true;
    int64_t off = 0;
    for (int d = 0; d < m.rank; ++d) {
      const int64_t c = int64_t(coords[d]) + idx[d];
      if (c < 0 || uint64_t(c) >= m.dims[d]) inside = false;
      off += c * int64_t(m.strides[d]);
    }
    const uint32_t a = swizzle_address(saddr + uint32_t(o), m.swizzle);
    for (uint32_t b = a; b < a + eb; ++b) {
      if (s.tag[b] == kTagMbar)
        fault("TMA store at %s:%d reads the mbarrier object at %s", file, line, Where(b).s);
      if (s.tag[b] && s.tag[b] != swizzle_tag(m.swizzle))
        fault("TMA store at %s:%d with %s reads %s, which a TMA load wrote with %s", file, line,
              tag_name(swizzle_tag(m.swizzle)), Where(b).s, tag_name(s.tag[b]));
      if (s.gw_tid[b] && s.threads[s.gw_tid[b] - 1].proxy == s.gw_proxy[b]) {
        char who[32];
        core::thread_name(who, sizeof who, s.gw_tid[b] - 1u);
        fault("TMA store at %s:%d reads %s, written by thread %s with no fence_proxy_async after "
              "the write (the async proxy may not see it)",
              file, line, Where(b).s, who);
      }
      if (s.gw_tid[b] && !write_ordered_before(s, b, core::self())) {
        char who[32];
        core::thread_name(who, sizeof who, s.gw_tid[b] - 1u);
        fault("TMA store at %s:%d reads %s, written by thread %s, and no barrier orders that write "
              "before the store (mbarrier, named barrier, __syncthreads or __syncwarp from the "
              "writer to this thread)",
              file, line, Where(b).s, who);
      }
    }
    if (inside) {
      char *dst = const_cast<char *>(m.base) + off;
      check_access(Space::Global, m.global, dst, eb, 1, true);
      std::memcpy(dst, core::arena() + a, eb);
    }
    for (size_t k = 0; k < eb; k += 2) op.reads.push_back(a + uint32_t(k));
    for (int d = 0; d < m.rank && ++idx[d] == m.box[d]; ++d) idx[d] = 0;
  }
  for (uint32_t a : op.reads) {
    ++s.wg_read[a];
    ++s.wg_read[a + 1];
  }
  Thread &th = s.threads[core::self()];
  th.stores.push_back(Store{id, th.store_commits});
}

void tma_store_commit() { ++st().threads[core::self()].store_commits; }

void tma_store_wait(int pending, const char *file, int line) {
  State &s = st();
  if (pending < 0 || pending > 63)
    fault("tma_store_wait<%d> at %s:%d: N must be in 0..63", pending, file, line);
  Thread &th = s.threads[core::self()];
  size_t keep = 0;
  for (size_t i = 0; i < th.stores.size(); ++i) {
    if (th.stores[i].group + uint32_t(pending) < th.store_commits)
      release_op(th.stores[i].op);
    else
      th.stores[keep++] = th.stores[i];
  }
  th.stores.resize(keep);
}

// =================================================================================================
// wgmma
// =================================================================================================
void frag_access(FragTrack &t, bool accumulator, bool write, int i, const char *file, int line) {
  State &s = st();
  if (t.pending && (accumulator || write))
    fault("%s %s element %d while the wgmma issued at %s:%d, which %s it, is in flight "
          "(wgmma_wait retires it)",
          write ? "writes" : "reads", accumulator ? "accumulator" : "A fragment", i,
          t.wfile ? t.wfile : "?", t.wline, accumulator ? "writes" : "reads");
  t.touched = s.threads[core::self()].fence + 1;
  t.file = file;
  t.line = line;
}

void frag_destroyed(FragTrack &t, const char *, int) {
  if (t.pending)
    fault("a wgmma fragment goes out of scope while the wgmma issued at %s:%d still uses it "
          "(wgmma_wait first)",
          t.wfile ? t.wfile : "?", t.wline);
}

namespace {
double half_value(uint16_t h, bool bf16) {
  if (bf16) {
    uint32_t b = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  }
  int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  double sg = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 0x1f) return m ? NAN : sg * INFINITY;
  if (e == 0) return sg * std::ldexp(double(m), -24);
  return sg * std::ldexp(double(m | 0x400), e - 25);
}

// Reads element (mn, k) of a descriptor operand, checking what the hardware would not.
double read_operand(State &s, uint64_t desc, bool k_major, unsigned mn, unsigned k, bool bf16,
                    const char *which, WgOp &op, const char *file, int line) {
  const uint32_t pre = desc_address(desc, k_major, mn, k);
  const int w = desc_swizzle_bytes(desc);
  const uint32_t a = swizzle_address(pre, w);
  if (((desc >> 49) & 7) != 0)
    fault("wgmma at %s:%d: %s descriptor has a base offset (not modelled: align swizzled tiles to "
          "the swizzle pattern's repeat)",
          file, line, which);
  if (size_t(a) + 2 > core::arena_bytes())
    fault("wgmma at %s:%d: %s descriptor addresses shared byte %u, beyond shared memory", file,
          line, which, a);
  for (const TmaOp &t : s.tmas)
    if (a < t.dst + t.image.size() && t.dst < a + 2)
      fault("wgmma at %s:%d: %s operand at %s is still being written by the TMA load issued at "
            "%s:%d (wait on its mbarrier first)",
            file, line, which, Where(a).s, t.file, t.line);
  for (uint32_t b = a; b < a + 2; ++b) {
    const uint8_t tag = s.tag[b];
    if (tag == kTagMbar)
      fault("wgmma at %s:%d: %s operand at %s is an mbarrier object", file, line, which,
            Where(a).s);
    if (tag && tag != swizzle_tag(w))
      fault("wgmma at %s:%d: the %s descriptor says %s but the TMA load that wrote %s used %s",
            file, line, which, tag_name(swizzle_tag(w)), Where(a).s, tag_name(tag));
    if (s.gw_tid[b] && s.threads[s.gw_tid[b] - 1].proxy == s.gw_proxy[b]) {
      char who[32];
      core::thread_name(who, sizeof who, s.gw_tid[b] - 1u);
      fault("wgmma at %s:%d: %s operand at %s was written by thread %s with no "
            "fence_proxy_async after the write (the async proxy may not see it)",
            file, line, which, Where(a).s, who);
    }
    if (s.gw_tid[b]) {  // ordered before every thread of the issuing warpgroup (State::known)
      const unsigned u = s.gw_tid[b] - 1u;
      if (s.known[u] == 0) {
        uint32_t m = ~0u;
        for (unsigned t = 0; t < 128; ++t) m = std::min(m, known_of(s, s.cur_wg * 128 + t, u));
        s.known[u] = m;  // > 0: a stamp of a release, or ~0 (0 means not computed)
      }
      if (s.known[u] <= s.gw_clock[b]) {
        char who[32];
        core::thread_name(who, sizeof who, u);
        fault("wgmma at %s:%d: %s operand at %s was written by thread %s, and no barrier orders "
              "that write before this wgmma for every thread of the warpgroup (mbarrier, named "
              "barrier, __syncthreads or __syncwarp from the writer to them)",
              file, line, which, Where(a).s, who);
      }
    }
  }
  op.reads.push_back(a);
  uint16_t h;
  std::memcpy(&h, core::arena() + a, 2);
  return half_value(h, bf16);
}

void wgmma_compute(State &s, Warpgroup &g, unsigned wg, const char *file, int line) {
  const WgmmaArgs &w0 = *static_cast<const WgmmaArgs *>(g.posts[0]);
  const int n = w0.n;
  for (unsigned t = 1; t < 128; ++t) {
    const WgmmaArgs &w = *static_cast<const WgmmaArgs *>(g.posts[t]);
    if (w.adesc != w0.adesc || w.bdesc != w0.bdesc || w.scale_d != w0.scale_d ||
        (w.a == nullptr) != (w0.a == nullptr) || w.bf16 != w0.bf16 || w.trans_a != w0.trans_a ||
        w.trans_b != w0.trans_b)
      fault("wgmma at %s:%d: thread %u of the warpgroup passes other descriptors, scale-d or "
            "form than thread 0 of the warpgroup (they must be warpgroup-uniform)",
            file, line, t);
  }
  const uint64_t id = s.next_op++;
  WgOp &op = s.ops[id];
  op.file = file;
  op.line = line;
  op.refs = 128;
  static thread_local double A[64][16], B[16][256];
  s.cur_wg = wg;
  std::fill(s.known.begin(), s.known.end(), 0u);
  if (w0.a == nullptr) {
    for (unsigned m = 0; m < 64; ++m)
      for (unsigned k = 0; k < 16; ++k)
        A[m][k] = read_operand(s, w0.adesc, !w0.trans_a, m, k, w0.bf16, "A", op, file, line);
  } else {
    // RS: warp w holds rows 16w..16w+15 in the mma.m16n8k16 A layout (see sm90.cuh).
    for (unsigned t = 0; t < 128; ++t) {
      const uint32_t *r = static_cast<const WgmmaArgs *>(g.posts[t])->a;
      const unsigned m0 = 16 * (t / 32) + (t % 32) / 4, k0 = 2 * (t % 4);
      for (int h = 0; h < 2; ++h) {
        A[m0][k0 + h] = half_value(uint16_t(r[0] >> (16 * h)), w0.bf16);
        A[m0 + 8][k0 + h] = half_value(uint16_t(r[1] >> (16 * h)), w0.bf16);
        A[m0][k0 + 8 + h] = half_value(uint16_t(r[2] >> (16 * h)), w0.bf16);
        A[m0 + 8][k0 + 8 + h] = half_value(uint16_t(r[3] >> (16 * h)), w0.bf16);
      }
    }
  }
  for (int c = 0; c < n; ++c)
    for (unsigned k = 0; k < 16; ++k)
      B[k][c] = read_operand(s, w0.bdesc, !w0.trans_b, unsigned(c), k, w0.bf16, "B", op, file, line);
  for (uint32_t a : op.reads) {
    ++s.wg_read[a];
    ++s.wg_read[a + 1];
  }
  for (unsigned t = 0; t < 128; ++t) {
    const WgmmaArgs &w = *static_cast<const WgmmaArgs *>(g.posts[t]);
    const unsigned m0 = 16 * (t / 32) + (t % 32) / 4, c0 = 2 * (t % 4);
    const float *in = w.acctrack->pending ? w.acc_next : w.acc;
    for (int i = 0; i < n / 2; ++i) {
      const unsigned row = m0 + 8 * ((i >> 1) & 1), col = 8 * unsigned(i >> 2) + c0 + (i & 1);
      // 16-bit products are exact in double; the sum of 16 is rounded once to fp32.
      double acc = w0.scale_d ? double(in[i]) : 0.0;
      for (int k = 0; k < 16; ++k) acc += A[row][k] * B[k][col];
      w.acc_next[i] = float(acc);
    }
    ++w.acctrack->pending;
    w.acctrack->wfile = file;
    w.acctrack->wline = line;
    if (w.atrack) {
      ++w.atrack->pending;
      w.atrack->wfile = file;
      w.atrack->wline = line;
    }
    Thread &th = s.threads[wg * 128 + t];
    th.pend.push_back(Pend{id, th.commits, w.acctrack, w.atrack, w.acc, w.acc_next, n / 2});
  }
}

const char *wg_kind_name(WgKind k) {
  return k == WgKind::Wgmma ? "wgmma (a warpgroup collective)" : "setmaxnreg (a warpgroup collective)";
}

// All 128 threads of the warpgroup post; the last one to arrive runs `done`.
template <class Done>
void warpgroup_collective(WgKind kind, int sub, const void *post, const char *file, int line,
                          Done done) {
  State &s = st();
  const unsigned me = core::self(), wg = me / 128;
  if ((wg + 1) * 128 > core::block_threads())
    fault("%s at %s:%d: warpgroup %u is incomplete (the block has %u threads; a warpgroup is 4 "
          "whole warps)",
          wg_kind_name(kind), file, line, wg, core::block_threads());
  Warpgroup &g = s.wgs[wg];
  if (g.arrived == 0) {
    g.kind = kind;
    g.sub = sub;
    g.file = file;
    g.line = line;
  } else if (g.kind != kind || g.sub != sub) {
    fault("warpgroup divergence: this thread is at %s (%s:%d, %d) while others of its warpgroup "
          "wait at %s (%s:%d, %d)",
          wg_kind_name(kind), file, line, sub, wg_kind_name(g.kind), g.file, g.line, g.sub);
  }
  g.posts[me % 128] = post;
  if (++g.arrived < 128) {
    core::park(wg_kind_name(kind), file, line);
    return;
  }
  done(s, g, wg);
  g.arrived = 0;
  for (unsigned t = 0; t < 128; ++t)
    if (wg * 128 + t != me) core::wake(wg * 128 + t);
}
}  // namespace

void wgmma(const WgmmaArgs &w, const char *file, int line) {
  State &s = st();
  const Thread &th = s.threads[core::self()];
  if (w.n < 8 || w.n > 256 || w.n % 8)
    fault("wgmma at %s:%d: N = %d (m64nNk16 has N = 8..256 in steps of 8)", file, line, w.n);
  if (th.fence == 0)
    fault("wgmma at %s:%d: no wgmma_fence before the first wgmma of this thread", file, line);
  if (w.acctrack->touched == th.fence + 1)
    fault("wgmma at %s:%d: the accumulator was accessed after the last wgmma_fence (wgmma_fence "
          "must separate register accesses from a wgmma using them)",
          file, line);
  if (w.atrack && w.atrack->touched == th.fence + 1)
    fault("wgmma at %s:%d: the A fragment was accessed after the last wgmma_fence (wgmma_fence "
          "must separate register accesses from a wgmma using them)",
          file, line);
  warpgroup_collective(WgKind::Wgmma, w.n, &w, file, line,
                       [&](State &st_, Warpgroup &g, unsigned wg) {
                         wgmma_compute(st_, g, wg, file, line);
                       });
}

void wgmma_fence() { ++st().threads[core::self()].fence; }
void wgmma_commit() { ++st().threads[core::self()].commits; }

void wgmma_wait(int pending, const char *file, int line) {
  State &s = st();
  if (pending < 0 || pending > 7)
    fault("wgmma_wait<%d> at %s:%d: N must be in 0..7", pending, file, line);
  Thread &th = s.threads[core::self()];
  size_t keep = 0;
  for (size_t i = 0; i < th.pend.size(); ++i) {
    Pend p = th.pend[i];
    if (p.group + uint32_t(pending) < th.commits) {
      if (--p.acc->pending == 0) std::memcpy(p.v, p.next, sizeof(float) * size_t(p.nv));
      if (p.a) --p.a->pending;
      release_op(p.op);
    } else {
      th.pend[keep++] = p;
    }
  }
  th.pend.resize(keep);
}

// =================================================================================================
// Fences, named barriers, setmaxnreg
// =================================================================================================
void fence_proxy_async() { ++st().threads[core::self()].proxy; }

void named_barrier(int id, int count, bool wait, const char *file, int line) {
  State &s = st();
  const unsigned nt = core::block_threads();
  if (id < 1 || id > 15)
    fault("named barrier %d at %s:%d: ids are 1..15 (0 is __syncthreads')", id, file, line);
  if (count < 32 || count % 32 || unsigned(count) > (nt + 31) / 32 * 32)
    fault("named barrier %d at %s:%d with %d threads: must be a multiple of 32 in 32..%u", id,
          file, line, count, (nt + 31) / 32 * 32);
  NamedBar &b = s.named[id];
  if (b.arrived == 0) {
    b.count = unsigned(count);
    b.file = file;
    b.line = line;
  } else if (b.count != unsigned(count)) {
    fault("named barrier %d at %s:%d expects %d threads while others arrived at %s:%d expecting %u",
          id, file, line, count, b.file, b.line, b.count);
  }
  const unsigned me = core::self();
  // bar.arrive releases now; a bar.sync arrival is parked until the barrier completes, so its own
  // release is stamped with the completion (sync_group's reasoning)
  release_into(s, b.rel, wait ? 0u : ++s.now);
  if (wait) b.syncers.push_back(me);
  if (++b.arrived == b.count) {
    const uint32_t done = ++s.now;
    for (unsigned t : b.syncers) b.rel[t] = std::max(b.rel[t], done);
    for (unsigned t : b.syncers) acquire_from(s, t, b.rel);  // bar.sync: acquires every arrival
    for (unsigned t : b.waiters) core::wake(t);
    // every thread of the block waited here: a barrier interval of the racecheck, as
    // __syncthreads (with a bar.arrive among them, the vector clocks above order what it should)
    if (b.count >= nt && b.syncers.size() == b.count) core::new_epoch();
    std::fill(b.rel.begin(), b.rel.end(), 0u);
    b.waiters.clear();
    b.syncers.clear();
    b.arrived = 0;
    return;
  }
  if (wait) {
    b.waiters.push_back(me);
    core::park("a named barrier (bar.sync)", file, line);
  }
}

void setmaxnreg(int count, bool inc, const char *file, int line) {
  if (count < 24 || count > 256 || count % 8)
    fault("setmaxnreg at %s:%d with %d registers: must be a multiple of 8 in 24..256", file, line,
          count);
  warpgroup_collective(WgKind::Setmaxnreg, inc ? count : -count, nullptr, file, line,
                       [](State &, Warpgroup &, unsigned) {});
}

}  // namespace pa_emu
