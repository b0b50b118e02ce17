/* ring_attention.c -- context-parallel (ring) prefill over N GPUs with NCCL and posattn.
 *
 * One process drives N GPUs (one NCCL communicator per GPU, ncclCommInitAll). The sequence of S
 * tokens is split ZIG-ZAG into 2N chunks: rank r holds chunks r and 2N-1-r of Q, K and V. Under
 * causal masking a rank's work is then the same for every rank (an early chunk, whose queries see
 * little, paired with a late one, whose queries see much); contiguous shards would leave rank 0
 * almost idle and rank N-1 with N times its work.
 *
 * Step k (k = 0 .. N-1): rank r holds the K/V of rank (r - k) mod N in buffer `cur`. On its
 * COMM stream it sends `cur` to rank r+1 and receives the next block from rank r-1 into `nxt`
 * (ncclSend / ncclRecv); at the same time, on its COMPUTE stream (the posattn context's stream),
 * it runs posattn_forward for each (query chunk, key chunk) pair that causality allows and merges
 * the partial state into its accumulator with posattn_merge_states_inplace. Events order the two
 * streams: the compute of step k waits for the receive of step k-1, and the receive of step k+1
 * (into the buffer the compute of step k reads) waits for that compute.
 *
 * Chunks are disjoint token ranges, so a causal (query chunk, key chunk) pair is one of three: keys
 * before the queries (non-causal call, all visible), the same chunk (causal call, q_len == kv_len:
 * bottom-right alignment is the diagonal), keys after (skipped). Every call passes the TRUE
 * position ids of its tokens, so RoPE, ALiBi, FIRE and T5 logits are exactly those of the
 * single-device problem. posattn reads position ids from HOST memory: each rank derives the
 * positions of the block it holds from the sharding (here positions are token indices); with
 * arbitrary positions, exchange them once on the host before the ring starts.
 *
 * At the end rank 0 also computes the whole problem alone and prints the largest difference.
 *
 * Build: docs/examples/CMakeLists.txt builds it when nccl.h and libnccl are found (the CUDA
 * toolkit's). Run: ./posattn_example_ring_attention [num_gpus] on a machine with >= 2 GPUs.
 * It has been COMPILED in CI only; it has not been run (no multi-GPU machine was available).
 * Its algorithm is checked without GPUs by the ring tests (tests/shim/pa_ring.hpp, REF and EMU). */
#include <cuda_runtime.h>
#include <math.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "posattn.h"

#define MAXG 16
#define CK(x)                                                                            \
  do {                                                                                   \
    cudaError_t e_ = (x);                                                                \
    if (e_ != cudaSuccess) {                                                             \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      exit(1);                                                                           \
    }                                                                                    \
  } while (0)
#define NK(x)                                                                            \
  do {                                                                                   \
    ncclResult_t e_ = (x);                                                               \
    if (e_ != ncclSuccess) {                                                             \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, ncclGetErrorString(e_)); \
      exit(1);                                                                           \
    }                                                                                    \
  } while (0)
#define PK(ctx, x)                                                                             \
  do {                                                                                         \
    posattn_status s_ = (x);                                                                   \
    if (s_ != POSATTN_STATUS_SUCCESS) {                                                        \
      fprintf(stderr, "%s:%d %s: %s: %s\n", __FILE__, __LINE__, #x, posattn_status_string(s_), \
              posattn_context_last_message(ctx));                                              \
      exit(1);                                                                                 \
    }                                                                                          \
  } while (0)

enum { HQ = 8, HKV = 2, D = 128 };
static const int S = 8192; /* tokens; each rank holds S / N */

typedef struct {
  int lo, hi;
} range;

typedef struct {
  posattn_context *ctx;
  cudaStream_t compute, comm;
  cudaEvent_t recvd, used;
  range chunk[2];
  int n;                  /* tokens held */
  uint16_t *q, *kv[2];    /* bf16: q [n, HQ, D]; kv[b] = k [n, HKV, D] then v [n, HKV, D] */
  float *acc, *acc_lse;   /* state: O [n, HQ, D] fp32, LSE [HQ][n] */
  float *part, *part_lse; /* one partial state */
  void *ws;
  size_t ws_bytes;
} rank_t;

static range chunk_of(int c, int N) {
  range r = {c * S / (2 * N), (c + 1) * S / (2 * N)};
  return r;
}

