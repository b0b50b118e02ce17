// cuda_merge.cu -- the state merge on the CUDA backend (host/merge.h): one launch of the kernel of
// merge.cuh on the context's stream. The parameters (every state's pointers and strides) travel by
// value in the launch: no host-device copy, no allocation, no synchronisation, so the call can be
// captured into a CUDA graph. Compiled, not run on a GPU yet.
#include <cuda_runtime.h>

#include "cuda_util.h"
#include "merge/run.h"

PA_CUDA_ENTRY posattn_status pa_cuda_merge(posattn_context *ctx, const pa_merge_problem *p) {
  PA_TRY(cuda_pending_check(ctx, "merge_states"));
  DeviceScope scope;
  cudaError_t e = scope.enter(ctx->device);
  if (e != cudaSuccess) return cuda_fail(ctx, "cudaSetDevice", e);
  pa_merge_params k;
  pa_merge_params_fill(k, p);
  const pa::launch_status st = pa_merge::merge_launch(k, ctx->stream);
  if (!st.ok) return launch_fail(ctx, "merge_states", st);
  return POSATTN_STATUS_SUCCESS;
}
