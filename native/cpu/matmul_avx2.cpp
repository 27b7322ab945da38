// AVX2 bf16 row kernel: 8 bf16 weights widen to f32 per step; up to 4 tokens share each load.
#include <immintrin.h>

#include "core/dtype.h"
#include "kernels.h"

namespace gptoss::cpu::avx2 {

namespace {
inline __m256 widen(const uint16_t* p) {
  return _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int NT>
inline void row_dotn(const uint16_t* w, const float* x, int64_t cols, float* res) {
  __m256 acc[NT][2];
  for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    const __m256 w0 = widen(w + c), w1 = widen(w + c + 8);
    for (int j = 0; j < NT; ++j) {
      acc[j][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + j * cols + c), acc[j][0]);
      acc[j][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + j * cols + c + 8), acc[j][1]);
    }
  }
  for (int j = 0; j < NT; ++j) {
    float s = hsum(_mm256_add_ps(acc[j][0], acc[j][1]));
    for (int64_t k = c; k < cols; ++k) s += bf16_to_f32(w[k]) * x[j * cols + k];
    res[j] = s;
  }
}
}  // namespace

void bf16_rows(const uint16_t* w, int64_t cols, const float* x, int64_t n, float* out, int64_t ld, int64_t r0,
               int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const uint16_t* row = w + r * cols;
    for (int64_t t = 0; t < n; t += 4) {
      float res[4];
      const float* xt = x + t * cols;
      const int64_t nt = n - t < 4 ? n - t : 4;
      switch (nt) {
        case 1: row_dotn<1>(row, xt, cols, res); break;
        case 2: row_dotn<2>(row, xt, cols, res); break;
        case 3: row_dotn<3>(row, xt, cols, res); break;
        default: row_dotn<4>(row, xt, cols, res); break;
      }
      for (int64_t j = 0; j < nt; ++j) out[(t + j) * ld + r] = res[j];
    }
  }
}

}  // namespace gptoss::cpu::avx2
