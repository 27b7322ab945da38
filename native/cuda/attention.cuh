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
};

// The path is choose_attention()'s (policy.h); dispatch.cu asks it and launches that path here.
int attention_decode_splits(const AttentionArgs& a);  // policy.h's, for the knobs and this shape
size_t attention_workspace_bytes(AttentionPath path, const AttentionArgs& a);
void launch_attention_path(AttentionPath path, const AttentionArgs& a, void* workspace, cudaStream_t stream);
#if defined(GPTOSS_HIP)
// AttentionPath::FlashMfma: native/hip/attention_mfma.hip (AMD matrix cores; D = 64, 64 queries a block).
void launch_attention_flash_mfma(const AttentionArgs& a, cudaStream_t stream);
#endif

}  // namespace gptoss::cuda
