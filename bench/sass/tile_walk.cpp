// tile_walk -- the KV tiles the tensor-core prefill kernel visits, from the kernel's own rules.
//
// Compiled from the kernel headers (kernels/prefill/mma.cuh, kernels/pe/mask.cuh) as the
// emulator build sees them (checked global pointers: a read outside doc_ids / cu_seqlens by the
// tile rules stops the program; no emulator runtime is linked): Seq::kv_bounds, the tile walk
// over Seq::tile_has_docs (the kernel's next_tile), FullTiles (full or masked) and Seq::row_keys
// (the masked tile's per-row document loop in visible_words) are the kernel's code, called
// here; only the few lines that drive them in prefill_mma (the loop over tiles, the loop bounds
// of visible_words' document loop) are repeated, and --check tests what they produce against the
// visibility of every element. Used by bench/sass/visible_tiles.py (posattn-sass --anchor-tiles)
// and by the ctest posattn_tile_walk_check. It also runs the change proposed for the kernel in
// docs/kernels.md (Issue 12 log, AnchorAttention proportionality): a walk without per-tile
// tests and per-row document spans, both over Seq::doc_keys, and checks them the same way.
//
//   tile_walk                  reads problems from stdin, prints what the kernel visits
//   tile_walk --check N SEED   N random problems: the visited tiles hold every visible tile, a
//                              tile treated as full is wholly visible, Seq::visible agrees with
//                              posattn.h's rule, a visited tile without a visible element is
//                              an anchor tile, the proposed walk visits exactly the visible
//                              tiles and the proposed row spans give every element's
//                              visibility (exit 1 or 2 otherwise)
//
// Problem (stdin), one per block of lines, varlen self-attention (documents need q_len == kv_len):
//   problem NAME causal window_left window_right num_anchor
//   seq DOC_LEN DOC_LEN ...     a sequence: its documents' lengths in order (doc ids 0, 1, ...;
//                               the anchors are the first num_anchor tokens; "seq -" = no doc ids)
//   end
// Output per problem (one line each, "key value" pairs, counts over (query block, KV tile)):
//   problem NAME blocks B visible V visited T full F masked M invisible_visited X
//           missed S checks_failed C proposed P proposed_missed Q
//                                   (checks_failed: tiles next_tile tests and skips, per cursor;
//                                   proposed: tiles the proposed walk visits)
//   masked_warps N0 N1 N2 N3 COUNT   masked tiles whose warps run the document loop N0.. keys
//                                   (each warp's maximum over its rows)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "prefill/mma.cuh"

// The emulator's access check (kernels/emu/emu.h) without the emulator: a fault ends the program.
namespace pa_emu {
void access_fault(Space, const Region &r, const void *p, size_t n, bool write, const char *why) {
  std::fprintf(stderr, "tile_walk: %s of %zu bytes at %p in %s %s\n", write ? "write" : "read", n,
               p, r.name ? r.name : "?", why);
  std::exit(3);
}
void shared_track(const void *, size_t, bool) {}
}  // namespace pa_emu

