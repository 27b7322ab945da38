// The GEMM tile kernel, its launcher and the activation split; the only translation unit that
// compiles them. Layout and reasons: gemm_tile.cuh.
//
// One block: BM rows (tokens) x 128 columns (output features) of one group. Shared memory:
//   4 x stage { A hi [BM][32], A lo [BM][32] bf16; W: bf16 [128][32] or packed MXFP4 [128][16 bytes] }
//   MXFP4 only: the decoded W tile [2][128][32] bf16 and the block's scales [128][K/32]
//   (bf16 rows XOR-swizzled by 16-byte chunk, see swz). At most ~100 KB: two blocks an SM.
// K step kt (BK = 32): wait until stage kt (bf16) or kt + 1 (MXFP4) has landed, one __syncthreads,
// issue stage kt + S - 1 into the slot step kt - 1 used, MXFP4: decode stage kt + 1's W into the
// other bf16 buffer (each thread 16 values: prmt byte tables, then one bf16x2 multiply by the scale),
// then 2 x (hi, lo) x MT x 4 MMAs a warp from ldmatrix fragments. One barrier a step: every buffer
// written in step kt was last read before that step's barrier.
#include "gemm_tile.cuh"
#include "mxfp4_layout.h"

#include <algorithm>
#include <cstdlib>

