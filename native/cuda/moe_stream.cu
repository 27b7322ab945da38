// The streaming grouped MoE GEMMs of a batched decode step (issue 11; the default on Hopper from 17 to 1,024
// tokens of the 20b since the twentieth session: decode batches and prefill chunks, policy.cpp choose_moe_batch;
// GPTOSS_CUDA_MOE_BATCH=stream forces it). A decode batch
// routes few rows to each expert (64 streams x top-4 over 32 experts: ~8 an expert) and touches every expert, so the step is the stream of all the experts' packed
// MXFP4 bytes (282 MB gate_up + 141 MB down a layer of the 20b); the GEMM tile (gemm_tile.cu) read them at
// 0.75-0.83 TB/s (call 1, H100: latency-bound, the same time at 64 and 128 streams). This kernel is built
// around the bytes in flight instead:
//  - A CTA owns kMoeStreamRows (128) weight rows of one expert over the whole K: 8 warps x 16 rows, the
//    weights as the A operand of mma.sync m16n8k16 (bf16 in, f32 accumulate), the expert's routed rows as
//    N: 4 tokens an n-tile, B column 2i the token's bf16 hi half and 2i + 1 its lo half (the f32 activation
//    split once: f32-accurate products, as the GEMM tile), kMoeStreamTokens (16) of them a CTA: grid.y runs
//    the (expert, 16 rows) tiles of tile_start (moe_scan_kernel with 16 rows a tile), so an expert with 17..32
//    rows has two CTAs a row block, launched side by side (grid.x, the row blocks, is the fast index): the
//    second reads the rows while the first brings them into L2.
//  - A ring of `S` stages (3, three CTAs an SM, where they fit; 5 with two on request), each kMoeStreamKc (4) MX blocks
//    of K: the packed weights [kc][128 rows][16 B] (ldmatrix rows adjacent: conflict-free) and the pass's
//    tokens' bf16 halves of those 128 K values, all by 16-byte cp.async; S - 1 stages in flight. Measured
//    (H100/H200, 12th session): issue- and latency-bound (ALU pipe ~58%: the E2M1 decode's PRMT/LOP/SHF), not
//    by bytes in flight: 3 stages at three CTAs an SM beat 5 at two by 3-7%.
//  - The CTA's E8M0 scales [128][K/32] are loaded once into shared memory.
//  - ldmatrix.x4 hands lane (g, t) word t of rows g and g + 8 of two MX blocks: the 8 values 8t .. 8t+7 of
//    each row. The MMA's k order inside a block is permuted the same way on both operands (a dot product
//    does not depend on it): k slots (2t, 2t+1, 2t+8, 2t+9) of the k16 step s take values 8t + 4s + 0..3,
//    so a lane's B fragments are one 16-byte shared load of its token's values 8t .. 8t+7.
//  - E2M1 -> bf16 by prmt byte tables and one bf16x2 multiply by the row's scale (the GEMM tile's decode,
//    exact), per block and lane: two words. kRelaid (experts in the decode layout, mxfp4_layout.h;
//    GPTOSS_CUDA_MOE_DECODE=mma-relaid): the bit-placed operands (v x 2^-126, natural pairs) by masks and
//    rotations, 9 ALU ops a word instead of 17, and the same one multiply, by 2^(s-1) instead of 2^(s-127):
//    exact, as bf16 holds 2^(s-1) for every s <= 128. A CTA whose scales include one above 128 (weights
//    above 2 x E2M1: none in the published checkpoints) multiplies twice (x 2^126, then x 2^(s-127): the
//    plain path's product), a CTA-uniform branch.
//  - The K loop is compiled per (n-tiles 1..4, scale path): both are CTA-uniform, so no per-block select or
//    per-tile guard is left in it (14th session; the scale's bf16x2 is one multiply-add, placed_scale_bf16x2),
//    and its scale addresses are worked out once (scale_offset is affine in the block).
//  - Epilogues: gate_up: bias, then the clamped SwiGLU of the interleaved (gate, up) rows (lanes g and g^1),
//    written as bf16 hi + lo [slots, I] (the down GEMM's A); down: f32 + bias -> y [slots, H] (the grouped
//    path's layout; moe_unpermute_kernel then sums a token's k rows with the routing weights in fixed order).
#include "moe.cuh"

#if !defined(GPTOSS_HIP)
#include <cuda.h>  // CUtensorMap (the encoder is the driver's, found through the runtime: no libcuda link)
#include <cudaTypedefs.h>
#endif

#include "bulk_copy.cuh"
#include "gemm_tile.cuh"  // split_bf16
#include "policy.h"
#include "mma.cuh"
#include "moe_stream_layout.h"
#include "mxfp4_layout.h"

