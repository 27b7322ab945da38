// Decode MoE on the tensor cores: the routed experts' MXFP4 rows as the A operand of mma.sync
// m16n8k16 (bf16 in, f32 accumulate), the token's activation as B. Two launches per step:
//   1. gate_up + bias + SwiGLU -> act [pairs, I]   (grid: 64-row groups x (token, expert) pairs)
//   2. down + bias, weighted sum over the k experts -> out [n, H]   (grid: 16-row tiles x tokens)
// Why (bench/RESULTS.md, GPU section): the SIMT kernels decoded E2M1 through a 32 KB per-lane shared
// LUT that each block filled; L1 traffic for the fill matched the weight reads and the kernel ran at
// 18% of copy bandwidth. Here nothing is looked up:
//  - Each warp owns a 16-row tile (the MMA's M) of one expert and streams its rows through a
//    3-stage cp.async ring in shared memory (15 MX blocks a stage; 240-byte rows keep ldmatrix
//    conflict-free). ldmatrix.x2 hands lane (g, t) exactly word t of rows g and g + 8 of an MX block:
//    the A fragment layout, so no shuffles.
//  - E2M1 -> bf16 by bit placement (kSub, the default): sign -> bit 15, the 3 magnitude bits -> bits
//    8..6. The result is the E2M1 value times 2^-126 exactly (±0.5 lands on a bf16 subnormal), 2
//    weights per 4 integer ops, no table. The activation is pre-scaled by 2^64 and the 2^62 left over
//    folds into the E8M0 scale (2^(s-65), exact for scales up to 2^65; larger ones saturate to inf).
//    The alternative (kSub = false, GPTOSS_CUDA_MOE_DECODE=mma-prmt) builds normal bf16 values with
//    prmt byte tables (~2.3 ops a weight) in case a part flushes bf16 subnormals in the MMA.
//  - The f32 activation is split into bf16 hi + lo (x = hi + lo to ~2^-17): B column 0 is hi,
//    column 1 lo, so one MMA gives both products and the row result is c0 + c1 (f32-accurate, as the
//    prefill GEMM tile). B fragments are built once per CTA in shared memory in fragment order.
//  - Per MX block and row: c = A_blk x B_blk (two k16 MMAs), acc += scale * (c0 + c1).
#include "moe.cuh"

#include <cstdlib>
#include <cstring>

