// pa_ring.hpp -- context-parallel (ring) attention with N in-process ranks, the CPU twin of
// docs/examples/ring_attention.c: the same schedule, memcpy in place of ncclSend/ncclRecv.
// Shared by tests/cpu/test_ring.cpp (REF) and tests/emu/test_emu_attention_ring.cpp (EMU).
//
// The sequence (S tokens, batch 1) is cut into chunks; rank r holds its chunks' Q, K, V and
// position ids. CONTIGUOUS sharding gives rank r chunk r of N; ZIGZAG cuts 2N chunks and gives
// rank r chunks r and 2N-1-r, which balances causal work. At step k rank r holds the K/V (and the
// token ids, which travel with them) of rank (r - k) mod N, computes attention of each of its
// query chunks against each received key chunk with posattn_forward, and merges each partial
// state into its accumulator with posattn_merge_states_inplace.
//
// A (query range, key range) pair of global token ranges becomes at most two calls with the
// existing descriptor fields (pat_range_calls, the recipe of docs/scaling.md): without causal
// masking one call; with it, keys after the last query are dropped, queries before the first key
// see nothing, queries [qa, kb) get a causal call whose bottom-right alignment is exactly the
// global diagonal (Lk - Lq = qa - ka), and later queries a non-causal call. Packed documents with
// anchor tokens (doc_ids) become, per document of the query range, such a pair with the keys of
// that document, plus one pair with the anchor keys: the visibility rule "same document or an
// anchor" split into disjoint key sets, merged by LSE. Explicit position ids make every logit
// exact: RoPE, ALiBi, FIRE (its normaliser uses the query's own position), T5 see the true pq, pk.
//
// Checked against single-device attention by the DESIGN.md section 5 rule: gold = the whole
// sequence in fp64 (the shim's naive attention), baseline = the naive low-precision attention
// (logits fp32, P rounded to the input dtype, output rounded to f32).
#ifndef PA_RING_HPP
#define PA_RING_HPP

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "pa_test_shim.h"

enum pat_shard { PAT_CONTIGUOUS = 0, PAT_ZIGZAG = 1 };

struct pat_ring_case {
  int N;
  int S;  // tokens
  int causal;
  posattn_pe_kind pe;
  pat_shard shard;
  int docs;     // packed documents with 2 anchor tokens (doc_ids)
  int dyn_ntk;  // ROPE with DYNAMIC_NTK scaling: 1 = dynamic_seq_len given,
                // 2 = left 0 (each call derives it from ITS largest position: differs)
};

struct pat_range {
  int lo, hi;
};

// Chunks of rank r in global token order.
inline std::vector<pat_range> pat_rank_chunks(int S, int N, pat_shard shard, int r) {
  if (shard == PAT_CONTIGUOUS) return {{r * S / N, (r + 1) * S / N}};
  const int C = 2 * N;
  return {{r * S / C, (r + 1) * S / C}, {(C - 1 - r) * S / C, (C - r) * S / C}};
}

// One posattn_forward call: queries [qa, qb) against keys [ka, kb) (global token indices).
struct pat_call {
  int qa, qb, ka, kb, causal;
};

// The calls that compute queries [qa, qb) against keys [ka, kb) of one longer sequence.
inline void pat_range_calls(int qa, int qb, int ka, int kb, int causal,
                            std::vector<pat_call> &out) {
  if (!causal) {
    if (qa < qb && ka < kb) out.push_back({qa, qb, ka, kb, 0});
    return;
  }
  kb = std::min(kb, qb);  // keys after the last query: seen by none
  qa = std::max(qa, ka);  // queries before the first key: see none of these
  if (qa >= qb || ka >= kb) return;
  if (qa < kb) out.push_back({qa, kb, ka, kb, 1});  // Lk - Lq = qa - ka: the global diagonal
  if (std::max(qa, kb) < qb) out.push_back({std::max(qa, kb), qb, ka, kb, 0});  // see all
}

