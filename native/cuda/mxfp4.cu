#include "mxfp4.cuh"

namespace gptoss::cuda {

namespace {

// One thread per 16-byte block: one 16-byte load in, 128 (f32) or 64 (bf16) bytes out, all stores
// 16 bytes wide. Decoding through the byte LUT (common.cuh); the scale multiply is exact.
template <bool BF16>
__global__ void __launch_bounds__(256) dequant_kernel(const uint4* blocks, const uint8_t* scales, int64_t nblocks,
                                                      void* out) {
  __shared__ uint32_t lut[256];
  fill_e2m1_lut(lut);
  __syncthreads();
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < nblocks;
       b += int64_t(gridDim.x) * blockDim.x) {
    const uint4 v = __ldg(blocks + b);
    const float scale = e8m0_to_f32(scales[b]);
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
    float f[32];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        uint32_t pair = lut[(w[i] >> (8 * k)) & 0xffu];
        f[8 * i + 2 * k] = bf16_lo(pair) * scale;
        f[8 * i + 2 * k + 1] = bf16_hi(pair) * scale;
      }
    if (BF16) {
      uint4* o = reinterpret_cast<uint4*>(out) + b * 4;
#pragma unroll
      for (int q = 0; q < 4; ++q)
        o[q] = make_uint4(pack_bf16x2(f[8 * q], f[8 * q + 1]), pack_bf16x2(f[8 * q + 2], f[8 * q + 3]),
                          pack_bf16x2(f[8 * q + 4], f[8 * q + 5]), pack_bf16x2(f[8 * q + 6], f[8 * q + 7]));
    } else {
      float4* o = reinterpret_cast<float4*>(out) + b * 8;
#pragma unroll
      for (int q = 0; q < 8; ++q) o[q] = make_float4(f[4 * q], f[4 * q + 1], f[4 * q + 2], f[4 * q + 3]);
    }
  }
}

}  // namespace

void launch_mxfp4_dequantize(const uint8_t* blocks, const uint8_t* scales, int64_t nblocks, void* out,
                             bool out_bf16, gpuStream_t stream) {
  if (nblocks <= 0) return;
  int64_t grid = ceil_div(nblocks, 256);
  if (grid > 132 * 32) grid = 132 * 32;
  if (out_bf16)
    dequant_kernel<true><<<unsigned(grid), 256, 0, stream>>>(reinterpret_cast<const uint4*>(blocks), scales, nblocks, out);
  else
    dequant_kernel<false><<<unsigned(grid), 256, 0, stream>>>(reinterpret_cast<const uint4*>(blocks), scales, nblocks, out);
  GPTOSS_CUDA_LAUNCH("mxfp4_dequant_kernel");
}

}  // namespace gptoss::cuda
