// The CUDA names the kernels and the backend use, mapped to HIP (after ggml-cuda's vendors/hip.h).
// Every GPU source in native/cuda/ is written once, in CUDA names; native/cuda/arch.cuh includes this
// header instead of the CUDA runtime when the same .cu is compiled as HIP (__HIP_PLATFORM_AMD__ or
// __HIPCC__), so a kernel body is shared, never forked. Only names in use are mapped: add one when a
// kernel or the backend starts calling it. Never included by an nvcc build.
#pragma once
#include <hip/hip_runtime.h>

// ---- bf16 ----
// ROCm 5.7+ ships hip_bf16.h (__hip_bfloat16, the conversions). Debian's HIP 5.2 headers, which the CI
// build uses, do not: the two conversions the kernels call are defined here instead, bit for bit as
// cuda_bf16.h's (round to nearest even; NaN stays a quiet NaN).
#if __has_include(<hip/hip_bf16.h>)
#include <hip/hip_bf16.h>
#else
#include <cstdint>
struct __hip_bfloat16 {
  uint16_t x;
};
struct __hip_bfloat162 {
  __hip_bfloat16 x, y;  // x: the low 16 bits
};
__host__ __device__ inline uint16_t gptoss_bf16_bits_rn(float f) {
  const uint32_t u = __builtin_bit_cast(uint32_t, f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
__host__ __device__ inline __hip_bfloat16 __float2bfloat16_rn(float f) { return {gptoss_bf16_bits_rn(f)}; }
__host__ __device__ inline __hip_bfloat162 __floats2bfloat162_rn(float lo, float hi) {
  return {{gptoss_bf16_bits_rn(lo)}, {gptoss_bf16_bits_rn(hi)}};
}
#endif

// ---- warps: CDNA (gfx90a, gfx942, gfx950) runs 64-lane wavefronts ----
// Host and device passes must agree (launch shapes use WARP_SIZE) and the host pass does not know the
// target, so the HIP build supports wave64 targets only: an RDNA (wave32) offload arch is refused here.
#if defined(__AMDGCN_WAVEFRONT_SIZE) && __AMDGCN_WAVEFRONT_SIZE != 64
#error "gpt-oss-node's HIP kernels are built for 64-lane wavefronts (CDNA: gfx90a, gfx942, gfx950)"
#endif
#define WARP_SIZE 64
// The *_sync shuffles take a lane mask on CUDA; a wavefront executes them together and the kernels
// pass the full mask, so the mask is dropped. An optional width argument passes through.
#define __shfl_sync(mask, ...) __shfl(__VA_ARGS__)
#define __shfl_xor_sync(mask, ...) __shfl_xor(__VA_ARGS__)
#define __shfl_up_sync(mask, ...) __shfl_up(__VA_ARGS__)
#define __shfl_down_sync(mask, ...) __shfl_down(__VA_ARGS__)

// __syncwarp: the lanes of a wavefront run in lockstep, so what remains is the memory ordering of
// shared memory among them (a wavefront-scope fence) and keeping the compiler from moving LDS
// accesses across it (the wave barrier), as ROCm 6.2's own __syncwarp does.
#if !defined(__syncwarp)
__device__ inline void gptoss_syncwarp() {
  __builtin_amdgcn_fence(__ATOMIC_RELEASE, "wavefront");
  __builtin_amdgcn_wave_barrier();
  __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "wavefront");
}
#define __syncwarp(...) gptoss_syncwarp()
#endif
// __ldcg (load cached in L2 only). The kernels use it for streamed KV rows and to read what other
// blocks of the same launch wrote, after last_block_arrives() (common.cuh). On AMD that function's
// closing __threadfence() is an agent-scope acquire, which invalidates the CU's L1 (buffer_inv on
// gfx942), so a plain load is coherent there; plain loads also take any type (uint4, float2), which
// an atomic load would not.
template <typename T>
__device__ inline T __ldcg(const T* p) {
  return *p;
}

// ---- types ----
#define __nv_bfloat16 __hip_bfloat16
#define __nv_bfloat162 __hip_bfloat162
#define cudaDeviceAttr hipDeviceAttribute_t
#define cudaDeviceProp hipDeviceProp_t
#define cudaFuncAttributes hipFuncAttributes
#define cudaError_t hipError_t
#define cudaEvent_t hipEvent_t
#define cudaGraphExec_t hipGraphExec_t
#define cudaGraph_t hipGraph_t
#define cudaStream_t hipStream_t

// ---- constants ----
#define cudaSuccess hipSuccess
#define cudaErrorInsufficientDriver hipErrorInsufficientDriver
#define cudaErrorNoDevice hipErrorNoDevice
#define cudaDevAttrComputeCapabilityMajor hipDeviceAttributeComputeCapabilityMajor
#define cudaDevAttrComputeCapabilityMinor hipDeviceAttributeComputeCapabilityMinor
#define cudaDevAttrMaxSharedMemoryPerBlockOptin hipDeviceAttributeSharedMemPerBlockOptin
#define cudaDevAttrMultiProcessorCount hipDeviceAttributeMultiprocessorCount
#define cudaEventDisableTiming hipEventDisableTiming
#define cudaFuncAttributeMaxDynamicSharedMemorySize hipFuncAttributeMaxDynamicSharedMemorySize
#define cudaFuncAttributePreferredSharedMemoryCarveout hipFuncAttributePreferredSharedMemoryCarveout
#define cudaHostAllocDefault hipHostMallocDefault
#define cudaMemcpyDeviceToDevice hipMemcpyDeviceToDevice
#define cudaMemcpyDeviceToHost hipMemcpyDeviceToHost
#define cudaMemcpyHostToDevice hipMemcpyHostToDevice
#define cudaStreamCaptureModeRelaxed hipStreamCaptureModeRelaxed
#define cudaStreamNonBlocking hipStreamNonBlocking

// ---- runtime calls ----
#define cudaDeviceGetAttribute hipDeviceGetAttribute
#define cudaDeviceSynchronize hipDeviceSynchronize
#define cudaDriverGetVersion hipDriverGetVersion
#define cudaEventCreate hipEventCreate
#define cudaEventCreateWithFlags hipEventCreateWithFlags
#define cudaEventDestroy hipEventDestroy
#define cudaEventElapsedTime hipEventElapsedTime
#define cudaEventRecord hipEventRecord
#define cudaEventSynchronize hipEventSynchronize
#define cudaFree hipFree
#define cudaFreeHost hipHostFree
// Functions, not function-like macros: a kernel template's argument list (gemm_tile_kernel<WF, EPI, MT>)
// has commas a macro would split on.
template <typename F>
inline hipError_t gptoss_func_get_attributes(hipFuncAttributes* attr, F* fn) {
  return hipFuncGetAttributes(attr, reinterpret_cast<const void*>(fn));
}
template <typename F>
inline hipError_t gptoss_func_set_attribute(F* fn, hipFuncAttribute attr, int value) {
  return hipFuncSetAttribute(reinterpret_cast<const void*>(fn), attr, value);
}
#define cudaFuncGetAttributes gptoss_func_get_attributes
#define cudaFuncSetAttribute gptoss_func_set_attribute
#define cudaGetDevice hipGetDevice
#define cudaGetDeviceCount hipGetDeviceCount
#define cudaGetDeviceProperties hipGetDeviceProperties
#define cudaGetErrorString hipGetErrorString
#define cudaGetLastError hipGetLastError
#define cudaGraphDestroy hipGraphDestroy
#define cudaGraphExecDestroy hipGraphExecDestroy
#define cudaGraphInstantiate(exec, graph, flags) hipGraphInstantiate(exec, graph, nullptr, nullptr, 0)
#define cudaGraphLaunch hipGraphLaunch
#define cudaHostAlloc hipHostMalloc
#define cudaMalloc hipMalloc
#define cudaMemGetInfo hipMemGetInfo
#define cudaMemcpy hipMemcpy
#define cudaMemcpyAsync hipMemcpyAsync
#define cudaMemset hipMemset
#define cudaMemsetAsync hipMemsetAsync
#define cudaRuntimeGetVersion hipRuntimeGetVersion
#define cudaOccupancyMaxActiveBlocksPerMultiprocessor hipOccupancyMaxActiveBlocksPerMultiprocessor
#define cudaSetDevice hipSetDevice
#define cudaStreamBeginCapture hipStreamBeginCapture
#define cudaStreamCreateWithFlags hipStreamCreateWithFlags
#define cudaStreamDestroy hipStreamDestroy
#define cudaStreamEndCapture hipStreamEndCapture
#define cudaStreamSynchronize hipStreamSynchronize
// Not mapped: cudaLaunchKernelEx (programmatic dependent launch has no AMD counterpart: launch_k()
// launches with <<<>>> on HIP) and cub (sample.cu; hipcub is the counterpart).