namespace gptoss::cuda {

namespace {

// Shared tiles are rows of BK = 32 bf16 (64 bytes, four 16-byte chunks) without padding; chunk c of
// row r sits at chunk c ^ ((r >> 1) & 3), so the 8 rows an ldmatrix phase reads (same logical chunk)
// land in 8 distinct 16-byte bank groups, and a 16-row MMA tile keeps one pattern (per-lane offsets
// are fixed). No padding is what lets two blocks share an SM (bench/RESULTS.md: one block of 8
// warps left the schedulers with 0.36 eligible warps).
__host__ __device__ constexpr int swz(int row, int chunk) { return row * 64 + ((chunk ^ ((row >> 1) & 3)) << 4); }
constexpr int kRowBytes = kGemmRowBytes;
constexpr int kBdecBytes = kGemmBdecBytes;  // one decoded bf16 W tile
static_assert(kGemmThreads == 2 * kGemmBN, "the MXFP4 decode gives each thread half a row");

// Ring depth (kGemmStages, 4: an MXFP4 step is decoded one step ahead of its MMAs; with two blocks an
// SM the other block covers what the shorter lookahead leaves) and the shared-memory sizes: shapes.h.
constexpr int kStages = kGemmStages;
constexpr int a_half_bytes(int bm) { return gemm_a_half_bytes(bm); }
constexpr int stage_bytes(bool mx, int bm) { return gemm_stage_bytes(mx, bm); }
constexpr int smem_bytes(bool mx, int bm, int kblocks) { return gemm_smem_bytes(mx, bm, kblocks); }

template <WeightFormat WF, Epilogue EPI, int MT>
__global__ void __launch_bounds__(kGemmThreads, 2) gemm_tile_kernel(GemmProblem p) {
#if defined(GPTOSS_HAVE_MMA_SYNC)
  constexpr int BM = 32 * MT, BN = kGemmBN, BK = kGemmBK, S = kStages;
  constexpr bool kMx = WF == WeightFormat::MXFP4;
  constexpr int kAHalf = a_half_bytes(BM), kStage = stage_bytes(kMx, BM);
  extern __shared__ __align__(16) uint8_t smem[];
  __shared__ int rows_src[BM];

  const int tid = threadIdx.x;
  // ---- which group and which BM rows of it this block owns; which column part (q, k, v) ----
  int g = 0, row0 = 0, row_end = 0;
  if (!gemm_tile_block_rows(p, int(blockIdx.y), BM, g, row0, row_end)) return;
  const GemmColumns cols = gemm_tile_block_columns(p, int(blockIdx.x));
  const int n0 = cols.n0, N = cols.N, ldo = cols.ldo;
  const void* wptr = cols.w;
  const void* bias = cols.bias;
  void* out = cols.out;
  for (int i = tid; i < BM; i += kGemmThreads) {
    int r = row0 + i;
    rows_src[i] = r < row_end ? (p.a_rows ? p.a_rows[r] : r) : -1;
  }
  __syncthreads();

  const int K = p.K, KB = K / BK, nk = (K + BK - 1) / BK;
  const uint8_t* wbase = static_cast<const uint8_t*>(wptr) + g * p.w_group_bytes;
  uint8_t* bdec = smem + S * kStage;       // MXFP4: [2][BN rows] bf16
  uint8_t* scales = bdec + 2 * kBdecBytes;  // MXFP4: [BN][KB]

  // ---- stage kt: A halves (gathered rows) and the W tile, all by cp.async; one commit group ----
  // A thread's A chunks are the same rows and 16-byte columns at every step: their sources are
  // resolved once (row gather, bounds) and only advance by k0.
  constexpr int kAChunks = BM * 8 / kGemmThreads;  // 4, 2, 1
  const uint16_t* a_src[kAChunks];
  int a_dst[kAChunks], a_k[kAChunks];
  bool a_ok[kAChunks];
#pragma unroll
  for (int i = 0; i < kAChunks; ++i) {
    const int c = tid + i * kGemmThreads;
    const int part = c / (BM * 4), rem = c % (BM * 4), row = rem >> 2, ch = rem & 3;
    const int src = rows_src[row];
    a_ok[i] = src >= 0;
    a_src[i] = (part ? p.a_lo : p.a_hi) + (src >= 0 ? int64_t(src) * K : 0) + ch * 8;
    a_dst[i] = part * kAHalf + swz(row, ch);
    a_k[i] = ch * 8;
  }
  auto issue = [&](int kt) {
    if (kt < nk) {
      uint8_t* st = smem + (kt % S) * kStage;
      const int k0 = kt * BK;
#pragma unroll
      for (int i = 0; i < kAChunks; ++i) {
        const bool ok = a_ok[i] && k0 + a_k[i] < K;
        cp_async16_zfill(st + a_dst[i], ok ? a_src[i] + k0 : p.a_hi, ok);
      }
      uint8_t* bs = st + 2 * kAHalf;
      if (!kMx) {
#pragma unroll
        for (int c = tid; c < BN * 4; c += kGemmThreads) {
          const int row = c >> 2, ch = c & 3, k = k0 + ch * 8;
          const bool ok = n0 + row < N && k < K;
          cp_async16_zfill(bs + swz(row, ch), wbase + (ok ? (int64_t(n0 + row) * K + k) * 2 : 0), ok);
        }
      } else if (tid < BN) {
        const bool ok = n0 + tid < N;
        cp_async16_zfill(bs + tid * 16, wbase + (ok ? (int64_t(n0 + tid) * KB + kt) * 16 : 0), ok);
      }
    }
    cp_async_commit();
  };

  // ---- MXFP4: stage j's packed W -> decoded bf16 buffer j & 1 (thread: row tid / 2, 16 values) ----
  auto decode = [&](int j) {
    const uint8_t* bs = smem + (j % S) * kStage + 2 * kAHalf;
    const int row = tid >> 1, half = tid & 1;
    const uint2 w = *reinterpret_cast<const uint2*>(bs + row * 16 + half * 8);
    // decode layout (mxfp4_layout.h): the tile's scales are [16-row group][block][16], a word's operands
    // come in natural pairs times 2^-126, brought back by an exact x 2^126
    const uint32_t s = p.w_decode_layout ? scales[(row >> 4) * KB * 16 + j * 16 + (row & 15)] : scales[row * KB + j];
    const uint32_t sc2 = mxlayout::e8m0_bf16x2(s);  // 2^(s-127) in both halves
    uint32_t o[8];
    if (p.w_decode_layout) {
      mxlayout::decode_word(w.x, o);
      mxlayout::decode_word(w.y, o + 4);
#pragma unroll
      for (int i = 0; i < 8; ++i) o[i] = bf16x2_mul(o[i], 0x7E807E80u);  // x 2^126 each
    } else {
      e2m1_word_to_bf16(w.x, o);
      e2m1_word_to_bf16(w.y, o + 4);
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) o[i] = bf16x2_mul(o[i], sc2);
    uint8_t* dst = bdec + (j & 1) * kBdecBytes;
    *reinterpret_cast<uint4*>(dst + swz(row, 2 * half)) = make_uint4(o[0], o[1], o[2], o[3]);
    *reinterpret_cast<uint4*>(dst + swz(row, 2 * half + 1)) = make_uint4(o[4], o[5], o[6], o[7]);
  };

#pragma unroll
  for (int s = 0; s < S - 1; ++s) issue(s);

  if (kMx) {
    gemm_load_block_scales(p, g, n0, N, KB, scales, tid, kGemmThreads);
    cp_async_wait<S - 2>();
    __syncthreads();
    decode(0);
  }

  const int warp = tid >> 5, lane = tid & 31, gq = lane >> 2, tq = lane & 3;
  const int wm = warp >> 2, wn = warp & 3;  // warp tile: rows wm * 16 * MT.., columns wn * 32..
  // ldmatrix lane addresses (bytes) for k16 step ks: A rows wm * 16 * MT + (lane & 15) (+ 16 mt),
  // chunk 2 ks + lane / 16; W rows wn * 32 + 8 (lane / 16) + lane % 8 (+ 16 np), chunk 2 ks + (lane / 8) % 2.
  int a_off[2], b_off[2];
#pragma unroll
  for (int ks = 0; ks < 2; ++ks) {
    a_off[ks] = swz(wm * 16 * MT + (lane & 15), 2 * ks + (lane >> 4));
    b_off[ks] = swz(wn * 32 + ((lane >> 4) << 3) + (lane & 7), 2 * ks + ((lane >> 3) & 1));
  }
  float acc[MT][4][4];
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[i][j][c] = 0.f;

  for (int kt = 0; kt < nk; ++kt) {
    if (kMx) cp_async_wait<S - 3>(); else cp_async_wait<S - 2>();  // step kt + 1 (MXFP4) or kt landed
    __syncthreads();
    issue(kt + S - 1);
    if (kMx && kt + 1 < nk) decode(kt + 1);
    const uint8_t* st = smem + (kt % S) * kStage;
    const uint8_t* bt = kMx ? bdec + (kt & 1) * kBdecBytes : st + 2 * kAHalf;
#pragma unroll
    for (int ks = 0; ks < BK / 16; ++ks) {
      uint32_t bfr[4][2];
#pragma unroll
      for (int np = 0; np < 2; ++np) {
        uint32_t r[4];
        ldsm_x4(r, bt + b_off[ks] + np * 16 * kRowBytes);
        bfr[2 * np][0] = r[0];
        bfr[2 * np][1] = r[1];
        bfr[2 * np + 1][0] = r[2];
        bfr[2 * np + 1][1] = r[3];
      }
#pragma unroll
      for (int part = 0; part < 2; ++part) {
        const uint8_t* at = st + part * kAHalf;
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          uint32_t af[4];
          ldsm_x4(af, at + a_off[ks] + mt * 16 * kRowBytes);
#pragma unroll
          for (int nt = 0; nt < 4; ++nt) mma_bf16_16816(acc[mt][nt], af, bfr[nt]);
        }
      }
    }
  }
  cp_async_wait<0>();  // only empty groups are left; drained before exit anyway

