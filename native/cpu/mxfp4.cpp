// MXFP4 (FP4 E2M1 values, one E8M0 scale per 32): dequantization, and the packed matvec/matmul that
// reads expert weights in place (never a dequantized copy). Layout: core/dtype.h and
// test/fixtures/tiny-a/README.md (byte k = value 2k in the low nibble, 2k+1 in the high nibble).
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "kernels.h"
#include "ops.h"

namespace gptoss::cpu {

const float* e8m0_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(256);
    for (int s = 0; s < 256; ++s) t[s] = e8m0_to_f32(uint8_t(s));
    return t;
  }();
  return table.data();
}

void permute_for_mxfp4(const float* x, int64_t n, int64_t cols, float* xp) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t b = 0; b < cols; b += kMxfp4BlockSize) {
      const float* src = x + t * cols + b;
      float* dst = xp + t * cols + b;
      for (int k = 0; k < 16; ++k) {
        dst[k] = src[2 * k];
        dst[16 + k] = src[2 * k + 1];
      }
    }
}

namespace portable {
void mxfp4_rows(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const float* xp, int64_t n, float* out,
                int64_t ld, int64_t r0, int64_t r1) {
  const int64_t nblk = cols / kMxfp4BlockSize;
  const float* e8m0 = e8m0_table();
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* b = blocks + r * nblk * kMxfp4BlockBytes;
    const uint8_t* s = scales + r * nblk;
    for (int64_t t = 0; t < n; ++t) {
      const float* x = xp + t * cols;
      float acc = 0.f;
      for (int64_t g = 0; g < nblk; ++g) {
        float part[16] = {};  // 16 lanes: the compiler vectorizes this on any target
        for (int k = 0; k < 16; ++k) {
          uint8_t byte = b[g * 16 + k];
          part[k] = e2m1_to_f32(byte & 15) * x[g * 32 + k] + e2m1_to_f32(byte >> 4) * x[g * 32 + 16 + k];
        }
        float sum = 0.f;
        for (int k = 0; k < 16; ++k) sum += part[k];
        acc += sum * e8m0[s[g]];
      }
      out[t * ld + r] = acc;
    }
  }
}

void mxfp4_ggml_rows(const uint8_t* blocks, int64_t cols, const float* x, int64_t n, float* out, int64_t ld, int64_t r0,
                     int64_t r1) {
  const int64_t nblk = cols / kMxfp4BlockSize;
  const float* e8m0 = e8m0_table();
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = blocks + r * nblk * kMxfp4GgmlBlockBytes;
    for (int64_t t = 0; t < n; ++t) {
      const float* xt = x + t * cols;
      float acc = 0.f;
      for (int64_t g = 0; g < nblk; ++g) {
        const uint8_t* b = row + g * kMxfp4GgmlBlockBytes;  // scale byte, then 16 code bytes
        float part[16] = {};
        for (int k = 0; k < 16; ++k)
          part[k] = e2m1_to_f32(b[1 + k] & 15) * xt[g * 32 + k] + e2m1_to_f32(b[1 + k] >> 4) * xt[g * 32 + 16 + k];
        float sum = 0.f;
        for (int k = 0; k < 16; ++k) sum += part[k];
        acc += sum * e8m0[b[0]];
      }
      out[t * ld + r] = acc;
    }
  }
}
}  // namespace portable

// ---- MXFP4 linear: out[n, O] = x[n, I] W[O, I]^T (+ bias) with W packed ----
void linear_mxfp4(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) {
  const int64_t n = x.dim(0), in = x.dim(1), o = weight.dim(0);
  std::vector<float> xp(static_cast<size_t>(n * in));
  permute_for_mxfp4(x.ptr<float>(), n, in, xp.data());
  const Kernels& k = kernels();
  const auto* blocks = static_cast<const uint8_t*>(weight.data);
  const auto* scales = static_cast<const uint8_t*>(weight.scales);
  float* y = out.ptr<float>();
  parallel_for(
      o, [&](int64_t r0, int64_t r1) {
        k.mxfp4_rows(blocks, scales, in, xp.data(), n, y, o, r0, r1);
        if (bias)
          for (int64_t t = 0; t < n; ++t)
            for (int64_t r = r0; r < r1; ++r) y[t * o + r] += param_at(*bias, r);
      },
      16);
}

// ggml blocks: the activations go in as they are (a block's low nibbles are its first 16 values).
void linear_mxfp4_ggml(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) {
  const int64_t n = x.dim(0), in = x.dim(1), o = weight.dim(0);
  const Kernels& k = kernels();
  const auto* blocks = static_cast<const uint8_t*>(weight.data);
  const float* xs = x.ptr<float>();
  float* y = out.ptr<float>();
  parallel_for(
      o, [&](int64_t r0, int64_t r1) {
        k.mxfp4_ggml_rows(blocks, in, xs, n, y, o, r0, r1);
        if (bias)
          for (int64_t t = 0; t < n; ++t)
            for (int64_t r = r0; r < r1; ++r) y[t * o + r] += param_at(*bias, r);
      },
      16);
}

// ---- dequantize ----
static inline void store(Tensor& out, int64_t i, float v) {
  if (out.dtype == DType::F32)
    out.ptr<float>()[i] = v;
  else
    out.ptr<uint16_t>()[i] = f32_to_bf16(v);
}

void mxfp4_dequantize(const Tensor& packed, Tensor& out) {
  checks::mxfp4_dequantize(packed, out, kCpuDevice);
  const int64_t nblk = packed.numel() / kMxfp4BlockSize;
  const auto* blocks = static_cast<const uint8_t*>(packed.data);
  const auto* scales = static_cast<const uint8_t*>(packed.scales);
  const float* e8m0 = e8m0_table();
  parallel_for(
      nblk, [&](int64_t g0, int64_t g1) {
        for (int64_t g = g0; g < g1; ++g) {
          float s = e8m0[scales[g]];
          for (int k = 0; k < 16; ++k) {
            uint8_t byte = blocks[g * 16 + k];
            store(out, g * 32 + 2 * k, e2m1_to_f32(byte & 15) * s);
            store(out, g * 32 + 2 * k + 1, e2m1_to_f32(byte >> 4) * s);
          }
        }
      },
      256);
}

namespace ref {
void mxfp4_dequantize(const Tensor& packed, Tensor& out) {
  checks::mxfp4_dequantize(packed, out, kCpuDevice);
  const auto* blocks = static_cast<const uint8_t*>(packed.data);
  const auto* scales = static_cast<const uint8_t*>(packed.scales);
  for (int64_t i = 0; i < packed.numel(); ++i) {
    uint8_t byte = blocks[i / 2];
    uint8_t code = (i % 2 == 0) ? (byte & 15) : (byte >> 4);
    store(out, i, e2m1_to_f32(code) * std::ldexp(1.0f, int(scales[i / 32]) - 127));
  }
}
}  // namespace ref

}  // namespace gptoss::cpu
