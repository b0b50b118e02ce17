/* merge.h -- internal interface of the state merge (posattn.h, "Merging partial attention
 * states"; issue 15), shared by host/merge.c (entry points, REF), host/validate.c (its rules),
 * kernels/merge/run.cpp (EMU) and kernels/merge/cuda_merge.cu (CUDA). C11, also valid C++. */
#ifndef POSATTN_MERGE_H
#define POSATTN_MERGE_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A validated merge: n input states and the output (out == &in[0] in place; out->lse may be NULL).
 */
typedef struct pa_merge_problem {
  const posattn_merge_desc *desc;
  int32_t n;
  const posattn_attn_state *in;
  const posattn_attn_state *out;
  int base2;
  /* elements spanned by each O and LSE (inputs 0..n-1, then out), for the emulator's checked
   * pointers */
  int64_t o_span[POSATTN_MERGE_MAX_STATES + 1], lse_span[POSATTN_MERGE_MAX_STATES + 1];
} pa_merge_problem;

/* Every rule of posattn_merge_states(_inplace); fills *p. in_place: out is in[0]. */
posattn_status pa_validate_merge(char *msg, size_t msg_size, const posattn_merge_desc *desc,
                                 int32_t n, const posattn_attn_state *in,
                                 const posattn_attn_state *out, int in_place, pa_merge_problem *p);

posattn_status pa_merge_emu(posattn_context *ctx, const pa_merge_problem *p);
#if defined(POSATTN_WITH_CUDA)
posattn_status pa_cuda_merge(posattn_context *ctx, const pa_merge_problem *p);
#endif

#ifdef __cplusplus
}
#endif
#endif /* POSATTN_MERGE_H */
