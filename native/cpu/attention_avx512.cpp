// AVX-512 build of the fused attention block kernel (attention_simd.h): with 32 vector registers a
// block holds 16 key scores, and the compiler folds each K broadcast into the FMA (EVEX {1to8}).
#include "attention_simd.h"
#include "kernels.h"

namespace gptoss::cpu::avx512 {

void attention_chunk(const float* qt, int64_t d, const float* k, const float* v, int64_t ld, int64_t len, float* m,
                     float* l, float* o) {
  attention_chunk_impl<16>(qt, d, k, v, ld, len, m, l, o);
}

}  // namespace gptoss::cpu::avx512