  // ---- epilogue: bias (+ clamped SwiGLU on interleaved gate/up columns, written split) ----
  const int64_t bias0 = g * p.bias_group_elems;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int r = row0 + wm * 16 * MT + mt * 16 + gq + half * 8;
      const bool row_ok = r < row_end;  // the same for the 4 lanes of a quad
      if (EPI == Epilogue::SwiGLU) {
        // gate = even column, up = odd column (transformers GptOssExperts, rows interleaved). Lane tq
        // holds output column wn*16 + 4 nt + tq (of this block's 64) for nt = 0..3; a 4x4 transpose in
        // the quad gives lane tq the 4 consecutive outputs 4 tq .. 4 tq + 3, stored as 8 bytes a half
        // (a quad writes 32 contiguous bytes instead of 2-byte scatters).
        float y[4];
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
          const int col = n0 + wn * 32 + nt * 8 + 2 * tq;
          y[nt] = col < N ? swiglu(acc[mt][nt][half * 2] + bias_at(bias, p.bias_kind, bias0 + col),
                                   acc[mt][nt][half * 2 + 1] + bias_at(bias, p.bias_kind, bias0 + col + 1),
                                   p.swiglu_limit, p.swiglu_alpha)
                          : 0.f;
        }
        float t[4];
#pragma unroll
        for (int s = 0; s < 4; ++s) {  // lane tq sends y[(tq + s) & 3] to lane (tq + s) & 3 of its quad
          const int to = (tq + s) & 3, from = (tq - s) & 3;
          const float send = to == 0 ? y[0] : to == 1 ? y[1] : to == 2 ? y[2] : y[3];
          const float got = __shfl_sync(0xffffffffu, send, (lane & ~3) | from);
          if (from == 0) t[0] = got; else if (from == 1) t[1] = got; else if (from == 2) t[2] = got; else t[3] = got;
        }
        if (!row_ok) continue;
        const int col0 = n0 + wn * 32 + tq * 8;  // gate column of output t[0]
        const int64_t o = int64_t(r) * ldo + col0 / 2;
        uint16_t h[4], l[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) split_bf16(t[j], h[j], l[j]);
        uint16_t* oh = static_cast<uint16_t*>(out);
        if (col0 + 6 < N && (o & 3) == 0) {
          *reinterpret_cast<uint2*>(oh + o) = make_uint2(h[0] | uint32_t(h[1]) << 16, h[2] | uint32_t(h[3]) << 16);
          *reinterpret_cast<uint2*>(p.out_lo + o) = make_uint2(l[0] | uint32_t(l[1]) << 16, l[2] | uint32_t(l[3]) << 16);
        } else {
#pragma unroll
          for (int j = 0; j < 4; ++j)
            if (col0 + 2 * j < N) oh[o + j] = h[j], p.out_lo[o + j] = l[j];
        }
      } else {
        if (!row_ok) continue;
        float* o = static_cast<float*>(out) + int64_t(r) * ldo;
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
          const int col = n0 + wn * 32 + nt * 8 + 2 * tq;
          const float v0 = acc[mt][nt][half * 2] + (col < N ? bias_at(bias, p.bias_kind, bias0 + col) : 0.f);
          const float v1 = acc[mt][nt][half * 2 + 1] + (col + 1 < N ? bias_at(bias, p.bias_kind, bias0 + col + 1) : 0.f);
          if (col + 1 < N && ((reinterpret_cast<uintptr_t>(o + col) & 7) == 0)) {
            *reinterpret_cast<float2*>(o + col) = make_float2(v0, v1);
          } else {
            if (col < N) o[col] = v0;
            if (col + 1 < N) o[col + 1] = v1;
          }
        }
      }
    }
