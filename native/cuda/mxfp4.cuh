// MXFP4 -> f32/bf16 dequantization (tests and tools; the model never materializes dequantized experts),
// and the in-place re-layout of expert matrices into the decode layout (mxfp4_layout.h).
#pragma once
#include "common.cuh"

namespace gptoss::cuda {
// blocks: [nblocks, 16] bytes, scales: [nblocks]; out: nblocks*32 values, f32 or bf16.
void launch_mxfp4_dequantize(const uint8_t* blocks, const uint8_t* scales, int64_t nblocks, void* out,
                             bool out_bf16, cudaStream_t stream);
// `mats` matrices [rows, nch] (blocks [.., 16] bytes, scales [..] bytes; rows % 16 == 0) from the
// checkpoint layout to the decode layout, in place: each word through mxlayout::to_decode_word, the
// scales through scratch (mats * rows * nch bytes) to mxlayout::scale_index's order.
void launch_mxfp4_to_decode_layout(uint8_t* blocks, uint8_t* scales, int64_t mats, int64_t rows, int64_t nch,
                                   uint8_t* scratch, cudaStream_t stream);
}  // namespace gptoss::cuda
