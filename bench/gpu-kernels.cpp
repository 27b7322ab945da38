// GPU kernel benchmark (built with -DGPTOSS_GPU_TESTS=ON as gptoss_gpu_bench; run by
// scripts/gpu-check.sh). Times each op through the Backend interface with CUDA events on the
// backend's stream: warm-up, then the median of many runs, inputs rotated over sets larger than
// the 50 MB L2 where the op is memory-bound. Ceilings are measured in the same run: a large
// device-to-device copy (bytes read + written) and, if libcublas is found (dlopen), a bf16 GEMM.
//   gptoss_gpu_bench [--quick] [--decode] [--bf16-experts] [--gemv] [--attn]   (--decode: copy ceiling + the
//   decode-step kernels only; --bf16-experts: copy ceiling + the bf16 expert kernels of loadModel's experts: 'bf16' only;
//   --gemv: copy ceiling + the decode GEMVs under each GPTOSS_CUDA_GEMV / GPTOSS_CUDA_GEMV_CTAS variant, twice
//   in alternation: scripts/gpu-gemv-ab.sh reads its rows; --attn: copy ceiling + decode attention at 1k / 8k /
//   32k keys, SIMT and tensor-core kernels: scripts/gpu-attn-ab.sh; --gemm: cuBLAS ceiling + the prefill GEMM tile,
//   GPTOSS_CUDA_GEMM=mma vs =wgmma, twice in alternation: scripts/gpu-wgmma-ab.sh; --moe-batch: copy ceiling + a
//   batched decode step's MoE under each GPTOSS_CUDA_MOE_BATCH path: scripts/gpu-moe-batch-ab.sh; --sample: copy
//   ceiling + one row's draws greedy, at temperature 1 and at top-p 0.9, and 64 rows' draws in one call)
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "cuda/bench_hooks.h"
#include "harness.h"

using namespace gptoss;
using namespace gptoss::gputest;

namespace {

std::shared_ptr<Backend> gpu;
cudaStream_t stream;
bool quick = false;
bool decode_only = false;
bool attn_only = false;  // --attn: copy ceiling + the attention rows (decode at 1k / 8k / 32k)
bool bf16_experts_only = false;
bool gemv_only = false;
bool gemm_only = false;  // --gemm: the prefill GEMM tile under each GPTOSS_CUDA_GEMM (bench_gemm)
bool moe_batch_only = false;  // --moe-batch: the batched decode step's MoE under each GPTOSS_CUDA_MOE_BATCH (bench_moe_batch)

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { std::fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e_)); std::exit(3); } } while (0)

// Median milliseconds of fn(i) over `reps` runs after `warm` warm-ups; i counts up (rotation).
double time_ms(const std::function<void(int)>& fn, int reps = 30, int warm = 3) {
  for (int i = 0; i < warm; ++i) fn(i);
  gpu->synchronize();
  std::vector<cudaEvent_t> ev(2 * reps);
  for (auto& e : ev) CK(cudaEventCreate(&e));
  for (int i = 0; i < reps; ++i) {
    CK(cudaEventRecord(ev[2 * i], stream));
    fn(warm + i);
    CK(cudaEventRecord(ev[2 * i + 1], stream));
  }
  gpu->synchronize();
  std::vector<float> ms(reps);
  for (int i = 0; i < reps; ++i) CK(cudaEventElapsedTime(&ms[i], ev[2 * i], ev[2 * i + 1]));
  for (auto& e : ev) CK(cudaEventDestroy(e));
  std::sort(ms.begin(), ms.end());
  return ms[reps / 2];
}

// Per-call median of `inner` calls captured once as a CUDA graph (Backend::run_step) and replayed:
// the decode-step situation, without host launch gaps. fn(i) rotates inputs by i.
double time_graph_ms(const std::function<void(int)>& fn, int inner = 16, int reps = 30) {
  static int owner;
  static uint64_t key = 1000;
  ++key;
  auto body = [&] { for (int i = 0; i < inner; ++i) fn(i); };
  double ms = time_ms([&](int) { gpu->run_step(key, &owner, body); }, reps, 2);
  gpu->forget_steps(&owner);
  return ms / inner;
}

struct Row {
  std::string what, shape;
  double ms, value;
  std::string unit;
  double ceiling;
};
std::vector<Row> rows;
void add(const std::string& what, const std::string& shape, double ms, double value, const char* unit, double ceiling) {
  rows.push_back({what, shape, ms, value, unit, ceiling});
  std::printf("%-26s %-36s %9.3f ms %9.1f %-7s (%5.1f%% of %.0f)\n", what.c_str(), shape.c_str(), ms, value, unit,
              ceiling > 0 ? 100 * value / ceiling : 0.0, ceiling);
  std::fflush(stdout);
}

double copy_ceiling_gbs() {
  const size_t bytes = size_t(2) << 30;
  void *a, *b;
  CK(cudaMalloc(&a, bytes));
  CK(cudaMalloc(&b, bytes));
  CK(cudaMemsetAsync(a, 1, bytes, stream));
  double ms = time_ms([&](int) { CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream)); }, 10, 2);
  CK(cudaFree(a));
  CK(cudaFree(b));
  return 2.0 * bytes / (ms * 1e-3) / 1e9;
}

// bf16 GEMM ceiling through cuBLAS, if the GPU host has it (prototypes declared here: no headers needed).
double cublas_ceiling_tflops() {
  const char* names[] = {getenv("GPTOSS_CUBLAS"), "libcublas.so.13", "libcublas.so.12", "libcublas.so",
                         "/usr/local/cuda/lib64/libcublas.so"};
  void* lib = nullptr;
  for (const char* n : names)
    if (n && (lib = dlopen(n, RTLD_NOW | RTLD_LOCAL))) break;
  if (!lib) return 0;
  using Create = int (*)(void**);
  using SetStream = int (*)(void*, cudaStream_t);
  using GemmEx = int (*)(void*, int, int, int, int, int, const void*, const void*, int, int, const void*, int, int,
                         const void*, void*, int, int, int, int);
  auto create = reinterpret_cast<Create>(dlsym(lib, "cublasCreate_v2"));
  auto set_stream = reinterpret_cast<SetStream>(dlsym(lib, "cublasSetStream_v2"));
  auto gemm = reinterpret_cast<GemmEx>(dlsym(lib, "cublasGemmEx"));
  if (!create || !set_stream || !gemm) return 0;
  void* h = nullptr;
  if (create(&h) != 0) return 0;
  set_stream(h, stream);
  const int n = 8192;
  Rng r(7);
  Tensor a = gpu->upload(rand_bf16(r, {n, n})), b = gpu->upload(rand_bf16(r, {n, n}));
  Tensor c = gpu->empty(DType::BF16, {n, n});
  const float one = 1.f, zero = 0.f;
  const int kBF16 = 14, kCompute32F = 68, kDefault = -1;  // CUDA_R_16BF, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT
  int st = 0;
  double ms = time_ms([&](int) {
    st |= gemm(h, 0, 0, n, n, n, &one, a.data, kBF16, n, b.data, kBF16, n, &zero, c.data, kBF16, n, kCompute32F, kDefault);
  }, 10, 3);
  if (st) return 0;
  return 2.0 * n * n * double(n) / (ms * 1e-3) / 1e12;
}

void print_table() {
  std::printf("\n| kernel | shape | median ms | achieved | ceiling | %% |\n|---|---|---|---|---|---|\n");
  for (const Row& x : rows)
    std::printf("| %s | %s | %.3f | %.1f %s | %.0f | %.0f%% |\n", x.what.c_str(), x.shape.c_str(), x.ms, x.value,
                x.unit.c_str(), x.ceiling, x.ceiling > 0 ? 100 * x.value / x.ceiling : 0.0);
}

// The route of n tokens over `experts`, k distinct each, weights 1/k; `sets` of them (rotated so a
// decode call does not find its experts in L2). `seen`, when given: for each set, which experts it routes to.
std::vector<std::pair<Tensor, Tensor>> random_routing(Rng& r, int n, int k, int sets, int experts,
                                                      std::vector<std::vector<bool>>* seen = nullptr) {
  std::vector<std::pair<Tensor, Tensor>> v;
  if (seen) seen->assign(sets, std::vector<bool>(experts, false));
  for (int s = 0; s < sets; ++s) {
    std::vector<int32_t> idx(size_t(n) * k);
    for (int t = 0; t < n; ++t)
      for (int j = 0; j < k; ++j) {
        int e;
        bool dup;
        do {
          e = r.below(experts);
          dup = false;
          for (int q = 0; q < j; ++q) dup |= idx[size_t(t) * k + q] == e;
        } while (dup);
        idx[size_t(t) * k + j] = e;
        if (seen) (*seen)[s][e] = true;
      }
    Tensor ht = host_empty(DType::F32, {n, k});
    for (int64_t i = 0; i < ht.numel(); ++i) ht.ptr<float>()[i] = 1.f / float(k);
    v.push_back({gpu->upload(i32_tensor(idx, {n, k})), gpu->upload(ht)});
  }
  return v;
}

