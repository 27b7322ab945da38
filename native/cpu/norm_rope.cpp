// Elementwise and row-wise ops: embedding lookup, RMSNorm, rotary embedding, residual add.
#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "ops.h"

namespace gptoss::cpu {

// ---------------- embedding ----------------
// Token ids are read from host memory: a CPU-only check (CUDA flags them on the device).
static void check_embedding(const Tensor& tokens, const Tensor& table, const Tensor& out) {
  checks::embedding(tokens, table, out, kCpuDevice);
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
    } else if (table.dtype == DType::F16) {
      const uint16_t* src = table.ptr<uint16_t>() + id * h;
      for (int64_t c = 0; c < h; ++c) dst[c] = f16_to_f32(src[c]);
    } else if (table.dtype == DType::Q8_0) {  // GGUF: value = d * q per 32 (core/dtype.h)
      const uint8_t* row = static_cast<const uint8_t*>(table.data) + id * (h / kQ8BlockSize) * kQ8BlockBytes;
      for (int64_t g = 0; g < h / kQ8BlockSize; ++g) {
        const uint8_t* b = row + g * kQ8BlockBytes;
        const float d = f16_to_f32(uint16_t(b[0] | (b[1] << 8)));
        for (int k = 0; k < kQ8BlockSize; ++k) dst[g * kQ8BlockSize + k] = d * float(int8_t(b[2 + k]));
      }
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
void rmsnorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  checks::rmsnorm(x, weight, out, kCpuDevice);
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
  checks::rope(x, positions, inv_freq, kCpuDevice);
  parallel_for(x.dim(0), [&](int64_t a, int64_t b) { rope_rows(x, positions, inv_freq, scale, a, b); });
}

// ---------------- add ----------------
void add(Tensor& acc, const Tensor& x) {
  checks::add(acc, x, kCpuDevice);
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
  checks::rmsnorm(x, weight, out, kCpuDevice);
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
  checks::rope(x, positions, inv_freq, kCpuDevice);
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
  checks::add(acc, x, kCpuDevice);
  for (int64_t i = 0; i < acc.numel(); ++i) acc.ptr<float>()[i] += x.ptr<float>()[i];
}
}  // namespace ref

}  // namespace gptoss::cpu
