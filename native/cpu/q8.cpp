// Q8_0 weights (ggml's 8-bit block format: per 32 values an f16 scale d and 32 int8 q, value = d * q;
// core/dtype.h): the packed matvec/matmul that reads them in place, the quantizer behind
// loadModel(dir, { denseWeights: 'q8' }), and dequantization for tests. GGUF files keep attention,
// embedding and LM head in this format; the ISA kernels live in q8_avx2.cpp / q8_avx512.cpp.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/thread_pool.h"
#include "kernels.h"
#include "ops.h"

namespace gptoss::cpu {

namespace portable {
// The scalar Q8_0 kernels: out[t * ld + r] = the sum over the row's blocks, in order, of the block's
// dot with token t's x times the block's f16 scale. X = float: x as is (Kernels::q8_0_rows); X = int8_t:
// x quantized per 32-block with scales xd (Kernels::q8_0_rows_q8: an exact integer dot, then both scales).
template <class X>
void q8_0_rows_scalar(const uint8_t* blocks, int64_t cols, const X* x, const float* xd, int64_t n, float* out,
                      int64_t ld, int64_t r0, int64_t r1) {
  const int64_t nblk = cols / kQ8BlockSize;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = blocks + r * nblk * kQ8BlockBytes;
    for (int64_t t = 0; t < n; ++t) {
      const X* xt = x + t * cols;
      float acc = 0.f;
      for (int64_t g = 0; g < nblk; ++g) {
        const uint8_t* b = row + g * kQ8BlockBytes;
        uint16_t d;
        std::memcpy(&d, b, 2);
        const auto* q = reinterpret_cast<const int8_t*>(b + 2);
        if constexpr (std::is_same_v<X, float>) {
          // 16 lanes: the compiler vectorizes this on any target (GCC 12: only with x indexed from xt
          // as here; through a block pointer it unrolled the loop to scalar code instead)
          float part[16] = {};
          for (int k = 0; k < 16; ++k) part[k] = float(q[k]) * xt[g * 32 + k] + float(q[16 + k]) * xt[g * 32 + 16 + k];
          float sum = 0.f;
          for (int k = 0; k < 16; ++k) sum += part[k];
          acc += sum * f16_to_f32(d);
        } else {
          int32_t dot = 0;  // |dot| <= 32 * 128 * 127: exact
          for (int k = 0; k < kQ8BlockSize; ++k) dot += int32_t(q[k]) * int32_t(xt[g * kQ8BlockSize + k]);
          acc += float(dot) * (f16_to_f32(d) * xd[t * nblk + g]);
        }
      }
      out[t * ld + r] = acc;
    }
  }
}

void q8_0_rows(const uint8_t* blocks, int64_t cols, const float* x, int64_t n, float* out, int64_t ld, int64_t r0,
               int64_t r1) {
  q8_0_rows_scalar(blocks, cols, x, nullptr, n, out, ld, r0, r1);
}

// The scalar reference of Kernels::q8_0_rows_q8 (and the portable / NEON sets' kernel).
void q8_0_rows_q8(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n, float* out,
                  int64_t ld, int64_t r0, int64_t r1) {
  q8_0_rows_scalar(blocks, cols, xq, xd, n, out, ld, r0, r1);
}
}  // namespace portable

// activations Q8: x quantized per 32-block (quantize_q8, as the q8 experts) and integer dot products, as
// llama.cpp multiplies every Q8_0 matrix; F32: the exact kernel.
void linear_q8_0(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out, ExpertActivations act) {
  const int64_t n = x.dim(0), in = x.dim(1), o = weight.dim(0);
  const Kernels& k = kernels();
  const auto* w = static_cast<const uint8_t*>(weight.data);
  const float* xs = x.ptr<float>();
  float* y = out.ptr<float>();
  const bool q8 = act == ExpertActivations::Q8;
  const int64_t nblk = in / kQ8BlockSize;
  std::vector<int8_t> xq(q8 ? size_t(n * in) : 0);
  std::vector<float> xd(q8 ? size_t(n * nblk) : 0);
  if (q8) {
    if (n >= 16)
      parallel_for(n, [&](int64_t t0, int64_t t1) {
        quantize_q8(xs + t0 * in, t1 - t0, in, xq.data() + t0 * in, xd.data() + t0 * nblk);
      }, 4);
    else
      quantize_q8(xs, n, in, xq.data(), xd.data());
  }
  parallel_for(
      o, [&](int64_t r0, int64_t r1) {
        if (q8)
          k.q8_0_rows_q8(w, in, xq.data(), xd.data(), n, y, o, r0, r1);
        else
          k.q8_0_rows(w, in, xs, n, y, o, r0, r1);
        if (bias)
          for (int64_t t = 0; t < n; ++t)
            for (int64_t r = r0; r < r1; ++r) y[t * o + r] += param_at(*bias, r);
      },
      16);
}

