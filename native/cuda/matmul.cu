#include <algorithm>

#include "gemm_tile.cuh"
#include "matmul.cuh"

namespace gptoss::cuda {

namespace {

// Up to kGemvMaxParts weight matrices that share x, n and K (qkv: q, k and v), walked as one
// row range: rows [0, N0) are part 0, [N0, N0 + N1) part 1, ... A plain linear is one part.
struct GemvParts {
  LinearArgs part[kGemvMaxParts];
  int count = 0, rows = 0;
};
// The norm prologue of gemv1_bf16_kernel<., kNormPer > 0>: x [K] += residual, normed = rmsnorm(x).
struct GemvNorm {
  float* x = nullptr;
  const float* residual = nullptr;
  const void* weight = nullptr;
  bool weight_bf16 = true;
  float eps = 0.f;
  float* normed = nullptr;
  int* counter = nullptr;
};

// Part i by value, selected with constant indices (a dynamic index into the kernel's parameter
// struct would copy it to local memory).
__device__ __forceinline__ LinearArgs gemv_part(const GemvParts& p, int row, int& local_row) {
  local_row = row;
  if (p.count > 1 && local_row >= p.part[0].N) {
    local_row -= p.part[0].N;
    if (p.count > 2 && local_row >= p.part[1].N) {
      local_row -= p.part[1].N;
      return p.part[2];
    }
    return p.part[1];
  }
  return p.part[0];
}

// One warp per output row (grid-stride), lanes stride over 16-byte chunks of the row: 8 bf16 or
// one MXFP4 block (32 values). NT tokens share each weight load. Unrolled 4 deep so each lane keeps
// several 16-byte loads in flight (Little's law: ~33 KB in flight per SM at 4.3 TB/s).
template <int NT, bool MX>
__global__ void __launch_bounds__(256) gemv_kernel(GemvParts parts) {
  __shared__ uint32_t lut[256];
  if (MX) {
    fill_e2m1_lut(lut);
    __syncthreads();
  }
  const int lane = threadIdx.x % WARP_SIZE;
  const int warps_per_block = blockDim.x / WARP_SIZE;
  const int K = parts.part[0].K;
  const int chunk_elems = MX ? 32 : 8;
  const int nch = K / chunk_elems;
  for (int global_row = blockIdx.x * warps_per_block + threadIdx.x / WARP_SIZE; global_row < parts.rows;
       global_row += gridDim.x * warps_per_block) {
    int row;
    const LinearArgs a = gemv_part(parts, global_row, row);
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; ++t) acc[t] = 0.f;
    const uint4* wrow = reinterpret_cast<const uint4*>(static_cast<const uint8_t*>(a.w) +
                                                       int64_t(row) * nch * 16);
#pragma unroll 4
    for (int c = lane; c < nch; c += WARP_SIZE) {
      const uint4 wv = __ldg(wrow + c);
      if (MX) {
        const float scale = e8m0_to_f32(a.w_scales[int64_t(row) * nch + c]);
#pragma unroll
        for (int t = 0; t < NT; ++t) {
          if (t >= a.n) break;
          float xv[32];
          const float4* xp = reinterpret_cast<const float4*>(a.x + int64_t(t) * K + c * 32);
#pragma unroll
          for (int i = 0; i < 8; ++i) {
            float4 f = __ldg(xp + i);
            xv[4 * i] = f.x; xv[4 * i + 1] = f.y; xv[4 * i + 2] = f.z; xv[4 * i + 3] = f.w;
          }
          acc[t] = fmaf(scale, mxfp4_block_dot(wv, xv, lut), acc[t]);
        }
      } else {
#pragma unroll
        for (int t = 0; t < NT; ++t) {
          if (t >= a.n) break;
          const float4* xp = reinterpret_cast<const float4*>(a.x + int64_t(t) * K + c * 8);
          acc[t] = bf16x8_dot(wv, __ldg(xp), __ldg(xp + 1), acc[t]);
        }
      }
    }
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if (t >= a.n) break;
      float s = warp_sum(acc[t]);
      if (lane == 0) a.out[int64_t(t) * a.N + row] = s + bias_at(a.bias, a.bias_kind, row);
    }
  }
}

