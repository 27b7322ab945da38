// The shared-memory layout and fragment maps of the streaming MoE kernel (moe_stream.cu; issue 11), as plain
// C++: the kernel computes its addresses and fragment assignments with these functions, and the host test
// (tests/moe_stream_layout_test.cpp) runs a whole CTA through them against the PTX ISA's description of
// ldmatrix and mma.sync m16n8k16, and a dense reference, so a slip shows up in CI, not on the GPU.
//
// Facts used (PTX ISA: "ldmatrix", "Matrix Fragments for mma.m16n8k16 with floating point type"):
//  - ldmatrix.sync.aligned.m8n8.x4.b16: lanes 8m .. 8m + 7 give the 8 row addresses (16 bytes each) of
//    matrix m; lane l receives, in register m, the 32-bit word l % 4 of row l / 4 of matrix m.
//  - mma m16n8k16, g = lane / 4, t = lane % 4: A (16 x 16, row) a0 = (g, 2t..2t+1), a1 = (g + 8, 2t..2t+1),
//    a2 = (g, 2t+8..2t+9), a3 = (g + 8, 2t+8..2t+9); B (16 x 8) b0 = (k 2t..2t+1, n g), b1 = (k 2t+8..2t+9,
//    n g); C c0, c1 = (g, 2t..2t+1), c2, c3 = (g + 8, 2t..2t+1); a register's lower 16 bits hold the lower k.
//  - An MX block: 16 bytes, byte j holds values 2j (low nibble) and 2j + 1; so 32-bit word t holds values
//    8t .. 8t+7, and e2m1_word_to_bf16 gives the pairs (8t, 8t+1) .. (8t+6, 8t+7).
#pragma once
#include "shapes.h"  // GPTOSS_HD, kMoeStream*

