// Q8_0 dense weights on the GPU: the upload repack, the decode GEMV, the prefill GEMM path through the
// bf16 tensor-core tile, and the embedding lookup (q8.cuh says why each is shaped as it is).
#include <cstring>

#include "core/dtype.h"
#include "gemm_tile.cuh"
#include "matmul.cuh"
#include "q8.cuh"

namespace gptoss::cuda {

namespace {

__device__ __forceinline__ float i8_at(uint32_t w, int b) { return float(int8_t(uint8_t(w >> (8 * b)))); }

// sum_j q[j] * x[j] over one 32-value block (q as 8 words, x as 8 float4), in order j = 0..31.
__device__ __forceinline__ float q8_block_dot(const uint32_t (&w)[8], const float4* xp) {
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const float4 xv = __ldg(xp + i);
    s = fmaf(i8_at(w[i], 0), xv.x, s);
    s = fmaf(i8_at(w[i], 1), xv.y, s);
    s = fmaf(i8_at(w[i], 2), xv.z, s);
    s = fmaf(i8_at(w[i], 3), xv.w, s);
  }
  return s;
}

// One warp per output row (grid-stride), a lane per 32-value block; NT tokens share each weight load.
template <int NT>
__global__ void __launch_bounds__(256) q8_gemv_kernel(Q8LinearArgs a) {
  const int lane = threadIdx.x % WARP_SIZE;
  const int warps_per_block = blockDim.x / WARP_SIZE;
  const int K = a.K, nb = K / 32;
  for (int row = blockIdx.x * warps_per_block + threadIdx.x / WARP_SIZE; row < a.N;
       row += gridDim.x * warps_per_block) {
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; ++t) acc[t] = 0.f;
    const uint4* qrow = reinterpret_cast<const uint4*>(a.q + int64_t(row) * K);
    const uint16_t* drow = a.d + int64_t(row) * nb;
#pragma unroll 2
    for (int g = lane; g < nb; g += WARP_SIZE) {
      const uint4 w0 = __ldg(qrow + 2 * g), w1 = __ldg(qrow + 2 * g + 1);
      const float d = f16_bits_to_f32(__ldg(drow + g));
      const uint32_t w[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        if (t >= a.n) break;
        const float4* xp = reinterpret_cast<const float4*>(a.x + int64_t(t) * K + g * 32);
        acc[t] = fmaf(q8_block_dot(w, xp), d, acc[t]);
      }
    }
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if (t >= a.n) break;
      const float s = warp_sum(acc[t]);
      if (lane == 0) a.out[int64_t(t) * a.N + row] = s + bias_at(a.bias, a.bias_kind, row);
    }
  }
}

// Rows [r0, r0 + rows) of W -> bf16 hi [rows, K] then lo [rows, K] (hi = rn(d q), lo = rn(d q - hi)).
// One thread a 32-value block.
__global__ void q8_split_rows_kernel(const int8_t* q, const uint16_t* d, int K, int64_t r0, int rows, uint16_t* hi,
                                     uint16_t* lo) {
  const int nb = K / 32;
  const int64_t blk = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (blk >= int64_t(rows) * nb) return;
  const int64_t r = blk / nb, g = blk % nb;
  const int64_t src = (r0 + r) * K + g * 32, dst = r * K + g * 32;
  const float scale = f16_bits_to_f32(d[(r0 + r) * nb + g]);
  const uint4* qp = reinterpret_cast<const uint4*>(q + src);
  const uint4 w0 = qp[0], w1 = qp[1];
  const uint32_t w[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
  uint32_t h[16], l[16];
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    const float v0 = i8_at(w[i / 2], (i % 2) * 2) * scale, v1 = i8_at(w[i / 2], (i % 2) * 2 + 1) * scale;
    h[i] = pack_bf16x2(v0, v1);
    l[i] = pack_bf16x2(v0 - bf16_lo(h[i]), v1 - bf16_hi(h[i]));
  }
  uint4* hp = reinterpret_cast<uint4*>(hi + dst);
  uint4* lp = reinterpret_cast<uint4*>(lo + dst);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    hp[i] = make_uint4(h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]);
    lp[i] = make_uint4(l[4 * i], l[4 * i + 1], l[4 * i + 2], l[4 * i + 3]);
  }
}

