// AVX-VNNI MXFP4 q8 row kernel (compiled with -mavx2 -mfma -mavxvnni: 256-bit vpdpbusd, as on Alder
// Lake and Zen 5 without AVX-512, and on Sapphire Rapids and Zen 4 beside it). The body is the AVX2 one
// (mxfp4_avx2.h) with vpmaddubsw + vpmaddwd replaced by one vpdpbusd; every other kernel of the
// avxvnni set is the avx2 one.
#include "mxfp4_avx2.h"

namespace gptoss::cpu::avxvnni {

void mxfp4_rows_q8(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const int8_t* xq, const float* xd,
                   int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1) {
  mxfp4_rows_q8_impl<true>(blocks, scales, cols, xq, xd, n, out, ld, r0, r1);
}

void mxfp4_ggml_rows_q8(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n, float* out,
                        int64_t ld, int64_t r0, int64_t r1) {
  mxfp4_ggml_rows_q8_impl<true>(blocks, cols, xq, xd, n, out, ld, r0, r1);
}

int64_t mxfp4_q8_gemm(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const int8_t* xq, const float* xd,
                      int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1) {
  return q8_gemm_rows<true, 16, 1>(blocks, scales, cols, xq, xd, n, out, ld, r0, r1);
}
int64_t mxfp4_ggml_q8_gemm(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n, float* out,
                           int64_t ld, int64_t r0, int64_t r1) {
  return q8_gemm_rows<true, kMxfp4GgmlBlockBytes, kMxfp4GgmlBlockBytes>(blocks + 1, blocks, cols, xq, xd, n, out, ld,
                                                                        r0, r1);
}

}  // namespace gptoss::cpu::avxvnni
