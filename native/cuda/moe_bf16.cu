// bf16 experts (loadModel's experts: 'bf16', a fine-tuned checkpoint run as stored) for few (token,
// expert) pairs: choose_moe_bf16()'s Gemv (policy.h). Two SIMT GEMVs over the routed experts' rows in
// the GPU layout (backend.h MoeWeights: gate_up [E, 2I, H], down [E, H, I], rows = outputs; the loader
// transposes transformers' [E, in, out] at upload), f32 sums of bf16 x f32 products, and the MXFP4 decode
// path's semantics (moe.cu): act = swiglu(gate_up rows 2j, 2j + 1 + bias) with the clamp and alpha of
// SwigluParams, out = sum_j w_j (down_{e_j} . act_j + b_{e_j}). Many pairs take the grouped GEMM over the
// bf16 tile instead (moe.cu's launch_moe_grouped with a.bf16).
//
// Memory-bound: a token's step reads k x (2I x H + H x I) x 2 bytes of experts (20b: 199 MB a layer,
// 4.78 GB a token), so the kernels are shaped for loads in flight, after matmul.cu's GEMVs: 16-byte
// loads, each lane several ahead, no shared-memory staging of x (the first weight loads start at once),
// the same inner step (convert.cuh's bf16x8_dot). matmul.cu's launchers themselves do not fit: the rows
// a pair reads depend on the router's expert ids, which live on the device (a decode step is a captured
// graph: no read back), so these kernels find their expert's rows themselves, as moe.cu's decode kernels do.
#include "moe.cuh"

namespace gptoss::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / WARP_SIZE;  // 8 on NVIDIA, 4 on AMD
constexpr int kDownRows = 4;                  // output rows a down block
constexpr int kMaxGridY = 65535;

// Stage 1, pairs [pair0, pair0 + gridDim.y): act[pair, j] = swiglu(gate_up[e, 2j] . x_t + b[e, 2j],
// gate_up[e, 2j + 1] . x_t + b[e, 2j + 1]). A warp owns one output j: its gate and up rows are adjacent
// (2 H bf16, one contiguous run); lanes stride over 16-byte chunks (8 values) and each x chunk (two
// float4 from L1: every warp of a pair reads the same row) feeds both rows. Unrolled 4 deep: 8
// weight loads of 16 bytes in flight a lane. grid (ceil(I / kWarps), pairs).
__global__ void __launch_bounds__(kThreads) moe_bf16_gate_up_kernel(MoeArgs a, int pair0, float* act) {
  const int pair = pair0 + int(blockIdx.y);
  const int t = pair / a.k;
  const int e = a.expert_idx[pair];
  const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
  const int j = blockIdx.x * kWarps + warp;
  if (j >= a.I) return;
  if (e < 0 || e >= a.E) {
    if (lane == 0) {
      atomicOr(a.err, kErrExpertRange);
      act[int64_t(pair) * a.I + j] = 0.f;
    }
    return;
  }
  const int nch = a.H / 8;
  const uint4* gate = reinterpret_cast<const uint4*>(a.gate_up) + (int64_t(e) * 2 * a.I + 2 * int64_t(j)) * nch;
  const uint4* up = gate + nch;
  const float4* x = reinterpret_cast<const float4*>(a.x + int64_t(t) * a.H);
  float sg = 0.f, su = 0.f;
#pragma unroll 4
  for (int c = lane; c < nch; c += WARP_SIZE) {
    const uint4 wg = __ldg(gate + c), wu = __ldg(up + c);
    const float4 x0 = __ldg(x + 2 * c), x1 = __ldg(x + 2 * c + 1);
    sg = bf16x8_dot(wg, x0, x1, sg);
    su = bf16x8_dot(wu, x0, x1, su);
  }
  sg = warp_sum(sg);
  su = warp_sum(su);
  if (lane == 0) {
    const int64_t b = int64_t(e) * 2 * a.I + 2 * int64_t(j);
    act[int64_t(pair) * a.I + j] = swiglu(sg + param_f32(a.gate_up_bias, a.gate_up_bias_bf16, b),
                                          su + param_f32(a.gate_up_bias, a.gate_up_bias_bf16, b + 1), a.limit, a.alpha);
  }
}

