// MXFP4 -> f32/bf16 dequantization (tests and tools; the model never materializes dequantized experts).
#pragma once
#include "common.cuh"

namespace gptoss::cuda {
// blocks: [nblocks, 16] bytes, scales: [nblocks]; out: nblocks*32 values, f32 or bf16.
void launch_mxfp4_dequantize(const uint8_t* blocks, const uint8_t* scales, int64_t nblocks, void* out,
                             bool out_bf16, cudaStream_t stream);
}  // namespace gptoss::cuda
