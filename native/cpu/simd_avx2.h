// Helpers shared by the AVX2 translation units (compiled with -mavx2 -mfma only; see cpu.cmake).
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace gptoss::cpu::avx2 {

// Horizontal sum of 8 floats.
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// A row's dot with NT tokens over nblk blocks: block(g, a) adds block g into acc[j][a] for every token
// j. Two accumulators a token, blocks alternating between them: a block's convert + FMA chain is 4 + 4
// cycles on Zen, so one accumulator would serialize consecutive blocks (NT = 1 is the decode
// matvec). res[j] = token j's sum.
template <int NT, class Block>
__attribute__((always_inline)) inline void two_acc_blocks(int64_t nblk, __m256 (&acc)[NT][2], Block&& block, float* res) {
  for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = _mm256_setzero_ps();
  int64_t g = 0;
  for (; g + 2 <= nblk; g += 2) {  // constant accumulator indices: acc stays in registers
    block(g, 0);
    block(g + 1, 1);
  }
  if (g < nblk) block(g, 0);
  for (int j = 0; j < NT; ++j) res[j] = hsum(_mm256_add_ps(acc[j][0], acc[j][1]));
}

}  // namespace gptoss::cpu::avx2
