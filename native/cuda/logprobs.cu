#include "logprobs.cuh"
#include "reduce.cuh"

namespace gptoss::cuda {

namespace {

constexpr int kThreads = 1024;
constexpr int kMaxWarps = kThreads / 32;  // 32 warps (16 wave64s on AMD)

// (value, id) with "a before b": larger value first, the lower id on a tie; id -1: none.
__device__ __forceinline__ bool before(float av, int ai, float bv, int bi) {
  return bi < 0 || (ai >= 0 && (av > bv || (av == bv && ai < bi)));
}

// The block's first entry in that order: each warp's by shuffles, then warp 0 over the warps' (shared memory).
// Plain shuffles and shared memory, no rocPRIM / cub (whose block reduce took scratch on AMD).
__device__ __forceinline__ void block_first(float& v, int& i, float* sv, int* si) {
  const int lane = int(threadIdx.x) % WARP_SIZE, warp = int(threadIdx.x) / WARP_SIZE, warps = int(blockDim.x) / WARP_SIZE;
  for (int o = WARP_SIZE / 2; o > 0; o /= 2) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int oi = __shfl_xor_sync(0xffffffffu, i, o);
    if (before(ov, oi, v, i)) v = ov, i = oi;
  }
  if (lane == 0) sv[warp] = v, si[warp] = i;
  __syncthreads();
  if (warp == 0) {
    v = lane < warps ? sv[lane] : -INFINITY;
    i = lane < warps ? si[lane] : -1;
    for (int o = WARP_SIZE / 2; o > 0; o /= 2) {
      const float ov = __shfl_xor_sync(0xffffffffu, v, o);
      const int oi = __shfl_xor_sync(0xffffffffu, i, o);
      if (before(ov, oi, v, i)) v = ov, i = oi;
    }
    if (lane == 0) sv[0] = v, si[0] = i;
  }
  __syncthreads();
  v = sv[0];
  i = si[0];
  __syncthreads();  // sv / si are reused by the next reduction
}

// One block a row. Pass 1: the max; pass 2: the sum of exp(x - max), each thread's partial in float (~200 terms),
// the warps' and the block's in double; then tops[j] passes, each the first entry after the one before in that order.
__global__ void __launch_bounds__(kThreads) logprob_top_kernel(const float* logits, int vocab, const int32_t* rows,
                                                               const int32_t* tops, int kmax, float* lse, int32_t* top_ids,
                                                               float* top_logprobs) {
  __shared__ float sv[kMaxWarps];
  __shared__ int si[kMaxWarps];
  __shared__ double sd[kMaxWarps];
  const int j = blockIdx.x;
  const int lane = int(threadIdx.x) % WARP_SIZE, warp = int(threadIdx.x) / WARP_SIZE, warps = int(blockDim.x) / WARP_SIZE;
  const float* l = logits + int64_t(rows[j]) * vocab;

  float m = -INFINITY;
  int mi = -1;
  for (int i = threadIdx.x; i < vocab; i += kThreads)
    if (before(l[i], i, m, mi)) m = l[i], mi = i;
  block_first(m, mi, sv, si);  // the max (and the top entry)
  float part = 0.f;
  for (int i = threadIdx.x; i < vocab; i += kThreads) part += expf(l[i] - m);
  double sum = part;
  for (int o = WARP_SIZE / 2; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (lane == 0) sd[warp] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0;
    for (int w = 0; w < warps; ++w) total += sd[w];
    lse[j] = float(double(m) + log(total));
    sv[0] = lse[j];
  }
  __syncthreads();
  const float row_lse = sv[0];
  __syncthreads();

  float pv = INFINITY;  // nothing picked yet: every entry comes after it
  int pi = -1;
  const int k = tops[j];
  for (int r = 0; r < k; ++r) {
    float bv = -INFINITY;
    int bi = -1;
    for (int i = threadIdx.x; i < vocab; i += kThreads) {
      const float x = l[i];
      if ((pi < 0 || before(pv, pi, x, i)) && before(x, i, bv, bi)) bv = x, bi = i;
    }
    block_first(bv, bi, sv, si);
    if (threadIdx.x == 0) {
      top_ids[int64_t(j) * kmax + r] = bi;
      top_logprobs[int64_t(j) * kmax + r] = bv - row_lse;
    }
    pv = bv;
    pi = bi;
  }
}

}  // namespace

void launch_logprob_top(const float* logits, int vocab, const int32_t* rows, const int32_t* tops, int count, int kmax,
                        float* lse, int32_t* top_ids, float* top_logprobs, cudaStream_t stream) {
  if (count <= 0) return;
  logprob_top_kernel<<<count, kThreads, 0, stream>>>(logits, vocab, rows, tops, kmax, lse, top_ids, top_logprobs);
  GPTOSS_CUDA_LAUNCH("logprob_top_kernel");
}

}  // namespace gptoss::cuda
