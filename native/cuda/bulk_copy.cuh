// Hopper's asynchronous bulk copies (the TMA unit, sm_90+) and the shared-memory barriers that count their bytes:
// cp.async.bulk (1-D, global -> shared), cp.async.bulk.tensor (a box of a tensor map) and mbarrier's
// arrive / expect-tx / try-wait. A copy completes on an mbarrier by its byte count (complete_tx), so a consumer
// waits for a stage's bytes without a CTA barrier (moe_stream.cu's TMA kernel). Device code of sm_90+ images only
// (GPTOSS_HAVE_BULK_ASYNC); the tensor map is encoded on the host (weight_tensor_map, moe_stream.cu).
#pragma once
#include <cstdint>

#include "arch.cuh"

namespace gptoss::cuda {

#if defined(GPTOSS_HAVE_BULK_ASYNC)
// An mbarrier in shared memory at shared-state-space address `bar` (8 bytes, 8-aligned) expecting `count` arrivals
// a phase. Every thread that will use it must see the init: fence_barrier_init() then a CTA barrier.
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void fence_barrier_init() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }
// One arrival that also expects `bytes` more of this phase's copies.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Wait until the phase of parity `parity` has completed (its arrivals and bytes all in).
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  uint32_t done;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}
// `bytes` (a multiple of 16, both addresses 16-aligned) from global `src` to shared `dst`, counted on `bar`.
__device__ __forceinline__ void bulk_copy_g2s(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
}
// The box of the 3-D tensor map at `tmap` (a __grid_constant__ kernel parameter) whose first element is at
// coordinates (c0, c1, c2), to shared `dst` (aligned to the map's swizzle span), counted on `bar`. Elements
// outside the tensor land as zeros and still count in the box's bytes.
__device__ __forceinline__ void tensor_copy_3d_g2s(uint32_t dst, const void* tmap, int c0, int c1, int c2, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(dst),
      "l"(tmap), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
      : "memory");
}
__device__ __forceinline__ void prefetch_tensor_map(const void* tmap) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(tmap) : "memory");
}
#endif

}  // namespace gptoss::cuda