namespace gptoss::cuda {

namespace {

constexpr int kRows = kMoeStreamRows, kThreads = kMoeStreamThreads, kKc = kMoeStreamKc;
constexpr int kActRow = kMoeStreamActRow;
static_assert(kThreads == 8 * 32 && kRows == 8 * 16, "8 warps of 16 weight rows");
static_assert(kKc % 2 == 0, "ldmatrix.x4 takes two MX blocks at a time");
static_assert(kMoeStreamTokens == 16 && kMoeStreamWideTokens == 32, "the K loop is compiled for 1..4 n-tiles (narrow) and 2, 4, 6, 8 (wide)");
static_assert(kActRow % 128 == 64, "adjacent (token, half) rows at a 64-byte bank offset: conflict-free B loads");

#if defined(GPTOSS_HAVE_MMA_SYNC)
// One stage's MMAs of a warp (both kernels): `ldsm` the lane's ldmatrix.x4 addresses of the stage's block pairs
// (0, 1) and (2, 3) (its 16 rows; the ring's layout or the TMA kernel's swizzled one), `act` the lane's B
// fragments of n-tile 0, block 0 (mstream::bfrag_offset in the stage), sc_kt the scale of row rl of the stage's
// first block (block b: sc_kt[b sc_step], row rl + 8: + sc_b). kFull: all kKc blocks inside K, else the first nb.
template <bool kRelaid, bool kBig, int NT, bool kFull, int kTiles>
__device__ __forceinline__ void stream_stage_mmas(float (&acc)[kTiles][4], const uint32_t (&ldsm)[kKc / 2], const uint8_t* act,
                                                  const uint8_t* sc_kt, int sc_step, int sc_b, int nb) {
  static_assert(NT <= kTiles, "n-tiles run within the accumulators");
#pragma unroll
  for (int bp = 0; bp < kKc; bp += 2) {
    if (!kFull && bp >= nb) break;
    uint32_t r[4];  // r[2h]: word t of row g, r[2h + 1]: of row g + 8, block bp + h
    ldsm_x4_s(r, ldsm[bp / 2]);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int b = bp + h;
      if (!kFull && b >= nb) break;
      const uint32_t sa = sc_kt[b * sc_step], sb = sc_kt[b * sc_step + sc_b];
      uint32_t oa[4], ob[4];  // pairs (0,1) (2,3) (4,5) (6,7) of the lane's values 8t .. 8t+7
      uint32_t sca, scb;
      if constexpr (kRelaid) {
        mxlayout::decode_word(r[2 * h], oa);  // x 2^-126
        mxlayout::decode_word(r[2 * h + 1], ob);
        if constexpr (kBig) {  // back to the plain values (exact), then 2^(s-127) as the prmt path's
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            oa[i] = bf16x2_mul(oa[i], 0x7E807E80u);
            ob[i] = bf16x2_mul(ob[i], 0x7E807E80u);
          }
          sca = mxlayout::e8m0_bf16x2(sa), scb = mxlayout::e8m0_bf16x2(sb);
        } else {
          sca = mxlayout::placed_scale_bf16x2(sa), scb = mxlayout::placed_scale_bf16x2(sb);
        }
      } else {
        e2m1_word_to_bf16(r[2 * h], oa);
        e2m1_word_to_bf16(r[2 * h + 1], ob);
        sca = mxlayout::e8m0_bf16x2(sa), scb = mxlayout::e8m0_bf16x2(sb);
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        oa[i] = bf16x2_mul(oa[i], sca);
        ob[i] = bf16x2_mul(ob[i], scb);
      }
      uint32_t af[2][4];  // k16 step ks: values 8t + 4ks + 0..3 (mstream::a_pair / a_row8)
#pragma unroll
      for (int ks = 0; ks < 2; ++ks)
#pragma unroll
        for (int i = 0; i < 4; ++i) af[ks][i] = mstream::a_row8(i) ? ob[mstream::a_pair(ks, i)] : oa[mstream::a_pair(ks, i)];
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        // B column g of n-tile j: token 4j + g/2, half g & 1 = stage row 8j + g; values 8t .. 8t+7
        // (mstream::bfrag_offset(j, g, t, b) = the lane's offset + its (j, b) part)
        const uint4 bv = *reinterpret_cast<const uint4*>(act + 8 * j * kActRow + b * 64);
        const uint32_t b0[2] = {bv.x, bv.y}, b1[2] = {bv.z, bv.w};
        mma_bf16_16816(acc[j], af[0], b0);
        mma_bf16_16816(acc[j], af[1], b1);
      }
    }
  }
}

// The epilogue of both kernels: lane (g, t) of n-tile j holds rows na = n0 + rl (c0 hi + c1 lo) and na + 8
// (c2 + c3), token 4j + t of the CTA's slots c0 ..; ntok of them hold tokens, in ntiles n-tiles.
template <bool kSwiglu, int kTiles>
__device__ __forceinline__ void stream_epilogue(const MoeStreamProblem& p, const float (&acc)[kTiles][4], int e, int c0, int na,
                                                int ntok, int ntiles, int g, int t) {
  const int nb8 = na + 8;
  const float bias_a = na < p.N ? param_f32(p.bias, p.bias_bf16, int64_t(e) * p.N + na) : 0.f;
  const float bias_b = nb8 < p.N ? param_f32(p.bias, p.bias_bf16, int64_t(e) * p.N + nb8) : 0.f;
#pragma unroll
  for (int j = 0; j < kTiles; ++j) {
    if (j >= ntiles) break;  // warp-uniform
    const int tok = mstream::c_token(j, t);
    const int slot = c0 + tok;  // the f32 output's row (swiglu: the packed tile's row tok)
    float va = acc[j][0] + acc[j][1] + bias_a, vb = acc[j][2] + acc[j][3] + bias_b;
    if (kSwiglu) {
      // gate = even row, up = the odd row after it (transformers GptOssExperts): lane g ^ 1 (lane ^ 4)
      const float ua = __shfl_xor_sync(0xffffffffu, va, 4), ub = __shfl_xor_sync(0xffffffffu, vb, 4);
      if ((g & 1) || tok >= ntok) continue;
      // packed for the down projection's tile blockIdx.y (its K = N / 2): halves at rows 2 tok, 2 tok + 1
      const int kd = p.N / 2;
      if (na + 1 < p.N) {
        uint16_t hi, lo;
        split_bf16(swiglu(va, ua, p.limit, p.alpha), hi, lo);
        uint8_t* at = p.out_packed + mstream::packed_col_offset(blockIdx.y, tok, 0, na / 2, kd, 4 * kTiles);
        *reinterpret_cast<uint16_t*>(at) = hi;
        *reinterpret_cast<uint16_t*>(at + kActRow) = lo;
      }
      if (nb8 + 1 < p.N) {
        uint16_t hi, lo;
        split_bf16(swiglu(vb, ub, p.limit, p.alpha), hi, lo);
        uint8_t* at = p.out_packed + mstream::packed_col_offset(blockIdx.y, tok, 0, nb8 / 2, kd, 4 * kTiles);
        *reinterpret_cast<uint16_t*>(at) = hi;
        *reinterpret_cast<uint16_t*>(at + kActRow) = lo;
      }
    } else {
      if (tok >= ntok) continue;
      if (na < p.N) p.out[int64_t(slot) * p.N + na] = va;
      if (nb8 < p.N) p.out[int64_t(slot) * p.N + nb8] = vb;
    }
  }
}

