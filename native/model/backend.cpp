// Device -> backend. CPU always exists; CUDA only when this build has it (GPTOSS_HAVE_CUDA, set by
// native/cuda/cuda.cmake) and cuda_probe finds a usable device and driver.
#include "backend.h"

#include "cpu/backend_cpu.h"
#ifdef GPTOSS_HAVE_CUDA
#include "cuda/backend_cuda.h"
#endif

namespace gptoss {

const char* expert_activations_name(ExpertActivations a) { return a == ExpertActivations::Q8 ? "q8" : "f32"; }

ExpertActivations parse_expert_activations(const std::string& s, const std::string& what) {
  if (s == "f32") return ExpertActivations::F32;
  if (s == "q8") return ExpertActivations::Q8;
  throw range_error(what + " must be 'f32' or 'q8', got '" + s + "'");
}

std::shared_ptr<Backend> get_backend(const Device& device) {
  if (device.kind == DeviceKind::CPU) return make_cpu_backend();
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

}  // namespace gptoss
