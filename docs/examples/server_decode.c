/* server_decode.c -- how an inference server drives posattn: a paged KV cache in bf16, a prompt
 * prefilled with posattn_forward and appended to the cache, then token-by-token decode (append
 * the new token's K/V, decode its query). Every status is checked. RoPE is fused: the cache keeps
 * K un-rotated and the decode kernel rotates it from each token's position.
 *
 * As a check it recomputes every decode step with posattn_forward on the dense history and
 * exits non-zero on a mismatch (CI runs it: `server_decode emu` or `server_decode ref`).
 * Memory is host memory here because REF and EMU compute on the CPU; on the CUDA backend the
 * pools, q/k/v, out and workspaces would be cudaMalloc'ed and the index arrays stay on the host. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "posattn.h"

enum { HQ = 8, HKV = 2, D = 64, PAGE = 16, PAGES = 8, MAX_PAGES_PER_SEQ = 8, PROMPT = 37, STEPS = 5 };
#define TOKENS (PROMPT + STEPS)

#define CHECK(call)                                                                        \
  do {                                                                                     \
    posattn_status st_ = (call);                                                           \
    if (st_ != POSATTN_STATUS_SUCCESS) {                                                   \
      fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call,             \
              posattn_status_string(st_), posattn_context_last_message(ctx));              \
      exit(1);                                                                             \
    }                                                                                      \
  } while (0)

static float rnd(unsigned *s) { *s = *s * 1664525u + 1013904223u; return (float)(*s >> 8) / 8388608.f - 1.f; }

/* bf16 value nearest to x (round to nearest even), as a float: the reference keeps what the
 * cache stores. */
static float round_bf16(float x) {
  unsigned u;
  memcpy(&u, &x, 4);
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  memcpy(&x, &u, 4);
  return x;
}

static void *xalloc(size_t bytes) { /* 256-byte aligned, as posattn wants of workspaces */
  void *p = aligned_alloc(256, (bytes + 255) / 256 * 256 + 256);
  if (!p) { fprintf(stderr, "out of memory\n"); exit(1); }
  return p;
}

