// AVX-512 build of the load-time quantizers (quantize_simd.h): MXFP4 16 blocks at a time, one per
// zmm lane; Q8_0 a block in 2 zmm. Compares give mask registers and selects are masked blends.
// -ffp-contract=off (cpu.cmake).
#include "kernels.h"
#include "quantize_simd.h"

namespace gptoss::cpu::avx512 {

namespace {
struct Zmm {
  static constexpr int N = 16;
  using F = __m512;
  using I = __m512i;
  using Mask = __mmask16;
  static F load_f32(const float* p) { return _mm512_loadu_ps(p); }
  static F load_bf16(const uint16_t* p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
  }
  static F load_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static void store_f32(float* p, F v) { _mm512_store_ps(p, v); }
  static void store_i(int32_t* p, I v) { _mm512_store_si512(p, v); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static I set1i(int32_t v) { return _mm512_set1_epi32(v); }
  static F as_f(I v) { return _mm512_castsi512_ps(v); }
  static I as_i(F v) { return _mm512_castps_si512(v); }
  static I add(I a, I b) { return _mm512_add_epi32(a, b); }
  static I sub(I a, I b) { return _mm512_sub_epi32(a, b); }
  static I max_i(I a, I b) { return _mm512_max_epi32(a, b); }
  static I and_i(I a, I b) { return _mm512_and_si512(a, b); }
  static I or_i(I a, I b) { return _mm512_or_si512(a, b); }
  static I slli(I a, unsigned n) { return _mm512_slli_epi32(a, n); }
  static I srli(I a, unsigned n) { return _mm512_srli_epi32(a, n); }
  static F add_f(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub_f(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F min(F a, F b) { return _mm512_min_ps(a, b); }  // (a < b) ? a : b
  static F max(F a, F b) { return _mm512_max_ps(a, b); }  // (a > b) ? a : b
  static F abs(F a) { return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff))); }
  static Mask gt(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static Mask gt_i(I a, I b) { return _mm512_cmpgt_epi32_mask(a, b); }
  static Mask and_m(Mask a, Mask b) { return Mask(a & b); }
  static I select_i(Mask m, I t, I f) { return _mm512_mask_blend_epi32(m, f, t); }
  static F select_f(Mask m, F t, F f) { return _mm512_mask_blend_ps(m, f, t); }
  static Mask ge(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  static F trunc(F a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  static F or_sign(F a, F x) {
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a), _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(int32_t(0x80000000u)))));
  }
  static float hmax(F a) { return _mm512_reduce_max_ps(a); }  // NaN-free input
  static void store_i8(int8_t* p, F integral) {  // 16 integers in [-127, 127] -> 16 bytes
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(integral)));
  }
};
}  // namespace

void mxfp4_quantize_cols(const void* src, QuantSrc kind, int64_t ld, int64_t r0, int64_t r1, uint8_t* codes,
                         uint8_t* scales, int64_t stride) {
  quantize_detail::quantize_cols<Zmm>(src, kind, ld, r0, r1, codes, scales, stride);
}

void q8_0_quantize(const void* src, QuantSrc kind, int64_t nblk, uint8_t* dst) {
  quantize_detail::quantize_q8_0_blocks<Zmm>(src, kind, nblk, dst);
}

}  // namespace gptoss::cpu::avx512