namespace gptoss::cuda {

namespace {

constexpr int kMW = 4;                              // warps per CTA
constexpr int kTileRows = 16;                       // rows per warp tile (MMA M)
constexpr int kKC = 15;                             // MX blocks per stage: 240-byte smem rows
constexpr int kStages = 3;
constexpr int kStageBytes = kTileRows * kKC * 16;   // 3840
constexpr int kRowsPerCta1 = kMW * kTileRows;       // gate_up rows per CTA

__host__ __device__ inline int round16(int b) { return (b + 15) / 16 * 16; }
__host__ __device__ inline int warp_smem_bytes(int nch) { return kStages * kStageBytes + round16(kTileRows * nch); }
__host__ __device__ inline int frag_bytes(int nch) { return nch * 2 * 4 * 16; }  // [nch][hi, lo][t][4 words]
int gate_up_smem(const MoeArgs& a) { return frag_bytes(a.H / 32) + kMW * warp_smem_bytes(a.H / 32); }
int down_smem(const MoeArgs& a) { return a.k * frag_bytes(a.I / 32) + kMW * warp_smem_bytes(a.I / 32); }
constexpr int kMaxSmem = 200 * 1024;

#if defined(GPTOSS_HAVE_MMA_SYNC)
__device__ __forceinline__ uint32_t smem_addr(const void* p) { return uint32_t(__cvta_generic_to_shared(p)); }
__device__ __forceinline__ void cp_async16(void* s, const void* g) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(s)), "l"(g) : "memory");
}
__device__ __forceinline__ void cp_async4(void* s, const void* g) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(smem_addr(s)), "l"(g) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void ldsm_x2(uint32_t& r0, uint32_t& r1, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r0), "=r"(r1)
               : "r"(smem_addr(p))
               : "memory");
}
__device__ __forceinline__ uint32_t prmt(uint32_t a, uint32_t b, uint32_t sel) {
  uint32_t r;
  asm("prmt.b32 %0, %1, %2, %3;\n" : "=r"(r) : "r"(a), "r"(b), "r"(sel));
  return r;
}
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
template <bool kSub>
__device__ __forceinline__ void decode_word(uint32_t w, uint32_t p[4]) {
  if (kSub) {
    const uint32_t s0 = w << 6, s1 = w << 2, s2 = w >> 2, s3 = w >> 6;  // code q (and q+4) -> bits 9..6
    p[0] = (s0 & 0x01C001C0u) + (s0 & 0x02000200u) * 64u;             // sign bit 9 -> 15
    p[1] = (s1 & 0x01C001C0u) + (s1 & 0x02000200u) * 64u;
    p[2] = (s2 & 0x01C001C0u) + (s2 & 0x02000200u) * 64u;
    p[3] = (s3 & 0x01C001C0u) + (s3 & 0x02000200u) * 64u;
  } else {
    // bf16 of 0, .5, 1, 1.5, 2, 3, 4, 6: high bytes 00 3F 3F 3F 40 40 40 40, low bytes 00 00 80 C0 00 40 80 C0
    const uint32_t m = w & 0x77777777u, sg = (w >> 3) & 0x11111111u;
    const uint32_t hl = prmt(0x3F3F3F00u, 0x40404040u, m) | prmt(0x00008000u, 0u, sg);
    const uint32_t ll = prmt(0xC0800000u, 0xC0804000u, m);
    const uint32_t hh = prmt(0x3F3F3F00u, 0x40404040u, m >> 16) | prmt(0x00008000u, 0u, sg >> 16);
    const uint32_t lh = prmt(0xC0800000u, 0xC0804000u, m >> 16);
    p[0] = prmt(ll, hl, 0x5140u);
    p[1] = prmt(ll, hl, 0x7362u);
    p[2] = prmt(lh, hh, 0x5140u);
    p[3] = prmt(lh, hh, 0x7362u);
  }
}
// Which two of the word's 8 values pair i holds (must match decode_word).
template <bool kSub>
__device__ __forceinline__ int pair_first(int i) { return kSub ? i : 2 * i; }
template <bool kSub>
__device__ __forceinline__ int pair_second(int i) { return kSub ? i + 4 : 2 * i + 1; }

template <bool kSub>
__device__ __forceinline__ float block_scale(uint32_t s) {
  if (kSub) return __uint_as_float(min(s * 0x00800000u + (62u << 23), 0x7F800000u));  // 2^(s-127) * 2^62
  return __uint_as_float(max(s << 23, 0x00400000u));                                // 2^(s-127); s=0: 2^-127
}

// B fragments of `rows` activation rows (row r at x0 + r * x_stride, nch * 32 f32 each) into
// frag[r][nch][hi/lo][t][4 words], with the whole CTA. Word i of lane t holds values
// 8t + pair_first(i), 8t + pair_second(i) of the block. Loads are batched U deep (L2 round trips,
// not the conversion, are the cost: the first version paid one round trip per item).
template <bool kSub>
__device__ __forceinline__ void build_frags(const float* x0, int64_t x_stride, int rows, int nch, uint4* frag) {
  constexpr int U = 4;
  const float pre = kSub ? 0x1p64f : 1.f;
  const int per_row = nch * 4, total = rows * per_row;
  for (int base = threadIdx.x; base < total; base += U * blockDim.x) {
    float4 f[U][2];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int it = base + u * blockDim.x;
      if (it < total) {
        const int r = it / per_row, rest = it - r * per_row;
        const float4* p = reinterpret_cast<const float4*>(x0 + r * x_stride + (rest >> 2) * 32 + 8 * (rest & 3));
        f[u][0] = __ldg(p);
        f[u][1] = __ldg(p + 1);
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int it = base + u * blockDim.x;
      if (it >= total) break;
      const float v[8] = {f[u][0].x * pre, f[u][0].y * pre, f[u][0].z * pre, f[u][0].w * pre,
                          f[u][1].x * pre, f[u][1].y * pre, f[u][1].z * pre, f[u][1].w * pre};
      uint32_t hi[4], lo[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float va = v[pair_first<kSub>(i)], vb = v[pair_second<kSub>(i)];
        hi[i] = pack_bf16x2(va, vb);
        lo[i] = pack_bf16x2(va - bf16_lo(hi[i]), vb - bf16_hi(hi[i]));
      }
      const int r = it / per_row, rest = it - r * per_row;
      uint4* fr = frag + int64_t(r) * nch * 8 + (rest >> 2) * 8 + (rest & 3);
      fr[0] = make_uint4(hi[0], hi[1], hi[2], hi[3]);
      fr[4] = make_uint4(lo[0], lo[1], lo[2], lo[3]);
    }
  }
}

