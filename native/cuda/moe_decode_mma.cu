// Decode MoE on the tensor cores: the routed experts' MXFP4 rows as the A operand of mma.sync
// m16n8k16 (bf16 in, f32 accumulate), the token's activation as B. Two launches per step:
//   1. gate_up + bias + SwiGLU -> act [pairs, I]   (grid: 16-row tiles x (token, expert) pairs)
//   2. down + bias, times the routing weight -> part [pairs, H]; the last of a token's k pairs to
//      finish a row tile sums them in expert order -> out [n, H]   (grid: 16-row tiles x pairs)
// Work split (bench/RESULTS.md, GPU section): a CTA owns one 16-row tile (the MMA's M) of one
// expert; its warps split K into slices of at most 32 MX blocks, and each warp issues its whole
// slice (16 rows x <= 512 bytes, cp.async into shared memory) plus its scales and B fragments at
// once, waits once, then runs the MMAs; the warps' partial sums meet in shared memory. The first
// version streamed 90 blocks per warp through a 3-stage ring with 4 warps a CTA: ncu showed 2.4
// (gate_up) and 1.4 (down) active warps per scheduler, 56% / 38% issue-slot use, DRAM 16-28%.
// No table is looked up:
//  - ldmatrix.x2 hands lane (g, t) exactly word t of rows g and g + 8 of an MX block: the A
//    fragment layout, so no shuffles (shared rows padded to an odd count of 16-byte chunks keep
//    ldmatrix conflict-free).
//  - E2M1 -> bf16 by bit placement (kSub, the default): sign -> bit 15, the 3 magnitude bits -> bits
//    8..6. The result is the E2M1 value times 2^-126 exactly (±0.5 lands on a bf16 subnormal), no
//    table. The activation is pre-scaled by 2^64 and the 2^62 left over folds into the E8M0 scale
//    (2^(s-65), exact for scales up to 2^65; larger ones saturate to inf). The alternative
//    (kSub = false, GPTOSS_CUDA_MOE_DECODE=mma-prmt) builds normal bf16 values with prmt byte
//    tables (~2.3 ops a weight) in case a part flushes bf16 subnormals in the MMA.
//  - The f32 activation is split into bf16 hi + lo (x = hi + lo to ~2^-17): B column 0 is hi,
//    column 1 lo, so one MMA gives both products and the row result is c0 + c1 (f32-accurate, as the
//    prefill GEMM tile).
//  - Per MX block and row: c = A_blk x B_blk (two k16 MMAs), acc += scale * (c0 + c1).
// kRelaid (Hopper's default; GPTOSS_CUDA_MOE_DECODE=mma-relaid elsewhere): the same kernels on experts re-laid at upload
// (mxfp4_layout.h): each word's bits permuted so the kSub placement comes out with masks and rotations
// (9 operations a word instead of 15) in natural pairs (2i, 2i + 1; build_frags pairs the activation
// to match), and each 16-row tile's scales grouped
// a block at a time (one 16-byte load a lane and a slice instead of 16 one-byte loads, stored to
// shared memory pre-offset as stored_scale_byte leaves them, four bytes an operation, so that the MMA
// loop's scale is one shift).
#include "mma_mxf4.cuh"
#include "moe.cuh"
#include "mxfp4_layout.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace gptoss::cuda {

namespace {

// The kernels' shapes and shared-memory sizes (slice_shape, row_stride, warp_bytes, mma_cta_smem,
// fp8_*) live in shapes.h, read by choose_moe_decode() too.
constexpr int kTileRows = kMoeTileRows;  // rows a CTA (MMA M)
constexpr int kSliceMax = kMoeSliceMax;  // MX blocks a warp issues at once (16 rows x 512 bytes)
constexpr int kMaxWarps = kMoeMaxWarps;  // K slices a CTA: rows of at most 256 MX blocks (8192 values)
// target: MX blocks a warp at most (GPTOSS_CUDA_MOE_SLICE, default kSliceMax).
int slice_target() { return knobs().moe_slice; }
int cta_smem(int nch) { return mma_cta_smem(nch, slice_target()); }

#if defined(GPTOSS_HAVE_MMA_SYNC)
// D = A(16x16) B(16x8) with C = 0.
__device__ __forceinline__ void mma_first(float* d, const uint32_t* a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%10,%10,%10};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "f"(0.f));
}

// One 32-bit word of an MX block (8 E2M1 codes, code q = value 8t + q of the block) -> 4 bf16x2.
// kSub: pairs (q, q + 4) for q = 0..3, each bf16 = value * 2^-126 (see the file comment).
// !kSub: pairs (0,1) (2,3) (4,5) (6,7), normal bf16 values from prmt byte tables.
// kRelaid: a decode-layout word (mxfp4_layout.h): kSub's bit placement in pairs (2q, 2q + 1).
template <bool kSub, bool kRelaid = false>
__device__ __forceinline__ void decode_word(uint32_t w, uint32_t p[4]) {
  static_assert(kSub || !kRelaid, "the decode layout holds kSub operands");
  if constexpr (kRelaid) mxlayout::decode_word(w, p);
  else if (kSub) mxlayout::decode_checkpoint_word(w, p);  // shift, two masks, one IMAD a pair
  else e2m1_word_to_bf16(w, p);
}
// Which two of the word's 8 values pair i holds (must match decode_word): (i, i + 4) for kSub's decode of a
// checkpoint word, the natural (2i, 2i + 1) for the prmt tables and the decode layout (mxfp4_layout.h).
template <bool kSub, bool kRelaid = false>
__device__ __forceinline__ int pair_first(int i) { return kSub && !kRelaid ? i : 2 * i; }
template <bool kSub, bool kRelaid = false>
__device__ __forceinline__ int pair_second(int i) { return kSub && !kRelaid ? i + 4 : 2 * i + 1; }

// Scale bytes as the MMA loop keeps them in shared memory. kSub: min(s, 193) + 62, so the loop's
// scale is one shift (2^(s-65), the kSub domain; s > 193 saturates to inf as block_scale does);
// otherwise the E8M0 byte itself.
template <bool kSub>
__device__ __forceinline__ uint8_t stored_scale_byte(uint32_t s) {
  return kSub ? uint8_t(min(s, 193u) + 62u) : uint8_t(s);
}
template <bool kSub>
__device__ __forceinline__ float block_scale(uint32_t s);
template <bool kSub>
__device__ __forceinline__ float stored_scale(uint32_t b) {
  return kSub ? __uint_as_float(b << 23) : block_scale<false>(b);
}

// A decode-layout scale group (one MX block's 16 rows) as stored_scale_byte<true> leaves each byte: min(s, 193) + 62,
// four at a time.
__device__ __forceinline__ uint4 stored_scale_group(uint4 g) {
  const auto offset4 = [](uint32_t v) { return __vadd4(__vminu4(v, 0xC1C1C1C1u), 0x3E3E3E3Eu); };
  return make_uint4(offset4(g.x), offset4(g.y), offset4(g.z), offset4(g.w));
}

template <bool kSub>
__device__ __forceinline__ float block_scale(uint32_t s) {
  if (kSub) return __uint_as_float(min(s * 0x00800000u + (62u << 23), 0x7F800000u));  // 2^(s-127) * 2^62
  return __uint_as_float(max(s << 23, 0x00400000u));                                // 2^(s-127); s=0: 2^-127
}

// One warp's share of a 16-row tile: rows [row0, row0 + 16) of w (MXFP4 blocks [rows_total, nch, 16],
// scales [rows_total, nch]) times x, over the MX blocks [b0, b0 + nb) of its K slice (nb <= per <= 32).
// The steps, which slice_gemv runs in order:
//   issue_rows    the weight rows by cp.async (lane = MX block of the slice: no index divides by the
//                 runtime slice width), one commit group;
//   load_scales / store_scales   the 16 x nb scale bytes through registers;
//   build_frags   the activation slice (nb x 32 f32) as B fragments [nb][hi, lo][t][4 words];
//   tile_mma      after the rows have landed: sum_b scale * (W_blk . x_blk) for rows g and g + 8 in
//                 lanes t = 0 (acc0, acc1).
// Shared memory of one warp: rows [16][row_stride], scales [16][per] (round16), then fragments.
struct SliceRef {
  int nch, rows_total, b0, nb, per, lane;
  __device__ __forceinline__ int stride() const { return row_stride(per); }
};
__device__ __forceinline__ int rows_bytes(int per) { return kTileRows * row_stride(per) + round16(kTileRows * per); }

__device__ __forceinline__ void issue_rows(const SliceRef& r, const uint8_t* w, int row0, uint8_t* rows) {
  if (r.lane < r.nb) {
#pragma unroll
    for (int i = 0; i < kTileRows; ++i) {
      const int row = min(row0 + i, r.rows_total - 1);
      cp_async16(rows + i * r.stride() + r.lane * 16, w + (int64_t(row) * r.nch + r.b0 + r.lane) * 16);
    }
  }
  cp_async_commit();
}

__device__ __forceinline__ void load_scales(const SliceRef& r, const uint8_t* s, int row0, uint32_t (&sv)[kTileRows]) {
#pragma unroll
  for (int i = 0; i < kTileRows; ++i) {
    const int row = min(row0 + i, r.rows_total - 1);
    if (r.lane < r.nb) sv[i] = __ldg(s + int64_t(row) * r.nch + r.b0 + r.lane);
  }
}

template <bool kSub>
__device__ __forceinline__ void store_scales(const SliceRef& r, const uint32_t (&sv)[kTileRows], uint8_t* sc) {
#pragma unroll
  for (int i = 0; i < kTileRows; ++i)
    if (r.lane < r.nb) sc[i * r.per + r.lane] = stored_scale_byte<kSub>(sv[i]);
}

template <bool kSub, bool kRelaid = false>
__device__ __forceinline__ void build_frags(const SliceRef& r, const float* x, uint4* frag) {
  constexpr int kXPer = kSliceMax * 4 / WARP_SIZE;  // 4 items (block, quad) a lane
  float4 xv[kXPer][2];
#pragma unroll
  for (int u = 0; u < kXPer; ++u) {
    const int it = r.lane + u * WARP_SIZE;
    if (it < r.nb * 4) {
      const float4* p = reinterpret_cast<const float4*>(x + (r.b0 + (it >> 2)) * 32 + 8 * (it & 3));
      xv[u][0] = __ldg(p);
      xv[u][1] = __ldg(p + 1);
    }
  }
  const float pre = kSub ? 0x1p64f : 1.f;
#pragma unroll
  for (int u = 0; u < kXPer; ++u) {
    const int it = r.lane + u * WARP_SIZE;
    if (it < r.nb * 4) {
      const float v[8] = {xv[u][0].x * pre, xv[u][0].y * pre, xv[u][0].z * pre, xv[u][0].w * pre,
                          xv[u][1].x * pre, xv[u][1].y * pre, xv[u][1].z * pre, xv[u][1].w * pre};
      uint32_t hi[4], lo[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float va = v[pair_first<kSub, kRelaid>(i)], vb = v[pair_second<kSub, kRelaid>(i)];
        hi[i] = pack_bf16x2(va, vb);
        lo[i] = pack_bf16x2(va - bf16_lo(hi[i]), vb - bf16_hi(hi[i]));
      }
      uint4* fr = frag + (it >> 2) * 8 + (it & 3);
      fr[0] = make_uint4(hi[0], hi[1], hi[2], hi[3]);
      fr[4] = make_uint4(lo[0], lo[1], lo[2], lo[3]);
    }
  }
}

