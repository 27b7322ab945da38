#include "attention.cuh"

#include <algorithm>
#include <atomic>
#include <type_traits>

namespace gptoss::cuda {

namespace {

constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ float sink_logit(const AttentionArgs& a, int h) {
  return param_f32(a.sinks, a.sinks_bf16, h);
}

// kv_row (a key's cache row, paged or not), key_lo (a query's first visible key) and flash_kv_chunk
// (8 values of K and V as bf16 hi + lo): attention.cuh, shared with the MFMA flash kernel.

// ---------------------------------------------------------------------------------------------
// Flash prefill, D = 64. Block = 4 warps = 64 queries of one head; warp w owns rows 16w..16w+15.
// S = Q K^T and O += P V by mma.m16n8k16 (bf16 in, f32 accumulate); the S accumulators are
// re-packed as the A operand of P V without touching shared memory (FlashAttention-2 layout trick).
// The running max starts at the sink logit with l = 1, which puts the sink in the denominator only.
// Precision: Q and P are split into bf16 hi + lo and both are multiplied (2 MMAs each); a bf16 cache
// is exact in bf16, an f32 or f16 cache is split too (K_lo, V_lo: one more MMA each; an f16 value's
// 11 significant bits fit bf16 hi + lo exactly, and its range is inside bf16's). The result tracks f32
// attention over the cache contents to ~1e-5 instead of ~3e-3 (gpu_check).
// ---------------------------------------------------------------------------------------------
constexpr int kFlashLds = kFlashD + 8;  // kFlashD, kFlashBQ, kFlashBK: shapes.h

template <KvType KV>
__global__ void __launch_bounds__(128) flash_attention_kernel(AttentionArgs a) {
#if defined(GPTOSS_HAVE_MMA_SYNC)
  constexpr bool BF16 = KV == KvType::BF16;  // the cache is the MMA operand as it is
  // Both caches are staged as bf16 (hi, and lo unless the cache is bf16) whatever their element types
  // (flash_kv_chunk converts each): f32k-f16v stages like f32.
  constexpr int kKvParts = BF16 ? 1 : 2;
  __shared__ __align__(16) uint16_t Ks[kKvParts][kFlashBK * kFlashLds];   // [key][d]
  __shared__ __align__(16) uint16_t Vt[kKvParts][kFlashD * kFlashLds];    // [d][key] (transposed: B operand of P V)
  __shared__ int pos_s[kFlashBQ];
  __shared__ int range_s[2];
  const int h = blockIdx.y, kvh = h / (a.Hq / a.Hkv);
  // This block's queries [q0, q_end): 64 from blockIdx.x * 64, or a paged step's planned tile (one
  // sequence's consecutive queries; tiles past the plan's count have nothing to do).
  int q0 = blockIdx.x * kFlashBQ, q_end = a.n, seq = 0;
  if (a.tiles) {
    if (int(blockIdx.x) >= a.counts[1]) return;
    q0 = a.tiles[2 * blockIdx.x];
    q_end = q0 + a.tiles[2 * blockIdx.x + 1];
  }
  if (a.seq_of_token) seq = a.seq_of_token[q0];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, gq = lane >> 2, tq = lane & 3;

  if (tid == 0) { range_s[0] = 0x7fffffff; range_s[1] = -1; }
  __syncthreads();
  if (tid < kFlashBQ) {
    int i = q0 + tid;
    int p = i < q_end ? a.positions[i] : -1;
    if (p >= a.ctx) { atomicOr(a.err, kErrPositionRange); p = a.ctx - 1; }
    pos_s[tid] = p;
    if (p >= 0) { atomicMin(&range_s[0], key_lo(p, a.sliding_window)); atomicMax(&range_s[1], p); }
  }
  __syncthreads();
  const int lo = range_s[0], hi = range_s[1];

  // Q fragments of this warp's 16 rows, all of D (4 k-steps of 16).
  const int r0 = warp * 16 + gq, r1 = r0 + 8;
  const int qi0 = q0 + r0, qi1 = q0 + r1;
  uint32_t qf[4][4], ql[4][4];  // hi and lo bf16 parts of Q
  {
    const float* qrow0 = a.q + (int64_t(qi0) * a.Hq + h) * kFlashD;
    const float* qrow1 = a.q + (int64_t(qi1) * a.Hq + h) * kFlashD;
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) {
      float2 x00 = qi0 < q_end ? *reinterpret_cast<const float2*>(qrow0 + ks * 16 + 2 * tq) : make_float2(0, 0);
      float2 x10 = qi1 < q_end ? *reinterpret_cast<const float2*>(qrow1 + ks * 16 + 2 * tq) : make_float2(0, 0);
      float2 x01 = qi0 < q_end ? *reinterpret_cast<const float2*>(qrow0 + ks * 16 + 2 * tq + 8) : make_float2(0, 0);
      float2 x11 = qi1 < q_end ? *reinterpret_cast<const float2*>(qrow1 + ks * 16 + 2 * tq + 8) : make_float2(0, 0);
      const float2 xs[4] = {x00, x10, x01, x11};
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        qf[ks][i] = pack_bf16x2(xs[i].x, xs[i].y);
        ql[ks][i] = pack_bf16x2(xs[i].x - bf16_lo(qf[ks][i]), xs[i].y - bf16_hi(qf[ks][i]));
      }
    }
  }
  const int p0 = pos_s[r0], p1 = pos_s[r1];
  const int lo0 = key_lo(p0, a.sliding_window), lo1 = key_lo(p1, a.sliding_window);
  const float scale2 = a.softmax_scale * kLog2e;
  const float sink2 = sink_logit(a, h) * kLog2e;
  float m0 = sink2, m1 = sink2, l0 = 1.f, l1 = 1.f;  // sink: exp2(sink2 - m) = 1 initially
  float o[8][4];
#pragma unroll
  for (int i = 0; i < 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;

  const int row_elems = a.Hkv * kFlashD;
  for (int kv0 = hi < 0 ? 0 : (lo / kFlashBK) * kFlashBK; kv0 <= hi; kv0 += kFlashBK) {
    __syncthreads();  // previous tile fully consumed
    // Load 64 keys x 64 dims of K (row-major) and V (transposed) as bf16.
    for (int idx = tid; idx < kFlashBK * kFlashD / 8; idx += 128) {
      const int key = idx / 8, d0 = (idx % 8) * 8;
      const int j = kv0 + key;
      uint32_t kw[4] = {0, 0, 0, 0}, vw[4] = {0, 0, 0, 0};
      uint32_t kl[4] = {0, 0, 0, 0}, vl[4] = {0, 0, 0, 0};  // lo parts (f32 cache only)
      if (j <= hi) {
        flash_kv_chunk<KV>(a, kv_row(a, seq, j) * row_elems + kvh * kFlashD + d0, kw, vw, kl, vl);
      }
      *reinterpret_cast<uint4*>(&Ks[0][key * kFlashLds + d0]) = make_uint4(kw[0], kw[1], kw[2], kw[3]);
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        Vt[0][(d0 + 2 * q) * kFlashLds + key] = uint16_t(vw[q] & 0xffffu);
        Vt[0][(d0 + 2 * q + 1) * kFlashLds + key] = uint16_t(vw[q] >> 16);
      }
      if (!BF16) {
        *reinterpret_cast<uint4*>(&Ks[kKvParts - 1][key * kFlashLds + d0]) = make_uint4(kl[0], kl[1], kl[2], kl[3]);
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          Vt[kKvParts - 1][(d0 + 2 * q) * kFlashLds + key] = uint16_t(vl[q] & 0xffffu);
          Vt[kKvParts - 1][(d0 + 2 * q + 1) * kFlashLds + key] = uint16_t(vl[q] >> 16);
        }
      }
    }
    __syncthreads();