// The CTA's expert (both kernels): grid.y runs the (expert, pass) tiles of tile_start, counted with kTok rows a tile;
// the expert is the last e with tile_start[e] <= tile (mstream::tile_expert), counted in one barrier over the E + 1
// entries, a load each, instead of a binary search's chain of dependent loads (with the scale loads, most of a CTA's
// start: ncu source counters, 15th session). -1 (CTA-uniform): past the last tile, nothing to do.
__device__ __forceinline__ int stream_expert(const MoeStreamProblem& p, int tid) {
  const int tile = blockIdx.y;
  if (p.E < kThreads) {
    const int at_or_below = __syncthreads_count(tid <= p.E && p.tile_start[tid] <= tile);
    return at_or_below > p.E ? -1 : at_or_below - 1;
  }
  return tile >= p.tile_start[p.E] ? -1 : mstream::tile_expert(p.tile_start, p.E, tile);
}

// The K loop compiled per (scale path, n-tiles) (both kernels): k_loop(big_c, nt_c) for the CTA's CTA-uniform
// `big` (kRelaid's scales above 128) and n-tile count nt_run (1..4 narrow; 2, 4, 6, 8 wide).
template <bool kRelaid, int kTok, class KLoop>
__device__ __forceinline__ void stream_k_loops(bool big, int nt_run, KLoop&& k_loop) {
  auto by_tiles = [&](auto big_c) {
    if constexpr (kTok == kMoeStreamTokens) {
      if (nt_run == 1) k_loop(big_c, std::integral_constant<int, 1>{});
      else if (nt_run == 2) k_loop(big_c, std::integral_constant<int, 2>{});
      else if (nt_run == 3) k_loop(big_c, std::integral_constant<int, 3>{});
      else k_loop(big_c, std::integral_constant<int, 4>{});
    } else {
      if (nt_run == 2) k_loop(big_c, std::integral_constant<int, 2>{});
      else if (nt_run == 4) k_loop(big_c, std::integral_constant<int, 4>{});
      else if (nt_run == 6) k_loop(big_c, std::integral_constant<int, 6>{});
      else k_loop(big_c, std::integral_constant<int, 8>{});
    }
  };
  if constexpr (kRelaid) {
    if (big) by_tiles(std::true_type{});
    else by_tiles(std::false_type{});
  } else {
    by_tiles(std::false_type{});
  }
}
#endif