// sc0, sc1: the scale bytes of rows g and g + 8 of the slice (MX block blk at [blk * kScStride]); kRaw:
// E8M0 bytes as in the checkpoint (else as stored_scale_byte wrote them). kRelaid: decode-layout words.
// One MX block of a 16-row tile: its two ldmatrix words (rows g and g + 8, word t) decoded and multiplied by the
// block's B fragment xf (columns hi, lo) in two k16 MMAs; c[0] + c[1] is row g's product, c[2] + c[3] row g + 8's.
template <bool kSub, bool kRelaid>
__device__ __forceinline__ void block_mma(uint32_t w0, uint32_t w1, uint4 xf, float (&c)[4]) {
  uint32_t p0[4], p1[4];
  decode_word<kSub, kRelaid>(w0, p0);
  decode_word<kSub, kRelaid>(w1, p1);
  const uint32_t m0[4] = {p0[0], p1[0], p0[1], p1[1]};
  mma_first(c, m0, xf.x, xf.y);
  const uint32_t m1[4] = {p0[2], p1[2], p0[3], p1[3]};
  const uint32_t bb[2] = {xf.z, xf.w};
  mma_bf16_16816(c, m1, bb);
}

template <bool kSub, bool kRaw, bool kRelaid = false, int kScStride = 1>
__device__ __forceinline__ void tile_mma(const SliceRef& r, const uint8_t* rows, const uint8_t* sc0, const uint8_t* sc1,
                                         const uint4* frag, float& acc0, float& acc1) {
  const int g = r.lane >> 2, t = r.lane & 3;
  const uint8_t* arow = rows + (r.lane & 15) * r.stride();  // ldmatrix.x2: lanes 0-15 give rows 0-15
  const uint4* fr = frag + (g & 1) * 4 + t;  // columns 0 (hi) and 1 (lo); other columns repeat them
  float a0 = 0.f, a1 = 0.f;
  // block blk's operands at arow + 16 blk, fr + 8 blk, sc0 / sc1 + blk kScStride: the pointers step once a block
#pragma unroll 4
  for (int blk = 0; blk < r.nb; ++blk, arow += 16, fr += 8, sc0 += kScStride, sc1 += kScStride) {
    uint32_t w0, w1;
    ldsm_x2(w0, w1, arow);
    float c[4];
    block_mma<kSub, kRelaid>(w0, w1, *fr, c);
    const uint32_t s0 = *sc0, s1 = *sc1;
    a0 = fmaf(kRaw ? block_scale<kSub>(s0) : stored_scale<kSub>(s0), c[0] + c[1], a0);
    a1 = fmaf(kRaw ? block_scale<kSub>(s1) : stored_scale<kSub>(s1), c[2] + c[3], a1);
  }
  acc0 = a0;
  acc1 = a1;
}

// The whole slice for one tile, every request out before anything is waited for. wait_mid: the
// weight and scale requests go out first, then pdl_wait() (the activation is the previous kernel's
// output; the weights are not), then the activation loads. kRelaid: w and s in the decode layout
// (mxfp4_layout.h; rows_total % 16 == 0): a lane's block of the tile has its 16 scales in one 16-byte
// group, kept in shared memory as [block][16 rows] (pre-offset: stored_scale_byte<true>).
// kAblate (bench only, set_moe_decode_ablation in bench_hooks.h; wrong results): 1 skips the MMA loop, 2 also the
// activation fragments, so that the kernel bench can time the kernels' structure without their math.
// kActFrag (down only, GPTOSS_CUDA_MOE_ACT_FRAGS=1): x already holds the B fragments, written by gate_up's epilogue in
// build_frags' order ([block][hi quads 0-3, lo quads 0-3] uint4, the f32 row's bytes): copied by cp.async after the
// wait instead of built, the same bits.
template <bool kSub, bool kRelaid = false, int kAblate = 0, bool kActFrag = false>
__device__ __forceinline__ void slice_gemv(const uint8_t* w, const uint8_t* s, const float* x, int nch,
                                           int rows_total, int row0, int b0, int nb, int per, uint8_t* wsm,
                                           int lane, bool wait_mid, float& acc0, float& acc1) {
  const SliceRef r{nch, rows_total, b0, nb, per, lane};
  uint8_t* rows = wsm;
  uint8_t* sc = wsm + kTileRows * r.stride();
  uint4* frag = reinterpret_cast<uint4*>(wsm + rows_bytes(per));
  issue_rows(r, w, row0, rows);
  uint32_t sv[kTileRows];
  uint4 sg = make_uint4(0, 0, 0, 0);
  if (kRelaid) {
    if (lane < nb) sg = __ldg(reinterpret_cast<const uint4*>(s + mxlayout::scale_index(row0, b0 + lane, nch)));
  } else {
    load_scales(r, s, row0, sv);
  }
  if (wait_mid) {
    pdl_wait();
    pdl_launch_dependents();
  }
  if constexpr (kActFrag) {
    const uint4* src = reinterpret_cast<const uint4*>(x) + b0 * 8;
    for (int c = lane; c < nb * 8; c += WARP_SIZE) cp_async16(frag + c, src + c);
    cp_async_commit();
  } else if constexpr (kAblate < 2) {
    build_frags<kSub, kRelaid>(r, x, frag);
  }
  if (kRelaid) {
    if (lane < nb) reinterpret_cast<uint4*>(sc)[lane] = stored_scale_group(sg);
  } else {
    store_scales<kSub>(r, sv, sc);
  }
  cp_async_wait<0>();
  __syncwarp();
  const int g = lane >> 2;
  if constexpr (kAblate > 0) {
    acc0 = reinterpret_cast<const float*>(rows)[lane];  // one word of the landed rows, so nothing is dropped
    acc1 = 0.f;
  } else if constexpr (kRelaid) tile_mma<kSub, false, true, kTileRows>(r, rows, sc + g, sc + g + 8, frag, acc0, acc1);
  else tile_mma<kSub, false>(r, rows, sc + g * per, sc + (g + 8) * per, frag, acc0, acc1);
}
#endif  // GPTOSS_HAVE_MMA_SYNC

// The tile's 16 row sums over the CTA's K slices, in slice order (deterministic): lanes t = 0 of
// every warp hold rows g, g + 8 of their slice. Returns row `threadIdx.x` (< 16) of the tile.
__device__ __forceinline__ float tile_rows_sum(float acc0, float acc1, int slices, float (*red)[kTileRows]) {
  const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
  if ((lane & 3) == 0) {
    red[warp][lane >> 2] = acc0;
    red[warp][(lane >> 2) + 8] = acc1;
  }
  __syncthreads();
  float v = 0.f;
  if (threadIdx.x < kTileRows)
    for (int w = 0; w < slices; ++w) v += red[w][threadIdx.x];
  return v;
}

// Stage 1. grid (ceil(2I / 16), pairs), one warp per K slice of H.
// kActFrag: act is written as the down kernel's B fragments (slice_gemv), not as f32: this CTA's 8 values are one quad
// of one MX block, split into bf16 hi + lo (pre-scaled by 2^64) exactly as build_frags<true, true> would from the f32.
template <bool kSub, bool kRelaid = false, int kAblate = 0, bool kActFrag = false>
__global__ void __launch_bounds__(kMaxWarps * 32) moe_mma_gate_up_kernel(MoeArgs a, float* act) {
#if defined(GPTOSS_HAVE_MMA_SYNC)
  extern __shared__ __align__(16) uint8_t smem[];
  __shared__ float red[kMaxWarps][kTileRows];
  __shared__ float rowv[kTileRows];
  pdl_wait();  // the expert index is the router's output: nothing to prefetch
  pdl_launch_dependents();
  const int pair = blockIdx.y, tok = pair / a.k;
  const int e = a.expert_idx[pair];
  const int rows_total = 2 * a.I, nch = a.H / 32;
  const int row0 = blockIdx.x * kTileRows;
  if (e < 0 || e >= a.E) {  // flagged; this pair contributes zeros
    if (threadIdx.x == 0) atomicOr(a.err, kErrExpertRange);
    const int j = row0 / 2 + threadIdx.x;
    if (threadIdx.x < kTileRows / 2 && j < a.I) act[int64_t(pair) * a.I + j] = 0.f;
    return;
  }
  const SliceShape sh = slice_shape(nch, a.slice_blocks);
  const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
  const int b0 = warp * sh.per, nb = min(sh.per, nch - b0);
  const int rb = row0 + int(threadIdx.x);  // this thread's bias row (threads < 16), read early
  const float bias = threadIdx.x < kTileRows && rb < rows_total
                         ? param_f32(a.gate_up_bias, a.gate_up_bias_bf16, int64_t(e) * rows_total + rb) : 0.f;
  float acc0 = 0.f, acc1 = 0.f;
  if (nb > 0)
    slice_gemv<kSub, kRelaid, kAblate>(a.gate_up + int64_t(e) * rows_total * nch * 16, a.gate_up_scales + int64_t(e) * rows_total * nch,
                     a.x + int64_t(tok) * a.H, nch, rows_total, row0, b0, nb, sh.per, smem + warp * warp_bytes(sh.per),
                     lane, false, acc0, acc1);
  const float v = tile_rows_sum(acc0, acc1, sh.slices, red);
  if (threadIdx.x < kTileRows) rowv[threadIdx.x] = v + bias;
  __syncthreads();
  // rows 2j (gate) and 2j + 1 (up) are interleaved
  const int j = row0 / 2 + threadIdx.x;
  if constexpr (kActFrag) {
    static_assert(kSub && kRelaid, "the fragments are the decode layout's (natural pairs, 2^64 pre-scale)");
    __shared__ float actv[kTileRows / 2];
    if (threadIdx.x < kTileRows / 2)  // I % 32 == 0 (checks::moe), so 2I % 64 == 0: every tile is whole
      actv[threadIdx.x] = swiglu(rowv[2 * threadIdx.x], rowv[2 * threadIdx.x + 1], a.limit, a.alpha);
    __syncwarp();
    if (threadIdx.x < 4) {  // pair i = values 2i, 2i + 1 of the quad
      const int i = threadIdx.x, j0 = row0 / 2, q = (j0 & 31) >> 3;
      const float va = actv[2 * i] * 0x1p64f, vb = actv[2 * i + 1] * 0x1p64f;
      const uint32_t hi = pack_bf16x2(va, vb), lo = pack_bf16x2(va - bf16_lo(hi), vb - bf16_hi(hi));
      uint32_t* fw = reinterpret_cast<uint32_t*>(act + int64_t(pair) * a.I) + (j0 >> 5) * 32;
      fw[q * 4 + i] = hi;
      fw[(4 + q) * 4 + i] = lo;
    }
  } else if (threadIdx.x < kTileRows / 2 && 2 * j + 1 < rows_total) {
    act[int64_t(pair) * a.I + j] = swiglu(rowv[2 * threadIdx.x], rowv[2 * threadIdx.x + 1], a.limit, a.alpha);
  }
#else
  GPTOSS_NO_DEVICE_CODE("bf16 mma.sync (sm_80+)");
#endif
}

