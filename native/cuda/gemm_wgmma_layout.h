// The shared-memory layout, descriptors and fragment maps of the Hopper wgmma GEMM tile
// (gemm_wgmma.cu; issue 12 item 4), as plain C++: the kernel computes every address with these
// functions, and the host test (tests/gemm_wgmma_layout_test.cpp) checks them against the PTX ISA's
// description of what wgmma reads and writes, so a layout slip shows up in CI, not on the GPU.
//
// Facts used (PTX ISA, "Asynchronous Warpgroup Level Matrix Multiply-Accumulate", sections "Matrix
// Descriptor Format", "Shared Memory Matrix Layout" and "Register Fragments"):
//  - wgmma.mma_async.m64nNk16 .bf16: a warpgroup (4 consecutive warps, 128 threads) computes a 64 x N
//    block, A 64 x 16 and B N x 16 (both "K-major": K contiguous, no transpose) read from shared memory
//    through 64-bit descriptors.
//  - Descriptor: bits 0-13 start address >> 4, 16-29 leading-dimension byte offset >> 4, 32-45 stride-
//    dimension byte offset >> 4, 49-51 base offset, 62-63 swizzle (1 = 128-byte).
//  - 128-byte swizzle, K-major: a row of the operand is 128 bytes (64 bf16) wide, 8 rows (1024 bytes)
//    make one swizzle atom; the 16-byte chunk c of row r of an atom sits at chunk c ^ (r & 7). Atoms
//    follow each other along M/N at the stride byte offset (1024 here); the leading byte offset is not
//    used (the 16 K values of one instruction lie inside the 128-byte row). The swizzle is applied to
//    address bits 4-6 from bits 7-9, so the atoms must be 1024-byte aligned (base offset 0), and the
//    k-th 16-value slice of the row is addressed by adding 32 k bytes to the start address.
//  - Accumulator (f32, N/2 registers a thread): thread t of the warpgroup, warp w = t / 32, lane l;
//    register i holds row 16 w + l / 4 + 8 ((i / 2) & 1), column 8 (i / 4) + 2 (l & 3) + (i & 1) (the
//    m16n8 mma.sync C layout, repeated over the N / 8 column chunks and the 4 warps' row slices).
#pragma once
#include <cstdint>

#include "shapes.h"  // GPTOSS_HD, kGemmBN

