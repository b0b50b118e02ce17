// mma.cuh -- the tensor-core prefill kernel: attention forward in the FlashAttention-2 manner for
// bf16 and fp16 inputs, written once against the device layer (kernels/device/device.cuh) so that
// nvcc builds it for sm_80+ and the SIMT emulator runs the same source on the CPU.
//
// One block computes one tile of Br query rows of one (sequence, q head); each warp owns kM m16
// slabs (16 kM rows; every K/V fragment it reads feeds kM mma), so no warp ever exchanges data
// with another warp except through the K/V tiles in shared memory. Per KV tile of Bc keys:
//   S = Q K^T      mma.sync m16n8k16, fp32 accumulators; Q and K fragments via ldmatrix
//   S -> logits    plain scores stay raw (the scale enters exp2's FFMA); softcap and bias
//                  policy in fp32 behind one uniform branch; mask (fp32 -inf) on masked tiles only
//   online softmax row max / rescale / exp2 in fp32, P rounded to the input type for the mma;
//                  lazy: a row's reference maximum moves only when its logits rise more than 8
//                  log2 units above it, and a warp rescales O only when one of its rows moved
//   O += P V       P stays in registers (the S accumulator layout is the A fragment layout);
//                  V fragments via ldmatrix.trans
// K/V tiles stream through a kStages-deep cp.async ring (zero-filled past the sequence end), so
// the copy of tile n+kStages-1 overlaps the math of tile n; with kStages = 1 (hd128) one K and one
// V buffer, V of tile n copied during Q K^T of tile n, K of tile n+1 during its softmax and P V.
// Transforming encodings (RoPE, xPos) rotate Q once per block in fp32 in shared memory, then
// round to the mma input type; RoPE's K is
// rotated the same way once per key and call by the pre-pass (rope_k.cu, p.k_prerotated), xPos
// rotates each K tile here: nothing else rounds the rotated vectors.
//
// Shared memory rows (Smem<D>): ldmatrix reads 8 rows at one 16-byte chunk column; with a row pitch
// of 128/256/512 bytes those rows sit at the same banks, an 8-way conflict. Rows of a multiple of
// 64 elements are therefore XOR-swizzled (chunk c of row r at chunk c ^ (r % 8)), other head dims
// padded by one chunk (an odd number of 16-byte groups per row); 16-byte cp.async writes stay whole.
//
// Non-finite values (posattn.h NaN RULE). Masked logits are exact -inf. A row is poisoned through
// its sum l: per tile, its maximum and this thread's minimum of its visible logits, scaled to
// log2 units, are finite exactly when every such logit is (otherwise l += NaN), and a NaN logit
// makes its own weight NaN. Weights of masked keys are 0, but on tensor cores 0 * NaN = NaN: a
// non-finite V element of a key that some rows of the tile cannot see would reach them through
// P V. On tiles with masked elements (the only ones where a row may not see a key of the tile)
// isolate_nonfinite_v therefore replaces such an element by 0 and makes one K element of that key
// NaN, so that exactly the rows that see the key get a NaN logit. On wholly visible tiles every
// row sees every key and a non-finite V element makes the accumulators non-finite directly; the
// epilogue turns any non-finite accumulator of a row into a NaN row and LSE. Cost (SASS,
// docs/kernels.md): two FMNMX per logit (max and min), the V scan on masked tiles only, a few
// dozen instructions per block in the epilogue.
//
// Policies (kernels/pe/*.cuh) enter at three points: Pe::transform (q/k pairs in fp32), Pe::bias
// (added to the fp32 logit), and the Mask (key ranges per query tile for tile skipping, and the
// per-element rule on tiles that are not wholly visible).
#ifndef POSATTN_PREFILL_MMA_CUH
#define POSATTN_PREFILL_MMA_CUH

#include "device/device.cuh"
#include "pe/bias.cuh"
#include "pe/mask.cuh"
#include "pe/rope.cuh"
#include "pe/xpos.cuh"
#include "posattn.h"
#include "internal.h"
#include "prefill/epilogue.cuh"
#include "prefill/params.h"

// The emulator build and the nvcc build of an instance are different functions; an inline
// namespace keeps their symbols apart should one binary ever hold both.
#if defined(__CUDACC__)
#define PA_MMA_NS cuda
#else
#define PA_MMA_NS emu
#endif

