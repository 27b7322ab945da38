// Shared device helpers (warp reductions, bf16/MXFP4 decoding, mma.sync) and the error macro.
// Everything here is header-only and inlined; kernels live in their family's .cu file.
#pragma once
#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>

#include "arch.cuh"
#include "core/error.h"

namespace gptoss::cuda {

// Every CUDA runtime error becomes a gptoss::Error naming the call (never abort: JS catches it).
[[noreturn]] void throw_cuda_error(const char* call, cudaError_t err, const char* file, int line);

#define GPTOSS_CUDA_CHECK(call)                                                          \
  do {                                                                                   \
    cudaError_t gptoss_err_ = (call);                                                    \
    if (gptoss_err_ != cudaSuccess) ::gptoss::cuda::throw_cuda_error(#call, gptoss_err_, __FILE__, __LINE__); \
  } while (0)
// After every launch: configuration errors surface here, asynchronous faults at the next sync.
#define GPTOSS_CUDA_LAUNCH(name) GPTOSS_CUDA_CHECK(cudaGetLastError())

// Device-side error flags (one int per backend, checked at synchronize()/copy_to_host()).
enum DeviceErrorBits : int {
  kErrTokenRange = 1,     // embedding: token id outside [0, vocab)
  kErrPositionRange = 2,  // kv_store / attention: position outside [0, ctx)
  kErrExpertRange = 4,    // moe: expert index outside [0, E)
};

// Grid-wide counters for the "last block finishes" pattern (one launch instead of a second
// reduction kernel): the backend owns kCountersTotal ints, zeroed once; each kernel family uses its
// own range, indexed by what its blocks reduce over (a token, a (token, kv head) pair).
enum CounterRange : int {
  kCountersRouter = 0,       // [64]: router top-k, one per token (multi-block path: n <= 64)
  kCountersAttention = 64,   // [2048]: split-KV decode, one per (token, kv head)
  kCountersArgmax = 2112,    // [1]: greedy sampling over the vocabulary
  kCountersNormGemv = 2113,  // [1]: add_rmsnorm + GEMV (one token), the block that writes x and normed
  kCountersMoe = 4096,       // [4096]: decode MoE down, one per (token, 16-row tile)
  kCountersMoeSize = 4096,
  kCountersTotal = 8192,
};

// Every block calls this once, after writing its partial results. Exactly one block (the last to
// arrive) gets true; it sees the other blocks' writes and has reset the counter to 0 for the next
// launch (a graph replay reuses it). No block may skip the call (early returns would strand it).
__device__ __forceinline__ bool last_block_arrives(int* counter, int blocks) {
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    last = atomicAdd(counter, 1) == blocks - 1;
    if (last) atomicExch(counter, 0);
  }
  __syncthreads();
  if (last) __threadfence();
  return last;
}

// An integer tuning knob from the environment: its value when set within [lo, hi], else fallback.
inline int env_int(const char* name, int fallback, int lo, int hi) {
  const char* v = std::getenv(name);
  const int n = v ? std::atoi(v) : 0;
  return v && n >= lo && n <= hi ? n : fallback;
}

// query(dev) for the current device, once per device (values are nonzero; up to 64 devices cached).
template <typename F>
inline int per_device(int (&cache)[64], F&& query) {
  int dev = 0;
  GPTOSS_CUDA_CHECK(cudaGetDevice(&dev));
  if (dev >= 0 && dev < 64 && cache[dev]) return cache[dev];
  const int v = query(dev);
  if (dev >= 0 && dev < 64) cache[dev] = v;
  return v;
}
inline int device_attribute(int dev, cudaDeviceAttr attr) {
  int v = 0;
  GPTOSS_CUDA_CHECK(cudaDeviceGetAttribute(&v, attr, dev));
  return v;
}
// The current device's opt-in shared memory a block (227 KB on sm_90/100, 163 KB on sm_80, 99 KB on
// sm_86/89/120). GPTOSS_CUDA_SMEM_LIMIT (bytes) lowers it, so a big part can run the tile choices of
// a smaller one (gpu_check does, for sm_86/89/120's 101376).
inline int device_smem_optin() {
  static int cache[64] = {};
  return per_device(cache, [](int dev) {
    const int v = device_attribute(dev, cudaDevAttrMaxSharedMemoryPerBlockOptin);
    const int lim = env_int("GPTOSS_CUDA_SMEM_LIMIT", 0, 1, INT_MAX);
    return lim > 0 ? std::min(v, lim) : v;
  });
}
// The current device's SM count.
inline int device_sm_count() {
  static int cache[64] = {};
  return per_device(cache, [](int dev) { return device_attribute(dev, cudaDevAttrMultiProcessorCount); });
}
// The current device's compute capability as arch_code() (e.g. 900).
inline int device_arch_code() {
  static int cache[64] = {};
  return per_device(cache, [](int dev) {
    return arch_code(device_attribute(dev, cudaDevAttrComputeCapabilityMajor),
                     device_attribute(dev, cudaDevAttrComputeCapabilityMinor));
  });
}

// ---------------------------------------------------------------------------------------------
// Programmatic dependent launch (sm_90+). Decode-step kernels are launched with launch_k(), which
// sets the programmatic-serialization attribute when the backend enables it for the calling
// thread's op (t_pdl): the next kernel's CTAs may be scheduled while this one is still running.
// The protocol every launch_k kernel follows:
//  - every thread calls pdl_wait() (waits for the previous kernel to complete, its writes visible)
//    before it reads anything the previous kernel writes or writes anything that kernel reads;
//  - then pdl_launch_dependents(), so the next kernel's CTAs start only once all of this grid's
//    have passed their wait. Hence, before its own wait, a kernel may read the outputs of kernels
//    two or more launches back (they are complete) and weights: that is the overlap.
//  - no CTA may exit without waiting (error paths included), so a grid's completion still
//    implies its predecessors'.
// On older archs both calls are no-ops and launch_k() launches normally.
// ---------------------------------------------------------------------------------------------
inline thread_local bool t_pdl = false;

__device__ __forceinline__ void pdl_wait() {
#if defined(GPTOSS_HAVE_PDL)
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(GPTOSS_HAVE_PDL)
  asm volatile("griddepcontrol.launch_dependents;\n" :::);
#endif
}

template <typename... KArgs, typename... Args>
void launch_k(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args&&... args) {
#if defined(GPTOSS_HIP)
  kernel<<<grid, block, smem, stream>>>(std::forward<Args>(args)...);  // no programmatic dependent launch on AMD
  GPTOSS_CUDA_CHECK(cudaGetLastError());
#else
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = t_pdl ? 1 : 0;
  GPTOSS_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
#endif
}

// Optional bias/parameter vectors come as bf16 (checkpoint) or f32.
enum BiasKind : int { kBiasNone = 0, kBiasBF16 = 1, kBiasF32 = 2 };

inline int ceil_div(int64_t a, int64_t b) { return int((a + b - 1) / b); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int m = WARP_SIZE / 2; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int m = WARP_SIZE / 2; m > 0; m >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, m));
  return v;
}