// kTok: the CTA's routed rows (kMoeStreamTokens, or kMoeStreamWideTokens: two CTAs an SM, 128 registers).
template <bool kSwiglu, int S, bool kRelaid, int kTok>
__global__ void __launch_bounds__(kThreads, moe_stream_ctas_per_sm(S, kTok)) moe_stream_kernel(MoeStreamProblem p) {
#if defined(GPTOSS_HAVE_MMA_SYNC)
  constexpr int kStage = moe_stream_stage_bytes(kTok);
  extern __shared__ __align__(16) uint8_t smem[];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  // Programmatic dependent launch (launch.cuh): the routing (moe_route_kernel) is two launches back, complete
  // before this grid started, so the CTA's expert and its first stages' weights and scales are asked for before
  // pdl_wait(); the packed activations are the previous kernel's output (the pack kernel's, or gate_up's).
  const int e = stream_expert(p, tid);
  if (e < 0) {  // CTA-uniform; no CTA exits before its predecessor is done
    pdl_wait();
    return;
  }
  const int c0 = p.group_start[e] + (blockIdx.y - p.tile_start[e]) * kTok, s1 = p.group_start[e + 1];
  const int n0 = blockIdx.x * kRows;  // this pass's routed rows c0 .. and weight rows n0 ..
  if (c0 >= s1 || n0 >= p.N) {
    pdl_wait();
    return;
  }
  const int nch = p.K / 32, nkt = (nch + kKc - 1) / kKc;
  const int rows_here = min(kRows, p.N - n0);
  // scales as they lie in memory (mstream::scale_offset: [kRows][nch]; kRelaid [kRows / 16][nch][16])
  uint8_t* sc = smem + S * kStage;
  const uint8_t* wbase = p.w + int64_t(e) * p.N * nch * 16;

  // Stage kt: the weights' 16-byte chunks (row, block) in row-major order (a row's kc blocks adjacent in
  // memory), then the tokens' halves (row 2 * token + half of the stage: 8 chunks of 8 bf16 each). A
  // thread's chunks are the same ones every stage (chunk tid + i kThreads), only the K offset moves: their
  // sources and destinations are worked out once here, so a stage's copies cost an add and a compare each
  // (the per-chunk index arithmetic was ~a third of the kernel's instructions: ncu, H200, 12th session).
  // Chunk tid + i kThreads: the weights' block (tid % kKc) and activation chunk (tid % kChunks) are the same
  // for every i, the rows step by kThreads / kKc and kThreads / kChunks (an even count: the same half).
  constexpr int kWPer = kKc * kRows / kThreads;
  constexpr int kChunks = mstream::kActChunks;
  constexpr int kAPer = (2 * kTok * kChunks + kThreads - 1) / kThreads;
  constexpr int kWRowStep = kThreads / kKc, kARowStep = kThreads / kChunks;
  static_assert(kKc * kRows % kThreads == 0 && kThreads % kKc == 0, "whole weight chunks a thread, one block");
  static_assert(kThreads % kChunks == 0 && kARowStep % 2 == 0, "one activation chunk and half a thread");
  const int w_b = mstream::weight_chunk_block(tid), w_row = mstream::weight_chunk_row(tid);
  const int nkt_full = nch / kKc;  // stages whose kKc blocks are all inside K
  // A stage's copies (15th session): each thread's sources are pointers worked out once and advanced by a
  // stage's K each issue, and only the last stage of a K that is not a whole number of stages checks K. A copy
  // whose row is past N, or whose slot holds no token, is not made at all: its shared bytes are left as they
  // are, since a weight row only feeds its own C row and a B column its own C column, and neither is stored
  // (so are a partial last stage's blocks past K, which the loop skips). The stage slots rotate by offset (no
  // kt % S), and the copies and ldmatrix take 32-bit shared addresses from one conversion (the loop had
  // re-derived the shared window, the slot's address and each zero-fill source every stage: ~130 of its
  // ~290 instructions a stage were not the decode or the MMAs, SASS of cb1e8bd). The weights of the first S - 1
  // stages are issued before the scales are loaded (they depend on nothing the CTA reads), so the ring fills
  // while the scales' loads are in flight.
  const uint32_t smem_s = smem_addr(smem);
  const uint8_t* w_ptr[kWPer];
  bool w_ok[kWPer];
#pragma unroll
  for (int i = 0; i < kWPer; ++i) {
    w_ok[i] = w_row + i * kWRowStep < rows_here;
    w_ptr[i] = wbase + int64_t((n0 + min(w_row + i * kWRowStep, rows_here - 1)) * nch + w_b) * 16;
  }
  const uint32_t w_dst = uint32_t(mstream::weight_offset(w_row, w_b));
  auto issue_w = [&](int kt, uint32_t slot) {  // stage kt's weights (no commit)
    const uint32_t st = smem_s + slot;
    const bool wk = kt < nkt_full || kt * kKc + w_b < nch;
#pragma unroll
    for (int i = 0; i < kWPer; ++i) {
      if (w_ok[i] && wk) cp_async16_s_l2_256(st + w_dst + i * kWRowStep * 16, w_ptr[i]);
      w_ptr[i] += kKc * 16;
    }
  };
#pragma unroll
  for (int s = 0; s < S - 1; ++s)
    if (s < nkt) issue_w(s, uint32_t(s * kStage));

  // the CTA's scales, rows n0 .. n0 + rows_here: contiguous in both layouts (n0 and, in the decode layout,
  // N are multiples of 16). Where they lie in 16-byte chunks (every gpt-oss shape), by cp.async into the first
  // commit group with the first stages' weights, so their latency overlaps the ring's fill; otherwise by loads
  // here. Rows past N are not loaded (nor are their weights; their C rows are not stored). big: a scale above
  // 128 (kRelaid's one-multiply range), made CTA-uniform at a barrier before the K loop.
  bool big = false;
  const uint8_t* sc_src = p.scales + (int64_t(e) * p.N + n0) * nch;
  const int sc_cnt = rows_here * nch;
  const bool sc_async = (reinterpret_cast<uintptr_t>(sc_src) & 15) == 0 && (sc_cnt & 15) == 0;
  if (sc_async) {
    for (int i = tid; i < sc_cnt / 16; i += kThreads) cp_async16_s(smem_s + uint32_t(S * kStage + 16 * i), sc_src + 16 * i);
  } else {
    for (int i = tid; i < sc_cnt; i += kThreads) {
      const uint8_t v = __ldg(sc_src + i);
      sc[i] = v;
      if (kRelaid) big |= v > mxlayout::kPlacedScaleMax;
    }
  }

  pdl_wait();
  pdl_launch_dependents();
  {
    // ntiles: the n-tiles holding tokens; nt_run: those the K loop runs (the wide kernel's loop is compiled for
    // even counts: one more n-tile of stale bytes, its columns never stored)
    const int ntok = min(kTok, s1 - c0), ntiles = (ntok + 3) >> 2;
    const int nt_run = kTok == kMoeStreamTokens ? ntiles : (ntiles + 1) & ~1;

    // the tile's packed rows (moe.cuh MoeStreamProblem::a_packed): a thread's 16-byte chunks are at the same place
    // in every stage's run; rows of absent slots are not copied (their columns are never stored), and a partial
    // last stage's chunks past K are copied (packed rows are whole; the loop skips those blocks)
    const int a_ch = tid % kChunks, a_r = tid / kChunks;
    const int a_total = 2 * ntok * kChunks;
    const uint8_t* a_ptr = p.a_packed + mstream::packed_stage_offset(blockIdx.y, 0, p.K, kTok) + (a_r * kActRow + a_ch * 16);
    constexpr int kAStage = 2 * kTok * kActRow;  // a stage's run
    bool a_ok[kAPer];
#pragma unroll
    for (int i = 0; i < kAPer; ++i) a_ok[i] = tid + i * kThreads < a_total;
    const uint32_t a_dst = uint32_t(mstream::act_offset(a_r, a_ch));
    auto issue_a = [&](int kt, uint32_t slot) {  // stage kt's activations (no commit)
      const uint32_t st = smem_s + slot;
#pragma unroll
      for (int i = 0; i < kAPer; ++i)
        if (a_ok[i]) cp_async16_s(st + a_dst + i * kARowStep * kActRow, a_ptr + i * kARowStep * kActRow);
      a_ptr += kAStage;
    };
    // Commit groups: the first holds the weights of stages 0 .. S - 2 and stage 0's activations, group s (0 < s
    // < S - 1) stage s's activations, and every later one a whole stage, so waiting for stage kt's group
    // (cp_async_wait<S - 2>) still finds all of stage kt in place.
    auto issue = [&](int kt, uint32_t slot) {
      if (kt < nkt) {
        issue_w(kt, slot);
        issue_a(kt, slot);
      }
      cp_async_commit();
    };

    float acc[kTok / 4][4];
#pragma unroll
    for (int j = 0; j < kTok / 4; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[j][c] = 0.f;

#pragma unroll
    for (int s = 0; s < S - 1; ++s) {
      if (s < nkt) issue_a(s, uint32_t(s * kStage));
      cp_async_commit();
    }
    if (kRelaid && sc_async) {  // the first group (the scales with it) landed: look for a scale above 128
      cp_async_wait<S - 2>();
      __syncthreads();
      for (int i = tid; i < sc_cnt / 4; i += kThreads)
        big |= __vcmpgtu4(reinterpret_cast<const uint32_t*>(sc)[i], 0x01010101u * mxlayout::kPlacedScaleMax) != 0;
    }
    big = __syncthreads_or(big) != 0;
    const int rl = warp * 16 + g;  // this lane's first row in the CTA (and rl + 8)
    // Rows rl and rl + 8's scales of MX block kb: sc_a[kb * sc_step] and sc_a[kb * sc_step + sc_b]
    // (mstream::scale_offset, worked out once).
    const uint8_t* sc_a = sc + mstream::scale_offset(rl, 0, nch, kRelaid);
    const int sc_step = mstream::scale_offset(rl, 1, nch, kRelaid) - mstream::scale_offset(rl, 0, nch, kRelaid);
    const int sc_b = mstream::scale_offset(rl + 8, 0, nch, kRelaid) - mstream::scale_offset(rl, 0, nch, kRelaid);
    const uint32_t ldsm_lane = uint32_t(mstream::ldsm_offset(warp, 0, lane));
    const int bfrag_lane = mstream::bfrag_offset(0, g, t, 0);
    // One stage's MMAs (stream_stage_mmas): kFull, a stage of kKc blocks (every stage but a partial last one).
    auto stage = [&](auto big_c, auto nt_c, auto full_c, uint32_t slot, const uint8_t* sc_kt, int nb) {
      const uint32_t ldsm[kKc / 2] = {smem_s + slot + ldsm_lane, smem_s + slot + ldsm_lane + uint32_t(mstream::weight_offset(0, 2))};
      stream_stage_mmas<kRelaid, decltype(big_c)::value, decltype(nt_c)::value, decltype(full_c)::value>(
          acc, ldsm, smem + slot + bfrag_lane, sc_kt, sc_step, sc_b, nb);
    };
    // The K loop, compiled per (kBig, NT): the CTA's scale range and its n-tiles are CTA-uniform, so the loop
    // carries no per-block select between the two scale paths and no per-tile guard (in the PTX of the loop
    // before, ~16 instructions a block and warp, of ~95 that ncu's count implies).
    auto k_loop = [&](auto big_c, auto nt_c) {
      uint32_t slot = 0, free_slot = (S - 1) * kStage;  // the stage to read, the one issued into
      const uint8_t* sc_kt = sc_a;
      for (int kt = 0; kt < nkt; ++kt) {
        cp_async_wait<S - 2>();
        __syncthreads();  // stage kt landed for every thread; stage kt - 1's slot is free
        issue(kt + S - 1, free_slot);
        if (kt < nkt_full) stage(big_c, nt_c, std::true_type{}, slot, sc_kt, kKc);
        else stage(big_c, nt_c, std::false_type{}, slot, sc_kt, nch - kt * kKc);
        free_slot = slot;
        slot = slot + kStage == uint32_t(S * kStage) ? 0u : slot + kStage;
        sc_kt += kKc * sc_step;
      }
    };
    stream_k_loops<kRelaid, kTok>(big, nt_run, k_loop);
    cp_async_wait<0>();  // only empty groups are left

    stream_epilogue<kSwiglu>(p, acc, e, c0, n0 + rl, ntok, ntiles, g, t);
  }
#else
  GPTOSS_NO_DEVICE_CODE("bf16 mma.sync (sm_80+)");
#endif
}

#if !defined(GPTOSS_HIP)
// The TMA kernel (16th session; moe_stream_uses_tma: sm_90+; by default the narrow CTA): the same CTA tile, ring of
// S stages, MMAs and epilogue as moe_stream_kernel, but the ring is filled by the TMA unit and the warps meet at no
// CTA barrier.
// Measured before it (15th session, ncu on an H100 at 64 streams): the cp.async kernel's loop issued ~200
// instructions a stage and stalled on its copies' register moves (long scoreboard), the MIO queue the 16-byte
// copies share with ldmatrix, and the stage barrier; DRAM at 55%.
//  - A stage is one box of the tensor map `wmap` (bytes [kt kKc 16, +64) of rows n0 .. n0 + 127 of expert e,
//    landed with the 64-byte swizzle: mstream::tma_weight_offset; rows past N arrive as zeros; L2 promotion 256
//    bytes asked, as the cp.async kernel's .L2::256B, though ncu's L2 misses say DRAM still serves 64-byte pieces:
//    bench/RESULTS.md, sixteenth session) and one 1-D bulk copy of the tile's packed activation run for the stage
//    (its first 2 x ntok rows: moe.cuh MoeStreamProblem::a_packed), both completing on the slot's "full" mbarrier
//    by their byte count. The CTA's scales come with stage 0. Until the 17th session each (token, half) row was a
//    bulk copy of its own, up to 32 a stage (64 in the wide CTA): the TMA unit's work on those, not the bytes in
//    flight, held the kernel (bench/RESULTS.md, "Seventeenth session": deeper rings of weights or activations did
//    not move it; one copy a stage took 15-30% off the MoE op). (Prefetching the weights of later stages into L2
//    with TMA prefetches made it slower, 64- or 256-byte boxes. Reading 8 KB contiguous weight tiles, a timing
//    probe, did not pay before the activations were packed and took ~10% off after; a 16-row tiled decode layout
//    measured -5% at 64 streams. bench/RESULTS.md, seventeenth and eighteenth sessions.)
//  - Each thread waits on "full" (the parity of the slot's use), runs the stage's MMAs (stream_stage_mmas) and
//    arrives on the slot's "empty" mbarrier (kThreads arrivals a phase).
//  - Stage kt + S - 1 goes into stage kt - 1's slot at the top of iteration kt, issued by lane 0 of warp kt % 8
//    once "empty" says every thread is done with stage kt - 1. The issuing warp rotates so that no warp waits for
//    the others every stage; the rest run ahead as far as the ring allows. (A separate producer warp would cost
//    the MMA warps registers: nine warps, three CTAs an SM leave 72 a thread; the wide kernel's two, 96.)
template <bool kSwiglu, int S, bool kRelaid, int kTok>
__global__ void __launch_bounds__(kThreads, moe_stream_ctas_per_sm(S, kTok))
    moe_stream_tma_kernel(const __grid_constant__ CUtensorMap wmap, MoeStreamProblem p) {
#if defined(GPTOSS_HAVE_BULK_ASYNC)
  constexpr int kStage = moe_stream_stage_bytes(kTok);
  static_assert(kStage % 1024 == 0, "stage slots keep the ring's 1024-byte alignment (the swizzle span)");
  extern __shared__ __align__(16) uint8_t smem_raw[];
  __shared__ __align__(8) uint64_t bars[2 * S];  // full[s], then empty[s]
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  // Programmatic dependent launch: as moe_stream_kernel (the first S stages' weights and the scales go out before
  // pdl_wait(), their activations after it).
  const int e = stream_expert(p, tid);
  if (e < 0) {  // CTA-uniform; no CTA exits before its predecessor is done
    pdl_wait();
    return;
  }
  const int c0 = p.group_start[e] + (blockIdx.y - p.tile_start[e]) * kTok, s1 = p.group_start[e + 1];
  const int n0 = blockIdx.x * kRows;  // this pass's routed rows c0 .. and weight rows n0 ..
  if (c0 >= s1 || n0 >= p.N) {
    pdl_wait();
    return;
  }
  const int nch = p.K / 32, nkt = (nch + kKc - 1) / kKc;
  const int rows_here = min(kRows, p.N - n0);
  const int ntok = min(kTok, s1 - c0), ntiles = (ntok + 3) >> 2;
  uint8_t* smem = smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u);  // the ring 1024-aligned
  const uint32_t smem_s = smem_addr(smem);
  uint8_t* sc = smem + S * kStage;
  const uint32_t full0 = smem_addr(&bars[0]), empty0 = smem_addr(&bars[S]);
  if (tid == 0) {
    prefetch_tensor_map(&wmap);
    for (int s = 0; s < S; ++s) {
      mbar_init(full0 + 8 * s, 1);
      mbar_init(empty0 + 8 * s, kThreads);
    }
    fence_barrier_init();
  }
  __syncthreads();  // the barriers are in place
  // Stage kt into slot s (one thread): the expectation is posted before any byte can land. The activations are
  // the tile's packed run for the stage, its first 2 x ntok rows (moe.cuh MoeStreamProblem::a_packed).
  // (the run's address from the parameters at each issue: no live registers)
  auto issue_w = [&](int kt, int s) {  // the stage's whole expectation, its weights (and with stage 0 the scales)
    const uint32_t full = full0 + 8 * s, st = smem_s + uint32_t(s * kStage);
    const uint32_t sc_bytes = uint32_t(rows_here * nch);  // a multiple of 16 (moe_stream_tma_fits)
    const uint32_t a_bytes = uint32_t(2 * ntok * kActRow);
    mbar_arrive_expect_tx(full, uint32_t(mstream::kWStage) + a_bytes + (kt == 0 ? sc_bytes : 0u));
    tensor_copy_3d_g2s(st, &wmap, kt * kKc * 16, n0, e, full);
    if (kt == 0) bulk_copy_g2s(smem_s + uint32_t(S * kStage), p.scales + (int64_t(e) * p.N + n0) * nch, sc_bytes, full);
  };
  auto issue_a = [&](int kt, int s) {  // the stage's activations
    bulk_copy_g2s(smem_s + uint32_t(s * kStage + mstream::act_offset(0, 0)),
                  p.a_packed + mstream::packed_stage_offset(blockIdx.y, kt, p.K, kTok), uint32_t(2 * ntok * kActRow), full0 + 8 * s);
  };
  auto issue = [&](int kt, int s) {
    issue_w(kt, s);
    issue_a(kt, s);
  };
  if (tid == 0)
    for (int s = 0; s < S && s < nkt; ++s) issue_w(s, s);
  pdl_wait();
  pdl_launch_dependents();
  if (tid == 0)
    for (int s = 0; s < S && s < nkt; ++s) issue_a(s, s);

  // ntiles: the n-tiles holding tokens; nt_run: those the K loop runs (the wide kernel's: an even count)
  const int nt_run = kTok == kMoeStreamTokens ? ntiles : (ntiles + 1) & ~1;
  float acc[kTok / 4][4];
#pragma unroll
  for (int j = 0; j < kTok / 4; ++j)
#pragma unroll
    for (int c = 0; c < 4; ++c) acc[j][c] = 0.f;
  bool big = false;
  if (kRelaid) {  // a scale above 128 (kRelaid's one-multiply range): the scales came with stage 0
    mbar_wait(full0, 0);
    const int sc_cnt = rows_here * nch;
    for (int i = tid; i < sc_cnt / 4; i += kThreads)
      big |= __vcmpgtu4(reinterpret_cast<const uint32_t*>(sc)[i], 0x01010101u * mxlayout::kPlacedScaleMax) != 0;
    big = __syncthreads_or(big) != 0;
  }
  const int rl = warp * 16 + g;
  const uint8_t* sc_a = sc + mstream::scale_offset(rl, 0, nch, kRelaid);
  const int sc_step = mstream::scale_offset(rl, 1, nch, kRelaid) - mstream::scale_offset(rl, 0, nch, kRelaid);
  const int sc_b = mstream::scale_offset(rl + 8, 0, nch, kRelaid) - mstream::scale_offset(rl, 0, nch, kRelaid);
  const uint32_t ldsm_lo = uint32_t(mstream::tma_ldsm_offset(warp, 0, lane));
  const uint32_t ldsm_hi = uint32_t(mstream::tma_ldsm_offset(warp, 2, lane));
  const int bfrag_lane = mstream::bfrag_offset(0, g, t, 0);
  auto k_loop = [&](auto big_c, auto nt_c) {
    constexpr bool kBig = decltype(big_c)::value;
    constexpr int NT = decltype(nt_c)::value;
    uint32_t slot = 0, phase = 0;
    int s = 0, prev = S - 1;  // stage kt's slot, stage kt - 1's
    const uint8_t* sc_kt = sc_a;
    for (int kt = 0; kt < nkt; ++kt) {
      if (kt > 0 && kt + S - 1 < nkt && warp == kt % (kThreads / 32)) {  // refill stage kt - 1's slot
        mbar_wait(empty0 + 8 * prev, uint32_t((kt - 1) / S) & 1u);
        if (lane == 0) issue(kt + S - 1, prev);
      }
      mbar_wait(full0 + 8 * s, phase);
      const uint32_t ldsm[kKc / 2] = {smem_s + slot + ldsm_lo, smem_s + slot + ldsm_hi};
      if (kt < nkt - 1 || nch % kKc == 0)
        stream_stage_mmas<kRelaid, kBig, NT, true>(acc, ldsm, smem + slot + bfrag_lane, sc_kt, sc_step, sc_b, kKc);
      else
        stream_stage_mmas<kRelaid, kBig, NT, false>(acc, ldsm, smem + slot + bfrag_lane, sc_kt, sc_step, sc_b, nch - kt * kKc);
      mbar_arrive(empty0 + 8 * s);  // this thread is done reading the slot
      sc_kt += kKc * sc_step;
      prev = s;
      if (++s == S) s = 0, slot = 0, phase ^= 1u;
      else slot += uint32_t(kStage);
    }
  };
  stream_k_loops<kRelaid, kTok>(big, nt_run, k_loop);
  stream_epilogue<kSwiglu>(p, acc, e, c0, n0 + rl, ntok, ntiles, g, t);
#else
  GPTOSS_NO_DEVICE_CODE("TMA bulk copies (sm_90+)");
#endif
}
#endif  // !GPTOSS_HIP

