/* bench_decode.c -- the decode problem of posattn-bench and its CPU timing (bench_decode.h). */
#define _POSIX_C_SOURCE 200809L
#include "bench_decode.h"

#include "decode.h" /* pa_validate_decode + pa_decode_choose: the library's own split count */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double wall_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t mix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Random 16-bit values in [-1, 1): bf16 / f16 bit patterns of small uniform floats. */
static void fill16(uint16_t *a, size_t n, int dtype, uint64_t *s) {
  for (size_t i = 0; i < n; ++i) {
    const float f = (float)((int)(mix(s) % 511) - 255) / 256.0f;
    uint32_t u;
    memcpy(&u, &f, 4);
    if (dtype == POSATTN_DTYPE_BF16) {
      a[i] = (uint16_t)(u >> 16);
    } else { /* f16 of |f| < 1: exponent rebias, mantissa truncated */
      const uint32_t sign = (u >> 16) & 0x8000u, e = (u >> 23) & 0xffu, m = u & 0x7fffffu;
      a[i] = (uint16_t)(e < 113 ? sign : sign | ((e - 112) << 10) | (m >> 13));
    }
  }
}

/* Random FP8 codes of values in [-1, 1) (the library's rounding, host/dtype.c). */
static void fill8(uint8_t *a, size_t n, int dtype, uint64_t *s) {
  for (size_t i = 0; i < n; ++i)
    a[i] = pa_f64_to_fp8(dtype == POSATTN_DTYPE_FP8_E5M2, (double)((int)(mix(s) % 511) - 255) / 256.0);
}

int pb_decode_build(pb_decode_problem *p, int batch, int context, int q_heads, int kv_heads,
                    int head_dim, int dtype, int pe, int sms, uint64_t seed, char *msg,
                    size_t msg_size) {
  memset(p, 0, sizeof *p);
  const int pages_per_seq = (context + PB_DECODE_PAGE - 1) / PB_DECODE_PAGE;
  const int64_t pages = (int64_t)batch * pages_per_seq;
  const size_t es = posattn_dtype_size((posattn_dtype)dtype);
  const int fp8 = dtype == POSATTN_DTYPE_FP8_E4M3 || dtype == POSATTN_DTYPE_FP8_E5M2;
  p->dtype = (posattn_dtype)dtype;
  p->q_dtype = fp8 ? POSATTN_DTYPE_BF16 : p->dtype;
  p->scale = 1.0f;
  p->pool_bytes = (size_t)pages * PB_DECODE_PAGE * (size_t)kv_heads * (size_t)head_dim * es;
  p->q_bytes = (size_t)batch * (size_t)q_heads * (size_t)head_dim * posattn_dtype_size(p->q_dtype);
  p->lens = malloc((size_t)batch * sizeof *p->lens);
  p->empty_lens = calloc((size_t)batch, sizeof *p->empty_lens);
  p->block_table = malloc((size_t)pages * sizeof *p->block_table);
  p->k_pages = malloc(p->pool_bytes);
  p->v_pages = malloc(p->pool_bytes);
  p->q = malloc(p->q_bytes);
  if (!p->lens || !p->empty_lens || !p->block_table || !p->k_pages || !p->v_pages || !p->q) {
    snprintf(msg, msg_size, "host allocation of %.1f GiB failed",
             2.0 * (double)p->pool_bytes / 1073741824.0);
    pb_decode_free(p);
    return -1;
  }
  uint64_t s = seed;
  /* pages in a shuffled order, as a server's allocator leaves them */
  for (int64_t i = 0; i < pages; ++i) p->block_table[i] = (int32_t)i;
  for (int64_t i = pages - 1; i > 0; --i) {
    const int64_t j = (int64_t)(mix(&s) % (uint64_t)(i + 1));
    const int32_t t = p->block_table[i];
    p->block_table[i] = p->block_table[j];
    p->block_table[j] = t;
  }
  for (int b = 0; b < batch; ++b) p->lens[b] = context;
  if (fp8) {
    fill8(p->k_pages, p->pool_bytes, dtype, &s);
    fill8(p->v_pages, p->pool_bytes, dtype, &s);
  } else {
    fill16(p->k_pages, p->pool_bytes / 2, dtype, &s);
    fill16(p->v_pages, p->pool_bytes / 2, dtype, &s);
  }
  fill16(p->q, p->q_bytes / 2, p->q_dtype, &s);
  posattn_kv_cache_init(&p->cache, p->k_pages, p->v_pages, (posattn_dtype)dtype, (int32_t)pages,
                        PB_DECODE_PAGE, kv_heads, head_dim);
  if (fp8) p->cache.k_scale = p->cache.v_scale = &p->scale;
  p->cache.k_rotated = 0; /* RoPE rows rotate K in the kernel: the harder case */
  posattn_decode_desc_init(&p->desc);
  p->desc.batch = batch;
  p->desc.q_heads = q_heads;
  p->desc.head_dim = head_dim;
  p->desc.num_q_tokens = 1;
  p->desc.cache_lens = p->lens;
  p->desc.block_table = p->block_table;
  p->desc.max_pages_per_seq = pages_per_seq;
  p->desc.pe.kind = (posattn_pe_kind)pe;
  /* The split count the library's chooser picks for this problem on `sms` SMs: per kernel
   * (kernels/decode/plan.h: decode_mma's blocks hold a whole GQA group, decode_split's 16 rows).
   * A problem the chooser refuses keeps the decode_split count; its run reports why. */
  pa_decode_problem prob;
  size_t ws_bytes = 0;
  posattn_status st = pa_validate_decode(msg, msg_size, &p->desc, &p->cache, p->q_dtype,
                                         p->q_dtype, NULL, NULL, NULL, &prob);
  if (st == POSATTN_STATUS_SUCCESS)
    st = pa_decode_choose(&prob, 0, sms, &p->auto_splits, &ws_bytes, msg, msg_size);
  if (st != POSATTN_STATUS_SUCCESS) {
    p->auto_splits = pa_decode_auto_splits(batch, kv_heads, q_heads / kv_heads, context, sms);
    if (msg_size > 0) msg[0] = '\0';
  }
  p->flops = pb_flops((int64_t)batch * context, q_heads, head_dim);
  p->bytes = 2.0 * (double)batch * context * kv_heads * head_dim * (double)es /* K and V */
             + 2.0 * (double)p->q_bytes                                    /* q, out */
             + 4.0 * (double)batch * pages_per_seq;                         /* block table */
  return 0;
}

