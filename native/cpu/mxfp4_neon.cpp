// NEON MXFP4 row kernel for arm64 (Advanced SIMD is baseline on AArch64: no flags, no run-time
// check). A block's 16 bytes split into low and high nibbles; tbl (vqtbl1q) maps each 4-bit E2M1
// code straight to its value times 2 as int8 (0, 1, 2, 3, 4, 6, 8, 12 and the negatives), which
// widens exactly to f32 and takes half the E8M0 scale: w = code2x * 2^(s-128), exact like the
// scalar e2m1 * 2^(s-127). The same shape as mxfp4_avx2.cpp: decode once per block, up to 4
// tokens share it.
#if defined(__aarch64__)
#include <arm_neon.h>

#include "core/dtype.h"
#include "kernels.h"
#include "row_blocks.h"

namespace gptoss::cpu::neon {

namespace {
struct Decoded {
  float32x4_t w[8];  // values 0-15 (low nibbles of bytes 0-15), then 16-31 (high nibbles), 4 a register
};

inline void widen_scaled(int8x16_t q, float half_scale, float32x4_t* w) {
  const int16x8_t lo = vmovl_s8(vget_low_s8(q)), hi = vmovl_high_s8(q);
  w[0] = vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), half_scale);
  w[1] = vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(lo)), half_scale);
  w[2] = vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), half_scale);
  w[3] = vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(hi)), half_scale);
}

inline Decoded decode(const uint8_t* b, float half_scale) {
  const int8x16_t table = vld1q_s8(kE2m1Twice);
  const uint8x16_t bytes = vld1q_u8(b);
  Decoded d;
  widen_scaled(vqtbl1q_s8(table, vandq_u8(bytes, vdupq_n_u8(15))), half_scale, d.w);
  widen_scaled(vqtbl1q_s8(table, vshrq_n_u8(bytes, 4)), half_scale, d.w + 4);
  return d;
}

// QS / SS: bytes between consecutive blocks' codes / scale bytes (HF 16 / 1, ggml 17 / 17: see mxfp4_avx512.cpp).
template <int QS, int SS, int NT>
inline void row_dotn(const uint8_t* b, const uint8_t* s, int64_t nblk, const float* x, int64_t cols,
                     const float* e8m0, float* res) {
  float32x4_t acc[NT][2];
  for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = vdupq_n_f32(0.f);
  for (int64_t g = 0; g < nblk; ++g) {
    const Decoded d = decode(b + QS * g, 0.5f * e8m0[s[g * SS]]);  // 2^(s-127) / 2 is exact (s = 0: 2^-128, subnormal)
    for (int j = 0; j < NT; ++j) {
      const float* xg = x + j * cols + 32 * g;
#pragma GCC unroll 8
      for (int q = 0; q < 8; ++q) acc[j][q & 1] = vfmaq_f32(acc[j][q & 1], d.w[q], vld1q_f32(xg + 4 * q));
    }
  }
  for (int j = 0; j < NT; ++j) res[j] = vaddvq_f32(vaddq_f32(acc[j][0], acc[j][1]));
}
// q8: the same table lookup gives the weights times 2 as int8; sdot (FEAT_DotProd, compiled in when
// the target has it: -march=armv8.2-a+dotprod or later) or smull/smlal + pairwise adds (baseline
// AArch64) sum them against int8 activations, exactly in int32; then xd * 2^(s-128).
inline int32x4_t dot_block(int8x16_t lo, int8x16_t hi, int8x16_t x0, int8x16_t x1) {
#if defined(__ARM_FEATURE_DOTPROD)
  return vdotq_s32(vdotq_s32(vdupq_n_s32(0), lo, x0), hi, x1);
#else
  // |2 x E2M1| <= 12, |x| <= 127: an int16 lane sums 4 products, at most 6096.
  int16x8_t p = vmull_s8(vget_low_s8(lo), vget_low_s8(x0));
  p = vmlal_high_s8(p, lo, x0);
  p = vmlal_s8(p, vget_low_s8(hi), vget_low_s8(x1));
  p = vmlal_high_s8(p, hi, x1);
  return vpaddlq_s16(p);
#endif
}

