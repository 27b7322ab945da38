// Reductions shared by the SIMT kernels: warp sums and maxima over WARP_SIZE lanes, the block-wide
// sum of squares of a norm row held in registers (one fixed order: bit-identical across the kernels
// that norm a row), and the "last block arrives" grid reduction.
#pragma once
#include <cstdint>
#include <type_traits>

#include "arch.cuh"
#include "shapes.h"

namespace gptoss::cuda {

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

// Sum / max over the kWidth lanes of an aligned lane group: the whole warp by default; a kernel laid
// out for 32 lanes (attention_decode_kernel) passes 32 and runs two groups a 64-lane wavefront.
template <int kWidth = WARP_SIZE>
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int m = kWidth / 2; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m, kWidth);
  return v;
}
template <int kWidth = WARP_SIZE>
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int m = kWidth / 2; m > 0; m >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, m, kWidth));
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
}  // namespace gptoss::cuda
