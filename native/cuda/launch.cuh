// Launching: the runtime-error macro every call site uses, and launch_k() with programmatic dependent
// launch (PDL) for the decode-step kernels.
#pragma once
#include <utility>

#include "arch.cuh"
#include "core/error.h"
#include "device.h"  // launcher_slot

namespace gptoss::cuda {

// Warps of a GEMV block (matmul.cu, q8.cu): 256 threads, the kernels' launch bounds: 8 warps on NVIDIA,
// 4 wavefronts on AMD (8 wavefronts would exceed __launch_bounds__(256) and fail to launch).
constexpr int kGemvWarps = 256 / WARP_SIZE;

// Every CUDA runtime error becomes a gptoss::Error naming the call (never abort: JS catches it).
[[noreturn]] void throw_cuda_error(const char* call, cudaError_t err, const char* file, int line);

#define GPTOSS_CUDA_CHECK(call)                                                          \
  do {                                                                                   \
    cudaError_t gptoss_err_ = (call);                                                    \
    if (gptoss_err_ != cudaSuccess) ::gptoss::cuda::throw_cuda_error(#call, gptoss_err_, __FILE__, __LINE__); \
  } while (0)
// After every launch: configuration errors surface here, asynchronous faults at the next sync.
#define GPTOSS_CUDA_LAUNCH(name) GPTOSS_CUDA_CHECK(cudaGetLastError())

// ---------------------------------------------------------------------------------------------
// Programmatic dependent launch (sm_90+). Decode-step kernels are launched with launch_k(), which
// sets the programmatic-serialization attribute when the backend enables it for the calling
// thread's op (t_pdl): the next kernel's CTAs may be scheduled while this one is still running.
// The protocol every launch_k kernel follows:
//  - every thread calls pdl_wait() (waits for the previous kernel to complete, its writes visible)
//    before it reads anything the previous kernel writes or writes anything that kernel reads;
//  - then pdl_launch_dependents(), so the next kernel's CTAs start only once all of this grid's
//    have passed their wait. Hence, before its own wait, a kernel may read the outputs of kernels
//    two or more launches back (they are complete) and weights: that is the overlap.
//  - no CTA may exit without waiting (error paths included), so a grid's completion still
//    implies its predecessors'.
// On older archs both calls are no-ops and launch_k() launches normally.
// ---------------------------------------------------------------------------------------------
inline thread_local bool t_pdl = false;

__device__ __forceinline__ void pdl_wait() {
#if defined(GPTOSS_HAVE_PDL)
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(GPTOSS_HAVE_PDL)
  asm volatile("griddepcontrol.launch_dependents;\n" :::);
#endif
}

template <typename... KArgs, typename... Args>
void launch_k(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args&&... args) {
#if defined(GPTOSS_HIP)
  kernel<<<grid, block, smem, stream>>>(std::forward<Args>(args)...);  // no programmatic dependent launch on AMD
  GPTOSS_CUDA_CHECK(cudaGetLastError());
#else
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = t_pdl ? 1 : 0;
  GPTOSS_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
#endif
}

#if !defined(GPTOSS_HIP)
// A thread-block cluster launch's configuration (sm_90+): grid of clusters of `cluster` blocks, with launch_k's
// programmatic-serialization attribute when pdl (the calling op's t_pdl). The attributes live in the struct, so the
// configuration stays valid while it does: cudaLaunchKernelEx(&l.cfg, kernel, args...), or an occupancy query on it.
struct ClusterLaunch {
  cudaLaunchConfig_t cfg = {};
  cudaLaunchAttribute attr[2] = {};
  ClusterLaunch(const ClusterLaunch&) = delete;  // cfg.attrs points into this object
  ClusterLaunch& operator=(const ClusterLaunch&) = delete;
  ClusterLaunch(dim3 grid, dim3 block, size_t smem, cudaStream_t stream, dim3 cluster, bool pdl) {
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = cluster.x, attr[0].val.clusterDim.y = cluster.y, attr[0].val.clusterDim.z = cluster.z;
    attr[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[1].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = pdl ? 2 : 1;
  }
};
#endif

// A kernel's dynamic shared memory opt-in (always set: static + dynamic above 48 KB needs it too) and the full
// carveout, set on the current device for the largest size asked so far (the attributes are per device:
// launcher_slot; idempotent, a benign race between threads).
template <typename... KArgs>
void opt_in_smem(void (*kernel)(KArgs...), int smem) {
  std::atomic<int>& attr_bytes = launcher_slot(kernel);
  if (smem > attr_bytes.load(std::memory_order_relaxed)) {
    GPTOSS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    GPTOSS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    attr_bytes.store(smem, std::memory_order_relaxed);
  }
}
}  // namespace gptoss::cuda
