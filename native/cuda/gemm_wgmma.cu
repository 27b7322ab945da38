// The Hopper GEMM tile (issue 12 item 4): the GEMM tile's problems (gemm_tile.cuh: linear with its
// q/k/v column parts, the grouped MoE GEMMs with the SwiGLU and Store epilogues, bf16 or MXFP4
// weights) on wgmma (sm_90a), both operands from 128-byte swizzled shared memory through descriptors.
// Run on H100 at 98332a8; the default per problem on sm_90a (policy.h gemm_tile_kind, GPTOSS_CUDA_GEMM).
//
// Same numerics contract as the mma.sync tile: A is multiplied as its bf16 hi and lo halves (two
// wgmma a weight slice, one f32 accumulator), the weights exactly (bf16, or E2M1 x 2^(s-127) decoded to
// bf16), products exact, f32 sums; only the order of the f32 sums differs.
//
// One block: BM = 64 WG rows (WG = 1 or 2 warpgroups, one m64n128 accumulator each: 64 f32 registers a
// thread) x 128 columns of one group; BK = 64 (one 128-byte swizzle row). Shared memory
// (gemm_wgmma_layout.h): a 4-slot cp.async ring of { A hi, A lo, W } stages; MXFP4 adds two decoded
// bf16 W tiles and the block's scales. Every thread copies (no producer warps: cp.async needs no
// registers to stage, and a uniform block keeps one barrier scheme); the wgmma of step kt are waited
// for one step late (wgmma.wait_group 1), so the tensor cores run step kt while the block waits for
// step kt + 1's copies.
//
// Step kt: wait for this thread's copies of stage kt, fence.proxy.async (generic-proxy writes -> the
// async proxy that wgmma reads through), barrier; issue stage kt + 2 into the slot stage kt - 2 used
// (its wgmma finished: every warpgroup passed wait_group 1 of step kt - 1 before this barrier).
// MXFP4: decode stage kt's packed W into decoded buffer kt & 1 (last read by step kt - 2's wgmma,
// finished likewise), fence.proxy.async, barrier. Then wgmma.fence, 4 k16 slices x (hi, lo), commit,
// wait_group 1.
#include "gemm_tile.cuh"
#include "gemm_wgmma_layout.h"
#include "bulk_copy.cuh"  // mbarriers (the warp-specialized tile)
#include "mxfp4_layout.h"

#if !defined(GPTOSS_HIP)
#include <cooperative_groups.h>  // the split-K epilogue's cluster (sm_90)
#endif