// Decode (one token, bf16 weights, rows of at most kRowChunks x 32 16-byte chunks): x staged once
// per block in shared memory, and every lane issues all of its chunks of the row before the first
// FMA (one memory round trip a row). gemv_kernel keeps 4 loads in flight a lane and rereads x from
// L1 per chunk; it ran the 20b's q/k/v (5120 x 2880) and o (2880 x 4096) GEMVs at ~50% and the LM
// head at 73% of copy bandwidth.
// kNormPer > 0: the x every part reads is rmsnorm(x + residual) (GemvNorm), formed by every block in
// registers with rmsnorm_vec_kernel<add>'s arithmetic (256 threads, kNormPer float4s a thread:
// bit-identical to that kernel); the last block to finish writes x += residual and normed.
// Up to 12 chunks a lane, 3 blocks a SM (<= 85 registers): the q/k/v GEMV of the 20b and 120b.
template <int kRowChunks, int kNormPer>
__global__ void __launch_bounds__(256, kRowChunks <= 12 ? 3 : 1) gemv1_bf16_kernel(GemvParts parts,
                                                                                                   GemvNorm nrm) {
  extern __shared__ float4 xs4[];  // [2][K / 8]: first and second halves of each 8-value chunk
  const int K = parts.part[0].K, nch = K / 8;
  const int lane = threadIdx.x % WARP_SIZE, warps_per_block = blockDim.x / WARP_SIZE;
  const int stride = gridDim.x * warps_per_block;
  int global_row = blockIdx.x * warps_per_block + threadIdx.x / WARP_SIZE;
  uint4 wv[kRowChunks];
  auto load_row = [&](int grow) {
    int row;
    const LinearArgs a = gemv_part(parts, grow, row);
    const uint4* wrow = reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(a.w) + int64_t(row) * K);
#pragma unroll
    for (int j = 0; j < kRowChunks; ++j) {
      const int c = lane + j * WARP_SIZE;
      if (c < nch) wv[j] = __ldg(wrow + c);
    }
  };
  // The first row's weights are requested before x is staged (and before the previous kernel has
  // finished, under programmatic dependent launch): the latencies overlap.
  if (global_row < parts.rows) load_row(global_row);
  constexpr int kP = kNormPer > 0 ? kNormPer : 1;
  float4 nw[kP];
  if (kNormPer > 0) load_row4<kP>(nrm.weight, nrm.weight_bf16, K / 4, nw);  // constant: before the wait
  pdl_wait();
  pdl_launch_dependents();
  if (kNormPer == 0) {
    const float4* x4 = reinterpret_cast<const float4*>(parts.part[0].x);  // every part reads the same x
    for (int i = threadIdx.x; i < K / 4; i += blockDim.x) xs4[(i & 1) * nch + (i >> 1)] = __ldg(x4 + i);
  } else {
    __shared__ float partial[32];
    float4 v[kP];
    row4_load<kP, true>(nrm.x, nrm.residual, K / 4, v);
    const float inv = row4_inv_rms<kP>(v, K, nrm.eps, partial);
#pragma unroll
    for (int j = 0; j < kP; ++j) {
      const int i = threadIdx.x + j * blockDim.x;
      if (i < K / 4) xs4[(i & 1) * nch + (i >> 1)] = row4_normed(v[j], inv, nw[j]);
    }
  }
  __syncthreads();
  for (; global_row < parts.rows; global_row += stride) {
    float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
#pragma unroll
    for (int j = 0; j < kRowChunks; ++j) {
      const int c = lane + j * WARP_SIZE;
      if (c < nch) {
        const float4 x0 = xs4[c], x1 = xs4[nch + c];  // consecutive lanes, consecutive 16 bytes
        s0 = fmaf(bf16_lo(wv[j].x), x0.x, s0); s1 = fmaf(bf16_hi(wv[j].x), x0.y, s1);
        s2 = fmaf(bf16_lo(wv[j].y), x0.z, s2); s3 = fmaf(bf16_hi(wv[j].y), x0.w, s3);
        s0 = fmaf(bf16_lo(wv[j].z), x1.x, s0); s1 = fmaf(bf16_hi(wv[j].z), x1.y, s1);
        s2 = fmaf(bf16_lo(wv[j].w), x1.z, s2); s3 = fmaf(bf16_hi(wv[j].w), x1.w, s3);
      }
    }
    int row;
    const LinearArgs a = gemv_part(parts, global_row, row);
    if (global_row + stride < parts.rows) load_row(global_row + stride);  // next row in flight
    const float s = warp_sum((s0 + s1) + (s2 + s3));
    if (lane == 0) a.out[row] = s + bias_at(a.bias, a.bias_kind, row);
  }
  // Every block has read x: the last one writes x + residual (formed again: the prologue's registers
  // are not kept across the row loop, which would cost a block a SM) and the normed row.
  if (kNormPer > 0 && last_block_arrives(nrm.counter, gridDim.x)) {
    for (int i = threadIdx.x; i < K / 4; i += blockDim.x) {
      float4 x = reinterpret_cast<const float4*>(nrm.x)[i];
      const float4 r = reinterpret_cast<const float4*>(nrm.residual)[i];
      x.x += r.x; x.y += r.y; x.z += r.z; x.w += r.w;
      reinterpret_cast<float4*>(nrm.x)[i] = x;
      reinterpret_cast<float4*>(nrm.normed)[i] = xs4[(i & 1) * nch + (i >> 1)];
    }
  }
}

