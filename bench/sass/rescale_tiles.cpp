// rescale_tiles -- how often the tensor-core prefill kernel's lazy rescaling fires: the fraction
// of warp tiles in which some row of the warp moves its reference maximum (the rule of
// kernels/prefill/epilogue.cuh, lazy_moves), so that the warp multiplies its O accumulators
// (kernels/prefill/mma.cuh, the vote before the rescale). posattn-sass counts the rescale's
// FMULs with the largest fraction printed here (docs/performance-model.md, "Lazy rescale").
//
//   rescale_tiles [D LEN]   per problem: the warp tiles visited, those that rescale and their
//                           fraction. D (64 or 128) picks the kernel's shape (mma::KernelTraits:
//                           rows per warp, Br, Bc); LEN tokens (default 8192); at most 8 query
//                           blocks, evenly spaced, per problem
//   rescale_tiles --check   known answers on ramps (feature 0 of key j is a j, of every query
//                           +-1, the rest 0): logits rising by more than kLazy log2 units per key
//                           rescale a warp on every tile after the first in which one of its rows
//                           sees a key, falling ones never; exit 1 otherwise
//
// Problems: batch 1, one head, LEN queries and keys, causal and not, no bias (the plain kinds:
// none, and RoPE, whose rotation keeps iid Gaussian q and k Gaussian); every q and k element iid
// N(0, s) with the default softmax scale 1/sqrt(D), so that the scaled logits have standard
// deviation s: s = 1 (typical), 2 and 4 (sharper than trained models' attention usually is). The
// kernel walks a block's key tiles in order, from the first; a warp counts every tile it visits,
// also one whose keys none of its rows can see yet (causal).
// Not modelled: biases (ALiBi, T5, KERPLE, FIRE raise a causal row's maximum as the keys come
// closer, on every tile for steep heads; posattn-sass assumes every such tile rescales).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "posattn.h"
#include "prefill/mma.cuh"

