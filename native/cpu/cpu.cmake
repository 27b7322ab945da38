# CPU backend build settings (included by CMakeLists.txt). The base files are portable C++; only the
# *_avx2.cpp / *_avx512.cpp files get ISA flags, and cpu_features.cpp picks among them at run time,
# so one binary runs on any x86-64 and uses AVX-512 where the CPU has it. *_neon.cpp are the arm64
# kernels: Advanced SIMD is baseline on AArch64, so they need no flags (and their bodies are
# #if defined(__aarch64__), so a stray compile elsewhere is empty).
file(GLOB GPTOSS_CPU_NEON_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*_neon.cpp)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  file(GLOB GPTOSS_CPU_AVX2_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*_avx2.cpp)
  file(GLOB GPTOSS_CPU_AVX512_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*_avx512.cpp)
  file(GLOB GPTOSS_CPU_AVXVNNI_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*_avxvnni.cpp)
  file(GLOB GPTOSS_CPU_AVX512VNNI_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*_avx512vnni.cpp)
  set_source_files_properties(${GPTOSS_CPU_AVX2_SOURCES} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
  set_source_files_properties(${GPTOSS_CPU_AVXVNNI_SOURCES} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c;-mavxvnni")
  set(GPTOSS_AVX512_FLAGS "-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq;-mavx2;-mfma;-mf16c;-Wno-uninitialized;-Wno-maybe-uninitialized")
  set_source_files_properties(${GPTOSS_CPU_AVX512_SOURCES} PROPERTIES COMPILE_OPTIONS "${GPTOSS_AVX512_FLAGS}")
  set_source_files_properties(${GPTOSS_CPU_AVX512VNNI_SOURCES} PROPERTIES COMPILE_OPTIONS "${GPTOSS_AVX512_FLAGS};-mavx512vnni")
  # The SIMD load-time quantizers (MXFP4, Q8_0) must round as the scalar reference does (no FMA there): bit-identical bytes.
  set_property(SOURCE ${CMAKE_CURRENT_LIST_DIR}/quantize_avx2.cpp ${CMAKE_CURRENT_LIST_DIR}/quantize_avx512.cpp
               APPEND PROPERTY COMPILE_OPTIONS -ffp-contract=off)
  target_compile_definitions(gptoss_core PUBLIC GPTOSS_CPU_X86_KERNELS)
  if(GPTOSS_CPU_NEON_SOURCES)
    set_source_files_properties(${GPTOSS_CPU_NEON_SOURCES} PROPERTIES HEADER_FILE_ONLY ON)
  endif()
else()
  # arm64 and others: the x86 ISA TUs are excluded. arm64 adds the NEON kernels (scripts/check-arm64.sh
  # cross-compiles this set); other targets run the portable kernels only.
  file(GLOB GPTOSS_CPU_ISA_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*_avx2.cpp ${CMAKE_CURRENT_LIST_DIR}/*_avx512.cpp
       ${CMAKE_CURRENT_LIST_DIR}/*_avxvnni.cpp ${CMAKE_CURRENT_LIST_DIR}/*_avx512vnni.cpp)
  if(NOT CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64|ARM64")
    list(APPEND GPTOSS_CPU_ISA_SOURCES ${GPTOSS_CPU_NEON_SOURCES})
  endif()
  if(GPTOSS_CPU_ISA_SOURCES)
    set_source_files_properties(${GPTOSS_CPU_ISA_SOURCES} PROPERTIES HEADER_FILE_ONLY ON)
  endif()
endif()