template <int kRowChunks, int kNormPer = 0>
void gemv1_launch(const GemvParts& p, cudaStream_t stream, const GemvNorm& nrm = {}) {
  const int warps = kGemvWarps;
  const int smem = p.part[0].K * int(sizeof(float));
  auto kernel = gemv1_bf16_kernel<kRowChunks, kNormPer>;
  if (smem > 48 * 1024) GPTOSS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  // No more blocks than fit at once (grid-stride over rows): x is staged once per block. Blocks an SM
  // x SMs, asked once per (device, instantiation, shared memory): the SM count is the device's, and
  // K sets the shared memory (on a 64 KB-LDS CDNA part 5 blocks fit at K = 2880, 4 at 4096).
  // GPTOSS_CUDA_GEMV_CTAS may ask for fewer a SM (gemv_ctas_per_sm).
  std::atomic<int>& slot = launcher_slot(kernel, smem);
  int per_sm = slot.load(std::memory_order_relaxed);
  if (!per_sm) {
    GPTOSS_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, warps * WARP_SIZE, smem));
    per_sm = std::max(1, per_sm);
    slot.store(per_sm, std::memory_order_relaxed);
  }
  const int resident = gemv_ctas_per_sm(knobs(), per_sm) * current_caps().sm_count;
  int blocks = ceil_div(p.rows, warps);
  if (blocks > resident) blocks = resident;
  launch_k(kernel, blocks, warps * WARP_SIZE, smem, stream, p, nrm);
  GPTOSS_CUDA_LAUNCH("gemv1_bf16_kernel");
}

