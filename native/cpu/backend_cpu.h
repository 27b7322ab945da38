// The CPU backend: host memory, multi-threaded kernels (core/thread_pool.h), ISA chosen at run time
// (cpu_features.h). Every op forwards to the family files through ops.h.
#pragma once
#include <memory>

#include "model/backend.h"

namespace gptoss {

class CpuBackend : public Backend {
 public:
  Device device() const override { return Device{DeviceKind::CPU, 0}; }
  std::string describe() const override;

  Tensor empty(DType dtype, const Shape& shape) override;
  Tensor upload(const Tensor& host) override;
  void copy_from_host(Tensor& dst, const void* src, size_t bytes) override;
  void copy_to_host(const Tensor& src, void* dst, size_t bytes) override;
  void synchronize() override {}

  void embedding(const Tensor& tokens, const Tensor& table, Tensor& out) override;
  void rmsnorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) override;
  void set_activations(ExpertActivations a) override;
  ExpertActivations activations() const override;
  void linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) override;
  void qkv(const Tensor& xn, const Tensor& wq, const Tensor& bq, const Tensor& wk, const Tensor& bk, const Tensor& wv,
           const Tensor& bv, Tensor& q, Tensor& k, Tensor& v) override;
  void rope(Tensor& x, const Tensor& positions, const Tensor& inv_freq, float scale) override;
  void kv_store(const Tensor& k, const Tensor& v, const Tensor& positions, Tensor& k_cache,
                Tensor& v_cache) override;
  void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                 const Tensor& positions, int sliding_window, float softmax_scale, Tensor& out) override;
  bool paged_kv() const override { return true; }
  void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                       const Tensor& positions, const Tensor& seq_of_token, const Tensor& block_tables, int block_size,
                       int sliding_window, float softmax_scale, Tensor& out) override;
  void router(const Tensor& x, const Tensor& weight, const Tensor& bias, int k, Tensor& expert_idx,
              Tensor& expert_weight) override;
  void moe(const Tensor& x, const Tensor& expert_idx, const Tensor& expert_weight, const MoeWeights& w,
           const SwigluParams& swiglu, Tensor& out) override;
  void add(Tensor& acc, const Tensor& x) override;
  void mxfp4_dequantize(const Tensor& packed, Tensor& out) override;
  int32_t sample(const Tensor& logits, const SampleParams& params, float uniform) override;
};

// The process-wide CPU backend (the single CPU dispatch point; the ISA is picked per op call).
std::shared_ptr<Backend> make_cpu_backend();

}  // namespace gptoss
