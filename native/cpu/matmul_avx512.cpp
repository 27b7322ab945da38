// AVX-512 bf16 kernel: 16 bf16 weights widen to f32 exactly (zero-extend, shift left 16) and FMA
// against f32 activations. Register tile of R rows x T tokens: each widened weight vector is used T
// times and each activation vector R times, so the loop is FMA-bound rather than load- or
// convert-bound (R*T FMAs against R widens and T loads per 16 columns). Tails use masked loads.
#include <immintrin.h>

#include "kernels.h"

namespace gptoss::cpu::avx512 {

namespace {
inline __m512 widen_masked(const uint16_t* p, __mmask16 m) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}
inline __m512 widen(const uint16_t* p) {
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}

// out[(t+j)*ld + r+i] = W[r+i, :] . x[t+j, :] for i < R, j < T.
template <int R, int T>
inline void tile(const uint16_t* w, int64_t cols, const float* x, float* out, int64_t ld) {
  __m512 acc[R][T];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < T; ++j) acc[i][j] = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    __m512 wv[R];
    for (int i = 0; i < R; ++i) wv[i] = widen(w + i * cols + c);
    for (int j = 0; j < T; ++j) {
      const __m512 xv = _mm512_loadu_ps(x + j * cols + c);
      for (int i = 0; i < R; ++i) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
    }
  }
  if (c < cols) {
    const __mmask16 m = __mmask16((1u << (cols - c)) - 1);
    __m512 wv[R];
    for (int i = 0; i < R; ++i) wv[i] = widen_masked(w + i * cols + c, m);
    for (int j = 0; j < T; ++j) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + j * cols + c);
      for (int i = 0; i < R; ++i) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < T; ++j) out[j * ld + i] = _mm512_reduce_add_ps(acc[i][j]);
}

// One row, one token (decode): two accumulators, no software prefetch. Faster than the 4-row tile
// at n = 1, with or without prefetch (LM head 33 vs 22-26 GB/s): one sequential stream at a time
// suits the hardware prefetchers (bench/RESULTS.md, CPU kernels).
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

template <int R>
inline void tile_tokens(const uint16_t* w, int64_t cols, const float* x, int64_t nt, float* out, int64_t ld) {
  switch (nt) {
    case 1: tile<R, 1>(w, cols, x, out, ld); break;
    case 2: tile<R, 2>(w, cols, x, out, ld); break;
    case 3: tile<R, 3>(w, cols, x, out, ld); break;
    case 4: tile<R, 4>(w, cols, x, out, ld); break;
    case 5: tile<R, 5>(w, cols, x, out, ld); break;
    default: tile<R, 6>(w, cols, x, out, ld); break;
  }
}
}  // namespace

void bf16_rows(const uint16_t* w, int64_t cols, const float* x, int64_t n, float* out, int64_t ld, int64_t r0,
               int64_t r1) {
  // Tokens in blocks whose activations stay in L2 (48 x 2880 f32 = 553 KB of Zen 4's 1 MB): the
  // rows are re-read once per block, the activations never from DRAM.
  if (n == 1) {
    for (int64_t r = r0; r < r1; ++r) out[r] = row_dot1(w + r * cols, x, cols);
    return;
  }
  constexpr int64_t kTokenBlock = 48;
  constexpr int kRows = 4, kTokens = 6;  // 24 accumulators + 4 weight vectors + 1 activation
  for (int64_t tb = 0; tb < n; tb += kTokenBlock) {
    const int64_t te = n - tb < kTokenBlock ? n : tb + kTokenBlock;
    int64_t r = r0;
    for (; r + kRows <= r1; r += kRows)
      for (int64_t t = tb; t < te; t += kTokens)
        tile_tokens<kRows>(w + r * cols, cols, x + t * cols, te - t, out + t * ld + r, ld);
    for (; r < r1; ++r)
      for (int64_t t = tb; t < te; t += kTokens)
        tile_tokens<1>(w + r * cols, cols, x + t * cols, te - t, out + t * ld + r, ld);
  }
}

}  // namespace gptoss::cpu::avx512