// Stage 2. grid (ceil(H / 16), pairs), one warp per K slice of I. Each CTA writes its expert's
// weighted rows (bias included) to part; the last of the token's k CTAs for this row tile sums
// them in expert order.
template <bool kSub, bool kRelaid = false, int kAblate = 0, bool kActFrag = false>
__global__ void __launch_bounds__(kMaxWarps * 32) moe_mma_down_kernel(MoeArgs a, const float* act, float* part) {
#if defined(GPTOSS_HAVE_MMA_SYNC)
  extern __shared__ __align__(16) uint8_t smem[];
  __shared__ float red[kMaxWarps][kTileRows];
  const int pair = blockIdx.y, tok = pair / a.k;
  const int e = a.expert_idx[pair];
  const bool valid = e >= 0 && e < a.E;  // gate_up flagged a bad index; the pair adds zeros
  const int nch = a.I / 32;
  const int row0 = blockIdx.x * kTileRows;
  const SliceShape sh = slice_shape(nch, a.slice_blocks);
  const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
  const int b0 = warp * sh.per, nb = min(sh.per, nch - b0);
  // The routing (two kernels back) is final here; gate_up's act is not until pdl_wait (in the slice).
  const int rb = row0 + int(threadIdx.x);  // this thread's bias row and routing weight, read early
  const bool bias_row = valid && threadIdx.x < kTileRows && rb < a.H;
  const float bias = bias_row ? param_f32(a.down_bias, a.down_bias_bf16, int64_t(e) * a.H + rb) : 0.f;
  const float route_w = bias_row ? a.expert_weight[pair] : 0.f;
  float acc0 = 0.f, acc1 = 0.f;
  if (valid && nb > 0) {
    slice_gemv<kSub, kRelaid, kAblate, kActFrag>(a.down + int64_t(e) * a.H * nch * 16, a.down_scales + int64_t(e) * a.H * nch,
                     act + int64_t(pair) * a.I, nch, a.H, row0, b0, nb, sh.per, smem + warp * warp_bytes(sh.per), lane,
                     true, acc0, acc1);
  } else {
    pdl_wait();
    pdl_launch_dependents();
  }
  const float v = tile_rows_sum(acc0, acc1, sh.slices, red);
  const int r = row0 + int(threadIdx.x);
  if (threadIdx.x < kTileRows && r < a.H) part[int64_t(pair) * a.H + r] = valid ? route_w * (v + bias) : 0.f;
  if (!last_block_arrives(a.counters + kCountersMoe + tok * int(gridDim.x) + blockIdx.x, a.k)) return;
  if (threadIdx.x < kTileRows && r < a.H) {
    float sum = 0.f;
    for (int j = 0; j < a.k; ++j) sum += __ldcg(part + (int64_t(tok) * a.k + j) * a.H + r);
    a.out[int64_t(tok) * a.H + r] = sum;
  }
#else
  GPTOSS_NO_DEVICE_CODE("bf16 mma.sync (sm_80+)");
#endif
}

// ---------------------------------------------------------------------------------------------
// The staged ring (GPTOSS_CUDA_MOE_STAGED=1|2|3, A/B; decode layout only). The one-tile kernels above keep each CTA's
// shared memory until its MMAs are done, so an SM's loads stop while its CTAs compute (1.8 waves of gate_up on the
// 20b: the MMA loop's ~8 us a layer adds to the reads' ~20 us instead of hiding under them; bench/RESULTS.md, 28th
// session). The 25th session's ring (next/ring) freed a stage only after its MMAs, so it held fewer bytes in flight
// than the one-tile grid and lost. Here a warp copies a tile's words into registers (ldmatrix, 2 a block) and its
// scale groups into a small buffer as soon as they land, and refills the slot before its MMAs: every slot of shared
// memory is a load in flight except for the moment between landing and that copy.
//  - Persistent CTAs (every CTA that fits, or GPTOSS_CUDA_MOE_STAGED_CTAS) walk contiguous ranges of (pair, 16-row
//    tile) units; the CTA's warps split K as slice_shape(nch, kMoeStagedPer) (the 20b: 8 warps of 12 MX blocks).
//  - A warp's slots (1 to 3) each hold one unit's rows and scale groups; its B fragments are built once per token
//    (gate_up) or pair (down), so a gate_up CTA of one token builds them once.
//  - The MMAs (tile_mma_staged) are tile_mma's on the decode layout, operation for operation, and the warps' sums
//    meet in slice order, so the results equal the one-tile kernels' at the same slice shape (GPTOSS_CUDA_MOE_SLICE=12)
//    bit for bit.
//  - One __syncthreads a unit (the partial sums double-buffered); warp 0 runs the one-tile kernels' epilogues.
//  - Two CTAs an SM (128 registers a thread: the 12 blocks' 24 words stay live through the MMAs; held to 80 for three
//    CTAs, ptxas spills 72-168 bytes). The 20b at 2 slots: 2 x 8 warps x 2 x 3.5 KB = 112 KB in flight an SM.
// ---------------------------------------------------------------------------------------------
#if defined(GPTOSS_HAVE_MMA_SYNC)
// tile_mma<true, false, true, kTileRows> with the slice's words already in registers (w[blk] = ldsm_x2 of block blk):
// the same block_mma and scale FMA in the same order.
template <int kPer>
__device__ __forceinline__ void tile_mma_staged(const uint32_t (&w)[kPer][2], int nb, const uint8_t* sc0, const uint8_t* sc1,
                                                const uint4* frag, int lane, float& acc0, float& acc1) {
  const int g = lane >> 2, t = lane & 3;
  const uint4* fr = frag + (g & 1) * 4 + t;
  float a0 = 0.f, a1 = 0.f;
#pragma unroll
  for (int blk = 0; blk < kPer; ++blk) {
    if (blk < nb) {
      float c[4];
      block_mma<true, true>(w[blk][0], w[blk][1], fr[blk * 8], c);
      a0 = fmaf(stored_scale<true>(sc0[blk * kTileRows]), c[0] + c[1], a0);
      a1 = fmaf(stored_scale<true>(sc1[blk * kTileRows]), c[2] + c[3], a1);
    }
  }
  acc0 = a0;
  acc1 = a1;
}
#endif

// Warp 0's epilogue of one (pair, 16-row tile) unit of the persistent decode kernels (moe_staged_kernel,
// moe_fp8_stream_kernel) of pair `pair` (token tok), rows [row0, row0 + 16) = tile `tile`; v: lane r's row sum, bias
// included (lanes < 16). gate_up: the interleaved rows 2j (gate) and
// 2j + 1 (up) as SwiGLU -> act (lane 2j takes its neighbour's row); down: the weighted row -> part, and the last of
// the token's k units for this tile sums them in expert order -> out (its counter reset for the next launch).
template <bool kDown>
__device__ __forceinline__ void unit_epilogue(const MoeArgs& a, float* act, float* part, float v, float route_w, bool valid,
                                              int pair, int tok, int row0, int tile, int tiles, int rows_total, int lane) {
  const int rr = row0 + lane;
  if (!kDown) {
    const float up = __shfl_down_sync(0xffffffffu, v, 1);
    const int j = row0 / 2 + lane / 2;
    if (lane < kTileRows && !(lane & 1) && 2 * j + 1 < rows_total)
      act[int64_t(pair) * a.I + j] = valid ? swiglu(v, up, a.limit, a.alpha) : 0.f;
    if (!valid && lane == 0) atomicOr(a.err, kErrExpertRange);
  } else {
    if (lane < kTileRows && rr < a.H) part[int64_t(pair) * a.H + rr] = valid ? route_w * v : 0.f;
    __threadfence();
    __syncwarp();
    int last = 0;
    if (lane == 0) {
      int* cnt = a.counters + kCountersMoe + tok * tiles + tile;
      last = atomicAdd(cnt, 1) == a.k - 1;
      if (last) atomicExch(cnt, 0);
    }
    if (__shfl_sync(0xffffffffu, last, 0)) {
      __threadfence();
      if (lane < kTileRows && rr < a.H) {
        float sum = 0.f;
        for (int j = 0; j < a.k; ++j) sum += __ldcg(part + (int64_t(tok) * a.k + j) * a.H + rr);
        a.out[int64_t(tok) * a.H + rr] = sum;
      }
    }
  }
}

