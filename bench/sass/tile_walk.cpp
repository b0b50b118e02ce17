// tile_walk -- the KV tiles the tensor-core prefill kernel visits, from the kernel's own rules.
//
// Compiled from the kernel headers (kernels/prefill/mma.cuh, kernels/pe/mask.cuh) as the
// emulator build sees them (checked global and shared pointers: a read outside doc_ids /
// cu_seqlens or outside the row table stops the program; no emulator runtime is linked): the
// kernel's TileWalk (kv_bounds, Seq::doc_keys, the jump over other documents' tiles), FullTiles
// (full or masked), row_docs (the row table's document words) and visible_words (a masked tile's
// visibility bits) are the kernel's code, called here; only the loop over tiles and the loop
// over the block's threads that drive them in prefill_mma are repeated. --check tests what they
// produce against the visibility of every element. Used by bench/sass/visible_tiles.py
// (posattn-sass --anchor-tiles) and by the ctest posattn_tile_walk_check.
//
//   tile_walk                  reads problems from stdin, prints what the kernel visits
//   tile_walk --check N SEED   N random problems: the visited tiles hold every visible tile, a
//                              visited tile without a visible element is an anchor tile, a tile
//                              treated as full is wholly visible, Seq::visible agrees with
//                              posattn.h's rule and a masked tile's visibility words give every
//                              element's visibility (exit 1 or 2 otherwise)
//
// Problem (stdin), one per block of lines, varlen (documents need q_len == kv_len):
//   problem NAME causal window_left window_right num_anchor
//   seq DOC_LEN DOC_LEN ...     a sequence: its documents' lengths in order (doc ids 0, 1, ...;
//                               the anchors are the first num_anchor tokens; "seq - LEN" = no
//                               doc ids, self-attention; "seq - LQ LK": no doc ids, Lq queries
//                               and Lk keys)
//   end
// Output per problem (one line, "key value" pairs, counts over (query block, KV tile)):
//   problem NAME blocks B visible V visited T full F masked M invisible_visited X missed S
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
using Walk = pa_kernels::mma::TileWalk<Traits::kBc>;
constexpr int kBr = Traits::kBr, kBc = Traits::kBc, kWarps = Traits::kWarps;
constexpr int kThreads = 32 * kWarps;

struct Problem {
  std::string name;
  int causal = 0, wl = -1, wr = -1, num_anchor = 0;
  bool docs = false;
  std::vector<std::vector<int>> seqs;  // per sequence: document lengths (or one length, no docs)
  std::vector<int> kv;                 // per sequence: Lk when it differs from Lq (no docs)
};

