// AVX-512 MXFP4 q8 row kernel, shared by mxfp4_avx512.cpp (vpmaddubsw + vpmaddwd) and
// mxfp4_avx512vnni.cpp (-mavx512vnni: one vpdpbusd). Included by those two files only.
//
// Two blocks a zmm: each block's 16 bytes fill two 128-bit lanes, the second shifted right by 4, so
// one vpshufb of the 4-bit indices yields the block's even columns then its odd ones (the avx512
// set's activation order, kEvenOddPos). AVX-512 has no vpsignb: the table gives |2 x E2M1| (the
// unsigned operand) and bit 3 of each nibble, the sign, selects where x is negated (vptestmb +
// masked vpsubb).
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "core/dtype.h"
#include "kernels.h"

// Internal linkage: the including files are compiled with different -m flags.
namespace gptoss::cpu {
namespace {

template <bool Vnni>
inline __m512i dot_i8_512(__m512i abs_w, __mmask64 neg, __m512i x) {
  const __m512i sx = _mm512_mask_sub_epi8(x, neg, _mm512_setzero_si512(), x);
  if constexpr (Vnni) {
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), abs_w, sx);
  } else {
    return _mm512_madd_epi16(_mm512_maddubs_epi16(abs_w, sx), _mm512_set1_epi16(1));  // pairs <= 3048
  }
}

// The nibbles of blocks g and g+1 (their 16 code bytes at b and b + QS): lanes [g low, g high, g+1 low,
// g+1 high].
template <int QS>
inline __m512i nibbles2(const uint8_t* b) {
  __m256i pair;
  if constexpr (QS == 16) {
    pair = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
  } else {  // ggml: a scale byte between the two blocks' codes
    pair = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b))),
                                   _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + QS)), 1);
  }
  const __m512i bytes = _mm512_castsi256_si512(pair);
  const __m512i dup = _mm512_shuffle_i64x2(bytes, bytes, _MM_SHUFFLE(1, 1, 0, 0));
  return _mm512_and_si512(_mm512_srlv_epi32(dup, _mm512_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4, 0, 0, 0, 0, 4, 4, 4, 4)),
                          _mm512_set1_epi8(15));
}
// The nibbles of one block (the odd last one): lanes [low, high, 0, 0].
inline __m512i nibbles1(const uint8_t* b) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
  const __m256i dup = _mm256_broadcastsi128_si256(bytes);
  return _mm512_castsi256_si512(_mm256_and_si256(_mm256_srlv_epi32(dup, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)),
                                                 _mm256_set1_epi8(15)));
}

// [a x 8, b x 8]
inline __m512 pair_splat(float a, float b) {
  return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1);
}

// QS / SS: bytes between consecutive blocks' codes / scale bytes (Hugging Face 16 / 1, ggml 17 / 17).
template <bool Vnni, int NT, int QS = 16, int SS = 1>
inline void row_dot_q8_512(const uint8_t* b, const uint8_t* s, int64_t nblk, const int8_t* xq, const float* xd,
                           int64_t cols, const float* half, float* res) {
  const __m512i abs_table = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, 1, 2, 3, 4, 6, 8, 12));
  const __m512i sign_bit = _mm512_set1_epi8(8);
  __m512 acc[NT][2];
  for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = _mm512_setzero_ps();
  auto pair = [&](int64_t g, int a) {
    const __m512i idx = nibbles2<QS>(b + QS * g);
    const __m512i abs_w = _mm512_shuffle_epi8(abs_table, idx);
    const __mmask64 neg = _mm512_test_epi8_mask(idx, sign_bit);
    const float w0 = half[s[SS * g]], w1 = half[s[SS * (g + 1)]];
    for (int j = 0; j < NT; ++j) {
      const __m512i x = _mm512_loadu_si512(xq + j * cols + 32 * g);
      const __m512 d = pair_splat(xd[j * nblk + g] * w0, xd[j * nblk + g + 1] * w1);
      acc[j][a] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot_i8_512<Vnni>(abs_w, neg, x)), d, acc[j][a]);
    }
  };
  int64_t g = 0;
  for (; g + 4 <= nblk; g += 4) {  // constant accumulator indices: acc stays in registers
    pair(g, 0);
    pair(g + 2, 1);
  }
  if (g + 2 <= nblk) {
    pair(g, 0);
    g += 2;
  }
  if (g < nblk) {
    const __m512i idx = nibbles1(b + QS * g);
    const __m512i abs_w = _mm512_shuffle_epi8(abs_table, idx);
    const __mmask64 neg = _mm512_test_epi8_mask(idx, sign_bit);
    for (int j = 0; j < NT; ++j) {
      const __m512i x = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + j * cols + 32 * g)));
      const __m512 d = pair_splat(xd[j * nblk + g] * half[s[SS * g]], 0.f);
      acc[j][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot_i8_512<Vnni>(abs_w, neg, x)), d, acc[j][0]);
    }
  }
  for (int j = 0; j < NT; ++j) res[j] = _mm512_reduce_add_ps(_mm512_add_ps(acc[j][0], acc[j][1]));
}

template <bool Vnni, int QS = 16, int SS = 1>
inline void mxfp4_rows_q8_512(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const int8_t* xq,
                              const float* xd, int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1) {
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
        case 1: row_dot_q8_512<Vnni, 1, QS, SS>(b, s, nblk, x, d, cols, half, res); break;
        case 2: row_dot_q8_512<Vnni, 2, QS, SS>(b, s, nblk, x, d, cols, half, res); break;
        case 3: row_dot_q8_512<Vnni, 3, QS, SS>(b, s, nblk, x, d, cols, half, res); break;
        default: row_dot_q8_512<Vnni, 4, QS, SS>(b, s, nblk, x, d, cols, half, res); break;
      }
      for (int64_t j = 0; j < nt; ++j) out[(t + j) * ld + r] = res[j];
    }
}

}  // namespace
}  // namespace gptoss::cpu