// Stage 2, tokens [token0, token0 + gridDim.y): out[t, h] = sum_j w[t, j] * (down[e_j, h] . act[t, j] +
// b[e_j, h]). A block owns kDownRows output rows; its threads stride over the (expert j, 16-byte chunk c)
// items of the reduction (k * I / 8 of them: consecutive threads read consecutive chunks of a row), each
// item's act chunk feeding the block's rows, so one token launches H / 4 blocks (moe.cu's SIMT down
// kernel, same reasons). The routing weight multiplies each item's dot; warp sums, then a shared-memory
// sum over warps in a fixed order (deterministic, no atomics). (256, 4): up to 64 registers (sm_90a takes 64;
// without the bound sm_120a's ptxas kept 48 and spilled 8 bytes).
__global__ void __launch_bounds__(kThreads, 4) moe_bf16_down_kernel(MoeArgs a, int token0, const float* act) {
  __shared__ float red[kWarps][kDownRows];
  const int t = token0 + int(blockIdx.y);
  const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
  constexpr int R = kDownRows;
  const int row0 = blockIdx.x * R;
  const int rows = min(R, a.H - row0);
  const int nch = a.I / 8;
  const int items = a.k * nch;
  float out[R] = {};
#pragma unroll 2
  for (int it = threadIdx.x; it < items; it += kThreads) {
    const int j = it / nch, c = it - j * nch;
    const int e = a.expert_idx[int64_t(t) * a.k + j];
    if (e < 0 || e >= a.E) continue;  // flagged by stage 1
    const float wgt = a.expert_weight[int64_t(t) * a.k + j];
    const uint4* wb = reinterpret_cast<const uint4*>(a.down) + (int64_t(e) * a.H + row0) * nch + c;
    uint4 wv[R];
#pragma unroll
    for (int r = 0; r < R; ++r)
      if (r < rows) wv[r] = __ldg(wb + int64_t(r) * nch);
    const float4* ap = reinterpret_cast<const float4*>(act + (int64_t(t) * a.k + j) * a.I) + 2 * c;
    const float4 x0 = __ldg(ap), x1 = __ldg(ap + 1);
#pragma unroll
    for (int r = 0; r < R; ++r)
      if (r < rows) out[r] = fmaf(wgt, bf16x8_dot(wv[r], x0, x1, 0.f), out[r]);
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const float v = warp_sum(out[r]);
    if (lane == 0) red[warp][r] = v;
  }
  __syncthreads();
  if (threadIdx.x < rows) {
    const int r = threadIdx.x;
    float s = 0.f;
    for (int w = 0; w < kWarps; ++w) s += red[w][r];
    for (int j = 0; j < a.k; ++j) {
      const int e = a.expert_idx[int64_t(t) * a.k + j];
      if (e < 0 || e >= a.E) continue;
      s += a.expert_weight[int64_t(t) * a.k + j] * param_f32(a.down_bias, a.down_bias_bf16, int64_t(e) * a.H + row0 + r);
    }
    a.out[int64_t(t) * a.H + row0 + r] = s;
  }
}

}  // namespace

void launch_moe_bf16_gemv(const MoeArgs& a, void* workspace, cudaStream_t stream) {
  if (a.n <= 0) return;
  float* act = static_cast<float*>(workspace);  // [pairs, I]
  const int pairs = a.n * a.k;
  for (int p0 = 0; p0 < pairs; p0 += kMaxGridY) {
    const dim3 grid(ceil_div(a.I, kWarps), std::min(kMaxGridY, pairs - p0));
    moe_bf16_gate_up_kernel<<<grid, kThreads, 0, stream>>>(a, p0, act);
    GPTOSS_CUDA_LAUNCH("moe_bf16_gate_up_kernel");
  }
  for (int t0 = 0; t0 < a.n; t0 += kMaxGridY) {
    const dim3 grid(ceil_div(a.H, kDownRows), std::min(kMaxGridY, a.n - t0));
    moe_bf16_down_kernel<<<grid, kThreads, 0, stream>>>(a, t0, act);
    GPTOSS_CUDA_LAUNCH("moe_bf16_down_kernel");
  }
}

}  // namespace gptoss::cuda
