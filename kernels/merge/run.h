// run.h -- fills the merge kernel's parameters from a validated problem (host/merge.h): the one
// place shared by the EMU run (run.cpp) and the CUDA run (cuda_merge.cu). Under the emulator the
// pointers carry their validated spans, so every access is bounds-checked.
#ifndef POSATTN_MERGE_RUN_H
#define POSATTN_MERGE_RUN_H

#include "merge.h"
#include "merge/merge.cu"

inline void pa_merge_params_fill(pa_merge_params &k, const pa_merge_problem *p) {
  k = pa_merge_params();
  for (int32_t s = 0; s < p->n; ++s) {
    const posattn_attn_state &in = p->in[s];
    pa_merge_state &st = k.in[s];
    st.o = pa::make_gptr(static_cast<const unsigned char *>(in.o.data),
                         size_t(p->o_span[s]) * posattn_dtype_size(in.o.dtype), "state o");
    st.lse = pa::make_gptr(static_cast<const float *>(in.lse), size_t(p->lse_span[s]), "state lse");
    st.o_sb = in.o.stride_batch, st.o_ss = in.o.stride_seq, st.o_sh = in.o.stride_head;
    st.l_sb = in.lse_stride_batch, st.l_ss = in.lse_stride_seq, st.l_sh = in.lse_stride_head;
    st.dtype = in.o.dtype;
  }
  const posattn_attn_state &out = *p->out;
  k.num_states = p->n;
  k.out = pa::make_gptr(static_cast<unsigned char *>(out.o.data),
                        size_t(p->o_span[p->n]) * posattn_dtype_size(out.o.dtype), "out o");
  k.out_lse = pa::make_gptr(out.lse, size_t(p->lse_span[p->n]), "out lse");
  k.o_sb = out.o.stride_batch, k.o_ss = out.o.stride_seq, k.o_sh = out.o.stride_head;
  k.l_sb = out.lse_stride_batch, k.l_ss = out.lse_stride_seq, k.l_sh = out.lse_stride_head;
  k.out_dtype = out.o.dtype;
  k.batch = p->desc->batch, k.seq = p->desc->seq_len, k.heads = p->desc->heads,
  k.d = p->desc->head_dim;
  k.base2 = p->base2;
}

#endif