namespace gptoss::cuda {

namespace {
namespace wl = wgmma;

#if defined(GPTOSS_HAVE_WGMMA)
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Orders this thread's generic-proxy writes of shared memory (st.shared, cp.async) before later
// async-proxy reads (wgmma's operand fetch) once a barrier has been passed.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
// The accumulators are read and written by the asynchronous MMA: keep the compiler from moving their
// uses across the issue/wait points (an empty asm that "writes" each register).
__device__ __forceinline__ void acc_fence(float (&d)[wl::kAccRegs]) {
#pragma unroll
  for (int i = 0; i < wl::kAccRegs; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
// D[64 x 128] += A[64 x 16] B[128 x 16]^T, bf16 operands (K-major, no transpose), f32 accumulators.
// scale-d = scale_d (1: accumulate; 0: D = A B, the first wgmma of a tile whose accumulators were never
// written), imm-scale-a = imm-scale-b = 1.
__device__ __forceinline__ void wgmma_m64n128k16_bf16(float (&d)[wl::kAccRegs], uint64_t desc_a, uint64_t desc_b, int scale_d = 1) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(desc_a), "l"(desc_b), "r"(scale_d));
}
#endif

#if defined(GPTOSS_HAVE_WGMMA)
// MXFP4 unit u of stage kt (32 values: row u / 2 of the tile, MX block 2 kt + (u & 1)), packed at `packed` + 16 u,
// decoded to bf16 into chunks 4 (u & 1) .. + 3 of its row of the 128-byte swizzled W tile at `dst`, as gemm_tile.cu's
// decode (the checkpoint's or the decode layout's words, then x the block's scale from the block's scales `scales`).
__device__ __forceinline__ void decode_mx_unit(const uint8_t* packed, uint8_t* dst, const uint8_t* scales, int u, int kt, int KB,
                                               bool decode_layout) {
  const int row = u >> 1, half = u & 1, blk = 2 * kt + half;
  const uint4 w = *reinterpret_cast<const uint4*>(packed + u * 16);
  // past K (zero-filled codes): scale 2^0, so that 0 x scale stays 0 whatever byte follows
  const uint32_t s = blk >= KB        ? 127u
                     : decode_layout ? scales[(row >> 4) * KB * 16 + blk * 16 + (row & 15)]
                                     : scales[row * KB + blk];
  const uint32_t sc2 = mxlayout::e8m0_bf16x2(s);  // 2^(s-127) in both halves
  const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int q = 0; q < 4; ++q) {  // word q: values 8q .. 8q + 7 of the block
    uint32_t o[4];
    if (decode_layout) {
      mxlayout::decode_word(words[q], o);  // natural pairs, x 2^-126
#pragma unroll
      for (int i = 0; i < 4; ++i) o[i] = bf16x2_mul(o[i], 0x7E807E80u);  // x 2^126 each
    } else {
      e2m1_word_to_bf16(words[q], o);
    }
    *reinterpret_cast<uint4*>(dst + wl::sw128(row, 4 * half + q)) =
        make_uint4(bf16x2_mul(o[0], sc2), bf16x2_mul(o[1], sc2), bf16x2_mul(o[2], sc2), bf16x2_mul(o[3], sc2));
  }
}

// The tile's epilogue (all but split-K): bias, and for SwiGLU the clamped SwiGLU of interleaved gate/up columns written as
// bf16 hi (+ lo when kLo) halves; else f32 rows. Thread tid (0 .. 128 WG - 1: the warpgroups that hold accumulators)
// owns register i at row acc_row(tid, i), column acc_col(tid, i) of the block (layout header); rows past row_end and
// columns past N are not written.
template <Epilogue EPI, bool kLo>
__device__ __forceinline__ void store_tile(const GemmProblem& p, const float (&acc)[wl::kAccRegs], int tid, int row0, int row_end,
                                           int n0, int N, int ldo, const void* bias, void* out, int64_t bias0) {
  const int lane = tid & 31, tq = lane & 3;
  if constexpr (EPI == Epilogue::SwiGLU) {
    // gate = even column, up = odd column (transformers GptOssExperts, rows interleaved). Column chunks
    // 4 ng .. 4 ng + 3 (32 columns, 16 outputs) at a time, as gemm_tile.cu: lane tq holds output
    // 16 ng + 4 j + tq for chunk j; a 4x4 transpose in the quad gives it outputs 16 ng + 4 tq .. + 3,
    // stored as 8 bytes a half.
#pragma unroll
    for (int ng = 0; ng < 4; ++ng)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        float y[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int i = 4 * (4 * ng + j) + 2 * half;
          const int col = n0 + wl::acc_col(tid, i);
          y[j] = col < N ? swiglu(acc[i] + bias_at(bias, p.bias_kind, bias0 + col),
                                  acc[i + 1] + bias_at(bias, p.bias_kind, bias0 + col + 1), p.swiglu_limit,
                                  p.swiglu_alpha)
                         : 0.f;
        }
        float t[4];
#pragma unroll
        for (int s = 0; s < 4; ++s) {  // lane tq sends y[(tq + s) & 3] to lane (tq + s) & 3 of its quad
          const int to = (tq + s) & 3, from = (tq - s) & 3;
          const float send = to == 0 ? y[0] : to == 1 ? y[1] : to == 2 ? y[2] : y[3];
          const float got = __shfl_sync(0xffffffffu, send, (lane & ~3) | from);
          if (from == 0) t[0] = got; else if (from == 1) t[1] = got; else if (from == 2) t[2] = got; else t[3] = got;
        }
        const int r = row0 + wl::acc_row(tid, 16 * ng + 2 * half);
        if (r >= row_end) continue;
        const int col0 = n0 + 32 * ng + 8 * tq;  // gate column of output t[0]
        const int64_t o = int64_t(r) * ldo + col0 / 2;
        uint16_t h[4], l[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) split_bf16(t[j], h[j], l[j]);
        uint16_t* oh = static_cast<uint16_t*>(out);
        if (col0 + 6 < N && (o & 3) == 0) {
          *reinterpret_cast<uint2*>(oh + o) = make_uint2(h[0] | uint32_t(h[1]) << 16, h[2] | uint32_t(h[3]) << 16);
          if (kLo) *reinterpret_cast<uint2*>(p.out_lo + o) = make_uint2(l[0] | uint32_t(l[1]) << 16, l[2] | uint32_t(l[3]) << 16);
        } else {
#pragma unroll
          for (int j = 0; j < 4; ++j)
            if (col0 + 2 * j < N) {
              oh[o + j] = h[j];
              if (kLo) p.out_lo[o + j] = l[j];
            }
        }
      }
  } else {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int r = row0 + wl::acc_row(tid, 2 * half);  // the same row for every chunk
      if (r >= row_end) continue;
      float* o = static_cast<float*>(out) + int64_t(r) * ldo;
#pragma unroll
      for (int nt = 0; nt < wl::kAccRegs / 4; ++nt) {
        const int i = 4 * nt + 2 * half;
        const int col = n0 + wl::acc_col(tid, i);
        const float v0 = acc[i] + (col < N ? bias_at(bias, p.bias_kind, bias0 + col) : 0.f);
        const float v1 = acc[i + 1] + (col + 1 < N ? bias_at(bias, p.bias_kind, bias0 + col + 1) : 0.f);
        if (col + 1 < N && ((reinterpret_cast<uintptr_t>(o + col) & 7) == 0)) {
          *reinterpret_cast<float2*>(o + col) = make_float2(v0, v1);
        } else {
          if (col < N) o[col] = v0;
          if (col + 1 < N) o[col + 1] = v1;
        }
      }
    }
  }
}

