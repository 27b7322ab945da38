// AVX2 Q8_0 x q8 row kernel (activations: 'q8' on the dense layers), shared by q8_avx2.cpp (-mavx2 -mfma
// -mf16c: vpmaddubsw + vpmaddwd) and q8_avxvnni.cpp (the same plus -mavxvnni: one vpdpbusd). Included by
// those two files only. Per block: the 32 weight bytes, their absolute values, the activations with the
// weights' signs, the integer dot (dot_i8, mxfp4_avx2.h: |w| <= 128 and |x| <= 127, so a vpmaddubsw pair
// sums to at most 32512, no int16 saturation), converted and scaled by f16 d * xd with one FMA. 1-4 tokens
// share each row's decoded block.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "mxfp4_avx2.h"
#include "simd_avx2.h"

namespace gptoss::cpu {
namespace {

template <bool Vnni, int NT>
inline void q8_0_row_dot_q8(const uint8_t* b, int64_t nblk, const int8_t* xq, const float* xd, int64_t cols,
                            float* res) {
  __m256 acc[NT][2];  // two a token (avx2::two_acc_blocks)
  auto block = [&](int64_t g, int a) {
    const uint8_t* blk = b + kQ8BlockBytes * g;
    uint16_t dh;
    std::memcpy(&dh, blk, 2);
    const float dw = _cvtsh_ss(dh);
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    const __m256i abs_w = _mm256_sign_epi8(w, w);
    for (int j = 0; j < NT; ++j) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + j * cols + 32 * g));
      const __m256 d = _mm256_set1_ps(dw * xd[j * nblk + g]);
      acc[j][a] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_i8<Vnni>(abs_w, w, x)), d, acc[j][a]);
    }
  };
  avx2::two_acc_blocks<NT>(nblk, acc, block, res);
}

template <bool Vnni>
inline void q8_0_rows_q8_impl(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n,
                              float* out, int64_t ld, int64_t r0, int64_t r1) {
  const int64_t nblk = cols / kQ8BlockSize;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* b = blocks + r * nblk * kQ8BlockBytes;
    for (int64_t t = 0; t < n; t += 4) {
      float res[4];
      const int8_t* x = xq + t * cols;
      const float* d = xd + t * nblk;
      const int64_t nt = n - t < 4 ? n - t : 4;
      switch (nt) {
        case 1: q8_0_row_dot_q8<Vnni, 1>(b, nblk, x, d, cols, res); break;
        case 2: q8_0_row_dot_q8<Vnni, 2>(b, nblk, x, d, cols, res); break;
        case 3: q8_0_row_dot_q8<Vnni, 3>(b, nblk, x, d, cols, res); break;
        default: q8_0_row_dot_q8<Vnni, 4>(b, nblk, x, d, cols, res); break;
      }
      for (int64_t j = 0; j < nt; ++j) out[(t + j) * ld + r] = res[j];
    }
  }
}

}  // namespace
}  // namespace gptoss::cpu