// With documents (doc[] non-decreasing, the first `anchors` tokens visible to all): per document
// of the query range, its keys (anchors excluded), plus the anchor keys for the whole range.
inline void pat_doc_calls(const std::vector<int32_t> &doc, int anchors, pat_range q, pat_range k,
                          int causal, std::vector<pat_call> &out) {
  pat_range_calls(q.lo, q.hi, k.lo, std::min(k.hi, anchors), causal, out);
  for (int a = q.lo; a < q.hi;) {
    int b = a;
    while (b < q.hi && doc[size_t(b)] == doc[size_t(a)]) ++b;
    int lo = std::max(k.lo, anchors), hi = k.hi;  // keys of this document inside k
    while (lo < hi && doc[size_t(lo)] < doc[size_t(a)]) ++lo;
    while (hi > lo && doc[size_t(hi - 1)] > doc[size_t(a)]) --hi;
    pat_range_calls(a, b, lo, hi, causal, out);
    a = b;
  }
}

struct pat_ring_pe {
  std::vector<float> w1, b1, w2, b2, t5, a, p;
};

// PE parameters: RoPE exact angles (optionally DYNAMIC_NTK), xPos with a small scale_base, standard
// ALiBi, FIRE with a small L so that the normaliser max(L, pq) switches inside the sequence, T5
// (bidirectional when not causal), KERPLE.
inline void pat_ring_set_pe(posattn_pe *pe, const pat_ring_case &c, int hq, pat_ring_pe &tables,
                            pat_rng *r) {
  posattn_pe_init(pe);
  pe->kind = c.pe;
  auto fill = [&](std::vector<float> &v, size_t n, double lo, double hi) {
    v.resize(n);
    for (float &x : v) x = float(pat_rng_uniform(r, lo, hi));
  };
  pe->rope.angle_mode = POSATTN_ANGLE_EXACT;
  if (c.dyn_ntk) {
    pe->rope.scaling = POSATTN_ROPE_SCALING_DYNAMIC_NTK;
    pe->rope.factor = 4;
    pe->rope.original_max_position = 8;  // shorter than the sequence: the scaling is active
    pe->rope.dynamic_seq_len = c.dyn_ntk == 1 ? c.S : 0;  // positions 0 .. S-1
  }
  if (c.pe == POSATTN_PE_XPOS) pe->rope.layout = POSATTN_ROPE_GPTJ, pe->xpos.scale_base = 16;
  if (c.pe == POSATTN_PE_FIRE) {
    const int w = pe->fire.mlp_width = 8;
    fill(tables.w1, w, -3, 3), fill(tables.b1, w, -1, 1), fill(tables.w2, size_t(hq) * w, -1, 1);
    fill(tables.b2, hq, -1, 1);
    pe->fire.w1 = tables.w1.data(), pe->fire.b1 = tables.b1.data();
    pe->fire.w2 = tables.w2.data(), pe->fire.b2 = tables.b2.data();
    pe->fire.L = 9;
  }
  if (c.pe == POSATTN_PE_T5) {
    pe->t5.bidirectional = c.causal ? 0 : 1;
    fill(tables.t5, size_t(pe->t5.num_buckets) * hq, -2, 2);
    pe->t5.table = tables.t5.data();
  }
  if (c.pe == POSATTN_PE_KERPLE_LOG || c.pe == POSATTN_PE_KERPLE_POWER) {
    fill(tables.a, hq, 0.05, 1.5), fill(tables.p, hq, 0.1, 2.0);
    pe->kerple.a = tables.a.data(), pe->kerple.p = tables.p.data();
  }
}