// The MoE of a batched decode step (issue 11; scripts/gpu-moe-batch-ab.sh): the whole op (count, scan,
// scatter, split, gate_up, down, un-permute) for 8 / 64 / 128 streams' routings (top-4 of 32 experts, one 20b
// layer's experts: 423 MB, far past L2), under each GPTOSS_CUDA_MOE_BATCH path (gemm: the GEMM tile, the
// default from 64 streams; mma: the grouped decode kernels, the default at 8; stream: moe_stream.cu), and at
// 1 and 4 tokens (the decode path) the decode kernels against GPTOSS_CUDA_MOE_DECODE=stream, twice
// in alternation, eager and as a CUDA graph (the batched step's situation). GB/s counts the packed bytes of
// the experts the routing touches (weights + scales), each once, against the copy ceiling (read + write)
// measured in the same run. Predictions: bench/RESULTS.md, "The streaming MoE of a decode batch".
// One attention block's bf16 weights at the 20b's shapes (64 query heads, 8 KV heads of 64): q, k, v, o and
// their biases, drawn in that order.
struct AttnLayer { Tensor q, k, v, o, bq, bk, bv, bo; };
AttnLayer bf16_attn_layer(Rng& r, int H) {
  const int Hq = 64, Hkv = 8, D = 64;
  return {gpu->upload(rand_bf16(r, {Hq * D, H}, 0.02f)), gpu->upload(rand_bf16(r, {Hkv * D, H}, 0.02f)),
          gpu->upload(rand_bf16(r, {Hkv * D, H}, 0.02f)), gpu->upload(rand_bf16(r, {H, Hq * D}, 0.02f)),
          gpu->upload(rand_bf16(r, {Hq * D})), gpu->upload(rand_bf16(r, {Hkv * D})),
          gpu->upload(rand_bf16(r, {Hkv * D})), gpu->upload(rand_bf16(r, {H}))};
}

// q/k/v (one launch) and o over the layers' weights in turn, graph-timed: rows "<name> qkv<tag>" and
// "<name> o_proj<tag>" of shape `nn`; bytes counted: the weights (and scales) read once a call.
void time_qkv_o(const std::vector<AttnLayer>& ls, const std::string& name, const std::string& tag, const std::string& nn,
                const Tensor& x, const Tensor& xo, Tensor& q, Tensor& k, Tensor& v, Tensor& o, double bw) {
  const int layers = int(ls.size());
  const double qkv_bytes = double(ls[0].q.nbytes() + ls[0].k.nbytes() + ls[0].v.nbytes());
  double ms = time_graph_ms([&](int i) {
    const AttnLayer& a = ls[size_t(i % layers)];
    gpu->qkv(x, a.q, a.bq, a.k, a.bk, a.v, a.bv, q, k, v);
  }, layers);
  add(name + " qkv" + tag, nn + " [5120, 2880] x" + std::to_string(layers), ms, qkv_bytes / (ms * 1e-3) / 1e9, "GB/s", bw);
  ms = time_graph_ms([&](int i) { const AttnLayer& a = ls[size_t(i % layers)]; gpu->linear(xo, a.o, &a.bo, o); }, layers);
  add(name + " o_proj" + tag, nn + " [2880, 4096] x" + std::to_string(layers), ms, double(ls[0].o.nbytes()) / (ms * 1e-3) / 1e9,
      "GB/s", bw);
}

// Whether the comma-separated list names `item` exactly.
bool list_has(const char* list, const char* item) {
  const size_t n = std::strlen(item);
  for (const char* c = list; *c;) {
    const char* end = std::strchr(c, ',');
    const size_t len = end ? size_t(end - c) : std::strlen(c);
    if (len == n && !std::strncmp(c, item, n)) return true;
    if (!end) break;
    c = end + 1;
  }
  return false;
}

int bench_moe_batch(Rng& r, double bw, int H, int I, int E, int K) {
  MoeWeights w;
  const Tensor gate_up = rand_mxfp4(r, {E, 2 * I, H}, 119, 122), down = rand_mxfp4(r, {E, H, I}, 117, 120);
  w.gate_up = gpu->upload(gate_up);
  w.gate_up_bias = gpu->upload(rand_bf16(r, {E, 2 * I}));
  w.down = gpu->upload(down);
  w.down_bias = gpu->upload(rand_bf16(r, {E, H}));
  // "stream-relaid": the same experts in the decode layout (GPTOSS_CUDA_MOE_DECODE=mma-relaid at upload,
  // mxfp4_layout.h), read by the streaming kernels' kRelaid variant (bit-placed E2M1, 9 ALU ops a word)
  MoeWeights wr = w;
  wr.gate_up = gpu->upload(gate_up);
  wr.down = gpu->upload(down);
  setenv("GPTOSS_CUDA_MOE_DECODE", "mma-relaid", 1);
  const std::string relaid_line = gpu->prepare_experts(wr);
  unsetenv("GPTOSS_CUDA_MOE_DECODE");
  std::printf("prepare_experts (stream-relaid rows): %s\n", relaid_line.empty() ? "(not applied)" : relaid_line.c_str());
  const double expert_bytes = double(2 * I) * H / 2 + double(2 * I) * H / 32 + double(H) * I / 2 + double(H) * I / 32;
  SwigluParams sw;
  // 1 and 4 tokens (n k <= 16: the decode path): the decode kernels (default) against GPTOSS_CUDA_MOE_DECODE=stream
  std::vector<int> ns = quick ? std::vector<int>{1, 8, 64} : std::vector<int>{1, 4, 8, 16, 24, 32, 64, 96, 112, 128};
  if (const char* list = std::getenv("GPTOSS_BENCH_MOE_NS")) {  // e.g. "16,64,128": a shorter device call
    ns.clear();
    for (const char* c = list; *c;) {
      char* end = nullptr;
      const long v = std::strtol(c, &end, 10);
      if (end == c || v <= 0 || v > 4096 || (*end && *end != ',')) {
        std::fprintf(stderr, "GPTOSS_BENCH_MOE_NS: expected positive token counts separated by commas, got \"%s\"\n", list);
        return 2;
      }
      ns.push_back(int(v));
      c = *end ? end + 1 : end;
    }
  }
  for (int round = 0; round < 2; ++round)
    for (int n : ns) {
      const bool dec = n * K <= 16;
      const int nsets = dec ? 8 : 2;  // rotated: a call's experts not left in L2 by the call before
      // the routings (rotated), k distinct experts a token, weights 1/k; `touched`: experts with a row
      std::vector<std::vector<bool>> seen;
      const auto sets = random_routing(r, n, K, nsets, E, &seen);
      int touched = 0;  // the mean over the sets (a call reads one set's experts)
      for (int st = 0; st < nsets; ++st)
        for (bool b : seen[st]) touched += b;
      touched = (touched + nsets / 2) / nsets;
      Tensor x = gpu->upload(rand_f32(r, {n, H})), y = gpu->empty(DType::F32, {n, H});
      const std::string shape = "n" + std::to_string(n) + " k" + std::to_string(K) + " E" + std::to_string(E) + " (" +
                                std::to_string(touched) + " touched)";
      // "stream-s5": the stream kernels with the 5-stage ring (GPTOSS_CUDA_MOE_STREAM_STAGES=5: two CTAs an SM on
      // sm_90, against the default 3-stage ring's three); on the decode layout, "stream-relaid": the narrow kernel
      // (GPTOSS_CUDA_MOE_STREAM_TOKENS=16), "stream-relaid-w32": the wide one (=32: 32 rows a CTA, two CTAs an SM),
      // "stream-relaid-auto": the policy's choice between them (moe_stream_tokens), "stream-relaid-s5": the narrow one on the
      // 5-stage ring (two CTAs an SM). GPTOSS_CUDA_MOE_STREAM_TMA picks the ring's filling (read at each call)
      const std::vector<const char*> paths =
          dec ? std::vector<const char*>{"mma", "mma-relaid", "stream", "stream-relaid", "stream-s5"}
              : std::vector<const char*>{"gemm", "gemm-classic", "gemm-bf16act", "gemm-classic-bf16act", "mma", "stream", "stream-relaid", "stream-relaid-w32", "stream-relaid-auto", "stream-s5", "stream-relaid-s5"};
      for (const char* path : paths) {
        const bool s5 = !std::strcmp(path, "stream-s5"), w32 = !std::strcmp(path, "stream-relaid-w32");
        const bool w16 = !std::strcmp(path, "stream-relaid"), s5r = !std::strcmp(path, "stream-relaid-s5");
        const bool mr = !std::strcmp(path, "mma-relaid");  // decode sizes: the decode kernels on the decode layout
        // "gemm-bf16act": the GEMM tile with GPTOSS_CUDA_MOE_ACT=bf16 (on wgmma: A as its bf16 hi half alone)
        const bool act = !std::strcmp(path, "gemm-bf16act") || !std::strcmp(path, "gemm-classic-bf16act");
        // "gemm-classic" / "gemm-classic-bf16act": the wgmma tile's kernel with every thread in every role
        // (GPTOSS_CUDA_GEMM_WS=0); "gemm" / "gemm-bf16act": the warp-specialized one (=1)
        const bool classic = !std::strncmp(path, "gemm-classic", 12);
        const bool rl = w32 || w16 || s5r || mr || !std::strcmp(path, "stream-relaid-auto");
        if (rl && !wr.decode_layout) continue;
        if (const char* only = std::getenv("GPTOSS_BENCH_MOE_PATHS"))  // e.g. "gemm,stream-relaid,stream-relaid-w32"
          if (!list_has(only, path)) continue;
        if (s5 || s5r) setenv("GPTOSS_CUDA_MOE_STREAM_STAGES", "5", 1);
        else unsetenv("GPTOSS_CUDA_MOE_STREAM_STAGES");
        if (w32 || w16 || s5r) setenv("GPTOSS_CUDA_MOE_STREAM_TOKENS", w32 ? "32" : "16", 1);
        else unsetenv("GPTOSS_CUDA_MOE_STREAM_TOKENS");
        if (act) setenv("GPTOSS_CUDA_MOE_ACT", "bf16", 1);
        else unsetenv("GPTOSS_CUDA_MOE_ACT");
        setenv("GPTOSS_CUDA_GEMM_WS", classic ? "0" : "1", 1);
        setenv(dec ? "GPTOSS_CUDA_MOE_DECODE" : "GPTOSS_CUDA_MOE_BATCH", s5 || (rl && !mr) ? "stream" : act || classic ? "gemm" : path, 1);
        const MoeWeights& ww = rl ? wr : w;
        const std::string tag = std::string(dec ? " decode " : " ") + path + " r" + std::to_string(round + 1);
        double ms = time_ms([&](int i) { auto& s = sets[i % nsets]; gpu->moe(x, s.first, s.second, ww, sw, y); }, 20, 3);
        add("moe batch eager" + tag, shape, ms, touched * expert_bytes / (ms * 1e-3) / 1e9, "GB/s", bw);
        ms = time_graph_ms([&](int i) { auto& s = sets[i % nsets]; gpu->moe(x, s.first, s.second, ww, sw, y); }, 8, 20);
        add("moe batch graph" + tag, shape, ms, touched * expert_bytes / (ms * 1e-3) / 1e9, "GB/s", bw);
      }
      unsetenv("GPTOSS_CUDA_MOE_DECODE");
      unsetenv("GPTOSS_CUDA_MOE_STREAM_STAGES");
      unsetenv("GPTOSS_CUDA_MOE_STREAM_TOKENS");
      unsetenv("GPTOSS_CUDA_MOE_ACT");
      unsetenv("GPTOSS_CUDA_GEMM_WS");
    }
  unsetenv("GPTOSS_CUDA_MOE_BATCH");
  print_table();
  return 0;
}

