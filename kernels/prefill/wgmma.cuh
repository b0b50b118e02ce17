// wgmma.cuh -- the sm_90a (Hopper) prefill kernel: attention forward in the FlashAttention-3 manner,
// written against the device layer's Hopper primitives (kernels/device/sm90.cuh), so that nvcc
// builds it for sm_90a and the emulator runs the same source on the CPU.
//
// First version, kept simple: head dims 64, 128 and 256, bf16/f16 inputs; every mask (causal
// bottom-right, windows, documents + anchors, with tile skipping), GQA, dense and varlen, softcap;
// sink logits; the PE kinds NONE, ROPE, ALIBI, T5, KERPLE (log, power), FIRE and XPOS (at hd256
// bf16 with the key pre-pass only)
// through the policies mma.cuh uses (kernels/pe/*.cuh): biases added to the fp32 logit (T5 and FIRE
// tables copied to shared memory once per block), RoPE's K rotated by the pre-pass (rope_k.cu) and
// Q rotated once per block by each consumer warpgroup in shared memory (fp32, rounded once to the
// input type); xPos's K transformed by the producer warpgroup once per block and tile after TMA
// lands (its factors depend on the block's centre, see PairTransform and the producer). The
// chooser (dispatch.cpp) sends the rest (xPos at hd256, other head dims, fp32 inputs) to the sm80
// kernel (mma.cuh).
//
// One block (CTA) computes 128 query rows of one (sequence, q head) with three warpgroups:
//   warpgroup 0  producer: one warp issues the TMA loads (Q once, then K/V tiles of Bc keys into a
//                kStages-deep ring guarded by mbarriers: full[s] = "tile landed", empty[s] = "both
//                consumers are done with slot s"); its registers go down with setmaxnreg.dec
//   warpgroups 1, 2  consumers, 64 query rows each, registers up with setmaxnreg.inc. Per tile:
//                S = Q K^T     wgmma SS (Q and K K-major in shared memory, 128-byte swizzle)
//                softmax       fp32 online softmax on the accumulator, exp2 with the scale folded
//                              into one FFMA (as mma.cuh: "Logit units")
//                O += P V      P converted to bf16/f16 in registers (wgmma_a_from_acc), wgmma RS
//                              with V MN-major in shared memory
// The two consumers take turns issuing their wgmmas (ping-pong, named barriers 3 and 4: P V of
// tile n and S of tile n+1 in one turn), so that one warpgroup's softmax overlaps the other's
// GEMMs. Not done: overlapping a warpgroup's own softmax with its own next S (FA3's intra-warpgroup
// pipelining).
//
// Shared memory (1024-byte aligned; every tile as a TMA load with 128-byte swizzle writes it):
//   Q  [warpgroup][D/64 chunks][64 rows][64 features]
//   K  [stage][D/64 chunks][Bc keys][64 features]   (K-major B operand of S = Q K^T)
//   V  [stage][D/64 chunks][Bc keys][64 features]   (MN-major B operand of O = P V)
// Tensor maps (built at launch, launch()): 4D (feature, head, token, batch); dense tiles hanging
// over a sequence end read zeros, varlen tiles read the next sequence's tokens, which the mask
// hides (and the NaN rule below keeps out of P V).
//
// Non-finite values (posattn.h NaN RULE), as mma.cuh does it: masked logits are -inf; per tile a
// row's maximum and this thread's minimum of its visible logits are finite exactly when every one
// is (otherwise the row's sum becomes NaN); the epilogue turns any non-finite accumulator of a row
// into a NaN row and LSE. On tiles with masked elements a non-finite V element of a key that some
// rows do not see would reach them through P V (0 * inf = NaN on tensor cores): for such tiles the
// producer warp waits for the tile itself, replaces each non-finite V element by 0 and makes the
// first K element of its 16-byte chunk NaN (K and V tiles share one layout), so that exactly the
// rows that see the key get a NaN logit; only then does it arrive on full[s]. It writes only when
// it finds a non-finite V element (then fence_proxy_async, __syncwarp, arrive). The emulator runs
// that path with all its checks on (tests/emu/test_prefill_wgmma.cpp, NaN-rule test).
#ifndef POSATTN_PREFILL_WGMMA_CUH
#define POSATTN_PREFILL_WGMMA_CUH

#include <algorithm>

#include "device/sm90.cuh"
#include "internal.h"
#include "pe/bias.cuh"
#include "pe/mask.cuh"
#include "pe/rope.cuh"
#include "pe/xpos.cuh"
#include "posattn.h"
#include "prefill/epilogue.cuh"
#include "prefill/params.h"

#if defined(__CUDACC__)
#define PA_WGMMA_NS cuda
#define PA_WGMMA_ROLLED _Pragma("unroll 1")  // a loop kept rolled (register budget, code size)
// x as if computed here: its uses are not hoisted out of the loop (register budget)
#define PA_WGMMA_HERE(x) asm volatile("" : "+r"(x))
#else
#define PA_WGMMA_NS emu
#define PA_WGMMA_ROLLED
#define PA_WGMMA_HERE(x) (void)(x)
#endif

