#include <algorithm>

#include "gemm_tile.cuh"
#include "moe.cuh"

#if !defined(GPTOSS_HIP)
#include <cooperative_groups.h>  // router_norm_cluster_kernel's cluster (sm_90)
#endif

namespace gptoss::cuda {

namespace {
#if !defined(GPTOSS_HIP)
namespace cg = cooperative_groups;
#endif

// ---------------------------------------------------------------------------------------------
// Router: logits = x W^T + b (bf16 rows, 16-byte loads, exact f32 dots so the top-k choice matches
// the CPU reference except at true near-ties), then top-k by logit and a softmax over the k.
//  - router_kernel: one block per token (prefill: many tokens fill the GPU).
//  - router_split_kernel: few tokens; grid (expert groups, n), one warp per expert, logits through
//    a workspace, the last block of a token selects (one launch). A single block per token read the
//    whole [E, H] matrix from one SM: 20 us for the 20b's 184 KB under ncu.
// ---------------------------------------------------------------------------------------------
// s + the dot of 8 bf16 weights (one 16-byte chunk) with xp[0..8), in order.
__device__ __forceinline__ float router_chunk_dot(const uint4 v, const float* xp, float s) {
  s = fmaf(bf16_lo(v.x), xp[0], s); s = fmaf(bf16_hi(v.x), xp[1], s);
  s = fmaf(bf16_lo(v.y), xp[2], s); s = fmaf(bf16_hi(v.y), xp[3], s);
  s = fmaf(bf16_lo(v.z), xp[4], s); s = fmaf(bf16_hi(v.z), xp[5], s);
  s = fmaf(bf16_lo(v.w), xp[6], s); s = fmaf(bf16_hi(v.w), xp[7], s);
  return s;
}

__device__ __forceinline__ float router_dot(const uint16_t* w, const float* xs, int H, int lane) {
  float s = 0.f;
  if (H % 8 == 0) {
    const uint4* wp = reinterpret_cast<const uint4*>(w);
    const int chunks = H / 8;
    int c = lane;
    for (; c + 3 * WARP_SIZE < chunks; c += 4 * WARP_SIZE) {  // 4 loads in flight a lane
      uint4 v[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) v[u] = __ldg(wp + c + u * WARP_SIZE);
#pragma unroll
      for (int u = 0; u < 4; ++u) s = router_chunk_dot(v[u], xs + (c + u * WARP_SIZE) * 8, s);
    }
    for (; c < chunks; c += WARP_SIZE) s = router_chunk_dot(__ldg(wp + c), xs + c * 8, s);
  } else {
    for (int h = lane; h < H; h += WARP_SIZE) s = fmaf(bf16_bits_to_f32(w[h]), xs[h], s);
  }
  return warp_sum(s);
}

// The same dot with the row in registers, loaded ahead (router_norm_split_kernel loads it before
// its PDL wait): lane chunks c = lane + 32 j, summed in the same order as router_dot (bit-identical).
// H % 8 == 0 and H / 8 <= 32 kChunks.
template <int kChunks>
__device__ __forceinline__ void router_row_load(const uint16_t* w, int H, int lane, uint4 (&wv)[kChunks]) {
  const uint4* wp = reinterpret_cast<const uint4*>(w);
#pragma unroll
  for (int j = 0; j < kChunks; ++j) {
    const int c = lane + j * WARP_SIZE;
    if (c < H / 8) wv[j] = __ldg(wp + c);
  }
}
template <int kChunks>
__device__ __forceinline__ float router_row_dot(const uint4 (&wv)[kChunks], const float* xs, int H, int lane) {
  float s = 0.f;
#pragma unroll
  for (int j = 0; j < kChunks; ++j) {
    const int c = lane + j * WARP_SIZE;
    if (c < H / 8) s = router_chunk_dot(wv[j], xs + c * 8, s);
  }
  return warp_sum(s);
}

__device__ __forceinline__ float router_bias(const RouterArgs& a, int e) {
  return param_f32(a.bias, a.bias_bf16, e);
}

__device__ __forceinline__ void stage_row(const float* x, int H, float* xs) {
  if (H % 4 == 0 && (reinterpret_cast<uintptr_t>(x) & 15) == 0) {
    for (int h = threadIdx.x; h < H / 4; h += blockDim.x)
      reinterpret_cast<float4*>(xs)[h] = reinterpret_cast<const float4*>(x)[h];
  } else {
    for (int h = threadIdx.x; h < H; h += blockDim.x) xs[h] = x[h];
  }
}

// GPTOSS_CUDA_ROUTER_RANK=1 (A/B, off until it has run on a GPU), where E fits one warp (the 20b's 32; E <= 64 on a
// wavefront of 64): lane e ranks its logit against all E in one pass, with no rounds of shuffles: rank = how many
// experts come before e in torch.topk's order (larger logit first, equal logits by the lower index; -0 equals +0;
// NaN after every number, by index, so the ranks are a permutation).
// Lanes of rank < k are the selection; each takes its own expf, and every output lane sums the k terms in rank
// order, so the weights are the bits of the serial form below (expf(v_j - v_0) / the sum from 0.f in order j).
__device__ __forceinline__ uint32_t router_order_key(float v) {  // monotonic in topk's order; NaN lowest
  const uint32_t u = __float_as_uint(v + 0.f);                    // -0 -> +0
  return v != v ? 0u : (u & 0x80000000u) ? ~u : u | 0x80000000u;
}
__device__ void router_select_rank(const RouterArgs& a, const float* logits, int t) {
  __shared__ float sel_val[32], sel_ex[32];
  __shared__ int sel_idx[32];
  const int lane = threadIdx.x % WARP_SIZE, E = a.E;
  const int k = a.k < 32 ? a.k : 32;
  const float v = lane < E ? logits[lane] : 0.f;
  const uint32_t key = router_order_key(v);
  int rank = 0;
  for (int f = 0; f < E; ++f) {
    const uint32_t o = __shfl_sync(0xffffffffu, key, f);
    rank += o > key || (o == key && f < lane);
  }
  if (lane < E && rank < k) {
    sel_val[rank] = v;
    sel_idx[rank] = lane;
  }
  __syncwarp();
  float ex = 0.f;
  if (lane < k) {
    ex = expf(sel_val[lane] - sel_val[0]);
    sel_ex[lane] = ex;
  }
  __syncwarp();
  if (lane < k) {
    float denom = 0.f;
    for (int j = 0; j < k; ++j) denom += sel_ex[j];
    a.expert_idx[int64_t(t) * a.k + lane] = sel_idx[lane];
    a.expert_weight[int64_t(t) * a.k + lane] = ex / denom;
  }
}

// Warp 0 of the block: top-k of logits[0, E) (shared memory; E past one warp here, the 120b's 128), ties to the lower expert index,
// selected in descending order (torch.topk), then the softmax over the k -> token t's outputs.
// The selections so far are indexed by the runtime j: in per-lane arrays that is local memory (a
// 256-byte stack frame on sm_90a; the form verified on NVIDIA GPUs, kept there), and on AMD clang-19
// gives them 272 bytes of scratch a lane. On AMD they live in shared memory instead: every lane of the
// one wavefront writes the same selection (the butterfly left each lane the same winner), and the
// wavefront barrier orders those writes before the next step's reads. Same values, same order, same
// result; 256 bytes of LDS a block.
__device__ void router_select(const RouterArgs& a, const float* logits, int t) {
  if (a.rank_select && a.E <= WARP_SIZE) {
    router_select_rank(a, logits, t);
    return;
  }
  const int lane = threadIdx.x % WARP_SIZE;
#if defined(GPTOSS_HIP)
  __shared__ float sel_val[32];
  __shared__ int sel_idx[32];
#else
  float sel_val[32];
  int sel_idx[32];
#endif
  const int k = a.k < 32 ? a.k : 32;
  for (int j = 0; j < k; ++j) {
    float best = -INFINITY;
    int best_e = 0x7fffffff;
    for (int e = lane; e < a.E; e += WARP_SIZE) {
      bool taken = false;
      for (int q = 0; q < j; ++q) taken |= sel_idx[q] == e;
      float v = logits[e];
      if (!taken && (v > best || (v == best && e < best_e) || best_e == 0x7fffffff)) {
        best = v;
        best_e = e;
      }
    }
#pragma unroll
    for (int m = WARP_SIZE / 2; m > 0; m >>= 1) {
      float ov = __shfl_xor_sync(0xffffffffu, best, m);
      int oe = __shfl_xor_sync(0xffffffffu, best_e, m);
      if (ov > best || (ov == best && oe < best_e)) {
        best = ov;
        best_e = oe;
      }
    }
    sel_val[j] = best;
    sel_idx[j] = best_e;
#if defined(GPTOSS_HIP)
    __syncwarp();
#endif
  }
  if (lane == 0) {
    float denom = 0.f;
    for (int j = 0; j < k; ++j) denom += expf(sel_val[j] - sel_val[0]);
    for (int j = 0; j < k; ++j) {
      a.expert_idx[int64_t(t) * a.k + j] = sel_idx[j];
      a.expert_weight[int64_t(t) * a.k + j] = expf(sel_val[j] - sel_val[0]) / denom;
    }
  }
}

__global__ void router_kernel(RouterArgs a) {
  extern __shared__ __align__(16) float smem[];
  float* xs = smem;            // [H]
  float* logits = smem + a.H;  // [E]
  stage_row(a.x + int64_t(blockIdx.x) * a.H, a.H, xs);
  __syncthreads();
  const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE, nwarps = blockDim.x / WARP_SIZE;
  for (int e = warp; e < a.E; e += nwarps) {
    const float s = router_dot(a.weight + int64_t(e) * a.H, xs, a.H, lane);
    if (lane == 0) logits[e] = s + router_bias(a, e);
  }
  __syncthreads();
  if (warp == 0) router_select(a, logits, blockIdx.x);
}

constexpr int kRouterSplitWarps = kRow4Threads / WARP_SIZE;  // experts a block (one warp each; 8 on CUDA)

// Split path, every block: its experts' logits (one warp each) -> logits_ws; returns whether this
// block is the token's last to finish (it then selects: router_split_select). `logit` is the warp's
// expert's (lane 0's value counts).
__device__ __forceinline__ bool router_split_arrive(const RouterArgs& a, float logit, float* logits_ws, int* counters,
                                                    int t) {
  const int e = blockIdx.x * kRouterSplitWarps + int(threadIdx.x) / WARP_SIZE;
  if (e < a.E && threadIdx.x % WARP_SIZE == 0) logits_ws[int64_t(t) * a.E + e] = logit;
  return last_block_arrives(counters + t, gridDim.x);
}
// ... with the logits from the staged row xs.
__device__ __forceinline__ bool router_split_logits(const RouterArgs& a, const float* xs, float* logits_ws,
                                                    int* counters, int t) {
  const int e = blockIdx.x * kRouterSplitWarps + int(threadIdx.x) / WARP_SIZE;
  const float s = e < a.E ? router_dot(a.weight + int64_t(e) * a.H, xs, a.H, threadIdx.x % WARP_SIZE) + router_bias(a, e) : 0.f;
  return router_split_arrive(a, s, logits_ws, counters, t);
}
// Split path, the last block: the token's E logits into shared `lg`, then top-k and softmax.
__device__ __forceinline__ void router_split_select(const RouterArgs& a, const float* logits_ws, float* lg, int t) {
  for (int i = threadIdx.x; i < a.E; i += blockDim.x) lg[i] = __ldcg(logits_ws + int64_t(t) * a.E + i);
  __syncthreads();
  if (threadIdx.x < WARP_SIZE) router_select(a, lg, t);
}

__global__ void __launch_bounds__(kRouterSplitWarps * WARP_SIZE) router_split_kernel(RouterArgs a, float* logits_ws, int* counters) {
  extern __shared__ __align__(16) float smem[];
  float* xs = smem;  // [H], then reused for the token's E logits by the last block
  const int t = blockIdx.y;
  pdl_wait();
  pdl_launch_dependents();
  stage_row(a.x + int64_t(t) * a.H, a.H, xs);
  __syncthreads();
  if (!router_split_logits(a, xs, logits_ws, counters, t)) return;
  router_split_select(a, logits_ws, xs, t);
}

// add+norm+router's work up to the logit, in both launch forms below: every block forms v = x + residual (kept in
// registers) and the normed row (xs, shared memory) with the same arithmetic as rmsnorm_vec_kernel<add>
// (block_sum_squares, 256 threads), so results are bit-identical to the two ops; then warp w's expert
// e = blockIdx.x * 8 + w: its logit, valid in lane 0 (0 past E). The norm weight and the warp's router row and bias are
// read before the PDL wait (constants), x and residual after it.
template <int kPer>
__device__ __forceinline__ float router_norm_logit(const RouterArgs& a, const float* x, const float* residual,
                                                   const void* norm_weight, bool norm_weight_bf16, float eps, int t,
                                                   float* xs, float* partial, float4 (&v)[kPer]) {
  const int H4 = a.H / 4;
  float4 w[kPer];
  load_row4<kPer>(norm_weight, norm_weight_bf16, H4, w);  // constant: read before the wait
  // the warp's router row and bias too (H / 8 <= 4 kPer x 32 chunks, as H / 4 <= 256 kPer)
  const int lane = threadIdx.x % WARP_SIZE, e = blockIdx.x * kRouterSplitWarps + int(threadIdx.x) / WARP_SIZE;
  constexpr int kChunks = kPer <= 3 ? 4 * kPer : 1;  // H <= 3072 (kPer 4 would spill)
  const bool row_regs = kPer <= 3 && a.H % 8 == 0;
  uint4 wv[kChunks];
  if (e < a.E && row_regs) router_row_load(a.weight + int64_t(e) * a.H, a.H, lane, wv);
  const float bias = e < a.E ? router_bias(a, e) : 0.f;
  pdl_wait();
  pdl_launch_dependents();
  row4_load<kPer, true>(x + int64_t(t) * a.H, residual + int64_t(t) * a.H, H4, v);
  const float inv = row4_inv_rms<kPer>(v, a.H, eps, partial);
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int i = threadIdx.x + j * blockDim.x;
    if (i < H4) reinterpret_cast<float4*>(xs)[i] = row4_normed(v[j], inv, w[j]);
  }
  __syncthreads();
  float logit = 0.f;
  if (e < a.E)
    logit = (row_regs ? router_row_dot(wv, xs, a.H, lane) : router_dot(a.weight + int64_t(e) * a.H, xs, a.H, lane)) + bias;
  return logit;
}

// add_rmsnorm + router for few tokens, one launch (grid and last-block selection as router_split_kernel):
// router_norm_logit, then the last block of a token, once every block has read x, writes x = v and normed (the MoE's
// input), then selects.
template <int kPer>
__global__ void __launch_bounds__(kRouterSplitWarps * WARP_SIZE)
    router_norm_split_kernel(RouterArgs a, float* x, const float* residual, const void* norm_weight,
                             bool norm_weight_bf16, float eps, float* normed, float* logits_ws, int* counters) {
  extern __shared__ __align__(16) float smem[];
  __shared__ float partial[32];
  float* xs = smem;           // [H] normed row
  float* lg = smem + a.H;     // [E] the token's logits (last block)
  const int t = blockIdx.y, H4 = a.H / 4;
  float4 v[kPer];
  const float logit = router_norm_logit<kPer>(a, x, residual, norm_weight, norm_weight_bf16, eps, t, xs, partial, v);
  if (!router_split_arrive(a, logit, logits_ws, counters, t)) return;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int i = threadIdx.x + j * blockDim.x;
    if (i < H4) {
      reinterpret_cast<float4*>(x + int64_t(t) * a.H)[i] = v[j];
      reinterpret_cast<float4*>(normed + int64_t(t) * a.H)[i] = reinterpret_cast<const float4*>(xs)[i];
    }
  }
  router_split_select(a, logits_ws, lg, t);
}

