// The GEMM tile of gemm_tile.cuh on AMD matrix cores (CDNA2/3: gfx90a, gfx942): GemmTileKind::Mfma of
// launch_gemm_tile (policy.h's gemm_tile_kind picks it where GpuCaps says MFMA was compiled), behind
// the same GemmProblem (linear() prefill and the grouped MoE GEMMs). The CUDA kernel's mma.sync, ldmatrix and
// cp.async have no AMD form; this kernel keeps its contract (A as bf16 hi + lo halves gathered by
// a_rows, W bf16 or packed MXFP4 decoded in the tile, groups by tile_start, q/k/v parts, Store and
// SwiGLU epilogues) and replaces the core:
//  - 256 threads = 4 wavefronts of 64; wave w owns columns 32 w .. 32 w + 31 of the 128 and all BM
//    rows: MT = BM / 32 accumulators of v_mfma_f32_32x32x8bf16_1k (16 f32 a lane, in AccVGPRs).
//  - K step of 32: the block stages A hi/lo [BM][32] and W [128][32] bf16 in LDS (MXFP4: each thread
//    decodes half a row, 16 values, E2M1 x 2^(s-127) is exact in bf16), one barrier, then 4 k-steps
//    of 8: per lane one 8-byte B read and MT 8-byte A reads a half (layouts: native/hip/mfma.h).
//  - single-buffered (two barriers a step): a first, checkable version; no AMD GPU has run it yet.
#include "cuda/gemm_tile.cuh"
#include "mfma.h"

namespace gptoss::cuda {

namespace {

using mfma::GemmTileMap;
using mfma::M32x32x8;
using mfma::kTileRow;
using mfma::tile_offset;

typedef short bf16x4_t __attribute__((ext_vector_type(4)));
typedef float f32x16_t __attribute__((ext_vector_type(16)));

constexpr int kWave = 64;
static_assert(kGemmThreads == 4 * kWave && kGemmBN == 4 * M32x32x8::kN, "4 waves, 32 columns each");
static_assert(kGemmBK == mfma::kTileK && kGemmBK % M32x32x8::kK == 0, "BK is whole MFMA k-steps");
static_assert(mfma::kTileRow == kGemmMfmaRowElems, "shapes.h's LDS size (gemm_tile_rows) describes this tile");

template <WeightFormat WF, Epilogue EPI, int MT>
__global__ void __launch_bounds__(kGemmThreads) gemm_tile_mfma_kernel(GemmProblem p) {
#if defined(GPTOSS_HAVE_MFMA)
  constexpr int BM = 32 * MT, BN = kGemmBN, BK = kGemmBK;
  constexpr bool kMx = WF == WeightFormat::MXFP4;
  __shared__ __attribute__((aligned(16))) uint16_t a_s[2][BM * kTileRow];  // A hi, A lo
  __shared__ __attribute__((aligned(16))) uint16_t w_s[BN * kTileRow];
  __shared__ int rows_src[BM];
  static_assert(sizeof(a_s) + sizeof(w_s) + sizeof(rows_src) == gemm_mfma_smem_bytes(BM), "shapes.h");

  const int tid = threadIdx.x;
  int g = 0, row0 = 0, row_end = 0;
  if (!gemm_tile_block_rows(p, int(blockIdx.y), BM, g, row0, row_end)) return;
  GemmColumns cols = gemm_tile_block_columns(p, int(blockIdx.x));
  const int n0 = cols.n0, N = cols.N, ldo = cols.ldo;
  for (int i = tid; i < BM; i += kGemmThreads) {
    const int r = row0 + i;
    rows_src[i] = r < row_end ? (p.a_rows ? p.a_rows[r] : r) : -1;
  }
  __syncthreads();

  const int K = p.K, KB = K / BK, nk = (K + BK - 1) / BK;
  const uint8_t* wbase = static_cast<const uint8_t*>(cols.w) + g * p.w_group_bytes;
  const uint8_t* sbase = kMx ? p.w_scales + g * p.scale_group_bytes : nullptr;
  const int wave = tid / kWave, lane = tid % kWave;

  f32x16_t acc[MT];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int i = 0; i < 16; ++i) acc[mt][i] = 0.f;