/* One (query chunk, key chunk) attention call on rank `me` plus its merge into the accumulator. */
static void block(rank_t *me, const rank_t *src, const uint16_t *kv, int qi, int ki) {
  const range qc = me->chunk[qi], kc = src->chunk[ki];
  const int before = kc.hi <= qc.lo, same = kc.lo == qc.lo;
  if (!before && !same) return; /* keys after the queries: nothing visible */
  const int qn = qc.hi - qc.lo, kn = kc.hi - kc.lo,
            qoff = qi ? me->chunk[0].hi - me->chunk[0].lo : 0;
  const int koff = ki ? src->chunk[0].hi - src->chunk[0].lo : 0;
  int32_t *qpos = malloc(sizeof(int32_t) * (size_t)(qn + kn)), *kpos = qpos + qn;
  for (int i = 0; i < qn; ++i) qpos[i] = qc.lo + i; /* true positions: global token index */
  for (int j = 0; j < kn; ++j) kpos[j] = kc.lo + j;
  posattn_attention_desc d;
  posattn_attention_desc_init(&d);
  d.batch = 1, d.q_heads = HQ, d.kv_heads = HKV, d.head_dim = D, d.q_len = qn, d.kv_len = kn;
  d.causal = same;
  d.q_positions = qpos, d.kv_positions = kpos;
  d.pe.kind = POSATTN_PE_ROPE; /* any PE: positions make it exact */
  posattn_tensor tq, tk, tv, to;
  posattn_tensor_init_contiguous(&tq, me->q + (size_t)qoff * HQ * D, POSATTN_DTYPE_BF16, qn, HQ, D);
  posattn_tensor_init_contiguous(&tk, (void *)(kv + (size_t)koff * HKV * D), POSATTN_DTYPE_BF16, kn,
                                 HKV, D);
  posattn_tensor_init_contiguous(&tv, (void *)(kv + (size_t)(src->n + koff) * HKV * D),
                                 POSATTN_DTYPE_BF16, kn, HKV, D);
  posattn_tensor_init_contiguous(&to, me->part, POSATTN_DTYPE_F32, qn, HQ, D);
  PK(me->ctx, posattn_forward(me->ctx, &d, &tq, &tk, &tv, &to, me->part_lse, me->ws, me->ws_bytes));
  free(qpos); /* host arrays may be reused as soon as the call returns */
  posattn_merge_desc md;
  posattn_merge_desc_init(&md);
  md.batch = 1, md.seq_len = qn, md.heads = HQ, md.head_dim = D;
  posattn_attn_state st[2];
  posattn_attn_state_init(&st[0], me->acc + (size_t)qoff * HQ * D, POSATTN_DTYPE_F32,
                          me->acc_lse + qoff, qn, HQ, D);
  st[0].lse_stride_head = me->n; /* the accumulator's LSE is [HQ][n] */
  posattn_attn_state_init(&st[1], me->part, POSATTN_DTYPE_F32, me->part_lse, qn, HQ, D);
  PK(me->ctx, posattn_merge_states_inplace(me->ctx, &md, 2, st));
}

static uint16_t f32_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

