// The CUDA names the kernels and the backend use, mapped to HIP (after ggml-cuda's vendors/hip.h).
// Every GPU source in native/cuda/ is written once, in CUDA names; native/cuda/arch.cuh includes this
// header instead of the CUDA runtime when the same .cu is compiled as HIP (__HIP_PLATFORM_AMD__ or
// __HIPCC__), so a kernel body is shared, never forked. Only names in use are mapped: add one when a
// kernel or the backend starts calling it. Never included by an nvcc build.
#pragma once
#include <hip/hip_bf16.h>
#include <hip/hip_runtime.h>

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
#define cudaFuncGetAttributes(attr, fn) hipFuncGetAttributes(attr, reinterpret_cast<const void*>(fn))
#define cudaFuncSetAttribute(fn, attr, value) hipFuncSetAttribute(reinterpret_cast<const void*>(fn), attr, value)
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