void pb_decode_free(pb_decode_problem *p) {
  free(p->lens);
  free(p->empty_lens);
  free(p->block_table);
  free(p->k_pages);
  free(p->v_pages);
  free(p->q);
  memset(p, 0, sizeof *p);
}

int pb_cpu_time_decode(posattn_backend be, const pb_decode_problem *p, int empty,
                       const pb_time_opts *o, pb_stats *st, char *msg, size_t msg_size) {
  posattn_context *ctx = NULL;
  posattn_status rc = posattn_context_create(be, 0, &ctx);
  if (rc != POSATTN_STATUS_SUCCESS) {
    snprintf(msg, msg_size, "context: %s", posattn_status_string(rc));
    return 2;
  }
  int result = 2;
  void *out = NULL, *ws = NULL;
  double *t = NULL;
  posattn_decode_desc desc = p->desc;
  if (empty) {
    desc.cache_lens = p->empty_lens;
    desc.num_splits = p->auto_splits;
  }
  size_t wsb = 0;
  rc = posattn_decode_workspace_size(ctx, &desc, &p->cache, p->q_dtype, p->q_dtype, &wsb);
  if (rc != POSATTN_STATUS_SUCCESS) {
    snprintf(msg, msg_size, "%s", posattn_context_last_message(ctx));
    result = rc == POSATTN_STATUS_NOT_SUPPORTED ? 1 : 2;
    goto done;
  }
  out = malloc(p->q_bytes);
  ws = wsb ? aligned_alloc(256, (wsb + 255) / 256 * 256) : NULL;
  t = malloc((size_t)o->max_samples * sizeof *t);
  if (!out || (wsb && !ws) || !t) {
    snprintf(msg, msg_size, "host allocation failed");
    goto done;
  }
  posattn_tensor tq, to;
  posattn_tensor_init_contiguous(&tq, p->q, p->q_dtype, 1, desc.q_heads, desc.head_dim);
  posattn_tensor_init_contiguous(&to, out, p->q_dtype, 1, desc.q_heads, desc.head_dim);
  const double w0 = wall_s();
  do {
    rc = posattn_decode(ctx, &desc, &p->cache, &tq, &to, NULL, ws, wsb);
    if (rc != POSATTN_STATUS_SUCCESS) {
      snprintf(msg, msg_size, "%s: %s", posattn_status_string(rc), posattn_context_last_message(ctx));
      goto done;
    }
  } while (wall_s() - w0 < o->warmup_seconds);
  int n = 0, conv = 0;
  const double t0 = wall_s();
  for (;;) {
    const double a = wall_s();
    posattn_decode(ctx, &desc, &p->cache, &tq, &to, NULL, ws, wsb);
    t[n++] = (wall_s() - a) * 1e3;
    if (pb_should_stop(t, n, wall_s() - t0, o, &conv)) break;
  }
  pb_stats_compute(t, n, st);
  st->converged = conv;
  result = 0;
done:
  free(t);
  free(out);
  free(ws);
  posattn_context_destroy(ctx);
  return result;
}
