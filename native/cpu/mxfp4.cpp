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

const float* e8m0_half_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(256);
    for (int s = 0; s < 256; ++s) t[s] = 0.5f * e8m0_to_f32(uint8_t(s));  // 2^(s-128): exact, subnormal at s = 0
    return t;
  }();
  return table.data();
}

const uint8_t kEvenOddPos[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};

void permute_for_mxfp4(const float* x, int64_t n, int64_t cols, const uint8_t* pos, float* xp) {
  for (int64_t i = 0; i < n * cols; i += kMxfp4BlockSize)
    for (int c = 0; c < 32; ++c) xp[i + pos[c]] = x[i + c];
}

void quantize_q8(const float* x, int64_t n, int64_t cols, int8_t* q, float* d) {
  for (int64_t b = 0; b < n * cols / kMxfp4BlockSize; ++b) {
    const float* xb = x + b * kMxfp4BlockSize;
    float amax = 0.f;
    for (int k = 0; k < 32; ++k) amax = std::max(amax, std::fabs(xb[k]));
    const float scale = amax / 127.f, inv = amax > 0.f ? 127.f / amax : 0.f;
    // Round to nearest even by adding and removing 1.5 * 2^23 (exact for |v| <= 2^22; here |v| <=
    // 127 up to rounding): the loop vectorizes, where std::nearbyint is a libm call per value that
    // saves and restores the FP environment (it cost more than the decode matvec it feeds).
    for (int k = 0; k < 32; ++k) {
      const float v = std::min(127.f, std::max(-127.f, xb[k] * inv));
      q[b * kMxfp4BlockSize + k] = int8_t(int32_t((v + 12582912.f) - 12582912.f));
    }
    d[b] = scale;
  }
}

const int8_t kE2m1Twice[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

namespace portable {
void mxfp4_rows_q8(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const int8_t* xq, const float* xd,
                   int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1) {
  const int64_t nblk = cols / kMxfp4BlockSize;
  const float* half = e8m0_half_table();
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* b = blocks + r * nblk * kMxfp4BlockBytes;
    const uint8_t* s = scales + r * nblk;
    for (int64_t t = 0; t < n; ++t) {
      const int8_t* x = xq + t * cols;
      float acc = 0.f;
      for (int64_t g = 0; g < nblk; ++g) {
        int32_t dot = 0;  // |dot| <= 32 * 12 * 127: exact
        for (int k = 0; k < 16; ++k) {
          const uint8_t byte = b[g * 16 + k];
          dot += kE2m1Twice[byte & 15] * x[g * 32 + k] + kE2m1Twice[byte >> 4] * x[g * 32 + 16 + k];
        }
        acc += float(dot) * (xd[t * nblk + g] * half[s[g]]);
      }
      out[t * ld + r] = acc;
    }
  }
}

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
}  // namespace portable

// ---- MXFP4 linear: out[n, O] = x[n, I] W[O, I]^T (+ bias) with W packed ----
void linear_mxfp4(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) {
  const int64_t n = x.dim(0), in = x.dim(1), o = weight.dim(0);
  const Kernels& k = kernels();
  std::vector<float> xp(static_cast<size_t>(n * in));
  permute_for_mxfp4(x.ptr<float>(), n, in, k.mxfp4_pos, xp.data());
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