template <bool kDown, int kSlots>
__global__ void __launch_bounds__(kMaxWarps * 32, 2) moe_staged_kernel(MoeArgs a, float* act, float* part) {
#if defined(GPTOSS_HAVE_MMA_SYNC)
  extern __shared__ __align__(16) uint8_t smem[];
  __shared__ float red[2][kMaxWarps][kTileRows];
  const int rows_total = kDown ? a.H : 2 * a.I, nch = (kDown ? a.I : a.H) / 32;
  const int tiles = rows_total / kTileRows;  // the decode layout: rows_total % 16 == 0
  const int units = a.n * a.k * tiles;
  const int u0 = int(int64_t(units) * blockIdx.x / gridDim.x), u1 = int(int64_t(units) * (blockIdx.x + 1) / gridDim.x);
  const SliceShape sh = slice_shape(nch, kMoeStagedPer);
  const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
  const int b0 = warp * sh.per, nb = min(sh.per, nch - b0);
  const int stride = row_stride(sh.per), stage = staged_stage_bytes(sh.per);
  uint8_t* wsm = smem + warp * staged_warp_bytes(sh.per, kSlots);
  uint8_t* cur_sc = wsm + kSlots * stage;  // this unit's scale groups, [block][16 rows], pre-offset
  uint4* frag = reinterpret_cast<uint4*>(cur_sc + round16(kTileRows * sh.per));
  const int64_t wexp = int64_t(rows_total) * nch;  // MX blocks (and scale bytes) an expert
  const uint8_t* wbase = kDown ? a.down : a.gate_up;
  const uint8_t* sbase = kDown ? a.down_scales : a.gate_up_scales;
  // The unit issue() loads next, (pair, tile) walked without divisions, into slot islot: one commit group a unit.
  int ipair = u0 / tiles, itile = u0 - ipair * tiles, islot = 0;
  auto issue = [&](int u) {
    if (u < u1) {
      const int e = a.expert_idx[ipair];
      if (nb > 0 && e >= 0 && e < a.E && lane < nb) {
        uint8_t* st = wsm + islot * stage;
        const int row0 = itile * kTileRows;
        const uint8_t* w = wbase + (e * wexp + int64_t(row0) * nch + b0 + lane) * 16;  // row row0, this lane's block
#pragma unroll
        for (int i = 0; i < kTileRows; ++i) cp_async16(st + i * stride + lane * 16, w + int64_t(i) * nch * 16);
        cp_async16(st + kTileRows * stride + lane * 16, sbase + e * wexp + mxlayout::scale_index(row0, b0 + lane, nch));
      }
      if (++itile == tiles) itile = 0, ++ipair;
    }
    cp_async_commit();
    islot = islot + 1 == kSlots ? 0 : islot + 1;
  };
  // gate_up: the expert indices are the previous kernel's (the router's) output. down: they are two launches back, so
  // its first units load before the wait; act is gate_up's output.
  if (!kDown) {
    pdl_wait();
    pdl_launch_dependents();
  }
#pragma unroll
  for (int i = 0; i < kSlots; ++i) issue(u0 + i);
  if (kDown) {
    pdl_wait();
    pdl_launch_dependents();
  }
  int pair = u0 / tiles, tile = u0 - pair * tiles, slot = 0, frag_key = -1;
  for (int u = u0; u < u1; ++u) {
    const int tok = pair / a.k, row0 = tile * kTileRows;
    const int e = a.expert_idx[pair];
    const bool valid = e >= 0 && e < a.E, work = valid && nb > 0;
    // warp 0's epilogue operands, read before the wait
    const int rr = row0 + lane;
    const bool erow = warp == 0 && lane < kTileRows && valid;
    const float bias = erow ? param_f32(kDown ? a.down_bias : a.gate_up_bias, kDown ? a.down_bias_bf16 : a.gate_up_bias_bf16,
                                        int64_t(e) * rows_total + rr)
                            : 0.f;
    const float route_w = kDown && erow ? a.expert_weight[pair] : 0.f;
    cp_async_wait<kSlots - 1>();  // unit u has landed
    __syncwarp();
    uint32_t wr[kMoeStagedPer][2];
    if (work) {
      const uint8_t* st = wsm + slot * stage;
      const uint8_t* arow = st + (lane & 15) * stride;  // ldmatrix.x2: lanes 0-15 give rows 0-15
#pragma unroll
      for (int blk = 0; blk < kMoeStagedPer; ++blk)
        if (blk < nb) ldsm_x2(wr[blk][0], wr[blk][1], arow + 16 * blk);
      if (lane < nb)
        reinterpret_cast<uint4*>(cur_sc)[lane] = stored_scale_group(reinterpret_cast<const uint4*>(st + kTileRows * stride)[lane]);
    }
    __syncwarp();  // the slot is in registers and cur_sc: refill it before the MMAs
    issue(u + kSlots);
    float acc0 = 0.f, acc1 = 0.f;
    if (work) {
      const int key = kDown ? pair : tok;
      if (key != frag_key) {
        const SliceRef r{nch, rows_total, b0, nb, sh.per, lane};
        build_frags<true, true>(r, kDown ? act + int64_t(pair) * a.I : a.x + int64_t(tok) * a.H, frag);
        frag_key = key;
      }
      __syncwarp();
      const int g = lane >> 2;
      tile_mma_staged<kMoeStagedPer>(wr, nb, cur_sc + g, cur_sc + g + 8, frag, lane, acc0, acc1);
    }
    if ((lane & 3) == 0) {
      red[u & 1][warp][lane >> 2] = acc0;
      red[u & 1][warp][(lane >> 2) + 8] = acc1;
    }
    const int upair = pair, utile = tile;
    if (++slot == kSlots) slot = 0;
    if (++tile == tiles) tile = 0, ++pair;
    __syncthreads();  // red[u & 1] is rewritten at u + 2, after the next unit's barrier
    if (warp != 0) continue;
    float v = 0.f;
    if (lane < kTileRows)
      for (int w = 0; w < sh.slices; ++w) v += red[u & 1][w][lane];  // slice order, as tile_rows_sum
    v += bias;
    unit_epilogue<kDown>(a, act, part, v, route_w, valid, upair, tok, row0, utile, tiles, rows_total, lane);
  }
  cp_async_wait<0>();
#else
  GPTOSS_NO_DEVICE_CODE("bf16 mma.sync (sm_80+)");
#endif
}

// ---------------------------------------------------------------------------------------------
// FP8 streaming variant (sm_89+: the default on sm_89 and sm_12x, GPTOSS_CUDA_MOE_DECODE=mma-fp8
// elsewhere; fp8_mma_native() says why). ncu on the
// kernels above (20b, one token, bench/RESULTS.md) shows them bound by instruction issue, not by
// DRAM: ~78 instructions a warp per MX block, ~46 of them in tile_mma (30 of those decode E2M1 to
// bf16: 4 ops per bf16x2). This variant does the same GEMV with mma.sync m16n8k32 on e4m3:
//  - E2M1 -> e4m3 by bit placement: sign -> bit 7, the 3 magnitude bits -> bits 4..2 gives the value
//    times 2^-6 exactly (E2M1's subnormal 0.5 lands on e4m3's subnormal 2^-7); 7 ops a word of 8
//    values, against 15 for bf16, and one MMA a block (K = 32) instead of two.
//  - The activation goes in as 4 e4m3 limbs, B columns 0-3: x * 2^(7-e) (e = the exponent of
//    max|x| over the vector, so that max lands in [128, 256)) = l0 + l1/16 + l2/256 + l3/4096, each
//    limb the e4m3 rounding of what is left times 16^c. Each limb adds ~4 bits; the sum is within
//    ~2^-16 of x (relative to the vector's max, ~2^-29 once the residual leaves e4m3's normal range),
//    close to the bf16 hi + lo split of the other kernels (~2^-17). Lanes t = 0 hold columns 0, 1,
//    lanes t = 1 columns 2, 3 (scaled by 1/256 when the two meet); columns 4-7 repeat 0-3, unused.
//  - K is permuted within a block: lane (g, t)'s ldmatrix word t (values 8t..8t+7) gives a0 = the
//    low nibbles (values 8t + 2j at k = 4t + j) and a2 = the high ones (8t + 2j + 1 at k = 16 + 4t + j);
//    the B fragments hold x in the same order.
// Work split: a few CTAs a SM each walk a contiguous range of (pair, 16-row tile) units; the CTA's 8
// warps split K (<= 16 MX blocks each, balanced), and each warp streams its slice of successive
// tiles through a private kFp8Stages-deep cp.async ring (no CTA barrier on the load side), building
// its B fragments once per token (gate_up) or pair (down). The scales come with the rows: each row's
// bytes of the slice as a 32-byte window (two aligned 16-byte chunks, only the row's bytes read). Per
// unit the warps' partial sums meet in shared memory (double-buffered, one __syncthreads) and warp 0
// runs the epilogue of the kernels above: SwiGLU -> act, or the weighted row -> part with the last of
// the token's k units summing in expert order.
// ---------------------------------------------------------------------------------------------
// kFp8Warps (8), kFp8PerMax (16 MX blocks a warp slice: K of at most 128 blocks, 4096 values),
// kScaleWin (32 bytes of a row's scale window) and the fp8_* sizes: shapes.h.

#if defined(GPTOSS_HAVE_FP8_MMA)
// D = A(16x32 e4m3) B(32x8 e4m3), f32, C = 0.
__device__ __forceinline__ void mma_e4m3_first(float* d, const uint32_t* a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%10,%10,%10};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "f"(0.f));
}
// The 4 low (high) nibbles of a word's bytes as 4 e4m3 bytes, value x 2^-6 (see above).
__device__ __forceinline__ uint32_t e2m1_lo_e4m3(uint32_t w) { return ((w << 2) & 0x1C1C1C1Cu) | ((w << 4) & 0x80808080u); }
__device__ __forceinline__ uint32_t e2m1_hi_e4m3(uint32_t w) { return ((w >> 2) & 0x1C1C1C1Cu) | (w & 0x80808080u); }
// Four floats -> four e4m3 bytes (round to nearest, saturating), a in byte 0; and back.
__device__ __forceinline__ uint32_t e4m3x4(float a, float b, float c, float d) {
  uint16_t lo, hi;
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\n" : "=h"(lo) : "f"(b), "f"(a));
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\n" : "=h"(hi) : "f"(d), "f"(c));
  return uint32_t(lo) | (uint32_t(hi) << 16);
}
__device__ __forceinline__ void e4m3x2_to_f32(uint16_t v, float& lo, float& hi) {
  asm("{\n .reg .b32 h;\n .reg .f16 a, b;\n cvt.rn.f16x2.e4m3x2 h, %2;\n mov.b32 {a, b}, h;\n"
      " cvt.f32.f16 %0, a;\n cvt.f32.f16 %1, b;\n}\n"
      : "=f"(lo), "=f"(hi)
      : "h"(v));
}
__device__ __forceinline__ void e4m3x4_to_f32(uint32_t v, float* f) {
  e4m3x2_to_f32(uint16_t(v), f[0], f[1]);
  e4m3x2_to_f32(uint16_t(v >> 16), f[2], f[3]);
}

// One quad's 8 values (r, already scaled) as 4 e4m3 limbs, limb c at out[4 c] = (even values, odd values); each limb
// is what is left, rounded, times 16^c, so the limbs sum to r within ~2^-18 of its max.
__device__ __forceinline__ void e4m3_limbs(float (&r)[8], uint2* out) {
#pragma unroll
  for (int c = 0; c < 4; ++c) {
    const uint32_t ev = e4m3x4(r[0], r[2], r[4], r[6]), od = e4m3x4(r[1], r[3], r[5], r[7]);
    out[c * 4] = make_uint2(ev, od);
    float be[4], bo[4];
    e4m3x4_to_f32(ev, be);
    e4m3x4_to_f32(od, bo);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      r[2 * j] = (r[2 * j] - be[j]) * 16.f;  // exact: the limb is r rounded
      r[2 * j + 1] = (r[2 * j + 1] - bo[j]) * 16.f;
    }
  }
}

