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
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "kernels.h"
#include "panel_avx2.h"
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

// ---- q8 GEMM (prefill): 8 rows in the lanes of a vector, tokens broadcast ----
// The row kernel above sums along a row (lanes = columns): per block and token it pays a sign, the
// dot, a convert, a scalar scale product and its splat, an FMA: ~8 ops for 32 weights of one row. Here
// 8 rows share each vector: a block of 8 rows is decoded once a call into 8 vectors, vector j holding
// columns 4j..4j+3 (in the kernels' order) of the 8 rows (row i in 32-bit lane i), and each token's 4
// activation bytes for those columns are broadcast (vpbroadcastd) against it. The weights are biased
// to unsigned (2 x E2M1 + 12, in [0, 24]) so vpmaddubsw takes them as they are and the activations keep
// their sign; the bias adds 12 x (the block's sum of the token's int8), an integer per token and block
// computed once a call and subtracted. A vpmaddubsw pair is at most 2 x 24 x 127 = 6096, so four of them
// sum in int16 (24384) before one vpmaddwd: per 8 rows, token and block 8 broadcasts, 8 vpmaddubsw, 6
// adds, 2 vpmaddwd (AVX-VNNI: 8 vpdpbusd), then the bias, a convert, the scale (8 rows' 2^(s-128) times
// the token's xd) and one FMA into the token's 8 sums. No rows or tokens are padded.
inline __m256i biased_table() {
  return _mm256_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0,  //
                          12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0);
}

// xc[t * nblk + g] = 12 x the sum of token t's int8 in block g: what the bias adds to every row's dot.
inline void q8_bias_sums(const int8_t* xq, int64_t n, int64_t cols, int32_t* xc) {
  const int64_t nblk = cols / 32;
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t g = 0; g < nblk; ++g) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + t * cols + 32 * g));
      const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, x), ones16);
      __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
      h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
      h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
      xc[t * nblk + g] = 12 * _mm_cvtsi128_si32(h);
    }
}

// Rows r0 .. r0 + 7 (codes at cb + i * crs + QS * g, scale bytes at sb + i * srs + SS * g) times n tokens:
// out[t * ld + i] for i = 0..7. acc: 8 n floats of scratch.
template <bool Vnni, int QS, int SS>
inline void q8_gemm8(const uint8_t* cb, int64_t crs, const uint8_t* sb, int64_t srs, int64_t nblk, const int8_t* xq,
                     const float* xd, const int32_t* xc, int64_t n, int64_t cols, const float* half, float* acc,
                     float* out, int64_t ld) {
  const __m256i table = biased_table(), m4 = _mm256_set1_epi8(15), ones16 = _mm256_set1_epi16(1);
  for (int64_t t = 0; t < n; ++t) _mm256_storeu_ps(acc + 8 * t, _mm256_setzero_ps());
  alignas(32) float hs[8];
  for (int64_t g = 0; g < nblk; ++g) {
    prefetch_rows<QS, 8>(cb, crs, g, int64_t(QS) * 16);
    // 8 rows x 16 code bytes -> A_i = [row i | row i + 4]; a 4 x 4 transpose of 32-bit words in each
    // 128-bit lane gives B_j = code bytes 4j..4j+3 of rows 0..7, whose low nibbles are columns 4j..4j+3
    // of the kernels' order and high nibbles columns 16 + 4j..16 + 4j + 3 (nibbles() above).
    __m256i a[4];
    for (int i = 0; i < 4; ++i)
      a[i] = _mm256_inserti128_si256(
          _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(cb + i * crs + QS * g))),
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(cb + (i + 4) * crs + QS * g)), 1);
    const __m256i t0 = _mm256_unpacklo_epi32(a[0], a[1]), t1 = _mm256_unpackhi_epi32(a[0], a[1]);
    const __m256i t2 = _mm256_unpacklo_epi32(a[2], a[3]), t3 = _mm256_unpackhi_epi32(a[2], a[3]);
    const __m256i bq[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2), _mm256_unpacklo_epi64(t1, t3),
                           _mm256_unpackhi_epi64(t1, t3)};
    __m256i w[8];
    for (int j = 0; j < 4; ++j) {
      w[j] = _mm256_shuffle_epi8(table, _mm256_and_si256(bq[j], m4));
      w[j + 4] = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(bq[j], 4), m4));
    }
    for (int i = 0; i < 8; ++i) hs[i] = half[sb[i * srs + SS * g]];
    const __m256 hv = _mm256_load_ps(hs);
    const int8_t* xg = xq + 32 * g;
    for (int64_t t = 0; t < n; ++t) {
      const int8_t* xt = xg + t * cols;
      auto xb = [&](int j) {
        int32_t v;
        std::memcpy(&v, xt + 4 * j, 4);
        return _mm256_set1_epi32(v);
      };
      __m256i isum;
      if constexpr (Vnni) {
        __m256i e = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), w[0], xb(0));
        __m256i o = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), w[1], xb(1));
        for (int j = 2; j < 8; j += 2) {
          e = _mm256_dpbusd_avx_epi32(e, w[j], xb(j));
          o = _mm256_dpbusd_avx_epi32(o, w[j + 1], xb(j + 1));
        }
        isum = _mm256_add_epi32(e, o);
      } else {
        __m256i lo = _mm256_maddubs_epi16(w[0], xb(0)), hi = _mm256_maddubs_epi16(w[4], xb(4));
        for (int j = 1; j < 4; ++j) {
          lo = _mm256_add_epi16(lo, _mm256_maddubs_epi16(w[j], xb(j)));
          hi = _mm256_add_epi16(hi, _mm256_maddubs_epi16(w[j + 4], xb(j + 4)));
        }
        isum = _mm256_add_epi32(_mm256_madd_epi16(lo, ones16), _mm256_madd_epi16(hi, ones16));
      }
      isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(xc[t * nblk + g]));
      const __m256 sc = _mm256_mul_ps(hv, _mm256_set1_ps(xd[t * nblk + g]));
      _mm256_storeu_ps(acc + 8 * t, _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), sc, _mm256_loadu_ps(acc + 8 * t)));
    }
  }
  for (int64_t t = 0; t < n; ++t) _mm256_storeu_ps(out + t * ld, _mm256_loadu_ps(acc + 8 * t));
}

