// The CUDA backend's entry points (implemented in native/cuda/backend_cuda.cu).
#pragma once
#include <memory>
#include <string>

#include "model/backend.h"

namespace gptoss {

std::shared_ptr<Backend> make_cuda_backend(int index);
std::string cuda_probe(int* device_count);

}  // namespace gptoss
