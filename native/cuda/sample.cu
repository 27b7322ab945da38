#if defined(__HIP_PLATFORM_AMD__) || defined(__HIPCC__)  // arch.cuh's vendor test (GPTOSS_HIP)
#include "../hip/cub_rocprim.h"  // the same cub names on rocPRIM
#else
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>
#endif

#include "sample.cuh"

#include <algorithm>

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

// p_i = exp((l_i - max) / T), and the identity index list the sort carries along.
__global__ void __launch_bounds__(kThreads) probs_kernel(const float* l, int v, float temperature, float* p,
                                                         int32_t* idx, int32_t* code) {
  ArgBest b = block_argmax(l, v);
  if (threadIdx.x == 0) *code = row_code(b);  // draw_kernel returns it in place of an id
  for (int i = threadIdx.x; i < v; i += kThreads) {
    p[i] = expf((l[i] - b.v) / temperature);
    if (idx) idx[i] = i;
  }
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

// Single block, a ranked draw (top-k or top-p: p and its (p desc, index asc) ranking sorted_p / sorted_i given):
// decides the pivot (the last ranked token kept) and draws. Unranked draws: draw_*_kernel below.
__global__ void __launch_bounds__(kThreads) draw_kernel(const float* p, const float* sorted_p, const int32_t* sorted_i,
                                                        int v, int top_k, float top_p, float min_p, float uniform,
                                                        const int32_t* code, int32_t* result) {
  __shared__ typename Scan::TempStorage tmp;
  __shared__ float pv_value;
  __shared__ int pv_index;
  __shared__ int found, last_kept;
  const int t = threadIdx.x;
  {  // the pivot: the last ranked token kept (top-k, then top-p, then min-p over the ranking)
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
  }
  __syncthreads();
  const float pvv = pv_value;
  const int pvi = pv_index;
  auto keep = [&](int i) {
    const float x = p[i];
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

// Draws that need no ranking (top-k and top-p off: temperature, min-p at most), split over the vocabulary:
// three launches of grid (slices, rows), (slices, rows) and (rows), so that a row's 0.8 MB of logits is read by
// ~100 SMs instead of one (before, probs_kernel and a draw kernel with one 1024-thread block a row made four passes
// over the row from one SM; generate() at temperature 1 ran 6.5% under the greedy harness on an H200,
// bench/RESULTS.md).
// The definition of cpu/sample.cpp without a ranking: p_i = exp((l_i - max) / T), kept
// when p_i >= min_p, the first kept i (ascending) with cumsum > u * total, else the last kept one.
//   1. draw_max_kernel: each slice's ArgBest (max, first index, first bad logit);
//   2. draw_sum_kernel: the row's ArgBest from the slices' (every block alike), then the slice's kept mass
//      (f64: per thread a contiguous run of kDrawPerThread values in index order, then the block's scan
//      aggregate) and its last kept index;
//   3. draw_pick_kernel: a block a row: the slices' masses in slice order to the total, the first slice whose
//      running sum passes u * total, then that slice walked as draw_body walks a row (the block's exclusive
//      scan from the slice's start); a rounding miss at the slice's end takes its last kept index.
constexpr int kDrawThreads = 256;
size_t align256(size_t b) { return (b + 255) / 256 * 256; }
using DrawScan = cub::BlockScan<double, kDrawThreads>;
constexpr int kDrawPerThread = 8;    // values a thread: a slice is 2,048 values (99 slices for o200k's 201,088)
constexpr int kDrawMaxSlices = kDrawThreads;  // draw_row_best holds a row's slices one a thread

int draw_slices(int v) { return std::max(1, std::min(ceil_div(v, kDrawThreads * kDrawPerThread), kDrawMaxSlices)); }

// Slice `s` of `S` of a row of v values, and thread t's contiguous run inside it.
struct DrawRun {
  int lo, hi;  // the slice
  int a, b;    // the thread's run
};
__device__ __forceinline__ DrawRun draw_run(int v, int S, int s, int t) {
  const int per_block = (v + S - 1) / S;
  const int lo = min(v, s * per_block), hi = min(v, lo + per_block);
  const int per_thread = (per_block + kDrawThreads - 1) / kDrawThreads;
  const int a = min(hi, lo + t * per_thread), b = min(hi, a + per_thread);
  return {lo, hi, a, b};
}

// The row's ArgBest from its S <= kDrawThreads slices' (every thread of the block gets it): a tree in shared
// memory (ArgBestOp is associative and commutative, so any order gives the same answer; rocPRIM's block reduce
// of this struct took 16 bytes of scratch a lane on gfx942).
__device__ ArgBest draw_row_best(const ArgBest* part, int S) {
  __shared__ ArgBest tree[kDrawThreads];
  const int t = threadIdx.x;
  tree[t] = t < S ? part[t] : ArgBest{-INFINITY, -1, kNoBad};
  __syncthreads();
  for (int half = kDrawThreads / 2; half > 0; half /= 2) {
    if (t < half) tree[t] = ArgBestOp()(tree[t], tree[t + half]);
    __syncthreads();
  }
  const ArgBest r = tree[0];
  __syncthreads();  // tree may be reused by a later call
  return r;
}

__device__ __forceinline__ RowDraw draw_of(const RowDraw* draws, const RowDraw& one, int row) {
  return draws ? draws[row] : one;
}

// rows (greedy rows, argmax_pick_kernel) names the logit row of grid row y; else draw_of(draws, one, y).row.
__global__ void __launch_bounds__(kDrawThreads) draw_max_kernel(const float* logits, int v, const RowDraw* draws,
                                                                RowDraw one, const int32_t* rows, ArgBest* best) {
  using Reduce = cub::BlockReduce<ArgBest, kDrawThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  pdl_wait();  // the logits are the previous kernel's output (launch.cuh)
  pdl_launch_dependents();
  const int S = gridDim.x;
  const int row = rows ? rows[blockIdx.y] : draw_of(draws, one, blockIdx.y).row;
  const float* l = logits + int64_t(row) * v;
  const DrawRun r = draw_run(v, S, blockIdx.x, 0);
  ArgBest b{-INFINITY, -1, kNoBad};
  for (int i = r.lo + threadIdx.x; i < r.hi; i += kDrawThreads) scan_logit(b, l[i], i);
  const ArgBest out = Reduce(tmp).Reduce(b, ArgBestOp());
  if (threadIdx.x == 0) best[int64_t(blockIdx.y) * S + blockIdx.x] = out;
}

__global__ void __launch_bounds__(kDrawThreads) draw_sum_kernel(const float* logits, int v, const RowDraw* draws,
                                                                RowDraw one, const ArgBest* best, double* mass,
                                                                int32_t* last) {
  using Reduce = cub::BlockReduce<int, kDrawThreads>;
  __shared__ union {
    typename DrawScan::TempStorage scan;
    typename Reduce::TempStorage reduce;
  } tmp;
  pdl_wait();
  pdl_launch_dependents();
  const int S = gridDim.x, row = blockIdx.y;
  const RowDraw d = draw_of(draws, one, row);
  const ArgBest m = draw_row_best(best + int64_t(row) * S, S);
  const int64_t at = int64_t(row) * S + blockIdx.x;
  if (row_code(m) < 0) {  // no distribution: the pick kernel returns the code
    if (threadIdx.x == 0) {
      mass[at] = 0;
      last[at] = -1;
    }
    return;
  }
  const float* l = logits + int64_t(d.row) * v;
  const DrawRun r = draw_run(v, S, blockIdx.x, threadIdx.x);
  double mine = 0;
  int my_last = -1;
  for (int i = r.a; i < r.b; ++i) {
    const float p = expf((l[i] - m.v) / d.temperature);
    if (p >= d.min_p) {
      mine += double(p);
      my_last = i;
    }
  }
  double excl, total;
  DrawScan(tmp.scan).ExclusiveSum(mine, excl, total);
  __syncthreads();  // tmp is reused
  const int slice_last = Reduce(tmp.reduce).Reduce(my_last, [](int x, int y) { return x > y ? x : y; });
  if (threadIdx.x == 0) {
    mass[at] = total;
    last[at] = slice_last;
  }
}

__global__ void __launch_bounds__(kDrawThreads) draw_pick_kernel(const float* logits, int v, int S, const RowDraw* draws,
                                                                 RowDraw one, const ArgBest* best, const double* mass,
                                                                 const int32_t* last, int32_t* result) {
  __shared__ typename DrawScan::TempStorage tmp;
  __shared__ int pick_slice, pick_last, found;
  __shared__ double pick_start, target_sh;
  pdl_wait();
  pdl_launch_dependents();
  const int row = blockIdx.x, t = threadIdx.x;
  const RowDraw d = draw_of(draws, one, row);
  const ArgBest m = draw_row_best(best + int64_t(row) * S, S);
  const int code = row_code(m);
  if (code < 0) {
    if (t == 0) result[d.out] = code;
    return;
  }
  const double* ms = mass + int64_t(row) * S;
  const int32_t* ls = last + int64_t(row) * S;
  if (t == 0) {  // S <= kDrawMaxSlices sums in slice order: the total, then the slice the draw lands in
    double total = 0;
    int last_kept = -1;
    for (int s = 0; s < S; ++s) {
      total += ms[s];
      last_kept = max(last_kept, ls[s]);
    }
    const double target = double(d.uniform) * total;
    double start = 0;
    int s = 0;
    for (; s < S && !(start + ms[s] > target); ++s) start += ms[s];
    pick_slice = s < S ? s : -1;
    pick_last = s < S ? ls[s] : last_kept;
    pick_start = start;
    target_sh = target;
    found = 0x7fffffff;
  }
  __syncthreads();
  if (pick_slice < 0) {  // u * total at or past the total (rounding): the last kept token
    if (t == 0) result[d.out] = pick_last;
    return;
  }
  const float* l = logits + int64_t(d.row) * v;
  const DrawRun r = draw_run(v, S, pick_slice, t);
  double mine = 0;
  for (int i = r.a; i < r.b; ++i) {
    const float p = expf((l[i] - m.v) / d.temperature);
    if (p >= d.min_p) mine += double(p);
  }
  double excl, total;
  DrawScan(tmp).ExclusiveSum(mine, excl, total);
  const double target = target_sh;
  double cum = pick_start + excl;
  if (cum + mine > target) {
    for (int i = r.a; i < r.b; ++i) {
      const float p = expf((l[i] - m.v) / d.temperature);
      if (p >= d.min_p) {
        cum += double(p);
        if (cum > target) {
          atomicMin(&found, i);
          break;
        }
      }
    }
  }
  __syncthreads();
  if (t == 0) result[d.out] = found != 0x7fffffff ? found : pick_last;
}

// Greedy rows (a batch's temperature-0 draws): the row's ArgBest from draw_max_kernel's slices, a block a row:
// result[row] = the first index of the row's maximum, or its code (model/backend.h). The session's greedy draw
// (argmax_split_kernel) gives the same answer: both reduce ascending slices with ArgBestOp.
__global__ void __launch_bounds__(kDrawThreads) argmax_pick_kernel(const ArgBest* best, int S, int32_t* result) {
  pdl_wait();
  pdl_launch_dependents();
  const ArgBest m = draw_row_best(best + int64_t(blockIdx.x) * S, S);
  if (threadIdx.x == 0) result[blockIdx.x] = row_code(m) < 0 ? row_code(m) : m.i;
}

// The workspace of `rows` split draws: ArgBest, mass and last index a slice. As sample_ws: the layout at base,
// and its size in *total when total is given (base may then be null).
struct DrawWs {
  ArgBest* best;
  double* mass;
  int32_t* last;
};
DrawWs draw_ws(int vocab, int rows, void* base, size_t* total = nullptr) {
  const size_t n = size_t(draw_slices(vocab)) * size_t(rows);
  uint8_t* b = static_cast<uint8_t*>(base);
  size_t off = 0;
  auto take = [&](size_t bytes) {
    void* at = b ? b + off : nullptr;
    off += align256(bytes);
    return at;
  };
  DrawWs w;
  w.best = static_cast<ArgBest*>(take(sizeof(ArgBest) * n));
  w.mass = static_cast<double*>(take(sizeof(double) * n));
  w.last = static_cast<int32_t*>(take(sizeof(int32_t) * n));
  if (total) *total = off;
  return w;
}
size_t draw_ws_bytes(int vocab, int rows) {
  size_t total = 0;
  draw_ws(vocab, rows, nullptr, &total);
  return total;
}
// draws (device) a row each, or `one` when draws is null (rows = 1).
void launch_draw_split(const float* logits, int vocab, const RowDraw* draws, const RowDraw& one, int rows,
                       void* workspace, int32_t* result, cudaStream_t stream) {
  const int S = draw_slices(vocab);
  const DrawWs w = draw_ws(vocab, rows, workspace);
  launch_k(draw_max_kernel, dim3(S, rows), kDrawThreads, 0, stream, logits, vocab, draws, one,
           static_cast<const int32_t*>(nullptr), w.best);
  GPTOSS_CUDA_LAUNCH("draw_max_kernel");
  launch_k(draw_sum_kernel, dim3(S, rows), kDrawThreads, 0, stream, logits, vocab, draws, one,
           static_cast<const ArgBest*>(w.best), w.mass, w.last);
  GPTOSS_CUDA_LAUNCH("draw_sum_kernel");
  launch_k(draw_pick_kernel, dim3(rows), kDrawThreads, 0, stream, logits, vocab, S, draws, one,
           static_cast<const ArgBest*>(w.best), static_cast<const double*>(w.mass), static_cast<const int32_t*>(w.last),
           result);
  GPTOSS_CUDA_LAUNCH("draw_pick_kernel");
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

bool sample_ranked(int vocab, const SampleParams& params) {
  return (params.top_k > 0 && params.top_k < vocab) || params.top_p < 1.f;
}

size_t sample_workspace_bytes(int vocab, const SampleParams& params) {
  if (params.temperature == 0.f) return sizeof(ArgBest) * size_t(argmax_blocks(vocab));
  if (!sample_ranked(vocab, params)) return draw_ws_bytes(vocab, 1);
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
  if (!sample_ranked(vocab, params)) {
    RowDraw one;
    one.temperature = params.temperature;
    one.min_p = params.min_p;
    one.uniform = uniform;
    launch_draw_split(logits, vocab, nullptr, one, 1, workspace, result, stream);
    return;
  }
  SampleWs w = sample_ws(vocab, workspace, nullptr);
  probs_kernel<<<1, kThreads, 0, stream>>>(logits, vocab, params.temperature, w.p, w.idx, w.code);
  GPTOSS_CUDA_LAUNCH("probs_kernel");
  // Stable radix sort: equal p keep ascending index order, i.e. the (p desc, index asc) ranking.
  GPTOSS_CUDA_CHECK(cub::DeviceRadixSort::SortPairsDescending(w.cub_tmp, w.cub_bytes, w.p, w.sorted_p, w.idx,
                                                              w.sorted_i, vocab, 0, 32, stream));
  draw_kernel<<<1, kThreads, 0, stream>>>(w.p, w.sorted_p, w.sorted_i, vocab, params.top_k, params.top_p,
                                          params.min_p, uniform, w.code, result);
  GPTOSS_CUDA_LAUNCH("draw_kernel");
}

size_t argmax_rows_workspace_bytes(int vocab, int count) {
  return align256(sizeof(ArgBest) * size_t(draw_slices(vocab)) * size_t(std::max(count, 1)));
}

void launch_argmax_rows(const float* logits, int vocab, const int32_t* rows, int count, void* workspace,
                        int32_t* result, cudaStream_t stream) {
  if (count <= 0) return;
  const int S = draw_slices(vocab);
  ArgBest* best = static_cast<ArgBest*>(workspace);
  launch_k(draw_max_kernel, dim3(S, count), kDrawThreads, 0, stream, logits, vocab,
           static_cast<const RowDraw*>(nullptr), RowDraw{}, rows, best);
  GPTOSS_CUDA_LAUNCH("draw_max_kernel");
  launch_k(argmax_pick_kernel, dim3(count), kDrawThreads, 0, stream, static_cast<const ArgBest*>(best), S, result);
  GPTOSS_CUDA_LAUNCH("argmax_pick_kernel");
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

size_t sample_rows_workspace_bytes(int vocab, int count) { return draw_ws_bytes(vocab, std::max(count, 1)); }

void launch_sample_rows(const float* logits, int vocab, const RowDraw* draws, int count, void* workspace,
                        int32_t* result, cudaStream_t stream) {
  if (count <= 0) return;
  launch_draw_split(logits, vocab, draws, RowDraw{}, count, workspace, result, stream);
}

}  // namespace gptoss::cuda
