// AVX-512 bf16 row kernel: 16 bf16 weights widen to f32 exactly (zero-extend, shift left 16) and
// FMA against f32 activations. Up to 4 tokens share each weight load; tails use masked loads.
#include <immintrin.h>

#include "kernels.h"

namespace gptoss::cpu::avx512 {

namespace {
inline __m512 widen(const uint16_t* p) {
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}
inline __m512 widen_masked(const uint16_t* p, __mmask16 m) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

inline float row_dot1(const uint16_t* w, const float* x, int64_t cols) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 32 <= cols; c += 32) {
    acc0 = _mm512_fmadd_ps(widen(w + c), _mm512_loadu_ps(x + c), acc0);
    acc1 = _mm512_fmadd_ps(widen(w + c + 16), _mm512_loadu_ps(x + c + 16), acc1);
  }
  for (; c < cols; c += 16) {
    const int64_t left = cols - c;
    const __mmask16 m = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
    acc0 = _mm512_fmadd_ps(widen_masked(w + c, m), _mm512_maskz_loadu_ps(m, x + c), acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

template <int NT>
inline void row_dotn(const uint16_t* w, const float* x, int64_t cols, float* res) {
  __m512 acc[NT];
  for (int j = 0; j < NT; ++j) acc[j] = _mm512_setzero_ps();
  for (int64_t c = 0; c < cols; c += 16) {
    const int64_t left = cols - c;
    const __mmask16 m = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
    const __m512 wv = widen_masked(w + c, m);
    for (int j = 0; j < NT; ++j) acc[j] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + j * cols + c), acc[j]);
  }
  for (int j = 0; j < NT; ++j) res[j] = _mm512_reduce_add_ps(acc[j]);
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
        case 1: res[0] = row_dot1(row, xt, cols); break;
        case 2: row_dotn<2>(row, xt, cols, res); break;
        case 3: row_dotn<3>(row, xt, cols, res); break;
        default: row_dotn<4>(row, xt, cols, res); break;
      }
      for (int64_t j = 0; j < nt; ++j) out[(t + j) * ld + r] = res[j];
    }
  }
}

}  // namespace gptoss::cpu::avx512
