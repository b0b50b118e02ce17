// Placeholder until the emulator issue lands: EMU answers BACKEND_UNAVAILABLE through the chooser.
#include "internal.h"

extern "C" posattn_status pa_emu_supported(const pa_problem *, char *msg, size_t msg_size) {
  return pa_fail(msg, msg_size, POSATTN_STATUS_BACKEND_UNAVAILABLE,
                 "EMU backend: the SIMT emulator is not implemented yet");
}
extern "C" size_t pa_emu_workspace_size(const pa_problem *) { return 0; }
extern "C" posattn_status pa_emu_forward(posattn_context *ctx, const pa_problem *, void *, size_t) {
  return PA_CTX_FAIL(ctx, POSATTN_STATUS_BACKEND_UNAVAILABLE,
                     "EMU backend: the SIMT emulator is not implemented yet");
}
