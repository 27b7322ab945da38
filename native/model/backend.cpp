// Device -> backend. CPU always exists; CUDA only when this build has it (GPTOSS_HAVE_CUDA, set by
// native/cuda/cuda.cmake) and cuda_probe finds a usable device and driver; HIP when hip_loader finds
// the ROCm runtime, this build's HIP plugin and an AMD GPU the plugin has code for.
#include "backend.h"

#include <algorithm>
#include <vector>

#include "op_checks.h"

#include "cpu/backend_cpu.h"
#include "hip/hip_loader.h"
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

DType parse_kv_cache(const std::string& s, const std::string& what) {
  if (s == "f16") return DType::F16;
  if (s == "bf16") return DType::BF16;
  if (s == "f32") return DType::F32;
  throw range_error(what + " must be 'f16', 'bf16' or 'f32', got '" + s + "'");
}

void Backend::gather_rows(const Tensor& x, const Tensor& rows, Tensor& out) {
  checks::gather_rows(x, rows, out, device());
  const int64_t n = x.dim(0), c = x.dim(1), r = rows.dim(0);
  std::vector<float> xs(static_cast<size_t>(n * c)), os(static_cast<size_t>(r * c));
  std::vector<int32_t> idx(static_cast<size_t>(r));
  copy_to_host(x, xs.data(), xs.size() * sizeof(float));
  copy_to_host(rows, idx.data(), idx.size() * sizeof(int32_t));
  for (int64_t i = 0; i < r; ++i) {
    if (idx[size_t(i)] < 0 || idx[size_t(i)] >= n)
      throw range_error("gatherRows: rows[" + std::to_string(i) + "] = " + std::to_string(idx[size_t(i)]) +
                        " is outside x's " + std::to_string(n) + " rows");
    std::copy_n(xs.data() + idx[size_t(i)] * c, c, os.data() + i * c);
  }
  copy_from_host(out, os.data(), os.size() * sizeof(float));
}

std::vector<int32_t> Backend::sample_rows(const Tensor& logits, const std::vector<int32_t>& rows,
                                          const std::vector<SampleParams>& params, const std::vector<float>& uniforms) {
  if (params.size() != rows.size() || uniforms.size() != rows.size())
    throw range_error("sampleRows: rows, params and uniforms must have one entry per draw");
  std::vector<int32_t> out(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || rows[i] >= logits.dim(0))
      throw range_error("sampleRows: rows[" + std::to_string(i) + "] = " + std::to_string(rows[i]) + " is outside the logits' " +
                        std::to_string(logits.dim(0)) + " rows");
    out[i] = sample(logits.rows(rows[i], 1), params[i], uniforms[i]);
  }
  return out;
}

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
