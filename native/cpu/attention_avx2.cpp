// AVX2 build of the fused attention block kernel (attention_simd.h): 16 ymm registers hold 8 key
// scores, the query column and temporaries, so a block is 8 keys.
#include "attention_simd.h"
#include "kernels.h"

namespace gptoss::cpu::avx2 {

void attention_chunk(const float* qt, int64_t d, const float* k, const float* v, int64_t ld, int64_t len, float* m,
                     float* l, float* o) {
  attention_chunk_impl<8>(qt, d, k, v, ld, len, m, l, o);
}

}  // namespace gptoss::cpu::avx2
