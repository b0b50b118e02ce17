// nvcc_check.cu -- instantiates every decode kernel for nvcc (target posattn_emu_nvcc_check,
// sm_80 and sm_90a) in builds whose CUDA backend does not compile them for both (cuda_decode.cu
// does; tests/emu/CMakeLists.txt then leaves this file out).
#include "decode/decode_mma.cuh"

pa::launch_status pa_decode_nvcc_check(const pa_decode_params &p, const pa_append_params &a, int dt) {
  pa::launch_status s = pa_decode::decode_launch(p, dt, nullptr);
  if (!s.ok) return s;
  pa_decode_params q = p;
  q.mma = pa_decode::kMmaRows;
  s = pa_decode::decode_launch_any(q, dt, nullptr);
  if (!s.ok) return s;
  return pa_decode::append_launch(a, dt, nullptr);
}