// The same as one thread-block cluster a token (GPTOSS_CUDA_ROUTER_CLUSTER=1, router_uses_cluster; sm_90+): the blocks
// hand their logits to rank 0's shared memory through distributed shared memory and meet at one cluster barrier,
// instead of global stores, __threadfence, an atomic and the last block's reload. After the barrier (every block has
// read x) each block writes its share of x = v and normed, and rank 0 selects from its shared logits: the same values
// in the same order as the split kernel, so the same bits.
template <int kPer>
__global__ void __launch_bounds__(kRouterSplitWarps * WARP_SIZE)
    router_norm_cluster_kernel(RouterArgs a, float* x, const float* residual, const void* norm_weight,
                               bool norm_weight_bf16, float eps, float* normed) {
#if defined(GPTOSS_HAVE_PDL) && !defined(GPTOSS_HIP)
  extern __shared__ __align__(16) float smem[];
  __shared__ float partial[32];
  float* xs = smem;        // [H] normed row
  float* lg = smem + a.H;  // [E] the token's logits (rank 0's, written by every block of the cluster)
  const int t = blockIdx.y, H4 = a.H / 4;
  float4 v[kPer];
  cg::cluster_group cluster = cg::this_cluster();
  // Distributed shared memory may be written only once its block has started: arrive now, wait before the
  // remote store (by then the norm and the dot products are done, so the wait costs nothing in practice).
  // compute-sanitizer racecheck flagged the store without it (432 hazards, 31st session).
  auto started = cluster.barrier_arrive();
  const float logit = router_norm_logit<kPer>(a, x, residual, norm_weight, norm_weight_bf16, eps, t, xs, partial, v);
  cluster.barrier_wait(std::move(started));
  const int e = blockIdx.x * kRouterSplitWarps + int(threadIdx.x) / WARP_SIZE;
  if (e < a.E && threadIdx.x % WARP_SIZE == 0) cluster.map_shared_rank(lg, 0)[e] = logit;
  cluster.sync();  // release / acquire: rank 0 sees every logit, and no block writes x before all have read it
  const int blocks = int(cluster.num_blocks()), rank = int(cluster.block_rank());
  const int i0 = int(int64_t(H4) * rank / blocks), i1 = int(int64_t(H4) * (rank + 1) / blocks);
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int i = threadIdx.x + j * blockDim.x;
    if (i >= i0 && i < i1) {
      reinterpret_cast<float4*>(x + int64_t(t) * a.H)[i] = v[j];
      reinterpret_cast<float4*>(normed + int64_t(t) * a.H)[i] = reinterpret_cast<const float4*>(xs)[i];
    }
  }
  if (rank == 0 && threadIdx.x < WARP_SIZE) router_select(a, lg, t);
