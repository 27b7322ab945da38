// The one arch ladder (after ggml-cuda's common.cuh). Host code compares compute capabilities as
// 100*major + 10*minor; device code reads the feature macros below, never __CUDA_ARCH__ directly.
#pragma once

// One GPU vocabulary: every source here is written in CUDA names. Compiled as HIP, the vendor header
// maps them (runtime calls, types, shuffles) and sets WARP_SIZE from the target's wavefront.
#if defined(__HIP_PLATFORM_AMD__) || defined(__HIPCC__)
#define GPTOSS_HIP 1
#include "../hip/vendors.h"
#else
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#define WARP_SIZE 32  // every NVIDIA arch we build (sm_80..sm_120)
#endif
// WARP_SIZE is what SIMT kernels index lanes and size reductions by. mma.sync fragments are defined
// over 32 lanes: those kernels keep their 32 and compile only where GPTOSS_HAVE_MMA_SYNC is set.

#define GPTOSS_ARCH_AMPERE 800
#define GPTOSS_ARCH_ADA 890
#define GPTOSS_ARCH_HOPPER 900
#define GPTOSS_ARCH_BLACKWELL 1000
#define GPTOSS_ARCH_BLACKWELL_RTX 1200

// Oldest arch the CUDA backend runs on: bf16 mma.sync (m16n8k16) and cp.async arrived with sm_80.
#define GPTOSS_ARCH_MIN GPTOSS_ARCH_AMPERE

#if defined(__CUDA_ARCH__)
#if __CUDA_ARCH__ < GPTOSS_ARCH_MIN
#error "gpt-oss-node CUDA kernels need sm_80 or newer (bf16 mma.sync)"
#endif
#define GPTOSS_HAVE_MMA_SYNC 1   // mma.sync.aligned.m16n8k16 bf16 -> f32 (sm_80+)
#if __CUDA_ARCH__ >= GPTOSS_ARCH_ADA
#define GPTOSS_HAVE_FP8_MMA 1    // mma.sync m16n8k32 e4m3 and cvt to/from e4m3x2 (sm_89+)
#endif
#if __CUDA_ARCH__ >= GPTOSS_ARCH_HOPPER
#define GPTOSS_HAVE_PDL 1        // griddepcontrol (programmatic dependent launch, sm_90+)
#endif
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define GPTOSS_HAVE_WGMMA 1      // sm_90a only (wgmma.*; TOOLCHAIN.md §2); not used yet
#endif
#endif

namespace gptoss::cuda {
inline int arch_code(int major, int minor) { return 100 * major + 10 * minor; }
inline const char* arch_name(int code) {
  if (code >= GPTOSS_ARCH_BLACKWELL_RTX) return "blackwell (sm_120)";
  if (code >= GPTOSS_ARCH_BLACKWELL) return "blackwell (sm_100)";
  if (code >= GPTOSS_ARCH_HOPPER) return "hopper (sm_90)";
  if (code >= GPTOSS_ARCH_ADA) return "ada (sm_89)";
  if (code >= GPTOSS_ARCH_AMPERE) return "ampere (sm_80/86)";
  return "unsupported (< sm_80)";
}
}  // namespace gptoss::cuda
