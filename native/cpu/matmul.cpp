// Linear layers: bf16 [out, in] weights (read in place, widened to f32 in registers) times f32
// activations, f32 accumulation; MXFP4 weights go to mxfp4.cpp's packed kernel. One entry point,
// linear(), for both. Matrix-vector (n = 1) and matrix-matrix (n > 1) share the row kernels: the ISA
// kernels block tokens (48 at a time under AVX-512, register tiles of 4 rows x 6 tokens inside), so
// each weight row is read from memory once per 48 tokens and the activations stay in L2.
#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "kernels.h"
#include "ops.h"

namespace gptoss::cpu {

void linear_mxfp4(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out);       // mxfp4.cpp
void linear_mxfp4_ggml(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out);  // mxfp4.cpp
void linear_mxfp4_q8(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out);    // mxfp4.cpp
void linear_q8_0(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out,
                 ExpertActivations act);  // q8.cpp

void f32_rows(const float* w, int64_t cols, const float* x, int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t t = 0; t < n; ++t) {
      const float* row = w + r * cols;
      const float* xt = x + t * cols;
      float part[8] = {};
      int64_t c = 0;
      for (; c + 8 <= cols; c += 8)
        for (int j = 0; j < 8; ++j) part[j] += row[c + j] * xt[c + j];
      float acc = 0.f;
      for (; c < cols; ++c) acc += row[c] * xt[c];
      for (int j = 0; j < 8; ++j) acc += part[j];
      out[t * ld + r] = acc;
    }
}

void f16_rows(const uint16_t* w, int64_t cols, const float* x, int64_t n, float* out, int64_t ld, int64_t r0,
              int64_t r1) {
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t c = 0; c < cols; ++c) row[size_t(c)] = f16_to_f32(w[r * cols + c]);
    f32_rows(row.data(), cols, x, n, out + r, ld, 0, 1);
  }
}

namespace portable {
void bf16_rows(const uint16_t* w, int64_t cols, const float* x, int64_t n, float* out, int64_t ld, int64_t r0,
               int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const uint16_t* row = w + r * cols;
    for (int64_t t = 0; t < n; ++t) {
      const float* xt = x + t * cols;
      float part[8] = {};
      int64_t c = 0;
      for (; c + 8 <= cols; c += 8)
        for (int j = 0; j < 8; ++j) part[j] += bf16_to_f32(row[c + j]) * xt[c + j];
      float acc = 0.f;
      for (; c < cols; ++c) acc += bf16_to_f32(row[c]) * xt[c];
      for (int j = 0; j < 8; ++j) acc += part[j];
      out[t * ld + r] = acc;
    }
  }
}
}  // namespace portable

// bf16, f16 or f32 weights: one row driver, the dtype's row kernel.
void linear_bf16(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) {
  const int64_t n = x.dim(0), in = x.dim(1), o = weight.dim(0);
  const Kernels& k = kernels();
  const float* xs = x.ptr<float>();
  float* y = out.ptr<float>();
  parallel_for(
      o, [&](int64_t r0, int64_t r1) {
        if (weight.dtype == DType::F32)
          f32_rows(weight.ptr<float>(), in, xs, n, y, o, r0, r1);
        else if (weight.dtype == DType::F16)
          f16_rows(weight.ptr<uint16_t>(), in, xs, n, y, o, r0, r1);
        else
          k.bf16_rows(weight.ptr<uint16_t>(), in, xs, n, y, o, r0, r1);
        if (bias)
          for (int64_t t = 0; t < n; ++t)
            for (int64_t r = r0; r < r1; ++r) y[t * o + r] += param_at(*bias, r);
      },
      16);
}

void linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out, ExpertActivations act) {
  checks::linear(x, weight, bias, out, kCpuDevice);
  if (x.dim(0) == 0 || weight.dim(0) == 0) return;
  switch (weight.dtype) {
    case DType::MXFP4:
      if (act == ExpertActivations::Q8)
        linear_mxfp4_q8(x, weight, bias, out);
      else
        linear_mxfp4(x, weight, bias, out);
      break;
    case DType::MXFP4_GGML:
      if (act == ExpertActivations::Q8)
        linear_mxfp4_q8(x, weight, bias, out);
      else
        linear_mxfp4_ggml(x, weight, bias, out);
      break;
    case DType::Q8_0: linear_q8_0(x, weight, bias, out, act); break;
    default: linear_bf16(x, weight, bias, out); break;
  }
}

void linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) {
  linear(x, weight, bias, out, ExpertActivations::F32);
}

namespace ref {
// Element (r, c) of a weight matrix in any of its storage dtypes, straight from the layout.
float weight_at(const Tensor& w, int64_t r, int64_t c) {
  const int64_t cols = w.dim(-1);
  const int64_t i = r * cols + c;
  switch (w.dtype) {
    case DType::BF16: return bf16_to_f32(w.ptr<uint16_t>()[i]);
    case DType::F16: return f16_to_f32(w.ptr<uint16_t>()[i]);
    case DType::F32: return w.ptr<float>()[i];
    case DType::Q8_0: {
      const uint8_t* b = static_cast<const uint8_t*>(w.data) + (i / kQ8BlockSize) * kQ8BlockBytes;
      return f16_to_f32(uint16_t(b[0] | (b[1] << 8))) * float(int8_t(b[2 + i % kQ8BlockSize]));
    }
    case DType::MXFP4_GGML: {
      const uint8_t* b = static_cast<const uint8_t*>(w.data) + (i / kMxfp4BlockSize) * kMxfp4GgmlBlockBytes;
      const int j = int(i % kMxfp4BlockSize);
      const uint8_t code = j < 16 ? (b[1 + j] & 15) : (b[1 + j - 16] >> 4);
      return e2m1_to_f32(code) * std::ldexp(1.0f, int(b[0]) - 127);
    }
    default: break;
  }
  uint8_t byte = static_cast<const uint8_t*>(w.data)[i / 2];
  uint8_t code = (i % 2 == 0) ? (byte & 15) : (byte >> 4);
  return e2m1_to_f32(code) * std::ldexp(1.0f, int(static_cast<const uint8_t*>(w.scales)[i / 32]) - 127);
}

void linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out, ExpertActivations act) {
  const bool quantized = weight.dtype == DType::Q8_0 || weight.dtype == DType::MXFP4 || weight.dtype == DType::MXFP4_GGML;
  if (act != ExpertActivations::Q8 || !quantized) return linear(x, weight, bias, out);
  checks::linear(x, weight, bias, out, kCpuDevice);
  // x as the q8 kernels see it: quantize_q8's int8 and scales, multiplied out (each product exact in
  // double), then the products with the weights summed in double.
  const int64_t n = x.dim(0), in = x.dim(1), o = weight.dim(0), nblk = in / kQ8BlockSize;
  std::vector<int8_t> xq(size_t(n * in));
  std::vector<float> xd(size_t(n * nblk));
  quantize_q8(x.ptr<float>(), n, in, xq.data(), xd.data());
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < o; ++r) {
      double acc = bias ? param_at(*bias, r) : 0.0;
      for (int64_t c = 0; c < in; ++c)
        acc += double(weight_at(weight, r, c)) * (double(xd[size_t(t * nblk + c / kQ8BlockSize)]) * xq[size_t(t * in + c)]);
      out.ptr<float>()[t * o + r] = float(acc);
    }
}

void linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) {
  checks::linear(x, weight, bias, out, kCpuDevice);
  const int64_t n = x.dim(0), in = x.dim(1), o = weight.dim(0);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < o; ++r) {
      double acc = bias ? param_at(*bias, r) : 0.0;
      for (int64_t c = 0; c < in; ++c) acc += double(weight_at(weight, r, c)) * x.ptr<float>()[t * in + c];
      out.ptr<float>()[t * o + r] = float(acc);
    }
}
}  // namespace ref

}  // namespace gptoss::cpu
