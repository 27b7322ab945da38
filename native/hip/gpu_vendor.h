// The few GPU runtime names the kernels in native/cuda/ use, mapped per vendor, so a HIP build can
// compile the same kernel bodies (STYLE.md: share kernel bodies, do not fork them). Only what the
// kernels and backend_cuda.cu actually call lives here; add a name when a kernel starts using it.
#pragma once

#if defined(__HIPCC__) || defined(__HIP_PLATFORM_AMD__)
#include <hip/hip_bf16.h>
#include <hip/hip_runtime.h>
using gpuError_t = hipError_t;
using gpuStream_t = hipStream_t;
using gpuEvent_t = hipEvent_t;
using gpuGraph_t = hipGraph_t;
using gpuGraphExec_t = hipGraphExec_t;
#define gpuSuccess hipSuccess
#define gpuGetErrorString hipGetErrorString
#define gpuGetLastError hipGetLastError
#define gpuMalloc hipMalloc
#define gpuFree hipFree
#define gpuMemcpyAsync hipMemcpyAsync
#define gpuMemsetAsync hipMemsetAsync
#define gpuMemcpyHostToDevice hipMemcpyHostToDevice
#define gpuMemcpyDeviceToHost hipMemcpyDeviceToHost
#define gpuMemcpyDeviceToDevice hipMemcpyDeviceToDevice
#define gpuStreamSynchronize hipStreamSynchronize
#define gpuSetDevice hipSetDevice
#define gpuGetDeviceCount hipGetDeviceCount
#define gpuFuncSetAttribute hipFuncSetAttribute
#define gpuGetDevice hipGetDevice
#define gpuDeviceGetAttribute hipDeviceGetAttribute
#define gpuDevAttrMaxSharedMemoryPerBlockOptin hipDeviceAttributeSharedMemPerBlockOptin
#define gpuDevAttrMultiProcessorCount hipDeviceAttributeMultiprocessorCount
#define gpuDevAttrComputeCapabilityMajor hipDeviceAttributeComputeCapabilityMajor
#define gpuDevAttrComputeCapabilityMinor hipDeviceAttributeComputeCapabilityMinor
// AMD CDNA wavefronts are 64 lanes. Kernels that use mma.sync fragments assume 32 and are
// compiled only for CUDA (arch.cuh: GPTOSS_HAVE_MMA_SYNC); the SIMT kernels read kWarpSize.
constexpr int kWarpSize = 64;
#define GPTOSS_FULL_MASK 0xffffffffffffffffull
template <typename T> __device__ __forceinline__ T gpu_shfl_xor(T v, int mask) { return __shfl_xor(v, mask); }
template <typename T> __device__ __forceinline__ T gpu_shfl(T v, int src) { return __shfl(v, src); }
using gpu_bf16 = __hip_bfloat16;
using gpu_bf162 = __hip_bfloat162;
#else
#include <cuda_bf16.h>
#include <cuda_runtime.h>
using gpuError_t = cudaError_t;
using gpuStream_t = cudaStream_t;
using gpuEvent_t = cudaEvent_t;
using gpuGraph_t = cudaGraph_t;
using gpuGraphExec_t = cudaGraphExec_t;
#define gpuSuccess cudaSuccess
#define gpuGetErrorString cudaGetErrorString
#define gpuGetLastError cudaGetLastError
#define gpuMalloc cudaMalloc
#define gpuFree cudaFree
#define gpuMemcpyAsync cudaMemcpyAsync
#define gpuMemsetAsync cudaMemsetAsync
#define gpuMemcpyHostToDevice cudaMemcpyHostToDevice
#define gpuMemcpyDeviceToHost cudaMemcpyDeviceToHost
#define gpuMemcpyDeviceToDevice cudaMemcpyDeviceToDevice
#define gpuStreamSynchronize cudaStreamSynchronize
#define gpuSetDevice cudaSetDevice
#define gpuGetDeviceCount cudaGetDeviceCount
#define gpuFuncSetAttribute cudaFuncSetAttribute
#define gpuGetDevice cudaGetDevice
#define gpuDeviceGetAttribute cudaDeviceGetAttribute
#define gpuDevAttrMaxSharedMemoryPerBlockOptin cudaDevAttrMaxSharedMemoryPerBlockOptin
#define gpuDevAttrMultiProcessorCount cudaDevAttrMultiProcessorCount
#define gpuDevAttrComputeCapabilityMajor cudaDevAttrComputeCapabilityMajor
#define gpuDevAttrComputeCapabilityMinor cudaDevAttrComputeCapabilityMinor
// NVIDIA warps are 32 lanes (all archs we build: sm_80..sm_120).
constexpr int kWarpSize = 32;
#define GPTOSS_FULL_MASK 0xffffffffu
template <typename T> __device__ __forceinline__ T gpu_shfl_xor(T v, int mask) { return __shfl_xor_sync(GPTOSS_FULL_MASK, v, mask); }
template <typename T> __device__ __forceinline__ T gpu_shfl(T v, int src) { return __shfl_sync(GPTOSS_FULL_MASK, v, src); }
using gpu_bf16 = __nv_bfloat16;
using gpu_bf162 = __nv_bfloat162;
#endif