#else
  GPTOSS_NO_DEVICE_CODE("thread-block clusters (sm_90+)");
#endif
}

// ---------------------------------------------------------------------------------------------
// Decode, stage 1: for each (token, routed expert) pair, act[pair, j] = swiglu(gate_up rows 2j, 2j+1).
// A warp owns 2 output pairs = 4 weight rows; lanes stride over the 16-byte MX blocks, so each x
// chunk (read straight from global/L1: no shared-memory staging, so the weight loads start at once)
// feeds 4 rows. grid (ceil(I / 16), pairs), 8 warps.
// ---------------------------------------------------------------------------------------------
constexpr int kDecodeWarps = 8;
constexpr int kGateUpPairsPerWarp = 2;

__device__ __forceinline__ void load_x32(const float* p, float* xv) {
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    float4 f = __ldg(reinterpret_cast<const float4*>(p) + i);
    xv[4 * i] = f.x; xv[4 * i + 1] = f.y; xv[4 * i + 2] = f.z; xv[4 * i + 3] = f.w;
  }
}

// (256, 3): at most 85 registers so three 33 KB blocks fit an SM (156 registers gave one: ncu 12.5%).
__global__ void __launch_bounds__(kDecodeWarps * WARP_SIZE, 3) moe_decode_gate_up_kernel(MoeArgs a, float* act) {
  extern __shared__ uint32_t lane_lut[];  // kLaneLutWords
  const int pair = blockIdx.y;
  const int t = pair / a.k;
  const int e = a.expert_idx[pair];
  fill_e2m1_lane_lut(lane_lut);
  __syncthreads();
  const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
  const uint32_t* lut = lane_lut_copy(lane_lut, lane);
  const int j0 = (blockIdx.x * kDecodeWarps + warp) * kGateUpPairsPerWarp;  // first output pair
  if (j0 >= a.I) return;
  if (e < 0 || e >= a.E) {
    if (lane == 0) {
      atomicOr(a.err, kErrExpertRange);
      for (int j = j0; j < j0 + kGateUpPairsPerWarp && j < a.I; ++j) act[int64_t(pair) * a.I + j] = 0.f;
    }
    return;
  }
  const float* x = a.x + int64_t(t) * a.H;
  const int nch = a.H / 32;
  const int64_t rows_total = 2 * int64_t(a.I);
  const uint4* wb = reinterpret_cast<const uint4*>(a.gate_up) + (int64_t(e) * rows_total + 2 * j0) * nch;
  const uint8_t* sb = a.gate_up_scales + (int64_t(e) * rows_total + 2 * j0) * nch;
  constexpr int R = 2 * kGateUpPairsPerWarp;
  const int rows = min(R, int(2 * (a.I - j0)));
  float acc[R] = {};
#pragma unroll 2
  for (int c = lane; c < nch; c += WARP_SIZE) {
    uint4 wv[R];
    float sc[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      if (r < rows) {
        wv[r] = __ldg(wb + int64_t(r) * nch + c);
        sc[r] = e8m0_to_f32(sb[int64_t(r) * nch + c]);
      }
    }
    float xv[32];
    load_x32(x + c * 32, xv);
#pragma unroll
    for (int r = 0; r < R; ++r)
      if (r < rows) acc[r] = fmaf(sc[r], mxfp4_block_dot<kLaneLutCopies>(wv[r], xv, lut), acc[r]);
  }
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = warp_sum(acc[r]);
  if (lane == 0) {
    const int64_t b0 = int64_t(e) * rows_total + 2 * j0;
    for (int q = 0; q < kGateUpPairsPerWarp && j0 + q < a.I; ++q) {
      float gate = acc[2 * q] + param_f32(a.gate_up_bias, a.gate_up_bias_bf16, b0 + 2 * q);
      float up = acc[2 * q + 1] + param_f32(a.gate_up_bias, a.gate_up_bias_bf16, b0 + 2 * q + 1);
      act[int64_t(pair) * a.I + j0 + q] = swiglu(gate, up, a.limit, a.alpha);
    }
  }
}

