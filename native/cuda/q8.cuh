// Q8_0 dense weights on the GPU (GGUF's attention, embedding and LM head; denseWeights: 'q8'): per 32
// values an f16 scale d and 32 int8 q, value = d * q (ggml's block_q8_0; core/dtype.h).
//
// Device layout. ggml's 34-byte blocks leave the int8 values 2-byte aligned, so upload() repacks a
// Q8_0 tensor [N, K] into the same number of bytes as two arrays: q int8 [N, K] (row r, block g at
// r * K + 32 g: 16-byte aligned for 16-byte loads) then d f16 [N, K / 32]. Tensor::scales points at d.
//
// linear(): out[n, N] = x[n, K] W^T (+ bias), in f32 like the CPU's q8_0_rows (sum of q * x over a
// block, times d):
//  - GEMV (decode, up to kGemvMaxTokens tokens a launch): one warp a row, a lane a 32-value block
//    (two 16-byte loads and its f16 scale), every token of the launch sharing each weight load;
//  - GEMM (prefill): a chunk of rows at a time is dequantized to bf16 hi + lo (d * q is exact in f32,
//    needs up to 18 significant bits; hi + lo keeps 16, the rest is < 2^-16 relative), both halves
//    multiplied by the bf16 tensor-core tile of gemm_tile.cuh as 2 * chunk weight rows, and the two
//    halves' columns summed with the bias. Twice the tile's work for bf16 weights of the same shape.
#pragma once
#include "common.cuh"

namespace gptoss::cuda {

struct Q8LinearArgs {
  const float* x = nullptr;
  int n = 0, K = 0, N = 0;            // K % 32 == 0
  const int8_t* q = nullptr;          // [N, K]
  const uint16_t* d = nullptr;        // f16 [N, K / 32]
  const void* bias = nullptr;
  int bias_kind = kBiasNone;
  float* out = nullptr;               // [n, N]
};

// ggml blocks (34 bytes each, `blocks` of them) -> the device layout above (host memory, same size).
void q8_to_device_layout(const uint8_t* ggml_blocks, int64_t blocks, uint8_t* out);

void launch_linear_q8_gemv(const Q8LinearArgs& a, cudaStream_t stream);
// q, k and v (1 to kGemvMaxParts parts of one x, n and K) as one GEMV launch over their rows, when
// choose_gemv puts Q8_0 on gemv_xs_kernel (the default; not under GPTOSS_CUDA_GEMV=warp); false: nothing launched,
// the caller runs the parts one by one.
bool launch_linear_q8_gemv_parts(const Q8LinearArgs* parts, int count, cudaStream_t stream);
size_t linear_q8_gemm_workspace_bytes(const Q8LinearArgs& a);
void launch_linear_q8_gemm(const Q8LinearArgs& a, void* workspace, cudaStream_t stream);

// out[i, :] = dequantized row tokens[i] of a Q8_0 table [vocab, H] (device layout); a token outside
// [0, vocab) sets kErrTokenRange and writes NaN, as embedding_kernel does.
void launch_embedding_q8(const int32_t* tokens, int n, const int8_t* q, const uint16_t* d, int vocab, int H, float* out,
                         int* err, cudaStream_t stream);

}  // namespace gptoss::cuda
