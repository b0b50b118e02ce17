#pragma once
// Stand-in for the PyTorch header of this name, for bench/sass/anchors/fa2_fwd.cu only.
#include <cstdint>
namespace at { struct PhiloxCudaState { uint64_t seed_, offset_; }; }
