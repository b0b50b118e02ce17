#pragma once
// Stand-in for the PyTorch header of this name, for bench/sass/anchors/fa2_fwd.cu only.
#include <tuple>
#include <ATen/cuda/PhiloxCudaState.h>
namespace at { namespace cuda { namespace philox {
__host__ __device__ inline std::tuple<uint64_t, uint64_t> unpack(const at::PhiloxCudaState &s) {
  return std::make_tuple(s.seed_, s.offset_);
}
}}}
