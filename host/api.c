/* api.c -- the public entry points: initialisers, supported / workspace queries, forward.
 * Every call validates first (host/validate.c), then asks the chooser (host/choose.c), then runs
 * the chosen backend; nothing is written to the caller's outputs before all checks pass. */
#include <string.h>

#include "internal.h"

void posattn_pe_init(posattn_pe *pe) {
  if (pe == NULL) return;
  memset(pe, 0, sizeof *pe);
  pe->kind = POSATTN_PE_NONE;

  posattn_rope_params *r = &pe->rope;
  r->layout = POSATTN_ROPE_NEOX;
  r->rotary_dim = 0;
  r->base = 10000.0;
  r->scaling = POSATTN_ROPE_SCALING_NONE;
  r->factor = 1.0;
  r->original_max_position = 4096;
  r->max_position = 0;
  r->dynamic_seq_len = 0;
  r->beta_fast = 32.0;
  r->beta_slow = 1.0;
  r->yarn_truncate = 1;
  r->low_freq_factor = 1.0;
  r->high_freq_factor = 4.0;
  r->attention_factor = 0.0;
  r->angle_mode = POSATTN_ANGLE_FAST;

  pe->fire.mlp_width = 32;
  pe->fire.c = 0.1;
  pe->fire.L = 512.0;
  pe->fire.eps = 1e-6;

  pe->xpos.scale_base = 512.0;
  pe->xpos.gamma = 0.4;

  pe->t5.num_buckets = 32;
  pe->t5.max_distance = 128;
  pe->t5.bidirectional = 0;
}

void posattn_attention_desc_init(posattn_attention_desc *desc) {
  if (desc == NULL) return;
  memset(desc, 0, sizeof *desc);
  desc->window_left = -1;
  desc->window_right = -1;
  posattn_pe_init(&desc->pe);
}

void posattn_tensor_init_contiguous(posattn_tensor *t, void *data, posattn_dtype dtype,
                                    int32_t seq, int32_t heads, int32_t head_dim) {
  if (t == NULL) return;
  t->data = data;
  t->dtype = dtype;
  t->stride_head = head_dim;
  t->stride_seq = (int64_t)heads * head_dim;
  t->stride_batch = (int64_t)seq * heads * head_dim;
}

/* Validation of the descriptor alone, then the chooser. */
static posattn_status query(posattn_context *ctx, const posattn_attention_desc *desc,
                            posattn_dtype in_dtype, posattn_dtype out_dtype, pa_choice *choice) {
  pa_problem p;
  PA_TRY(pa_validate(ctx->msg, PA_MSG_SIZE, desc, in_dtype, out_dtype, NULL, NULL, NULL, NULL,
                     NULL, &p));
  PA_TRY(pa_choose(ctx, &p, choice));
  ctx->msg[0] = '\0';
  return POSATTN_STATUS_SUCCESS;
}

posattn_status posattn_supported(posattn_context *ctx, const posattn_attention_desc *desc,
                                 posattn_dtype in_dtype, posattn_dtype out_dtype) {
  if (ctx == NULL) return POSATTN_STATUS_NULL_POINTER;
  pa_ctx_enter(ctx);
  pa_choice choice;
  return query(ctx, desc, in_dtype, out_dtype, &choice);
}

posattn_status posattn_workspace_size(posattn_context *ctx, const posattn_attention_desc *desc,
                                      posattn_dtype in_dtype, posattn_dtype out_dtype,
                                      size_t *bytes) {
  if (ctx == NULL) return POSATTN_STATUS_NULL_POINTER;
  pa_ctx_enter(ctx);
  if (bytes == NULL) return PA_CTX_FAIL(ctx, POSATTN_STATUS_NULL_POINTER, "bytes is NULL");
  *bytes = 0;
  pa_choice choice;
  PA_TRY(query(ctx, desc, in_dtype, out_dtype, &choice));
  *bytes = choice.workspace_bytes;
  return POSATTN_STATUS_SUCCESS;
}

posattn_status posattn_forward(posattn_context *ctx, const posattn_attention_desc *desc,
                               const posattn_tensor *q, const posattn_tensor *k,
                               const posattn_tensor *v, const posattn_tensor *out, float *lse,
                               void *workspace, size_t workspace_bytes) {
  if (ctx == NULL) return POSATTN_STATUS_NULL_POINTER;
  pa_ctx_enter(ctx);
  PA_TRY(pa_require_tensors(ctx->msg, PA_MSG_SIZE, q, k, v, out));
  pa_problem p;
  PA_TRY(pa_validate(ctx->msg, PA_MSG_SIZE, desc, q->dtype, out->dtype, q, k, v, out, lse, &p));
  pa_choice choice;
  PA_TRY(pa_choose(ctx, &p, &choice));
  PA_TRY(pa_validate_workspace(ctx->msg, PA_MSG_SIZE, &p, workspace, workspace_bytes,
                               choice.workspace_bytes));
  switch (choice.kernel) {
    case PA_KERNEL_REF: PA_TRY(pa_ref_forward(ctx, &p, workspace, workspace_bytes)); break;
    case PA_KERNEL_EMU_SIMPLE: PA_TRY(pa_emu_forward(ctx, &p, workspace, workspace_bytes)); break;
    case PA_KERNEL_CUDA_PREFILL:
#if defined(POSATTN_WITH_CUDA)
      PA_TRY(pa_cuda_forward(ctx, &p, workspace, workspace_bytes));
      break;
#else
      return PA_CTX_FAIL(ctx, POSATTN_STATUS_INTERNAL, "the CUDA kernels were chosen in a build "
                         "without CUDA");
#endif
    case PA_KERNEL_NONE:
      return PA_CTX_FAIL(ctx, POSATTN_STATUS_INTERNAL, "the chooser returned no kernel");
  }
  ctx->msg[0] = '\0';
  return POSATTN_STATUS_SUCCESS;
}
