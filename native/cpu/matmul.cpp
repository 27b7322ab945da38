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

void linear_mxfp4(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out);  // mxfp4.cpp

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

void linear_bf16(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) {
  const int64_t n = x.dim(0), in = x.dim(1), o = weight.dim(0);
  const Kernels& k = kernels();
  const auto* w = weight.ptr<uint16_t>();
  const float* xs = x.ptr<float>();
  float* y = out.ptr<float>();
  parallel_for(
      o, [&](int64_t r0, int64_t r1) {
        k.bf16_rows(w, in, xs, n, y, o, r0, r1);
        if (bias)
          for (int64_t t = 0; t < n; ++t)
            for (int64_t r = r0; r < r1; ++r) y[t * o + r] += param_at(*bias, r);
      },
      16);
}

void linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) {
  checks::linear(x, weight, bias, out, kCpuDevice);
  if (x.dim(0) == 0 || weight.dim(0) == 0) return;
  if (weight.dtype == DType::MXFP4)
    linear_mxfp4(x, weight, bias, out);
  else
    linear_bf16(x, weight, bias, out);
}

namespace ref {
// Element (r, c) of a bf16 or MXFP4 matrix, straight from the storage layout.
float weight_at(const Tensor& w, int64_t r, int64_t c) {
  const int64_t cols = w.dim(-1);
  if (w.dtype == DType::BF16) return bf16_to_f32(w.ptr<uint16_t>()[r * cols + c]);
  const int64_t i = r * cols + c;
  uint8_t byte = static_cast<const uint8_t*>(w.data)[i / 2];
  uint8_t code = (i % 2 == 0) ? (byte & 15) : (byte >> 4);
  return e2m1_to_f32(code) * std::ldexp(1.0f, int(static_cast<const uint8_t*>(w.scales)[i / 32]) - 127);
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
