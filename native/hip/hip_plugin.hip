// The HIP plugin's entry point (hip_plugin.h): the device check the loader cannot do without HIP
// code (does this plugin carry a code object for the GPU?) and the backend factory, which is
// native/cuda's backend compiled as HIP.
#include <hip/hip_runtime.h>

#include <string>

#include "cuda/backend_cuda.h"
#include "hip_plugin.h"

#ifndef GPTOSS_HIP_BUILD_ID
#error "GPTOSS_HIP_BUILD_ID must be defined by native/hip/hip.cmake"
#endif

namespace gptoss {
namespace {

// An empty kernel of this plugin. hipFuncGetAttributes on it fails (hipErrorNoBinaryForGpu or
// hipErrorInvalidDeviceFunction) when the plugin has no code object for the current device: the
// same question the runtime would answer at the first real launch, asked before any memory is touched.
__global__ void gptoss_hip_code_probe() {}

// The plugin's archs, from the --offload-arch list (hip.cmake).
constexpr const char* kArchs = GPTOSS_HIP_ARCHS;

// hipDeviceProp_t changed layout in ROCm 6 (hipGetDevicePropertiesR0600): a plugin built on HIP 5.2
// headers must not call hipGetDeviceProperties. Name and gfx version come from the stable calls.
std::string device_label(int index) {
  char name[256] = {};
  if (hipDeviceGetName(name, int(sizeof name) - 1, index) != hipSuccess) (void)hipGetLastError();
  int major = 0, minor = 0;
  (void)hipDeviceGetAttribute(&major, hipDeviceAttributeComputeCapabilityMajor, index);
  (void)hipDeviceGetAttribute(&minor, hipDeviceAttributeComputeCapabilityMinor, index);
  return "hip:" + std::to_string(index) + " (" + name + ", gfx" + std::to_string(major) + std::to_string(minor) + "x)";
}

// "" when the plugin has code for device `index`; else the reason.
std::string missing_code(int index) {
  hipError_t e = hipSetDevice(index);
  if (e == hipSuccess) {
    // Room for any runtime's struct: ROCm 6 kept hipFuncAttributes, but the plugin does not depend on it.
    union {
      hipFuncAttributes attr;
      unsigned char pad[1024];
    } out{};
    e = hipFuncGetAttributes(&out.attr, reinterpret_cast<const void*>(&gptoss_hip_code_probe));
  }
  if (e == hipSuccess) return "";
  (void)hipGetLastError();
  return device_label(index) + ": this build has no code for it (" + hipGetErrorName(e) + "; built for " + kArchs +
         ", set GPTOSS_HIP_ARCHS and rebuild)";
}

std::string probe(int* device_count) {
  *device_count = 0;
  int n = 0;
  const hipError_t e = hipGetDeviceCount(&n);
  if (e != hipSuccess) {
    (void)hipGetLastError();
    return std::string("no usable AMD GPU: ") + hipGetErrorName(e) + " (hipGetDeviceCount)";
  }
  if (n <= 0) return "no AMD GPU";
  std::string missing;
  for (int i = 0; i < n; ++i) {
    const std::string why = missing_code(i);
    if (why.empty()) {
      *device_count = n;  // make_backend() names a device among them that has no code
      return "";
    }
    missing += (missing.empty() ? "" : "; ") + why;
  }
  return missing;
}

std::shared_ptr<Backend> make_backend(int index) {
  const std::string why = missing_code(index);
  if (!why.empty()) throw runtime_error(why);
  return make_cuda_backend(index);
}

const HipPluginApi kApi{GPTOSS_HIP_BUILD_ID, kArchs, &probe, &make_backend};

}  // namespace
}  // namespace gptoss

extern "C" __attribute__((visibility("default"))) const gptoss::HipPluginApi* gptoss_hip_plugin() {
  return &gptoss::kApi;
}
