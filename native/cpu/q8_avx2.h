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

// ---- q8 GEMM for Q8_0 weights (prefill; mxfp4_avx2.h q8_gemm8 for the idea): 8 rows in the lanes of a
// vector, each token's 4 activation bytes broadcast. The weights span [-128, 127], so no bias makes them
// unsigned without int16 overflow: the weights' absolute values against the activations with the weights'
// signs (vpsignb per step), one vpmaddwd per step (a pair reaches 2 x 128 x 127). Per 8 rows, token and
// block: 8 x (broadcast, sign, vpmaddubsw, vpmaddwd, add) (AVX-VNNI: broadcast, sign, vpdpbusd), a convert,
// the scale (8 rows' f16 d times the token's xd), one FMA; against ~8 ops per row, token and block in the
// row kernel. The block's 8 rows are transposed once a call (an 8 x 8 transpose of 32-bit words).
template <bool Vnni>
inline void q8_0_gemm8(const uint8_t* b, int64_t rb, int64_t nblk, const int8_t* xq, const float* xd, int64_t n,
                       int64_t cols, float* acc, float* out, int64_t ld) {
  const __m256i ones16 = _mm256_set1_epi16(1);
  for (int64_t t = 0; t < n; ++t) _mm256_storeu_ps(acc + 8 * t, _mm256_setzero_ps());
  alignas(32) uint16_t dh[8];
  alignas(32) __m256i wv[8], av[8];
  for (int64_t g = 0; g < nblk; ++g) {
    prefetch_rows<kQ8BlockBytes, 8>(b, rb, g, int64_t(kQ8BlockBytes) * 8);
    __m256i r[8];
    for (int i = 0; i < 8; ++i) {
      const uint8_t* blk = b + i * rb + kQ8BlockBytes * g;
      std::memcpy(&dh[i], blk, 2);
      r[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    }
    __m256i t8[8], u[8];
    for (int i = 0; i < 8; i += 2) {
      t8[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
      t8[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
      u[i] = _mm256_unpacklo_epi64(t8[i], t8[i + 2]);
      u[i + 1] = _mm256_unpackhi_epi64(t8[i], t8[i + 2]);
      u[i + 2] = _mm256_unpacklo_epi64(t8[i + 1], t8[i + 3]);
      u[i + 3] = _mm256_unpackhi_epi64(t8[i + 1], t8[i + 3]);
    }
    // u[0..3]: rows 0-3, words (0, 4), (1, 5), (2, 6), (3, 7) in lanes (0, 1); u[4..7] the same for rows 4-7.
    for (int j = 0; j < 4; ++j) {
      wv[j] = _mm256_permute2x128_si256(u[j], u[j + 4], 0x20);
      wv[j + 4] = _mm256_permute2x128_si256(u[j], u[j + 4], 0x31);
    }
    for (int j = 0; j < 8; ++j) av[j] = _mm256_sign_epi8(wv[j], wv[j]);
    const __m256 dv = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(dh)));
    const int8_t* xg = xq + 32 * g;
    for (int64_t t = 0; t < n; ++t) {
      const int8_t* xt = xg + t * cols;
      auto sx = [&](int j) {
        int32_t v;
        std::memcpy(&v, xt + 4 * j, 4);
        return _mm256_sign_epi8(_mm256_set1_epi32(v), wv[j]);
      };
      __m256i e, o;
      if constexpr (Vnni) {
        e = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), av[0], sx(0));
        o = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), av[1], sx(1));
        for (int j = 2; j < 8; j += 2) {
          e = _mm256_dpbusd_avx_epi32(e, av[j], sx(j));
          o = _mm256_dpbusd_avx_epi32(o, av[j + 1], sx(j + 1));
        }
      } else {
        e = _mm256_madd_epi16(_mm256_maddubs_epi16(av[0], sx(0)), ones16);
        o = _mm256_madd_epi16(_mm256_maddubs_epi16(av[1], sx(1)), ones16);
        for (int j = 2; j < 8; j += 2) {
          e = _mm256_add_epi32(e, _mm256_madd_epi16(_mm256_maddubs_epi16(av[j], sx(j)), ones16));
          o = _mm256_add_epi32(o, _mm256_madd_epi16(_mm256_maddubs_epi16(av[j + 1], sx(j + 1)), ones16));
        }
      }
      const __m256 sc = _mm256_mul_ps(dv, _mm256_set1_ps(xd[t * nblk + g]));
      _mm256_storeu_ps(acc + 8 * t,
                       _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(e, o)), sc, _mm256_loadu_ps(acc + 8 * t)));
    }
  }
  for (int64_t t = 0; t < n; ++t) _mm256_storeu_ps(out + t * ld, _mm256_loadu_ps(acc + 8 * t));
}

// From this many tokens up (whole groups of 8 rows). Below it the row kernel's one stream a row wins:
// qkv-shaped Q8_0 [5120, 2880] from DRAM, one thread, row kernel vs GEMM, GFLOP/s: n = 4 105 / 83,
// 6 71 / 98, 8 74 / 114; in cache [4096, 2880] n = 16 73 / 139, 128 107 / 164 (bench/RESULTS.md, issue 17).
constexpr int64_t kQ8_0GemmMinTokens = 6;

template <bool Vnni>
inline void q8_0_rows_q8_impl(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n,
                              float* out, int64_t ld, int64_t r0, int64_t r1) {
  const int64_t nblk = cols / kQ8BlockSize;
  if (n >= kQ8_0GemmMinTokens && r1 - r0 >= 8 && !avx2::panel_disabled()) {
    Q8GemmScratch& sc = q8_gemm_scratch();
    sc.acc.resize(size_t(8 * n));
    for (; r0 + 8 <= r1; r0 += 8)
      q8_0_gemm8<Vnni>(blocks + r0 * nblk * kQ8BlockBytes, nblk * kQ8BlockBytes, nblk, xq, xd, n, cols, sc.acc.data(),
                       out + r0, ld);
  }
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
