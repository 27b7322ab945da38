#include "norm_rope.cuh"

#include "gemm_tile.cuh"  // split_bf16x4, launch_split_bf16

namespace gptoss::cuda {

namespace {

__global__ void embedding_kernel(const int32_t* tokens, const void* table, bool table_bf16, int vocab, int H, float* out,
                                 int* err) {
  pdl_wait();
  pdl_launch_dependents();
  const int i = blockIdx.x;
  const int tok = tokens[i];
  float* o = out + int64_t(i) * H;
  if (tok < 0 || tok >= vocab) {  // reported at the next synchronize (no host sync in a step)
    if (threadIdx.x == 0) atomicOr(err, kErrTokenRange);
    for (int h = threadIdx.x; h < H; h += blockDim.x) o[h] = __uint_as_float(0x7fc00000u);
    return;
  }
  if (table_bf16) {
    const uint16_t* row = static_cast<const uint16_t*>(table) + int64_t(tok) * H;
    for (int h = threadIdx.x; h < H; h += blockDim.x) o[h] = bf16_bits_to_f32(row[h]);
  } else {
    const float* row = static_cast<const float*>(table) + int64_t(tok) * H;
    for (int h = threadIdx.x; h < H; h += blockDim.x) o[h] = row[h];
  }
}

// One block per row; f32 throughout (transformers GptOssRMSNorm upcasts to f32). kAdd (add_rmsnorm):
// x += residual first, in the same loop that sums the squares; each thread rereads only the
// elements it wrote, so the result is bit-identical to add_kernel then the plain norm.
template <bool kAdd>
__global__ void rmsnorm_kernel(float* x, const float* residual, const void* weight, bool weight_bf16, int H,
                               float eps, float* out) {
  __shared__ float partial[32];
  float* xr = x + int64_t(blockIdx.x) * H;
  float ss = 0.f;
  for (int h = threadIdx.x; h < H; h += blockDim.x) {
    float v = xr[h];
    if (kAdd) {
      v += residual[int64_t(blockIdx.x) * H + h];
      xr[h] = v;
    }
    ss = fmaf(v, v, ss);
  }
  ss = warp_sum(ss);
  const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
  if (lane == 0) partial[warp] = ss;
  __syncthreads();
  if (warp == 0) {
    float v = lane < int(blockDim.x / WARP_SIZE) ? partial[lane] : 0.f;
    v = warp_sum(v);
    if (lane == 0) partial[0] = v;
  }
  __syncthreads();
  const float inv = rsqrtf(partial[0] / float(H) + eps);
  float* o = out + int64_t(blockIdx.x) * H;
  for (int h = threadIdx.x; h < H; h += blockDim.x) {
    o[h] = xr[h] * inv * param_f32(weight, weight_bf16, h);
  }
}

// The same norm for rows of at most 4 x 1024 float4s (H % 4 == 0): every load of the row (x,
// residual, weight) is issued before the first reduction, and the row stays in registers for the
// scaling pass. The per-element loop above serialised one DRAM/L2 round trip per iteration (the
// stores to x may alias the residual, so loads could not be hoisted): 11-12 us for one 2880-wide
// row under ncu. Summation order is fixed by (H, blockDim), so add_rmsnorm stays bit-identical to
// add then rmsnorm.
template <bool kAdd, int kPer>
__global__ void __launch_bounds__(kRow4Threads) rmsnorm_vec_kernel(float* x, const float* residual, const void* weight,
                                                          bool weight_bf16, int H, float eps, float* out,
                                                          uint16_t* out_hi, uint16_t* out_lo) {
  __shared__ float partial[32];
  const int H4 = H / 4;
  float4* xr = reinterpret_cast<float4*>(x + int64_t(blockIdx.x) * H);
  float4 v[kPer], w[kPer];
  load_row4<kPer>(weight, weight_bf16, H4, w);  // the weight is constant: read before the wait
  pdl_wait();
  pdl_launch_dependents();
  row4_load<kPer, kAdd>(x + int64_t(blockIdx.x) * H, kAdd ? residual + int64_t(blockIdx.x) * H : nullptr, H4, v);
  if (kAdd) {
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int i = threadIdx.x + j * blockDim.x;
      if (i < H4) xr[i] = v[j];
    }
  }
  const float inv = row4_inv_rms<kPer>(v, H, eps, partial);
  float4* o = reinterpret_cast<float4*>(out + int64_t(blockIdx.x) * H);
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int i = threadIdx.x + j * blockDim.x;
    if (i < H4) {
      const float4 nv = row4_normed(v[j], inv, w[j]);
      o[i] = nv;
      if (out_hi) {  // and its bf16 halves, the GEMM tile's A (launch_add_rmsnorm_split)
        uint2 h, l;
        split_bf16x4(nv, h, l);
        reinterpret_cast<uint2*>(out_hi + int64_t(blockIdx.x) * H)[i] = h;
        reinterpret_cast<uint2*>(out_lo + int64_t(blockIdx.x) * H)[i] = l;
      }
    }
  }
}

