// AVX2 build of the load-time MXFP4 quantizer (mxfp4_quantize_simd.h): 8 blocks at a time, one per
// ymm lane; masks are all-ones lanes and selects are blends. -ffp-contract=off (cpu.cmake).
#include "kernels.h"
#include "mxfp4_quantize_simd.h"

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
};
}  // namespace

void mxfp4_quantize_cols(const void* src, QuantSrc kind, int64_t ld, int64_t r0, int64_t r1, uint8_t* codes,
                         uint8_t* scales, int64_t stride) {
  mxfp4_quantize_detail::quantize_cols<Ymm>(src, kind, ld, r0, r1, codes, scales, stride);
}

}  // namespace gptoss::cpu::avx2
