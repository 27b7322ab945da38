// KV-cache store and causal attention with per-head sinks (openai/gpt-oss torch/model.py sdpa;
// transformers eager_attention_forward): softmax over [q.k * scale for visible keys, sink], sink
// dropped after the softmax. Sliding layers see keys with position - j < window.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "kernels.h"
#include "ops.h"

namespace gptoss::cpu {

namespace portable {
float dot(const float* a, const float* b, int64_t n) {
  float part[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] += a[i + j] * b[i + j];
  float s = 0.f;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int j = 0; j < 8; ++j) s += part[j];
  return s;
}
void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}
float exp_sum(float* s, int64_t n, float m) {
  float sum = 0.f;
  for (int64_t i = 0; i < n; ++i) sum += (s[i] = std::exp(s[i] - m));
  return sum;
}
}  // namespace portable

// ---------------- kv_store ----------------
static void check_kv_store(const Tensor& k, const Tensor& v, const Tensor& positions, const Tensor& k_cache,
                           const Tensor& v_cache) {
  expect_cpu(k, "kvStore: k");
  expect_cpu(v, "kvStore: v");
  expect_cpu(positions, "kvStore: positions");
  expect_cpu(k_cache, "kvStore: kCache");
  expect_cpu(v_cache, "kvStore: vCache");
  expect_dtype(k, DType::F32, "kvStore: k");
  expect_dtype(v, DType::F32, "kvStore: v");
  expect_ndim(k, 3, "kvStore: k");
  expect_shape(v, k.shape, "kvStore: v");
  expect_dtype(positions, DType::I32, "kvStore: positions");
  expect_shape(positions, {k.dim(0)}, "kvStore: positions");
  expect_dtype(k_cache, DType::F32, "kvStore: kCache");
  expect_dtype(v_cache, DType::F32, "kvStore: vCache");
  expect_ndim(k_cache, 3, "kvStore: kCache");
  if (k_cache.dim(1) != k.dim(1) || k_cache.dim(2) != k.dim(2))
    throw range_error("kvStore: kCache " + k_cache.describe() + " does not match k " + k.describe() +
                      " (expected [ctx, " + std::to_string(k.dim(1)) + ", " + std::to_string(k.dim(2)) + "])");
  expect_shape(v_cache, k_cache.shape, "kvStore: vCache");
  for (int64_t i = 0; i < k.dim(0); ++i) {
    int32_t p = positions.ptr<int32_t>()[i];
    if (p < 0 || p >= k_cache.dim(0))
      throw range_error("kvStore: position " + std::to_string(p) + " at index " + std::to_string(i) +
                        " is outside the cache of " + std::to_string(k_cache.dim(0)) + " rows");
  }
}

static void kv_store_impl(const Tensor& k, const Tensor& v, const Tensor& positions, Tensor& k_cache,
                          Tensor& v_cache) {
  const int64_t row = k.dim(1) * k.dim(2);
  for (int64_t i = 0; i < k.dim(0); ++i) {
    int64_t p = positions.ptr<int32_t>()[i];
    std::copy_n(k.ptr<float>() + i * row, row, k_cache.ptr<float>() + p * row);
    std::copy_n(v.ptr<float>() + i * row, row, v_cache.ptr<float>() + p * row);
  }
}

void kv_store(const Tensor& k, const Tensor& v, const Tensor& positions, Tensor& k_cache, Tensor& v_cache) {
  check_kv_store(k, v, positions, k_cache, v_cache);
  kv_store_impl(k, v, positions, k_cache, v_cache);
}

// ---------------- attention ----------------
void check_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                     const Tensor& positions, int sliding_window, const Tensor& out) {
  expect_cpu(q, "attention: q");
  expect_cpu(k_cache, "attention: kCache");
  expect_cpu(v_cache, "attention: vCache");
  expect_cpu(sinks, "attention: sinks");
  expect_cpu(positions, "attention: positions");
  expect_cpu(out, "attention: out");
  expect_dtype(q, DType::F32, "attention: q");
  expect_ndim(q, 3, "attention: q");
  expect_dtype(k_cache, DType::F32, "attention: kCache");
  expect_dtype(v_cache, DType::F32, "attention: vCache");
  expect_ndim(k_cache, 3, "attention: kCache");
  expect_shape(v_cache, k_cache.shape, "attention: vCache");
  const int64_t hq = q.dim(1), hkv = k_cache.dim(1), d = q.dim(2);
  if (k_cache.dim(2) != d) throw range_error("attention: kCache head dim does not match q: " + k_cache.describe());
  if (hkv == 0 || hq % hkv != 0)
    throw range_error("attention: query heads (" + std::to_string(hq) + ") must be a multiple of kv heads (" +
                      std::to_string(hkv) + ")");
  expect_param(sinks, hq, "attention: sinks");
  expect_dtype(positions, DType::I32, "attention: positions");
  expect_shape(positions, {q.dim(0)}, "attention: positions");
  if (sliding_window < 0) throw range_error("attention: slidingWindow must be >= 0");
  expect_dtype(out, DType::F32, "attention: out");
  expect_shape(out, q.shape, "attention: out");
  for (int64_t i = 0; i < q.dim(0); ++i) {
    int32_t p = positions.ptr<int32_t>()[i];
    if (p < 0 || p >= k_cache.dim(0))
      throw range_error("attention: position " + std::to_string(p) + " at index " + std::to_string(i) +
                        " is outside the cache of " + std::to_string(k_cache.dim(0)) + " rows");
  }
}

