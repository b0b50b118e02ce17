# The precision-study engine: low-precision attention emulation (lowp.c) and the drift experiments
# (drift.c), declared in drift.h. Only posattn-drift and the drift tests (through the test shim)
# link it; it is never part of libposattn, whose exported functions do not reach it. It uses the
# library's internals (validation, the REF PE helpers, element conversions) through the static
# posattn_internal. Included by bench/drift/CMakeLists.txt and tests/CMakeLists.txt, so the tests
# build without POSATTN_BUILD_BENCH; the target is defined once.
if(NOT TARGET posattn_drift_engine)
  add_library(posattn_drift_engine STATIC ${CMAKE_CURRENT_LIST_DIR}/drift.c
                                          ${CMAKE_CURRENT_LIST_DIR}/lowp.c)
  target_include_directories(posattn_drift_engine PUBLIC ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(posattn_drift_engine PUBLIC posattn_internal m)
  posattn_target_warnings(posattn_drift_engine)
endif()
