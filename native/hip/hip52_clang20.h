// What Debian's HIP 5.2 headers and device libraries expect from clang but clang 20+ no longer gives
// them, restored so that clang-22 (the compiler that knows gfx950) builds the same sources.
// native/hip/hip.cmake force-includes this header (-include) into every HIP compile by clang >= 20,
// ahead of any header, since the first fix must precede <hip/hip_fp16.h> wherever a source or rocPRIM
// pulls it in. None of the fixes changes what clang-19 builds: the header is empty there.
//  1. __llvm_amdgcn_rcp_f16 / _2f16: amd_hip_fp16.h's hrcp / h2rcp call them; HIP 5.2 declares them
//     only when clang's HIP wrapper does not, and clang-19's wrapper declared them (as 1 / x, marked
//     deprecated since HIP 5.6) where clang 20+'s no longer does: "use of undeclared identifier".
//  2. __atomic_work_item_fence: __threadfence() and friends call it; HIP 5.2 defines it in the device
//     library hip.bc, which clang-19 linked into every code object and clang 20+ no longer does
//     ("undefined symbol: __atomic_work_item_fence" at the device link). Defined here with the fences
//     the OpenCL builtin lowers to (a fence of the order at the scope; the address-space flags do not
//     narrow an amdgcn fence).
#pragma once
#if defined(__HIP__) && defined(__clang_major__) && __clang_major__ >= 20
typedef _Float16 gptoss_f16x2_t __attribute__((ext_vector_type(2)));
extern "C" {
__attribute__((device)) inline _Float16 __llvm_amdgcn_rcp_f16(_Float16 x) { return ((_Float16)1.0f) / x; }
__attribute__((device)) inline gptoss_f16x2_t __llvm_amdgcn_rcp_2f16(gptoss_f16x2_t x) { return ((gptoss_f16x2_t)1.0f) / x; }
}

#include <hip/hip_runtime.h>

#if defined(__HIP_DEVICE_COMPILE__)
// 3. __oclc_daz_opt: HIP 5.2's ocml reads this control constant (flush f32 denormals or not), which
//    clang-19 linked from oclc_daz_opt_off.bc and clang 20+ no longer links (ROCm 6's ocml dropped it):
//    "undefined symbol: __oclc_daz_opt". Off, as clang-19 chose (no -fgpu-flush-denormals-to-zero).
extern "C" __attribute__((weak)) __constant__ const bool __oclc_daz_opt = false;

// Called with constant arguments through always-inlined wrappers, so the switches fold to one fence.
extern "C" __device__ __attribute__((weak, always_inline)) void __atomic_work_item_fence(__cl_mem_fence_flags,
                                                                                          __memory_order order,
                                                                                          __memory_scope scope) {
#define GPTOSS_FENCE_AT(SCOPE)                                                          \
  switch (order) {                                                                      \
    case __memory_order_relaxed: break;                                                 \
    case __memory_order_acquire: __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, SCOPE); break; \
    case __memory_order_release: __builtin_amdgcn_fence(__ATOMIC_RELEASE, SCOPE); break; \
    case __memory_order_acq_rel: __builtin_amdgcn_fence(__ATOMIC_ACQ_REL, SCOPE); break; \
    default: __builtin_amdgcn_fence(__ATOMIC_SEQ_CST, SCOPE); break;                    \
  }
  switch (scope) {
    case __memory_scope_work_item: break;  // a fence for one work-item orders nothing
    case __memory_scope_sub_group: GPTOSS_FENCE_AT("wavefront") break;
    case __memory_scope_work_group: GPTOSS_FENCE_AT("workgroup") break;
    case __memory_scope_device: GPTOSS_FENCE_AT("agent") break;
    default: GPTOSS_FENCE_AT("") break;  // all SVM devices: the system scope
  }
#undef GPTOSS_FENCE_AT
}
#endif
#endif