#endif

// kSplit (dense bf16 Store problems, policy.h wgmma_dense_splits): grid.z blocks of one cluster share the
// tile, block z running K steps [k_begin(z), k_begin(z + 1)); the epilogue sums the partial tiles through
// distributed shared memory (gemm_wgmma_layout.h, "split-K").
// kLo false (GPTOSS_CUDA_MOE_ACT=bf16, the grouped MoE's probe; p.a_lo and p.out_lo null): A is its bf16 hi half alone,
// no lo copies, no lo wgmma. A compile-time choice: a wgmma under a runtime branch makes ptxas serialize the
// accumulator chain (C7519, warpgroup.arrive injected) in every variant.
template <WeightFormat WF, Epilogue EPI, int WG, bool kSplit, bool kLo = true>
__global__ void __launch_bounds__(WG * wl::kWgThreads, 1) gemm_wgmma_kernel(GemmProblem p) {
#if defined(GPTOSS_HAVE_WGMMA)
  static_assert(!kSplit || (WF == WeightFormat::BF16 && EPI == Epilogue::Store), "split-K: dense bf16 Store only");
  constexpr int BM = WG * wl::kWgRows, T = wl::threads(BM), BN = wl::kBN, BK = wl::kBK, S = wl::kStages,
                L = wl::kLookahead;
  constexpr bool kMx = WF == WeightFormat::MXFP4;
  static_assert(T == WG * 128 && wl::a_copies(BM) * T == BM * 8, "A copies cover the stage");
  static_assert(kMx ? wl::mx_units(BM) * T == BN * 2 : wl::w_copies(BM) * T == BN * 8, "W copies cover the stage");
  extern __shared__ __align__(16) uint8_t smem_raw[];
  __shared__ int rows_src[BM];
  // The layout's base: the dynamic window rounded up to 1024 bytes (smem_bytes() reserves the slack).
  const uint32_t raw = smem_addr(smem_raw);
  uint8_t* smem = smem_raw + ((wl::kAtomBytes - (raw & (wl::kAtomBytes - 1))) & (wl::kAtomBytes - 1));
  const uint32_t sbase = smem_addr(smem);

  const int tid = threadIdx.x;
  // Programmatic dependent launch (launch.cuh): a dense problem (one group, rows in order) reads nothing the
  // previous kernel writes but A, so its first stages' weights are requested before pdl_wait() (launch_wg,
  // below); a grouped one's rows and groups are the routing's output: it waits first.
  const bool dense = p.group_start == nullptr && p.a_rows == nullptr;
  if (!dense) {
    pdl_wait();
    pdl_launch_dependents();
  }
  // ---- which group and which BM rows of it this block owns; which column part (q, k, v) ----
  int g = 0, row0 = 0, row_end = 0;
  if (!gemm_tile_block_rows(p, int(blockIdx.y), BM, g, row0, row_end)) {
    if (dense) pdl_wait();  // no block exits before its predecessor is done (launch.cuh)
    return;
  }
  const GemmColumns cols = gemm_tile_block_columns(p, int(blockIdx.x));
  const int n0 = cols.n0, N = cols.N, ldo = cols.ldo;
  const void* bias = cols.bias;
  void* out = cols.out;
  for (int i = tid; i < BM; i += T) {
    const int r = row0 + i;
    rows_src[i] = r < row_end ? (p.a_rows ? p.a_rows[r] : r) : -1;
  }
  __syncthreads();

  const int K = p.K, KB = K / 32, nk = (K + BK - 1) / BK;
  // this block's K steps [kb, ke): all of them, or its split's (block z of the cluster)
  const int kb = kSplit ? wl::k_begin(nk, int(gridDim.z), int(blockIdx.z)) : 0;
  const int ke = kSplit ? wl::k_begin(nk, int(gridDim.z), int(blockIdx.z) + 1) : nk;
  const uint8_t* wbase = static_cast<const uint8_t*>(cols.w) + g * p.w_group_bytes;
  uint8_t* scales = smem + wl::scales_offset(BM);  // MXFP4: [BN][KB]

  // ---- stage kt by cp.async: A hi and lo (gathered rows), W; one commit group a stage ----
  // A thread copies chunk column ch of rows a_copy_row(i) at every step: sources resolved once.
  constexpr int kA = wl::a_copies(BM);
  const int ch = wl::copy_chunk(tid);
  int64_t a_off[kA];
  bool a_ok[kA];
#pragma unroll
  for (int i = 0; i < kA; ++i) {
    const int src = rows_src[wl::a_copy_row(BM, tid, i)];
    a_ok[i] = src >= 0;
    a_off[i] = (src >= 0 ? int64_t(src) * K : 0) + ch * 8;
  }
  // A stage's copies without a commit: the activations' halves, then the weights.
  auto issue_a = [&](int kt) {
    if (kt < ke) {
      const int slot = kt % S, k0 = kt * BK;
      const bool k_ok = k0 + ch * 8 < K;  // K % 8 == 0: a chunk is all in or all out
#pragma unroll
      for (int part = 0; part < 2; ++part) {
        if (part && !kLo) break;
        const uint16_t* a = part ? p.a_lo : p.a_hi;
        uint8_t* dst = smem + wl::a_offset(kMx, BM, slot, part);
#pragma unroll
        for (int i = 0; i < kA; ++i) {
          const bool ok = a_ok[i] && k_ok;
          cp_async16_zfill(dst + wl::sw128(wl::a_copy_row(BM, tid, i), ch), ok ? a + a_off[i] + k0 : p.a_hi, ok);
        }
      }
    }
  };
  auto issue_w = [&](int kt) {
    if (kt < ke) {
      const int slot = kt % S, k0 = kt * BK;
      const bool k_ok = k0 + ch * 8 < K;
      uint8_t* wdst = smem + wl::w_offset(kMx, BM, slot);
      if (!kMx) {
#pragma unroll
        for (int i = 0; i < wl::w_copies(BM); ++i) {
          const int row = wl::w_copy_row(BM, tid, i);
          const bool ok = n0 + row < N && k_ok;
          cp_async16_zfill(wdst + wl::sw128(row, ch), wbase + (ok ? (int64_t(n0 + row) * K + k0 + ch * 8) * 2 : 0), ok);
        }
      } else {
#pragma unroll
        for (int i = 0; i < wl::mx_units(BM); ++i) {
          const int u = wl::mx_unit(BM, tid, i), row = u >> 1, blk = 2 * kt + (u & 1);
          const bool ok = n0 + row < N && blk < KB;
          cp_async16_zfill(wdst + u * 16, wbase + (ok ? (int64_t(n0 + row) * KB + blk) * 16 : 0), ok);
        }
      }
    }
  };
  auto issue = [&](int kt) {  // a whole stage: one commit group
    issue_a(kt);
    issue_w(kt);
    cp_async_commit();
  };

  // ---- MXFP4: stage kt's packed W -> decoded bf16 tile kt & 1, 128-byte swizzled ----
  // The thread that copied unit u decodes it (decode_mx_unit).
  auto decode = [&](int kt) {
    const uint8_t* packed = smem + wl::w_offset(true, BM, kt % S);
    uint8_t* dst = smem + wl::dec_offset(BM, kt & 1);
#pragma unroll
    for (int i = 0; i < wl::mx_units(BM); ++i) decode_mx_unit(packed, dst, scales, wl::mx_unit(BM, tid, i), kt, KB, p.w_decode_layout);
  };

  if (dense) {
    // The first L stages' weights go out before the wait, uncommitted, so they land in the first commit group
    // (with stage kb's activations): waiting for stage kt's group still finds all of stage kt in place.
#pragma unroll
    for (int s = 0; s < L; ++s) issue_w(kb + s);
    pdl_wait();
    pdl_launch_dependents();
#pragma unroll
    for (int s = 0; s < L; ++s) {
      issue_a(kb + s);
      cp_async_commit();
    }
  } else {
#pragma unroll
    for (int s = 0; s < L; ++s) issue(kb + s);
  }

  if (kMx) gemm_load_block_scales(p, g, n0, N, KB, scales, tid, T);  // the first barrier of the loop publishes them

  const int wg = tid / wl::kWgThreads;
  float acc[wl::kAccRegs];
#pragma unroll
  for (int i = 0; i < wl::kAccRegs; ++i) acc[i] = 0.f;

  for (int kt = kb; kt < ke; ++kt) {
    cp_async_wait<L - 1>();  // this thread's copies of stage kt have landed
    fence_proxy_async();
    __syncthreads();
    issue(kt + L);
    if (kMx) {
      decode(kt);
      fence_proxy_async();
      __syncthreads();
    }
    const int slot = kt % S;
    const uint32_t a_hi = sbase + wl::a_offset(kMx, BM, slot, 0), a_lo = sbase + wl::a_offset(kMx, BM, slot, 1);
    const uint32_t wt = kMx ? sbase + wl::dec_offset(BM, kt & 1) : sbase + wl::w_offset(kMx, BM, slot);
    wgmma_fence();
    acc_fence(acc);
#pragma unroll
    for (int k16 = 0; k16 < BK / 16; ++k16) {
      const uint64_t db = wl::sw128_desc(wl::w_desc_addr(wt, k16));
      wgmma_m64n128k16_bf16(acc, wl::sw128_desc(wl::a_desc_addr(a_hi, wg, k16)), db);
      if constexpr (kLo) wgmma_m64n128k16_bf16(acc, wl::sw128_desc(wl::a_desc_addr(a_lo, wg, k16)), db);
    }
    wgmma_commit();
    wgmma_wait<1>();
    acc_fence(acc);
  }
  wgmma_wait<0>();
  acc_fence(acc);
  cp_async_wait<0>();  // only empty groups are left; drained before exit anyway

  // ---- epilogue: bias (+ clamped SwiGLU on interleaved gate/up columns, written split) ----
  // Register i of this thread: row acc_row(tid, i), column acc_col(tid, i) of the block (layout header).
  const int64_t bias0 = g * p.bias_group_elems;
  if constexpr (kSplit) {
    // Split-K: this block's partial tile into its drained ring, [BM][kRedStride] f32; after the cluster
    // barrier block z sums rows z, z + splits, ... over the cluster's blocks in rank order (a warp a row, a
    // lane 4 columns), adds the bias and writes them; the last barrier keeps every block's shared memory
    // alive until the others have read it.
    namespace cg = cooperative_groups;
    cg::cluster_group cluster = cg::this_cluster();
    __syncthreads();  // every warpgroup's wgmma (waited above) and every copy are done with the ring
    float* red = reinterpret_cast<float*>(smem);
#pragma unroll
    for (int i = 0; i < wl::kAccRegs; i += 2)
      *reinterpret_cast<float2*>(red + wl::acc_row(tid, i) * wl::kRedStride + wl::acc_col(tid, i)) = make_float2(acc[i], acc[i + 1]);
    cluster.sync();
    const int splits = int(cluster.num_blocks()), rank = int(cluster.block_rank());
    const int lane = tid & 31, c = 4 * lane, col = n0 + c;
    float b[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) b[j] = col + j < N ? bias_at(bias, p.bias_kind, bias0 + col + j) : 0.f;
    for (int rr = rank + (tid >> 5) * splits; rr < BM; rr += (T / 32) * splits) {
      const int r = row0 + rr;
      if (r >= row_end) break;  // rows only grow
      float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
      for (int q = 0; q < splits; ++q) {
        const float4 u = *reinterpret_cast<const float4*>(cluster.map_shared_rank(red, unsigned(q)) + rr * wl::kRedStride + c);
        v.x += u.x, v.y += u.y, v.z += u.z, v.w += u.w;
      }
      v.x += b[0], v.y += b[1], v.z += b[2], v.w += b[3];
      float* o = static_cast<float*>(out) + int64_t(r) * ldo + col;
      if (col + 3 < N && (reinterpret_cast<uintptr_t>(o) & 15) == 0) {
        *reinterpret_cast<float4*>(o) = v;
      } else {
        if (col < N) o[0] = v.x;
        if (col + 1 < N) o[1] = v.y;
        if (col + 2 < N) o[2] = v.z;
        if (col + 3 < N) o[3] = v.w;
      }
    }
    cluster.sync();
  } else {
    store_tile<EPI, kLo>(p, acc, tid, row0, row_end, n0, N, ldo, bias, out, bias0);
  }
#else
  GPTOSS_NO_DEVICE_CODE("wgmma (sm_90a)");
#endif
}

