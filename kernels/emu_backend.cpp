// The EMU backend: posattn.h attention calls run the prefill kernels under the SIMT emulator.
// (Routed through the prefill chooser, kernels/prefill/dispatch.h, by engineer F1: the kernel
// choice, workspace layout, PE tables and output staging live there, shared with CUDA.)
#include "internal.h"
#include "prefill/dispatch.h"

extern "C" posattn_status pa_emu_supported(const pa_problem *p, char *msg, size_t msg_size) {
  if (p == nullptr) return POSATTN_STATUS_SUCCESS;  // the backend itself is always built
  pa_prefill_kernel kernel;
  size_t bytes;
  return pa_prefill_choose(p, 1, &kernel, &bytes, msg, msg_size);
}

extern "C" size_t pa_emu_workspace_size(const pa_problem *p) {
  pa_prefill_kernel kernel;
  size_t bytes = 0;
  return pa_prefill_choose(p, 1, &kernel, &bytes, nullptr, 0) == POSATTN_STATUS_SUCCESS ? bytes : 0;
}

extern "C" posattn_status pa_emu_forward(posattn_context *ctx, const pa_problem *p, void *ws,
                                         size_t ws_bytes) {
  return pa_prefill_emu_forward(ctx, p, ws, ws_bytes);
}