static inline int64_t first_visible(int64_t pos, int sliding_window) {
  return sliding_window > 0 ? std::max<int64_t>(0, pos - sliding_window + 1) : 0;
}

void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
               const Tensor& positions, int sliding_window, float softmax_scale, Tensor& out) {
  check_attention(q, k_cache, v_cache, sinks, positions, sliding_window, out);
  const int64_t n = q.dim(0), hq = q.dim(1), hkv = k_cache.dim(1), d = q.dim(2), group = hq / hkv;
  const Kernels& kern = kernels();
  // One work item = (query token, kv head): the group's query heads share each K/V row load.
  parallel_for(n * hkv, [&](int64_t w0, int64_t w1) {
    std::vector<float> scores;
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t i = w / hkv, kvh = w % hkv;
      const int64_t pos = positions.ptr<int32_t>()[i];
      const int64_t lo = first_visible(pos, sliding_window), len = pos - lo + 1;
      scores.resize(size_t(len * group));
      for (int64_t j = 0; j < len; ++j) {
        const float* kr = k_cache.ptr<float>() + ((lo + j) * hkv + kvh) * d;
        for (int64_t g = 0; g < group; ++g)
          scores[g * len + j] = kern.dot(q.ptr<float>() + (i * hq + kvh * group + g) * d, kr, d) * softmax_scale;
      }
      for (int64_t g = 0; g < group; ++g) {
        const int64_t h = kvh * group + g;
        float* s = scores.data() + g * len;
        const float sink = param_at(sinks, h);
        float m = sink;
        for (int64_t j = 0; j < len; ++j) m = std::max(m, s[j]);
        const float denom = std::exp(sink - m) + kern.exp_sum(s, len, m);
        float* o = out.ptr<float>() + (i * hq + h) * d;
        std::fill_n(o, d, 0.f);
        for (int64_t j = 0; j < len; ++j) kern.axpy(s[j], v_cache.ptr<float>() + ((lo + j) * hkv + kvh) * d, o, d);
        const float inv = 1.0f / denom;
        for (int64_t c = 0; c < d; ++c) o[c] *= inv;
      }
    }
  });
}

namespace ref {
void kv_store(const Tensor& k, const Tensor& v, const Tensor& positions, Tensor& k_cache, Tensor& v_cache) {
  check_kv_store(k, v, positions, k_cache, v_cache);
  kv_store_impl(k, v, positions, k_cache, v_cache);
}

void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
               const Tensor& positions, int sliding_window, float softmax_scale, Tensor& out) {
  check_attention(q, k_cache, v_cache, sinks, positions, sliding_window, out);
  const int64_t n = q.dim(0), hq = q.dim(1), hkv = k_cache.dim(1), d = q.dim(2), group = hq / hkv;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < hq; ++h) {
      const int64_t kvh = h / group, pos = positions.ptr<int32_t>()[i];
      const int64_t lo = first_visible(pos, sliding_window);
      const float* qv = q.ptr<float>() + (i * hq + h) * d;
      std::vector<double> s;
      double m = param_at(sinks, h);
      for (int64_t j = lo; j <= pos; ++j) {
        double acc = 0;
        for (int64_t c = 0; c < d; ++c) acc += double(qv[c]) * k_cache.ptr<float>()[(j * hkv + kvh) * d + c];
        s.push_back(acc * softmax_scale);
        m = std::max(m, s.back());
      }
      double denom = std::exp(param_at(sinks, h) - m);
      for (double& x : s) denom += (x = std::exp(x - m));
      for (int64_t c = 0; c < d; ++c) {
        double acc = 0;
        for (int64_t j = lo; j <= pos; ++j) acc += s[j - lo] * v_cache.ptr<float>()[(j * hkv + kvh) * d + c];
        out.ptr<float>()[(i * hq + h) * d + c] = float(acc / denom);
      }
    }
}
}  // namespace ref

}  // namespace gptoss::cpu
