// Blackwell's native block-scaled MMAs (issue 12 item 5), as device wrappers. None has run: no Blackwell GPU has
// been available. ptxas accepts them (scripts/ptx-blackwell.sh; test/blackwell-ptx.test.ts runs it wherever nvcc is
// installed).
//  - mma_mxf8f6f4_e2m1_e4m3 (sm_120a; the decode MoE's MmaMxf8 kernels, moe_decode_mma.cu): A the weights' E2M1
//    codes, one a byte (the code in bits 5..2), B the activation as e4m3, one E8M0 scale per 32 values of a row of A
//    and of a column of B, f32 accumulate. Where the instruction is not compiled but e4m3 mma.sync is (sm_89,
//    sm_90), an emulation with the same operands and result (up to the accumulation's rounding) stands in, so
//    that the kernels built on it run and are checked against the CPU on the GPUs here.
//  - mma_mxf4_m16n8k64 and tcgen05_mma_mxf4 (kind::mxf4: E2M1 on both sides): compile evidence only (a probe,
//    native/cuda/tests/blackwell_probe.cu); 4-bit activations are too coarse for a drop-in.
//  - sm_120a (GPTOSS_HAVE_MMA_BLOCK_SCALE): mma.sync m16n8k64 kind::mxf4 block_scale, A 16x64 and B
//    64x8 of E2M1 (8 codes a register, the checkpoint's nibble order), an E8M0 scale per 32 values
//    (scale_vec::2X: two a row of A, two a column of B), f32 accumulate. The scale registers hold the
//    bytes; byte id 0 / thread id 0 select them (PTX ISA, "block scaling for mma.sync").
//  - sm_100a (GPTOSS_HAVE_TCGEN05): tcgen05.mma kind::mxf4 block_scale, one thread issuing for the CTA:
//    A and B by shared-memory descriptors, D and both scale vectors in tensor memory (tcgen05.alloc'd
//    columns), the instruction descriptor giving M, N and the formats.
#pragma once
#include "common.cuh"

namespace gptoss::cuda {

// d += (A x 2^(sfa - 127)) (B x 2^(sfb - 127)) over one 32-value block (m16n8k32), the operands as e4m3 mma.sync
// lays them out: lane (g, t) holds a0 = A[g][4t..4t+3], a1 = A[g+8][4t..], a2 = A[g][16+4t..], a3 = A[g+8][16+4t..]
// (one E2M1 code a byte, in bits 5..2), b0 = B[4t..4t+3][g], b1 = B[16+4t..][g] (e4m3), d as the m16n8 f32 C.
// Scales (byte 0; byte id 0, thread id 0): lane 4r gives A's row r, lane 4r + 1 row r + 8, lane 4n B's column n.
__device__ __forceinline__ void mma_mxf8f6f4_e2m1_e4m3(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1,
                                                       uint32_t sfa, uint32_t sfb) {
#if defined(GPTOSS_HAVE_MMA_BLOCK_SCALE)
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.kind::mxf8f6f4.block_scale.scale_vec::1X.f32.e2m1.e4m3.f32.ue8m0 "
      "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3}, %10, {0, 0}, %11, {0, 0};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "r"(sfa), "r"(sfb));
#elif defined(GPTOSS_HAVE_FP8_MMA)
  // The emulation: each code as e4m3 (sign to bit 7, the magnitude bits stay: the value times 2^-6), a plain e4m3
  // MMA of the block, then the block's row and column scales (and the 2^6) on its partial sums.
  const auto e4m3 = [](uint32_t c) { return (c & 0x1C1C1C1Cu) | ((c & 0x20202020u) << 2); };
  float c[4];
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%10,%10,%10};\n"
      : "=f"(c[0]), "=f"(c[1]), "=f"(c[2]), "=f"(c[3])
      : "r"(e4m3(a[0])), "r"(e4m3(a[1])), "r"(e4m3(a[2])), "r"(e4m3(a[3])), "r"(b0), "r"(b1), "f"(0.f));
  const int lane = int(threadIdx.x) & 31, g = lane >> 2, t = lane & 3;
  const int ra = int(__shfl_sync(0xffffffffu, sfa & 0xFFu, 4 * g)), rb = int(__shfl_sync(0xffffffffu, sfa & 0xFFu, 4 * g + 1));
  const int c0 = int(__shfl_sync(0xffffffffu, sfb & 0xFFu, 8 * t)), c1 = int(__shfl_sync(0xffffffffu, sfb & 0xFFu, 8 * t + 4));
  d[0] += ldexpf(c[0], ra + c0 - 248);  // 2^(sa - 127) 2^(sb - 127) 2^6
  d[1] += ldexpf(c[1], ra + c1 - 248);
  d[2] += ldexpf(c[2], rb + c0 - 248);
  d[3] += ldexpf(c[3], rb + c1 - 248);
#else
  (void)d; (void)a; (void)b0; (void)b1; (void)sfa; (void)sfb;
  GPTOSS_NO_DEVICE_CODE("mma.sync kind::mxf8f6f4 block_scale (sm_120a), or e4m3 mma.sync to emulate it (sm_89+)");
#endif
}

// d += (A x 2^(sfa - 127)) (B x 2^(sfb - 127)) over k = 64, per 32-value block.
__device__ __forceinline__ void mma_mxf4_m16n8k64(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                                  uint32_t sfa, uint32_t sfb) {
#if defined(GPTOSS_HAVE_MMA_BLOCK_SCALE)
  asm volatile(
      "mma.sync.aligned.m16n8k64.row.col.kind::mxf4.block_scale.scale_vec::2X.f32.e2m1.e2m1.f32.ue8m0 "
      "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3}, %10, {0, 0}, %11, {0, 0};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(sfa), "r"(sfb));
#else
  (void)d; (void)a; (void)b; (void)sfa; (void)sfb;
  GPTOSS_NO_DEVICE_CODE("mma.sync kind::mxf4 block_scale (sm_120a)");
#endif
}

// One tcgen05 block-scaled MXFP4 MMA: D[tmem d] (+)= A[adesc] x B[bdesc], scales in tensor memory at
// sfa / sfb, shape and formats in idesc; accumulate = false overwrites D. Issued by one thread.
__device__ __forceinline__ void tcgen05_mma_mxf4(uint32_t d, uint64_t adesc, uint64_t bdesc, uint32_t idesc, uint32_t sfa,
                                                 uint32_t sfb, bool accumulate) {
#if defined(GPTOSS_HAVE_TCGEN05)
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.u32 p, %4, 0;\n"
      " tcgen05.mma.cta_group::1.kind::mxf4.block_scale.scale_vec::2X [%0], %1, %2, %3, [%5], [%6], p;\n}\n"
      :
      : "r"(d), "l"(adesc), "l"(bdesc), "r"(idesc), "r"(uint32_t(accumulate)), "r"(sfa), "r"(sfb));
#else
  (void)d; (void)adesc; (void)bdesc; (void)idesc; (void)sfa; (void)sfb; (void)accumulate;
  GPTOSS_NO_DEVICE_CODE("tcgen05.mma kind::mxf4 block_scale (sm_100a)");
#endif
}

}  // namespace gptoss::cuda