#else
  GPTOSS_NO_DEVICE_CODE("bf16 mma.sync (sm_80+)");
#endif
}

template <WeightFormat WF, Epilogue EPI, int MT>
void launch_mt(const GemmProblem& p, int max_tiles, cudaStream_t stream) {
  constexpr bool kMx = WF == WeightFormat::MXFP4;
  const int smem = smem_bytes(kMx, 32 * MT, kMx ? p.K / kGemmBK : 0);
  opt_in_smem(gemm_tile_kernel<WF, EPI, MT>, smem);
  int col_tiles = ceil_div(p.N, kGemmBN);
  for (int i = 1; i < p.num_parts; ++i) col_tiles += ceil_div(p.extra[i - 1].N, kGemmBN);
  dim3 grid(col_tiles, max_tiles);
  gemm_tile_kernel<WF, EPI, MT><<<grid, kGemmThreads, smem, stream>>>(p);
  GPTOSS_CUDA_LAUNCH("gemm_tile_kernel");
}

// hi = rn(x), lo = rn(x - hi), 4 values a thread (16-byte loads when x is aligned).
__global__ void split_bf16_kernel(const float* x, int64_t count, uint16_t* hi, uint16_t* lo) {
  pdl_wait();  // x is the previous kernel's output (launch.cuh)
  pdl_launch_dependents();
  split_bf16_quad(x, count, hi, lo, blockIdx.x * int64_t(blockDim.x) + threadIdx.x);
}


}  // namespace

template <WeightFormat WF, Epilogue EPI>
void launch_gemm_tile(GemmTileKind kind, const GemmProblem& p, int bm, int max_tiles, cudaStream_t stream) {
  if (max_tiles <= 0 || p.N <= 0) return;
  switch (kind) {
    case GemmTileKind::MmaSync:
      if (bm == 128) launch_mt<WF, EPI, 4>(p, max_tiles, stream);
      else if (bm == 64) launch_mt<WF, EPI, 2>(p, max_tiles, stream);
      else launch_mt<WF, EPI, 1>(p, max_tiles, stream);
      return;
    case GemmTileKind::Wgmma:
      return launch_gemm_wgmma<WF, EPI>(p, bm, max_tiles, stream);
    case GemmTileKind::Mfma:
#if defined(GPTOSS_HIP)
      return launch_gemm_tile_mfma<WF, EPI>(p, bm, max_tiles, stream);
#else
      throw runtime_error("gemm tile: the MFMA tile is AMD-only (native/hip/gemm_tile_mfma.hip), not in a CUDA build");
#endif
    case GemmTileKind::None: break;
  }
  throw runtime_error("gemm tile: no tensor-core GEMM kernel was compiled for this device (" +
                      caps_summary(current_caps()) + ")");
}

template void launch_gemm_tile<WeightFormat::BF16, Epilogue::Store>(GemmTileKind, const GemmProblem&, int, int,
                                                                    cudaStream_t);
template void launch_gemm_tile<WeightFormat::MXFP4, Epilogue::Store>(GemmTileKind, const GemmProblem&, int, int,
                                                                     cudaStream_t);
template void launch_gemm_tile<WeightFormat::MXFP4, Epilogue::SwiGLU>(GemmTileKind, const GemmProblem&, int, int,
                                                                      cudaStream_t);
template void launch_gemm_tile<WeightFormat::BF16, Epilogue::SwiGLU>(GemmTileKind, const GemmProblem&, int, int,
                                                                     cudaStream_t);

void launch_split_bf16(const float* x, int64_t count, uint16_t* hi, uint16_t* lo, cudaStream_t stream) {
  if (count <= 0) return;
  launch_k(split_bf16_kernel, unsigned(ceil_div((count + 3) / 4, 256)), 256, 0, stream, x, count, hi, lo);
}

}  // namespace gptoss::cuda
