// Where each element of a CDNA matrix-core (MFMA) operand lives: lane and item (register element)
// of a 64-lane wavefront. Plain constexpr integer functions, compiled for the host too, so
// native/hip/tests/mfma_layout_test.cpp checks them (and a host simulation of the kernels' fragment
// loads and stores built on them) without an AMD GPU.
//
// Source of the layouts: AMD's matrix instruction calculator / CDNA3 ISA guide ("Matrix fused
// multiply-add" chapter), for the bf16 instructions with 4 bf16 an A/B lane (the "_1k" forms of
// gfx90a, plain "_bf16" in the gfx940+ mnemonics, same layout):
//   v_mfma_f32_32x32x8bf16_1k  D[32x32] += A[32x8] B[8x32]:
//     A[i][k]: lane i + 32 (k / 4), item k % 4        B[k][j]: lane j + 32 (k / 4), item k % 4
//     D[i][j]: lane j + 32 ((i / 4) % 2), item (i % 4) + 4 (i / 8)     (16 f32 a lane)
//   v_mfma_f32_16x16x16bf16_1k D[16x16] += A[16x16] B[16x16]:
//     A[i][k]: lane i + 16 (k / 4), item k % 4        B[k][j]: lane j + 16 (k / 4), item k % 4
//     D[i][j]: lane j + 16 (i / 4), item i % 4                          (4 f32 a lane)
// The functions below are the inverse maps the kernels use: (lane, item) -> row / column / k.
#pragma once
#include <cstdint>

#if defined(__HIPCC__) || defined(__CUDACC__)
#define GPTOSS_HD __host__ __device__
#else
#define GPTOSS_HD
#endif

