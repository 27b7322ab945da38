// The tensor-core GEMM tile shared by linear() (one group) and the MegaBlocks-style grouped MoE GEMMs
// (one group per expert, variable row counts, ONE launch). out[r, n] = sum_k A[src(r), k] * W[n, k].
//  - A: f32 (converted to bf16 while staging) or bf16, rows gathered through `a_rows` (the MoE
//    permutation) so no permuted copy of the activations is ever written.
//  - W: bf16 [N, K] (torch Linear layout) or MXFP4 (blocks [N, K/32, 16] + E8M0 scales [N, K/32]),
//    dequantized into shared memory inside the main loop: BK = 32 is exactly one MX block per row.
//  - mma.sync m16n8k16 bf16 -> f32 (sm_80+; portable path, wgmma would be sm_90a only).
//  - f32 activations are split into bf16 hi + lo (x = hi + lo to ~2^-17 relative) and both halves
//    are multiplied: the weights are exact in bf16 (bf16 checkpoint values, E2M1 x power of two), so
//    the product is f32-accurate at twice the tensor-core work. Plain bf16 activations moved the
//    tiny-a logits by 4e-2 relative (gate 1e-2; bench/RESULTS.md).
// Tile 128x128x32, 8 warps of 64x32, double-buffered shared memory staged through registers.
#pragma once
#include "common.cuh"

namespace gptoss::cuda {

enum class WeightFormat { BF16, MXFP4 };
enum class Epilogue { Store, SwiGLU };

struct GemmProblem {
  const void* a = nullptr;          // f32 or bf16 [*, K]
  const int32_t* a_rows = nullptr;  // slot -> source row of A; null: identity
  const void* w = nullptr;          // group g at w + g * w_group_bytes
  const uint8_t* w_scales = nullptr;
  int64_t w_group_bytes = 0, scale_group_bytes = 0;
  const void* bias = nullptr;       // group g at bias + g * bias_group_elems
  int bias_kind = kBiasNone;
  int64_t bias_group_elems = 0;
  int N = 0, K = 0;
  int M = 0;                        // rows when group_start == null (one group)
  const int32_t* group_start = nullptr;  // [G+1] slot offsets (device)
  const int32_t* tile_start = nullptr;   // [G+1] prefix of ceil(rows_g / kGemmBM) (device)
  int num_groups = 1;
  void* out = nullptr;              // f32 [M, ldo] (Store) or f32 [M, ldo = N/2] (SwiGLU)
  int ldo = 0;
  float swiglu_limit = 7.f, swiglu_alpha = 1.702f;
};

constexpr int kGemmBM = 128, kGemmBN = 128, kGemmBK = 32, kGemmThreads = 256;
constexpr int kGemmLds = kGemmBK + 8;  // +16 bytes a row: conflict-free 32-bit fragment loads

// Host launcher. `max_tiles` bounds the M tiles (grid.y); grouped problems read the true count from
// tile_start on the device (no host sync). Instantiated once, in gemm_tile.cu, for the variants
// below (STYLE.md: template instances live in their own file, not in every includer).
template <WeightFormat WF, typename AT, Epilogue EPI>
void launch_gemm_tile(const GemmProblem& p, int max_tiles, gpuStream_t stream);

extern template void launch_gemm_tile<WeightFormat::BF16, float, Epilogue::Store>(const GemmProblem&, int, gpuStream_t);
extern template void launch_gemm_tile<WeightFormat::MXFP4, float, Epilogue::Store>(const GemmProblem&, int, gpuStream_t);
extern template void launch_gemm_tile<WeightFormat::MXFP4, float, Epilogue::SwiGLU>(const GemmProblem&, int, gpuStream_t);

}  // namespace gptoss::cuda
