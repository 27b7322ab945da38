// The GPU root header: the vendor's runtime (CUDA, or HIP through native/hip/vendors.h), the device
// feature macros of the arch ladder (arch.h), and the trap of a kernel whose feature was not compiled.
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

#include "arch.h"

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
#define GPTOSS_HAVE_BULK_ASYNC 1 // cp.async.bulk(.tensor) and mbarrier expect-tx (the TMA unit, sm_90+; bulk_copy.cuh)
#endif
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define GPTOSS_HAVE_WGMMA 1      // sm_90a only (wgmma.*; TOOLCHAIN.md §2); not used yet
#endif
#if defined(__CUDA_ARCH_FEAT_SM100_ALL)
#define GPTOSS_HAVE_TCGEN05 1    // sm_100a only (tcgen05.mma, tensor memory; mma_mxf4.cuh); no kernel uses it yet
#endif
#if defined(__CUDA_ARCH_FEAT_SM120_ALL)
#define GPTOSS_HAVE_MMA_BLOCK_SCALE 1  // sm_120a only: mma.sync kind::mxf4 block_scale (mma_mxf4.cuh); no kernel uses it yet
#endif
#endif

// AMD CDNA matrix cores (MFMA): gfx90a (MI200), gfx942 (MI300), gfx950 (MI350).
#if defined(__HIP_DEVICE_COMPILE__) && (defined(__gfx90a__) || defined(__gfx942__) || defined(__gfx950__))
#define GPTOSS_HAVE_MFMA 1
#endif

// The arch a kernel was compiled for (0 in the host pass): what the device probe (device.cu) reads
// back to learn which of this binary's images runs on a device. NVIDIA: arch_code() (900); AMD: the
// gfx number (942; gfx90a is 910).
#if defined(__CUDA_ARCH__)
#define GPTOSS_COMPILED_ARCH __CUDA_ARCH__
#elif defined(__HIP_DEVICE_COMPILE__) && defined(__gfx950__)
#define GPTOSS_COMPILED_ARCH 950
#elif defined(__HIP_DEVICE_COMPILE__) && defined(__gfx942__)
#define GPTOSS_COMPILED_ARCH 942
#elif defined(__HIP_DEVICE_COMPILE__) && defined(__gfx90a__)
#define GPTOSS_COMPILED_ARCH 910
#elif defined(__HIP_DEVICE_COMPILE__)
#define GPTOSS_COMPILED_ARCH 1  // another AMD target: an image, no known features
#else
#define GPTOSS_COMPILED_ARCH 0
#endif

// The body of a kernel whose arch feature was not compiled for this image (after ggml's
// NO_DEVICE_CODE): it traps (the launch fails with an error the backend reports) instead of running
// empty and leaving its outputs unwritten. The path choosers never pick such a kernel (GpuCaps says
// what was compiled); this is the net under them. A no-op in the host pass.
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
#if defined(GPTOSS_HIP)
#define GPTOSS_TRAP() __builtin_trap()
#else
#define GPTOSS_TRAP() __trap()
#endif
#define GPTOSS_NO_DEVICE_CODE(feature)                                                                  \
  do {                                                                                                  \
    if (threadIdx.x == 0 && blockIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0)                      \
      printf("gpt-oss-node: %s needs %s, not compiled for this GPU (arch %d)\n", __func__, feature,   \
             GPTOSS_COMPILED_ARCH);                                                                     \
    GPTOSS_TRAP();                                                                                      \
  } while (0)
#else
#define GPTOSS_NO_DEVICE_CODE(feature) \
  do {                                 \
  } while (0)
#endif
