// The GEMM tile kernel and its launcher; the only translation unit that compiles them.
#include "gemm_tile.cuh"

namespace gptoss::cuda {

namespace {

__device__ __forceinline__ float load_bias(const GemmProblem& p, int g, int col) {
  return bias_at(p.bias, p.bias_kind, g * p.bias_group_elems + col);
}

template <WeightFormat WF, typename AT, Epilogue EPI>
__global__ void __launch_bounds__(kGemmThreads) gemm_tile_kernel(GemmProblem p) {
#if defined(GPTOSS_HAVE_MMA_SYNC)
  constexpr int BM = kGemmBM, BN = kGemmBN, BK = kGemmBK, LDS = kGemmLds;
  constexpr bool kAF32 = sizeof(AT) == 4;
  constexpr int kParts = kAF32 ? 2 : 1;  // hi (+ lo) bf16 parts of A
  extern __shared__ __align__(16) uint8_t gemm_smem[];
  uint16_t(*As)[kParts][BM * LDS] = reinterpret_cast<uint16_t(*)[kParts][BM * LDS]>(gemm_smem);  // [2][parts]
  uint16_t(*Bs)[BN * LDS] = reinterpret_cast<uint16_t(*)[BN * LDS]>(gemm_smem + 2 * kParts * BM * LDS * 2);
  __shared__ uint32_t lut[256];
  __shared__ int rows_src[BM];

  const int tid = threadIdx.x;
  // ---- which group and which 128 rows of it this block owns ----
  int tile = blockIdx.y, g = 0, row0, row_end;
  if (p.group_start) {
    if (tile >= p.tile_start[p.num_groups]) return;
    int lo = 0, hi = p.num_groups - 1;  // last g with tile_start[g] <= tile
    while (lo < hi) {
      int mid = (lo + hi + 1) >> 1;
      if (p.tile_start[mid] <= tile) lo = mid; else hi = mid - 1;
    }
    g = lo;
    row0 = p.group_start[g] + (tile - p.tile_start[g]) * BM;
    row_end = p.group_start[g + 1];
  } else {
    row0 = tile * BM;
    row_end = p.M;
    if (row0 >= row_end) return;
  }
  const int n0 = blockIdx.x * BN;
  for (int i = tid; i < BM; i += kGemmThreads) {
    int r = row0 + i;
    rows_src[i] = r < row_end ? (p.a_rows ? p.a_rows[r] : r) : -1;
  }
  if (WF == WeightFormat::MXFP4) fill_e2m1_lut(lut);
  __syncthreads();

  const int K = p.K;
  const uint8_t* wbase = static_cast<const uint8_t*>(p.w) + g * p.w_group_bytes;
  const uint8_t* sbase = p.w_scales ? p.w_scales + g * p.scale_group_bytes : nullptr;

  // ---- staging registers ----
  constexpr int kAChunks = kAF32 ? (BM * BK / 4) / kGemmThreads : (BM * BK / 8) / kGemmThreads;  // 4 or 2
  uint4 ra[kAChunks];
  uint4 rb[2];
  uint32_t rscale = 0;

  auto load_global = [&](int kt) {
    const int k0 = kt * BK;
#pragma unroll
    for (int i = 0; i < kAChunks; ++i) {
      int idx = tid + i * kGemmThreads;
      int row = kAF32 ? idx / 8 : idx / 4;
      int kc = kAF32 ? (idx % 8) * 4 : (idx % 4) * 8;
      int src = rows_src[row];
      if (src >= 0 && k0 + kc < K) {
        const AT* ap = static_cast<const AT*>(p.a) + int64_t(src) * K + k0 + kc;
        ra[i] = __ldg(reinterpret_cast<const uint4*>(ap));
      } else {
        ra[i] = make_uint4(0, 0, 0, 0);
      }
    }
    if (WF == WeightFormat::BF16) {
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        int idx = tid + i * kGemmThreads;
        int row = idx / 4, kc = (idx % 4) * 8;
        if (n0 + row < p.N && k0 + kc < K)
          rb[i] = __ldg(reinterpret_cast<const uint4*>(wbase + (int64_t(n0 + row) * K + k0 + kc) * 2));
        else
          rb[i] = make_uint4(0, 0, 0, 0);
      }
    } else {
      int row = tid / 2, half = tid % 2;
      if (n0 + row < p.N) {
        const int64_t blk = int64_t(n0 + row) * (K / 32) + kt;
        uint2 v = __ldg(reinterpret_cast<const uint2*>(wbase + blk * 16 + half * 8));
        rb[0] = make_uint4(v.x, v.y, 0, 0);
        rscale = sbase[blk];
      } else {
        rb[0] = make_uint4(0, 0, 0, 0);
        rscale = 0;
      }
    }
  };