int main(int argc, char **argv) {
  int N = 0;
  CK(cudaGetDeviceCount(&N));
  if (argc > 1) N = atoi(argv[1]);
  if (N < 2 || N > MAXG) {
    fprintf(stderr, "needs 2..%d GPUs (found/asked %d)\n", MAXG, N);
    return 2;
  }
  /* global inputs on the host (a real server already holds its shard on its GPU) */
  const size_t qe = (size_t)S * HQ * D, ke = (size_t)S * HKV * D;
  uint16_t *hq = malloc(2 * qe), *hk = malloc(2 * ke), *hv = malloc(2 * ke);
  srand(15);
  for (size_t i = 0; i < qe; ++i) hq[i] = f32_to_bf16((float)rand() / RAND_MAX - 0.5f);
  for (size_t i = 0; i < ke; ++i)
    hk[i] = f32_to_bf16((float)rand() / RAND_MAX - 0.5f),
    hv[i] = f32_to_bf16((float)rand() / RAND_MAX - 0.5f);

  int devs[MAXG];
  ncclComm_t comm[MAXG];
  rank_t R[MAXG];
  for (int r = 0; r < N; ++r) devs[r] = r;
  NK(ncclCommInitAll(comm, N, devs));
  for (int r = 0; r < N; ++r) {
    rank_t *me = &R[r];
    memset(me, 0, sizeof *me);
    me->chunk[0] = chunk_of(r, N), me->chunk[1] = chunk_of(2 * N - 1 - r, N);
    me->n = (me->chunk[0].hi - me->chunk[0].lo) + (me->chunk[1].hi - me->chunk[1].lo);
    CK(cudaSetDevice(r));
    CK(cudaStreamCreateWithFlags(&me->compute, cudaStreamNonBlocking));
    CK(cudaStreamCreateWithFlags(&me->comm, cudaStreamNonBlocking));
    CK(cudaEventCreateWithFlags(&me->recvd, cudaEventDisableTiming));
    CK(cudaEventCreateWithFlags(&me->used, cudaEventDisableTiming));
    PK(NULL, posattn_context_create(POSATTN_BACKEND_CUDA, r, &me->ctx));
    PK(me->ctx, posattn_context_set_stream(me->ctx, me->compute));
    const size_t cap = (size_t)(S / N + 2); /* the largest shard */
    CK(cudaMalloc((void **)&me->q, cap * HQ * D * 2));
    for (int b = 0; b < 2; ++b) CK(cudaMalloc((void **)&me->kv[b], 2 * cap * HKV * D * 2));
    CK(cudaMalloc((void **)&me->acc, cap * HQ * D * 4));
    CK(cudaMalloc((void **)&me->acc_lse, cap * HQ * 4));
    CK(cudaMalloc((void **)&me->part, cap * HQ * D * 4));
    CK(cudaMalloc((void **)&me->part_lse, cap * HQ * 4));
    /* workspace for the largest call: the most tokens, the largest positions (the position ids
     * and the PE tables they need are staged in the workspace) */
    int32_t *maxpos = malloc(sizeof(int32_t) * cap);
    for (size_t i = 0; i < cap; ++i) maxpos[i] = S - 1;
    posattn_attention_desc d;
    posattn_attention_desc_init(&d);
    d.batch = 1, d.q_heads = HQ, d.kv_heads = HKV, d.head_dim = D, d.q_len = d.kv_len = (int)cap;
    d.q_positions = d.kv_positions = maxpos;
    d.pe.kind = POSATTN_PE_ROPE;
    PK(me->ctx,
       posattn_workspace_size(me->ctx, &d, POSATTN_DTYPE_BF16, POSATTN_DTYPE_F32, &me->ws_bytes));
    free(maxpos);
    if (me->ws_bytes) CK(cudaMalloc(&me->ws, me->ws_bytes));
    /* the shard: chunk 0 then chunk 1; accumulator empty (LSE -inf: 0xff800000) */
    int at = 0;
    for (int c = 0; c < 2; ++c) {
      const int lo = me->chunk[c].lo, n = me->chunk[c].hi - lo;
      CK(cudaMemcpy(me->q + (size_t)at * HQ * D, hq + (size_t)lo * HQ * D, (size_t)n * HQ * D * 2,
                    cudaMemcpyHostToDevice));
      CK(cudaMemcpy(me->kv[0] + (size_t)at * HKV * D, hk + (size_t)lo * HKV * D,
                    (size_t)n * HKV * D * 2, cudaMemcpyHostToDevice));
      CK(cudaMemcpy(me->kv[0] + (size_t)(me->n + at) * HKV * D, hv + (size_t)lo * HKV * D,
                    (size_t)n * HKV * D * 2, cudaMemcpyHostToDevice));
      at += n;
    }
    float *ninf = malloc(sizeof(float) * (size_t)me->n * HQ);
    for (int i = 0; i < me->n * HQ; ++i) ninf[i] = -INFINITY;
    CK(cudaMemcpy(me->acc_lse, ninf, sizeof(float) * (size_t)me->n * HQ, cudaMemcpyHostToDevice));
    free(ninf);
  }

  int cur = 0;
  for (int step = 0; step < N; ++step) {
    /* comm: rank r sends what it holds to r+1 and receives from r-1 (not after the last step) */
    if (step + 1 < N) {
      NK(ncclGroupStart());
      for (int r = 0; r < N; ++r) {
        rank_t *me = &R[r];
        const rank_t *from = &R[(r - step - 1 + 2 * N) % N], *held = &R[(r - step + N) % N];
        CK(cudaSetDevice(r));
        if (step > 0) CK(cudaStreamWaitEvent(me->comm, me->used, 0)); /* nxt was read by step-1 */
        NK(ncclSend(me->kv[cur], 2 * (size_t)held->n * HKV * D * 2, ncclUint8, (r + 1) % N, comm[r],
                    me->comm));
        NK(ncclRecv(me->kv[cur ^ 1], 2 * (size_t)from->n * HKV * D * 2, ncclUint8, (r - 1 + N) % N,
                    comm[r], me->comm));
      }
      NK(ncclGroupEnd());
    }
    /* compute on what is held now, overlapped with the transfer above */
    for (int r = 0; r < N; ++r) {
      rank_t *me = &R[r];
      CK(cudaSetDevice(r));
      if (step > 0) CK(cudaStreamWaitEvent(me->compute, me->recvd, 0));
      const rank_t *src = &R[(r - step + N) % N];
      for (int qi = 0; qi < 2; ++qi)
        for (int ki = 0; ki < 2; ++ki) block(me, src, me->kv[cur], qi, ki);
      CK(cudaEventRecord(me->used, me->compute));
      if (step + 1 < N) CK(cudaEventRecord(me->recvd, me->comm));
    }
    cur ^= 1;
  }

  /* check against the whole problem on GPU 0 */
  CK(cudaSetDevice(0));
  for (int r = 0; r < N; ++r) CK(cudaStreamSynchronize(R[r].compute));
  rank_t *z = &R[0];
  uint16_t *dq, *dk, *dv;
  float *dout, *ring_host = malloc(sizeof(float) * qe), *full_host = malloc(sizeof(float) * qe);
  CK(cudaMalloc((void **)&dq, 2 * qe));
  CK(cudaMalloc((void **)&dk, 2 * ke));
  CK(cudaMalloc((void **)&dv, 2 * ke));
  CK(cudaMalloc((void **)&dout, 4 * qe));
  CK(cudaMemcpy(dq, hq, 2 * qe, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dk, hk, 2 * ke, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dv, hv, 2 * ke, cudaMemcpyHostToDevice));
  posattn_attention_desc d;
  posattn_attention_desc_init(&d);
  d.batch = 1, d.q_heads = HQ, d.kv_heads = HKV, d.head_dim = D, d.q_len = d.kv_len = S;
  d.causal = 1, d.pe.kind = POSATTN_PE_ROPE;
  size_t wsb = 0;
  void *ws = NULL;
  PK(z->ctx, posattn_workspace_size(z->ctx, &d, POSATTN_DTYPE_BF16, POSATTN_DTYPE_F32, &wsb));
  if (wsb) CK(cudaMalloc(&ws, wsb));
  posattn_tensor tq, tk, tv, to;
  posattn_tensor_init_contiguous(&tq, dq, POSATTN_DTYPE_BF16, S, HQ, D);
  posattn_tensor_init_contiguous(&tk, dk, POSATTN_DTYPE_BF16, S, HKV, D);
  posattn_tensor_init_contiguous(&tv, dv, POSATTN_DTYPE_BF16, S, HKV, D);
  posattn_tensor_init_contiguous(&to, dout, POSATTN_DTYPE_F32, S, HQ, D);
  PK(z->ctx, posattn_forward(z->ctx, &d, &tq, &tk, &tv, &to, NULL, ws, wsb));
  CK(cudaStreamSynchronize(z->compute));
  CK(cudaMemcpy(full_host, dout, 4 * qe, cudaMemcpyDeviceToHost));
  for (int r = 0; r < N; ++r) {
    int at = 0;
    CK(cudaSetDevice(r));
    for (int c = 0; c < 2; ++c) {
      const int lo = R[r].chunk[c].lo, n = R[r].chunk[c].hi - lo;
      CK(cudaMemcpy(ring_host + (size_t)lo * HQ * D, R[r].acc + (size_t)at * HQ * D,
                    (size_t)n * HQ * D * 4, cudaMemcpyDeviceToHost));
      at += n;
    }
  }
  double maxdiff = 0;
  for (size_t i = 0; i < qe; ++i)
    maxdiff = fmax(maxdiff, fabs((double)ring_host[i] - full_host[i]));
  printf("ring attention over %d GPUs, %d tokens: max |ring - single GPU| = %.3g\n", N, S, maxdiff);
  for (int r = 0; r < N; ++r) {
    CK(cudaSetDevice(r));
    posattn_context_destroy(R[r].ctx);
    ncclCommDestroy(comm[r]);
  }
  return maxdiff < 1e-3 ? 0 : 1;
}
