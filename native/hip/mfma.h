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

}  // namespace gptoss::mfma
