// The tensor-core GEMM tile shared by linear() (one group) and the MegaBlocks-style grouped MoE GEMMs
// (one group per expert, variable row counts, ONE launch). out[r, n] = sum_k A[src(r), k] * W[n, k].
//  - A: the f32 activation split once into bf16 hi + lo (x = hi + lo to ~2^-17 relative; split_bf16
//    or the SwiGLU epilogue writes the halves), rows gathered through `a_rows` (the MoE permutation)
//    so no permuted copy of the activations is ever written. Both halves are multiplied: the weights
//    are exact in bf16 (bf16 checkpoint values, E2M1 x power of two), so the product is f32-accurate
//    at twice the tensor-core work. Plain bf16 activations moved the tiny-a logits by 4e-2 relative
//    (gate 1e-2; bench/RESULTS.md).
//  - W: bf16 [N, K] (torch Linear layout) or MXFP4 (blocks [N, K/32, 16] + E8M0 scales [N, K/32]).
//    MXFP4 stays packed through the copy (a quarter of the bf16 bytes); BK = 32 is one MX block a
//    row, decoded once per block into a bf16 tile the warps share.
//  - mma.sync m16n8k16 bf16 -> f32 (sm_80+; the portable path, wgmma would be sm_90a only), fragments
//    by ldmatrix from XOR-swizzled tiles, a 4-stage cp.async ring (no register staging), two blocks an SM.
// Tile BM x 128 x 32 with BM = 32 * MT (MT = 1, 2, 4: 16-row MMA tiles a warp), 8 warps as 2 (M) x 4 (N).
#pragma once
#include "common.cuh"