// A bf16 or f32 row of H4 float4s as kPer float4s a thread (element i = threadIdx.x + j * blockDim.x),
// read through the read-only path: norm weights.
template <int kPer>
__device__ __forceinline__ void load_row4(const void* row, bool bf16, int H4, float4 (&out)[kPer]) {
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int i = threadIdx.x + j * blockDim.x;
    if (i < H4) {
      if (bf16) {
        const uint2 b = __ldg(reinterpret_cast<const uint2*>(row) + i);
        out[j] = make_float4(__uint_as_float(b.x << 16), __uint_as_float(b.x & 0xffff0000u),
                             __uint_as_float(b.y << 16), __uint_as_float(b.y & 0xffff0000u));
      } else {
        out[j] = __ldg(reinterpret_cast<const float4*>(row) + i);
      }
    }
  }
}

// The row-in-registers norm kernels (rmsnorm_vec_kernel, router_norm_split_kernel): kRow4Threads
// threads hold a row of H/4 float4s, kPer = 1..4 of them each. row4_ok: whether the pointers and H
// allow it (16-byte rows; the weight 8-byte aligned as bf16, 16 as f32). with_row4_per calls
// f(std::integral_constant<int, kPer>) with the smallest kPer that covers H.
constexpr int kRow4Threads = 256;
inline bool row4_ok(const void* x, const void* residual, const void* out, const void* weight, bool weight_bf16, int H) {
  const bool aligned = ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(residual) |
                         reinterpret_cast<uintptr_t>(out)) & 15) == 0 &&
                       (reinterpret_cast<uintptr_t>(weight) & (weight_bf16 ? 7 : 15)) == 0;
  return aligned && H % 4 == 0 && H / 4 <= 4 * kRow4Threads;
}
template <typename F>
void with_row4_per(int H, F&& f) {
  const int H4 = H / 4;
  if (H4 <= kRow4Threads) f(std::integral_constant<int, 1>{});
  else if (H4 <= 2 * kRow4Threads) f(std::integral_constant<int, 2>{});
  else if (H4 <= 3 * kRow4Threads) f(std::integral_constant<int, 3>{});
  else f(std::integral_constant<int, 4>{});
}