#if !defined(GPTOSS_HIP)
// GemvKernel::Xs (policy.h; the default where it applies since it ran on the H200 at 076961b): gemv1's
// structure for 1..NT tokens and for Q8_0 weights. The problems it removes (H200, bench/RESULTS.md):
//  - gemv_kernel / q8_gemv_kernel re-read x with __ldg for every 16 (bf16) or 32 (Q8_0) weight bytes and
//    every token: 128 bytes of x a token for 32 bytes of int8, while the streamed weights (also cached
//    in L1) evict x's lines, so those re-reads go to L2: 4x (Q8_0, n = 1) to 32x (n = 8) the weight
//    bytes through L2 (Q8_0 LM head 24% of copy at n = 1, 6% at n = 4; bf16 LM head 38% at n = 4);
//  - q8_gemv_kernel widened every int8 with I2F (a quarter-rate conversion) once per token;
//  - both keep 2-4 loads in flight a lane and launch without programmatic dependent launch.
// Here each CTA stages the n tokens' x in shared memory once (f32, laid out so that the lanes' reads of
// one unit are consecutive 16-byte words: conflict-free), every lane issues all of its units of its
// rows before the first FMA (a unit: one 16-byte bf16 chunk, or one Q8_0 block: two 16-byte loads of
// int8 and its f16 scale), the next rows' units are requested before the current rows' warp sums, and
// each int8 is widened once for all tokens (a byte permute and an exact subtraction: i8_flipped_to_f32).
// kR rows a warp at once (Q8_0 at 2+ tokens: 2) read each x float4 from shared memory once for kR rows:
// shared-memory traffic is 4 bytes of x a weight a token (Q8_0), against 128 bytes a clock an SM.
// Sums: f32, a unit's values in order then scaled (Q8_0: sum q x, times d, as the CPU's q8_0 rows and
// q8_gemv_kernel), units in lane order then the warp tree: the order of gemv_kernel / q8_gemv_kernel.
// kU: units a lane holds for a row (a row has at most kU x WARP_SIZE units).
template <bool Q8, int NT, int kU, int kR>
__global__ void __launch_bounds__(256) gemv_xs_kernel(GemvParts parts) {
  extern __shared__ float4 xs4[];  // [n][kF][nu]: token t's float4 f of unit u at t * K / 4 + (f % kF) * nu + u
  constexpr int kF = Q8 ? 8 : 2;   // float4s of x a unit
  constexpr int kW = Q8 ? 2 : 1;   // 16-byte weight words a unit
  const int K = parts.part[0].K, n = parts.part[0].n;
  const int nu = K / (4 * kF), k4 = K / 4;
  const int lane = threadIdx.x % WARP_SIZE, warps_per_block = blockDim.x / WARP_SIZE;
  const int groups = (parts.rows + kR - 1) / kR, stride = gridDim.x * warps_per_block;
  int group = blockIdx.x * warps_per_block + threadIdx.x / WARP_SIZE;  // rows group * kR + r, r < kR
  uint4 wv[kR][kU][kW];
  uint32_t dv[kR][kU];
  auto load_group = [&](int g) {
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      const int grow = g * kR + r;
      if (grow >= parts.rows) break;
      int row;
      const LinearArgs a = gemv_part(parts, grow, row);
#pragma unroll
      for (int j = 0; j < kU; ++j) {
        const int u = lane + j * WARP_SIZE;
        if (u < nu) {
          if (Q8) {
            const uint4* q = reinterpret_cast<const uint4*>(static_cast<const int8_t*>(a.w) + int64_t(row) * K) + 2 * u;
            wv[r][j][0] = __ldg(q);
            wv[r][j][kW - 1] = __ldg(q + kW - 1);
            dv[r][j] = __ldg(reinterpret_cast<const uint16_t*>(a.w_scales) + int64_t(row) * nu + u);
          } else {
            wv[r][j][0] = __ldg(reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(a.w) + int64_t(row) * K) + u);
          }
        }
      }
    }
  };
  if (group < groups) load_group(group);  // weights before the wait (PDL overlap)
  pdl_wait();
  pdl_launch_dependents();
  {
    const float4* x4 = reinterpret_cast<const float4*>(parts.part[0].x);  // every part reads the same x
    for (int i = threadIdx.x; i < n * k4; i += blockDim.x) {
      const int t = i / k4, f = i - t * k4;
      xs4[t * k4 + (f % kF) * nu + f / kF] = __ldg(x4 + i);
    }
  }
  __syncthreads();
  for (; group < groups; group += stride) {
    float acc[kR][NT];
#pragma unroll
    for (int r = 0; r < kR; ++r)
#pragma unroll
      for (int t = 0; t < NT; ++t) acc[r][t] = 0.f;
#pragma unroll
    for (int j = 0; j < kU; ++j) {
      const int u = lane + j * WARP_SIZE;
      if (u >= nu) continue;
      if (Q8 && kR == 1) {  // the block's 32 values widened once, then each token's 32 FMAs
        float w[32];
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          const uint4& wq = wv[0][j][i / 4];
          const uint32_t fl = (i % 4 == 0 ? wq.x : i % 4 == 1 ? wq.y : i % 4 == 2 ? wq.z : wq.w) ^ 0x80808080u;
#pragma unroll
          for (int b = 0; b < 4; ++b) w[4 * i + b] = i8_flipped_to_f32(fl, b);
        }
        const float d = f16_bits_to_f32(dv[0][j]);
#pragma unroll
        for (int t = 0; t < NT; ++t) {
          if (t >= n) break;
          float v = 0.f;
#pragma unroll
          for (int i = 0; i < 8; ++i) {
            const float4 xv = xs4[t * k4 + i * nu + u];
            v = fmaf(w[4 * i], xv.x, v);
            v = fmaf(w[4 * i + 1], xv.y, v);
            v = fmaf(w[4 * i + 2], xv.z, v);
            v = fmaf(w[4 * i + 3], xv.w, v);
          }
          acc[0][t] = fmaf(v, d, acc[0][t]);
        }
      } else if (Q8) {  // kR rows: each x float4 read once for the kR rows
        float s[kR][NT];
#pragma unroll
        for (int r = 0; r < kR; ++r)
#pragma unroll
          for (int t = 0; t < NT; ++t) s[r][t] = 0.f;
#pragma unroll
        for (int i = 0; i < 8; ++i) {  // float4 i of the block: values 4i .. 4i + 3
          float4 xv[NT];
#pragma unroll
          for (int t = 0; t < NT; ++t)
            if (t < n) xv[t] = xs4[t * k4 + i * nu + u];
#pragma unroll
          for (int r = 0; r < kR; ++r) {
            const uint4& w = wv[r][j][i / 4];
            const uint32_t fl = (i % 4 == 0 ? w.x : i % 4 == 1 ? w.y : i % 4 == 2 ? w.z : w.w) ^ 0x80808080u;
            const float w0 = i8_flipped_to_f32(fl, 0), w1 = i8_flipped_to_f32(fl, 1), w2 = i8_flipped_to_f32(fl, 2),
                        w3 = i8_flipped_to_f32(fl, 3);
#pragma unroll
            for (int t = 0; t < NT; ++t) {
              if (t >= n) break;
              float v = s[r][t];
              v = fmaf(w0, xv[t].x, v);
              v = fmaf(w1, xv[t].y, v);
              v = fmaf(w2, xv[t].z, v);
              s[r][t] = fmaf(w3, xv[t].w, v);
            }
          }
        }
#pragma unroll
        for (int r = 0; r < kR; ++r) {
          const float d = f16_bits_to_f32(dv[r][j]);
#pragma unroll
          for (int t = 0; t < NT; ++t) acc[r][t] = fmaf(s[r][t], d, acc[r][t]);
        }
      } else {
#pragma unroll
        for (int t = 0; t < NT; ++t) {
          if (t >= n) break;
          const float4 x0 = xs4[t * k4 + u], x1 = xs4[t * k4 + nu + u];
#pragma unroll
          for (int r = 0; r < kR; ++r) acc[r][t] = bf16x8_dot(wv[r][j][0], x0, x1, acc[r][t]);
        }
      }
    }
    if (group + stride < groups) load_group(group + stride);  // the next rows in flight
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      const int grow = group * kR + r;
      if (grow >= parts.rows) break;
      int row;
      const LinearArgs a = gemv_part(parts, grow, row);
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        if (t >= n) break;
        const float sum = warp_sum(acc[r][t]);
        if (lane == 0) a.out[int64_t(t) * a.N + row] = sum + bias_at(a.bias, a.bias_kind, row);
      }
    }
  }
}

