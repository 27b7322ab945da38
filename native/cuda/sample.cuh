// Device sampling: greedy argmax, or temperature + top-k + top-p + min-p with one draw, following
// the definition in native/cpu/sample.cpp exactly (rank by (p desc, index asc); the kept set is a
// prefix of that ranking; the draw walks kept tokens in index order: first i with cumsum > u*total).
#pragma once
#include "common.cuh"
#include "model/backend.h"

namespace gptoss::cuda {

size_t sample_workspace_bytes(int vocab, const SampleParams& params);
// Writes the chosen token id to *result (device). No host sync. `counters`: the backend's
// last-block counters (common.cuh).
void launch_sample(const float* logits, int vocab, const SampleParams& params, float uniform, void* workspace,
                   int* counters, int32_t* result, cudaStream_t stream);

}  // namespace gptoss::cuda
