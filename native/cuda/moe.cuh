// Router (top-k + softmax) and the MoE block: a decode path (few tokens: fused matvecs reading only
// the routed experts' packed weights) and a prefill path (MegaBlocks-style: count, permute into
// expert-contiguous slots, one grouped GEMM launch per projection, un-permute with routing weights).
#pragma once
#include "common.cuh"

namespace gptoss::cuda {

struct RouterArgs {
  const float* x = nullptr;
  int n = 0, H = 0, E = 0, k = 0;
  const uint16_t* weight = nullptr;  // bf16 [E, H]
  const void* bias = nullptr;
  bool bias_bf16 = true;
  int32_t* expert_idx = nullptr;     // [n, k]
  float* expert_weight = nullptr;    // [n, k]
};
// Few tokens: one warp per expert over many blocks, the last block of a token selects (needs
// router_workspace_bytes and the backend's counters); many tokens: one block per token.
bool router_uses_split(const RouterArgs& a);  // policy.h's, on the current device
size_t router_workspace_bytes(const RouterArgs& a);
void launch_router(const RouterArgs& a, void* workspace, int* counters, cudaStream_t stream);
// add_rmsnorm then the router in one launch (few tokens; router_workspace_bytes of workspace):
// x += residual, normed = rmsnorm(x) * norm_weight (bit-identical to launch_add_rmsnorm), a.x unused.
bool add_rmsnorm_router_fusable(const RouterArgs& a, const void* x, const void* residual, const void* normed,
                                const void* norm_weight, bool norm_weight_bf16);
void launch_add_rmsnorm_router(const RouterArgs& a, float* x, const float* residual, const void* norm_weight,
                               bool norm_weight_bf16, float eps, float* normed, void* workspace, int* counters,
                               cudaStream_t stream);

struct MoeArgs {
  const float* x = nullptr;          // [n, H]
  const int32_t* expert_idx = nullptr;
  const float* expert_weight = nullptr;
  int n = 0, k = 0, E = 0, H = 0, I = 0;
  bool bf16 = false;                 // experts bf16 rows (loadModel experts: 'bf16'): gate_up [E, 2I, H],
                                     // down [E, H, I] at the same pointers, no scales
  const uint8_t* gate_up = nullptr;  // MXFP4 blocks [E, 2I, H/32, 16]
  const uint8_t* gate_up_scales = nullptr;
  const void* gate_up_bias = nullptr;  // bf16 or f32 [E, 2I]
  bool gate_up_bias_bf16 = true;
  const uint8_t* down = nullptr;     // MXFP4 blocks [E, H, I/32, 16]
  const uint8_t* down_scales = nullptr;
  const void* down_bias = nullptr;     // bf16 or f32 [E, H]
  bool down_bias_bf16 = true;
  float limit = 7.f, alpha = 1.702f;
  float* out = nullptr;              // [n, H]
  int* err = nullptr;
  int* counters = nullptr;           // the backend's last-block counters (decode path)
  int slice_blocks = 32;             // decode MMA kernels: MX blocks a warp (set by the launcher)
  bool decode_layout = false;        // gate_up, down re-laid at upload (mxfp4_layout.h; MoeWeights::decode_layout)
};

// Decode path when n*k is at most kMoeDecodeMaxPairs (token, expert) pairs, grouped GEMM above:
// moe_uses_decode() (policy.h).
// Workspace of the decode or the grouped path (dispatch.cu picks the path).
size_t moe_workspace_bytes(const MoeArgs& a, bool decode);
void launch_moe_decode(const MoeArgs& a, void* workspace, cudaStream_t stream);
// Decode kernels: tensor-core GEMVs (moe_decode_mma.cu; Mma = bit-placed E2M1, MmaPrmt = prmt
// tables, MmaFp8 = e4m3 mma.sync streaming) or the SIMT LUT kernels above: choose_moe_decode()
// (policy.h) picks one. Same workspace as launch_moe_decode.
void launch_moe_decode_mma(const MoeArgs& a, MoeDecodeKind kind, void* workspace, cudaStream_t stream);
#if defined(GPTOSS_HIP)
// MoeDecodeKind::Mfma: native/hip/moe_decode_mfma.hip (AMD matrix cores). Same workspace.
void launch_moe_decode_mfma(const MoeArgs& a, void* workspace, cudaStream_t stream);
#endif
// Either weight format (a.bf16): the MXFP4 or the bf16 GEMM tile, one launch per projection.
void launch_moe_grouped(const MoeArgs& a, void* workspace, cudaStream_t stream);
// A batched step's tokens (more pairs than the decode kernels take, few an expert): the routing grouped
// by expert as for the GEMM tile, then the decode MMA kernels over groups of up to 4 or 8 pairs of one
// expert (moe_group_tokens(); each expert's weights read once a group), un-permuted with the routing weights.
// MXFP4 experts in the checkpoint's layout, where the Mma decode kernels fit (policy.h: MoeBatchPath).
size_t moe_group_mma_workspace_bytes(const MoeArgs& a);
void launch_moe_group_mma(const MoeArgs& a, void* workspace, cudaStream_t stream);
// The groups as the kernels read them (moe_decode_mma.cu): group_start [E + 1] (slots of each expert),
// tile_start [E + 1] (first group of each expert), perm_token [P] (slot -> token); max_groups: grid bound.
struct MoeGroups {
  const int32_t* group_start = nullptr;
  const int32_t* tile_start = nullptr;
  const int32_t* perm_token = nullptr;
  int max_groups = 0;
  int group_tokens = 4;  // pairs a group: 4 or 8
};
void launch_moe_group_kernels(const MoeArgs& a, const MoeGroups& groups, float* act, float* y, cudaStream_t stream);
// bf16 experts, choose_moe_bf16()'s Gemv (moe_bf16.cu): SIMT GEMVs over the routed experts' rows, f32
// sums (same workspace as launch_moe_decode: act [pairs, I]).
void launch_moe_bf16_gemv(const MoeArgs& a, void* workspace, cudaStream_t stream);

}  // namespace gptoss::cuda
