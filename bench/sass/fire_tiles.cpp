// fire_tiles -- the fraction of FIRE warp tiles that run kink trips (the vote-guarded part) in
// the tensor-core prefill kernels' FIRE band, and their trips, from the kernels' own code.
//
// The FIRE band (kernels/prefill/mma.cuh: fire_rows and the kink trips; wgmma.cuh likewise)
// gives every row of a warp's tile the MLP segment of its nearest key, then runs one trip per
// kink the most-crossing row of the warp crosses over the tile's keys (a warp vote: none on most
// tiles). posattn-sass counts the fast path and the trip loop apart and mixes them with the
// figures printed here (docs/performance-model.md, "Vote-guarded paths"). This program builds the
// call's tables as the library does (pa_validate, pa_prefill_layout_make,
// pa_prefill_tables_build, pa_prefill_params_fill), then walks the kernel's tiles (TileWalk,
// FullTiles) and, per warp and tile, fills the psi band as the kernel's band fill does and takes
// each row's segments [lo, hi] as the kernel does (fire_row_segments); the warp's trips are the
// largest hi - lo.
//
//   fire_tiles D [LEN SEEDS]     D in {64, 128}: per problem, the warp tiles visited, those with
//                                kink trips (the fallback) and their fraction, over the full
//                                (unmasked) tiles alone too, and the mean trips of a fallback
//                                tile; LEN tokens (default 8192), SEEDS random MLPs per
//                                initialisation (default 4)
//   fire_tiles --check D LEN SEEDS
//                                every element's segment (fl(psi * 1/norm), FireSegments::index)
//                                lies in its row's [lo, hi] (what makes the kink form right);
//                                exit 1 otherwise
//   fire_tiles --wgmma D [LEN SEEDS]
//                                the sm_90a kernel's FIRE band (kernels/prefill/wgmma.cuh): per
//                                warp (16 rows) and KV tile (Bc keys), the kink trips (the most
//                                kinks a row of the warp crosses, fire_end_segment at both ends);
//                                the tiles with at least one trip (the fallback), their fraction
//                                and their mean trips
//   fire_tiles --wgmma-check D LEN SEEDS
//                                every element's segment lies in its row's [lo, hi] (what makes
//                                the kink form right); exit 1 otherwise
//
// Problems: batch 1, one head, LEN queries and keys (positions in token order, the band's case),
// causal and not; FIRE with posattn's defaults (c 0.1, L 512, eps 1e-6, mlp_width 32: the
// pe-spec shape) and two initialisations of the MLP: "bench" (every weight and bias U(-1, 1), as
// posattn-bench draws them) and "torch" (nn.Linear's default init of Linear(1, 32), Linear(32,
// H): w1, b1 U(-1, 1), w2, b2 U(-1/sqrt(32), 1/sqrt(32))). Only the kinks (-b1/w1) decide a tile,
// and both draw w1, b1 alike (from different seeds here); the two are run anyway since the
// segments are built from the whole MLP.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "posattn.h"
#include "prefill/mma.cuh"
#include "prefill/tables.h"
#include "prefill/wgmma.cuh"