namespace gptoss::mfma {

// ---- v_mfma_f32_32x32x8bf16_1k ----
struct M32x32x8 {
  static constexpr int kM = 32, kN = 32, kK = 8, kItemsAB = 4, kItemsD = 16;
  // A operand: lane holds row a_row(lane), k = a_k(lane, item) for item 0..3 (4 consecutive k: 8 bytes).
  static GPTOSS_HD constexpr int a_row(int lane) { return lane % 32; }
  static GPTOSS_HD constexpr int a_k(int lane, int item) { return 4 * (lane / 32) + item; }
  // B operand: lane holds column b_col(lane), k = b_k(lane, item).
  static GPTOSS_HD constexpr int b_col(int lane) { return lane % 32; }
  static GPTOSS_HD constexpr int b_k(int lane, int item) { return 4 * (lane / 32) + item; }
  // Accumulator: item 0..15 of lane is D[d_row(lane, item)][d_col(lane)].
  static GPTOSS_HD constexpr int d_row(int lane, int item) { return 8 * (item / 4) + 4 * (lane / 32) + item % 4; }
  static GPTOSS_HD constexpr int d_col(int lane) { return lane % 32; }
};

// ---- v_mfma_f32_16x16x16bf16_1k ----
struct M16x16x16 {
  static constexpr int kM = 16, kN = 16, kK = 16, kItemsAB = 4, kItemsD = 4;
  static GPTOSS_HD constexpr int a_row(int lane) { return lane % 16; }
  static GPTOSS_HD constexpr int a_k(int lane, int item) { return 4 * (lane / 16) + item; }
  static GPTOSS_HD constexpr int b_col(int lane) { return lane % 16; }
  static GPTOSS_HD constexpr int b_k(int lane, int item) { return 4 * (lane / 16) + item; }
  static GPTOSS_HD constexpr int d_row(int lane, int item) { return 4 * (lane / 16) + item; }
  static GPTOSS_HD constexpr int d_col(int lane) { return lane % 16; }
};

// A 32x32x8 accumulator used directly as the B operand of the next MFMA (flash attention: S^T = K Q^T
// gives lane = query; its items 4t .. 4t + 3 are keys 8t + 4 (lane / 32) + 0..3, exactly the B
// operand of k-step t of O^T += V^T P^T). Returns the D item that holds B item `item` of k-step `t`.
GPTOSS_HD constexpr int d_item_as_b(int t, int item) { return 4 * t + item; }

// LDS tiles of the GEMM tile kernel (native/hip/gemm_tile_mfma.hip): rows of kTileK bf16 with
// kTileRowPad bf16 of padding (16-byte aligned rows for 128-bit stores; the pad spreads the 32 rows
// an A/B fragment read touches over the banks). Offsets in bf16 elements.
constexpr int kTileK = 32, kTileRowPad = 8, kTileRow = kTileK + kTileRowPad;
GPTOSS_HD constexpr int tile_offset(int row, int k) { return row * kTileRow + k; }

// The GEMM tile's fragment addressing (native/hip/gemm_tile_mfma.hip): wave w of the block owns
// columns 32 w .. 32 w + 31 of the 128, M tile mt rows 32 mt .. 32 mt + 31; kk is the k-step's first
// k within the 32 of the LDS tile. A lane's 4 A (B) values are 4 consecutive bf16 from a_offset
// (b_offset): one 8-byte LDS read, which needs a_k(lane, item) = a_k(lane, 0) + item (checked by the
// host test).
struct GemmTileMap {
  static GPTOSS_HD constexpr int a_offset(int mt, int lane, int kk) {
    return tile_offset(mt * 32 + M32x32x8::a_row(lane), kk + M32x32x8::a_k(lane, 0));
  }
  static GPTOSS_HD constexpr int b_offset(int wave, int lane, int kk) {
    return tile_offset(wave * 32 + M32x32x8::b_col(lane), kk + M32x32x8::b_k(lane, 0));
  }
  static GPTOSS_HD constexpr int d_row(int mt, int lane, int item) { return mt * 32 + M32x32x8::d_row(lane, item); }
  static GPTOSS_HD constexpr int d_col(int wave, int lane) { return wave * 32 + M32x32x8::d_col(lane); }
};

// ---- the decode MoE (native/hip/moe_decode_mfma.hip) ----
// v_mfma_f32_16x16x16bf16_1k with the expert's weights as B (column j = row j of a 16-row tile) and
// the activation as A (row i: its bf16 hi half for even i, lo for odd i; only rows 0 and 1 are read
// back, the others repeat them). An MX block (32 values, 16 bytes: byte b holds value 2b in its low
// nibble, 2b + 1 in its high one) is two k-steps: lane (j, q) = (lane % 16, lane / 16) holds word q
// of row j's block (bytes 4q .. 4q + 3: values 8q .. 8q + 7); k-step 0 takes the word's low nibbles
// (values 8q + 0, 2, 4, 6 as B items 0..3), k-step 1 its high nibbles (8q + 1, 3, 5, 7). One 4-byte
// load a lane a block, and no lane needs another's data. Row j's dot with the block is then
// D[0][j] + D[1][j] (hi + lo): items 0 and 1 of lane j < 16, times the block's E8M0 scale.
struct MoeDecodeMap {
  using M = M16x16x16;
  static constexpr int kRows = M::kN, kSteps = 2;
  // B: the tile row and the block's 32-bit word lane holds.
  static GPTOSS_HD constexpr int w_row(int lane) { return M::b_col(lane); }
  static GPTOSS_HD constexpr int w_word(int lane) { return M::b_k(lane, 0) / 4; }
  // The block value MFMA k index k stands for in k-step s (A and B alike).
  static GPTOSS_HD constexpr int value(int s, int k) { return 8 * (k / 4) + 2 * (k % 4) + s; }
  // A: which half of the activation (0: bf16 hi, 1: lo) lane carries.
  static GPTOSS_HD constexpr int x_half(int lane) { return M::a_row(lane) & 1; }
  // The activation fragments in LDS: per block, k-step, half and word q, 4 bf16 (8 bytes): values
  // value(s, 4q + item), item 0..3. Lane's A operand of block b, step s is entry
  // frag_index(b, s, x_half(lane), a_k(lane, 0) / 4).
  static GPTOSS_HD constexpr int frag_index(int b, int s, int half, int q) { return ((b * kSteps + s) * 2 + half) * 4 + q; }
  static constexpr int kFragBytesPerBlock = kSteps * 2 * 4 * 8;  // 128
};

// v_perm_b32 (AMD's byte permute): byte n of the result is byte sel_n of the 8 bytes {hi : lo}:
// 0-3 pick lo's bytes, 4-7 hi's, 12 gives 0x00, 13 and up 0xff (8-11, sign replication, unused here).
// The host form is what the test runs; it agrees with LLVM's constant folding of llvm.amdgcn.perm
// (clang-19 folds perm(0x07060504, 0x03020100, 0x07050301) to 0x07050301 and
// perm(0xA0B0C0D0, 0x11223344, 0x0c0d0400) to 0x00ffd044).
GPTOSS_HD inline uint32_t perm_b32(uint32_t hi, uint32_t lo, uint32_t sel) {
#if defined(__HIP_DEVICE_COMPILE__)
  return __builtin_amdgcn_perm(hi, lo, sel);
#else
  const uint64_t bytes = (uint64_t(hi) << 32) | lo;
  uint32_t r = 0;
  for (int n = 0; n < 4; ++n) {
    const uint32_t s = (sel >> (8 * n)) & 0xffu;
    const uint32_t b = s < 8 ? uint32_t(bytes >> (8 * s)) & 0xffu : s == 12 ? 0u : 0xffu;
    r |= b << (8 * n);
  }
  return r;
#endif
}

// One word of an MX block -> its two k-steps' B operands as bf16 (exact, unscaled E2M1): step 0
// (low nibbles) = {values 0, 2}, {4, 6}; step 1 (high nibbles) = {1, 3}, {5, 7} (low half first).
// Byte tables in registers (v_perm_b32), about 14 ALU ops for 8 values, no memory lookups and no bf16
// subnormals (the MFMA's handling of those is not something to lean on untested).
GPTOSS_HD inline void e2m1_word_to_bf16_steps(uint32_t w, uint32_t (&step0)[2], uint32_t (&step1)[2]) {
  // bf16 of the magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6: high bytes 00 3F 3F 3F 40 40 40 40, low 00 00 80 C0 00 40 80 C0
  constexpr uint32_t kHi03 = 0x3F3F3F00u, kHi47 = 0x40404040u, kLo03 = 0xC0800000u, kLo47 = 0xC0804000u;
  const uint32_t m0 = w & 0x07070707u, m1 = (w >> 4) & 0x07070707u;      // magnitudes as byte selectors
  const uint32_t h0 = perm_b32(kHi47, kHi03, m0) | ((w << 4) & 0x80808080u);  // sign bit 3 -> 7
  const uint32_t l0 = perm_b32(kLo47, kLo03, m0);
  const uint32_t h1 = perm_b32(kHi47, kHi03, m1) | (w & 0x80808080u);
  const uint32_t l1 = perm_b32(kLo47, kLo03, m1);
  step0[0] = perm_b32(h0, l0, 0x05010400u);  // bytes l0.0 h0.0 l0.1 h0.1: bf16 of bytes 0 and 1's values
  step0[1] = perm_b32(h0, l0, 0x07030602u);
  step1[0] = perm_b32(h1, l1, 0x05010400u);
  step1[1] = perm_b32(h1, l1, 0x07030602u);
}

}  // namespace gptoss::mfma