  auto store_smem = [&](int buf) {
#pragma unroll
    for (int i = 0; i < kAChunks; ++i) {
      int idx = tid + i * kGemmThreads;
      if (kAF32) {
        int row = idx / 8, kc = (idx % 8) * 4;
        const float f[4] = {__uint_as_float(ra[i].x), __uint_as_float(ra[i].y), __uint_as_float(ra[i].z),
                            __uint_as_float(ra[i].w)};
        uint32_t hi[2], lo[2];
#pragma unroll
        for (int q = 0; q < 2; ++q) {
          hi[q] = pack_bf16x2(f[2 * q], f[2 * q + 1]);
          lo[q] = pack_bf16x2(f[2 * q] - bf16_lo(hi[q]), f[2 * q + 1] - bf16_hi(hi[q]));
        }
        *reinterpret_cast<uint2*>(&As[buf][0][row * LDS + kc]) = make_uint2(hi[0], hi[1]);
        *reinterpret_cast<uint2*>(&As[buf][kParts - 1][row * LDS + kc]) = make_uint2(lo[0], lo[1]);
      } else {
        int row = idx / 4, kc = (idx % 4) * 8;
        *reinterpret_cast<uint4*>(&As[buf][0][row * LDS + kc]) = ra[i];
      }
    }
    if (WF == WeightFormat::BF16) {
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        int idx = tid + i * kGemmThreads;
        int row = idx / 4, kc = (idx % 4) * 8;
        *reinterpret_cast<uint4*>(&Bs[buf][row * LDS + kc]) = rb[i];
      }
    } else {
      int row = tid / 2, half = tid % 2;
      const float scale = e8m0_to_f32(rscale);
      uint32_t o[8];
      const uint32_t words[2] = {rb[0].x, rb[0].y};
#pragma unroll
      for (int wi = 0; wi < 2; ++wi)
#pragma unroll
        for (int b = 0; b < 4; ++b) {
          uint32_t pair = lut[(words[wi] >> (8 * b)) & 0xffu];
          o[wi * 4 + b] = pack_bf16x2(bf16_lo(pair) * scale, bf16_hi(pair) * scale);  // exact: power of 2
        }
      uint4* dst = reinterpret_cast<uint4*>(&Bs[buf][row * LDS + half * 16]);
      dst[0] = make_uint4(o[0], o[1], o[2], o[3]);
      dst[1] = make_uint4(o[4], o[5], o[6], o[7]);
    }
  };

  const int warp = tid / 32, lane = tid % 32, gq = lane >> 2, tq = lane & 3;
  const int wm = warp / 4, wn = warp % 4;  // warp tile: rows wm*64.., cols wn*32..
  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[i][j][c] = 0.f;

