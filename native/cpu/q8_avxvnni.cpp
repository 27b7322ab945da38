// AVX-VNNI Q8_0 x q8 row kernel (compiled with -mavx2 -mfma -mf16c -mavxvnni): q8_avx2.h's body with
// vpmaddubsw + vpmaddwd replaced by one vpdpbusd.
#include "q8_avx2.h"

namespace gptoss::cpu::avxvnni {

void q8_0_rows_q8(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n, float* out,
                  int64_t ld, int64_t r0, int64_t r1) {
  q8_0_rows_q8_impl<true>(blocks, cols, xq, xd, n, out, ld, r0, r1);
}

}  // namespace gptoss::cpu::avxvnni
