// Blackwell's native block-scaled MXFP4 MMAs (issue 12 item 5), as device wrappers: compile evidence
// for now. ptxas accepts both forms (scripts/ptx-blackwell.sh; test/blackwell-ptx.test.ts runs it
// wherever nvcc is installed), but no kernel calls them yet and they have never run: no Blackwell GPU
// has been available, and the decode MoE on them needs the activation as an MX operand too (kind::mxf4
// takes e2m1 on both sides; kind::mxf8f6f4 takes e4m3 B with e2m1 A at k32), a design still to do.
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
