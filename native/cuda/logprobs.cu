#if defined(__HIP_PLATFORM_AMD__) || defined(__HIPCC__)  // arch.cuh's vendor test (GPTOSS_HIP)
#include "../hip/cub_rocprim.h"  // the same cub names on rocPRIM
#else
#include <cub/block/block_reduce.cuh>
#endif

#include "logprobs.cuh"

#include <cfloat>

namespace gptoss::cuda {

namespace {

constexpr int kThreads = 1024;

// (value, id) with "a before b": larger value first, the lower id on a tie; id -1: none.
struct Entry {
  float v;
  int i;
};
__device__ inline bool before(const Entry& a, const Entry& b) {
  return b.i < 0 || (a.i >= 0 && (a.v > b.v || (a.v == b.v && a.i < b.i)));
}
struct FirstOp {
  __device__ Entry operator()(const Entry& a, const Entry& b) const { return before(a, b) ? a : b; }
};

// One block a row. Pass 1: the max; pass 2: the sum of exp(x - max), each thread's partial in float (~200 terms),
// the block's in double; then tops[j] passes, each the first entry after the one before in that order.
__global__ void __launch_bounds__(kThreads) logprob_top_kernel(const float* logits, int vocab, const int32_t* rows,
                                                               const int32_t* tops, int kmax, float* lse, int32_t* top_ids,
                                                               float* top_logprobs) {
  using MaxReduce = cub::BlockReduce<float, kThreads>;
  using SumReduce = cub::BlockReduce<double, kThreads>;
  using EntryReduce = cub::BlockReduce<Entry, kThreads>;
  __shared__ union {
    typename MaxReduce::TempStorage m;
    typename SumReduce::TempStorage s;
    typename EntryReduce::TempStorage e;
  } tmp;
  __shared__ float s_max, s_lse;
  __shared__ Entry s_pick;
  const int j = blockIdx.x;
  const float* l = logits + int64_t(rows[j]) * vocab;

  float m = -INFINITY;
  for (int i = threadIdx.x; i < vocab; i += kThreads) m = fmaxf(m, l[i]);
  m = MaxReduce(tmp.m).Reduce(m, [](float a, float b) { return fmaxf(a, b); });
  if (threadIdx.x == 0) s_max = m;
  __syncthreads();
  m = s_max;
  float part = 0.f;
  for (int i = threadIdx.x; i < vocab; i += kThreads) part += expf(l[i] - m);
  const double sum = SumReduce(tmp.s).Reduce(double(part), [](double a, double b) { return a + b; });
  if (threadIdx.x == 0) {
    s_lse = float(double(m) + log(sum));
    lse[j] = s_lse;
  }
  __syncthreads();
  const float row_lse = s_lse;

  Entry prev{INFINITY, -1};  // nothing picked yet: every entry comes after it
  const int k = tops[j];
  for (int r = 0; r < k; ++r) {
    Entry best{-INFINITY, -1};
    for (int i = threadIdx.x; i < vocab; i += kThreads) {
      const Entry e{l[i], i};
      const bool after = prev.i < 0 || before(prev, e);
      if (after && before(e, best)) best = e;
    }
    const Entry pick = EntryReduce(tmp.e).Reduce(best, FirstOp());
    if (threadIdx.x == 0) {
      s_pick = pick;
      top_ids[int64_t(j) * kmax + r] = pick.i;
      top_logprobs[int64_t(j) * kmax + r] = pick.v - row_lse;
    }
    __syncthreads();
    prev = s_pick;
    __syncthreads();  // s_pick and tmp are reused by the next pass
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
