// Flash attention prefill (D = 64) on AMD matrix cores: AttentionPath::FlashMfma (policy.h picks it
// where GpuCaps says MFMA was compiled), the counterpart of attention.cu's mma.sync flash kernel with
// the same contract (causal + sliding window from device positions, GQA, per-head sink in the
// denominator only, an f16, bf16 or f32 cache (kv.cuh) staged by the same flash_kv_chunk, paged caches
// and planned tiles (AttentionArgs), Q and P split into bf16 hi + lo for f32-grade results) and the
// same grid (64 queries of one head a block).
//
// Layout: block = 2 wavefronts, wave w owns queries 32 w .. 32 w + 31. Everything is computed
// transposed so that a lane owns ONE query (v_mfma_f32_32x32x8bf16_1k, native/hip/mfma.h):
//  - S^T[key][query] = K Q^T: A = K from LDS ([key][d], 4 consecutive d a lane), B = the lane's own
//    query (Q^T column, in registers for the whole kernel); 2 accumulators for 64 keys.
//  - online softmax per query = per lane: a lane holds 32 of its query's 64 scores, lane ^ 32 the
//    other 32, so a row max or sum is the lane's items and one cross-half exchange.
//  - O^T[d][query] += V^T P^T: A = V^T from LDS ([d][key], 4 consecutive keys a lane); B = P^T, which
//    is the S^T accumulator itself: items 4t .. 4t + 3 are exactly k-step t's B operand
//    (mfma::d_item_as_b; checked on the host), so P never leaves registers.
// No AMD GPU has run this kernel yet (README: "compiled, not run").
#include "cuda/attention.cuh"
#include "mfma.h"

