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
  // No more blocks than fit at once (grid-stride over rows): x is staged once per block.
  static int resident = 0;  // per instantiation: blocks a SM x SMs
  if (!resident) {
    int per_sm = 0;
    GPTOSS_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, warps * WARP_SIZE, smem));
    resident = std::max(1, per_sm) * current_caps().sm_count;
  }
  int blocks = ceil_div(p.rows, warps);
  if (blocks > resident) blocks = resident;
  launch_k(kernel, blocks, warps * WARP_SIZE, smem, stream, p, nrm);
  GPTOSS_CUDA_LAUNCH("gemv1_bf16_kernel");
}

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
  for (int t0 = 0; t0 < a.n; t0 += kGemvMaxTokens) {
    const GemvParts p = gemv_parts_chunk(parts, count, t0);
    const int n = p.part[0].n;
    const int lane_chunks = ceil_div(a.K / 8, WARP_SIZE);
    const bool x_aligned = (reinterpret_cast<uintptr_t>(p.part[0].x) & 15) == 0;
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

void launch_linear_gemm_parts(const LinearArgs* parts, int count, void* workspace, cudaStream_t stream) {
  const LinearArgs& a = parts[0];
  uint16_t* hi = static_cast<uint16_t*>(workspace);
  uint16_t* lo = hi + int64_t(a.n) * a.K;
  launch_split_bf16(a.x, int64_t(a.n) * a.K, hi, lo, stream);
  GemmProblem p;
  p.a_hi = hi;
  p.a_lo = lo;
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
  const GemmTileKind kind = gemm_tile_kind(caps);
  const int bm = gemm_tile_rows(caps, a.n, a.w_scales != nullptr, a.K);
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