// out_hi / out_lo (may be null): out's bf16 halves as well (8-byte aligned; else a separate split).
template <bool kAdd>
void launch_norm(float* x, const float* residual, const void* weight, bool weight_bf16, int n, int H, float eps,
                 float* out, cudaStream_t stream, uint16_t* out_hi = nullptr, uint16_t* out_lo = nullptr) {
  const bool halves_ok = !out_hi || ((reinterpret_cast<uintptr_t>(out_hi) | reinterpret_cast<uintptr_t>(out_lo)) & 7) == 0;
  if (!row4_ok(x, residual, out, weight, weight_bf16, H) || !halves_ok) {
    rmsnorm_kernel<kAdd><<<n, 256, 0, stream>>>(x, residual, weight, weight_bf16, H, eps, out);
    if (out_hi) launch_split_bf16(out, int64_t(n) * H, out_hi, out_lo, stream);
    return;
  }
  with_row4_per(H, [&](auto per) {
    launch_k(rmsnorm_vec_kernel<kAdd, decltype(per)::value>, n, kRow4Threads, 0, stream, x, residual, weight,
             weight_bf16, H, eps, out, out_hi, out_lo);
  });
}

// Rotates the pair (j, j + D/2) of one head row in place: rope_kernel and rope_kv_store_kernel.
__device__ __forceinline__ void rope_pair(float* row, int j, int half, int position, const float* inv_freq,
                                          float scale) {
  const float angle = float(position) * inv_freq[j];  // f32 product, as transformers
  float s, c;
  sincosf(angle, &s, &c);
  c *= scale;
  s *= scale;
  const float x1 = row[j], x2 = row[j + half];
  row[j] = x1 * c - x2 * s;
  row[j + half] = x2 * c + x1 * s;
}

template <class Elem>
__device__ __forceinline__ void store_cache(void* cache, int64_t i, float v) {
  Elem::store(static_cast<typename Elem::T*>(cache), i, v);
}

__global__ void rope_kernel(float* x, const int32_t* positions, const float* inv_freq, int n, int heads, int D,
                            float scale) {
  const int half = D / 2;
  int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (idx >= int64_t(n) * heads * half) return;
  const int j = int(idx % half);
  const int64_t th = idx / half;  // token * heads + head
  const int t = int(th / heads);
  rope_pair(x + th * D, j, half, positions[t], inv_freq, scale);
}

