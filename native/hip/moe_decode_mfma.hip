// Decode MoE on AMD matrix cores (CDNA: gfx90a, gfx942, gfx950): MoeDecodeKind::Mfma, which
// choose_moe_decode (policy.h) picks where GpuCaps says MFMA was compiled. Same contract, workspace,
// grids and epilogues as the mma.sync kernels of moe_decode_mma.cu:
//   1. gate_up + bias + SwiGLU -> act [pairs, I]     grid (ceil(2I / 16), pairs)
//   2. down + bias, times the routing weight -> part [pairs, H]; the last of a token's k CTAs of a
//      row tile sums them in expert order -> out [n, H]     grid (ceil(H / 16), pairs)
// A CTA owns 16 rows of one (token, expert) pair; its 4 wavefronts split the row's MX blocks into
// contiguous ranges. The core is v_mfma_f32_16x16x16bf16_1k with the packed MXFP4 weights as B and
// the activation as A (native/hip/mfma.h's MoeDecodeMap, checked on the host):
//  - lane (j, q) loads word q of row j's 16-byte block (one 4-byte load a lane a block: a wave reads
//    the 16 rows' blocks whole) and decodes it in registers (e2m1_word_to_bf16_steps: byte tables
//    in v_perm_b32, exact bf16, no LDS lookups) into the block's two k-steps;
//  - the activation, split into bf16 hi + lo (x = hi + lo to ~2^-17, as every tensor-core path here),
//    is staged once a CTA in LDS in the same k order (128 bytes a block); A rows 0 / 1 are hi / lo;
//  - per block: two MFMAs (C = 0, then accumulate), and lane j < 16 adds
//    2^(s - 127) * (D[0][j] + D[1][j]) for its row; the waves' sums meet in LDS in wave order.
// The MFMA's 16 columns carry 16 weight rows but only 2 of its 16 A rows are distinct: the work is
// bound by the weight bytes, not by the matrix cores. No AMD GPU has run this kernel yet (README:
// "compiled, not run").
#include "cuda/moe.cuh"
#include "mfma.h"