namespace gptoss::cuda::mstream {

constexpr int kRows = kMoeStreamRows, kKc = kMoeStreamKc, kTok = kMoeStreamTokens, kActRow = kMoeStreamActRow;
constexpr int kWStage = kKc * kRows * 16;  // packed weights of a stage: [kc][rows][16 B]
constexpr int kActChunks = kKc * 4;        // 16-byte chunks of one (token, half) row of a stage

// ---- a stage: the copies ----
// Weight chunk c (0 .. kc * rows) of a stage: row c / kc, MX block c % kc (a row's blocks adjacent in memory).
GPTOSS_HD constexpr int weight_chunk_row(int c) { return c / kKc; }
GPTOSS_HD constexpr int weight_chunk_block(int c) { return c % kKc; }
GPTOSS_HD constexpr int weight_offset(int row, int b) { return (b * kRows + row) * 16; }
// Activation row of a stage: token (0 .. kTok) and half (0: bf16 hi, 1: lo); chunk ch of 8 bf16 values.
GPTOSS_HD constexpr int act_row(int tok, int half) { return 2 * tok + half; }
GPTOSS_HD constexpr int act_offset(int r, int ch) { return kWStage + r * kActRow + ch * 16; }

// ---- A packed by tile and stage (moe.cuh MoeStreamProblem::a_packed) ----
// A stage's activation rows as they lie in shared memory (act_offset less the weights), one run a (tile, stage):
// tile T's stage kt at packed_stage_offset, its row r (act_row) at + r kActRow, column k of the stage (0 .. 127)
// at + 2 k. The pack kernel and the swiglu epilogue write there; a kernel copies a stage's first 2 x ntok rows as
// one piece to act_offset(0, 0) of its slot.
GPTOSS_HD constexpr int packed_stages(int K) { return (K + kKc * 32 - 1) / (kKc * 32); }
GPTOSS_HD constexpr int64_t packed_stage_offset(int64_t tile, int kt, int K, int tokens) {
  return (tile * packed_stages(K) + kt) * 2 * tokens * kActRow;
}
// Column col (0 .. K) of slot r of tile T, half h: its byte offset in the packed A.
GPTOSS_HD constexpr int64_t packed_col_offset(int64_t tile, int r, int h, int col, int K, int tokens) {
  return packed_stage_offset(tile, col / (kKc * 32), K, tokens) + act_row(r, h) * kActRow + (col % (kKc * 32)) * 2;
}

// ---- the MMA loop ----
// ldmatrix.x4 row address of `lane` for MX blocks bp, bp + 1 of warp `warp`'s 16 rows: matrices (block bp,
// rows 0-7), (bp, 8-15), (bp + 1, 0-7), (bp + 1, 8-15), so register 2h + q holds word t of row g + 8q of
// block bp + h.
GPTOSS_HD constexpr int ldsm_offset(int warp, int bp, int lane) {
  return weight_offset(warp * 16 + (lane & 15), bp + (lane >> 4));
}
// The TMA kernel (moe_stream.cu): a stage's weights are the tensor map's box, rows of kKc
// blocks (64 bytes) one after another, landed with the 64-byte swizzle (CU_TENSOR_MAP_SWIZZLE_64B: the 16-byte
// chunk index within a 64-byte row XOR bits 7-8 of the shared address, i.e. (row / 2) % 4 in a 1024-aligned
// slot), so the 8 rows of an ldmatrix phase fall in 8 distinct bank groups. The activation rows are as above.
static_assert(kKc * 16 == 64, "the TMA box rows are one 64-byte swizzle span");
GPTOSS_HD constexpr int tma_weight_offset(int row, int b) { return row * 64 + ((b ^ ((row >> 1) & 3)) * 16); }
GPTOSS_HD constexpr int tma_ldsm_offset(int warp, int bp, int lane) {
  return tma_weight_offset(warp * 16 + (lane & 15), bp + (lane >> 4));
}
// A register i (0..3) of k16 step ks: pair (of the lane's word's four, e2m1_word_to_bf16's order) and row
// (0: g, 1: g + 8). k slots (2t, 2t+1, 2t+8, 2t+9) of step ks hold values 8t + 4ks + (0, 1, 2, 3).
GPTOSS_HD constexpr int a_pair(int ks, int i) { return 2 * ks + (i >> 1); }
GPTOSS_HD constexpr int a_row8(int i) { return i & 1; }
// B fragment of n-tile j for lane (g, t), MX block b of the stage: one 16-byte load of values 8t .. 8t+7 of
// token 4j + g / 2, half g % 2 (B column g); words 2ks, 2ks + 1 are b0, b1 of k16 step ks.
// (act_row(4j + g/2, g % 2) is 8j + g: the test checks it.)
GPTOSS_HD constexpr int bfrag_offset(int j, int g, int t, int b) { return act_offset(8 * j + g, 0) + b * 64 + t * 16; }
// The scale of (row rl of the CTA's kRows, MX block kb) in the CTA's shared copy, which holds the scale bytes of
// its rows as they lie in memory: [kRows][nch] for checkpoint-layout experts; for the decode layout
// (mxfp4_layout.h scale_index: 16-row tiles, a block's 16 row bytes together; the CTA's first row is a multiple
// of 16) [kRows / 16][nch][16]. Rows rl and rl + 8 (rl % 16 < 8) share a tile.
GPTOSS_HD constexpr int scale_offset(int rl, int kb, int nch, bool decode_layout) {
  return decode_layout ? ((rl >> 4) * nch + kb) * 16 + (rl & 15) : rl * nch + kb;
}
// C of n-tile j: lane (g, t) holds token 4j + t, rows g (c0 + c1: hi + lo products) and g + 8 (c2 + c3).
GPTOSS_HD constexpr int c_token(int j, int t) { return 4 * j + t; }

// ---- the grid ----
// The expert of (expert, kTok rows) tile `tile` (tile < tile_start[E]): the last e with tile_start[e] <= tile
// (an empty expert shares its tile_start with the next one). The pack kernel finds a slot's expert the same way
// over group_start.
GPTOSS_HD inline int tile_expert(const int* tile_start, int E, int tile) {
  int lo = 0, hi = E - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (tile_start[mid] <= tile) lo = mid; else hi = mid - 1;
  }
  return lo;
}

}  // namespace gptoss::cuda::mstream
