// Device probe: GpuCaps per device, cuda_probe() (backend_cuda.h), and the runtime-error message.
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "backend_cuda.h"
#include "common.cuh"
#include "device.h"

// The arch list of this build (cuda.cmake; the HIP plugin's offload archs when compiled as HIP).
#if defined(GPTOSS_HIP) && defined(GPTOSS_HIP_ARCHS) && !defined(GPTOSS_CUDA_ARCH_LIST)
#define GPTOSS_CUDA_ARCH_LIST GPTOSS_HIP_ARCHS
#endif
#ifndef GPTOSS_CUDA_ARCH_LIST
#define GPTOSS_CUDA_ARCH_LIST "unknown"
#endif

namespace gptoss {
namespace cuda {

void throw_cuda_error(const char* call, cudaError_t err, const char* file, int line) {
  const char* base = std::strrchr(file, '/');
  throw runtime_error(std::string(kGpuApi) + " error: " + call + " failed: " + cudaGetErrorString(err) + " (" +
                      (base ? base + 1 : file) + ":" + std::to_string(line) + ")");
}

namespace {

// Which image of this binary the driver runs on the device: its arch and feature macros (arch.cuh).
// Every kernel of the backend is compiled for the same arch list, so this one answers for all.
__global__ void caps_probe_kernel(unsigned* out) {
  unsigned f = 0;
#if defined(GPTOSS_HAVE_MMA_SYNC)
  f |= kFeatMmaSync;
#endif
#if defined(GPTOSS_HAVE_FP8_MMA)
  f |= kFeatFp8Mma;
#endif
#if defined(GPTOSS_HAVE_PDL)
  f |= kFeatPdl;
#endif
#if defined(GPTOSS_HAVE_BULK_ASYNC)
  f |= kFeatBulkAsync;
#endif
#if defined(GPTOSS_HAVE_WGMMA)
  f |= kFeatWgmma;
#endif
#if defined(GPTOSS_HAVE_TCGEN05)
  f |= kFeatTcgen05;
#endif
#if defined(GPTOSS_HAVE_MFMA)
  f |= kFeatMfma;
#endif
#if defined(GPTOSS_HAVE_MMA_BLOCK_SCALE)
  f |= kFeatMmaBlockScale;
#endif
  out[0] = GPTOSS_COMPILED_ARCH;
  out[1] = f;
}

// The opt-in shared memory a block, lowered by GPTOSS_CUDA_SMEM_LIMIT (bytes) so a big part can run
// the tile choices of a smaller one (gpu_check does, for sm_86/89/120's 101376).
int smem_limit(int optin) {
  const char* v = std::getenv("GPTOSS_CUDA_SMEM_LIMIT");
  const long lim = v ? std::atol(v) : 0;
  return lim > 0 && lim < optin ? int(lim) : optin;
}

GpuCaps probe(int dev) {
  int prev = 0;
  GPTOSS_CUDA_CHECK(cudaGetDevice(&prev));
  GPTOSS_CUDA_CHECK(cudaSetDevice(dev));
#if defined(GPTOSS_HIP)
  // hipDeviceProp_t changed layout in ROCm 6 (native/hip/hip_plugin.hip): stable calls only.
  struct {
    char name[256] = {};
    int major = 0, minor = 0, multiProcessorCount = 0, warpSize = 64;
    size_t totalGlobalMem = 0;
  } prop;
  if (hipDeviceGetName(prop.name, int(sizeof prop.name) - 1, dev) != hipSuccess) (void)hipGetLastError();
  GPTOSS_CUDA_CHECK(cudaDeviceGetAttribute(&prop.major, cudaDevAttrComputeCapabilityMajor, dev));
  GPTOSS_CUDA_CHECK(cudaDeviceGetAttribute(&prop.minor, cudaDevAttrComputeCapabilityMinor, dev));
  GPTOSS_CUDA_CHECK(cudaDeviceGetAttribute(&prop.multiProcessorCount, cudaDevAttrMultiProcessorCount, dev));
  GPTOSS_CUDA_CHECK(cudaDeviceGetAttribute(&prop.warpSize, hipDeviceAttributeWarpSize, dev));
  if (hipDeviceTotalMem(&prop.totalGlobalMem, dev) != hipSuccess) (void)hipGetLastError();
#else
  cudaDeviceProp prop{};
  GPTOSS_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
#endif
  int optin = 0;
  GPTOSS_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  unsigned got[2] = {0, 0};
  cudaFuncAttributes fa{};
  // No image for this device: cudaErrorNoKernelImageForDevice (or InvalidDeviceFunction); the caps
  // then say compiled_arch 0 and device_unusable_reason() explains.
  if (cudaFuncGetAttributes(&fa, caps_probe_kernel) == cudaSuccess) {
    unsigned* d = nullptr;
    GPTOSS_CUDA_CHECK(cudaMalloc(&d, sizeof got));
    caps_probe_kernel<<<1, 1>>>(d);
    cudaError_t err = cudaGetLastError();
    if (err == cudaSuccess) err = cudaMemcpy(got, d, sizeof got, cudaMemcpyDeviceToHost);
    (void)cudaFree(d);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      got[0] = got[1] = 0;
    }
  } else {
    (void)cudaGetLastError();
  }
#if defined(GPTOSS_HIP)
  const bool amd = true;
#else
  const bool amd = false;
#endif
  GpuCaps c = make_caps(dev, prop.name, arch_code(prop.major, prop.minor), int(got[0]), got[1], smem_limit(optin),
                        prop.multiProcessorCount, prop.warpSize, prop.totalGlobalMem, amd);
  // The block-scaled MMA has not run on any GPU this project had: its operand and scale layouts are checked
  // on the device before any kernel relies on them (moe_decode_mma.cu).
  if (c.mma_block_scale && !moe_mxf8_selftest()) {
    c.mma_block_scale = false;
    c.block_scale_selftest_failed = true;
  }
  (void)cudaSetDevice(prev);
  return c;
}

}  // namespace

const GpuCaps& device_caps(int dev) {
  static std::mutex& mu = *new std::mutex;
  static std::unique_ptr<GpuCaps>* table = new std::unique_ptr<GpuCaps>[64];
  if (dev < 0 || dev >= 64) throw range_error(gpu_device_str(dev) + ": device index out of range");
  std::lock_guard<std::mutex> lock(mu);
  if (!table[dev]) table[dev] = std::make_unique<GpuCaps>(probe(dev));
  return *table[dev];
}

const GpuCaps& current_caps() {
  int dev = 0;
  GPTOSS_CUDA_CHECK(cudaGetDevice(&dev));
  return device_caps(dev);
}

std::atomic<int>& launcher_slot(int device, const void* key, int size) {
  // Leaked on purpose, as device_caps' table: launchers may run from other threads' exit paths.
  static std::mutex& mu = *new std::mutex;
  static auto& slots = *new std::map<std::tuple<int, const void*, int>, std::atomic<int>>;
  std::lock_guard<std::mutex> lock(mu);
  return slots.try_emplace(std::make_tuple(device, key, size), 0).first->second;  // map nodes do not move
}

const char* compiled_arch_list() { return GPTOSS_CUDA_ARCH_LIST; }

std::string device_unusable_reason(const GpuCaps& c) {
  const std::string what = gpu_device_str(c.device) + " (" + c.name + ", " + arch_label(c) + ")";
  if (!c.amd && c.arch < GPTOSS_ARCH_MIN)
    return what + " is too old: gpt-oss-node needs compute capability 8.0 (Ampere) or newer";
  if (c.amd && !c.compiled_arch)
    return what + ": this HIP plugin has no code object for it (built for " + compiled_arch_list() +
           "); rebuild with GPTOSS_HIP_ARCHS naming its gfx target";
  if (!c.compiled_arch)
    return what + ": this build of gpt-oss-node has no kernels for it (CUDA architectures " + compiled_arch_list() +
           "); rebuild with GPTOSS_CUDA_ARCHS naming its arch, e.g. npx cmake-js compile --CDGPTOSS_CUDA_ARCHS=" +
           std::to_string(c.arch / 10) + "-real, or a virtual arch the driver can JIT (e.g. 80-virtual)";
  return "";
}

}  // namespace cuda

