// posattn_merge_states on the EMU backend: the kernel of kernels/merge/merge.cuh run by the
// emulator, against an independent fp64 fold of the states; see tests/shim/pa_merge_check.hpp.
#include <cstring>

#include "pa_merge_check.hpp"

PAT_MERGE_TESTS(MergeEmu, POSATTN_BACKEND_EMU)
