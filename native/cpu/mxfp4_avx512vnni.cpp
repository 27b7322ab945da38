// AVX-512 VNNI MXFP4 q8 row kernel (compiled with the avx512 flags plus -mavx512vnni: Ice Lake,
// Sapphire Rapids, Zen 4). mxfp4_avx512_q8.h with vpdpbusd; every other kernel of the avx512vnni set
// is the avx512 one.
#include "mxfp4_avx512_q8.h"

namespace gptoss::cpu::avx512vnni {

// q8: prefill-sized products go to the 256-bit int8 GEMM first (kernels.h: the vpdpbusd one where the CPU has
// AVX-VNNI, as Zen 4 and Sapphire Rapids do; else the vpmaddubsw one), the rest to the zmm row kernel.
void mxfp4_rows_q8(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const int8_t* xq, const float* xd,
                   int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1) {
  r0 = isa_supported(Isa::AvxVnni) ? avxvnni::mxfp4_q8_gemm(blocks, scales, cols, xq, xd, n, out, ld, r0, r1)
                                   : avx2::mxfp4_q8_gemm(blocks, scales, cols, xq, xd, n, out, ld, r0, r1);
  mxfp4_rows_q8_512<true>(blocks, scales, cols, xq, xd, n, out, ld, r0, r1);
}

void mxfp4_ggml_rows_q8(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n, float* out,
                        int64_t ld, int64_t r0, int64_t r1) {
  r0 = isa_supported(Isa::AvxVnni) ? avxvnni::mxfp4_ggml_q8_gemm(blocks, cols, xq, xd, n, out, ld, r0, r1)
                                   : avx2::mxfp4_ggml_q8_gemm(blocks, cols, xq, xd, n, out, ld, r0, r1);
  mxfp4_rows_q8_512<true, kMxfp4GgmlBlockBytes, kMxfp4GgmlBlockBytes>(blocks + 1, blocks, cols, xq, xd, n, out, ld, r0, r1);
}

}  // namespace gptoss::cpu::avx512vnni
