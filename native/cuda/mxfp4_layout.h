// The decode layout of MXFP4 expert weights on the GPU (issue 12 item 1; Hopper's
// default, GPTOSS_CUDA_MOE_DECODE=mma-relaid elsewhere). The checkpoint on disk stays as published; at upload
// (Backend::prepare_experts) each expert matrix is re-laid in place, a one-time transform reported in the
// load report, and every kernel that reads MXFP4 experts on such a layer reads this layout instead: the
// decode MoE kernel (moe_decode_mma.cu, kRelaid), the prefill grouped GEMMs (gemm_tile.cu and
// gemm_wgmma.cu, w_decode_layout) and the streaming MoE of a decode batch (moe_stream.cu, kRelaid).
//
// Blocks: [rows, K/32, 16] as in the checkpoint (the kernels' 16-byte loads and ldmatrix addressing
// are unchanged), but the 32 bits of every 4-byte word (8 E2M1 codes, code q in bits 4q..4q+3: value
// 8t + q of its MX block for word t) are permuted so that the kernels' bf16 operands come out of the
// word with masks and rotations only. An operand is a bit placement: a bf16 whose sign is the code's
// sign and whose bits 8..6 are the code's 3 magnitude bits is the E2M1 value times 2^-126 exactly
// (+-0.5 lands on a bf16 subnormal). Operand i of a word (i = 0..3) holds values 2i (low half) and
// 2i + 1 (high half): the natural pairs, the order e2m1_word_to_bf16 gives for a checkpoint word, so a
// kernel's B fragments (and its k order) are the same for both layouts. (Until the 13th session the
// pairs were (i, i + 4), the kSub kernel's; the natural pairs cost nothing here, since the bit
// permutation is free at upload, and spare the GEMM tiles' prmt re-pairing and the streaming kernel a
// permuted activation.)
// Per 16-bit half the operand bits sit at {6, 7, 8, 15}; four rotations of that pattern cannot tile
// a 32-bit word (bench/RESULTS.md, issue 12: none of the 8 translates' complements is a translate),
// so the best is three operands that are one rotation and one mask, and one that takes two:
//   p0 = r & M, p1 = rotr(r, 4) & M, p2 = rotr(r, 10) & M, p3 = (rotr(r, 14) & M3a) | (rotr(r, 6) & M3b)
// 9 ALU operations a word of 8 values, against 15 for the kSub decode of a checkpoint word (shift,
// two masks and an IMAD a pair, plus the shifts) and 17 for the prmt tables.
//
// Scales: the E8M0 bytes of each expert matrix in 16-row tiles, the tile's MX blocks in order and a
// block's 16 row bytes together: byte (row, b) at ((row / 16) * (K/32) + b) * 16 + row % 16. A warp
// lane then loads its block's 16 scales with one 16-byte load (the checkpoint layout takes 16 one-byte
// loads), and the grouped GEMM's contiguous range of 128 rows stays contiguous. Requires rows % 16 == 0
// (every gpt-oss matrix: 2I = 5760, H = 2880) so the layout is a permutation of the same bytes.
//
// Plain C++ (GPTOSS_HD): the device re-layout kernel, the kernels' decode and the host test
// (native/cuda/tests/mxfp4_layout_test.cpp) run these same functions.
#pragma once
#include <cstddef>
#include <cstdint>

#include "shapes.h"  // GPTOSS_HD

