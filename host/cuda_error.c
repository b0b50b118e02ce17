/* cuda_error.c -- the one classifier of CUDA errors (host/internal.h, "CUDA errors as statuses").
 * Plain C on the integer value of a cudaError_t, so that it is part of every build and its tests
 * run without CUDA; the CUDA backend passes each failed call's code and text through here. */
#include "internal.h"

int pa_cuda_error_is_sticky(int code) {
#define PA_STICKY_CASE(name, value) case value:
  switch (code) {
    PA_CUDA_STICKY_ERRORS(PA_STICKY_CASE)
    return 1;
    default: return 0;
  }
#undef PA_STICKY_CASE
}

posattn_status pa_cuda_error_status(int code, posattn_status fallback) {
  if (pa_cuda_error_is_sticky(code)) return POSATTN_STATUS_DEVICE_LOST;
  if (code == PA_CUDA_ERROR_MEMORY_ALLOCATION) return POSATTN_STATUS_ALLOC_FAILED;
  return fallback;
}

/* The sticky note comes before the CUDA text so that truncation never drops it. */
posattn_status pa_cuda_error_report(char *msg, size_t msg_size, int code, posattn_status fallback,
                                    int pending, const char *what, const char *detail) {
  const posattn_status st = pa_cuda_error_status(code, fallback);
  const char *sticky = st == POSATTN_STATUS_DEVICE_LOST
                           ? "sticky CUDA error, the device's CUDA context is unusable until the "
                             "process restarts"
                           : NULL;
  if (detail == NULL) detail = "(no CUDA error text)";
  if (pending)
    return pa_fail(msg, msg_size, st,
                   "CUDA backend, %s: an earlier CUDA error is pending, not caused by this call "
                   "(nothing was done)%s%s: %s (CUDA error %d)",
                   what, sticky ? "; " : "", sticky ? sticky : "", detail, code);
  if (sticky)
    return pa_fail(msg, msg_size, st,
                   "CUDA backend: %s: %s (an earlier kernel, posattn's or the application's, may "
                   "have caused it): %s (CUDA error %d)",
                   what, sticky, detail, code);
  return pa_fail(msg, msg_size, st, "CUDA backend: %s: %s (CUDA error %d)", what, detail, code);
}
