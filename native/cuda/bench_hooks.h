// For bench/gpu-kernels.cpp only: the CUDA backend's stream (to time ops with CUDA events on it).
#pragma once
#include "arch.cuh"  // cuda_runtime.h, or the HIP vendor header

#include "model/backend.h"

namespace gptoss {
// Throws if `backend` is not the CUDA backend.
cudaStream_t cuda_backend_stream(Backend& backend);
}  // namespace gptoss