namespace {

namespace mma = pa_kernels::mma;
namespace wg = pa_kernels::wgmma;

struct Counts {
  long long tiles = 0, fallback = 0, full = 0, full_fallback = 0, rows = 0, mismatches = 0;
  long long trips = 0;  // kink trips of the fallback tiles
};

template <class T>
pa::sptr<T> shared_of(std::vector<T> &v, const char *name) {
  return pa::sptr<T>(v.data(), pa_emu::Region{reinterpret_cast<char *>(v.data()),
                                              v.size() * sizeof(T), name});
}

// The shape of FIRE's band loop (mma.cuh KernelTraits: its band kernel where split_paths, else
// its one kernel of both loops).
template <int D>
using FireTraits =
    mma::KernelTraits<D, POSATTN_PE_FIRE,
                      mma::split_paths<D, POSATTN_PE_FIRE>() ? mma::kPathBand : mma::kPathBoth>;

// One problem's call, as the library builds it: the validated problem, its tables and the
// kernel parameters (q, k, v absent: the band reads none of them).
struct Problem {
  std::vector<float> w1, b1, w2, b2;
  posattn_attention_desc desc;
  pa_problem prob;
  pa_prefill_layout L;
  pa_prefill_scalars sc;
  std::vector<uint64_t> tables;
  posattn_tensor none{};
  pa_prefill_params p;
  std::vector<float> seg_tab;             // the block's shared segment tables (fill_shared_table)
  pa_pe::FireSegments<pa::sptr> segs{};   // over seg_tab
  bool make(int d, int len, int causal, const char *init, unsigned seed);
};

bool Problem::make(int d, int len, int causal, const char *init, unsigned seed) {
  const int width = 32, heads = 1;
  std::mt19937 rng(seed);
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  const bool torch = std::strcmp(init, "torch") == 0;
  const double b2bound = torch ? 1.0 / std::sqrt(double(width)) : 1.0;
  w1.assign(width, 0.f);
  b1.assign(width, 0.f);
  w2.assign(size_t(width) * heads, 0.f);
  b2.assign(heads, 0.f);
  for (int k = 0; k < width; ++k) {
    w1[k] = float(uni(-1, 1));
    b1[k] = float(uni(-1, 1));
  }
  for (float &x : w2) x = float(uni(-b2bound, b2bound));
  for (float &x : b2) x = float(uni(-b2bound, b2bound));

  posattn_attention_desc_init(&desc);
  desc.batch = 1;
  desc.q_heads = desc.kv_heads = heads;
  desc.head_dim = d;
  desc.q_len = desc.kv_len = len;
  desc.causal = causal;
  desc.pe.kind = POSATTN_PE_FIRE;  // c, L, eps, mlp_width: posattn's defaults
  desc.pe.fire.w1 = w1.data();
  desc.pe.fire.b1 = b1.data();
  desc.pe.fire.w2 = w2.data();
  desc.pe.fire.b2 = b2.data();
  char msg[512];
  if (pa_validate(msg, sizeof msg, &desc, POSATTN_DTYPE_BF16, POSATTN_DTYPE_BF16, nullptr, nullptr,
                  nullptr, nullptr, nullptr, &prob) != POSATTN_STATUS_SUCCESS ||
      pa_prefill_layout_make(&prob, 0, 0, &L, msg, sizeof msg) != POSATTN_STATUS_SUCCESS) {
    std::fprintf(stderr, "fire_tiles: %s\n", msg);
    return false;
  }
  tables.assign((L.tables_bytes + 7) / 8, 0);
  unsigned char *tb = reinterpret_cast<unsigned char *>(tables.data());
  if (pa_prefill_tables_build(&prob, &L, tb, &sc, msg, sizeof msg) != POSATTN_STATUS_SUCCESS) {
    std::fprintf(stderr, "fire_tiles: %s\n", msg);
    return false;
  }
  prob.q = prob.k = prob.v = &none;  // their strides are filled
  pa_prefill_params_fill(p, &prob, L, sc, tb, nullptr, 0, nullptr, 0, nullptr, 0, nullptr, 0, 0,
                         0, 0, nullptr);
  seg_tab.assign(pa_pe::shared_table_bytes<POSATTN_PE_FIRE>(p) / 4, 0.f);
  const pa::sptr<float> s_seg = shared_of(seg_tab, "FIRE tables");
  pa_pe::fill_shared_table<POSATTN_PE_FIRE>(p, 0, s_seg, 0, 1);
  segs = pa_pe::fire_segments_shared(p, s_seg);
  return true;
}

// A band as the kernels' band fills leave it: entry i (< n) is psi(|d0 + i|), d0 modulo 2^32.
void fill_psi(pa::sptr<float> band, int n, const pa_prefill_params &p, uint32_t d0) {
  for (int i = 0; i < n; ++i)
    band[i] = pa_pe::fire_psi(p.fire_psi, p.fire_psi_max, p.fire_c,
                              pa_pe::abs_diff(int32_t(d0 + uint32_t(i)), 0));
}

// The check of one row (band row w, 1/normaliser inv, segments [lo, hi]; query row `row`, the
// tile's first key j0): every element's segment, fl(psi * inv) as the kernels form x, lies in
// [lo, hi].
template <int Bc>
void check_row(const pa_pe::FireSegments<pa::sptr> &segs, pa::sptr<const float> band, int w,
               float inv, int lo, int hi, int row, int j0, int lk, Counts &n) {
  ++n.rows;
  for (int c = 0; c < Bc && j0 + c < lk; ++c) {
    const int e = segs.index(float(band[w - c + Bc - 1]) * inv);
    if ((e < lo || e > hi) && n.mismatches++ < 5)
      std::fprintf(stderr, "row %d key %d: segment %d outside [%d, %d]\n", row, j0 + c, e, lo, hi);
  }
}

template <int D>
bool run(int len, int causal, const char *init, unsigned seed, bool check, Counts &n) {
  using Tr = FireTraits<D>;
  constexpr int kBr = Tr::kBr, kBc = Tr::kBc, kWarps = Tr::kWarps, kRowsW = 16 * Tr::kM;
  constexpr int kBandLen = kRowsW + kBc - 1;
  Problem pr;
  if (!pr.make(D, len, causal, init, seed)) return false;
  const pa_prefill_params &p = pr.p;
  const pa_pe::FireSegments<pa::sptr> &segs = pr.segs;
  // a warp's psi band, the row table
  std::vector<float> band(kBandLen);
  const pa::sptr<float> s_band = shared_of(band, "psi band");

  const pa_pe::Seq sq(p, 0);
  for (int qt0 = 0; qt0 < sq.Lq; qt0 += kBr) {
    const int qt1 = std::min(qt0 + kBr, sq.Lq);
    float row_f[kBr];  // prefill_mma's row table: 1/normaliser (pq = 0 past the last row)
    for (int r = 0; r < kBr; ++r)
      row_f[r] = pa_pe::fire_inv_norm(p, qt0 + r < sq.Lq ? sq.q_pos(qt0 + r) : 0);
    const mma::TileWalk<kBc> walk(sq, qt0, qt1);
    const mma::FullTiles full_tile(sq, qt0, qt1);
    for (int t = walk.first; t < walk.end; t = walk.next(t + 1)) {
      const int j0 = t * kBc;
      const bool full = full_tile(sq, j0, kBc);
      for (int wi = 0; wi < kWarps; ++wi) {
        // the band fill of prefill_mma: entry i is psi(|d0 + i|)
        const uint32_t d0 = uint32_t(qt0) + uint32_t(sq.shift) - uint32_t(j0) +
                            uint32_t(wi * kRowsW - (kBc - 1));
        fill_psi(s_band, kBandLen, p, d0);
        int trips = 0;
        for (int w = 0; w < kRowsW; ++w) {
          int lo = 0, hi = 0;
          const float inv = row_f[wi * kRowsW + w];
          mma::fire_row_segments<Tr>(s_band, inv, segs, d0, w, lo, hi);
          trips = std::max(trips, hi - lo);
          const int row = qt0 + wi * kRowsW + w;
          if (!check || row >= sq.Lq) continue;
          check_row<kBc>(segs, s_band, w, inv, lo, hi, row, j0, sq.Lk, n);
        }
        ++n.tiles;
        n.fallback += trips > 0;
        n.trips += trips;
        n.full += full;
        n.full_fallback += full && trips > 0;
      }
    }
  }
  return true;
}

// The sm_90a kernel's FIRE band: per consumer warpgroup (64 rows) and KV tile, the psi window as
// the kernel's band fill leaves it, then per warp (16 rows) the kink trips: the most kinks one of
// its rows crosses (fire_end_segment at the row's two ends, as the kernel's lanes do). check:
// every element's segment (fl(psi * 1/norm), FireSegments::index) lies in its row's [lo, hi].
template <int D>
bool run_wgmma(int len, int causal, const char *init, unsigned seed, bool check, Counts &n) {
  using Tr = wg::Traits<D>;
  constexpr int kBr = Tr::kBr, kBc = Tr::kBc, kLen = wg::band_len<D>();
  Problem pr;
  if (!pr.make(D, len, causal, init, seed)) return false;
  const pa_prefill_params &p = pr.p;
  const pa_pe::FireSegments<pa::sptr> &segs = pr.segs;
  std::vector<float> band(kLen);
  const pa::sptr<float> s_band = shared_of(band, "psi window");
  const pa_pe::Seq sq(p, 0);
  for (int qt0 = 0; qt0 < sq.Lq; qt0 += kBr) {
    const int qt1 = std::min(qt0 + kBr, sq.Lq);
    int lo, hi;
    sq.kv_bounds(qt0, qt1, lo, hi);  // no documents: every tile of the range is visited
    const int t_end = hi > lo ? hi / kBc + (hi % kBc != 0) : 0;
    for (int t = lo / kBc; t < t_end; ++t) {
      const int j0 = t * kBc;
      for (int g = 0; g < 2; ++g) {
        const uint32_t d0 =
            uint32_t(qt0 + 64 * g) + uint32_t(sq.shift) - uint32_t(j0) - uint32_t(kBc - 1);
        fill_psi(s_band, kLen, p, d0);
        for (int w = 0; w < 4; ++w) {
          int trips = 0;
          for (int q = 0; q < 16; ++q) {
            const int rw = 16 * w + q, row = qt0 + 64 * g + rw;
            const float inv = pa_pe::fire_inv_norm(p, row < sq.Lq ? sq.q_pos(row) : 0);
            const int32_t dlo = int32_t(d0 + uint32_t(rw));
            const int slo = wg::fire_end_segment<kBc>(segs, s_band + rw, dlo, 0, inv);
            const int shi = wg::fire_end_segment<kBc>(segs, s_band + rw, dlo, 1, inv);
            trips = std::max(trips, shi - slo);
            if (!check || row >= sq.Lq) continue;
            check_row<kBc>(segs, s_band, rw, inv, slo, shi, row, j0, sq.Lk, n);
          }
          ++n.tiles;
          n.fallback += trips > 0;
          n.trips += trips;
        }
      }
    }
  }
  return true;
}

// The two initialisations draw from different seeds (the same seeds would give the same kinks).
bool torch_seeds(const char *init) { return std::strcmp(init, "torch") == 0; }

template <int D>
int report(int len, int seeds) {
  std::printf("# fire_tiles hd%d: Br %d Bc %d warps %d rows/warp %d; %d tokens, %d MLPs per init\n",
              D, FireTraits<D>::kBr, FireTraits<D>::kBc, FireTraits<D>::kWarps,
              16 * FireTraits<D>::kM, len, seeds);
  for (const char *init : {"bench", "torch"})
    for (int causal = 1; causal >= 0; --causal) {
      Counts n;
      double lo = 1, hi = 0;
      for (int s = 0; s < seeds; ++s) {
        Counts one;
        const unsigned seed = (torch_seeds(init) ? 2000u : 1000u) + unsigned(s);
        if (!run<D>(len, causal, init, seed, false, one)) return 2;
        const double f = double(one.fallback) / double(one.tiles);
        lo = std::min(lo, f);
        hi = std::max(hi, f);
        n.tiles += one.tiles;
        n.fallback += one.fallback;
        n.full += one.full;
        n.full_fallback += one.full_fallback;
        n.trips += one.trips;
      }
      std::printf("problem hd%d_%s_%s tiles %lld fallback %lld fraction %.4f min %.4f max %.4f "
                  "full_tiles %lld full_fallback %lld full_fraction %.4f trips_per_fallback %.3f\n",
                  D, init, causal ? "causal" : "noncausal", n.tiles, n.fallback,
                  double(n.fallback) / double(n.tiles), lo, hi, n.full, n.full_fallback,
                  n.full ? double(n.full_fallback) / double(n.full) : 0.0,
                  n.fallback ? double(n.trips) / double(n.fallback) : 0.0);
    }
  return 0;
}

template <int D>
int report_wgmma(int len, int seeds) {
  std::printf("# fire_tiles wgmma hd%d: Br %d Bc %d, warps of 16 rows; %d tokens, %d MLPs per "
              "init\n", D, wg::Traits<D>::kBr, wg::Traits<D>::kBc, len, seeds);
  for (const char *init : {"bench", "torch"})
    for (int causal = 1; causal >= 0; --causal) {
      Counts n;
      for (int s = 0; s < seeds; ++s) {
        const unsigned seed = (torch_seeds(init) ? 2000u : 1000u) + unsigned(s);
        if (!run_wgmma<D>(len, causal, init, seed, false, n)) return 2;
      }
      std::printf("problem wgmma_hd%d_%s_%s tiles %lld fallback %lld fraction %.4f "
                  "trips_per_fallback %.3f\n", D, init, causal ? "causal" : "noncausal", n.tiles,
                  n.fallback, double(n.fallback) / double(n.tiles),
                  n.fallback ? double(n.trips) / double(n.fallback) : 0.0);
    }
  return 0;
}

template <int D>
int check_wgmma(int len, int seeds) {
  Counts n;
  for (const char *init : {"bench", "torch"})
    for (int causal = 0; causal < 2; ++causal)
      for (int s = 0; s < seeds; ++s)
        if (!run_wgmma<D>(len, causal, init, 77u + unsigned(s), true, n)) return 2;
  std::printf("wgmma hd%d: %lld warp tiles (%lld with kink trips), %lld rows checked against "
              "their elements, %lld elements outside their row's segments\n", D, n.tiles,
              n.fallback, n.rows, n.mismatches);
  return n.mismatches || n.fallback == 0 || n.fallback == n.tiles ? 1 : 0;
}

template <int D>
int check(int len, int seeds) {
  Counts n;
  for (const char *init : {"bench", "torch"})
    for (int causal = 0; causal < 2; ++causal)
      for (int s = 0; s < seeds; ++s)
        if (!run<D>(len, causal, init, 77u + unsigned(s), true, n)) return 2;
  std::printf("hd%d: %lld warp tiles (%lld with kink trips), %lld rows checked against their "
              "elements, %lld elements outside their row's segments\n", D, n.tiles, n.fallback,
              n.rows, n.mismatches);
  return n.mismatches || n.fallback == 0 || n.fallback == n.tiles ? 1 : 0;
}

}  // namespace