// The prefill GEMM tile (issue 12 item 4), the mma.sync tile (GPTOSS_CUDA_GEMM=mma) against the wgmma
// tile (GPTOSS_CUDA_GEMM=wgmma, gemm_wgmma.cu), each forced for every problem (the default picks per
// problem, policy.h), twice in alternation (A B A B: drift shows as a round difference), at a 20b
// prefill's shapes: q/k/v as one launch of 3 column parts and o (24 layers' bf16 weights rotated),
// the grouped MoE (20b: 32 experts, top-4; 120b's 128 experts) at 512, 1024 and 2048 tokens. TFLOP/s count
// 2 n N K useful flops (the tiles issue twice that: A as bf16 hi + lo), against cuBLAS's plain bf16
// GEMM measured in the same run. The MoE rows time the whole op (count, scan, scatter, split, the
// two GEMMs, un-permute). Predictions: bench/RESULTS.md, "Prefill GEMMs on wgmma".
int bench_gemm(Rng& r, double mm, int H, int I, int E, int K) {
  const int Hq = 64, Hkv = 8, D = 64, layers = quick ? 2 : 24;
  using Attn = AttnLayer;
  std::vector<Attn> ls;
  for (int l = 0; l < layers; ++l) ls.push_back(bf16_attn_layer(r, H));
  auto experts = [&](int e) {
    MoeWeights w;
    w.gate_up = gpu->upload(rand_mxfp4(r, {e, 2 * I, H}, 119, 122));
    w.gate_up_bias = gpu->upload(rand_bf16(r, {e, 2 * I}));
    w.down = gpu->upload(rand_mxfp4(r, {e, H, I}, 117, 120));
    w.down_bias = gpu->upload(rand_bf16(r, {e, H}));
    return w;
  };
  const MoeWeights w20 = experts(E), w120 = experts(quick ? E : 128);
  SwigluParams sw;
  // 1024: the MoE E32 at 128 routed rows an expert, the edge where the default moves the grouped GEMMs
  // to wgmma (policy.h kWgmmaMoeMinRowsPerExpert)
  const std::vector<int> ns = quick ? std::vector<int>{512} : std::vector<int>{512, 1024, 2048};
  for (int round = 0; round < 2; ++round)
    for (const char* variant : {"mma.sync", "wgmma"}) {
      setenv("GPTOSS_CUDA_GEMM", std::strcmp(variant, "wgmma") ? "mma" : "wgmma", 1);  // each tile forced
      const std::string tag = std::string(" [") + variant + ", round " + std::to_string(round + 1) + "]";
      for (int n : ns) {
        const std::string sn = "n" + std::to_string(n);
        Tensor x = gpu->upload(rand_f32(r, {n, H})), xo = gpu->upload(rand_f32(r, {n, Hq * D}));
        Tensor q = gpu->empty(DType::F32, {n, Hq * D}), k = gpu->empty(DType::F32, {n, Hkv * D}),
               v = gpu->empty(DType::F32, {n, Hkv * D}), o = gpu->empty(DType::F32, {n, H});
        double ms = time_ms([&](int i) {
          const Attn& a = ls[i % layers];
          gpu->qkv(x, a.q, a.bq, a.k, a.bk, a.v, a.bv, q, k, v);
        }, 24, 2);
        add("prefill qkv GEMM" + tag, sn + " [5120, 2880]", ms, 2.0 * n * (Hq + 2 * Hkv) * D * H / (ms * 1e-3) / 1e12, "TFLOP/s", mm);
        ms = time_ms([&](int i) { const Attn& a = ls[i % layers]; gpu->linear(xo, a.o, &a.bo, o); }, 24, 2);
        add("prefill o_proj GEMM" + tag, sn + " [2880, 4096]", ms, 2.0 * n * Hq * D * H / (ms * 1e-3) / 1e12, "TFLOP/s", mm);
        Tensor y = gpu->empty(DType::F32, {n, H});
        const double flops = 2.0 * n * K * (2.0 * I * H + double(H) * I);
        for (const MoeWeights* w : {&w20, &w120}) {
          const int e = int(w->gate_up.dim(0));
          auto sets = random_routing(r, n, K, 2, e);
          ms = time_ms([&](int i) { auto& s = sets[i % 2]; gpu->moe(x, s.first, s.second, *w, sw, y); }, 10, 2);
          add("prefill moe grouped GEMM" + tag, sn + " k4 E" + std::to_string(e), ms, flops / (ms * 1e-3) / 1e12, "TFLOP/s", mm);
        }
      }
    }
  unsetenv("GPTOSS_CUDA_GEMM");
  print_table();
  return 0;
}

// bf16 experts (loadModel's experts: 'bf16'; [E, out, in] rows): one 20b layer's 32 experts (1.59 GB),
// the decode GEMVs (moe_bf16.cu) against the copy ceiling, eager and in a graph, at 1 and 4 tokens and
// with each path forced (GPTOSS_CUDA_MOE_BF16), and the grouped bf16 tile for prefill (TFLOP/s).
// Bytes a decode call must read: k distinct experts x (2I x H + H x I) x 2 (20b: 199 MB a layer).
int bench_bf16_experts(Rng& r, double bw, double mm, int H, int I, int E, int K) {
  MoeWeights w;
  w.gate_up = gpu->upload(rand_bf16(r, {E, 2 * I, H}, 0.02f));
  w.gate_up_bias = gpu->upload(rand_bf16(r, {E, 2 * I}));
  w.down = gpu->upload(rand_bf16(r, {E, H, I}, 0.02f));
  w.down_bias = gpu->upload(rand_bf16(r, {E, H}));
  const double expert_bytes = (double(2 * I) * H + double(H) * I) * 2;
  SwigluParams sw;
  for (int n : {1, 4}) {
    auto sets = random_routing(r, n, K, 16, E);
    Tensor x = gpu->upload(rand_f32(r, {n, H})), out = gpu->empty(DType::F32, {n, H});
    // distinct experts a call reads (a token's k are distinct; tokens may share)
    for (const char* path : {"gemv", "grouped"}) {
      setenv("GPTOSS_CUDA_MOE_BF16", path, 1);
      const std::string shape = "n" + std::to_string(n) + " k4 E32 H2880 I2880 bf16";
      const double bytes = std::min(n * K, E) * expert_bytes;  // an upper bound of the distinct experts' bytes
      double ms = time_ms([&](int i) { auto& s = sets[i % 16]; gpu->moe(x, s.first, s.second, w, sw, out); }, 50, 5);
      add(std::string("moe bf16 ") + path + " eager", shape, ms, bytes / (ms * 1e-3) / 1e9, "GB/s", bw);
      ms = time_graph_ms([&](int i) { auto& s = sets[i % 16]; gpu->moe(x, s.first, s.second, w, sw, out); });
      add(std::string("moe bf16 ") + path + " graph", shape, ms, bytes / (ms * 1e-3) / 1e9, "GB/s", bw);
    }
    unsetenv("GPTOSS_CUDA_MOE_BF16");
  }
  for (int n : {512, 2048}) {
    if (quick && n > 512) break;
    auto sets = random_routing(r, n, K, 2, E);
    Tensor x = gpu->upload(rand_f32(r, {n, H})), out = gpu->empty(DType::F32, {n, H});
    double ms = time_ms([&](int i) { auto& s = sets[i % 2]; gpu->moe(x, s.first, s.second, w, sw, out); }, 10, 2);
    double flops = 2.0 * n * K * (2.0 * I * H + double(H) * I);
    add("moe bf16 grouped GEMM", "n" + std::to_string(n) + " k4 E32", ms, flops / (ms * 1e-3) / 1e12, "TFLOP/s", mm);
  }
  print_table();
  return 0;
}