template <bool kSwiglu, int S, bool kRelaid, int kTok>
void launch_kernel(const MoeStreamProblem& p, cudaStream_t stream) {
  const int smem = moe_stream_smem_bytes(S, p.K / 32, kTok);
  opt_in_smem(moe_stream_kernel<kSwiglu, S, kRelaid, kTok>, smem);
  const dim3 grid(unsigned(ceil_div(p.N, kRows)), unsigned(p.max_tiles));
  launch_k(moe_stream_kernel<kSwiglu, S, kRelaid, kTok>, grid, kThreads, size_t(smem), stream, p);
}
#if !defined(GPTOSS_HIP)
// The experts' packed blocks [E, N, K/32 x 16 bytes] as a 3-D tensor map of bytes for moe_stream_tma_kernel: a box
// is one stage of one CTA (kKc blocks of kRows rows: 64 x 128 x 1 bytes), landed with the 64-byte swizzle, zeros
// past N and K, L2 promotion 256 bytes. cuTensorMapEncodeTiled is the driver's; the runtime hands out its entry.
CUtensorMap weight_tensor_map(const MoeStreamProblem& p) {
  static const PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
    GPTOSS_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found));
    if (found != cudaDriverEntryPointSuccess || !fn)
      throw runtime_error("moe stream: the driver has no cuTensorMapEncodeTiled (CUDA 12.0+ driver needed for the TMA kernel; "
                          "GPTOSS_CUDA_MOE_STREAM_TMA=0 runs the cp.async one)");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  const cuuint64_t row = cuuint64_t(p.K / 32) * 16;
  cuuint64_t dims[3] = {row, cuuint64_t(p.N), cuuint64_t(p.E)};
  cuuint64_t strides[2] = {row, row * cuuint64_t(p.N)};
  cuuint32_t box[3] = {cuuint32_t(kKc * 16), cuuint32_t(kRows), 1};
  cuuint32_t elem[3] = {1, 1, 1};
  CUtensorMap map;
  const CUresult r = encode(&map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 3, const_cast<uint8_t*>(p.w), dims, strides, box, elem,
                            CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_64B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw runtime_error("moe stream: cuTensorMapEncodeTiled failed (CUresult " + std::to_string(int(r)) + ") for experts [" +
                        std::to_string(p.E) + ", " + std::to_string(p.N) + ", " + std::to_string(p.K / 32) + " x 16 B]");
  return map;
}

