// Host re-layouts of expert weights between the forms the backends read (cpu/ops.h: transpose_experts).
// transformers saves dense experts as [E, in, out] (out = x @ W[e]); the GPU kernels read [E, out, in]
// (torch Linear's layout, the MXFP4 blocks' row order: gemm_tile.cuh's W [N, K], one warp a row in the
// decode GEMV). Loading a bf16 fine-tuned checkpoint onto CUDA moves the experts through this once.
#include <algorithm>
#include <cstring>

#include "core/thread_pool.h"
#include "cpu/ops.h"

namespace gptoss::cpu {

namespace {

// out[b][a] = src[a][b] for one expert's [A, B] matrix, rows [a0, a1) of the source, in square tiles
// so both sides touch whole cache lines (a 64 x 64 tile of bf16 is 8 KB each way: L1-resident).
template <typename T>
void transpose_rows(const T* src, T* out, int64_t A, int64_t B, int64_t a0, int64_t a1) {
  constexpr int64_t kTile = 64;
  for (int64_t b0 = 0; b0 < B; b0 += kTile) {
    const int64_t b1 = std::min(B, b0 + kTile);
    for (int64_t a = a0; a < a1; ++a) {
      const T* s = src + a * B;
      for (int64_t b = b0; b < b1; ++b) out[b * A + a] = s[b];
    }
  }
}

}  // namespace

void transpose_experts(const Tensor& src, Tensor& out) {
  expect_ndim(src, 3, "transposeExperts: src");
  if (src.dtype != DType::BF16 && src.dtype != DType::F16 && src.dtype != DType::F32)
    throw type_error("transposeExperts: src must be bf16, f16 or f32, got " + src.describe());
  expect_dtype(out, src.dtype, "transposeExperts: out");
  const int64_t E = src.dim(0), A = src.dim(1), B = src.dim(2);
  expect_shape(out, {E, B, A}, "transposeExperts: out");
  if (out.data == src.data && src.numel() != 0) throw range_error("transposeExperts: out must not alias src");
  if (src.numel() == 0) return;
  // One task = 64 source rows of one expert (every output row gets a 64-value run).
  constexpr int64_t kRows = 64;
  const int64_t per_expert = (A + kRows - 1) / kRows;
  parallel_for(E * per_expert, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t e = t / per_expert, a0 = (t % per_expert) * kRows, a1 = std::min(A, a0 + kRows);
      if (src.dtype == DType::F32)
        transpose_rows(src.ptr<float>() + e * A * B, out.ptr<float>() + e * A * B, A, B, a0, a1);
      else
        transpose_rows(src.ptr<uint16_t>() + e * A * B, out.ptr<uint16_t>() + e * A * B, A, B, a0, a1);
    }
  }, 1);
}

}  // namespace gptoss::cpu