// Decode, stage 2: out[t, row] = sum_j w[t,j] * (down_{e_j}[row] . act[t,j] + b_{e_j}[row]).
// A block owns 4 output rows; its 256 threads stride over the (expert j, MX block c) items of the
// reduction (k * I/32 of them), so a single token still launches H/4 = 720 blocks (the first
// version, a warp per 2 rows, launched 180 blocks: 0.45 waves, 17% occupancy in ncu). The routing
// weight is folded into each block's scale; warp sums + a shared-memory sum finish the rows, in a
// fixed order (deterministic, no atomics).
constexpr int kDownRowsPerBlock = 4;

__global__ void __launch_bounds__(kDecodeWarps * WARP_SIZE) moe_decode_down_kernel(MoeArgs a, const float* act) {
  extern __shared__ uint32_t lane_lut[];  // kLaneLutWords
  __shared__ float red[kDecodeWarps][kDownRowsPerBlock];
  const int t = blockIdx.y;
  fill_e2m1_lane_lut(lane_lut);
  __syncthreads();
  const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
  const uint32_t* lut = lane_lut_copy(lane_lut, lane);
  constexpr int R = kDownRowsPerBlock;
  const int row0 = blockIdx.x * R;
  const int rows = min(R, a.H - row0);
  const int nch = a.I / 32;
  const int items = a.k * nch;
  float out[R] = {};
#pragma unroll 2
  for (int it = threadIdx.x; it < items; it += blockDim.x) {
    const int j = it / nch, c = it - j * nch;
    const int e = a.expert_idx[int64_t(t) * a.k + j];
    if (e < 0 || e >= a.E) continue;  // flagged by stage 1
    const float wgt = a.expert_weight[int64_t(t) * a.k + j];
    const uint4* wb = reinterpret_cast<const uint4*>(a.down) + (int64_t(e) * a.H + row0) * nch;
    const uint8_t* sb = a.down_scales + (int64_t(e) * a.H + row0) * nch;
    uint4 wv[R];
    float sc[R];
#pragma unroll
    for (int r = 0; r < R; ++r)
      if (r < rows) {
        wv[r] = __ldg(wb + int64_t(r) * nch + c);
        sc[r] = wgt * e8m0_to_f32(sb[int64_t(r) * nch + c]);
      }
    float xv[32];
    load_x32(act + (int64_t(t) * a.k + j) * a.I + c * 32, xv);
#pragma unroll
    for (int r = 0; r < R; ++r)
      if (r < rows) out[r] = fmaf(sc[r], mxfp4_block_dot<kLaneLutCopies>(wv[r], xv, lut), out[r]);
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    float v = warp_sum(out[r]);
    if (lane == 0) red[warp][r] = v;
  }
  __syncthreads();
  if (threadIdx.x < rows) {
    const int r = threadIdx.x;
    float s = 0.f;
    for (int w = 0; w < kDecodeWarps; ++w) s += red[w][r];
    for (int j = 0; j < a.k; ++j) {
      const int e = a.expert_idx[int64_t(t) * a.k + j];
      if (e < 0 || e >= a.E) continue;
      s += a.expert_weight[int64_t(t) * a.k + j] * param_f32(a.down_bias, a.down_bias_bf16, int64_t(e) * a.H + row0 + r);
    }
    a.out[int64_t(t) * a.H + row0 + r] = s;
  }
}

