# The fp64 GPU reference (kernels/ref64/gpu_ref64.h): a static library of one nvcc object and
# cuBLAS, linked only into posattn-drift and the GPU test, never into posattn itself (so the
# library does not depend on cuBLAS). Included by tests/gpu and bench/drift; defines the target
# posattn_gpu_ref64 once, and only in CUDA builds.
include_guard(GLOBAL)
if(POSATTN_HAVE_CUDA)
  find_package(CUDAToolkit REQUIRED)
  add_library(posattn_gpu_ref64 STATIC ${CMAKE_CURRENT_LIST_DIR}/gpu_ref64.cu)
  target_include_directories(posattn_gpu_ref64 PUBLIC ${CMAKE_CURRENT_LIST_DIR}
                             PRIVATE ${PROJECT_SOURCE_DIR}/host)
  # posattn_internal: pa_validate, the PE helpers and the CUDA runtime the library already links
  target_link_libraries(posattn_gpu_ref64 PUBLIC posattn_internal CUDA::cublas
                        CUDA::cudart_static)
  set_target_properties(posattn_gpu_ref64 PROPERTIES POSITION_INDEPENDENT_CODE ON
                        CUDA_STANDARD 17)
  posattn_cuda_flags(posattn_gpu_ref64)
endif()
