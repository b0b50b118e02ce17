// epilogue.cuh -- the end of a query row, shared by the tensor-core prefill kernels (mma.cuh for
// sm_80, wgmma.cuh for sm_90a): the finish of a row's softmax (sink, output scale, LSE) and the
// store of one output element in the run-time output dtype. Each kernel keeps its own row sum
// reduction (its accumulator layout); what follows it is the same math in both.
#ifndef POSATTN_PREFILL_EPILOGUE_CUH
#define POSATTN_PREFILL_EPILOGUE_CUH

#include "device/device.cuh"
#include "posattn.h"

// As in mma.cuh and wgmma.cuh: the emulator build and the nvcc build are different functions, an
// inline namespace keeps their symbols apart.
#if defined(__CUDACC__)
#define PA_EPILOGUE_NS cuda
#else
#define PA_EPILOGUE_NS emu
#endif

namespace pa_kernels {
namespace prefill {
inline namespace PA_EPILOGUE_NS {

// Lazy rescaling (mma.cuh's online softmax). A row keeps its reference maximum rmax (logit units
// x; -inf before its first visible key) until its maximum so far, mx, rises more than kLazy log2
// units (x * cs) above it; its weights exp2(x cs - fl(rmax cs)) stay below 2^kLazy. The rule is
// here so that bench/sass/rescale_tiles.cpp, which measures how often warps rescale, runs it too.
constexpr float kLazy = 8.f;
PA_HD bool lazy_moves(float rmax, float mx, float cs) {
  return rmax != -INFINITY && mx * cs - rmax * cs > kLazy;  // inf - inf (a poisoned row): keeps
}

// out[idx] = x rounded once to dtype (pa_prefill_params::out_dtype: bf16, f16, else fp32).
PA_DEVICE void store_out(pa::gptr<unsigned char> base, int32_t dtype, int64_t idx, float x) {
  switch (dtype) {
    case POSATTN_DTYPE_BF16: pa::ptr_cast<pa::bf16>(base)[idx] = pa::bf16_from_float(x); break;
    case POSATTN_DTYPE_F16: pa::ptr_cast<pa::f16>(base)[idx] = pa::f16_from_float(x); break;
    default: pa::ptr_cast<float>(base)[idx] = x; break;
  }
}

// A finished row: l, its sum of exp2(logit - m2) over its visible keys (a NaN when the NaN RULE
// poisoned the row), and m2, its maximum logit in log2 units (-inf when no key is visible). A
// sink (posattn.h) adds e^sink without a value to l, both taken at M = max(row maximum, sink) so
// that a sink far above the row's logits cannot overflow: a row that saw no key then gets l = 1,
// out 0 and lse = sink exactly. The LSE is a method so that only the threads that store it pay
// for its log.
struct RowFinish {
  static constexpr float kLn2 = 0.6931471805599453f;
  float l, m2, sink;
  float o_scale = 1.f;    // the accumulators' factor before 1 / l: e^(max - M) with a sink
  bool sink_max = false;  // the sink is M

  PA_DEVICE RowFinish(float l_, float m2_, bool has_sink, float sink_)
      : l(l_), m2(m2_), sink(sink_) {
    if (has_sink) {  // in natural units: sink * log2(e) overflows fp32 for sinks above 2.4e38
      const float mn = m2 * kLn2;
      sink_max = sink >= mn;
      const float M = sink_max ? sink : mn;
      o_scale = expf(mn - M);  // 0 when mn = -inf
      l = fmaf(l, o_scale, expf(sink - M));
    }
  }
  // The factor of the row's accumulators: 0 when no key is visible (output 0), NaN for a NaN l.
  PA_DEVICE float out_scale() const { return l == 0.f ? 0.f : o_scale / l; }
  // The row's log-sum-exp in natural log: -inf when no key is visible and there is no sink.
  PA_DEVICE float lse() const {
    return l == 0.f ? -INFINITY : sink_max ? sink + log2f(l) * kLn2 : (m2 + log2f(l)) * kLn2;
  }
};

}  // namespace PA_EPILOGUE_NS
}  // namespace prefill
}  // namespace pa_kernels
#endif
