/* context.c -- contexts and backend availability. No global mutable state: everything a call
 * needs lives in the context or on the stack. */
#include <stdlib.h>

#include "internal.h"

static void clear_reason(char *why, size_t why_size) {
  if (why != NULL && why_size > 0) why[0] = '\0';
}

/* The one place that says whether the CUDA backend exists: in a CUDA build a probe of the driver
 * and the device (NO_DEVICE / DEVICE_ERROR naming the CUDA error), otherwise never. */
posattn_status pa_cuda_available(int device, char *why, size_t why_size) {
#if defined(POSATTN_WITH_CUDA)
  posattn_status st = pa_cuda_probe(device, why, why_size);
  if (st == POSATTN_STATUS_SUCCESS) clear_reason(why, why_size);
  return st;
#else
  (void)device;
  return pa_fail(why, why_size, POSATTN_STATUS_BACKEND_UNAVAILABLE,
                 "CUDA backend not built in (this build has no CUDA toolkit, or was configured "
                 "with POSATTN_ENABLE_CUDA=OFF)");
#endif
}

static int is_backend(posattn_backend b) {
  return b == POSATTN_BACKEND_AUTO || b == POSATTN_BACKEND_REF || b == POSATTN_BACKEND_EMU ||
         b == POSATTN_BACKEND_CUDA;
}

/* Checks one concrete backend (never AUTO) for `device`. */
static posattn_status concrete_available(posattn_backend backend, int device, char *why,
                                         size_t why_size) {
  switch (backend) {
    case POSATTN_BACKEND_REF: clear_reason(why, why_size); return POSATTN_STATUS_SUCCESS;
    case POSATTN_BACKEND_EMU: {
      posattn_status st = pa_emu_supported(NULL, why, why_size);
      if (st == POSATTN_STATUS_SUCCESS) clear_reason(why, why_size);
      return st;
    }
    case POSATTN_BACKEND_CUDA: return pa_cuda_available(device, why, why_size);
    default: break;
  }
  return pa_fail(why, why_size, POSATTN_STATUS_BAD_ENUM,
                 "backend (%d) is not a concrete posattn_backend value", (int)backend);
}

/* AUTO: CUDA when usable, else EMU when usable, else REF (always there). */
static posattn_backend resolve_auto(int device) {
  if (concrete_available(POSATTN_BACKEND_CUDA, device, NULL, 0) == POSATTN_STATUS_SUCCESS)
    return POSATTN_BACKEND_CUDA;
  if (concrete_available(POSATTN_BACKEND_EMU, device, NULL, 0) == POSATTN_STATUS_SUCCESS)
    return POSATTN_BACKEND_EMU;
  return POSATTN_BACKEND_REF;
}

posattn_status posattn_backend_available(posattn_backend backend, char *why, size_t why_size) {
  if (!is_backend(backend))
    return pa_fail(why, why_size, POSATTN_STATUS_BAD_ENUM,
                   "backend (%d) is not a posattn_backend value (AUTO=0, REF=1, EMU=2, CUDA=3)",
                   (int)backend);
  if (backend == POSATTN_BACKEND_AUTO) backend = resolve_auto(0);
  return concrete_available(backend, 0, why, why_size);
}

posattn_status posattn_context_create(posattn_backend backend, int device,
                                      posattn_context **out) {
  if (out == NULL) return POSATTN_STATUS_NULL_POINTER;
  *out = NULL;
  if (!is_backend(backend)) return POSATTN_STATUS_BAD_ENUM;
  if (device < 0) return POSATTN_STATUS_INVALID_ARGUMENT; /* on every backend (posattn.h) */
  if (backend == POSATTN_BACKEND_AUTO) backend = resolve_auto(device);
  PA_TRY(concrete_available(backend, device, NULL, 0));
  posattn_context *ctx = (posattn_context *)calloc(1, sizeof *ctx);
  if (ctx == NULL) return POSATTN_STATUS_ALLOC_FAILED;
  ctx->backend = backend;
  ctx->device = device;
  *out = ctx;
  return POSATTN_STATUS_SUCCESS;
}

void posattn_context_destroy(posattn_context *ctx) { free(ctx); }

posattn_backend posattn_context_backend(const posattn_context *ctx) {
  /* NULL is a caller bug; AUTO is never the backend of a real context, so it cannot be confused
   * with a valid answer. */
  return ctx ? ctx->backend : POSATTN_BACKEND_AUTO;
}

const char *posattn_context_last_message(const posattn_context *ctx) {
  return ctx ? ctx->msg : "context is NULL";
}

int posattn_context_last_device_error(const posattn_context *ctx) {
  /* the code belongs to the message: none after a success */
  return ctx && ctx->msg[0] != '\0' ? ctx->device_error : 0;
}

posattn_status posattn_context_set_stream(posattn_context *ctx, void *stream) {
  if (ctx == NULL) return POSATTN_STATUS_NULL_POINTER;
  pa_ctx_enter(ctx);
  if (ctx->backend != POSATTN_BACKEND_CUDA && stream != NULL)
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_INVALID_ARGUMENT,
                       "stream must be NULL on the %s backend (streams are CUDA only)",
                       posattn_backend_string(ctx->backend));
  ctx->stream = stream;
  ctx->msg[0] = '\0';
  return POSATTN_STATUS_SUCCESS;
}
