/* plan_emu_stub.c -- TEMPORARY: the EMU (and CUDA) hooks of the plan until kernels/paged/ lands
 * (the kernel helper deletes this file). */
#include "plan.h"

posattn_status pa_plan_emu_prepare(posattn_plan *plan, char *msg, size_t msg_size) {
  (void)plan;
  return pa_fail(msg, msg_size, POSATTN_STATUS_BACKEND_UNAVAILABLE, "EMU plans are not built yet");
}
void pa_plan_emu_release(posattn_plan *plan) { (void)plan; }
posattn_status pa_plan_emu_run(posattn_context *ctx, const posattn_plan *plan,
                               const posattn_run_args *a) {
  (void)plan, (void)a;
  return PA_CTX_FAIL(ctx, POSATTN_STATUS_BACKEND_UNAVAILABLE, "EMU plans are not built yet");
}
posattn_status pa_plan_emu_append(posattn_context *ctx, const posattn_plan *plan,
                                  const posattn_append_args *a) {
  (void)plan, (void)a;
  return PA_CTX_FAIL(ctx, POSATTN_STATUS_BACKEND_UNAVAILABLE, "EMU plans are not built yet");
}
#if defined(POSATTN_WITH_CUDA)
posattn_status pa_plan_cuda_prepare(posattn_plan *plan, char *msg, size_t msg_size) {
  (void)plan;
  return pa_fail(msg, msg_size, POSATTN_STATUS_BACKEND_UNAVAILABLE, "CUDA plans are not built yet");
}
void pa_plan_cuda_release(posattn_plan *plan) { (void)plan; }
posattn_status pa_plan_cuda_run(posattn_context *ctx, const posattn_plan *plan,
                                const posattn_run_args *a) {
  (void)plan, (void)a;
  return PA_CTX_FAIL(ctx, POSATTN_STATUS_BACKEND_UNAVAILABLE, "CUDA plans are not built yet");
}
posattn_status pa_plan_cuda_append(posattn_context *ctx, const posattn_plan *plan,
                                   const posattn_append_args *a) {
  (void)plan, (void)a;
  return PA_CTX_FAIL(ctx, POSATTN_STATUS_BACKEND_UNAVAILABLE, "CUDA plans are not built yet");
}
posattn_status pa_plan_cuda_read_error(posattn_context *ctx, const void *ws, pa_run_error *rec) {
  (void)ws, (void)rec;
  return PA_CTX_FAIL(ctx, POSATTN_STATUS_BACKEND_UNAVAILABLE, "CUDA plans are not built yet");
}
posattn_status pa_plan_cuda_clear_error(posattn_context *ctx, void *ws) {
  (void)ws;
  return PA_CTX_FAIL(ctx, POSATTN_STATUS_BACKEND_UNAVAILABLE, "CUDA plans are not built yet");
}
#endif