template <bool kSwiglu, int S, bool kRelaid, int kTok>
void launch_tma_kernel(const MoeStreamProblem& p, cudaStream_t stream) {
  const CUtensorMap map = weight_tensor_map(p);
  const int smem = moe_stream_tma_smem_bytes(S, p.K / 32, kTok);
  opt_in_smem(moe_stream_tma_kernel<kSwiglu, S, kRelaid, kTok>, smem);
  const dim3 grid(unsigned(ceil_div(p.N, kRows)), unsigned(p.max_tiles));
  launch_k(moe_stream_tma_kernel<kSwiglu, S, kRelaid, kTok>, grid, kThreads, size_t(smem), stream, map, p);
}
#endif

// Whether this call runs the TMA kernel: the policy (moe_stream_uses_tma) and what its copies need of
// the pointers (16-byte aligned blocks, scales and packed activations; a CTA's scale bytes a multiple of 16).
bool moe_stream_tma_fits(const MoeStreamProblem& p, int stages) {
#if defined(GPTOSS_HIP)
  (void)p, (void)stages;
  return false;
#else
  const auto aligned = [](const void* q) { return (reinterpret_cast<uintptr_t>(q) & 15) == 0; };
  const int nch = p.K / 32;
  return moe_stream_uses_tma(current_caps(), knobs(), nch, p.tokens, stages) && aligned(p.w) && aligned(p.scales) &&
         aligned(p.a_packed) && (int64_t(p.N) * nch) % 16 == 0;
#endif
}

