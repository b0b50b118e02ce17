// posattn-sass anchor: FlashAttention-2's forward kernel body (compute_attn) for bf16, non-causal,
// no dropout / ALiBi / softcap, even shapes, with the tile choices of its run_mha_fwd_hdim128
// (A100/H100: 128 x 64, 4 warps) and run_mha_fwd_hdim64 (128 x 128, 4 warps). Built by
// bench/sass/anchors.py when POSATTN_SASS_FA2 names a flash-attention source tree (its
// csrc/flash_attn/src), against the PyPI nvidia-cutlass headers; fa2_stub/ stands in for the
// three PyTorch headers it includes (no dropout here, so the Philox state is never used).
#include <cstdio>
#include <cstdlib>

#include "flash_fwd_launch_template.h"

namespace FLASH_NAMESPACE {
template <int D, int BM, int BN>
using KT = Flash_fwd_kernel_traits<D, BM, BN, 4, false, false, cutlass::bfloat16_t>;

__global__ void __launch_bounds__(128) fa2_fwd_hd128(const __grid_constant__ Flash_fwd_params params) {
  compute_attn<KT<128, 128, 64>, false, false, false, false, true, true, false, false>(params);
}
__global__ void __launch_bounds__(128) fa2_fwd_hd64(const __grid_constant__ Flash_fwd_params params) {
  compute_attn<KT<64, 128, 128>, false, false, false, false, true, true, false, false>(params);
}
}  // namespace FLASH_NAMESPACE
