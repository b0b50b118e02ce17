/* bench_gpu.h -- the GPU half of posattn-bench (bench_gpu.cu, built only when CMake found nvcc):
 * device probe, measured ceilings, event timing with an L2 flush before every repetition, and the
 * cuBLAS unfused-attention baseline. A C interface so that the CLI stays plain C. */
#ifndef POSATTN_BENCH_GPU_H
#define POSATTN_BENCH_GPU_H

#include <stddef.h>
#include <stdint.h>

#include "bench_core.h"
#include "posattn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One benchmark problem as the host built it: the descriptor (its host arrays: cu_seqlens,
 * doc_ids, PE parameters), the dtype of q/k/v/out and the host copies of q, k, v. */
typedef struct pb_problem {
  posattn_attention_desc desc;
  posattn_dtype dtype;
  int64_t total_q, total_kv; /* tokens over all sequences */
  const void *q, *k, *v;     /* host data: [total_q|total_kv, heads, head_dim], contiguous */
} pb_problem;

typedef struct pb_gpu_info {
  char name[256];
  int cc_major, cc_minor;
  int driver_version, runtime_version; /* CUDA encoding, e.g. 13000 */
  int cublas_version;
  int64_t l2_bytes;
  int sms; /* streaming multiprocessors (the decode op's split count) */
  double mem_gib;
} pb_gpu_info;

enum { PB_RUN_OK = 0, PB_RUN_SKIP = 1, PB_RUN_ERROR = 2 };

/* 1 when a usable GPU is present (info filled), 0 with the reason in `why`. */
int pb_gpu_probe(pb_gpu_info *info, char *why, size_t why_size);

/* Ceilings, each timed like a kernel: device-to-device cudaMemcpy (bytes = read + write) and a
 * cuBLAS bf16 GEMM (bf16 in/out, fp32 accumulation). Returns PB_RUN_*. */
int pb_gpu_ceilings(const pb_time_opts *o, pb_stats *copy, double *copy_bytes, pb_stats *gemm,
                    double *gemm_flops, char *msg, size_t msg_size);

/* posattn_forward on the CUDA backend. out_host (may be NULL): receives the output
 * [total_q, q_heads, head_dim] in the problem's dtype, for the cross-check. */
int pb_gpu_time_posattn(const pb_problem *p, const pb_time_opts *o, pb_stats *st, void *out_host,
                        char *msg, size_t msg_size);

/* The unfused baseline: [RoPE kernel] -> QK^T GEMM (fp32 scores) -> softmax kernel with scale,
 * softcap, ALiBi bias and the mask -> PV GEMM. PE methods other than none/rope/alibi and varlen
 * answer PB_RUN_SKIP with the reason. */
int pb_gpu_time_cublas(const pb_problem *p, const pb_time_opts *o, pb_stats *st, void *out_host,
                       char *msg, size_t msg_size);

/* The same timer for contenders written in other files (bench_cudnn.cpp): a fresh rig, the L2
 * flush, warm-up and stopping rule above. launch(stream, user, msg, msg_size) enqueues ONE run of
 * the contender on `stream` (a cudaStream_t) and returns PB_RUN_*; when this returns PB_RUN_OK the
 * last run has finished. */
typedef int (*pb_gpu_launch_fn)(void *stream, void *user, char *msg, size_t msg_size);
int pb_gpu_time_launch(const pb_time_opts *o, pb_gpu_launch_fn launch, void *user, pb_stats *st,
                       char *msg, size_t msg_size);

#ifdef __cplusplus
}
#endif
#endif