// The warp's B fragments for x (nch x 32 floats) over MX blocks [b0, b0 + nb): frag[blk][limb c][quad
// q] = (even values of quad q, odd values) as e4m3 limb c. Returns e (x was scaled by 2^(7-e)).
__device__ __forceinline__ int fp8_build_frags(const float* x, int nch, int b0, int nb, uint2* frag, int lane) {
  const float4* x4 = reinterpret_cast<const float4*>(x);
  float m = 0.f;
  for (int i = lane; i < nch * 8; i += WARP_SIZE) {
    const float4 v = __ldg(x4 + i);
    m = fmaxf(m, fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  // floor(log2 max) for a normal max; a zero (or subnormal) vector takes e = -100: x * 2^107 is < 2^-19
  const int e = max(int((__float_as_uint(m) >> 23) & 0xFF) - 127, -100);
  const float sc = __uint_as_float(uint32_t(127 + 7 - min(e, 127)) << 23);  // 2^(7-e), e <= 127
  for (int it = lane; it < nb * 4; it += WARP_SIZE) {
    const int blk = it >> 2, q = it & 3;
    const float4* p = x4 + (b0 + blk) * 8 + 2 * q;
    const float4 v0 = __ldg(p), v1 = __ldg(p + 1);
    float r[8] = {v0.x * sc, v0.y * sc, v0.z * sc, v0.w * sc, v1.x * sc, v1.y * sc, v1.z * sc, v1.w * sc};
    e4m3_limbs(r, frag + blk * 16 + q);
  }
  return e;
}

// One unit's loads for one warp: the 16 rows' MX blocks [b0, b0 + nb) (lane & 15 = block, lane >> 4 =
// row parity) and each row's scale window (lane = 2 x row + half); w, s point at the tile's first row
// and the slice's first block. One commit group.
__device__ __forceinline__ void fp8_issue(const uint8_t* w, const uint8_t* s, int nch, int rows_left, int nb, int per,
                                          uint8_t* st, int lane) {
  const int blk = lane & 15;
  if (blk < nb) {
#pragma unroll
    for (int i = 0; i < kTileRows / 2; ++i) {
      const int rr = 2 * i + (lane >> 4);
      cp_async16(st + rr * row_stride(per) + blk * 16, w + (int64_t(min(rr, rows_left - 1)) * nch + blk) * 16);
    }
  }
  const int rr = lane >> 1, h = lane & 1;
  const uint8_t* p = s + int64_t(min(rr, rows_left - 1)) * nch;        // the row's first scale byte
  const uint8_t* c = p - (reinterpret_cast<uintptr_t>(p) & 15) + 16 * h;  // this lane's aligned chunk
  const int64_t bytes = p + nb - c;                                      // of the row's bytes, from c on
  if (bytes > 0)
    cp_async16_n(st + kTileRows * row_stride(per) + rr * kScaleWin + 16 * h, c, int(min(bytes, int64_t(16))));
  cp_async_commit();
}

// sum over the slice's blocks of 2^(s-127) * (W_blk . x_blk), x as fp8_build_frags left it, for rows g
// (acc0) and g + 8 (acc1) in lanes t = 0 (limbs 0, 1) and t = 1 (limbs 2, 3; scaled by 256).
__device__ __forceinline__ void fp8_tile_mma(const uint8_t* rows, int stride, const uint8_t* sc0, const uint8_t* sc1,
                                             const uint2* frag, int nb, int lane, float& acc0, float& acc1) {
  const uint8_t* arow = rows + (lane & 15) * stride;  // ldmatrix.x2: lanes 0-15 give rows 0-15
  const uint2* fr = frag + ((lane >> 2) & 3) * 4 + (lane & 3);  // column g & 3, quad t
  float a0 = 0.f, a1 = 0.f;
#pragma unroll 4
  for (int blk = 0; blk < nb; ++blk) {
    uint32_t w0, w1;
    ldsm_x2(w0, w1, arow + blk * 16);
    const uint2 xf = fr[blk * 16];
    const uint32_t a[4] = {e2m1_lo_e4m3(w0), e2m1_lo_e4m3(w1), e2m1_hi_e4m3(w0), e2m1_hi_e4m3(w1)};
    float c[4];
    mma_e4m3_first(c, a, xf.x, xf.y);
    a0 = fmaf(__uint_as_float(max(uint32_t(sc0[blk]) << 23, 0x00400000u)), fmaf(c[1], 0.0625f, c[0]), a0);
    a1 = fmaf(__uint_as_float(max(uint32_t(sc1[blk]) << 23, 0x00400000u)), fmaf(c[3], 0.0625f, c[2]), a1);
  }
  acc0 = a0;
  acc1 = a1;
}

// ---- MmaMxf8: the same kernels on Blackwell's block-scaled MMA (mma_mxf8f6f4_e2m1_e4m3; sm_120a, emulated on
// sm_89 / sm_90 for the checks). The weights go in as stored: a word's codes moved to bits 5..2 of their bytes (two
// operations a register), the row's E8M0 scale byte as the MMA's A scale. The activation is fp8_build_frags' limbs
// with one exponent a block instead of one a vector: limb c of block b carries its own scale 2^(e_b - 7 - 4c) as B's
// column scale, so the MMA returns each limb already weighted and the loop has no scale FMA. ~14 instructions a
// warp and MX block against the bf16 kernels' ~36 (no decode arithmetic, one MMA instead of two).
// The warp's B operand over MX blocks [b0, b0 + nb): frag as fp8_build_frags lays it out, each block scaled so that
// its max lands in [128, 256); fsc[blk * 4 + c] = limb c's E8M0 byte.
__device__ __forceinline__ void mxf8_build_frags(const float* x, int b0, int nb, uint2* frag, uint32_t* fsc, int lane) {
  const float4* x4 = reinterpret_cast<const float4*>(x);
  for (int base = 0; base < nb * 4; base += WARP_SIZE) {  // whole warps, so the block max can shuffle
    const int it = base + lane, blk = it >> 2, q = it & 3;
    const bool on = it < nb * 4;  // a block's 4 quads are 4 neighbouring lanes: on or off together
    float4 v0 = make_float4(0.f, 0.f, 0.f, 0.f), v1 = v0;
    if (on) {
      const float4* p = x4 + (b0 + blk) * 8 + 2 * q;
      v0 = __ldg(p);
      v1 = __ldg(p + 1);
    }
    float m = fmaxf(fmaxf(fmaxf(fabsf(v0.x), fabsf(v0.y)), fmaxf(fabsf(v0.z), fabsf(v0.w))),
                    fmaxf(fmaxf(fabsf(v1.x), fabsf(v1.y)), fmaxf(fabsf(v1.z), fabsf(v1.w))));
    m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
    m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
    if (!on) continue;
    // floor(log2 max) for a normal max, at most 127; a zero (or subnormal) block takes e = -100
    const int e = min(max(int((__float_as_uint(m) >> 23) & 0xFF) - 127, -100), 127);
    const float sc = __uint_as_float(uint32_t(127 + 7 - e) << 23);  // 2^(7-e)
    float r[8] = {v0.x * sc, v0.y * sc, v0.z * sc, v0.w * sc, v1.x * sc, v1.y * sc, v1.z * sc, v1.w * sc};
    e4m3_limbs(r, frag + blk * 16 + q);
    if (q == 0)
#pragma unroll
      for (int c = 0; c < 4; ++c) fsc[blk * 4 + c] = uint32_t(127 + e - 7 - 4 * c);  // in [8, 247]
  }
}

// sum over the slice's blocks of (W_blk x 2^(s-127)) . x_blk for rows g (acc0) and g + 8 (acc1) in lanes t = 0: the
// block-scaled MMA accumulates in d; limbs 0, 1 are lane t = 0's columns, 2, 3 lane t = 1's (the caller adds them).
__device__ __forceinline__ void mxf8_tile_mma(const uint8_t* rows, int stride, const uint8_t* sc0, const uint8_t* sc1,
                                              const uint2* frag, const uint32_t* fsc, int nb, int lane, float& acc0,
                                              float& acc1) {
  const int g = lane >> 2, t = lane & 3;
  const uint8_t* arow = rows + (lane & 15) * stride;  // ldmatrix.x2: lanes 0-15 give rows 0-15
  const uint2* fr = frag + (g & 3) * 4 + t;            // column g & 3 (a limb), quad t
  const uint32_t* fs = fsc + (g & 3);                  // lanes 4n give column n's scale: limb n & 3
  const uint8_t* sa = t & 1 ? sc1 : sc0;               // lanes 4r give row r's scale, 4r + 1 row r + 8's
  float d[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll 4
  for (int blk = 0; blk < nb; ++blk) {
    uint32_t w0, w1;
    ldsm_x2(w0, w1, arow + blk * 16);
    const uint2 xf = fr[blk * 16];
    // low nibbles (values 8t + 2j at k = 4t + j) and high ones (8t + 2j + 1 at k = 16 + 4t + j), as fp8_tile_mma
    const uint32_t a[4] = {(w0 << 2) & 0x3C3C3C3Cu, (w1 << 2) & 0x3C3C3C3Cu, (w0 >> 2) & 0x3C3C3C3Cu, (w1 >> 2) & 0x3C3C3C3Cu};
    mma_mxf8f6f4_e2m1_e4m3(d, a, xf.x, xf.y, sa[blk], fs[blk * 4]);
  }
  acc0 = d[0] + d[1];
  acc1 = d[2] + d[3];
}
#endif  // GPTOSS_HAVE_FP8_MMA

// kStages: 3, or 2 where 3 do not fit the device's shared memory (sm_86/89/120: 99 KB a block).
// kMx: MmaMxf8 (block-scaled MMA, per-block activation exponents; mxf8_build_frags / mxf8_tile_mma).
template <bool kDown, int kStages, bool kMx = false>
__global__ void __launch_bounds__(kFp8Warps * 32, 2) moe_fp8_stream_kernel(MoeArgs a, float* act, float* part) {
#if defined(GPTOSS_HAVE_FP8_MMA)
  extern __shared__ __align__(16) uint8_t smem[];
  __shared__ float red[2][kFp8Warps][kTileRows];
  const int rows_total = kDown ? a.H : 2 * a.I, nch = (kDown ? a.I : a.H) / 32;
  const int tiles = (rows_total + kTileRows - 1) / kTileRows, units = a.n * a.k * tiles;
  const int u0 = int(int64_t(units) * blockIdx.x / gridDim.x), u1 = int(int64_t(units) * (blockIdx.x + 1) / gridDim.x);
  const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
  const int per = fp8_per(nch), stride = row_stride(per);
  const int b0 = warp * nch / kFp8Warps, nb = (warp + 1) * nch / kFp8Warps - b0;  // balanced; may be 0
  uint8_t* wsm = smem + warp * (kMx ? mxf8_warp_bytes(per, kStages) : fp8_warp_bytes(per, kStages));
  uint2* frag = reinterpret_cast<uint2*>(wsm + kStages * fp8_stage_bytes(per));
  uint32_t* fsc = reinterpret_cast<uint32_t*>(frag + per * 16);  // kMx: the limbs' scale bytes [block][limb]
  const int64_t wexp = int64_t(rows_total) * nch;  // MX blocks (and scale bytes) an expert
  const uint8_t* wbase = kDown ? a.down : a.gate_up;
  const uint8_t* sbase = kDown ? a.down_scales : a.gate_up_scales;
  // The unit issue() loads next: (pair, tile) walked without divisions.
  int ipair = u0 / tiles, itile = u0 - ipair * tiles, islot = 0;
  auto issue = [&](int u) {
    if (u < u1) {
      const int e = a.expert_idx[ipair];
      if (nb > 0 && e >= 0 && e < a.E) {
        const int64_t first = e * wexp + int64_t(itile) * kTileRows * nch + b0;  // row 0 of the tile, block b0
        fp8_issue(wbase + first * 16, sbase + first, nch, rows_total - itile * kTileRows, nb, per,
                  wsm + islot * fp8_stage_bytes(per), lane);
      } else {
        cp_async_commit();
      }
      if (++itile == tiles) itile = 0, ++ipair;
    } else {
      cp_async_commit();  // keep one group a unit
    }
    islot = islot + 1 == kStages ? 0 : islot + 1;
  };
  // gate_up: the expert indices are the previous kernel's (the router's) output. down: they are two
  // launches back, so its first stages load before the wait; act is gate_up's output.
  if (!kDown) {
    pdl_wait();
    pdl_launch_dependents();
  }
#pragma unroll
  for (int i = 0; i < kStages - 1; ++i) issue(u0 + i);
  if (kDown) {
    pdl_wait();
    pdl_launch_dependents();
  }
  int pair = u0 / tiles, tile = u0 - pair * tiles, slot = 0, frag_key = -1, xe = 0;
  for (int u = u0; u < u1; ++u) {
    __syncwarp();  // every lane is done with the slot issue() refills (unit u - 1's)
    issue(u + kStages - 1);
    cp_async_wait<kStages - 1>();
    __syncwarp();
    const int upair = pair, utile = tile;  // this unit (pair, tile move on before the epilogue)
    const int tok = pair / a.k, row0 = tile * kTileRows;
    const int e = a.expert_idx[pair];
    const bool valid = e >= 0 && e < a.E;
    // warp 0's epilogue operands, read before the MMAs
    const int rr = row0 + lane;
    const bool erow = warp == 0 && lane < kTileRows && rr < rows_total && valid;
    const float bias = erow ? param_f32(kDown ? a.down_bias : a.gate_up_bias, kDown ? a.down_bias_bf16 : a.gate_up_bias_bf16,
                                        int64_t(e) * rows_total + rr)
                            : 0.f;
    const float route_w = kDown && erow ? a.expert_weight[pair] : 0.f;
    float acc0 = 0.f, acc1 = 0.f;
    if (valid && nb > 0) {
      const int key = kDown ? pair : tok;
      if (key != frag_key) {
        const float* xv = kDown ? act + int64_t(pair) * a.I : a.x + int64_t(tok) * a.H;
        if constexpr (kMx) mxf8_build_frags(xv, b0, nb, frag, fsc, lane);
        else xe = fp8_build_frags(xv, nch, b0, nb, frag, lane);
        __syncwarp();
        frag_key = key;
      }
      const uint8_t* st = wsm + slot * fp8_stage_bytes(per);
      const uint8_t* win = st + kTileRows * stride;
      const uint8_t* srow = sbase + e * wexp + int64_t(row0) * nch + b0;  // scale byte of row row0, block b0
      const int g = lane >> 2, last = rows_total - 1 - row0;
      const uint8_t* sc0 = win + g * kScaleWin + (reinterpret_cast<uintptr_t>(srow + int64_t(min(g, last)) * nch) & 15);
      const uint8_t* sc1 = win + (g + 8) * kScaleWin + (reinterpret_cast<uintptr_t>(srow + int64_t(min(g + 8, last)) * nch) & 15);
      if constexpr (kMx) {
        mxf8_tile_mma(st, stride, sc0, sc1, frag, fsc, nb, lane, acc0, acc1);
        acc0 += __shfl_down_sync(0xffffffffu, acc0, 1);  // limbs 2, 3 (lanes t = 1), each weighted by its scale
        acc1 += __shfl_down_sync(0xffffffffu, acc1, 1);
      } else {
        fp8_tile_mma(st, stride, sc0, sc1, frag, nb, lane, acc0, acc1);
        // limbs 2, 3 (lanes t = 1) meet limbs 0, 1 (t = 0); then undo 2^(7-e) and E2M1's 2^-6
        acc0 += __shfl_down_sync(0xffffffffu, acc0, 1) * 0x1p-8f;
        acc1 += __shfl_down_sync(0xffffffffu, acc1, 1) * 0x1p-8f;
        const float undo = __uint_as_float(uint32_t(127 + min(xe, 127) - 1) << 23);  // 2^(e-1), e >= -100
        acc0 *= undo;
        acc1 *= undo;
      }
    }
    if ((lane & 3) == 0) {
      red[u & 1][warp][lane >> 2] = acc0;
      red[u & 1][warp][(lane >> 2) + 8] = acc1;
    }
    if (++slot == kStages) slot = 0;
    if (++tile == tiles) tile = 0, ++pair;
    __syncthreads();  // red[u & 1] is rewritten at u + 2, after the next unit's barrier
    if (warp != 0) continue;
    float v = bias;
    if (lane < kTileRows)
      for (int w = 0; w < kFp8Warps; ++w) v += red[u & 1][w][lane];  // warp order: deterministic
    unit_epilogue<kDown>(a, act, part, v, route_w, valid, upair, tok, row0, utile, tiles, rows_total, lane);
  }
  cp_async_wait<0>();
#else
  GPTOSS_NO_DEVICE_CODE("e4m3 mma.sync (sm_89+)");
#endif
}

// Opt in to more than 48 KB where needed, and ask for the largest shared-memory carveout (the
// driver otherwise may pick a smaller split than the 5-6 CTAs a SM these kernels are sized for).
// Both are attributes of the kernel on the current device: remembered per device (launcher_slot).
template <typename K>
void allow_smem(K kernel, int bytes) {
  std::atomic<int>& have = launcher_slot(kernel);
  const int had = have.load(std::memory_order_relaxed);
  if (had == 0) GPTOSS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
  if (bytes > 48 * 1024 && bytes > had) {
    GPTOSS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    have.store(bytes, std::memory_order_relaxed);
  } else if (had == 0) {
    have.store(1, std::memory_order_relaxed);
  }
}

template <bool kSub, bool kRelaid = false, int kAblate = 0, bool kActFrag = false>
void launch_variant(const MoeArgs& a, float* act, float* part, cudaStream_t stream) {
  const int s1 = cta_smem(a.H / 32), s2 = cta_smem(a.I / 32);
  allow_smem(moe_mma_gate_up_kernel<kSub, kRelaid, kAblate, kActFrag>, s1);
  allow_smem(moe_mma_down_kernel<kSub, kRelaid, kAblate, kActFrag>, s2);
  dim3 g1(ceil_div(2 * a.I, kTileRows), a.n * a.k);
  launch_k(moe_mma_gate_up_kernel<kSub, kRelaid, kAblate, kActFrag>, g1, slice_shape(a.H / 32, a.slice_blocks).slices * 32, s1, stream, a, act);
  GPTOSS_CUDA_LAUNCH("moe_mma_gate_up_kernel");
  dim3 g2(ceil_div(a.H, kTileRows), a.n * a.k);
  launch_k(moe_mma_down_kernel<kSub, kRelaid, kAblate, kActFrag>, g2, slice_shape(a.I / 32, a.slice_blocks).slices * 32, s2, stream, a, act, part);
  GPTOSS_CUDA_LAUNCH("moe_mma_down_kernel");
}


// The staged ring's grid: GPTOSS_CUDA_MOE_STAGED_CTAS, else every CTA that fits the device at once (persistent).
template <typename K>
int staged_grid(K kernel, int threads, int smem, int units) {
  int ctas = knobs().moe_staged_ctas;
  if (ctas == 0) {
    int per_sm = 0;
    GPTOSS_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem));
    ctas = std::max(per_sm, 1) * current_caps().sm_count;
  }
  return std::max(1, std::min(units, ctas));
}

template <int kSlots>
void launch_staged(const MoeArgs& a, float* act, float* part, cudaStream_t stream) {
  const int nh = a.H / 32, ni = a.I / 32, pairs = a.n * a.k;
  const int t1 = slice_shape(nh, kMoeStagedPer).slices * 32, t2 = slice_shape(ni, kMoeStagedPer).slices * 32;
  const int s1 = staged_cta_smem(nh, kSlots), s2 = staged_cta_smem(ni, kSlots);
  allow_smem(moe_staged_kernel<false, kSlots>, s1);
  allow_smem(moe_staged_kernel<true, kSlots>, s2);
  const int g1 = staged_grid(moe_staged_kernel<false, kSlots>, t1, s1, pairs * (2 * a.I / kTileRows));
  launch_k(moe_staged_kernel<false, kSlots>, dim3(g1), t1, s1, stream, a, act, part);
  GPTOSS_CUDA_LAUNCH("moe_staged_kernel<gate_up>");
  const int g2 = staged_grid(moe_staged_kernel<true, kSlots>, t2, s2, pairs * (a.H / kTileRows));
  launch_k(moe_staged_kernel<true, kSlots>, dim3(g2), t2, s2, stream, a, act, part);
  GPTOSS_CUDA_LAUNCH("moe_staged_kernel<down>");
}

// ---------------------------------------------------------------------------------------------
// Grouped decode MoE (a batched step's few tokens an expert: MoeDecodeKind's neighbour MoeGroupedKind
// GroupedMma, policy.h). The routing is grouped as for the GEMM tile (count, scan, scatter: each
// expert's (token, expert) pairs in contiguous slots) and split into groups of at most 4 (or 8) pairs of
// one expert; a CTA owns one 16-row tile of one group, so an expert's weights are read
// once for up to 4 tokens. The MMA's 8 B columns hold the 4 tokens' (hi, lo) halves: column 2j + h
// = token j's half h, so lane (g, t) of the C fragment accumulates token t's rows g and g + 8 (the
// sum c0 + c1 of the one-token kernels, now a token a lane quad). Everything else is the one-token
// kernels' code (slices, scales, bit-placed E2M1); the outputs go to act [slot, I] and y [slot, H]
// (bias in, routing weight not), which moe.cu's unpermute sums per token in expert order.
// ---------------------------------------------------------------------------------------------
// kGT = 4 or 8 tokens a group: with 8, two MMAs a block share each decoded weight fragment (B set 0 =
// tokens 0-3, set 1 = tokens 4-7), lane (g, t) accumulating tokens t and 4 + t.

// Which group grid row `y` is: expert e, its first slot, its pairs (<= kGT). false past the last.
template <int kGT>
__device__ __forceinline__ bool group_of(const MoeGroups& gr, int E, int y, int& e, int& slot0, int& count) {
  if (y >= gr.tile_start[E]) return false;
  int lo = 0, hi = E - 1;  // last e with tile_start[e] <= y
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (gr.tile_start[mid] <= y) lo = mid; else hi = mid - 1;
  }
  e = lo;
  slot0 = gr.group_start[e] + (y - gr.tile_start[e]) * kGT;
  count = min(kGT, gr.group_start[e + 1] - slot0);
  return true;
}