// One warp's 16-row tile of one expert: rows [row0, row0 + 16) of w (MXFP4 blocks [rows_total, nch, 16],
// scales [rows_total, nch]). start() queues the scales and the first stages (call it before the CTA
// builds B fragments, so the weight reads are already in flight); run() streams the rest and leaves
// sum_b scale * (W_blk . x_blk) for rows g and g + 8 in lanes t = 0 (acc0, acc1).
struct TileGemv {
  const uint8_t* w;
  const uint8_t* s;
  int rows_total, row0, nch, nst;
  uint8_t* ring;
  uint8_t* sc;
  int lane;

  __device__ __forceinline__ void issue(int st) const {
    if (st < nst) {
      uint8_t* dst = ring + (st % kStages) * kStageBytes;
      const int b0 = st * kKC;
      for (int c = lane; c < kTileRows * kKC; c += kWarpSize) {
        const int r = c / kKC, blk = c - r * kKC;
        if (b0 + blk < nch) {
          const int row = min(row0 + r, rows_total - 1);
          cp_async16(dst + c * 16, w + (int64_t(row) * nch + b0 + blk) * 16);
        }
      }
    }
    cp_async_commit();
  }

  __device__ __forceinline__ void start() const {
    const int rows_valid = min(kTileRows, rows_total - row0);
    const int bytes = rows_valid * nch;
    const uint8_t* src = s + int64_t(row0) * nch;
    if (((reinterpret_cast<uintptr_t>(src) | uintptr_t(bytes)) & 3) == 0) {
      for (int i = lane * 4; i < bytes; i += kWarpSize * 4) cp_async4(sc + i, src + i);
    } else {
      for (int i = lane; i < bytes; i += kWarpSize) sc[i] = src[i];
    }
#pragma unroll
    for (int st = 0; st < kStages - 1; ++st) issue(st);  // the scales ride in group 0
  }

  template <bool kSub>
  __device__ __forceinline__ void run(const uint4* frag, float& acc0, float& acc1) const {
    const int g = lane >> 2, t = lane & 3;
    const uint8_t* arow = ring + (lane & 15) * (kKC * 16);  // ldmatrix.x2: lanes 0-15 give rows 0-15
    const uint8_t* sc0 = sc + g * nch;
    const uint8_t* sc1 = sc + (g + 8) * nch;
    const uint4* fr = frag + (g & 1) * 4 + t;  // columns 0 (hi) and 1 (lo); other columns repeat them
    acc0 = 0.f;
    acc1 = 0.f;
    for (int st = 0; st < nst; ++st) {
      issue(st + kStages - 1);
      cp_async_wait<kStages - 1>();
      __syncwarp();
      const uint8_t* buf = arow + (st % kStages) * kStageBytes;
      const int b0 = st * kKC;
      const int kc = min(kKC, nch - b0);
#pragma unroll 3
      for (int blk = 0; blk < kc; ++blk) {
        uint32_t w0, w1;
        ldsm_x2(w0, w1, buf + blk * 16);
        const int b = b0 + blk;
        const uint4 xf = fr[b * 8];
        uint32_t p0[4], p1[4];
        decode_word<kSub>(w0, p0);
        decode_word<kSub>(w1, p1);
        float c[4];
        const uint32_t a0[4] = {p0[0], p1[0], p0[1], p1[1]};
        mma_first(c, a0, xf.x, xf.y);
        const uint32_t a1[4] = {p0[2], p1[2], p0[3], p1[3]};
        const uint32_t bb[2] = {xf.z, xf.w};
        mma_bf16_16816(c, a1, bb);
        acc0 = fmaf(block_scale<kSub>(sc0[b]), c[0] + c[1], acc0);
        acc1 = fmaf(block_scale<kSub>(sc1[b]), c[2] + c[3], acc1);
      }
      __syncwarp();
    }
    cp_async_wait<0>();
    __syncwarp();
  }
};
#endif  // GPTOSS_HAVE_MMA_SYNC