namespace pa_kernels {
namespace mma {
inline namespace PA_MMA_NS {

// ---- tile choices ---------------------------------------------------------------------------------
// Each warp owns kM m16 slabs of query rows (kBr = 16 kWarps kM), so every K and V fragment read
// by ldmatrix feeds kM mma (FlashAttention-2 gives each of its 4 warps 32 rows of a 128-row tile).
// kStages >= 2: a ring of K/V tile pairs; kStages = 1: one K and one V buffer (hd128; kSplit in
// the kernel).
// Registers per thread are dominated by the O accumulators (kM x 16 rows x d / 32 lanes = kM d/2
// floats) and the S tile (kM Bc/2 floats); shared memory = Q tile + kStages K/V tile pairs.
// Per-warp-per-tile figures (posattn-sass, before/after each change): docs/kernels.md.
// A tile shape: head dim, warps, query rows Br, keys per tile Bc, K/V stages, m16 slabs per warp.
template <int D, int W, int Br, int Bc, int S, int M>
struct TileShape {
  static constexpr int kD = D, kWarps = W, kBr = Br, kBc = Bc, kStages = S, kM = M;
};
template <int D>
struct Traits;

// Registers decide the shapes (ptxas, CUDA 13, sm_80 and sm_90a, no spill; docs/kernels.md): the
// kernel's own state beyond O and S takes ~80-100 registers, so two slabs per warp fit only where
// kM (d + Bc) / 2 stays near 160.
// hd64: 4 warps x 32 rows = 128 query rows, 64-key tiles (the per-tile costs over 128 mma, not
// 64: 8.5 -> 6.6 instructions per mma, docs/kernels.md); 2 stages: 16 + 2 x 16 KiB = 48 KiB.
template <>
struct Traits<64> : TileShape<64, 4, 128, 64, 2, 2> {};
// hd80, hd96, hd112: hd128's arrangement, 4 warps x 32 rows (every K/V fragment feeds 2 mma:
// 160 ldmatrix bytes per mma, was 288 at 16 rows per warp), 64-key tiles, one K and one V buffer
// (kSplit): 45 / 53 / 60 KiB, 2 blocks per SM. Padded rows (10, 12, 14 chunks) take TileCopy's
// general path.
template <>
struct Traits<80> : TileShape<80, 4, 128, 64, 1, 2> {};
template <>
struct Traits<96> : TileShape<96, 4, 128, 64, 1, 2> {};
template <>
struct Traits<112> : TileShape<112, 4, 128, 64, 1, 2> {};
// hd128: FA2's 128 x 64 tile, 4 warps x 32 rows (every K/V fragment feeds 2 mma), 64-key tiles
// (40 KiB of ldmatrix per 256 mma: 160 bytes per mma); kStages = 1: one K and one V buffer, copied
// in FA2's order (kSplit): 32 KiB Q + 16 KiB K + 16 KiB V (+ 3.1-4.6 KiB row tables, bands)
// = 67-69 KiB, 2 blocks per SM on sm_80 and sm_90. 253-255 registers, no spill on sm_80/sm_90a -- only with the
// block values in shared memory, P packed as it is computed and the per-element bias loop in its
// own Bc = 32 kernel (ElementTraits, split_paths; docs/kernels.md, Issue 12 log): ptxas is at its
// edge, a change to the loop must be checked with ptxas for every PE kind.
template <>
struct Traits<128> : TileShape<128, 4, 128, 64, 1, 2> {};
// The shape of the per-element bias loop (explicit position ids) where it has its own kernel
// (split_paths below): Traits<D> except at hd128, where that loop spills at Bc = 64 (32-key
// tiles, a 2-stage ring), and FIRE's at hd80 and hd112 (16 rows per warp; at Traits<D> it spills
// 24-28 bytes on sm_90a).
template <int D>
struct ElementTraits : Traits<D> {};
template <>
struct ElementTraits<80> : TileShape<80, 4, 64, 64, 2, 1> {};
template <>
struct ElementTraits<112> : TileShape<112, 4, 64, 64, 2, 1> {};
template <>
struct ElementTraits<128> : TileShape<128, 4, 128, 32, 2, 2> {};
// hd192: O is 96 registers per slab: 8 warps x 16 rows, 32-key tiles: 48 + 2 x 24 KiB = 96 KiB.
template <>
struct Traits<192> : TileShape<192, 8, 128, 32, 2, 1> {};
// hd256: O alone is 128 registers per thread; 4 warps (64 rows), Bc = 32 (it spilled at Bc = 32
// until the copy addressing was hoisted; 252-255 registers now), 2 stages: 32 KiB Q + 2 x 32 KiB
// K/V = 96 KiB.
template <>
struct Traits<256> : TileShape<256, 4, 64, 32, 2, 1> {};

// Shared memory rows. Rows of a multiple of 64 elements (>= 8 16-byte chunks) are XOR-swizzled:
// chunk c of row r is stored at chunk c ^ (r % 8), so the 8 rows of every ldmatrix phase land on
// 8 different 16-byte bank groups, and 16-byte cp.async writes stay whole. Other head dims
// (80, 96, 112: 10, 12, 14 chunks) pad each row by one chunk instead: an odd number of 16-byte
// groups per row puts 8 consecutive rows on 8 different groups.
template <int D>
struct Smem {
  static constexpr bool kSwizzle = D % 64 == 0;
  static constexpr int kPitch = kSwizzle ? D : D + 8;  // elements from one row to the next
  static_assert(kSwizzle || (kPitch / 8) % 2 == 1, "padded rows need an odd chunk count");
  // Element offset of (row, col).
  PA_DEVICE static int at(int row, int col) {
    return kSwizzle ? row * D + ((((col >> 3) ^ (row & 7))) << 3) + (col & 7) : row * kPitch + col;
  }
};

template <class T>
struct Check {
  static constexpr int kThreads = T::kWarps * 32;
  // Blocks per SM ptxas is told to allow (__launch_bounds__): two-slab shapes run 2 per SM. The
  // register cap is the same 255 either way, but with 1 ptxas (CUDA 13, sm_90a) spilled 8 bytes
  // in hd128 T5 once the prefill sink epilogue was added; with 2 no instance spills.
  static constexpr int kMinBlocks = T::kM == 2 ? 2 : 1;
  static_assert(T::kBr == 16 * T::kWarps * T::kM, "each warp owns kM m16 slabs of query rows");
  static_assert(T::kBc % 16 == 0, "Bc is a whole number of mma k-steps for P V");
  static_assert(T::kD % 16 == 0, "whole mma k-steps and n8 atom pairs over the head dim");
  static_assert(T::kStages >= 1, "kStages 1: one K and one V buffer, copies split (kSplit)");
  static_assert((T::kBr * T::kD / 8) % kThreads == 0, "Q tile chunks split evenly over threads");
  static_assert((T::kBc * T::kD / 8) % kThreads == 0, "K/V tile chunks split evenly over threads");
  static_assert(T::kBc % 32 == 0 && T::kBc <= 64, "a row's visibility over a KV tile: 1-2 words");
  static constexpr int kMaskWords = T::kBc / 32;  // per query row (visible_words)
  // per query row: its document's keys (2 words, visible_words), its position and one float
  // (row_table), then 4 words of head values and kBlockWords of block values the tile loop reads
  // back instead of holding them in registers (K/V offsets, TileWalk, FullTiles)
  static constexpr int kBlockWords = 12;
  static constexpr int kRowWords = 4 * T::kBr + 4 + kBlockWords;
  // Per warp: the bias of every distance its 16 kM rows x kBc keys can see (16 kM + kBc - 1
  // distances; the distance band, bias kinds with positions in token order), then one word: the
  // tile the band was filled for. Not in kSmemBytes: see region_bytes.
  static constexpr int kBandPitch = 16 * T::kM + T::kBc;
  static constexpr int kBandWords = T::kWarps * kBandPitch;
  // FIRE's band per warp (after its segment tables): psi of the distances (kBandPitch words;
  // the last one: the rows that cross a kink), then per row of the warp (2 words each, 8-byte
  // aligned: kBandPitch is even) its base segment's {a, c}, its segments {lo, hi} over the tile
  // and the kink term {kd, ps} of the current kink trip (fire_rows, the FIRE band's logits).
  static constexpr int kFireRows = kBandPitch, kFireSegs = kFireRows + 2 * 16 * T::kM;
  static constexpr int kFireKink = kFireSegs + 2 * 16 * T::kM;
  static constexpr int kFirePitch = kFireKink + 2 * 16 * T::kM;
  static constexpr size_t kSmemBytes =
      size_t(T::kBr + 2 * T::kStages * T::kBc) * Smem<T::kD>::kPitch * 2 /* 16-bit elements */ +
      size_t(T::kBr) * kMaskWords * 4 + size_t(kRowWords) * 4;
};

// The kinds whose bias depends on the distance pq - pk alone: with positions in token order
// (no q_pos/kv_pos arrays) the kernel reads it from the warps' distance bands.
// FIRE's band holds psi(|d|) (its normaliser depends on the row; see the FIRE band below).
PA_HD constexpr bool band_kind(int kind) {
  return kind == POSATTN_PE_ALIBI || kind == POSATTN_PE_T5 || kind == POSATTN_PE_KERPLE_LOG ||
         kind == POSATTN_PE_KERPLE_POWER || kind == POSATTN_PE_FIRE;
}
PA_HD bool uses_band(int kind, const pa_prefill_params &p) {
  return band_kind(kind) && !p.q_pos && !p.kv_pos;
}
// Shared memory after the row table: the distance bands when the call uses them, else the T5 or
// FIRE tables (pa_pe::shared_table_bytes; T5's band reads the host tables directly, so a T5 call
// needs one or the other: hd192 with T5's largest table stays within the 163 KiB of an sm_80).
// FIRE keeps its segment tables and, after them (16-byte aligned), the warps' FIRE bands.
PA_HD size_t fire_band_offset(const pa_prefill_params &p) {  // in words
  return (pa_pe::shared_table_bytes<POSATTN_PE_FIRE>(p) / 4 + 3) / 4 * 4;
}
template <class T, int PeKind>
PA_HD size_t region_bytes(const pa_prefill_params &p) {
  using C = Check<T>;
  if (PeKind == POSATTN_PE_FIRE)
    return uses_band(PeKind, p) ? (fire_band_offset(p) + size_t(T::kWarps) * C::kFirePitch) * 4
                                : pa_pe::shared_table_bytes<PeKind>(p);
  return uses_band(PeKind, p) ? size_t(C::kBandWords) * 4 : pa_pe::shared_table_bytes<PeKind>(p);
}

// Which tile loops a kernel holds (its Path argument). kPathBoth: the band kinds' two copies
// (distance band, per-element bias; a block-uniform choice), or the one loop of the other kinds.
// split_paths: two kernels instead (launch() picks one per call), the band loop at Traits<D>,
// the per-element bias loop (explicit positions) at ElementTraits<D>. The loops of one kernel
// share its registers (ptxas, CUDA 13, sm_80 and sm_90a; docs/kernels.md, Issue 12 log):
//  - hd128, every band kind: the per-element loop spills at Bc = 64, so it keeps Bc = 32;
//  - FIRE at hd64, hd80, hd112: its band loop (kink trips) beside its per-element loop spills at
//    Traits<D> (16 bytes at hd64 on sm_80, 4 / 32 at hd80 on sm_80 / sm_90a, 32 at hd112 on
//    sm_90a); each alone does not (hd64), or the per-element one at ElementTraits (hd80, hd112).
//    At hd96 both fit one Traits<96> kernel.
enum : int { kPathBoth = 0, kPathBand = 1, kPathElement = 2 };
template <int D, int PeKind>
PA_HD constexpr bool split_paths() {
  return band_kind(PeKind) &&
         (D == 128 || (PeKind == POSATTN_PE_FIRE && (D == 64 || D == 80 || D == 112)));
}
template <int D, int PeKind, int Path>
using KernelTraits =
    typename std::conditional<Path == kPathElement, ElementTraits<D>, Traits<D>>::type;

// Dynamic shared memory of one block (the launch passes it; > 48 KiB needs the opt-in attribute,
// which pa::launch sets).
template <class T>
constexpr size_t smem_bytes() { return Check<T>::kSmemBytes; }
// T5's largest shared table (the chooser's kT5SharedMaxDistance) fits beside every shape that
// runs the per-element path within the 163 KiB of an sm_80 block (hd192 has ~0.5 KiB left;
// FIRE's tables are < 30 KiB).
template <int... D>
constexpr bool t5_table_fits() {
  return ((smem_bytes<ElementTraits<D>>() + 2 * (size_t(pa_pe::kT5SharedMaxDistance) + 1) * 4 <=
               163 * 1024 &&
           smem_bytes<Traits<D>>() + 2 * (size_t(pa_pe::kT5SharedMaxDistance) + 1) * 4 <=
               163 * 1024) &&
          ...);
}
static_assert(t5_table_fits<64, 80, 96, 112, 128, 192, 256>(), "T5's shared table does not fit");

// ---- small helpers -------------------------------------------------------------------------------
template <class T>
struct MmaOp;
template <>
struct MmaOp<pa::bf16> {
  PA_DEVICE static void run(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    pa::mma_m16n8k16_bf16(d, a, b, d);
  }
  PA_DEVICE static uint32_t pack(float lo, float hi) { return pa::pack_bf16x2(lo, hi); }
};
template <>
struct MmaOp<pa::f16> {
  PA_DEVICE static void run(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    pa::mma_m16n8k16_f16(d, a, b, d);
  }
  PA_DEVICE static uint32_t pack(float lo, float hi) { return pa::pack_f16x2(lo, hi); }
};

// ldmatrix row addresses from one register: chunk 2k + half of this lane's row. Swizzled (D a
// multiple of 64: row * D has no bit among the chunk-index bits 3..5 of an element offset), that
// chunk sits at row * D + 8 ((2k + half) ^ (row % 8)) = (y ^ 16 (k % 4)) + 64 (k / 4) with
// y = row * D + 8 (half ^ (row % 8)): one XOR with a constant per k-step, the rest immediates
// (the XOR only touches the low 3 chunk bits); padded, at y + 16k. Rows 16 further (and any
// offset with bits 3..5 clear, e.g. whole 8-row groups) add outside the XOR.
template <int D>
struct LaneRow {
  int y;
  PA_DEVICE LaneRow(int row, int half) : y(Smem<D>::at(row, half * 8)) {}
  PA_DEVICE explicit LaneRow(int y_) : y(y_) {}
  PA_DEVICE int at(int kstep) const {
    return Smem<D>::kSwizzle ? (y ^ (16 * (kstep & 3))) + (kstep >> 2) * 64 : y + 16 * kstep;
  }
};

// Copies a tile of kRows rows (row r = token j0 + r) into shared memory by 16-byte cp.async;
// rows at or past `valid` are zero-filled (src-size 0: their address, past the sequence, is
// never read, so it needs no select). When the thread count is a multiple of the chunks per
// row, each thread copies one fixed chunk column of rows row0, row0 + kR, ...: per copy one
// compare and one 64-bit add.
template <int D, int kRows, int kThreads>
struct TileCopy {
  static constexpr int kChunks = D / 8, kPer = kRows * kChunks / kThreads;
  static constexpr bool kFixed = kThreads % kChunks == 0;
  static constexpr int kR = kFixed ? kThreads / kChunks : 1;  // rows between a thread's copies
  // Distinct swizzle phases over a thread's rows (row % 8 repeats every kPeriod copies).
  static constexpr int kPeriod = Smem<D>::kSwizzle && kR % 8 != 0 ? 8 / kR : 1;
  static_assert(!kFixed || kR % 8 == 0 || 8 % kR == 0, "row step divides or is a multiple of 8");
  int row0, col, dst[kPeriod];  // this thread's first row and its chunk column (elements)
  PA_DEVICE explicit TileCopy(int tid) {
    // unsigned: tid >= 0, and a shift and a mask are cheaper than signed division
    row0 = kFixed ? int(unsigned(tid) / kChunks) : 0;
    col = kFixed ? int(unsigned(tid) % kChunks) * 8 : 0;
    PA_UNROLL
    for (int q = 0; q < kPeriod; ++q) dst[q] = Smem<D>::at(row0 + q * kR, col);
  }
  // The tile whose row 0 is token j0 (>= 0) of the sequence at g (j0 = 0: g is row 0 itself).
  // kFixed: this thread's first row is token j0 + row0, one 32 x 64-bit multiply-add.
  template <class Tin>
  PA_DEVICE void operator()(pa::sptr<Tin> s, pa::gptr<const Tin> g, int64_t row_stride, int valid,
                            int tid, int j0 = 0) const {
    if (kFixed) {
      pa::gptr<const Tin> gt =  // walks this thread's rows
          g + int64_t(uint64_t(uint32_t(j0 + row0)) * uint64_t(row_stride) + uint64_t(col));
      const int64_t step = kR * row_stride;
      const int left = valid - row0;  // this thread's rows it * kR < left are in the sequence
      PA_UNROLL
      for (int it = 0; it < kPer; ++it) {
        // a row past `valid` reads nothing (src-size 0): its address needs no select
        pa::cp_async_16_zfill(s + dst[it % kPeriod] + (it / kPeriod) * kPeriod * kR * Smem<D>::kPitch,
                              gt, it * kR < left);
        gt += step;
      }
    } else {
      PA_UNROLL
      for (int e = tid; e < kRows * kChunks; e += kThreads) {
        const int r = e / kChunks, c = e % kChunks;
        pa::cp_async_16_zfill(s + Smem<D>::at(r, c * 8), g + int64_t(j0 + r) * row_stride + c * 8,
                              r < valid);
      }
    }
  }
};

// The transform hook for this kernel: RoPE pairs from rope.cuh; xPos adds its centred decay
// (xpos.cuh), centred on the first query position of the block so that the q factors stay <= 1.
template <int Kind>
struct Transform {
  static constexpr bool kOn = Kind == POSATTN_PE_ROPE || Kind == POSATTN_PE_XPOS;
  // RoPE keys arrive rotated by the pre-pass (p.k_prerotated, kernels/prefill/rope_k.cu: once per
  // key per call, same fp32 math, one rounding); xPos K factors depend on the block's centre.
  static constexpr bool kRotatesK = Kind == POSATTN_PE_XPOS;
  const pa_prefill_params *p;
  int32_t centre;
  PA_DEVICE void operator()(float &a, float &b, int pair, int32_t pos, bool is_q) const {
    const float2 r = pa_pe::rope_rotate(a, b, pa_pe::rope_cos_sin(*p, pair, pos));
    float w = 1.f;
    if (Kind == POSATTN_PE_XPOS)
      w = is_q ? pa_pe::xpos_q_scale(*p, pair, pos, centre) : pa_pe::xpos_k_scale(*p, pair, pos, centre);
    a = r.x * w;
    b = r.y * w;
  }
};

// Rotates rows [0, rows) of a tile in place: each rotary pair in fp32, rounded once to the mma
// input type. pos(r) gives the position id of row r.
template <int D, int kThreads, class Tin, class Xf, class Pos>
PA_DEVICE void transform_tile(pa::sptr<Tin> t, const Xf &xf, int rows, bool is_q, Pos pos,
                              int tid) {
  const int npairs = xf.p->rotary_dim / 2;
  for (int e = tid; e < rows * npairs; e += kThreads) {
    const int r = e / npairs, i = e % npairs;
    int fa, fb;
    pa_pe::rope_pair_features(*xf.p, i, fa, fb);
    const pa::sptr<Tin> ea = t + Smem<D>::at(r, fa), eb = t + Smem<D>::at(r, fb);
    float a = pa::to_float(Tin(*ea)), bv = pa::to_float(Tin(*eb));
    xf(a, bv, i, pos(r), is_q);
    *ea = pa::from_float<Tin>(a);
    *eb = pa::from_float<Tin>(bv);
  }
}

// The KV tiles a query block [qt0, qt1) visits, without a test per tile: those meeting the
// causal/window key range [lo, hi) (kv_bounds) that hold an anchor some row's left window reaches
// or a key of the block's documents (Seq::doc_keys, once per block). Documents are contiguous and
// mean self-attention, so that is the anchor tiles [0, ceil(num_anchor / Bc)) and the run of
// tiles [dlo / Bc, ceil(dhi / Bc)): next(t) jumps over the tiles between them. bench/sass/
// tile_walk.cpp runs this walk and checks that it visits every visible tile (docs/kernels.md,
// Issue 12 log, AnchorAttention proportionality).
template <int kBc>
struct TileWalk {
  int first;     // the first tile: next(lo / Bc)
  int end;       // no tile at or after it is visited (the loop ends at t == end)
  int skip_from, skip_to;  // tiles [skip_from, skip_to) hold neither anchors nor documents
  PA_DEVICE TileWalk(const pa_pe::Seq &sq, int qt0, int qt1) {
    const pa_prefill_params &p = *sq.p;
    int lo, hi, dlo, dhi;
    sq.kv_bounds(qt0, qt1, lo, hi);
    const int t_end = hi > lo ? hi / kBc + (hi % kBc != 0) : 0;  // hi + kBc - 1 may overflow
    sq.doc_keys(qt0, qt1, dlo, dhi);
    // anchors j < num_anchor: a row i sees one when j >= i - window_left (shift = 0 with
    // documents), i.e. when num_anchor - 1 >= qt0 - window_left for the block's first row
    const bool anchors = p.doc_ids && p.num_anchor > 0 &&
                         (p.window_left < 0 || int64_t(p.num_anchor) + p.window_left > qt0);
    const int t_anchor = anchors ? p.num_anchor / kBc + (p.num_anchor % kBc != 0) : 0;
    skip_from = t_anchor;
    skip_to = dlo / kBc;
    end = pa::max(pa::min(t_end, dhi / kBc + (dhi % kBc != 0)), pa::min(t_anchor, t_end));
    first = next(lo / kBc);
  }
  PA_DEVICE int next(int t) const { return step(t, skip_from, skip_to, end); }
  PA_DEVICE static int step(int t, int skip_from, int skip_to, int end) {
    if (t >= skip_from && t < skip_to) t = skip_to;
    return t < end ? t : end;
  }
};

// Which KV tiles of the query rows [i0, i1) are wholly visible (then the per-element rule is
// skipped for the tile), prepared once per block: keys [first, last] are visible to every row
// by causal/window and the sequence end, and with documents the rows' document `doc` (rows that
// span two documents see no non-anchor tile whole: last stops before the first non-anchor key).
// Conservative: false whenever unsure. Three words stay live through the loop instead of the
// rows' bounds and offsets.
struct FullTiles {
  int first, last;
  int32_t doc;
  PA_DEVICE FullTiles(const pa_pe::Seq &sq, int i0, int i1) {
    const pa_prefill_params &p = *sq.p;
    // windows up to INT32_MAX: the window bounds in int64
    int64_t f = 0, l = int64_t(sq.Lk) - 1;
    if (p.causal) l = pa::min(l, int64_t(i0) + sq.shift);  // i0 + shift < Lk
    if (p.window_left >= 0) f = pa::max(f, int64_t(i1) - 1 + sq.shift - p.window_left);
    if (p.window_right >= 0) l = pa::min(l, int64_t(i0) + sq.shift + p.window_right);
    doc = p.doc_ids ? sq.q_doc(i0) : 0;
    if (p.doc_ids && sq.q_doc(i1 - 1) != doc) l = pa::min(l, int64_t(p.num_anchor) - 1);
    first = int(pa::min(f, int64_t(sq.Lk)));
    last = int(pa::max(l, int64_t(-1)));
  }
  // Whether keys [j0, j0 + n) are visible to every row.
  PA_DEVICE bool operator()(const pa_pe::Seq &sq, int j0, int n) const {
    return test(sq, first, last, doc, j0, n);
  }
  PA_DEVICE static bool test(const pa_pe::Seq &sq, int first, int last, int32_t doc, int j0,
                             int n) {
    if (j0 < first || j0 + n - 1 > last) return false;
    const pa_prefill_params &p = *sq.p;
    if (p.doc_ids && j0 + n > p.num_anchor)
      return sq.kv_doc(j0) == doc && sq.kv_doc(j0 + n - 1) == doc;
    return true;
  }
};

// v unchanged, but the compiler may not assume so (an empty volatile asm): what is computed from
// it inside the tile loop stays there instead of being hoisted into registers held across it.
PA_DEVICE int opaque(int v) {
#if defined(__CUDACC__)
  asm volatile("" : "+r"(v));
#endif
  return v;
}

// threadIdx.x read again where it is used: the asm is volatile, so the compiler can neither
// hoist it nor what is computed from it out of the tile loop. A per-thread shared-memory address
// then costs a few integer instructions per tile instead of a register held across the loop
// (hd128 runs at ptxas's 255-register edge).
PA_DEVICE int fresh_tid() {
#if defined(__CUDACC__)
  int t;
  asm volatile("mov.u32 %0, %%tid.x;" : "=r"(t));
  return t;
#else
  return int(threadIdx.x);
#endif
}

// Exponent bits of the 16-bit type: all set = infinity or NaN.
template <class Tin>
constexpr uint32_t kExpBits = std::is_same<Tin, pa::bf16>::value ? 0x7f80u : 0x7c00u;
// Whether either 16-bit element of w is an infinity or a NaN.
template <class Tin>
PA_DEVICE bool nonfinite_pair(uint32_t w) {
  constexpr uint32_t e = kExpBits<Tin>;
  return (w & e) == e || ((w >> 16) & e) == e;
}

// See the file comment: on a tile with masked elements, each non-finite V element becomes 0 and
// the first K element of its 16-byte chunk becomes NaN. Each thread owns whole chunks (the same
// offsets in K and V), so no element is written by two threads.
template <int D, int kRows, int kThreads, class Tin>
PA_DEVICE void isolate_nonfinite_v(pa::sptr<Tin> k, pa::sptr<Tin> v, int tid) {
  constexpr int kChunks = D / 8;
  PA_UNROLL
  for (int e = tid; e < kRows * kChunks; e += kThreads) {
    const int at = Smem<D>::at(e / kChunks, (e % kChunks) * 8);
    const uint4 w = pa::load(pa::ptr_cast<const uint4>(v + at));
    if (!(nonfinite_pair<Tin>(w.x) || nonfinite_pair<Tin>(w.y) || nonfinite_pair<Tin>(w.z) ||
          nonfinite_pair<Tin>(w.w)))
      continue;
    for (int x = 0; x < 8; ++x)
      if ((Tin(*(v + at + x)).bits & kExpBits<Tin>) == kExpBits<Tin>) *(v + at + x) = Tin{0};
    *(k + at) = pa::from_float<Tin>(NAN);
  }
}

// Bits [a, b] of a 32-bit word (0 <= a, b <= 31; none when a > b).
PA_DEVICE uint32_t bit_range(int a, int b) {
  return a > b ? 0u : (0xffffffffu >> (31 - b)) & (0xffffffffu << a);
}

// The row table's document words: for each query row r of the block (row qt0 + r), the keys
// [ds, de) of its document (Seq::doc_keys) at docs[2 r], docs[2 r + 1]; rows past the sequence
// end get an empty range. Thread tid writes the rows visible_words reads with the same tid.
template <int kBr, int kThreads>
PA_DEVICE void row_docs(const pa_pe::Seq &sq, pa::sptr<int32_t> docs, int qt0, int tid) {
  for (int r = tid; r < kBr; r += kThreads) {
    int ds = 0, de = 0;
    if (qt0 + r < sq.Lq) sq.doc_keys(qt0 + r, qt0 + r + 1, ds, de);
    docs[2 * r] = ds;
    docs[2 * r + 1] = de;
  }
}

// On a masked tile (keys [j0, j0 + kBc)): for each query row of the block, one bit per key of
// the tile, set when the row sees the key (causal/window range, sequence ends, documents), into
// words[row * kBc / 32 ...]. With documents a row sees the keys of its window range [first, last]
// inside its document's keys [ds, de) (row_docs) and the anchors [first, num_anchor - 1]: two bit
// ranges, no doc id load per key. Each thread writes whole rows; the caller's barrier publishes
// them. Keeping this in shared memory rather than per-row bounds and documents in registers is
// what lets 4 warps x 32 rows at hd128 fit in 255 registers without spilling (docs/kernels.md).
template <int kBr, int kBc, int kThreads>
PA_DEVICE void visible_words(const pa_pe::Seq &sq, pa::sptr<uint32_t> words,
                             pa::sptr<int32_t> docs, int qt0, int j0, int tid) {
  constexpr int kW = kBc / 32;
  const pa_prefill_params &p = *sq.p;
  const int jend = pa::min(j0 + kBc, sq.Lk);  // keys past the sequence end are never visible
  PA_UNROLL  // a compile-time trip count: no run-time loop around the shared stores
  for (int it = 0; it < (kBr + kThreads - 1) / kThreads; ++it) {
    const int r = tid + it * kThreads;
    if (r >= kBr) break;
    const int i = qt0 + r;
    int first = 0, last = -1;
    if (i < sq.Lq) {
      sq.row_keys(i, first, last);
      first = pa::max(first, j0);
      last = pa::min(last, jend - 1);
    }
    // keys [a, z] of the row's document, keys [first, za] of the anchors (none without documents)
    int a = first, z = last, za = -1;
    if (p.doc_ids) {
      a = pa::max(first, int(docs[2 * r]));
      z = pa::min(last, int(docs[2 * r + 1]) - 1);
      za = pa::min(last, p.num_anchor - 1);
    }
    PA_UNROLL
    for (int x = 0; x < kW; ++x) {
      const int b = j0 + 32 * x;
      words[r * kW + x] = bit_range(pa::max(a - b, 0), pa::min(z - b, 31)) |
                          bit_range(pa::max(first - b, 0), pa::min(za - b, 31));
    }
  }
}

// FIRE band (positions in token order; after the warp's psi band is filled). The bias is
// f(x), x = psi(|d|) / normaliser, f the MLP: continuous and piecewise linear with kinks at the
// segment starts, so over x in [start[lo], start[hi + 1]) f(x) = slope[lo] x + icpt[lo] + the sum
// over kinks j in (lo, hi] of (slope[j] - slope[j - 1]) max(x - start[j], 0). Row w of the warp
// (0 .. 16 kM - 1) sees the distances d0 + w + [0, kBc) (band entries w .. w + kBc - 1); psi is
// non-decreasing in |d| (up to fire_psi_max; beyond it, log's rounding can only move an element
// next to a kink, where both segments agree), so [lo, hi] = the segments of x at the row's
// nearest and farthest distance (fire_row_segments). In log2 units from psi, per row
// {a, c} = {fl(fl(slope[lo] * inv_norm) * log2 e), fl(icpt[lo] * log2 e)}: every element's
// bias' = fmaf(a, psi, c), one FFMA (the logit adds it in one more; see "Logit units"). A tile
// where some row crosses a kink (hi > lo: a warp vote) then runs one kink trip per kink the
// most-crossing row of the warp crosses: kink lo + k of each row as {kd, ps} = {the slope step
// per unit of psi in log2 units, the kink's psi start[j] * normaliser} ({0, 0} for a row without
// one), and per element x += kd max(psi - ps, 0) (FADD, FMNMX, FFMA). Not bit-identical to
// FireBias's fmaf(slope, fl(psi * inv_norm), icpt) * log2 e (one segment per element): a few
// fp32 roundings apart, and an element within rounding of a kink takes a value within rounding
// of either segment's (docs/kernels.md, FIRE band numerics). Rows whose distances wrap (past a
// sequence end) take their base segment: any finite bias serves them (their logits are discarded
// or masked). The word after the psi band holds the rows that cross a kink (a ballot; 0: no
// trip), read by the logits.

// Row w's segments over the tile (fire_rows; also bench/sass/fire_tiles.cpp): lo and hi, those of
// x at the row's nearest and farthest |d| (hi = lo for a row whose distances wrap).
template <class T>
PA_DEVICE void fire_row_segments(pa::sptr<const float> band_w, float inv,
                                 const pa_pe::FireSegments<pa::sptr> &segs, uint32_t d0, int w,
                                 int &lo, int &hi) {
  constexpr int kBc = T::kBc;
  const int32_t dlo = int32_t(d0 + uint32_t(w)), dhi = int32_t(d0 + uint32_t(w + kBc - 1));
  const pa_pe::FirePsiRange r = pa_pe::fire_psi_range<kBc>(band_w + w, dlo);
  lo = segs.index(r.near * inv);
  hi = dhi > dlo ? segs.index(r.far * inv) : lo;
}

template <class T>
PA_DEVICE void fire_rows(pa::sptr<float> band_w, pa::sptr<const float> row_f,
                         const pa_pe::FireSegments<pa::sptr> &segs, uint32_t d0, int w) {
  using C = Check<T>;
  constexpr int kRowsW = 16 * T::kM;
  constexpr float kLog2e = 1.4426950408889634f;  // prefill_mma's
  static_assert(kRowsW <= 32, "fire_rows: one lane per row of the warp (the ballot's bits)");
  int lo = 0, hi = 0;
  if (w < kRowsW) {
    const float inv = row_f[w];
    fire_row_segments<T>(band_w, inv, segs, d0, w, lo, hi);
    pa::store(pa::ptr_cast<float2>(band_w + C::kFireRows + 2 * w),
              make_float2(float(segs.slope[lo]) * inv * kLog2e, float(segs.icpt[lo]) * kLog2e));
    pa::store(pa::ptr_cast<int2>(band_w + C::kFireSegs + 2 * w), make_int2(lo, hi));
  }
  // the rows that cross a kink (bit w): the tile's kink trips
  const uint32_t slow = __ballot_sync(0xffffffffu, hi > lo);
  if (w == 0) pa::ptr_cast<uint32_t>(band_w)[C::kBandPitch - 1] = slow;
  __syncwarp();
}

// ---- the kernel ----------------------------------------------------------------------------------
// Grid: (ceil(max Lq / Br), hq, batch); block: kWarps * 32 threads; dynamic smem: smem_bytes<T>(),
// plus the T5/FIRE instances' bias tables (pa_pe::shared_table_bytes).
// The output dtype is a run-time field (only the epilogue depends on it). Preconditions, checked
// by the chooser through layout_ok(): q/k/v rows 16-byte aligned (data pointers and every stride
// multiples of 8 elements), since every Q/K/V row moves by 16-byte cp.async.
// __launch_bounds__(threads, Check::kMinBlocks): with the thread count alone ptxas (CUDA 13,
// sm_80) capped the hd64 RoPE instances at 128 registers and spilled 32 bytes.
//
// Logit units. Plain logits (no bias, no softcap) stay raw q.k scores x and enter exp2 through one
// FFMA, exp2(x * cs - m * cs) with cs = scale * log2(e); otherwise x is the finished logit in
// log2 units and cs = 1. The NaN RULE's "a logit beyond fp32 is +-inf and poisons its row" is
// kept per row and tile rather than per element: the row maximum m and this thread's minimum of
// the row's visible x, scaled by cs, are finite exactly when every scaled logit is; otherwise
// the row sum l becomes NaN (and a NaN x makes its weight NaN by itself).
template <int D, class Tin, int PeKind, int Path>
__global__ void __launch_bounds__(Check<KernelTraits<D, PeKind, Path>>::kThreads,
                                  Check<KernelTraits<D, PeKind, Path>>::kMinBlocks)
    prefill_mma(const pa_prefill_params p) {
  using T = KernelTraits<D, PeKind, Path>;
  using L = Smem<D>;
  constexpr int kThreads = Check<T>::kThreads, kBr = T::kBr, kBc = T::kBc, kS = T::kStages;
  constexpr int kM = T::kM, kP = L::kPitch;
  constexpr bool kSplit = kS == 1;  // one K and one V buffer (see copy_tile below)
  constexpr int kRows = 2 * kM;  // rows per thread: g and g + 8 of each slab
  constexpr int kNA = kBc / 8;   // n8 atoms of the S tile
  constexpr int kDA = D / 8;     // n8 atoms of the O tile
  constexpr bool kBias = PeKind == POSATTN_PE_ALIBI || PeKind == POSATTN_PE_FIRE ||
                         PeKind == POSATTN_PE_T5 || PeKind == POSATTN_PE_KERPLE_LOG ||
                         PeKind == POSATTN_PE_KERPLE_POWER;
  // Biases that depend on the distance pq - pk alone: with positions in token order they come
  // from the warp's distance band (see "Distance band").
  constexpr bool kBandKind = band_kind(PeKind);
  constexpr bool kBandReuse =
      PeKind == POSATTN_PE_KERPLE_LOG || PeKind == POSATTN_PE_KERPLE_POWER;
  constexpr float kLog2e = 1.4426950408889634f;

  const int b = int(blockIdx.z), h = int(blockIdx.y), hk = h / p.group;
  const pa_pe::Seq sq(p, b);
  const int qt0 = int(blockIdx.x) * kBr;
  if (qt0 >= sq.Lq) return;  // the whole block leaves together: no barrier is skipped
  const int q_rows = pa::min(kBr, sq.Lq - qt0), qt1 = qt0 + q_rows;

  const int tid = int(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t4 = lane % 4;  // fragment row group and column pair (PTX ISA layout)

  // KV tiles to visit (TileWalk): those meeting the causal/window key range, minus those holding
  // neither a reachable anchor nor a document of this query tile. Every thread computes the same
  // sequence.
  const TileWalk<kBc> walk(sq, qt0, qt1);

  pa::sptr<Tin> sQ = pa::dynamic_shared<Tin>();
  pa::sptr<Tin> sK = sQ + kBr * kP;
  pa::sptr<Tin> sV = sK + kS * kBc * kP;

  const pa::gptr<const Tin> gq = pa::ptr_cast<const Tin>(p.q) + sq.q_off(qt0, h, p.q_sb, p.q_ss, p.q_sh);
  const int64_t k_off = sq.kv_off(0, hk, p.k_sb, p.k_ss, p.k_sh);
  const int64_t v_off = sq.kv_off(0, hk, p.v_sb, p.v_ss, p.v_sh);


  // After the K/V ring: the masked tiles' visibility words (visible_words), the bias kinds' row
  // table (each row's query position, FIRE's 1/normaliser per row, the head's ALiBi slope or
  // KERPLE a and p; 1 / softcap for every kind), then the T5/FIRE bias tables (the loop's first
  // barrier orders the writes).
  // Read from shared memory inside the loop, these values cannot be hoisted into registers held
  // across it (ptxas keeps loop-invariant global loads live; with 4 warps x 32 rows at hd128
  // every register counts).
  constexpr int kMW = Check<T>::kMaskWords;
  const pa::sptr<uint32_t> sMask = pa::ptr_cast<uint32_t>(sV + kS * kBc * kP);
  const pa::sptr<int32_t> sRowDoc = pa::ptr_cast<int32_t>(sMask + kBr * kMW);
  const pa::sptr<int32_t> sRowPos = sRowDoc + 2 * kBr;
  const pa::sptr<float> sRowF = pa::ptr_cast<float>(sRowPos + kBr);
  const pa::sptr<float> sHead = sRowF + kBr;
  // Block values the tile loop reads from here rather than holding them in registers across it:
  // K and V element offsets (int64 as two words each), TileWalk's skipped run and end, FullTiles.
  const pa::sptr<int32_t> sBlk = pa::ptr_cast<int32_t>(sHead + 4);
  // then region_bytes: the distance bands (Check::kBandPitch words per warp) or the tables
  const pa::sptr<float> sB = pa::ptr_cast<float>(sBlk + Check<T>::kBlockWords);
  // the same words: a call uses one or the other (FIRE: its tables, then its bands)
  const pa::sptr<float> sBand = PeKind == POSATTN_PE_FIRE ? sB + fire_band_offset(p) : sB;

  // The tile sequence and the copies read the block values (sBlk) from shared memory: published
  // by the barrier after they are written, before the first copy.
  auto next_tile = [&](int t) { return TileWalk<kBc>::step(t, sBlk[4], sBlk[5], sBlk[6]); };
  // Copies K (is_v false) or V of tile t into ring slot `slot`. The per-thread copy addressing
  // comes from a fresh %tid.x: recomputed per tile (a few integer instructions), not held
  // across the tile loop.
  auto copy_tile = [&](bool is_v, int t, int slot) {
    const int j0 = t * kBc, ft = fresh_tid();
    const int64_t ss = is_v ? p.v_ss : p.k_ss;
    const int64_t off = int64_t(uint32_t(sBlk[is_v ? 2 : 0])) | (int64_t(sBlk[is_v ? 3 : 1]) << 32);
    TileCopy<D, kBc, kThreads>{ft}((is_v ? sV : sK) + slot * kBc * kP,
                                   pa::ptr_cast<const Tin>(is_v ? p.v : p.k) + off, ss, sq.Lk - j0,
                                   ft, j0);
  };
  // The ring (kS >= 2): the copy cursor runs kS-1 tiles ahead of the math cursor through the same
  // tile sequence, K and V of a tile in one group. kS == 1 (kSplit): one K and one V buffer, in
  // FlashAttention-2's order: V of tile n is copied during S = Q K^T of tile n, K of tile n + 1
  // during the softmax and P V of tile n (two barriers per tile; see the tile loop).
  int fetch_t = walk.first, fetch_n = 0;
  auto issue = [&]() {
    if (fetch_t < sBlk[6]) {
      copy_tile(false, fetch_t, fetch_n % kS);
      copy_tile(true, fetch_t, fetch_n % kS);
      fetch_t = next_tile(fetch_t + 1);
    }
    ++fetch_n;
    pa::cp_async_commit();  // empty groups too: the wait<> count stays the same every iteration
  };

  if (!uses_band(PeKind, p) || PeKind == POSATTN_PE_FIRE)  // FIRE: tables, then bands
    pa_pe::fill_shared_table<PeKind>(p, h, sB, tid, kThreads);
  if (p.doc_ids) row_docs<kBr, kThreads>(sq, sRowDoc, qt0, tid);
  if (kBias) {
    for (int r = tid; r < kBr; r += kThreads) {
      const int32_t pq = qt0 + r < sq.Lq ? sq.q_pos(qt0 + r) : 0;
      sRowPos[r] = pq;
      if (PeKind == POSATTN_PE_FIRE) sRowF[r] = pa_pe::fire_inv_norm(p, pq);
    }
    if (tid == 0) {
      const bool kerple = PeKind == POSATTN_PE_KERPLE_LOG || PeKind == POSATTN_PE_KERPLE_POWER;
      sHead[0] = PeKind == POSATTN_PE_ALIBI ? p.alibi_slopes[h] : kerple ? p.kerple_a[h] : 0.f;
      sHead[1] = kerple ? p.kerple_p[h] : 0.f;
    }
  }
  // The bias policy of a row from its row-table values (pq, rf) and the head values h0, h1.
  auto row_bias = [&](int32_t pq, float rf, float h0, float h1) {
    if constexpr (PeKind == POSATTN_PE_T5)
      return pa_pe::T5Shared{sB, uint32_t(p.t5_nmax), pq};
    else if constexpr (PeKind == POSATTN_PE_FIRE)
      return pa_pe::FireBias<pa::sptr>(p, pa_pe::fire_segments_shared(p, sB), pq, rf);
    else if constexpr (PeKind == POSATTN_PE_ALIBI || PeKind == POSATTN_PE_KERPLE_LOG ||
                       PeKind == POSATTN_PE_KERPLE_POWER)
      return pa_pe::Bias<PeKind>(h0, h1, pq);
    else
      return pa_pe::Bias<PeKind>(p, h, pq);
  };

  if (tid == 0) {
    const FullTiles ft(sq, qt0, qt1);
    sBlk[0] = int32_t(uint32_t(uint64_t(k_off)));
    sBlk[1] = int32_t(k_off >> 32);
    sBlk[2] = int32_t(uint32_t(uint64_t(v_off)));
    sBlk[3] = int32_t(v_off >> 32);
    sBlk[4] = walk.skip_from;
    sBlk[5] = walk.skip_to;
    sBlk[6] = walk.end;
    sBlk[7] = ft.first;
    sBlk[8] = ft.last;
    sBlk[9] = ft.doc;
    sHead[2] = p.softcap > 0.f ? 1.f / p.softcap : 0.f;
  }
  __syncthreads();  // the block values, before the first copy reads them
  TileCopy<D, kBr, kThreads>{tid}(sQ, gq, p.q_ss, q_rows, tid);
  pa::cp_async_commit();
  if constexpr (kSplit) {  // K of the first tile
    if (walk.first < walk.end) copy_tile(false, walk.first, 0);
    pa::cp_async_commit();
  } else {
    for (int n = 0; n < kS - 1; ++n) issue();
  }

  const Transform<PeKind> xf{&p, sq.q_pos(qt0)};
  if (Transform<PeKind>::kOn) {
    pa::cp_async_wait<kSplit ? 1 : kS - 1>();  // the Q group (the oldest) has landed for this thread ...
    __syncthreads();              // ... and for every thread
    transform_tile<D, kThreads>(sQ, xf, q_rows, true, [&](int r) { return sq.q_pos(qt0 + r); },
                                tid);
    // the loop's first barrier orders these writes before any ldmatrix of Q
  }

  // Row r (0 .. kRows-1) of this thread: slab r / 2 of the warp, fragment row g + 8 (r % 2).
  const int wrow = warp * 16 * kM;
  auto row_of = [&](int r) { return qt0 + wrow + 16 * (r / 2) + g + 8 * (r % 2); };
  const bool plain = !kBias && !(p.softcap > 0.f);
  const float cs = plain ? p.scale * kLog2e : 1.f;  // see "Logit units"
  // Distance band. With positions in token order (no q_pos/kv_pos arrays; a block-uniform
  // choice) row w of the warp (0 .. 16 kM - 1) and key c of the tile (0 .. kBc - 1) are at
  // distance pq - pk = d0 + i, i = w - c + kBc - 1 < kBandLen, d0 that of i = 0. Each tile, the
  // warp's lanes write the bias of those distances into the warp's band: the same policy as the
  // per-element path, called on the pair (pq, pk) = (d, 0), so the same fp32 values (the
  // policies see only abs_diff(pq, pk), exact for any int32 pair, and the sign of pq - pk). d is
  // formed modulo 2^32: exact for every pair of real positions (|pq - pk| < 2^31, both are in
  // [min(0, Lk - Lq), Lk)); rows or keys past a sequence end may wrap, but any finite bias
  // serves them (their logits are discarded or masked). Element (m, a, e) reads entry
  // (g - 2 t4 + kBc - 1) + 16 m + 8 (e / 2) - 8 a - (e & 1): one shared load at a constant
  // offset from a per-thread base, then one FFMA and one FMUL. Explicit positions take the
  // per-element path (tile_loop below: one copy of the loop each).
  constexpr int kBandLen = 16 * kM + kBc - 1;
  constexpr int kWarpPitch =
      PeKind == POSATTN_PE_FIRE ? Check<T>::kFirePitch : Check<T>::kBandPitch;

  // ldmatrix rows of this lane (matrix mi = lane / 8 of each x4; see the fragment layouts):
  //   Q (A, rows x features): matrices (rows 0-7|8-15) x (chunk lo|hi) -> a[0..3]; slab m 16m rows on
  //   K (B, keys x features): matrices (chunk lo|hi) x (keys 0-7|8-15) -> b of two n8 atoms
  //   V (B via .trans, keys x features): (keys 0-7|8-15) x (chunk lo|hi) -> b of two n8 atoms
  // A LaneRow is one register: whole 16-row slabs, tiles and m16 steps add outside the XOR.
  const int mi = lane / 8;
  const LaneRow<D> q_row(wrow + (mi % 2) * 8 + lane % 8, mi / 2);
  const LaneRow<D> k_row((mi / 2) * 8 + lane % 8, mi % 2);
  const LaneRow<D> v_row((mi % 2) * 8 + lane % 8, mi / 2);

  float o[kM][kDA][4];
  PA_UNROLL
  for (int m = 0; m < kM; ++m)
    PA_UNROLL
    for (int a = 0; a < kDA; ++a) o[m][a][0] = o[m][a][1] = o[m][a][2] = o[m][a][3] = 0.f;
  float rmax[kRows], rsum[kRows];  // reference row maxima (x units; lazy); this thread's row sums
  PA_UNROLL
  for (int r = 0; r < kRows; ++r) {
    rmax[r] = -INFINITY;
    rsum[r] = 0.f;
  }

  // The tile loop, compiled twice for the band kinds: with the distance band (positions in
  // token order) and with the per-element bias (explicit positions). Each copy keeps only
  // its own state live across its tiles (one loop holding both spilled in T5 on sm_90a).
  auto tile_loop = [&](auto band_c) {
    constexpr bool band = decltype(band_c)::value;
    for (int n = 0, t = walk.first; t < sBlk[6]; ++n, t = next_tile(t + 1)) {
      const int slot = kSplit ? 0 : n % kS, j0 = t * kBc;
      if constexpr (kSplit) {
        pa::cp_async_wait<0>();  // K of tile n has landed for this thread ...
        __syncthreads();         // ... for all threads, and every warp is done with V of tile n-1
        copy_tile(true, t, 0);
        pa::cp_async_commit();
      } else {
        pa::cp_async_wait<kS - 2>();  // tile n has landed for this thread ...
        __syncthreads();              // ... for all threads, and tile n-1's slot is free again
        issue();
      }
      if (band) {  // this tile's distance band (the loop's barrier ordered the last tile's reads)
        // Lane l fills entries l + 32 k (slot k). The band of tile t - 1 holds this band's
        // entries kBc.. at i - kBc, written by the same lane (the word after the band records
        // the band's tile): KERPLE (log1pf, powf per entry) copies those and evaluates only the
        // first kBc / 32 slots when the tile follows its predecessor (the steady state; one trip
        // of the loop below), all slots otherwise.
        constexpr int kSlots = (kBandLen + 31) / 32;
        const int ft = fresh_tid(), fl = ft % 32;
        const pa::sptr<float> band_w = sBand + (ft / 32) * kWarpPitch;
        const pa::sptr<int32_t> band_tile = pa::ptr_cast<int32_t>(band_w + kBandLen);
        const uint32_t d0 = uint32_t(qt0) + uint32_t(sq.shift) - uint32_t(j0) +
                            uint32_t((ft / 32) * 16 * kM - (kBc - 1));
        [[maybe_unused]] const float h0 = sHead[0], h1 = sHead[1];  // not T5, FIRE
        auto entry = [&](int i) {
          if constexpr (PeKind == POSATTN_PE_T5)  // no shared table with the band
            return pa_pe::Bias<POSATTN_PE_T5>(p, h, int32_t(d0 + uint32_t(i)))(0);
          else if constexpr (PeKind == POSATTN_PE_FIRE)  // psi(|d|) (as FireBias)
            return pa_pe::fire_psi(p.fire_psi, p.fire_psi_max, p.fire_c,
                                   pa_pe::abs_diff(int32_t(d0 + uint32_t(i)), 0));
          else
            return row_bias(int32_t(d0 + uint32_t(i)), 0.f, h0, h1)(0);
        };
        if constexpr (kBandReuse) {
          constexpr int kFresh = kBc / 32;  // the slots a following tile evaluates
          const bool follows = n > 0 && int32_t(*band_tile) == t - 1;
          float old[kSlots - kFresh];  // read before the fresh slots overwrite them
          PA_UNROLL
          for (int k = kFresh; k < kSlots; ++k)
            old[k - kFresh] =
                follows && fl + 32 * k < kBandLen ? float(band_w[fl + 32 * k - kBc]) : 0.f;
#if defined(__CUDACC__)
#pragma unroll 1
#endif
          for (int k = 0; k < (follows ? kFresh : kSlots); ++k)
            if (fl + 32 * k < kBandLen) band_w[fl + 32 * k] = entry(fl + 32 * k);
          PA_UNROLL
          for (int k = kFresh; k < kSlots; ++k)
            if (follows && fl + 32 * k < kBandLen) band_w[fl + 32 * k] = old[k - kFresh];
        } else {
          PA_UNROLL
          for (int k = 0; k < kSlots; ++k)
            if (fl + 32 * k < kBandLen) band_w[fl + 32 * k] = entry(fl + 32 * k);
        }
        __syncwarp();
        if (kBandReuse && fl == 0) *band_tile = t;  // every lane has read the old one
        if constexpr (PeKind == POSATTN_PE_FIRE)
          fire_rows<T>(band_w, sRowF + (ft / 32) * 16 * kM, pa_pe::fire_segments_shared(p, sB), d0,
                       fl);
      }
      const pa::sptr<Tin> k_s = sK + slot * kBc * kP, v_s = sV + slot * kBc * kP;
      if (Transform<PeKind>::kRotatesK) {
        transform_tile<D, kThreads>(k_s, xf, pa::min(kBc, sq.Lk - j0), false,
                                    [&](int r) { return sq.kv_pos(j0 + r); }, tid);
        __syncthreads();
      }
      const bool masked =  // uniform over the block
          !FullTiles::test(sq, sBlk[7], sBlk[8], sBlk[9], j0, kBc);
      if (masked) {
        if constexpr (kSplit) {  // the V scan needs V of this tile now
          pa::cp_async_wait<0>();
          __syncthreads();
        }
        isolate_nonfinite_v<D, kBc, kThreads>(k_s, v_s, tid);
        visible_words<kBr, kBc, kThreads>(sq, sMask, sRowDoc, qt0, j0, tid);
        __syncthreads();
      }


      // ---- S = Q K^T: each K fragment feeds the kM slabs ----
      float s[kM][kNA][4];
      PA_UNROLL
      for (int m = 0; m < kM; ++m)
        PA_UNROLL
        for (int a = 0; a < kNA; ++a) s[m][a][0] = s[m][a][1] = s[m][a][2] = s[m][a][3] = 0.f;
      // Q's and K's XOR-ed row offsets are formed again each tile (opaque: not hoisted out of
      // the loop): held across it next to V's they cost the registers of a spill at hd128.
      const LaneRow<D> qt_row(opaque(q_row.y)), kt_row(opaque(k_row.y));
      PA_UNROLL
      for (int ks = 0; ks < D / 16; ++ks) {
        uint32_t qa[kM][4];
        PA_UNROLL
        for (int m = 0; m < kM; ++m) pa::ldmatrix_x4(qa[m], sQ + qt_row.at(ks) + m * 16 * kP);
        PA_UNROLL
        for (int np = 0; np < kBc / 16; ++np) {
          uint32_t kb[4];
          pa::ldmatrix_x4(kb, k_s + kt_row.at(ks) + np * 16 * kP);
          const uint32_t b0[2] = {kb[0], kb[1]}, b1[2] = {kb[2], kb[3]};
          PA_UNROLL
          for (int m = 0; m < kM; ++m) {
            MmaOp<Tin>::run(s[m][2 * np], qa[m], b0);
            MmaOp<Tin>::run(s[m][2 * np + 1], qa[m], b1);
          }
        }
      }

      if constexpr (kSplit) {
        pa::cp_async_wait<0>();  // V of tile n has landed for this thread ...
        __syncthreads();         // ... for all threads, and every warp is done with K of tile n
        const int tn = next_tile(t + 1);
        if (tn < sBlk[6]) copy_tile(false, tn, 0);
        pa::cp_async_commit();
      }

      // ---- logits (see "Logit units"), then the mask; mn: this thread's minimum of each row's
      // visible x (0 included). Each pass is one uniform branch, not a test per element. Element
      // (m, a, e) is row r = 2m + e / 2, key j0 + 8a + 2*t4 + (e & 1). ----
      if constexpr (band && PeKind == POSATTN_PE_FIRE) {
        // FIRE band (fire_rows): per row {a, c}; per element the bias' FFMA from psi
        // (log2 units) and the logit's FFMA. Element (m, a, 2 hr + c) reads psi at entry
        // 16 m + 8 hr - 8 a - c of bt, as the other kinds read their bias (at Bc = 64 the
        // thread's psi values held in registers across the pass cost a spill on sm_90a).
        const int ft = fresh_tid(), fl = ft % 32;
        const pa::sptr<float> band_w = sBand + (ft / 32) * kWarpPitch;
        const pa::sptr<float> bt = band_w + (fl / 4 - 2 * (fl % 4) + kBc - 1);
        const float scale2 = p.scale * kLog2e;  // the logit's scale in log2 units
        auto logits = [&](auto softcap) {
          const float inv_cap = decltype(softcap)::value ? float(sHead[2]) : 0.f;
          PA_UNROLL
          for (int m = 0; m < kM; ++m)
            PA_UNROLL
            for (int hr = 0; hr < 2; ++hr) {
              // the row's {a, c} (fire_rows: its base segment lo)
              const float2 rp = pa::load(pa::ptr_cast<const float2>(
                  band_w + Check<T>::kFireRows + 2 * (16 * m + fl / 4 + 8 * hr)));
              PA_UNROLL
              for (int a = 0; a < kNA; ++a)
                PA_UNROLL
                for (int c = 0; c < 2; ++c) {
                  float &x = s[m][a][2 * hr + c];
                  const float bias2 = fmaf(rp.x, float(bt[16 * m + 8 * hr - 8 * a - c]), rp.y);
                  x = decltype(softcap)::value
                          ? fmaf(pa_pe::softcap_logit(p, inv_cap, x * p.scale), kLog2e, bias2)
                          : fmaf(x, scale2, bias2);
                }
            }
        };
        if (p.softcap > 0.f) logits(std::true_type{});
        else logits(std::false_type{});
        // A tile where some row crosses a kink (fire_rows' ballot, as a warp vote: a region
        // posattn-sass counts apart, the fallback): the kink trips, a rolled loop the warp runs
        // while some row has kinks left. Lane w < 16 kM owns row w of the warp: each trip it
        // writes its row's next kink term {kd, ps} ({0, 0} when none is left), then every
        // element adds kd max(psi - ps, 0), psi read from the band again.
        const uint32_t slow = pa::ptr_cast<const uint32_t>(band_w)[Check<T>::kBandPitch - 1];
        if (!__all_sync(0xffffffffu, slow == 0u)) {
          const auto segs = pa_pe::fire_segments_shared(p, sB);
          const bool own = fl < 16 * kM;
          int lo = 0, hi = 0;
          float inv = 0.f, norm = 0.f;
          if (own) {
            const int2 lh = pa::load(pa::ptr_cast<const int2>(band_w + Check<T>::kFireSegs + 2 * fl));
            lo = lh.x;
            hi = lh.y;
            inv = sRowF[(ft / 32) * 16 * kM + fl];
            norm = 1.f / inv;  // the normaliser, to within rounding (ps: the kink's psi)
          }
#if defined(__CUDACC__)
#pragma unroll 1
#endif
          for (int k = 1; __any_sync(0xffffffffu, lo + k <= hi); ++k) {
            if (own) {  // no kink left: {0, 0} (the loads stay in range)
              const bool kink = lo + k <= hi;
              const int j = kink ? lo + k : 0, jp = kink ? j - 1 : 0;
              const float step = float(segs.slope[j]) - float(segs.slope[jp]);
              pa::store(pa::ptr_cast<float2>(band_w + Check<T>::kFireKink + 2 * fl),
                        make_float2(kink ? step * inv * kLog2e : 0.f,
                                    kink ? float(segs.start[j]) * norm : 0.f));
            }
            __syncwarp();
            PA_UNROLL
            for (int m = 0; m < kM; ++m)
              PA_UNROLL
              for (int hr = 0; hr < 2; ++hr) {
                const float2 kt = pa::load(pa::ptr_cast<const float2>(
                    band_w + Check<T>::kFireKink + 2 * (16 * m + fl / 4 + 8 * hr)));
                PA_UNROLL
                for (int a = 0; a < kNA; ++a)
                  PA_UNROLL
                  for (int c = 0; c < 2; ++c) {
                    float &x = s[m][a][2 * hr + c];
                    x = fmaf(kt.x, fmaxf(float(bt[16 * m + 8 * hr - 8 * a - c]) - kt.y, 0.f), x);
                  }
              }
            __syncwarp();  // every lane's reads, before the next trip's terms
          }
        }
      } else if (band) {
        const int ft = fresh_tid(), fl = ft % 32;
        const pa::sptr<float> bt =
            sBand + (ft / 32) * Check<T>::kBandPitch + (fl / 4 - 2 * (fl % 4) + kBc - 1);
        const float inv_cap = sHead[2];
        auto logits = [&](auto softcap) {
          PA_UNROLL
          for (int m = 0; m < kM; ++m)
            PA_UNROLL
            for (int a = 0; a < kNA; ++a)
              PA_UNROLL
              for (int e = 0; e < 4; ++e) {
                float &x = s[m][a][e];
                const float bias = bt[16 * m + 8 * (e / 2) - 8 * a - (e & 1)];
                x = (decltype(softcap)::value ? pa_pe::softcap_logit(p, inv_cap, x * p.scale) + bias
                                              : fmaf(x, p.scale, bias)) * kLog2e;
              }
        };
        if (p.softcap > 0.f) logits(std::true_type{});
        else logits(std::false_type{});
      } else if (!plain) {
        // The softcap as its own pass over S, behind one uniform branch: inside the per-element
        // loop below (no division's call to keep it a branch) ptxas predicated part of it onto
        // every tile (+144 instructions per tile at hd128, ALiBi).
        auto each_s = [&](auto f) {  // f on every element of S
          PA_UNROLL
          for (int m = 0; m < kM; ++m)
            PA_UNROLL
            for (int a = 0; a < kNA; ++a)
              PA_UNROLL
              for (int e = 0; e < 4; ++e) f(s[m][a][e]);
        };
        if (p.softcap > 0.f) {
          const float inv_cap = sHead[2];
          each_s([&](float &x) { x = pa_pe::softcap_logit(p, inv_cap, x * p.scale); });
        } else {
          each_s([&](float &x) { x *= p.scale; });
        }
        // keys outer, rows inner: one key position live at a time; the rows' values are read
        // from the row table once per tile. Keys past the sequence end (their bias is computed
        // from the last key's position) lie on masked tiles, where the mask overrides the logit.
        int32_t pq[kRows];
        float rf[kRows];
        PA_UNROLL
        for (int r = 0; r < kRows; ++r) {
          pq[r] = kBias ? int32_t(sRowPos[row_of(r) - qt0]) : 0;
          rf[r] = PeKind == POSATTN_PE_FIRE ? float(sRowF[row_of(r) - qt0]) : 0.f;
        }
        const float h0 = kBias ? float(sHead[0]) : 0.f, h1 = kBias ? float(sHead[1]) : 0.f;
        PA_UNROLL
        for (int a = 0; a < kNA; ++a)
          PA_UNROLL
          for (int c = 0; c < 2; ++c) {
            const int j = j0 + 8 * a + 2 * t4 + c;
            const int32_t pk = kBias ? sq.kv_pos(pa::min(j, sq.Lk - 1)) : 0;
            PA_UNROLL
            for (int r = 0; r < kRows; ++r) {
              float &x = s[r / 2][a][2 * (r % 2) + c];  // the (capped) logit
              if (kBias) x += row_bias(pq[r], rf[r], h0, h1)(pk);
              x *= kLog2e;
            }
          }
      }
      float mn[kRows];
      PA_UNROLL
      for (int r = 0; r < kRows; ++r) mn[r] = 0.f;
      if (masked) {
        PA_UNROLL
        for (int r = 0; r < kRows; ++r) {
          // this row's words, shifted so that bit 8a' + (e & 1) is key j0 + 32w + 8a' + 2t4 + (e & 1)
          const pa::sptr<uint32_t> wr = sMask + (row_of(r) - qt0) * kMW;
          PA_UNROLL
          for (int a = 0; a < kNA; ++a)
            PA_UNROLL
            for (int e = 2 * (r % 2); e < 2 * (r % 2) + 2; ++e) {
              const uint32_t w = uint32_t(*(wr + a / 4)) >> (2 * t4);
              float &x = s[r / 2][a][e];
              const bool visible = (w >> (8 * (a % 4) + (e & 1))) & 1u;
              // The masked value replaces x, and the minimum reads that back (visible: x):
              // the raw value dies at the select, so ptxas keeps S in the same registers on
              // both arms. Reading the raw x for the minimum (if / else) kept both alive and
              // cost 64 register moves on every unmasked tile (docs/kernels.md).
              x = visible ? x : -INFINITY;
              mn[r] = fminf(mn[r], visible ? x : INFINITY);
            }
        }
      } else {
        PA_UNROLL
        for (int m = 0; m < kM; ++m)
          PA_UNROLL
          for (int a = 0; a < kNA; ++a)
            PA_UNROLL
            for (int e = 0; e < 4; ++e) mn[2 * m + e / 2] = fminf(mn[2 * m + e / 2], s[m][a][e]);
      }

      // ---- online softmax (a row's values per atom live in lanes 4g..4g+3) ----
      float mx[kRows];
      PA_UNROLL
      for (int r = 0; r < kRows; ++r) mx[r] = rmax[r];
      PA_UNROLL
      for (int m = 0; m < kM; ++m)
        PA_UNROLL
        for (int a = 0; a < kNA; ++a)
          PA_UNROLL
          for (int e = 0; e < 4; ++e) {
            mx[2 * m + e / 2] = fmaxf(mx[2 * m + e / 2], s[m][a][e]);
          }
      // Lazy rescaling (epilogue.cuh, lazy_moves). rmax is a row's reference maximum: bb =
      // fl(rmax cs) (log2 units) is what its weights exp2(x cs - bb) subtract. A row takes this
      // tile's maximum as its reference only on its first visible key or when that maximum rises
      // more than kLazy (8) above the reference, so weights stay below 2^8 (bf16/f16 P and fp32
      // sums keep their relative precision there). A moving row rescales its O and l by
      // c = exp2(old - bb); every other row's c is exactly 1 (a first visible key needs none: O
      // and l are still 0). The warp multiplies O only when one of its rows moved (a vote; how
      // often: bench/sass/rescale_tiles.cpp), and multiplying by exactly 1 changes nothing, so no
      // row's numbers depend on its neighbours.
      // exp2 arguments x * cs - bb. One FFMA is exact up to the rounding of bb, a residual up to
      // half an ulp of bb: harmless below 2^20 (<= 2^-4, as large as the rounding of the two-step
      // form), not beyond (a logit of 2^64 would give exp2(2^40)). A warp holding such a finite
      // row takes the two-step form for this tile (a poisoned row is NaN either way, and must not
      // change how its neighbours round).
      bool move[kRows], moved = false;
      PA_UNROLL
      for (int r = 0; r < kRows; ++r) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
        move[r] = prefill::lazy_moves(rmax[r], mx[r], cs);
        moved = moved || move[r];
      }
      const bool rescale = __any_sync(0xffffffffu, moved);
      float bb[kRows];
      bool big = false;
      PA_UNROLL
      for (int r = 0; r < kRows; ++r) {
        const float old = rmax[r] * cs;  // -inf: no visible key before this tile
        // A row that has seen no visible key keeps max -inf; subtracting 0 instead keeps exp2 at 0
        // rather than computing inf - inf = NaN.
        const float top = (mx[r] == -INFINITY ? 0.f : mx[r]) * cs;
        const bool take = move[r] || rmax[r] == -INFINITY;
        if (take) rmax[r] = mx[r];
        bb[r] = take ? top : old;
        const float c = move[r] ? pa::exp2_approx(old - bb[r]) : 1.f;
        // NaN when a scaled visible logit of the row is beyond fp32: the row is poisoned
        rsum[r] = fmaf(rsum[r], c, (top + mn[r] * cs) * 0.f);
        big = big || (fabsf(bb[r]) >= 1048576.f && fabsf(bb[r]) < INFINITY);  // poisoned: no
        if (rescale) {
          PA_UNROLL
          for (int a = 0; a < kDA; ++a) {
            o[r / 2][a][2 * (r % 2)] *= c;
            o[r / 2][a][2 * (r % 2) + 1] *= c;
          }
        }
      }
      const bool two_step = __any_sync(0xffffffffu, big);
      // P in the mma input type, packed as soon as each pair is computed: S (kM Bc / 2 fp32)
      // becomes kM Bc / 4 registers before P V.
      uint32_t pk[kM][kNA][2];
      auto weights = [&](auto two_step_c) {  // s -> exp2(x cs - bb), summed into rsum
        PA_UNROLL
        for (int m = 0; m < kM; ++m)
          PA_UNROLL
          for (int a = 0; a < kNA; ++a) {
            float w[4];
            PA_UNROLL
            for (int e = 0; e < 4; ++e) {
              const int r = 2 * m + e / 2;
              const float x = s[m][a][e];
              w[e] = pa::exp2_approx(decltype(two_step_c)::value ? x * cs - bb[r]
                                                                 : fmaf(x, cs, -bb[r]));
              rsum[r] += w[e];
            }
            pk[m][a][0] = MmaOp<Tin>::pack(w[0], w[1]);
            pk[m][a][1] = MmaOp<Tin>::pack(w[2], w[3]);
          }
      };
      if (two_step) weights(std::true_type{});
      else weights(std::false_type{});

      // ---- O += P V: S accumulator atoms 2kk, 2kk+1 are exactly the A fragment of k-step kk; each
      // V fragment feeds the kM slabs ----
      PA_UNROLL
      for (int kk = 0; kk < kBc / 16; ++kk) {
        uint32_t pf[kM][4];
        PA_UNROLL
        for (int m = 0; m < kM; ++m) {
          pf[m][0] = pk[m][2 * kk][0];
          pf[m][1] = pk[m][2 * kk][1];
          pf[m][2] = pk[m][2 * kk + 1][0];
          pf[m][3] = pk[m][2 * kk + 1][1];
        }
        PA_UNROLL
        for (int dp = 0; dp < D / 16; ++dp) {
          uint32_t vb[4];
          pa::ldmatrix_x4_trans(vb, v_s + v_row.at(dp) + kk * 16 * kP);
          const uint32_t b0[2] = {vb[0], vb[1]}, b1[2] = {vb[2], vb[3]};
          PA_UNROLL
          for (int m = 0; m < kM; ++m) {
            MmaOp<Tin>::run(o[m][2 * dp], pf[m], b0);
            MmaOp<Tin>::run(o[m][2 * dp + 1], pf[m], b1);
          }
        }
      }
    }
  };
  if constexpr (kBandKind && Path == kPathBoth) {
    if (uses_band(PeKind, p)) tile_loop(std::true_type{});
    else tile_loop(std::false_type{});
  } else if constexpr (kBandKind && Path == kPathBand) {
    tile_loop(std::true_type{});  // launched only when uses_band
  } else {
    tile_loop(std::false_type{});
  }
  pa::cp_async_wait<0>();  // no copy outlives the block (the ring's tail groups are empty)

  // ---- epilogue: O / l rounded once to the output dtype; lse in natural log; the sink and the
  // rows that saw no key as epilogue.cuh's RowFinish says. A NaN l (poisoned row) stays NaN. ----
  const float sink = p.sinks ? float(p.sinks[h]) : 0.f;
  PA_UNROLL
  for (int r = 0; r < kRows; ++r) {
    float l = rsum[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    // A non-finite accumulator poisons its whole row (NaN RULE): o * 0 is 0 for finite o and NaN
    // otherwise, summed over the row's 4 lanes into l.
    float bad = 0.f;
    PA_UNROLL
    for (int a = 0; a < kDA; ++a)
      bad = fmaf(o[r / 2][a][2 * (r % 2)], 0.f, fmaf(o[r / 2][a][2 * (r % 2) + 1], 0.f, bad));
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
    for (int a = 0; a < kDA; ++a) {
      prefill::store_out(p.out, p.out_dtype, orow + 8 * a + 2 * t4, o[r / 2][a][2 * (r % 2)] * inv);
      prefill::store_out(p.out, p.out_dtype, orow + 8 * a + 2 * t4 + 1,
                         o[r / 2][a][2 * (r % 2) + 1] * inv);
    }
    if (p.lse && t4 == 0) p.lse[sq.lse_index(i, h)] = fin.lse();
  }
}

// Launches the instance on p (grid over query tiles, q heads, sequences). Instances are compiled
// in kernels/prefill/instances/ (generated) and found through mma_instances.h.
template <int D, class Tin, int PeKind, int Path>
pa::launch_status launch_path(const pa_prefill_params &p, void *stream) {
  using T = KernelTraits<D, PeKind, Path>;
  const dim3 grid(unsigned(p.q_len / T::kBr + (p.q_len % T::kBr != 0)), unsigned(p.hq),
                  unsigned(p.batch));
  return pa::launch("prefill_mma", prefill_mma<D, Tin, PeKind, Path>, grid,
                    dim3(Check<T>::kThreads), smem_bytes<T>() + region_bytes<T, PeKind>(p),
                    stream, p);
}
template <int D, class Tin, int PeKind>
pa::launch_status launch(const pa_prefill_params &p, void *stream) {
  if (PeKind == POSATTN_PE_ROPE && !p.k_prerotated)
    return pa::launch_status{false, "prefill_mma: the RoPE instance needs K rotated by the pre-pass"};
  if constexpr (split_paths<D, PeKind>()) {
    return uses_band(PeKind, p) ? launch_path<D, Tin, PeKind, kPathBand>(p, stream)
                                : launch_path<D, Tin, PeKind, kPathElement>(p, stream);
  } else {
    return launch_path<D, Tin, PeKind, kPathBoth>(p, stream);
  }
}

using launch_fn = pa::launch_status (*)(const pa_prefill_params &, void *stream);
// The launcher of the instance for (head dim, posattn_dtype of q/k/v, posattn_pe_kind), or nullptr
// when there is none or this build pruned it (knobs in kernels/prefill/instances.cmake). Defined
// in the generated instances/mma_table.cpp.
launch_fn find(int head_dim, int in_dtype, int pe_kind);
// Launches the instance p asks for (the dispatcher's entry point; mma_table.cpp).
pa::launch_status launch(const pa_prefill_params &p, void *stream);

// Whether Traits<d> exists (the head dims of the instances).
inline bool has_traits(int d) {
  return d == 64 || d == 80 || d == 96 || d == 112 || d == 128 || d == 192 || d == 256;
}

// NULL when this kernel serves the validated problem p, else why not (for the chooser's
// message). Without tensors (supported/workspace queries) only the descriptor is judged; the
// alignment rule then decides at forward time, where the chooser falls back to the SIMT kernel.
inline const char *unfit(const pa_problem *p) {
  if (p->in_dtype != POSATTN_DTYPE_BF16 && p->in_dtype != POSATTN_DTYPE_F16)
    return "it takes bf16 or f16 inputs";
  if (!has_traits(p->d)) return "it takes head_dim 64, 80, 96, 112, 128, 192 or 256";
  if (find(p->d, p->in_dtype, p->desc->pe.kind) == nullptr)
    return "this configuration's instance was pruned from the build (POSATTN_HEAD_DIMS, "
           "POSATTN_DTYPES, POSATTN_PE_KINDS)";
  // xPos is applied as a centred q/k transform (xpos.cuh) whose factors the 16-bit mma inputs must
  // hold: bounded only when every visible key precedes its query and positions are the token
  // order (the centre, the tile's first query, is then its smallest position). Elsewhere the
  // weights zeta^((pq-pk)/scale_base) exceed what bf16/f16 operands represent accurately.
  if (p->desc->pe.kind == POSATTN_PE_XPOS &&
      (!p->desc->causal || p->desc->q_positions || p->desc->kv_positions))
    return "it applies xPos only with causal masking and default position ids";
  if (p->desc->pe.kind == POSATTN_PE_T5 &&
      p->desc->pe.t5.max_distance > pa_pe::kT5SharedMaxDistance)
    return "it keeps T5's bias table in shared memory: max_distance <= 8191";
  if (p->q) {  // 16-byte cp.async of every row: 16-byte aligned rows
    const posattn_tensor *t[3] = {p->q, p->k, p->v};
    for (const posattn_tensor *x : t) {
      if (reinterpret_cast<uintptr_t>(x->data) % 16 != 0) return "q/k/v data are not 16-byte aligned";
      if (x->stride_seq % 8 != 0 || x->stride_head % 8 != 0 || (!p->varlen && x->stride_batch % 8 != 0))
        return "q/k/v strides are not multiples of 8 elements (16-byte rows)";
    }
  }
  return nullptr;
}

}  // namespace PA_MMA_NS
}  // namespace mma
}  // namespace pa_kernels
#endif