int main(int argc, char **argv) {
  const char *mode = argc > 1 && argv[1][0] == '-' ? argv[1] : "";
  const bool chk = std::strcmp(mode, "--check") == 0 || std::strcmp(mode, "--wgmma-check") == 0;
  const bool wgmma = std::string(mode).rfind("--wgmma", 0) == 0;
  const int a = mode[0] ? 2 : 1;
  if (argc < a + 1 || (mode[0] && !chk && !wgmma)) {
    std::fprintf(stderr, "usage: fire_tiles [--wgmma] D [LEN SEEDS] | fire_tiles --check D LEN "
                         "SEEDS | fire_tiles --wgmma-check D LEN SEEDS\n");
    return 64;
  }
  const int d = std::atoi(argv[a]);
  const int len = argc > a + 1 ? std::atoi(argv[a + 1]) : 8192;
  const int seeds = argc > a + 2 ? std::atoi(argv[a + 2]) : 4;
  if (len < 1 || seeds < 1) return 64;
  if (wgmma && d == 128) return chk ? check_wgmma<128>(len, seeds) : report_wgmma<128>(len, seeds);
  if (wgmma && d == 64) return chk ? check_wgmma<64>(len, seeds) : report_wgmma<64>(len, seeds);
  if (d == 64) return chk ? check<64>(len, seeds) : report<64>(len, seeds);
  if (d == 128) return chk ? check<128>(len, seeds) : report<128>(len, seeds);
  std::fprintf(stderr, "fire_tiles: head dim %d not built (64, 128)\n", d);
  return 64;
}