// The decode GEMVs (issue 12 item 2: bf16 q/k/v, o, the fused add_rmsnorm_qkv and the LM head; issue
// 15: the same in Q8_0) under each variant of the knobs (policy.h's choose_gemv, gemv_ctas_per_sm):
// default (Xs where it applies), warp (GPTOSS_CUDA_GEMV=warp: the kernels before Xs), ctas1/ctas2
// (GPTOSS_CUDA_GEMV_CTAS) and both. Rows are named
// "<kernel> [<variant>] pass <p>"; the variants run in order, then again (pass 2), so each figure has
// a repeat taken minutes apart to judge the spread. 24 layers' weights rotate (the per-layer ops: 24 x
// 53 MB bf16, past the 50 MB L2); bytes counted: the weights (and scales) read once a call.
// Predictions: bench/RESULTS.md, "Decode GEMVs at the copy ceiling".
int bench_gemv(Rng& r, double bw, int H, int V) {
  const int Hq = 64, Hkv = 8, D = 64, layers = 24;
  using Attn = AttnLayer;
  std::vector<Attn> bf, q8;
  for (int l = 0; l < layers; ++l) {
    bf.push_back(bf16_attn_layer(r, H));
    q8.push_back({gpu->upload(rand_q8_0(r, {Hq * D, H}, 0.02f)), gpu->upload(rand_q8_0(r, {Hkv * D, H}, 0.02f)),
                  gpu->upload(rand_q8_0(r, {Hkv * D, H}, 0.02f)), gpu->upload(rand_q8_0(r, {H, Hq * D}, 0.02f)),
                  bf[l].bq, bf[l].bk, bf[l].bv, bf[l].bo});
  }
  Tensor nw = gpu->upload(rand_bf16(r, {H}));
  Tensor lm = gpu->upload(rand_bf16(r, {V, H}, 0.05f)), lq = gpu->upload(rand_q8_0(r, {V, H}, 0.05f));
  struct Variant { const char* name; const char* gemv; const char* ctas; };
  const Variant variants[] = {{"default", nullptr, nullptr}, {"warp", "warp", nullptr}, {"ctas1", nullptr, "1"},
                              {"warp ctas1", "warp", "1"},   {"ctas2", nullptr, "2"},   {"warp ctas2", "warp", "2"}};
  const double qkv_bytes = double(bf[0].q.nbytes() + bf[0].k.nbytes() + bf[0].v.nbytes());
  for (int pass = 1; pass <= 2; ++pass) {
    for (const Variant& vr : variants) {
      if (vr.gemv) setenv("GPTOSS_CUDA_GEMV", vr.gemv, 1);
      else unsetenv("GPTOSS_CUDA_GEMV");
      if (vr.ctas) setenv("GPTOSS_CUDA_GEMV_CTAS", vr.ctas, 1);
      else unsetenv("GPTOSS_CUDA_GEMV_CTAS");
      const std::string tag = std::string(" [") + vr.name + "] pass " + std::to_string(pass);
      for (int n : {1, 4}) {
        Tensor x = gpu->upload(rand_f32(r, {n, H})), xo = gpu->upload(rand_f32(r, {n, Hq * D}));
        Tensor res = gpu->upload(rand_f32(r, {n, H})), xn = gpu->empty(DType::F32, {n, H});
        Tensor q = gpu->empty(DType::F32, {n, Hq * D}), k = gpu->empty(DType::F32, {n, Hkv * D}),
               v = gpu->empty(DType::F32, {n, Hkv * D}), o = gpu->empty(DType::F32, {n, H});
        const std::string nn = "n" + std::to_string(n);
        double ms = time_graph_ms([&](int i) {
          const Attn& a = bf[i % layers];
          gpu->qkv(x, a.q, a.bq, a.k, a.bk, a.v, a.bv, q, k, v);
        }, layers);
        add("bf16 gemv qkv" + tag, nn + " [5120, 2880] x24", ms, qkv_bytes / (ms * 1e-3) / 1e9, "GB/s", bw);
        if (n == 1) {
          ms = time_graph_ms([&](int i) {
            const Attn& a = bf[i % layers];
            gpu->add_rmsnorm_qkv(x, res, nw, 1e-5f, xn, a.q, a.bq, a.k, a.bk, a.v, a.bv, q, k, v);
          }, layers);
          add("bf16 add_rmsnorm_qkv" + tag, nn + " [5120, 2880] x24", ms, qkv_bytes / (ms * 1e-3) / 1e9, "GB/s", bw);
        }
        ms = time_graph_ms([&](int i) { const Attn& a = bf[i % layers]; gpu->linear(xo, a.o, &a.bo, o); }, layers);
        add("bf16 gemv o_proj" + tag, nn + " [2880, 4096] x24", ms, double(bf[0].o.nbytes()) / (ms * 1e-3) / 1e9, "GB/s", bw);
        time_qkv_o(q8, "q8_0 gemv", tag, nn, x, xo, q, k, v, o, bw);  // Q8_0 q/k/v: one GEMV launch (Xs), three under warp
        Tensor lx = gpu->upload(rand_f32(r, {n, H})), lout = gpu->empty(DType::F32, {n, V});
        ms = time_graph_ms([&](int) { gpu->linear(lx, lm, nullptr, lout); }, 8);
        add("bf16 gemv lm_head" + tag, nn + " [201088, 2880]", ms, double(lm.nbytes()) / (ms * 1e-3) / 1e9, "GB/s", bw);
        ms = time_graph_ms([&](int) { gpu->linear(lx, lq, nullptr, lout); }, 8);
        add("q8_0 gemv lm_head" + tag, nn + " [201088, 2880]", ms, double(lq.nbytes()) / (ms * 1e-3) / 1e9, "GB/s", bw);
      }
    }
  }
  unsetenv("GPTOSS_CUDA_GEMV");
  unsetenv("GPTOSS_CUDA_GEMV_CTAS");
  print_table();
  return 0;
}

}  // namespace