// ---------------------------------------------------------------------------------------------
// Prefill (grouped): count -> scan -> scatter -> grouped GEMM (gate_up, SwiGLU epilogue, f32 act)
// -> grouped GEMM (down, bias) -> un-permute with routing weights. MXFP4 or bf16 experts (a.bf16):
// the same steps, the tile's weight format differs.
// ---------------------------------------------------------------------------------------------
struct GroupedWs {
  int32_t* counts;      // [E]
  int32_t* cursor;      // [E]
  int32_t* group_start; // [E+1]
  int32_t* tile_start;  // [E+1]
  int32_t* perm_token;  // [P] slot -> token
  int32_t* pair_slot;   // [P] pair -> slot
  uint16_t* x_hi;       // [n, H] bf16 halves of x (the gate_up GEMM's A)
  uint16_t* x_lo;
  uint16_t* act_hi;     // [P, I] bf16 halves of the SwiGLU output (the down GEMM's A)
  uint16_t* act_lo;
  float* y;             // [P, H]
};

size_t align256(size_t b) { return (b + 255) / 256 * 256; }

// halves false (the streaming MoE, whose A is packed by tile: stream_ws): no bf16 halves of x and the SwiGLU.
GroupedWs grouped_ws(const MoeArgs& a, void* base, size_t* total, bool halves = true) {
  const int64_t P = int64_t(a.n) * a.k;
  uint8_t* p = static_cast<uint8_t*>(base);
  size_t off = 0;
  auto take = [&](size_t bytes) { uint8_t* r = p ? p + off : nullptr; off += align256(bytes); return r; };
  GroupedWs w;
  w.counts = reinterpret_cast<int32_t*>(take(4 * size_t(a.E)));
  w.cursor = reinterpret_cast<int32_t*>(take(4 * size_t(a.E)));
  w.group_start = reinterpret_cast<int32_t*>(take(4 * size_t(a.E + 1)));
  w.tile_start = reinterpret_cast<int32_t*>(take(4 * size_t(a.E + 1)));
  w.perm_token = reinterpret_cast<int32_t*>(take(4 * size_t(P)));
  w.pair_slot = reinterpret_cast<int32_t*>(take(4 * size_t(P)));
  const size_t xh = 2 * size_t(a.n) * a.H, ah = 2 * size_t(P) * a.I;
  w.x_hi = halves ? reinterpret_cast<uint16_t*>(take(xh)) : nullptr;
  w.x_lo = halves ? reinterpret_cast<uint16_t*>(take(xh)) : nullptr;
  w.act_hi = halves ? reinterpret_cast<uint16_t*>(take(ah)) : nullptr;
  w.act_lo = halves ? reinterpret_cast<uint16_t*>(take(ah)) : nullptr;
  w.y = reinterpret_cast<float*>(take(4 * size_t(P) * a.H));
  if (total) *total = off;
  return w;
}

// One of the two grouped GEMMs: experts' MXFP4 or bf16 (a.bf16) weights [E, N, K] (their strides follow
// from N and K), bias [E, N], one group of rows per expert (w's scan), A given as its bf16 halves.
GemmProblem expert_gemm(const MoeArgs& a, const GroupedWs& w, const uint16_t* a_hi, const uint16_t* a_lo,
                        const void* weights, const uint8_t* scales, const void* bias, bool bias_bf16, int N, int K) {
  GemmProblem g;
  g.a_hi = a_hi;
  g.a_lo = a_lo;
  g.w = weights;
  g.w_scales = a.bf16 ? nullptr : scales;
  g.w_decode_layout = a.decode_layout;
  g.w_group_bytes = a.bf16 ? int64_t(N) * K * 2 : int64_t(N) * K / 2;
  g.scale_group_bytes = a.bf16 ? 0 : int64_t(N) * K / 32;
  g.bias = bias;
  g.bias_kind = bias_bf16 ? kBiasBF16 : kBiasF32;
  g.bias_group_elems = N;
  g.N = N;
  g.K = K;
  g.group_start = w.group_start;
  g.tile_start = w.tile_start;
  g.num_groups = a.E;
  return g;
}

// The routing's three steps, each a device function so the separate kernels below (prefill, the grouped decode
// kernels) and the single-CTA moe_route_kernel (the streaming MoE) run the same code.
// Pair i counted for its expert (an expert index out of range flags err instead).
__device__ __forceinline__ void route_count(const int32_t* expert_idx, int i, int E, int32_t* counts, int* err) {
  const int e = expert_idx[i];
  if (e < 0 || e >= E) atomicOr(err, kErrExpertRange);
  else atomicAdd(counts + e, 1);
}
// One thread: exclusive scans of counts (slots: group_start, and `start` where given) and of ceil(count / bm) (GEMM
// tiles: tile_start), E + 1 entries each.
__device__ __forceinline__ void route_scan(const int32_t* counts, int E, int bm, int32_t* group_start, int32_t* tile_start,
                                           int32_t* start) {
  int s = 0, t = 0;
  for (int e = 0; e < E; ++e) {
    group_start[e] = s;
    if (start) start[e] = s;
    tile_start[e] = t;
    s += counts[e];
    t += (counts[e] + bm - 1) / bm;
  }
  group_start[E] = s;
  if (start) start[E] = s;
  tile_start[E] = t;
}
// Pair i's slot: its expert's group start plus its place by the expert's cursor (-1 for an index out of range).
__device__ __forceinline__ void route_scatter(const int32_t* expert_idx, int i, int k, int E, const int32_t* group_start,
                                              int32_t* cursor, int32_t* perm_token, int32_t* pair_slot) {
  const int e = expert_idx[i];
  if (e < 0 || e >= E) {
    pair_slot[i] = -1;
    return;
  }
  const int slot = group_start[e] + atomicAdd(cursor + e, 1);
  perm_token[slot] = i / k;
  pair_slot[i] = slot;
}

__global__ void moe_count_kernel(const int32_t* expert_idx, int P, int E, int32_t* counts, int* err) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < P) route_count(expert_idx, i, E, counts, err);
}

// Single block: exclusive scans of counts (slots) and of ceil(count / BM) (GEMM tiles).
__global__ void moe_scan_kernel(const int32_t* counts, int E, int bm, int32_t* group_start, int32_t* tile_start,
                                int32_t* cursor) {
  if (threadIdx.x != 0) return;
  for (int e = 0; e < E; ++e) cursor[e] = 0;
  route_scan(counts, E, bm, group_start, tile_start, nullptr);
}

__global__ void moe_scatter_kernel(const int32_t* expert_idx, int P, int k, int E, const int32_t* group_start,
                                   int32_t* cursor, int32_t* perm_token, int32_t* pair_slot) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < P) route_scatter(expert_idx, i, k, E, group_start, cursor, perm_token, pair_slot);
}