namespace gptoss::cuda {

namespace {

using mfma::M32x32x8;

typedef short bf16x4_t __attribute__((ext_vector_type(4)));
typedef float f32x16_t __attribute__((ext_vector_type(16)));

constexpr int kBQ = 64, kThreads = 128;

#if defined(GPTOSS_HAVE_MFMA)
constexpr int kD = 64, kBK = 64, kLds = kD + 8, kWave = 64;
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ bf16x4_t bf16x4(uint32_t lo, uint32_t hi) {
  union {
    uint32_t u[2];
    bf16x4_t v;
  } x{{lo, hi}};
  return x.v;
}
__device__ __forceinline__ bf16x4_t lds_bf16x4(const uint16_t* p) { return *reinterpret_cast<const bf16x4_t*>(p); }
#endif

template <KvType KV>
__global__ void __launch_bounds__(kThreads) flash_attention_mfma_kernel(AttentionArgs a) {
#if defined(GPTOSS_HAVE_MFMA)
  constexpr bool BF16 = KV == KvType::BF16;  // the cache is the MFMA operand as it is
  constexpr int kParts = BF16 ? 1 : 2;       // f16 / f32 cache: bf16 hi + lo of K and V
  __shared__ __attribute__((aligned(16))) uint16_t Ks[kParts][kBK * kLds];  // [key][d]
  __shared__ __attribute__((aligned(16))) uint16_t Vt[kParts][kD * kLds];   // [d][key]
  __shared__ int range_s[2];
  const int h = blockIdx.y, kvh = h / (a.Hq / a.Hkv);
  // This block's queries [q0, q_end): 64 from blockIdx.x * 64, or a paged step's planned tile (one
  // sequence's consecutive queries; tiles past the plan's count have nothing to do).
  int q0 = blockIdx.x * kBQ, q_end = a.n, seq = 0;
  if (a.tiles) {
    if (int(blockIdx.x) >= a.counts[1]) return;
    q0 = a.tiles[2 * blockIdx.x];
    q_end = q0 + a.tiles[2 * blockIdx.x + 1];
  }
  if (a.seq_of_token) seq = a.seq_of_token[q0];
  const int tid = threadIdx.x, wave = tid / kWave, lane = tid % kWave, half = lane / 32;
  const int qi = q0 + wave * 32 + M32x32x8::b_col(lane);  // this lane's query (both halves)

  if (tid == 0) range_s[0] = 0x7fffffff, range_s[1] = -1;
  __syncthreads();
  int pos = qi < q_end ? a.positions[qi] : -1;
  if (pos >= a.ctx) {
    if (half == 0) atomicOr(a.err, kErrPositionRange);
    pos = a.ctx - 1;
  }
  const int lo = pos >= 0 ? key_lo(pos, a.sliding_window) : 0x7fffffff;
  if (pos >= 0 && half == 0) {
    atomicMin(&range_s[0], lo);
    atomicMax(&range_s[1], pos);
  }
  __syncthreads();
  const int kv_lo = range_s[0], kv_hi = range_s[1];  // the block's key range

  // The lane's B operand of S^T for k-step ks: Q[qi][8 ks + 4 half .. + 3], hi and lo bf16 halves.
  bf16x4_t qh[kD / 8], ql[kD / 8];
  {
    const float* q = a.q + (int64_t(qi < q_end ? qi : 0) * a.Hq + h) * kD;
#pragma unroll
    for (int ks = 0; ks < kD / 8; ++ks) {
      const float4 x = qi < q_end ? *reinterpret_cast<const float4*>(q + 8 * ks + M32x32x8::b_k(lane, 0))
                                : make_float4(0.f, 0.f, 0.f, 0.f);
      const uint32_t h0 = pack_bf16x2(x.x, x.y), h1 = pack_bf16x2(x.z, x.w);
      qh[ks] = bf16x4(h0, h1);
      ql[ks] = bf16x4(pack_bf16x2(x.x - bf16_lo(h0), x.y - bf16_hi(h0)), pack_bf16x2(x.z - bf16_lo(h1), x.w - bf16_hi(h1)));
    }
  }
  const float scale2 = a.softmax_scale * kLog2e;
  float m = param_f32(a.sinks, a.sinks_bf16, h) * kLog2e, l = 1.f;  // the sink: exp2(sink - m) = 1 at start
  f32x16_t o[2];  // O^T: dims 32 dt + d_row(lane, item), query qi
#pragma unroll
  for (int dt = 0; dt < 2; ++dt)
#pragma unroll
    for (int i = 0; i < 16; ++i) o[dt][i] = 0.f;

  const int row_elems = a.Hkv * kD;
  for (int kv0 = kv_hi < 0 ? 0 : (kv_lo / kBK) * kBK; kv0 <= kv_hi; kv0 += kBK) {
    __syncthreads();  // the previous tile is consumed
    for (int idx = tid; idx < kBK * kD / 8; idx += kThreads) {
      const int key = idx / 8, d0 = (idx % 8) * 8, j = kv0 + key;
      uint32_t kw[4] = {0, 0, 0, 0}, vw[4] = {0, 0, 0, 0}, kl[4] = {0, 0, 0, 0}, vl[4] = {0, 0, 0, 0};
      if (j <= kv_hi) {
        flash_kv_chunk<KV>(a, kv_row(a, seq, j) * row_elems + kvh * kD + d0, kw, vw, kl, vl);
      }
      *reinterpret_cast<uint4*>(&Ks[0][key * kLds + d0]) = make_uint4(kw[0], kw[1], kw[2], kw[3]);
      if (!BF16) *reinterpret_cast<uint4*>(&Ks[kParts - 1][key * kLds + d0]) = make_uint4(kl[0], kl[1], kl[2], kl[3]);
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        Vt[0][(d0 + 2 * q) * kLds + key] = uint16_t(vw[q] & 0xffffu);
        Vt[0][(d0 + 2 * q + 1) * kLds + key] = uint16_t(vw[q] >> 16);
        if (!BF16) {
          Vt[kParts - 1][(d0 + 2 * q) * kLds + key] = uint16_t(vl[q] & 0xffffu);
          Vt[kParts - 1][(d0 + 2 * q + 1) * kLds + key] = uint16_t(vl[q] >> 16);
        }
      }
    }
    __syncthreads();

    // S^T for keys 32 mt + d_row(lane, item), query qi.
    f32x16_t s[2];
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
      for (int i = 0; i < 16; ++i) s[mt][i] = 0.f;
#pragma unroll
      for (int ks = 0; ks < kD / 8; ++ks) {
        const int off = (mt * 32 + M32x32x8::a_row(lane)) * kLds + 8 * ks + M32x32x8::a_k(lane, 0);
        const bf16x4_t kh = lds_bf16x4(&Ks[0][off]);
        s[mt] = __builtin_amdgcn_mfma_f32_32x32x8bf16_1k(kh, qh[ks], s[mt], 0, 0, 0);
        s[mt] = __builtin_amdgcn_mfma_f32_32x32x8bf16_1k(kh, ql[ks], s[mt], 0, 0, 0);
        if (!BF16) s[mt] = __builtin_amdgcn_mfma_f32_32x32x8bf16_1k(lds_bf16x4(&Ks[kParts - 1][off]), qh[ks], s[mt], 0, 0, 0);
      }
    }
    // Mask (causal, window; keys past kv_hi are past every pos), scale to the log2 domain, max.
    float mx = -INFINITY;
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int i = 0; i < 16; ++i) {
        const int j = kv0 + mt * 32 + M32x32x8::d_row(lane, i);
        const float v = (j <= pos && j >= lo) ? s[mt][i] * scale2 : -INFINITY;
        s[mt][i] = v;
        mx = fmaxf(mx, v);
      }
    mx = fmaxf(mx, __shfl_xor(mx, 32, kWave));  // the query's other 32 keys
    const float mn = fmaxf(m, mx);              // finite: m starts at the sink
    const float alpha = exp2f(m - mn);
    m = mn;
    float rs = 0.f;
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int i = 0; i < 16; ++i) {
        s[mt][i] = exp2f(s[mt][i] - mn);
        rs += s[mt][i];
      }
    rs += __shfl_xor(rs, 32, kWave);
    l = l * alpha + rs;