struct Result {
  long long blocks = 0, visible = 0, visited = 0, full = 0, masked = 0, invisible_visited = 0,
            missed = 0, unjustified = 0;
  std::vector<std::string> notes;  // the first few missed / invisible tiles
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

// A host buffer as the kernel's shared memory (the checked pointer of the emulator build).
template <class T>
pa::sptr<T> shared_of(std::vector<T> &v, const char *name) {
  return pa::sptr<T>(v.data(), pa_emu::Region{reinterpret_cast<char *>(v.data()),
                                              v.size() * sizeof(T), name});
}

Result walk(const Problem &pb, bool check) {
  std::vector<int32_t> cu{0}, cu_kv{0}, doc;
  for (size_t b = 0; b < pb.seqs.size(); ++b) {
    int n = 0, id = 0;
    for (int len : pb.seqs[b]) {
      for (int k = 0; k < len && pb.docs; ++k) doc.push_back(id);
      n += len;
      ++id;
    }
    cu.push_back(cu.back() + n);
    cu_kv.push_back(cu_kv.back() + (b < pb.kv.size() ? pb.kv[b] : n));
  }
  pa_prefill_params p{};
  p.batch = int(pb.seqs.size());
  p.cu_q = pa::make_gptr<const int32_t>(cu.data(), cu.size(), "cu_seqlens_q");
  p.cu_kv = pa::make_gptr<const int32_t>(cu_kv.data(), cu_kv.size(), "cu_seqlens_kv");
  p.doc_ids = pb.docs ? pa::make_gptr<const int32_t>(doc.data(), doc.size(), "doc_ids")
                      : pa::gptr<const int32_t>();
  p.num_anchor = pb.num_anchor;
  p.causal = pb.causal;
  p.window_left = pb.wl;
  p.window_right = pb.wr;
  std::vector<int32_t> row_doc(2 * kBr);
  std::vector<uint32_t> words(kBr * kBc / 32);
  const pa::sptr<int32_t> s_doc = shared_of(row_doc, "row table (documents)");
  const pa::sptr<uint32_t> s_words = shared_of(words, "visibility words");
  Result r;
  for (int b = 0; b < p.batch; ++b) {
    const pa_pe::Seq sq(p, b);
    const std::vector<int32_t> sdoc(doc.begin() + (pb.docs ? cu[b] : 0),
                                    doc.begin() + (pb.docs ? cu[b + 1] : 0));
    const int tiles = (sq.Lk + kBc - 1) / kBc;
    for (int qt0 = 0; qt0 < sq.Lq; qt0 += kBr) {
      ++r.blocks;
      const int qt1 = std::min(qt0 + kBr, sq.Lq);
      // prefill_mma: the tile walk, the row table's document words, the masked tiles' words
      const Walk tw(sq, qt0, qt1);
      if (pb.docs)
        for (int tid = 0; tid < kThreads; ++tid)
          pa_kernels::mma::row_docs<kBr, kThreads>(sq, s_doc, qt0, tid);
      std::vector<char> visited(tiles, 0), masked(tiles, 0);
      std::vector<std::vector<uint32_t>> tile_words(tiles);
      const FullTiles full_tile(sq, qt0, qt1);
      for (int t = tw.first; t < tw.end; t = tw.next(t + 1)) {
        visited[t] = 1;
        ++r.visited;
        const int j0 = t * kBc;
        if (full_tile(sq, j0, kBc)) {
          ++r.full;
          continue;
        }
        ++r.masked;
        masked[t] = 1;
        if (!check) continue;
        for (int tid = 0; tid < kThreads; ++tid)
          pa_kernels::mma::visible_words<kBr, kBc, kThreads>(sq, s_words, s_doc, qt0, j0, tid);
        tile_words[t] = words;
      }
      // --check: each row's window range for Seq::visible
      std::vector<int> rfirst(kBr), rlast(kBr);
      for (int i = qt0; i < qt1 && check; ++i) sq.row_keys(i, rfirst[i - qt0], rlast[i - qt0]);
      // visible tiles by the element rule (brute force); the kernel must visit each of them
      for (int t = 0; t < tiles; ++t) {
        bool any = false, all = true;
        for (int i = qt0; i < qt1; ++i)
          for (int j = t * kBc; j < std::min((t + 1) * kBc, sq.Lk); ++j) {
            const bool v = header_visible(pb, sdoc, sq.Lq, sq.Lk, i, j);
            any = any || v;
            all = all && v;
            if (check) {
              const bool kv = sq.visible(rfirst[i - qt0], rlast[i - qt0], j, pb.docs ? sdoc[i] : 0);
              // a masked tile: the kernel's visibility bit of (i, j) (visible_words)
              const int c = j - t * kBc, row = i - qt0;
              const bool wv = masked[t] ? (tile_words[t][row * (kBc / 32) + c / 32] >> (c % 32)) & 1 : v;
              if (kv != v || wv != v) {
                std::fprintf(stderr, "%s: (%d, %d): Seq::visible %d, visible_words %d, posattn.h's rule %d\n",
                             pb.name.c_str(), i, j, int(kv), int(wv), int(v));
                std::exit(2);
              }
            }
          }
        all = all && (t + 1) * kBc <= sq.Lk;  // rows past Lq are never stored
        if (any) ++r.visible;
        char note[160];
        if (any && !visited[t]) {
          ++r.missed;
          std::snprintf(note, sizeof note, "MISSED seq %d rows [%d,%d) tile [%d,%d)", b, qt0, qt1,
                        t * kBc, (t + 1) * kBc);
          r.notes.push_back(note);
        }
        if (!any && visited[t]) {
          // justified only as an anchor tile inside the causal/window tile range whose anchors
          // some row's left window reaches but no row sees (the walk decides per block)
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
              "invisible_visited %lld missed %lld\n",
              pb.name.c_str(), r.blocks, r.visible, r.visited, r.full, r.masked,
              r.invisible_visited, r.missed);
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
      pb.kv.clear();
      pb.docs = true;
    } else if (std::strncmp(line, "seq", 3) == 0) {
      std::vector<int> lens;
      char *s = line + 3;
      const bool plain = std::strchr(s, '-') != nullptr;  // "seq - LQ [LK]": no documents
      if (plain) {
        pb.docs = false;
        s = std::strchr(s, '-') + 1;
      }
      for (char *e; ; s = e) {
        const long v = std::strtol(s, &e, 10);
        if (e == s) break;
        lens.push_back(int(v));
      }
      if (plain && lens.size() == 2) {
        pb.kv.resize(pb.seqs.size(), -1);
        pb.kv.push_back(lens[1]);
        lens.pop_back();
      }
      pb.seqs.push_back(lens);
    } else if (std::strncmp(line, "end", 3) == 0) {
      for (size_t b = 0; b < pb.kv.size(); ++b)  // -1: Lk = Lq
        if (pb.kv[b] < 0) pb.kv[b] = pb.seqs[b][0];
      print(pb, walk(pb, false));
      std::fflush(stdout);
    }
  }
  return 0;
}

// Random problems: 1-3 sequences of 1..700 tokens, documents of 1..300 tokens (or none; then
// sometimes fewer or more keys than queries), 0-40 anchors (more than a tile, sometimes), causal
// or not, windows sometimes. Fails (exit 1) when a visible tile is not visited or a visited one
// holds neither a visible element nor an anchor, exit 2 from walk.
int check(int n, unsigned seed) {
  std::mt19937 rng(seed);
  auto uni = [&](int a, int b) { return std::uniform_int_distribution<int>(a, b)(rng); };
  long long visible = 0, visited = 0, invisible = 0, masked = 0;
  for (int k = 0; k < n; ++k) {
    Problem pb;
    pb.name = "random" + std::to_string(k);
    pb.causal = uni(0, 2) != 0;
    pb.wl = uni(0, 3) == 0 ? uni(0, 400) : -1;
    pb.wr = !pb.causal && uni(0, 3) == 0 ? uni(0, 400) : -1;
    pb.docs = uni(0, 4) != 0;
    const bool cross = !pb.docs && uni(0, 1);  // Lk != Lq (no documents)
    const int nseq = uni(1, 3);
    int min_len = 1 << 30;
    for (int s = 0; s < nseq; ++s) {
      const int len = uni(1, 700);
      min_len = std::min(min_len, len);
      std::vector<int> docs;
      const int dmax = uni(0, 1) ? 300 : 40;  // documents longer or shorter than a tile
      for (int left = len; left > 0;) {
        const int d = pb.docs ? std::min(left, uni(1, dmax)) : left;
        docs.push_back(d);
        left -= d;
      }
      pb.seqs.push_back(docs);
      pb.kv.push_back(cross ? uni(1, 700) : len);
    }
    pb.num_anchor = pb.docs ? std::min(uni(0, 1) ? uni(0, 3) : uni(0, 40), min_len) : 0;
    const Result r = walk(pb, true);
    visible += r.visible;
    visited += r.visited;
    invisible += r.invisible_visited;
    masked += r.masked;
    if (r.missed || r.unjustified) {
      print(pb, r);
      std::fprintf(stderr, "%s: %lld visible tiles not visited, %lld visited tiles without a "
                   "visible element nor an anchor\n", pb.name.c_str(), r.missed, r.unjustified);
      return 1;
    }
    if (r.invisible_visited && invisible == r.invisible_visited) print(pb, r);  // the first one
  }
  std::printf("%d random problems: %lld visible tiles, all visited; %lld visited (%lld masked, "
              "every element's visibility word checked), of which %lld hold no visible element "
              "(each an anchor tile that some row's left window reaches but no row sees)\n",
              n, visible, visited, masked, invisible);
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