  for (int kt = 0; kt < nk; ++kt) {
    const int k0 = kt * BK;
    // A halves: BM rows x 4 chunks of 8 bf16 each (K % 8 == 0: a chunk is all in or all out).
    for (int c = tid; c < 2 * BM * 4; c += kGemmThreads) {
      const int part = c / (BM * 4), rem = c % (BM * 4), row = rem >> 2, ch = rem & 3, k = k0 + ch * 8;
      const int src = rows_src[row];
      uint4 v = make_uint4(0, 0, 0, 0);
      if (src >= 0 && k < K) v = *reinterpret_cast<const uint4*>((part ? p.a_lo : p.a_hi) + int64_t(src) * K + k);
      *reinterpret_cast<uint4*>(&a_s[part][tile_offset(row, ch * 8)]) = v;
    }
    if (!kMx) {
      for (int c = tid; c < BN * 4; c += kGemmThreads) {
        const int row = c >> 2, ch = c & 3, k = k0 + ch * 8;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (n0 + row < N && k < K) v = *reinterpret_cast<const uint4*>(wbase + (int64_t(n0 + row) * K + k) * 2);
        *reinterpret_cast<uint4*>(&w_s[tile_offset(row, ch * 8)]) = v;
      }
    } else {
      // Thread: row tid / 2, values 16 (tid & 1) .. + 15 of the 32 in MX block kt. Low nibble first.
      const int row = tid >> 1, half = tid & 1, n = n0 + row;
      uint2 w = make_uint2(0, 0);
      float scale = 1.f;
      if (n < N) {
        w = *reinterpret_cast<const uint2*>(wbase + (int64_t(n) * KB + kt) * 16 + half * 8);
        scale = e8m0_to_f32(sbase[int64_t(n) * KB + kt]);
      }
      uint32_t o[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const uint32_t byte = ((i < 4 ? w.x : w.y) >> (8 * (i & 3))) & 0xffu;
        const float v0 = bf16_bits_to_f32(uint16_t(e2m1_bf16_bits(byte & 15u))) * scale;
        const float v1 = bf16_bits_to_f32(uint16_t(e2m1_bf16_bits(byte >> 4))) * scale;
        o[i] = (__float_as_uint(v0) >> 16) | (__float_as_uint(v1) & 0xffff0000u);  // exact: E2M1 x 2^e
      }
      uint16_t* dst = &w_s[tile_offset(row, half * 16)];
      *reinterpret_cast<uint4*>(dst) = make_uint4(o[0], o[1], o[2], o[3]);
      *reinterpret_cast<uint4*>(dst + 8) = make_uint4(o[4], o[5], o[6], o[7]);
    }
    __syncthreads();
#pragma unroll
    for (int ks = 0; ks < BK / M32x32x8::kK; ++ks) {
      const int kk = ks * M32x32x8::kK;
      const bf16x4_t b = *reinterpret_cast<const bf16x4_t*>(&w_s[GemmTileMap::b_offset(wave, lane, kk)]);
#pragma unroll
      for (int part = 0; part < 2; ++part)
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          const bf16x4_t a = *reinterpret_cast<const bf16x4_t*>(&a_s[part][GemmTileMap::a_offset(mt, lane, kk)]);
          acc[mt] = __builtin_amdgcn_mfma_f32_32x32x8bf16_1k(a, b, acc[mt], 0, 0, 0);
        }
    }
    __syncthreads();
  }

  // ---- epilogue: item i of lane is D[d_row(lane, i)][d_col(lane)] ----
  const int64_t bias0 = g * p.bias_group_elems;
  const int c = n0 + GemmTileMap::d_col(wave, lane);
  const float b = c < N ? bias_at(cols.bias, p.bias_kind, bias0 + c) : 0.f;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const int r = row0 + GemmTileMap::d_row(mt, lane, i);
      const float v = acc[mt][i] + b;
      if (EPI == Epilogue::SwiGLU) {
        // gate = even column, up = the odd one after it (interleaved rows of gate_up): lane c + 1.
        const float up = __shfl_xor(v, 1, kWave);
        if ((lane & 1) == 0 && r < row_end && c < N) {
          uint16_t h, l;
          split_bf16(swiglu(v, up, p.swiglu_limit, p.swiglu_alpha), h, l);
          const int64_t o = int64_t(r) * ldo + c / 2;
          static_cast<uint16_t*>(cols.out)[o] = h;
          p.out_lo[o] = l;
        }
      } else if (r < row_end && c < N) {
        static_cast<float*>(cols.out)[int64_t(r) * ldo + c] = v;
      }
    }
#else
  GPTOSS_NO_DEVICE_CODE("MFMA bf16 (gfx90a, gfx942)");
#endif
}

template <WeightFormat WF, Epilogue EPI, int MT>
void launch_mt(const GemmProblem& p, int max_tiles, cudaStream_t stream) {
  int col_tiles = ceil_div(p.N, kGemmBN);
  for (int i = 1; i < p.num_parts; ++i) col_tiles += ceil_div(p.extra[i - 1].N, kGemmBN);
  gemm_tile_mfma_kernel<WF, EPI, MT><<<dim3(col_tiles, max_tiles), kGemmThreads, 0, stream>>>(p);
  GPTOSS_CUDA_LAUNCH("gemm_tile_mfma_kernel");
}

}  // namespace

template <WeightFormat WF, Epilogue EPI>
void launch_gemm_tile_mfma(const GemmProblem& p, int bm, int max_tiles, cudaStream_t stream) {
  if (bm == 128) launch_mt<WF, EPI, 4>(p, max_tiles, stream);
  else if (bm == 64) launch_mt<WF, EPI, 2>(p, max_tiles, stream);
  else launch_mt<WF, EPI, 1>(p, max_tiles, stream);
}

template void launch_gemm_tile_mfma<WeightFormat::BF16, Epilogue::Store>(const GemmProblem&, int, int, cudaStream_t);
template void launch_gemm_tile_mfma<WeightFormat::MXFP4, Epilogue::Store>(const GemmProblem&, int, int, cudaStream_t);
template void launch_gemm_tile_mfma<WeightFormat::MXFP4, Epilogue::SwiGLU>(const GemmProblem&, int, int, cudaStream_t);
template void launch_gemm_tile_mfma<WeightFormat::BF16, Epilogue::SwiGLU>(const GemmProblem&, int, int, cudaStream_t);

}  // namespace gptoss::cuda