// ---- the warp-specialized grouped MXFP4 tile (policy.h wgmma_grouped_ws; 21st session) ----
// The kernel above has every thread copy, decode and issue, with two block barriers a K step: the decode of stage
// kt + 1 and the barriers wait behind the wgmma of stage kt, and a 2,048-token MoE ran at ~160 TFLOP/s of useful
// work on an H100 (hi + lo). Here the roles split (gemm_wgmma_layout.h, "warp-specialized"): WG consumer
// warpgroups (threads 0 .. 128 WG - 1, the same accumulator layout and epilogue) only wait for a slot's full
// barrier and issue its wgmma; the two producer warpgroups copy stage kt into its slot once the consumers have
// released it (empty barrier), and L stages later, when a thread's copies of it have landed, it decodes its
// MXFP4 unit into the slot's bf16 W tile, fences them for the async proxy and arrives on the slot's full barrier.
// No block-wide barrier in the K loop; the ring of kWsStages whole stages lets the producer run ahead.
// Same numerics as the kernel above (A hi + lo, or hi alone when kLo is false; the same decode; the same f32 order).
template <Epilogue EPI, int WG, bool kLo>
__global__ void __launch_bounds__(wl::ws_threads(WG * wl::kWgRows), 1) gemm_wgmma_ws_kernel(GemmProblem p) {
#if defined(GPTOSS_HAVE_WGMMA)
  constexpr int BM = WG * wl::kWgRows, C = wl::threads(BM), BN = wl::kBN, BK = wl::kBK, S = wl::kWsStages,
                L = wl::kLookahead, P = wl::kWsProducers;
  static_assert(wl::ws_a_copies(BM) * P == BM * 8 && wl::kWsMxUnits * P == BN * 2, "the producer's copies cover the stage");
  // The producer fills stage kt after the consumers released stage kt - S, which they do once stage kt - S + 1 is
  // full; the producer completes that stage at the start of its step kt - S + 1 + L, which must be step kt at the latest.
  static_assert(L <= S - 1, "the ring is deep enough for the lookahead");
  extern __shared__ __align__(16) uint8_t smem_raw[];
  __shared__ int rows_src[BM];
  const uint32_t raw = smem_addr(smem_raw);
  uint8_t* smem = smem_raw + ((wl::kAtomBytes - (raw & (wl::kAtomBytes - 1))) & (wl::kAtomBytes - 1));
  const uint32_t sbase = smem_addr(smem);
  const int tid = threadIdx.x;
  // a grouped problem: its rows and groups are the routing's output (launch.cuh)
  pdl_wait();
  pdl_launch_dependents();
  int g = 0, row0 = 0, row_end = 0;
  if (!gemm_tile_block_rows(p, int(blockIdx.y), BM, g, row0, row_end)) return;
  const GemmColumns cols = gemm_tile_block_columns(p, int(blockIdx.x));
  const int n0 = cols.n0, N = cols.N;
  for (int i = tid; i < BM; i += C + P) {
    const int r = row0 + i;
    rows_src[i] = r < row_end ? (p.a_rows ? p.a_rows[r] : r) : -1;
  }
  const uint32_t full0 = sbase + uint32_t(wl::ws_bar_offset(BM, 0)), empty0 = sbase + uint32_t(wl::ws_bar_offset(BM, S));
  if (tid == 0) {
    for (int s = 0; s < S; ++s) {
      mbar_init(full0 + 8 * s, P);
      mbar_init(empty0 + 8 * s, C / 32);
    }
    fence_barrier_init();
  }
  __syncthreads();
  const int K = p.K, KB = K / 32, nk = (K + BK - 1) / BK;

  if (tid < C) {
    // ---- consumers: wait for slot kt % S, its wgmma; release the slot of step kt - 1 once those completed ----
    const int wg = tid / wl::kWgThreads;
    // No zero stores into the accumulators: the tile's first wgmma writes them (scale-d 0). With `acc[i] = 0.f` here
    // ptxas serialized every wgmma of the loop (C7515: "non wgmma instructions defining accumulator registers ...
    // between start and end of the pipeline stage"; a wait for each wgmma before the next, 15% of the stall
    // samples on WARPGROUP.DEPBAR, H200 ncu, 22nd session). K > 0 (wgmma_grouped_ws), so the loop runs.
    float acc[wl::kAccRegs];
    int slot = 0, prev = 0;
    uint32_t phase = 0;
    for (int kt = 0; kt < nk; ++kt) {
      mbar_wait(full0 + 8 * slot, phase);
      const uint32_t a_hi = sbase + uint32_t(wl::ws_a_offset(BM, slot, 0)), a_lo = sbase + uint32_t(wl::ws_a_offset(BM, slot, 1));
      const uint32_t wt = sbase + uint32_t(wl::ws_dec_offset(BM, slot));
      wgmma_fence();
      acc_fence(acc);
#pragma unroll
      for (int k16 = 0; k16 < BK / 16; ++k16) {
        const uint64_t db = wl::sw128_desc(wl::w_desc_addr(wt, k16));
        wgmma_m64n128k16_bf16(acc, wl::sw128_desc(wl::a_desc_addr(a_hi, wg, k16)), db, kt > 0 || k16 > 0);
        if constexpr (kLo) wgmma_m64n128k16_bf16(acc, wl::sw128_desc(wl::a_desc_addr(a_lo, wg, k16)), db);
      }
      wgmma_commit();
      wgmma_wait<1>();  // step kt - 1's wgmma have completed: its slot is free
      acc_fence(acc);
      if (kt > 0 && (tid & 31) == 0) mbar_arrive(empty0 + 8 * prev);
      prev = slot;
      if (++slot == S) slot = 0, phase ^= 1;
    }
    wgmma_wait<0>();
    acc_fence(acc);
    store_tile<EPI, kLo>(p, acc, tid, row0, row_end, n0, N, cols.ldo, cols.bias, cols.out, g * p.bias_group_elems);
    return;
  }

  // ---- the producer warpgroups ----
  const int pt = tid - C;
  // The block's scales: read by the producers alone, published among their threads by named barrier 1.
  uint8_t* scales = smem + wl::ws_scales_offset(BM);
  gemm_load_block_scales(p, g, n0, N, KB, scales, pt, P);
  asm volatile("bar.sync 1, %0;\n" ::"n"(P) : "memory");
  constexpr int kA = wl::ws_a_copies(BM);
  const int ch = wl::copy_chunk(pt);
  int64_t a_off[kA];
  bool a_ok[kA];
#pragma unroll
  for (int i = 0; i < kA; ++i) {
    const int src = rows_src[wl::ws_a_copy_row(pt, i)];
    a_ok[i] = src >= 0;
    a_off[i] = (src >= 0 ? int64_t(src) * K : 0) + ch * 8;
  }
  const uint8_t* wbase = static_cast<const uint8_t*>(cols.w) + g * p.w_group_bytes;
  int slot = 0, done_slot = 0;
  uint32_t phase = 0;
  // Step kt: first complete stage kt - L (its copies were issued L steps ago), then wait for the slot of stage kt and
  // issue it. Completing first keeps the decode off the empty wait: the consumers get stage kt - L while the producer
  // waits for them to free a slot.
  for (int kt = 0; kt < nk + L; ++kt) {
    if (kt >= L) {
      cp_async_wait<L - 1>();  // stages 0 .. kt - 1 are committed: this thread's copies of stage kt - L have landed
      const uint8_t* packed = smem + wl::ws_packed_offset(BM, done_slot);
      uint8_t* dec = smem + wl::ws_dec_offset(BM, done_slot);
#pragma unroll
      for (int i = 0; i < wl::kWsMxUnits; ++i) decode_mx_unit(packed, dec, scales, wl::ws_mx_unit(pt, i), kt - L, KB, p.w_decode_layout);
      fence_proxy_async();  // its copies and decoded units, for the consumers' wgmma
      mbar_arrive(full0 + 8 * done_slot);
      if (++done_slot == S) done_slot = 0;
    }
    if (kt < nk) {
      if (kt >= S) mbar_wait(empty0 + 8 * slot, phase ^ 1);  // the consumers released this slot's last stage
      const int k0 = kt * BK;
      const bool k_ok = k0 + ch * 8 < K;  // K % 8 == 0: a chunk is all in or all out
#pragma unroll
      for (int part = 0; part < 2; ++part) {
        if (part && !kLo) break;
        const uint16_t* a = part ? p.a_lo : p.a_hi;
        uint8_t* dst = smem + wl::ws_a_offset(BM, slot, part);
#pragma unroll
        for (int i = 0; i < kA; ++i) {
          const bool ok = a_ok[i] && k_ok;
          cp_async16_zfill(dst + wl::sw128(wl::ws_a_copy_row(pt, i), ch), ok ? a + a_off[i] + k0 : p.a_hi, ok);
        }
      }
      uint8_t* wdst = smem + wl::ws_packed_offset(BM, slot);
#pragma unroll
      for (int i = 0; i < wl::kWsMxUnits; ++i) {
        const int u = wl::ws_mx_unit(pt, i), row = u >> 1, blk = 2 * kt + (u & 1);
        const bool ok = n0 + row < N && blk < KB;
        cp_async16_zfill(wdst + u * 16, wbase + (ok ? (int64_t(n0 + row) * KB + blk) * 16 : 0), ok);
      }
      if (++slot == S) slot = 0, phase ^= 1;
    }
    cp_async_commit();  // past nk an empty group: the wait above always counts L - 1 newer groups
  }
#else
  GPTOSS_NO_DEVICE_CODE("wgmma (sm_90a)");
#endif
}