namespace gptoss::cuda {

enum class WeightFormat { BF16, MXFP4 };
// Store: f32 out [M, ldo] + bias. SwiGLU: clamped SwiGLU of the interleaved (gate, up) columns + bias,
// written split (bf16 hi at out, lo at out_lo, [M, ldo = N/2]) as the next GEMM's A.
enum class Epilogue { Store, SwiGLU };

// Further weights multiplied with the same A in the same launch (linear only, bf16, the bias kind
// of part 0): q, k and v of one layer. Their column tiles follow part 0's along grid.x.
constexpr int kGemmMaxParts = 3;
struct GemmPart {
  const void* w = nullptr;
  const void* bias = nullptr;
  float* out = nullptr;
  int N = 0, ldo = 0;
};

struct GemmProblem {
  const uint16_t* a_hi = nullptr;   // bf16 [*, K] high half of A
  const uint16_t* a_lo = nullptr;   // bf16 [*, K] low half
  const int32_t* a_rows = nullptr;  // slot -> source row of A; null: identity
  const void* w = nullptr;          // group g at w + g * w_group_bytes
  const uint8_t* w_scales = nullptr;
  int64_t w_group_bytes = 0, scale_group_bytes = 0;
  bool w_decode_layout = false;     // MXFP4 in the decode layout (mxfp4_layout.h; N % 16 == 0)
  const void* bias = nullptr;       // group g at bias + g * bias_group_elems
  int bias_kind = kBiasNone;
  int64_t bias_group_elems = 0;
  int N = 0, K = 0;                 // K % 8 == 0 (bf16 W) or K % 32 == 0 (MXFP4)
  int M = 0;                        // rows when group_start == null (one group)
  const int32_t* group_start = nullptr;  // [G+1] slot offsets (device)
  const int32_t* tile_start = nullptr;   // [G+1] prefix of ceil(rows_g / bm) (device)
  int num_groups = 1;
  void* out = nullptr;
  uint16_t* out_lo = nullptr;       // SwiGLU only
  int ldo = 0;
  float swiglu_limit = 7.f, swiglu_alpha = 1.702f;
  int num_parts = 1;                // part 0 is w, bias, N, out, ldo above
  GemmPart extra[kGemmMaxParts - 1];
};

// ---- shared by the tile kernels (gemm_tile.cu's mma.sync kernel, native/hip's MFMA kernel) ----
// Group g and rows [row0, row_end) of M tile `tile` (grid.y) for tiles of bm rows; false past the last
// tile (grouped problems read the true count, tile_start[num_groups], on the device).
__device__ __forceinline__ bool gemm_tile_block_rows(const GemmProblem& p, int tile, int bm, int& g, int& row0,
                                                     int& row_end) {
  g = 0;
  if (p.group_start) {
    if (tile >= p.tile_start[p.num_groups]) return false;
    int lo = 0, hi = p.num_groups - 1;  // last g with tile_start[g] <= tile
    while (lo < hi) {
      const int mid = (lo + hi + 1) >> 1;
      if (p.tile_start[mid] <= tile) lo = mid; else hi = mid - 1;
    }
    g = lo;
    row0 = p.group_start[g] + (tile - p.tile_start[g]) * bm;
    row_end = p.group_start[g + 1];
    return true;
  }
  row0 = tile * bm;
  row_end = p.M;
  return row0 < row_end;
}
// The column part (q, k, v) of column tile `bx` (grid.x) and its first column. Fields are read by
// name: a pointer into the parameters would put them in local memory.
struct GemmColumns {
  int n0, N, ldo;
  const void* w;
  const void* bias;
  void* out;
};
__device__ __forceinline__ GemmColumns gemm_tile_block_columns(const GemmProblem& p, int bx) {
  GemmColumns c{0, p.N, p.ldo, p.w, p.bias, p.out};
  if (p.num_parts > 1) {
    const int t0 = (p.N + kGemmBN - 1) / kGemmBN, t1 = (p.extra[0].N + kGemmBN - 1) / kGemmBN;
    if (bx >= t0 + t1) {
      bx -= t0 + t1;
      c = GemmColumns{0, p.extra[1].N, p.extra[1].ldo, p.extra[1].w, p.extra[1].bias, p.extra[1].out};
    } else if (bx >= t0) {
      bx -= t0;
      c = GemmColumns{0, p.extra[0].N, p.extra[0].ldo, p.extra[0].w, p.extra[0].bias, p.extra[0].out};
    }
  }
  c.n0 = bx * kGemmBN;
  return c;
}
// An MXFP4 block's scales, rows n0 .. n0 + kGemmBN - 1 of group g ([kGemmBN][KB], contiguous in memory), into shared
// memory by threads `first`, `first + stride`, ...; rows past N read as 2^0 (their weights are zero-filled). Plain
// stores: the caller's next barrier publishes them. (The mma.sync tile, gemm_tile.cu, and both wgmma tiles.)
__device__ __forceinline__ void gemm_load_block_scales(const GemmProblem& p, int g, int n0, int N, int KB, uint8_t* scales,
                                                       int first, int stride) {
  const uint8_t* src = p.w_scales + g * p.scale_group_bytes + int64_t(n0) * KB;
  const int cnt = min(kGemmBN, N - n0) * KB;
  if ((reinterpret_cast<uintptr_t>(src) & 3) == 0 && (cnt & 3) == 0) {
    for (int i = first; i < kGemmBN * KB / 4; i += stride)
      reinterpret_cast<uint32_t*>(scales)[i] = 4 * i < cnt ? __ldg(reinterpret_cast<const uint32_t*>(src) + i) : 0x7F7F7F7Fu;
  } else {
    for (int i = first; i < kGemmBN * KB; i += stride) scales[i] = i < cnt ? __ldg(src + i) : uint8_t(127);
  }
}
// bf16 of v (round to nearest even) as its 16 bits, and the bf16 of what it left over (A's halves).
__device__ __forceinline__ void split_bf16(float v, uint16_t& hi, uint16_t& lo) {
  const uint32_t h = pack_bf16x2(v, 0.f) & 0xffffu;
  hi = uint16_t(h);
  lo = uint16_t(pack_bf16x2(v - bf16_lo(h), 0.f) & 0xffffu);
}
// The same for four values at once (the bits split_bf16 gives each).
__device__ __forceinline__ void split_bf16x4(const float4 v, uint2& hi, uint2& lo) {
  const uint32_t h0 = pack_bf16x2(v.x, v.y), h1 = pack_bf16x2(v.z, v.w);
  hi = make_uint2(h0, h1);
  lo = make_uint2(pack_bf16x2(v.x - bf16_lo(h0), v.y - bf16_hi(h0)), pack_bf16x2(v.z - bf16_lo(h1), v.w - bf16_hi(h1)));
}
// Values 4q .. 4q + 3 of x[0, count) split into hi and lo (16-byte loads where x is aligned): split_bf16_kernel's
// thread q.
__device__ __forceinline__ void split_bf16_quad(const float* x, int64_t count, uint16_t* hi, uint16_t* lo, int64_t q) {
  const int64_t i = 4 * q;
  if (i >= count) return;
  if (i + 4 <= count && (reinterpret_cast<uintptr_t>(x) & 15) == 0 && (reinterpret_cast<uintptr_t>(hi) & 7) == 0 &&
      (reinterpret_cast<uintptr_t>(lo) & 7) == 0) {
    uint2 h, l;
    split_bf16x4(*reinterpret_cast<const float4*>(x + i), h, l);
    *reinterpret_cast<uint2*>(hi + i) = h;
    *reinterpret_cast<uint2*>(lo + i) = l;
  } else {
    for (int64_t j = i; j < i + 4 && j < count; ++j) split_bf16(x[j], hi[j], lo[j]);
  }
}

// kGemmBN, kGemmBK, kGemmThreads, kGemmMaxKBlocks and the tile's shared-memory size: shapes.h; the
// tile rows for a problem: gemm_tile_rows() (policy.h).

// Host launcher. `kind` is gemm_tile_kind()'s choice for the device (policy.h), `bm` gemm_tile_rows()'s
// (and what tile_start was counted with); `max_tiles` bounds the M tiles (grid.y); grouped problems
// read the true count from tile_start on the device (no host sync). Instantiated in gemm_tile.cu for
// the pairs below (STYLE.md: template instances live in their own file).
template <WeightFormat WF, Epilogue EPI>
void launch_gemm_tile(GemmTileKind kind, const GemmProblem& p, int bm, int max_tiles, cudaStream_t stream);

extern template void launch_gemm_tile<WeightFormat::BF16, Epilogue::Store>(GemmTileKind, const GemmProblem&, int, int,
                                                                           cudaStream_t);
extern template void launch_gemm_tile<WeightFormat::MXFP4, Epilogue::Store>(GemmTileKind, const GemmProblem&, int, int,
                                                                            cudaStream_t);
extern template void launch_gemm_tile<WeightFormat::MXFP4, Epilogue::SwiGLU>(GemmTileKind, const GemmProblem&, int, int,
                                                                             cudaStream_t);
extern template void launch_gemm_tile<WeightFormat::BF16, Epilogue::SwiGLU>(GemmTileKind, const GemmProblem&, int, int,
                                                                            cudaStream_t);  // bf16 experts
// The wgmma tile (gemm_wgmma.cu, sm_90a; policy.h gemm_tile_kind picks it per problem), for
// the same four pairs and the same problems; bm 64 or 128 (gemm_tile_rows for GemmTileKind::Wgmma).
template <WeightFormat WF, Epilogue EPI>
void launch_gemm_wgmma(const GemmProblem& p, int bm, int max_tiles, cudaStream_t stream);
#if defined(GPTOSS_HIP)
// The MFMA tile (native/hip/gemm_tile_mfma.hip), for the same four pairs: the HIP build's GemmTileKind::Mfma.
template <WeightFormat WF, Epilogue EPI>
void launch_gemm_tile_mfma(const GemmProblem& p, int bm, int max_tiles, cudaStream_t stream);
#endif

// x (f32, count values, count % 4 == 0, 16-byte aligned) -> bf16 hi = rn(x), lo = rn(x - hi).
void launch_split_bf16(const float* x, int64_t count, uint16_t* hi, uint16_t* lo, cudaStream_t stream);

}  // namespace gptoss::cuda