namespace {

namespace mma = pa_kernels::mma;
namespace pf = pa_kernels::prefill;

struct Shape {
  int rows, br, bc;  // rows per warp, rows per block, keys per tile
};

template <int D>
Shape shape_of() {
  using T = mma::KernelTraits<D, POSATTN_PE_NONE, mma::kPathBoth>;
  return {16 * T::kM, T::kBr, T::kBc};
}

struct Counts {
  long long tiles = 0, rescaled = 0;
};

// The sampled blocks of an L x L problem through the kernel's tile walk and lazy rule. q, k: L x
// d row-major fp32; cs = softmax scale x log2 e.
Counts walk(const Shape &sh, int len, int d, bool causal, const std::vector<float> &q,
            const std::vector<float> &k, float cs, int max_blocks) {
  Counts n;
  const int blocks = (len + sh.br - 1) / sh.br;
  const int stride = blocks > max_blocks ? blocks / max_blocks : 1;
  for (int blk = stride / 2; blk < blocks; blk += stride) {
    const int q0 = blk * sh.br;
    const int keys = causal ? std::min(len, q0 + sh.br) : len;  // the block's key range
    for (int w0 = q0; w0 < std::min(len, q0 + sh.br); w0 += sh.rows) {
      const int rows = std::min(sh.rows, len - w0);
      std::vector<float> rmax(size_t(rows), -INFINITY);
      for (int j0 = 0; j0 < keys; j0 += sh.bc) {
        bool moved = false;
        for (int r = 0; r < rows; ++r) {
          const int i = w0 + r;
          float mx = rmax[size_t(r)];
          for (int j = j0; j < std::min(keys, j0 + sh.bc); ++j) {
            if (causal && j > i) break;
            float s = 0.f;
            const float *qi = &q[size_t(i) * d], *kj = &k[size_t(j) * d];
            for (int f = 0; f < d; ++f) s += qi[f] * kj[f];
            mx = std::fmax(mx, s);
          }
          const bool move = pf::lazy_moves(rmax[size_t(r)], mx, cs);
          if (move || rmax[size_t(r)] == -INFINITY) rmax[size_t(r)] = mx;
          moved = moved || move;
        }
        ++n.tiles;
        n.rescaled += moved;
      }
    }
  }
  return n;
}

template <int D>
int measure(int len) {
  const Shape sh = shape_of<D>();
  const float cs = float(1.0 / std::sqrt(double(D)) * 1.4426950408889634);
  std::printf("rescale_tiles: hd%d, %d rows per warp, %d x %d tiles, %d tokens, kLazy %g\n", D,
              sh.rows, sh.br, sh.bc, len, double(pf::kLazy));
  unsigned seed = 1;
  for (double s : {1.0, 2.0, 4.0})
    for (int causal : {0, 1}) {
      std::mt19937 rng(seed++);
      std::normal_distribution<float> nd(0.f, float(std::sqrt(s)));
      std::vector<float> q(size_t(len) * D), k(size_t(len) * D);
      for (float &v : q) v = nd(rng);
      for (float &v : k) v = nd(rng);
      const Counts n = walk(sh, len, D, causal != 0, q, k, cs, 8);
      std::printf("problem s%g_%s tiles %lld rescaled %lld fraction %.4f\n", s,
                  causal ? "causal" : "full", n.tiles, n.rescaled,
                  n.tiles ? double(n.rescaled) / double(n.tiles) : 0.0);
    }
  return 0;
}

int check() {
  const int d = 128, len = 1000;
  const Shape sh = shape_of<128>();
  const float cs = float(1.0 / std::sqrt(double(d)) * 1.4426950408889634);
  // a rise of 20 log2 units per key, well past kLazy (8): a rising row moves on every tile in
  // which it sees a key, but the first
  const float a = 20.f / cs;
  int bad = 0;
  for (int sign : {1, -1})
    for (int causal : {0, 1}) {
      std::vector<float> q(size_t(len) * d, 0.f), k(size_t(len) * d, 0.f);
      for (int i = 0; i < len; ++i) q[size_t(i) * d] = float(sign);
      for (int j = 0; j < len; ++j) k[size_t(j) * d] = a * float(j);
      // every block (max_blocks beyond the count)
      const Counts n = walk(sh, len, d, causal != 0, q, k, cs, 1 << 20);
      // expected (rising): every row sees key 0, so a warp rescales on each later tile in which
      // its last row sees a key; falling: never
      long long tiles = 0, expect = 0;
      const int blocks = (len + sh.br - 1) / sh.br;
      for (int blk = 0; blk < blocks; ++blk) {
        const int q0 = blk * sh.br, keys = causal ? std::min(len, q0 + sh.br) : len;
        const int t = (keys + sh.bc - 1) / sh.bc;
        const int warps = (std::min(len, q0 + sh.br) - q0 + sh.rows - 1) / sh.rows;
        tiles += (long long)warps * t;
        // causal: a warp's last tiles may hold no key its rows see (they keep their maximum)
        for (int w0 = q0; w0 < std::min(len, q0 + sh.br); w0 += sh.rows) {
          const int last = std::min(len, w0 + sh.rows) - 1;  // the warp's last row
          const int seen = causal ? std::min(t, last / sh.bc + 1) : t;  // tiles with a visible key
          if (sign > 0) expect += seen - 1;
        }
      }
      const bool ok = n.tiles == tiles && n.rescaled == expect;
      std::printf("check %s %s: tiles %lld (expected %lld), rescaled %lld (expected %lld): %s\n",
                  sign > 0 ? "rising" : "falling", causal ? "causal" : "full", n.tiles, tiles,
                  n.rescaled, expect, ok ? "ok" : "WRONG");
      bad += !ok;
    }
  return bad ? 1 : 0;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc > 1 && std::strcmp(argv[1], "--check") == 0) return check();
  const int d = argc > 1 ? std::atoi(argv[1]) : 128, len = argc > 2 ? std::atoi(argv[2]) : 8192;
  if (len < 1 || len > (1 << 20)) {
    std::fprintf(stderr, "rescale_tiles: LEN must be in [1, 2^20]\n");
    return 2;
  }
  if (d == 64) return measure<64>(len);
  if (d == 128) return measure<128>(len);
  std::fprintf(stderr, "rescale_tiles: D must be 64 or 128\n");
  return 2;
}
