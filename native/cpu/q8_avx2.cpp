// AVX2 Q8_0 row kernel (compiled with -mavx2 -mfma -mf16c): a block's 32 int8 widen to four vectors
// of 8 f32 (exact), four FMAs against the activations, one FMA for the f16 scale; 1-4 tokens share
// each decoded block (row_blocks.h).
#include <immintrin.h>

#include <cstring>

#include "core/dtype.h"
#include "kernels.h"
#include "panel_avx2.h"
#include "q8_avx2.h"
#include "row_blocks.h"
#include "simd_avx2.h"

namespace gptoss::cpu::avx2 {

namespace {
// From this many tokens up the prefill runs as panel_avx2.h's small GEMM (bench/RESULTS.md).
constexpr int64_t kQ8PanelMinTokens = 7;

// One row, one token (decode): per block the two halves' products go to their own accumulator pair,
// each scaled by its FMA, so no block waits on an add of its halves (a chain of mul, FMA, FMA per half;
// the n = 1 path through row_dotn<1> summed the halves first: 1.74-1.84 ns a block against 1.49-1.50
// for this one, one thread on this Zen 4 with the AVX2 code, bench/RESULTS.md). Blocks alternate
// between two accumulator pairs.
inline void block_dot1(const uint8_t* blk, const float* xg, __m256& a, __m256& b) {
  uint16_t dh;
  std::memcpy(&dh, blk, 2);
  const __m256 d = _mm256_set1_ps(_cvtsh_ss(dh));
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
  const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 18));
  __m256 p0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), _mm256_loadu_ps(xg));
  __m256 p1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), _mm256_loadu_ps(xg + 8));
  p0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), _mm256_loadu_ps(xg + 16), p0);
  p1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), _mm256_loadu_ps(xg + 24), p1);
  a = _mm256_fmadd_ps(p0, d, a);
  b = _mm256_fmadd_ps(p1, d, b);
}
inline float row_dot1(const uint8_t* b, int64_t nblk, const float* x) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t g = 0;
  for (; g + 2 <= nblk; g += 2) {
    block_dot1(b + kQ8BlockBytes * g, x + 32 * g, acc[0], acc[1]);
    block_dot1(b + kQ8BlockBytes * (g + 1), x + 32 * (g + 1), acc[2], acc[3]);
  }
  if (g < nblk) block_dot1(b + kQ8BlockBytes * g, x + 32 * g, acc[0], acc[1]);
  return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

template <int NT>
inline void row_dotn(const uint8_t* b, int64_t nblk, const float* x, int64_t cols, float* res) {
  __m256 acc[NT][2];
  for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = _mm256_setzero_ps();
  for (int64_t g = 0; g < nblk; ++g) {
    const uint8_t* blk = b + kQ8BlockBytes * g;
    uint16_t dh;
    std::memcpy(&dh, blk, 2);
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(dh));
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 18));
    __m256 w[4] = {_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))),
                   _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)))};
    for (int j = 0; j < NT; ++j) {
      const float* xg = x + j * cols + 32 * g;
      __m256 p0 = _mm256_mul_ps(w[0], _mm256_loadu_ps(xg));
      __m256 p1 = _mm256_mul_ps(w[1], _mm256_loadu_ps(xg + 8));
      p0 = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(xg + 16), p0);
      p1 = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(xg + 24), p1);
      acc[j][g & 1] = _mm256_fmadd_ps(_mm256_add_ps(p0, p1), d, acc[j][g & 1]);
    }
  }
  for (int j = 0; j < NT; ++j) res[j] = hsum(_mm256_add_ps(acc[j][0], acc[j][1]));
}
// Two rows times T = 1..3 tokens (prefill): both rows' blocks widened and scaled once (8 registers),
// then each token's activations, taken from memory as the FMAs' operands, feed both rows: 8 FMAs per 4
// activation loads, against row_dotn's 5 FP ops per block and token (4 products and the scale).
template <int T>
inline void tile2(const uint8_t* b, int64_t nblk, const float* x, int64_t cols, float* out, int64_t ld) {
  const int64_t rb = nblk * kQ8BlockBytes;
  __m256 acc[2][T];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < T; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t g = 0; g < nblk; ++g) {
    __m256 w[2][4];
    for (int i = 0; i < 2; ++i) {
      const uint8_t* blk = b + i * rb + kQ8BlockBytes * g;
      uint16_t dh;
      std::memcpy(&dh, blk, 2);
      const __m256 d = _mm256_set1_ps(_cvtsh_ss(dh));
      const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
      const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 18));
      w[i][0] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), d);
      w[i][1] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), d);
      w[i][2] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), d);
      w[i][3] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), d);
    }
    for (int j = 0; j < T; ++j)
      for (int q = 0; q < 4; ++q) {
        const __m256 xv = _mm256_loadu_ps(x + j * cols + 32 * g + 8 * q);
        acc[0][j] = _mm256_fmadd_ps(w[0][q], xv, acc[0][j]);
        acc[1][j] = _mm256_fmadd_ps(w[1][q], xv, acc[1][j]);
      }
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < T; ++j) out[j * ld + i] = hsum(acc[i][j]);
}
}  // namespace

