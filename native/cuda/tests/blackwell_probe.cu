// Compile probe for mma_mxf4.cuh (issue 12 item 5): one kernel per Blackwell MMA form, built only by
// scripts/ptx-blackwell.sh (PTX for sm_120a / sm_100a, ptxas, and SASS where cuobjdump exists), never
// linked into the addon or launched. It shows the toolchain takes the instructions and what they
// lower to; the fragment contents here are placeholders read from global memory.
#include "cuda/mma_mxf4.cuh"

namespace gptoss::cuda {

__global__ void probe_mma_mxf4_sm120(const uint32_t* a, const uint32_t* b, const uint32_t* scales, float* out) {
  const int l = threadIdx.x;
  float d[4] = {0.f, 0.f, 0.f, 0.f};
  const uint32_t af[4] = {a[4 * l], a[4 * l + 1], a[4 * l + 2], a[4 * l + 3]};
  const uint32_t bf[2] = {b[2 * l], b[2 * l + 1]};
  mma_mxf4_m16n8k64(d, af, bf, scales[l], scales[32 + l]);
  for (int i = 0; i < 4; ++i) out[4 * l + i] = d[i];
}

__global__ void probe_tcgen05_mxf4_sm100(uint64_t adesc, uint64_t bdesc, uint32_t idesc, uint32_t* out) {
#if defined(GPTOSS_HAVE_TCGEN05)
  __shared__ uint32_t tmem;
  if (threadIdx.x < 32)  // one warp allocates 128 tensor-memory columns: D, then the two scale vectors
    asm volatile("tcgen05.alloc.cta_group::1.sync.aligned.shared::cta.b32 [%0], 128;\n"
                 :: "r"(uint32_t(__cvta_generic_to_shared(&tmem))));
  __syncthreads();
  if (threadIdx.x == 0) tcgen05_mma_mxf4(tmem, adesc, bdesc, idesc, tmem + 64, tmem + 96, false);
  __syncthreads();
  if (threadIdx.x < 32) {
    asm volatile("tcgen05.dealloc.cta_group::1.sync.aligned.b32 %0, 128;\n" :: "r"(tmem));
    asm volatile("tcgen05.relinquish_alloc_permit.cta_group::1.sync.aligned;\n");
  }
  out[threadIdx.x] = tmem;
#else
  (void)adesc; (void)bdesc; (void)idesc; (void)out;
  GPTOSS_NO_DEVICE_CODE("tcgen05 (sm_100a)");
#endif
}

}  // namespace gptoss::cuda