#if defined(GPTOSS_HAVE_MMA_SYNC)
// tile_mma for kSets B column sets: acc[s][0..1] = rows g, g + 8 of token 4 s + t. fr[s]: this lane's
// fragments of set s (token 4 s + g / 2's hi or lo, clamped to valid data).
template <bool kSub, int kSets>
__device__ __forceinline__ void tile_mma_sets(const SliceRef& r, const uint8_t* rows, const uint8_t* sc0, const uint8_t* sc1,
                                              const uint4* const (&fr)[kSets], float (&acc)[kSets][2]) {
  const uint8_t* arow = rows + (r.lane & 15) * r.stride();
  float a[kSets][2] = {};
#pragma unroll 2
  for (int blk = 0; blk < r.nb; ++blk) {
    uint32_t w0, w1;
    ldsm_x2(w0, w1, arow + blk * 16);
    uint32_t p0[4], p1[4];
    decode_word<kSub>(w0, p0);
    decode_word<kSub>(w1, p1);
    const uint32_t m0[4] = {p0[0], p1[0], p0[1], p1[1]};
    const uint32_t m1[4] = {p0[2], p1[2], p0[3], p1[3]};
    const float s0 = stored_scale<kSub>(sc0[blk]), s1 = stored_scale<kSub>(sc1[blk]);
#pragma unroll
    for (int q = 0; q < kSets; ++q) {
      const uint4 xf = fr[q][blk * 8];
      float c[4];
      mma_first(c, m0, xf.x, xf.y);
      const uint32_t bb[2] = {xf.z, xf.w};
      mma_bf16_16816(c, m1, bb);
      a[q][0] = fmaf(s0, c[0] + c[1], a[q][0]);
      a[q][1] = fmaf(s1, c[2] + c[3], a[q][1]);
    }
  }
#pragma unroll
  for (int q = 0; q < kSets; ++q) {
    acc[q][0] = a[q][0];
    acc[q][1] = a[q][1];
  }
}
#endif

