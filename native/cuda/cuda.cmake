# CUDA backend build (included by CMakeLists.txt once enable_language(CUDA) succeeded).
# Adds native/cuda/*.cu to gptoss_core, static cudart (the addon must load without a driver: cudart
# dlopens libcuda.so.1 at the first call; never link libcuda), and the arch list set on the target
# explicitly (TOOLCHAIN.md §2: the target exists before enable_language, so CMAKE_CUDA_ARCHITECTURES
# would not reach it).
set(GPTOSS_CUDA_ARCHS "80-real;86-real;89-real;90a-real;100a-real;120a-real;120-virtual" CACHE STRING
    "CUDA architectures of the gpt-oss-node kernels (e.g. 90a-real for a fast H100/H200-only build)")

find_package(CUDAToolkit REQUIRED)
file(GLOB GPTOSS_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cu)
target_sources(gptoss_core PRIVATE ${GPTOSS_CUDA_SOURCES} ${CMAKE_CURRENT_LIST_DIR}/policy.cpp)
target_compile_definitions(gptoss_core PUBLIC GPTOSS_HAVE_CUDA)
# The arch list, for the error a device with no image in this binary gets (device.cu).
string(REPLACE ";" " " _gptoss_arch_words "${GPTOSS_CUDA_ARCHS}")
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/device.cu PROPERTIES
  COMPILE_DEFINITIONS "GPTOSS_CUDA_ARCH_LIST=\"${_gptoss_arch_words}\"")
target_link_libraries(gptoss_core PUBLIC CUDA::cudart_static)
set_target_properties(gptoss_core PROPERTIES
  CUDA_ARCHITECTURES "${GPTOSS_CUDA_ARCHS}"
  CUDA_RUNTIME_LIBRARY Static
  CUDA_STANDARD 17
  CUDA_STANDARD_REQUIRED ON)

# The core's GCC warning flags are plain target options; nvcc rejects -Wall/-Wextra, so restrict
# every existing option to C/C++ and give CUDA its own.
get_target_property(_gptoss_opts gptoss_core COMPILE_OPTIONS)
if(_gptoss_opts)
  set(_gptoss_cxx_opts "")
  foreach(_o IN LISTS _gptoss_opts)
    if(_o MATCHES "^\\$<")
      list(APPEND _gptoss_cxx_opts "${_o}")
    else()
      list(APPEND _gptoss_cxx_opts "$<$<COMPILE_LANGUAGE:C,CXX>:${_o}>")
    endif()
  endforeach()
  set_property(TARGET gptoss_core PROPERTY COMPILE_OPTIONS "${_gptoss_cxx_opts}")
endif()
target_compile_options(gptoss_core PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:-O3 --expt-relaxed-constexpr -Xcompiler=-Wall -Xptxas=-warn-spills
                              -Xcudafe=--diag_suppress=177>)

if(GPTOSS_GPU_TESTS)
  add_executable(gptoss_gpu_check ${CMAKE_CURRENT_LIST_DIR}/tests/gpu_check.cpp)
  target_link_libraries(gptoss_gpu_check PRIVATE gptoss_core)
  add_executable(gptoss_gpu_bench ${CMAKE_SOURCE_DIR}/bench/gpu-kernels.cpp ${CMAKE_SOURCE_DIR}/bench/gpu-read-probe.cu)
  target_include_directories(gptoss_gpu_bench PRIVATE ${CMAKE_CURRENT_LIST_DIR}/tests)
  set_target_properties(gptoss_gpu_bench PROPERTIES CUDA_ARCHITECTURES "${GPTOSS_CUDA_ARCHS}")
  target_link_libraries(gptoss_gpu_bench PRIVATE gptoss_core ${CMAKE_DL_LIBS})
endif()
