// Device -> backend. CPU always exists; CUDA only when this build has it (GPTOSS_HAVE_CUDA, set by
// native/cuda/cuda.cmake) and cuda_probe finds a usable device and driver; HIP when hip_loader finds
// the ROCm runtime, this build's HIP plugin and an AMD GPU the plugin has code for.
#include "backend.h"

#include "cpu/backend_cpu.h"
#include "hip/hip_loader.h"
#ifdef GPTOSS_HAVE_CUDA

#include "cuda/backend_cuda.h"
#endif

namespace gptoss {

std::shared_ptr<Backend> get_backend(const Device& device) {
  if (device.kind == DeviceKind::CPU) return make_cpu_backend();
  if (device.kind == DeviceKind::HIP) return make_hip_backend(device.index);
#ifdef GPTOSS_HAVE_CUDA
  return make_cuda_backend(device.index);
#else
  throw runtime_error("this build of gpt-oss-node has no CUDA backend (it was compiled without nvcc); "
                      "use device 'cpu', or rebuild with the CUDA toolkit installed (npx cmake-js compile)");
#endif
}

std::string cuda_unavailable_reason() {
#ifdef GPTOSS_HAVE_CUDA
  int count = 0;
  // cuda_probe words the failure for the user (no driver, too old a driver, no device).
  return cuda_probe(&count);
#else
  return "this build of gpt-oss-node has no CUDA backend (compiled without nvcc)";
#endif
}

int cuda_device_count() {
#ifdef GPTOSS_HAVE_CUDA
  int count = 0;
  return cuda_probe(&count).empty() ? count : 0;
#else
  return 0;
#endif
}

std::string hip_unavailable_reason() {
  int count = 0;
  return hip_probe(&count);
}

int hip_device_count() {
  int count = 0;
  return hip_probe(&count).empty() ? count : 0;
}

}  // namespace gptoss
