// Inner kernels shared by the CPU op files, one set per ISA level. The op files (mxfp4.cpp,
// matmul.cpp, attention.cpp, ...) own argument checks, threading and the scalar references; the
// ISA files (*_avx2.cpp, *_avx512.cpp, compiled with their own -m flags in cpu.cmake; *_neon.cpp on
// arm64, where Advanced SIMD is baseline) own only these loops. kernels() picks the set for
// current_isa(): the one place an ISA is chosen.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "cpu_features.h"

namespace gptoss::cpu {

// The element type the load-time quantizers read (a checkpoint's bf16, f16 or f32), and element i as f32.
enum class QuantSrc : uint8_t { Bf16, F16, F32 };
inline QuantSrc quant_src_of(DType d) {
  return d == DType::F32 ? QuantSrc::F32 : d == DType::BF16 ? QuantSrc::Bf16 : QuantSrc::F16;
}
inline float quant_src_at(const void* src, QuantSrc kind, int64_t i) {
  return kind == QuantSrc::F32    ? static_cast<const float*>(src)[i]
         : kind == QuantSrc::Bf16 ? bf16_to_f32(static_cast<const uint16_t*>(src)[i])
                                  : f16_to_f32(static_cast<const uint16_t*>(src)[i]);
}

struct Kernels {
  // out[t*ld + r] = sum_c W[r, c] * x[t, c] for rows r in [r0, r1), tokens t in [0, n).
  // W MXFP4: blocks [rows, cols/32, 16], scales [rows, cols/32]. `xp` is x with each 32-value block
  // reordered so that column c of the block sits at mxfp4_pos[c] (permute_for_mxfp4): the order in
  // which this set's decode produces a block's 32 weights, so no shuffle lines them up.
  void (*mxfp4_rows)(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const float* xp, int64_t n,
                     float* out, int64_t ld, int64_t r0, int64_t r1);
  // The same product against activations quantized per 32-block (quantize_q8: xq int8 [n, cols] in
  // the mxfp4_pos order, xd f32 [n, cols/32], x ~ xd * xq): integer dot products of the weights
  // times 2 (E2M1 x 2 is an integer in [-12, 12]) with xq, exact in int32, then xd * 2^(s-128).
  void (*mxfp4_rows_q8)(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const int8_t* xq,
                        const float* xd, int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1);
  // mxfp4_pos[c]: the position of column c (0..31) of a block in the activations mxfp4_rows reads;
  // mxfp4_q8_pos[c] the same for mxfp4_rows_q8's xq.
  const uint8_t* mxfp4_pos;
  const uint8_t* mxfp4_q8_pos;
  // Same for MXFP4 in ggml's 17-byte blocks (core/dtype.h): `xp` in the order mxfp4_ggml_order()
  // gives (this set's mxfp4_pos seen through ggml's nibble placement: byte j holds values j, j + 16).
  void (*mxfp4_ggml_rows)(const uint8_t* blocks, int64_t cols, const float* xp, int64_t n, float* out, int64_t ld,
                          int64_t r0, int64_t r1);
  // The q8 product for ggml blocks: xq / xd as for mxfp4_rows_q8, in the order mxfp4_ggml_order() gives
  // for mxfp4_q8_pos (GGUF experts with q8 activations).
  void (*mxfp4_ggml_rows_q8)(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n,
                             float* out, int64_t ld, int64_t r0, int64_t r1);
  // Same for Q8_0 [rows, cols/32 blocks of 34 bytes] and plain x.
  void (*q8_0_rows)(const uint8_t* blocks, int64_t cols, const float* x, int64_t n, float* out, int64_t ld,
                    int64_t r0, int64_t r1);
  // The q8 product for Q8_0 weights (activations: 'q8' on the dense layers): x quantized per 32-block in
  // its natural order (quantize_q8: xq int8 [n, cols], xd f32 [n, cols/32]); per block the integer dot of
  // the weight's int8 with xq (exact in int32), times f16 d * xd (llama.cpp's vec_dot_q8_0_q8_0).
  void (*q8_0_rows_q8)(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n, float* out,
                       int64_t ld, int64_t r0, int64_t r1);
  // Same for a bf16 [rows, cols] weight and plain x [n, cols].
  void (*bf16_rows)(const uint16_t* w, int64_t cols, const float* x, int64_t n, float* out, int64_t ld,
                    int64_t r0, int64_t r1);
  // Attention of up to 8 query heads sharing one kv head over `len` more keys (rows k + j*ld,
  // v + j*ld), online softmax without the sink: qt [d][8] is the heads transposed and pre-scaled
  // (unused heads zero, 32-byte aligned); updates the running max m[8], denominator l[8] and the
  // unnormalized o [8][round_up(d, 8)] (32-byte aligned; start from m = -inf, l = 0, o = 0).
  // attention.cpp splits keys into chunks and merges them with the sink.
  void (*attention_chunk)(const float* qt, int64_t d, const float* k, const float* v, int64_t ld, int64_t len,
                          float* m, float* l, float* o);
  // Load-time quantizer of dense experts (transformers' [E, C, R] -> MXFP4 [E, R, C]), one block column:
  // for output rows r in [r0, r1), the block of values src[k * ld + r] (k = 0..31, `kind`) -> 16 code
  // bytes at codes + r * stride * 16 and the scale byte scales[r * stride]. Every set gives the
  // scalar reference's bytes exactly (mxfp4.cpp quantize_block_mxfp4).
  void (*mxfp4_quantize_cols)(const void* src, QuantSrc kind, int64_t ld, int64_t r0, int64_t r1, uint8_t* codes,
                              uint8_t* scales, int64_t stride);
  // Load-time Q8_0 quantizer (denseWeights: 'q8'): `nblk` consecutive blocks of 32 values of src (`kind`)
  // -> nblk x 34 bytes at dst (f16 scale, 32 int8). Every set gives the scalar reference's bytes exactly
  // (q8.cpp quantize_block_q8_0).
  void (*q8_0_quantize)(const void* src, QuantSrc kind, int64_t nblk, uint8_t* dst);
};

// f32 and f16 weights (GGUF routers, F32/F16 files): portable loops only (the compiler vectorizes
// them); gpt-oss stores its large matrices in bf16, Q8_0 or MXFP4.
void f32_rows(const float* w, int64_t cols, const float* x, int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1);
void f16_rows(const uint16_t* w, int64_t cols, const float* x, int64_t n, float* out, int64_t ld, int64_t r0,
              int64_t r1);

const Kernels& kernels();
const Kernels& kernels_for(Isa isa);

// The order a set's mxfp4_ggml_rows reads: column c of a ggml block is nibble c / 16 of byte c % 16,
// where Hugging Face's column 2 (c % 16) + c / 16 sits, so out[c] = pos[2 (c % 16) + c / 16]
// (the identity for kEvenOddPos). out: 32 entries.
void mxfp4_ggml_order(const uint8_t* pos, uint8_t* out);
// x [n, cols] -> xp in the order `pos` gives (Kernels::mxfp4_pos; cols % 32 == 0).
void permute_for_mxfp4(const float* x, int64_t n, int64_t cols, const uint8_t* pos, float* xp);
// The order of portable, avx512 and neon: each block's 16 even columns, then its 16 odd ones (the
// low nibbles of its 16 bytes, then the high nibbles).
extern const uint8_t kEvenOddPos[32];
// Per 32-block of each row of x [n, cols]: d = max|x| / 127, q = round(x / d) (llama.cpp's
// quantize_row_q8_0, with an f32 scale); a block of zeros gets d = 0, q = 0. The order of x is kept.
void quantize_q8(const float* x, int64_t n, int64_t cols, int8_t* q, float* d);
// E8M0 byte -> 2^(s-127) as float (256 entries; transformers uses ldexp, 255 -> inf).
const float* e8m0_table();
// E2M1 code -> 2 x value (core/dtype.h e2m1_to_f32), an integer: the q8 kernels' weights (bit 3 is
// the sign; -0 becomes 0, the same sum).
extern const int8_t kE2m1Twice[16];
// E8M0 byte -> 2^(s-128): the scale of the weights times 2 that the q8 kernels multiply.
const float* e8m0_half_table();

#define GPTOSS_DECLARE_KERNELS(ns)                                                                          \
  namespace ns {                                                                                            \
  void mxfp4_rows(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const float* xp, int64_t n,   \
                  float* out, int64_t ld, int64_t r0, int64_t r1);                                          \
  void mxfp4_rows_q8(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const int8_t* xq,          \
                     const float* xd, int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1);           \
  void mxfp4_ggml_rows(const uint8_t* blocks, int64_t cols, const float* x, int64_t n, float* out,          \
                       int64_t ld, int64_t r0, int64_t r1);                                                 \
  void mxfp4_ggml_rows_q8(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n,  \
                          float* out, int64_t ld, int64_t r0, int64_t r1);                                  \
  void q8_0_rows(const uint8_t* blocks, int64_t cols, const float* x, int64_t n, float* out, int64_t ld,    \
                 int64_t r0, int64_t r1);                                                                   \
  void q8_0_rows_q8(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n,       \
                    float* out, int64_t ld, int64_t r0, int64_t r1);                                        \
  void bf16_rows(const uint16_t* w, int64_t cols, const float* x, int64_t n, float* out, int64_t ld,        \
                 int64_t r0, int64_t r1);                                                                   \
  void attention_chunk(const float* qt, int64_t d, const float* k, const float* v, int64_t ld, int64_t len,    \
                       float* m, float* l, float* o);                                                       \
  }

GPTOSS_DECLARE_KERNELS(portable)
#define GPTOSS_DECLARE_QUANTIZERS(ns)                                                                     \
  namespace ns {                                                                                            \
  void mxfp4_quantize_cols(const void* src, QuantSrc kind, int64_t ld, int64_t r0, int64_t r1, uint8_t* codes, \
                           uint8_t* scales, int64_t stride);                                                \
  void q8_0_quantize(const void* src, QuantSrc kind, int64_t nblk, uint8_t* dst);                           \
  }
GPTOSS_DECLARE_QUANTIZERS(portable)  // the scalar reference; neon uses it too
#if defined(GPTOSS_CPU_X86_KERNELS)
GPTOSS_DECLARE_KERNELS(avx2)
GPTOSS_DECLARE_KERNELS(avx512)
GPTOSS_DECLARE_QUANTIZERS(avx2)
GPTOSS_DECLARE_QUANTIZERS(avx512)
// The AVX2 / AVX-VNNI int8 GEMM of the q8 MXFP4 products (mxfp4_avx2.h q8_gemm_rows): whole groups of 8 rows
// from [r0, r1) when n is large enough, returning the first row it did not do (r0 when it did none). The
// avx512 levels run it too (their q8 order is the same kEvenOddPos): 2x their 1-row x 4-token kernel.
#define GPTOSS_DECLARE_Q8_GEMM                                                                               \
  int64_t mxfp4_q8_gemm(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const int8_t* xq,        \
                        const float* xd, int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1);         \
  int64_t mxfp4_ggml_q8_gemm(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n, \
                             float* out, int64_t ld, int64_t r0, int64_t r1);
namespace avx2 {
const uint8_t* mxfp4_pos();  // the order of the AVX2 decode (mxfp4_avx2.h)
GPTOSS_DECLARE_Q8_GEMM
}
namespace avxvnni {  // the avx2 set with vpdpbusd q8 kernels
GPTOSS_DECLARE_Q8_GEMM
void mxfp4_rows_q8(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const int8_t* xq, const float* xd,
                   int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1);
void mxfp4_ggml_rows_q8(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n, float* out,
                        int64_t ld, int64_t r0, int64_t r1);
void q8_0_rows_q8(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n, float* out,
                  int64_t ld, int64_t r0, int64_t r1);
}
namespace avx512vnni {  // the avx512 set with a zmm vpdpbusd q8 kernel
void mxfp4_rows_q8(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const int8_t* xq, const float* xd,
                   int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1);
void mxfp4_ggml_rows_q8(const uint8_t* blocks, int64_t cols, const int8_t* xq, const float* xd, int64_t n, float* out,
                        int64_t ld, int64_t r0, int64_t r1);
}
#endif
#if defined(__aarch64__)
GPTOSS_DECLARE_KERNELS(neon)  // attention_chunk is not defined: the neon set uses the portable one
#endif

}  // namespace gptoss::cpu
