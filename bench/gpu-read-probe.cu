// Read-pattern ceilings for the MoE kernels (bench only: `gptoss_gpu_bench --read-probe`). The streaming MoE
// (moe_stream.cu) and the GEMM tile stream an expert's packed MXFP4 rows through cp.async rings, each stage a
// short piece of many rows: 128 rows x 64 bytes (4 MX blocks) at the row stride of the checkpoint's layout
// (K / 32 x 16 bytes: 1,440 for the 20b). This probe times the same bytes, the same CTAs (256 threads, two an
// SM) and the same ring, with no math, for three placements of a stage's 8 KB:
//   rows64  : 128 rows x 64 B at the row stride (the kernels' pattern today),
//   rows256 : 32 rows x 256 B at the row stride (longer runs a row, fewer rows a stage),
//   contig  : 8 KB contiguous (a tile-contiguous load-time layout),
//   rows64 with L2's 256-byte prefetch size (cp.async .L2::256B): DRAM serves 256-byte runs.
// What it answers: whether the DRAM access pattern, not the kernels' instruction issue, caps them.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include "cuda/async_copy.cuh"

namespace gptoss_bench {

namespace {

#if defined(GPTOSS_HAVE_MMA_SYNC)  // cp.async: the device pass for sm_80+ (async_copy.cuh)
using gptoss::cuda::cp_async16;
using gptoss::cuda::cp_async_commit;
using gptoss::cuda::cp_async_wait;
using gptoss::cuda::smem_addr;
// cp_async16 with L2's 256-byte prefetch-size hint (pattern 3; no kernel of the project uses the hint).
__device__ __forceinline__ void probe_cp16_l2_256(void* s, const void* g) {
  asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16;\n" ::"r"(smem_addr(s)), "l"(g) : "memory");
}
#endif

constexpr int kThreads = 256, kStageBytes = 8192, kStages = 5;

// A CTA reads the first `used` bytes of each of `rows` rows (row stride `stride`) of region blockIdx.x, in
// stages of kStageBytes. pattern 0: stage kt = 128 rows x 64 B at column 64 (kt % (used / 64)); 1: 32 rows x
// 256 B; 2: bytes [kt * 8 KB, (kt + 1) * 8 KB) of the region (the same byte count, contiguous); 3: as 0 with
// the .L2::256B prefetch-size hint.
__global__ void __launch_bounds__(kThreads, 2) read_probe_kernel(const uint8_t* base, int rows, int stride, int used,
                                                                 int pattern, uint32_t* sink) {
#if defined(GPTOSS_HAVE_MMA_SYNC)
  extern __shared__ __align__(16) uint8_t smem[];
  const uint8_t* region = base + int64_t(blockIdx.x) * rows * stride;
  const int nkt = rows * used / kStageBytes, tid = threadIdx.x;
  auto issue = [&](int kt) {
    if (kt < nkt) {
      uint8_t* st = smem + (kt % kStages) * kStageBytes;
#pragma unroll
      for (int i = 0; i < kStageBytes / 16 / kThreads; ++i) {
        const int c = tid + i * kThreads;  // 16-byte chunk of the stage
        int64_t off;
        if (pattern == 0 || pattern == 3) {  // 128 rows x 4 chunks
          const int cols = used / 64;
          const int row = (kt / cols) * 128 + c / 4, col = (kt % cols) * 64 + (c % 4) * 16;
          off = int64_t(row) * stride + col;
        } else if (pattern == 1) {  // 32 rows x 16 chunks
          const int cols = used / 256;
          const int row = (kt / cols) * 32 + c / 16, col = (kt % cols) * 256 + (c % 16) * 16;
          off = int64_t(row) * stride + col;
        } else {
          off = int64_t(kt) * kStageBytes + c * 16;
        }
        if (pattern == 3) probe_cp16_l2_256(st + c * 16, region + off);
        else cp_async16(st + c * 16, region + off);
      }
    }
    cp_async_commit();
  };
  uint32_t acc = 0;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) issue(s);
  for (int kt = 0; kt < nkt; ++kt) {
    cp_async_wait<kStages - 2>();
    __syncthreads();
    issue(kt + kStages - 1);
    const uint8_t* st = smem + (kt % kStages) * kStageBytes;
    acc ^= reinterpret_cast<const uint32_t*>(st)[tid * 8 % (kStageBytes / 4)];
  }
  cp_async_wait<0>();
  if (acc == 0x9e3779b9u) sink[blockIdx.x] = acc;  // keeps the loads; practically never written
#else
  GPTOSS_NO_DEVICE_CODE("cp.async (sm_80+)");
#endif
}

}  // namespace