template <bool Q8, int NT, int kU, int kR>
void gemv_xs_launch(const GemvParts& p, cudaStream_t stream) {
  const int warps = kGemvWarps;
  const int smem = p.part[0].n * p.part[0].K * int(sizeof(float));
  auto kernel = gemv_xs_kernel<Q8, NT, kU, kR>;
  // Opt in once per device to the most shared memory a launch of this instantiation may ask
  // (NT tokens' x; choose_gemv bounds n K 4 by the device's opt-in), then size the grid from the
  // occupancy at this launch's shared memory (remembered per device, instantiation and size).
  const int most = std::min(NT * kGemvXsMaxK * int(sizeof(float)), current_caps().smem_optin);
  std::atomic<int>& optin = launcher_slot(kernel, -1);
  if (most > 48 * 1024 && optin.load(std::memory_order_relaxed) != most) {
    GPTOSS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, most));
    optin.store(most, std::memory_order_relaxed);
  }
  std::atomic<int>& slot = launcher_slot(kernel, smem);
  int fit = slot.load(std::memory_order_relaxed);
  if (!fit) {
    GPTOSS_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&fit, kernel, warps * WARP_SIZE, smem));
    fit = std::max(1, fit);
    slot.store(fit, std::memory_order_relaxed);
  }
  const int resident = gemv_ctas_per_sm(knobs(), fit) * current_caps().sm_count;
  const int blocks = std::min(ceil_div(ceil_div(p.rows, kR), warps), resident);
  launch_k(kernel, blocks, warps * WARP_SIZE, smem, stream, p);
  GPTOSS_CUDA_LAUNCH("gemv_xs_kernel");
}