// QS / SS: bytes between consecutive blocks' codes / scale bytes (Hugging Face 16 / 1, ggml 17 / 17).
template <int NT, int QS = 16, int SS = 1>
inline void row_dot_q8(const uint8_t* b, const uint8_t* s, int64_t nblk, const int8_t* xq, const float* xd,
                       int64_t cols, const float* half, float* res) {
  const int8x16_t table = vld1q_s8(kE2m1Twice);
  float32x4_t acc[NT];
  for (int j = 0; j < NT; ++j) acc[j] = vdupq_n_f32(0.f);
  for (int64_t g = 0; g < nblk; ++g) {
    const uint8x16_t bytes = vld1q_u8(b + QS * g);
    const int8x16_t lo = vqtbl1q_s8(table, vandq_u8(bytes, vdupq_n_u8(15)));
    const int8x16_t hi = vqtbl1q_s8(table, vshrq_n_u8(bytes, 4));
    const float ws = half[s[SS * g]];
    for (int j = 0; j < NT; ++j) {
      const int8_t* xg = xq + j * cols + 32 * g;
      const int32x4_t dot = dot_block(lo, hi, vld1q_s8(xg), vld1q_s8(xg + 16));
      acc[j] = vfmaq_n_f32(acc[j], vcvtq_f32_s32(dot), xd[j * nblk + g] * ws);
    }
  }
  for (int j = 0; j < NT; ++j) res[j] = vaddvq_f32(acc[j]);
}
}  // namespace

namespace {
template <int QS, int SS>
void rows_q8(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const int8_t* xq, const float* xd, int64_t n,
             float* out, int64_t ld, int64_t r0, int64_t r1) {
  const int64_t nblk = cols / 32;
  const float* half = e8m0_half_table();
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t t = 0; t < n; t += 4) {
      float res[4];
      const int8_t* x = xq + t * cols;
      const float* d = xd + t * nblk;
      const uint8_t* b = blocks + r * nblk * QS;
      const uint8_t* s = scales + r * nblk * SS;
      const int64_t nt = n - t < 4 ? n - t : 4;
      switch (nt) {
        case 1: row_dot_q8<1, QS, SS>(b, s, nblk, x, d, cols, half, res); break;
        case 2: row_dot_q8<2, QS, SS>(b, s, nblk, x, d, cols, half, res); break;
        case 3: row_dot_q8<3, QS, SS>(b, s, nblk, x, d, cols, half, res); break;
        default: row_dot_q8<4, QS, SS>(b, s, nblk, x, d, cols, half, res); break;
      }
      for (int64_t j = 0; j < nt; ++j) out[(t + j) * ld + r] = res[j];
    }
}
}  // namespace

void mxfp4_rows_q8(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const int8_t* xq, const float* xd,
                   int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1) {
  rows_q8<16, 1>(blocks, scales, cols, xq, xd, n, out, ld, r0, r1);
}

void mxfp4_ggml_rows_q8(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n, float* out,
                        int64_t ld, int64_t r0, int64_t r1) {
  rows_q8<kMxfp4GgmlBlockBytes, kMxfp4GgmlBlockBytes>(blocks + 1, blocks, cols, xq, xd, n, out, ld, r0, r1);
}

void mxfp4_rows(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const float* xp, int64_t n, float* out,
                int64_t ld, int64_t r0, int64_t r1) {
  const int64_t nblk = cols / 32;
  const float* e8m0 = e8m0_table();
  for_rows_by_token_blocks(r0, r1, n, cols, xp, out, ld, [&](auto nt, int64_t r, const float* xt, float* res) {
    row_dotn<16, 1, decltype(nt)::value>(blocks + r * nblk * 16, scales + r * nblk, nblk, xt, cols, e8m0, res);
  });
}

void mxfp4_ggml_rows(const uint8_t* blocks, int64_t cols, const float* x, int64_t n, float* out, int64_t ld, int64_t r0,
                     int64_t r1) {
  constexpr int kB = kMxfp4GgmlBlockBytes;
  const int64_t nblk = cols / 32;
  const float* e8m0 = e8m0_table();
  for_rows_by_token_blocks(r0, r1, n, cols, x, out, ld, [&](auto nt, int64_t r, const float* xt, float* res) {
    const uint8_t* row = blocks + r * nblk * kB;
    row_dotn<kB, kB, decltype(nt)::value>(row + 1, row, nblk, xt, cols, e8m0, res);
  });
}

}  // namespace gptoss::cpu::neon
#endif  // __aarch64__