// Runs one case on ctx and checks it against single-device attention: the section 5 rule must
// hold (want_match) or must fail (a sharding that changes the problem); returns the calls made.
inline int pat_ring_check(posattn_context *ctx, const pat_ring_case &c, uint64_t seed,
                          bool want_match = true) {
  const int hq = 2, hkv = 1, d = 32, S = c.S, N = c.N;
  const posattn_dtype dt = POSATTN_DTYPE_BF16;
  const int32_t first_pos = c.dyn_ntk || c.pe == POSATTN_PE_FIRE ? 0
                            : c.pe == POSATTN_PE_ROPE            ? 700000  // long positions
                                                                 : 1000;
  pat_rng rng;
  pat_rng_seed(&rng, seed);
  posattn_attention_desc full;
  posattn_attention_desc_init(&full);
  full.batch = 1, full.q_heads = hq, full.kv_heads = hkv, full.head_dim = d;
  full.q_len = full.kv_len = S;
  full.causal = c.causal;
  pat_ring_pe tables;
  pat_ring_set_pe(&full.pe, c, hq, tables, &rng);
  std::vector<int32_t> pos(static_cast<size_t>(S));
  for (int t = 0; t < S; ++t) pos[size_t(t)] = first_pos + t;
  full.q_positions = full.kv_positions = pos.data();
  const int anchors = c.docs ? 2 : 0;
  std::vector<int32_t> doc(static_cast<size_t>(S),
                           0);  // anchors: doc 0; then documents of 1..5 tokens
  for (int t = anchors, id = 1; t < S; ++id)
    for (int len = pat_rng_int(&rng, 1, 5); len > 0 && t < S; --len) doc[size_t(t++)] = id;
  if (c.docs) full.doc_ids = doc.data(), full.num_anchor_tokens = anchors;
  pat_inputs in;
  EXPECT_EQ(pat_inputs_random(&in, &full, dt, &rng, 1.0), 0);

  // single device: gold (fp64) and baseline (low precision)
  const size_t n_out = size_t(S) * hq * d;
  std::vector<double> gold(n_out), gold_lse(size_t(S) * hq), base(n_out), base_lse(size_t(S) * hq);
  EXPECT_EQ(pat_naive_forward(&full, &in.tq, &in.tk, &in.tv, (posattn_dtype)0, POSATTN_DTYPE_F32,
                              gold.data(), gold_lse.data()),
            POSATTN_STATUS_SUCCESS);
  EXPECT_EQ(pat_naive_forward(&full, &in.tq, &in.tk, &in.tv, dt, POSATTN_DTYPE_F32, base.data(),
                              base_lse.data()),
            POSATTN_STATUS_SUCCESS);

  // each rank's shard: its tokens packed in chunk order (q, k, v [tokens, heads, d]; positions)
  const size_t es = posattn_dtype_size(dt), qrow = size_t(hq) * d * es, krow = size_t(hkv) * d * es;
  struct rank_t {
    std::vector<pat_range> chunks;
    std::vector<int> tok;                       // global token of each local token
    std::vector<unsigned char> q, kv, kv_next;  // kv: k rows then v rows, then positions
    std::vector<float> acc, acc_lse;            // state [tokens, hq, d] f32, lse [hq][tokens]
    int n = 0;
  };
  std::vector<rank_t> R(static_cast<size_t>(N));
  size_t kv_cap = 0;
  for (int r = 0; r < N; ++r) {
    rank_t &k = R[size_t(r)];
    k.chunks = pat_rank_chunks(S, N, c.shard, r);
    for (const pat_range &ch : k.chunks)
      for (int t = ch.lo; t < ch.hi; ++t) k.tok.push_back(t);
    k.n = int(k.tok.size());
    kv_cap = std::max(kv_cap, size_t(k.n) * (2 * krow + 4));
  }
  for (int r = 0; r < N; ++r) {
    rank_t &k = R[size_t(r)];
    k.q.resize(size_t(k.n) * qrow);
    k.kv.assign(kv_cap, 0);
    k.kv_next.assign(kv_cap, 0);
    for (int i = 0; i < k.n; ++i) {
      const int t = k.tok[size_t(i)];
      std::memcpy(&k.q[size_t(i) * qrow], static_cast<char *>(in.tq.data) + size_t(t) * qrow, qrow);
      std::memcpy(&k.kv[size_t(i) * krow], static_cast<char *>(in.tk.data) + size_t(t) * krow,
                  krow);
      std::memcpy(&k.kv[size_t(k.n + i) * krow], static_cast<char *>(in.tv.data) + size_t(t) * krow,
                  krow);
    }
    std::memcpy(&k.kv[size_t(2 * k.n) * krow], k.tok.data(),
                size_t(k.n) * 4);  // token ids travel too
    k.acc.assign(size_t(k.n) * hq * d, 0.f);
    k.acc_lse.assign(size_t(k.n) * hq, -INFINITY);  // empty states
  }

  posattn_merge_desc md;
  posattn_merge_desc_init(&md);
  md.batch = 1, md.heads = hq, md.head_dim = d;
  int calls = 0;
  std::vector<float> part(size_t(S) * hq * d), part_lse(size_t(S) * hq);
  std::vector<int32_t> qpos(static_cast<size_t>(S)), kpos(static_cast<size_t>(S));
  for (int step = 0; step < N; ++step) {
    for (int r = 0; r < N; ++r) {
      rank_t &me = R[size_t(r)];
      const rank_t &src = R[size_t((r - step + N) % N)];  // whose K/V I hold now
      const int kn = src.n;
      const int32_t *ktok = reinterpret_cast<const int32_t *>(&me.kv[size_t(2 * kn) * krow]);
      // local index of global token t inside a list of chunks (tokens packed in chunk order)
      auto local = [](const std::vector<pat_range> &chunks, int t) {
        int off = 0;
        for (const pat_range &ch : chunks) {
          if (t >= ch.lo && t < ch.hi) return off + t - ch.lo;
          off += ch.hi - ch.lo;
        }
        return -1;
      };
      std::vector<pat_call> todo;
      for (const pat_range &qc : me.chunks)
        for (const pat_range &kc : src.chunks) {
          if (c.docs)
            pat_doc_calls(doc, anchors, qc, kc, c.causal, todo);
          else
            pat_range_calls(qc.lo, qc.hi, kc.lo, kc.hi, c.causal, todo);
        }
      for (const pat_call &call : todo) {
        const int qn = call.qb - call.qa, kcn = call.kb - call.ka;
        const int qoff = local(me.chunks, call.qa), koff = local(src.chunks, call.ka);
        posattn_attention_desc D = full;
        D.q_len = qn, D.kv_len = kcn;
        D.causal = call.causal;
        D.doc_ids = nullptr, D.num_anchor_tokens = 0;  // documents were split into the calls
        for (int i = 0; i < qn; ++i) qpos[size_t(i)] = pos[size_t(me.tok[size_t(qoff + i)])];
        for (int j = 0; j < kcn; ++j) kpos[size_t(j)] = pos[size_t(ktok[koff + j])];
        D.q_positions = qpos.data(), D.kv_positions = kpos.data();
        posattn_tensor tq, tk, tv, to;
        posattn_tensor_init_contiguous(&tq, &me.q[size_t(qoff) * qrow], dt, qn, hq, d);
        posattn_tensor_init_contiguous(&tk, &me.kv[size_t(koff) * krow], dt, kcn, hkv, d);
        posattn_tensor_init_contiguous(&tv, &me.kv[size_t(kn + koff) * krow], dt, kcn, hkv, d);
        posattn_tensor_init_contiguous(&to, part.data(), POSATTN_DTYPE_F32, qn, hq, d);
        size_t ws_bytes = 0;
        EXPECT_EQ(posattn_workspace_size(ctx, &D, dt, POSATTN_DTYPE_F32, &ws_bytes),
                  POSATTN_STATUS_SUCCESS)
            << posattn_context_last_message(ctx);
        pat_buf ws;
        EXPECT_EQ(pat_buf_alloc(&ws, ws_bytes ? ws_bytes : 1), 0);
        const posattn_status st = posattn_forward(ctx, &D, &tq, &tk, &tv, &to, part_lse.data(),
                                                  ws_bytes ? ws.data : nullptr, ws_bytes);
        pat_buf_free(&ws);
        EXPECT_EQ(st, POSATTN_STATUS_SUCCESS) << posattn_context_last_message(ctx);
        ++calls;
        // merge the partial state into rows [qoff, qoff + qn) of the accumulator
        md.seq_len = qn;
        posattn_attn_state s2[2];
        posattn_attn_state_init(&s2[1], part.data(), POSATTN_DTYPE_F32, part_lse.data(), qn, hq, d);
        posattn_attn_state_init(&s2[0], &me.acc[size_t(qoff) * hq * d], POSATTN_DTYPE_F32,
                                &me.acc_lse[size_t(qoff)], qn, hq, d);
        s2[0].lse_stride_head = me.n;  // the accumulator's lse is [hq][my tokens]
        s2[0].lse_stride_batch = int64_t(me.n) * hq;
        EXPECT_EQ(posattn_merge_states_inplace(ctx, &md, 2, s2), POSATTN_STATUS_SUCCESS)
            << posattn_context_last_message(ctx);
      }
    }
    // transport: every rank sends the K/V it holds to rank r + 1 (ncclSend / ncclRecv)
    for (int r = 0; r < N; ++r) R[size_t((r + 1) % N)].kv_next = R[size_t(r)].kv;
    for (rank_t &k : R) std::swap(k.kv, k.kv_next);
  }

  // gather in global order and check
  std::vector<double> out(n_out), lse(size_t(S) * hq);
  for (const rank_t &k : R)
    for (int i = 0; i < k.n; ++i) {
      const int t = k.tok[size_t(i)];
      for (int e = 0; e < hq * d; ++e) out[size_t(t) * hq * d + e] = k.acc[size_t(i) * hq * d + e];
      for (int h = 0; h < hq; ++h) lse[size_t(h) * S + t] = k.acc_lse[size_t(h) * k.n + i];
    }
  const pat_rule_result ro =
      pat_rule_check(out.data(), base.data(), gold.data(), int64_t(n_out), POSATTN_DTYPE_F32);
  const pat_rule_result rl =
      pat_rule_check(lse.data(), base_lse.data(), gold_lse.data(), int64_t(lse.size()), dt);
  if (want_match) {
    EXPECT_TRUE(ro.pass) << "out: max_err " << ro.max_err << " bound " << ro.bound << " nmse "
                         << ro.nmse << " nonfinite " << ro.bad_nonfinite;
    EXPECT_TRUE(rl.pass) << "lse: max_err " << rl.max_err << " bound " << rl.bound;
  } else {
    EXPECT_FALSE(ro.pass && rl.pass) << "expected a mismatch; out max_err " << ro.max_err;
  }
  pat_inputs_free(&in);
  return calls;
}

