# Kernel-side sources, owned by the kernels/emulator work. The top-level CMakeLists.txt includes
# this file. It sets:
#   POSATTN_EMU_SOURCES   C++ sources compiled by the host compiler into the library (emulator
#                         runtime, EMU backend, kernel .cu files compiled as C++ via wrappers)
#   POSATTN_CUDA_SOURCES  .cu files compiled by nvcc as a compile check only (the CUDA backend's
#                         own sources are the target posattn_cuda_backend below)
set(POSATTN_EMU_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/emu/emu.cpp
  ${CMAKE_CURRENT_LIST_DIR}/emu/emu_sm90.cpp
  ${CMAKE_CURRENT_LIST_DIR}/emu_backend.cpp
  # prefill kernels (engineer F1): chooser, host tables; simt.cu is included by dispatch.cpp
  ${CMAKE_CURRENT_LIST_DIR}/prefill/dispatch.cpp
  ${CMAKE_CURRENT_LIST_DIR}/prefill/tables.cpp
  # decode kernels (engineer J): chooser and EMU runs; decode.cu is included by dispatch.cpp
  ${CMAKE_CURRENT_LIST_DIR}/decode/dispatch.cpp
  # paged kernels of the serving plan (issue 13): paged.cu is included by dispatch.cpp
  ${CMAKE_CURRENT_LIST_DIR}/paged/dispatch.cpp
  # state merge (issue 15): merge.cuh is included by run.cpp
  ${CMAKE_CURRENT_LIST_DIR}/merge/run.cpp)
set(POSATTN_CUDA_SOURCES "")
# tensor-core prefill instances and their pruning knobs (engineer F2)
include(${CMAKE_CURRENT_LIST_DIR}/prefill/instances.cmake)