namespace {

using Traits = pa_kernels::mma::Traits<128>;
using pa_kernels::mma::FullTiles;
constexpr int kBr = Traits::kBr, kBc = Traits::kBc, kWarps = Traits::kWarps;
constexpr int kThreads = 32 * kWarps;

struct Problem {
  std::string name;
  int causal = 0, wl = -1, wr = -1, num_anchor = 0;
  bool docs = false;
  std::vector<std::vector<int>> seqs;  // per sequence: document lengths (or one length, no docs)
};

struct Result {
  long long blocks = 0, visible = 0, visited = 0, full = 0, masked = 0, invisible_visited = 0,
            missed = 0, checks_failed = 0, unjustified = 0, proposed = 0, proposed_missed = 0,
            proposed_extra = 0;
  std::map<std::vector<int>, long long> warps;  // per-warp document-loop keys -> masked tiles
  std::vector<std::string> notes;               // the first few missed / invisible tiles
};

// The element rule of posattn.h, written out here (not the kernel's): i' = i + Lk - Lq; causal
// j <= i'; window i' - wl <= j <= i' + wr; documents doc(i) == doc(j) or j < num_anchor.
bool header_visible(const Problem &pb, const std::vector<int32_t> &doc, int Lq, int Lk, int i,
                    int j) {
  const long long ia = (long long)i + Lk - Lq;
  if (pb.causal && j > ia) return false;
  if (pb.wl >= 0 && j < ia - pb.wl) return false;
  if (pb.wr >= 0 && j > ia + pb.wr) return false;
  if (pb.docs && j >= pb.num_anchor && doc[j] != doc[i]) return false;
  return true;
}

Result walk(const Problem &pb, bool check) {
  std::vector<int32_t> cu{0}, doc;
  for (const auto &s : pb.seqs) {
    int n = 0, id = 0;
    for (int len : s) {
      for (int k = 0; k < len; ++k) doc.push_back(id);
      n += len;
      ++id;
    }
    cu.push_back(cu.back() + n);
  }
  pa_prefill_params p{};
  p.batch = int(pb.seqs.size());
  p.cu_q = pa::make_gptr<const int32_t>(cu.data(), cu.size(), "cu_seqlens");
  p.cu_kv = p.cu_q;
  p.doc_ids = pb.docs ? pa::make_gptr<const int32_t>(doc.data(), doc.size(), "doc_ids")
                      : pa::gptr<const int32_t>();
  p.num_anchor = pb.num_anchor;
  p.causal = pb.causal;
  p.window_left = pb.wl;
  p.window_right = pb.wr;
  Result r;
  for (int b = 0; b < p.batch; ++b) {
    const pa_pe::Seq sq(p, b);
    const std::vector<int32_t> sdoc(doc.begin() + (pb.docs ? cu[b] : 0),
                                    doc.begin() + (pb.docs ? cu[b + 1] : 0));
    const int tiles = (sq.Lk + kBc - 1) / kBc;
    for (int qt0 = 0; qt0 < sq.Lq; qt0 += kBr) {
      ++r.blocks;
      const int qt1 = std::min(qt0 + kBr, sq.Lq);
      // prefill_mma: the tile range and next_tile (every thread computes the same sequence)
      int lo, hi;
      sq.kv_bounds(qt0, qt1, lo, hi);
      const int t_end = hi > lo ? hi / kBc + (hi % kBc != 0) : 0;
      auto next_tile = [&](int t) {
        while (t < t_end && !sq.tile_has_docs(qt0, qt1, t * kBc, std::min((t + 1) * kBc, sq.Lk))) {
          ++t;
          ++r.checks_failed;
        }
        return t;
      };
      // The proposed walk (docs/kernels.md, Issue 12 log): per block, the tiles holding anchors
      // some row's left window reaches, then the tiles of the block's documents (Seq::doc_keys),
      // no test per tile. It must visit every tile the kernel's walk visits that holds a
      // visible element (checked below against the element rule).
      std::vector<char> proposed(tiles, 0);
      {
        int dlo = 0, dhi = sq.Lk, t_anchor = 0;
        sq.doc_keys(qt0, qt1, dlo, dhi);
        if (pb.docs && (pb.wl < 0 || int64_t(pb.num_anchor) + pb.wl > qt0))
          t_anchor = (pb.num_anchor + kBc - 1) / kBc;
        const int t_doc = dlo / kBc, t_stop = std::min(t_end, (dhi + kBc - 1) / kBc);
        for (int t = lo / kBc; t < t_end; ++t) {
          if (t >= t_anchor && t < t_doc) t = t_doc;
          if (t >= std::max(t_stop, std::min(t_anchor, t_end))) break;
          proposed[t] = 1;
          ++r.proposed;
        }
      }
      std::vector<char> visited(tiles, 0);
      const FullTiles full_tile(sq, qt0, qt1);
      for (int t = next_tile(lo / kBc); t < t_end; t = next_tile(t + 1)) {
        visited[t] = 1;
        ++r.visited;
        const int j0 = t * kBc;
        if (full_tile(sq, j0, kBc)) {
          ++r.full;
          continue;
        }
        ++r.masked;
        // visible_words: thread tid = row qt0 + tid runs its document loop over keys
        // [max(first, num_anchor), last] of the tile; a warp runs as long as its longest row
        std::vector<int> warp_keys(kWarps, 0);
        const int jend = std::min(j0 + kBc, sq.Lk);
        for (int row = 0; row < kBr && pb.docs; ++row) {
          const int i = qt0 + row;
          if (i >= sq.Lq) break;
          int first, last;
          sq.row_keys(i, first, last);
          first = std::max(first, j0);
          last = std::min(last, jend - 1);
          if (first > last) continue;
          const int n = last - std::max(first, p.num_anchor) + 1;
          warp_keys[row / 32] = std::max(warp_keys[row / 32], n);
        }
        ++r.warps[warp_keys];
      }
      // --check: each row's window range, document and proposed document span (Seq::doc_keys)
      std::vector<int> rfirst(kBr), rlast(kBr), rds(kBr), rde(kBr);
      for (int i = qt0; i < qt1 && check; ++i) {
        sq.row_keys(i, rfirst[i - qt0], rlast[i - qt0]);
        sq.doc_keys(i, i + 1, rds[i - qt0], rde[i - qt0]);
      }
      // visible tiles by the element rule (brute force); the kernel must visit each of them
      for (int t = 0; t < tiles; ++t) {
        bool any = false, all = true;
        for (int i = qt0; i < qt1; ++i)
          for (int j = t * kBc; j < std::min((t + 1) * kBc, sq.Lk); ++j) {
            const bool v = header_visible(pb, sdoc, sq.Lq, sq.Lk, i, j);
            any = any || v;
            all = all && v;
            if (check) {
              const int first = rfirst[i - qt0], last = rlast[i - qt0];
              const bool kv = sq.visible(first, last, j, pb.docs ? sdoc[i] : 0);
              // the proposed visible_words: the row's window range, then its document's keys
              // (Seq::doc_keys) or an anchor, instead of a doc id load per key
              const bool rv = j >= first && j <= last &&
                              ((j >= rds[i - qt0] && j < rde[i - qt0]) ||
                               (pb.docs && j < pb.num_anchor));
              if (kv != v || rv != v) {
                std::fprintf(stderr, "%s: (%d, %d): Seq::visible %d, by Seq::doc_keys %d, posattn.h's rule %d\n",
                             pb.name.c_str(), i, j, int(kv), int(rv), int(v));
                std::exit(2);
              }
            }
          }
        all = all && (t + 1) * kBc <= sq.Lk;  // rows past Lq are never stored
        if (any) ++r.visible;
        if (any && !proposed[t]) ++r.proposed_missed;
        if (proposed[t] && !visited[t]) ++r.proposed_extra;  // visits no tile today's walk skips
        char note[160];
        if (any && !visited[t]) {
          ++r.missed;
          std::snprintf(note, sizeof note, "MISSED seq %d rows [%d,%d) tile [%d,%d)", b, qt0, qt1,
                        t * kBc, (t + 1) * kBc);
          r.notes.push_back(note);
        }
        if (!any && visited[t]) {
          // justified only as an anchor tile (tile_has_docs keeps every tile holding an anchor)
          // inside the causal/window tile range whose anchors lie outside every row's window
          if (!(pb.docs && t * kBc < pb.num_anchor)) ++r.unjustified;
          ++r.invisible_visited;
          if (r.notes.size() < 8) {
            std::snprintf(note, sizeof note, "invisible but visited: seq %d rows [%d,%d) tile [%d,%d)",
                          b, qt0, qt1, t * kBc, (t + 1) * kBc);
            r.notes.push_back(note);
          }
        }
        // a tile the kernel treats as full must be wholly visible (else the mask is skipped)
        if (check && visited[t] && full_tile(sq, t * kBc, kBc) && !all) {
          std::fprintf(stderr, "%s: seq %d rows [%d,%d) tile %d treated as full, not wholly visible\n",
                       pb.name.c_str(), b, qt0, qt1, t);
          std::exit(2);
        }
      }
    }
  }
  return r;
}

void print(const Problem &pb, const Result &r) {
  std::printf("# causal %d window %d %d anchors %d docs %d\n", pb.causal, pb.wl, pb.wr,
              pb.num_anchor, int(pb.docs));
  std::printf("problem %s blocks %lld visible %lld visited %lld full %lld masked %lld "
              "invisible_visited %lld missed %lld checks_failed %lld proposed %lld "
              "proposed_missed %lld\n",
              pb.name.c_str(), r.blocks, r.visible, r.visited, r.full, r.masked,
              r.invisible_visited, r.missed, r.checks_failed, r.proposed, r.proposed_missed);
  for (const auto &w : r.warps) {
    std::printf("masked_warps");
    for (int n : w.first) std::printf(" %d", n);
    std::printf(" %lld\n", w.second);
  }
  for (const auto &n : r.notes) std::printf("note %s\n", n.c_str());
}

int read_problems() {
  char line[1 << 16];
  Problem pb;
  while (std::fgets(line, sizeof line, stdin)) {
    char name[256];
    if (std::sscanf(line, "problem %255s %d %d %d %d", name, &pb.causal, &pb.wl, &pb.wr,
                    &pb.num_anchor) == 5) {
      pb.name = name;
      pb.seqs.clear();
      pb.docs = true;
    } else if (std::strncmp(line, "seq", 3) == 0) {
      std::vector<int> lens;
      char *s = line + 3;
      if (std::strchr(s, '-')) {  // "seq - LEN": no documents
        pb.docs = false;
        s = std::strchr(s, '-') + 1;
      }
      for (char *e; ; s = e) {
        const long v = std::strtol(s, &e, 10);
        if (e == s) break;
        lens.push_back(int(v));
      }
      pb.seqs.push_back(lens);
    } else if (std::strncmp(line, "end", 3) == 0) {
      print(pb, walk(pb, false));
      std::fflush(stdout);
    }
  }
  return 0;
}

// Random problems: 1-3 sequences of 1..700 tokens, documents of 1..300 tokens (or none),
// 0-3 anchors, causal or not, windows sometimes. Fails (exit 1) when a visible tile is not
// visited, or when a tile treated as full is not wholly visible (exit 2 from walk).
int check(int n, unsigned seed) {
  std::mt19937 rng(seed);
  auto uni = [&](int a, int b) { return std::uniform_int_distribution<int>(a, b)(rng); };
  long long visible = 0, visited = 0, invisible = 0, proposed = 0;
  for (int k = 0; k < n; ++k) {
    Problem pb;
    pb.name = "random" + std::to_string(k);
    pb.causal = uni(0, 2) != 0;
    pb.wl = uni(0, 3) == 0 ? uni(0, 400) : -1;
    pb.wr = !pb.causal && uni(0, 3) == 0 ? uni(0, 400) : -1;
    pb.docs = uni(0, 4) != 0;
    const int nseq = uni(1, 3);
    int min_len = 1 << 30;
    for (int s = 0; s < nseq; ++s) {
      const int len = uni(1, 700);
      min_len = std::min(min_len, len);
      std::vector<int> docs;
      for (int left = len; left > 0;) {
        const int d = pb.docs ? std::min(left, uni(1, 300)) : left;
        docs.push_back(d);
        left -= d;
      }
      pb.seqs.push_back(docs);
    }
    pb.num_anchor = pb.docs ? std::min(uni(0, 3), min_len) : 0;
    const Result r = walk(pb, true);
    visible += r.visible;
    visited += r.visited;
    invisible += r.invisible_visited;
    proposed += r.proposed;
    if (r.proposed_missed || r.proposed_extra || r.proposed < r.visible) {
      print(pb, r);
      std::fprintf(stderr, "%s: the proposed walk skips %lld visible tiles, visits %lld tiles the "
                   "kernel's walk does not\n", pb.name.c_str(), r.proposed_missed, r.proposed_extra);
      return 1;
    }
    if (r.missed || r.unjustified) {
      print(pb, r);
      std::fprintf(stderr, "%s: %lld visible tiles not visited, %lld visited tiles without a "
                   "visible element nor an anchor\n", pb.name.c_str(), r.missed, r.unjustified);
      return 1;
    }
    if (r.invisible_visited && invisible == r.invisible_visited) print(pb, r);  // the first one
  }
  std::printf("%d random problems: %lld visible tiles, all visited; %lld visited, of which %lld "
              "hold no visible element (each an anchor tile whose anchors are outside the "
              "window of every row of the block); the proposed walk visits %lld, every visible "
              "one, none that today's walk skips\n", n, visible, visited, invisible, proposed);
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc == 4 && std::strcmp(argv[1], "--check") == 0)
    return check(std::atoi(argv[2]), unsigned(std::strtoul(argv[3], nullptr, 10)));
  if (argc != 1) {
    std::fprintf(stderr, "usage: tile_walk < problems | tile_walk --check N SEED\n");
    return 64;
  }
  return read_problems();
}