namespace pa_kernels {
namespace wgmma {
inline namespace PA_WGMMA_NS {

// ---- tile choices ---------------------------------------------------------------------------------
// 128 query rows (two consumer warpgroups of 64) and 2 stages at every head dim; keys per tile
// Bc = 128 at hd64/hd128, 64 at hd256 (the K/V ring has to fit beside Q in 227 KiB).
// hd64: 16 KiB Q + 2 x (16 + 16) KiB K/V = 80 KiB; hd128: 32 + 2 x (32 + 32) = 160 KiB;
// hd256: 64 + 2 x (32 + 32) = 192 KiB (FA3 takes Bc = 80 there, which leaves no room for the
// T5/FIRE tables).
// Consumer registers: O D/2 + S Bc/2 + P Bc/4 fp32/b32 per thread: 32 + 64 + 32 = 128 (hd64),
// 64 + 64 + 32 = 160 (hd128), 128 + 32 + 16 = 176 (hd256), under setmaxnreg's 232.
template <int D>
struct Traits {
  static_assert(D == 64 || D == 128 || D == 256, "head dims 64, 128 and 256");
  static constexpr int kD = D, kBr = 128, kBc = D == 256 ? 64 : 128, kStages = 2;
  static constexpr int kChunks = D / 64;  // 128-byte swizzle columns of 64 features
  static constexpr int kThreads = 384;    // producer warpgroup + two consumer warpgroups
  // setmaxnreg: 128 x 40 + 256 x 232 = 64512 (168 x 384); xPos, whose producer warpgroup transforms
  // K (rope_cos_sin, exp2 per pair), 128 x 64 + 256 x 216 = 63488 (its producer spilled at 40,
  // and 4 bytes at 56 at hd128; at hd256 no split compiled without spills, so xPos at hd256 has
  // no in-tile transform: it takes K from the key pre-pass or the sm80 kernel, unfit)
  static constexpr int kProducerRegs = 40, kConsumerRegs = 232;
  static constexpr int kXposProducerRegs = 64, kXposConsumerRegs = 216;  // hd64, hd128 only
  static constexpr unsigned kQBytes = 64u * D * 2;   // one consumer's Q rows
  static constexpr unsigned kKVBytes = kBc * D * 2;  // one K (or V) tile
  // T5's per-block table (2 (max_distance + 1) floats) has to fit beside the tiles
  static constexpr int kT5MaxDistance = D == 256 ? 4095 : pa_pe::kT5SharedMaxDistance;
};

// Dynamic shared memory: the tiles, plus the T5/FIRE bias tables (pa_pe::shared_table_bytes).
template <int D>
PA_HD constexpr size_t smem_bytes() {
  using T = Traits<D>;
  return 1024 /* alignment slack */ + size_t(T::kBr + 2 * T::kStages * T::kBc) * D * 2;
}
// 227 KiB per block on sm_90, less 1 KiB for the static mbarriers: the largest T5 table, and FIRE's
// (< 30 KiB, kernels/pe/bias.cuh), fit at every head dim.
constexpr size_t kSmemLimit = 232448 - 1024;
static_assert(smem_bytes<256>() + 2 * (size_t(Traits<256>::kT5MaxDistance) + 1) * 4 <= kSmemLimit &&
                  smem_bytes<128>() + 2 * (size_t(Traits<128>::kT5MaxDistance) + 1) * 4 <=
                      kSmemLimit &&
                  smem_bytes<256>() + 30 * 1024 <= kSmemLimit,
              "the tiles and the bias tables exceed 227 KiB");

// Distance band (mma.cuh's idea, per warpgroup and carried across tiles). The kinds whose bias
// depends on pq - pk alone (and FIRE, whose band holds psi(|d|): "FIRE band" below), with
// positions in token order (no q_pos/kv_pos arrays: a call-uniform
// choice), read it from shared words, one per distance. Each consumer warpgroup has two rings of
// kBandRing words indexed by distance mod kBandRing (d = pq - pk as uint32). A tile's 64 rows x
// kBc keys see kBandLen = 64 + kBc - 1 distances (its window); the next tile, when adjacent (keys
// kBc further), sees kBc new ones and 63 of this tile's. So, once this tile's logits have read
// the band, each thread evaluates the bias of at most one new distance of the next tile (once per
// distance and warpgroup, not per element) into the same ring: those slots are not in this tile's
// window (the ring is longer than kBandLen + kBc), so the warpgroup's other threads may still be
// reading. After skipped tiles the next window is new: the warpgroup fills it whole into the
// other ring, which nobody reads any more. Either fill is published to the warpgroup's readers by
// the ping-pong barrier before the P V turn (every thread of the warpgroup waits there), which
// also orders every read of a tile before the fills after the next one: the band needs no barrier
// of its own. Slots below kBandLen are mirrored kBandRing words further, so that a window is
// contiguous from its first distance's slot and each logit element reads its bias at a
// compile-time offset from a per-thread base. The bands take the place of the T5 table in shared
// memory (T5's band reads the host tables).
template <int PeKind>
PA_HD constexpr int band_kind_or_none() {  // the policy a band entry is computed with
  return PeKind == POSATTN_PE_ALIBI || PeKind == POSATTN_PE_T5 || PeKind == POSATTN_PE_KERPLE_LOG ||
                 PeKind == POSATTN_PE_KERPLE_POWER
             ? PeKind
             : POSATTN_PE_NONE;
}
// FIRE's band holds psi(|d|) (its normaliser depends on the row; see "FIRE band" below).
template <int PeKind>
PA_HD constexpr bool band_kind() {
  return band_kind_or_none<PeKind>() != POSATTN_PE_NONE || PeKind == POSATTN_PE_FIRE;
}
constexpr int kBandRing = 512;  // > kBandLen + kBc at every head dim: 191 + 128, 127 + 64
template <int D>
PA_HD constexpr int band_len() { return 64 + Traits<D>::kBc - 1; }  // distances of one tile
template <int D>
PA_HD constexpr int band_pitch() { return kBandRing + band_len<D>() + 1; }  // words per ring
static_assert(band_len<128>() + Traits<128>::kBc <= kBandRing &&
                  band_len<256>() + Traits<256>::kBc <= kBandRing,
              "the next tile's new distances would overwrite this tile's");
// FIRE keeps its segment tables and, after them (16-byte aligned), the bands: in words.
PA_HD size_t fire_band_offset(const pa_prefill_params &p) {
  return (pa_pe::shared_table_bytes<POSATTN_PE_FIRE>(p) / 4 + 3) / 4 * 4;
}
template <int D, int PeKind>
PA_HD size_t band_region_bytes(const pa_prefill_params &p) {  // two rings per warpgroup
  return ((PeKind == POSATTN_PE_FIRE ? fire_band_offset(p) : 0) + size_t(4 * band_pitch<D>())) * 4;
}
// FIRE's band moves each row's intercept and kink offsets out of its logits into one per-row
// offset (off in the loop): terms up to a few times |bias| that cancel, rounded at their size. At
// |bias| near 1e3 (natural-log logit units) that rounding is about an fp32 bias' own; at 6e3 it
// fails the EMU tests' bound (fire_large_biases_band_huge_biases_per_element). Beyond
// kFireBandBound (fire_bias_bound) the call takes the per-element path, whose row maximum is one
// of its logits (exp2 of exactly 0), so even huge biases stay finite and exact to fp32.
constexpr float kFireBandBound = 1024.f;
// The band with positions in token order (no q_pos/kv_pos arrays: a call-uniform choice); FIRE
// when its tables and the bands fit beside the tiles (hd256 with the largest tables does not) and
// its biases are within kFireBandBound.
template <int D, int PeKind>
PA_HD bool uses_band(const pa_prefill_params &p) {
  return band_kind<PeKind>() && !p.q_pos && !p.kv_pos &&
         (PeKind != POSATTN_PE_FIRE || p.fire_bias_bound <= kFireBandBound) &&
         smem_bytes<D>() + band_region_bytes<D, PeKind>(p) <= kSmemLimit;
}
// Shared memory after the tiles: the bands when the call uses them, else the T5/FIRE tables.
template <int D, int PeKind>
size_t region_bytes(const pa_prefill_params &p) {
  return uses_band<D, PeKind>(p) ? band_region_bytes<D, PeKind>(p)
                                 : pa_pe::shared_table_bytes<PeKind>(p);
}
static_assert(smem_bytes<256>() + 4 * band_pitch<256>() * 4 <= kSmemLimit, "bands exceed 227 KiB");

// The per-pair transform of q and k rows: RoPE's rotation (rope.cuh); xPos adds its centred decay
// (xpos.cuh), centred on the block's first query position so that the q factors stay <= 1 -- the
// math of mma.cuh's Transform (fp32, rounded once to the input type by the caller).
template <int PeKind>
struct PairTransform {
  const pa_prefill_params *p;
  int32_t centre;
  PA_DEVICE float2 operator()(float a, float b, int pair, int32_t pos, bool is_q) const {
    float2 r = pa_pe::rope_rotate(a, b, pa_pe::rope_cos_sin(*p, pair, pos));
    if (PeKind == POSATTN_PE_XPOS) {
      const float w = is_q ? pa_pe::xpos_q_scale(*p, pair, pos, centre)
                           : pa_pe::xpos_k_scale(*p, pair, pos, centre);
      r.x *= w;
      r.y *= w;
    }
    return r;
  }
};

// Element offset of feature f of row r in a tile of `rows` rows per 64-feature chunk, as a TMA load
// with 128-byte swizzle writes it: chunk f / 64, 16-byte group ((f % 64) / 8) ^ (r % 8).
PA_DEVICE int swizzled_at(int rows, int r, int f) {
  return (f / 64) * rows * 64 + r * 64 + ((((f % 64) >> 3) ^ (r & 7)) << 3) + (f & 7);
}

// RoPE, xPos: transforms this warpgroup's Q rows [0, rows) in place (64 rows per chunk); each pair
// in fp32, rounded once to the input type. pos(r): position id of row r. t: thread of the
// warpgroup.
template <class Tin, class Xf, class Pos>
PA_DEVICE void rotate_q(const pa_prefill_params &p, pa::sptr<Tin> q, int rows, Pos pos, int t,
                        const Xf &xf) {
  const int npairs = p.rotary_dim / 2;
  for (int e = t; e < rows * npairs; e += 128) {
    const int r = e / npairs, i = e % npairs;
    int fa, fb;
    pa_pe::rope_pair_features(p, i, fa, fb);
    const pa::sptr<Tin> ea = q + swizzled_at(64, r, fa), eb = q + swizzled_at(64, r, fb);
    const float2 x = xf(pa::to_float(Tin(*ea)), pa::to_float(Tin(*eb)), i, pos(r), true);
    *ea = pa::from_float<Tin>(x.x);
    *eb = pa::from_float<Tin>(x.y);
  }
}

// Exponent bits of the 16-bit type: all set = infinity or NaN.
template <class Tin>
constexpr uint32_t kExpBits = std::is_same<Tin, pa::bf16>::value ? 0x7f80u : 0x7c00u;
template <class Tin>
PA_DEVICE bool nonfinite_pair(uint32_t w) {
  constexpr uint32_t e = kExpBits<Tin>;
  return (w & e) == e || ((w >> 16) & e) == e;
}

// The producer warp's NaN-rule pass over a landed K/V tile pair (see the file comment): lane
// `lane` owns 16-byte chunks lane, lane + 32, ...; the same offset in K and V is the same key and
// features, whatever the swizzle.
template <int Elems, class Tin>
PA_DEVICE void isolate_nonfinite_v(pa::sptr<Tin> k, pa::sptr<Tin> v, int lane) {
  for (int e = lane; e < Elems / 8; e += 32) {
    const uint4 w = pa::load(pa::ptr_cast<const uint4>(v + 8 * e));
    if (!(nonfinite_pair<Tin>(w.x) || nonfinite_pair<Tin>(w.y) || nonfinite_pair<Tin>(w.z) ||
          nonfinite_pair<Tin>(w.w)))
      continue;
    for (int x = 0; x < 8; ++x)
      if ((Tin(*(v + 8 * e + x)).bits & kExpBits<Tin>) == kExpBits<Tin>) *(v + 8 * e + x) = Tin{0};
    *(k + 8 * e) = pa::from_float<Tin>(NAN);
  }
}

// xPos: the producer warpgroup's pass over key row r of a landed K/V tile (Bc rows per chunk).
// Thread r of the warpgroup owns row r of K and V, so no two threads touch one byte: K's rotary
// pairs transformed (RoPE + the K side of xPos's decay, xf) when `transform` (keys of the
// sequence), then on masked tiles the NaN-rule pass of the row (isolate_nonfinite_v's rule: a
// non-finite V element becomes 0, the first K element of its 16-byte chunk NaN).
template <int D, int Bc, class Tin, class Xf>
PA_DEVICE void xpos_k_row(const pa_prefill_params &p, pa::sptr<Tin> k, pa::sptr<Tin> v, int r,
                          bool transform, bool isolate, int32_t pos, const Xf &xf) {
  if (transform)
    PA_WGMMA_ROLLED
    for (int i = 0; i < p.rotary_dim / 2; ++i) {
      int fa, fb;
      pa_pe::rope_pair_features(p, i, fa, fb);
      const pa::sptr<Tin> ea = k + swizzled_at(Bc, r, fa), eb = k + swizzled_at(Bc, r, fb);
      const float2 x = xf(pa::to_float(Tin(*ea)), pa::to_float(Tin(*eb)), i, pos, false);
      *ea = pa::from_float<Tin>(x.x);
      *eb = pa::from_float<Tin>(x.y);
    }
  if (!isolate) return;
  PA_WGMMA_ROLLED
  for (int c = 0; c < D / 8; ++c) {
    const int e = swizzled_at(Bc, r, 8 * c);  // features 8c .. 8c+7 lie in one 16-byte chunk
    const uint4 w = pa::load(pa::ptr_cast<const uint4>(v + e));
    if (!(nonfinite_pair<Tin>(w.x) || nonfinite_pair<Tin>(w.y) || nonfinite_pair<Tin>(w.z) ||
          nonfinite_pair<Tin>(w.w)))
      continue;
    for (int x = 0; x < 8; ++x)
      if ((Tin(*(v + e + x)).bits & kExpBits<Tin>) == kExpBits<Tin>) *(v + e + x) = Tin{0};
    *(k + e) = pa::from_float<Tin>(NAN);
  }
}

// Whether every key of [j0, j1) is visible to every row of [i0, i1) (the per-element rule is then
// skipped). Conservative: false whenever unsure. (The same rule as mma.cuh's tile_all_visible.)
PA_DEVICE bool tile_all_visible(const pa_pe::Seq &sq, int i0, int i1, int j0, int j1) {
  const pa_prefill_params &p = *sq.p;
  if (j1 > sq.Lk) return false;
  if (p.causal && j1 - 1 > i0 + sq.shift) return false;
  if (p.window_left >= 0 && j0 < int64_t(i1) - 1 + sq.shift - p.window_left) return false;
  if (p.window_right >= 0 && j1 - 1 > int64_t(i0) + sq.shift + p.window_right) return false;
  if (p.doc_ids && j1 > p.num_anchor) {
    const int32_t d = sq.q_doc(i0);
    if (sq.q_doc(i1 - 1) != d || sq.kv_doc(j0) != d || sq.kv_doc(j1 - 1) != d) return false;
  }
  return true;
}

// FIRE band (positions in token order). The band holds psi(|d|) per distance; a row's bias is
// f(x), x = psi * 1/normaliser, f the MLP: continuous and piecewise linear with kinks at the
// segment starts, so over x in [start[lo], start[hi + 1]) f(x) = slope[lo] x + icpt[lo] +
// sum over kinks j in (lo, hi] of (slope[j] - slope[j - 1]) max(x - start[j], 0). The kernel
// takes a psi per element (one FFMA in raw logit units; with softcap in log2 units) and c once
// per row (the row offset), then one kink term per trip of a loop the warp runs while some row
// has kinks left: kd max(psi, ps) per element, -kd ps into the row offset (kd: the slope step
// per unit of psi, ps: the kink's psi). Biases within kFireBandBound only (its comment). Not
// bit-identical to FireBias (which picks one segment per element): a few fp32 roundings apart,
// and an element within rounding of a kink takes a value within rounding of either segment's
// (docs/kernels.md, the sm_90a kernel's "FIRE band"). Row rw (0 .. 63 of the warpgroup) sees
// the entries rw .. rw + Bc - 1 of the tile's window (w0: entry 0, at distance d0), psi non-
// decreasing in |d| (up to fire_psi_max; beyond it, log_far's rounding can only misplace an
// element next to a kink, where both segments agree): [lo, hi] = the segments of x at the row's
// nearest (end 0) and farthest (end 1) distance, one end per lane (the warp's 16 rows x 2 ends),
// gathered by shuffles; lw: the row's first entry (entry rw, at distance dlo = d0 + rw). Rows or
// keys past a sequence end may wrap; any finite bias serves them (their logits are discarded or
// masked).
template <int Bc>
PA_DEVICE int fire_end_segment(const pa_pe::FireSegments<pa::sptr> &segs,
                               pa::sptr<const float> lw, int32_t dlo, int end, float inv) {
  const pa_pe::FirePsiRange r = pa_pe::fire_psi_range<Bc>(lw, dlo);
  return segs.index((end ? r.far : r.near) * inv);
}

// ---- the kernel ----------------------------------------------------------------------------------
// Grid: (ceil(max Lq / 128), hq, batch); block: 384 threads; dynamic smem: smem_bytes<D>().
// tq/tk/tv: 4D tensor maps (feature, head, token, batch) with 64 x 1 x rows x 1 boxes (launch()).
template <int D, class Tin, int PeKind>
__global__ void __launch_bounds__(384, 1)
    prefill_wgmma(const pa_prefill_params p, const __grid_constant__ pa::tma_map tq,
                  const __grid_constant__ pa::tma_map tk, const __grid_constant__ pa::tma_map tv) {
#if PA_SM90
  using T = Traits<D>;
  constexpr int kBr = T::kBr, kBc = T::kBc, kS = T::kStages, kC = T::kChunks;
  constexpr float kLog2e = 1.4426950408889634f;
  constexpr bool kBias = PeKind == POSATTN_PE_ALIBI || PeKind == POSATTN_PE_FIRE ||
                         PeKind == POSATTN_PE_T5 || PeKind == POSATTN_PE_KERPLE_LOG ||
                         PeKind == POSATTN_PE_KERPLE_POWER;

  // mbarriers: Q; full, empty and landed (the producer's own, NaN-rule tiles) per stage
  PA_SHARED(uint64_t, bars, 1 + 3 * kS);
  const pa::sptr<uint64_t> q_bar = bars, full = bars + 1, empty = bars + 1 + kS,
                           landed = bars + 1 + 2 * kS;

  const int tid = int(threadIdx.x);
  const int b = int(blockIdx.z), h = int(blockIdx.y), hk = h / p.group;
  const pa_pe::Seq sq(p, b);
  const int qt0 = int(blockIdx.x) * kBr;
  if (qt0 >= sq.Lq) return;  // the whole block leaves together
  const int qt1 = pa::min(qt0 + kBr, sq.Lq);

  pa::sptr<Tin> sQ = pa::dynamic_shared<Tin>();
  sQ += (1024 - PA_SMEM_ADDR(sQ) % 1024) % 1024 / 2;  // 128-byte swizzle: 1024-byte aligned tiles
  const pa::sptr<Tin> sK = sQ + kBr * D, sV = sK + kS * kBc * D;
  // After the K/V ring: the distance bands (uses_band), else the T5/FIRE tables, filled by every
  // thread before the barrier below
  const pa::sptr<float> sB = pa::ptr_cast<float>(sV + kS * kBc * D);
  const bool use_band = uses_band<D, PeKind>(p);  // else the T5/FIRE tables there
  if (!use_band || PeKind == POSATTN_PE_FIRE)  // FIRE: its tables, then the bands
    pa_pe::fill_shared_table<PeKind>(p, h, sB, tid, T::kThreads);

  if (tid == 0) {
    pa::mbarrier_init(q_bar, 1);
    for (int s = 0; s < kS; ++s) {
      pa::mbarrier_init(full + s, 1);
      pa::mbarrier_init(empty + s, 256);  // every consumer thread
      pa::mbarrier_init(landed + s, 1);
    }
    pa::fence_mbarrier_init();
  }
  __syncthreads();

  // KV tiles to visit, the same sequence in every thread (as in mma.cuh): the causal/window key
  // range [lo, hi) of the block's rows, minus tiles holding neither an anchor nor a document of them.
  int lo, hi;
  sq.kv_bounds(qt0, qt1, lo, hi);
  const int t_end = hi > lo ? hi / kBc + (hi % kBc != 0) : 0;
  auto next_tile = [&](int t) {
    while (t < t_end && !sq.tile_has_docs(qt0, qt1, t * kBc, pa::min((t + 1) * kBc, sq.Lk))) ++t;
    return t;
  };
  // TMA token/batch coordinates of token t of this sequence (varlen: packed, batch 0).
  const int q_tok0 = p.cu_q ? int(sq.q0) : 0, k_tok0 = p.cu_q ? int(sq.k0) : 0;
  const int cb = p.cu_q ? 0 : b;

  constexpr bool kXpos = PeKind == POSATTN_PE_XPOS;
  // xPos's in-tile K transform by the producer warpgroup (not compiled at hd256, whose xPos calls
  // all take K from the key pre-pass: unfit)
  constexpr bool kXposTile = kXpos && D != 256;
  constexpr int kProducerBar = 5;  // xPos: named barrier 5, the producer warpgroup's 128 threads
  // RoPE, xPos (centre: the block's first row; with the key pre-pass, the call's: pe/xpos.cuh)
  const PairTransform<PeKind> xf{
      &p, kXpos && p.k_prerotated ? pa_pe::xpos_call_centre(p.kv_len) : sq.q_pos(qt0)};
  if (tid < 128) {
    // ================= producer =================
    pa::setmaxnreg_dec<kXposTile ? T::kXposProducerRegs : T::kProducerRegs>();
    if (!kXposTile && tid >= 32) return;  // one warp issues everything (xPos: the warpgroup transforms K)
    const int lane = tid % 32;
    const bool leader = tid < 32 && pa::elect_one_sync();
    if (leader) {
      pa::mbarrier_arrive_expect_tx(q_bar, 2 * T::kQBytes);
      for (int wg = 0; wg < 2; ++wg)
        for (int c = 0; c < kC; ++c)
          pa::tma_load_4d(sQ + (wg * kC + c) * 64 * 64, tq, 64 * c, h, q_tok0 + qt0 + 64 * wg, cb,
                          q_bar);
    }
    unsigned landed_phase = 0;  // bit s: parity of landed[s]'s next phase
    for (int n = 0, t = next_tile(lo / kBc); t < t_end; ++n, t = next_tile(t + 1)) {
      const int s = n % kS, j0 = t * kBc;
      pa::mbarrier_wait(empty + s, unsigned((n / kS) & 1) ^ 1u);  // the first lap passes
      const bool masked = !tile_all_visible(sq, qt0, qt1, j0, j0 + kBc);
      // the producer works on the tile before handing it over: xPos transforms K (unless the
      // pre-pass did), masked tiles take the NaN-rule pass
      const bool own = (kXposTile && !p.k_prerotated) || masked;
      const pa::sptr<uint64_t> bar = own ? landed + s : full + s;
      const pa::sptr<Tin> k_s = sK + s * kBc * D, v_s = sV + s * kBc * D;
      if (leader) {
        pa::mbarrier_arrive_expect_tx(bar, 2 * T::kKVBytes);
        for (int c = 0; c < kC; ++c) {
          pa::tma_load_4d(k_s + c * kBc * 64, tk, 64 * c, hk, k_tok0 + j0, cb, bar);
          pa::tma_load_4d(v_s + c * kBc * 64, tv, 64 * c, hk, k_tok0 + j0, cb, bar);
        }
      }
      if (own) {
        pa::mbarrier_wait(landed + s, (landed_phase >> s) & 1u);
        landed_phase ^= 1u << s;
        if constexpr (kXposTile) {
          if (tid < kBc)
            xpos_k_row<D, kBc>(p, k_s, v_s, tid, !p.k_prerotated && j0 + tid < sq.Lk, masked,
                               j0 + tid < sq.Lk ? sq.kv_pos(j0 + tid) : 0, xf);
          pa::fence_proxy_async();  // the writes above, before the consumers' wgmmas read them
          pa::named_barrier_sync(kProducerBar, 128);  // ... of every producer thread
        } else {
          isolate_nonfinite_v<kBc * D>(k_s, v_s, lane);
          pa::fence_proxy_async();  // the writes above, before the consumers' wgmmas read them
          __syncwarp();
        }
        if (leader) pa::mbarrier_arrive(full + s);
      }
    }
    return;
  }

  // ================= consumers =================
  pa::setmaxnreg_inc<kXposTile ? T::kXposConsumerRegs : T::kConsumerRegs>();
  const int wg = tid / 128 - 1, t = tid % 128;
  const pa::sptr<Tin> q_s = sQ + wg * kC * 64 * 64;
  // Rows of this thread (accumulator layout, sm90.cuh): r = 0, 1 -> row 16w + g + 8r of the
  // warpgroup's 64; element i of an accumulator belongs to row (i / 2) % 2.
  const int row0 = qt0 + 64 * wg + 16 * (t / 32) + (t % 32) / 4;
  auto row_of = [&](int r) { return row0 + 8 * r; };
  const bool plain = !kBias && !(p.softcap > 0.f);
  // mma.cuh, "Logit units": raw logits (q.k unscaled; cs = scale log2 e) without bias and
  // softcap, and in FIRE's band without softcap, whose bias enters in raw units too (a / scale,
  // c / scale: "FIRE band" below); otherwise log2 units (cs = 1).
  // FIRE's raw units only while its bias / scale stays far inside fp32: the band's biases are
  // within kFireBandBound, so scale >= 2^-60 keeps them below 2^76.
  const bool raw = !(p.softcap > 0.f) &&
                   (!kBias || (PeKind == POSATTN_PE_FIRE && use_band && p.scale >= 0x1p-60f));
  const float cs = raw ? p.scale * kLog2e : 1.f;

  pa::wgmma_acc<D> o;
  PA_UNROLL
  for (int i = 0; i < D / 2; ++i) o[i] = 0.f;
  float rmax[2] = {-INFINITY, -INFINITY}, rsum[2] = {0.f, 0.f};
  pa::mbarrier_wait(q_bar, 0);
  if (PeKind == POSATTN_PE_ROPE || kXpos) {  // K: pre-pass (RoPE), producer (xPos); Q here
    const int r0 = qt0 + 64 * wg;
    rotate_q(p, q_s, pa::max(0, pa::min(64, sq.Lq - r0)), [&](int r) { return sq.q_pos(r0 + r); },
             t, xf);
    pa::fence_proxy_async();                // the writes, before the wgmmas read Q
    pa::named_barrier_sync(1 + wg, 128);    // ... of every thread of this warpgroup
  }
  auto row_bias = [&](int32_t pq) {
    if constexpr (PeKind == POSATTN_PE_T5)
      return pa_pe::T5Shared{sB, uint32_t(p.t5_nmax), pq};
    else if constexpr (PeKind == POSATTN_PE_FIRE)
      return pa_pe::FireBias<pa::sptr>(p, pa_pe::fire_segments_shared(p, sB), pq,
                                       pa_pe::fire_inv_norm(p, pq));
    else
      return pa_pe::Bias<PeKind>(p, h, pq);
  };

  // Ping-pong (FlashAttention-3): the two consumers take turns issuing their wgmmas -- two turns
  // per tile, S = Q K^T of tile n, then O += P V of tile n -- under named barriers kTurn + wg, so
  // that one warpgroup's softmax runs while the other's GEMMs do. Consumer 0 takes the first turn
  // (consumer 1 hands it over before its first); each turn ends by handing the next to the other
  // consumer, except consumer 1's last, so every barrier sees as many arrivals as waits. Both
  // consumers walk the same tile sequence, hence the same number of turns.
  constexpr int kTurn = 3;  // named barriers 3 (consumer 0's turn) and 4 (consumer 1's)
  auto turn_begin = [&]() { pa::named_barrier_sync(kTurn + wg, 256); };
  auto turn_end = [&](bool last) {
    if (!(last && wg == 1)) pa::named_barrier_arrive(kTurn + 1 - wg, 256);
  };
  pa::wgmma_acc<kBc> sc;  // S of the tile being worked on; P in place after the softmax
  const pa::sptr<float> band_wg =  // this warpgroup's two rings
      sB + (PeKind == POSATTN_PE_FIRE ? fire_band_offset(p) : 0) + 2 * wg * band_pitch<D>();
  const auto bias0 = pa_pe::Bias<band_kind_or_none<PeKind>()>(p, h, 0);
  // The operand descriptors, built once (this warpgroup's Q, stage 0 of K and V) and moved per
  // stage and k-block by one 32-bit add (pa::wgmma_desc_advance: the same bits as building each
  // from its moved start). Built per wgmma from the tile pointers, the K/V descriptors left the
  // uniform registers in the KERPLE instances (~10 instructions per wgmma, docs/kernels.md). Q's
  // depends on the warpgroup (a per-thread value to ptxas): its low word is taken afresh per S
  // turn (PA_WGMMA_HERE), else ptxas holds all D / 16 of them across the loop (KERPLE spilled).
  const uint64_t q_desc = pa::wgmma_desc_k_major(q_s, 64, 128);
  const uint64_t k_desc = pa::wgmma_desc_k_major(sK, kBc, 128);
  const uint64_t v_desc = pa::wgmma_desc_mn_major(sV, kBc, 128);
  constexpr uint32_t kStageBytes = kBc * D * sizeof(Tin);  // one K or V slot
  auto issue_s = [&](int n) {  // S = Q K^T of the n-th tile (slot n % kS), after its full wait
    const uint64_t k_d = pa::wgmma_desc_advance(k_desc, uint32_t(n % kS) * kStageBytes);
    uint32_t q_lo = uint32_t(q_desc);
    PA_WGMMA_HERE(q_lo);
    const uint64_t q_d = (q_desc & 0xffffffff00000000ull) | q_lo;
    PA_UNROLL
    for (int kb = 0; kb < D / 16; ++kb)
      pa::wgmma_ss<kBc, Tin>(
          sc, pa::wgmma_desc_advance(q_d, pa::wgmma_kblock_k_major(kb, 64, 128)),
          pa::wgmma_desc_advance(k_d, pa::wgmma_kblock_k_major(kb, kBc, 128)), kb > 0);
  };

  // FIRE band: 1 / normaliser (fire_inv_norm) of this thread's two rows and of the row whose
  // segment end this lane finds (row (t % 32) / 2 of the warp); that row, its first band entry
  // from the thread's logit base (bt in the loop), the end, and the lane holding this thread's
  // row 0, kept in registers across the loop (PA_WGMMA_HERE: ptxas recomputed them from %tid
  // per tile).
  float fire_norm[2] = {0.f, 0.f}, fire_kunit[2] = {0.f, 0.f}, fire_inv_lane = 0.f;
  const float fire_unit = raw ? 1.f / p.scale : kLog2e;  // the bias' units (cs above)
  int fire_lane = 0, fire_lane_off = 0, fire_end = 0, fire_src = 0;
  if constexpr (PeKind == POSATTN_PE_FIRE) {
    auto inv_of = [&](int i) { return pa_pe::fire_inv_norm(p, i < sq.Lq ? sq.q_pos(i) : 0); };
    PA_UNROLL
    for (int r = 0; r < 2; ++r) {
      fire_norm[r] = pa_pe::fire_norm(p, row_of(r) < sq.Lq ? sq.q_pos(row_of(r)) : 0);
      fire_kunit[r] = fire_unit * (1.f / fire_norm[r]);  // fire_inv_norm: per unit of psi
    }
    fire_lane = 16 * (t / 32) + (t % 32) / 2;
    fire_inv_lane = inv_of(qt0 + 64 * wg + fire_lane);
    fire_lane_off = fire_lane - (16 * (t / 32) + (t % 32) / 4 - 2 * (t % 4) + kBc - 1);
    fire_end = t % 2;
    fire_src = 2 * ((t % 32) / 4);
    PA_WGMMA_HERE(fire_lane);
    PA_WGMMA_HERE(fire_lane_off);
    PA_WGMMA_HERE(fire_end);
    PA_WGMMA_HERE(fire_src);
  }

  // The tile loop, compiled twice for the band kinds (as in mma.cuh): with the distance band
  // (positions in token order) and with the per-element bias (explicit positions).
  auto tile_loop = [&](auto band_c) {
    constexpr bool band = decltype(band_c)::value;
    int kt = next_tile(lo / kBc);
    // The band (see "Distance band"): the ring in use, and the fill of entries [0, fill) of tile
    // kt_'s window into it; row r (0 .. 63) of the warpgroup and key c of the tile have entry
    // r - c + kBc - 1, distance band_d0(kt_) + entry.
    constexpr int kLen = band_len<D>();
    int ring = 0;
    auto band_d0 = [&](int kt_) {
      return uint32_t(qt0 + 64 * wg) + uint32_t(sq.shift) - uint32_t(kt_ * kBc) - uint32_t(kBc - 1);
    };
    auto fill_band = [&](int kt_, int fill) {
      const pa::sptr<float> rb = band_wg + ring * band_pitch<D>();
      const uint32_t d0 = band_d0(kt_);
      PA_WGMMA_ROLLED  // one trip per thread in the steady state (hd128), two for a whole window
      for (int i = t; i < fill; i += 128) {
        // the pair (pq, pk) = (0, -d): the policies see abs_diff and the sign of pq - pk only
        const uint32_t d = d0 + uint32_t(i), slot = d % kBandRing;
        const float v = PeKind == POSATTN_PE_FIRE  // psi(|d|), as FireBias
                            ? pa_pe::fire_psi(p.fire_psi, p.fire_psi_max, p.fire_c,
                                              pa_pe::abs_diff(int32_t(d), 0))
                            : bias0(int32_t(0u - d));
        rb[slot] = v;
        if (slot < uint32_t(kLen)) rb[slot + kBandRing] = v;  // the mirror
      }
    };
    // the first tile's window, published by the first S turn's barrier
    if (band && kt < t_end) fill_band(kt, kLen);
    if (kt < t_end && wg == 1) pa::named_barrier_arrive(kTurn, 256);  // consumer 0's first turn
    for (int n = 0; kt < t_end; ++n) {
      const int s = n % kS, j0 = kt * kBc;
      const int kt_next = next_tile(kt + 1);
      const bool last = kt_next >= t_end;
      // ---- this consumer's S turn: S = Q K^T of tile n, issued in its own iteration so that no
      // wgmma accumulator is in flight across the loop's back edge (else ptxas serialises every
      // wgmma, C7515) ----
      pa::mbarrier_wait(full + s, unsigned((n / kS) & 1));
      turn_begin();
      pa::wgmma_fence();
      issue_s(n);
      pa::wgmma_commit();
      turn_end(false);
      pa::wgmma_wait<0>();  // S of tile n
      const bool masked = !tile_all_visible(sq, qt0, qt1, j0, j0 + kBc);

      // ---- logits, mask; mn: this thread's minimum of each row's visible x (0 included) ----
      // off: a row's offset, the same for all its logits of this tile, added to their maximum
      // and to the exp2 argument rather than to each (FIRE's band: its segment's intercept)
      float off[2] = {0.f, 0.f};
      if (band) {
        // element e: row 16 w + g + 8 ((e / 2) % 2), key 2 (t % 4) + 8 (e / 4) + (e % 2)
        const uint32_t at = band_d0(kt) % kBandRing +  // the slot of this tile's entry 0
                            uint32_t(16 * (t / 32) + (t % 32) / 4 - 2 * (t % 4) + kBc - 1);
        const pa::sptr<float> bt = band_wg + ring * band_pitch<D>() + at;
        auto entry = [](int e) { return 8 * ((e / 2) % 2) - 8 * (e / 4) - (e % 2); };
        if constexpr (PeKind == POSATTN_PE_FIRE) {
          // FIRE band: each row's segment range over the tile (fire_end_segment), the base
          // segment's bias (raw units: one FFMA per element), then one trip per kink that some
          // row of the warp crosses (a warp vote; none on most tiles)
          const auto segs = pa_pe::fire_segments_shared(p, sB);
          // lane l: end l % 2 of row l / 2 of the warp, and that segment's a and c
          const int seg = fire_end_segment<kBc>(segs, bt + fire_lane_off,
                                                int32_t(band_d0(kt) + uint32_t(fire_lane)),
                                                fire_end, fire_inv_lane);
          const float la = float(segs.slope[seg]) * fire_inv_lane * fire_unit,
                      lc = float(segs.icpt[seg]) * fire_unit;
          int lo[2], hi[2];
          float fa[2], fc[2];
          PA_UNROLL
          for (int r = 0; r < 2; ++r) {  // this thread's row (t % 32) / 4 + 8 r: lanes src, src + 1
            const int src = fire_src + 16 * r;
            lo[r] = __shfl_sync(0xffffffffu, seg, src);
            hi[r] = __shfl_sync(0xffffffffu, seg, src + 1);
            fa[r] = __shfl_sync(0xffffffffu, la, src);
            fc[r] = __shfl_sync(0xffffffffu, lc, src);
          }
          // this thread's psi values in registers, read once for the base pass and every kink
          // trip: element e of row r reads pv[e / 4 + 1 - r][e % 2] (its entry(e) = 8 - 8 m -
          // e % 2); at hd256 (with its larger O) they spill, so it reads the band each time
          constexpr bool kPsiRegs = D <= 128;
          [[maybe_unused]] float pv[kPsiRegs ? kBc / 8 + 1 : 1][2];
          if constexpr (kPsiRegs)
            PA_UNROLL
            for (int m = 0; m <= kBc / 8; ++m)
              PA_UNROLL
              for (int b = 0; b < 2; ++b) pv[m][b] = bt[8 - 8 * m - b];
          auto psi = [&](int e) -> float {
            if constexpr (kPsiRegs)
              return pv[e / 4 + 1 - (e / 2) % 2][e % 2];
            else
              return bt[entry(e)];
          };
          // the row's c as its offset (off, taken in the softmax below); a psi per element: in
          // raw units one FFMA, else (softcap, or a scale too small for raw units) log2 units
          off[0] = fc[0];
          off[1] = fc[1];
          if (raw) {
            PA_UNROLL
            for (int e = 0; e < kBc / 2; ++e) sc[e] = fmaf(fa[(e / 2) % 2], psi(e), sc[e]);
          } else {
            const float scale2 = p.scale * kLog2e;
            const bool cap = p.softcap > 0.f;
            const float inv_cap = cap ? 1.f / p.softcap : 0.f;  // 1/c taken here, in this arm
            PA_UNROLL
            for (int e = 0; e < kBc / 2; ++e) {
              const float bias2 = fa[(e / 2) % 2] * psi(e);
              sc[e] = cap ? fmaf(pa_pe::softcap_logit(p, inv_cap, sc[e] * p.scale), kLog2e, bias2)
                          : fmaf(sc[e], scale2, bias2);
            }
          }
          // kink j of row r: (slope[j] - slope[j - 1]) max(x - start[j], 0) with x = psi inv =
          // kd (max(psi, ps) - ps), kd = the slope step per unit of psi, ps = start[j] norm (the
          // kink's psi): one FMNMX and one FFMA per element, - kd ps once per row into off
          PA_WGMMA_ROLLED
          for (int k = 1; __any_sync(0xffffffffu, lo[0] + k <= hi[0] || lo[1] + k <= hi[1]); ++k) {
            float kd[2], ps[2];
            PA_UNROLL
            for (int r = 0; r < 2; ++r) {  // no kink left for row r: kd = ps = 0 (loads in range)
              const bool kink = lo[r] + k <= hi[r];
              const int j = kink ? lo[r] + k : hi[r], jp = j > 0 ? j - 1 : 0;
              const float step = float(segs.slope[j]) - float(segs.slope[jp]);
              kd[r] = kink ? step * fire_kunit[r] : 0.f;
              ps[r] = kink ? float(segs.start[j]) * fire_norm[r] : 0.f;
              off[r] = fmaf(-kd[r], ps[r], off[r]);
            }
            PA_UNROLL
            for (int e = 0; e < kBc / 2; ++e) {
              const int r = (e / 2) % 2;
              sc[e] = fmaf(kd[r], fmaxf(psi(e), ps[r]), sc[e]);
            }
          }
        } else {
          auto logits = [&](auto softcap) {
            // 1/c taken in the softcap arm (held across the tile loop it cost ~48 integer
            // instructions per tile in the band kinds: docs/kernels.md)
            const float inv_cap = decltype(softcap)::value ? 1.f / p.softcap : 0.f;
            PA_UNROLL
            for (int e = 0; e < kBc / 2; ++e) {
              const float bias = bt[entry(e)];
              sc[e] = (decltype(softcap)::value
                           ? pa_pe::softcap_logit(p, inv_cap, sc[e] * p.scale) + bias
                           : fmaf(sc[e], p.scale, bias)) *
                      kLog2e;
            }
          };
          if (p.softcap > 0.f)
            logits(std::true_type{});
          else
            logits(std::false_type{});
        }
        // the next tile's band, this thread's reads of this tile's done (see "Distance band"): one
        // new distance per thread after an adjacent tile, else the whole window in the other ring
        if (!last) {
          const bool adjacent = kt_next == kt + 1;
          ring ^= adjacent ? 0 : 1;
          fill_band(kt_next, adjacent ? kBc : kLen);
        }
      } else if (!plain) {
        const bool cap = p.softcap > 0.f;
        const float inv_cap = cap ? 1.f / p.softcap : 0.f;
        PA_UNROLL
        for (int r = 0; r < 2; ++r) {
          const int i = row_of(r);
          const auto bias = row_bias(kBias && i < sq.Lq ? sq.q_pos(i) : 0);
          PA_UNROLL
          for (int e = 0; e < kBc / 2; ++e) {
            if ((e / 2) % 2 != r) continue;
            const int j = j0 + pa::wgmma_acc_col(t, e);
            const float x = sc[e] * p.scale;
            float logit = cap ? pa_pe::softcap_logit(p, inv_cap, x) : x;
            if (kBias && j < sq.Lk) logit += bias(sq.kv_pos(j));
            sc[e] = logit * kLog2e;
          }
        }
      }
      float mn[2] = {0.f, 0.f};
      if (masked) {
        PA_UNROLL
        for (int r = 0; r < 2; ++r) {
          const int i = row_of(r);
          int first, last;
          sq.row_keys(i, first, last);
          const int32_t doc = i < sq.Lq ? sq.q_doc(i) : 0;
          PA_UNROLL
          for (int e = 0; e < kBc / 2; ++e) {
            if ((e / 2) % 2 != r) continue;
            const int j = j0 + pa::wgmma_acc_col(t, e);
            if (j >= sq.Lk || i >= sq.Lq || !sq.visible(first, last, j, doc))
              sc[e] = -INFINITY;
            else
              mn[r] = fminf(mn[r], sc[e]);
          }
        }
      } else {
        PA_UNROLL
        for (int e = 0; e < kBc / 2; ++e) mn[(e / 2) % 2] = fminf(mn[(e / 2) % 2], sc[e]);
      }

      // ---- online softmax (a row's values live in the 4 lanes of its quad) ----
      constexpr bool kOff = band && PeKind == POSATTN_PE_FIRE;  // off is not 0
      float mx[2] = {kOff ? -INFINITY : rmax[0], kOff ? -INFINITY : rmax[1]};
      PA_UNROLL
      for (int e = 0; e < kBc / 2; ++e) mx[(e / 2) % 2] = fmaxf(mx[(e / 2) % 2], sc[e]);
      if constexpr (kOff)
        PA_UNROLL
        for (int r = 0; r < 2; ++r) mx[r] = fmaxf(rmax[r], mx[r] + off[r]);
      float bb[2];
      bool big = false;
      PA_UNROLL
      for (int r = 0; r < 2; ++r) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
        bb[r] = (mx[r] == -INFINITY ? 0.f : mx[r]) * cs;  // no visible key yet: exp2 stays 0
        big = big || (fabsf(bb[r]) >= 1048576.f && fabsf(bb[r]) < INFINITY);
      }
      // mma.cuh: the one-FFMA exp2 argument is exact enough only below 2^20
      const bool two_step = __any_sync(0xffffffffu, big);
      PA_UNROLL
      for (int r = 0; r < 2; ++r) {
        const float poison = (bb[r] + mn[r] * cs) * 0.f;  // NaN: a visible logit beyond fp32
        const float c =
            pa::exp2_approx(two_step ? rmax[r] * cs - bb[r] : fmaf(rmax[r], cs, -bb[r]));
        rmax[r] = mx[r];
        rsum[r] = fmaf(rsum[r], c, poison);
        PA_UNROLL
        for (int i = 0; i < D / 2; ++i)
          if ((i / 2) % 2 == r) o[i] *= c;
      }
      float bx[2] = {bb[0], bb[1]};  // bb less the offset, for this tile's logits
      if constexpr (kOff)
        PA_UNROLL
        for (int r = 0; r < 2; ++r) bx[r] = fmaf(-off[r], cs, bb[r]);
      PA_UNROLL
      for (int e = 0; e < kBc / 2; ++e) {
        const int r = (e / 2) % 2;
        const float x = sc[e];
        const float w = pa::exp2_approx(two_step ? x * cs - bx[r] : fmaf(x, cs, -bx[r]));
        sc[e] = w;
        rsum[r] += w;
      }

      // ---- this consumer's P V turn: O += P V (P from the S accumulator, V MN-major) ----
      const uint64_t v_d = pa::wgmma_desc_advance(v_desc, uint32_t(s) * kStageBytes);
      pa::wgmma_a pf[kBc / 16];
      PA_UNROLL
      for (int kb = 0; kb < kBc / 16; ++kb) pa::wgmma_a_from_acc<Tin>(pf[kb], sc, kb);
      turn_begin();
      pa::wgmma_fence();
      PA_UNROLL
      for (int kb = 0; kb < kBc / 16; ++kb)
        pa::wgmma_rs<D, Tin, 1>(
            o, pf[kb],
            pa::wgmma_desc_advance(v_d, pa::wgmma_kblock_mn_major(kb, 128)), true);
      pa::wgmma_commit();
      turn_end(last);
      pa::wgmma_wait<0>();             // O += P V has retired
      pa::mbarrier_arrive(empty + s);  // this thread is done with slot s
      kt = kt_next;
    }
  };
  if constexpr (band_kind<PeKind>()) {
    if (use_band)
      tile_loop(std::true_type{});
    else
      tile_loop(std::false_type{});
  } else {
    tile_loop(std::false_type{});
  }

  // ---- epilogue: O / l rounded once to the output dtype; lse in natural log; the sink and the
  // rows that saw no key as epilogue.cuh's RowFinish says (as mma.cuh). A NaN l (poisoned row)
  // stays NaN. ----
  const float sink = p.sinks ? float(p.sinks[h]) : 0.f;
  PA_UNROLL
  for (int r = 0; r < 2; ++r) {
    float l = rsum[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    float bad = 0.f;  // a non-finite accumulator poisons its whole row (NaN RULE)
    PA_UNROLL
    for (int i = 0; i < D / 2; ++i)
      if ((i / 2) % 2 == r) bad = fmaf(o[i], 0.f, bad);
    bad += __shfl_xor_sync(0xffffffffu, bad, 1);
    bad += __shfl_xor_sync(0xffffffffu, bad, 2);
    l += bad;
    const int i = row_of(r);
    if (i >= sq.Lq) continue;
    // rmax[r] * cs: the row maximum in log2 units, -inf when no key is visible
    const prefill::RowFinish fin(l, rmax[r] * cs, bool(p.sinks), sink);
    const float inv = fin.out_scale();
    const int64_t orow = sq.q_off(i, h, p.o_sb, p.o_ss, p.o_sh);
    PA_UNROLL
    for (int e = 0; e < D / 2; ++e)
      if ((e / 2) % 2 == r)
        prefill::store_out(p.out, p.out_dtype, orow + pa::wgmma_acc_col(t, e), o[e] * inv);
    if (p.lse && t % 4 == 0) p.lse[sq.lse_index(i, h)] = fin.lse();
  }
#else
  __trap();  // a device pass without sm_90a code: never launched there (cuda_backend.cu checks)
#endif
}

// ---- host side -----------------------------------------------------------------------------------
// The 4D tensor map of q, k or v: (feature, head, token, batch), box 64 features x 1 head x `rows`
// tokens x 1, 128-byte swizzle. Varlen: tokens are packed (batch extent 1).
template <class Tin>
inline const char *make_map(pa::tma_map *m, pa::gptr<const unsigned char> data, int d, int heads,
                            int64_t tokens, int batch, int64_t ss, int64_t sh, int64_t sb,
                            int rows) {
  pa::tma_layout l{};
  l.rank = 4;
  l.elem_bytes = 2;
  l.dims[0] = uint64_t(d);
  l.dims[1] = uint64_t(heads);
  l.dims[2] = uint64_t(tokens);
  l.dims[3] = uint64_t(batch);
  l.strides[0] = 2;
  l.strides[1] = uint64_t(sh) * 2;
  l.strides[2] = uint64_t(ss) * 2;
  l.strides[3] = batch > 1 ? uint64_t(sb) * 2 : uint64_t(ss) * 2;
  l.box[0] = 64;
  l.box[1] = 1;
  l.box[2] = uint32_t(rows);
  l.box[3] = 1;
  l.swizzle = 128;
  return pa::make_tma_map(m, pa::ptr_cast<const Tin>(data), l);
}

template <int D, class Tin, int PeKind>
pa::launch_status launch(const pa_prefill_params &p, void *stream) {
  using T = Traits<D>;
  if (PeKind == POSATTN_PE_ROPE && !p.k_prerotated)
    return pa::launch_status{false, "prefill_wgmma: the RoPE instance needs K rotated by the pre-pass"};
  if (PeKind == POSATTN_PE_XPOS && D == 256 && !p.k_prerotated)
    return pa::launch_status{false, "prefill_wgmma: the hd256 xPos instance needs K from the pre-pass"};
  pa::tma_map tq, tk, tv;
  const bool varlen = p.cu_q != nullptr;
  const int qb = varlen ? 1 : p.batch;
  const int64_t qtok = varlen ? p.total_q : p.q_len, ktok = varlen ? p.total_kv : p.kv_len;
  const char *e = make_map<Tin>(&tq, p.q, D, p.hq, qtok, qb, p.q_ss, p.q_sh, p.q_sb, 64);
  if (!e) e = make_map<Tin>(&tk, p.k, D, p.hkv, ktok, qb, p.k_ss, p.k_sh, p.k_sb, T::kBc);
  if (!e) e = make_map<Tin>(&tv, p.v, D, p.hkv, ktok, qb, p.v_ss, p.v_sh, p.v_sb, T::kBc);
  if (e) {
    pa::launch_status st{false, {0}};
    std::snprintf(st.msg, sizeof st.msg, "prefill_wgmma: %s", e);
    return st;
  }
  const dim3 grid(unsigned(p.q_len / T::kBr + (p.q_len % T::kBr != 0)), unsigned(p.hq),
                  unsigned(p.batch));
  return pa::launch("prefill_wgmma", prefill_wgmma<D, Tin, PeKind>, grid, dim3(T::kThreads),
                    smem_bytes<D>() + region_bytes<D, PeKind>(p), stream, p, tq, tk, tv);
}

// The PE kinds this kernel serves.
inline bool serves_pe(int kind) {
  return kind == POSATTN_PE_NONE || kind == POSATTN_PE_ROPE || kind == POSATTN_PE_ALIBI ||
         kind == POSATTN_PE_T5 || kind == POSATTN_PE_KERPLE_LOG ||
         kind == POSATTN_PE_KERPLE_POWER || kind == POSATTN_PE_FIRE || kind == POSATTN_PE_XPOS;
}

template <int D, class Tin>
pa::launch_status launch_pe(const pa_prefill_params &p, void *stream) {
  switch (p.pe_kind) {
    case POSATTN_PE_NONE: return launch<D, Tin, POSATTN_PE_NONE>(p, stream);
    case POSATTN_PE_ROPE: return launch<D, Tin, POSATTN_PE_ROPE>(p, stream);
    case POSATTN_PE_ALIBI: return launch<D, Tin, POSATTN_PE_ALIBI>(p, stream);
    case POSATTN_PE_T5: return launch<D, Tin, POSATTN_PE_T5>(p, stream);
    case POSATTN_PE_KERPLE_LOG: return launch<D, Tin, POSATTN_PE_KERPLE_LOG>(p, stream);
    case POSATTN_PE_KERPLE_POWER: return launch<D, Tin, POSATTN_PE_KERPLE_POWER>(p, stream);
    case POSATTN_PE_FIRE: return launch<D, Tin, POSATTN_PE_FIRE>(p, stream);
    case POSATTN_PE_XPOS:  // hd256: bf16 with the key pre-pass only (unfit)
      if constexpr (D != 256 || std::is_same<Tin, pa::bf16>::value)
        return launch<D, Tin, POSATTN_PE_XPOS>(p, stream);
      return pa::launch_status{false, "prefill_wgmma: no xPos instance at head_dim 256"};
    default: return pa::launch_status{false, "prefill_wgmma: no instance for this PE kind"};
  }
}

// The input dtypes whose instances this translation unit compiles: both unless the build says
// otherwise (kernels/sources.cmake gives the CUDA backend POSATTN_DTYPES' choice; the EMU build
// and the nvcc check keep both).
#ifndef PA_WGMMA_BF16
#define PA_WGMMA_BF16 1
#endif
#ifndef PA_WGMMA_F16
#define PA_WGMMA_F16 1
#endif
inline bool dtype_built(int in_dtype) {
  return (in_dtype == POSATTN_DTYPE_BF16 && PA_WGMMA_BF16) ||
         (in_dtype == POSATTN_DTYPE_F16 && PA_WGMMA_F16);
}

template <class Tin>
pa::launch_status launch_dt(const pa_prefill_params &p, void *stream) {
  if (p.d == 64) return launch_pe<64, Tin>(p, stream);
  if (p.d == 128) return launch_pe<128, Tin>(p, stream);
  if (p.d == 256) return launch_pe<256, Tin>(p, stream);
  return pa::launch_status{false, "prefill_wgmma: no instance for this head dim"};
}

// The instance for p (head dim, input dtype, PE kind), or a failed status.
inline pa::launch_status launch(const pa_prefill_params &p, void *stream) {
#if PA_WGMMA_BF16
  if (p.in_dtype == POSATTN_DTYPE_BF16) return launch_dt<pa::bf16>(p, stream);
#endif
#if PA_WGMMA_F16
  if (p.in_dtype == POSATTN_DTYPE_F16) return launch_dt<pa::f16>(p, stream);
#endif
  return pa::launch_status{false, "prefill_wgmma: no instance for this input dtype in this build"};
}

// xPos through the key pre-pass (pa_prefill_prerotates_k): each key transformed once around the
// call's centre (pe/xpos.cuh), bf16 while the factors stay within 2^kXposCallLog2Range. Positions
// (default ids): keys in [0, kv_len), queries from kv_len - q_len (bottom-right causal; empty rows
// below 0), per sequence when varlen (bounded by -q_len).
inline bool xpos_prepass_fits(const pa_problem *p) {
  if (p->desc->pe.kind != POSATTN_PE_XPOS || p->in_dtype != POSATTN_DTYPE_BF16) return false;
  const int64_t c = pa_pe::xpos_call_centre(p->kv_len);
  const int64_t lo = p->varlen ? -int64_t(p->q_len) : std::min<int64_t>(0, p->kv_len - p->q_len);
  const double reach = double(std::max<int64_t>(c - lo, p->kv_len - 1 - c));
  return reach * -pa_xpos_log_decay(&p->desc->pe.xpos, p->rotary_dim, 0) / std::log(2.0) <=
         pa_pe::kXposCallLog2Range;
}

// NULL when this kernel serves the validated problem p, else why not. Without tensors only the
// descriptor is judged (alignment is then decided at forward time, as for mma.cuh).
inline const char *unfit(const pa_problem *p) {
  if (p->in_dtype != POSATTN_DTYPE_BF16 && p->in_dtype != POSATTN_DTYPE_F16)
    return "it takes bf16 or f16 inputs";
  if (!dtype_built(p->in_dtype))
    return "this build pruned its instances for this input dtype (POSATTN_DTYPES)";
  if (p->d != 64 && p->d != 128 && p->d != 256) return "it takes head_dim 64, 128 or 256";
  if (!serves_pe(p->desc->pe.kind)) return "it takes no PE, RoPE, ALiBi, T5, KERPLE, FIRE or xPos";
  // xPos as mma.cuh applies it (its unfit): a centred q/k transform whose factors the 16-bit
  // operands hold only when every visible key precedes its query and positions are token order.
  if (p->desc->pe.kind == POSATTN_PE_XPOS &&
      (!p->desc->causal || p->desc->q_positions || p->desc->kv_positions))
    return "it applies xPos only with causal masking and default position ids";
  if (p->desc->pe.kind == POSATTN_PE_XPOS && p->d == 256 && !xpos_prepass_fits(p))
    return "it applies xPos at head_dim 256 only with bf16 inputs and the key pre-pass's "
           "call-centred factors within 2^64 (no in-tile K transform compiled there)";
  if (p->desc->pe.kind == POSATTN_PE_T5 && p->desc->pe.t5.max_distance > Traits<64>::kT5MaxDistance)
    return "it keeps T5's bias table in shared memory: max_distance <= 8191";
  if (p->desc->pe.kind == POSATTN_PE_T5 && p->d == 256 &&
      p->desc->pe.t5.max_distance > Traits<256>::kT5MaxDistance)
    return "it keeps T5's bias table in shared memory beside the head_dim 256 tiles: max_distance "
           "<= 4095";
  if (p->q) {  // TMA: 16-byte aligned base addresses and strides
    const posattn_tensor *t[3] = {p->q, p->k, p->v};
    for (const posattn_tensor *x : t) {
      if (reinterpret_cast<uintptr_t>(x->data) % 16 != 0) return "q/k/v data are not 16-byte aligned";
      if (x->stride_seq % 8 != 0 || x->stride_head % 8 != 0 || (!p->varlen && x->stride_batch % 8 != 0))
        return "q/k/v strides are not multiples of 8 elements (16 bytes)";
    }
  }
  return nullptr;
}

}  // namespace PA_WGMMA_NS
}  // namespace wgmma
}  // namespace pa_kernels
#undef PA_WGMMA_ROLLED
#endif