# ---- the CUDA backend (engineer I1) -----------------------------------------------------------
# With CUDA, nvcc compiles kernels/cuda_backend.cu (SIMT kernel, chooser glue), the nvcc table of the
# tensor-core instances and, with POSATTN_CUDA_PREFILL_INSTANCES, the instances themselves, into
# the library. That code shares inline and template names with the emulator build of the same
# kernel source (pa::launch<...>, pa_prefill_params_fill, ...) but not their bodies, so it is
# partially linked into one object whose hidden symbols are made local before the library sees it;
# only the pa_cuda_* entry points (host/internal.h) stay global, and the version script keeps those
# unexported. posattn_add_cuda_backend(<target>) links that object and the CUDA runtime (static:
# the library loads on machines without CUDA and answers NO_DEVICE there).
if(POSATTN_HAVE_CUDA)
  find_package(CUDAToolkit REQUIRED)
  set(_pa_cuda_inst "${POSATTN_CUDA_SOURCES}")
  list(FILTER _pa_cuda_inst INCLUDE REGEX "/instances/mma_hd[^/]*\\.cu$")
  list(FILTER POSATTN_CUDA_SOURCES EXCLUDE REGEX "/instances/mma_hd[^/]*\\.cu$")
  set(_pa_cuda_table ${CMAKE_BINARY_DIR}/prefill_instances/mma_table_nvcc.cu)
  file(CONFIGURE OUTPUT ${_pa_cuda_table}
       CONTENT "#include \"${CMAKE_CURRENT_LIST_DIR}/prefill/instances/mma_table.cpp\"\n")
  # decode and cache append (engineer N): kernels/decode/cuda_decode.cu
  add_library(posattn_cuda_backend OBJECT ${CMAKE_CURRENT_LIST_DIR}/cuda_backend.cu
              ${CMAKE_CURRENT_LIST_DIR}/decode/cuda_decode.cu
              ${CMAKE_CURRENT_LIST_DIR}/merge/cuda_merge.cu ${_pa_cuda_table} ${_pa_cuda_inst}
              # the serving plan (issue 13): kernels by nvcc, host code by the C++ compiler
              ${CMAKE_CURRENT_LIST_DIR}/paged/cuda_kernels.cu ${CMAKE_CURRENT_LIST_DIR}/paged/cuda_run.cpp)
  target_include_directories(posattn_cuda_backend PRIVATE ${PROJECT_SOURCE_DIR}/include
                             ${PROJECT_SOURCE_DIR}/host ${CMAKE_CURRENT_LIST_DIR})
  target_compile_definitions(posattn_cuda_backend PRIVATE POSATTN_BUILDING POSATTN_WITH_CUDA
                             POSATTN_PREFILL_MMA)
  target_include_directories(posattn_cuda_backend PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
  # The sm_90a wgmma prefill kernel (kernels/prefill/wgmma.cuh) in the CUDA backend: only with
  # sm_90a code in the build; the backend then prefers it on compute capability 9.0 devices.
  option(POSATTN_CUDA_PREFILL_WGMMA "run the sm_90a wgmma prefill kernel on sm_90 devices" ON)
  if(POSATTN_CUDA_PREFILL_WGMMA AND "90a" IN_LIST CMAKE_CUDA_ARCHITECTURES)
    target_compile_definitions(posattn_cuda_backend PRIVATE POSATTN_PREFILL_WGMMA)
    # its instances follow POSATTN_DTYPES as the sm_80 kernel's do (cuda-ci: bf16 only)
    set(_pa_wg_bf16 0)
    set(_pa_wg_f16 0)
    if("bf16" IN_LIST POSATTN_DTYPES)
      set(_pa_wg_bf16 1)
    endif()
    if("f16" IN_LIST POSATTN_DTYPES)
      set(_pa_wg_f16 1)
    endif()
    target_compile_definitions(posattn_cuda_backend PRIVATE PA_WGMMA_BF16=${_pa_wg_bf16}
                               PA_WGMMA_F16=${_pa_wg_f16})
  endif()
  set_target_properties(posattn_cuda_backend PROPERTIES POSITION_INDEPENDENT_CODE ON
    CUDA_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  # The nvcc table lists exactly the instances nvcc compiled (none without the option): the
  # backend falls back to the SIMT kernel for the others (kernels/cuda_backend.cu).
  if(POSATTN_CUDA_PREFILL_INSTANCES)
    set_source_files_properties(${_pa_cuda_table} PROPERTIES COMPILE_DEFINITIONS "${_pa_inst_defs}")
  endif()
  posattn_cuda_flags(posattn_cuda_backend)

  set(POSATTN_CUDA_BACKEND_OBJECT ${CMAKE_BINARY_DIR}/posattn_cuda_backend_part.o)
  add_custom_command(OUTPUT ${POSATTN_CUDA_BACKEND_OBJECT}
    # --force-group-allocation dissolves COMDAT groups, which the final link would otherwise match
    # by name against the emulator build's groups and drop one of the two.
    COMMAND ${CMAKE_LINKER} -r --force-group-allocation -o ${POSATTN_CUDA_BACKEND_OBJECT}.tmp
            $<TARGET_OBJECTS:posattn_cuda_backend>
    COMMAND ${CMAKE_OBJCOPY} --localize-hidden ${POSATTN_CUDA_BACKEND_OBJECT}.tmp
            ${POSATTN_CUDA_BACKEND_OBJECT}
    DEPENDS posattn_cuda_backend $<TARGET_OBJECTS:posattn_cuda_backend>
    COMMENT "CUDA backend: partial link, hidden symbols made local" COMMAND_EXPAND_LISTS VERBATIM)
  add_custom_target(posattn_cuda_backend_part DEPENDS ${POSATTN_CUDA_BACKEND_OBJECT})

  function(posattn_add_cuda_backend target)
    get_target_property(_type ${target} TYPE)
    if(_type STREQUAL "OBJECT_LIBRARY")
      target_compile_definitions(${target} PRIVATE POSATTN_WITH_CUDA)
      return()
    endif()
    target_sources(${target} PRIVATE ${POSATTN_CUDA_BACKEND_OBJECT})
    add_dependencies(${target} posattn_cuda_backend_part)
    # a static library passes the runtime on to whatever links it
    if(_type STREQUAL "STATIC_LIBRARY")
      target_link_libraries(${target} PUBLIC CUDA::cudart_static)
    else()
      target_link_libraries(${target} PRIVATE CUDA::cudart_static)
    endif()
  endfunction()
else()
  function(posattn_add_cuda_backend target)
  endfunction()
endif()
# Emulated kernels are ~10x slower at -O0; the emulator sources are optimised in every build type
# (they keep -g in Debug; set this to -O0 to step through kernels in gdb).
set(POSATTN_EMU_COMPILE_OPTIONS "-O2" CACHE STRING "compile options of the emulator and EMU kernels")
set_source_files_properties(${POSATTN_EMU_SOURCES} PROPERTIES COMPILE_OPTIONS
  "${POSATTN_EMU_COMPILE_OPTIONS}")