// Sum of squares of one row held as kPer float4s a thread (element i = threadIdx.x + j * blockDim.x
// of the row's float4s, i < H4), over the block: one fixed order, so every kernel that norms a row
// through this gets bit-identical results (rmsnorm, add_rmsnorm, add_rmsnorm + router). `partial`:
// 32 floats of shared memory. Ends with the block synchronized.
template <int kPer>
__device__ __forceinline__ float block_sum_squares(const float4 (&v)[kPer], int H4, float* partial) {
  float ss = 0.f;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int i = threadIdx.x + j * blockDim.x;
    if (i < H4) {
      ss = fmaf(v[j].x, v[j].x, ss);
      ss = fmaf(v[j].y, v[j].y, ss);
      ss = fmaf(v[j].z, v[j].z, ss);
      ss = fmaf(v[j].w, v[j].w, ss);
    }
  }
  for (int m = WARP_SIZE / 2; m > 0; m >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, m);
  const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
  if (lane == 0) partial[warp] = ss;
  __syncthreads();
  if (warp == 0) {
    float t = lane < int(blockDim.x / WARP_SIZE) ? partial[lane] : 0.f;
    for (int m = WARP_SIZE / 2; m > 0; m >>= 1) t += __shfl_xor_sync(0xffffffffu, t, m);
    if (lane == 0) partial[0] = t;
  }
  __syncthreads();
  return partial[0];
}
// The rest of the row-in-registers norm those kernels share (same layout as block_sum_squares):
// v = x (+ residual when kAdd), 1 / rms(v) with eps, and a normed float4 v * inv * w.
template <int kPer, bool kAdd>
__device__ __forceinline__ void row4_load(const float* x, const float* residual, int H4, float4 (&v)[kPer]) {
  const float4* xr = reinterpret_cast<const float4*>(x);
  const float4* rr = reinterpret_cast<const float4*>(residual);
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int i = threadIdx.x + j * blockDim.x;
    if (i < H4) {
      v[j] = xr[i];
      if (kAdd) {
        const float4 r = rr[i];
        v[j].x += r.x; v[j].y += r.y; v[j].z += r.z; v[j].w += r.w;
      }
    }
  }
}
template <int kPer>
__device__ __forceinline__ float row4_inv_rms(const float4 (&v)[kPer], int H, float eps, float* partial) {
  return rsqrtf(block_sum_squares<kPer>(v, H / 4, partial) / float(H) + eps);
}
__device__ __forceinline__ float4 row4_normed(float4 v, float inv, float4 w) {
  return make_float4(v.x * inv * w.x, v.y * inv * w.y, v.z * inv * w.z, v.w * inv * w.w);
}

// bf16 <-> f32 on raw bits: widening is exact; narrowing rounds to nearest even (as torch).
__device__ __forceinline__ float bf16_lo(uint32_t pair) { return __uint_as_float(pair << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t pair) { return __uint_as_float(pair & 0xffff0000u); }
__device__ __forceinline__ float bf16_bits_to_f32(uint16_t h) { return __uint_as_float(uint32_t(h) << 16); }
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x = lo (low half), .y = hi
  return *reinterpret_cast<uint32_t*>(&v);
}

// Element i of a parameter vector stored as bf16 (checkpoint) or f32.
__device__ __forceinline__ float param_f32(const void* p, bool bf16, int64_t i) {
  return bf16 ? bf16_bits_to_f32(static_cast<const uint16_t*>(p)[i]) : static_cast<const float*>(p)[i];
}