void q8_0_rows(const uint8_t* blocks, int64_t cols, const float* x, int64_t n, float* out, int64_t ld, int64_t r0,
               int64_t r1) {
  const int64_t nblk = cols / kQ8BlockSize;
  if (n >= kQ8PanelMinTokens && !panel_disabled()) {
    // A row's blocks widened and scaled (panel_avx2.h): 4 converts + 4 multiplies a block, for every token.
    panel_rows(cols, x, n, out, ld, r0, r1, [&](int64_t row, int64_t c0, int64_t kc, float* dst) {
      const uint8_t* b = blocks + row * nblk * kQ8BlockBytes;
      for (int64_t g = c0 / 32, g1 = (c0 + kc) / 32; g < g1; ++g, dst += 32) {
        const uint8_t* blk = b + kQ8BlockBytes * g;
        panel_prefetch(b, nblk * kQ8BlockBytes, kQ8BlockBytes * g, kQ8BlockBytes, kQ8BlockBytes * kPanelAheadBlocks);
        uint16_t dh;
        std::memcpy(&dh, blk, 2);
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(dh));
        const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
        const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 18));
        _mm256_storeu_ps(dst, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), d));
        _mm256_storeu_ps(dst + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), d));
        _mm256_storeu_ps(dst + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), d));
        _mm256_storeu_ps(dst + 24, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), d));
      }
    });
    return;
  }
  int64_t r = r0;
  if (n > 1)
    for (; r + 2 <= r1; r += 2) {
      const uint8_t* b = blocks + r * nblk * kQ8BlockBytes;
      int64_t t = 0;
      for (; t + 3 <= n; t += 3) tile2<3>(b, nblk, x + t * cols, cols, out + t * ld + r, ld);
      if (n - t == 2) tile2<2>(b, nblk, x + t * cols, cols, out + t * ld + r, ld);
      if (n - t == 1) tile2<1>(b, nblk, x + t * cols, cols, out + t * ld + r, ld);
    }
  if (n == 1) {
    for (; r < r1; ++r) out[r] = row_dot1(blocks + r * nblk * kQ8BlockBytes, nblk, x);
    return;
  }
  for_rows_by_token_blocks(r, r1, n, cols, x, out, ld, [&](auto nt, int64_t row, const float* xt, float* res) {
    row_dotn<decltype(nt)::value>(blocks + row * nblk * kQ8BlockBytes, nblk, xt, cols, res);
  });
}

void q8_0_rows_q8(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n, float* out,
                  int64_t ld, int64_t r0, int64_t r1) {
  q8_0_rows_q8_impl<false>(blocks, cols, xq, xd, n, out, ld, r0, r1);
}

}  // namespace gptoss::cpu::avx2
