# HIP backend: native/cuda/*.cu compiled a second time by clang's HIP mode for AMD GPUs (the vendor
# header maps the CUDA names), linked into the plugin gpt_oss_hip.so next to the .node. The plugin
# has NO NEEDED entry on libamdhip64: hip_loader.cpp dlopens the machine's runtime with RTLD_GLOBAL
# first, so the one .node works with or without ROCm (hip_plugin.h explains the choice).
#
# Toolchain (TOOLCHAIN.md section 5): Debian's clang-22 (bookworm-security) or clang-19, each with its
# lld and clang-tools (the offload bundler), + libamdhip64-dev (HIP 5.2 headers) + librocprim-dev +
# rocm-device-libs, with a generated device-library overlay for the archs Debian's libraries predate
# (gfx942, gfx950: scripts/hip-devlibs.sh). clang-22 also builds gfx950 (MI350), which clang-19 rejects
# ("invalid target ID"); for clang 20+ hip52_clang20.h restores what HIP 5.2 expects of the compiler.
# hipcc is not used: Debian's is clang-15 and rejects gfx942.
# CMake's HIP language is not used either: it needs ROCm's hip-lang CMake package, which Debian lacks.
#
# GPTOSS_HIP: AUTO (default) builds the plugin when the toolchain is found and says why not otherwise;
# ON makes a missing toolchain or a failed compile an error (CI); OFF skips it.
set(GPTOSS_HIP "AUTO" CACHE STRING "Build the HIP plugin for AMD GPUs: AUTO, ON or OFF")
set_property(CACHE GPTOSS_HIP PROPERTY STRINGS AUTO ON OFF)
# The environment variable wins (npm ci cannot pass -D options): CI sets GPTOSS_HIP=ON.
if(NOT "$ENV{GPTOSS_HIP}" STREQUAL "")
  set(GPTOSS_HIP "$ENV{GPTOSS_HIP}" CACHE STRING "Build the HIP plugin for AMD GPUs: AUTO, ON or OFF" FORCE)
endif()
# gfx942: MI300A/X (CDNA3, the target); gfx90a: MI200 (CDNA2); gfx950: MI350 (CDNA4), with clang 20+.
# Empty: those three with clang 20+, gfx942 and gfx90a with clang-19.
set(GPTOSS_HIP_ARCHS "" CACHE STRING "AMD GPU archs of the HIP plugin (clang --offload-arch values; empty: what the compiler allows)")
set(GPTOSS_HIP_CLANG "" CACHE FILEPATH "clang++ for the HIP plugin (default: clang++-22, else clang++-19)")
# Extra flags for every HIP compile, e.g. scripts/hip-check.sh's GPU AddressSanitizer build
# ("-fsanitize=address;-shared-libsan;-g" with GPTOSS_HIP_ARCHS=gfx942:xnack+).
set(GPTOSS_HIP_EXTRA_FLAGS "" CACHE STRING "Extra clang flags for the HIP plugin's compiles (a CMake list)")

set(_hip_why "")
if(GPTOSS_HIP STREQUAL "OFF")
  return()
