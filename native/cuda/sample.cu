#if defined(__HIP_PLATFORM_AMD__) || defined(__HIPCC__)  // arch.cuh's vendor test (GPTOSS_HIP)
#include "../hip/cub_rocprim.h"  // the same cub names on rocPRIM
#else
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>
#endif

#include "sample.cuh"

namespace gptoss::cuda {

namespace {

constexpr int kThreads = 1024;

// bad: the lowest index holding NaN or +Infinity (kNoBad: none), for the row rule of
// model/backend.h (kSampleNoFiniteLogit, sample_bad_logit_code): such a row yields a negative code.
constexpr int kNoBad = 0x7fffffff;
struct ArgBest {
  float v;
  int i;
  int bad;
};
struct ArgBestOp {
  __device__ ArgBest operator()(const ArgBest& a, const ArgBest& b) const {
    // first maximum wins (cpu/sample.cpp argmax: strict > while scanning up)
    ArgBest r = b.i < 0 ? a : (a.i < 0 ? b : ((b.v > a.v || (b.v == a.v && b.i < a.i)) ? b : a));
    r.bad = min(a.bad, b.bad);
    return r;
  }
};
__device__ inline void scan_logit(ArgBest& best, float x, int i) {
  if (best.i < 0 || x > best.v) best = ArgBest{x, i, best.bad};
  if (best.bad == kNoBad && (isnan(x) || x == INFINITY)) best.bad = i;  // i rises: the first is the lowest
}
// The id, or the row's code (model/backend.h) when it has no distribution.
__device__ inline int32_t row_code(const ArgBest& r) {
  if (r.bad != kNoBad) return -2 - r.bad;
  return r.v == -INFINITY ? -1 : 0;
}

__device__ ArgBest block_argmax(const float* l, int v) {
  using Reduce = cub::BlockReduce<ArgBest, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ ArgBest result;
  ArgBest best{-INFINITY, -1, kNoBad};
  for (int i = threadIdx.x; i < v; i += kThreads) scan_logit(best, l[i], i);
  ArgBest r = Reduce(tmp).Reduce(best, ArgBestOp());
  if (threadIdx.x == 0) result = r;
  __syncthreads();
  return result;
}

// Greedy over many blocks: each block takes a contiguous slice of the logits (ascending indices,
// so "first maximum wins" holds across slices), writes its best to the workspace, and the last block
// to finish reduces those. One block read all 201088 logits from one SM: 15 us under ncu.
constexpr int kArgmaxSliceThreads = 256;
constexpr int kArgmaxPerThread = 8;
constexpr int kArgmaxMaxBlocks = 256;

int argmax_blocks(int v) {
  const int b = ceil_div(v, kArgmaxSliceThreads * kArgmaxPerThread);
  return b < 1 ? 1 : (b > kArgmaxMaxBlocks ? kArgmaxMaxBlocks : b);
}

__global__ void __launch_bounds__(kArgmaxSliceThreads) argmax_split_kernel(const float* l, int v, ArgBest* partial,
                                                                           int* counter, int32_t* result) {
  using Reduce = cub::BlockReduce<ArgBest, kArgmaxSliceThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  pdl_wait();
  pdl_launch_dependents();
  const int per_block = (v + gridDim.x - 1) / gridDim.x;
  const int lo = blockIdx.x * per_block, hi = min(v, lo + per_block);
  ArgBest best{-INFINITY, -1, kNoBad};
  for (int i = lo + threadIdx.x; i < hi; i += kArgmaxSliceThreads) scan_logit(best, l[i], i);
  ArgBest r = Reduce(tmp).Reduce(best, ArgBestOp());
  if (threadIdx.x == 0) partial[blockIdx.x] = r;
  if (!last_block_arrives(counter, gridDim.x)) return;
  __syncthreads();  // tmp is reused
  ArgBest mine{-INFINITY, -1, kNoBad};
  for (int b = threadIdx.x; b < int(gridDim.x); b += kArgmaxSliceThreads) {
    const ArgBest p{__ldcg(&partial[b].v), __ldcg(&partial[b].i), __ldcg(&partial[b].bad)};
    mine = ArgBestOp()(mine, p);
  }
  r = Reduce(tmp).Reduce(mine, ArgBestOp());
  if (threadIdx.x == 0) *result = row_code(r) < 0 ? row_code(r) : r.i;
}

__global__ void __launch_bounds__(kThreads) argmax_rows_kernel(const float* logits, int v, const int32_t* rows,
                                                               int32_t* result) {
  const ArgBest r = block_argmax(logits + int64_t(rows[blockIdx.x]) * v, v);
  if (threadIdx.x == 0) result[blockIdx.x] = row_code(r) < 0 ? row_code(r) : r.i;
}

// p_i = exp((l_i - max) / T), and the identity index list the sort carries along.
__device__ __forceinline__ void probs_body(const float* l, int v, float temperature, float* p, int32_t* idx,
                                           int32_t* code) {
  ArgBest b = block_argmax(l, v);
  if (threadIdx.x == 0) *code = row_code(b);  // draw_kernel returns it in place of an id
  for (int i = threadIdx.x; i < v; i += kThreads) {
    p[i] = expf((l[i] - b.v) / temperature);
    if (idx) idx[i] = i;
  }
}
__global__ void __launch_bounds__(kThreads) probs_kernel(const float* l, int v, float temperature, float* p,
                                                         int32_t* idx, int32_t* code) {
  probs_body(l, v, temperature, p, idx, code);
}

using Scan = cub::BlockScan<double, kThreads>;

// Sum of a contiguous segment per thread; returns the thread's exclusive prefix, and the total.
__device__ double segment_scan(double mine, double* total, typename Scan::TempStorage& tmp) {
  double excl;
  double agg;
  Scan(tmp).ExclusiveSum(mine, excl, agg);
  *total = agg;
  return excl;
}

// Single block: decides the pivot (sorted p / idx given, or min-p only without a sort) and draws.
__device__ __forceinline__ void draw_body(const float* p, const float* sorted_p, const int32_t* sorted_i, int v,
                                          int top_k, float top_p, float min_p, bool sorted, float uniform,
                                          const int32_t* code, int32_t* result) {
  __shared__ typename Scan::TempStorage tmp;
  __shared__ float pv_value;
  __shared__ int pv_index;
  __shared__ int found, last_kept;
  const int t = threadIdx.x;
  if (sorted) {
    const int K = (top_k > 0 && top_k < v) ? top_k : v;
    int len = K;
    // contiguous segments of the ranked prefix [0, K)
    const int seg = (K + kThreads - 1) / kThreads;
    const int b0 = min(K, t * seg), b1 = min(K, b0 + seg);
    if (top_p < 1.f) {
      double mine = 0;
      for (int j = b0; j < b1; ++j) mine += double(sorted_p[j]);
      double mass;
      double excl = segment_scan(mine, &mass, tmp);
      if (t == 0) found = K;
      __syncthreads();
      const double target = double(top_p) * mass;
      double cum = excl;
      for (int j = b0; j < b1; ++j) {
        cum += double(sorted_p[j]);
        if (cum >= target) {
          atomicMin(&found, j);
          break;
        }
      }
      __syncthreads();
      len = min(len, found + 1);
      __syncthreads();
    }
    if (min_p > 0.f) {
      const float thr = min_p * sorted_p[0];
      if (t == 0) found = len;
      __syncthreads();
      for (int j = 1 + t; j < len; j += kThreads)
        if (sorted_p[j] < thr) atomicMin(&found, j);
      __syncthreads();
      len = found;
    }
    if (t == 0) {
      pv_value = sorted_p[len - 1];
      pv_index = sorted_i[len - 1];
    }
  } else if (t == 0) {
    // min-p only (or nothing): kept = p >= min_p (p_max = 1); pivot value just below everything kept
    pv_value = min_p;
    pv_index = min_p > 0.f ? -2 : v;  // sentinel: decided by `keep` below
  }
  __syncthreads();
  const float pvv = pv_value;
  const int pvi = pv_index;
  auto keep = [&](int i) {
    const float x = p[i];
    if (!sorted) return x >= pvv;
    return x > pvv || (x == pvv && i <= pvi);
  };
  // draw in index order
  const int seg = (v + kThreads - 1) / kThreads;
  const int b0 = min(v, t * seg), b1 = min(v, b0 + seg);
  double mine = 0;
  int my_last = -1;
  for (int i = b0; i < b1; ++i)
    if (keep(i)) {
      mine += double(p[i]);
      my_last = i;
    }
  double total;
  __syncthreads();
  double excl = segment_scan(mine, &total, tmp);
  if (t == 0) {
    found = 0x7fffffff;
    last_kept = -1;
  }
  __syncthreads();
  atomicMax(&last_kept, my_last);
  const double target = double(uniform) * total;
  double cum = excl;
  if (cum + mine > target) {
    for (int i = b0; i < b1; ++i)
      if (keep(i)) {
        cum += double(p[i]);
        if (cum > target) {
          atomicMin(&found, i);
          break;
        }
      }
  }
  __syncthreads();
  if (t == 0) *result = *code < 0 ? *code : (found != 0x7fffffff ? found : last_kept);
}
__global__ void __launch_bounds__(kThreads) draw_kernel(const float* p, const float* sorted_p, const int32_t* sorted_i,
                                                        int v, int top_k, float top_p, float min_p, bool sorted,
                                                        float uniform, const int32_t* code, int32_t* result) {
  draw_body(p, sorted_p, sorted_i, v, top_k, top_p, min_p, sorted, uniform, code, result);
}

// Many rows that need no ranking (temperature, min-p at most), a block a row: the same two bodies.
__global__ void __launch_bounds__(kThreads) probs_rows_kernel(const float* logits, int v, const RowDraw* draws,
                                                              float* p, int32_t* codes) {
  const RowDraw d = draws[blockIdx.x];
  probs_body(logits + int64_t(d.row) * v, v, d.temperature, p + int64_t(blockIdx.x) * v, nullptr, codes + blockIdx.x);
}
__global__ void __launch_bounds__(kThreads) draw_rows_kernel(const float* p, int v, const RowDraw* draws,
                                                             const int32_t* codes, int32_t* result) {
  const RowDraw d = draws[blockIdx.x];
  draw_body(p + int64_t(blockIdx.x) * v, nullptr, nullptr, v, 0, 1.f, d.min_p, false, d.uniform, codes + blockIdx.x,
            result + d.out);
}

struct SampleWs {
  float* p;
  float* sorted_p;
  int32_t* idx;
  int32_t* sorted_i;
  int32_t* code;  // probs_kernel -> draw_kernel: the row's code (0: fine)
  void* cub_tmp;
  size_t cub_bytes;
};

size_t align256(size_t b) { return (b + 255) / 256 * 256; }

SampleWs sample_ws(int vocab, void* base, size_t* total) {
  size_t cub_bytes = 0;
  (void)cub::DeviceRadixSort::SortPairsDescending(nullptr, cub_bytes, static_cast<const float*>(nullptr),  // a size query
                                            static_cast<float*>(nullptr), static_cast<const int32_t*>(nullptr),
                                            static_cast<int32_t*>(nullptr), vocab);
  uint8_t* b = static_cast<uint8_t*>(base);
  size_t off = 0;
  auto take = [&](size_t bytes) { uint8_t* r = b ? b + off : nullptr; off += align256(bytes); return r; };
  SampleWs w;
  w.p = reinterpret_cast<float*>(take(4 * size_t(vocab)));
  w.sorted_p = reinterpret_cast<float*>(take(4 * size_t(vocab)));
  w.idx = reinterpret_cast<int32_t*>(take(4 * size_t(vocab)));
  w.sorted_i = reinterpret_cast<int32_t*>(take(4 * size_t(vocab)));
  w.code = reinterpret_cast<int32_t*>(take(sizeof(int32_t)));
  w.cub_tmp = take(cub_bytes);
  w.cub_bytes = cub_bytes;
  if (total) *total = off;
  return w;
}

}  // namespace

size_t sample_workspace_bytes(int vocab, const SampleParams& params) {
  if (params.temperature == 0.f) return sizeof(ArgBest) * size_t(argmax_blocks(vocab));
  size_t total = 0;
  sample_ws(vocab, nullptr, &total);
  return total;
}

void launch_sample(const float* logits, int vocab, const SampleParams& params, float uniform, void* workspace,
                   int* counters, int32_t* result, cudaStream_t stream) {
  if (params.temperature == 0.f) {
    launch_k(argmax_split_kernel, argmax_blocks(vocab), kArgmaxSliceThreads, 0, stream, logits, vocab,
             static_cast<ArgBest*>(workspace), counters + kCountersArgmax, result);
    GPTOSS_CUDA_LAUNCH("argmax_split_kernel");
    return;
  }
  SampleWs w = sample_ws(vocab, workspace, nullptr);
  probs_kernel<<<1, kThreads, 0, stream>>>(logits, vocab, params.temperature, w.p, w.idx, w.code);
  GPTOSS_CUDA_LAUNCH("probs_kernel");
  const bool use_k = params.top_k > 0 && params.top_k < vocab;
  const bool sorted = use_k || params.top_p < 1.f;
  if (sorted) {
    // Stable radix sort: equal p keep ascending index order, i.e. the (p desc, index asc) ranking.
    GPTOSS_CUDA_CHECK(cub::DeviceRadixSort::SortPairsDescending(w.cub_tmp, w.cub_bytes, w.p, w.sorted_p, w.idx,
                                                                w.sorted_i, vocab, 0, 32, stream));
  }
  draw_kernel<<<1, kThreads, 0, stream>>>(w.p, w.sorted_p, w.sorted_i, vocab, params.top_k, params.top_p,
                                          params.min_p, sorted, uniform, w.code, result);
  GPTOSS_CUDA_LAUNCH("draw_kernel");
}

void launch_argmax_rows(const float* logits, int vocab, const int32_t* rows, int count, int32_t* result,
                        cudaStream_t stream) {
  if (count <= 0) return;
  argmax_rows_kernel<<<count, kThreads, 0, stream>>>(logits, vocab, rows, result);
  GPTOSS_CUDA_LAUNCH("argmax_rows_kernel");
}

namespace {
__global__ void finish_rows_kernel(const int32_t* ids, const int32_t* src, const int32_t* rows, int count,
                                   int32_t* tokens, int32_t* out) {
  const int j = int(blockIdx.x) * int(blockDim.x) + int(threadIdx.x);
  if (j >= count) return;
  const int32_t id = ids[src[j]];
  out[j] = id;
  tokens[rows[j]] = id < 0 ? 0 : id;
}
}  // namespace

void launch_finish_rows(const int32_t* ids, const int32_t* src, const int32_t* rows, int count, int32_t* tokens,
                        int32_t* out, cudaStream_t stream) {
  if (count <= 0) return;
  finish_rows_kernel<<<(count + 255) / 256, 256, 0, stream>>>(ids, src, rows, count, tokens, out);
  GPTOSS_CUDA_LAUNCH("finish_rows_kernel");
}

size_t sample_rows_workspace_bytes(int vocab, int count) {
  return (sizeof(float) * size_t(vocab) + sizeof(int32_t)) * size_t(count) + 256;
}

void launch_sample_rows(const float* logits, int vocab, const RowDraw* draws, int count, void* workspace,
                        int32_t* result, cudaStream_t stream) {
  if (count <= 0) return;
  float* p = static_cast<float*>(workspace);
  int32_t* codes = reinterpret_cast<int32_t*>(p + size_t(vocab) * count);
  probs_rows_kernel<<<count, kThreads, 0, stream>>>(logits, vocab, draws, p, codes);
  GPTOSS_CUDA_LAUNCH("probs_rows_kernel");
  draw_rows_kernel<<<count, kThreads, 0, stream>>>(p, vocab, draws, codes, result);
  GPTOSS_CUDA_LAUNCH("draw_rows_kernel");
}

}  // namespace gptoss::cuda