// A bias of BiasKind kind (none, bf16 or f32) at index i.
__device__ __forceinline__ float bias_at(const void* bias, int kind, int64_t i) {
  if (kind == kBiasBF16) return bf16_bits_to_f32(static_cast<const uint16_t*>(bias)[i]);
  if (kind == kBiasF32) return static_cast<const float*>(bias)[i];
  return 0.f;
}

// gpt-oss's clamped SwiGLU of one (gate, up) pair: (up + 1) * gate * sigmoid(alpha * gate), gate <= limit,
// |up| <= limit. Every MoE kernel (decode, grouped GEMM epilogue) uses this one.
__device__ __forceinline__ float swiglu(float gate, float up, float limit, float alpha) {
  gate = fminf(gate, limit);
  up = fminf(fmaxf(up, -limit), limit);
  return (up + 1.f) * (gate / (1.f + expf(-alpha * gate)));
}

// E8M0 scale byte -> 2^(s-127) as f32 (transformers integrations/mxfp4.py uses ldexp; s = 0 is
// the subnormal 2^-127, s = 255 gives inf like ldexp does).
__device__ __forceinline__ float e8m0_to_f32(uint32_t s) {
  return s == 0 ? __uint_as_float(0x00400000u) : __uint_as_float(s << 23);
}

// E2M1 byte LUT: byte b (two FP4 codes, value 2k in the low nibble) -> bf16x2 {low value, high value},
// unscaled. bf16 holds every E2M1 value exactly; the E8M0 scale is applied afterwards (an exact
// power-of-two multiply). One 32-bit shared load decodes two weights: see bench/RESULTS.md for why
// (shared-memory bandwidth, not ALU, bounds the MXFP4 decode at 4+ TB/s).
__device__ __forceinline__ uint32_t e2m1_bf16_bits(uint32_t code) {
  // 0, 0.5, 1, 1.5, 2, 3, 4, 6 as bf16: 0x0000 0x3F00 0x3F80 0x3FC0 0x4000 0x4040 0x4080 0x40C0
  uint32_t mag = code & 7u;
  uint32_t bits = mag >= 2 ? 0x3F80u + ((mag - 2u) << 6) : (mag == 1 ? 0x3F00u : 0u);
  return bits | ((code & 8u) << 12);
}
// Fill a 256-entry shared LUT; call with all threads of the block, then __syncthreads().
__device__ __forceinline__ void fill_e2m1_lut(uint32_t* lut) {
  for (int b = threadIdx.x; b < 256; b += blockDim.x)
    lut[b] = e2m1_bf16_bits(b & 15u) | (e2m1_bf16_bits(b >> 4) << 16);
}

// The same LUT replicated once per lane (256 x 32 words = 32 KB): entry b of lane L sits at word
// b*32 + L, i.e. always in bank L, so a warp's 32 random lookups never conflict. The decode GEMVs
// use it: with the shared 1 KB table, ncu showed L1/TEX at 89% (bank-conflict replays) and DRAM at
// 19% (bench/RESULTS.md).
constexpr int kLaneLutWords = 256 * 32;
__device__ __forceinline__ void fill_e2m1_lane_lut(uint32_t* lut) {
  for (int i = threadIdx.x; i < kLaneLutWords; i += blockDim.x) {
    const uint32_t b = uint32_t(i) >> 5;
    lut[i] = e2m1_bf16_bits(b & 15u) | (e2m1_bf16_bits(b >> 4) << 16);
  }
}

// Dot of 32 MXFP4 values (one 16-byte block, unscaled) with 32 f32 values x[0..31].
// `lut` is either the shared table (stride 1, lane 0) or the per-lane table (stride 32, lane).
template <int kStride = 1>
__device__ __forceinline__ float mxfp4_block_dot(const uint4& blk, const float* x, const uint32_t* lut) {
  const uint32_t w[4] = {blk.x, blk.y, blk.z, blk.w};
  float acc = 0.f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      uint32_t pair = lut[((w[i] >> (8 * b)) & 0xffu) * kStride];
      acc = fmaf(bf16_lo(pair), x[8 * i + 2 * b], acc);
      acc = fmaf(bf16_hi(pair), x[8 * i + 2 * b + 1], acc);
    }
  }
  return acc;
}