template <bool Q8, int NT>
void gemv_xs_dispatch(const GemvParts& p, cudaStream_t stream) {
  const int K = p.part[0].K;
  const int lane_units = ceil_div(K / (Q8 ? 32 : 8), WARP_SIZE);
  // Q8_0: 4 blocks a lane (K <= 4096) or 1 (K <= 1024); two rows a warp at 2 and 4 tokens (152 and 232
  // registers at K 2880: one CTA a SM, 8 warps x 2 rows x 3 KB in flight; at 8 tokens two rows would
  // spill, so one). bf16: 16 chunks a lane (K <= 4096), 12 (K <= 3072: gpt-oss's 2880) or 4 (K <= 1024),
  // a row a warp.
  if constexpr (Q8) {
    constexpr int kR = NT == 2 || NT == 4 ? 2 : 1;
    lane_units <= 1 ? gemv_xs_launch<Q8, NT, 1, kR>(p, stream) : gemv_xs_launch<Q8, NT, 4, kR>(p, stream);
  } else {
    lane_units <= 4    ? gemv_xs_launch<Q8, NT, 4, 1>(p, stream)
    : lane_units <= 12 ? gemv_xs_launch<Q8, NT, 12, 1>(p, stream)
                       : gemv_xs_launch<Q8, NT, 16, 1>(p, stream);
  }
}
#endif  // !GPTOSS_HIP

// Plain f32 reference-style kernel for shapes the fast paths do not take (K not a multiple of 8).
__global__ void linear_naive_kernel(LinearArgs a) {
  int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (idx >= int64_t(a.n) * a.N) return;
  int t = int(idx / a.N), o = int(idx % a.N);
  const float* x = a.x + int64_t(t) * a.K;
  float s = 0.f;
  if (a.w_scales) {
    const uint8_t* blocks = static_cast<const uint8_t*>(a.w) + int64_t(o) * (a.K / 2);
    const uint8_t* sc = a.w_scales + int64_t(o) * (a.K / 32);
    for (int k = 0; k < a.K; ++k) {
      uint32_t byte = blocks[k / 2];
      uint32_t code = (k & 1) ? byte >> 4 : byte & 15u;
      s = fmaf(bf16_bits_to_f32(uint16_t(e2m1_bf16_bits(code))) * e8m0_to_f32(sc[k / 32]), x[k], s);
    }
  } else {
    const uint16_t* w = static_cast<const uint16_t*>(a.w) + int64_t(o) * a.K;
    for (int k = 0; k < a.K; ++k) s = fmaf(bf16_bits_to_f32(w[k]), x[k], s);
  }
  a.out[idx] = s + bias_at(a.bias, a.bias_kind, o);
}

template <int NT, bool MX>
void gemv_launch(const GemvParts& p, cudaStream_t stream) {
  const int warps = kGemvWarps;
  int blocks = ceil_div(p.rows, warps);
  const int cap = current_caps().sm_count * 16;  // grid-stride beyond a few waves (16 blocks an SM / CU)
  if (blocks > cap) blocks = cap;
  gemv_kernel<NT, MX><<<blocks, warps * WARP_SIZE, 0, stream>>>(p);
  GPTOSS_CUDA_LAUNCH("gemv_kernel");
}

}  // namespace

// The parts' tokens [t0, t0 + kGemvMaxTokens) as one GemvParts (the GEMV kernels take at most that
// many tokens a launch).
static GemvParts gemv_parts_chunk(const LinearArgs* parts, int count, int t0) {
  GemvParts p;
  p.count = count;
  const LinearArgs& a = parts[0];
  for (int i = 0; i < count; ++i) {
    LinearArgs s = parts[i];
    s.n = a.n - t0 < kGemvMaxTokens ? a.n - t0 : kGemvMaxTokens;
    s.x = a.x + int64_t(t0) * a.K;
    s.out = parts[i].out + int64_t(t0) * parts[i].N;
    p.part[i] = s;
    p.rows += s.N;
  }
  return p;
}

