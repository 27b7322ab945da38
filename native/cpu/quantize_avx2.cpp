// AVX2 build of the load-time quantizers (quantize_simd.h): MXFP4 8 blocks at a time, one per ymm
// lane; Q8_0 a block in 4 ymm. Masks are all-ones lanes and selects are blends. -ffp-contract=off
// (cpu.cmake).
#include "kernels.h"
#include "quantize_simd.h"

namespace gptoss::cpu::avx2 {

namespace {
struct Ymm {
  static constexpr int N = 8;
  using F = __m256;
  using I = __m256i;
  using Mask = __m256i;
  static F load_f32(const float* p) { return _mm256_loadu_ps(p); }
  static F load_bf16(const uint16_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
  }
  static F load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static void store_f32(float* p, F v) { _mm256_store_ps(p, v); }
  static void store_i(int32_t* p, I v) { _mm256_store_si256(reinterpret_cast<__m256i*>(p), v); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static I set1i(int32_t v) { return _mm256_set1_epi32(v); }
  static F as_f(I v) { return _mm256_castsi256_ps(v); }
  static I as_i(F v) { return _mm256_castps_si256(v); }
  static I add(I a, I b) { return _mm256_add_epi32(a, b); }
  static I sub(I a, I b) { return _mm256_sub_epi32(a, b); }
  static I max_i(I a, I b) { return _mm256_max_epi32(a, b); }
  static I and_i(I a, I b) { return _mm256_and_si256(a, b); }
  static I or_i(I a, I b) { return _mm256_or_si256(a, b); }
  static I slli(I a, int n) { return _mm256_slli_epi32(a, n); }
  static I srli(I a, int n) { return _mm256_srli_epi32(a, n); }
  static F add_f(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub_f(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F min(F a, F b) { return _mm256_min_ps(a, b); }  // (a < b) ? a : b
  static F max(F a, F b) { return _mm256_max_ps(a, b); }  // (a > b) ? a : b
  static F abs(F a) { return _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))); }
  static Mask gt(F a, F b) { return _mm256_castps_si256(_mm256_cmp_ps(a, b, _CMP_GT_OQ)); }
  static Mask gt_i(I a, I b) { return _mm256_cmpgt_epi32(a, b); }
  static Mask and_m(Mask a, Mask b) { return _mm256_and_si256(a, b); }
  static I select_i(Mask m, I t, I f) { return _mm256_blendv_epi8(f, t, m); }
  static F select_f(Mask m, F t, F f) { return _mm256_blendv_ps(f, t, _mm256_castsi256_ps(m)); }
  static Mask ge(F a, F b) { return _mm256_castps_si256(_mm256_cmp_ps(a, b, _CMP_GE_OQ)); }
  static F trunc(F a) { return _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  static F or_sign(F a, F x) { return _mm256_or_ps(a, _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(int32_t(0x80000000u))))); }
  static float hmax(F a) {  // NaN-free input
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
  }
  static void store_i8(int8_t* p, F integral) {  // 8 integers in [-127, 127] -> 8 bytes
    const __m256i i = _mm256_cvttps_epi32(integral);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packs_epi16(w, w));
  }
};
}  // namespace

void mxfp4_quantize_cols(const void* src, QuantSrc kind, int64_t ld, int64_t r0, int64_t r1, uint8_t* codes,
                         uint8_t* scales, int64_t stride) {
  quantize_detail::quantize_cols<Ymm>(src, kind, ld, r0, r1, codes, scales, stride);
}

void q8_0_quantize(const void* src, QuantSrc kind, int64_t nblk, uint8_t* dst) {
  quantize_detail::quantize_q8_0_blocks<Ymm>(src, kind, nblk, dst);
}

}  // namespace gptoss::cpu::avx2