namespace gptoss::cuda::wgmma {

constexpr int kBN = 128;          // columns a block (= kGemmBN: the q/k/v column parts of gemm_tile.cuh)
constexpr int kBK = 64;           // K a stage: one 128-byte swizzle row of bf16
constexpr int kRowBytes = 128;
constexpr int kAtomBytes = 1024;  // 8 rows: one 128-byte swizzle atom
constexpr int kStages = 4;        // ring slots
constexpr int kLookahead = 2;     // stages in flight ahead of the one the MMAs read (one slot is still
                                  // read by the previous step's wgmma, which is waited for one step late)
constexpr int kWgRows = 64;       // rows a warpgroup (wgmma M)
constexpr int kWgThreads = 128;
constexpr int kMaxKBlocks = kGemmMaxKBlocks;  // MXFP4 scales of the block's 128 rows in shared memory
static_assert(kBN == kGemmBN, "the column parts (gemm_tile_block_columns) count tiles of kGemmBN columns");

// Threads of a block of bm rows (64 or 128): one warpgroup per 64 rows, each its own m64n128 block.
GPTOSS_HD constexpr int threads(int bm) { return bm / kWgRows * kWgThreads; }

// ---- shared memory, from a 1024-byte aligned base ----
// stage s: [A hi: bm rows x 128 B][A lo: bm x 128 B][W: bf16 128 rows x 128 B | MXFP4 128 rows x 2 blocks x 16 B]
// MXFP4 only, after the stages: 2 decoded bf16 W tiles (128 x 128 B) and the scales [128][K/32].
GPTOSS_HD constexpr int a_bytes(int bm) { return bm * kRowBytes; }
GPTOSS_HD constexpr int w_bytes(bool mx) { return mx ? kBN * 32 : kBN * kRowBytes; }
GPTOSS_HD constexpr int stage_bytes(bool mx, int bm) { return 2 * a_bytes(bm) + w_bytes(mx); }
GPTOSS_HD constexpr int stage_offset(bool mx, int bm, int slot) { return slot * stage_bytes(mx, bm); }
GPTOSS_HD constexpr int a_offset(bool mx, int bm, int slot, int part) { return stage_offset(mx, bm, slot) + part * a_bytes(bm); }
GPTOSS_HD constexpr int w_offset(bool mx, int bm, int slot) { return stage_offset(mx, bm, slot) + 2 * a_bytes(bm); }
constexpr int kDecBufs = 2;
constexpr int kDecBytes = kBN * kRowBytes;
GPTOSS_HD constexpr int dec_offset(int bm, int buf) { return kStages * stage_bytes(true, bm) + buf * kDecBytes; }
GPTOSS_HD constexpr int scales_offset(int bm) { return dec_offset(bm, kDecBufs); }
// Dynamic shared memory to ask for: the layout plus 1024 bytes to align its base (the runtime only
// promises 16-byte alignment of dynamic shared memory).
GPTOSS_HD constexpr int smem_bytes(bool mx, int bm, int kblocks) {
  return kAtomBytes + (mx ? scales_offset(bm) + (kBN * kblocks + 15) / 16 * 16 : kStages * stage_bytes(false, bm));
}
// Static shared memory beside it: the block's source rows (int a row).
GPTOSS_HD constexpr int static_smem_bytes(int bm) { return bm * 4; }

// Byte offset of 16-byte chunk `chunk` (0..7: K values 8 chunk .. 8 chunk + 7 of the stage) of row `row`
// inside an operand tile whose base is 1024-byte aligned: the 128-byte swizzle.
GPTOSS_HD constexpr uint32_t sw128(int row, int chunk) {
  return uint32_t(row * kRowBytes + ((chunk ^ (row & 7)) << 4));
}

// The descriptor of a K-major, 128-byte swizzled bf16 operand whose first row starts at shared address
// `addr` (1024-byte aligned, plus 32 k for the k-th 16-value slice).
GPTOSS_HD constexpr uint64_t sw128_desc(uint32_t addr) {
  return uint64_t((addr & 0x3FFFFu) >> 4) | uint64_t(1) << 16 /* LBO: unused */ |
         uint64_t(kAtomBytes >> 4) << 32 /* SBO: 8-row atoms back to back */ | uint64_t(1) << 62 /* 128B swizzle */;
}
// The start of the k16-th slice (0..3) of warpgroup wg's 64 rows of an A tile, and of the W tile.
GPTOSS_HD constexpr uint32_t a_desc_addr(uint32_t a_tile, int wg, int k16) {
  return a_tile + uint32_t(wg * kWgRows * kRowBytes + k16 * 32);
}
GPTOSS_HD constexpr uint32_t w_desc_addr(uint32_t w_tile, int k16) { return w_tile + uint32_t(k16 * 32); }

// ---- producers: which 16-byte chunks a thread copies or writes ----
// A (hi and lo alike): a thread keeps one chunk column (tid & 7) and rows tid / 8 + j bm / 4... in
// general, copy i (0 .. 8 bm / nthreads - 1 = 3) of a half is chunk tid + i nthreads of the half's bm x 8.
GPTOSS_HD constexpr int a_copies(int bm) { return bm * 8 / threads(bm); }  // 4
GPTOSS_HD constexpr int a_copy_row(int bm, int tid, int i) { return (tid + i * threads(bm)) >> 3; }
GPTOSS_HD constexpr int copy_chunk(int tid) { return tid & 7; }
// bf16 W: copy i of 128 x 8 chunks.
GPTOSS_HD constexpr int w_copies(int bm) { return kBN * 8 / threads(bm); }  // 8 (bm 64) or 4 (bm 128)
GPTOSS_HD constexpr int w_copy_row(int bm, int tid, int i) { return (tid + i * threads(bm)) >> 3; }
// MXFP4 W: unit u = tid + i nthreads of 256: row u / 2, MX block u & 1 of the stage, packed at u * 16;
// the thread that copies a unit also decodes it (32 values: chunks 4 (u & 1) .. + 3 of the row).
GPTOSS_HD constexpr int mx_units(int bm) { return kBN * 2 / threads(bm); }  // 2 or 1
GPTOSS_HD constexpr int mx_unit(int bm, int tid, int i) { return tid + i * threads(bm); }

// ---- the accumulator fragment: register i (0..63) of thread tid of the block ----
GPTOSS_HD constexpr int acc_row(int tid, int i) {
  return (tid >> 7) * kWgRows + ((tid >> 5) & 3) * 16 + ((tid & 31) >> 2) + 8 * ((i >> 1) & 1);
}
GPTOSS_HD constexpr int acc_col(int tid, int i) { return 8 * (i >> 2) + 2 * (tid & 3) + (i & 1); }
constexpr int kAccRegs = kBN / 2;

// ---- the warp-specialized grouped MXFP4 tile (gemm_wgmma_ws_kernel; policy.h wgmma_grouped_ws) ----
// The bm / 64 consumer warpgroups only issue wgmma; two producer warpgroups (the block's last 256 threads)
// copy every stage (cp.async) and decode its MXFP4 weights. They meet at two mbarriers a ring slot: full
// (the 256 producer threads arrive once their copies of the stage have landed and their units are decoded and
// fenced for the async proxy) and empty (each consumer warp's lane 0 arrives once the wgmma that read the slot
// have completed). A slot holds the whole stage, its decoded W tile included, so the producer runs up to
// kWsStages stages ahead of the tensor cores with no block-wide barrier in the K loop.
// Slot s: [A hi: bm x 128 B][A lo: bm x 128 B][W decoded: 128 x 128 B][W packed: 128 rows x 2 MX blocks x 16 B];
// after the slots: the 2 kWsStages mbarriers (full, then empty), then the block's scales [128][K/32].
constexpr int kWsStages = 4;
constexpr int kWsProducers = 256;  // two warpgroups (one was the bottleneck: 1.4x slower than the kernel above, H100)
GPTOSS_HD constexpr int ws_threads(int bm) { return threads(bm) + kWsProducers; }
GPTOSS_HD constexpr int ws_slot_bytes(int bm) { return 2 * a_bytes(bm) + kDecBytes + kBN * 32; }
GPTOSS_HD constexpr int ws_a_offset(int bm, int slot, int part) { return slot * ws_slot_bytes(bm) + part * a_bytes(bm); }
GPTOSS_HD constexpr int ws_dec_offset(int bm, int slot) { return slot * ws_slot_bytes(bm) + 2 * a_bytes(bm); }
GPTOSS_HD constexpr int ws_packed_offset(int bm, int slot) { return ws_dec_offset(bm, slot) + kDecBytes; }
GPTOSS_HD constexpr int ws_bar_offset(int bm, int i) { return kWsStages * ws_slot_bytes(bm) + 8 * i; }  // i: full 0..S-1, empty S..2S-1
GPTOSS_HD constexpr int ws_scales_offset(int bm) { return ws_bar_offset(bm, 2 * kWsStages); }
GPTOSS_HD constexpr int ws_smem_bytes(int bm, int kblocks) { return kAtomBytes + ws_scales_offset(bm) + (kBN * kblocks + 15) / 16 * 16; }
// Producer thread pt (0..255): A copy i (0 .. bm / 32 - 1) of a half is chunk pt + 256 i of the half's bm x 8 (row
// (pt + 256 i) / 8, chunk column pt & 7); its one MXFP4 unit is unit pt of the stage's 256 (row pt / 2, MX block
// pt & 1), which the same thread decodes once it has landed.
GPTOSS_HD constexpr int ws_a_copies(int bm) { return bm * 8 / kWsProducers; }
GPTOSS_HD constexpr int ws_a_copy_row(int pt, int i) { return (pt + i * kWsProducers) >> 3; }
constexpr int kWsMxUnits = kBN * 2 / kWsProducers;
GPTOSS_HD constexpr int ws_mx_unit(int pt, int i) { return pt + i * kWsProducers; }

// ---- split-K (dense bf16 problems with fewer column x row tiles than SMs; policy.h wgmma_dense_splits) ----
// A cluster of `splits` blocks (grid.z, cluster dims 1 x 1 x splits) shares one output tile: block z runs
// K steps [k_begin(z), k_begin(z + 1)) (as even as integers allow, each non-empty when splits <= nk),
// stores its f32 accumulator into its own shared memory (the ring, drained) as [bm][kRedStride], and
// after a cluster barrier block z sums rows z, z + splits, ... of the tile over the cluster's blocks in
// rank order 0 .. splits - 1 (distributed shared memory; the same order whichever block finishes last:
// deterministic), adds the bias and writes them.
constexpr int kMaxSplits = 8;            // the portable cluster size
constexpr int kRedStride = kBN + 8;      // floats a row: rows 8 banks apart (float2 stores 2-way at most)
GPTOSS_HD constexpr int k_begin(int nk, int splits, int z) { return int((int64_t(nk) * z) / splits); }
GPTOSS_HD constexpr int red_bytes(int bm) { return bm * kRedStride * 4; }
static_assert(red_bytes(64) <= kStages * stage_bytes(false, 64) && red_bytes(128) <= kStages * stage_bytes(false, 128),
              "the split-K tile fits in the drained bf16 ring");

}  // namespace gptoss::cuda::wgmma
