/* bench_decode.h -- the decode op of posattn-bench: one paged-KV decode problem (every sequence
 * `context` tokens long, one query token, page size 16, pages laid out in a shuffled order) and
 * its timing on the CPU backends (bench_decode.c) and on the GPU (bench_decode_gpu.cu).
 *
 * FP8 caches (dtype FP8_E4M3 / E5M2): random codes with a per-tensor scale, q and out in bf16.
 * Counts: bytes = the KV cache read once (K and V of every cached token and kv head) + q read +
 * out written + the block-table entries of the pages read; FLOPs = 4*head_dim per (query, key)
 * pair per query head.
 * Combine share: the same call on EMPTY caches (cache_lens 0) with the split count forced to the
 * automatic one of the full problem runs the split kernel with no keys and the full combine step;
 * its time over the full call's bounds the combine step's share from above (it also holds the
 * split kernel's fixed cost). */
#ifndef POSATTN_BENCH_DECODE_H
#define POSATTN_BENCH_DECODE_H
#include <stddef.h>
#include <stdint.h>

#include "bench_core.h"
#include "posattn.h"
#ifdef __cplusplus
extern "C" {
#endif

enum { PB_DECODE_PAGE = 16 };

typedef struct pb_decode_problem {
  posattn_decode_desc desc;
  posattn_kv_cache cache; /* host pools (FP8: host scales, copied to the device for CUDA) */
  posattn_dtype dtype;    /* the cache's */
  posattn_dtype q_dtype;  /* q and out: the cache's, bf16 for FP8 caches */
  float scale;            /* FP8 caches: the per-tensor k and v scale */
  int32_t *lens, *empty_lens, *block_table;
  void *k_pages, *v_pages, *q;
  size_t pool_bytes, q_bytes;
  int32_t auto_splits; /* the library's automatic split count for a device of `sms` SMs */
  double flops, bytes;
} pb_decode_problem;

/* 0 on success; -1 with msg (allocation). sms: SM count for the combine-share split count. */
int pb_decode_build(pb_decode_problem *p, int batch, int context, int q_heads, int kv_heads,
                    int head_dim, int dtype, int pe, int sms, uint64_t seed, char *msg,
                    size_t msg_size);
void pb_decode_free(pb_decode_problem *p);

/* Times posattn_decode on a CPU backend; empty = the combine-share run. Returns PB_RUN_* (bench_gpu.h
 * values: 0 ok, 1 not supported, 2 error). */
int pb_cpu_time_decode(posattn_backend be, const pb_decode_problem *p, int empty,
                       const pb_time_opts *o, pb_stats *st, char *msg, size_t msg_size);
/* The same on the CUDA backend (bench_decode_gpu.cu, CUDA builds only). */
int pb_gpu_time_decode(const pb_decode_problem *p, int empty, const pb_time_opts *o, pb_stats *st,
                       char *msg, size_t msg_size);

#ifdef __cplusplus
}
#endif
#endif
