// posattn-sass anchor: the forward kernel of CUTLASS example 41 (fused multi-head attention, the
// sm80 mma.sync kernel that xFormers descends from), instantiated for bf16, aligned inputs, no
// dropout, no bias, with the example's own tile choices (hd <= 64: 64 x 64; hd 128: 32 x 128).
// Built by bench/sass/anchors.py from the PyPI nvidia-cutlass package's sources; not part of the
// library.
#include "kernel_forward.h"

template <int Q, int K, int D>
using Fwd = AttentionKernel<cutlass::bfloat16_t, cutlass::arch::Sm80, true, Q, K, D, false, false>;

template __global__ void attention_kernel_batched_impl<Fwd<32, 128, 128>>(Fwd<32, 128, 128>::Params);
template __global__ void attention_kernel_batched_impl<Fwd<64, 64, 64>>(Fwd<64, 64, 64>::Params);