namespace gptoss::cuda {

namespace {

using mfma::MoeDecodeMap;

typedef short bf16x4_t __attribute__((ext_vector_type(4)));
typedef float f32x4_t __attribute__((ext_vector_type(4)));

constexpr int kWave = 64;
constexpr int kWaves = kMoeMfmaWaves;
constexpr int kRows = kMoeTileRows;
static_assert(kRows == MoeDecodeMap::kRows, "a CTA's row tile is the MFMA's 16 columns");
static_assert(MoeDecodeMap::kFragBytesPerBlock == moe_mfma_frag_bytes(1), "shapes.h sizes the LDS by mfma.h's layout");

#if defined(GPTOSS_HAVE_MFMA)
__device__ __forceinline__ bf16x4_t as_bf16x4(uint2 v) {
  union {
    uint2 u;
    bf16x4_t b;
  } x{v};
  return x.b;
}
__device__ __forceinline__ bf16x4_t as_bf16x4(const uint32_t (&v)[2]) { return as_bf16x4(make_uint2(v[0], v[1])); }

// The activation x [nch * 32] as A fragments in LDS (MoeDecodeMap::frag_index): one thread a (block,
// word) item, its 8 values as hi and lo halves for both k-steps. All threads; ends synchronized.
__device__ __forceinline__ void stage_x_frags(const float* x, int nch, uint2* frag) {
  for (int it = threadIdx.x; it < nch * 4; it += blockDim.x) {
    const int b = it >> 2, q = it & 3;
    const float4* p = reinterpret_cast<const float4*>(x + b * 32 + 8 * q);
    const float4 v0 = p[0], v1 = p[1];
    const float v[8] = {v0.x, v0.y, v0.z, v0.w, v1.x, v1.y, v1.z, v1.w};
#pragma unroll
    for (int s = 0; s < MoeDecodeMap::kSteps; ++s) {
      // item i of word q, k-step s: value MoeDecodeMap::value(s, 4q + i) = 8q + 2i + s
      uint32_t hi[2], lo[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float a = v[4 * h + s], c = v[4 * h + 2 + s];
        hi[h] = pack_bf16x2(a, c);
        lo[h] = pack_bf16x2(a - bf16_lo(hi[h]), c - bf16_hi(hi[h]));
      }
      frag[MoeDecodeMap::frag_index(b, s, 0, q)] = make_uint2(hi[0], hi[1]);
      frag[MoeDecodeMap::frag_index(b, s, 1, q)] = make_uint2(lo[0], lo[1]);
    }
  }
  __syncthreads();
}

// This wave's share of the tile: rows [row0, row0 + 16) of w (MXFP4 blocks [rows_total, nch, 16],
// scales [rows_total, nch]) times the staged x, over MX blocks [b0, b1). Lane j < 16 returns row j's
// partial sum (other lanes: unused values).
__device__ __forceinline__ float tile_gemv(const uint8_t* w, const uint8_t* s, int nch, int rows_total, int row0,
                                           int b0, int b1, const uint2* frag, int lane) {
  const int row = min(row0 + MoeDecodeMap::w_row(lane), rows_total - 1);  // rows past the end: computed, not stored
  const int word = MoeDecodeMap::w_word(lane), half = MoeDecodeMap::x_half(lane);
  const int aq = mfma::M16x16x16::a_k(lane, 0) / 4;  // the word of A's k range (= word for these layouts)
  const uint32_t* wrow = reinterpret_cast<const uint32_t*>(w + int64_t(row) * nch * 16);
  const uint8_t* srow = s + int64_t(row) * nch;
  const f32x4_t zero = {0.f, 0.f, 0.f, 0.f};
  float acc = 0.f;
  // kUnroll blocks at a time, in phases (loads, decodes, first MFMAs, second MFMAs, scales), so that
  // their loads are in flight together and the MFMA chains interleave. Past b1 (a wave's last round)
  // a block's weights and scale are 0 and its A fragment is block b1 - 1's (finite): it adds 0.
  constexpr int kUnroll = 4;
  for (int b = b0; b < b1; b += kUnroll) {
    uint32_t wv[kUnroll], sv[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const bool in = b + u < b1;
      wv[u] = in ? __ldg(wrow + (b + u) * 4 + word) : 0u;
      sv[u] = in ? __ldg(srow + b + u) : 0u;
    }
    f32x4_t d[kUnroll];
    uint32_t w1[kUnroll][2];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      uint32_t w0[2];
      mfma::e2m1_word_to_bf16_steps(wv[u], w0, w1[u]);
      const bf16x4_t a0 = as_bf16x4(frag[MoeDecodeMap::frag_index(min(b + u, b1 - 1), 0, half, aq)]);
      d[u] = __builtin_amdgcn_mfma_f32_16x16x16bf16_1k(a0, as_bf16x4(w0), zero, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const bf16x4_t a1 = as_bf16x4(frag[MoeDecodeMap::frag_index(min(b + u, b1 - 1), 1, half, aq)]);
      d[u] = __builtin_amdgcn_mfma_f32_16x16x16bf16_1k(a1, as_bf16x4(w1[u]), d[u], 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) acc = fmaf(e8m0_to_f32(sv[u]), d[u][0] + d[u][1], acc);  // D[0][j] + D[1][j]: hi + lo
  }
  return acc;
}

// The wave's block range: contiguous, balanced (nch = 90: 23, 23, 22, 22).
__device__ __forceinline__ void wave_blocks(int nch, int wave, int& b0, int& b1) {
  const int base = nch / kWaves, extra = nch % kWaves;
  b0 = wave * base + min(wave, extra);
  b1 = b0 + base + (wave < extra ? 1 : 0);
}

// The tile's 16 row sums over the waves, in wave order (deterministic). Returns row threadIdx.x (< 16).
__device__ __forceinline__ float tile_rows_sum(float acc, float (*red)[kRows]) {
  const int wave = threadIdx.x / kWave, lane = threadIdx.x % kWave;
  if (lane < kRows) red[wave][lane] = acc;
  __syncthreads();
  float v = 0.f;
  if (threadIdx.x < kRows)
    for (int w = 0; w < kWaves; ++w) v += red[w][threadIdx.x];
  return v;
}
#endif  // GPTOSS_HAVE_MFMA

// Stage 1: rows [16 blockIdx.x, + 16) of the pair's expert gate_up [2I, H] -> SwiGLU -> act.
__global__ void __launch_bounds__(kWaves * kWave) moe_mfma_gate_up_kernel(MoeArgs a, float* act) {
#if defined(GPTOSS_HAVE_MFMA)
  extern __shared__ __attribute__((aligned(16))) uint8_t smem[];
  __shared__ float red[kWaves][kRows];
  __shared__ float rowv[kRows];
  const int pair = blockIdx.y, tok = pair / a.k;
  const int e = a.expert_idx[pair];
  const int rows_total = 2 * a.I, nch = a.H / 32;
  const int row0 = blockIdx.x * kRows;
  if (e < 0 || e >= a.E) {  // flagged; this pair contributes zeros (the whole CTA leaves together)
    if (threadIdx.x == 0) atomicOr(a.err, kErrExpertRange);
    const int j = row0 / 2 + threadIdx.x;
    if (threadIdx.x < kRows / 2 && j < a.I) act[int64_t(pair) * a.I + j] = 0.f;
    return;
  }
  uint2* frag = reinterpret_cast<uint2*>(smem);
  stage_x_frags(a.x + int64_t(tok) * a.H, nch, frag);
  const int wave = threadIdx.x / kWave, lane = threadIdx.x % kWave;
  int b0, b1;
  wave_blocks(nch, wave, b0, b1);
  const int rb = row0 + int(threadIdx.x);  // this thread's bias row (threads < 16)
  const float bias = threadIdx.x < kRows && rb < rows_total
                         ? param_f32(a.gate_up_bias, a.gate_up_bias_bf16, int64_t(e) * rows_total + rb) : 0.f;
  const float acc = tile_gemv(a.gate_up + int64_t(e) * rows_total * nch * 16, a.gate_up_scales + int64_t(e) * rows_total * nch,
                              nch, rows_total, row0, b0, b1, frag, lane);
  const float v = tile_rows_sum(acc, red);
  if (threadIdx.x < kRows) rowv[threadIdx.x] = v + bias;
  __syncthreads();
  // rows 2j (gate) and 2j + 1 (up) are interleaved
  const int j = row0 / 2 + threadIdx.x;
  if (threadIdx.x < kRows / 2 && 2 * j + 1 < rows_total)
    act[int64_t(pair) * a.I + j] = swiglu(rowv[2 * threadIdx.x], rowv[2 * threadIdx.x + 1], a.limit, a.alpha);
#else
  GPTOSS_NO_DEVICE_CODE("MFMA bf16 (gfx90a, gfx942, gfx950)");
#endif
}

// Stage 2: rows [16 blockIdx.x, + 16) of the pair's expert down [H, I] times its act row, plus the
// bias, times the routing weight -> part; the last of the token's k CTAs of this row tile sums them in
// expert order -> out.
__global__ void __launch_bounds__(kWaves * kWave) moe_mfma_down_kernel(MoeArgs a, const float* act, float* part) {
#if defined(GPTOSS_HAVE_MFMA)
  extern __shared__ __attribute__((aligned(16))) uint8_t smem[];
  __shared__ float red[kWaves][kRows];
  const int pair = blockIdx.y, tok = pair / a.k;
  const int e = a.expert_idx[pair];
  const bool valid = e >= 0 && e < a.E;  // gate_up flagged a bad index; the pair adds zeros
  const int nch = a.I / 32;
  const int row0 = blockIdx.x * kRows;
  const int wave = threadIdx.x / kWave, lane = threadIdx.x % kWave;
  const int rb = row0 + int(threadIdx.x);  // this thread's bias row and routing weight
  const bool bias_row = valid && threadIdx.x < kRows && rb < a.H;
  const float bias = bias_row ? param_f32(a.down_bias, a.down_bias_bf16, int64_t(e) * a.H + rb) : 0.f;
  const float route_w = bias_row ? a.expert_weight[pair] : 0.f;
  float acc = 0.f;
  if (valid) {  // uniform across the CTA (one pair)
    uint2* frag = reinterpret_cast<uint2*>(smem);
    stage_x_frags(act + int64_t(pair) * a.I, nch, frag);
    int b0, b1;
    wave_blocks(nch, wave, b0, b1);
    acc = tile_gemv(a.down + int64_t(e) * a.H * nch * 16, a.down_scales + int64_t(e) * a.H * nch, nch, a.H, row0, b0, b1,
                    frag, lane);
  }
  const float v = tile_rows_sum(acc, red);
  const int r = row0 + int(threadIdx.x);
  if (threadIdx.x < kRows && r < a.H) part[int64_t(pair) * a.H + r] = valid ? route_w * (v + bias) : 0.f;
  if (!last_block_arrives(a.counters + kCountersMoe + tok * int(gridDim.x) + blockIdx.x, a.k)) return;
  if (threadIdx.x < kRows && r < a.H) {
    float sum = 0.f;
    for (int j = 0; j < a.k; ++j) sum += __ldcg(part + (int64_t(tok) * a.k + j) * a.H + r);
    a.out[int64_t(tok) * a.H + r] = sum;
  }
#else
  GPTOSS_NO_DEVICE_CODE("MFMA bf16 (gfx90a, gfx942, gfx950)");
#endif
}

}  // namespace

void launch_moe_decode_mfma(const MoeArgs& a, void* workspace, cudaStream_t stream) {
  float* act = static_cast<float*>(workspace);
  float* part = act + int64_t(a.n) * a.k * a.I;
  const int pairs = a.n * a.k;
  // dynamic LDS: the activation fragments (the row sums are static)
  const size_t s1 = size_t(moe_mfma_frag_bytes(a.H / 32)), s2 = size_t(moe_mfma_frag_bytes(a.I / 32));
  moe_mfma_gate_up_kernel<<<dim3(ceil_div(2 * a.I, kRows), pairs), kWaves * kWave, s1, stream>>>(a, act);
  GPTOSS_CUDA_LAUNCH("moe_mfma_gate_up_kernel");
  moe_mfma_down_kernel<<<dim3(ceil_div(a.H, kRows), pairs), kWaves * kWave, s2, stream>>>(a, act, part);
  GPTOSS_CUDA_LAUNCH("moe_mfma_down_kernel");
}

}  // namespace gptoss::cuda