// The three steps in one CTA (the streaming MoE of a decode batch: P = n x k is a few hundred pairs): counts,
// the scans and the scatter through shared memory, one launch where a memset and three kernels were (~14 us of a
// 20b layer at 64 streams on an H100: count 2.7, scan 5.4, scatter 3.2, and the memset; 15th session). A slot's
// place in its expert's group follows shared-memory atomics, as the scatter's global ones did: the sums do not
// depend on it (a slot's rows are computed alone, and moe_unpermute_kernel adds a token's k rows in fixed order).
// (Until the 17th session blocks 1.. split x into its bf16 halves; the pack kernel does that now, into the tiles.)
__global__ void moe_route_kernel(const int32_t* expert_idx, int P, int k, int E, int bm, int32_t* group_start,
                                 int32_t* tile_start, int32_t* perm_token, int32_t* pair_slot, int* err) {
  pdl_wait();  // expert_idx is the router's output (launch.cuh)
  pdl_launch_dependents();
  extern __shared__ int32_t route_sh[];  // counts [E], cursors [E], group starts [E + 1]
  int32_t* cnt = route_sh;
  int32_t* cur = route_sh + E;
  int32_t* start = route_sh + 2 * E;
  for (int e = threadIdx.x; e < E; e += blockDim.x) cnt[e] = cur[e] = 0;
  __syncthreads();
  for (int i = threadIdx.x; i < P; i += blockDim.x) route_count(expert_idx, i, E, cnt, err);
  __syncthreads();
  if (threadIdx.x == 0) route_scan(cnt, E, bm, group_start, tile_start, start);
  __syncthreads();
  for (int i = threadIdx.x; i < P; i += blockDim.x) route_scatter(expert_idx, i, k, E, start, cur, perm_token, pair_slot);
}

// out[t, h] = sum_j w[t, j] * y[slot(t, j), h], in fixed j order (deterministic).
__global__ void moe_unpermute_kernel(const float* y, const int32_t* pair_slot, const float* expert_weight, int n,
                                     int k, int H, float* out) {
  pdl_wait();  // y is the down GEMM's output (launch.cuh)
  pdl_launch_dependents();
  int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (idx >= int64_t(n) * H) return;
  int t = int(idx / H), h = int(idx % H);
  float s = 0.f;
  for (int j = 0; j < k; ++j) {
    int slot = pair_slot[int64_t(t) * k + j];
    if (slot >= 0) s = fmaf(expert_weight[int64_t(t) * k + j], y[int64_t(slot) * H + h], s);
  }
  out[idx] = s;
}

}  // namespace

bool router_uses_split(const RouterArgs& a) { return router_uses_split(current_caps(), a.n, a.E); }

size_t router_workspace_bytes(const RouterArgs& a) {
  return router_uses_split(a) ? sizeof(float) * size_t(a.n) * a.E : 0;
}

bool add_rmsnorm_router_fusable(const RouterArgs& a, const void* x, const void* residual, const void* normed,
                                const void* norm_weight, bool norm_weight_bf16) {
  return router_uses_split(a) && row4_ok(x, residual, normed, norm_weight, norm_weight_bf16, a.H);
}

void launch_add_rmsnorm_router(const RouterArgs& args, float* x, const float* residual, const void* norm_weight,
                               bool norm_weight_bf16, float eps, float* normed, void* workspace, int* counters,
                               cudaStream_t stream) {
  RouterArgs a = args;
  a.rank_select = knobs().router_rank;
  const int threads = kRouterSplitWarps * WARP_SIZE;
  static_assert(kRouterSplitWarps * WARP_SIZE == kRow4Threads, "the norm prologue holds the row as rmsnorm_vec_kernel does");
  const size_t smem = sizeof(float) * (a.H + a.E);
  dim3 grid(ceil_div(a.E, kRouterSplitWarps), a.n);
  auto opt_in = [&](auto kernel) {
    if (smem > 48 * 1024)
      GPTOSS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  };
  auto go = [&](auto kernel) {
    opt_in(kernel);
    launch_k(kernel, grid, threads, smem, stream, a, x, residual, norm_weight, norm_weight_bf16, eps, normed,
             static_cast<float*>(workspace), counters + kCountersRouter);
  };
  if (router_uses_cluster(current_caps(), knobs(), a.n, a.E)) {
#if !defined(GPTOSS_HIP)
    // grid.x's blocks of a token as one cluster (router_uses_cluster: at most kRouterClusterMax), PDL as launch_k
    auto go_cluster = [&](auto kernel) {
      opt_in(kernel);
      const ClusterLaunch l(grid, dim3(unsigned(threads)), smem, stream, dim3(grid.x, 1, 1), t_pdl);
      GPTOSS_CUDA_CHECK(cudaLaunchKernelEx(&l.cfg, kernel, a, x, residual, norm_weight, norm_weight_bf16, eps, normed));
    };
    with_row4_per(a.H, [&](auto per) { go_cluster(router_norm_cluster_kernel<decltype(per)::value>); });
    GPTOSS_CUDA_LAUNCH("router_norm_cluster_kernel");
    return;
#endif
  }
  with_row4_per(a.H, [&](auto per) { go(router_norm_split_kernel<decltype(per)::value>); });
  GPTOSS_CUDA_LAUNCH("router_norm_split_kernel");
}

