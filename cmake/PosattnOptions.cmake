# Build options of posattn and the compiler flags they imply. Included by the top-level
# CMakeLists.txt before any target is defined.

include(CMakeDependentOption)

string(COMPARE EQUAL "${CMAKE_SOURCE_DIR}" "${PROJECT_SOURCE_DIR}" POSATTN_IS_TOP_LEVEL)
option(POSATTN_BUILD_TESTS "Build the GoogleTest suites (needs libgtest-dev)" ${POSATTN_IS_TOP_LEVEL})
option(POSATTN_BUILD_BENCH "Build posattn-demo (and later the benchmarks)" ${POSATTN_IS_TOP_LEVEL})
option(POSATTN_WERROR "Treat compiler warnings as errors" OFF)
set(POSATTN_SANITIZE "" CACHE STRING
    "Sanitizers for C/C++ code, as for -fsanitize= (e.g. address,undefined); empty = none")

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
  message(STATUS "posattn: no CMAKE_BUILD_TYPE given, using Release")
endif()

# Warnings for our own C/C++ targets (not for third-party code, not for nvcc).
function(posattn_target_warnings target)
  set(flags -Wall -Wextra)
  if(POSATTN_WERROR)
    list(APPEND flags -Werror)
  endif()
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:C,CXX>:${flags}>)
endfunction()

# Sanitizers apply to everything built here (library, tests, demo) so that instrumented and
# uninstrumented code never mix; nvcc compile checks are left alone. UBSan findings abort the
# test instead of printing and continuing, so a ctest run fails on them.
if(POSATTN_SANITIZE)
  set(_san -fsanitize=${POSATTN_SANITIZE} -fno-omit-frame-pointer)
  if(POSATTN_SANITIZE MATCHES "undefined")
    list(APPEND _san -fno-sanitize-recover=undefined)
  endif()
  add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX>:${_san}>")
  add_link_options(-fsanitize=${POSATTN_SANITIZE})
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang" AND POSATTN_SANITIZE MATCHES "undefined")
    # clang's C++-only checks (indirect-call function types, vptr) need its C++ UBSan runtime,
    # which clang does not link into the C programs that use libposattn.so (examples, tests)
    add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX>:-fno-sanitize=function,vptr>")
  endif()
  message(STATUS "posattn: sanitizers: ${POSATTN_SANITIZE}")
endif()

# libFuzzer targets (tests/fuzz): clang only. Every C/C++ target gets libFuzzer's coverage
# instrumentation (-fsanitize=fuzzer-no-link) so that the fuzzers are guided by the library's code;
# the fuzz preset adds ASan + UBSan through POSATTN_SANITIZE. Without this option tests/fuzz still
# builds one replay program per target (any compiler) that runs the committed corpora as ctests.
option(POSATTN_BUILD_FUZZERS "Build the libFuzzer targets in tests/fuzz (needs clang)" OFF)
if(POSATTN_BUILD_FUZZERS)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang" OR NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "POSATTN_BUILD_FUZZERS needs clang for C and C++ (libFuzzer); this build "
                        "uses ${CMAKE_C_COMPILER_ID} / ${CMAKE_CXX_COMPILER_ID}: use the fuzz preset")
  endif()
  if(NOT POSATTN_BUILD_TESTS)
    message(FATAL_ERROR "POSATTN_BUILD_FUZZERS needs POSATTN_BUILD_TESTS (the fuzzers use the test shim)")
  endif()
  add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX>:-fsanitize=fuzzer-no-link>")
  message(STATUS "posattn: libFuzzer targets enabled")
endif()