namespace gptoss::cuda::mxlayout {

GPTOSS_HD constexpr uint32_t rotr(uint32_t x, int s) { return (x >> s) | (x << ((32 - s) & 31)); }  // 0 < s < 32

constexpr uint32_t kMask = 0x81C081C0u;    // bf16x2 operand bits: sign 15 / 31, magnitude 8..6 / 24..22
constexpr uint32_t kMask3a = 0x80C080C0u;  // word 3: sign and bits 7..6 of each half (rotation 14)
constexpr uint32_t kMask3b = 0x01000100u;  // word 3: bit 8 of each half (rotation 6)

// A decode-layout word -> 4 bf16x2 operands: p[i] = {value 2i, value 2i + 1} of the word's 8, each the
// E2M1 value times 2^-126 (9 operations).
GPTOSS_HD inline void decode_word(uint32_t r, uint32_t p[4]) {
  p[0] = r & kMask;
  p[1] = rotr(r, 4) & kMask;
  p[2] = rotr(r, 10) & kMask;
  p[3] = (rotr(r, 14) & kMask3a) | (rotr(r, 6) & kMask3b);
}

// The kSub kernel's operands of a checkpoint word (moe_decode_mma.cu; 15 operations): the same bit
// placement, but operand i holds values i and i + 4.
GPTOSS_HD inline void decode_checkpoint_word(uint32_t w, uint32_t p[4]) {
  const uint32_t s0 = w << 6, s1 = w << 2, s2 = w >> 2, s3 = w >> 6;  // code q (and q+4) -> bits 9..6
  p[0] = (s0 & 0x01C001C0u) + (s0 & 0x02000200u) * 64u;             // sign bit 9 -> 15
  p[1] = (s1 & 0x01C001C0u) + (s1 & 0x02000200u) * 64u;
  p[2] = (s2 & 0x01C001C0u) + (s2 & 0x02000200u) * 64u;
  p[3] = (s3 & 0x01C001C0u) + (s3 & 0x02000200u) * 64u;
}

// decode_word's rotation for operand word i's bit t (t one of kMask's bits).
GPTOSS_HD constexpr int rotation(int i, int t) { return i == 0 ? 0 : i == 1 ? 4 : i == 2 ? 10 : (t & 15) == 8 ? 6 : 14; }
// Bit k of a code (0 mantissa, 1-2 exponent, 3 sign) -> its operand bit within a 16-bit half.
GPTOSS_HD constexpr int operand_bit(int k) { return k == 3 ? 15 : 6 + k; }
// The value (code) of a word that operand i's half h holds: the natural pairs (2i, 2i + 1).
GPTOSS_HD constexpr int operand_value(int i, int h) { return 2 * i + h; }
// A code's bit placement (v x 2^-126 as bf16 bits), the reference of the operands' halves.
GPTOSS_HD constexpr uint32_t placed_code(uint32_t code) { return ((code & 7u) << 6) | ((code & 8u) << 12); }
// The multiplier that turns a placed code into the scaled weight in one bf16 multiply (the streaming MoE,
// moe_stream.cu): 2^(s-1) as bf16 bits, for E8M0 scales s <= kPlacedScaleMax (above, 2^(s-1) is no bf16).
constexpr uint32_t kPlacedScaleMax = 128;
GPTOSS_HD constexpr uint32_t placed_scale_bits(uint32_t s) { return (s + 126u) << 7; }
// The same in both halves of a bf16x2 with one multiply-add: (s + 126) x 2^7 x (1 + 2^16), no carry across the
// halves for s <= kPlacedScaleMax (254 x 2^7 < 2^15).
GPTOSS_HD constexpr uint32_t placed_scale_bf16x2(uint32_t s) { return s * 0x00800080u + 0x3F003F00u; }
// The plain multiplier of an E8M0 scale in both halves of a bf16x2: 2^(s-127) (s = 0: the subnormal 2^-127;
// s = 255: inf), for codes decoded to their plain values (the prmt tables, or placed codes times 2^126).
GPTOSS_HD constexpr uint32_t e8m0_bf16x2(uint32_t s) { return (s ? s << 7 : 0x0040u) * 0x00010001u; }

// Checkpoint word -> decode-layout word: code operand_value(i, h)'s bit k goes where decode_word's rotation for
// operand i, half h, bit operand_bit(k) reads it. A bijection of the 32 bits (the test checks it).
GPTOSS_HD inline uint32_t to_decode_word(uint32_t w) {
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i)
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k) {
        const int t = 16 * h + operand_bit(k), src = (t + rotation(i, t)) & 31;
        r |= ((w >> (4 * operand_value(i, h) + k)) & 1u) << src;
      }
  return r;
}
// The inverse: decode-layout word -> checkpoint word.
GPTOSS_HD inline uint32_t from_decode_word(uint32_t r) {
  uint32_t w = 0;
  for (int i = 0; i < 4; ++i)
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k) {
        const int t = 16 * h + operand_bit(k), src = (t + rotation(i, t)) & 31;
        w |= ((r >> src) & 1u) << (4 * operand_value(i, h) + k);
      }
  return w;
}

// Byte offset of the scale of (row, MX block b) in an expert matrix of nch blocks a row.
GPTOSS_HD constexpr int64_t scale_index(int64_t row, int64_t b, int64_t nch) {
  return ((row >> 4) * nch + b) * 16 + (row & 15);
}

// Whether a matrix of `rows` rows can take the layout (a permutation of its bytes).
constexpr bool layout_fits(int64_t rows) { return rows > 0 && rows % 16 == 0; }

// Host form of the re-layout of `mats` matrices [rows, nch] (blocks 16 bytes, scales 1 byte each),
// out of place; and its inverse. The device kernel (mxfp4_layout.cu) runs the same word and index
// functions in place.
inline void to_decode_layout(const uint8_t* blocks, const uint8_t* scales, int64_t mats, int64_t rows, int64_t nch,
                             uint8_t* out_blocks, uint8_t* out_scales) {
  const int64_t words = mats * rows * nch * 4;
  for (int64_t i = 0; i < words; ++i) {
    uint32_t w = uint32_t(blocks[4 * i]) | uint32_t(blocks[4 * i + 1]) << 8 | uint32_t(blocks[4 * i + 2]) << 16 |
                 uint32_t(blocks[4 * i + 3]) << 24;
    const uint32_t r = to_decode_word(w);
    for (int b = 0; b < 4; ++b) out_blocks[4 * i + b] = uint8_t(r >> (8 * b));
  }
  for (int64_t m = 0; m < mats; ++m)
    for (int64_t row = 0; row < rows; ++row)
      for (int64_t b = 0; b < nch; ++b)
        out_scales[m * rows * nch + scale_index(row, b, nch)] = scales[(m * rows + row) * nch + b];
}
inline void from_decode_layout(const uint8_t* blocks, const uint8_t* scales, int64_t mats, int64_t rows, int64_t nch,
                               uint8_t* out_blocks, uint8_t* out_scales) {
  const int64_t words = mats * rows * nch * 4;
  for (int64_t i = 0; i < words; ++i) {
    uint32_t r = uint32_t(blocks[4 * i]) | uint32_t(blocks[4 * i + 1]) << 8 | uint32_t(blocks[4 * i + 2]) << 16 |
                 uint32_t(blocks[4 * i + 3]) << 24;
    const uint32_t w = from_decode_word(r);
    for (int b = 0; b < 4; ++b) out_blocks[4 * i + b] = uint8_t(w >> (8 * b));
  }
  for (int64_t m = 0; m < mats; ++m)
    for (int64_t row = 0; row < rows; ++row)
      for (int64_t b = 0; b < nch; ++b)
        out_scales[(m * rows + row) * nch + b] = scales[m * rows * nch + scale_index(row, b, nch)];
}

}  // namespace gptoss::cuda::mxlayout