    // S = Q K^T for 16 rows x 64 keys (8 n-tiles of 8 keys).
    float s[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
      for (int ks = 0; ks < 4; ++ks) {
        const uint16_t* kb = Ks[0] + (nt * 8 + gq) * kFlashLds + ks * 16 + 2 * tq;
        uint32_t b[2] = {*reinterpret_cast<const uint32_t*>(kb), *reinterpret_cast<const uint32_t*>(kb + 8)};
        mma_bf16_16816(s[nt], qf[ks], b);
        mma_bf16_16816(s[nt], ql[ks], b);
        if (!BF16) {
          const uint16_t* kbl = Ks[kKvParts - 1] + (nt * 8 + gq) * kFlashLds + ks * 16 + 2 * tq;
          uint32_t bl[2] = {*reinterpret_cast<const uint32_t*>(kbl), *reinterpret_cast<const uint32_t*>(kbl + 8)};
          mma_bf16_16816(s[nt], qf[ks], bl);
        }
      }
    }
    // Mask, scale (log2 domain), online softmax. Rows r0 (c0, c1) and r1 (c2, c3).
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int j = kv0 + nt * 8 + 2 * tq + c;
        float v0 = (j <= p0 && j >= lo0) ? s[nt][c] * scale2 : -INFINITY;
        float v1 = (j <= p1 && j >= lo1) ? s[nt][2 + c] * scale2 : -INFINITY;
        s[nt][c] = v0;
        s[nt][2 + c] = v1;
        mx0 = fmaxf(mx0, v0);
        mx1 = fmaxf(mx1, v1);
      }
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);  // finite: m starts at the sink
    const float al0 = exp2f(m0 - mn0), al1 = exp2f(m1 - mn1);
    m0 = mn0;
    m1 = mn1;
    float rs0 = 0.f, rs1 = 0.f;
    uint32_t pf[4][4], pl[4][4];  // P (hi, lo) as A fragments: k-step kk = keys 16kk..16kk+15
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      float e0 = exp2f(s[nt][0] - mn0), e1 = exp2f(s[nt][1] - mn0);
      float e2 = exp2f(s[nt][2] - mn1), e3 = exp2f(s[nt][3] - mn1);
      rs0 += e0 + e1;
      rs1 += e2 + e3;
      const int kk = nt / 2, hi8 = nt % 2;
      const uint32_t h0 = pack_bf16x2(e0, e1), h1 = pack_bf16x2(e2, e3);
      pf[kk][hi8 * 2 + 0] = h0;
      pf[kk][hi8 * 2 + 1] = h1;
      pl[kk][hi8 * 2 + 0] = pack_bf16x2(e0 - bf16_lo(h0), e1 - bf16_hi(h0));
      pl[kk][hi8 * 2 + 1] = pack_bf16x2(e2 - bf16_lo(h1), e3 - bf16_hi(h1));
    }
    rs0 += __shfl_xor_sync(0xffffffffu, rs0, 1);
    rs0 += __shfl_xor_sync(0xffffffffu, rs0, 2);
    rs1 += __shfl_xor_sync(0xffffffffu, rs1, 1);
    rs1 += __shfl_xor_sync(0xffffffffu, rs1, 2);
    l0 = l0 * al0 + rs0;
    l1 = l1 * al1 + rs1;
#pragma unroll
    for (int dt = 0; dt < 8; ++dt) {
      o[dt][0] *= al0; o[dt][1] *= al0;
      o[dt][2] *= al1; o[dt][3] *= al1;
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        const uint16_t* vb = Vt[0] + (dt * 8 + gq) * kFlashLds + kk * 16 + 2 * tq;
        uint32_t b[2] = {*reinterpret_cast<const uint32_t*>(vb), *reinterpret_cast<const uint32_t*>(vb + 8)};
        mma_bf16_16816(o[dt], pf[kk], b);
        mma_bf16_16816(o[dt], pl[kk], b);
        if (!BF16) {
          const uint16_t* vbl = Vt[kKvParts - 1] + (dt * 8 + gq) * kFlashLds + kk * 16 + 2 * tq;
          uint32_t bl[2] = {*reinterpret_cast<const uint32_t*>(vbl), *reinterpret_cast<const uint32_t*>(vbl + 8)};
          mma_bf16_16816(o[dt], pf[kk], bl);
        }
      }
    }
  }
  const float inv0 = 1.f / l0, inv1 = 1.f / l1;
#pragma unroll
  for (int dt = 0; dt < 8; ++dt) {
    const int d = dt * 8 + 2 * tq;
    if (qi0 < q_end)
      *reinterpret_cast<float2*>(a.out + (int64_t(qi0) * a.Hq + h) * kFlashD + d) =
          make_float2(o[dt][0] * inv0, o[dt][1] * inv0);
    if (qi1 < q_end)
      *reinterpret_cast<float2*>(a.out + (int64_t(qi1) * a.Hq + h) * kFlashD + d) =
          make_float2(o[dt][2] * inv1, o[dt][3] * inv1);
  }
#else
  GPTOSS_NO_DEVICE_CODE("bf16 mma.sync (sm_80+)");
#endif
}

// ---------------------------------------------------------------------------------------------
// Split-KV decode (D = 64). grid (splits, Hkv, n); block = 8 warps; the visible range [lo, pos] of
// the query is cut into `splits` equal pieces on the device and this block takes one piece for all
// G = Hq/Hkv query heads of its kv head, 64 keys a tile:
//  1. the whole K and V tile goes to shared memory with every load issued at once (16-byte loads,
//     2-4 a thread: one memory round trip a tile, where the first version walked V key by key),
//     and the next tile of the split loads into registers while this one is scored;
//  2. scores: one thread per (key, head), q in registers, K rows read from padded shared rows;
//  3. per head (warp w: heads w, w + 8) an online softmax, then P V with lanes over dims;
//  4. partials (m, l, acc[D]) to the workspace; the last block of the (token, kv head) to finish
//     merges the splits with the sink (one launch: the separate combine kernel walked the splits
//     serially per thread, 8 us at 512 keys and 32 us at 4096 under ncu).
// ---------------------------------------------------------------------------------------------
// kDecodeTile (keys a tile), kDecodeMaxG, kDecodeD, kDecodeMaxSplits (the merge weights' shared memory;
// GPTOSS_CUDA_ATTN_SPLITS caps the splits at 32 by default): shapes.h, read by the chooser too.

// K and V tiles each in their cache's element type (f32k-f16v: an f32 K tile, an f16 V tile).
template <KvType KV>
struct DecodeSmem {
  using TK = typename KvTraits<KV>::Key::T;
  using TV = typename KvTraits<KV>::Value::T;
  static constexpr int kPad = 16 / int(sizeof(TK));            // one 16-byte chunk of padding a K row
  static constexpr int kKRow = kDecodeD + kPad;                // elements a K row (conflict-free uint4 reads)
  static constexpr int kKChunksRow = kDecodeD * int(sizeof(TK)) / 16;  // 16-byte chunks a K row
  static constexpr int kVChunksRow = kDecodeD * int(sizeof(TV)) / 16;
  TK k[kDecodeTile * kKRow];
  TV v[kDecodeTile * kDecodeD];
  // The scores of a tile. The merge of the splits (merge_splits) runs in the K tile's memory once the loop is
  // done (AMD: 4 KB less than a separate merge array, so two blocks a CU fit with f16, bf16 and f32k-f16v caches).
  float sc[kDecodeMaxG * kDecodeTile];
};
// Blocks a multiprocessor the decode kernel is built for (__launch_bounds__). Two everywhere but the
// f32 cache on gfx90a / gfx942, whose K and V tiles alone (33 KB) exceed half a CU's 64 KB of LDS: one
// block there, so the compiler is not held to a register budget the LDS already rules out (clang
// warned "failed to meet occupancy target"). gfx950 has 160 KB of LDS a CU.
template <KvType KV>
constexpr int decode_min_blocks() {
#if defined(GPTOSS_HIP) && !defined(__gfx950__)
  return sizeof(DecodeSmem<KV>) > 32768 ? 1 : 2;
#else
  return 2;
#endif
}

// Laid out for groups of 32 lanes, a head a group ("warp" below): a lane holds two keys of a tile and
// two output dims (TK = D = 2 x 32). On NVIDIA a group is a warp; a 64-lane AMD wavefront runs two
// groups, whose shuffles (width 32) and reductions stay within their half, so the same code is
// correct on both with the same 8 groups a block.
constexpr int kDecodeLanes = 32;

