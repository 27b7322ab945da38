// AVX2 bf16 row kernel: 8 bf16 weights widen to f32 per step; up to 4 tokens share each load.
#include <immintrin.h>

#include "core/dtype.h"
#include "kernels.h"
#include "panel_avx2.h"
#include "row_blocks.h"
#include "simd_avx2.h"

namespace gptoss::cpu::avx2 {

namespace {
// From this many tokens up the prefill runs as panel_avx2.h's small GEMM (bench/RESULTS.md).
constexpr int64_t kBf16PanelMinTokens = 7;

inline __m256 widen(const uint16_t* p) {
  return _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
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
  if (n >= kBf16PanelMinTokens && cols % 8 == 0 && !panel_disabled()) {
    // A row's bf16 widened to f32 (panel_avx2.h).
    panel_rows(cols, x, n, out, ld, r0, r1, [&](int64_t row, int64_t c0, int64_t kc, float* dst) {
      const uint16_t* wr = w + row * cols + c0;
      const auto* row_bytes = reinterpret_cast<const uint8_t*>(w + row * cols);
      for (int64_t c = 0; c < kc; c += 8) {
        // 16 bytes a step; 16 x 32 columns (1 KB) ahead, as the MXFP4 panel.
        panel_prefetch(row_bytes, cols * 2, 2 * (c0 + c), 16, 2 * 32 * kPanelAheadBlocks);
        _mm256_storeu_ps(dst + c, widen(wr + c));
      }
    });
    return;
  }
  for_rows_by_token_blocks(r0, r1, n, cols, x, out, ld, [&](auto nt, int64_t r, const float* xt, float* res) {
    row_dotn<decltype(nt)::value>(w + r * cols, xt, cols, res);
  });
}

}  // namespace gptoss::cpu::avx2