template <Epilogue EPI, int WG, bool kLo>
void launch_ws(const GemmProblem& p, dim3 grid, cudaStream_t stream) {
  constexpr int BM = WG * wl::kWgRows;
  const int smem = wl::ws_smem_bytes(BM, p.K / 32);
  opt_in_smem(gemm_wgmma_ws_kernel<EPI, WG, kLo>, smem);
  launch_k(gemm_wgmma_ws_kernel<EPI, WG, kLo>, grid, wl::ws_threads(BM), size_t(smem), stream, p);
}

template <WeightFormat WF, Epilogue EPI, int WG, bool kSplit, bool kLo = true>
void set_smem(int smem) {
  opt_in_smem(gemm_wgmma_kernel<WF, EPI, WG, kSplit, kLo>, smem);
}

#if !defined(GPTOSS_HIP)
// A split-K launch: grid (col_tiles, row_tiles, splits) of clusters 1 x 1 x splits (launch.cuh's ClusterLaunch).
// Clusters of `splits` split-K blocks of the WG-warpgroup kernel that can be resident at once on the current
// device (cudaOccupancyMaxActiveClusters), or -1 where the runtime cannot say (the error is cleared: not sticky).
template <int WG>
int split_clusters(int splits) {
  constexpr int BM = WG * wl::kWgRows;
  const int smem = wl::smem_bytes(false, BM, 0);
  set_smem<WeightFormat::BF16, Epilogue::Store, WG, true>(smem);
  const ClusterLaunch l(dim3(1, 1, unsigned(splits)), dim3(unsigned(wl::threads(BM))), size_t(smem), nullptr,
                        dim3(1, 1, unsigned(splits)), false);
  int clusters = 0;
  if (cudaOccupancyMaxActiveClusters(&clusters, gemm_wgmma_kernel<WeightFormat::BF16, Epilogue::Store, WG, true>, &l.cfg) !=
      cudaSuccess) {
    (void)cudaGetLastError();
    return -1;
  }
  return clusters;
}