// The keys a split-KV decode block takes (both decode kernels): query t (of sequence seq) at its
// position, clamped into the cache (a position outside it is reported once, by split 0's thread 0),
// sees keys [lo, pos]; split `split` of `splits` takes keys [begin, end), `tiles` whole tiles of TK.
// `fresh` is the first cache row this step wrote (the previous kernels' output: read after the PDL wait).
// The mixed step's singles plan that picks t stays in each kernel: its early exit is the kernel's
// own return (through a helper, nvcc swaps the comparison and the verified kernel's PTX changes).
struct DecodeRange {
  int seq, begin, end, tiles, fresh;
};
template <int TK>
__device__ __forceinline__ DecodeRange decode_range(const AttentionArgs& a, int t, int split, int splits, int tid) {
  const int seq = a.seq_of_token ? a.seq_of_token[t] : 0;
  // The positions are the step's input (copied before its first kernel) and the cache rows before
  // the step's first position were written by earlier steps: a kernel may load its first tile before
  // the PDL wait, and read only rows from `fresh` on (this step's keys) again after it.
  int pos = a.positions[t];
  if (pos >= a.ctx || pos < 0) {
    if (tid == 0 && split == 0) atomicOr(a.err, kErrPositionRange);
    pos = min(max(pos, 0), a.ctx - 1);
  }
  const int lo = key_lo(pos, a.sliding_window);
  const int len = pos - lo + 1;
  const int per = (len + splits * TK - 1) / (splits * TK) * TK;  // whole tiles a split; the last splits may be empty
  const int begin = lo + split * per, end = min(pos + 1, begin + per);
  const int tiles = begin < end ? (end - begin + TK - 1) / TK : 0;
  int fresh = pos;  // paged: this step wrote this sequence's row `pos` only
  if (!a.block_tables)
    for (int i = 0; i < a.n; ++i) fresh = min(fresh, max(a.positions[i], 0));
  return DecodeRange{seq, begin, end, tiles, fresh};
}

// The last block of a (token, kv head) merges the splits' partials with the sink (both decode kernels):
// part [G][splits][D + 2] = (m, l, O[D]) of heads h0 .. h0 + G - 1; for each head, M = max(sink, m_s),
// L = e(sink - M) + sum_s l_s e(m_s - M), out = sum_s O_s e(m_s - M) / L, e = exp2 (kLog2: m in log2 units,
// the sink scaled to match) or exp. Every load of a phase is in flight before the first is used: one L2 round
// trip for the (m, l) pairs, splits / kBatch for O (the loops it replaces walked the splits a few loads at a
// time, ~30 dependent round trips at 64 splits). scratch: 2 G splits + G floats of shared memory nothing else
// uses now; kThreads: the block (a multiple of kDecodeLanes; lane groups of 32 as the SIMT kernel's).
template <int kThreads, bool kLog2>
__device__ __forceinline__ void merge_splits(const AttentionArgs& a, const float* part, int G, int splits, int h0,
                                             float* out, float* scratch) {
  constexpr int D = kDecodeD, W = kDecodeLanes, kGroups = kThreads / W;
  constexpr int kMl = (kDecodeMaxG * kDecodeMaxSplits + kThreads - 1) / kThreads;  // (m, l) pairs a thread
  constexpr int kBatch = 16;                                                       // O loads in flight a thread
  static_assert(kDecodeMaxSplits <= 2 * W, "phase 2 holds two splits a lane");
  static_assert(kDecodeMmaMaxSplits <= kDecodeMaxSplits && kDecodeMmaMaxG <= kDecodeMaxG, "the mma kernel's merge fits");
  const int tid = threadIdx.x, lane = tid % W, grp = tid / W, n = G * splits;
  float* ms = scratch;          // [G][splits]: m, then e(m - M)
  float* ls = scratch + n;      // [G][splits]: l
  float* inv = scratch + 2 * n; // [G]: 1 / L
  // 1. every (m, l) pair
  float2 ml[kMl];
#pragma unroll
  for (int j = 0; j < kMl; ++j) {
    const int i = tid + j * kThreads;
    if (i < n) ml[j] = __ldcg(reinterpret_cast<const float2*>(part + int64_t(i) * (D + 2)));
  }
#pragma unroll
  for (int j = 0; j < kMl; ++j) {
    const int i = tid + j * kThreads;
    if (i < n) ms[i] = ml[j].x, ls[i] = ml[j].y;
  }
  __syncthreads();
  // 2. per head (a lane group each): M, the weights e(m_s - M), 1 / L
  for (int g = grp; g < G; g += kGroups) {
    const float sink = kLog2 ? sink_logit(a, h0 + g) * kLog2e : sink_logit(a, h0 + g);
    float m0 = -INFINITY, m1 = -INFINITY;
    if (lane < splits) m0 = ms[g * splits + lane];
    if (lane + W < splits) m1 = ms[g * splits + lane + W];
    const float M = fmaxf(sink, warp_max<W>(fmaxf(m0, m1)));
    const float w0 = m0 == -INFINITY ? 0.f : (kLog2 ? exp2f(m0 - M) : expf(m0 - M));
    const float w1 = m1 == -INFINITY ? 0.f : (kLog2 ? exp2f(m1 - M) : expf(m1 - M));
    float l = 0.f;
    if (lane < splits) l += w0 == 0.f ? 0.f : ls[g * splits + lane] * w0;
    if (lane + W < splits) l += w1 == 0.f ? 0.f : ls[g * splits + lane + W] * w1;
    l = warp_sum<W>(l) + (kLog2 ? exp2f(sink - M) : expf(sink - M));
    if (lane < splits) ms[g * splits + lane] = w0;
    if (lane + W < splits) ms[g * splits + lane + W] = w1;
    if (lane == 0) inv[g] = 1.f / l;
  }
  __syncthreads();
  // 3. out[g][2j, 2j + 1] = sum_s w_s O_s / L, kBatch splits' loads at a time
  for (int it = tid; it < G * (D / 2); it += kThreads) {
    const int g = it / (D / 2), d = 2 * (it % (D / 2));
    const float* pg = part + int64_t(g) * splits * (D + 2) + 2 + d;
    const float* wg = ms + g * splits;
    float o0 = 0.f, o1 = 0.f;
    for (int s0 = 0; s0 < splits; s0 += kBatch) {
      float2 v[kBatch];
#pragma unroll
      for (int b = 0; b < kBatch; ++b)
        if (s0 + b < splits) v[b] = __ldcg(reinterpret_cast<const float2*>(pg + int64_t(s0 + b) * (D + 2)));
#pragma unroll
      for (int b = 0; b < kBatch; ++b)
        if (s0 + b < splits) {
          const float w = wg[s0 + b];
          o0 = fmaf(w, v[b].x, o0);
          o1 = fmaf(w, v[b].y, o1);
        }
    }
    *reinterpret_cast<float2*>(out + g * D + d) = make_float2(o0 * inv[g], o1 * inv[g]);
  }
}

