// Number formats on the device: bf16 <-> f32 on raw bits, E8M0 scales, E2M1 (MXFP4) values through
// lookup tables or prmt byte tables, and the parameter/bias readers of bf16-or-f32 checkpoints.
#pragma once
#include <cstdint>

#include "arch.cuh"

namespace gptoss::cuda {

// Optional bias/parameter vectors come as bf16 (checkpoint) or f32.
enum BiasKind : int { kBiasNone = 0, kBiasBF16 = 1, kBiasF32 = 2 };

// bf16 <-> f32 on raw bits: widening is exact; narrowing rounds to nearest even (as torch).
__device__ __forceinline__ float bf16_lo(uint32_t pair) { return __uint_as_float(pair << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t pair) { return __uint_as_float(pair & 0xffff0000u); }
__device__ __forceinline__ float bf16_bits_to_f32(uint16_t h) { return __uint_as_float(uint32_t(h) << 16); }
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x = lo (low half), .y = hi
  return *reinterpret_cast<uint32_t*>(&v);
}

// IEEE binary16 bits -> f32, exact (normals and subnormals by one multiply; inf and NaN kept): Q8_0's
// block scales (q8.cu, matmul.cu's gemv_xs_kernel).
__device__ __forceinline__ float f16_bits_to_f32(uint32_t h) {
  const uint32_t sign = (h & 0x8000u) << 16, em = h & 0x7fffu;
  float f = __uint_as_float(em << 13) * 0x1p112f;
  if (em >= 0x7c00u) f = __uint_as_float(0x7f800000u | ((em & 0x3ffu) << 13));
  return __uint_as_float(__float_as_uint(f) | sign);
}

// Byte b of a word of four int8, as f32, exactly and without I2F (a quarter-rate conversion): `flipped`
// is the word XOR 0x80808080 (each byte q + 128, 0..255); one byte permute puts that byte into the low
// mantissa byte of 2^23 (0x4B000000), so the float is 2^23 + q + 128, and one exact subtraction leaves q.
#if !defined(GPTOSS_HIP)  // its one user, gemv_xs_kernel, is NVIDIA-only (policy.h's choose_gemv)
__device__ __forceinline__ float i8_flipped_to_f32(uint32_t flipped, int b) {
  return __uint_as_float(__byte_perm(flipped, 0x4B000000u, 0x7540u | unsigned(b))) - 8388736.f;
}
#endif

// s + the dot of 8 bf16 weights (one 16-byte chunk: 4 packed pairs, low half first) with x[0..8) given as
// two float4s, accumulated in order: the bf16 GEMVs' inner step (matmul.cu's gemv_kernel, moe_bf16.cu).
__device__ __forceinline__ float bf16x8_dot(const uint4 w, const float4 x0, const float4 x1, float s) {
  s = fmaf(bf16_lo(w.x), x0.x, s); s = fmaf(bf16_hi(w.x), x0.y, s);
  s = fmaf(bf16_lo(w.y), x0.z, s); s = fmaf(bf16_hi(w.y), x0.w, s);
  s = fmaf(bf16_lo(w.z), x1.x, s); s = fmaf(bf16_hi(w.z), x1.y, s);
  s = fmaf(bf16_lo(w.w), x1.z, s); s = fmaf(bf16_hi(w.w), x1.w, s);
  return s;
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

// The same LUT replicated once per bank (256 x 32 words = 32 KB): entry b of copy L sits at word
// b*32 + L, i.e. always in bank L, so a warp's 32 random lookups never conflict. The decode GEMVs
// use it: with the shared 1 KB table, ncu showed L1/TEX at 89% (bank-conflict replays) and DRAM at
// 19% (bench/RESULTS.md). A lane reads copy lane % 32 (lane_lut_copy): 32 copies whatever the warp
// size, since lanes 32..63 of an AMD wavefront would otherwise read the next entry's words (and LDS
// has 32 banks too).
constexpr int kLaneLutCopies = 32;
constexpr int kLaneLutWords = 256 * kLaneLutCopies;
__device__ __forceinline__ const uint32_t* lane_lut_copy(const uint32_t* lut, int lane) {
  return lut + lane % kLaneLutCopies;
}
__device__ __forceinline__ void fill_e2m1_lane_lut(uint32_t* lut) {
  for (int i = threadIdx.x; i < kLaneLutWords; i += blockDim.x) {
    const uint32_t b = uint32_t(i) / kLaneLutCopies;
    lut[i] = e2m1_bf16_bits(b & 15u) | (e2m1_bf16_bits(b >> 4) << 16);
  }
}

// Dot of 32 MXFP4 values (one 16-byte block, unscaled) with 32 f32 values x[0..31].
// `lut` is either the shared table (stride 1) or a lane's copy of the per-lane table (stride
// kLaneLutCopies, lane_lut_copy).
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
}  // namespace gptoss::cuda
