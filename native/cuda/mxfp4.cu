#include "mxfp4.cuh"

#include <algorithm>
#include <string>

#include "mxfp4_layout.h"

namespace gptoss::cuda {

namespace {

// One thread per 4 packed bytes (8 values): a warp reads 128 contiguous bytes (8 blocks) and writes
// 512 (f32) or 256 (bf16) contiguous bytes, so both streams coalesce fully (the first version, one
// thread per 16-byte block, wrote 64-byte runs per lane and reached 41% of the copy ceiling).
// Decoding through the byte LUT (common.cuh); the scale multiply is exact.
template <bool BF16>
__global__ void __launch_bounds__(256) dequant_kernel(const uint32_t* words, const uint8_t* scales, int64_t nwords,
                                                      void* out) {
  __shared__ uint32_t lut[256];
  fill_e2m1_lut(lut);
  __syncthreads();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < nwords; i += int64_t(gridDim.x) * blockDim.x) {
    const uint32_t w = __ldg(words + i);
    const float scale = e8m0_to_f32(__ldg(scales + i / 4));
    float f[8];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      uint32_t pair = lut[(w >> (8 * k)) & 0xffu];
      f[2 * k] = bf16_lo(pair) * scale;
      f[2 * k + 1] = bf16_hi(pair) * scale;
    }
    if (BF16) {
      reinterpret_cast<uint4*>(out)[i] = make_uint4(pack_bf16x2(f[0], f[1]), pack_bf16x2(f[2], f[3]),
                                                    pack_bf16x2(f[4], f[5]), pack_bf16x2(f[6], f[7]));
    } else {
      float4* o = reinterpret_cast<float4*>(out) + 2 * i;
      o[0] = make_float4(f[0], f[1], f[2], f[3]);
      o[1] = make_float4(f[4], f[5], f[6], f[7]);
    }
  }
}

__global__ void decode_layout_words_kernel(uint32_t* words, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x)
    words[i] = mxlayout::to_decode_word(words[i]);
}

__global__ void decode_layout_scales_kernel(const uint8_t* src, uint8_t* dst, int64_t mats, int64_t rows, int64_t nch) {
  const int64_t per = rows * nch, count = mats * per;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t m = i / per, row = (i % per) / nch, b = i % nch;
    dst[m * per + mxlayout::scale_index(row, b, nch)] = src[i];
  }
}

}  // namespace

void launch_mxfp4_to_decode_layout(uint8_t* blocks, uint8_t* scales, int64_t mats, int64_t rows, int64_t nch,
                                   uint8_t* scratch, cudaStream_t stream) {
  if (!mxlayout::layout_fits(rows))
    throw range_error("mxfp4 decode layout: rows must be a positive multiple of 16, got " + std::to_string(rows));
  const int64_t count = mats * rows * nch;
  if (count <= 0) return;
  const int64_t cap = int64_t(current_caps().sm_count) * 32;
  decode_layout_words_kernel<<<unsigned(std::min<int64_t>(ceil_div(count * 4, int64_t(256)), cap)), 256, 0, stream>>>(
      reinterpret_cast<uint32_t*>(blocks), count * 4);
  GPTOSS_CUDA_LAUNCH("decode_layout_words_kernel");
  GPTOSS_CUDA_CHECK(cudaMemcpyAsync(scratch, scales, size_t(count), cudaMemcpyDeviceToDevice, stream));
  decode_layout_scales_kernel<<<unsigned(std::min<int64_t>(ceil_div(count, int64_t(256)), cap)), 256, 0, stream>>>(scratch, scales, mats, rows, nch);
  GPTOSS_CUDA_LAUNCH("decode_layout_scales_kernel");
}

void launch_mxfp4_dequantize(const uint8_t* blocks, const uint8_t* scales, int64_t nblocks, void* out,
                             bool out_bf16, cudaStream_t stream) {
  if (nblocks <= 0) return;
  const int64_t nwords = nblocks * 4;
  int64_t grid = ceil_div(nwords, 256);
  const int64_t cap = int64_t(current_caps().sm_count) * 32;  // grid-stride beyond a few waves (32 blocks an SM / CU)
  if (grid > cap) grid = cap;
  const uint32_t* words = reinterpret_cast<const uint32_t*>(blocks);
  if (out_bf16) dequant_kernel<true><<<unsigned(grid), 256, 0, stream>>>(words, scales, nwords, out);
  else dequant_kernel<false><<<unsigned(grid), 256, 0, stream>>>(words, scales, nwords, out);
  GPTOSS_CUDA_LAUNCH("mxfp4_dequant_kernel");
}

}  // namespace gptoss::cuda