template <KvType KV>
__global__ void __launch_bounds__(256, decode_min_blocks<KV>()) attention_decode_kernel(AttentionArgs a, int splits, float* partial) {
  constexpr int D = kDecodeD, TK = kDecodeTile, W = kDecodeLanes;
  static_assert(TK == 2 * W && D == 2 * W, "a lane holds two keys of a tile and two output dims");
  using KeyE = typename KvTraits<KV>::Key;
  using ValE = typename KvTraits<KV>::Value;
  constexpr bool kHalfK = KeyE::kHalfWidth, kHalfV = ValE::kHalfWidth;  // f16 / bf16: two elements a 32-bit word
  using S = DecodeSmem<KV>;
  __shared__ __align__(16) S sm;
  const int split = blockIdx.x, kvh = blockIdx.y, z = blockIdx.z;
  const int G = a.Hq / a.Hkv;
  const int tid = threadIdx.x, warp = tid / W, lane = tid % W, nwarps = blockDim.x / W;
  // Query t of this block; z indexes the partials and counters. A mixed paged step reads its plan
  // (the previous kernel's output): wait first, and leave when the plan has fewer singles.
  int t = z;
  if (a.singles) {
    pdl_wait();
    if (z >= a.counts[0]) return;
    t = a.singles[z];
  }
  const DecodeRange range = decode_range<TK>(a, t, split, splits, tid);
  const int seq = range.seq, begin = range.begin, end = range.end, fresh = range.fresh;

  const int kpp = blockDim.x / G;  // keys scored per pass
  const int my_g = tid % G, my_k = tid / G;

  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};
  float acc[2][2] = {};
  const int64_t row_elems = int64_t(a.Hkv) * D;
  const typename S::TK* kc = static_cast<const typename S::TK*>(a.k_cache);
  const typename S::TV* vc = static_cast<const typename S::TV*>(a.v_cache);
  // 16-byte chunks a thread of a K tile and of a V tile: 2 (f16, bf16) or 4 (f32) each
  constexpr int kPerThreadK = TK * S::kKChunksRow / 256, kPerThreadV = TK * S::kVChunksRow / 256;
  // 1. K and V tiles through registers: tile i + 1 is loaded while tile i is scored
  uint4 kr[kPerThreadK], vr[kPerThreadV];
  auto load_tile = [&](int c0) {
    const int cn = min(TK, end - c0);
#pragma unroll
    for (int u = 0; u < kPerThreadK; ++u) {
      const int c = tid + u * 256, key = c / S::kKChunksRow, ch = c % S::kKChunksRow;
      if (key < cn)
        kr[u] = __ldg(reinterpret_cast<const uint4*>(kc + kv_row(a, seq, c0 + key) * row_elems + int64_t(kvh) * D) + ch);
    }
#pragma unroll
    for (int u = 0; u < kPerThreadV; ++u) {
      const int c = tid + u * 256, key = c / S::kVChunksRow, ch = c % S::kVChunksRow;
      if (key < cn)
        vr[u] = __ldg(reinterpret_cast<const uint4*>(vc + kv_row(a, seq, c0 + key) * row_elems + int64_t(kvh) * D) + ch);
    }
  };
  if (begin < end) load_tile(begin);
  pdl_wait();
  pdl_launch_dependents();
  if (begin < end && fresh < begin + TK) {  // the first tile holds keys of this step: those rows again
    const int cn = min(TK, end - begin);
#pragma unroll
    for (int u = 0; u < kPerThreadK; ++u) {
      const int c = tid + u * 256, key = c / S::kKChunksRow, ch = c % S::kKChunksRow;
      if (key < cn && begin + key >= fresh)
        kr[u] = __ldcg(reinterpret_cast<const uint4*>(kc + kv_row(a, seq, begin + key) * row_elems + int64_t(kvh) * D) + ch);
    }
#pragma unroll
    for (int u = 0; u < kPerThreadV; ++u) {
      const int c = tid + u * 256, key = c / S::kVChunksRow, ch = c % S::kVChunksRow;
      if (key < cn && begin + key >= fresh)
        vr[u] = __ldcg(reinterpret_cast<const uint4*>(vc + kv_row(a, seq, begin + key) * row_elems + int64_t(kvh) * D) + ch);
    }
  }
  float qreg[D];  // q is the previous kernel's output
  {
    const float4* qp = reinterpret_cast<const float4*>(a.q + (int64_t(t) * a.Hq + kvh * G + my_g) * D);
#pragma unroll
    for (int i = 0; i < D / 4; ++i) {
      float4 v = __ldg(qp + i);
      qreg[4 * i] = v.x * a.softmax_scale; qreg[4 * i + 1] = v.y * a.softmax_scale;
      qreg[4 * i + 2] = v.z * a.softmax_scale; qreg[4 * i + 3] = v.w * a.softmax_scale;
    }
  }
  for (int c0 = begin; c0 < end; c0 += TK) {
    const int cn = min(TK, end - c0);
#pragma unroll
    for (int u = 0; u < kPerThreadK; ++u) {
      const int c = tid + u * 256, key = c / S::kKChunksRow, ch = c % S::kKChunksRow;
      if (key < cn) reinterpret_cast<uint4*>(sm.k + key * S::kKRow)[ch] = kr[u];
    }
#pragma unroll
    for (int u = 0; u < kPerThreadV; ++u) {
      const int c = tid + u * 256, key = c / S::kVChunksRow, ch = c % S::kVChunksRow;
      if (key < cn) reinterpret_cast<uint4*>(sm.v + key * D)[ch] = vr[u];
    }
    __syncthreads();
    if (c0 + TK < end) load_tile(c0 + TK);
    // 2. scores
    for (int kk = my_k; kk < TK && my_k < kpp; kk += kpp) {
      float dot = -INFINITY;
      if (kk < cn) {
        float d0 = 0.f, d1 = 0.f;  // two chains: half the FMA latency
        const uint4* kp = reinterpret_cast<const uint4*>(sm.k + kk * S::kKRow);
        if constexpr (kHalfK) {
#pragma unroll
          for (int i = 0; i < D / 8; ++i) {
            const uint4 kv = kp[i];
            const uint32_t w[4] = {kv.x, kv.y, kv.z, kv.w};
#pragma unroll
            for (int j = 0; j < 4; ++j) {
              d0 = fmaf(qreg[8 * i + 2 * j], KeyE::lo(w[j]), d0);
              d1 = fmaf(qreg[8 * i + 2 * j + 1], KeyE::hi(w[j]), d1);
            }
          }
        } else {
#pragma unroll
          for (int i = 0; i < D / 4; ++i) {
            const uint4 kv = kp[i];
            d0 = fmaf(qreg[4 * i], __uint_as_float(kv.x), d0);
            d1 = fmaf(qreg[4 * i + 1], __uint_as_float(kv.y), d1);
            d0 = fmaf(qreg[4 * i + 2], __uint_as_float(kv.z), d0);
            d1 = fmaf(qreg[4 * i + 3], __uint_as_float(kv.w), d1);
          }
        }
        dot = d0 + d1;
      }
      sm.sc[my_g * TK + kk] = dot;
    }
    __syncthreads();
    // 3. online softmax and P V, per head
#pragma unroll
    for (int gi = 0; gi < 2; ++gi) {
      const int g = warp + gi * nwarps;
      if (g >= G) continue;
      float* sg = sm.sc + g * TK;
      const float s0 = sg[lane], s1 = sg[lane + W];
      const float mx = warp_max<W>(fmaxf(s0, s1));
      const float mn = fmaxf(m_run[gi], mx);
      const float alpha = m_run[gi] == -INFINITY ? 0.f : expf(m_run[gi] - mn);
      const float e0 = s0 == -INFINITY ? 0.f : expf(s0 - mn), e1 = s1 == -INFINITY ? 0.f : expf(s1 - mn);
      sg[lane] = e0;
      sg[lane + W] = e1;
      const float sum = warp_sum<W>(e0 + e1);
      __syncwarp();
      l_run[gi] = l_run[gi] * alpha + sum;
      m_run[gi] = mn;
      float o[2][2] = {{acc[gi][0] * alpha, acc[gi][1] * alpha}, {0.f, 0.f}};  // even / odd keys
      const int d = 2 * lane;
#pragma unroll 8
      for (int kk = 0; kk < cn; ++kk) {
        const float p = sg[kk];
        float v0, v1;
        if constexpr (kHalfV) {
          const uint32_t v = *reinterpret_cast<const uint32_t*>(sm.v + kk * D + d);
          v0 = ValE::lo(v); v1 = ValE::hi(v);
        } else {
          const float2 v = *reinterpret_cast<const float2*>(reinterpret_cast<const float*>(sm.v) + kk * D + d);
          v0 = v.x; v1 = v.y;
        }
        o[kk & 1][0] = fmaf(p, v0, o[kk & 1][0]);
        o[kk & 1][1] = fmaf(p, v1, o[kk & 1][1]);
      }
      acc[gi][0] = o[0][0] + o[1][0];
      acc[gi][1] = o[0][1] + o[1][1];
    }
    __syncthreads();
  }
  // 4. one split (a sliding window's keys): finish here, sink included
  if (splits == 1) {
#pragma unroll
    for (int gi = 0; gi < 2; ++gi) {
      const int g = warp + gi * nwarps;
      if (g >= G) continue;
      const int h = kvh * G + g;
      const float sink = sink_logit(a, h);
      const float M = fmaxf(m_run[gi], sink);
      const float w = m_run[gi] == -INFINITY ? 0.f : expf(m_run[gi] - M);
      const float L = l_run[gi] * w + expf(sink - M);
      *reinterpret_cast<float2*>(a.out + (int64_t(t) * a.Hq + h) * D + 2 * lane) =
          make_float2(acc[gi][0] * w / L, acc[gi][1] * w / L);
    }
    return;
  }
  // 5. partials [n, Hq, splits, D + 2] = (m, l, acc...), then the last block merges