endif()
# The plugin is an x86-64 Linux object (clang's HIP host code, Debian's amd64 ROCm packages): a cross
# build (the arm64 prebuild, scripts/aarch64-linux-gnu.cmake) or a sanitizer build leaves it out even
# when GPTOSS_HIP=ON.
if(CMAKE_CROSSCOMPILING OR NOT CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  message(STATUS "gpt-oss-node: HIP plugin not built: target ${CMAKE_SYSTEM_PROCESSOR} (the plugin is x86-64 only)")
  return()
endif()

if(NOT GPTOSS_HIP_CLANG)
  find_program(_hip_clang NAMES clang++-22 clang++-19)
  if(_hip_clang)
    set(GPTOSS_HIP_CLANG "${_hip_clang}" CACHE FILEPATH "" FORCE)
  endif()
endif()
find_path(GPTOSS_HIP_INCLUDE hip/hip_runtime.h PATHS /opt/rocm/include /usr/include NO_DEFAULT_PATH)
if(NOT GPTOSS_HIP_CLANG OR NOT EXISTS "${GPTOSS_HIP_CLANG}")
  set(_hip_why "neither clang++-22 nor clang++-19 found (apt-get install clang-22 lld-22 clang-tools-22)")
elseif(NOT GPTOSS_HIP_INCLUDE OR NOT EXISTS "${GPTOSS_HIP_INCLUDE}/hip/hip_runtime.h")
  set(_hip_why "the HIP headers (hip/hip_runtime.h) not found (apt-get install libamdhip64-dev)")
elseif(NOT EXISTS "${GPTOSS_HIP_INCLUDE}/rocprim/rocprim.hpp")
  set(_hip_why "rocPRIM (rocprim/rocprim.hpp: sampling's sort and block scans) not found (apt-get install librocprim-dev)")
else()
  # clang runs the offload bundler from its own bin directory (clang-tools-19 installs it there).
  get_filename_component(_hip_clang_real "${GPTOSS_HIP_CLANG}" REALPATH)
  get_filename_component(_hip_clang_bin "${_hip_clang_real}" DIRECTORY)
  execute_process(COMMAND "${GPTOSS_HIP_CLANG}" --version OUTPUT_VARIABLE _hip_clang_version ERROR_QUIET)
  string(REGEX MATCH "clang version ([0-9]+)" _ "${_hip_clang_version}")
  set(GPTOSS_HIP_CLANG_MAJOR "${CMAKE_MATCH_1}")
  if(NOT EXISTS "${_hip_clang_bin}/clang-offload-bundler")
    set(_hip_why "${_hip_clang_bin}/clang-offload-bundler not found (apt-get install clang-tools-${GPTOSS_HIP_CLANG_MAJOR})")
  elseif(NOT GPTOSS_HIP_CLANG_MAJOR OR GPTOSS_HIP_CLANG_MAJOR LESS 19)
    set(_hip_why "${GPTOSS_HIP_CLANG} is not clang 19 or newer (${_hip_clang_version})")
  endif()
endif()
if(NOT _hip_why AND NOT GPTOSS_HIP_ARCHS)
  if(GPTOSS_HIP_CLANG_MAJOR GREATER_EQUAL 20)
    set(GPTOSS_HIP_ARCHS "gfx942;gfx90a;gfx950")
  else()
    set(GPTOSS_HIP_ARCHS "gfx942;gfx90a")
  endif()
endif()
if(NOT _hip_why)
  # one overlay per clang major: the generated ISA files carry the data layout of the clang that made them
  set(GPTOSS_HIP_DEVLIBS "${CMAKE_BINARY_DIR}/hip-devlibs-${GPTOSS_HIP_CLANG_MAJOR}")
  string(REPLACE "++" "" _hip_clang_c "${_hip_clang_real}")  # the C driver, for the bitcode assembly
  string(REGEX REPLACE ":[^;]*" "" _hip_devlib_archs "${GPTOSS_HIP_ARCHS}")  # gfx942:xnack+ -> gfx942
  execute_process(COMMAND bash "${CMAKE_SOURCE_DIR}/scripts/hip-devlibs.sh" "${GPTOSS_HIP_DEVLIBS}" "${_hip_clang_c}" ${_hip_devlib_archs}
                  RESULT_VARIABLE _hip_rc OUTPUT_QUIET ERROR_VARIABLE _hip_err)
  if(NOT _hip_rc EQUAL 0)
    set(_hip_why "scripts/hip-devlibs.sh failed: ${_hip_err}")
  endif()
endif()
if(_hip_why)
  if(GPTOSS_HIP STREQUAL "ON")
    message(FATAL_ERROR "gpt-oss-node: GPTOSS_HIP=ON but ${_hip_why}")
  endif()
  message(STATUS "gpt-oss-node: HIP plugin not built: ${_hip_why}")
  return()
endif()
message(STATUS "gpt-oss-node: HIP plugin for ${GPTOSS_HIP_ARCHS} with ${GPTOSS_HIP_CLANG} (clang ${GPTOSS_HIP_CLANG_MAJOR})")

# The build id both sides of the plugin boundary carry: a hash of the headers whose types cross it.
set(_hip_abi_headers native/hip/hip_plugin.h native/model/backend.h native/core/tensor.h native/core/error.h native/core/dtype.h)
set(_hip_abi "")
foreach(_h IN LISTS _hip_abi_headers)
  file(READ "${CMAKE_SOURCE_DIR}/${_h}" _txt)
  string(APPEND _hip_abi "${_txt}")
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${CMAKE_SOURCE_DIR}/${_h}")
endforeach()
string(APPEND _hip_abi "${CMAKE_CXX_COMPILER_ID}${CMAKE_CXX_COMPILER_VERSION}")
string(MD5 GPTOSS_HIP_BUILD_ID "${_hip_abi}")
string(SUBSTRING "${GPTOSS_HIP_BUILD_ID}" 0 16 GPTOSS_HIP_BUILD_ID)

string(REPLACE ";" "," _hip_archs_str "${GPTOSS_HIP_ARCHS}")
get_filename_component(_hip_rocm "${GPTOSS_HIP_INCLUDE}" DIRECTORY)
set(_hip_flags -x hip -std=c++17 -O3 -fPIC -fvisibility=hidden --rocm-path=${_hip_rocm}
    --rocm-device-lib-path=${GPTOSS_HIP_DEVLIBS} -I${CMAKE_SOURCE_DIR}/native
    -DGPTOSS_HIP_BUILD_ID="${GPTOSS_HIP_BUILD_ID}" -DGPTOSS_HIP_ARCHS="${_hip_archs_str}" -Wall -Wno-unused-parameter -Wno-unused-result
    # The mma.sync kernels' helpers (swizzles, shared-memory sizes) are used only inside bodies that
    # compile to a trap on AMD (GPTOSS_NO_DEVICE_CODE): unused there, by design.
    -Wno-unused-function -Wno-unused-const-variable)
if(GPTOSS_HIP_CLANG_MAJOR GREATER_EQUAL 20)
  # HIP 5.2's headers test __AMDGCN_WAVEFRONT_SIZE, which clang 20+ no longer defines (every target
  # here is wave64: vendors.h); clang 22 defaults to code object v6, which needs ROCm 6.3's libraries
  # and runtime: v5 as clang-19 makes. hip52_clang20.h: the rest (see there).
  list(APPEND _hip_flags -D__AMDGCN_WAVEFRONT_SIZE=64 -mcode-object-version=5 -include ${CMAKE_SOURCE_DIR}/native/hip/hip52_clang20.h)
endif()
foreach(_arch IN LISTS GPTOSS_HIP_ARCHS)
  list(APPEND _hip_flags --offload-arch=${_arch})
endforeach()
list(APPEND _hip_flags ${GPTOSS_HIP_EXTRA_FLAGS})

# One object per source: host code + a fat binary with a code object per arch (.hip_fatbin).
# clang's depfile names the object by its absolute path; under the old CMP0116 Ninja reads the depfile
# as written, finds no "hip/<name>.o" in it and rebuilds every HIP object on every build (4-6 min of
# three archs for any edit). NEW: CMake rewrites the depfile's paths for Ninja.
if(POLICY CMP0116)
  cmake_policy(SET CMP0116 NEW)
endif()
file(GLOB GPTOSS_HIP_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/native/cuda/*.cu ${CMAKE_SOURCE_DIR}/native/hip/*.hip)
set(GPTOSS_HIP_OBJECTS "")
foreach(_src IN LISTS GPTOSS_HIP_SOURCES)
  get_filename_component(_name "${_src}" NAME)
  set(_obj "${CMAKE_BINARY_DIR}/hip/${_name}.o")
  add_custom_command(OUTPUT "${_obj}"
    COMMAND ${CMAKE_COMMAND} -E make_directory "${CMAKE_BINARY_DIR}/hip"
    COMMAND "${GPTOSS_HIP_CLANG}" ${_hip_flags} -MD -MF "${_obj}.d" -c "${_src}" -o "${_obj}"
    DEPENDS "${_src}" DEPFILE "${_obj}.d"
    COMMENT "HIP ${_name} (${GPTOSS_HIP_ARCHS})" VERBATIM)
  list(APPEND GPTOSS_HIP_OBJECTS "${_obj}")
endforeach()

# The plugin: the HIP objects plus the host-only pieces of core/ and model/ the backend calls
# (tensor helpers, the shared argument checks, the path choosers), compiled here again so the plugin needs nothing
# from the .node. Only gptoss_hip_plugin() is exported.
add_library(gpt_oss_hip SHARED ${GPTOSS_HIP_OBJECTS}
            ${CMAKE_SOURCE_DIR}/native/core/tensor.cpp ${CMAKE_SOURCE_DIR}/native/model/op_checks.cpp
            ${CMAKE_SOURCE_DIR}/native/model/backend_defaults.cpp ${CMAKE_SOURCE_DIR}/native/model/logprobs.cpp
            ${CMAKE_SOURCE_DIR}/native/cuda/policy.cpp)
set_source_files_properties(${GPTOSS_HIP_OBJECTS} PROPERTIES EXTERNAL_OBJECT TRUE GENERATED TRUE)
set_target_properties(gpt_oss_hip PROPERTIES PREFIX "" SUFFIX ".so" CXX_VISIBILITY_PRESET hidden)
target_include_directories(gpt_oss_hip PRIVATE ${CMAKE_SOURCE_DIR}/native)
target_link_options(gpt_oss_hip PRIVATE "-Wl,--version-script=${CMAKE_SOURCE_DIR}/native/hip/hip_plugin.map")
set_property(TARGET gpt_oss_hip APPEND PROPERTY LINK_DEPENDS "${CMAKE_SOURCE_DIR}/native/hip/hip_plugin.map")

set_property(SOURCE ${CMAKE_SOURCE_DIR}/native/hip/hip_loader.cpp APPEND PROPERTY COMPILE_DEFINITIONS
             GPTOSS_HIP_BUILT GPTOSS_HIP_BUILD_ID="${GPTOSS_HIP_BUILD_ID}")
set(GPTOSS_HIP_PLUGIN_TARGET gpt_oss_hip)

# The kernel-by-kernel check for an AMD GPU (native/cuda/tests/gpu_check.cpp, the CUDA check's own
# source with GPTOSS_GPU_CHECK_HIP): host code only, linked with the core library like the addon, so it
# reaches the kernels through hip_loader.cpp, the ROCm runtime it dlopens and this plugin, which it
# finds beside itself (the plugin's output directory); no second compile of the kernels, no ROCm link
# dependency. Without an AMD GPU it prints "gpu_check: HIP unavailable: <reason>" and exits 2
# (test/hip-check.test.ts); scripts/hip-check.sh runs it on an AMD host.
set(_hip_check_sources ${CMAKE_SOURCE_DIR}/native/cuda/tests/gpu_check.cpp)
if(NOT GPTOSS_CUDA_SOURCES)  # without CUDA the core library lacks the path choosers the check asks
  list(APPEND _hip_check_sources ${CMAKE_SOURCE_DIR}/native/cuda/policy.cpp)
endif()
add_executable(gptoss_gpu_check_hip ${_hip_check_sources})
target_compile_definitions(gptoss_gpu_check_hip PRIVATE GPTOSS_GPU_CHECK_HIP)
target_include_directories(gptoss_gpu_check_hip PRIVATE ${CMAKE_SOURCE_DIR}/native/cuda/tests)
target_link_libraries(gptoss_gpu_check_hip PRIVATE gptoss_core)
set_target_properties(gptoss_gpu_check_hip PROPERTIES RUNTIME_OUTPUT_DIRECTORY "$<TARGET_FILE_DIR:gpt_oss_hip>")
add_dependencies(gptoss_gpu_check_hip gpt_oss_hip)