// slice_gemv for a group: the 16 rows' slice once, B fragments per token ([token][block][8] uint4).
template <bool kSub, int kGT>
__device__ __forceinline__ void slice_gemv_group(const uint8_t* w, const uint8_t* s, const float* const (&xs)[kGT], int count,
                                                 int nch, int rows_total, int row0, int b0, int nb, int per, uint8_t* wsm,
                                                 int lane, bool wait_mid, float (&acc)[kGT / 4][2]) {
#if defined(GPTOSS_HAVE_MMA_SYNC)
  constexpr int kSets = kGT / 4;
  const SliceRef r{nch, rows_total, b0, nb, per, lane};
  uint8_t* rows = wsm;
  uint8_t* sc = wsm + kTileRows * r.stride();
  uint4* frag = reinterpret_cast<uint4*>(wsm + rows_bytes(per));
  issue_rows(r, w, row0, rows);
  uint32_t sv[kTileRows];
  load_scales(r, s, row0, sv);
  if (wait_mid) {
    pdl_wait();
    pdl_launch_dependents();
  }
#pragma unroll
  for (int j = 0; j < kGT; ++j)
    if (j < count) build_frags<kSub>(r, xs[j], frag + j * per * 8);
  store_scales<kSub>(r, sv, sc);
  cp_async_wait<0>();
  __syncwarp();
  const int g = lane >> 2, t = lane & 3;
  const uint4* fr[kSets];
#pragma unroll
  for (int q = 0; q < kSets; ++q) fr[q] = frag + min(4 * q + (g >> 1), count - 1) * per * 8 + (g & 1) * 4 + t;
  tile_mma_sets<kSub, kSets>(r, rows, sc + g * per, sc + (g + 8) * per, fr, acc);
#endif
}

// The group's row sums over the CTA's K slices, in slice order: sums[j][row] for token j < count.
template <int kGT>
__device__ __forceinline__ void group_rows_sum(const float (&acc)[kGT / 4][2], int slices, int count,
                                               float (*red)[kGT][kTileRows], float (*sums)[kTileRows]) {
  const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE, t = lane & 3;
#pragma unroll
  for (int q = 0; q < kGT / 4; ++q)
    if (4 * q + t < count) {
      red[warp][4 * q + t][lane >> 2] = acc[q][0];
      red[warp][4 * q + t][(lane >> 2) + 8] = acc[q][1];
    }
  __syncthreads();
  for (int i = threadIdx.x; i < count * kTileRows; i += blockDim.x) {
    float v = 0.f;
    for (int wi = 0; wi < slices; ++wi) v += red[wi][i / kTileRows][i % kTileRows];
    sums[i / kTileRows][i % kTileRows] = v;
  }
  __syncthreads();
}

// grid (groups bound, ceil(2I / 16)): the groups of a row tile run side by side, so an expert's other
// groups read that tile from L2. One warp per K slice of H: act[slot, I] = SwiGLU(gate_up x + bias).
template <bool kSub, int kGT>
__global__ void __launch_bounds__(kMaxWarps * 32) moe_group_gate_up_kernel(MoeArgs a, MoeGroups gr, float* act) {
#if defined(GPTOSS_HAVE_MMA_SYNC)
  extern __shared__ __align__(16) uint8_t smem[];
  __shared__ float red[kMaxWarps][kGT][kTileRows];
  __shared__ float rowv[kGT][kTileRows];
  pdl_wait();  // the groups are the scatter's output
  pdl_launch_dependents();
  int e = 0, slot0 = 0, count = 0;
  if (!group_of<kGT>(gr, a.E, int(blockIdx.x), e, slot0, count)) return;
  const int rows_total = 2 * a.I, nch = a.H / 32, row0 = blockIdx.y * kTileRows;
  const SliceShape sh = slice_shape(nch, a.slice_blocks);
  const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
  const int b0 = warp * sh.per, nb = min(sh.per, nch - b0);
  const float* xs[kGT];
#pragma unroll
  for (int j = 0; j < kGT; ++j) xs[j] = a.x + int64_t(gr.perm_token[slot0 + min(j, count - 1)]) * a.H;
  float acc[kGT / 4][2] = {};
  if (nb > 0)
    slice_gemv_group<kSub, kGT>(a.gate_up + int64_t(e) * rows_total * nch * 16, a.gate_up_scales + int64_t(e) * rows_total * nch,
                                xs, count, nch, rows_total, row0, b0, nb, sh.per, smem + warp * group_warp_bytes(sh.per, kGT), lane,
                                false, acc);
  group_rows_sum<kGT>(acc, sh.slices, count, red, rowv);
  // rows 2q (gate) and 2q + 1 (up) are interleaved
  for (int i = threadIdx.x; i < count * (kTileRows / 2); i += blockDim.x) {
    const int j = i / (kTileRows / 2), q = i % (kTileRows / 2), jj = row0 / 2 + q;
    if (2 * jj + 1 < rows_total) {
      const float gb = param_f32(a.gate_up_bias, a.gate_up_bias_bf16, int64_t(e) * rows_total + 2 * jj);
      const float ub = param_f32(a.gate_up_bias, a.gate_up_bias_bf16, int64_t(e) * rows_total + 2 * jj + 1);
      act[int64_t(slot0 + j) * a.I + jj] = swiglu(rowv[j][2 * q] + gb, rowv[j][2 * q + 1] + ub, a.limit, a.alpha);
    }
  }
#else
  GPTOSS_NO_DEVICE_CODE("bf16 mma.sync (sm_80+)");
#endif
}

// grid (groups bound, ceil(H / 16)), one warp per K slice of I: y[slot, H] = down act + bias.
template <bool kSub, int kGT>
__global__ void __launch_bounds__(kMaxWarps * 32) moe_group_down_kernel(MoeArgs a, MoeGroups gr, const float* act, float* y) {
#if defined(GPTOSS_HAVE_MMA_SYNC)
  extern __shared__ __align__(16) uint8_t smem[];
  __shared__ float red[kMaxWarps][kGT][kTileRows];
  __shared__ float rowv[kGT][kTileRows];
  int e = 0, slot0 = 0, count = 0;
  // The groups (two kernels back) are final here; gate_up's act is not until pdl_wait (in the slice).
  if (!group_of<kGT>(gr, a.E, int(blockIdx.x), e, slot0, count)) {
    pdl_wait();
    pdl_launch_dependents();
    return;
  }
  const int nch = a.I / 32, row0 = blockIdx.y * kTileRows;
  const SliceShape sh = slice_shape(nch, a.slice_blocks);
  const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
  const int b0 = warp * sh.per, nb = min(sh.per, nch - b0);
  const float* xs[kGT];
#pragma unroll
  for (int j = 0; j < kGT; ++j) xs[j] = act + int64_t(slot0 + min(j, count - 1)) * a.I;
  float acc[kGT / 4][2] = {};
  if (nb > 0) {
    slice_gemv_group<kSub, kGT>(a.down + int64_t(e) * a.H * nch * 16, a.down_scales + int64_t(e) * a.H * nch, xs, count, nch,
                                a.H, row0, b0, nb, sh.per, smem + warp * group_warp_bytes(sh.per, kGT), lane, true, acc);
  } else {
    pdl_wait();
    pdl_launch_dependents();
  }
  group_rows_sum<kGT>(acc, sh.slices, count, red, rowv);
  for (int i = threadIdx.x; i < count * kTileRows; i += blockDim.x) {
    const int j = i / kTileRows, r = row0 + i % kTileRows;
    if (r < a.H) y[int64_t(slot0 + j) * a.H + r] = rowv[j][i % kTileRows] + param_f32(a.down_bias, a.down_bias_bf16, int64_t(e) * a.H + r);
  }
#else
  GPTOSS_NO_DEVICE_CODE("bf16 mma.sync (sm_80+)");
#endif
}

