# Kernel-side sources, owned by the kernels/emulator work. The top-level CMakeLists.txt includes
# this file. It sets:
#   POSATTN_EMU_SOURCES   C++ sources compiled by the host compiler into the library (emulator
#                         runtime, EMU backend, kernel .cu files compiled as C++ via wrappers)
#   POSATTN_CUDA_SOURCES  .cu files compiled by nvcc (compile checks now; the CUDA backend later)
set(POSATTN_EMU_SOURCES ${CMAKE_CURRENT_LIST_DIR}/emu_backend.cpp)
set(POSATTN_CUDA_SOURCES "")
