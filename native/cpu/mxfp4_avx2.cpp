// AVX2 MXFP4 row kernel (compiled with -mavx2 -mfma). vpermps on ymm indexes 8 entries, so the
// table holds the 8 magnitudes and the sign (bit 3 of the nibble) is moved to bit 31 by a shift
// and xor-ed in.
#include <immintrin.h>

#include "core/dtype.h"
#include "kernels.h"
#include "row_blocks.h"
#include "simd_avx2.h"

namespace gptoss::cpu::avx2 {

namespace {
struct Decoded {
  __m256 w[4];  // values 0-7, 8-15 (low nibbles of bytes 0-7, 8-15), 16-23, 24-31 (high nibbles)
};

inline Decoded decode(const uint8_t* b, float scale) {
  const __m256 mag = _mm256_setr_ps(0.f, 0.5f, 1.f, 1.5f, 2.f, 3.f, 4.f, 6.f);
  const __m256i sign = _mm256_set1_epi32(int32_t(0x80000000u));
  const __m256 sc = _mm256_set1_ps(scale);
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
  const __m256i q[2] = {_mm256_cvtepu8_epi32(bytes), _mm256_cvtepu8_epi32(_mm_srli_si128(bytes, 8))};
  Decoded d;
  for (int h = 0; h < 2; ++h) {
    const __m256 lo = _mm256_xor_ps(_mm256_permutevar8x32_ps(mag, q[h]),
                                    _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(q[h], 28), sign)));
    const __m256 hi = _mm256_xor_ps(_mm256_permutevar8x32_ps(mag, _mm256_srli_epi32(q[h], 4)),
                                    _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(q[h], 24), sign)));
    d.w[h] = _mm256_mul_ps(lo, sc);
    d.w[2 + h] = _mm256_mul_ps(hi, sc);
  }
  return d;
}


// QS / SS: bytes between consecutive blocks' codes / scale bytes (HF 16 / 1, ggml 17 / 17: see mxfp4_avx512.cpp).
template <int QS, int SS, int NT>
inline void row_dotn(const uint8_t* b, const uint8_t* s, int64_t nblk, const float* x, int64_t cols,
                     const float* e8m0, float* res) {
  __m256 acc[NT][2];
  for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = _mm256_setzero_ps();
  for (int64_t g = 0; g < nblk; ++g) {
    const Decoded d = decode(b + QS * g, e8m0[s[g * SS]]);
    for (int j = 0; j < NT; ++j) {
      const float* xg = x + j * cols + 32 * g;
      acc[j][0] = _mm256_fmadd_ps(d.w[0], _mm256_loadu_ps(xg), acc[j][0]);
      acc[j][1] = _mm256_fmadd_ps(d.w[1], _mm256_loadu_ps(xg + 8), acc[j][1]);
      acc[j][0] = _mm256_fmadd_ps(d.w[2], _mm256_loadu_ps(xg + 16), acc[j][0]);
      acc[j][1] = _mm256_fmadd_ps(d.w[3], _mm256_loadu_ps(xg + 24), acc[j][1]);
    }
  }
  for (int j = 0; j < NT; ++j) res[j] = hsum(_mm256_add_ps(acc[j][0], acc[j][1]));
}
}  // namespace

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

}  // namespace gptoss::cpu::avx2