// rope_kv_store: one thread per (token, head of q | k | v, pair j). q and k heads rotate in place
// (rope_pair, as rope_kernel); k and v heads then write their two elements to the caches at the
// token's position (as kv_store_kernel, with the same range flag).
template <KvType KV>
__global__ void rope_kv_store_kernel(float* q, float* k, const float* v, const int32_t* positions,
                                     const int32_t* slots, const float* inv_freq, int n, int q_heads, int kv_heads, int D, float scale,
                                     void* k_cache, void* v_cache, int ctx, int* err) {
  pdl_wait();
  pdl_launch_dependents();
  const int half = D / 2;
  const int heads = q_heads + 2 * kv_heads;
  int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (idx >= int64_t(n) * heads * half) return;
  const int j = int(idx % half);
  const int head = int((idx / half) % heads);
  const int t = int(idx / (int64_t(half) * heads));
  const int pos = positions[t];
  if (head < q_heads) {
    rope_pair(q + (int64_t(t) * q_heads + head) * D, j, half, pos, inv_freq, scale);
    return;
  }
  const bool is_k = head < q_heads + kv_heads;
  const int h = is_k ? head - q_heads : head - q_heads - kv_heads;
  const int64_t src = (int64_t(t) * kv_heads + h) * D;
  float x1, x2;
  if (is_k) {
    float* row = k + src;
    rope_pair(row, j, half, pos, inv_freq, scale);
    x1 = row[j];
    x2 = row[j + half];
  } else {
    x1 = v[src + j];
    x2 = v[src + j + half];
  }
  const int row = slots ? slots[t] : pos;  // paged: the token's slot in the pool
  if (row < 0 || row >= ctx) {  // reported at the next synchronize, as kv_store_kernel
    if (j == 0) atomicOr(err, kErrPositionRange);
    return;
  }
  const int64_t dst = (int64_t(row) * kv_heads + h) * D;
  if (is_k) {
    store_cache<typename KvTraits<KV>::Key>(k_cache, dst + j, x1);
    store_cache<typename KvTraits<KV>::Key>(k_cache, dst + j + half, x2);
  } else {
    store_cache<typename KvTraits<KV>::Value>(v_cache, dst + j, x1);
    store_cache<typename KvTraits<KV>::Value>(v_cache, dst + j + half, x2);
  }
}

__global__ void add_kernel(float* acc, const float* x, int64_t count) {
  pdl_wait();
  pdl_launch_dependents();
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t n4 = count / 4;
  if (i < n4) {
    float4 a = reinterpret_cast<float4*>(acc)[i];
    const float4 b = reinterpret_cast<const float4*>(x)[i];
    a.x += b.x; a.y += b.y; a.z += b.z; a.w += b.w;
    reinterpret_cast<float4*>(acc)[i] = a;
  }
  if (i < count - n4 * 4) acc[n4 * 4 + i] += x[n4 * 4 + i];
}

template <KvType KV>
__global__ void kv_store_kernel(const float* k, const float* v, const int32_t* positions, int n, int row_elems,
                                void* k_cache, void* v_cache, int ctx, int* err) {
  int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (idx >= int64_t(n) * row_elems) return;
  const int t = int(idx / row_elems), e = int(idx % row_elems);
  const int pos = positions[t];
  if (pos < 0 || pos >= ctx) {
    if (e == 0) atomicOr(err, kErrPositionRange);
    return;
  }
  const int64_t dst = int64_t(pos) * row_elems + e;
  store_cache<typename KvTraits<KV>::Key>(k_cache, dst, k[idx]);
  store_cache<typename KvTraits<KV>::Value>(v_cache, dst, v[idx]);
}

__global__ void gather_rows_kernel(const float* x, int n, int C, const int32_t* rows, float* out, int* err) {
  const int i = blockIdx.x, r = rows[i];
  if (r < 0 || r >= n) {
    if (threadIdx.x == 0) atomicOr(err, kErrPositionRange);
    return;
  }
  const float* src = x + int64_t(r) * C;
  float* dst = out + int64_t(i) * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) dst[c] = src[c];
}

}  // namespace

void launch_gather_rows(const float* x, int n, int C, const int32_t* rows, int r, float* out, int* err,
                        cudaStream_t stream) {
  if (r <= 0 || C <= 0) return;
  gather_rows_kernel<<<r, 256, 0, stream>>>(x, n, C, rows, out, err);
  GPTOSS_CUDA_LAUNCH("gather_rows_kernel");
}