int main(int argc, char **argv) {
  posattn_backend backend = argc > 1 && strcmp(argv[1], "ref") == 0 ? POSATTN_BACKEND_REF : POSATTN_BACKEND_EMU;
  posattn_context *ctx = NULL;
  posattn_status st = posattn_context_create(backend, 0, &ctx);
  if (st != POSATTN_STATUS_SUCCESS) { fprintf(stderr, "context: %s\n", posattn_status_string(st)); return 1; }

  /* The positional encoding shared by prefill and decode. */
  posattn_pe pe;
  posattn_pe_init(&pe);
  pe.kind = POSATTN_PE_ROPE;
  pe.rope.base = 10000.0;

  /* Paged cache: one sequence here; its block table uses the pages in a scrambled order. */
  const size_t pool = (size_t)PAGES * PAGE * HKV * D;
  void *k_pages = xalloc(pool * 2), *v_pages = xalloc(pool * 2);
  posattn_kv_cache cache;
  posattn_kv_cache_init(&cache, k_pages, v_pages, POSATTN_DTYPE_BF16, PAGES, PAGE, HKV, D);
  cache.k_rotated = 0;
  int32_t block_table[MAX_PAGES_PER_SEQ] = {5, 2, 7, 0, 1, 3, 4, 6};
  int32_t cache_len = 0;

  /* The whole history in f32 (a server has only the new tokens; this is for the check). */
  float *q = xalloc(sizeof(float) * TOKENS * HQ * D), *k = xalloc(sizeof(float) * TOKENS * HKV * D),
        *v = xalloc(sizeof(float) * TOKENS * HKV * D);
  unsigned seed = 12345;
  for (int i = 0; i < TOKENS * HQ * D; i++) q[i] = round_bf16(rnd(&seed));
  for (int i = 0; i < TOKENS * HKV * D; i++) k[i] = round_bf16(rnd(&seed)), v[i] = round_bf16(rnd(&seed));

  /* 1. Prefill the prompt: causal attention over the prompt with posattn_forward. */
  posattn_attention_desc fd;
  posattn_attention_desc_init(&fd);
  fd.batch = 1; fd.q_heads = HQ; fd.kv_heads = HKV; fd.head_dim = D;
  fd.q_len = PROMPT; fd.kv_len = PROMPT; fd.causal = 1; fd.pe = pe;
  posattn_tensor tq, tk, tv, to;
  posattn_tensor_init_contiguous(&tq, q, POSATTN_DTYPE_F32, PROMPT, HQ, D);
  posattn_tensor_init_contiguous(&tk, k, POSATTN_DTYPE_F32, PROMPT, HKV, D);
  posattn_tensor_init_contiguous(&tv, v, POSATTN_DTYPE_F32, PROMPT, HKV, D);
  float *out = xalloc(sizeof(float) * TOKENS * HQ * D), *ref = xalloc(sizeof(float) * HQ * D);
  posattn_tensor_init_contiguous(&to, out, POSATTN_DTYPE_F32, PROMPT, HQ, D);
  size_t ws_bytes = 0;
  CHECK(posattn_workspace_size(ctx, &fd, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32, &ws_bytes));
  void *ws = ws_bytes ? xalloc(ws_bytes) : NULL;
  CHECK(posattn_forward(ctx, &fd, &tq, &tk, &tv, &to, NULL, ws, ws_bytes));
  free(ws);

  /* 2. Append the prompt's K/V to the cache (K stays un-rotated: k_rotated = 0). */
  posattn_cache_append_desc ad;
  posattn_cache_append_desc_init(&ad);
  ad.batch = 1; ad.num_tokens = PROMPT; ad.cache_lens = &cache_len;
  ad.block_table = block_table; ad.max_pages_per_seq = MAX_PAGES_PER_SEQ;
  CHECK(posattn_cache_append_workspace_size(ctx, &ad, &cache, POSATTN_DTYPE_F32, &ws_bytes));
  ws = ws_bytes ? xalloc(ws_bytes) : NULL;
  CHECK(posattn_cache_append(ctx, &ad, &cache, &tk, &tv, ws, ws_bytes));
  free(ws);
  cache_len = PROMPT;

  /* 3. Decode token by token. */
  posattn_decode_desc dd;
  posattn_decode_desc_init(&dd);
  dd.batch = 1; dd.q_heads = HQ; dd.head_dim = D; dd.num_q_tokens = 1;
  dd.cache_lens = &cache_len; dd.block_table = block_table; dd.max_pages_per_seq = MAX_PAGES_PER_SEQ;
  dd.causal = 1; dd.pe = pe;
  double worst = 0;
  for (int step = 0; step < STEPS; step++) {
    const int tok = PROMPT + step;
    /* append the new token's K/V at cache index cache_len (its position: the index) */
    ad.num_tokens = 1;
    posattn_tensor_init_contiguous(&tk, k + (size_t)tok * HKV * D, POSATTN_DTYPE_F32, 1, HKV, D);
    posattn_tensor_init_contiguous(&tv, v + (size_t)tok * HKV * D, POSATTN_DTYPE_F32, 1, HKV, D);
    CHECK(posattn_cache_append_workspace_size(ctx, &ad, &cache, POSATTN_DTYPE_F32, &ws_bytes));
    ws = ws_bytes ? xalloc(ws_bytes) : NULL;
    CHECK(posattn_cache_append(ctx, &ad, &cache, &tk, &tv, ws, ws_bytes));
    free(ws);
    cache_len++;

    /* decode the new token's query against the cache (it sees itself: appended first) */
    posattn_tensor_init_contiguous(&tq, q + (size_t)tok * HQ * D, POSATTN_DTYPE_F32, 1, HQ, D);
    posattn_tensor_init_contiguous(&to, out + (size_t)tok * HQ * D, POSATTN_DTYPE_F32, 1, HQ, D);
    CHECK(posattn_decode_workspace_size(ctx, &dd, &cache, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32, &ws_bytes));
    ws = ws_bytes ? xalloc(ws_bytes) : NULL;
    CHECK(posattn_decode(ctx, &dd, &cache, &tq, &to, NULL, ws, ws_bytes));
    free(ws);

    /* check: the same row by posattn_forward over the dense history */
    posattn_attention_desc_init(&fd);
    fd.batch = 1; fd.q_heads = HQ; fd.kv_heads = HKV; fd.head_dim = D;
    fd.q_len = 1; fd.kv_len = cache_len; fd.causal = 1; fd.pe = pe;
    posattn_tensor rk, rv, ro;
    posattn_tensor_init_contiguous(&rk, k, POSATTN_DTYPE_F32, cache_len, HKV, D);
    posattn_tensor_init_contiguous(&rv, v, POSATTN_DTYPE_F32, cache_len, HKV, D);
    posattn_tensor_init_contiguous(&ro, ref, POSATTN_DTYPE_F32, 1, HQ, D);
    CHECK(posattn_workspace_size(ctx, &fd, POSATTN_DTYPE_F32, POSATTN_DTYPE_F32, &ws_bytes));
    ws = ws_bytes ? xalloc(ws_bytes) : NULL;
    CHECK(posattn_forward(ctx, &fd, &tq, &rk, &rv, &ro, NULL, ws, ws_bytes));
    free(ws);
    double err = 0;
    for (int i = 0; i < HQ * D; i++) err = fmax(err, fabs((double)out[(size_t)tok * HQ * D + i] - ref[i]));
    printf("step %d: cache %d tokens, max |decode - prefill| = %.3g\n", step, cache_len, err);
    worst = fmax(worst, err);
  }
  free(q); free(k); free(v); free(out); free(ref); free(k_pages); free(v_pages);
  posattn_context_destroy(ctx);
  if (!(worst < 1e-4)) { fprintf(stderr, "decode disagrees with prefill (%.3g)\n", worst); return 1; }
  printf("server_decode on %s: decode matches prefill (max error %.3g)\n", backend == POSATTN_BACKEND_REF ? "REF" : "EMU", worst);
  return 0;
}