// Times one pattern over `regions` regions of rows x stride bytes, reading `used` bytes of each row (a
// multiple of 256, rows a multiple of 128); returns GB/s of the bytes read (median of reps).
double read_probe_gbs(int pattern, int regions, int rows, int stride, int used, int reps) {
  if (rows % 128 || used % 256 || used > stride || (int64_t(rows) * used) % kStageBytes)
    throw std::invalid_argument("read_probe: rows must be a multiple of 128, used of 256 and at most the stride");
  const size_t bytes = size_t(regions) * rows * stride, read = size_t(regions) * rows * used;
  uint8_t* buf = nullptr;
  uint32_t* sink = nullptr;
  if (cudaMalloc(&buf, bytes) != cudaSuccess || cudaMalloc(&sink, size_t(regions) * 4) != cudaSuccess)
    throw std::runtime_error("read_probe: cudaMalloc failed");
  cudaMemset(buf, 1, bytes);
  const int smem = kStages * kStageBytes;
  cudaFuncSetAttribute(read_probe_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  float best[64];
  int n = 0;
  for (int i = 0; i < reps + 2 && n < 64; ++i) {
    cudaEventRecord(a);
    read_probe_kernel<<<regions, kThreads, smem>>>(buf, rows, stride, used, pattern, sink);
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    if (i >= 2) best[n++] = ms;
  }
  const cudaError_t err = cudaGetLastError();
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaFree(buf);
  cudaFree(sink);
  if (err != cudaSuccess) throw std::runtime_error(std::string("read_probe: ") + cudaGetErrorString(err));
  for (int i = 1; i < n; ++i)
    for (int j = i; j > 0 && best[j] < best[j - 1]; --j) std::swap(best[j], best[j - 1]);
  return double(read) / (double(best[n / 2]) * 1e-3) / 1e9;
}

// ---- The one-token decode MoE's reads (moe_decode_mma.cu's grid, no math) ----
// A 20b layer's 4 routed experts: gate_up 4 x 5,760 rows and down 4 x 2,880 rows of 90 MX blocks (1,440 bytes), a
// CTA a 16-row tile of one expert, 4 warps splitting the row's blocks 23 / 23 / 23 / 21 (the slice of 24). mode 0:
// each warp issues its 16 rows x 23 blocks by cp.async into shared memory at once and waits, as the kernels do
// (36,864 bytes of shared memory a CTA, their occupancy); mode 1: the same with shared memory only for the tile
// (4 x 16 x 384 bytes: more CTAs an SM); mode 2: into registers, lane (g, t) loading blocks 4m + t of rows g and
// g + 8 (12 x 16 bytes a lane in flight), no shared memory. 24 layers' weights (1.2 GB), gate_up then down per
// layer, captured in a graph. What it answers: whether the kernels' 51% of copy is their read structure or their math.
constexpr int kMoe1Rows16 = 16, kMoe1Blocks = 90, kMoe1RowBytes = kMoe1Blocks * 16, kMoe1Per = 23, kMoe1Stride = kMoe1Per * 16 + 16;

__global__ void __launch_bounds__(128) moe1_probe_kernel(const uint8_t* w, int rows_expert, int mode, uint32_t* sink) {
#if defined(GPTOSS_HAVE_MMA_SYNC)
  extern __shared__ __align__(16) uint8_t smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int b0 = warp * kMoe1Per, nb = min(kMoe1Per, kMoe1Blocks - b0);
  const uint8_t* tile = w + (int64_t(blockIdx.y) * rows_expert + int64_t(blockIdx.x) * kMoe1Rows16) * kMoe1RowBytes;
  uint32_t acc = 0;
  if (mode < 2) {
    uint8_t* st = smem + warp * kMoe1Rows16 * kMoe1Stride;
    if (lane < nb) {
#pragma unroll
      for (int i = 0; i < kMoe1Rows16; ++i) cp_async16(st + i * kMoe1Stride + lane * 16, tile + int64_t(i) * kMoe1RowBytes + (b0 + lane) * 16);
    }
    cp_async_commit();
    cp_async_wait<0>();
    __syncwarp();
    acc = reinterpret_cast<const uint32_t*>(st + (lane & 15) * kMoe1Stride)[lane];
  } else {
    const int g = lane >> 2, t = lane & 3;
    uint4 v[12];
#pragma unroll
    for (int m = 0; m < 6; ++m) {
      const int b = 4 * m + t;
      if (b < nb) {
        v[2 * m] = __ldg(reinterpret_cast<const uint4*>(tile + int64_t(g) * kMoe1RowBytes + (b0 + b) * 16));
        v[2 * m + 1] = __ldg(reinterpret_cast<const uint4*>(tile + int64_t(g + 8) * kMoe1RowBytes + (b0 + b) * 16));
      } else {
        v[2 * m] = v[2 * m + 1] = make_uint4(0, 0, 0, 0);
      }
    }
#pragma unroll
    for (int i = 0; i < 12; ++i) acc ^= v[i].x ^ v[i].y ^ v[i].z ^ v[i].w;
  }
  if (acc == 0x9e3779b9u) sink[blockIdx.x] = acc;
#else
  GPTOSS_NO_DEVICE_CODE("cp.async (sm_80+)");
#endif
}

// Microseconds a layer (gate_up + down) of `mode`, median of graph replays; bytes: the blocks read a layer.
double moe1_probe_us(int mode, double* bytes_layer) {
  const int layers = 24, E = 4, gu_rows = 5760, dn_rows = 2880;
  const size_t gu = size_t(E) * gu_rows * kMoe1RowBytes, dn = size_t(E) * dn_rows * kMoe1RowBytes, per = gu + dn;
  *bytes_layer = double(per);
  uint8_t* buf = nullptr;
  uint32_t* sink = nullptr;
  if (cudaMalloc(&buf, per * layers) != cudaSuccess || cudaMalloc(&sink, 4096) != cudaSuccess)
    throw std::runtime_error("moe1_probe: cudaMalloc failed");
  cudaMemset(buf, 1, per * layers);
  const int smem = mode == 0 ? 36864 : mode == 1 ? 4 * kMoe1Rows16 * kMoe1Stride : 0;
  cudaFuncSetAttribute(moe1_probe_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 36864);
  cudaStream_t s;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
  for (int l = 0; l < layers; ++l) {
    moe1_probe_kernel<<<dim3(gu_rows / kMoe1Rows16, E), 128, smem, s>>>(buf + per * l, gu_rows, mode, sink);
    moe1_probe_kernel<<<dim3(dn_rows / kMoe1Rows16, E), 128, smem, s>>>(buf + per * l + gu, dn_rows, mode, sink);
  }
  cudaStreamEndCapture(s, &graph);
  cudaGraphInstantiate(&exec, graph, 0);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  float t[21];
  for (int i = 0; i < 23; ++i) {
    cudaEventRecord(a, s);
    cudaGraphLaunch(exec, s);
    cudaEventRecord(b, s);
    cudaEventSynchronize(b);
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    if (i >= 2) t[i - 2] = ms;
  }
  const cudaError_t err = cudaGetLastError();
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(s);
  cudaFree(buf);
  cudaFree(sink);
  if (err != cudaSuccess) throw std::runtime_error(std::string("moe1_probe: ") + cudaGetErrorString(err));
  std::sort(t, t + 21);
  return double(t[10]) * 1e3 / layers;
}

}  // namespace gptoss_bench
