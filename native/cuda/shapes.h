// What each GPU kernel can take, as plain C++: the shape limits and shared-memory sizes that both a
// kernel (and its launcher) and the path choosers of policy.cpp read. One definition each, so a
// chooser can never disagree with the kernel it picks; no CUDA headers, so the choosers and their
// host test (native/cuda/tests/policy_test.cpp) build without a GPU toolchain.
#pragma once
#include <cstdint>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define GPTOSS_HD __host__ __device__
#else
#define GPTOSS_HD
#endif

namespace gptoss::cuda {

// ---- reduce.cuh: the row-in-registers norm (rmsnorm, the fused add_rmsnorm + router / GEMV) ----
constexpr int kRow4Threads = 256;  // threads holding a norm row (also a split-router block: one warp an expert)

// ---- attention.cu ----
constexpr int kAttnDecodeMaxTokens = 4;  // split-KV decode for at most this many queries a call
constexpr int kDecodeTile = 64;          // keys a tile (decode)
constexpr int kDecodeMaxG = 16;          // query heads a kv head (decode)
constexpr int kDecodeD = 64;             // head dim of the decode kernel
constexpr int kDecodeMaxSplits = 64;     // shared-memory bound of the merge weights
constexpr int kDecodeMaxPairs = 2048;    // (token, kv head) pairs: the last-block counters (common.cuh)
constexpr int kFlashD = 64, kFlashBQ = 64, kFlashBK = 64;
constexpr int kDecodeMmaMaxG = 8;         // decode mma: query heads a kv head (the MMA's rows 0..7)
constexpr int kDecodeMmaTile = 64;        // decode mma: keys a tile (16 a warp, 4 warps)
constexpr int kDecodeMmaMaxSplits = 64;   // decode mma: splits at most
constexpr int kDecodeMmaStages = 2;      // decode mma: tiles of the cp.async ring (3, 4: no faster, 26th session)

// ---- matmul.cu / gemm_tile.cu ----
constexpr int kGemvMaxTokens = 8;  // the GEMV reads W once for up to this many tokens
// Dense problems of up to this many rows take the GEMV where the wgmma tile runs (sm_90a), the tile above (16th
// session, H100, a 24-layer 20b decode step on the GEMV / the wgmma tile: 2 streams 3.4 / 3.6 ms, 4 4.9 / 4.8, 6 6.6
// / 5.5, 8 6.7 / 5.8); elsewhere kGemvMaxTokens (not measured there).
constexpr int kGemvWgmmaMaxTokens = 4;
constexpr int kGemvMaxParts = 3;
// gemv_xs_kernel (policy.h's GemvKernel::Xs): rows of at most this many values (a lane holds 16 of a
// row's 16-byte bf16 chunks, or 4 of its 32-value Q8_0 blocks, all in flight at once).
constexpr int kGemvXsMaxK = 4096;
constexpr int kGemmBN = 128, kGemmBK = 32, kGemmThreads = 256;
constexpr int kGemmMaxKBlocks = 256;  // MXFP4: the block's scales [128, K/32] live in shared memory (K <= 8192)
constexpr int kGemmStages = 4;        // cp.async ring depth (an MXFP4 step is decoded one step ahead)
constexpr int kGemmRowBytes = kGemmBK * 2;
constexpr int kGemmBdecBytes = kGemmBN * kGemmRowBytes;  // one decoded bf16 W tile
// Shared memory of a tile with `bm` rows (32 * MT): one A half of a stage, a stage, and the block's
// whole dynamic size (MXFP4 adds the decoded W buffers and the scales [128][kblocks]); the kernel
// reads them as constants, the launcher and gemm_tile_rows at run time.
GPTOSS_HD constexpr int gemm_a_half_bytes(int bm) { return bm * kGemmRowBytes; }
GPTOSS_HD constexpr int gemm_stage_bytes(bool mx, int bm) {
  return 2 * gemm_a_half_bytes(bm) + (mx ? kGemmBN * 16 : kGemmBN * kGemmRowBytes);
}
GPTOSS_HD constexpr int gemm_smem_bytes(bool mx, int bm, int kblocks) {
  return kGemmStages * gemm_stage_bytes(mx, bm) + (mx ? 2 * kGemmBdecBytes + (kGemmBN * kblocks + 15) / 16 * 16 : 0);
}
// The MFMA tile (native/hip/gemm_tile_mfma.hip): static LDS, single-buffered: A hi + lo [bm][40] and
// W [128][40] bf16 (rows of BK = 32 padded by 8: native/hip/mfma.h's tile_offset) + the row map [bm].
constexpr int kGemmMfmaRowElems = kGemmBK + 8;
GPTOSS_HD constexpr int gemm_mfma_smem_bytes(int bm) {
  return (2 * bm + kGemmBN) * kGemmMfmaRowElems * 2 + bm * 4;
}

// ---- moe.cu ----
constexpr int kMoeDecodeMaxPairs = 16;     // decode path when n * k is at most this many (token, expert) pairs
constexpr int kRouterSplitMaxTokens = 64;  // router: one warp an expert over many blocks up to this many tokens
constexpr int kRouterClusterMax = 8;       // router_norm_cluster_kernel: blocks a cluster at most (the portable size)
constexpr int kMoeTileCounters = 4096;     // decode MoE down: last-block counters, one per (token, 16-row tile)

// ---- moe_decode_mma.cu: bf16 mma.sync kernels ----
constexpr int kMoeTileRows = 16;   // rows a CTA (MMA M)
constexpr int kMoeSliceMax = 32;   // MX blocks a warp issues at once (16 rows x 512 bytes)
// The default target (GPTOSS_CUDA_MOE_SLICE unset): 24, so the 20b's 90 MX blocks a row are 4 warp slices of 23
// (36,800 bytes of shared memory a CTA against 36,768 for 3 of 30; a shorter MMA chain a warp). H100, 25th
// session: e2e decode 452.8-453.3 tok/s against 447.8-448.8 at 32 over three rounds, batch 1 / 4 streams +1.3% /
// +0.9%, 8-64 streams unchanged; gpu_check --only-moe 164/0 and the model check 16/0 with it.
constexpr int kMoeSliceDefault = 24;
constexpr int kMoeMaxWarps = 8;    // K slices a CTA: rows of at most 256 MX blocks (8192 values)
constexpr int kMoeMaxSmem = 200 * 1024;
GPTOSS_HD inline int round16(int b) { return (b + 15) / 16 * 16; }
struct SliceShape {
  int slices, per;  // warps a CTA, MX blocks a warp (the last may have fewer)
};
// target: MX blocks a warp at most (<= kMoeSliceMax; GPTOSS_CUDA_MOE_SLICE), raised where a row would need more
// than kMoeMaxWarps slices (up to kMoeSliceMax: rows of up to 256 MX blocks keep the mma kernels at any target).
GPTOSS_HD inline SliceShape slice_shape(int nch, int target) {
  const int need = (nch + kMoeMaxWarps - 1) / kMoeMaxWarps;
  const int t = need > target ? (need < kMoeSliceMax ? need : kMoeSliceMax) : target;
  const int s = (nch + t - 1) / t;
  return {s, (nch + s - 1) / s};
}
GPTOSS_HD inline int row_stride(int per) { return (per | 1) * 16; }  // odd 16-byte chunks a row
GPTOSS_HD inline int warp_bytes(int per) {
  return kMoeTileRows * row_stride(per) + round16(kMoeTileRows * per) + per * 128;  // rows, scales, B fragments
}
inline int mma_cta_smem(int nch, int target) {
  const SliceShape sh = slice_shape(nch, target);
  return sh.slices * warp_bytes(sh.per);
}
// The staged ring (moe_staged_kernel, GPTOSS_CUDA_MOE_STAGED): a warp holds its slice of a tile in registers, at most
// kMoeStagedPer MX blocks (slice_shape(nch, kMoeStagedPer): the 20b's 90 as 8 warps of 12, so rows of at most 96
// blocks). A warp's shared memory: `slots` stages (16 rows + the tile's scale groups, as they land), the current
// tile's scales (pre-offset), the B fragments.
constexpr int kMoeStagedPer = 12;
GPTOSS_HD inline int staged_stage_bytes(int per) { return kMoeTileRows * row_stride(per) + round16(kMoeTileRows * per); }
GPTOSS_HD inline int staged_warp_bytes(int per, int slots) {
  return slots * staged_stage_bytes(per) + round16(kMoeTileRows * per) + per * 128;
}
inline bool moe_staged_fits(int nch) { return nch > 0 && slice_shape(nch, kMoeStagedPer).per <= kMoeStagedPer; }
inline int staged_cta_smem(int nch, int slots) {
  const SliceShape sh = slice_shape(nch, kMoeStagedPer);
  return sh.slices * staged_warp_bytes(sh.per, slots);
}
// The grouped decode kernels (a batched step's tokens grouped by expert): up to 4 tokens of one expert
// in the MMA's 8 B columns (each token's bf16 hi and lo), 8 with two column sets sharing each decoded
// weight fragment; B fragments per token.
// GroupedMma by default up to this many pairs an expert on average (n <= 32 on the 20b): measured on the
// H200 (bench/RESULTS.md, 2026-12-05), groups of 4: 8 streams 10.1 ms a step against the GEMM tile's
// 14.0, 32 streams 16.0 against 17.4; groups of 8 at 64 streams 40.9 against 18.5 (its 16-row CTAs each
// rebuild their tokens' activation fragments: past a few pairs an expert, latency-bound waves of CTAs).
constexpr int kMoeGroupMaxPerExpert = 4;
GPTOSS_HD inline int group_warp_bytes(int per, int tokens) { return warp_bytes(per) + (tokens - 1) * per * 128; }
inline int group_cta_smem(int nch, int target, int tokens) {
  const SliceShape sh = slice_shape(nch, target);
  return sh.slices * group_warp_bytes(sh.per, tokens);
}

// ---- moe_stream.cu: the streaming grouped MoE of a batched decode step (GPTOSS_CUDA_MOE_BATCH=stream) ----
// A CTA: kMoeStreamRows weight rows (8 warps x 16, the MMA's M) of one expert over all of K, the expert's
// routed rows kMoeStreamTokens at a time as the MMA's N (4 tokens an n-tile: bf16 hi and lo columns); a
// ring of stages of kMoeStreamKc MX blocks (packed weights [kc][rows][16 B] + the tokens' bf16 halves,
// rows padded to a 64-byte bank offset, copied from the tile's packed run: moe.cuh MoeStreamProblem::a_packed),
// the CTA's scales [rows][K/32] resident.
// The wide variant (14th session; the default on Hopper from kMoeStreamWideAutoMinPerExpert rows an expert since the
// 15th): kMoeStreamWideTokens routed rows a CTA (8 n-tiles, two CTAs an SM, the shallow ring), so an expert with
// 17-32 rows decodes its weights once instead of in two CTAs.
constexpr int kMoeStreamRows = 128, kMoeStreamThreads = 256, kMoeStreamKc = 4, kMoeStreamTokens = 16;
constexpr int kMoeStreamWideTokens = 32;
constexpr int kMoeStreamActRow = kMoeStreamKc * 64 + 64;  // bytes of one (token, half) row of a stage
GPTOSS_HD constexpr int moe_stream_stage_bytes(int tokens = kMoeStreamTokens) {
  return kMoeStreamKc * kMoeStreamRows * 16 + 2 * tokens * kMoeStreamActRow;
}
GPTOSS_HD constexpr int moe_stream_smem_bytes(int stages, int nch, int tokens = kMoeStreamTokens) {
  return stages * moe_stream_stage_bytes(tokens) + (kMoeStreamRows * nch + 15) / 16 * 16;
}
// The TMA kernel (moe_stream.cu): the same ring and scales, plus 1 KB to align the ring to the weights' 64-byte
// swizzle span (the tensor map's box lands swizzled by the shared address bits).
GPTOSS_HD constexpr int moe_stream_tma_smem_bytes(int stages, int nch, int tokens = kMoeStreamTokens) {
  return moe_stream_smem_bytes(stages, nch, tokens) + 1024;
}
// The two ring depths compiled. The shallow one is the default wherever three of its CTAs fit an SM (sm_90,
// sm_100: 24 warps; its kernels are held to 80 registers for it): measured on an H100 it beat the deep ring
// with two CTAs an SM by 3-7% a MoE (20b, 8-128 streams), the kernel being bound by issue and latency, not by
// bytes in flight. GPTOSS_CUDA_MOE_STREAM_STAGES=5 asks for the deep one where it fits.
constexpr int kMoeStreamDeepStages = 5, kMoeStreamShallowStages = 3;
// CTAs an SM a streaming MoE kernel is built for (its registers allow; policy.cpp checks its shared memory fits):
// three on the shallow ring with 16 rows a CTA (3 x 67 KB on sm_90: 24 warps, <= 80 registers a thread), two
// otherwise (the deep ring's two 104 KB CTAs, the wide kernel's two 98 KB ones: 128 registers).
GPTOSS_HD constexpr int moe_stream_ctas_per_sm(int stages, int tokens) {
  return stages == kMoeStreamShallowStages && tokens == kMoeStreamTokens ? 3 : 2;
}
// Routed rows an expert on average up to which GPTOSS_CUDA_MOE_BATCH=stream takes a call (1,024 tokens of the 20b,
// 4,096 of the 120b); larger prefills stay on the GEMM tile (a CTA reads an expert's weights once for every 16 or
// 32 of its rows, which the tile's 128-row tiles beat past this).
constexpr int kMoeStreamMaxPerExpert = 128;
// The default (GPTOSS_CUDA_MOE_BATCH unset) on Hopper: the streaming kernels for more than
// kMoeStreamAutoMinPerExpert and at most kMoeStreamAutoMaxPerExpert routed rows an expert on average (17-1,024
// tokens of the 20b: decode batches and prefill chunks up to 1,024 tokens), the grouped decode kernels below, the
// GEMM tile above. Measured on an H100 (bench/RESULTS.md, twelfth session), the whole MoE op of a 20b layer: 8
// streams mma 0.212 / stream 0.232 ms, 16 streams 0.307 / 0.299, 24 0.381 / 0.327, 32 stream 0.331 / GEMM tile
// 0.530, 64 0.362 / 0.532, 96 0.407 / 0.528, 128 0.498 / 0.529; nineteenth session, tokens (rows an expert) stream
// narrow / wide / GEMM tile: 256 (32) 0.431 / 0.45 / 0.76-0.80, 512 (64) 0.87 / 0.77-0.79 / 1.06-1.16, 1024 (128)
// 1.60 / 1.39-1.45 / 1.55-1.59. Other archs keep kMoeGroupMaxPerExpert's rule.
// Experts in the decode layout (Hopper's default since the 13th session), which the grouped decode kernels cannot
// read, take the streaming kernels below the band too (16th session; the GEMM tile had those 5-16 streams).
constexpr int kMoeStreamAutoMinPerExpert = 2, kMoeStreamAutoMaxPerExpert = 128;
// The wide streaming kernel (kMoeStreamWideTokens rows a CTA) by default on Hopper from this many routed rows an
// expert on average: H100, the whole MoE op of a 20b layer, narrow / wide (15th session, after the loop trim):
// 64 streams (8 an expert) 0.279 / 0.312 ms, 96 (12) 0.307 / 0.340, 112 (14) 0.359 / 0.355, 128 (16) 0.406 / 0.390.
constexpr int kMoeStreamWideAutoMinPerExpert = 14;

// ---- native/hip/moe_decode_mfma.hip: the MFMA decode MoE (AMD CDNA) ----
constexpr int kMoeMfmaWaves = 4;  // wavefronts a CTA (256 threads), splitting K; a CTA owns kMoeTileRows rows
// LDS of a CTA for rows of nch MX blocks: the activation fragments (128 bytes a block: mfma.h's
// MoeDecodeMap) and the waves' row sums.
GPTOSS_HD constexpr int moe_mfma_frag_bytes(int nch) { return nch * 128; }
GPTOSS_HD constexpr int moe_mfma_smem_bytes(int nch) { return moe_mfma_frag_bytes(nch) + kMoeMfmaWaves * kMoeTileRows * 4; }

// ---- moe_decode_mma.cu: e4m3 mma.sync streaming kernels ----
constexpr int kFp8Warps = 8;
constexpr int kFp8PerMax = 16;  // MX blocks a warp slice: K of at most 128 blocks (4096 values)
constexpr int kScaleWin = 32;   // bytes of a row's scale window
GPTOSS_HD inline int fp8_per(int nch) { return (nch + kFp8Warps - 1) / kFp8Warps; }
GPTOSS_HD inline int fp8_stage_bytes(int per) { return kMoeTileRows * (row_stride(per) + kScaleWin); }
GPTOSS_HD inline int fp8_warp_bytes(int per, int stages) { return stages * fp8_stage_bytes(per) + per * 128; }
inline int fp8_cta_smem(int nch, int stages) { return kFp8Warps * fp8_warp_bytes(fp8_per(nch), stages); }
// MmaMxf8 (the same kernels on the block-scaled MMA): each block's four limb scales beside its fragments.
GPTOSS_HD inline int mxf8_warp_bytes(int per, int stages) { return fp8_warp_bytes(per, stages) + per * 16; }
inline int mxf8_cta_smem(int nch, int stages) { return kFp8Warps * mxf8_warp_bytes(fp8_per(nch), stages); }

}  // namespace gptoss::cuda
