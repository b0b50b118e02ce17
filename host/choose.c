/* choose.c -- the kernel chooser: the one function behind both dispatch (posattn_forward) and
 * posattn_supported(), so the two can never disagree. */
#include "internal.h"

posattn_status pa_workspace_too_big(size_t bytes, char *msg, size_t msg_size) {
  if (bytes != SIZE_MAX) return POSATTN_STATUS_SUCCESS;
  return pa_fail(msg, msg_size, POSATTN_STATUS_BAD_SIZE,
                 "the workspace of this problem does not fit in size_t: the sizes (lengths x heads "
                 "x head_dim) are too large");
}

posattn_status pa_choose(posattn_context *ctx, const pa_problem *p, pa_choice *choice) {
  choice->kernel = PA_KERNEL_NONE;
  choice->workspace_bytes = 0;
  switch (ctx->backend) {
    case POSATTN_BACKEND_REF:
      /* the reference serves every valid problem */
      choice->kernel = PA_KERNEL_REF;
      choice->workspace_bytes = pa_ref_workspace_size(p);
      return pa_workspace_too_big(choice->workspace_bytes, ctx->msg, PA_MSG_SIZE);
    case POSATTN_BACKEND_EMU:
      PA_TRY(pa_emu_supported(p, ctx->msg, PA_MSG_SIZE));
      choice->kernel = PA_KERNEL_EMU_SIMPLE;
      choice->workspace_bytes = pa_emu_workspace_size(p);
      return POSATTN_STATUS_SUCCESS;
    case POSATTN_BACKEND_CUDA:
#if defined(POSATTN_WITH_CUDA)
      PA_TRY(pa_cuda_choose(ctx->device, p, &choice->workspace_bytes, ctx->msg, PA_MSG_SIZE));
      choice->kernel = PA_KERNEL_CUDA_PREFILL;
      return POSATTN_STATUS_SUCCESS;
#else
      return pa_cuda_available(ctx->device, ctx->msg, PA_MSG_SIZE);
#endif
    case POSATTN_BACKEND_AUTO:
      break;
  }
  return PA_CTX_FAIL(ctx, POSATTN_STATUS_INTERNAL, "context holds backend %d, which has no kernels",
                     (int)ctx->backend);
}
