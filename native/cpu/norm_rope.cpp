// Elementwise and row-wise ops: embedding lookup, RMSNorm, rotary embedding, residual add.
#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "ops.h"

namespace gptoss::cpu {

// ---------------- embedding ----------------
static void check_embedding(const Tensor& tokens, const Tensor& table, const Tensor& out) {
  expect_cpu(tokens, "embedding: tokens");
  expect_cpu(table, "embedding: table");
  expect_cpu(out, "embedding: out");
  expect_dtype(tokens, DType::I32, "embedding: tokens");
  expect_ndim(tokens, 1, "embedding: tokens");
  if (table.dtype != DType::BF16 && table.dtype != DType::F32)
    throw type_error("embedding: table must be bf16 or f32, got " + table.describe());
  expect_ndim(table, 2, "embedding: table");
  expect_dtype(out, DType::F32, "embedding: out");
  expect_shape(out, {tokens.dim(0), table.dim(1)}, "embedding: out");
  const int32_t* ids = tokens.ptr<int32_t>();
  for (int64_t i = 0; i < tokens.dim(0); ++i)
    if (ids[i] < 0 || ids[i] >= table.dim(0))
      throw range_error("embedding: token id " + std::to_string(ids[i]) + " at index " + std::to_string(i) +
                        " is out of range for a vocabulary of " + std::to_string(table.dim(0)));
}

static void embed_rows(const Tensor& tokens, const Tensor& table, Tensor& out, int64_t i0, int64_t i1) {
  const int64_t h = table.dim(1);
  for (int64_t i = i0; i < i1; ++i) {
    int64_t id = tokens.ptr<int32_t>()[i];
    float* dst = out.ptr<float>() + i * h;
    if (table.dtype == DType::BF16) {
      const uint16_t* src = table.ptr<uint16_t>() + id * h;
      for (int64_t c = 0; c < h; ++c) dst[c] = bf16_to_f32(src[c]);
    } else {
      const float* src = table.ptr<float>() + id * h;
      for (int64_t c = 0; c < h; ++c) dst[c] = src[c];
    }
  }
}

void embedding(const Tensor& tokens, const Tensor& table, Tensor& out) {
  check_embedding(tokens, table, out);
  parallel_for(tokens.dim(0), [&](int64_t a, int64_t b) { embed_rows(tokens, table, out, a, b); }, 4);
}

// ---------------- rmsnorm ----------------
static void check_rmsnorm(const Tensor& x, const Tensor& weight, const Tensor& out) {
  expect_cpu(x, "rmsnorm: x");
  expect_cpu(weight, "rmsnorm: weight");
  expect_cpu(out, "rmsnorm: out");
  expect_dtype(x, DType::F32, "rmsnorm: x");
  if (x.ndim() < 1) throw range_error("rmsnorm: x must have at least one dimension, got " + x.describe());
  expect_param(weight, x.dim(-1), "rmsnorm: weight");
  expect_dtype(out, DType::F32, "rmsnorm: out");
  expect_shape(out, x.shape, "rmsnorm: out");
}

void rmsnorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  check_rmsnorm(x, weight, out);
  const int64_t h = x.dim(-1), rows = h ? x.numel() / h : 0;
  std::vector<float> w(static_cast<size_t>(h));
  for (int64_t c = 0; c < h; ++c) w[c] = param_at(weight, c);
  parallel_for(rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x.ptr<float>() + r * h;
      float* yr = out.ptr<float>() + r * h;
      float part[16] = {};
      int64_t c = 0;
      for (; c + 16 <= h; c += 16)
        for (int j = 0; j < 16; ++j) part[j] += xr[c + j] * xr[c + j];
      float ss = 0.f;
      for (; c < h; ++c) ss += xr[c] * xr[c];
      for (int j = 0; j < 16; ++j) ss += part[j];
      const float inv = 1.0f / std::sqrt(ss / float(h) + eps);
      for (c = 0; c < h; ++c) yr[c] = w[c] * (xr[c] * inv);
    }
  });
}

