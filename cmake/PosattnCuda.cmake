# CUDA detection. POSATTN_ENABLE_CUDA:
#   AUTO (default)  use nvcc when one is found, otherwise build CPU-only (REF + EMU)
#   ON              require nvcc
#   OFF             never use CUDA
# Sets POSATTN_HAVE_CUDA. Default architectures sm_80 and sm_90a unless CMAKE_CUDA_ARCHITECTURES
# is given. kernels/sources.cmake builds the CUDA backend from it.

set(POSATTN_ENABLE_CUDA AUTO CACHE STRING "Use the CUDA toolkit: AUTO, ON or OFF")
set_property(CACHE POSATTN_ENABLE_CUDA PROPERTY STRINGS AUTO ON OFF)
option(POSATTN_CUDA_PTXAS_VERBOSE "Pass -Xptxas -v to nvcc (per-kernel registers and spills)" OFF)

set(POSATTN_HAVE_CUDA OFF)
string(TOUPPER "${POSATTN_ENABLE_CUDA}" _posattn_cuda_mode)
if(_posattn_cuda_mode STREQUAL "OFF")
  message(STATUS "posattn: CUDA disabled (POSATTN_ENABLE_CUDA=OFF) -> CPU-only build")
elseif(_posattn_cuda_mode STREQUAL "AUTO" OR _posattn_cuda_mode STREQUAL "ON")
  # A non-login shell (CI) may not have the toolkit on PATH: look in the usual place too.
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
    find_program(POSATTN_NVCC nvcc HINTS ENV CUDA_HOME ENV CUDA_PATH PATH_SUFFIXES bin
                 PATHS /usr/local/cuda/bin)
    if(POSATTN_NVCC)
      set(CMAKE_CUDA_COMPILER "${POSATTN_NVCC}" CACHE FILEPATH "CUDA compiler")
    endif()
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 80 90a CACHE STRING "CUDA architectures (posattn default)")
    endif()
    enable_language(CUDA)
    set(POSATTN_HAVE_CUDA ON)
    message(STATUS "posattn: CUDA toolkit ${CMAKE_CUDA_COMPILER_VERSION} found "
                   "(${CMAKE_CUDA_COMPILER}): CUDA backend and kernels for "
                   "${CMAKE_CUDA_ARCHITECTURES}")
  elseif(_posattn_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR "posattn: POSATTN_ENABLE_CUDA=ON but no CUDA compiler (nvcc) was found; "
                        "set CMAKE_CUDA_COMPILER or use POSATTN_ENABLE_CUDA=AUTO")
  else()
    message(STATUS "posattn: no CUDA toolkit (nvcc) found -> CPU-only build (REF and EMU "
                   "backends)")
  endif()
else()
  message(FATAL_ERROR "posattn: POSATTN_ENABLE_CUDA must be AUTO, ON or OFF, not "
                      "'${POSATTN_ENABLE_CUDA}'")
endif()

# posattn_cuda_flags(target): the nvcc flags of every posattn kernel (spills and local-memory use
# become warnings in the build log, where scripts/ptxas-report.sh counts them), and membership of
# the `posattn_cuda_check` target that the cuda-check preset builds. Every target that nvcc
# compiles (library kernels, the emulator self-test kernels) calls this.
function(posattn_cuda_flags target)
  set(flags -Xptxas=-warn-spills,-warn-lmem-usage)
  if(POSATTN_CUDA_PTXAS_VERBOSE)
    list(APPEND flags -Xptxas=-v)
  endif()
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:${flags}>)
  set_property(GLOBAL APPEND PROPERTY POSATTN_CUDA_TARGETS ${target})
endfunction()
