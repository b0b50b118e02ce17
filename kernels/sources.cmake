# Kernel-side sources, owned by the kernels/emulator work. The top-level CMakeLists.txt includes
# this file. It sets:
#   POSATTN_EMU_SOURCES   C++ sources compiled by the host compiler into the library (emulator
#                         runtime, EMU backend, kernel .cu files compiled as C++ via wrappers)
#   POSATTN_CUDA_SOURCES  .cu files compiled by nvcc (compile checks now; the CUDA backend later)
set(POSATTN_EMU_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/emu/emu.cpp
  ${CMAKE_CURRENT_LIST_DIR}/emu_backend.cpp
  # prefill kernels (engineer F1): chooser, host tables; simt.cu is included by dispatch.cpp
  ${CMAKE_CURRENT_LIST_DIR}/prefill/dispatch.cpp
  ${CMAKE_CURRENT_LIST_DIR}/prefill/tables.cpp)
set(POSATTN_CUDA_SOURCES ${CMAKE_CURRENT_LIST_DIR}/attn_simple.cu)
# tensor-core prefill instances and their pruning knobs (engineer F2)
include(${CMAKE_CURRENT_LIST_DIR}/prefill/instances.cmake)
# Emulated kernels are ~10x slower at -O0; the emulator sources are optimised in every build type
# (they keep -g in Debug; set this to -O0 to step through kernels in gdb).
set(POSATTN_EMU_COMPILE_OPTIONS "-O2" CACHE STRING "compile options of the emulator and EMU kernels")
set_source_files_properties(${POSATTN_EMU_SOURCES} PROPERTIES COMPILE_OPTIONS
  "${POSATTN_EMU_COMPILE_OPTIONS}")
