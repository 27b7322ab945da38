// Causal GQA attention with per-head sink logits and optional sliding window, reading the KV cache
// (bf16 or f32, [ctx, kvHeads, D]). Positions are device data (CUDA-graph replay), so every kernel
// derives its key range from them on the device.
//  - prefill (n > kAttnDecodeMaxTokens, D = 64): flash attention, mma.sync bf16, 64 queries a block.
//  - decode: split-KV over a fixed number of splits (from ctx and the window, so a captured graph
//    stays valid), all query heads of one kv head per block; the last block of a (token, kv head)
//    merges the splits and the sink.
//  - other D: a plain f32 kernel.
#pragma once
#include "common.cuh"

namespace gptoss::cuda {

struct AttentionArgs {
  const float* q = nullptr;    // [n, Hq, D]
  int n = 0, Hq = 0, Hkv = 0, D = 0, ctx = 0;
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  bool cache_bf16 = true;
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

// The path is choose_attention()'s (policy.h); dispatch.cu asks it and launches that path here.
int attention_decode_splits(const AttentionArgs& a);  // policy.h's, for the knobs and this shape
size_t attention_workspace_bytes(AttentionPath path, const AttentionArgs& a);
void launch_attention_path(AttentionPath path, const AttentionArgs& a, void* workspace, cudaStream_t stream);
#if defined(GPTOSS_HIP)
// AttentionPath::FlashMfma: native/hip/attention_mfma.hip (AMD matrix cores; D = 64, 64 queries a block).
void launch_attention_flash_mfma(const AttentionArgs& a, cudaStream_t stream);
#endif

// Attention over a paged cache (a.block_tables set) for a batch step of `seqs` sequences: when every
// token is its sequence's only one (n == seqs: a decode step) the split-KV decode kernel alone;
// otherwise a plan kernel sorts tokens into singles and flash tiles, then both kernels run (each
// skipping what the plan gives the other). Splits: attention_paged_splits (policy.h).
size_t attention_paged_workspace_bytes(const AttentionArgs& a, int seqs, int sms);
void launch_attention_paged(const AttentionArgs& a, int seqs, int sms, void* workspace, cudaStream_t stream);

}  // namespace gptoss::cuda
