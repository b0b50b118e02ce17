// posattn_merge_states on the REF backend (the fp64 definition) against an independent fp64 fold
// of the states; see tests/shim/pa_merge_check.hpp.
#include <cstring>

#include "pa_merge_check.hpp"

PAT_MERGE_TESTS(MergeRef, POSATTN_BACKEND_REF)