#if !defined(GPTOSS_HIP)
// One launch of at most kGemvMaxTokens tokens on gemv_xs_kernel (choose_gemv answered Xs).
template <bool Q8>
static void gemv_xs_tokens(const GemvParts& p, cudaStream_t stream) {
  const int n = p.part[0].n;
  if constexpr (Q8) {  // bf16 at one token is Row1's (choose_gemv)
    if (n == 1) return gemv_xs_dispatch<Q8, 1>(p, stream);
  }
  if (n <= 2) gemv_xs_dispatch<Q8, 2>(p, stream);
  else if (n <= 4) gemv_xs_dispatch<Q8, 4>(p, stream);
  else gemv_xs_dispatch<Q8, 8>(p, stream);
}
#endif

bool gemv_xs_q8(const LinearArgs* parts, int count, cudaStream_t stream) {
#if defined(GPTOSS_HIP)
  (void)parts, (void)count, (void)stream;
  return false;
#else
  if (count < 1 || count > kGemvMaxParts) return false;
  const LinearArgs& a = parts[0];
  if (a.n <= 0) return false;
  for (int i = 0; i < count; ++i)  // one x, n and K; Q8_0 scales; rows to write
    if (!parts[i].w_scales || parts[i].x != a.x || parts[i].n != a.n || parts[i].K != a.K || parts[i].N <= 0) return false;
  const GpuKnobs k = knobs();
  for (int t0 = 0; t0 < a.n; t0 += kGemvMaxTokens) {  // every chunk on Xs, or the caller's kernels for all
    const GemvParts p = gemv_parts_chunk(parts, count, t0);
    const bool x_aligned = (reinterpret_cast<uintptr_t>(p.part[0].x) & 15) == 0;
    if (choose_gemv(current_caps(), k, GemvFormat::Q8, p.part[0].n, a.K, x_aligned) != GemvKernel::Xs) return false;
  }
  for (int t0 = 0; t0 < a.n; t0 += kGemvMaxTokens) gemv_xs_tokens<true>(gemv_parts_chunk(parts, count, t0), stream);
  return true;
#endif
}

bool add_rmsnorm_gemv_fusable(const LinearArgs* parts, int count, const float* x, const float* residual,
                              const float* normed, const void* norm_weight, bool norm_weight_bf16) {
  if (count < 1 || count > kGemvMaxParts) return false;
  const LinearArgs& a = parts[0];
  bool ok = a.n == 1 && a.K % 8 == 0 && a.x == normed &&
            row4_ok(x, residual, normed, norm_weight, norm_weight_bf16, a.K);
  for (int i = 0; i < count; ++i)
    ok = ok && parts[i].x == a.x && parts[i].n == 1 && parts[i].K == a.K && parts[i].N > 0 && !parts[i].w_scales;
  return ok;
}

void launch_add_rmsnorm_gemv(const LinearArgs* parts, int count, float* x, const float* residual, const void* norm_weight,
                             bool norm_weight_bf16, float eps, float* normed, int* counters, cudaStream_t stream) {
  const GemvParts p = gemv_parts_chunk(parts, count, 0);  // one token
  const GemvNorm nrm{x, residual, norm_weight, norm_weight_bf16, eps, normed, counters + kCountersNormGemv};
  // kPer float4s of the row a thread cover K <= 1024 kPer, so 4 kPer chunks a lane cover the row too
  with_row4_per(parts[0].K, [&](auto per) {
    constexpr int kPer = decltype(per)::value;
    gemv1_launch<4 * kPer, kPer>(p, stream, nrm);
  });
}

void launch_linear_gemv_parts(const LinearArgs* parts, int count, cudaStream_t stream) {
  if (count < 1 || count > kGemvMaxParts) throw range_error("gemv: 1 to 3 weight parts, got " + std::to_string(count));
  const LinearArgs& a = parts[0];
  const bool mx = a.w_scales != nullptr;
#if !defined(GPTOSS_HIP)
  const GpuKnobs k = knobs();
#endif
  for (int t0 = 0; t0 < a.n; t0 += kGemvMaxTokens) {
    const GemvParts p = gemv_parts_chunk(parts, count, t0);
    const int n = p.part[0].n;
    const int lane_chunks = ceil_div(a.K / 8, WARP_SIZE);
    const bool x_aligned = (reinterpret_cast<uintptr_t>(p.part[0].x) & 15) == 0;
#if !defined(GPTOSS_HIP)
    if (choose_gemv(current_caps(), k, mx ? GemvFormat::MXFP4 : GemvFormat::BF16, n, a.K, x_aligned) == GemvKernel::Xs) {
      gemv_xs_tokens<false>(p, stream);
      continue;
    }
#endif
    if (n == 1 && !mx && x_aligned && lane_chunks <= 8) gemv1_launch<8>(p, stream);
    else if (n == 1 && !mx && x_aligned && lane_chunks <= 12) gemv1_launch<12>(p, stream);
    else if (n == 1 && !mx && x_aligned && lane_chunks <= 16) gemv1_launch<16>(p, stream);
    else if (n == 1) mx ? gemv_launch<1, true>(p, stream) : gemv_launch<1, false>(p, stream);
    else if (n <= 2) mx ? gemv_launch<2, true>(p, stream) : gemv_launch<2, false>(p, stream);
    else if (n <= 4) mx ? gemv_launch<4, true>(p, stream) : gemv_launch<4, false>(p, stream);
    else mx ? gemv_launch<8, true>(p, stream) : gemv_launch<8, false>(p, stream);
  }
}

