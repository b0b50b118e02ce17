/* bench_cudnn.h -- the cuDNN SDPA baseline of posattn-bench (bench_cudnn.cpp, built only when
 * CMake found CUDA, cudnn.h and libcudnn): fused flash attention forward as a cuDNN backend-API
 * operation graph, timed by the harness's own timer (pb_gpu_time_launch). */
#ifndef POSATTN_BENCH_CUDNN_H
#define POSATTN_BENCH_CUDNN_H

#include <stddef.h>

#include "bench_gpu.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The cuDNN library's version at run time (cudnnGetVersion(), e.g. 91900). */
size_t pb_cudnn_version(void);

/* cuDNN SDPA forward on the problem: bf16/f16, dense [batch, len, heads, head_dim] tensors given
 * to cuDNN as strided [b, h, s, d]; softmax scale; no mask, causal (top-left when q_len ==
 * kv_len, else bottom-right, q_len <= kv_len) with an optional left window; GQA/MQA; ALiBi only
 * with causal self-attention (q_len == kv_len). Anything else, and any configuration for which
 * cuDNN's heuristics find no engine, answers PB_RUN_SKIP with the reason. out_host (may be
 * NULL) receives the output [total_q, q_heads, head_dim] in the problem's dtype. */
int pb_gpu_time_cudnn(const pb_problem *p, const pb_time_opts *o, pb_stats *st, void *out_host,
                      char *msg, size_t msg_size);

/* Builds and finalizes every operation descriptor of the graph pb_gpu_time_cudnn would run for
 * `p` (no handle, no device: the part of the graph cuDNN checks without a GPU) and reports how
 * many operations it has. PB_RUN_SKIP for problems the graph does not express. */
int pb_cudnn_check_ops(const pb_problem *p, int *n_ops, char *msg, size_t msg_size);

#ifdef __cplusplus
}
#endif
#endif
