// Causal GQA attention with per-head sink logits and optional sliding window, reading the KV cache
// (bf16, f16, f32, or f32 K with f16 V: kv.cuh's KvType, [ctx, kvHeads, D]). Positions are device data (CUDA-graph
// replay), so every kernel derives its key range from them on the device.
//  - prefill (n > kAttnDecodeMaxTokens, D = 64): flash attention, mma.sync bf16, 64 queries a block.
//  - decode: split-KV over a fixed number of splits (from ctx and the window, so a captured graph
//    stays valid), all query heads of one kv head per block; the last block of a (token, kv head)
//    merges the splits and the sink. GPTOSS_CUDA_ATTN_DECODE=mma (policy.h attention_decode_uses_mma;
//    measured on H100s, bench/RESULTS.md): the same grid on the tensor cores (attention.cu, "decode mma").
//  - other D: a plain f32 kernel.
#pragma once
#include "common.cuh"
#include "kv.cuh"

namespace gptoss::cuda {

struct AttentionArgs {
  const float* q = nullptr;    // [n, Hq, D]
  int n = 0, Hq = 0, Hkv = 0, D = 0, ctx = 0;
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  KvType cache = KvType::F16;  // the K and V caches' element types (kv.cuh)
  const void* sinks = nullptr;  // [Hq]
  bool sinks_bf16 = true;
  const int32_t* positions = nullptr;  // [n]
  int sliding_window = 0;
  float softmax_scale = 0.125f;
  float* out = nullptr;        // [n, Hq, D]
  int* err = nullptr;
  int* counters = nullptr;     // the backend's last-block counters (decode path)
  // Paged cache (a pool of blocks shared by a batch's sequences, model/kv_cache.h): key j of query t
  // is cache row block_tables[seq_of_token[t] * table_width + j / block_size] * block_size + j % block_size,
  // and ctx is the logical limit table_width * block_size. Null block_tables: row j (a session's cache).
  const int32_t* seq_of_token = nullptr;  // [n]
  const int32_t* block_tables = nullptr;  // [seqs, table_width]
  int table_width = 0, block_size = 0;
  // Paged steps that mix decode items and prompt chunks (more tokens than sequences): the plan that
  // attention_paged_plan_kernel writes to the workspace. The decode kernel runs the tokens that are
  // alone in their sequence this step (singles[z], z < counts[0]), the flash kernel the chunks' tiles
  // of at most kFlashBQ consecutive queries of one sequence (tiles[2 i] first, tiles[2 i + 1] count,
  // i < counts[1]). Null: every token is a single (decode kernel) or, for flash, 64-query tiles from 0.
  const int32_t* singles = nullptr;
  const int32_t* tiles = nullptr;
  const int32_t* counts = nullptr;
};

// ---- shared by the kernels (attention.cu; the MFMA flash kernel, native/hip/attention_mfma.hip) ----
// The cache row of key j as query t's sequence sees it (AttentionArgs: paged or contiguous).
__device__ __forceinline__ int64_t kv_row(const AttentionArgs& a, int seq, int j) {
  if (!a.block_tables) return j;
  return int64_t(a.block_tables[int64_t(seq) * a.table_width + j / a.block_size]) * a.block_size + j % a.block_size;
}

// Visible keys of a query at `pos`: [lo, pos] (window: pos - j < W), clipped to the cache.
__device__ __forceinline__ int key_lo(int pos, int window) { return window > 0 ? max(0, pos - window + 1) : 0; }

// 8 consecutive values of K and of V at element offset `off` of the caches, as the flash kernels'
// bf16 operands: hi words kw, vw (pairs, low half = lower index) and, for a cache that is not bf16,
// lo words kl, vl (x - hi, so hi + lo holds an f32 to ~2^-17 and an f16 value exactly: its 11
// significant bits fit, and its range is inside bf16's). A bf16 cache leaves kl, vl untouched.
// 8 consecutive values of one cache (element type E: kv.cuh's KvElem) at element offset `off`, as f32:
// two 16-byte loads of an f32 cache, one of a 16-bit one.
template <class E>
__device__ __forceinline__ void cache_chunk8(const void* cache, int64_t off, float (&x)[8]) {
  if constexpr (!E::kHalfWidth) {
    const float4* p = reinterpret_cast<const float4*>(static_cast<const float*>(cache) + off);
    const float4 x0 = p[0], x1 = p[1];
    x[0] = x0.x; x[1] = x0.y; x[2] = x0.z; x[3] = x0.w; x[4] = x1.x; x[5] = x1.y; x[6] = x1.z; x[7] = x1.w;
  } else {
    const uint4 w = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(cache) + off);
    const uint32_t wp[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      x[2 * q] = E::lo(wp[q]);
      x[2 * q + 1] = E::hi(wp[q]);
    }
  }
}