void launch_linear_gemv(const LinearArgs& a, cudaStream_t stream) { launch_linear_gemv_parts(&a, 1, stream); }

size_t linear_gemm_workspace_bytes(const LinearArgs& a) { return 4 * size_t(a.n) * a.K; }

bool linear_gemm_parts_ok(const LinearArgs* parts, int count) {
  if (count < 1 || count > kGemmMaxParts) return false;
  for (int i = 0; i < count; ++i) {
    const LinearArgs& a = parts[i];
    if (choose_linear(current_caps(), a.n, a.K, a.w_scales != nullptr) != LinearPath::Gemm || a.N <= 0) return false;
    if (i > 0 && (a.w_scales || parts[0].w_scales || a.x != parts[0].x || a.n != parts[0].n || a.K != parts[0].K ||
                  a.bias_kind != parts[0].bias_kind))
      return false;
  }
  return true;
}

LinearHalves linear_gemm_halves(const LinearArgs& a, void* workspace) {
  uint16_t* hi = static_cast<uint16_t*>(workspace);
  return {hi, hi + int64_t(a.n) * a.K};
}

void launch_linear_gemm_parts(const LinearArgs* parts, int count, void* workspace, cudaStream_t stream) {
  const LinearHalves h = linear_gemm_halves(parts[0], workspace);
  launch_split_bf16(parts[0].x, int64_t(parts[0].n) * parts[0].K, h.hi, h.lo, stream);
  launch_linear_gemm_parts_halves(parts, count, h, stream);
}

void launch_linear_gemm_parts_halves(const LinearArgs* parts, int count, const LinearHalves& h, cudaStream_t stream) {
  const LinearArgs& a = parts[0];
  GemmProblem p;
  p.a_hi = h.hi;
  p.a_lo = h.lo;
  p.w = a.w;
  p.w_scales = a.w_scales;
  p.bias = a.bias;
  p.bias_kind = a.bias_kind;
  p.N = a.N;
  p.K = a.K;
  p.M = a.n;
  p.out = a.out;
  p.ldo = a.N;
  p.num_parts = count;
  for (int i = 1; i < count; ++i) p.extra[i - 1] = {parts[i].w, parts[i].bias, parts[i].out, parts[i].N, parts[i].N};
  const GpuCaps& caps = current_caps();
  const GemmTileKind kind = gemm_tile_kind(caps, a.n);  // a dense problem: wgmma on sm_90a past the GEMV's rows (policy.h)
  const int bm = gemm_tile_rows(caps, kind, a.n, a.w_scales != nullptr, a.K);
  const int tiles = ceil_div(a.n, bm);
  if (a.w_scales) launch_gemm_tile<WeightFormat::MXFP4, Epilogue::Store>(kind, p, bm, tiles, stream);
  else launch_gemm_tile<WeightFormat::BF16, Epilogue::Store>(kind, p, bm, tiles, stream);
}

void launch_linear_gemm(const LinearArgs& a, void* workspace, cudaStream_t stream) {
  launch_linear_gemm_parts(&a, 1, workspace, stream);
}

void launch_linear_naive(const LinearArgs& a, cudaStream_t stream) {
  int64_t total = int64_t(a.n) * a.N;
  if (total == 0) return;
  linear_naive_kernel<<<unsigned(ceil_div(total, 256)), 256, 0, stream>>>(a);
  GPTOSS_CUDA_LAUNCH("linear_naive_kernel");
}

}  // namespace gptoss::cuda
