// Kernel selection for the GPU backend: every path chooser, as pure functions of (GpuCaps, knobs,
// shape). dispatch.cu asks these and launches what they answer; the kernel files only carry out a
// choice. Plain C++ (no CUDA headers): tests/policy_test.cpp checks the choices on the host, in CI.
#pragma once
#include <cstdint>
#include <functional>

#include "caps.h"
#include "shapes.h"

namespace gptoss::cuda {

// An integer knob from the environment: its value when set within [lo, hi], else fallback.
int env_int(const char* name, int fallback, int lo, int hi);
// A flag from the environment: unset or empty -> fallback; "0", "false", "off" -> false; else true.
bool env_flag(const char* name, bool fallback);

// The warp-specialized grouped MXFP4 kernel (wgmma_grouped_ws below) is the default. Its second version (two
// producer warpgroups) ran the 20b MoE op at 2,048 tokens 4% faster than the kernel with every thread in every role
// (H100, 22nd session), while ptxas still serialized its wgmma (C7515). With that fixed (8186ef2), on an H100 on
// 2026-12-07 (24th session, scripts/gpu-ws-ab.sh): the MoE op at 2,048 tokens 2.392 / 2.514 ms against 2.505 /
// 2.598, at 1,024 1.509 / 1.510 against 1.579 / 1.580, at 4,096 4.363 / 4.296 against 4.532 / 4.483; e2e prefill
// of 2,048 tokens 23,935 / 23,824 tok/s against 23,013 / 22,935; gpu_check (340 cases) clean.
constexpr bool kGemmWsDefault = true;

// The environment's GPU tuning knobs, read once (options as data; the environment only as defaults).
struct GpuKnobs {
  enum class MoeDecode { Auto, Mma, MmaPrmt, MmaFp8, Simt, MmaRelaid, Mfma, Stream, MmaMxf8 };
  MoeDecode moe_decode = MoeDecode::Auto;  // GPTOSS_CUDA_MOE_DECODE=mma|mma-prmt|mma-fp8|mma-mxf8|simt|mma-relaid|mfma|stream
  int moe_slice = kMoeSliceDefault;        // GPTOSS_CUDA_MOE_SLICE (4..32): MX blocks a warp slice at most
  int moe_fp8_ctas = 2;                    // GPTOSS_CUDA_MOE_FP8_CTAS (1..2): FP8 CTAs a SM
  int attn_splits = 32;                    // GPTOSS_CUDA_ATTN_SPLITS (1..64): decode attention splits at most
  int attn_window_splits = 1;              // GPTOSS_CUDA_ATTN_WINDOW_SPLITS (1..2): splits of a short window
  int attn_mma_splits = 32;                // GPTOSS_CUDA_ATTN_MMA_SPLITS (1..64): the tensor-core decode's splits at most
  bool pdl = true;                         // GPTOSS_CUDA_PDL=0 turns programmatic dependent launch off
  enum class MoeBf16 { Auto, Gemv, Grouped };
  MoeBf16 moe_bf16 = MoeBf16::Auto;        // GPTOSS_CUDA_MOE_BF16=gemv|grouped: bf16 experts' path
  enum class MoeBatch { Auto, GroupedMma, Gemm, Stream };
  MoeBatch moe_batch = MoeBatch::Auto;     // GPTOSS_CUDA_MOE_BATCH=mma|gemm|stream: MXFP4 experts past the decode kernels' pairs
  int moe_group = 0;                       // GPTOSS_CUDA_MOE_GROUP=4|8: pairs a GroupedMma group (0: policy)
  enum class Gemv { Auto, Warp, Xs };
  Gemv gemv = Gemv::Auto;                  // GPTOSS_CUDA_GEMV=warp|xs: warp opts out of gemv_xs_kernel (choose_gemv)
  int gemv_ctas = 0;                       // GPTOSS_CUDA_GEMV_CTAS (1..8): CTAs a SM of the persistent GEMV grids (0: all that fit)
  enum class AttnDecode { Auto, Simt, Mma };
  AttnDecode attn_decode = AttnDecode::Auto;  // GPTOSS_CUDA_ATTN_DECODE=mma / =simt: tensor-core / SIMT decode attention
  enum class Gemm { Auto, Mma, Wgmma };
  // GPTOSS_CUDA_GEMM=auto|mma|wgmma (unset: this default): Auto picks the GEMM tile per problem, mma / wgmma
  // force one tile for every problem (A/B; gemm_tile_kind). Auto since its run on an H200 at d91b169 (prefill
  // 20b 512 +5.6%, 2048 +14.7%, 120b +2.7% / +4.0% against Mma; gpu_check 226/0); Mma is the one-line revert.
  Gemm gemm = Gemm::Auto;
  int moe_stream_tokens = 0;               // GPTOSS_CUDA_MOE_STREAM_TOKENS=16|32: the streaming MoE's rows a CTA (0: policy)
  // GPTOSS_CUDA_MOE_ACT=bf16 (probe, per call): the grouped MoE GEMM on wgmma multiplies its activations as bf16 (their hi
  // half alone) instead of hi + lo: half the tensor-core work, activations rounded to 8 bits of mantissa. A/B only.
  bool moe_act_bf16 = false;
  int moe_stream_max = 0;  // GPTOSS_CUDA_MOE_STREAM_MAX=1..128: the top of Hopper's stream band in rows an expert (0: shapes.h kMoeStreamAutoMaxPerExpert; A/B)
  int gemv_max_tokens = 0;                 // GPTOSS_CUDA_GEMV_MAX_TOKENS (1..8): dense problems of up to this many rows on the GEMV (0: gemv_max_tokens())
  enum class MoeStreamTma { Auto, Off, On };
  MoeStreamTma moe_stream_tma = MoeStreamTma::Auto;  // GPTOSS_CUDA_MOE_STREAM_TMA=0|1: the streaming MoE's TMA kernel off / on where it runs
  int gemm_splitk = 0;                     // GPTOSS_CUDA_GEMM_SPLITK (1..8): K splits of a dense wgmma problem (0: policy; 1: off)
  bool gemm_ws = kGemmWsDefault;           // GPTOSS_CUDA_GEMM_WS=1|0: the grouped MXFP4 problems on the wgmma tile's warp-specialized kernel or not (A/B)
  // GPTOSS_CUDA_ROUTER_CLUSTER=1 (A/B, off: +1.0% e2e over the one-pass top-k alone on an H100, but racecheck flagged
  // its remote store; the fixed kernel has not run on a GPU yet): add+norm+router's blocks of a token as one
  // thread-block cluster that hands the logits to rank 0 through distributed shared memory (router_uses_cluster)
  bool router_cluster = false;
  // GPTOSS_CUDA_MOE_ACT_FRAGS=1 (A/B): the one-token MoE on the decode layout has gate_up's epilogue write act as the down
  // kernel's B fragments (bf16 hi + lo, in build_frags' order), which down copies instead of building (same bits)
  bool moe_act_frags = false;
  // GPTOSS_CUDA_LOGPROBS=device (A/B; off until it has run on a GPU): token log-probabilities' row statistics on the
  // device (logprobs.cu, a block a row) instead of the row copied back and reduced on the host (the default, measured)
  bool logprobs_device = false;
  // GPTOSS_CUDA_ROUTER_RANK=1|0 (default on since the 31st session: +1.6% e2e, H100): the router's top-k in one pass where
  // E fits a warp (router_select_rank: every lane ranks its logit against all E) instead of k rounds of shuffles; same results
  bool router_rank = true;
  // GPTOSS_CUDA_MOE_STAGED=1|2|3 (A/B; off until it has run on a GPU): the one-token MoE on the decode layout through
  // persistent CTAs whose warps take each tile's words from shared memory into registers as soon as they land and
  // refill the slot at once (moe_staged_kernel), with this many slots a warp; GPTOSS_CUDA_MOE_STAGED_CTAS caps its
  // grid (0: every CTA that fits the device; tests use a few, so that each CTA walks many units)
  int moe_staged = 0;
  int moe_staged_ctas = 0;
  static GpuKnobs from_env();
};
// The process's knobs: from_env() on first use, except GPTOSS_CUDA_MOE_DECODE, GPTOSS_CUDA_MOE_BF16,
// GPTOSS_CUDA_MOE_BATCH, GPTOSS_CUDA_MOE_GROUP, GPTOSS_CUDA_GEMV, GPTOSS_CUDA_GEMV_CTAS, GPTOSS_CUDA_ATTN_DECODE, GPTOSS_CUDA_GEMM, GPTOSS_CUDA_GEMM_SPLITK and
// GPTOSS_CUDA_MOE_STREAM_TOKENS, GPTOSS_CUDA_MOE_STREAM_TMA, GPTOSS_CUDA_MOE_STREAM_MAX, GPTOSS_CUDA_MOE_ACT,
// GPTOSS_CUDA_GEMV_MAX_TOKENS, GPTOSS_CUDA_GEMM_WS, GPTOSS_CUDA_ROUTER_CLUSTER, GPTOSS_CUDA_MOE_ACT_FRAGS, GPTOSS_CUDA_ROUTER_RANK,
// GPTOSS_CUDA_MOE_SLICE, GPTOSS_CUDA_MOE_STAGED, GPTOSS_CUDA_MOE_STAGED_CTAS and GPTOSS_CUDA_LOGPROBS
// read at each call (gpu_check and the kernel bench switch the variant between calls).
GpuKnobs knobs();

// ---- the GEMM tile (linear prefill, grouped MoE): which kernel carries out a problem ----
// MmaSync: gemm_tile.cu (NVIDIA, where bf16 mma.sync was compiled); Mfma: native/hip/gemm_tile_mfma.hip
// (AMD CDNA, where MFMA was compiled); Wgmma: gemm_wgmma.cu (issue 12 item 4; sm_90a) where the device
// runs an sm_90a image (wgmma compiled) and a block gets the tile's shared memory at its largest K; None:
// no tensor-core image for the device.
// Per problem (GPTOSS_CUDA_GEMM unset; the H100 run at 98332a8, bench/RESULTS.md "Prefill GEMMs on
// wgmma"): a dense problem (linear: q/k/v in one launch, o, Q8_0 chunks, the LM head over a step's
// rows) past the GEMV's (gemv_max_tokens) takes Wgmma (1.5-1.9x the mma.sync tile at 512 and 2048
// rows; from 64 rows until the 16th session, when a 24-layer 20b decode step at 16 / 32 / 48 streams ran
// 8.3 / 9.3 / 10.8 ms on the mma.sync tile and 6.8 / 7.8 / 8.7 ms on wgmma with its split-K, H100; shapes.h
// kGemvWgmmaMaxTokens for 5-8 rows); the grouped MoE GEMMs take Wgmma only when the routed rows average at least
// kWgmmaMoeMinRowsPerExpert an expert (n k >= that x E: the host does not know the real counts at
// dispatch, they stay on the device), mma.sync below (the wgmma op lost 4-19% at 64 rows an expert and
// 1.7x at 16, won 10% at 256). GPTOSS_CUDA_GEMM=mma: the mma.sync tile everywhere (the default before);
// =wgmma: the wgmma tile everywhere it can run; =auto: per problem. Everything not sm_90a (and AMD) is
// unchanged by any of them.
// The choice is a pure function of the problem's shape, taken at launch: a captured graph (a batch
// bucket's padded step) holds the choice for that bucket's shapes.
enum class GemmTileKind { None, MmaSync, Mfma, Wgmma };
constexpr int kWgmmaMoeMinRowsPerExpert = 128;  // one full 128-row wgmma block an expert on average
// Whether the wgmma tile can run on the device: an sm_90a image (NVIDIA) and the 64-row tile's shared
// memory at the largest K the tile takes within a block's (it always is on sm_90: ~145 KB).
bool wgmma_tile_runs(const GpuCaps& caps);
// Split-K of a dense bf16 problem on the wgmma tile (gemm_wgmma.cu; 14th session): a decode batch's q/k/v
// and o at 64-128 rows are 40 and 23 column tiles of one row tile, so 40 and 23 of the 132 SMs each streamed
// a 128-column slice of the weights over the whole K (the 64-stream step's q/k/v + o: 73.5 us a layer on an
// H100 for 53 MB, 0.72 TB/s). `splits` blocks (one thread-block cluster) share a tile, each a slice of K,
// and sum their partial tiles through distributed shared memory in a fixed order. Policy: as many splits
// as fill the SMs once (sm_count / tiles), at least kSplitMinSteps K steps (64 wide) a block, at most
// wgmma::kMaxSplits; 1 (no cluster) where the tiles already fill the GPU (prefill, the LM head). The knob
// forces a count (1: off) up to the K steps. A pure function of the shape: a captured graph holds it.
// Measured on an H100 (14th session, bench/RESULTS.md): q/k/v + o at 64 rows 76 -> 60 us, at 128 rows 119 -> 75
// us; the 24-layer 20b step at 64 streams 11.7 -> 11.3 ms, at 128 streams 16.5 -> 15.7 ms.
constexpr int kSplitMinSteps = 8;
// resident(s): the clusters of s split blocks resident at once on the device (cudaOccupancyMaxActiveClusters;
// < 0 where unknown). Given, the policy takes the largest count up to the rule above whose clusters all run in one
// wave (resident(s) >= tiles): a cluster left for a second wave doubles the call (H100, 15th session: 3 splits
// give 39 resident clusters for q/k/v's 40 tiles, 5 give 22 for o's 23).
int wgmma_dense_splits(const GpuCaps& caps, const GpuKnobs& k, int tiles, int k_steps,
                       const std::function<int(int)>& resident = {});
// The grouped MXFP4 problems (the MoE's gate_up and down) that the wgmma tile carries: its warp-specialized kernel
// (gemm_wgmma_ws_kernel, 21st session: two producer warpgroups copy and decode, the consumer warpgroups only issue
// wgmma, meeting at mbarriers; no block barrier in the K loop) where a block gets its ring of whole stages, decoded
// W included, and the block's scales (bm 128: K <= 4,448 within 227 KB; the 20b and 120b have K = 2,880), when
// GPTOSS_CUDA_GEMM_WS=1 (kGemmWsDefault when unset); else the kernel with every thread in every role.
bool wgmma_grouped_ws(const GpuCaps& caps, const GpuKnobs& k, int bm, int K);
// A dense problem of `rows` rows (one group).
// Dense problems of up to this many rows take the GEMV (choose_linear, choose_linear_q8): GPTOSS_CUDA_GEMV_MAX_TOKENS,
// else kGemvWgmmaMaxTokens where the wgmma tile runs and kGemvMaxTokens elsewhere.
int gemv_max_tokens(const GpuCaps& caps, const GpuKnobs& k);
GemmTileKind gemm_tile_kind(const GpuCaps& caps, const GpuKnobs& k, int64_t rows);
GemmTileKind gemm_tile_kind(const GpuCaps& caps, int64_t rows);  // with knobs()
// The grouped MoE GEMMs (gate_up + SwiGLU, down) of n tokens routed to experts_per_token of E experts.
GemmTileKind moe_gemm_tile_kind(const GpuCaps& caps, const GpuKnobs& k, int n, int experts_per_token, int E);
GemmTileKind moe_gemm_tile_kind(const GpuCaps& caps, int n, int experts_per_token, int E);  // with knobs()

// ---- linear: out[n, N] = x[n, K] W^T ----
// Gemv for n <= gemv_max_tokens, the GEMM tile above (where a tile kernel was compiled), Naive when the
// row length does not allow 16-byte loads or no tensor-core GEMM runs on the device.
enum class LinearPath { Gemv, Gemm, Naive };
LinearPath choose_linear(const GpuCaps& caps, int n, int K, bool mxfp4);
// Q8_0 weights (q8.cuh; K % 32 == 0): Gemv up to gemv_max_tokens tokens, and above where no
// tensor-core tile runs (kGemvMaxTokens at a time); Gemm (dequantized chunks through the bf16 tile) above.
LinearPath choose_linear_q8(const GpuCaps& caps, int n);

// ---- the decode GEMV kernels (a launch of at most kGemvMaxTokens tokens, matmul.cu / q8.cu) ----
// Row1: gemv1_bf16_kernel (bf16, one token: x staged in shared memory, every chunk of a warp's row in
// flight, next row prefetched; the verified default). Warp: gemv_kernel / q8_gemv_kernel (a warp a
// row, x re-read from L1 for every 16 or 32 weight bytes and every token; where Xs does not apply, and
// everywhere under GPTOSS_CUDA_GEMV=warp). Xs: gemv_xs_kernel (issue 12 item 2, issue 15; the default for
// Q8_0 at 1..8 tokens and bf16 at 2..8 since the H200 run at 076961b: gpu_check --gemv 165/0, Q8_0 LM head
// 24% -> 96% of copy, bf16 LM head n4 38% -> 69%): Row1's structure for 1..8 tokens and for Q8_0 too (x of
// every token staged in shared memory once a CTA, conflict-free; a Q8_0 block's 32 int8 widened once with
// byte permutes for all tokens, no I2F), bounded by K <= kGemvXsMaxK and the tokens' x fitting a block's
// shared memory. NVIDIA only: the HIP build keeps the Warp/Row1 kernels.
enum class GemvFormat { BF16, MXFP4, Q8 };
enum class GemvKernel { Row1, Warp, Xs };
GemvKernel choose_gemv(const GpuCaps& caps, const GpuKnobs& k, GemvFormat f, int n, int K, bool x_aligned);
// CTAs a SM of a persistent GEMV grid (Row1, Xs): `fit` (the occupancy), or fewer when
// GPTOSS_CUDA_GEMV_CTAS asks (a grid that leaves room on each SM lets the next kernel's CTAs become
// resident and prefetch their weights under programmatic dependent launch).
int gemv_ctas_per_sm(const GpuKnobs& k, int fit);

// ---- attention ----
// Decode: split-KV SIMT kernel (n <= 4, D = 64, both vendors); Flash: mma.sync (D = 64, where
// compiled); FlashMfma: MFMA (D = 64, AMD CDNA where compiled: native/hip/attention_mfma.hip); Naive.
enum class AttentionPath { Flash, FlashMfma, Decode, Naive };
AttentionPath choose_attention(const GpuCaps& caps, int n, int Hq, int Hkv, int D);
// The device's flash kernel (D = 64): FlashMfma on CDNA, Flash where mma.sync was compiled, else Naive.
AttentionPath flash_path(const GpuCaps& caps);
// Splits of the decode kernel, fixed by (ctx, window) so a captured graph stays valid.
int attention_decode_splits(const GpuKnobs& k, int ctx, int sliding_window);
// Splits of the decode kernel in a paged batch step of `pairs` (token, kv head) pairs: those of
// attention_decode_splits, fewer when the pairs alone give every SM a few blocks (a split is a
// partial to write and merge). Fixed by the shape, so a graph of one batch bucket stays valid.
int attention_paged_splits(const GpuKnobs& k, int ctx, int sliding_window, int pairs, int sms);
// The tensor-core decode kernel (attention.cu, "decode mma") for a call of `seqs` decoding sequences: where
// mma.sync was compiled, at most kDecodeMmaMaxG query heads a kv head (the heads are the MMA's rows 0..7, their
// bf16 remainders rows 8..15), and a cache whose V is 16-bit (V is the ldmatrix.trans operand of P V: bf16, f16,
// f32k-f16v; an f32 cache keeps the SIMT kernel); GPTOSS_CUDA_ATTN_DECODE=mma asks for it, =simt refuses it, and
// unset it runs on Hopper for a decode batch of at least kDecodeMmaAutoMinSeqs sequences (H100, 15th session: the
// 24-layer 20b step at 64 / 128 streams 10.0 -> 9.7 ms and 13.3 -> 12.9 ms), and for a one-sequence call whose keys
// `span` (its cache's rows, or its window's if shorter; 0 for a paged call) reach kDecodeMmaAutoMinSpan: the
// full-attention layers of a long cache (H100, 26th session, with the one-pass merge and 32 splits: 20b decode at
// context 8192 +3.5-4%; at 2048 and 512 the SIMT kernel is as fast or faster). False: the SIMT split-KV kernel runs.
constexpr int kDecodeMmaAutoMinSeqs = 64;
constexpr int kDecodeMmaAutoMinSpan = 4096;
bool attention_decode_uses_mma(const GpuCaps& caps, const GpuKnobs& k, int Hq, int Hkv, bool f32_values, int seqs = 1,
                               int span = 0);
// Its splits, fixed by (ctx, window) so a captured graph stays valid: one 64-key tile a split up to
// k.attn_mma_splits (default 32: at 8k keys 8 kv heads x 32 = 256 CTAs of 4 tiles; H100, 26th session, f32k-f16v:
// 8k keys 21 us at 64 splits, 18 at 32, 20 at 16; 32k 45 / 42 / 62 us);
// a window of at most 4 tiles is one split (no partials, no merge), as the SIMT kernel's.
int attention_decode_mma_splits(const GpuKnobs& k, int ctx, int sliding_window);

// ---- router and MoE ----
bool router_uses_split(const GpuCaps& caps, int n, int E);
// Whether add+norm+router's split blocks of a token (router_uses_split) run as one cluster (sm_90+: clusters and PDL; at most
// kRouterClusterMax blocks, the portable cluster size): asked for by GPTOSS_CUDA_ROUTER_CLUSTER=1.
bool router_uses_cluster(const GpuCaps& caps, const GpuKnobs& k, int n, int E);
bool moe_uses_decode(int n, int k);
// The decode MoE kernels: Mma (bit-placed E2M1 bf16 mma.sync, the default where mma.sync is
// compiled), MmaPrmt (prmt tables), MmaFp8 (e4m3 mma.sync: the default where it is native, sm_89 and
// sm_12x, on request elsewhere where compiled), Mfma (AMD CDNA where MFMA was compiled:
// native/hip/moe_decode_mfma.hip; the NVIDIA variants are never picked there, nor Mfma on NVIDIA),
// Simt (LUT kernels: no tensor cores, shapes whose fragments do not fit, too many (token, tile)
// counters, or GPTOSS_CUDA_MOE_DECODE=simt). MmaRelaid: Mma's kernels on experts in the decode layout
// (mxfp4_layout.h), the only kernel for such experts (decode_layout). MmaMxf8: MmaFp8's kernels on the block-scaled
// MMA (sm_120a; the default where caps.mma_block_scale, which needs its device self-test passed; on request where
// e4m3 mma.sync is compiled, through an emulation of the instruction).
enum class MoeDecodeKind { Mma, MmaPrmt, MmaFp8, Simt, MmaRelaid, Mfma, MmaMxf8 };
MoeDecodeKind choose_moe_decode(const GpuCaps& caps, const GpuKnobs& k, int n, int H, int I, bool decode_layout = false);
// Whether a layer's experts (hidden H, intermediate I) are re-laid into the decode layout at upload
// (Backend::prepare_experts): asked for (GPTOSS_CUDA_MOE_DECODE=mma-relaid) or Hopper's default (the knob
// unset; measured on an H100, 14th session), mma.sync compiled, and every decode shape of the layer runs on the MmaRelaid kernels
// (rows of 16-row tiles, fragments and shared memory as Mma's, the last-block counters at the most
// tokens the decode path takes), since nothing else reads that layout but the grouped GEMM tile.
bool moe_decode_layout(const GpuCaps& caps, const GpuKnobs& k, int H, int I);
// bf16 experts (loadModel's experts: 'bf16'; [E, out, in] rows): Gemv = moe_bf16.cu's SIMT GEMVs over
// the routed experts (any arch: few (token, expert) pairs as moe_uses_decode, and every shape where no
// tensor-core tile was compiled); Grouped = launch_moe_grouped over the bf16 GEMM tile. The knob forces
// one where it can run (Grouped needs a tile kernel).
enum class MoeBf16Path { Gemv, Grouped };
MoeBf16Path choose_moe_bf16(const GpuCaps& caps, const GpuKnobs& k, int n, int experts_per_token);
// MXFP4 experts with more (token, expert) pairs than the decode kernels take (moe_uses_decode false):
// GroupedMma = launch_moe_group_mma (the decode MMA kernels over expert groups of <= 4 or 8 pairs: each
// expert read once a group; a batched decode step's few tokens an expert), where those
// kernels fit, the experts are in the checkpoint's layout and the pairs average at most
// kMoeGroupMaxPerExpert (4) an expert; Gemm = launch_moe_grouped (the GEMM tile: prefill and larger
// batched steps). The knob forces one where it can run.
// Stream = launch_moe_stream (moe_stream.cu: each expert's packed weights streamed once for each 16 of its
// rows through a ring of stages, filled by cp.async or the TMA unit; issue 11): the default on Hopper for decode
// batches of more than kMoeStreamAutoMinPerExpert and at most kMoeStreamAutoMaxPerExpert routed rows an expert on
// average (measured there: shapes.h), and for every batch up to that top when the experts are in the decode layout
// (Hopper's default, which the grouped decode kernels cannot read; 16th session); on request (GPTOSS_CUDA_MOE_BATCH=stream) wherever it runs (moe_stream_stages > 0, the
// checkpoint layout, NVIDIA) up to kMoeStreamMaxPerExpert (128) rows an expert (a larger prefill keeps the tile).
enum class MoeBatchPath { GroupedMma, Gemm, Stream };
// Ring stages of the streaming MoE kernel on this device for rows of nch MX blocks: kMoeStreamShallowStages
// where three CTAs of that size fit an SM's shared memory (sm_90: 3 x 67 KB), else kMoeStreamDeepStages where
// two fit, else kMoeStreamShallowStages where one fits, else 0 (does not run: no bf16 mma.sync, AMD, or too
// little shared memory). moe_stream_deep_stages: kMoeStreamDeepStages where one such CTA fits and the kernel
// runs at all (GPTOSS_CUDA_MOE_STREAM_STAGES=5), else 0.
int moe_stream_stages(const GpuCaps& caps, int nch);
// The wide streaming MoE (kMoeStreamWideTokens rows a CTA, moe_stream.cu): kMoeStreamShallowStages where two of
// its CTAs fit an SM (sm_90: 2 x 97 KB at the 20b's 90 MX blocks) and the narrow kernel runs, else 0.
int moe_stream_wide_stages(const GpuCaps& caps, int nch);
// The streaming MoE's routed rows a CTA for `pairs` (token, expert) pairs over E experts of hidden H, intermediate
// I: kMoeStreamWideTokens where it runs and GPTOSS_CUDA_MOE_STREAM_TOKENS=32 asks for it, or (unset) on Hopper from
// kMoeStreamWideAutoMinPerExpert rows an expert on average (where an expert's rows would take two narrow CTAs, each
// decoding the same weights); else kMoeStreamTokens (=16 forces it).
int moe_stream_tokens(const GpuCaps& caps, const GpuKnobs& k, int64_t pairs, int E, int H, int I);
int moe_stream_deep_stages(const GpuCaps& caps, int nch);
// Whether the streaming MoE runs its TMA kernel (16th session; moe_stream.cu moe_stream_tma_kernel): the ring filled
// by the TMA unit (the weights as one tensor-map box a stage, the tile's packed activations as one bulk copy)
// completing on mbarriers, no CTA barrier in the K loop. Where the image has TMA (sm_90+, caps.bulk_async) and the ring
// (`stages`: shallow, or deep on request) fits as many CTAs an SM as the cp.async kernel's with its 1 KB of alignment.
// Both widths by default since the 17th session's packed activations (H100, the MoE op of a 20b layer, TMA against
// cp.async: narrow 16 / 64 / 128 streams 0.172-0.181 / 0.201-0.204 / 0.280-0.292 ms against 0.218-0.229 / 0.266-0.271 /
// 0.378-0.389; wide at 128 streams 0.276-0.284 against 0.364-0.369; bench/RESULTS.md, "Seventeenth session"). Until
// then the wide TMA kernel, with 64 one-row activation copies a stage, was 17-26% slower than its cp.async twin.
// GPTOSS_CUDA_MOE_STREAM_TMA=0 keeps the cp.async ring everywhere, =1 asks for TMA wherever it fits.
bool moe_stream_uses_tma(const GpuCaps& caps, const GpuKnobs& k, int nch, int tokens, int stages);
// A decode-sized MoE call (moe_uses_decode) through the streaming kernels as well (launch_moe_stream): only on
// request (GPTOSS_CUDA_MOE_DECODE=stream; slower than the decode kernels there: H100, 0.095 against 0.038 ms a
// 20b layer at one token; on the decode layout with the TMA kernel, 17th session, 0.048 against 0.034 at 1 token,
// 0.094-0.097 against 0.102-0.105 at 4), where they run, MXFP4 experts in either layout. The decode kernels otherwise
// (choose_moe_decode).
bool moe_decode_uses_stream(const GpuCaps& caps, const GpuKnobs& k, int E, int H, int I);
MoeBatchPath choose_moe_batch(const GpuCaps& caps, const GpuKnobs& k, int n, int experts_per_token, int E, int H, int I,
                              bool decode_layout);
// Pairs a GroupedMma group: 4; the knob (GPTOSS_CUDA_MOE_GROUP=8) asks for 8 (two B column sets share
// each decoded weight fragment) where 8 tokens' fragments fit the CTA's shared memory.
int moe_group_tokens(const GpuCaps& caps, const GpuKnobs& k, int n, int experts_per_token, int E, int H, int I);
// Ring stages of the FP8 kernels on this device: 3, else 2, else 0 (do not fit).
int moe_fp8_stages(const GpuCaps& caps, int H, int I);
// The same for MmaMxf8 (the FP8 kernels on the block-scaled MMA: 16 more bytes a block of shared memory).
int moe_mxf8_stages(const GpuCaps& caps, int H, int I);

// ---- the GEMM tile (linear prefill, grouped MoE) ----
// Rows of an M tile for groups of about rows_per_group rows: 128, 64 or 32, the largest whose shared
// memory the device gives a block (for the device's gemm_tile_kind); the wgmma tile: 128 or 64 (one
// m64 accumulator a warpgroup).
int gemm_tile_rows(const GpuCaps& caps, GemmTileKind kind, int64_t rows_per_group, bool mxfp4, int K);
int gemm_tile_rows(const GpuCaps& caps, int64_t rows_per_group, bool mxfp4, int K);  // a dense problem's kind (knobs())

// ---- launches ----
bool use_pdl(const GpuCaps& caps, const GpuKnobs& k);

}  // namespace gptoss::cuda