// ---------------- rope ----------------
static void check_rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq) {
  expect_cpu(x, "rope: x");
  expect_cpu(positions, "rope: positions");
  expect_cpu(inv_freq, "rope: invFreq");
  expect_dtype(x, DType::F32, "rope: x");
  expect_ndim(x, 3, "rope: x");
  if (x.dim(2) % 2 != 0) throw range_error("rope: x head dim must be even, got " + x.describe());
  expect_dtype(positions, DType::I32, "rope: positions");
  expect_shape(positions, {x.dim(0)}, "rope: positions");
  expect_dtype(inv_freq, DType::F32, "rope: invFreq");
  expect_shape(inv_freq, {x.dim(2) / 2}, "rope: invFreq");
}

// transformers: freqs = inv_freq * position in f32, cos/sin in f32, times attention_scaling.
static void rope_rows(Tensor& x, const Tensor& positions, const Tensor& inv_freq, float scale, int64_t i0,
                      int64_t i1) {
  const int64_t heads = x.dim(1), d = x.dim(2), half = d / 2;
  std::vector<float> c(static_cast<size_t>(half)), s(static_cast<size_t>(half));
  for (int64_t i = i0; i < i1; ++i) {
    const float pos = float(positions.ptr<int32_t>()[i]);
    for (int64_t j = 0; j < half; ++j) {
      const float angle = pos * inv_freq.ptr<float>()[j];
      c[j] = std::cos(angle) * scale;
      s[j] = std::sin(angle) * scale;
    }
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x.ptr<float>() + (i * heads + h) * d;
      for (int64_t j = 0; j < half; ++j) {
        const float x1 = v[j], x2 = v[j + half];
        v[j] = x1 * c[j] - x2 * s[j];
        v[j + half] = x2 * c[j] + x1 * s[j];
      }
    }
  }
}

void rope(Tensor& x, const Tensor& positions, const Tensor& inv_freq, float scale) {
  check_rope(x, positions, inv_freq);
  parallel_for(x.dim(0), [&](int64_t a, int64_t b) { rope_rows(x, positions, inv_freq, scale, a, b); });
}

// ---------------- add ----------------
static void check_add(const Tensor& acc, const Tensor& x) {
  expect_cpu(acc, "add: acc");
  expect_cpu(x, "add: x");
  expect_dtype(acc, DType::F32, "add: acc");
  expect_dtype(x, DType::F32, "add: x");
  expect_shape(x, acc.shape, "add: x");
}

void add(Tensor& acc, const Tensor& x) {
  check_add(acc, x);
  float* a = acc.ptr<float>();
  const float* b = x.ptr<float>();
  parallel_for(acc.numel(), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) a[i] += b[i];
  }, 1 << 14);
}

// ---------------- references ----------------
namespace ref {
void embedding(const Tensor& tokens, const Tensor& table, Tensor& out) {
  check_embedding(tokens, table, out);
  embed_rows(tokens, table, out, 0, tokens.dim(0));
}

void rmsnorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  check_rmsnorm(x, weight, out);
  const int64_t h = x.dim(-1), rows = h ? x.numel() / h : 0;
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t c = 0; c < h; ++c) ss += double(x.ptr<float>()[r * h + c]) * x.ptr<float>()[r * h + c];
    double inv = 1.0 / std::sqrt(ss / double(h) + eps);
    for (int64_t c = 0; c < h; ++c)
      out.ptr<float>()[r * h + c] = float(param_at(weight, c) * (x.ptr<float>()[r * h + c] * inv));
  }
}

void rope(Tensor& x, const Tensor& positions, const Tensor& inv_freq, float scale) {
  check_rope(x, positions, inv_freq);
  const int64_t n = x.dim(0), heads = x.dim(1), d = x.dim(2), half = d / 2;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t j = 0; j < half; ++j) {
        const float angle = float(positions.ptr<int32_t>()[i]) * inv_freq.ptr<float>()[j];
        const double c = std::cos(double(angle)) * scale, s = std::sin(double(angle)) * scale;
        float* v = x.ptr<float>() + (i * heads + h) * d;
        const double x1 = v[j], x2 = v[j + half];
        v[j] = float(x1 * c - x2 * s);
        v[j + half] = float(x2 * c + x1 * s);
      }
}

void add(Tensor& acc, const Tensor& x) {
  check_add(acc, x);
  for (int64_t i = 0; i < acc.numel(); ++i) acc.ptr<float>()[i] += x.ptr<float>()[i];
}
}  // namespace ref

}  // namespace gptoss::cpu