// out[m, c0 + j] = part[m, j] + part[m, rows + j] + bias[c0 + j]  (part [M, 2 rows]: hi then lo columns)
__global__ void q8_sum_halves_kernel(const float* part, int M, int rows, int c0, const void* bias, int bias_kind,
                                     float* out, int N) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= int64_t(M) * rows) return;
  const int64_t m = i / rows, j = i % rows;
  const float* p = part + m * 2 * rows;
  out[m * N + c0 + j] = p[j] + p[rows + j] + bias_at(bias, bias_kind, c0 + j);
}

__global__ void q8_embedding_kernel(const int32_t* tokens, const int8_t* q, const uint16_t* d, int vocab, int H,
                                    float* out, int* err) {
  const int i = blockIdx.x;
  const int tok = tokens[i];
  float* o = out + int64_t(i) * H;
  if (tok < 0 || tok >= vocab) {  // reported at the next synchronize, as embedding_kernel
    if (threadIdx.x == 0) atomicOr(err, kErrTokenRange);
    for (int h = threadIdx.x; h < H; h += blockDim.x) o[h] = __uint_as_float(0x7fc00000u);
    return;
  }
  const int8_t* row = q + int64_t(tok) * H;
  const uint16_t* drow = d + int64_t(tok) * (H / 32);
  for (int h = threadIdx.x; h < H; h += blockDim.x) o[h] = float(row[h]) * f16_bits_to_f32(drow[h / 32]);
}

template <int NT>
void q8_gemv_launch(const Q8LinearArgs& a, cudaStream_t stream) {
  const int warps = kGemvWarps;
  int blocks = ceil_div(a.N, warps);
  const int cap = current_caps().sm_count * 16;  // grid-stride beyond a few waves (16 blocks an SM / CU)
  if (blocks > cap) blocks = cap;
  q8_gemv_kernel<NT><<<blocks, warps * WARP_SIZE, 0, stream>>>(a);
  GPTOSS_CUDA_LAUNCH("q8_gemv_kernel");
}

// Weight rows dequantized a GEMM launch: the split weights (4 K bytes a row) and the partial sums
// (8 n bytes a row) within 64 MiB, in whole 128-row column tiles.
constexpr size_t kQ8GemmChunkBytes = size_t(64) << 20;
int q8_gemm_chunk_rows(const Q8LinearArgs& a) {
  const size_t per_row = 4 * size_t(a.K) + 8 * size_t(a.n);
  int64_t rows = int64_t(kQ8GemmChunkBytes / per_row) / kGemmBN * kGemmBN;
  if (rows < kGemmBN) rows = kGemmBN;
  return int(rows < a.N ? rows : a.N);
}

}  // namespace

void q8_to_device_layout(const uint8_t* ggml_blocks, int64_t blocks, uint8_t* out) {
  uint8_t* q = out;
  uint8_t* d = out + blocks * kQ8BlockSize;
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* src = ggml_blocks + b * kQ8BlockBytes;
    std::memcpy(d + 2 * b, src, 2);
    std::memcpy(q + b * kQ8BlockSize, src + 2, kQ8BlockSize);
  }
}

// The Q8_0 linear as matmul.cu's gemv_xs_kernel reads it (matmul.cuh's gemv_xs_q8).
static LinearArgs xs_args(const Q8LinearArgs& a) {
  LinearArgs xs;
  xs.x = a.x;
  xs.n = a.n;
  xs.K = a.K;
  xs.N = a.N;
  xs.w = a.q;
  xs.w_scales = reinterpret_cast<const uint8_t*>(a.d);
  xs.bias = a.bias;
  xs.bias_kind = a.bias_kind;
  xs.out = a.out;
  return xs;
}