__device__ __forceinline__ float param_at(const void* p, bool bf16, int64_t i) {
  return bf16 ? bf16_bits_to_f32(static_cast<const uint16_t*>(p)[i]) : static_cast<const float*>(p)[i];
}
__device__ __forceinline__ float swiglu_act(float gate, float up, float limit, float alpha) {
  gate = fminf(gate, limit);
  up = fminf(fmaxf(up, -limit), limit);
  return (up + 1.f) * (gate / (1.f + expf(-alpha * gate)));
}

// Stage 1. grid (ceil(2I / 64), pairs), 4 warps; warp w owns rows [64 bx + 16 w, +16) of expert e(pair).
template <bool kSub>
__global__ void __launch_bounds__(kMW * 32) moe_mma_gate_up_kernel(MoeArgs a, float* act) {
#if defined(GPTOSS_HAVE_MMA_SYNC)
  extern __shared__ __align__(16) uint8_t smem[];
  const int pair = blockIdx.y, tok = pair / a.k;
  const int e = a.expert_idx[pair];
  const int rows_total = 2 * a.I, nch = a.H / 32;
  if (e < 0 || e >= a.E) {  // flagged; this pair contributes zeros
    if (threadIdx.x == 0) atomicOr(a.err, kErrExpertRange);
    const int j = blockIdx.x * (kRowsPerCta1 / 2) + threadIdx.x;
    if (threadIdx.x < kRowsPerCta1 / 2 && j < a.I) act[int64_t(pair) * a.I + j] = 0.f;
    return;
  }
  uint4* frag = reinterpret_cast<uint4*>(smem);
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  uint8_t* wsm = smem + frag_bytes(nch) + warp * warp_smem_bytes(nch);
  TileGemv tg;
  tg.w = a.gate_up + int64_t(e) * rows_total * nch * 16;
  tg.s = a.gate_up_scales + int64_t(e) * rows_total * nch;
  tg.rows_total = rows_total;
  tg.row0 = blockIdx.x * kRowsPerCta1 + warp * kTileRows;
  tg.nch = nch;
  tg.nst = (nch + kKC - 1) / kKC;
  tg.ring = wsm;
  tg.sc = wsm + kStages * kStageBytes;
  tg.lane = lane;
  const bool active = tg.row0 < rows_total;
  if (active) tg.start();
  build_frags<kSub>(a.x + int64_t(tok) * a.H, 0, 1, nch, frag);
  __syncthreads();
  if (!active) return;
  float acc0, acc1;
  tg.run<kSub>(frag, acc0, acc1);
  const int g = lane >> 2, t = lane & 3;
  const int r0 = tg.row0 + g, r1 = r0 + 8;
  const int64_t bias0 = int64_t(e) * rows_total;
  float v0 = acc0 + (r0 < rows_total ? param_at(a.gate_up_bias, a.gate_up_bias_bf16, bias0 + r0) : 0.f);
  float v1 = acc1 + (r1 < rows_total ? param_at(a.gate_up_bias, a.gate_up_bias_bf16, bias0 + r1) : 0.f);
  const float u0 = __shfl_down_sync(0xffffffffu, v0, 4);  // odd row (up) of the pair, from lane g + 1
  const float u1 = __shfl_down_sync(0xffffffffu, v1, 4);
  if (t == 0 && (g & 1) == 0) {
    float* o = act + int64_t(pair) * a.I;
    if (r0 < rows_total) o[r0 / 2] = swiglu_act(v0, u0, a.limit, a.alpha);
    if (r1 < rows_total) o[r1 / 2] = swiglu_act(v1, u1, a.limit, a.alpha);
  }
#endif
}

