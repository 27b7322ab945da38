// The CUDA backend's entry points (make_cuda_backend: native/cuda/dispatch.cu; cuda_probe: native/cuda/device.cu).
#pragma once
#include <memory>
#include <string>

#include "model/backend.h"

namespace gptoss {

std::shared_ptr<Backend> make_cuda_backend(int index);
std::string cuda_probe(int* device_count);

}  // namespace gptoss
