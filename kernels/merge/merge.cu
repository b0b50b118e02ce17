// merge.cu -- the merge_states kernel and its launcher (see merge.cuh for the design). Included
// once per build side: by run.cpp (EMU) and cuda_merge.cu (nvcc), so the kernel has one definition.
#ifndef POSATTN_MERGE_CU
#define POSATTN_MERGE_CU

#include "merge/merge.cuh"

namespace pa_merge {

__global__ void __launch_bounds__(kThreads) merge_states(const pa_merge_params p) {
  PA_SHARED(int, bad, kThreads);  // per thread: it saw a non-finite O element of a non-empty state
  const int64_t rows = int64_t(p.batch) * p.seq * p.heads;
  const bool base2 = p.base2 != 0;
  const int tid = int(threadIdx.x);
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int h = int(row % p.heads), t = int(row / p.heads % p.seq),
              b = int(row / p.heads / p.seq);
    auto lse_at = [&](int s) {
      const pa_merge_state &st = p.in[s];
      return float(st.lse[b * st.l_sb + t * st.l_ss + h * st.l_sh]);
    };
    auto o_at = [&](int s, int c) {
      const pa_merge_state &st = p.in[s];
      return load_any(st.o, st.dtype, b * st.o_sb + t * st.o_ss + h * st.o_sh + c);
    };
    const LseSum sum = lse_merge(p.num_states, lse_at, -INFINITY, base2);
    int mine = 0;
    for (int c = tid; c < p.d; c += kThreads)
      for (int s = 0; s < p.num_states; ++s)
        if (lse_at(s) != -INFINITY && !pa_pe::is_finite(o_at(s, c))) mine = 1;
    bad[tid] = mine;
    __syncthreads();
    int poisoned = 0;
    for (int k = 0; k < kThreads; ++k) poisoned |= bad[k];
    for (int c = tid; c < p.d; c += kThreads) {
      float o = 0.f;
      for (int s = 0; s < p.num_states && !sum.empty(); ++s) {
        const float l = lse_at(s);
        if (l != -INFINITY) o = fmaf(sum.weight(l, base2), o_at(s, c), o);  // empty: nothing
      }
      store_any(p.out, p.out_dtype, b * p.o_sb + t * p.o_ss + h * p.o_sh + c, poisoned ? NAN : o);
    }
    __syncthreads();  // in place: every thread has read state 0's LSE of this row; bad[] is free
    if (p.out_lse && tid == 0)
      p.out_lse[b * p.l_sb + t * p.l_ss + h * p.l_sh] = poisoned ? NAN : sum.lse(base2);
  }
}

inline pa::launch_status merge_launch(const pa_merge_params &p, void *stream) {
  const int64_t rows = int64_t(p.batch) * p.seq * p.heads;
  const unsigned blocks = unsigned(rows < int64_t(kMaxBlocks) ? rows : int64_t(kMaxBlocks));
  return pa::launch("merge_states", merge_states, dim3(blocks), dim3(kThreads), 0, stream, p);
}

}  // namespace pa_merge
#endif