// split_clusters asked once per count and device (the launcher slot of size -splits holds the count + 1; 0: not
// asked); -1 where the runtime cannot say (asked again next time).
template <int WG>
int split_resident(int splits) {
  std::atomic<int>& known = launcher_slot(gemm_wgmma_kernel<WeightFormat::BF16, Epilogue::Store, WG, true>, -splits);
  int v = known.load(std::memory_order_relaxed);
  if (v == 0) {
    const int clusters = split_clusters<WG>(splits);
    if (clusters < 0) return -1;
    v = clusters + 1;
    known.store(v, std::memory_order_relaxed);
  }
  return v - 1;
}
#endif

template <WeightFormat WF, Epilogue EPI, int WG>
void launch_wg(const GemmProblem& p, int max_tiles, cudaStream_t stream) {
  constexpr bool kMx = WF == WeightFormat::MXFP4;
  constexpr int BM = WG * wl::kWgRows;
  const int smem = wl::smem_bytes(kMx, BM, kMx ? p.K / 32 : 0);
  int col_tiles = ceil_div(p.N, wl::kBN);
  for (int i = 1; i < p.num_parts; ++i) col_tiles += ceil_div(p.extra[i - 1].N, wl::kBN);
#if !defined(GPTOSS_HIP)
  if constexpr (WF == WeightFormat::BF16 && EPI == Epilogue::Store) {
    const int splits = p.group_start ? 1
                                     : wgmma_dense_splits(current_caps(), knobs(), col_tiles * max_tiles, ceil_div(p.K, wl::kBK),
                                                          [](int s) { return split_resident<WG>(s); });
    if (splits > 1) {
      set_smem<WF, EPI, WG, true>(smem);
      if (split_resident<WG>(splits) > 0) {  // a cluster of that size runs here at all (else unsplit)
        const ClusterLaunch l(dim3(unsigned(col_tiles), unsigned(max_tiles), unsigned(splits)), dim3(unsigned(wl::threads(BM))),
                              size_t(smem), stream, dim3(1, 1, unsigned(splits)), t_pdl);
        GPTOSS_CUDA_CHECK(cudaLaunchKernelEx(&l.cfg, gemm_wgmma_kernel<WF, EPI, WG, true>, p));
        return;
      }
    }
  }
#endif
  dim3 grid(col_tiles, max_tiles);
  if constexpr (kMx) {
    if (p.group_start && wgmma_grouped_ws(current_caps(), knobs(), BM, p.K)) {  // the warp-specialized tile
      if (p.a_lo) launch_ws<EPI, WG, true>(p, grid, stream);
      else launch_ws<EPI, WG, false>(p, grid, stream);
      return;
    }
  }
  if (p.group_start && !p.a_lo) {  // the grouped MoE's bf16-only probe (GPTOSS_CUDA_MOE_ACT=bf16)
    set_smem<WF, EPI, WG, false, false>(smem);
    launch_k(gemm_wgmma_kernel<WF, EPI, WG, false, false>, grid, wl::threads(BM), size_t(smem), stream, p);
    return;
  }
  set_smem<WF, EPI, WG, false>(smem);
  launch_k(gemm_wgmma_kernel<WF, EPI, WG, false>, grid, wl::threads(BM), size_t(smem), stream, p);
}

}  // namespace