namespace {
// Why cudaGetDeviceCount failed, in the user's terms. cudart answers cudaErrorInsufficientDriver
// ("CUDA driver version is insufficient for CUDA runtime version") both when libcuda.so.1 is missing
// and when it is too old; cudaDriverGetVersion tells them apart: it reports 0 when no driver is
// installed (CUDA runtime API reference, cudaDriverGetVersion).
std::string probe_failure(cudaError_t err) {
  int driver = 0, runtime = 0;
  (void)cudaDriverGetVersion(&driver);
  (void)cudaRuntimeGetVersion(&runtime);
  (void)cudaGetLastError();
  auto version = [](int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); };
  if (err == cudaErrorInsufficientDriver && driver == 0)
    return "no NVIDIA driver was found (libcuda.so.1 could not be loaded)";
  if (err == cudaErrorInsufficientDriver)
    return "the NVIDIA driver supports CUDA " + version(driver) + " but this build needs CUDA " + version(runtime) +
           ": update the driver";
  if (err == cudaErrorNoDevice) return "no CUDA device (the NVIDIA driver is installed but sees no GPU)";
  return std::string(cudaGetErrorString(err)) + " (cudaGetDeviceCount)";
}
}  // namespace

std::string cuda_probe(int* device_count) {
  if (device_count) *device_count = 0;
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return probe_failure(err);
  }
  if (n <= 0) return "no CUDA device";
  int usable = 0;
  std::string why;
  for (int i = 0; i < n; ++i) {
    std::string reason;
    try {
      reason = cuda::device_unusable_reason(cuda::device_caps(i));
    } catch (const std::exception& e) {
      reason = cuda::gpu_device_str(i) + ": " + e.what();
    }
    if (reason.empty()) ++usable;
    else why += (why.empty() ? "" : "; ") + reason;
  }
  if (!usable) return "no usable CUDA device: " + why;
  if (device_count) *device_count = n;
  return "";
}

}  // namespace gptoss
