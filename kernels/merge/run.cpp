// run.cpp -- the EMU run of the state merge (host/merge.h): the kernel of merge.cuh on the
// emulator. The result is staged in host buffers and copied to the caller's O and LSE only when
// the kernel finished without a finding, so nothing is written on a KERNEL_FAULT (in place
// included: the inputs stay intact until the copy).
#include <cstring>
#include <new>
#include <vector>

#include "merge/run.h"

extern "C" posattn_status pa_merge_emu(posattn_context *ctx, const pa_merge_problem *p) {
  const posattn_attn_state &out = *p->out;
  const size_t o_bytes = size_t(p->o_span[p->n]) * posattn_dtype_size(out.o.dtype);
  const size_t l_count = size_t(p->lse_span[p->n]);
  pa::launch_status st;
  try {
    // start from the caller's bytes so that elements outside the rows (stride gaps) stay as they
    // are
    std::vector<unsigned char> o_stage(static_cast<unsigned char *>(out.o.data),
                                       static_cast<unsigned char *>(out.o.data) + o_bytes);
    std::vector<float> l_stage(out.lse, out.lse + (out.lse ? l_count : 0));
    pa_merge_params k;
    pa_merge_params_fill(k, p);
    k.out = pa::make_gptr(o_stage.data(), o_bytes, "out o");
    k.out_lse = pa::make_gptr(out.lse ? l_stage.data() : nullptr, l_count, "out lse");
    st = pa_merge::merge_launch(k, nullptr);
    if (st.ok) {
      std::memcpy(out.o.data, o_stage.data(), o_bytes);
      if (out.lse) std::memcpy(out.lse, l_stage.data(), l_count * sizeof(float));
    }
  } catch (const std::bad_alloc &) {
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_ALLOC_FAILED, "EMU backend: out of host memory");
  }
  if (!st.ok)
    return PA_CTX_FAIL(ctx, POSATTN_STATUS_KERNEL_FAULT, "EMU merge_states kernel: %s", st.msg);
  return POSATTN_STATUS_SUCCESS;
}