// From this many tokens up, q8 products run as q8_gemm8 over each whole group of 8 rows
// (GPTOSS_CPU_PANEL=0 keeps the row kernel, for A/B runs). Below it the row kernel's one sequential
// stream a row wins: gate_up-shaped weights from DRAM, one thread, row kernel vs GEMM, GFLOP/s: n = 1
// 69 / 66, 2 91 / 67, 3 100 / 95, 4 105 / 111, 6 99 / 139, 8 99 / 157 (bench/RESULTS.md, issue 17).
constexpr int64_t kQ8GemmMinTokens = 4;

struct Q8GemmScratch {
  std::vector<int32_t> xc;
  std::vector<float> acc;
};
inline Q8GemmScratch& q8_gemm_scratch() {
  thread_local Q8GemmScratch s;
  return s;
}

// The GEMM over rows [r0, r0 + 8 * floor((r1 - r0) / 8)); returns where it stopped.
template <bool Vnni, int QS, int SS>
inline int64_t q8_gemm_rows(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const int8_t* xq,
                            const float* xd, int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1) {
  if (n < kQ8GemmMinTokens || r1 - r0 < 8 || avx2::panel_disabled()) return r0;
  const int64_t nblk = cols / 32;
  Q8GemmScratch& sc = q8_gemm_scratch();
  sc.xc.resize(size_t(n * nblk));
  sc.acc.resize(size_t(8 * n));
  q8_bias_sums(xq, n, cols, sc.xc.data());
  const float* half = e8m0_half_table();
  int64_t r = r0;
  for (; r + 8 <= r1; r += 8)
    q8_gemm8<Vnni, QS, SS>(blocks + r * nblk * QS, nblk * QS, scales + r * nblk * SS, nblk * SS, nblk, xq, xd,
                           sc.xc.data(), n, cols, half, sc.acc.data(), out + r, ld);
  return r;
}

// Decode (one token): the row kernel with the GEMM's biased weights, so neither operand needs a vpsignb (two
// fewer ops a block); the bias (12 x the token's block sum, per call) is taken off one lane of the block's 8
// int32 partial sums (vmovd zero-extends), which the final horizontal sum adds up.
template <bool Vnni, int QS, int SS>
inline float row_dot1_q8_biased(const uint8_t* b, const uint8_t* s, int64_t nblk, const int8_t* xq, const float* xd,
                                const int32_t* xc, const float* half) {
  const __m256i table = biased_table(), ones16 = _mm256_set1_epi16(1);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  auto block = [&](int64_t g, __m256& acc) {
    const __m256i w = _mm256_shuffle_epi8(table, nibbles(b + QS * g));
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * g));
    __m256i i;
    if constexpr (Vnni)
      i = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), w, x);
    else
      i = _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), ones16);
    i = _mm256_sub_epi32(i, _mm256_zextsi128_si256(_mm_cvtsi32_si128(xc[g])));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), _mm256_set1_ps(xd[g] * half[s[SS * g]]), acc);
  };
  int64_t g = 0;
  for (; g + 2 <= nblk; g += 2) {
    block(g, acc0);
    block(g + 1, acc1);
  }
  if (g < nblk) block(g, acc0);
  return avx2::hsum(_mm256_add_ps(acc0, acc1));
}

template <bool Vnni, int QS = 16, int SS = 1>
inline void mxfp4_rows_q8_impl(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const int8_t* xq,
                               const float* xd, int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1) {
  const int64_t nblk = cols / 32;
  const float* half = e8m0_half_table();
  r0 = q8_gemm_rows<Vnni, QS, SS>(blocks, scales, cols, xq, xd, n, out, ld, r0, r1);
  if (n == 1) {
    Q8GemmScratch& sc = q8_gemm_scratch();
    sc.xc.resize(size_t(nblk));
    q8_bias_sums(xq, 1, cols, sc.xc.data());
    for (int64_t r = r0; r < r1; ++r)
      out[r] = row_dot1_q8_biased<Vnni, QS, SS>(blocks + r * nblk * QS, scales + r * nblk * SS, nblk, xq, xd,
                                               sc.xc.data(), half);
    return;
  }
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
