// AVX-512 Q8_0 row kernel (compiled with the avx512 flags of cpu.cmake). A block's 32 int8 widen to
// two vectors of 16 f32 (vpmovsxbd + vcvtdq2ps, exact), two FMAs against the activations give the
// block's partial sums, and one more FMA applies the f16 scale (vcvtph2ps). Four rows share each
// activation load at n = 1 (as the MXFP4 decode kernel); tokens come 1-4 at a time otherwise.
#include <immintrin.h>

#include <cstring>

#include "core/dtype.h"
#include "kernels.h"
#include "row_blocks.h"

namespace gptoss::cpu::avx512 {

namespace {
inline __m512 widen_q(const uint8_t* q) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q))));
}
inline __m512 scale_of(const uint8_t* b) {
  uint16_t d;
  std::memcpy(&d, b, 2);
  return _mm512_cvtph_ps(_mm256_set1_epi16(short(d)));
}

constexpr int64_t kPrefetch = 2048;

// Four rows times one token.
inline void rows_dot4(const uint8_t* b, int64_t nblk, const float* x, float* res) {
  const int64_t rb = nblk * kQ8BlockBytes;
  __m512 acc[4];
  for (int r = 0; r < 4; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t g = 0; g < nblk; ++g) {
    prefetch_rows<kQ8BlockBytes, 4>(b, rb, g, kPrefetch);
    const __m512 x0 = _mm512_loadu_ps(x + 32 * g), x1 = _mm512_loadu_ps(x + 32 * g + 16);
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) {
      const uint8_t* blk = b + r * rb + kQ8BlockBytes * g;
      const __m512 part = _mm512_fmadd_ps(widen_q(blk + 18), x1, _mm512_mul_ps(widen_q(blk + 2), x0));
      acc[r] = _mm512_fmadd_ps(part, scale_of(blk), acc[r]);
    }
  }
  for (int r = 0; r < 4; ++r) res[r] = _mm512_reduce_add_ps(acc[r]);
}

// R rows times T tokens (prefill): each block is widened and scaled once per row (two multiplies by the
// f16 scale), then used by T tokens: 2 FMAs per block and token, against 3 (two products and the scale
// FMA) in row_dotn, and each activation load feeds R rows. R = 4, T = 4: 16 accumulators + 8 weight
// vectors + 2 activations of the 32 zmm registers.
template <int R, int T>
inline void tile(const uint8_t* b, int64_t nblk, const float* x, int64_t cols, float* out, int64_t ld) {
  const int64_t rb = nblk * kQ8BlockBytes;
  __m512 acc[R][T];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < T; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t g = 0; g < nblk; ++g) {
    prefetch_rows<kQ8BlockBytes, R>(b, rb, g, kPrefetch);
    __m512 w0[R], w1[R];
    for (int i = 0; i < R; ++i) {
      const uint8_t* blk = b + i * rb + kQ8BlockBytes * g;
      const __m512 d = scale_of(blk);
      w0[i] = _mm512_mul_ps(widen_q(blk + 2), d);
      w1[i] = _mm512_mul_ps(widen_q(blk + 18), d);
    }
    for (int j = 0; j < T; ++j) {
      const __m512 x0 = _mm512_loadu_ps(x + j * cols + 32 * g), x1 = _mm512_loadu_ps(x + j * cols + 32 * g + 16);
      for (int i = 0; i < R; ++i) acc[i][j] = _mm512_fmadd_ps(w1[i], x1, _mm512_fmadd_ps(w0[i], x0, acc[i][j]));
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < T; ++j) out[j * ld + i] = _mm512_reduce_add_ps(acc[i][j]);
}

template <int R>
inline void tile_tokens(const uint8_t* b, int64_t nblk, const float* x, int64_t cols, int64_t nt, float* out,
                        int64_t ld) {
  switch (nt) {
    case 1: tile<R, 1>(b, nblk, x, cols, out, ld); break;
    case 2: tile<R, 2>(b, nblk, x, cols, out, ld); break;
    case 3: tile<R, 3>(b, nblk, x, cols, out, ld); break;
    default: tile<R, 4>(b, nblk, x, cols, out, ld); break;
  }
}

template <int NT>
inline void row_dotn(const uint8_t* b, int64_t nblk, const float* x, int64_t cols, float* res) {
  __m512 acc[NT];
  for (int j = 0; j < NT; ++j) acc[j] = _mm512_setzero_ps();
  for (int64_t g = 0; g < nblk; ++g) {
    const uint8_t* blk = b + kQ8BlockBytes * g;
    const __m512 w0 = widen_q(blk + 2), w1 = widen_q(blk + 18), d = scale_of(blk);
    for (int j = 0; j < NT; ++j) {
      const float* xg = x + j * cols + 32 * g;
      const __m512 part = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xg + 16), _mm512_mul_ps(w0, _mm512_loadu_ps(xg)));
      acc[j] = _mm512_fmadd_ps(part, d, acc[j]);
    }
  }
  for (int j = 0; j < NT; ++j) res[j] = _mm512_reduce_add_ps(acc[j]);
}
}  // namespace

void q8_0_rows(const uint8_t* blocks, int64_t cols, const float* x, int64_t n, float* out, int64_t ld, int64_t r0,
               int64_t r1) {
  const int64_t nblk = cols / kQ8BlockSize;
  if (n == 1) {
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) rows_dot4(blocks + r * nblk * kQ8BlockBytes, nblk, x, out + r);
    for (; r < r1; ++r) row_dotn<1>(blocks + r * nblk * kQ8BlockBytes, nblk, x, cols, out + r);
    return;
  }
  // Tokens in blocks whose activations stay in L2 (48 x 4096 f32 = 786 KB of 1 MB), 4 x 4 tiles.
  constexpr int64_t kTokenBlock = 48;
  for (int64_t tb = 0; tb < n; tb += kTokenBlock) {
    const int64_t te = n - tb < kTokenBlock ? n : tb + kTokenBlock;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4)
      for (int64_t t = tb; t < te; t += 4)
        tile_tokens<4>(blocks + r * nblk * kQ8BlockBytes, nblk, x + t * cols, cols, te - t, out + t * ld + r, ld);
    for (; r < r1; ++r)
      for (int64_t t = tb; t < te; t += 4)
        tile_tokens<1>(blocks + r * nblk * kQ8BlockBytes, nblk, x + t * cols, cols, te - t, out + t * ld + r, ld);
  }
}

}  // namespace gptoss::cpu::avx512
