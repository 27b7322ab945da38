// The CPU ops (fast, multi-threaded, ISA-dispatched) and their scalar references (namespace ref,
// the obvious loops with double accumulation, used by tests through ops.reference.*). Both check
// their arguments the same way (model/op_checks.h) and throw gptoss::Error naming the argument. Semantics: model/backend.h.
#pragma once
#include <functional>
#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "model/backend.h"
#include "model/op_checks.h"

namespace gptoss::cpu {

#define GPTOSS_CPU_OPS                                                                                        \
  void embedding(const Tensor& tokens, const Tensor& table, Tensor& out);                                     \
  void rmsnorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out);                                 \
  void linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out);                        \
  void rope(Tensor& x, const Tensor& positions, const Tensor& inv_freq, float scale);                         \
  void kv_store(const Tensor& k, const Tensor& v, const Tensor& positions, Tensor& k_cache, Tensor& v_cache); \
  void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,          \
                 const Tensor& positions, int sliding_window, float softmax_scale, Tensor& out);              \
  void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,    \
                       const Tensor& positions, const Tensor& seq_of_token, const Tensor& block_tables,       \
                       int block_size, int sliding_window, float softmax_scale, Tensor& out);                 \
  void router(const Tensor& x, const Tensor& weight, const Tensor& bias, int k, Tensor& expert_idx,           \
              Tensor& expert_weight);                                                                         \
  void moe(const Tensor& x, const Tensor& expert_idx, const Tensor& expert_weight, const MoeWeights& w,       \
           const SwigluParams& swiglu, Tensor& out);                                                          \
  void add(Tensor& acc, const Tensor& x);                                                                     \
  void mxfp4_dequantize(const Tensor& packed, Tensor& out);                                                   \
  int32_t sample(const Tensor& logits, const SampleParams& params, float uniform);

GPTOSS_CPU_OPS
// linear with the activations the quantized weights are multiplied with: Q8 for a Q8_0 weight quantizes x
// per 32-block (quantize_q8) and takes integer dot products; every other case is the 4-argument linear.
void linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out, ExpertActivations act);
namespace ref {
GPTOSS_CPU_OPS
void linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out, ExpertActivations act);
}
#undef GPTOSS_CPU_OPS

// src (bf16, f16 or f32, last dim % 32 == 0) -> Q8_0 of the same shape (q8.cpp): ggml's rule, d = amax/127
// as f16, q = round(v / d). The model's load-time conversion (denseWeights: 'q8'), on the thread pool.
void quantize_q8_0(const Tensor& src, Tensor& out);

// Experts as transformers stores them dequantized (src [E, C, R]: out = x @ src[e], bf16/f16/f32) ->
// MXFP4 [E, R, C] in the Hugging Face block layout (mxfp4.cpp): per 32 values the better (smaller squared
// error) of the OCP floor scale and the round-up scale, codes rounded to nearest even. loadModel's experts: 'mxfp4'.
void quantize_mxfp4_transposed(const Tensor& src, Tensor& out);
// The same conversion from bytes that are not in memory: `read(offset, len, dst)` copies bytes
// [offset, offset + len) of the row-major source (dtype `src_dtype`, shape `src_shape` [E, C, R]) into dst,
// or throws. Each task (an expert's 32 source rows, one contiguous slab) reads its slab into its thread's
// buffer and quantizes it from there (the loader: a pread from the checkpoint, no shared mapping faulted
// in). The output bytes are identical to the in-memory form's.
using SourceReader = std::function<void(size_t offset, size_t len, void* dst)>;
void quantize_mxfp4_transposed(DType src_dtype, const Shape& src_shape, const SourceReader& read, Tensor& out);

// Experts [E, A, B] -> [E, B, A] (bf16, f16 or f32; layout.cpp): transformers' dense [E, in, out] to the
// [E, out, in] rows the GPU kernels read, or back. What loading a bf16 fine-tuned checkpoint with
// experts: 'bf16' onto CUDA does to its experts (once, at upload), on the thread pool.
void transpose_experts(const Tensor& src, Tensor& out);

// GGUF's MXFP4 (MXFP4_GGML [..., R, C]: 17-byte blocks, the E8M0 byte then byte j = value j low nibble,
// value j + 16 high) -> the Hugging Face layout (MXFP4 [..., R, C]: byte k = values 2k low, 2k + 1 high,
// scales apart). The codes and scales are copied, not re-rounded: bit for bit the same values (mxfp4.cpp).
// What a GGUF's experts become for a GPU backend, whose kernels read the Hugging Face blocks.
void mxfp4_from_ggml(const Tensor& src, Tensor& out);

// The device the CPU ops check their tensors against (model/op_checks.h holds the checks; each op
// adds only its value checks that read host memory: token ids, positions, expert ids).
inline const Device kCpuDevice{DeviceKind::CPU, 0};
// A float vector parameter stored as bf16 or f32 (biases, norm weights, sinks): element i as float.
inline float param_at(const Tensor& t, int64_t i) {
  return t.dtype == DType::BF16 ? bf16_to_f32(t.ptr<uint16_t>()[i]) : t.ptr<float>()[i];
}

// Top-k of a logit row (ties: lower index first) and the softmax over those k: shared by the fast
// router and the reference so the discrete choice is defined in one place.
void topk_softmax(const float* logits, int64_t n_experts, int k, int32_t* idx, float* weight);
// transformers GptOssExperts: gate = min(gate, limit), up = clamp(up, -limit, limit),
// out = (up + 1) * gate * sigmoid(alpha * gate). Inputs interleaved (even = gate, odd = up).
void swiglu_interleaved(const float* gate_up, int64_t inter, const SwigluParams& p, float* out);

}  // namespace gptoss::cpu