// Attention: prefill (flash; not with --decode or --attn) and decode at 1k / 8k / 32k keys (32k not with
// --decode unless --attn): the SIMT split-KV kernel and the tensor-core one (GPTOSS_CUDA_ATTN_DECODE=mma).
void bench_attention(Rng& r, double bw, double mm) {
  // ---- attention: prefill (flash) and decode (split-KV), 64 q heads / 8 kv heads, D 64, bf16 KV ----
  const int Hq = 64, Hkv = 8, D = 64;
  Tensor sinks = gpu->upload(rand_bf16(r, {Hq}));
  // GPTOSS_BENCH_ATTN_L=8192: that context alone (an ncu run picks its launches by count)
  const char* only_l = std::getenv("GPTOSS_BENCH_ATTN_L");
  for (int L : {1024, 8192, 32768}) {
    if ((quick && L > 1024) || (decode_only && !attn_only && L > 8192)) break;
    if (only_l && std::atoi(only_l) != L) continue;
    Tensor kc = gpu->upload(rand_bf16(r, {L, Hkv, D})), vc = gpu->upload(rand_bf16(r, {L, Hkv, D}));
    std::vector<int32_t> pos(L);
    for (int i = 0; i < L; ++i) pos[i] = i;
    Tensor gpos = gpu->upload(i32_tensor(pos, {L}));
    Tensor q = gpu->upload(rand_f32(r, {L, Hq, D})), out = gpu->empty(DType::F32, {L, Hq, D});
    for (int win : {0, 128}) {
      if (decode_only || attn_only) break;
      double ms = time_ms([&](int) { gpu->attention(q, kc, vc, sinks, gpos, win, 0.125f, out); }, L > 8192 ? 5 : 10, 1);
      double pairs = win ? double(L) * std::min(L, win) : double(L) * (L + 1) / 2;
      add(std::string("attn prefill flash") + (win ? " w128" : ""), "L" + std::to_string(L), ms,
          4.0 * Hq * D * pairs / (ms * 1e-3) / 1e12, "TFLOP/s", mm);
    }
    // decode at the last position; rotate over 24 layers' caches when they fit in 4 GB
    const int layers = std::max(1, std::min(24, int((size_t(4) << 30) / (2 * kc.nbytes()))));
    std::vector<std::pair<Tensor, Tensor>> caches;
    caches.push_back({kc, vc});
    for (int l = 1; l < layers; ++l) caches.push_back({gpu->upload(rand_bf16(r, {L, Hkv, D})), gpu->upload(rand_bf16(r, {L, Hkv, D}))});
    Tensor q1 = gpu->upload(rand_f32(r, {1, Hq, D})), o1 = gpu->empty(DType::F32, {1, Hq, D});
    Tensor p1 = gpu->upload(i32_tensor({L - 1}, {1}));
    // bf16, then the same bits read as f16 (finite values near 1: the default cache's kernel)
    for (DType kv : {DType::BF16, DType::F16}) {
      std::vector<std::pair<Tensor, Tensor>> as = caches;
      for (auto& c : as) { c.first.dtype = kv; c.second.dtype = kv; }
      double ms = time_graph_ms([&](int i) { auto& c = as[i % layers]; gpu->attention(q1, c.first, c.second, sinks, p1, 0, 0.125f, o1); }, 24);
      add(std::string("attn decode split-KV graph ") + dtype_name(kv), "ctx" + std::to_string(L) + " (" + std::to_string(layers) + " caches)", ms,
          2.0 * kc.nbytes() / (ms * 1e-3) / 1e9, "GB/s", bw);
    }
    // f32k-f16v (kvCache 'f32k-f16v': f32 K, the bf16 V bits read as f16): 1.5x the bytes of bf16.
    // Prediction (bench/RESULTS.md issue 12): its GB/s within 10% of bf16's row above, so its time
    // ~1.5x bf16's at the same context (the kernel is bandwidth-bound at 8k keys).
    {
      std::vector<std::pair<Tensor, Tensor>> as = caches;
      for (auto& c : as) {
        c.first = gpu->upload(rand_f32(r, {L, Hkv, D}));
        c.second.dtype = DType::F16;
      }
      double ms = time_graph_ms([&](int i) { auto& c = as[i % layers]; gpu->attention(q1, c.first, c.second, sinks, p1, 0, 0.125f, o1); }, 24);
      add("attn decode split-KV graph f32k-f16v", "ctx" + std::to_string(L) + " (" + std::to_string(layers) + " caches)", ms,
          (2.0 * kc.nbytes() + kc.nbytes()) / (ms * 1e-3) / 1e9, "GB/s", bw);
      // The tensor-core decode kernel (GPTOSS_CUDA_ATTN_DECODE=mma, issue 12 item 3) on the same caches
      // and query, right after the SIMT rows. Predictions (bench/RESULTS.md issue 12 item 3, written
      // before it ran): f32k-f16v 1k / 8k / 32k ~5 / ~10 / ~30 us (8k: ~60% of copy); bf16 ~4.5 / ~8 / ~22 us.
      setenv("GPTOSS_CUDA_ATTN_DECODE", "mma", 1);
      double mms = time_graph_ms([&](int i) { auto& c = as[i % layers]; gpu->attention(q1, c.first, c.second, sinks, p1, 0, 0.125f, o1); }, 24);
      add("attn decode mma graph f32k-f16v", "ctx" + std::to_string(L) + " (" + std::to_string(layers) + " caches)", mms,
          (2.0 * kc.nbytes() + kc.nbytes()) / (mms * 1e-3) / 1e9, "GB/s", bw);
      std::vector<std::pair<Tensor, Tensor>> bs = caches;
      mms = time_graph_ms([&](int i) { auto& c = bs[i % layers]; gpu->attention(q1, c.first, c.second, sinks, p1, 0, 0.125f, o1); }, 24);
      add("attn decode mma graph bf16", "ctx" + std::to_string(L) + " (" + std::to_string(layers) + " caches)", mms,
          2.0 * kc.nbytes() / (mms * 1e-3) / 1e9, "GB/s", bw);
      // a sliding-window layer (128 keys, one split) at this context: half of gpt-oss's layers
      for (int mma = 0; mma < 2; ++mma) {
        if (mma) setenv("GPTOSS_CUDA_ATTN_DECODE", "mma", 1);
        else unsetenv("GPTOSS_CUDA_ATTN_DECODE");
        mms = time_graph_ms([&](int i) { auto& c = as[i % layers]; gpu->attention(q1, c.first, c.second, sinks, p1, 128, 0.125f, o1); }, 24);
        add(std::string("attn decode ") + (mma ? "mma" : "split-KV") + " graph f32k-f16v w128", "ctx" + std::to_string(L), mms,
            3.0 * kc.nbytes() / L * 128 / (mms * 1e-3) / 1e9, "GB/s", bw);
      }
      unsetenv("GPTOSS_CUDA_ATTN_DECODE");
    }
  }

}

// The dense GEMMs of a decode batch (14th session, split-K on the wgmma tile): q/k/v (one launch, 3 parts),
// o and the LM head at 16..128 rows, 24 layers' weights rotating (past the L2), with the split-K policy
// ("auto") and without it (GPTOSS_CUDA_GEMM_SPLITK=1, "whole"), twice; bytes counted: the weights read
// once a call. Rows: "dense <op> [<variant>] r<pass>". Predictions: bench/RESULTS.md, "Fourteenth session".
int bench_dense_batch(Rng& r, double bw, int H, int V) {
  const int Hq = 64, Hkv = 8, D = 64, layers = 24;
  using Attn = AttnLayer;
  std::vector<Attn> bf;
  for (int l = 0; l < layers; ++l) bf.push_back(bf16_attn_layer(r, H));
  Tensor lm = gpu->upload(rand_bf16(r, {V, H}, 0.05f));
  // how many split-K clusters fit at once: q/k/v's 40 tiles at 3 splits and o's 23 at 5 need 40 and 23
  for (int bm : {64, 128})
    for (int splits = 2; splits <= 8; ++splits)
      std::printf("wgmma split-K: %d-row tile, %d splits: %d clusters resident at once\n", bm, splits,
                  gptoss::cuda::wgmma_split_clusters(bm, splits));
  const char* variants[][2] = {{"auto", nullptr}, {"whole", "1"}};
  for (int pass = 1; pass <= 2; ++pass)
    for (int n : {16, 64, 128}) {
      Tensor x = gpu->upload(rand_f32(r, {n, H})), xo = gpu->upload(rand_f32(r, {n, Hq * D}));
      Tensor q = gpu->empty(DType::F32, {n, Hq * D}), k = gpu->empty(DType::F32, {n, Hkv * D}),
             v = gpu->empty(DType::F32, {n, Hkv * D}), o = gpu->empty(DType::F32, {n, H}), lout = gpu->empty(DType::F32, {n, V});
      const std::string nn = "n" + std::to_string(n);
      for (const auto& vr : variants) {
        if (vr[1]) setenv("GPTOSS_CUDA_GEMM_SPLITK", vr[1], 1);
        else unsetenv("GPTOSS_CUDA_GEMM_SPLITK");
        const std::string tag = std::string(" [") + vr[0] + "] r" + std::to_string(pass);
        time_qkv_o(bf, "dense", tag, nn, x, xo, q, k, v, o, bw);
        const double ms = time_graph_ms([&](int) { gpu->linear(x, lm, nullptr, lout); }, 8);
        add("dense lm_head" + tag, nn + " [201088, 2880]", ms, double(lm.nbytes()) / (ms * 1e-3) / 1e9, "GB/s", bw);
      }
    }
  unsetenv("GPTOSS_CUDA_GEMM_SPLITK");
  print_table();
  return 0;
}

namespace gptoss_bench {
double read_probe_gbs(int pattern, int regions, int rows, int stride, int used, int reps);  // gpu-read-probe.cu
double moe1_probe_us(int mode, double* bytes_layer);                                         // gpu-read-probe.cu
}
// --read-probe: the DRAM read ceiling of the MoE kernels' access patterns (bench/gpu-read-probe.cu): 1,440
// regions (a 20b layer's 32 experts x 45 gate_up row blocks) of 128 rows at the checkpoint's 1,440-byte row
// stride, 1,280 bytes of each row read (236 MB), in 8 KB stages of 128 rows x 64 B, 32 rows x 256 B, or
// contiguous, or 128 rows x 64 B with L2's 256-byte prefetch size; then the same without the stride's gap
// (stride 1,280). Two rounds.
int bench_read_probe(double bw) {
  const char* names[] = {"rows x 64 B", "rows x 256 B", "contiguous 8 KB", "rows x 64 B, L2::256B"};
  for (int round = 0; round < 2; ++round)
    for (int stride : {1440, 1280})
      for (int pattern = 0; pattern < 4; ++pattern) {
        const double gbs = gptoss_bench::read_probe_gbs(pattern, 1440, 128, stride, 1280, 9);
        const double ms = 1440.0 * 128 * 1280 / (gbs * 1e9) * 1e3;
        add(std::string("read probe ") + names[pattern] + " r" + std::to_string(round + 1),
            "stride " + std::to_string(stride) + ", 236 MB", ms, gbs, "GB/s", bw);
      }
  // the one-token decode MoE's grid and reads, no math (gpu-read-probe.cu moe1_probe_kernel); ms: a layer
  const char* moe1[] = {"cp.async, 36.9 KB smem", "cp.async, 24.6 KB smem", "registers, no smem"};
  for (int round = 0; round < 2; ++round)
    for (int mode = 0; mode < 3; ++mode) {
      double bytes = 0;
      const double us = gptoss_bench::moe1_probe_us(mode, &bytes);
      add(std::string("moe1 probe ") + moe1[mode] + " r" + std::to_string(round + 1), "gate_up + down, 20b, k4, x24 graph",
          us * 1e-3, bytes / (us * 1e-6) / 1e9, "GB/s", bw);
    }
  print_table();
  return 0;
}