#if defined(GPTOSS_HAVE_MMA_SYNC)
// Shared-memory staging of the tensor-core kernels (sm_80+): cp.async (16 bytes, L2 only; src_bytes
// < 16 zero-fills the rest), its groups, and ldmatrix.
__device__ __forceinline__ uint32_t smem_addr(const void* p) { return uint32_t(__cvta_generic_to_shared(p)); }
__device__ __forceinline__ void cp_async16(void* s, const void* g) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(s)), "l"(g) : "memory");
}
__device__ __forceinline__ void cp_async16_zfill(void* s, const void* g, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(s)), "l"(g), "r"(valid ? 16 : 0)
               : "memory");
}
// The first n (1..16) bytes from g, the rest of the 16 zero-filled: reads nothing past g + n.
__device__ __forceinline__ void cp_async16_n(void* s, const void* g, int n) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(s)), "l"(g), "r"(n) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void ldsm_x2(uint32_t& r0, uint32_t& r1, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r0), "=r"(r1)
               : "r"(smem_addr(p))
               : "memory");
}
__device__ __forceinline__ void ldsm_x4(uint32_t* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p))
               : "memory");
}
__device__ __forceinline__ uint32_t prmt(uint32_t a, uint32_t b, uint32_t sel) {
  uint32_t r;
  asm("prmt.b32 %0, %1, %2, %3;\n" : "=r"(r) : "r"(a), "r"(b), "r"(sel));
  return r;
}
// One 32-bit word of MXFP4 codes (byte b holds values 2b, 2b + 1) -> 4 bf16x2 pairs (2b, 2b + 1),
// exact unscaled E2M1 values built from prmt byte tables (no lookup in memory, ~2.3 ops a weight).
__device__ __forceinline__ void e2m1_word_to_bf16(uint32_t w, uint32_t p[4]) {
  // bf16 of 0, .5, 1, 1.5, 2, 3, 4, 6: high bytes 00 3F 3F 3F 40 40 40 40, low bytes 00 00 80 C0 00 40 80 C0
  const uint32_t m = w & 0x77777777u, sg = (w >> 3) & 0x11111111u;
  const uint32_t hl = prmt(0x3F3F3F00u, 0x40404040u, m) | prmt(0x00008000u, 0u, sg);
  const uint32_t ll = prmt(0xC0800000u, 0xC0804000u, m);
  const uint32_t hh = prmt(0x3F3F3F00u, 0x40404040u, m >> 16) | prmt(0x00008000u, 0u, sg >> 16);
  const uint32_t lh = prmt(0xC0800000u, 0xC0804000u, m >> 16);
  p[0] = prmt(ll, hl, 0x5140u);
  p[1] = prmt(ll, hl, 0x7362u);
  p[2] = prmt(lh, hh, 0x5140u);
  p[3] = prmt(lh, hh, 0x7362u);
}
// a * b rounded once to bf16 (fma with a -0 addend, subnormals kept): with b a power of two this is
// the exact E2M1 x E8M0 product wherever bf16 holds it.
__device__ __forceinline__ uint32_t bf16x2_mul(uint32_t a, uint32_t b) {
  uint32_t r;
  asm("fma.rn.bf16x2 %0, %1, %2, %3;\n" : "=r"(r) : "r"(a), "r"(b), "r"(0x80008000u));
  return r;
}
#endif

#if defined(GPTOSS_HAVE_MMA_SYNC) || !defined(__CUDA_ARCH__)
// D = A(16x16, row) * B(16x8, col) + D, bf16 in, f32 accumulate. Fragment layout (PTX ISA,
// "mma.m16n8k16"): g = lane/4, t = lane%4; a0:(g,2t..2t+1) a1:(g+8,2t..) a2:(g,2t+8..) a3:(g+8,2t+8..);
// b0:(k=2t..2t+1, n=g) b1:(k=2t+8.., n=g); c0,c1:(g, 2t..2t+1) c2,c3:(g+8, 2t..2t+1).
__device__ __forceinline__ void mma_bf16_16816(float* c, const uint32_t* a, const uint32_t* b) {
#if defined(__CUDA_ARCH__)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}
#endif

}  // namespace gptoss::cuda
