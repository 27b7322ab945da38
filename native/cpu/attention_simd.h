// The fused decode/prefill attention block kernel, written once with 8-wide (ymm) intrinsics and
// compiled twice: by attention_avx2.cpp (-mavx2 -mfma, 16 vector registers: 8 keys per block) and
// by attention_avx512.cpp (AVX-512 flags, 32 registers and EVEX broadcast operands: 16 keys per
// block). Include it inside the ISA's namespace; it defines attention_chunk_impl<KeysPerBlock>.
//
// Layout of the work: one kv head, up to 8 of the query heads that share it (GQA group), keys
// [0, len) of a contiguous range. Scores are computed with the 8 heads in the lanes of one ymm
// per key: s[j] += qt[c] * broadcast(k[j][c]), so q.k needs no horizontal reduction and every K
// element loaded is used by 8 heads. Softmax is online (running max m, denominator l per head);
// V is accumulated with the head dimension in the lanes: o[g] += p[j][g] * v[j]. Zen 4 issues
// two 256-bit FMAs a cycle and one 512-bit one, so ymm costs nothing against zmm there.
// Per key and kv head: 8*d FMAs for q.k and 8*d for p.v (2 x 64 ymm FMAs at d = 64, 512 bytes of
// K and V): a ceiling of ~48 GB/s on 2 Zen 4 cores at 3 GHz, above DRAM bandwidth.
#pragma once
#include <immintrin.h>

#include <cmath>
#include <cstdint>

namespace attention_detail {

// exp(x) for x <= 0 (softmax numerators): x = n ln2 + r, |r| <= ln2/2, Cephes degree-6
// polynomial (~2 ulp), 2^n through the exponent field. Inputs below -87.3 clamp (result ~1e-38,
// never used unscaled: masked keys are zeroed explicitly).
inline __m256 exp_nonpositive(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

inline __m256i tail_mask(int64_t left) {  // lanes < left set (left in [1, 8])
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(left)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

}  // namespace attention_detail

// qt [d][8]: the query heads of this tile transposed and pre-multiplied by the softmax scale
// (unused heads zero). k, v: row j at k + j * ld. Continues the state m[8], l[8] and
// o [8][round_up(d, 8)] (unnormalized: o / l is the attention output so far, m its running max).
template <int KB>
void attention_chunk_impl(const float* qt, int64_t d, const float* k, const float* v, int64_t ld, int64_t len,
                          float* m_out, float* l_out, float* o) {
  using namespace attention_detail;
  const int64_t dp = (d + 7) / 8 * 8;
  __m256 m = _mm256_loadu_ps(m_out), l = _mm256_loadu_ps(l_out);
  alignas(32) float p[KB][8];
  alignas(32) float corr_s[8];
  for (int64_t j0 = 0; j0 < len; j0 += KB) {
    const int64_t nk = len - j0 < KB ? len - j0 : KB;
    // Rows past the end repeat the last valid row (valid memory); their scores are masked below.
    // Rows past the end repeat the last valid row (valid memory); their scores are masked below.
    const float* kr[KB];
#pragma GCC unroll 16
    for (int j = 0; j < KB; ++j) kr[j] = k + (j0 + (j < nk ? j : nk - 1)) * ld;
    __m256 s[KB];
#pragma GCC unroll 16
    for (int j = 0; j < KB; ++j) s[j] = _mm256_setzero_ps();
    for (int64_t c = 0; c < d; ++c) {
      const __m256 qc = _mm256_load_ps(qt + 8 * c);
#pragma GCC unroll 16
      for (int j = 0; j < KB; ++j) s[j] = _mm256_fmadd_ps(qc, _mm256_broadcast_ss(kr[j] + c), s[j]);
    }
    // Every loop over j runs to the constant KB so s[] stays in registers; keys j >= nk repeat key
    // nk - 1 (no effect on the max) and get p = 0.
    __m256 mx = s[0];
#pragma GCC unroll 16
    for (int j = 1; j < KB; ++j) mx = _mm256_max_ps(mx, s[j]);
    const __m256 m_new = _mm256_max_ps(m, mx);
    const __m256 corr = exp_nonpositive(_mm256_sub_ps(m, m_new));  // m = -inf at the start: 0 (clamped) times l = o = 0
    m = m_new;
    l = _mm256_mul_ps(l, corr);
#pragma GCC unroll 16
    for (int j = 0; j < KB; ++j) {
      const __m256 keep = _mm256_castsi256_ps(_mm256_set1_epi32(j < nk ? -1 : 0));
      const __m256 pj = _mm256_and_ps(exp_nonpositive(_mm256_sub_ps(s[j], m_new)), keep);
      l = _mm256_add_ps(l, pj);
      _mm256_store_ps(p[j], pj);
    }
    _mm256_store_ps(corr_s, corr);
    // o[g] = o[g] * corr[g] + sum_j p[j][g] v[j], 8 columns at a time, the 8 heads in registers.
    const float* vb = v + j0 * ld;
    for (int64_t c = 0; c < dp; c += 8) {
      __m256 acc[8];
#pragma GCC unroll 8
      for (int g = 0; g < 8; ++g) acc[g] = _mm256_mul_ps(_mm256_load_ps(o + g * dp + c), _mm256_broadcast_ss(corr_s + g));
      if (c + 8 <= d) {
        for (int64_t j = 0; j < nk; ++j) {
          const __m256 vj = _mm256_loadu_ps(vb + j * ld + c);
#pragma GCC unroll 8
          for (int g = 0; g < 8; ++g) acc[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(&p[j][g]), vj, acc[g]);
        }
      } else {
        const __m256i mask = tail_mask(d - c);
        for (int64_t j = 0; j < nk; ++j) {
          const __m256 vj = _mm256_maskload_ps(vb + j * ld + c, mask);
#pragma GCC unroll 8
          for (int g = 0; g < 8; ++g) acc[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(&p[j][g]), vj, acc[g]);
        }
      }
      for (int g = 0; g < 8; ++g) _mm256_store_ps(o + g * dp + c, acc[g]);
    }
  }
  _mm256_storeu_ps(m_out, m);
  _mm256_storeu_ps(l_out, l);
}