// Sampling (--sample): one row of o200k logits drawn greedily, at temperature 1 with no ranking (generate()'s
// default: sample.cu's split kernels) and at top-p 0.9 (probs, radix sort, one-block draw), eager on the stream
// with no host sync (sample_into, as stepSampleMany queues them); then 64 rows at temperature 1 in one
// sample_rows call (the engine's batch draws), host round trip included (wall clock). GB/s: one pass over the
// row's logits.
int bench_sample(Rng& r, double bw, int V) {
  const int rows = 64;
  Tensor logits = gpu->upload(rand_f32(r, {rows, V}, 4.f));
  Tensor token = gpu->empty(DType::I32, {1});
  const double row_bytes = 4.0 * V;
  struct Case { const char* name; float t; float top_p; };
  for (const Case& c : {Case{"sample greedy", 0.f, 1.f}, Case{"sample t1 (unranked)", 1.f, 1.f},
                        Case{"sample t1 top-p 0.9", 1.f, 0.9f}}) {
    SampleParams sp;
    sp.temperature = c.t;
    sp.top_p = c.top_p;
    const double ms = time_ms([&](int i) {
      gpu->sample_into(logits.rows(i % rows, 1).reshaped({V}), sp, 0.37f + 0.01f * (i % 50), token);
    }, 50, 5);
    add(c.name, "1 x V" + std::to_string(V), ms, row_bytes / (ms * 1e-3) / 1e9, "GB/s", bw);
  }
  std::vector<int32_t> idx(rows);
  std::vector<SampleParams> params(rows);
  std::vector<float> us(rows);
  for (int i = 0; i < rows; ++i) {
    idx[size_t(i)] = i;
    params[size_t(i)].temperature = 1.f;
    us[size_t(i)] = r.uniform();
  }
  std::vector<double> ms;
  for (int rep = 0; rep < 23; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    (void)gpu->sample_rows(logits, idx, params, us);
    if (rep >= 3) ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const double m = ms[ms.size() / 2];
  add("sample_rows t1 (wall, host sync)", std::to_string(rows) + " x V" + std::to_string(V), m,
      rows * row_bytes / (m * 1e-3) / 1e9, "GB/s", bw);
  // Token log-probabilities (logprobs.cu, Backend::logprob_top): one row and 64, top 0 / 5 / 20, host round trip
  // included (wall clock), against the host path (the row copied back and reduced there, model/logprobs.cpp) for
  // one row. GB/s: the row read once (the kernel reads it 2 + top times, from L2 after the first).
  setenv("GPTOSS_CUDA_LOGPROBS", "device", 1);  // the kernel's rows (the default reads rows on the host)
  for (int top : {0, 5, 20})
    for (int n : {1, rows}) {
      std::vector<int32_t> lr(static_cast<size_t>(n));
      for (int i = 0; i < n; ++i) lr[size_t(i)] = i;
      const std::vector<int> tops(size_t(n), top);
      std::vector<double> t;
      for (int rep = 0; rep < 23; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        (void)gpu->logprob_top(logits, lr, tops);
        if (rep >= 3) t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(t.begin(), t.end());
      const double lm = t[t.size() / 2];
      add("logprob_top top " + std::to_string(top) + " (wall, host sync)", std::to_string(n) + " x V" + std::to_string(V), lm,
          n * row_bytes / (lm * 1e-3) / 1e9, "GB/s", bw);
    }
  unsetenv("GPTOSS_CUDA_LOGPROBS");
  {
    std::vector<double> t;
    std::vector<float> host;
    for (int rep = 0; rep < 13; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      copy_logit_row(*gpu, logits, 0, host);
      (void)row_top(host.data(), int64_t(host.size()), 5);
      if (rep >= 3) t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    const double hm = t[t.size() / 2];
    add("logprob_top top 5 on the host (row copied back)", "1 x V" + std::to_string(V), hm, row_bytes / (hm * 1e-3) / 1e9, "GB/s", bw);
  }
  print_table();
  return 0;
}

int main(int argc, char** argv) {
  bool read_probe_only = false, dense_batch_only = false, sample_only = false;
  for (int i = 1; i < argc; ++i) {
    read_probe_only |= !std::strcmp(argv[i], "--read-probe");
    quick |= !std::strcmp(argv[i], "--quick");
    decode_only |= !std::strcmp(argv[i], "--decode");
    bf16_experts_only |= !std::strcmp(argv[i], "--bf16-experts");
    gemv_only |= !std::strcmp(argv[i], "--gemv");
    attn_only |= !std::strcmp(argv[i], "--attn");
    gemm_only |= !std::strcmp(argv[i], "--gemm");
    moe_batch_only |= !std::strcmp(argv[i], "--moe-batch");
    dense_batch_only |= !std::strcmp(argv[i], "--dense-batch");
    sample_only |= !std::strcmp(argv[i], "--sample");
  }
  std::string reason = cuda_unavailable_reason();
  if (!reason.empty()) {
    std::printf("gpu bench: CUDA unavailable: %s\n", reason.c_str());
    return 2;
  }
  gpu = get_backend({DeviceKind::CUDA, 0});
  stream = cuda_backend_stream(*gpu);
  std::printf("gpu bench on %s%s\n", gpu->describe().c_str(), quick ? " (quick)" : "");
  Rng r(1234);

  const double bw = copy_ceiling_gbs();
  std::printf("ceiling: device-to-device copy %.0f GB/s (read + write)\n", bw);
  if (read_probe_only) return bench_read_probe(bw);
  double mm = decode_only || bf16_experts_only || gemv_only || attn_only || moe_batch_only || dense_batch_only || sample_only ? 0 : cublas_ceiling_tflops();
  const bool mm_measured = mm > 0;
  if (!mm_measured) mm = 790;  // KINDS.md: 8192^3 bf16 via PyTorch on this kind, 769-798 TFLOP/s
  std::printf("ceiling: bf16 GEMM %.0f TFLOP/s (%s)\n", mm, mm_measured ? "cuBLAS 8192^3, measured now" : "KINDS.md figure, cuBLAS not found");
  add("d2d copy (ceiling)", "2 GiB", 0, bw, "GB/s", bw);

  const int H = 2880, I = 2880, E = 32, K = 4, V = 201088;
  if (bf16_experts_only) return bench_bf16_experts(r, bw, mm, H, I, E, K);
  if (gemv_only) return bench_gemv(r, bw, H, V);
  if (gemm_only) return bench_gemm(r, mm, H, I, E, K);
  if (moe_batch_only) return bench_moe_batch(r, bw, H, I, E, K);
  if (dense_batch_only) return bench_dense_batch(r, bw, H, V);
  if (sample_only) return bench_sample(r, bw, V);
  if (attn_only) {
    bench_attention(r, bw, mm);
    print_table();
    return 0;
  }
  // ---- MXFP4 dequant: 32 experts' gate_up (283 MB packed) -> bf16 (1.06 GB) ----
  if (!decode_only) {
    Tensor p = gpu->upload(rand_mxfp4(r, {quick ? 4 : E, 2 * I, H}));
    Tensor out = gpu->empty(DType::BF16, p.shape);
    double ms = time_ms([&](int) { gpu->mxfp4_dequantize(p, out); }, 10);
    double bytes = p.nbytes() + p.scale_bytes() + out.nbytes();
    add("mxfp4 dequant -> bf16", shape_str(p.shape), ms, bytes / (ms * 1e-3) / 1e9, "GB/s", bw);
  }
  // ---- MoE weights of one 20b layer set; decode rotates expert choices ----
  MoeWeights w;
  w.gate_up = gpu->upload(rand_mxfp4(r, {E, 2 * I, H}, 119, 122));
  w.gate_up_bias = gpu->upload(rand_bf16(r, {E, 2 * I}));
  w.down = gpu->upload(rand_mxfp4(r, {E, H, I}, 117, 120));
  w.down_bias = gpu->upload(rand_bf16(r, {E, H}));
  const double expert_bytes = double(2 * I) * H / 2 + double(2 * I) * H / 32 + double(H) * I / 2 + double(H) * I / 32;
  auto routing = [&](int n, int sets, int experts) {
    std::vector<std::pair<Tensor, Tensor>> v;
    for (int s = 0; s < sets; ++s) {
      std::vector<int32_t> idx(size_t(n) * K);
      std::vector<float> wt(size_t(n) * K, 0.25f);
      for (int t = 0; t < n; ++t)
        for (int j = 0; j < K; ++j) {
          int e;
          bool dup;
          do {
            e = r.below(experts);
            dup = false;
            for (int q = 0; q < j; ++q) dup |= idx[size_t(t) * K + q] == e;
          } while (dup);
          idx[size_t(t) * K + j] = e;
        }
      Tensor ht = host_empty(DType::F32, {n, K});
      std::memcpy(ht.data, wt.data(), wt.size() * 4);
      v.push_back({gpu->upload(i32_tensor(idx, {n, K})), gpu->upload(ht)});
    }
    return v;
  };
  SwigluParams sw;
  {
    auto sets = routing(1, 16, E);
    Tensor x = gpu->upload(rand_f32(r, {1, H})), out = gpu->empty(DType::F32, {1, H});
    // every decode kernel variant (GPTOSS_CUDA_MOE_DECODE is read at each call; the default is mma on sm_90)
    for (const char* variant : {"simt", "mma-prmt", "mma", "mma-fp8", "mma-mxf8"}) {  // mma-mxf8 emulated before sm_120a
      setenv("GPTOSS_CUDA_MOE_DECODE", variant, 1);
      double ms = time_ms([&](int i) { auto& s = sets[i % 16]; gpu->moe(x, s.first, s.second, w, sw, out); }, 50, 5);
      add(std::string("moe decode ") + variant + " eager", "n1 k4 E32 H2880 I2880", ms, 4 * expert_bytes / (ms * 1e-3) / 1e9, "GB/s", bw);
      ms = time_graph_ms([&](int i) { auto& s = sets[i % 16]; gpu->moe(x, s.first, s.second, w, sw, out); });
      add(std::string("moe decode ") + variant + " graph", "n1 k4 E32 H2880 I2880", ms, 4 * expert_bytes / (ms * 1e-3) / 1e9, "GB/s", bw);
    }
    unsetenv("GPTOSS_CUDA_MOE_DECODE");
  }
  // The decode layout (GPTOSS_CUDA_MOE_DECODE=mma-relaid, mxfp4_layout.h; issue 12 item 1): other experts
  // of the same shapes re-laid in place at "load" (the row's time is the re-layout, its rate the bytes
  // read and written), then the relaid decode kernel and the grouped GEMM reading the layout.
  // Predictions (bench/RESULTS.md, issue 12 item 1; written before any run): re-layout >= 1,000 GB/s;
  // decode graph 34 -> ~29 us (42% of copy, from 36%: -12 of ~78 instructions a warp and MX block from
  // the word decode; the 16-byte scale loads save ~2 a block and the raw scales cost ~2 back in the
  // loop); grouped GEMM within 3% of the rows above (its decode is once a tile, amortized over rows).
  if (!quick) {
    MoeWeights wr;
    wr.gate_up = gpu->upload(rand_mxfp4(r, {E, 2 * I, H}, 119, 122));
    wr.gate_up_bias = w.gate_up_bias;
    wr.down = gpu->upload(rand_mxfp4(r, {E, H, I}, 117, 120));
    wr.down_bias = w.down_bias;
    setenv("GPTOSS_CUDA_MOE_DECODE", "mma-relaid", 1);
    gpu->synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    const std::string line = gpu->prepare_experts(wr);
    std::printf("prepare_experts: %s\n", line.empty() ? "(not applied)" : line.c_str());
    const double relayout_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const double layout_bytes = 2.0 * E * expert_bytes;  // read and written once (scales twice: through scratch)
    add(wr.decode_layout ? "moe decode layout re-lay (load)" : "moe decode layout NOT applied", "E32 H2880 I2880", relayout_ms,
        layout_bytes / (relayout_ms * 1e-3) / 1e9, "GB/s", bw);
    if (wr.decode_layout) {
      auto sets = routing(1, 16, E);
      Tensor x = gpu->upload(rand_f32(r, {1, H})), out = gpu->empty(DType::F32, {1, H});
      double ms = time_ms([&](int i) { auto& s = sets[i % 16]; gpu->moe(x, s.first, s.second, wr, sw, out); }, 50, 5);
      add("moe decode mma-relaid eager", "n1 k4 E32 H2880 I2880", ms, 4 * expert_bytes / (ms * 1e-3) / 1e9, "GB/s", bw);
      ms = time_graph_ms([&](int i) { auto& s = sets[i % 16]; gpu->moe(x, s.first, s.second, wr, sw, out); });
      add("moe decode mma-relaid graph", "n1 k4 E32 H2880 I2880", ms, 4 * expert_bytes / (ms * 1e-3) / 1e9, "GB/s", bw);
      // The staged ring (GPTOSS_CUDA_MOE_STAGED=1|2|3 slots a warp, A/B; moe_decode_mma.cu), and the one-tile kernels at
      // its slice shape (GPTOSS_CUDA_MOE_SLICE=12: 8 warps of 12 MX blocks) to tell the slicing from the ring.
      // Prediction (bench/RESULTS.md, thirtieth session; before any run): 2 slots 0.032 -> 0.024-0.027 ms.
      for (const char* staged : {"0", "1", "2", "3"}) {
        setenv("GPTOSS_CUDA_MOE_SLICE", "12", 1);
        setenv("GPTOSS_CUDA_MOE_STAGED", staged, 1);
        ms = time_graph_ms([&](int i) { auto& s = sets[i % 16]; gpu->moe(x, s.first, s.second, wr, sw, out); });
        add(std::strcmp(staged, "0") ? std::string("moe decode mma-relaid staged ") + staged + " graph"
                                     : std::string("moe decode mma-relaid slice12 graph"),
            "n1 k4 E32 H2880 I2880", ms, 4 * expert_bytes / (ms * 1e-3) / 1e9, "GB/s", bw);
      }
      unsetenv("GPTOSS_CUDA_MOE_SLICE");
      unsetenv("GPTOSS_CUDA_MOE_STAGED");
      // Ablations (wrong results, timing only): the same kernels without their MMA loop, then also without the
      // activation fragments. Against the moe1 read probe (--read-probe) they say where the kernels' time goes.
      for (int mode : {1, 2}) {
        gptoss::cuda::set_moe_decode_ablation(mode);
        ms = time_graph_ms([&](int i) { auto& s = sets[i % 16]; gpu->moe(x, s.first, s.second, wr, sw, out); });
        add(mode == 1 ? "moe decode relaid ablation: no MMA loop" : "moe decode relaid ablation: no MMA, no B frags",
            "n1 k4 E32 H2880 I2880", ms, 4 * expert_bytes / (ms * 1e-3) / 1e9, "GB/s", bw);
      }
      gptoss::cuda::set_moe_decode_ablation(0);
      // The MoE block's chain as a decode step runs it (o_proj, then add + norm + router, then the MoE), against the same
      // chain with the routing given (add + norm alone before the MoE): the difference is what the router adds to the
      // step's critical path (its work after its PDL wait, and the MoE's gate_up waiting on it). Four o and router
      // weights in turn, so the o rows and the routed experts do not stay in L2.
      {
        std::vector<Tensor> ow, rw;
        for (int l = 0; l < 4; ++l) {
          ow.push_back(gpu->upload(rand_bf16(r, {H, 4096}, 0.02f)));
          rw.push_back(gpu->upload(rand_bf16(r, {E, H}, 0.05f)));
        }
        Tensor bo = gpu->upload(rand_bf16(r, {H})), rb = gpu->upload(rand_bf16(r, {E})), nw = gpu->upload(rand_bf16(r, {H}));
        Tensor xo = gpu->upload(rand_f32(r, {1, 4096})), o = gpu->empty(DType::F32, {1, H});
        Tensor xr = gpu->upload(rand_f32(r, {1, H})), normed = gpu->empty(DType::F32, {1, H});
        Tensor idx = gpu->empty(DType::I32, {1, K}), wt = gpu->empty(DType::F32, {1, K});
        const double block_bytes = double(ow[0].nbytes()) + 4 * expert_bytes;
        // the chain and add+norm+router alone, timed once with the split router and once with its blocks as one cluster
        // (GPTOSS_CUDA_ROUTER_CLUSTER=1, where it runs)
        auto router_chain = [&] {
          return time_graph_ms([&](int i) {
            gpu->linear(xo, ow[size_t(i % 4)], &bo, o);
            gpu->add_rmsnorm_router(xr, o, nw, 1e-5f, normed, rw[size_t(i % 4)], rb, K, idx, wt);
            gpu->moe(normed, idx, wt, wr, sw, out);
          });
        };
        auto router_alone = [&] {
          return time_graph_ms([&](int i) { gpu->add_rmsnorm_router(xr, o, nw, 1e-5f, normed, rw[size_t(i % 4)], rb, K, idx, wt); });
        };
        double cms = router_chain();
        add("moe block chain: o, norm+router, moe", "n1, 20b widths", cms, block_bytes / (cms * 1e-3) / 1e9, "GB/s", bw);
        double fms = time_graph_ms([&](int i) {
          gpu->linear(xo, ow[size_t(i % 4)], &bo, o);
          gpu->add_rmsnorm(xr, o, nw, 1e-5f, normed);
          auto& s = sets[i % 16];
          gpu->moe(normed, s.first, s.second, wr, sw, out);
        });
        add("moe block chain: o, norm, moe (routing given)", "n1, 20b widths", fms, block_bytes / (fms * 1e-3) / 1e9, "GB/s", bw);
        double rms = router_alone();
        add("norm+router alone (chained)", "n1, E32 H2880", rms, double(rw[0].nbytes()) / (rms * 1e-3) / 1e9, "GB/s", bw);
        double nms = time_graph_ms([&](int) { gpu->add_rmsnorm(xr, o, nw, 1e-5f, normed); });
        add("norm alone (chained)", "n1, H2880", nms, 0, "GB/s", bw);
        setenv("GPTOSS_CUDA_ROUTER_CLUSTER", "1", 1);
        cms = router_chain();
        add("moe block chain: o, norm+router cluster, moe", "n1, 20b widths", cms, block_bytes / (cms * 1e-3) / 1e9, "GB/s", bw);
        rms = router_alone();
        add("norm+router cluster alone (chained)", "n1, E32 H2880", rms, double(rw[0].nbytes()) / (rms * 1e-3) / 1e9, "GB/s", bw);
        unsetenv("GPTOSS_CUDA_ROUTER_CLUSTER");
      }
      for (int n : {512, 2048}) {
        if (decode_only) break;
        auto gsets = routing(n, 2, E);
        Tensor gx = gpu->upload(rand_f32(r, {n, H})), gout = gpu->empty(DType::F32, {n, H});
        double gms = time_ms([&](int i) { auto& s = gsets[i % 2]; gpu->moe(gx, s.first, s.second, wr, sw, gout); }, 10, 2);
        double flops = 2.0 * n * K * (2.0 * I * H + double(H) * I);
        add("moe grouped GEMM decode layout", "n" + std::to_string(n) + " k4 E32", gms, flops / (gms * 1e-3) / 1e12, "TFLOP/s", mm);
      }
    }
    unsetenv("GPTOSS_CUDA_MOE_DECODE");
  }
  for (int n : {512, 2048, 8192}) {
    if ((quick && n > 512) || decode_only) break;
    auto sets = routing(n, 2, E);
    Tensor x = gpu->upload(rand_f32(r, {n, H})), out = gpu->empty(DType::F32, {n, H});
    double ms = time_ms([&](int i) { auto& s = sets[i % 2]; gpu->moe(x, s.first, s.second, w, sw, out); }, 10, 2);
    double flops = 2.0 * n * K * (2.0 * I * H + double(H) * I);
    add("moe grouped GEMM", "n" + std::to_string(n) + " k4 E32", ms, flops / (ms * 1e-3) / 1e12, "TFLOP/s", mm);
  }
  // gpt-oss-120b's expert count: 128 experts, so 512 tokens give 16 rows an expert
  if (!decode_only && !quick) {
    MoeWeights w128;
    w128.gate_up = gpu->upload(rand_mxfp4(r, {128, 2 * I, H}, 119, 122));
    w128.gate_up_bias = gpu->upload(rand_bf16(r, {128, 2 * I}));
    w128.down = gpu->upload(rand_mxfp4(r, {128, H, I}, 117, 120));
    w128.down_bias = gpu->upload(rand_bf16(r, {128, H}));
    for (int n : {512, 2048}) {
      auto sets = routing(n, 2, 128);
      Tensor x = gpu->upload(rand_f32(r, {n, H})), out = gpu->empty(DType::F32, {n, H});
      double ms = time_ms([&](int i) { auto& s = sets[i % 2]; gpu->moe(x, s.first, s.second, w128, sw, out); }, 10, 2);
      double flops = 2.0 * n * K * (2.0 * I * H + double(H) * I);
      add("moe grouped GEMM", "n" + std::to_string(n) + " k4 E128", ms, flops / (ms * 1e-3) / 1e12, "TFLOP/s", mm);
    }
  }
  // ---- the attention block's decode GEMVs: q/k/v (one fused launch) and o, 24 layers' weights ----
  {
    const int Hq = 64, Hkv = 8, D = 64, layers = 24;
    using Attn = AttnLayer;
    std::vector<Attn> ls;
    for (int l = 0; l < layers; ++l) ls.push_back(bf16_attn_layer(r, H));
    Tensor x = gpu->upload(rand_f32(r, {1, H})), xo = gpu->upload(rand_f32(r, {1, Hq * D}));
    Tensor q = gpu->empty(DType::F32, {1, Hq * D}), k = gpu->empty(DType::F32, {1, Hkv * D}),
           v = gpu->empty(DType::F32, {1, Hkv * D}), o = gpu->empty(DType::F32, {1, H});
    const double qkv_bytes = double(ls[0].q.nbytes() + ls[0].k.nbytes() + ls[0].v.nbytes());
    double ms = time_graph_ms([&](int i) {
      const Attn& a = ls[i % layers];
      gpu->qkv(x, a.q, a.bq, a.k, a.bk, a.v, a.bv, q, k, v);
    }, layers);
    add("bf16 gemv qkv graph", "n1 [5120, 2880] (24 layers)", ms, qkv_bytes / (ms * 1e-3) / 1e9, "GB/s", bw);
    ms = time_graph_ms([&](int i) { const Attn& a = ls[i % layers]; gpu->linear(xo, a.o, &a.bo, o); }, layers);
    add("bf16 gemv o_proj graph", "n1 [2880, 4096] (24 layers)", ms, double(ls[0].o.nbytes()) / (ms * 1e-3) / 1e9,
        "GB/s", bw);
    // the same projections for a 2048-token prefill (the GEMM tile)
    if (!decode_only) {
      const int n = quick ? 256 : 2048;
      Tensor xp = gpu->upload(rand_f32(r, {n, H})), xpo = gpu->upload(rand_f32(r, {n, Hq * D}));
      Tensor qp = gpu->empty(DType::F32, {n, Hq * D}), op = gpu->empty(DType::F32, {n, H});
      ms = time_ms([&](int i) { const Attn& a = ls[i % layers]; gpu->linear(xp, a.q, &a.bq, qp); }, 24, 2);
      add("bf16 GEMM q_proj", "n" + std::to_string(n) + " [4096, 2880]", ms, 2.0 * n * Hq * D * H / (ms * 1e-3) / 1e12, "TFLOP/s", mm);
      ms = time_ms([&](int i) { const Attn& a = ls[i % layers]; gpu->linear(xpo, a.o, &a.bo, op); }, 24, 2);
      add("bf16 GEMM o_proj", "n" + std::to_string(n) + " [2880, 4096]", ms, 2.0 * n * Hq * D * H / (ms * 1e-3) / 1e12, "TFLOP/s", mm);
    }
  }
  // ---- bf16 GEMV (LM head, 1.16 GB) and GEMM ----
  {
    Tensor lm = gpu->upload(rand_bf16(r, {V, H}, 0.05f));
    for (int n : {1, 4}) {
      Tensor x = gpu->upload(rand_f32(r, {n, H})), out = gpu->empty(DType::F32, {n, V});
      double ms = time_graph_ms([&](int) { gpu->linear(x, lm, nullptr, out); }, 8);
      add("bf16 gemv lm_head graph", "n" + std::to_string(n) + " [201088, 2880]", ms, double(lm.nbytes()) / (ms * 1e-3) / 1e9,
          "GB/s", bw);
    }
    for (int n : {512, 4096}) {
      if ((quick && n > 512) || decode_only) break;
      Tensor x = gpu->upload(rand_f32(r, {n, H})), out = gpu->empty(DType::F32, {n, V});
      double ms = time_ms([&](int) { gpu->linear(x, lm, nullptr, out); }, 5, 1);
      add("bf16 gemm lm_head", "n" + std::to_string(n) + " [201088, 2880]", ms, 2.0 * n * V * H / (ms * 1e-3) / 1e12,
          "TFLOP/s", mm);
    }    // The same LM head in Q8_0 (denseWeights: 'q8', GGUF): 1.06 bytes a weight, q8.cu's GEMV and GEMM path.
    Tensor lq = gpu->upload(rand_q8_0(r, {V, H}, 0.05f));
    for (int n : {1, 4}) {
      Tensor x = gpu->upload(rand_f32(r, {n, H})), out = gpu->empty(DType::F32, {n, V});
      double ms = time_graph_ms([&](int) { gpu->linear(x, lq, nullptr, out); }, 8);
      add("q8_0 gemv lm_head graph", "n" + std::to_string(n) + " [201088, 2880]", ms, double(lq.nbytes()) / (ms * 1e-3) / 1e9,
          "GB/s", bw);
    }
    if (!decode_only) {
      const int n = 512;
      Tensor x = gpu->upload(rand_f32(r, {n, H})), out = gpu->empty(DType::F32, {n, V});
      double ms = time_ms([&](int) { gpu->linear(x, lq, nullptr, out); }, 5, 1);
      add("q8_0 gemm lm_head", "n" + std::to_string(n) + " [201088, 2880]", ms, 2.0 * n * V * H / (ms * 1e-3) / 1e12,
          "TFLOP/s", mm);
    }
  }
  bench_attention(r, bw, mm);
  print_table();
  return 0;
}
