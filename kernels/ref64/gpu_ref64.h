/* gpu_ref64.h -- the fp64 attention reference on a GPU, built on cuBLAS (issue 6, item 2d).
 *
 * The REF backend defines correct but runs on the CPU; a 128k-token precision study needs fp64
 * answers at GPU speed, not another low-precision kernel. This computes what REF computes, in
 * fp64 throughout: inputs widened exactly, RoPE/xPos applied in fp64 with exact angles (the
 * product p*inv_freq split into hi + lo, as host/pe_rope.c does), S = Q'K'^T with cublasDgemm
 * (strided-batched over the query heads of one kv head), scale, softcap, bias (ALiBi, FIRE through
 * its MLP, T5, KERPLE), the header's mask, a two-pass row softmax, O = P V with cublasDgemm, and
 * the natural-log LSE. Query rows go in chunks sized so that the fp64 logits of a chunk fit in
 * half the free device memory, so 128k x 128k fits.
 *
 * Not part of the library: a separate nvcc object linked into posattn-drift and the GPU test.
 * Synchronous; allocates its own device scratch (a study tool, not a hot path). Never prints.
 * Status: compiled, not GPU-verified (docs/precision.md). */
#ifndef POSATTN_GPU_REF64_H
#define POSATTN_GPU_REF64_H

#include <stddef.h>
#include <stdint.h>

#include "posattn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Attention of `desc` (validated as posattn_forward would) on q, k, v in DEVICE memory of
 * `device` (any input dtype). Writes out: device fp64 [total_q][q_heads][head_dim] in token order
 * (dense: b*q_len + i), and lse (device fp64, NULL = not wanted) at posattn_forward's lse
 * positions ([batch][q_heads][q_len], varlen [q_heads][total_q]). Sink logits enter the sum as
 * in REF. A row with no visible key gets out 0 and lse -inf (its sink with sink_logits). Errors:
 * the 1xx of validation, NO_DEVICE / DEVICE_ERROR (with the CUDA or cuBLAS error), ALLOC_FAILED,
 * NOT_SUPPORTED (xPos whose position span would overflow the fp64 split of the decay: more than
 * ~280k positions at scale_base 512, gamma 0.4). */
posattn_status pa_gpu_ref64_forward(const posattn_attention_desc *desc, const posattn_tensor *q,
                                    const posattn_tensor *k, const posattn_tensor *v, double *out,
                                    double *lse, int device, char *msg, size_t msg_size);

/* One query row against n keys, host in / host out, through pa_gpu_ref64_forward on device 0:
 * q[d] at position pq, K and V [n][d] (values as the kernel reads them, K un-rotated), key
 * positions pk[n], no mask. Writes out[d] and *lse. The fp64 answer of posattn-drift's experiment
 * b with --backend cuda (bench/drift/drift.h, pa_drift_opts.gold_row); `user` is unused. */
posattn_status pa_gpu_ref64_row(void *user, const posattn_pe *pe, const double *q, int32_t pq,
                                const double *K, const double *V, const int32_t *pk, int32_t n,
                                int32_t d, double *out, double *lse, char *msg, size_t msg_size);

/* The bias the GPU reference adds (the same __host__ __device__ code), run on the host: lets a
 * machine without a GPU check the port of pa_pe_bias_eval against posattn_pe_bias. pe must be
 * valid for q_heads. ALLOC_FAILED is the only error. */
posattn_status pa_gpu_ref64_bias_host(const posattn_pe *pe, int32_t q_heads, int32_t head,
                                      int64_t pq, int64_t pk, double *out);

#ifdef __cplusplus
}
#endif
#endif /* POSATTN_GPU_REF64_H */
