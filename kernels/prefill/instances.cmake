# Instances of the tensor-core prefill kernel (kernels/prefill/mma.cuh), generated into
# kernels/prefill/instances/ by scripts/gen_instances.py. Included by kernels/sources.cmake.
#
# Knobs (lists; an instance is built when its head dim, dtype and PE kind are all selected):
#   POSATTN_HEAD_DIMS   "64;80;96;112;128;192;256"
#   POSATTN_DTYPES      "bf16;f16"
#   POSATTN_PE_KINDS    "none;rope;alibi;fire;xpos;t5;kerple_log;kerple_power"
#   POSATTN_CUDA_PREFILL_INSTANCES  ON: also give the selected instances to nvcc, so that a build
#                       with CUDA runs prefill on the tensor cores (issue 12: the fast kernel is the
#                       default; ~5 s per instance and architecture, prune with the lists above or
#                       turn it OFF for quick developer builds: the CUDA backend then uses SIMT)
# Pruned configurations are answered NOT_SUPPORTED by the chooser (pa_kernels::mma::find gives
# nullptr). Appends to POSATTN_EMU_SOURCES and POSATTN_CUDA_SOURCES.
set(_pa_all_dims "64;80;96;112;128;192;256")
set(_pa_all_dtypes "bf16;f16")
set(_pa_all_kinds "none;rope;alibi;fire;xpos;t5;kerple_log;kerple_power")
set(POSATTN_HEAD_DIMS "${_pa_all_dims}" CACHE STRING "head dims of the tensor-core prefill instances")
set(POSATTN_DTYPES "${_pa_all_dtypes}" CACHE STRING "input dtypes of the tensor-core prefill instances")
set(POSATTN_PE_KINDS "${_pa_all_kinds}" CACHE STRING "PE kinds of the tensor-core prefill instances")
# ON when every instance is selected (tests that name the kernel the chooser picks rely on it)
set(POSATTN_MMA_GRID_FULL OFF)
if(POSATTN_HEAD_DIMS STREQUAL _pa_all_dims AND POSATTN_DTYPES STREQUAL _pa_all_dtypes
   AND POSATTN_PE_KINDS STREQUAL _pa_all_kinds)
  set(POSATTN_MMA_GRID_FULL ON)
endif()
option(POSATTN_CUDA_PREFILL_INSTANCES "compile the prefill instances with nvcc too" ON)

set(_pa_inst_dir ${CMAKE_CURRENT_LIST_DIR}/instances)
set(_pa_inst_defs "")
foreach(_d ${POSATTN_HEAD_DIMS})
  if(NOT _d MATCHES "^(64|80|96|112|128|192|256)$")
    message(FATAL_ERROR "POSATTN_HEAD_DIMS: '${_d}' is not one of 64, 80, 96, 112, 128, 192, 256")
  endif()
  foreach(_t ${POSATTN_DTYPES})
    if(NOT _t MATCHES "^(bf16|f16)$")
      message(FATAL_ERROR "POSATTN_DTYPES: '${_t}' is not one of bf16, f16")
    endif()
    foreach(_pe ${POSATTN_PE_KINDS})
      set(_name mma_hd${_d}_${_t}_${_pe})
      if(NOT EXISTS ${_pa_inst_dir}/${_name}.cu)
        message(FATAL_ERROR "POSATTN_PE_KINDS: no instance ${_name}.cu (unknown kind '${_pe}'?)")
      endif()
      # The host compiler sees the .cu through a one-line .cpp wrapper (the EMU build).
      set(_wrap ${CMAKE_BINARY_DIR}/prefill_instances/${_name}.cpp)
      file(CONFIGURE OUTPUT ${_wrap} CONTENT "#include \"${_pa_inst_dir}/${_name}.cu\"\n")
      list(APPEND POSATTN_EMU_SOURCES ${_wrap})
      if(POSATTN_CUDA_PREFILL_INSTANCES)
        list(APPEND POSATTN_CUDA_SOURCES ${_pa_inst_dir}/${_name}.cu)
      endif()
      string(TOUPPER ${_name} _up)
      list(APPEND _pa_inst_defs PA_MMA_${_up})
    endforeach()
  endforeach()
endforeach()
list(APPEND POSATTN_EMU_SOURCES ${_pa_inst_dir}/mma_table.cpp)
# The chooser (kernels/prefill/dispatch.cpp) compiles the tensor-core kernel in on this define.
set_property(SOURCE ${CMAKE_CURRENT_LIST_DIR}/dispatch.cpp APPEND PROPERTY COMPILE_DEFINITIONS
  POSATTN_PREFILL_MMA POSATTN_PREFILL_WGMMA)
set_source_files_properties(${_pa_inst_dir}/mma_table.cpp PROPERTIES COMPILE_DEFINITIONS
  "${_pa_inst_defs}")
