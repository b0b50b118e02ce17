/* dispatch.h -- the one chooser of prefill kernels, shared by the EMU and CUDA backends.
 *
 * pa_prefill_choose() answers, for a validated problem, which kernel runs it (or NOT_SUPPORTED
 * with a message saying what is missing) and how much workspace it needs; posattn_supported(),
 * posattn_workspace_size() and posattn_forward() all go through it (via host/choose.c), so they
 * cannot disagree.
 *
 * Kernels:
 *   MMA   the tensor-core kernel (kernels/prefill/mma.cuh, FlashAttention-2 manner): bf16/fp16
 *         inputs, head dims 64/80/96/112/128/192/256, and whatever else mma::unfit() accepts.
 *         Compiled in when POSATTN_PREFILL_MMA is defined; it must then provide, in namespace
 *         pa_kernels::mma,
 *           const char *unfit(const pa_problem *p);   NULL when it serves p, else why not
 *           pa::launch_status launch(const pa_prefill_params &p, void *stream);
 *   WGMMA the sm_90a kernel (kernels/prefill/wgmma.cuh, FlashAttention-3 manner: TMA, mbarrier
 *         ring, warp specialisation, wgmma): bf16/fp16, head dims 64, 128 and 256, no PE, RoPE, ALiBi,
 *         T5, KERPLE, FIRE, xPos (hd64/128, causal), every mask, GQA, dense and varlen, sinks
 *         (pa_kernels::wgmma::unfit()). Compiled in
 *         when POSATTN_PREFILL_WGMMA is defined (the EMU build); chosen only for an sm_90 target.
 *   SIMT  the portable kernel (simt.cu): every feature, any dtype, head dims up to 256.
 * On an sm_90 target the WGMMA kernel is preferred where it fits, then MMA, then SIMT; on other
 * targets MMA whenever it fits. The EMU backend has no device: its target is sm_80 unless
 * pa_prefill_set_emu_target_sm() says otherwise (tests force the WGMMA kernel that way). The CUDA
 * backend asks this chooser for sm_80 and then takes the WGMMA kernel itself on a compute
 * capability 9.0 device when its build has sm_90a code (kernels/cuda_backend.cu). */
#ifndef POSATTN_PREFILL_DISPATCH_H
#define POSATTN_PREFILL_DISPATCH_H

#include <stddef.h>

#include "internal.h"
#include "prefill/tables.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pa_prefill_kernel {
  PA_PREFILL_NONE = 0,
  PA_PREFILL_SIMT = 1,
  PA_PREFILL_MMA = 2,
  PA_PREFILL_WGMMA = 3
} pa_prefill_kernel;

/* The compute capability (major * 10 + minor) the EMU backend's chooser targets: 80 (default) or
 * 90 (prefer the WGMMA kernel). Process-wide; for tests. Returns the previous value. */
int pa_prefill_set_emu_target_sm(int sm);

/* Which kernel serves p, and the workspace it needs (stage_out: EMU stages out/lse in the
 * workspace). NOT_SUPPORTED names what is missing. */
posattn_status pa_prefill_choose(const pa_problem *p, int stage_out, pa_prefill_kernel *kernel,
                                 size_t *workspace_bytes, char *msg, size_t msg_size);

/* Whether kernel k runs p after the RoPE key pre-pass (rope_k.cu): the tensor-core kernels (MMA,
 * WGMMA) with RoPE. The SIMT kernel keeps rotating its fp32 K tiles itself (a pre-pass in a 16-bit input
 * dtype would add a rounding it does not have). */
int pa_prefill_prerotates_k(pa_prefill_kernel k, const pa_problem *p);

/* "simt", "mma", "wgmma" (for messages and tests). */
const char *pa_prefill_kernel_name(pa_prefill_kernel k);

/* The EMU backend's forward through the chosen kernel: builds the tables in the workspace, runs
 * the kernel under the emulator, copies the staged output to the caller's out and lse only when
 * the launch ran clean. */
posattn_status pa_prefill_emu_forward(posattn_context *ctx, const pa_problem *p, void *ws,
                                      size_t ws_bytes);

#ifdef __cplusplus
}
#endif

#ifdef __cplusplus
#include "prefill/rope_k.cu"
#include "prefill/simt.cu"
#if defined(POSATTN_PREFILL_MMA)
#include "prefill/mma.cuh"
#endif
#if defined(POSATTN_PREFILL_WGMMA)
#include "prefill/wgmma.cuh"
#endif
/* Launches the chosen kernel with filled parameters (both backends; stream NULL on EMU), after
 * the RoPE key pre-pass on the same stream when the layout has room for it (prm.k_rot). */
inline pa::launch_status pa_prefill_launch(pa_prefill_kernel k, const pa_prefill_params &prm,
                                           void *stream) {
  if (prm.k_rot) {
    const pa::launch_status st = pa_prefill::rope_k_launch(prm, stream);
    if (!st.ok) return st;
  }
  const pa_prefill_params &run = prm.k_rot ? pa_prefill::prerotated(prm) : prm;
#if defined(POSATTN_PREFILL_MMA)
  if (k == PA_PREFILL_MMA) return pa_kernels::mma::launch(run, stream);
#endif
#if defined(POSATTN_PREFILL_WGMMA)
  if (k == PA_PREFILL_WGMMA) return pa_kernels::wgmma::launch(run, stream);
#endif
  (void)k;
  return pa_prefill::simt_launch(run, stream);
}
#endif

#endif /* POSATTN_PREFILL_DISPATCH_H */
