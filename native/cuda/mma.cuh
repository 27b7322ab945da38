// Tensor-core tiles: ldmatrix fragment loads and the bf16 mma.sync m16n8k16 (sm_80+). The FP8
// m16n8k32 MMA lives with its only user (moe_decode_mma.cu).
#pragma once
#include <cstdint>

#include "arch.cuh"
#include "async_copy.cuh"

namespace gptoss::cuda {

#if defined(GPTOSS_HAVE_MMA_SYNC)
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
// ldsm_x4 at a shared-state-space address (smem_addr once, offsets added in the loop).
__device__ __forceinline__ void ldsm_x4_s(uint32_t* r, uint32_t s) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s)
               : "memory");
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
