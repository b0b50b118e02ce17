// wgmma_nvcc_check.cu -- nvcc compile check of the sm_90a prefill kernel (kernels/prefill/wgmma.cuh):
// every instance and its host-side launch (tensor maps through the driver entry point). Target
// posattn_emu_nvcc_check (tests/emu/CMakeLists.txt) builds it for sm_90a, where ptxas must accept
// it without spills, and sm_80, where the kernel body is compiled out (a trap). A CUDA backend
// built for sm_90a compiles the same instances (kernels/cuda_backend.cu through dispatch.h), and
// tests/emu/CMakeLists.txt then leaves this file out.
#include "prefill/wgmma.cuh"

namespace pa_wgmma_check {
pa::launch_status run(const pa_prefill_params &p, void *stream) {
  return pa_kernels::wgmma::launch(p, stream);
}
}  // namespace pa_wgmma_check
