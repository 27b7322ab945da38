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
  bool rank_select = false;          // E <= a warp: top-k in one pass (router_select_rank; GPTOSS_CUDA_ROUTER_RANK)
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
  bool act_bf16 = false;             // loadModel's activations 'bf16' (MoeWeights::activations): the grouped wgmma tile takes A's hi half alone
};

// Decode path when n*k is at most kMoeDecodeMaxPairs (token, expert) pairs, grouped GEMM above:
// moe_uses_decode() (policy.h).
// Workspace of the decode or the grouped path (dispatch.cu picks the path).
size_t moe_workspace_bytes(const MoeArgs& a, bool decode);
void launch_moe_decode(const MoeArgs& a, void* workspace, cudaStream_t stream);
// Decode kernels: tensor-core GEMVs (moe_decode_mma.cu; Mma = bit-placed E2M1, MmaPrmt = prmt
// tables, MmaFp8 = e4m3 mma.sync streaming, MmaMxf8 = the same on Blackwell's block-scaled MMA) or the SIMT LUT kernels above: choose_moe_decode()
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
// MoeBatchPath::Stream (the decode batches' default on Hopper, policy.h choose_moe_batch): the routing grouped by
// expert into tiles of `tokens` slots (moe_route_kernel, one block), the tokens' rows packed by tile and stage
// (launch_moe_stream_pack), then the streaming kernels of moe_stream.cu (each expert's packed weights read once for
// each tile of its rows, those CTAs side by side so a second pass finds the rows in L2; gate_up's SwiGLU written
// packed for down), then the same un-permute with the routing weights. `tokens`: slots a tile (policy.h
// moe_stream_tokens); workspace: moe_stream_workspace_bytes for the same tokens.
void launch_moe_stream(const MoeArgs& a, int tokens, void* workspace, cudaStream_t stream);
size_t moe_stream_workspace_bytes(const MoeArgs& a, int tokens);
// One streaming GEMM over every expert: out[slot, n] = sum_k A[slot, k] W_e[n, k] + bias_e[n] for the slots
// group_start[e] .. group_start[e + 1] of expert e, `tokens` slots a CTA (tile_start's tiles). A comes packed
// (17th session): tile T's stage kt (K columns kt x 128 ..) is one run of 2 x tokens rows of kMoeStreamActRow bytes
// (row 2 r + h: slot r of the tile, bf16 half h: hi, lo; the stage's columns in the first 256 bytes, the rest
// never read), at mstream::packed_stage_offset, so a CTA copies a stage's activations as one piece (one TMA bulk
// copy where the per-row copies, 32 a stage, had held the kernel: 15-30% of the MoE op, bench/RESULTS.md).
struct MoeStreamProblem {
  const uint8_t* a_packed = nullptr; // A packed by tile and stage (above): launch_moe_stream_pack, or the swiglu epilogue
  const uint8_t* w = nullptr;        // MXFP4 blocks [E, N, K/32, 16], checkpoint layout (or decode_layout)
  const uint8_t* scales = nullptr;   // E8M0 [E, N, K/32] (decode_layout: each matrix's 16-row tiles, mxfp4_layout.h)
  bool decode_layout = false;        // w and scales re-laid at upload (mxfp4_layout.h; N % 16 == 0)
  const void* bias = nullptr;        // [E, N], bf16 or f32
  bool bias_bf16 = true;
  const int32_t* group_start = nullptr;  // [E + 1] (device)
  const int32_t* tile_start = nullptr;   // [E + 1] prefix of ceil(rows_e / tokens) (device): a CTA row a tile
  int max_tiles = 0;                     // grid bound on tile_start[E] (moe_stream_max_tiles)
  int tokens = kMoeStreamTokens;         // routed rows a CTA (tile_start's tile): 16, or kMoeStreamWideTokens
  int N = 0, K = 0, E = 0;
  float* out = nullptr;              // swiglu false: f32 [slots, N]
  uint8_t* out_packed = nullptr;     // swiglu: SwiGLU of the (gate, up) row pairs split into bf16 halves, packed as
                                     // a_packed for a GEMM of K = N / 2 over the same tiles (the down projection)
  float limit = 7.f, alpha = 1.702f;
};
// Tiles of `tokens` slots for P (token, expert) slots over E experts: sum ceil(c_e / tokens) <= min(P, P / tokens + E).
int moe_stream_max_tiles(int P, int E, int tokens);
// Bytes of a packed A of K columns over max_tiles tiles.
size_t moe_stream_packed_bytes(int max_tiles, int K, int tokens);
// x f32 [*, K] (row perm_token[slot] for each slot) split into bf16 halves and packed for launch_moe_stream_gemm.
void launch_moe_stream_pack(const float* x, const int32_t* perm_token, const int32_t* group_start, const int32_t* tile_start,
                            int P, int E, int K, int tokens, uint8_t* packed, cudaStream_t stream);
void launch_moe_stream_gemm(const MoeStreamProblem& p, bool swiglu, cudaStream_t stream);
// bf16 experts, choose_moe_bf16()'s Gemv (moe_bf16.cu): SIMT GEMVs over the routed experts' rows, f32
// sums (same workspace as launch_moe_decode: act [pairs, I]).
void launch_moe_bf16_gemv(const MoeArgs& a, void* workspace, cudaStream_t stream);

}  // namespace gptoss::cuda
