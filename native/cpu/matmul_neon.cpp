// NEON bf16 row kernel for arm64: bf16 is the top half of an f32, so widening is a shift into the
// high half (ushll #16), exact. 16 weights a step, up to 4 tokens share each load (as matmul_avx2.cpp).
#if defined(__aarch64__)
#include <arm_neon.h>

#include "core/dtype.h"
#include "kernels.h"
#include "row_blocks.h"

namespace gptoss::cpu::neon {

namespace {
template <int NT>
inline void row_dotn(const uint16_t* w, const float* x, int64_t cols, float* res) {
  float32x4_t acc[NT][2];
  for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = vdupq_n_f32(0.f);
  int64_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    const uint16x8_t h0 = vld1q_u16(w + c), h1 = vld1q_u16(w + c + 8);
    const float32x4_t wv[4] = {vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h0), 16)),
                               vreinterpretq_f32_u32(vshll_high_n_u16(h0, 16)),
                               vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h1), 16)),
                               vreinterpretq_f32_u32(vshll_high_n_u16(h1, 16))};
    for (int j = 0; j < NT; ++j) {
      const float* xc = x + j * cols + c;
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) acc[j][q & 1] = vfmaq_f32(acc[j][q & 1], wv[q], vld1q_f32(xc + 4 * q));
    }
  }
  for (int j = 0; j < NT; ++j) {
    float s = vaddvq_f32(vaddq_f32(acc[j][0], acc[j][1]));
    for (int64_t k = c; k < cols; ++k) s += bf16_to_f32(w[k]) * x[j * cols + k];
    res[j] = s;
  }
}
}  // namespace

void bf16_rows(const uint16_t* w, int64_t cols, const float* x, int64_t n, float* out, int64_t ld, int64_t r0,
               int64_t r1) {
  for_rows_by_token_blocks(r0, r1, n, cols, x, out, ld, [&](auto nt, int64_t r, const float* xt, float* res) {
    row_dotn<decltype(nt)::value>(w + r * cols, xt, cols, res);
  });
}

}  // namespace gptoss::cpu::neon
#endif  // __aarch64__
