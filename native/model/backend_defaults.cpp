// The Backend interface's out-of-line default bodies (model/backend.h) and the expert-activation
// names. Apart from backend.cpp (get_backend: the CPU backend, the CUDA probe, the HIP loader) because
// the HIP plugin (native/hip/hip.cmake) links this file too: its backend derives from Backend, and
// this file holds Backend's key function, hence its vtable and typeinfo, without pulling the CPU
// backend or the loader into the plugin.
#include <algorithm>
#include <vector>

#include "backend.h"
#include "op_checks.h"

namespace gptoss {

const char* expert_activations_name(ExpertActivations a) {
  return a == ExpertActivations::Q8 ? "q8" : a == ExpertActivations::Bf16 ? "bf16" : "f32";
}

ExpertActivations parse_expert_activations(const std::string& s, const std::string& what) {
  if (s == "f32") return ExpertActivations::F32;
  if (s == "q8") return ExpertActivations::Q8;
  if (s == "bf16") return ExpertActivations::Bf16;
  throw range_error(what + " must be 'f32', 'q8' or 'bf16', got '" + s + "'");
}

std::string kv_cache_name(KvCacheType t) {
  if (t.key == t.value) return dtype_name(t.key);
  return std::string(dtype_name(t.key)) + "k-" + dtype_name(t.value) + "v";
}

KvCacheType parse_kv_cache(const std::string& s, const std::string& what) {
  for (KvCacheType t : {kKvF16, kKvBF16, kKvF32, kKvF32KF16V})
    if (s == kv_cache_name(t)) return t;
  throw range_error(what + " must be 'f16', 'bf16', 'f32' or 'f32k-f16v', got '" + s + "'");
}

uint64_t kv_cache_bytes(KvCacheType t, int64_t elements) {
  return dtype_bytes(t.key, elements) + dtype_bytes(t.value, elements);
}

void Backend::gather_rows(const Tensor& x, const Tensor& rows, Tensor& out) {
  checks::gather_rows(x, rows, out, device());
  const int64_t n = x.dim(0), c = x.dim(1), r = rows.dim(0);
  std::vector<float> xs(static_cast<size_t>(n * c)), os(static_cast<size_t>(r * c));
  std::vector<int32_t> idx(static_cast<size_t>(r));
  copy_to_host(x, xs.data(), xs.size() * sizeof(float));
  copy_to_host(rows, idx.data(), idx.size() * sizeof(int32_t));
  for (int64_t i = 0; i < r; ++i) {
    if (idx[size_t(i)] < 0 || idx[size_t(i)] >= n)
      throw range_error("gatherRows: rows[" + std::to_string(i) + "] = " + std::to_string(idx[size_t(i)]) +
                        " is outside x's " + std::to_string(n) + " rows");
    std::copy_n(xs.data() + idx[size_t(i)] * c, c, os.data() + i * c);
  }
  copy_from_host(out, os.data(), os.size() * sizeof(float));
}

std::vector<int32_t> Backend::sample_rows(const Tensor& logits, const std::vector<int32_t>& rows,
                                          const std::vector<SampleParams>& params, const std::vector<float>& uniforms) {
  if (params.size() != rows.size() || uniforms.size() != rows.size())
    throw range_error("sampleRows: rows, params and uniforms must have one entry per draw");
  std::vector<int32_t> out(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || rows[i] >= logits.dim(0))
      throw range_error("sampleRows: rows[" + std::to_string(i) + "] = " + std::to_string(rows[i]) + " is outside the logits' " +
                        std::to_string(logits.dim(0)) + " rows");
    out[i] = sample(logits.rows(rows[i], 1), params[i], uniforms[i]);
  }
  return out;
}


std::vector<RowTop> Backend::logprob_top(const Tensor& logits, const std::vector<int32_t>& rows, const std::vector<int>& tops) {
  checks::logprob_top(logits, rows, tops, device());
  std::vector<RowTop> out;
  std::vector<float> host;
  for (size_t j = 0; j < rows.size(); ++j) {
    copy_logit_row(*this, logits, rows[j], host);
    out.push_back(row_top(host.data(), int64_t(host.size()), tops[j]));
  }
  return out;
}

float Backend::logit_at(const Tensor& logits, int64_t row, int32_t id) {
  if (id < 0 || id >= logits.dim(1)) throw range_error("logitAt: id " + std::to_string(id) + " is outside the vocabulary");
  const Tensor one = logits.rows(row, 1).reshaped({logits.dim(1), 1}).rows(id, 1);
  float v = 0.f;
  copy_to_host(one, &v, sizeof v);
  return v;
}

Backend::RowsTicket Backend::queue_sample_rows(const Tensor& logits, const std::vector<int32_t>& rows,
                                               const std::vector<SampleParams>& params, const std::vector<float>& uniforms,
                                               Tensor& tokens) {
  if (tokens.dtype != DType::I32 || tokens.ndim() != 1 || !(tokens.device == device()))
    throw type_error("queueSampleRows: tokens must be i32 [n] on " + device().str() + ", got " + tokens.describe());
  for (size_t j = 0; j < rows.size(); ++j)
    if (rows[j] < 0 || rows[j] >= tokens.dim(0))
      throw range_error("queueSampleRows: rows[" + std::to_string(j) + "] = " + std::to_string(rows[j]) + " is outside the tokens' " +
                        std::to_string(tokens.dim(0)) + " rows");
  RowsTicket t;
  t.ids = sample_rows(logits, rows, params, uniforms);
  t.ready = true;
  for (size_t j = 0; j < rows.size(); ++j) {
    const int32_t id = t.ids[j] < 0 ? 0 : t.ids[j];
    Tensor slot = tokens.rows(rows[j], 1);
    copy_from_host(slot, &id, sizeof id);
  }
  return t;
}

}  // namespace gptoss