bool launch_linear_q8_gemv_parts(const Q8LinearArgs* parts, int count, cudaStream_t stream) {
  if (count < 1 || count > kGemvMaxParts) return false;
  LinearArgs xs[kGemvMaxParts];
  for (int i = 0; i < count; ++i) xs[i] = xs_args(parts[i]);
  return gemv_xs_q8(xs, count, stream);
}

void launch_linear_q8_gemv(const Q8LinearArgs& a, cudaStream_t stream) {
  const LinearArgs xs = xs_args(a);  // gemv_xs_kernel, where choose_gemv takes the call (default)
  if (gemv_xs_q8(&xs, 1, stream)) return;
  for (int t0 = 0; t0 < a.n; t0 += kGemvMaxTokens) {
    Q8LinearArgs s = a;
    s.n = a.n - t0 < kGemvMaxTokens ? a.n - t0 : kGemvMaxTokens;
    s.x = a.x + int64_t(t0) * a.K;
    s.out = a.out + int64_t(t0) * a.N;
    if (s.n == 1) q8_gemv_launch<1>(s, stream);
    else if (s.n <= 2) q8_gemv_launch<2>(s, stream);
    else if (s.n <= 4) q8_gemv_launch<4>(s, stream);
    else q8_gemv_launch<8>(s, stream);
  }
}

size_t linear_q8_gemm_workspace_bytes(const Q8LinearArgs& a) {
  const size_t rows = size_t(q8_gemm_chunk_rows(a));
  return 4 * size_t(a.n) * a.K + 4 * rows * a.K + 8 * size_t(a.n) * rows;
}

void launch_linear_q8_gemm(const Q8LinearArgs& a, void* workspace, cudaStream_t stream) {
  const int rows = q8_gemm_chunk_rows(a);
  uint16_t* a_hi = static_cast<uint16_t*>(workspace);
  uint16_t* a_lo = a_hi + int64_t(a.n) * a.K;
  uint16_t* w_split = a_lo + int64_t(a.n) * a.K;                                  // [2 rows, K]
  float* part = reinterpret_cast<float*>(w_split + 2 * int64_t(rows) * a.K);     // [n, 2 rows]
  launch_split_bf16(a.x, int64_t(a.n) * a.K, a_hi, a_lo, stream);
  const GemmTileKind kind = gemm_tile_kind(current_caps(), a.n);  // dense chunks (policy.h)
  const int bm = gemm_tile_rows(current_caps(), kind, a.n, false, a.K);
  for (int c0 = 0; c0 < a.N; c0 += rows) {
    const int r = a.N - c0 < rows ? a.N - c0 : rows;
    const int64_t blocks = int64_t(r) * (a.K / 32);
    q8_split_rows_kernel<<<unsigned(ceil_div(blocks, 256)), 256, 0, stream>>>(a.q, a.d, a.K, c0, r, w_split,
                                                                               w_split + int64_t(r) * a.K);
    GPTOSS_CUDA_LAUNCH("q8_split_rows_kernel");
    GemmProblem p;
    p.a_hi = a_hi;
    p.a_lo = a_lo;
    p.w = w_split;
    p.N = 2 * r;
    p.K = a.K;
    p.M = a.n;
    p.out = part;
    p.ldo = 2 * r;
    launch_gemm_tile<WeightFormat::BF16, Epilogue::Store>(kind, p, bm, ceil_div(a.n, bm), stream);
    q8_sum_halves_kernel<<<unsigned(ceil_div(int64_t(a.n) * r, 256)), 256, 0, stream>>>(part, a.n, r, c0, a.bias,
                                                                                      a.bias_kind, a.out, a.N);
    GPTOSS_CUDA_LAUNCH("q8_sum_halves_kernel");
  }
}

void launch_embedding_q8(const int32_t* tokens, int n, const int8_t* q, const uint16_t* d, int vocab, int H, float* out,
                         int* err, cudaStream_t stream) {
  if (n <= 0) return;
  q8_embedding_kernel<<<n, 256, 0, stream>>>(tokens, q, d, vocab, H, out, err);
  GPTOSS_CUDA_LAUNCH("q8_embedding_kernel");
}

}  // namespace gptoss::cuda
