// The argument checks of every backend op (model/backend.h), written once: device placement,
// dtypes, ranks, shape agreement, scalar ranges. Both backends call these before any work; each
// keeps only what it alone can check (the CPU's value checks that read host memory: token ids,
// positions, expert ids; CUDA's kernel limits and device-side guards). Errors are gptoss::Error
// (type_error / range_error) naming the op and argument as JS spells it ("kvStore: kCache").
#pragma once
#include <climits>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "../core/tensor.h"
#include "backend.h"

namespace gptoss::checks {

// t lives on `device` (for the CPU: any cpu tensor).
void placed(const Tensor& t, const Device& device, const char* what);
// placed(), and t has its data (and, for MXFP4, its scales): a disposed tensor stops here.
void on_device(const Tensor& t, const Device& device, const char* what);
// A float vector parameter (bias, norm weight, sinks): bf16 or f32 with n elements.
void param(const Tensor& t, int64_t n, const char* what);

void copy_from_host(const Tensor& dst, size_t bytes, const Device& device);
// logits f32 [r, V] on `device`, rows in [0, r), tops in [0, kMaxTopLogprobs], one a row.
void logprob_top(const Tensor& logits, const std::vector<int32_t>& rows, const std::vector<int>& tops, const Device& device);
void copy_to_host(const Tensor& src, size_t bytes, const Device& device);

void embedding(const Tensor& tokens, const Tensor& table, const Tensor& out, const Device& device);
void rmsnorm(const Tensor& x, const Tensor& weight, const Tensor& out, const Device& device);
void linear(const Tensor& x, const Tensor& weight, const Tensor* bias, const Tensor& out, const Device& device);
void rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq, const Device& device);
// cache_types: the KV cache types the backend's kernels read and write (its kv_types()).
void kv_store(const Tensor& k, const Tensor& v, const Tensor& positions, const Tensor& k_cache,
              const Tensor& v_cache, const Device& device, std::initializer_list<KvCacheType> cache_types);
void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
               const Tensor& positions, int sliding_window, const Tensor& out, const Device& device,
               std::initializer_list<KvCacheType> cache_types);
// attention()'s checks, and the block tables: seq_of_token i32 [n], block_tables i32 [seqs, maxBlocks],
// block_size >= 1 dividing the pool's rows.
void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                     const Tensor& positions, const Tensor& seq_of_token, const Tensor& block_tables, int block_size,
                     int sliding_window, const Tensor& out, const Device& device,
                     std::initializer_list<KvCacheType> cache_types);
void gather_rows(const Tensor& x, const Tensor& rows, const Tensor& out, const Device& device);
// max_k: the backend's own bound on k, if any (k must be in [1, min(experts, max_k)]).
void router(const Tensor& x, const Tensor& weight, const Tensor& bias, int k, const Tensor& expert_idx,
            const Tensor& expert_weight, const Device& device, int max_k = INT_MAX);
void moe(const Tensor& x, const Tensor& expert_idx, const Tensor& expert_weight, const MoeWeights& w,
         const Tensor& out, const Device& device);
void add(const Tensor& acc, const Tensor& x, const Device& device);
// The fused ops (backend.h): the checks of the ops each one composes, in the same order, so a
// fused call throws exactly what its default composition would.
void add_rmsnorm(const Tensor& x, const Tensor& residual, const Tensor& weight, const Tensor& normed,
                 const Device& device);
void qkv(const Tensor& xn, const Tensor& wq, const Tensor& bq, const Tensor& wk, const Tensor& bk, const Tensor& wv,
         const Tensor& bv, const Tensor& q, const Tensor& k, const Tensor& v, const Device& device);
void rope_kv_store(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& positions, const Tensor& inv_freq,
                   const Tensor& k_cache, const Tensor& v_cache, const Device& device,
                   std::initializer_list<KvCacheType> cache_types);
void mxfp4_dequantize(const Tensor& packed, const Tensor& out, const Device& device);
void sample(const Tensor& logits, const SampleParams& params, float uniform, const Device& device);
// What a sampler returned: the id, or the RangeError its code stands for (backend.h
// kSampleNoFiniteLogit / sample_bad_logit_code), naming the logit's position and what it holds.
int32_t sampled_token(int32_t code, const char* fn);
// The CPU samplers' row check (a scan of the row): the code for the first bad logit, or 0.
int32_t logit_row_code(const float* logits, int64_t v);
// The pipelined decode's token slot (sample_into's output, queue_token_read's input): i32, >= 1
// element, on `device`. what: the op ("sampleInto: token").
void token_slot(const Tensor& token, const Device& device, const char* what);

}  // namespace gptoss::checks