#pragma unroll
  for (int gi = 0; gi < 2; ++gi) {
    const int g = warp + gi * nwarps;
    if (g >= G) continue;
    float* pp = partial + ((int64_t(z) * a.Hq + kvh * G + g) * splits + split) * (D + 2);
    if (lane == 0) { pp[0] = m_run[gi]; pp[1] = l_run[gi]; }
    pp[2 + 2 * lane] = acc[gi][0];
    pp[2 + 2 * lane + 1] = acc[gi][1];
  }
  if (!last_block_arrives(a.counters + kCountersAttention + z * a.Hkv + kvh, splits)) return;
  // the K tile's shared memory is free after the loop's last barrier
  static_assert(sizeof(sm.k) >= sizeof(float) * (2 * kDecodeMaxG * kDecodeMaxSplits + kDecodeMaxG), "merge scratch");
  merge_splits<256, false>(a, partial + (int64_t(z) * a.Hq + kvh * G) * splits * (D + 2), G, splits, kvh * G,
                           a.out + (int64_t(t) * a.Hq + kvh * G) * D, reinterpret_cast<float*>(sm.k));
}

// ---------------------------------------------------------------------------------------------
// Tensor-core split-KV decode ("decode mma", GPTOSS_CUDA_ATTN_DECODE=mma). grid (splits, Hkv, n) as the
// SIMT kernel's, block = 4 warps, D = 64, G <= 8 query heads a kv head, a cache whose V is 16-bit. The
// split's keys go through shared memory 64 a tile (16 a warp) in a cp.async ring of S tiles
// (kDecodeMmaStages; 16-byte copies, the next S - 1 in flight while one is computed), and
// each K and V byte is read once for all G heads:
//  - scores S = Q K^T by mma.m16n8k16 bf16: A rows 0..7 = the G heads' q (scaled by softmax_scale
//    log2 e) rounded to bf16 (hi), rows 8..15 = their remainders (lo = q - hi, bf16), so one MMA gives
//    q_hi.k and q_lo.k in the two row halves, summed after; B = 8 keys x 16 dims of K, as bf16 hi and,
//    unless the cache is bf16, lo (K - hi: an f16 value is exact in hi + lo, an f32 one to 2^-17 of
//    its size): 2 MMAs a (k-step, 8 keys). The dims of a k-step are permuted (a lane's two B words are
//    4 consecutive dims: one 16-byte K read covers 1 (f32) or 2 (16-bit) k-steps); q is permuted alike.
//    Each product is then exact to ~2^-16 of |q_i k_i| (bf16 hi + lo: 16 significant bits each side),
//    accumulated in f32: the score is f32-class (bench/RESULTS.md, issue 12 item 3: the bound, and
//    test/attention-decode-mma.test.ts emulates it).
//  - online softmax per warp (its 16 keys a tile), exp2 in f32;
//  - O += P V by mma.m16n8k16 in V's type (f16 for f16 and f32k-f16v, bf16 for bf16): A rows 0..7 =
//    P rounded to that type, rows 8..15 = P's remainder (f16: times 2^12, out of the subnormals),
//    B = V (ldmatrix.trans from the tile);
//  - the 4 warps' (m, l, O) merge in shared memory; one split finishes with the sink, several write
//    partials (m in log2 units) and the last block of a (token, kv head) merges them with the sink.
// Shared tiles are XOR-swizzled by 16-byte chunk (K: chunk ^ 4 on odd rows, V: chunk ^ (row & 7)) so
// the K reads and V's ldmatrix rows hit distinct banks.
// ---------------------------------------------------------------------------------------------
template <KvType KV>
struct DecodeMmaLayout {
  using KeyE = typename KvTraits<KV>::Key;
  static constexpr int kKRowBytes = kDecodeD * (KeyE::kHalfWidth ? 2 : 4);  // 128 or 256
  static constexpr int kKChunks = kKRowBytes / 16;
  static constexpr int kVRowBytes = kDecodeD * 2, kVChunks = kVRowBytes / 16;
  static constexpr int kStageBytes = kDecodeMmaTile * (kKRowBytes + kVRowBytes);
  static constexpr int kSmemBytes = kDecodeMmaStages * kStageBytes;  // the ring
  // the warps' merge after the loop reuses the stages: O [4][8][D] + m, l [4][8] floats
  static_assert(4 * (4 * kDecodeMmaMaxG * kDecodeD + 2 * 4 * kDecodeMmaMaxG) <= kSmemBytes, "merge scratch");
};

#if defined(GPTOSS_HAVE_MMA_SYNC)
__device__ __forceinline__ void mma_f16_16816(float* c, const uint32_t* a, const uint32_t* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p))
               : "memory");
}
__device__ __forceinline__ uint32_t pack_f16x2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}
__device__ __forceinline__ float f16_lo(uint32_t w) { return KvElem<KvElemType::F16>::lo(w); }
__device__ __forceinline__ float f16_hi(uint32_t w) { return KvElem<KvElemType::F16>::hi(w); }
// The f16 remainders of P are scaled by 2^12 (rows 8..15 of the P V MMA; their accumulators are scaled
// back at the end): a remainder of p <= 1 is below 2^-11 p, so unscaled it would fall into f16's
// subnormals (2^-24 apart) for p below ~2^-2 and P would keep only ~2^-25 absolute; scaled, p keeps
// ~2^-22 of itself down to f16's normals and ~2^-36 absolute below (test/attention-decode-mma.test.ts).
constexpr float kPLoScale = 4096.f, kPLoUnscale = 1.f / 4096.f;
// A pair of floats as an MMA operand: hi (rounded to bf16, or f16 for the f16 P V) and lo (the
// remainder in the same type; f16: times kPLoScale).
template <bool kF16>
__device__ __forceinline__ void split_pair(float x, float y, uint32_t& hi, uint32_t& lo) {
  if constexpr (kF16) {
    hi = pack_f16x2(x, y);
    lo = pack_f16x2((x - f16_lo(hi)) * kPLoScale, (y - f16_hi(hi)) * kPLoScale);
  } else {
    hi = pack_bf16x2(x, y);
    lo = pack_bf16x2(x - bf16_lo(hi), y - bf16_hi(hi));
  }
}
#endif

