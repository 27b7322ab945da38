// AVX2 MXFP4 row kernels, shared by mxfp4_avx2.cpp (-mavx2 -mfma) and mxfp4_avxvnni.cpp (the same
// plus -mavxvnni: the q8 dot product becomes one vpdpbusd). Included by those two files only.
//
// Decode: a block's 16 bytes are broadcast to both 128-bit lanes, the high lane shifted right by 4
// (vpsrlvd), and the low 4 bits of every byte index a 16-entry byte table with one vpshufb: 32
// nibbles -> 32 table bytes, the low lane holding the block's even columns (low nibbles) and the high
// lane its odd columns. Two things are read from such tables:
//  - q8: the E2M1 value times 2 as int8 ({0, 1, 2, 3, 4, 6, 8, 12} and negatives; exact integers),
//    multiplied with int8 activations (vpmaddubsw + vpmaddwd, or vpdpbusd), then xd * 2^(s-128).
//  - f32 (exact): the two bytes of the value's bf16 encoding (E2M1 values are exact in bf16). Two
//    vpshufb and two vpunpck{l,h}bw give 16-bit bf16 words; a shift or a mask of each 32-bit lane
//    makes the f32 (bf16 << 16), so 32 weights cost 4 shuffles and 4 ALU ops, where vpermps on 8
//    magnitudes cost 4 permutes plus 12 ops for the signs (bench/RESULTS.md, CPU kernels, AVX2).
//    The words come out in the order kAvx2Pos gives, which the activations are permuted to.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "core/dtype.h"
#include "kernels.h"
#include "row_blocks.h"
#include "simd_avx2.h"

// Internal linkage: the two including files are compiled with different -m flags, so they must not
// share (ODR-merge) any out-of-line copy of these functions.
namespace gptoss::cpu {
namespace {

// Column c = 16h + 4m + 2a + l of a block lands at 16h + 8a + 4l + m (h, a, l in {0, 1}, m in 0..3):
// register 2h+a of the decode holds, in 128-bit lane l, the columns 16h + 4m + 2a + l for m = 0..3.
inline constexpr uint8_t avx2_pos(int c) {
  return uint8_t(16 * (c >> 4) + 8 * ((c >> 1) & 1) + 4 * (c & 1) + ((c >> 2) & 3));
}

// A block's 32 nibbles as 32 bytes 0..15 (even columns in the low lane, odd in the high one).
inline __m256i nibbles(const uint8_t* b) {
  const __m256i bytes = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)));
  return _mm256_and_si256(_mm256_srlv_epi32(bytes, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)), _mm256_set1_epi8(15));
}

// ---- q8 ----
inline __m256i twice_table() {
  return _mm256_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12,  //
                          0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
}

// sum over 4-byte groups of |w| * (x with w's sign): the 8 int32 partial dot products of a block.
template <bool Vnni>
inline __m256i dot_i8(__m256i abs_w, __m256i w, __m256i x) {
  const __m256i sx = _mm256_sign_epi8(x, w);
  if constexpr (Vnni) {
    return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), abs_w, sx);
  } else {
    // |w| <= 12 and |x| <= 127: a pair sums to at most 3048, no int16 saturation.
    return _mm256_madd_epi16(_mm256_maddubs_epi16(abs_w, sx), _mm256_set1_epi16(1));
  }
}

// QS / SS: bytes between consecutive blocks' codes / scale bytes (Hugging Face 16 / 1, ggml 17 / 17).
template <bool Vnni, int NT, int QS = 16, int SS = 1>
inline void row_dot_q8(const uint8_t* b, const uint8_t* s, int64_t nblk, const int8_t* xq, const float* xd,
                       int64_t cols, const float* half, float* res) {
  const __m256i table = twice_table();
  __m256 acc[NT][2];  // two a token (avx2::two_acc_blocks)
  auto block = [&](int64_t g, int a) {
    const __m256i w = _mm256_shuffle_epi8(table, nibbles(b + QS * g));
    const __m256i abs_w = _mm256_sign_epi8(w, w);
    const float ws = half[s[SS * g]];
    for (int j = 0; j < NT; ++j) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + j * cols + 32 * g));
      const __m256 d = _mm256_set1_ps(xd[j * nblk + g] * ws);
      acc[j][a] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_i8<Vnni>(abs_w, w, x)), d, acc[j][a]);
    }
  };
  avx2::two_acc_blocks<NT>(nblk, acc, block, res);
}

template <bool Vnni, int QS = 16, int SS = 1>
inline void mxfp4_rows_q8_impl(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const int8_t* xq,
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
        case 1: row_dot_q8<Vnni, 1, QS, SS>(b, s, nblk, x, d, cols, half, res); break;
        case 2: row_dot_q8<Vnni, 2, QS, SS>(b, s, nblk, x, d, cols, half, res); break;
        case 3: row_dot_q8<Vnni, 3, QS, SS>(b, s, nblk, x, d, cols, half, res); break;
        default: row_dot_q8<Vnni, 4, QS, SS>(b, s, nblk, x, d, cols, half, res); break;
      }
      for (int64_t j = 0; j < nt; ++j) out[(t + j) * ld + r] = res[j];
    }
}

// ggml's 17-byte blocks: the scale byte, then the 16 code bytes.
template <bool Vnni>
inline void mxfp4_ggml_rows_q8_impl(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n,
                                    float* out, int64_t ld, int64_t r0, int64_t r1) {
  mxfp4_rows_q8_impl<Vnni, kMxfp4GgmlBlockBytes, kMxfp4GgmlBlockBytes>(blocks + 1, blocks, cols, xq, xd, n, out, ld, r0, r1);
}

}  // namespace
}  // namespace gptoss::cpu