void launch_embedding(const int32_t* tokens, int n, const void* table, bool table_bf16, int vocab, int H, float* out,
                      int* err, cudaStream_t stream) {
  if (n <= 0) return;
  launch_k(embedding_kernel, n, 256, 0, stream, tokens, table, table_bf16, vocab, H, out, err);
  GPTOSS_CUDA_LAUNCH("embedding_kernel");
}

void launch_rmsnorm(const float* x, const void* weight, bool weight_bf16, int n, int H, float eps, float* out,
                    cudaStream_t stream) {
  if (n <= 0) return;
  launch_norm<false>(const_cast<float*>(x), nullptr, weight, weight_bf16, n, H, eps, out, stream);
  GPTOSS_CUDA_LAUNCH("rmsnorm_kernel");
}

void launch_add_rmsnorm(float* x, const float* residual, const void* weight, bool weight_bf16, int n, int H, float eps,
                        float* normed, cudaStream_t stream) {
  if (n <= 0) return;
  launch_norm<true>(x, residual, weight, weight_bf16, n, H, eps, normed, stream);
  GPTOSS_CUDA_LAUNCH("rmsnorm_kernel<add>");
}

void launch_add_rmsnorm_split(float* x, const float* residual, const void* weight, bool weight_bf16, int n, int H,
                              float eps, float* normed, uint16_t* normed_hi, uint16_t* normed_lo, cudaStream_t stream) {
  if (n <= 0) return;
  launch_norm<true>(x, residual, weight, weight_bf16, n, H, eps, normed, stream, normed_hi, normed_lo);
  GPTOSS_CUDA_LAUNCH("rmsnorm_kernel<add, split>");
}

void launch_rope(float* x, const int32_t* positions, const float* inv_freq, int n, int heads, int D, float scale,
                 cudaStream_t stream) {
  int64_t total = int64_t(n) * heads * (D / 2);
  if (total <= 0) return;
  rope_kernel<<<unsigned(ceil_div(total, 256)), 256, 0, stream>>>(x, positions, inv_freq, n, heads, D, scale);
  GPTOSS_CUDA_LAUNCH("rope_kernel");
}

void launch_add(float* acc, const float* x, int64_t count, cudaStream_t stream) {
  if (count <= 0) return;
  int64_t threads = count / 4 + 4;
  launch_k(add_kernel, unsigned(ceil_div(threads, 256)), 256, 0, stream, acc, x, count);
  GPTOSS_CUDA_LAUNCH("add_kernel");
}

void launch_kv_store(const float* k, const float* v, const int32_t* positions, int n, int kv_heads, int D,
                     void* k_cache, void* v_cache, KvType cache, int ctx, int* err, cudaStream_t stream) {
  const int row = kv_heads * D;
  int64_t total = int64_t(n) * row;
  if (total <= 0) return;
  unsigned blocks = unsigned(ceil_div(total, 256));
  dispatch_kv(cache, [&](auto kv) {
    kv_store_kernel<decltype(kv)::value><<<blocks, 256, 0, stream>>>(k, v, positions, n, row, k_cache, v_cache, ctx, err);
  });
  GPTOSS_CUDA_LAUNCH("kv_store_kernel");
}

void launch_rope_kv_store(float* q, float* k, const float* v, const int32_t* positions, const int32_t* slots,
                          const float* inv_freq, int n, int q_heads, int kv_heads, int D, float scale, void* k_cache,
                          void* v_cache, KvType cache, int ctx, int* err, cudaStream_t stream) {
  const int64_t total = int64_t(n) * (q_heads + 2 * kv_heads) * (D / 2);
  if (total <= 0) return;
  const unsigned blocks = unsigned(ceil_div(total, 256));
  dispatch_kv(cache, [&](auto kv) {
    launch_k(rope_kv_store_kernel<decltype(kv)::value>, blocks, 256, 0, stream, q, k, v, positions, slots, inv_freq, n,
             q_heads, kv_heads, D, scale, k_cache, v_cache, ctx, err);
  });
  GPTOSS_CUDA_LAUNCH("rope_kv_store_kernel");
}

}  // namespace gptoss::cuda