template <KvType KV>
__global__ void __launch_bounds__(128, 4) attention_decode_mma_kernel(AttentionArgs a, int splits, float* partial) {
#if defined(GPTOSS_HAVE_MMA_SYNC)
  constexpr int S = kDecodeMmaStages;
  static_assert(S >= 2, "a ring of at least 2 tiles");
  using L = DecodeMmaLayout<KV>;
  using KeyE = typename KvTraits<KV>::Key;
  using ValE = typename KvTraits<KV>::Value;
  static_assert(ValE::kHalfWidth, "decode mma: V must be 16-bit (the ldmatrix.trans operand)");
  constexpr bool kF32K = !KeyE::kHalfWidth, kBf16K = KV == KvType::BF16, kF16V = KV != KvType::BF16;
  constexpr int D = kDecodeD, TK = kDecodeMmaTile;
  extern __shared__ __align__(128) uint8_t dsm[];
  const int split = blockIdx.x, kvh = blockIdx.y, z = blockIdx.z;
  const int G = a.Hq / a.Hkv;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, gq = lane >> 2, tq = lane & 3;
  int t = z;
  if (a.singles) {
    pdl_wait();
    if (z >= a.counts[0]) return;
    t = a.singles[z];
  }
  const DecodeRange range = decode_range<TK>(a, t, split, splits, tid);
  const int seq = range.seq, begin = range.begin, end = range.end, ntiles = range.tiles, fresh = range.fresh;
  const int64_t row_elems = int64_t(a.Hkv) * D;
  const uint8_t* kc = static_cast<const uint8_t*>(a.k_cache);
  const uint8_t* vc = static_cast<const uint8_t*>(a.v_cache);
  constexpr int kKElem = L::kKRowBytes / D, kVElem = 2;

  // One tile (keys c0 .. c0 + 63 of this split, rows past `end` zero-filled) into stage `st`; `part`:
  // 0 every row, 1 the rows before `fresh` (and the zero fill), 2 the rows from `fresh` on.
  auto load_tile = [&](int st, int c0, int part) {
    uint8_t* ks = dsm + st * L::kStageBytes;
    uint8_t* vs = ks + TK * L::kKRowBytes;
    for (int c = tid; c < TK * L::kKChunks; c += 128) {
      const int row = c / L::kKChunks, ch = c % L::kKChunks, j = c0 + row;
      const bool valid = j < end;
      if ((part == 1 && valid && j >= fresh) || (part == 2 && !(valid && j >= fresh))) continue;
      const uint8_t* src = valid ? kc + (kv_row(a, seq, j) * row_elems + int64_t(kvh) * D) * kKElem + ch * 16 : kc;
      cp_async16_zfill(ks + row * L::kKRowBytes + ((ch ^ ((row & 1) << 2)) * 16), src, valid);
    }
    for (int c = tid; c < TK * L::kVChunks; c += 128) {
      const int row = c / L::kVChunks, ch = c % L::kVChunks, j = c0 + row;
      const bool valid = j < end;
      if ((part == 1 && valid && j >= fresh) || (part == 2 && !(valid && j >= fresh))) continue;
      const uint8_t* src = valid ? vc + (kv_row(a, seq, j) * row_elems + int64_t(kvh) * D) * kVElem + ch * 16 : vc;
      cp_async16_zfill(vs + row * L::kVRowBytes + ((ch ^ (row & 7)) * 16), src, valid);
    }
  };
  // Rows written by earlier steps load before the PDL wait; this step's rows after it.
  if (ntiles > 0) load_tile(0, begin, 1);
  if (!a.singles) pdl_wait();
  pdl_launch_dependents();
  if (ntiles > 0 && fresh < begin + TK) load_tile(0, begin, 2);
  cp_async_commit();
  // tiles 1 .. S - 2 into their stages, a commit group each (empty past the split's tiles)
#pragma unroll
  for (int i = 1; i < S - 1; ++i) {
    if (i < ntiles) load_tile(i, begin + i * TK, 0);
    cp_async_commit();
  }

  // Q as the A operand of the k-steps: rows gq (hi) and gq + 8 (lo) of head gq (zero past G). The
  // dims of lane tq in k-step ks: the K read's permutation (kdim below), entries e = 0..3 of a0/a1 (e
  // 0, 1) and a2/a3 (e 2, 3).
  auto kdim = [&](int ks, int e) { return kF32K ? 16 * ks + 4 * tq + e : 32 * (ks / 2) + 8 * tq + 4 * (ks % 2) + e; };
  uint32_t qa[4][4];
  {
    const float qs = a.softmax_scale * kLog2e;
    const float* qrow = a.q + (int64_t(t) * a.Hq + int64_t(kvh) * G + gq) * D;
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        float x = 0.f, y = 0.f;
        if (gq < G) {
          const float2 v = *reinterpret_cast<const float2*>(qrow + kdim(ks, 2 * half));
          x = v.x * qs;
          y = v.y * qs;
        }
        uint32_t h, l;
        split_pair<false>(x, y, h, l);
        qa[ks][2 * half] = h;      // a0 / a2: row gq
        qa[ks][2 * half + 1] = l;  // a1 / a3: row gq + 8
      }
    }
  }

  float m_run = -INFINITY, l_run = 0.f;  // head gq, log2 units; l_run: this lane's keys' share
  float o[8][4];
#pragma unroll
  for (int i = 0; i < 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;

  for (int it = 0; it < ntiles; ++it) {
    const int c0 = begin + it * TK;
    // tile it + S - 1 into the stage tile it - 1 used (its readers passed the barrier that ended that iteration)
    if (it + S - 1 < ntiles) load_tile((it + S - 1) % S, c0 + (S - 1) * TK, 0);
    cp_async_commit();
    cp_async_wait<S - 1>();  // tile it's group is the S-th newest
    __syncthreads();
    const uint8_t* ks_ = dsm + (it % S) * L::kStageBytes;
    const uint8_t* vs_ = ks_ + TK * L::kKRowBytes;
    // S for this warp's 16 keys: two n-tiles of 8
    float sacc[2][4];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      sacc[nt][0] = sacc[nt][1] = sacc[nt][2] = sacc[nt][3] = 0.f;
      const int row = 16 * warp + 8 * nt + gq;
      const uint8_t* krow = ks_ + row * L::kKRowBytes;
      const int sw = (row & 1) << 2;
      if constexpr (kF32K) {
#pragma unroll
        for (int ks = 0; ks < 4; ++ks) {
          const float4 kv = *reinterpret_cast<const float4*>(krow + (((4 * ks + tq) ^ sw) * 16));
          uint32_t bh[2], bl[2];
          split_pair<false>(kv.x, kv.y, bh[0], bl[0]);
          split_pair<false>(kv.z, kv.w, bh[1], bl[1]);
          mma_bf16_16816(sacc[nt], qa[ks], bh);
          mma_bf16_16816(sacc[nt], qa[ks], bl);
        }
      } else {
#pragma unroll
        for (int kp = 0; kp < 2; ++kp) {
          const uint4 kw = *reinterpret_cast<const uint4*>(krow + (((4 * kp + tq) ^ sw) * 16));
          const uint32_t w[4] = {kw.x, kw.y, kw.z, kw.w};
#pragma unroll
          for (int s2 = 0; s2 < 2; ++s2) {
            if constexpr (kBf16K) {
              const uint32_t b[2] = {w[2 * s2], w[2 * s2 + 1]};
              mma_bf16_16816(sacc[nt], qa[2 * kp + s2], b);
            } else {  // f16 K: exact as bf16 hi + lo
              uint32_t bh[2], bl[2];
              split_pair<false>(f16_lo(w[2 * s2]), f16_hi(w[2 * s2]), bh[0], bl[0]);
              split_pair<false>(f16_lo(w[2 * s2 + 1]), f16_hi(w[2 * s2 + 1]), bh[1], bl[1]);
              mma_bf16_16816(sacc[nt], qa[2 * kp + s2], bh);
              mma_bf16_16816(sacc[nt], qa[2 * kp + s2], bl);
            }
          }
        }
      }
    }
    // scores of head gq at keys c0 + 16 warp + 8 nt + 2 tq + {0, 1}: rows gq (q_hi) + gq + 8 (q_lo)
    float s[2][2], mx = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int j = c0 + 16 * warp + 8 * nt + 2 * tq + c;
        s[nt][c] = j < end ? sacc[nt][c] + sacc[nt][2 + c] : -INFINITY;
        mx = fmaxf(mx, s[nt][c]);
      }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float mn = fmaxf(m_run, mx);
    const float ms = mn == -INFINITY ? 0.f : mn;  // nothing seen yet: every p and alpha is 0
    const float alpha = exp2f(m_run - ms);
    m_run = mn;
    float p[2][2];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int c = 0; c < 2; ++c) p[nt][c] = exp2f(s[nt][c] - ms);
    l_run = l_run * alpha + (p[0][0] + p[0][1] + p[1][0] + p[1][1]);
    // P as the A operand (keys = k): a0 row gq keys 2tq.. (n-tile 0) hi, a1 its lo, a2/a3 n-tile 1
    uint32_t pa[4];
    split_pair<kF16V>(p[0][0], p[0][1], pa[0], pa[1]);
    split_pair<kF16V>(p[1][0], p[1][1], pa[2], pa[3]);
#pragma unroll
    for (int dt = 0; dt < 8; ++dt) {
      o[dt][0] *= alpha; o[dt][1] *= alpha; o[dt][2] *= alpha; o[dt][3] *= alpha;
    }
    // V: matrices (keys 0-7 | 8-15 of this warp) x (dims 16 dp .. +7 | +8 .. +15), transposed
    const int vrow = 16 * warp + (lane & 7) + 8 * ((lane >> 3) & 1);