// q, k and v of one normed input, all Q8_0 with the same input width: one parallel_for over their rows
// together (a decode layer's three projections were three dispatches, two of them 512 rows: each paid a
// barrier for ~20 us of work) and, with q8 activations, x quantized once. Each row runs the kernel
// linear_q8_0 would run for it.
void qkv_q8_0(const Tensor& x, const Tensor* const w[3], const Tensor* const bias[3], Tensor* const out[3],
              ExpertActivations act) {
  const int64_t n = x.dim(0), in = x.dim(1);
  const int64_t rows[3] = {w[0]->dim(0), w[1]->dim(0), w[2]->dim(0)}, total = rows[0] + rows[1] + rows[2];
  const Kernels& k = kernels();
  const float* xs = x.ptr<float>();
  const bool q8 = act == ExpertActivations::Q8;
  const int64_t nblk = in / kQ8BlockSize;
  std::vector<int8_t> xq(q8 ? size_t(n * in) : 0);
  std::vector<float> xd(q8 ? size_t(n * nblk) : 0);
  if (q8) quantize_q8(xs, n, in, xq.data(), xd.data());
  parallel_for(
      total, [&](int64_t a, int64_t b) {
        for (int m = 0, first = 0; m < 3; first += int(rows[m]), ++m) {  // this chunk's rows of each matrix
          const int64_t r0 = std::max<int64_t>(a - first, 0), r1 = std::min<int64_t>(b - first, rows[m]);
          if (r0 >= r1) continue;
          const auto* wb = static_cast<const uint8_t*>(w[m]->data);
          float* y = out[m]->ptr<float>();
          if (q8)
            k.q8_0_rows_q8(wb, in, xq.data(), xd.data(), n, y, rows[m], r0, r1);
          else
            k.q8_0_rows(wb, in, xs, n, y, rows[m], r0, r1);
          for (int64_t t = 0; t < n; ++t)
            for (int64_t r = r0; r < r1; ++r) y[t * rows[m] + r] += param_at(*bias[m], r);
        }
      },
      16);
}

// One block: d = max|v| / 127 rounded to f16, q = round(v / d) clamped to [-127, 127] (ggml's
// quantize_row_q8_0 rule: the f32 reciprocal of the unrounded d, round half away from zero).
static void quantize_block_q8_0(const float* v, uint8_t* out) {
  float amax = 0.f;
  for (int k = 0; k < kQ8BlockSize; ++k) amax = std::max(amax, std::fabs(v[k]));
  const float d = amax / 127.f;
  const float inv = d != 0.f ? 1.f / d : 0.f;
  const uint16_t dh = f32_to_f16(d);
  std::memcpy(out, &dh, 2);
  auto* q = reinterpret_cast<int8_t*>(out + 2);
  for (int k = 0; k < kQ8BlockSize; ++k) q[k] = int8_t(std::max(-127.f, std::min(127.f, std::round(v[k] * inv))));
}

namespace portable {
// The scalar reference of Kernels::q8_0_quantize.
void q8_0_quantize(const void* src, QuantSrc kind, int64_t nblk, uint8_t* dst) {
  float v[kQ8BlockSize];
  for (int64_t g = 0; g < nblk; ++g) {
    for (int k = 0; k < kQ8BlockSize; ++k) {
      const int64_t i = g * kQ8BlockSize + k;
      v[k] = quant_src_at(src, kind, i);
    }
    quantize_block_q8_0(v, dst + g * kQ8BlockBytes);
  }
}
}  // namespace portable

void quantize_q8_0(const Tensor& src, Tensor& out) {
  if (src.dtype != DType::BF16 && src.dtype != DType::F32 && src.dtype != DType::F16)
    throw type_error("quantizeQ8: src must be bf16, f16 or f32, got " + src.describe());
  if (src.ndim() < 1 || src.dim(-1) % kQ8BlockSize != 0)
    throw range_error("quantizeQ8: the last dimension must be a multiple of 32, got " + src.describe());
  expect_dtype(out, DType::Q8_0, "quantizeQ8: out");
  expect_shape(out, src.shape, "quantizeQ8: out");
  const int64_t nblk = src.numel() / kQ8BlockSize;
  const QuantSrc kind = quant_src_of(src.dtype);
  const size_t elem = src.dtype == DType::F32 ? 4 : 2;
  const auto* in = static_cast<const uint8_t*>(src.data);
  auto* dst = static_cast<uint8_t*>(out.data);
  const auto quantize = kernels().q8_0_quantize;
  parallel_for(nblk, [&](int64_t g0, int64_t g1) {
    quantize(in + size_t(g0 * kQ8BlockSize) * elem, kind, g1 - g0, dst + g0 * kQ8BlockBytes);
  }, 1024);
}

}  // namespace gptoss::cpu
