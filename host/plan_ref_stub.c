/* plan_ref_stub.c -- TEMPORARY: the REF hooks of the plan until host/ref_paged.c lands (the REF
 * helper deletes this file). */
#include "plan.h"

posattn_status pa_plan_ref_prepare(posattn_plan *plan, char *msg, size_t msg_size) {
  (void)plan;
  return pa_fail(msg, msg_size, POSATTN_STATUS_BACKEND_UNAVAILABLE, "REF plans are not built yet");
}
posattn_status pa_plan_ref_run(posattn_context *ctx, const posattn_plan *plan,
                               const posattn_run_args *a) {
  (void)plan, (void)a;
  return PA_CTX_FAIL(ctx, POSATTN_STATUS_BACKEND_UNAVAILABLE, "REF plans are not built yet");
}
posattn_status pa_plan_ref_append(posattn_context *ctx, const posattn_plan *plan,
                                  const posattn_append_args *a) {
  (void)plan, (void)a;
  return PA_CTX_FAIL(ctx, POSATTN_STATUS_BACKEND_UNAVAILABLE, "REF plans are not built yet");
}