inline std::string pat_ring_name(const pat_ring_case &c) {
  static const char *pe[] = {"none", "rope", "alibi",     "fire",
                             "xpos", "t5",   "kerplelog", "kerplepower"};
  return std::string("N") + std::to_string(c.N) + "_S" + std::to_string(c.S) + "_" + pe[int(c.pe)] +
         (c.causal ? "_causal" : "_full") + (c.shard == PAT_ZIGZAG ? "_zigzag" : "_contiguous") +
         (c.docs ? "_docs" : "") + (c.dyn_ntk ? "_dynntk" : "");
}

// The grid: every PE, causal and not, both shardings, with and without documents, N = 2, 3, 4, 7
// (S = 4N + 3 tokens: uneven chunks). `half` (EMU, which is slower): one sharding per N, zig-zag
// for the odd N, contiguous for the even ones.
inline std::vector<pat_ring_case> pat_ring_grid(bool half = false) {
  std::vector<pat_ring_case> v;
  const posattn_pe_kind pes[] = {POSATTN_PE_NONE,       POSATTN_PE_ROPE,        POSATTN_PE_XPOS,
                                 POSATTN_PE_ALIBI,      POSATTN_PE_FIRE,        POSATTN_PE_T5,
                                 POSATTN_PE_KERPLE_LOG, POSATTN_PE_KERPLE_POWER};
  for (int N : {2, 3, 4, 7})
    for (posattn_pe_kind pe : pes)
      for (int causal : {0, 1})
        for (pat_shard sh : {PAT_CONTIGUOUS, PAT_ZIGZAG})
          for (int docs : {0, 1})
            if (!half || (sh == PAT_ZIGZAG) == (N % 2 == 1))
              v.push_back({N, 4 * N + 3, causal, pe, sh, docs, 0});
  for (int N : {2, 7}) v.push_back({N, 4 * N + 3, 1, POSATTN_PE_ROPE, PAT_ZIGZAG, 0, 1});
  return v;
}

#endif  // PA_RING_HPP
