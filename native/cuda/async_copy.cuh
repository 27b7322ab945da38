// Asynchronous global -> shared copies (cp.async, sm_80+): 16-byte copies with zero fill, and their
// commit groups. Device code of the tensor-core kernels only.
#pragma once
#include <cstdint>

#include "arch.cuh"

namespace gptoss::cuda {

#if defined(GPTOSS_HAVE_MMA_SYNC)
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
// cp_async16 at a shared-state-space address (smem_addr once, offsets added in the loop).
__device__ __forceinline__ void cp_async16_s(uint32_t s, const void* g) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(g) : "memory");
}
// cp_async16_s with L2's 256-byte prefetch size: the DRAM read around g is a 256-byte run (for a pattern of short
// pieces of many rows that comes back for the row's next bytes soon: the streaming MoE's weight copies).
__device__ __forceinline__ void cp_async16_s_l2_256(uint32_t s, const void* g) {
  asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16;\n" ::"r"(s), "l"(g) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
#endif
}  // namespace gptoss::cuda
