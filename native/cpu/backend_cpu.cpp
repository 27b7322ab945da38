#include "backend_cpu.h"

#include <cstring>

#include "core/thread_pool.h"
#include "cpu_features.h"
#include "kernels.h"
#include "ops.h"
#include "profile.h"

namespace gptoss {

namespace cpu {

const Kernels& kernels_for(Isa isa) {
  static const Kernels portable_set{portable::mxfp4_rows, portable::mxfp4_rows_q8, kEvenOddPos, kEvenOddPos,
                                    portable::mxfp4_ggml_rows, portable::mxfp4_ggml_rows_q8, portable::q8_0_rows, portable::q8_0_rows_q8,
                                    portable::bf16_rows, portable::attention_chunk, portable::mxfp4_quantize_cols, portable::q8_0_quantize};
#if defined(GPTOSS_CPU_X86_KERNELS)
  static const Kernels avx2_set{avx2::mxfp4_rows, avx2::mxfp4_rows_q8, avx2::mxfp4_pos(), kEvenOddPos,
                                avx2::mxfp4_ggml_rows, avx2::mxfp4_ggml_rows_q8, avx2::q8_0_rows, avx2::q8_0_rows_q8,
                                avx2::bf16_rows, avx2::attention_chunk, avx2::mxfp4_quantize_cols, avx2::q8_0_quantize};
  static const Kernels avxvnni_set{avx2::mxfp4_rows, avxvnni::mxfp4_rows_q8, avx2::mxfp4_pos(), kEvenOddPos,
                                   avx2::mxfp4_ggml_rows, avxvnni::mxfp4_ggml_rows_q8, avx2::q8_0_rows, avxvnni::q8_0_rows_q8,
                                   avx2::bf16_rows, avx2::attention_chunk, avx2::mxfp4_quantize_cols, avx2::q8_0_quantize};
  static const Kernels avx512_set{avx512::mxfp4_rows, avx512::mxfp4_rows_q8, kEvenOddPos, kEvenOddPos,
                                  avx512::mxfp4_ggml_rows, avx512::mxfp4_ggml_rows_q8, avx512::q8_0_rows, avx2::q8_0_rows_q8,
                                  avx512::bf16_rows, avx512::attention_chunk, avx512::mxfp4_quantize_cols, avx512::q8_0_quantize};
  static const Kernels avx512vnni_set{avx512::mxfp4_rows, avx512vnni::mxfp4_rows_q8, kEvenOddPos, kEvenOddPos,
                                      avx512::mxfp4_ggml_rows, avx512vnni::mxfp4_ggml_rows_q8, avx512::q8_0_rows, avx2::q8_0_rows_q8,
                                      avx512::bf16_rows, avx512::attention_chunk, avx512::mxfp4_quantize_cols, avx512::q8_0_quantize};
  switch (clamp_isa(isa)) {
    case Isa::Avx512Vnni: return avx512vnni_set;
    case Isa::Avx512: return avx512_set;
    case Isa::AvxVnni: return avxvnni_set;
    case Isa::Avx2: return avx2_set;
    case Isa::Scalar: case Isa::Neon: break;
  }
#endif
#if defined(__aarch64__)
  // attention_simd.h is written in x86 ymm intrinsics: neon keeps the portable attention chunk.
  static const Kernels neon_set{neon::mxfp4_rows, neon::mxfp4_rows_q8, kEvenOddPos, kEvenOddPos,
                                neon::mxfp4_ggml_rows, neon::mxfp4_ggml_rows_q8, portable::q8_0_rows, portable::q8_0_rows_q8,
                                neon::bf16_rows, portable::attention_chunk, portable::mxfp4_quantize_cols, portable::q8_0_quantize};
  if (clamp_isa(isa) == Isa::Neon) return neon_set;
#endif
  (void)isa;
  return portable_set;
}

const Kernels& kernels() { return kernels_for(current_isa()); }

}  // namespace cpu

std::string CpuBackend::describe() const {
  return "cpu: " + std::to_string(thread_pool().threads()) + " threads, " + cpu::isa_name(cpu::current_isa());
}

Tensor CpuBackend::empty(DType dtype, const Shape& shape) { return host_empty(dtype, shape); }

Tensor CpuBackend::upload(const Tensor& host) {
  checks::placed(host, device(), "upload: tensor");
  return host;
}

void CpuBackend::copy_from_host(Tensor& dst, const void* src, size_t bytes) {
  checks::copy_from_host(dst, bytes, device());
  if (bytes) std::memcpy(dst.data, src, bytes);
}

void CpuBackend::copy_to_host(const Tensor& src, void* dst, size_t bytes) {
  checks::copy_to_host(src, bytes, device());
  if (bytes) std::memcpy(dst, src.data, bytes);
}

void CpuBackend::embedding(const Tensor& tokens, const Tensor& table, Tensor& out) { cpu::ProfileScope ps("embedding"); cpu::embedding(tokens, table, out); }
void CpuBackend::rmsnorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) { cpu::ProfileScope ps("rmsnorm"); cpu::rmsnorm(x, weight, eps, out); }
namespace {
// Set per forward pass by the model (set_activations), read by the linears it issues on the same thread:
// models with different modes may run at once on different threads.
thread_local ExpertActivations t_activations = ExpertActivations::F32;
}  // namespace
void CpuBackend::set_activations(ExpertActivations a) { t_activations = a; }
ExpertActivations CpuBackend::activations() const { return t_activations; }
void CpuBackend::linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) {
  cpu::ProfileScope ps("linear", cpu::profile_shape_key(x, weight));
  cpu::linear(x, weight, bias, out, t_activations);
}
namespace cpu {
void qkv_q8_0(const Tensor& x, const Tensor* const w[3], const Tensor* const bias[3], Tensor* const out[3],
              ExpertActivations act);  // q8.cpp
}
void CpuBackend::qkv(const Tensor& xn, const Tensor& wq, const Tensor& bq, const Tensor& wk, const Tensor& bk,
                     const Tensor& wv, const Tensor& bv, Tensor& q, Tensor& k, Tensor& v) {
  // Q8_0 projections (a GGUF's) in one dispatch; other forms as three linears (Backend::qkv).
  if (wq.dtype != DType::Q8_0 || wk.dtype != DType::Q8_0 || wv.dtype != DType::Q8_0) return Backend::qkv(xn, wq, bq, wk, bk, wv, bv, q, k, v);
  cpu::ProfileScope ps("qkv", cpu::profile_shape_key(xn, wq));
  checks::qkv(xn, wq, bq, wk, bk, wv, bv, q, k, v, cpu::kCpuDevice);
  if (xn.dim(0) == 0) return;
  const Tensor* w[3] = {&wq, &wk, &wv};
  const Tensor* b[3] = {&bq, &bk, &bv};
  Tensor* out[3] = {&q, &k, &v};
  cpu::qkv_q8_0(xn, w, b, out, t_activations);
}
void CpuBackend::rope(Tensor& x, const Tensor& positions, const Tensor& inv_freq, float scale) {
  cpu::ProfileScope ps("rope");
  cpu::rope(x, positions, inv_freq, scale);
}
void CpuBackend::kv_store(const Tensor& k, const Tensor& v, const Tensor& positions, Tensor& k_cache,
                          Tensor& v_cache) {
  cpu::ProfileScope ps("kv_store");
  cpu::kv_store(k, v, positions, k_cache, v_cache);
}
void CpuBackend::attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                           const Tensor& positions, int sliding_window, float softmax_scale, Tensor& out) {
  cpu::ProfileScope ps("attention", q.dim(0) == 1 ? "n=1" : "n>1");
  cpu::attention(q, k_cache, v_cache, sinks, positions, sliding_window, softmax_scale, out);
}
void CpuBackend::paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                                 const Tensor& positions, const Tensor& seq_of_token, const Tensor& block_tables,
                                 int block_size, int sliding_window, float softmax_scale, Tensor& out) {
  cpu::ProfileScope ps("attention", q.dim(0) == 1 ? "paged n=1" : "paged n>1");
  cpu::paged_attention(q, k_cache, v_cache, sinks, positions, seq_of_token, block_tables, block_size, sliding_window,
                       softmax_scale, out);
}
void CpuBackend::router(const Tensor& x, const Tensor& weight, const Tensor& bias, int k, Tensor& expert_idx,
                        Tensor& expert_weight) {
  cpu::ProfileScope ps("router");
  cpu::router(x, weight, bias, k, expert_idx, expert_weight);
}
void CpuBackend::moe(const Tensor& x, const Tensor& expert_idx, const Tensor& expert_weight, const MoeWeights& w,
                     const SwigluParams& swiglu, Tensor& out) {
  cpu::ProfileScope ps("moe", x.dim(0) == 1 ? "n=1" : "n>1");
  cpu::moe(x, expert_idx, expert_weight, w, swiglu, out);
}
void CpuBackend::add(Tensor& acc, const Tensor& x) {
  cpu::ProfileScope ps("add");
  cpu::add(acc, x);
}
void CpuBackend::mxfp4_dequantize(const Tensor& packed, Tensor& out) { cpu::mxfp4_dequantize(packed, out); }
int32_t CpuBackend::sample(const Tensor& logits, const SampleParams& params, float uniform) {
  cpu::ProfileScope ps("sample");
  return cpu::sample(logits, params, uniform);
}

std::shared_ptr<Backend> make_cpu_backend() {
  static std::shared_ptr<Backend> backend = std::make_shared<CpuBackend>();
  return backend;
}

}  // namespace gptoss
