// Inner kernels shared by the CPU op files, one set per ISA level. The op files (mxfp4.cpp,
// matmul.cpp, attention.cpp, ...) own argument checks, threading and the scalar references; the
// ISA files (*_avx2.cpp, *_avx512.cpp, compiled with their own -m flags in cpu.cmake; *_neon.cpp on
// arm64, where Advanced SIMD is baseline) own only these loops. kernels() picks the set for
// current_isa(): the one place an ISA is chosen.
#pragma once
#include <cstdint>

#include "cpu_features.h"

namespace gptoss::cpu {

struct Kernels {
  // out[t*ld + r] = sum_c W[r, c] * x[t, c] for rows r in [r0, r1), tokens t in [0, n).
  // W MXFP4: blocks [rows, cols/32, 16], scales [rows, cols/32]. `xp` is x with each 32-value block
  // split as 16 even-index values then 16 odd-index values (permute_for_mxfp4), so the low nibbles
  // of a block's 16 bytes meet the first half and the high nibbles the second, with no shuffle.
  void (*mxfp4_rows)(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const float* xp, int64_t n,
                     float* out, int64_t ld, int64_t r0, int64_t r1);
  // Same for MXFP4 in ggml's 17-byte blocks (core/dtype.h) and plain x: a block's low nibbles are
  // values 0-15 and its high nibbles values 16-31, the order permute_for_mxfp4 makes for HF blocks.
  void (*mxfp4_ggml_rows)(const uint8_t* blocks, int64_t cols, const float* x, int64_t n, float* out, int64_t ld,
                          int64_t r0, int64_t r1);
  // Same for Q8_0 [rows, cols/32 blocks of 34 bytes] and plain x.
  void (*q8_0_rows)(const uint8_t* blocks, int64_t cols, const float* x, int64_t n, float* out, int64_t ld,
                    int64_t r0, int64_t r1);
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
};

// f32 and f16 weights (GGUF routers, F32/F16 files): portable loops only (the compiler vectorizes
// them); gpt-oss stores its large matrices in bf16, Q8_0 or MXFP4.
void f32_rows(const float* w, int64_t cols, const float* x, int64_t n, float* out, int64_t ld, int64_t r0, int64_t r1);
void f16_rows(const uint16_t* w, int64_t cols, const float* x, int64_t n, float* out, int64_t ld, int64_t r0,
              int64_t r1);

const Kernels& kernels();
const Kernels& kernels_for(Isa isa);

// x [n, cols] -> xp as described above (cols % 32 == 0).
void permute_for_mxfp4(const float* x, int64_t n, int64_t cols, float* xp);
// E8M0 byte -> 2^(s-127) as float (256 entries; transformers uses ldexp, 255 -> inf).
const float* e8m0_table();

#define GPTOSS_DECLARE_KERNELS(ns)                                                                          \
  namespace ns {                                                                                            \
  void mxfp4_rows(const uint8_t* blocks, const uint8_t* scales, int64_t cols, const float* xp, int64_t n,   \
                  float* out, int64_t ld, int64_t r0, int64_t r1);                                          \
  void mxfp4_ggml_rows(const uint8_t* blocks, int64_t cols, const float* x, int64_t n, float* out,          \
                       int64_t ld, int64_t r0, int64_t r1);                                                 \
  void q8_0_rows(const uint8_t* blocks, int64_t cols, const float* x, int64_t n, float* out, int64_t ld,    \
                 int64_t r0, int64_t r1);                                                                   \
  void bf16_rows(const uint16_t* w, int64_t cols, const float* x, int64_t n, float* out, int64_t ld,        \
                 int64_t r0, int64_t r1);                                                                   \
  void attention_chunk(const float* qt, int64_t d, const float* k, const float* v, int64_t ld, int64_t len,    \
                       float* m, float* l, float* o);                                                       \
  }

GPTOSS_DECLARE_KERNELS(portable)
#if defined(GPTOSS_CPU_X86_KERNELS)
GPTOSS_DECLARE_KERNELS(avx2)
GPTOSS_DECLARE_KERNELS(avx512)
#endif
#if defined(__aarch64__)
GPTOSS_DECLARE_KERNELS(neon)  // attention_chunk is not defined: the neon set uses the portable one
#endif

}  // namespace gptoss::cpu