#pragma unroll
    for (int dp = 0; dp < 4; ++dp) {
      const int ch = 2 * dp + (lane >> 4);
      uint32_t b[4];
      ldsm_x4_trans(b, vs_ + vrow * L::kVRowBytes + ((ch ^ (vrow & 7)) * 16));
      if constexpr (kF16V) {
        mma_f16_16816(o[2 * dp], pa, b);
        mma_f16_16816(o[2 * dp + 1], pa, b + 2);
      } else {
        mma_bf16_16816(o[2 * dp], pa, b);
        mma_bf16_16816(o[2 * dp + 1], pa, b + 2);
      }
    }
    __syncthreads();  // the stage is consumed before the next iteration refills it
  }
  cp_async_wait<0>();
  __syncthreads();
  // The warps' (m, l, O) through shared memory (the stages are free now), merged per (head, 4 dims).
  l_run += __shfl_xor_sync(0xffffffffu, l_run, 1);
  l_run += __shfl_xor_sync(0xffffffffu, l_run, 2);
  float* so = reinterpret_cast<float*>(dsm);                  // [4 warps][8 heads][D]
  float* sml = so + 4 * kDecodeMmaMaxG * D;                   // [4][8][2]
  {
    const float lo_scale = kF16V ? kPLoUnscale : 1.f;  // rows 8..15: P's remainders (f16: scaled)
    float* orow = so + (warp * kDecodeMmaMaxG + gq) * D;
#pragma unroll
    for (int dt = 0; dt < 8; ++dt)
      *reinterpret_cast<float2*>(orow + 8 * dt + 2 * tq) =
          make_float2(o[dt][0] + o[dt][2] * lo_scale, o[dt][1] + o[dt][3] * lo_scale);
    if (tq == 0) {
      sml[(warp * kDecodeMmaMaxG + gq) * 2] = m_run;
      sml[(warp * kDecodeMmaMaxG + gq) * 2 + 1] = l_run;
    }
  }
  __syncthreads();
  const int h8 = tid >> 4, d4 = (tid & 15) * 4;  // this thread's head and 4 dims in the merges
  float M = -INFINITY, Lsum = 0.f, acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
  for (int w = 0; w < 4; ++w) M = fmaxf(M, sml[(w * kDecodeMmaMaxG + h8) * 2]);
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    const float mw = sml[(w * kDecodeMmaMaxG + h8) * 2];
    const float ww = mw == -INFINITY ? 0.f : exp2f(mw - M);
    Lsum += sml[(w * kDecodeMmaMaxG + h8) * 2 + 1] * ww;
    const float4 ov = *reinterpret_cast<const float4*>(so + (w * kDecodeMmaMaxG + h8) * D + d4);
    acc[0] += ov.x * ww; acc[1] += ov.y * ww; acc[2] += ov.z * ww; acc[3] += ov.w * ww;
  }
  const bool mine = h8 < G;
  const int h = kvh * G + h8;
  if (splits == 1) {
    if (mine) {
      const float sink = sink_logit(a, h) * kLog2e;
      const float Mx = fmaxf(M, sink);
      const float w = M == -INFINITY ? 0.f : exp2f(M - Mx);
      const float inv = w / (Lsum * w + exp2f(sink - Mx));
      *reinterpret_cast<float4*>(a.out + (int64_t(t) * a.Hq + h) * D + d4) =
          make_float4(acc[0] * inv, acc[1] * inv, acc[2] * inv, acc[3] * inv);
    }
    return;
  }
  // partials [n, Hq, splits, D + 2] = (m, l, O...), m in log2 units; the last block merges
  if (mine) {
    float* pp = partial + ((int64_t(z) * a.Hq + h) * splits + split) * (D + 2);
    if (d4 == 0) { pp[0] = M; pp[1] = Lsum; }
    *reinterpret_cast<float2*>(pp + 2 + d4) = make_float2(acc[0], acc[1]);
    *reinterpret_cast<float2*>(pp + 4 + d4) = make_float2(acc[2], acc[3]);
  }
  if (!last_block_arrives(a.counters + kCountersAttention + z * a.Hkv + kvh, splits)) return;
  // the stages' shared memory (so, sml) was last read before last_block_arrives' barrier
  merge_splits<128, true>(a, partial + (int64_t(z) * a.Hq + kvh * G) * splits * (D + 2), G, splits, kvh * G,
                          a.out + (int64_t(t) * a.Hq + kvh * G) * D, reinterpret_cast<float*>(dsm));
#else
  (void)splits; (void)partial;
  if (!a.singles) pdl_wait();
  GPTOSS_NO_DEVICE_CODE("bf16/f16 mma.sync (sm_80+)");
#endif
}

// ---------------------------------------------------------------------------------------------
// Plain f32 attention for shapes the fast kernels do not take: one block per (token, head),
// two passes over the visible keys (max, then sum and P V) with scores recomputed.
// ---------------------------------------------------------------------------------------------
template <KvType KV>
__global__ void attention_naive_kernel(AttentionArgs a) {
  const int t = blockIdx.x / a.Hq, h = blockIdx.x % a.Hq, kvh = h / (a.Hq / a.Hkv), D = a.D;
  __shared__ float red[32];
  __shared__ float bcast;
  int pos = a.positions[t];
  if (pos < 0 || pos >= a.ctx) {
    if (threadIdx.x == 0) atomicOr(a.err, kErrPositionRange);
    pos = min(max(pos, 0), a.ctx - 1);
  }
  const int lo = key_lo(pos, a.sliding_window);
  const float* q = a.q + (int64_t(t) * a.Hq + h) * D;
  const int seq = a.seq_of_token ? a.seq_of_token[t] : 0;
  using KeyE = typename KvTraits<KV>::Key;
  using ValE = typename KvTraits<KV>::Value;
  auto at = [&](int j, int d) { return (kv_row(a, seq, j) * a.Hkv + kvh) * D + d; };
  auto kval = [&](int j, int d) { return KeyE::load(static_cast<const typename KeyE::T*>(a.k_cache), at(j, d)); };
  auto vval = [&](int j, int d) { return ValE::load(static_cast<const typename ValE::T*>(a.v_cache), at(j, d)); };
  // pass 1: max
  float mx = sink_logit(a, h);
  for (int j = lo + threadIdx.x; j <= pos; j += blockDim.x) {
    float s = 0.f;
    for (int d = 0; d < D; ++d) s = fmaf(q[d], kval(j, d), s);
    mx = fmaxf(mx, s * a.softmax_scale);
  }
  mx = warp_max(mx);
  if (threadIdx.x % WARP_SIZE == 0) red[threadIdx.x / WARP_SIZE] = mx;
  __syncthreads();
  if (threadIdx.x == 0) {
    float v = red[0];
    for (int w = 1; w < int(blockDim.x / WARP_SIZE); ++w) v = fmaxf(v, red[w]);
    bcast = v;
  }
  __syncthreads();
  mx = bcast;
  __syncthreads();
  // pass 2: denominator (thread-parallel over keys)
  float l = 0.f;
  for (int j = lo + threadIdx.x; j <= pos; j += blockDim.x) {
    float s = 0.f;
    for (int d = 0; d < D; ++d) s = fmaf(q[d], kval(j, d), s);
    l += expf(s * a.softmax_scale - mx);
  }
  l = warp_sum(l);
  if (threadIdx.x % WARP_SIZE == 0) red[threadIdx.x / WARP_SIZE] = l;
  __syncthreads();
  if (threadIdx.x == 0) {
    float v = expf(sink_logit(a, h) - mx);
    for (int w = 0; w < int(blockDim.x / WARP_SIZE); ++w) v += red[w];
    bcast = v;
  }
  __syncthreads();
  const float L = bcast;
  // pass 3: thread per output dim
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float o = 0.f;
    for (int j = lo; j <= pos; ++j) {
      float s = 0.f;
      for (int e = 0; e < D; ++e) s = fmaf(q[e], kval(j, e), s);
      o = fmaf(expf(s * a.softmax_scale - mx), vval(j, d), o);
    }
    a.out[(int64_t(t) * a.Hq + h) * D + d] = o / L;
  }
}