#pragma unroll
    for (int dt = 0; dt < 2; ++dt)
#pragma unroll
      for (int i = 0; i < 16; ++i) o[dt][i] *= alpha;
    // O^T += V^T P^T, k-step t = keys 8 t .. 8 t + 7 of the 64: B = items 4 (t % 4) .. + 3 of s[t / 4].
#pragma unroll
    for (int t = 0; t < kBK / 8; ++t) {
      const f32x16_t& p = s[t / 4];
      const int i0 = mfma::d_item_as_b(t % 4, 0);
      const uint32_t h0 = pack_bf16x2(p[i0], p[i0 + 1]), h1 = pack_bf16x2(p[i0 + 2], p[i0 + 3]);
      const bf16x4_t ph = bf16x4(h0, h1);
      const bf16x4_t pl = bf16x4(pack_bf16x2(p[i0] - bf16_lo(h0), p[i0 + 1] - bf16_hi(h0)),
                                 pack_bf16x2(p[i0 + 2] - bf16_lo(h1), p[i0 + 3] - bf16_hi(h1)));
#pragma unroll
      for (int dt = 0; dt < 2; ++dt) {
        const int off = (dt * 32 + M32x32x8::a_row(lane)) * kLds + 8 * t + M32x32x8::a_k(lane, 0);
        const bf16x4_t vh = lds_bf16x4(&Vt[0][off]);
        o[dt] = __builtin_amdgcn_mfma_f32_32x32x8bf16_1k(vh, ph, o[dt], 0, 0, 0);
        o[dt] = __builtin_amdgcn_mfma_f32_32x32x8bf16_1k(vh, pl, o[dt], 0, 0, 0);
        if (!BF16) o[dt] = __builtin_amdgcn_mfma_f32_32x32x8bf16_1k(lds_bf16x4(&Vt[kParts - 1][off]), ph, o[dt], 0, 0, 0);
      }
    }
  }
  if (qi >= q_end) return;
  const float inv = 1.f / l;
  float* out = a.out + (int64_t(qi) * a.Hq + h) * kD;
#pragma unroll
  for (int dt = 0; dt < 2; ++dt)
#pragma unroll
    for (int g = 0; g < 4; ++g) {  // items 4g .. 4g + 3: dims 32 dt + d_row(lane, 4g) + 0..3, consecutive
      const int d = dt * 32 + M32x32x8::d_row(lane, 4 * g);
      *reinterpret_cast<float4*>(out + d) =
          make_float4(o[dt][4 * g] * inv, o[dt][4 * g + 1] * inv, o[dt][4 * g + 2] * inv, o[dt][4 * g + 3] * inv);
    }
#else
  GPTOSS_NO_DEVICE_CODE("MFMA bf16 (gfx90a, gfx942)");
#endif
}

}  // namespace

// AttentionPath::FlashMfma of launch_attention_path (attention.cu). D = 64 (choose_attention's condition).
void launch_attention_flash_mfma(const AttentionArgs& a, int blocks, cudaStream_t stream) {
  static_assert(kBQ == kFlashBQ, "a paged plan cuts tiles of kFlashBQ queries");
  const dim3 grid(blocks, a.Hq);
  dispatch_kv(a.cache, [&](auto kv) { flash_attention_mfma_kernel<decltype(kv)::value><<<grid, kThreads, 0, stream>>>(a); });
  GPTOSS_CUDA_LAUNCH("flash_attention_mfma_kernel");
}

}  // namespace gptoss::cuda