void launch_router(const RouterArgs& args, void* workspace, int* counters, cudaStream_t stream) {
  if (args.n <= 0) return;
  RouterArgs a = args;
  a.rank_select = knobs().router_rank;
  if (router_uses_split(a)) {
    const size_t smem = sizeof(float) * std::max(a.H, a.E);
    if (smem > 48 * 1024)
      GPTOSS_CUDA_CHECK(cudaFuncSetAttribute(router_split_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    dim3 grid(ceil_div(a.E, kRouterSplitWarps), a.n);
    launch_k(router_split_kernel, grid, kRouterSplitWarps * WARP_SIZE, smem, stream, a, static_cast<float*>(workspace),
             counters + kCountersRouter);
    GPTOSS_CUDA_LAUNCH("router_split_kernel");
    return;
  }
  size_t smem = sizeof(float) * (a.H + a.E);
  if (smem > 48 * 1024)
    GPTOSS_CUDA_CHECK(cudaFuncSetAttribute(router_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  router_kernel<<<a.n, 256, smem, stream>>>(a);
  GPTOSS_CUDA_LAUNCH("router_kernel");
}

size_t moe_workspace_bytes(const MoeArgs& a, bool decode) {
  if (decode) return sizeof(float) * size_t(a.n) * a.k * (a.I + a.H);  // act [pairs, I], part [pairs, H]
  size_t total = 0;
  grouped_ws(a, nullptr, &total);
  return total;
}

void launch_moe_decode(const MoeArgs& a, void* workspace, cudaStream_t stream) {
  if (a.decode_layout) throw type_error("moe: experts in the decode layout (mxfp4_layout.h) need the mma-relaid decode kernel, not the SIMT one");
  float* act = static_cast<float*>(workspace);
  const int pairs = a.n * a.k;
  constexpr int lut_bytes = kLaneLutWords * 4;
  std::atomic<int>& carveout_set = launcher_slot(moe_decode_gate_up_kernel);  // per device, as the attribute
  if (!carveout_set.load(std::memory_order_relaxed)) {  // let the driver give shared memory to 3+ blocks per SM
    GPTOSS_CUDA_CHECK(cudaFuncSetAttribute(moe_decode_gate_up_kernel, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    GPTOSS_CUDA_CHECK(cudaFuncSetAttribute(moe_decode_down_kernel, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    carveout_set.store(1, std::memory_order_relaxed);
  }
  dim3 g1(ceil_div(a.I, kDecodeWarps * kGateUpPairsPerWarp), pairs);
  moe_decode_gate_up_kernel<<<g1, kDecodeWarps * WARP_SIZE, lut_bytes, stream>>>(a, act);
  GPTOSS_CUDA_LAUNCH("moe_decode_gate_up_kernel");
  dim3 g2(ceil_div(a.H, kDownRowsPerBlock), a.n);
  moe_decode_down_kernel<<<g2, kDecodeWarps * WARP_SIZE, lut_bytes, stream>>>(a, act);
  GPTOSS_CUDA_LAUNCH("moe_decode_down_kernel");
}

size_t moe_group_mma_workspace_bytes(const MoeArgs& a) {
  const size_t P = size_t(a.n) * a.k;
  return 4 * align256(4 * size_t(a.E + 1)) + 2 * align256(4 * P) + align256(4 * P * a.I) + align256(4 * P * a.H);
}

void launch_moe_group_mma(const MoeArgs& a, void* workspace, cudaStream_t stream) {
  if (a.bf16 || a.decode_layout) throw type_error("moe: the grouped decode kernels read MXFP4 experts in the checkpoint's layout");
  const int P = a.n * a.k;
  uint8_t* p = static_cast<uint8_t*>(workspace);
  size_t off = 0;
  auto take = [&](size_t bytes) { uint8_t* r = p + off; off += align256(bytes); return r; };
  int32_t* counts = reinterpret_cast<int32_t*>(take(4 * size_t(a.E + 1)));
  int32_t* cursor = reinterpret_cast<int32_t*>(take(4 * size_t(a.E + 1)));
  int32_t* group_start = reinterpret_cast<int32_t*>(take(4 * size_t(a.E + 1)));
  int32_t* tile_start = reinterpret_cast<int32_t*>(take(4 * size_t(a.E + 1)));
  int32_t* perm_token = reinterpret_cast<int32_t*>(take(4 * size_t(P)));
  int32_t* pair_slot = reinterpret_cast<int32_t*>(take(4 * size_t(P)));
  float* act = reinterpret_cast<float*>(take(4 * size_t(P) * a.I));
  float* y = reinterpret_cast<float*>(take(4 * size_t(P) * a.H));
  GPTOSS_CUDA_CHECK(cudaMemsetAsync(counts, 0, sizeof(int32_t) * a.E, stream));
  moe_count_kernel<<<ceil_div(P, 256), 256, 0, stream>>>(a.expert_idx, P, a.E, counts, a.err);
  GPTOSS_CUDA_LAUNCH("moe_count_kernel");
  const int gt = moe_group_tokens(current_caps(), knobs(), a.n, a.k, a.E, a.H, a.I);
  moe_scan_kernel<<<1, WARP_SIZE, 0, stream>>>(counts, a.E, gt, group_start, tile_start, cursor);
  GPTOSS_CUDA_LAUNCH("moe_scan_kernel");
  moe_scatter_kernel<<<ceil_div(P, 256), 256, 0, stream>>>(a.expert_idx, P, a.k, a.E, group_start, cursor, perm_token, pair_slot);
  GPTOSS_CUDA_LAUNCH("moe_scatter_kernel");
  MoeGroups g;
  g.group_start = group_start;
  g.tile_start = tile_start;
  g.perm_token = perm_token;
  g.max_groups = std::min(P, P / gt + a.E);  // sum ceil(c_e / gt) over the experts
  g.group_tokens = gt;
  launch_moe_group_kernels(a, g, act, y, stream);
  const int64_t total = int64_t(a.n) * a.H;
  moe_unpermute_kernel<<<unsigned(ceil_div(total, 256)), 256, 0, stream>>>(y, pair_slot, a.expert_weight, a.n, a.k, a.H, a.out);
  GPTOSS_CUDA_LAUNCH("moe_unpermute_kernel");
}

namespace {
// The streaming MoE's workspace: the grouped routing's, then x packed (K = H) and the SwiGLU packed (K = I) for
// `tokens` slots a tile (moe_stream_packed_bytes), each 256-byte aligned.
struct StreamWs {
  GroupedWs g;
  uint8_t* x_packed;
  uint8_t* act_packed;
  int max_tiles;
};
StreamWs stream_ws(const MoeArgs& a, int tokens, void* base, size_t* total) {
  StreamWs w;
  size_t off = 0;
  w.g = grouped_ws(a, base, &off, false);
  const int P = a.n * a.k;
  w.max_tiles = moe_stream_max_tiles(P, a.E, tokens);
  uint8_t* p = static_cast<uint8_t*>(base);
  w.x_packed = p ? p + off : nullptr;
  off += align256(moe_stream_packed_bytes(w.max_tiles, a.H, tokens));
  w.act_packed = p ? p + off : nullptr;
  off += align256(moe_stream_packed_bytes(w.max_tiles, a.I, tokens));
  if (total) *total = off;
  return w;
}
}  // namespace

size_t moe_stream_workspace_bytes(const MoeArgs& a, int tokens) {
  size_t total = 0;
  stream_ws(a, tokens, nullptr, &total);
  return total;
}

void launch_moe_stream(const MoeArgs& a, int tokens, void* workspace, cudaStream_t stream) {
  if (a.bf16) throw type_error("moe: the streaming kernels (moe_stream.cu) read MXFP4 experts, not bf16 ones");
  const int P = a.n * a.k;
  const StreamWs sw = stream_ws(a, tokens, workspace, nullptr);
  const GroupedWs& w = sw.g;
  constexpr int kRouteThreads = 512;
  // one block: the routing; then the pack kernel splits x into the tiles
  launch_k(moe_route_kernel, 1, kRouteThreads, sizeof(int32_t) * (3 * size_t(a.E) + 1), stream, a.expert_idx, P, a.k, a.E,
           tokens, w.group_start, w.tile_start, w.perm_token, w.pair_slot, a.err);
  launch_moe_stream_pack(a.x, w.perm_token, w.group_start, w.tile_start, P, a.E, a.H, tokens, sw.x_packed, stream);

  MoeStreamProblem g1;
  g1.a_packed = sw.x_packed;
  g1.w = a.gate_up;
  g1.scales = a.gate_up_scales;
  g1.decode_layout = a.decode_layout;
  g1.bias = a.gate_up_bias;
  g1.bias_bf16 = a.gate_up_bias_bf16;
  g1.group_start = w.group_start;
  g1.tile_start = w.tile_start;
  g1.max_tiles = sw.max_tiles;
  g1.tokens = tokens;
  g1.N = 2 * a.I;
  g1.K = a.H;
  g1.E = a.E;
  g1.out_packed = sw.act_packed;
  g1.limit = a.limit;
  g1.alpha = a.alpha;
  launch_moe_stream_gemm(g1, true, stream);

  MoeStreamProblem g2;
  g2.a_packed = sw.act_packed;
  g2.w = a.down;
  g2.scales = a.down_scales;
  g2.decode_layout = a.decode_layout;
  g2.bias = a.down_bias;
  g2.bias_bf16 = a.down_bias_bf16;
  g2.group_start = w.group_start;
  g2.tile_start = w.tile_start;
  g2.max_tiles = sw.max_tiles;
  g2.tokens = tokens;
  g2.N = a.H;
  g2.K = a.I;
  g2.E = a.E;
  g2.out = w.y;
  launch_moe_stream_gemm(g2, false, stream);

  const int64_t total = int64_t(a.n) * a.H;
  launch_k(moe_unpermute_kernel, unsigned(ceil_div(total, 256)), 256, 0, stream, w.y, w.pair_slot, a.expert_weight, a.n,
           a.k, a.H, a.out);
}

void launch_moe_grouped(const MoeArgs& a, void* workspace, cudaStream_t stream) {
  const int P = a.n * a.k;
  GroupedWs w = grouped_ws(a, workspace, nullptr);
  GPTOSS_CUDA_CHECK(cudaMemsetAsync(w.counts, 0, sizeof(int32_t) * a.E, stream));
  moe_count_kernel<<<ceil_div(P, 256), 256, 0, stream>>>(a.expert_idx, P, a.E, w.counts, a.err);
  GPTOSS_CUDA_LAUNCH("moe_count_kernel");
  // The tile for the expected rows an expert (P / E; policy.h: wgmma on sm_90a from 128 an expert), and
  // its M tile rows for them: 128 at 2048 tokens of the 20b, 32 for the 120b at 512 (16 an expert), so
  // a tile is not mostly padding. Both launches below and tile_start use this one kind and bm.
  const GemmTileKind kind = moe_gemm_tile_kind(current_caps(), a.n, a.k, a.E);
  if (a.decode_layout && kind != GemmTileKind::MmaSync && kind != GemmTileKind::Wgmma)  // moe_decode_layout(): not reached
    throw type_error("moe: experts in the decode layout are read by the mma.sync and wgmma GEMM tiles only");
  const int bm = gemm_tile_rows(current_caps(), kind, P / a.E, !a.bf16, std::max(a.H, a.I));
  moe_scan_kernel<<<1, WARP_SIZE, 0, stream>>>(w.counts, a.E, bm, w.group_start, w.tile_start, w.cursor);
  GPTOSS_CUDA_LAUNCH("moe_scan_kernel");
  moe_scatter_kernel<<<ceil_div(P, 256), 256, 0, stream>>>(a.expert_idx, P, a.k, a.E, w.group_start, w.cursor,
                                                           w.perm_token, w.pair_slot);
  GPTOSS_CUDA_LAUNCH("moe_scatter_kernel");
  // Upper bound on M tiles without reading the counts back: sum ceil(c_e/BM) <= P/BM + E.
  const int max_tiles = P / bm + a.E;
  launch_split_bf16(a.x, int64_t(a.n) * a.H, w.x_hi, w.x_lo, stream);

  GemmProblem g1 = expert_gemm(a, w, w.x_hi, w.x_lo, a.gate_up, a.gate_up_scales, a.gate_up_bias, a.gate_up_bias_bf16,
                                2 * a.I, a.H);
  // loadModel's activations 'bf16' (MoeArgs::act_bf16), or GPTOSS_CUDA_MOE_ACT=bf16 (probe; policy.h
  // GpuKnobs::moe_act_bf16): on the wgmma tile both GEMMs take A as its bf16 hi half alone (the gate_up epilogue
  // writes no lo half), half the tensor-core work
  const bool act_bf16 = kind == GemmTileKind::Wgmma && (a.act_bf16 || knobs().moe_act_bf16);
  if (act_bf16) g1.a_lo = nullptr;
  g1.a_rows = w.perm_token;
  g1.out = w.act_hi;
  g1.out_lo = act_bf16 ? nullptr : w.act_lo;
  g1.ldo = a.I;
  g1.swiglu_limit = a.limit;
  g1.swiglu_alpha = a.alpha;
  if (a.bf16) launch_gemm_tile<WeightFormat::BF16, Epilogue::SwiGLU>(kind, g1, bm, max_tiles, stream);
  else launch_gemm_tile<WeightFormat::MXFP4, Epilogue::SwiGLU>(kind, g1, bm, max_tiles, stream);

  GemmProblem g2 = expert_gemm(a, w, w.act_hi, act_bf16 ? nullptr : w.act_lo, a.down, a.down_scales, a.down_bias,
                                a.down_bias_bf16, a.H, a.I);
  g2.out = w.y;
  g2.ldo = a.H;
  if (a.bf16) launch_gemm_tile<WeightFormat::BF16, Epilogue::Store>(kind, g2, bm, max_tiles, stream);
  else launch_gemm_tile<WeightFormat::MXFP4, Epilogue::Store>(kind, g2, bm, max_tiles, stream);

  int64_t total = int64_t(a.n) * a.H;
  moe_unpermute_kernel<<<unsigned(ceil_div(total, 256)), 256, 0, stream>>>(w.y, w.pair_slot, a.expert_weight, a.n,
                                                                          a.k, a.H, a.out);
  GPTOSS_CUDA_LAUNCH("moe_unpermute_kernel");
}

}  // namespace gptoss::cuda