// A ring of S stages, kTok rows a CTA: the TMA kernel where it runs (moe_stream_tma_fits), else the cp.async one.
template <bool kSwiglu, int S, int kTok>
void launch_ring(const MoeStreamProblem& p, cudaStream_t stream) {
#if !defined(GPTOSS_HIP)
  if (moe_stream_tma_fits(p, S)) {
    if (p.decode_layout) launch_tma_kernel<kSwiglu, S, true, kTok>(p, stream);
    else launch_tma_kernel<kSwiglu, S, false, kTok>(p, stream);
    return;
  }
#endif
  if (p.decode_layout) launch_kernel<kSwiglu, S, true, kTok>(p, stream);
  else launch_kernel<kSwiglu, S, false, kTok>(p, stream);
}

// A packed for the streaming GEMMs (moe.cuh MoeStreamProblem::a_packed): thread (slot, chunk of 8 columns) reads
// x's row perm_token[slot], splits the 8 values into bf16 halves (split_bf16, as launch_split_bf16) and writes each
// half's 16 bytes at its packed place: the slot's expert is the last e with group_start[e] <= slot
// (mstream::tile_expert over group_start; an empty expert shares its start with the next one), its tile
// tile_start[e] + (slot - group_start[e]) / tokens.
// Slots past group_start[E] (pairs whose expert index was out of range: flagged, not routed) are not packed.
template <bool kVec>
__global__ void moe_stream_pack_kernel(const float* __restrict__ x, const int32_t* __restrict__ perm_token,
                                       const int32_t* __restrict__ group_start, const int32_t* __restrict__ tile_start, int P,
                                       int E, int K, int tokens, uint8_t* __restrict__ packed) {
  pdl_wait();  // the routing and x are earlier kernels' outputs (launch.cuh)
  pdl_launch_dependents();
  const int chunks = K / 8;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= int64_t(P) * chunks) return;
  const int slot = int(i / chunks), c = int(i % chunks);
  if (slot >= group_start[E]) return;
  const int e = mstream::tile_expert(group_start, E, slot);  // the same search over the slots' prefix
  const int r = slot - group_start[e], tile = tile_start[e] + r / tokens;
  const float* src = x + int64_t(perm_token[slot]) * K + c * 8;
  float4 v0, v1;
  if constexpr (kVec) {
    v0 = reinterpret_cast<const float4*>(src)[0], v1 = reinterpret_cast<const float4*>(src)[1];
  } else {
    v0 = make_float4(src[0], src[1], src[2], src[3]), v1 = make_float4(src[4], src[5], src[6], src[7]);
  }
  uint2 h0, l0, h1, l1;
  split_bf16x4(v0, h0, l0);
  split_bf16x4(v1, h1, l1);
  uint8_t* at = packed + mstream::packed_col_offset(tile, r % tokens, 0, c * 8, K, tokens);
  *reinterpret_cast<uint4*>(at) = make_uint4(h0.x, h0.y, h1.x, h1.y);
  *reinterpret_cast<uint4*>(at + kActRow) = make_uint4(l0.x, l0.y, l1.x, l1.y);
}

}  // namespace

