// linear(): out[n, O] = x[n, I] @ W[O, I]^T (+ bias). W bf16 or MXFP4. Small n (decode) runs a
// memory-bound GEMV that reads W once for up to 8 tokens; larger n the mma.sync GEMM tile.
#pragma once
#include "common.cuh"

namespace gptoss::cuda {

struct LinearArgs {
  const float* x = nullptr;
  int n = 0, K = 0, N = 0;
  const void* w = nullptr;
  const uint8_t* w_scales = nullptr;  // MXFP4 when non-null
  const void* bias = nullptr;
  int bias_kind = 0;                  // BiasKind (gemm_tile.cuh)
  float* out = nullptr;
};

// The path (Gemv, Gemm, Naive) is choose_linear()'s (policy.h); dispatch.cu asks it and calls one launcher.
void launch_linear_gemv(const LinearArgs& a, cudaStream_t stream);
// Several linears of one x (same n, K, weight format; every part on the Gemv path) as one GEMV
// launch over their concatenated rows: qkv() in a decode step. At most kGemvMaxParts parts.
void launch_linear_gemv_parts(const LinearArgs* parts, int count, cudaStream_t stream);
// add_rmsnorm then the GEMV parts on its output, one launch (add_rmsnorm_qkv in a decode step): one
// token, bf16 weights, every part reading `normed` with K = the row length. Results are bit-identical
// to launch_add_rmsnorm + launch_linear_gemv_parts.
bool add_rmsnorm_gemv_fusable(const LinearArgs* parts, int count, const float* x, const float* residual,
                              const float* normed, const void* norm_weight, bool norm_weight_bf16);
void launch_add_rmsnorm_gemv(const LinearArgs* parts, int count, float* x, const float* residual, const void* norm_weight,
                             bool norm_weight_bf16, float eps, float* normed, int* counters, cudaStream_t stream);
// Q8_0 weights on gemv_xs_kernel when choose_gemv answers Xs for every token chunk of the call
// (the default, GPTOSS_CUDA_GEMV=warp opts out; q8.cu asks first): per part, w = the int8 values [N, K], w_scales = the f16 block
// scales [N, K / 32] (q8.cuh's device layout; here w_scales is not MXFP4's); 1 to kGemvMaxParts parts of
// one x, n and K (q, k, v: one launch over their rows). False: nothing was launched, the caller's kernels run.
bool gemv_xs_q8(const LinearArgs* parts, int count, cudaStream_t stream);
size_t linear_gemm_workspace_bytes(const LinearArgs& a);  // the bf16 halves of x
void launch_linear_gemm(const LinearArgs& a, void* workspace, cudaStream_t stream);
// Several weights times the same x in one GEMM launch (q, k, v of a prefill): all on the Gemm path,
// bf16, one x, one bias kind (linear_gemm_parts_ok). Workspace: linear_gemm_workspace_bytes(parts[0]).
bool linear_gemm_parts_ok(const LinearArgs* parts, int count);
void launch_linear_gemm_parts(const LinearArgs* parts, int count, void* workspace, cudaStream_t stream);
// x's bf16 halves in the workspace (where launch_linear_gemm_parts splits x), and the GEMM on halves already
// there (written by the op before, e.g. launch_add_rmsnorm_split: one launch fewer).
struct LinearHalves {
  uint16_t* hi;
  uint16_t* lo;
};
LinearHalves linear_gemm_halves(const LinearArgs& a, void* workspace);
void launch_linear_gemm_parts_halves(const LinearArgs* parts, int count, const LinearHalves& h, cudaStream_t stream);
void launch_linear_naive(const LinearArgs& a, cudaStream_t stream);

}  // namespace gptoss::cuda