// 8 consecutive values of K and of V at element offset `off` of the caches, as the flash kernels'
// bf16 operands: hi words kw, vw (pairs, low half = lower index) and, for a cache that is not bf16,
// lo words kl, vl (x - hi, so hi + lo holds an f32 to ~2^-17 and an f16 value exactly: its 11
// significant bits fit, and its range is inside bf16's). K and V are read each with its own element
// type (f32k-f16v: f32 K, f16 V). A bf16 cache leaves kl, vl untouched.
template <KvType KV>
__device__ __forceinline__ void flash_kv_chunk(const AttentionArgs& a, int64_t off, uint32_t (&kw)[4], uint32_t (&vw)[4],
                                               uint32_t (&kl)[4], uint32_t (&vl)[4]) {
  using KeyE = typename KvTraits<KV>::Key;
  using ValE = typename KvTraits<KV>::Value;
  if constexpr (KV == KvType::BF16) {
    uint4 kv = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(a.k_cache) + off);
    uint4 vv = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(a.v_cache) + off);
    kw[0] = kv.x; kw[1] = kv.y; kw[2] = kv.z; kw[3] = kv.w;
    vw[0] = vv.x; vw[1] = vv.y; vw[2] = vv.z; vw[3] = vv.w;
  } else {
    float kf[8], vf[8];
    cache_chunk8<KeyE>(a.k_cache, off, kf);
    cache_chunk8<ValE>(a.v_cache, off, vf);
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      kw[q] = pack_bf16x2(kf[2 * q], kf[2 * q + 1]);
      kl[q] = pack_bf16x2(kf[2 * q] - bf16_lo(kw[q]), kf[2 * q + 1] - bf16_hi(kw[q]));
      vw[q] = pack_bf16x2(vf[2 * q], vf[2 * q + 1]);
      vl[q] = pack_bf16x2(vf[2 * q] - bf16_lo(vw[q]), vf[2 * q + 1] - bf16_hi(vw[q]));
    }
  }
}

// The path is choose_attention()'s (policy.h); dispatch.cu asks it and launches that path here.
int attention_decode_splits(const AttentionArgs& a);  // the decode kernel's (SIMT or mma: policy.h), for the knobs and this shape
size_t attention_workspace_bytes(AttentionPath path, const AttentionArgs& a);
void launch_attention_path(AttentionPath path, const AttentionArgs& a, void* workspace, cudaStream_t stream);
#if defined(GPTOSS_HIP)
// AttentionPath::FlashMfma: native/hip/attention_mfma.hip (AMD matrix cores; D = 64, 64 queries a
// block; `blocks` along x: ceil(n / 64), or a paged plan's tile bound).
void launch_attention_flash_mfma(const AttentionArgs& a, int blocks, cudaStream_t stream);
#endif

// Attention over a paged cache (a.block_tables set) for a batch step of `seqs` sequences: when every
// token is its sequence's only one (n == seqs: a decode step) the split-KV decode kernel alone;
// otherwise a plan kernel sorts tokens into singles and flash tiles, then both kernels run (each
// skipping what the plan gives the other). Splits: attention_paged_splits (policy.h).
size_t attention_paged_workspace_bytes(const AttentionArgs& a, int seqs, int sms);
void launch_attention_paged(const AttentionArgs& a, int seqs, int sms, void* workspace, cudaStream_t stream);

}  // namespace gptoss::cuda
