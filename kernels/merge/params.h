/* params.h -- the parameter block of the state-merge kernel (merge.cuh), filled on the host in
 * one place (kernels/merge/run.h) for EMU and CUDA. Passed by value: the per-state pointers and
 * strides travel in the kernel parameters, so a launch reads no host memory and needs no copy
 * (graph capture). Strides are in elements; LSEs are fp32. */
#ifndef POSATTN_MERGE_PARAMS_H
#define POSATTN_MERGE_PARAMS_H

#include <stdint.h>

#include "posattn.h"
#include "prefill/params.h" /* PA_PF_PTR */

typedef struct pa_merge_state {
  PA_PF_PTR(const unsigned char) o; /* [batch, seq, heads, d] of dtype */
  PA_PF_PTR(const float) lse;
  int64_t o_sb, o_ss, o_sh;
  int64_t l_sb, l_ss, l_sh;
  int32_t dtype; /* posattn_dtype */
} pa_merge_state;

typedef struct pa_merge_params {
  pa_merge_state in[POSATTN_MERGE_MAX_STATES];
  int32_t num_states;
  PA_PF_PTR(unsigned char) out; /* may be in[0].o (in place) */
  PA_PF_PTR(float) out_lse;     /* NULL = not written; may be in[0].lse */
  int64_t o_sb, o_ss, o_sh, l_sb, l_ss, l_sh;
  int32_t out_dtype;
  int32_t batch, seq, heads, d;
  int32_t base2; /* LSEs in base 2 */
} pa_merge_params;

#endif /* POSATTN_MERGE_PARAMS_H */