int wgmma_split_clusters(int bm, int splits) {
#if defined(GPTOSS_HIP)
  (void)bm, (void)splits;
  return -1;
#else
  if (splits < 1 || splits > wl::kMaxSplits) return -1;
  return bm == 128 ? split_clusters<2>(splits) : bm == 64 ? split_clusters<1>(splits) : -1;
#endif
}

template <WeightFormat WF, Epilogue EPI>
void launch_gemm_wgmma(const GemmProblem& p, int bm, int max_tiles, cudaStream_t stream) {
  if (WF == WeightFormat::MXFP4 && p.K / 32 > wl::kMaxKBlocks)
    throw runtime_error("gemm wgmma: K = " + std::to_string(p.K) + " has more MX blocks a row than the tile keeps (" +
                        std::to_string(wl::kMaxKBlocks) + ")");
  if (bm == 128) return launch_wg<WF, EPI, 2>(p, max_tiles, stream);
  if (bm == 64) return launch_wg<WF, EPI, 1>(p, max_tiles, stream);
  throw runtime_error("gemm wgmma: tile rows must be 64 or 128 (gemm_tile_rows), got " + std::to_string(bm));
}

template void launch_gemm_wgmma<WeightFormat::BF16, Epilogue::Store>(const GemmProblem&, int, int, cudaStream_t);
template void launch_gemm_wgmma<WeightFormat::MXFP4, Epilogue::Store>(const GemmProblem&, int, int, cudaStream_t);
template void launch_gemm_wgmma<WeightFormat::MXFP4, Epilogue::SwiGLU>(const GemmProblem&, int, int, cudaStream_t);
template void launch_gemm_wgmma<WeightFormat::BF16, Epilogue::SwiGLU>(const GemmProblem&, int, int, cudaStream_t);

}  // namespace gptoss::cuda
