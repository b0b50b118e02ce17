/* status.c -- status codes, error messages, version and backend names. */
#include <stdio.h>

#include "internal.h"

posattn_status pa_vfail(char *buf, size_t size, posattn_status st, const char *fmt, va_list ap) {
  if (buf != NULL && size > 0) vsnprintf(buf, size, fmt, ap);
  return st;
}

posattn_status pa_fail(char *buf, size_t size, posattn_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  pa_vfail(buf, size, st, fmt, ap);
  va_end(ap);
  return st;
}

const char *posattn_status_string(posattn_status status) {
  switch (status) {
    case POSATTN_STATUS_SUCCESS: return "POSATTN_STATUS_SUCCESS";
    case POSATTN_STATUS_INVALID_ARGUMENT: return "POSATTN_STATUS_INVALID_ARGUMENT";
    case POSATTN_STATUS_NULL_POINTER: return "POSATTN_STATUS_NULL_POINTER";
    case POSATTN_STATUS_BAD_SIZE: return "POSATTN_STATUS_BAD_SIZE";
    case POSATTN_STATUS_BAD_STRIDE: return "POSATTN_STATUS_BAD_STRIDE";
    case POSATTN_STATUS_BAD_SEQLENS: return "POSATTN_STATUS_BAD_SEQLENS";
    case POSATTN_STATUS_BAD_POSITIONS: return "POSATTN_STATUS_BAD_POSITIONS";
    case POSATTN_STATUS_BAD_MASK: return "POSATTN_STATUS_BAD_MASK";
    case POSATTN_STATUS_BAD_ENUM: return "POSATTN_STATUS_BAD_ENUM";
    case POSATTN_STATUS_BAD_PE_PARAMS: return "POSATTN_STATUS_BAD_PE_PARAMS";
    case POSATTN_STATUS_BAD_DTYPE: return "POSATTN_STATUS_BAD_DTYPE";
    case POSATTN_STATUS_WORKSPACE_TOO_SMALL: return "POSATTN_STATUS_WORKSPACE_TOO_SMALL";
    case POSATTN_STATUS_BAD_ALIGNMENT: return "POSATTN_STATUS_BAD_ALIGNMENT";
    case POSATTN_STATUS_NOT_SUPPORTED: return "POSATTN_STATUS_NOT_SUPPORTED";
    case POSATTN_STATUS_BACKEND_UNAVAILABLE: return "POSATTN_STATUS_BACKEND_UNAVAILABLE";
    case POSATTN_STATUS_DEVICE_ERROR: return "POSATTN_STATUS_DEVICE_ERROR";
    case POSATTN_STATUS_NO_DEVICE: return "POSATTN_STATUS_NO_DEVICE";
    case POSATTN_STATUS_KERNEL_FAULT: return "POSATTN_STATUS_KERNEL_FAULT";
    case POSATTN_STATUS_DEVICE_LOST: return "POSATTN_STATUS_DEVICE_LOST";
    case POSATTN_STATUS_ALLOC_FAILED: return "POSATTN_STATUS_ALLOC_FAILED";
    case POSATTN_STATUS_INTERNAL: return "POSATTN_STATUS_INTERNAL";
  }
  return "unknown status";
}

int posattn_status_group(posattn_status status) {
  int s = (int)status;
  /* round toward minus infinity so that an (invalid) negative code never lands in group 0 */
  return s >= 0 ? s / 100 * 100 : -((-s + 99) / 100 * 100);
}

#define PA_STR_(x) #x
#define PA_STR(x) PA_STR_(x)

int posattn_version(void) { return POSATTN_VERSION; }

const char *posattn_version_string(void) {
  return PA_STR(POSATTN_VERSION_MAJOR) "." PA_STR(POSATTN_VERSION_MINOR) "." PA_STR(
      POSATTN_VERSION_PATCH);
}

const char *posattn_backend_string(posattn_backend backend) {
  switch (backend) {
    case POSATTN_BACKEND_AUTO: return "auto";
    case POSATTN_BACKEND_REF: return "ref";
    case POSATTN_BACKEND_EMU: return "emu";
    case POSATTN_BACKEND_CUDA: return "cuda";
  }
  return "unknown";
}
