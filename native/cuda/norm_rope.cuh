// Small elementwise / per-row ops: embedding, rmsnorm, rope, add, kv_store, and the fused
// add_rmsnorm and rope_kv_store of a decode step (model/backend.h).
#pragma once
#include "common.cuh"
#include "kv.cuh"

namespace gptoss::cuda {

// table: bf16 when table_bf16, else f32.
void launch_embedding(const int32_t* tokens, int n, const void* table, bool table_bf16, int vocab, int H, float* out,
                      int* err, cudaStream_t stream);
// weight: bf16 when weight_bf16, else f32.
void launch_rmsnorm(const float* x, const void* weight, bool weight_bf16, int n, int H, float eps, float* out,
                    cudaStream_t stream);
// x += residual; normed = rmsnorm(x): one launch, bit-identical to launch_add then launch_rmsnorm.
void launch_add_rmsnorm(float* x, const float* residual, const void* weight, bool weight_bf16, int n, int H, float eps,
                        float* normed, cudaStream_t stream);
// ... and normed's bf16 halves (normed_hi + normed_lo: launch_split_bf16's bits), the GEMM tile's A, in the same
// launch (the q/k/v GEMM of a decode batch: launch_linear_gemm_parts_halves).
void launch_add_rmsnorm_split(float* x, const float* residual, const void* weight, bool weight_bf16, int n, int H,
                              float eps, float* normed, uint16_t* normed_hi, uint16_t* normed_lo, cudaStream_t stream);
void launch_rope(float* x, const int32_t* positions, const float* inv_freq, int n, int heads, int D, float scale,
                 cudaStream_t stream);
void launch_add(float* acc, const float* x, int64_t count, cudaStream_t stream);
// Caches [ctx, kvHeads, D] of element type `cache` (kv.cuh; 16-bit types round to nearest even).
void launch_kv_store(const float* k, const float* v, const int32_t* positions, int n, int kv_heads, int D,
                     void* k_cache, void* v_cache, KvType cache, int ctx, int* err, cudaStream_t stream);

// rope on q [n, q_heads, D] and k [n, kv_heads, D] in place, then rotated k and v to the caches at
// positions: one launch, bit-identical to two launch_rope and one launch_kv_store.
// slots (paged cache, may be null): the cache row of each token, where RoPE still reads positions.
void launch_rope_kv_store(float* q, float* k, const float* v, const int32_t* positions, const int32_t* slots,
                          const float* inv_freq, int n, int q_heads, int kv_heads, int D, float scale, void* k_cache,
                          void* v_cache, KvType cache, int ctx, int* err, cudaStream_t stream);

// out[i] = x[rows[i]] (x [n, C], out [r, C], f32): the batch's logit rows. A row outside [0, n)
// flags kErrPositionRange and leaves its output row as it was.
void launch_gather_rows(const float* x, int n, int C, const int32_t* rows, int r, float* out, int* err,
                        cudaStream_t stream);

}  // namespace gptoss::cuda
