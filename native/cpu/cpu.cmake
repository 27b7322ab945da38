# CPU backend build settings (included by CMakeLists.txt). The base files are portable C++; only the
# *_avx2.cpp / *_avx512.cpp files get ISA flags, and cpu_features.cpp picks among them at run time,
# so one binary runs on any x86-64 and uses AVX-512 where the CPU has it.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  file(GLOB GPTOSS_CPU_AVX2_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*_avx2.cpp)
  file(GLOB GPTOSS_CPU_AVX512_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*_avx512.cpp)
  set_source_files_properties(${GPTOSS_CPU_AVX2_SOURCES} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
  set_source_files_properties(${GPTOSS_CPU_AVX512_SOURCES} PROPERTIES COMPILE_OPTIONS
    "-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq;-mavx2;-mfma;-mf16c;-Wno-uninitialized;-Wno-maybe-uninitialized")
  target_compile_definitions(gptoss_core PUBLIC GPTOSS_CPU_X86_KERNELS)
else()
  # arm64 and others: the portable kernels only (ISA TUs are excluded; NEON comes from -O3 vectorization).
  file(GLOB GPTOSS_CPU_ISA_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*_avx2.cpp ${CMAKE_CURRENT_LIST_DIR}/*_avx512.cpp)
  if(GPTOSS_CPU_ISA_SOURCES)
    set_source_files_properties(${GPTOSS_CPU_ISA_SOURCES} PROPERTIES HEADER_FILE_ONLY ON)
  endif()
endif()