// ---------------------------------------------------------------------------------------------
// The plan of a mixed paged step (AttentionArgs::singles/tiles/counts): one block walks the tokens;
// each run of one sequence's consecutive tokens (Batch::run lays an item's tokens out together) is a
// single (a decode token) or is cut into tiles of at most kFlashBQ queries. Order does not matter:
// each kernel finds its work by index.
// ---------------------------------------------------------------------------------------------
__global__ void __launch_bounds__(1024) attention_paged_plan_kernel(const int32_t* seq_of_token, int n, int32_t* singles,
                                                                    int32_t* tiles, int32_t* counts) {
  __shared__ int count[2];
  if (threadIdx.x == 0) count[0] = count[1] = 0;
  __syncthreads();
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const int s = seq_of_token[i];
    if (i > 0 && seq_of_token[i - 1] == s) continue;  // inside a run: its first token plans it
    int len = 1;
    while (i + len < n && seq_of_token[i + len] == s) ++len;
    if (len == 1) {
      singles[atomicAdd(&count[0], 1)] = i;
      continue;
    }
    const int nt = (len + kFlashBQ - 1) / kFlashBQ;
    const int base = atomicAdd(&count[1], nt);
    for (int k = 0; k < nt; ++k) {
      tiles[2 * (base + k)] = i + k * kFlashBQ;
      tiles[2 * (base + k) + 1] = min(kFlashBQ, len - k * kFlashBQ);
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    counts[0] = count[0];
    counts[1] = count[1];
  }
}

}  // namespace

namespace {
// The decode call runs the tensor-core kernel (policy.h attention_decode_uses_mma: the knob, the
// device, G, the cache type and the decoding sequences: one for a session's call, a batch's for the paged one).
// A paged call passes span 0 (its ctx is the pool's rows, not one sequence's).
bool decode_uses_mma(const AttentionArgs& a, int seqs = 1, bool paged = false) {
  const int span = paged ? 0 : a.sliding_window > 0 ? std::min(a.ctx, a.sliding_window) : a.ctx;
  return attention_decode_uses_mma(current_caps(), knobs(), a.Hq, a.Hkv, a.cache == KvType::F32, seqs, span);
}

void launch_decode_mma(const AttentionArgs& a, dim3 grid, int splits, float* partial, cudaStream_t stream) {
  dispatch_kv(a.cache, [&](auto kv) {
    constexpr KvType K = decltype(kv)::value;
    if constexpr (K == KvType::F32) {
      throw runtime_error("attention: the decode mma kernel needs a 16-bit V cache (bf16, f16, f32k-f16v), got the f32 cache");
    } else {
      auto* kernel = attention_decode_mma_kernel<K>;
      const int smem = DecodeMmaLayout<K>::kSmemBytes;
      std::atomic<int>& attr_bytes = launcher_slot(kernel);  // per device, idempotent (a benign race)
      if (smem > attr_bytes.load(std::memory_order_relaxed)) {
        GPTOSS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        attr_bytes.store(smem, std::memory_order_relaxed);
      }
      launch_k(kernel, grid, 128, size_t(smem), stream, a, splits, partial);
    }
  });
  GPTOSS_CUDA_LAUNCH("attention_decode_mma_kernel");
}
}  // namespace

int attention_decode_splits(const AttentionArgs& a) {
  return decode_uses_mma(a) ? attention_decode_mma_splits(knobs(), a.ctx, a.sliding_window)
                            : attention_decode_splits(knobs(), a.ctx, a.sliding_window);
}

size_t attention_workspace_bytes(AttentionPath path, const AttentionArgs& a) {
  if (path != AttentionPath::Decode) return 0;
  return sizeof(float) * size_t(a.n) * a.Hq * attention_decode_splits(a) * (a.D + 2);
}

namespace {
// The flash kernel of `path` (Flash: mma.sync; FlashMfma: AMD, native/hip) over `blocks` query tiles.
void launch_flash(AttentionPath path, const AttentionArgs& a, int blocks, cudaStream_t stream) {
  if (path == AttentionPath::FlashMfma) {
#if defined(GPTOSS_HIP)
    return launch_attention_flash_mfma(a, blocks, stream);
#else
    throw runtime_error("attention: the MFMA flash kernel is AMD-only (native/hip/attention_mfma.hip), not in a CUDA build");
#endif
  }
  dispatch_kv(a.cache, [&](auto kv) { flash_attention_kernel<decltype(kv)::value><<<dim3(blocks, a.Hq), 128, 0, stream>>>(a); });
  GPTOSS_CUDA_LAUNCH("flash_attention_kernel");
}
}  // namespace

void launch_attention_path(AttentionPath path, const AttentionArgs& a, void* workspace, cudaStream_t stream) {
  if (a.n <= 0) return;
  switch (path) {
    case AttentionPath::Flash:
    case AttentionPath::FlashMfma: return launch_flash(path, a, ceil_div(a.n, kFlashBQ), stream);
    case AttentionPath::Decode: {
      const int splits = attention_decode_splits(a);
      float* partial = static_cast<float*>(workspace);
      if (decode_uses_mma(a)) return launch_decode_mma(a, dim3(splits, a.Hkv, a.n), splits, partial, stream);
      dispatch_kv(a.cache, [&](auto kv) {
        launch_k(attention_decode_kernel<decltype(kv)::value>, dim3(splits, a.Hkv, a.n), 256, 0, stream, a, splits, partial);
      });
      GPTOSS_CUDA_LAUNCH("attention_decode_kernel");
      return;
    }
    case AttentionPath::Naive:
      dispatch_kv(a.cache, [&](auto kv) { attention_naive_kernel<decltype(kv)::value><<<a.n * a.Hq, 128, 0, stream>>>(a); });
      GPTOSS_CUDA_LAUNCH("attention_naive_kernel");
      return;
  }
}

}  // namespace gptoss::cuda

namespace gptoss::cuda {

namespace {
// The paged workspace: [plan: counts 2, singles seqs, tiles 2 * max_tiles][partials of the singles]
struct PagedLayout {
  int max_tiles = 0, splits = 1;
  size_t plan_ints = 0, bytes = 0;
};
PagedLayout paged_layout(const AttentionArgs& a, int seqs, int sms) {
  PagedLayout l;
  const bool mixed = a.n > seqs && seqs > 1;
  const int decode_tokens = std::min(a.n, seqs);
  l.max_tiles = ceil_div(a.n, kFlashBQ) + seqs;
  l.splits = attention_paged_splits(knobs(), a.ctx, a.sliding_window, decode_tokens * a.Hkv, sms);
  l.plan_ints = mixed ? (2 + size_t(seqs) + 2 * size_t(l.max_tiles) + 63) / 64 * 64 : 0;
  const size_t partials = l.splits > 1 ? sizeof(float) * size_t(decode_tokens) * a.Hq * l.splits * (a.D + 2) : 0;
  l.bytes = sizeof(int32_t) * l.plan_ints + partials;
  return l;
}
}  // namespace

size_t attention_paged_workspace_bytes(const AttentionArgs& a, int seqs, int sms) {
  return paged_layout(a, seqs, sms).bytes;
}

void launch_attention_paged(const AttentionArgs& args, int seqs, int sms, void* workspace, cudaStream_t stream) {
  if (args.n <= 0) return;
  const PagedLayout l = paged_layout(args, seqs, sms);
  AttentionArgs a = args;
  int32_t* plan = static_cast<int32_t*>(workspace);
  float* partial = reinterpret_cast<float*>(plan + l.plan_ints);
  const bool decode_only = a.n == seqs, flash_only = seqs == 1 && a.n > 1;
  if (!decode_only && !flash_only) {
    a.counts = plan;
    a.singles = plan + 2;
    a.tiles = plan + 2 + seqs;
    attention_paged_plan_kernel<<<1, 1024, 0, stream>>>(a.seq_of_token, a.n, const_cast<int32_t*>(a.singles),
                                                         const_cast<int32_t*>(a.tiles), const_cast<int32_t*>(a.counts));
    GPTOSS_CUDA_LAUNCH("attention_paged_plan_kernel");
  }
  if (!flash_only) {
    dim3 grid(l.splits, a.Hkv, std::min(a.n, seqs));
    if (decode_uses_mma(a, std::min(a.n, seqs), true)) {
      launch_decode_mma(a, grid, l.splits, partial, stream);
    } else {
      dispatch_kv(a.cache, [&](auto kv) {
        launch_k(attention_decode_kernel<decltype(kv)::value>, grid, 256, 0, stream, a, l.splits, partial);
      });
      GPTOSS_CUDA_LAUNCH("attention_decode_kernel (paged)");
    }
  }
  if (!decode_only) launch_flash(flash_path(current_caps()), a, flash_only ? ceil_div(a.n, kFlashBQ) : l.max_tiles, stream);
}

}  // namespace gptoss::cuda