int moe_stream_max_tiles(int P, int E, int tokens) { return std::min(P, P / tokens + E); }

size_t moe_stream_packed_bytes(int max_tiles, int K, int tokens) {
  return size_t(mstream::packed_stage_offset(max_tiles, 0, K, tokens));
}

void launch_moe_stream_pack(const float* x, const int32_t* perm_token, const int32_t* group_start, const int32_t* tile_start,
                            int P, int E, int K, int tokens, uint8_t* packed, cudaStream_t stream) {
  if (P <= 0) return;
  if (K % 8 != 0 || (reinterpret_cast<uintptr_t>(packed) & 15) != 0)
    throw range_error("moe stream: packing needs K a multiple of 8 (got " + std::to_string(K) + ") and a 16-byte aligned buffer");
  const int64_t threads = int64_t(P) * (K / 8);
  const unsigned blocks = unsigned(ceil_div(threads, int64_t(256)));
  // rows of K % 8 == 0 floats stay 16-byte aligned
  launch_k((reinterpret_cast<uintptr_t>(x) & 15) == 0 ? moe_stream_pack_kernel<true> : moe_stream_pack_kernel<false>, blocks,
           256, 0, stream, x, perm_token, group_start, tile_start, P, E, K, tokens, packed);
}

void launch_moe_stream_gemm(const MoeStreamProblem& p, bool swiglu, cudaStream_t stream) {
  if (p.N <= 0 || p.E <= 0 || p.max_tiles <= 0) return;
  if (p.K <= 0 || p.K % 32 != 0 || (swiglu && p.N % 2 != 0))
    throw range_error("moe stream: K must be a positive multiple of 32 (got " + std::to_string(p.K) +
                      ") and gate_up's rows even (got " + std::to_string(p.N) + ")");
  if (p.decode_layout && !mxlayout::layout_fits(p.N))
    throw range_error("moe stream: experts in the decode layout need rows a multiple of 16 (got " + std::to_string(p.N) + ")");
  if (p.tokens != kMoeStreamTokens && p.tokens != kMoeStreamWideTokens)
    throw range_error("moe stream: rows a CTA must be " + std::to_string(kMoeStreamTokens) + " or " +
                      std::to_string(kMoeStreamWideTokens) + " (got " + std::to_string(p.tokens) + ")");
  if (p.tokens == kMoeStreamWideTokens) {  // the wide kernel: the shallow ring, two CTAs an SM
    if (moe_stream_wide_stages(current_caps(), p.K / 32) != kMoeStreamShallowStages)
      throw runtime_error("moe stream: the wide kernel (" + std::to_string(kMoeStreamWideTokens) + " rows a CTA) does not run on this device (" +
                          caps_summary(current_caps()) + "): it needs " +
                          std::to_string(moe_stream_smem_bytes(kMoeStreamShallowStages, p.K / 32, kMoeStreamWideTokens)) +
                          " bytes of shared memory a block, two blocks an SM");
    return swiglu ? launch_ring<true, kMoeStreamShallowStages, kMoeStreamWideTokens>(p, stream)
                  : launch_ring<false, kMoeStreamShallowStages, kMoeStreamWideTokens>(p, stream);
  }
  int stages = moe_stream_stages(current_caps(), p.K / 32);
  // GPTOSS_CUDA_MOE_STREAM_STAGES=5 (A/B, read at each call; the kernel bench's "stream-s5" rows): the deep ring
  // (two CTAs an SM) where it fits, in place of the policy's shallow one.
  if (stages == kMoeStreamShallowStages && env_int("GPTOSS_CUDA_MOE_STREAM_STAGES", 0, 3, 5) == kMoeStreamDeepStages &&
      moe_stream_deep_stages(current_caps(), p.K / 32) == kMoeStreamDeepStages)
    stages = kMoeStreamDeepStages;
  if (stages == kMoeStreamDeepStages) return swiglu ? launch_ring<true, kMoeStreamDeepStages, kMoeStreamTokens>(p, stream)
                                                    : launch_ring<false, kMoeStreamDeepStages, kMoeStreamTokens>(p, stream);
  if (stages == kMoeStreamShallowStages) return swiglu ? launch_ring<true, kMoeStreamShallowStages, kMoeStreamTokens>(p, stream)
                                                       : launch_ring<false, kMoeStreamShallowStages, kMoeStreamTokens>(p, stream);
  throw runtime_error("moe stream: the kernel does not run on this device (" + caps_summary(current_caps()) +
                      "): it needs bf16 mma.sync and " + std::to_string(moe_stream_smem_bytes(kMoeStreamShallowStages, p.K / 32)) +
                      " bytes of shared memory a block");
}

}  // namespace gptoss::cuda