// Stage 2. grid (ceil(H / 16), n), 4 warps; warp w handles experts j = w, w + 4, ... of token
// blockIdx.y for output rows [16 bx, +16); the warps' weighted partials are summed in a fixed order.
template <bool kSub>
__global__ void __launch_bounds__(kMW * 32) moe_mma_down_kernel(MoeArgs a, const float* act) {
#if defined(GPTOSS_HAVE_MMA_SYNC)
  extern __shared__ __align__(16) uint8_t smem[];
  __shared__ float red[kMW][kTileRows];
  const int tok = blockIdx.y, nch = a.I / 32;
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  const int g = lane >> 2, t = lane & 3;
  uint4* frag = reinterpret_cast<uint4*>(smem);  // [k][nch * 8]
  uint8_t* wsm = smem + a.k * frag_bytes(nch) + warp * warp_smem_bytes(nch);
  TileGemv tg;
  tg.rows_total = a.H;
  tg.row0 = blockIdx.x * kTileRows;
  tg.nch = nch;
  tg.nst = (nch + kKC - 1) / kKC;
  tg.ring = wsm;
  tg.sc = wsm + kStages * kStageBytes;
  tg.lane = lane;
  auto expert_of = [&](int j) { return a.expert_idx[int64_t(tok) * a.k + j]; };
  auto bind = [&](int e) {
    tg.w = a.down + int64_t(e) * a.H * nch * 16;
    tg.s = a.down_scales + int64_t(e) * a.H * nch;
  };
  // first valid expert of this warp: its stages go in flight before the fragments are built
  int j = warp;
  while (j < a.k && (expert_of(j) < 0 || expert_of(j) >= a.E)) j += kMW;
  if (j < a.k) {
    bind(expert_of(j));
    tg.start();
  }
  build_frags<kSub>(act + int64_t(tok) * a.k * a.I, a.I, a.k, nch, frag);
  __syncthreads();
  float part0 = 0.f, part1 = 0.f;
  const int r0 = tg.row0 + g, r1 = r0 + 8;
  while (j < a.k) {
    const int e = expert_of(j);
    float acc0, acc1;
    tg.run<kSub>(frag + j * nch * 8, acc0, acc1);
    const float wt = a.expert_weight[int64_t(tok) * a.k + j];
    const int64_t b0 = int64_t(e) * a.H;
    if (r0 < a.H) part0 = fmaf(wt, acc0 + param_at(a.down_bias, a.down_bias_bf16, b0 + r0), part0);
    if (r1 < a.H) part1 = fmaf(wt, acc1 + param_at(a.down_bias, a.down_bias_bf16, b0 + r1), part1);
    j += kMW;
    while (j < a.k && (expert_of(j) < 0 || expert_of(j) >= a.E)) j += kMW;
    if (j < a.k) {
      bind(expert_of(j));
      tg.start();
    }
  }
  if (t == 0) {
    red[warp][g] = part0;
    red[warp][g + 8] = part1;
  }
  __syncthreads();
  if (threadIdx.x < kTileRows && tg.row0 + int(threadIdx.x) < a.H) {
    float s = 0.f;
#pragma unroll
    for (int w = 0; w < kMW; ++w) s += red[w][threadIdx.x];
    a.out[int64_t(tok) * a.H + tg.row0 + threadIdx.x] = s;
  }
#endif
}

template <typename K>
void allow_smem(K kernel, int bytes, int& have) {
  if (bytes > 48 * 1024 && bytes > have) {
    GPTOSS_CUDA_CHECK(gpuFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    have = bytes;
  }
}

template <bool kSub>
void launch_variant(const MoeArgs& a, float* act, gpuStream_t stream) {
  static int have1 = 0, have2 = 0;
  const int s1 = gate_up_smem(a), s2 = down_smem(a);
  allow_smem(moe_mma_gate_up_kernel<kSub>, s1, have1);
  allow_smem(moe_mma_down_kernel<kSub>, s2, have2);
  dim3 g1(ceil_div(2 * a.I, kRowsPerCta1), a.n * a.k);
  moe_mma_gate_up_kernel<kSub><<<g1, kMW * 32, s1, stream>>>(a, act);
  GPTOSS_CUDA_LAUNCH("moe_mma_gate_up_kernel");
  dim3 g2(ceil_div(a.H, kTileRows), a.n);
  moe_mma_down_kernel<kSub><<<g2, kMW * 32, s2, stream>>>(a, act);
  GPTOSS_CUDA_LAUNCH("moe_mma_down_kernel");
}

}  // namespace

MoeDecodeKind moe_decode_kind(const MoeArgs& a) {
  const char* v = std::getenv("GPTOSS_CUDA_MOE_DECODE");
  if (v && !std::strcmp(v, "simt")) return MoeDecodeKind::Simt;
  if (gate_up_smem(a) > kMaxSmem || down_smem(a) > kMaxSmem) return MoeDecodeKind::Simt;
  if (v && !std::strcmp(v, "mma-prmt")) return MoeDecodeKind::MmaPrmt;
  return MoeDecodeKind::Mma;
}

void launch_moe_decode_mma(const MoeArgs& a, bool prmt, void* workspace, gpuStream_t stream) {
  float* act = static_cast<float*>(workspace);
  if (prmt) launch_variant<false>(a, act, stream);
  else launch_variant<true>(a, act, stream);
}

}  // namespace gptoss::cuda