  const int nk = (K + BK - 1) / BK;
  load_global(0);
  store_smem(0);
  __syncthreads();
  int buf = 0;
  for (int kt = 0; kt < nk; ++kt) {
    if (kt + 1 < nk) load_global(kt + 1);
    const uint16_t* bs = Bs[buf];
#pragma unroll
    for (int ks = 0; ks < BK / 16; ++ks) {
      uint32_t bfr[4][2];
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        const uint16_t* base = bs + (wn * 32 + nt * 8 + gq) * LDS + ks * 16 + 2 * tq;
        bfr[nt][0] = *reinterpret_cast<const uint32_t*>(base);
        bfr[nt][1] = *reinterpret_cast<const uint32_t*>(base + 8);
      }
#pragma unroll
      for (int part = 0; part < kParts; ++part) {
        const uint16_t* as = As[buf][part];
        uint32_t af[4][4];
#pragma unroll
        for (int mt = 0; mt < 4; ++mt) {
          const uint16_t* base = as + (wm * 64 + mt * 16 + gq) * LDS + ks * 16 + 2 * tq;
          af[mt][0] = *reinterpret_cast<const uint32_t*>(base);
          af[mt][1] = *reinterpret_cast<const uint32_t*>(base + 8 * LDS);
          af[mt][2] = *reinterpret_cast<const uint32_t*>(base + 8);
          af[mt][3] = *reinterpret_cast<const uint32_t*>(base + 8 * LDS + 8);
        }
#pragma unroll
        for (int mt = 0; mt < 4; ++mt)
#pragma unroll
          for (int nt = 0; nt < 4; ++nt) mma_bf16_16816(acc[mt][nt], af[mt], bfr[nt]);
      }
    }
    if (kt + 1 < nk) store_smem(buf ^ 1);
    __syncthreads();
    buf ^= 1;
  }

  // ---- epilogue: bias (+ clamped SwiGLU on interleaved gate/up columns) ----
#pragma unroll
  for (int mt = 0; mt < 4; ++mt)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int r = row0 + wm * 64 + mt * 16 + gq + half * 8;
      if (r >= row_end) continue;
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        const int col = n0 + wn * 32 + nt * 8 + 2 * tq;
        float v0 = acc[mt][nt][half * 2], v1 = acc[mt][nt][half * 2 + 1];
        if (EPI == Epilogue::SwiGLU) {
          if (col >= p.N) continue;  // N is even: col < N implies col + 1 < N
          // gate = even column, up = odd column (transformers GptOssExperts, rows interleaved)
          static_cast<float*>(p.out)[int64_t(r) * p.ldo + col / 2] =
              swiglu(v0 + load_bias(p, g, col), v1 + load_bias(p, g, col + 1), p.swiglu_limit, p.swiglu_alpha);
        } else {
          float* o = static_cast<float*>(p.out) + int64_t(r) * p.ldo;
          if (col < p.N) o[col] = v0 + load_bias(p, g, col);
          if (col + 1 < p.N) o[col + 1] = v1 + load_bias(p, g, col + 1);
        }
      }
    }
#endif
}

}  // namespace

template <WeightFormat WF, typename AT, Epilogue EPI>
void launch_gemm_tile(const GemmProblem& p, int max_tiles, gpuStream_t stream) {
  if (max_tiles <= 0 || p.N <= 0) return;
  constexpr int kParts = sizeof(AT) == 4 ? 2 : 1;
  constexpr int smem = (2 * kParts * kGemmBM + 2 * kGemmBN) * kGemmLds * 2;  // 61440 B for f32 A
  static bool attr_set = false;  // one per instantiation (this file only); idempotent, so a benign race
  if (smem > 48 * 1024 && !attr_set) {
    GPTOSS_CUDA_CHECK(gpuFuncSetAttribute(gemm_tile_kernel<WF, AT, EPI>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    attr_set = true;
  }
  dim3 grid(ceil_div(p.N, kGemmBN), max_tiles);
  gemm_tile_kernel<WF, AT, EPI><<<grid, kGemmThreads, smem, stream>>>(p);
  GPTOSS_CUDA_LAUNCH("gemm_tile_kernel");
}

template void launch_gemm_tile<WeightFormat::BF16, float, Epilogue::Store>(const GemmProblem&, int, gpuStream_t);
template void launch_gemm_tile<WeightFormat::MXFP4, float, Epilogue::Store>(const GemmProblem&, int, gpuStream_t);
template void launch_gemm_tile<WeightFormat::MXFP4, float, Epilogue::SwiGLU>(const GemmProblem&, int, gpuStream_t);

}  // namespace gptoss::cuda
