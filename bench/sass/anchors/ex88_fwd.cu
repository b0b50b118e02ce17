// posattn-sass anchor: the forward kernels of CUTLASS example 88 (Hopper FMHA: TMA producer warp,
// HGMMA consumer warpgroups, warp specialisation), instantiated for bf16 -- the example itself
// builds f16 -- with the example's own hd128 and hd64 configurations, DefaultFusion (no mask),
// fp32 accumulators, the strides the example uses (Q, K, V row-major in the head dim):
//   hd128: 128 x 128 x 128 ping-pong (two consumer warpgroups taking turns, as posattn's
//          wgmma.cuh) and cooperative;
//   hd64:  128 x 64 x 64 ping-pong.
// Built by bench/sass/anchors.py for sm_90a from the PyPI nvidia-cutlass package's sources; not
// part of the library.
#include "cute/tensor.hpp"
#include "cutlass/cutlass.h"
#include "cutlass/device_kernel.h"

#include "collective/fmha_fusion.hpp"
#include "kernel/fmha_kernel_builder.hpp"

namespace ex88 {
using namespace cute;
using Stride = cute::tuple<int, _1, cute::tuple<int, int>>;  // rows, features, (batch, head)

template <class Tile, class Policy>
using Kernel = typename cutlass::fmha::kernel::FmhaBuilder<
    cutlass::bfloat16_t, float, float, Tile, Stride, Stride, Stride,
    cutlass::fmha::collective::DefaultFusion, Policy>::Kernel;

using Pingpong = cutlass::gemm::KernelTmaWarpSpecializedPingpong;
using Cooperative = cutlass::gemm::KernelTmaWarpSpecializedCooperative;

// Taking each kernel's address instantiates it (the launch path the example's device adapter takes).
void const *kernels[] = {
    (void const *)&cutlass::device_kernel<Kernel<Shape<_128, _128, _128>, Pingpong>>,
    (void const *)&cutlass::device_kernel<Kernel<Shape<_128, _128, _128>, Cooperative>>,
    (void const *)&cutlass::device_kernel<Kernel<Shape<_128, _64, _64>, Pingpong>>,
};
}  // namespace ex88