template <int kGT>
void launch_group(const MoeArgs& a, const MoeGroups& gr, float* act, float* y, cudaStream_t stream) {
  const SliceShape s_h = slice_shape(a.H / 32, a.slice_blocks), s_i = slice_shape(a.I / 32, a.slice_blocks);
  const int s1 = s_h.slices * group_warp_bytes(s_h.per, kGT), s2 = s_i.slices * group_warp_bytes(s_i.per, kGT);
  allow_smem(moe_group_gate_up_kernel<true, kGT>, s1);
  allow_smem(moe_group_down_kernel<true, kGT>, s2);
  launch_k(moe_group_gate_up_kernel<true, kGT>, dim3(gr.max_groups, ceil_div(2 * a.I, kTileRows)), s_h.slices * 32, s1, stream, a, gr, act);
  GPTOSS_CUDA_LAUNCH("moe_group_gate_up_kernel");
  launch_k(moe_group_down_kernel<true, kGT>, dim3(gr.max_groups, ceil_div(a.H, kTileRows)), s_i.slices * 32, s2, stream, a, gr, act, y);
  GPTOSS_CUDA_LAUNCH("moe_group_down_kernel");
}

}  // namespace

template <int kStages, bool kMx = false>
void launch_fp8(const MoeArgs& a, float* act, float* part, cudaStream_t stream) {
  const auto smem = [](int nch) { return kMx ? mxf8_cta_smem(nch, kStages) : fp8_cta_smem(nch, kStages); };
  const int s1 = smem(a.H / 32), s2 = smem(a.I / 32), pairs = a.n * a.k;
  allow_smem(moe_fp8_stream_kernel<false, kStages, kMx>, s1);
  allow_smem(moe_fp8_stream_kernel<true, kStages, kMx>, s2);
  const int ctas = knobs().moe_fp8_ctas * current_caps().sm_count;  // GPTOSS_CUDA_MOE_FP8_CTAS (1 or 2) a SM
  const int units1 = pairs * ceil_div(2 * a.I, kTileRows), units2 = pairs * ceil_div(a.H, kTileRows);
  launch_k(moe_fp8_stream_kernel<false, kStages, kMx>, dim3(std::min(units1, ctas)), kFp8Warps * 32, s1, stream, a, act, part);
  GPTOSS_CUDA_LAUNCH(kMx ? "moe_fp8_stream_kernel<gate_up, mxf8>" : "moe_fp8_stream_kernel<gate_up>");
  launch_k(moe_fp8_stream_kernel<true, kStages, kMx>, dim3(std::min(units2, ctas)), kFp8Warps * 32, s2, stream, a, act, part);
  GPTOSS_CUDA_LAUNCH(kMx ? "moe_fp8_stream_kernel<down, mxf8>" : "moe_fp8_stream_kernel<down>");
}

namespace {
// moe_mxf8_selftest's one warp: rows [16][16 bytes] (packed codes as the checkpoint holds them), scales [16], x [32]
// -> y [16], through mxf8_build_frags and mxf8_tile_mma as the MmaMxf8 kernels call them.
__global__ void mxf8_selftest_kernel(const uint8_t* w, const uint8_t* scales, const float* x, float* y) {
#if defined(GPTOSS_HAVE_FP8_MMA)
  __shared__ __align__(16) uint8_t rows[kTileRows * 16];
  __shared__ uint8_t sc[kTileRows];
  __shared__ __align__(16) uint2 frag[16];
  __shared__ uint32_t fsc[4];
  const int lane = int(threadIdx.x);
  if (lane < kTileRows) {
    reinterpret_cast<uint4*>(rows)[lane] = reinterpret_cast<const uint4*>(w)[lane];
    sc[lane] = scales[lane];
  }
  __syncwarp();
  mxf8_build_frags(x, 0, 1, frag, fsc, lane);
  __syncwarp();
  const int g = lane >> 2;
  float acc0 = 0.f, acc1 = 0.f;
  mxf8_tile_mma(rows, 16, sc + g, sc + g + 8, frag, fsc, 1, lane, acc0, acc1);
  acc0 += __shfl_down_sync(0xffffffffu, acc0, 1);
  acc1 += __shfl_down_sync(0xffffffffu, acc1, 1);
  if ((lane & 3) == 0) {
    y[g] = acc0;
    y[g + 8] = acc1;
  }
#else
  GPTOSS_NO_DEVICE_CODE("e4m3 mma.sync (sm_89+)");
#endif
}

// set_moe_decode_ablation (bench_hooks.h): 0 everywhere but in the kernel bench's ablation rows.
std::atomic<int> moe_decode_ablation{0};
}  // namespace

void set_moe_decode_ablation(int mode) { moe_decode_ablation.store(mode, std::memory_order_relaxed); }

bool moe_mxf8_selftest() {
  // Every code in every row, rows with their own scales (2^-9 .. 2^3), an activation whose blocks' limbs all matter
  // (magnitudes over 2^-6 .. 2^5, both signs), so a layout or scale-lane mistake moves a row by far more than 1e-5.
  uint8_t w[kTileRows * 16], scales[kTileRows];
  float x[32], want[kTileRows], tol[kTileRows];
  static const float kE2m1[16] = {0.f, 0.5f, 1.f, 1.5f, 2.f, 3.f, 4.f, 6.f, -0.f, -0.5f, -1.f, -1.5f, -2.f, -3.f, -4.f, -6.f};
  float xmax = 0.f;
  for (int k = 0; k < 32; ++k) {
    x[k] = float((k * 37) % 29 - 14) * 0.173f * std::ldexp(1.f, (k * 7) % 12 - 6);
    xmax = std::max(xmax, std::fabs(x[k]));
  }
  for (int r = 0; r < kTileRows; ++r) {
    scales[r] = uint8_t(118 + (r * 5) % 13);
    const double s = std::ldexp(1.0, scales[r] - 127);
    double sum = 0, abs_sum = 0, w_sum = 0;
    for (int k = 0; k < 32; ++k) {
      const int code = (r * 11 + k * 7 + (k >> 3) * r) & 15;
      uint8_t& byte = w[r * 16 + k / 2];
      byte = k & 1 ? uint8_t((byte & 0x0F) | (code << 4)) : uint8_t(code);
      sum += double(kE2m1[code]) * s * double(x[k]);
      abs_sum += std::fabs(double(kE2m1[code]) * s * double(x[k]));
      w_sum += std::fabs(double(kE2m1[code])) * s;
    }
    want[r] = float(sum);
    // the four limbs hold x to ~2^-18 of the block's max (2^-15 allowed), plus f32 accumulation; a misplaced operand
    // or scale moves a row by the order of its terms
    tol[r] = float(w_sum * xmax * 0x1p-15 + abs_sum * 1e-6);
  }
  uint8_t* dw = nullptr;
  float* dx = nullptr;
  cudaError_t err = cudaMalloc(&dw, sizeof w + sizeof scales);
  if (err == cudaSuccess) err = cudaMalloc(&dx, sizeof x + sizeof want);
  if (err == cudaSuccess) err = cudaMemcpy(dw, w, sizeof w, cudaMemcpyHostToDevice);
  if (err == cudaSuccess) err = cudaMemcpy(dw + sizeof w, scales, sizeof scales, cudaMemcpyHostToDevice);
  if (err == cudaSuccess) err = cudaMemcpy(dx, x, sizeof x, cudaMemcpyHostToDevice);
  float got[kTileRows];
  if (err == cudaSuccess) {
    mxf8_selftest_kernel<<<1, WARP_SIZE>>>(dw, dw + sizeof w, dx, dx + 32);
    err = cudaGetLastError();
  }
  if (err == cudaSuccess) err = cudaMemcpy(got, dx + 32, sizeof got, cudaMemcpyDeviceToHost);
  if (dw) (void)cudaFree(dw);
  if (dx) (void)cudaFree(dx);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  for (int r = 0; r < kTileRows; ++r)
    if (!(std::fabs(got[r] - want[r]) <= tol[r])) return false;
  return true;
}

void launch_moe_decode_mma(const MoeArgs& args, MoeDecodeKind kind, void* workspace, cudaStream_t stream) {
  MoeArgs a = args;
  a.slice_blocks = slice_target();
  float* act = static_cast<float*>(workspace);
  float* part = act + int64_t(a.n) * a.k * a.I;
  if (kind == MoeDecodeKind::MmaRelaid) {
    if (!a.decode_layout)
      throw type_error("moe: the mma-relaid decode kernel reads experts in the decode layout; these are in the checkpoint's");
    const int ablate = moe_decode_ablation.load(std::memory_order_relaxed);
    const int staged = knobs().moe_staged;  // GPTOSS_CUDA_MOE_STAGED: slots a warp (0: the one-tile kernels)
    if (ablate == 1) launch_variant<true, true, 1>(a, act, part, stream);
    else if (ablate == 2) launch_variant<true, true, 2>(a, act, part, stream);
    else if (staged > 0 && moe_staged_fits(a.H / 32) && moe_staged_fits(a.I / 32) && a.H % kTileRows == 0) {
      if (staged == 3) launch_staged<3>(a, act, part, stream);
      else if (staged == 2) launch_staged<2>(a, act, part, stream);
      else launch_staged<1>(a, act, part, stream);
    }
    else if (knobs().moe_act_frags) launch_variant<true, true, 0, true>(a, act, part, stream);
    else launch_variant<true, true>(a, act, part, stream);
  } else if (a.decode_layout) {
    throw type_error("moe: experts in the decode layout (mxfp4_layout.h) need the mma-relaid decode kernel");
  } else if (kind == MoeDecodeKind::MmaPrmt) launch_variant<false>(a, act, part, stream);
  else if (kind == MoeDecodeKind::MmaFp8) {
    const int stages = moe_fp8_stages(current_caps(), a.H, a.I);  // 3, else 2 where 3 do not fit (99 KB parts)
    if (stages == 3) launch_fp8<3>(a, act, part, stream);
    else if (stages == 2) launch_fp8<2>(a, act, part, stream);
    else throw range_error("moe: the FP8 decode kernels do not fit this device's shared memory (H " + std::to_string(a.H) +
                           ", I " + std::to_string(a.I) + ")");
  } else if (kind == MoeDecodeKind::MmaMxf8) {
    const int stages = moe_mxf8_stages(current_caps(), a.H, a.I);
    if (stages == 3) launch_fp8<3, true>(a, act, part, stream);
    else if (stages == 2) launch_fp8<2, true>(a, act, part, stream);
    else throw range_error("moe: the block-scaled decode kernels do not fit this device's shared memory (H " +
                           std::to_string(a.H) + ", I " + std::to_string(a.I) + ")");
  }
  else launch_variant<true>(a, act, part, stream);
}

// The grouped kernels over groups the caller built (moe.cu: launch_moe_group_mma): act [P, I], y [P, H];
// gr.group_tokens (4 or 8) pairs a group.
void launch_moe_group_kernels(const MoeArgs& args, const MoeGroups& gr, float* act, float* y, cudaStream_t stream) {
  MoeArgs a = args;
  a.slice_blocks = slice_target();
  if (gr.group_tokens == 8) launch_group<8>(a, gr, act, y, stream);
  else if (gr.group_tokens == 4) launch_group<4>(a, gr, act, y, stream);
  else throw range_error("moe: groups of 4 or 8 pairs, got " + std::to_string(gr.group_tokens));
}

}  // namespace gptoss::cuda
